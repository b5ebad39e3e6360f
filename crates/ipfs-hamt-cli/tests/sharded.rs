//! The sharded layout from the command line, against py-hamt's golden roots:
//! `import --layout sharded` is py-hamt's convert_hamt_to_sharded of the directory,
//! `convert` both ways, and a publisher's workflow (import a group, resize, graft a
//! separately built batch) reaches py-hamt's `v2_graft` root.

use std::path::PathBuf;

mod common;

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/sharded")
}

fn case(name: &str) -> serde_json::Value {
    let all: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden().join("sharded_cases.json")).unwrap())
            .unwrap();
    all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
        .clone()
}

#[test]
fn import_and_convert_give_py_hamt_converter_roots() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = common::Cli::new(tmp.path());
    let store = tmp.path().join("s.redb");
    let s = store.to_str().unwrap();
    for name in ["converted_from_hamt_zarr3", "converted_from_hamt_zarr2"] {
        let c = case(name);
        let hamt_car = golden().join(c["hamt_car"].as_str().unwrap());
        let want = c["root"].as_str().unwrap();
        // The dataset as a directory: the source HAMT exported.
        let dir = tmp.path().join(name);
        cli.ok(&[
            "export",
            "--car",
            hamt_car.to_str().unwrap(),
            dir.to_str().unwrap(),
        ]);
        let got = cli.ok(&[
            "import",
            dir.to_str().unwrap(),
            "--layout",
            "sharded",
            "--chunks-per-shard",
            "3",
            "--store",
            s,
        ]);
        assert_eq!(got.trim(), want, "{name}: import --layout sharded");
        // The import kept only the sharded store's blocks: no HAMT node reached the store.
        let hamt_root = c["hamt_root"].as_str().unwrap();
        cli.fails(&["stat", hamt_root, "--store", s], "not found");
        // convert --to sharded from the HAMT gives the same root.
        let hamt = cli.ok(&["car", "import", hamt_car.to_str().unwrap(), "--store", s]);
        assert_eq!(hamt.trim(), hamt_root);
        let got = cli.ok(&[
            "convert",
            hamt_root,
            "--to",
            "sharded",
            "--chunks-per-shard",
            "3",
            "--store",
            s,
        ]);
        assert_eq!(got.trim(), want, "{name}: convert --to sharded");
        // And back: v3 keys are the same in both layouts, so the HAMT comes back exactly.
        let back = cli.ok(&["convert", want, "--to", "hamt", "--store", s]);
        if name.ends_with("zarr3") {
            assert_eq!(back.trim(), hamt_root, "convert --to hamt");
        }
        let a: Vec<String> = cli
            .ok(&["ls", back.trim(), "--store", s])
            .lines()
            .map(String::from)
            .collect();
        let b: Vec<String> = cli
            .ok(&["ls", want, "--store", s])
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(a, b, "{name}: same keys in both layouts");
    }
    // Bad combinations are one-line errors.
    let dir = tmp.path().join("converted_from_hamt_zarr3");
    let d = dir.to_str().unwrap();
    cli.fails(
        &["import", d, "--group", "0", "--store", s],
        "--layout sharded",
    );
    cli.fails(
        &[
            "import",
            d,
            "--layout",
            "sharded",
            "--chunks-per-shard",
            "0",
            "--store",
            s,
        ],
        "chunks-per-shard",
    );
    cli.fails(
        &[
            "import",
            d,
            "--layout",
            "sharded",
            "--sharded-version",
            "1",
            "--store",
            s,
        ],
        "--primary",
    );
    let key = tmp.path().join("key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    cli.fails(
        &[
            "import",
            d,
            "--layout",
            "sharded",
            "--encrypt-key-file",
            key.to_str().unwrap(),
            "--store",
            s,
        ],
        "no encrypted sharded store",
    );
    let hamt_root = case("converted_from_hamt_zarr3")["hamt_root"]
        .as_str()
        .unwrap()
        .to_string();
    cli.fails(
        &["resize", &hamt_root, "temp", "9,6,8", "--store", s],
        "works on sharded roots",
    );
}

#[test]
fn publishing_workflow_reaches_py_hamt_roots() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = common::Cli::new(tmp.path());
    let store = tmp.path().join("s.redb");
    let s = store.to_str().unwrap();
    // Datasets as xarray wrote them, as directories (group 0 of py-hamt's golden stores).
    let export = |name: &str| {
        let dir = tmp.path().join(name);
        let car = golden().join(format!("cars/{name}.car"));
        cli.ok(&[
            "export",
            "--car",
            car.to_str().unwrap(),
            dir.to_str().unwrap(),
        ]);
        dir.join("0")
    };
    let initial = export("v2_group0");
    let batch = export("v2_graft_source");
    // Initial publication: to_zarr(group='0') through py-hamt.
    let g0 = cli.ok(&[
        "import",
        initial.to_str().unwrap(),
        "--layout",
        "sharded",
        "--group",
        "0",
        "--chunks-per-shard",
        "3",
        "--store",
        s,
    ]);
    assert_eq!(
        g0.trim(),
        case("v2_group0")["root"].as_str().unwrap(),
        "initial write"
    );
    let stat = cli.ok(&["stat", g0.trim(), "--store", s]);
    assert!(
        stat.contains("sharded (sharded_zarr_v2)") && stat.contains("0/temp  [8, 6, 8]"),
        "{stat}"
    );
    // A batch built separately.
    let src = cli.ok(&[
        "import",
        batch.to_str().unwrap(),
        "--layout",
        "sharded",
        "--group",
        "0",
        "--chunks-per-shard",
        "3",
        "--store",
        s,
    ]);
    assert_eq!(
        src.trim(),
        case("v2_graft")["graft_source_root"].as_str().unwrap(),
        "batch"
    );
    // Grow along time, graft the batch in at chunk offset 4 (temp) / 2 (time).
    let r = cli.ok(&["resize", g0.trim(), "0/temp", "12,6,8", "--store", s]);
    let r = cli.ok(&["resize", r.trim(), "0/time", "12", "--store", s]);
    assert_eq!(
        r.trim(),
        case("v2_resize_region")["root_resized_only"]
            .as_str()
            .unwrap(),
        "resized"
    );
    let r = cli.ok(&[
        "graft",
        r.trim(),
        src.trim(),
        "--offset",
        "4,0,0",
        "--source-array",
        "0/temp",
        "--target-array",
        "0/temp",
        "--store",
        s,
    ]);
    let r = cli.ok(&[
        "graft",
        r.trim(),
        src.trim(),
        "--offset",
        "2",
        "--source-array",
        "0/time",
        "--store",
        s,
    ]);
    assert_eq!(
        r.trim(),
        case("v2_graft")["root"].as_str().unwrap(),
        "grafted"
    );
    // A graft that does not fit is a one-line error.
    cli.fails(
        &[
            "graft",
            g0.trim(),
            src.trim(),
            "--offset",
            "4,0,0",
            "--source-array",
            "0/temp",
            "--store",
            s,
        ],
        "out of bounds",
    );
    // A second pyramid level into the same root, then the v1 migration.
    let two = cli.ok(&[
        "import",
        initial.to_str().unwrap(),
        "--layout",
        "sharded",
        "--group",
        "1",
        "--into",
        g0.trim(),
        "--store",
        s,
    ]);
    let listing = cli.ok(&["ls", two.trim(), "--store", s]);
    assert!(
        listing.lines().any(|l| l == "1/temp/zarr.json")
            && listing.lines().any(|l| l == "0/temp/zarr.json")
    );
    let v1 = cli.ok(&[
        "car",
        "import",
        golden().join("cars/v1.car").to_str().unwrap(),
        "--store",
        s,
    ]);
    let migrated = cli.ok(&["migrate", v1.trim(), "0/temp", "--store", s]);
    assert_eq!(
        migrated.trim(),
        case("v1_migrated_to_v2")["root"].as_str().unwrap()
    );
}

//! `import --bulk`: the bulk builder gives the same roots as the incremental writer.

mod common;

use common::{make_tree, read_tree, Cli};

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap()
}

#[test]
fn bulk_import_gives_the_golden_hamt_roots() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    for (n, mbs, root) in [
        (
            100,
            4,
            "bafyr4igiblokisz6ibzd26qd5v2vg2jfwanvc6d6k443yghouvoocvvxqq",
        ),
        (
            1000,
            16,
            "bafyr4iec2wapfx2xihz723xani4n3s6pjfrsvrbxcgfzkuh3vouyejjnye",
        ),
    ] {
        let dir = tmp.path().join(format!("d{n}"));
        std::fs::create_dir(&dir).unwrap();
        for i in 0..n {
            std::fs::write(dir.join(format!("key-{i}")), format!("value-{i}")).unwrap();
        }
        let car = tmp.path().join(format!("o{n}.car"));
        let out = cli.ok(&[
            "import",
            dir.to_str().unwrap(),
            "--car",
            car.to_str().unwrap(),
            "--bucket-size",
            &mbs.to_string(),
            "--bulk",
            "always",
            "--json",
        ]);
        let v = json(&out);
        assert_eq!(v["root"], root);
        assert_eq!(v["files"], n);
    }
}

#[test]
fn bulk_and_incremental_imports_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let data = tmp.path().join("data");
    let bytes = make_tree(&data, 700, 9, 3000);
    let d = data.to_str().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    for extra in [&[][..], &["--bucket-size", "1"]] {
        let mut roots = Vec::new();
        for mode in ["always", "never", "auto"] {
            let store = p(&format!("{mode}-{}.redb", extra.len()));
            let args = [
                &["import", d, "--store", &store, "--json", "--bulk", mode][..],
                extra,
            ]
            .concat();
            let v = json(&cli.ok(&args));
            assert_eq!(v["files"], 700);
            assert_eq!(v["bytes"], bytes);
            roots.push(v["root"].as_str().unwrap().to_owned());
        }
        assert_eq!(roots[0], roots[1], "{extra:?}");
        assert_eq!(roots[0], roots[2], "{extra:?}");
    }
    // The bulk-built store exports back to the same files.
    let store = p("always-0.redb");
    let root = json(&cli.ok(&["import", d, "--store", &store, "--json", "--bulk", "always"]))
        ["root"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = tmp.path().join("out");
    cli.ok(&["export", &root, out.to_str().unwrap(), "--store", &store]);
    assert_eq!(read_tree(&out), read_tree(&data));
}

#[test]
fn bulk_import_encrypts_values() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let data = tmp.path().join("data");
    make_tree(&data, 50, 3, 500);
    let key = tmp.path().join("key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let store = tmp.path().join("s.redb");
    let s = store.to_str().unwrap();
    let enc = ["--encrypt-key-file", key.to_str().unwrap()];
    let root = cli.ok(&[
        &[
            "import",
            data.to_str().unwrap(),
            "--store",
            s,
            "--bulk",
            "always",
        ][..],
        &enc,
    ]
    .concat());
    let out = tmp.path().join("out");
    cli.ok(&[
        &["export", root.trim(), out.to_str().unwrap(), "--store", s][..],
        &enc,
    ]
    .concat());
    assert_eq!(read_tree(&out), read_tree(&data));
    // Without the key the values are sealed bytes, not the files.
    let plain = tmp.path().join("plain");
    cli.ok(&["export", root.trim(), plain.to_str().unwrap(), "--store", s]);
    assert_ne!(read_tree(&plain), read_tree(&data));
}

#[test]
fn bulk_always_refuses_direct_sharded_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let data = tmp.path().join("data");
    make_tree(&data, 3, 1, 100);
    let store = tmp.path().join("s.redb");
    cli.fails(
        &[
            "import",
            data.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
            "--layout",
            "sharded",
            "--group",
            "g",
            "--bulk",
            "always",
        ],
        "--bulk always",
    );
}

#[test]
fn bulk_sharded_import_gives_the_converter_root() {
    let golden =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/sharded");
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden.join("sharded_cases.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    for name in ["converted_from_hamt_zarr3", "converted_from_hamt_zarr2"] {
        let c = cases["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap();
        let hamt_car = golden.join(c["hamt_car"].as_str().unwrap());
        let dir = tmp.path().join(name);
        cli.ok(&[
            "export",
            "--car",
            hamt_car.to_str().unwrap(),
            dir.to_str().unwrap(),
        ]);
        let store = tmp.path().join(format!("{name}.redb"));
        let s = store.to_str().unwrap();
        let got = cli.ok(&[
            "import",
            dir.to_str().unwrap(),
            "--layout",
            "sharded",
            "--chunks-per-shard",
            "3",
            "--store",
            s,
            "--bulk",
            "always",
        ]);
        assert_eq!(got.trim(), c["root"].as_str().unwrap(), "{name}");
        // No HAMT node reached the store.
        cli.fails(
            &["stat", c["hamt_root"].as_str().unwrap(), "--store", s],
            "not found",
        );
    }
}

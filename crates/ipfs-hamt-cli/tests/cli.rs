//! End-to-end tests of the `ipfs-hamt` binary.

use sha2::Digest as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use futures::TryStreamExt;
use ipfs_hamt::store::CarStore;
use ipfs_hamt::{HamtConfig, Reader};

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ipfs-hamt"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run ipfs-hamt")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with one clear line on stderr.
fn fails(args: &[&str], needle: &str) {
    let out = run(args);
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(needle),
        "{args:?}: stderr {err:?} lacks {needle:?}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

/// Writes every key of a golden CAR as a file under `dir`.
async fn extract(car: &Path, dir: &Path) -> Vec<String> {
    let store = CarStore::open(car).unwrap();
    let root = store.roots()[0];
    let r = Reader::new(Arc::new(store), root, HamtConfig::default()).unwrap();
    let keys: Vec<String> = r.keys().try_collect().await.unwrap();
    for k in &keys {
        let p = dir.join(k);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, r.get(k).await.unwrap().unwrap()).unwrap();
    }
    keys
}

#[tokio::test]
async fn import_of_py_hamt_zarr_dataset_gives_its_root() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut keys = extract(&golden().join("cars/zarr_plain.car"), &data).await;
    keys.sort();
    let car = tmp.path().join("out.car");
    let car_s = car.to_str().unwrap();
    let root = ok(&["import", data.to_str().unwrap(), "--car", car_s]);
    assert_eq!(
        root.trim(),
        "bafyr4idjgsj3jxhibji7vp6cfjyk45pghumtvul5pxqcpissir4smmqgca"
    );
    // Global options go before or after the subcommand.
    let listed = ok(&["ls", "--car", car_s]);
    assert_eq!(listed.lines().collect::<Vec<_>>(), keys);
    assert_eq!(ok(&["--car", car_s, "ls"]), listed);
    let temps = ok(&["ls", "temperature/c/0/", "--car", car_s]);
    assert_eq!(temps.lines().count(), 8);
    let meta = ok(&["get", "--car", car_s, "lat/zarr.json"]);
    assert_eq!(
        meta.as_bytes(),
        std::fs::read(data.join("lat/zarr.json")).unwrap()
    );
    let part = ok(&["get", "--car", car_s, "lat/zarr.json", "--range", "2-5"]);
    assert_eq!(part.as_bytes(), &meta.as_bytes()[2..6]);
    let stat: serde_json::Value =
        serde_json::from_str(&ok(&["stat", "--json", "--car", car_s])).unwrap();
    assert_eq!(stat["keys"], 40);
    assert_eq!(stat["nodes"], 1);
    assert!(ok(&["stat", "--car", car_s]).contains("keys       40"));
}

#[test]
fn import_matches_golden_hamt_cases() {
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
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        for i in 0..n {
            std::fs::write(dir.join(format!("key-{i}")), format!("value-{i}")).unwrap();
        }
        let car = tmp.path().join("o.car");
        let out = ok(&[
            "import",
            dir.to_str().unwrap(),
            "--car",
            car.to_str().unwrap(),
            "--bucket-size",
            &mbs.to_string(),
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["root"], root);
        assert_eq!(v["files"], n);
    }
}

#[test]
fn large_file_round_trips_as_unixfs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(dir.join("sub/big.bin"), &big).unwrap();
    std::fs::write(dir.join("small"), b"s").unwrap();
    let car = tmp.path().join("o.car");
    let car_s = car.to_str().unwrap();
    ok(&["import", dir.to_str().unwrap(), "--car", car_s]);
    let outf = tmp.path().join("big.out");
    ok(&[
        "get",
        "sub/big.bin",
        "-o",
        outf.to_str().unwrap(),
        "--car",
        car_s,
    ]);
    assert_eq!(std::fs::read(&outf).unwrap(), big);
    let tail = bin()
        .args(["get", "sub/big.bin", "--range", "-10", "--car", car_s])
        .output()
        .unwrap();
    assert_eq!(tail.stdout, &big[big.len() - 10..]);
    let mid = bin()
        .args([
            "get",
            "sub/big.bin",
            "--range",
            "1048570-1048590",
            "--car",
            car_s,
        ])
        .output()
        .unwrap();
    assert_eq!(mid.stdout, &big[1048570..=1048590]);
}

#[test]
fn bad_input_gives_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let car = tmp.path().join("o.car");
    let car_s = car.to_str().unwrap();
    fails(
        &["import", "/nonexistent-dir", "--car", car_s],
        "/nonexistent-dir",
    );
    fails(&["ls"], "--car");
    fails(&["ls", "--car", "/nonexistent.car"], "/nonexistent.car");
    let dir = tmp.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a"), b"1").unwrap();
    ok(&["import", dir.to_str().unwrap(), "--car", car_s]);
    fails(&["get", "missing", "--car", car_s], "key not found");
    fails(
        &["get", "a", "--range", "9-2", "--car", car_s],
        "invalid range",
    );
    fails(
        &[
            "import",
            dir.to_str().unwrap(),
            "--car",
            car_s,
            "--bucket-size",
            "0",
        ],
        "bucket-size",
    );
    // A corrupt CAR: flip a byte of the last block.
    let mut bytes = std::fs::read(&car).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&car, &bytes).unwrap();
    fails(&["ls", "--car", car_s], "verification");
    std::fs::write(&car, b"garbage").unwrap();
    fails(&["stat", "--car", car_s], "corrupt");
}

/// A sharded root (py-hamt's ShardedZarrStore, v1 and v2) works with every read and write
/// command, through the same dataset interface as a HAMT: listings, values, stat, verify,
/// export, CAR round trips (byte for byte), put/rm, diff.
#[test]
fn sharded_roots_work_with_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("blocks.redb");
    let s = store.to_str().unwrap();
    let cases: serde_json::Value = serde_json::from_slice(
        &std::fs::read(golden().join("sharded/sharded_cases.json")).unwrap(),
    )
    .unwrap();
    for (name, version) in [
        ("v1", "sharded_zarr_v1"),
        ("v2_group0", "sharded_zarr_v2"),
        ("v2_api", "sharded_zarr_v2"),
    ] {
        let case = cases["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap();
        let car = golden().join(format!("sharded/cars/{name}.car"));
        let c = car.to_str().unwrap();
        let mut want: Vec<String> = serde_json::from_value(case["list_order"].clone()).unwrap();
        want.sort();
        let listed: Vec<String> = ok(&["ls", "--car", c])
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(listed, want, "{name}: ls");
        for (key, read) in case["reads"].as_object().unwrap() {
            let Some(sha) = read["get"].get("sha256").and_then(|v| v.as_str()) else {
                continue;
            };
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_ipfs-hamt"))
                .args(["get", "--car", c, key])
                .output()
                .unwrap();
            assert!(out.status.success(), "{name}: get {key}");
            let got: String = sha2::Sha256::digest(&out.stdout)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(got, sha, "{name}: get {key}");
        }
        let stat = ok(&["stat", "--car", c]);
        assert!(stat.contains(&format!("sharded ({version})")), "{stat}");
        let stat_json: serde_json::Value =
            serde_json::from_str(&ok(&["stat", "--car", c, "--json"])).unwrap();
        assert_eq!(stat_json["keys"].as_u64().unwrap() as usize, want.len());
        ok(&["verify", "--car", c]);
        let out = tmp.path().join(format!("out-{name}"));
        ok(&["export", "--car", c, out.to_str().unwrap()]);
        let root = ok(&["car", "import", c, "--store", s]).trim().to_string();
        assert_eq!(root, case["root"].as_str().unwrap());
        ok(&["verify", &root, "--store", s]);
        let car_out = tmp.path().join(format!("{name}.car"));
        ok(&[
            "car",
            "export",
            &root,
            car_out.to_str().unwrap(),
            "--store",
            s,
        ]);
        assert_eq!(
            std::fs::read(&car_out).unwrap(),
            std::fs::read(&car).unwrap(),
            "{name}: CAR bytes"
        );
        assert_eq!(ok(&["diff", &root, &root, "--store", s]).trim(), "");
    }
    // put and rm on a v2 store: metadata keys, then a chunk; diff shows exactly that.
    let root = cases["cases"][0]["root"].as_str().unwrap();
    assert_eq!(cases["cases"][0]["name"], "v2_group0");
    let note = tmp.path().join("note");
    std::fs::write(&note, b"{\"note\": 1}").unwrap();
    let r1 = ok(&[
        "put",
        root,
        "0/temp/.zattrs",
        note.to_str().unwrap(),
        "--store",
        s,
    ])
    .trim()
    .to_string();
    let r2 = ok(&["rm", &r1, "0/temp/c/0/0/0", "--store", s])
        .trim()
        .to_string();
    let diff = ok(&["diff", root, &r2, "--store", s]);
    assert!(
        diff.contains("0/temp/.zattrs") && diff.contains("0/temp/c/0/0/0"),
        "{diff}"
    );
    assert_eq!(diff.lines().count(), 2, "{diff}");
    // A chunk key outside the array is refused, not dropped silently.
    fails(
        &[
            "put",
            root,
            "0/temp/c/9/0/0",
            note.to_str().unwrap(),
            "--store",
            s,
        ],
        "out of bounds",
    );
}

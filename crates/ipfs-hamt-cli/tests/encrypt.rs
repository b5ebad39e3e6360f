//! `--encrypt-key-file` / `--header` on import, export and get (py-hamt's encrypted store).

use std::path::PathBuf;
use std::process::{Command, Output};

use sha2::Digest as _;

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ipfs-hamt"))
        .args(args)
        .output()
        .expect("run ipfs-hamt")
}

fn ok(args: &[&str]) -> Vec<u8> {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn fails(args: &[&str], needle: &str) {
    let out = run(args);
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.contains(KEY_HEX) && !err.contains("panicked"), "{err}");
}

fn sha(b: &[u8]) -> String {
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn zarr_case(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(golden().join("zarr_cases.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
        .clone()
}

#[test]
fn reads_and_writes_py_hamt_encrypted_zarr() {
    let tmp = tempfile::tempdir().unwrap();
    let raw_key = tmp.path().join("raw.key");
    std::fs::write(&raw_key, (0u8..32).collect::<Vec<_>>()).unwrap();
    let hex_key = tmp.path().join("hex.key");
    std::fs::write(&hex_key, format!("{KEY_HEX}\n")).unwrap();
    let (raw_s, hex_s) = (raw_key.to_str().unwrap(), hex_key.to_str().unwrap());
    let golden_car = golden().join("cars/zarr_encrypted.car");
    let gcar = golden_car.to_str().unwrap();
    let case = zarr_case("zarr_encrypted");
    let dec = ["--encrypt-key-file", raw_s, "--header", "golden-header"];

    // get: metadata decrypts (raw and hex key files), a range applies to the plaintext.
    let meta = ok(&[&["get", "--car", gcar, "temperature/zarr.json"][..], &dec].concat());
    let got: serde_json::Value = serde_json::from_slice(&meta).unwrap();
    assert_eq!(got, case["metadata"]["temperature/zarr.json"]);
    let meta2 = ok(&[
        "get",
        "--car",
        gcar,
        "temperature/zarr.json",
        "--encrypt-key-file",
        hex_s,
        "--header",
        "golden-header",
    ]);
    assert_eq!(meta, meta2);
    let part = ok(&[
        &[
            "get",
            "--car",
            gcar,
            "temperature/zarr.json",
            "--range",
            "-7",
        ][..],
        &dec,
    ]
    .concat());
    assert_eq!(part, &meta[meta.len() - 7..]);
    // Without the key: the stored (sealed) bytes.
    let sealed = ok(&["get", "--car", gcar, "temperature/zarr.json"]);
    assert_eq!(sealed.len(), meta.len() + 40);

    // export: every chunk matches py-hamt's sha256 of the plaintext.
    let out = tmp.path().join("out");
    ok(&[&["export", "--car", gcar, out.to_str().unwrap()][..], &dec].concat());
    for (key, want) in case["chunk_sha256"].as_object().unwrap() {
        let data = std::fs::read(out.join(key)).unwrap();
        assert_eq!(&sha(&data), want.as_str().unwrap(), "{key}");
    }

    // import re-encrypts under fresh nonces: a new root each time, the same plaintext.
    let car1 = tmp.path().join("1.car");
    let car2 = tmp.path().join("2.car");
    let root1 = ok(&[
        &[
            "import",
            out.to_str().unwrap(),
            "--car",
            car1.to_str().unwrap(),
        ][..],
        &dec,
    ]
    .concat());
    let root2 = ok(&[
        &[
            "import",
            out.to_str().unwrap(),
            "--car",
            car2.to_str().unwrap(),
        ][..],
        &dec,
    ]
    .concat());
    assert_ne!(root1, root2);
    let c1 = car1.to_str().unwrap();
    let chunk = ok(&[&["get", "--car", c1, "temperature/c/1/0/2"][..], &dec].concat());
    assert_eq!(
        sha(&chunk),
        case["chunk_sha256"]["temperature/c/1/0/2"]
            .as_str()
            .unwrap()
    );
    let stored = ok(&["get", "--car", c1, "temperature/c/1/0/2"]);
    assert_eq!(stored.len(), chunk.len() + 40);
    assert!(!stored.windows(16).any(|w| w == &chunk[100..116]));
    let back = tmp.path().join("back");
    ok(&[&["export", "--car", c1, back.to_str().unwrap()][..], &dec].concat());
    assert_eq!(
        std::fs::read(back.join("zarr.json")).unwrap(),
        std::fs::read(out.join("zarr.json")).unwrap()
    );

    // Wrong header, wrong key, bad key files, --header alone: one clear line, no key bytes.
    fails(
        &[
            "get",
            "--car",
            c1,
            "zarr.json",
            "--encrypt-key-file",
            raw_s,
            "--header",
            "nope",
        ],
        "decryption failed",
    );
    let wrong = tmp.path().join("wrong.key");
    std::fs::write(&wrong, [9u8; 32]).unwrap();
    fails(
        &[
            "export",
            "--car",
            c1,
            tmp.path().join("x").to_str().unwrap(),
            "--encrypt-key-file",
            wrong.to_str().unwrap(),
            "--header",
            "golden-header",
        ],
        "decryption failed",
    );
    let short = tmp.path().join("short.key");
    std::fs::write(&short, b"0123").unwrap();
    fails(
        &[
            "get",
            "--car",
            c1,
            "zarr.json",
            "--encrypt-key-file",
            short.to_str().unwrap(),
        ],
        "32 raw bytes or 64 hex",
    );
    fails(
        &[
            "get",
            "--car",
            c1,
            "zarr.json",
            "--encrypt-key-file",
            "/nonexistent.key",
        ],
        "/nonexistent.key",
    );
    fails(
        &["get", "--car", c1, "zarr.json", "--header", "h"],
        "--encrypt-key-file",
    );
}

#[test]
fn encrypted_import_put_get_on_the_disk_store() {
    let tmp = tempfile::tempdir().unwrap();
    let st = tmp.path().join("blocks.redb");
    let st = st.to_str().unwrap();
    let keyf = tmp.path().join("k");
    std::fs::write(&keyf, format!("{KEY_HEX}\n")).unwrap();
    let k = keyf.to_str().unwrap();
    let dir = tmp.path().join("d");
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("a/x"), b"hello x").unwrap();
    let enc = ["--encrypt-key-file", k, "--header", "h1", "--store", st];
    let root =
        String::from_utf8(ok(&[&["import", dir.to_str().unwrap()][..], &enc].concat())).unwrap();
    let root = root.trim();
    let v = tmp.path().join("v");
    std::fs::write(&v, b"new value").unwrap();
    let root2 = String::from_utf8(ok(
        &[&["put", root, "b", v.to_str().unwrap()][..], &enc].concat()
    ))
    .unwrap();
    let root2 = root2.trim();
    assert_eq!(ok(&[&["get", root2, "b"][..], &enc].concat()), b"new value");
    assert_eq!(ok(&[&["get", root2, "a/x"][..], &enc].concat()), b"hello x");
    assert_eq!(ok(&["get", root2, "b", "--store", st]).len(), 9 + 40);
    fails(
        &[
            "get",
            root2,
            "b",
            "--store",
            st,
            "--encrypt-key-file",
            k,
            "--header",
            "h2",
        ],
        "decryption failed",
    );
}

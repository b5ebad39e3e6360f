//! The CLI never prints an encryption key: not on success (`import`, `put`, `get`, `ls`,
//! `export`, `--json` output), not in the errors for a wrong key or header, and not when a key
//! file is malformed (nothing of its contents is echoed).

mod common;

use std::path::Path;

use common::Cli;

const KEY: [u8; 32] = [
    0xa7, 0x3c, 0x91, 0x5e, 0x0b, 0xd2, 0x44, 0xf8, 0x6a, 0x19, 0xc3, 0x7e, 0x25, 0xb0, 0x8d, 0x52,
    0xe9, 0x06, 0x7b, 0x33, 0xca, 0x4f, 0x98, 0x1d, 0x60, 0xb7, 0x2e, 0xf5, 0x83, 0x0c, 0xd9, 0x41,
];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Fails if `out` (stdout or stderr bytes) holds any 16-digit run of the key's hex (any case)
/// or any 8 bytes of the raw key.
fn assert_no_key(what: &str, out: &[u8]) {
    let text = String::from_utf8_lossy(out).to_lowercase();
    let h = hex(&KEY);
    for w in h.as_bytes().windows(16) {
        let w = std::str::from_utf8(w).unwrap();
        assert!(!text.contains(w), "{what}: output shows key hex {w}");
    }
    assert!(
        !out.windows(8).any(|w| KEY.windows(8).any(|k| k == w)),
        "{what}: output shows raw key bytes"
    );
}

#[test]
fn cli_output_and_errors_never_show_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let store = tmp.path().join("blocks.redb");
    let st = s(&store);
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("a")).unwrap();
    std::fs::write(data.join("a/zarr.json"), b"{}").unwrap();
    std::fs::write(data.join("a/0"), vec![1u8; 5000]).unwrap();

    let raw_key = tmp.path().join("raw.key");
    std::fs::write(&raw_key, KEY).unwrap();
    let hex_key = tmp.path().join("hex.key");
    std::fs::write(&hex_key, format!("{}\n", hex(&KEY))).unwrap();

    let mut runs = 0;
    let mut run = |args: &[&str], must_succeed: bool| {
        let out = cli.run(args);
        assert_eq!(
            out.status.success(),
            must_succeed,
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_no_key(&format!("{args:?} stdout"), &out.stdout);
        assert_no_key(&format!("{args:?} stderr"), &out.stderr);
        runs += 1;
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };

    for (n, key) in [&raw_key, &hex_key].into_iter().enumerate() {
        let enc = ["--encrypt-key-file", s(key), "--header", "h", "--store", st];
        let root = run(&[&["import", s(&data)][..], &enc].concat(), true);
        run(&[&["import", s(&data), "--json"][..], &enc].concat(), true);
        run(&[&["get", &root, "a/zarr.json"][..], &enc].concat(), true);
        run(&["ls", &root, "--store", st], true);
        run(&["stat", &root, "--store", st], true);
        let out = tmp.path().join(format!("out-{n}"));
        run(&[&["export", &root, s(&out)][..], &enc].concat(), true);
        let v = data.join("a/0");
        run(&[&["put", &root, "b", s(&v)][..], &enc].concat(), true);

        // Wrong header, wrong key.
        let wrong_header = ["--encrypt-key-file", s(key), "--header", "x", "--store", st];
        run(
            &[&["get", &root, "a/zarr.json"][..], &wrong_header].concat(),
            false,
        );
        let mut other = KEY;
        other[31] ^= 0x80;
        let other_file = tmp.path().join("other.key");
        std::fs::write(&other_file, other).unwrap();
        let wrong_key = [
            "--encrypt-key-file",
            s(&other_file),
            "--header",
            "h",
            "--store",
            st,
        ];
        run(
            &[&["get", &root, "a/zarr.json"][..], &wrong_key].concat(),
            false,
        );
        run(
            &[&["export", &root, s(&tmp.path().join("x"))][..], &wrong_key].concat(),
            false,
        );
    }

    // Malformed key files that hold almost all of the key: nothing of them is echoed.
    let h = hex(&KEY);
    let bad: Vec<Vec<u8>> = vec![
        h.as_bytes()[..63].to_vec(),
        format!("{}g\n", &h[..63]).into_bytes(),
        format!("{h}00\n").into_bytes(),
        format!("{h} junk\n").into_bytes(),
        format!("key = \"{h}\"\n").into_bytes(),
        KEY[..31].to_vec(),
        [&KEY[..], &[0u8]].concat(),
    ];
    for (i, contents) in bad.iter().enumerate() {
        let f = tmp.path().join(format!("bad{i}.key"));
        std::fs::write(&f, contents).unwrap();
        run(
            &[
                "import",
                s(&data),
                "--encrypt-key-file",
                s(&f),
                "--store",
                st,
            ],
            false,
        );
    }
    assert!(runs > 20);
}

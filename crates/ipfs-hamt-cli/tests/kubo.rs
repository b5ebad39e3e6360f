//! The CLI against a real IPFS node (`IPFS_RPC_URL`, `IPFS_GATEWAY_URL`; scripts/test.sh starts
//! one): `--kubo`/`--gateway` (and their environment variables) on ordinary commands, `push`
//! and `pull`. Without the node the test prints "skipped".

mod common;

use std::path::Path;

use common::{make_tree, noise, read_tree, Cli};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn push_pull_and_commands_through_the_node() {
    let (Ok(rpc), Ok(gw)) = (
        std::env::var("IPFS_RPC_URL"),
        std::env::var("IPFS_GATEWAY_URL"),
    ) else {
        println!("push/pull: skipped (IPFS_RPC_URL / IPFS_GATEWAY_URL not set)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let data = tmp.path().join("data");
    make_tree(&data, 40, 3, 9_000);
    std::fs::write(data.join("big.bin"), noise(5, 2_200_000)).unwrap();
    let a = tmp.path().join("a.redb");
    let b = tmp.path().join("b.redb");
    let root = cli
        .ok(&["import", s(&data), "--store", s(&a)])
        .trim()
        .to_string();

    // push: every block to the node, pinned.
    let pushed = cli.ok(&[
        "push",
        &root,
        "--store",
        s(&a),
        "--kubo",
        &rpc,
        "--gateway",
        &gw,
    ]);
    assert_eq!(pushed.trim(), root);
    // pull into an empty store: every block, verified; the store then verifies.
    let pulled = cli.ok(&[
        "pull",
        &root,
        "--store",
        s(&b),
        "--kubo",
        &rpc,
        "--gateway",
        &gw,
    ]);
    assert_eq!(pulled.trim(), root);
    cli.ok(&["verify", &root, "--store", s(&b)]);
    let out = tmp.path().join("out");
    cli.ok(&["export", &root, s(&out), "--store", s(&b)]);
    assert_eq!(read_tree(&out), read_tree(&data));
    // A second pull finds everything present.
    cli.ok(&["pull", &root, "--store", s(&b), "--kubo", &rpc]);

    // Ordinary commands on the node, options from the environment.
    let ls = cli
        .cmd()
        .args(["ls", &root])
        .env("IPFS_HAMT_KUBO", &rpc)
        .env("IPFS_HAMT_GATEWAY", &gw)
        .output()
        .unwrap();
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ls.stdout).lines().count(), 41);
    // Gateway only (no RPC): reads work.
    let got = cli.ok(&[
        "get",
        &root,
        "d0/file-0.bin",
        "--gateway",
        &gw,
        "-o",
        s(&tmp.path().join("v")),
    ]);
    assert!(got.is_empty());
    assert_eq!(
        std::fs::read(tmp.path().join("v")).unwrap(),
        std::fs::read(data.join("d0/file-0.bin")).unwrap()
    );
    // Writes through the node give the same roots as on disk.
    let on_node = cli.ok(&["import", s(&data), "--kubo", &rpc, "--gateway", &gw]);
    assert_eq!(on_node.trim(), root);
    let new_disk = cli.ok(&["rm", &root, "big.bin", "--store", s(&a)]);
    let new_node = cli.ok(&["rm", &root, "big.bin", "--kubo", &rpc, "--gateway", &gw]);
    assert_eq!(new_disk, new_node);
    cli.ok(&["verify", new_node.trim(), "--kubo", &rpc, "--gateway", &gw]);

    // Node options: token, headers, timeout, concurrency.
    cli.ok(&[
        "ls",
        &root,
        "--kubo",
        &rpc,
        "--gateway",
        &gw,
        "--kubo-token",
        "t0k",
        "--kubo-header",
        "X-Test: 1",
        "--kubo-timeout",
        "30",
        "--kubo-concurrency",
        "4",
    ]);
    cli.fails(
        &["ls", &root, "--kubo", &rpc, "--kubo-header", "no-colon"],
        "expected NAME:VALUE",
    );
    cli.fails(
        &["ls", &root, "--kubo", &rpc, "--kubo-header", "bad name: v"],
        "invalid Kubo configuration",
    );

    // Clear errors.
    cli.fails(&["push", &root, "--store", s(&a)], "needs an IPFS node");
    cli.fails(
        &[
            "import",
            s(&data),
            "--car",
            s(&tmp.path().join("x.car")),
            "--kubo",
            &rpc,
        ],
        "not both",
    );
}

/// A sharded root (with a value over 1 MiB, stored as UnixFS) pushed to the node, pulled into
/// an empty store, verified and read through the gateway: the same commands as a HAMT.
#[test]
fn sharded_push_pull_and_read_through_the_node() {
    let (Ok(rpc), Ok(gw)) = (
        std::env::var("IPFS_RPC_URL"),
        std::env::var("IPFS_GATEWAY_URL"),
    ) else {
        println!("sharded push/pull: skipped (IPFS_RPC_URL / IPFS_GATEWAY_URL not set)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("a/c/0")).unwrap();
    std::fs::write(
        data.join("a/zarr.json"),
        br#"{"zarr_format": 3, "node_type": "array", "shape": [4, 2], "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, 1]}}}"#,
    )
    .unwrap();
    std::fs::write(
        data.join("zarr.json"),
        br#"{"zarr_format": 3, "node_type": "group"}"#,
    )
    .unwrap();
    for i in 0..4 {
        std::fs::create_dir_all(data.join(format!("a/c/{i}"))).unwrap();
        std::fs::write(data.join(format!("a/c/{i}/0")), noise(i, 1000)).unwrap();
    }
    std::fs::write(data.join("a/c/3/1"), noise(9, 1_500_000)).unwrap();
    let a = tmp.path().join("a.redb");
    let b = tmp.path().join("b.redb");
    let root = cli
        .ok(&[
            "import",
            s(&data),
            "--layout",
            "sharded",
            "--chunks-per-shard",
            "3",
            "--store",
            s(&a),
        ])
        .trim()
        .to_string();
    let node = ["--kubo", rpc.as_str(), "--gateway", gw.as_str()];
    let mut push = vec!["push", root.as_str(), "--store", s(&a)];
    push.extend(node);
    assert_eq!(cli.ok(&push).trim(), root);
    let mut pull = vec!["pull", root.as_str(), "--store", s(&b)];
    pull.extend(node);
    assert_eq!(cli.ok(&pull).trim(), root);
    cli.ok(&["verify", &root, "--store", s(&b)]);
    let out = tmp.path().join("out");
    let mut export = vec!["export", root.as_str(), s(&out)];
    export.extend(node);
    cli.ok(&export);
    assert_eq!(read_tree(&out), read_tree(&data));
}

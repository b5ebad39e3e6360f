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

//! End-to-end tests of every command on the embedded disk store.

mod common;

use std::path::Path;

use common::{make_tree, noise, read_tree, Cli};
use ipfs_hamt::store::{BlockStore, CarStore, DiskStore};
use ipfs_hamt::Cid;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn every_command_on_a_disk_store() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let data = tmp.path().join("data");
    make_tree(&data, 60, 7, 20_000);
    let big = noise(99, 2_600_000); // a UnixFS value (over 1 MiB)
    std::fs::write(data.join("big.bin"), &big).unwrap();
    std::fs::write(data.join("empty"), b"").unwrap();
    let store = tmp.path().join("s/blocks.redb");
    let st = s(&store);

    // import: --json for scripts, global option before or after the subcommand.
    let v: serde_json::Value =
        serde_json::from_str(&cli.ok(&["import", s(&data), "--store", st, "--json"])).unwrap();
    let root = v["root"].as_str().unwrap().to_string();
    assert_eq!(v["files"], 62);
    assert_eq!(v["store"], st);
    assert_eq!(cli.ok(&["--store", st, "import", s(&data)]).trim(), root);
    let r = root.as_str();

    // ls, with and without prefix; options anywhere.
    let keys = cli.ok(&["ls", r, "--store", st]);
    assert_eq!(keys.lines().count(), 62);
    let mut sorted: Vec<&str> = keys.lines().collect();
    sorted.sort_unstable();
    assert_eq!(sorted, keys.lines().collect::<Vec<_>>());
    let d3 = cli.ok(&["--store", st, "ls", r, "d3/"]);
    assert!(d3.lines().count() >= 8);
    assert!(d3.lines().all(|k| k.starts_with("d3/")));

    // get: stdout, -o, --range.
    let small = std::fs::read(data.join("d1/file-1.bin")).unwrap();
    let out = cli
        .cmd()
        .args(["get", r, "d1/file-1.bin", "--store", st])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, small);
    let o = tmp.path().join("big.out");
    cli.ok(&["--store", st, "get", r, "big.bin", "-o", s(&o)]);
    assert_eq!(std::fs::read(&o).unwrap(), big);
    let part = cli
        .cmd()
        .args([
            "get",
            "--store",
            st,
            r,
            "big.bin",
            "--range",
            "1048570-1048600",
        ])
        .output()
        .unwrap();
    assert_eq!(part.stdout, &big[1_048_570..=1_048_600]);

    // export: byte-identical.
    let exp = tmp.path().join("exported");
    cli.ok(&["export", r, s(&exp), "--store", st]);
    assert_eq!(read_tree(&exp), read_tree(&data));

    // stat.
    let stat: serde_json::Value =
        serde_json::from_str(&cli.ok(&["stat", r, "--json", "--store", st])).unwrap();
    assert_eq!(stat["keys"], 62);
    assert_eq!(stat["root"], r);
    assert!(cli
        .ok(&["stat", r, "--store", st])
        .contains("keys       62"));

    // put / rm print the new root; the old root is unchanged.
    let newval = tmp.path().join("newval");
    std::fs::write(&newval, b"fresh").unwrap();
    let r2 = cli.ok(&["put", r, "added/key", s(&newval), "--store", st]);
    let r2 = r2.trim();
    assert_ne!(r2, r);
    let r3 = cli.ok(&["--store", st, "put", r2, "d1/file-1.bin", s(&newval)]);
    let r3 = r3.trim();
    let r4 = cli.ok(&["rm", r3, "d2/file-2.bin", "--store", st]);
    let r4 = r4.trim();
    assert_eq!(cli.ok(&["get", r4, "added/key", "--store", st]), "fresh");
    assert_eq!(cli.ok(&["ls", r, "--store", st]).lines().count(), 62);
    assert_eq!(cli.ok(&["ls", r4, "--store", st]).lines().count(), 62);
    // Removing what was added gives the old root back (canonical trees).
    let back = cli.ok(&["rm", r2, "added/key", "--store", st]);
    assert_eq!(back.trim(), r);

    // diff: text and JSON.
    let d = cli.ok(&["diff", r, r4, "--store", st]);
    assert_eq!(
        d.lines().collect::<Vec<_>>(),
        [
            "added   added/key",
            "changed d1/file-1.bin",
            "removed d2/file-2.bin"
        ]
    );
    let dj: serde_json::Value =
        serde_json::from_str(&cli.ok(&["--store", st, "diff", r4, r, "--json"])).unwrap();
    let arr = dj.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    assert_eq!(arr[0]["key"], "added/key");
    assert_eq!(arr[0]["change"], "removed");
    assert_eq!(arr[2]["change"], "added");
    assert!(arr[1]["old"].is_string() && arr[1]["new"].is_string());
    assert_eq!(cli.ok(&["diff", r, r, "--store", st]), "");

    // verify one root, and the whole store.
    let vr = cli.ok(&["verify", r4, "--store", st]);
    assert!(vr.contains("0 missing, 0 corrupt"), "{vr}");
    let vj: serde_json::Value =
        serde_json::from_str(&cli.ok(&["verify", r, "--json", "--store", st])).unwrap();
    assert_eq!(vj["ok"], true);
    assert_eq!(vj["values"], 60 + 1 + 4); // 60 files, the empty one, big: 3 leaves + 1 node
    assert!(cli
        .ok(&["verify", "--all", "--store", st])
        .contains("0 corrupt"));

    // car export / car import into another store (via IPFS_HAMT_STORE).
    let car = tmp.path().join("t.car");
    cli.ok(&["car", "export", r4, s(&car), "--store", st]);
    let c = CarStore::open(&car).unwrap();
    assert_eq!(c.roots(), vec![r4.parse::<Cid>().unwrap()]);
    let imported = cli.ok(&["car", "import", s(&car)]);
    assert_eq!(imported.trim(), r4);
    assert!(cli.env_store.exists());
    assert!(cli.ok(&["verify", r4]).contains("0 missing"));
    let exp2 = tmp.path().join("exported2");
    cli.ok(&["export", r4, s(&exp2)]);
    assert_eq!(std::fs::read(exp2.join("added/key")).unwrap(), b"fresh");
    assert!(!exp2.join("d2/file-2.bin").exists());
    // The CAR reads directly too (its root is the default).
    assert_eq!(cli.ok(&["ls", "--car", s(&car)]), cli.ok(&["ls", r4]));
    assert_eq!(
        cli.ok(&["--car", s(&car), "ls", r4, "d3/"]),
        cli.ok(&["ls", r4, "d3/"])
    );
    // A lone positional with --car is the root if it parses as a CID, else a prefix.
    assert_eq!(cli.ok(&["ls", r4, "--car", s(&car)]), cli.ok(&["ls", r4]));
    assert_eq!(
        cli.ok(&["ls", "d3/", "--car", s(&car)]),
        cli.ok(&["ls", r4, "d3/"])
    );
    assert_eq!(cli.ok(&["get", r4, "added/key", "--car", s(&car)]), "fresh");
    assert!(cli.ok(&["verify", "--car", s(&car)]).contains("0 corrupt"));
    assert!(cli
        .ok(&["verify", "--all", "--car", s(&car)])
        .contains("0 corrupt"));
    let car_diff = cli.ok(&["diff", r4, r4, "--car", s(&car)]);
    assert_eq!(car_diff, "");
}

#[test]
fn store_from_environment_and_store_flag_precedence() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let data = tmp.path().join("d");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("a"), b"1").unwrap();
    let root = cli.ok(&["import", s(&data)]);
    let root = root.trim();
    assert!(cli.env_store.exists());
    assert_eq!(cli.ok(&["ls", root]), "a\n");
    // --store wins over the environment: the root is not in the other store.
    let other = tmp.path().join("other.redb");
    cli.fails(&["ls", root, "--store", s(&other)], "not found in store");
    // Without IPFS_HAMT_STORE, XDG_DATA_HOME decides.
    let xdg = tmp.path().join("xdg");
    let out = cli
        .cmd()
        .env_remove("IPFS_HAMT_STORE")
        .env("XDG_DATA_HOME", &xdg)
        .args(["import", s(&data)])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(xdg.join("ipfs-hamt/store/FORMAT").exists());
}

/// Flips one byte of `needle` wherever it occurs in the store's segment file (a damaged disk).
fn damage(store: &Path, needle: &[u8]) {
    let store = store.join("segments/00000001.seg");
    let mut file = std::fs::read(&store).unwrap();
    let hits: Vec<usize> = file
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert!(!hits.is_empty(), "block bytes not found in the store file");
    for at in hits {
        file[at + needle.len() / 2] ^= 0x01;
    }
    std::fs::write(&store, &file).unwrap();
}

#[test]
fn verify_finds_corrupt_and_missing_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let data = tmp.path().join("d");
    make_tree(&data, 30, 3, 5_000);
    let victim = noise(12345, 9_000);
    std::fs::write(data.join("victim"), &victim).unwrap();
    let store = tmp.path().join("s.redb");
    let st = s(&store);
    let root = cli.ok(&["import", s(&data), "--store", st]);
    let root = root.trim();
    let good: serde_json::Value =
        serde_json::from_str(&cli.ok(&["verify", root, "--store", st, "--json"])).unwrap();
    let values = good["values"].as_u64().unwrap();
    assert_eq!(values, 31);

    // Corrupt the victim's bytes inside the store file.
    damage(&store, &victim);
    let victim_cid =
        ipfs_hamt::block::cid_of(ipfs_hamt::block::RAW, ipfs_hamt::HashAlg::Blake3, &victim);
    let out = cli.fails(&["verify", root, "--store", st], "verification of");
    assert!(
        out.contains(&format!("corrupt {victim_cid}")),
        "stdout lacks the corrupt block: {out}"
    );
    assert!(out.contains("0 missing, 1 corrupt"), "{out}");
    let out = cli.fails(&["verify", "--all", "--store", st], "failed verification");
    assert!(out.contains(&format!("corrupt {victim_cid}")), "{out}");
    cli.fails(
        &["get", root, "victim", "--store", st],
        "failed verification",
    );
    // Other keys still read.
    assert!(cli
        .run(&["get", root, "d0/file-0.bin", "--store", st])
        .status
        .success());
    let j = cli
        .cmd()
        .args(["verify", root, "--json", "--store", st])
        .output()
        .unwrap();
    assert!(!j.status.success());
    let j: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(j["ok"], false);
    assert_eq!(j["corrupt"][0]["cid"], victim_cid.to_string());

    // Missing blocks: a store that got only the root node (from a partial CAR).
    let root_cid: Cid = root.parse().unwrap();
    let partial = tmp.path().join("partial.car");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let disk = DiskStore::open(&store).unwrap();
        let node = disk.get(&root_cid).await.unwrap();
        let car = CarStore::create(&partial).unwrap();
        car.put_many(vec![ipfs_hamt::Block::verified(root_cid, node).unwrap()])
            .await
            .unwrap();
        car.finish(root_cid).unwrap();
    });
    let other = tmp.path().join("other.redb");
    let so = s(&other);
    assert_eq!(
        cli.ok(&["car", "import", s(&partial), "--store", so])
            .trim(),
        root
    );
    let out = cli.fails(
        &["verify", root, "--store", so],
        &format!("{values} missing"),
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("missing ")).count() as u64,
        values
    );
    // ... yet every block it holds is fine.
    cli.ok(&["verify", "--all", "--store", so]);
    cli.ok(&["ls", root, "--store", so]); // keys live in the node
    cli.fails(&["get", root, "victim", "--store", so], "not found");
}

#[test]
fn errors_are_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let data = tmp.path().join("d");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("a"), b"1").unwrap();
    let store = tmp.path().join("s.redb");
    let st = s(&store);
    let root = cli.ok(&["import", s(&data), "--store", st]);
    let r = root.trim();
    let ghost = "bafyr4igiblokisz6ibzd26qd5v2vg2jfwanvc6d6k443yghouvoocvvxqq";

    cli.fails(&["ls", "--store", st], "missing root CID");
    cli.fails(&["ls", "not-a-cid", "--store", st], "invalid CID");
    cli.fails(&["ls", ghost, "--store", st], "not found in store");
    cli.fails(&["get", r, "--store", st], "missing KEY");
    cli.fails(&["get", r, "nope", "--store", st], "key not found");
    cli.fails(&["rm", r, "nope", "--store", st], "key not found");
    cli.fails(
        &["put", r, "k", "/nonexistent/file", "--store", st],
        "/nonexistent/file",
    );
    cli.fails(
        &["put", ghost, "k", s(&data.join("a")), "--store", st],
        "not found",
    );
    cli.fails(&["diff", r, ghost, "--store", st], "not found");
    cli.fails(&["stat", ghost, "--store", st], "not found");
    cli.fails(&["export", r, "--store", st], "missing DIR");
    cli.fails(
        &["car", "export", ghost, "x.car", "--store", st],
        "not found",
    );
    cli.fails(
        &["car", "import", "/nonexistent.car", "--store", st],
        "/nonexistent.car",
    );
    cli.fails(
        &["import", "/nonexistent-dir", "--store", st],
        "/nonexistent-dir",
    );
    cli.fails(&["frobnicate"], "frobnicate");
    cli.fails(
        &["ls", r, "--store", st, "--car", "x.car"],
        "cannot be used with",
    );
    cli.fails(
        &["get", r, "a", "--range", "x", "--store", st],
        "invalid range",
    );
    cli.fails(
        &["put", r, "k", s(&data.join("a")), "--car", "x.car"],
        "read-only",
    );
    cli.fails(
        &["verify", r, "--all", "--store", st],
        "cannot be used with",
    );
    // A corrupt store file, and a store held by another process.
    let junk = tmp.path().join("junk.redb");
    std::fs::write(&junk, noise(1, 10_000)).unwrap();
    cli.fails(
        &["ls", r, "--store", s(&junk)],
        "not an ipfs-hamt block store",
    );
    let held = DiskStore::open(&store).unwrap();
    cli.fails(&["ls", r, "--store", st], "in use by another process");
    drop(held);
    cli.ok(&["ls", r, "--store", st]);
    // A corrupt CAR is refused by car import.
    let car = tmp.path().join("c.car");
    cli.ok(&["car", "export", r, s(&car), "--store", st]);
    let mut bytes = std::fs::read(&car).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&car, &bytes).unwrap();
    cli.fails(&["car", "import", s(&car), "--store", st], "verification");
    // --help and --version still print normally.
    assert!(cli.ok(&["--help"]).contains("diff"));
    assert!(cli.ok(&["ls", "--help"]).contains("PREFIX"));
}

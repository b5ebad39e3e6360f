//! Pins and garbage collection of the disk store through the CLI: roots are pinned by default
//! and the pin follows updates, so a dataset updated daily and collected stays bounded; a `gc`
//! killed at any moment leaves every pinned root readable and the store verifying; a second
//! process is refused with a message naming the store and the holder.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{make_tree, noise, Cli};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Apparent bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            dir_bytes(&e.path())
        } else {
            m.len()
        };
    }
    n
}

fn segments_bytes(store: &Path) -> u64 {
    dir_bytes(&store.join("segments"))
}

fn pins(cli: &Cli, store: &Path) -> Vec<String> {
    cli.ok(&["pin", "ls", "--store", s(store)])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn pin_commands_and_default_pinning() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let store = tmp.path().join("store");
    let st = s(&store);
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    make_tree(&a, 10, 1, 3000);
    make_tree(&b, 10, 2, 3000);
    let ra = cli.ok(&["import", s(&a), "--store", st]).trim().to_owned();
    let rb = cli
        .ok(&["import", s(&b), "--store", st, "--no-pin"])
        .trim()
        .to_owned();
    assert_eq!(pins(&cli, &store), vec![ra.clone()]);
    // gc removes b (unpinned), keeps a.
    let j: serde_json::Value =
        serde_json::from_str(&cli.ok(&["gc", "--json", "--store", st])).unwrap();
    assert!(j["blocks_freed"].as_u64().unwrap() > 0, "{j}");
    assert!(j["bytes_freed"].as_u64().unwrap() > 0, "{j}");
    cli.ok(&["verify", &ra, "--store", st]);
    cli.fails(&["ls", &rb, "--store", st], "not found");
    // pin rm, then everything goes; pin add of an absent root is refused.
    assert!(cli
        .ok(&["pin", "rm", &ra, "--store", st])
        .contains("unpinned"));
    cli.fails(&["pin", "rm", &ra, "--store", st], "is not pinned");
    let out = cli.ok(&["gc", "--store", st]);
    assert!(out.starts_with("freed "), "{out}");
    cli.fails(&["pin", "add", &ra, "--store", st], "not found");
    assert!(pins(&cli, &store).is_empty());
    let j: serde_json::Value =
        serde_json::from_str(&cli.ok(&["pin", "ls", "--json", "--store", st])).unwrap();
    assert_eq!(j["pins"], serde_json::json!([]));
    // pin add works on a present root.
    let rb = cli
        .ok(&["import", s(&b), "--store", st, "--no-pin"])
        .trim()
        .to_owned();
    cli.ok(&["pin", "add", &rb, "--store", st]);
    assert_eq!(pins(&cli, &store), vec![rb.clone()]);
    cli.ok(&["gc", "--store", st]);
    cli.ok(&["verify", &rb, "--store", st]);
    cli.ok(&["verify", "--all", "--store", st]);
}

#[test]
fn daily_updates_and_gc_keep_the_store_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let store = tmp.path().join("store");
    let st = s(&store);
    let data = tmp.path().join("data");
    // 40 files of 20 KB.
    for i in 0..40u64 {
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join(format!("f{i:02}")), noise(i, 20_000)).unwrap();
    }
    let mut root = cli
        .ok(&["import", s(&data), "--store", st])
        .trim()
        .to_owned();
    cli.ok(&["gc", "--store", st]);
    let initial = segments_bytes(&store);
    let mut grown = initial;
    // Ten days: each replaces 8 of the files (8 x 20 KB new) and removes nothing else.
    for day in 1..=10u64 {
        for k in 0..8u64 {
            let key = format!("f{:02}", (day * 8 + k) % 40);
            let value = noise(1000 * day + k, 20_000);
            let file = tmp.path().join("value");
            std::fs::write(&file, &value).unwrap();
            std::fs::write(data.join(&key), &value).unwrap();
            root = cli
                .ok(&["put", &root, &key, s(&file), "--store", st])
                .trim()
                .to_owned();
        }
        grown = grown.max(segments_bytes(&store));
        // One pin: the latest root.
        assert_eq!(pins(&cli, &store), vec![root.clone()], "day {day}");
    }
    assert!(grown > initial * 2, "updates did not grow the store");
    let j: serde_json::Value =
        serde_json::from_str(&cli.ok(&["gc", "--json", "--store", st])).unwrap();
    let after = segments_bytes(&store);
    eprintln!("segments: initial {initial} B, before gc {grown} B, after gc {after} B; {j}");
    // Only the latest version's blocks remain: about the initial size.
    assert!(
        after <= initial + initial / 5,
        "after gc {after} B vs initial {initial} B"
    );
    // The latest root is whole and reads back as the directory now is.
    let out = cli.ok(&["verify", &root, "--store", st]);
    assert!(out.contains("0 missing, 0 corrupt"), "{out}");
    cli.ok(&["verify", "--all", "--store", st]);
    let exported = tmp.path().join("exported");
    cli.ok(&["export", &root, s(&exported), "--store", st]);
    assert_eq!(common::read_tree(&exported), common::read_tree(&data));
}

#[test]
fn gc_survives_sigkill() {
    const ITERATIONS: u64 = 12;
    let began = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let store = tmp.path().join("store");
    let st = s(&store);
    let kept_dir = tmp.path().join("kept");
    make_tree(&kept_dir, 200, 7, 30_000);
    let kept = cli
        .ok(&["import", s(&kept_dir), "--store", st])
        .trim()
        .to_owned();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut estimate = Duration::from_millis(300);
    let mut mid = 0;
    for it in 0..ITERATIONS {
        // Fresh garbage every time, interleaved with pinned data in the same segments.
        let junk = tmp.path().join(format!("junk-{it}"));
        make_tree(&junk, 150, 100 + it, 30_000);
        cli.ok(&["import", s(&junk), "--store", st, "--no-pin"]);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = estimate.mul_f64((rng % 1000) as f64 / 1000.0);
        let mut child = cli
            .cmd()
            .args(["gc", "--store", st])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        std::thread::sleep(delay);
        let running = child.try_wait().unwrap().is_none();
        child.kill().unwrap();
        child.wait().unwrap();
        if running {
            mid += 1;
        } else {
            estimate = estimate.min(t.elapsed());
        }
        eprintln!("iteration {it}: killed after {delay:?} (running: {running})");
        let out = cli.ok(&["verify", "--all", "--store", st]);
        assert!(out.contains(" 0 corrupt"), "iteration {it}: {out}");
        let out = cli.ok(&["verify", &kept, "--store", st]);
        assert!(
            out.contains("0 missing, 0 corrupt"),
            "iteration {it}: {out}"
        );
        assert_eq!(pins(&cli, &store), vec![kept.clone()]);
    }
    assert!(mid >= ITERATIONS / 3, "only {mid} kills landed during a gc");
    // A gc run to its end then leaves only the pinned dataset, intact.
    cli.ok(&["gc", "--store", st]);
    cli.ok(&["verify", "--all", "--store", st]);
    let exported = tmp.path().join("exported");
    cli.ok(&["export", &kept, s(&exported), "--store", st]);
    assert_eq!(common::read_tree(&exported), common::read_tree(&kept_dir));
    eprintln!(
        "gc_survives_sigkill: {ITERATIONS} kills ({mid} mid-gc) in {:?}",
        began.elapsed()
    );
}

#[test]
fn a_second_process_is_refused_naming_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let store = tmp.path().join("store");
    let st = s(&store);
    let data = tmp.path().join("d");
    make_tree(&data, 5, 3, 1000);
    let root = cli
        .ok(&["import", s(&data), "--store", st])
        .trim()
        .to_owned();
    let mut server = cli
        .cmd()
        .args(["serve", &root, "--addr", "127.0.0.1:0", "--store", st])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let serving = lines.any(|l| l.map(|l| l.contains("serving")).unwrap_or(false));
    assert!(serving, "serve did not start");
    let t = Instant::now();
    cli.fails(&["ls", &root, "--store", st], "in use by another process");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "the second open waited"
    );
    let err = String::from_utf8(cli.run(&["gc", "--store", st]).stderr).unwrap();
    assert!(err.contains(st), "{err}");
    assert!(err.contains(&format!("pid {}", server.id())), "{err}");
    server.kill().unwrap();
    server.wait().unwrap();
    // The lock dies with its holder.
    cli.ok(&["ls", &root, "--store", st]);
}

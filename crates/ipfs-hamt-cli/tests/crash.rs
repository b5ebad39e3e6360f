//! Crash safety of `import` into the disk store: the CLI is killed with SIGKILL at varied
//! moments, many times; after every kill the store must open and every block in it must verify,
//! data committed before must still be there, and a final import must complete with the same
//! root as an import into a fresh store.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{make_tree, Cli};

#[test]
fn import_survives_sigkill() {
    const ITERATIONS: u32 = 18;
    const TIME_BUDGET: Duration = Duration::from_secs(150);
    let began = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();

    // Data committed before the crashes: must never be lost.
    let committed_dir = tmp.path().join("committed");
    make_tree(&committed_dir, 20, 1, 4_000);
    let store = p("store/blocks.redb");
    let committed = cli.ok(&["import", &p("committed"), "--store", &store]);
    let committed = committed.trim().to_owned();

    // The imports to crash: each iteration imports a new directory of a few hundred files
    // (so every run writes), in many small durable batches.
    let make = |it: u32| {
        let name = format!("data-{it}");
        make_tree(&tmp.path().join(&name), 300, 1000 + u64::from(it), 40_000);
        p(&name)
    };
    let import = |data: &str, store: &str| {
        let mut c = cli.cmd();
        c.args(["import", data, "--store", store, "--batch-bytes", "32768"]);
        c
    };
    let fresh_import = |data: &str, name: &str| {
        let out = import(data, &p(name)).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    // A complete import into a fresh store, timed to spread the kills over an import.
    let first = make(0);
    let t = Instant::now();
    let first_root = fresh_import(&first, "fresh-0.redb");
    let full = t.elapsed();
    eprintln!("full import: {full:?}, root {first_root}");

    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut killed_running = Vec::new();
    let mut mid_import = 0u32;
    // Shortest time an import was seen to take: kills are spread below it.
    let mut estimate = full;
    for it in 0..ITERATIONS {
        let data = if it == 0 { first.clone() } else { make(it) };
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Every fourth kill comes early (while the store opens or the files are listed); the
        // others anywhere in an import.
        let span = if it % 4 == 3 {
            Duration::from_millis(60)
        } else {
            estimate
        };
        let delay = span.mul_f64((rng % 1000) as f64 / 1000.0);
        // Most iterations continue the same store; some crash the creation of a new one.
        let target = if it % 6 == 5 {
            p(&format!("new-{it}/blocks.redb"))
        } else {
            store.clone()
        };
        let mut c = import(&data, &target);
        if it % 2 == 1 {
            // Every other kill lands in a bulk build (values, then nodes, then the root).
            c.args(["--bulk", "always"]);
        }
        let mut child = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let running = child.try_wait().unwrap().is_none();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if running {
            mid_import += 1;
            if target == store {
                killed_running.push((it, data));
            }
        } else {
            estimate = estimate.min(delay);
        }
        eprintln!("iteration {it}: killed after {delay:?} (running: {running})");

        // The store opens, every block in it verifies, counters match.
        if std::path::Path::new(&target).exists() {
            let out = cli.ok(&["verify", "--all", "--store", &target]);
            assert!(out.contains(" 0 corrupt"), "iteration {it}: {out}");
        }
        // What was committed before is all there.
        let out = cli.ok(&["verify", &committed, "--store", &store]);
        assert!(
            out.contains("0 missing, 0 corrupt"),
            "iteration {it}: {out}"
        );
        assert!(
            began.elapsed() < TIME_BUDGET,
            "crash test over its time budget after {it} iterations"
        );
    }
    assert!(
        mid_import >= ITERATIONS * 2 / 3,
        "only {mid_import} kills landed during an import"
    );

    // Re-running an import that was killed completes with the same root as an import into a
    // fresh store (the first one, and the last one killed mid-way).
    let mut reruns = vec![(0, first.clone(), first_root.clone())];
    if let Some((it, data)) = killed_running.last() {
        reruns.push((*it, data.clone(), fresh_import(data, "fresh-last.redb")));
    }
    for (it, data, reference) in reruns {
        let bulk = if it % 2 == 1 { "always" } else { "never" };
        let root = cli.ok(&["import", &data, "--store", &store, "--bulk", bulk]);
        assert_eq!(root.trim(), reference, "re-run of iteration {it}");
        let out = cli.ok(&["verify", &reference, "--store", &store]);
        assert!(out.contains("0 missing, 0 corrupt"), "{out}");
    }
    cli.ok(&["verify", "--all", "--store", &store]);
    cli.ok(&["verify", &committed, "--store", &store]);
    // And the data reads back byte-identical.
    let exported = tmp.path().join("exported");
    cli.ok(&[
        "export",
        &first_root,
        exported.to_str().unwrap(),
        "--store",
        &store,
    ]);
    assert_eq!(
        common::read_tree(&exported),
        common::read_tree(&tmp.path().join("data-0"))
    );
    eprintln!(
        "import_survives_sigkill: {ITERATIONS} kills ({mid_import} mid-import) in {:?}",
        began.elapsed()
    );
}

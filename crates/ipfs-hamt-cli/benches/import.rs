//! Import and export of a Zarr-like directory (5,000 files, 100 MB) into the embedded disk store,
//! next to the physical limit measured in the same run: reading the same files, hashing them
//! with BLAKE3 and writing them once (with one fsync).
//!
//! ```sh
//! cargo bench -p ipfs-hamt-cli --bench import                 # 5,000 x 20,000 bytes, 7 rounds
//! cargo bench -p ipfs-hamt-cli --bench import -- 1000 50000 3 # files, bytes per file, rounds
//! ```
//!
//! Each round measures the limit and then imports into a new store; the table gives both
//! medians and every round's ratio (single runs on a VM vary by 2x: the same 100 MB written
//! through the page cache costs 0.06 s of kernel time in one run and 0.4 s in the next).
//!
//! Data goes under `target/bench-data` (made again each run, never committed).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn fill(buf: &mut [u8], mut x: u64) {
    // xorshift: incompressible bytes, like compressed chunks.
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

fn make_dataset(dir: &Path, files: usize, size: usize) -> u64 {
    let _ = std::fs::remove_dir_all(dir);
    let mut total = 0;
    let mut buf = vec![0u8; size];
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(
        dir.join("zarr.json"),
        br#"{"zarr_format":3,"node_type":"group"}"#,
    )
    .expect("write");
    let side = (files as f64).sqrt().ceil() as usize;
    for i in 0..files {
        let p = dir.join(format!("temperature/c/{}/{}", i / side, i % side));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fill(&mut buf, i as u64 + 1);
        std::fs::write(&p, &buf).expect("write");
        total += size as u64;
    }
    total
}

fn list(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            list(&p, out)
        } else {
            out.push(p)
        }
    }
}

/// Read + BLAKE3 + write once + fsync: what any importer must at least do.
fn physical_limit(dir: &Path, sink: &Path) -> Duration {
    let mut files = Vec::new();
    list(dir, &mut files);
    let t = Instant::now();
    let mut out = std::io::BufWriter::new(std::fs::File::create(sink).expect("sink"));
    for f in &files {
        let data = std::fs::read(f).expect("read");
        let h = blake3::hash(&data);
        out.write_all(h.as_bytes()).expect("write");
        out.write_all(&data).expect("write");
    }
    let file = out.into_inner().expect("flush");
    file.sync_all().expect("fsync");
    t.elapsed()
}

fn cli(args: &[&str]) -> (Duration, String) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_ipfs-hamt"))
        .args(args)
        .output()
        .expect("run ipfs-hamt");
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (d, String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn row(name: &str, d: Duration, bytes: u64, files: usize, limit: Duration) {
    let s = d.as_secs_f64();
    println!(
        "| {name} | {:.2} s | {:.0} MB/s | {:.0} files/s | {:.0}% |",
        s,
        bytes as f64 / 1e6 / s,
        files as f64 / s,
        100.0 * limit.as_secs_f64() / s
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let files = args.first().copied().unwrap_or(5000);
    let size = args.get(1).copied().unwrap_or(20_000);
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data");
    let data = base.join("dataset");
    let bytes = make_dataset(&data, files, size);
    let store = base.join("store");
    let _ = std::fs::remove_dir_all(&store);
    let _ = std::fs::remove_file(base.join("store.redb")); // the previous format's file
    let restored = base.join("restored");
    let _ = std::fs::remove_dir_all(&restored);

    // Warm the page cache for both runs alike.
    let rounds = args.get(2).copied().unwrap_or(7).max(1);
    let _ = physical_limit(&data, &base.join("sink.bin"));
    let (mut limits, mut imports, mut root) = (Vec::new(), Vec::new(), String::new());
    for _ in 0..rounds {
        let _ = std::fs::remove_dir_all(&store);
        limits.push(physical_limit(&data, &base.join("sink.bin")));
        let (import, r) = cli(&[
            "import",
            data.to_str().expect("utf8"),
            "--store",
            store.to_str().expect("utf8"),
        ]);
        imports.push(import);
        root = r;
    }
    let ratios: Vec<String> = limits
        .iter()
        .zip(&imports)
        .map(|(l, i)| format!("{:.0}%", 100.0 * l.as_secs_f64() / i.as_secs_f64()))
        .collect();
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (limit, import) = (median(&mut limits), median(&mut imports));
    let (export, _) = cli(&[
        "export",
        &root,
        restored.to_str().expect("utf8"),
        "--store",
        store.to_str().expect("utf8"),
    ]);

    println!(
        "{files} files x {size} bytes = {:.0} MB, root {root}; medians of {rounds} rounds \
         (import / limit per round: {})",
        bytes as f64 / 1e6,
        ratios.join(", ")
    );
    println!();
    println!("| step | time | MB/s | files/s | % of physical limit |");
    println!("|---|---|---|---|---|");
    row(
        "physical limit (read + blake3 + write once + fsync)",
        limit,
        bytes,
        files,
        limit,
    );
    row(
        "`ipfs-hamt import` into the disk store",
        import,
        bytes,
        files,
        limit,
    );
    row(
        "`ipfs-hamt export` from the disk store",
        export,
        bytes,
        files,
        limit,
    );
    let (apparent, allocated) = du(&store);
    println!();
    println!(
        "store directory: {apparent} bytes apparent ({:.4}x the data), {allocated} bytes \
         allocated ({:.4}x)",
        apparent as f64 / bytes as f64,
        allocated as f64 / bytes as f64
    );
}

/// (apparent, allocated) bytes of the files under `dir`, as `du -b` and `du` count them.
fn du(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let (mut apparent, mut allocated) = (0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    for e in entries.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            let (a, b) = du(&e.path());
            apparent += a;
            allocated += b;
        } else {
            apparent += m.len();
            allocated += m.blocks() * 512;
        }
    }
    (apparent, allocated)
}

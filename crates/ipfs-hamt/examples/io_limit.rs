//! The physical limit of an import on this machine: read every file under DIR, hash it with
//! BLAKE3, write the bytes once to OUT and fsync, as an import must at least do.
//!
//! ```text
//! cargo run --release -p ipfs-hamt --example io_limit -- DIR OUT
//! ```
//! Prints the bytes, the seconds and MB/s (OUT is removed afterwards). `scripts/bench_import.sh`
//! compares it with `ipfs-hamt import` of the same directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: io_limit DIR OUT");
        std::process::exit(2);
    };
    let mut list = Vec::new();
    files(Path::new(dir), &mut list);
    let t = Instant::now();
    let mut w = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(out).unwrap());
    let mut total = 0u64;
    let mut digest = [0u8; 32];
    for p in &list {
        let data = std::fs::read(p).unwrap();
        let h = blake3::hash(&data);
        for (d, b) in digest.iter_mut().zip(h.as_bytes()) {
            *d ^= b;
        }
        w.write_all(&data).unwrap();
        total += data.len() as u64;
    }
    let f = w.into_inner().unwrap();
    f.sync_all().unwrap();
    let secs = t.elapsed().as_secs_f64();
    std::fs::remove_file(out).unwrap();
    println!(
        "files={} bytes={total} secs={secs:.3} mb_per_s={:.1} (xor of digests {:02x}{:02x})",
        list.len(),
        total as f64 / 1e6 / secs,
        digest[0],
        digest[1]
    );
}

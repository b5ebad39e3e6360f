//! Replays a fuzz target's saved inputs and a seeded batch of random and mutated ones, for the
//! `cargo test` fuzz smoke (included with `#[path]` by the replay tests).

use std::path::PathBuf;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The saved inputs of `target`, sorted by name.
pub fn saved(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read(e.path()).expect("read a saved input"))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

fn mutate(rng: &mut Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => {
                let cut = rng.below(v.len() + 1);
                v.truncate(cut);
            }
            3 => {
                let i = rng.below(v.len() + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(i..i, bytes);
            }
            4 if !other.is_empty() => {
                let i = rng.below(v.len() + 1);
                let s = rng.below(other.len());
                let e = (s + 1 + rng.below(64)).min(other.len());
                v.splice(i..i, other[s..e].iter().copied());
            }
            _ if !v.is_empty() => {
                let s = rng.below(v.len());
                let e = (s + 1 + rng.below(16)).min(v.len());
                v.drain(s..e);
            }
            _ => v.push(rng.next() as u8),
        }
    }
    v
}

/// Runs `run` on every saved input of `target`, then on `count` generated ones.
pub fn replay_and_mutate(target: &str, count: usize, run: fn(&[u8])) {
    let saved = saved(target);
    for (name, data) in &saved {
        eprintln!("{target}: replaying {name}");
        run(data);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    for i in 0..count {
        let input = if saved.is_empty() || i % 3 == 0 {
            let len = rng.below(512);
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            let base = &saved[rng.below(saved.len())].1;
            let other = &saved[rng.below(saved.len())].1;
            mutate(&mut rng, base, other)
        };
        run(&input);
    }
    eprintln!("{target}: {} saved + {count} generated inputs", saved.len());
}

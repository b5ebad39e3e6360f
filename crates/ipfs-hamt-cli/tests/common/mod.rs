//! Helpers shared by the disk-store and crash tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The CLI, with `IPFS_HAMT_STORE` pointing at `env_store` so that no test ever touches the
/// user's default store.
pub struct Cli {
    pub env_store: PathBuf,
}

impl Cli {
    pub fn new(dir: &Path) -> Self {
        Cli {
            env_store: dir.join("env-default.redb"),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ipfs-hamt"));
        c.env("IPFS_HAMT_STORE", &self.env_store);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run ipfs-hamt")
    }

    /// Runs a command that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs a command that must fail with exactly one clear line on stderr containing
    /// `needle`; returns stdout.
    pub fn fails(&self, args: &[&str], needle: &str) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} should fail; stderr {err:?}"
        );
        assert!(
            err.contains(needle),
            "{args:?}: stderr {err:?} lacks {needle:?}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err:?}");
        assert!(err.starts_with("ipfs-hamt: "), "{err:?}");
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{err}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A directory of `n` files of varied sizes in a few subdirectories; returns the total bytes.
pub fn make_tree(dir: &Path, n: u64, seed: u64, max_len: usize) -> u64 {
    let mut total = 0;
    for i in 0..n {
        let sub = dir.join(format!("d{}", i % 7));
        std::fs::create_dir_all(&sub).unwrap();
        let len = 16 + (noise(seed ^ i, 8)[0] as usize * 997 + i as usize * 31) % max_len;
        let data = noise(seed.wrapping_add(i), len);
        total += data.len() as u64;
        std::fs::write(sub.join(format!("file-{i}.bin")), data).unwrap();
    }
    total
}

/// Every file under `dir`, relative path -> bytes.
pub fn read_tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

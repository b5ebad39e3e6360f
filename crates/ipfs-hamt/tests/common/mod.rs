//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The py-hamt golden vectors: `$IPFS_HAMT_GOLDEN`, else the repository's `tests/golden`.
/// Missing vectors fail the test: they are what proves compatibility.
pub fn golden_dir() -> PathBuf {
    let dir = std::env::var_os("IPFS_HAMT_GOLDEN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden"));
    assert!(
        dir.join("cases.json").exists(),
        "golden vectors not found at {} (set IPFS_HAMT_GOLDEN)",
        dir.display()
    );
    dir
}

/// A golden JSON file, parsed.
pub fn golden_json(name: &str) -> serde_json::Value {
    let path = golden_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

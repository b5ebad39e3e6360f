//! Fuzz target `sharded_decode`: sharded-layout root manifests and shard blocks.
//!
//! Input: one selector byte, then the block. Even selectors decode the block as a root
//! manifest: decoding never panics, an accepted manifest re-encodes to a block that decodes
//! to the same manifest, and classifying keys, listing and reading through a store that holds
//! only that root give answers or typed errors (never a panic, never unbounded work). Odd
//! selectors decode the block as a shard of `selector / 2` entries, whole and entry by entry:
//! both agree, and an accepted shard re-encodes byte for byte.

use std::sync::Arc;

use ipfs_hamt::block::{Block, HashAlg, DAG_CBOR};
use ipfs_hamt::sharded::{shard, Manifest, ShardedConfig, ShardedReader};
use ipfs_hamt::store::{BlockStore, MemoryStore};

const KEYS: [&str; 10] = [
    "zarr.json",
    "0/temp/c/1/0/1",
    "temp/c/0/0/0",
    "c/0",
    "/c/1/1/1",
    "0/temp/1.0.1",
    "g/b/1/1",
    "time/c/0",
    "x/c/99999999999999999999999/0",
    "0/temp/c/+1/ 0/1_0",
];

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&sel, block)) = data.split_first() else {
        return;
    };
    if sel % 2 == 1 {
        let cps = u64::from(sel / 2);
        if let Ok(entries) = shard::decode(block, 0, cps) {
            assert_eq!(
                shard::encode(&entries),
                block,
                "an accepted shard re-encodes byte for byte"
            );
            for (i, e) in entries.iter().enumerate() {
                assert_eq!(
                    shard::decode_entry(block, 0, cps, i as u64).ok(),
                    Some(*e),
                    "sparse == full"
                );
            }
        }
        return;
    }
    let Ok(m) = Manifest::decode(block) else {
        return;
    };
    let again = m.encode().expect("a decoded manifest encodes");
    let m2 = Manifest::decode(&again).expect("a re-encoded manifest decodes");
    assert_eq!(m2.encode().expect("encodes"), again, "encoding is stable");
    for k in KEYS {
        let _ = m.classify(k);
        let _ = m.effective_read_key(k);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Arc::new(MemoryStore::new());
        let b = Block::new(DAG_CBOR, HashAlg::Blake3, block.to_vec());
        store.put(b.clone()).await.expect("memory put");
        if let Ok(r) = ShardedReader::open(store, b.cid, ShardedConfig::default()).await {
            for k in KEYS {
                let _ = r.get(k).await;
                let _ = r.exists(k).await;
            }
            let _ = r.list().await;
            let _ = r.list_dir("").await;
        }
    });
}

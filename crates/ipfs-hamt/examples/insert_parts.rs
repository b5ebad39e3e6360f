//! Where an insert's time goes, part by part (100k keys, memory store):
//!
//! ```sh
//! cargo run --release -p ipfs-hamt --example insert_parts
//! ```
//!
//! Prints the cost per key of building value blocks (format + BLAKE3 + CID), storing them,
//! inserting the pointers into the tree, hashing a key, and encoding a CID item.

use ipfs_hamt::block::{Block, HashAlg, RAW};
use ipfs_hamt::store::{BlockStore, MemoryStore};
use ipfs_hamt::{HamtConfig, Writer};
use std::sync::Arc;
use std::time::Instant;
fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let n = 100_000u64;
        let t = Instant::now();
        let blocks: Vec<Block> = (0..n)
            .map(|i| {
                let mut v = format!("value-{i}-").into_bytes();
                v.resize(100, b'x');
                Block::new(RAW, HashAlg::Blake3, v)
            })
            .collect();
        println!("value blocks: {:?}/op", t.elapsed() / n as u32);
        let keys: Vec<String> = (0..n).map(|i| format!("key-{i}")).collect();
        let store = Arc::new(MemoryStore::new());
        let t = Instant::now();
        for c in blocks.chunks(4096) {
            store.put_many(c.to_vec()).await.unwrap();
        }
        println!("store put: {:?}/op", t.elapsed() / n as u32);
        let mut w = Writer::new(store.clone(), HamtConfig::default()).unwrap();
        let t = Instant::now();
        for (k, b) in keys.iter().zip(&blocks) {
            w.insert_pointer(k, b.cid).await.unwrap();
        }
        println!("insert_pointer: {:?}/op", t.elapsed() / n as u32);
        let t = Instant::now();
        for k in &keys {
            let _ = ipfs_hamt::key_hash::blake3_hashfn(k.as_bytes());
        }
        println!("key hash: {:?}/op", t.elapsed() / n as u32);
        let t = Instant::now();
        for b in &blocks {
            let _ = ipfs_hamt::node::encode_cid(&b.cid);
        }
        println!("encode_cid: {:?}/op", t.elapsed() / n as u32);
    });
}

//! Fuzz target `disk_segment`: the segment files of the embedded disk store, as a crash or a
//! damaged disk leaves them (and, through [`run_on`], target `disk_run`: its index run files).
//!
//! A store is made with two committed blocks; the input then changes one of its files: the
//! first byte selects appending the rest (records past the index watermark, which opening scans
//! and recovers) or writing it over the file at an offset taken from the next two bytes
//! (damage inside indexed records). Opening the store gives a store or a typed error, never a
//! panic; an opened store never returns wrong bytes (every read is checked against its CID), its
//! `verify_all` finishes, and it still takes and returns a new block.

use std::io::{Seek, SeekFrom, Write};

use ipfs_hamt::block::{Block, HashAlg, RAW};
use ipfs_hamt::store::{BlockStore, DiskStore};

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
}

/// Which file of the store an input changes.
#[derive(Clone, Copy)]
pub enum Target {
    /// The segment file holding the blocks.
    Segment,
    /// The index run file listing them.
    Run,
}

/// Runs one input against the segment file.
pub fn run(data: &[u8]) {
    run_on(data, Target::Segment)
}

/// Runs one input against `target`.
pub fn run_on(data: &[u8], target: Target) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    // Scratch space in /dev/shm when there is one: no disk I/O per input.
    let shm = std::path::Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("scratch directory");
    let path = tmp.path().join("store");
    let a = Block::new(RAW, HashAlg::Blake3, b"first block".to_vec());
    let b = Block::new(RAW, HashAlg::Blake3, vec![7u8; 300]);
    RT.with(|rt| {
        rt.block_on(async {
            let store = DiskStore::open(&path).expect("new store");
            store
                .put_many(vec![a.clone(), b.clone()])
                .await
                .expect("put");
            store.sync().await.expect("sync");
        })
    });
    let (dir, ext) = match target {
        Target::Segment => (path.join("segments"), "seg"),
        Target::Run => (path.join("runs"), "run"),
    };
    let seg = std::fs::read_dir(&dir)
        .expect("store dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == ext))
        .expect("a file to damage");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .expect("open the file");
        if selector % 2 == 0 || rest.len() < 2 {
            f.seek(SeekFrom::End(0)).expect("seek");
            f.write_all(rest).expect("append");
        } else {
            let len = f.metadata().expect("stat").len();
            let at = u64::from(u16::from_le_bytes([rest[0], rest[1]])) % len.max(1);
            f.seek(SeekFrom::Start(at)).expect("seek");
            f.write_all(&rest[2..]).expect("overwrite");
        }
    }
    RT.with(|rt| {
        rt.block_on(async {
            let Ok(store) = DiskStore::open(&path) else {
                return; // refused with a typed error: fine
            };
            for block in [&a, &b] {
                if let Ok(bytes) = store.get(&block.cid).await {
                    assert_eq!(bytes, block.data, "a damaged store returned wrong bytes");
                }
            }
            let _ = store.verify_all(|_| {}).await;
            let c = Block::new(RAW, HashAlg::Blake3, rest.to_vec());
            if store.put(c.clone()).await.is_ok() && store.sync().await.is_ok() {
                if let Ok(bytes) = store.get(&c.cid).await {
                    assert_eq!(bytes, c.data, "a block just written reads back different");
                }
            }
        })
    });
}

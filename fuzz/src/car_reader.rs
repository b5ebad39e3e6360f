//! Fuzz target `car_reader`: CARv1/CARv2 files opened with `CarStore::open`.
//!
//! Input: the file. Properties: opening never panics (a malformed file is
//! `StoreError::Corrupt` or an I/O error); for a file that opens, every indexed block is either
//! returned verified against its CID or refused with a typed error, `has` agrees with the
//! index, the link scanners never panic on the returned bytes, and exporting each root with
//! `write_car` ends (a typed error for a missing or damaged block).

use std::cell::RefCell;
use std::path::PathBuf;

use ipfs_hamt::block::verify;
use ipfs_hamt::store::car::{block_links, write_car};
use ipfs_hamt::store::{BlockStore, CarStore};

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    static DIR: RefCell<Option<(tempfile::TempDir, PathBuf)>> = const { RefCell::new(None) };
}

/// The scratch file inputs are written to (in /dev/shm when it exists: no disk I/O).
fn scratch() -> PathBuf {
    DIR.with(|d| {
        let mut d = d.borrow_mut();
        let (_, path) = d.get_or_insert_with(|| {
            let shm = std::path::Path::new("/dev/shm");
            let dir = if shm.is_dir() {
                tempfile::tempdir_in(shm)
            } else {
                tempfile::tempdir()
            }
            .expect("scratch dir");
            let path = dir.path().join("input.car");
            (dir, path)
        });
        path.clone()
    })
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let path = scratch();
    std::fs::write(&path, data).expect("write scratch CAR");
    let Ok(store) = CarStore::open(&path) else {
        return;
    };
    RT.with(|rt| {
        rt.block_on(async {
            let cids = store.cids();
            assert_eq!(cids.len(), store.len());
            for cid in &cids {
                assert!(store.has(cid).await.expect("has on an open CAR"));
                if let Ok(bytes) = store.get(cid).await {
                    verify(cid, &bytes).expect("get returns verified bytes");
                    let _ = block_links(cid, &bytes);
                }
            }
            for root in store.roots() {
                let _ = write_car(&store, &root, std::io::sink()).await;
            }
        })
    });
}

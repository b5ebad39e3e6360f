//! ipfs-hamt against an IPFS node: write N 100-byte values + commit, then read them all back
//! through the gateway (the workload of `scripts/bench_kubo_pyhamt.py` for py-hamt 3.6.0).
//!
//! ```sh
//! cargo run --release -p ipfs-hamt --example kubo_bench -- RPC_URL GATEWAY_URL [N] [blocks|add]
//! ```
//! `blocks`: values buffered and sent as CARs to `dag/import`, nodes likewise (the default
//! write path); `add`: every block through `add` like py-hamt's KuboCAS. Prints one JSON line.

use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use ipfs_hamt::store::kubo::{KuboConfig, KuboStore, WriteMode};
use ipfs_hamt::{HamtConfig, Reader, Writer};

/// The values of py-hamt's baseline benchmark (`bench_pyhamt.py`).
fn value_for(i: usize, size: usize) -> Vec<u8> {
    let v = format!("value-{i:012}-").into_bytes();
    v.iter().copied().cycle().take(size).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(rpc), Some(gw)) = (args.get(1), args.get(2)) else {
        return Err("usage: kubo_bench RPC_URL GATEWAY_URL [N] [blocks|add]".into());
    };
    let n: usize = args.get(3).map_or(Ok(10_000), |s| s.parse())?;
    let mode = args.get(4).map_or("blocks", |s| s.as_str()).to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut config = KuboConfig::new(rpc)?;
        config.set_gateways([gw.as_str()])?;
        if mode == "add" {
            config.write_mode = WriteMode::PyHamtAdd;
        }
        let store = Arc::new(KuboStore::new(config.clone())?);
        let keys: Vec<String> = (0..n).map(|i| format!("key-{i}")).collect();

        let t = Instant::now();
        let mut w = Writer::new(store.clone(), HamtConfig::default())?;
        for (i, k) in keys.iter().enumerate() {
            w.insert(k, value_for(i, 100)).await?;
        }
        let root = w.commit().await?;
        let write_s = t.elapsed().as_secs_f64();

        // Reads on a fresh store and reader: nothing cached.
        let fresh = Arc::new(KuboStore::new(config.clone())?);
        let r = Reader::new(fresh, root, HamtConfig::default())?;
        let t = Instant::now();
        let ok: usize = futures::stream::iter(keys.iter().enumerate())
            .map(|(i, k)| {
                let r = r.clone();
                async move {
                    let v = r.get(k).await?;
                    Ok::<_, ipfs_hamt::Error>(usize::from(
                        v.as_deref() == Some(&value_for(i, 100)[..]),
                    ))
                }
            })
            .buffer_unordered(32)
            .try_fold(0, |a, b| async move { Ok(a + b) })
            .await?;
        let read_concurrent_s = t.elapsed().as_secs_f64();
        if ok != n {
            return Err(format!("{} of {n} values wrong", n - ok).into());
        }
        let fresh = Arc::new(KuboStore::new(config)?);
        let r = Reader::new(fresh, root, HamtConfig::default())?;
        let t = Instant::now();
        for k in &keys {
            r.get(k).await?;
        }
        let read_sequential_s = t.elapsed().as_secs_f64();
        println!(
            "{{\"impl\":\"ipfs-hamt\",\"mode\":\"{mode}\",\"n\":{n},\"root\":\"{root}\",\
             \"write_commit_s\":{write_s:.3},\"read_concurrent32_s\":{read_concurrent_s:.3},\
             \"read_sequential_s\":{read_sequential_s:.3}}}"
        );
        Ok(())
    })
}

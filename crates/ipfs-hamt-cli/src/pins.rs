//! `pin add|ls|rm` and `gc` on the disk store, and the pinning of the roots commands write.

use anyhow::{bail, Result};
use ipfs_hamt::store::DiskStore;
use ipfs_hamt::Cid;
use serde_json::json;

use crate::cmd::println;
use crate::stores::{self, Opened};
use crate::StoreOpts;

/// The disk store the options name, for the pin commands (not a CAR or a node).
fn disk(opts: &StoreOpts, what: &str) -> Result<DiskStore> {
    if stores::uses_node(opts) {
        bail!("{what} works on the disk store (--store), not on a node; pin there with `ipfs pin`");
    }
    let opened = stores::open_local_disk(opts, what, stores::Access::Read)?;
    match opened.disk {
        Some(d) => Ok(d),
        None => bail!("{what} needs the disk store"),
    }
}

/// Pins `new` in the disk store unless `--no-pin` (or the store is not the disk store); moves
/// the pin from `old` if `old` is pinned (Kubo's `pin update`).
pub async fn pin_root(s: &Opened, opts: &StoreOpts, old: Option<&Cid>, new: &Cid) -> Result<()> {
    if opts.no_pin {
        return Ok(());
    }
    if let Some(d) = &s.disk {
        d.pin_update(old, new).await?;
    }
    Ok(())
}

pub async fn add(opts: &StoreOpts, cid: &str) -> Result<()> {
    let d = disk(opts, "pin add")?;
    let cid = stores::parse_cid(cid)?;
    d.pin_add(&cid).await?;
    println(format!("pinned {cid}"))
}

pub async fn rm(opts: &StoreOpts, cid: &str) -> Result<()> {
    let d = disk(opts, "pin rm")?;
    let cid = stores::parse_cid(cid)?;
    if !d.pin_rm(&cid).await? {
        bail!("{cid} is not pinned in store {}", d.path().display());
    }
    println(format!("unpinned {cid}"))
}

pub async fn ls(opts: &StoreOpts, json: bool) -> Result<()> {
    let d = disk(opts, "pin ls")?;
    let mut pins: Vec<String> = d.pins().await?.iter().map(|c| c.to_string()).collect();
    pins.sort();
    if json {
        return println(json!({ "pins": pins }));
    }
    let mut text = String::new();
    for p in &pins {
        text += p;
        text.push('\n');
    }
    crate::cmd::print(&text)
}

pub async fn gc(opts: &StoreOpts, json: bool) -> Result<()> {
    let d = disk(opts, "gc")?;
    let r = d.gc().await?;
    if json {
        return println(json!({
            "blocks_freed": r.blocks,
            "bytes_freed": r.bytes,
            "blocks_kept": r.kept,
            "pins": r.pins,
            "missing": r.missing,
            "segments_rewritten": r.segments_rewritten,
            "file_bytes_freed": r.file_bytes_freed,
        }));
    }
    if r.missing > 0 {
        eprintln!(
            "ipfs-hamt: {} blocks reached from pins are not in the store (partial DAGs)",
            r.missing
        );
    }
    println(format!(
        "freed {} blocks ({} bytes); kept {} blocks reachable from {} pins",
        r.blocks, r.bytes, r.kept, r.pins
    ))
}

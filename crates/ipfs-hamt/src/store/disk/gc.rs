//! Garbage collection (mark from the pins, rewrite segments holding dead records) and the
//! whole-store check.
//!
//! Marks are two bits per record (marked, links followed) in a bitmap per segment, indexed by
//! the record's ordinal: 10^8 blocks cost 25 MB, not a hash set of CIDs. Raw leaves are marked
//! without being read. A segment is rewritten one at a time: its live records are appended to
//! the active segment, which is fsynced before one durable index batch repoints them and
//! removes the dead; only then is the old file deleted. A crash at any step leaves either the
//! old location or the new one indexed, both durable.

use std::collections::HashMap;

use bytes::Bytes;
use cid::Cid;

use super::engine::Engine;
use super::error::io_err;
use super::index::{Loc, Pos};
use super::segment::{self, sync_dir};
use super::DiskCheck;
use crate::block::{verify, VerifyError, IDENTITY_CODE, RAW};
use crate::store::car::block_links;
use crate::store::StoreError;

/// What [`DiskStore::gc`](super::DiskStore::gc) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blocks removed.
    pub blocks: u64,
    /// Bytes of block data removed.
    pub bytes: u64,
    /// Blocks kept (reachable from a pin, or written since the last sync).
    pub kept: u64,
    /// Pinned roots.
    pub pins: u64,
    /// Blocks a pinned root links to that the store does not hold (a partial DAG).
    pub missing: u64,
    /// Segment files rewritten or deleted.
    pub segments_rewritten: u64,
    /// Change of the segment files' total size, in bytes (what the file system got back).
    pub file_bytes_freed: u64,
}

/// Two bits per record of each segment.
#[derive(Default)]
struct Marks {
    bits: HashMap<u32, Vec<u64>>,
}

impl Marks {
    /// Sets bit `which` (0: marked, 1: links followed) of a record; returns whether it was set.
    fn set(&mut self, seg: u32, ordinal: u32, which: u32) -> bool {
        let v = self.bits.entry(seg).or_default();
        let bit = u64::from(ordinal) * 2 + u64::from(which);
        let word = (bit / 64) as usize;
        if v.len() <= word {
            v.resize(word + 1, 0);
        }
        let mask = 1u64 << (bit % 64);
        let was = v[word] & mask != 0;
        v[word] |= mask;
        was
    }
    fn get(&self, seg: u32, ordinal: u32) -> bool {
        let bit = u64::from(ordinal) * 2;
        self.bits
            .get(&seg)
            .and_then(|v| v.get((bit / 64) as usize))
            .is_some_and(|w| w & (1u64 << (bit % 64)) != 0)
    }
}

/// Marks every record a pinned root reaches.
fn mark(engine: &Engine, pins: &[Cid], report: &mut GcReport) -> Result<Marks, StoreError> {
    let mut marks = Marks::default();
    let mut stack: Vec<Cid> = pins.to_vec();
    while let Some(cid) = stack.pop() {
        if cid.hash().code() == IDENTITY_CODE {
            continue;
        }
        let key = cid.hash().to_bytes();
        let Some(loc) = engine.locate(&key)? else {
            report.missing += 1;
            continue;
        };
        marks.set(loc.seg, loc.ordinal, 0);
        // Raw leaves have no links; a block is expanded once (by its first non-raw codec).
        if cid.codec() == RAW || marks.set(loc.seg, loc.ordinal, 1) {
            continue;
        }
        let data = engine.read_at(&loc, key.len())?;
        // A damaged pinned block cannot be followed: stop rather than delete its children.
        verify(&cid, &data)?;
        stack.extend(block_links(&cid, &data)?);
    }
    Ok(marks)
}

/// One record found by a scan.
struct Rec {
    key: Vec<u8>,
    loc: Loc,
}

/// The records of segment `id` up to `end` (header and key only); stops at damage.
fn scan_keys(engine: &Engine, id: u32, end: u64) -> Result<Vec<Rec>, StoreError> {
    let seg = engine.segment(id)?;
    let mut out = Vec::new();
    let (mut off, mut ordinal) = (segment::FILE_MAGIC.len() as u64, 0u32);
    while off < end {
        let Some((h, key)) = seg.read_key(off, end)? else {
            break;
        };
        out.push(Rec {
            key,
            loc: Loc {
                seg: id,
                ordinal,
                offset: off,
                len: h.data_len,
            },
        });
        off += h.record_len();
        ordinal += 1;
    }
    Ok(out)
}

/// Runs a collection (the caller excludes writers of this handle).
pub fn collect(engine: &Engine) -> Result<GcReport, StoreError> {
    let mut report = GcReport::default();
    let mut st = engine.lock_state()?;
    let protect: Pos = st.user_synced;
    engine.flush(&mut st, true)?;
    if st.end > segment::FILE_MAGIC.len() as u64 {
        engine.roll(&mut st)?;
    }
    let pins = engine.index().pins()?;
    report.pins = pins.len() as u64;
    let marks = mark(engine, &pins, &mut report)?;
    let mut sealed: Vec<u32> = engine
        .segments
        .read()
        .map_err(|_| StoreError::Backend("store lock poisoned".into()))?
        .keys()
        .copied()
        .filter(|&id| id < st.active.id)
        .collect();
    sealed.sort_unstable();
    for id in sealed {
        let seg = engine.segment(id)?;
        let len = seg.len()?;
        let recs = scan_keys(engine, id, len)?;
        let mut live = Vec::new();
        let mut dead = Vec::new();
        let mut orphans = 0u64;
        for r in recs {
            let here = engine.index().get(&r.key)? == Some(r.loc);
            let pos = Pos {
                seg: id,
                offset: r.loc.offset,
                ordinal: r.loc.ordinal,
            };
            if !here {
                orphans += 1;
            } else if marks.get(id, r.loc.ordinal) || pos >= protect {
                live.push(r);
            } else {
                dead.push(r);
            }
        }
        report.kept += live.len() as u64;
        if dead.is_empty() && orphans == 0 {
            continue;
        }
        // Copy the live records to the active segment, in batches.
        let mut batch: Vec<super::engine::Item> = Vec::new();
        let mut batch_bytes = 0u64;
        for r in live {
            let data = engine.read_at(&r.loc, r.key.len())?;
            st.stats.blocks = st.stats.blocks.saturating_sub(1);
            st.stats.bytes = st.stats.bytes.saturating_sub(data.len() as u64);
            batch_bytes += data.len() as u64;
            let key = super::runs::Key::new(&r.key).ok_or_else(|| {
                super::error::corrupt(&engine.seg_dir, "a record's key has a bad length")
            })?;
            batch.push((super::runs::key_hash(&key), key, Bytes::from(data)));
            if batch_bytes >= 64 << 20 {
                engine.append(&mut st, std::mem::take(&mut batch))?;
                batch_bytes = 0;
            }
        }
        engine.append(&mut st, batch)?;
        let mut remove = Vec::with_capacity(dead.len());
        for r in dead {
            report.blocks += 1;
            report.bytes += u64::from(r.loc.len);
            st.stats.blocks = st.stats.blocks.saturating_sub(1);
            st.stats.bytes = st.stats.bytes.saturating_sub(u64::from(r.loc.len));
            remove.push(r.key);
        }
        // Copies durable, then the index stops referring to this segment, durably...
        engine.flush_with(&mut st, true, remove)?;
        // ... and only then does the file go.
        engine
            .segments
            .write()
            .map_err(|_| StoreError::Backend("store lock poisoned".into()))?
            .remove(&id);
        std::fs::remove_file(&seg.path).map_err(io_err(&seg.path, "removing"))?;
        sync_dir(&engine.seg_dir);
        report.segments_rewritten += 1;
        report.file_bytes_freed += len;
    }
    let after = st.end;
    report.file_bytes_freed = report
        .file_bytes_freed
        .saturating_sub(after - segment::FILE_MAGIC.len() as u64);
    Ok(report)
}

/// Checks every indexed block (see [`DiskStore::verify_all`](super::DiskStore::verify_all)).
pub fn verify_all(engine: &Engine, mut progress: impl FnMut(u64)) -> Result<DiskCheck, StoreError> {
    let mut st = engine.lock_state()?;
    engine.flush(&mut st, false)?;
    let mut check = DiskCheck {
        counters: st.stats,
        ..DiskCheck::default()
    };
    let mut ids: Vec<u32> = engine
        .segments
        .read()
        .map_err(|_| StoreError::Backend("store lock poisoned".into()))?
        .keys()
        .copied()
        .collect();
    ids.sort_unstable();
    // Sequential: each segment in file order, checking the records the index points at.
    for id in ids {
        let end = if id == st.active.id {
            st.end
        } else {
            engine.segment(id)?.len()?
        };
        for r in scan_keys(engine, id, end)? {
            if engine.index().get(&r.key)? != Some(r.loc) {
                continue;
            }
            let data = engine.read_at(&r.loc, r.key.len())?;
            check_block(&mut check, &r.key, &data);
            progress(data.len() as u64);
        }
    }
    let indexed = engine.index().count()?;
    if indexed != check.blocks {
        // Some entries point at records a scan cannot reach (damaged headers): check entry by
        // entry instead.
        let counters = check.counters;
        check = DiskCheck {
            counters,
            ..DiskCheck::default()
        };
        for entry in engine.index().entries() {
            let (key, loc) = entry?;
            match engine.read_at(&loc, key.len()) {
                Ok(data) => check_block(&mut check, &key, &data),
                Err(StoreError::Corrupt(_)) => {
                    check.blocks += 1;
                    check.bytes += u64::from(loc.len);
                    match multihash::Multihash::<64>::from_bytes(&key) {
                        Ok(mh) => check.corrupt.push(Cid::new_v1(RAW, mh)),
                        Err(_) => check.bad_keys += 1,
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(check)
}

fn check_block(check: &mut DiskCheck, key: &[u8], data: &[u8]) {
    check.blocks += 1;
    check.bytes += data.len() as u64;
    match multihash::Multihash::<64>::from_bytes(key) {
        Ok(mh) => {
            let cid = Cid::new_v1(RAW, mh);
            match verify(&cid, data) {
                Ok(()) => {}
                Err(VerifyError::Mismatch(_)) => check.corrupt.push(cid),
                Err(VerifyError::UnsupportedHash { .. }) => check.unverifiable.push(cid),
            }
        }
        Err(_) => check.bad_keys += 1,
    }
}

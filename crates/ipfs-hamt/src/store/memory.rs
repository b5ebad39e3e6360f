//! An in-memory block store.
//!
//! Blocks are keyed by multihash, like Kubo's blockstore: the same bytes under another codec
//! are the same block. Small blocks are packed into 1 MiB arenas and indexed by a compact hash
//! table of entry numbers, so a million 100-byte values cost about 160 MB rather than the
//! 300 MB a `HashMap<Cid, Bytes>` takes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use async_trait::async_trait;
use bytes::Bytes;
use cid::Cid;
use hashbrown::HashTable;

use super::{BlockStore, StoreError};
use crate::block::Block;

const SHARDS: usize = 16;
const ARENA: usize = 1 << 20;
/// Blocks from this size on keep their own allocation (and are returned without a copy).
const BIG: usize = 64 << 10;

#[derive(Clone, Copy)]
enum Loc {
    Arena { chunk: u32, offset: u32, len: u32 },
    Big(u32),
}

struct Entry {
    code: u64,
    digest: [u8; 32],
    loc: Loc,
}

#[derive(Default)]
struct Shard {
    /// Entry numbers, hashed by digest.
    table: HashTable<u32>,
    entries: Vec<Entry>,
    arenas: Vec<Vec<u8>>,
    big: Vec<Bytes>,
    /// Blocks whose digest is not 32 bytes (identity hashes...): rare, kept simply.
    other: HashMap<(u64, Vec<u8>), Bytes>,
}

/// Digests are uniformly distributed already: their first bytes are a good hash.
fn hash_of(code: u64, digest: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(b) ^ code.rotate_left(32)
}

impl Shard {
    fn find(&self, code: u64, digest: &[u8; 32]) -> Option<&Entry> {
        let entries = &self.entries;
        self.table
            .find(hash_of(code, digest), |&i| {
                let e = &entries[i as usize];
                e.code == code && &e.digest == digest
            })
            .map(|&i| &entries[i as usize])
    }

    fn read(&self, loc: Loc) -> Bytes {
        match loc {
            Loc::Arena { chunk, offset, len } => {
                let (o, l) = (offset as usize, len as usize);
                Bytes::copy_from_slice(&self.arenas[chunk as usize][o..o + l])
            }
            Loc::Big(i) => self.big[i as usize].clone(),
        }
    }

    /// Stores a block; returns false if it was already present.
    fn insert(&mut self, code: u64, digest: [u8; 32], data: &Bytes) -> bool {
        if self.find(code, &digest).is_some() {
            return false;
        }
        let loc = if data.len() >= BIG {
            self.big.push(data.clone());
            Loc::Big(self.big.len() as u32 - 1)
        } else {
            let fits = self
                .arenas
                .last()
                .is_some_and(|a| a.capacity() - a.len() >= data.len());
            if !fits {
                self.arenas.push(Vec::with_capacity(ARENA));
            }
            let chunk = self.arenas.len() - 1;
            let arena = &mut self.arenas[chunk];
            let offset = arena.len();
            arena.extend_from_slice(data);
            Loc::Arena {
                chunk: chunk as u32,
                offset: offset as u32,
                len: data.len() as u32,
            }
        };
        let idx = self.entries.len() as u32;
        self.entries.push(Entry { code, digest, loc });
        let entries = &self.entries;
        self.table.insert_unique(hash_of(code, &digest), idx, |&i| {
            let e = &entries[i as usize];
            hash_of(e.code, &e.digest)
        });
        true
    }
}

/// A thread-safe in-memory [`BlockStore`] (sharded locks), for tests, benchmarks and staging.
///
/// ```
/// use ipfs_hamt::store::MemoryStore;
/// let store = MemoryStore::new();
/// assert_eq!(store.len(), 0);
/// ```
#[derive(Default)]
pub struct MemoryStore {
    shards: [RwLock<Shard>; SHARDS],
    bytes: AtomicU64,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("blocks", &self.len())
            .field("bytes", &self.total_bytes())
            .finish()
    }
}

/// The shard and the 32-byte digest of a CID (`None` for other digest sizes).
fn key_of(cid: &Cid) -> (usize, u64, Option<[u8; 32]>) {
    let mh = cid.hash();
    let digest = <[u8; 32]>::try_from(mh.digest()).ok();
    let shard = mh.digest().last().copied().unwrap_or(0) as usize % SHARDS;
    (shard, mh.code(), digest)
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of blocks held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.read()
                    .map(|s| s.entries.len() + s.other.len())
                    .unwrap_or(0)
            })
            .sum()
    }

    /// True if the store holds no block.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total bytes of the blocks held.
    pub fn total_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Every block as (multihash bytes, block bytes), in no particular order: what py-hamt's
    /// `InMemoryCAS.store` dict holds.
    pub fn blocks(&self) -> Result<Vec<(Vec<u8>, Bytes)>, StoreError> {
        let mut out = Vec::with_capacity(self.len());
        for shard in &self.shards {
            let s = shard.read().map_err(|_| Self::poisoned())?;
            for e in &s.entries {
                if let Ok(mh) = multihash::Multihash::<64>::wrap(e.code, &e.digest) {
                    out.push((mh.to_bytes(), s.read(e.loc)));
                }
            }
            for ((code, digest), data) in &s.other {
                if let Ok(mh) = multihash::Multihash::<64>::wrap(*code, digest) {
                    out.push((mh.to_bytes(), data.clone()));
                }
            }
        }
        Ok(out)
    }

    fn poisoned() -> StoreError {
        StoreError::Backend("memory store lock poisoned".into())
    }
}

#[async_trait]
impl BlockStore for MemoryStore {
    async fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        let (shard, code, digest) = key_of(cid);
        let s = self.shards[shard].read().map_err(|_| Self::poisoned())?;
        let found = match digest {
            Some(d) => s.find(code, &d).map(|e| s.read(e.loc)),
            None => s.other.get(&(code, cid.hash().digest().to_vec())).cloned(),
        };
        found.ok_or(StoreError::NotFound(*cid))
    }

    async fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        let (shard, code, digest) = key_of(cid);
        let s = self.shards[shard].read().map_err(|_| Self::poisoned())?;
        Ok(match digest {
            Some(d) => s.find(code, &d).is_some(),
            None => s.other.contains_key(&(code, cid.hash().digest().to_vec())),
        })
    }

    async fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError> {
        // Visit the blocks shard by shard so each lock is taken once per batch: a counting
        // sort of their positions (no move of the blocks themselves, one allocation).
        let mut counts = [0u32; SHARDS + 1];
        let shards: Vec<u8> = blocks
            .iter()
            .map(|b| {
                let shard = key_of(&b.cid).0;
                counts[shard + 1] += 1;
                shard as u8
            })
            .collect();
        for i in 0..SHARDS {
            counts[i + 1] += counts[i];
        }
        let mut order = vec![0u32; blocks.len()];
        let mut next = counts;
        for (i, &shard) in shards.iter().enumerate() {
            order[next[shard as usize] as usize] = i as u32;
            next[shard as usize] += 1;
        }
        let mut added = 0u64;
        for shard_no in 0..SHARDS {
            let members = &order[counts[shard_no] as usize..counts[shard_no + 1] as usize];
            if members.is_empty() {
                continue;
            }
            let mut s = self.shards[shard_no]
                .write()
                .map_err(|_| Self::poisoned())?;
            let shard = &mut *s;
            let entries = &shard.entries;
            shard.table.reserve(members.len(), |&i| {
                let e = &entries[i as usize];
                hash_of(e.code, &e.digest)
            });
            shard.entries.reserve(members.len());
            for &i in members {
                let b = &blocks[i as usize];
                let len = b.data.len() as u64;
                let (_, code, digest) = key_of(&b.cid);
                let new = match digest {
                    Some(d) => shard.insert(code, d, &b.data),
                    None => shard
                        .other
                        .insert((code, b.cid.hash().digest().to_vec()), b.data.clone())
                        .is_none(),
                };
                if new {
                    added += len;
                }
            }
        }
        self.bytes.fetch_add(added, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{HashAlg, DAG_CBOR, IDENTITY_CODE, RAW};
    use multihash::Multihash;

    #[tokio::test]
    async fn put_get_has() {
        let s = MemoryStore::new();
        let a = Block::new(RAW, HashAlg::Blake3, b"a".to_vec());
        let b = Block::new(RAW, HashAlg::Sha2_256, b"b".to_vec());
        let big = Block::new(RAW, HashAlg::Blake3, vec![7u8; BIG + 1]);
        let id = Block {
            cid: Cid::new_v1(RAW, Multihash::wrap(IDENTITY_CODE, b"hi").unwrap()),
            data: Bytes::from_static(b"hi"),
        };
        assert!(!s.has(&a.cid).await.unwrap());
        assert!(matches!(s.get(&a.cid).await, Err(StoreError::NotFound(c)) if c == a.cid));
        s.put_many(vec![
            a.clone(),
            b.clone(),
            a.clone(),
            big.clone(),
            id.clone(),
        ])
        .await
        .unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s.total_bytes(), 2 + big.data.len() as u64 + 2);
        assert_eq!(s.get(&b.cid).await.unwrap(), b.data);
        assert_eq!(s.get(&big.cid).await.unwrap(), big.data);
        assert_eq!(s.get(&id.cid).await.unwrap(), id.data);
        assert!(s.has(&id.cid).await.unwrap());
        // Same multihash, other codec: same block.
        let relabelled = Cid::new_v1(DAG_CBOR, *a.cid.hash());
        assert_eq!(s.get(&relabelled).await.unwrap(), a.data);
    }

    #[tokio::test]
    async fn many_blocks_across_arenas() {
        let s = MemoryStore::new();
        let blocks: Vec<Block> = (0..20_000u32)
            .map(|i| {
                Block::new(
                    RAW,
                    HashAlg::Blake3,
                    vec![(i % 251) as u8; 100 + (i % 900) as usize],
                )
            })
            .collect();
        for chunk in blocks.chunks(1000) {
            s.put_many(chunk.to_vec()).await.unwrap();
        }
        for b in blocks.iter().step_by(7) {
            assert_eq!(s.get(&b.cid).await.unwrap(), b.data);
        }
    }
}

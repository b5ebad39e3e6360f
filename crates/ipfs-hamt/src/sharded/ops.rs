//! The writer's whole-array operations: resizing an index (py-hamt's fast and slow paths),
//! `resize_variable`, grafting another store's chunks in at an offset, `delete_dir`, `clear`
//! and the v1 -> v2 migration.

use std::collections::HashMap;

use bytes::Bytes;
use cid::Cid;
use indexmap::IndexMap;

use super::geometry::coords_in;
use super::manifest::normalize_path;
use super::reader::ShardedReader;
use super::shard::ShardEntries;
use super::writer::{sharded, CachedShard, ShardedWriter};
use super::{meta, ShardedError, Version};
use crate::block::RAW;
use crate::error::Result;
use crate::range::ByteRange;

impl ShardedWriter {
    /// Resizes the index at `path` to `new_shape`, remapping chunk entries when the row-major
    /// order changes (py-hamt §8.3).
    pub(crate) async fn resize_index(&mut self, path: &str, new_shape: Vec<u64>) -> Result<()> {
        let vpath = self.cache_path(path).to_string();
        let index = self.index(&vpath).map_err(sharded)?.clone();
        if new_shape.len() != index.array_shape.len() {
            return Err(sharded(ShardedError::Invalid(
                "New shape must have the same number of dimensions as the old shape.".into(),
            )));
        }
        let fast = !index.array_shape.is_empty()
            && new_shape[0] >= index.array_shape[0]
            && new_shape[1..] == index.array_shape[1..];
        let mut resized = index.clone();
        resized.set_shape(new_shape).map_err(sharded)?;
        if fast {
            self.m.arrays.insert(vpath, resized);
            self.dirty_root = true;
            return Ok(());
        }
        // Slow path: snapshot every shard (cached ones include unflushed writes).
        let mut old: HashMap<u64, ShardEntries> = HashMap::new();
        for (i, cid) in index.shard_cids.iter().enumerate() {
            let i = i as u64;
            if let Some(s) = self.shards.get(&(vpath.clone(), i)) {
                old.insert(i, s.entries.clone());
            } else if cid.is_some() {
                self.ensure_shard(&vpath, i).await?;
                if let Some(s) = self.shards.get(&(vpath.clone(), i)) {
                    old.insert(i, s.entries.clone());
                }
            }
        }
        let cps = index.chunks_per_shard;
        // Only shards that receive an entry are materialised: a grown index may have millions
        // of empty shards.
        let mut new: HashMap<u64, ShardEntries> = HashMap::new();
        for (&s, entries) in &old {
            for (k, e) in entries.iter().enumerate() {
                let Some(cid) = e else { continue };
                let lin = s * cps + k as u64;
                if lin >= index.total_chunks() {
                    continue;
                }
                let coords = coords_in(lin, index.chunks_per_dim());
                if coords
                    .iter()
                    .zip(resized.chunks_per_dim())
                    .any(|(c, n)| c >= n)
                {
                    continue;
                }
                let (ns, nk) = resized.shard_of(resized.linear(&coords));
                let shard = new.entry(ns).or_insert_with(|| vec![None; cps as usize]);
                if let Some(slot) = shard.get_mut(nk as usize) {
                    *slot = Some(*cid);
                }
            }
        }
        for (s, slot) in resized.shard_cids.iter_mut().enumerate() {
            let key = (vpath.clone(), s as u64);
            let old_cid = index.shard_cids.get(s).copied().flatten();
            let was_dirty = self.shards.get(&key).is_some_and(|c| c.dirty);
            let Some(entries) = new.remove(&(s as u64)) else {
                // All null: no shard block.
                *slot = None;
                self.shards.remove(&key);
                continue;
            };
            if old.get(&(s as u64)) == Some(&entries) && (old_cid.is_some() || was_dirty) {
                *slot = old_cid;
            } else {
                *slot = None;
                self.shards.insert(
                    key,
                    CachedShard {
                        entries,
                        dirty: true,
                    },
                );
            }
        }
        for s in resized.num_shards()..index.num_shards() {
            self.shards.remove(&(vpath.clone(), s));
        }
        self.m.arrays.insert(vpath, resized);
        self.dirty_root = true;
        Ok(())
    }

    /// Resizes one array's shard index (py-hamt's `resize_store`); the array's metadata is not
    /// touched (see [`ShardedWriter::resize_variable`]). `None` = the primary array.
    pub async fn resize_store(
        &mut self,
        new_shape: Vec<u64>,
        array_path: Option<&str>,
    ) -> Result<()> {
        let path = match self.m.version {
            Version::V1 => String::new(),
            Version::V2 => match array_path
                .map(str::to_string)
                .or_else(|| self.m.primary.clone())
            {
                Some(p) => normalize_path(&p).to_string(),
                None => {
                    return Err(sharded(ShardedError::State(
                        "Store is not properly initialized for resizing.".into(),
                    )))
                }
            },
        };
        self.index(&path).map_err(sharded)?;
        self.resize_index(&path, new_shape).await
    }

    /// Sets `shape` in `<name>/zarr.json` (rewritten as `json.dumps(indent=2)`, as py-hamt)
    /// and, in v2, resizes that array's index to match.
    pub async fn resize_variable(&mut self, name: &str, new_shape: Vec<u64>) -> Result<()> {
        let n = normalize_path(name);
        let key = if n.is_empty() {
            "zarr.json".to_string()
        } else {
            format!("{n}/zarr.json")
        };
        let Some(old) = self.m.metadata.get(&key).copied() else {
            return Err(sharded(ShardedError::NoMetadata(key)));
        };
        let bytes = self.load(&old, ByteRange::Full).await?;
        let new_bytes = Bytes::from(meta::with_shape(&bytes, &new_shape).map_err(sharded)?);
        let cid = self.save(new_bytes.clone(), RAW).await?;
        self.m.metadata.insert(key.clone(), cid);
        self.meta_cache.insert(key.clone(), new_bytes.clone());
        if self.m.version == Version::V2 {
            self.register_array(&key, &new_bytes).await?;
        }
        self.dirty_root = true;
        Ok(())
    }

    /// Copies every chunk pointer of `source` (another root in the same store) into this
    /// store at `chunk_offset` (py-hamt's `graft_store`). Metadata is untouched: resize the
    /// target first. Entries copied before an error stay copied, as in py-hamt.
    pub async fn graft_store(
        &mut self,
        source: Cid,
        chunk_offset: &[u64],
        source_path: Option<&str>,
        target_path: Option<&str>,
    ) -> Result<()> {
        let src = ShardedReader::open(self.store.clone(), source, self.cfg.clone()).await?;
        let sm = src.manifest();
        let Some(spath) = source_path
            .map(str::to_string)
            .or_else(|| sm.primary.clone())
        else {
            return Ok(());
        };
        let src_key = if sm.version == Version::V1 {
            String::new()
        } else {
            normalize_path(&spath).to_string()
        };
        let sindex = sm
            .arrays
            .get(&src_key)
            .ok_or_else(|| sharded(ShardedError::NoIndex(src_key.clone())))?
            .clone();
        let tpath = target_path.map(str::to_string).unwrap_or(spath);
        let tkey = self.cache_path(normalize_path(&tpath)).to_string();
        let tindex = self.index(&tkey).map_err(sharded)?.clone();
        if chunk_offset.len() != sindex.chunks_per_dim().len()
            || chunk_offset.len() != tindex.chunks_per_dim().len()
        {
            return Err(sharded(ShardedError::Invalid(
                "chunk_offset must have the same number of dimensions as both source and target arrays.".into(),
            )));
        }
        for lin in 0..sindex.total_chunks() {
            let (s, k) = sindex.shard_of(lin);
            let Some(cid) = src.shard_entry_full(&src_key, &sindex, s, k).await? else {
                continue;
            };
            let local = sindex.coords(lin);
            let global: Vec<u64> = local
                .iter()
                .zip(chunk_offset)
                .map(|(a, b)| a.saturating_add(*b))
                .collect();
            let as_i: Vec<i128> = global.iter().map(|&g| i128::from(g)).collect();
            if tindex.validate(&as_i).is_err() {
                let shown = global
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let tuple = if global.len() == 1 {
                    format!("({shown},)")
                } else {
                    format!("({shown})")
                };
                return Err(sharded(ShardedError::Invalid(format!(
                    "Graft target chunk coordinates {tuple} are out of bounds."
                ))));
            }
            let (ts, tk) = tindex.shard_of(tindex.linear(&global));
            self.update_entry(&tkey, ts, tk, Some(cid)).await?;
        }
        Ok(())
    }

    /// Removes everything under `prefix` (py-hamt's `delete_dir`): v2 drops the metadata
    /// under it and every array index at or below it; v1 deletes each listed key.
    pub async fn delete_dir(&mut self, prefix: &str) -> Result<()> {
        if self.m.version == Version::V1 {
            return self.delete_listed(prefix).await;
        }
        let np = prefix.trim_matches('/');
        if np.is_empty() {
            return self.clear().await;
        }
        let under = format!("{np}/");
        let keys: Vec<String> = self
            .m
            .metadata
            .keys()
            .filter(|k| k.starts_with(&under))
            .cloned()
            .collect();
        for k in keys {
            self.delete(&k).await?;
        }
        let doomed: Vec<String> = self
            .m
            .arrays
            .keys()
            .filter(|p| *p == np || p.starts_with(&under))
            .cloned()
            .collect();
        if doomed.is_empty() {
            return Ok(());
        }
        for p in &doomed {
            self.m.arrays.shift_remove(p);
            self.shards.retain(|(sp, _), _| sp != p);
        }
        self.m.primary = self.m.arrays.keys().next().cloned();
        self.dirty_root = true;
        Ok(())
    }

    /// zarr's base `delete_dir`: delete every listed key under `prefix/`.
    async fn delete_listed(&mut self, prefix: &str) -> Result<()> {
        let mut p = prefix.to_string();
        if !p.is_empty() && !p.ends_with('/') {
            p.push('/');
        }
        let keys: Vec<String> = self
            .list()
            .await?
            .into_iter()
            .filter(|k| k.starts_with(&p))
            .collect();
        for k in keys {
            self.delete(&k).await?;
        }
        Ok(())
    }

    /// Empties the store. v2 keeps its store-level settings, so the flushed root equals a
    /// fresh empty root; v1 deletes every key.
    pub async fn clear(&mut self) -> Result<()> {
        if self.m.version == Version::V1 {
            return self.delete_listed("").await;
        }
        self.shards.clear();
        self.meta_cache.clear();
        self.m.metadata.clear();
        self.m.arrays.clear();
        self.m.primary = None;
        self.dirty_root = true;
        Ok(())
    }

    /// Rewrites a v1 store as v2 with its shards under `primary_array_path` (py-hamt's
    /// `migrate_v1_to_v2`) and returns the new root.
    pub async fn migrate_v1_to_v2(&mut self, primary_array_path: &str) -> Result<Cid> {
        let p = normalize_path(primary_array_path).to_string();
        if p.is_empty() {
            return Err(sharded(ShardedError::Invalid(
                "primary_array_path must be a non-empty array path.".into(),
            )));
        }
        if self.m.version != Version::V1 {
            return Err(sharded(ShardedError::Invalid(
                "Only sharded_zarr_v1 stores can be migrated to v2.".into(),
            )));
        }
        self.flush().await?;
        self.shards.clear();
        let leaf = p.rsplit('/').next().unwrap_or("").to_string();
        let has_array_doc = |c: &str| {
            let keys = if c.is_empty() {
                ["zarr.json".to_string(), ".zarray".to_string()]
            } else {
                [format!("{c}/zarr.json"), format!("{c}/.zarray")]
            };
            keys.iter().any(|k| self.m.metadata.contains_key(k))
        };
        let mut candidates = vec![p.clone()];
        if leaf != p {
            candidates.push(leaf.clone());
        }
        candidates.push(String::new());
        let source = candidates
            .into_iter()
            .find(|c| has_array_doc(c))
            .unwrap_or(leaf);
        let parent = p
            .rsplit_once('/')
            .map(|(a, _)| a.to_string())
            .unwrap_or_default();
        let mut migrated: IndexMap<String, Cid> = IndexMap::new();
        for (k, c) in &self.m.metadata {
            let nk = if !source.is_empty() && k.starts_with(&format!("{source}/")) {
                format!("{p}/{}", &k[source.len() + 1..])
            } else if source.is_empty()
                && (k.starts_with("c/") || k == "zarr.json" || k == ".zarray")
            {
                format!("{p}/{k}")
            } else if !parent.is_empty() && k.contains('/') && !k.starts_with(&format!("{parent}/"))
            {
                format!("{parent}/{k}")
            } else {
                k.clone()
            };
            migrated.insert(nk, *c);
        }
        // Missing group documents for "" and each proper prefix of p; existing v3 ones lose
        // their consolidated metadata.
        let v2_docs = migrated.contains_key(&format!("{p}/.zarray"));
        let parts: Vec<&str> = p.split('/').collect();
        for i in 0..parts.len() {
            let g = parts[..i].join("/");
            let name = if v2_docs { ".zgroup" } else { "zarr.json" };
            let k = if g.is_empty() {
                name.to_string()
            } else {
                format!("{g}/{name}")
            };
            if let Some(existing) = migrated.get(&k).copied() {
                if !v2_docs {
                    let raw = self.load(&existing, ByteRange::Full).await?;
                    if let Some(stripped) = meta::strip_consolidated(&raw) {
                        let cid = self.save(Bytes::from(stripped), RAW).await?;
                        migrated.insert(k, cid);
                    }
                }
                continue;
            }
            let doc = if v2_docs {
                meta::V2_GROUP
            } else {
                meta::V3_GROUP
            };
            let cid = self.save(Bytes::from_static(doc), RAW).await?;
            migrated.insert(k, cid);
        }
        let m = std::mem::replace(&mut self.m, super::Manifest::new_v2(1).map_err(sharded)?);
        self.m = m.into_v2(p, migrated).map_err(sharded)?;
        self.meta_cache.clear();
        self.dirty_root = true;
        self.flush().await
    }
}

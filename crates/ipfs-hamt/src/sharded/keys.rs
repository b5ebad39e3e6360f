//! Which Zarr keys are metadata (kept in the root's `metadata` map) and which are chunks
//! `(array path, coordinates)` stored in shards, under py-hamt's v1 and v2 rules: the last
//! `/c/`, zarr-v2 dotted and slash keys (v2), v1's coordinate-name filter and primary-array
//! exclusivity, and Python `int()` / `str.isdecimal()` parsing of coordinates.

use super::manifest::{normalize_path, Manifest};
use super::{ShardedError, Version};

/// Suffixes that make a key metadata in the store (a plain suffix test, as py-hamt's).
pub const METADATA_SUFFIXES: [&str; 4] = ["zarr.json", ".zarray", ".zattrs", ".zgroup"];

/// v1 arrays whose chunks stay in the metadata map (coordinate variables).
pub(crate) const V1_COORDINATE_NAMES: [&str; 7] = [
    "time",
    "lat",
    "lon",
    "latitude",
    "longitude",
    "forecast_reference_time",
    "step",
];

/// What a key addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// A metadata-map key.
    Metadata,
    /// A chunk: normalised array path and coordinates (validated when the array has an index).
    Chunk {
        /// Array path, `/`-trimmed.
        path: String,
        /// Chunk coordinates as parsed (may be out of range for an array without an index).
        coords: Vec<i128>,
    },
}

/// Python `int(s)` for a coordinate (the lead's port; see `crate::pyemu`).
fn py_int(s: &str) -> Result<i128, ShardedError> {
    crate::pyemu::int::parse_int(s)
        .map(|v| {
            v.to_i128().unwrap_or(if v.is_negative() {
                i128::MIN
            } else {
                i128::MAX
            })
        })
        .map_err(ShardedError::Invalid)
}

fn is_decimal(s: &str) -> bool {
    crate::pyemu::int::is_decimal(s)
}

fn parse_parts(parts: &[&str]) -> Result<Vec<i128>, ShardedError> {
    parts.iter().map(|p| py_int(p)).collect()
}

/// A zarr-v2 dotted chunk key `path/1.0.1`: the path and the coordinate parts, when every part
/// is `str.isdecimal()`.
pub(crate) fn dotted_parts(key: &str) -> Option<(&str, Vec<&str>)> {
    let (path, last) = key.rsplit_once('/').unwrap_or(("", key));
    if !last.contains('.') {
        return None;
    }
    let parts: Vec<&str> = last.split('.').collect();
    parts.iter().all(|p| is_decimal(p)).then_some((path, parts))
}

/// A zarr-v2 slash chunk key `path/1/0/1` of one of `arrays`: the longest matching array path
/// first, ties in manifest order (py-hamt's stable sort), with as many decimal parts as the
/// array's rank.
pub(crate) fn slash_parts<'a, 'k>(
    key: &'k str,
    arrays: &'a indexmap::IndexMap<String, super::ArrayIndex>,
) -> Option<(&'a String, &'a super::ArrayIndex, Vec<&'k str>)> {
    let mut by_len: Vec<(&String, &super::ArrayIndex)> = arrays.iter().collect();
    by_len.sort_by_key(|a| std::cmp::Reverse(a.0.len()));
    by_len.into_iter().find_map(|(apath, index)| {
        let rest = if apath.is_empty() {
            Some(key)
        } else {
            key.strip_prefix(apath.as_str())?.strip_prefix('/')
        };
        let parts: Vec<&str> = rest?.split('/').collect();
        (parts.len() == index.chunks_per_dim().len() && parts.iter().all(|p| is_decimal(p)))
            .then_some((apath, index, parts))
    })
}

/// The array path of an array metadata key (`zarr.json` / `.zarray`), if it is one.
pub fn array_path_of_metadata_key(key: &str) -> Option<&str> {
    match key {
        "zarr.json" | ".zarray" => Some(""),
        _ => key
            .strip_suffix("/zarr.json")
            .or_else(|| key.strip_suffix("/.zarray")),
    }
}

/// The group path of a group metadata key (`zarr.json` / `.zgroup`), if it is one.
pub fn group_path_of_metadata_key(key: &str) -> Option<&str> {
    match key {
        "zarr.json" | ".zgroup" => Some(""),
        _ => key
            .strip_suffix("/zarr.json")
            .or_else(|| key.strip_suffix("/.zgroup")),
    }
}

impl Manifest {
    /// Classifies `key` (py-hamt's `_parse_chunk_key`). Errors are py-hamt's ValueError /
    /// IndexError cases: v2 readers turn them into "absent", v2 writers ignore the write, v1
    /// raises them.
    pub fn classify(&self, key: &str) -> Result<KeyKind, ShardedError> {
        if METADATA_SUFFIXES.iter().any(|s| key.ends_with(s)) {
            return Ok(KeyKind::Metadata);
        }
        let (path, coord_part) = if let Some(i) = key.rfind("/c/") {
            (&key[..i], &key[i + 3..])
        } else if let Some(rest) = key.strip_prefix("c/") {
            if self.version == Version::V1
                && self.v1_recorded_primary().map(normalize_path) != Some("")
            {
                return Ok(KeyKind::Metadata);
            }
            ("", rest)
        } else {
            return self.classic(key).map(|c| c.unwrap_or(KeyKind::Metadata));
        };
        let npath = normalize_path(path);
        let mut exclusive_primary = None;
        if self.version == Version::V1 {
            let leaf = npath.rsplit('/').next().unwrap_or("");
            if V1_COORDINATE_NAMES.contains(&leaf) {
                return Ok(KeyKind::Metadata);
            }
            let effective = match self.v1_recorded_primary() {
                Some(recorded) => Some(normalize_path(recorded)),
                None if self.primary_inferred
                    || self.primary.as_deref().is_some_and(|p| !p.is_empty()) =>
                {
                    Some(self.primary.as_deref().unwrap_or(""))
                }
                None => None,
            };
            if let Some(p) = effective {
                if npath != normalize_path(p) {
                    return Ok(KeyKind::Metadata);
                }
            }
            exclusive_primary = effective;
        }
        let coords: Result<Vec<i128>, _> = coord_part.split('/').map(py_int).collect();
        let coords = match coords {
            Ok(c) => c,
            Err(e) => return self.classic(key).and_then(|c| c.ok_or(e)),
        };
        match self.version {
            Version::V1 => {
                let global = self
                    .arrays
                    .get("")
                    .ok_or_else(|| ShardedError::Manifest("v1 root without an index".into()))?;
                let is_primary = exclusive_primary.is_some_and(|p| normalize_path(p) == npath);
                if !npath.is_empty()
                    && !is_primary
                    && coords.len() != global.chunks_per_dim().len()
                    && (self.metadata.contains_key(&format!("{npath}/zarr.json"))
                        || self.metadata.contains_key(&format!("{npath}/.zarray")))
                {
                    return Ok(KeyKind::Metadata);
                }
                global.validate(&coords)?;
            }
            Version::V2 => {
                if let Some(index) = self.arrays.get(npath) {
                    index.validate(&coords)?;
                }
            }
        }
        Ok(KeyKind::Chunk {
            path: npath.to_string(),
            coords,
        })
    }

    /// zarr-v2 style chunk keys (`path/1.0.1`, `path/1/0/1`), v2 only (py-hamt §6.2).
    fn classic(&self, key: &str) -> Result<Option<KeyKind>, ShardedError> {
        if self.version != Version::V2 || self.arrays.is_empty() {
            return Ok(None);
        }
        // Dotted form.
        if let Some((path, parts)) = dotted_parts(key) {
            let npath = normalize_path(path);
            if let Some(index) = self.arrays.get(npath) {
                if parts.len() == index.chunks_per_dim().len() {
                    let coords = parse_parts(&parts)?;
                    index.validate(&coords)?;
                    return Ok(Some(KeyKind::Chunk {
                        path: npath.to_string(),
                        coords,
                    }));
                }
            }
        }
        // Slash form.
        if let Some((apath, index, parts)) = slash_parts(key, &self.arrays) {
            let coords = parse_parts(&parts)?;
            index.validate(&coords)?;
            return Ok(Some(KeyKind::Chunk {
                path: apath.clone(),
                coords,
            }));
        }
        Ok(None)
    }

    /// v2: grouped-only (every array path has a `/`) with at least one array.
    pub fn grouped_only(&self) -> bool {
        self.version == Version::V2
            && !self.arrays.is_empty()
            && self.arrays.keys().all(|p| p.contains('/'))
    }

    /// v2: the top-level groups of the array paths (sorted).
    pub fn top_level_groups(&self) -> Vec<String> {
        if self.version != Version::V2 {
            return Vec::new();
        }
        let mut g: Vec<String> = self
            .arrays
            .keys()
            .filter(|p| p.contains('/'))
            .map(|p| p.split('/').next().unwrap_or("").to_string())
            .collect();
        g.sort();
        g.dedup();
        g
    }

    /// The single top-level group a grouped-only v2 store is read through by default.
    pub fn default_read_group(&self) -> Option<String> {
        if !self.grouped_only() {
            return None;
        }
        let mut g = self.top_level_groups();
        if g.len() == 1 {
            g.pop()
        } else {
            None
        }
    }

    /// v2 with several top-level groups and nothing else: a reader must name a group.
    pub fn requires_explicit_group(&self) -> bool {
        self.grouped_only() && self.top_level_groups().len() > 1
    }

    /// The key a read of `key` looks up (py-hamt §6.6): single-group stores are read through
    /// their group, so `xr.open_zarr(store)` works without `group=`.
    pub fn effective_read_key(&self, key: &str) -> String {
        let Some(g) = self.default_read_group() else {
            return key.to_string();
        };
        let nk = key.trim_matches('/');
        if matches!(nk, "zarr.json" | ".zgroup" | ".zattrs" | ".zmetadata" | "")
            || nk == g
            || nk.starts_with(&format!("{g}/"))
        {
            return key.to_string();
        }
        format!("{g}/{nk}")
    }

    /// The listing prefix `list_dir` uses for a normalised prefix (py-hamt §9.9).
    pub fn effective_list_prefix(&self, prefix: &str) -> String {
        let Some(g) = self.default_read_group() else {
            return prefix.to_string();
        };
        if prefix.is_empty() {
            g
        } else if prefix == g || prefix.starts_with(&format!("{g}/")) {
            prefix.to_string()
        } else {
            format!("{g}/{prefix}")
        }
    }
}

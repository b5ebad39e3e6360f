//! The root manifest (`sharded_zarr_v1` / `sharded_zarr_v2`): a DAG-CBOR map naming every
//! metadata document and each array's shard index. Decoding follows py-hamt's rules and
//! messages; keys py-hamt keeps but does not interpret are kept verbatim, so a rewritten root
//! differs from the loaded one only where py-hamt's would.

use std::collections::BTreeMap;

use cid::Cid;
use indexmap::IndexMap;
use ipld_core::ipld::Ipld;

use super::geometry::ArrayIndex;
use super::{ShardedError, Version, STORE_TYPE, V1, V2};

/// A decoded root manifest plus the reading state py-hamt derives from it.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Format version.
    pub version: Version,
    /// Metadata key -> CID of its raw block (and, in v1 and migrated stores, some chunks).
    pub metadata: IndexMap<String, Cid>,
    /// Array path -> index. v1 has exactly one, under `""` (the global index).
    pub arrays: IndexMap<String, ArrayIndex>,
    /// Top-level keys other than `metadata`/`arrays`/`chunks`, kept verbatim.
    extra: BTreeMap<String, Ipld>,
    /// v1: keys of the `chunks` map other than the index fields, kept verbatim.
    v1_chunks_extra: BTreeMap<String, Ipld>,
    /// v1: `chunks.primary_array_path` as recorded, if present.
    pub(crate) v1_recorded_primary: Option<Ipld>,
    /// The primary array path (v2: first array; v1: recorded, inferred, or `""`).
    pub primary: Option<String>,
    /// v1: the primary was inferred from metadata, not recorded.
    pub primary_inferred: bool,
    /// `chunks_per_shard` for arrays registered from now on.
    pub default_cps: Option<u64>,
}

fn invalid(msg: impl Into<String>) -> ShardedError {
    ShardedError::Invalid(msg.into())
}

/// DAG-CBOR canonical key order: shorter first, then bytewise (the order keys are encoded in).
pub(crate) fn canonical_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// Python `repr` of a decoded value, as py-hamt's version error shows it.
fn py_repr(v: Option<&Ipld>) -> String {
    match v {
        None | Some(Ipld::Null) => "None".into(),
        Some(Ipld::String(s)) if !s.contains('\'') => format!("'{s}'"),
        Some(Ipld::String(s)) => format!("{s:?}"),
        Some(Ipld::Integer(i)) => i.to_string(),
        Some(Ipld::Bool(b)) => {
            if *b {
                "True".into()
            } else {
                "False".into()
            }
        }
        Some(other) => format!("{other:?}"),
    }
}

fn uint(v: &Ipld, what: &str) -> Result<u64, ShardedError> {
    match v {
        Ipld::Integer(i) if *i < 0 => Err(invalid(format!(
            "All {what} dimensions must be non-negative."
        ))),
        Ipld::Integer(i) => {
            u64::try_from(*i).map_err(|_| invalid(format!("{what} value {i} is too large")))
        }
        other => Err(invalid(format!(
            "{what} must hold integers, found {other:?}"
        ))),
    }
}

fn shape(map: &BTreeMap<String, Ipld>, key: &str) -> Result<Vec<u64>, ShardedError> {
    match map.get(key) {
        None => Err(ShardedError::MissingKey(key.to_string())),
        Some(Ipld::List(items)) => items.iter().map(|v| uint(v, key)).collect(),
        Some(other) => Err(invalid(format!(
            "{key} must be a list of integers, found {other:?}"
        ))),
    }
}

fn cps_of(config: &BTreeMap<String, Ipld>) -> Result<u64, ShardedError> {
    match config.get("chunks_per_shard") {
        None => Err(ShardedError::MissingKey("chunks_per_shard".into())),
        Some(Ipld::Integer(i)) if *i > 0 => {
            u64::try_from(*i).map_err(|_| invalid("chunks_per_shard must be a positive integer."))
        }
        Some(_) => Err(invalid("chunks_per_shard must be a positive integer.")),
    }
}

fn shard_cids(v: Option<&Ipld>) -> Result<Vec<Option<Cid>>, ShardedError> {
    match v {
        Some(Ipld::List(items)) => items
            .iter()
            .map(|e| match e {
                Ipld::Null => Ok(None),
                Ipld::Link(c) => Ok(Some(*c)),
                other => Err(invalid(format!(
                    "shard_cids holds a non-CID entry: {other:?}"
                ))),
            })
            .collect(),
        _ => Err(invalid("shard_cids is not a list.")),
    }
}

fn cid_list(cids: &[Option<Cid>]) -> Ipld {
    Ipld::List(
        cids.iter()
            .map(|c| c.map_or(Ipld::Null, Ipld::Link))
            .collect(),
    )
}

fn int_list(v: &[u64]) -> Ipld {
    Ipld::List(v.iter().map(|&x| Ipld::Integer(i128::from(x))).collect())
}

fn text(s: &str) -> Ipld {
    Ipld::String(s.to_string())
}

/// `path` with leading and trailing `/` removed (py-hamt's array path normalisation).
pub fn normalize_path(path: &str) -> &str {
    path.trim_matches('/')
}

fn sorted_entries(map: BTreeMap<String, Ipld>) -> Vec<(String, Ipld)> {
    let mut v: Vec<_> = map.into_iter().collect();
    v.sort_by(|a, b| canonical_cmp(&a.0, &b.0));
    v
}

impl Manifest {
    /// A fresh, empty v2 root with store default `cps` (py-hamt's `open` without a root).
    pub fn new_v2(cps: u64) -> Result<Self, ShardedError> {
        if cps == 0 {
            return Err(invalid("chunks_per_shard must be a positive integer."));
        }
        let mut extra = BTreeMap::new();
        extra.insert("manifest_version".into(), text(V2));
        extra.insert("store_type".into(), text(STORE_TYPE));
        extra.insert("zarr_format".into(), Ipld::Integer(3));
        extra.insert("sharding_config".into(), sharding_config(cps, true));
        Ok(Manifest {
            version: Version::V2,
            metadata: IndexMap::new(),
            arrays: IndexMap::new(),
            extra,
            v1_chunks_extra: BTreeMap::new(),
            v1_recorded_primary: None,
            primary: None,
            primary_inferred: false,
            default_cps: Some(cps),
        })
    }

    /// A fresh v1 root with one global index (deprecated by py-hamt; kept for old readers).
    pub fn new_v1(
        array_shape: Vec<u64>,
        chunk_shape: Vec<u64>,
        cps: u64,
    ) -> Result<Self, ShardedError> {
        let index = ArrayIndex::new(array_shape, chunk_shape, cps)?;
        let mut extra = BTreeMap::new();
        extra.insert("manifest_version".into(), text(V1));
        let mut chunks_extra = BTreeMap::new();
        chunks_extra.insert("sharding_config".into(), sharding_config(cps, false));
        let mut arrays = IndexMap::new();
        arrays.insert(String::new(), index);
        Ok(Manifest {
            version: Version::V1,
            metadata: IndexMap::new(),
            arrays,
            extra,
            v1_chunks_extra: chunks_extra,
            v1_recorded_primary: None,
            primary: Some(String::new()),
            primary_inferred: false,
            default_cps: Some(cps),
        })
    }

    /// Decodes root bytes (py-hamt's `_load_root_from_cid`, before v1 primary inference).
    pub fn decode(bytes: &[u8]) -> Result<Self, ShardedError> {
        let root: Ipld = serde_ipld_dagcbor::from_slice(bytes)
            .map_err(|e| ShardedError::Manifest(format!("Failed to decode root object: {e}")))?;
        let Ipld::Map(mut root) = root else {
            return Err(ShardedError::Manifest(
                "Failed to decode root object: Root object is not a valid dictionary.".into(),
            ));
        };
        match root.get("manifest_version") {
            Some(Ipld::String(v)) if v == V1 => Self::decode_v1(root),
            Some(Ipld::String(v)) if v == V2 => Self::decode_v2(root),
            other => {
                let repr = py_repr(other);
                root.clear();
                Err(ShardedError::Manifest(format!(
                    "Incompatible manifest version: {repr}. Expected '{V1}' or '{V2}'."
                )))
            }
        }
    }

    fn take_metadata(
        root: &mut BTreeMap<String, Ipld>,
    ) -> Result<IndexMap<String, Cid>, ShardedError> {
        let map = match root.remove("metadata") {
            Some(Ipld::Map(m)) => m,
            None => BTreeMap::new(),
            Some(_) => {
                return Err(ShardedError::Manifest(
                    "metadata is not a dictionary.".into(),
                ))
            }
        };
        sorted_entries(map)
            .into_iter()
            .map(|(k, v)| match v {
                Ipld::Link(c) => Ok((k, c)),
                other => Err(ShardedError::Manifest(format!(
                    "metadata entry {k:?} is not a CID: {other:?}"
                ))),
            })
            .collect()
    }

    fn decode_v2(mut root: BTreeMap<String, Ipld>) -> Result<Self, ShardedError> {
        let valid = matches!(root.get("metadata"), Some(Ipld::Map(_)))
            && matches!(root.get("arrays"), Some(Ipld::Map(_)));
        if !valid {
            return Err(ShardedError::Manifest(
                "Root object is not a valid v2 dictionary with 'metadata' and 'arrays' keys."
                    .into(),
            ));
        }
        let metadata = Self::take_metadata(&mut root)?;
        let Some(Ipld::Map(arrays_raw)) = root.remove("arrays") else {
            return Err(ShardedError::Manifest("arrays is not a dictionary.".into()));
        };
        let mut arrays = IndexMap::new();
        for (path, value) in sorted_entries(arrays_raw) {
            let Ipld::Map(m) = value else {
                return Err(ShardedError::Manifest(
                    "arrays must map string paths to dictionaries.".into(),
                ));
            };
            let index = array_from_manifest(&m).map_err(|e| match e {
                ShardedError::Invalid(msg) if msg.starts_with("Inconsistent number of shards") => {
                    ShardedError::Manifest(format!(
                        "Inconsistent number of shards for array '{path}'. {msg}"
                    ))
                }
                other => other,
            })?;
            arrays.insert(normalize_path(&path).to_string(), index);
        }
        let root_cps = match root.get("sharding_config") {
            Some(Ipld::Map(c)) => match c.get("chunks_per_shard") {
                Some(Ipld::Integer(i)) if *i > 0 => u64::try_from(*i).ok(),
                _ => None,
            },
            _ => None,
        };
        let primary = arrays.keys().next().cloned();
        let default_cps = arrays
            .values()
            .next()
            .map(|a| a.chunks_per_shard)
            .or(root_cps);
        Ok(Manifest {
            version: Version::V2,
            metadata,
            arrays,
            extra: root,
            v1_chunks_extra: BTreeMap::new(),
            v1_recorded_primary: None,
            primary,
            primary_inferred: false,
            default_cps,
        })
    }

    fn decode_v1(mut root: BTreeMap<String, Ipld>) -> Result<Self, ShardedError> {
        let chunks = match root.remove("chunks") {
            None => {
                return Err(ShardedError::Manifest(
                    "Root object is not a valid dictionary with 'chunks' key.".into(),
                ))
            }
            Some(Ipld::Map(c)) => c,
            Some(_) => return Err(ShardedError::Manifest("chunks is not a dictionary.".into())),
        };
        let metadata = Self::take_metadata(&mut root)?;
        let mut chunks_extra = chunks;
        let cids = shard_cids(chunks_extra.get("shard_cids"))?;
        let array_shape = shape(&chunks_extra, "array_shape")?;
        let chunk_shape = shape(&chunks_extra, "chunk_shape")?;
        let cps = match chunks_extra.get("sharding_config") {
            Some(Ipld::Map(c)) => cps_of(c)?,
            Some(_) => return Err(invalid("sharding_config is not a dictionary.")),
            None => return Err(ShardedError::MissingKey("sharding_config".into())),
        };
        let index = ArrayIndex::with_shards(array_shape, chunk_shape, cps, cids)?;
        for k in ["shard_cids", "array_shape", "chunk_shape"] {
            chunks_extra.remove(k);
        }
        let recorded = chunks_extra.remove("primary_array_path");
        let primary = match &recorded {
            Some(Ipld::String(s)) => normalize_path(s).to_string(),
            _ => String::new(),
        };
        let mut arrays = IndexMap::new();
        arrays.insert(String::new(), index);
        Ok(Manifest {
            version: Version::V1,
            metadata,
            arrays,
            extra: root,
            v1_chunks_extra: chunks_extra,
            v1_recorded_primary: recorded,
            primary: Some(primary),
            primary_inferred: false,
            default_cps: Some(cps),
        })
    }

    /// The recorded v1 primary path, if it is a string.
    pub fn v1_recorded_primary(&self) -> Option<&str> {
        match &self.v1_recorded_primary {
            Some(Ipld::String(s)) => Some(s),
            _ => None,
        }
    }

    /// Records the v1 primary path in the root.
    pub(crate) fn record_v1_primary(&mut self, path: &str) {
        self.v1_recorded_primary = Some(text(path));
        self.primary = Some(path.to_string());
    }

    /// Whether the v1 root has a `primary_array_path` entry at all.
    pub(crate) fn v1_has_recorded_key(&self) -> bool {
        self.v1_recorded_primary.is_some()
    }

    /// The root as an IPLD map (py-hamt's `_root_obj` after `_sync_arrays_to_root`).
    pub fn to_ipld(&self) -> Ipld {
        let mut root = self.extra.clone();
        root.insert(
            "metadata".into(),
            Ipld::Map(
                self.metadata
                    .iter()
                    .map(|(k, c)| (k.clone(), Ipld::Link(*c)))
                    .collect(),
            ),
        );
        match self.version {
            Version::V2 => {
                let arrays = self
                    .arrays
                    .iter()
                    .map(|(p, a)| {
                        let mut m = BTreeMap::new();
                        m.insert("array_shape".into(), int_list(&a.array_shape));
                        m.insert("chunk_shape".into(), int_list(&a.chunk_shape));
                        m.insert(
                            "sharding_config".into(),
                            sharding_config(a.chunks_per_shard, true),
                        );
                        m.insert("shard_cids".into(), cid_list(&a.shard_cids));
                        (p.clone(), Ipld::Map(m))
                    })
                    .collect();
                root.insert("arrays".into(), Ipld::Map(arrays));
            }
            Version::V1 => {
                let mut chunks = self.v1_chunks_extra.clone();
                if let Some(a) = self.arrays.get("") {
                    chunks.insert("shard_cids".into(), cid_list(&a.shard_cids));
                    chunks.insert("array_shape".into(), int_list(&a.array_shape));
                    chunks.insert("chunk_shape".into(), int_list(&a.chunk_shape));
                }
                if let Some(p) = &self.v1_recorded_primary {
                    chunks.insert("primary_array_path".into(), p.clone());
                }
                root.insert("chunks".into(), Ipld::Map(chunks));
            }
        }
        Ipld::Map(root)
    }

    /// Canonical DAG-CBOR bytes of the root.
    pub fn encode(&self) -> Result<Vec<u8>, ShardedError> {
        serde_ipld_dagcbor::to_vec(&self.to_ipld())
            .map_err(|e| ShardedError::Manifest(format!("cannot encode root: {e}")))
    }

    /// Every CID the root links to: metadata values and shards.
    pub fn links(&self) -> impl Iterator<Item = Cid> + '_ {
        self.metadata.values().copied().chain(
            self.arrays
                .values()
                .flat_map(|a| a.shard_cids.iter().flatten().copied()),
        )
    }

    /// Rebuilds this v1 root as v2 with the given metadata and one index at `path`
    /// (py-hamt's `migrate_v1_to_v2` root).
    pub(crate) fn into_v2(
        self,
        path: String,
        metadata: IndexMap<String, Cid>,
    ) -> Result<Self, ShardedError> {
        let index = self
            .arrays
            .get("")
            .cloned()
            .ok_or_else(|| ShardedError::Manifest("v1 root has no global index".into()))?;
        let cps = index.chunks_per_shard;
        let mut m = Manifest::new_v2(cps)?;
        m.metadata = metadata;
        m.arrays.insert(path.clone(), index);
        m.primary = Some(path);
        Ok(m)
    }
}

fn sharding_config(cps: u64, with_order: bool) -> Ipld {
    let mut c = BTreeMap::new();
    c.insert("chunks_per_shard".into(), Ipld::Integer(i128::from(cps)));
    if with_order {
        c.insert("order".into(), text("C"));
    }
    Ipld::Map(c)
}

/// An array index from its v2 manifest entry (py-hamt's `ArrayIndex.from_manifest`).
fn array_from_manifest(m: &BTreeMap<String, Ipld>) -> Result<ArrayIndex, ShardedError> {
    let cids = shard_cids(m.get("shard_cids"))?;
    let empty = BTreeMap::new();
    let config = match m.get("sharding_config") {
        None => &empty,
        Some(Ipld::Map(c)) => c,
        Some(_) => return Err(invalid("sharding_config is not a dictionary.")),
    };
    let array_shape = shape(m, "array_shape")?;
    let chunk_shape = shape(m, "chunk_shape")?;
    let cps = cps_of(config)?;
    match config.get("order") {
        None => {}
        Some(Ipld::String(o)) if o == "C" => {}
        Some(_) => return Err(invalid("Only row-major ('C') shard ordering is supported.")),
    }
    ArrayIndex::with_shards(array_shape, chunk_shape, cps, cids)
}

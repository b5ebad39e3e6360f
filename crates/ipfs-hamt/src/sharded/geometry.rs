//! Chunk geometry of one array index: chunks per dimension, row-major linear index, shard and
//! offset. All arithmetic is checked: a manifest may declare absurd shapes.

use cid::Cid;

use super::ShardedError;

/// Most shards one array index may have (a hostile shape must not make us allocate its index).
pub const MAX_SHARDS: u64 = 1 << 24;
/// Most entries one shard may have (each shard is held in memory whole).
pub const MAX_CHUNKS_PER_SHARD: u64 = 1 << 20;

/// The index of one array: its geometry and the CIDs of its shards (`None` = no shard block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayIndex {
    /// Current array shape.
    pub array_shape: Vec<u64>,
    /// Chunk shape (same rank, every dimension > 0).
    pub chunk_shape: Vec<u64>,
    /// Entries per shard.
    pub chunks_per_shard: u64,
    /// One CID (or none) per shard.
    pub shard_cids: Vec<Option<Cid>>,
    chunks_per_dim: Vec<u64>,
    total_chunks: u64,
}

fn invalid(msg: impl Into<String>) -> ShardedError {
    ShardedError::Invalid(msg.into())
}

/// Chunks per dimension, total chunks and shard count for a geometry (validated).
fn layout(shape: &[u64], chunks: &[u64], cps: u64) -> Result<(Vec<u64>, u64, u64), ShardedError> {
    if cps == 0 {
        return Err(invalid("chunks_per_shard must be a positive integer."));
    }
    if cps > MAX_CHUNKS_PER_SHARD {
        return Err(ShardedError::TooLarge(format!(
            "chunks_per_shard {cps} is more than the {MAX_CHUNKS_PER_SHARD} this implementation holds in memory"
        )));
    }
    if shape.len() != chunks.len() {
        return Err(invalid(
            "array_shape and chunk_shape must have the same rank.",
        ));
    }
    if chunks.contains(&0) {
        return Err(invalid("All chunk_shape dimensions must be positive."));
    }
    let per_dim: Vec<u64> = shape
        .iter()
        .zip(chunks)
        .map(|(a, c)| a.div_ceil(*c))
        .collect();
    let too_large = || {
        ShardedError::TooLarge(format!(
            "array shape {shape:?} with chunk shape {chunks:?} has more chunks than fit in 64 bits"
        ))
    };
    let total = per_dim
        .iter()
        .try_fold(1u64, |acc, d| acc.checked_mul(*d))
        .ok_or_else(too_large)?;
    let shards = total.div_ceil(cps);
    if shards > MAX_SHARDS {
        return Err(ShardedError::TooLarge(format!(
            "array shape {shape:?} with chunk shape {chunks:?} needs {shards} shards of {cps} chunks, more than {MAX_SHARDS}"
        )));
    }
    Ok((per_dim, total, shards))
}

impl ArrayIndex {
    /// A new index with every shard empty.
    pub fn new(
        array_shape: Vec<u64>,
        chunk_shape: Vec<u64>,
        chunks_per_shard: u64,
    ) -> Result<Self, ShardedError> {
        let (chunks_per_dim, total_chunks, shards) =
            layout(&array_shape, &chunk_shape, chunks_per_shard)?;
        Ok(ArrayIndex {
            array_shape,
            chunk_shape,
            chunks_per_shard,
            shard_cids: vec![None; shards as usize],
            chunks_per_dim,
            total_chunks,
        })
    }

    /// An index read from a manifest: the shard count must match the geometry.
    pub fn with_shards(
        array_shape: Vec<u64>,
        chunk_shape: Vec<u64>,
        chunks_per_shard: u64,
        shard_cids: Vec<Option<Cid>>,
    ) -> Result<Self, ShardedError> {
        let (chunks_per_dim, total_chunks, shards) =
            layout(&array_shape, &chunk_shape, chunks_per_shard)?;
        if shard_cids.len() as u64 != shards {
            return Err(invalid(format!(
                "Inconsistent number of shards. Expected {shards}, found {}.",
                shard_cids.len()
            )));
        }
        Ok(ArrayIndex {
            array_shape,
            chunk_shape,
            chunks_per_shard,
            shard_cids,
            chunks_per_dim,
            total_chunks,
        })
    }

    /// Chunks along each dimension.
    pub fn chunks_per_dim(&self) -> &[u64] {
        &self.chunks_per_dim
    }

    /// Chunks in the whole grid (1 for a 0-d array).
    pub fn total_chunks(&self) -> u64 {
        self.total_chunks
    }

    /// Number of shards.
    pub fn num_shards(&self) -> u64 {
        self.shard_cids.len() as u64
    }

    /// Shards that have a block.
    pub fn filled_shards(&self) -> usize {
        self.shard_cids.iter().filter(|c| c.is_some()).count()
    }

    /// Changes the shape, truncating or padding the shard list (py-hamt's `ArrayIndex.resize`):
    /// linear indices are not remapped here.
    pub fn set_shape(&mut self, new_shape: Vec<u64>) -> Result<(), ShardedError> {
        if new_shape.len() != self.array_shape.len() {
            return Err(invalid(
                "New shape must have the same number of dimensions as the old shape.",
            ));
        }
        let (per_dim, total, shards) =
            layout(&new_shape, &self.chunk_shape, self.chunks_per_shard)?;
        self.array_shape = new_shape;
        self.chunks_per_dim = per_dim;
        self.total_chunks = total;
        self.shard_cids.resize(shards as usize, None);
        Ok(())
    }

    /// Checks chunk coordinates against the grid (py-hamt's messages).
    pub fn validate(&self, coords: &[i128]) -> Result<Vec<u64>, ShardedError> {
        if coords.len() != self.chunks_per_dim.len() {
            return Err(ShardedError::Index("tuple index out of range".into()));
        }
        coords
            .iter()
            .zip(&self.chunks_per_dim)
            .enumerate()
            .map(|(i, (&c, &n))| {
                if c >= 0 && (c as u128) < u128::from(n) {
                    Ok(c as u64)
                } else {
                    Err(ShardedError::Index(format!(
                        "Chunk coordinate {c} at dimension {i} is out of bounds for dimension size {n}."
                    )))
                }
            })
            .collect()
    }

    /// Row-major linear index of valid coordinates.
    pub fn linear(&self, coords: &[u64]) -> u64 {
        let mut lin = 0u64;
        let mut mult = 1u64;
        for (c, n) in coords.iter().zip(&self.chunks_per_dim).rev() {
            lin += c * mult;
            mult = mult.saturating_mul(*n);
        }
        lin
    }

    /// Shard and offset of a linear index.
    pub fn shard_of(&self, linear: u64) -> (u64, u64) {
        (
            linear / self.chunks_per_shard,
            linear % self.chunks_per_shard,
        )
    }

    /// Coordinates of a linear index (`linear < total_chunks`).
    pub fn coords(&self, linear: u64) -> Vec<u64> {
        coords_in(linear, &self.chunks_per_dim)
    }
}

/// Mixed-radix digits of `linear` for the grid `per_dim`.
pub(crate) fn coords_in(mut linear: u64, per_dim: &[u64]) -> Vec<u64> {
    let mut out = vec![0; per_dim.len()];
    for (slot, n) in out.iter_mut().zip(per_dim).rev() {
        if *n > 0 {
            *slot = linear % n;
            linear /= n;
        }
    }
    out
}

/// The v3 chunk key of `coords` under `path` (`c/...` for the root array).
pub fn chunk_key(path: &str, coords: &[u64]) -> String {
    let mut key = if path.is_empty() {
        String::from("c")
    } else {
        format!("{path}/c")
    };
    for c in coords {
        key.push('/');
        key.push_str(&c.to_string());
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_example() {
        // 0/temp: A=(8,6,8), C=(2,3,4), cps 3 -> (4,2,2), 16 chunks, 6 shards.
        let idx = ArrayIndex::new(vec![8, 6, 8], vec![2, 3, 4], 3).unwrap();
        assert_eq!(idx.chunks_per_dim(), &[4, 2, 2]);
        assert_eq!(idx.total_chunks(), 16);
        assert_eq!(idx.num_shards(), 6);
        let c = idx.validate(&[3, 1, 1]).unwrap();
        assert_eq!(idx.linear(&c), 15);
        assert_eq!(idx.shard_of(15), (5, 0));
        assert_eq!(idx.coords(15), vec![3, 1, 1]);
        assert_eq!(chunk_key("0/temp", &c), "0/temp/c/3/1/1");
        assert_eq!(chunk_key("", &[0]), "c/0");
        assert_eq!(
            idx.validate(&[9, 0, 0]).unwrap_err().to_string(),
            "Chunk coordinate 9 at dimension 0 is out of bounds for dimension size 4."
        );
        assert_eq!(
            idx.validate(&[1, 0]).unwrap_err().to_string(),
            "tuple index out of range"
        );
        // 0-d arrays have one chunk; empty dimensions have none.
        assert_eq!(ArrayIndex::new(vec![], vec![], 3).unwrap().num_shards(), 1);
        assert_eq!(
            ArrayIndex::new(vec![0, 5], vec![2, 2], 3)
                .unwrap()
                .num_shards(),
            0
        );
    }

    #[test]
    fn hostile_geometry_is_refused_without_allocating() {
        let e = ArrayIndex::new(vec![1_000_000, 1_000_000], vec![1, 1], 1).unwrap_err();
        assert!(matches!(e, ShardedError::TooLarge(_)), "{e}");
        let e =
            ArrayIndex::new(vec![u64::MAX, u64::MAX, u64::MAX], vec![1, 1, 1], 6250).unwrap_err();
        assert!(matches!(e, ShardedError::TooLarge(_)), "{e}");
        assert!(ArrayIndex::new(vec![5], vec![0], 1).is_err());
        assert!(ArrayIndex::new(vec![5], vec![1, 1], 1).is_err());
        assert!(ArrayIndex::with_shards(vec![5], vec![2], 2, vec![None]).is_err());
    }
}

//! Metadata documents as py-hamt reads and rewrites them: array geometry from `zarr.json` /
//! `.zarray`, the auto-created group documents, consolidated-metadata stripping, and
//! `resize_variable`'s rewrite. JSON goes through [`crate::pyemu::json`] so rewritten bytes
//! equal Python's `json.dumps` output.

use crate::pyemu::json::{self, PyJson};

use super::ShardedError;

/// Bytes of an auto-created zarr v3 group (Python `json.dumps` of the default group).
pub const V3_GROUP: &[u8] = br#"{"zarr_format": 3, "node_type": "group", "attributes": {}}"#;
/// Bytes of an auto-created zarr v2 group.
pub const V2_GROUP: &[u8] = br#"{"zarr_format": 2}"#;

/// The JSON object in `bytes`, or `None` when they are not a UTF-8 JSON object.
pub fn object(bytes: &[u8]) -> Option<PyJson> {
    match json::loads_utf8(bytes) {
        Ok(v @ PyJson::Object(_)) => Some(v),
        _ => None,
    }
}

/// The value under `key` of an object.
pub fn field<'a>(obj: &'a PyJson, key: &str) -> Option<&'a PyJson> {
    match obj {
        // Python dicts keep the last duplicate; the parser already folded duplicates.
        PyJson::Object(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

/// Python `int(v)` of a JSON value, as py-hamt converts shape entries.
fn py_int(v: &PyJson) -> Result<i128, ShardedError> {
    match v {
        PyJson::Int(i) => Ok(i.to_i64().map_or(i128::MAX, i128::from)),
        PyJson::Bool(b) => Ok(i128::from(*b)),
        PyJson::Float(f) if f.is_finite() => Ok(f.trunc() as i128),
        PyJson::Str(s) => crate::pyemu::int::parse_int(s)
            .map(|i| i.to_i64().map_or(i128::MAX, i128::from))
            .map_err(ShardedError::Invalid),
        other => Err(ShardedError::Invalid(format!(
            "cannot read {other:?} as an integer dimension"
        ))),
    }
}

fn dims(v: &PyJson, what: &str) -> Result<Vec<i128>, ShardedError> {
    match v {
        PyJson::Array(items) => items.iter().map(py_int).collect(),
        other => Err(ShardedError::Invalid(format!(
            "{what} is not a list: {other:?}"
        ))),
    }
}

/// The declared chunk shape: `chunk_grid.configuration.chunk_shape`, else `chunks`.
fn chunk_shape_value(obj: &PyJson) -> Option<&PyJson> {
    field(obj, "chunk_grid")
        .and_then(|g| field(g, "configuration"))
        .and_then(|c| field(c, "chunk_shape"))
        .filter(|v| !matches!(v, PyJson::Null))
        .or_else(|| field(obj, "chunks").filter(|v| !matches!(v, PyJson::Null)))
}

/// Shape and chunk shape as declared (Python ints).
pub type Geometry = (Vec<i128>, Vec<i128>);

/// `(shape, chunk shape)` of an array metadata document (py-hamt's `_extract_array_metadata`).
pub fn array_geometry(obj: &PyJson) -> Result<Option<Geometry>, ShardedError> {
    let Some(shape) = field(obj, "shape").filter(|v| !matches!(v, PyJson::Null)) else {
        return Ok(None);
    };
    let Some(chunks) = chunk_shape_value(obj) else {
        return Ok(None);
    };
    Ok(Some((dims(shape, "shape")?, dims(chunks, "chunk shape")?)))
}

/// Only `shape` (v1 registration tolerates arrays without a chunk shape).
pub fn array_shape_only(obj: &PyJson) -> Result<Option<Vec<i128>>, ShardedError> {
    match field(obj, "shape").filter(|v| !matches!(v, PyJson::Null)) {
        None => Ok(None),
        Some(s) => dims(s, "shape").map(Some),
    }
}

/// The shape and chunk shape exactly as declared, for v1 primary inference (no `int()`).
pub fn declared_geometry(obj: &PyJson) -> (Option<Vec<PyJson>>, Option<Vec<PyJson>>) {
    let list = |v: Option<&PyJson>| match v {
        Some(PyJson::Array(a)) => Some(a.clone()),
        _ => None,
    };
    let grid = field(obj, "chunk_grid")
        .and_then(|g| field(g, "configuration"))
        .and_then(|c| field(c, "chunk_shape"));
    let chunks = match grid {
        Some(PyJson::Array(a)) => Some(a.clone()),
        _ => list(field(obj, "chunks")),
    };
    (list(field(obj, "shape")), chunks)
}

/// Non-negative dimensions (py-hamt's geometry messages).
pub fn to_dims(v: &[i128], chunk: bool) -> Result<Vec<u64>, ShardedError> {
    v.iter()
        .map(|&d| {
            if chunk && d <= 0 {
                Err(ShardedError::Invalid(
                    "All chunk_shape dimensions must be positive.".into(),
                ))
            } else if d < 0 {
                Err(ShardedError::Invalid(
                    "All array_shape dimensions must be non-negative.".into(),
                ))
            } else {
                u64::try_from(d).map_err(|_| {
                    ShardedError::TooLarge(format!("dimension {d} does not fit in 64 bits"))
                })
            }
        })
        .collect()
}

/// The document without `consolidated_metadata` when it is a group that has that key (even
/// `null`), re-serialised as Python's `json.dumps`; `None` when nothing changes.
pub fn strip_consolidated(bytes: &[u8]) -> Option<Vec<u8>> {
    let PyJson::Object(mut items) = object(bytes)? else {
        return None;
    };
    let is_group = items
        .iter()
        .any(|(k, v)| k == "node_type" && matches!(v, PyJson::Str(s) if s == "group"));
    let pos = items
        .iter()
        .position(|(k, _)| k == "consolidated_metadata")?;
    if !is_group {
        return None;
    }
    items.remove(pos);
    Some(json::dumps(&PyJson::Object(items)).into_bytes())
}

/// `resize_variable`'s rewrite: `shape` set to `new_shape`, `json.dumps(indent=2)`.
pub fn with_shape(bytes: &[u8], new_shape: &[u64]) -> Result<Vec<u8>, ShardedError> {
    let doc = json::loads(bytes)
        .map_err(|e| ShardedError::Invalid(format!("metadata is not JSON: {e:?}")))?;
    let PyJson::Object(mut items) = doc else {
        return Err(ShardedError::Invalid(
            "metadata is not a JSON object".into(),
        ));
    };
    let shape = PyJson::Array(
        new_shape
            .iter()
            .map(|d| {
                crate::pyemu::int::parse_int(&d.to_string())
                    .map(PyJson::Int)
                    .map_err(ShardedError::Invalid)
            })
            .collect::<Result<_, _>>()?,
    );
    match items.iter_mut().find(|(k, _)| k == "shape") {
        Some(slot) => slot.1 = shape,
        None => items.push(("shape".into(), shape)),
    }
    Ok(json::dumps_indent2(&PyJson::Object(items)).into_bytes())
}

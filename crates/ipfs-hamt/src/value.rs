//! Value blocks: how a value becomes blocks, and how it is read back.
//!
//! Values are raw blocks, one per value, pointed to from the buckets. With py-hamt's
//! `values_are_bytes=False`, values are DAG-CBOR encoded but still labelled `raw`.

use bytes::Bytes;
use cid::Cid;
use ipld_core::ipld::Ipld;

use crate::block::{Block, HashAlg, RAW};
use crate::error::{Error, Result};
use crate::range::ByteRange;
use crate::store::BlockStore;

/// The blocks that store `data` and the pointer to put in the bucket.
pub fn value_blocks(data: Bytes, alg: HashAlg) -> (Cid, Vec<Block>) {
    let block = Block::new(RAW, alg, data);
    (block.cid, vec![block])
}

/// Reads (part of) the value `cid`.
pub async fn read_value(store: &dyn BlockStore, cid: &Cid, range: ByteRange) -> Result<Bytes> {
    if range.is_empty() {
        return Ok(Bytes::new());
    }
    Ok(store.get_range(cid, range).await?)
}

/// DAG-CBOR bytes of an IPLD value (py-hamt's `values_are_bytes=False` encoding).
pub fn encode_ipld(value: &Ipld) -> Result<Vec<u8>> {
    serde_ipld_dagcbor::to_vec(value).map_err(|e| Error::Value(e.to_string()))
}

/// The IPLD value in DAG-CBOR bytes.
pub fn decode_ipld(bytes: &[u8]) -> Result<Ipld> {
    serde_ipld_dagcbor::from_slice(bytes).map_err(|e| Error::Value(e.to_string()))
}

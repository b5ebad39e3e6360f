//! Value blocks: how a value becomes blocks, and how it is read back.
//!
//! Values are raw blocks, one per value, pointed to from the buckets. With py-hamt's
//! `values_are_bytes=False`, values are DAG-CBOR encoded but still labelled `raw`. Values over
//! 1 MiB become UnixFS files exactly as Kubo's `add` makes them (see [`crate::unixfs`]), so the
//! pointer is the CID py-hamt would get from Kubo.

use bytes::Bytes;
use cid::Cid;
use ipld_core::ipld::Ipld;

use crate::block::{Block, HashAlg, DAG_PB};
use crate::error::{Error, Result};
use crate::range::ByteRange;
use crate::store::BlockStore;
use crate::unixfs;

/// The blocks that store `data` and the pointer to put in the bucket.
pub fn value_blocks(data: Bytes, alg: HashAlg) -> (Cid, Vec<Block>) {
    if data.len() <= unixfs::CHUNK_SIZE {
        let block = Block::new(crate::block::RAW, alg, data);
        return (block.cid, vec![block]);
    }
    unixfs::build_file(&data, alg)
}

/// Reads (part of) the value `cid`.
pub async fn read_value(store: &dyn BlockStore, cid: &Cid, range: ByteRange) -> Result<Bytes> {
    if range.is_empty() {
        return Ok(Bytes::new());
    }
    if cid.codec() == DAG_PB {
        return unixfs::read_file(store, cid, range)
            .await
            .map_err(|e| match e {
                unixfs::UnixfsError::Store(s) => Error::Store(s),
                other => Error::BadValue {
                    cid: *cid,
                    reason: other.to_string(),
                },
            });
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

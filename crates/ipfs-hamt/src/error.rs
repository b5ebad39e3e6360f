//! The crate's error type.

use cid::Cid;

use crate::node::NodeError;
use crate::store::StoreError;

/// Everything that can go wrong in HAMT operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The block store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A node block could not be decoded.
    #[error("HAMT node {cid} is malformed: {source}")]
    Node {
        /// The node's CID.
        cid: Cid,
        /// What was wrong.
        source: Box<NodeError>,
    },
    /// A link points at a block that is not a DAG-CBOR node.
    #[error("HAMT link {cid} has codec {codec:#x}, expected dag-cbor (0x71)")]
    NotANode {
        /// The linked CID.
        cid: Cid,
        /// Its codec.
        codec: u64,
    },
    /// The tree is deeper than the hash allows (a cycle or a hostile tree).
    #[error("HAMT is deeper than its {depth}-level hash allows at node {cid}")]
    TooDeep {
        /// The node reached.
        cid: Cid,
        /// The depth reached.
        depth: usize,
    },
    /// A node is reached by two paths: a hostile or corrupt tree (a HAMT node has one place).
    #[error("HAMT node {cid} is reached twice (not a tree: a shared or cyclic subtree)")]
    RepeatedNode {
        /// The node reached again.
        cid: Cid,
    },
    /// The key is not in the HAMT.
    #[error("key not found: {0:?}")]
    KeyNotFound(String),
    /// More than `max_bucket_size` keys share every bit of their hashes.
    #[error(
        "cannot insert {key:?}: more than max_bucket_size keys share all hash bits down to \
         depth {depth} (the hash is used up; the tree is unchanged)"
    )]
    HashExhausted {
        /// The key whose hash ran out.
        key: String,
        /// The depth reached.
        depth: usize,
    },
    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A value could not be encoded or decoded as DAG-CBOR.
    #[error("value codec error: {0}")]
    Value(String),
    /// An encrypted value could not be sealed or opened (wrong key or header, damaged data).
    #[error(transparent)]
    Crypt(#[from] crate::crypt::CryptError),
    /// The sharded layout refused an operation or a block (py-hamt's messages).
    #[error(transparent)]
    Sharded(#[from] crate::sharded::ShardedError),
    /// A HAMT could not be converted to the sharded layout.
    #[error(transparent)]
    Convert(#[from] crate::sharded::ConvertError),
    /// The root is a dataset layout this build recognises but cannot read yet (see
    /// [`crate::dataset::Layout`]).
    #[error(
        "root {cid} is a {layout} dataset, which this version of ipfs-hamt cannot read \
         (it reads HAMT roots and sharded_zarr_v1/v2 manifests)"
    )]
    UnsupportedLayout {
        /// The root.
        cid: Cid,
        /// The layout found (boxed: it keeps the error small).
        layout: Box<crate::dataset::Layout>,
    },
    /// The root block is neither a HAMT node nor a sharded Zarr manifest.
    #[error(
        "root {cid} is not a dataset (neither a HAMT node nor a sharded Zarr manifest): {reason}"
    )]
    NotADataset {
        /// The root.
        cid: Cid,
        /// What the block looked like.
        reason: Box<str>,
    },
    /// The external sort of a bulk build failed: a spill file could not be written, or one
    /// read back was damaged.
    #[error("bulk build sort failed: {reason}{}", in_path(.path))]
    Spill {
        /// The spill file or directory.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A value block could not be read as a file.
    #[error("cannot read value {cid}: {reason}")]
    BadValue {
        /// The value's CID.
        cid: Cid,
        /// What was wrong.
        reason: String,
    },
}

/// " (in PATH)" for a spill error that names a file, else nothing.
fn in_path(path: &std::path::Path) -> String {
    if path.as_os_str().is_empty() {
        String::new()
    } else {
        format!(" (in {})", path.display())
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

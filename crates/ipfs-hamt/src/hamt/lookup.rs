//! Finding a key's value pointer by walking stored nodes.

use cid::Cid;

use super::cache::NodeCache;
use crate::error::{Error, Result};
use crate::key_hash::KeyHash;
use crate::node::{Link, Slot};

/// Looks `key` up in the stored subtree `cid` found at `depth`.
pub(crate) async fn find_stored(
    cache: &NodeCache,
    mut cid: Cid,
    mut depth: usize,
    hash: &KeyHash,
    key: &str,
) -> Result<Option<Cid>> {
    loop {
        let node = cache.load(&cid).await?;
        let Some(idx) = hash.slot(depth) else {
            return Err(Error::TooDeep { cid, depth });
        };
        match node.get(idx) {
            None => return Ok(None),
            Some(Slot::Bucket(b)) => return Ok(b.find(key).and_then(|e| e.cid())),
            Some(Slot::Link(link)) => match link {
                Link::Stored(child) => {
                    cid = *child;
                    depth += 1;
                }
                // Decoded nodes only hold stored links.
                Link::Dirty(_) => return Ok(None),
            },
        }
    }
}

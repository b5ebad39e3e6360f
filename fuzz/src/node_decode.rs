//! Fuzz target `node_decode`: HAMT node blocks (strict DAG-CBOR, 256 slots).
//!
//! Input: one byte choosing the bucket limit (1..=16), then the block. Properties: decoding
//! never panics; a block that decodes re-encodes byte for byte (the codec is strict, so an
//! accepted block is canonical) with `encoded_len` equal to its size; every view (slots,
//! buckets, entries, CIDs) works on it; editing a bucket (remove one entry, add one) gives a
//! node that encodes to a block that decodes again.

use bytes::Bytes;
use ipfs_hamt::node::{Node, Slot};

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&first, block)) = data.split_first() else {
        return;
    };
    let max = usize::from(first % 16) + 1;
    let Ok(node) = Node::decode(Bytes::copy_from_slice(block), max) else {
        return;
    };

    let encoded = node.encode_stored().expect("a decoded node encodes");
    assert_eq!(encoded, block, "a decoded node re-encodes byte for byte");
    assert_eq!(
        node.encoded_len(),
        block.len(),
        "encoded_len of a decoded node"
    );
    let _ = node.weight();
    let _ = format!("{node:?}");

    let mut cids = 0;
    let mut first_bucket = None;
    for (idx, slot) in node.iter() {
        assert!(node.has(idx));
        match slot {
            Slot::Bucket(b) => {
                assert!(
                    !b.is_empty() && b.len() <= max,
                    "bucket size within the limit"
                );
                let mut n = 0;
                for e in b.iter() {
                    n += 1;
                    let found = b.find(e.key).expect("every entry is found by its key");
                    assert_eq!(found.item, e.item);
                    cids += usize::from(e.cid().is_some());
                }
                assert_eq!(n, b.len(), "iteration yields len() entries");
                let _ = format!("{b:?}");
                first_bucket.get_or_insert((idx, b));
            }
            Slot::Link(_) => cids += 1,
        }
    }
    assert_eq!(
        node.cids().len(),
        cids,
        "cids() lists every pointer and link"
    );

    // Edits: drop the first entry of the first bucket, then add a new key to it.
    if let Some((idx, bucket)) = first_bucket {
        let mut edited = node.clone();
        let first = bucket.iter().next().expect("non-empty bucket");
        let without = bucket.without(first.key).expect("the key is present");
        edited.set_bucket(idx, &without);
        let added = bucket.with_entry("\u{10ffff}fuzz", first.item, max + 1);
        let edited_bytes = edited.encode_stored().expect("edited node encodes");
        let again = Node::decode(Bytes::from(edited_bytes.clone()), max).expect("edited decodes");
        assert_eq!(again.encode_stored().expect("encodes"), edited_bytes);
        if let Some(added) = added {
            let mut grown = node.clone();
            grown.set_bucket(idx, &added);
            let grown_bytes = grown.encode_stored().expect("grown node encodes");
            Node::decode(Bytes::from(grown_bytes), max + 1).expect("grown node decodes");
        }
        let _ = node.collapse(max);
    }
}

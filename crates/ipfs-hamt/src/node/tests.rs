//! Tests of node encoding and decoding.

use super::*;
use crate::block::{cid_of, HashAlg, DAG_CBOR, RAW};

fn item(v: &[u8]) -> Vec<u8> {
    encode_cid(&cid_of(RAW, HashAlg::Blake3, v))
}

/// The single-key node of FORMAT.md's worked example.
fn example() -> Vec<u8> {
    let it = item(b"value-0");
    let mut n = Node::default();
    n.set_bucket(
        63,
        &Bucket::encode(&mut [Entry {
            key: "key-0",
            item: &it,
        }]),
    );
    n.encode_stored().unwrap()
}

#[test]
fn worked_example_matches_py_hamt() {
    let bytes = example();
    assert_eq!(bytes.len(), 306);
    assert_eq!(
        cid_of(DAG_CBOR, HashAlg::Blake3, &bytes).to_string(),
        "bafyr4ihgo2rrdjny6xteslywfrhqdevjolhvzszryjktgygg6xhsxutoti"
    );
    let n = Node::decode(bytes.clone().into(), 4).unwrap();
    assert_eq!(n.encode_stored().unwrap(), bytes);
}

#[test]
fn encode_cid_matches_the_cid_crate() {
    use multihash::Multihash;
    let v0 = Cid::new_v0(Multihash::wrap(0x12, &[7u8; 32]).unwrap()).unwrap();
    let big_codec = Cid::new_v1(0x0129, Multihash::wrap(0x1e, &[1u8; 32]).unwrap());
    let short = Cid::new_v1(RAW, Multihash::wrap(0x00, b"hi").unwrap());
    for cid in [
        v0,
        big_codec,
        short,
        cid_of(DAG_CBOR, HashAlg::Sha2_256, b"x"),
    ] {
        let item = encode_cid(&cid);
        let mut want = TAG_CID.to_vec();
        let raw = cid.to_bytes();
        write_head(&mut want, MAJOR_BYTES, raw.len() as u64 + 1);
        want.push(0);
        want.extend_from_slice(&raw);
        assert_eq!(item, want);
        assert_eq!(decode_cid_item(&item, cid.codec()), Some(cid));
        assert_eq!(parse_cid(&raw), Ok(cid));
        let mut cur = std::io::Cursor::new(&raw[..]);
        assert_eq!(Cid::read_bytes(&mut cur).unwrap(), cid);
    }
    // Truncated, trailing, non-minimal varint, version 2, oversized digest: all errors.
    let raw = cid_of(RAW, HashAlg::Blake3, b"x").to_bytes();
    for bad in [
        raw[..raw.len() - 1].to_vec(),
        [raw.clone(), vec![0]].concat(),
        [vec![0x81, 0x00], raw[1..].to_vec()].concat(),
        [vec![0x02], raw[1..].to_vec()].concat(),
        [vec![0x01, 0x55, 0x13, 0x41], vec![0u8; 65]].concat(),
        vec![],
    ] {
        assert!(parse_cid(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn empty_node_cid() {
    let bytes = Node::default().encode_stored().unwrap();
    assert_eq!(
        cid_of(DAG_CBOR, HashAlg::Blake3, &bytes).to_string(),
        "bafyr4igb3js3dqlnsvmbi533lhghfet3l4r35vbi7mlrvxjb6f3n5wkc3m"
    );
}

#[test]
fn with_entry_splices_like_a_full_reencode() {
    // Every insert position (front, middle, back), replacements, both id kinds, and a
    // reused buffer holding a longer previous result: the spliced bucket must be exactly
    // what collecting, sorting and encoding all entries gives.
    let ids: Vec<Vec<u8>> = (0..6u8)
        .map(|i| {
            let cid = cid_of(RAW, HashAlg::Blake3, &[i]);
            let kind = if i % 2 == 0 {
                IdEncoding::Cid
            } else {
                IdEncoding::Multihash
            };
            let out = encode_id(&cid, kind);
            assert_eq!(out.len(), encoded_id_len(&cid, kind));
            if kind == IdEncoding::Multihash {
                // 0x58 0x22: a 34-byte string, the multihash's bytes as the cid crate has them.
                assert_eq!(out[..2], [0x58, 0x22]);
                assert_eq!(out[2..], cid.hash().to_bytes());
            }
            out
        })
        .collect();
    let keys = ["b", "aa", "key-7", "key-10", "", "zz", "key-100"];
    let mut buf = vec![0xff; 1000];
    for n in 0..4 {
        let present: Vec<Entry<'_>> = keys[..n]
            .iter()
            .zip(&ids)
            .map(|(k, i)| Entry { key: k, item: i })
            .collect();
        let bytes = Bucket::encode(&mut present.clone());
        for (j, key) in keys.iter().enumerate() {
            let item = &ids[(j + 3) % ids.len()];
            let mut want = present.clone();
            match want.iter_mut().find(|e| e.key == *key) {
                Some(e) => e.item = item,
                None => want.push(Entry { key, item }),
            }
            let fits = want.len() <= 3;
            let done = Bucket::new(&bytes).with_entry_into(key, item, 3, &mut buf);
            assert_eq!(done, fits, "{n} entries, insert {key:?}");
            if fits {
                assert_eq!(
                    buf,
                    Bucket::encode(&mut want),
                    "{n} entries, insert {key:?}"
                );
                assert_eq!(
                    Bucket::new(&bytes).with_entry(key, item, 3),
                    Some(buf.clone())
                );
            }
        }
    }
}

#[test]
fn canonical_order_and_bucket_ops() {
    let (a, b) = (item(b"a"), item(b"b"));
    let mut es = [
        Entry {
            key: "key-559",
            item: &a,
        },
        Entry {
            key: "key-36",
            item: &b,
        },
        Entry {
            key: "key-168",
            item: &a,
        },
    ];
    let bytes = Bucket::encode(&mut es);
    let bucket = Bucket::new(&bytes);
    let keys: Vec<_> = bucket.iter().map(|e| e.key).collect();
    assert_eq!(keys, ["key-36", "key-168", "key-559"]);
    assert_eq!(bucket.find("key-168").unwrap().item, &a[..]);
    assert!(bucket.find("key-999").is_none());
    assert!(bucket.with_entry("x", &a, 3).is_none());
    assert_eq!(
        Bucket::new(&bucket.with_entry("key-36", &a, 3).unwrap()).len(),
        3
    );
    assert_eq!(
        Bucket::new(&bucket.with_entry("x", &a, 4).unwrap()).len(),
        4
    );
    let smaller = bucket.without("key-36").unwrap();
    assert_eq!(Bucket::new(&smaller).len(), 2);
    assert!(bucket.without("nope").is_none());
}

fn expect_err(bytes: Vec<u8>, max: usize) -> NodeError {
    Node::decode(bytes.into(), max).unwrap_err()
}

/// Replaces slot 63's bucket in the worked example with `slot` bytes.
fn with_slot63(slot: &[u8]) -> Vec<u8> {
    let mut out = vec![0x99, 0x01, 0x00];
    out.extend(std::iter::repeat_n(0xa0, 63));
    out.extend_from_slice(slot);
    out.extend(std::iter::repeat_n(0xa0, 192));
    out
}

#[test]
fn malformed_nodes_give_typed_errors() {
    let good = example();
    // Wrong slot count.
    let mut short = vec![0x98, 0xff];
    short.extend(std::iter::repeat_n(0xa0, 255));
    assert_eq!(expect_err(short, 4), NodeError::WrongSlotCount(255));
    // Not an array.
    assert_eq!(
        expect_err(vec![0xa0], 4),
        NodeError::NotAnArray { major: 5 }
    );
    // Trailing and truncated bytes.
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(
        expect_err(trailing, 4),
        NodeError::TrailingBytes { count: 1, .. }
    ));
    for cut in 0..good.len() {
        let e = expect_err(good[..cut].to_vec(), 4);
        assert!(
            matches!(e, NodeError::Truncated { .. }),
            "cut at {cut}: {e:?}"
        );
    }
    // Wrong item type in a slot.
    assert_eq!(
        expect_err(with_slot63(&[0x01]), 4),
        NodeError::WrongSlotType { slot: 63, major: 0 }
    );
    // Link with two items.
    let it = item(b"x");
    let mut two = vec![0x82];
    two.extend_from_slice(&it);
    two.extend_from_slice(&it);
    assert_eq!(
        expect_err(with_slot63(&two), 4),
        NodeError::BadLinkLength { slot: 63, len: 2 }
    );
    // Link to something that is not a CID.
    assert!(matches!(
        expect_err(with_slot63(&[0x81, 0x01]), 4),
        NodeError::NotACid { slot: 63, .. }
    ));
    // Bad CID bytes.
    let mut bad = vec![0x81, 0xd8, 0x2a, 0x45, 0x00, 0x01, 0x71, 0x1e, 0x20];
    assert!(matches!(
        expect_err(with_slot63(&bad), 4),
        NodeError::BadCid { slot: 63, .. }
    ));
    bad[4] = 0x01; // missing multibase prefix
    assert!(matches!(
        expect_err(with_slot63(&bad), 4),
        NodeError::BadCid { slot: 63, .. }
    ));
    // Non-UTF-8 key.
    let mut nonutf = vec![0xa1, 0x62, 0xff, 0xfe];
    nonutf.extend_from_slice(&it);
    assert_eq!(
        expect_err(with_slot63(&nonutf), 4),
        NodeError::KeyNotUtf8 { slot: 63 }
    );
    // Key that is not text.
    let mut notext = vec![0xa1, 0x42, 0x61, 0x62];
    notext.extend_from_slice(&it);
    assert_eq!(
        expect_err(with_slot63(&notext), 4),
        NodeError::KeyNotText { slot: 63 }
    );
    // Keys out of canonical order, and repeated keys.
    for keys in [["bb", "a"], ["a", "a"]] {
        let mut m = vec![0xa2];
        for k in keys {
            m.push(0x60 | k.len() as u8);
            m.extend_from_slice(k.as_bytes());
            m.extend_from_slice(&it);
        }
        assert_eq!(
            expect_err(with_slot63(&m), 4),
            NodeError::KeyOrder { slot: 63 }
        );
    }
    // Oversized bucket.
    let entries: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
    let mut es: Vec<Entry> = entries
        .iter()
        .map(|k| Entry { key: k, item: &it })
        .collect();
    let b = Bucket::encode(&mut es);
    assert_eq!(
        expect_err(with_slot63(&b), 4),
        NodeError::OversizedBucket {
            slot: 63,
            len: 5,
            max: 4
        }
    );
    assert!(Node::decode(with_slot63(&b).into(), 5).is_ok());
    // Non-minimal head (256 written with 4 bytes) and indefinite length.
    let mut nonmin = vec![0x9a, 0, 0, 1, 0];
    nonmin.extend(std::iter::repeat_n(0xa0, 256));
    assert!(matches!(
        expect_err(nonmin, 4),
        NodeError::NonCanonical { offset: 0 }
    ));
    assert!(matches!(
        expect_err(vec![0x9f], 4),
        NodeError::NonCanonical { offset: 0 }
    ));
    // A huge declared length does not allocate or panic.
    assert!(matches!(
        expect_err(
            with_slot63(&[0xa1, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            4
        ),
        NodeError::Truncated { .. }
    ));
}

#[test]
fn slot_bookkeeping() {
    let it = item(b"v");
    let mut n = Node::default();
    for idx in [200u8, 3, 64, 255, 0, 63] {
        n.set_bucket(
            idx,
            &Bucket::encode(&mut [Entry {
                key: "k",
                item: &it,
            }]),
        );
    }
    let idxs: Vec<u8> = n.iter().map(|(i, _)| i).collect();
    assert_eq!(idxs, [0, 3, 63, 64, 200, 255]);
    n.clear(64);
    n.clear(64);
    assert!(n.get(64).is_none() && n.get(63).is_some());
    let bytes = n.encode_stored().unwrap();
    assert_eq!(n.encoded_len(), bytes.len());
    let back = Node::decode(bytes.clone().into(), 4).unwrap();
    assert_eq!(back.encode_stored().unwrap(), bytes);
    assert_eq!(back.cids().len(), 5);

    // Changing a decoded (shared) node gives the same bytes as building it directly.
    let mut changed = back.clone();
    let other = item(b"w");
    let two = Bucket::encode(&mut [
        Entry {
            key: "k",
            item: &it,
        },
        Entry {
            key: "j",
            item: &other,
        },
    ]);
    changed.set_bucket(3, &two);
    changed.clear(200);
    changed.set_link(0, Link::Stored(cid_of(DAG_CBOR, HashAlg::Blake3, b"child")));
    changed.set_bucket(100, &two);
    changed.set_bucket(255, &Bucket::encode(&mut []));
    let mut direct = Node::default();
    direct.set_link(0, Link::Stored(cid_of(DAG_CBOR, HashAlg::Blake3, b"child")));
    direct.set_bucket(3, &two);
    for idx in [63u8, 100] {
        let b = if idx == 100 {
            two.clone()
        } else {
            Bucket::encode(&mut [Entry {
                key: "k",
                item: &it,
            }])
        };
        direct.set_bucket(idx, &b);
    }
    assert_eq!(
        changed.encode_stored().unwrap(),
        direct.encode_stored().unwrap()
    );
    assert!(changed.get(255).is_none() && changed.get(200).is_none());
    // The original decoded node is unchanged.
    assert_eq!(back.encode_stored().unwrap(), bytes);
}

//! Fuzz target `zarr_keys`: Zarr keys and prefixes through `HamtZarrStore`.
//!
//! The input is a sequence of operations (set, get, ranged get, size, erase, erase_prefix,
//! list, list_prefix, list_dir, size_prefix, commit and reopen) on keys and prefixes built
//! from a small alphabet (so that keys share prefixes, contain `/`, `.`, `zarr.json`,
//! non-ASCII characters, empty segments...), with or without encryption. Properties: no panic;
//! invalid keys are refused by `StoreKey`/`StorePrefix` before they reach the store; the store
//! agrees with a `BTreeMap` model after every operation, also after commit and reopen.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use ipfs_hamt::crypt::{EncryptionKey, ValueCipher};
use ipfs_hamt::store::{MemoryStore, SharedStore};
use ipfs_hamt::HamtConfig;
use ipfs_hamt_zarr::HamtZarrStore;
use zarrs_storage::byte_range::ByteRange;
use zarrs_storage::{
    AsyncListableStorageTraits, AsyncReadableStorageTraits, AsyncWritableStorageTraits, StoreKey,
    StorePrefix,
};

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
}

const PIECES: [&str; 16] = [
    "a",
    "b",
    "/",
    "/",
    "c/",
    "0",
    "1",
    ".",
    "..",
    "zarr.json",
    "é",
    " ",
    "\\",
    "a/b/",
    "%2F",
    "\u{0}",
];

/// A key or prefix: up to 6 pieces of the alphabet.
fn text(input: &mut Input<'_>) -> String {
    let n = input.byte().unwrap_or(0) % 7;
    (0..n)
        .map(|_| PIECES[usize::from(input.byte().unwrap_or(0) % 16)])
        .collect()
}

fn cipher() -> ValueCipher {
    ValueCipher::new(EncryptionKey::from([9u8; 32]), b"fuzz".to_vec())
}

fn open(blocks: &SharedStore, root: ipfs_hamt::Cid, encrypted: bool) -> HamtZarrStore {
    let s =
        HamtZarrStore::open_writable(blocks.clone(), root, HamtConfig::default()).expect("reopen");
    if encrypted {
        s.with_encryption(cipher())
    } else {
        s
    }
}

type Model = BTreeMap<String, Vec<u8>>;

fn model_list(model: &Model, prefix: &str) -> Vec<String> {
    model
        .keys()
        .filter(|k| k.starts_with(prefix))
        .cloned()
        .collect()
}

fn model_dir(model: &Model, prefix: &str) -> (Vec<String>, Vec<String>) {
    let mut keys = Vec::new();
    let mut dirs = BTreeSet::new();
    for k in model.keys().filter(|k| k.starts_with(prefix)) {
        match k[prefix.len()..].find('/') {
            Some(i) => {
                dirs.insert(k[..prefix.len() + i + 1].to_owned());
            }
            None => keys.push(k.clone()),
        }
    }
    (keys, dirs.into_iter().collect())
}

fn sorted<T: ToString>(v: impl IntoIterator<Item = T>) -> Vec<String> {
    let mut v: Vec<String> = v.into_iter().map(|k| k.to_string()).collect();
    v.sort();
    v
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let encrypted = input.byte().unwrap_or(0) & 1 == 1;
    RT.with(|rt| rt.block_on(ops(&mut input, encrypted)));
}

async fn ops(input: &mut Input<'_>, encrypted: bool) {
    let blocks: SharedStore = Arc::new(MemoryStore::new());
    let mut store = HamtZarrStore::create(blocks.clone(), HamtConfig::default()).expect("create");
    if encrypted {
        store = store.with_encryption(cipher());
    }
    let mut model = Model::new();
    let mut steps = 0;
    while let Some(op) = input.byte() {
        steps += 1;
        if steps > 64 {
            break;
        }
        let t = text(input);
        match op % 12 {
            0..=2 => {
                let Ok(key) = StoreKey::new(t.clone()) else {
                    continue;
                };
                let len = usize::from(input.byte().unwrap_or(0));
                let value: Vec<u8> = (0..len).map(|i| (i as u8) ^ op).collect();
                store
                    .set(&key, Bytes::from(value.clone()))
                    .await
                    .expect("set");
                model.insert(t, value);
            }
            3 => {
                let Ok(key) = StoreKey::new(t.clone()) else {
                    continue;
                };
                let got = store.get(&key).await.expect("get");
                assert_eq!(got.as_deref(), model.get(&t).map(|v| &v[..]), "get {t:?}");
            }
            4 => {
                let Ok(key) = StoreKey::new(t.clone()) else {
                    continue;
                };
                let a = u64::from(input.byte().unwrap_or(0));
                let b = u64::from(input.byte().unwrap_or(0));
                let range = match a % 3 {
                    0 => ByteRange::FromStart(b, None),
                    1 => ByteRange::FromStart(a / 3, Some(b)),
                    _ => ByteRange::Suffix(b),
                };
                let got = store.get_partial(&key, range).await;
                match (model.get(&t), got) {
                    (None, Ok(None)) => {}
                    (Some(v), Ok(Some(bytes))) => {
                        let len = v.len() as u64;
                        let (s, e) = (range.start(len), range.end(len));
                        assert_eq!(&bytes[..], &v[s as usize..e as usize], "range of {t:?}");
                    }
                    (Some(v), Err(_)) => {
                        // Only a range past the end of the value is refused.
                        let len = v.len() as u64;
                        let past = match range {
                            ByteRange::FromStart(o, None) => o > len,
                            ByteRange::FromStart(o, Some(l)) => o + l > len,
                            ByteRange::Suffix(l) => l > len,
                        };
                        assert!(past, "in-range read of {t:?} failed");
                    }
                    (m, g) => panic!("ranged get of {t:?}: model {m:?}, store {g:?}"),
                }
            }
            5 => {
                let Ok(key) = StoreKey::new(t.clone()) else {
                    continue;
                };
                let size = store.size_key(&key).await.expect("size_key");
                assert_eq!(size, model.get(&t).map(|v| v.len() as u64), "size {t:?}");
            }
            6 => {
                let Ok(key) = StoreKey::new(t.clone()) else {
                    continue;
                };
                store.erase(&key).await.expect("erase");
                model.remove(&t);
            }
            7 => {
                let Ok(prefix) = StorePrefix::new(t.clone()) else {
                    continue;
                };
                store.erase_prefix(&prefix).await.expect("erase_prefix");
                model.retain(|k, _| !k.starts_with(&t));
            }
            8 => {
                let Ok(prefix) = StorePrefix::new(t.clone()) else {
                    continue;
                };
                let got = sorted(store.list_prefix(&prefix).await.expect("list_prefix"));
                assert_eq!(got, model_list(&model, &t), "list_prefix {t:?}");
                let all = sorted(store.list().await.expect("list"));
                assert_eq!(all, model_list(&model, ""), "list");
            }
            9 => {
                let Ok(prefix) = StorePrefix::new(t.clone()) else {
                    continue;
                };
                let got = store.list_dir(&prefix).await.expect("list_dir");
                let (keys, dirs) = model_dir(&model, &t);
                assert_eq!(sorted(got.keys()), keys, "list_dir keys {t:?}");
                assert_eq!(sorted(got.prefixes()), dirs, "list_dir prefixes {t:?}");
            }
            10 => {
                let Ok(prefix) = StorePrefix::new(t.clone()) else {
                    continue;
                };
                let size = store.size_prefix(&prefix).await.expect("size_prefix");
                let want: u64 = model
                    .iter()
                    .filter(|(k, _)| k.starts_with(&t))
                    .map(|(_, v)| v.len() as u64)
                    .sum();
                assert_eq!(size, want, "size_prefix {t:?}");
            }
            _ => {
                let root = store.commit().await.expect("commit");
                store = open(&blocks, root, encrypted);
            }
        }
    }
    // Everything reads back after a final commit.
    let root = store.commit().await.expect("commit");
    let reopened = open(&blocks, root, encrypted);
    for (k, v) in &model {
        let key = StoreKey::new(k.clone()).expect("model keys are valid");
        let got = reopened.get(&key).await.expect("get after reopen");
        assert_eq!(got.as_deref(), Some(&v[..]), "{k:?} after reopen");
    }
    assert_eq!(
        sorted(reopened.list().await.expect("list")),
        model_list(&model, "")
    );
}

//! Encryption keys never appear in `Debug` or `Display` output: of the key, the cipher, the
//! stores and readers holding it, and every error on the encrypted paths (bad key material,
//! wrong key, wrong header, damaged values).

use std::sync::Arc;

use bytes::Bytes;
use ipfs_hamt::crypt::{decrypt_value, encrypt_value, EncryptionKey, ValueCipher};
use ipfs_hamt::store::MemoryStore;
use ipfs_hamt::{HamtConfig, Writer};
use ipfs_hamt_zarr::HamtZarrStore;
use zarrs_storage::{AsyncReadableStorageTraits, AsyncWritableStorageTraits, StoreKey};

const KEY: [u8; 32] = [
    0xa7, 0x3c, 0x91, 0x5e, 0x0b, 0xd2, 0x44, 0xf8, 0x6a, 0x19, 0xc3, 0x7e, 0x25, 0xb0, 0x8d, 0x52,
    0xe9, 0x06, 0x7b, 0x33, 0xca, 0x4f, 0x98, 0x1d, 0x60, 0xb7, 0x2e, 0xf5, 0x83, 0x0c, 0xd9, 0x41,
];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Fails if `text` holds the key: its hex (either case, or any 16-digit run of it), its raw
/// bytes, or its bytes as a Rust array/slice `Debug` would print them.
fn assert_no_key(what: &str, text: &str, key: &[u8; 32]) {
    let h = hex(key);
    let lower = text.to_lowercase();
    for w in h.as_bytes().windows(16) {
        let w = std::str::from_utf8(w).unwrap();
        assert!(!lower.contains(w), "{what} shows key hex {w}: {text}");
    }
    assert!(
        !text
            .as_bytes()
            .windows(8)
            .any(|w| key.windows(8).any(|k| k == w)),
        "{what} shows raw key bytes"
    );
    let dec = format!("{:?}", &key[..6]);
    let dec = &dec[1..dec.len() - 1];
    assert!(
        !text.contains(dec),
        "{what} shows key bytes as numbers: {text}"
    );
}

fn check(what: &str, text: String) {
    assert_no_key(what, &text, &KEY);
}

#[test]
fn keys_and_ciphers_print_redacted() {
    let key = EncryptionKey::from(KEY);
    check("EncryptionKey Debug", format!("{key:?} {key:#?}"));
    let cipher = ValueCipher::new(key.clone(), b"hdr".to_vec());
    check("ValueCipher Debug", format!("{cipher:?} {cipher:#?}"));
    let from_hex = EncryptionKey::from_hex(&hex(&KEY)).unwrap();
    check("from_hex Debug", format!("{from_hex:?}"));
    let from_file = EncryptionKey::from_key_file(format!("{}\n", hex(&KEY)).as_bytes()).unwrap();
    check("from_key_file Debug", format!("{from_file:?}"));
}

#[test]
fn bad_key_material_errors_do_not_echo_it() {
    let h = hex(&KEY);
    let near_misses: Vec<Vec<u8>> = vec![
        h.as_bytes()[..63].to_vec(),                     // one digit short
        format!("{}g", &h[..63]).into_bytes(),           // a non-hex digit
        format!("{h}00").into_bytes(),                   // one byte long
        format!("{h} junk").into_bytes(),                // trailing junk
        KEY[..31].to_vec(),                              // raw, one byte short
        [&KEY[..], &[0u8]].concat(),                     // raw, one byte long
        format!("0x{}", &h[..62]).into_bytes(),          // prefixed
        h.to_uppercase().replace('A', "Z").into_bytes(), // upper case, damaged
    ];
    for bad in &near_misses {
        let e = EncryptionKey::from_key_file(bad).unwrap_err();
        check("from_key_file error", format!("{e} {e:?}"));
        if let Ok(s) = std::str::from_utf8(bad) {
            let e = EncryptionKey::from_hex(s).unwrap_err();
            check("from_hex error", format!("{e} {e:?}"));
        }
        let e = EncryptionKey::from_slice(bad).map(drop).unwrap_err();
        check("from_slice error", format!("{e} {e:?}"));
    }
}

#[tokio::test]
async fn wrong_key_header_and_damage_errors_do_not_echo_it() {
    let key = EncryptionKey::from(KEY);
    let mut other = KEY;
    other[0] ^= 1;
    let other = EncryptionKey::from(other);
    let sealed = encrypt_value(&key, b"hdr", b"plaintext", &[5u8; 24]).unwrap();
    for (k, h, v) in [
        (&other, &b"hdr"[..], &sealed[..]),
        (&key, &b"other"[..], &sealed[..]),
        (&key, &b"hdr"[..], &sealed[..30]),
        (&key, &b"hdr"[..], &sealed[..sealed.len() - 1]),
    ] {
        let e = decrypt_value(k, h, v).unwrap_err();
        check("decrypt error", format!("{e} {e:?}"));
    }

    // Through the HAMT and the Zarr store.
    let blocks = Arc::new(MemoryStore::new());
    let store = HamtZarrStore::create(blocks.clone(), HamtConfig::default())
        .unwrap()
        .with_encryption(ValueCipher::new(key.clone(), b"hdr".to_vec()));
    check("HamtZarrStore Debug", format!("{store:?} {store:#?}"));
    let k = StoreKey::new("a/zarr.json").unwrap();
    store.set(&k, Bytes::from_static(b"{}")).await.unwrap();
    let c = StoreKey::new("a/c/0").unwrap();
    store.set(&c, Bytes::from_static(b"chunk")).await.unwrap();
    let root = store.commit().await.unwrap();
    check("HamtZarrStore Debug after commit", format!("{store:?}"));

    for (name, cipher) in [
        (
            "wrong key",
            ValueCipher::new(other.clone(), b"hdr".to_vec()),
        ),
        (
            "wrong header",
            ValueCipher::new(key.clone(), b"nope".to_vec()),
        ),
    ] {
        let s = HamtZarrStore::open(blocks.clone(), root, HamtConfig::default())
            .unwrap()
            .with_encryption(cipher);
        for key in [&k, &c] {
            let e = s.get(key).await.unwrap_err();
            check(name, format!("{e} {e:?}"));
        }
        check(name, format!("{s:?}"));
    }

    // Writer/Reader Debug and HAMT errors on encrypted values.
    let cipher = ValueCipher::new(key.clone(), b"hdr".to_vec());
    let mut w = Writer::new(blocks.clone(), HamtConfig::default()).unwrap();
    cipher.insert(&mut w, "x", b"value").await.unwrap();
    w.insert("plain", b"not sealed".to_vec()).await.unwrap();
    check("Writer Debug", format!("{w:?}"));
    let r = w.reader().await.unwrap();
    check("Reader Debug", format!("{r:?}"));
    let e = cipher.get(&r, "plain").await.unwrap_err();
    check("Error", format!("{e} {e:?}"));
    let wrong = ValueCipher::new(other, b"hdr".to_vec());
    let e = wrong.get(&r, "x").await.unwrap_err();
    check("Error", format!("{e} {e:?}"));
}

/// The check itself catches the key in each form it looks for.
#[test]
fn the_check_catches_leaks() {
    for leak in [
        hex(&KEY),
        hex(&KEY).to_uppercase(),
        format!("{KEY:?}"),
        format!("{:?}", &KEY[..8]),
        format!("key prefix {}", &hex(&KEY)[10..26]),
    ] {
        let caught = std::panic::catch_unwind(|| check("leak", leak.clone())).is_err();
        assert!(caught, "not caught: {leak}");
    }
}

//! Encryption against py-hamt's `SimpleEncryptedZarrHAMTStore`: its deterministic vectors and
//! its encrypted Zarr dataset.

use std::sync::Arc;

use futures::TryStreamExt;
use ipfs_hamt::crypt::{decrypt_value, encrypt_value, CryptError, EncryptionKey, ValueCipher};
use ipfs_hamt::store::CarStore;
use ipfs_hamt::{ByteRange, Error, HamtConfig, Reader};
use sha2::Digest as _;

mod common;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn every_py_hamt_vector_encrypts_and_decrypts() {
    let v = common::golden_json("encryption_vectors.json");
    let vectors = v["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 5);
    for (i, t) in vectors.iter().enumerate() {
        let key = EncryptionKey::from_hex(t["key_hex"].as_str().unwrap()).unwrap();
        let header = unhex(t["header_hex"].as_str().unwrap());
        let nonce: [u8; 24] = unhex(t["nonce_hex"].as_str().unwrap()).try_into().unwrap();
        let plain = unhex(t["plaintext_hex"].as_str().unwrap());
        let framed = unhex(t["framed_hex"].as_str().unwrap());
        let got = encrypt_value(&key, &header, &plain, &nonce).unwrap();
        assert_eq!(hex(&got), hex(&framed), "vector {i}");
        assert_eq!(
            decrypt_value(&key, &header, &framed).unwrap(),
            plain,
            "vector {i}"
        );
        // The same through a ValueCipher.
        let c = ValueCipher::new(key.clone(), header.clone());
        assert_eq!(&c.seal_with_nonce(&plain, &nonce).unwrap()[..], &framed[..]);
        assert_eq!(&c.open(&framed).unwrap()[..], &plain[..]);
        // Wrong header, wrong key, flipped bit: typed errors.
        let mut other_header = header.clone();
        other_header.push(b'x');
        assert_eq!(
            decrypt_value(&key, &other_header, &framed),
            Err(CryptError::Decrypt)
        );
        let mut kb = *key.expose_secret();
        kb[0] ^= 1;
        assert_eq!(
            decrypt_value(&EncryptionKey::from(kb), &header, &framed),
            Err(CryptError::Decrypt)
        );
        for pos in [0, 24, framed.len() - 1] {
            let mut bad = framed.clone();
            bad[pos] ^= 0x80;
            assert_eq!(decrypt_value(&key, &header, &bad), Err(CryptError::Decrypt));
        }
    }
}

fn golden_key() -> EncryptionKey {
    EncryptionKey::from_slice(&(0u8..32).collect::<Vec<_>>()).unwrap()
}

#[tokio::test]
async fn decrypts_py_hamt_encrypted_zarr_car() {
    let cases = common::golden_json("zarr_cases.json");
    let case = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "zarr_encrypted")
        .unwrap();
    let enc = &case["encryption"];
    assert_eq!(enc["key_hex"], hex(golden_key().expose_secret()));
    assert_eq!(enc["header_ascii"], "golden-header");
    let store = CarStore::open(common::golden_dir().join("cars/zarr_encrypted.car")).unwrap();
    let root = store.roots()[0];
    assert_eq!(root.to_string(), case["root"].as_str().unwrap());
    let r = Reader::new(Arc::new(store), root, HamtConfig::default()).unwrap();
    let cipher = ValueCipher::new(golden_key(), b"golden-header".to_vec());
    let mut keys: Vec<String> = r.keys().try_collect().await.unwrap();
    keys.sort();
    let want_keys: Vec<String> = case["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, want_keys);
    let (mut chunks, mut metas) = (0, 0);
    for key in &keys {
        let stored = r.get(key).await.unwrap().unwrap();
        assert_eq!(
            stored.len() as u64,
            case["stored_value_len"][key].as_u64().unwrap(),
            "{key}"
        );
        let plain = cipher.get(&r, key).await.unwrap().unwrap();
        assert_eq!(plain.len() + 40, stored.len());
        if key.ends_with("zarr.json") {
            let got: serde_json::Value = serde_json::from_slice(&plain).unwrap();
            assert_eq!(got, case["metadata"][key], "{key}");
            metas += 1;
        } else {
            let sha = hex(&sha2::Sha256::digest(&plain));
            assert_eq!(sha, case["chunk_sha256"][key].as_str().unwrap(), "{key}");
            chunks += 1;
            // Ranges apply to the plaintext (py-hamt ignores them here).
            let tail = cipher
                .get_range(&r, key, ByteRange::Suffix(10))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&tail[..], &plain[plain.len() - 10..]);
            let mid = cipher
                .get_range(
                    &r,
                    key,
                    ByteRange::Slice {
                        offset: 3,
                        length: 5,
                    },
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&mid[..], &plain[3..8]);
        }
    }
    assert_eq!((chunks, metas), (35, 5));
    // Wrong key or header: a typed error, never garbage.
    let mut kb = *golden_key().expose_secret();
    kb[31] ^= 0xff;
    let wrong_key = ValueCipher::new(EncryptionKey::from(kb), b"golden-header".to_vec());
    let wrong_header = ValueCipher::new(golden_key(), b"golden-headeR".to_vec());
    for c in [wrong_key, wrong_header] {
        let err = c.get(&r, "zarr.json").await.unwrap_err();
        assert!(matches!(err, Error::Crypt(CryptError::Decrypt)), "{err:?}");
    }
    // A missing key is None, not an error.
    assert!(cipher.get(&r, "nope").await.unwrap().is_none());
}

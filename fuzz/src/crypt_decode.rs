//! Fuzz target `crypt_decode`: encrypted values (py-hamt's `nonce || tag || ciphertext`) and
//! key files.
//!
//! Input: a key-file candidate length byte and bytes, a header length byte and header, a
//! flip position, then the stored value. Properties: parsing a key file never panics and never
//! echoes the key; opening arbitrary bytes is a typed error (forging a Poly1305 tag is out of
//! reach); sealing the input then opening it gives it back, and any flipped bit or truncation
//! of the sealed value is `CryptError::Decrypt`/`TooShort`; reading an arbitrary stored value
//! through `ValueCipher` over a HAMT is a typed error, never a panic.

use std::sync::Arc;

use ipfs_hamt::crypt::{decrypt_value, encrypt_value, CryptError, EncryptionKey, ValueCipher};
use ipfs_hamt::store::MemoryStore;
use ipfs_hamt::{ByteRange, HamtConfig, Writer};

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
}

/// Splits `n` bytes off the front (fewer if the input is shorter).
fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (a, b) = data.split_at(n.min(data.len()));
    *data = b;
    a
}

fn byte(data: &mut &[u8]) -> u8 {
    take(data, 1).first().copied().unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs one input.
pub fn run(mut data: &[u8]) {
    let kf_len = usize::from(byte(&mut data)) % 80;
    let key_file = take(&mut data, kf_len);
    if let Ok(k) = EncryptionKey::from_key_file(key_file) {
        let shown = format!("{k:?}");
        assert!(
            !shown.contains(&hex(k.expose_secret())),
            "Debug leaks the key"
        );
    }
    if let Err(e) = EncryptionKey::from_hex(&String::from_utf8_lossy(key_file)) {
        let _ = e.to_string();
    }

    let key = EncryptionKey::from([0x42u8; 32]);
    let header_len = usize::from(byte(&mut data)) % 32;
    let header = take(&mut data, header_len).to_vec();
    let flip = usize::from(byte(&mut data)) << 8 | usize::from(byte(&mut data));
    let value = data;

    // Arbitrary bytes never open, and the error names no key material.
    match decrypt_value(&key, &header, value) {
        Ok(_) => panic!("forged ciphertext opened"),
        Err(e) => assert!(matches!(e, CryptError::Decrypt | CryptError::TooShort(_))),
    }

    // Seal and open round trip; damage is detected.
    let mut nonce = [0u8; 24];
    for (n, b) in nonce.iter_mut().zip(value.iter().rev()) {
        *n = *b;
    }
    let sealed = encrypt_value(&key, &header, value, &nonce).expect("seal");
    assert_eq!(sealed.len(), value.len() + 40);
    assert_eq!(decrypt_value(&key, &header, &sealed).expect("open"), value);
    let mut damaged = sealed.clone();
    let at = flip % damaged.len();
    damaged[at] ^= 1 << (flip % 8);
    assert!(
        decrypt_value(&key, &header, &damaged).is_err(),
        "flipped bit accepted"
    );
    assert!(decrypt_value(&key, &header, &sealed[..sealed.len() - 1]).is_err());

    // An arbitrary stored value read through the cipher over a HAMT.
    RT.with(|rt| {
        rt.block_on(async {
            let cipher = ValueCipher::new(key.clone(), header.clone());
            let mut w =
                Writer::new(Arc::new(MemoryStore::new()), HamtConfig::default()).expect("writer");
            w.insert("k", value.to_vec()).await.expect("insert");
            cipher
                .insert(&mut w, "sealed", value)
                .await
                .expect("insert sealed");
            let r = w.reader().await.expect("reader");
            assert!(cipher.get(&r, "k").await.is_err(), "unsealed value opened");
            let range = ByteRange::Slice {
                offset: (flip % 64) as u64,
                length: (flip / 64 % 64) as u64,
            };
            let _ = cipher.get_range(&r, "k", range).await;
            let plain = cipher
                .get(&r, "sealed")
                .await
                .expect("open")
                .expect("present");
            assert_eq!(plain, value);
            let part = cipher.get_range(&r, "sealed", range).await.expect("range");
            assert_eq!(
                part,
                Some(range.apply(&bytes::Bytes::copy_from_slice(value)))
            );
            let shown = format!("{cipher:?}");
            assert!(
                !shown.contains(&hex(key.expose_secret())),
                "Debug leaks the key"
            );
        })
    });
}

//! Value encryption compatible with py-hamt's `SimpleEncryptedZarrHAMTStore`.
//!
//! Every value is sealed with **XChaCha20-Poly1305** (a 32-byte key, a fresh random 24-byte
//! nonce per value) with a caller-chosen *header* as associated data. The header is
//! authenticated but not stored: a reader must know it. Each stored value is framed as
//!
//! ```text
//! nonce (24 bytes) || tag (16 bytes, Poly1305) || ciphertext (same length as the plaintext)
//! ```
//!
//! exactly as py-hamt writes it (libsodium's combined output is `ciphertext || tag`; py-hamt
//! moves the tag in front).
//!
//! **What is not hidden:** like py-hamt, only values are encrypted. HAMT keys (for Zarr: array
//! names, chunk coordinates, the dataset's structure) stay in clear in the tree's nodes, and
//! value lengths are visible (plaintext length + 40 bytes).
//!
//! Byte ranges on encrypted values are applied *after* decryption (the whole value is fetched
//! and authenticated first). py-hamt ignores ranges on encrypted stores and returns the whole
//! value; we return the bytes asked for.
//!
//! A wrong key, a wrong header or a damaged value is [`CryptError::Decrypt`], never garbage.
//! Keys are zeroized on drop and never printed (`Debug` shows `EncryptionKey(<redacted>)`).
//!
//! ```
//! use ipfs_hamt::crypt::{decrypt_value, encrypt_value, EncryptionKey, CryptError};
//! let key = EncryptionKey::from([7u8; 32]);
//! let framed = encrypt_value(&key, b"my-header", b"hello", &[0u8; 24]).unwrap();
//! assert_eq!(framed.len(), 24 + 16 + 5);
//! assert_eq!(decrypt_value(&key, b"my-header", &framed).unwrap(), b"hello");
//! assert!(matches!(decrypt_value(&key, b"other", &framed), Err(CryptError::Decrypt)));
//! assert_eq!(format!("{key:?}"), "EncryptionKey(<redacted>)");
//! ```

use bytes::Bytes;
use chacha20poly1305::aead::{AeadInOut, Generate as _, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::dataset::{ValueRead, ValueWrite};
use crate::error::Result;
use crate::range::ByteRange;

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes of the nonce at the start of each stored value.
pub const NONCE_LEN: usize = 24;
/// Bytes of the Poly1305 tag after the nonce.
pub const TAG_LEN: usize = 16;
/// Bytes a stored value has beyond its plaintext (nonce + tag).
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Why encryption or decryption failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    /// A key must be exactly 32 bytes.
    #[error("encryption key must be 32 bytes, got {0}")]
    KeyLength(usize),
    /// A key file is neither 32 raw bytes nor 64 hex characters.
    #[error("encryption key file must hold 32 raw bytes or 64 hex characters ({0} bytes found)")]
    KeyFile(usize),
    /// A stored value is shorter than nonce + tag.
    #[error("encrypted value too short: {0} bytes, at least {OVERHEAD} expected")]
    TooShort(usize),
    /// Authentication failed: wrong key, wrong header, or damaged data.
    #[error("decryption failed: wrong key, wrong header, or damaged data")]
    Decrypt,
    /// The plaintext is too long for the cipher.
    #[error("encryption failed: value too long")]
    Encrypt,
    /// The system random number generator failed.
    #[error("cannot draw a random nonce: {0}")]
    Random(String),
}

/// A 32-byte XChaCha20-Poly1305 key. Zeroized on drop; `Debug` never prints it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct EncryptionKey([u8; KEY_LEN]);

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey(<redacted>)")
    }
}

impl From<[u8; KEY_LEN]> for EncryptionKey {
    fn from(bytes: [u8; KEY_LEN]) -> Self {
        EncryptionKey(bytes)
    }
}

/// Value of an ASCII hex digit.
fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl EncryptionKey {
    /// A key from exactly 32 bytes ([`CryptError::KeyLength`] otherwise, as py-hamt's
    /// `ValueError`).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptError> {
        let arr: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| CryptError::KeyLength(bytes.len()))?;
        Ok(EncryptionKey(arr))
    }

    /// A key from 64 hex characters.
    pub fn from_hex(hex: &str) -> Result<Self, CryptError> {
        let h = hex.as_bytes();
        if h.len() != 2 * KEY_LEN {
            return Err(CryptError::KeyLength(h.len() / 2));
        }
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        for (i, pair) in h.chunks_exact(2).enumerate() {
            match (hex_val(pair[0]), hex_val(pair[1])) {
                (Some(a), Some(b)) => out[i] = (a << 4) | b,
                _ => return Err(CryptError::KeyFile(h.len())),
            }
        }
        Ok(EncryptionKey(*out))
    }

    /// A key from a key file's contents: 32 raw bytes, or 64 hex characters (surrounding
    /// whitespace, such as a final newline, ignored).
    pub fn from_key_file(contents: &[u8]) -> Result<Self, CryptError> {
        if contents.len() == KEY_LEN {
            return Self::from_slice(contents);
        }
        let trimmed = contents.trim_ascii();
        if trimmed.len() == 2 * KEY_LEN {
            if let Ok(s) = std::str::from_utf8(trimmed) {
                return Self::from_hex(s).map_err(|_| CryptError::KeyFile(contents.len()));
            }
        }
        Err(CryptError::KeyFile(contents.len()))
    }

    /// A fresh random key from the system generator.
    pub fn generate() -> Result<Self, CryptError> {
        let mut key = Key::try_generate().map_err(|e| CryptError::Random(e.to_string()))?;
        let mut out = EncryptionKey([0u8; KEY_LEN]);
        out.0.copy_from_slice(&key);
        key.zeroize();
        Ok(out)
    }

    /// The key bytes. Handle with care: do not log or print them.
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        let mut k = Key::from(self.0);
        let cipher = XChaCha20Poly1305::new(&k);
        k.zeroize();
        cipher
    }
}

fn seal(
    cipher: &XChaCha20Poly1305,
    header: &[u8],
    plaintext: &[u8],
    nonce: &[u8; NONCE_LEN],
) -> Result<Vec<u8>, CryptError> {
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&[0u8; TAG_LEN]);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_inout_detached(&XNonce::from(*nonce), header, (&mut out[OVERHEAD..]).into())
        .map_err(|_| CryptError::Encrypt)?;
    out[NONCE_LEN..OVERHEAD].copy_from_slice(&tag);
    Ok(out)
}

fn open(cipher: &XChaCha20Poly1305, header: &[u8], framed: &[u8]) -> Result<Vec<u8>, CryptError> {
    if framed.len() < OVERHEAD {
        return Err(CryptError::TooShort(framed.len()));
    }
    let (nonce, rest) = framed.split_at(NONCE_LEN);
    let (tag, ciphertext) = rest.split_at(TAG_LEN);
    let nonce = XNonce::try_from(nonce).map_err(|_| CryptError::TooShort(framed.len()))?;
    let tag = Tag::try_from(tag).map_err(|_| CryptError::TooShort(framed.len()))?;
    let mut buf = ciphertext.to_vec();
    match cipher.decrypt_inout_detached(&nonce, header, (&mut buf[..]).into(), &tag) {
        Ok(()) => Ok(buf),
        Err(_) => {
            buf.zeroize();
            Err(CryptError::Decrypt)
        }
    }
}

fn random_nonce() -> Result<[u8; NONCE_LEN], CryptError> {
    let n = XNonce::try_generate().map_err(|e| CryptError::Random(e.to_string()))?;
    let mut out = [0u8; NONCE_LEN];
    out.copy_from_slice(&n);
    Ok(out)
}

/// Seals `plaintext` with an explicit `nonce` (for test vectors; use [`ValueCipher::seal`],
/// which draws a fresh random nonce, for real data). Returns `nonce || tag || ciphertext`.
pub fn encrypt_value(
    key: &EncryptionKey,
    header: &[u8],
    plaintext: &[u8],
    nonce: &[u8; NONCE_LEN],
) -> Result<Vec<u8>, CryptError> {
    seal(&key.cipher(), header, plaintext, nonce)
}

/// Opens a `nonce || tag || ciphertext` value; [`CryptError::Decrypt`] if the key, the header
/// or the bytes are wrong.
pub fn decrypt_value(
    key: &EncryptionKey,
    header: &[u8],
    framed: &[u8],
) -> Result<Vec<u8>, CryptError> {
    open(&key.cipher(), header, framed)
}

/// A key and a header, ready to seal and open values in py-hamt's framing. Cheap to share
/// behind an `Arc`; the key is zeroized on drop and never printed.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ipfs_hamt::{crypt::{EncryptionKey, ValueCipher}, store::MemoryStore, ByteRange, HamtConfig, Writer};
/// let cipher = ValueCipher::new(EncryptionKey::from([1u8; 32]), b"hdr".to_vec());
/// let mut w = Writer::new(Arc::new(MemoryStore::new()), HamtConfig::default()).unwrap();
/// cipher.insert(&mut w, "a/zarr.json", b"{}0123").await.unwrap();
/// let r = w.reader().await.unwrap();
/// assert_eq!(r.get("a/zarr.json").await.unwrap().unwrap().len(), 40 + 6); // stored sealed
/// let part = cipher.get_range(&r, "a/zarr.json", ByteRange::Suffix(4)).await.unwrap();
/// assert_eq!(part.as_deref(), Some(&b"0123"[..]));
/// # });
/// ```
#[derive(Clone)]
pub struct ValueCipher {
    cipher: XChaCha20Poly1305,
    header: Vec<u8>,
}

impl std::fmt::Debug for ValueCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueCipher")
            .field("key", &"<redacted>")
            .field("header", &String::from_utf8_lossy(&self.header))
            .finish()
    }
}

impl ValueCipher {
    /// A cipher with `key` and the associated data `header` (py-hamt's `header`).
    pub fn new(key: EncryptionKey, header: impl Into<Vec<u8>>) -> Self {
        ValueCipher {
            cipher: key.cipher(),
            header: header.into(),
        }
    }

    /// The header (associated data).
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// Seals `plaintext` under a fresh random nonce: `nonce || tag || ciphertext`.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Bytes, CryptError> {
        Ok(seal(&self.cipher, &self.header, plaintext, &random_nonce()?)?.into())
    }

    /// Seals `plaintext` under the given nonce (deterministic; never reuse a nonce for
    /// different plaintexts under one key).
    pub fn seal_with_nonce(
        &self,
        plaintext: &[u8],
        nonce: &[u8; NONCE_LEN],
    ) -> Result<Bytes, CryptError> {
        Ok(seal(&self.cipher, &self.header, plaintext, nonce)?.into())
    }

    /// Opens a sealed value; [`CryptError::Decrypt`] on a wrong key, header or data.
    pub fn open(&self, framed: &[u8]) -> Result<Bytes, CryptError> {
        Ok(open(&self.cipher, &self.header, framed)?.into())
    }

    /// Seals `plaintext` and inserts it under `key` (the key stays in clear). `writer` is any
    /// dataset writer ([`crate::dataset::DatasetWriter`], or a layout's own such as
    /// [`crate::Writer`]).
    pub async fn insert<W: ValueWrite + ?Sized>(
        &self,
        writer: &mut W,
        key: &str,
        plaintext: &[u8],
    ) -> Result<()> {
        let sealed = self.seal(plaintext)?;
        writer.write_stored(key, sealed).await
    }

    /// The decrypted value of `key`. `reader` is any dataset reader
    /// ([`crate::dataset::DatasetReader`], or a layout's own such as [`crate::Reader`]).
    pub async fn get<R: ValueRead + ?Sized>(&self, reader: &R, key: &str) -> Result<Option<Bytes>> {
        self.get_range(reader, key, ByteRange::Full).await
    }

    /// Part of the decrypted value of `key`: the whole value is read and authenticated, then
    /// the range is applied to the plaintext.
    pub async fn get_range<R: ValueRead + ?Sized>(
        &self,
        reader: &R,
        key: &str,
        range: ByteRange,
    ) -> Result<Option<Bytes>> {
        match reader.read_stored(key).await? {
            None => Ok(None),
            Some(framed) => Ok(Some(range.apply(&self.open(&framed)?))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parsing() {
        assert_eq!(
            EncryptionKey::from_slice(&[0u8; 31]).unwrap_err(),
            CryptError::KeyLength(31)
        );
        let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        let k = EncryptionKey::from_hex(hex).unwrap();
        let want: Vec<u8> = (0..32).collect();
        assert_eq!(&k.expose_secret()[..], &want[..]);
        let k2 = EncryptionKey::from_key_file(format!("{hex}\n").as_bytes()).unwrap();
        assert_eq!(k2.expose_secret(), k.expose_secret());
        let k3 = EncryptionKey::from_key_file(&want).unwrap();
        assert_eq!(k3.expose_secret(), k.expose_secret());
        assert!(matches!(
            EncryptionKey::from_key_file(b"zz"),
            Err(CryptError::KeyFile(2))
        ));
        let bad_hex = "g".repeat(64);
        assert!(EncryptionKey::from_key_file(bad_hex.as_bytes()).is_err());
        assert_eq!(format!("{k:?}"), "EncryptionKey(<redacted>)");
        let c = ValueCipher::new(k, b"h".to_vec());
        assert!(!format!("{c:?}").contains("0001"));
    }

    #[test]
    fn random_nonces_differ_and_round_trip() {
        let c = ValueCipher::new(EncryptionKey::generate().unwrap(), b"h".to_vec());
        let a = c.seal(b"same").unwrap();
        let b = c.seal(b"same").unwrap();
        assert_ne!(a, b);
        assert_eq!(&c.open(&a).unwrap()[..], b"same");
        assert_eq!(&c.open(&b).unwrap()[..], b"same");
        assert_eq!(c.open(&a[..39]), Err(CryptError::TooShort(39)));
        let mut bad = a.to_vec();
        bad[41] ^= 1;
        assert_eq!(c.open(&bad), Err(CryptError::Decrypt));
    }
}

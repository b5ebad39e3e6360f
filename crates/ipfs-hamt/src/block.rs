//! Blocks and CIDs: building CIDs for bytes and verifying bytes against a CID.
//!
//! ```
//! use ipfs_hamt::block::{Block, HashAlg, RAW};
//! let block = Block::new(RAW, HashAlg::Blake3, b"value-0".to_vec());
//! assert_eq!(block.cid.to_string(), "bafkr4idgkfghvonyma7pxvh6zuhexexvttnyziplpl3rhcelqdpj4jijoi");
//! assert!(ipfs_hamt::block::verify(&block.cid, &block.data).is_ok());
//! ```

use bytes::Bytes;
use cid::Cid;
use multihash::Multihash;
use sha2::Digest as _;

/// Multicodec of DAG-CBOR blocks (HAMT nodes).
pub const DAG_CBOR: u64 = 0x71;
/// Multicodec of raw blocks (values).
pub const RAW: u64 = 0x55;
/// Multicodec of dag-pb blocks (UnixFS files, as Kubo makes for large values).
pub const DAG_PB: u64 = 0x70;

/// Multihash code of BLAKE3 (py-hamt's and our default).
pub const BLAKE3_CODE: u64 = 0x1e;
/// Multihash code of SHA2-256 (Kubo's default).
pub const SHA2_256_CODE: u64 = 0x12;
/// Multihash code of the identity "hash" (inline data).
pub const IDENTITY_CODE: u64 = 0x00;

/// A hash function that can name blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashAlg {
    /// BLAKE3 with a 32-byte digest (multihash 0x1e).
    #[default]
    Blake3,
    /// SHA2-256 (multihash 0x12).
    Sha2_256,
}

impl HashAlg {
    /// The multihash code of this function.
    pub fn code(self) -> u64 {
        match self {
            HashAlg::Blake3 => BLAKE3_CODE,
            HashAlg::Sha2_256 => SHA2_256_CODE,
        }
    }

    /// The function for a multihash code, if supported.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            BLAKE3_CODE => Some(HashAlg::Blake3),
            SHA2_256_CODE => Some(HashAlg::Sha2_256),
            _ => None,
        }
    }

    /// The function for a name as Kubo spells it (`blake3`, `sha2-256`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "blake3" => Some(HashAlg::Blake3),
            "sha2-256" => Some(HashAlg::Sha2_256),
            _ => None,
        }
    }

    /// The 32-byte digest of `data`.
    pub fn digest(self, data: &[u8]) -> [u8; 32] {
        match self {
            HashAlg::Blake3 => *blake3::hash(data).as_bytes(),
            HashAlg::Sha2_256 => sha2::Sha256::digest(data).into(),
        }
    }

    /// The multihash of `data`.
    pub fn multihash(self, data: &[u8]) -> Multihash<64> {
        // A 32-byte digest always fits a 64-byte multihash.
        Multihash::wrap(self.code(), &self.digest(data)).unwrap_or_default()
    }
}

/// The CIDv1 of `data` with the given codec and hash.
pub fn cid_of(codec: u64, alg: HashAlg, data: &[u8]) -> Cid {
    Cid::new_v1(codec, alg.multihash(data))
}

/// Why bytes do not match a CID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The bytes hash to something else.
    #[error("block {0} failed verification: its bytes do not hash to its CID")]
    Mismatch(Cid),
    /// The CID uses a hash function we cannot compute.
    #[error("block {cid} cannot be verified: unsupported multihash code {code:#x}")]
    UnsupportedHash {
        /// The CID.
        cid: Cid,
        /// Its multihash code.
        code: u64,
    },
}

/// Shortest truncated digest accepted (160 bits): multihashes may truncate a digest, and it
/// is then checked at its own length, as py-hamt does; shorter ones would prove little.
pub const MIN_DIGEST_LEN: usize = 20;

/// Checks `data` against `cid` for every supported hash (blake3, sha2-256, identity). A digest
/// truncated to [`MIN_DIGEST_LEN`]..32 bytes is compared with that prefix of the full digest.
pub fn verify(cid: &Cid, data: &[u8]) -> Result<(), VerifyError> {
    let mh = cid.hash();
    let ok = match mh.code() {
        IDENTITY_CODE => mh.digest() == data,
        code => match HashAlg::from_code(code) {
            Some(alg) => {
                let n = mh.digest().len();
                (MIN_DIGEST_LEN..=32).contains(&n) && mh.digest() == &alg.digest(data)[..n]
            }
            None => return Err(VerifyError::UnsupportedHash { cid: *cid, code }),
        },
    };
    if ok {
        Ok(())
    } else {
        Err(VerifyError::Mismatch(*cid))
    }
}

/// A block: bytes and the CID that names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The CID of `data`.
    pub cid: Cid,
    /// The bytes.
    pub data: Bytes,
}

impl Block {
    /// Hashes `data` and builds its CIDv1.
    pub fn new(codec: u64, alg: HashAlg, data: impl Into<Bytes>) -> Self {
        let data = data.into();
        Block {
            cid: cid_of(codec, alg, &data),
            data,
        }
    }

    /// Pairs `data` with `cid` after checking that they match.
    pub fn verified(cid: Cid, data: impl Into<Bytes>) -> Result<Self, VerifyError> {
        let data = data.into();
        verify(&cid, &data)?;
        Ok(Block { cid, data })
    }
}

#[cfg(test)]
mod truncated_tests {
    use super::*;

    #[test]
    fn truncated_digests_are_checked_at_their_length() {
        let data = b"truncated digest block";
        for alg in [HashAlg::Blake3, HashAlg::Sha2_256] {
            let full = alg.digest(data);
            for n in [20usize, 24, 31] {
                let mh = Multihash::<64>::wrap(alg.code(), &full[..n]).unwrap();
                let cid = Cid::new_v1(RAW, mh);
                assert!(verify(&cid, data).is_ok(), "{n}");
                assert!(matches!(
                    verify(&cid, b"wrong"),
                    Err(VerifyError::Mismatch(_))
                ));
            }
            let short = Cid::new_v1(RAW, Multihash::<64>::wrap(alg.code(), &full[..8]).unwrap());
            assert!(
                verify(&short, data).is_err(),
                "8-byte digests prove too little"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_detects_mismatch_and_unknown_hash() {
        let b = Block::new(RAW, HashAlg::Sha2_256, b"abc".to_vec());
        assert!(verify(&b.cid, b"abc").is_ok());
        assert_eq!(verify(&b.cid, b"abd"), Err(VerifyError::Mismatch(b.cid)));
        let mh = Multihash::<64>::wrap(0x13, &[0u8; 64]).unwrap();
        let cid = Cid::new_v1(RAW, mh);
        assert!(matches!(
            verify(&cid, b""),
            Err(VerifyError::UnsupportedHash { code: 0x13, .. })
        ));
        let id = Cid::new_v1(RAW, Multihash::wrap(IDENTITY_CODE, b"hi").unwrap());
        assert!(verify(&id, b"hi").is_ok());
        assert!(verify(&id, b"ho").is_err());
    }

    #[test]
    fn blake3_raw_matches_py_hamt() {
        let b = Block::new(RAW, HashAlg::Blake3, b"value-0".to_vec());
        assert_eq!(
            b.cid.to_string(),
            "bafkr4idgkfghvonyma7pxvh6zuhexexvttnyziplpl3rhcelqdpj4jijoi"
        );
    }
}

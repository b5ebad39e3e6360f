//! The two operations value encryption needs, for any dataset handle: read a stored value by
//! key, store a value under a key. [`crate::crypt::ValueCipher`] works on anything that has
//! them, so an encrypted dataset costs no code per layout.

use async_trait::async_trait;
use bytes::Bytes;

use super::{DatasetReader, DatasetWriter};
use crate::error::Result;
use crate::hamt::{Reader, Writer};

/// Reads stored (possibly sealed) values by key.
#[async_trait]
pub trait ValueRead: Send + Sync {
    /// The stored value of `key`, or `None` if absent.
    async fn read_stored(&self, key: &str) -> Result<Option<Bytes>>;
}

/// Stores (possibly sealed) values under keys.
#[async_trait]
pub trait ValueWrite: Send {
    /// Sets `key` to the stored bytes `value`.
    async fn write_stored(&mut self, key: &str, value: Bytes) -> Result<()>;
}

#[async_trait]
impl ValueRead for DatasetReader {
    async fn read_stored(&self, key: &str) -> Result<Option<Bytes>> {
        self.get(key).await
    }
}

#[async_trait]
impl ValueRead for DatasetWriter {
    async fn read_stored(&self, key: &str) -> Result<Option<Bytes>> {
        self.get(key).await
    }
}

#[async_trait]
impl ValueWrite for DatasetWriter {
    async fn write_stored(&mut self, key: &str, value: Bytes) -> Result<()> {
        self.insert(key, value).await
    }
}

// The HAMT's own handles too, so code written against them keeps working.
#[async_trait]
impl ValueRead for Reader {
    async fn read_stored(&self, key: &str) -> Result<Option<Bytes>> {
        self.get(key).await
    }
}

#[async_trait]
impl ValueRead for Writer {
    async fn read_stored(&self, key: &str) -> Result<Option<Bytes>> {
        self.get(key).await
    }
}

#[async_trait]
impl ValueWrite for Writer {
    async fn write_stored(&mut self, key: &str, value: Bytes) -> Result<()> {
        self.insert(key, value).await
    }
}

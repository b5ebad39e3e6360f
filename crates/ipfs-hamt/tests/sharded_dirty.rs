//! `ShardedWriter::dirty_shards`: the shards a flush would write (what py-hamt's
//! `_shard_data_cache._dirty_shards` holds, exposed by the Python package).

use std::sync::Arc;

use bytes::Bytes;
use ipfs_hamt::sharded::{ShardedConfig, ShardedWriter};
use ipfs_hamt::store::MemoryStore;

const ARRAY: &str = r#"{"zarr_format":3,"node_type":"array","shape":[4,4],"data_type":"uint8","chunk_grid":{"name":"regular","configuration":{"chunk_shape":[2,2]}},"chunk_key_encoding":{"name":"default","configuration":{"separator":"/"}},"fill_value":0,"codecs":[{"name":"bytes"}]}"#;

#[tokio::test]
async fn dirty_shards_follow_writes_flushes_and_deletes() {
    let store = Arc::new(MemoryStore::new());
    // 4 chunks (2 x 2), 2 per shard: chunks (0,0),(0,1) in shard 0, (1,0),(1,1) in shard 1.
    let mut w = ShardedWriter::create_v2(store, ShardedConfig::default(), 2).unwrap();
    assert!(w.dirty_shards().is_empty());
    w.set("a/zarr.json", Bytes::from_static(ARRAY.as_bytes()))
        .await
        .unwrap();
    // Registering the array writes no shard yet.
    assert!(w.dirty_shards().is_empty());
    w.set("a/c/1/1", Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(w.dirty_shards(), vec![("a".to_string(), 1)]);
    w.set("a/c/0/0", Bytes::from_static(b"y")).await.unwrap();
    assert_eq!(
        w.dirty_shards(),
        vec![("a".to_string(), 0), ("a".to_string(), 1)]
    );
    w.flush().await.unwrap();
    assert!(w.dirty_shards().is_empty());
    w.delete("a/c/0/0").await.unwrap();
    assert_eq!(w.dirty_shards(), vec![("a".to_string(), 0)]);
    // Metadata changes dirty the root, not a shard.
    w.flush().await.unwrap();
    w.set("a/zarr.json", Bytes::from_static(ARRAY.as_bytes()))
        .await
        .unwrap();
    assert!(w.dirty_shards().is_empty());
}

//! py-hamt 3.6.0's sharded golden vectors (`tests/golden/sharded`): every case reads back as
//! py-hamt reads it, and every case is rebuilt by our writer from the same operations, to the
//! same root and the same CAR bytes.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use ipfs_hamt::block::{HashAlg, RAW};
use ipfs_hamt::sharded::{ReadMode, ShardedConfig, ShardedReader, ShardedWriter};
use ipfs_hamt::store::{car::write_car, BlockStore, CarStore, MemoryStore};
use ipfs_hamt::{ByteRange, Cid};
use serde_json::Value;
use sha2::Digest as _;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/sharded")
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir().join(name)).unwrap()).unwrap()
}

fn case(name: &str) -> Value {
    json("sharded_cases.json")["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
        .clone()
}

fn cid(s: &str) -> Cid {
    s.parse().unwrap()
}

/// A memory store holding the blocks of the given CARs.
async fn store_with(cars: &[&str]) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    for car in cars {
        let c = CarStore::open(dir().join(car)).unwrap();
        let mut blocks = Vec::new();
        for id in c.cids() {
            let data = c.get(&id).await.unwrap();
            blocks.push(ipfs_hamt::Block::verified(id, data).unwrap());
        }
        store.put_many(blocks).await.unwrap();
    }
    store
}

async fn car_sha(store: &MemoryStore, root: &Cid) -> String {
    let mut out = Vec::new();
    write_car(store, root, &mut out).await.unwrap();
    hex(&sha2::Sha256::digest(&out))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn cfg() -> ShardedConfig {
    ShardedConfig::default()
}

fn cfg_mode(read_mode: ReadMode) -> ShardedConfig {
    ShardedConfig {
        read_mode,
        ..ShardedConfig::default()
    }
}

/// Checks every recorded read, listing and list_dir of a case against a reader.
async fn check_reads(c: &Value, r: &ShardedReader) {
    let name = c["name"].as_str().unwrap();
    let list = r.list().await.unwrap();
    let want: Vec<String> = serde_json::from_value(c["list_order"].clone()).unwrap();
    assert_eq!(list, want, "{name}: list order");
    let streamed: Vec<String> = r.entries().map_ok(|(k, _)| k).try_collect().await.unwrap();
    assert_eq!(streamed, want, "{name}: streamed entries");
    for (prefix, expect) in c["list_dir"].as_object().unwrap() {
        match r.list_dir(prefix).await {
            Ok(got) => assert_eq!(
                serde_json::to_value(&got).unwrap(),
                *expect,
                "{name}: list_dir({prefix:?})"
            ),
            Err(e) => assert_eq!(
                Value::String(e.to_string()),
                *expect,
                "{name}: list_dir({prefix:?})"
            ),
        }
    }
    assert_eq!(
        r.manifest().primary.as_deref().unwrap_or(""),
        c["primary_array_path_after_reopen"].as_str().unwrap(),
        "{name}: primary"
    );
    for (key, want) in c["reads"].as_object().unwrap() {
        let got = r.get(key).await;
        check_get(name, key, got, &want["get"]);
        assert_eq!(
            r.exists(key).await.unwrap(),
            want["exists"].as_bool().unwrap(),
            "{name}: exists {key}"
        );
        if let Some(ranges) = want.get("ranges") {
            for (label, range) in [
                (
                    "range(2,10)",
                    ByteRange::Slice {
                        offset: 2,
                        length: 8,
                    },
                ),
                ("offset(5)", ByteRange::From(5)),
                ("suffix(4)", ByteRange::Suffix(4)),
            ] {
                if let Some(expect) = ranges.get(label) {
                    check_get(name, key, r.get_range(key, range).await, expect);
                }
            }
        }
    }
}

fn check_get(name: &str, key: &str, got: ipfs_hamt::Result<Option<Bytes>>, want: &Value) {
    match (got, want) {
        (Ok(None), Value::Null) => {}
        (Ok(Some(b)), Value::Object(w)) => {
            assert_eq!(
                b.len() as u64,
                w["len"].as_u64().unwrap(),
                "{name}: len {key}"
            );
            assert_eq!(
                hex(&sha2::Sha256::digest(&b)),
                w["sha256"].as_str().unwrap(),
                "{name}: bytes {key}"
            );
        }
        (Err(e), Value::String(s)) => {
            assert!(s.ends_with(&e.to_string()), "{name}: {key}: {e} vs {s}")
        }
        (got, want) => panic!("{name}: get {key}: {got:?} vs {want}"),
    }
}

#[tokio::test]
async fn every_case_reads_back_as_py_hamt_reads_it() {
    let cases = json("sharded_cases.json");
    for c in cases["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let store = store_with(&[c["car"].as_str().unwrap()]).await;
        let root = cid(c["root"].as_str().unwrap());
        // The root block round-trips through our codec byte for byte.
        let bytes = store.get(&root).await.unwrap();
        assert_eq!(hex(&bytes), c["root_block_hex"].as_str().unwrap(), "{name}");
        let m = ipfs_hamt::sharded::Manifest::decode(&bytes).unwrap();
        assert_eq!(
            m.encode().unwrap(),
            bytes.to_vec(),
            "{name}: re-encoded root"
        );
        // So does every shard.
        for (path, shards) in c["shards"].as_object().unwrap() {
            let key = if path == "<v1 global index>" {
                ""
            } else {
                path.as_str()
            };
            let cps = m.arrays[key].chunks_per_shard;
            for (i, s) in shards.as_array().unwrap().iter().enumerate() {
                if s.is_null() {
                    continue;
                }
                let data = store.get(&cid(s["cid"].as_str().unwrap())).await.unwrap();
                let e = ipfs_hamt::sharded::shard::decode(&data, i as u64, cps).unwrap();
                assert_eq!(
                    ipfs_hamt::sharded::shard::encode(&e),
                    data.to_vec(),
                    "{name}: shard {path}/{i}"
                );
            }
        }
        for mode in [ReadMode::Full, ReadMode::Sparse, ReadMode::Auto] {
            let r = ShardedReader::open(store.clone(), root, cfg_mode(mode))
                .await
                .unwrap();
            check_reads(c, &r).await;
        }
        assert_eq!(
            car_sha(&store, &root).await,
            c["car_sha256"].as_str().unwrap(),
            "{name}: CAR bytes"
        );
    }
}

/// Writes every key of `list_order` (metadata first, then chunks) with the golden value.
async fn replay_keys(w: &mut ShardedWriter, src: &ShardedReader, keys: &[String]) {
    for k in keys {
        let v = src.get(k).await.unwrap().unwrap();
        w.set(k, v).await.unwrap();
    }
}

/// Makes `w` hold exactly the keys and values of `target` (a write session as xarray does it:
/// metadata first, then changed chunks, then deletions).
async fn sync_to(w: &mut ShardedWriter, target: &ShardedReader) {
    let want: Vec<(String, Cid)> = target.entries().try_collect().await.unwrap();
    for (k, c) in &want {
        if w.get_pointer(k).await.unwrap() != Some(*c) {
            let v = target.get(k).await.unwrap().unwrap();
            w.set(k, v).await.unwrap();
        }
    }
    let keep: std::collections::HashSet<&String> = want.iter().map(|(k, _)| k).collect();
    for k in w.list().await.unwrap() {
        if !keep.contains(&k) {
            w.delete(&k).await.unwrap();
        }
    }
}

#[tokio::test]
async fn xarray_written_cases_are_rebuilt_to_the_same_root_and_car() {
    for name in ["v2_group0", "v2_graft_source"] {
        let c = case(name);
        let golden = store_with(&[c["car"].as_str().unwrap()]).await;
        let src = ShardedReader::open(golden, cid(c["root"].as_str().unwrap()), cfg())
            .await
            .unwrap();
        let store = Arc::new(MemoryStore::new());
        let mut w = ShardedWriter::create_v2(store.clone(), cfg(), 3).unwrap();
        let keys: Vec<String> = serde_json::from_value(c["list_order"].clone()).unwrap();
        replay_keys(&mut w, &src, &keys).await;
        let root = w.flush().await.unwrap();
        assert_eq!(root.to_string(), c["root"].as_str().unwrap(), "{name}");
        assert_eq!(
            car_sha(&store, &root).await,
            c["car_sha256"].as_str().unwrap(),
            "{name}: CAR"
        );
        assert_eq!(w.flush().await.unwrap(), root, "second flush");
    }
    // v1: the first chunk written seals the primary array; coordinate chunks go to metadata.
    let c = case("v1");
    let golden = store_with(&["cars/v1.car"]).await;
    let src = ShardedReader::open(golden, cid(c["root"].as_str().unwrap()), cfg())
        .await
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut w =
        ShardedWriter::create_v1(store.clone(), cfg(), vec![8, 6, 8], vec![2, 3, 4], 3).unwrap();
    let keys: Vec<String> = serde_json::from_value(c["list_order"].clone()).unwrap();
    replay_keys(&mut w, &src, &keys).await;
    let root = w.flush().await.unwrap();
    assert_eq!(root.to_string(), c["root"].as_str().unwrap(), "v1");
    assert_eq!(
        car_sha(&store, &root).await,
        c["car_sha256"].as_str().unwrap(),
        "v1: CAR"
    );
}

#[tokio::test]
async fn resize_append_remap_graft_and_migrate_chains_give_py_hamt_roots() {
    let store = store_with(&[
        "cars/v2_group0.car",
        "cars/v2_resize_region.car",
        "cars/v2_append.car",
        "cars/v2_graft_source.car",
        "cars/v1.car",
    ])
    .await;
    let g0 = cid(case("v2_group0")["root"].as_str().unwrap());
    // c1: resize + resize_variable, then a region write.
    let c1 = case("v2_resize_region");
    let mut w = ShardedWriter::open(store.clone(), g0, cfg()).await.unwrap();
    w.resize_store(vec![12, 6, 8], Some("0/temp"))
        .await
        .unwrap();
    w.resize_variable("0/temp", vec![12, 6, 8]).await.unwrap();
    w.resize_store(vec![12], Some("0/time")).await.unwrap();
    w.resize_variable("0/time", vec![12]).await.unwrap();
    assert_eq!(
        w.flush().await.unwrap().to_string(),
        c1["root_resized_only"].as_str().unwrap(),
        "resized only"
    );
    let target = ShardedReader::open(store.clone(), cid(c1["root"].as_str().unwrap()), cfg())
        .await
        .unwrap();
    sync_to(&mut w, &target).await;
    let r1 = w.flush().await.unwrap();
    assert_eq!(
        r1.to_string(),
        c1["root"].as_str().unwrap(),
        "v2_resize_region"
    );
    // c2: append along time.
    let c2 = case("v2_append");
    let mut w = ShardedWriter::open(store.clone(), r1, cfg()).await.unwrap();
    let target = ShardedReader::open(store.clone(), cid(c2["root"].as_str().unwrap()), cfg())
        .await
        .unwrap();
    sync_to(&mut w, &target).await;
    let r2 = w.flush().await.unwrap();
    assert_eq!(r2.to_string(), c2["root"].as_str().unwrap(), "v2_append");
    // c3: store-level remap (lon grows: slow path), then shrink.
    let c3 = case("v2_remap");
    let mut w = ShardedWriter::open(store.clone(), r2, cfg()).await.unwrap();
    w.resize_store(vec![14, 6, 12], Some("0/temp"))
        .await
        .unwrap();
    assert_eq!(
        w.flush().await.unwrap().to_string(),
        c3["root_after_lon_growth"].as_str().unwrap(),
        "lon growth"
    );
    w.resize_store(vec![9, 6, 12], Some("0/temp"))
        .await
        .unwrap();
    let r3 = w.flush().await.unwrap();
    assert_eq!(r3.to_string(), c3["root"].as_str().unwrap(), "v2_remap");
    assert_eq!(
        car_sha(&store, &r3).await,
        c3["car_sha256"].as_str().unwrap(),
        "v2_remap CAR"
    );
    // d: graft a separately built batch.
    let cd = case("v2_graft");
    let src = cid(cd["graft_source_root"].as_str().unwrap());
    let mut w = ShardedWriter::open(store.clone(), g0, cfg()).await.unwrap();
    w.resize_store(vec![12, 6, 8], Some("0/temp"))
        .await
        .unwrap();
    w.resize_variable("0/temp", vec![12, 6, 8]).await.unwrap();
    w.resize_store(vec![12], Some("0/time")).await.unwrap();
    w.resize_variable("0/time", vec![12]).await.unwrap();
    w.graft_store(src, &[4, 0, 0], Some("0/temp"), Some("0/temp"))
        .await
        .unwrap();
    w.graft_store(src, &[2], Some("0/time"), Some("0/time"))
        .await
        .unwrap();
    assert_eq!(
        w.flush().await.unwrap().to_string(),
        cd["root"].as_str().unwrap(),
        "v2_graft"
    );
    // Migration of the v1 store.
    let cm = case("v1_migrated_to_v2");
    let mut w = ShardedWriter::open(
        store.clone(),
        cid(case("v1")["root"].as_str().unwrap()),
        cfg(),
    )
    .await
    .unwrap();
    let r = w.migrate_v1_to_v2("0/temp").await.unwrap();
    assert_eq!(
        r.to_string(),
        cm["root"].as_str().unwrap(),
        "v1_migrated_to_v2"
    );
    assert_eq!(
        car_sha(&store, &r).await,
        cm["car_sha256"].as_str().unwrap(),
        "migrated CAR"
    );
}

#[tokio::test]
async fn hamt_to_sharded_conversion_gives_py_hamt_roots() {
    for name in ["converted_from_hamt_zarr3", "converted_from_hamt_zarr2"] {
        let c = case(name);
        let store = store_with(&[c["hamt_car"].as_str().unwrap()]).await;
        let hamt_root = cid(c["hamt_root"].as_str().unwrap());
        let mut seen = 0;
        let root =
            ipfs_hamt::sharded::convert_hamt_to_sharded(store.clone(), hamt_root, 3, cfg(), |n| {
                seen = n
            })
            .await
            .unwrap();
        assert_eq!(root.to_string(), c["root"].as_str().unwrap(), "{name}");
        assert_eq!(
            seen as usize,
            c["hamt_keys_in_iteration_order"].as_array().unwrap().len()
        );
        assert_eq!(
            car_sha(&store, &root).await,
            c["car_sha256"].as_str().unwrap(),
            "{name}: CAR"
        );
    }
}

#[tokio::test]
async fn direct_api_case_v2_api() {
    let c = case("v2_api");
    let meta = |k: &str| {
        c["metadata_values"][k]["text"]
            .as_str()
            .unwrap()
            .as_bytes()
            .to_vec()
    };
    let store = Arc::new(MemoryStore::new());
    let mut w = ShardedWriter::create_v2(store.clone(), cfg(), 4).unwrap();
    let mut log = Vec::new();
    let put = |k: &str, v: Vec<u8>| (k.to_string(), v);
    let mut sets = vec![
        put("g/a/zarr.json", meta("g/a/zarr.json")),
        put("g/b/.zarray", meta("g/b/.zarray")),
    ];
    for i in 0..3u8 {
        for j in 0..2u8 {
            sets.push(put(&format!("g/a/c/{i}/{j}"), [i, j].repeat(3)));
        }
    }
    for (k, v) in [
        ("g/b/0.0", &b"b00"[..]),
        ("g/b/1.1", b"b11"),
        ("g/b/1/0", b"b10"),
        ("g/b/c/0/1", b"b01"),
        ("g/a/c/9/9", b"oob"),
        ("g/a/c/x/0", b"bad"),
        ("g/nometa/c/0", b"nm"),
        ("g/a/.zattrs", br#"{"x": 1}"#),
    ] {
        sets.push(put(k, v.to_vec()));
    }
    for (k, v) in sets {
        match w.set(&k, v).await {
            Ok(_) => log.push(serde_json::json!([k, "ok"])),
            Err(e) => log.push(serde_json::json!([k, format!("RuntimeError: {e}")])),
        }
    }
    let want_log: Vec<Value> = c["set_log"].as_array().unwrap()[..16].to_vec();
    assert_eq!(log, want_log);
    assert_eq!(
        w.flush().await.unwrap().to_string(),
        c["root_before_root_group"].as_str().unwrap()
    );
    let group = r#"{"zarr_format": 3, "node_type": "group", "attributes": {"k": "\u00e9"}, "consolidated_metadata": {"kind": "inline", "must_understand": false, "metadata": {}}}"#;
    w.set("zarr.json", group.as_bytes().to_vec()).await.unwrap();
    for k in ["g/a/c/0/0", "g/a/c/0/1", "g/a/c/1/0", "g/a/c/1/1"] {
        w.delete(k).await.unwrap();
    }
    let chunk = ipfs_hamt::Block::new(RAW, HashAlg::Blake3, &b"pointer-chunk"[..]);
    let note = ipfs_hamt::Block::new(RAW, HashAlg::Blake3, &br#"{"note": "pointer"}"#[..]);
    store
        .put_many(vec![chunk.clone(), note.clone()])
        .await
        .unwrap();
    w.set_pointer("g/a/c/2/1", chunk.cid).await.unwrap();
    w.set_pointer("g/note.zattrs", note.cid).await.unwrap();
    let root = w.flush().await.unwrap();
    assert_eq!(root.to_string(), c["root"].as_str().unwrap());
    assert_eq!(
        car_sha(&store, &root).await,
        c["car_sha256"].as_str().unwrap()
    );
}

#[tokio::test]
async fn probes_roots_modes_and_errors() {
    let p = json("probes.json");
    // Empty and seeded roots.
    let store = Arc::new(MemoryStore::new());
    let e = &p["empty_roots"];
    let mut w = ShardedWriter::create_v2(store.clone(), cfg(), 3).unwrap();
    assert_eq!(
        w.flush().await.unwrap().to_string(),
        e["v2_empty (cps 3)"]["root"].as_str().unwrap()
    );
    let mut w =
        ShardedWriter::create_v1(store.clone(), cfg(), vec![8, 6, 8], vec![2, 3, 4], 3).unwrap();
    assert_eq!(
        w.flush().await.unwrap().to_string(),
        e["v1_empty (8,6,8)/(2,3,4) cps 3"]["root"]
            .as_str()
            .unwrap()
    );
    let mut w =
        ShardedWriter::create_v2_seeded(store.clone(), cfg(), 2, "/x/", vec![5], vec![2]).unwrap();
    assert_eq!(
        w.flush().await.unwrap().to_string(),
        e["v2_seeded (5,)/(2,) cps 2 primary '/x/'"]["root"]
            .as_str()
            .unwrap()
    );
    // Classification tables (keys, errors, metadata) on the golden stores.
    let g0 = case("v2_group0");
    let s0 = store_with(&["cars/v2_group0.car"]).await;
    let r0 = ShardedReader::open(s0.clone(), cid(g0["root"].as_str().unwrap()), cfg())
        .await
        .unwrap();
    check_classify(r0.manifest(), &p["classify_v2_group0"]);
    for (k, want) in p["effective_read_key_v2_group0"].as_object().unwrap() {
        assert_eq!(
            r0.manifest().effective_read_key(k),
            want.as_str().unwrap(),
            "{k}"
        );
    }
    let c1 = case("v1");
    let s1 = store_with(&["cars/v1.car"]).await;
    let r1 = ShardedReader::open(s1.clone(), cid(c1["root"].as_str().unwrap()), cfg())
        .await
        .unwrap();
    check_classify(r1.manifest(), &p["classify_v1"]);
    let ca = case("v2_api");
    let sa = store_with(&["cars/v2_api.car"]).await;
    let ra = ShardedReader::open(sa, cid(ca["root"].as_str().unwrap()), cfg())
        .await
        .unwrap();
    check_classify(ra.manifest(), &p["classify_v2_api"]);
    // Auto mode: 255 sparse reads of one chunk, the 256th latches and caches the shard.
    let r = ShardedReader::open(s0.clone(), cid(g0["root"].as_str().unwrap()), cfg())
        .await
        .unwrap();
    for _ in 0..255 {
        r.get("0/temp/c/0/0/0").await.unwrap().unwrap();
    }
    assert_eq!(r.shard_fetches(), 255);
    assert!(!r.full_mode_latched());
    r.get("0/temp/c/0/0/0").await.unwrap().unwrap();
    assert!(r.full_mode_latched());
    assert_eq!(r.cached_shards(), 1);
    r.get("0/temp/c/0/0/1").await.unwrap().unwrap();
    assert_eq!(r.shard_fetches(), 256, "served from the cache once latched");
    // Flush after writes, delete_dir, clear.
    let mut w = ShardedWriter::open(s0.clone(), cid(g0["root"].as_str().unwrap()), cfg())
        .await
        .unwrap();
    for k in [
        "0/temp/c/3/1/1",
        "0/temp/c/0/0/0",
        "0/time/c/0",
        "0/temp/c/1/1/1",
    ] {
        w.set(k, k.as_bytes().to_vec()).await.unwrap();
    }
    assert_eq!(
        w.flush().await.unwrap().to_string(),
        p["flush_save_order"]["root"].as_str().unwrap()
    );
    let mut w = ShardedWriter::open(s0.clone(), cid(g0["root"].as_str().unwrap()), cfg())
        .await
        .unwrap();
    w.delete_dir("0/lat").await.unwrap();
    assert_eq!(
        w.flush().await.unwrap().to_string(),
        p["delete_dir_0_lat"]["root"].as_str().unwrap()
    );
    let mut w = ShardedWriter::open(s0.clone(), cid(g0["root"].as_str().unwrap()), cfg())
        .await
        .unwrap();
    w.clear().await.unwrap();
    assert_eq!(
        w.flush().await.unwrap().to_string(),
        p["clear_v2"]["root"].as_str().unwrap()
    );
    // exists/get never dirty a store.
    let mut w = ShardedWriter::open(s0.clone(), cid(g0["root"].as_str().unwrap()), cfg())
        .await
        .unwrap();
    w.get("0/temp/c/0/0/0").await.unwrap();
    assert!(!w.is_dirty());
    assert_eq!(
        w.flush().await.unwrap().to_string(),
        g0["root"].as_str().unwrap()
    );
}

fn check_classify(m: &ipfs_hamt::sharded::Manifest, table: &Value) {
    use ipfs_hamt::sharded::KeyKind;
    for (key, want) in table.as_object().unwrap() {
        let got = match m.classify(key) {
            Ok(KeyKind::Metadata) => Value::String("metadata".into()),
            Ok(KeyKind::Chunk { path, coords }) => {
                serde_json::json!({"array_path": path, "coords": coords.iter().map(|c| *c as i64).collect::<Vec<_>>()})
            }
            Err(e) => Value::String(format!("{}: {e}", e.py_class())),
        };
        assert_eq!(&got, want, "classify {key:?}");
    }
}

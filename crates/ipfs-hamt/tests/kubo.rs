//! `KuboStore` against a real IPFS node (`IPFS_RPC_URL`, `IPFS_GATEWAY_URL`; scripts/test.sh
//! starts one), and through a fault-injecting HTTP proxy placed between the store and the node.
//!
//! Without the node every test prints "skipped".

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use ipfs_hamt::block::{Block, HashAlg, RAW};
use ipfs_hamt::store::kubo::{KuboConfig, KuboStore, WriteMode};
use ipfs_hamt::store::{BlockStore, DiskStore, MemoryStore, SharedStore, StoreError};
use ipfs_hamt::{unixfs, ByteRange, Cid, HamtConfig, Reader, Writer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The node's RPC and gateway URLs, or None (and "skipped" printed).
fn node(test: &str) -> Option<(String, String)> {
    match (
        std::env::var("IPFS_RPC_URL").ok(),
        std::env::var("IPFS_GATEWAY_URL").ok(),
    ) {
        (Some(r), Some(g)) if !r.is_empty() && !g.is_empty() => Some((r, g)),
        _ => {
            println!("{test}: skipped (IPFS_RPC_URL / IPFS_GATEWAY_URL not set)");
            None
        }
    }
}

fn config(rpc: &str, gw: &str) -> KuboConfig {
    let mut c = KuboConfig::new(rpc).unwrap();
    c.set_gateways([gw]).unwrap();
    c
}

/// A config for fault tests: short timeout and delays.
fn fast_config(rpc: &str, gw: &str) -> KuboConfig {
    let mut c = config(rpc, gw);
    c.timeout = Duration::from_millis(1500);
    c.initial_delay = Duration::from_millis(20);
    c.max_retries = 3;
    c
}

fn xorshift_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The example Zarr dataset plus one value over 1 MiB (a UnixFS file).
fn dataset() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/zarr-sample");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let key = p
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((key, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out.push(("big/value".into(), xorshift_bytes(2_500_000, 7)));
    out
}

async fn write_all(store: SharedStore, data: &[(String, Vec<u8>)]) -> ipfs_hamt::Result<Cid> {
    let mut w = Writer::new(store, HamtConfig::default())?;
    for (k, v) in data {
        w.insert(k, v.clone()).await?;
    }
    w.commit().await
}

async fn read_all(store: SharedStore, root: Cid, data: &[(String, Vec<u8>)]) {
    let r = Reader::new(store, root, HamtConfig::default()).unwrap();
    let mut keys: Vec<String> = r.keys().try_collect().await.unwrap();
    keys.sort();
    let mut want: Vec<&String> = data.iter().map(|(k, _)| k).collect();
    want.sort();
    assert_eq!(keys.iter().collect::<Vec<_>>(), want);
    for (k, v) in data {
        let got = r.get(k).await.unwrap().unwrap();
        assert!(got == v[..], "value of {k} differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataset_same_root_as_disk_store_read_back_and_pinned() {
    let Some((rpc, gw)) = node("dataset") else {
        return;
    };
    let data = dataset();
    let dir = tempfile::tempdir().unwrap();
    let disk: SharedStore = Arc::new(DiskStore::open(dir.path().join("b.redb")).unwrap());
    let disk_root = write_all(disk, &data).await.unwrap();

    let kubo = KuboStore::new(config(&rpc, &gw)).unwrap();
    let t = Instant::now();
    let root = write_all(Arc::new(kubo.clone()), &data).await.unwrap();
    assert_eq!(root, disk_root, "same root as the disk store");
    println!("import: {:?}", t.elapsed());

    // Every key back through the gateway (a fresh store: nothing cached).
    let mut c = config(&rpc, &gw);
    c.rpc_fallback = false;
    let reader = KuboStore::new(c).unwrap();
    assert!(reader.has(&root).await.unwrap());
    read_all(Arc::new(reader.clone()), root, &data).await;
    // A partial read of the large value, and of a small one.
    let r = Reader::new(Arc::new(reader.clone()), root, HamtConfig::default()).unwrap();
    let part = r
        .get_range(
            "big/value",
            ByteRange::Slice {
                offset: 1_048_000,
                length: 1000,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&part[..], &data.last().unwrap().1[1_048_000..1_049_000]);
    let mut trusting = config(&rpc, &gw);
    trusting.trust_range_responses = true;
    let tr = KuboStore::new(trusting).unwrap();
    let leaf = Block::new(RAW, HashAlg::Blake3, b"0123456789".to_vec());
    kubo.put(leaf.clone()).await.unwrap();
    for range in [
        ByteRange::Slice {
            offset: 2,
            length: 3,
        },
        ByteRange::Suffix(4),
        ByteRange::From(7),
    ] {
        assert_eq!(
            tr.get_range(&leaf.cid, range).await.unwrap(),
            range.apply(&leaf.data)
        );
        assert_eq!(
            reader.get_range(&leaf.cid, range).await.unwrap(),
            range.apply(&leaf.data)
        );
    }

    // Pins.
    kubo.pin_add(&root).await.unwrap();
    assert!(kubo.is_pinned(&root).await.unwrap());
    let mut w = Writer::open(Arc::new(kubo.clone()), root, HamtConfig::default()).unwrap();
    w.insert("extra", b"x".to_vec()).await.unwrap();
    let root2 = w.commit().await.unwrap();
    kubo.pin_update(&root, &root2, true).await.unwrap();
    assert!(kubo.is_pinned(&root2).await.unwrap());
    assert!(!kubo.is_pinned(&root).await.unwrap());
    kubo.pin_rm(&root2).await.unwrap();
    assert!(!kubo.is_pinned(&root2).await.unwrap());

    // A missing block is NotFound, through the gateway and the RPC fallback.
    let ghost = Block::new(RAW, HashAlg::Blake3, b"never stored 8c1f".to_vec());
    assert!(matches!(kubo.get(&ghost.cid).await, Err(StoreError::NotFound(c)) if c == ghost.cid));
    assert!(!kubo.has(&ghost.cid).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_write_10000_blocks() {
    let Some((rpc, gw)) = node("bulk") else {
        return;
    };
    let kubo = KuboStore::new(config(&rpc, &gw)).unwrap();
    let blocks: Vec<Block> = (0..10_000u32)
        .map(|i| {
            let mut v = format!("bulk-{i}-").into_bytes();
            v.resize(100, b'.');
            Block::new(RAW, HashAlg::Blake3, v)
        })
        .collect();
    let t = Instant::now();
    kubo.put_many(blocks.clone()).await.unwrap();
    println!("put_many 10000 blocks: {:?}", t.elapsed());
    let t = Instant::now();
    let ok = futures::stream::iter(blocks.iter())
        .map(|b| {
            let k = kubo.clone();
            async move { k.get(&b.cid).await.map(|d| d == b.data) }
        })
        .buffer_unordered(32)
        .try_fold(0usize, |n, ok| async move { Ok(n + usize::from(ok)) })
        .await
        .unwrap();
    assert_eq!(ok, 10_000);
    println!("get 10000 blocks: {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compat_mode_matches_local_unixfs_and_roots() {
    let Some((rpc, gw)) = node("compat") else {
        return;
    };
    let mut c = config(&rpc, &gw);
    c.write_mode = WriteMode::PyHamtAdd;
    let kubo = KuboStore::new(c).unwrap();
    // add_value of a value over 1 MiB: the dag-pb root our builder makes.
    let big = xorshift_bytes(3_000_000, 11);
    let (local, _) = unixfs::build_file(&big, HashAlg::Blake3);
    let got = kubo.add_value(big.clone(), RAW).await.unwrap();
    assert_eq!(got, local);
    // A small value is relabelled to the codec asked for.
    let small = kubo
        .add_value(b"hello".to_vec(), ipfs_hamt::block::DAG_CBOR)
        .await
        .unwrap();
    assert_eq!(
        small,
        Block::new(
            ipfs_hamt::block::DAG_CBOR,
            HashAlg::Blake3,
            b"hello".to_vec()
        )
        .cid
    );
    // A whole tree written with add: same root as in memory, readable.
    let data: Vec<(String, Vec<u8>)> = dataset().into_iter().skip(20).collect();
    let mem_root = write_all(Arc::new(MemoryStore::new()), &data)
        .await
        .unwrap();
    let root = write_all(Arc::new(kubo.clone()), &data).await.unwrap();
    assert_eq!(root, mem_root);
    read_all(Arc::new(kubo), root, &data).await;
}

// ------------------------------------------------------------------------------------------
// Fault-injecting proxy
// ------------------------------------------------------------------------------------------

/// What the proxy does with one request.
#[derive(Debug, Clone)]
enum Fault {
    /// Answer this status at once (with `Retry-After` seconds if given).
    Status(u16, Option<u64>),
    /// Wait this long, then forward.
    Delay(Duration),
    /// Reset the connection without answering.
    Reset,
    /// Forward; send the headers and half the body, then close (a broken transfer).
    CutBody,
    /// Forward; answer only the first half of the body (consistent Content-Length).
    Truncate,
    /// Forward; flip one byte of the body.
    Corrupt,
}

#[derive(Default)]
struct Script {
    /// Faults for the next matching requests, in order.
    queue: VecDeque<Fault>,
    /// Fault for every matching request once the queue is empty.
    always: Option<Fault>,
    /// Only requests whose path contains this are faulted.
    filter: String,
    /// Requests seen (all).
    seen: usize,
    /// Requests being served now, and the most at once.
    inflight: usize,
    max_inflight: usize,
    /// Heads of the last requests (at most 200).
    heads: VecDeque<String>,
}

/// A small HTTP/1.1 proxy on 127.0.0.1:0 in front of `upstream`; it stops when dropped.
struct Proxy {
    url: String,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let up = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(Script::default()));
        let s2 = script.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let (up, script) = (up.clone(), s2.clone());
                tokio::spawn(async move {
                    // Bounded: no connection lives longer than a minute.
                    let _ = tokio::time::timeout(Duration::from_secs(60), serve(conn, up, script))
                        .await;
                });
            }
        });
        Proxy { url, script, task }
    }

    fn set(&self, filter: &str, queue: Vec<Fault>, always: Option<Fault>) {
        let mut s = self.script.lock().unwrap();
        s.filter = filter.to_string();
        s.queue = queue.into();
        s.always = always;
    }

    fn clear(&self) {
        self.set("", Vec::new(), None);
    }

    fn seen(&self) -> usize {
        self.script.lock().unwrap().seen
    }

    fn max_inflight(&self) -> usize {
        self.script.lock().unwrap().max_inflight
    }

    fn heads(&self) -> Vec<String> {
        self.script.lock().unwrap().heads.iter().cloned().collect()
    }
}

/// Reads one HTTP message head (up to the blank line) from `buf` + `conn`.
async fn read_head(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(p + 4);
        }
        let mut tmp = [0u8; 8192];
        let n = conn.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// Reads more bytes into `buf`; None at the end of the stream.
async fn more(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut tmp = [0u8; 65536];
    let n = conn.read(&mut tmp).await.ok()?;
    (n > 0).then(|| buf.extend_from_slice(&tmp[..n]))
}

/// Drops the connection with a TCP reset (SO_LINGER 0: the close does not block).
#[allow(deprecated)]
fn reset(conn: TcpStream) {
    let _ = conn.set_linger(Some(Duration::ZERO));
    drop(conn);
}

/// Reads a body of `len` bytes, or a chunked one (decoded), after `start` in `buf`.
async fn read_body(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    start: usize,
    head: &str,
) -> Option<Vec<u8>> {
    if header(head, "transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        let mut out = Vec::new();
        let mut pos = start;
        loop {
            let line_end = loop {
                if let Some(p) = buf[pos..].windows(2).position(|w| w == b"\r\n") {
                    break pos + p;
                }
                more(conn, buf).await?;
            };
            let size_str = String::from_utf8_lossy(&buf[pos..line_end]).to_string();
            let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
            pos = line_end + 2;
            while buf.len() < pos + size + 2 {
                more(conn, buf).await?;
            }
            out.extend_from_slice(&buf[pos..pos + size]);
            pos += size + 2;
            if size == 0 {
                buf.drain(..pos.min(buf.len()));
                return Some(out);
            }
        }
    }
    let len: usize = header(head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < start + len {
        more(conn, buf).await?;
    }
    let body = buf[start..start + len].to_vec();
    buf.drain(..start + len);
    Some(body)
}

/// Counts a request as finished when dropped.
struct Inflight(Arc<Mutex<Script>>);

impl Drop for Inflight {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.lock() {
            s.inflight = s.inflight.saturating_sub(1);
        }
    }
}

async fn serve(mut conn: TcpStream, upstream: String, script: Arc<Mutex<Script>>) {
    let mut buf = Vec::new();
    loop {
        let Some(end) = read_head(&mut conn, &mut buf).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let Some(body) = read_body(&mut conn, &mut buf, end, &head).await else {
            return;
        };
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let fault = {
            let mut s = script.lock().unwrap();
            s.seen += 1;
            s.inflight += 1;
            s.max_inflight = s.max_inflight.max(s.inflight);
            if s.heads.len() >= 200 {
                s.heads.pop_front();
            }
            s.heads.push_back(head.clone());
            if path.contains(&s.filter) {
                s.queue.pop_front().or_else(|| s.always.clone())
            } else {
                None
            }
        };
        let _inflight = Inflight(script.clone());
        match &fault {
            Some(Fault::Status(code, ra)) => {
                let ra = ra
                    .map(|s| format!("Retry-After: {s}\r\n"))
                    .unwrap_or_default();
                let msg =
                    format!("HTTP/1.1 {code} Injected\r\n{ra}Content-Length: 8\r\n\r\ninjected");
                if conn.write_all(msg.as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
            Some(Fault::Reset) => {
                reset(conn);
                return;
            }
            Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
            _ => {}
        }
        // Forward on a fresh upstream connection.
        let Ok(mut up) = TcpStream::connect(&upstream).await else {
            return;
        };
        let mut req = Vec::new();
        for (i, line) in head.trim_end().split("\r\n").enumerate() {
            let lower = line.to_ascii_lowercase();
            if i > 0
                && (lower.starts_with("connection:")
                    || lower.starts_with("content-length:")
                    || lower.starts_with("transfer-encoding:")
                    || lower.starts_with("host:"))
            {
                continue;
            }
            req.extend_from_slice(line.as_bytes());
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(
            format!(
                "Host: {upstream}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        req.extend_from_slice(&body);
        if up.write_all(&req).await.is_err() {
            return;
        }
        let mut ubuf = Vec::new();
        let Some(uend) = read_head(&mut up, &mut ubuf).await else {
            return;
        };
        let uhead = String::from_utf8_lossy(&ubuf[..uend]).to_string();
        let mut ubody = if header(&uhead, "transfer-encoding").is_some()
            || header(&uhead, "content-length").is_some()
        {
            match read_body(&mut up, &mut ubuf, uend, &uhead).await {
                Some(b) => b,
                None => return,
            }
        } else {
            let mut rest = ubuf[uend..].to_vec();
            let _ = up.read_to_end(&mut rest).await;
            rest
        };
        let full_len = ubody.len();
        match &fault {
            Some(Fault::Truncate) => ubody.truncate(full_len / 2),
            Some(Fault::Corrupt) => {
                if let Some(b) = ubody.first_mut() {
                    *b ^= 0xff;
                }
            }
            _ => {}
        }
        let mut resp = Vec::new();
        for (i, line) in uhead.trim_end().split("\r\n").enumerate() {
            let lower = line.to_ascii_lowercase();
            if i > 0
                && (lower.starts_with("connection:")
                    || lower.starts_with("content-length:")
                    || lower.starts_with("transfer-encoding:")
                    || lower.starts_with("keep-alive:"))
            {
                continue;
            }
            resp.extend_from_slice(line.as_bytes());
            resp.extend_from_slice(b"\r\n");
        }
        let announced = if matches!(fault, Some(Fault::CutBody)) {
            full_len
        } else {
            ubody.len()
        };
        resp.extend_from_slice(format!("Content-Length: {announced}\r\n\r\n").as_bytes());
        if matches!(fault, Some(Fault::CutBody)) {
            resp.extend_from_slice(&ubody[..full_len / 2]);
            let _ = conn.write_all(&resp).await;
            reset(conn);
            return;
        }
        resp.extend_from_slice(&ubody);
        if conn.write_all(&resp).await.is_err() {
            return;
        }
    }
}

/// A block stored on the node (directly), to read through the proxy.
async fn stored_block(rpc: &str, gw: &str, tag: &str) -> Block {
    let direct = KuboStore::new(config(rpc, gw)).unwrap();
    let mut v = format!("fault test block {tag} ").into_bytes();
    v.resize(5000, b'#');
    let b = Block::new(RAW, HashAlg::Blake3, v);
    direct.put(b.clone()).await.unwrap();
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_faults_end_in_success() {
    let Some((rpc, gw)) = node("faults") else {
        return;
    };
    let gp = Proxy::start(&gw).await;
    let rp = Proxy::start(&rpc).await;
    let mut c = fast_config(&rp.url, &gp.url);
    c.rpc_fallback = false;
    let store = KuboStore::new(c).unwrap();
    let b = stored_block(&rpc, &gw, "retry").await;
    let faults = [
        Fault::Status(500, None),
        Fault::Status(502, None),
        Fault::Status(503, None),
        Fault::Status(504, None),
        Fault::Status(429, None),
        Fault::Delay(Duration::from_millis(2500)),
        Fault::Reset,
        Fault::CutBody,
    ];
    for f in faults {
        gp.set("/ipfs/", vec![f.clone(), f.clone()], None);
        let t = Instant::now();
        let got = store.get(&b.cid).await;
        assert_eq!(
            got.unwrap_or_else(|e| panic!("{f:?}: {e}")),
            b.data,
            "{f:?}"
        );
        println!("{f:?} x2 -> ok in {:?}", t.elapsed());
    }
    // 429 with Retry-After: the server's delay is honoured.
    gp.set("/ipfs/", vec![Fault::Status(429, Some(1))], None);
    let t = Instant::now();
    assert_eq!(store.get(&b.cid).await.unwrap(), b.data);
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    gp.clear();
    // Writes retry too (block/put and dag/import).
    let more: Vec<Block> = (0..50u32)
        .map(|i| {
            Block::new(
                RAW,
                HashAlg::Blake3,
                format!("fault write {i}").into_bytes(),
            )
        })
        .collect();
    rp.set(
        "/api/v0/",
        vec![
            Fault::Status(503, None),
            Fault::Reset,
            Fault::Status(429, Some(0)),
        ],
        None,
    );
    store.put(more[0].clone()).await.unwrap();
    rp.set(
        "/api/v0/",
        vec![Fault::Status(500, None), Fault::Reset],
        None,
    );
    store.put_many(more.clone()).await.unwrap();
    rp.clear();
    for m in &more {
        assert_eq!(store.get(&m.cid).await.unwrap(), m.data);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_truncated_bytes_are_rejected() {
    let Some((rpc, gw)) = node("verification") else {
        return;
    };
    let gp = Proxy::start(&gw).await;
    let rp = Proxy::start(&rpc).await;
    let b = stored_block(&rpc, &gw, "verify").await;
    for f in [Fault::Corrupt, Fault::Truncate] {
        // Gateway only.
        let mut c = fast_config(&rp.url, &gp.url);
        c.rpc_fallback = false;
        let store = KuboStore::new(c).unwrap();
        gp.set("/ipfs/", Vec::new(), Some(f.clone()));
        let err = store.get(&b.cid).await.unwrap_err();
        assert!(matches!(err, StoreError::Verify(_)), "{f:?}: {err}");
        assert!(err.to_string().contains(&b.cid.to_string()), "{err}");
        // With the RPC fallback also lying: still rejected.
        let store = KuboStore::new(fast_config(&rp.url, &gp.url)).unwrap();
        rp.set("/api/v0/block/get", Vec::new(), Some(f.clone()));
        let err = store.get(&b.cid).await.unwrap_err();
        assert!(matches!(err, StoreError::Verify(_)), "{f:?}: {err}");
        // An honest fallback gives the right bytes.
        rp.clear();
        assert_eq!(store.get(&b.cid).await.unwrap(), b.data);
        gp.clear();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_name_cid_and_url_and_failover() {
    let Some((rpc, gw)) = node("exhausted") else {
        return;
    };
    let gp = Proxy::start(&gw).await;
    let b = stored_block(&rpc, &gw, "exhausted").await;
    let mut c = fast_config(&rpc, &gp.url);
    c.rpc_fallback = false;
    c.max_retries = 2;
    let store = KuboStore::new(c).unwrap();
    gp.set("/ipfs/", Vec::new(), Some(Fault::Status(503, None)));
    let before = gp.seen();
    let err = store.get(&b.cid).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, StoreError::Remote { attempts: 3, .. }),
        "{msg}"
    );
    assert!(msg.contains(&b.cid.to_string()), "{msg}");
    assert!(msg.contains(&gp.url), "{msg}");
    assert!(msg.contains("503"), "{msg}");
    assert_eq!(gp.seen() - before, 3);
    println!("exhausted: {msg}");

    // Two gateways: the failing one is skipped, and after 3 failures tried last.
    let mut c = fast_config(&rpc, &gp.url);
    c.set_gateways([gp.url.as_str(), gw.as_str()]).unwrap();
    c.rpc_fallback = false;
    c.max_retries = 0;
    let store = KuboStore::new(c).unwrap();
    for _ in 0..3 {
        assert_eq!(store.get(&b.cid).await.unwrap(), b.data);
    }
    assert_eq!(store.gateways().order(), [1, 0]);
    let before = gp.seen();
    assert_eq!(store.get(&b.cid).await.unwrap(), b.data);
    assert_eq!(
        gp.seen(),
        before,
        "the unhealthy gateway is not tried first"
    );
    gp.clear();

    // Nothing listening: connect errors, retried, then a clear error.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let mut c = fast_config(&dead_url, &dead_url);
    c.max_retries = 1;
    let store = KuboStore::new(c).unwrap();
    let err = store.get(&b.cid).await.unwrap_err().to_string();
    assert!(
        err.contains(&b.cid.to_string()) && err.contains(&dead_url),
        "{err}"
    );
    let err = store.put(b.clone()).await.unwrap_err().to_string();
    assert!(
        err.contains(&b.cid.to_string()) && err.contains(&dead_url),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_commit_leaves_previous_root_readable() {
    let Some((rpc, gw)) = node("failed commit") else {
        return;
    };
    let rp = Proxy::start(&rpc).await;
    let mut c = fast_config(&rp.url, &gw);
    c.max_retries = 1;
    let store: SharedStore = Arc::new(KuboStore::new(c).unwrap());
    let data: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| {
            (
                format!("k/{i}"),
                format!("value {i} of the failed-commit test").into_bytes(),
            )
        })
        .collect();
    let root1 = write_all(store.clone(), &data).await.unwrap();

    let mut w = Writer::open(store.clone(), root1, HamtConfig::default()).unwrap();
    for i in 0..100 {
        w.insert(&format!("k/{i}"), format!("changed {i}").into_bytes())
            .await
            .unwrap();
    }
    w.insert("new", b"new".to_vec()).await.unwrap();
    rp.set("/api/v0/", Vec::new(), Some(Fault::Status(500, None)));
    let err = w.commit().await.unwrap_err();
    println!("failed commit: {err}");
    assert!(err.to_string().contains(&rp.url), "{err}");
    // The previous root is fully readable (through the gateway).
    read_all(store.clone(), root1, &data).await;
    // And the same writer commits once the node is back.
    rp.clear();
    let root2 = w.commit().await.unwrap();
    let mut expected = data.clone();
    for (i, e) in expected.iter_mut().enumerate().take(100) {
        e.1 = format!("changed {i}").into_bytes();
    }
    expected.push(("new".into(), b"new".to_vec()));
    let mem_root = write_all(Arc::new(MemoryStore::new()), &expected)
        .await
        .unwrap();
    assert_eq!(root2, mem_root);
    read_all(store, root2, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_and_credentials_per_origin() {
    let Some((rpc, gw)) = node("limits") else {
        return;
    };
    let g1 = Proxy::start(&gw).await;
    let g2 = Proxy::start(&gw).await;
    let blocks: Vec<Block> = {
        let mut v = Vec::new();
        for i in 0..24 {
            v.push(stored_block(&rpc, &gw, &format!("limit {i}")).await);
        }
        v
    };
    // At most `concurrency` requests in flight.
    let mut c = fast_config(&rpc, &g1.url);
    c.concurrency = 4;
    let store = KuboStore::new(c).unwrap();
    g1.set(
        "/ipfs/",
        Vec::new(),
        Some(Fault::Delay(Duration::from_millis(100))),
    );
    let got: Vec<Bytes> = futures::stream::iter(blocks.iter())
        .map(|b| store.get(&b.cid))
        .buffer_unordered(24)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.len(), 24);
    assert!(g1.max_inflight() <= 4, "{}", g1.max_inflight());
    assert!(g1.max_inflight() >= 2, "{}", g1.max_inflight());
    g1.clear();

    // Headers and credentials go to the RPC origin and the first gateway only.
    let mut c = fast_config(&rpc, &g1.url);
    c.set_gateways([g1.url.as_str(), g2.url.as_str()]).unwrap();
    c.auth = Some(ipfs_hamt::store::kubo::Auth::Bearer("sekret".into()));
    c.max_retries = 0;
    c.rpc_fallback = false;
    let c = c.header("X-Api-Key", "k1");
    let store = KuboStore::new(c).unwrap();
    g1.set("/ipfs/", Vec::new(), Some(Fault::Status(503, None)));
    assert_eq!(store.get(&blocks[0].cid).await.unwrap(), blocks[0].data);
    let h1 = g1.heads().last().unwrap().to_ascii_lowercase();
    let h2 = g2.heads().last().unwrap().to_ascii_lowercase();
    assert!(
        h1.contains("authorization: bearer sekret") && h1.contains("x-api-key: k1"),
        "{h1}"
    );
    assert!(
        !h2.contains("authorization") && !h2.contains("x-api-key"),
        "{h2}"
    );
    assert!(h2.contains("accept: application/vnd.ipld.raw"), "{h2}");
}

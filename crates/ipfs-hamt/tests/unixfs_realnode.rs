//! `build_file` against a real IPFS node: `add` the same bytes over the Kubo RPC API and compare
//! the root CID, and the root block's bytes.
//!
//! Runs only when `IPFS_RPC_URL` is set (e.g. `http://127.0.0.1:5001`, see
//! `testnode/start.sh`, which `scripts/test.sh` runs); otherwise it prints that it was skipped.
//!
//! The HTTP client is a minimal HTTP/1.1 POST over `std::net::TcpStream` (the node is on
//! loopback), which keeps the dev-dependency tree small.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ipfs_hamt::block::{HashAlg, DAG_PB, RAW};
use ipfs_hamt::unixfs::{build_file, CHUNK_SIZE};
use ipfs_hamt::Cid;

const ADD_QUERY: &str = "hash=blake3&cid-version=1&raw-leaves=true&chunker=size-1048576&pin=false";

/// Deterministic pseudo-random bytes (xorshift64), the same stream as the unit tests use.
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

/// A parsed `http://host:port[/prefix]` URL.
struct Endpoint {
    host_port: String,
    prefix: String,
}

impl Endpoint {
    fn parse(url: &str) -> Self {
        let rest = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("IPFS_RPC_URL must be http://host:port, got {url}"));
        let (host_port, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        Endpoint {
            host_port: host_port.to_string(),
            prefix: prefix.to_string(),
        }
    }

    /// POSTs `body_parts` (concatenated) to `path` and returns the status and decoded body.
    fn post(&self, path: &str, content_type: Option<&str>, body_parts: &[&[u8]]) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(&self.host_port).expect("connect to the node");
        s.set_read_timeout(Some(Duration::from_secs(900))).unwrap();
        let len: usize = body_parts.iter().map(|p| p.len()).sum();
        let mut head = format!(
            "POST {}{} HTTP/1.1\r\nHost: {}\r\nContent-Length: {len}\r\nConnection: close\r\n",
            self.prefix, path, self.host_port
        );
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        for p in body_parts {
            s.write_all(p).unwrap();
        }
        s.flush().unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).expect("read the response");
        parse_response(&resp)
    }

    /// `ipfs add` of `data` with Kubo's flags for large values; returns the root CID.
    fn add(&self, data: &[u8]) -> Cid {
        let boundary = "----ipfs-hamt-unixfs-test-boundary-7f3a9c";
        let pre = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"value\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        );
        let post = format!("\r\n--{boundary}--\r\n");
        let (status, body) = self.post(
            &format!("/api/v0/add?{ADD_QUERY}"),
            Some(&format!("multipart/form-data; boundary={boundary}")),
            &[pre.as_bytes(), data, post.as_bytes()],
        );
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "add failed: {text}");
        // Newline-delimited JSON (progress lines may precede the result): take the last Hash.
        let hash = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v.get("Hash").and_then(|h| h.as_str()).map(str::to_string))
            .next_back()
            .unwrap_or_else(|| panic!("no Hash in the add response: {text}"));
        Cid::try_from(hash.as_str()).unwrap_or_else(|e| panic!("bad CID {hash}: {e}"))
    }

    /// The bytes of block `cid` as the node stores them.
    fn block_get(&self, cid: &Cid) -> Vec<u8> {
        let (status, body) = self.post(&format!("/api/v0/block/get?arg={cid}"), None, &[]);
        assert_eq!(status, 200, "block/get {cid} failed");
        body
    }
}

/// Status code and body (chunked transfer-encoding decoded) of an HTTP/1.1 response.
fn parse_response(resp: &[u8]) -> (u16, Vec<u8>) {
    let end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of the response head");
    let head = String::from_utf8_lossy(&resp[..end]).to_string();
    let body = &resp[end + 4..];
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return (status, body.to_vec());
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_line = String::from_utf8_lossy(&rest[..eol]).to_string();
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .expect("chunk size");
        rest = &rest[eol + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
    (status, out)
}

#[test]
fn build_file_matches_real_node() {
    let Ok(url) = std::env::var("IPFS_RPC_URL") else {
        println!("skipped: IPFS_RPC_URL is not set (start a node: testnode/start.sh)");
        return;
    };
    let node = Endpoint::parse(&url);
    let sizes = [
        ("0 bytes", 0),
        ("1 MiB", CHUNK_SIZE),
        ("1 MiB + 1", CHUNK_SIZE + 1),
        ("3,000,000", 3_000_000),
        // 175 leaves: the smallest file with two levels (the last leaf alone under a node).
        ("174 MiB + 1", 174 * CHUNK_SIZE + 1),
        ("200 MiB", 200 * CHUNK_SIZE),
    ];
    for (what, len) in sizes {
        let data = xorshift_bytes(len, 0x9E37_79B9_7F4A_7C15);
        let t = Instant::now();
        let (ours, blocks) = build_file(&data, HashAlg::Blake3);
        let built = t.elapsed();
        let t = Instant::now();
        let theirs = node.add(&data);
        let added = t.elapsed();
        println!(
            "{what:>10} ({len} bytes): node {theirs}, build_file {ours} \
             ({} blocks; build {built:.2?}, node add {added:.2?})",
            blocks.len()
        );
        assert_eq!(ours, theirs, "{what}: root CID differs from the node's");
        let expected_codec = if len <= CHUNK_SIZE { RAW } else { DAG_PB };
        assert_eq!(ours.codec(), expected_codec, "{what}");
        // Every dag-pb block's bytes (and the root's, whatever its codec), as the node stores them.
        for b in blocks
            .iter()
            .filter(|b| b.cid.codec() == DAG_PB || b.cid == ours)
        {
            assert_eq!(
                node.block_get(&b.cid),
                b.data.to_vec(),
                "{what}: block {}",
                b.cid
            );
        }
    }
}

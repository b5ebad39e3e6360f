//! `serve`: the dataset over HTTP as a plain Zarr v3 store (GET, HEAD, Range, errors), plain,
//! encrypted and with a value stored as a UnixFS file. The client is a few lines over
//! `TcpStream`, so what is on the wire is checked exactly.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sha2::Digest as _;

mod common;

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

fn sha(b: &[u8]) -> String {
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn zarr_case(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(golden().join("zarr_cases.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
        .clone()
}

/// A running `ipfs-hamt serve`, killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ipfs-hamt"))
            .arg("serve")
            .args(args)
            .args(["--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ipfs-hamt serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .rsplit_once(" on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .1
            .to_string();
        Server { child, addr }
    }

    /// Sends a raw request line plus headers; returns status, headers (lower-case names) and
    /// body.
    fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (k, v) in headers {
            req += &format!("{k}: {v}\r\n");
        }
        req += "Connection: close\r\n\r\n";
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers");
        let head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let body = raw[split + 4..].to_vec();
        let mut lines = head.split("\r\n");
        let mut status_line = lines.next().unwrap().splitn(3, ' ');
        status_line.next();
        let status: u16 = status_line.next().unwrap().parse().unwrap();
        let reason = status_line.next().unwrap_or("").to_string();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        Response {
            status,
            reason,
            headers,
            body,
        }
    }

    fn get(&self, target: &str) -> Response {
        self.request("GET", target, &[])
    }

    fn range(&self, target: &str, range: &str) -> Response {
        self.request("GET", target, &[("Range", range)])
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    reason: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// 200 with a correct Content-Length; returns the body.
    fn ok(self) -> Vec<u8> {
        assert_eq!(self.status, 200, "{self:?}");
        assert_eq!(
            self.header("content-length"),
            Some(self.body.len().to_string().as_str())
        );
        assert_eq!(self.header("accept-ranges"), Some("bytes"));
        self.body
    }

    /// 206 with `Content-Range: bytes A-B/TOTAL`; returns the body.
    fn partial(self, content_range: &str) -> Vec<u8> {
        assert_eq!(self.status, 206, "{self:?}");
        assert_eq!(self.header("content-range"), Some(content_range));
        assert_eq!(
            self.header("content-length"),
            Some(self.body.len().to_string().as_str())
        );
        self.body
    }
}

#[test]
fn serves_the_plain_golden_dataset() {
    let case = zarr_case("zarr_plain");
    let car = golden().join("cars/zarr_plain.car");
    let srv = Server::start(&["--car", car.to_str().unwrap()]);

    // Every key: metadata as py-hamt wrote it, chunks by sha256.
    for key in case["keys"].as_array().unwrap() {
        let key = key.as_str().unwrap();
        let r = srv.get(&format!("/{key}"));
        let json = key.ends_with("zarr.json");
        let want_type = if json {
            "application/json"
        } else {
            "application/octet-stream"
        };
        assert_eq!(r.header("content-type"), Some(want_type), "{key}");
        let body = r.ok();
        assert_eq!(
            body.len() as u64,
            case["stored_value_len"][key].as_u64().unwrap()
        );
        if json {
            let got: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if let Some(want) = case["metadata"].get(key) {
                assert_eq!(&got, want, "{key}");
            }
        } else {
            assert_eq!(
                sha(&body),
                case["chunk_sha256"][key].as_str().unwrap(),
                "{key}"
            );
        }
    }

    // HEAD: the same headers, no body.
    let full = srv.get("/lat/c/0").ok();
    assert_eq!(full.len(), 140);
    let h = srv.request("HEAD", "/lat/c/0", &[]);
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-length"), Some("140"));
    assert_eq!(h.header("accept-ranges"), Some("bytes"));
    assert!(h.body.is_empty());
    let h = srv.request("HEAD", "/nope", &[]);
    assert_eq!(h.status, 404);
    assert!(h.body.is_empty());

    // Ranges: A-B, A-, -N, clamped ends, and HEAD with a range.
    let b = srv
        .range("/lat/c/0", "bytes=10-19")
        .partial("bytes 10-19/140");
    assert_eq!(b, &full[10..20]);
    let b = srv
        .range("/lat/c/0", "bytes=100-")
        .partial("bytes 100-139/140");
    assert_eq!(b, &full[100..]);
    let b = srv
        .range("/lat/c/0", "bytes=-16")
        .partial("bytes 124-139/140");
    assert_eq!(b, &full[124..]);
    let b = srv
        .range("/lat/c/0", "bytes=-1000")
        .partial("bytes 0-139/140");
    assert_eq!(b, full);
    let b = srv
        .range("/lat/c/0", "bytes=139-5000")
        .partial("bytes 139-139/140");
    assert_eq!(b, &full[139..]);
    let h = srv.request("HEAD", "/lat/c/0", &[("Range", "bytes=0-9")]);
    assert_eq!((h.status, h.header("content-length")), (206, Some("10")));
    assert_eq!(h.header("content-range"), Some("bytes 0-9/140"));
    assert!(h.body.is_empty());

    // Unsatisfiable ranges: 416 with the size.
    for bad in ["bytes=140-", "bytes=500-600", "bytes=-0"] {
        let r = srv.range("/lat/c/0", bad);
        assert_eq!(r.status, 416, "{bad}");
        assert_eq!(r.header("content-range"), Some("bytes */140"), "{bad}");
    }
    // Ranges that do not parse (other unit, several ranges) are ignored: the whole value.
    for ignored in ["items=0-1", "bytes=0-1,5-6", "bytes=5-2"] {
        assert_eq!(srv.range("/lat/c/0", ignored).ok(), full, "{ignored}");
    }

    // Missing keys, the root, other methods, bad paths.
    assert_eq!(srv.get("/nope").status, 404);
    assert_eq!(srv.get("/lat/c/9").status, 404);
    // The root is a directory listing (see `lists_directories_for_fsspec`).
    assert_eq!(srv.get("/").status, 200);
    let r = srv.request("POST", "/zarr.json", &[]);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(srv.request("DELETE", "/lat/c/0", &[]).status, 405);
    assert_eq!(srv.get("/lat/../zarr.json").status, 400);
    assert_eq!(srv.get("/lat/%2e%2e/zarr.json").status, 400);
    assert_eq!(srv.get("/%ff%fe").status, 400);
    // Percent-encoding and a query string.
    assert_eq!(srv.get("/lat%2Fc%2F0").ok(), full);
    assert_eq!(srv.get("/lat/c/0?x=1").ok(), full);

    // Concurrent clients share the reader.
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let srv = &srv;
                let key = format!("temperature/c/{}/0/{}", i % 4, i % 4);
                s.spawn(move || (key.clone(), srv.get(&format!("/{key}")).ok()))
            })
            .collect();
        for h in handles {
            let (key, body) = h.join().unwrap();
            assert_eq!(sha(&body), case["chunk_sha256"][&key].as_str().unwrap());
        }
    });
}

/// The `<a href>` targets of a listing page.
fn links(body: &[u8]) -> Vec<String> {
    let page = String::from_utf8(body.to_vec()).unwrap();
    page.split("<a href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

/// Directories (the root, `lat`, `temperature/c`, with or without a trailing slash) list the
/// next path components as HTML links, as fsspec's HTTP `ls` reads them; keys win over
/// directories, and what is neither is 404.
#[test]
fn lists_directories_for_fsspec() {
    let car = golden().join("cars/zarr_plain.car");
    let srv = Server::start(&["--car", car.to_str().unwrap()]);
    let root = srv.get("/");
    assert_eq!(root.status, 200);
    assert_eq!(
        root.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        links(&root.body),
        ["lat/", "lon/", "temperature/", "time/", "zarr.json"]
    );
    for dir in ["/lat", "/lat/", "/lat%2F"] {
        let r = srv.get(dir);
        assert_eq!(r.status, 200, "{dir}");
        assert_eq!(links(&r.body), ["c/", "zarr.json"], "{dir}");
        assert!(String::from_utf8_lossy(&r.body).contains("<base href=\"/lat/\">"));
    }
    let chunks = links(&srv.get("/temperature/c").body);
    assert!(
        !chunks.is_empty() && chunks.iter().all(|l| l.ends_with('/')),
        "{chunks:?}"
    );
    // HEAD: headers only.
    let h = srv.request("HEAD", "/lat/", &[]);
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    // A key is its value, not a listing; neither key nor directory is 404.
    assert_eq!(
        srv.get("/zarr.json").header("content-type"),
        Some("application/json")
    );
    assert_eq!(srv.get("/zarr.json/").status, 404);
    assert_eq!(srv.get("/lat/c/9").status, 404);
    assert_eq!(srv.get("/nope/").status, 404);
    assert_eq!(srv.request("POST", "/lat/", &[]).status, 405);
}

#[test]
fn serves_the_encrypted_golden_dataset_decrypted() {
    let case = zarr_case("zarr_encrypted");
    let plain = zarr_case("zarr_plain");
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("key");
    std::fs::write(&key_file, (0u8..32).collect::<Vec<_>>()).unwrap();
    let car = golden().join("cars/zarr_encrypted.car");
    let (car, key_file) = (car.to_str().unwrap(), key_file.to_str().unwrap());
    let srv = Server::start(&[
        "--car",
        car,
        "--encrypt-key-file",
        key_file,
        "--header",
        "golden-header",
    ]);
    for (key, want) in case["chunk_sha256"].as_object().unwrap() {
        let body = srv.get(&format!("/{key}")).ok();
        assert_eq!(&sha(&body), want.as_str().unwrap(), "{key}");
        // The plaintext is the plain dataset's stored value.
        assert_eq!(
            body.len() as u64,
            plain["stored_value_len"][key].as_u64().unwrap()
        );
    }
    let meta = srv.get("/temperature/zarr.json").ok();
    let got: serde_json::Value = serde_json::from_slice(&meta).unwrap();
    assert_eq!(got, case["metadata"]["temperature/zarr.json"]);
    // Ranges and sizes are of the plaintext.
    let n = meta.len();
    let part = srv
        .range("/temperature/zarr.json", "bytes=-7")
        .partial(&format!("bytes {}-{}/{n}", n - 7, n - 1));
    assert_eq!(part, &meta[n - 7..]);
    let h = srv.request("HEAD", "/temperature/zarr.json", &[]);
    assert_eq!(h.header("content-length"), Some(n.to_string().as_str()));
    drop(srv);

    // A wrong header is refused at start, in one line, without the key.
    let out = Command::new(env!("CARGO_BIN_EXE_ipfs-hamt"))
        .args([
            "serve",
            "--car",
            car,
            "--addr",
            "127.0.0.1:0",
            "--encrypt-key-file",
            key_file,
            "--header",
            "wrong",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot decrypt zarr.json"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    // Without the key: the sealed bytes, as stored.
    let srv = Server::start(&["--car", car]);
    let sealed = srv.get("/temperature/zarr.json").ok();
    assert_eq!(sealed.len(), n + 40);
}

/// Reads an unsigned LEB128 varint at `*pos`.
fn varint(b: &[u8], pos: &mut usize) -> usize {
    let (mut v, mut shift) = (0usize, 0);
    loop {
        let byte = b[*pos];
        *pos += 1;
        v |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

/// A store error (here a value block missing from the CAR) is a 500 with a one-line body; the
/// other keys are still served.
#[test]
fn store_errors_are_500() {
    let case = zarr_case("zarr_plain");
    let car = std::fs::read(golden().join("cars/zarr_plain.car")).unwrap();
    // CARv1: varint-prefixed header, then varint-prefixed (CID, block) sections; the HAMT root
    // node comes first, so dropping the last section drops a value block.
    let mut pos = 0;
    let header_len = varint(&car, &mut pos);
    pos += header_len;
    let mut last = pos;
    while pos < car.len() {
        last = pos;
        let n = varint(&car, &mut pos);
        pos += n;
    }
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.car");
    std::fs::write(&broken, &car[..last]).unwrap();
    let srv = Server::start(&["--car", broken.to_str().unwrap()]);
    let mut failed = Vec::new();
    for key in case["keys"].as_array().unwrap() {
        let key = key.as_str().unwrap();
        let r = srv.get(&format!("/{key}"));
        match r.status {
            200 => {}
            500 => {
                let body = String::from_utf8(r.body).unwrap();
                assert_eq!(body.trim_end().lines().count(), 1, "{body:?}");
                failed.push(key.to_string());
            }
            s => panic!("{key}: status {s}"),
        }
    }
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(srv.get("/nope").status, 404);
}

/// A value over 1 MiB is stored as a UnixFS file: HEAD and ranges read its size and only the
/// leaves they need.
#[test]
fn serves_unixfs_values_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(dir.join("big")).unwrap();
    let big: Vec<u8> = (0..(5u32 << 19) + 17)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.join("big/blob"), &big).unwrap();
    std::fs::write(dir.join("zarr.json"), b"{}").unwrap();
    let car = tmp.path().join("big.car");
    let car_s = car.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ipfs-hamt"))
        .args(["import", dir.to_str().unwrap(), "--car", car_s])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut srv = Server::start(&["--car", car_s]);
    let total = big.len();
    let h = srv.request("HEAD", "/big/blob", &[]);
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-length"), Some(total.to_string().as_str()));
    assert_eq!(srv.get("/big/blob").ok(), big);
    let (a, b) = ((1 << 20) - 5, (1 << 20) + 99);
    let part = srv
        .range("/big/blob", &format!("bytes={a}-{b}"))
        .partial(&format!("bytes {a}-{b}/{total}"));
    assert_eq!(part, &big[a..=b]);
    let part = srv.range("/big/blob", "bytes=-3").partial(&format!(
        "bytes {}-{}/{total}",
        total - 3,
        total - 1
    ));
    assert_eq!(part, &big[total - 3..]);
    let r = srv.range("/big/blob", &format!("bytes={total}-"));
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{total}").as_str())
    );
    assert_eq!(srv.get("/zarr.json").ok(), b"{}");

    // SIGTERM: a clean exit.
    let status = Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = wait_timeout(&mut srv.child, Duration::from_secs(20));
    assert_eq!(code, Some(0));
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// A small Zarr v3 group as a directory: one array `temp` of 4 int8 in chunks of 2.
fn write_group(dir: &std::path::Path, title: &str) {
    std::fs::create_dir_all(dir.join("temp/c")).unwrap();
    let group = format!(
        r#"{{"attributes": {{"title": "{title}"}}, "zarr_format": 3, "consolidated_metadata": null, "node_type": "group"}}"#
    );
    std::fs::write(dir.join("zarr.json"), group).unwrap();
    let array = r#"{"shape": [4], "data_type": "int8", "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}}, "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}}, "fill_value": 0, "codecs": [{"name": "bytes"}], "attributes": {}, "zarr_format": 3, "node_type": "array", "storage_transformers": []}"#;
    std::fs::write(dir.join("temp/zarr.json"), array).unwrap();
    std::fs::write(dir.join("temp/c/0"), [1u8, 2]).unwrap();
    std::fs::write(dir.join("temp/c/1"), [3u8, 4]).unwrap();
}

/// Sharded roots are listed as py-hamt's `list_dir` does: a single-group store through its
/// group; a pyramid's root listing is refused as a client error (400) whose reason phrase is
/// py-hamt's message, the text `xr.open_zarr(url)` then shows (fsspec raises with the reason
/// phrase), while each group lists and reads normally.
#[test]
fn sharded_pyramid_root_listing_is_a_400_naming_the_group() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = common::Cli::new(tmp.path());
    let store = tmp.path().join("s.redb");
    let s = store.to_str().unwrap();
    let dir = tmp.path().join("g");
    write_group(&dir, "level");
    let d = dir.to_str().unwrap();
    let one = cli.ok(&[
        "import", d, "--layout", "sharded", "--group", "0", "--store", s,
    ]);
    let two = cli.ok(&[
        "import",
        d,
        "--layout",
        "sharded",
        "--group",
        "1",
        "--into",
        one.trim(),
        "--store",
        s,
    ]);

    let single = Server::start(&[one.trim(), "--store", s]);
    let root = single.get("/");
    assert_eq!(root.status, 200, "{root:?}");
    assert_eq!(
        links(&root.body),
        ["temp/", "zarr.json"],
        "a single group is listed through the group"
    );
    assert_eq!(single.get("/temp/c/1").ok(), [3, 4]);
    drop(single);

    let srv = Server::start(&[two.trim(), "--store", s]);
    let r = srv.get("/");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.reason.starts_with(
            "sharded_zarr_v2 stores with multiple top-level groups require an explicit Zarr group when reading."
        ),
        "{r:?}"
    );
    let body = String::from_utf8(r.body).unwrap();
    assert_eq!(body.lines().count(), 1, "{body}");
    assert!(body.contains("group='0'"), "{body}");
    for dir in ["/0/", "/1"] {
        let r = srv.get(dir);
        assert_eq!(r.status, 200, "{dir}: {r:?}");
        assert_eq!(links(&r.body), ["temp/", "zarr.json"], "{dir}");
    }
    assert_eq!(srv.get("/1/temp/c/0").ok(), [1, 2]);
    // Root keys still read: zarr opens the root group document before listing.
    assert_eq!(srv.get("/zarr.json").status, 200);
}

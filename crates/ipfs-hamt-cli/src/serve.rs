//! `serve`: the dataset as a read-only plain Zarr store over HTTP.
//!
//! `GET /KEY` answers the value of the dataset key KEY (the percent-decoded path without its
//! leading `/`), decrypted with `--encrypt-key-file` if given, so any Zarr client (zarr-python
//! through fsspec's HTTP store, zarrs' HTTP store, ...) reads the dataset at
//! `http://ADDR/`. `Range: bytes=A-B | A- | -N` gives 206 with `Content-Range` (ranges apply to
//! the plaintext); `HEAD` gives the same headers without the body. Missing keys are 404,
//! unsatisfiable ranges 416, other methods 405, paths with `.`/`..` segments or that are not
//! UTF-8 once decoded 400, the root listing of a sharded pyramid (several top-level groups,
//! which py-hamt refuses: open a group) 400 with py-hamt's message as the reason phrase, store
//! errors 500 (also logged on stderr).
//!
//! **Directory listings.** `GET /` and `GET /DIR` (or `/DIR/`), where DIR is not a key but a
//! prefix of keys (`lat`, `0`, `temp/c`), answer an HTML page linking the next path components
//! under it ([`DatasetReader::list_dir`]: a key index built once for a HAMT; py-hamt's
//! `list_dir` for a sharded store, so a single-group store is listed through its group and
//! each group of a pyramid is opened with `group=`). That is what makes
//! `xarray.open_zarr(url)` work with default arguments: zarr-python 3 (3.0 and 3.1) over
//! fsspec's `HTTPFileSystem` finds a group's members by listing its directory when there is
//! no consolidated metadata (it asks for `/`, or `/0` for `group="0"`, and reads the `<a href>`
//! links), for Zarr v3 and v2 alike. We serve listings rather than synthesising consolidated
//! metadata because listings keep every response the stored bytes (the ETag stays the value's
//! CID, encrypted datasets need nothing special), work for any group path and format, and
//! answer from the same key index a sharded dataset will provide; the cost is one key scan
//! per server and one listing request per group at open time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use ipfs_hamt::block::DAG_PB;
use ipfs_hamt::crypt::ValueCipher;
use ipfs_hamt::dataset::DatasetReader;
use ipfs_hamt::{unixfs, value, ByteRange, Cid};
use tokio::net::TcpListener;

use crate::stores::{self, require_root_arg};
use crate::{cmd, listing, CryptOpts, StoreOpts};

/// How long in-flight requests may take to finish after Ctrl-C.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// What every connection shares.
struct State {
    reader: DatasetReader,
    cipher: Option<ValueCipher>,
}

pub async fn serve(
    opts: &StoreOpts,
    cid: Option<&str>,
    addr: &str,
    crypt: &CryptOpts,
) -> Result<()> {
    require_root_arg(opts, cid)?;
    let cipher = cmd::cipher(crypt)?;
    let s = stores::open(opts)?;
    let root = s.root(cid).await?;
    let reader = cmd::open_reader(&s.store, root).await?;
    // A wrong key or header would make every request fail: check it once on the root
    // metadata, if there is one.
    if let Some(c) = &cipher {
        if let Some(framed) = reader.get("zarr.json").await? {
            c.open(&framed)
                .context("cannot decrypt zarr.json: wrong key or header")?;
        }
    }
    let state = Arc::new(State { reader, cipher });
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener
        .local_addr()
        .context("cannot read the bound address")?;
    // The first line of stdout is the address (tests and scripts read it).
    cmd::println(format!("serving {root} on http://{local}"))?;
    accept_loop(listener, state, root).await
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, root: Cid) -> Result<()> {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // E.g. too many open files: wait a little rather than spin.
                        eprintln!("ipfs-hamt: serve: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let state = state.clone();
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(&state, req, peer).await) }
                });
                let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    // Clients closing mid-response are routine; nothing to report.
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    eprintln!("ipfs-hamt: serve: shutting down ({root})");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            eprintln!("ipfs-hamt: serve: connections still open after {SHUTDOWN_GRACE:?}, closing them");
        }
    }
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handling: serve until killed.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

type Resp = Response<Full<Bytes>>;

/// A one-line text response.
fn text(status: StatusCode, msg: &str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(format!("{msg}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A 4xx whose HTTP/1 reason phrase is `msg` too (the body says it as well): fsspec's HTTP
/// store raises `ClientResponseError` with the reason phrase as its message, so that is the
/// text an `xr.open_zarr(url)` user sees.
fn client_error(status: StatusCode, msg: &str) -> Resp {
    let mut r = text(status, msg);
    // A reason phrase is visible ASCII, spaces and tabs; anything else keeps the standard one.
    let phrase: String = msg
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect();
    if let Ok(p) = hyper::ext::ReasonPhrase::try_from(phrase) {
        r.extensions_mut().insert(p);
    }
    r
}

/// A sharded_zarr_v2 root with several top-level groups: read-only listings of its root are
/// refused (py-hamt's `list_dir`, SHARDED.md §7.4).
fn needs_explicit_group(reader: &DatasetReader) -> bool {
    reader
        .as_sharded()
        .is_some_and(|r| r.manifest().requires_explicit_group())
}

async fn handle(state: &State, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
    };
    let key = match key_of(req.uri().path()) {
        Ok(k) => k,
        Err(why) => return text(StatusCode::BAD_REQUEST, why),
    };
    // A Range header that does not parse (another unit, several ranges) is ignored, as HTTP
    // allows: the whole value is sent.
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_range);
    match respond_path(state, &key, range, head).await {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            let method = if head { "HEAD" } else { "GET" };
            eprintln!("ipfs-hamt: serve: {method} {key:?} from {peer}: {msg}");
            text(StatusCode::INTERNAL_SERVER_ERROR, &msg)
        }
    }
}

/// The value of `key`, or the listing of the directory `key` if no key has that name (a
/// trailing `/`, or the empty path, always asks for a listing).
async fn respond_path(
    state: &State,
    key: &str,
    range: Option<HttpRange>,
    head: bool,
) -> Result<Resp> {
    if !key.is_empty() && !key.ends_with('/') {
        let r = respond(state, key, range, head).await?;
        if r.status() != StatusCode::NOT_FOUND {
            return Ok(r);
        }
    }
    let dir = key.trim_end_matches('/');
    let entries = match state.reader.list_dir(dir).await {
        Ok(entries) => entries,
        // py-hamt refuses to list the root of a pyramid (several top-level groups): the
        // reader must name a group. That is the client's request to fix, not a server failure.
        Err(e) if dir.is_empty() && needs_explicit_group(&state.reader) => {
            return Ok(client_error(StatusCode::BAD_REQUEST, &e.to_string()));
        }
        Err(e) => return Err(anyhow::Error::from(e).context("cannot list the dataset")),
    };
    if entries.is_empty() && !dir.is_empty() {
        return Ok(text(StatusCode::NOT_FOUND, "not found"));
    }
    let mut r = Response::new(Full::new(Bytes::from(listing::html(dir, &entries))));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Ok(r)
}

/// The dataset key a request path names: percent-decoded, without the leading `/`.
fn key_of(path: &str) -> Result<String, &'static str> {
    let raw = path.strip_prefix('/').unwrap_or(path);
    let key = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| "path is not UTF-8")?;
    if key.split('/').any(|seg| seg == ".." || seg == ".") {
        return Err("path has a . or .. segment");
    }
    Ok(key.into_owned())
}

/// A single HTTP byte range: `A-B`, `A-` (end `None`) or `-N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HttpRange {
    FromTo(u64, Option<u64>),
    Suffix(u64),
}

/// Parses a `Range` header with a single byte range; `None` if it is anything else.
fn parse_range(h: &str) -> Option<HttpRange> {
    let spec = h.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| {
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse::<u64>().ok()
        } else {
            None
        }
    };
    match (a.is_empty(), b.is_empty()) {
        (true, false) => Some(HttpRange::Suffix(num(b)?)),
        (false, true) => Some(HttpRange::FromTo(num(a)?, None)),
        (false, false) => {
            let (a, b) = (num(a)?, num(b)?);
            (b >= a).then_some(HttpRange::FromTo(a, Some(b)))
        }
        (true, true) => None,
    }
}

/// The `[start, end)` window of a value of `total` bytes, or `None` if unsatisfiable.
fn window(r: HttpRange, total: u64) -> Option<(u64, u64)> {
    match r {
        HttpRange::FromTo(a, _) if a >= total => None,
        HttpRange::FromTo(a, b) => {
            let end = b.map_or(total, |b| b.saturating_add(1).min(total));
            Some((a, end))
        }
        HttpRange::Suffix(0) => None,
        HttpRange::Suffix(_) if total == 0 => None,
        HttpRange::Suffix(n) => Some((total.saturating_sub(n), total)),
    }
}

fn content_type(key: &str) -> &'static str {
    let name = key.rsplit('/').next().unwrap_or(key);
    if name.ends_with(".json") || matches!(name, ".zarray" | ".zattrs" | ".zgroup" | ".zmetadata") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

/// A value, whole or in part, ready to send.
enum Fetched {
    Missing,
    Unsatisfiable {
        total: u64,
    },
    /// `body` is bytes `start..start + body.len()` of a value of `total` bytes (`None` for
    /// HEAD when it was not needed).
    Found {
        body: Option<Bytes>,
        start: u64,
        len: u64,
        total: u64,
        partial: bool,
        cid: Cid,
    },
}

async fn fetch(state: &State, key: &str, range: Option<HttpRange>, head: bool) -> Result<Fetched> {
    let Some(cid) = state.reader.get_pointer(key).await? else {
        return Ok(Fetched::Missing);
    };
    let store = &**state.reader.store();
    // Values stored as UnixFS files (over 1 MiB, unencrypted): the size is in the root node and
    // a range reads only the leaves it needs.
    if state.cipher.is_none() && cid.codec() == DAG_PB {
        let total = unixfs::file_size(store, &cid)
            .await
            .with_context(|| format!("cannot read the size of {key:?}"))?;
        let (start, end) = match range {
            None => (0, total),
            Some(r) => match window(r, total) {
                Some(w) => w,
                None => return Ok(Fetched::Unsatisfiable { total }),
            },
        };
        let body = if head {
            None
        } else {
            let part = ByteRange::Slice {
                offset: start,
                length: end - start,
            };
            let b = value::read_value(store, &cid, part).await?;
            anyhow::ensure!(
                b.len() as u64 == end - start,
                "value {key:?} is shorter than its recorded size"
            );
            Some(b)
        };
        return Ok(Fetched::Found {
            body,
            start,
            len: end - start,
            total,
            partial: range.is_some(),
            cid,
        });
    }
    let whole = value::read_value(store, &cid, ByteRange::Full).await?;
    let whole = match &state.cipher {
        None => whole,
        Some(c) => c
            .open(&whole)
            .with_context(|| format!("cannot decrypt {key:?}"))?,
    };
    let total = whole.len() as u64;
    let (start, end) = match range {
        None => (0, total),
        Some(r) => match window(r, total) {
            Some(w) => w,
            None => return Ok(Fetched::Unsatisfiable { total }),
        },
    };
    // Both ends are at most `total`, the length of `whole`.
    let body = whole.slice(start as usize..end as usize);
    Ok(Fetched::Found {
        body: Some(body),
        start,
        len: end - start,
        total,
        partial: range.is_some(),
        cid,
    })
}

async fn respond(state: &State, key: &str, range: Option<HttpRange>, head: bool) -> Result<Resp> {
    let (body, start, len, total, partial, cid) = match fetch(state, key, range, head).await? {
        Fetched::Missing => return Ok(text(StatusCode::NOT_FOUND, "not found")),
        Fetched::Unsatisfiable { total } => {
            let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_RANGE,
                header_value(format!("bytes */{total}"))?,
            );
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            return Ok(r);
        }
        Fetched::Found {
            body,
            start,
            len,
            total,
            partial,
            cid,
        } => (body, start, len, total, partial, cid),
    };
    let body = if head {
        Bytes::new()
    } else {
        body.unwrap_or_default()
    };
    let mut r = Response::new(Full::new(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(key)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // The stored block's CID names the (possibly encrypted) value exactly.
    h.insert(header::ETAG, header_value(format!("\"{cid}\""))?);
    if partial {
        *r.status_mut() = StatusCode::PARTIAL_CONTENT;
        let last = (start + len).saturating_sub(1);
        r.headers_mut().insert(
            header::CONTENT_RANGE,
            header_value(format!("bytes {start}-{last}/{total}"))?,
        );
    }
    Ok(r)
}

fn header_value(s: String) -> Result<HeaderValue> {
    HeaderValue::try_from(s).context("invalid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use HttpRange::*;
        assert_eq!(parse_range("bytes=0-9"), Some(FromTo(0, Some(9))));
        assert_eq!(parse_range("bytes=5-"), Some(FromTo(5, None)));
        assert_eq!(parse_range("bytes=-3"), Some(Suffix(3)));
        assert_eq!(parse_range("bytes=9-0"), None);
        assert_eq!(parse_range("bytes=0-1,4-5"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(parse_range("bytes=-"), None);
        assert_eq!(parse_range("bytes=+1-2"), None);
        assert_eq!(parse_range("bytes=99999999999999999999999-"), None);
        assert_eq!(window(FromTo(0, Some(9)), 5), Some((0, 5)));
        assert_eq!(window(FromTo(5, None), 5), None);
        assert_eq!(window(FromTo(4, None), 5), Some((4, 5)));
        assert_eq!(window(Suffix(3), 5), Some((2, 5)));
        assert_eq!(window(Suffix(30), 5), Some((0, 5)));
        assert_eq!(window(Suffix(0), 5), None);
        assert_eq!(window(Suffix(1), 0), None);
        assert_eq!(window(FromTo(0, Some(u64::MAX)), 5), Some((0, 5)));
    }

    #[test]
    fn keys() {
        assert_eq!(key_of("/lat/zarr.json"), Ok("lat/zarr.json".to_string()));
        assert_eq!(key_of("/a%20b/c%2Fd"), Ok("a b/c/d".to_string()));
        assert!(key_of("/a/../b").is_err());
        assert!(key_of("/a/%2E%2E/b").is_err());
        assert!(key_of("/./b").is_err());
        assert!(key_of("/%ff").is_err());
        assert_eq!(key_of("/"), Ok(String::new()));
        assert_eq!(content_type("zarr.json"), "application/json");
        assert_eq!(content_type("t/c/0/0"), "application/octet-stream");
    }
}

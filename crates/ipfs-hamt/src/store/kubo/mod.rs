//! A [`BlockStore`] on an IPFS node through the Kubo RPC API and HTTP gateways, configured like
//! py-hamt 3.6's `KuboCAS` (see [`KuboConfig`]).
//!
//! **Writes** go through the RPC API: `block/put?cid-codec=C&mhtype=H` for one block, a CARv1
//! streamed to `dag/import?pin-roots=false` for several ([`WriteMode::Blocks`]), or `add` exactly
//! as py-hamt's `KuboCAS.save` with the returned CID relabelled to the block's codec
//! ([`WriteMode::PyHamtAdd`]; [`KuboStore::add_value`] is `save` itself). The node's answer is
//! checked: the CID it reports must carry the block's multihash.
//!
//! **Reads** go to the gateways (`GET {gateway}/ipfs/{cid}` with
//! `Accept: application/vnd.ipld.raw`), tried in order with health tracking (see
//! [`gateway`]), then to `/api/v0/block/get` as a fallback. Every block is verified against its
//! CID before it is returned; a gateway that sends wrong bytes is skipped, and if no source
//! gives the right bytes the read fails with [`StoreError::Verify`]. UnixFS values over 1 MiB
//! are reassembled by [`crate::unixfs`] from leaves read (and verified) one by one. A partial
//! read fetches the whole block (at most 1 MiB for values), verifies it and slices it; with
//! [`KuboConfig::trust_range_responses`] it sends `Range` instead and accepts a `206` whose
//! `Content-Range` matches the request exactly (such bytes cannot be verified).
//! `has` asks `block/stat` (offline) on the RPC API.
//!
//! **Failures**: connect errors, timeouts, broken connections, 429 and 5xx (500, 502, 503, 504)
//! are retried with exponential backoff and ±5% jitter, or after the server's `Retry-After`
//! (capped). A concurrency limit bounds the requests in flight. When retries run out the error
//! is [`StoreError::Remote`], naming the CID and the URL.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ipfs_hamt::StoreError> {
//! use ipfs_hamt::store::kubo::{KuboConfig, KuboStore};
//! let mut config = KuboConfig::new("http://127.0.0.1:5001")?;
//! config.set_gateways(["http://127.0.0.1:8080"])?;
//! let store = KuboStore::new(config)?;
//! let pins = store.pin_ls().await?;
//! # Ok(()) }
//! ```

pub mod config;
pub mod gateway;
pub mod retry;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use cid::Cid;
use futures::{StreamExt, TryStreamExt};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use tokio::sync::Semaphore;
use url::Url;

pub use config::{Auth, KuboConfig, WriteMode};
use gateway::Gateways;

use super::car::header_prefix;
use super::{BlockStore, StoreError};
use crate::block::{verify, Block, HashAlg, VerifyError, DAG_CBOR, DAG_PB, IDENTITY_CODE, RAW};
use crate::range::ByteRange;

/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 10;
/// Most bytes of an RPC answer read (JSON lines of `add`, `pin/ls`...).
const MAX_RPC_REPLY: usize = 64 << 20;
/// `dag/import` requests in flight at once for one `put_many`.
const IMPORT_PARALLEL: usize = 2;

/// A store on an IPFS node. Cheap to clone (shared client, limits and gateway health).
#[derive(Clone)]
pub struct KuboStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: KuboConfig,
    client: reqwest::Client,
    gateways: Gateways,
    permits: Arc<Semaphore>,
    /// Origins that get the custom headers and credentials.
    cred_origins: Vec<url::Origin>,
    cred_headers: HeaderMap,
}

impl std::fmt::Debug for KuboStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KuboStore")
            .field("rpc_url", &self.inner.config.rpc_url.as_str())
            .field("gateways", &self.inner.gateways.urls())
            .finish()
    }
}

/// An HTTP answer read in full.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    url: Url,
}

impl Reply {
    fn text(&self) -> String {
        let t = String::from_utf8_lossy(&self.body);
        let t = t.trim();
        let mut s: String = t.chars().take(300).collect();
        if s.len() < t.len() {
            s.push('…');
        }
        s
    }
}

/// A request that failed for good.
struct Failure {
    url: Url,
    attempts: u32,
    reason: String,
}

impl Failure {
    fn into_error(self, what: &str) -> StoreError {
        StoreError::Remote {
            what: what.to_string(),
            url: self.url.to_string(),
            attempts: self.attempts,
            reason: self.reason,
        }
    }
}

/// Why one attempt failed.
enum AttemptError {
    /// Worth another attempt (after the server's `Retry-After` if it sent one).
    Retry(String, Option<Duration>),
    /// Not worth retrying.
    Fatal(String),
}

/// Whether an RPC error body says the block is missing (Kubo and js-ipfs answer 500).
fn says_not_found(body: &[u8]) -> bool {
    let t = String::from_utf8_lossy(body).to_ascii_lowercase();
    ["not found", "could not find", "enoent", "no such file"]
        .iter()
        .any(|p| t.contains(p))
}

fn codec_name(codec: u64) -> Option<&'static str> {
    match codec {
        RAW => Some("raw"),
        DAG_CBOR => Some("dag-cbor"),
        DAG_PB => Some("dag-pb"),
        0x0129 => Some("dag-json"),
        _ => None,
    }
}

fn hash_name(code: u64) -> Option<&'static str> {
    HashAlg::from_code(code).map(|a| match a {
        HashAlg::Blake3 => "blake3",
        HashAlg::Sha2_256 => "sha2-256",
    })
}

/// The `Hash`/`Key` CID in an RPC answer of JSON lines (the last one that has it).
fn cid_field(body: &[u8], field: &str) -> Option<Cid> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get(field)?.as_str().map(str::to_owned))
        .filter_map(|s| Cid::try_from(s.as_str()).ok())
        .next_back()
}

/// Whether an RPC answer of JSON lines holds an error object (`{"Type":"error", ...}`).
fn stream_error(body: &[u8]) -> Option<String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("Type").and_then(|t| t.as_str()) == Some("error"))
        .map(|v| {
            v.get("Message")
                .and_then(|m| m.as_str())
                .unwrap_or("error")
                .to_string()
        })
}

/// A CARv1 of `blocks` (root: the first block), as chunks that share the blocks' bytes.
fn car_chunks(blocks: &[Block]) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(blocks.len() * 2 + 1);
    if let Some(first) = blocks.first() {
        out.push(Bytes::from(header_prefix(&first.cid)));
    }
    for b in blocks {
        let cid = b.cid.to_bytes();
        let mut buf = unsigned_varint::encode::u64_buffer();
        let len = unsigned_varint::encode::u64((cid.len() + b.data.len()) as u64, &mut buf);
        let mut head = Vec::with_capacity(len.len() + cid.len());
        head.extend_from_slice(len);
        head.extend_from_slice(&cid);
        out.push(Bytes::from(head));
        out.push(b.data.clone());
    }
    out
}

fn multipart_bytes(data: Bytes) -> reqwest::multipart::Form {
    let len = data.len() as u64;
    let body = reqwest::Body::wrap_stream(futures::stream::iter([Ok::<_, std::io::Error>(data)]));
    let part = reqwest::multipart::Part::stream_with_length(body, len).file_name("file");
    let part = match part.mime_str("application/octet-stream") {
        Ok(p) => p,
        Err(_) => unreachable!("constant MIME type"),
    };
    reqwest::multipart::Form::new().part("file", part)
}

impl KuboStore {
    /// A store with these settings (validated). No request is made.
    pub fn new(config: KuboConfig) -> Result<Self, StoreError> {
        config.validate()?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(config.concurrency)
            .user_agent(concat!("ipfs-hamt/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot build the HTTP client: {e}")))?;
        let mut cred_headers = HeaderMap::new();
        for (k, v) in &config.headers {
            // Checked by validate().
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                cred_headers.append(k, v);
            }
        }
        if let Some(auth) = &config.auth {
            let value = match auth {
                Auth::Bearer(t) => format!("Bearer {t}"),
                Auth::Basic { user, password } => {
                    use base64::Engine as _;
                    let raw = format!("{user}:{password}");
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(raw)
                    )
                }
            };
            let mut v = HeaderValue::from_str(&value)
                .map_err(|_| StoreError::Backend("invalid characters in credentials".into()))?;
            v.set_sensitive(true);
            cred_headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let mut cred_origins = vec![config.rpc_url.origin()];
        if let Some(g) = config.gateways.first() {
            cred_origins.push(g.origin());
        }
        let gateways = Gateways::new(
            config.gateways.clone(),
            config.gateway_failure_threshold,
            config.gateway_probe_after,
        );
        Ok(KuboStore {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(config.concurrency)),
                config,
                client,
                gateways,
                cred_origins,
                cred_headers,
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &KuboConfig {
        &self.inner.config
    }

    /// The gateways and their health.
    pub fn gateways(&self) -> &Gateways {
        &self.inner.gateways
    }

    fn rpc(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.inner.config.rpc_url.clone();
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}/api/v0/{path}"));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Adds the custom headers and credentials if `url` is a credentialed origin.
    fn decorate(&self, rb: RequestBuilder, url: &Url) -> RequestBuilder {
        if self.inner.cred_origins.contains(&url.origin()) {
            rb.headers(self.inner.cred_headers.clone())
        } else {
            rb
        }
    }

    /// One attempt: the request (following redirects, each hop re-checked for credentials)
    /// and the whole body (at most `limit` bytes).
    async fn attempt<F>(&self, url: &Url, build: &F, limit: usize) -> Result<Reply, AttemptError>
    where
        F: Fn(&Url) -> RequestBuilder,
    {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let rb = self.decorate(build(&url), &url);
            let resp = rb.send().await.map_err(|e| {
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                AttemptError::Retry(format!("{kind}: {}", error_chain(&e)), None)
            })?;
            let status = resp.status();
            if status.is_redirection() {
                let loc = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| AttemptError::Fatal(format!("{status} without Location")))?;
                url = url
                    .join(loc)
                    .map_err(|e| AttemptError::Fatal(format!("bad redirect {loc:?}: {e}")))?;
                continue;
            }
            if let Some(len) = resp.content_length() {
                if len > limit as u64 {
                    return Err(AttemptError::Fatal(format!(
                        "answer of {len} bytes exceeds the limit of {limit}"
                    )));
                }
            }
            let headers = resp.headers().clone();
            let mut body = BytesMut::new();
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| {
                    let kind = if e.is_timeout() {
                        "timed out reading the body"
                    } else {
                        "broken body"
                    };
                    AttemptError::Retry(format!("{kind}: {}", error_chain(&e)), None)
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(AttemptError::Fatal(format!(
                        "answer exceeds the limit of {limit} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            let reply = Reply {
                status,
                headers,
                body: body.freeze(),
                url,
            };
            if retry::retryable_status(status.as_u16())
                && !(status == StatusCode::INTERNAL_SERVER_ERROR && says_not_found(&reply.body))
            {
                let ra = reply
                    .headers
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
                return Err(AttemptError::Retry(
                    format!("HTTP {status}: {}", reply.text()),
                    ra,
                ));
            }
            return Ok(reply);
        }
        Err(AttemptError::Fatal(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// A request with retries. Non-retryable statuses come back as replies; retryable failures
    /// that persist, and fatal ones, as a [`Failure`].
    async fn send<F>(&self, url: &Url, build: F, limit: usize) -> Result<Reply, Failure>
    where
        F: Fn(&Url) -> RequestBuilder,
    {
        let config = &self.inner.config;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let result = {
                let _permit = self.inner.permits.acquire().await.map_err(|_| Failure {
                    url: url.clone(),
                    attempts,
                    reason: "the store is closed".into(),
                })?;
                self.attempt(url, &build, limit).await
            };
            match result {
                Ok(reply) => return Ok(reply),
                Err(AttemptError::Fatal(reason)) => {
                    return Err(Failure {
                        url: url.clone(),
                        attempts,
                        reason,
                    })
                }
                Err(AttemptError::Retry(reason, retry_after)) => {
                    if attempts > config.max_retries {
                        return Err(Failure {
                            url: url.clone(),
                            attempts,
                            reason: format!("retries exhausted; last error: {reason}"),
                        });
                    }
                    tokio::time::sleep(retry::delay(config, attempts, retry_after)).await;
                }
            }
        }
    }

    /// POST to an RPC endpoint; fails unless the answer is a success without an error line.
    async fn rpc_post<F>(&self, what: &str, url: Url, build_body: F) -> Result<Reply, StoreError>
    where
        F: Fn(RequestBuilder) -> RequestBuilder,
    {
        let client = &self.inner.client;
        let reply = self
            .send(
                &url,
                |u| build_body(client.request(Method::POST, u.clone())),
                MAX_RPC_REPLY,
            )
            .await
            .map_err(|f| f.into_error(what))?;
        if !reply.status.is_success() {
            return Err(StoreError::Remote {
                what: what.to_string(),
                url: reply.url.to_string(),
                attempts: 1,
                reason: format!("HTTP {}: {}", reply.status, reply.text()),
            });
        }
        if let Some(msg) = stream_error(&reply.body) {
            return Err(StoreError::Remote {
                what: what.to_string(),
                url: reply.url.to_string(),
                attempts: 1,
                reason: format!("the node reported an error: {msg}"),
            });
        }
        Ok(reply)
    }

    fn check_returned(
        what: &str,
        url: &Url,
        expected: &Cid,
        got: Option<Cid>,
    ) -> Result<(), StoreError> {
        match got {
            Some(c) if c.hash() == expected.hash() => Ok(()),
            Some(c) => Err(StoreError::Remote {
                what: what.to_string(),
                url: url.to_string(),
                attempts: 1,
                reason: format!("the node stored the bytes as {c}, whose multihash differs"),
            }),
            None => Err(StoreError::Remote {
                what: what.to_string(),
                url: url.to_string(),
                attempts: 1,
                reason: "no CID in the answer".into(),
            }),
        }
    }

    /// `block/put` of one block with its codec and hash.
    async fn block_put(&self, block: &Block) -> Result<(), StoreError> {
        let what = format!("block/put {}", block.cid);
        let (Some(codec), Some(mh)) = (
            codec_name(block.cid.codec()),
            hash_name(block.cid.hash().code()),
        ) else {
            return self.dag_import(std::slice::from_ref(block)).await;
        };
        let url = self.rpc(
            "block/put",
            &[
                ("cid-codec", codec),
                ("mhtype", mh),
                ("mhlen", "32"),
                ("pin", "false"),
            ],
        );
        let data = block.data.clone();
        let reply = self
            .rpc_post(&what, url, |rb| rb.multipart(multipart_bytes(data.clone())))
            .await?;
        Self::check_returned(&what, &reply.url, &block.cid, cid_field(&reply.body, "Key"))
    }

    /// One `dag/import` of `blocks` (a streamed CAR), roots not pinned.
    async fn dag_import(&self, blocks: &[Block]) -> Result<(), StoreError> {
        let Some(first) = blocks.first() else {
            return Ok(());
        };
        let what = format!(
            "dag/import of {} blocks (first {})",
            blocks.len(),
            first.cid
        );
        let url = self.rpc("dag/import", &[("pin-roots", "false")]);
        let chunks = car_chunks(blocks);
        let total: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        self.rpc_post(&what, url, |rb| {
            let stream =
                futures::stream::iter(chunks.clone().into_iter().map(Ok::<_, std::io::Error>));
            let part = reqwest::multipart::Part::stream_with_length(
                reqwest::Body::wrap_stream(stream),
                total,
            )
            .file_name("blocks.car");
            let part = match part.mime_str("application/vnd.ipld.car") {
                Ok(p) => p,
                Err(_) => unreachable!("constant MIME type"),
            };
            rb.multipart(reqwest::multipart::Form::new().part("file", part))
        })
        .await?;
        Ok(())
    }

    /// `add` with py-hamt's parameters; the CID the node returns (not relabelled).
    async fn add_raw(&self, data: Bytes, hash: &str, what: &str) -> Result<(Cid, Url), StoreError> {
        let pin = if self.inner.config.pin_on_add {
            "true"
        } else {
            "false"
        };
        let url = self.rpc(
            "add",
            &[
                ("hash", hash),
                ("chunker", self.inner.config.chunker.as_str()),
                ("pin", pin),
                ("cid-version", "1"),
            ],
        );
        let reply = self
            .rpc_post(what, url, |rb| rb.multipart(multipart_bytes(data.clone())))
            .await?;
        match cid_field(&reply.body, "Hash") {
            Some(c) => Ok((c, reply.url)),
            None => Err(StoreError::Remote {
                what: what.to_string(),
                url: reply.url.to_string(),
                attempts: 1,
                reason: format!("no Hash in the answer: {}", reply.text()),
            }),
        }
    }

    /// py-hamt's `KuboCAS.save(data, codec)`: `add` with the configured hash, chunker and pin
    /// flag and `cid-version=1`; a returned CID that is not dag-pb is relabelled with `codec`
    /// (same multihash), a dag-pb one (a value longer than a chunk) is kept.
    pub async fn add_value(&self, data: impl Into<Bytes>, codec: u64) -> Result<Cid, StoreError> {
        let data = data.into();
        let what = format!("add of a {}-byte value", data.len());
        let hash = hash_name(self.inner.config.hash.code()).unwrap_or("blake3");
        let (cid, _) = self.add_raw(data, hash, &what).await?;
        if cid.codec() == DAG_PB {
            Ok(cid)
        } else {
            Ok(Cid::new_v1(codec, *cid.hash()))
        }
    }

    /// Writes one block as [`WriteMode::PyHamtAdd`] does.
    async fn put_add(&self, block: &Block) -> Result<(), StoreError> {
        let codec = block.cid.codec();
        let hash = hash_name(block.cid.hash().code());
        match hash {
            Some(h) if codec == RAW || codec == DAG_CBOR => {
                let what = format!("add {}", block.cid);
                let (got, url) = self.add_raw(block.data.clone(), h, &what).await?;
                Self::check_returned(&what, &url, &block.cid, Some(got))
            }
            _ => self.block_put(block).await,
        }
    }

    /// Reads a block from one source; `Ok(None)` if that source does not have it.
    async fn fetch_from(
        &self,
        url: Url,
        method: Method,
        range: Option<&str>,
    ) -> Result<Option<Reply>, Failure> {
        let client = &self.inner.client;
        let limit = self.inner.config.max_block_bytes;
        let is_rpc = method == Method::POST;
        let reply = self
            .send(
                &url,
                |u| {
                    let mut rb = client
                        .request(method.clone(), u.clone())
                        .header(reqwest::header::ACCEPT, "application/vnd.ipld.raw");
                    if let Some(r) = range {
                        rb = rb.header(reqwest::header::RANGE, r);
                    }
                    rb
                },
                limit,
            )
            .await?;
        let s = reply.status;
        if s == StatusCode::NOT_FOUND
            || s == StatusCode::GONE
            || (is_rpc && s == StatusCode::INTERNAL_SERVER_ERROR && says_not_found(&reply.body))
        {
            return Ok(None);
        }
        if s.is_success() || s == StatusCode::RANGE_NOT_SATISFIABLE {
            return Ok(Some(reply));
        }
        Err(Failure {
            url: reply.url.clone(),
            attempts: 1,
            reason: format!("HTTP {s}: {}", reply.text()),
        })
    }

    /// The verified block `cid` from the first source that has it (gateways by health, then the
    /// RPC API). With `range` and [`KuboConfig::trust_range_responses`], a `206` answer is
    /// returned as is (already the part).
    async fn fetch(&self, cid: &Cid, range: Option<ByteRange>) -> Result<Bytes, StoreError> {
        if cid.hash().code() == IDENTITY_CODE {
            let data = Bytes::copy_from_slice(cid.hash().digest());
            return Ok(range.map_or(data.clone(), |r| r.apply(&data)));
        }
        let what = format!("get {cid}");
        let header = range.and_then(|r| r.http_header());
        let mut failures: Vec<Failure> = Vec::new();
        let mut mismatch: Option<VerifyError> = None;
        let cid_str = cid.to_string();
        for i in self.inner.gateways.order() {
            let Some(base) = self.inner.gateways.urls().get(i) else {
                continue;
            };
            let url = match base.join(&cid_str) {
                Ok(u) => u,
                Err(e) => return Err(StoreError::Backend(format!("bad gateway URL {base}: {e}"))),
            };
            match self
                .fetch_from(url.clone(), Method::GET, header.as_deref())
                .await
            {
                Ok(None) => self.inner.gateways.success(i),
                Ok(Some(reply)) => match self.accept(cid, reply, range) {
                    Ok(data) => {
                        self.inner.gateways.success(i);
                        return Ok(data);
                    }
                    Err(Accepted::Mismatch(e)) => {
                        self.inner.gateways.failure(i);
                        mismatch = Some(e);
                    }
                    Err(Accepted::Bad(f)) => {
                        self.inner.gateways.failure(i);
                        failures.push(f);
                    }
                },
                Err(f) => {
                    self.inner.gateways.failure(i);
                    failures.push(f);
                }
            }
        }
        if self.inner.config.rpc_fallback || self.inner.gateways.urls().is_empty() {
            let url = self.rpc("block/get", &[("arg", cid_str.as_str())]);
            match self.fetch_from(url, Method::POST, None).await {
                Ok(None) => {}
                Ok(Some(reply)) => match self.accept(cid, reply, None) {
                    Ok(data) => return Ok(range.map_or(data.clone(), |r| r.apply(&data))),
                    Err(Accepted::Mismatch(e)) => mismatch = Some(e),
                    Err(Accepted::Bad(f)) => failures.push(f),
                },
                Err(f) => failures.push(f),
            }
        }
        if let Some(e) = mismatch {
            return Err(StoreError::Verify(e));
        }
        match failures.len() {
            0 => Err(StoreError::NotFound(*cid)),
            1 => Err(failures.remove(0).into_error(&what)),
            _ => {
                let attempts = failures.iter().map(|f| f.attempts).sum();
                let reason = failures
                    .iter()
                    .map(|f| format!("{}: {}", f.url, f.reason))
                    .collect::<Vec<_>>()
                    .join("; ");
                let url = failures
                    .last()
                    .map(|f| f.url.to_string())
                    .unwrap_or_default();
                Err(StoreError::Remote {
                    what: format!("{what} (every source failed)"),
                    url,
                    attempts,
                    reason,
                })
            }
        }
    }

    /// Checks an answer: the whole block verified (then sliced to `range`), or a trusted `206`.
    fn accept(&self, cid: &Cid, reply: Reply, range: Option<ByteRange>) -> Result<Bytes, Accepted> {
        let bad = |reason: String| {
            Accepted::Bad(Failure {
                url: reply.url.clone(),
                attempts: 1,
                reason,
            })
        };
        match (reply.status, range) {
            (StatusCode::OK, _) => {
                verify(cid, &reply.body).map_err(Accepted::Mismatch)?;
                Ok(range.map_or(reply.body.clone(), |r| r.apply(&reply.body)))
            }
            (StatusCode::PARTIAL_CONTENT, Some(r)) if self.inner.config.trust_range_responses => {
                let cr = reply
                    .headers
                    .get(reqwest::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let Some((start, end, total)) = parse_content_range(cr) else {
                    return Err(bad(format!("206 with bad Content-Range {cr:?}")));
                };
                let (ws, we) = r.window(total);
                if ws != start || we != end + 1 || reply.body.len() as u64 != we - ws {
                    return Err(bad(format!(
                        "206 Content-Range {cr:?} does not match the requested range"
                    )));
                }
                Ok(reply.body.clone())
            }
            (StatusCode::RANGE_NOT_SATISFIABLE, Some(_))
                if self.inner.config.trust_range_responses =>
            {
                Ok(Bytes::new())
            }
            (s, _) => Err(bad(format!("unexpected HTTP {s}"))),
        }
    }

    /// Pins `cid` recursively (`pin/add`).
    pub async fn pin_add(&self, cid: &Cid) -> Result<(), StoreError> {
        let c = cid.to_string();
        let url = self.rpc("pin/add", &[("arg", c.as_str()), ("recursive", "true")]);
        self.rpc_post(&format!("pin/add {cid}"), url, |rb| rb)
            .await?;
        Ok(())
    }

    /// Unpins `cid` (`pin/rm`, recursive).
    pub async fn pin_rm(&self, cid: &Cid) -> Result<(), StoreError> {
        let c = cid.to_string();
        let url = self.rpc("pin/rm", &[("arg", c.as_str()), ("recursive", "true")]);
        self.rpc_post(&format!("pin/rm {cid}"), url, |rb| rb)
            .await?;
        Ok(())
    }

    /// Moves a recursive pin from `old` to `new` (`pin/update`; `old` stays pinned unless
    /// `unpin`). On a node without `pin/update` (404), `pin/add` then `pin/rm`.
    pub async fn pin_update(&self, old: &Cid, new: &Cid, unpin: bool) -> Result<(), StoreError> {
        let (o, n) = (old.to_string(), new.to_string());
        let url = self.rpc(
            "pin/update",
            &[
                ("arg", o.as_str()),
                ("arg", n.as_str()),
                ("unpin", if unpin { "true" } else { "false" }),
            ],
        );
        let what = format!("pin/update {old} -> {new}");
        match self.rpc_post(&what, url, |rb| rb).await {
            Ok(_) => Ok(()),
            // Nodes without pin/update (js-ipfs): the same with add and rm.
            Err(StoreError::Remote { reason, .. }) if reason.starts_with("HTTP 404") => {
                self.pin_add(new).await?;
                if unpin && old.hash() != new.hash() {
                    self.pin_rm(old).await?;
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The recursively pinned CIDs (`pin/ls?type=recursive`).
    pub async fn pin_ls(&self) -> Result<Vec<Cid>, StoreError> {
        let url = self.rpc("pin/ls", &[("type", "recursive")]);
        let reply = self.rpc_post("pin/ls", url, |rb| rb).await?;
        let mut out = Vec::new();
        for line in String::from_utf8_lossy(&reply.body).lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(keys) = v.get("Keys").and_then(|k| k.as_object()) {
                out.extend(keys.keys().filter_map(|k| Cid::try_from(k.as_str()).ok()));
            } else if let Some(c) = v.get("Cid").and_then(|c| c.as_str()) {
                out.extend(Cid::try_from(c).ok());
            }
        }
        Ok(out)
    }

    /// Every pin as Kubo lists it (`pin/ls` without arguments): the `Keys` object, CID string
    /// -> `{"Type": ...}`, as py-hamt's `KuboCAS.pin_ls` returns it.
    pub async fn pin_ls_keys(
        &self,
    ) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        let url = self.rpc("pin/ls", &[]);
        let reply = self.rpc_post("pin/ls", url, |rb| rb).await?;
        let mut out = serde_json::Map::new();
        for line in String::from_utf8_lossy(&reply.body).lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(keys) = v.get("Keys").and_then(|k| k.as_object()) {
                out.extend(keys.clone());
            } else if let Some(c) = v.get("Cid").and_then(|c| c.as_str()) {
                // Streaming form: one object per pin.
                let kind = v.get("Type").cloned().unwrap_or(serde_json::Value::Null);
                out.insert(c.to_string(), serde_json::json!({ "Type": kind }));
            }
        }
        Ok(out)
    }

    /// Whether the node has `cid` pinned recursively.
    pub async fn is_pinned(&self, cid: &Cid) -> Result<bool, StoreError> {
        Ok(self.pin_ls().await?.iter().any(|c| c.hash() == cid.hash()))
    }
}

/// Why an answer was not accepted.
enum Accepted {
    Mismatch(VerifyError),
    Bad(Failure),
}

/// `bytes START-END/TOTAL`.
fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (s, e) = range.split_once('-')?;
    let (s, e, t) = (s.parse().ok()?, e.parse().ok()?, total.parse().ok()?);
    (s <= e && e < t).then_some((s, e, t))
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

#[async_trait]
impl BlockStore for KuboStore {
    async fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        self.fetch(cid, None).await
    }

    async fn get_range(&self, cid: &Cid, range: ByteRange) -> Result<Bytes, StoreError> {
        if range == ByteRange::Full {
            return self.fetch(cid, None).await;
        }
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        if self.inner.config.trust_range_responses {
            self.fetch(cid, Some(range)).await
        } else {
            Ok(range.apply(&self.fetch(cid, None).await?))
        }
    }

    /// `block/stat` on the RPC API (offline: never asks the network); without
    /// [`KuboConfig::rpc_fallback`], a read through the gateways.
    async fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        if cid.hash().code() == IDENTITY_CODE {
            return Ok(true);
        }
        if !self.inner.config.rpc_fallback && !self.inner.gateways.urls().is_empty() {
            return match self.fetch(cid, None).await {
                Ok(_) => Ok(true),
                Err(StoreError::NotFound(_)) => Ok(false),
                Err(e) => Err(e),
            };
        }
        let c = cid.to_string();
        let url = self.rpc("block/stat", &[("arg", c.as_str()), ("offline", "true")]);
        let client = &self.inner.client;
        let reply = self
            .send(
                &url,
                |u| client.request(Method::POST, u.clone()),
                MAX_RPC_REPLY,
            )
            .await
            .map_err(|f| f.into_error(&format!("block/stat {cid}")))?;
        if reply.status.is_success() {
            return Ok(cid_field(&reply.body, "Key").is_some_and(|k| k.hash() == cid.hash()));
        }
        if says_not_found(&reply.body) {
            return Ok(false);
        }
        Err(StoreError::Remote {
            what: format!("block/stat {cid}"),
            url: reply.url.to_string(),
            attempts: 1,
            reason: format!("HTTP {}: {}", reply.status, reply.text()),
        })
    }

    async fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError> {
        let blocks: Vec<Block> = blocks
            .into_iter()
            .filter(|b| b.cid.hash().code() != IDENTITY_CODE)
            .collect();
        match (self.inner.config.write_mode, blocks.len()) {
            (_, 0) => Ok(()),
            (WriteMode::Blocks, 1) => self.block_put(&blocks[0]).await,
            (WriteMode::Blocks, _) => {
                let mut batches: Vec<Vec<Block>> = vec![Vec::new()];
                let mut bytes = 0usize;
                for b in blocks {
                    if bytes > 0 && bytes + b.data.len() > self.inner.config.car_batch_bytes {
                        batches.push(Vec::new());
                        bytes = 0;
                    }
                    bytes += b.data.len();
                    if let Some(last) = batches.last_mut() {
                        last.push(b);
                    }
                }
                let jobs = batches.into_iter().map(|batch| {
                    let store = self.clone();
                    async move { store.dag_import(&batch).await }
                });
                futures::stream::iter(jobs)
                    .buffer_unordered(IMPORT_PARALLEL)
                    .try_collect::<Vec<()>>()
                    .await?;
                Ok(())
            }
            (WriteMode::PyHamtAdd, _) => {
                let jobs = blocks.into_iter().map(|b| {
                    let store = self.clone();
                    async move { store.put_add(&b).await }
                });
                futures::stream::iter(jobs)
                    .buffer_unordered(self.inner.config.concurrency)
                    .try_collect::<Vec<()>>()
                    .await?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_and_not_found_bodies() {
        assert_eq!(parse_content_range("bytes 1-2/5"), Some((1, 2, 5)));
        assert_eq!(parse_content_range("bytes 3-2/5"), None);
        assert_eq!(parse_content_range("bytes */5"), None);
        assert!(says_not_found(b"{\"Message\":\"ENOENT: no such file\"}"));
        assert!(says_not_found(b"block was not found locally (offline)"));
        assert!(!says_not_found(b"internal error"));
        assert_eq!(
            stream_error(b"{\"Message\":\"boom\",\"Code\":0,\"Type\":\"error\"}").as_deref(),
            Some("boom")
        );
    }

    #[test]
    fn car_chunks_form_a_car() {
        let a = Block::new(RAW, HashAlg::Blake3, b"a".to_vec());
        let b = Block::new(DAG_CBOR, HashAlg::Blake3, vec![0xa0]);
        let car: Vec<u8> = car_chunks(&[a.clone(), b.clone()]).concat();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.car");
        std::fs::write(&p, car).unwrap();
        let store = crate::store::CarStore::open(&p).unwrap();
        assert_eq!(store.roots(), vec![a.cid]);
        assert_eq!(store.cids(), vec![a.cid, b.cid]);
    }

    #[test]
    fn range_answers_checked() {
        let c = KuboConfig {
            trust_range_responses: true,
            ..KuboConfig::default()
        };
        let s = KuboStore::new(c).unwrap();
        let b = Block::new(RAW, HashAlg::Blake3, b"0123456789".to_vec());
        let url = Url::parse("http://gw/ipfs/x").unwrap();
        let reply = |status: u16, cr: Option<&str>, body: &'static [u8]| {
            let mut headers = HeaderMap::new();
            if let Some(cr) = cr {
                headers.insert(
                    reqwest::header::CONTENT_RANGE,
                    HeaderValue::from_str(cr).unwrap(),
                );
            }
            Reply {
                status: StatusCode::from_u16(status).unwrap(),
                headers,
                body: Bytes::from_static(body),
                url: url.clone(),
            }
        };
        let r = Some(ByteRange::Slice {
            offset: 2,
            length: 3,
        });
        let ok = s.accept(&b.cid, reply(206, Some("bytes 2-4/10"), b"234"), r);
        assert_eq!(ok.ok().as_deref(), Some(&b"234"[..]));
        let shifted = s.accept(&b.cid, reply(206, Some("bytes 3-5/10"), b"345"), r);
        assert!(matches!(shifted, Err(Accepted::Bad(_))));
        let short = s.accept(&b.cid, reply(206, Some("bytes 2-4/10"), b"23"), r);
        assert!(matches!(short, Err(Accepted::Bad(_))));
        let missing = s.accept(&b.cid, reply(206, None, b"234"), r);
        assert!(matches!(missing, Err(Accepted::Bad(_))));
        // A server that ignores Range: the whole block, verified, then sliced.
        let full = s.accept(&b.cid, reply(200, None, b"0123456789"), r);
        assert_eq!(full.ok().as_deref(), Some(&b"234"[..]));
        let wrong = s.accept(&b.cid, reply(200, None, b"0123456780"), r);
        assert!(matches!(wrong, Err(Accepted::Mismatch(_))));
        // Without trust, a 206 is never accepted.
        let strict = KuboStore::new(KuboConfig::default()).unwrap();
        let r206 = strict.accept(&b.cid, reply(206, Some("bytes 2-4/10"), b"234"), r);
        assert!(matches!(r206, Err(Accepted::Bad(_))));
    }

    #[test]
    fn credentials_only_for_configured_origins() {
        let mut c = KuboConfig::new("http://rpc:5001").unwrap();
        c.set_gateways(["http://gw1:8080", "http://gw2:8080"])
            .unwrap();
        c.auth = Some(Auth::Bearer("t".into()));
        let c = c.header("X-Key", "v");
        let s = KuboStore::new(c).unwrap();
        let client = reqwest::Client::new();
        for (url, expect) in [
            ("http://rpc:5001/api/v0/x", true),
            ("http://gw1:8080/ipfs/x", true),
            ("http://gw2:8080/ipfs/x", false),
            ("https://gw1:8080/ipfs/x", false),
        ] {
            let u = Url::parse(url).unwrap();
            let req = s.decorate(client.get(u.clone()), &u).build().unwrap();
            assert_eq!(req.headers().contains_key("authorization"), expect, "{url}");
            assert_eq!(req.headers().contains_key("x-key"), expect, "{url}");
        }
    }
}

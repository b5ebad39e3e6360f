//! [`KuboConfig`]: endpoints, credentials, limits and retry policy of a [`super::KuboStore`],
//! with the defaults and validation rules of py-hamt 3.6's `KuboCAS`.

use std::time::Duration;

use url::Url;

use crate::block::HashAlg;
use crate::store::StoreError;

/// Credentials sent with requests to the credentialed origins (see [`KuboConfig::auth`]).
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}:***)"),
        }
    }
}

/// How blocks are written to the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// `block/put` for one block (with `cid-codec` and `mhtype`), a CAR streamed to
    /// `dag/import` for several. The node stores exactly our blocks.
    #[default]
    Blocks,
    /// py-hamt's `KuboCAS.save`: every raw or dag-cbor block up to the chunk size is sent with
    /// `add?hash=H&chunker=C&pin=P&cid-version=1` and the returned CID is relabelled with the
    /// block's codec; dag-pb blocks (UnixFS nodes of large values, which py-hamt never sends
    /// itself: Kubo makes them) go through `block/put`.
    PyHamtAdd,
}

/// Settings of a [`super::KuboStore`]. Build with [`KuboConfig::new`] or [`Default`], change
/// fields, then [`KuboConfig::validate`] (done by [`super::KuboStore::new`]).
///
/// ```
/// use ipfs_hamt::store::kubo::KuboConfig;
/// let mut c = KuboConfig::new("http://127.0.0.1:5001").unwrap();
/// c.set_gateways(["http://127.0.0.1:8080", "https://ipfs.io/"]).unwrap();
/// assert_eq!(c.gateways[1].as_str(), "https://ipfs.io/ipfs/");
/// assert_eq!(c.concurrency, 32);
/// c.validate().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct KuboConfig {
    /// Base URL of the Kubo RPC API (default `http://127.0.0.1:5001`); `/api/v0/...` is appended.
    pub rpc_url: Url,
    /// Gateways, tried in order (healthiest first), each normalised to end in `/ipfs/`
    /// (default `http://127.0.0.1:8080/ipfs/`). Empty: reads go through the RPC API.
    pub gateways: Vec<Url>,
    /// Extra headers sent with every request to a credentialed origin.
    pub headers: Vec<(String, String)>,
    /// Credentials, sent only to the credentialed origins: the RPC URL's and the first
    /// gateway's (as py-hamt does). Other gateways get no custom header and no credentials.
    pub auth: Option<Auth>,
    /// Time limit of one attempt (connect, request and whole body); default 60 s.
    pub timeout: Duration,
    /// Time limit to connect; default 10 s.
    pub connect_timeout: Duration,
    /// Most HTTP requests in flight at once (default 32). A permit is held per attempt and
    /// released while waiting to retry.
    pub concurrency: usize,
    /// Retries after the first attempt (default 3): on connect errors, timeouts, broken
    /// connections, 429, 500, 502, 503 and 504.
    pub max_retries: u32,
    /// Delay before the first retry (default 1 s).
    pub initial_delay: Duration,
    /// Each further retry waits this factor longer (default 2, at least 1); ±5% jitter.
    pub backoff_factor: f64,
    /// Cap on a server's `Retry-After` (default 300 s, as py-hamt).
    pub max_retry_after: Duration,
    /// Hash of new blocks for `add` in [`WriteMode::PyHamtAdd`] (default blake3).
    pub hash: HashAlg,
    /// How blocks are written.
    pub write_mode: WriteMode,
    /// `chunker` of `add` (default `size-1048576`, py-hamt's).
    pub chunker: String,
    /// `pin` flag of `add` in [`WriteMode::PyHamtAdd`] (default false, py-hamt's `pin_on_add`).
    pub pin_on_add: bool,
    /// Read through `/api/v0/block/get` when no gateway has the block (default true).
    pub rpc_fallback: bool,
    /// Send `Range` for partial reads and accept a `206` body unverified (default false: the
    /// whole block is fetched and verified, then sliced; values are at most 1 MiB per block).
    pub trust_range_responses: bool,
    /// Largest block accepted from the node (default 4 MiB); longer bodies are refused.
    pub max_block_bytes: usize,
    /// Most bytes of blocks per `dag/import` request (default 16 MiB).
    pub car_batch_bytes: usize,
    /// A gateway that failed this many times in a row goes to the back of the order (default 3).
    pub gateway_failure_threshold: u32,
    /// ...until this long after its last failure (default 30 s).
    pub gateway_probe_after: Duration,
}

/// py-hamt's default RPC URL.
pub const DEFAULT_RPC_URL: &str = "http://127.0.0.1:5001";
/// py-hamt's default gateway URL.
pub const DEFAULT_GATEWAY_URL: &str = "http://127.0.0.1:8080";

fn bad(msg: impl Into<String>) -> StoreError {
    StoreError::Backend(format!("invalid Kubo configuration: {}", msg.into()))
}

fn parse_url(s: &str, what: &str) -> Result<Url, StoreError> {
    let url = Url::parse(s.trim()).map_err(|e| bad(format!("{what} {s:?}: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(bad(format!(
            "{what} {s:?}: only http and https are supported"
        )));
    }
    if url.host_str().is_none() {
        return Err(bad(format!("{what} {s:?}: no host")));
    }
    Ok(url)
}

/// py-hamt's gateway normalisation: strip trailing `/`, append `/ipfs` if missing, then `/`.
///
/// ```
/// use ipfs_hamt::store::kubo::config::normalize_gateway;
/// assert_eq!(normalize_gateway("http://h:8080").unwrap().as_str(), "http://h:8080/ipfs/");
/// assert_eq!(normalize_gateway("http://h/x/ipfs/").unwrap().as_str(), "http://h/x/ipfs/");
/// ```
pub fn normalize_gateway(s: &str) -> Result<Url, StoreError> {
    let mut t = s.trim().trim_end_matches('/').to_string();
    if !t.ends_with("/ipfs") {
        t.push_str("/ipfs");
    }
    t.push('/');
    parse_url(&t, "gateway URL")
}

impl Default for KuboConfig {
    fn default() -> Self {
        KuboConfig {
            // Constant, valid URLs.
            rpc_url: Url::parse(DEFAULT_RPC_URL).unwrap_or_else(|_| unreachable!()),
            gateways: vec![
                normalize_gateway(DEFAULT_GATEWAY_URL).unwrap_or_else(|_| unreachable!())
            ],
            headers: Vec::new(),
            auth: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            concurrency: 32,
            max_retries: 3,
            initial_delay: Duration::from_secs(1),
            backoff_factor: 2.0,
            max_retry_after: Duration::from_secs(300),
            hash: HashAlg::Blake3,
            write_mode: WriteMode::Blocks,
            chunker: "size-1048576".into(),
            pin_on_add: false,
            rpc_fallback: true,
            trust_range_responses: false,
            max_block_bytes: 4 << 20,
            car_batch_bytes: 16 << 20,
            gateway_failure_threshold: 3,
            gateway_probe_after: Duration::from_secs(30),
        }
    }
}

impl KuboConfig {
    /// Defaults with the given RPC URL; the gateway stays `http://127.0.0.1:8080`.
    pub fn new(rpc_url: &str) -> Result<Self, StoreError> {
        Ok(KuboConfig {
            rpc_url: parse_url(rpc_url, "RPC URL")?,
            ..KuboConfig::default()
        })
    }

    /// Sets the gateways (normalised, duplicates dropped with order kept).
    pub fn set_gateways<I, S>(&mut self, urls: I) -> Result<(), StoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out: Vec<Url> = Vec::new();
        for u in urls {
            let url = normalize_gateway(u.as_ref())?;
            if !out.contains(&url) {
                out.push(url);
            }
        }
        self.gateways = out;
        Ok(())
    }

    /// Adds a custom header (sent to the credentialed origins only).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Checks the rules of py-hamt's `KuboCAS` constructor.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.concurrency == 0 {
            return Err(bad("concurrency must be > 0"));
        }
        if self.initial_delay.is_zero() {
            return Err(bad("initial_delay must be > 0"));
        }
        if !(self.backoff_factor >= 1.0 && self.backoff_factor.is_finite()) {
            return Err(bad("backoff_factor must be >= 1"));
        }
        if self.timeout.is_zero() {
            return Err(bad("timeout must be > 0"));
        }
        if !valid_chunker(&self.chunker) {
            return Err(bad(format!(
                "chunker {:?}: expected size-<n>=1>, rabin or rabin-<min>-<avg>-<max>",
                self.chunker
            )));
        }
        if self.car_batch_bytes == 0 || self.max_block_bytes == 0 {
            return Err(bad("car_batch_bytes and max_block_bytes must be > 0"));
        }
        for (k, v) in &self.headers {
            reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| bad(format!("header name {k:?}")))?;
            reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| bad(format!("value of header {k:?}")))?;
        }
        for g in &self.gateways {
            if !g.path().ends_with("/ipfs/") {
                return Err(bad(format!("gateway {g} must end in /ipfs/")));
            }
        }
        Ok(())
    }
}

fn valid_chunker(c: &str) -> bool {
    let num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(n) = c.strip_prefix("size-") {
        return num(n) && n.parse::<u64>().is_ok_and(|n| n >= 1);
    }
    if c == "rabin" {
        return true;
    }
    if let Some(rest) = c.strip_prefix("rabin-") {
        let parts: Vec<&str> = rest.split('-').collect();
        return parts.len() == 3 && parts.iter().all(|p| num(p));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_like_py_hamt() {
        let mut c = KuboConfig::default();
        assert!(c.validate().is_ok());
        for ch in ["size-0", "size-", "rabin-1-2", "buzhash", "size-x"] {
            c.chunker = ch.into();
            assert!(c.validate().is_err(), "{ch}");
        }
        for ch in ["size-1", "rabin", "rabin-1-2-3"] {
            c.chunker = ch.into();
            assert!(c.validate().is_ok(), "{ch}");
        }
        c.concurrency = 0;
        assert!(c.validate().is_err());
        c.concurrency = 1;
        c.backoff_factor = 0.5;
        assert!(c.validate().is_err());
        c.backoff_factor = 1.0;
        c.initial_delay = Duration::ZERO;
        assert!(c.validate().is_err());
        assert!(KuboConfig::new("ftp://x").is_err());
        assert!(KuboConfig::new("not a url").is_err());
    }

    #[test]
    fn gateways_normalised_and_deduplicated() {
        let mut c = KuboConfig::default();
        c.set_gateways(["http://a:1", "http://a:1/ipfs", "http://b/ipfs/"])
            .unwrap();
        let g: Vec<&str> = c.gateways.iter().map(|u| u.as_str()).collect();
        assert_eq!(g, ["http://a:1/ipfs/", "http://b/ipfs/"]);
        assert_eq!(
            format!("{:?}", Auth::Bearer("secret".into())),
            "Bearer(***)"
        );
    }
}

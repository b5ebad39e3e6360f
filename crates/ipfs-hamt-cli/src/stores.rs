//! Opening the store the options name, and finding the root to work on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use ipfs_hamt::store::disk::{default_store_path, DiskOptions};
use ipfs_hamt::store::kubo::{Auth, KuboConfig, KuboStore};
use ipfs_hamt::store::{BlockStore, CarStore, DiskStore, SharedStore};
use ipfs_hamt::Cid;

use crate::StoreOpts;

/// An opened store.
pub struct Opened {
    /// The store, as the HAMT takes it.
    pub store: SharedStore,
    /// What it is, for messages: `store PATH` or `CAR PATH`.
    pub label: String,
    /// The CAR, with `--car`.
    pub car: Option<Arc<CarStore>>,
    /// The disk store, without `--car` or the node.
    pub disk: Option<DiskStore>,
    /// The node, with `--kubo` / `--gateway`.
    pub kubo: Option<KuboStore>,
}

/// True if the options name an IPFS node.
pub fn uses_node(opts: &StoreOpts) -> bool {
    opts.kubo.is_some() || !opts.gateway.is_empty()
}

/// The node the options name (`--kubo`, `--gateway`), or None.
pub fn node(opts: &StoreOpts) -> Result<Option<KuboStore>> {
    if !uses_node(opts) {
        return Ok(None);
    }
    let mut config = match &opts.kubo {
        Some(url) => KuboConfig::new(url)?,
        // Gateways only: reads never touch an RPC API.
        None => KuboConfig {
            rpc_fallback: false,
            ..KuboConfig::default()
        },
    };
    if !opts.gateway.is_empty() {
        config.set_gateways(opts.gateway.iter().filter(|g| !g.trim().is_empty()))?;
    }
    for h in &opts.kubo_header {
        let Some((name, value)) = h.split_once(':') else {
            bail!("invalid --kubo-header {h:?}: expected NAME:VALUE");
        };
        config
            .headers
            .push((name.trim().to_string(), value.trim().to_string()));
    }
    if let Some(t) = &opts.kubo_token {
        config.auth = Some(Auth::Bearer(t.clone()));
    }
    config.timeout = std::time::Duration::from_secs(opts.kubo_timeout);
    config.concurrency = usize::try_from(opts.kubo_concurrency).unwrap_or(32);
    Ok(Some(KuboStore::new(config)?))
}

/// The node, or a clear error naming the options.
pub fn require_node(opts: &StoreOpts, what: &str) -> Result<KuboStore> {
    node(opts)?.ok_or_else(|| {
        anyhow!("{what} needs an IPFS node: pass --kubo RPC_URL (or set IPFS_HAMT_KUBO)")
    })
}

fn open_node(opts: &StoreOpts) -> Result<Option<Opened>> {
    let Some(kubo) = node(opts)? else {
        return Ok(None);
    };
    if let Some(car) = &opts.car {
        bail!(
            "--car {} and --kubo/--gateway name two stores; only push and pull take both",
            car.display()
        );
    }
    let label = format!("node {}", kubo.config().rpc_url);
    Ok(Some(Opened {
        store: Arc::new(kubo.clone()),
        label,
        car: None,
        disk: None,
        kubo: Some(kubo),
    }))
}

/// The disk store path the options name (`--store`, else the default).
pub fn disk_path(opts: &StoreOpts) -> Result<PathBuf> {
    match &opts.store {
        Some(p) => Ok(p.clone()),
        None => Ok(default_store_path()?),
    }
}

/// Opens the disk store (refuses `--car`, for commands that write).
pub fn open_disk(opts: &StoreOpts, what: &str) -> Result<Opened> {
    if let Some(node) = open_node(opts)? {
        return Ok(node);
    }
    open_local_disk(opts, what, Access::Write)
}

/// What a command mostly does with the disk store: it sizes the index cache, which fills as
/// the index is read (a writer's lookups are for absent blocks, answered by bloom filters).
#[derive(Clone, Copy)]
pub enum Access {
    /// Reads (get, ls, serve, verify...): a large cache for warm random reads.
    Read,
    /// Imports and other writes: a small cache, so memory stays flat.
    Write,
}

/// Opens the local disk store, ignoring the node options (`pull`).
pub fn open_local_disk(opts: &StoreOpts, what: &str, access: Access) -> Result<Opened> {
    if let Some(car) = &opts.car {
        bail!(
            "{what} writes to the disk store; a CAR ({}) is read-only here (use --store)",
            car.display()
        );
    }
    let path = disk_path(opts)?;
    let options = DiskOptions {
        index_cache_bytes: match access {
            Access::Read => DiskOptions::READ_CACHE_BYTES,
            Access::Write => DiskOptions::WRITE_CACHE_BYTES,
        },
    };
    let disk = DiskStore::open_with(&path, options)?;
    Ok(Opened {
        store: Arc::new(disk.clone()),
        label: format!("store {}", path.display()),
        car: None,
        disk: Some(disk),
        kubo: None,
    })
}

/// Opens the CAR (`--car`) read-only, or the disk store.
pub fn open(opts: &StoreOpts) -> Result<Opened> {
    if let Some(node) = open_node(opts)? {
        return Ok(node);
    }
    open_local(opts)
}

/// Opens the CAR (`--car`) or the disk store, ignoring the node options (`push`).
pub fn open_local(opts: &StoreOpts) -> Result<Opened> {
    match &opts.car {
        Some(path) => open_car(path),
        None => open_local_disk(opts, "this command", Access::Read),
    }
}

fn open_car(path: &Path) -> Result<Opened> {
    let car =
        Arc::new(CarStore::open(path).with_context(|| format!("cannot open {}", path.display()))?);
    Ok(Opened {
        store: car.clone(),
        label: format!("CAR {}", path.display()),
        car: Some(car),
        disk: None,
        kubo: None,
    })
}

/// Parses a CID argument.
pub fn parse_cid(s: &str) -> Result<Cid> {
    Cid::try_from(s).map_err(|e| anyhow!("invalid CID {s:?}: {e}"))
}

/// True if `s` parses as a CID.
pub fn is_cid(s: &str) -> bool {
    Cid::try_from(s).is_ok()
}

/// Fails early (before opening any store) when no CID is given and there is no CAR to take
/// the root from.
pub fn require_root_arg(opts: &StoreOpts, given: Option<&str>) -> Result<()> {
    if given.is_none() && opts.car.is_none() {
        bail!("missing root CID: pass the CID, or --car FILE to use a CAR's root");
    }
    Ok(())
}

impl Opened {
    /// The root: the CID given, else the CAR's single root. Checks it is in the store.
    pub async fn root(&self, given: Option<&str>) -> Result<Cid> {
        let cid = match (given, &self.car) {
            (Some(s), _) => parse_cid(s)?,
            (None, Some(car)) => match car.roots().as_slice() {
                [root] => *root,
                [] => bail!("{} has no root", self.label),
                _ => bail!("{} has several roots; pass the CID to use", self.label),
            },
            (None, None) => {
                bail!("missing root CID: pass the CID, or --car FILE to use a CAR's root")
            }
        };
        self.check(&cid).await?;
        Ok(cid)
    }

    /// Fails with a clear message if the store lacks `cid`.
    pub async fn check(&self, cid: &Cid) -> Result<()> {
        if !self.store.has(cid).await? {
            bail!("root {cid} not found in {}", self.label);
        }
        Ok(())
    }
}

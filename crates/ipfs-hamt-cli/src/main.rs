//! `ipfs-hamt`: import a directory into a py-hamt compatible HAMT and read it back.
//!
//! Store options are global: they are accepted before or after the subcommand.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use futures::TryStreamExt;
use ipfs_hamt::store::CarStore;
use ipfs_hamt::{ByteRange, Cid, HamtConfig, Reader, Writer};

mod progress;
mod walk;

#[derive(Parser)]
#[command(
    name = "ipfs-hamt",
    version,
    about = "py-hamt compatible HAMTs on content-addressed stores"
)]
struct Cli {
    #[command(flatten)]
    store: StoreOpts,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args)]
struct StoreOpts {
    /// CAR file to write (import) or read (other commands).
    #[arg(long, global = true, value_name = "FILE")]
    car: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Store every regular file under DIR (key = path relative to DIR, `/`-separated) and print
    /// the root CID.
    Import {
        /// Directory to import.
        dir: PathBuf,
        /// Most entries per bucket (py-hamt's max_bucket_size).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
        bucket_size: u64,
        /// Print a JSON object instead of the bare CID.
        #[arg(long)]
        json: bool,
    },
    /// List keys (sorted), optionally only those starting with PREFIX.
    Ls {
        /// Key prefix.
        prefix: Option<String>,
    },
    /// Write the value of KEY to stdout or a file.
    Get {
        /// The key.
        key: String,
        /// Write to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Only bytes A..=B (`A-B`), from A (`A-`) or the last N (`-N`).
        #[arg(long, value_name = "A-B", value_parser = parse_range, allow_hyphen_values = true)]
        range: Option<ByteRange>,
    },
    /// Write every key as a file under DIR (the reverse of import).
    Export {
        /// Directory to create or fill.
        dir: PathBuf,
    },
    /// Keys, nodes, depth histogram and bytes of the tree.
    Stat {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Parses `A-B`, `A-` or `-N` (HTTP Range style, inclusive end).
fn parse_range(s: &str) -> Result<ByteRange, String> {
    let bad = || format!("invalid range {s:?}: expected A-B, A- or -N");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let num = |x: &str| x.parse::<u64>().map_err(|_| bad());
    match (a.is_empty(), b.is_empty()) {
        (true, false) => Ok(ByteRange::Suffix(num(b)?)),
        (false, true) => Ok(ByteRange::From(num(a)?)),
        (false, false) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Err(format!("invalid range {s:?}: end before start"));
            }
            Ok(ByteRange::Slice {
                offset: a,
                length: b - a + 1,
            })
        }
        (true, true) => Err(bad()),
    }
}

fn require_car(opts: &StoreOpts) -> Result<&Path> {
    match &opts.car {
        Some(p) => Ok(p),
        None => bail!("no store given: pass --car FILE"),
    }
}

fn open_car(opts: &StoreOpts) -> Result<Reader> {
    let path = require_car(opts)?;
    let store = CarStore::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let root: Cid = match store.roots().as_slice() {
        [root] => *root,
        [] => bail!("{} has no root", path.display()),
        _ => bail!("{} has several roots; expected one", path.display()),
    };
    Ok(Reader::new(Arc::new(store), root, HamtConfig::default())?)
}

async fn import(opts: &StoreOpts, dir: &Path, bucket_size: u64, json: bool) -> Result<()> {
    let out = require_car(opts)?;
    let files = walk::regular_files(dir)?;
    let total: u64 = files.iter().map(|f| f.len).sum();
    let store = Arc::new(
        CarStore::create(out).with_context(|| format!("cannot create {}", out.display()))?,
    );
    let config = HamtConfig {
        max_bucket_size: usize::try_from(bucket_size).context("bucket size too large")?,
        ..HamtConfig::default()
    };
    let mut writer = Writer::new(store.clone(), config)?;
    let mut bar = progress::bytes_bar(files.len() as u64, total);
    for f in &files {
        let data =
            std::fs::read(&f.path).with_context(|| format!("cannot read {}", f.path.display()))?;
        bar.inc_file(data.len() as u64);
        writer.insert(&f.key, data).await?;
    }
    let root = writer.commit().await?;
    store.finish(root)?;
    bar.finish();
    if json {
        let v = serde_json::json!({
            "root": root.to_string(),
            "files": files.len(),
            "bytes": total,
            "car": out.display().to_string(),
        });
        println!("{v}");
    } else {
        println!("{root}");
    }
    Ok(())
}

async fn ls(opts: &StoreOpts, prefix: Option<&str>) -> Result<()> {
    let r = open_car(opts)?;
    let mut keys: Vec<String> = r.keys().try_collect().await?;
    keys.sort_unstable();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for k in keys
        .iter()
        .filter(|k| prefix.is_none_or(|p| k.starts_with(p)))
    {
        writeln!(out, "{k}")?;
    }
    out.flush()?;
    Ok(())
}

async fn get(opts: &StoreOpts, key: &str, output: Option<&Path>, range: ByteRange) -> Result<()> {
    let r = open_car(opts)?;
    let Some(value) = r.get_range(key, range).await? else {
        bail!("key not found: {key:?}");
    };
    match output {
        Some(p) => {
            std::fs::write(p, &value).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&value)?;
            out.flush()?;
        }
    }
    Ok(())
}

async fn export(opts: &StoreOpts, dir: &Path) -> Result<()> {
    let r = open_car(opts)?;
    let keys: Vec<String> = r.keys().try_collect().await?;
    let mut bar = progress::bytes_bar(keys.len() as u64, 0);
    for key in &keys {
        let path = walk::path_for_key(dir, key)?;
        let value = r
            .get(key)
            .await?
            .with_context(|| format!("key {key:?} vanished"))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, &value)
            .with_context(|| format!("cannot write {}", path.display()))?;
        bar.inc_file(value.len() as u64);
    }
    bar.finish();
    eprintln!("exported {} files to {}", keys.len(), dir.display());
    Ok(())
}

async fn stat(opts: &StoreOpts, json: bool) -> Result<()> {
    let r = open_car(opts)?;
    let s = r.stats().await?;
    if json {
        let v = serde_json::json!({
            "root": r.root().to_string(),
            "keys": s.keys,
            "nodes": s.nodes,
            "links": s.links,
            "max_depth": s.max_depth,
            "nodes_per_depth": s.nodes_per_depth,
            "keys_per_depth": s.keys_per_depth,
            "bucket_sizes": s.bucket_sizes.iter().map(|(k, v)| (k.to_string(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
            "node_bytes": s.node_bytes,
        });
        println!("{v}");
        return Ok(());
    }
    println!("root       {}", r.root());
    println!("keys       {}", s.keys);
    println!("nodes      {}", s.nodes);
    println!("links      {}", s.links);
    println!("node bytes {}", s.node_bytes);
    println!("depth  nodes  keys");
    for (d, (n, k)) in s.nodes_per_depth.iter().zip(&s.keys_per_depth).enumerate() {
        println!("{d:>5}  {n:>5}  {k:>4}");
    }
    let sizes: Vec<String> = s
        .bucket_sizes
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect();
    println!("bucket sizes (size:count) {}", sizes.join(" "));
    Ok(())
}

async fn run(cli: Cli) -> Result<()> {
    match &cli.cmd {
        Cmd::Import {
            dir,
            bucket_size,
            json,
        } => import(&cli.store, dir, *bucket_size, *json).await,
        Cmd::Ls { prefix } => ls(&cli.store, prefix.as_deref()).await,
        Cmd::Get { key, output, range } => {
            get(
                &cli.store,
                key,
                output.as_deref(),
                range.unwrap_or_default(),
            )
            .await
        }
        Cmd::Export { dir } => export(&cli.store, dir).await,
        Cmd::Stat { json } => stat(&cli.store, *json).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ipfs-hamt: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("ipfs-hamt: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

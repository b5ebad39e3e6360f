//! The commands.

use std::collections::HashSet;
use std::io::{Read as _, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use futures::{StreamExt, TryStreamExt};
use ipfs_hamt::block::Block;
use ipfs_hamt::crypt::{EncryptionKey, ValueCipher};
use ipfs_hamt::dataset::{self, ChangeKind, DatasetConfig, DatasetReader, DatasetWriter};
use ipfs_hamt::store::{BlockStore, CarStore, SharedStore, StoreError};
use ipfs_hamt::{ByteRange, Cid, HamtConfig};
use serde_json::json;

use crate::stores::{self, is_cid, require_root_arg};
use crate::{progress, walk, CryptOpts, StoreOpts, TreeOpts};

/// Bytes of blocks copied per transaction by `car import`, and per request by `push`.
const COPY_BATCH_BYTES: usize = 8 << 20;
/// Blocks fetched at once by `pull` (the node store bounds requests in flight itself).
const PULL_CHUNK: usize = 256;

pub(crate) fn config(tree: TreeOpts) -> Result<HamtConfig> {
    Ok(HamtConfig {
        max_bucket_size: usize::try_from(tree.bucket_size).context("bucket size too large")?,
        ..HamtConfig::default()
    })
}

/// The cipher the options ask for (`--encrypt-key-file`), if any.
pub(crate) fn cipher(c: &CryptOpts) -> Result<Option<ValueCipher>> {
    let Some(path) = &c.encrypt_key_file else {
        return Ok(None);
    };
    let contents = zeroize::Zeroizing::new(
        std::fs::read(path).with_context(|| format!("cannot read key file {}", path.display()))?,
    );
    let key = EncryptionKey::from_key_file(&contents)
        .with_context(|| format!("invalid key file {}", path.display()))?;
    Ok(Some(ValueCipher::new(key, c.header.as_bytes().to_vec())))
}

/// The dataset at `root` (any layout) in `store`.
pub(crate) async fn open_reader(store: &SharedStore, root: Cid) -> Result<DatasetReader> {
    Ok(DatasetReader::open(store.clone(), root, &DatasetConfig::default()).await?)
}

/// The value of `key` (decrypted with `cipher`), restricted to `range`.
async fn read_value(
    r: &DatasetReader,
    cipher: Option<&ValueCipher>,
    key: &str,
    range: ByteRange,
) -> Result<Option<bytes::Bytes>> {
    Ok(match cipher {
        None => r.get_range(key, range).await?,
        Some(c) => c
            .get_range(r, key, range)
            .await
            .with_context(|| format!("cannot decrypt {key:?}"))?,
    })
}

/// Writes `text` to stdout.
pub(crate) fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

pub(crate) fn println(text: impl std::fmt::Display) -> Result<()> {
    print(&format!("{text}\n"))
}

/// Resolves `[CID] X` positionals: two are a CID and X; one is X (only with --car).
fn cid_and_arg<T>(
    opts: &StoreOpts,
    first: String,
    second: Option<T>,
    what: &str,
    parse: impl FnOnce(String) -> T,
) -> Result<(Option<String>, T)> {
    match second {
        Some(x) => Ok((Some(first), x)),
        None if opts.car.is_some() => Ok((None, parse(first))),
        None => bail!("missing {what}: expected CID {what} (or --car FILE {what})"),
    }
}

pub async fn ls(opts: &StoreOpts, first: Option<String>, second: Option<String>) -> Result<()> {
    let (root, prefix) = match (first, second) {
        (Some(a), Some(b)) => (Some(a), Some(b)),
        (Some(a), None) if opts.car.is_some() && !is_cid(&a) => (None, Some(a)),
        (a, _) => (a, None),
    };
    require_root_arg(opts, root.as_deref())?;
    let s = stores::open(opts)?;
    let root = s.root(root.as_deref()).await?;
    let r = open_reader(&s.store, root).await?;
    let index = r.key_index().await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for k in index.with_prefix(prefix.as_deref().unwrap_or("")) {
        writeln!(out, "{k}")?;
    }
    out.flush()?;
    Ok(())
}

pub async fn get(
    opts: &StoreOpts,
    first: String,
    second: Option<String>,
    output: Option<PathBuf>,
    range: ByteRange,
    crypt: &CryptOpts,
) -> Result<()> {
    let (root, key) = cid_and_arg(opts, first, second, "KEY", |k| k)?;
    let cipher = cipher(crypt)?;
    let s = stores::open(opts)?;
    let root = s.root(root.as_deref()).await?;
    let r = open_reader(&s.store, root).await?;
    let Some(value) = read_value(&r, cipher.as_ref(), &key, range).await? else {
        bail!("key not found: {key:?}");
    };
    match output {
        Some(p) => {
            std::fs::write(&p, &value).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&value)?;
            out.flush()?;
        }
    }
    Ok(())
}

pub async fn export(
    opts: &StoreOpts,
    first: String,
    second: Option<PathBuf>,
    crypt: &CryptOpts,
) -> Result<()> {
    let (root, dir) = cid_and_arg(opts, first, second, "DIR", PathBuf::from)?;
    let cipher = cipher(crypt)?;
    let s = stores::open(opts)?;
    let root = s.root(root.as_deref()).await?;
    let r = open_reader(&s.store, root).await?;
    let keys: Vec<String> = r.keys().try_collect().await?;
    // Check every key first, so a hostile key writes nothing.
    let paths: Vec<PathBuf> = keys
        .iter()
        .map(|k| walk::path_for_key(&dir, k))
        .collect::<Result<_>>()?;
    let mut bar = progress::spinner(Some(keys.len() as u64), "files");
    // Values are fetched 16 at a time (the store verifies each block) and written in order.
    let (r, cipher) = (&r, cipher.as_ref());
    let mut values = futures::stream::iter(keys.iter())
        .map(|key| async move {
            read_value(r, cipher, key, ByteRange::Full)
                .await?
                .with_context(|| format!("key {key:?} vanished"))
        })
        .buffered(16);
    for path in &paths {
        let Some(value) = values.next().await else {
            break;
        };
        let value = value?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(path, &value).with_context(|| format!("cannot write {}", path.display()))?;
        bar.inc_item(value.len() as u64);
    }
    bar.finish();
    eprintln!("exported {} files to {}", keys.len(), dir.display());
    Ok(())
}

pub async fn put(
    opts: &StoreOpts,
    cid: &str,
    key: &str,
    file: &Path,
    tree: TreeOpts,
    crypt: &CryptOpts,
) -> Result<()> {
    let config = config(tree)?;
    let cipher = cipher(crypt)?;
    let data = if file == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read stdin")?;
        buf
    } else {
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let s = stores::open_disk(opts, "put")?;
    let root = s.root(Some(cid)).await?;
    let mut w = DatasetWriter::open(s.store.clone(), root, &DatasetConfig::hamt(config)).await?;
    match &cipher {
        Some(c) => c.insert(&mut w, key, &data).await?,
        None => w.insert(key, data).await?,
    }
    let new = w.commit().await?;
    crate::pins::pin_root(&s, opts, Some(&root), &new).await?;
    println(new)
}

pub async fn rm(opts: &StoreOpts, cid: &str, key: &str, tree: TreeOpts) -> Result<()> {
    let config = config(tree)?;
    let s = stores::open_disk(opts, "rm")?;
    let root = s.root(Some(cid)).await?;
    let mut w = DatasetWriter::open(s.store.clone(), root, &DatasetConfig::hamt(config)).await?;
    w.remove(key).await?;
    let new = w.commit().await?;
    crate::pins::pin_root(&s, opts, Some(&root), &new).await?;
    println(new)
}

pub async fn stat(opts: &StoreOpts, cid: Option<&str>, json: bool) -> Result<()> {
    require_root_arg(opts, cid)?;
    let s = stores::open(opts)?;
    let root = s.root(cid).await?;
    let st = open_reader(&s.store, root).await?.stats().await?;
    if json {
        return println(st.to_json(&root));
    }
    print(&st.to_text(&root))
}

pub async fn verify(opts: &StoreOpts, cid: Option<&str>, json: bool) -> Result<()> {
    require_root_arg(opts, cid)?;
    let s = stores::open(opts)?;
    // A missing root is reported by the walk, like any missing block.
    let root = match cid {
        Some(c) => stores::parse_cid(c)?,
        None => s.root(None).await?,
    };
    let mut bar = progress::spinner(None, "blocks");
    let report = dataset::verify(&*s.store, &root, &DatasetConfig::default(), &mut |n| {
        bar.inc_item(n)
    })
    .await?;
    bar.finish();
    if json {
        let v = json!({
            "root": root.to_string(),
            "ok": report.is_ok(),
            "blocks": report.blocks,
            "nodes": report.nodes,
            "values": report.values,
            "bytes": report.bytes,
            "missing": report.missing.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "corrupt": report.corrupt.iter().map(|(c, why)| json!({"cid": c.to_string(), "reason": why})).collect::<Vec<_>>(),
        });
        println(v)?;
    } else {
        let mut t = String::new();
        for c in &report.missing {
            t += &format!("missing {c}\n");
        }
        for (c, why) in &report.corrupt {
            t += &format!("corrupt {c}: {why}\n");
        }
        t += &format!(
            "{root}: {} blocks verified ({} nodes, {} value blocks, {} bytes), {} missing, {} corrupt\n",
            report.blocks,
            report.nodes,
            report.values,
            report.bytes,
            report.missing.len(),
            report.corrupt.len()
        );
        print(&t)?;
    }
    if !report.is_ok() {
        bail!(
            "verification of {root} failed: {} missing and {} corrupt blocks in {}",
            report.missing.len(),
            report.corrupt.len(),
            s.label
        );
    }
    Ok(())
}

/// Checks every block of the store (reachable or not).
pub async fn verify_all(opts: &StoreOpts, json: bool) -> Result<()> {
    let s = stores::open(opts)?;
    let (blocks, bytes, corrupt, problems) = if let Some(disk) = &s.disk {
        let bar = progress::spinner(None, "blocks");
        let bar = Arc::new(std::sync::Mutex::new(bar));
        let b2 = bar.clone();
        let check = disk
            .verify_all(move |n| {
                if let Ok(mut b) = b2.lock() {
                    b.inc_item(n);
                }
            })
            .await?;
        if let Ok(b) = bar.lock() {
            b.finish();
        }
        let mut problems = Vec::new();
        if !check.unverifiable.is_empty() {
            problems.push(format!(
                "{} blocks under unsupported hashes",
                check.unverifiable.len()
            ));
        }
        if check.bad_keys > 0 {
            problems.push(format!("{} entries with malformed keys", check.bad_keys));
        }
        if (check.counters.blocks, check.counters.bytes) != (check.blocks, check.bytes) {
            problems.push(format!(
                "counters say {} blocks / {} bytes, found {} / {}",
                check.counters.blocks, check.counters.bytes, check.blocks, check.bytes
            ));
        }
        let corrupt: Vec<(Cid, String)> = check
            .corrupt
            .iter()
            .map(|c| (*c, "bytes do not match the hash".to_string()))
            .collect();
        (check.blocks, check.bytes, corrupt, problems)
    } else if let Some(car) = &s.car {
        let mut bar = progress::spinner(Some(car.len() as u64), "blocks");
        let (mut blocks, mut bytes, mut corrupt) = (0u64, 0u64, Vec::new());
        for cid in car.cids() {
            match car.get(&cid).await {
                Ok(data) => {
                    blocks += 1;
                    bytes += data.len() as u64;
                    bar.inc_item(data.len() as u64);
                }
                Err(StoreError::Verify(e)) => corrupt.push((cid, e.to_string())),
                Err(e) => return Err(e.into()),
            }
        }
        bar.finish();
        (blocks, bytes, corrupt, Vec::new())
    } else {
        bail!("no store to check");
    };
    if json {
        let v = json!({
            "ok": corrupt.is_empty() && problems.is_empty(),
            "blocks": blocks,
            "bytes": bytes,
            "corrupt": corrupt.iter().map(|(c, why)| json!({"cid": c.to_string(), "reason": why})).collect::<Vec<_>>(),
            "problems": problems,
        });
        println(v)?;
    } else {
        let mut t = String::new();
        for (c, why) in &corrupt {
            t += &format!("corrupt {c}: {why}\n");
        }
        for p in &problems {
            t += &format!("problem: {p}\n");
        }
        t += &format!(
            "{}: {blocks} blocks ({bytes} bytes) checked, {} corrupt\n",
            s.label,
            corrupt.len()
        );
        print(&t)?;
    }
    if !corrupt.is_empty() || !problems.is_empty() {
        bail!(
            "{} failed verification: {} corrupt blocks{}",
            s.label,
            corrupt.len(),
            if problems.is_empty() {
                String::new()
            } else {
                format!(", {}", problems.join(", "))
            }
        );
    }
    Ok(())
}

pub async fn diff(opts: &StoreOpts, a: &str, b: &str, json: bool) -> Result<()> {
    let (a, b) = (stores::parse_cid(a)?, stores::parse_cid(b)?);
    let s = stores::open(opts)?;
    s.check(&a).await?;
    s.check(&b).await?;
    let (ra, rb) = (
        open_reader(&s.store, a).await?,
        open_reader(&s.store, b).await?,
    );
    let changes = dataset::diff(&ra, &rb).await?;
    let name = |k: ChangeKind| match k {
        ChangeKind::Added => "added",
        ChangeKind::Removed => "removed",
        ChangeKind::Changed => "changed",
    };
    if json {
        let v: Vec<_> = changes
            .iter()
            .map(|c| {
                json!({
                    "key": c.key,
                    "change": name(c.kind()),
                    "old": c.old.map(|x| x.to_string()),
                    "new": c.new.map(|x| x.to_string()),
                })
            })
            .collect();
        return println(serde_json::Value::from(v));
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for c in &changes {
        writeln!(out, "{:<8}{}", name(c.kind()), c.key)?;
    }
    out.flush()?;
    Ok(())
}

pub async fn car_export(opts: &StoreOpts, cid: &str, out: &Path) -> Result<()> {
    let s = stores::open(opts)?;
    let root = s.root(Some(cid)).await?;
    let r = open_reader(&s.store, root).await?;
    // OUT that exists and is not a regular file (a pipe, a device such as /dev/stdout): written
    // in place. Renaming a file over it would replace the device node itself.
    if std::fs::metadata(out).is_ok_and(|m| !m.is_file()) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(out)
            .with_context(|| format!("cannot open {}", out.display()))?;
        let n = r
            .write_car(&file)
            .await
            .with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!("wrote {n} blocks of {root} to {}", out.display());
        return Ok(());
    }
    // Written aside and renamed, so OUT is never a partial CAR.
    let mut tmp_name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    tmp_name.push(format!(".partial-{}", std::process::id()));
    let tmp = out.with_file_name(tmp_name);
    let result = async {
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let n = r.write_car(&file).await?;
        file.sync_all()
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
        Ok::<u64, anyhow::Error>(n)
    }
    .await;
    match result {
        Ok(n) => {
            eprintln!("wrote {n} blocks of {root} to {}", out.display());
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

pub async fn car_import(opts: &StoreOpts, input: &Path, json: bool) -> Result<()> {
    let car = CarStore::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let s = stores::open_disk(opts, "car import")?;
    let cids = car.cids();
    let mut bar = progress::spinner(Some(cids.len() as u64), "blocks");
    let (mut batch, mut batch_bytes, mut bytes) = (Vec::new(), 0usize, 0u64);
    for cid in &cids {
        // The CAR store verifies every block it returns.
        let data = car
            .get(cid)
            .await
            .with_context(|| format!("{}", input.display()))?;
        batch_bytes += data.len();
        bytes += data.len() as u64;
        bar.inc_item(data.len() as u64);
        batch.push(Block { cid: *cid, data });
        if batch_bytes >= COPY_BATCH_BYTES {
            s.store.put_many(std::mem::take(&mut batch)).await?;
            batch_bytes = 0;
        }
    }
    s.store.put_many(batch).await?;
    s.store.sync().await?;
    bar.finish();
    let roots = car.roots();
    for r in &roots {
        // A CAR's root may be absent from it (a partial CAR): only roots present are pinned.
        if s.store.has(r).await? {
            crate::pins::pin_root(&s, opts, None, r).await?;
        }
    }
    if json {
        let v = json!({
            "roots": roots.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "blocks": cids.len(),
            "bytes": bytes,
        });
        return println(v);
    }
    let mut t = String::new();
    for r in &roots {
        t += &format!("{r}\n");
    }
    print(&t)?;
    eprintln!(
        "imported {} blocks ({bytes} bytes) into {}",
        cids.len(),
        s.label
    );
    Ok(())
}

/// Whether a CID inlines its data (identity hash): never stored or fetched.
fn is_inline(cid: &Cid) -> bool {
    cid.hash().code() == ipfs_hamt::block::IDENTITY_CODE
}

pub async fn push(opts: &StoreOpts, cid: &str, pin: bool) -> Result<()> {
    let node = stores::require_node(opts, "push")?;
    let local = stores::open_local(opts)?;
    let root = local.root(Some(cid)).await?;
    let dataset = open_reader(&local.store, root).await?;
    let label = format!("node {}", node.config().rpc_url);
    let mut bar = progress::spinner(None, "blocks");
    let (mut batch, mut batch_bytes) = (Vec::new(), 0usize);
    let (mut blocks, mut bytes) = (0u64, 0u64);
    // Every block of the dataset, each once, verified.
    let mut all = dataset.blocks();
    while let Some(block) = all
        .try_next()
        .await
        .with_context(|| format!("reading {root} from {}", local.label))?
    {
        blocks += 1;
        bytes += block.data.len() as u64;
        bar.inc_item(block.data.len() as u64);
        batch_bytes += block.data.len();
        batch.push(block);
        if batch_bytes >= COPY_BATCH_BYTES {
            node.put_many(std::mem::take(&mut batch)).await?;
            batch_bytes = 0;
        }
    }
    node.put_many(batch).await?;
    if pin {
        node.pin_add(&root).await?;
    }
    bar.finish();
    eprintln!(
        "pushed {blocks} blocks ({bytes} bytes) of {root} to {label}{}",
        if pin { ", pinned" } else { "" }
    );
    println(root)
}

pub async fn pull(opts: &StoreOpts, cid: &str) -> Result<()> {
    let node = stores::require_node(opts, "pull")?;
    let root = stores::parse_cid(cid)?;
    let local = stores::open_local_disk(opts, "pull", stores::Access::Write)?;
    // The layout is read from the root: locally if an earlier pull got it, else from the node.
    let source: SharedStore = if local.store.has(&root).await? {
        local.store.clone()
    } else {
        Arc::new(node.clone())
    };
    let dataset = open_reader(&source, root)
        .await
        .with_context(|| format!("pulling {root}"))?;
    let label = format!("node {}", node.config().rpc_url);
    let mut bar = progress::spinner(None, "blocks");
    let mut seen: HashSet<Cid> = HashSet::from([root]);
    let mut stack = vec![root];
    let (mut fetched_blocks, mut fetched_bytes, mut present) = (0u64, 0u64, 0u64);
    while !stack.is_empty() {
        let chunk: Vec<Cid> = stack.split_off(stack.len().saturating_sub(PULL_CHUNK));
        // Each block: from the local store if already there (an earlier, interrupted pull),
        // else from the node, which verifies it against its CID.
        let chunk = chunk.into_iter().filter(|c| !is_inline(c));
        let got: Vec<(Cid, bytes::Bytes, bool)> = futures::stream::iter(chunk)
            .map(|c| {
                let (node, local) = (node.clone(), local.store.clone());
                async move {
                    if local.has(&c).await? {
                        let data = local.get(&c).await?;
                        Ok::<_, StoreError>((c, data, false))
                    } else {
                        Ok((c, node.get(&c).await?, true))
                    }
                }
            })
            .buffer_unordered(PULL_CHUNK)
            .try_collect()
            .await
            .with_context(|| format!("pulling {root} from {label}"))?;
        let mut batch = Vec::new();
        for (c, data, new) in got {
            for l in dataset.block_links(&c, &data)? {
                if seen.insert(l) {
                    stack.push(l);
                }
            }
            bar.inc_item(data.len() as u64);
            if new {
                fetched_blocks += 1;
                fetched_bytes += data.len() as u64;
                batch.push(Block { cid: c, data });
            } else {
                present += 1;
            }
        }
        local.store.put_many(batch).await?;
    }
    local.store.sync().await?;
    crate::pins::pin_root(&local, opts, None, &root).await?;
    bar.finish();
    eprintln!(
        "pulled {fetched_blocks} blocks ({fetched_bytes} bytes) of {root} from {label} into {} \
         ({present} already present)",
        local.label
    );
    println(root)
}

//! Disk faults under the embedded store (`DiskStore`: segment files, index runs and a fjall
//! index): a full disk (a small tmpfs when the tests may mount one, i.e. as root; skipped with
//! a message otherwise; the CLI tests also cover a file-size limit, which needs no privilege),
//! a store that cannot be written (a read-only mount as root, file modes otherwise), and
//! corrupted store files (segment, index and runs). Every fault
//! is a clear, typed, one-line error, never a panic; data committed before the fault is
//! readable once the fault clears.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ipfs_hamt::store::{DiskStore, SharedStore, StoreError};
use ipfs_hamt::verify::verify_tree;
use ipfs_hamt::{Cid, Error, HamtConfig, Reader, Writer};

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A tmpfs of `size` mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        if !is_root() {
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(Tmpfs { dir })
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn remount(&self, opts: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(st.success(), "remount {opts}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn value(g: u64, i: u64) -> Vec<u8> {
    format!("generation {g} value {i}").into_bytes()
}

/// Incompressible filler.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Commits 300 keys of generation `g` on top of `root` (if any).
async fn commit_generation(store: SharedStore, root: Option<Cid>, g: u64) -> Result<Cid, Error> {
    let mut w = match root {
        Some(r) => Writer::open(store, r, HamtConfig::default())?,
        None => Writer::new(store, HamtConfig::default())?,
    };
    for i in 0..300 {
        w.insert(&format!("k{i}"), value(g, i)).await?;
    }
    w.commit().await
}

/// Every key of generation `g` reads back at `root`, and the tree verifies.
async fn assert_generation(store: SharedStore, root: Cid, g: u64) {
    let r = Reader::new(store.clone(), root, HamtConfig::default()).unwrap();
    for i in 0..300 {
        let got = r.get(&format!("k{i}")).await.unwrap();
        assert_eq!(
            got.as_deref(),
            Some(&value(g, i)[..]),
            "k{i} of generation {g}"
        );
    }
    let report = verify_tree(&*store, &root, &HamtConfig::default(), &mut |_| {})
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
}

fn one_line(e: &impl std::fmt::Display) -> String {
    let s = e.to_string();
    assert!(!s.is_empty() && !s.contains('\n'), "not one line: {s:?}");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_keeps_committed_data() {
    let Some(fs) = Tmpfs::mount("3m") else {
        eprintln!("SKIP disk_full_keeps_committed_data: cannot mount a tmpfs (needs root)");
        return;
    };
    let path = fs.path().join("blocks.redb");
    let store: SharedStore = Arc::new(DiskStore::open(&path).unwrap());
    let root = commit_generation(store.clone(), None, 0).await.unwrap();

    // Fill the disk: 64 KiB values until a write fails (3 MiB cannot take 200 of them).
    let mut w = Writer::open(store.clone(), root, HamtConfig::default()).unwrap();
    let mut err = None;
    for i in 0..200u64 {
        let r = async {
            w.insert(&format!("big{i}"), noise(i, 64 << 10)).await?;
            if i % 8 == 7 {
                w.commit().await?;
            }
            Ok::<_, Error>(())
        }
        .await;
        if let Err(e) = r {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("a 3 MiB disk took 12 MiB");
    let msg = one_line(&err);
    eprintln!("disk full: {msg}");
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert!(
        msg.contains("No space left") || msg.contains("space"),
        "the error says the disk is full: {msg}"
    );
    // Committed data still reads, in this process...
    let r = Reader::new(store.clone(), root, HamtConfig::default()).unwrap();
    for i in [0u64, 150, 299] {
        let got = r.get(&format!("k{i}")).await;
        if let Ok(got) = got {
            assert_eq!(got.as_deref(), Some(&value(0, i)[..]));
        }
    }
    drop((w, r, store));

    // ... and once the fault clears (more space), after reopening: all of it, and new writes.
    fs.remount("size=64m");
    let store: SharedStore = Arc::new(DiskStore::open(&path).unwrap());
    assert_generation(store.clone(), root, 0).await;
    let root1 = commit_generation(store.clone(), Some(root), 1)
        .await
        .unwrap();
    assert_generation(store, root1, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_store_is_a_clear_error() {
    // As root, file modes do not apply: a read-only mount refuses writes instead.
    if let Some(fs) = Tmpfs::mount("16m") {
        let path = fs.path().join("blocks.redb");
        let store: SharedStore = Arc::new(DiskStore::open(&path).unwrap());
        let root = commit_generation(store.clone(), None, 0).await.unwrap();
        drop(store);
        fs.remount("ro");
        let err = DiskStore::open(&path).map(drop).unwrap_err();
        let msg = one_line(&err);
        eprintln!("read-only file system: {msg}");
        assert!(
            matches!(err, StoreError::Io { .. } | StoreError::Backend(_)),
            "{err:?}"
        );
        assert!(
            msg.contains(&*path.to_string_lossy()),
            "names the file: {msg}"
        );
        fs.remount("rw");
        let store: SharedStore = Arc::new(DiskStore::open(&path).unwrap());
        assert_generation(store, root, 0).await;
        return;
    }
    if is_root() {
        eprintln!("SKIP unwritable_store_is_a_clear_error: root without mount rights");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.redb");
    let store: SharedStore = Arc::new(DiskStore::open(&path).unwrap());
    let root = commit_generation(store.clone(), None, 0).await.unwrap();
    drop(store);
    let set = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    set(&path, 0o000).unwrap();
    let err = DiskStore::open(&path).map(drop).unwrap_err();
    let msg = one_line(&err);
    assert!(msg.to_lowercase().contains("permission denied"), "{msg}");
    set(&path, 0o644).unwrap();
    let store: SharedStore = Arc::new(DiskStore::open(&path).unwrap());
    assert_generation(store, root, 0).await;
}

/// Damage done to a file.
type Damage = Box<dyn Fn(&Path)>;

/// Damage done to a copy of a good store file.
fn corruptions(len: u64) -> Vec<(String, Damage)> {
    let mut out: Vec<(String, Damage)> = Vec::new();
    let flip = |offsets: Vec<u64>| -> Damage {
        Box::new(move |p: &Path| {
            let mut b = std::fs::read(p).unwrap();
            for &o in &offsets {
                if let Some(x) = b.get_mut(o as usize) {
                    *x ^= 0xff;
                }
            }
            std::fs::write(p, b).unwrap();
        })
    };
    out.push(("header bytes 0..64 flipped".into(), flip((0..64).collect())));
    out.push((
        "header page flipped".into(),
        flip((0..4096).step_by(7).collect()),
    ));
    for k in 1..=12u64 {
        // 16 bytes flipped at each of 24 spots spread over the file, shifted per run.
        let offsets = (0..24u64)
            .flat_map(|s| {
                let at = (s * len / 24 + k * 997) % len;
                at..at + 16
            })
            .collect();
        out.push((format!("scattered flips #{k}"), flip(offsets)));
    }
    for frac in [2u64, 3, 10] {
        out.push((
            format!("truncated to 1/{frac}"),
            Box::new(move |p: &Path| {
                let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
                f.set_len(len / frac).unwrap();
            }),
        ));
    }
    out.push((
        "truncated to 100 bytes".into(),
        Box::new(|p: &Path| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(100)
                .unwrap()
        }),
    ));
    out.push((
        "garbage appended".into(),
        Box::new(|p: &Path| {
            let mut b = std::fs::read(p).unwrap();
            b.extend(noise(7, 100_000));
            std::fs::write(p, b).unwrap();
        }),
    ));
    out.push((
        "replaced by noise".into(),
        Box::new(move |p: &Path| std::fs::write(p, noise(9, len as usize)).unwrap()),
    ));
    out
}

static PANICS: AtomicU64 = AtomicU64::new(0);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_store_file_is_an_error_never_a_panic() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        default_hook(info);
    }));
    let dir = tempfile::tempdir().unwrap();
    let good: PathBuf = dir.path().join("good");
    let root = {
        let store: SharedStore = Arc::new(DiskStore::open(&good).unwrap());
        let root = commit_generation(store.clone(), None, 0).await.unwrap();
        // Some bulk, so that damage lands in data pages too.
        let mut w = Writer::open(store, root, HamtConfig::default()).unwrap();
        for i in 0..40 {
            w.insert(&format!("bulk{i}"), noise(i, 20_000))
                .await
                .unwrap();
        }
        w.commit().await.unwrap();
        root
    };
    // The store is a directory: damage its segment file (block bytes), its index files and
    // the runs of its block map.
    let mut targets = vec![PathBuf::from("segments/00000001.seg")];
    targets.extend(files_under(&good.join("index"), &good));
    let runs = files_under(&good.join("runs"), &good);
    assert!(!runs.is_empty(), "the committed store has index runs");
    targets.extend(runs);
    let (mut opened, mut refused, mut read_errors, mut wrong) = (0, 0, 0u64, 0u64);
    // Damaged files may make a library assert while opening them; `DiskStore::open` catches
    // those panics and returns `StoreError::Corrupt`. Any other panic fails the test.
    let mut caught_in_open = 0;
    let mut cases = Vec::new();
    for target in &targets {
        let len = std::fs::metadata(good.join(target)).unwrap().len();
        if len == 0 {
            continue;
        }
        let all = corruptions(len);
        // Every kind of damage on the segment; a sample on each index file.
        let picked: Vec<_> = if target.starts_with("segments") {
            all
        } else {
            all.into_iter().step_by(4).collect()
        };
        for (name, damage) in picked {
            cases.push((
                format!("{}: {name}", target.display()),
                target.clone(),
                damage,
            ));
        }
    }
    for (name, target, damage) in cases {
        let path = dir.path().join("damaged");
        let _ = std::fs::remove_dir_all(&path);
        copy_dir(&good, &path);
        damage(&path.join(&target));
        let before = PANICS.load(Ordering::Relaxed);
        let opening = tokio::task::spawn_blocking({
            let p = path.clone();
            move || DiskStore::open(p)
        })
        .await
        .unwrap();
        let panicked = PANICS.load(Ordering::Relaxed) - before;
        let store = match opening {
            Ok(s) => {
                assert_eq!(panicked, 0, "{name}: a panic while opening, yet it opened");
                s
            }
            Err(e) => {
                if panicked > 0 {
                    assert!(matches!(e, StoreError::Corrupt(_)), "{name}: {e:?}");
                    caught_in_open += panicked;
                }
                eprintln!("{name}: open refused: {}", one_line(&e));
                refused += 1;
                continue;
            }
        };
        opened += 1;
        let shared: SharedStore = Arc::new(store.clone());
        let r = Reader::new(shared.clone(), root, HamtConfig::default()).unwrap();
        for i in 0..300 {
            match r.get(&format!("k{i}")).await {
                // Blocks are verified on read: a value is right or an error, never wrong.
                Ok(Some(v)) if v[..] == value(0, i)[..] => {}
                Ok(other) => {
                    wrong += 1;
                    eprintln!("{name}: k{i} read as {other:?}");
                }
                Err(e) => {
                    one_line(&e);
                    read_errors += 1;
                }
            }
        }
        match store.verify_all(|_| {}).await {
            Ok(check) => eprintln!("{name}: opened; verify_all ok={}", check.is_ok()),
            Err(e) => eprintln!("{name}: opened; verify_all: {}", one_line(&e)),
        }
        drop((r, shared, store));
    }
    eprintln!(
        "corruptions: {opened} opened, {refused} refused ({caught_in_open} panics caught by \
         DiskStore::open), {read_errors} read errors, {wrong} wrong values"
    );
    assert_eq!(wrong, 0, "a damaged store returned wrong data");
    assert_eq!(
        PANICS.load(Ordering::Relaxed),
        caught_in_open,
        "a damaged store panicked outside DiskStore::open's guard"
    );
    // The fault clears (the good file is back): everything committed reads.
    let store: SharedStore = Arc::new(DiskStore::open(&good).unwrap());
    assert_generation(store, root, 0).await;
}

/// Files under `dir`, as paths relative to `base`.
fn files_under(dir: &Path, base: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p, base));
        } else {
            out.push(p.strip_prefix(base).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

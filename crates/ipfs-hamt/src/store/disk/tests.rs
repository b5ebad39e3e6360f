use super::layout::default_store_path_from;
use super::*;
use crate::block::{HashAlg, VerifyError, DAG_CBOR, RAW};
use crate::store::BlockStore;
use redb::{Database, TableDefinition};
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn store_in(dir: &tempfile::TempDir) -> (DiskStore, PathBuf) {
    let path = dir.path().join("blocks.redb");
    (DiskStore::open(&path).unwrap(), path)
}

#[tokio::test]
async fn round_trip_and_codec_independence() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = store_in(&dir);
    let a = Block::new(RAW, HashAlg::Blake3, b"a".to_vec());
    let b = Block::new(DAG_CBOR, HashAlg::Sha2_256, vec![7u8; 100_000]);
    assert!(!s.has(&a.cid).await.unwrap());
    assert!(matches!(s.get(&a.cid).await, Err(StoreError::NotFound(c)) if c == a.cid));
    s.put_many(vec![a.clone(), b.clone()]).await.unwrap();
    assert!(s.has(&a.cid).await.unwrap());
    assert_eq!(s.get(&a.cid).await.unwrap(), a.data);
    assert_eq!(s.get(&b.cid).await.unwrap(), b.data);
    let relabelled = Cid::new_v1(DAG_CBOR, *a.cid.hash());
    assert_eq!(s.get(&relabelled).await.unwrap(), a.data);
    assert_eq!(
        s.get_range(&b.cid, crate::range::ByteRange::Full)
            .await
            .unwrap(),
        b.data
    );
    s.put_many(vec![]).await.unwrap();
    // Works through the trait object too.
    let shared: crate::store::SharedStore = Arc::new(s.clone());
    assert_eq!(shared.get(&a.cid).await.unwrap(), a.data);
}

#[tokio::test]
async fn dedup_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = store_in(&dir);
    let a = Block::new(RAW, HashAlg::Blake3, b"aaa".to_vec());
    let b = Block::new(RAW, HashAlg::Blake3, b"bbbbb".to_vec());
    let a_cbor = Block {
        cid: Cid::new_v1(DAG_CBOR, *a.cid.hash()),
        data: a.data.clone(),
    };
    s.put_many(vec![a.clone(), b.clone(), a.clone(), a_cbor])
        .await
        .unwrap();
    assert_eq!(
        s.stats().await.unwrap(),
        DiskStats {
            blocks: 2,
            bytes: 8
        }
    );
    s.put_many(vec![b.clone()]).await.unwrap();
    s.put(a.clone()).await.unwrap();
    assert_eq!(s.stats().await.unwrap().blocks, 2);
    let c = Block::new(RAW, HashAlg::Sha2_256, b"c".to_vec());
    s.put(c).await.unwrap();
    assert_eq!(
        s.stats().await.unwrap(),
        DiskStats {
            blocks: 3,
            bytes: 9
        }
    );
}

#[tokio::test]
async fn reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/blocks.redb");
    let blocks: Vec<Block> = (0..50u32)
        .map(|i| Block::new(RAW, HashAlg::Blake3, format!("block {i}").into_bytes()))
        .collect();
    {
        let s = DiskStore::open(&path).unwrap();
        s.put_many(blocks.clone()).await.unwrap();
    }
    let s = DiskStore::open(&path).unwrap();
    for b in &blocks {
        assert_eq!(s.get(&b.cid).await.unwrap(), b.data);
    }
    assert_eq!(s.stats().await.unwrap().blocks, 50);
}

const LOCK_CHILD_ENV: &str = "IPFS_HAMT_DISK_LOCK_CHILD";

/// Re-runs this test binary with only `test` selected and `env` set.
fn child_command(test: &str, env: &str, value: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(env, value)
        .stdin(Stdio::null());
    cmd
}

/// Child mode of [`lock_held_by_another_process`]: opens the store, reports, waits.
#[test]
fn lock_child() {
    let Some(path) = std::env::var_os(LOCK_CHILD_ENV) else {
        return;
    };
    let _store = DiskStore::open(PathBuf::from(path)).unwrap();
    println!("@@opened");
    std::thread::sleep(Duration::from_secs(30));
}

#[test]
fn lock_held_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.redb");
    let mut child = child_command("store::disk::tests::lock_child", LOCK_CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The harness may print "test ... " on the same line before ours.
    let opened = lines.any(|l| l.map(|l| l.ends_with("@@opened")).unwrap_or(false));
    assert!(opened, "child did not open the store");
    let start = Instant::now();
    let err = DiskStore::open(&path).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2), "open blocked");
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert!(msg.contains("in use by another process"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    child.kill().unwrap();
    child.wait().unwrap();
    // The lock dies with its process.
    DiskStore::open(&path).unwrap();
}

#[test]
fn lock_held_in_same_process() {
    let dir = tempfile::tempdir().unwrap();
    let (s, path) = store_in(&dir);
    let start = Instant::now();
    let err = DiskStore::open(&path).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(err.to_string().contains("in use"), "{err}");
    drop(s);
    DiskStore::open(&path).unwrap();
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

#[tokio::test]
async fn corrupted_block_gives_verify_error() {
    let dir = tempfile::tempdir().unwrap();
    let (s, path) = store_in(&dir);
    let data: Vec<u8> = (0..3000u32)
        .flat_map(|i| (i.wrapping_mul(2_654_435_761) >> 7).to_le_bytes())
        .collect();
    let victim = Block::new(RAW, HashAlg::Blake3, data.clone());
    let other = Block::new(RAW, HashAlg::Sha2_256, b"unharmed".to_vec());
    s.put_many(vec![victim.clone(), other.clone()])
        .await
        .unwrap();
    s.sync().await.unwrap();
    drop(s);
    let seg = path.join("segments").join("00000001.seg");
    let mut file = std::fs::read(&seg).unwrap();
    let hits = find_all(&file, &data);
    assert!(!hits.is_empty(), "block bytes not found in the file");
    for at in hits {
        file[at + 1234] ^= 0x01;
    }
    std::fs::write(&seg, &file).unwrap();
    let s = DiskStore::open(&path).unwrap();
    match s.get(&victim.cid).await {
        Err(StoreError::Verify(VerifyError::Mismatch(c))) => assert_eq!(c, victim.cid),
        other => panic!("expected a verify error, got {other:?}"),
    }
    assert_eq!(s.get(&other.cid).await.unwrap(), other.data);
}

#[test]
fn garbage_file_gives_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for (name, len) in [("small", 5usize), ("big", 256 * 1024)] {
        let path = dir.path().join(name);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let garbage: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(&path, &garbage).unwrap();
        let err = DiskStore::open(&path).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        assert!(msg.contains("not an ipfs-hamt block store"), "{msg}");
        // The garbage is left alone.
        assert_eq!(std::fs::read(&path).unwrap(), garbage);
    }
    // A redb file of someone else's, with a table of the same name and other types.
    let foreign = dir.path().join("foreign.redb");
    {
        let db = Database::create(&foreign).unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(TableDefinition::<u64, u64>::new("blocks"))
            .unwrap()
            .insert(1, 2)
            .unwrap();
        w.commit().unwrap();
    }
    let err = DiskStore::open(&foreign).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("foreign.redb"), "{err}");
    // A directory where the file should be.
    let err = DiskStore::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains(&dir.path().display().to_string()));
}

#[tokio::test]
async fn empty_file_becomes_a_store_and_no_temporaries_remain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.redb");
    std::fs::write(&path, b"").unwrap();
    let s = DiskStore::open(&path).unwrap();
    let b = Block::new(RAW, HashAlg::Blake3, b"x".to_vec());
    s.put(b.clone()).await.unwrap();
    drop(s);
    let s = DiskStore::open(&path).unwrap();
    assert_eq!(s.get(&b.cid).await.unwrap(), b.data);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![OsString::from("blocks.redb")]);
}

#[test]
fn default_path_logic() {
    let os = |s: &str| Some(OsString::from(s));
    assert_eq!(
        default_store_path_from(os("/s/x.redb"), os("/xdg"), os("/home/u")).unwrap(),
        PathBuf::from("/s/x.redb")
    );
    assert_eq!(
        default_store_path_from(os(""), os("/xdg"), os("/home/u")).unwrap(),
        PathBuf::from("/xdg/ipfs-hamt/store")
    );
    assert_eq!(
        default_store_path_from(None, os(""), os("/home/u")).unwrap(),
        PathBuf::from("/home/u/.local/share/ipfs-hamt/store")
    );
    assert_eq!(
        default_store_path_from(None, os("relative"), os("/home/u")).unwrap(),
        PathBuf::from("/home/u/.local/share/ipfs-hamt/store")
    );
    assert!(default_store_path_from(None, None, None).is_err());
    assert!(default_store_path_from(os(""), os(""), os("")).is_err());
    // The public function reads the real environment.
    if let Ok(p) = default_store_path() {
        match std::env::var_os(STORE_ENV).filter(|v| !v.is_empty()) {
            Some(v) => assert_eq!(p, PathBuf::from(v)),
            None => assert!(p.ends_with("ipfs-hamt/store")),
        }
    }
}

// ---- Crash safety ----

const CRASH_CHILD_ENV: &str = "IPFS_HAMT_DISK_CRASH_CHILD";
const BATCH_BLOCKS: u64 = 16;
/// The child stops by itself after this many batches or this long.
const CHILD_MAX_BATCHES: u64 = 5_000;
const CHILD_MAX_TIME: Duration = Duration::from_secs(10);

/// Deterministic block `i` of batch `batch`; block 0 of every batch is shared (dedup).
fn crash_block(batch: u64, i: u64) -> Block {
    if i == 0 {
        return Block::new(RAW, HashAlg::Blake3, b"shared by every batch".to_vec());
    }
    let seed = batch.wrapping_mul(1_000_003).wrapping_add(i);
    let len = 64 + (seed.wrapping_mul(2_654_435_761) % 6_000) as usize;
    let mut data = Vec::with_capacity(len);
    let mut x = seed | 1;
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    let alg = if i % 2 == 0 {
        HashAlg::Blake3
    } else {
        HashAlg::Sha2_256
    };
    Block::new(RAW, alg, data)
}

fn crash_batch(batch: u64) -> Vec<Block> {
    (0..BATCH_BLOCKS).map(|i| crash_block(batch, i)).collect()
}

/// Child mode of [`survives_sigkill`]: writes batches `start..` and prints
/// `@@committed <batch>` after each commit, until killed or bounded out.
#[test]
fn crash_writer_child() {
    let Some(path) = std::env::var_os(CRASH_CHILD_ENV) else {
        return;
    };
    let start: u64 = std::env::var("IPFS_HAMT_DISK_CRASH_START")
        .unwrap()
        .parse()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    rt.block_on(async {
        let store = DiskStore::open(PathBuf::from(path)).unwrap();
        println!("@@opened");
        let began = Instant::now();
        for batch in start..start + CHILD_MAX_BATCHES {
            if began.elapsed() > CHILD_MAX_TIME {
                break;
            }
            store.put_many(crash_batch(batch)).await.unwrap();
            // Odd batches stay unsynced; a sync makes them durable with the next even one,
            // and only synced batches are reported as committed.
            if batch % 2 == 1 {
                continue;
            }
            store.sync().await.unwrap();
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            writeln!(out, "@@committed {batch}").unwrap();
            out.flush().unwrap();
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_sigkill() {
    const ITERATIONS: u64 = 20;
    const STRIDE: u64 = 100_000; // batch numbers of iteration k start at k * STRIDE
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.redb");
    let began = Instant::now();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    // (first batch, last reported committed batch or None) per iteration.
    let mut runs: Vec<(u64, Option<u64>)> = Vec::new();
    for it in 0..ITERATIONS {
        let start = it * STRIDE;
        let mut child = child_command(
            "store::disk::tests::crash_writer_child",
            CRASH_CHILD_ENV,
            &path,
        )
        .env("IPFS_HAMT_DISK_CRASH_START", start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The harness may print "test ... " on the same line before ours.
                if let Some((_, n)) = line.split_once("@@committed ") {
                    last = Some(n.trim().parse::<u64>().unwrap());
                } else if line.ends_with("@@opened") {
                    let _ = opened_tx.send(());
                }
            }
            last
        });
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = 5 + rng % 196;
        // Every fourth kill counts from the spawn (it may land during open and recovery);
        // the others count from the open, so they land among the commits.
        if it % 4 != 0 {
            let _ = opened_rx.recv_timeout(Duration::from_secs(20));
        }
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap();
        let last = reader.join().unwrap();
        eprintln!(
            "it {it} delay {delay}ms last {last:?} t={:?}",
            began.elapsed()
        );
        runs.push((start, last));

        // Reopen: everything reported must be there and verify; nothing may verify wrongly;
        // the counters must match what is actually present.
        let p = path.clone();
        let store = tokio::task::spawn_blocking(move || DiskStore::open(p))
            .await
            .unwrap()
            .unwrap();
        let mut present = std::collections::HashSet::new();
        for &(first, last) in &runs {
            let reported_end = last.map_or(first, |l| l + 1);
            // At most one batch can be committed but unreported; look a little further.
            for batch in first..reported_end + 2 {
                let committed = batch < reported_end;
                for b in crash_batch(batch) {
                    match store.get(&b.cid).await {
                        Ok(data) => {
                            assert_eq!(data, b.data);
                            present.insert(b.cid.hash().to_bytes());
                        }
                        Err(StoreError::NotFound(_)) if !committed => {}
                        other => panic!(
                            "iteration {it}: batch {batch} (committed: {committed}) block \
                             {}: {other:?}",
                            b.cid
                        ),
                    }
                }
            }
        }
        let stats = store.stats().await.unwrap();
        assert_eq!(stats.blocks, present.len() as u64, "iteration {it}");
        drop(store);
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "crash test too slow"
        );
    }
    let reported: u64 = runs
        .iter()
        .map(|&(first, last)| last.map_or(0, |l| l + 1 - first))
        .sum();
    eprintln!(
        "survives_sigkill: {ITERATIONS} kills, {reported} batches reported committed, \
         all present and verified"
    );
    assert!(reported > 0, "the child never committed anything");
}

/// Write throughput; run with
/// `cargo test --release -p ipfs-hamt disk_throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn disk_throughput() {
    const BLOCKS: u64 = 20_000;
    const SIZE: usize = 5 * 1024;
    const BATCH: u64 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let (s, path) = store_in(&dir);
    let batches: Vec<Vec<Block>> = (0..BLOCKS / BATCH)
        .map(|b| {
            (0..BATCH)
                .map(|i| {
                    let mut data = vec![0u8; SIZE];
                    data[..8].copy_from_slice(&(b * BATCH + i).to_le_bytes());
                    data[8..16].copy_from_slice(&0xdead_beef_u64.to_le_bytes());
                    Block::new(RAW, HashAlg::Blake3, data)
                })
                .collect()
        })
        .collect();
    let start = Instant::now();
    for batch in batches.clone() {
        s.put_many(batch).await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let mb = (BLOCKS as f64 * SIZE as f64) / 1e6;
    println!(
        "disk put_many: {BLOCKS} blocks x {SIZE} B in batches of {BATCH}: {secs:.3}s, \
         {:.0} blocks/s, {:.1} MB/s; file {} MB",
        BLOCKS as f64 / secs,
        mb / secs,
        dir_size(&path) / 1_000_000
    );
    let start = Instant::now();
    for batch in &batches {
        for b in batch {
            s.get(&b.cid).await.unwrap();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "disk get (verified, one at a time): {:.0} blocks/s, {:.1} MB/s",
        BLOCKS as f64 / secs,
        mb / secs
    );
    assert_eq!(s.stats().await.unwrap().blocks, BLOCKS);
}

/// Apparent size of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            dir_size(&e.path())
        } else {
            m.len()
        };
    }
    n
}

/// Puts crossing the flush threshold many times (1 Ki entries in tests, so runs are written and
/// merged in the background while puts go on): every block stays readable throughout, repeats
/// across flushes are skipped, and the store reopens whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_flushes_keep_every_block_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let block = |i: u32| Block::new(RAW, HashAlg::Blake3, format!("block {i}").into_bytes());
    let s = DiskStore::open(&path).unwrap();
    for batch in 0..20u32 {
        // Each batch repeats half of the previous one.
        let blocks: Vec<Block> = (batch * 300..batch * 300 + 600).map(block).collect();
        s.put_many(blocks).await.unwrap();
        for i in (0..batch * 300 + 600).step_by(37) {
            assert_eq!(
                s.get(&block(i).cid).await.unwrap(),
                block(i).data,
                "block {i}"
            );
        }
    }
    let n = 19 * 300 + 600;
    assert_eq!(s.stats().await.unwrap().blocks, u64::from(n));
    s.sync().await.unwrap();
    let check = s.verify_all(|_| {}).await.unwrap();
    assert!(check.is_ok(), "{check:?}");
    assert_eq!(check.blocks, u64::from(n));
    drop(s);
    super::engine::closing::wait_for(&path);
    let s = DiskStore::open(&path).unwrap();
    assert_eq!(s.stats().await.unwrap().blocks, u64::from(n));
    for i in (0..n).step_by(13) {
        assert!(s.has(&block(i).cid).await.unwrap(), "block {i}");
    }
    assert!(s.verify_all(|_| {}).await.unwrap().is_ok());
}

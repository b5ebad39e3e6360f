//! Tests of the run set: lookups across runs, removals, merges, reopening, damage.

use super::*;

fn loc(i: u32) -> Loc {
    Loc {
        seg: 1 + i % 3,
        ordinal: i,
        offset: 16 + u64::from(i) * 100,
        len: i % 1000,
    }
}

fn key(i: u32) -> Vec<u8> {
    let mut k = vec![0x1e, 0x20];
    k.extend_from_slice(blake3::hash(&i.to_le_bytes()).as_bytes());
    k
}

fn entries(range: Range<u32>, removed: bool, shift: u32) -> Vec<Entry> {
    let mut v: Vec<Entry> = range
        .map(|i| Entry {
            h: key_hash(&key(i)),
            key: Key::new(&key(i)).unwrap(),
            found: if removed {
                Found::Removed
            } else {
                Found::At(loc(i + shift))
            },
        })
        .collect();
    v.sort_by(|a, b| a.order().cmp(&b.order()));
    v
}

#[test]
fn newest_run_wins_and_merges_keep_the_answers() {
    let dir = tempfile::tempdir().unwrap();
    let set = RunSet::open(dir.path(), &[]).unwrap();
    // Then repoint 500..700, remove 0..100, add 1000..1100.
    let list = vec![
        set.write(&entries(0..1000, false, 0)).unwrap(),
        set.write(&entries(500..700, false, 7)).unwrap(),
        set.write(&entries(0..100, true, 0)).unwrap(),
        set.write(&entries(1000..1100, false, 0)).unwrap(),
    ];
    set.install(list.clone()).unwrap();
    let expect = |i: u32| match i {
        0..100 => None,
        500..700 => Some(loc(i + 7)),
        1100.. => None,
        _ => Some(loc(i)),
    };
    for i in (0..1200).step_by(7) {
        assert_eq!(set.get(&key(i)).unwrap(), expect(i), "key {i}");
    }
    let mut live = set.live().unwrap();
    let mut n = 0;
    while let Some(e) = live.next_entry().unwrap() {
        assert!(matches!(e.found, Found::At(_)));
        n += 1;
    }
    assert_eq!(n, 1000);
    // Four small runs are one size class: a merge of all of them drops the removals.
    let range = RunSet::plan(&list).unwrap();
    assert_eq!(range, 0..4);
    let merged = set.merge(&list, range).unwrap();
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0].entries, 1000);
    set.install(merged.clone()).unwrap();
    set.remove_files(&list).unwrap();
    for i in (0..1200).step_by(7) {
        assert_eq!(
            set.get(&key(i)).unwrap(),
            expect(i),
            "key {i} after the merge"
        );
    }
    // Reopened from the list alone; an unlisted file is deleted.
    let stray = set.write(&entries(5000..5010, false, 0)).unwrap();
    let stray_path = stray.path().to_path_buf();
    drop((set, stray));
    let set = RunSet::open(dir.path(), &RunSet::ids(&merged)).unwrap();
    assert!(!stray_path.exists());
    assert_eq!(set.get(&key(600)).unwrap(), Some(loc(607)));
    assert_eq!(set.get(&key(5001)).unwrap(), None);
}

#[test]
fn a_merge_above_older_runs_keeps_its_removals() {
    let dir = tempfile::tempdir().unwrap();
    let set = RunSet::open(dir.path(), &[]).unwrap();
    let base = set.write(&entries(0..100, false, 0)).unwrap();
    let mut list = vec![base];
    for r in 0..4u32 {
        list.push(set.write(&entries(r * 10..r * 10 + 5, true, 0)).unwrap());
    }
    // The base run is larger than none of them (same size class): plan takes all five.
    let merged = set.merge(&list, 1..5).unwrap();
    assert_eq!(merged.len(), 2);
    assert_eq!(merged[1].entries, 20);
    set.install(merged).unwrap();
    assert_eq!(set.get(&key(12)).unwrap(), None);
    assert_eq!(set.get(&key(16)).unwrap(), Some(loc(16)));
}

/// A directory holding one closed run of 300 entries: its id, path and bytes.
fn one_run_file() -> (tempfile::TempDir, u64, std::path::PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let set = RunSet::open(dir.path(), &[]).unwrap();
    let run = set.write(&entries(0..300, false, 0)).unwrap();
    let (id, path) = (run.id, run.path().to_path_buf());
    drop((set, run));
    let good = std::fs::read(&path).unwrap();
    (dir, id, path, good)
}

#[test]
fn damaged_runs_give_errors_not_panics() {
    let (dir, id, path, good) = one_run_file();
    for at in (0..good.len())
        .step_by(97)
        .chain([good.len() - 1, good.len() - 30])
    {
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        std::fs::write(&path, &bad).unwrap();
        // Either the open refuses it, or every lookup answers without panicking (a location
        // that is wrong but well formed is caught by the store's verification of the bytes).
        if let Ok(set) = RunSet::open(dir.path(), &[id]) {
            for i in 0..300 {
                let _ = set.get(&key(i));
            }
            if let Ok(mut live) = set.live() {
                while let Ok(Some(_)) = live.next_entry() {}
            }
        }
    }
    for cut in [0, 10, 40, good.len() / 2, good.len() - 1] {
        std::fs::write(&path, &good[..cut]).unwrap();
        assert!(matches!(
            RunSet::open(dir.path(), &[id]),
            Err(StoreError::Corrupt(_))
        ));
    }
}

/// The trailer's entry count sizes a merge's bloom filter: a count the file cannot hold is
/// refused on open, before anything is sized by it.
#[test]
fn an_entry_count_the_file_cannot_hold_is_refused() {
    let (dir, id, path, good) = one_run_file();
    // The trailer (48 bytes from the end): entry count, groups, bloom blocks, end of entries.
    let at = good.len() - 48;
    let end = u64::from_le_bytes(good[at + 24..at + 32].try_into().unwrap());
    // Entries take at least 30 bytes (9 + a 1-byte key + a 20-byte location).
    let most = (end - 16) / 30;
    for count in [most + 1, 1 << 40, u64::MAX] {
        let mut bad = good.clone();
        bad[at..at + 8].copy_from_slice(&count.to_le_bytes());
        std::fs::write(&path, &bad).unwrap();
        match RunSet::open(dir.path(), &[id]) {
            Err(StoreError::Corrupt(m)) => assert!(m.contains("entry count"), "{m}"),
            Err(e) => panic!("count {count}: {e}"),
            Ok(_) => panic!("count {count} accepted"),
        }
    }
}

#[test]
fn size_classes() {
    assert_eq!(level(1), 0);
    assert_eq!(level(BASE), 0);
    assert_eq!(level(BASE + 1), 1);
    assert_eq!(level(BASE * 4), 1);
    assert_eq!(level(BASE * 4 + 1), 2);
}

#[test]
fn unsorted_entries_are_written_in_order_once_each_removal_winning() {
    let dir = tempfile::tempdir().unwrap();
    let set = RunSet::open(dir.path(), &[]).unwrap();
    let base = set.write(&entries(0..50, false, 0)).unwrap();
    // Shuffled puts of 0..200 (0..50 repointed), a repeat, and removals of 10..20 put too.
    let mut mixed: Vec<Entry> = entries(0..200, false, 3);
    mixed.reverse();
    mixed.extend(entries(0..200, false, 3).into_iter().step_by(17));
    mixed.extend(entries(10..20, true, 0));
    mixed.rotate_left(77);
    let run = set.write_unsorted(&mixed).unwrap();
    assert_eq!(run.entries, 200);
    set.install(vec![base, run.clone()]).unwrap();
    for i in 0..200 {
        let want = (!(10..20).contains(&i)).then(|| loc(i + 3));
        assert_eq!(set.get(&key(i)).unwrap(), want, "key {i}");
    }
    // Reading the run back gives strictly increasing (hash, key).
    let mut rd = run.reader().unwrap();
    let mut prev: Option<Entry> = None;
    while let Some(e) = rd.next_entry().unwrap() {
        if let Some(p) = &prev {
            assert!(p.order() < e.order());
        }
        prev = Some(e);
    }
}

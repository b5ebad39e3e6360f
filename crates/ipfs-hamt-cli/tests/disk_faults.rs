//! The CLI under disk faults: a full disk (a 2 MiB tmpfs as root; a file-size limit, which
//! needs no privilege, everywhere), a store it may not open (another user, as root; file modes
//! otherwise) and a truncated segment file. Each is one line on stderr and a non-zero exit, and
//! the data committed before the fault is intact once it clears.

mod common;

use std::path::Path;
use std::process::Command;

use common::{make_tree, Cli};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Checks the one-line error contract on a finished command.
fn one_line_failure(out: &std::process::Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "should fail; stderr {err:?}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
    assert!(err.starts_with("ipfs-hamt: "), "{err:?}");
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err:?}"
    );
    assert!(
        needles.iter().any(|n| err.contains(n)),
        "stderr {err:?} has none of {needles:?}"
    );
    err
}

/// A first dataset imported and listed, so that later faults can be checked not to lose it.
fn first_import(cli: &Cli, tmp: &Path, store: &Path) -> (String, String) {
    let data = tmp.join("first");
    make_tree(&data, 20, 1, 2000);
    let root = cli
        .ok(&["import", s(&data), "--store", s(store)])
        .trim()
        .to_owned();
    let listing = cli.ok(&["ls", &root, "--store", s(store)]);
    (root, listing)
}

#[test]
fn import_on_a_full_tmpfs() {
    if !is_root() {
        eprintln!("SKIP import_on_a_full_tmpfs: mounting a tmpfs needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("SKIP import_on_a_full_tmpfs: mount refused");
        return;
    }
    struct Umount<'a>(&'a Path);
    impl Drop for Umount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Umount(&mnt);
    let cli = Cli::new(tmp.path());
    let store = mnt.join("blocks.redb");
    let (root, listing) = first_import(&cli, tmp.path(), &store);
    let big = tmp.path().join("big");
    make_tree(&big, 40, 2, 400_000);
    let out = cli.run(&["import", s(&big), "--store", s(&store)]);
    let err = one_line_failure(&out, &["No space left on device"]);
    eprintln!("full tmpfs: {err}");
    // The earlier dataset still lists and verifies, even before any space is freed.
    assert_eq!(cli.ok(&["ls", &root, "--store", s(&store)]), listing);
    assert!(cli
        .ok(&["verify", &root, "--store", s(&store)])
        .contains("0 corrupt"));
    // Once there is room, the import goes through.
    let st = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success());
    let root2 = cli.ok(&["import", s(&big), "--store", s(&store)]);
    cli.ok(&["verify", root2.trim(), "--store", s(&store)]);
    assert_eq!(cli.ok(&["ls", &root, "--store", s(&store)]), listing);
}

#[test]
fn import_past_a_file_size_limit() {
    // RLIMIT_FSIZE with SIGXFSZ ignored: writes past the limit fail with EFBIG, as on a full
    // disk for the writer (works without privileges).
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let store = tmp.path().join("blocks.redb");
    let (root, listing) = first_import(&cli, tmp.path(), &store);
    let big = tmp.path().join("big");
    make_tree(&big, 40, 3, 400_000);
    let size_kib = std::fs::metadata(store.join("segments/00000001.seg"))
        .unwrap()
        .len()
        / 1024
        + 512;
    let script =
        format!("trap '' XFSZ; ulimit -f {size_kib}; exec \"$0\" import \"$1\" --store \"$2\"");
    let out = Command::new("bash")
        .args([
            "-c",
            &script,
            env!("CARGO_BIN_EXE_ipfs-hamt"),
            s(&big),
            s(&store),
        ])
        .env("IPFS_HAMT_STORE", &cli.env_store)
        .output()
        .unwrap();
    let err = one_line_failure(&out, &["File too large", "No space"]);
    eprintln!("file size limit: {err}");
    assert_eq!(cli.ok(&["ls", &root, "--store", s(&store)]), listing);
    assert!(cli
        .ok(&["verify", &root, "--store", s(&store)])
        .contains("0 corrupt"));
    cli.ok(&["verify", "--all", "--store", s(&store)]);
    let root2 = cli.ok(&["import", s(&big), "--store", s(&store)]);
    cli.ok(&["verify", root2.trim(), "--store", s(&store)]);
}

#[test]
fn store_without_permission() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cli = Cli::new(tmp.path());
    let store = tmp.path().join("blocks.redb");
    let (root, listing) = first_import(&cli, tmp.path(), &store);
    let ls = ["ls", root.as_str(), "--store", s(&store)];
    if is_root() {
        // Root ignores file modes: run the CLI as another user instead.
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o600)).unwrap();
        let Ok(out) = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_ipfs-hamt"))
            .args(ls)
            .env("IPFS_HAMT_STORE", &cli.env_store)
            .output()
        else {
            eprintln!("SKIP store_without_permission: setpriv is not available");
            return;
        };
        let err = one_line_failure(&out, &["Permission denied"]);
        eprintln!("as nobody: {err}");
    } else {
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o000)).unwrap();
        let out = cli.run(&ls);
        one_line_failure(&out, &["Permission denied"]);
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_eq!(cli.ok(&ls), listing);
}

#[test]
fn truncated_store_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let store = tmp.path().join("blocks.redb");
    let (root, listing) = first_import(&cli, tmp.path(), &store);
    // The store is a directory: truncate its segment file (what a damaged disk would do).
    let seg = store.join("segments/00000001.seg");
    let backup = tmp.path().join("backup.seg");
    std::fs::copy(&seg, &backup).unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    for cut in [len / 2, len / 10, 100] {
        std::fs::copy(&backup, &seg).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let out = cli.run(&["ls", &root, "--store", s(&store)]);
        let err = one_line_failure(&out, &[s(&store)]);
        eprintln!("truncated to {cut}: {err}");
    }
    std::fs::copy(&backup, &seg).unwrap();
    assert_eq!(cli.ok(&["ls", &root, "--store", s(&store)]), listing);
}

#[test]
fn writing_output_to_a_full_device() {
    if !Path::new("/dev/full").exists() {
        eprintln!("SKIP writing_output_to_a_full_device: no /dev/full");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    let store = tmp.path().join("blocks.redb");
    let (root, listing) = first_import(&cli, tmp.path(), &store);
    let key = listing.lines().next().unwrap();
    let st = s(&store);
    // Through a symlink: a command that wrongly replaced its output file would only replace the
    // link, never the device node.
    let full = tmp.path().join("full");
    std::os::unix::fs::symlink("/dev/full", &full).unwrap();
    for args in [
        vec!["car", "export", &root, s(&full), "--store", st],
        vec!["get", &root, key, "-o", s(&full), "--store", st],
    ] {
        let out = cli.run(&args);
        let err = one_line_failure(&out, &["No space left on device"]);
        eprintln!("{args:?}: {err}");
        assert!(
            std::fs::symlink_metadata(&full)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{args:?} replaced its output"
        );
    }
    assert_eq!(cli.ok(&["ls", &root, "--store", st]), listing);
}

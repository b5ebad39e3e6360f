//! Where a store lives, and what a path holds: a store directory, a new one to make, a store
//! of the previous format to migrate, or something else (refused, left alone).

use std::ffi::OsString;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use super::error::io_err;
use super::legacy;
use super::lock::{self, StoreLock};
use super::segment::sync_dir;
use crate::store::StoreError;

/// The name of a numbered file in a store (a segment, a run): `id` zero-padded to `digits`
/// digits, then `.ext`.
pub fn numbered_name(id: u64, digits: usize, ext: &str) -> String {
    format!("{id:0digits$}.{ext}")
}

/// The number a [`numbered_name`] with these `digits` and `ext` denotes, if `name` is one.
pub fn parse_numbered(name: &str, digits: usize, ext: &str) -> Option<u64> {
    let number = name.strip_suffix(ext)?.strip_suffix('.')?;
    (number.len() == digits && number.bytes().all(|b| b.is_ascii_digit()))
        .then(|| number.parse().ok())
        .flatten()
}

/// Environment variable naming the store directory, overriding the XDG default.
pub const STORE_ENV: &str = "IPFS_HAMT_STORE";

/// Contents of `<store>/FORMAT`.
const FORMAT: &str = "ipfs-hamt block store v2\n";
/// Entries a directory may hold and still be taken as a new, empty store (a crash while one
/// was being made).
const FRESH_OK: [&str; 2] = ["lock", "FORMAT.tmp"];

/// What a path holds.
enum Found {
    Missing,
    EmptyFile,
    LegacyFile,
    Store,
    FreshDir,
}

fn inspect(path: &Path) -> Result<Found, StoreError> {
    let meta = match std::fs::metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(io_err(path, "reading store")(e)),
        Ok(m) => m,
    };
    let not_ours = |why: &str| {
        StoreError::Corrupt(format!(
            "{} is not an ipfs-hamt block store ({why}); left untouched",
            path.display()
        ))
    };
    if meta.is_file() {
        if meta.len() == 0 {
            return Ok(Found::EmptyFile);
        }
        let mut head = [0u8; 9];
        let mut f = std::fs::File::open(path).map_err(io_err(path, "opening store"))?;
        let n = f.read(&mut head).map_err(io_err(path, "reading store"))?;
        if head[..n] == legacy::REDB_MAGIC[..] {
            return Ok(Found::LegacyFile);
        }
        return Err(not_ours("a file that is not a store of any version"));
    }
    if !meta.is_dir() {
        return Err(not_ours("neither a file nor a directory"));
    }
    match std::fs::read_to_string(path.join("FORMAT")) {
        Ok(s) if s == FORMAT => return Ok(Found::Store),
        Ok(s) => {
            return Err(not_ours(&format!(
                "its FORMAT file says {:?}",
                s.chars().take(60).collect::<String>()
            )))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path, "reading the FORMAT file of")(e)),
    }
    let entries = std::fs::read_dir(path).map_err(io_err(path, "listing"))?;
    for e in entries {
        let e = e.map_err(io_err(path, "listing"))?;
        let name = e.file_name();
        if !FRESH_OK.iter().any(|ok| name == *ok) {
            return Err(not_ours(&format!(
                "a directory without a FORMAT file, holding {:?}",
                name
            )));
        }
    }
    Ok(Found::FreshDir)
}

/// Makes `path` a store directory (migrating or creating it as needed) and takes its lock.
pub fn prepare(path: &Path) -> Result<StoreLock, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_err(parent, "creating directory"))?;
    }
    legacy::resume(path)?;
    let mut found = inspect(path)?;
    if matches!(found, Found::Missing) {
        if let Some(old) = old_default_beside(path) {
            legacy::migrate(&old, path)?;
            found = inspect(path)?;
        }
    }
    match found {
        Found::LegacyFile => {
            legacy::migrate(path, path)?;
        }
        Found::EmptyFile => {
            // An empty file where the store should be (as the previous format allowed).
            std::fs::remove_file(path).map_err(io_err(path, "replacing empty file"))?;
        }
        _ => {}
    }
    match std::fs::create_dir(path) {
        Ok(()) => {
            if let Some(parent) = path.parent() {
                sync_dir(parent);
            }
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(path, "creating store directory")(e)),
    }
    super::engine::closing::wait_for(path);
    let lock = lock::acquire(path)?;
    // Checked again under the lock: another process may have made it meanwhile.
    if let Found::FreshDir = inspect(path)? {
        let tmp = path.join("FORMAT.tmp");
        std::fs::write(&tmp, FORMAT).map_err(io_err(&tmp, "writing"))?;
        if let Ok(f) = std::fs::File::open(&tmp) {
            let _ = f.sync_all();
        }
        std::fs::rename(&tmp, path.join("FORMAT")).map_err(io_err(&tmp, "renaming"))?;
        sync_dir(path);
    }
    Ok(lock)
}

/// The store file of the previous default location, if `path` is the new default location
/// (`.../ipfs-hamt/store`) and the old one (`.../ipfs-hamt/blocks.redb`) exists.
fn old_default_beside(path: &Path) -> Option<PathBuf> {
    let parent = path.parent()?;
    if path.file_name()? != "store" || parent.file_name()? != "ipfs-hamt" {
        return None;
    }
    let old = parent.join("blocks.redb");
    old.is_file().then_some(old)
}

/// The default store directory: `$IPFS_HAMT_STORE` if set and non-empty, else
/// `$XDG_DATA_HOME/ipfs-hamt/store` (if absolute, as the XDG spec requires), else
/// `$HOME/.local/share/ipfs-hamt/store`. A store file of the previous default
/// (`.../ipfs-hamt/blocks.redb`) is migrated there when the store is first opened.
///
/// ```
/// match ipfs_hamt::store::disk::default_store_path() {
///     Ok(path) => println!("store at {}", path.display()),
///     Err(e) => println!("no default store: {e}"),
/// }
/// ```
pub fn default_store_path() -> Result<PathBuf, StoreError> {
    default_store_path_from(
        std::env::var_os(STORE_ENV),
        std::env::var_os("XDG_DATA_HOME"),
        std::env::var_os("HOME"),
    )
}

pub(super) fn default_store_path_from(
    store: Option<OsString>,
    xdg_data_home: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf, StoreError> {
    let nonempty = |v: Option<OsString>| v.filter(|s| !s.is_empty()).map(PathBuf::from);
    if let Some(p) = nonempty(store) {
        return Ok(p);
    }
    let tail = Path::new("ipfs-hamt").join("store");
    if let Some(xdg) = nonempty(xdg_data_home).filter(|p| p.is_absolute()) {
        return Ok(xdg.join(tail));
    }
    if let Some(home) = nonempty(home) {
        return Ok(home.join(".local").join("share").join(tail));
    }
    Err(StoreError::Backend(format!(
        "no default block store path: set {STORE_ENV}, XDG_DATA_HOME or HOME"
    )))
}

//! Turning I/O and index errors into [`StoreError`]s that name the file involved.

use std::path::Path;

use crate::store::StoreError;

/// A closure mapping an I/O error to [`StoreError::Io`] with `what` and the path.
pub fn io_err<'a>(
    path: &'a Path,
    what: &'static str,
) -> impl Fn(std::io::Error) -> StoreError + 'a {
    move |e| StoreError::io(format!("{what} {}", path.display()), e)
}

/// Maps an error of the index (fjall) under `dir`.
pub fn index_err(dir: &Path, e: fjall::Error) -> StoreError {
    match e {
        fjall::Error::Io(e) => StoreError::io(format!("index {}", dir.display()), e),
        fjall::Error::Storage(fjall::LsmError::Io(e)) => {
            StoreError::io(format!("index {}", dir.display()), e)
        }
        other => StoreError::Corrupt(format!(
            "index {} is damaged or not an ipfs-hamt index: {other:?} (the block data is in the \
             segment files: move the index directory away and reopen to rebuild it by a scan; \
             pins must then be added again)",
            dir.display()
        )),
    }
}

/// A damaged-store error naming `path`.
pub fn corrupt(path: &Path, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{}: {what}", path.display()))
}

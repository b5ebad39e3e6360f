//! One process at a time: an OS lock (flock) on `<store>/lock`, held while the store is open.
//! The holder writes its pid and command line into the file, so that a refused process can
//! say who holds the store. The lock dies with its process (a SIGKILL releases it).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::store::StoreError;

/// A held store lock; released on drop.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// Takes the lock of the store at `store` (a directory), failing at once if it is held.
pub fn acquire(store: &Path) -> Result<StoreLock, StoreError> {
    let path = store.join("lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StoreError::io(format!("opening store lock {}", path.display()), e))?;
    match try_lock(&file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim().replace('\n', " ");
            let who = if holder.is_empty() {
                String::new()
            } else {
                format!(" (held by {holder})")
            };
            return Err(StoreError::Backend(format!(
                "store {} is in use by another process (or already open in this one){who}; \
                 one process at a time may open it",
                store.display()
            )));
        }
        Err(e) => {
            return Err(StoreError::io(
                format!("locking store {}", path.display()),
                e,
            ))
        }
    }
    // Who holds it, for the message above (best effort: a failure here changes nothing).
    let cmd: Vec<String> = std::env::args().take(4).collect();
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "pid {}: {}", std::process::id(), cmd.join(" "));
    Ok(StoreLock { _file: file })
}

/// `flock(LOCK_EX | LOCK_NB)`: an exclusive lock tied to this open file, never waiting.
fn try_lock(file: &File) -> std::io::Result<()> {
    // SAFETY: flock on a descriptor this `File` owns; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

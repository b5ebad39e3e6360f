//! One process at a time: an OS lock (flock) on `<store>/lock`, held while the store is open.
//! The holder writes its pid and command line into the file, so that a refused process can
//! say who holds the store. The lock dies with its process (a SIGKILL releases it). While a
//! holder closes the store (its index closes on a background thread, within a fraction of a
//! second) the file says so, and an open elsewhere waits for the lock instead of failing.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::store::StoreError;

/// A held store lock; released on drop.
#[derive(Debug)]
pub struct StoreLock {
    file: File,
}

/// What the lock file says while its holder is closing the store (the lock goes within a
/// fraction of a second): another process waits for it instead of failing.
const CLOSING: &str = "closing: ";
/// How long an open waits for a holder that is closing.
const CLOSING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl StoreLock {
    /// Says in the lock file that the store is being closed.
    pub fn mark_closing(&mut self) {
        let mut text = String::new();
        let _ = self.file.rewind();
        let _ = self.file.read_to_string(&mut text);
        let _ = self.file.set_len(0);
        let _ = self.file.rewind();
        let _ = write!(self.file, "{CLOSING}{text}");
        let _ = self.file.flush();
    }
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
    let began = std::time::Instant::now();
    loop {
        match try_lock(&file) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => {
                return Err(StoreError::io(
                    format!("locking store {}", path.display()),
                    e,
                ))
            }
        }
        let mut holder = String::new();
        let _ = file.rewind();
        let _ = file.read_to_string(&mut holder);
        if holder.starts_with(CLOSING) && began.elapsed() < CLOSING_WAIT {
            std::thread::sleep(std::time::Duration::from_millis(5));
            continue;
        }
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
    // Who holds it, for the message above (best effort: a failure here changes nothing).
    let cmd: Vec<String> = std::env::args().take(4).collect();
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "pid {}: {}", std::process::id(), cmd.join(" "));
    Ok(StoreLock { file })
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

//! Merging runs on a background thread, so that a writer is not stalled while a large merge
//! reads and rewrites (and fsyncs) hundreds of megabytes.
//!
//! One merge at a time; a flush only appends runs, and only this thread replaces runs, so the
//! runs a merge took are still side by side in the list when it finishes. The new list is made
//! durable (through the index's `commit`) before the old files are deleted. If flushes outrun
//! the merges, a writer waits once more than [`MAX_RUNS`] runs exist.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::RunSet;
use crate::store::StoreError;

/// Runs beyond which a writer waits for the merges (the steady state is at most 3 per size
/// class: 15 at 10^8 entries).
const MAX_RUNS: usize = 32;

/// Records a list of run ids durably.
pub type Commit = Box<dyn Fn(&[u64]) -> Result<(), StoreError> + Send + Sync>;

#[derive(Default)]
struct State {
    /// A merge may be due.
    wanted: bool,
    /// The thread is merging.
    busy: bool,
    /// The last merge's failure, reported to the next writer.
    error: Option<String>,
}

struct Shared {
    runs: Arc<RunSet>,
    commit: Commit,
    state: Mutex<State>,
    cv: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked (plain flags).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Merges while the runs' shape calls for it (or until asked to stop).
    fn merge_while_needed(&self) -> Result<(), StoreError> {
        while !self.stop.load(Ordering::Relaxed) {
            let list = self.runs.list()?;
            let Some(range) = RunSet::plan(&list) else {
                return Ok(());
            };
            let inputs = list[range.clone()].to_vec();
            let merged = self.runs.merge_runs(&inputs, range.start > 0, &self.stop)?;
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            self.runs.replace(&inputs, merged, &self.commit)?;
            self.runs.remove_files(&inputs)?;
        }
        Ok(())
    }

    fn run(&self) {
        loop {
            {
                let mut st = self.state();
                while !st.wanted && !self.stop.load(Ordering::Relaxed) {
                    st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                if self.stop.load(Ordering::Relaxed) {
                    return;
                }
                st.wanted = false;
                st.busy = true;
            }
            let r = self.merge_while_needed();
            let mut st = self.state();
            st.busy = false;
            if let Err(e) = r {
                st.error = Some(e.to_string());
            }
            self.cv.notify_all();
        }
    }
}

/// The background merger of one run set.
pub struct Merger {
    sh: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Merger {
    /// Starts merging `runs` in the background; `commit` records a new list durably. Without a
    /// thread to be had, merges run in [`Merger::after_change`] instead.
    pub fn start(runs: Arc<RunSet>, commit: Commit) -> Merger {
        let sh = Arc::new(Shared {
            runs,
            commit,
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let worker = sh.clone();
        let thread = std::thread::Builder::new()
            .name("ipfs-hamt-merge".into())
            .spawn(move || worker.run())
            .ok();
        Merger { sh, thread }
    }

    /// Called after a run was added: starts the merges it calls for, waits if runs pile up,
    /// and reports a failed background merge (the runs it was merging stay as they were).
    pub fn after_change(&self) -> Result<(), StoreError> {
        let failed = |e: String| StoreError::Backend(format!("merging index runs: {e}"));
        if self.thread.is_none() {
            return self.sh.merge_while_needed();
        }
        let mut st = self.sh.state();
        if let Some(e) = st.error.take() {
            return Err(failed(e));
        }
        if RunSet::plan(&self.sh.runs.list()?).is_none() {
            return Ok(());
        }
        st.wanted = true;
        self.sh.cv.notify_all();
        while self.sh.runs.list()?.len() > MAX_RUNS && (st.wanted || st.busy) {
            st = self.sh.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        match st.error.take() {
            Some(e) => Err(failed(e)),
            None => Ok(()),
        }
    }

    /// Waits until no merge is due or running.
    #[cfg(test)]
    pub fn wait_idle(&self) {
        let mut st = self.sh.state();
        while st.wanted || st.busy {
            st = self.sh.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for Merger {
    /// Stops the thread; a merge in progress is abandoned (its partial file deleted, or left
    /// for the next open to delete).
    fn drop(&mut self) {
        self.sh.stop.store(true, Ordering::Relaxed);
        {
            let _st = self.sh.state();
            self.sh.cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

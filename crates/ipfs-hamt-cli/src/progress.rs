//! Progress bars on stderr (hidden when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting bytes, with files in the message.
pub struct Progress {
    bar: ProgressBar,
    files: u64,
    total_files: u64,
}

/// A bar for `files` files of `bytes` bytes in all.
pub fn bytes_bar(files: u64, bytes: u64) -> Progress {
    let bar = ProgressBar::new(bytes);
    let style = ProgressStyle::with_template(
        "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Progress {
        bar,
        files: 0,
        total_files: files,
    }
}

impl Progress {
    /// One more file of `len` bytes done.
    pub fn inc_file(&mut self, len: u64) {
        self.files += 1;
        self.bar.inc(len);
        self.bar
            .set_message(format!("{}/{} files", self.files, self.total_files));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

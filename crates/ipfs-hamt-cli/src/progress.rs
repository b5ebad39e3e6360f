//! Progress bars on stderr (hidden when stderr is not a terminal).

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting bytes, with items (files, blocks) in the message.
pub struct Progress {
    bar: ProgressBar,
    items: u64,
    total_items: Option<u64>,
    unit: &'static str,
}

fn styled(bar: ProgressBar, template: &str) -> ProgressBar {
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// A bar for `files` files of `bytes` bytes in all: bytes, rate, ETA and files done.
pub fn bytes_bar(files: u64, bytes: u64) -> Progress {
    let bar = styled(
        ProgressBar::new(bytes),
        "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
    );
    Progress {
        bar,
        items: 0,
        total_items: Some(files),
        unit: "files",
    }
}

/// A spinner for work of unknown size: bytes, rate and items (`unit`) done.
pub fn spinner(total_items: Option<u64>, unit: &'static str) -> Progress {
    let bar = styled(
        ProgressBar::new_spinner(),
        "{spinner} {bytes} {binary_bytes_per_sec} {msg}",
    );
    Progress {
        bar,
        items: 0,
        total_items,
        unit,
    }
}

impl Progress {
    /// One more item of `len` bytes done.
    pub fn inc_item(&mut self, len: u64) {
        self.items += 1;
        self.bar.inc(len);
        let msg = match self.total_items {
            Some(t) => format!("{}/{t} {}", self.items, self.unit),
            None => format!("{} {}", self.items, self.unit),
        };
        self.bar.set_message(msg);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress {
    /// A handle on the bar, for callbacks that outlive a borrow.
    pub fn handle(&self) -> ProgressBar {
        self.bar.clone()
    }
}

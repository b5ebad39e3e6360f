//! Fuzz target `disk_run`: the embedded disk store's index run files, as a crash or a damaged
//! disk leaves them (the checks are `disk_segment`'s, on the run file instead).

/// Runs one input.
pub fn run(data: &[u8]) {
    crate::disk_segment::run_on(data, crate::disk_segment::Target::Run)
}

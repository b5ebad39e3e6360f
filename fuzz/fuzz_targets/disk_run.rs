#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ipfs_hamt_fuzz::disk_run::run(data));

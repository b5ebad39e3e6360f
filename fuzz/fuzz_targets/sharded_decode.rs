#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ipfs_hamt_fuzz::sharded_decode::run(data));

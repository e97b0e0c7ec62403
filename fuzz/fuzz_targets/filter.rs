#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| resetscope_fuzz::filter(data));

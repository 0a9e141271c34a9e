#![no_main]
//! Fuzzes the module path codec and request router.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    goproxy_protocol::fuzzing::path_codec(data);
});

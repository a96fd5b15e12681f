//! The live reload socket: whatever a client sends, its session ends with the client, without a
//! panic or a hang, and leaves no tab behind.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    liveserve::__private::fuzzing::check_client_bytes(input);
});

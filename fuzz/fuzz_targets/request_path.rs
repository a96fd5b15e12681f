//! The request-path decoder: any target is refused, or decodes to plain names inside the root.
#![no_main]

libfuzzer_sys::fuzz_target!(|raw: &str| {
    liveserve::__private::fuzzing::check_decoding(raw);
});

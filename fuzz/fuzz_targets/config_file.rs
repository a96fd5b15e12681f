//! The config file: its settings are taken, or refused in one line; never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &[u8]| {
    liveserve::__private::fuzzing::check_config_file(text);
});

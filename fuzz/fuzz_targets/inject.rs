//! The injection finder: the tags go in once and nothing else changes, and a page scanned in
//! pieces (the first input byte says where to cut) scans as the whole.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let Some((&cut, page)) = input.split_first() else {
        return;
    };
    let cuts = [usize::from(cut), page.len() / 2, page.len().saturating_sub(usize::from(cut))];
    liveserve::__private::fuzzing::check_injection(page, &cuts);
});

//! The RON session loader (syntax, version probe and limits) on arbitrary text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rslad_tui::lab::session::parse(text, Path::new("fuzz.ron"));
    }
});

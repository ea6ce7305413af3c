//! The workbench's command parser, completion and hints on arbitrary lines.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rslad_tui::lab::command;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let _ = command::parse(&line);
    // Completion of paths reads folders; keep it to lines that cannot name one.
    if !line.contains('/') {
        let _ = command::complete(&line);
    }
    let _ = command::hint(&line);
});

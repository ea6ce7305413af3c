use std::process::ExitCode;

fn main() -> ExitCode {
    rslad_tui::allocator::keep_freed_memory();
    end_quietly_on_a_closed_pipe();
    match rslad_tui::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A message may quote a file (a session's line, a card's field): scrubbed of escapes.
            eprintln!("error: {}", rslad_tui::text::scrub(&format!("{error:#}")));
            ExitCode::FAILURE
        }
    }
}

/// `rslad-tui zoo | head -1`: once the reader has gone, the next line written ends the program
/// quietly, as it ends `ls` or `cat`. Rust ignores SIGPIPE, so without this every `println!`
/// after that point panics with "failed printing to stdout: Broken pipe". A training run ends
/// there as if killed: its finished epochs are on disk, as after any kill (`train --resume`).
fn end_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

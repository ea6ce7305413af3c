use std::process::ExitCode;

fn main() -> ExitCode {
    rslad_tui::allocator::keep_freed_memory();
    match rslad_tui::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A message may quote a file (a session's line, a card's field): scrubbed of escapes.
            eprintln!("error: {}", rslad_tui::text::scrub(&format!("{error:#}")));
            ExitCode::FAILURE
        }
    }
}

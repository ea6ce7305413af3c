use std::process::ExitCode;

fn main() -> ExitCode {
    match rslad_tui::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

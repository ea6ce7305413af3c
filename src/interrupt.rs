//! Ctrl-C during long work: the first press asks the work to stop at the next safe point (the
//! end of the current batch) so what is finished can be saved; a second press quits at once.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// The flag long-running loops poll, with the Ctrl-C handler installed on first use. If no
/// handler can be installed (another one exists), Ctrl-C keeps its default behaviour.
pub fn flag() -> &'static AtomicBool {
    INSTALLED.get_or_init(|| {
        ctrlc::set_handler(|| {
            if REQUESTED.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted again: quitting without saving");
                std::process::exit(130);
            }
            eprintln!("\ninterrupt: stopping at the end of the current batch, keeping what is finished (Ctrl-C again to quit now)");
        })
        .is_ok()
    });
    &REQUESTED
}

/// Whether Ctrl-C was pressed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

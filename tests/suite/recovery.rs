//! Crash recovery with a real child process: a REPL killed with SIGKILL in the middle of a
//! command leaves its journal; the next start offers it, and `recover` re-runs everything
//! but the command in flight. A clean exit leaves nothing to recover.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn spawn(dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
        .arg("repl")
        .current_dir(dir)
        .env("RSLAD_TUI_HISTORY", dir.join("history"))
        .env("RSLAD_TUI_JOURNAL", dir.join("journal.ron"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

fn finish(mut child: Child, script: &str) -> Output {
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_killed_session_is_recovered_from_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.ron");

    let mut child = spawn(dir.path());
    let mut stdin = child.stdin.take().unwrap();
    // Two finished commands, then a long one that is killed part-way.
    stdin
        .write_all(b"step batch 2\nshow sample 4\nstep 50\n")
        .unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        if text.contains("show sample 4") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the journal never recorded the commands"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500)); // well into `step 50`
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    drop(stdin);
    assert!(journal.exists(), "the killed run leaves its journal");

    let output = finish(spawn(dir.path()), "recover\nnext\n");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("did not end cleanly (2 commands, the last `show sample 4`)"),
        "{stderr}"
    );
    assert!(
        stdout.contains("recovered: 2 commands and 0 markers re-ran: every result bit-identical"),
        "{stdout}"
    );
    // The recovered state goes on: sample 4, then `next` selects 5, after 2 batches.
    let last = std::fs::read_to_string(dir.path().join("journal-last.ron")).unwrap();
    let session = rslad_tui::lab::session::parse(&last, Path::new("journal-last.ron")).unwrap();
    let rslad_tui::lab::session::Entry::Command { line, outcome, .. } =
        session.entries.last().unwrap()
    else {
        panic!("the last entry is `next`");
    };
    assert_eq!(line, "next");
    assert_eq!(outcome.snapshot.sample.as_ref().unwrap().index, 5);
    assert_eq!(outcome.snapshot.status.batch, 2);

    // That run ended cleanly: the next start has nothing to recover.
    assert!(!journal.exists());
    let output = finish(spawn(dir.path()), "recover\n");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no unfinished session"));
}

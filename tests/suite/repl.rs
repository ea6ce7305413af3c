//! `rslad-tui repl` with a script piped in: it echoes and runs each line, prints results as
//! plain text, stops with a non-zero status at the first failed command, and its recording
//! re-executes with `replay --execute`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn repl(dir: &Path, args: &[&str], script: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
        .arg("repl")
        .args(args)
        .current_dir(dir)
        .env("RSLAD_TUI_HISTORY", dir.join("history"))
        .env("RSLAD_TUI_JOURNAL", dir.join("journal.ron"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_piped_script_runs_and_prints_plain_results() {
    let dir = tempfile::tempdir().unwrap();
    let script = "# a comment\nstep batch 1\n\nattack fgsm n=20\nhelp step\nmark \"Done\" the end\nsave out/student\n";
    let output = repl(dir.path(), &["--record", "recorded.ron"], script);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    for expected in [
        "> step batch 1",
        "1 batch of epoch 1: 1/79 done",
        "> attack fgsm n=20",
        "micro-cnn, 20 test images, ε = 0.3",
        "FGSM",
        "step [N] | step batch [N]: train N epochs",
        "■ Done: the end",
        "saved out/student.safetensors",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    assert!(!stdout.contains("# a comment"));
    assert!(dir.path().join("out/student.safetensors").exists());

    // The recording re-executes, bit-identically on the same machine.
    let replay = Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
        .args(["replay", "--execute", "recorded.ron"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let out = text(&replay.stdout);
    assert!(replay.status.success(), "{out}\n{}", text(&replay.stderr));
    assert!(
        out.contains("3 commands and 1 marker re-ran: every result bit-identical"),
        "{out}"
    );
}

#[test]
fn the_first_failed_command_stops_the_script_with_a_non_zero_status() {
    let dir = tempfile::tempdir().unwrap();
    let output = repl(dir.path(), &[], "next\nstudent resnet-9000\nnext\n");
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("line 2: `student resnet-9000` failed"),
        "{stderr}"
    );
    assert!(stderr.contains("usage: student MODEL"), "{stderr}");
    assert_eq!(
        stdout.matches("> next").count(),
        1,
        "nothing runs after the failure:\n{stdout}"
    );

    // A command that parses but fails in the engine stops it too.
    let output = repl(dir.path(), &[], "show sample 99999\nnext\n");
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("the test set has 10000 images"));
}

/// Commands that choose a sample print what the workbench's panels would show: the soft
/// labels as a table and the perturbation as a picture; `help` lists the REPL's own keys, not
/// the workbench's.
#[test]
fn the_repl_prints_the_sample_and_its_own_help() {
    let dir = tempfile::tempdir().unwrap();
    let output = repl(dir.path(), &[], "show sample 3\nnext\nhelp\n");
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for expected in [
        "test image 3 of 10000 (true class 0)",
        "test image 4 of 10000",
        "teacher %        student %",
        "δ/ε (+ brighter, - darker)",
        "Ctrl-D saves unsaved work",
    ] {
        assert!(stdout.contains(expected), "missing `{expected}`:\n{stdout}");
    }
    // Ten class rows per sample, the true one marked.
    assert_eq!(stdout.matches('▶').count(), 2, "{stdout}");
    assert!(!stdout.contains("moves between panels"), "{stdout}");
}

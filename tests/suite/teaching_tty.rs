//! What broke for people teaching and exploring with the tool (issue 19), each in a real
//! pseudo-terminal: Ctrl-C in the interactive REPL, `load session` in a workbench that already
//! holds state, and the sample panels after `step batch`.

use crate::tmux::{Tmux, tmux_available};
use std::path::Path;
use std::process::{Command, Stdio};

/// A shell script that runs `rslad-tui ARGS` in `dir` with its history and journal there, then
/// reports the exit status and stays open so the screen can be read.
fn script(dir: &Path, args: &str) -> String {
    format!(
        "cd '{}' && RSLAD_TUI_HISTORY='{}' RSLAD_TUI_JOURNAL='{}' '{}' {args}; echo \"EXIT=$?\"; sleep 120",
        dir.display(),
        dir.join("history").display(),
        dir.join("journal.ron").display(),
        env!("CARGO_BIN_EXE_rslad-tui"),
    )
}

#[test]
fn ctrl_c_stops_a_command_in_the_interactive_repl() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed, so the pseudo-terminal test cannot run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(
        "rslad-tui-repl-ctrl-c",
        (120, 30),
        &script(dir.path(), "repl"),
    );
    tmux.wait_for("rslad>", 60);
    tmux.line("step batch 30");
    // The progress line shows the epoch under way: stop it there.
    tmux.wait_for("epoch 1 ", 60);
    tmux.keys(&["C-c"]);
    let screen = tmux.wait_for("stopped after batch", 60);
    assert!(
        !screen.contains("30/79 done"),
        "the command ran to its end:\n{screen}"
    );
    // Back at the prompt, and the next command runs (the stop is not left raised).
    tmux.line("step batch 1");
    tmux.wait_for("of epoch 1: ", 60);
    let screen = tmux.wait_for("rslad>", 10);
    assert!(
        screen.matches("stopped after batch").count() == 1,
        "the next command was stopped too:\n{screen}"
    );
}

/// The panel lines of the box whose title starts with `title`: from its top border to the
/// bottom one, cut at the box's left edge.
fn panel(screen: &str, title: &str) -> Vec<String> {
    let lines: Vec<&str> = screen.lines().collect();
    let (top, column) = lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| {
            l.find(&format!("┌{title}"))
                .map(|byte| (i, l[..byte].chars().count()))
        })
        .unwrap_or_else(|| panic!("no `{title}` panel:\n{screen}"));
    lines[top..]
        .iter()
        .map(|l| l.chars().skip(column).collect::<String>())
        .take_while(|l| !l.starts_with('└'))
        .collect()
}

#[test]
fn the_sample_panels_are_current_after_step_batch() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed, so the pseudo-terminal test cannot run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start("rslad-tui-stale", (140, 40), &script(dir.path(), ""));
    tmux.wait_for("Soft labels", 60);
    tmux.line("step batch 10");
    tmux.wait_for("10/79 done", 120);
    // `lr` and `seed` change nothing here (nor the sample panels) but are queued behind the
    // command before them: once they are logged, the panels show what that command left.
    tmux.line("lr 0.002");
    let after_step = panel(&tmux.wait_for("learning rate", 60), "Soft labels");
    tmux.line("show sample 0");
    tmux.line("seed 0");
    let shown = panel(&tmux.wait_for("seed", 60), "Soft labels");
    assert_eq!(
        after_step, shown,
        "after `step batch` the soft labels were stale; `show sample 0` recomputed them"
    );
}

#[test]
fn load_session_in_a_workbench_with_state_reproduces_the_recording() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed, so the pseudo-terminal test cannot run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Record a small session with the piped REPL.
    let mut child = Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
        .arg("repl")
        .current_dir(dir.path())
        .env("RSLAD_TUI_HISTORY", dir.path().join("history"))
        .env("RSLAD_TUI_JOURNAL", dir.path().join("journal.ron"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"step batch 3\nsave session small\n")
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    assert!(dir.path().join("sessions/small.ron").exists());

    let tmux = Tmux::start("rslad-tui-load", (140, 40), &script(dir.path(), ""));
    tmux.wait_for("Soft labels", 60);
    tmux.line("attack fgsm n=20");
    tmux.wait_for("20 test images, ε = 0.3: clean", 60);
    tmux.line("load session small");
    let screen = tmux.wait_for("session small:", 120);
    assert!(
        screen.contains("bit-identical") && !screen.contains("diverged"),
        "the state before the load leaked into the comparison:\n{screen}"
    );
}

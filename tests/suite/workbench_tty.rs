//! End to end: the real binary in a real pseudo-terminal (a private tmux server), driven by
//! keystrokes: it starts, runs `step batch 5`, `attack pgd n=64` and `show sample 3`, explains a bad one, shows help, stops an epoch with
//! Ctrl-C, survives a too-small window, asks before quitting unsaved work, and leaves the
//! terminal as it found it (cooked mode, main screen).
//!
//! Skipped, with a message, where tmux is not installed.

use crate::tmux::{Tmux, tmux_available};

#[test]
fn the_workbench_runs_in_a_real_terminal() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed, so the pseudo-terminal test cannot run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_rslad-tui");
    let history = dir.path().join("history");
    // After the program exits the shell reports its status and the terminal's mode, so the
    // test can check both on the restored main screen.
    let script = format!(
        "cd '{}' && RSLAD_TUI_HISTORY='{}' '{}'; echo \"EXIT=$?\"; stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon'; sleep 120",
        dir.path().display(),
        history.display(),
        binary
    );
    let tmux = Tmux::start("rslad-tui-test", (120, 36), &script);

    let screen = tmux.wait_for("Curves", 120);
    assert!(screen.contains("Soft labels") && screen.contains("Perturbation"));
    assert!(screen.contains("mnist (embedded)"), "{screen}");

    tmux.line("step batch 5");
    let screen = tmux.wait_for("5 batches of epoch 1: 5/79 done", 120);
    assert!(
        screen.contains("epoch 1 batch 5/79"),
        "status line:\n{screen}"
    );
    assert!(
        screen.contains("batch"),
        "the per-batch loss trace:\n{screen}"
    );

    tmux.line("attack pgd n=64");
    let screen = tmux.wait_for("64 test images, ε = 0.3: clean", 120);
    assert!(
        screen.contains("Attacks · PGD-40 · micro-cnn"),
        "the results board's title:\n{screen}"
    );
    // Zoomed (Tab to the Attacks panel, z), the board has room for each attack's detail: the
    // largest perturbation used, within ε.
    tmux.keys(&["Tab", "Tab", "Tab", "Tab", "z"]);
    let zoomed = tmux.wait_for("z/Esc back", 10);
    assert!(zoomed.contains("64 images"), "{zoomed}");
    let row = zoomed
        .lines()
        .find(|l| l.contains("5 batches") && l.contains("max |δ|"))
        .unwrap_or_else(|| panic!("no board line with its detail:\n{zoomed}"));
    tmux.keys(&["z", "Escape"]);
    let after = row.split("max |δ| ").nth(1).unwrap();
    let max_delta: f32 = after[..5].parse().unwrap();
    assert!(max_delta <= 0.3 + 1e-3, "{row}");
    let log = screen
        .lines()
        .find(|l| l.contains("64 test images, ε = 0.3: clean"))
        .unwrap();
    let percent = |key: &str| -> f64 {
        let rest = log.split(key).nth(1).unwrap();
        rest[..rest.find('%').unwrap()].trim().parse().unwrap()
    };
    assert!(percent("PGD-40 ") <= percent("clean "), "{log}");

    tmux.line("show sample 3");
    tmux.wait_for("sample 3/10000", 30);

    tmux.line("bogus");
    tmux.wait_for("unknown command `bogus`", 10);

    tmux.keys(&["?"]);
    tmux.wait_for("Commands (Tab completes", 10);
    tmux.keys(&["Escape"]);

    // Ctrl-C in the middle of an epoch stops it at the next batch and keeps the UI.
    tmux.line("step");
    tmux.wait_for("⟳ epoch 1", 60);
    tmux.keys(&["C-c"]);
    tmux.wait_for("stopped after batch", 60);

    tmux.run(&["resize-window", "-t", "wb", "-x", "30", "-y", "10"]);
    tmux.wait_for("too small", 10);
    tmux.run(&["resize-window", "-t", "wb", "-x", "120", "-y", "36"]);
    tmux.wait_for("Curves", 10);

    tmux.line("quit");
    tmux.wait_for("Unsaved work: quit anyway?", 10);
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("EXIT=", 30);
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        !screen.contains("Curves"),
        "the main screen is back:\n{screen}"
    );
    let mode = tmux.wait_for("icanon", 10);
    assert!(
        mode.lines().any(|l| l.trim() == "icanon"),
        "the terminal is back in cooked mode:\n{mode}"
    );
    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(
        saved.starts_with("#V2\nstep batch 5\nattack pgd n=64\nshow sample 3\nbogus\nstep\nquit"),
        "{saved}"
    );
}

/// The interactive REPL in a pseudo-terminal: Tab completes, a command runs, the history goes
/// to the file the workbench uses, and Ctrl-D on an empty line saves the student and quits.
#[test]
fn the_interactive_repl_completes_runs_and_saves_on_ctrl_d() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed, so the pseudo-terminal test cannot run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_rslad-tui");
    let history = dir.path().join("history");
    let script = format!(
        "cd '{}' && RSLAD_TUI_HISTORY='{}' '{}' repl; echo \"EXIT=$?\"; sleep 120",
        dir.path().display(),
        history.display(),
        binary
    );
    let tmux = Tmux::start("rslad-tui-repl-test", (120, 30), &script);
    tmux.wait_for("rslad>", 60);
    assert!(
        tmux.run(&["send-keys", "-t", "wb", "-l", "ste"])
            .status
            .success()
    );
    tmux.keys(&["Tab"]);
    tmux.wait_for("rslad> step", 10);
    assert!(
        tmux.run(&["send-keys", "-t", "wb", "-l", "batch 1"])
            .status
            .success()
    );
    tmux.keys(&["Enter"]);
    tmux.wait_for("1 batch of epoch 1: 1/79 done", 60);
    tmux.line("bogus");
    tmux.wait_for("unknown command `bogus`", 10);
    tmux.keys(&["C-d"]);
    let screen = tmux.wait_for("EXIT=", 30);
    assert!(
        screen.contains("saved runs/workbench-micro-cnn-rslad.safetensors"),
        "{screen}"
    );
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        dir.path()
            .join("runs/workbench-micro-cnn-rslad.safetensors")
            .exists()
    );
    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(saved.starts_with("#V2\nstep batch 1\nbogus"), "{saved}");
}

/// Playback of a shipped lesson: nothing is computed, keys move through it, q leaves.
#[test]
fn a_recorded_lesson_plays_back_in_the_workbench() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed, so the pseudo-terminal test cannot run");
        return;
    }
    let lesson = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sessions/lesson-1-soft-labels.ron"
    );
    let entries = rslad_tui::lab::session::load(std::path::Path::new(lesson))
        .unwrap()
        .entries
        .len();
    let script = format!(
        "'{}' replay '{lesson}'; echo \"EXIT=$?\"; sleep 120",
        env!("CARGO_BIN_EXE_rslad-tui")
    );
    let tmux = Tmux::start("rslad-tui-playback-test", (120, 36), &script);
    tmux.wait_for(&format!("playback 0/{entries}"), 30);
    // The title screen lists the sections.
    tmux.wait_for("5. Robust soft labels", 10);
    tmux.keys(&["]"]);
    // The status line is drawn first: wait for the panels below it to finish too (a capture
    // can land in the middle of a frame).
    tmux.wait_for(&format!("playback 1/{entries}"), 10);
    tmux.wait_for("■ 1. Two models, one image", 10);
    tmux.wait_for("section 1 of 5", 10);
    tmux.keys(&["End"]);
    tmux.wait_for(&format!("playback {entries}/{entries}"), 10);
    tmux.wait_for("■ 5. Robust soft labels", 10);
    let screen = tmux.wait_for("PGD-40", 10);
    assert!(
        screen.contains(&format!("playback {entries}/{entries}")),
        "the recorded attack table at the end:\n{screen}"
    );
    tmux.keys(&["Left"]);
    tmux.wait_for(&format!("playback {}/{entries}", entries - 1), 10);
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("EXIT=", 10);
    assert!(screen.contains("EXIT=0"), "{screen}");
}

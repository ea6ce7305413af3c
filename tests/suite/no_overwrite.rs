//! Nothing is overwritten without asking: `save` (checkpoints and sessions), `export`,
//! `import` and the demo replace a file only when told to, never a file of another kind, and a
//! replayed session never replaces what was there before it ran. Also the refusals a new
//! user's review found missing (options that do not apply, data a checkpoint was not trained
//! on, numbers out of range) and a closed pipe.

use super::cli::{assert_clean_failure, run};
use rslad_tui::checkpoint::{self, Occupant, SaveInfo};
use rslad_tui::data::DatasetKind;
use rslad_tui::device::autodiff_device;
use rslad_tui::lab::live::Shared;
use rslad_tui::lab::runner::Runner;
use rslad_tui::zoo::{Arch, Model, ModelSpec};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn runner() -> Runner {
    Runner::new(Arc::new(Shared::default()), 0).expect("the default session opens")
}

fn error_of(r: &mut Runner, line: &str) -> String {
    format!("{:#}", r.run_line(line).expect_err(line))
}

/// A micro-cnn checkpoint at `dir/name` (card: mnist).
fn checkpoint_at(dir: &Path, name: &str, seed: u64) -> PathBuf {
    let model = Model::build(
        ModelSpec::native(Arch::MicroCnn, 10),
        seed,
        &autodiff_device(),
    )
    .unwrap();
    let path = dir.join(name);
    let info = SaveInfo {
        dataset: "mnist",
        training: None,
        metrics: &[],
        seed,
    };
    checkpoint::save(&model, &path, &info).unwrap();
    path
}

fn weights_of(path: &Path) -> Vec<u8> {
    std::fs::read(path.with_extension("safetensors")).unwrap()
}

#[test]
fn save_replaces_a_checkpoint_only_with_overwrite_and_never_another_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let mut r = runner();
    r.run_line(&format!("save {}", a.display())).unwrap();
    let first = weights_of(&a);
    r.run_line("step batch 1").unwrap();
    let refused = error_of(&mut r, &format!("save {}", a.display()));
    assert!(refused.contains("--overwrite"), "{refused}");
    assert_eq!(
        weights_of(&a),
        first,
        "the refused save left the checkpoint alone"
    );

    // Asked: replaced, and the replaced run's resume state goes with it.
    std::fs::write(a.with_extension("resume"), b"train's resume state").unwrap();
    r.run_line(&format!("save {} --overwrite", a.display()))
        .unwrap();
    assert_ne!(weights_of(&a), first);
    assert!(!a.with_extension("resume").exists());

    // A session (or lesson) under the card's name is never replaced, asked or not.
    let lesson = dir.path().join("lesson.ron");
    std::fs::write(&lesson, b"(format:1, precious)").unwrap();
    for line in ["save {}", "save {} --overwrite"] {
        let line = line.replace("{}", &dir.path().join("lesson").display().to_string());
        let refused = error_of(&mut r, &line);
        assert!(refused.contains("is not a checkpoint"), "{refused}");
    }
    assert_eq!(std::fs::read(&lesson).unwrap(), b"(format:1, precious)");
    assert!(!dir.path().join("lesson.safetensors").exists());

    // A folder is not a checkpoint's name.
    let refused = error_of(&mut r, &format!("save {}/", dir.path().display()));
    assert!(refused.contains("is a folder"), "{refused}");
    assert_eq!(
        checkpoint::occupant(&dir.path().join("sub/")),
        Occupant::Folder
    );
}

#[test]
fn a_replayed_session_never_replaces_a_checkpoint_that_was_there_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let mine = checkpoint_at(dir.path(), "mine", 1);
    let before = weights_of(&mine);
    let mut r = runner();
    r.confine_to(dir.path());
    for line in ["save mine", "save mine --overwrite"] {
        let refused = error_of(&mut r, line);
        assert!(
            refused.contains("never replaces one") || refused.contains("--overwrite"),
            "{line}: {refused}"
        );
    }
    let refused = error_of(&mut r, "save mine --overwrite");
    assert!(refused.contains("never replaces one"), "{refused}");
    assert_eq!(weights_of(&mine), before);
    // What the session saved itself it may save again.
    r.run_line("save fresh").unwrap();
    r.run_line("step batch 1").unwrap();
    r.run_line("save fresh --overwrite").unwrap();
}

#[test]
fn save_session_replaces_only_a_session_and_only_with_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = runner();
    r.set_sessions_dir(dir.path());
    r.run_line("save session s1").unwrap();
    let refused = error_of(&mut r, "save session s1");
    assert!(refused.contains("save session s1 --overwrite"), "{refused}");
    r.run_line("mark \"one\"").unwrap();
    r.run_line("save session s1 --overwrite").unwrap();
    let saved = std::fs::read_to_string(dir.path().join("s1.ron")).unwrap();
    assert!(saved.contains("one"), "the session was replaced: {saved}");

    std::fs::write(dir.path().join("notes.ron"), b"my notes").unwrap();
    let refused = error_of(&mut r, "save session notes --overwrite");
    assert!(refused.contains("is not a session"), "{refused}");
    assert_eq!(
        std::fs::read(dir.path().join("notes.ron")).unwrap(),
        b"my notes"
    );
}

#[test]
fn export_and_import_replace_files_only_with_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let a = checkpoint_at(dir.path(), "a", 1).display().to_string();
    let b = checkpoint_at(dir.path(), "b", 2);
    let b_weights = weights_of(&b);
    let out = dir.path().join("a-torch.safetensors").display().to_string();
    let export = ["export", "--checkpoint", &a, "--out", &out];
    assert_eq!(run(&export).0, 0);
    assert_clean_failure(&export, "pass --overwrite");
    assert_eq!(run(&[&export[..], &["--overwrite"]].concat()).0, 0);
    // Another checkpoint's weights are never an export's destination.
    let b_file = b.with_extension("safetensors").display().to_string();
    let onto_b = [
        "export",
        "--checkpoint",
        &a,
        "--out",
        &b_file,
        "--overwrite",
    ];
    assert_clean_failure(&onto_b, "the weights file of a checkpoint");
    assert_eq!(weights_of(&b), b_weights);

    // Import over a checkpoint: only with --overwrite.
    let b_text = b.display().to_string();
    let import = [
        "import",
        "--weights",
        &out,
        "--model",
        "micro-cnn",
        "--out",
        &b_text,
    ];
    assert_clean_failure(&import, "pass --overwrite");
    assert_eq!(weights_of(&b), b_weights);
    let (code, _, stderr) = run(&[&import[..], &["--overwrite"]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        weights_of(&b),
        weights_of(Path::new(&a)),
        "b now holds a's weights"
    );
}

#[test]
fn the_demo_replaces_only_an_earlier_demo() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    // Someone's own checkpoint under the demo's name: kept, and the demo goes to -2.
    let theirs = checkpoint_at(&runs, "demo-micro-cnn", 7);
    let before = weights_of(&theirs);
    let demo = || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
            .arg("demo")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(demo().contains("--checkpoint runs/demo-micro-cnn-2"));
    assert_eq!(weights_of(&theirs), before);
    // Its own earlier checkpoint the demo replaces.
    assert!(demo().contains("--checkpoint runs/demo-micro-cnn-2"));
    assert!(!runs.join("demo-micro-cnn-3.ron").exists());
}

#[test]
fn a_checkpoint_is_refused_on_data_it_was_not_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    let card = checkpoint::read_card(&checkpoint_at(dir.path(), "m", 1)).unwrap();
    rslad_tui::settings::check_trained_on(&card, DatasetKind::Mnist, "the teacher").unwrap();
    let refused =
        rslad_tui::settings::check_trained_on(&card, DatasetKind::FashionMnist, "the teacher")
            .unwrap_err()
            .to_string();
    assert!(
        refused.contains("the teacher was trained on mnist, not fashion"),
        "{refused}"
    );
}

#[test]
fn options_that_do_not_apply_and_numbers_out_of_range_are_refused() {
    for (args, expected) in [
        (
            &["train", "--method", "natural", "--steps", "5"][..],
            "has none",
        ),
        (
            &["train", "--method", "kd", "--eps-warmup", "2"],
            "has none",
        ),
        (
            &["train", "--method", "natural", "--attack-start", "uniform"],
            "has none",
        ),
        (
            &["train", "--method", "rslad", "--attack-bn", "train"],
            "--attack-bn applies to --method sat",
        ),
        (&["train", "--train-n", "0"], "--train-n must be at least 1"),
        (
            &["compare", "--methods", "sat,natural,sat"],
            "names sat twice",
        ),
        (
            &["bench", "--batch", "100000000"],
            "--batch must be between 1 and 4096",
        ),
        (
            &["eval", "--checkpoint", "embedded", "--steps", "0"],
            "--steps must be between 1 and 10000",
        ),
        (
            &["eval", "--checkpoint", "embedded", "--steps", "10000001"],
            "--steps must be between 1 and 10000",
        ),
        (
            &["diagnose", "--checkpoint", "embedded", "--eps", "0"],
            "--eps 0",
        ),
        (
            &["diagnose", "--checkpoint", "embedded", "--image", "200"],
            "--image 200 is not among the first 200 test images",
        ),
        (
            &["eval", "--checkpoint", "embedded", "--model", "mlp"],
            "is a small-cnn, not the --model mlp",
        ),
    ] {
        assert_clean_failure(args, expected);
    }
}

#[test]
fn the_workbench_quotes_the_number_of_images_it_was_given() {
    let mut r = runner();
    let refused = error_of(&mut r, "diagnose n=100000");
    assert!(refused.contains("(n=100000)"), "{refused}");
    let refused = error_of(&mut r, "diagnose n=10 image=10");
    assert!(
        refused.contains("image=10 is not among the 10 diagnosed test images"),
        "{refused}"
    );
}

/// `rslad-tui zoo | head -1`: a reader that has gone ends the program quietly (by SIGPIPE, as
/// it ends `ls`), never with a panic.
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_program_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
        .arg("zoo")
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.signal(), Some(libc::SIGPIPE), "{output:?}");
}

/// A session that saves one checkpoint again and again with `--overwrite` replays in a fresh
/// folder: each save replaces the replay's own earlier one (before: the second save read as
/// "x changed since the recording", as the check missed lines ending in `--overwrite`).
#[test]
fn a_session_saving_with_overwrite_replays_in_another_folder() {
    let (recorded_in, replayed_in) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut r = runner();
    r.confine_to(recorded_in.path());
    for line in ["save x --overwrite", "step batch 1", "save x --overwrite"] {
        r.run_line(line).unwrap();
    }
    let session = r.session().clone();
    let mut again = runner();
    again.confine_to(replayed_in.path());
    let report = again.replay(&session).unwrap();
    assert_eq!(report.divergence, None);
    assert_eq!(report.commands, 3);
    assert_eq!(
        weights_of(&replayed_in.path().join("x")),
        weights_of(&recorded_in.path().join("x"))
    );
}

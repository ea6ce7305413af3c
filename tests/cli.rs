//! Bad input on the command line gives a clear error and a non-zero exit, never a panic.

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_clean_failure(args: &[&str], expected: &str) {
    let (code, _, stderr) = run(args);
    assert_ne!(code, 0, "{args:?} succeeded");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(
        stderr.contains(expected),
        "{args:?}: expected '{expected}' in: {stderr}"
    );
}

#[test]
fn unknown_model_is_refused_with_the_list_of_models() {
    assert_clean_failure(
        &["train", "--model", "resnet-9000"],
        "unknown model 'resnet-9000'",
    );
    assert_clean_failure(&["train", "--model", "resnet-9000"], "small-cnn");
}

#[test]
fn missing_data_folder_is_refused() {
    assert_clean_failure(
        &[
            "train",
            "--data",
            "/nonexistent/rslad-data",
            "--epochs",
            "1",
        ],
        "not found",
    );
}

#[test]
fn epsilon_outside_the_unit_interval_is_refused() {
    assert_clean_failure(&["train", "--eps", "1.5"], "--eps must be in [0, 1]");
    assert_clean_failure(&["train", "--eps", "-0.1"], "--eps must be in [0, 1]");
}

#[test]
fn negative_steps_are_refused() {
    assert_clean_failure(&["train", "--steps", "-3"], "invalid value '-3'");
    assert_clean_failure(
        &["eval", "--checkpoint", "x", "--steps", "-1"],
        "invalid value '-1'",
    );
}

#[test]
fn corrupt_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let card = dir.path().join("bad.ron");
    std::fs::write(&card, "garbage").unwrap();
    std::fs::write(dir.path().join("bad.safetensors"), "garbage").unwrap();
    assert_clean_failure(
        &["eval", "--checkpoint", card.to_str().unwrap()],
        "not a valid RON checkpoint card",
    );
    assert_clean_failure(&["eval", "--checkpoint", "/nonexistent/ckpt"], "ckpt.ron");
}

#[test]
fn zoo_lists_every_architecture_with_its_parameter_count() {
    let (code, stdout, _) = run(&["zoo"]);
    assert_eq!(code, 0);
    for (name, count) in [
        ("micro-cnn", ""),
        ("small-cnn", ""),
        ("madry-cnn", "3,274,634"),
        ("resnet18", "11,173,962"),
        ("mobilenet-v2", "2,296,922"),
        ("wrn-34-10", "46,160,474"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{stdout}"));
        assert!(line.contains(count), "{line}");
    }
}

#[test]
fn help_explains_the_options() {
    let (code, stdout, _) = run(&["train", "--help"]);
    assert_eq!(code, 0);
    for option in [
        "--model", "--method", "--eps", "--steps", "--seed", "--data", "--out",
    ] {
        assert!(stdout.contains(option), "{option} missing from help");
    }
}

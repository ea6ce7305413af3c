//! Bad input on the command line gives a clear error and a non-zero exit, never a panic.

use std::process::Command;

/// The binary's exit code, standard output and standard error for `args`.
pub(crate) fn run(args: &[&str]) -> (i32, String, String) {
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

/// `args` fail with a message holding `expected`, and without a panic.
pub(crate) fn assert_clean_failure(args: &[&str], expected: &str) {
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

#[test]
fn eval_runs_autoattack_and_reports_it_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("micro");
    let stem = stem.to_str().unwrap();
    let (code, _, stderr) = run(&[
        "train",
        "--model",
        "micro-cnn",
        "--epochs",
        "1",
        "--train-n",
        "256",
        "--eval-n",
        "20",
        "--eval-steps",
        "0",
        "--out",
        stem,
    ]);
    assert_eq!(code, 0, "training failed: {stderr}");

    let (code, stdout, stderr) = run(&[
        "eval",
        "--checkpoint",
        stem,
        "--attacks",
        "autoattack",
        "--version",
        "custom",
        "--components",
        "apgd-ce,apgd-t",
        "--eps",
        "0.1",
        "--n",
        "16",
        "--json",
    ]);
    assert_eq!(code, 0, "eval failed: {stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    let report = &json["autoattack"];
    assert_eq!(report["images"], 16);
    assert_eq!(report["version"], "custom");
    let components = report["components"].as_array().unwrap();
    assert_eq!(components.len(), 2);
    assert_eq!(components[0]["component"], "ApgdCe");
    let clean = report["clean_accuracy"].as_f64().unwrap();
    let robust = report["robust_accuracy"].as_f64().unwrap();
    assert!(robust <= clean, "robust {robust} > clean {clean}");
    assert!(report["max_perturbation"].as_f64().unwrap() <= 0.1 + 1e-6);

    assert_clean_failure(
        &[
            "eval",
            "--checkpoint",
            stem,
            "--attacks",
            "autoattack",
            "--version",
            "custom",
            "--components",
            "deepfool",
        ],
        "unknown AutoAttack component 'deepfool'",
    );
    assert_clean_failure(
        &[
            "eval",
            "--checkpoint",
            stem,
            "--attacks",
            "autoattack",
            "--version",
            "custom",
        ],
        "--version custom needs --components",
    );
    assert_clean_failure(
        &[
            "eval",
            "--checkpoint",
            stem,
            "--attacks",
            "pgd",
            "--components",
            "square",
        ],
        "add autoattack to --attacks",
    );
}

/// `args` with the value after `flag` replaced by `value`.
/// `diagnose --json` on a student trained into masking (the fixture of
/// tests/suite/diagnose.rs): one object with every check, the flagged ones among them, and
/// the hint its training explains (RSLAD, a batch-norm student, both forwards' statistics).
#[test]
fn diagnose_reports_as_json_with_its_training_hint() {
    let checkpoint = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/masked-rslad-micro-cnn"
    );
    let (code, stdout, stderr) = run(&[
        "diagnose",
        "--checkpoint",
        checkpoint,
        "--n",
        "96",
        "--json",
    ]);
    assert_eq!(code, 0, "diagnose failed: {stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    assert_eq!(json["images"], 96);
    assert!((json["epsilon"].as_f64().unwrap() - 0.3).abs() < 1e-6);
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 8, "{findings:#?}");
    let flagged: Vec<&str> = findings
        .iter()
        .filter(|f| f["flagged"] == true)
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    assert!(
        flagged.contains(&"black box after white box"),
        "{flagged:?}"
    );
    let hint = json["training_hint"].as_str().expect("a training hint");
    assert!(hint.contains("--bn-stats adversarial"), "{hint}");
}

fn with_value<'a>(args: &[&'a str], flag: &str, value: &'a str) -> Vec<&'a str> {
    let mut changed = args.to_vec();
    let at = changed
        .iter()
        .position(|a| *a == flag)
        .expect("flag present");
    changed[at + 1] = value;
    changed
}

/// `eval` of the embedded teacher by APGD-CE alone on the first `n` images, in blocks of 2
/// journaled in `journal`: the quick resumable evaluation the journal tests share.
fn apgd_ce_resume_args<'a>(n: &'a str, journal: &'a str) -> Vec<&'a str> {
    vec![
        "eval",
        "--checkpoint",
        "embedded",
        "--attacks",
        "autoattack",
        "--version",
        "custom",
        "--components",
        "apgd-ce",
        "--n",
        n,
        "--block",
        "2",
        "--resume",
        journal,
        "--json",
    ]
}

#[test]
fn eval_resume_continues_autoattack_from_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("aa.ron");
    let journal = journal.to_str().unwrap();
    let args = apgd_ce_resume_args("4", journal);
    let (code, first, stderr) = run(&args);
    assert_eq!(code, 0, "eval failed: {stderr}");
    assert!(stderr.contains("block 2/2 (images 2..4)"), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&first).expect("valid JSON");
    assert_eq!(json["autoattack"]["images"], 4);
    // Run again: both blocks come from the journal, and the report is the same.
    let (code, second, stderr) = run(&args);
    assert_eq!(code, 0, "eval failed: {stderr}");
    assert!(stderr.contains("all 2 AutoAttack blocks done"), "{stderr}");
    assert!(
        !stderr.contains("block 1/2"),
        "a finished block ran again: {stderr}"
    );
    assert_eq!(first, second);

    let mut other_seed = args.to_vec();
    other_seed.extend(["--seed", "1"]);
    assert_clean_failure(&other_seed, "--seed 0 in the journal, 1 now");
    assert_clean_failure(
        &with_value(&args, "--block", "3"),
        "--block 2 in the journal, 3 now",
    );
    let missing = dir.path().join("no/such/folder/aa.ron");
    assert_clean_failure(
        &with_value(&args, "--resume", missing.to_str().unwrap()),
        "cannot write the journal",
    );
    assert_clean_failure(
        &["eval", "--checkpoint", "embedded", "--resume", journal],
        "add autoattack to --attacks",
    );
    assert_clean_failure(
        &with_value(&args, "--block", "0"),
        "--block must be at least 1",
    );

    // No images: an error, not an empty report (issue 21, item 13).
    let empty = dir.path().join("empty.ron");
    let no_images = with_value(&args, "--n", "0");
    assert_clean_failure(
        &with_value(&no_images, "--resume", empty.to_str().unwrap()),
        "no images to evaluate",
    );
}

#[test]
fn compare_trains_each_method_and_writes_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let teacher = dir.path().join("teacher");
    let teacher = teacher.to_str().unwrap();
    let quick = [
        "--model",
        "micro-cnn",
        "--epochs",
        "1",
        "--train-n",
        "200",
        "--eval-n",
        "20",
        "--eval-steps",
        "0",
    ];
    let mut args = vec!["train", "--out", teacher];
    args.extend(quick);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 0, "teacher training failed: {stderr}");

    let out = dir.path().join("cmp");
    let out = out.to_str().unwrap();
    let mut args = vec![
        "compare",
        "--methods",
        "natural,rslad",
        "--teacher",
        teacher,
        "--steps",
        "2",
        "--test-n",
        "30",
        "--autoattack-n",
        "5",
        "--out",
        out,
    ];
    args.extend(quick);
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "compare failed: {stderr}");
    assert!(stdout.contains("| rslad |"), "{stdout}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("cmp/table.json")).unwrap())
            .unwrap();
    assert_eq!(json["test_images"], 30);
    assert_eq!(json["autoattack_images"], 5);
    let columns: Vec<&str> = json["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(columns, ["FGSM", "PGD-SAT", "PGD-TRADES", "CW∞"]);
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        let clean = row["clean"].as_f64().unwrap();
        for robust in row["robust"].as_array().unwrap() {
            assert!(robust.as_f64().unwrap() <= clean);
        }
        assert!(row["autoattack"].as_f64().unwrap() <= clean);
    }
    let markdown = std::fs::read_to_string(dir.path().join("cmp/table.md")).unwrap();
    assert!(markdown.contains("| natural |") && markdown.contains("| AA |"));
    assert!(dir.path().join("cmp/rslad.safetensors").exists());

    assert_clean_failure(
        &["compare", "--methods", "rslad", "--out", out],
        "give its checkpoint with --teacher",
    );
}

#[test]
fn distillation_without_a_teacher_or_with_foreign_options_is_refused() {
    assert_clean_failure(&["train", "--method", "rslad"], "--teacher");
    assert_clean_failure(
        &["train", "--method", "natural", "--alpha", "0.5"],
        "--alpha does not apply to --method natural",
    );
    assert_clean_failure(
        &["train", "--method", "trades", "--beta", "-1"],
        "--beta must be finite and at least 0",
    );
    assert_clean_failure(
        &["train", "--method", "sat", "--bn-stats", "adversarial"],
        "--bn-stats applies to --method trades and rslad",
    );
}

/// Reads `stream` of `child` line by line until `ready` holds for one, sends SIGINT, reads the
/// rest and waits: the exit code and every line read.
fn interrupt_when(
    mut child: std::process::Child,
    stream: impl std::io::Read,
    ready: impl Fn(&str) -> bool,
) -> (Option<i32>, String) {
    use std::io::{BufRead, BufReader};
    let mut lines = BufReader::new(stream).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let is_ready = ready(&line);
        seen.push(line);
        if is_ready {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    seen.extend(lines.map(|l| l.unwrap()));
    (child.wait().unwrap().code(), seen.join("\n"))
}

/// Ctrl-C in the middle of training stops after the current batch, saves the model of the
/// last finished epoch (with a card that counts exactly the finished epochs) and fails,
/// saying so: a script can tell a stopped run from a finished one.
#[cfg(unix)]
#[test]
fn ctrl_c_during_training_saves_the_finished_epochs() {
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("interrupted");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
        .args([
            "train",
            "--model",
            "micro-cnn",
            "--epochs",
            "1000",
            "--train-n",
            "300",
            "--eval-n",
            "10",
            "--eval-steps",
            "0",
            "--out",
        ])
        .arg(&stem)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    // Wait for the first finished epoch, then interrupt.
    let (code, output) = interrupt_when(child, stdout, |line| line.starts_with("epoch "));
    assert_ne!(code, Some(0), "{output}");

    let (_, card) = rslad_tui::checkpoint::load(&stem, None, &rslad_tui::device::compute_device())
        .expect("the interrupted run left a valid checkpoint");
    assert!(
        !card.metrics.is_empty() && card.metrics.len() < 1000,
        "{}",
        card.metrics.len()
    );
    let epochs_printed = output.lines().filter(|l| l.starts_with("epoch ")).count();
    assert_eq!(card.metrics.len(), epochs_printed);
    let mut errors = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut errors).unwrap();
    assert!(
        errors.contains("stopped by Ctrl-C during epoch")
            && errors.contains(&format!(
                "saved the model after {epochs_printed} finished epoch"
            )),
        "{errors}"
    );
}

/// A checkpoint already at --out is kept: a run into it is refused before it starts unless
/// --overwrite asks, and a run stopped part-way never replaces it (its finished epochs go
/// beside it), failing with a message that says what it kept.
#[cfg(unix)]
#[test]
fn a_finished_checkpoint_is_never_replaced_unasked_or_by_a_stopped_run() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("good");
    let stem_text = stem.to_str().unwrap();
    let quick = [
        "train",
        "--model",
        "micro-cnn",
        "--train-n",
        "128",
        "--eval-n",
        "10",
        "--eval-steps",
        "0",
        "--out",
        stem_text,
    ];
    let (code, _, stderr) = run(&[&quick[..], &["--epochs", "1"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let card = dir.path().join("good.ron");
    let before = std::fs::read(&card).unwrap();

    let started = std::time::Instant::now();
    assert_clean_failure(
        &[&quick[..], &["--epochs", "1"]].concat(),
        "already holds a checkpoint: choose another --out",
    );
    assert!(started.elapsed().as_secs() < 60, "refused before training");

    let mut child = Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
        .args([&quick[..], &["--epochs", "1000", "--overwrite"]].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (code, _) = interrupt_when(child, stdout, |line| line.starts_with("epoch "));
    let mut errors = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut errors).unwrap();
    assert_ne!(code, Some(0), "{errors}");
    assert!(errors.contains("is unchanged"), "{errors}");
    assert_eq!(
        std::fs::read(&card).unwrap(),
        before,
        "the good checkpoint was replaced"
    );
    assert!(dir.path().join("good-stopped.ron").exists(), "{errors}");
}

/// A destination that cannot be written fails at once, not after the training.
#[test]
fn an_unwritable_destination_fails_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let out = file.join("student");
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = run(&[
        "train",
        "--model",
        "micro-cnn",
        "--epochs",
        "50",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("cannot create the folder"), "{stderr}");
    assert!(!stdout.contains("epoch "), "it trained first:\n{stdout}");
    assert!(started.elapsed().as_secs() < 60);
}

#[test]
fn a_diverging_run_stops_saves_the_last_finished_epoch_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("diverged");
    let out = out.to_str().unwrap();
    let args = [
        "train",
        "--model",
        "micro-cnn",
        "--method",
        "natural",
        "--optimizer",
        "adam",
        "--lr",
        "1e30",
        "--epochs",
        "2",
        "--train-n",
        "512",
        "--eval-n",
        "20",
        "--eval-steps",
        "0",
        "--out",
        out,
    ];
    let (code, _, stderr) = run(&args);
    assert_ne!(code, 0);
    assert!(stderr.contains("the loss became"), "{stderr}");
    assert!(
        stderr.contains("training diverged at batch 2 of epoch 1"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "go on with the same command and --resume --out {out}"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The checkpoint holds the last finished epoch (none here: the fresh model).
    let card = std::fs::read_to_string(format!("{out}.ron")).unwrap();
    assert!(card.contains("metrics: []"), "{card}");
}

#[test]
fn without_a_terminal_no_command_explains_and_runs_the_headless_demo() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("the workbench needs a terminal"),
        "{stderr}"
    );
    assert!(stdout.contains("epoch   1/1"), "{stdout}");
    assert!(dir.path().join("runs/demo-micro-cnn.safetensors").exists());
}

/// Runs `bench` with a zero time budget and `args`; returns its output and the cells of the
/// table row that starts with `prefix`.
fn bench_row(args: &[&str], prefix: &str) -> (String, Vec<String>) {
    let (code, stdout, stderr) = run(&[&["bench", "--seconds", "0"], args].concat());
    assert_eq!(code, 0, "{stderr}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no row {prefix:?} in:\n{stdout}"));
    let cells = row.split('|').map(|c| c.trim().to_string()).collect();
    (stdout, cells)
}

/// Asserts that each cell is a positive number.
fn assert_positive(cells: &[String]) {
    for cell in cells {
        let value: f64 = cell
            .parse()
            .unwrap_or_else(|_| panic!("{cell:?} in {cells:?}"));
        assert!(value > 0.0, "{cells:?}");
    }
}

#[test]
fn bench_prints_a_table_row_per_workload_with_its_rate() {
    // A tiny budget: only that the command runs and reports; speed is never asserted.
    let args = ["--batch", "8", "--only", "pgd-step", "--model", "micro-cnn"];
    let (stdout, cells) = bench_row(&args, "| PGD step | micro-cnn | 8 |");
    // ms / iter, images / s and GFLOP/s are positive numbers.
    assert_positive(&cells[4..7]);
    assert!(stdout.contains("| matmul 1024² |"), "{stdout}");
}

#[test]
fn bench_times_a_cifar_scale_student_when_named() {
    let args = ["--batch", "2", "--only", "forward", "--model", "resnet18"];
    let (_, cells) = bench_row(&args, "| forward | resnet18 | 2 |");
    // ms / iter and images / s (no FLOP count is kept for ResNet-18).
    assert_positive(&cells[4..6]);
}

/// The thread count in the header (and the one PyTorch gets with `--compare`) is the one our
/// kernels run with: RAYON_NUM_THREADS when set, not the number of cores.
#[test]
fn bench_reports_the_thread_count_rayon_runs_with() {
    let output = Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
        .args(["bench", "--seconds", "0", "--batch", "2"])
        .args(["--only", "forward", "--model", "micro-cnn"])
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let header = stdout.lines().next().unwrap_or_default();
    // Once in the backend's id, once for the run.
    assert_eq!(header.matches(" 1 threads").count(), 2, "{header}");
}

#[test]
fn bench_compare_without_torch_says_what_is_missing() {
    assert_clean_failure(
        &["bench", "--compare", "--python", "/nonexistent/python"],
        "cannot run /nonexistent/python",
    );
}

#[test]
fn ctrl_c_during_a_resumable_autoattack_keeps_the_finished_blocks_and_fails() {
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("aa.ron");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
        .args([
            "eval",
            "--checkpoint",
            "embedded",
            "--attacks",
            "autoattack",
            "--version",
            "custom",
            "--components",
            "apgd-ce",
            "--n",
            "400",
            "--block",
            "2",
            "--json",
            "--resume",
        ])
        .arg(&journal)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let stderr = child.stderr.take().unwrap();
    // Wait for the first finished block, then interrupt.
    let (code, output) = interrupt_when(child, stderr, |line| line.starts_with("block 1/200"));
    assert_eq!(code, Some(1), "a cut-short evaluation must fail: {output}");
    assert!(output.contains("stopped by Ctrl-C"), "{output}");
    let kept = rslad_tui::eval::journal::read(&journal)
        .unwrap()
        .expect("the journal is there")
        .blocks
        .len();
    let printed = output.lines().filter(|l| l.starts_with("block ")).count();
    assert!((1..200).contains(&kept), "{kept} blocks kept");
    assert_eq!(kept, printed, "every announced block is in the journal");
}

/// A compare row trained off the reference recipe says so beside the method's name; the
/// reference rows and methods the option does not apply to stay plain.
#[test]
fn compare_names_the_options_a_row_changed_from_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    let (code, _, stderr) = run(&[
        "compare",
        "--model",
        "micro-cnn",
        "--methods",
        "natural,sat,trades",
        "--epochs",
        "1",
        "--train-n",
        "64",
        "--eval-n",
        "10",
        "--eval-steps",
        "0",
        "--steps",
        "2",
        "--test-n",
        "20",
        "--autoattack-n",
        "0",
        "--attack-start",
        "uniform",
        "--bn-stats",
        "adversarial",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("| natural |"), "{table}");
    assert!(table.contains("| sat (start uniform) |"), "{table}");
    assert!(
        table.contains("| trades (start uniform, bn-stats adversarial) |"),
        "{table}"
    );
}

/// `eval --resume --extend` grows a finished journal to more images; without --extend the
/// error names it, and --extend does not combine with --shard.
#[test]
fn eval_extend_continues_a_journal_on_more_images() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("aa.ron");
    let eval = |n: &str, extra: &[&str]| {
        let mut args = apgd_ce_resume_args(n, journal.to_str().unwrap());
        args.extend_from_slice(extra);
        run(&args)
    };
    let (code, _, stderr) = eval("4", &[]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = eval("6", &[]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("--extend continues it on more images"),
        "{stderr}"
    );
    let (code, stdout, stderr) = eval("6", &["--extend"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("extended from 4 to 6 images"), "{stderr}");
    assert!(stderr.contains("2 of 3 AutoAttack blocks done"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["autoattack"]["images"], 6, "{stdout}");
    let (code, _, stderr) = eval("6", &["--extend", "--shard", "0/2"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--shard"), "{stderr}");
}

/// Ctrl-C during a plain evaluation stops at the next batch, prints the attacks that finished
/// and fails with a message (before: exit 130, no message, nothing printed).
#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_during_an_evaluation_prints_what_finished_and_fails() {
    let child = Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
        .args(["eval", "--checkpoint", "embedded", "--n", "4000"])
        .args(["--attacks", "fgsm,pgd,cw", "--steps", "100"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    // As soon as the Ctrl-C handler is in place (Linux shows caught signals in SigCgt: SIGINT
    // is bit 1), which is just before the first attack; 4,000 images × 100 steps of PGD and
    // CW∞ take far longer than this poll.
    let caught = |pid: u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (libc::SIGINT - 1)) != 0)
    };
    let started = std::time::Instant::now();
    while !caught(child.id()) {
        assert!(
            started.elapsed().as_secs() < 120,
            "no Ctrl-C handler after 2 min"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("error: interrupted"), "{stderr}");
    assert!(stderr.contains("of 3 attacks finished"), "{stderr}");
}

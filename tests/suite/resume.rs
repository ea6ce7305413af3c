//! `train --resume`: a run stopped after an epoch and resumed gives the very model one
//! uninterrupted run gives (weights, batch-norm statistics, and so the optimiser's state and
//! the random streams), and a resume that cannot be exact is refused.

use rslad_tui::checkpoint::{self, named_tensors};
use rslad_tui::device::compute_device;
use std::path::Path;
use std::process::Command;

/// The training options of these tests (train's and compare's alike): micro-cnn (batch norm)
/// with Adam (moments).
const TRAINING: [&str; 14] = [
    "--model",
    "micro-cnn",
    "--steps",
    "2",
    "--optimizer",
    "adam",
    "--lr",
    "0.002",
    "--train-n",
    "256",
    "--batch-size",
    "64",
    "--eval-n",
    "20",
];

fn rslad_tui(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
        .args(args)
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!text.contains("panicked"), "{text}");
    (output.status.success(), text)
}

/// SAT (a random attack start each batch) to `out`.
fn train(out: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["train", "--method", "sat", "--out", out.to_str().unwrap()];
    args.extend(TRAINING);
    args.extend(extra);
    rslad_tui(&args)
}

fn weights(path: &Path) -> Vec<(String, Vec<f32>)> {
    let (model, _) = checkpoint::load(path, None, &compute_device()).unwrap();
    named_tensors(&model)
        .into_iter()
        .map(|(name, (_, values))| (name, values))
        .collect()
}

#[test]
fn a_resumed_run_gives_the_model_of_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let straight = dir.path().join("straight");
    let (ok, text) = train(&straight, &["--epochs", "3"]);
    assert!(ok, "{text}");

    // One epoch, then two more in two resumes.
    let pieces = dir.path().join("pieces");
    let (ok, text) = train(&pieces, &["--epochs", "1"]);
    assert!(ok, "{text}");
    for epochs in ["2", "3"] {
        let (ok, text) = train(&pieces, &["--epochs", epochs, "--resume"]);
        assert!(ok, "{text}");
        assert!(text.contains("going on from"), "{text}");
    }
    assert_eq!(weights(&pieces), weights(&straight));
    let card = |p: &Path| checkpoint::read_card(p).unwrap();
    assert_eq!(card(&pieces).metrics.len(), 3);
    assert_eq!(card(&pieces).training, card(&straight).training);

    // Nothing left to do is not an error, and changes nothing.
    let (ok, text) = train(&pieces, &["--epochs", "3", "--resume"]);
    assert!(ok && text.contains("nothing to train"), "{text}");
    assert_eq!(weights(&pieces), weights(&straight));
}

/// The trainer keeps the teacher's logits of each training image from the first epoch on
/// (src/train/teacher_logits.rs); a resumed run starts without them, so its second epoch asks
/// the teacher again. The two must give the same model, for RSLAD (attack and two KL terms)
/// and KD (a temperature). 257 images in batches of 64: each epoch ends on a batch of one
/// image, which is not kept or served (another size). Serving it fails this test on the AVX-512
/// build only (on AVX2 the teacher's logits of one image are those of a larger batch);
/// `kept_logits_serve_batches_of_the_kept_size_only` (src/train/teacher_logits.rs) checks the
/// size rule on both.
#[test]
fn kept_teacher_logits_give_the_model_of_a_run_that_asks_the_teacher() {
    let dir = tempfile::tempdir().unwrap();
    for (method, attack) in [("rslad", ["--steps", "2"].as_slice()), ("kd", &[])] {
        let run = |out: &Path, epochs: &str, resume: bool| {
            let mut args = vec!["train", "--method", method, "--teacher", "embedded"];
            args.extend(attack);
            args.extend([
                "--model",
                "micro-cnn",
                "--optimizer",
                "adam",
                "--lr",
                "0.002",
                "--train-n",
                "257",
                "--batch-size",
                "64",
                "--eval-n",
                "20",
                "--epochs",
                epochs,
                "--out",
                out.to_str().unwrap(),
            ]);
            if resume {
                args.push("--resume");
            }
            let (ok, text) = rslad_tui(&args);
            assert!(ok, "{text}");
        };
        let straight = dir.path().join(format!("{method}-straight"));
        run(&straight, "2", false);
        let pieces = dir.path().join(format!("{method}-pieces"));
        run(&pieces, "1", false);
        run(&pieces, "2", true);
        assert_eq!(weights(&pieces), weights(&straight), "{method}");
    }
}

#[test]
fn a_resume_that_cannot_be_exact_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let (ok, text) = train(&run, &["--epochs", "1"]);
    assert!(ok, "{text}");
    let card_before = std::fs::read(dir.path().join("run.ron")).unwrap();

    // Other settings: refused, naming the setting.
    let (ok, text) = train(&run, &["--epochs", "2", "--resume", "--seed", "7"]);
    assert!(!ok && text.contains("--seed"), "{text}");
    let (ok, text) = train(
        &run,
        &["--epochs", "2", "--resume", "--weight-decay", "0.01"],
    );
    assert!(!ok && text.contains("the optimiser"), "{text}");

    // The optimiser's state of another save: refused.
    let other = dir.path().join("other");
    let (ok, text) = train(&other, &["--epochs", "1", "--seed", "3"]);
    assert!(ok, "{text}");
    std::fs::copy(
        dir.path().join("other.resume"),
        dir.path().join("run.resume"),
    )
    .unwrap();
    let (ok, text) = train(&run, &["--epochs", "2", "--resume"]);
    assert!(!ok && text.contains("belongs to another save"), "{text}");

    // No optimiser state at all (a checkpoint from before --resume): refused.
    std::fs::remove_file(dir.path().join("run.resume")).unwrap();
    let (ok, text) = train(&run, &["--epochs", "2", "--resume"]);
    assert!(!ok && text.contains("run.resume is missing"), "{text}");

    // Nothing to resume, and --resume with --overwrite.
    let (ok, text) = train(&dir.path().join("nothing"), &["--epochs", "2", "--resume"]);
    assert!(!ok && text.contains("no checkpoint at"), "{text}");
    let (ok, text) = train(&run, &["--epochs", "2", "--resume", "--overwrite"]);
    assert!(!ok && text.contains("cannot be used with"), "{text}");

    assert_eq!(
        std::fs::read(dir.path().join("run.ron")).unwrap(),
        card_before,
        "a refused resume changed the checkpoint"
    );
}

fn compare(out: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["compare", "--out", out.to_str().unwrap()];
    args.extend(TRAINING);
    args.extend(["--test-n", "30"]);
    if !extra.contains(&"--autoattack-n") {
        args.extend(["--autoattack-n", "0"]);
    }
    args.extend(extra);
    rslad_tui(&args)
}

/// Each row's method and accuracies (not its times), from a comparison's table.json.
fn accuracies(out: &Path) -> Vec<(String, f64, Vec<f64>)> {
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("table.json")).unwrap()).unwrap();
    table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let robust = row["robust"].as_array().unwrap();
            (
                row["method"].as_str().unwrap().to_string(),
                row["clean"].as_f64().unwrap(),
                robust.iter().map(|r| r.as_f64().unwrap()).collect(),
            )
        })
        .collect()
}

#[test]
fn a_resumed_comparison_gives_the_table_of_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let straight = dir.path().join("straight");
    let (ok, text) = compare(&straight, &["--methods", "natural,sat", "--epochs", "2"]);
    assert!(ok, "{text}");

    // A comparison killed during SAT's second epoch: natural's row is written, SAT's first
    // epoch is saved in its checkpoint with the optimiser's state.
    let stopped = dir.path().join("stopped");
    let (ok, text) = compare(&stopped, &["--methods", "natural", "--epochs", "2"]);
    assert!(ok, "{text}");
    let sat = stopped.join("sat");
    let (ok, text) = train(&sat, &["--epochs", "1"]);
    assert!(ok, "{text}");
    let first_epoch = checkpoint::read_card(&sat).unwrap().metrics[0].seconds;

    let (ok, text) = compare(
        &stopped,
        &["--methods", "natural,sat", "--epochs", "2", "--resume"],
    );
    assert!(ok, "{text}");
    assert!(text.contains("kept its row"), "{text}");
    assert!(text.contains("going on from"), "{text}");
    assert_eq!(accuracies(&stopped), accuracies(&straight));
    assert_eq!(weights(&sat), weights(&straight.join("sat")));
    assert_eq!(checkpoint::read_card(&sat).unwrap().metrics.len(), 2);
    // SAT's train time counts the epoch before the stop too.
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stopped.join("table.json")).unwrap())
            .unwrap();
    assert!(table["rows"][1]["training_seconds"].as_f64().unwrap() >= first_epoch);

    // Everything done: a second resume keeps both rows and trains nothing.
    let (ok, text) = compare(
        &stopped,
        &["--methods", "natural,sat", "--epochs", "2", "--resume"],
    );
    assert!(ok, "{text}");
    assert_eq!(text.matches("kept its row").count(), 2, "{text}");
    assert_eq!(accuracies(&stopped), accuracies(&straight));

    // Other options: the kept row is refused, naming why; --overwrite contradicts --resume.
    let (ok, text) = compare(
        &stopped,
        &[
            "--methods",
            "natural,sat",
            "--epochs",
            "2",
            "--resume",
            "--seed",
            "7",
        ],
    );
    assert!(!ok && text.contains("a row of another table"), "{text}");
    let (ok, text) = compare(&stopped, &["--methods", "sat", "--resume", "--overwrite"]);
    assert!(!ok && text.contains("cannot be used with"), "{text}");
    // A checkpoint with more finished epochs than asked is refused, not evaluated as a row of
    // the shorter run.
    std::fs::remove_file(stopped.join("rows/sat.json")).unwrap();
    let (ok, text) = compare(&stopped, &["--methods", "sat", "--epochs", "1", "--resume"]);
    assert!(!ok && text.contains("has 2 finished epochs"), "{text}");
}

/// A comparison of a natural micro-cnn student with Adam; the learning rate comes next.
const NATURAL_COMPARISON: [&str; 8] = [
    "compare",
    "--methods",
    "natural",
    "--model",
    "micro-cnn",
    "--optimizer",
    "adam",
    "--lr",
];

#[test]
fn a_stopped_comparison_says_to_go_on_with_resume() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    let mut args = NATURAL_COMPARISON.to_vec();
    args.extend(["1e30", "--train-n", "512", "--eval-n", "20"]);
    args.extend(["--out", out.to_str().unwrap()]);
    let (ok, text) = rslad_tui(&args);
    assert!(!ok && text.contains("training diverged"), "{text}");
    // compare's own way on, not train's (`--out` would name the method's checkpoint).
    assert!(
        text.contains(
            "natural is not evaluated, no method finished; go on with the same command and --resume"
        ),
        "{text}"
    );
    assert!(!text.contains("--resume --out"), "{text}");
}

#[test]
fn a_comparison_keeps_its_autoattack_blocks_and_gives_eval_resumes_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    let out_arg = out.to_str().unwrap();
    // A natural student at a small ε: robust on some of the images, so AutoAttack has work
    // to do in both blocks and its accuracy is not a trivial 0.
    let mut options = NATURAL_COMPARISON.to_vec();
    options.extend([
        "0.002",
        "--train-n",
        "2048",
        "--eval-n",
        "20",
        "--epochs",
        "1",
        "--eps",
        "0.03",
        "--test-n",
        "10",
        "--autoattack-n",
        "4",
        "--autoattack-block",
        "2",
        "--out",
        out_arg,
    ]);
    let (ok, text) = rslad_tui(&options);
    assert!(ok, "{text}");
    assert!(
        out.join("natural.autoattack-journal.ron").exists(),
        "{text}"
    );
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(
        table.contains("AutoAttack: first 4, in blocks of 2"),
        "{table}"
    );
    let row_aa = || -> f64 {
        let table: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("table.json")).unwrap())
                .unwrap();
        table["rows"][0]["autoattack"].as_f64().unwrap()
    };
    let compared = row_aa();
    assert!(
        compared > 0.0,
        "AutoAttack broke every image: the check below would be empty"
    );

    // `eval --resume` with the same blocks, on a journal of its own, gives the same number.
    let journal = dir.path().join("eval.journal.ron");
    let (ok, text) = rslad_tui(&[
        "eval",
        "--checkpoint",
        out.join("natural").to_str().unwrap(),
        "--attacks",
        "autoattack",
        "--eps",
        "0.03",
        "--n",
        "4",
        "--block",
        "2",
        "--resume",
        journal.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{text}");
    // Standard output (the JSON) comes first in `text`, the block lines after it.
    let json: serde_json::Value = serde_json::Deserializer::from_str(&text)
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        json["autoattack"]["robust_accuracy"].as_f64().unwrap(),
        compared
    );

    // Stopped after its AutoAttack but before its row: --resume trains and attacks nothing.
    std::fs::remove_file(out.join("rows/natural.json")).unwrap();
    let mut resumed = options.clone();
    resumed.push("--resume");
    let (ok, text) = rslad_tui(&resumed);
    assert!(ok, "{text}");
    assert!(text.contains("nothing to train"), "{text}");
    assert!(text.contains("all 2 AutoAttack blocks done"), "{text}");
    assert_eq!(row_aa(), compared);

    // A row attacked in other blocks belongs to another table.
    let block = resumed
        .iter()
        .position(|&a| a == "--autoattack-block")
        .unwrap()
        + 1;
    resumed[block] = "1";
    let (ok, text) = rslad_tui(&resumed);
    assert!(
        !ok && text.contains("AutoAttack block 2 in the row, 1 now"),
        "{text}"
    );
    resumed[block] = "0";
    let (ok, text) = rslad_tui(&resumed);
    assert!(
        !ok && text.contains("--autoattack-block must be at least 1 image"),
        "{text}"
    );
    // A fresh run refuses the journal an earlier one left, before it trains.
    std::fs::remove_dir_all(out.join("rows")).unwrap();
    for file in ["natural.safetensors", "natural.ron"] {
        std::fs::remove_file(out.join(file)).unwrap();
    }
    let (ok, text) = rslad_tui(&options);
    assert!(
        !ok && text.contains("AutoAttack blocks of an earlier run"),
        "{text}"
    );
    assert!(!text.contains("epoch "), "it trained first: {text}");
}

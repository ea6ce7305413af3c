//! Evaluations and comparisons spread over separate processes (issue 24, docs/scale.md): the
//! real binary run as a job array would run it, each shard its own process sharing only a
//! folder, and the merged result compared with one process doing all the work.

use rslad_tui::eval::journal;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_rslad-tui");

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

fn finished(child: Child, what: &str) -> String {
    let output: Output = child.wait_with_output().expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{what} failed: {stderr}");
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn run_ok(args: &[&str]) -> String {
    finished(spawn(args), &format!("{args:?}"))
}

/// The error `args` fails with (a clean failure, not a panic).
fn run_err(args: &[&str]) -> String {
    let output = spawn(args).wait_with_output().expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{args:?} succeeded");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    stderr
}

/// `value` without its timings (`seconds`, `*_seconds`), which no two runs share.
fn without_timings(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !key.ends_with("seconds"));
            map.values_mut().for_each(without_timings);
        }
        Value::Array(items) => items.iter_mut().for_each(without_timings),
        _ => {}
    }
}

fn json(text: &str) -> Value {
    let mut value: Value = serde_json::from_str(text).expect("valid JSON");
    without_timings(&mut value);
    value
}

/// A small AutoAttack evaluation of the embedded teacher: `n` images in blocks of 2, APGD-CE
/// only (with FGSM, which a shard leaves to the merge), journaled in `journal`.
fn eval_args<'a>(journal: &'a str, n: &'a str) -> Vec<&'a str> {
    vec![
        "eval",
        "--checkpoint",
        "embedded",
        "--attacks",
        "fgsm,autoattack",
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

fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = base.to_vec();
    args.extend_from_slice(extra);
    args
}

#[test]
fn four_shards_in_separate_processes_merge_to_the_single_run_report() {
    let dir = tempfile::tempdir().unwrap();
    let sharded = dir.path().join("aa.ron");
    let single = dir.path().join("single.ron");
    let base = eval_args(sharded.to_str().unwrap(), "16");
    let shards = ["0/4", "1/4", "2/4", "3/4"];
    let children: Vec<Child> = shards
        .iter()
        .map(|s| spawn(&with(&base, &["--shard", s])))
        .collect();
    let mut blocks_run = Vec::new();
    for (child, shard) in children.into_iter().zip(shards) {
        let out = json(&finished(child, shard));
        assert_eq!(out["shard"], shard);
        // 8 blocks of 2 images, interleaved: shard I has blocks I and I + 4.
        let blocks: Vec<u64> = out["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap())
            .collect();
        assert_eq!(blocks.len(), 2, "{shard}: {out}");
        assert_eq!(out["images"], 4);
        blocks_run.extend(blocks);
    }
    blocks_run.sort();
    assert_eq!(blocks_run, (0..8).collect::<Vec<u64>>());
    for shard in 0..4 {
        assert!(
            dir.path()
                .join(format!("aa.ron.part-{shard}-of-4"))
                .exists()
        );
    }
    assert!(!sharded.exists(), "a shard wrote the whole journal");

    let merged = json(&run_ok(&with(&base, &["--merge"])));
    let whole = json(&run_ok(&eval_args(single.to_str().unwrap(), "16")));
    // Every count, the per-image verdicts, the sanity flags and the FGSM row agree.
    assert_eq!(merged, whole);
    assert_eq!(merged["autoattack"]["images"], 16);
    assert_eq!(merged["autoattack"]["robust"].as_array().unwrap().len(), 16);
    // The merged journal is the whole evaluation's: run again, it only reports.
    assert_eq!(json(&run_ok(&base)), whole);
    let sharded = journal::read(&sharded).unwrap().expect("merged journal");
    let single = journal::read(&single).unwrap().expect("single journal");
    assert_eq!(sharded.key, single.key);
    assert_eq!(sharded.shard, None);
    assert_eq!(sharded.blocks.len(), 8);
    for (merged, whole) in sharded.blocks.iter().zip(&single.blocks) {
        assert_eq!(merged.robust, whole.robust);
        assert_eq!(merged.adversarial, whole.adversarial);
    }
}

/// Runs shards `0/2` and `1/2` of a 4-image evaluation in `dir`, the second with `extra`.
fn two_shards(dir: &Path, extra: &[&str]) -> Vec<String> {
    let journal = dir.join("aa.ron").to_str().unwrap().to_string();
    let base: Vec<String> = eval_args(&journal, "4")
        .into_iter()
        .map(String::from)
        .collect();
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    run_ok(&with(&base, &["--shard", "0/2"]));
    run_ok(&with(&with(&base, &["--shard", "1/2"]), extra));
    base.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_part_of_another_evaluation_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let base = two_shards(dir.path(), &["--seed", "7"]);
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let error = run_err(&with(&base, &["--merge"]));
    assert!(
        error.contains("aa.ron.part-1-of-2 belongs to another evaluation")
            && error.contains("--seed 7 in the journal, 0 now"),
        "{error}"
    );
    // Merged as another evaluation (other images, other components): every part is foreign.
    let mut other_n = with(&base, &["--merge"]);
    let at = other_n.iter().position(|a| *a == "--n").unwrap();
    other_n[at + 1] = "6";
    let error = run_err(&other_n);
    assert!(
        error.contains("aa.ron.part-0-of-2 belongs to another evaluation")
            && error.contains("4 in the journal, 6 now"),
        "{error}"
    );
    let mut other_components = with(&base, &["--merge"]);
    let at = other_components
        .iter()
        .position(|a| *a == "apgd-ce")
        .unwrap();
    other_components[at] = "apgd-dlr";
    let error = run_err(&other_components);
    assert!(error.contains("components custom (apgd-ce)"), "{error}");
    assert!(!dir.path().join("aa.ron").exists(), "a refused merge wrote");
}

#[test]
fn a_missing_or_duplicated_shard_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let base = two_shards(dir.path(), &[]);
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let part = |i: usize| dir.path().join(format!("aa.ron.part-{i}-of-2"));
    let merge = with(&base, &["--merge"]);

    // A shard stopped before its block finished: named, and its part continues when run again.
    let mut stopped = journal::read(&part(1)).unwrap().unwrap();
    stopped.blocks.clear();
    std::fs::write(part(1), ron::to_string(&stopped).unwrap()).unwrap();
    let error = run_err(&merge);
    assert!(
        error.contains("aa.ron.part-1-of-2 has 0 of its 1 blocks: run shard 1/2 again"),
        "{error}"
    );
    run_ok(&with(&base, &["--shard", "1/2"]));
    assert_eq!(journal::read(&part(1)).unwrap().unwrap().blocks.len(), 1);

    // Shard 0's part copied over shard 1's: shard 0 twice, shard 1 nowhere.
    let shard_1 = std::fs::read(part(1)).unwrap();
    std::fs::copy(part(0), part(1)).unwrap();
    let error = run_err(&merge);
    assert!(
        error.contains("aa.ron.part-1-of-2 holds shard 0/2, not 1/2")
            && error.contains("shard 0/2 is duplicated"),
        "{error}"
    );

    std::fs::remove_file(part(1)).unwrap();
    let error = run_err(&merge);
    assert!(
        error.contains("shard is missing: 1/2") && error.contains("aa.ron.part-1-of-2"),
        "{error}"
    );
    // Without --merge, the evaluation does not start over next to the parts.
    let error = run_err(&base);
    assert!(error.contains("add --merge to merge them"), "{error}");
    // Parts of two shard counts are not mixed.
    std::fs::write(part(1), shard_1).unwrap();
    run_ok(&with(&base, &["--shard", "0/1"]));
    let error = run_err(&merge);
    assert!(error.contains("different shard counts"), "{error}");
    std::fs::remove_file(dir.path().join("aa.ron.part-0-of-1")).unwrap();
    run_ok(&merge);

    let error = run_err(&with(&base, &["--shard", "2/2"]));
    assert!(error.contains("'2/2' is not a shard"), "{error}");
    let error = run_err(&with(&base, &["--shard", "0/3"]));
    assert!(error.contains("only 2 blocks"), "{error}");
}

#[test]
fn compare_rows_from_separate_jobs_assemble_into_the_table_of_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = dir.path().join("jobs");
    let whole = dir.path().join("whole");
    let quick = |out: &Path| -> Vec<String> {
        [
            "compare",
            "--model",
            "micro-cnn",
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
            "4",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let job_args = quick(&jobs);
    let job_args: Vec<&str> = job_args.iter().map(String::as_str).collect();
    let children: Vec<Child> = ["natural", "sat"]
        .iter()
        .map(|m| spawn(&with(&job_args, &["--only", m])))
        .collect();
    for child in children {
        finished(child, "a compare --only job");
    }
    assert!(jobs.join("rows/natural.json").exists() && jobs.join("rows/sat.json").exists());
    assert!(!jobs.join("table.json").exists(), "a job wrote the table");

    let whole_args = quick(&whole);
    let whole_args: Vec<&str> = whole_args.iter().map(String::as_str).collect();
    run_ok(&with(&whole_args, &["--methods", "natural,sat"]));
    let stdout = run_ok(&with(
        &job_args,
        &["--assemble", "--methods", "natural,sat,trades"],
    ));
    assert!(stdout.contains("Missing rows: trades"), "{stdout}");
    let read = |path: &Path| json(&std::fs::read_to_string(path).unwrap());
    let assembled = read(&jobs.join("table.json"));
    let one_run = read(&whole.join("table.json"));
    assert_eq!(assembled["missing"], serde_json::json!(["trades"]));
    // Same seed, same settings: the jobs' rows are the one run's.
    assert_eq!(assembled["rows"], one_run["rows"]);
    assert_eq!(assembled["rows"].as_array().unwrap().len(), 2);

    // A row trained with other options is not put into this table, and the option is named.
    let error = run_err(&with(
        &job_args,
        &["--assemble", "--methods", "natural", "--seed", "9"],
    ));
    assert!(
        error.contains("rows/natural.json is a row of another table")
            && error.contains("in the row, 9 now"),
        "{error}"
    );
    let error = run_err(&with(&job_args, &["--assemble", "--methods", "trades"]));
    assert!(error.contains("no rows of trades"), "{error}");
    // A damaged row file is named, not skipped as missing.
    let sat = jobs.join("rows/sat.json");
    let text = std::fs::read_to_string(&sat).unwrap();
    std::fs::write(&sat, &text[..text.len() / 2]).unwrap();
    let error = run_err(&with(
        &job_args,
        &["--assemble", "--methods", "natural,sat"],
    ));
    assert!(
        error.contains("rows/sat.json is not a row of compare's table"),
        "{error}"
    );
}

#[test]
fn a_teacher_makes_one_table_however_its_path_is_spelled() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/teachers");
    let place_teacher = |name: &str| {
        for extension in ["ron", "safetensors"] {
            let from = shipped.join(format!("{name}.{extension}"));
            std::fs::copy(from, dir.path().join(format!("t.{extension}"))).unwrap();
        }
    };
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let compare = |teacher: &Path, extra: &[&str]| -> Vec<String> {
        let base = [
            "compare",
            "--model",
            "micro-cnn",
            "--epochs",
            "1",
            "--train-n",
            "64",
            "--eval-n",
            "10",
            "--eval-steps",
            "0",
            "--test-n",
            "10",
            "--autoattack-n",
            "0",
            "--out",
            out,
            "--teacher",
            teacher.to_str().unwrap(),
        ];
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    fn strs(args: &[String]) -> Vec<&str> {
        args.iter().map(String::as_str).collect()
    }

    place_teacher("small-cnn-fashion-sat");
    run_ok(&strs(&compare(
        &dir.path().join("t"),
        &["--only", "natural"],
    )));
    // The same weights named by another path: the row belongs to this table.
    let respelled = dir.path().join(".").join("t.safetensors");
    let stdout = run_ok(&strs(&compare(
        &respelled,
        &["--assemble", "--methods", "natural"],
    )));
    assert!(stdout.contains("| natural |"), "{stdout}");
    // Other weights at the same path: another table, and the teacher is named.
    place_teacher("small-cnn-fashion-sat-15ep");
    let assemble = ["--assemble", "--methods", "natural"];
    let error = run_err(&strs(&compare(&dir.path().join("t"), &assemble)));
    assert!(
        error.contains("is a row of another table") && error.contains("--teacher Some(\"sha256:"),
        "{error}"
    );
}

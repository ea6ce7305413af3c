//! Sessions: recording, saving and loading, exact re-execution, the first divergence, the
//! confinement of paths, defensive loading (no panic on any input), playback navigation, and
//! the shipped lessons re-executing against their recordings.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rslad_tui::lab::command;
use rslad_tui::lab::live::Shared;
use rslad_tui::lab::runner::Runner;
use rslad_tui::lab::session::{self, Entry, Session, SessionError};
use rslad_tui::lab::snapshot::LogLevel;
use rslad_tui::lab::snapshot::compare::{Kind, Tolerances, compare};
use rslad_tui::workbench::playback::Playback;
use std::path::Path;
use std::sync::Arc;

fn runner() -> Runner {
    Runner::new(Arc::new(Shared::default()), 0).expect("the default session opens")
}

/// A short session: two batches of two methods, a marker, an attack, a sample.
fn record() -> Session {
    let mut r = runner();
    for line in [
        "step batch 1",
        "mark \"Section one\" a note for students",
        "attack fgsm n=20",
        "show sample 2",
        "method sat eps-warmup=0",
        "step batch 1",
        "eps 1.5",
    ] {
        let _ = r.run_line(line);
    }
    r.session().clone()
}

#[test]
fn a_session_round_trips_and_re_executes_bit_identically() {
    let recorded = record();
    assert_eq!(
        recorded.entries.len(),
        6,
        "the bad `eps 1.5` does not parse, so is not recorded"
    );
    assert_eq!(recorded.markers(), [(1, "Section one")]);
    let Entry::Command { outcome, .. } = &recorded.entries[2] else {
        panic!("entry 2 is the attack");
    };
    assert_eq!(
        outcome.snapshot.attack.as_ref().unwrap().rows[0].name,
        "FGSM"
    );
    assert!(outcome.log[0].text.contains("20 test images"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ron");
    session::save(&recorded, &path).unwrap();
    let loaded = session::load(&path).unwrap();
    assert_eq!(loaded, recorded);

    let mut again = runner();
    let report = again.replay(&loaded).unwrap();
    assert_eq!(report.divergence, None);
    assert_eq!((report.commands, report.markers), (5, 1));
    assert_eq!(
        report.max_difference, 0.0,
        "same machine, same backend: bit-identical"
    );
}

#[test]
fn a_changed_result_is_the_first_divergence() {
    let mut recorded = record();
    let Entry::Command { outcome, .. } = &mut recorded.entries[2] else {
        panic!();
    };
    outcome.snapshot.attack.as_mut().unwrap().rows[0].robust += 5.0;
    let report = runner().replay(&recorded).unwrap();
    let (index, line, what) = report.divergence.clone().expect("a divergence");
    assert_eq!((index, line.as_str()), (2, "attack fgsm n=20"));
    assert!(what.contains("FGSM robust accuracy"), "{what}");
    assert!(
        report
            .summary(&Tolerances::default())
            .contains("diverged at entry 3")
    );
}

/// The outcomes of the recorded commands, in order.
fn outcomes(session: &Session) -> Vec<&session::Outcome> {
    session
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Command { outcome, .. } => Some(outcome.as_ref()),
            Entry::Mark { .. } => None,
        })
        .collect()
}

#[test]
fn a_changed_pixel_passes_by_what_the_perturbation_does_a_changed_perturbation_does_not() {
    let recorded = record();
    let shown = outcomes(&recorded)[2]; // `show sample 2`
    let view = shown.snapshot.sample.as_ref().expect("a sample view");
    let defaults = Tolerances::default();
    assert!(compare(shown, shown, &Tolerances::exact()).matches());

    // Another machine flips one gradient sign in one PGD step: one pixel moves by a whole
    // step the other way. Pixel by pixel that is a divergence; by what it does it is not.
    let mut flipped = shown.clone();
    let sample = flipped.snapshot.sample.as_mut().unwrap();
    let k = (0..sample.natural.len())
        .find(|&k| sample.adversarial[k] > sample.natural[k] + 0.1)
        .expect("a pixel the attack brightened");
    sample.adversarial[k] -= 0.1;
    let exact = compare(shown, &flipped, &Tolerances::exact());
    assert!(!exact.matches());
    assert!(
        exact.fields["sample.adversarial image"].mismatched == 1,
        "{:?}",
        exact.fields
    );
    let lenient = compare(shown, &flipped, &defaults);
    assert!(lenient.matches(), "{:?}", lenient.divergence);
    assert!(lenient.max_difference > 0.09, "still not bit-identical");

    // No perturbation at all is another perturbation: its size differs.
    let mut none = shown.clone();
    let sample = none.snapshot.sample.as_mut().unwrap();
    sample.adversarial = sample.natural.clone();
    let comparison = compare(shown, &none, &defaults);
    assert!(
        comparison
            .divergence
            .as_deref()
            .is_some_and(|d| d.contains("perturbation")),
        "{:?}",
        comparison.divergence
    );

    // Every pixel pushed the other way flips the heatmap's colours.
    let mut reversed = shown.clone();
    let sample = reversed.snapshot.sample.as_mut().unwrap();
    for (a, n) in sample.adversarial.iter_mut().zip(&view.natural) {
        *a = (2.0 * n - *a).clamp(0.0, 1.0);
    }
    assert!(!compare(shown, &reversed, &defaults).matches());

    // A student that predicts another class under attack, with a clear margin, is caught.
    let mut predicts = shown.clone();
    let probabilities = &mut predicts
        .snapshot
        .sample
        .as_mut()
        .unwrap()
        .student_adversarial;
    let top = (0..probabilities.len())
        .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]))
        .unwrap();
    let other = (top + 1) % probabilities.len();
    probabilities.iter_mut().for_each(|p| *p = 0.0);
    probabilities[other] = 1.0;
    let comparison = compare(shown, &predicts, &defaults);
    assert!(
        comparison.fields["sample.adversarial prediction"].mismatched == 1
            || view.student_adversarial[top] < 0.6,
        "{:?}",
        comparison.fields
    );
    assert!(!comparison.matches());
}

/// The commands of `record()`, with another seed or another method for the second run.
fn record_with(seed: u64, method: &str) -> Session {
    let mut r = Runner::new(Arc::new(Shared::default()), seed).unwrap();
    for line in [
        "step batch 1",
        "attack fgsm n=20",
        "show sample 2",
        method,
        "step batch 1",
        "attack pgd n=20 steps=5",
    ] {
        r.run_line(line).unwrap();
    }
    r.session().clone()
}

/// The default tolerances pass other kernels, but a changed run is still caught by its
/// numbers, not only by the status line that names its seed or method.
#[test]
fn another_seed_or_another_method_is_caught_by_the_numbers() {
    let base = record_with(0, "method sat eps-warmup=0");
    let changed = [
        ("seed 1", record_with(1, "method sat eps-warmup=0")),
        (
            "method trades",
            record_with(0, "method trades eps-warmup=0"),
        ),
    ];
    for (what, other) in &changed {
        let mut numeric_mismatches = std::collections::BTreeSet::new();
        for (recorded, got) in outcomes(&base).into_iter().zip(outcomes(other)) {
            let mut got = got.clone();
            got.snapshot.status = recorded.snapshot.status.clone();
            let comparison = compare(recorded, &got, &Tolerances::default());
            numeric_mismatches.extend(
                comparison
                    .fields
                    .iter()
                    .filter(|(_, t)| t.kind != Kind::Exact && t.mismatched > 0)
                    .map(|(field, _)| *field),
            );
        }
        assert!(
            !numeric_mismatches.is_empty(),
            "{what}: no number differs beyond the default tolerances"
        );
        eprintln!("{what}: caught by {numeric_mismatches:?}");
    }
}

#[test]
fn tolerances_parse_by_kind_and_refuse_nonsense() {
    assert_eq!(Tolerances::parse("exact"), Ok(Tolerances::exact()));
    assert_eq!(Tolerances::parse("default"), Ok(Tolerances::default()));
    let custom = Tolerances::parse("accuracy=0.5, probability=0.05").unwrap();
    assert_eq!(custom.accuracy, 0.5);
    assert_eq!(custom.probability, 0.05);
    assert_eq!(custom.loss, Tolerances::default().loss);
    for bad in [
        "0.01",
        "speed=1",
        "accuracy=-1",
        "accuracy=NaN",
        "accuracy=x",
        "pixels-reversed=2",
    ] {
        let error = Tolerances::parse(bad).expect_err(bad);
        assert!(!error.is_empty());
    }
    assert!(
        Tolerances::parse("speed=1")
            .unwrap_err()
            .contains("accuracy, loss, probability, pixel, pixels-reversed")
    );
}

#[test]
fn a_session_from_other_defaults_is_refused_before_running_anything() {
    let mut recorded = record();
    assert!(
        recorded.settings.contains("student micro-cnn"),
        "{}",
        recorded.settings
    );
    assert!(
        recorded.settings.contains("rslad α=0.833"),
        "{}",
        recorded.settings
    );
    recorded.settings = recorded.settings.replace("lr 0.002", "lr 0.1");
    let report = runner().replay(&recorded).unwrap();
    assert_eq!(report.commands, 0);
    let (_, _, what) = report.divergence.unwrap();
    assert!(
        what.contains("starts from") && what.contains("lr 0.1"),
        "{what}"
    );
}

#[test]
fn paths_outside_the_session_folder_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("sessions");
    std::fs::create_dir(&folder).unwrap();
    let mut r = runner();
    r.confine_to(&folder);
    for line in [
        "save ../../x",
        "save ../escaped",
        "save /tmp/rslad-tui-escape",
        "load ../x",
        "load /etc/passwd",
        "teacher /etc/passwd",
        "teacher ../t",
        "data ../data",
        "data /",
    ] {
        let error = r.run_line(line).expect_err(line).to_string();
        assert!(error.contains("refused"), "{line}: {error}");
    }
    assert!(!root.path().join("escaped.safetensors").exists());
    assert!(!Path::new("/tmp/rslad-tui-escape.safetensors").exists());
    r.run_line("save inside/student").unwrap();
    assert!(folder.join("inside/student.safetensors").exists());

    // The same through a session file from elsewhere: its `save ../../x` fails and writes nothing.
    let mut hostile = Session::new(0);
    hostile.entries.push(Entry::Command {
        line: "save ../../owned".into(),
        at: 0.0,
        outcome: Box::default(),
    });
    let report = r.replay(&hostile).unwrap();
    assert!(report.divergence.is_some());
    assert!(!root.path().join("../owned.safetensors").exists());
    assert!(!root.path().join("owned.safetensors").exists());
}

#[test]
fn bad_files_get_errors_that_name_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let good = ron::ser::to_string_pretty(&record(), Default::default()).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let error = session::load(&write("garbage.ron", "not a session")).unwrap_err();
    assert!(
        matches!(error, SessionError::Syntax { line: 1, .. }),
        "{error}"
    );

    let error = session::load(&write("truncated.ron", &good[..good.len() / 2])).unwrap_err();
    let SessionError::Syntax { line, .. } = &error else {
        panic!("{error}");
    };
    assert!(*line > 1, "{error}");
    assert!(error.to_string().contains("truncated.ron, line"), "{error}");

    let newer = good
        .replacen("format: 1", "format: 9", 1)
        .replacen("seed:", "origin:", 1);
    let error = session::load(&write("newer.ron", &newer)).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("newer rslad-tui (session format 9"),
        "{error}"
    );

    let long_line = good.replacen("\"step batch 1\"", &format!("\"{}\"", "x".repeat(5000)), 1);
    let error = session::load(&write("long.ron", &long_line)).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("field `entries[0].line` is 5000 characters"),
        "{error}"
    );

    let mut broken = record();
    let Entry::Command { outcome, .. } = &mut broken.entries[0] else {
        panic!();
    };
    outcome.snapshot.sample.as_mut().unwrap().natural.pop();
    let text = ron::ser::to_string(&broken).unwrap();
    let error = session::load(&write("pixels.ron", &text)).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("sample.natural` has 783 values for 784 pixels"),
        "{error}"
    );

    let huge = dir.path().join("huge.ron");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(65 << 20)
        .unwrap();
    let error = session::load(&huge).unwrap_err();
    assert!(matches!(error, SessionError::TooBig { .. }), "{error}");

    let error = session::load(&dir.path().join("missing.ron")).unwrap_err();
    assert!(error.to_string().contains("missing.ron"), "{error}");
}

#[test]
fn the_loader_never_panics_on_mutated_files() {
    let mut small = Session::new(3);
    small.entries.push(Entry::Mark {
        title: "t".into(),
        note: "n".into(),
        at: 0.5,
    });
    let mut r = runner();
    r.run_line("attack fgsm n=5").unwrap();
    small.entries.extend(r.session().entries.iter().cloned());
    let text = ron::ser::to_string(&small).unwrap();
    let bytes = text.as_bytes();
    let mut rng = StdRng::seed_from_u64(7);
    let alphabet = b"()[]{},:\"'0123456789.-eE abcxyzNoneSome\\\n";
    let mut parsed = 0;
    for _ in 0..3000 {
        let mut mutated = bytes.to_vec();
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..mutated.len());
            match rng.gen_range(0..4) {
                0 => mutated[at] = alphabet[rng.gen_range(0..alphabet.len())],
                1 => {
                    mutated.remove(at);
                }
                2 => mutated.insert(at, alphabet[rng.gen_range(0..alphabet.len())]),
                _ => mutated.truncate(at.max(1)),
            }
        }
        let text = String::from_utf8_lossy(&mutated);
        if session::parse(&text, Path::new("fuzz.ron")).is_ok() {
            parsed += 1;
        }
    }
    // Most mutations break the syntax; some (inside numbers or strings) still parse.
    assert!(parsed < 3000);
}

#[test]
fn the_command_parser_never_panics() {
    let mut rng = StdRng::seed_from_u64(11);
    let words = [
        "step",
        "batch",
        "method",
        "rslad",
        "alpha=",
        "5/6",
        "attack",
        "pgd",
        "n=",
        "eps=",
        "steps=",
        "show",
        "sample",
        "mark",
        "\"",
        "save",
        "session",
        "load",
        "..",
        "/",
        "-1",
        "1e309",
        "0/0",
        "é",
        "∞",
        "=",
        " ",
        "\t",
        "99999999999999999999",
        "help",
        "data",
    ];
    for _ in 0..20_000 {
        let mut line = String::new();
        for _ in 0..rng.gen_range(0..7) {
            line.push_str(words[rng.gen_range(0..words.len())]);
            if rng.gen_bool(0.7) {
                line.push(' ');
            }
        }
        let _ = command::parse(&line);
        let _ = command::complete(&line);
        let _ = command::hint(&line);
    }
}

#[test]
fn playback_steps_and_jumps_between_markers() {
    let recorded = record();
    let mut playback = Playback::new(recorded.clone());
    assert_eq!(playback.len(), 6);
    let start = playback.snapshot();
    assert!(start.sample.is_none() && start.log.is_empty());
    playback.forward();
    let one = playback.snapshot();
    assert_eq!(one.status.batch, 1);
    assert_eq!(one.log[0].level, LogLevel::Command);
    assert_eq!(one.log[0].text, "step batch 1");
    playback.next_marker();
    assert_eq!(playback.position, 2, "just after the marker");
    assert!(
        playback
            .snapshot()
            .log
            .iter()
            .any(|l| l.text == "■ Section one: a note for students")
    );
    playback.forward();
    assert_eq!(playback.snapshot().attack.unwrap().rows[0].name, "FGSM");
    playback.previous_marker();
    assert_eq!(playback.position, 2);
    playback.previous_marker();
    assert_eq!(playback.position, 0);
    for _ in 0..10 {
        playback.forward();
    }
    assert_eq!(playback.position, 6);
    assert!(
        playback
            .snapshot()
            .status
            .busy
            .unwrap()
            .contains("playback 6/6")
    );
    playback.faster();
    assert!(playback.delay() <= std::time::Duration::from_secs(1));
}

//! The shipped lessons re-execute and match their recordings: bit-identical on the kernels
//! that recorded them, within the default tolerances on the others. A binary of its own: CI
//! builds it a second time without the `avx512` feature to run it on gemm's AVX2 kernels
//! (docs/replay.md), and that build should not have to compile the whole suite. One test per
//! lesson, so the test threads replay them side by side.

use rslad_tui::lab::live::Shared;
use rslad_tui::lab::runner::Runner;
use rslad_tui::lab::session;
use rslad_tui::lab::snapshot::compare::Tolerances;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The shipped lessons, each with the number of its commands re-executed here (a debug
/// build); `rslad-tui replay --execute sessions/NAME.ron` re-runs all of it in a few minutes
/// in release. Lesson 4 trains for 3 epochs before its first attack: its first 4 commands,
/// through its first `diagnose` (whose loss profile the AVX2 build's student, with another
/// image ranked highest, must draw around the recorded image: docs/replay.md).
const LESSONS: [(&str, usize); 4] = [
    ("lesson-1-soft-labels.ron", 6),
    ("lesson-2-rslad-ard-sat.ron", 6),
    ("lesson-3-autoattack.ron", 3),
    ("lesson-4-illusion.ron", 4),
];

fn sessions_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions")
}

fn replays_and_matches(name: &str) {
    let commands = LESSONS
        .iter()
        .find(|(lesson, _)| *lesson == name)
        .map(|(_, commands)| *commands)
        .expect("a shipped lesson");
    let folder = sessions_folder();
    let path = folder.join(name);
    let recorded = session::load(&path).unwrap();
    assert!(
        recorded.markers().len() >= 4,
        "{}: a lesson has markers",
        path.display()
    );
    let same_machine = recorded.backend == rslad_tui::device::backend_id();
    let mut r = Runner::new(Arc::new(Shared::default()), 0).expect("the default session opens");
    r.confine_to(&folder);
    r.set_tolerances(if same_machine {
        Tolerances::exact()
    } else {
        Tolerances::default()
    });
    let report = r.replay_first(&recorded, commands).unwrap();
    assert_eq!(report.divergence, None, "{}", path.display());
    assert_eq!(report.commands, commands, "{}", path.display());
    eprintln!(
        "{}: {} (recorded on {}, here {})",
        path.display(),
        report.summary(&Tolerances::default()),
        recorded.backend,
        rslad_tui::device::backend_id()
    );
}

/// Every recorded lesson in sessions/ has its test below (a new one must be added to
/// `LESSONS` and given a test).
#[test]
fn every_shipped_lesson_is_replayed() {
    let mut shipped: Vec<String> = std::fs::read_dir(sessions_folder())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".ron"))
        .collect();
    shipped.sort();
    let listed: Vec<&str> = LESSONS.iter().map(|(name, _)| *name).collect();
    assert_eq!(shipped, listed);
}

#[test]
fn lesson_1_re_executes_and_matches_its_recording() {
    replays_and_matches("lesson-1-soft-labels.ron");
}

#[test]
fn lesson_2_re_executes_and_matches_its_recording() {
    replays_and_matches("lesson-2-rslad-ard-sat.ron");
}

#[test]
fn lesson_3_re_executes_and_matches_its_recording() {
    replays_and_matches("lesson-3-autoattack.ron");
}

#[test]
fn lesson_4_re_executes_and_matches_its_recording() {
    replays_and_matches("lesson-4-illusion.ron");
}

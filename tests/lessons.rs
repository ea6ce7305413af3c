//! The shipped lessons re-execute and match their recordings: bit-identical on the kernels
//! that recorded them, within the default tolerances on the others. A binary of its own: CI
//! builds it a second time without the `avx512` feature to run it on gemm's AVX2 kernels
//! (docs/replay.md), and that build should not have to compile the whole suite.

use rslad_tui::lab::live::Shared;
use rslad_tui::lab::runner::Runner;
use rslad_tui::lab::session;
use rslad_tui::lab::snapshot::compare::Tolerances;
use std::path::Path;
use std::sync::Arc;

fn runner() -> Runner {
    Runner::new(Arc::new(Shared::default()), 0).expect("the default session opens")
}

/// Commands of each shipped lesson re-executed in the suite (a debug build); `rslad-tui
/// replay --execute sessions/NAME.ron` re-runs all of it in a few minutes in release.
/// Lesson 4 trains for 3 epochs before its first attack: its first 2 commands only.
fn lesson_prefix(path: &Path) -> usize {
    if path.ends_with("lesson-4-illusion.ron") {
        2
    } else {
        6
    }
}

#[test]
fn the_shipped_lessons_re_execute_and_match_their_recordings() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions");
    let mut lessons: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    lessons.sort();
    assert_eq!(lessons.len(), 4, "{lessons:?}");
    for path in lessons {
        let recorded = session::load(&path).unwrap();
        assert!(
            recorded.markers().len() >= 4,
            "{}: a lesson has markers",
            path.display()
        );
        let same_machine = recorded.backend == rslad_tui::device::backend_id();
        let mut r = runner();
        r.confine_to(&folder);
        r.set_tolerances(if same_machine {
            Tolerances::exact()
        } else {
            Tolerances::default()
        });
        let report = r.replay_first(&recorded, lesson_prefix(&path)).unwrap();
        assert_eq!(report.divergence, None, "{}", path.display());
        assert!(report.commands >= 1);
        eprintln!(
            "{}: {} (recorded on {}, here {})",
            path.display(),
            report.summary(&Tolerances::default()),
            recorded.backend,
            rslad_tui::device::backend_id()
        );
    }
}

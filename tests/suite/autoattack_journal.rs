//! `eval --resume`: AutoAttack in blocks through a journal file. An interrupted run continues
//! where it stopped and gives the same report as an uninterrupted one; a journal of another
//! evaluation, or a damaged one, is refused and left untouched.

use rslad_tui::attack::autoattack::{AutoAttackConfig, AutoAttackReport, Component, Version};
use rslad_tui::data::{self, DataSource, DatasetKind, ImageSet};
use rslad_tui::device::autodiff_device;
use rslad_tui::eval::journal::{self, JournalKey};
use rslad_tui::progress::Silent;
use rslad_tui::zoo::Model;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

const WEIGHTS: &str = "test-weights";

fn fixture() -> (Model, ImageSet) {
    let data = data::load(DatasetKind::Mnist, &DataSource::Embedded).expect("embedded data");
    // The shipped teacher: accurate, so the attack has points to work on, and not perfectly
    // robust at ε = 0.35, so it breaks some of them.
    let (model, _) = rslad_tui::teacher::embedded(&autodiff_device()).expect("embedded teacher");
    (model, data.test.take(6))
}

/// APGD-CE alone keeps the test fast; the blocks work the same for any version.
fn config(seed: u64) -> AutoAttackConfig {
    AutoAttackConfig {
        epsilon: 0.35,
        version: Version::Custom(vec![Component::ApgdCe]),
        seed,
        batch_size: 200,
    }
}

/// Runs (or continues) the evaluation at `path`; `stop_after` raises the cancel flag once that
/// many blocks have finished in this call. Returns the report (None if cancelled) and the
/// number of blocks this call ran.
fn run_counting(
    model: &Model,
    test: &ImageSet,
    path: &Path,
    seed: u64,
    stop_after: Option<usize>,
) -> anyhow::Result<(Option<AutoAttackReport>, usize)> {
    let key = JournalKey::new(WEIGHTS, test, &config(seed), 2)?;
    let mut journal = journal::open(path, key)?;
    let cancel = AtomicBool::new(false);
    let mut finished = 0;
    let mut count = |_: journal::BlockDone| {
        finished += 1;
        if Some(finished) == stop_after {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let report = journal::autoattack_in_blocks(
        model,
        test,
        &mut journal,
        path,
        &Silent,
        &cancel,
        &mut count,
    )?;
    Ok((report, finished))
}

fn run(
    model: &Model,
    test: &ImageSet,
    path: &Path,
    seed: u64,
    stop_after: Option<usize>,
) -> anyhow::Result<Option<AutoAttackReport>> {
    run_counting(model, test, path, seed, stop_after).map(|(report, _)| report)
}

#[test]
fn an_interrupted_evaluation_continues_to_the_same_report() {
    let (model, test) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let interrupted = dir.path().join("interrupted.ron");
    let straight = dir.path().join("straight.ron");

    assert!(
        run(&model, &test, &interrupted, 0, Some(1))
            .unwrap()
            .is_none()
    );
    let on_disk = journal::read(&interrupted)
        .unwrap()
        .expect("journal written");
    assert_eq!(on_disk.blocks.len(), 1, "the finished block is kept");

    let (resumed, ran) = run_counting(&model, &test, &interrupted, 0, None).unwrap();
    let resumed = resumed.unwrap();
    assert_eq!(ran, 2, "only the two missing blocks run");
    let whole = run(&model, &test, &straight, 0, None).unwrap().unwrap();
    assert_eq!(resumed.images, 6);
    assert_eq!(resumed.robust, whole.robust);
    assert_eq!(resumed.clean_accuracy, whole.clean_accuracy);
    assert_eq!(resumed.robust_accuracy, whole.robust_accuracy);
    assert_eq!(resumed.components.len(), 1);
    assert_eq!(resumed.components[0].broken, whole.components[0].broken);
    assert_eq!(
        journal::read(&interrupted).unwrap().unwrap().blocks.len(),
        3
    );
    // The evaluation did real work: points attacked, some broken, some not.
    let result = &resumed.components[0];
    assert!(
        result.broken > 0 && result.broken < result.attacked,
        "{result:?}"
    );

    // A finished journal answers again without attacking.
    let (again, ran) = run_counting(&model, &test, &interrupted, 0, None).unwrap();
    assert_eq!(ran, 0);
    assert_eq!(again.unwrap().robust, resumed.robust);
}

#[test]
fn a_journal_of_another_evaluation_is_refused_and_left_alone() {
    let (model, test) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.ron");
    assert!(run(&model, &test, &path, 0, Some(1)).unwrap().is_none());
    let before = std::fs::read(&path).unwrap();

    let error = run(&model, &test, &path, 1, None).unwrap_err().to_string();
    assert!(
        error.contains("another evaluation") && error.contains("--seed 0 in the journal, 1 now"),
        "{error}"
    );
    let fewer = test.take(5);
    let error = run(&model, &fewer, &path, 0, None).unwrap_err().to_string();
    assert!(error.contains("test images"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // A journal of a later layout is named as such.
    let later = String::from_utf8(before.clone())
        .unwrap()
        .replacen("format: 1,", "format: 2,", 1);
    std::fs::write(&path, &later).unwrap();
    let error = format!("{:#}", run(&model, &test, &path, 0, None).unwrap_err());
    assert!(error.contains("journal format 2"), "{error}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), later);

    std::fs::write(&path, "not a journal").unwrap();
    let error = format!("{:#}", run(&model, &test, &path, 0, None).unwrap_err());
    assert!(error.contains("not an AutoAttack journal"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), b"not a journal");

    assert!(JournalKey::new(WEIGHTS, &test, &config(0), 0).is_err());
}

/// No images: an error, not an empty report (an accuracy of 0 images means nothing; issue
/// 21, item 13).
#[test]
fn an_empty_test_set_is_an_error() {
    let (model, test) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let error = run(
        &model,
        &test.take(0),
        &dir.path().join("empty.ron"),
        0,
        None,
    )
    .unwrap_err();
    let error = format!("{error:#}");
    assert!(error.contains("no images to evaluate"), "{error}");
}

/// `eval --resume --extend`: a finished evaluation of the first 4 images, grown to 6, runs only
/// the new block and reports what one evaluation of the 6 images reports.
#[test]
fn an_extended_journal_runs_only_the_new_blocks_and_matches_the_larger_evaluation() {
    let (model, test) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let grown = dir.path().join("grown.ron");
    let straight = dir.path().join("straight.ron");
    let first_four = run(&model, &test.take(4), &grown, 0, None)
        .unwrap()
        .unwrap();

    let key = JournalKey::new(WEIGHTS, &test, &config(0), 2).unwrap();
    // Without --extend the journal is another evaluation, and the error says what to add.
    let error = journal::open(&grown, key.clone()).unwrap_err().to_string();
    assert!(error.contains("--extend"), "{error}");
    assert_eq!(journal::extend(&grown, &key, &test).unwrap(), Some(4));
    let on_disk = journal::read(&grown).unwrap().unwrap();
    assert_eq!((on_disk.key.images, on_disk.blocks.len()), (6, 2));

    let (extended, ran) = run_counting(&model, &test, &grown, 0, None).unwrap();
    let extended = extended.unwrap();
    assert_eq!(ran, 1, "only the new block runs");
    let whole = run(&model, &test, &straight, 0, None).unwrap().unwrap();
    assert_eq!(extended.images, 6);
    assert_eq!(extended.robust, whole.robust);
    assert_eq!(extended.robust[..4], first_four.robust[..]);
    assert_eq!(extended.robust_accuracy, whole.robust_accuracy);
    assert_eq!(extended.components[0].broken, whole.components[0].broken);
    // Already extended: nothing more to do.
    assert_eq!(journal::extend(&grown, &key, &test).unwrap(), None);
}

/// What --extend cannot continue is refused with the reason, and the journal is left as it was.
#[test]
fn an_extension_that_would_change_the_finished_blocks_is_refused_and_writes_nothing() {
    let (model, test) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let refused = |journal_images: &ImageSet, to: &ImageSet, seed: u64| -> String {
        let path = dir.path().join("journal.ron");
        let _ = std::fs::remove_file(&path);
        run(&model, journal_images, &path, 0, None)
            .unwrap()
            .unwrap();
        let before = std::fs::read(&path).unwrap();
        let key = JournalKey::new(WEIGHTS, to, &config(seed), 2).unwrap();
        let error = format!("{:#}", journal::extend(&path, &key, to).unwrap_err());
        assert_eq!(std::fs::read(&path).unwrap(), before, "{error}");
        error
    };
    // 3 images in blocks of 2 end in a partial block.
    let error = refused(&test.take(3), &test, 0);
    assert!(error.contains("partial block"), "{error}");
    // Fewer images than the journal holds.
    let error = refused(&test, &test.take(4), 0);
    assert!(error.contains("only adds images"), "{error}");
    // Not the first images of the larger set.
    let data = data::load(DatasetKind::Mnist, &DataSource::Embedded).unwrap();
    let later = data.test.slice(2, 6);
    let error = refused(&later, &test, 0);
    assert!(error.contains("not the first 4"), "{error}");
    // Another setting than the number of images.
    let error = refused(&test.take(4), &test, 1);
    assert!(error.contains("--seed 0 in the journal, 1 now"), "{error}");
}

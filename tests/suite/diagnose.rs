//! The gradient-masking detector: it flags a model built to mask its gradients and does not
//! flag an honestly robust one.

use super::autoattack::{Linear, Rounded, near_rounding_thresholds, tensor};
use rslad_tui::attack::{Classifier, eval_view};
use rslad_tui::data::{self, DataSource, DatasetKind};
use rslad_tui::device::compute_device;
use rslad_tui::diagnose::{DiagnoseConfig, diagnose, first_images};
use rslad_tui::tensor_util::predictions;

fn flagged(d: &rslad_tui::diagnose::Diagnosis) -> Vec<&'static str> {
    d.findings
        .iter()
        .filter(|f| f.flagged)
        .map(|f| f.check)
        .collect()
}

/// The rounded-input model of the AutoAttack tests: zero gradient almost everywhere, yet ε
/// moves its decisions. The zero-gradient, unbounded-attack and Square checks must all fire.
#[test]
fn a_rounded_input_model_is_flagged_as_masked() {
    let model = Rounded(Linear::new(5, 3));
    let x = tensor(&near_rounding_thresholds(24, 6));
    let labels = predictions(model.logits(x.clone()));
    let mut config = DiagnoseConfig::new(0.2);
    config.square_queries = 200;
    let d = diagnose(&model, &x, &labels, &config, &mut |_| {}).unwrap();
    assert_eq!(d.clean, 1.0);
    let flags = flagged(&d);
    for check in [
        "zero gradients",
        "unbounded attack",
        "black box after white box",
    ] {
        assert!(
            flags.contains(&check),
            "{check} not flagged: {:#?}",
            d.findings
        );
    }
    assert_eq!(d.zero_gradients, 24);
    assert!(
        d.lines()
            .last()
            .unwrap()
            .contains("sign(s) of gradient masking")
    );
}

/// A linear model has honest gradients: nothing is flagged.
#[test]
fn a_linear_model_is_not_flagged() {
    let model = Linear::new(5, 3);
    let x = tensor(&near_rounding_thresholds(24, 6));
    let labels = predictions(model.logits(x.clone()));
    let mut config = DiagnoseConfig::new(0.05);
    config.square_queries = 200;
    let d = diagnose(&model, &x, &labels, &config, &mut |_| {}).unwrap();
    assert!(flagged(&d).is_empty(), "{:#?}", d.findings);
    assert!(
        d.lines()
            .last()
            .unwrap()
            .starts_with("No sign of gradient masking")
    );
}

/// The shipped SAT teacher (adversarially trained, no masking tricks) passes every check on
/// the first 64 test images.
#[test]
fn the_shipped_sat_teacher_is_not_flagged() {
    let device = compute_device();
    let (model, _) = rslad_tui::teacher::shipped(rslad_tui::teacher::EMBEDDED_SAT, &device)
        .unwrap()
        .unwrap();
    let data = data::load(DatasetKind::Mnist, &DataSource::Embedded).unwrap();
    let (x, labels) = first_images(&data.test, 64, &device);
    let d = diagnose(
        &eval_view(&model),
        &x,
        &labels,
        &DiagnoseConfig::new(0.3),
        &mut |_| {},
    )
    .unwrap();
    assert!(flagged(&d).is_empty(), "{:#?}", d.findings);
    assert_eq!(d.unbounded, 0.0);
}

#[test]
fn no_images_is_an_error() {
    let model = Linear::new(5, 3);
    let x = tensor(&[]);
    assert!(diagnose(&model, &x, &[], &DiagnoseConfig::new(0.1), &mut |_| {}).is_err());
}

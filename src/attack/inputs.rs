//! Checks and clean-logit helpers shared by the AutoAttack components (APGD, FAB-T, Square).

use crate::error::AttackError;

/// One label per image.
pub(crate) fn check_label_count(labels: &[i64], images: usize) -> Result<(), AttackError> {
    if labels.len() != images {
        return Err(AttackError::Invalid(format!(
            "{} labels for {images} images",
            labels.len()
        )));
    }
    Ok(())
}

/// Every label is one of the model's classes (anything else would index out of range).
pub(crate) fn check_labels_in_range(labels: &[i64], classes: usize) -> Result<(), AttackError> {
    if let Some(bad) = labels.iter().find(|&&y| y < 0 || y as usize >= classes) {
        return Err(AttackError::Invalid(format!(
            "label {bad} is outside the model's classes 0..{classes}"
        )));
    }
    Ok(())
}

/// Per point, the classes other than its label from most to least likely on the clean input
/// (ties by class index), from row-major `[n × classes]` clean logits: entry k − 2 is the
/// target of rank k for APGD-T and FAB-T. The reference takes `logits.sort(dim=1)[1][:, -k]`,
/// the same class whenever the label is the top one.
pub(crate) fn other_classes_by_logit(
    clean_logits: &[f32],
    classes: usize,
    labels: &[i64],
) -> Vec<Vec<i64>> {
    clean_logits
        .chunks(classes)
        .zip(labels)
        .map(|(row, &label)| {
            let mut others: Vec<i64> = (0..classes as i64).filter(|&c| c != label).collect();
            others.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]));
            others
        })
        .collect()
}

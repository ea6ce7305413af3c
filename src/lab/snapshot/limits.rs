//! What a snapshot read from a file may hold. A session file may come from someone else, so
//! every list and string has a limit and every image must be as large as it says. The structs
//! are destructured exhaustively: a new field does not compile until it is checked here.

use super::{
    AttackRow, AttackTable, Curves, DiagnosisView, EpochPoint, FlagBasis, LogLevel, LogLine,
    SampleView, Snapshot, Status, TableContext,
};

pub const TEXT_CHARS: usize = 10_000;
pub const LOG_LINES: usize = crate::lab::live::LOG_LIMIT;
pub const EPOCHS: usize = 100_000;
pub const BATCH_LOSSES: usize = crate::lab::live::BATCH_LOSS_LIMIT;
/// Pixels per image (3×64×64 covers every dataset the zoo takes).
pub const PIXELS: usize = 3 * 64 * 64;
pub const CLASSES: usize = 1_000;
pub const ATTACK_ROWS: usize = 100;
/// Offsets of a loss profile (`diagnose` takes 11).
pub const PROFILE_POINTS: usize = 1_000;
const CLASS_NAME_CHARS: usize = 100;

/// A field (by its path in the file) and what is wrong with it.
pub type Problem = (String, String);

pub fn too_many(field: &str, len: usize, limit: usize) -> Result<(), Problem> {
    if len > limit {
        Err((
            field.to_string(),
            format!("has {len} items; the limit is {limit}"),
        ))
    } else {
        Ok(())
    }
}

pub fn too_long(field: &str, text: &str, limit: usize) -> Result<(), Problem> {
    let chars = text.chars().count();
    if chars > limit {
        Err((
            field.to_string(),
            format!("is {chars} characters long; the limit is {limit}"),
        ))
    } else {
        Ok(())
    }
}

/// A SHA-256 as this program writes it: 64 lowercase hex digits (anything else in a file is
/// refused when it is read, not found out later by a comparison that slices it).
pub fn not_sha256(field: &str, text: &str) -> Result<(), Problem> {
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if text.len() == 64 && text.bytes().all(hex) {
        Ok(())
    } else {
        Err((
            field.to_string(),
            format!(
                "must be a SHA-256 of 64 lowercase hex digits; got {:?}",
                text.chars().take(70).collect::<String>()
            ),
        ))
    }
}

/// Log lines: at most [`LOG_LINES`], each at most [`TEXT_CHARS`].
pub fn check_log(field: &str, log: &[LogLine]) -> Result<(), Problem> {
    too_many(field, log.len(), LOG_LINES)?;
    for (i, line) in log.iter().enumerate() {
        let LogLine { level, text } = line;
        let _: &LogLevel = level; // an enum: any value the parser accepts is valid
        too_long(&format!("{field}[{i}].text"), text, TEXT_CHARS)?;
    }
    Ok(())
}

/// Checks a snapshot read from a file; `field` is its path, e.g. `entries[3].outcome.snapshot`.
pub fn check(field: &str, snapshot: &Snapshot) -> Result<(), Problem> {
    let f = |name: &str| format!("{field}.{name}");
    let Snapshot {
        status,
        curves,
        sample,
        attack,
        results: _, // never read from a file (not serialized)
        diagnosis,
        log,
    } = snapshot;
    check_status(&f("status"), status)?;
    check_log(&f("log"), log)?;
    check_curves(&f("curves"), curves)?;
    if let Some(sample) = sample {
        check_sample(&f("sample"), sample)?;
    }
    if let Some(table) = attack {
        check_attack(&f("attack"), table)?;
    }
    if let Some(diagnosis) = diagnosis {
        check_diagnosis(&f("diagnosis"), diagnosis)?;
    }
    Ok(())
}

fn check_status(field: &str, status: &Status) -> Result<(), Problem> {
    let f = |name: &str| format!("{field}.{name}");
    let Status {
        dataset,
        teacher,
        student,
        method,
        epoch: _,
        batch: _,
        batches: _,
        epsilon: _,
        seed: _,
        elapsed_seconds: _,
        busy,
        unsaved: _,
        device,
    } = status;
    for (name, text) in [
        ("dataset", dataset),
        ("teacher", teacher),
        ("student", student),
        ("method", method),
        ("device", device),
    ] {
        too_long(&f(name), text, TEXT_CHARS)?;
    }
    if let Some(busy) = busy {
        too_long(&f("busy"), busy, TEXT_CHARS)?;
    }
    Ok(())
}

fn check_curves(field: &str, curves: &Curves) -> Result<(), Problem> {
    let f = |name: &str| format!("{field}.{name}");
    let Curves {
        epochs,
        batch_losses,
        robust_label,
        teacher_clean: _,
        teacher_robust: _,
    } = curves;
    too_many(&f("epochs"), epochs.len(), EPOCHS)?;
    for point in epochs {
        // Numbers only: drawn as they are, whatever their value.
        let EpochPoint {
            epoch: _,
            loss: _,
            clean: _,
            robust: _,
        } = point;
    }
    too_many(&f("batch_losses"), batch_losses.len(), BATCH_LOSSES)?;
    too_long(&f("robust_label"), robust_label, TEXT_CHARS)
}

fn check_sample(field: &str, sample: &SampleView) -> Result<(), Problem> {
    let g = |name: &str| format!("{field}.{name}");
    let SampleView {
        index: _,
        of: _,
        channels,
        height,
        width,
        natural,
        adversarial,
        epsilon: _,
        attack,
        true_class,
        class_names,
        teacher_natural,
        teacher_adversarial,
        student_natural,
        student_adversarial,
    } = sample;
    // Checked products: a width of 2^62 must not wrap around to a small number of pixels.
    let pixels = channels
        .checked_mul(*height)
        .and_then(|p| p.checked_mul(*width))
        .filter(|&p| *channels >= 1 && *channels <= 3 && p <= PIXELS);
    let Some(pixels) = pixels else {
        return Err((
            g("channels"),
            format!("describes {channels}×{height}×{width} images; at most 3×64×64 are allowed"),
        ));
    };
    for (name, values) in [("natural", natural), ("adversarial", adversarial)] {
        if values.len() != pixels {
            return Err((
                g(name),
                format!("has {} values for {pixels} pixels", values.len()),
            ));
        }
    }
    too_many(&g("class_names"), class_names.len(), CLASSES)?;
    for name in class_names {
        too_long(&g("class_names"), name, CLASS_NAME_CHARS)?;
    }
    too_long(&g("attack"), attack, TEXT_CHARS)?;
    let classes = class_names.len();
    if *true_class >= classes.max(1) {
        return Err((g("true_class"), format!("is not below {classes}")));
    }
    let probabilities = [
        ("teacher_natural", teacher_natural.as_ref()),
        ("teacher_adversarial", teacher_adversarial.as_ref()),
        ("student_natural", Some(student_natural)),
        ("student_adversarial", Some(student_adversarial)),
    ];
    for (name, values) in probabilities {
        if let Some(values) = values
            && values.len() != classes
        {
            return Err((
                g(name),
                format!("has {} values for {classes} classes", values.len()),
            ));
        }
    }
    Ok(())
}

fn check_attack(field: &str, table: &AttackTable) -> Result<(), Problem> {
    let f = |name: &str| format!("{field}.{name}");
    let AttackTable {
        title,
        clean: _,
        rows,
        flags,
        context,
        flag_bases,
    } = table;
    too_long(&f("title"), title, TEXT_CHARS)?;
    if let Some(context) = context {
        let TableContext {
            number: _,
            dataset,
            model,
            method,
            epochs: _,
            batches: _,
            epsilon: _,
            images: _,
            recalibrated,
        } = context;
        for (name, text) in [
            ("dataset", dataset),
            ("model", model),
            ("method", method),
            ("recalibrated", recalibrated),
        ] {
            too_long(&f(&format!("context.{name}")), text, TEXT_CHARS)?;
        }
    }
    too_many(&f("rows"), rows.len(), ATTACK_ROWS)?;
    too_many(&f("flags"), flags.len(), ATTACK_ROWS)?;
    for row in rows {
        let AttackRow {
            name,
            robust: _,
            detail,
        } = row;
        too_long(&f("rows.name"), name, TEXT_CHARS)?;
        too_long(&f("rows.detail"), detail, TEXT_CHARS)?;
    }
    for flag in flags {
        too_long(&f("flags"), flag, TEXT_CHARS)?;
    }
    too_many(&f("flag_bases"), flag_bases.len(), ATTACK_ROWS)?;
    for FlagBasis { check, percent } in flag_bases {
        too_long(&f("flag_bases.check"), check, TEXT_CHARS)?;
        // A share of the images, which a replay compares as an accuracy.
        if let Some(percent) = percent
            && !(0.0..=100.0).contains(percent)
        {
            return Err((
                f("flag_bases.percent"),
                format!("is {percent}; a share of images is from 0 to 100"),
            ));
        }
    }
    Ok(())
}

/// A loss profile: at most [`PROFILE_POINTS`] offsets, and one loss per offset on each curve.
fn check_diagnosis(field: &str, diagnosis: &DiagnosisView) -> Result<(), Problem> {
    let f = |name: &str| format!("{field}.{name}");
    let DiagnosisView {
        image: _,
        highest_losses,
        images: _,
        epsilon: _,
        offsets,
        along_gradient,
        random_max,
        random_mean,
        checks: _,
        flagged: _,
        model,
        method,
        epochs: _,
        batches: _,
    } = diagnosis;
    too_many(&f("offsets"), offsets.len(), PROFILE_POINTS)?;
    too_many(
        &f("highest_losses"),
        highest_losses.len(),
        crate::diagnose::PROFILE_CANDIDATES,
    )?;
    for (name, curve) in [
        ("along_gradient", along_gradient),
        ("random_max", random_max),
        ("random_mean", random_mean),
    ] {
        if curve.len() != offsets.len() {
            return Err((
                f(name),
                format!("has {} values for {} offsets", curve.len(), offsets.len()),
            ));
        }
    }
    too_long(&f("model"), model, TEXT_CHARS)?;
    too_long(&f("method"), method, TEXT_CHARS)
}

//! The snapshot as plain text, for the REPL and other line-oriented output: the attack table,
//! and the selected sample's soft labels with a small picture of its perturbation.

use crate::lab::snapshot::{AttackTable, SampleView};

/// The attack table as plain text.
pub fn attack_table(table: &AttackTable) -> String {
    let mut out = format!(
        "{}\n{:<12} {:>9}  detail\n",
        table.title, "attack", "robust %"
    );
    out += &format!("{:<12} {:>9.2}\n", "clean", table.clean);
    for row in &table.rows {
        out += &format!("{:<12} {:>9.2}  {}\n", row.name, row.robust, row.detail);
    }
    for flag in &table.flags {
        out += &format!("warning: {flag}\n");
    }
    out
}

/// Shades from dark to light for a pixel in [0, 1].
const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];

fn shade(value: f32) -> char {
    let i = (value.clamp(0.0, 1.0) * (SHADES.len() - 1) as f32).round() as usize;
    SHADES[i]
}

/// `+` where the attack brightened a pixel by at least a third of ε, `-` where it darkened
/// it, `·` otherwise (the heatmap's red, blue and white).
fn delta_mark(delta: f32) -> char {
    if delta > 1.0 / 3.0 {
        '+'
    } else if delta < -1.0 / 3.0 {
        '-'
    } else {
        '·'
    }
}

/// The selected sample: both models' class probabilities on the natural and the adversarial
/// image as a table (the true class marked ▶), then the natural image and the perturbation side
/// by side, two pixel rows per text row.
pub fn sample(view: &SampleView) -> String {
    let percent = |p: Option<&Vec<f32>>, class: usize| {
        p.and_then(|p| p.get(class))
            .map_or("    –".to_string(), |v| format!("{:5.1}", 100.0 * v))
    };
    let mut out = format!(
        "test image {} of {} (true class {}); adversarial: {} against the student, ε {:.3}\n",
        view.index,
        view.of,
        view.class_names
            .get(view.true_class)
            .map_or(view.true_class.to_string(), |n| n.clone()),
        view.attack,
        view.epsilon
    );
    let name_width = view
        .class_names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(1)
        .max(5);
    out += &format!(
        "  {:<name_width$}   teacher %        student %\n  {:<name_width$}   natural   adv    natural   adv\n",
        "class", ""
    );
    for (class, name) in view.class_names.iter().enumerate() {
        let mark = if class == view.true_class { '▶' } else { ' ' };
        out += &format!(
            "{mark} {name:<name_width$}   {}  {}    {}  {}\n",
            percent(view.teacher_natural.as_ref(), class),
            percent(view.teacher_adversarial.as_ref(), class),
            percent(Some(&view.student_natural), class),
            percent(Some(&view.student_adversarial), class),
        );
    }
    out += &picture(view);
    out
}

/// The natural image and the perturbation δ/ε side by side (channels averaged), as text.
fn picture(view: &SampleView) -> String {
    let (h, w, c) = (view.height, view.width, view.channels.max(1));
    let plane = h * w;
    if plane == 0 || view.natural.len() != c * plane || view.adversarial.len() != c * plane {
        return String::new();
    }
    let mean = |values: &[f32], k: usize| -> f32 {
        (0..c).map(|ch| values[ch * plane + k]).sum::<f32>() / c as f32
    };
    let delta = view.scaled_delta();
    let mut out = format!("{:<w$} │ δ/ε (+ brighter, - darker)\n", "natural");
    for y in (0..h).step_by(2) {
        let mut row = String::new();
        let pair = |k: usize, below: Option<usize>, f: &dyn Fn(usize) -> f32| -> f32 {
            below.map_or(f(k), |b| (f(k) + f(b)) / 2.0)
        };
        for panel in 0..2 {
            if panel > 0 {
                row += " │ ";
            }
            for x in 0..w {
                let k = y * w + x;
                let below = (y + 1 < h).then_some(k + w);
                row.push(match panel {
                    0 => shade(pair(k, below, &|k| mean(&view.natural, k))),
                    _ => delta_mark(pair(k, below, &|k| delta[k])),
                });
            }
        }
        out += row.trim_end();
        out.push('\n');
    }
    out
}

//! Compares two recordings of the same script without re-running either, command by command:
//! how far every field differs. Used to measure how results move between kernel families
//! (docs/replay.md): record a script on each, then
//!
//! ```text
//! cargo run --release --example compare_sessions -- A.ron B.ron
//! ```

use rslad_tui::lab::session::{self, Entry};
use rslad_tui::lab::snapshot::compare::{Comparison, Kind, Tolerances, compare, short};
use std::path::Path;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [a, b] = args.as_slice() else {
        anyhow::bail!("usage: compare_sessions A.ron B.ron");
    };
    let commands = |path: &str| -> anyhow::Result<Vec<(String, session::Outcome)>> {
        Ok(session::load(Path::new(path))?
            .entries
            .into_iter()
            .filter_map(|e| match e {
                Entry::Command { line, outcome, .. } => Some((line, *outcome)),
                Entry::Mark { .. } => None,
            })
            .collect())
    };
    let (a, b) = (commands(a)?, commands(b)?);
    let mut total = Comparison::default();
    for ((line_a, recorded), (line_b, got)) in a.iter().zip(&b) {
        anyhow::ensure!(
            line_a == line_b,
            "the scripts differ: `{line_a}` / `{line_b}`"
        );
        total.merge(compare(recorded, got, &Tolerances::exact()));
    }
    println!("{} commands compared", a.len().min(b.len()));
    for (field, tally) in &total.fields {
        if tally.kind != Kind::Exact || tally.mismatched > 0 {
            println!(
                "{field}: {} of {} differ, largest {} ({})",
                tally.mismatched,
                tally.compared,
                short(tally.max_difference),
                tally.kind.name()
            );
        }
    }
    for note in &total.notes {
        println!("note: {note}");
    }
    for (kind, max) in total.max_by_kind() {
        println!("largest {}: {}", kind.name(), short(max));
    }
    Ok(())
}

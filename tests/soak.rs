//! A long session of random valid commands on the micro model: no panic, every failure a
//! clean error, and memory that stops growing once the session is warm (the recorded session
//! stores each command's results, so it grows by a few kilobytes per command, no more).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rslad_tui::lab::live::Shared;
use rslad_tui::lab::runner::Runner;
use std::sync::Arc;

const COMMANDS: usize = 2500;
const WARM_UP: usize = 300;
/// Allowed growth of the resident set after the warm-up, in MiB.
const GROWTH_LIMIT_MIB: f64 = 40.0;

fn resident_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn random_command(rng: &mut StdRng) -> String {
    let methods = ["natural", "sat", "trades", "kd", "ard", "iad", "rslad"];
    match rng.gen_range(0..100) {
        0..=4 => "step batch 1".into(),
        5..=24 => ["next", "prev"][rng.gen_range(0..2)].into(),
        25..=34 => format!("show sample {}", rng.gen_range(0..10_000)),
        35..=42 => format!("eps {:.3}", rng.gen_range(0.0..0.5)),
        43..=48 => format!("lr {:.4}", rng.gen_range(0.0001..0.01)),
        49..=53 => format!("seed {}", rng.gen_range(0..1000)),
        54..=63 => {
            let m = methods[rng.gen_range(0..methods.len())];
            match m {
                "kd" | "ard" | "iad" | "rslad" => {
                    format!("method {m} alpha={:.2}", rng.gen_range(0.0..1.0))
                }
                "trades" => format!("method trades beta={:.1}", rng.gen_range(0.0..6.0)),
                _ => format!("method {m}"),
            }
        }
        64..=66 => ["teacher embedded", "teacher none"][rng.gen_range(0..2)].into(),
        67..=71 => format!(
            "attack {} n={}",
            ["fgsm", "pgd steps=2", "cw steps=2"][rng.gen_range(0..3)],
            rng.gen_range(1..10)
        ),
        72..=76 => format!("mark \"m{}\" a note", rng.gen_range(0..100)),
        77..=79 => "reset".into(),
        80..=81 => ["student micro-cnn", "student mlp"][rng.gen_range(0..2)].into(),
        82..=84 => "show misclassified".into(),
        85..=89 => "step batch 1".into(),
        _ => "show sample 0".into(),
    }
}

#[test]
fn thousands_of_random_commands_neither_panic_nor_grow_memory() {
    let shared = Arc::new(Shared::default());
    let mut runner = Runner::new(Arc::clone(&shared), 0).unwrap();
    let mut rng = StdRng::seed_from_u64(2026);
    let (mut ok, mut failed) = (0, 0);
    let mut after_warm_up = 0.0;
    for i in 0..COMMANDS {
        let line = random_command(&mut rng);
        match runner.run_line(&line) {
            Ok(()) => ok += 1,
            Err(error) => {
                let text = format!("{error:#}");
                assert!(
                    !text.is_empty() && !text.contains("panicked"),
                    "{line}: {text}"
                );
                failed += 1;
            }
        }
        if i + 1 == WARM_UP {
            after_warm_up = resident_mib();
        }
    }
    let end = resident_mib();
    let snapshot = shared.snapshot();
    assert!(snapshot.log.len() <= rslad_tui::lab::live::LOG_LIMIT);
    assert!(runner.session().entries.len() == COMMANDS);
    eprintln!(
        "{COMMANDS} commands: {ok} ok, {failed} refused; resident {after_warm_up:.1} MiB after \
         {WARM_UP}, {end:.1} MiB at the end"
    );
    assert!(ok > COMMANDS / 2, "most random valid commands succeed");
    assert!(
        end - after_warm_up < GROWTH_LIMIT_MIB,
        "memory grew {:.1} MiB after the warm-up",
        end - after_warm_up
    );
}

//! The workbench's own costs, never asserted in a test. Run with
//! `cargo bench --bench workbench` (release profile).
//!
//! 1. One full redraw at 160×48 of a workbench with every panel filled (curves, batch trace,
//!    soft labels, perturbation heatmap, attack table, log), into ratatui's TestBackend: the
//!    view's whole cost except writing escape codes to a real terminal.
//! 2. What the UI thread costs training: RSLAD batches per second on the engine alone, and
//!    with a UI thread beside it that copies the snapshot and redraws at 160×48 ten times a
//!    second (the event loop's rate), alternating runs so machine noise hits both alike.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rslad_tui::lab::command::parse_engine;
use rslad_tui::lab::engine::{Engine, default_settings};
use rslad_tui::lab::live::Shared;
use rslad_tui::workbench::view::{self, UiState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BATCHES: usize = 20;
const ROUNDS: usize = 3;

fn engine(shared: &Arc<Shared>) -> Engine {
    let mut settings = default_settings();
    settings.eval.n = 200;
    Engine::new(Arc::clone(shared), settings, Some("embedded")).expect("the default session")
}

fn run(engine: &mut Engine, line: &str) {
    engine.execute(parse_engine(line).unwrap()).unwrap();
}

fn main() {
    redraw();
    ui_overhead();
}

fn redraw() {
    let shared = Arc::new(Shared::default());
    let mut engine = engine(&shared);
    run(&mut engine, "step batch 40");
    run(&mut engine, "attack fgsm n=200");
    run(&mut engine, "show sample 3");
    let snapshot = shared.snapshot();
    let ui = UiState::default();
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    for _ in 0..50 {
        terminal.draw(|f| view::draw(f, &snapshot, &ui)).unwrap();
    }
    let mut times: Vec<f64> = (0..1000)
        .map(|_| {
            let started = Instant::now();
            terminal.draw(|f| view::draw(f, &snapshot, &ui)).unwrap();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "full redraw 160x48 (TestBackend), 1000 frames: median {:.3} ms, mean {:.3} ms, p99 {:.3} ms",
        times[500], mean, times[989]
    );
    let started = Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(shared.snapshot());
    }
    println!(
        "snapshot copy: {:.3} ms",
        started.elapsed().as_secs_f64() * 1e3 / 1000.0
    );
}

/// Batches per second of `BATCHES` RSLAD batches, with or without a drawing UI thread.
fn throughput(with_ui: bool) -> f64 {
    let shared = Arc::new(Shared::default());
    let mut engine = engine(&shared);
    let done = Arc::new(AtomicBool::new(false));
    let ui = with_ui.then(|| {
        let (shared, done) = (Arc::clone(&shared), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
            let state = UiState::default();
            let mut frames = 0usize;
            while !done.load(Ordering::Relaxed) {
                let snapshot = shared.snapshot();
                terminal.draw(|f| view::draw(f, &snapshot, &state)).unwrap();
                frames += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            frames
        })
    });
    let started = Instant::now();
    run(&mut engine, &format!("step batch {BATCHES}"));
    let rate = BATCHES as f64 / started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    if let Some(ui) = ui {
        ui.join().unwrap();
    }
    rate
}

fn ui_overhead() {
    let mut alone = Vec::new();
    let mut with_ui = Vec::new();
    for _ in 0..ROUNDS {
        alone.push(throughput(false));
        with_ui.push(throughput(true));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, u) = (median(&mut alone), median(&mut with_ui));
    println!(
        "RSLAD training, micro-cnn, batch 128, {BATCHES} batches x {ROUNDS} rounds: \
         engine alone {a:.2} batches/s, with the UI thread drawing at 10 Hz {u:.2} batches/s \
         (cost {:.1}%)",
        100.0 * (a - u) / a
    );
}

//! Rendering tests for the workbench view: text snapshots at several sizes and states,
//! the δ/ε heatmap checked cell by cell against the fixture, the diverging colour map, the
//! focus highlight, the prompt cursor, and a sweep of terminal sizes that must not panic.
//!
//! Snapshots live in tests/snapshots/; run with UPDATE_SNAPSHOTS=1 to (re)write them.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use rslad_tui::lab::snapshot::{
    AttackRow, AttackTable, Curves, DiagnosisView, EpochPoint, LogLevel, LogLine, SampleView,
    Snapshot, Status, TableContext, results,
};
use rslad_tui::workbench::view::{
    self, Lecture, MIN_HEIGHT, MIN_WIDTH, Overlay, Panel, UiState, areas, diverging, heatmap_area,
    text,
};
use std::path::PathBuf;

// ---------------------------------------------------------------------------------------
// Fixture

const SIDE: usize = 28;
const EPS: f32 = 0.3;

/// A handwritten-looking "7": a top bar and a diagonal stroke, with soft edges.
fn digit_seven() -> Vec<f32> {
    let mut img = vec![0.0f32; SIDE * SIDE];
    let ink = |x: f32, y: f32, img: &mut Vec<f32>| {
        for py in 0..SIDE {
            for px in 0..SIDE {
                let d = ((px as f32 - x).powi(2) + (py as f32 - y).powi(2)).sqrt();
                let v = (1.6 - d).clamp(0.0, 1.0);
                let p = &mut img[py * SIDE + px];
                *p = p.max(v);
            }
        }
    };
    for i in 0..=30 {
        let t = i as f32 / 30.0;
        ink(6.0 + 15.0 * t, 6.0, &mut img); // the bar
        ink(21.0 - 9.0 * t, 6.0 + 17.0 * t, &mut img); // the stroke
    }
    img
}

/// The natural image plus a ±ε checkerboard of 3×2-pixel blocks, clipped to [0, 1] (so
/// δ/ε is ±1 where the image allows it and less near 0 and 1).
fn adversarial(natural: &[f32]) -> Vec<f32> {
    natural
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (x, y) = (i % SIDE, i / SIDE);
            let sign = if (x / 3 + y / 2) % 2 == 0 { 1.0 } else { -1.0 };
            (v + sign * EPS).clamp(0.0, 1.0)
        })
        .collect()
}

/// A distribution over 10 classes: `peaks` get their mass, the rest share what is left.
fn probs(peaks: &[(usize, f32)]) -> Vec<f32> {
    let used: f32 = peaks.iter().map(|(_, p)| p).sum();
    let rest = (1.0 - used) / (10 - peaks.len()) as f32;
    (0..10)
        .map(|c| {
            peaks
                .iter()
                .find(|(k, _)| *k == c)
                .map_or(rest, |(_, p)| *p)
        })
        .collect()
}

fn sample() -> SampleView {
    let natural = digit_seven();
    SampleView {
        index: 12,
        of: 10000,
        channels: 1,
        height: SIDE,
        width: SIDE,
        adversarial: adversarial(&natural),
        natural,
        epsilon: EPS,
        attack: "PGD-20".into(),
        true_class: 7,
        class_names: (0..10).map(|c| c.to_string()).collect(),
        teacher_natural: Some(probs(&[(7, 0.93), (1, 0.03)])),
        teacher_adversarial: Some(probs(&[(7, 0.71), (3, 0.15), (9, 0.06)])),
        student_natural: probs(&[(7, 0.88), (9, 0.05)]),
        student_adversarial: probs(&[(3, 0.52), (7, 0.31), (8, 0.08)]),
    }
}

fn log() -> Vec<LogLine> {
    let mut lines = Vec::new();
    let texts = [
        (LogLevel::Command, "load mnist"),
        (
            LogLevel::Info,
            "mnist: 10000 train, 10000 test images (embedded)",
        ),
        (LogLevel::Command, "teacher small-cnn"),
        (
            LogLevel::Info,
            "teacher small-cnn (embedded SAT): clean 98.9%, PGD-20 91.3%",
        ),
        (LogLevel::Warning, "no GPU: training on 2 CPU threads"),
        (LogLevel::Command, "student micro-cnn"),
        (LogLevel::Command, "method rslad"),
        (
            LogLevel::Info,
            "rslad α=0.833, β=1/6, PGD-10 inner attack on the KL term",
        ),
        (
            LogLevel::Error,
            "unknown option --stepz (did you mean --steps?)",
        ),
        (LogLevel::Command, "step 3"),
    ];
    for round in 0..4 {
        for (level, text) in texts {
            let text = match level {
                LogLevel::Warning => format!("{text} (round {round})"),
                LogLevel::Error => format!("{text} [{round}]"),
                _ => text.to_string(),
            };
            lines.push(LogLine { level, text });
        }
    }
    lines.push(LogLine {
        level: LogLevel::Info,
        text: "epoch 3: loss 0.6231, clean 97.40%, PGD-20 84.90% (41.2 s)".into(),
    });
    lines
}

fn fixture() -> Snapshot {
    Snapshot {
        status: Status {
            dataset: "mnist (embedded, 10000 train)".into(),
            teacher: "small-cnn (embedded SAT)".into(),
            student: "micro-cnn".into(),
            method: "rslad α=0.833".into(),
            epoch: 3,
            batch: 23,
            batches: 50,
            epsilon: EPS,
            seed: 7,
            elapsed_seconds: 3723.4,
            busy: Some("training epoch 4".into()),
            unsaved: true,
            device: "cpu".into(),
        },
        curves: Curves {
            epochs: vec![
                EpochPoint {
                    epoch: 1,
                    loss: 1.2034,
                    clean: 91.2,
                    robust: Some(62.5),
                },
                EpochPoint {
                    epoch: 2,
                    loss: 0.8123,
                    clean: 95.8,
                    robust: Some(78.1),
                },
                EpochPoint {
                    epoch: 3,
                    loss: 0.6231,
                    clean: 97.4,
                    robust: Some(84.9),
                },
            ],
            batch_losses: (0..50)
                .map(|i| 0.3 + 0.9 * (-(i as f64) / 15.0).exp() + 0.05 * (i as f64).sin())
                .collect(),
            robust_label: "PGD-20".into(),
            teacher_clean: Some(98.9),
            teacher_robust: Some(91.3),
        },
        sample: Some(sample()),
        attack: Some(AttackTable {
            title: "micro-cnn, 500 test images, ε = 0.3".into(),
            clean: 97.4,
            rows: vec![
                AttackRow {
                    name: "PGD-20".into(),
                    robust: 84.9,
                    detail: "max |δ| 0.300 · 4.1 s".into(),
                },
                AttackRow {
                    name: "APGD-CE".into(),
                    robust: 82.6,
                    detail: "broke 12 · 9.8 s".into(),
                },
            ],
            flags: vec!["APGD-CE broke 12 points PGD-20 missed: PGD may be under-converged".into()],
            context: None,
            flag_bases: Vec::new(),
        }),
        results: Vec::new(),
        diagnosis: None,
        log: log(),
    }
}

fn prompt_ui() -> UiState {
    let prompt = "attack apgd-ce --steps 100".to_string();
    UiState {
        cursor: prompt.chars().count(),
        prompt,
        ..UiState::default()
    }
}

// ---------------------------------------------------------------------------------------
// Rendering helpers

fn render(width: u16, height: u16, snapshot: &Snapshot, ui: &UiState) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal
        .draw(|frame| view::draw(frame, snapshot, ui))
        .expect("draw");
    terminal
}

/// The buffer as text: each row's symbols joined, trailing spaces trimmed.
fn buffer_text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let row: String = (area.left()..area.right())
            .map(|x| buf.cell((x, y)).map_or(" ", |c| c.symbol()))
            .collect();
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}

/// Compares `text` with tests/snapshots/NAME.txt; writes the file instead with
/// UPDATE_SNAPSHOTS=1.
fn assert_snapshot(name: &str, text: &str) {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "snapshots",
        &format!("{name}.txt"),
    ]
    .iter()
    .collect();
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    if expected == text {
        return;
    }
    let mut exp = expected.lines();
    let mut got = text.lines();
    for line in 1.. {
        match (exp.next(), got.next()) {
            (None, None) => break,
            (e, g) if e == g => continue,
            (e, g) => panic!(
                "snapshot {name} differs at line {line}:\n  expected: {:?}\n  rendered: {:?}\n\
                 full render:\n{text}\n(run with UPDATE_SNAPSHOTS=1 to accept)",
                e.unwrap_or("<end>"),
                g.unwrap_or("<end>")
            ),
        }
    }
}

fn snapshot_test(name: &str, width: u16, height: u16, snapshot: &Snapshot, ui: &UiState) {
    let terminal = render(width, height, snapshot, ui);
    assert_snapshot(name, &buffer_text(terminal.backend().buffer()));
}

// ---------------------------------------------------------------------------------------
// Snapshots

#[test]
fn snapshot_80x24() {
    snapshot_test("workbench_80x24", 80, 24, &fixture(), &prompt_ui());
}

#[test]
fn snapshot_160x48() {
    snapshot_test("workbench_160x48", 160, 48, &fixture(), &prompt_ui());
}

#[test]
fn snapshot_120x36_completions_scrolled_log() {
    let ui = UiState {
        focus: Panel::Log,
        prompt: "attack ".into(),
        cursor: 7,
        hint: Some("pgd | apgd-ce | apgd-dlr | fab | square | autoattack".into()),
        completions: ["pgd", "apgd-ce", "apgd-dlr", "fab", "square", "autoattack"]
            .map(String::from)
            .to_vec(),
        log_scroll: 5,
        overlay: None,
        ..UiState::default()
    };
    snapshot_test("workbench_120x36_completions", 120, 36, &fixture(), &ui);
}

#[test]
fn snapshot_empty_80x24() {
    snapshot_test(
        "workbench_empty_80x24",
        80,
        24,
        &Snapshot::default(),
        &UiState::default(),
    );
}

#[test]
fn snapshot_no_teacher_100x30() {
    let mut snapshot = fixture();
    let sample = snapshot.sample.as_mut().unwrap();
    sample.teacher_natural = None;
    sample.teacher_adversarial = None;
    snapshot.curves.teacher_clean = None;
    snapshot.curves.teacher_robust = None;
    snapshot.status.teacher = "none".into();
    snapshot.status.busy = None;
    snapshot.status.unsaved = false;
    snapshot_test(
        "workbench_no_teacher_100x30",
        100,
        30,
        &snapshot,
        &UiState::default(),
    );
}

#[test]
fn snapshot_help_overlay_80x24() {
    let text: String = (1..=40)
        .map(|i| format!("command{i:<3} does thing number {i}\n"))
        .collect();
    let ui = UiState {
        overlay: Some(Overlay::Help { text, scroll: 3 }),
        ..prompt_ui()
    };
    snapshot_test("workbench_help_80x24", 80, 24, &fixture(), &ui);
}

#[test]
fn snapshot_confirm_quit_80x24() {
    let ui = UiState {
        overlay: Some(Overlay::ConfirmQuit),
        focus: Panel::Curves,
        ..prompt_ui()
    };
    snapshot_test("workbench_confirm_quit_80x24", 80, 24, &fixture(), &ui);
}

#[test]
fn snapshot_too_small_30x10() {
    snapshot_test(
        "workbench_too_small_30x10",
        30,
        10,
        &fixture(),
        &prompt_ui(),
    );
}

// ---------------------------------------------------------------------------------------
// The heatmap, cell by cell

/// Checks every heatmap cell against δ/ε from the fixture, with the documented
/// nearest-neighbour mapping; returns the heatmap's rectangle.
fn check_heatmap(width: u16, height: u16) -> Rect {
    let snapshot = fixture();
    let ui = prompt_ui();
    let terminal = render(width, height, &snapshot, &ui);
    let buf = terminal.backend().buffer();
    let rect = heatmap_area(Rect::new(0, 0, width, height), &snapshot, &ui).expect("a heatmap");
    let delta = snapshot.sample.as_ref().unwrap().scaled_delta();
    let (cols, px_rows) = (rect.width as usize, 2 * rect.height as usize);
    for cy in 0..rect.height as usize {
        for cx in 0..cols {
            let sx = cx * SIDE / cols;
            let upper = delta[(2 * cy) * SIDE / px_rows * SIDE + sx];
            let lower = delta[(2 * cy + 1) * SIDE / px_rows * SIDE + sx];
            let cell = buf.cell((rect.x + cx as u16, rect.y + cy as u16)).unwrap();
            assert_eq!(cell.symbol(), "▀", "cell ({cx}, {cy}) at {width}x{height}");
            assert_eq!(
                cell.fg,
                diverging(upper),
                "upper pixel of ({cx}, {cy}) at {width}x{height}"
            );
            assert_eq!(
                cell.bg,
                diverging(lower),
                "lower pixel of ({cx}, {cy}) at {width}x{height}"
            );
        }
    }
    // The caption names it.
    let caption_row: String = (rect.x..rect.right())
        .map(|x| buf.cell((x, rect.y - 1)).unwrap().symbol().to_string())
        .collect();
    assert!(
        caption_row.contains("δ/ε"),
        "caption above the heatmap: {caption_row:?}"
    );
    rect
}

#[test]
fn heatmap_at_160x48_is_native_size_and_matches_delta() {
    let rect = check_heatmap(160, 48);
    assert_eq!(
        (rect.width, rect.height),
        (28, 14),
        "28×28 shown at 28 columns × 14 rows"
    );
}

#[test]
fn heatmap_at_80x24_is_scaled_down_and_matches_delta() {
    let rect = check_heatmap(80, 24);
    assert!(rect.width < 28 && rect.height < 14, "{rect:?}");
    assert!(rect.width >= 8 && rect.height >= 4, "{rect:?}");
}

#[test]
fn heatmap_fixture_has_both_signs_and_partial_values() {
    // Guards the heatmap test against a degenerate fixture (all one colour).
    let delta = sample().scaled_delta();
    assert!(delta.contains(&1.0));
    assert!(delta.contains(&-1.0));
    assert!(delta.iter().any(|&d| d.abs() > 0.05 && d.abs() < 0.95));
}

#[test]
fn natural_image_is_grey_and_bright_on_the_stroke() {
    // At 160×48 the three native-size images fill the panel's inner width exactly, so the
    // natural image starts one column right of the panel's border, on the heatmap's rows
    // and as wide. Every cell must be grey, and the stroke's centre pure white.
    let snapshot = fixture();
    let ui = prompt_ui();
    let terminal = render(160, 48, &snapshot, &ui);
    let buf = terminal.backend().buffer();
    let heat = heatmap_area(Rect::new(0, 0, 160, 48), &snapshot, &ui).unwrap();
    let area = areas(Rect::new(0, 0, 160, 48), &snapshot, &ui).unwrap();
    let mut brightest = 0u8;
    for y in heat.y..heat.bottom() {
        for x in area.perturbation.x + 1..area.perturbation.x + 1 + heat.width {
            let cell = buf.cell((x, y)).unwrap();
            assert_eq!(cell.symbol(), "▀");
            for color in [cell.fg, cell.bg] {
                let Color::Rgb(r, g, b) = color else {
                    panic!("not RGB: {color:?}")
                };
                assert!(r == g && g == b, "grey expected, got {color:?}");
                brightest = brightest.max(r);
            }
        }
    }
    assert_eq!(brightest, 255);
}

// ---------------------------------------------------------------------------------------
// diverging()

fn rgb(c: Color) -> (i32, i32, i32) {
    match c {
        Color::Rgb(r, g, b) => (r as i32, g as i32, b as i32),
        other => panic!("not RGB: {other:?}"),
    }
}

#[test]
fn diverging_zero_is_dark_neutral() {
    let (r, g, b) = rgb(diverging(0.0));
    assert!(r == g && g == b && r < 48, "{r} {g} {b}");
    assert_eq!(diverging(-0.0), diverging(0.0));
}

#[test]
fn diverging_sign_picks_red_or_blue() {
    for v in [0.1f32, 0.5, 1.0] {
        let (r, g, b) = rgb(diverging(v));
        assert!(r > g && r > b, "+{v}: {r} {g} {b}");
        let (r, g, b) = rgb(diverging(-v));
        assert!(b > r && b > g, "-{v}: {r} {g} {b}");
    }
    let (r, _, _) = rgb(diverging(1.0));
    let (_, _, b) = rgb(diverging(-1.0));
    assert!(r >= 240 && b >= 240, "strong ends");
}

#[test]
fn diverging_is_monotone_in_magnitude() {
    let brightness = |v: f32| {
        let (r, g, b) = rgb(diverging(v));
        r + g + b
    };
    for sign in [1.0f32, -1.0] {
        let mut last = brightness(0.0);
        let mut last_main = 0;
        for i in 1..=20 {
            let v = sign * i as f32 / 20.0;
            let now = brightness(v);
            assert!(now >= last, "brightness falls at {v}");
            let (r, _, b) = rgb(diverging(v));
            let main = if sign > 0.0 { r } else { b };
            assert!(main > last_main, "dominant channel not increasing at {v}");
            (last, last_main) = (now, main);
        }
    }
}

#[test]
fn diverging_clamps_and_handles_nan() {
    assert_eq!(diverging(3.0), diverging(1.0));
    assert_eq!(diverging(-7.5), diverging(-1.0));
    assert_eq!(diverging(f32::INFINITY), diverging(1.0));
    assert_eq!(diverging(f32::NEG_INFINITY), diverging(-1.0));
    assert_eq!(diverging(f32::NAN), diverging(0.0));
}

// ---------------------------------------------------------------------------------------
// Focus, cursor, sizes

/// Picks one panel's rectangle.
type PickArea = fn(&view::Areas) -> Rect;

#[test]
fn focused_panel_border_is_highlighted() {
    let snapshot = fixture();
    let full = Rect::new(0, 0, 120, 36);
    let corner = |focus: Panel, pick: PickArea| {
        let ui = UiState {
            focus,
            ..prompt_ui()
        };
        let terminal = render(full.width, full.height, &snapshot, &ui);
        let rect = pick(&areas(full, &snapshot, &ui).unwrap());
        let cell = terminal
            .backend()
            .buffer()
            .cell((rect.x, rect.y))
            .unwrap()
            .clone();
        assert_eq!(cell.symbol(), "┌");
        cell.fg
    };
    let panels: [(Panel, PickArea); 5] = [
        (Panel::Curves, |a| a.curves),
        (Panel::Attacks, |a| a.attacks),
        (Panel::SoftLabels, |a| a.soft_labels),
        (Panel::Perturbation, |a| a.perturbation),
        (Panel::Log, |a| a.log),
    ];
    for (panel, pick) in panels {
        let focused = corner(panel, pick);
        let other = corner(Panel::Prompt, pick);
        assert_ne!(focused, other, "{panel:?}");
        assert_eq!(focused, Color::Cyan, "{panel:?}");
    }
}

#[test]
fn cursor_follows_the_prompt_only_when_focused() {
    let snapshot = fixture();
    let ui = UiState {
        prompt: "attack pgd".into(),
        cursor: 3,
        ..UiState::default()
    };
    let mut terminal = render(80, 24, &snapshot, &ui);
    let prompt = areas(Rect::new(0, 0, 80, 24), &snapshot, &ui)
        .unwrap()
        .prompt;
    assert!(terminal.backend().cursor_visible());
    // "› " is two columns, then three characters.
    terminal
        .backend_mut()
        .assert_cursor_position((prompt.x + 5, prompt.y));

    let ui = UiState {
        focus: Panel::Curves,
        ..ui
    };
    let terminal = render(80, 24, &snapshot, &ui);
    assert!(!terminal.backend().cursor_visible());
}

#[test]
fn long_prompt_scrolls_to_keep_the_cursor_visible() {
    let snapshot = fixture();
    let prompt: String = "x".repeat(200);
    let ui = UiState {
        cursor: 200,
        prompt,
        ..UiState::default()
    };
    let mut terminal = render(80, 24, &snapshot, &ui);
    let row = areas(Rect::new(0, 0, 80, 24), &snapshot, &ui)
        .unwrap()
        .prompt;
    terminal.backend_mut().assert_cursor_position((79, row.y));
}

#[test]
fn status_line_keeps_the_important_fields_at_80_columns() {
    let terminal = render(80, 24, &fixture(), &prompt_ui());
    let text = buffer_text(terminal.backend().buffer());
    let status = text.lines().next().unwrap();
    for needle in ["epoch 4 batch 23/50", "●unsaved", "micro-cnn", "⟳ training"] {
        assert!(
            status.contains(needle),
            "{needle:?} missing from {status:?}"
        );
    }
    let terminal = render(160, 48, &fixture(), &prompt_ui());
    let text = buffer_text(terminal.backend().buffer());
    let status = text.lines().next().unwrap();
    for needle in [
        "mnist (embedded",
        "teacher small-cnn",
        "ε 0.300",
        "seed 7",
        "1:02:03",
    ] {
        assert!(
            status.contains(needle),
            "{needle:?} missing from {status:?}"
        );
    }
}

#[test]
fn status_line_names_the_device_only_when_every_other_field_fits() {
    let mut snapshot = fixture();
    snapshot.status.device = "wgpu GPU: llvmpipe".into();
    let status_at = |width| {
        let terminal = render(width, 48, &snapshot, &prompt_ui());
        let text = buffer_text(terminal.backend().buffer());
        text.lines().next().unwrap().to_string()
    };
    let wide = status_at(200);
    assert!(wide.contains("wgpu GPU: llvmpipe"), "{wide:?}");
    assert!(
        wide.contains("teacher small-cnn") && wide.contains("seed 7"),
        "{wide:?}"
    );
    let narrow = status_at(120);
    assert!(!narrow.contains("wgpu"), "{narrow:?}");
}

#[test]
fn no_size_panics() {
    let snapshots = [fixture(), Snapshot::default(), diagnosed()];
    let overlays = [
        None,
        Some(Overlay::ConfirmQuit),
        Some(Overlay::Help {
            text: "help\n".repeat(50),
            scroll: 1000,
        }),
    ];
    let mut sizes: Vec<(u16, u16)> = vec![(0, 0), (1, 1), (0, 24), (80, 0), (2, 40)];
    for w in [1, 5, 20, 39, 40, 41, 55, 79, 80, 81, 120, 159, 160, 200] {
        for h in [1, 3, 11, 12, 13, 24, 48, 60] {
            if sizes.len() < 120 && (w + h) % 3 != 1 {
                sizes.push((w, h));
            }
        }
    }
    sizes.extend([
        (MIN_WIDTH, MIN_HEIGHT),
        (200, 60),
        (MIN_WIDTH - 1, 60),
        (200, MIN_HEIGHT - 1),
    ]);
    for (w, h) in sizes {
        for snapshot in &snapshots {
            for overlay in &overlays {
                let ui = UiState {
                    overlay: overlay.clone(),
                    log_scroll: 1000,
                    ..prompt_ui()
                };
                render(w, h, snapshot, &ui);
            }
        }
    }
}

#[test]
fn malformed_sample_does_not_panic() {
    let mut snapshot = fixture();
    let sample = snapshot.sample.as_mut().unwrap();
    sample.adversarial.truncate(10);
    sample.student_adversarial.clear();
    sample.class_names.truncate(3);
    sample.true_class = 42;
    sample.epsilon = f32::NAN;
    snapshot.curves.batch_losses.push(f64::NAN);
    snapshot.curves.epochs[1].robust = None;
    for (w, h) in [(80, 24), (160, 48), (45, 13)] {
        render(w, h, &snapshot, &prompt_ui());
    }
    let mut odd = fixture();
    let sample = odd.sample.as_mut().unwrap();
    (sample.channels, sample.height, sample.width) = (3, 1, 1);
    render(80, 24, &odd, &prompt_ui());
}

/// Long lines wrap at word boundaries instead of being cut: a recovery offer in the log, and
/// each command's summary in the help window at 80×24.
#[test]
fn long_log_lines_and_the_help_wrap_at_80_columns() {
    let mut snapshot = fixture();
    let offer = "The last session did not end cleanly (12 commands, the last `attack \
                 autoattack n=100`). `recover` re-runs it (the command in flight then is lost); \
                 anything else starts afresh.";
    snapshot.log.push(LogLine {
        level: LogLevel::Warning,
        text: offer.into(),
    });
    let text = buffer_text(render(80, 24, &snapshot, &prompt_ui()).backend().buffer());
    for word in ["cleanly", "`recover`", "afresh."] {
        assert!(text.contains(word), "`{word}` is cut off:\n{text}");
    }

    let ui = UiState {
        overlay: Some(Overlay::Help {
            text: rslad_tui::lab::command::help(),
            scroll: 0,
        }),
        ..UiState::default()
    };
    let text = buffer_text(render(80, 24, &snapshot, &ui).backend().buffer());
    // The first commands' summaries, to their last words.
    for words in ["under", "resumes the epoch", "(Ctrl-C too)"] {
        assert!(text.contains(words), "`{words}` is cut off:\n{text}");
    }
}

// ---------------------------------------------------------------------------------------
// The results board

fn board_table(number: usize, method: &str, clean: f64, robust: f64) -> AttackTable {
    AttackTable {
        title: "micro-cnn, 200 test images, ε = 0.3".into(),
        clean,
        rows: vec![AttackRow {
            name: "PGD-40".into(),
            robust,
            detail: format!("max |δ| 0.300 · {}.1 s", 2 + number),
        }],
        flags: Vec::new(),
        context: Some(TableContext {
            number,
            dataset: "mnist".into(),
            model: "micro-cnn".into(),
            method: method.into(),
            epochs: 0,
            batches: 40,
            epsilon: 0.3,
            images: 200,
            recalibrated: String::new(),
        }),
        flag_bases: Vec::new(),
    }
}

/// Lesson 2's shape: three methods, the same student, budget and attack.
fn three_runs() -> Vec<AttackTable> {
    vec![
        board_table(1, "rslad α=0.833", 62.5, 12.0),
        board_table(2, "ard α=1.00", 71.0, 8.5),
        board_table(3, "sat", 73.0, 15.5),
    ]
}

fn board_fixture() -> Snapshot {
    let mut snapshot = fixture();
    snapshot.results = three_runs();
    snapshot.attack = snapshot.results.last().cloned();
    snapshot.status.busy = None;
    snapshot
}

#[test]
fn snapshot_results_board_three_runs_80x24() {
    snapshot_test(
        "workbench_board_80x24",
        80,
        24,
        &board_fixture(),
        &UiState::default(),
    );
    let text = buffer_text(
        render(80, 24, &board_fixture(), &UiState::default())
            .backend()
            .buffer(),
    );
    for needle in ["rslad", "ard", "sat", "12.0", "8.5", "15.5", "micro-cnn"] {
        assert!(
            text.contains(needle),
            "{needle:?} missing from the board:\n{text}"
        );
    }
}

#[test]
fn snapshot_results_board_160x48_shows_every_column_that_varies() {
    let mut snapshot = board_fixture();
    // A fourth table: another model and ε, under two attacks.
    let mut other = board_table(4, "rslad α=0.833", 88.0, 35.8);
    other.rows.push(AttackRow {
        name: "AutoAttack".into(),
        robust: 31.0,
        detail: "max |δ| 0.100".into(),
    });
    let context = other.context.as_mut().unwrap();
    context.model = "small-cnn".into();
    context.epsilon = 0.1;
    context.epochs = 2;
    context.batches = 5;
    snapshot.results.push(other.clone());
    snapshot.attack = Some(other);
    snapshot_test(
        "workbench_board_160x48",
        160,
        48,
        &snapshot,
        &UiState::default(),
    );
}

#[test]
fn results_print_as_text_and_markdown() {
    let board = three_runs();
    let plain = results::plain(&board);
    assert!(
        plain.starts_with("results: 3 table(s), mnist, micro-cnn, ε = 0.3, 200 test images\n"),
        "{plain}"
    );
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), 5, "heading, header and three lines:\n{plain}");
    assert!(lines[1].starts_with("#  method"), "{plain}");
    assert!(
        lines[2].contains("rslad α=0.833  40 batches  PGD-40")
            && lines[2].ends_with("62.50     12.00"),
        "{plain}"
    );
    assert!(lines[4].starts_with("3  sat"), "{plain}");

    let markdown = results::markdown(&board);
    let rows: Vec<&str> = markdown.lines().collect();
    assert_eq!(
        rows[0],
        "| # | data | model | method | trained | attack | ε | images | clean % | robust % |"
    );
    assert_eq!(rows[1], "|---:|---|---|---|---|---|---:|---:|---:|---:|");
    assert_eq!(
        rows[3],
        "| 2 | mnist | micro-cnn | ard α=1.00 | 40 batches | PGD-40 | 0.3 | 200 | 71.00 | 8.50 |"
    );
    assert_eq!(rows.len(), 5);
    assert!(results::plain(&[]).starts_with("no results yet"));
}

#[test]
fn training_budgets_and_epsilons_read_as_typed() {
    assert_eq!(results::training(0, 40, false), "40 batches");
    assert_eq!(results::training(1, 0, false), "1 epoch");
    assert_eq!(results::training(2, 1, false), "2 epochs + 1 batch");
    assert_eq!(results::training(2, 5, true), "2 ep + 5 b");
    assert_eq!(results::epsilon(0.3), "0.3");
    assert_eq!(results::epsilon(8.0 / 255.0), "8/255");
    assert_eq!(results::epsilon(0.1), "0.1");
}

// ---------------------------------------------------------------------------------------
// Lecture mode

fn render_lecture(
    width: u16,
    height: u16,
    snapshot: &Snapshot,
    lecture: &Lecture,
    ui: &UiState,
) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal
        .draw(|frame| view::draw_lecture(frame, snapshot, lecture, ui))
        .expect("draw");
    terminal
}

const NOTE: &str = "Reset the student and train it with ARD: the same budget, the same seed. ARD \
                    distils the teacher's soft labels at temperature 30 on natural images while \
                    the student sees adversarial ones; compare its clean and robust accuracy \
                    with RSLAD's on the board.";

fn lecture() -> Lecture {
    Lecture {
        title: "Lesson 2: RSLAD vs ARD vs SAT".into(),
        intro: "Three ways to make a small student robust, trained for the same 40 batches from \
                the same seed and attacked the same way. Watch the curves, then compare the \
                three runs on the results board."
            .into(),
        sections: vec![
            "1. One student, three methods".into(),
            "2. ARD".into(),
            "3. SAT".into(),
            "4. Reading the three tables".into(),
        ],
        section: Some(1),
        note: NOTE.into(),
        position: 6,
        len: 17,
        playing: false,
        speed: 1.0,
        at_marker: true,
        started: true,
        about: "13 commands in 4 sections · recorded by rslad-tui 0.1.0 on burn-flex (CPU, \
                x86-64 avx512, 2 threads) · seed 0"
            .into(),
    }
}

fn lecture_ui() -> UiState {
    UiState {
        focus: Panel::Log,
        ..UiState::default()
    }
}

#[test]
fn snapshot_lecture_title_screen_80x24() {
    let title = Lecture {
        position: 0,
        section: None,
        note: String::new(),
        at_marker: false,
        started: false,
        ..lecture()
    };
    let terminal = render_lecture(80, 24, &Snapshot::default(), &title, &lecture_ui());
    let text = buffer_text(terminal.backend().buffer());
    assert_snapshot("lecture_title_80x24", &text);
    for absent in [
        "no epochs yet",
        "ε 0.000",
        "type `step`",
        "●unsaved",
        "⟳",
        "›",
    ] {
        assert!(
            !text.contains(absent),
            "{absent:?} on the title screen:\n{text}"
        );
    }
    for present in [
        "Lesson 2: RSLAD vs ARD vs SAT",
        "4. Reading the three tables",
        "space start",
    ] {
        assert!(text.contains(present), "{present:?} missing:\n{text}");
    }
}

/// Every word of `note` appears whole in `text`, in order.
fn assert_whole_words(note: &str, text: &str) {
    let rendered: Vec<&str> = text
        .lines()
        .flat_map(|l| l.split(['│', ' ']))
        .filter(|w| !w.is_empty())
        .collect();
    let mut at = 0;
    for word in note.split_whitespace() {
        let found = rendered[at..].iter().position(|w| *w == word);
        let Some(found) = found else {
            panic!("{word:?} is not whole on screen:\n{text}");
        };
        at += found + 1;
    }
}

#[test]
fn snapshot_lecture_notes_panel_80x24() {
    let terminal = render_lecture(80, 24, &board_fixture(), &lecture(), &lecture_ui());
    let text = buffer_text(terminal.backend().buffer());
    assert_snapshot("lecture_notes_80x24", &text);
    assert_whole_words(NOTE, &text);
    for absent in ["●unsaved", "⟳", "type `step`", "Tab focus/complete"] {
        assert!(
            !text.contains(absent),
            "{absent:?} in lecture mode:\n{text}"
        );
    }
    assert!(text.contains("⏸ playback 6/17"), "{text}");
    assert!(text.contains("space continue"), "{text}");
}

#[test]
fn a_long_note_scrolls_and_says_so() {
    let long = Lecture {
        note: format!("{NOTE} {NOTE} {NOTE}"),
        ..lecture()
    };
    let text = buffer_text(
        render_lecture(80, 24, &board_fixture(), &long, &lecture_ui())
            .backend()
            .buffer(),
    );
    assert!(text.contains("more · ? shows it all"), "{text}");
    // At the bottom of the note, its last words are on screen.
    let ui = UiState {
        focus: Panel::Notes,
        notes_scroll: 1000,
        ..lecture_ui()
    };
    let text = buffer_text(
        render_lecture(80, 24, &board_fixture(), &long, &ui)
            .backend()
            .buffer(),
    );
    assert!(text.contains("above"), "{text}");
    assert!(text.contains("RSLAD's on the board."), "{text}");
}

#[test]
fn snapshot_lecture_zoomed_panel_80x24() {
    let ui = UiState {
        focus: Panel::Attacks,
        zoomed: true,
        ..lecture_ui()
    };
    let terminal = render_lecture(80, 24, &board_fixture(), &lecture(), &ui);
    let text = buffer_text(terminal.backend().buffer());
    assert_snapshot("lecture_zoomed_attacks_80x24", &text);
    assert!(text.contains("z/Esc back"), "{text}");
    assert!(
        !text.contains("Soft labels"),
        "only the zoomed panel:\n{text}"
    );
}

#[test]
fn snapshot_workbench_zoomed_perturbation_80x24() {
    let ui = UiState {
        focus: Panel::Perturbation,
        zoomed: true,
        ..UiState::default()
    };
    let snapshot = fixture();
    snapshot_test(
        "workbench_zoomed_perturbation_80x24",
        80,
        24,
        &snapshot,
        &ui,
    );
    // Zoomed, the images are drawn larger than in the panel.
    let terminal = render(80, 24, &snapshot, &ui);
    let text = buffer_text(terminal.backend().buffer());
    let cells = |t: &str| t.matches('▀').count();
    let unzoomed = buffer_text(render(80, 24, &snapshot, &prompt_ui()).backend().buffer());
    assert!(cells(&text) > 2 * cells(&unzoomed), "{text}");
}

#[test]
fn lecture_mode_never_panics_at_any_size() {
    let overlays = [
        None,
        Some(Overlay::Help {
            text: format!("{NOTE}\n").repeat(20),
            scroll: 1000,
        }),
    ];
    let states = [
        lecture(),
        Lecture {
            position: 0,
            ..lecture()
        },
        Lecture {
            note: "x".repeat(3000),
            ..lecture()
        },
        Lecture::default(),
    ];
    for (w, h) in [
        (0, 0),
        (1, 1),
        (39, 24),
        (40, 12),
        (41, 13),
        (55, 17),
        (80, 24),
        (120, 36),
        (200, 60),
        (250, 12),
        (40, 80),
    ] {
        for lecture in &states {
            for overlay in &overlays {
                for zoomed in [false, true] {
                    for focus in Panel::LECTURE_CYCLE {
                        let ui = UiState {
                            focus,
                            zoomed,
                            overlay: overlay.clone(),
                            notes_scroll: 50,
                            log_scroll: 1000,
                            ..UiState::default()
                        };
                        render_lecture(w, h, &board_fixture(), lecture, &ui);
                        // The workbench zooms the same panels.
                        if focus != Panel::Notes && lecture.position == 0 {
                            render(w, h, &board_fixture(), &ui);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn wrapping_keeps_every_word_whole() {
    let rows = text::wrap("a bb ccc dddd eeeee ffffff", 7);
    assert_eq!(rows, ["a bb", "ccc", "dddd", "eeeee", "ffffff"]);
    assert!(rows.iter().all(|r| text::width(r) <= 7));
    // A word longer than a row is the only thing broken; indentation hangs.
    assert_eq!(text::wrap("  abcdefghij", 6), ["  abcd", "  efgh", "  ij"]);
    assert_eq!(
        text::wrap_hanging("  usage   the summary", 13, 2),
        ["  usage   the", "    summary"]
    );
    assert_eq!(text::wrap("one\n\ntwo", 10), ["one", "", "two"]);
    assert_eq!(text::wrap("", 10), [""]);
}

#[test]
fn long_log_lines_wrap_instead_of_being_cut() {
    let mut snapshot = fixture();
    let long = "micro-cnn, 200 test images, ε = 0.3: clean 62.50%, PGD-40 12.00%; the adversarial \
                images stay in the ε-ball and in [0, 1], and every one of these words must show";
    snapshot.log.push(LogLine {
        level: LogLevel::Info,
        text: long.into(),
    });
    let text = buffer_text(render(80, 24, &snapshot, &prompt_ui()).backend().buffer());
    assert_whole_words(long, &text);
}

#[test]
fn the_workbench_zooms_the_focused_panel_and_lists_the_results() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent};
    use rslad_tui::lab::history::History;
    use rslad_tui::lab::live::Shared;
    use rslad_tui::workbench::app::App;
    use std::sync::Arc;
    let shared = Arc::new(Shared::default());
    let (sender, _jobs) = std::sync::mpsc::channel();
    let mut app = App::new(Arc::clone(&shared), sender, History::open(None));
    let key = |app: &mut App, code: KeyCode| app.handle_key(KeyEvent::from(code));
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Char('z'));
    assert_eq!(app.ui.zoomed_panel(), Some(Panel::Curves));
    key(&mut app, KeyCode::Tab);
    assert_eq!(
        app.ui.zoomed_panel(),
        Some(Panel::SoftLabels),
        "Tab moves the zoom"
    );
    key(&mut app, KeyCode::Esc);
    assert!(
        !app.ui.zoomed && app.ui.focus == Panel::SoftLabels,
        "Esc leaves the zoom"
    );
    key(&mut app, KeyCode::Char('z'));
    key(&mut app, KeyCode::Char('r'));
    assert!(
        !app.ui.zoomed && app.ui.focus == Panel::Prompt,
        "typing ends the zoom"
    );

    shared.update(|s| s.results = three_runs());
    for c in "esults --markdown".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    let log: Vec<String> = shared.snapshot().log.into_iter().map(|l| l.text).collect();
    assert!(
        log.iter().any(|l| l.starts_with("| # | data | model")),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.contains("| sat |")), "{log:?}");
}

/// Lecture mode as the playback draws it after playing from the title screen: it stops at
/// the second marker by itself, with that marker's note in full and "space continues".
#[test]
fn snapshot_lecture_auto_pause_at_a_marker_80x24() {
    use rslad_tui::lab::session::{Entry, Outcome, Session};
    use rslad_tui::workbench::playback::{Controls, Playback};
    use std::time::Duration;
    let mut before = fixture();
    before.status.epoch = 2;
    before.curves.epochs.truncate(2);
    before.curves.batch_losses.truncate(10);
    before.attack = None;
    let after = board_fixture();
    let command = |line: &str, at: f64, snapshot: Snapshot| Entry::Command {
        line: line.into(),
        at,
        outcome: Box::new(Outcome {
            snapshot,
            ..Outcome::default()
        }),
    };
    let mut session = Session::new(7);
    session.title = "Lesson 2: RSLAD vs ARD vs SAT".into();
    session.entries = vec![
        Entry::Mark {
            title: "1. One student, three methods".into(),
            note: "Each method trains the same student.".into(),
            at: 0.0,
        },
        command("step 2", 40.0, before),
        command("attack pgd n=200", 42.0, after),
        Entry::Mark {
            title: "2. ARD".into(),
            note: NOTE.into(),
            at: 43.0,
        },
        command("eval", 50.0, fixture()),
    ];
    let mut controls = Controls::new(Playback::new(session).named("lesson-2"));
    let space = |c: &mut Controls| {
        c.key(ratatui::crossterm::event::KeyEvent::from(
            ratatui::crossterm::event::KeyCode::Char(' '),
        ))
    };
    let play = |c: &mut Controls| {
        space(c);
        for _ in 0..500 {
            c.playback.tick(Duration::from_millis(100));
        }
    };
    play(&mut controls);
    assert_eq!(controls.playback.position, 1, "stopped at the first marker");
    play(&mut controls);
    assert_eq!(
        controls.playback.position, 4,
        "stopped at the second marker"
    );
    assert!(controls.playback.at_marker && !controls.playback.playing);
    let (snapshot, lecture) = controls.frame();
    let terminal = render_lecture(80, 24, &snapshot, &lecture, &controls.ui);
    let text = buffer_text(terminal.backend().buffer());
    assert_snapshot("lecture_auto_pause_80x24", &text);
    assert_whole_words(NOTE, &text);
    assert!(text.contains("space continue"), "{text}");
}

#[test]
fn a_title_screen_too_small_for_everything_says_what_it_left_out() {
    let title = Lecture {
        position: 0,
        section: None,
        ..lecture()
    };
    let text = buffer_text(
        render_lecture(40, 12, &Snapshot::default(), &title, &lecture_ui())
            .backend()
            .buffer(),
    );
    assert!(text.contains("Lesson 2: RSLAD vs ARD vs SAT"), "{text}");
    assert!(
        text.contains("… and"),
        "the sections left out are counted:\n{text}"
    );
    assert!(
        !text.contains("recorded by"),
        "the least important part goes first:\n{text}"
    );
}

// ---------------------------------------------------------------------------------------
// The loss around a diagnosed image (the Curves panel's second plot)

/// The fixture after a `diagnose` of the student as the status shows it (epoch 3, batch 23):
/// along the gradient's sign the loss climbs to 2.4 at ε, random directions reach 0.35 at
/// most, 0.15 on average; two of eight checks fired.
fn diagnosed() -> Snapshot {
    let offsets: Vec<f32> = (0..=10).map(|k| k as f32 / 10.0).collect();
    let curve = |top: f32| -> Vec<f32> {
        offsets
            .iter()
            .map(|t| 0.05 + (top - 0.05) * t * t)
            .collect()
    };
    Snapshot {
        diagnosis: Some(DiagnosisView {
            image: Some(7),
            images: 200,
            epsilon: EPS,
            along_gradient: curve(2.4),
            random_max: curve(0.35),
            random_mean: curve(0.15),
            offsets,
            checks: 8,
            flagged: 2,
            model: "micro-cnn".into(),
            method: "rslad α=0.833".into(),
            epochs: 3,
            batches: 23,
            highest_losses: Vec::new(),
        }),
        ..fixture()
    }
}

/// Braille cells of `color` inside `area`: (column, row) of each.
fn braille_cells(buf: &Buffer, area: Rect, color: Color) -> Vec<(u16, u16)> {
    let mut cells = Vec::new();
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            let cell = &buf[(x, y)];
            let braille = cell
                .symbol()
                .chars()
                .next()
                .is_some_and(|c| ('\u{2801}'..='\u{28FF}').contains(&c));
            if braille && cell.fg == color && !cell.modifier.contains(Modifier::DIM) {
                cells.push((x, y));
            }
        }
    }
    cells
}

#[test]
fn a_diagnosis_draws_the_loss_around_its_image_beside_the_curves() {
    let snapshot = diagnosed();
    let terminal = render(160, 48, &snapshot, &prompt_ui());
    let buf = terminal.backend().buffer();
    let text = buffer_text(buf);
    for expected in [
        "Curves · epoch 3",
        "Loss · image 7 · 3 ep + 23 b",
        "⚠ 2 of 8 checks suggest masking",
        "sign(∇) 2.40",
        "random max 0.35",
    ] {
        assert!(text.contains(expected), "no {expected:?} in\n{text}");
    }
    assert!(!text.contains("stale"), "{text}");
    // Zoomed, the panel has room for every word and the mean.
    let zoomed = UiState {
        focus: Panel::Curves,
        zoomed: true,
        ..UiState::default()
    };
    let text = buffer_text(render(160, 48, &snapshot, &zoomed).backend().buffer());
    for expected in [
        "Loss around test image 7 · after 3 epochs + 23 batches",
        "⚠ 2 of 8 checks suggest masking · 200 images, ε 0.300",
        "along sign(∇) 2.40",
        "random, highest 0.35",
        "mean 0.15",
    ] {
        assert!(text.contains(expected), "no {expected:?} in\n{text}");
    }
    // The plot is the right half of the Curves panel: the gradient's line (red) climbs
    // above the highest random direction's (cyan), and both are drawn.
    let curves = areas(Rect::new(0, 0, 160, 48), &snapshot, &prompt_ui())
        .unwrap()
        .curves;
    let half = curves.width / 2;
    let plot = Rect::new(
        curves.x + curves.width - half,
        curves.y,
        half,
        curves.height,
    );
    let red = braille_cells(buf, plot, Color::Red);
    let cyan = braille_cells(buf, plot, Color::Cyan);
    assert!(!red.is_empty() && !cyan.is_empty(), "{text}");
    let top = |cells: &[(u16, u16)]| cells.iter().map(|c| c.1).min().unwrap();
    assert!(
        top(&red) + 3 < top(&cyan),
        "the gradient's loss should rise far above the random one's:\n{text}"
    );
    // The training curves keep the left half.
    let left = Rect::new(curves.x, curves.y, curves.width - half, curves.height);
    assert!(!braille_cells(buf, left, Color::Green).is_empty(), "{text}");
}

#[test]
fn a_diagnosis_says_stale_once_the_student_has_trained_since() {
    let mut snapshot = diagnosed();
    (snapshot.status.epoch, snapshot.status.batch) = (4, 0);
    let text = buffer_text(render(160, 48, &snapshot, &prompt_ui()).backend().buffer());
    assert!(text.contains("Loss · 3 ep + 23 b · stale"), "{text}");
    let zoomed = UiState {
        focus: Panel::Curves,
        zoomed: true,
        ..UiState::default()
    };
    let text = buffer_text(render(160, 48, &snapshot, &zoomed).backend().buffer());
    assert!(
        text.contains("after 3 epochs + 23 batches · stale: trained since"),
        "{text}"
    );
}

#[test]
fn a_small_curves_panel_keeps_the_curves_and_zooming_shows_both() {
    let snapshot = diagnosed();
    let text = buffer_text(render(80, 24, &snapshot, &prompt_ui()).backend().buffer());
    assert!(text.contains("Curves · epoch 3"), "{text}");
    assert!(
        !text.contains("Loss"),
        "no room for the plot at 80×24:\n{text}"
    );
    let zoomed = UiState {
        focus: Panel::Curves,
        zoomed: true,
        ..UiState::default()
    };
    let text = buffer_text(render(80, 24, &snapshot, &zoomed).backend().buffer());
    assert!(text.contains("Curves · epoch 3"), "{text}");
    assert!(text.contains("Loss · image 7 · 3 ep + 23 b"), "{text}");
    assert!(text.contains("sign(∇)"), "{text}");
}

#[test]
fn a_diagnosis_without_a_correct_image_says_there_is_nothing_to_plot() {
    let mut snapshot = diagnosed();
    let d = snapshot.diagnosis.as_mut().unwrap();
    d.image = None;
    for curve in [
        &mut d.offsets,
        &mut d.along_gradient,
        &mut d.random_max,
        &mut d.random_mean,
    ] {
        curve.clear();
    }
    d.flagged = 0;
    let text = buffer_text(render(160, 48, &snapshot, &prompt_ui()).backend().buffer());
    assert!(
        text.contains("Loss · after 3 epochs + 23 batches"),
        "{text}"
    );
    assert!(text.contains("✓ no sign of gradient masking"), "{text}");
    assert!(text.contains("no image classified correctly"), "{text}");
}

#[test]
fn lecture_mode_draws_the_loss_plot_and_odd_values_never_panic() {
    let snapshot = diagnosed();
    let text = buffer_text(
        render_lecture(160, 48, &snapshot, &lecture(), &lecture_ui())
            .backend()
            .buffer(),
    );
    assert!(text.contains("Loss · image 7"), "{text}");
    let mut odd = diagnosed();
    let d = odd.diagnosis.as_mut().unwrap();
    d.along_gradient[3] = f32::NAN;
    d.random_max[10] = f32::INFINITY;
    d.random_mean.truncate(2);
    d.offsets.truncate(1);
    for (w, h) in [
        (0, 0),
        (1, 1),
        (40, 12),
        (61, 20),
        (80, 24),
        (120, 36),
        (250, 12),
    ] {
        for focus in Panel::LECTURE_CYCLE {
            for zoomed in [false, true] {
                let ui = UiState {
                    focus,
                    zoomed,
                    ..UiState::default()
                };
                for s in [&snapshot, &odd] {
                    render_lecture(w, h, s, &lecture(), &ui);
                    render(w, h, s, &ui);
                }
            }
        }
    }
}

//! `rslad-tui replay FILE`: shows a recorded session in the workbench without computing
//! anything, so a lecture never waits for training. Space plays and pauses, → and ← step,
//! + and − change the speed, ] and [ jump between markers, q leaves.

use super::view::{self, Overlay, UiState};
use crate::lab::session::{Entry, Session};
use crate::lab::snapshot::{LogLevel, LogLine, Snapshot};
use anyhow::{Context, Result};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use std::time::{Duration, Instant};

/// The longest pause between two entries while playing at 1× (recorded gaps are shorter when
/// the original was quick, and capped at this when it waited for training).
const MAX_GAP: f64 = 2.0;
const MIN_GAP: f64 = 0.3;
const LOG_LINES: usize = crate::lab::live::LOG_LIMIT;

const KEYS: &str = "space play/pause · → ← step · + − speed · ] [ next/previous marker · \
                    Home End · ? help · q quit";

/// Where the playback stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Playback {
    session: Session,
    /// Entries shown so far (0: none).
    pub position: usize,
    pub playing: bool,
    pub speed: f64,
}

impl Playback {
    pub fn new(session: Session) -> Playback {
        Playback {
            session,
            position: 0,
            playing: false,
            speed: 1.0,
        }
    }

    pub fn len(&self) -> usize {
        self.session.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.session.entries.is_empty()
    }

    pub fn forward(&mut self) {
        self.position = (self.position + 1).min(self.len());
    }

    pub fn back(&mut self) {
        self.position = self.position.saturating_sub(1);
    }

    /// To just after the next marker (the marker's section starts there).
    pub fn next_marker(&mut self) {
        if let Some((i, _)) = self
            .session
            .markers()
            .into_iter()
            .find(|(i, _)| *i >= self.position)
        {
            self.position = i + 1;
        }
    }

    /// To just after the marker before the current one.
    pub fn previous_marker(&mut self) {
        let markers = self.session.markers();
        let before: Vec<usize> = markers
            .iter()
            .map(|(i, _)| i + 1)
            .filter(|&p| p < self.position)
            .collect();
        self.position = before.last().copied().unwrap_or(0);
    }

    pub fn faster(&mut self) {
        self.speed = (self.speed * 2.0).min(16.0);
    }

    pub fn slower(&mut self) {
        self.speed = (self.speed / 2.0).max(0.25);
    }

    /// How long to wait before showing the next entry while playing.
    pub fn delay(&self) -> Duration {
        let at = |i: usize| match &self.session.entries[i] {
            Entry::Command { at, .. } | Entry::Mark { at, .. } => *at,
        };
        let gap = if self.position == 0 || self.position >= self.len() {
            MIN_GAP
        } else {
            at(self.position) - at(self.position - 1)
        };
        Duration::from_secs_f64(gap.clamp(MIN_GAP, MAX_GAP) / self.speed)
    }

    /// What the views show at this position: the last command's snapshot, and the log of
    /// everything shown so far (commands echoed, markers as section lines).
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::default();
        let mut log = Vec::new();
        for entry in &self.session.entries[..self.position] {
            match entry {
                Entry::Command { line, outcome, .. } => {
                    log.push(LogLine {
                        level: LogLevel::Command,
                        text: line.clone(),
                    });
                    log.extend(outcome.log.iter().cloned());
                    if let Some(error) = &outcome.error {
                        log.push(LogLine {
                            level: LogLevel::Error,
                            text: error.clone(),
                        });
                    }
                    let sample = snapshot.sample.take();
                    snapshot = outcome.snapshot.clone();
                    if outcome.sample_unchanged {
                        snapshot.sample = sample;
                    }
                }
                Entry::Mark { title, note, .. } => log.push(LogLine {
                    level: LogLevel::Warning,
                    text: if note.is_empty() {
                        format!("■ {title}")
                    } else {
                        format!("■ {title}: {note}")
                    },
                }),
            }
        }
        let excess = log.len().saturating_sub(LOG_LINES);
        log.drain(..excess);
        snapshot.log = log;
        snapshot.status.busy = Some(format!(
            "{} playback {}/{} · {}×",
            if self.playing { "▶" } else { "⏸" },
            self.position,
            self.len(),
            self.speed
        ));
        snapshot
    }
}

/// Shows `session` in the workbench until the user quits.
pub fn run(session: Session) -> Result<()> {
    let mut playback = Playback::new(session);
    let mut ui = UiState {
        hint: Some(format!("  {KEYS}")),
        ..UiState::default()
    };
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let result = (|| -> Result<()> {
        let mut next_step = Instant::now() + playback.delay();
        let mut dirty = true;
        loop {
            if dirty {
                let snapshot = playback.snapshot();
                terminal.draw(|frame| view::draw(frame, &snapshot, &ui))?;
                dirty = false;
            }
            if event::poll(Duration::from_millis(50))? {
                if let Event::Key(key) = event::read()?
                    && key.kind != KeyEventKind::Release
                {
                    if ui.overlay.is_some() {
                        ui.overlay = None;
                    } else {
                        match key.code {
                            KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                            KeyCode::Char(' ') => playback.playing = !playback.playing,
                            KeyCode::Right | KeyCode::Char('n') => playback.forward(),
                            KeyCode::Left | KeyCode::Char('p') => playback.back(),
                            KeyCode::Char('+') | KeyCode::Char('=') => playback.faster(),
                            KeyCode::Char('-') => playback.slower(),
                            KeyCode::Char(']') => playback.next_marker(),
                            KeyCode::Char('[') => playback.previous_marker(),
                            KeyCode::Home => playback.position = 0,
                            KeyCode::End => playback.position = playback.len(),
                            KeyCode::Char('?') => {
                                ui.overlay = Some(Overlay::Help {
                                    text: format!("Playback keys:\n\n{KEYS}\n"),
                                    scroll: 0,
                                })
                            }
                            _ => {}
                        }
                    }
                    next_step = Instant::now() + playback.delay();
                }
                dirty = true;
            }
            if playback.playing && Instant::now() >= next_step {
                playback.forward();
                if playback.position >= playback.len() {
                    playback.playing = false;
                }
                next_step = Instant::now() + playback.delay();
                dirty = true;
            }
        }
    })();
    ratatui::restore();
    result
}

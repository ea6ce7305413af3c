//! Where a playback stands, and how it moves: entries shown so far, playing or paused, the
//! speed, and the training entry being revealed. Time comes in through [`Playback::tick`], so
//! tests drive it without waiting.

use super::frame::{self, Span};
use crate::lab::command::{self, Command, EngineCommand, Work};
use crate::lab::session::{Entry, Session};
use crate::lab::snapshot::Snapshot;
use crate::workbench::view::Lecture;
use std::time::Duration;

/// The shortest and longest wait before an entry while playing at 1× (the recorded time the
/// command took, within these).
const MIN_GAP: f64 = 0.3;
const MAX_GAP: f64 = 2.0;
/// The shortest and longest time a training entry takes to reveal at 1×.
const MIN_REVEAL: f64 = 1.5;
const MAX_REVEAL: f64 = 8.0;

/// Where the playback stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Playback {
    session: Session,
    /// What to call the session when it has no title (its file name).
    name: String,
    /// Entries shown so far (0: none, the title screen).
    pub position: usize,
    pub playing: bool,
    pub speed: f64,
    /// Paused by reaching a marker while playing (space continues).
    pub at_marker: bool,
    /// The training entry at `position` being revealed: the seconds (at 1×) done and in all.
    reveal: Option<(f64, f64)>,
    /// Seconds (at 1×) left before the next entry starts while playing.
    wait: f64,
}

impl Playback {
    pub fn new(session: Session) -> Playback {
        Playback {
            session,
            name: "recorded session".into(),
            position: 0,
            playing: false,
            speed: 1.0,
            at_marker: false,
            reveal: None,
            wait: MIN_GAP,
        }
    }

    /// The name shown when the session has no title of its own.
    pub fn named(mut self, name: &str) -> Playback {
        self.name = name.to_string();
        self
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn len(&self) -> usize {
        self.session.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.session.entries.is_empty()
    }

    /// How far the entry at `position` is revealed, in [0, 1), while one is.
    pub fn reveal_fraction(&self) -> Option<f64> {
        self.reveal
            .map(|(done, total)| if total > 0.0 { done / total } else { 0.0 })
    }

    /// Moves to `position`, paused there by the user (no reveal under way).
    fn go(&mut self, position: usize) {
        self.position = position.min(self.len());
        self.reveal = None;
        self.at_marker = false;
        self.wait = self.wait_before(self.position);
    }

    pub fn forward(&mut self) {
        self.go(self.position + 1);
    }

    pub fn back(&mut self) {
        // Back from a reveal under way shows the entry before it in full.
        let to = if self.reveal.is_some() {
            self.position
        } else {
            self.position.saturating_sub(1)
        };
        self.go(to);
    }

    pub fn home(&mut self) {
        self.go(0);
        self.playing = false;
    }

    pub fn end(&mut self) {
        self.go(self.len());
        self.playing = false;
    }

    /// To just after the next marker (the marker's section starts there).
    pub fn next_marker(&mut self) {
        if let Some((i, _)) = self
            .session
            .markers()
            .into_iter()
            .find(|(i, _)| *i >= self.position)
        {
            self.go(i + 1);
        }
    }

    /// To just after the marker before the current one.
    pub fn previous_marker(&mut self) {
        let current = self.position;
        let before = self
            .session
            .markers()
            .iter()
            .map(|(i, _)| i + 1)
            .rfind(|&p| p < current)
            .unwrap_or(0);
        self.go(before);
    }

    /// To just after marker `ordinal` (0-based), paused there as if playback had reached it.
    pub fn go_to_marker(&mut self, ordinal: usize) {
        if let Some((i, _)) = self.session.markers().get(ordinal) {
            self.go(i + 1);
            self.playing = false;
            self.at_marker = true;
        }
    }

    /// The marker `spec` names: its number (1 for the first), or the start of its title (case
    /// ignored, with or without the title's own numbering such as "2. "). Returns its ordinal.
    pub fn find_marker(&self, spec: &str) -> Result<usize, String> {
        let markers = self.session.markers();
        if markers.is_empty() {
            return Err(format!("{} has no markers to jump to", self.name));
        }
        if let Ok(n) = spec.trim().parse::<usize>()
            && (1..=markers.len()).contains(&n)
        {
            return Ok(n - 1);
        }
        let wanted = spec.trim().to_lowercase();
        let unnumbered = |t: &str| {
            t.trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start_matches(['.', ')', ':'])
                .trim_start()
                .to_lowercase()
        };
        if !wanted.is_empty()
            && let Some(found) = markers.iter().position(|(_, t)| {
                t.to_lowercase().starts_with(&wanted) || unnumbered(t).starts_with(&wanted)
            })
        {
            return Ok(found);
        }
        let list: Vec<String> = markers
            .iter()
            .enumerate()
            .map(|(n, (_, t))| format!("{}: {t}", n + 1))
            .collect();
        Err(format!(
            "no marker `{spec}` in {} (give a number from 1 to {} or the start of a title): {}",
            self.name,
            markers.len(),
            list.join("; ")
        ))
    }

    /// Space: play or pause (at the end there is nothing left to play).
    pub fn toggle(&mut self) {
        if self.playing {
            self.playing = false;
        } else if self.position < self.len() {
            self.playing = true;
            self.at_marker = false;
            if self.reveal.is_none() {
                self.wait = self.wait_before(self.position);
            }
        }
    }

    pub fn faster(&mut self) {
        self.speed = (self.speed * 2.0).min(16.0);
    }

    pub fn slower(&mut self) {
        self.speed = (self.speed / 2.0).max(0.25);
    }

    /// How long playing waits before showing the next entry, at this speed.
    pub fn delay(&self) -> Duration {
        Duration::from_secs_f64(self.wait_before(self.position) / self.speed)
    }

    /// Advances the playing clock by `dt` of real time; true when the view changed. An entry
    /// that trains is revealed batch by batch over its recorded time (within 1.5–8 s at 1×);
    /// reaching a marker pauses there.
    pub fn tick(&mut self, dt: Duration) -> bool {
        if !self.playing {
            return false;
        }
        let mut left = dt.as_secs_f64() * self.speed;
        let mut changed = false;
        while left > 0.0 && self.playing {
            if let Some((done, total)) = self.reveal {
                let step = (total - done).min(left);
                left -= step;
                changed = true;
                if done + step >= total {
                    self.reveal = None;
                    self.position += 1;
                    self.wait = self.wait_before(self.position);
                } else {
                    self.reveal = Some((done + step, total));
                }
                continue;
            }
            if self.position >= self.len() {
                self.playing = false;
                return true;
            }
            if self.wait > left {
                self.wait -= left;
                break;
            }
            left -= self.wait;
            changed = true;
            match self.session.entries[self.position] {
                Entry::Mark { .. } => {
                    self.position += 1;
                    self.playing = false;
                    self.at_marker = true;
                    self.wait = self.wait_before(self.position);
                }
                Entry::Command { .. } => match self.span(self.position) {
                    Some(_) => {
                        self.wait = 0.0;
                        self.reveal =
                            Some((0.0, self.gap(self.position).clamp(MIN_REVEAL, MAX_REVEAL)));
                    }
                    None => {
                        self.position += 1;
                        self.wait = self.wait_before(self.position);
                    }
                },
            }
        }
        if self.position >= self.len() && self.reveal.is_none() && self.playing {
            self.playing = false;
            changed = true;
        }
        changed
    }

    /// The recorded time entry `i` took (its time since the entry before).
    fn gap(&self, i: usize) -> f64 {
        let at = |i: usize| match &self.session.entries[i] {
            Entry::Command { at, .. } | Entry::Mark { at, .. } => *at,
        };
        if i == 0 || i >= self.len() {
            MIN_GAP
        } else {
            at(i) - at(i - 1)
        }
    }

    /// The wait before entry `i` is shown (a training entry takes its time revealing instead).
    fn wait_before(&self, i: usize) -> f64 {
        if i >= self.len() || self.span(i).is_some() {
            MIN_GAP
        } else {
            self.gap(i).clamp(MIN_GAP, MAX_GAP)
        }
    }

    /// The batches entry `i` trained, when it is a `step` that moved training forward.
    fn span(&self, i: usize) -> Option<Span> {
        let Some(Entry::Command { line, outcome, .. }) = self.session.entries.get(i) else {
            return None;
        };
        let steps = matches!(
            command::parse(line),
            Ok(Command::Run(Work::Engine(
                EngineCommand::Step { .. } | EngineCommand::StepBatches { .. }
            )))
        );
        if !steps {
            return None;
        }
        let before = frame::status_before(&self.session.entries, i);
        frame::training_span(&before, &outcome.snapshot.status)
    }

    /// What the views show now: the recorded snapshot after the entries shown, or, while a
    /// training entry is revealed, its batches and epochs up to where the reveal stands.
    pub fn snapshot(&self) -> Snapshot {
        let entries = &self.session.entries;
        let shown = frame::snapshot_at(entries, self.position);
        match (self.reveal_fraction(), self.span(self.position)) {
            (Some(fraction), Some(span)) => {
                let next = frame::snapshot_at(entries, self.position + 1);
                let line = match &entries[self.position] {
                    Entry::Command { line, .. } => line.as_str(),
                    Entry::Mark { .. } => "",
                };
                frame::interpolate(&shown, &next, &span, fraction, line)
            }
            _ => shown,
        }
    }

    /// What lecture mode shows besides the snapshot.
    pub fn lecture(&self) -> Lecture {
        let markers = self.session.markers();
        let current = markers.iter().rposition(|(i, _)| *i < self.position);
        let note = current
            .and_then(|m| match &self.session.entries[markers[m].0] {
                Entry::Mark { note, .. } => Some(note.clone()),
                Entry::Command { .. } => None,
            })
            .unwrap_or_default();
        let commands = self
            .session
            .entries
            .iter()
            .filter(|e| matches!(e, Entry::Command { .. }))
            .count();
        let s = &self.session;
        Lecture {
            title: if s.title.trim().is_empty() {
                self.name.clone()
            } else {
                s.title.clone()
            },
            intro: s.intro.clone(),
            sections: markers.iter().map(|(_, t)| t.to_string()).collect(),
            section: current,
            note,
            position: self.position,
            len: self.len(),
            playing: self.playing,
            speed: self.speed,
            at_marker: self.at_marker,
            started: s.entries[..self.position.min(self.len())]
                .iter()
                .any(|e| matches!(e, Entry::Command { .. })),
            about: format!(
                "{commands} commands in {} sections · recorded by {} on {} · seed {}",
                markers.len(),
                s.created_by,
                s.backend,
                s.seed
            ),
        }
    }
}

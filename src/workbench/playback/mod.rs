//! `rslad-tui replay FILE`: lecture mode, a recorded session shown in the workbench's panels
//! without computing anything, so a lecture never waits for training. A title screen first;
//! space plays, stopping at each marker with its note in the Notes panel; training entries are
//! revealed batch by batch at the playback speed; → ← step, ] [ jump between sections, z
//! zooms a panel, ? shows the keys and the whole note, q leaves.
//!
//! [`state`] is where the playback stands and how time moves it, [`frame`] builds what the
//! views show from the recording, [`keys`] maps keys and the mouse onto both.

mod frame;
mod keys;
mod state;

pub use keys::{Controls, KEYS};
pub use state::Playback;

use super::view;
use crate::lab::session::Session;
use anyhow::{Context, Result, anyhow};
use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use ratatui::crossterm::execute;
use std::time::{Duration, Instant};

/// Time between two frames while something moves (25 a second).
const FRAME: Duration = Duration::from_millis(40);

/// The playback of `session`, named `name` where it has no title, opened at `marker` (a
/// number or the start of a title) instead of the title screen; an error names the markers
/// when none matches.
pub fn open(session: Session, name: &str, marker: Option<&str>) -> Result<Playback> {
    let mut playback = Playback::new(session).named(name);
    if let Some(spec) = marker {
        let ordinal = playback.find_marker(spec).map_err(|e| anyhow!(e))?;
        playback.go_to_marker(ordinal);
    }
    Ok(playback)
}

/// Shows the playback until the user quits.
pub fn run(playback: Playback) -> Result<()> {
    let mut controls = Controls::new(playback);
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    // The wheel scrolls the log and the note; without mouse reporting the keys still do.
    let mouse = execute!(std::io::stdout(), EnableMouseCapture).is_ok();
    if mouse {
        // A panic must not leave the shell receiving mouse reports (ratatui's own hook,
        // called next, restores the rest of the terminal).
        let restore = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = execute!(std::io::stdout(), DisableMouseCapture);
            restore(info);
        }));
    }
    let result = event_loop(&mut terminal, &mut controls);
    if mouse {
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
    }
    ratatui::restore();
    result
}

fn event_loop(terminal: &mut ratatui::DefaultTerminal, controls: &mut Controls) -> Result<()> {
    let mut dirty = true;
    let mut last_tick = Instant::now();
    while !controls.quit {
        if dirty {
            let (snapshot, lecture) = controls.frame();
            terminal.draw(|frame| {
                controls.area = frame.area();
                view::draw_lecture(frame, &snapshot, &lecture, &controls.ui)
            })?;
            dirty = false;
        }
        if event::poll(FRAME)? {
            match event::read()? {
                Event::Key(key) => controls.key(key),
                Event::Mouse(mouse) => controls.mouse(mouse),
                _ => {}
            }
            dirty = true;
        }
        let now = Instant::now();
        if controls.playback.tick(now - last_tick) {
            dirty = true;
        }
        last_tick = now;
    }
    Ok(())
}

//! The keys of the help overlay, the same in the workbench and in playback, and its scrolling
//! (the mouse wheel's too).

use super::view::{Overlay, UiState};
use ratatui::crossterm::event::KeyCode;

/// A key while the help overlay is open: the arrows, j/k, Page Up/Down and Home scroll it (to
/// its last line at most); any other key closes it.
pub fn help_key(ui: &mut UiState, code: KeyCode) {
    let by = match code {
        KeyCode::Up | KeyCode::Char('k') => -1,
        KeyCode::Down | KeyCode::Char('j') => 1,
        KeyCode::PageUp => -10,
        KeyCode::PageDown => 10,
        KeyCode::Home => isize::MIN,
        _ => {
            ui.overlay = None;
            return;
        }
    };
    scroll_help(ui, by);
}

/// Scrolls the open help overlay by `by` lines (up where negative), between its first and its
/// last line.
pub fn scroll_help(ui: &mut UiState, by: isize) {
    if let Some(Overlay::Help { text, scroll }) = &mut ui.overlay {
        let last = text.lines().count().saturating_sub(1);
        *scroll = scroll.saturating_add_signed(by).min(last);
    }
}

#[cfg(test)]
mod tests {
    use super::{KeyCode, Overlay, UiState, help_key, scroll_help};

    fn help(lines: usize, scroll: usize) -> UiState {
        let text = (0..lines).map(|i| format!("line {i}\n")).collect();
        UiState {
            overlay: Some(Overlay::Help { text, scroll }),
            ..UiState::default()
        }
    }

    fn scroll_of(ui: &UiState) -> Option<usize> {
        match &ui.overlay {
            Some(Overlay::Help { scroll, .. }) => Some(*scroll),
            _ => None,
        }
    }

    #[test]
    fn the_scroll_keys_move_within_the_text_and_any_other_key_closes_it() {
        let cases = [
            (KeyCode::Down, 3, 4),
            (KeyCode::Char('j'), 24, 24),
            (KeyCode::Up, 0, 0),
            (KeyCode::Char('k'), 5, 4),
            (KeyCode::PageDown, 20, 24),
            (KeyCode::PageUp, 12, 2),
            (KeyCode::Home, 17, 0),
        ];
        for (code, from, to) in cases {
            let mut ui = help(25, from);
            help_key(&mut ui, code);
            assert_eq!(scroll_of(&ui), Some(to), "{code:?} from {from}");
        }
        let mut ui = help(25, 7);
        help_key(&mut ui, KeyCode::Esc);
        assert_eq!(ui.overlay, None);
    }

    #[test]
    fn the_mouse_wheel_scrolls_within_the_text() {
        for (by, from, to) in [(3, 23, 24), (3, 5, 8), (-3, 2, 0), (-3, 9, 6)] {
            let mut ui = help(25, from);
            scroll_help(&mut ui, by);
            assert_eq!(scroll_of(&ui), Some(to), "{by} from {from}");
        }
    }
}

//! A private tmux server driving the real binary in a pseudo-terminal, for the tests that need
//! a terminal (the workbench, the interactive REPL, playback).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A private tmux server (its own socket) running `script` in a window of `size`.
    pub fn start(name: &str, size: (u16, u16), script: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("{name}-{}", std::process::id()),
        };
        let (width, height) = (size.0.to_string(), size.1.to_string());
        let started = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "wb",
            "-x",
            &width,
            "-y",
            &height,
            "sh",
            "-c",
            script,
        ]);
        assert!(started.status.success(), "{started:?}");
        tmux
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs")
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "wb"]).stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "wb"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success());
    }

    /// Types a line literally and presses Enter.
    pub fn line(&self, text: &str) {
        assert!(
            self.run(&["send-keys", "-t", "wb", "-l", text])
                .status
                .success()
        );
        self.keys(&["Enter"]);
    }

    pub fn wait_for(&self, needle: &str, seconds: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "`{needle}` did not appear within {seconds} s; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

pub fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

//! The session journal: the session being recorded, on disk as it grows, so a crash loses at
//! most the command in flight. Each command appends its entry (one line of RON) instead of
//! rewriting the file, so a command costs the same at the 10,000th as at the first; the file
//! is rewritten whole only when the session's other fields change (a replay starts a new
//! session, `title` changes its title).
//!
//! The file is an ordinary session file (`session::load` reads it, `replay` plays it):
//!
//! ```text
//! (format:1,created_by:"…",backend:"…",device:…,seed:…,settings:"…",entries:[
//! Mark(title:"…",note:"…",at:…),
//! Command(line:"…",at:…,outcome:(…)),
//! ],title:"…",intro:"…")
//! ```
//!
//! The tail after the entries (`],title:…)`) is written again after each new entry.

use super::session::{self, Entry, Session};
use serde::Serialize;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub struct Journal {
    path: PathBuf,
    /// The open file and what it holds; None until the first write, and after a restart.
    written: Option<Written>,
}

struct Written {
    file: File,
    frame: Frame,
    /// How many of the session's entries the file holds.
    entries: usize,
    /// Where the tail starts: the end of the last entry.
    tail_at: u64,
}

/// The text around the entries.
#[derive(Clone, PartialEq)]
struct Frame {
    /// Every field before the entries, up to `entries:[` and a newline.
    head: String,
    /// `],title:…,intro:…)` and a newline.
    tail: String,
}

/// The fields of [`Session`] written before its entries (the serialized session without
/// them and without its title and introduction, which go after).
#[derive(Serialize)]
struct Head<'a> {
    format: u32,
    created_by: &'a str,
    backend: &'a str,
    device: crate::device::DeviceChoice,
    seed: u64,
    settings: &'a str,
}

impl Frame {
    fn of(session: &Session) -> io::Result<Frame> {
        let Session {
            format,
            created_by,
            backend,
            device,
            seed,
            settings,
            title,
            intro,
            entries: _,
        } = session;
        let head = ron_text(&Head {
            format: *format,
            created_by,
            backend,
            device: *device,
            seed: *seed,
            settings,
        })?;
        // A struct serializes as `(field:value,…)`: the entries go before its `)`.
        let head = head.strip_suffix(')').unwrap_or(&head).to_string() + ",entries:[\n";
        let tail = format!("],title:{},intro:{})\n", ron_text(title)?, ron_text(intro)?);
        Ok(Frame { head, tail })
    }
}

fn ron_text(value: &impl Serialize) -> io::Result<String> {
    ron::to_string(value).map_err(io::Error::other)
}

/// One entry and the newline after it.
fn entry_line(entry: &Entry) -> io::Result<String> {
    Ok(ron_text(entry)? + ",\n")
}

/// Refuses a journal that the reader would refuse: what the program writes it reads back.
fn check_readable(bytes: u64, entries: usize) -> io::Result<()> {
    if bytes > session::limits::FILE_BYTES || entries > session::limits::ENTRIES {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "it would pass {} MiB or {} entries, the most a session file may hold; \
                 `save session NAME` keeps the session so far",
                session::limits::FILE_BYTES >> 20,
                session::limits::ENTRIES
            ),
        ));
    }
    Ok(())
}

impl Journal {
    pub fn new(path: PathBuf) -> Journal {
        Journal {
            path,
            written: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The session was replaced (a replay starts afresh): the next write rewrites the file.
    pub fn restart(&mut self) {
        self.written = None;
    }

    /// Brings the file up to date with `session`: appends its new entries, or rewrites the
    /// whole file when anything else changed.
    pub fn write(&mut self, session: &Session) -> io::Result<()> {
        let frame = Frame::of(session)?;
        match &mut self.written {
            Some(written) if written.frame == frame && written.entries <= session.entries.len() => {
                written.append(&session.entries[written.entries..])
            }
            _ => {
                self.written = None;
                self.written = Some(Written::create(&self.path, session, frame)?);
                Ok(())
            }
        }
    }
}

impl Written {
    /// Writes the whole session (atomically: the old file stays until the new one is
    /// complete) and opens it to append to.
    fn create(path: &Path, session: &Session, frame: Frame) -> io::Result<Written> {
        let mut text = frame.head.clone();
        for entry in &session.entries {
            text += &entry_line(entry)?;
        }
        let tail_at = text.len() as u64;
        text += &frame.tail;
        check_readable(text.len() as u64, session.entries.len())?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        crate::atomic::write(path, text.as_bytes())?;
        let file = open_to_append(path)?;
        Ok(Written {
            file,
            frame,
            entries: session.entries.len(),
            tail_at,
        })
    }

    /// Writes `entries` over the tail, then the tail again, and flushes to disk. A failed
    /// write (a full disk) puts the old tail back, so the file still reads as before.
    fn append(&mut self, entries: &[Entry]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for entry in entries {
            text += &entry_line(entry)?;
        }
        let tail_at = self.tail_at + text.len() as u64;
        text += &self.frame.tail;
        check_readable(
            self.tail_at + text.len() as u64,
            self.entries + entries.len(),
        )?;
        if let Err(error) = self.write_at(self.tail_at, text.as_bytes()) {
            let tail = self.frame.tail.clone();
            let _ = self.file.set_len(self.tail_at);
            let _ = self.write_at(self.tail_at, tail.as_bytes());
            return Err(error);
        }
        self.tail_at = tail_at;
        self.entries += entries.len();
        Ok(())
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.write_all(bytes)?;
        self.file.sync_data()
    }
}

/// The journal just written, opened for writing in place (not through a symlink).
fn open_to_append(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let mut session = Session::new(7);
        session.settings = "settings with \"quotes\" and entries:[]".into();
        session.entries.push(Entry::Mark {
            title: "one".into(),
            note: "a note\nwith a newline".into(),
            at: 0.25,
        });
        session
    }

    #[test]
    fn the_journal_reads_back_as_the_session_after_appends_and_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.ron");
        let mut journal = Journal::new(path.clone());
        let mut s = session();
        journal.write(&s).unwrap();
        assert_eq!(session::load(&path).unwrap(), s);
        s.entries.push(Entry::Command {
            line: "step batch 1".into(),
            at: 1.5,
            outcome: Box::default(),
        });
        journal.write(&s).unwrap();
        assert_eq!(session::load(&path).unwrap(), s);
        s.title = "A title".into();
        s.intro = "An intro".into();
        journal.write(&s).unwrap();
        assert_eq!(session::load(&path).unwrap(), s);
        journal.restart();
        s.entries.truncate(1);
        journal.write(&s).unwrap();
        assert_eq!(session::load(&path).unwrap(), s);
    }
}

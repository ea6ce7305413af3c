//! A file from someone else costs nothing but an error (issue 21, items 7 and 8): every reader
//! of a user's file reads only regular files (a FIFO would block forever, `/dev/zero` never
//! ends), never more than a cap for its kind, checked before and enforced while reading; gzip
//! data stops at the size its header announces; image dimensions that multiply past
//! `usize::MAX` are caught.
#![cfg(unix)]

use flate2::Compression;
use flate2::write::GzEncoder;
use rslad_tui::bounded_read::{self, Limit, ReadError};
use rslad_tui::checkpoint::{self, SaveInfo};
use rslad_tui::data::{cifar, idx};
use rslad_tui::device::{autodiff_device, compute_device};
use rslad_tui::interop;
use rslad_tui::lab::session;
use rslad_tui::zoo::{Arch, Model, ModelSpec};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn fifo(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    path
}

fn link(dir: &Path, name: &str, target: &Path) -> PathBuf {
    let path = dir.join(name);
    std::os::unix::fs::symlink(target, &path).unwrap();
    path
}

/// Runs `read` on another thread and gives its message, failing the test if it has not
/// returned within 20 s (a FIFO opened for reading waits for a writer that never comes).
fn error_within<T: Send + 'static>(
    what: &str,
    read: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> String {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(read());
    });
    match result.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(_)) => panic!("{what}: read without an error"),
        Ok(Err(message)) => message,
        Err(_) => panic!("{what}: still reading after 20 s (blocked on a FIFO, or endless)"),
    }
}

fn assert_mentions(what: &str, message: &str, needle: &str) {
    assert!(
        message.contains(needle),
        "{what}: `{message}` does not say `{needle}`"
    );
}

#[test]
fn only_regular_files_are_read_and_never_more_than_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let limit = Limit {
        bytes: 100,
        what: "a test file",
    };
    let small = dir.path().join("small");
    std::fs::write(&small, [7u8; 100]).unwrap();
    assert_eq!(bounded_read::read(&small, limit).unwrap(), [7u8; 100]);
    // A symlink to a regular file is a regular file.
    let to_small = link(dir.path(), "to-small", &small);
    assert_eq!(bounded_read::read(&to_small, limit).unwrap().len(), 100);

    let big = dir.path().join("big");
    std::fs::write(&big, [7u8; 101]).unwrap();
    let error = bounded_read::read(&big, limit).unwrap_err();
    assert!(
        matches!(error, ReadError::TooBig { size: 101, .. }),
        "{error}"
    );
    assert_mentions(
        "big",
        &error.to_string(),
        "a test file may be at most 100 bytes",
    );

    for (name, path, kind) in [
        ("FIFO", fifo(dir.path(), "fifo"), "a FIFO (named pipe)"),
        (
            "/dev/zero",
            link(dir.path(), "zero", Path::new("/dev/zero")),
            "a character device",
        ),
        ("folder", dir.path().to_path_buf(), "a folder"),
    ] {
        let message = error_within(name, move || {
            bounded_read::read(&path, limit).map_err(|e| e.to_string())
        });
        assert_mentions(name, &message, &format!("is {kind}, not a regular file"));
    }
}

/// A file whose size says 0 but that holds more (every `/proc` file) is stopped while it is
/// read, as one that grows would be.
#[cfg(target_os = "linux")]
#[test]
fn a_file_holding_more_than_its_size_says_is_stopped_at_the_limit() {
    let path = Path::new("/proc/self/status");
    assert_eq!(std::fs::metadata(path).unwrap().len(), 0);
    let limit = Limit {
        bytes: 64,
        what: "a status file",
    };
    let error = bounded_read::read(path, limit).unwrap_err();
    assert!(matches!(error, ReadError::Grew { .. }), "{error}");
    assert_mentions("status", &error.to_string(), "grew past 64 bytes");
}

fn micro_checkpoint(dir: &Path) -> PathBuf {
    let model = Model::build(ModelSpec::native(Arch::MicroCnn, 10), 0, &autodiff_device()).unwrap();
    let path = dir.join("micro");
    let info = SaveInfo {
        dataset: "mnist",
        training: None,
        metrics: &[],
        seed: 0,
    };
    checkpoint::save(&model, &path, &info).unwrap();
    path
}

/// Every reader of a user's file, given a FIFO and a symlink to `/dev/zero`: an error naming
/// the kind of file, at once. (Before: `load fifo`, a FIFO as a session file, `import
/// --weights fifo.pt` blocked forever; a session, card or weights file linked to `/dev/zero`
/// grew to gigabytes.)
#[test]
fn every_reader_of_user_files_refuses_fifos_and_devices() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    type Reader = fn(&Path) -> Result<(), String>;
    let readers: [(&str, &str, Reader); 8] = [
        ("session", "s.ron", |p| {
            session::load(p).map(drop).map_err(|e| e.to_string())
        }),
        ("checkpoint card", "c.ron", |p| {
            checkpoint::load(p, None, &compute_device())
                .map(drop)
                .map_err(|e| e.to_string())
        }),
        ("safetensors import", "w.safetensors", |p| {
            let spec = ModelSpec::native(Arch::MicroCnn, 10);
            interop::import_pytorch(p, spec, &compute_device())
                .map(drop)
                .map_err(|e| e.to_string())
        }),
        ("PyTorch import", "w.pt", |p| {
            let spec = ModelSpec::native(Arch::MicroCnn, 10);
            interop::import_pytorch_pickle(p, spec, &compute_device())
                .map(drop)
                .map_err(|e| e.to_string())
        }),
        ("IDX", "t10k-images-idx3-ubyte", |p| {
            idx::read_idx(p).map(drop).map_err(|e| e.to_string())
        }),
        ("CIFAR-10", "test_batch.bin", |p| {
            cifar::read_cifar10(&[p])
                .map(drop)
                .map_err(|e| e.to_string())
        }),
        ("CIFAR-100", "test.bin", |p| {
            cifar::read_cifar100(p).map(drop).map_err(|e| e.to_string())
        }),
        ("AutoAttack journal", "aa.ron", |p| {
            rslad_tui::eval::journal::read(p)
                .map(drop)
                .map_err(|e| format!("{e:#}"))
        }),
    ];
    for (i, (reader, name, read)) in readers.into_iter().enumerate() {
        let fifo_dir = dir.join(format!("fifo-{i}"));
        let zero_dir = dir.join(format!("zero-{i}"));
        std::fs::create_dir_all(&fifo_dir).unwrap();
        std::fs::create_dir_all(&zero_dir).unwrap();
        let fifo = fifo(&fifo_dir, name);
        let message = error_within(reader, move || read(&fifo));
        assert_mentions(reader, &message, "FIFO");
        let zero = link(&zero_dir, name, Path::new("/dev/zero"));
        let message = error_within(reader, move || read(&zero));
        assert_mentions(reader, &message, "character device");
    }

    // A checkpoint whose card is fine and whose weights are a FIFO or endless.
    let stem = micro_checkpoint(dir);
    let weights = stem.with_extension("safetensors");
    for (name, target) in [
        ("FIFO weights", None),
        ("/dev/zero weights", Some(Path::new("/dev/zero"))),
    ] {
        std::fs::remove_file(&weights).unwrap();
        match target {
            None => {
                fifo(dir, "micro.safetensors");
            }
            Some(target) => {
                link(dir, "micro.safetensors", target);
            }
        }
        let stem = stem.clone();
        let message = error_within(name, move || {
            checkpoint::load(&stem, None, &compute_device())
                .map(drop)
                .map_err(|e| e.to_string())
        });
        assert_mentions(name, &message, "not a regular file");
    }
}

fn gzip_member(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A gzip file of under a megabyte whose data goes on for 256 MiB past what its header
/// announces stops after the announced size (before: it was decompressed whole, and a 4 MB
/// file expanding to 3.9 GB grew the program to gigabytes).
#[test]
fn a_gzip_idx_file_is_decompressed_only_as_far_as_its_header_announces() {
    let images = idx::encode_idx(&[1000, 28, 28], &vec![0u8; 1000 * 784]);
    let mut bomb = gzip_member(&images);
    let zeros = gzip_member(&vec![0u8; 64 << 20]);
    for _ in 0..4 {
        bomb.extend_from_slice(&zeros);
    }
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train-images-idx3-ubyte.gz");
    std::fs::write(&path, &bomb).unwrap();
    let started = Instant::now();
    let error = idx::read_idx(&path).unwrap_err().to_string();
    assert_mentions(
        "bomb",
        &error,
        "the decompressed data goes on past the 784000 bytes the header (1000×28×28) calls for",
    );
    println!(
        "refused in {:.3} s: {error}",
        started.elapsed().as_secs_f64()
    );

    // A header that announces more than an IDX file may hold is refused before any data.
    let mut header = vec![0, 0, 0x08, 3];
    for d in [u32::MAX, 28, 28] {
        header.extend_from_slice(&d.to_be_bytes());
    }
    let error = idx::parse_idx(&gzip_member(&header), Path::new("huge.gz"))
        .unwrap_err()
        .to_string();
    assert_mentions(
        "huge header",
        &error,
        "the header announces 4294967295×28×28 elements of data; an IDX file may hold at most",
    );
    // The honest file still reads.
    let honest = idx::parse_idx(&gzip_member(&images), Path::new("honest.gz")).unwrap();
    assert_eq!(honest.dims, [1000, 28, 28]);
}

/// Issue 21, item 7: `channels: 2, height: 2, width: 4611686018427387904` multiplies to 2⁶⁴,
/// which wrapped to 0 and passed the 3×64×64 limit (with empty pixel lists); playback then
/// died with "capacity overflow".
#[test]
fn a_sample_whose_dimensions_overflow_is_refused() {
    let lesson = include_str!("../../sessions/lesson-1-soft-labels.ron");
    let mut parsed = session::parse(lesson, Path::new("lesson-1.ron")).unwrap();
    let sample = parsed
        .entries
        .iter_mut()
        .find_map(|entry| match entry {
            session::Entry::Command { outcome, .. } => outcome.snapshot.sample.as_mut(),
            session::Entry::Mark { .. } => None,
        })
        .expect("the lesson shows a sample");
    sample.channels = 2;
    sample.height = 2;
    sample.width = 1 << 62;
    sample.natural.clear();
    sample.adversarial.clear();
    let text = ron::ser::to_string(&parsed).unwrap();
    let error = session::parse(&text, Path::new("overflow.ron"))
        .expect_err("a sample of 2⁶⁴ pixels was accepted")
        .to_string();
    assert_mentions(
        "overflow",
        &error,
        "sample.channels` describes 2×2×4611686018427387904 images",
    );
}

// ---- Issue 21, items 1-6 and 16: confinement by resolved paths, no-follow temporary files,
// sessions loaded by name, terminal escapes, hashes that are not hashes, the journal. ----

use rslad_tui::lab::live::Shared;
use rslad_tui::lab::runner::Runner;
use rslad_tui::lab::session::{Entry, FileRef, Outcome, Session};
use std::sync::Arc;

fn runner() -> Runner {
    Runner::new(Arc::new(Shared::default()), 0).expect("the default session opens")
}

/// A scratch root holding a session folder `s` and a folder `outside` that a session must not
/// reach.
fn session_and_outside() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("s");
    let outside = root.path().join("outside");
    std::fs::create_dir(&folder).unwrap();
    std::fs::create_dir(&outside).unwrap();
    (root, folder, outside)
}

fn names_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn command_entry(line: &str) -> Entry {
    Entry::Command {
        line: line.into(),
        at: 0.0,
        outcome: Box::default(),
    }
}

/// Item 1: the check follows symlinks: a folder or a checkpoint file inside the session's
/// folder that links outside is refused; an ordinary subfolder still works.
#[test]
fn a_symlink_inside_the_session_folder_that_leads_outside_is_refused() {
    let (_root, folder, outside) = session_and_outside();
    link(&folder, "sub", &outside);
    let elsewhere = micro_checkpoint(&outside);
    link(
        &folder,
        "theirs.safetensors",
        &elsewhere.with_extension("safetensors"),
    );
    link(&folder, "theirs.ron", &elsewhere.with_extension("ron"));
    let before = names_in(&outside);
    let mut r = runner();
    r.confine_to(&folder);
    for line in [
        "save sub/escaped",
        "save sub/deeper/escaped",
        "load sub/x",
        "load theirs",
        "teacher theirs",
        "save theirs",
        "data sub",
    ] {
        let error = r.run_line(line).expect_err(line).to_string();
        assert_mentions(line, &error, "refused");
    }
    assert_eq!(names_in(&outside), before, "nothing new outside");
    std::fs::create_dir(folder.join("real")).unwrap();
    r.run_line("save real/mine").unwrap();
    assert!(folder.join("real/mine.safetensors").is_file());
}

/// Item 2: a symlink planted at a temporary file's name is never written through: the save
/// goes to the session's folder and the file the link points to keeps its bytes.
#[test]
fn a_planted_symlink_at_a_temporary_name_is_never_written_through() {
    let (_root, folder, outside) = session_and_outside();
    let victims: Vec<PathBuf> = ["victim-weights", "victim-card"]
        .iter()
        .map(|name| {
            let path = outside.join(name);
            std::fs::write(&path, b"precious").unwrap();
            path
        })
        .collect();
    link(&folder, "victim.safetensors.partial", &victims[0]);
    link(&folder, "victim.ron.partial", &victims[1]);
    let mut r = runner();
    r.confine_to(&folder);
    r.run_line("save victim").unwrap();
    for victim in &victims {
        assert_eq!(std::fs::read(victim).unwrap(), b"precious", "{victim:?}");
    }
    for name in ["victim.safetensors", "victim.ron"] {
        let metadata = std::fs::symlink_metadata(folder.join(name)).unwrap();
        assert!(metadata.is_file(), "{name} is a regular file");
    }
    // The link at the card's temporary name is gone (the weights' temporary name carries
    // their hash, so the other link was never in the way).
    assert!(std::fs::symlink_metadata(folder.join("victim.ron.partial")).is_err());

    // The same for any atomic save (sessions, tables, exports), and a stale temporary file
    // a stopped save left is replaced, not appended to.
    let target = folder.join("table.md");
    link(&folder, "table.md.partial", &victims[0]);
    rslad_tui::atomic::write(&target, b"new").unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    assert_eq!(std::fs::read(&victims[0]).unwrap(), b"precious");
    std::fs::write(folder.join("table.md.partial"), b"stale and longer").unwrap();
    rslad_tui::atomic::write(&target, b"newer").unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"newer");
}

/// Item 3: `save` without a path writes runs/workbench-…, which a session cannot redirect
/// with a symlinked `runs`.
#[test]
fn the_default_save_path_does_not_follow_a_symlinked_runs_folder() {
    let (_root, folder, outside) = session_and_outside();
    link(&folder, "runs", &outside);
    let mut r = runner();
    r.confine_to(&folder);
    let error = r.run_line("save").expect_err("save").to_string();
    assert_mentions("save", &error, "refused");
    assert!(names_in(&outside).is_empty(), "{:?}", names_in(&outside));

    // A real `runs` folder is where the default save goes.
    std::fs::remove_file(folder.join("runs")).unwrap();
    std::fs::create_dir(folder.join("runs")).unwrap();
    r.run_line("save").unwrap();
    assert!(
        folder
            .join("runs/workbench-micro-cnn-rslad.safetensors")
            .is_file()
    );
}

/// Item 4: `load session NAME` runs a session from anyone: confined to its folder while it
/// runs, and the user's own paths work again afterwards.
#[test]
fn a_session_loaded_by_name_is_confined_to_its_folder() {
    let (root, folder, outside) = session_and_outside();
    let target = outside.join("x");
    let mut evil = Session::new(0);
    evil.entries
        .push(command_entry(&format!("save {}", target.display())));
    evil.entries.push(command_entry("save ../escaped"));
    session::save(&evil, &folder.join("evil.ron")).unwrap();
    let mut r = runner();
    r.set_sessions_dir(&folder);
    let error = r.run_line("load session evil").expect_err("diverges");
    assert_mentions("load session", &format!("{error:#}"), "diverged at entry 1");
    assert_mentions("load session", &format!("{error:#}"), "it failed: `/");
    assert_mentions("load session", &format!("{error:#}"), "is refused");
    assert!(names_in(&outside).is_empty(), "{:?}", names_in(&outside));
    assert!(!root.path().join("escaped.safetensors").exists());
    // The user's own scope is back: an absolute path of theirs is fine.
    let mine = root.path().join("mine");
    r.run_line(&format!("save {}", mine.display())).unwrap();
    assert!(mine.with_extension("safetensors").is_file());
}

/// Runs the binary in `dir` with `args` and `stdin`; gives (success, stdout + stderr).
fn run_binary(dir: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
        .args(args)
        .current_dir(dir)
        .env("RSLAD_TUI_HISTORY", dir.join("history"))
        .env("RSLAD_TUI_JOURNAL", dir.join("journal.ron"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

fn assert_no_escapes(what: &str, output: &str) {
    let bad: Vec<char> = output
        .chars()
        .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
        .collect();
    assert!(bad.is_empty(), "{what} printed {bad:?}:\n{output}");
}

/// Item 5: no string from a session file reaches the terminal with its control characters,
/// whether `replay --execute` or `load session` in the REPL prints it (and item 4 through the
/// REPL: the absolute path in it is refused).
#[test]
fn strings_from_a_session_file_reach_the_terminal_without_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let sessions = dir.path().join("sessions");
    std::fs::create_dir(&sessions).unwrap();
    let title = "\u{1b}]0;OWNED\u{7}";
    let clipboard = "\u{1b}]52;c;aGVsbG8=\u{1b}\\";
    let outside = dir.path().join("outside");
    let mut evil = Session::new(0);
    evil.created_by = format!("rslad-tui {title}");
    evil.backend = format!("flex {clipboard}");
    evil.title = format!("Lesson {title}");
    evil.entries.push(Entry::Mark {
        title: format!("Mark {title}"),
        note: format!("note {clipboard}\u{9b}2J"),
        at: 0.0,
    });
    evil.entries
        .push(command_entry(&format!("save {}{title}", outside.display())));
    session::save(&evil, &sessions.join("evil.ron")).unwrap();

    let (ok, output) = run_binary(
        dir.path(),
        &["replay", "--execute", "sessions/evil.ron"],
        "",
    );
    assert!(!ok, "the refused save is a divergence:\n{output}");
    assert_mentions("replay", &output, "Mark ]0;OWNED");
    assert_mentions(
        "replay",
        &output,
        "recorded by rslad-tui ]0;OWNED on flex ]52;c;aGVsbG8=\\",
    );
    assert_no_escapes("replay --execute", &output);

    let (ok, output) = run_binary(dir.path(), &["repl"], "load session evil\n");
    assert!(!ok, "{output}");
    assert_mentions("repl", &output, "diverged at entry 2");
    assert_mentions("repl", &output, "is refused");
    assert_no_escapes("load session", &output);
    assert!(
        !outside.exists()
            && names_in(dir.path())
                .iter()
                .all(|n| !n.starts_with("outside"))
    );
}

/// Item 6: a hash from a file that is not 64 hex digits is refused when the file is read, and
/// a replay that compares one (a session built in memory) reports it without a panic.
#[test]
fn a_hash_that_is_not_a_sha256_is_an_error_never_a_panic() {
    let (_root, folder, _outside) = session_and_outside();
    let mut r = runner();
    r.confine_to(&folder);
    r.run_line("save t").unwrap();
    let mut hostile = Session::new(0);
    hostile.entries.push(Entry::Command {
        line: "load t".into(),
        at: 0.0,
        outcome: Box::new(Outcome {
            files: vec![FileRef {
                path: "t".into(),
                sha256: "aéééééé".into(),
            }],
            ..Outcome::default()
        }),
    });
    let path = folder.join("hostile.ron");
    session::save(&hostile, &path).unwrap();
    let error = session::load(&path).unwrap_err().to_string();
    assert_mentions("load", &error, "files[0].sha256");
    assert_mentions("load", &error, "64 lowercase hex digits");

    let report = r.replay(&hostile).expect("a report, not a panic");
    let (_, _, what) = report.divergence.expect("the input changed");
    assert_mentions("replay", &what, "aéééééé");
}

/// Item 16: the journal grows by one appended entry per command (the same file, never
/// rewritten), and a session longer than the old limit of 10,000 entries reads back and
/// replays.
#[test]
fn the_journal_is_appended_to_and_reads_back_past_ten_thousand_entries() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.ron");
    let mut r = runner();
    r.set_journal(Some(path.clone()));
    r.run_line("mark \"first\"").unwrap();
    let inode = std::fs::metadata(&path).unwrap().ino();
    let first = std::fs::read(&path).unwrap();
    for i in 1..10_005 {
        r.run_line(&format!("mark \"m{i}\"")).unwrap();
    }
    assert_eq!(
        std::fs::metadata(&path).unwrap().ino(),
        inode,
        "the journal is appended to in place, not replaced"
    );
    // Everything before the tail that follows the entries stays as it was written.
    let tail: &[u8] = b"],title:\"\",intro:\"\")\n";
    assert!(first.ends_with(tail), "{}", String::from_utf8_lossy(&first));
    let last = std::fs::read(&path).unwrap();
    assert!(last.starts_with(&first[..first.len() - tail.len()]));
    let recorded = session::load(&path).expect("the program reads what it wrote");
    assert_eq!(recorded.entries.len(), 10_005);
    assert_eq!(&recorded, r.session());
    let report = runner().replay(&recorded).unwrap();
    assert_eq!(report.markers, 10_005);
    assert!(report.divergence.is_none(), "{report:?}");
}

/// An I/O error is said once: its cause is in the message and not also its `source`, which
/// `{:#}` would print a second time ("… (os error 2): … (os error 2)").
#[test]
fn a_missing_file_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let session_error =
        anyhow::Error::from(session::load(&missing.with_extension("ron")).unwrap_err());
    let checkpoint_error =
        anyhow::Error::from(checkpoint::load(&missing, None, &autodiff_device()).unwrap_err());
    let data_error = anyhow::Error::from(idx::read_idx(&missing).unwrap_err());
    for error in [session_error, checkpoint_error, data_error] {
        let message = format!("{error:#}");
        assert_eq!(message.matches("(os error 2)").count(), 1, "{message}");
    }
}

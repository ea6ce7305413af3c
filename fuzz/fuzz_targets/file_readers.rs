//! Every reader of a user's file on what a stranger can put at a path: the input's first byte
//! picks the kind of file (regular, a symlink to it, a FIFO, a symlink to /dev/zero, a folder,
//! a sparse file past every size limit, a dangling symlink), the second byte the reader, and
//! the rest is the file's content. Each reader must return an error or a value at once: a
//! FIFO that blocks or a device read forever shows as a libFuzzer timeout (run with
//! `-timeout=10`), a read past the limits as an out-of-memory report.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rslad_tui::device::compute_device;
use rslad_tui::zoo::{Arch, ModelSpec};
use std::path::{Path, PathBuf};

/// A folder of this process's own, emptied before each input.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rslad-fuzz-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// Puts a file of `kind` with `content` at `path`.
fn plant(kind: u8, path: &Path, content: &[u8]) {
    let real = path.with_extension("real");
    std::fs::write(&real, content).expect("write");
    match kind % 7 {
        0 => std::fs::rename(&real, path).expect("rename"),
        1 => std::os::unix::fs::symlink(&real, path).expect("symlink"),
        2 => {
            let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a NUL-terminated path and a mode; mkfifo touches nothing else.
            assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        }
        3 => std::os::unix::fs::symlink("/dev/zero", path).expect("symlink"),
        4 => std::fs::create_dir(path).expect("mkdir"),
        // Past every limit (the largest is 512 MiB), without using the disk.
        5 => {
            let file = std::fs::File::create(path).expect("create");
            file.set_len((1 << 30) + content.len() as u64)
                .expect("set_len");
        }
        _ => std::os::unix::fs::symlink(path.with_extension("missing"), path).expect("symlink"),
    }
}

fuzz_target!(|data: &[u8]| {
    let [kind, reader, content @ ..] = data else {
        return;
    };
    let dir = scratch();
    let spec = ModelSpec::native(Arch::MicroCnn, 10);
    let device = compute_device();
    match reader % 8 {
        0 => {
            let path = dir.join("s.ron");
            plant(*kind, &path, content);
            let _ = rslad_tui::session::load(&path);
        }
        1 => {
            let path = dir.join("c.ron");
            plant(*kind, &path, content);
            let _ = rslad_tui::checkpoint::load(&path, None, &device);
        }
        2 => {
            // A card that is fine, weights that may be anything.
            let card = include_bytes!("../../assets/teachers/small-cnn-sat.ron");
            std::fs::write(dir.join("c.ron"), card).expect("write");
            plant(*kind, &dir.join("c.safetensors"), content);
            let _ = rslad_tui::checkpoint::load(&dir.join("c"), None, &device);
        }
        3 => {
            let path = dir.join("w.safetensors");
            plant(*kind, &path, content);
            let _ = rslad_tui::interop::import_pytorch(&path, spec, &device);
        }
        4 => {
            let path = dir.join("w.pt");
            plant(*kind, &path, content);
            let _ = rslad_tui::interop::import_pytorch_pickle(&path, spec, &device);
        }
        5 => {
            let path = dir.join("images.gz");
            plant(*kind, &path, content);
            let _ = rslad_tui::data::idx::read_idx(&path);
        }
        6 => {
            let path = dir.join("data_batch_1.bin");
            plant(*kind, &path, content);
            let _ = rslad_tui::data::cifar::read_cifar10(&[&path]);
            let _ = rslad_tui::data::cifar::read_cifar100(&path);
        }
        _ => {
            let path = dir.join("aa.ron");
            plant(*kind, &path, content);
            let _ = rslad_tui::eval::journal::read(&path);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
});

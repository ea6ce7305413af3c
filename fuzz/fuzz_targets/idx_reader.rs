//! The IDX reader: an images file and a labels file from one input (split at its first byte).
#![no_main]
use libfuzzer_sys::fuzz_target;
use rslad_tui::data::idx::{image_set_from_idx, parse_idx};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (split as usize * rest.len()) / 256;
    let (images, labels) = rest.split_at(at);
    let (images_path, labels_path) = (Path::new("images"), Path::new("labels"));
    if let (Ok(images), Ok(labels)) = (parse_idx(images, images_path), parse_idx(labels, labels_path)) {
        let _ = image_set_from_idx(images, images_path, labels, labels_path, 10);
    }
});

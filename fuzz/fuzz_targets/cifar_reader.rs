//! The CIFAR-10 and CIFAR-100 binary readers on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rslad_tui::data::cifar::{parse_cifar10, parse_cifar100};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = parse_cifar10(data, Path::new("data_batch_1.bin"));
    let _ = parse_cifar100(data, Path::new("train.bin"));
});

//! The checkpoint loader: a RON card and safetensors weights from one input (the first two
//! bytes give the card's length), checked against each other.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rslad_tui::checkpoint::load_bytes;
use rslad_tui::device::compute_device;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let n = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (card, weights) = data[2..].split_at(n);
    let _ = load_bytes(card, weights, "fuzz", None, &compute_device());
});

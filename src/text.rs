//! Small helpers for the words the program writes.

/// "1 batch", "5 batches": a count with the word that agrees with it.
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_agree_with_their_word() {
        assert_eq!(super::count(1, "batch", "batches"), "1 batch");
        assert_eq!(super::count(0, "epoch", "epochs"), "0 epochs");
        assert_eq!(super::count(5, "batch", "batches"), "5 batches");
    }
}

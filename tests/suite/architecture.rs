//! The house plan holds: every module imports only its own floor or those below it
//! (docs/architecture.md), read from the `crate::` paths of the sources.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The floor of a top-level module: the core 1, settings 2, lab 3, workbench 4, cli 5.
fn floor(module: &str) -> u8 {
    match module {
        "settings" => 2,
        "lab" => 3,
        "workbench" => 4,
        "cli" => 5,
        _ => 1,
    }
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source file names through `crate::`.
fn imports(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        .map(|(i, _)| {
            text[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect::<String>()
        })
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn no_module_imports_a_floor_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for target in imports(&text) {
            if floor(&target) > floor(&module) {
                upward.push(format!("{} imports crate::{target}", relative.display()));
            }
        }
    }
    assert!(files.len() > 50, "the sources were found");
    assert!(
        upward.is_empty(),
        "imports from a lower floor up: {upward:#?}"
    );
}

#[test]
fn the_check_sees_an_upward_import() {
    assert_eq!(
        imports("use crate::lab::command; let x = crate::zoo::Arch::Mlp;"),
        BTreeSet::from(["lab".to_string(), "zoo".to_string()])
    );
    assert!(floor("lab") > floor("settings") && floor("settings") > floor("attack"));
}

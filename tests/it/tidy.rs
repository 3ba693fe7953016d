//! House rules checked by a test: every source file opens with a `//!` paragraph, ARCHITECTURE.md
//! names every file in `src/`, and the code is formatted.

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_source_file_has_a_module_doc() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("tests"), &mut files);
    let missing: Vec<_> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .map(|f| f.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(missing.is_empty(), "these files do not open with a //! paragraph: {missing:?}");
}

#[test]
fn architecture_names_every_source_file() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let missing: Vec<_> = files
        .iter()
        .map(|f| f.strip_prefix(root().join("src")).unwrap().display().to_string())
        .filter(|rel| !arch.contains(&format!("`{rel}`")))
        .collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md does not name these files (as `path`): {missing:?}");
}

#[test]
fn code_is_formatted() {
    let out = std::process::Command::new(env!("CARGO")).args(["fmt", "--check"]).current_dir(root()).output().unwrap();
    assert!(out.status.success(), "cargo fmt --check failed:\n{}", String::from_utf8_lossy(&out.stdout));
}

//! Every input that crashed a fuzz target, run again through the same code path.
//!
//! `fuzz/src/lib.rs` holds the targets' bodies (the `fuzz_targets/` files only hand libFuzzer's
//! input to them); it is included here as it is, so a saved input under
//! `tests/regressions/fuzz/<target>/` meets exactly the checks it failed. See
//! `docs/fuzzing.md`.
#![cfg(target_os = "linux")]

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Runs every file under `root/<target>/` through its target; returns how many ran, or the
/// files that failed.
fn run_dir(root: &Path) -> usize {
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, run) in harness::TARGETS {
        let dir = root.join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files.into_iter().filter(|f| f.is_file()) {
            let data = std::fs::read(&file).unwrap();
            ran += 1;
            if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    assert!(failed.is_empty(), "failed: {failed:#?}");
    ran
}

#[test]
fn every_saved_fuzz_crash_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions/fuzz");
    let ran = run_dir(&root);
    eprintln!("{ran} saved crashes ran clean");
}

/// The seed corpus goes through the same checks, so that a target that no longer holds on
/// real captures is seen here before a fuzzing run.
#[test]
fn every_fuzz_seed_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let ran = run_dir(&root);
    assert!(ran > 100, "only {ran} seeds");
}

//! Test support: the shared corpus of third-party P4 programs (BMv2 JSON + P4Info).
//!
//! Found through `SLUICE_P4_CORPUS`, defaulting to `../shared/p4` beside the repository
//! (where CI has it). The files are test data only and never copied into the repository.
//! Where the corpus is absent, tests print a visible `SKIP` notice and pass.

use std::path::{Path, PathBuf};

/// The corpus directory, or `None` after saying so.
pub fn dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SLUICE_P4_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/p4"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIP: P4 corpus not found at {} (set SLUICE_P4_CORPUS)", dir.display());
        None
    }
}

/// Every file under `dir` (recursively) whose name ends with `suffix`, sorted.
pub fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display())).flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

//! Helpers shared by the end-to-end tests of the `rnnsearch` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub fn rnnsearch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rnnsearch"));
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Runs and returns the output, with stdout/stderr shown on failure.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("rnnsearch runs");
    eprintln!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tiny, fast dates configuration for end-to-end tests.
pub fn tiny_dates_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("tiny.toml");
    let text = format!(
        r#"[data]
corpus = "dates"
vocab_size = 120
batch_tokens = 400
[data.dates]
train = 600
valid = 40
test = 40
seed = 3
[model]
embedding = 16
hidden = 16
decoder_hidden = 16
attention = 16
output = 16
dropout = 0.1
[train]
seed = 5
log_every = 1
test_beam = 3
samples = 1
{extra}
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Trains a tiny dates model for `steps` updates (validating at the last) into `dir/run`.
pub fn tiny_dates_run(dir: &Path, steps: usize) -> PathBuf {
    tiny_dates_run_with(
        dir,
        &format!("epochs = 1\nmax_steps = {steps}\nvalid_every = {steps}"),
    )
}

/// Trains a tiny dates model with these extra `[train]` lines into `dir/run`.
pub fn tiny_dates_run_with(dir: &Path, train: &str) -> PathBuf {
    let cfg = tiny_dates_config(dir, train);
    let run_dir = dir.join("run");
    let out = run(rnnsearch()
        .args(["train", "--threads", "1", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&run_dir));
    assert!(out.status.success());
    run_dir
}

/// The checkout's top folder, read at run time: the target dir may be shared by checkouts at
/// other paths.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("../..")
}

/// Where Multi30k is: `MULTI30K_DIR`, then `../shared/data/multi30k`, then `data/multi30k`.
/// Outside CI a missing corpus skips the calling test (with a printed reason); in CI it fails.
pub fn multi30k() -> Option<PathBuf> {
    let root = repo_root();
    let candidates = [
        std::env::var_os("MULTI30K_DIR").map(PathBuf::from),
        Some(root.join("../shared/data/multi30k")),
        Some(root.join("data/multi30k")),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("val.en.gz").is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "Multi30k not found: set MULTI30K_DIR"
        );
        eprintln!("skipped: Multi30k not found (set MULTI30K_DIR)");
    }
    found
}

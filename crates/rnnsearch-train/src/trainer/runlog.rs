//! What a run writes as it goes: `train.log` (and stderr or the progress bar), `metrics.jsonl`
//! (one JSON record per log interval and per validation), and the running averages between
//! two log lines.

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use crate::checkpoint;
use crate::error::{io_at, Result};

/// Writes a line to stderr (above the progress bar, when there is one) and to `train.log`.
pub struct Log {
    file: fs::File,
}

impl Log {
    /// Appends to `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_at(path))?;
        Ok(Self { file })
    }

    /// One line.
    pub fn line(&mut self, progress: Option<&ProgressBar>, text: &str) {
        match progress {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
        let _ = writeln!(self.file, "{text}");
    }
}

/// Running averages between two log lines.
#[derive(Default)]
pub struct Window {
    loss_sum: f64,
    nll_sum: f64,
    tokens: usize,
    steps: usize,
    seconds: f64,
}

impl Window {
    /// One update: its loss per token (NaN for a skipped one), NLL sum, target tokens, time.
    pub fn add(&mut self, loss: f64, nll: f64, tokens: usize, seconds: f64) {
        if loss.is_finite() {
            self.loss_sum += loss * tokens as f64;
            self.nll_sum += nll;
            self.tokens += tokens;
        }
        self.steps += 1;
        self.seconds += seconds;
    }

    /// Label-smoothed loss per target token.
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.tokens.max(1) as f64
    }

    /// Perplexity of the unsmoothed NLL.
    pub fn ppl(&self) -> f64 {
        (self.nll_sum / self.tokens.max(1) as f64).exp()
    }

    /// Target tokens per second of update time.
    pub fn tokens_per_s(&self) -> f64 {
        self.tokens as f64 / self.seconds.max(1e-9)
    }
}

/// A bar over an epoch's batches, when stderr is a terminal.
pub fn progress_bar(len: usize, epoch: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}", epoch + 1));
    Some(bar)
}

/// Appends one record to `metrics.jsonl`.
pub fn append_metrics(path: &Path, record: &serde_json::Value) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_at(path))?;
    writeln!(file, "{record}").map_err(io_at(path))
}

/// Drops metrics lines from steps after the checkpoint a run resumes from.
pub fn truncate_metrics(path: &Path, step: u64) -> Result<()> {
    let Ok(text) = fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    checkpoint::write_atomic(path, kept.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skipped_update_counts_time_but_not_tokens() {
        let mut window = Window::default();
        window.add(2.0, 100.0, 50, 0.5);
        window.add(f64::NAN, f64::NAN, 50, 0.5);
        assert_eq!(window.loss(), 2.0);
        assert_eq!(window.ppl(), 2f64.exp());
        assert_eq!(window.tokens_per_s(), 50.0);
    }

    #[test]
    fn truncation_keeps_the_steps_up_to_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        for step in [50, 100, 113, 150] {
            append_metrics(&path, &serde_json::json!({ "step": step })).unwrap();
        }
        truncate_metrics(&path, 113).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"step\":50}\n{\"step\":100}\n{\"step\":113}\n");
    }
}

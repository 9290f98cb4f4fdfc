//! Resuming a run exactly: the configuration it was started with, the checkpoint to continue
//! from (`checkpoints/last`, or `last.old` when a save was cut short), and the state, weights
//! and Adam moments restored from it, with `metrics.jsonl` cut back to the checkpoint's step.

use std::path::{Path, PathBuf};

use super::runlog::truncate_metrics;
use crate::checkpoint::{self, TrainState};
use crate::config::{RunConfig, Source};
use crate::engine::Learner;
use crate::error::{io_at, Error, Result};

/// The configuration a resumed run continues with: its own `config.toml` with `overrides`
/// applied (e.g. a larger `train.max_steps`), or `None` when the run directory has none.
pub fn saved_config(run_dir: &Path, overrides: &[String]) -> Result<Option<RunConfig>> {
    let saved = run_dir.join("config.toml");
    if !saved.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&saved).map_err(io_at(&saved))?;
    let source = Source {
        path: Some(saved.clone()),
    };
    RunConfig::parse(&text, &source, overrides).map(Some)
}

/// The checkpoint a run continues from: `None` for a fresh run. An error when `--resume` finds
/// nothing to resume, or a fresh run would overwrite one.
pub fn checkpoint_to_resume(run_dir: &Path, resume: bool) -> Result<Option<PathBuf>> {
    let last = checkpoint::resolve(&run_dir.join("checkpoints"), "last");
    match (resume, last) {
        (true, None) => Err(Error::Checkpoint(format!(
            "{}: nothing to resume (no checkpoints/last); run without --resume to start",
            run_dir.display()
        ))),
        (false, Some(_)) => Err(Error::Checkpoint(format!(
            "{}: already holds a run; pass --resume to continue it or choose another --out",
            run_dir.display()
        ))),
        (_, last) => Ok(last),
    }
}

/// Loads `last` into `learner` (weights and Adam's moments), drops the lines of `metrics`
/// written after it, and returns its state.
pub fn restore(last: &Path, learner: &mut Learner, metrics: &Path) -> Result<TrainState> {
    let state = checkpoint::load_state(last)?;
    learner.restore(last)?;
    truncate_metrics(metrics, state.step)?;
    Ok(state)
}

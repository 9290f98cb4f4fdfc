//! Checkpoints that resume exactly and survive being killed at any instant.
//!
//! A checkpoint is a directory (`checkpoints/last`, `checkpoints/best`) holding `model.bpk`
//! (the weights, burnpack), `optimizer.bpk` (Adam's moments) and `state.json` (step, epoch,
//! position in the epoch, scheduler, best score). It is written whole under a temporary name
//! and swapped in by renames: `last` → `last.old`, `last.partial` → `last`, then `last.old` is
//! removed. Whatever instant a run dies, either `last` or `last.old` is a complete checkpoint,
//! and [`resolve`] finds it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{io_at, Error, Result};
use rnnsearch_model::Seq2Seq;

/// Bumped whenever the checkpoint layout or the model's parameter layout changes.
pub const FORMAT_VERSION: u32 = 1;

/// Everything besides tensors that a resumed run needs to continue exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The rnnsearch version that wrote it.
    pub rnnsearch_version: String,
    /// Updates done (including skipped non-finite ones).
    pub step: u64,
    /// Current epoch (0-based).
    pub epoch: u64,
    /// Batches of the current epoch already consumed.
    pub batch_in_epoch: usize,
    /// Current learning rate (before warm-up scaling).
    pub lr: f64,
    /// Best validation BLEU so far.
    pub best_bleu: f64,
    /// Step of the best validation.
    pub best_step: u64,
    /// Validations since the last BLEU gain (early stopping).
    pub bad_validations: usize,
    /// Validations since the last gain or decay (plateau schedule).
    pub plateau_count: usize,
    /// Consecutive non-finite updates.
    pub nonfinite_in_row: usize,
    /// Non-finite updates skipped in total.
    pub nonfinite_total: u64,
    /// Training wall time so far, seconds.
    pub elapsed_s: f64,
    /// Target tokens trained on so far.
    pub target_tokens: u64,
    /// True once the run has finished (early stop, epochs or budget).
    pub finished: bool,
}

impl TrainState {
    /// The state at the start of a run. The random state needs no field: dropout is reseeded
    /// from (seed, step) before every update, so the step number determines it.
    pub fn new(lr: f64) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            rnnsearch_version: env!("CARGO_PKG_VERSION").to_string(),
            step: 0,
            epoch: 0,
            batch_in_epoch: 0,
            lr,
            best_bleu: f64::NEG_INFINITY,
            best_step: 0,
            bad_validations: 0,
            plateau_count: 0,
            nonfinite_in_row: 0,
            nonfinite_total: 0,
            elapsed_s: 0.0,
            target_tokens: 0,
            finished: false,
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_at(dir))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut file = fs::File::create(&tmp).map_err(io_at(&tmp))?;
    file.write_all(bytes).map_err(io_at(&tmp))?;
    file.sync_all().map_err(io_at(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_at(path))
}

/// Saves a checkpoint named `name` under `dir` (e.g. `run/checkpoints`, `last`).
pub fn save(
    dir: &Path,
    name: &str,
    model: &Seq2Seq,
    optimizer: Option<&[u8]>,
    state: &TrainState,
) -> Result<()> {
    if let Some(bad) = first_nonfinite(model) {
        return Err(Error::Diverged(format!(
            "refusing to write checkpoint {name}: parameter {bad} is not finite"
        )));
    }
    let partial = dir.join(format!("{name}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(io_at(&partial))?;
    }
    fs::create_dir_all(&partial).map_err(io_at(&partial))?;
    let record = model.clone().into_record();
    let bytes = record
        .into_bytes()
        .map_err(|e| Error::Checkpoint(format!("{}: {e:?}", partial.display())))?;
    write_atomic(&partial.join("model.bpk"), &bytes)?;
    if let Some(bytes) = optimizer {
        write_atomic(&partial.join("optimizer.bpk"), bytes)?;
    }
    let json = serde_json::to_vec_pretty(state).expect("state serialises");
    write_atomic(&partial.join("state.json"), &json)?;
    sync_dir(&partial);

    let target = dir.join(name);
    let old = dir.join(format!("{name}.old"));
    if target.exists() {
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io_at(&old))?;
        }
        fs::rename(&target, &old).map_err(io_at(&target))?;
    }
    fs::rename(&partial, &target).map_err(io_at(&target))?;
    sync_dir(dir);
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io_at(&old))?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// The complete checkpoint directory for `name`: `name` itself, or `name.old` when a run died
/// between the two renames of [`save`].
pub fn resolve(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.old"))]
        .into_iter()
        .find(|p| p.join("state.json").is_file() && p.join("model.bpk").is_file())
}

/// Reads `state.json` of a checkpoint, checking its format version.
pub fn load_state(checkpoint: &Path) -> Result<TrainState> {
    let path = checkpoint.join("state.json");
    let text = fs::read_to_string(&path).map_err(io_at(&path))?;
    let state: TrainState = serde_json::from_str(&text).map_err(|e| {
        Error::Checkpoint(format!("{}: not a checkpoint state: {e}", path.display()))
    })?;
    if state.format_version != FORMAT_VERSION {
        return Err(Error::Checkpoint(format!(
            "{}: checkpoint format {} was written by rnnsearch {}; this rnnsearch {} reads format {}",
            path.display(),
            state.format_version,
            state.rnnsearch_version,
            env!("CARGO_PKG_VERSION"),
            FORMAT_VERSION
        )));
    }
    Ok(state)
}

/// Loads the weights of a checkpoint into `model` (built from the run's config).
pub fn load_model(checkpoint: &Path, model: Seq2Seq) -> Result<Seq2Seq> {
    let path = checkpoint.join("model.bpk");
    let bytes = fs::read(&path).map_err(io_at(&path))?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| Error::Checkpoint(format!("{}: unreadable weights: {e:?}", path.display())))?;
    model.try_load_record(record).map_err(|e| {
        Error::Checkpoint(format!(
            "{}: weights do not fit the configured model: {e:?}",
            path.display()
        ))
    })
}

/// The name of the checkpoint kept for averaging at `step`.
pub fn step_name(step: u64) -> String {
    format!("step-{step:07}")
}

/// The step checkpoints under `dir`, oldest first.
pub fn step_checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut steps = Vec::new();
    if !dir.is_dir() {
        return Ok(steps);
    }
    for entry in fs::read_dir(dir).map_err(io_at(dir))? {
        let path = entry.map_err(io_at(dir))?.path();
        let step = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("step-"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(step) = step {
            if path.join("model.bpk").is_file() && path.join("state.json").is_file() {
                steps.push((step, path));
            }
        }
    }
    steps.sort();
    Ok(steps)
}

/// Deletes the step checkpoints under `dir` that come fewer than `min_gap` updates before the
/// next one (near-copies of it, which would weigh double in an average or an ensemble), then
/// all but the `keep` most recent of the rest.
pub fn prune_steps(dir: &Path, keep: usize, min_gap: u64) -> Result<()> {
    let steps = step_checkpoints(dir)?;
    let mut doomed: Vec<&PathBuf> = steps
        .windows(2)
        .filter(|pair| pair[1].0 - pair[0].0 < min_gap)
        .map(|pair| &pair[0].1)
        .collect();
    let spaced: Vec<&PathBuf> = steps
        .iter()
        .map(|(_, path)| path)
        .filter(|path| !doomed.contains(path))
        .collect();
    doomed.extend(spaced.iter().take(spaced.len().saturating_sub(keep)));
    for path in doomed {
        fs::remove_dir_all(path).map_err(io_at(path))?;
    }
    Ok(())
}

/// Name of the first parameter holding NaN or ±inf, if any.
fn first_nonfinite(model: &Seq2Seq) -> Option<String> {
    struct Finder {
        bad: Option<String>,
        index: usize,
    }
    impl burn::module::ModuleVisitor for Finder {
        fn visit_float<const D: usize>(
            &mut self,
            param: &burn::module::Param<burn::tensor::Tensor<D>>,
        ) {
            self.index += 1;
            if self.bad.is_none() && !param.val().is_finite().all().into_scalar::<bool>() {
                self.bad = Some(format!("#{} {:?}", self.index, param.val().dims()));
            }
        }
    }
    let mut finder = Finder {
        bad: None,
        index: 0,
    };
    model.visit(&mut finder);
    finder.bad
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fakes the step checkpoints `steps` under `dir` (the two files `step_checkpoints` checks).
    fn fake_steps(dir: &Path, steps: &[u64]) {
        for &step in steps {
            let path = dir.join(step_name(step));
            fs::create_dir_all(&path).unwrap();
            fs::write(path.join("model.bpk"), b"").unwrap();
            fs::write(path.join("state.json"), b"{}").unwrap();
        }
    }

    fn kept(dir: &Path) -> Vec<u64> {
        step_checkpoints(dir)
            .unwrap()
            .into_iter()
            .map(|(step, _)| step)
            .collect()
    }

    #[test]
    fn pruning_keeps_the_newest_and_drops_near_copies() {
        let dir = tempfile::tempdir().unwrap();
        // An epoch's end at 11,985 next to the valid_every step 12,000, and the budget's end at
        // 12,502 next to the epoch's end at 12,495 (the en → de run's last validations).
        fake_steps(
            dir.path(),
            &[11475, 11730, 11985, 12000, 12240, 12495, 12502],
        );
        prune_steps(dir.path(), 5, 100).unwrap();
        assert_eq!(kept(dir.path()), vec![11475, 11730, 12000, 12240, 12502]);
        prune_steps(dir.path(), 2, 0).unwrap();
        assert_eq!(kept(dir.path()), vec![12240, 12502]);
    }
}

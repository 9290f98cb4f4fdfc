//! Run configuration: a TOML file with `[data]`, `[model]` and `[train]` sections.
//!
//! Every key has a default, an unknown key is an error naming it and the file, and
//! `--set section.key=value` overrides are applied to the TOML tree before it is typed, so they
//! are checked exactly like keys in the file.

use std::fmt;
use std::path::{Path, PathBuf};

use rnnsearch_data::DataConfig;
use rnnsearch_model::ModelConfig;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The embedded default configuration: the dates demo.
pub const DATES_TOML: &str = include_str!("../../../configs/dates.toml");

/// A whole run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Corpora, vocabulary and batching.
    pub data: DataConfig,
    /// The network.
    pub model: ModelConfig,
    /// Optimisation, validation and stopping.
    pub train: TrainConfig,
}

/// Learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Constant after warm-up.
    Constant,
    /// Multiply by `lr_decay` when validation BLEU has not improved for `lr_patience`
    /// validations, down to `min_lr`.
    Plateau,
    /// Half a cosine from `lr` down to `min_lr` over the training budget (`max_steps` or
    /// `time_budget_min`, whichever runs out first).
    Cosine,
}

/// The `[train]` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Seed of initialisation, dropout and batch order.
    pub seed: u64,
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Stop after this many updates (0: no limit).
    pub max_steps: usize,
    /// Stop after this many minutes of training wall time (0: no limit).
    pub time_budget_min: f64,
    /// Adam learning rate.
    pub lr: f64,
    /// Adam β1.
    pub beta1: f32,
    /// Adam β2.
    pub beta2: f32,
    /// Adam ε.
    pub eps: f32,
    /// L2 weight decay (0: none).
    pub weight_decay: f32,
    /// Clip the global gradient norm to this value (0: no clipping).
    pub clip_norm: f32,
    /// Label smoothing ε_ls of the cross-entropy.
    pub label_smoothing: f32,
    /// Word dropout on the source: each source word of a training batch becomes `<unk>` with
    /// this probability (0: none).
    pub src_word_dropout: f32,
    /// Word dropout on the target words the decoder reads (y_{i-1}, never the predicted ones).
    pub tgt_word_dropout: f32,
    /// The decoder reads and writes every target sentence right to left (Marian's
    /// `--right-left`), e.g. to rescore a left-to-right model's n-best list; translations come
    /// out in reading order all the same.
    pub right_to_left: bool,
    /// Linear warm-up of the learning rate over this many updates.
    pub warmup_steps: usize,
    /// `plateau`, `cosine` or `constant`.
    pub schedule: Schedule,
    /// Factor applied on a plateau.
    pub lr_decay: f64,
    /// Validations without improvement before the learning rate decays.
    pub lr_patience: usize,
    /// Floor of the learning rate.
    pub min_lr: f64,
    /// Validate every this many updates (also at each epoch's end).
    pub valid_every: usize,
    /// Beam size for validation BLEU (1: greedy).
    pub valid_beam: usize,
    /// Validation sentences translated per batch budget (tokens).
    pub valid_batch_tokens: usize,
    /// Stop after this many validations without a BLEU gain (0: never).
    pub patience: usize,
    /// Print a progress line every this many updates when stderr is not a terminal.
    pub log_every: usize,
    /// Beam size for the final test-set figures (besides greedy).
    pub test_beam: usize,
    /// Length normalisation α for beam search.
    pub alpha: f64,
    /// Sample translations printed at the end.
    pub samples: usize,
    /// `auto`, `burn` or `fused`: what computes the gradients.
    pub engine: EngineChoice,
    /// Also keep the weights of the last N validations as `checkpoints/step-NNNNNNN`, for
    /// `rnnsearch average` (0: none). A validation fewer than `valid_every / 10` updates before
    /// the next one (an epoch's end next to a `valid_every` step) gives its place to that one.
    pub keep_checkpoints: usize,
    /// At the end of training, average the last N step checkpoints (needs
    /// `keep_checkpoints >= N`) into `checkpoints/averaged`; the test figures then come from
    /// whichever of it and `best` scores higher on val at `test_beam` (0: `best` alone).
    pub average_last: usize,
    /// At the end of training, also try an ensemble of the last N step checkpoints (needs
    /// `keep_checkpoints >= N`; each decoding step averages their distributions); the test
    /// figures come from whichever of `best`, the average and the ensemble scores highest on val
    /// at `test_beam` (0: no ensemble).
    pub ensemble_last: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            epochs: 20,
            max_steps: 0,
            time_budget_min: 0.0,
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            clip_norm: 1.0,
            label_smoothing: 0.1,
            src_word_dropout: 0.0,
            tgt_word_dropout: 0.0,
            right_to_left: false,
            warmup_steps: 0,
            schedule: Schedule::Plateau,
            lr_decay: 0.5,
            lr_patience: 2,
            min_lr: 1e-5,
            valid_every: 1000,
            valid_beam: 1,
            valid_batch_tokens: 4000,
            patience: 8,
            log_every: 100,
            test_beam: 5,
            alpha: 1.0,
            samples: 3,
            engine: EngineChoice::Auto,
            keep_checkpoints: 0,
            average_last: 0,
            ensemble_last: 0,
        }
    }
}

/// What computes a training step's gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// `fused` on a CPU backend, `burn` on a GPU one.
    Auto,
    /// burn's autodiff on the chosen backend (every model, every backend).
    Burn,
    /// The hand-written CPU step of `rnnsearch-fused` (every model of the family).
    Fused,
}

/// Where a configuration came from, for error messages and relative paths.
#[derive(Clone, Debug)]
pub struct Source {
    /// The file, or `None` for the embedded dates default.
    pub path: Option<PathBuf>,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{}", p.display()),
            None => f.write_str("<embedded configs/dates.toml>"),
        }
    }
}

impl RunConfig {
    /// Reads `path` (or the embedded default) and applies `overrides` (`section.key=value`).
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<RunConfig, Error> {
        let source = Source {
            path: path.map(Path::to_path_buf),
        };
        let text = match path {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| Error::Io(format!("{}: {e}", p.display())))?,
            None => DATES_TOML.to_string(),
        };
        Self::parse(&text, &source, overrides)
    }

    /// Parses TOML text; `source` names it in errors.
    pub fn parse(text: &str, source: &Source, overrides: &[String]) -> Result<RunConfig, Error> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            Error::Config(format!("{source}: {}", e.message().trim()))
        })?;
        for item in overrides {
            apply_override(&mut table, item)?;
        }
        let config: RunConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config(format!("{source}: {}", describe(&e))))?;
        config
            .model
            .validate()
            .map_err(|e| Error::Config(format!("{source}: {e}")))?;
        config
            .validate()
            .map_err(|e| Error::Config(format!("{source}: {e}")))?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let t = &self.train;
        if t.lr <= 0.0 {
            return Err(format!("train.lr must be positive, got {}", t.lr));
        }
        if !(0.0..1.0).contains(&t.label_smoothing) {
            return Err(format!(
                "train.label_smoothing must be in [0, 1), got {}",
                t.label_smoothing
            ));
        }
        for (key, p) in [
            ("src_word_dropout", t.src_word_dropout),
            ("tgt_word_dropout", t.tgt_word_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("train.{key} must be in [0, 1), got {p}"));
            }
        }
        // A floor above the starting rate would raise the rate at the first plateau.
        if !(0.0..=t.lr).contains(&t.min_lr) {
            return Err(format!(
                "train.min_lr must be in [0, train.lr = {}], got {}",
                t.lr, t.min_lr
            ));
        }
        if !(t.lr_decay > 0.0 && t.lr_decay <= 1.0) {
            return Err(format!(
                "train.lr_decay must be in (0, 1], got {}",
                t.lr_decay
            ));
        }
        if t.schedule == Schedule::Cosine && t.max_steps == 0 && t.time_budget_min <= 0.0 {
            return Err(
                "train.schedule = \"cosine\" decays over the training budget: set \
                 train.max_steps or train.time_budget_min"
                    .into(),
            );
        }
        if t.valid_every == 0 {
            return Err("train.valid_every must be at least 1".into());
        }
        if t.epochs == 0 {
            return Err("train.epochs must be at least 1".into());
        }
        if t.average_last == 1 || t.average_last > t.keep_checkpoints {
            return Err(format!(
                "train.average_last = {} needs at least 2 checkpoints, and no more than \
                 train.keep_checkpoints = {} keeps",
                t.average_last, t.keep_checkpoints
            ));
        }
        if t.ensemble_last == 1 || t.ensemble_last > t.keep_checkpoints {
            return Err(format!(
                "train.ensemble_last = {} needs at least 2 checkpoints, and no more than \
                 train.keep_checkpoints = {} keeps",
                t.ensemble_last, t.keep_checkpoints
            ));
        }
        Ok(())
    }

    /// The resolved configuration as TOML, every value included.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a config always serialises")
    }
}

/// Applies `section.key=value` (value parsed as TOML, else taken as a string).
fn apply_override(table: &mut toml::Table, item: &str) -> Result<(), Error> {
    let (key, raw) = item
        .split_once('=')
        .ok_or_else(|| Error::Config(format!("--set {item}: expected section.key=value")))?;
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.len() < 2 || path.iter().any(|p| p.is_empty()) {
        return Err(Error::Config(format!(
            "--set {item}: expected section.key=value"
        )));
    }
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let mut node = table;
    for part in &path[..path.len() - 1] {
        let entry = node
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry
            .as_table_mut()
            .ok_or_else(|| Error::Config(format!("--set {item}: {part} is not a section")))?;
    }
    node.insert(path[path.len() - 1].to_string(), value);
    Ok(())
}

/// serde's messages name the unknown key but not always its section; toml adds the path.
fn describe(e: &toml::de::Error) -> String {
    e.to_string()
        .replace('\n', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> Source {
        Source {
            path: Some("configs/x.toml".into()),
        }
    }

    #[test]
    fn embedded_default_parses() {
        let c = RunConfig::load(None, &[]).unwrap();
        assert_eq!(c.data.corpus, rnnsearch_data::CorpusKind::Dates);
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let e = RunConfig::parse("[train]\nlearning_rate = 0.1\n", &src(), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("learning_rate") && e.contains("configs/x.toml"),
            "{e}"
        );
        let e = RunConfig::parse("[trian]\n", &src(), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("trian"), "{e}");
    }

    #[test]
    fn overrides_are_typed_and_checked() {
        let c = RunConfig::parse(
            "",
            &src(),
            &["train.lr=0.5".into(), "model.cell=\"lstm\"".into()],
        )
        .unwrap();
        assert_eq!(c.train.lr, 0.5);
        assert_eq!(c.model.cell, rnnsearch_model::CellKind::Lstm);
        let e = RunConfig::parse("", &src(), &["train.nope=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
        let e = RunConfig::parse("", &src(), &["model.hidden=0".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.hidden"), "{e}");
    }

    #[test]
    fn schedule_values_are_checked() {
        for (set, key) in [
            ("train.min_lr=0.1", "train.min_lr"),
            ("train.min_lr=-1e-5", "train.min_lr"),
            ("train.lr_decay=0.0", "train.lr_decay"),
            ("train.lr_decay=2.0", "train.lr_decay"),
            ("train.src_word_dropout=1.0", "train.src_word_dropout"),
            ("train.tgt_word_dropout=-0.1", "train.tgt_word_dropout"),
        ] {
            let e = RunConfig::parse("[train]\nlr = 0.002\n", &src(), &[set.into()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key) && e.contains("configs/x.toml"), "{e}");
        }
        RunConfig::parse("[train]\nlr = 0.002\nmin_lr = 0.002\n", &src(), &[]).unwrap();
        let cosine = "[train]\nschedule = \"cosine\"\nmax_steps = 0\ntime_budget_min = 0\n";
        let e = RunConfig::parse(cosine, &src(), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.time_budget_min"), "{e}");
        RunConfig::parse(cosine, &src(), &["train.max_steps=100".into()]).unwrap();
    }

    #[test]
    fn resolved_config_round_trips() {
        let c = RunConfig::load(None, &[]).unwrap();
        let again = RunConfig::parse(&c.to_toml(), &src(), &[]).unwrap();
        assert_eq!(c, again);
    }
}

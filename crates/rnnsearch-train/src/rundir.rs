//! Loading a finished (or running) run directory for translation.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use rnnsearch_data::Vocab;
use rnnsearch_model::Seq2Seq;

use crate::checkpoint;
use crate::config::{RunConfig, Source};
use crate::error::{Error, Result};

/// A trained model with its vocabularies and configuration.
pub struct LoadedRun {
    /// The resolved configuration saved with the run.
    pub config: RunConfig,
    /// Source vocabulary.
    pub src_vocab: Vocab,
    /// Target vocabulary.
    pub tgt_vocab: Vocab,
    /// The weights of the chosen checkpoint.
    pub model: Seq2Seq,
    /// The checkpoint directory that was loaded.
    pub checkpoint: PathBuf,
}

/// Tokenizer files of a run: one joint file, or one per side.
pub fn vocab_paths(run_dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let joint = run_dir.join("tokenizer.json");
    if joint.is_file() {
        return Some((joint.clone(), joint));
    }
    let (src, tgt) = (
        run_dir.join("tokenizer.src.json"),
        run_dir.join("tokenizer.tgt.json"),
    );
    (src.is_file() && tgt.is_file()).then_some((src, tgt))
}

/// The model the run's final report tested, as `test.json` names it (`best`, `averaged`, or
/// a comma-separated ensemble of step checkpoints); `None` for a run that has not finished.
pub fn tested_model(run_dir: &Path) -> Result<Option<String>> {
    let path = run_dir.join("test.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(crate::error::io_at(&path)(e)),
    };
    let summary: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Checkpoint(format!("{}: not valid JSON: {e}", path.display())))?;
    match summary.get("model") {
        None => Ok(None),
        // runs before 2026-12-07 wrote an ensemble as "ensemble of step-a,step-b"
        Some(serde_json::Value::String(name)) if !name.trim().is_empty() => {
            Ok(Some(name.trim_start_matches("ensemble of ").to_string()))
        }
        Some(other) => Err(Error::Checkpoint(format!(
            "{}: \"model\" should name checkpoints, found {other}",
            path.display()
        ))),
    }
}

/// The configuration saved with `run_dir`.
pub fn load_config(run_dir: &Path) -> Result<RunConfig> {
    if !run_dir.is_dir() {
        return Err(Error::Checkpoint(format!(
            "{}: no such run directory",
            run_dir.display()
        )));
    }
    let config_path = run_dir.join("config.toml");
    if !config_path.is_file() {
        return Err(Error::Checkpoint(format!(
            "{}: not a run directory (no config.toml); train one with `rnnsearch train --out {}`",
            run_dir.display(),
            run_dir.display()
        )));
    }
    let text = std::fs::read_to_string(&config_path).map_err(crate::error::io_at(&config_path))?;
    RunConfig::parse(
        &text,
        &Source {
            path: Some(config_path.clone()),
        },
        &[],
    )
}

/// Loads `run_dir` with checkpoint `name` (`best` or `last`) onto `device`.
pub fn load(run_dir: &Path, name: &str, device: &Device) -> Result<LoadedRun> {
    let config = load_config(run_dir)?;
    let (src_path, tgt_path) = vocab_paths(run_dir).ok_or_else(|| {
        Error::Checkpoint(format!(
            "{}: incomplete run: no tokenizer.json (or tokenizer.src.json and tokenizer.tgt.json)",
            run_dir.display()
        ))
    })?;
    let src_vocab = Vocab::load(&src_path)?;
    let tgt_vocab = Vocab::load(&tgt_path)?;
    let (model, checkpoint) = checkpoint_model(
        run_dir,
        name,
        &config,
        (src_vocab.len(), tgt_vocab.len()),
        device,
    )?;
    Ok(LoadedRun {
        config,
        src_vocab,
        tgt_vocab,
        model,
        checkpoint,
    })
}

impl LoadedRun {
    /// The weights of another checkpoint of the same run (`run_dir`), e.g. for an ensemble,
    /// with the checkpoint directory they came from.
    pub fn load_checkpoint(
        &self,
        run_dir: &Path,
        name: &str,
        device: &Device,
    ) -> Result<(Seq2Seq, PathBuf)> {
        let vocab_sizes = (self.src_vocab.len(), self.tgt_vocab.len());
        checkpoint_model(run_dir, name, &self.config, vocab_sizes, device)
    }
}

/// The members of an ensemble that may span runs: every checkpoint named for each run in
/// `members` (run directory, checkpoint names), as the first run (its configuration,
/// vocabularies and first checkpoint) and the other models in order. Runs may differ in
/// architecture but must share their vocabularies.
pub fn load_ensemble(
    members: &[(PathBuf, Vec<String>)],
    device: &Device,
) -> Result<(LoadedRun, Vec<Seq2Seq>)> {
    let Some(((first_dir, first_names), other_runs)) = members.split_first() else {
        return Err(Error::Checkpoint("an ensemble needs a run".to_string()));
    };
    let Some((first_name, more)) = first_names.split_first() else {
        return Err(Error::Checkpoint(format!(
            "{}: no checkpoint named",
            first_dir.display()
        )));
    };
    let run = load(first_dir, first_name, device)?;
    let mut others = more
        .iter()
        .map(|name| Ok(run.load_checkpoint(first_dir, name, device)?.0))
        .collect::<Result<Vec<_>>>()?;
    for (dir, names) in other_runs {
        let Some((name, more)) = names.split_first() else {
            return Err(Error::Checkpoint(format!(
                "{}: no checkpoint named",
                dir.display()
            )));
        };
        let member = load(dir, name, device)?;
        if member.config.train.right_to_left != run.config.train.right_to_left {
            return Err(Error::Checkpoint(format!(
                "{}: it writes {} while {} writes {} (train.right_to_left); an ensemble's runs \
                 must write the same way (a right-to-left run reranks with `--rescore`)",
                dir.display(),
                direction(&member.config),
                first_dir.display(),
                direction(&run.config)
            )));
        }
        same_task(dir, &member, first_dir, &run, "translate as one ensemble")?;
        let extra = more
            .iter()
            .map(|name| Ok(member.load_checkpoint(dir, name, device)?.0))
            .collect::<Result<Vec<_>>>()?;
        others.push(member.model);
        others.extend(extra);
    }
    Ok((run, others))
}

/// Checks that the run in `dir` can work with the one in `first_dir` (`what` they would do):
/// the same vocabularies, and not trained on its corpora with source and target swapped.
pub fn same_task(
    dir: &Path,
    run: &LoadedRun,
    first_dir: &Path,
    first: &LoadedRun,
    what: &str,
) -> Result<()> {
    if translates_the_other_way(&run.config, &first.config) {
        return Err(Error::Checkpoint(format!(
            "{}: it was trained on the corpora of {} with source and target swapped; runs \
             {what} only when they translate the same way",
            dir.display(),
            first_dir.display()
        )));
    }
    let differ = match (
        run.src_vocab.same_as(&first.src_vocab),
        run.tgt_vocab.same_as(&first.tgt_vocab),
    ) {
        (true, true) => return Ok(()),
        (false, true) => "source vocabulary differs",
        (true, false) => "target vocabulary differs",
        (false, false) => "source and target vocabularies differ",
    };
    Err(Error::Checkpoint(format!(
        "{}: its vocabularies differ from those of {} ({differ}); runs {what} only when they \
         share them (train both on one dataset: `rnnsearch prepare --out DATA`, then \
         `rnnsearch train --data DATA`)",
        dir.display(),
        first_dir.display()
    )))
}

fn direction(config: &RunConfig) -> &'static str {
    if config.train.right_to_left {
        "right to left"
    } else {
        "left to right"
    }
}

/// True when `a` trained on `b`'s corpora with source and target swapped: a joint vocabulary
/// lets such runs pass the vocabulary check, but their models translate opposite ways.
fn translates_the_other_way(a: &RunConfig, b: &RunConfig) -> bool {
    let pairs = |config: &RunConfig, swap: bool| {
        let mut pairs: Vec<_> = config
            .data
            .train_corpora()
            .into_iter()
            .map(|c| if swap { (c.tgt, c.src) } else { (c.src, c.tgt) })
            .collect();
        pairs.sort();
        pairs
    };
    let a = pairs(a, false);
    !a.is_empty() && a == pairs(b, true) && a != pairs(b, false)
}

/// Checkpoint `name` of `run_dir` loaded into a model of `config`'s shape with
/// `vocab_sizes` (source, target), and the checkpoint directory.
fn checkpoint_model(
    run_dir: &Path,
    name: &str,
    config: &RunConfig,
    (src_vocab, tgt_vocab): (usize, usize),
    device: &Device,
) -> Result<(Seq2Seq, PathBuf)> {
    let checkpoints = run_dir.join("checkpoints");
    let checkpoint = checkpoint::resolve(&checkpoints, name).ok_or_else(|| {
        Error::Checkpoint(format!(
            "{}: incomplete run: no complete checkpoint `{name}`",
            checkpoints.display()
        ))
    })?;
    checkpoint::load_state(&checkpoint)?;
    let model = config.model.init(src_vocab, tgt_vocab, device);
    let model = checkpoint::load_model(&checkpoint, model)?;
    Ok((model, checkpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_test_json(text: &str) -> Result<Option<String>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("test.json"), text).unwrap();
        tested_model(dir.path())
    }

    /// A run on another run's corpora read the other way round is told apart; the same way,
    /// other corpora and the dates corpus (no files) are not.
    #[test]
    fn runs_that_translate_the_other_way_are_told_apart() {
        let config = |src: &str, tgt: &str| {
            let mut config = RunConfig::default();
            config.data.train_src = Some(src.into());
            config.data.train_tgt = Some(tgt.into());
            config
        };
        let en_de = config("train.en.gz", "train.de.gz");
        assert!(translates_the_other_way(
            &config("train.de.gz", "train.en.gz"),
            &en_de
        ));
        assert!(!translates_the_other_way(&en_de, &en_de));
        assert!(!translates_the_other_way(
            &config("train.fr.gz", "train.en.gz"),
            &en_de
        ));
        let dates = RunConfig::default();
        assert!(!translates_the_other_way(&dates, &dates));
    }

    /// `test.json` names checkpoints that `--checkpoint` takes, also as older runs wrote an
    /// ensemble; a run without one has not finished, and a malformed one names the file.
    #[test]
    fn the_tested_model_names_checkpoints() {
        let ensemble = r#"{"model": "step-00000008,step-00000016"}"#;
        assert_eq!(
            with_test_json(ensemble).unwrap().as_deref(),
            Some("step-00000008,step-00000016")
        );
        let older = r#"{"model": "ensemble of step-00000008,step-00000016"}"#;
        assert_eq!(
            with_test_json(older).unwrap().as_deref(),
            Some("step-00000008,step-00000016")
        );
        assert_eq!(
            with_test_json(r#"{"model": "best"}"#).unwrap().as_deref(),
            Some("best")
        );
        let err = with_test_json(r#"{"model": 3}"#).unwrap_err().to_string();
        assert!(
            err.contains("test.json") && err.contains("\"model\""),
            "{err}"
        );
        assert!(tested_model(tempfile::tempdir().unwrap().path())
            .unwrap()
            .is_none());
    }
}

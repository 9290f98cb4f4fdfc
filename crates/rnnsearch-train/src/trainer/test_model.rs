//! The end of a run: which model the test figures come from (`best`, the mean of the last kept
//! checkpoints, or an ensemble of them, whichever scores highest on val), and the report:
//! test BLEU, chrF and exact match greedy and at `test_beam`, sample translations, and
//! `test.json`, which names the chosen model for `translate` and `evaluate --model`.

use std::path::{Path, PathBuf};

use rnnsearch_model::Seq2Seq;
use serde_json::json;

use super::runlog::Log;
use super::validation::{score, Evaluator};
use crate::checkpoint::{self, TrainState};
use crate::config::RunConfig;
use crate::error::{Error, Result};

/// A model the test may use.
struct Candidate {
    /// What the log calls it.
    label: String,
    /// What `test.json` calls it.
    name: String,
    /// One model, or the members of an ensemble.
    models: Vec<Seq2Seq>,
}

/// How many of the `kept` step checkpoints `train.average_last` or `train.ensemble_last`
/// (`wanted`) combines: `None` when not asked for (below 2); a short run may have kept fewer.
pub fn last_kept(wanted: usize, kept: usize) -> Option<usize> {
    (wanted >= 2).then_some(wanted.min(kept))
}

/// The index of the highest score, the first of equals (so `best`, listed first, wins ties).
pub fn first_best(scores: &[f64]) -> usize {
    let mut winner = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[winner] {
            winner = i;
        }
    }
    winner
}

/// A finished run's directory, configuration and data, for its test report.
pub struct TestReport<'a> {
    /// The run's configuration.
    pub config: &'a RunConfig,
    /// The run directory.
    pub run_dir: &'a Path,
    /// Its `checkpoints` folder.
    pub checkpoints: &'a Path,
    /// Translates the run's splits.
    pub evaluator: Evaluator<'a>,
}

impl TestReport<'_> {
    /// Test-set figures with the model [`Self::choose`] picks, a few sample translations, and
    /// `test.json`.
    pub fn write(&self, state: &TrainState, log: &mut Log) -> Result<()> {
        let best = checkpoint::resolve(self.checkpoints, "best").ok_or_else(|| {
            Error::Checkpoint(format!(
                "{}: no best checkpoint",
                self.checkpoints.display()
            ))
        })?;
        let model = self.load_weights(&best)?;
        log.line(None, &format!(
            "best validation BLEU {:.2} at step {}; {} updates, {:.0} s, {:.0} target tokens/s overall",
            state.best_bleu, state.best_step, state.step, state.elapsed_s,
            state.target_tokens as f64 / state.elapsed_s.max(1e-9)
        ));
        let (chosen, models) = self.choose(model, log)?;
        let models: Vec<&Seq2Seq> = models.iter().collect();
        let mut summary = serde_json::Map::new();
        summary.insert("model".into(), json!(chosen));
        let data = self.evaluator.data;
        let test_beam = self.config.train.test_beam.max(1);
        if let Some(test) = &data.test {
            for beam in [1, test_beam] {
                let hyps = self.evaluator.translate(&models, &test.src_text, beam);
                let (bleu, chrf) = score(&hyps, &test.tgt_text);
                let exact = hyps
                    .iter()
                    .zip(&test.tgt_text)
                    .filter(|(h, r)| h == r)
                    .count() as f64
                    / hyps.len().max(1) as f64;
                let name = if beam == 1 {
                    "greedy".to_string()
                } else {
                    format!("beam{beam}")
                };
                log.line(
                    None,
                    &format!(
                        "test {name}: BLEU {bleu:.2} chrF {chrf:.2} exact match {:.2}%",
                        100.0 * exact
                    ),
                );
                summary.insert(
                    name,
                    json!({ "bleu": bleu, "chrf": chrf, "exact_match": exact }),
                );
                if beam == test_beam {
                    break;
                }
            }
        }
        let valid = &data.valid;
        let samples = self.config.train.samples.min(valid.src_text.len());
        let hyps = self
            .evaluator
            .translate(&models, &valid.src_text[..samples], 1);
        for (i, hyp) in hyps.iter().enumerate() {
            let text = format!(
                "sample {}\n  source:    {}\n  reference: {}\n  output:    {hyp}",
                i + 1,
                valid.src_text[i],
                valid.tgt_text[i]
            );
            log.line(None, &text);
        }
        let path = self.run_dir.join("test.json");
        checkpoint::write_atomic(
            &path,
            serde_json::to_string_pretty(&summary)
                .expect("json")
                .as_bytes(),
        )
    }

    /// The models the test figures come from, and what `test.json` calls them: `best`, or,
    /// where `train.average_last` / `train.ensemble_last` ask for them, the mean of the last
    /// kept checkpoints (saved as `checkpoints/averaged`) or an ensemble of them, whichever
    /// scores highest on val at `test_beam` (the first of equals, so `best` wins ties).
    fn choose(&self, best: Seq2Seq, log: &mut Log) -> Result<(String, Vec<Seq2Seq>)> {
        let mut candidates = vec![Candidate {
            label: "best".into(),
            name: "best".into(),
            models: vec![best],
        }];
        let train = &self.config.train;
        let steps = if train.average_last >= 2 || train.ensemble_last >= 2 {
            checkpoint::step_checkpoints(self.checkpoints)?
        } else {
            Vec::new()
        };
        candidates.extend(self.averaged(&steps, log)?);
        candidates.extend(self.ensemble(&steps, log)?);
        if candidates.len() == 1 {
            let only = candidates.pop().expect("best");
            return Ok((only.name, only.models));
        }
        let beam = self.config.train.test_beam.max(1);
        let valid = &self.evaluator.data.valid;
        let scores: Vec<f64> = candidates
            .iter()
            .map(|c| {
                let models: Vec<&Seq2Seq> = c.models.iter().collect();
                let hyps = self.evaluator.translate(&models, &valid.src_text, beam);
                score(&hyps, &valid.tgt_text).0
            })
            .collect();
        let listed: Vec<String> = candidates
            .iter()
            .zip(&scores)
            .map(|(c, s)| format!("{} {s:.2}", c.label))
            .collect();
        let winner = candidates.swap_remove(first_best(&scores));
        log.line(
            None,
            &format!(
                "val BLEU at beam {beam}: {}; the test uses {}",
                listed.join(", "),
                winner.name
            ),
        );
        Ok((winner.name, winner.models))
    }

    /// The mean of the last `train.average_last` kept checkpoints, saved as
    /// `checkpoints/averaged`.
    fn averaged(&self, steps: &[(u64, PathBuf)], log: &mut Log) -> Result<Option<Candidate>> {
        let wanted = self.config.train.average_last;
        if wanted < 2 {
            return Ok(None);
        }
        let kept = steps.len();
        let last = last_kept(wanted, kept).expect("asked for");
        if last < 2 {
            log.line(
                None,
                &format!(
                    "train.average_last = {wanted}: only {kept} step checkpoint kept, no average"
                ),
            );
            return Ok(None);
        }
        let names: Vec<String> = steps[kept - last..]
            .iter()
            .map(|(s, _)| checkpoint::step_name(*s))
            .collect();
        let (_, averaged) = crate::average::average_run(
            self.run_dir,
            &names,
            last,
            "averaged",
            &self.evaluator.device,
        )?;
        Ok(Some(Candidate {
            label: format!("mean of the last {last} checkpoints (checkpoints/averaged)"),
            name: "averaged".into(),
            models: vec![averaged],
        }))
    }

    /// An ensemble of the last `train.ensemble_last` kept checkpoints.
    fn ensemble(&self, steps: &[(u64, PathBuf)], log: &mut Log) -> Result<Option<Candidate>> {
        let wanted = self.config.train.ensemble_last;
        if wanted < 2 {
            return Ok(None);
        }
        let last = &steps[steps.len() - last_kept(wanted, steps.len()).expect("asked for")..];
        if last.len() < 2 {
            log.line(
                None,
                &format!(
                    "train.ensemble_last = {wanted}: only {} step checkpoint kept, no ensemble",
                    last.len()
                ),
            );
            return Ok(None);
        }
        let names: Vec<String> = last
            .iter()
            .map(|(s, _)| checkpoint::step_name(*s))
            .collect();
        let members = last
            .iter()
            .map(|(_, path)| self.load_weights(path))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Candidate {
            label: format!("ensemble of the last {} checkpoints", last.len()),
            name: names.join(","),
            models: members,
        }))
    }

    /// The model of this run's configuration with the weights of `checkpoint`.
    fn load_weights(&self, checkpoint: &Path) -> Result<Seq2Seq> {
        let data = self.evaluator.data;
        let init = self.config.model.init(
            data.src_vocab.len(),
            data.tgt_vocab.len(),
            &self.evaluator.device,
        );
        checkpoint::load_model(checkpoint, init)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_of_equal_scores_wins() {
        assert_eq!(first_best(&[30.0]), 0);
        assert_eq!(first_best(&[30.0, 31.0, 29.0]), 1);
        assert_eq!(first_best(&[30.0, 30.0, 30.0]), 0);
        assert_eq!(first_best(&[30.0, 29.0, 30.5, 30.5]), 2);
    }

    #[test]
    fn a_short_run_combines_the_checkpoints_it_kept() {
        assert_eq!(last_kept(0, 5), None);
        assert_eq!(last_kept(1, 5), None);
        assert_eq!(last_kept(3, 5), Some(3));
        assert_eq!(last_kept(5, 2), Some(2));
        // fewer than two: the caller notes it and offers no candidate
        assert_eq!(last_kept(5, 1), Some(1));
    }
}

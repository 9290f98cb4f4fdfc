//! The training loop: teacher forcing, label-smoothed cross-entropy, Adam with global-norm
//! clipping, validation BLEU, plateau schedule, early stopping, exact resumption.
//!
//! ```text
//! for epoch:
//!     for batch in batches(seed, epoch) (skipping those a resumed run already did):
//!         reseed dropout from (seed, step)
//!         loss = CE_ls(model(x, <s> y), y </s>); g = ∇loss
//!         if loss or |g| is not finite: skip the update (stop after 10 in a row)
//!         clip g to clip_norm; Adam step with warm-up-scaled lr
//!         every valid_every steps: validate, update schedule, save best and last
//!     validate and save at the epoch's end
//! ```

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rnnsearch_data::{batches, Batch, Prepared};
use rnnsearch_model::{SearchConfig, Seq2Seq};
use serde_json::json;

use crate::checkpoint::{self, TrainState};
use crate::config::{Engine, RunConfig, Schedule};
use crate::error::{io_at, Error, Result};
use crate::loss::label_smoothed_cross_entropy;
use crate::translate::Translator;

/// Non-finite updates in a row after which the run stops.
const MAX_NONFINITE_IN_ROW: usize = 10;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Epochs, step or time budget, or early stopping.
    Finished,
    /// Ctrl-C: the current step finished and `last` was written.
    Interrupted,
}

/// What the caller decides about a run besides its configuration.
pub struct RunOptions {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Continue from `checkpoints/last`.
    pub resume: bool,
    /// The backend device (without autodiff; training adds it).
    pub device: Device,
    /// Relative corpus paths in the config are resolved against this directory.
    pub base_dir: PathBuf,
    /// Set by a Ctrl-C handler.
    pub interrupt: Arc<AtomicBool>,
}

/// Validation figures.
#[derive(Clone, Debug)]
pub struct Validation {
    /// Label-smoothed loss per target token.
    pub loss: f64,
    /// exp of the unsmoothed per-token negative log-likelihood.
    pub ppl: f64,
    /// sacreBLEU-compatible corpus BLEU.
    pub bleu: f64,
    /// chrF2.
    pub chrf: f64,
    /// The translations.
    pub hypotheses: Vec<String>,
}

/// Writes a line to stderr and `train.log`.
struct Log {
    file: fs::File,
}

impl Log {
    fn open(path: &Path) -> Result<Self> {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_at(path))?;
        Ok(Self { file })
    }

    fn line(&mut self, progress: Option<&ProgressBar>, text: &str) {
        match progress {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
        let _ = writeln!(self.file, "{text}");
    }
}

/// Trains according to `config` into `options.run_dir`.
pub fn train(config: &RunConfig, options: &RunOptions) -> Result<Outcome> {
    Trainer::new(config, options)?.run()
}

struct Trainer<'a> {
    config: &'a RunConfig,
    options: &'a RunOptions,
    data: Prepared,
    device: Device,
    model: Seq2Seq,
    optimizer: ModuleOptimizer,
    state: TrainState,
    log: Log,
    metrics_path: PathBuf,
    checkpoints: PathBuf,
    progress: Option<ProgressBar>,
    /// Gradients through `rnnsearch-fused` rather than burn's autodiff.
    fused: bool,
}

/// Whether `engine` means the fused CPU step for this model.
pub fn use_fused(engine: Engine, model: &rnnsearch_model::ModelConfig) -> Result<bool> {
    let unsupported = crate::fused::unsupported(model);
    match (engine, unsupported) {
        (Engine::Burn, _) => Ok(false),
        (Engine::Auto, reason) => Ok(reason.is_none()),
        (Engine::Fused, None) => Ok(true),
        (Engine::Fused, Some(reason)) => Err(Error::Config(format!(
            "train.engine = \"fused\": {reason}; use \"auto\" or \"burn\""
        ))),
    }
}

impl<'a> Trainer<'a> {
    fn new(config: &'a RunConfig, options: &'a RunOptions) -> Result<Self> {
        let run_dir = &options.run_dir;
        fs::create_dir_all(run_dir).map_err(io_at(run_dir))?;
        let checkpoints = run_dir.join("checkpoints");
        let last = checkpoint::resolve(&checkpoints, "last");
        if options.resume && last.is_none() {
            return Err(Error::Checkpoint(format!(
                "{}: nothing to resume (no checkpoints/last); run without --resume to start",
                run_dir.display()
            )));
        }
        if !options.resume && last.is_some() {
            return Err(Error::Checkpoint(format!(
                "{}: already holds a run; pass --resume to continue it or choose another --out",
                run_dir.display()
            )));
        }
        checkpoint::write_atomic(&run_dir.join("config.toml"), config.to_toml().as_bytes())?;
        let mut log = Log::open(&run_dir.join("train.log"))?;
        let data = Prepared::prepare(&config.data, &options.base_dir, run_dir)?;
        log.line(None, &format!("{}", data.summary));

        let t = &config.train;
        let device = options.device.clone().autodiff();
        device.seed(t.seed);
        let mut model = config
            .model
            .init(data.src_vocab.len(), data.tgt_vocab.len(), &device);
        let mut optimizer = adam(t);
        let mut state = TrainState::new(t.lr);
        let metrics_path = run_dir.join("metrics.jsonl");
        if let Some(last) = last {
            state = checkpoint::load_state(&last)?;
            model = checkpoint::load_model(&last, model)?;
            optimizer = checkpoint::load_optimizer(&last, optimizer)?;
            truncate_metrics(&metrics_path, state.step)?;
            log.line(
                None,
                &format!(
                    "resuming from {} at step {} (epoch {}, batch {})",
                    last.display(),
                    state.step,
                    state.epoch + 1,
                    state.batch_in_epoch
                ),
            );
        } else if metrics_path.exists() {
            fs::remove_file(&metrics_path).map_err(io_at(&metrics_path))?;
        }
        let fused = use_fused(t.engine, &config.model)?;
        log.line(
            None,
            &format!(
                "model: {} parameters; gradients: {}; device: {:?}",
                model.parameter_count(),
                if fused {
                    "fused CPU step (rnnsearch-fused)"
                } else {
                    "burn autodiff"
                },
                options.device
            ),
        );
        Ok(Self {
            config,
            options,
            data,
            device,
            model,
            optimizer,
            state,
            log,
            metrics_path,
            checkpoints,
            progress: None,
            fused,
        })
    }

    fn run(mut self) -> Result<Outcome> {
        let t = &self.config.train;
        let started = Instant::now() - std::time::Duration::from_secs_f64(self.state.elapsed_s);
        let mut window = Window::default();
        'epochs: while (self.state.epoch as usize) < t.epochs {
            let epoch = self.state.epoch;
            let epoch_batches = batches(
                &self.data.train.examples,
                self.config.data.batch_tokens,
                t.seed,
                epoch,
            );
            self.progress = progress_bar(epoch_batches.len(), epoch);
            for batch in epoch_batches.iter().skip(self.state.batch_in_epoch) {
                let step_started = Instant::now();
                let (loss, nll) = self.update(batch)?;
                self.state.batch_in_epoch += 1;
                self.state.elapsed_s = started.elapsed().as_secs_f64();
                window.add(
                    loss,
                    nll,
                    batch.num_tgt_tokens(),
                    step_started.elapsed().as_secs_f64(),
                );
                self.report_step(&mut window)?;
                let budget_hit = (t.max_steps > 0 && self.state.step as usize >= t.max_steps)
                    || (t.time_budget_min > 0.0
                        && self.state.elapsed_s >= t.time_budget_min * 60.0);
                if self.options.interrupt.load(Ordering::SeqCst) {
                    self.save("last")?;
                    self.log.line(
                        self.progress.as_ref(),
                        &format!(
                            "interrupted: saved checkpoints/last at step {}",
                            self.state.step
                        ),
                    );
                    return Ok(Outcome::Interrupted);
                }
                if budget_hit {
                    self.validate_and_save()?;
                    self.log
                        .line(self.progress.as_ref(), "step or time budget reached");
                    break 'epochs;
                }
                if (self.state.step as usize).is_multiple_of(t.valid_every)
                    && self.validate_and_save()?
                {
                    break 'epochs;
                }
            }
            if let Some(bar) = self.progress.take() {
                bar.finish_and_clear();
            }
            self.state.epoch += 1;
            self.state.batch_in_epoch = 0;
            if !(self.state.step as usize).is_multiple_of(t.valid_every)
                && self.validate_and_save()?
            {
                break;
            }
        }
        if let Some(bar) = self.progress.take() {
            bar.finish_and_clear();
        }
        self.state.finished = true;
        self.save("last")?;
        self.final_report()?;
        Ok(Outcome::Finished)
    }

    /// One update; returns (smoothed loss per token, nll sum).
    fn update(&mut self, batch: &Batch) -> Result<(f64, f64)> {
        let t = &self.config.train;
        // Dropout depends only on (seed, step), so a resumed run draws the same masks.
        let dropout_seed = t.seed.wrapping_mul(1_000_003).wrapping_add(self.state.step);
        self.state.step += 1;
        self.state.target_tokens += batch.num_tgt_tokens() as u64;
        let lr = self.current_lr();
        let step = optimize_step(
            &mut self.model,
            &mut self.optimizer,
            batch,
            &StepSetup {
                device: &self.device,
                fused: self.fused,
                dropout_seed,
            },
            t,
            lr,
        );
        if !step.loss.is_finite() || !step.gradient_norm.is_finite() {
            self.state.nonfinite_in_row += 1;
            self.state.nonfinite_total += 1;
            self.log.line(
                self.progress.as_ref(),
                &format!(
                    "step {}: non-finite loss or gradient, update skipped",
                    self.state.step
                ),
            );
            if self.state.nonfinite_in_row >= MAX_NONFINITE_IN_ROW {
                return Err(Error::Diverged(format!(
                    "{MAX_NONFINITE_IN_ROW} non-finite updates in a row at step {}: lower train.lr or train.clip_norm",
                    self.state.step
                )));
            }
            return Ok((f64::NAN, f64::NAN));
        }
        self.state.nonfinite_in_row = 0;
        Ok((step.loss, step.nll_sum))
    }

    fn current_lr(&self) -> f64 {
        let warmup = self.config.train.warmup_steps;
        if warmup > 0 && (self.state.step as usize) < warmup {
            self.state.lr * self.state.step as f64 / warmup as f64
        } else {
            self.state.lr
        }
    }

    fn report_step(&mut self, window: &mut Window) -> Result<()> {
        let t = &self.config.train;
        let lr = self.current_lr();
        if let Some(bar) = &self.progress {
            bar.set_position(self.state.batch_in_epoch as u64);
            bar.set_message(format!(
                "loss {:.3} | {:.0} tok/s | lr {:.2e}",
                window.loss(),
                window.tokens_per_s(),
                lr
            ));
        }
        if !(self.state.step as usize).is_multiple_of(t.log_every.max(1)) {
            return Ok(());
        }
        let record = json!({
            "step": self.state.step, "epoch": self.state.epoch + 1, "loss": window.loss(),
            "ppl": window.ppl(), "lr": lr, "tokens_per_s": window.tokens_per_s(),
            "elapsed_s": self.state.elapsed_s,
        });
        append_metrics(&self.metrics_path, &record)?;
        if self.progress.is_none() {
            self.log.line(
                None,
                &format!(
                    "epoch {} step {}: loss {:.4} ppl {:.2} lr {:.2e} {:.0} tgt tok/s",
                    self.state.epoch + 1,
                    self.state.step,
                    window.loss(),
                    window.ppl(),
                    lr,
                    window.tokens_per_s()
                ),
            );
        }
        *window = Window::default();
        Ok(())
    }

    /// Validates, steps the schedule, saves `best` (on a gain) and `last`.
    /// Returns true when early stopping ends the run.
    fn validate_and_save(&mut self) -> Result<bool> {
        let t = &self.config.train;
        let v = self.validate(t.valid_beam)?;
        let improved = v.bleu > self.state.best_bleu;
        if improved {
            self.state.best_bleu = v.bleu;
            self.state.best_step = self.state.step;
            self.state.bad_validations = 0;
            self.state.plateau_count = 0;
        } else {
            self.state.bad_validations += 1;
            self.state.plateau_count += 1;
            if t.schedule == Schedule::Plateau && self.state.plateau_count >= t.lr_patience {
                self.state.lr = (self.state.lr * t.lr_decay).max(t.min_lr);
                self.state.plateau_count = 0;
            }
        }
        let stop = t.patience > 0 && self.state.bad_validations >= t.patience;
        let record = json!({
            "step": self.state.step, "epoch": self.epoch_of_last_step(), "lr": self.state.lr,
            "val_loss": v.loss, "val_ppl": v.ppl, "val_bleu": v.bleu, "val_chrf": v.chrf,
            "elapsed_s": self.state.elapsed_s,
        });
        append_metrics(&self.metrics_path, &record)?;
        self.log.line(
            self.progress.as_ref(),
            &format!(
                "validation at step {} (epoch {}): loss {:.4} ppl {:.2} BLEU {:.2} chrF {:.2}{}",
                self.state.step,
                self.epoch_of_last_step(),
                v.loss,
                v.ppl,
                v.bleu,
                v.chrf,
                if improved { " (best)" } else { "" }
            ),
        );
        // The picture is a convenience: a drawing failure is reported, never fatal.
        let curves = self.options.run_dir.join("curves.png");
        if let Err(e) = rnnsearch_plot::draw_curves(&self.metrics_path, &curves) {
            self.log.line(
                self.progress.as_ref(),
                &format!("warning: cannot draw {}: {e}", curves.display()),
            );
        }
        if improved {
            self.save("best")?;
        }
        self.save("last")?;
        if t.keep_checkpoints > 0 {
            let name = checkpoint::step_name(self.state.step);
            checkpoint::save(&self.checkpoints, &name, &self.model, None, &self.state)?;
            // An epoch's end a few updates from a valid_every validation, or the budget's end
            // just after an epoch's, would otherwise keep two near-copies of one model.
            let min_gap = (t.valid_every / 10) as u64;
            checkpoint::prune_steps(&self.checkpoints, t.keep_checkpoints, min_gap)?;
        }
        if stop {
            self.log.line(
                self.progress.as_ref(),
                &format!("early stopping: no BLEU gain in {} validations", t.patience),
            );
        }
        Ok(stop)
    }

    /// The (1-based) epoch the latest update belongs to: at an epoch's end the counter has
    /// already moved on, but its validation reports the epoch just finished.
    fn epoch_of_last_step(&self) -> u64 {
        if self.state.batch_in_epoch == 0 {
            self.state.epoch.max(1)
        } else {
            self.state.epoch + 1
        }
    }

    fn save(&mut self, name: &str) -> Result<()> {
        let optimizer = (name == "last").then_some(&self.optimizer);
        checkpoint::save(&self.checkpoints, name, &self.model, optimizer, &self.state)
    }

    fn validate(&self, beam: usize) -> Result<Validation> {
        let model = self.model.valid();
        let device = self.options.device.clone();
        let split = &self.data.valid;
        let mut loss_sum = 0.0;
        let mut nll_sum = 0.0;
        let mut tokens = 0usize;
        for batch in batches(&split.examples, self.config.train.valid_batch_tokens, 0, 0) {
            let tensors = BatchTensors::new(&batch, &device);
            let out = model.forward(tensors.source, &tensors.source_lengths, tensors.target_in);
            let n = batch.num_tgt_tokens();
            let loss = label_smoothed_cross_entropy(
                out.logits,
                tensors.target_out,
                tensors.target_padding,
                self.config.train.label_smoothing,
                n,
            );
            loss_sum += loss.per_token.into_scalar::<f32>() as f64 * n as f64;
            nll_sum += loss.nll_sum.into_scalar::<f32>() as f64;
            tokens += n;
        }
        let hypotheses = self.translate_split(&[&model], &split.src_text, beam);
        let (bleu, chrf) = score(&hypotheses, &split.tgt_text);
        Ok(Validation {
            loss: loss_sum / tokens.max(1) as f64,
            ppl: (nll_sum / tokens.max(1) as f64).exp(),
            bleu,
            chrf,
            hypotheses,
        })
    }

    /// `sources` translated by `models` (one, or the members of an ensemble).
    fn translate_split(&self, models: &[&Seq2Seq], sources: &[String], beam: usize) -> Vec<String> {
        let translator = Translator::ensemble(
            models.to_vec(),
            &self.data.src_vocab,
            &self.data.tgt_vocab,
            self.options.device.clone(),
            self.fused,
        );
        let search = SearchConfig {
            beam,
            alpha: self.config.train.alpha,
            ..SearchConfig::default()
        };
        translator
            .translate(
                sources,
                &search,
                self.config.train.valid_batch_tokens,
                |_| {},
            )
            .iter()
            .map(|t| translator.detokenize(&t.hypotheses[0]))
            .collect()
    }

    /// The models the test figures come from, and what they are: `best`, or, where
    /// `train.average_last` / `train.ensemble_last` ask for them, the mean of the last kept
    /// checkpoints (saved as `checkpoints/averaged`) or an ensemble of them, whichever scores
    /// highest on val at `test_beam` (the first of equals, so `best` wins ties).
    fn choose_test_models(
        &mut self,
        best: Seq2Seq,
        inference: &Device,
    ) -> Result<(String, Vec<Seq2Seq>)> {
        let t = &self.config.train;
        let (average_last, ensemble_last) = (t.average_last, t.ensemble_last);
        // (what the log calls it, what test.json calls it, the models)
        let mut candidates = vec![("best".to_string(), "best".to_string(), vec![best])];
        let steps = if average_last >= 2 || ensemble_last >= 2 {
            checkpoint::step_checkpoints(&self.checkpoints)?
        } else {
            Vec::new()
        };
        if average_last >= 2 {
            // A short run may have kept fewer: the mean of those there are, as for the ensemble.
            let kept = steps.len();
            let last = average_last.min(kept);
            if last < 2 {
                self.log.line(
                    None,
                    &format!(
                        "train.average_last = {average_last}: only {kept} step checkpoint kept, \
                         no average"
                    ),
                );
            } else {
                let names: Vec<String> = steps[kept - last..]
                    .iter()
                    .map(|(s, _)| checkpoint::step_name(*s))
                    .collect();
                let (_, averaged) = crate::average::average_run(
                    &self.options.run_dir,
                    &names,
                    last,
                    "averaged",
                    inference,
                )?;
                candidates.push((
                    format!("mean of the last {last} checkpoints (checkpoints/averaged)"),
                    "averaged".to_string(),
                    vec![averaged],
                ));
            }
        }
        if ensemble_last >= 2 {
            let last = &steps[steps.len().saturating_sub(ensemble_last)..];
            if last.len() < 2 {
                self.log.line(
                    None,
                    &format!(
                        "train.ensemble_last = {ensemble_last}: only {} step checkpoint kept, \
                         no ensemble",
                        last.len()
                    ),
                );
            } else {
                let names: Vec<String> = last
                    .iter()
                    .map(|(s, _)| checkpoint::step_name(*s))
                    .collect();
                let members = last
                    .iter()
                    .map(|(_, path)| self.load_weights(path, inference))
                    .collect::<Result<Vec<_>>>()?;
                candidates.push((
                    format!("ensemble of the last {} checkpoints", last.len()),
                    format!("ensemble of {}", names.join(",")),
                    members,
                ));
            }
        }
        if candidates.len() == 1 {
            let (_, name, models) = candidates.pop().expect("best");
            return Ok((name, models));
        }
        let beam = self.config.train.test_beam.max(1);
        let valid = &self.data.valid;
        let scores: Vec<f64> = candidates
            .iter()
            .map(|(_, _, models)| {
                let models: Vec<&Seq2Seq> = models.iter().collect();
                let hyps = self.translate_split(&models, &valid.src_text, beam);
                score(&hyps, &valid.tgt_text).0
            })
            .collect();
        let mut winner = 0;
        for (i, s) in scores.iter().enumerate() {
            if *s > scores[winner] {
                winner = i;
            }
        }
        let listed: Vec<String> = candidates
            .iter()
            .zip(&scores)
            .map(|((label, _, _), s)| format!("{label} {s:.2}"))
            .collect();
        let (_, name, models) = candidates.swap_remove(winner);
        self.log.line(
            None,
            &format!(
                "val BLEU at beam {beam}: {}; the test uses {name}",
                listed.join(", ")
            ),
        );
        Ok((name, models))
    }

    /// The model of this run's configuration with the weights of `checkpoint`, on `device`.
    fn load_weights(&self, checkpoint: &Path, device: &Device) -> Result<Seq2Seq> {
        let init =
            self.config
                .model
                .init(self.data.src_vocab.len(), self.data.tgt_vocab.len(), device);
        checkpoint::load_model(checkpoint, init)
    }

    /// Test-set figures with the model [`Self::choose_test_models`] picks, and a few sample
    /// translations.
    fn final_report(&mut self) -> Result<()> {
        let best = checkpoint::resolve(&self.checkpoints, "best").ok_or_else(|| {
            Error::Checkpoint(format!(
                "{}: no best checkpoint",
                self.checkpoints.display()
            ))
        })?;
        let inference = self.options.device.clone();
        let model = self.load_weights(&best, &inference)?;
        self.log.line(None, &format!(
            "best validation BLEU {:.2} at step {}; {} updates, {:.0} s, {:.0} target tokens/s overall",
            self.state.best_bleu, self.state.best_step, self.state.step, self.state.elapsed_s,
            self.state.target_tokens as f64 / self.state.elapsed_s.max(1e-9)
        ));
        let (chosen, models) = self.choose_test_models(model, &inference)?;
        let models: Vec<&Seq2Seq> = models.iter().collect();
        let mut summary = serde_json::Map::new();
        summary.insert("model".into(), json!(chosen));
        if let Some(test) = &self.data.test {
            for beam in [1, self.config.train.test_beam.max(1)] {
                let hyps = self.translate_split(&models, &test.src_text, beam);
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
                self.log.line(
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
                if beam == self.config.train.test_beam.max(1) {
                    break;
                }
            }
        }
        let valid = &self.data.valid;
        let samples = self.config.train.samples.min(valid.src_text.len());
        let hyps = self.translate_split(&models, &valid.src_text[..samples], 1);
        for (i, hyp) in hyps.iter().enumerate() {
            let text = format!(
                "sample {}\n  source:    {}\n  reference: {}\n  output:    {hyp}",
                i + 1,
                valid.src_text[i],
                valid.tgt_text[i]
            );
            self.log.line(None, &text);
        }
        let path = self.options.run_dir.join("test.json");
        checkpoint::write_atomic(
            &path,
            serde_json::to_string_pretty(&summary)
                .expect("json")
                .as_bytes(),
        )
    }
}

/// What one optimisation step measured.
#[derive(Clone, Copy, Debug)]
pub struct StepReport {
    /// Label-smoothed loss per target token.
    pub loss: f64,
    /// Unsmoothed negative log-likelihood, summed over target tokens.
    pub nll_sum: f64,
    /// Global gradient norm before clipping.
    pub gradient_norm: f64,
}

/// How a step computes its gradients.
pub struct StepSetup<'d> {
    /// The autodiff device of the model.
    pub device: &'d Device,
    /// Through `rnnsearch-fused` (see [`use_fused`]) rather than burn's autodiff.
    pub fused: bool,
    /// Seeds the dropout masks.
    pub dropout_seed: u64,
}

/// Forward, loss, backward, global-norm clipping and an Adam update of `model`.
pub fn optimize_step(
    model: &mut Seq2Seq,
    optimizer: &mut ModuleOptimizer,
    batch: &Batch,
    setup: &StepSetup,
    train: &crate::config::TrainConfig,
    lr: f64,
) -> StepReport {
    let (loss_value, nll_sum, grads) = if setup.fused {
        let step = crate::fused::gradients(
            model,
            batch,
            model.encoder.dropout.prob,
            train.label_smoothing,
            setup.dropout_seed,
            // one part of the batch per thread
            rayon::current_num_threads(),
        );
        (step.loss, step.nll_sum, step.grads)
    } else {
        setup.device.seed(setup.dropout_seed);
        let tensors = BatchTensors::new(batch, setup.device);
        let out = model.forward(tensors.source, &tensors.source_lengths, tensors.target_in);
        let loss = label_smoothed_cross_entropy(
            out.logits,
            tensors.target_out,
            tensors.target_padding,
            train.label_smoothing,
            batch.num_tgt_tokens(),
        );
        let loss_value = loss.per_token.clone().into_scalar::<f32>() as f64;
        let nll_sum = loss.nll_sum.clone().into_scalar::<f32>() as f64;
        let grads = GradientsParams::from_grads(loss.per_token.backward(), &*model);
        (loss_value, nll_sum, grads)
    };
    let gradient_norm = global_norm(model, &grads);
    let report = StepReport {
        loss: loss_value,
        nll_sum,
        gradient_norm,
    };
    if !loss_value.is_finite() || !gradient_norm.is_finite() {
        return report;
    }
    let grads = if train.clip_norm > 0.0 && gradient_norm > train.clip_norm as f64 {
        scale_gradients(
            model,
            grads,
            (train.clip_norm as f64 / gradient_norm) as f32,
        )
    } else {
        grads
    };
    *model = optimizer.step(lr, model.clone(), grads);
    report
}

/// The Adam optimiser a run's `[train]` section asks for.
pub fn adam(train: &crate::config::TrainConfig) -> ModuleOptimizer {
    let mut adam = AdamConfig::new()
        .with_beta_1(train.beta1)
        .with_beta_2(train.beta2)
        .with_epsilon(train.eps);
    if train.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(WeightDecayConfig::new(train.weight_decay)));
    }
    adam.init()
}

/// BLEU and chrF with sacreBLEU's defaults.
pub fn score(hypotheses: &[String], references: &[String]) -> (f64, f64) {
    let refs = [references.to_vec()];
    let bleu =
        rnnsearch_bleu::corpus_bleu(hypotheses, &refs, &rnnsearch_bleu::BleuOptions::default());
    let chrf =
        rnnsearch_bleu::corpus_chrf(hypotheses, &refs, &rnnsearch_bleu::ChrfOptions::default());
    let same_length = "hypotheses and references have the same length";
    (
        bleu.expect(same_length).score,
        chrf.expect(same_length).score,
    )
}

/// A batch as tensors.
pub struct BatchTensors {
    /// `[batch, src_len]`.
    pub source: Tensor<2, Int>,
    /// Real lengths of the source rows.
    pub source_lengths: Vec<usize>,
    /// `<s> y`, `[batch, tgt_len]`.
    pub target_in: Tensor<2, Int>,
    /// `y </s>`, `[batch, tgt_len]`.
    pub target_out: Tensor<2, Int>,
    /// True at target padding.
    pub target_padding: Tensor<2, Bool>,
}

impl BatchTensors {
    /// Moves a batch to `device`.
    pub fn new(batch: &Batch, device: &Device) -> Self {
        let (b, s, t) = (batch.batch_size(), batch.src_len(), batch.tgt_len());
        let ints = |v: &[u32], cols: usize| -> Tensor<2, Int> {
            Tensor::from_data(
                TensorData::new(v.iter().map(|&x| x as i64).collect::<Vec<_>>(), [b, cols]),
                device,
            )
        };
        let padding: Vec<bool> = batch.tgt_mask().into_iter().map(|real| !real).collect();
        Self {
            source: ints(&batch.src, s),
            source_lengths: batch.src_lengths.clone(),
            target_in: ints(&batch.tgt_in, t),
            target_out: ints(&batch.tgt_out, t),
            target_padding: Tensor::from_data(TensorData::new(padding, [b, t]), device),
        }
    }
}

/// Running averages between two log lines.
#[derive(Default)]
struct Window {
    loss_sum: f64,
    nll_sum: f64,
    tokens: usize,
    steps: usize,
    seconds: f64,
}

impl Window {
    fn add(&mut self, loss: f64, nll: f64, tokens: usize, seconds: f64) {
        if loss.is_finite() {
            self.loss_sum += loss * tokens as f64;
            self.nll_sum += nll;
            self.tokens += tokens;
        }
        self.steps += 1;
        self.seconds += seconds;
    }
    fn loss(&self) -> f64 {
        self.loss_sum / self.tokens.max(1) as f64
    }
    fn ppl(&self) -> f64 {
        (self.nll_sum / self.tokens.max(1) as f64).exp()
    }
    fn tokens_per_s(&self) -> f64 {
        self.tokens as f64 / self.seconds.max(1e-9)
    }
}

fn progress_bar(len: usize, epoch: u64) -> Option<ProgressBar> {
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

fn append_metrics(path: &Path, record: &serde_json::Value) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_at(path))?;
    writeln!(file, "{record}").map_err(io_at(path))
}

/// Drops metrics lines from steps after the checkpoint a run resumes from.
fn truncate_metrics(path: &Path, step: u64) -> Result<()> {
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

/// ‖g‖₂ over all parameters.
fn global_norm(model: &Seq2Seq, grads: &GradientsParams) -> f64 {
    struct Norm<'g> {
        grads: &'g GradientsParams,
        squares: Vec<Tensor<1>>,
    }
    impl ModuleVisitor for Norm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.squares.push(g.square().sum());
            }
        }
    }
    let mut norm = Norm {
        grads,
        squares: Vec::new(),
    };
    model.visit(&mut norm);
    if norm.squares.is_empty() {
        return 0.0;
    }
    (Tensor::cat(norm.squares, 0).sum().into_scalar::<f32>() as f64).sqrt()
}

/// Multiplies every gradient by `factor`.
fn scale_gradients(model: &Seq2Seq, grads: GradientsParams, factor: f32) -> GradientsParams {
    struct Scale {
        grads: GradientsParams,
        factor: f32,
    }
    impl ModuleVisitor for Scale {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    let mut scale = Scale { grads, factor };
    model.visit(&mut scale);
    scale.grads
}

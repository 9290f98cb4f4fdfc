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
//! choose the test model and report
//! ```
//!
//! One file per job: this loop; [`schedule`] (learning rate, stopping, budgets); [`validation`];
//! [`test_model`] (the model the test uses, and the report); [`runlog`] (train.log,
//! metrics.jsonl); [`resume`]. One optimiser update is the engine's ([`crate::engine`]).

pub mod resume;
pub mod runlog;
pub mod schedule;
pub mod test_model;
pub mod validation;

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use indicatif::ProgressBar;
use rnnsearch_data::{Batch, Prepared};
use serde_json::json;

use crate::checkpoint::{self, TrainState};
use crate::config::RunConfig;
use crate::engine::{Engine, Learner};
use crate::error::{io_at, Error, Result};
use runlog::{append_metrics, progress_bar, Log, Window};
use schedule::Verdict;
use test_model::TestReport;
use validation::Evaluator;

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

/// Trains according to `config` into `options.run_dir`.
pub fn train(config: &RunConfig, options: &RunOptions) -> Result<Outcome> {
    Trainer::new(config, options)?.run()
}

struct Trainer<'a> {
    config: &'a RunConfig,
    options: &'a RunOptions,
    data: Prepared,
    /// The model being trained, its Adam moments, and the engine that steps them.
    learner: Learner,
    state: TrainState,
    log: Log,
    metrics_path: PathBuf,
    checkpoints: PathBuf,
    progress: Option<ProgressBar>,
}

impl<'a> Trainer<'a> {
    fn new(config: &'a RunConfig, options: &'a RunOptions) -> Result<Self> {
        let run_dir = &options.run_dir;
        fs::create_dir_all(run_dir).map_err(io_at(run_dir))?;
        let last = resume::checkpoint_to_resume(run_dir, options.resume)?;
        checkpoint::write_atomic(&run_dir.join("config.toml"), config.to_toml().as_bytes())?;
        let mut log = Log::open(&run_dir.join("train.log"))?;
        let data = Prepared::prepare(&config.data, &options.base_dir, run_dir)?;
        log.line(None, &format!("{}", data.summary));

        let t = &config.train;
        let device = options.device.clone().autodiff();
        device.seed(t.seed);
        let model = config
            .model
            .init(data.src_vocab.len(), data.tgt_vocab.len(), &device);
        let engine = Engine::choose(t.engine);
        let parameters = model.parameter_count();
        let mut learner = Learner::new(engine, model, t);
        let mut state = TrainState::new(t.lr);
        let metrics_path = run_dir.join("metrics.jsonl");
        let checkpoints = run_dir.join("checkpoints");
        if let Some(last) = last {
            state = resume::restore(&last, &mut learner, &metrics_path)?;
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
        log.line(
            None,
            &format!(
                "model: {parameters} parameters; gradients: {}; device: {:?}",
                engine.describe(),
                options.device
            ),
        );
        Ok(Self {
            config,
            options,
            data,
            learner,
            state,
            log,
            metrics_path,
            checkpoints,
            progress: None,
        })
    }

    fn run(mut self) -> Result<Outcome> {
        let t = &self.config.train;
        let started = Instant::now() - std::time::Duration::from_secs_f64(self.state.elapsed_s);
        let mut window = Window::default();
        'epochs: while (self.state.epoch as usize) < t.epochs {
            let epoch = self.state.epoch;
            let plan = self.data.train.epoch(
                &self.data.train_weights,
                self.config.data.batch_tokens,
                t.seed,
                epoch,
            );
            let padding = self.data.train.padding(&plan);
            self.log.line(
                None,
                &format!(
                    "epoch {}: {} batches of at most {} tokens, padding {:.1}%",
                    epoch + 1,
                    plan.len(),
                    self.config.data.batch_tokens,
                    100.0 * padding
                ),
            );
            self.progress = progress_bar(plan.len(), epoch);
            for group in plan.batches().skip(self.state.batch_in_epoch) {
                let step_started = Instant::now();
                let mut batch = self.data.train.batch(group);
                let t = &self.config.train;
                if t.right_to_left {
                    batch.reverse_targets();
                }
                if t.src_word_dropout > 0.0 || t.tgt_word_dropout > 0.0 {
                    let seed = dropout_seed(t.seed, self.state.step).rotate_left(32);
                    batch.drop_words(t.src_word_dropout, t.tgt_word_dropout, seed);
                }
                let (loss, nll) = self.update(&batch)?;
                self.state.batch_in_epoch += 1;
                self.state.elapsed_s = started.elapsed().as_secs_f64();
                window.add(
                    loss,
                    nll,
                    batch.num_tgt_tokens(),
                    step_started.elapsed().as_secs_f64(),
                );
                self.report_step(&mut window)?;
                let budget_hit = schedule::budget_reached(t, &self.state);
                if self.options.interrupt.load(Ordering::SeqCst) {
                    self.save(&["last"])?;
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
                if schedule::validation_due(t, &self.state) && self.validate_and_save()? {
                    break 'epochs;
                }
            }
            if let Some(bar) = self.progress.take() {
                bar.finish_and_clear();
            }
            self.state.epoch += 1;
            self.state.batch_in_epoch = 0;
            if !schedule::validation_due(t, &self.state) && self.validate_and_save()? {
                break;
            }
        }
        if let Some(bar) = self.progress.take() {
            bar.finish_and_clear();
        }
        self.state.finished = true;
        self.save(&["last"])?;
        // The test model is read back from the checkpoints: the weights, gradients and
        // moments of training would only add to the final decoding's memory.
        let Trainer {
            config,
            options,
            data,
            learner,
            state,
            mut log,
            checkpoints,
            ..
        } = self;
        let engine = learner.engine();
        drop(learner);
        let report = TestReport {
            config,
            run_dir: &options.run_dir,
            checkpoints: &checkpoints,
            evaluator: evaluator(&data, config, options, engine),
        };
        report.write(&state, &mut log)?;
        Ok(Outcome::Finished)
    }

    /// One update; returns (smoothed loss per token, nll sum).
    fn update(&mut self, batch: &Batch) -> Result<(f64, f64)> {
        let t = &self.config.train;
        let dropout_seed = dropout_seed(t.seed, self.state.step);
        self.state.step += 1;
        self.state.target_tokens += batch.num_tgt_tokens() as u64;
        let lr = self.current_lr();
        let step = self.learner.step(batch, t, lr, dropout_seed);
        if !step.is_finite() {
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
        schedule::current_lr(&self.config.train, &self.state)
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
        let v = self
            .evaluator()
            .validate(&self.learner.snapshot(), t.valid_beam);
        let Verdict { improved, stop } = schedule::after_validation(t, &mut self.state, v.bleu);
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
        let step_name = checkpoint::step_name(self.state.step);
        let mut names = Vec::new();
        if improved {
            names.push("best");
        }
        names.push("last");
        if t.keep_checkpoints > 0 {
            names.push(&step_name);
        }
        self.save(&names)?;
        if t.keep_checkpoints > 0 {
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

    /// Saves checkpoints `names`; `last` also holds Adam's state.
    fn save(&mut self, names: &[&str]) -> Result<()> {
        let checkpoints: Vec<(&str, bool)> = names.iter().map(|&n| (n, n == "last")).collect();
        self.learner
            .save(&self.checkpoints, &checkpoints, &self.state)
    }

    /// Translates and scores with the weights as they are, without autodiff.
    fn evaluator(&self) -> Evaluator<'_> {
        evaluator(&self.data, self.config, self.options, self.learner.engine())
    }
}

/// The run's [`Evaluator`], on the device without autodiff (from the fields, so that the
/// trainer's log stays free to borrow beside it).
fn evaluator<'b>(
    data: &'b Prepared,
    config: &'b RunConfig,
    options: &RunOptions,
    engine: Engine,
) -> Evaluator<'b> {
    Evaluator {
        data,
        train: &config.train,
        device: options.device.clone(),
        engine,
    }
}

/// The seed of step `step`'s dropout masks: they depend only on (seed, step), so a resumed run
/// draws the same masks.
fn dropout_seed(seed: u64, step: u64) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(step)
}

//! What computes a model's gradients and runs its search, chosen once per run: burn's autodiff
//! on any backend, or `rnnsearch-fused`'s hand-written CPU pass.
//!
//! A [`Learner`] is the model being trained with its optimiser state, in the form its engine
//! keeps them: a burn module and burn's Adam ([`BurnLearner`]), or flat parameter, gradient and
//! moment buffers ([`FusedLearner`]). Either writes and reads the same checkpoints.

mod autodiff;
mod fused;
mod moments;

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use rnnsearch_data::Batch;
use rnnsearch_model::Seq2Seq;

use crate::checkpoint::{self, TrainState};
use crate::config::{EngineChoice, TrainConfig};
use crate::error::Result;
use crate::fused::FusedWeights;

pub use self::fused::FusedLearner;
pub use self::moments::{read_moments, write_moments};
pub use autodiff::{adam, BatchTensors, BurnLearner};

/// The engine a run, a translation or a benchmark uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// burn's autodiff and search on the run's backend.
    Burn,
    /// `rnnsearch-fused` on the CPU.
    Fused,
}

impl Engine {
    /// The engine `choice` means: `auto` is the fused engine, which covers every model of the
    /// family (the caller resolves `auto` to burn on a GPU backend first).
    pub fn choose(choice: EngineChoice) -> Self {
        match choice {
            EngineChoice::Burn => Engine::Burn,
            EngineChoice::Auto | EngineChoice::Fused => Engine::Fused,
        }
    }

    /// How the run log names it.
    pub fn describe(self) -> &'static str {
        match self {
            Engine::Burn => "burn autodiff",
            Engine::Fused => "fused CPU step (rnnsearch-fused)",
        }
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

impl StepReport {
    /// Whether the step may update the weights.
    pub fn is_finite(&self) -> bool {
        self.loss.is_finite() && self.gradient_norm.is_finite()
    }
}

/// The factor that clips a gradient of norm `norm` to `clip_norm` (0: no clipping).
pub fn clip_factor(clip_norm: f32, norm: f64) -> Option<f32> {
    (clip_norm > 0.0 && norm > clip_norm as f64).then(|| (clip_norm as f64 / norm) as f32)
}

/// The current weights, as validation reads them: a burn model (without autodiff), or the
/// fused engine's own flat weights.
pub enum Snapshot {
    Burn(Box<Seq2Seq>),
    Fused(Box<FusedWeights>),
}

/// The model being trained and its optimiser state, as its engine keeps them.
pub enum Learner {
    Burn(Box<BurnLearner>),
    Fused(Box<FusedLearner>),
}

impl Learner {
    /// `model` (on an autodiff device) with fresh Adam moments, trained by `engine`.
    pub fn new(engine: Engine, model: Seq2Seq, train: &TrainConfig) -> Self {
        match engine {
            Engine::Burn => Learner::Burn(Box::new(BurnLearner::new(model, train))),
            Engine::Fused => Learner::Fused(Box::new(FusedLearner::new(model, train))),
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Learner::Burn(_) => Engine::Burn,
            Learner::Fused(_) => Engine::Fused,
        }
    }

    /// The weights and Adam moments of `checkpoint` in place of the current ones.
    pub fn restore(&mut self, checkpoint: &Path) -> Result<()> {
        match self {
            Learner::Burn(l) => l.restore(checkpoint),
            Learner::Fused(l) => l.restore(checkpoint),
        }
    }

    /// Forward, loss, backward, clipping and an Adam update at learning rate `lr`, with dropout
    /// masks drawn from `dropout_seed`. A step whose loss or gradient is not finite leaves the
    /// weights as they were.
    pub fn step(
        &mut self,
        batch: &Batch,
        train: &TrainConfig,
        lr: f64,
        dropout_seed: u64,
    ) -> StepReport {
        match self {
            Learner::Burn(l) => l.step(batch, train, lr, dropout_seed),
            Learner::Fused(l) => l.step(batch, train, lr, dropout_seed),
        }
    }

    /// The current weights for validation, in the engine's own form.
    pub fn snapshot(&self) -> Snapshot {
        match self {
            Learner::Burn(l) => Snapshot::Burn(Box::new(l.model.valid())),
            Learner::Fused(l) => Snapshot::Fused(Box::new(l.weights())),
        }
    }

    /// The current weights as a burn model (on the training device).
    pub fn model(&self) -> Seq2Seq {
        match self {
            Learner::Burn(l) => l.model.clone(),
            Learner::Fused(l) => l.model(),
        }
    }

    /// Saves the weights as each checkpoint of `checkpoints` (name, and whether it also holds
    /// Adam's state), in turn; the burn model and the optimizer record are made once for all.
    pub fn save(&self, dir: &Path, checkpoints: &[(&str, bool)], state: &TrainState) -> Result<()> {
        let optimizer = if checkpoints.iter().any(|&(_, with)| with) {
            Some(match self {
                Learner::Burn(l) => l.optimizer_bytes()?,
                Learner::Fused(l) => l.optimizer_bytes()?,
            })
        } else {
            None
        };
        let model = self.model();
        for &(name, with_optimizer) in checkpoints {
            let optimizer = optimizer.as_deref().filter(|_| with_optimizer);
            checkpoint::save(dir, name, &model, optimizer, state)?;
        }
        Ok(())
    }
}

/// The device a model lives on, for building batches beside it.
pub fn device_of(model: &Seq2Seq) -> Device {
    model.encoder.embedding.weight.val().device()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::tests::{repeated, tiny_config};
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::Tensor;
    use rnnsearch_model::ModelConfig;

    fn weights(model: &Seq2Seq) -> Vec<Vec<f32>> {
        struct Collect(Vec<Vec<f32>>);
        impl ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0
                    .push(param.val().into_data().try_into_vec_as::<f32>().unwrap());
            }
        }
        let mut c = Collect(Vec::new());
        model.visit(&mut c);
        c.0
    }

    fn assert_close(a: &Seq2Seq, b: &Seq2Seq, what: &str) {
        for (x, y) in weights(a).iter().zip(weights(b)) {
            let diff = x
                .iter()
                .zip(&y)
                .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
            assert!(diff < 2e-5, "{what}: weights differ by {diff}");
        }
    }

    /// Clipping on (the gradients here are far above 0.01, whatever the initial weights) and
    /// weight decay on, so that every part of the update is compared.
    fn train_config() -> TrainConfig {
        TrainConfig {
            clip_norm: 0.01,
            weight_decay: 0.01,
            ..TrainConfig::default()
        }
    }

    fn model(tied: bool, seed: u64) -> Seq2Seq {
        let device = Device::flex().autodiff();
        device.seed(seed);
        ModelConfig {
            output: if tied { 6 } else { 3 },
            tied_embeddings: tied,
            ..tiny_config(2)
        }
        .init(13, 11, &device)
    }

    /// The fused engine's flat-buffer Adam, norm and clipping update the weights as burn's
    /// Adam does, tied and untied, over several steps.
    #[test]
    fn both_engines_take_the_same_steps() {
        let train = train_config();
        let batch = repeated(2);
        for tied in [false, true] {
            let model = model(tied, 5);
            let mut burn = Learner::new(Engine::Burn, model.clone(), &train);
            let mut fused = Learner::new(Engine::Fused, model, &train);
            for step in 0..3 {
                let b = burn.step(&batch, &train, 1e-2, step);
                let f = fused.step(&batch, &train, 1e-2, step);
                assert!((b.loss - f.loss).abs() < 1e-5, "step {step}: loss");
                let norm = (b.gradient_norm - f.gradient_norm).abs();
                assert!(norm < 1e-4 * b.gradient_norm, "step {step}: norm");
                let clip = train.clip_norm as f64;
                assert!(b.gradient_norm > clip, "clipping is exercised");
            }
            assert_close(&burn.model(), &fused.model(), &format!("tied {tied}"));
        }
    }

    /// A checkpoint written by either engine resumes in the other: the weights and Adam's
    /// moments carry over, so the next steps match those of the run that wrote it.
    #[test]
    fn checkpoints_move_between_engines() {
        let train = train_config();
        let batch = repeated(2);
        let dir = tempfile::tempdir().unwrap();
        for (writer, reader) in [(Engine::Fused, Engine::Burn), (Engine::Burn, Engine::Fused)] {
            let mut first = Learner::new(writer, model(false, 5), &train);
            for step in 0..2 {
                first.step(&batch, &train, 1e-2, step);
            }
            let state = TrainState::new(1e-2);
            first.save(dir.path(), &[("last", true)], &state).unwrap();
            // A fresh model of other weights and parameter ids, as a resumed run starts.
            let mut second = Learner::new(reader, model(false, 6), &train);
            second.restore(&dir.path().join("last")).unwrap();
            assert_close(&first.model(), &second.model(), "restored");
            for step in 2..4 {
                first.step(&batch, &train, 1e-2, step);
                second.step(&batch, &train, 1e-2, step);
            }
            assert_close(
                &first.model(),
                &second.model(),
                &format!("{writer:?} → {reader:?}"),
            );
        }
    }

    /// Given the same gradients, the fused engine's Adam over flat buffers (clipping, weight
    /// decay and tied embeddings on) writes the very bits burn's Adam writes.
    #[test]
    fn flat_adam_is_burns_adam_bit_for_bit() {
        use burn::optim::GradientsParams;
        use burn::tensor::TensorData;
        let train = train_config();
        let batch = repeated(2);
        let mut fused = FusedLearner::new(model(true, 9), &train);
        let mut burn_model = fused.model();
        let mut burn_adam = adam(&train);
        for step in 0..5 {
            // burn's Adam on the gradients the fused engine computes for burn's weights
            let mut reference = FusedLearner::new(burn_model.clone(), &train);
            let report = reference.backward(&batch, train.label_smoothing, step);
            let scale = clip_factor(train.clip_norm, report.gradient_norm).unwrap_or(1.0);
            struct Register<'l>(&'l FusedLearner, GradientsParams, f32);
            impl ModuleVisitor for Register<'_> {
                fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                    let (range, shape) = self.0.binding().slot(p.id).unwrap();
                    let g = self.0.gradients()[range.clone()].iter().map(|g| g * self.2);
                    let data = TensorData::new(g.collect::<Vec<f32>>(), shape.clone());
                    let device = p.val().device();
                    self.1
                        .register(p.id, Tensor::<D>::from_data(data, &device).inner());
                }
            }
            let mut grads = Register(&reference, GradientsParams::new(), scale);
            burn_model.visit(&mut grads);
            burn_model = burn_adam.step(1e-2, burn_model, grads.1);

            fused.step(&batch, &train, 1e-2, step);
            assert_eq!(weights(&burn_model), weights(&fused.model()), "step {step}");
        }
    }
}

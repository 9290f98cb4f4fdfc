//! One optimisation step: forward, label-smoothed loss, backward (burn's autodiff or the
//! fused CPU engine), global-norm clipping and an Adam update.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use rnnsearch_data::Batch;
use rnnsearch_model::Seq2Seq;

use crate::config::{Engine, TrainConfig};
use crate::error::{Error, Result};
use crate::loss::label_smoothed_cross_entropy;

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
    train: &TrainConfig,
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
pub fn adam(train: &TrainConfig) -> ModuleOptimizer {
    let mut adam = AdamConfig::new()
        .with_beta_1(train.beta1)
        .with_beta_2(train.beta2)
        .with_epsilon(train.eps);
    if train.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(WeightDecayConfig::new(train.weight_decay)));
    }
    adam.init()
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

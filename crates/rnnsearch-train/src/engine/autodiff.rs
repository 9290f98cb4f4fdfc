//! The burn engine: forward, label-smoothed loss and backward through burn's autodiff on the
//! run's backend, global-norm clipping and burn's Adam.

use std::fs;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, OptimizerRecord};
use burn::tensor::{Bool, Bytes, Device, Int, Tensor, TensorData};
use rnnsearch_data::Batch;
use rnnsearch_model::Seq2Seq;

use super::{clip_factor, StepReport};
use crate::checkpoint;
use crate::config::TrainConfig;
use crate::error::{io_at, Error, Result};
use crate::loss::label_smoothed_cross_entropy;

/// A burn model trained through burn's autodiff, with burn's Adam.
pub struct BurnLearner {
    /// On the autodiff device.
    pub model: Seq2Seq,
    optimizer: ModuleOptimizer,
}

impl BurnLearner {
    pub fn new(model: Seq2Seq, train: &TrainConfig) -> Self {
        Self {
            model,
            optimizer: adam(train),
        }
    }

    /// Loads the weights and Adam's state of `checkpoint`.
    pub fn restore(&mut self, checkpoint: &Path) -> Result<()> {
        self.model = checkpoint::load_model(checkpoint, self.model.clone())?;
        let path = checkpoint.join("optimizer.bpk");
        let bytes = fs::read(&path).map_err(io_at(&path))?;
        let record = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| {
            Error::Checkpoint(format!(
                "{}: unreadable optimizer state: {e:?}",
                path.display()
            ))
        })?;
        self.optimizer = self.optimizer.clone().load_record(record);
        Ok(())
    }

    /// Adam's state in burn's optimizer record (burnpack).
    pub fn optimizer_bytes(&self) -> Result<Vec<u8>> {
        let bytes = self
            .optimizer
            .to_record()
            .into_bytes()
            .map_err(|e| Error::Checkpoint(format!("optimizer state: {e:?}")))?;
        Ok(bytes.to_vec())
    }

    /// Forward, loss, backward, global-norm clipping and an Adam update.
    pub fn step(
        &mut self,
        batch: &Batch,
        train: &TrainConfig,
        lr: f64,
        dropout_seed: u64,
    ) -> StepReport {
        let device = super::device_of(&self.model);
        device.seed(dropout_seed);
        let tensors = BatchTensors::new(batch, &device);
        let out = self
            .model
            .forward(tensors.source, &tensors.source_lengths, tensors.target_in);
        let loss = label_smoothed_cross_entropy(
            out.logits,
            tensors.target_out,
            tensors.target_padding,
            train.label_smoothing,
            batch.num_tgt_tokens(),
        );
        let loss_value = loss.per_token.clone().into_scalar::<f32>() as f64;
        let nll_sum = loss.nll_sum.clone().into_scalar::<f32>() as f64;
        let grads = GradientsParams::from_grads(loss.per_token.backward(), &self.model);
        let report = StepReport {
            loss: loss_value,
            nll_sum,
            gradient_norm: global_norm(&self.model, &grads),
        };
        if !report.is_finite() {
            return report;
        }
        let grads = match clip_factor(train.clip_norm, report.gradient_norm) {
            Some(factor) => scale_gradients(&self.model, grads, factor),
            None => grads,
        };
        self.model = self.optimizer.step(lr, self.model.clone(), grads);
        report
    }
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

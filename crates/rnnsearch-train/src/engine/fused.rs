//! The fused engine: `rnnsearch-fused`'s forward and backward pass over parameters, gradients
//! and Adam's moments it owns as flat buffers (llm.c's `params_memory`, `grads_memory`,
//! `m_memory`, `v_memory`), with the gradient norm, clipping and Adam run over those buffers on
//! every core. A burn model is made from the buffers only to write a checkpoint or to validate,
//! and read into them only when a checkpoint is loaded.

use std::fs;
use std::path::Path;

use rnnsearch_data::Batch;
use rnnsearch_fused::adam::squared_norm;
use rnnsearch_fused::{train_step_in_parts, Adam, GradBuffers, Moments, StepOptions};
use rnnsearch_model::Seq2Seq;

use super::moments::{read_moments, write_moments};
use super::{clip_factor, StepReport};
use crate::checkpoint;
use crate::config::TrainConfig;
use crate::error::{io_at, Result};
use crate::fused::{Binding, FusedBatch, FusedWeights};

/// A model of a shape `rnnsearch-fused` covers, in its flat buffers.
pub struct FusedLearner {
    binding: Binding,
    /// θ, in the binding's layout (with tied embeddings, W_o's slot holds Eᵀ).
    params: Vec<f32>,
    grads: GradBuffers,
    moments: Moments,
    adam: Adam,
    dropout: f32,
    /// Parts a batch is cut into, one per thread.
    pub parts: usize,
    /// The burn model the buffers were read from: its structure, parameter ids and device,
    /// for checkpoints.
    template: Seq2Seq,
}

impl FusedLearner {
    /// `model` with fresh moments.
    pub fn new(model: Seq2Seq, train: &TrainConfig) -> Self {
        let binding = Binding::of(&model);
        let params = binding.read(&model);
        let layout = binding.layout();
        Self {
            grads: GradBuffers::new(layout),
            moments: Moments::zeros(layout.trained().len()),
            adam: Adam {
                beta1: train.beta1,
                beta2: train.beta2,
                eps: train.eps,
                weight_decay: train.weight_decay,
            },
            dropout: model.encoder.dropout.prob as f32,
            parts: rayon::current_num_threads(),
            binding,
            params,
            template: model,
        }
    }

    /// Loads the weights and Adam's moments of `checkpoint`.
    pub fn restore(&mut self, checkpoint: &Path) -> Result<()> {
        let model = checkpoint::load_model(checkpoint, self.template.clone())?;
        // The loaded record brings its own parameter ids, which the optimizer record uses.
        self.binding = Binding::of(&model);
        self.params = self.binding.read(&model);
        self.template = model;
        let path = checkpoint.join("optimizer.bpk");
        let bytes = fs::read(&path).map_err(io_at(&path))?;
        self.moments = read_moments(&self.binding, bytes, &path.display().to_string())?;
        Ok(())
    }

    /// Adam's moments in burn's optimizer record.
    pub fn optimizer_bytes(&self) -> Result<Vec<u8>> {
        write_moments(&self.binding, &self.moments)
    }

    /// The weights, copied for the forward pass under validation.
    pub fn weights(&self) -> FusedWeights {
        FusedWeights::from_flat(self.binding.layout().clone(), self.params.clone())
    }

    /// The weights as a burn model.
    pub fn model(&self) -> Seq2Seq {
        self.binding.write(&self.params, self.template.clone())
    }

    /// Forward, loss and backward through `rnnsearch-fused`, then the gradient norm,
    /// clipping and Adam over the flat buffers.
    pub fn step(
        &mut self,
        batch: &Batch,
        train: &TrainConfig,
        lr: f64,
        dropout_seed: u64,
    ) -> StepReport {
        let report = self.backward(batch, train.label_smoothing, dropout_seed);
        if !report.is_finite() {
            return report;
        }
        let layout = self.binding.layout();
        let trained = layout.trained();
        let scale = clip_factor(train.clip_norm, report.gradient_norm).unwrap_or(1.0);
        self.adam.update(
            &mut self.params[trained.clone()],
            &self.grads.sum[trained],
            &mut self.moments,
            lr,
            scale,
        );
        layout.tie(&mut self.params);
        report
    }

    /// The loss of `batch` and its gradients into [`Self::gradients`], the batch cut into
    /// one part per thread.
    pub fn backward(
        &mut self,
        batch: &Batch,
        label_smoothing: f32,
        dropout_seed: u64,
    ) -> StepReport {
        let layout = self.binding.layout();
        let fused_batch = FusedBatch::of(batch);
        let options = StepOptions {
            dropout: self.dropout,
            label_smoothing,
            tokens: fused_batch.tokens,
            seed: dropout_seed,
        };
        let result = train_step_in_parts(
            layout,
            &layout.weights(&self.params),
            &fused_batch.batch.borrow(),
            &options,
            self.parts,
            &mut self.grads,
        );
        layout.fold_tied(&mut self.grads.sum);
        StepReport {
            loss: result.loss,
            nll_sum: result.nll_sum,
            gradient_norm: squared_norm(&self.grads.sum[layout.trained()]).sqrt(),
        }
    }

    /// The gradients of the last step, in the binding's layout (before clipping; with tied
    /// embeddings, W_o's folded into E's).
    pub fn gradients(&self) -> &[f32] {
        &self.grads.sum
    }

    pub fn binding(&self) -> &Binding {
        &self.binding
    }
}

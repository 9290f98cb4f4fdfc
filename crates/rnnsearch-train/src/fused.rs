//! Gradients through `rnnsearch-fused`, the hand-written CPU training step, for models of the
//! shape it covers. The weights are read from the burn model and the gradients handed back as
//! burn tensors, so the optimiser, clipping, checkpoints and search stay the same.

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use rnnsearch_data::Batch;
use rnnsearch_fused::{Dims, GruGrads, GruWeights, StepOptions, Weights};
use rnnsearch_model::cell::Cell;
use rnnsearch_model::{Bridge, CellKind, DeepOutput, ModelConfig, Scorer, Seq2Seq};

/// Why `rnnsearch-fused` cannot run this model, or None when it can.
pub fn unsupported(model: &ModelConfig) -> Option<String> {
    let reason = if model.cell != CellKind::Gru {
        "model.cell is not \"gru\""
    } else if model.scorer != Scorer::Additive {
        "model.scorer is not \"additive\""
    } else if model.bridge != Bridge::BackwardFirst {
        "model.bridge is not \"backward-first\""
    } else if model.deep_output != DeepOutput::Maxout {
        "model.deep_output is not \"maxout\""
    } else if model.tied_embeddings {
        "model.tied_embeddings is true"
    } else {
        return None;
    };
    Some(format!(
        "the fused engine does not cover this model: {reason}"
    ))
}

/// Loss terms and gradients of one batch.
pub struct FusedStep {
    /// Smoothed loss per target token.
    pub loss: f64,
    /// Σ −log p(y_i) over real target tokens.
    pub nll_sum: f64,
    pub grads: GradientsParams,
}

fn values<const D: usize>(param: &Param<Tensor<D>>) -> Vec<f32> {
    param
        .val()
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float parameters")
}

fn present<const D: usize>(param: &Option<Param<Tensor<D>>>, what: &str) -> Vec<f32> {
    values(
        param
            .as_ref()
            .unwrap_or_else(|| panic!("{what} is missing")),
    )
}

/// The four weights of a cell, owned.
struct CellValues([Vec<f32>; 4]);

impl CellValues {
    fn of(cell: &Cell) -> Self {
        Self([
            values(&cell.input_weight),
            values(&cell.input_bias),
            values(&cell.recurrent_weight),
            values(&cell.recurrent_bias),
        ])
    }

    fn borrow(&self) -> GruWeights<'_> {
        GruWeights {
            w: &self.0[0],
            b: &self.0[1],
            u: &self.0[2],
            c: &self.0[3],
        }
    }
}

fn register<const D: usize>(
    grads: &mut GradientsParams,
    param: &Param<Tensor<D>>,
    values: Vec<f32>,
) {
    let shape = param.val().dims();
    let device = param.val().device();
    let tensor = Tensor::<D>::from_data(TensorData::new(values, shape), &device).inner();
    grads.register(param.id, tensor);
}

fn register_cell(grads: &mut GradientsParams, cell: &Cell, g: GruGrads) {
    register(grads, &cell.input_weight, g.w);
    register(grads, &cell.input_bias, g.b);
    register(grads, &cell.recurrent_weight, g.u);
    register(grads, &cell.recurrent_bias, g.c);
}

/// Forward, loss and backward of `batch` through `rnnsearch-fused`.
///
/// `dropout_seed` seeds the dropout masks; the model must be one [`unsupported`] accepts.
pub fn gradients(
    model: &Seq2Seq,
    batch: &Batch,
    dropout: f64,
    label_smoothing: f32,
    dropout_seed: u64,
) -> FusedStep {
    let encoder = &model.encoder;
    let decoder = &model.decoder;
    let attention = &decoder.attention;
    let [src_vocab, embedding] = encoder.embedding.weight.dims();
    let [tgt_vocab, _] = decoder.embedding.weight.dims();
    let hidden = encoder.layers[0].forward.d_hidden();
    let decoder_hidden = decoder.cell.d_hidden();
    let attention_size = attention
        .query_layer
        .as_ref()
        .map(|w| w.dims()[1])
        .expect("W_a");
    let output = decoder.deep_output.dims()[1] / 2;
    let dims = Dims {
        embedding,
        hidden,
        layers: encoder.layers.len(),
        decoder_hidden,
        attention: attention_size,
        output,
        src_vocab,
        tgt_vocab,
    };

    let src_embedding = values(&encoder.embedding.weight);
    let layers: Vec<[CellValues; 2]> = encoder
        .layers
        .iter()
        .map(|l| [CellValues::of(&l.forward), CellValues::of(&l.backward)])
        .collect();
    let bridge_w = present(&decoder.bridge, "the bridge");
    let bridge_b = present(&decoder.bridge_bias, "the bridge bias");
    let key = present(&attention.key_layer, "U_a");
    let query = present(&attention.query_layer, "W_a");
    let energy = present(&attention.energy_layer, "v_a");
    let tgt_embedding = values(&decoder.embedding.weight);
    let cell = CellValues::of(&decoder.cell);
    let deep_w = values(&decoder.deep_output);
    let deep_b = values(&decoder.deep_output_bias);
    let out_w = present(&decoder.output_projection, "W_o");
    let out_b = values(&decoder.output_bias);
    let weights = Weights {
        src_embedding: &src_embedding,
        encoder: layers
            .iter()
            .map(|[f, b]| [f.borrow(), b.borrow()])
            .collect(),
        bridge_w: &bridge_w,
        bridge_b: &bridge_b,
        key: &key,
        query: &query,
        energy: &energy,
        tgt_embedding: &tgt_embedding,
        decoder: cell.borrow(),
        deep_w: &deep_w,
        deep_b: &deep_b,
        out_w: &out_w,
        out_b: &out_b,
    };
    if let Err(e) = dims.check(&weights) {
        panic!("rnnsearch-fused: {e}");
    }

    let ids = |v: &[u32]| -> Vec<usize> { v.iter().map(|&x| x as usize).collect() };
    let (source, target_in, target_out) =
        (ids(&batch.src), ids(&batch.tgt_in), ids(&batch.tgt_out));
    let target_padding: Vec<bool> = batch.tgt_mask().into_iter().map(|real| !real).collect();
    let fused_batch = rnnsearch_fused::Batch {
        source: &source,
        source_lengths: &batch.src_lengths,
        target_in: &target_in,
        target_out: &target_out,
        target_padding: &target_padding,
        tgt_len: batch.tgt_len(),
    };
    let options = StepOptions {
        dropout: dropout as f32,
        label_smoothing,
        tokens: batch.num_tgt_tokens(),
        seed: dropout_seed,
    };
    let step = rnnsearch_fused::train_step(&weights, &dims, &fused_batch, &options);

    let g = step.grads;
    let mut grads = GradientsParams::new();
    register(&mut grads, &encoder.embedding.weight, g.src_embedding);
    for (layer, [fwd, bwd]) in encoder.layers.iter().zip(g.encoder) {
        register_cell(&mut grads, &layer.forward, fwd);
        register_cell(&mut grads, &layer.backward, bwd);
    }
    let some = |p: &Option<Param<Tensor<2>>>| p.clone().expect("checked above");
    register(&mut grads, &some(&decoder.bridge), g.bridge_w);
    register(
        &mut grads,
        &decoder.bridge_bias.clone().expect("checked above"),
        g.bridge_b,
    );
    register(&mut grads, &some(&attention.key_layer), g.key);
    register(&mut grads, &some(&attention.query_layer), g.query);
    register(&mut grads, &some(&attention.energy_layer), g.energy);
    register(&mut grads, &decoder.embedding.weight, g.tgt_embedding);
    register_cell(&mut grads, &decoder.cell, g.decoder);
    register(&mut grads, &decoder.deep_output, g.deep_w);
    register(&mut grads, &decoder.deep_output_bias, g.deep_b);
    register(&mut grads, &some(&decoder.output_projection), g.out_w);
    register(&mut grads, &decoder.output_bias, g.out_b);
    FusedStep {
        loss: step.loss,
        nll_sum: step.nll_sum,
        grads,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, ModuleVisitor, ParamId};
    use burn::tensor::Device;
    use std::collections::HashMap;

    use crate::config::TrainConfig;
    use crate::trainer::BatchTensors;

    /// Every parameter's gradient, flattened.
    fn flatten(model: &Seq2Seq, grads: &GradientsParams) -> HashMap<ParamId, Vec<f32>> {
        struct Collect<'g>(&'g GradientsParams, HashMap<ParamId, Vec<f32>>);
        impl ModuleVisitor for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let g = self
                    .0
                    .get::<D>(param.id)
                    .expect("a gradient for every parameter");
                let v = g.into_data().try_into_vec_as::<f32>().unwrap();
                self.1.insert(param.id, v);
            }
        }
        let mut c = Collect(grads, HashMap::new());
        model.visit(&mut c);
        c.1
    }

    /// Three sentences of different lengths, so padding is exercised on both sides.
    fn batch() -> Batch {
        Batch {
            indices: vec![0, 1, 2],
            src: vec![4, 5, 6, 7, 3, 8, 9, 3, 0, 0, 10, 11, 12, 3, 0],
            src_lengths: vec![5, 3, 4],
            tgt_in: vec![2, 4, 5, 6, 2, 7, 0, 0, 2, 8, 9, 0],
            tgt_out: vec![4, 5, 6, 3, 7, 3, 0, 0, 8, 9, 3, 0],
            tgt_lengths: vec![4, 2, 3],
        }
    }

    /// The fused step computes the same loss and the same gradient for every parameter as
    /// burn's autodiff through `Seq2Seq::forward` (dropout off).
    #[test]
    fn fused_gradients_equal_autodiff() {
        for layers in [1, 2] {
            let device = Device::flex().autodiff();
            device.seed(7);
            let config = ModelConfig {
                encoder_layers: layers,
                embedding: 6,
                hidden: 5,
                decoder_hidden: 7,
                attention: 4,
                output: 3,
                dropout: 0.0,
                embedding_init_std: 1.0,
                ..ModelConfig::default()
            };
            assert_eq!(unsupported(&config), None);
            let model = config.init(13, 11, &device);
            let batch = batch();
            let train = TrainConfig::default();

            let t = BatchTensors::new(&batch, &device);
            let out = model.forward(t.source, &t.source_lengths, t.target_in);
            let loss = crate::loss::label_smoothed_cross_entropy(
                out.logits,
                t.target_out,
                t.target_padding,
                train.label_smoothing,
                batch.num_tgt_tokens(),
            );
            let burn_loss = loss.per_token.clone().into_scalar::<f32>() as f64;
            let burn_nll = loss.nll_sum.clone().into_scalar::<f32>() as f64;
            let burn_grads = GradientsParams::from_grads(loss.per_token.backward(), &model);

            let fused = gradients(&model, &batch, 0.0, train.label_smoothing, 1);
            assert!(
                (fused.loss - burn_loss).abs() < 1e-5,
                "{} vs {burn_loss}",
                fused.loss
            );
            assert!(
                (fused.nll_sum - burn_nll).abs() < 1e-4,
                "{} vs {burn_nll}",
                fused.nll_sum
            );

            let want = flatten(&model, &burn_grads);
            let got = flatten(&model, &fused.grads);
            assert_eq!(want.len(), got.len());
            for (id, w) in &want {
                let g = &got[id];
                assert_eq!(w.len(), g.len());
                let scale = w.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
                let diff = w.iter().zip(g).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(
                    diff <= 1e-4 * scale.max(1.0),
                    "layers {layers}: parameter of {} values differs by {diff} (scale {scale})",
                    w.len()
                );
            }
        }
    }

    #[test]
    fn other_shapes_are_named() {
        let lstm = ModelConfig {
            cell: CellKind::Lstm,
            ..ModelConfig::default()
        };
        assert!(unsupported(&lstm).unwrap().contains("model.cell"));
    }
}

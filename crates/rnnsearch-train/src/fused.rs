//! Gradients through `rnnsearch-fused`, the hand-written CPU training step, and its forward pass
//! under the search, for models of the shape it covers. The weights are read from the burn model
//! and the gradients handed back as burn tensors, so the optimiser, clipping and checkpoints stay
//! the same.

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use rnnsearch_data::Batch;
use rnnsearch_fused::{Decoding, Dims, GruGrads, GruWeights, PackedDecoder, StepOptions, Weights};
use rnnsearch_model::cell::Cell;
use rnnsearch_model::{
    Bridge, CellKind, DeepOutput, ModelConfig, Scorer, Seq2Seq, StepDecoder, StepScores,
};
use std::sync::OnceLock;

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
    } else {
        return None;
    };
    Some(format!(
        "the fused engine does not cover this model: {reason}"
    ))
}

/// The sizes of `model`, read from its weights. The alignment model's size a is W_a's width
/// (additive), else the keys' (general, cosine), else 0 (dot); l is the deep output's width
/// after pooling (half of it with maxout).
pub fn dims_of(model: &Seq2Seq) -> Dims {
    let (encoder, decoder) = (&model.encoder, &model.decoder);
    let attention = &decoder.attention;
    let [src_vocab, embedding] = encoder.embedding.weight.dims();
    let [tgt_vocab, _] = decoder.embedding.weight.dims();
    let pool = if decoder.deep_output_kind == DeepOutput::Maxout {
        2
    } else {
        1
    };
    Dims {
        embedding,
        hidden: encoder.layers[0].forward.d_hidden(),
        layers: encoder.layers.len(),
        decoder_hidden: decoder.cell.d_hidden(),
        attention: (attention.query_layer.as_ref())
            .or(attention.key_layer.as_ref())
            .map_or(0, |w| w.dims()[1]),
        output: decoder.deep_output.dims()[1] / pool,
        src_vocab,
        tgt_vocab,
    }
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

/// `x` (`[rows, cols]`, row-major) transposed to `[cols, rows]`, in tiles that stay in cache
/// (element by element, the transpose of tied embeddings, one every step each way, cost a
/// noticeable share of a training step: docs/benchmarks.md, "Packed products").
fn transposed(x: &[f32], cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let rows = x.len() / cols;
    let mut t = vec![0.0; x.len()];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                let row = &x[r * cols..(r + 1) * cols];
                for c in c0..(c0 + TILE).min(cols) {
                    t[c * rows + r] = row[c];
                }
            }
        }
    }
    t
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

/// The weights of a burn model copied into plain buffers for `rnnsearch-fused`, with its sizes.
pub struct FusedWeights {
    dims: Dims,
    src_embedding: Vec<f32>,
    layers: Vec<[CellValues; 2]>,
    bridge_w: Vec<f32>,
    bridge_b: Vec<f32>,
    key: Vec<f32>,
    query: Vec<f32>,
    energy: Vec<f32>,
    tgt_embedding: Vec<f32>,
    cell: CellValues,
    deep_w: Vec<f32>,
    deep_b: Vec<f32>,
    out_w: Vec<f32>,
    out_b: Vec<f32>,
    /// The decoder packed for the few rows of a decoding step, made by the first search.
    packed: OnceLock<Option<PackedDecoder>>,
}

impl FusedWeights {
    /// Copies the weights of `model`, which must be one [`unsupported`] accepts.
    pub fn of(model: &Seq2Seq) -> Self {
        let encoder = &model.encoder;
        let decoder = &model.decoder;
        let attention = &decoder.attention;
        let dims = dims_of(model);
        let weights = Self {
            dims,
            src_embedding: values(&encoder.embedding.weight),
            layers: encoder
                .layers
                .iter()
                .map(|l| [CellValues::of(&l.forward), CellValues::of(&l.backward)])
                .collect(),
            bridge_w: present(&decoder.bridge, "the bridge"),
            bridge_b: present(&decoder.bridge_bias, "the bridge bias"),
            key: present(&attention.key_layer, "U_a"),
            query: present(&attention.query_layer, "W_a"),
            energy: present(&attention.energy_layer, "v_a"),
            tgt_embedding: values(&decoder.embedding.weight),
            cell: CellValues::of(&decoder.cell),
            deep_w: values(&decoder.deep_output),
            deep_b: values(&decoder.deep_output_bias),
            out_w: match &decoder.output_projection {
                Some(w_o) => values(w_o),
                // Tied: W_o = Eᵀ, `[l = E, V]` from the target embeddings `[V, E]`.
                None => transposed(&values(&decoder.embedding.weight), dims.embedding),
            },
            out_b: values(&decoder.output_bias),
            packed: OnceLock::new(),
        };
        if let Err(e) = dims.check(&weights.borrow()) {
            panic!("rnnsearch-fused: {e}");
        }
        weights
    }

    /// The decoder packed for [`Decoding::step`], or None where the CPU has no kernel for it.
    fn packed(&self) -> Option<&PackedDecoder> {
        self.packed
            .get_or_init(|| PackedDecoder::new(&self.borrow(), &self.dims))
            .as_ref()
    }

    /// The model's sizes.
    pub fn dims(&self) -> &Dims {
        &self.dims
    }

    /// The weights, borrowed in `rnnsearch-fused`'s layout.
    pub fn borrow(&self) -> Weights<'_> {
        Weights {
            src_embedding: &self.src_embedding,
            encoder: self
                .layers
                .iter()
                .map(|[f, b]| [f.borrow(), b.borrow()])
                .collect(),
            bridge_w: &self.bridge_w,
            bridge_b: &self.bridge_b,
            key: &self.key,
            query: &self.query,
            energy: &self.energy,
            tgt_embedding: &self.tgt_embedding,
            decoder: self.cell.borrow(),
            deep_w: &self.deep_w,
            deep_b: &self.deep_b,
            out_w: &self.out_w,
            out_b: &self.out_b,
        }
    }
}

/// `rnnsearch-fused`'s forward pass under the search: a batch encoded once, then one decoder
/// step per call for every sentence × beam.
pub struct FusedSteps<'w> {
    weights: &'w FusedWeights,
    decoding: Decoding,
}

impl<'w> FusedSteps<'w> {
    /// Encodes `rows` (token ids, each followed by `</s>`, as `lengths` says) and starts
    /// `rows_per_sentence` decoder rows per sentence.
    pub fn new(
        weights: &'w FusedWeights,
        source: &[u32],
        lengths: &[usize],
        rows_per_sentence: usize,
    ) -> Self {
        let source: Vec<usize> = source.iter().map(|&t| t as usize).collect();
        let decoding = Decoding::new(
            &weights.borrow(),
            weights.dims(),
            &source,
            lengths,
            rows_per_sentence,
        );
        Self { weights, decoding }
    }
}

impl StepDecoder for FusedSteps<'_> {
    fn step(&mut self, previous: &[u32], alignments: bool) -> StepScores<'_> {
        let previous: Vec<usize> = previous.iter().map(|&t| t as usize).collect();
        let src_len = self.decoding.src_len();
        let (logits, log_normalizers, alignment) =
            self.decoding
                .step(&self.weights.borrow(), self.weights.packed(), &previous);
        StepScores {
            logits,
            log_normalizers,
            alignment: alignments.then_some(alignment),
            src_len,
        }
    }

    fn reorder(&mut self, origin: &[usize]) {
        self.decoding.reorder(origin);
    }

    fn retain(&mut self, rows: &[usize]) {
        self.decoding.retain(rows);
    }
}

/// Forward, loss and backward of `batch` through `rnnsearch-fused`, the batch cut into up to
/// `parts` parts run side by side (one per thread: `rnnsearch_fused::parallel`).
///
/// `dropout_seed` seeds the dropout masks; the model must be one [`unsupported`] accepts.
pub fn gradients(
    model: &Seq2Seq,
    batch: &Batch,
    dropout: f64,
    label_smoothing: f32,
    dropout_seed: u64,
    parts: usize,
) -> FusedStep {
    let encoder = &model.encoder;
    let decoder = &model.decoder;
    let attention = &decoder.attention;
    let values = FusedWeights::of(model);
    let (weights, dims) = (values.borrow(), *values.dims());

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
    let step = rnnsearch_fused::train_step_in_parts(&weights, &dims, &fused_batch, &options, parts);

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
    match &decoder.output_projection {
        Some(w_o) => {
            register(&mut grads, &decoder.embedding.weight, g.tgt_embedding);
            register(&mut grads, w_o, g.out_w);
        }
        None => {
            // Tied: W_o = Eᵀ, so E gets ∂L/∂W_oᵀ on top of its own gradient.
            let mut d_embedding = g.tgt_embedding;
            let d_out = transposed(&g.out_w, dims.tgt_vocab);
            d_embedding.iter_mut().zip(d_out).for_each(|(d, o)| *d += o);
            register(&mut grads, &decoder.embedding.weight, d_embedding);
        }
    }
    register_cell(&mut grads, &decoder.cell, g.decoder);
    register(&mut grads, &decoder.deep_output, g.deep_w);
    register(&mut grads, &decoder.deep_output_bias, g.deep_b);
    register(&mut grads, &decoder.output_bias, g.out_b);
    FusedStep {
        loss: step.loss,
        nll_sum: step.nll_sum,
        grads,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use burn::module::{Module, ModuleVisitor, ParamId};
    use burn::tensor::Device;
    use std::collections::HashMap;

    #[test]
    fn transposed_moves_every_value_across_partial_tiles() {
        let (rows, cols) = (45, 70);
        let x: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let t = transposed(&x, cols);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(t[c * rows + r], x[r * cols + c]);
            }
        }
    }

    use crate::config::TrainConfig;
    use crate::trainer::step::BatchTensors;

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

    /// A model small enough to check by hand-sized numbers, of the shape the fused engine
    /// covers, without dropout.
    pub(crate) fn tiny_config(layers: usize) -> ModelConfig {
        ModelConfig {
            encoder_layers: layers,
            embedding: 6,
            hidden: 5,
            decoder_hidden: 7,
            attention: 4,
            output: 3,
            dropout: 0.0,
            embedding_init_std: 1.0,
            ..ModelConfig::default()
        }
    }

    /// The sentences of [`batch`] `copies` times over.
    fn repeated(copies: usize) -> Batch {
        let one = batch();
        Batch {
            indices: (0..3 * copies).collect(),
            src: one.src.repeat(copies),
            src_lengths: one.src_lengths.repeat(copies),
            tgt_in: one.tgt_in.repeat(copies),
            tgt_out: one.tgt_out.repeat(copies),
            tgt_lengths: one.tgt_lengths.repeat(copies),
        }
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
    /// burn's autodiff through `Seq2Seq::forward` (dropout off), whole and with the batch cut
    /// into parts (3 parts of 8 sentences, each padded to its own longest).
    #[test]
    fn fused_gradients_equal_autodiff() {
        for (layers, tied, copies, parts) in [
            (1, false, 1, 1),
            (2, false, 1, 1),
            (1, true, 1, 1),
            (2, true, 8, 3),
        ] {
            let device = Device::flex().autodiff();
            device.seed(7);
            let config = ModelConfig {
                // W_o = Eᵀ needs the maxout's width to be the embedding's.
                output: if tied { 6 } else { 3 },
                tied_embeddings: tied,
                ..tiny_config(layers)
            };
            assert_eq!(unsupported(&config), None);
            let model = config.init(13, 11, &device);
            let batch = repeated(copies);
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

            let fused = gradients(&model, &batch, 0.0, train.label_smoothing, 1, parts);
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
                    "layers {layers}, tied {tied}, parts {parts}: parameter of {} values differs by {diff} (scale {scale})",
                    w.len()
                );
            }
        }
    }

    /// The fused forward pass under the search gives the burn model's log-probabilities,
    /// alignments and translations, greedy and beam, over a padded batch.
    #[test]
    fn fused_search_equals_burn_search() {
        use rnnsearch_data::Vocab;
        use rnnsearch_model::{search, search_with, BurnSteps, SearchConfig};

        let device = Device::flex();
        device.seed(11);
        let model = tiny_config(2).init(13, 11, &device);
        let weights = FusedWeights::of(&model);
        let batch = batch();
        let (src, lengths) = (&batch.src, &batch.src_lengths);
        let source = Tensor::from_data(
            TensorData::new(src.iter().map(|&t| t as i64).collect(), [3, 5]),
            &device,
        );

        // One step with 2 rows per sentence, reordered, then another.
        let mut burn = BurnSteps::new(&model, source.clone(), lengths, 2);
        let mut fused = FusedSteps::new(&weights, src, lengths, 2);
        let mut previous = vec![2u32; 6];
        for origin in [[1, 0, 2, 2, 5, 4], [0, 1, 3, 2, 4, 4]] {
            let (b, f) = (burn.step(&previous, true), fused.step(&previous, true));
            let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(a, b)| (a - b).abs() < 1e-4);
            assert!(
                close(&b.log_probs(), &f.log_probs()),
                "log-probabilities differ"
            );
            assert!(
                close(b.alignment.unwrap(), f.alignment.unwrap()),
                "α differs"
            );
            burn.reorder(&origin);
            fused.reorder(&origin);
            previous = vec![4, 5, 6, 7, 8, 9];
        }
        // Rows leave the batch.
        burn.retain(&[4, 1, 2]);
        fused.retain(&[4, 1, 2]);
        let (b, f) = (burn.step(&[5, 6, 7], true), fused.step(&[5, 6, 7], true));
        assert_eq!(b.logits.len(), 3 * 11);
        let diff = b
            .log_probs()
            .iter()
            .zip(f.log_probs())
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff < 1e-4, "after retain: {diff}");

        for beam in [1, 3] {
            let search_config = SearchConfig {
                beam,
                nbest: beam,
                alignments: true,
                ..SearchConfig::greedy(Vocab::BOS, Vocab::EOS)
            };
            let want = search(&model, source.clone(), lengths, &search_config);
            let mut steps =
                FusedSteps::new(&weights, src, lengths, search_config.rows_per_sentence());
            let got = search_with(&mut steps, lengths, &search_config);
            for (w, g) in want.iter().flatten().zip(got.iter().flatten()) {
                assert_eq!(w.tokens, g.tokens, "beam {beam}");
                assert!((w.score - g.score).abs() < 1e-4, "beam {beam}");
                assert_eq!(w.alignment.len(), g.alignment.len());
            }
            assert_eq!(want.iter().flatten().count(), got.iter().flatten().count());
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

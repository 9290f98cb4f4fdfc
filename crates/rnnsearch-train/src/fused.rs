//! `rnnsearch-fused` beside burn: a model's sizes and variants ([`dims_of`]), where its parameters lie
//! in its flat buffers ([`Binding`]), and its forward pass under the search ([`FusedSteps`]).
//! Training through it is [`crate::engine::FusedLearner`].

use std::collections::HashMap;
use std::ops::Range;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData};
use rnnsearch_data::Batch;
use rnnsearch_fused::{
    loss_in_parts, Decoding, Dims, Layout, OwnedBatch, PackedDecoder, StepOptions, Weights,
};
use rnnsearch_model::cell::Cell;
use rnnsearch_model::{Bridge, CellKind, DeepOutput, Scorer, Seq2Seq, StepDecoder, StepScores};
use std::sync::OnceLock;

/// The sizes of `model`, read from its weights, and its variants. The alignment model's size a
/// is W_a's width (additive), else 0; l is the deep output's width after pooling (half of it
/// with maxout).
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
        attention: attention.query_layer.as_ref().map_or(0, |w| w.dims()[1]),
        output: decoder.deep_output.dims()[1] / pool,
        src_vocab,
        tgt_vocab,
        scorer: match attention.scorer {
            Scorer::Additive => rnnsearch_fused::Scorer::Additive,
            Scorer::Dot => rnnsearch_fused::Scorer::Dot,
            Scorer::General => rnnsearch_fused::Scorer::General,
            Scorer::Cosine => rnnsearch_fused::Scorer::Cosine {
                learned: attention.log_temperature.is_some(),
            },
        },
        cell: match decoder.cell.kind() {
            CellKind::Gru => rnnsearch_fused::CellKind::Gru,
            CellKind::Lstm => rnnsearch_fused::CellKind::Lstm,
        },
        bridge: match decoder.bridge_kind {
            Bridge::BackwardFirst => rnnsearch_fused::Bridge::BackwardFirst,
            Bridge::Mean => rnnsearch_fused::Bridge::Mean,
            Bridge::Zero => rnnsearch_fused::Bridge::Zero,
        },
        deep_output: match decoder.deep_output_kind {
            DeepOutput::Maxout => rnnsearch_fused::DeepOutput::Maxout,
            DeepOutput::Tanh => rnnsearch_fused::DeepOutput::Tanh,
        },
    }
}

/// Where each parameter of a burn model lies in `rnnsearch-fused`'s flat buffers
/// ([`Layout`]): the bridge between burn's records and the fused engine's memory, crossed
/// when a checkpoint is written or read and when the search copies a model's weights.
#[derive(Clone, Debug)]
pub struct Binding {
    layout: Layout,
    /// Each parameter's range in the flat buffers and its shape.
    slots: HashMap<ParamId, (Range<usize>, Vec<usize>)>,
}

impl Binding {
    /// The binding of `model`.
    pub fn of(model: &Seq2Seq) -> Self {
        let (encoder, decoder) = (&model.encoder, &model.decoder);
        let attention = &decoder.attention;
        let tied = decoder.output_projection.is_none();
        let mut layout = Layout::new(dims_of(model), tied);
        layout.fixed_temperature = attention.fixed_temperature as f32;
        let mut named: Vec<(ParamId, String)> =
            vec![(encoder.embedding.weight.id, "src_embedding".into())];
        let cell = |named: &mut Vec<(ParamId, String)>, cell: &Cell, name: &str| {
            named.extend([
                (cell.input_weight.id, format!("{name}.w")),
                (cell.input_bias.id, format!("{name}.b")),
                (cell.recurrent_weight.id, format!("{name}.u")),
                (cell.recurrent_bias.id, format!("{name}.c")),
            ]);
        };
        for (l, layer) in encoder.layers.iter().enumerate() {
            cell(&mut named, &layer.forward, &format!("encoder.{l}.forward"));
            cell(
                &mut named,
                &layer.backward,
                &format!("encoder.{l}.backward"),
            );
        }
        let optional = [
            (decoder.bridge.as_ref().map(|p| p.id), "bridge_w"),
            (decoder.bridge_bias.as_ref().map(|p| p.id), "bridge_b"),
            (attention.key_layer.as_ref().map(|p| p.id), "key"),
            (attention.query_layer.as_ref().map(|p| p.id), "query"),
            (attention.energy_layer.as_ref().map(|p| p.id), "energy"),
            (
                attention.log_temperature.as_ref().map(|p| p.id),
                "log_temperature",
            ),
            (decoder.output_projection.as_ref().map(|p| p.id), "out_w"),
        ];
        for (id, name) in optional {
            if let Some(id) = id {
                named.push((id, name.into()));
            }
        }
        named.push((decoder.embedding.weight.id, "tgt_embedding".into()));
        cell(&mut named, &decoder.cell, "decoder");
        named.extend([
            (decoder.deep_output.id, "deep_w".into()),
            (decoder.deep_output_bias.id, "deep_b".into()),
            (decoder.output_bias.id, "out_b".into()),
        ]);

        struct Shapes(HashMap<ParamId, Vec<usize>>);
        impl ModuleVisitor for Shapes {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0.insert(param.id, param.val().dims().to_vec());
            }
        }
        let mut shapes = Shapes(HashMap::new());
        model.visit(&mut shapes);
        assert_eq!(
            shapes.0.len(),
            named.len(),
            "rnnsearch-fused binds every parameter of the model"
        );
        let slots = named
            .into_iter()
            .map(|(id, name)| {
                let shape = shapes.0.remove(&id).expect("a parameter of the model");
                let range = layout.slot(&name);
                assert_eq!(range.len(), shape.iter().product::<usize>(), "{name}: size");
                (id, (range, shape))
            })
            .collect();
        Self { layout, slots }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The range and shape of parameter `id` in the flat buffers.
    pub fn slot(&self, id: ParamId) -> Option<&(Range<usize>, Vec<usize>)> {
        self.slots.get(&id)
    }

    /// Every bound parameter, its range and its shape, in buffer order.
    pub fn slots(&self) -> Vec<(ParamId, Range<usize>, &[usize])> {
        let mut slots: Vec<_> = self
            .slots
            .iter()
            .map(|(id, (range, shape))| (*id, range.clone(), shape.as_slice()))
            .collect();
        slots.sort_by_key(|(_, range, _)| range.start);
        slots
    }

    /// The weights of `model` (of this binding's shape) in one flat buffer; with tied
    /// embeddings W_o holds Eᵀ.
    pub fn read(&self, model: &Seq2Seq) -> Vec<f32> {
        struct Read<'b>(&'b Binding, Vec<f32>);
        impl ModuleVisitor for Read<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let (range, _) = self.0.slot(param.id).expect("a bound parameter");
                let values = param.val().into_data();
                let values = values.as_slice::<f32>().expect("float parameters");
                self.1[range.clone()].copy_from_slice(values);
            }
        }
        let mut read = Read(self, vec![0.0; self.layout.len()]);
        model.visit(&mut read);
        let mut params = read.1;
        self.layout.tie(&mut params);
        params
    }

    /// `model` (of this binding's shape, the same parameter ids) with the weights of `params`.
    pub fn write(&self, params: &[f32], model: Seq2Seq) -> Seq2Seq {
        struct Write<'b>(&'b Binding, &'b [f32]);
        impl ModuleMapper for Write<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let (range, _) = self.0.slot(param.id).expect("a bound parameter");
                let values = self.1[range.clone()].to_vec();
                param.map(|t| {
                    let (shape, device, grad) = (t.dims(), t.device(), t.is_require_grad());
                    let t = Tensor::from_data(TensorData::new(values, shape), &device);
                    if grad {
                        t.require_grad()
                    } else {
                        t
                    }
                })
            }
        }
        model.map(&mut Write(self, params))
    }
}

/// A batch in `rnnsearch-fused`'s form (ids as `usize`, padding flags for the targets), and
/// its real target tokens.
pub struct FusedBatch {
    pub batch: OwnedBatch,
    pub tokens: usize,
}

impl FusedBatch {
    pub fn of(batch: &Batch) -> Self {
        let ids = |v: &[u32]| -> Vec<usize> { v.iter().map(|&x| x as usize).collect() };
        Self {
            batch: OwnedBatch {
                source: ids(&batch.src),
                source_lengths: batch.src_lengths.clone(),
                target_in: ids(&batch.tgt_in),
                target_out: ids(&batch.tgt_out),
                target_padding: batch.tgt_mask().into_iter().map(|real| !real).collect(),
                tgt_len: batch.tgt_len(),
            },
            tokens: batch.num_tgt_tokens(),
        }
    }
}

/// The weights of a model in one flat buffer for `rnnsearch-fused`'s forward pass: copied from
/// a burn model, or from the fused engine's own parameters.
#[derive(Clone)]
pub struct FusedWeights {
    layout: Layout,
    params: Vec<f32>,
    /// The decoder packed for the few rows of a decoding step, made by the first search.
    packed: OnceLock<Option<PackedDecoder>>,
}

impl FusedWeights {
    /// Copies the weights of `model`.
    pub fn of(model: &Seq2Seq) -> Self {
        let binding = Binding::of(model);
        let params = binding.read(model);
        Self {
            layout: binding.layout,
            params,
            packed: OnceLock::new(),
        }
    }

    /// `params`, a buffer of `layout`.
    pub fn from_flat(layout: Layout, params: Vec<f32>) -> Self {
        assert_eq!(params.len(), layout.len(), "a buffer of the layout");
        Self {
            layout,
            params,
            packed: OnceLock::new(),
        }
    }

    /// The label-smoothed loss per target token and Σ −log p(y_i) of `batch` (no dropout), the
    /// batch cut into one part per thread.
    pub fn loss(&self, batch: &Batch, label_smoothing: f32) -> (f64, f64) {
        let fused = FusedBatch::of(batch);
        let options = StepOptions {
            dropout: 0.0,
            label_smoothing,
            tokens: fused.tokens,
            seed: 0,
        };
        let threads = rayon::current_num_threads();
        let weights = self.borrow();
        let batch = fused.batch.borrow();
        let result = loss_in_parts(&weights, self.dims(), &batch, &options, threads);
        (result.loss, result.nll_sum)
    }

    /// The decoder packed for [`Decoding::step`], or None where the CPU has no kernel for it.
    fn packed(&self) -> Option<&PackedDecoder> {
        self.packed
            .get_or_init(|| PackedDecoder::new(&self.borrow(), &self.layout.dims))
            .as_ref()
    }

    /// The model's sizes.
    pub fn dims(&self) -> &Dims {
        &self.layout.dims
    }

    /// The weights, borrowed in `rnnsearch-fused`'s layout.
    pub fn borrow(&self) -> Weights<'_> {
        self.layout.weights(&self.params)
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use burn::module::{Module, ModuleVisitor, ParamId};
    use burn::tensor::Device;
    use std::collections::HashMap;

    use crate::config::TrainConfig;
    use crate::engine::{BatchTensors, FusedLearner};
    use burn::optim::GradientsParams;
    use rnnsearch_data::Batch;
    use rnnsearch_model::ModelConfig;

    /// Every parameter's gradient, flattened.
    pub(crate) fn flatten(model: &Seq2Seq, grads: &GradientsParams) -> HashMap<ParamId, Vec<f32>> {
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
    pub(crate) fn repeated(copies: usize) -> Batch {
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
    pub(crate) fn batch() -> Batch {
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
        use CellKind::{Gru, Lstm};
        use DeepOutput::{Maxout, Tanh};
        use Scorer::{Additive, Cosine, Dot, General};
        for (cell, layers, tied, copies, parts, bridge, deep_output, scorer) in [
            (Gru, 1, false, 1, 1, Bridge::BackwardFirst, Maxout, Additive),
            (Gru, 2, false, 1, 1, Bridge::BackwardFirst, Maxout, Additive),
            (Gru, 1, true, 1, 1, Bridge::BackwardFirst, Maxout, Additive),
            (Gru, 2, true, 8, 3, Bridge::BackwardFirst, Maxout, Additive),
            (Gru, 1, false, 1, 1, Bridge::Mean, Maxout, General),
            (Gru, 2, false, 8, 3, Bridge::Zero, Maxout, Cosine),
            (Gru, 1, false, 1, 1, Bridge::BackwardFirst, Tanh, Dot),
            (Gru, 2, true, 8, 3, Bridge::Mean, Tanh, Cosine),
            (
                Lstm,
                1,
                false,
                1,
                1,
                Bridge::BackwardFirst,
                Maxout,
                Additive,
            ),
            (Lstm, 2, true, 8, 3, Bridge::Mean, Tanh, General),
            (Lstm, 2, false, 1, 1, Bridge::Zero, Maxout, Dot),
        ] {
            let device = Device::flex().autodiff();
            device.seed(7);
            let config = with_scorer(
                ModelConfig {
                    // W_o = Eᵀ needs the deep output's width to be the embedding's.
                    output: if tied { 6 } else { 3 },
                    tied_embeddings: tied,
                    bridge,
                    deep_output,
                    cell,
                    ..tiny_config(layers)
                },
                scorer,
                !tied,
            );
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

            let mut learner = FusedLearner::new(model.clone(), &train);
            learner.parts = parts;
            let fused = learner.backward(&batch, train.label_smoothing, 1);
            assert!(
                (fused.loss - burn_loss).abs() < 1e-5,
                "{} vs {burn_loss}",
                fused.loss
            );
            // a sum over every token of the batch: relative to its size
            assert!(
                (fused.nll_sum - burn_nll).abs() < 1e-6 * burn_nll.abs().max(100.0),
                "{} vs {burn_nll}",
                fused.nll_sum
            );

            let want = flatten(&model, &burn_grads);
            let binding = learner.binding();
            assert_eq!(want.len(), binding.slots().len());
            for (id, w) in &want {
                let (range, _) = binding.slot(*id).expect("every parameter bound");
                let g = &learner.gradients()[range.clone()];
                assert_eq!(w.len(), g.len());
                let scale = w.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
                let diff = w.iter().zip(g).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(
                    diff <= 1e-4 * scale.max(1.0),
                    "{cell:?}, layers {layers}, tied {tied}, parts {parts}, {bridge:?}, {deep_output:?}, {scorer:?}: parameter of {} values differs by {diff} (scale {scale})",
                    w.len()
                );
            }
        }
    }

    /// The fused forward pass under the search gives the burn model's log-probabilities,
    /// alignments and translations, greedy and beam, over a padded batch.
    #[test]
    fn fused_search_equals_burn_search() {
        for (bridge, deep_output, scorer, learned) in [
            (
                Bridge::BackwardFirst,
                DeepOutput::Maxout,
                Scorer::Additive,
                false,
            ),
            (Bridge::Mean, DeepOutput::Tanh, Scorer::Dot, false),
            (Bridge::Zero, DeepOutput::Maxout, Scorer::General, false),
            (
                Bridge::BackwardFirst,
                DeepOutput::Maxout,
                Scorer::Cosine,
                true,
            ),
            (Bridge::Mean, DeepOutput::Maxout, Scorer::Cosine, false),
        ] {
            let config = ModelConfig {
                bridge,
                deep_output,
                ..tiny_config(2)
            };
            search_matches(&with_scorer(config, scorer, learned));
        }
    }

    /// `config` with `scorer` (a learned or fixed temperature for cosine; the decoder as wide
    /// as the annotations for dot).
    fn with_scorer(config: ModelConfig, scorer: Scorer, learned: bool) -> ModelConfig {
        ModelConfig {
            scorer,
            learn_temperature: learned,
            cosine_temperature: 3.0,
            decoder_hidden: if scorer == Scorer::Dot {
                2 * config.hidden
            } else {
                config.decoder_hidden
            },
            ..config
        }
    }

    /// The fused forward pass under the search gives `config`'s burn model's
    /// log-probabilities, alignments and translations.
    fn search_matches(config: &ModelConfig) {
        use rnnsearch_data::Vocab;
        use rnnsearch_model::{search, search_with, BurnSteps, SearchConfig};

        let device = Device::flex();
        device.seed(11);
        let model = config.init(13, 11, &device);
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
}

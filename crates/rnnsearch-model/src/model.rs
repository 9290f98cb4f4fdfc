//! The whole encoder-decoder and its user-facing configuration.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::attention::Scorer;
use crate::cell::{CellKind, ParamInit};
use crate::decoder::{Bridge, Decoder, DecoderConfig, DeepOutput};
use crate::encoder::{Encoded, Encoder, EncoderConfig};

/// The `[model]` section of a run configuration. Vocabulary sizes come from the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Recurrent unit of encoder and decoder: `gru` or `lstm`.
    pub cell: CellKind,
    /// Stacked bidirectional encoder layers.
    pub encoder_layers: usize,
    /// Source and target embedding size.
    pub embedding: usize,
    /// Encoder units per direction (n); annotations have 2n features.
    pub hidden: usize,
    /// Decoder state size (m).
    pub decoder_hidden: usize,
    /// Alignment model size (a).
    pub attention: usize,
    /// Deep output units after pooling (l).
    pub output: usize,
    /// `additive`, `dot`, `general` or `cosine`.
    pub scorer: Scorer,
    /// Initial temperature of the cosine scorer (learned), or its fixed value when
    /// `learn_temperature` is false.
    pub cosine_temperature: f64,
    /// Learn the cosine scorer's temperature.
    pub learn_temperature: bool,
    /// `backward-first`, `mean` or `zero`.
    pub bridge: Bridge,
    /// `maxout` or `tanh`.
    pub deep_output: DeepOutput,
    /// Dropout on embeddings, between encoder layers and on the deep output.
    pub dropout: f64,
    /// Share the target embeddings with the output projection (needs output == embedding).
    pub tied_embeddings: bool,
    /// Orthogonal recurrent matrices (the paper); the `init` scheme otherwise.
    pub orthogonal_recurrent: bool,
    /// Standard deviation of the normal initialisation of both embedding tables.
    pub embedding_init_std: f64,
    /// Every other weight and bias: `glorot` (Xavier-uniform, zero biases) or `fan-in`
    /// (PyTorch's defaults, U(±1/√fan_in) weights and biases). `orthogonal_recurrent` still
    /// decides the recurrent matrices.
    pub init: ParamInit,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            cell: CellKind::Gru,
            encoder_layers: 1,
            embedding: 256,
            hidden: 256,
            decoder_hidden: 256,
            attention: 256,
            output: 256,
            scorer: Scorer::Additive,
            cosine_temperature: 10.0,
            learn_temperature: true,
            bridge: Bridge::BackwardFirst,
            deep_output: DeepOutput::Maxout,
            dropout: 0.2,
            tied_embeddings: false,
            orthogonal_recurrent: true,
            embedding_init_std: 0.1,
            init: ParamInit::Glorot,
        }
    }
}

impl ModelConfig {
    /// Checks the combinations the modules cannot build, naming the offending keys.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("model.encoder_layers", self.encoder_layers),
            ("model.embedding", self.embedding),
            ("model.hidden", self.hidden),
            ("model.decoder_hidden", self.decoder_hidden),
            ("model.attention", self.attention),
            ("model.output", self.output),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{key} must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!(
                "model.dropout must be in [0, 1), got {}",
                self.dropout
            ));
        }
        if self.embedding_init_std.is_nan() || self.embedding_init_std <= 0.0 {
            return Err(format!(
                "model.embedding_init_std must be positive, got {}",
                self.embedding_init_std
            ));
        }
        if self.scorer == Scorer::Dot && self.decoder_hidden != 2 * self.hidden {
            return Err(format!(
                "model.scorer = \"dot\" needs model.decoder_hidden ({}) = 2 × model.hidden ({})",
                self.decoder_hidden,
                2 * self.hidden
            ));
        }
        if self.tied_embeddings && self.output != self.embedding {
            return Err(format!(
                "model.tied_embeddings needs model.output ({}) = model.embedding ({})",
                self.output, self.embedding
            ));
        }
        Ok(())
    }

    /// Builds the model for the given vocabulary sizes.
    pub fn init(&self, src_vocab: usize, tgt_vocab: usize, device: &Device) -> Seq2Seq {
        let encoder = EncoderConfig::new(src_vocab, self.embedding, self.hidden)
            .with_layers(self.encoder_layers)
            .with_cell(self.cell)
            .with_dropout(self.dropout)
            .with_orthogonal_recurrent(self.orthogonal_recurrent)
            .with_embedding_init_std(self.embedding_init_std)
            .with_params_init(self.init)
            .init(device);
        let decoder = DecoderConfig::new(
            tgt_vocab,
            self.embedding,
            self.decoder_hidden,
            2 * self.hidden,
            self.attention,
            self.output,
        )
        .with_cell(self.cell)
        .with_scorer(self.scorer)
        .with_cosine_temperature(self.learn_temperature.then_some(self.cosine_temperature))
        .with_bridge(self.bridge)
        .with_deep_output(self.deep_output)
        .with_dropout(self.dropout)
        .with_tied_embeddings(self.tied_embeddings)
        .with_orthogonal_recurrent(self.orthogonal_recurrent)
        .with_embedding_init_std(self.embedding_init_std)
        .with_params_init(self.init)
        .init(device);
        let mut model = Seq2Seq { encoder, decoder };
        if !self.learn_temperature {
            model.decoder.attention.fixed_temperature = self.cosine_temperature;
        }
        draw_initial_values(&model);
        model
    }
}

/// Draws every parameter's initial values now, in the module's order. burn draws a parameter
/// when it is first read, so otherwise the order of the first reads (which differs between
/// engines, and between the trainer's versions) would decide which random values each weight
/// gets: one seed now gives one initial model, whatever trains it.
fn draw_initial_values(model: &Seq2Seq) {
    struct Draw;
    impl burn::module::ModuleVisitor for Draw {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Draw);
}

/// RNNsearch: encoder, alignment model and decoder.
#[derive(Module, Debug)]
pub struct Seq2Seq {
    /// The bidirectional encoder.
    pub encoder: Encoder,
    /// The attentive decoder.
    pub decoder: Decoder,
}

/// The teacher-forced pass over a batch.
#[derive(Clone, Debug)]
pub struct TeacherForced {
    /// Scores of y_i given the reference prefix, `[batch, tgt_len, V]`.
    pub logits: Tensor<3>,
    /// Alignment weights α_ij, `[batch, tgt_len, src_len]`.
    pub attention: Tensor<3>,
}

impl Seq2Seq {
    /// Runs the encoder once for a batch (see [`Encoder::forward`]).
    pub fn encode(&self, source: Tensor<2, Int>, lengths: &[usize]) -> Encoded {
        self.encoder.forward(source, lengths)
    }

    /// The teacher-forced forward pass.
    ///
    /// # Parameters
    /// - `source`: `[batch, src_len]` padded ids, with `source_lengths`.
    /// - `target_in`: `[batch, tgt_len]`, `<s> y_1 .. y_{n}` padded.
    ///
    /// Everything that does not depend on s_{i-1} runs outside the time loop as one batched op:
    /// U_a h_j, the cell's input term from E y_{i-1}, and the deep output with the vocabulary
    /// projection for all positions.
    pub fn forward(
        &self,
        source: Tensor<2, Int>,
        source_lengths: &[usize],
        target_in: Tensor<2, Int>,
    ) -> TeacherForced {
        let encoded = self.encode(source, source_lengths);
        let decoder = &self.decoder;
        let projected = decoder.attention.project(&encoded);
        let weights = decoder.step_weights();
        let mut state = decoder.initial_state(&encoded);
        let [batch, tgt_len] = target_in.dims();
        let embedded = decoder.embed(target_in); // [batch, tgt_len, E]
        let embedding_terms = decoder.project_embeddings(embedded.clone()); // [batch, tgt_len, G·m]
        let g = embedding_terms.dims()[2];
        let mut states = Vec::with_capacity(tgt_len);
        let mut contexts = Vec::with_capacity(tgt_len);
        let mut alignments = Vec::with_capacity(tgt_len);
        for term in embedding_terms.split(1, 1) {
            let step =
                decoder.recurrent_step(term.reshape([batch, g]), state, &projected, &weights);
            state = step.state;
            states.push(state.hidden.clone());
            contexts.push(step.context);
            alignments.push(step.alignment_weights);
        }
        let states = Tensor::stack::<3>(states, 1);
        let contexts = Tensor::stack::<3>(contexts, 1);
        TeacherForced {
            logits: decoder.logits(states, contexts, embedded),
            attention: Tensor::stack::<3>(alignments, 1),
        }
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.num_params()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{search, SearchConfig};
    use burn::module::Param;
    use burn::tensor::{Distribution, TensorData};

    /// Every weight holds its values once `init` returns, so the order of later first reads
    /// (which burn's lazy parameters would draw in) cannot change them.
    #[test]
    fn init_draws_every_weight() {
        struct Lazy(usize);
        impl burn::module::ModuleVisitor for Lazy {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0 += usize::from(!param.is_initialized());
            }
        }
        for cell in [CellKind::Gru, CellKind::Lstm] {
            let config = small(cell, Scorer::Additive, Bridge::BackwardFirst);
            let model = config.init(9, 8, &Device::flex());
            let mut lazy = Lazy(0);
            model.visit(&mut lazy);
            assert_eq!(lazy.0, 0, "{cell:?}: weights left to draw on first read");
        }
    }

    fn small(cell: CellKind, scorer: Scorer, bridge: Bridge) -> ModelConfig {
        ModelConfig {
            cell,
            scorer,
            bridge,
            embedding: 6,
            hidden: 5,
            decoder_hidden: if scorer == Scorer::Dot { 10 } else { 7 },
            attention: 4,
            output: 3,
            dropout: 0.0,
            ..ModelConfig::default()
        }
    }

    fn ids(rows: &[&[i64]], device: &Device) -> Tensor<2, Int> {
        let width = rows[0].len();
        let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), width]), device)
    }

    fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// `fan-in` draws every weight and bias from U(±1/√fan_in) as PyTorch does (a cell's
    /// fan_in is its units d), so each tensor's extreme is inside its own bound and, for n
    /// draws, above 10^(−6/n) of it (failing that has probability 10⁻⁶); `glorot` leaves the
    /// biases at zero. The sizes keep every Xavier bound √(6/(fan_in + fan_out)) apart from
    /// the fan-in one.
    #[test]
    fn fan_in_init_bounds_each_parameter_by_its_fan_in() {
        let device = Device::flex();
        device.seed(7);
        let config = ModelConfig {
            init: ParamInit::FanIn,
            orthogonal_recurrent: false,
            embedding: 16,
            hidden: 24,
            decoder_hidden: 32,
            attention: 20,
            output: 10,
            ..ModelConfig::default()
        };
        let model = config.init(50, 60, &device);
        let extreme = |t: Tensor<1>| -> f32 { t.abs().max().into_scalar() };
        let flat = |t: Tensor<2>| -> Tensor<1> { t.flatten(0, 1) };
        let d = &model.decoder;
        let cases: Vec<(&str, Tensor<1>, usize)> = vec![
            (
                "encoder cell W",
                flat(model.encoder.layers[0].forward.input_weight.val()),
                24,
            ),
            (
                "encoder cell c",
                model.encoder.layers[0].backward.recurrent_bias.val(),
                24,
            ),
            ("decoder cell U", flat(d.cell.recurrent_weight.val()), 32),
            ("decoder cell b", d.cell.input_bias.val(), 32),
            ("bridge", flat(d.bridge.as_ref().unwrap().val()), 24),
            ("bridge bias", d.bridge_bias.as_ref().unwrap().val(), 24),
            ("deep output", flat(d.deep_output.val()), 32 + 48 + 16),
            ("deep output bias", d.deep_output_bias.val(), 32 + 48 + 16),
            ("W_o", flat(d.output_projection.as_ref().unwrap().val()), 10),
            ("output bias", d.output_bias.val(), 10),
            (
                "W_a",
                flat(d.attention.query_layer.as_ref().unwrap().val()),
                32,
            ),
            (
                "U_a",
                flat(d.attention.key_layer.as_ref().unwrap().val()),
                48,
            ),
            (
                "v_a",
                flat(d.attention.energy_layer.as_ref().unwrap().val()),
                20,
            ),
        ];
        for (name, values, fan_in) in cases {
            let bound = 1.0 / (fan_in as f32).sqrt();
            let floor = 1e-6f32.powf(1.0 / values.dims()[0] as f32) * bound;
            let m = extreme(values);
            assert!(
                m <= bound && m > floor,
                "{name}: max |x| {m}, in ({floor}, {bound}]?"
            );
        }
        let glorot = ModelConfig {
            init: ParamInit::Glorot,
            ..config
        }
        .init(50, 60, &device);
        assert_eq!(extreme(glorot.decoder.output_bias.val()), 0.0);
        assert_eq!(extreme(glorot.decoder.cell.recurrent_bias.val()), 0.0);
    }

    #[test]
    fn shapes_for_every_cell_scorer_and_bridge() {
        let device = Device::flex();
        for cell in [CellKind::Gru, CellKind::Lstm] {
            for scorer in [
                Scorer::Additive,
                Scorer::Dot,
                Scorer::General,
                Scorer::Cosine,
            ] {
                for bridge in [Bridge::BackwardFirst, Bridge::Mean, Bridge::Zero] {
                    let model = small(cell, scorer, bridge).init(11, 13, &device);
                    let src = ids(&[&[4, 5, 6, 3], &[7, 3, 0, 0]], &device);
                    let tgt = ids(&[&[2, 4, 5], &[2, 6, 0]], &device);
                    let out = model.forward(src, &[4, 2], tgt);
                    assert_eq!(out.logits.dims(), [2, 3, 13]);
                    assert_eq!(out.attention.dims(), [2, 3, 4]);
                    let padded: Vec<f32> = out
                        .attention
                        .narrow(0, 1, 1)
                        .narrow(2, 2, 2)
                        .into_data()
                        .try_to_vec::<f32>()
                        .unwrap();
                    assert!(
                        padded.iter().all(|&a| a == 0.0),
                        "{cell:?} {scorer:?} {bridge:?}"
                    );
                }
            }
        }
    }

    /// A sentence's logits do not depend on the padding of the batch it is in.
    #[test]
    fn decoder_outputs_are_padding_invariant() {
        let device = Device::flex();
        device.seed(7);
        for cell in [CellKind::Gru, CellKind::Lstm] {
            let model = small(cell, Scorer::Additive, Bridge::Mean)
                .with_layers(2)
                .init(11, 13, &device);
            let batch = model.forward(
                ids(&[&[4, 5, 6, 7, 3], &[8, 9, 3, 0, 0]], &device),
                &[5, 3],
                ids(&[&[2, 4, 5, 6], &[2, 7, 8, 0]], &device),
            );
            let alone = model.forward(
                ids(&[&[8, 9, 3]], &device),
                &[3],
                ids(&[&[2, 7, 8]], &device),
            );
            let row = batch.logits.narrow(0, 1, 1).narrow(1, 0, 3);
            assert!(max_diff(row, alone.logits) < 1e-5);
        }
    }

    /// Decoding step by step with the reference as y_{i-1} gives the teacher-forced logits.
    #[test]
    fn incremental_step_reproduces_teacher_forcing() {
        let device = Device::flex();
        device.seed(5);
        for scorer in [Scorer::Additive, Scorer::Cosine] {
            let model = small(CellKind::Gru, scorer, Bridge::BackwardFirst).init(11, 13, &device);
            let src = ids(&[&[4, 5, 6, 3], &[7, 3, 0, 0]], &device);
            let tgt = ids(&[&[2, 4, 5], &[2, 6, 9]], &device);
            let forced = model.forward(src.clone(), &[4, 2], tgt.clone());
            let encoded = model.encode(src, &[4, 2]);
            let projected = model.decoder.attention.project(&encoded);
            let weights = model.decoder.step_weights();
            let mut state = model.decoder.initial_state(&encoded);
            for i in 0..3 {
                let prev = tgt.clone().narrow(1, i, 1).reshape([2]);
                let step = model.decoder.step(prev, state, &projected, &weights);
                state = step.state;
                let expected = forced.logits.clone().narrow(1, i, 1).reshape([2, 13]);
                assert!(max_diff(step.logits.unwrap(), expected) < 1e-5);
            }
        }
    }

    /// E=6, n=5, m=7, a=4, l=3, |V_x|=11, |V_y|=13, GRU, additive, backward-first, maxout:
    /// encoder: E_x 66; per direction W 6·15 + b 15 + U 5·15 + c 15 = 195, ×2 = 390;
    /// decoder: E_y 78; cell W (6+10)·21 + b 21 + U 7·21 + c 21 = 525; W_a 28, U_a 40, v_a 4;
    /// bridge 5·7 + 7 = 42; deep output (7+10+6)·6 + 6 = 144; W_o 3·13 + 13 = 52.
    /// Total 66 + 390 + 78 + 525 + 72 + 42 + 144 + 52 = 1369.
    #[test]
    fn parameter_count_matches_hand_count() {
        let model = small(CellKind::Gru, Scorer::Additive, Bridge::BackwardFirst).init(
            11,
            13,
            &Device::flex(),
        );
        assert_eq!(model.parameter_count(), 1369);
    }

    /// The loss gradient reaches W_a, U_a, v_a, the encoder and both embeddings, and agrees
    /// with a central finite difference.
    #[test]
    fn gradients_reach_the_alignment_model_and_match_finite_differences() {
        let device = Device::flex().autodiff();
        device.seed(11);
        let model =
            small(CellKind::Gru, Scorer::Additive, Bridge::BackwardFirst).init(11, 13, &device);
        let src = ids(&[&[4, 5, 6, 3], &[7, 3, 0, 0]], &device);
        let tgt = ids(&[&[2, 4, 5], &[2, 6, 9]], &device);
        let probe = Tensor::<3>::random([2, 3, 13], Distribution::Default, &device).detach();
        let loss_of = |m: &Seq2Seq| -> Tensor<1> {
            (m.forward(src.clone(), &[4, 2], tgt.clone()).logits * probe.clone()).sum()
        };
        let grads = loss_of(&model).backward();
        let attention = &model.decoder.attention;
        let params: Vec<(&str, Tensor<2>)> = vec![
            ("W_a", attention.query_layer.as_ref().unwrap().val()),
            ("U_a", attention.key_layer.as_ref().unwrap().val()),
            ("v_a", attention.energy_layer.as_ref().unwrap().val()),
            (
                "encoder U",
                model.encoder.layers[0].backward.recurrent_weight.val(),
            ),
            ("source E", model.encoder.embedding.weight.val()),
            ("target E", model.decoder.embedding.weight.val()),
        ];
        for (name, p) in &params {
            let g = p
                .grad(&grads)
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            assert!(
                g.abs().max().into_scalar::<f32>() > 0.0,
                "zero gradient for {name}"
            );
        }
        // Central difference on one element of W_a (row 1, column 2).
        let analytic: f32 = params[0]
            .1
            .grad(&grads)
            .unwrap()
            .narrow(0, 1, 1)
            .narrow(1, 2, 1)
            .into_scalar();
        let eps = 1e-2f32;
        let shifted = |delta: f32| -> f32 {
            let mut m = model.clone();
            let w = m
                .decoder
                .attention
                .query_layer
                .as_ref()
                .unwrap()
                .val()
                .inner();
            let mut bump = vec![0.0f32; 7 * 4];
            bump[4 + 2] = delta;
            let w = w + Tensor::from_data(TensorData::new(bump, [7, 4]), &Device::flex());
            m.decoder.attention.query_layer = Some(Param::from_tensor(w));
            loss_of(&m).into_scalar()
        };
        let numeric = (shifted(eps) - shifted(-eps)) / (2.0 * eps);
        assert!(
            (numeric - analytic).abs() < 2e-3 + 0.02 * analytic.abs(),
            "W_a: numeric {numeric} vs analytic {analytic}"
        );
    }

    #[test]
    fn search_stops_at_the_length_limit_and_returns_one_hypothesis_per_sentence() {
        let device = Device::flex();
        device.seed(2);
        let model =
            small(CellKind::Gru, Scorer::Additive, Bridge::BackwardFirst).init(11, 13, &device);
        let src = ids(&[&[4, 5, 6, 3], &[7, 3, 0, 0]], &device);
        for beam in [1, 3] {
            let config = SearchConfig {
                beam,
                max_len_ratio: 1.0,
                alignments: true,
                ..SearchConfig::greedy(2, 3)
            };
            let out = search(&model, src.clone(), &[4, 2], &config);
            assert_eq!(out.len(), 2);
            for (hyps, len) in out.iter().zip([4usize, 2]) {
                assert!(hyps[0].tokens.len() <= len + 5);
                assert!(hyps[0].alignment.iter().all(|row| row.len() == len));
            }
        }
    }

    impl ModelConfig {
        fn with_layers(mut self, layers: usize) -> Self {
            self.encoder_layers = layers;
            self
        }
    }
}

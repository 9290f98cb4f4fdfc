//! One training step: forward, loss and backward for a padded batch.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::decoder;
use crate::encoder::{layer_backward, layer_forward, LayerCache};
use crate::linalg::{add_bias, add_column_sums, matmul, tanh, Layout};
use crate::output::{self, LossSums};
use crate::packed::{affine, PackedColumns};
use crate::{Dims, Grads, GruGrads, Weights};

/// A padded batch of token ids, rows padded at the end.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// `[batch, src_len]`.
    pub source: &'a [usize],
    pub source_lengths: &'a [usize],
    /// [BOS, y_1 .. y_{T-1}], `[batch, tgt_len]`.
    pub target_in: &'a [usize],
    /// [y_1 .. y_T, EOS], `[batch, tgt_len]`.
    pub target_out: &'a [usize],
    /// True at padding, `[batch, tgt_len]`.
    pub target_padding: &'a [bool],
    pub tgt_len: usize,
}

/// How a step is run.
#[derive(Clone, Copy, Debug)]
pub struct StepOptions {
    /// Dropout probability on embeddings, between encoder layers and on t_i.
    pub dropout: f32,
    pub label_smoothing: f32,
    /// The loss is divided by this (the batch's real target tokens).
    pub tokens: usize,
    /// Seeds the dropout masks.
    pub seed: u64,
}

/// What a step produces.
#[derive(Clone, Debug)]
pub struct StepResult {
    /// The smoothed loss per target token.
    pub loss: f64,
    /// Σ −log p(y_i) over real target tokens.
    pub nll_sum: f64,
    pub grads: Grads,
}

impl Grads {
    /// Zero gradients for a model of size `dims`.
    pub fn zeros(dims: &Dims) -> Self {
        let (e, n, m, a, l) = (
            dims.embedding,
            dims.hidden,
            dims.decoder_hidden,
            dims.attention,
            dims.output,
        );
        Self {
            src_embedding: vec![0.0; dims.src_vocab * e],
            encoder: (0..dims.layers)
                .map(|layer| {
                    let d_in = if layer == 0 { e } else { 2 * n };
                    [GruGrads::zeros(d_in, n), GruGrads::zeros(d_in, n)]
                })
                .collect(),
            bridge_w: vec![0.0; n * m],
            bridge_b: vec![0.0; m],
            key: vec![0.0; 2 * n * a],
            query: vec![0.0; m * a],
            energy: vec![0.0; a],
            tgt_embedding: vec![0.0; dims.tgt_vocab * e],
            decoder: GruGrads::zeros(e + 2 * n, m),
            deep_w: vec![0.0; (m + 2 * n + e) * 2 * l],
            deep_b: vec![0.0; 2 * l],
            out_w: vec![0.0; l * dims.tgt_vocab],
            out_b: vec![0.0; dims.tgt_vocab],
        }
    }
}

/// Inverted dropout masks (0 or 1/(1 − p)), drawn in a fixed order from one seed.
pub(crate) struct Masks {
    rng: ChaCha8Rng,
    p: f32,
}

impl Masks {
    /// Masks of probability `p`, drawn from `seed`.
    pub(crate) fn new(p: f32, seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            p,
        }
    }

    pub(crate) fn next(&mut self, len: usize) -> Option<Vec<f32>> {
        if self.p <= 0.0 {
            return None;
        }
        let keep = 1.0 / (1.0 - self.p);
        Some(
            (0..len)
                .map(|_| {
                    if self.rng.random::<f32>() < self.p {
                        0.0
                    } else {
                        keep
                    }
                })
                .collect(),
        )
    }
}

fn apply(x: &mut [f32], mask: &Option<Vec<f32>>) {
    if let Some(mask) = mask {
        x.iter_mut().zip(mask).for_each(|(x, m)| *x *= m);
    }
}

/// The rows of an embedding table (`[V, width]`) for `tokens`, `[tokens, width]`.
pub(crate) fn embed(
    table: &[f32],
    tokens: impl ExactSizeIterator<Item = usize>,
    width: usize,
) -> Vec<f32> {
    let mut x = vec![0.0; tokens.len() * width];
    for (row, token) in x.chunks_exact_mut(width).zip(tokens) {
        row.copy_from_slice(&table[token * width..(token + 1) * width]);
    }
    x
}

/// W_y E y_{i-1} + b, the embedding side of the decoder GRU's input, `[rows, 3m]`.
/// (`packed`: those rows of W packed for few rows, under the search.)
pub(crate) fn input_terms(
    weights: &Weights,
    embedded: &[f32],
    e: usize,
    m: usize,
    packed: Option<&PackedColumns>,
) -> Vec<f32> {
    let rows = embedded.len() / e;
    let mut terms = vec![0.0; rows * 3 * m];
    let (w, bias) = (&weights.decoder.w[..e * 3 * m], Some(weights.decoder.b));
    affine(rows, e, 3 * m, embedded, w, packed, bias, &mut terms, false);
    terms
}

/// [s_i; c_i; E y_{i-1}] per row, the deep output's input, `[rows, m + 2n + E]`.
pub(crate) fn output_features(
    states: &[f32],
    contexts: &[f32],
    embedded: &[f32],
    dims: &Dims,
) -> Vec<f32> {
    let (m, h2, e) = (dims.decoder_hidden, 2 * dims.hidden, dims.embedding);
    let width = m + h2 + e;
    let mut features = vec![0.0; states.len() / m * width];
    for (r, row) in features.chunks_exact_mut(width).enumerate() {
        row[..m].copy_from_slice(&states[r * m..(r + 1) * m]);
        row[m..m + h2].copy_from_slice(&contexts[r * h2..(r + 1) * h2]);
        row[m + h2..].copy_from_slice(&embedded[r * e..(r + 1) * e]);
    }
    features
}

/// What the encoder's forward pass leaves for the decoder and for the backward pass.
pub(crate) struct EncoderForward {
    /// h_j, `[batch, src_len, 2n]`, zero at padding.
    pub annotations: Vec<f32>,
    /// U_a h_j, `[batch, src_len, a]`.
    pub keys: Vec<f32>,
    /// ←h_1 per sentence, `[batch, n]`.
    backward_first: Vec<f32>,
    /// s_0 = tanh(W_s ←h_1 + b_s), `[batch, m]`.
    pub initial_state: Vec<f32>,
    source_mask: Option<Vec<f32>>,
    layer_caches: Vec<LayerCache>,
    layer_masks: Vec<Option<Vec<f32>>>,
}

/// Embeddings, the bidirectional layers, the keys and the bridge for `source` (`[batch,
/// src_len]`, padded at the end).
pub(crate) fn encode(
    weights: &Weights,
    dims: &Dims,
    source: &[usize],
    lengths: &[usize],
    masks: &mut Masks,
) -> EncoderForward {
    let b_size = lengths.len();
    let src_len = source.len() / b_size.max(1);
    let (e, n, m, a) = (
        dims.embedding,
        dims.hidden,
        dims.decoder_hidden,
        dims.attention,
    );
    let h2 = 2 * n;
    let mut x = embed(weights.src_embedding, source.iter().copied(), e);
    let source_mask = masks.next(x.len());
    apply(&mut x, &source_mask);
    let mut layer_caches = Vec::with_capacity(dims.layers);
    let mut layer_masks = Vec::with_capacity(dims.layers);
    let mut d_in = e;
    for (layer, w) in weights.encoder.iter().enumerate() {
        if layer > 0 {
            let mask = masks.next(x.len());
            apply(&mut x, &mask);
            layer_masks.push(mask);
        }
        let (out, cache) = layer_forward(w, x, d_in, lengths, src_len, n);
        layer_caches.push(cache);
        x = out;
        d_in = h2;
    }
    let mut annotations = x;
    let keep = |b: usize, j: usize| j < lengths[b];
    for (r, row) in annotations.chunks_exact_mut(h2).enumerate() {
        if !keep(r / src_len, r % src_len) {
            row.fill(0.0);
        }
    }
    let mut keys = vec![0.0; b_size * src_len * a];
    matmul(
        Layout::NN,
        b_size * src_len,
        h2,
        a,
        &annotations,
        weights.key,
        &mut keys,
        false,
    );

    // s_0 = tanh(W_s ←h_1 + b_s)
    let mut backward_first = vec![0.0; b_size * n];
    for b in 0..b_size {
        let from = b * src_len * h2 + n;
        backward_first[b * n..(b + 1) * n].copy_from_slice(&annotations[from..from + n]);
    }
    let mut initial_state = vec![0.0; b_size * m];
    matmul(
        Layout::NN,
        b_size,
        n,
        m,
        &backward_first,
        weights.bridge_w,
        &mut initial_state,
        false,
    );
    add_bias(&mut initial_state, weights.bridge_b);
    initial_state.iter_mut().for_each(|v| *v = tanh(*v));

    EncoderForward {
        annotations,
        keys,
        backward_first,
        initial_state,
        source_mask,
        layer_caches,
        layer_masks,
    }
}

/// Forward, label-smoothed loss and backward of one batch: the loss and every weight's gradient.
pub fn train_step(
    weights: &Weights,
    dims: &Dims,
    batch: &Batch,
    options: &StepOptions,
) -> StepResult {
    let lengths = batch.source_lengths;
    let b_size = lengths.len();
    let src_len = batch.source.len() / b_size.max(1);
    let tgt_len = batch.tgt_len;
    let (e, n, m, a, l) = (
        dims.embedding,
        dims.hidden,
        dims.decoder_hidden,
        dims.attention,
        dims.output,
    );
    let h2 = 2 * n;
    let mut masks = Masks::new(options.dropout, options.seed);

    let EncoderForward {
        annotations,
        keys,
        backward_first,
        initial_state,
        source_mask,
        layer_caches,
        layer_masks,
    } = encode(weights, dims, batch.source, lengths, &mut masks);
    let keep = |b: usize, j: usize| j < lengths[b];

    // Decoder inputs E y_{i-1}, time-major, and their part of the GRU's input side.
    let rows = tgt_len * b_size;
    let token_in = |r: usize| batch.target_in[(r % b_size) * tgt_len + r / b_size];
    let mut embedded = embed(weights.tgt_embedding, (0..rows).map(token_in), e);
    let target_mask = masks.next(embedded.len());
    apply(&mut embedded, &target_mask);
    let input_terms = input_terms(weights, &embedded, e, m, None);

    let dec = decoder::forward(
        weights,
        dims,
        &annotations,
        &keys,
        lengths,
        src_len,
        &initial_state,
        &input_terms,
        tgt_len,
    );

    // Output layer over [s_i; c_i; E y_{i-1}] for every position.
    let d_features = m + h2 + e;
    let features = output_features(&dec.states[b_size * m..], &dec.contexts, &embedded, dims);
    let output_mask = masks.next(rows * l);
    let (mut logits, out_cache) = output::forward(
        features,
        d_features,
        weights.deep_w,
        weights.deep_b,
        weights.out_w,
        weights.out_b,
        l,
        output_mask,
    );
    let at = |r: usize| (r % b_size) * tgt_len + r / b_size;
    let targets: Vec<usize> = (0..rows).map(|r| batch.target_out[at(r)]).collect();
    let scale = 1.0 / options.tokens.max(1) as f32;
    let row_weights: Vec<f32> = (0..rows)
        .map(|r| {
            if batch.target_padding[at(r)] {
                0.0
            } else {
                scale
            }
        })
        .collect();
    let LossSums { objective, nll } =
        output::loss_and_gradient(&mut logits, &targets, &row_weights, options.label_smoothing);

    // Backward.
    let mut grads = Grads::zeros(dims);
    let d_features_all = output::backward(
        &out_cache,
        &logits,
        weights.deep_w,
        weights.out_w,
        l,
        &mut grads.deep_w,
        &mut grads.deep_b,
        &mut grads.out_w,
        &mut grads.out_b,
    );
    drop(logits);
    let mut d_states = vec![0.0; rows * m];
    let mut d_contexts = vec![0.0; rows * h2];
    let mut d_embedded = vec![0.0; rows * e];
    for (r, row) in d_features_all.chunks_exact(d_features).enumerate() {
        d_states[r * m..(r + 1) * m].copy_from_slice(&row[..m]);
        d_contexts[r * h2..(r + 1) * h2].copy_from_slice(&row[m..m + h2]);
        d_embedded[r * e..(r + 1) * e].copy_from_slice(&row[m + h2..]);
    }
    let mut d_annotations = vec![0.0; b_size * src_len * h2];
    let mut d_keys = vec![0.0; b_size * src_len * a];
    let dg = decoder::backward(
        weights,
        dims,
        &dec,
        &annotations,
        lengths,
        src_len,
        &d_states,
        &d_contexts,
        &mut d_annotations,
        &mut d_keys,
        &mut grads.decoder,
        &mut grads.query,
        &mut grads.energy,
    );

    // The embedding side of the decoder's input: W_y E y_{i-1} + b.
    matmul(
        Layout::TN,
        e,
        rows,
        3 * m,
        &embedded,
        &dg.input_terms,
        &mut grads.decoder.w[..e * 3 * m],
        true,
    );
    add_column_sums(&dg.input_terms, &mut grads.decoder.b);
    matmul(
        Layout::NT,
        rows,
        3 * m,
        e,
        &dg.input_terms,
        &weights.decoder.w[..e * 3 * m],
        &mut d_embedded,
        true,
    );
    apply(&mut d_embedded, &target_mask);
    for (r, row) in d_embedded.chunks_exact(e).enumerate() {
        let token = token_in(r);
        grads.tgt_embedding[token * e..(token + 1) * e]
            .iter_mut()
            .zip(row)
            .for_each(|(g, v)| *g += v);
    }

    // Bridge.
    let mut d_pre: Vec<f32> = dg
        .initial_state
        .iter()
        .zip(&initial_state)
        .map(|(d, s)| d * (1.0 - s * s))
        .collect();
    matmul(
        Layout::TN,
        n,
        b_size,
        m,
        &backward_first,
        &d_pre,
        &mut grads.bridge_w,
        true,
    );
    add_column_sums(&d_pre, &mut grads.bridge_b);
    let mut d_backward_first = vec![0.0; b_size * n];
    matmul(
        Layout::NT,
        b_size,
        m,
        n,
        &d_pre,
        weights.bridge_w,
        &mut d_backward_first,
        false,
    );
    d_pre.clear();
    for b in 0..b_size {
        let to = b * src_len * h2 + n;
        d_annotations[to..to + n]
            .iter_mut()
            .zip(&d_backward_first[b * n..(b + 1) * n])
            .for_each(|(d, v)| *d += v);
    }

    // Keys U_a h_j.
    let positions = b_size * src_len;
    matmul(
        Layout::TN,
        h2,
        positions,
        a,
        &annotations,
        &d_keys,
        &mut grads.key,
        true,
    );
    matmul(
        Layout::NT,
        positions,
        a,
        h2,
        &d_keys,
        weights.key,
        &mut d_annotations,
        true,
    );
    for (r, row) in d_annotations.chunks_exact_mut(h2).enumerate() {
        if !keep(r / src_len, r % src_len) {
            row.fill(0.0);
        }
    }

    // Encoder layers, last to first, then the source embeddings.
    let mut d_output = d_annotations;
    for layer in (0..dims.layers).rev() {
        let mut d_input = layer_backward(
            &weights.encoder[layer],
            &layer_caches[layer],
            &d_output,
            &mut grads.encoder[layer],
            lengths,
            src_len,
            n,
        );
        if layer > 0 {
            apply(&mut d_input, &layer_masks[layer - 1]);
        }
        d_output = d_input;
    }
    apply(&mut d_output, &source_mask);
    for (row, &token) in d_output.chunks_exact(e).zip(batch.source) {
        grads.src_embedding[token * e..(token + 1) * e]
            .iter_mut()
            .zip(row)
            .for_each(|(g, v)| *g += v);
    }

    StepResult {
        loss: objective,
        nll_sum: nll,
        grads,
    }
}

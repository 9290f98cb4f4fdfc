//! One training step: forward, loss and backward for a padded batch.
//!
//! [`train_step`] reads as the model: the forward pass layer by layer (source embeddings, the
//! encoder's layers, the keys U_a h_j, the bridge, target embeddings, the decoder's recurrence
//! with its attention, the deep output, the loss), then the backward pass through the same
//! layers in reverse order. Each layer is one forward and one backward function here or in its
//! own module (`encoder`, `decoder`, `attention`, `gru`, `output`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::attention::{normalize_rows, normalize_rows_backward};
use crate::attention::{Memory, Shape};
use crate::decoder::{self, DecoderCache, DecoderOutputGrads, DecoderWeightGrads};
use crate::encoder::{layer_backward, layer_forward, LayerCache};
use crate::linalg::{add_bias, add_column_sums, matmul, tanh, Layout};
use crate::output::{self, LossSums, OutputCache, OutputGrads};
use crate::packed::{affine, PackedColumns};
use crate::{Bridge, Dims, Grads, Scorer, Weights};

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

/// A [`Batch`] that owns its buffers.
#[derive(Clone, Debug, Default)]
pub struct OwnedBatch {
    pub source: Vec<usize>,
    pub source_lengths: Vec<usize>,
    pub target_in: Vec<usize>,
    pub target_out: Vec<usize>,
    pub target_padding: Vec<bool>,
    pub tgt_len: usize,
}

impl OwnedBatch {
    /// `batch`'s rows `range`, each padding cut to the longest row of the range.
    pub fn part(batch: &Batch, range: std::ops::Range<usize>) -> Self {
        let sentences = batch.source_lengths.len();
        let (src_width, tgt_width) = (batch.source.len() / sentences, batch.tgt_len);
        let source_lengths = batch.source_lengths[range.clone()].to_vec();
        let src_len = source_lengths.iter().copied().max().unwrap_or(0).max(1);
        // Target rows are padded at the end: a row's length is its count of real positions.
        let real = |b: usize| {
            let row = &batch.target_padding[b * tgt_width..(b + 1) * tgt_width];
            row.iter().filter(|&&pad| !pad).count()
        };
        let tgt_len = range.clone().map(real).max().unwrap_or(0).max(1);
        let rows = |x: &[usize], width: usize, keep: usize| -> Vec<usize> {
            range
                .clone()
                .flat_map(|b| x[b * width..b * width + keep].iter().copied())
                .collect()
        };
        Self {
            source: rows(batch.source, src_width, src_len),
            target_in: rows(batch.target_in, tgt_width, tgt_len),
            target_out: rows(batch.target_out, tgt_width, tgt_len),
            target_padding: range
                .clone()
                .flat_map(|b| batch.target_padding[b * tgt_width..b * tgt_width + tgt_len].iter())
                .copied()
                .collect(),
            source_lengths,
            tgt_len,
        }
    }

    pub fn borrow(&self) -> Batch<'_> {
        Batch {
            source: &self.source,
            source_lengths: &self.source_lengths,
            target_in: &self.target_in,
            target_out: &self.target_out,
            target_padding: &self.target_padding,
            tgt_len: self.tgt_len,
        }
    }
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

/// What a step produces besides its gradients.
#[derive(Clone, Copy, Debug)]
pub struct StepResult {
    /// The smoothed loss per target token.
    pub loss: f64,
    /// Σ −log p(y_i) over real target tokens.
    pub nll_sum: f64,
}

impl Grads<'_> {
    /// The deep output's and the projection's gradients.
    pub fn output(&mut self) -> OutputGrads<'_> {
        OutputGrads {
            deep_w: &mut *self.deep_w,
            deep_b: &mut *self.deep_b,
            out_w: &mut *self.out_w,
            out_b: &mut *self.out_b,
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

/// W_y E y_{i-1} + b, the embedding side of the decoder cell's input, `[rows, G·m]`.
/// (`packed`: those rows of W packed for few rows, under the search.)
pub(crate) fn input_terms(
    weights: &Weights,
    embedded: &[f32],
    e: usize,
    packed: Option<&PackedColumns>,
) -> Vec<f32> {
    let (rows, width) = (embedded.len() / e, weights.decoder.b.len());
    let mut terms = vec![0.0; rows * width];
    let (w, bias) = (&weights.decoder.w[..e * width], Some(weights.decoder.b));
    affine(rows, e, width, embedded, w, packed, bias, &mut terms, false);
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
    /// The keys k_j the energies compare against, `[batch, src_len, k]` ([`Keys`]).
    pub keys: Keys,
    /// s_0 and what the bridge's backward pass needs.
    pub bridge: BridgeForward,
    /// The dropout mask on the source embeddings.
    source_mask: Option<Vec<f32>>,
    layer_caches: Vec<LayerCache>,
    /// The dropout masks between layers (on the input of layer 1, 2, ...).
    layer_masks: Vec<Option<Vec<f32>>>,
}

impl EncoderForward {
    /// What the decoder attends over.
    pub(crate) fn memory<'a>(&'a self, dims: &Dims, lengths: &'a [usize]) -> Memory<'a> {
        let batch = lengths.len();
        Memory {
            shape: Shape {
                batch,
                src_len: self.annotations.len() / (batch * 2 * dims.hidden).max(1),
                d_annotation: 2 * dims.hidden,
                d_attention: dims.key_width(),
            },
            annotations: &self.annotations,
            keys: &self.keys.values,
            lengths,
        }
    }
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
    let mut x = embed(
        weights.src_embedding,
        source.iter().copied(),
        dims.embedding,
    );
    let source_mask = masks.next(x.len());
    apply(&mut x, &source_mask);
    let (annotations, layer_caches, layer_masks) =
        encoder_forward(weights, dims, x, lengths, masks);
    let keys = keys_forward(weights, dims, &annotations);
    let bridge = bridge_forward(weights, dims, &annotations, lengths);
    EncoderForward {
        annotations,
        keys,
        bridge,
        source_mask,
        layer_caches,
        layer_masks,
    }
}

/// The encoder's layers over the embedded source `x` (`[batch, src_len, E]`), with dropout
/// between layers: h_j (`[batch, src_len, 2n]`, zero at padding), each layer's cache and mask.
#[allow(clippy::type_complexity)]
fn encoder_forward(
    weights: &Weights,
    dims: &Dims,
    mut x: Vec<f32>,
    lengths: &[usize],
    masks: &mut Masks,
) -> (Vec<f32>, Vec<LayerCache>, Vec<Option<Vec<f32>>>) {
    let src_len = x.len() / (lengths.len() * dims.embedding).max(1);
    let (n, h2) = (dims.hidden, 2 * dims.hidden);
    let mut layer_caches = Vec::with_capacity(dims.layers);
    let mut layer_masks = Vec::with_capacity(dims.layers);
    let mut d_in = dims.embedding;
    for (layer, w) in weights.encoder.iter().enumerate() {
        if layer > 0 {
            let mask = masks.next(x.len());
            apply(&mut x, &mask);
            layer_masks.push(mask);
        }
        let (out, cache) = layer_forward(dims.cell, w, x, d_in, lengths, src_len, n);
        layer_caches.push(cache);
        x = out;
        d_in = h2;
    }
    zero_padding(&mut x, lengths, src_len, h2);
    (x, layer_caches, layer_masks)
}

/// Sets the rows of padding positions of `x` (`[batch, src_len, width]`) to zero.
fn zero_padding(x: &mut [f32], lengths: &[usize], src_len: usize, width: usize) {
    for (r, row) in x.chunks_exact_mut(width).enumerate() {
        if r % src_len >= lengths[r / src_len] {
            row.fill(0.0);
        }
    }
}

/// The keys k_j, `[batch, src_len, k]`, computed once per batch: U_a h_j (additive), h_j (dot),
/// W h_j (general), W h_j / max(|W h_j|, ε) (cosine, whose norms are kept for the backward
/// pass).
pub(crate) struct Keys {
    pub values: Vec<f32>,
    norms: Vec<f32>,
}

fn keys_forward(weights: &Weights, dims: &Dims, annotations: &[f32]) -> Keys {
    let (h2, k) = (2 * dims.hidden, dims.key_width());
    if dims.scorer == Scorer::Dot {
        return Keys {
            values: annotations.to_vec(),
            norms: Vec::new(),
        };
    }
    let positions = annotations.len() / h2;
    let mut values = vec![0.0; positions * k];
    matmul(
        Layout::NN,
        positions,
        h2,
        k,
        annotations,
        weights.key,
        &mut values,
        false,
    );
    let norms = match dims.scorer {
        Scorer::Cosine { .. } => normalize_rows(&mut values, k),
        _ => Vec::new(),
    };
    Keys { values, norms }
}

/// The bridge's input and output.
pub(crate) struct BridgeForward {
    /// What W_s reads per sentence: ←h_1 (`[batch, n]`) or mean_j h_j (`[batch, 2n]`);
    /// empty for the zero bridge.
    summary: Vec<f32>,
    /// s_0 = tanh(W_s summary + b_s), or 0, `[batch, m]`.
    pub initial_state: Vec<f32>,
}

/// s_0 = tanh(W_s ←h_1 + b_s), tanh(W_s mean_j h_j + b_s) over the real positions, or 0.
fn bridge_forward(
    weights: &Weights,
    dims: &Dims,
    annotations: &[f32],
    lengths: &[usize],
) -> BridgeForward {
    let (n, m, h2, batch) = (
        dims.hidden,
        dims.decoder_hidden,
        2 * dims.hidden,
        lengths.len(),
    );
    let src_len = annotations.len() / (batch * h2).max(1);
    let mut initial_state = vec![0.0; batch * m];
    let Some(d_in) = dims.bridge.inputs(n) else {
        return BridgeForward {
            summary: Vec::new(),
            initial_state,
        };
    };
    let mut summary = vec![0.0; batch * d_in];
    for (b, row) in summary.chunks_exact_mut(d_in).enumerate() {
        let sentence = &annotations[b * src_len * h2..(b + 1) * src_len * h2];
        match dims.bridge {
            Bridge::BackwardFirst => row.copy_from_slice(&sentence[n..h2]),
            _ => {
                for h in sentence.chunks_exact(h2).take(lengths[b]) {
                    row.iter_mut().zip(h).for_each(|(s, v)| *s += v);
                }
                let scale = 1.0 / lengths[b].max(1) as f32;
                row.iter_mut().for_each(|s| *s *= scale);
            }
        }
    }
    matmul(
        Layout::NN,
        batch,
        d_in,
        m,
        &summary,
        weights.bridge_w,
        &mut initial_state,
        false,
    );
    add_bias(&mut initial_state, weights.bridge_b);
    initial_state.iter_mut().for_each(|v| *v = tanh(*v));
    BridgeForward {
        summary,
        initial_state,
    }
}

/// The decoder's inputs E y_{i-1}, time-major `[tgt_len, batch, E]` after dropout, and their
/// part of the GRU's input, W_y E y_{i-1} + b (`[tgt_len, batch, 3m]`).
struct TargetForward {
    embedded: Vec<f32>,
    mask: Option<Vec<f32>>,
    input_terms: Vec<f32>,
}

/// The token fed to the decoder at time-major row r (position r / batch of sentence r % batch).
fn token_in(batch: &Batch, r: usize) -> usize {
    let b_size = batch.source_lengths.len();
    batch.target_in[(r % b_size) * batch.tgt_len + r / b_size]
}

fn target_forward(
    weights: &Weights,
    dims: &Dims,
    batch: &Batch,
    masks: &mut Masks,
) -> TargetForward {
    let rows = batch.tgt_len * batch.source_lengths.len();
    let e = dims.embedding;
    let tokens = (0..rows).map(|r| token_in(batch, r));
    let mut embedded = embed(weights.tgt_embedding, tokens, e);
    let mask = masks.next(embedded.len());
    apply(&mut embedded, &mask);
    let input_terms = input_terms(weights, &embedded, e, None);
    TargetForward {
        embedded,
        mask,
        input_terms,
    }
}

/// The label-smoothed loss over every real target position, with the logits replaced by
/// ∂L/∂logits. The loss is the mean over the batch's real target tokens (`options.tokens`).
fn loss_forward_backward(logits: &mut [f32], batch: &Batch, options: &StepOptions) -> LossSums {
    let b_size = batch.source_lengths.len();
    let rows = batch.tgt_len * b_size;
    let at = |r: usize| (r % b_size) * batch.tgt_len + r / b_size;
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
    output::loss_and_gradient(logits, &targets, &row_weights, options.label_smoothing)
}

/// What the forward pass of a batch leaves for the backward pass: every layer's cache, and the
/// logits already replaced by ∂L/∂logits.
struct Forward {
    enc: EncoderForward,
    target: TargetForward,
    dec: DecoderCache,
    logits: Vec<f32>,
    out_cache: OutputCache,
    sums: LossSums,
}

/// The forward pass of one batch, layer by layer, and its label-smoothed loss; the logits are
/// written into `logits`' allocation.
fn forward(
    weights: &Weights,
    dims: &Dims,
    batch: &Batch,
    options: &StepOptions,
    logits: Vec<f32>,
) -> Forward {
    let lengths = batch.source_lengths;
    let mut masks = Masks::new(options.dropout, options.seed);
    let enc = encode(weights, dims, batch.source, lengths, &mut masks);
    let target = target_forward(weights, dims, batch, &mut masks);
    let memory = enc.memory(dims, lengths);
    let initial_state = &enc.bridge.initial_state;
    let dec = decoder::forward(weights, dims, &memory, initial_state, &target.input_terms);
    let m = dims.decoder_hidden;
    let states = &dec.states[lengths.len() * m..];
    let features = output_features(states, &dec.contexts, &target.embedded, dims);
    let output_mask = masks.next(target.embedded.len() / dims.embedding * dims.output);
    let (mut logits, out_cache) = output::forward(&weights.output(), features, output_mask, logits);
    let sums = loss_forward_backward(&mut logits, batch, options);
    Forward {
        enc,
        target,
        dec,
        logits,
        out_cache,
        sums,
    }
}

/// The label-smoothed loss of one batch, forward only (validation).
pub fn loss(weights: &Weights, dims: &Dims, batch: &Batch, options: &StepOptions) -> StepResult {
    let Forward { sums, .. } = forward(weights, dims, batch, options, Vec::new());
    StepResult {
        loss: sums.objective,
        nll_sum: sums.nll,
    }
}

/// Forward, label-smoothed loss and backward of one batch: the loss, and every weight's
/// gradient added to `grads`. `scratch` lends the logits its allocation and gets it back.
pub fn train_step(
    weights: &Weights,
    dims: &Dims,
    batch: &Batch,
    options: &StepOptions,
    grads: &mut Grads,
    scratch: &mut Vec<f32>,
) -> StepResult {
    let lengths = batch.source_lengths;
    let Forward {
        enc,
        target,
        dec,
        logits,
        out_cache,
        sums: LossSums { objective, nll },
    } = forward(weights, dims, batch, options, std::mem::take(scratch));
    let memory = enc.memory(dims, lengths);

    // Backward, the same layers in reverse order.
    let d_features = output::backward(&weights.output(), &out_cache, &logits, grads.output());
    *scratch = logits;
    let (d_states, d_contexts, d_embedded) = split_features(&d_features, dims);
    let mut d_annotations = vec![0.0; enc.annotations.len()];
    let mut d_keys = vec![0.0; enc.keys.values.len()];
    let d_out = DecoderOutputGrads {
        d_states: &d_states,
        d_contexts: &d_contexts,
    };
    let decoder_grads = DecoderWeightGrads {
        d_annotations: &mut d_annotations,
        d_keys: &mut d_keys,
        gru: grads.decoder.reborrow(),
        query: &mut *grads.query,
        energy: &mut *grads.energy,
        log_temperature: &mut *grads.log_temperature,
    };
    let dg = decoder::backward(weights, dims, &dec, &memory, d_out, decoder_grads);
    target_backward(
        weights,
        dims,
        batch,
        &target,
        &dg.input_terms,
        d_embedded,
        grads,
    );
    bridge_backward(
        weights,
        dims,
        &enc.bridge,
        &dg.initial_state,
        lengths,
        &mut d_annotations,
        grads,
    );
    keys_backward(
        weights,
        dims,
        &enc.annotations,
        &enc.keys,
        &d_keys,
        &mut d_annotations,
        grads.key,
    );
    zero_padding(
        &mut d_annotations,
        lengths,
        memory.shape.src_len,
        2 * dims.hidden,
    );
    encoder_backward(weights, dims, &enc, d_annotations, batch, grads);

    StepResult {
        loss: objective,
        nll_sum: nll,
    }
}

/// ∂L/∂[s_i; c_i; E y_{i-1}] split into its three parts.
fn split_features(d_features: &[f32], dims: &Dims) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (m, h2, e) = (dims.decoder_hidden, 2 * dims.hidden, dims.embedding);
    let width = m + h2 + e;
    let rows = d_features.len() / width;
    let mut d_states = vec![0.0; rows * m];
    let mut d_contexts = vec![0.0; rows * h2];
    let mut d_embedded = vec![0.0; rows * e];
    for (r, row) in d_features.chunks_exact(width).enumerate() {
        d_states[r * m..(r + 1) * m].copy_from_slice(&row[..m]);
        d_contexts[r * h2..(r + 1) * h2].copy_from_slice(&row[m..m + h2]);
        d_embedded[r * e..(r + 1) * e].copy_from_slice(&row[m + h2..]);
    }
    (d_states, d_contexts, d_embedded)
}

/// The embedding side of the decoder's input, W_y E y_{i-1} + b, and the target embeddings:
/// `d_input_terms` is ∂L/∂(W_y E y + b) from the recurrence, `d_embedded` what the deep output
/// sent back to E y_{i-1}.
fn target_backward(
    weights: &Weights,
    dims: &Dims,
    batch: &Batch,
    target: &TargetForward,
    d_input_terms: &[f32],
    mut d_embedded: Vec<f32>,
    grads: &mut Grads,
) {
    let (e, width) = (dims.embedding, dims.gates() * dims.decoder_hidden);
    let rows = target.embedded.len() / e;
    matmul(
        Layout::TN,
        e,
        rows,
        width,
        &target.embedded,
        d_input_terms,
        &mut grads.decoder.w[..e * width],
        true,
    );
    add_column_sums(d_input_terms, grads.decoder.b);
    matmul(
        Layout::NT,
        rows,
        width,
        e,
        d_input_terms,
        &weights.decoder.w[..e * width],
        &mut d_embedded,
        true,
    );
    apply(&mut d_embedded, &target.mask);
    for (r, row) in d_embedded.chunks_exact(e).enumerate() {
        let token = token_in(batch, r);
        grads.tgt_embedding[token * e..(token + 1) * e]
            .iter_mut()
            .zip(row)
            .for_each(|(g, v)| *g += v);
    }
}

/// Back through the bridge, given ∂L/∂s_0; adds ∂L/∂h_j to `d_annotations`.
fn bridge_backward(
    weights: &Weights,
    dims: &Dims,
    bridge: &BridgeForward,
    d_initial_state: &[f32],
    lengths: &[usize],
    d_annotations: &mut [f32],
    grads: &mut Grads,
) {
    let (n, m, h2, batch) = (
        dims.hidden,
        dims.decoder_hidden,
        2 * dims.hidden,
        lengths.len(),
    );
    let Some(d_in) = dims.bridge.inputs(n) else {
        return;
    };
    let src_len = d_annotations.len() / (batch * h2).max(1);
    let d_pre: Vec<f32> = d_initial_state
        .iter()
        .zip(&bridge.initial_state)
        .map(|(d, s)| d * (1.0 - s * s))
        .collect();
    matmul(
        Layout::TN,
        d_in,
        batch,
        m,
        &bridge.summary,
        &d_pre,
        grads.bridge_w,
        true,
    );
    add_column_sums(&d_pre, grads.bridge_b);
    let mut d_summary = vec![0.0; batch * d_in];
    matmul(
        Layout::NT,
        batch,
        m,
        d_in,
        &d_pre,
        weights.bridge_w,
        &mut d_summary,
        false,
    );
    for (b, d) in d_summary.chunks_exact(d_in).enumerate() {
        let sentence = &mut d_annotations[b * src_len * h2..(b + 1) * src_len * h2];
        let add = |to: &mut [f32], scale: f32| {
            to.iter_mut().zip(d).for_each(|(t, v)| *t += scale * v);
        };
        match dims.bridge {
            Bridge::BackwardFirst => add(&mut sentence[n..h2], 1.0),
            _ => {
                let scale = 1.0 / lengths[b].max(1) as f32;
                for h in sentence.chunks_exact_mut(h2).take(lengths[b]) {
                    add(h, scale);
                }
            }
        }
    }
}

/// Back through the keys: accumulates the key weights' gradient and adds ∂L/∂h_j to
/// `d_annotations`.
fn keys_backward(
    weights: &Weights,
    dims: &Dims,
    annotations: &[f32],
    keys: &Keys,
    d_keys: &[f32],
    d_annotations: &mut [f32],
    d_key_weights: &mut [f32],
) {
    let (h2, k) = (2 * dims.hidden, dims.key_width());
    let d_keys = match dims.scorer {
        Scorer::Dot => {
            d_annotations
                .iter_mut()
                .zip(d_keys)
                .for_each(|(d, g)| *d += g);
            return;
        }
        Scorer::Cosine { .. } => &normalize_rows_backward(&keys.values, &keys.norms, d_keys, k),
        _ => d_keys,
    };
    let positions = annotations.len() / h2;
    matmul(
        Layout::TN,
        h2,
        positions,
        k,
        annotations,
        d_keys,
        d_key_weights,
        true,
    );
    matmul(
        Layout::NT,
        positions,
        k,
        h2,
        d_keys,
        weights.key,
        d_annotations,
        true,
    );
}

/// Back through the encoder's layers, last to first, then the source embeddings.
fn encoder_backward(
    weights: &Weights,
    dims: &Dims,
    enc: &EncoderForward,
    d_annotations: Vec<f32>,
    batch: &Batch,
    grads: &mut Grads,
) {
    let lengths = batch.source_lengths;
    let src_len = batch.source.len() / lengths.len().max(1);
    let e = dims.embedding;
    let mut d_output = d_annotations;
    for layer in (0..dims.layers).rev() {
        let mut d_input = layer_backward(
            &weights.encoder[layer],
            &enc.layer_caches[layer],
            &d_output,
            &mut grads.encoder[layer],
            lengths,
            src_len,
            dims.hidden,
        );
        if layer > 0 {
            apply(&mut d_input, &enc.layer_masks[layer - 1]);
        }
        d_output = d_input;
    }
    apply(&mut d_output, &enc.source_mask);
    for (row, &token) in d_output.chunks_exact(e).zip(batch.source) {
        grads.src_embedding[token * e..(token + 1) * e]
            .iter_mut()
            .zip(row)
            .for_each(|(g, v)| *g += v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{check, small_dims, uniform, weighted_sum, OwnedWeights};
    use crate::Layout;

    /// Checks weight `index` (its name in the layout) of `owned`, values `range`, against
    /// `analytic` by finite differences of `loss`.
    fn check_weight(
        name: &str,
        owned: &mut OwnedWeights,
        index: &str,
        range: std::ops::Range<usize>,
        analytic: &[f32],
        loss: impl Fn(&Weights) -> f64,
    ) {
        let mut part = owned.values_mut(index)[range.clone()].to_vec();
        check(name, &mut part, analytic, 24, |v| {
            owned.values_mut(index)[range.clone()].copy_from_slice(v);
            loss(&owned.weights())
        });
        owned.values_mut(index)[range].copy_from_slice(&part);
    }

    /// Each bridge (s_0 = tanh(W_s ←h_1 + b_s), tanh(W_s mean_j h_j + b_s), 0) and the keys
    /// U_a h_j, with L = Σ r ⊙ s_0 + Σ r' ⊙ keys: ∂L/∂h_j, W_s, b_s and U_a, over a batch
    /// with a short sentence.
    #[test]
    fn bridge_and_keys_backward_match_finite_differences() {
        for (bridge_kind, scorer) in [
            (Bridge::BackwardFirst, Scorer::Additive),
            (Bridge::Mean, Scorer::General),
            (Bridge::Zero, Scorer::Cosine { learned: true }),
            (Bridge::BackwardFirst, Scorer::Dot),
        ] {
            let name = |what: &str| format!("{bridge_kind:?} bridge, {scorer:?} keys: {what}");
            let dims = Dims {
                bridge: bridge_kind,
                scorer,
                ..small_dims(1)
            };
            let (lengths, src_len, h2) = ([3, 2], 3, 8);
            let mut owned = OwnedWeights::random(dims, 3);
            let mut annotations = uniform(lengths.len() * src_len * h2, 1.0, 1);
            // padding positions hold zeros, as the encoder leaves them
            annotations[(2 * src_len - 1) * h2..].fill(0.0);
            let r_state = uniform(lengths.len() * dims.decoder_hidden, 1.0, 2);
            let mut r_keys = uniform(lengths.len() * src_len * dims.key_width(), 1.0, 3);
            // attention sends no gradient to the keys of padding
            r_keys[(2 * src_len - 1) * dims.key_width()..].fill(0.0);
            let loss = |w: &Weights, h: &[f32]| {
                let bridge = bridge_forward(w, &dims, h, &lengths);
                weighted_sum(&r_state, &bridge.initial_state)
                    + weighted_sum(&r_keys, &keys_forward(w, &dims, h).values)
            };
            let layout = Layout::new(dims, false);
            let mut flat = vec![0.0; layout.len()];
            let mut grads = layout.grads(&mut flat);
            let mut d_annotations = vec![0.0; annotations.len()];
            let w = owned.weights();
            let bridge = bridge_forward(&w, &dims, &annotations, &lengths);
            bridge_backward(
                &w,
                &dims,
                &bridge,
                &r_state,
                &lengths,
                &mut d_annotations,
                &mut grads,
            );
            let keys = keys_forward(&w, &dims, &annotations);
            keys_backward(
                &w,
                &dims,
                &annotations,
                &keys,
                &r_keys,
                &mut d_annotations,
                grads.key,
            );
            let h0 = annotations.clone();
            check(
                &name("annotations"),
                &mut annotations,
                &d_annotations,
                24,
                |h| loss(&w, h),
            );
            drop(w);
            let l = |w: &Weights| loss(w, &h0);
            let w_s = 0..dims.bridge_inputs() * dims.decoder_hidden;
            if !w_s.is_empty() {
                check_weight(&name("W_s"), &mut owned, "bridge_w", w_s, grads.bridge_w, l);
                check_weight(
                    &name("b_s"),
                    &mut owned,
                    "bridge_b",
                    0..5,
                    grads.bridge_b,
                    l,
                );
            }
            if dims.key_weights() > 0 {
                let key = 0..h2 * dims.key_width();
                check_weight(&name("key weights"), &mut owned, "key", key, grads.key, l);
            }
        }
    }

    /// The target embeddings and the embedding rows of the decoder's W, with
    /// L = Σ r ⊙ (W_y E y_{i-1} + b).
    #[test]
    fn target_backward_matches_finite_differences() {
        let dims = small_dims(1);
        let (e, m) = (dims.embedding, dims.decoder_hidden);
        let mut owned = OwnedWeights::random(dims, 5);
        let (source, source_lengths) = ([1, 2, 3, 4, 0, 0], [3, 1]);
        let target_in = [2, 5, 6, 2, 6, 0];
        let target_out = [5, 6, 3, 6, 3, 0];
        let target_padding = [false, false, false, false, false, true];
        let batch = Batch {
            source: &source,
            source_lengths: &source_lengths,
            target_in: &target_in,
            target_out: &target_out,
            target_padding: &target_padding,
            tgt_len: 3,
        };
        let r = uniform(6 * 3 * m, 1.0, 1);
        let loss = |w: &Weights| {
            let target = target_forward(w, &dims, &batch, &mut Masks::new(0.0, 0));
            weighted_sum(&r, &target.input_terms)
        };
        let layout = Layout::new(dims, false);
        let mut flat = vec![0.0; layout.len()];
        let mut grads = layout.grads(&mut flat);
        let w = owned.weights();
        let target = target_forward(&w, &dims, &batch, &mut Masks::new(0.0, 0));
        let d_embedded = vec![0.0; target.embedded.len()];
        target_backward(&w, &dims, &batch, &target, &r, d_embedded, &mut grads);
        drop(w);
        let rows = 0..e * 3 * m;
        let g = grads.decoder.w[rows.clone()].to_vec();
        check_weight(
            "decoder W (embedding rows)",
            &mut owned,
            "decoder.w",
            rows,
            &g,
            loss,
        );
        check_weight(
            "decoder b",
            &mut owned,
            "decoder.b",
            0..3 * m,
            grads.decoder.b,
            loss,
        );
        let table = 0..dims.tgt_vocab * e;
        check_weight(
            "target embeddings",
            &mut owned,
            "tgt_embedding",
            table,
            grads.tgt_embedding,
            loss,
        );
    }
}

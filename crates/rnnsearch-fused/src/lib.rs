//! The training step of the RNNsearch model (Bahdanau, Cho & Bengio 2014) written out by hand
//! for the CPU: the forward pass, label-smoothed cross-entropy and the backward pass through
//! time, on plain `f32` buffers.
//!
//! burn's autodiff records every tensor op of the ~60 recurrent steps of a batch, allocates a
//! tensor per op and runs the element-wise ops on one thread. Here the work of a step is a few
//! large matmuls (all positions at once wherever the recurrence allows, weight gradients as one
//! product over all steps) plus fused element-wise loops, parallel over sentences.
//!
//! `inference` runs the same forward pass one output token at a time under the search.
//!
//! It covers the whole model family: GRU and LSTM cells ([`CellKind`]), any number of
//! bidirectional encoder layers, every scorer ([`Scorer`]) and bridge ([`Bridge`]), the maxout
//! and tanh deep outputs ([`DeepOutput`]), and an output matrix of its own or tied to the target
//! embeddings; `rnnsearch-train` checks it against burn's autodiff in its tests. Weights are row-major
//! `[inputs, outputs]`, as in the burn modules (y = x W + b), in one flat buffer ([`memory`]).

pub mod adam;
pub mod attention;
pub mod cell;
pub mod decoder;
pub mod encoder;
pub mod gru;
pub mod inference;
pub mod linalg;
pub mod lstm;
pub mod memory;
pub mod output;
pub mod packed;
pub mod parallel;
pub mod step;

#[cfg(test)]
mod gradcheck;

pub use adam::{Adam, Moments};
pub use inference::Decoding;
pub use memory::Layout;
pub use packed::{PackedColumns, PackedDecoder};
pub use parallel::{loss_in_parts, on_own_threads, train_step_in_parts, GradBuffers};
pub use step::{train_step, Batch, OwnedBatch, StepOptions, StepResult};

/// The recurrent unit of the encoder and the decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// Gates [r, z, n] (`gru.rs`).
    Gru,
    /// Gates [i, f, g, o] and a memory cell beside the state (`lstm.rs`).
    Lstm,
}

impl CellKind {
    /// G, the gates: a cell's W is `[d_in, G·d]`.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Gru => 3,
            CellKind::Lstm => 4,
        }
    }
}

/// How the initial decoder state s_0 is made from the annotations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bridge {
    /// s_0 = tanh(W_s ←h_1 + b_s), the paper's choice.
    BackwardFirst,
    /// s_0 = tanh(W_s mean_j h_j + b_s), the mean over the real positions.
    Mean,
    /// s_0 = 0, no weights.
    Zero,
}

impl Bridge {
    /// The width of W_s's input for encoder units n per direction (None: no W_s).
    pub fn inputs(self, n: usize) -> Option<usize> {
        match self {
            Bridge::BackwardFirst => Some(n),
            Bridge::Mean => Some(2 * n),
            Bridge::Zero => None,
        }
    }
}

/// How the alignment model scores s_{i-1} against h_j.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scorer {
    /// e_ij = v_aᵀ tanh(W_a s_{i-1} + U_a h_j), the paper's alignment model.
    Additive,
    /// e_ij = s_{i-1} · h_j (m = 2n).
    Dot,
    /// e_ij = s_{i-1}ᵀ W h_j.
    General,
    /// e_ij = τ cos(s_{i-1}, W h_j), τ = exp(log τ) learned, or fixed.
    Cosine { learned: bool },
}

/// The deep output's non-linearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeepOutput {
    /// t_i = max over pairs of t̃_i, the paper's choice (2l pre-activations for l units).
    Maxout,
    /// t_i = tanh(t̃_i) (l pre-activations).
    Tanh,
}

impl DeepOutput {
    /// Pre-activations per unit of t_i.
    pub fn pool(self) -> usize {
        match self {
            DeepOutput::Maxout => 2,
            DeepOutput::Tanh => 1,
        }
    }
}

/// Sizes of the model, and the variants of its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Embedding size E (source and target).
    pub embedding: usize,
    /// Encoder units per direction n.
    pub hidden: usize,
    /// Bidirectional encoder layers.
    pub layers: usize,
    /// Decoder state size m.
    pub decoder_hidden: usize,
    /// Alignment model size a (the additive scorer's; 0 for the others).
    pub attention: usize,
    /// Units of t_i, l (after pooling, with maxout).
    pub output: usize,
    pub src_vocab: usize,
    pub tgt_vocab: usize,
    pub cell: CellKind,
    pub scorer: Scorer,
    pub bridge: Bridge,
    pub deep_output: DeepOutput,
}

impl Dims {
    /// G, the gates of the cells.
    pub fn gates(&self) -> usize {
        self.cell.gates()
    }

    /// The width k of the keys and queries the energies compare: a (additive), 2n (dot), m
    /// (general, cosine).
    pub fn key_width(&self) -> usize {
        match self.scorer {
            Scorer::Additive => self.attention,
            Scorer::Dot => 2 * self.hidden,
            Scorer::General | Scorer::Cosine { .. } => self.decoder_hidden,
        }
    }

    /// Values in the key weights (U_a or W, `[2n, k]`; none for dot).
    pub fn key_weights(&self) -> usize {
        match self.scorer {
            Scorer::Dot => 0,
            _ => 2 * self.hidden * self.key_width(),
        }
    }

    /// The columns of W_a s_{i-1} in the decoder's fused [U s | W_a s] product (a, or 0).
    pub fn query_width(&self) -> usize {
        match self.scorer {
            Scorer::Additive => self.attention,
            _ => 0,
        }
    }

    /// Pre-activations of the deep output, k·l.
    pub fn deep_width(&self) -> usize {
        self.deep_output.pool() * self.output
    }

    /// Learned temperatures: 1 (cosine with a learned τ) or 0.
    pub fn temperatures(&self) -> usize {
        usize::from(self.scorer == Scorer::Cosine { learned: true })
    }

    /// Values in W_s, `[n or 2n, m]` (0 without one).
    pub fn bridge_inputs(&self) -> usize {
        self.bridge.inputs(self.hidden).unwrap_or(0)
    }
}

/// A recurrent cell's weights: W `[d_in, G·d]`, b `[G·d]`, U `[d, G·d]`, c `[G·d]` (G gates,
/// [`CellKind::gates`]).
#[derive(Clone, Copy, Debug)]
pub struct CellWeights<'a> {
    pub w: &'a [f32],
    pub b: &'a [f32],
    pub u: &'a [f32],
    pub c: &'a [f32],
}

/// Gradients of a [`CellWeights`], written into a buffer they borrow.
#[derive(Debug)]
pub struct CellGrads<'a> {
    pub w: &'a mut [f32],
    pub b: &'a mut [f32],
    pub u: &'a mut [f32],
    pub c: &'a mut [f32],
}

impl<'a> CellGrads<'a> {
    /// The gradients of a cell of `gates` gates, `d_in` inputs and `d` units in `flat`, which
    /// holds exactly that many values (W, b, U, c in turn).
    pub fn split(flat: &'a mut [f32], gates: usize, d_in: usize, d: usize) -> Self {
        let (w, rest) = flat.split_at_mut(d_in * gates * d);
        let (b, rest) = rest.split_at_mut(gates * d);
        let (u, c) = rest.split_at_mut(d * gates * d);
        assert_eq!(c.len(), gates * d, "a buffer of one cell's size");
        Self { w, b, u, c }
    }

    /// The same gradients, borrowed again for a shorter while.
    pub fn reborrow(&mut self) -> CellGrads<'_> {
        CellGrads {
            w: &mut *self.w,
            b: &mut *self.b,
            u: &mut *self.u,
            c: &mut *self.c,
        }
    }

    /// Values in the gradients of such a cell.
    pub fn len(gates: usize, d_in: usize, d: usize) -> usize {
        (d_in + d + 2) * gates * d
    }
}

/// Every weight of the model, borrowed.
#[derive(Clone, Debug)]
pub struct Weights<'a> {
    /// `[V_src, E]`.
    pub src_embedding: &'a [f32],
    /// Per layer, the forward and the backward RNN.
    pub encoder: Vec<[CellWeights<'a>; 2]>,
    /// W_s `[n, m]` and its bias `[m]`: s_0 = tanh(W_s ←h_1 + b_s).
    pub bridge_w: &'a [f32],
    pub bridge_b: &'a [f32],
    /// U_a `[2n, a]`.
    pub key: &'a [f32],
    /// W_a `[m, a]`.
    pub query: &'a [f32],
    /// v_a `[a]`.
    pub energy: &'a [f32],
    /// log τ, `[1]` (cosine with a learned temperature; else empty).
    pub log_temperature: &'a [f32],
    /// τ for cosine with a fixed temperature.
    pub fixed_temperature: f32,
    /// `[V_tgt, E]`.
    pub tgt_embedding: &'a [f32],
    /// The decoder GRU; its W is `[E + 2n, 3m]`, rows for E y_{i-1} first, then c_i.
    pub decoder: CellWeights<'a>,
    /// `[m + 2n + E, 2l]` and `[2l]`.
    pub deep_w: &'a [f32],
    pub deep_b: &'a [f32],
    /// W_o `[l, V_tgt]` and `[V_tgt]`.
    pub out_w: &'a [f32],
    pub out_b: &'a [f32],
    /// The deep output's non-linearity (which `deep_w`'s width depends on).
    pub deep_output: DeepOutput,
}

impl<'a> Weights<'a> {
    /// The deep output's and the projection's weights.
    pub fn output(&self) -> output::OutputWeights<'a> {
        output::OutputWeights {
            pool: self.deep_output.pool(),
            deep_w: self.deep_w,
            deep_b: self.deep_b,
            out_w: self.out_w,
            out_b: self.out_b,
        }
    }
}

/// Gradients of every weight, in the layout of [`Weights`], written into a flat buffer they
/// borrow ([`memory::Layout::grads`]).
#[derive(Debug)]
pub struct Grads<'a> {
    pub src_embedding: &'a mut [f32],
    pub encoder: Vec<[CellGrads<'a>; 2]>,
    pub bridge_w: &'a mut [f32],
    pub bridge_b: &'a mut [f32],
    pub key: &'a mut [f32],
    pub query: &'a mut [f32],
    pub energy: &'a mut [f32],
    pub log_temperature: &'a mut [f32],
    pub tgt_embedding: &'a mut [f32],
    pub decoder: CellGrads<'a>,
    pub deep_w: &'a mut [f32],
    pub deep_b: &'a mut [f32],
    pub out_w: &'a mut [f32],
    pub out_b: &'a mut [f32],
}

impl Dims {
    /// Floating-point operations in the matrix products of one training step (forward and
    /// backward) on `batch` sentences of `src_len` → `tgt_len` tokens, without padding.
    ///
    /// Each product X W of the forward pass costs 2·rows·inputs·outputs and twice that again
    /// backward (∂X = ∂Y Wᵀ and ∂W = Xᵀ ∂Y). The element-wise work (gates, tanh, softmax) is
    /// left out: it is a few percent of the total at these sizes.
    pub fn step_flops(&self, batch: usize, src_len: usize, tgt_len: usize) -> f64 {
        let (e, n, m, l, v) = (
            self.embedding as f64,
            self.hidden as f64,
            self.decoder_hidden as f64,
            self.output as f64,
            self.tgt_vocab as f64,
        );
        let (b, s, t) = (batch as f64, src_len as f64, tgt_len as f64);
        let product = |rows: f64, inputs: f64, outputs: f64| 2.0 * rows * inputs * outputs;
        let mut forward = 0.0;
        let g = self.gates() as f64;
        for layer in 0..self.layers {
            let d_in = if layer == 0 { e } else { 2.0 * n };
            // two directions: inputs for all positions, then the recurrence step by step
            forward += 2.0 * (product(b * s, d_in, g * n) + product(b * s, n, g * n));
        }
        let k = self.key_width() as f64;
        let key_columns = if self.key_weights() == 0 { 0.0 } else { k };
        forward += product(b * s, 2.0 * n, key_columns) // keys (none for dot)
            + product(b, self.bridge_inputs() as f64, m) // bridge
            + product(b * t, e, g * m) // decoder input, E y side
            + product(b * t, m, g * m + self.query_width() as f64) // [U | W_a] s_{i-1}
            + product(b * t, 2.0 * n, g * m) // decoder input, c_i side
            + product(b * t, s, k) // energies
            + product(b * t, s, 2.0 * n) // c_i = Σ α h
            + product(b * t, m + 2.0 * n + e, self.deep_width() as f64) // deep output
            + product(b * t, l, v); // vocabulary projection
        3.0 * forward
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_of_the_multi30k_model_costs_about_26_mflop_per_target_token() {
        let dims = Dims {
            embedding: 256,
            hidden: 256,
            layers: 1,
            decoder_hidden: 256,
            attention: 256,
            output: 256,
            src_vocab: 8000,
            tgt_vocab: 8000,
            cell: CellKind::Gru,
            scorer: Scorer::Additive,
            bridge: Bridge::BackwardFirst,
            deep_output: DeepOutput::Maxout,
        };
        let per_token = dims.step_flops(125, 16, 16) / (125.0 * 16.0);
        // the vocabulary projection alone: 3 · 2 · 256 · 8000
        assert!(per_token > 3.0 * 2.0 * 256.0 * 8000.0);
        assert!((25e6..27e6).contains(&per_token), "{per_token}");
    }
}

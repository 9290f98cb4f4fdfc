//! The decoder's recurrence and its backward pass through time.
//!
//! At step i: [U s_{i-1} + c | W_a s_{i-1}] in one matmul; c_i and α_i from the alignment
//! model; s_i = GRU(s_{i-1}, [E y_{i-1}; c_i]), where the E y_{i-1} part (`input_terms`) was
//! computed for all positions before the loop. Buffers are time-major, `[tgt_len, batch, ·]`.

use crate::attention::{self, Shape};
use crate::gru::{self, StepCache};
use crate::linalg::{add_column_sums, matmul, Layout};
use crate::packed::{affine, fuse_recurrent, PackedDecoder};
use crate::{Dims, GruGrads, Weights};

/// The recurrence, kept for the backward pass.
pub struct DecoderCache {
    /// s_0 .. s_T, `[T + 1, batch, m]`.
    pub states: Vec<f32>,
    /// c_1 .. c_T, `[T, batch, 2n]`.
    pub contexts: Vec<f32>,
    /// α, `[T, batch, src_len]`.
    pub alignment: Vec<f32>,
    /// tanh(W_a s_{i-1} + U_a h_j), `[T, batch, src_len, a]`.
    hidden: Vec<f32>,
    steps: Vec<StepCache>,
    /// [U | W_a], `[m, 3m + a]`.
    fused: Vec<f32>,
}

/// Gradients the recurrence passes back to the rest of the model.
pub struct DecoderGrads {
    /// ∂L/∂s_0, `[batch, m]`.
    pub initial_state: Vec<f32>,
    /// ∂L/∂(W_y E y_{i-1} + b), `[T, batch, 3m]`.
    pub input_terms: Vec<f32>,
}

/// One step of the recurrence at a time, with its buffers: [U s_{i-1} + c | W_a s_{i-1}] in one
/// product, the alignment model, then the GRU.
pub struct Stepper {
    /// [U | W_a], `[m, 3m + a]`, and its bias [c | 0].
    fused: Vec<f32>,
    fused_bias: Vec<f32>,
    shape: Shape,
    m: usize,
    e: usize,
    projected: Vec<f32>,
    recurrent: Vec<f32>,
    input: Vec<f32>,
}

impl Stepper {
    /// A stepper for `batch` rows over `src_len` source positions.
    pub fn new(weights: &Weights, dims: &Dims, batch: usize, src_len: usize) -> Self {
        let (m, a) = (dims.decoder_hidden, dims.attention);
        let width = 3 * m + a;
        let mut fused_bias = weights.decoder.c.to_vec();
        fused_bias.resize(width, 0.0);
        Self {
            fused: fuse_recurrent(weights.decoder.u, weights.query, m, a),
            fused_bias,
            shape: Shape {
                batch,
                src_len,
                d_annotation: 2 * dims.hidden,
                d_attention: a,
            },
            m,
            e: dims.embedding,
            projected: vec![0.0; batch * width],
            recurrent: vec![0.0; batch * 3 * m],
            input: vec![0.0; batch * 3 * m],
        }
    }

    /// s_i from s_{i-1} (`s`, `[batch, m]`) and the embedding side of the GRU's input
    /// (`input_terms`, `[batch, 3m]`); writes s_i, c_i, α_i and the alignment model's hidden
    /// layer (`[batch, src_len, a]`), and fills `cache`.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        weights: &Weights,
        packed: Option<&PackedDecoder>,
        annotations: &[f32],
        keys: &[f32],
        lengths: &[usize],
        s: &[f32],
        input_terms: &[f32],
        s_next: &mut [f32],
        context: &mut [f32],
        alignment: &mut [f32],
        hidden: &mut [f32],
        cache: &mut StepCache,
    ) {
        let (m, e) = (self.m, self.e);
        let width = self.fused_bias.len();
        // The batch may shrink between steps (finished sentences leave a search).
        let batch = s.len() / m;
        self.shape.batch = batch;
        self.projected.resize(batch * width, 0.0);
        self.recurrent.resize(batch * 3 * m, 0.0);
        self.input.resize(batch * 3 * m, 0.0);
        let h2 = self.shape.d_annotation;
        affine(
            batch,
            m,
            width,
            s,
            &self.fused,
            packed.map(|p| &p.recurrent),
            Some(&self.fused_bias),
            &mut self.projected,
            false,
        );
        attention::forward(
            self.shape,
            keys,
            annotations,
            lengths,
            &self.projected,
            width,
            weights.energy,
            hidden,
            alignment,
            context,
        );
        self.input.copy_from_slice(input_terms);
        affine(
            batch,
            h2,
            3 * m,
            context,
            &weights.decoder.w[e * 3 * m..],
            packed.map(|p| &p.context),
            None,
            &mut self.input,
            true,
        );
        for b in 0..batch {
            self.recurrent[b * 3 * m..(b + 1) * 3 * m]
                .copy_from_slice(&self.projected[b * width..b * width + 3 * m]);
        }
        gru::forward(&self.input, &self.recurrent, s, s_next, cache, m);
    }
}

/// Runs the decoder over `tgt_len` steps from `initial_state`.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    weights: &Weights,
    dims: &Dims,
    annotations: &[f32],
    keys: &[f32],
    lengths: &[usize],
    src_len: usize,
    initial_state: &[f32],
    input_terms: &[f32],
    tgt_len: usize,
) -> DecoderCache {
    let batch = lengths.len();
    let (m, a, h2) = (dims.decoder_hidden, dims.attention, 2 * dims.hidden);
    let mut stepper = Stepper::new(weights, dims, batch, src_len);
    let mut states = vec![0.0; (tgt_len + 1) * batch * m];
    states[..batch * m].copy_from_slice(initial_state);
    let mut contexts = vec![0.0; tgt_len * batch * h2];
    let mut alignment = vec![0.0; tgt_len * batch * src_len];
    let mut hidden = vec![0.0; tgt_len * batch * src_len * a];
    let mut steps = Vec::with_capacity(tgt_len);
    for i in 0..tgt_len {
        let (before, after) = states.split_at_mut((i + 1) * batch * m);
        let mut cache = StepCache::new(batch, m);
        stepper.step(
            weights,
            None,
            annotations,
            keys,
            lengths,
            &before[i * batch * m..],
            &input_terms[i * batch * 3 * m..(i + 1) * batch * 3 * m],
            &mut after[..batch * m],
            &mut contexts[i * batch * h2..(i + 1) * batch * h2],
            &mut alignment[i * batch * src_len..(i + 1) * batch * src_len],
            &mut hidden[i * batch * src_len * a..(i + 1) * batch * src_len * a],
            &mut cache,
        );
        steps.push(cache);
    }
    DecoderCache {
        states,
        contexts,
        alignment,
        hidden,
        steps,
        fused: stepper.fused,
    }
}

/// Back-propagates through the recurrence.
///
/// `d_states` and `d_contexts` (`[T, batch, m]`, `[T, batch, 2n]`) are what the output layer
/// sends back to s_i and c_i. Accumulates into `d_annotations` and `d_keys` (`[batch, src_len,
/// ·]`), the decoder GRU's U, c and context rows of W (`grads`), W_a and v_a.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    weights: &Weights,
    dims: &Dims,
    cache: &DecoderCache,
    annotations: &[f32],
    lengths: &[usize],
    src_len: usize,
    d_states: &[f32],
    d_contexts: &[f32],
    d_annotations: &mut [f32],
    d_keys: &mut [f32],
    grads: &mut GruGrads,
    d_query: &mut [f32],
    d_energy: &mut [f32],
) -> DecoderGrads {
    let batch = lengths.len();
    let (m, a, h2, e) = (
        dims.decoder_hidden,
        dims.attention,
        2 * dims.hidden,
        dims.embedding,
    );
    let tgt_len = cache.steps.len();
    let width = 3 * m + a;
    let context_weight = &weights.decoder.w[e * 3 * m..];
    let shape = Shape {
        batch,
        src_len,
        d_annotation: h2,
        d_attention: a,
    };
    let mut d_projected = vec![0.0; tgt_len * batch * width];
    let mut d_inputs = vec![0.0; tgt_len * batch * 3 * m];
    let mut d_recurrent = vec![0.0; batch * 3 * m];
    let mut d_context = vec![0.0; batch * h2];
    let mut d_energy_rows = vec![0.0; batch * a];
    let mut ds = vec![0.0; batch * m];
    for i in (0..tgt_len).rev() {
        ds.iter_mut()
            .zip(&d_states[i * batch * m..(i + 1) * batch * m])
            .for_each(|(d, g)| *d += g);
        let s = &cache.states[i * batch * m..(i + 1) * batch * m];
        let d_input = &mut d_inputs[i * batch * 3 * m..(i + 1) * batch * 3 * m];
        gru::backward(&mut ds, s, &cache.steps[i], d_input, &mut d_recurrent, m);
        let d_proj = &mut d_projected[i * batch * width..(i + 1) * batch * width];
        for b in 0..batch {
            d_proj[b * width..b * width + 3 * m]
                .copy_from_slice(&d_recurrent[b * 3 * m..(b + 1) * 3 * m]);
        }
        d_context.copy_from_slice(&d_contexts[i * batch * h2..(i + 1) * batch * h2]);
        matmul(
            Layout::NT,
            batch,
            3 * m,
            h2,
            d_input,
            context_weight,
            &mut d_context,
            true,
        );
        attention::backward(
            shape,
            annotations,
            lengths,
            weights.energy,
            &cache.hidden[i * batch * src_len * a..(i + 1) * batch * src_len * a],
            &cache.alignment[i * batch * src_len..(i + 1) * batch * src_len],
            &d_context,
            d_annotations,
            d_keys,
            d_proj,
            width,
            &mut d_energy_rows,
        );
        // ∂L/∂s_{i-1} = z ⊙ ds + [∂U s | ∂W_a s] [U | W_a]ᵀ
        matmul(
            Layout::NT,
            batch,
            width,
            m,
            d_proj,
            &cache.fused,
            &mut ds,
            true,
        );
    }
    // weight gradients as one product over all steps
    let states_before = &cache.states[..tgt_len * batch * m];
    let mut d_fused = vec![0.0; m * width];
    matmul(
        Layout::TN,
        m,
        tgt_len * batch,
        width,
        states_before,
        &d_projected,
        &mut d_fused,
        false,
    );
    for p in 0..m {
        let row = &d_fused[p * width..(p + 1) * width];
        grads.u[p * 3 * m..(p + 1) * 3 * m]
            .iter_mut()
            .zip(&row[..3 * m])
            .for_each(|(g, v)| *g += v);
        d_query[p * a..(p + 1) * a]
            .iter_mut()
            .zip(&row[3 * m..])
            .for_each(|(g, v)| *g += v);
    }
    let mut bias_sums = vec![0.0; width];
    add_column_sums(&d_projected, &mut bias_sums);
    grads
        .c
        .iter_mut()
        .zip(&bias_sums)
        .for_each(|(g, v)| *g += v);
    // the context rows of W: Σ_i c_iᵀ ∂input_i
    matmul(
        Layout::TN,
        h2,
        tgt_len * batch,
        3 * m,
        &cache.contexts,
        &d_inputs,
        &mut grads.w[e * 3 * m..],
        true,
    );
    add_column_sums(&d_energy_rows, d_energy);
    DecoderGrads {
        initial_state: ds,
        input_terms: d_inputs,
    }
}

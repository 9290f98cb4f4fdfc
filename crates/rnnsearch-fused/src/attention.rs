//! The additive alignment model of one decoder step, and its derivative:
//!
//! e_ij = v_aᵀ tanh(W_a s_{i-1} + U_a h_j), α_ij = softmax_j(e_ij) over the real positions
//! (padding gets exactly 0), c_i = Σ_j α_ij h_j.
//!
//! The keys U_a h_j are computed once per batch by the caller. Each sentence is independent, so
//! both passes run in parallel over sentences.

use rayon::prelude::*;

use crate::linalg::{dot, exp, simd_dispatch, tanh};

/// The shapes of one step: batch, src_len, annotation size 2n, attention size a.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub batch: usize,
    pub src_len: usize,
    pub d_annotation: usize,
    pub d_attention: usize,
}

/// Computes α_i (`[batch, src_len]`), c_i (`[batch, 2n]`) and keeps the hidden layer
/// tanh(W_a s + U_a h_j) (`[batch, src_len, a]`) for the backward pass.
///
/// `query` holds W_a s_{i-1} as the last `a` values of each row of `query_stride` values.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    shape: Shape,
    keys: &[f32],
    annotations: &[f32],
    lengths: &[usize],
    query: &[f32],
    query_stride: usize,
    energy: &[f32],
    hidden: &mut [f32],
    alignment: &mut [f32],
    context: &mut [f32],
) {
    let Shape {
        src_len: s,
        d_annotation: h2,
        d_attention: a,
        ..
    } = shape;
    hidden
        .par_chunks_mut(s * a)
        .zip(alignment.par_chunks_mut(s))
        .zip(context.par_chunks_mut(h2))
        .enumerate()
        .for_each(|(b, ((hidden, alpha), ctx))| {
            attend(
                &query[(b + 1) * query_stride - a..(b + 1) * query_stride],
                &keys[b * s * a..(b + 1) * s * a],
                &annotations[b * s * h2..(b + 1) * s * h2],
                lengths[b],
                energy,
                hidden,
                alpha,
                ctx,
            )
        });
}

simd_dispatch! {
    /// One sentence of [`forward`]: e_j = v_a · tanh(q + k_j) over its `len` positions (`keys`
    /// `[src_len, a]`, the tanh layer written to `hidden`), α = softmax(e) and
    /// c = Σ_j α_j h_j (`annotations` `[src_len, 2n]`); padding gets α_j = 0.
    #[allow(clippy::too_many_arguments)]
    fn attend(
        q: &[f32],
        keys: &[f32],
        annotations: &[f32],
        len: usize,
        energy: &[f32],
        hidden: &mut [f32],
        alpha: &mut [f32],
        ctx: &mut [f32],
    ) {
        let (a, h2) = (q.len(), ctx.len());
        let mut max = f32::NEG_INFINITY;
        for j in 0..len {
            let k = &keys[j * a..(j + 1) * a];
            let hid = &mut hidden[j * a..(j + 1) * a];
            hid.iter_mut()
                .zip(k.iter().zip(q))
                .for_each(|(t, (k, q))| *t = tanh(k + q));
            let e = dot(hid, energy);
            alpha[j] = e;
            max = max.max(e);
        }
        let mut sum = 0.0;
        for e in &mut alpha[..len] {
            *e = exp(*e - max);
            sum += *e;
        }
        alpha[..len].iter_mut().for_each(|e| *e /= sum);
        alpha[len..].fill(0.0);
        hidden[len * a..].fill(0.0);
        ctx.fill(0.0);
        for j in 0..len {
            let h = &annotations[j * h2..(j + 1) * h2];
            let w = alpha[j];
            ctx.iter_mut().zip(h).for_each(|(c, h)| *c += w * h);
        }
    }
}

/// Back-propagates ∂L/∂c_i (`d_context`, `[batch, 2n]`) through one step.
///
/// Accumulates ∂L/∂h_j into `d_annotations` and ∂L/∂(U_a h_j) into `d_keys` (both per
/// sentence), writes ∂L/∂(W_a s_{i-1}) into the last `a` values of each row of `d_query`
/// (laid out as `query` in [`forward`]) and adds
/// each sentence's ∂L/∂v_a to its row of `d_energy` (`[batch, a]`, summed by the caller).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    shape: Shape,
    annotations: &[f32],
    lengths: &[usize],
    energy: &[f32],
    hidden: &[f32],
    alignment: &[f32],
    d_context: &[f32],
    d_annotations: &mut [f32],
    d_keys: &mut [f32],
    d_query: &mut [f32],
    query_stride: usize,
    d_energy: &mut [f32],
) {
    let Shape {
        src_len: s,
        d_annotation: h2,
        d_attention: a,
        ..
    } = shape;
    d_annotations
        .par_chunks_mut(s * h2)
        .zip(d_keys.par_chunks_mut(s * a))
        .zip(d_query.par_chunks_mut(query_stride))
        .zip(d_energy.par_chunks_mut(a))
        .enumerate()
        .for_each(|(b, (((d_ann, d_key), d_q), d_v))| {
            let len = lengths[b];
            let alpha = &alignment[b * s..(b + 1) * s];
            let dc = &d_context[b * h2..(b + 1) * h2];
            let d_q = &mut d_q[query_stride - a..];
            d_q.fill(0.0);
            // ∂α_j = dc · h_j; ∂h_j += α_j dc
            let mut d_alpha = vec![0.0f32; len];
            let mut weighted = 0.0;
            for j in 0..len {
                let h = &annotations[(b * s + j) * h2..(b * s + j + 1) * h2];
                let da = dot(h, dc);
                d_alpha[j] = da;
                weighted += alpha[j] * da;
                let w = alpha[j];
                d_ann[j * h2..(j + 1) * h2]
                    .iter_mut()
                    .zip(dc)
                    .for_each(|(d, g)| *d += w * g);
            }
            for j in 0..len {
                // softmax: ∂e_j = α_j (∂α_j − Σ_k α_k ∂α_k)
                let de = alpha[j] * (d_alpha[j] - weighted);
                let hid = &hidden[(b * s + j) * a..(b * s + j + 1) * a];
                let dk = &mut d_key[j * a..(j + 1) * a];
                for p in 0..a {
                    let t = hid[p];
                    d_v[p] += de * t;
                    let d_pre = de * energy[p] * (1.0 - t * t);
                    dk[p] += d_pre;
                    d_q[p] += d_pre;
                }
            }
        });
}

//! The alignment model of one decoder step, and its derivative:
//!
//! e_ij = v_aᵀ tanh(q_i + k_j) (additive: q_i = W_a s_{i-1}, k_j = U_a h_j) or e_ij = q_i · k_j
//! (dot, general and cosine, whose queries and keys the caller prepares: s_{i-1} and h_j, or
//! W h_j, or τ s_{i-1}/|s_{i-1}| and W h_j/|W h_j|); α_ij = softmax_j(e_ij) over the real
//! positions (padding gets exactly 0), c_i = Σ_j α_ij h_j.
//!
//! The keys are computed once per batch by the caller. Each sentence is independent, so both
//! passes run in parallel over sentences.

use rayon::iter::Either;
use rayon::prelude::*;

use crate::linalg::{dot, exp, simd_dispatch, tanh};

/// The shapes of one step: batch, src_len, annotation size 2n, key size (a for the additive
/// scorer, else the query's size).
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub batch: usize,
    pub src_len: usize,
    pub d_annotation: usize,
    pub d_attention: usize,
}

/// What every step attends over: the annotations h_j (`[batch, src_len, 2n]`, zero at
/// padding), their keys (`[batch, src_len, k]`) and the sentences' lengths.
#[derive(Clone, Copy, Debug)]
pub struct Memory<'a> {
    pub shape: Shape,
    pub annotations: &'a [f32],
    pub keys: &'a [f32],
    pub lengths: &'a [usize],
}

/// The queries q_i: the last `k` values of each row of `stride` values (for the additive
/// scorer, the rows of the decoder's fused [U s | W_a s] product).
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    pub values: &'a [f32],
    pub stride: usize,
}

/// The energy function: e_j = v_aᵀ tanh(q + k_j), or e_j = q · k_j.
#[derive(Clone, Copy, Debug)]
pub enum Energy<'a> {
    Additive { v: &'a [f32] },
    Dot,
}

/// What one step computes: the additive scorer's hidden layer tanh(q + k_j) (`[batch,
/// src_len, a]`, kept for the backward pass; empty for the others), α_i (`[batch, src_len]`)
/// and c_i (`[batch, 2n]`).
pub struct Attended<'a> {
    pub hidden: &'a mut [f32],
    pub alignment: &'a mut [f32],
    pub context: &'a mut [f32],
}

/// `hidden` cut per sentence: `s·a` values each for the additive scorer, none for the others
/// (without allocating: this runs at every decoder step).
fn per_sentence(
    hidden: &mut [f32],
    batch: usize,
    width: usize,
) -> impl IndexedParallelIterator<Item = &mut [f32]> {
    if hidden.is_empty() {
        Either::Right(rayon::iter::repeat_n((), batch).map(|_| <&mut [f32]>::default()))
    } else {
        Either::Left(hidden.par_chunks_mut(width))
    }
}

/// Computes α_i and c_i for the queries of one step.
pub fn forward(memory: &Memory, query: Query, energy: Energy, out: Attended) {
    let Shape {
        src_len: s,
        d_annotation: h2,
        d_attention: a,
        ..
    } = memory.shape;
    let Memory {
        annotations,
        keys,
        lengths,
        ..
    } = *memory;
    let Query {
        values: query,
        stride: query_stride,
    } = query;
    let Attended {
        hidden,
        alignment,
        context,
    } = out;
    let batch = alignment.len() / s.max(1);
    per_sentence(hidden, batch, s * a)
        .zip(alignment.par_chunks_mut(s))
        .zip(context.par_chunks_mut(h2))
        .enumerate()
        .for_each(|(b, ((hidden, alpha), ctx))| {
            let sentence = Sentence {
                keys: &keys[b * s * a..(b + 1) * s * a],
                annotations: &annotations[b * s * h2..(b + 1) * s * h2],
                len: lengths[b],
            };
            let q = &query[(b + 1) * query_stride - a..(b + 1) * query_stride];
            attend(q, sentence, energy, hidden, alpha, ctx)
        });
}

/// One sentence of a [`Memory`]: keys `[src_len, a]`, annotations `[src_len, 2n]`, length.
#[derive(Clone, Copy)]
struct Sentence<'a> {
    keys: &'a [f32],
    annotations: &'a [f32],
    len: usize,
}

simd_dispatch! {
    /// One sentence of [`forward`]: e_j = v_a · tanh(q + k_j) (the tanh layer written to
    /// `hidden`) or e_j = q · k_j over its `len` positions, α = softmax(e) and
    /// c = Σ_j α_j h_j; padding gets α_j = 0.
    fn attend(
        q: &[f32],
        sentence: Sentence,
        energy: Energy,
        hidden: &mut [f32],
        alpha: &mut [f32],
        ctx: &mut [f32],
    ) {
        let Sentence { keys, annotations, len } = sentence;
        let (a, h2) = (q.len(), ctx.len());
        let mut max = f32::NEG_INFINITY;
        for j in 0..len {
            let k = &keys[j * a..(j + 1) * a];
            let e = match energy {
                Energy::Additive { v } => {
                    let hid = &mut hidden[j * a..(j + 1) * a];
                    hid.iter_mut()
                        .zip(k.iter().zip(q))
                        .for_each(|(t, (k, q))| *t = tanh(k + q));
                    dot(hid, v)
                }
                Energy::Dot => dot(k, q),
            };
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
        if !hidden.is_empty() {
            hidden[len * a..].fill(0.0);
        }
        ctx.fill(0.0);
        for j in 0..len {
            let h = &annotations[j * h2..(j + 1) * h2];
            let w = alpha[j];
            ctx.iter_mut().zip(h).for_each(|(c, h)| *c += w * h);
        }
    }
}

/// What one step's forward pass kept: the hidden layer and α_i, as in [`Attended`], and the
/// queries (which the dot-product energies' derivative reads).
#[derive(Clone, Copy)]
pub struct Saved<'a> {
    pub hidden: &'a [f32],
    pub alignment: &'a [f32],
    pub query: Query<'a>,
}

/// Where the backward pass of one step writes: ∂L/∂h_j and ∂L/∂k_j, accumulated per
/// sentence (`[batch, src_len, ·]`); ∂L/∂q_i, written into the last `k` values of each row of
/// `d_query` (rows of `query_stride`, laid out as [`Query`]); and, for the additive scorer,
/// each sentence's ∂L/∂v_a, added to its row of `d_energy` (`[batch, a]`, summed by the
/// caller; empty for the others).
pub struct AttentionGrads<'a> {
    pub d_annotations: &'a mut [f32],
    pub d_keys: &'a mut [f32],
    pub d_query: &'a mut [f32],
    pub query_stride: usize,
    pub d_energy: &'a mut [f32],
}

/// Back-propagates ∂L/∂c_i (`d_context`, `[batch, 2n]`) through one step.
pub fn backward(
    memory: &Memory,
    energy: Energy,
    saved: Saved,
    d_context: &[f32],
    grads: AttentionGrads,
) {
    let Shape {
        src_len: s,
        d_annotation: h2,
        d_attention: a,
        ..
    } = memory.shape;
    let (annotations, lengths) = (memory.annotations, memory.lengths);
    let Saved {
        hidden,
        alignment,
        query,
    } = saved;
    let AttentionGrads {
        d_annotations,
        d_keys,
        d_query,
        query_stride,
        d_energy,
    } = grads;
    let batch = d_query.len() / query_stride;
    d_annotations
        .par_chunks_mut(s * h2)
        .zip(d_keys.par_chunks_mut(s * a))
        .zip(d_query.par_chunks_mut(query_stride))
        .zip(per_sentence(d_energy, batch, a))
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
                let dk = &mut d_key[j * a..(j + 1) * a];
                match energy {
                    Energy::Additive { v } => {
                        let hid = &hidden[(b * s + j) * a..(b * s + j + 1) * a];
                        for p in 0..a {
                            let t = hid[p];
                            d_v[p] += de * t;
                            let d_pre = de * v[p] * (1.0 - t * t);
                            dk[p] += d_pre;
                            d_q[p] += d_pre;
                        }
                    }
                    Energy::Dot => {
                        // e_j = q · k_j
                        let k = &memory.keys[(b * s + j) * a..(b * s + j + 1) * a];
                        let q = &query.values[(b + 1) * query.stride - a..(b + 1) * query.stride];
                        for p in 0..a {
                            dk[p] += de * q[p];
                            d_q[p] += de * k[p];
                        }
                    }
                }
            }
        });
}

/// The smallest norm a row is divided by (as `rnnsearch-model`'s cosine scorer clamps it).
pub const MIN_NORM: f32 = 1e-6;

/// Divides each row of `x` (rows of `width`) by max(|row|, [`MIN_NORM`]); returns the divisors.
pub fn normalize_rows(x: &mut [f32], width: usize) -> Vec<f32> {
    x.chunks_exact_mut(width)
        .map(|row| {
            let norm = dot(row, row).sqrt().max(MIN_NORM);
            row.iter_mut().for_each(|v| *v /= norm);
            norm
        })
        .collect()
}

/// ∂L/∂x from ∂L/∂x̂, x̂ = x / max(|x|, ε) being `normalized` with divisors `norms`:
/// (∂x̂ − x̂ (x̂ · ∂x̂)) / |x| where |x| > ε, ∂x̂ / ε where the clamp held.
pub fn normalize_rows_backward(
    normalized: &[f32],
    norms: &[f32],
    d_normalized: &[f32],
    width: usize,
) -> Vec<f32> {
    let mut d = vec![0.0; normalized.len()];
    for (r, row) in d.chunks_exact_mut(width).enumerate() {
        let (x, dx) = (
            &normalized[r * width..(r + 1) * width],
            &d_normalized[r * width..(r + 1) * width],
        );
        let norm = norms[r];
        let along = if norm > MIN_NORM { dot(x, dx) } else { 0.0 };
        for p in 0..width {
            row[p] = (dx[p] - x[p] * along) / norm;
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{check, uniform, weighted_sum};

    /// ∂L/∂h_j, ∂L/∂k_j, ∂L/∂q and (additive) ∂L/∂v_a with L = Σ r ⊙ c_i, for both energy
    /// functions, over sentences of different lengths (padding must get no gradient).
    #[test]
    fn backward_matches_finite_differences() {
        for additive in [true, false] {
            let name = |what: &str| {
                format!(
                    "attention ({}) {what}",
                    if additive { "additive" } else { "dot" }
                )
            };
            let shape = Shape {
                batch: 2,
                src_len: 4,
                d_annotation: 6,
                d_attention: 3,
            };
            let (b, s, h2, a) = (2, 4, 6, 3);
            let lengths = [4, 2];
            let stride = a + 2; // the query sits at the end of each row
            let mut annotations = uniform(b * s * h2, 1.0, 1);
            let mut keys = uniform(b * s * a, 1.0, 2);
            let mut query = uniform(b * stride, 1.0, 3);
            let mut v = if additive {
                uniform(a, 1.0, 4)
            } else {
                Vec::new()
            };
            let hidden_len = if additive { b * s * a } else { 0 };
            let r = uniform(b * h2, 1.0, 5);
            let energy_of = |v: &[f32]| -> Vec<f32> { v.to_vec() };
            let run = |annotations: &[f32], keys: &[f32], query: &[f32], v: &[f32]| {
                let memory = Memory {
                    shape,
                    annotations,
                    keys,
                    lengths: &lengths,
                };
                let (mut hidden, mut alignment, mut context) =
                    (vec![0.0; hidden_len], vec![0.0; b * s], vec![0.0; b * h2]);
                let out = Attended {
                    hidden: &mut hidden,
                    alignment: &mut alignment,
                    context: &mut context,
                };
                let query = Query {
                    values: query,
                    stride,
                };
                let energy = if additive {
                    Energy::Additive { v }
                } else {
                    Energy::Dot
                };
                forward(&memory, query, energy, out);
                (hidden, alignment, context)
            };
            let (hidden, alignment, _) = run(&annotations, &keys, &query, &v);
            let mut d_annotations = vec![0.0; b * s * h2];
            let mut d_keys = vec![0.0; b * s * a];
            let mut d_query = vec![0.0; b * stride];
            let mut d_energy_rows = vec![0.0; if additive { b * a } else { 0 }];
            let memory = Memory {
                shape,
                annotations: &annotations,
                keys: &keys,
                lengths: &lengths,
            };
            let grads = AttentionGrads {
                d_annotations: &mut d_annotations,
                d_keys: &mut d_keys,
                d_query: &mut d_query,
                query_stride: stride,
                d_energy: &mut d_energy_rows,
            };
            let saved = Saved {
                hidden: &hidden,
                alignment: &alignment,
                query: Query {
                    values: &query,
                    stride,
                },
            };
            let v0 = energy_of(&v);
            let energy = if additive {
                Energy::Additive { v: &v0 }
            } else {
                Energy::Dot
            };
            backward(&memory, energy, saved, &r, grads);

            let (h0, k0, q0) = (annotations.clone(), keys.clone(), query.clone());
            let loss = |c: (Vec<f32>, Vec<f32>, Vec<f32>)| weighted_sum(&r, &c.2);
            check(
                &name("annotations"),
                &mut annotations,
                &d_annotations,
                48,
                |h| loss(run(h, &k0, &q0, &v0)),
            );
            check(&name("keys"), &mut keys, &d_keys, 24, |k| {
                loss(run(&h0, k, &q0, &v0))
            });
            check(&name("query"), &mut query, &d_query, 10, |q| {
                loss(run(&h0, &k0, q, &v0))
            });
            if additive {
                let d_energy: Vec<f32> = (0..a)
                    .map(|p| d_energy_rows[p] + d_energy_rows[a + p])
                    .collect();
                check(&name("energy"), &mut v, &d_energy, 3, |v| {
                    loss(run(&h0, &k0, &q0, v))
                });
            }
        }
    }
}

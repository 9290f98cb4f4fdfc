//! The decoder's recurrence and its backward pass through time.
//!
//! At step i: [U s_{i-1} + c | W_a s_{i-1}] in one matmul (W_a only for the additive scorer);
//! c_i and α_i from the alignment model, whose query is W_a s_{i-1}, s_{i-1} (dot, general) or
//! τ s_{i-1}/|s_{i-1}| (cosine); s_i = GRU(s_{i-1}, [E y_{i-1}; c_i]), where the E y_{i-1} part
//! (`input_terms`) was computed for all positions before the loop. Buffers are time-major,
//! `[tgt_len, batch, ·]`.

use crate::attention::{
    self, normalize_rows, normalize_rows_backward, Attended, AttentionGrads, Energy, Memory, Query,
    Saved, Shape,
};
use crate::cell::{self, memory_len, StepCache};
use crate::linalg::{add_column_sums, matmul, Layout};
use crate::packed::{affine, fuse_recurrent, PackedDecoder};
use crate::{CellGrads, Dims, Scorer, Weights};

/// The alignment model's energy function for `weights`.
fn energy<'w>(weights: &Weights<'w>, dims: &Dims) -> Energy<'w> {
    match dims.scorer {
        Scorer::Additive => Energy::Additive { v: weights.energy },
        _ => Energy::Dot,
    }
}

/// τ of the cosine scorer: exp(log τ) when learned, else the fixed value.
fn temperature(weights: &Weights, dims: &Dims) -> f32 {
    match dims.scorer {
        Scorer::Cosine { learned: true } => weights.log_temperature[0].exp(),
        _ => weights.fixed_temperature,
    }
}

/// The cosine scorer's queries τ ŝ, ŝ = s / max(|s|, ε), for states `s` (rows of `m`): the
/// queries, ŝ and the divisors.
fn cosine_queries(s: &[f32], m: usize, tau: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut unit = s.to_vec();
    let norms = normalize_rows(&mut unit, m);
    let queries = unit.iter().map(|v| tau * v).collect();
    (queries, unit, norms)
}

/// The recurrence, kept for the backward pass.
pub struct DecoderCache {
    /// s_0 .. s_T, `[T + 1, batch, m]`.
    pub states: Vec<f32>,
    /// The LSTM's memory cells beside s_0 .. s_T (c_0 = 0), `[T + 1, batch, m]`; empty for
    /// the GRU.
    pub cells: Vec<f32>,
    /// c_1 .. c_T, `[T, batch, 2n]`.
    pub contexts: Vec<f32>,
    /// α, `[T, batch, src_len]`.
    pub alignment: Vec<f32>,
    /// tanh(W_a s_{i-1} + U_a h_j), `[T, batch, src_len, a]`.
    hidden: Vec<f32>,
    steps: Vec<StepCache>,
    /// [U | W_a], `[m, G·m + a]`.
    fused: Vec<f32>,
}

/// Gradients the recurrence passes back to the rest of the model.
pub struct DecoderGrads {
    /// ∂L/∂s_0, `[batch, m]`.
    pub initial_state: Vec<f32>,
    /// ∂L/∂(W_y E y_{i-1} + b), `[T, batch, G·m]`.
    pub input_terms: Vec<f32>,
}

/// Where one step of the recurrence writes: s_i (`[batch, m]`), the LSTM's memory cell beside
/// it (`[batch, m]`, empty for the GRU), c_i (`[batch, 2n]`), α_i (`[batch, src_len]`), the
/// alignment model's hidden layer (`[batch, src_len, a]`), and what the cell's backward pass
/// needs.
pub struct StepOut<'a> {
    pub s_next: &'a mut [f32],
    pub cell_next: &'a mut [f32],
    pub context: &'a mut [f32],
    pub alignment: &'a mut [f32],
    pub hidden: &'a mut [f32],
    pub cache: &'a mut StepCache,
}

/// One step of the recurrence at a time, with its buffers: [U s_{i-1} + c | W_a s_{i-1}] in one
/// product, the alignment model, then the cell.
pub struct Stepper {
    scorer: Scorer,
    temperature: f32,
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
        let (m, a, gm) = (
            dims.decoder_hidden,
            dims.query_width(),
            dims.gates() * dims.decoder_hidden,
        );
        let width = gm + a;
        let mut fused_bias = weights.decoder.c.to_vec();
        fused_bias.resize(width, 0.0);
        Self {
            scorer: dims.scorer,
            temperature: temperature(weights, dims),
            fused: fuse_recurrent(weights.decoder.u, weights.query, m, a),
            fused_bias,
            shape: Shape {
                batch,
                src_len,
                d_annotation: 2 * dims.hidden,
                d_attention: dims.key_width(),
            },
            m,
            e: dims.embedding,
            projected: vec![0.0; batch * width],
            recurrent: vec![0.0; batch * gm],
            input: vec![0.0; batch * gm],
        }
    }

    /// s_i from s_{i-1} (`s`, `[batch, m]`, with the LSTM's memory cell `cell`) and the
    /// embedding side of the cell's input (`input_terms`, `[batch, G·m]`), attending over
    /// `memory`; writes `out`. `packed`: the decoder's weights packed for few rows, under the
    /// search.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        weights: &Weights,
        packed: Option<&PackedDecoder>,
        memory: &Memory,
        s: &[f32],
        cell: &[f32],
        input_terms: &[f32],
        out: StepOut,
    ) {
        let StepOut {
            s_next,
            cell_next,
            context,
            alignment,
            hidden,
            cache,
        } = out;
        let (m, e) = (self.m, self.e);
        let width = self.fused_bias.len();
        // The batch may shrink between steps (finished sentences leave a search).
        let batch = s.len() / m;
        let gm = input_terms.len() / batch.max(1);
        self.shape.batch = batch;
        self.projected.resize(batch * width, 0.0);
        self.recurrent.resize(batch * gm, 0.0);
        self.input.resize(batch * gm, 0.0);
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
        let memory = Memory {
            shape: self.shape,
            ..*memory
        };
        let cosine;
        let query = match self.scorer {
            Scorer::Additive => Query {
                values: &self.projected,
                stride: width,
            },
            Scorer::Dot | Scorer::General => Query {
                values: s,
                stride: m,
            },
            Scorer::Cosine { .. } => {
                cosine = cosine_queries(s, m, self.temperature).0;
                Query {
                    values: &cosine,
                    stride: m,
                }
            }
        };
        let attended = Attended {
            hidden,
            alignment,
            context: &mut *context,
        };
        let energy = match self.scorer {
            Scorer::Additive => Energy::Additive { v: weights.energy },
            _ => Energy::Dot,
        };
        attention::forward(&memory, query, energy, attended);
        self.input.copy_from_slice(input_terms);
        affine(
            batch,
            h2,
            gm,
            context,
            &weights.decoder.w[e * gm..],
            packed.map(|p| &p.context),
            None,
            &mut self.input,
            true,
        );
        for b in 0..batch {
            self.recurrent[b * gm..(b + 1) * gm]
                .copy_from_slice(&self.projected[b * width..b * width + gm]);
        }
        let (x, u) = (&self.input, &self.recurrent);
        cell::forward(x, u, s, cell, s_next, cell_next, cache, m);
    }
}

/// Runs the decoder from `initial_state` (`[batch, m]`; an LSTM's memory cell starts at 0) over
/// as many steps as `input_terms` (`[T, batch, G·m]`) has, attending over `memory`.
pub fn forward(
    weights: &Weights,
    dims: &Dims,
    memory: &Memory,
    initial_state: &[f32],
    input_terms: &[f32],
) -> DecoderCache {
    let (batch, src_len) = (memory.shape.batch, memory.shape.src_len);
    let (m, h2, a) = (dims.decoder_hidden, 2 * dims.hidden, dims.query_width());
    let gm = dims.gates() * m;
    let tgt_len = input_terms.len() / (batch * gm).max(1);
    let mut stepper = Stepper::new(weights, dims, batch, src_len);
    let mut states = vec![0.0; (tgt_len + 1) * batch * m];
    states[..batch * m].copy_from_slice(initial_state);
    let cell_len = memory_len(dims.cell, batch, m);
    let mut cells = vec![0.0; (tgt_len + 1) * cell_len];
    let mut contexts = vec![0.0; tgt_len * batch * h2];
    let mut alignment = vec![0.0; tgt_len * batch * src_len];
    let mut hidden = vec![0.0; tgt_len * batch * src_len * a];
    let mut steps = Vec::with_capacity(tgt_len);
    for i in 0..tgt_len {
        let (before, after) = states.split_at_mut((i + 1) * batch * m);
        let (cells_before, cells_after) = cells.split_at_mut((i + 1) * cell_len);
        let mut cache = StepCache::new(dims.cell, batch, m);
        let out = StepOut {
            s_next: &mut after[..batch * m],
            cell_next: &mut cells_after[..cell_len],
            context: &mut contexts[i * batch * h2..(i + 1) * batch * h2],
            alignment: &mut alignment[i * batch * src_len..(i + 1) * batch * src_len],
            hidden: &mut hidden[i * batch * src_len * a..(i + 1) * batch * src_len * a],
            cache: &mut cache,
        };
        stepper.step(
            weights,
            None,
            memory,
            &before[i * batch * m..],
            &cells_before[i * cell_len..],
            &input_terms[i * batch * gm..(i + 1) * batch * gm],
            out,
        );
        steps.push(cache);
    }
    DecoderCache {
        states,
        cells,
        contexts,
        alignment,
        hidden,
        steps,
        fused: stepper.fused,
    }
}

/// What the output layer sends back to s_i and c_i, `[T, batch, m]` and `[T, batch, 2n]`.
pub struct DecoderOutputGrads<'a> {
    pub d_states: &'a [f32],
    pub d_contexts: &'a [f32],
}

/// Where the recurrence's backward pass accumulates: ∂L/∂h_j and ∂L/∂k_j
/// (`[batch, src_len, ·]`), the decoder cell's U, c and context rows of W, W_a, v_a and log τ.
pub struct DecoderWeightGrads<'a> {
    pub d_annotations: &'a mut [f32],
    pub d_keys: &'a mut [f32],
    pub gru: CellGrads<'a>,
    pub query: &'a mut [f32],
    pub energy: &'a mut [f32],
    pub log_temperature: &'a mut [f32],
}

/// Back-propagates through the recurrence, last step first.
pub fn backward(
    weights: &Weights,
    dims: &Dims,
    cache: &DecoderCache,
    memory: &Memory,
    d_out: DecoderOutputGrads,
    grads: DecoderWeightGrads,
) -> DecoderGrads {
    let DecoderOutputGrads {
        d_states,
        d_contexts,
    } = d_out;
    let DecoderWeightGrads {
        d_annotations,
        d_keys,
        gru: grads,
        query: d_query,
        energy: d_energy,
        log_temperature: d_log_temperature,
    } = grads;
    let (batch, src_len) = (memory.shape.batch, memory.shape.src_len);
    let (m, a, h2, e) = (
        dims.decoder_hidden,
        dims.query_width(),
        2 * dims.hidden,
        dims.embedding,
    );
    let tau = temperature(weights, dims);
    let mut d_tau = 0.0f64;
    let mut d_q = vec![0.0; if a == 0 { batch * m } else { 0 }];
    let tgt_len = cache.steps.len();
    let gm = dims.gates() * m;
    let width = gm + a;
    let context_weight = &weights.decoder.w[e * gm..];
    let mut d_projected = vec![0.0; tgt_len * batch * width];
    let mut d_inputs = vec![0.0; tgt_len * batch * gm];
    let mut d_recurrent = vec![0.0; batch * gm];
    // ∂L/∂ of the LSTM's memory cell, carried from step to step (empty for the GRU)
    let mut d_cell = vec![0.0; memory_len(dims.cell, batch, m)];
    let mut d_context = vec![0.0; batch * h2];
    let mut d_energy_rows = vec![0.0; batch * a];
    let mut ds = vec![0.0; batch * m];
    for i in (0..tgt_len).rev() {
        ds.iter_mut()
            .zip(&d_states[i * batch * m..(i + 1) * batch * m])
            .for_each(|(d, g)| *d += g);
        let s = &cache.states[i * batch * m..(i + 1) * batch * m];
        let d_input = &mut d_inputs[i * batch * gm..(i + 1) * batch * gm];
        let step = &cache.steps[i];
        cell::backward(&mut ds, &mut d_cell, s, step, d_input, &mut d_recurrent, m);
        let d_proj = &mut d_projected[i * batch * width..(i + 1) * batch * width];
        for b in 0..batch {
            d_proj[b * width..b * width + gm].copy_from_slice(&d_recurrent[b * gm..(b + 1) * gm]);
        }
        d_context.copy_from_slice(&d_contexts[i * batch * h2..(i + 1) * batch * h2]);
        matmul(
            Layout::NT,
            batch,
            gm,
            h2,
            d_input,
            context_weight,
            &mut d_context,
            true,
        );
        // the query of step i, as the forward pass made it
        let s_prev = &cache.states[i * batch * m..(i + 1) * batch * m];
        let cosine =
            matches!(dims.scorer, Scorer::Cosine { .. }).then(|| cosine_queries(s_prev, m, tau));
        let query = match (&cosine, dims.scorer) {
            (_, Scorer::Additive) => Query {
                values: &[],
                stride: 1,
            },
            (Some((queries, _, _)), _) => Query {
                values: queries,
                stride: m,
            },
            (None, _) => Query {
                values: s_prev,
                stride: m,
            },
        };
        let saved = Saved {
            hidden: &cache.hidden[i * batch * src_len * a..(i + 1) * batch * src_len * a],
            alignment: &cache.alignment[i * batch * src_len..(i + 1) * batch * src_len],
            query,
        };
        let (d_query_rows, query_stride) = if a > 0 {
            (&mut *d_proj, width)
        } else {
            (d_q.as_mut_slice(), m)
        };
        let step_grads = AttentionGrads {
            d_annotations: &mut *d_annotations,
            d_keys: &mut *d_keys,
            d_query: d_query_rows,
            query_stride,
            d_energy: &mut d_energy_rows,
        };
        attention::backward(memory, energy(weights, dims), saved, &d_context, step_grads);
        match &cosine {
            // q = τ ŝ: ∂τ = Σ ŝ · ∂q, ∂ŝ = τ ∂q, then back through the normalisation
            Some((_, unit, norms)) => {
                d_tau += unit
                    .iter()
                    .zip(&d_q)
                    .map(|(u, d)| (u * d) as f64)
                    .sum::<f64>();
                let d_unit: Vec<f32> = d_q.iter().map(|d| tau * d).collect();
                let d_s = normalize_rows_backward(unit, norms, &d_unit, m);
                ds.iter_mut().zip(&d_s).for_each(|(d, g)| *d += g);
            }
            None if a == 0 => ds.iter_mut().zip(&d_q).for_each(|(d, g)| *d += g),
            None => {}
        }
        // ∂L/∂s_{i-1} = (the cell's direct part) + [∂U s | ∂W_a s] [U | W_a]ᵀ
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
        grads.u[p * gm..(p + 1) * gm]
            .iter_mut()
            .zip(&row[..gm])
            .for_each(|(g, v)| *g += v);
        d_query[p * a..(p + 1) * a]
            .iter_mut()
            .zip(&row[gm..])
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
        gm,
        &cache.contexts,
        &d_inputs,
        &mut grads.w[e * gm..],
        true,
    );
    add_column_sums(&d_energy_rows, d_energy);
    if let [d_log_tau] = d_log_temperature {
        // τ = exp(log τ)
        *d_log_tau += (d_tau * tau as f64) as f32;
    }
    DecoderGrads {
        initial_state: ds,
        input_terms: d_inputs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{check, small_dims, uniform, weighted_sum, OwnedWeights};
    use crate::CellKind;

    /// The recurrence's gradients (s_0, the input terms, h_j, the keys, U, c, the context rows
    /// of W, and W_a and v_a or log τ) with L = Σ r ⊙ s_i + Σ r' ⊙ c_i over three steps, for
    /// every scorer.
    #[test]
    fn backward_matches_finite_differences() {
        for (scorer, cell) in [
            (Scorer::Additive, CellKind::Gru),
            (Scorer::General, CellKind::Gru),
            (Scorer::Cosine { learned: true }, CellKind::Lstm),
            (Scorer::Dot, CellKind::Gru),
            (Scorer::Additive, CellKind::Lstm),
        ] {
            recurrence_matches_finite_differences(scorer, cell);
        }
    }

    fn recurrence_matches_finite_differences(scorer: Scorer, cell: CellKind) {
        let name = |what: &str| format!("decoder ({scorer:?}, {cell:?}) {what}");
        // dot needs m = 2n
        let dims = Dims {
            scorer,
            cell,
            decoder_hidden: if scorer == Scorer::Dot { 8 } else { 5 },
            ..small_dims(1)
        };
        let (m, h2, e) = (dims.decoder_hidden, 8, 3);
        let gm = dims.gates() * m;
        let (a, k) = (dims.query_width(), dims.key_width());
        let (batch, src_len, tgt_len) = (2, 4, 3);
        let lengths = [4, 2];
        let mut owned = OwnedWeights::random(dims, 7);
        let mut annotations = uniform(batch * src_len * h2, 1.0, 1);
        for (p, row) in annotations.chunks_exact_mut(h2).enumerate() {
            if p % src_len >= lengths[p / src_len] {
                row.fill(0.0);
            }
        }
        let mut keys = uniform(batch * src_len * k, 1.0, 2);
        let mut initial = uniform(batch * m, 1.0, 3);
        let mut input_terms = uniform(tgt_len * batch * gm, 1.0, 4);
        let r_states = uniform(tgt_len * batch * m, 1.0, 5);
        let r_contexts = uniform(tgt_len * batch * h2, 1.0, 6);
        let shape = Shape {
            batch,
            src_len,
            d_annotation: h2,
            d_attention: k,
        };
        let run = |w: &Weights, h: &[f32], k: &[f32], s0: &[f32], x: &[f32]| {
            let memory = Memory {
                shape,
                annotations: h,
                keys: k,
                lengths: &lengths,
            };
            let cache = forward(w, &dims, &memory, s0, x);
            weighted_sum(&r_states, &cache.states[batch * m..])
                + weighted_sum(&r_contexts, &cache.contexts)
        };

        let weights = owned.weights();
        let memory = Memory {
            shape,
            annotations: &annotations,
            keys: &keys,
            lengths: &lengths,
        };
        let cache = forward(&weights, &dims, &memory, &initial, &input_terms);
        let mut d_annotations = vec![0.0; annotations.len()];
        let mut d_keys = vec![0.0; keys.len()];
        let mut gru_flat = vec![0.0; CellGrads::len(dims.gates(), e + h2, m)];
        let mut gru = CellGrads::split(&mut gru_flat, dims.gates(), e + h2, m);
        let (mut d_query, mut d_energy) = (vec![0.0; m * a], vec![0.0; a]);
        let mut d_log_temperature = vec![0.0; dims.temperatures()];
        let d_out = DecoderOutputGrads {
            d_states: &r_states,
            d_contexts: &r_contexts,
        };
        let grads = DecoderWeightGrads {
            d_annotations: &mut d_annotations,
            d_keys: &mut d_keys,
            gru: gru.reborrow(),
            query: &mut d_query,
            energy: &mut d_energy,
            log_temperature: &mut d_log_temperature,
        };
        let dg = backward(&weights, &dims, &cache, &memory, d_out, grads);
        drop(weights);

        let (h0, k0, s0, x0) = (
            annotations.clone(),
            keys.clone(),
            initial.clone(),
            input_terms.clone(),
        );
        let w = owned.weights();
        check(&name("s_0"), &mut initial, &dg.initial_state, 10, |s| {
            run(&w, &h0, &k0, s, &x0)
        });
        check(
            &name("input terms"),
            &mut input_terms,
            &dg.input_terms,
            30,
            |x| run(&w, &h0, &k0, &s0, x),
        );
        check(
            &name("annotations"),
            &mut annotations,
            &d_annotations,
            30,
            |h| run(&w, h, &k0, &s0, &x0),
        );
        check(&name("keys"), &mut keys, &d_keys, 24, |k| {
            run(&w, &h0, k, &s0, &x0)
        });
        drop(w);
        // (the weight's name in the layout, the part checked, the gradient of that part)
        let context_rows = e * gm..(e + h2) * gm;
        let weight_checks = [
            ("U", "decoder.u", 0..m * gm, gru.u.to_vec()),
            ("c", "decoder.c", 0..gm, gru.c.to_vec()),
            (
                "W (context rows)",
                "decoder.w",
                context_rows.clone(),
                gru.w[context_rows].to_vec(),
            ),
            ("W_a", "query", 0..m * a, d_query),
            ("v_a", "energy", 0..a, d_energy),
            (
                "log τ",
                "log_temperature",
                0..dims.temperatures(),
                d_log_temperature,
            ),
        ];
        for (what, index, range, analytic) in weight_checks {
            if range.is_empty() {
                continue;
            }
            let mut part = owned.values_mut(index)[range.clone()].to_vec();
            check(&name(what), &mut part, &analytic, 24, |v| {
                owned.values_mut(index)[range.clone()].copy_from_slice(v);
                let loss = run(&owned.weights(), &h0, &k0, &s0, &x0);
                loss
            });
            owned.values_mut(index)[range].copy_from_slice(&part);
        }
    }
}

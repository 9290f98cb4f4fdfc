//! The bidirectional encoder: annotations h_j = [→h_j; ←h_j], and the derivatives through it.
//!
//! The backward RNN reads each sentence reversed within its own length (its first step is the
//! sentence's last real token), so padding never reaches a real annotation. Buffers are
//! batch-major, `[batch, src_len, ·]`.

use crate::cell::{self, memory_len, StepCache};
use crate::linalg::{add_bias, add_column_sums, matmul, Layout};
use crate::{CellGrads, CellKind, CellWeights};

/// The position RNN `direction` reads at step t of sentence b.
fn position(direction: usize, t: usize, length: usize) -> usize {
    if direction == 1 && t < length {
        length - 1 - t
    } else {
        t
    }
}

/// One direction of one layer, kept for the backward pass.
struct DirectionCache {
    /// h before each step and after the last, time-major `[src_len + 1, batch, n]`.
    states: Vec<f32>,
    steps: Vec<StepCache>,
}

/// One layer, kept for the backward pass.
pub struct LayerCache {
    kind: CellKind,
    /// The layer's input (after dropout), `[batch, src_len, d_in]`.
    input: Vec<f32>,
    d_in: usize,
    directions: Vec<DirectionCache>,
}

/// Runs one bidirectional layer of `kind` cells over `input` (`[batch, src_len, d_in]`).
///
/// Returns `[batch, src_len, 2n]` and what the backward pass needs.
pub fn layer_forward(
    kind: CellKind,
    weights: &[CellWeights; 2],
    input: Vec<f32>,
    d_in: usize,
    lengths: &[usize],
    src_len: usize,
    n: usize,
) -> (Vec<f32>, LayerCache) {
    let batch = lengths.len();
    let (rows, g) = (batch * src_len, kind.gates());
    let mut output = vec![0.0; rows * 2 * n];
    let mut directions = Vec::with_capacity(2);
    let mut projected = vec![0.0; rows * g * n];
    let mut x_t = vec![0.0; batch * g * n];
    let mut u_t = vec![0.0; batch * g * n];
    for (direction, w) in weights.iter().enumerate() {
        // W x_j + b for every position at once
        matmul(
            Layout::NN,
            rows,
            d_in,
            g * n,
            &input,
            w.w,
            &mut projected,
            false,
        );
        add_bias(&mut projected, w.b);
        let mut states = vec![0.0; (src_len + 1) * batch * n];
        let memory = memory_len(kind, batch, n);
        // the LSTM's memory c before each step and after the last (empty for the GRU)
        let mut memories = vec![0.0; (src_len + 1) * memory];
        let mut steps = Vec::with_capacity(src_len);
        for t in 0..src_len {
            let (before, after) = states.split_at_mut((t + 1) * batch * n);
            let h = &before[t * batch * n..];
            let h_next = &mut after[..batch * n];
            let (c, c_next) = memories.split_at_mut((t + 1) * memory);
            matmul(Layout::NN, batch, n, g * n, h, w.u, &mut u_t, false);
            add_bias(&mut u_t, w.c);
            for (b, &len) in lengths.iter().enumerate() {
                let j = position(direction, t, len);
                let from = (b * src_len + j) * g * n;
                x_t[b * g * n..(b + 1) * g * n].copy_from_slice(&projected[from..from + g * n]);
            }
            let mut cache = StepCache::new(kind, batch, n);
            let (c, c_next) = (&c[t * memory..], &mut c_next[..memory]);
            cell::forward(&x_t, &u_t, h, c, h_next, c_next, &mut cache, n);
            for (b, &len) in lengths.iter().enumerate() {
                let j = position(direction, t, len);
                let to = (b * src_len + j) * 2 * n + direction * n;
                output[to..to + n].copy_from_slice(&h_next[b * n..(b + 1) * n]);
            }
            steps.push(cache);
        }
        directions.push(DirectionCache { states, steps });
    }
    (
        output,
        LayerCache {
            kind,
            input,
            d_in,
            directions,
        },
    )
}

/// Back-propagates ∂L/∂output (`[batch, src_len, 2n]`) through one layer: accumulates the
/// layer's weight gradients into `grads` and returns ∂L/∂input (`[batch, src_len, d_in]`).
pub fn layer_backward(
    weights: &[CellWeights; 2],
    cache: &LayerCache,
    d_output: &[f32],
    grads: &mut [CellGrads; 2],
    lengths: &[usize],
    src_len: usize,
    n: usize,
) -> Vec<f32> {
    let batch = lengths.len();
    let (rows, gates) = (batch * src_len, cache.kind.gates());
    let d_in = cache.d_in;
    let mut d_input = vec![0.0; rows * d_in];
    let mut dx_t = vec![0.0; batch * gates * n];
    for (direction, (w, g)) in weights.iter().zip(grads.iter_mut()).enumerate() {
        let dir = &cache.directions[direction];
        let mut d_projected = vec![0.0; rows * gates * n];
        // ∂L/∂u for every step, time-major, for one weight-gradient product at the end
        let mut du = vec![0.0; src_len * batch * gates * n];
        let mut dh = vec![0.0; batch * n];
        let mut dc = vec![0.0; memory_len(cache.kind, batch, n)];
        for t in (0..src_len).rev() {
            for (b, &len) in lengths.iter().enumerate() {
                let j = position(direction, t, len);
                let from = (b * src_len + j) * 2 * n + direction * n;
                dh[b * n..(b + 1) * n]
                    .iter_mut()
                    .zip(&d_output[from..from + n])
                    .for_each(|(a, v)| *a += v);
            }
            let h = &dir.states[t * batch * n..(t + 1) * batch * n];
            let du_t = &mut du[t * batch * gates * n..(t + 1) * batch * gates * n];
            cell::backward(&mut dh, &mut dc, h, &dir.steps[t], &mut dx_t, du_t, n);
            for (b, &len) in lengths.iter().enumerate() {
                let j = position(direction, t, len);
                let to = (b * src_len + j) * gates * n;
                d_projected[to..to + gates * n]
                    .copy_from_slice(&dx_t[b * gates * n..(b + 1) * gates * n]);
            }
            // ∂L/∂h_{t-1} = (the cell's direct part) + du Uᵀ
            matmul(Layout::NT, batch, gates * n, n, du_t, w.u, &mut dh, true);
        }
        let states_before = &dir.states[..src_len * batch * n];
        matmul(
            Layout::TN,
            n,
            src_len * batch,
            gates * n,
            states_before,
            &du,
            g.u,
            true,
        );
        add_column_sums(&du, g.c);
        matmul(
            Layout::TN,
            d_in,
            rows,
            gates * n,
            &cache.input,
            &d_projected,
            g.w,
            true,
        );
        add_column_sums(&d_projected, g.b);
        matmul(
            Layout::NT,
            rows,
            gates * n,
            d_in,
            &d_projected,
            w.w,
            &mut d_input,
            true,
        );
    }
    d_input
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{check, uniform, weighted_sum};

    /// ∂L/∂input and every weight gradient of both directions of one layer, with L = Σ r ⊙ h
    /// over the real positions of sentences of different lengths, for both cells.
    #[test]
    fn layer_backward_matches_finite_differences() {
        for kind in [CellKind::Gru, CellKind::Lstm] {
            layer_matches_finite_differences(kind);
        }
    }

    fn layer_matches_finite_differences(kind: CellKind) {
        let (d_in, n, src_len, g) = (3, 4, 5, kind.gates());
        let lengths = [5, 3];
        let batch = lengths.len();
        let values: Vec<Vec<f32>> = (0..8)
            .map(|i| {
                let len = [d_in * g * n, g * n, n * g * n, g * n][i % 4];
                uniform(len, 0.5, 10 + i as u64)
            })
            .collect();
        let mut input = uniform(batch * src_len * d_in, 1.0, 1);
        let mut r = uniform(batch * src_len * 2 * n, 1.0, 2);
        for (p, row) in r.chunks_exact_mut(2 * n).enumerate() {
            if p % src_len >= lengths[p / src_len] {
                row.fill(0.0);
            }
        }
        let run = |values: &[Vec<f32>], input: &[f32]| {
            let cell = |i: usize| CellWeights {
                w: &values[i],
                b: &values[i + 1],
                u: &values[i + 2],
                c: &values[i + 3],
            };
            layer_forward(
                kind,
                &[cell(0), cell(4)],
                input.to_vec(),
                d_in,
                &lengths,
                src_len,
                n,
            )
        };
        let (_, cache) = run(&values, &input);
        let size = CellGrads::len(g, d_in, n);
        let mut flat = vec![0.0; 2 * size];
        let (forward, backward) = flat.split_at_mut(size);
        let mut grads = [
            CellGrads::split(forward, g, d_in, n),
            CellGrads::split(backward, g, d_in, n),
        ];
        let cell = |i: usize| CellWeights {
            w: &values[i],
            b: &values[i + 1],
            u: &values[i + 2],
            c: &values[i + 3],
        };
        let d_input = layer_backward(
            &[cell(0), cell(4)],
            &cache,
            &r,
            &mut grads,
            &lengths,
            src_len,
            n,
        );

        let v0 = values.clone();
        check(
            &format!("encoder ({kind:?}) input"),
            &mut input,
            &d_input,
            30,
            |x| weighted_sum(&r, &run(&v0, x).0),
        );
        for (i, name) in ["w", "b", "u", "c"].iter().enumerate() {
            for (direction, grad) in grads.iter().enumerate() {
                let analytic = [&grad.w, &grad.b, &grad.u, &grad.c][i].to_vec();
                let index = direction * 4 + i;
                let mut perturbed = values.clone();
                let mut own = perturbed[index].clone();
                check(
                    &format!("encoder ({kind:?}) direction {direction} {name}"),
                    &mut own,
                    &analytic,
                    24,
                    |v| {
                        perturbed[index].copy_from_slice(v);
                        weighted_sum(&r, &run(&perturbed, &input).0)
                    },
                );
            }
        }
    }
}

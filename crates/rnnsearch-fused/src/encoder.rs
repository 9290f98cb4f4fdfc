//! The bidirectional encoder: annotations h_j = [→h_j; ←h_j], and the derivatives through it.
//!
//! The backward RNN reads each sentence reversed within its own length (its first step is the
//! sentence's last real token), so padding never reaches a real annotation. Buffers are
//! batch-major, `[batch, src_len, ·]`.

use crate::gru::{self, StepCache};
use crate::linalg::{add_bias, add_column_sums, matmul, Layout};
use crate::{GruGrads, GruWeights};

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
    /// The layer's input (after dropout), `[batch, src_len, d_in]`.
    input: Vec<f32>,
    d_in: usize,
    directions: Vec<DirectionCache>,
}

/// Runs one bidirectional GRU layer over `input` (`[batch, src_len, d_in]`).
///
/// Returns `[batch, src_len, 2n]` and what the backward pass needs.
pub fn layer_forward(
    weights: &[GruWeights; 2],
    input: Vec<f32>,
    d_in: usize,
    lengths: &[usize],
    src_len: usize,
    n: usize,
) -> (Vec<f32>, LayerCache) {
    let batch = lengths.len();
    let rows = batch * src_len;
    let mut output = vec![0.0; rows * 2 * n];
    let mut directions = Vec::with_capacity(2);
    let mut projected = vec![0.0; rows * 3 * n];
    let mut x_t = vec![0.0; batch * 3 * n];
    let mut u_t = vec![0.0; batch * 3 * n];
    for (direction, w) in weights.iter().enumerate() {
        // W x_j + b for every position at once
        matmul(
            Layout::NN,
            rows,
            d_in,
            3 * n,
            &input,
            w.w,
            &mut projected,
            false,
        );
        add_bias(&mut projected, w.b);
        let mut states = vec![0.0; (src_len + 1) * batch * n];
        let mut steps = Vec::with_capacity(src_len);
        for t in 0..src_len {
            let (before, after) = states.split_at_mut((t + 1) * batch * n);
            let h = &before[t * batch * n..];
            let h_next = &mut after[..batch * n];
            matmul(Layout::NN, batch, n, 3 * n, h, w.u, &mut u_t, false);
            add_bias(&mut u_t, w.c);
            for (b, &len) in lengths.iter().enumerate() {
                let j = position(direction, t, len);
                let from = (b * src_len + j) * 3 * n;
                x_t[b * 3 * n..(b + 1) * 3 * n].copy_from_slice(&projected[from..from + 3 * n]);
            }
            let mut cache = StepCache::new(batch, n);
            gru::forward(&x_t, &u_t, h, h_next, &mut cache, n);
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
            input,
            d_in,
            directions,
        },
    )
}

/// Back-propagates ∂L/∂output (`[batch, src_len, 2n]`) through one layer: accumulates the
/// layer's weight gradients into `grads` and returns ∂L/∂input (`[batch, src_len, d_in]`).
pub fn layer_backward(
    weights: &[GruWeights; 2],
    cache: &LayerCache,
    d_output: &[f32],
    grads: &mut [GruGrads; 2],
    lengths: &[usize],
    src_len: usize,
    n: usize,
) -> Vec<f32> {
    let batch = lengths.len();
    let rows = batch * src_len;
    let d_in = cache.d_in;
    let mut d_input = vec![0.0; rows * d_in];
    let mut dx_t = vec![0.0; batch * 3 * n];
    for (direction, (w, g)) in weights.iter().zip(grads.iter_mut()).enumerate() {
        let dir = &cache.directions[direction];
        let mut d_projected = vec![0.0; rows * 3 * n];
        // ∂L/∂u for every step, time-major, for one weight-gradient product at the end
        let mut du = vec![0.0; src_len * batch * 3 * n];
        let mut dh = vec![0.0; batch * n];
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
            let du_t = &mut du[t * batch * 3 * n..(t + 1) * batch * 3 * n];
            gru::backward(&mut dh, h, &dir.steps[t], &mut dx_t, du_t, n);
            for (b, &len) in lengths.iter().enumerate() {
                let j = position(direction, t, len);
                let to = (b * src_len + j) * 3 * n;
                d_projected[to..to + 3 * n].copy_from_slice(&dx_t[b * 3 * n..(b + 1) * 3 * n]);
            }
            // ∂L/∂h_{t-1} = z ⊙ dh + du Uᵀ
            matmul(Layout::NT, batch, 3 * n, n, du_t, w.u, &mut dh, true);
        }
        let states_before = &dir.states[..src_len * batch * n];
        matmul(
            Layout::TN,
            n,
            src_len * batch,
            3 * n,
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
            3 * n,
            &cache.input,
            &d_projected,
            g.w,
            true,
        );
        add_column_sums(&d_projected, g.b);
        matmul(
            Layout::NT,
            rows,
            3 * n,
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
    /// over the real positions of sentences of different lengths.
    #[test]
    fn layer_backward_matches_finite_differences() {
        let (d_in, n, src_len) = (3, 4, 5);
        let lengths = [5, 3];
        let batch = lengths.len();
        let values: Vec<Vec<f32>> = (0..8)
            .map(|i| {
                let len = [d_in * 3 * n, 3 * n, n * 3 * n, 3 * n][i % 4];
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
            let gru = |i: usize| GruWeights {
                w: &values[i],
                b: &values[i + 1],
                u: &values[i + 2],
                c: &values[i + 3],
            };
            layer_forward(
                &[gru(0), gru(4)],
                input.to_vec(),
                d_in,
                &lengths,
                src_len,
                n,
            )
        };
        let (_, cache) = run(&values, &input);
        let size = GruGrads::len(d_in, n);
        let mut flat = vec![0.0; 2 * size];
        let (forward, backward) = flat.split_at_mut(size);
        let mut grads = [
            GruGrads::split(forward, d_in, n),
            GruGrads::split(backward, d_in, n),
        ];
        let gru = |i: usize| GruWeights {
            w: &values[i],
            b: &values[i + 1],
            u: &values[i + 2],
            c: &values[i + 3],
        };
        let d_input = layer_backward(
            &[gru(0), gru(4)],
            &cache,
            &r,
            &mut grads,
            &lengths,
            src_len,
            n,
        );

        let v0 = values.clone();
        check("encoder input", &mut input, &d_input, 30, |x| {
            weighted_sum(&r, &run(&v0, x).0)
        });
        for (i, name) in ["w", "b", "u", "c"].iter().enumerate() {
            for (direction, g) in grads.iter().enumerate() {
                let analytic = [&g.w, &g.b, &g.u, &g.c][i].to_vec();
                let index = direction * 4 + i;
                let mut perturbed = values.clone();
                let mut own = perturbed[index].clone();
                check(
                    &format!("encoder direction {direction} {name}"),
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

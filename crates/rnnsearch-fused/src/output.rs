//! The deep output, the vocabulary projection and the label-smoothed cross-entropy, for all
//! target positions of a batch at once:
//!
//! t_i = maxout(U_o s_i + C_o c_i + V_o E y_{i-1} + b_o), logits = W_o t_i + b,
//! ℓ_i = lse(logits) − (1 − ε) logit_{y_i} − ε · mean_v(logit_v).
//!
//! Maxout pairs unit k with unit k + l, as `rnnsearch-model` does.

use rayon::prelude::*;

use crate::linalg::{add_bias, add_column_sums, exp, matmul, max, sum, Layout};

/// What the backward pass needs.
pub struct OutputCache {
    /// [s_i; c_i; E y_{i-1}] per position, `[rows, m + 2n + E]`.
    features: Vec<f32>,
    d_features: usize,
    /// Which half won the maxout, per unit: `[rows, l]`.
    upper_won: Vec<bool>,
    /// t_i after dropout, `[rows, l]`.
    t: Vec<f32>,
    /// Dropout mask on t_i (scaled), when dropout is on.
    mask: Option<Vec<f32>>,
}

/// Loss terms of a batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct LossSums {
    /// Σ_r weights_r ℓ_r: the objective (the mean smoothed loss when the weights are 1/tokens).
    pub objective: f64,
    /// Σ over real positions of −log p(y_i).
    pub nll: f64,
}

/// Logits `[rows, V]` from `features` (`[rows, d_features]`).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    features: Vec<f32>,
    d_features: usize,
    deep_w: &[f32],
    deep_b: &[f32],
    out_w: &[f32],
    out_b: &[f32],
    l: usize,
    mask: Option<Vec<f32>>,
) -> (Vec<f32>, OutputCache) {
    let (mut t, upper_won) = maxout(&features, d_features, deep_w, deep_b, l);
    if let Some(mask) = &mask {
        t.iter_mut().zip(mask).for_each(|(t, m)| *t *= m);
    }
    let mut logits = Vec::new();
    project_into(&t, out_w, out_b, l, &mut logits);
    (
        logits,
        OutputCache {
            features,
            d_features,
            upper_won,
            t,
            mask,
        },
    )
}

/// Logits `[rows, V]` from `features`, written over `logits` (translation: no dropout, nothing
/// kept for a backward pass, and the caller's buffer reused from step to step).
#[allow(clippy::too_many_arguments)]
pub fn logits_into(
    features: &[f32],
    d_features: usize,
    deep_w: &[f32],
    deep_b: &[f32],
    out_w: &[f32],
    out_b: &[f32],
    l: usize,
    logits: &mut Vec<f32>,
) {
    let (t, _) = maxout(features, d_features, deep_w, deep_b, l);
    project_into(&t, out_w, out_b, l, logits);
}

/// t = maxout(features W + b) (`[rows, l]`) and, per unit, whether the upper half won.
fn maxout(
    features: &[f32],
    d_features: usize,
    deep_w: &[f32],
    deep_b: &[f32],
    l: usize,
) -> (Vec<f32>, Vec<bool>) {
    let rows = features.len() / d_features;
    let mut pre = vec![0.0; rows * 2 * l];
    matmul(
        Layout::NN,
        rows,
        d_features,
        2 * l,
        features,
        deep_w,
        &mut pre,
        false,
    );
    add_bias(&mut pre, deep_b);
    let mut t = vec![0.0; rows * l];
    let mut upper_won = vec![false; rows * l];
    for r in 0..rows {
        let p = &pre[r * 2 * l..(r + 1) * 2 * l];
        for k in 0..l {
            let upper = p[l + k] > p[k];
            upper_won[r * l + k] = upper;
            t[r * l + k] = if upper { p[l + k] } else { p[k] };
        }
    }
    (t, upper_won)
}

/// logits = t W_o + b over `logits`, resized to `[rows, V]`: a buffer kept from an earlier
/// call of the same size is overwritten rather than allocated (and zeroed by the kernel) anew.
fn project_into(t: &[f32], out_w: &[f32], out_b: &[f32], l: usize, logits: &mut Vec<f32>) {
    let rows = t.len() / l;
    let vocab = out_b.len();
    logits.resize(rows * vocab, 0.0);
    matmul(Layout::NN, rows, l, vocab, t, out_w, logits, false);
    add_bias(logits, out_b);
}

/// Computes L = Σ_r weights_r ℓ_r and Σ −log p(y_r) over the rows with a non-zero weight,
/// and replaces `logits` with ∂L/∂logits.
pub fn loss_and_gradient(
    logits: &mut [f32],
    targets: &[usize],
    weights: &[f32],
    smoothing: f32,
) -> LossSums {
    let vocab = logits.len() / targets.len();
    let uniform = smoothing / vocab as f32;
    logits
        .par_chunks_mut(vocab)
        .zip(targets.par_iter().zip(weights.par_iter()))
        .map(|(x, (&y, &w))| {
            if w == 0.0 {
                x.fill(0.0);
                return LossSums::default();
            }
            let max = max(x);
            let mean = sum(x) as f64 / vocab as f64;
            let target = x[y];
            x.iter_mut().for_each(|v| *v = exp(*v - max));
            let sum = sum(x) as f64;
            let lse = max as f64 + sum.ln();
            let nll = lse - target as f64;
            let scale = (1.0 / sum) as f32;
            for v in x.iter_mut() {
                *v = w * (*v * scale - uniform);
            }
            x[y] -= w * (1.0 - smoothing);
            LossSums {
                objective: w as f64
                    * ((1.0 - smoothing as f64) * nll + smoothing as f64 * (lse - mean)),
                nll,
            }
        })
        .reduce(LossSums::default, |a, b| LossSums {
            objective: a.objective + b.objective,
            nll: a.nll + b.nll,
        })
}

/// Back-propagates ∂L/∂logits through the projection and the deep output.
///
/// Accumulates the four weight gradients and returns ∂L/∂features (`[rows, d_features]`).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    cache: &OutputCache,
    d_logits: &[f32],
    deep_w: &[f32],
    out_w: &[f32],
    l: usize,
    d_deep_w: &mut [f32],
    d_deep_b: &mut [f32],
    d_out_w: &mut [f32],
    d_out_b: &mut [f32],
) -> Vec<f32> {
    let vocab = d_out_b.len();
    let rows = d_logits.len() / vocab;
    matmul(
        Layout::TN,
        l,
        rows,
        vocab,
        &cache.t,
        d_logits,
        d_out_w,
        true,
    );
    add_column_sums(d_logits, d_out_b);
    let mut d_t = vec![0.0; rows * l];
    matmul(Layout::NT, rows, vocab, l, d_logits, out_w, &mut d_t, false);
    if let Some(mask) = &cache.mask {
        d_t.iter_mut().zip(mask).for_each(|(d, m)| *d *= m);
    }
    let mut d_pre = vec![0.0; rows * 2 * l];
    for r in 0..rows {
        for k in 0..l {
            let half = if cache.upper_won[r * l + k] { l } else { 0 };
            d_pre[r * 2 * l + half + k] = d_t[r * l + k];
        }
    }
    let d = cache.d_features;
    matmul(
        Layout::TN,
        d,
        rows,
        2 * l,
        &cache.features,
        &d_pre,
        d_deep_w,
        true,
    );
    add_column_sums(&d_pre, d_deep_b);
    let mut d_features = vec![0.0; rows * d];
    matmul(
        Layout::NT,
        rows,
        2 * l,
        d,
        &d_pre,
        deep_w,
        &mut d_features,
        false,
    );
    d_features
}

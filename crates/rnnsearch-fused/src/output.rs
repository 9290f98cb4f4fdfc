//! The deep output, the vocabulary projection and the label-smoothed cross-entropy, for all
//! target positions of a batch at once:
//!
//! t̃_i = U_o s_i + C_o c_i + V_o E y_{i-1} + b_o, t_i = maxout(t̃_i) or tanh(t̃_i),
//! logits = W_o t_i + b, ℓ_i = lse(logits) − (1 − ε) logit_{y_i} − ε · mean_v(logit_v).
//!
//! Maxout pairs unit k with unit k + l, as `rnnsearch-model` does.

use rayon::prelude::*;

use crate::packed::{affine, affine_packed_by_column_blocks, PackedColumns, PackedDecoder};

use crate::linalg::{
    add_bias, add_column_sums, affine_by_column_blocks, exp, matmul, max, max_and_sum_exp,
    simd_dispatch, sum, tanh, Layout,
};

/// What the backward pass needs.
pub struct OutputCache {
    /// [s_i; c_i; E y_{i-1}] per position, `[rows, m + 2n + E]`.
    features: Vec<f32>,
    d_features: usize,
    /// What the non-linearity's derivative needs.
    activation: Activation,
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

/// What the backward pass of t_i = f(t̃_i) needs.
enum Activation {
    /// Which half won the maxout, per unit: `[rows, l]`.
    Maxout { upper_won: Vec<bool> },
    /// t_i = tanh(t̃_i) before dropout, `[rows, l]`.
    Tanh { t: Vec<f32> },
}

/// The deep output's and the projection's weights: U_o, C_o and V_o stacked as `deep_w`
/// (`[m + 2n + E, k·l]`, rows in the order of the features, k = `pool`: 2 for maxout, 1 for
/// tanh) with `deep_b` (`[k·l]`), and W_o (`out_w`, `[l, V]`) with `out_b` (`[V]`).
#[derive(Clone, Copy, Debug)]
pub struct OutputWeights<'a> {
    pub pool: usize,
    pub deep_w: &'a [f32],
    pub deep_b: &'a [f32],
    pub out_w: &'a [f32],
    pub out_b: &'a [f32],
}

impl OutputWeights<'_> {
    /// l, the units of t_i (after pooling).
    pub fn units(&self) -> usize {
        self.deep_b.len() / self.pool
    }

    /// The width of the features, m + 2n + E.
    pub fn d_features(&self) -> usize {
        self.deep_w.len() / self.deep_b.len()
    }
}

/// Gradients of an [`OutputWeights`], accumulated into.
pub struct OutputGrads<'a> {
    pub deep_w: &'a mut [f32],
    pub deep_b: &'a mut [f32],
    pub out_w: &'a mut [f32],
    pub out_b: &'a mut [f32],
}

/// Logits `[rows, V]` from `features` (`[rows, m + 2n + E]`), with dropout `mask` on t_i,
/// written into `logits` (a buffer kept from step to step: the largest of a step, whose pages
/// the kernel would otherwise fault in and zero every time).
pub fn forward(
    w: &OutputWeights,
    features: Vec<f32>,
    mask: Option<Vec<f32>>,
    logits: Vec<f32>,
) -> (Vec<f32>, OutputCache) {
    let (mut t, activation) = deep_output(w, &features, None);
    if let Some(mask) = &mask {
        t.iter_mut().zip(mask).for_each(|(t, m)| *t *= m);
    }
    let logits = project(&t, w.out_w, w.out_b, w.units(), logits);
    (
        logits,
        OutputCache {
            features,
            d_features: w.d_features(),
            activation,
            t,
            mask,
        },
    )
}

/// Logits `[rows, V]` from `features`, written over `logits`, and per row the log-normaliser
/// lse = log Σ_v exp(logit_v), written over `log_normalizers`, so that
/// log p(v) = logit_v − lse. For translation: no dropout, nothing kept for a backward pass, the
/// caller's buffers reused from step to step, and lse gathered block by block of the
/// vocabulary while each block of logits is still in cache, instead of in passes of its own
/// over all of them. `packed`, when given, holds `deep_w` and `out_w` packed for few rows.
pub fn logits_and_normalizers(
    w: &OutputWeights,
    features: &[f32],
    packed: Option<&PackedDecoder>,
    logits: &mut Vec<f32>,
    log_normalizers: &mut Vec<f32>,
) {
    let l = w.units();
    let OutputWeights { out_w, out_b, .. } = *w;
    // Logits per block: a block of all rows stays within a core's L2 (1 MiB here).
    const BLOCK_FLOATS: usize = 1 << 17;
    let (t, _) = deep_output(w, features, packed.map(|p| &p.deep));
    let rows = t.len() / l;
    let vocab = out_b.len();
    logits.resize(rows * vocab, 0.0);
    // ... and every thread gets a block when there are few rows.
    let block = (BLOCK_FLOATS / rows.max(1))
        .min(vocab.div_ceil(rayon::current_num_threads()))
        .clamp(512, 4096);
    // Per block and row: (max, Σ exp(logit − max)) over the block's columns.
    let blocks = match packed {
        Some(p) => {
            affine_packed_by_column_blocks(rows, &t, &p.out, out_b, logits, block, max_and_sum_exp)
        }
        None => affine_by_column_blocks(
            rows,
            l,
            vocab,
            &t,
            out_w,
            out_b,
            logits,
            block,
            max_and_sum_exp,
        ),
    };
    log_normalizers.clear();
    log_normalizers.extend((0..rows).map(|r| {
        let top = blocks.iter().fold(f32::NEG_INFINITY, |m, b| m.max(b[r].0));
        let total: f32 = blocks.iter().map(|b| b[r].1 * exp(b[r].0 - top)).sum();
        top + total.ln()
    }));
}

/// t = f(features W + b) (`[rows, l]`), f being maxout or tanh, and what f's derivative
/// needs; W packed as `packed` when given.
fn deep_output(
    w: &OutputWeights,
    features: &[f32],
    packed: Option<&PackedColumns>,
) -> (Vec<f32>, Activation) {
    let (l, d_features, width) = (w.units(), w.d_features(), w.deep_b.len());
    let rows = features.len() / d_features;
    let mut pre = vec![0.0; rows * width];
    affine(
        rows,
        d_features,
        width,
        features,
        w.deep_w,
        packed,
        Some(w.deep_b),
        &mut pre,
        false,
    );
    if w.pool == 1 {
        pre.iter_mut().for_each(|v| *v = tanh(*v));
        return (pre.clone(), Activation::Tanh { t: pre });
    }
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
    (t, Activation::Maxout { upper_won })
}

/// logits = t W_o + b, `[rows, V]`.
fn project(t: &[f32], out_w: &[f32], out_b: &[f32], l: usize, mut logits: Vec<f32>) -> Vec<f32> {
    let rows = t.len() / l;
    logits.clear();
    logits.resize(rows * out_b.len(), 0.0);
    matmul(
        Layout::NN,
        rows,
        l,
        out_b.len(),
        t,
        out_w,
        &mut logits,
        false,
    );
    add_bias(&mut logits, out_b);
    logits
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
        .map(|(x, (&y, &w))| row_loss_and_gradient(x, y, w, smoothing, uniform))
        .reduce(LossSums::default, |a, b| LossSums {
            objective: a.objective + b.objective,
            nll: a.nll + b.nll,
        })
}

simd_dispatch! {
    /// One row of [`loss_and_gradient`]: its loss terms, with `x` (the row's logits) replaced
    /// by ∂L/∂logits.
    fn row_loss_and_gradient(x: &mut [f32], y: usize, w: f32, smoothing: f32, uniform: f32) -> LossSums {
        if w == 0.0 {
            x.fill(0.0);
            return LossSums::default();
        }
        let vocab = x.len();
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
    }
}

/// Back-propagates ∂L/∂logits through the projection and the deep output.
///
/// Accumulates the four weight gradients and returns ∂L/∂features (`[rows, d_features]`).
pub fn backward(
    w: &OutputWeights,
    cache: &OutputCache,
    d_logits: &[f32],
    grads: OutputGrads,
) -> Vec<f32> {
    let (l, deep_w, out_w) = (w.units(), w.deep_w, w.out_w);
    let OutputGrads {
        deep_w: d_deep_w,
        deep_b: d_deep_b,
        out_w: d_out_w,
        out_b: d_out_b,
    } = grads;
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
    let width = w.deep_b.len();
    let d_pre = match &cache.activation {
        Activation::Tanh { t } => d_t.iter().zip(t).map(|(d, t)| d * (1.0 - t * t)).collect(),
        Activation::Maxout { upper_won } => {
            let mut d_pre = vec![0.0; rows * 2 * l];
            for r in 0..rows {
                for k in 0..l {
                    let half = if upper_won[r * l + k] { l } else { 0 };
                    d_pre[r * 2 * l + half + k] = d_t[r * l + k];
                }
            }
            d_pre
        }
    };
    let d = cache.d_features;
    matmul(
        Layout::TN,
        d,
        rows,
        width,
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
        width,
        d,
        &d_pre,
        deep_w,
        &mut d_features,
        false,
    );
    d_features
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisers_over_blocks_are_the_log_sum_exp_of_the_logits() {
        // 300 rows give blocks of 512 logits: three blocks of a vocabulary of 1,500.
        let (rows, d, l, vocab) = (300, 6, 4, 1500);
        let wave =
            |n: usize, f: f32| -> Vec<f32> { (0..n).map(|i| (i as f32 * f).sin()).collect() };
        let features = wave(rows * d, 0.37);
        let (deep_w, deep_b) = (wave(d * 2 * l, 0.91), wave(2 * l, 0.13));
        let out_w: Vec<f32> = wave(l * vocab, 0.071).iter().map(|w| 4.0 * w).collect();
        let out_b = wave(vocab, 0.29);
        // Unpacked, and packed where this CPU has the kernel.
        let packed = PackedColumns::new(&out_w, l, vocab).map(|out| {
            // only deep and out take part here
            let unused = PackedColumns::new(&[0.0], 1, 1).unwrap();
            PackedDecoder {
                input: unused.clone(),
                recurrent: unused.clone(),
                context: unused,
                deep: PackedColumns::new(&deep_w, d, 2 * l).unwrap(),
                out,
            }
        });
        for packed in [None, packed.as_ref()] {
            let (mut logits, mut lse) = (vec![f32::NAN; 7], vec![f32::NAN; 3]);
            let w = OutputWeights {
                pool: 2,
                deep_w: &deep_w,
                deep_b: &deep_b,
                out_w: &out_w,
                out_b: &out_b,
            };
            logits_and_normalizers(&w, &features, packed, &mut logits, &mut lse);

            let (t, _) = deep_output(&w, &features, None);
            let want = project(&t, &out_w, &out_b, l, Vec::new());
            assert_eq!(logits.len(), want.len());
            assert!(logits.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-4));
            assert_eq!(lse.len(), rows);
            for (row, &got) in want.chunks_exact(vocab).zip(&lse) {
                let top = row.iter().fold(f32::NEG_INFINITY, |m, &z| m.max(z)) as f64;
                let total: f64 = row.iter().map(|&z| (z as f64 - top).exp()).sum();
                let expected = top + total.ln();
                assert!((got as f64 - expected).abs() < 1e-4, "{got} vs {expected}");
            }
        }
    }

    /// ∂L/∂features and the four weight gradients of the deep output (maxout and tanh), the
    /// projection and the smoothed loss, with dropout on t_i and a padded row. Each maxout
    /// pair is kept far apart (biases ±3), so that no perturbation changes which half wins.
    #[test]
    fn backward_matches_finite_differences() {
        use crate::gradcheck::{check, uniform};
        for pool in [2, 1] {
            let name = |what: &str| format!("{what} (pool {pool})");
            let (rows, d, l, vocab) = (4, 6, 3, 5);
            let mut features = uniform(rows * d, 1.0, 1);
            let mut deep_w = uniform(d * pool * l, 0.1, 2);
            let mut deep_b: Vec<f32> = match pool {
                2 => (0..2 * l)
                    .map(|k| if (k % l) % 2 == (k / l) { 3.0 } else { -3.0 })
                    .collect(),
                _ => uniform(l, 0.5, 5),
            };
            let mut out_w = uniform(l * vocab, 1.0, 3);
            let mut out_b = uniform(vocab, 1.0, 4);
            let mask = vec![2.0, 0.0, 2.0, 2.0, 2.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0, 2.0];
            let (targets, row_weights) = ([1, 4, 0, 2], [0.25, 0.25, 0.0, 0.25]);
            let loss = |f: &[f32], dw: &[f32], db: &[f32], ow: &[f32], ob: &[f32]| {
                let w = OutputWeights {
                    pool,
                    deep_w: dw,
                    deep_b: db,
                    out_w: ow,
                    out_b: ob,
                };
                let (mut logits, cache) = forward(&w, f.to_vec(), Some(mask.clone()), Vec::new());
                let sums = loss_and_gradient(&mut logits, &targets, &row_weights, 0.1);
                (sums.objective, logits, cache)
            };
            let (_, d_logits, cache) = loss(&features, &deep_w, &deep_b, &out_w, &out_b);
            let (mut g_dw, mut g_db) = (vec![0.0; d * pool * l], vec![0.0; pool * l]);
            let (mut g_ow, mut g_ob) = (vec![0.0; l * vocab], vec![0.0; vocab]);
            let w = OutputWeights {
                pool,
                deep_w: &deep_w,
                deep_b: &deep_b,
                out_w: &out_w,
                out_b: &out_b,
            };
            let grads = OutputGrads {
                deep_w: &mut g_dw,
                deep_b: &mut g_db,
                out_w: &mut g_ow,
                out_b: &mut g_ob,
            };
            let d_features = backward(&w, &cache, &d_logits, grads);

            let (f0, dw0, db0, ow0, ob0) = (
                features.clone(),
                deep_w.clone(),
                deep_b.clone(),
                out_w.clone(),
                out_b.clone(),
            );
            check(
                &name("output features"),
                &mut features,
                &d_features,
                24,
                |f| loss(f, &dw0, &db0, &ow0, &ob0).0,
            );
            check(&name("deep output W"), &mut deep_w, &g_dw, 36, |v| {
                loss(&f0, v, &db0, &ow0, &ob0).0
            });
            check(&name("deep output b"), &mut deep_b, &g_db, 6, |v| {
                loss(&f0, &dw0, v, &ow0, &ob0).0
            });
            check(&name("W_o"), &mut out_w, &g_ow, 15, |v| {
                loss(&f0, &dw0, &db0, v, &ob0).0
            });
            check(&name("W_o bias"), &mut out_b, &g_ob, 5, |v| {
                loss(&f0, &dw0, &db0, &ow0, v).0
            });
        }
    }
}

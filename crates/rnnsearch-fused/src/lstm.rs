//! The element-wise part of an LSTM step and its derivative, for a batch of rows.
//!
//! With the gates laid out as [i, f, g, o] (as in `rnnsearch-model`), x = W x_t + b and
//! u = U h + c_b, a = x + u:
//!
//! i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o), c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c').

use crate::linalg::{sigmoid, simd_dispatch, tanh};

/// What the backward pass needs from one step, each `[batch, d]`.
#[derive(Clone, Debug, Default)]
pub struct StepCache {
    pub i: Vec<f32>,
    pub f: Vec<f32>,
    pub g: Vec<f32>,
    pub o: Vec<f32>,
    /// tanh(c').
    pub memory_tanh: Vec<f32>,
    /// c, the memory the step started from.
    pub memory: Vec<f32>,
}

impl StepCache {
    pub fn new(rows: usize, d: usize) -> Self {
        Self {
            i: vec![0.0; rows * d],
            f: vec![0.0; rows * d],
            g: vec![0.0; rows * d],
            o: vec![0.0; rows * d],
            memory_tanh: vec![0.0; rows * d],
            memory: vec![0.0; rows * d],
        }
    }
}

simd_dispatch! {
/// h' and c' from x (`[batch, 4d]`), u (`[batch, 4d]`) and c (`[batch, d]`), filling `cache`.
pub fn forward(
    x: &[f32],
    u: &[f32],
    c: &[f32],
    h_next: &mut [f32],
    c_next: &mut [f32],
    cache: &mut StepCache,
    d: usize,
) {
    let rows = c.len() / d;
    cache.memory.copy_from_slice(c);
    for b in 0..rows {
        let (x, u) = (
            &x[b * 4 * d..(b + 1) * 4 * d],
            &u[b * 4 * d..(b + 1) * 4 * d],
        );
        for k in 0..d {
            let n = b * d + k;
            let i = sigmoid(x[k] + u[k]);
            let f = sigmoid(x[d + k] + u[d + k]);
            let g = tanh(x[2 * d + k] + u[2 * d + k]);
            let o = sigmoid(x[3 * d + k] + u[3 * d + k]);
            let memory = f * c[n] + i * g;
            let t = tanh(memory);
            c_next[n] = memory;
            h_next[n] = o * t;
            cache.i[n] = i;
            cache.f[n] = f;
            cache.g[n] = g;
            cache.o[n] = o;
            cache.memory_tanh[n] = t;
        }
    }
}
}

/// Derivatives of one step given ∂L/∂h' (`dh`) and ∂L/∂c' (`dc`), each `[batch, d]`.
///
/// Writes ∂L/∂x (`dx`, `[batch, 4d]`) and ∂L/∂u (`du`, the same values: a = x + u), replaces
/// `dc` with ∂L/∂c and `dh` with the direct part of ∂L/∂h, which is 0: h reaches the step only
/// through u (the caller adds du Uᵀ).
pub fn backward(
    dh: &mut [f32],
    dc: &mut [f32],
    cache: &StepCache,
    dx: &mut [f32],
    du: &mut [f32],
    d: usize,
) {
    let rows = dh.len() / d;
    for b in 0..rows {
        let (dx, du) = (
            &mut dx[b * 4 * d..(b + 1) * 4 * d],
            &mut du[b * 4 * d..(b + 1) * 4 * d],
        );
        for k in 0..d {
            let n = b * d + k;
            let (i, f, g, o, t) = (
                cache.i[n],
                cache.f[n],
                cache.g[n],
                cache.o[n],
                cache.memory_tanh[n],
            );
            // c' reaches L directly (the next step) and through h' = o tanh(c')
            let d_memory = dc[n] + dh[n] * o * (1.0 - t * t);
            let pre = [
                d_memory * g * i * (1.0 - i),
                d_memory * cache.memory[n] * f * (1.0 - f),
                d_memory * i * (1.0 - g * g),
                dh[n] * t * o * (1.0 - o),
            ];
            for (gate, v) in pre.into_iter().enumerate() {
                dx[gate * d + k] = v;
                du[gate * d + k] = v;
            }
            dc[n] = d_memory * f;
            dh[n] = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{check, uniform, weighted_sum};

    /// ∂L/∂x, ∂L/∂u and ∂L/∂c of one step, with L = Σ r ⊙ h' + Σ r' ⊙ c'.
    #[test]
    fn backward_matches_finite_differences() {
        let (rows, d) = (3, 4);
        let mut x = uniform(rows * 4 * d, 1.0, 1);
        let mut u = uniform(rows * 4 * d, 1.0, 2);
        let mut c = uniform(rows * d, 1.0, 3);
        let (r, r_memory) = (uniform(rows * d, 1.0, 4), uniform(rows * d, 1.0, 5));
        let loss = |x: &[f32], u: &[f32], c: &[f32]| {
            let (mut h_next, mut c_next) = (vec![0.0; rows * d], vec![0.0; rows * d]);
            let mut cache = StepCache::new(rows, d);
            forward(x, u, c, &mut h_next, &mut c_next, &mut cache, d);
            (
                weighted_sum(&r, &h_next) + weighted_sum(&r_memory, &c_next),
                cache,
            )
        };
        let (_, cache) = loss(&x, &u, &c);
        let (mut dh, mut dc) = (r.clone(), r_memory.clone());
        let (mut dx, mut du) = (vec![0.0; rows * 4 * d], vec![0.0; rows * 4 * d]);
        backward(&mut dh, &mut dc, &cache, &mut dx, &mut du, d);
        assert!(dh.iter().all(|&v| v == 0.0));

        let (x0, u0, c0) = (x.clone(), u.clone(), c.clone());
        check("lstm x", &mut x, &dx, 48, |x| loss(x, &u0, &c0).0);
        check("lstm u", &mut u, &du, 48, |u| loss(&x0, u, &c0).0);
        check("lstm c", &mut c, &dc, 12, |c| loss(&x0, &u0, c).0);
    }
}

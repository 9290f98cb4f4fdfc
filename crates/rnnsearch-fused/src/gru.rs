//! The element-wise part of a GRU step and its derivative, for a batch of rows.
//!
//! With the gates laid out as [r, z, n] (as in `rnnsearch-model`), x = W x_t + b and
//! u = U h + c:
//!
//! r = σ(x_r + u_r), z = σ(x_z + u_z), ñ = tanh(x_n + r ⊙ u_n), h' = ñ + z ⊙ (h − ñ).

use crate::linalg::{sigmoid, simd_dispatch, tanh};

/// What the backward pass needs from one step, each `[batch, d]`.
#[derive(Clone, Debug, Default)]
pub struct StepCache {
    pub r: Vec<f32>,
    pub z: Vec<f32>,
    pub candidate: Vec<f32>,
    /// u_n = U_n h + c_n, the recurrent part of the candidate's pre-activation.
    pub recurrent_candidate: Vec<f32>,
}

impl StepCache {
    pub fn new(rows: usize, d: usize) -> Self {
        Self {
            r: vec![0.0; rows * d],
            z: vec![0.0; rows * d],
            candidate: vec![0.0; rows * d],
            recurrent_candidate: vec![0.0; rows * d],
        }
    }
}

simd_dispatch! {
/// h' from x (`[batch, 3d]`), u (`[batch, 3d]`) and h (`[batch, d]`), filling `cache`.
pub fn forward(
    x: &[f32],
    u: &[f32],
    h: &[f32],
    h_next: &mut [f32],
    cache: &mut StepCache,
    d: usize,
) {
    let rows = h.len() / d;
    for b in 0..rows {
        let (x, u) = (
            &x[b * 3 * d..(b + 1) * 3 * d],
            &u[b * 3 * d..(b + 1) * 3 * d],
        );
        for k in 0..d {
            let i = b * d + k;
            let r = sigmoid(x[k] + u[k]);
            let z = sigmoid(x[d + k] + u[d + k]);
            let n = tanh(x[2 * d + k] + r * u[2 * d + k]);
            h_next[i] = n + z * (h[i] - n);
            cache.r[i] = r;
            cache.z[i] = z;
            cache.candidate[i] = n;
            cache.recurrent_candidate[i] = u[2 * d + k];
        }
    }
}
}

/// Derivatives of one step given ∂L/∂h' (`dh`, `[batch, d]`) and the state h it started from.
///
/// Writes ∂L/∂x (`dx`, `[batch, 3d]`), ∂L/∂u (`du`, `[batch, 3d]`), and replaces `dh` with the
/// direct part of ∂L/∂h, z ⊙ dh (the caller adds du Uᵀ).
pub fn backward(
    dh: &mut [f32],
    h: &[f32],
    cache: &StepCache,
    dx: &mut [f32],
    du: &mut [f32],
    d: usize,
) {
    let rows = h.len() / d;
    for b in 0..rows {
        let (dx, du) = (
            &mut dx[b * 3 * d..(b + 1) * 3 * d],
            &mut du[b * 3 * d..(b + 1) * 3 * d],
        );
        for k in 0..d {
            let i = b * d + k;
            let (r, z, n) = (cache.r[i], cache.z[i], cache.candidate[i]);
            let g = dh[i];
            // h' = (1 − z) ñ + z h
            let dn_pre = g * (1.0 - z) * (1.0 - n * n);
            let dz_pre = g * (h[i] - n) * z * (1.0 - z);
            let dr_pre = dn_pre * cache.recurrent_candidate[i] * r * (1.0 - r);
            dx[k] = dr_pre;
            dx[d + k] = dz_pre;
            dx[2 * d + k] = dn_pre;
            du[k] = dr_pre;
            du[d + k] = dz_pre;
            du[2 * d + k] = dn_pre * r;
            dh[i] = g * z;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{check, uniform, weighted_sum};

    /// ∂L/∂x, ∂L/∂u and the direct ∂L/∂h of one step, with L = Σ r ⊙ h'.
    #[test]
    fn backward_matches_finite_differences() {
        let (rows, d) = (3, 4);
        let mut x = uniform(rows * 3 * d, 1.0, 1);
        let mut u = uniform(rows * 3 * d, 1.0, 2);
        let mut h = uniform(rows * d, 1.0, 3);
        let r = uniform(rows * d, 1.0, 4);
        let step = |x: &[f32], u: &[f32], h: &[f32]| {
            let mut next = vec![0.0; rows * d];
            let mut cache = StepCache::new(rows, d);
            forward(x, u, h, &mut next, &mut cache, d);
            (next, cache)
        };
        let (_, cache) = step(&x, &u, &h);
        let mut dh = r.clone();
        let (mut dx, mut du) = (vec![0.0; rows * 3 * d], vec![0.0; rows * 3 * d]);
        backward(&mut dh, &h, &cache, &mut dx, &mut du, d);

        let (x0, u0, h0) = (x.clone(), u.clone(), h.clone());
        check("gru x", &mut x, &dx, 36, |x| {
            weighted_sum(&r, &step(x, &u0, &h0).0)
        });
        check("gru u", &mut u, &du, 36, |u| {
            weighted_sum(&r, &step(&x0, u, &h0).0)
        });
        check("gru h", &mut h, &dh, 12, |h| {
            weighted_sum(&r, &step(&x0, &u0, h).0)
        });
    }
}

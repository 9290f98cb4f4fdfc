//! Adam (Kingma & Ba 2015) over the flat buffers of [`crate::memory`], on every core.
//!
//! The arithmetic is burn's `Adam` operation for operation (the same moments, bias correction
//! and L2 weight decay), so a run can move between engines through a checkpoint:
//!
//! ```text
//! g ← scale·g + λ θ
//! m ← β₁ m + (1 − β₁) g          v ← β₂ v + (1 − β₂) g²
//! θ ← θ − lr · (m · √(1 − β₂ᵗ) / (1 − β₁ᵗ)) / (√v + ε √(1 − β₂ᵗ))
//! ```

use rayon::prelude::*;

use crate::linalg::simd_dispatch;

/// Values per parallel task: large enough that a task's overhead is nothing beside its loop.
const CHUNK: usize = 1 << 15;

/// Adam's hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// λ of the L2 penalty added to the gradient (0: none).
    pub weight_decay: f32,
}

/// One parameter buffer's optimiser state: Adam's two moments and the updates so far.
#[derive(Clone, Debug, PartialEq)]
pub struct Moments {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// t, the number of updates these moments have seen.
    pub time: u64,
}

impl Moments {
    pub fn zeros(len: usize) -> Self {
        Self {
            m: vec![0.0; len],
            v: vec![0.0; len],
            time: 0,
        }
    }
}

impl Adam {
    /// One update of `params` from `grads` multiplied by `scale` (the clipping factor, or 1).
    pub fn update(
        &self,
        params: &mut [f32],
        grads: &[f32],
        moments: &mut Moments,
        lr: f64,
        scale: f32,
    ) {
        assert!(params.len() == grads.len() && grads.len() == moments.m.len());
        moments.time += 1;
        let t = moments.time as i32;
        let (b1, b2) = (self.beta1, self.beta2);
        let bias2 = (1.0 - b2.powi(t)).sqrt();
        let factor = bias2 / (1.0 - b1.powi(t));
        let eps = self.eps * bias2;
        let step = Step {
            b1,
            b2,
            factor,
            eps,
            decay: self.weight_decay,
            lr: lr as f32,
            scale,
        };
        params
            .par_chunks_mut(CHUNK)
            .zip(grads.par_chunks(CHUNK))
            .zip(moments.m.par_chunks_mut(CHUNK))
            .zip(moments.v.par_chunks_mut(CHUNK))
            .for_each(|(((theta, g), m), v)| update_chunk(theta, g, m, v, step));
    }
}

/// The constants of one update.
#[derive(Clone, Copy)]
struct Step {
    b1: f32,
    b2: f32,
    /// √(1 − β₂ᵗ) / (1 − β₁ᵗ)
    factor: f32,
    /// ε √(1 − β₂ᵗ)
    eps: f32,
    decay: f32,
    lr: f32,
    scale: f32,
}

simd_dispatch! {
    /// One chunk of [`Adam::update`].
    fn update_chunk(theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], step: Step) {
        let Step { b1, b2, factor, eps, decay, lr, scale } = step;
        for i in 0..theta.len() {
            let mut grad = g[i] * scale;
            if decay != 0.0 {
                grad += theta[i] * decay;
            }
            m[i] = m[i] * b1 + grad * (1.0 - b1);
            v[i] = v[i] * b2 + grad * grad * (1.0 - b2);
            let update = (m[i] * factor) / (v[i].sqrt() + eps);
            theta[i] -= update * lr;
        }
    }
}

/// Σ x² in f64, over chunks in parallel.
pub fn squared_norm(x: &[f32]) -> f64 {
    x.par_chunks(CHUNK)
        .map(|c| c.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>())
        .sum()
}

/// Sets every value of `x` to zero, in parallel.
pub fn zero(x: &mut [f32]) {
    x.par_chunks_mut(CHUNK).for_each(|c| c.fill(0.0));
}

/// `into += each of others`, in parallel chunks.
pub fn add_into(into: &mut [f32], others: &[&[f32]]) {
    into.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(k, chunk)| {
            let start = k * CHUNK;
            for other in others {
                let o = &other[start..start + chunk.len()];
                chunk.iter_mut().zip(o).for_each(|(a, b)| *a += b);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adam written out value by value, as the paper states it (with ε̂ = ε √(1 − β₂ᵗ)).
    fn by_hand(adam: &Adam, theta: f64, grads: &[f64], lr: f64) -> f64 {
        let (b1, b2) = (adam.beta1 as f64, adam.beta2 as f64);
        let (mut m, mut v, mut theta) = (0.0, 0.0, theta);
        for (t, &g) in grads.iter().enumerate() {
            let t = t as i32 + 1;
            let g = g + adam.weight_decay as f64 * theta;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            let m_hat = m / (1.0 - b1.powi(t));
            let v_hat = v / (1.0 - b2.powi(t));
            theta -= lr * m_hat / (v_hat.sqrt() + adam.eps as f64);
        }
        theta
    }

    #[test]
    fn updates_follow_the_paper_across_chunks() {
        let adam = Adam {
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-8,
            weight_decay: 0.01,
        };
        let len = 2 * CHUNK + 17;
        let start: Vec<f32> = (0..len).map(|i| ((i % 13) as f32 - 6.0) / 10.0).collect();
        let grad_of = |step: usize, i: usize| ((i * 7 + step * 3) % 11) as f32 / 5.0 - 1.0;
        let mut params = start.clone();
        let mut moments = Moments::zeros(len);
        for step in 0..5 {
            let grads: Vec<f32> = (0..len).map(|i| 2.0 * grad_of(step, i)).collect();
            adam.update(&mut params, &grads, &mut moments, 1e-2, 0.5);
        }
        assert_eq!(moments.time, 5);
        for i in [0, 1, CHUNK - 1, CHUNK, 2 * CHUNK + 16] {
            let grads: Vec<f64> = (0..5).map(|s| grad_of(s, i) as f64).collect();
            let want = by_hand(&adam, start[i] as f64, &grads, 1e-2);
            assert!(
                (params[i] as f64 - want).abs() < 1e-5,
                "{i}: {} vs {want}",
                params[i]
            );
        }
    }

    #[test]
    fn norms_sums_and_zeros_cover_every_chunk() {
        let len = CHUNK + 5;
        let x: Vec<f32> = (0..len).map(|i| (i % 3) as f32).collect();
        let want: f64 = x.iter().map(|&v| (v * v) as f64).sum();
        assert_eq!(squared_norm(&x), want);
        let mut y = x.clone();
        add_into(&mut y, &[&x, &x]);
        assert!(y.iter().zip(&x).all(|(a, b)| *a == 3.0 * b));
        zero(&mut y);
        assert!(y.iter().all(|&v| v == 0.0));
    }
}

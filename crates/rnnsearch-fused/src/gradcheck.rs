//! Finite-difference checks of each layer's backward pass: every layer's tests perturb its
//! inputs and weights one value at a time and compare (L(x + h) − L(x − h)) / 2h with the
//! gradient its backward function computes, so a kernel bug names its layer.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Dims, Layout, Weights};

/// Values drawn uniformly from [−scale, scale).
pub fn uniform(len: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| scale * (2.0 * rng.random::<f32>() - 1.0))
        .collect()
}

/// Σ_i r_i y_i in f64: a loss whose gradient with respect to y is r.
pub fn weighted_sum(r: &[f32], y: &[f32]) -> f64 {
    r.iter().zip(y).map(|(&r, &y)| r as f64 * y as f64).sum()
}

/// Checks `analytic`, the gradient of `loss` with respect to `values`, by central differences
/// at up to `samples` indices spread over `values` (all of them when there are fewer).
pub fn check(
    name: &str,
    values: &mut [f32],
    analytic: &[f32],
    samples: usize,
    mut loss: impl FnMut(&[f32]) -> f64,
) {
    const H: f32 = 1e-2;
    assert_eq!(values.len(), analytic.len(), "{name}: gradient size");
    let stride = (values.len() / samples.max(1)).max(1);
    let mut checked = 0;
    for i in (0..values.len()).step_by(stride) {
        let saved = values[i];
        values[i] = saved + H;
        let up = loss(values);
        values[i] = saved - H;
        let down = loss(values);
        values[i] = saved;
        let numeric = (up - down) / (2.0 * H as f64);
        let exact = analytic[i] as f64;
        let tolerance = 2e-3 + 2e-2 * exact.abs().max(numeric.abs());
        assert!(
            (numeric - exact).abs() <= tolerance,
            "{name}[{i}]: backward gives {exact:.6}, finite differences {numeric:.6}"
        );
        checked += 1;
    }
    assert!(checked > 0, "{name}: nothing checked");
}

/// Every weight of a model, owned in one buffer of its [`Layout`], drawn at random.
pub struct OwnedWeights {
    layout: Layout,
    values: Vec<f32>,
}

impl OwnedWeights {
    /// Weights of `dims` from [−0.5, 0.5), untied.
    pub fn random(dims: Dims, seed: u64) -> Self {
        let layout = Layout::new(dims, false);
        let values = uniform(layout.len(), 0.5, seed);
        Self { layout, values }
    }

    /// The weights, borrowed.
    pub fn weights(&self) -> Weights<'_> {
        self.layout.weights(&self.values)
    }

    /// The values of the weight named `name` in the layout, to perturb.
    pub fn values_mut(&mut self, name: &str) -> &mut [f32] {
        &mut self.values[self.layout.slot(name)]
    }
}

/// A small model: E 3, n 4, m 5, a 3, l 2, vocabularies of 7.
pub fn small_dims(layers: usize) -> Dims {
    Dims {
        embedding: 3,
        hidden: 4,
        layers,
        decoder_hidden: 5,
        attention: 3,
        output: 2,
        src_vocab: 7,
        tgt_vocab: 7,
        cell: crate::CellKind::Gru,
        scorer: crate::Scorer::Additive,
        bridge: crate::Bridge::BackwardFirst,
        deep_output: crate::DeepOutput::Maxout,
    }
}

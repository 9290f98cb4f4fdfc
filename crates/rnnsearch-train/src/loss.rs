//! Label-smoothed cross-entropy (Szegedy et al. 2016), padding ignored.

use burn::tensor::{Bool, Int, Tensor};

/// The loss of one batch.
pub struct Loss {
    /// Σ over real target tokens of the smoothed loss, divided by their number: what is optimised.
    pub per_token: Tensor<1>,
    /// Σ −log p(y_i) over real target tokens (unsmoothed, for perplexity).
    pub nll_sum: Tensor<1>,
}

/// ℓ_i = (1 − ε) (−log p(y_i)) + ε · mean_v(−log p(v)), summed over non-padding positions and
/// divided by their count `tokens`.
///
/// With log p(v) = x_v − lse(x), this is ℓ_i = lse(x) − (1 − ε) x_{y_i} − ε · mean_v(x_v), so the
/// `[N, V]` log-probabilities are never materialised: a few passes over the logits instead of a
/// dozen, which matters because the logits are the largest tensor of a training step.
///
/// # Parameters
/// - `logits`: `[batch, tgt_len, V]`; `targets`: `[batch, tgt_len]`; `padding`: true at padding.
pub fn label_smoothed_cross_entropy(
    logits: Tensor<3>,
    targets: Tensor<2, Int>,
    padding: Tensor<2, Bool>,
    smoothing: f32,
    tokens: usize,
) -> Loss {
    let [batch, len, vocab] = logits.dims();
    let x = logits.reshape([batch * len, vocab]);
    let max = x.clone().detach().max_dim(1); // [N, 1], for stability only
    let log_normalizer = (x.clone() - max.clone()).exp().sum_dim(1).log() + max; // lse(x)
    let target_logit = x.clone().gather(1, targets.reshape([batch * len, 1]));
    let keep = padding.bool_not().float().reshape([batch * len, 1]);
    let nll = (log_normalizer.clone() - target_logit) * keep.clone(); // [N, 1]
    let smooth = (log_normalizer - x.mean_dim(1)) * keep; // mean_v(−log p(v)), [N, 1]
    let nll_sum = nll.clone().sum();
    let per_token = (nll.mul_scalar(1.0 - smoothing) + smooth.mul_scalar(smoothing))
        .sum()
        .div_scalar(tokens.max(1) as f32);
    Loss { per_token, nll_sum }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// Uniform logits over V = 4: −log p = ln 4 for every token, smoothed or not; padding is
    /// ignored, so the per-token loss is ln 4 whatever ε.
    #[test]
    fn uniform_logits_give_log_vocab_and_padding_is_ignored() {
        let device = Device::flex();
        let logits = Tensor::<3>::zeros([1, 3, 4], &device);
        let targets =
            Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 0], [1, 3]), &device);
        let padding = Tensor::<2, Bool>::from_data(
            TensorData::new(vec![false, false, true], [1, 3]),
            &device,
        );
        let loss = label_smoothed_cross_entropy(logits, targets, padding, 0.1, 2);
        let v: f32 = loss.per_token.into_scalar();
        assert!((v - 4f32.ln()).abs() < 1e-6);
        let nll: f32 = loss.nll_sum.into_scalar();
        assert!((nll - 2.0 * 4f32.ln()).abs() < 1e-5);
    }

    /// logits [0, ln 3] over V = 2, target 1: p = (1/4, 3/4).
    /// ε = 0.2: 0.8 · (−ln 0.75) + 0.2 · (−(ln 0.25 + ln 0.75) / 2) = 0.230146 + 0.167398 = 0.397544.
    #[test]
    fn smoothing_matches_hand_arithmetic() {
        let device = Device::flex();
        let logits = Tensor::<3>::from_floats([[[0.0, 3f32.ln()]]], &device);
        let targets = Tensor::<2, Int>::from_ints([[1]], &device);
        let padding = Tensor::<2, Bool>::from_data(TensorData::new(vec![false], [1, 1]), &device);
        let v: f32 = label_smoothed_cross_entropy(logits, targets, padding, 0.2, 1)
            .per_token
            .into_scalar();
        assert!((v - 0.397544).abs() < 1e-5, "{v}");
    }
}

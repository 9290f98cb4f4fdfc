//! The alignment model a(s_{i-1}, h_j) (Bahdanau et al. 2014, section 3.1 and appendix A.1.2).
//!
//! At every decoder step i, energies e_ij = a(s_{i-1}, h_j) score each annotation against the
//! previous decoder state; the alignment weights α_ij = exp(e_ij) / Σ_k exp(e_ik) (padding
//! excluded) weigh the annotations into the context c_i = Σ_j α_ij h_j.

use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::cell::{tanh, ParamInit};
use crate::encoder::Encoded;

/// Energy added to padded positions before the softmax: finite, so an all-padding row cannot
/// produce NaN, and large enough that exp underflows to exactly 0 in f32.
const PADDING_ENERGY: f32 = -1e4;

/// How energies e_ij are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scorer {
    /// e_ij = v_aᵀ tanh(W_a s_{i-1} + U_a h_j), the paper's alignment model.
    Additive,
    /// e_ij = s_{i-1} · h_j (needs the decoder size to equal the annotation size).
    Dot,
    /// e_ij = s_{i-1}ᵀ W h_j (Luong et al. 2015, "general").
    General,
    /// e_ij = τ cos(s_{i-1}, W h_j), with a learned or fixed temperature τ (W maps the
    /// annotations to the decoder size, as in "general").
    Cosine,
}

/// The alignment model. Which weights exist depends on the scorer.
#[derive(Module, Debug)]
pub struct Attention {
    /// W_a, `[m, a]` (additive).
    pub query_layer: Option<Param<Tensor<2>>>,
    /// U_a, `[2n, a]` (additive) or Wᵀ, `[2n, m]` (general, cosine).
    pub key_layer: Option<Param<Tensor<2>>>,
    /// v_a, `[a, 1]` (additive).
    pub energy_layer: Option<Param<Tensor<2>>>,
    /// log τ, `[1]` (cosine with a learned temperature).
    pub log_temperature: Option<Param<Tensor<1>>>,
    /// How energies are computed (a setting, not a weight: it stays out of the record).
    #[module(skip)]
    pub scorer: Scorer,
    /// τ for cosine with a fixed temperature.
    pub fixed_temperature: f64,
}

/// The annotations prepared once per batch for every decoder step.
#[derive(Clone, Debug)]
pub struct ProjectedAnnotations {
    /// What the query is scored against: U_a h_j (additive), W h_j (general), W h_j/|W h_j|
    /// (cosine) or h_j (dot), `[batch, src_len, k]`.
    pub keys: Tensor<3>,
    /// The annotations h_j, `[batch, src_len, 2n]`.
    pub annotations: Tensor<3>,
    /// True at padding, `[batch, src_len]`.
    pub padding: Tensor<2, Bool>,
}

impl ProjectedAnnotations {
    /// Repeats every sentence `k` times along the batch (beam search).
    pub fn repeat_interleave(&self, k: usize) -> Self {
        let rep3 = |t: &Tensor<3>| {
            let [b, s, d] = t.dims();
            t.clone()
                .unsqueeze_dim::<4>(1)
                .expand([b, k, s, d])
                .reshape([b * k, s, d])
        };
        let [b, s] = self.padding.dims();
        Self {
            keys: rep3(&self.keys),
            annotations: rep3(&self.annotations),
            padding: self
                .padding
                .clone()
                .unsqueeze_dim::<3>(1)
                .expand([b, k, s])
                .reshape([b * k, s]),
        }
    }

    /// Keeps the rows in `indices` (beam search reorders and prunes sentences).
    pub fn select(&self, indices: Tensor<1, burn::tensor::Int>) -> Self {
        Self {
            keys: self.keys.clone().select(0, indices.clone()),
            annotations: self.annotations.clone().select(0, indices.clone()),
            padding: self.padding.clone().select(0, indices),
        }
    }
}

impl Attention {
    /// A new alignment model for decoder size `d_state` (m), annotation size `d_annotation` (2n)
    /// and attention size `d_attention` (a).
    pub fn new(
        scorer: Scorer,
        d_state: usize,
        d_annotation: usize,
        d_attention: usize,
        learned_temperature: Option<f64>,
        init: ParamInit,
        device: &Device,
    ) -> Self {
        let mut attention = Attention {
            query_layer: None,
            key_layer: None,
            energy_layer: None,
            log_temperature: None,
            scorer,
            fixed_temperature: learned_temperature.unwrap_or(10.0),
        };
        match scorer {
            Scorer::Additive => {
                attention.query_layer = Some(init.weight([d_state, d_attention], device));
                attention.key_layer = Some(init.weight([d_annotation, d_attention], device));
                attention.energy_layer = Some(init.weight([d_attention, 1], device));
            }
            Scorer::General => {
                attention.key_layer = Some(init.weight([d_annotation, d_state], device))
            }
            Scorer::Dot => {}
            Scorer::Cosine => {
                attention.key_layer = Some(init.weight([d_annotation, d_state], device));
                if let Some(t) = learned_temperature {
                    attention.log_temperature = Some(Param::from_tensor(Tensor::from_floats(
                        [t.ln() as f32],
                        device,
                    )));
                }
            }
        }
        attention
    }

    /// The scorer.
    pub fn scorer(&self) -> Scorer {
        self.scorer
    }

    /// W_a when the scorer projects the query (additive), so the decoder can fuse W_a s_{i-1}
    /// into the matmul that computes its own recurrent term from the same s_{i-1}.
    pub fn query_weight(&self) -> Option<Tensor<2>> {
        self.query_layer.as_ref().map(|w| w.val())
    }

    /// Prepares the annotations once per batch: U_a h_j for all j in one matmul.
    pub fn project(&self, encoded: &Encoded) -> ProjectedAnnotations {
        let h = encoded.annotations.clone();
        let keys = match self.scorer() {
            Scorer::Additive | Scorer::General => h.clone().matmul(
                self.key_layer
                    .as_ref()
                    .expect("key layer")
                    .val()
                    .unsqueeze_dim::<3>(0),
            ),
            Scorer::Dot => h.clone(),
            Scorer::Cosine => {
                let k = h.clone().matmul(
                    self.key_layer
                        .as_ref()
                        .expect("key layer")
                        .val()
                        .unsqueeze_dim::<3>(0),
                );
                let norm = k.clone().square().sum_dim(2).sqrt().clamp_min(1e-6);
                k / norm
            }
        };
        ProjectedAnnotations {
            keys,
            annotations: h,
            padding: encoded.mask.clone().bool_not(),
        }
    }

    /// Context and alignment weights for one decoder step.
    ///
    /// # Parameters
    /// - `query`: W_a s_{i-1} (`[batch, a]`) for the additive scorer (see [`Self::query_weight`]),
    ///   s_{i-1} (`[batch, m]`) for the others.
    ///
    /// # Returns
    /// (c_i `[batch, 2n]`, α_i `[batch, src_len]`).
    pub fn forward(
        &self,
        query: Tensor<2>,
        projected: &ProjectedAnnotations,
    ) -> (Tensor<2>, Tensor<2>) {
        let [batch, src_len, _] = projected.keys.dims();
        let energies = match self.scorer() {
            Scorer::Additive => {
                let a = projected.keys.dims()[2];
                // e_ij = v_aᵀ tanh(W_a s_{i-1} + U_a h_j)
                let hidden = tanh(projected.keys.clone() + query.unsqueeze_dim::<3>(1));
                let v = self.energy_layer.as_ref().expect("energy layer").val();
                hidden
                    .reshape([batch * src_len, a])
                    .matmul(v)
                    .reshape([batch, src_len])
            }
            Scorer::Dot | Scorer::General => bmv(projected.keys.clone(), query),
            Scorer::Cosine => {
                let norm = query.clone().square().sum_dim(1).sqrt().clamp_min(1e-6);
                let cosine = bmv(projected.keys.clone(), query / norm);
                match &self.log_temperature {
                    Some(log_t) => cosine * log_t.val().exp().unsqueeze_dim::<2>(0),
                    None => cosine.mul_scalar(self.fixed_temperature),
                }
            }
        };
        // α_ij = softmax_j(e_ij), padding excluded
        let alignment = softmax(
            energies.mask_fill(projected.padding.clone(), PADDING_ENERGY),
            1,
        );
        // c_i = Σ_j α_ij h_j
        let context = alignment
            .clone()
            .unsqueeze_dim::<3>(1)
            .matmul(projected.annotations.clone())
            .reshape([batch, projected.annotations.dims()[2]]);
        (context, alignment)
    }
}

/// Batched matrix-vector product: `[b, s, k]` × `[b, k]` → `[b, s]`.
fn bmv(keys: Tensor<3>, query: Tensor<2>) -> Tensor<2> {
    let [b, s, _] = keys.dims();
    keys.matmul(query.unsqueeze_dim::<3>(2)).reshape([b, s])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::padding_mask;

    fn projected(scorer: Scorer, device: &Device) -> (Attention, ProjectedAnnotations) {
        device.seed(1);
        let attention = Attention::new(scorer, 6, 6, 5, Some(5.0), ParamInit::Glorot, device);
        let annotations =
            Tensor::<3>::random([2, 4, 6], burn::tensor::Distribution::Default, device);
        let mask = padding_mask(&[4, 2], 4, device);
        let encoded = Encoded { annotations, mask };
        let p = attention.project(&encoded);
        (attention, p)
    }

    #[test]
    fn weights_sum_to_one_and_are_exactly_zero_on_padding() {
        let device = Device::flex();
        for scorer in [
            Scorer::Additive,
            Scorer::Dot,
            Scorer::General,
            Scorer::Cosine,
        ] {
            let (attention, p) = projected(scorer, &device);
            let state = Tensor::<2>::random([2, 6], burn::tensor::Distribution::Default, &device);
            let query = match attention.query_weight() {
                Some(w) => state.matmul(w),
                None => state,
            };
            let (context, alpha) = attention.forward(query, &p);
            assert_eq!(context.dims(), [2, 6]);
            let alpha: Vec<f32> = alpha.into_data().try_to_vec::<f32>().unwrap();
            for row in alpha.chunks(4) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{scorer:?}");
            }
            assert_eq!(&alpha[6..8], &[0.0, 0.0], "{scorer:?}");
        }
    }
}

//! The bidirectional RNN encoder (Bahdanau et al. 2014, section 3.2 and appendix A.2.1).
//!
//! Each source word x_j is embedded, read left-to-right by a forward RNN (→h_j) and
//! right-to-left by a backward RNN (←h_j); its annotation is h_j = [→h_j; ←h_j].

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use crate::cell::{Cell, CellInit, CellKind, ParamInit, RecurrentState};

/// Configuration of the [`Encoder`].
#[derive(Config, Debug)]
pub struct EncoderConfig {
    /// Source vocabulary size.
    pub vocab_size: usize,
    /// Embedding size.
    pub d_embedding: usize,
    /// Units per direction (n); annotations have 2n features.
    pub d_hidden: usize,
    /// Stacked bidirectional layers.
    #[config(default = 1)]
    pub layers: usize,
    /// Recurrent unit.
    #[config(default = "CellKind::Gru")]
    pub cell: CellKind,
    /// Dropout on the embeddings and between layers.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Orthogonal recurrent matrices.
    #[config(default = true)]
    pub orthogonal_recurrent: bool,
    /// Standard deviation of the embeddings' normal initialisation.
    #[config(default = 0.1)]
    pub embedding_init_std: f64,
    /// How the other weights and biases start.
    #[config(default = "ParamInit::Glorot")]
    pub params_init: ParamInit,
}

/// One bidirectional layer: a forward and a backward cell.
#[derive(Module, Debug)]
pub struct BiLayer {
    /// The forward RNN (→h).
    pub forward: Cell,
    /// The backward RNN (←h).
    pub backward: Cell,
}

/// Bidirectional (stacked) RNN encoder producing the annotations h_j.
#[derive(Module, Debug)]
pub struct Encoder {
    /// Source word embeddings E_x.
    pub embedding: Embedding,
    /// Stacked bidirectional layers; the last one's outputs are the annotations.
    pub layers: Vec<BiLayer>,
    /// Dropout on embeddings and between layers.
    pub dropout: Dropout,
}

/// The encoder's output for one batch.
#[derive(Clone, Debug)]
pub struct Encoded {
    /// Annotations h_j = [→h_j; ←h_j], `[batch, src_len, 2n]`, zero at padding.
    pub annotations: Tensor<3>,
    /// True at real source tokens, `[batch, src_len]`.
    pub mask: Tensor<2, Bool>,
}

impl EncoderConfig {
    /// Builds the encoder on `device`.
    pub fn init(&self, device: &Device) -> Encoder {
        let init = CellInit {
            orthogonal_recurrent: self.orthogonal_recurrent,
            params: self.params_init,
        };
        let layers = (0..self.layers.max(1))
            .map(|l| {
                let d_in = if l == 0 {
                    self.d_embedding
                } else {
                    2 * self.d_hidden
                };
                BiLayer {
                    forward: Cell::new(self.cell, d_in, self.d_hidden, init, device),
                    backward: Cell::new(self.cell, d_in, self.d_hidden, init, device),
                }
            })
            .collect();
        Encoder {
            embedding: EmbeddingConfig::new(self.vocab_size, self.d_embedding)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: self.embedding_init_std,
                })
                .init(device),
            layers,
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

impl Encoder {
    /// Units per direction n.
    pub fn d_hidden(&self) -> usize {
        self.layers[0].forward.d_hidden()
    }

    /// Encodes a padded batch.
    ///
    /// # Parameters
    /// - `source`: token ids, `[batch, src_len]`, padded at the end.
    /// - `lengths`: the real length of each row.
    ///
    /// Padding never leaks into a sentence's annotations: the backward RNN reads each sentence
    /// reversed within its own length (its first step is the sentence's last token), and the
    /// forward RNN only ever reaches padding after the sentence's last token.
    pub fn forward(&self, source: Tensor<2, Int>, lengths: &[usize]) -> Encoded {
        let device = source.device();
        let [batch, src_len] = source.dims();
        let reversal = reversal_permutation(lengths, src_len, &device);
        let mask = padding_mask(lengths, src_len, &device);
        let mut x = self.dropout.forward(self.embedding.forward(source));
        for (l, layer) in self.layers.iter().enumerate() {
            if l > 0 {
                x = self.dropout.forward(x);
            }
            x = layer.forward(x, &reversal, batch, src_len);
        }
        let keep = mask.clone().float().unsqueeze_dim::<3>(2);
        Encoded {
            annotations: x * keep,
            mask,
        }
    }
}

impl BiLayer {
    /// Runs both directions over `x` (`[batch, src_len, d_in]`) → `[batch, src_len, 2n]`.
    ///
    /// The two directions advance together: their states are stacked as `[2, batch, n]`
    /// and their recurrent matrices as `[2, n, G·n]`, so a time step costs one batched matmul.
    fn forward(
        &self,
        x: Tensor<3>,
        reversal: &Tensor<3>,
        batch: usize,
        src_len: usize,
    ) -> Tensor<3> {
        let n = self.forward.d_hidden();
        let kind = self.forward.kind();
        let wx_fwd = self.forward.project_inputs(x.clone());
        // The backward RNN reads x_{T_x} .. x_1: reverse each sentence within its length.
        let wx_bwd = reversal.clone().matmul(self.backward.project_inputs(x));
        let wx = Tensor::stack::<4>(vec![wx_fwd, wx_bwd], 0); // [2, batch, src_len, G·n]
        let g = wx.dims()[3];
        let recurrent_weight = Tensor::stack::<3>(
            vec![
                self.forward.recurrent_weight.val(),
                self.backward.recurrent_weight.val(),
            ],
            0,
        ); // [2, n, G·n]
        let recurrent_bias = Tensor::stack::<2>(
            vec![
                self.forward.recurrent_bias.val(),
                self.backward.recurrent_bias.val(),
            ],
            0,
        )
        .unsqueeze_dim::<3>(1); // [2, 1, G·n]

        let device = wx.device();
        let mut state = RecurrentState::new(kind, Tensor::<3>::zeros([2, batch, n], &device));
        let mut outputs = Vec::with_capacity(src_len);
        for (t, wx_t) in wx.split(1, 2).into_iter().enumerate() {
            debug_assert!(t < src_len);
            let wx_t = wx_t.reshape([2, batch, g]);
            let uh = state.hidden.clone().matmul(recurrent_weight.clone()) + recurrent_bias.clone();
            state = self.forward.step(wx_t, uh, state);
            outputs.push(state.hidden.clone());
        }
        let states = Tensor::stack::<4>(outputs, 2); // [2, batch, src_len, n]
        let mut directions = states.split(1, 0).into_iter();
        let fwd = directions.next().unwrap().reshape([batch, src_len, n]);
        let bwd = directions.next().unwrap().reshape([batch, src_len, n]);
        // Put ←h back in source order (the reversal is its own inverse).
        let bwd = reversal.clone().matmul(bwd);
        Tensor::cat(vec![fwd, bwd], 2)
    }
}

/// True at real tokens: `[batch, src_len]`.
pub fn padding_mask(lengths: &[usize], max_len: usize, device: &Device) -> Tensor<2, Bool> {
    let values: Vec<bool> = lengths
        .iter()
        .flat_map(|&len| (0..max_len).map(move |j| j < len))
        .collect();
    Tensor::from_data(TensorData::new(values, [lengths.len(), max_len]), device)
}

/// Per-sentence permutation matrices P (`[batch, len, len]`) with (P x)_j = x_{len_b − 1 − j}
/// for j < len_b and (P x)_j = x_j on padding. P is its own inverse.
pub fn reversal_permutation(lengths: &[usize], max_len: usize, device: &Device) -> Tensor<3> {
    let mut values = vec![0.0f32; lengths.len() * max_len * max_len];
    for (b, &len) in lengths.iter().enumerate() {
        for i in 0..max_len {
            let j = if i < len { len - 1 - i } else { i };
            values[(b * max_len + i) * max_len + j] = 1.0;
        }
    }
    Tensor::from_data(
        TensorData::new(values, [lengths.len(), max_len, max_len]),
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_abs_diff(a: Tensor<3>, b: Tensor<3>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// A sentence's annotations equal those it gets when encoded alone, in both directions.
    #[test]
    fn padding_does_not_leak_into_annotations() {
        for cell in [CellKind::Gru, CellKind::Lstm] {
            let device = Device::flex();
            device.seed(3);
            let encoder = EncoderConfig::new(20, 8, 6)
                .with_layers(2)
                .with_cell(cell)
                .init(&device);
            let batch = Tensor::<2, Int>::from_ints([[4, 5, 6, 7, 8], [9, 10, 11, 0, 0]], &device);
            let encoded = encoder.forward(batch, &[5, 3]);
            let alone = encoder.forward(Tensor::<2, Int>::from_ints([[9, 10, 11]], &device), &[3]);
            let padded_row = encoded.annotations.clone().narrow(0, 1, 1).narrow(1, 0, 3);
            assert!(max_abs_diff(padded_row, alone.annotations) < 1e-5);
            // zero at padding
            let pad = encoded.annotations.narrow(0, 1, 1).narrow(1, 3, 2);
            assert_eq!(pad.abs().max().into_scalar::<f32>(), 0.0);
        }
    }

    #[test]
    fn reversal_is_within_length() {
        let device = Device::flex();
        let p = reversal_permutation(&[2], 3, &device);
        let x = Tensor::<3>::from_floats([[[1.0], [2.0], [3.0]]], &device);
        let v: Vec<f32> = p.matmul(x).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(v, vec![2.0, 1.0, 3.0]);
    }
}

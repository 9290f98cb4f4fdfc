//! Fused recurrent cells (GRU and LSTM).
//!
//! burn has no public RNN cell, and its `Gru`/`Lstm` modules run one `Linear` per gate.
//! Here each cell owns one input-side matrix for all gates (`W`, `[d_input, G·d]`) and one
//! recurrent matrix (`U`, `[d, G·d]`), so a step costs one matmul on each side. The input side
//! does not depend on the previous state, so callers project whole sequences at once
//! ([`Cell::project_inputs`]) and only the recurrent part runs inside the time loop.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Which recurrent unit an encoder or decoder uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellKind {
    /// Gated recurrent unit (Cho et al. 2014), the unit of the paper.
    Gru,
    /// Long short-term memory (Hochreiter & Schmidhuber 1997).
    Lstm,
}

impl CellKind {
    /// Number of gate blocks in the fused matrices: 3 for a GRU (r, z, n), 4 for an LSTM (i, f, g, o).
    pub fn gates(self) -> usize {
        match self {
            CellKind::Gru => 3,
            CellKind::Lstm => 4,
        }
    }
}

/// The state carried from one step to the next: `hidden` (s or h) and, for an LSTM, the memory cell.
#[derive(Clone, Debug)]
pub struct RecurrentState<const D: usize> {
    /// The hidden state, `[..., d]`.
    pub hidden: Tensor<D>,
    /// The LSTM memory cell, `[..., d]`; `None` for a GRU.
    pub cell: Option<Tensor<D>>,
}

impl<const D: usize> RecurrentState<D> {
    /// A state whose memory cell (if any) starts at zero.
    pub fn new(kind: CellKind, hidden: Tensor<D>) -> Self {
        let cell = match kind {
            CellKind::Gru => None,
            CellKind::Lstm => Some(hidden.zeros_like()),
        };
        Self { hidden, cell }
    }

    /// Selects rows along dimension `dim` (used by beam search to reorder hypotheses).
    pub fn select(self, dim: usize, indices: Tensor<1, burn::tensor::Int>) -> Self {
        Self {
            hidden: self.hidden.select(dim, indices.clone()),
            cell: self.cell.map(|c| c.select(dim, indices)),
        }
    }
}

/// A fused GRU or LSTM cell.
///
/// GRU (reset gate applied after the recurrent product, as cuDNN and PyTorch do):
/// r = σ(W_r x + b_r + U_r h + c_r), z = σ(W_z x + b_z + U_z h + c_z),
/// ñ = tanh(W_n x + b_n + r ⊙ (U_n h + c_n)), h' = (1 − z) ⊙ ñ + z ⊙ h.
///
/// LSTM: [i, f, g, o] = W x + b + U h + c; m' = σ(f) ⊙ m + σ(i) ⊙ tanh(g); h' = σ(o) ⊙ tanh(m').
#[derive(Module, Debug)]
pub struct Cell {
    /// Input-side weights of all gates, `[d_input, G·d]`.
    pub input_weight: Param<Tensor<2>>,
    /// Input-side bias of all gates, `[G·d]`.
    pub input_bias: Param<Tensor<1>>,
    /// Recurrent weights of all gates, `[d, G·d]`.
    pub recurrent_weight: Param<Tensor<2>>,
    /// Recurrent bias of all gates, `[G·d]`.
    pub recurrent_bias: Param<Tensor<1>>,
    /// 0 for a GRU, 1 for an LSTM (a plain field keeps the module record simple).
    pub lstm: usize,
}

/// How weights and biases start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamInit {
    /// Xavier-uniform weights (Glorot & Bengio 2010), zero biases (an LSTM's forget gate 1).
    #[default]
    Glorot,
    /// PyTorch's defaults for `nn.Linear`, `nn.GRU` and `nn.LSTM`: every weight and bias
    /// U(−1/√fan_in, 1/√fan_in), with fan_in = d (the units) for all of a cell's parameters.
    /// PyTorch's whole initialisation also needs `orthogonal_recurrent = false` and, for
    /// `nn.Embedding`, `embedding_init_std = 1.0`.
    FanIn,
}

impl ParamInit {
    /// A `[fan_in, fan_out]` weight matrix.
    pub(crate) fn weight(self, shape: [usize; 2], device: &Device) -> Param<Tensor<2>> {
        self.weight_with_fan_in(shape, shape[0], device)
    }

    fn weight_with_fan_in(
        self,
        shape: [usize; 2],
        fan_in: usize,
        device: &Device,
    ) -> Param<Tensor<2>> {
        match self {
            ParamInit::Glorot => xavier(shape, device),
            ParamInit::FanIn => fan_in_uniform(fan_in).init(shape, device),
        }
    }

    /// The bias of a layer whose weight has `fan_in` rows.
    pub(crate) fn bias(self, len: usize, fan_in: usize, device: &Device) -> Param<Tensor<1>> {
        match self {
            ParamInit::Glorot => Param::from_tensor(Tensor::zeros([len], device)),
            ParamInit::FanIn => fan_in_uniform(fan_in).init([len], device),
        }
    }
}

fn fan_in_uniform(fan_in: usize) -> Initializer {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    Initializer::Uniform {
        min: -bound,
        max: bound,
    }
}

/// How to initialise a cell.
#[derive(Clone, Copy, Debug)]
pub struct CellInit {
    /// Orthogonal recurrent matrices (the paper) rather than `params`' scheme.
    pub orthogonal_recurrent: bool,
    /// The scheme of everything else.
    pub params: ParamInit,
}

impl Cell {
    /// A new cell with `d_input` inputs and `d` units.
    pub fn new(kind: CellKind, d_input: usize, d: usize, init: CellInit, device: &Device) -> Self {
        let g = kind.gates();
        let params = init.params;
        let input_weight = params.weight_with_fan_in([d_input, g * d], d, device);
        let recurrent_weight = if init.orthogonal_recurrent {
            // One orthogonal d×d block per gate, as in the paper's appendix B.
            let blocks: Vec<Tensor<2>> = (0..g)
                .map(|_| {
                    Initializer::Orthogonal { gain: 1.0 }
                        .init([d, d], device)
                        .val()
                })
                .collect();
            Param::from_tensor(Tensor::cat(blocks, 1).detach())
        } else {
            params.weight([d, g * d], device)
        };
        let input_bias = match params {
            ParamInit::Glorot => {
                let mut bias = vec![0.0f32; g * d];
                if kind == CellKind::Lstm {
                    // Forget-gate bias 1: the usual remedy for vanishing memory early in training.
                    bias[d..2 * d].iter_mut().for_each(|b| *b = 1.0);
                }
                Param::from_tensor(Tensor::from_floats(bias.as_slice(), device))
            }
            ParamInit::FanIn => params.bias(g * d, d, device),
        };
        Self {
            input_weight,
            input_bias,
            recurrent_weight,
            recurrent_bias: params.bias(g * d, d, device),
            lstm: usize::from(kind == CellKind::Lstm),
        }
    }

    /// The unit type.
    pub fn kind(&self) -> CellKind {
        if self.lstm == 1 {
            CellKind::Lstm
        } else {
            CellKind::Gru
        }
    }

    /// Number of units d.
    pub fn d_hidden(&self) -> usize {
        self.recurrent_weight.dims()[0]
    }

    /// The input side W x + b for any number of leading dimensions: `[..., d_input]` → `[..., G·d]`.
    pub fn project_inputs<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        burn::tensor::module::linear(x, self.input_weight.val(), Some(self.input_bias.val()))
    }

    /// The recurrent side U h + c: `[..., d]` → `[..., G·d]`.
    pub fn project_state<const D: usize>(&self, h: Tensor<D>) -> Tensor<D> {
        burn::tensor::module::linear(
            h,
            self.recurrent_weight.val(),
            Some(self.recurrent_bias.val()),
        )
    }

    /// One step from the already projected input side `wx` and recurrent side `uh`.
    pub fn step<const D: usize>(
        &self,
        wx: Tensor<D>,
        uh: Tensor<D>,
        state: RecurrentState<D>,
    ) -> RecurrentState<D> {
        let d = self.d_hidden();
        match state.cell {
            None => RecurrentState {
                hidden: gru_update(wx, uh, state.hidden, d),
                cell: None,
            },
            Some(memory) => {
                let (hidden, memory) = lstm_update(wx + uh, memory, d);
                RecurrentState {
                    hidden,
                    cell: Some(memory),
                }
            }
        }
    }
}

/// Xavier-uniform weights, the usual choice for feed-forward and input-side matrices.
fn xavier(shape: [usize; 2], device: &Device) -> Param<Tensor<2>> {
    Initializer::XavierUniform { gain: 1.0 }.init_with(
        shape,
        Some(shape[0]),
        Some(shape[1]),
        device,
    )
}

/// tanh(x) = 2σ(2x) − 1.
///
/// Same function, cheaper on burn's CPU backends: `tanh` goes through libm's scalar `tanhf`
/// and its autodiff backward recomputes it, while the sigmoid uses `expf` and a fused backward.
/// This is the hottest element-wise op of training (the additive attention's hidden layer).
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    sigmoid(x.mul_scalar(2.0)).mul_scalar(2.0).sub_scalar(1.0)
}

/// h' = (1 − z) ⊙ ñ + z ⊙ h = ñ + z ⊙ (h − ñ), with the gates laid out as [r, z, n].
fn gru_update<const D: usize>(wx: Tensor<D>, uh: Tensor<D>, h: Tensor<D>, d: usize) -> Tensor<D> {
    let last = D - 1;
    // r and z in one sigmoid: [r, z] = σ(W_{rz} x + U_{rz} h)
    let rz = sigmoid(wx.clone().narrow(last, 0, 2 * d) + uh.clone().narrow(last, 0, 2 * d));
    let r = rz.clone().narrow(last, 0, d);
    let z = rz.narrow(last, d, d);
    let n = tanh(wx.narrow(last, 2 * d, d) + r * uh.narrow(last, 2 * d, d));
    n.clone() + z * (h - n)
}

/// (h', m') of an LSTM from the summed pre-activations, gates laid out as [i, f, g, o].
fn lstm_update<const D: usize>(gates: Tensor<D>, m: Tensor<D>, d: usize) -> (Tensor<D>, Tensor<D>) {
    let last = D - 1;
    let ifo_sig = sigmoid(gates.clone().narrow(last, 0, 2 * d));
    let i = ifo_sig.clone().narrow(last, 0, d);
    let f = ifo_sig.narrow(last, d, d);
    let g = tanh(gates.clone().narrow(last, 2 * d, d));
    let o = sigmoid(gates.narrow(last, 3 * d, d));
    let m_next = f * m + i * g;
    (o * tanh(m_next.clone()), m_next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-set GRU with d = 1: W = [1, 1, 1], U = [1, 1, 1], biases 0.
    /// x = 1, h = 0: r = z = σ(1) = 0.731059, ñ = tanh(1 + r·0) = 0.761594,
    /// h' = ñ + z (0 − ñ) = 0.761594 · (1 − 0.731059) = 0.204824.
    #[test]
    fn gru_step_matches_hand_arithmetic() {
        let device = Device::flex();
        let mut cell = Cell::new(
            CellKind::Gru,
            1,
            1,
            CellInit {
                orthogonal_recurrent: false,
                params: ParamInit::Glorot,
            },
            &device,
        );
        cell.input_weight = Param::from_tensor(Tensor::ones([1, 3], &device));
        cell.recurrent_weight = Param::from_tensor(Tensor::ones([1, 3], &device));
        cell.input_bias = Param::from_tensor(Tensor::zeros([3], &device));
        let x = Tensor::<2>::ones([1, 1], &device);
        let h = Tensor::<2>::zeros([1, 1], &device);
        let next = cell.step(
            cell.project_inputs(x),
            cell.project_state(h.clone()),
            RecurrentState::new(CellKind::Gru, h),
        );
        let v: Vec<f32> = next.hidden.into_data().try_to_vec::<f32>().unwrap();
        assert!((v[0] - 0.204824).abs() < 1e-5, "{v:?}");
    }

    #[test]
    fn lstm_state_shapes() {
        let device = Device::flex();
        let cell = Cell::new(
            CellKind::Lstm,
            3,
            4,
            CellInit {
                orthogonal_recurrent: true,
                params: ParamInit::Glorot,
            },
            &device,
        );
        let x = Tensor::<3>::ones([2, 5, 3], &device);
        let wx = cell.project_inputs(x);
        assert_eq!(wx.dims(), [2, 5, 16]);
        let h = Tensor::<2>::zeros([2, 4], &device);
        let s = RecurrentState::new(CellKind::Lstm, h);
        let wx0 = wx.narrow(1, 0, 1).reshape([2, 16]);
        let uh = cell.project_state(s.hidden.clone());
        let next = cell.step(wx0, uh, s);
        assert_eq!(next.hidden.dims(), [2, 4]);
        assert_eq!(next.cell.unwrap().dims(), [2, 4]);
    }
}

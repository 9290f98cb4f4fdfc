//! The attentive decoder (Bahdanau et al. 2014, section 3.1 and appendix A.2.2).
//!
//! s_i = f(s_{i-1}, [E y_{i-1}; c_i]) with a GRU or LSTM cell; the output layer is a deep
//! output t̃_i = U_o s_i + V_o E y_{i-1} + C_o c_i, then maxout (pool 2) or tanh, and
//! p(y_i | y_<i, x) = softmax(W_o t_i).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::attention::{Attention, ProjectedAnnotations, Scorer};
use crate::cell::{Cell, CellInit, CellKind, ParamInit, RecurrentState};
use crate::encoder::Encoded;

/// How the initial decoder state s_0 is computed from the annotations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bridge {
    /// s_0 = tanh(W_s ←h_1), the paper's choice.
    BackwardFirst,
    /// s_0 = tanh(W_s mean_j h_j).
    Mean,
    /// s_0 = 0.
    Zero,
}

/// The non-linearity of the deep output layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeepOutput {
    /// t_i = max over pairs of t̃_i (Goodfellow et al. 2013), the paper's choice.
    Maxout,
    /// t_i = tanh(t̃_i).
    Tanh,
}

/// Configuration of the [`Decoder`].
#[derive(Config, Debug)]
pub struct DecoderConfig {
    /// Target vocabulary size.
    pub vocab_size: usize,
    /// Target embedding size.
    pub d_embedding: usize,
    /// Decoder state size m.
    pub d_hidden: usize,
    /// Annotation size 2n.
    pub d_annotation: usize,
    /// Attention size a.
    pub d_attention: usize,
    /// Units of the deep output l (after pooling).
    pub d_output: usize,
    /// Recurrent unit.
    #[config(default = "CellKind::Gru")]
    pub cell: CellKind,
    /// Alignment model.
    #[config(default = "Scorer::Additive")]
    pub scorer: Scorer,
    /// Learned (Some(initial τ)) or fixed temperature for the cosine scorer.
    #[config(default = "Some(10.0)")]
    pub cosine_temperature: Option<f64>,
    /// Initial state.
    #[config(default = "Bridge::BackwardFirst")]
    pub bridge: Bridge,
    /// Deep output non-linearity.
    #[config(default = "DeepOutput::Maxout")]
    pub deep_output: DeepOutput,
    /// Dropout on the target embeddings and on t_i.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Use the target embeddings as W_o (needs d_output == d_embedding).
    #[config(default = false)]
    pub tied_embeddings: bool,
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

/// The attentive decoder.
#[derive(Module, Debug)]
pub struct Decoder {
    /// Target word embeddings E.
    pub embedding: Embedding,
    /// The recurrent cell over [E y_{i-1}; c_i].
    pub cell: Cell,
    /// The alignment model.
    pub attention: Attention,
    /// W_s, `[n or 2n, m]`, and its bias (absent for the zero bridge).
    pub bridge: Option<Param<Tensor<2>>>,
    /// Bias of the bridge, `[m]`.
    pub bridge_bias: Option<Param<Tensor<1>>>,
    /// [U_o; C_o; V_o] stacked, `[m + 2n + E, k·l]` with k = 2 for maxout.
    pub deep_output: Param<Tensor<2>>,
    /// Bias of the deep output, `[k·l]`.
    pub deep_output_bias: Param<Tensor<1>>,
    /// W_o, `[l, V]` (absent when tied to the embeddings).
    pub output_projection: Option<Param<Tensor<2>>>,
    /// Bias of the vocabulary projection, `[V]`.
    pub output_bias: Param<Tensor<1>>,
    /// Dropout on target embeddings and t_i.
    pub dropout: Dropout,
    /// How s_0 is made from the annotations (settings, not weights: they stay out of the record).
    #[module(skip)]
    pub bridge_kind: Bridge,
    /// The deep output's nonlinearity.
    #[module(skip)]
    pub deep_output_kind: DeepOutput,
}

/// What one decoder step produces.
#[derive(Clone, Debug)]
pub struct DecoderStep {
    /// The new state s_i.
    pub state: RecurrentState<2>,
    /// The context c_i, `[batch, 2n]`.
    pub context: Tensor<2>,
    /// The alignment weights α_i, `[batch, src_len]`.
    pub alignment_weights: Tensor<2>,
    /// Unnormalised scores of y_i, `[batch, V]` (only from [`Decoder::step`]).
    pub logits: Option<Tensor<2>>,
}

/// Weights derived once per batch so the time loop does not rebuild them at every step.
#[derive(Clone, Debug)]
pub struct StepWeights {
    /// [U | W_a] (recurrent matrix, then the attention's query matrix when it has one).
    recurrent: Tensor<2>,
    /// [c | 0], the matching bias.
    recurrent_bias: Tensor<1>,
    /// The rows of the cell's input matrix that multiply c_i, `[2n, G·m]`.
    context_weight: Tensor<2>,
}

impl DecoderConfig {
    /// Builds the decoder on `device`.
    pub fn init(&self, device: &Device) -> Decoder {
        let init = CellInit {
            orthogonal_recurrent: self.orthogonal_recurrent,
            params: self.params_init,
        };
        let k = if self.deep_output == DeepOutput::Maxout {
            2
        } else {
            1
        };
        let d_bridge_in = match self.bridge {
            Bridge::BackwardFirst => Some(self.d_annotation / 2),
            Bridge::Mean => Some(self.d_annotation),
            Bridge::Zero => None,
        };
        let tied = self.tied_embeddings;
        let p = self.params_init;
        let d_deep_input = self.d_hidden + self.d_annotation + self.d_embedding;
        Decoder {
            embedding: EmbeddingConfig::new(self.vocab_size, self.d_embedding)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: self.embedding_init_std,
                })
                .init(device),
            cell: Cell::new(
                self.cell,
                self.d_embedding + self.d_annotation,
                self.d_hidden,
                init,
                device,
            ),
            attention: Attention::new(
                self.scorer,
                self.d_hidden,
                self.d_annotation,
                self.d_attention,
                self.cosine_temperature,
                p,
                device,
            ),
            bridge: d_bridge_in.map(|d| p.weight([d, self.d_hidden], device)),
            bridge_bias: d_bridge_in.map(|d| p.bias(self.d_hidden, d, device)),
            deep_output: p.weight([d_deep_input, k * self.d_output], device),
            deep_output_bias: p.bias(k * self.d_output, d_deep_input, device),
            output_projection: (!tied).then(|| p.weight([self.d_output, self.vocab_size], device)),
            output_bias: p.bias(self.vocab_size, self.d_output, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            bridge_kind: self.bridge,
            deep_output_kind: self.deep_output,
        }
    }
}

impl Decoder {
    /// The initial state s_0 from the annotations.
    pub fn initial_state(&self, encoded: &Encoded) -> RecurrentState<2> {
        let h = encoded.annotations.clone();
        let [batch, _, d_annotation] = h.dims();
        let m = self.cell.d_hidden();
        let summary = match self.bridge_kind {
            // ←h_1: the backward half of the first annotation
            Bridge::BackwardFirst => Some(
                h.narrow(1, 0, 1)
                    .narrow(2, d_annotation / 2, d_annotation / 2)
                    .reshape([batch, d_annotation / 2]),
            ),
            Bridge::Mean => {
                let keep = encoded.mask.clone().float();
                let lengths = keep.clone().sum_dim(1); // [batch, 1]
                Some(
                    (h * keep.unsqueeze_dim::<3>(2))
                        .sum_dim(1)
                        .reshape([batch, d_annotation])
                        / lengths,
                )
            }
            Bridge::Zero => None,
        };
        let hidden = match (summary, &self.bridge, &self.bridge_bias) {
            (Some(x), Some(w), Some(b)) => {
                burn::tensor::module::linear(x, w.val(), Some(b.val())).tanh()
            }
            _ => Tensor::zeros([batch, m], &encoded.annotations.device()),
        };
        RecurrentState::new(self.cell.kind(), hidden)
    }

    /// Derives the per-batch step weights (see [`StepWeights`]).
    pub fn step_weights(&self) -> StepWeights {
        let recurrent = self.cell.recurrent_weight.val();
        let bias = self.cell.recurrent_bias.val();
        let d_emb = self.embedding.weight.dims()[1];
        let input = self.cell.input_weight.val();
        let d_annotation = input.dims()[0] - d_emb;
        let context_weight = input.narrow(0, d_emb, d_annotation);
        match self.attention.query_weight() {
            Some(w_a) => {
                let a = w_a.dims()[1];
                let device = bias.device();
                StepWeights {
                    recurrent: Tensor::cat(vec![recurrent, w_a], 1),
                    recurrent_bias: Tensor::cat(vec![bias, Tensor::zeros([a], &device)], 0),
                    context_weight,
                }
            }
            None => StepWeights {
                recurrent,
                recurrent_bias: bias,
                context_weight,
            },
        }
    }

    /// Embeds target tokens (with dropout): `[batch, len]` → `[batch, len, E]`.
    pub fn embed(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.dropout.forward(self.embedding.forward(tokens))
    }

    /// The input-side term of the cell that depends only on E y_{i-1}: `[.., E]` → `[.., G·m]`.
    pub fn project_embeddings<const D: usize>(&self, embedded: Tensor<D>) -> Tensor<D> {
        let d_emb = embedded.dims()[D - 1];
        let w = self.cell.input_weight.val().narrow(0, 0, d_emb);
        burn::tensor::module::linear(embedded, w, Some(self.cell.input_bias.val()))
    }

    /// The recurrent part of step i, shared by teacher forcing and search.
    ///
    /// 1. c_i and α_i from s_{i-1} and every h_j (attention);
    /// 2. s_i = f(s_{i-1}, [E y_{i-1}; c_i]), where `embedding_term` is W_y E y_{i-1} + b,
    ///    already computed for all positions outside the loop.
    pub fn recurrent_step(
        &self,
        embedding_term: Tensor<2>,
        state: RecurrentState<2>,
        projected: &ProjectedAnnotations,
        weights: &StepWeights,
    ) -> DecoderStep {
        let g = self.cell.kind().gates() * self.cell.d_hidden();
        // [U s_{i-1} + c | W_a s_{i-1}] in one matmul
        let projected_state = burn::tensor::module::linear(
            state.hidden.clone(),
            weights.recurrent.clone(),
            Some(weights.recurrent_bias.clone()),
        );
        let width = projected_state.dims()[1];
        let (recurrent_term, query) = if width > g {
            (
                projected_state.clone().narrow(1, 0, g),
                projected_state.narrow(1, g, width - g),
            )
        } else {
            (projected_state, state.hidden.clone())
        };
        let (context, alignment_weights) = self.attention.forward(query, projected);
        let input_term = embedding_term + context.clone().matmul(weights.context_weight.clone());
        let state = self.cell.step(input_term, recurrent_term, state);
        DecoderStep {
            state,
            context,
            alignment_weights,
            logits: None,
        }
    }

    /// One full incremental step for search: embeds y_{i-1}, runs [`Self::recurrent_step`]
    /// and the output layer.
    pub fn step(
        &self,
        previous: Tensor<1, Int>,
        state: RecurrentState<2>,
        projected: &ProjectedAnnotations,
        weights: &StepWeights,
    ) -> DecoderStep {
        let [batch] = previous.dims();
        let embedded = self.embed(previous.reshape([batch, 1]));
        let d_emb = embedded.dims()[2];
        let embedded = embedded.reshape([batch, d_emb]);
        let mut step = self.recurrent_step(
            self.project_embeddings(embedded.clone()),
            state,
            projected,
            weights,
        );
        step.logits = Some(self.logits(step.state.hidden.clone(), step.context.clone(), embedded));
        step
    }

    /// The deep output and vocabulary projection for any number of positions:
    /// logits = W_o t_i with t_i = maxout(U_o s_i + C_o c_i + V_o E y_{i-1} + b_o).
    pub fn logits<const D: usize>(
        &self,
        states: Tensor<D>,
        contexts: Tensor<D>,
        embedded: Tensor<D>,
    ) -> Tensor<D> {
        let features = Tensor::cat(vec![states, contexts, embedded], D - 1);
        let pre = burn::tensor::module::linear(
            features,
            self.deep_output.val(),
            Some(self.deep_output_bias.val()),
        );
        let t = if self.deep_output_kind == DeepOutput::Maxout {
            // Maxout over unit pairs; pairing unit k with unit k + l (rather than 2k with 2k+1)
            // is the same family up to a permutation of W, and needs no reshape.
            let l = pre.dims()[D - 1] / 2;
            pre.clone()
                .narrow(D - 1, 0, l)
                .max_pair(pre.narrow(D - 1, l, l))
        } else {
            pre.tanh()
        };
        let t = self.dropout.forward(t);
        let w_o = match &self.output_projection {
            Some(w) => w.val(),
            None => self.embedding.weight.val().transpose(),
        };
        burn::tensor::module::linear(t, w_o, Some(self.output_bias.val()))
    }
}

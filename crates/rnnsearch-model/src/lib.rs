//! The RNNsearch model of Bahdanau, Cho & Bengio (2014), "Neural Machine Translation by Jointly
//! Learning to Align and Translate", as burn modules: a bidirectional RNN [`encoder`], the
//! additive alignment model ([`attention`]), an attentive [`decoder`] and batched [`search`].

pub mod attention;
pub mod cell;
pub mod decoder;
pub mod encoder;
pub mod model;
pub mod search;

pub use attention::{Attention, ProjectedAnnotations, Scorer};
pub use cell::{CellKind, ParamInit, RecurrentState};
pub use decoder::{Bridge, Decoder, DecoderConfig, DecoderStep, DeepOutput};
pub use encoder::{Encoded, Encoder, EncoderConfig};
pub use model::{ModelConfig, Seq2Seq, TeacherForced};
pub use search::{
    search, search_with, BurnSteps, Ensemble, Hypothesis, SearchConfig, StepDecoder, StepScores,
};

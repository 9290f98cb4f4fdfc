//! Training runs for rnnsearch: configuration, loss, checkpoints, the training loop and
//! translation with a trained model.

pub mod average;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod fused;
pub mod loss;
pub mod rundir;
pub mod trainer;
pub mod translate;

pub use config::{Engine, RunConfig, TrainConfig};
pub use error::{Error, Result};
pub use trainer::{
    adam, optimize_step, train, use_fused, BatchTensors, Outcome, RunOptions, StepReport, StepSetup,
};
pub use translate::{Searcher, Translation, Translator};

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
pub use trainer::step::{adam, optimize_step, use_fused, BatchTensors, StepReport, StepSetup};
pub use trainer::{train, Outcome, RunOptions};
pub use translate::{Searcher, Translation, Translator};

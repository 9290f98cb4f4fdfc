//! Training runs for rnnsearch: configuration, loss, checkpoints, the training loop and
//! translation with a trained model.

pub mod average;
pub mod checkpoint;
pub mod config;
pub mod engine;
pub mod error;
pub mod fused;
pub mod loss;
pub mod rescore;
pub mod rundir;
pub mod trainer;
pub mod translate;

pub use config::{EngineChoice, RunConfig, TrainConfig};
pub use engine::{Engine, Learner, StepReport};
pub use error::{Error, Result};
pub use rescore::Rescorer;
pub use trainer::{train, Outcome, RunOptions};
pub use translate::{Searcher, Translation, Translator};

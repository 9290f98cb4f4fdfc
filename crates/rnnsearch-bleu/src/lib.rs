//! sacreBLEU-compatible evaluation for rnnsearch: corpus and sentence BLEU,
//! chrF, chrF++ and TER, bootstrap confidence intervals and paired
//! significance tests.
//!
//! The numbers equal those of sacreBLEU 2.x (checked against sacreBLEU
//! 2.6.0 fixtures to 1e-6): the same tokenizers (`13a`, `intl`, `char`,
//! `zh`, `none`), smoothing methods (`exp`, `floor`, `add-k`, `none`),
//! multiple references (closest reference length, ties to the shorter;
//! n-gram counts clipped by the maximum over references), effective order
//! for sentence BLEU, chrF's per-order averaging with effective-order
//! smoothing, and Tercom's shifts for TER.
//!
//! Every metric ([`Bleu`], [`Chrf`], [`Ter`]) implements [`Metric`], as in
//! sacreBLEU's `metrics/base.py`: per-segment sufficient statistics, summed
//! for a corpus and scored once. [`AnyMetric`] holds any of them with its
//! statistics as rows, for the statistical tests ([`significance`]) and
//! the reports ([`report`], [`json`]).
//!
//! ```
//! use rnnsearch_bleu::{Bleu, Chrf, Metric};
//!
//! let hyps = vec!["The dog bit the man.".to_string()];
//! let refs = vec![vec!["The dog bit the man.".to_string()]];
//! let bleu = Bleu::default().corpus_score(&hyps, &refs).unwrap();
//! assert!((bleu.score - 100.0).abs() < 1e-9); // sacreBLEU: 100.00000000000004
//! let chrf = Chrf::default().corpus_score(&hyps, &refs).unwrap();
//! assert_eq!(chrf.score, 100.0);
//! println!("{bleu}\n{chrf}");
//! ```

pub mod bleu;
pub mod chrf;
pub mod json;
pub mod metric;
pub mod report;
pub mod resample;
pub mod rng;
pub mod significance;
pub mod ter;
pub mod tokenizers;

mod error;
mod input;
mod ngrams;
mod signature;
mod text;

pub use bleu::{
    compute_bleu, Bleu, BleuOptions, BleuScore, SmoothMethod, Statistics as BleuStatistics,
    MAX_NGRAM_ORDER,
};
pub use chrf::{Chrf, ChrfOptions, ChrfScore, Statistics as ChrfStatistics};
pub use error::Error;
pub use input::{check_line_counts, read_lines};
pub use metric::{AnyMetric, Metric, SufficientStatistics};
pub use signature::{Signature, VERSION};
pub use ter::{Statistics as TerStatistics, Ter, TerOptions, TerScore};
pub use tokenizers::{Tokenizer, TokenizerKind};

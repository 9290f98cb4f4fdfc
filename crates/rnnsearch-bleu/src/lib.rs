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
mod smoothing;
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

/// Applies `segment` to every hypothesis and its references (one line of
/// each reference stream), after checking the streams' lengths.
pub(crate) fn per_segment<'a, H, R, RS, S>(
    hyps: &'a [H],
    refs: &'a [RS],
    mut segment: impl FnMut(&'a str, &mut dyn Iterator<Item = &'a str>) -> S,
) -> Result<Vec<S>, Error>
where
    H: AsRef<str>,
    R: AsRef<str> + 'a,
    RS: AsRef<[R]>,
{
    check_streams(hyps.len(), refs)?;
    Ok(hyps
        .iter()
        .enumerate()
        .map(|(i, hyp)| {
            let mut seg_refs = refs.iter().map(|stream| stream.as_ref()[i].as_ref());
            segment(hyp.as_ref(), &mut seg_refs)
        })
        .collect())
}

/// Checks that there is at least one reference stream and that every
/// stream has one line per hypothesis.
pub(crate) fn check_streams<R: AsRef<str>, RS: AsRef<[R]>>(
    hyp_lines: usize,
    refs: &[RS],
) -> Result<(), Error> {
    if refs.is_empty() {
        return Err(Error::NoReferences);
    }
    for (k, stream) in refs.iter().enumerate() {
        let n = stream.as_ref().len();
        if n != hyp_lines {
            return Err(Error::LineCountMismatch {
                hyp: "hypotheses".to_string(),
                hyp_lines,
                reference: format!("reference stream {}", k + 1),
                ref_lines: n,
            });
        }
    }
    Ok(())
}

//! The one metric trait, as sacreBLEU's `metrics/base.py`: a metric
//! extracts sufficient statistics from each segment (a hypothesis and its
//! references), sums them, and computes its score from the sum. A corpus
//! score sums every segment's statistics; a sentence score is the score of
//! one segment's. BLEU, chrF and TER implement [`Metric`].
//!
//! [`AnyMetric`] holds any metric with its statistics as rows of numbers
//! (sacreBLEU's lists): the statistical tests resample those rows and the
//! reports print the score of their sums, whatever the metric.

use std::ops::AddAssign;

use crate::input::per_segment;
use crate::report::Report;
use crate::resample::{Num, StatRows};
use crate::{Error, Signature};

/// A metric's sufficient statistics of a segment or a corpus: summed with
/// `+=` (a corpus in segment order), and written as a row of numbers in
/// sacreBLEU's order for the statistical tests.
pub trait SufficientStatistics: Clone + Default + for<'a> AddAssign<&'a Self> {
    /// Appends the statistics to `row` as numbers.
    fn push_row(&self, row: &mut Vec<f64>);

    /// The statistics of a row, or of a sum of rows, that
    /// [`push_row`](Self::push_row) wrote.
    fn from_row(row: &[f64]) -> Self;
}

/// A metric over sufficient statistics (sacreBLEU's `Metric`). An
/// implementation extracts one segment's statistics and computes a score
/// from statistics; corpus and sentence scores, and statistics rows, come
/// with the trait.
pub trait Metric {
    /// The statistics summed over segments.
    type Statistics: SufficientStatistics;
    /// The score with the details sacreBLEU reports.
    type Score: Into<Report>;

    /// The name in reports (`BLEU`, `chrF2++`, `TER`).
    fn name(&self) -> String;

    /// The reproducibility signature for `nrefs` references.
    fn signature(&self, nrefs: usize) -> Signature;

    /// The statistics of one hypothesis against its references.
    fn segment_statistics(
        &mut self,
        hyp: &str,
        refs: &mut dyn Iterator<Item = &str>,
    ) -> Self::Statistics;

    /// The score of (summed) statistics with its details and the signature
    /// for `nrefs` references (sacreBLEU's `_compute_score_from_stats`).
    fn score(&self, stats: &Self::Statistics, nrefs: usize) -> Self::Score;

    /// The number alone of [`score`](Self::score): what the statistical
    /// tests compute for every resample, without building a signature.
    fn score_value(&self, stats: &Self::Statistics) -> f64;

    /// Numbers per row of [`SufficientStatistics::push_row`].
    fn row_width(&self) -> usize;

    /// The score of a sum of rows made in `float32`, as sacreBLEU's
    /// bootstrap computes it with NumPy (see [`crate::resample`]); `sums`
    /// may be changed (add-k smoothing adds to it in place).
    fn score_f32(&self, sums: &mut [f32]) -> Num;

    /// Every segment's statistics; `refs` holds one stream per reference,
    /// each with one line per hypothesis (sacreBLEU's
    /// `_extract_corpus_statistics`).
    fn corpus_statistics<H, R, RS>(
        &mut self,
        hyps: &[H],
        refs: &[RS],
    ) -> Result<Vec<Self::Statistics>, Error>
    where
        H: AsRef<str>,
        R: AsRef<str>,
        RS: AsRef<[R]>,
    {
        per_segment(hyps, refs, |hyp, seg_refs| {
            self.segment_statistics(hyp, seg_refs)
        })
    }

    /// The score of the sum of `stats`, in order (sacreBLEU's
    /// `_aggregate_and_compute`).
    fn aggregate(&self, stats: &[Self::Statistics], nrefs: usize) -> Self::Score {
        let mut total = Self::Statistics::default();
        for s in stats {
            total += s;
        }
        self.score(&total, nrefs)
    }

    /// The corpus score of `hyps` against reference streams `refs` (each
    /// stream one line per hypothesis): segment statistics summed, then
    /// scored once.
    fn corpus_score<H, R, RS>(&mut self, hyps: &[H], refs: &[RS]) -> Result<Self::Score, Error>
    where
        H: AsRef<str>,
        R: AsRef<str>,
        RS: AsRef<[R]>,
    {
        let stats = self.corpus_statistics(hyps, refs)?;
        Ok(self.aggregate(&stats, refs.len()))
    }

    /// The score of one hypothesis against its references. sacreBLEU's
    /// `sentence_bleu` also turns BLEU's effective order on: build the
    /// [`Bleu`](crate::Bleu) with `effective_order: true` for that.
    fn sentence_score<R: AsRef<str>>(
        &mut self,
        hyp: &str,
        refs: &[R],
    ) -> Result<Self::Score, Error> {
        if refs.is_empty() {
            return Err(Error::NoReferences);
        }
        let stats = self.segment_statistics(hyp, &mut refs.iter().map(AsRef::as_ref));
        Ok(self.score(&stats, refs.len()))
    }

    /// Every segment's statistics as a row of [`row_width`](Self::row_width)
    /// numbers.
    fn stat_rows<H, R, RS>(&mut self, hyps: &[H], refs: &[RS]) -> Result<StatRows, Error>
    where
        H: AsRef<str>,
        R: AsRef<str>,
        RS: AsRef<[R]>,
    {
        let width = self.row_width();
        let stats = self.corpus_statistics(hyps, refs)?;
        let mut data = Vec::with_capacity(stats.len() * width);
        for s in &stats {
            let start = data.len();
            s.push_row(&mut data);
            data.resize(start + width, 0.0);
        }
        Ok(StatRows { width, data })
    }
}

/// Any [`Metric`], its statistics as rows of numbers: what the statistical
/// tests ([`crate::significance`]) and the reports work with.
pub struct AnyMetric(Box<dyn Rows + Send>);

impl AnyMetric {
    /// Holds `metric`.
    pub fn new<M: Metric + Send + 'static>(metric: M) -> Self {
        AnyMetric(Box::new(metric))
    }

    /// The name in reports.
    pub fn name(&self) -> String {
        self.0.name()
    }

    /// The signature for `nrefs` references.
    pub fn signature(&self, nrefs: usize) -> Signature {
        self.0.signature(nrefs)
    }

    /// Every segment's statistics against its references, as rows.
    pub fn stat_rows(&mut self, hyps: &[String], refs: &[Vec<String>]) -> Result<StatRows, Error> {
        self.0.stat_rows(hyps, refs)
    }

    /// The report of a sum of rows, with the signature for `nrefs`.
    pub fn score(&self, sums: &[f64], nrefs: usize) -> Report {
        self.0.score(sums, nrefs)
    }

    /// The score of a sum of rows, in double precision.
    pub fn score_value(&self, sums: &[f64]) -> f64 {
        self.0.score_value(sums)
    }

    /// [`Metric::score_f32`].
    pub fn score_f32(&self, sums: &mut [f32]) -> Num {
        self.0.score_f32(sums)
    }
}

/// [`Metric`] with rows for statistics and a [`Report`] for the score: the
/// object-safe face behind [`AnyMetric`], given to every metric.
trait Rows {
    fn name(&self) -> String;
    fn signature(&self, nrefs: usize) -> Signature;
    fn stat_rows(&mut self, hyps: &[String], refs: &[Vec<String>]) -> Result<StatRows, Error>;
    fn score(&self, sums: &[f64], nrefs: usize) -> Report;
    fn score_value(&self, sums: &[f64]) -> f64;
    fn score_f32(&self, sums: &mut [f32]) -> Num;
}

impl<M: Metric> Rows for M {
    fn name(&self) -> String {
        Metric::name(self)
    }

    fn signature(&self, nrefs: usize) -> Signature {
        Metric::signature(self, nrefs)
    }

    fn stat_rows(&mut self, hyps: &[String], refs: &[Vec<String>]) -> Result<StatRows, Error> {
        Metric::stat_rows(self, hyps, refs)
    }

    fn score(&self, sums: &[f64], nrefs: usize) -> Report {
        Metric::score(self, &M::Statistics::from_row(sums), nrefs).into()
    }

    fn score_value(&self, sums: &[f64]) -> f64 {
        Metric::score_value(self, &M::Statistics::from_row(sums))
    }

    fn score_f32(&self, sums: &mut [f32]) -> Num {
        Metric::score_f32(self, sums)
    }
}

//! Metrics as sacreBLEU's statistical tests see them: every segment's
//! sufficient statistics as one row of numbers, and a score of any sum of
//! rows (sacreBLEU's `Metric._compute_score_from_stats`).
//!
//! sacreBLEU scores resampled sums in two number types, and the last digits
//! of its confidence intervals and p-values depend on which:
//! - paired approximate randomization sums integer rows exactly and scores
//!   them in double precision, as for the actual score ([`Resample::score`]);
//! - bootstrap resampling sums the rows as NumPy `float32` and scores them
//!   under NumPy 2's promotion rules (NEP 50: a `float32` combined with a
//!   Python number stays `float32`), so chrF and TER come out as `float32`
//!   and BLEU as a double computed from `float32` precisions
//!   ([`Resample::score_f32`]).

use crate::bleu::{Bleu, BleuOptions, Statistics as BleuStatistics, MAX_NGRAM_ORDER};
use crate::chrf::{Chrf, Statistics as ChrfStatistics};
use crate::smoothing::{compute_bleu, SmoothMethod};
use crate::ter::{Statistics as TerStatistics, Ter};
use crate::{Error, Signature};

/// A score as sacreBLEU's resampling produces it: a NumPy `float32` or a
/// Python float (a double).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// NumPy `float32`.
    F32(f32),
    /// Python `float` (or `int`, exactly representable).
    F64(f64),
}

impl Num {
    /// The value as a double (exact for both kinds).
    pub fn value(self) -> f64 {
        match self {
            Num::F32(x) => f64::from(x),
            Num::F64(x) => x,
        }
    }

    /// A binary operation under NEP 50: if either side is `float32` the
    /// other (a Python number) is cast to `float32` and the operation runs
    /// in single precision; two Python numbers give a double.
    fn op(self, other: Num, single: fn(f32, f32) -> f32, double: fn(f64, f64) -> f64) -> Num {
        match (self, other) {
            (Num::F64(a), Num::F64(b)) => Num::F64(double(a, b)),
            (a, b) => Num::F32(single(a.as_f32(), b.as_f32())),
        }
    }

    fn as_f32(self) -> f32 {
        match self {
            Num::F32(x) => x,
            Num::F64(x) => x as f32,
        }
    }

    fn add(self, o: Num) -> Num {
        self.op(o, |a, b| a + b, |a, b| a + b)
    }

    fn mul(self, o: Num) -> Num {
        self.op(o, |a, b| a * b, |a, b| a * b)
    }

    fn div(self, o: Num) -> Num {
        self.op(o, |a, b| a / b, |a, b| a / b)
    }
}

/// Per-segment statistics as rows of `width` numbers (sacreBLEU's lists).
#[derive(Debug, Clone, PartialEq)]
pub struct StatRows {
    /// Numbers per segment.
    pub width: usize,
    /// Row after row.
    pub data: Vec<f64>,
}

impl StatRows {
    /// Number of segments.
    pub fn len(&self) -> usize {
        self.data.len() / self.width.max(1)
    }

    /// True when there are no segments.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.width..(i + 1) * self.width]
    }

    /// The column sums, added row by row (exact for integer statistics).
    pub fn sum(&self) -> Vec<f64> {
        let mut total = vec![0.0; self.width];
        for i in 0..self.len() {
            for (t, x) in total.iter_mut().zip(self.row(i)) {
                *t += x;
            }
        }
        total
    }
}

/// A metric over sufficient statistics, as the statistical tests use it.
pub trait Resample {
    /// The metric's name in reports (`BLEU`, `chrF2++`, `TER`).
    fn name(&self) -> String;

    /// The signature for `nrefs` references.
    fn signature(&self, nrefs: usize) -> Signature;

    /// Every segment's statistics against its references, as rows.
    fn stat_rows(&mut self, hyps: &[String], refs: &[Vec<String>]) -> Result<StatRows, Error>;

    /// The score of a sum of rows, in double precision.
    fn score(&self, sums: &[f64]) -> f64;

    /// The score of a sum of rows made in `float32`, as NumPy computes it;
    /// `sums` may be changed (add-k smoothing adds to it in place).
    fn score_f32(&self, sums: &mut [f32]) -> Num;
}

fn rows_of<S>(stats: &[S], width: usize, push: impl Fn(&S, &mut Vec<f64>)) -> StatRows {
    let mut data = Vec::with_capacity(stats.len() * width);
    for s in stats {
        push(s, &mut data);
    }
    StatRows { width, data }
}

/// BLEU statistics from a row: `[sys_len, ref_len, correct…, total…]`.
pub fn bleu_statistics(row: &[f64]) -> BleuStatistics {
    let mut stats = BleuStatistics {
        sys_len: row[0] as u64,
        ref_len: row[1] as u64,
        ..BleuStatistics::default()
    };
    for n in 0..MAX_NGRAM_ORDER {
        stats.correct[n] = row[2 + n] as u64;
        stats.total[n] = row[2 + MAX_NGRAM_ORDER + n] as u64;
    }
    stats
}

/// chrF statistics from a row: `[hyp, ref, match]` per order.
pub fn chrf_statistics(row: &[f64]) -> ChrfStatistics {
    ChrfStatistics {
        orders: row
            .chunks(3)
            .map(|c| [c[0] as u64, c[1] as u64, c[2] as u64])
            .collect(),
    }
}

/// TER statistics from a row: `[edits, average reference length]`.
pub fn ter_statistics(row: &[f64]) -> TerStatistics {
    TerStatistics {
        edits: row[0],
        ref_len: row[1],
    }
}

const BLEU_WIDTH: usize = 2 + 2 * MAX_NGRAM_ORDER;

impl Resample for Bleu {
    fn name(&self) -> String {
        "BLEU".to_string()
    }

    fn signature(&self, nrefs: usize) -> Signature {
        Bleu::signature(self, nrefs)
    }

    fn stat_rows(&mut self, hyps: &[String], refs: &[Vec<String>]) -> Result<StatRows, Error> {
        let stats = self.corpus_statistics(hyps, refs)?;
        Ok(rows_of(&stats, BLEU_WIDTH, |s, out| {
            out.extend([s.sys_len as f64, s.ref_len as f64]);
            out.extend(s.correct.iter().map(|&c| c as f64));
            out.extend(s.total.iter().map(|&t| t as f64));
        }))
    }

    fn score(&self, sums: &[f64]) -> f64 {
        let o = self.options();
        compute_bleu(
            &bleu_statistics(sums),
            o.smooth_method,
            o.smooth_value,
            o.effective_order,
        )
        .score
    }

    fn score_f32(&self, sums: &mut [f32]) -> Num {
        Num::F64(bleu_f32(self.options(), sums))
    }
}

/// sacreBLEU's `compute_bleu` on `float32` statistics: the precisions are
/// `float32`, their logarithms and the score are doubles.
fn bleu_f32(opts: &BleuOptions, sums: &mut [f32]) -> f64 {
    let value = opts
        .smooth_value
        .or(opts.smooth_method.default_value())
        .unwrap_or(0.0);
    // Python's int() of a float32 truncates.
    let (sys_len, ref_len) = (sums[0] as i64, sums[1] as i64);
    let (correct, total) = sums[2..].split_at_mut(MAX_NGRAM_ORDER);
    let mut bp = 1.0;
    if sys_len < ref_len {
        bp = if sys_len > 0 {
            (1.0 - ref_len as f64 / sys_len as f64).exp()
        } else {
            0.0
        };
    }
    if correct.iter().all(|&c| c == 0.0) {
        return 0.0;
    }
    let mut precisions = [Num::F64(0.0); MAX_NGRAM_ORDER];
    let mut smooth_mteval = 1.0f64;
    let mut eff_order = MAX_NGRAM_ORDER;
    for n in 1..=MAX_NGRAM_ORDER {
        if opts.smooth_method == SmoothMethod::AddK && n > 1 {
            correct[n - 1] += value as f32;
            total[n - 1] += value as f32;
        }
        if total[n - 1] == 0.0 {
            break;
        }
        if opts.effective_order {
            eff_order = n;
        }
        let t = Num::F32(total[n - 1]);
        if correct[n - 1] == 0.0 {
            match opts.smooth_method {
                SmoothMethod::Exp => {
                    smooth_mteval *= 2.0;
                    precisions[n - 1] = Num::F64(100.0).div(Num::F64(smooth_mteval).mul(t));
                }
                SmoothMethod::Floor => {
                    precisions[n - 1] = Num::F64(100.0 * value).div(t);
                }
                SmoothMethod::None | SmoothMethod::AddK => {}
            }
        } else {
            precisions[n - 1] = Num::F64(100.0).mul(Num::F32(correct[n - 1])).div(t);
        }
    }
    let log_sum: f64 = precisions[..eff_order]
        .iter()
        .map(|p| match p.value() {
            0.0 => -9_999_999_999.0,
            x => x.ln(),
        })
        .sum();
    bp * (log_sum / eff_order as f64).exp()
}

impl Resample for Chrf {
    fn name(&self) -> String {
        Chrf::name(self)
    }

    fn signature(&self, nrefs: usize) -> Signature {
        Chrf::signature(self, nrefs)
    }

    fn stat_rows(&mut self, hyps: &[String], refs: &[Vec<String>]) -> Result<StatRows, Error> {
        let width = 3 * (self.options().char_order + self.options().word_order);
        let stats = self.corpus_statistics(hyps, refs)?;
        Ok(rows_of(&stats, width, |s, out| {
            let start = out.len();
            out.extend(s.orders.iter().flatten().map(|&x| x as f64));
            out.resize(start + width, 0.0);
        }))
    }

    fn score(&self, sums: &[f64]) -> f64 {
        self.f_score(&chrf_statistics(sums))
    }

    fn score_f32(&self, sums: &mut [f32]) -> Num {
        let o = self.options();
        chrf_f32(f64::from(o.beta), o.eps_smoothing, sums)
    }
}

/// sacreBLEU's `_compute_f_score` on `float32` statistics (NEP 50).
fn chrf_f32(beta: f64, eps_smoothing: bool, sums: &[f32]) -> Num {
    let eps = Num::F64(1e-16);
    let factor = Num::F64(beta * beta);
    let one_plus = Num::F64(1.0 + beta * beta);
    let order = sums.len() / 3;
    let (mut score, mut avg_prec, mut avg_rec) = (Num::F64(0.0), Num::F64(0.0), Num::F64(0.0));
    let mut effective_order = 0usize;
    for c in sums.chunks(3) {
        let (n_hyp, n_ref, n_match) = (c[0], c[1], c[2]);
        let prec = if n_hyp > 0.0 {
            Num::F32(n_match / n_hyp)
        } else {
            eps
        };
        let rec = if n_ref > 0.0 {
            Num::F32(n_match / n_ref)
        } else {
            eps
        };
        let denom = factor.mul(prec).add(rec);
        score = score.add(if denom.value() > 0.0 {
            one_plus.mul(prec).mul(rec).div(denom)
        } else {
            eps
        });
        if n_hyp > 0.0 && n_ref > 0.0 {
            avg_prec = avg_prec.add(prec);
            avg_rec = avg_rec.add(rec);
            effective_order += 1;
        }
    }
    if eps_smoothing {
        return Num::F64(100.0).mul(score).div(Num::F64(order as f64));
    }
    if effective_order == 0 {
        return Num::F64(0.0);
    }
    let k = Num::F64(effective_order as f64);
    let (avg_prec, avg_rec) = (avg_prec.div(k), avg_rec.div(k));
    if avg_prec.add(avg_rec).value() == 0.0 {
        return Num::F64(0.0);
    }
    let score = one_plus.mul(avg_prec).mul(avg_rec);
    let score = score.div(factor.mul(avg_prec).add(avg_rec));
    Num::F64(100.0).mul(score)
}

impl Resample for Ter {
    fn name(&self) -> String {
        "TER".to_string()
    }

    fn signature(&self, nrefs: usize) -> Signature {
        Ter::signature(self, nrefs)
    }

    fn stat_rows(&mut self, hyps: &[String], refs: &[Vec<String>]) -> Result<StatRows, Error> {
        let stats = self.corpus_statistics(hyps, refs)?;
        Ok(rows_of(&stats, 2, |s, out| {
            out.extend([s.edits, s.ref_len])
        }))
    }

    fn score(&self, sums: &[f64]) -> f64 {
        ter_statistics(sums).ter()
    }

    fn score_f32(&self, sums: &mut [f32]) -> Num {
        let (edits, ref_len) = (sums[0], sums[1]);
        let rate = if ref_len > 0.0 {
            Num::F32(edits / ref_len)
        } else if edits > 0.0 {
            Num::F64(1.0)
        } else {
            Num::F64(0.0)
        };
        Num::F64(100.0).mul(rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chrf::ChrfOptions;

    #[test]
    fn nep50_promotion() {
        let third = Num::F32(1.0).div(Num::F64(3.0));
        assert_eq!(third, Num::F32(1.0f32 / 3.0f32));
        assert_eq!(Num::F64(1.0).div(Num::F64(3.0)), Num::F64(1.0 / 3.0));
    }

    #[test]
    fn f32_and_f64_paths_agree_closely() {
        let hyps = vec!["the cat sat on the mat".to_string(), "a dog".to_string()];
        let refs = vec![vec![
            "the cat sat on a mat".to_string(),
            "the dog barked".to_string(),
        ]];
        let mut metrics: Vec<Box<dyn Resample>> = vec![
            Box::new(Bleu::new(BleuOptions::default()).unwrap()),
            Box::new(Chrf::new(ChrfOptions::chrf_plus_plus()).unwrap()),
            Box::new(Ter::new(Default::default()).unwrap()),
        ];
        for m in &mut metrics {
            let rows = m.stat_rows(&hyps, &refs).unwrap();
            assert_eq!(rows.len(), 2);
            let sums = rows.sum();
            let mut single: Vec<f32> = sums.iter().map(|&x| x as f32).collect();
            let exact = m.score(&sums);
            let approx = m.score_f32(&mut single).value();
            assert!(
                (exact - approx).abs() < 1e-4,
                "{}: {exact} {approx}",
                m.name()
            );
        }
    }
}

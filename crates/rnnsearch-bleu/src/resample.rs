//! Metrics as sacreBLEU's statistical tests see them: every segment's
//! sufficient statistics as one row of numbers ([`StatRows`], written by
//! [`Metric::stat_rows`](crate::Metric::stat_rows)), and a score of any sum
//! of rows (sacreBLEU's `Metric._compute_score_from_stats`).
//!
//! sacreBLEU scores resampled sums in two number types, and the last digits
//! of its confidence intervals and p-values depend on which:
//! - paired approximate randomization sums integer rows exactly and scores
//!   them in double precision, as for the actual score
//!   ([`AnyMetric::score_value`](crate::AnyMetric::score_value));
//! - bootstrap resampling sums the rows as NumPy `float32` and scores them
//!   under NumPy 2's promotion rules (NEP 50: a `float32` combined with a
//!   Python number stays `float32`), so chrF and TER come out as `float32`
//!   and BLEU as a double computed from `float32` precisions
//!   ([`Metric::score_f32`](crate::Metric::score_f32), with the functions
//!   here).

use crate::bleu::{BleuOptions, MAX_NGRAM_ORDER};
use crate::smoothing::SmoothMethod;

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

/// sacreBLEU's `compute_bleu` on `float32` statistics: the precisions are
/// `float32`, their logarithms and the score are doubles.
pub(crate) fn bleu_f32(opts: &BleuOptions, sums: &mut [f32]) -> f64 {
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

/// sacreBLEU's `_compute_f_score` on `float32` statistics (NEP 50).
pub(crate) fn chrf_f32(beta: f64, eps_smoothing: bool, sums: &[f32]) -> Num {
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

/// TER of `float32` statistics: `[edits, average reference length]`.
pub(crate) fn ter_f32(sums: &[f32]) -> Num {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AnyMetric, Bleu, Chrf, ChrfOptions, Ter};

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
        let mut metrics = [
            AnyMetric::new(Bleu::default()),
            AnyMetric::new(Chrf::new(ChrfOptions::chrf_plus_plus()).unwrap()),
            AnyMetric::new(Ter::default()),
        ];
        for m in &mut metrics {
            let rows = m.stat_rows(&hyps, &refs).unwrap();
            assert_eq!(rows.len(), 2);
            let sums = rows.sum();
            let mut single: Vec<f32> = sums.iter().map(|&x| x as f32).collect();
            let exact = m.score_value(&sums);
            let approx = m.score_f32(&mut single).value();
            assert!(
                (exact - approx).abs() < 1e-4,
                "{}: {exact} {approx}",
                m.name()
            );
        }
    }
}

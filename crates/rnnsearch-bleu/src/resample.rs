//! Metrics as sacreBLEU's statistical tests see them: every segment's
//! sufficient statistics as one row of numbers ([`StatRows`], written by
//! [`Metric::stat_rows`](crate::Metric::stat_rows)), a score of any sum
//! of rows (sacreBLEU's `Metric._compute_score_from_stats`), and the
//! bootstrap estimate of a score ([`Confidence`], computed by
//! [`crate::significance`], printed by the reports).
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
//!   ([`Metric::score_f32`](crate::Metric::score_f32): each metric's
//!   `float32` scorer sits beside the metric, with [`Num`]'s arithmetic).

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

    pub(crate) fn add(self, o: Num) -> Num {
        self.op(o, |a, b| a + b, |a, b| a + b)
    }

    pub(crate) fn mul(self, o: Num) -> Num {
        self.op(o, |a, b| a * b, |a, b| a * b)
    }

    pub(crate) fn div(self, o: Num) -> Num {
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

/// A score's bootstrap estimate: the mean of the resampled scores and the
/// half-width of their 95% interval (see [`crate::significance`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confidence {
    /// μ, the mean of the resampled scores.
    pub mean: f64,
    /// Half the width of the 95% interval.
    pub ci: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nep50_promotion() {
        let third = Num::F32(1.0).div(Num::F64(3.0));
        assert_eq!(third, Num::F32(1.0f32 / 3.0f32));
        assert_eq!(Num::F64(1.0).div(Num::F64(3.0)), Num::F64(1.0 / 3.0));
    }
}

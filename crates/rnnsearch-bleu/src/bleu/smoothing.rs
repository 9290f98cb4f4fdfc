//! BLEU smoothing (Chen & Cherry, 2014) and the score from statistics,
//! exactly as sacreBLEU's `BLEU.compute_bleu`: in double precision
//! ([`compute_bleu`]) and on the `float32` sums of bootstrap resampling
//! ([`bleu_f32`]).

use std::fmt;
use std::str::FromStr;

use super::statistics::{Statistics, MAX_NGRAM_ORDER};
use crate::resample::Num;
use crate::Error;

/// Smoothing methods of Chen & Cherry (2014), by sacreBLEU name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SmoothMethod {
    /// `none`: no smoothing.
    None,
    /// `floor`: zero-match precisions become `value / total` (default 0.1).
    Floor,
    /// `add-k`: add `value` to matches and totals of orders > 1 (default 1).
    AddK,
    /// `exp`: mteval-v13a's exponential decay (the default).
    #[default]
    Exp,
}

impl SmoothMethod {
    /// All methods, in sacreBLEU's order.
    pub const ALL: [SmoothMethod; 4] = [Self::None, Self::Floor, Self::AddK, Self::Exp];

    /// The sacreBLEU name (`none`, `floor`, `add-k`, `exp`).
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Floor => "floor",
            Self::AddK => "add-k",
            Self::Exp => "exp",
        }
    }

    /// The value used when none is given (`floor` 0.1, `add-k` 1), or
    /// `None` for methods without a value.
    pub fn default_value(self) -> Option<f64> {
        match self {
            Self::Floor => Some(0.1),
            Self::AddK => Some(1.0),
            Self::None | Self::Exp => None,
        }
    }
}

impl fmt::Display for SmoothMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SmoothMethod {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| Error::InvalidOption(format!("unknown smoothing method {s:?}")))
    }
}

/// The outcome of [`compute_bleu`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Computed {
    /// BLEU in [0, 100].
    pub score: f64,
    /// Smoothed precisions in percent.
    pub precisions: [f64; MAX_NGRAM_ORDER],
    /// Brevity penalty.
    pub bp: f64,
}

/// sacreBLEU's `my_log`: the logarithm, with log(0) floored.
fn my_log(x: f64) -> f64 {
    if x == 0.0 {
        -9_999_999_999.0
    } else {
        x.ln()
    }
}

/// BLEU from statistics with smoothing (sacreBLEU's `compute_bleu`).
pub fn compute_bleu(
    stats: &Statistics,
    smooth_method: SmoothMethod,
    smooth_value: Option<f64>,
    effective_order: bool,
) -> Computed {
    let value = smooth_value
        .or(smooth_method.default_value())
        .unwrap_or(0.0);
    let (sys_len, ref_len) = (stats.sys_len as f64, stats.ref_len as f64);
    let mut bp = 1.0;
    if stats.sys_len < stats.ref_len {
        bp = if stats.sys_len > 0 {
            (1.0 - ref_len / sys_len).exp()
        } else {
            0.0
        };
    }
    let mut precisions = [0.0; MAX_NGRAM_ORDER];
    if stats.correct.iter().all(|&c| c == 0) {
        return Computed {
            score: 0.0,
            precisions,
            bp,
        };
    }
    let mut smooth_mteval = 1.0;
    let mut eff_order = MAX_NGRAM_ORDER;
    for n in 1..=MAX_NGRAM_ORDER {
        let mut correct = stats.correct[n - 1] as f64;
        let mut total = stats.total[n - 1] as f64;
        if smooth_method == SmoothMethod::AddK && n > 1 {
            correct += value;
            total += value;
        }
        if total == 0.0 {
            break;
        }
        if effective_order {
            eff_order = n;
        }
        if correct == 0.0 {
            match smooth_method {
                SmoothMethod::Exp => {
                    smooth_mteval *= 2.0;
                    precisions[n - 1] = 100.0 / (smooth_mteval * total);
                }
                SmoothMethod::Floor => precisions[n - 1] = 100.0 * value / total,
                SmoothMethod::None | SmoothMethod::AddK => {}
            }
        } else {
            precisions[n - 1] = 100.0 * correct / total;
        }
    }
    let log_sum: f64 = precisions[..eff_order].iter().map(|&p| my_log(p)).sum();
    Computed {
        score: bp * (log_sum / eff_order as f64).exp(),
        precisions,
        bp,
    }
}

/// sacreBLEU's `compute_bleu` on `float32` statistics: the precisions are
/// `float32`, their logarithms and the score are doubles.
pub(crate) fn bleu_f32(
    sums: &mut [f32],
    smooth_method: SmoothMethod,
    smooth_value: Option<f64>,
    effective_order: bool,
) -> f64 {
    let value = smooth_value
        .or(smooth_method.default_value())
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
        if smooth_method == SmoothMethod::AddK && n > 1 {
            correct[n - 1] += value as f32;
            total[n - 1] += value as f32;
        }
        if total[n - 1] == 0.0 {
            break;
        }
        if effective_order {
            eff_order = n;
        }
        let t = Num::F32(total[n - 1]);
        if correct[n - 1] == 0.0 {
            match smooth_method {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_method_names_round_trip() {
        for m in SmoothMethod::ALL {
            assert_eq!(m.name().parse::<SmoothMethod>().unwrap(), m);
        }
    }

    #[test]
    fn scoring_case_from_sacrebleu() {
        // sacreBLEU's test_bleu.py test_case_scoring.
        let stats = Statistics {
            sys_len: 11,
            ref_len: 11,
            correct: [9, 7, 5, 3],
            total: [10, 8, 6, 4],
        };
        let got = compute_bleu(&stats, SmoothMethod::Exp, None, false).score / 100.0;
        assert!((got - 0.8375922397).abs() < 1e-8);
    }

    #[test]
    fn degenerate_statistics_score_zero() {
        // sacreBLEU's test_bleu.py test_case_degenerate_stats (floor).
        let cases = [
            ([0, 0, 0, 0], [4, 4, 2, 1], 0, 1, 0.0),
            ([0, 0, 0, 0], [10, 11, 12, 0], 14, 10, 0.0),
            ([0, 0, 0, 0], [0, 0, 0, 0], 0, 0, 0.0),
            ([6, 5, 4, 0], [6, 5, 4, 3], 6, 6, 0.0),
            ([0, 0, 0, 0], [0, 0, 0, 0], 0, 0, 0.1),
            ([0, 0, 0, 0], [0, 0, 0, 0], 1, 5, 0.01),
        ];
        for (correct, total, sys_len, ref_len, value) in cases {
            let stats = Statistics {
                sys_len,
                ref_len,
                correct,
                total,
            };
            let got = compute_bleu(&stats, SmoothMethod::Floor, Some(value), false);
            assert_eq!(got.score, 0.0, "{stats:?}");
        }
    }
}

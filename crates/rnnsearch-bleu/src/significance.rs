//! Confidence intervals and paired significance tests, as sacreBLEU 2.6.0
//! computes them (`--confidence`, `--paired-bs`, `--paired-ar`).
//!
//! - Bootstrap resampling (Koehn, 2004): `n` resamples of the segments,
//!   drawn with replacement by NumPy's generator seeded with `seed`
//!   ([`crate::rng::Pcg64`]); each resample's statistics are summed in
//!   `float32` and scored. The 95% interval is half the distance between
//!   the resampled scores at ranks `n/40` and `n - n/40 - 1`; μ is their mean.
//! - Paired bootstrap: the baseline and the system are resampled with the
//!   same indices; p = (c + 1) / (n + 1), where c counts resamples whose
//!   centred absolute difference exceeds the actual one.
//! - Paired approximate randomization (Riezler & Maxwell, 2005): each trial
//!   swaps every segment between the two systems with probability ½; p
//!   counts trials whose absolute difference exceeds the actual one.

use crate::metric::AnyMetric;
use crate::resample::{Num, StatRows};
use crate::rng::Pcg64;

/// sacreBLEU's default seed (`SACREBLEU_SEED`).
pub const DEFAULT_SEED: u64 = 12345;

/// A score's bootstrap estimate: the mean of the resampled scores and the
/// half-width of their 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confidence {
    /// μ, the mean of the resampled scores.
    pub mean: f64,
    /// Half the width of the 95% interval.
    pub ci: f64,
}

/// How the mean of resampled scores is taken: sacreBLEU uses Python's
/// `statistics.mean` for one system and NumPy's `mean` in paired tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeanKind {
    /// `statistics.mean`: the exact mean, rounded once.
    Exact,
    /// `ndarray.mean`: pairwise summation in the array's type, then divided.
    Numpy,
}

/// One system's result in a paired test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedResult {
    /// The actual corpus score.
    pub score: f64,
    /// p-value against the baseline (`None` for the baseline itself).
    pub p_value: Option<f64>,
    /// Bootstrap estimate (paired bootstrap only).
    pub confidence: Option<Confidence>,
}

/// Which paired test, and its number of resamples or trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairedTest {
    /// Paired bootstrap resampling with `n` resamples (sacreBLEU: 1000).
    Bootstrap(usize),
    /// Approximate randomization with `n` trials (sacreBLEU: 10000).
    Randomization(usize),
}

impl PairedTest {
    /// The signature key: `bs` or `ar`.
    pub fn key(self) -> &'static str {
        match self {
            PairedTest::Bootstrap(_) => "bs",
            PairedTest::Randomization(_) => "ar",
        }
    }

    /// Resamples or trials.
    pub fn samples(self) -> usize {
        match self {
            PairedTest::Bootstrap(n) | PairedTest::Randomization(n) => n,
        }
    }
}

/// The resample indices sacreBLEU draws: `choice(len, (n, len))`.
pub fn resample_indices(seed: u64, n_samples: usize, len: usize) -> Vec<usize> {
    Pcg64::new(seed).choice(len, n_samples * len)
}

/// The scores of the resamples given by `indices` (`n` rows of
/// `rows.len()` segment indices each), summed in `float32`.
pub fn resampled_scores(metric: &AnyMetric, rows: &StatRows, indices: &[usize]) -> Vec<Num> {
    let single: Vec<f32> = rows.data.iter().map(|&x| x as f32).collect();
    let (w, len) = (rows.width, rows.len());
    let mut sums = vec![0f32; w];
    indices
        .chunks(len.max(1))
        .map(|sample| {
            sums.iter_mut().for_each(|s| *s = 0.0);
            for &i in sample {
                for (s, x) in sums.iter_mut().zip(&single[i * w..(i + 1) * w]) {
                    *s += x;
                }
            }
            metric.score_f32(&mut sums)
        })
        .collect()
}

/// A NumPy array built from scores: `float32` only when every score is.
fn as_array(scores: &[Num]) -> (Vec<f64>, bool) {
    let single = scores.iter().all(|s| matches!(s, Num::F32(_)));
    (scores.iter().map(|s| s.value()).collect(), single)
}

/// NumPy's pairwise sum (`add.reduce` over a contiguous array), in `f32`
/// when `single`, else `f64`.
fn numpy_sum(values: &[f64], single: bool) -> f64 {
    fn pairwise<T: Copy + std::ops::Add<Output = T>>(a: &[T], zero: T) -> T {
        let n = a.len();
        if n < 8 {
            return a.iter().fold(zero, |acc, &x| acc + x);
        }
        if n <= 128 {
            let mut r = [zero; 8];
            r.copy_from_slice(&a[..8]);
            let mut i = 8;
            while i < n - n % 8 {
                for j in 0..8 {
                    r[j] = r[j] + a[i + j];
                }
                i += 8;
            }
            let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            for &x in &a[i..] {
                res = res + x;
            }
            return res;
        }
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise(&a[..n2], zero) + pairwise(&a[n2..], zero)
    }
    if single {
        let a: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        f64::from(pairwise(&a, -0.0f32))
    } else {
        pairwise(values, -0.0f64)
    }
}

/// The mean of `values` computed exactly and rounded once (Python's
/// `statistics.mean` over floats), via a compensated double-double sum.
fn exact_mean(values: &[f64]) -> f64 {
    let (mut hi, mut lo) = (0.0f64, 0.0f64);
    for &x in values {
        let s = hi + x;
        let bv = s - hi;
        lo += (hi - (s - bv)) + (x - bv);
        hi = s;
    }
    let n = values.len() as f64;
    let q = hi / n;
    let r = (-q).mul_add(n, hi) + lo;
    q + r / n
}

/// The mean and 95% half-interval of resampled scores, as sacreBLEU's
/// `estimate_ci` (paired tests) or `Score.estimate_ci` (one system).
pub fn estimate_ci(scores: &[Num], kind: MeanKind) -> Confidence {
    let (mut values, single) = as_array(scores);
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let lower_idx = n / 40;
    let upper_idx = n - lower_idx - 1;
    let (lower, upper) = (values[lower_idx], values[upper_idx]);
    let (mean, ci) = if single {
        let half = 0.5 * (upper as f32 - lower as f32);
        let mean = match kind {
            MeanKind::Exact => exact_mean(&values) as f32,
            MeanKind::Numpy => numpy_sum(&values, true) as f32 / n as f32,
        };
        (f64::from(mean), f64::from(half))
    } else {
        let mean = match kind {
            MeanKind::Exact => exact_mean(&values),
            MeanKind::Numpy => numpy_sum(&values, false) / n as f64,
        };
        (mean, 0.5 * (upper - lower))
    };
    Confidence { mean, ci }
}

/// `--confidence`: the bootstrap estimate of one system's score.
pub fn bootstrap_confidence(
    metric: &AnyMetric,
    rows: &StatRows,
    n_samples: usize,
    seed: u64,
) -> Confidence {
    let indices = resample_indices(seed, n_samples, rows.len());
    estimate_ci(&resampled_scores(metric, rows, &indices), MeanKind::Exact)
}

/// sacreBLEU's `_compute_p_value`: `(c + 1) / (n + 1)` with `c` the count
/// of statistics strictly above the actual difference; the comparison runs
/// in `float32` when the statistics are `float32` (NEP 50).
fn p_value(stats: &[f64], single: bool, actual: f64) -> f64 {
    let c = if single {
        let actual = actual as f32;
        stats.iter().filter(|&&s| s as f32 > actual).count()
    } else {
        stats.iter().filter(|&&s| s > actual).count()
    };
    (c + 1) as f64 / (stats.len() + 1) as f64
}

/// The draws of a paired test, made once and shared by every metric and
/// system: sacreBLEU seeds a new generator with the same seed for each
/// system, so every comparison sees the same resamples or swaps.
pub struct PairedDraws {
    test: PairedTest,
    seed: u64,
    len: usize,
    /// Bootstrap: `n × len` segment indices; randomization: `n × len` swaps.
    indices: Vec<usize>,
    swaps: Vec<bool>,
}

impl PairedDraws {
    /// The draws of `test` over `len` segments.
    pub fn new(test: PairedTest, seed: u64, len: usize) -> Self {
        let (indices, swaps) = match test {
            PairedTest::Bootstrap(n) => (resample_indices(seed, n, len), Vec::new()),
            PairedTest::Randomization(n) => (Vec::new(), Pcg64::new(seed).bools(n * len)),
        };
        PairedDraws {
            test,
            seed,
            len,
            indices,
            swaps,
        }
    }

    /// The test these draws are for.
    pub fn test(&self) -> PairedTest {
        self.test
    }

    /// The seed the draws were made with.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// A paired test of one metric: `systems[0]` is the baseline, every other
/// system is compared with it. The first result is the baseline's own (its
/// score and, for the bootstrap, its interval); the others carry p-values.
pub fn paired_test(
    metric: &AnyMetric,
    systems: &[StatRows],
    draws: &PairedDraws,
) -> Vec<PairedResult> {
    let baseline = &systems[0];
    assert_eq!(baseline.len(), draws.len, "draws made for another length");
    let base_score = metric.score_value(&baseline.sum());
    let base_resampled = match draws.test {
        PairedTest::Bootstrap(_) => resampled_scores(metric, baseline, &draws.indices),
        PairedTest::Randomization(_) => Vec::new(),
    };
    let mut results = vec![PairedResult {
        score: base_score,
        p_value: None,
        confidence: (!base_resampled.is_empty())
            .then(|| estimate_ci(&base_resampled, MeanKind::Numpy)),
    }];
    for system in &systems[1..] {
        let score = metric.score_value(&system.sum());
        let actual = (base_score - score).abs();
        results.push(match draws.test {
            PairedTest::Bootstrap(_) => {
                let sys_resampled = resampled_scores(metric, system, &draws.indices);
                PairedResult {
                    score,
                    p_value: Some(bootstrap_p(&base_resampled, &sys_resampled, actual)),
                    confidence: Some(estimate_ci(&sys_resampled, MeanKind::Numpy)),
                }
            }
            PairedTest::Randomization(_) => PairedResult {
                score,
                p_value: Some(randomization_p(
                    metric,
                    baseline,
                    system,
                    &draws.swaps,
                    actual,
                )),
                confidence: None,
            },
        });
    }
    results
}

/// The paired bootstrap p-value: the absolute differences of the resampled
/// scores, centred on their mean, against the actual difference (in the
/// arrays' NumPy type).
fn bootstrap_p(base: &[Num], system: &[Num], actual: f64) -> f64 {
    let (base, base_single) = as_array(base);
    let (sys, sys_single) = as_array(system);
    // NumPy subtracts in float32 only when both arrays are float32.
    let single = sys_single && base_single;
    let mut diffs: Vec<f64> = sys
        .iter()
        .zip(&base)
        .map(|(s, b)| {
            if single {
                f64::from((*s as f32 - *b as f32).abs())
            } else {
                (s - b).abs()
            }
        })
        .collect();
    let n = diffs.len();
    let mean = if single {
        f64::from(numpy_sum(&diffs, true) as f32 / n as f32)
    } else {
        numpy_sum(&diffs, false) / n as f64
    };
    for d in &mut diffs {
        *d = if single {
            f64::from(*d as f32 - mean as f32)
        } else {
            *d - mean
        };
    }
    p_value(&diffs, single, actual)
}

/// The approximate randomization p-value. Each trial's two pseudo-systems
/// are the system's sum plus the swapped segments' differences, and the
/// rest of the two systems' total (exact for integer statistics).
fn randomization_p(
    metric: &AnyMetric,
    baseline: &StatRows,
    system: &StatRows,
    swaps: &[bool],
    actual: f64,
) -> f64 {
    let (w, len) = (baseline.width, baseline.len());
    let (base_sum, sys_sum) = (baseline.sum(), system.sum());
    let diff: Vec<f64> = baseline
        .data
        .iter()
        .zip(&system.data)
        .map(|(b, s)| b - s)
        .collect();
    let mut a = vec![0.0; w];
    let mut b = vec![0.0; w];
    let stats: Vec<f64> = swaps
        .chunks(len.max(1))
        .map(|keep_base| {
            // Pseudo-system A takes the baseline's segment where the draw is
            // true and the system's elsewhere; B the other way round.
            a.copy_from_slice(&sys_sum);
            for (i, _) in keep_base.iter().enumerate().filter(|(_, &k)| k) {
                for (x, d) in a.iter_mut().zip(&diff[i * w..(i + 1) * w]) {
                    *x += d;
                }
            }
            for (k, y) in b.iter_mut().enumerate() {
                *y = base_sum[k] + sys_sum[k] - a[k];
            }
            (metric.score_value(&a) - metric.score_value(&b)).abs()
        })
        .collect();
    p_value(&stats, false, actual)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_sum_is_pairwise() {
        // 1 + 2^-24 * 200 in f32: pairwise keeps the small terms together.
        let mut values = vec![1.0];
        values.extend(std::iter::repeat_n(2f64.powi(-24), 200));
        let sequential = values.iter().fold(0f32, |acc, &x| acc + x as f32);
        assert_eq!(sequential, 1.0);
        assert!(numpy_sum(&values, true) > 1.0);
    }

    #[test]
    fn exact_mean_rounds_once() {
        let values = [0.1, 0.2, 0.3];
        assert_eq!(exact_mean(&values), 0.2);
        assert_eq!(exact_mean(&[1e16, 1.0, -1e16]), 1.0 / 3.0);
    }

    #[test]
    fn ci_takes_the_2_5_and_97_5_percent_ranks() {
        let scores: Vec<Num> = (0..80).map(|i| Num::F64(i as f64)).collect();
        let c = estimate_ci(&scores, MeanKind::Numpy);
        // n/40 = 2: ranks 2 and 77.
        assert_eq!(c.ci, 0.5 * (77.0 - 2.0));
        assert_eq!(c.mean, 39.5);
    }
}

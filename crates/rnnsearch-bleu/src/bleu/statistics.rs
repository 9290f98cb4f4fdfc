//! BLEU's sufficient statistics: lengths and n-gram counts per order.

use std::ops::AddAssign;

use crate::metric::SufficientStatistics;

/// The maximum n-gram order (sacreBLEU's `MAX_NGRAM_ORDER`).
pub const MAX_NGRAM_ORDER: usize = 4;

/// Sufficient statistics of BLEU; a corpus sums its segments' statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Statistics {
    /// Hypothesis length in tokens.
    pub sys_len: u64,
    /// Closest reference length in tokens.
    pub ref_len: u64,
    /// Clipped n-gram matches per order.
    pub correct: [u64; MAX_NGRAM_ORDER],
    /// Hypothesis n-grams per order.
    pub total: [u64; MAX_NGRAM_ORDER],
}

impl AddAssign<&Statistics> for Statistics {
    fn add_assign(&mut self, other: &Statistics) {
        self.sys_len += other.sys_len;
        self.ref_len += other.ref_len;
        for n in 0..MAX_NGRAM_ORDER {
            self.correct[n] += other.correct[n];
            self.total[n] += other.total[n];
        }
    }
}

impl SufficientStatistics for Statistics {
    /// `[sys_len, ref_len, correct…, total…]`.
    fn push_row(&self, row: &mut Vec<f64>) {
        row.extend([self.sys_len as f64, self.ref_len as f64]);
        row.extend(self.correct.iter().map(|&c| c as f64));
        row.extend(self.total.iter().map(|&t| t as f64));
    }

    fn from_row(row: &[f64]) -> Self {
        let mut stats = Statistics {
            sys_len: row[0] as u64,
            ref_len: row[1] as u64,
            ..Statistics::default()
        };
        for n in 0..MAX_NGRAM_ORDER {
            stats.correct[n] = row[2 + n] as u64;
            stats.total[n] = row[2 + MAX_NGRAM_ORDER + n] as u64;
        }
        stats
    }
}

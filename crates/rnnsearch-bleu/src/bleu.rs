//! BLEU (Papineni et al., 2002) exactly as sacreBLEU 2.x computes it.

mod smoothing;
mod statistics;

use std::fmt;

use serde_json::Value;

use crate::metric::Metric;
use crate::ngrams::Matcher;
use crate::report::{text_line, Report};
use crate::resample::Num;
use crate::signature::{yes_no, Signature};
use crate::text::{py_lower, py_rstrip, py_split, Interner};
use crate::tokenizers::{Tokenizer, TokenizerKind};
use crate::Error;

use smoothing::bleu_f32;

pub use smoothing::{compute_bleu, Computed, SmoothMethod};
pub use statistics::{Statistics, MAX_NGRAM_ORDER};

/// BLEU settings; the default is sacreBLEU's (`13a`, mixed case, `exp`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BleuOptions {
    /// The tokenizer.
    pub tokenize: TokenizerKind,
    /// Lowercase hypotheses and references first.
    pub lowercase: bool,
    /// The smoothing method.
    pub smooth_method: SmoothMethod,
    /// The value for `floor` / `add-k`; `None` uses the method's default.
    pub smooth_value: Option<f64>,
    /// Stop at the highest order with any n-gram (sentence BLEU).
    pub effective_order: bool,
}

/// A BLEU score with the details sacreBLEU reports.
#[derive(Debug, Clone, PartialEq)]
pub struct BleuScore {
    /// BLEU in [0, 100].
    pub score: f64,
    /// Clipped matches per order (before any add-k smoothing).
    pub counts: [u64; MAX_NGRAM_ORDER],
    /// Hypothesis n-grams per order (before any add-k smoothing).
    pub totals: [u64; MAX_NGRAM_ORDER],
    /// Smoothed precisions per order, in percent.
    pub precisions: [f64; MAX_NGRAM_ORDER],
    /// Brevity penalty.
    pub bp: f64,
    /// `sys_len / ref_len` (0 when `ref_len` is 0).
    pub ratio: f64,
    /// Hypothesis length.
    pub sys_len: u64,
    /// Reference length.
    pub ref_len: u64,
    /// The reproducibility signature.
    pub signature: Signature,
}

impl BleuScore {
    /// The metric name, `BLEU`.
    pub fn name(&self) -> &'static str {
        "BLEU"
    }

    /// The part after the score: `p1/p2/p3/p4 (BP = … ratio = … hyp_len = …
    /// ref_len = …)`.
    pub fn verbose(&self) -> String {
        let precisions: Vec<String> = self.precisions.iter().map(|p| format!("{p:.1}")).collect();
        format!(
            "{} (BP = {:.3} ratio = {:.3} hyp_len = {} ref_len = {})",
            precisions.join("/"),
            self.bp,
            self.ratio,
            self.sys_len,
            self.ref_len
        )
    }

    /// sacreBLEU's text line with the score printed to `width` decimals.
    pub fn format(&self, width: usize) -> String {
        text_line(
            self.name(),
            &self.signature,
            self.score,
            width,
            None,
            &self.verbose(),
        )
    }
}

impl From<BleuScore> for Report {
    fn from(s: BleuScore) -> Report {
        Report {
            name: s.name().to_string(),
            score: s.score,
            verbose: s.verbose(),
            fields: vec![
                ("verbose_score", Value::from(s.verbose())),
                ("counts", Value::from(s.counts.to_vec())),
                ("totals", Value::from(s.totals.to_vec())),
                ("precisions", Value::from(s.precisions.to_vec())),
                ("bp", Value::from(s.bp)),
                ("ratio", Value::from(s.ratio)),
                ("sys_len", Value::from(s.sys_len)),
                ("ref_len", Value::from(s.ref_len)),
            ],
            signature: s.signature,
        }
    }
}

impl fmt::Display for BleuScore {
    /// `BLEU|nrefs:1|…|version:… = 34.12 65.1/40.2/27.0/18.6 (BP = …)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(2))
    }
}

/// A BLEU scorer: holds the options and reusable buffers (token ids,
/// n-gram scratch space), so scoring many segments allocates little.
pub struct Bleu {
    opts: BleuOptions,
    tokenizer: &'static dyn Tokenizer,
    interner: Interner,
    matcher: Matcher,
    buf: String,
    hyp_ids: Vec<u32>,
    ref_ids: Vec<Vec<u32>>,
}

impl Bleu {
    /// A scorer with these options; a smoothing value must be finite.
    pub fn new(opts: BleuOptions) -> Result<Self, Error> {
        if let Some(v) = opts.smooth_value {
            if !v.is_finite() {
                return Err(Error::InvalidOption(format!(
                    "smoothing value must be finite, got {v}"
                )));
            }
        }
        Ok(Bleu {
            tokenizer: opts.tokenize.tokenizer(),
            opts,
            interner: Interner::default(),
            matcher: Matcher::default(),
            buf: String::new(),
            hyp_ids: Vec::new(),
            ref_ids: Vec::new(),
        })
    }

    /// The options in use.
    pub fn options(&self) -> &BleuOptions {
        &self.opts
    }
}

impl Default for Bleu {
    /// sacreBLEU's `BLEU()`: the default options.
    fn default() -> Self {
        Bleu::new(BleuOptions::default()).expect("the default options are valid")
    }
}

impl Metric for Bleu {
    type Statistics = Statistics;
    type Score = BleuScore;

    fn name(&self) -> String {
        "BLEU".to_string()
    }

    fn signature(&self, nrefs: usize) -> Signature {
        let mut smooth = self.opts.smooth_method.name().to_string();
        if let Some(default) = self.opts.smooth_method.default_value() {
            let value = self.opts.smooth_value.unwrap_or(default);
            smooth.push_str(&format!("[{value:.2}]"));
        }
        Signature::new(
            nrefs,
            vec![
                (
                    "case",
                    if self.opts.lowercase { "lc" } else { "mixed" }.to_string(),
                ),
                ("eff", yes_no(self.opts.effective_order)),
                ("tok", self.tokenizer.signature().to_string()),
                ("smooth", smooth),
            ],
        )
    }

    /// Token lengths (the closest reference length, ties to the shorter)
    /// and n-gram matches clipped by the maximum count over references.
    fn segment_statistics(
        &mut self,
        hyp: &str,
        refs: &mut dyn Iterator<Item = &str>,
    ) -> Statistics {
        let Bleu {
            opts,
            tokenizer,
            interner,
            matcher,
            buf,
            hyp_ids,
            ref_ids,
        } = self;
        let mut encode = |line: &str, ids: &mut Vec<u32>| {
            let lowered = if opts.lowercase {
                py_lower(line)
            } else {
                line.into()
            };
            tokenizer.tokenize_into(py_rstrip(&lowered), buf);
            ids.clear();
            ids.extend(py_split(buf).map(|t| interner.id(t)));
        };
        encode(hyp, hyp_ids);
        let mut nrefs = 0;
        for (k, line) in refs.enumerate() {
            if ref_ids.len() <= k {
                ref_ids.push(Vec::new());
            }
            encode(line, &mut ref_ids[k]);
            nrefs = k + 1;
        }
        let refs = &ref_ids[..nrefs];
        let hyp_len = hyp_ids.len() as u64;
        let ref_len = refs
            .iter()
            .map(|r| r.len() as u64)
            .min_by_key(|&len| (len.abs_diff(hyp_len), len))
            .unwrap_or(0);
        let mut stats = Statistics {
            sys_len: hyp_len,
            ref_len,
            ..Statistics::default()
        };
        for n in 0..MAX_NGRAM_ORDER {
            stats.total[n] = hyp_len.saturating_sub(n as u64);
        }
        matcher.clipped_matches(hyp_ids, refs, 31, &mut stats.correct);
        stats
    }

    fn score(&self, stats: &Statistics, nrefs: usize) -> BleuScore {
        let c = compute_bleu(
            stats,
            self.opts.smooth_method,
            self.opts.smooth_value,
            self.opts.effective_order,
        );
        BleuScore {
            score: c.score,
            counts: stats.correct,
            totals: stats.total,
            precisions: c.precisions,
            bp: c.bp,
            ratio: if stats.ref_len > 0 {
                stats.sys_len as f64 / stats.ref_len as f64
            } else {
                0.0
            },
            sys_len: stats.sys_len,
            ref_len: stats.ref_len,
            signature: self.signature(nrefs),
        }
    }

    fn score_value(&self, stats: &Statistics) -> f64 {
        let o = &self.opts;
        compute_bleu(stats, o.smooth_method, o.smooth_value, o.effective_order).score
    }

    fn row_width(&self) -> usize {
        2 + 2 * MAX_NGRAM_ORDER
    }

    fn score_f32(&self, sums: &mut [f32]) -> Num {
        let o = &self.opts;
        Num::F64(bleu_f32(
            sums,
            o.smooth_method,
            o.smooth_value,
            o.effective_order,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readme() -> (Vec<&'static str>, Vec<Vec<&'static str>>) {
        let hyps = vec![
            "The dog bit the man.",
            "It wasn't surprising.",
            "The man had just bitten him.",
        ];
        let refs = vec![
            vec![
                "The dog bit the man.",
                "It was not unexpected.",
                "The man bit him first.",
            ],
            vec![
                "The dog had bit the man.",
                "No one was surprised.",
                "The man had bitten the dog.",
            ],
        ];
        (hyps, refs)
    }

    #[test]
    fn sacrebleu_readme_example() {
        let (hyps, refs) = readme();
        let score = Bleu::default().corpus_score(&hyps, &refs).unwrap();
        assert!((score.score - 48.530827009929865).abs() < 1e-9);
        assert_eq!(score.counts, [14, 7, 5, 3]);
        assert_eq!(score.totals, [17, 14, 11, 8]);
        assert_eq!((score.sys_len, score.ref_len), (17, 18));
        let line = score.to_string();
        assert!(line.starts_with("BLEU|nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:"));
        assert!(line.ends_with(
            " = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)"
        ));
    }

    #[test]
    fn sacrebleu_test_suite_values() {
        let (hyps, refs) = readme();
        for (tok, expected) in [
            (TokenizerKind::None, 49.1919566),
            (TokenizerKind::Intl, 43.91623493),
        ] {
            let opts = BleuOptions {
                tokenize: tok,
                ..BleuOptions::default()
            };
            let got = Bleu::new(opts)
                .unwrap()
                .corpus_score(&hyps, &refs)
                .unwrap()
                .score;
            assert!((got - expected).abs() < 1e-6, "{tok}: {got}");
        }
        let empty = Bleu::default().corpus_score(&["", "", ""], &refs).unwrap();
        assert_eq!(empty.score, 0.0);
    }

    #[test]
    fn sentence_bleu_smoothing_cases() {
        // sacreBLEU's test_sentence_bleu.py (issue #98), tolerance 1e-3.
        let hyp = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";
        let refs = ["producţia de zahăr brut se exprimă în zahăr alb;"];
        let cases = [
            (SmoothMethod::Exp, None, TokenizerKind::Tok13a, false, 8.493),
            (SmoothMethod::None, None, TokenizerKind::Tok13a, false, 0.0),
            (
                SmoothMethod::Floor,
                None,
                TokenizerKind::Tok13a,
                false,
                4.51688,
            ),
            (
                SmoothMethod::Floor,
                Some(0.5),
                TokenizerKind::Tok13a,
                false,
                10.10,
            ),
            (
                SmoothMethod::AddK,
                None,
                TokenizerKind::Tok13a,
                false,
                14.882,
            ),
            (
                SmoothMethod::AddK,
                Some(2.0),
                TokenizerKind::Tok13a,
                false,
                21.389,
            ),
            (SmoothMethod::Exp, None, TokenizerKind::None, false, 7.347),
            (SmoothMethod::Exp, None, TokenizerKind::Intl, false, 8.493),
            (SmoothMethod::Exp, None, TokenizerKind::Char, false, 40.8759),
            (SmoothMethod::Exp, None, TokenizerKind::Char, true, 42.0267),
        ];
        for (smooth_method, smooth_value, tokenize, lowercase, expected) in cases {
            let opts = BleuOptions {
                tokenize,
                lowercase,
                smooth_method,
                smooth_value,
                effective_order: true,
            };
            let mut bleu = Bleu::new(opts.clone()).unwrap();
            let got = bleu.sentence_score(hyp, &refs).unwrap();
            assert!(
                (got.score - expected).abs() < 1e-3,
                "{opts:?}: {}",
                got.score
            );
            assert_eq!(got.signature.get("eff"), Some("yes"));
        }
    }

    #[test]
    fn effective_order_cases() {
        // sacreBLEU's test_bleu.py test_case_effective_order (floor 0.01).
        let opts = BleuOptions {
            smooth_method: SmoothMethod::Floor,
            smooth_value: Some(0.01),
            effective_order: true,
            ..BleuOptions::default()
        };
        for (hyp, reference, expected) in [
            ("test", "a test", 0.3678794411714425),
            ("a test", "a test", 1.0),
            ("a little test", "a test", 0.03218297948685433),
        ] {
            let mut bleu = Bleu::new(opts.clone()).unwrap();
            let got = bleu.sentence_score(hyp, &[reference]).unwrap().score / 100.0;
            assert!((got - expected).abs() < 1e-8, "{hyp}: {got}");
        }
    }

    #[test]
    fn signature_smoothing_values() {
        let sig = |smooth_method, smooth_value| {
            Bleu::new(BleuOptions {
                smooth_method,
                smooth_value,
                ..BleuOptions::default()
            })
            .unwrap()
            .signature(1)
            .get("smooth")
            .unwrap()
            .to_string()
        };
        assert_eq!(sig(SmoothMethod::Exp, None), "exp");
        assert_eq!(sig(SmoothMethod::Floor, None), "floor[0.10]");
        assert_eq!(sig(SmoothMethod::AddK, None), "add-k[1.00]");
        assert_eq!(sig(SmoothMethod::AddK, Some(2.0)), "add-k[2.00]");
        assert_eq!(sig(SmoothMethod::None, Some(3.0)), "none");
    }

    #[test]
    fn mismatched_streams_are_errors() {
        let mut bleu = Bleu::default();
        let err = bleu.corpus_score(&["a", "b"], &[vec!["a"]]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line counts differ: hypotheses has 2 lines, reference stream 1 has 1"
        );
        let none: [Vec<&str>; 0] = [];
        assert!(bleu.corpus_score(&["a"], &none).is_err());
        let no_refs: [&str; 0] = [];
        assert!(bleu.sentence_score("a", &no_refs).is_err());
    }
}

//! chrF (Popović 2015) and chrF++ (Popović 2017) exactly as sacreBLEU 2.x
//! computes them.
//!
//! Per segment and order: `[hyp n-grams, ref n-grams, matches]` (the
//! hypothesis count is 0 when the reference has no n-gram of that order);
//! with several references the one with the best segment F-score wins
//! (first one on ties). Character n-grams are over Unicode scalar values of
//! the line with all whitespace removed (unless `whitespace`); chrF++ word
//! n-grams are over whitespace-split words with one leading or trailing
//! ASCII punctuation mark split off. The score averages precision and
//! recall over the orders where both sides have n-grams (sacreBLEU's
//! effective order), or uses chrF++.py's epsilon smoothing if asked.

use std::fmt;
use std::ops::AddAssign;

use serde_json::Value;

use crate::metric::{Metric, SufficientStatistics};
use crate::ngrams::Matcher;
use crate::report::{text_line, Report};
use crate::resample::Num;
use crate::signature::{yes_no, Signature};
use crate::text::{is_py_space, py_lower, py_split, Interner};
use crate::Error;

/// chrF settings; the default is sacreBLEU's chrF2 (6, 0, beta 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChrfOptions {
    /// Character n-gram order (`nc`).
    pub char_order: usize,
    /// Word n-gram order (`nw`); 2 gives chrF++.
    pub word_order: usize,
    /// Weight of recall relative to precision.
    pub beta: u32,
    /// Lowercase hypotheses and references first.
    pub lowercase: bool,
    /// Keep whitespace in character n-grams.
    pub whitespace: bool,
    /// chrF++.py / NLTK epsilon smoothing instead of effective order.
    pub eps_smoothing: bool,
}

impl Default for ChrfOptions {
    fn default() -> Self {
        ChrfOptions {
            char_order: 6,
            word_order: 0,
            beta: 2,
            lowercase: false,
            whitespace: false,
            eps_smoothing: false,
        }
    }
}

impl ChrfOptions {
    /// chrF++: the defaults with word order 2.
    pub fn chrf_plus_plus() -> Self {
        ChrfOptions {
            word_order: 2,
            ..ChrfOptions::default()
        }
    }
}

/// Sufficient statistics of chrF: `[hyp, ref, match]` per order, character
/// orders first, then word orders.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Statistics {
    /// `[hypothesis n-grams, reference n-grams, matches]` per order.
    pub orders: Vec<[u64; 3]>,
}

impl AddAssign<&Statistics> for Statistics {
    fn add_assign(&mut self, other: &Statistics) {
        if self.orders.len() < other.orders.len() {
            self.orders.resize(other.orders.len(), [0; 3]);
        }
        for (mine, theirs) in self.orders.iter_mut().zip(&other.orders) {
            for k in 0..3 {
                mine[k] += theirs[k];
            }
        }
    }
}

impl SufficientStatistics for Statistics {
    /// `[hyp, ref, match]` per order.
    fn push_row(&self, row: &mut Vec<f64>) {
        row.extend(self.orders.iter().flatten().map(|&x| x as f64));
    }

    fn from_row(row: &[f64]) -> Self {
        Statistics {
            orders: row
                .chunks(3)
                .map(|c| [c[0] as u64, c[1] as u64, c[2] as u64])
                .collect(),
        }
    }
}

/// A chrF score.
#[derive(Debug, Clone, PartialEq)]
pub struct ChrfScore {
    /// chrF in [0, 100].
    pub score: f64,
    /// `chrF2`, `chrF2++`, … (`+` once per word order).
    pub name: String,
    /// Character order.
    pub char_order: usize,
    /// Word order.
    pub word_order: usize,
    /// Beta.
    pub beta: u32,
    /// The reproducibility signature.
    pub signature: Signature,
}

impl ChrfScore {
    /// sacreBLEU's text line with the score printed to `width` decimals.
    pub fn format(&self, width: usize) -> String {
        text_line(&self.name, &self.signature, self.score, width, None, "")
    }
}

impl From<ChrfScore> for Report {
    fn from(s: ChrfScore) -> Report {
        Report {
            fields: vec![
                ("char_order", Value::from(s.char_order)),
                ("word_order", Value::from(s.word_order)),
                ("beta", Value::from(s.beta)),
            ],
            name: s.name,
            score: s.score,
            signature: s.signature,
            verbose: String::new(),
        }
    }
}

impl fmt::Display for ChrfScore {
    /// `chrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:… = 58.12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(2))
    }
}

/// ASCII punctuation (Python's `string.punctuation`), split off words.
fn is_ascii_punct(c: char) -> bool {
    c.is_ascii_punctuation()
}

/// A chrF scorer with reusable buffers.
pub struct Chrf {
    opts: ChrfOptions,
    interner: Interner,
    matcher: Matcher,
    hyp_chars: Vec<u32>,
    hyp_words: Vec<u32>,
    ref_chars: Vec<Vec<u32>>,
    ref_words: Vec<Vec<u32>>,
    matches: Vec<u64>,
}

impl Chrf {
    /// A scorer with these options; at least one order is needed.
    pub fn new(opts: ChrfOptions) -> Result<Self, Error> {
        if opts.char_order + opts.word_order == 0 {
            return Err(Error::InvalidOption(
                "chrF needs a character or word order above 0".to_string(),
            ));
        }
        Ok(Chrf {
            opts,
            interner: Interner::default(),
            matcher: Matcher::default(),
            hyp_chars: Vec::new(),
            hyp_words: Vec::new(),
            ref_chars: vec![Vec::new()],
            ref_words: vec![Vec::new()],
            matches: Vec::new(),
        })
    }

    /// The options in use.
    pub fn options(&self) -> &ChrfOptions {
        &self.opts
    }

    /// Statistics of the encoded hypothesis against one reference.
    fn against(&mut self, hyp_chars: &[u32], hyp_words: &[u32], reference: &str) -> Statistics {
        let reference = self.preprocess(reference);
        let mut ref_chars = std::mem::take(&mut self.ref_chars);
        let mut ref_words = std::mem::take(&mut self.ref_words);
        self.encode(&reference, &mut ref_chars[0], &mut ref_words[0]);
        let mut orders = Vec::with_capacity(self.opts.char_order + self.opts.word_order);
        self.order_stats(hyp_chars, &ref_chars, self.opts.char_order, 21, &mut orders);
        self.order_stats(hyp_words, &ref_words, self.opts.word_order, 31, &mut orders);
        self.ref_chars = ref_chars;
        self.ref_words = ref_words;
        Statistics { orders }
    }

    fn order_stats(
        &mut self,
        hyp: &[u32],
        reference: &[Vec<u32>],
        max_order: usize,
        bits: u32,
        out: &mut Vec<[u64; 3]>,
    ) {
        self.matches.clear();
        self.matches.resize(max_order, 0);
        self.matcher
            .clipped_matches(hyp, reference, bits, &mut self.matches);
        let (h, r) = (hyp.len() as u64, reference[0].len() as u64);
        for n in 0..max_order as u64 {
            let n_ref = r.saturating_sub(n);
            let n_hyp = if n_ref > 0 { h.saturating_sub(n) } else { 0 };
            out.push([n_hyp, n_ref, self.matches[n as usize]]);
        }
    }

    fn preprocess<'a>(&self, line: &'a str) -> std::borrow::Cow<'a, str> {
        if self.opts.lowercase {
            py_lower(line)
        } else {
            line.into()
        }
    }

    /// Character codes (whitespace removed unless kept) and, for chrF++,
    /// word ids of a preprocessed line.
    fn encode(&mut self, line: &str, chars: &mut Vec<u32>, words: &mut Vec<u32>) {
        chars.clear();
        if self.opts.whitespace {
            chars.extend(line.chars().map(u32::from));
        } else {
            chars.extend(line.chars().filter(|&c| !is_py_space(c)).map(u32::from));
        }
        words.clear();
        if self.opts.word_order == 0 {
            return;
        }
        for word in py_split(line) {
            let mut it = word.chars();
            let (first, last) = (it.next(), it.next_back());
            match (first, last) {
                (Some(_), None) => words.push(self.interner.id(word)),
                (Some(f), Some(l)) => {
                    if is_ascii_punct(l) {
                        words.push(self.interner.id(&word[..word.len() - l.len_utf8()]));
                        words.push(self.interner.id(&word[word.len() - l.len_utf8()..]));
                    } else if is_ascii_punct(f) {
                        words.push(self.interner.id(&word[..f.len_utf8()]));
                        words.push(self.interner.id(&word[f.len_utf8()..]));
                    } else {
                        words.push(self.interner.id(word));
                    }
                }
                (None, _) => {}
            }
        }
    }
}

impl Default for Chrf {
    /// sacreBLEU's `CHRF()`: chrF2.
    fn default() -> Self {
        Chrf::new(ChrfOptions::default()).expect("the default options are valid")
    }
}

impl Metric for Chrf {
    type Statistics = Statistics;
    type Score = ChrfScore;

    /// `chrF{beta}` and one `+` per word order.
    fn name(&self) -> String {
        format!("chrF{}{}", self.opts.beta, "+".repeat(self.opts.word_order))
    }

    fn signature(&self, nrefs: usize) -> Signature {
        Signature::new(
            nrefs,
            vec![
                (
                    "case",
                    if self.opts.lowercase { "lc" } else { "mixed" }.to_string(),
                ),
                ("eff", yes_no(!self.opts.eps_smoothing)),
                ("nc", self.opts.char_order.to_string()),
                ("nw", self.opts.word_order.to_string()),
                ("space", yes_no(self.opts.whitespace)),
            ],
        )
    }

    /// The statistics against the reference with the best F-score (the
    /// first one on ties).
    fn segment_statistics(
        &mut self,
        hyp: &str,
        refs: &mut dyn Iterator<Item = &str>,
    ) -> Statistics {
        let hyp = self.preprocess(hyp);
        let mut hyp_chars = std::mem::take(&mut self.hyp_chars);
        let mut hyp_words = std::mem::take(&mut self.hyp_words);
        self.encode(&hyp, &mut hyp_chars, &mut hyp_words);
        let mut best: Option<(f64, Statistics)> = None;
        for reference in refs {
            let stats = self.against(&hyp_chars, &hyp_words, reference);
            let f = self.score_value(&stats);
            if best.as_ref().is_none_or(|(best_f, _)| f > *best_f) {
                best = Some((f, stats));
            }
        }
        self.hyp_chars = hyp_chars;
        self.hyp_words = hyp_words;
        best.map(|(_, s)| s).unwrap_or_default()
    }

    fn score(&self, stats: &Statistics, nrefs: usize) -> ChrfScore {
        ChrfScore {
            score: self.score_value(stats),
            name: self.name(),
            char_order: self.opts.char_order,
            word_order: self.opts.word_order,
            beta: self.opts.beta,
            signature: self.signature(nrefs),
        }
    }

    /// The F-score (0–100) of statistics (sacreBLEU's `_compute_f_score`).
    fn score_value(&self, stats: &Statistics) -> f64 {
        let eps = 1e-16;
        let factor = f64::from(self.opts.beta).powi(2);
        let order = self.opts.char_order + self.opts.word_order;
        let (mut score, mut avg_prec, mut avg_rec) = (0.0, 0.0, 0.0);
        let mut effective_order = 0usize;
        for i in 0..order {
            let [n_hyp, n_ref, n_match] = stats.orders.get(i).copied().unwrap_or([0; 3]);
            let prec = if n_hyp > 0 {
                n_match as f64 / n_hyp as f64
            } else {
                eps
            };
            let rec = if n_ref > 0 {
                n_match as f64 / n_ref as f64
            } else {
                eps
            };
            let denom = factor * prec + rec;
            score += if denom > 0.0 {
                (1.0 + factor) * prec * rec / denom
            } else {
                eps
            };
            if n_hyp > 0 && n_ref > 0 {
                avg_prec += prec;
                avg_rec += rec;
                effective_order += 1;
            }
        }
        if self.opts.eps_smoothing {
            return 100.0 * score / order as f64;
        }
        if effective_order == 0 {
            avg_prec = 0.0;
            avg_rec = 0.0;
        } else {
            avg_prec /= effective_order as f64;
            avg_rec /= effective_order as f64;
        }
        if avg_prec + avg_rec != 0.0 {
            let mut score = (1.0 + factor) * avg_prec * avg_rec;
            score /= factor * avg_prec + avg_rec;
            100.0 * score
        } else {
            0.0
        }
    }

    fn row_width(&self) -> usize {
        3 * (self.opts.char_order + self.opts.word_order)
    }

    fn score_f32(&self, sums: &mut [f32]) -> Num {
        chrf_f32(f64::from(self.opts.beta), self.opts.eps_smoothing, sums)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(hyps: &[&str], refs: &[&str], opts: &ChrfOptions) -> f64 {
        let mut chrf = Chrf::new(opts.clone()).unwrap();
        chrf.corpus_score(hyps, &[refs]).unwrap().score
    }

    #[test]
    fn sacrebleu_effective_order_cases() {
        // sacreBLEU's test_chrf.py, eps_smoothing=False, beta 3.
        let opts = ChrfOptions {
            beta: 3,
            ..ChrfOptions::default()
        };
        let cases: [(&[&str], &[&str], f64); 7] = [
            (&["a"], &["a"], 100.0),
            (&[""], &["reference"], 0.0),
            (&["a b c"], &["a b c"], 100.0),
            (&["a b c"], &["abc"], 100.0),
            (&[""], &["c"], 0.0),
            (&["a", "b"], &["a", "c"], 50.0),
            (&["aa"], &["ab"], 25.0),
        ];
        for (hyps, refs, expected) in cases {
            let got = corpus(hyps, refs, &opts);
            assert!((got - expected).abs() < 1e-4, "{hyps:?}: {got}");
        }
    }

    #[test]
    fn sacrebleu_eps_smoothing_cases() {
        let opts = ChrfOptions {
            beta: 3,
            eps_smoothing: true,
            ..ChrfOptions::default()
        };
        let cases: [(&[&str], &[&str], f64); 6] = [
            (&["abcdefg"], &["hijklmnop"], 0.0),
            (&["aa"], &["ab"], 8.3333),
            (&["a", "b"], &["a", "c"], 8.3333),
            (&["a b c"], &["abc"], 50.0),
            (
                &[" risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists ."],
                &["risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists ."],
                63.361730,
            ),
            (
                &[" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. "],
                &["Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."],
                64.1302698,
            ),
        ];
        for (hyps, refs, expected) in cases {
            let got = corpus(hyps, refs, &opts);
            assert!((got - expected).abs() < 1e-4, "{hyps:?}: {got}");
        }
    }

    #[test]
    fn keep_whitespace_case() {
        let opts = ChrfOptions {
            beta: 3,
            whitespace: true,
            ..ChrfOptions::default()
        };
        let got = corpus(
            &["Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich."],
            &["Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."],
            &opts,
        );
        assert!((got - 67.3481606).abs() < 1e-4, "{got}");
    }

    #[test]
    fn names_and_signature() {
        let plain = Chrf::new(ChrfOptions::default()).unwrap();
        assert_eq!(plain.name(), "chrF2");
        assert_eq!(
            plain.signature(1).to_string(),
            format!(
                "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:{}",
                crate::VERSION
            )
        );
        let mut plus = Chrf::new(ChrfOptions::chrf_plus_plus()).unwrap();
        assert_eq!(plus.name(), "chrF2++");
        let score = plus.sentence_score("the cat", &["the dog"]).unwrap();
        assert!(score
            .to_string()
            .starts_with("chrF2++|nrefs:1|case:mixed|eff:yes|nc:6|nw:2|"));
    }

    #[test]
    fn word_punctuation_split() {
        let mut chrf = Chrf::new(ChrfOptions::chrf_plus_plus()).unwrap();
        let (mut chars, mut words) = (Vec::new(), Vec::new());
        chrf.encode("(hi) x. ,y é! .", &mut chars, &mut words);
        let mut names = Chrf::new(ChrfOptions::chrf_plus_plus()).unwrap();
        let mut expect = Vec::new();
        for w in ["(hi", ")", "x", ".", ",", "y", "é", "!", "."] {
            expect.push(names.interner.id(w));
        }
        // Ids are assigned in first-seen order in both interners.
        assert_eq!(words, expect);
        assert_eq!(chars.len(), "(hi)x.,yé!.".chars().count());
    }
}

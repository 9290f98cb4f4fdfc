//! TER, translation edit rate (Snover et al., 2006), exactly as sacreBLEU
//! 2.x computes it.
//!
//! Each segment is right-stripped and tokenized by the Tercom tokenizer
//! (lowercased unless case-sensitive; optional normalisation, punctuation
//! removal and CJK support). Against every reference, the edits are the
//! block shifts Tercom's greedy search applies plus the remaining
//! (beam-limited) Levenshtein distance. A segment keeps the fewest edits
//! over its references and the *average* reference length; a corpus sums
//! both and divides: `100 * edits / ref_len`.

mod edit;
mod tercom;

use std::fmt;
use std::ops::AddAssign;

use serde_json::Value;

use crate::metric::{Metric, SufficientStatistics};
use crate::report::{text_line, Report};
use crate::resample::Num;
use crate::signature::{yes_no, Signature};
use crate::text::{py_rstrip, py_split, Interner};
use crate::Error;

use edit::TerAligner;
use tercom::TercomTokenizer;

/// TER settings; the default is sacreBLEU's (and Tercom's): lowercased,
/// not normalized, punctuation kept, no Asian support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TerOptions {
    /// Normalize: join lines, unescape XML entities, split punctuation
    /// (and CJK characters with `asian_support`).
    pub normalized: bool,
    /// Remove punctuation (and CJK punctuation with `asian_support`).
    pub no_punct: bool,
    /// Treat CJK characters and punctuation specially; only matters
    /// together with `normalized` or `no_punct`.
    pub asian_support: bool,
    /// Keep case instead of lowercasing.
    pub case_sensitive: bool,
}

/// Sufficient statistics of TER: sacreBLEU's `[best_num_edits,
/// avg_ref_len]`; a corpus sums its segments' statistics in order.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Statistics {
    /// The fewest edits over the references.
    pub edits: f64,
    /// The average reference length in words.
    pub ref_len: f64,
}

impl AddAssign<&Statistics> for Statistics {
    fn add_assign(&mut self, other: &Statistics) {
        self.edits += other.edits;
        self.ref_len += other.ref_len;
    }
}

impl SufficientStatistics for Statistics {
    /// `[edits, average reference length]`.
    fn push_row(&self, row: &mut Vec<f64>) {
        row.extend([self.edits, self.ref_len]);
    }

    fn from_row(row: &[f64]) -> Self {
        Statistics {
            edits: row[0],
            ref_len: row[1],
        }
    }
}

/// A TER score with the totals sacreBLEU reports.
#[derive(Debug, Clone, PartialEq)]
pub struct TerScore {
    /// TER in percent (lower is better; may exceed 100).
    pub score: f64,
    /// Total edits.
    pub num_edits: u64,
    /// Total of the segments' average reference lengths.
    pub ref_length: f64,
    /// The reproducibility signature.
    pub signature: Signature,
}

impl TerScore {
    /// The metric name, `TER`.
    pub fn name(&self) -> &'static str {
        "TER"
    }

    /// sacreBLEU's text line with the score printed to `width` decimals.
    pub fn format(&self, width: usize) -> String {
        text_line(self.name(), &self.signature, self.score, width, None, "")
    }
}

impl From<TerScore> for Report {
    fn from(s: TerScore) -> Report {
        Report {
            name: s.name().to_string(),
            score: s.score,
            verbose: String::new(),
            fields: vec![
                ("num_edits", Value::from(s.num_edits)),
                ("ref_length", Value::from(s.ref_length)),
            ],
            signature: s.signature,
        }
    }
}

impl fmt::Display for TerScore {
    /// `TER|nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:… = 55.32`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(2))
    }
}

/// A TER scorer with reusable buffers (token ids, edit-distance matrix).
pub struct Ter {
    opts: TerOptions,
    tokenizer: TercomTokenizer,
    interner: Interner,
    aligner: TerAligner,
    buf: String,
    ref_buf: String,
    hyp_ids: Vec<u32>,
    ref_ids: Vec<u32>,
}

impl Ter {
    /// A scorer with these options (every combination is valid).
    pub fn new(opts: TerOptions) -> Result<Self, Error> {
        let TerOptions {
            normalized,
            no_punct,
            asian_support,
            case_sensitive,
        } = opts;
        Ok(Ter {
            opts,
            tokenizer: TercomTokenizer {
                normalized,
                no_punct,
                asian_support,
                case_sensitive,
            },
            interner: Interner::default(),
            aligner: TerAligner::default(),
            buf: String::new(),
            ref_buf: String::new(),
            hyp_ids: Vec::new(),
            ref_ids: Vec::new(),
        })
    }

    /// The options in use.
    pub fn options(&self) -> &TerOptions {
        &self.opts
    }

    /// Tokenizes a reference into `ref_ids`. sacreBLEU preprocesses
    /// references twice (once when caching them, once more when
    /// extracting their words), so the tokenizer runs twice here too.
    fn encode_reference(&mut self, reference: &str) {
        self.tokenizer
            .tokenize_into(py_rstrip(reference), &mut self.ref_buf);
        self.tokenizer
            .tokenize_into(py_rstrip(&self.ref_buf), &mut self.buf);
        encode(&self.buf, &mut self.interner, &mut self.ref_ids);
    }
}

impl Default for Ter {
    /// sacreBLEU's `TER()`: the default options.
    fn default() -> Self {
        Ter::new(TerOptions::default()).expect("every combination of options is valid")
    }
}

impl Metric for Ter {
    type Statistics = Statistics;
    type Score = TerScore;

    fn name(&self) -> String {
        "TER".to_string()
    }

    fn signature(&self, nrefs: usize) -> Signature {
        let o = &self.opts;
        Signature::new(
            nrefs,
            vec![
                (
                    "case",
                    if o.case_sensitive { "mixed" } else { "lc" }.to_string(),
                ),
                ("tok", "tercom".to_string()),
                ("norm", yes_no(o.normalized)),
                ("punct", yes_no(!o.no_punct)),
                ("asian", yes_no(o.asian_support)),
            ],
        )
    }

    /// The fewest edits over the references and their average length.
    /// Without references (sacreBLEU raises) it counts as one empty
    /// reference.
    fn segment_statistics(
        &mut self,
        hyp: &str,
        refs: &mut dyn Iterator<Item = &str>,
    ) -> Statistics {
        self.tokenizer.tokenize_into(py_rstrip(hyp), &mut self.buf);
        encode(&self.buf, &mut self.interner, &mut self.hyp_ids);
        let mut best_edits = usize::MAX;
        let mut ref_lengths = 0usize;
        let mut nrefs = 0usize;
        for reference in refs {
            self.encode_reference(reference);
            let edits = self.aligner.edits(&self.hyp_ids, &self.ref_ids);
            best_edits = best_edits.min(edits);
            ref_lengths += self.ref_ids.len();
            nrefs += 1;
        }
        if nrefs == 0 {
            return Statistics {
                edits: self.hyp_ids.len() as f64,
                ref_len: 0.0,
            };
        }
        Statistics {
            edits: best_edits as f64,
            ref_len: ref_lengths as f64 / nrefs as f64,
        }
    }

    fn score(&self, stats: &Statistics, nrefs: usize) -> TerScore {
        TerScore {
            score: self.score_value(stats),
            num_edits: stats.edits as u64,
            ref_length: stats.ref_len,
            signature: self.signature(nrefs),
        }
    }

    /// TER in percent: edits per reference word, 100 when only the
    /// references are empty, 0 when everything is.
    fn score_value(&self, stats: &Statistics) -> f64 {
        let rate = if stats.ref_len > 0.0 {
            stats.edits / stats.ref_len
        } else if stats.edits > 0.0 {
            1.0
        } else {
            0.0
        };
        100.0 * rate
    }

    fn row_width(&self) -> usize {
        2
    }

    fn score_f32(&self, sums: &mut [f32]) -> Num {
        ter_f32(sums)
    }
}

/// The ids of the whitespace-separated words of `text`.
fn encode(text: &str, interner: &mut Interner, ids: &mut Vec<u32>) {
    ids.clear();
    ids.extend(py_split(text).map(|w| interner.id(w)));
}

/// TER of `float32` statistics: `[edits, average reference length]`.
fn ter_f32(sums: &[f32]) -> Num {
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

    fn opts(
        normalized: bool,
        no_punct: bool,
        asian_support: bool,
        case_sensitive: bool,
    ) -> TerOptions {
        TerOptions {
            normalized,
            no_punct,
            asian_support,
            case_sensitive,
        }
    }

    /// `(score, num_edits, ref_length)` of corpus TER.
    fn corpus(hyps: &[&str], refs: &[Vec<&str>], o: TerOptions) -> (f64, u64, f64) {
        let s = Ter::new(o).unwrap().corpus_score(hyps, refs).unwrap();
        (s.score, s.num_edits, s.ref_length)
    }

    #[test]
    fn sacrebleu_test_suite_cases() {
        // sacreBLEU's test_ter.py; exact values printed by sacreBLEU 2.6.0.
        let d = TerOptions::default();
        let cases = [
            ("aaaa bbbb cccc dddd", "aaaa bbbb cccc dddd", (0.0, 0, 4.0)),
            ("dddd eeee ffff", "aaaa bbbb cccc", (100.0, 3, 3.0)),
            ("", "a", (100.0, 1, 1.0)),
            ("d e f g h a b c", "a b c d e f g h", (12.5, 1, 8.0)),
        ];
        for (hyp, reference, expected) in cases {
            assert_eq!(corpus(&[hyp], &[vec![reference]], d), expected, "{hyp:?}");
        }
    }

    #[test]
    fn sacrebleu_test_suite_wmt_example() {
        let hyps = [
            "wählen Sie \" Bild neu berechnen , \" um beim Ändern der Bildgröße Pixel hinzuzufügen oder zu entfernen , damit das Bild ungefähr dieselbe Größe aufweist wie die andere Größe .",
            "wenn Sie alle Aufgaben im aktuellen Dokument aktualisieren möchten , wählen Sie im Menü des Aufgabenbedienfelds die Option \" Alle Aufgaben aktualisieren . \"",
            "klicken Sie auf der Registerkarte \" Optionen \" auf die Schaltfläche \" Benutzerdefiniert \" und geben Sie Werte für \" Fehlerkorrektur-Level \" und \" Y / X-Verhältnis \" ein .",
            "Sie können beispielsweise ein Dokument erstellen , das ein Auto über die Bühne enthält .",
            "wählen Sie im Dialogfeld \" Neu aus Vorlage \" eine Vorlage aus und klicken Sie auf \" Neu . \"",
        ];
        let refs = vec![vec![
            "wählen Sie \" Bild neu berechnen , \" um beim Ändern der Bildgröße Pixel hinzuzufügen oder zu entfernen , damit die Darstellung des Bildes in einer anderen Größe beibehalten wird .",
            "wenn Sie alle Aufgaben im aktuellen Dokument aktualisieren möchten , wählen Sie im Menü des Aufgabenbedienfelds die Option \" Alle Aufgaben aktualisieren . \"",
            "klicken Sie auf der Registerkarte \" Optionen \" auf die Schaltfläche \" Benutzerdefiniert \" und geben Sie für \" Fehlerkorrektur-Level \" und \" Y / X-Verhältnis \" niedrigere Werte ein .",
            "Sie können beispielsweise ein Dokument erstellen , das ein Auto enthalt , das sich über die Bühne bewegt .",
            "wählen Sie im Dialogfeld \" Neu aus Vorlage \" eine Vorlage aus und klicken Sie auf \" Neu . \"",
        ]];
        let got = corpus(&hyps, &refs, TerOptions::default());
        assert_eq!(got, (13.600000000000001, 17, 125.0));
    }

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
    fn two_references_and_options() {
        let (hyps, refs) = readme();
        let cases = [
            (opts(false, false, false, false), (40.0, 6, 15.0)),
            (
                opts(true, false, false, false),
                (33.33333333333333, 6, 18.0),
            ),
            (opts(false, true, false, false), (40.0, 6, 15.0)),
            (opts(false, false, false, true), (40.0, 6, 15.0)),
            (opts(true, true, false, true), (40.0, 6, 15.0)),
        ];
        for (o, expected) in cases {
            assert_eq!(corpus(&hyps, &refs, o), expected, "{o:?}");
        }
        // Fewest edits, average reference length.
        let stats = Ter::new(TerOptions::default())
            .unwrap()
            .corpus_statistics(&hyps, &refs)
            .unwrap();
        let pairs: Vec<(f64, f64)> = stats.iter().map(|s| (s.edits, s.ref_len)).collect();
        assert_eq!(pairs, [(0.0, 5.5), (3.0, 4.0), (3.0, 5.5)]);
    }

    #[test]
    fn asian_support() {
        let hyps = ["東京は日本の首都です。", "我喜欢吃苹果，也喜欢香蕉！"];
        let refs = vec![vec!["日本の首都は東京です。", "我也喜欢香蕉，喜欢吃苹果。"]];
        let cases = [
            (opts(false, false, false, false), (100.0, 2, 2.0)),
            (opts(true, false, false, false), (100.0, 2, 2.0)),
            (opts(true, false, true, false), (21.73913043478261, 5, 23.0)),
            (opts(true, true, true, false), (15.0, 3, 20.0)),
            (opts(false, true, true, false), (100.0, 2, 2.0)),
        ];
        for (o, expected) in cases {
            assert_eq!(corpus(&hyps, &refs, o), expected, "{o:?}");
        }
    }

    #[test]
    fn empty_segments() {
        let d = TerOptions::default();
        assert_eq!(corpus(&[""], &[vec![""]], d), (0.0, 0, 0.0));
        assert_eq!(corpus(&["a b"], &[vec![""]], d), (100.0, 2, 0.0));
        assert_eq!(corpus(&[""], &[vec!["a b"]], d), (100.0, 2, 2.0));
        assert_eq!(corpus(&["  "], &[vec![" "]], d), (0.0, 0, 0.0));
    }

    #[test]
    fn sentence_ter_and_text_line() {
        let refs = ["on the mat the cat sat", "a cat sat on a mat"];
        let mut ter = Ter::default();
        let s = ter.sentence_score("the cat sat on the mat", &refs).unwrap();
        assert_eq!(
            (s.score, s.num_edits, s.ref_length),
            (16.666666666666664, 1, 6.0)
        );
        assert_eq!(
            s.to_string(),
            format!(
                "TER|nrefs:2|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:{} = 16.67",
                crate::VERSION
            )
        );
        let none: [&str; 0] = [];
        assert!(ter.sentence_score("a", &none).is_err());
    }

    #[test]
    fn signature_fields() {
        let ter = Ter::new(opts(true, true, true, true)).unwrap();
        let sig = ter.signature(3).to_string();
        assert!(
            sig.starts_with("nrefs:3|case:mixed|tok:tercom|norm:yes|punct:no|asian:yes|version:")
        );
        assert_eq!(ter.options(), &opts(true, true, true, true));
    }

    #[test]
    fn statistics_sum_in_order() {
        let a = Statistics {
            edits: 1.0,
            ref_len: 0.1,
        };
        let b = Statistics {
            edits: 2.0,
            ref_len: 0.2,
        };
        let total = Ter::default().aggregate(&[a, b], 1);
        assert_eq!(total.ref_length, 0.1 + 0.2);
        assert_eq!(total.num_edits, 3);
    }
}

//! What `rnnsearch evaluate` computes and prints, whatever the hypotheses
//! come from: corpus or sentence scores of one system, with bootstrap
//! confidence intervals, or several systems against a baseline with a
//! paired significance test; as sacreBLEU's text or as JSON lines.

use std::io::Write;

use anyhow::{Context, Result};
use rnnsearch_bleu::report::{fancy_grid, format_p_value, paired_legend, signature_list};
use rnnsearch_bleu::resample::{
    bleu_statistics, chrf_statistics, ter_statistics, Resample, StatRows,
};
use rnnsearch_bleu::significance::{
    bootstrap_confidence, paired_test, Confidence, PairedDraws, PairedResult, PairedTest,
};
use rnnsearch_bleu::{Bleu, BleuOptions, Chrf, ChrfOptions, Signature, Ter, TerOptions};
use serde_json::Value;

/// A metric of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricArg {
    /// BLEU
    Bleu,
    /// chrF (chrF++ with --chrf-word-order 2)
    Chrf,
    /// translation edit rate (TER)
    Ter,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// sacreBLEU's text lines (a table for several systems)
    Text,
    /// one JSON object per line
    Json,
}

/// The statistical test asked for, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// Scores only.
    None,
    /// Bootstrap confidence intervals with this many resamples.
    Confidence(usize),
    /// A paired test of every system against the first.
    Paired(PairedTest),
}

/// The random seed of the tests, and how the signature shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// The seed NumPy's generator is given.
    pub value: u64,
    /// `12345`, or `none` when drawn from the system.
    pub label: String,
}

/// What to compute and how to print it.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Metrics in print order, without duplicates.
    pub metrics: Vec<MetricArg>,
    /// BLEU settings.
    pub bleu: BleuOptions,
    /// chrF settings.
    pub chrf: ChrfOptions,
    /// TER settings.
    pub ter: TerOptions,
    /// One score per segment instead of a corpus score.
    pub sentence_level: bool,
    /// The statistical test.
    pub test: Test,
    /// The seed of the test's resampling.
    pub seed: Seed,
    /// Decimals printed in text output.
    pub width: usize,
    /// Text or JSON.
    pub format: FormatArg,
}

/// A system to score: its name in reports and its lines.
pub struct System {
    /// The file name (or "model output").
    pub name: String,
    /// One hypothesis per segment.
    pub lines: Vec<String>,
}

/// A scorer of one metric, with what its reports need beyond the score.
enum Scorer {
    Bleu(Bleu),
    Chrf(Chrf),
    Ter(Ter),
}

/// A score ready to print: the name, the number, the signature, the text
/// after the score and the metric's own JSON fields.
struct Report {
    name: String,
    score: f64,
    signature: Signature,
    verbose: String,
    extra: Vec<(&'static str, Value)>,
}

impl Scorer {
    fn new(metric: MetricArg, opts: &ScoreOptions) -> Result<Self> {
        Ok(match metric {
            MetricArg::Bleu => Scorer::Bleu(Bleu::new(opts.bleu.clone())?),
            MetricArg::Chrf => Scorer::Chrf(Chrf::new(opts.chrf.clone())?),
            MetricArg::Ter => Scorer::Ter(Ter::new(opts.ter)?),
        })
    }

    fn metric(&mut self) -> &mut dyn Resample {
        match self {
            Scorer::Bleu(m) => m,
            Scorer::Chrf(m) => m,
            Scorer::Ter(m) => m,
        }
    }

    /// The report of summed statistics.
    fn report(&self, sums: &[f64], nrefs: usize) -> Report {
        match self {
            Scorer::Bleu(m) => {
                let s = m.score(&bleu_statistics(sums), nrefs);
                Report {
                    name: s.name().to_string(),
                    score: s.score,
                    verbose: s.verbose(),
                    extra: vec![
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
            Scorer::Chrf(m) => {
                let s = m.score(&chrf_statistics(sums), nrefs);
                Report {
                    extra: vec![
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
            Scorer::Ter(m) => {
                let s = m.score(&ter_statistics(sums), nrefs);
                Report {
                    name: "TER".to_string(),
                    score: s.score,
                    verbose: String::new(),
                    extra: vec![
                        ("num_edits", Value::from(s.num_edits)),
                        ("ref_length", Value::from(s.ref_length)),
                    ],
                    signature: s.signature,
                }
            }
        }
    }
}

impl Report {
    /// `NAME|signature = 12.34 (μ = 12.30 ± 1.02) verbose`, as sacreBLEU.
    fn text(&self, width: usize, confidence: Option<Confidence>) -> String {
        let mut line = format!("{}|{} = {:.width$}", self.name, self.signature, self.score);
        if let Some(c) = confidence {
            line.push_str(&format!(" (μ = {:.width$} ± {:.width$})", c.mean, c.ci));
        }
        if !self.verbose.is_empty() {
            line.push(' ');
            line.push_str(&self.verbose);
        }
        line
    }

    /// Today's JSON object: name, unrounded score, signature, the
    /// interval's fields when there is one, the metric's own fields, then
    /// the signature's fields as strings (as sacreBLEU's JSON has them).
    fn json(&self, width: usize, confidence: Option<Confidence>) -> Object {
        let mut obj = Object::default()
            .field("name", self.name.as_str())
            .field("score", self.score)
            .field("signature", self.signature.to_string());
        if let Some(c) = confidence {
            let text = format!("μ = {:.width$} ± {:.width$}", c.mean, c.ci);
            obj = obj
                .field("confidence_mean", c.mean)
                .field("confidence_var", c.ci)
                .field("confidence", text);
        }
        for (key, value) in &self.extra {
            obj = obj.field(key, value.clone());
        }
        for (key, value) in self.signature.fields() {
            obj = obj.field(key, value.as_str());
        }
        obj
    }
}

/// A JSON object that keeps its fields in the order they are added
/// (serde_json's map sorts them).
#[derive(Debug, Default)]
struct Object(Vec<(String, String)>);

impl Object {
    fn field(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.push((key.to_string(), value.into().to_string()));
        self
    }

    fn object(mut self, key: &str, value: Object) -> Self {
        self.0.push((key.to_string(), value.to_string()));
        self
    }
}

impl std::fmt::Display for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{")?;
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:{value}", Value::from(key.as_str()))?;
        }
        f.write_str("}")
    }
}

/// Scores the systems against the reference streams and prints the result.
pub fn score_and_print(
    systems: &[System],
    refs: &[Vec<String>],
    opts: &ScoreOptions,
    out: &mut dyn Write,
) -> Result<()> {
    let mut scorers: Vec<Scorer> = opts
        .metrics
        .iter()
        .map(|&m| Scorer::new(m, opts))
        .collect::<Result<_>>()?;
    // rows[metric][system]
    let rows: Vec<Vec<StatRows>> = each_metric(&mut scorers, |_, scorer| {
        systems
            .iter()
            .map(|s| scorer.metric().stat_rows(&s.lines, refs))
            .collect::<Result<Vec<_>, _>>()
    })
    .into_iter()
    .collect::<Result<_, _>>()?;
    let text = if opts.sentence_level {
        sentence_level(&scorers, &rows, refs.len(), opts)
    } else if let Test::Paired(test) = opts.test {
        paired(&mut scorers, &rows, systems, refs.len(), test, opts)
    } else if systems.len() > 1 {
        several(&scorers, &rows, systems, refs.len(), opts)
    } else {
        one_system(&mut scorers, &rows, refs.len(), opts)
    };
    out.write_all(text.as_bytes()).context("writing scores")
}

/// `work` on every metric's scorer, each on a thread of its own: the
/// metrics share nothing, and their statistics and resampling are the cost.
fn each_metric<T: Send>(
    scorers: &mut [Scorer],
    work: impl Fn(usize, &mut Scorer) -> T + Sync,
) -> Vec<T> {
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = scorers
            .iter_mut()
            .enumerate()
            .map(|(k, scorer)| scope.spawn(move || work(k, scorer)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a metric's thread panicked"))
            .collect()
    })
}

fn signature_with_test(sig: &Signature, opts: &ScoreOptions) -> Signature {
    match opts.test {
        Test::None => sig.clone(),
        Test::Confidence(n) => sig.with_test(Some(n), None, &opts.seed.label),
        Test::Paired(PairedTest::Bootstrap(n)) => sig.with_test(Some(n), None, &opts.seed.label),
        Test::Paired(PairedTest::Randomization(n)) => {
            sig.with_test(None, Some(n), &opts.seed.label)
        }
    }
}

fn one_system(
    scorers: &mut [Scorer],
    rows: &[Vec<StatRows>],
    nrefs: usize,
    opts: &ScoreOptions,
) -> String {
    let confidences: Vec<Option<Confidence>> = each_metric(scorers, |k, scorer| match opts.test {
        Test::Confidence(n) => Some(bootstrap_confidence(
            scorer.metric(),
            &rows[k][0],
            n,
            opts.seed.value,
        )),
        _ => None,
    });
    let mut lines = Vec::new();
    for ((scorer, per_system), confidence) in scorers.iter().zip(rows).zip(confidences) {
        let mut report = scorer.report(&per_system[0].sum(), nrefs);
        report.signature = signature_with_test(&report.signature, opts);
        lines.push(match opts.format {
            FormatArg::Text => report.text(opts.width, confidence),
            FormatArg::Json => report.json(opts.width, confidence).to_string(),
        });
    }
    if opts.format == FormatArg::Text {
        align_on_equals(&mut lines);
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// One line per segment and metric (text), or one JSON object per segment
/// holding every metric's score under its name.
fn sentence_level(
    scorers: &[Scorer],
    rows: &[Vec<StatRows>],
    nrefs: usize,
    opts: &ScoreOptions,
) -> String {
    let segments = rows.first().map_or(0, |r| r[0].len());
    let mut out = String::new();
    for i in 0..segments {
        let reports: Vec<Report> = scorers
            .iter()
            .zip(rows)
            .map(|(scorer, per_system)| scorer.report(per_system[0].row(i), nrefs))
            .collect();
        match opts.format {
            FormatArg::Text => {
                for report in &reports {
                    out.push_str(&report.text(opts.width, None));
                    out.push('\n');
                }
            }
            FormatArg::Json => {
                let mut obj = Object::default().field("segment", i + 1);
                for report in &reports {
                    obj = obj.object(&report.name, report.json(opts.width, None));
                }
                out.push_str(&obj.to_string());
                out.push('\n');
            }
        }
    }
    out
}

/// Several systems without a test: a table of scores (text) or one JSON
/// object per system.
fn several(
    scorers: &[Scorer],
    rows: &[Vec<StatRows>],
    systems: &[System],
    nrefs: usize,
    opts: &ScoreOptions,
) -> String {
    let reports: Vec<Vec<Report>> = scorers
        .iter()
        .zip(rows)
        .map(|(scorer, per_system)| {
            per_system
                .iter()
                .map(|r| scorer.report(&r.sum(), nrefs))
                .collect()
        })
        .collect();
    if opts.format == FormatArg::Json {
        let mut out = String::new();
        for (k, system) in systems.iter().enumerate() {
            let mut obj = Object::default().field("system", system.name.as_str());
            for per_metric in &reports {
                let r = &per_metric[k];
                obj = obj.object(&r.name, r.json(opts.width, None));
            }
            out.push_str(&obj.to_string());
            out.push('\n');
        }
        return out;
    }
    let mut headers = vec!["System".to_string()];
    headers.extend(reports.iter().map(|r| r[0].name.clone()));
    let table: Vec<Vec<String>> = systems
        .iter()
        .enumerate()
        .map(|(k, system)| {
            let mut row = vec![system.name.clone()];
            row.extend(
                reports
                    .iter()
                    .map(|r| format!("{:.w$}", r[k].score, w = opts.width)),
            );
            row
        })
        .collect();
    let signatures: Vec<(String, String)> = reports
        .iter()
        .map(|r| (r[0].name.clone(), r[0].signature.to_string()))
        .collect();
    format!(
        "{}\n{}",
        fancy_grid(&headers, &table),
        signature_list(&signatures)
    )
}

/// Several systems, each tested against the first (the baseline).
fn paired(
    scorers: &mut [Scorer],
    rows: &[Vec<StatRows>],
    systems: &[System],
    nrefs: usize,
    test: PairedTest,
    opts: &ScoreOptions,
) -> String {
    let segments = rows.first().map_or(0, |r| r[0].len());
    let draws = PairedDraws::new(test, opts.seed.value, segments);
    let results: Vec<Vec<PairedResult>> = each_metric(scorers, |k, scorer| {
        paired_test(scorer.metric(), &rows[k], &draws)
    });
    let (names, signatures): (Vec<String>, Vec<String>) = scorers
        .iter()
        .zip(rows)
        .map(|(scorer, per_system)| {
            let report = scorer.report(&per_system[0].sum(), nrefs);
            let signature = signature_with_test(&report.signature, opts).to_string();
            (report.name, signature)
        })
        .unzip();
    let system_names: Vec<String> = systems
        .iter()
        .enumerate()
        .map(|(k, s)| {
            if k == 0 {
                format!("Baseline: {}", s.name)
            } else {
                s.name.clone()
            }
        })
        .collect();
    match opts.format {
        FormatArg::Json => paired_json(&system_names, &names, &signatures, &results),
        FormatArg::Text => {
            let bootstrap = matches!(test, PairedTest::Bootstrap(_));
            let mut headers = vec!["System".to_string()];
            headers.extend(names.iter().map(|n| {
                if bootstrap {
                    format!("{n} (μ ± 95% CI)")
                } else {
                    n.clone()
                }
            }));
            let w = opts.width;
            let table: Vec<Vec<String>> = system_names
                .iter()
                .enumerate()
                .map(|(k, name)| {
                    let mut row = vec![name.clone()];
                    row.extend(results.iter().map(|column| {
                        let r = &column[k];
                        let mut cell = format!("{:.w$}", r.score);
                        if let Some(c) = r.confidence {
                            cell.push_str(&format!(" ({:.w$} ± {:.w$})", c.mean, c.ci));
                        }
                        if let Some(p) = r.p_value {
                            cell.push('\n');
                            cell.push_str(&format_p_value(p));
                        }
                        cell
                    }));
                    row
                })
                .collect();
            let sigs: Vec<(String, String)> = names.into_iter().zip(signatures).collect();
            format!(
                "{}\n{}\n{}",
                fancy_grid(&headers, &table),
                paired_legend(test, &system_names[0]),
                signature_list(&sigs)
            )
        }
    }
}

/// One JSON object per system: its name and, per metric, the score,
/// p-value, bootstrap mean and interval (sacreBLEU's fields) and signature.
fn paired_json(
    system_names: &[String],
    names: &[String],
    signatures: &[String],
    results: &[Vec<PairedResult>],
) -> String {
    let mut out = String::new();
    for (k, system) in system_names.iter().enumerate() {
        let mut obj = Object::default().field("system", system.as_str());
        for ((name, signature), column) in names.iter().zip(signatures).zip(results) {
            let r = &column[k];
            let result = Object::default()
                .field("score", r.score)
                .field("p_value", r.p_value)
                .field("mean", r.confidence.map(|c| c.mean))
                .field("ci", r.confidence.map(|c| c.ci))
                .field("signature", signature.as_str());
            obj = obj.object(name, result);
        }
        out.push_str(&obj.to_string());
        out.push('\n');
    }
    out
}

/// Right-aligns the part before ` = ` across lines, as sacreBLEU does when
/// it prints several metrics.
fn align_on_equals(lines: &mut [String]) {
    let width = lines
        .iter()
        .filter_map(|l| l.find(" = ").map(|i| l[..i].chars().count()))
        .max()
        .unwrap_or(0);
    for line in lines.iter_mut() {
        if let Some(i) = line.find(" = ") {
            let pad = width - line[..i].chars().count();
            line.insert_str(0, &" ".repeat(pad));
        }
    }
}

//! What `rnnsearch evaluate` computes and prints, whatever the hypotheses
//! come from: corpus or sentence scores of one system, with bootstrap
//! confidence intervals, or several systems against a baseline with a
//! paired significance test; as sacreBLEU's text or as JSON lines.

use std::io::Write;

use anyhow::{Context, Result};
use rnnsearch_bleu::json;
use rnnsearch_bleu::report::{fancy_grid, format_p_value, signature_list, Report};
use rnnsearch_bleu::resample::StatRows;
use rnnsearch_bleu::significance::{
    bootstrap_confidence, paired_legend, paired_test, Confidence, PairedDraws, PairedResult,
    PairedTest,
};
use rnnsearch_bleu::{AnyMetric, Bleu, BleuOptions, Chrf, ChrfOptions, Signature, Ter, TerOptions};

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

/// The scorer of one metric of the command line.
fn scorer(metric: MetricArg, opts: &ScoreOptions) -> Result<AnyMetric> {
    Ok(match metric {
        MetricArg::Bleu => AnyMetric::new(Bleu::new(opts.bleu.clone())?),
        MetricArg::Chrf => AnyMetric::new(Chrf::new(opts.chrf.clone())?),
        MetricArg::Ter => AnyMetric::new(Ter::new(opts.ter)?),
    })
}

/// Scores the systems against the reference streams and prints the result.
pub fn score_and_print(
    systems: &[System],
    refs: &[Vec<String>],
    opts: &ScoreOptions,
    out: &mut dyn Write,
) -> Result<()> {
    let mut scorers: Vec<AnyMetric> = opts
        .metrics
        .iter()
        .map(|&m| scorer(m, opts))
        .collect::<Result<_>>()?;
    // rows[metric][system]
    let rows: Vec<Vec<StatRows>> = each_metric(&mut scorers, |_, scorer| {
        systems
            .iter()
            .map(|s| scorer.stat_rows(&s.lines, refs))
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
    scorers: &mut [AnyMetric],
    work: impl Fn(usize, &mut AnyMetric) -> T + Sync,
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
    scorers: &mut [AnyMetric],
    rows: &[Vec<StatRows>],
    nrefs: usize,
    opts: &ScoreOptions,
) -> String {
    let confidences: Vec<Option<Confidence>> = each_metric(scorers, |k, scorer| match opts.test {
        Test::Confidence(n) => Some(bootstrap_confidence(
            scorer,
            &rows[k][0],
            n,
            opts.seed.value,
        )),
        _ => None,
    });
    let mut lines = Vec::new();
    for ((scorer, per_system), confidence) in scorers.iter().zip(rows).zip(confidences) {
        let mut report = scorer.score(&per_system[0].sum(), nrefs);
        report.signature = signature_with_test(&report.signature, opts);
        lines.push(match opts.format {
            FormatArg::Text => report.text(opts.width, confidence),
            FormatArg::Json => report.json(opts.width, confidence),
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
    scorers: &[AnyMetric],
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
            .map(|(scorer, per_system)| scorer.score(per_system[0].row(i), nrefs))
            .collect();
        match opts.format {
            FormatArg::Text => {
                for report in &reports {
                    out.push_str(&report.text(opts.width, None));
                    out.push('\n');
                }
            }
            FormatArg::Json => {
                out.push_str(&json::segment_line(i + 1, &reports));
                out.push('\n');
            }
        }
    }
    out
}

/// Several systems without a test: a table of scores (text) or one JSON
/// object per system.
fn several(
    scorers: &[AnyMetric],
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
                .map(|r| scorer.score(&r.sum(), nrefs))
                .collect()
        })
        .collect();
    if opts.format == FormatArg::Json {
        let mut out = String::new();
        for (k, system) in systems.iter().enumerate() {
            let per_metric = reports.iter().map(|r| &r[k]);
            out.push_str(&json::system_line(&system.name, per_metric));
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
    scorers: &mut [AnyMetric],
    rows: &[Vec<StatRows>],
    systems: &[System],
    nrefs: usize,
    test: PairedTest,
    opts: &ScoreOptions,
) -> String {
    let segments = rows.first().map_or(0, |r| r[0].len());
    let draws = PairedDraws::new(test, opts.seed.value, segments);
    let results: Vec<Vec<PairedResult>> =
        each_metric(scorers, |k, scorer| paired_test(scorer, &rows[k], &draws));
    let (names, signatures): (Vec<String>, Vec<String>) = scorers
        .iter()
        .zip(rows)
        .map(|(scorer, per_system)| {
            let report = scorer.score(&per_system[0].sum(), nrefs);
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
        let metrics = names
            .iter()
            .zip(signatures)
            .zip(results)
            .map(|((name, signature), column)| (name.as_str(), signature.as_str(), &column[k]));
        out.push_str(&json::paired_line(system, metrics));
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

//! `rnnsearch evaluate`: sacreBLEU-compatible BLEU and chrF of a hypothesis
//! file, or of a trained model's translations, against reference files.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use rnnsearch_bleu::{
    check_line_counts, read_lines, Bleu, BleuOptions, BleuScore, Chrf, ChrfOptions, ChrfScore,
    Signature, SmoothMethod, TokenizerKind,
};
use serde_json::Value;

/// Arguments of `rnnsearch evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Hypothesis file, one segment per line (`-` reads stdin)
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "model",
        required_unless_present = "model"
    )]
    pub hyp: Option<PathBuf>,

    /// Reference file, one segment per line; repeat for several references
    #[arg(long = "ref", value_name = "FILE", required = true)]
    pub refs: Vec<PathBuf>,

    /// BLEU tokenizer
    #[arg(long, value_enum, value_name = "TOK", default_value_t = TokenizeArg::Tok13a)]
    pub tokenize: TokenizeArg,

    /// Lowercase hypotheses and references (BLEU and chrF)
    #[arg(long)]
    pub lowercase: bool,

    /// BLEU smoothing method
    #[arg(long, value_enum, value_name = "METHOD", default_value_t = SmoothArg::Exp)]
    pub smooth: SmoothArg,

    /// Smoothing value for floor (default 0.1) and add-k (default 1)
    #[arg(long, value_name = "X")]
    pub smooth_value: Option<f64>,

    /// Metrics to compute, comma-separated
    #[arg(
        long,
        value_enum,
        value_name = "LIST",
        value_delimiter = ',',
        default_values_t = [MetricArg::Bleu, MetricArg::Chrf]
    )]
    pub metrics: Vec<MetricArg>,

    /// Word n-gram order of chrF (2 gives chrF++)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub chrf_word_order: usize,

    /// Score each segment: one line per segment and metric
    #[arg(long)]
    pub sentence_level: bool,

    /// Output format
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = FormatArg::Text)]
    pub format: FormatArg,

    /// Training run directory: translate --src with its model and score that
    #[arg(long, value_name = "RUN_DIR", requires = "src")]
    pub model: Option<PathBuf>,

    /// Source file to translate in model mode (`-` reads stdin)
    #[arg(long, value_name = "FILE", requires = "model")]
    pub src: Option<PathBuf>,

    /// Beam size in model mode
    #[arg(long, value_name = "K", default_value_t = 5)]
    pub beam: usize,

    /// Also write the model's translations to this file
    #[arg(long, value_name = "FILE", requires = "model")]
    pub output: Option<PathBuf>,

    /// Checkpoint to load in model mode (best, last, an averaged one, step-NNNNNNN; several,
    /// comma-separated, translate as an ensemble)
    #[arg(long, value_name = "NAME[,NAME...]", default_value = "best")]
    pub checkpoint: String,

    /// Compute backend in model mode
    #[arg(long, value_enum, value_name = "NAME")]
    pub backend: Option<crate::backend::Backend>,

    /// Number of CPU threads in model mode
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// `--tokenize` values (sacreBLEU names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenizeArg {
    /// mteval-v13a, the WMT standard
    #[value(name = "13a")]
    Tok13a,
    /// mteval-v14 international: Unicode punctuation and symbols
    Intl,
    /// every character is a token
    Char,
    /// whitespace only
    None,
}

impl From<TokenizeArg> for TokenizerKind {
    fn from(t: TokenizeArg) -> Self {
        match t {
            TokenizeArg::Tok13a => TokenizerKind::Tok13a,
            TokenizeArg::Intl => TokenizerKind::Intl,
            TokenizeArg::Char => TokenizerKind::Char,
            TokenizeArg::None => TokenizerKind::None,
        }
    }
}

/// `--smooth` values (sacreBLEU names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SmoothArg {
    /// exponential decay (mteval-v13a)
    Exp,
    /// zero-match precisions get a floor value
    Floor,
    /// add k to matches and totals of orders above 1
    #[value(name = "add-k")]
    AddK,
    /// no smoothing
    None,
}

impl From<SmoothArg> for SmoothMethod {
    fn from(s: SmoothArg) -> Self {
        match s {
            SmoothArg::Exp => SmoothMethod::Exp,
            SmoothArg::Floor => SmoothMethod::Floor,
            SmoothArg::AddK => SmoothMethod::AddK,
            SmoothArg::None => SmoothMethod::None,
        }
    }
}

/// `--metrics` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricArg {
    /// BLEU
    Bleu,
    /// chrF (chrF++ with --chrf-word-order 2)
    Chrf,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// sacreBLEU's text lines
    Text,
    /// one JSON object per line
    Json,
}

/// What to compute and how to print it; independent of where the
/// hypotheses come from.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Metrics in print order, without duplicates.
    pub metrics: Vec<MetricArg>,
    /// BLEU settings.
    pub bleu: BleuOptions,
    /// chrF settings.
    pub chrf: ChrfOptions,
    /// One score per segment instead of a corpus score.
    pub sentence_level: bool,
    /// Text or JSON.
    pub format: FormatArg,
}

impl ScoreOptions {
    /// The scoring options given on the command line.
    pub fn from_args(args: &EvaluateArgs) -> Self {
        let mut metrics = Vec::new();
        for m in &args.metrics {
            if !metrics.contains(m) {
                metrics.push(*m);
            }
        }
        ScoreOptions {
            metrics,
            bleu: BleuOptions {
                tokenize: args.tokenize.into(),
                lowercase: args.lowercase,
                smooth_method: args.smooth.into(),
                smooth_value: args.smooth_value,
                // sacreBLEU turns effective order on for sentence-level BLEU.
                effective_order: args.sentence_level,
            },
            chrf: ChrfOptions {
                word_order: args.chrf_word_order,
                lowercase: args.lowercase,
                ..ChrfOptions::default()
            },
            sentence_level: args.sentence_level,
            format: args.format,
        }
    }
}

/// Runs `rnnsearch evaluate`.
pub fn run(args: EvaluateArgs) -> Result<()> {
    let stdin_uses = std::iter::once(&args.hyp)
        .chain(std::iter::once(&args.src))
        .flatten()
        .chain(&args.refs)
        .filter(|p| p.as_os_str() == "-")
        .count();
    if stdin_uses > 1 {
        bail!("only one input can be read from stdin (`-`)");
    }
    let opts = ScoreOptions::from_args(&args);
    let (hyp_label, hyps) = match &args.hyp {
        Some(path) => (label(path), read_lines(path)?),
        None => (
            "model output".to_string(),
            crate::translate::hypotheses_for_evaluate(&args)?,
        ),
    };
    let refs = read_references(&args.refs)?;
    let labels: Vec<String> = args.refs.iter().map(|p| label(p)).collect();
    let labelled: Vec<(&str, &Vec<String>)> =
        labels.iter().map(String::as_str).zip(&refs).collect();
    check_line_counts((&hyp_label, &hyps), &labelled)?;
    if hyps.is_empty() {
        bail!("{hyp_label} has no lines: nothing to score");
    }
    let mut out = BufWriter::new(io::stdout().lock());
    score_and_print(&hyps, &refs, &opts, &mut out)?;
    out.flush().context("writing scores to stdout")?;
    Ok(())
}

/// Reads every reference file (`-` = stdin).
pub fn read_references(paths: &[PathBuf]) -> Result<Vec<Vec<String>>> {
    paths
        .iter()
        .map(|p| read_lines(p).map_err(anyhow::Error::from))
        .collect()
}

/// How a stream is named in messages.
fn label(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

/// Scores `hyps` against reference streams `refs` (one stream per
/// reference, each as long as `hyps`) and prints the result to `out`.
pub fn score_and_print(
    hyps: &[String],
    refs: &[Vec<String>],
    opts: &ScoreOptions,
    out: &mut dyn Write,
) -> Result<()> {
    let mut bleu = Bleu::new(opts.bleu.clone())?;
    let mut chrf = Chrf::new(opts.chrf.clone())?;
    if opts.sentence_level {
        for (i, hyp) in hyps.iter().enumerate() {
            let seg_refs: Vec<&str> = refs.iter().map(|r| r[i].as_str()).collect();
            for metric in &opts.metrics {
                let line = match metric {
                    MetricArg::Bleu => {
                        let stats = bleu.segment_statistics(hyp, &seg_refs);
                        bleu_line(&bleu.score(&stats, refs.len()), opts.format, Some(i + 1))
                    }
                    MetricArg::Chrf => {
                        let stats = chrf.segment_statistics(hyp, &seg_refs);
                        chrf_line(&chrf.score(&stats, refs.len()), opts.format, Some(i + 1))
                    }
                };
                writeln!(out, "{line}").context("writing scores")?;
            }
        }
        return Ok(());
    }
    let mut lines = Vec::new();
    for metric in &opts.metrics {
        lines.push(match metric {
            MetricArg::Bleu => bleu_line(&bleu.corpus_score(hyps, refs)?, opts.format, None),
            MetricArg::Chrf => chrf_line(&chrf.corpus_score(hyps, refs)?, opts.format, None),
        });
    }
    if opts.format == FormatArg::Text {
        align_on_equals(&mut lines);
    }
    for line in lines {
        writeln!(out, "{line}").context("writing scores")?;
    }
    Ok(())
}

/// Right-aligns the part before ` = ` across lines, as sacreBLEU does when
/// it prints several metrics.
fn align_on_equals(lines: &mut [String]) {
    // Names and signatures are ASCII, so byte offsets are columns.
    let width = lines
        .iter()
        .filter_map(|l| l.find(" = "))
        .max()
        .unwrap_or(0);
    for line in lines.iter_mut() {
        if let Some(i) = line.find(" = ") {
            line.insert_str(0, &" ".repeat(width - i));
        }
    }
}

fn bleu_line(score: &BleuScore, format: FormatArg, segment: Option<usize>) -> String {
    match format {
        FormatArg::Text => score.to_string(),
        FormatArg::Json => {
            let mut fields = json_head(segment, score.name(), score.score, &score.signature);
            fields.extend([
                ("verbose_score", Value::from(score.verbose())),
                ("counts", Value::from(score.counts.to_vec())),
                ("totals", Value::from(score.totals.to_vec())),
                ("precisions", Value::from(score.precisions.to_vec())),
                ("bp", Value::from(score.bp)),
                ("ratio", Value::from(score.ratio)),
                ("sys_len", Value::from(score.sys_len)),
                ("ref_len", Value::from(score.ref_len)),
            ]);
            json_object(fields, &score.signature)
        }
    }
}

fn chrf_line(score: &ChrfScore, format: FormatArg, segment: Option<usize>) -> String {
    match format {
        FormatArg::Text => score.to_string(),
        FormatArg::Json => {
            let mut fields = json_head(segment, &score.name, score.score, &score.signature);
            fields.extend([
                ("char_order", Value::from(score.char_order)),
                ("word_order", Value::from(score.word_order)),
                ("beta", Value::from(score.beta)),
            ]);
            json_object(fields, &score.signature)
        }
    }
}

fn json_head(
    segment: Option<usize>,
    name: &str,
    score: f64,
    signature: &Signature,
) -> Vec<(&'static str, Value)> {
    let mut fields = Vec::new();
    if let Some(i) = segment {
        fields.push(("segment", Value::from(i)));
    }
    fields.extend([
        ("name", Value::from(name)),
        ("score", Value::from(score)),
        ("signature", Value::from(signature.to_string())),
    ]);
    fields
}

/// One JSON object in field order, followed by the signature's fields as
/// strings (as sacreBLEU's JSON output has them).
fn json_object(mut fields: Vec<(&'static str, Value)>, signature: &Signature) -> String {
    for (key, value) in signature.fields() {
        fields.push((key, Value::from(value.as_str())));
    }
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::from(*k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: EvaluateArgs,
    }

    fn parse(argv: &[&str]) -> Result<EvaluateArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("evaluate").chain(argv.iter().copied())).map(|c| c.args)
    }

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn render(argv: &[&str], hyps: &[&str], refs: &[&[&str]]) -> String {
        let opts = ScoreOptions::from_args(&parse(argv).unwrap());
        let refs: Vec<Vec<String>> = refs.iter().map(|r| lines(r)).collect();
        let mut out = Vec::new();
        score_and_print(&lines(hyps), &refs, &opts, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    const HYPS: [&str; 3] = [
        "The dog bit the man.",
        "It wasn't surprising.",
        "The man had just bitten him.",
    ];
    const REF1: [&str; 3] = [
        "The dog bit the man.",
        "It was not unexpected.",
        "The man bit him first.",
    ];
    const REF2: [&str; 3] = [
        "The dog had bit the man.",
        "No one was surprised.",
        "The man had bitten the dog.",
    ];

    #[test]
    fn defaults() {
        let args = parse(&["--hyp", "h", "--ref", "r"]).unwrap();
        assert_eq!(args.metrics, [MetricArg::Bleu, MetricArg::Chrf]);
        assert_eq!(args.tokenize, TokenizeArg::Tok13a);
        assert_eq!(args.smooth, SmoothArg::Exp);
        assert_eq!((args.beam, args.chrf_word_order), (5, 0));
        assert_eq!(args.format, FormatArg::Text);
        assert_eq!(args.checkpoint, "best");
    }

    #[test]
    fn parses_lists_and_sacrebleu_names() {
        let argv = "--hyp - --ref a --ref b --tokenize 13a --smooth add-k --metrics chrf,bleu,chrf";
        let args = parse(&argv.split(' ').collect::<Vec<_>>()).unwrap();
        assert_eq!(args.refs.len(), 2);
        assert_eq!(args.smooth, SmoothArg::AddK);
        assert_eq!(
            ScoreOptions::from_args(&args).metrics,
            [MetricArg::Chrf, MetricArg::Bleu]
        );
        assert!(parse(&["--hyp", "h"]).is_err(), "--ref is required");
        assert!(
            parse(&["--ref", "r"]).is_err(),
            "--hyp or --model is required"
        );
        assert!(parse(&["--hyp", "h", "--model", "m", "--src", "s", "--ref", "r"]).is_err());
        assert!(
            parse(&["--model", "m", "--ref", "r"]).is_err(),
            "--model needs --src"
        );
        assert!(parse(&["--model", "m", "--src", "s", "--ref", "r"]).is_ok());
        assert!(parse(&["--hyp", "h", "--ref", "r", "--tokenize", "zh"]).is_err());
    }

    #[test]
    fn text_output_is_sacrebleu_style() {
        let text = render(
            &["--hyp", "h", "--ref", "a", "--ref", "b"],
            &HYPS,
            &[&REF1, &REF2],
        );
        let v = rnnsearch_bleu::VERSION;
        let expected = format!(
            "  BLEU|nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:{v} = 48.53 \
             82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)\n\
             chrF2|nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:{v} = "
        );
        assert!(text.starts_with(&expected), "{text}");
        let text = render(
            &[
                "--hyp",
                "h",
                "--ref",
                "a",
                "--metrics",
                "chrf",
                "--chrf-word-order",
                "2",
            ],
            &HYPS,
            &[&REF1],
        );
        assert!(
            text.starts_with("chrF2++|nrefs:1|case:mixed|eff:yes|nc:6|nw:2|"),
            "{text}"
        );
    }

    #[test]
    fn json_output_has_unrounded_details() {
        let text = render(
            &["--hyp", "h", "--ref", "a", "--ref", "b", "--format", "json"],
            &HYPS,
            &[&REF1, &REF2],
        );
        let objects: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(objects.len(), 2);
        let bleu = &objects[0];
        assert_eq!(bleu["name"], "BLEU");
        assert!((bleu["score"].as_f64().unwrap() - 48.530827009929865).abs() < 1e-12);
        assert_eq!(bleu["counts"], serde_json::json!([14, 7, 5, 3]));
        assert_eq!(bleu["totals"], serde_json::json!([17, 14, 11, 8]));
        assert_eq!(
            (bleu["sys_len"].as_u64(), bleu["ref_len"].as_u64()),
            (Some(17), Some(18))
        );
        assert_eq!(bleu["tok"], "13a");
        assert!(bleu["signature"]
            .as_str()
            .unwrap()
            .starts_with("nrefs:2|case:mixed"));
        assert_eq!(objects[1]["name"], "chrF2");
    }

    #[test]
    fn sentence_level_prints_each_segment() {
        let text = render(
            &[
                "--hyp",
                "h",
                "--ref",
                "a",
                "--sentence-level",
                "--metrics",
                "bleu",
            ],
            &HYPS,
            &[&REF1],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines
            .iter()
            .all(|l| l.starts_with("BLEU|nrefs:1|case:mixed|eff:yes|")));
        assert!(lines[0].contains(" = 100.00 "), "{}", lines[0]);
        let json = render(
            &[
                "--hyp",
                "h",
                "--ref",
                "a",
                "--sentence-level",
                "--format",
                "json",
            ],
            &HYPS,
            &[&REF1],
        );
        let objects: Vec<Value> = json
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(objects.len(), 6);
        assert_eq!(objects[5]["segment"], 3);
        assert_eq!(objects[5]["name"], "chrF2");
    }

    #[test]
    fn file_mode_errors_name_files() {
        let dir = std::env::temp_dir().join(format!("rnnsearch-evaluate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let hyp = dir.join("hyp.txt");
        let reference = dir.join("ref.txt");
        std::fs::write(&hyp, "a\nb\nc\n").unwrap();
        std::fs::write(&reference, "a\nb\n").unwrap();
        let run_with = |h: &Path, r: &Path| {
            let args = parse(&["--hyp", h.to_str().unwrap(), "--ref", r.to_str().unwrap()]);
            run(args.unwrap()).map_err(|e| format!("{e:#}"))
        };
        let err = run_with(&hyp, &reference).unwrap_err();
        assert!(
            err.contains("hyp.txt has 3 lines") && err.contains("ref.txt has 2"),
            "{err}"
        );
        let missing = dir.join("missing.txt");
        let err = run_with(&hyp, &missing).unwrap_err();
        assert!(err.contains("missing.txt"), "{err}");
        std::fs::write(&reference, b"a\n\xffb\nc\n").unwrap();
        let err = run_with(&hyp, &reference).unwrap_err();
        assert!(err.contains("ref.txt: line 2 is not valid UTF-8"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

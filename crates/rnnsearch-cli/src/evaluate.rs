//! `rnnsearch evaluate`: sacreBLEU-compatible BLEU, chrF and TER of
//! hypothesis files, or of a trained model's translations, against reference
//! files; with bootstrap confidence intervals (`--confidence`) or a paired
//! significance test of several systems against the first (`--paired-bs`,
//! `--paired-ar`).

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use rnnsearch_bleu::significance::{PairedTest, DEFAULT_SEED};
use rnnsearch_bleu::{
    check_line_counts, read_lines, BleuOptions, ChrfOptions, SmoothMethod, TerOptions,
    TokenizerKind,
};

use crate::scoring::score_and_print;
pub use crate::scoring::{FormatArg, MetricArg, ScoreOptions, Seed, System, Test};

/// Arguments of `rnnsearch evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Hypothesis files, one segment per line (`-` reads stdin); several systems are
    /// compared in a table, the first as the baseline of a paired test
    #[arg(
        long,
        value_name = "FILE",
        num_args = 1..,
        conflicts_with = "model",
        required_unless_present = "model"
    )]
    pub hyp: Vec<PathBuf>,

    /// Reference file, one segment per line; repeat for several references
    #[arg(long = "ref", value_name = "FILE", required = true)]
    pub refs: Vec<PathBuf>,

    /// Metrics to compute, comma-separated
    #[arg(
        long,
        value_enum,
        value_name = "LIST",
        value_delimiter = ',',
        default_values_t = [MetricArg::Bleu, MetricArg::Chrf]
    )]
    pub metrics: Vec<MetricArg>,

    /// BLEU tokenizer [default: 13a]
    #[arg(long, value_enum, value_name = "TOK")]
    pub tokenize: Option<TokenizeArg>,

    /// Lowercase hypotheses and references (BLEU and chrF; TER is case-insensitive unless
    /// --ter-case-sensitive)
    #[arg(long)]
    pub lowercase: bool,

    /// BLEU smoothing method [default: exp]
    #[arg(long, value_enum, value_name = "METHOD")]
    pub smooth: Option<SmoothArg>,

    /// Smoothing value for floor (default 0.1) and add-k (default 1)
    #[arg(long, value_name = "X")]
    pub smooth_value: Option<f64>,

    /// Word n-gram order of chrF (2 gives chrF++) [default: 0]
    #[arg(long, value_name = "N")]
    pub chrf_word_order: Option<usize>,

    /// TER: keep case (by default TER lowercases)
    #[arg(long)]
    pub ter_case_sensitive: bool,

    /// TER: remove punctuation
    #[arg(long)]
    pub ter_no_punct: bool,

    /// TER: Tercom's normalisation and tokenisation of punctuation
    #[arg(long)]
    pub ter_normalized: bool,

    /// TER: split CJK characters (with --ter-normalized) and remove CJK punctuation (with
    /// --ter-no-punct)
    #[arg(long)]
    pub ter_asian_support: bool,

    /// Score each segment: one line per segment and metric (JSON: one object per segment)
    #[arg(long)]
    pub sentence_level: bool,

    /// Each score with its 95% confidence interval from bootstrap resampling
    #[arg(long)]
    pub confidence: bool,

    /// Bootstrap resamples of --confidence [default: 1000]
    #[arg(long, value_name = "N")]
    pub confidence_n: Option<usize>,

    /// Paired bootstrap resampling test of every --hyp against the first
    #[arg(long, conflicts_with = "paired_ar")]
    pub paired_bs: bool,

    /// Paired approximate randomization test of every --hyp against the first
    #[arg(long)]
    pub paired_ar: bool,

    /// Resamples of --paired-bs [default: 1000]
    #[arg(long, value_name = "N")]
    pub paired_bs_n: Option<usize>,

    /// Trials of --paired-ar [default: 10000]
    #[arg(long, value_name = "N")]
    pub paired_ar_n: Option<usize>,

    /// Seed of the resampling: a number, or `none` for a random one [default:
    /// $SACREBLEU_SEED, else 12345]
    #[arg(long, value_name = "N|none")]
    pub seed: Option<String>,

    /// Decimals of the printed scores
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub width: usize,

    /// Output format
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = FormatArg::Text)]
    pub format: FormatArg,

    /// Training run directory: translate --src with its model and score that; several,
    /// comma-separated, translate as one ensemble (as `translate --model`)
    #[arg(
        long,
        value_name = "RUN_DIR[,RUN_DIR...]",
        value_delimiter = ',',
        requires = "src"
    )]
    pub model: Vec<PathBuf>,

    /// Source file to translate in model mode (`-` reads stdin)
    #[arg(long, value_name = "FILE", requires = "model")]
    pub src: Option<PathBuf>,

    /// Also write the model's translations to this file
    #[arg(long, value_name = "FILE", requires = "model")]
    pub output: Option<PathBuf>,

    /// Decoding in model mode (left out: what the run chose)
    #[command(flatten)]
    pub decode: crate::translate::DecodeArgs,
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
    /// Chinese characters one by one, the rest as 13a
    Zh,
    /// whitespace only
    None,
}

impl From<TokenizeArg> for TokenizerKind {
    fn from(t: TokenizeArg) -> Self {
        match t {
            TokenizeArg::Tok13a => TokenizerKind::Tok13a,
            TokenizeArg::Intl => TokenizerKind::Intl,
            TokenizeArg::Char => TokenizerKind::Char,
            TokenizeArg::Zh => TokenizerKind::Zh,
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

impl ScoreOptions {
    /// The scoring options given on the command line; an option that does
    /// not apply to the chosen metrics or mode is an error that names it.
    pub fn from_args(args: &EvaluateArgs) -> Result<Self> {
        let mut metrics = Vec::new();
        for m in &args.metrics {
            if !metrics.contains(m) {
                metrics.push(*m);
            }
        }
        check_applies(args, &metrics)?;
        let smooth_method: SmoothMethod = args.smooth.unwrap_or(SmoothArg::Exp).into();
        if args.smooth_value.is_some() && smooth_method.default_value().is_none() {
            bail!("--smooth-value applies to --smooth floor and add-k, not {smooth_method}");
        }
        Ok(ScoreOptions {
            bleu: BleuOptions {
                tokenize: args.tokenize.unwrap_or(TokenizeArg::Tok13a).into(),
                lowercase: args.lowercase,
                smooth_method,
                smooth_value: args.smooth_value,
                // sacreBLEU turns effective order on for sentence-level BLEU.
                effective_order: args.sentence_level,
            },
            chrf: ChrfOptions {
                word_order: args.chrf_word_order.unwrap_or(0),
                lowercase: args.lowercase,
                ..ChrfOptions::default()
            },
            ter: TerOptions {
                normalized: args.ter_normalized,
                no_punct: args.ter_no_punct,
                asian_support: args.ter_asian_support,
                case_sensitive: args.ter_case_sensitive,
            },
            metrics,
            sentence_level: args.sentence_level,
            test: test_of(args)?,
            seed: seed_of(args.seed.as_deref())?,
            width: args.width,
            format: args.format,
        })
    }
}

/// Errors for options given without the metric they belong to.
fn check_applies(args: &EvaluateArgs, metrics: &[MetricArg]) -> Result<()> {
    let has = |m| metrics.contains(&m);
    let bleu_only = [
        ("--tokenize", args.tokenize.is_some()),
        ("--smooth", args.smooth.is_some()),
        ("--smooth-value", args.smooth_value.is_some()),
    ];
    let ter_only = [
        ("--ter-case-sensitive", args.ter_case_sensitive),
        ("--ter-no-punct", args.ter_no_punct),
        ("--ter-normalized", args.ter_normalized),
        ("--ter-asian-support", args.ter_asian_support),
    ];
    for (flag, given) in bleu_only {
        if given && !has(MetricArg::Bleu) {
            bail!("{flag} applies to BLEU, which --metrics does not include");
        }
    }
    for (flag, given) in ter_only {
        if given && !has(MetricArg::Ter) {
            bail!("{flag} applies to TER, which --metrics does not include");
        }
    }
    if args.chrf_word_order.is_some() && !has(MetricArg::Chrf) {
        bail!("--chrf-word-order applies to chrF, which --metrics does not include");
    }
    if args.lowercase && !has(MetricArg::Bleu) && !has(MetricArg::Chrf) {
        bail!("--lowercase applies to BLEU and chrF; TER lowercases unless --ter-case-sensitive");
    }
    Ok(())
}

/// The statistical test, checked against the number of systems and modes.
fn test_of(args: &EvaluateArgs) -> Result<Test> {
    let systems = if !args.model.is_empty() {
        1
    } else {
        args.hyp.len()
    };
    let given = [
        (
            "--confidence-n",
            args.confidence_n.is_some(),
            args.confidence,
        ),
        ("--paired-bs-n", args.paired_bs_n.is_some(), args.paired_bs),
        ("--paired-ar-n", args.paired_ar_n.is_some(), args.paired_ar),
    ];
    for (flag, set, enabled) in given {
        if set && !enabled {
            let test = flag.trim_end_matches("-n");
            bail!("{flag} needs {test}");
        }
    }
    let any_test = args.confidence || args.paired_bs || args.paired_ar;
    if args.seed.is_some() && !any_test {
        bail!("--seed applies to --confidence, --paired-bs and --paired-ar");
    }
    if args.sentence_level && any_test {
        bail!("statistical tests are not available with --sentence-level");
    }
    if args.sentence_level && systems > 1 {
        bail!("--sentence-level scores one system; {systems} --hyp files were given");
    }
    let positive = |flag: &str, n: Option<usize>, default: usize| match n {
        Some(0) => bail!("{flag} must be at least 1"),
        n => Ok(n.unwrap_or(default)),
    };
    if args.paired_bs || args.paired_ar {
        if systems < 2 {
            bail!(
                "paired tests compare several systems: give a baseline and at least one more --hyp"
            );
        }
        if args.confidence {
            bail!("--confidence is for one system; --paired-bs reports intervals for each");
        }
        return Ok(Test::Paired(if args.paired_bs {
            PairedTest::Bootstrap(positive("--paired-bs-n", args.paired_bs_n, 1000)?)
        } else {
            PairedTest::Randomization(positive("--paired-ar-n", args.paired_ar_n, 10000)?)
        }));
    }
    if args.confidence {
        if systems > 1 {
            bail!(
                "--confidence is for one system; compare several with --paired-bs or --paired-ar"
            );
        }
        return Ok(Test::Confidence(positive(
            "--confidence-n",
            args.confidence_n,
            1000,
        )?));
    }
    Ok(Test::None)
}

/// The seed: `--seed`, else `$SACREBLEU_SEED`, else 12345; `none` draws one.
fn seed_of(flag: Option<&str>) -> Result<Seed> {
    let (text, source) = match flag {
        Some(text) => (text.to_string(), "--seed"),
        None => match std::env::var("SACREBLEU_SEED") {
            Ok(text) => (text, "SACREBLEU_SEED"),
            Err(_) => (DEFAULT_SEED.to_string(), "the default seed"),
        },
    };
    if text.eq_ignore_ascii_case("none") {
        use std::hash::{BuildHasher, Hasher};
        let value = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        return Ok(Seed {
            value,
            label: "none".to_string(),
        });
    }
    let value = text
        .trim()
        .parse::<u64>()
        .with_context(|| format!("{source}: {text:?} is not a non-negative integer or `none`"))?;
    Ok(Seed {
        value,
        label: value.to_string(),
    })
}

/// Runs `rnnsearch evaluate`.
pub fn run(args: EvaluateArgs) -> Result<()> {
    let stdin_uses = args
        .hyp
        .iter()
        .chain(&args.src)
        .chain(&args.refs)
        .filter(|p| p.as_os_str() == "-")
        .count();
    if stdin_uses > 1 {
        bail!("only one input can be read from stdin (`-`)");
    }
    let opts = ScoreOptions::from_args(&args)?;
    if args.model.is_empty() {
        if let Some(flag) = args.decode.any_given() {
            bail!("{flag} applies to --model: scoring --hyp files decodes nothing");
        }
    }
    let systems = if args.hyp.is_empty() {
        vec![System {
            name: "model output".to_string(),
            lines: hypotheses_from_model(&args)?,
        }]
    } else {
        read_systems(&args.hyp)?
    };
    let refs = read_references(&args.refs)?;
    let labels: Vec<String> = args.refs.iter().map(|p| label(p)).collect();
    let labelled: Vec<(&str, &Vec<String>)> =
        labels.iter().map(String::as_str).zip(&refs).collect();
    for system in &systems {
        check_line_counts((&system.name, &system.lines), &labelled)?;
        if system.lines.is_empty() {
            bail!("{} has no lines: nothing to score", system.name);
        }
    }
    let mut out = BufWriter::new(io::stdout().lock());
    score_and_print(&systems, &refs, &opts, &mut out)?;
    out.flush().context("writing scores to stdout")?;
    Ok(())
}

/// Reads every hypothesis file; a file given twice is an error.
fn read_systems(paths: &[PathBuf]) -> Result<Vec<System>> {
    let mut systems: Vec<System> = Vec::new();
    for path in paths {
        let name = label(path);
        if systems.iter().any(|s| s.name == name) {
            bail!("--hyp {name} is given twice");
        }
        systems.push(System {
            lines: read_lines(path)?,
            name,
        });
    }
    Ok(systems)
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

/// `evaluate --model RUN_DIR --src FILE`: translates the source file (writing `--output` when
/// given) and returns the detokenised hypotheses for scoring.
fn hypotheses_from_model(args: &EvaluateArgs) -> Result<Vec<String>> {
    let (false, Some(src)) = (args.model.is_empty(), &args.src) else {
        bail!("evaluate needs --hyp FILE, or --model RUN_DIR with --src FILE");
    };
    let model_args = crate::translate::ModelArgs {
        model: args.model.clone(),
        decode: args.decode.clone(),
    };
    let lines = rnnsearch_data::read_lines(src)?;
    let (translations, loaded) =
        crate::translate::translate_lines(&model_args, &lines, 1, false, src.as_os_str() != "-")?;
    let hyps: Vec<String> = translations
        .iter()
        .map(|t| loaded.run.tgt_vocab.decode(&t.hypotheses[0].tokens))
        .collect();
    if let Some(path) = &args.output {
        let mut out = crate::output::Output::create(Some(path))?;
        for h in &hyps {
            out.line(h)?;
        }
        out.finish()?;
    }
    Ok(hyps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::Value;

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
        render_systems(argv, &[hyps], refs)
    }

    fn render_systems(argv: &[&str], systems: &[&[&str]], refs: &[&[&str]]) -> String {
        let opts = ScoreOptions::from_args(&parse(argv).unwrap()).unwrap();
        let refs: Vec<Vec<String>> = refs.iter().map(|r| lines(r)).collect();
        let systems: Vec<System> = systems
            .iter()
            .enumerate()
            .map(|(k, s)| System {
                name: format!("sys{k}.txt"),
                lines: lines(s),
            })
            .collect();
        let mut out = Vec::new();
        score_and_print(&systems, &refs, &opts, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn options_error(argv: &[&str]) -> String {
        let args = parse(argv).unwrap();
        format!("{:#}", ScoreOptions::from_args(&args).unwrap_err())
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
        let opts = ScoreOptions::from_args(&args).unwrap();
        assert_eq!(opts.bleu.tokenize, TokenizerKind::Tok13a);
        assert_eq!(opts.bleu.smooth_method, SmoothMethod::Exp);
        assert_eq!(
            (args.decode.beam, opts.chrf.word_order, opts.width),
            (None, 0, 2)
        );
        assert_eq!(opts.format, FormatArg::Text);
        assert_eq!(opts.test, Test::None);
        assert_eq!(args.decode.checkpoint, None);
    }

    #[test]
    fn parses_lists_and_sacrebleu_names() {
        let argv = "--hyp - --ref a --ref b --tokenize 13a --smooth add-k --metrics chrf,bleu,chrf";
        let args = parse(&argv.split(' ').collect::<Vec<_>>()).unwrap();
        assert_eq!(args.refs.len(), 2);
        assert_eq!(args.smooth, Some(SmoothArg::AddK));
        assert_eq!(
            ScoreOptions::from_args(&args).unwrap().metrics,
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
        assert!(parse(&["--hyp", "h", "--ref", "r", "--tokenize", "zh"]).is_ok());
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
        assert_eq!(objects.len(), 3, "one object per segment");
        assert_eq!(objects[2]["segment"], 3);
        assert_eq!(objects[2]["chrF2"]["name"], "chrF2");
        let bleu = objects[0]["BLEU"]["score"].as_f64().unwrap();
        assert!((bleu - 100.0).abs() < 1e-9, "{bleu}");
    }

    #[test]
    fn options_that_do_not_apply_are_errors() {
        fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
            ["--hyp", "h", "--ref", "r"]
                .iter()
                .chain(extra)
                .copied()
                .collect()
        }
        for (extra, needle) in [
            (
                &["--metrics", "chrf", "--tokenize", "intl"][..],
                "--tokenize applies to BLEU",
            ),
            (
                &["--metrics", "bleu", "--ter-normalized"][..],
                "--ter-normalized applies to TER",
            ),
            (
                &["--metrics", "bleu", "--chrf-word-order", "2"][..],
                "--chrf-word-order",
            ),
            (
                &["--metrics", "ter", "--lowercase"][..],
                "--ter-case-sensitive",
            ),
            (&["--smooth", "exp", "--smooth-value", "2"][..], "not exp"),
            (
                &["--confidence-n", "10"][..],
                "--confidence-n needs --confidence",
            ),
            (&["--paired-bs"][..], "give a baseline"),
            (
                &["--confidence", "--sentence-level"][..],
                "--sentence-level",
            ),
            (&["--seed", "3"][..], "--seed applies"),
            (
                &["--confidence", "--seed", "x"][..],
                "not a non-negative integer",
            ),
            (&["--confidence", "--confidence-n", "0"][..], "at least 1"),
        ] {
            let err = options_error(&with(extra));
            assert!(err.contains(needle), "{extra:?}: {err}");
        }
        let several = ["--hyp", "a", "b", "--ref", "r", "--confidence"];
        assert!(options_error(&several).contains("--paired-bs"));
    }

    #[test]
    fn ter_and_confidence_lines() {
        let text = render(
            &[
                "--hyp",
                "h",
                "--ref",
                "a",
                "--metrics",
                "bleu,ter",
                "--confidence",
            ],
            &HYPS,
            &[&REF1],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains("BLEU|nrefs:1|bs:1000|seed:12345|case:mixed|"),
            "{text}"
        );
        assert!(lines[0].contains(" (μ = "), "{text}");
        assert!(
            lines[1].trim_start().starts_with(
                "TER|nrefs:1|bs:1000|seed:12345|case:lc|tok:tercom|norm:no|punct:yes|asian:no|"
            ),
            "{text}"
        );
    }

    #[test]
    fn paired_test_prints_a_table_and_json() {
        let worse = ["The dog.", "It was.", "A man."];
        let argv = [
            "--hyp",
            "a",
            "b",
            "--ref",
            "r",
            "--paired-ar",
            "--paired-ar-n",
            "200",
        ];
        let text = render_systems(&argv, &[&HYPS, &worse], &[&REF1]);
        assert!(text.starts_with("╒"), "{text}");
        assert!(text.contains("Baseline: sys0.txt"), "{text}");
        assert!(text.contains("(p = "), "{text}");
        assert!(text.contains("Paired approximate randomization test with 200 trials"));
        assert!(text.contains("nrefs:1|ar:200|seed:12345|case:mixed|eff:no|tok:13a"));
        let mut json_args = argv.to_vec();
        json_args.extend(["--format", "json"]);
        let json = render_systems(&json_args, &[&HYPS, &worse], &[&REF1]);
        let objects: Vec<Value> = json
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0]["system"], "Baseline: sys0.txt");
        assert!(objects[0]["BLEU"]["p_value"].is_null());
        let p = objects[1]["chrF2"]["p_value"].as_f64().unwrap();
        assert!(p > 0.0 && p <= 1.0);
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

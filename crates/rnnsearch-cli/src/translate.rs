//! `rnnsearch translate`: batch translation of text files.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use rnnsearch_data::group_words;
use rnnsearch_model::{Hypothesis, SearchConfig};
use rnnsearch_train::{rundir, use_fused};
use rnnsearch_train::{Translation, Translator};

use crate::backend::{BackendArgs, EngineArg};
use crate::output::Output;

/// Format of the --alignments file.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AlignmentFormat {
    /// Hard word alignments `i-j` (source word - target word), one sentence per line.
    Pharaoh,
    /// The soft attention matrix over subword tokens, one JSON object per line.
    Json,
}

/// Model and search flags shared by `translate` and `evaluate --model`.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Run directory of a trained model
    #[arg(long, value_name = "RUN_DIR")]
    pub model: PathBuf,
    /// Checkpoint to load: best, last, a name given to `rnnsearch average`, or step-NNNNNNN;
    /// several, comma-separated, translate as an ensemble (the mean of their distributions)
    #[arg(long, value_name = "NAME[,NAME...]", default_value = "best")]
    pub checkpoint: String,
    /// Beam size, 1 for greedy [default: 5; for `attention`: 1]
    #[arg(long, value_name = "K")]
    pub beam: Option<usize>,
    /// Length normalisation ((5 + |y|) / 6)^A of beam scores
    #[arg(long, value_name = "A", default_value_t = 1.0)]
    pub alpha: f64,
    /// Maximum output length: R × source length (+ 5)
    #[arg(long, value_name = "R", default_value_t = 2.0)]
    pub max_len_ratio: f64,
    /// Source tokens per batch
    #[arg(long, value_name = "N", default_value_t = 4000)]
    pub batch_tokens: usize,
    /// What runs the search's forward pass: `fused` (the hand-written CPU pass) where it covers
    /// the model and the backend is a CPU one, else the burn model
    #[arg(long, value_enum, default_value = "auto")]
    pub engine: EngineArg,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Arguments of `rnnsearch translate`.
#[derive(clap::Args, Debug)]
pub struct TranslateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Input text, one sentence per line (`-`: standard input)
    #[arg(long, value_name = "FILE", default_value = "-")]
    input: PathBuf,
    /// Output (`-`: standard output)
    #[arg(long, value_name = "FILE", default_value = "-")]
    output: PathBuf,
    /// Write N best hypotheses per sentence as `i ||| hypothesis ||| score`
    #[arg(long, value_name = "N")]
    nbest: Option<usize>,
    /// Write alignments to FILE
    #[arg(long, value_name = "FILE")]
    alignments: Option<PathBuf>,
    /// Format of --alignments
    #[arg(long, value_enum, default_value = "pharaoh")]
    alignments_format: AlignmentFormat,
}

/// Translations of `lines` with the model of `args`, in input order, plus the translator's
/// vocabularies for detokenisation.
pub fn translate_lines(
    args: &ModelArgs,
    lines: &[String],
    nbest: usize,
    alignments: bool,
    input_is_file: bool,
) -> Result<(Vec<Translation>, rundir::LoadedRun)> {
    let beam = args.beam.unwrap_or(5);
    if beam == 0 {
        bail!("--beam must be at least 1");
    }
    if nbest > beam {
        bail!("--nbest {nbest} needs --beam of at least {nbest}");
    }
    let names: Vec<&str> = args.checkpoint.split(',').map(str::trim).collect();
    if names.iter().any(|n| n.is_empty()) {
        bail!(
            "--checkpoint `{}`: a checkpoint name is empty (list names as best,step-0001000)",
            args.checkpoint
        );
    }
    let device = args.backend.device()?;
    let run = rundir::load(&args.model, names[0], &device)?;
    let others = names[1..]
        .iter()
        .map(|name| Ok(run.load_checkpoint(&args.model, name, &device)?.0))
        .collect::<Result<Vec<_>>>()?;
    let search = SearchConfig {
        beam,
        alpha: args.alpha,
        max_len_ratio: args.max_len_ratio,
        nbest: nbest.max(1),
        alignments,
    };
    let fused = use_fused(args.backend.engine(args.engine), &run.config.model)?;
    let models = std::iter::once(&run.model).chain(&others).collect();
    let translator = Translator::ensemble(models, &run.src_vocab, &run.tgt_vocab, device, fused);
    let bar = (input_is_file && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(lines.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{pos}/{len} sentences {per_sec} ETA {eta}")
                .expect("template"),
        );
        bar
    });
    let started = std::time::Instant::now();
    let out = translator.translate(lines, &search, args.batch_tokens, |done| {
        if let Some(bar) = &bar {
            bar.set_position(done as u64);
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "translated {} sentences in {secs:.1} s ({:.1} sentences/s)",
            lines.len(),
            lines.len() as f64 / secs.max(1e-9)
        );
    }
    drop(translator);
    let max_len = run.config.data.max_len;
    let too_long = out.iter().filter(|t| t.source_ids.len() > max_len).count();
    if too_long > 0 {
        eprintln!("warning: {too_long} input line(s) are longer than the {max_len} subwords seen in training; translated anyway");
    }
    Ok((out, run))
}

/// `rnnsearch translate`.
pub fn run(args: TranslateArgs) -> Result<ExitCode> {
    let input_is_file = args.input.as_os_str() != "-";
    let lines = rnnsearch_data::read_lines(&args.input)?;
    let nbest = args.nbest.unwrap_or(1);
    if args.nbest == Some(0) {
        bail!("--nbest must be at least 1");
    }
    let (translations, run) = translate_lines(
        &args.model,
        &lines,
        nbest,
        args.alignments.is_some(),
        input_is_file,
    )?;
    // Open outputs only after translating: an error above leaves existing files untouched.
    let mut output = Output::create(Some(&args.output))?;
    for (i, t) in translations.iter().enumerate() {
        if args.nbest.is_some() {
            for h in &t.hypotheses {
                output.line(&format!(
                    "{i} ||| {} ||| {:.6}",
                    run.tgt_vocab.decode(&h.tokens),
                    h.score
                ))?;
            }
        } else {
            output.line(&run.tgt_vocab.decode(&t.hypotheses[0].tokens))?;
        }
    }
    if let Some(path) = &args.alignments {
        let mut file = Output::create(Some(path))
            .with_context(|| format!("{}: cannot create", path.display()))?;
        for t in &translations {
            let best = &t.hypotheses[0];
            let line = match args.alignments_format {
                AlignmentFormat::Pharaoh => pharaoh(
                    &run.src_vocab.pieces(&t.source_ids),
                    &run.tgt_vocab.pieces(&best.tokens),
                    best,
                ),
                AlignmentFormat::Json => serde_json::json!({
                    "source": run.src_vocab.pieces(&t.source_ids),
                    "target": run.tgt_vocab.pieces(&best.tokens),
                    "alignment": best.alignment,
                })
                .to_string(),
            };
            file.line(&line)?;
        }
        file.finish()?;
    }
    output.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// `evaluate --model RUN_DIR --src FILE`: translates the source file (writing `--output` when
/// given) and returns the detokenised hypotheses for scoring.
pub fn hypotheses_for_evaluate(args: &crate::evaluate::EvaluateArgs) -> Result<Vec<String>> {
    let (Some(model), Some(src)) = (&args.model, &args.src) else {
        bail!("evaluate needs --hyp FILE, or --model RUN_DIR with --src FILE");
    };
    let model_args = ModelArgs {
        model: model.clone(),
        checkpoint: args.checkpoint.clone(),
        beam: Some(args.beam),
        alpha: 1.0,
        max_len_ratio: 2.0,
        batch_tokens: 4000,
        engine: EngineArg::Auto,
        backend: BackendArgs {
            backend: args.backend,
            threads: args.threads,
            device: None,
        },
    };
    let lines = rnnsearch_data::read_lines(src)?;
    let (translations, run) =
        translate_lines(&model_args, &lines, 1, false, src.as_os_str() != "-")?;
    let hyps: Vec<String> = translations
        .iter()
        .map(|t| run.tgt_vocab.decode(&t.hypotheses[0].tokens))
        .collect();
    if let Some(path) = &args.output {
        let mut out = Output::create(Some(path))?;
        for h in &hyps {
            out.line(h)?;
        }
        out.finish()?;
    }
    Ok(hyps)
}

/// Hard word alignments: for every target word, the source word with the largest summed α
/// (over the target word's pieces and the source word's pieces), as `src-tgt` pairs.
pub fn pharaoh(src_pieces: &[String], tgt_pieces: &[String], hyp: &Hypothesis) -> String {
    let (_, src_words) = group_words(src_pieces);
    let (_, tgt_words) = group_words(tgt_pieces);
    let n_src = src_words.last().map_or(0, |w| w + 1);
    let n_tgt = tgt_words.last().map_or(0, |w| w + 1);
    let mut mass = vec![vec![0f32; n_src]; n_tgt];
    for (i, row) in hyp.alignment.iter().take(tgt_pieces.len()).enumerate() {
        for (j, &a) in row.iter().take(src_pieces.len()).enumerate() {
            mass[tgt_words[i]][src_words[j]] += a;
        }
    }
    mass.iter()
        .enumerate()
        .filter_map(|(t, row)| {
            let best = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
            Some(format!("{}-{t}", best.0))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pharaoh_merges_subwords_into_words() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let src = s(&["\u{2581}ein", "\u{2581}Hund", "e"]);
        let tgt = s(&["\u{2581}a", "\u{2581}dog"]);
        let hyp = Hypothesis {
            tokens: vec![],
            score: 0.0,
            alignment: vec![vec![0.9, 0.05, 0.05], vec![0.1, 0.4, 0.5]],
        };
        assert_eq!(pharaoh(&src, &tgt, &hyp), "0-0 1-1");
    }
}

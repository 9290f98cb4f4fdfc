//! `rnnsearch attention` (alignment heat-maps) and `rnnsearch plot` (training curves).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::translate::{translate_lines, ModelArgs};

/// Arguments of `rnnsearch attention`.
#[derive(clap::Args, Debug)]
pub struct AttentionArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// One sentence to translate and draw
    #[arg(
        long,
        value_name = "TEXT",
        conflicts_with = "input",
        required_unless_present = "input"
    )]
    text: Option<String>,
    /// Figure for --text (.png or .svg)
    #[arg(long, value_name = "FILE", requires = "text")]
    out: Option<PathBuf>,
    /// Draw one figure per line of FILE
    #[arg(long, value_name = "FILE", requires = "out_dir")]
    input: Option<PathBuf>,
    /// Directory for the figures of --input (named 1.png, 2.png, ...)
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Image format for --out-dir
    #[arg(long, value_name = "EXT", default_value = "png")]
    format: String,
    /// Show words instead of subword pieces (α summed over a source word's pieces,
    /// averaged over a target word's pieces)
    #[arg(long)]
    merge_subwords: bool,
}

/// Arguments of `rnnsearch plot`.
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// Run directory (reads its metrics.jsonl)
    #[arg(long, value_name = "RUN_DIR")]
    run: PathBuf,
    /// Figure to write [default: RUN_DIR/curves.png]
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// `rnnsearch attention`.
pub fn run(args: AttentionArgs) -> Result<ExitCode> {
    let (lines, targets): (Vec<String>, Vec<PathBuf>) = match (&args.text, &args.input) {
        (Some(text), _) => {
            let out = args.out.clone().context("--text needs --out FILE")?;
            (vec![text.clone()], vec![out])
        }
        (None, Some(input)) => {
            let dir = args.out_dir.clone().expect("clap requires --out-dir");
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("{}: cannot create", dir.display()))?;
            let lines = rnnsearch_data::read_lines(input)?;
            let outs = (1..=lines.len())
                .map(|i| dir.join(format!("{i}.{}", args.format)))
                .collect();
            (lines, outs)
        }
        (None, None) => bail!("give --text TEXT --out FILE, or --input FILE --out-dir DIR"),
    };
    let (translations, loaded) =
        translate_lines(&args.model, &lines, 1, true, args.input.is_some())?;
    let run = &loaded.run;
    for ((t, path), line) in translations.iter().zip(&targets).zip(&lines) {
        if line.trim().is_empty() {
            eprintln!("{}: skipped (empty line)", path.display());
            continue;
        }
        let best = &t.hypotheses[0];
        let mut source = run.src_vocab.pieces(&t.source_ids);
        source.push("</s>".into());
        let mut target = run.tgt_vocab.pieces(&best.tokens);
        if best.alignment.len() > target.len() {
            target.push("</s>".into());
        }
        let (source, target, weights) = if args.merge_subwords {
            rnnsearch_plot::merge_subwords(&source, &target, &best.alignment)
        } else {
            (source, target, best.alignment.clone())
        };
        rnnsearch_plot::draw_alignment(path, &source, &target, &weights)?;
        eprintln!("{}: {}", path.display(), run.tgt_vocab.decode(&best.tokens));
    }
    Ok(ExitCode::SUCCESS)
}

/// `rnnsearch plot`.
pub fn plot(args: PlotArgs) -> Result<ExitCode> {
    let metrics = args.run.join("metrics.jsonl");
    if !metrics.is_file() {
        bail!(
            "{}: no metrics.jsonl: not a run directory, or training has not logged yet",
            args.run.display()
        );
    }
    let out = args.out.unwrap_or_else(|| args.run.join("curves.png"));
    rnnsearch_plot::draw_curves(&metrics, Path::new(&out))?;
    eprintln!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}

//! `rnnsearch`: train, translate with and evaluate RNNsearch models
//! (Bahdanau, Cho & Bengio 2014).

mod backend;
mod evaluate;
mod output;
mod train;
mod translate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Neural machine translation with the RNN encoder-decoder and Bahdanau attention.
#[derive(Parser, Debug)]
#[command(name = "rnnsearch", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read corpora, train subword vocabularies, report batches
    ///
    /// Reads the corpora named in the config (or generates the dates corpus), trains the
    /// BPE vocabularies into the run directory and prints a summary: pairs read, pairs
    /// filtered by reason, vocabulary sizes, tokens, lengths, batches and padding.
    Prepare(train::PrepareArgs),
    /// Train a model (with no --config: the dates demo into runs/dates)
    Train(train::TrainArgs),
    /// Translate text files with a trained model, greedy or beam search
    Translate(translate::TranslateArgs),
    /// Score translations with BLEU and chrF (sacreBLEU-compatible)
    ///
    /// With --hyp, scores a hypothesis file against one or more references. With --model
    /// and --src, translates first, then scores.
    Evaluate(evaluate::EvaluateArgs),
    /// Draw the alignment weights of translations as heat-maps
    Attention(NotBuiltArgs),
}

/// Arguments of a subcommand that is not built yet.
#[derive(clap::Args, Debug)]
struct NotBuiltArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Prepare(args) => train::prepare(args),
        Command::Train(args) => train::train(args),
        Command::Translate(args) => translate::run(args),
        Command::Evaluate(args) => evaluate::run(args).map(|()| ExitCode::SUCCESS),
        Command::Attention(_) => {
            eprintln!("error: `rnnsearch attention` is not built yet");
            Ok(ExitCode::from(2))
        }
    }
}

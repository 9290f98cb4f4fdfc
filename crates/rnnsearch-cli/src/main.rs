//! `rnnsearch`: train, translate with and evaluate RNNsearch models
//! (Bahdanau, Cho & Bengio 2014).

mod attention;
mod average;
mod backend;
mod bench;
mod evaluate;
mod output;
mod scoring;
mod serve;
mod train;
mod translate;

use std::process::ExitCode;

/// Training allocates and frees tensors of many megabytes at every step. glibc's malloc hands
/// those back to the kernel and faults fresh zeroed pages in the next time; mimalloc keeps and
/// reuses them (figures in docs/benchmarks.md, "Memory allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` (its place in mimalloc's `mi_option_e`, v2 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays in the process before mimalloc returns it to the kernel, in ms.
/// mimalloc's default of 10 ms makes every training step fault its buffers back in as fresh
/// zeroed pages; never returning it (-1) lets RSS ratchet up over a long run. Ten seconds is far
/// longer than the gap between two steps, so their buffers are reused, and what a validation or
/// checkpoint leaves behind goes back (docs/benchmarks.md, "Memory allocator").
const PURGE_DELAY_MS: std::os::raw::c_long = 10_000;

/// Sets [`PURGE_DELAY_MS`]; the environment variable `MIMALLOC_PURGE_DELAY`, when set, still
/// decides.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an option mimalloc reads at each purge; no memory is touched.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

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
    /// Score translations with BLEU, chrF and TER (sacreBLEU-compatible)
    ///
    /// With --hyp, scores hypothesis files against one or more references. With --model
    /// and --src, translates first, then scores. --confidence adds bootstrap confidence
    /// intervals; --paired-bs or --paired-ar test every --hyp against the first.
    Evaluate(evaluate::EvaluateArgs),
    /// Serve a trained model over HTTP/JSON (POST /translate, GET /health, GET / for a page)
    ///
    /// Loopback by default. Concurrent requests share batches; a full queue answers 503 with
    /// Retry-After; SIGTERM or Ctrl-C finishes the requests in flight and exits 0.
    Serve(serve::ServeArgs),
    /// Draw the alignment weights of translations as heat-maps
    ///
    /// Translates --text (or every line of --input) and draws α: source tokens along x,
    /// generated target tokens along y, white = weight 1, black = 0 (Bahdanau et al.
    /// 2014, figure 3). Decodes as the run chose (its model, test_beam and alpha) unless
    /// flags say otherwise.
    Attention(attention::AttentionArgs),
    /// Draw training loss, validation loss and validation BLEU of a run
    Plot(attention::PlotArgs),
    /// Measure training tokens/s or translation sentences/s on synthetic batches
    ///
    /// Mirrors the --bench mode of the PyTorch yardstick (torch_ref.py): fixed-shape
    /// batches of --batch-tokens / --tgt-len sentences, full training steps (forward,
    /// backward, clipping, Adam), or batched greedy / beam-5 search with --decode.
    Bench(bench::BenchArgs),
    /// Average the weights of several checkpoints of a run into a new checkpoint
    ///
    /// The element-wise mean of the last --last step checkpoints (kept when the run was
    /// trained with train.keep_checkpoints = N) or of the checkpoints named by --checkpoints,
    /// saved as checkpoints/<--output>; translate with it by `--checkpoint <--output>`.
    Average(average::AverageArgs),
}

fn main() -> ExitCode {
    keep_freed_memory();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    rnnsearch_fused::linalg::check_environment().map_err(anyhow::Error::msg)?;
    match cli.command {
        Command::Prepare(args) => train::prepare(args),
        Command::Train(args) => train::train(args),
        Command::Translate(args) => translate::run(args),
        Command::Evaluate(args) => evaluate::run(args).map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Attention(args) => attention::run(args),
        Command::Plot(args) => attention::plot(args),
        Command::Average(args) => average::run(args),
    }
}

//! `rnnsearch bench`: training and decoding speed on fixed-shape synthetic batches, mirroring
//! the `--bench` mode of the PyTorch yardstick (`torch_ref.py`) so the two run side by side.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Result};
use burn::module::Module;
use burn::tensor::Device;
use clap::ValueEnum;
use rnnsearch_data::{Batch, Vocab};
use rnnsearch_model::{CellKind, ModelConfig, Scorer, SearchConfig};
use rnnsearch_train::{Engine, Learner, Searcher, TrainConfig};

use crate::backend::{BackendArgs, EngineArg};

/// What to measure besides training.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Decode {
    /// Batched greedy search.
    Greedy,
    /// Batched beam search, K = 5.
    Beam5,
}

/// `--cell`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BenchCell {
    Gru,
    Lstm,
}

/// `--scorer`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BenchScorer {
    Additive,
    Dot,
    General,
    Cosine,
}

/// Arguments of `rnnsearch bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Vocabulary size (source and target)
    #[arg(long, value_name = "N", default_value_t = 8000)]
    vocab: usize,
    /// Embedding size (also the maxout units, as in torch_ref)
    #[arg(long, value_name = "N", default_value_t = 256)]
    emb: usize,
    /// Encoder units per direction and decoder state size
    #[arg(long, value_name = "N", default_value_t = 256)]
    hidden: usize,
    /// Decoder state size [default: --hidden] (the dot scorer needs twice --hidden)
    #[arg(long, value_name = "N")]
    decoder_hidden: Option<usize>,
    /// Recurrent unit of the encoder and the decoder (as torch_ref's --cell)
    #[arg(long, value_enum, default_value_t = BenchCell::Gru)]
    cell: BenchCell,
    /// Alignment model (the config key model.scorer)
    #[arg(long, value_enum, default_value_t = BenchScorer::Additive)]
    scorer: BenchScorer,
    /// Attention size
    #[arg(long, value_name = "N", default_value_t = 256)]
    att: usize,
    /// Maxout units after pooling [default: --emb]
    #[arg(long, value_name = "N")]
    maxout: Option<usize>,
    /// Target tokens per batch (batch = N / --tgt-len sentences)
    #[arg(long, value_name = "N", default_value_t = 2000)]
    batch_tokens: usize,
    /// Source length of every sentence
    #[arg(long, value_name = "N", default_value_t = 16)]
    src_len: usize,
    /// Target length of every sentence
    #[arg(long, value_name = "N", default_value_t = 16)]
    tgt_len: usize,
    /// Timed steps
    #[arg(long, value_name = "N", default_value_t = 50)]
    steps: usize,
    /// Untimed steps first
    #[arg(long, value_name = "N", default_value_t = 5)]
    warmup: usize,
    /// Measure translation sentences/s instead of training tokens/s
    #[arg(long, value_enum)]
    decode: Option<Decode>,
    /// What computes the gradients (as the config key train.engine), or with --decode the
    /// search's forward pass (as `translate --engine`)
    #[arg(long, value_enum, default_value_t = EngineArg::Auto)]
    engine: EngineArg,
}

/// `count` token ids in 4..vocab (no specials).
fn random_ids(count: usize, vocab: usize, seed: &mut u64) -> Vec<u32> {
    (0..count)
        .map(|_| {
            // xorshift: cheap, deterministic, good enough for token ids
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            4 + (*seed % (vocab as u64 - 4)) as u32
        })
        .collect()
}

/// `rnnsearch bench`.
pub fn run(args: BenchArgs) -> Result<ExitCode> {
    if args.vocab <= 4 {
        bail!(
            "--vocab must exceed 4 (the special tokens), got {}",
            args.vocab
        );
    }
    if args.src_len == 0 {
        bail!("--src-len must be at least 1");
    }
    if args.tgt_len == 0 {
        bail!("--tgt-len must be at least 1");
    }
    if args.batch_tokens < args.tgt_len {
        bail!(
            "--batch-tokens ({}) must hold at least one --tgt-len ({}) sentence",
            args.batch_tokens,
            args.tgt_len
        );
    }
    let device = args.backend.device()?;
    let config = ModelConfig {
        cell: match args.cell {
            BenchCell::Gru => CellKind::Gru,
            BenchCell::Lstm => CellKind::Lstm,
        },
        scorer: match args.scorer {
            BenchScorer::Additive => Scorer::Additive,
            BenchScorer::Dot => Scorer::Dot,
            BenchScorer::General => Scorer::General,
            BenchScorer::Cosine => Scorer::Cosine,
        },
        embedding: args.emb,
        hidden: args.hidden,
        decoder_hidden: args.decoder_hidden.unwrap_or(args.hidden),
        attention: args.att,
        output: args.maxout.unwrap_or(args.emb),
        dropout: 0.0,
        ..ModelConfig::default()
    };
    config.validate().map_err(anyhow::Error::msg)?;
    let batch = args.batch_tokens / args.tgt_len;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    match args.decode {
        None => bench_training(&args, &config, batch, &mut seed, device),
        Some(decode) => bench_decoding(&args, &config, batch, decode, &mut seed, device),
    }
}

fn bench_training(
    args: &BenchArgs,
    config: &ModelConfig,
    batch: usize,
    seed: &mut u64,
    device: Device,
) -> Result<ExitCode> {
    let device = device.autodiff();
    device.seed(1);
    let model = config.init(args.vocab, args.vocab, &device);
    let (dims, parameters) = (rnnsearch_train::fused::dims_of(&model), model.num_params());
    let train = TrainConfig {
        engine: args.backend.engine(args.engine),
        ..TrainConfig::default()
    };
    let engine = Engine::choose(train.engine);
    let mut learner = Learner::new(engine, model, &train);
    let data = Batch {
        indices: (0..batch).collect(),
        src: random_ids(batch * args.src_len, args.vocab, seed),
        src_lengths: vec![args.src_len; batch],
        tgt_in: random_ids(batch * args.tgt_len, args.vocab, seed),
        tgt_out: random_ids(batch * args.tgt_len, args.vocab, seed),
        tgt_lengths: vec![args.tgt_len; batch],
    };
    let tokens = batch * args.tgt_len;
    let mut step_number = 0;
    let mut step = || {
        step_number += 1;
        learner.step(&data, &train, 1e-3, step_number)
    };
    for _ in 0..args.warmup {
        step();
    }
    let started = Instant::now();
    for _ in 0..args.steps {
        step();
    }
    let secs = started.elapsed().as_secs_f64();
    let flops = dims.step_flops(batch, args.src_len, args.tgt_len);
    println!(
        "bench: {:.0} tgt tok/s  ({} steps, B={batch} src_len={} tgt_len={}, {:.1} ms/step, {} parameters, {} gradients, {:.0} GFLOP/s in products at {:.1} MFLOP per target token)",
        (args.steps * tokens) as f64 / secs,
        args.steps,
        args.src_len,
        args.tgt_len,
        1000.0 * secs / args.steps.max(1) as f64,
        parameters,
        match engine {
            Engine::Fused => "fused",
            Engine::Burn => "burn autodiff",
        },
        flops * args.steps as f64 / secs / 1e9,
        flops / tokens as f64 / 1e6,
    );
    Ok(ExitCode::SUCCESS)
}

fn bench_decoding(
    args: &BenchArgs,
    config: &ModelConfig,
    batch: usize,
    decode: Decode,
    seed: &mut u64,
    device: Device,
) -> Result<ExitCode> {
    device.seed(1);
    let model = config.init(args.vocab, args.vocab, &device);
    let engine = Engine::choose(args.backend.engine(args.engine));
    let searcher = Searcher::new(vec![&model], device, engine);
    let ids = random_ids(batch * args.src_len, args.vocab, seed);
    let lengths = vec![args.src_len; batch];
    let search_config = SearchConfig {
        beam: match decode {
            Decode::Greedy => 1,
            Decode::Beam5 => 5,
        },
        // at most tgt_len output tokens: ⌈r · src_len⌉ + 5 = tgt_len
        max_len_ratio: args.tgt_len.saturating_sub(5) as f64 / args.src_len as f64,
        ..SearchConfig::greedy(Vocab::BOS, Vocab::EOS)
    };
    let translate = || searcher.search(&ids, &lengths, &search_config);
    for _ in 0..args.warmup.min(2) {
        translate();
    }
    let started = Instant::now();
    let mut sentences = 0usize;
    let mut produced = 0usize;
    for _ in 0..args.steps {
        let out = translate();
        sentences += out.len();
        produced += out.iter().map(|h| h[0].tokens.len()).sum::<usize>();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "bench: {:.1} sentences/s {:?}  ({} batches of {batch}, src_len={}, mean output {:.1} tokens, {:.1} ms/batch, {} forward pass)",
        sentences as f64 / secs,
        decode,
        args.steps,
        args.src_len,
        produced as f64 / sentences.max(1) as f64,
        1000.0 * secs / args.steps.max(1) as f64,
        match engine {
            Engine::Fused => "fused",
            Engine::Burn => "burn",
        }
    );
    Ok(ExitCode::SUCCESS)
}

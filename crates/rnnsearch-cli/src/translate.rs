//! `rnnsearch translate`: batch translation of text files.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use rnnsearch_data::{group_words, Vocab};
use rnnsearch_model::{Hypothesis, SearchConfig};
use rnnsearch_train::{rundir, Engine};
use rnnsearch_train::{Rescorer, Translation, Translator};

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

/// Decoding flags shared by `translate`, `evaluate --model` and `attention`. Left out, they
/// are what training chose: the model `test.json` names and the config's `test_beam` and
/// `alpha`.
#[derive(clap::Args, Debug, Clone)]
pub struct DecodeArgs {
    /// Checkpoint to load: best, last, a name given to `rnnsearch average`, or step-NNNNNNN;
    /// several, comma-separated, translate as an ensemble (the mean of their distributions)
    /// [default: the model the run's test.json names, else best]
    #[arg(long, value_name = "NAME[,NAME...]")]
    pub checkpoint: Option<String>,
    /// Beam size, 1 for greedy [default: the run's train.test_beam]
    #[arg(long, value_name = "K")]
    pub beam: Option<usize>,
    /// Length normalisation ((5 + |y|) / 6)^A of beam scores [default: the run's train.alpha]
    #[arg(long, value_name = "A")]
    pub alpha: Option<f64>,
    /// Maximum output length: R × source length (+ 5)
    #[arg(long, value_name = "R", default_value_t = 2.0)]
    pub max_len_ratio: f64,
    /// Source tokens per batch
    #[arg(long, value_name = "N", default_value_t = 4000)]
    pub batch_tokens: usize,
    /// Rerank the whole beam with the models of these runs (their test.json's choice, else
    /// `best`), e.g. right-to-left runs (train.right_to_left = true) trained on the same
    /// prepared dataset; several, comma-separated, score as one ensemble
    #[arg(long, value_name = "RUN_DIR[,RUN_DIR...]", value_delimiter = ',')]
    pub rescore: Vec<PathBuf>,
    /// λ of the reranking: (1 − λ) · the search's score + λ · the rescorer's, both
    /// length-normalised log-probabilities
    #[arg(long, value_name = "λ", default_value_t = 0.5, requires = "rescore")]
    pub rescore_weight: f64,
    /// What runs the search's forward pass: `fused` (the hand-written CPU pass, every model)
    /// on a CPU backend, else the burn model
    #[arg(long, value_enum, default_value = "auto")]
    pub engine: EngineArg,
    #[command(flatten)]
    pub backend: BackendArgs,
}

impl DecodeArgs {
    /// Whether any decoding flag was given (they need a model).
    pub fn any_given(&self) -> Option<&'static str> {
        [
            ("--checkpoint", self.checkpoint.is_some()),
            ("--beam", self.beam.is_some()),
            ("--alpha", self.alpha.is_some()),
            ("--rescore", !self.rescore.is_empty()),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }
}

/// Run directories and how to decode with them.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Run directory of a trained model; several, comma-separated (or --model repeated),
    /// translate as one ensemble of every run's checkpoints (runs that share their
    /// vocabularies: trained with `--data` on one prepared dataset)
    #[arg(
        long,
        value_name = "RUN_DIR[,RUN_DIR...]",
        value_delimiter = ',',
        required = true
    )]
    pub model: Vec<PathBuf>,
    #[command(flatten)]
    pub decode: DecodeArgs,
}

/// The checkpoints and search settings a command uses, flags first, then the runs' choices.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoding {
    /// Every run with its checkpoint names (more than one checkpoint in all: an ensemble).
    pub members: Vec<(PathBuf, Vec<String>)>,
    /// Beam size.
    pub beam: usize,
    /// Length normalisation exponent.
    pub alpha: f64,
}

impl Decoding {
    /// Resolves `decode` against the runs in `models` (the first run's config gives the
    /// search settings the flags leave out), and says on stderr what it chose.
    pub fn resolve(models: &[PathBuf], decode: &DecodeArgs) -> Result<Self> {
        let Some(first) = models.first() else {
            bail!("--model needs a run directory");
        };
        if models.iter().any(|m| m.as_os_str().is_empty()) {
            bail!("--model: a run directory is empty (list runs as runs/a,runs/b)");
        }
        // Every run directory is checked before any is read further.
        let configs = models
            .iter()
            .map(|model| rundir::load_config(model))
            .collect::<Result<Vec<_>, _>>()?;
        let config = &configs[0];
        let members = models
            .iter()
            .map(|model| Ok((model.clone(), checkpoint_names(model, decode)?)))
            .collect::<Result<Vec<_>>>()?;
        let beam = decode.beam.unwrap_or(config.train.test_beam.max(1));
        if beam == 0 {
            bail!("--beam must be at least 1");
        }
        let alpha = decode.alpha.unwrap_or(config.train.alpha);
        let setting = |given: bool| if given { "flag" } else { "config.toml" };
        eprintln!(
            "{}: beam {beam} ({}), alpha {alpha} ({})",
            first.display(),
            setting(decode.beam.is_some()),
            setting(decode.alpha.is_some()),
        );
        Ok(Decoding {
            members,
            beam,
            alpha,
        })
    }
}

/// The checkpoints of `model` to decode with: `--checkpoint`, else those its `test.json`
/// names, else `best`; said on stderr.
fn checkpoint_names(model: &Path, decode: &DecodeArgs) -> Result<Vec<String>> {
    let (names, from) = match &decode.checkpoint {
        Some(names) => (names.clone(), "--checkpoint"),
        None => match rundir::tested_model(model)? {
            Some(names) => (names, "test.json"),
            None => ("best".to_string(), "default"),
        },
    };
    let checkpoints: Vec<String> = names.split(',').map(|n| n.trim().to_string()).collect();
    if checkpoints.iter().any(String::is_empty) {
        bail!(
            "--checkpoint `{names}`: a checkpoint name is empty (list names as best,step-0001000)"
        );
    }
    eprintln!("{}: model {names} ({from})", model.display());
    Ok(checkpoints)
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
    /// Write N best hypotheses per sentence as Moses and Marian do:
    /// `i ||| hypothesis ||| F0= score ||| score` (the length-normalised log-probability)
    #[arg(long, value_name = "N")]
    nbest: Option<usize>,
    /// Translate lines as they arrive and write each translation at once (the default when
    /// the input is standard input from a terminal or a pipe); lines that arrive together are
    /// translated in one batch
    #[arg(long, conflicts_with = "no_stream")]
    stream: bool,
    /// Read all of the input before translating, even from a terminal or a pipe
    #[arg(long)]
    no_stream: bool,
    /// Write alignments to FILE
    #[arg(long, value_name = "FILE")]
    alignments: Option<PathBuf>,
    /// Format of --alignments
    #[arg(long, value_enum, default_value = "pharaoh")]
    alignments_format: AlignmentFormat,
}

/// A loaded run ready to translate: its models (one, or an ensemble), the search settings and
/// the engine, built once and used for every batch.
pub struct Loaded {
    /// The first run's configuration and vocabularies, with its first model.
    pub run: rundir::LoadedRun,
    others: Vec<rnnsearch_model::Seq2Seq>,
    /// The rescoring runs' first run and all their models, if any.
    rescorers: Option<(rundir::LoadedRun, Vec<rnnsearch_model::Seq2Seq>)>,
    rescore_weight: f64,
    device: burn::tensor::Device,
    engine: Engine,
    /// The search settings.
    pub search: SearchConfig,
    /// Source tokens per batch.
    pub batch_tokens: usize,
}

impl Loaded {
    /// Loads the run of `args` with `nbest` hypotheses per sentence.
    pub fn new(args: &ModelArgs, nbest: usize, alignments: bool) -> Result<Self> {
        let decoding = Decoding::resolve(&args.model, &args.decode)?;
        if nbest > decoding.beam {
            bail!("--nbest {nbest} needs --beam of at least {nbest}");
        }
        let decode = &args.decode;
        let device = decode.backend.device()?;
        let (run, others) = rundir::load_ensemble(&decoding.members, &device)?;
        let rescorers = load_rescorers(decode, &decoding.members[0].0, &run, &device)?;
        let search = SearchConfig {
            beam: decoding.beam,
            alpha: decoding.alpha,
            max_len_ratio: decode.max_len_ratio,
            nbest: nbest.max(1),
            alignments,
            bos: Vocab::BOS,
            eos: Vocab::EOS,
        };
        let engine = Engine::choose(decode.backend.engine(decode.engine));
        Ok(Loaded {
            run,
            others,
            rescorers,
            rescore_weight: decode.rescore_weight,
            device,
            engine,
            search,
            batch_tokens: decode.batch_tokens,
        })
    }

    /// The translator over the loaded models.
    pub fn translator(&self) -> Translator<'_> {
        let models = std::iter::once(&self.run.model)
            .chain(&self.others)
            .collect();
        Translator::ensemble(
            models,
            &self.run.src_vocab,
            &self.run.tgt_vocab,
            self.device.clone(),
            self.engine,
        )
        .right_to_left(self.run.config.train.right_to_left)
        .rescored_by(self.rescorers.as_ref().map(|(first, others)| Rescorer {
            models: std::iter::once(&first.model).chain(others).collect(),
            right_to_left: first.config.train.right_to_left,
            weight: self.rescore_weight,
            alpha: self.search.alpha,
            device: self.device.clone(),
        }))
    }

    /// Warns about inputs longer than what training saw.
    fn warn_long(&self, out: &[Translation]) {
        let max_len = self.run.config.data.max_len;
        let too_long = out.iter().filter(|t| t.source_ids.len() > max_len).count();
        if too_long > 0 {
            eprintln!("warning: {too_long} input line(s) are longer than the {max_len} subwords seen in training; translated anyway");
        }
    }
}

/// The runs of `--rescore`, checked against the translating run `first` (in `first_dir`): each
/// with the model its test.json names, else `best`.
fn load_rescorers(
    decode: &DecodeArgs,
    first_dir: &Path,
    first: &rundir::LoadedRun,
    device: &burn::tensor::Device,
) -> Result<Option<(rundir::LoadedRun, Vec<rnnsearch_model::Seq2Seq>)>> {
    if decode.rescore.is_empty() {
        return Ok(None);
    }
    if !(0.0..=1.0).contains(&decode.rescore_weight) {
        bail!(
            "--rescore-weight must be in [0, 1], got {}",
            decode.rescore_weight
        );
    }
    let members = decode
        .rescore
        .iter()
        .map(|dir| {
            let names = rundir::tested_model(dir)?.unwrap_or_else(|| "best".to_string());
            eprintln!("{}: rescoring with {names}", dir.display());
            Ok((dir.clone(), names.split(',').map(str::to_string).collect()))
        })
        .collect::<Result<Vec<_>>>()?;
    let (rescorer, others) = rundir::load_ensemble(&members, device)?;
    rundir::same_task(
        &members[0].0,
        &rescorer,
        first_dir,
        first,
        "rescore each other",
    )?;
    Ok(Some((rescorer, others)))
}

/// Translations of `lines` with the model of `args`, in input order, plus the loaded run for
/// detokenisation.
pub fn translate_lines(
    args: &ModelArgs,
    lines: &[String],
    nbest: usize,
    alignments: bool,
    input_is_file: bool,
) -> Result<(Vec<Translation>, Loaded)> {
    let loaded = Loaded::new(args, nbest, alignments)?;
    let translator = loaded.translator();
    let bar = (input_is_file && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(lines.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{pos}/{len} sentences {per_sec} ETA {eta}")
                .expect("template"),
        );
        bar
    });
    let started = std::time::Instant::now();
    let out = translator.translate(lines, &loaded.search, loaded.batch_tokens, |done| {
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
    loaded.warn_long(&out);
    Ok((out, loaded))
}

/// `rnnsearch translate`.
pub fn run(args: TranslateArgs) -> Result<ExitCode> {
    if args.nbest == Some(0) {
        bail!("--nbest must be at least 1");
    }
    let nbest = args.nbest.unwrap_or(1);
    if streams(&args) {
        return stream(&args, nbest);
    }
    let input_is_file = args.input.as_os_str() != "-";
    let lines = rnnsearch_data::read_lines(&args.input)?;
    let (translations, loaded) = translate_lines(
        &args.model,
        &lines,
        nbest,
        args.alignments.is_some(),
        input_is_file,
    )?;
    // Open outputs only after translating: an error above leaves existing files untouched.
    let mut sinks = Sinks::create(&args)?;
    for (i, t) in translations.iter().enumerate() {
        sinks.write(&args, &loaded.run, i, t)?;
    }
    sinks.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// Whether `translate` reads its input line by line as it comes: asked with `--stream`, or by
/// default for standard input from a terminal or a pipe (a program waiting for each answer).
fn streams(args: &TranslateArgs) -> bool {
    if args.stream || args.no_stream {
        return args.stream;
    }
    if args.input.as_os_str() != "-" {
        return false;
    }
    let stdin = std::io::stdin();
    stdin.is_terminal() || is_pipe(&stdin)
}

#[cfg(unix)]
fn is_pipe(stdin: &std::io::Stdin) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    stdin
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata().ok())
        .is_some_and(|m| m.file_type().is_fifo() || m.file_type().is_socket())
}

#[cfg(not(unix))]
fn is_pipe(_: &std::io::Stdin) -> bool {
    false
}

/// Streaming translation: a reader thread hands lines over as they arrive; the translator
/// takes whatever has arrived (up to the token budget) as one batch, writes and flushes its
/// translations in input order, and waits for more.
fn stream(args: &TranslateArgs, nbest: usize) -> Result<ExitCode> {
    let loaded = Loaded::new(&args.model, nbest, args.alignments.is_some())?;
    let translator = loaded.translator();
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    let mut reader = rnnsearch_data::LineReader::open(&args.input)?;
    std::thread::spawn(move || loop {
        let next = reader.next_line();
        let end = !matches!(next, Ok(Some(_)));
        if tx.send(next).is_err() || end {
            break;
        }
    });
    let mut sinks = Sinks::create(args)?;
    let mut done = 0;
    while let Ok(first) = rx.recv() {
        let Some(first) = first? else { break };
        let mut words = first.split_whitespace().count() + 1;
        let mut batch = vec![first];
        let mut ended = false;
        while words < loaded.batch_tokens {
            match rx.try_recv() {
                Ok(Ok(Some(line))) => {
                    words += line.split_whitespace().count() + 1;
                    batch.push(line);
                }
                Ok(Ok(None)) => {
                    ended = true;
                    break;
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => break,
            }
        }
        let out = translator.translate(&batch, &loaded.search, loaded.batch_tokens, |_| {});
        loaded.warn_long(&out);
        for t in &out {
            sinks.write(args, &loaded.run, done, t)?;
            done += 1;
        }
        sinks.flush()?;
        if ended {
            break;
        }
    }
    sinks.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// Where translations go: the output (n-best lists or best hypotheses) and the alignments.
struct Sinks {
    output: Output,
    alignments: Option<Output>,
}

impl Sinks {
    fn create(args: &TranslateArgs) -> Result<Self> {
        let output = Output::create(Some(&args.output))?;
        let alignments = match &args.alignments {
            Some(path) => Some(
                Output::create(Some(path))
                    .with_context(|| format!("{}: cannot create", path.display()))?,
            ),
            None => None,
        };
        Ok(Sinks { output, alignments })
    }

    /// Writes the translation of input line `i` (0-based).
    fn write(
        &mut self,
        args: &TranslateArgs,
        run: &rundir::LoadedRun,
        i: usize,
        t: &Translation,
    ) -> Result<()> {
        if args.nbest.is_some() {
            for h in &t.hypotheses {
                self.output
                    .line(&nbest_line(i, &run.tgt_vocab.decode(&h.tokens), h.score))?;
            }
        } else {
            self.output
                .line(&run.tgt_vocab.decode(&t.hypotheses[0].tokens))?;
        }
        if let Some(file) = &mut self.alignments {
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
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.output.flush()?;
        if let Some(file) = &mut self.alignments {
            file.flush()?;
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        if let Some(file) = self.alignments {
            file.finish()?;
        }
        self.output.finish()
    }
}

/// One n-best entry as Moses and Marian write it: `i ||| hypothesis ||| F0= score ||| score`.
pub fn nbest_line(i: usize, hypothesis: &str, score: f32) -> String {
    format!("{i} ||| {hypothesis} ||| F0= {score:.6} ||| {score:.6}")
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

//! `rnnsearch prepare` and `rnnsearch train`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use rnnsearch_data::{write_dataset, Prepared, WriteOptions};
use rnnsearch_train::trainer::resume;
use rnnsearch_train::{Outcome, RunConfig, RunOptions};

use crate::backend::BackendArgs;

/// Flags shared by `prepare` and `train` to pick a configuration.
#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    /// Run configuration (TOML) [default: the embedded configs/dates.toml]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run directory [default: runs/<config name>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Override a config value, e.g. --set train.lr=0.0005 (repeatable)
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// Arguments of `rnnsearch prepare`.
#[derive(clap::Args, Debug)]
pub struct PrepareArgs {
    /// Run configuration (TOML) whose [data] section names the corpora [default: the embedded
    /// configs/dates.toml]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The dataset folder to write (one dataset serves many runs: `train --data DIR`)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Replace a dataset already at --out
    #[arg(long)]
    force: bool,
    /// Override a config value, e.g. --set data.vocab_size=16000 (repeatable)
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    overrides: Vec<String>,
}

/// Arguments of `rnnsearch train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Continue the run in --out from its last checkpoint
    #[arg(long)]
    resume: bool,
    /// Train on the dataset `rnnsearch prepare --out DIR` made (sets data.prepared)
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Print the resolved configuration (every value) and exit
    #[arg(long)]
    print_config: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

impl ConfigArgs {
    fn load(&self) -> Result<(RunConfig, PathBuf)> {
        let config = RunConfig::load(self.config.as_deref(), &self.overrides)?;
        let out = self.out.clone().unwrap_or_else(|| {
            let name = self
                .config
                .as_deref()
                .and_then(Path::file_stem)
                .and_then(|s| s.to_str())
                .unwrap_or("dates");
            PathBuf::from("runs").join(name)
        });
        Ok((config, out))
    }
}

/// `rnnsearch prepare`: reads the corpora once, streaming, and writes a dataset folder.
pub fn prepare(args: PrepareArgs) -> Result<ExitCode> {
    let config = RunConfig::load(args.config.as_deref(), &args.overrides)?;
    let started = std::time::Instant::now();
    let options = WriteOptions {
        force: args.force,
        vocab_dir: None,
    };
    write_dataset(&config.data, Path::new("."), &args.out, &options)?;
    let prepared = Prepared::open(&config.data, &args.out, None, started)?;
    println!("{}", prepared.summary);
    println!(
        "prepared {} in {:.1} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// `rnnsearch train`.
pub fn train(args: TrainArgs) -> Result<ExitCode> {
    let (mut config, out) = args.config.load()?;
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(ExitCode::SUCCESS);
    }
    if args.resume {
        // A resumed run continues with the configuration it was started with.
        if let Some(saved) = resume::saved_config(&out, &args.config.overrides)? {
            config = saved;
        }
    }
    if let Some(data) = &args.data {
        config.data.prepared = Some(data.clone());
    }
    config.train.engine = args.backend.engine(config.train.engine);
    let device = args.backend.device()?;
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C: stop now; checkpoints on disk are complete either way.
            std::process::exit(130);
        }
        eprintln!("interrupt: finishing the current step and saving checkpoints/last (Ctrl-C again to quit now)");
    })
    .context("cannot install the Ctrl-C handler")?;
    let options = RunOptions {
        run_dir: out,
        resume: args.resume,
        device,
        base_dir: PathBuf::from("."),
        interrupt,
    };
    match rnnsearch_train::train(&config, &options)? {
        Outcome::Finished => Ok(ExitCode::SUCCESS),
        Outcome::Interrupted => Ok(ExitCode::from(130)),
    }
}

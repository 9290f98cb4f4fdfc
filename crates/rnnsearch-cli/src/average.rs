//! `rnnsearch average`: checkpoint averaging.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::backend::BackendArgs;

/// Arguments of `rnnsearch average`.
#[derive(clap::Args, Debug)]
pub struct AverageArgs {
    /// Run directory
    #[arg(long, value_name = "RUN_DIR")]
    model: PathBuf,
    /// Average these checkpoints (names under RUN_DIR/checkpoints) instead of the last step ones
    #[arg(long, value_name = "NAME,...", value_delimiter = ',', num_args = 1..)]
    checkpoints: Vec<String>,
    /// How many of the most recent step checkpoints to average
    #[arg(long, value_name = "N", default_value_t = 5)]
    last: usize,
    /// Name of the averaged checkpoint
    #[arg(long, value_name = "NAME", default_value = "averaged")]
    output: String,
    #[command(flatten)]
    backend: BackendArgs,
}

/// `rnnsearch average`.
pub fn run(args: AverageArgs) -> Result<ExitCode> {
    let device = args.backend.device()?;
    let (dirs, _) = rnnsearch_train::average::average_run(
        &args.model,
        &args.checkpoints,
        args.last,
        &args.output,
        &device,
    )?;
    let names: Vec<String> = dirs
        .iter()
        .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    eprintln!(
        "averaged {} checkpoints ({}) into {}",
        names.len(),
        names.join(", "),
        args.model.join("checkpoints").join(&args.output).display()
    );
    Ok(ExitCode::SUCCESS)
}

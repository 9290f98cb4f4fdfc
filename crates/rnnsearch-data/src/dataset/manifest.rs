//! `manifest.json`: what a prepared dataset holds and what it was made from. It is written
//! last, so a folder without one was never finished.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::config::DataConfig;
use crate::corpus::FilterCounts;
use crate::vocabs::SideStats;
use crate::Error;

/// What every manifest says it is.
pub const FORMAT: &str = "rnnsearch-dataset";
/// Bumped whenever the files' layout changes.
pub const VERSION: u32 = 1;
/// The manifest's name in a dataset folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// An input file as it was when the dataset was made: a change of size or modification time
/// means the dataset no longer shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    pub path: PathBuf,
    pub bytes: u64,
    /// Nanoseconds since the Unix epoch, where the file system keeps it.
    pub modified_ns: Option<u128>,
}

impl InputFile {
    /// `path` as it is now.
    pub fn of(path: &Path) -> Result<InputFile, Error> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "cannot open", e))?;
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos());
        Ok(InputFile {
            path: path.to_path_buf(),
            bytes: meta.len(),
            modified_ns,
        })
    }
}

/// One training corpus in the dataset: its pairs are `start .. start + kept`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorpusPart {
    /// The files (`dates` for the generated corpus).
    pub name: String,
    pub read: usize,
    pub filtered: FilterCounts,
    pub start: usize,
    pub kept: usize,
}

/// The manifest of a prepared dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub rnnsearch_version: String,
    /// The data section it was made from ([`DataConfig::dataset_key`]).
    pub data: DataConfig,
    /// The corpus files read, as they were.
    pub inputs: Vec<InputFile>,
    /// Bytes per token id in the `.ids` files: 2 when the vocabularies fit, else 4.
    pub id_bytes: usize,
    pub corpora: Vec<CorpusPart>,
    pub train_pairs: usize,
    pub valid_pairs: usize,
    pub test_pairs: Option<usize>,
    pub filtered: FilterCounts,
    /// The tokenizer files in the folder.
    pub vocab_files: Vec<String>,
    pub src_vocab_size: usize,
    pub tgt_vocab_size: usize,
    pub src: SideStats,
    pub tgt: SideStats,
    pub valid_unk: usize,
    /// Wall time of the preparation, seconds: in all, of the vocabularies (the sampling pass
    /// and the BPE training), and of the encoding pass (reading, encoding, writing).
    pub seconds: f64,
    pub vocab_seconds: f64,
    pub encode_seconds: f64,
}

impl Manifest {
    /// Reads `dir`'s manifest; a folder without one (or of another format) is an error.
    pub fn read(dir: &Path) -> Result<Manifest, Error> {
        let path = dir.join(MANIFEST_FILE);
        if !path.exists() {
            return Err(Error::Config(format!(
                "{}: not a prepared dataset (no {MANIFEST_FILE}; an interrupted prepare leaves \
                 none): run `rnnsearch prepare --out {}` again",
                dir.display(),
                dir.display()
            )));
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::io(&path, "cannot read", e))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            Error::Config(format!("{}: not a dataset manifest: {e}", path.display()))
        })?;
        if manifest.format != FORMAT || manifest.version != VERSION {
            return Err(Error::Config(format!(
                "{}: a dataset of format {} version {}; this rnnsearch reads {FORMAT} version \
                 {VERSION}: prepare it again",
                path.display(),
                manifest.format,
                manifest.version
            )));
        }
        Ok(manifest)
    }

    /// Checks that the dataset in `dir` was made from `cfg` (its [`DataConfig::dataset_key`])
    /// and from the input files as they are now; the error names what differs, both ways.
    pub fn check(&self, dir: &Path, cfg: &DataConfig) -> Result<(), Error> {
        let want = cfg.dataset_key();
        if want != self.data {
            let differences = differing_keys(&self.data, &want);
            return Err(Error::Config(format!(
                "{}: made from another data config: {}; prepare a dataset for this config (or \
                 train without data.prepared)",
                dir.display(),
                differences.join("; ")
            )));
        }
        for input in &self.inputs {
            let now = InputFile::of(&input.path)?;
            if now != *input {
                return Err(Error::Config(format!(
                    "{}: {} changed since the dataset was made ({} bytes then, {} now): prepare \
                     it again",
                    dir.display(),
                    input.path.display(),
                    input.bytes,
                    now.bytes
                )));
            }
        }
        Ok(())
    }
}

/// `key: dataset's value vs config's value` for each key that differs.
fn differing_keys(dataset: &DataConfig, config: &DataConfig) -> Vec<String> {
    let (a, b) = (
        serde_json::to_value(dataset).expect("serialisable"),
        serde_json::to_value(config).expect("serialisable"),
    );
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return vec!["the data section".into()];
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |v: Option<&serde_json::Value>| v.map_or("none".into(), |v| v.to_string());
            format!(
                "data.{k} is {} in the dataset but {} in the config",
                show(a.get(k)),
                show(b.get(k))
            )
        })
        .collect()
}

//! Data for rnnsearch: parallel corpora and the generated dates task, subword
//! vocabularies (Hugging Face `tokenizers` BPE saved as `tokenizer.json`), and
//! token-budget batches that a resumed run can rebuild exactly.
//!
//! The usual entry point is [`Prepared::prepare`]; then [`batches`] once per epoch.
//! This crate has no tensor dependency: batches are flat `Vec<u32>` rows that the
//! model crate turns into tensors.

pub mod batch;
pub mod config;
pub mod corpus;
pub mod dataset;
pub mod dates;
mod error;
pub mod prepare;
pub mod vocab;
mod vocabs;

pub use batch::{
    batches, padding_fraction, planned_padding, source_batches, Batch, EpochPlan, Example,
};
pub use config::{CorpusKind, DataConfig, TokenizerKind, TrainCorpus};
pub use corpus::{
    normalize, read_lines, read_parallel, Filter, FilterCounts, FilterReason, LineReader,
};
pub use dataset::{write_dataset, Dataset, Manifest, WriteOptions};
pub use dates::{DateSplits, DatesConfig};
pub use error::Error;
pub use prepare::{
    Prepared, SideStats, Split, Summary, DATASET_DIR, JOINT_VOCAB_FILE, SRC_VOCAB_FILE,
    TGT_VOCAB_FILE,
};
pub use vocab::{group_words, Vocab};

/// Shared helpers for tests that use Multi30k.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;

    use crate::{CorpusKind, DataConfig, Prepared};

    /// The Multi30k folder: `$MULTI30K_DIR`, else `<repo>/../shared/data/multi30k`,
    /// else `<repo>/data/multi30k`. `None` (with a note) when absent, unless `CI`
    /// is set, where a missing corpus fails the test.
    pub fn multi30k() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("MULTI30K_DIR") {
            return Some(PathBuf::from(dir));
        }
        // At run time: the target dir may be shared by checkouts at other paths.
        let repo = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
            .join("../..");
        let candidates = [
            repo.join("../shared/data/multi30k"),
            repo.join("data/multi30k"),
        ];
        if let Some(dir) = candidates
            .iter()
            .find(|d| d.join("val.en.gz").exists() || d.join("val.en").exists())
        {
            return Some(dir.clone());
        }
        let reason = "Multi30k not found (set MULTI30K_DIR or run scripts/fetch-multi30k.sh)";
        assert!(std::env::var_os("CI").is_none(), "{reason}; CI is set");
        eprintln!("skipping: {reason}");
        None
    }

    /// `split.lang.gz` if present, else the plain `split.lang`.
    pub fn multi30k_file(dir: &Path, split: &str, lang: &str) -> PathBuf {
        let gz = dir.join(format!("{split}.{lang}.gz"));
        if gz.exists() {
            gz
        } else {
            dir.join(format!("{split}.{lang}"))
        }
    }

    /// Multi30k en→de prepared once per test binary at the default settings.
    pub fn prepared_en_de() -> Option<&'static Prepared> {
        static PREPARED: OnceLock<Option<(Prepared, tempfile::TempDir)>> = OnceLock::new();
        PREPARED
            .get_or_init(|| {
                let dir = multi30k()?;
                let file = |s: &str, l: &str| Some(multi30k_file(&dir, s, l));
                let cfg = DataConfig {
                    corpus: CorpusKind::Parallel,
                    train_src: file("train", "en"),
                    train_tgt: file("train", "de"),
                    valid_src: file("val", "en"),
                    valid_tgt: file("val", "de"),
                    test_src: file("test_2016_flickr", "en"),
                    test_tgt: file("test_2016_flickr", "de"),
                    ..DataConfig::default()
                };
                let run = tempfile::tempdir().unwrap();
                let prepared = Prepared::prepare(&cfg, Path::new("."), run.path()).unwrap();
                Some((prepared, run))
            })
            .as_ref()
            .map(|(p, _)| p)
    }
}

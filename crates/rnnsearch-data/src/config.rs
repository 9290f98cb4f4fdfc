//! The `[data]` section of a run config: what to read, how to tokenise, how to
//! filter and batch. Every field has a default so a TOML section may omit any.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::dates::DatesConfig;
use crate::{Error, Vocab};

/// The longest sentence, in subwords, a dataset holds (its lengths are kept as 16-bit numbers).
pub const MAX_LEN_LIMIT: usize = 65_000;

/// Where the sentence pairs come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CorpusKind {
    /// The generated dates task (see [`crate::dates`]).
    #[default]
    Dates,
    /// Line-aligned files named in the config.
    Parallel,
}

/// How text is cut into subwords.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    /// `char` for the dates corpus, `bpe` for parallel files.
    #[default]
    Auto,
    /// BPE with `vocab_size` entries.
    Bpe,
    /// Characters (plus `▁` word starts); `vocab_size` is ignored. BPE on dates
    /// memorises whole numbers and dates, which generalises badly.
    Char,
}

/// One training corpus of `[[data.train]]`: line-aligned source and target files (plain or
/// gzip) and how often its pairs are drawn per epoch relative to its size (`weight` 2: each
/// pair twice; 0.5: a random half, drawn anew every epoch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainCorpus {
    pub src: PathBuf,
    pub tgt: PathBuf,
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// The `[data]` section of a run config. Every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    pub corpus: CorpusKind,
    pub train_src: Option<PathBuf>,
    pub train_tgt: Option<PathBuf>,
    pub valid_src: Option<PathBuf>,
    pub valid_tgt: Option<PathBuf>,
    pub test_src: Option<PathBuf>,
    pub test_tgt: Option<PathBuf>,
    pub tokenizer: TokenizerKind,
    pub vocab_size: usize,
    pub joint_vocab: bool,
    /// BPE merges never cross a punctuation character (`Hund.` is `▁Hund` `.`).
    pub split_punctuation: bool,
    /// Training pairs with more subwords than this on either side are filtered.
    pub max_len: usize,
    /// Training pairs whose longer/shorter subword ratio exceeds this are filtered.
    pub max_ratio: f64,
    pub batch_tokens: usize,
    /// Seeds the batch order (with the epoch).
    pub seed: u64,
    /// Training pairs (reservoir-sampled) the BPE vocabulary is trained on.
    pub vocab_sample: usize,
    /// A dataset made by `rnnsearch prepare --out DIR` to train from, instead of the corpora.
    pub prepared: Option<PathBuf>,
    pub dates: DatesConfig,
    /// Several training corpora with weights (`[[data.train]]`), instead of `train_src` and
    /// `train_tgt`.
    pub train: Vec<TrainCorpus>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            corpus: CorpusKind::Dates,
            train_src: None,
            train_tgt: None,
            valid_src: None,
            valid_tgt: None,
            test_src: None,
            test_tgt: None,
            tokenizer: TokenizerKind::Auto,
            vocab_size: 8000,
            joint_vocab: true,
            split_punctuation: false,
            max_len: 80,
            max_ratio: 3.0,
            batch_tokens: 2000,
            seed: 1,
            vocab_sample: 500_000,
            prepared: None,
            dates: DatesConfig::default(),
            train: Vec::new(),
        }
    }
}

impl DataConfig {
    /// The tokenizer actually used (`auto` resolved by corpus).
    pub fn tokenizer_kind(&self) -> TokenizerKind {
        match (self.tokenizer, self.corpus) {
            (TokenizerKind::Auto, CorpusKind::Dates) => TokenizerKind::Char,
            (TokenizerKind::Auto, CorpusKind::Parallel) => TokenizerKind::Bpe,
            (kind, _) => kind,
        }
    }

    /// The training corpora: `[[data.train]]`, or the one pair `train_src` / `train_tgt` with
    /// weight 1 (empty for the dates corpus).
    pub fn train_corpora(&self) -> Vec<TrainCorpus> {
        match (&self.train_src, &self.train_tgt) {
            (Some(src), Some(tgt)) if self.train.is_empty() => vec![TrainCorpus {
                src: src.clone(),
                tgt: tgt.clone(),
                weight: 1.0,
            }],
            _ => self.train.clone(),
        }
    }

    /// What a prepared dataset is made from: this section without the keys that only change
    /// how a dataset is used (batching, the batch order's seed, corpus weights, `prepared`).
    pub fn dataset_key(&self) -> DataConfig {
        let defaults = DataConfig::default();
        let mut key = self.clone();
        key.batch_tokens = defaults.batch_tokens;
        key.seed = defaults.seed;
        key.prepared = None;
        key.train = self.train_corpora();
        key.train_src = None;
        key.train_tgt = None;
        key.train.iter_mut().for_each(|c| c.weight = 1.0);
        key
    }

    /// Checks values and required paths; messages name the offending field.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |m: &str| Err(Error::Config(m.to_string()));
        if self.tokenizer_kind() == TokenizerKind::Bpe && self.vocab_size <= Vocab::SPECIALS.len() {
            return fail("vocab_size must be larger than the 4 special tokens");
        }
        if self.max_len == 0 {
            return fail("max_len must be at least 1");
        }
        if self.max_len > MAX_LEN_LIMIT {
            return Err(Error::Config(format!(
                "max_len must be at most {MAX_LEN_LIMIT}"
            )));
        }
        if self.vocab_sample == 0 {
            return fail("vocab_sample must be at least 1");
        }
        if self.max_ratio.is_nan() || self.max_ratio < 1.0 {
            return fail("max_ratio must be a number >= 1");
        }
        if self.batch_tokens == 0 {
            return fail("batch_tokens must be at least 1");
        }
        match self.corpus {
            CorpusKind::Dates => self.validate_dates(),
            CorpusKind::Parallel => self.validate_parallel(),
        }
    }

    fn validate_dates(&self) -> Result<(), Error> {
        let d = &self.dates;
        if d.train == 0 {
            return Err(Error::Config("dates.train must be at least 1".into()));
        }
        if d.train + d.valid + d.test > 5_000_000 {
            return Err(Error::Config(
                "dates: at most 5000000 examples in all".into(),
            ));
        }
        Ok(())
    }

    fn validate_parallel(&self) -> Result<(), Error> {
        if !self.train.is_empty() && (self.train_src.is_some() || self.train_tgt.is_some()) {
            return Err(Error::Config(
                "give the training corpora either as train_src and train_tgt or as [[data.train]] \
                 entries, not both"
                    .into(),
            ));
        }
        for (i, corpus) in self.train.iter().enumerate() {
            if !(corpus.weight.is_finite() && corpus.weight > 0.0) {
                return Err(Error::Config(format!(
                    "train[{i}].weight must be a positive number (got {})",
                    corpus.weight
                )));
            }
        }
        let listed = (!self.train.is_empty()).then(|| PathBuf::from("[[data.train]]"));
        let required = [
            ("train_src", self.train_src.as_ref().or(listed.as_ref())),
            ("train_tgt", self.train_tgt.as_ref().or(listed.as_ref())),
            ("valid_src", self.valid_src.as_ref()),
            ("valid_tgt", self.valid_tgt.as_ref()),
        ];
        for (name, value) in required {
            if value.is_none() {
                return Err(Error::Config(format!(
                    "{name} is required when corpus = \"parallel\""
                )));
            }
        }
        if self.test_src.is_some() != self.test_tgt.is_some() {
            return Err(Error::Config(
                "test_src and test_tgt must be given together".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parallel_cfg() -> DataConfig {
        DataConfig {
            corpus: CorpusKind::Parallel,
            train_src: Some("train.en".into()),
            train_tgt: Some("train.de".into()),
            valid_src: Some("valid.en".into()),
            valid_tgt: Some("valid.de".into()),
            ..DataConfig::default()
        }
    }

    #[test]
    fn config_defaults_and_toml() {
        let cfg: DataConfig = toml::from_str("").unwrap();
        assert_eq!(cfg, DataConfig::default());
        assert_eq!(cfg.tokenizer_kind(), TokenizerKind::Char);
        let cfg: DataConfig =
            toml::from_str("corpus = \"parallel\"\nvocab_size = 300\n[dates]\ntrain = 10\n")
                .unwrap();
        assert_eq!(cfg.corpus, CorpusKind::Parallel);
        assert_eq!(
            (cfg.vocab_size, cfg.dates.train, cfg.dates.valid),
            (300, 10, 500)
        );
        assert_eq!(cfg.tokenizer_kind(), TokenizerKind::Bpe);
        let err = toml::from_str::<DataConfig>("vocab = 3").unwrap_err();
        assert!(err.to_string().contains("unknown field `vocab`"), "{err}");
        let back: DataConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn config_errors_name_the_field() {
        let check = |cfg: DataConfig, want: &str| {
            assert_eq!(cfg.validate().unwrap_err().to_string(), want);
        };
        let p = DataConfig {
            corpus: CorpusKind::Parallel,
            ..DataConfig::default()
        };
        check(
            p.clone(),
            "data config: train_src is required when corpus = \"parallel\"",
        );
        let mut q = parallel_cfg();
        q.test_src = Some("t.en".into());
        check(
            q,
            "data config: test_src and test_tgt must be given together",
        );
        check(
            DataConfig {
                max_ratio: f64::NAN,
                ..DataConfig::default()
            },
            "data config: max_ratio must be a number >= 1",
        );
        check(
            DataConfig {
                batch_tokens: 0,
                ..DataConfig::default()
            },
            "data config: batch_tokens must be at least 1",
        );
        check(
            DataConfig {
                max_len: 0,
                ..DataConfig::default()
            },
            "data config: max_len must be at least 1",
        );
        check(
            DataConfig {
                tokenizer: TokenizerKind::Bpe,
                vocab_size: 4,
                ..DataConfig::default()
            },
            "data config: vocab_size must be larger than the 4 special tokens",
        );
        let mut d = DataConfig::default();
        d.dates.train = 0;
        check(d, "data config: dates.train must be at least 1");
    }
}

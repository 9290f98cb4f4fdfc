//! [`Prepared::prepare`], the one call a run makes to get vocabularies, encoded
//! splits and a printable summary.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::batch::Example;
use crate::config::{CorpusKind, DataConfig, TokenizerKind};
use crate::corpus::{Filter, FilterCounts};
use crate::dataset::{write_dataset, Dataset, WriteOptions, MANIFEST_FILE};
pub use crate::vocabs::{SideStats, JOINT_VOCAB_FILE, SRC_VOCAB_FILE, TGT_VOCAB_FILE};
use crate::vocabs::{Texts, Vocabs};
use crate::{Error, Vocab};

/// One split: normalised texts and their encodings, index-aligned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Split {
    pub src_text: Vec<String>,
    pub tgt_text: Vec<String>,
    pub examples: Vec<Example>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }
}

/// Everything a run needs from the data side: the vocabularies, the training split mapped from
/// a prepared dataset, and the small splits in memory.
#[derive(Debug)]
pub struct Prepared {
    pub src_vocab: Arc<Vocab>,
    pub tgt_vocab: Arc<Vocab>,
    pub train: Dataset,
    /// Per training corpus, how often its pairs are drawn per epoch.
    pub train_weights: Vec<f64>,
    pub valid: Split,
    pub test: Option<Split>,
    pub summary: Summary,
}

/// The folder of a run directory that holds the dataset made from its corpora.
pub const DATASET_DIR: &str = "data";

impl Prepared {
    /// The data a run trains on: the dataset `data.prepared` names, or else the run's own
    /// (`run_dir/data`), made from the corpora the first time (streaming, with the run
    /// directory's vocabularies when it has them, else training and saving them there) and
    /// reused by every later start and resume. Paths in `cfg` are relative to `base_dir`.
    /// The run directory gets the dataset's tokenizer files; a run directory that holds other
    /// ones is an error.
    pub fn prepare(cfg: &DataConfig, base_dir: &Path, run_dir: &Path) -> Result<Prepared, Error> {
        let start = Instant::now();
        cfg.validate()?;
        let had_vocab = Vocabs::load(cfg, run_dir)?.is_some();
        let dir = match &cfg.prepared {
            Some(dir) => base_dir.join(dir),
            None => {
                let dir = run_dir.join(DATASET_DIR);
                if !dir.join(MANIFEST_FILE).exists() {
                    let options = WriteOptions {
                        force: true,
                        vocab_dir: Some(run_dir),
                    };
                    write_dataset(cfg, base_dir, &dir, &options)?;
                }
                dir
            }
        };
        let prepared = Prepared::open(cfg, &dir, Some(run_dir), start)?;
        let mut prepared = prepared;
        prepared.summary.vocab_loaded = had_vocab || cfg.prepared.is_some();
        Ok(prepared)
    }

    /// Opens the dataset in `dir`, checks it was made from `cfg`, and copies its tokenizer
    /// files into `run_dir` (when given). `start` is when the caller began, for the summary's
    /// time. (The batches of an epoch and their padding are the trainer's to report: planning
    /// them sorts every pair.)
    pub fn open(
        cfg: &DataConfig,
        dir: &Path,
        run_dir: Option<&Path>,
        start: Instant,
    ) -> Result<Prepared, Error> {
        let dataset = Dataset::open(dir)?;
        let manifest = &dataset.manifest;
        manifest.check(dir, cfg)?;
        let vocabs = Vocabs::load(cfg, dir)?.ok_or_else(|| {
            Error::Config(format!(
                "{}: the dataset has no tokenizer files",
                dir.display()
            ))
        })?;
        let mut vocab_files: Vec<PathBuf> =
            manifest.vocab_files.iter().map(|f| dir.join(f)).collect();
        if let Some(run_dir) = run_dir {
            vocab_files = copy_vocab_files(dir, run_dir, &manifest.vocab_files)?;
        }
        let split = |name: &str| -> Result<Option<Split>, Error> {
            Ok(dataset.texts(name)?.map(|[src, tgt]| {
                let texts = Texts { src, tgt };
                encode(&vocabs, texts, None).0
            }))
        };
        let valid = split("valid")?.unwrap_or_default();
        let test = split("test")?;
        let train_weights: Vec<f64> = match cfg.corpus {
            CorpusKind::Dates => vec![1.0],
            CorpusKind::Parallel => cfg.train_corpora().iter().map(|c| c.weight).collect(),
        };

        let names: Vec<&str> = manifest.corpora.iter().map(|c| c.name.as_str()).collect();
        let corpus = match cfg.corpus {
            CorpusKind::Dates => format!("dates (seed {})", cfg.dates.seed),
            CorpusKind::Parallel => format!("parallel {}", names.join(", ")),
        };
        let summary = Summary {
            corpus,
            train_read: manifest.corpora.iter().map(|c| c.read).sum(),
            valid_read: valid.len(),
            test_read: test.as_ref().map(Split::len),
            filtered: manifest.filtered,
            max_len: cfg.max_len,
            max_ratio: cfg.max_ratio,
            tokenizer: cfg.tokenizer_kind(),
            joint_vocab: cfg.joint_vocab,
            src_vocab_size: vocabs.src.len(),
            tgt_vocab_size: vocabs.tgt.len(),
            vocab_files,
            vocab_loaded: true,
            src: manifest.src,
            tgt: manifest.tgt,
            valid_unk: count_unk(&valid.examples),
            seconds: start.elapsed().as_secs_f64(),
        };
        Ok(Prepared {
            src_vocab: vocabs.src,
            tgt_vocab: vocabs.tgt,
            train: dataset,
            train_weights,
            valid,
            test,
            summary,
        })
    }
}

/// Copies the dataset's tokenizer files into `run_dir` where it has none; a run directory
/// that holds different ones is an error. Returns the run directory's files.
fn copy_vocab_files(dir: &Path, run_dir: &Path, files: &[String]) -> Result<Vec<PathBuf>, Error> {
    std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, "cannot create", e))?;
    let mut copies = Vec::new();
    for name in files {
        let (from, to) = (dir.join(name), run_dir.join(name));
        let theirs = std::fs::read(&from).map_err(|e| Error::io(&from, "cannot read", e))?;
        if to.exists() {
            let ours = std::fs::read(&to).map_err(|e| Error::io(&to, "cannot read", e))?;
            if ours != theirs {
                return Err(Error::Config(format!(
                    "{} differs from the dataset's {}: the run was made with another \
                     vocabulary; use a fresh run directory",
                    to.display(),
                    from.display()
                )));
            }
        } else {
            std::fs::write(&to, &theirs).map_err(|e| Error::io(&to, "cannot write", e))?;
        }
        copies.push(to);
    }
    Ok(copies)
}

/// Encodes a split; with a filter, drops (and counts) the pairs it rejects.
fn encode(vocabs: &Vocabs, texts: Texts, filter: Option<Filter>) -> (Split, FilterCounts) {
    let src_ids = vocabs.src.encode_batch(&texts.src);
    let tgt_ids = vocabs.tgt.encode_batch(&texts.tgt);
    let mut split = Split::default();
    let mut counts = FilterCounts::default();
    let rows = texts
        .src
        .into_iter()
        .zip(texts.tgt)
        .zip(src_ids.into_iter().zip(tgt_ids));
    for ((src_text, tgt_text), (src, tgt)) in rows {
        if let Some(reason) = filter.and_then(|f| f.check(src.len(), tgt.len())) {
            counts.add(reason);
            continue;
        }
        split.src_text.push(src_text);
        split.tgt_text.push(tgt_text);
        split.examples.push(Example { src, tgt });
    }
    (split, counts)
}

fn count_unk(examples: &[Example]) -> usize {
    let unk = |ids: &Vec<u32>| ids.iter().filter(|&&id| id == Vocab::UNK).count();
    examples.iter().map(|e| unk(&e.src) + unk(&e.tgt)).sum()
}

/// What [`Prepared::prepare`] did, for the log; `Display` prints a short report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub corpus: String,
    /// Training pairs read, before filtering.
    pub train_read: usize,
    pub valid_read: usize,
    pub test_read: Option<usize>,
    pub filtered: FilterCounts,
    pub max_len: usize,
    pub max_ratio: f64,
    pub tokenizer: TokenizerKind,
    pub joint_vocab: bool,
    pub src_vocab_size: usize,
    pub tgt_vocab_size: usize,
    pub vocab_files: Vec<PathBuf>,
    /// True when the vocabularies came from the run directory.
    pub vocab_loaded: bool,
    pub src: SideStats,
    pub tgt: SideStats,
    /// `<unk>` tokens in the encoded validation split (both sides).
    pub valid_unk: usize,
    pub seconds: f64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "corpus: {}", self.corpus)?;
        write!(
            f,
            "pairs read: train {}, valid {}",
            self.train_read, self.valid_read
        )?;
        match self.test_read {
            Some(n) => writeln!(f, ", test {n}")?,
            None => writeln!(f)?,
        }
        let c = &self.filtered;
        writeln!(
            f,
            "train filtered: {} (empty {}, over {} subwords {}, length ratio over {} {}); kept {}",
            c.total(),
            c.empty,
            self.max_len,
            c.too_long,
            self.max_ratio,
            c.ratio,
            self.train_read - c.total()
        )?;
        self.fmt_vocab(f)?;
        for (name, s) in [("source", &self.src), ("target", &self.tgt)] {
            writeln!(
                f,
                "train {name}: {} subwords, mean length {:.1}, max {}",
                s.tokens, s.mean_len, s.max_len
            )?;
        }
        writeln!(f, "valid <unk>: {}", self.valid_unk)?;
        write!(f, "prepared in {:.1} s", self.seconds)
    }
}

impl Summary {
    fn fmt_vocab(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.tokenizer {
            TokenizerKind::Char => "char",
            _ => "bpe",
        };
        let files: Vec<String> = self
            .vocab_files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let how = if self.vocab_loaded {
            "loaded from"
        } else {
            "trained, saved to"
        };
        if self.joint_vocab {
            write!(
                f,
                "vocabulary: joint {kind}, {} entries",
                self.src_vocab_size
            )?;
        } else {
            write!(
                f,
                "vocabulary: separate {kind}, source {} / target {} entries",
                self.src_vocab_size, self.tgt_vocab_size
            )?;
        }
        writeln!(f, ", {how} {}", files.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::prepared_en_de;
    use std::fs;

    fn write(dir: &Path, name: &str, text: &str) {
        fs::write(dir.join(name), text).unwrap();
    }

    fn parallel_cfg() -> DataConfig {
        DataConfig {
            corpus: CorpusKind::Parallel,
            train_src: Some("train.en".into()),
            train_tgt: Some("train.de".into()),
            valid_src: Some("valid.en".into()),
            valid_tgt: Some("valid.de".into()),
            tokenizer: TokenizerKind::Char,
            max_len: 12,
            max_ratio: 2.0,
            ..DataConfig::default()
        }
    }

    /// Train, in characters (each word is `▁` + letters): 4 good pairs, 1 empty,
    /// 1 too long (14 > 12), 1 bad ratio (8 / 2 > 2).
    fn toy_corpus(dir: &Path) {
        let en = "a cat\nthe dog\n  \nx x x x x x x\na b c d\nthe  cat sat\nsome cat\n";
        let de = "eine katze\nder hund\nleer\ny y y y y y y\nq\ndie katze\neine katze\n";
        write(dir, "train.en", en);
        write(dir, "train.de", de);
        write(dir, "valid.en", "\nthe cat\n");
        write(dir, "valid.de", "x\ndie katze\n");
    }

    #[test]
    fn parallel_filters_train_only_and_counts_reasons() {
        let dir = tempfile::tempdir().unwrap();
        toy_corpus(dir.path());
        let run = dir.path().join("run");
        let p = Prepared::prepare(&parallel_cfg(), dir.path(), &run).unwrap();
        let c = p.summary.filtered;
        assert_eq!((c.empty, c.too_long, c.ratio), (1, 1, 1), "{}", p.summary);
        assert_eq!(p.summary.train_read, 7);
        assert_eq!(p.train.len(), 4);
        let decoded = |i: usize| {
            let ex = p.train.example(i);
            (p.src_vocab.decode(&ex.src), p.tgt_vocab.decode(&ex.tgt))
        };
        assert_eq!(decoded(3).0, "some cat");
        assert_eq!(decoded(0).1, "eine katze");
        assert_eq!(p.valid.len(), 2, "valid is never filtered");
        assert_eq!(p.valid.src_text, vec!["", "the cat"]);
        assert!(p.test.is_none());
        assert!(run.join(JOINT_VOCAB_FILE).exists());
        assert!(Arc::ptr_eq(&p.src_vocab, &p.tgt_vocab));
        let shown = p.summary.to_string();
        assert!(shown.contains("train filtered: 3 (empty 1"), "{shown}");
        assert!(shown.contains("trained, saved to"), "{shown}");
        let kept = ["a cat", "the dog", "the cat sat", "some cat"];
        for (i, text) in kept.iter().enumerate() {
            assert_eq!(decoded(i).0, *text);
        }
        // Second time round the run's dataset is reused, and holds the same pairs.
        let again = Prepared::prepare(&parallel_cfg(), dir.path(), &run).unwrap();
        assert!(again.summary.vocab_loaded);
        for i in 0..4 {
            assert_eq!(again.train.example(i), p.train.example(i));
        }
    }

    /// A run directory's vocabulary made without the punctuation split is never reused by a
    /// config that asks for it (nor the other way round), for joint and separate files alike.
    #[test]
    fn vocabulary_of_the_other_split_is_an_error() {
        for joint in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            toy_corpus(dir.path());
            let run = dir.path().join("run");
            let mut cfg = parallel_cfg();
            cfg.joint_vocab = joint;
            Prepared::prepare(&cfg, dir.path(), &run).unwrap();
            cfg.split_punctuation = true;
            let err = Prepared::prepare(&cfg, dir.path(), &run)
                .unwrap_err()
                .to_string();
            let file = run.join(if joint {
                JOINT_VOCAB_FILE
            } else {
                SRC_VOCAB_FILE
            });
            assert_eq!(
                err,
                format!(
                    "data config: {} was trained with split_punctuation = false but \
                     data.split_punctuation = true: use a fresh run directory (or set the key as \
                     the run had it)",
                    file.display()
                )
            );
            let fresh = dir.path().join("fresh");
            let p = Prepared::prepare(&cfg, dir.path(), &fresh).unwrap();
            assert!(p.src_vocab.splits_punctuation() && p.tgt_vocab.splits_punctuation());
        }
    }

    #[test]
    fn separate_vocabularies_and_layout_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        toy_corpus(dir.path());
        let run = dir.path().join("run");
        let mut cfg = parallel_cfg();
        cfg.joint_vocab = false;
        let p = Prepared::prepare(&cfg, dir.path(), &run).unwrap();
        assert!(run.join(SRC_VOCAB_FILE).exists() && run.join(TGT_VOCAB_FILE).exists());
        assert!(!Arc::ptr_eq(&p.src_vocab, &p.tgt_vocab));
        let err = Prepared::prepare(&parallel_cfg(), dir.path(), &run)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "data config: {}: holds separate vocabularies (tokenizer.src.json, tokenizer.tgt.json) but joint_vocab = true",
                run.display()
            )
        );
        fs::remove_file(run.join(TGT_VOCAB_FILE)).unwrap();
        let err = Prepared::prepare(&cfg, dir.path(), &run)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "data config: {}: has tokenizer.src.json but not tokenizer.tgt.json",
                run.display()
            )
        );
    }

    #[test]
    fn nothing_left_after_filtering_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "train.en", "a b c d\n\n");
        write(dir.path(), "train.de", "q\nx\n");
        write(dir.path(), "valid.en", "a\n");
        write(dir.path(), "valid.de", "b\n");
        let err = Prepared::prepare(&parallel_cfg(), dir.path(), &dir.path().join("r"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("data config: no training pairs left after filtering (2 read: 1 empty"),
            "{err}"
        );
        assert!(
            !dir.path().join("r/data").exists(),
            "no dataset left behind"
        );
    }

    #[test]
    fn run_dir_that_cannot_be_created_is_named() {
        let dir = tempfile::tempdir().unwrap();
        toy_corpus(dir.path());
        write(dir.path(), "blocker", "a file, not a directory");
        let run = dir.path().join("blocker/run");
        let err = Prepared::prepare(&parallel_cfg(), dir.path(), &run)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{}: cannot create: ", run.display())),
            "{err}"
        );
    }

    #[test]
    fn reading_errors_propagate() {
        let dir = tempfile::tempdir().unwrap();
        toy_corpus(dir.path());
        write(dir.path(), "valid.de", "only one line\n");
        let err = Prepared::prepare(&parallel_cfg(), dir.path(), &dir.path().join("r"))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("valid.de has 1: parallel files must be line-aligned"),
            "{err}"
        );
    }

    #[test]
    fn dates_prepare_char_level_and_unfiltered() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = DataConfig::default();
        cfg.dates.train = 3000;
        let p = Prepared::prepare(&cfg, dir.path(), dir.path()).unwrap();
        eprintln!("{}", p.summary);
        assert_eq!(p.summary.filtered.total(), 0, "{}", p.summary);
        assert_eq!(p.train.len(), 3000);
        assert_eq!(p.test.as_ref().map(Split::len), Some(500));
        assert!(p.src_vocab.len() < 120, "{}", p.src_vocab.len());
        assert_eq!(p.summary.valid_unk, 0);
        let ex = &p.valid.examples[0];
        assert_eq!(p.tgt_vocab.decode(&ex.tgt), p.valid.tgt_text[0]);
        assert_eq!(ex.tgt.len(), 11, "▁ + 10 characters");
    }

    /// Multi30k en-de at the defaults: prints the summary and the time taken.
    #[test]
    fn multi30k_en_de_summary() {
        let Some(p) = prepared_en_de() else { return };
        eprintln!("{}", p.summary);
        assert_eq!(p.summary.train_read, 29_000);
        assert_eq!(p.valid.len(), 1014);
        assert_eq!(p.test.as_ref().map(Split::len), Some(1000));
        assert!(p.summary.filtered.total() < 290, "{}", p.summary);
        assert!(p.src_vocab.len() > 7000 && p.src_vocab.len() <= 8000);
    }
}

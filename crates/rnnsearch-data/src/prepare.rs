//! [`Prepared::prepare`], the one call a run makes to get vocabularies, encoded
//! splits and a printable summary.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::batch::{batches, padding_fraction, Example};
use crate::config::{CorpusKind, DataConfig, TokenizerKind};
use crate::corpus::{normalize, read_parallel, Filter, FilterCounts};
use crate::dates::{self, DatesConfig};
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

/// Source and target lines, normalised, before encoding.
#[derive(Default)]
struct Texts {
    src: Vec<String>,
    tgt: Vec<String>,
}

impl Texts {
    fn normalized(src: &[String], tgt: &[String]) -> Texts {
        Texts {
            src: src.iter().map(|l| normalize(l)).collect(),
            tgt: tgt.iter().map(|l| normalize(l)).collect(),
        }
    }

    fn from_pairs(pairs: &[(String, String)]) -> Texts {
        let (src, tgt): (Vec<String>, Vec<String>) = pairs.iter().cloned().unzip();
        Texts::normalized(&src, &tgt)
    }
}

/// The corpus as read, before any vocabulary exists.
struct Corpus {
    description: String,
    train: Texts,
    valid: Texts,
    test: Option<Texts>,
}

impl Corpus {
    fn load(cfg: &DataConfig, base_dir: &Path) -> Result<Corpus, Error> {
        match cfg.corpus {
            CorpusKind::Dates => Ok(Corpus::dates(&cfg.dates)),
            CorpusKind::Parallel => Corpus::parallel(cfg, base_dir),
        }
    }

    fn dates(cfg: &DatesConfig) -> Corpus {
        let splits = dates::generate(cfg);
        Corpus {
            description: format!("dates (seed {})", cfg.seed),
            train: Texts::from_pairs(&splits.train),
            valid: Texts::from_pairs(&splits.valid),
            test: Some(Texts::from_pairs(&splits.test)),
        }
    }

    fn parallel(cfg: &DataConfig, base_dir: &Path) -> Result<Corpus, Error> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| base_dir.join(p));
        let read = |src: Option<PathBuf>, tgt: Option<PathBuf>| -> Result<Option<Texts>, Error> {
            match (src, tgt) {
                (Some(s), Some(t)) => {
                    let (src, tgt) = read_parallel(&s, &t)?;
                    Ok(Some(Texts::normalized(&src, &tgt)))
                }
                _ => Ok(None),
            }
        };
        let (train_src, train_tgt) = (path(&cfg.train_src), path(&cfg.train_tgt));
        let description = match (&train_src, &train_tgt) {
            (Some(s), Some(t)) => format!("parallel {} → {}", s.display(), t.display()),
            _ => "parallel".to_string(),
        };
        Ok(Corpus {
            description,
            train: read(train_src, train_tgt)?.unwrap_or_default(),
            valid: read(path(&cfg.valid_src), path(&cfg.valid_tgt))?.unwrap_or_default(),
            test: read(path(&cfg.test_src), path(&cfg.test_tgt))?,
        })
    }
}

/// Everything a run needs from the data side.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub src_vocab: Arc<Vocab>,
    pub tgt_vocab: Arc<Vocab>,
    pub train: Split,
    pub valid: Split,
    pub test: Option<Split>,
    pub summary: Summary,
}

impl Prepared {
    /// Reads (or generates) the corpora, loads the vocabularies from `run_dir` if
    /// present, else trains and saves them there (creating `run_dir`). Paths in
    /// `cfg` are relative to `base_dir`. Only the training split is filtered.
    pub fn prepare(cfg: &DataConfig, base_dir: &Path, run_dir: &Path) -> Result<Prepared, Error> {
        let start = Instant::now();
        cfg.validate()?;
        let corpus = Corpus::load(cfg, base_dir)?;
        let vocabs = Vocabs::load_or_train(cfg, &corpus.train, run_dir)?;
        let filter = Filter {
            max_len: cfg.max_len,
            max_ratio: cfg.max_ratio,
        };
        let (train, filtered) = encode(&vocabs, corpus.train, Some(filter));
        if train.is_empty() {
            return Err(Error::Config(format!(
                "no training pairs left after filtering ({} read)",
                filtered.total()
            )));
        }
        let (valid, _) = encode(&vocabs, corpus.valid, None);
        let test = corpus.test.map(|t| encode(&vocabs, t, None).0);
        let epoch0 = batches(&train.examples, cfg.batch_tokens, cfg.seed, 0);
        let summary = Summary {
            corpus: corpus.description,
            train_read: train.len() + filtered.total(),
            valid_read: valid.len(),
            test_read: test.as_ref().map(Split::len),
            filtered,
            max_len: cfg.max_len,
            max_ratio: cfg.max_ratio,
            tokenizer: cfg.tokenizer_kind(),
            joint_vocab: cfg.joint_vocab,
            src_vocab_size: vocabs.src.len(),
            tgt_vocab_size: vocabs.tgt.len(),
            vocab_files: vocabs.files,
            vocab_loaded: vocabs.loaded,
            src: SideStats::of(train.examples.iter().map(|e| e.src.len())),
            tgt: SideStats::of(train.examples.iter().map(|e| e.tgt.len())),
            valid_unk: count_unk(&valid.examples),
            batch_tokens: cfg.batch_tokens,
            batches_per_epoch: epoch0.len(),
            padding_fraction: padding_fraction(&epoch0),
            seconds: start.elapsed().as_secs_f64(),
        };
        Ok(Prepared {
            src_vocab: vocabs.src,
            tgt_vocab: vocabs.tgt,
            train,
            valid,
            test,
            summary,
        })
    }
}

/// The file names a run directory holds.
pub const JOINT_VOCAB_FILE: &str = "tokenizer.json";
pub const SRC_VOCAB_FILE: &str = "tokenizer.src.json";
pub const TGT_VOCAB_FILE: &str = "tokenizer.tgt.json";

struct Vocabs {
    src: Arc<Vocab>,
    tgt: Arc<Vocab>,
    files: Vec<PathBuf>,
    loaded: bool,
}

impl Vocabs {
    /// Loads what `run_dir` holds, or trains and saves. A run directory with the
    /// other layout (joint vs separate) is an error, never silently retrained.
    fn load_or_train(cfg: &DataConfig, train: &Texts, run_dir: &Path) -> Result<Vocabs, Error> {
        let joint = run_dir.join(JOINT_VOCAB_FILE);
        let (src, tgt) = (run_dir.join(SRC_VOCAB_FILE), run_dir.join(TGT_VOCAB_FILE));
        let (has_joint, has_src, has_tgt) = (joint.exists(), src.exists(), tgt.exists());
        let mismatch = |m: String| Err(Error::Config(format!("{}: {m}", run_dir.display())));
        if cfg.joint_vocab && (has_src || has_tgt) && !has_joint {
            return mismatch(format!(
                "holds separate vocabularies ({SRC_VOCAB_FILE}, {TGT_VOCAB_FILE}) but joint_vocab = true"
            ));
        }
        if !cfg.joint_vocab && has_joint && !(has_src || has_tgt) {
            return mismatch(format!(
                "holds a joint vocabulary ({JOINT_VOCAB_FILE}) but joint_vocab = false"
            ));
        }
        if !cfg.joint_vocab && has_src != has_tgt {
            let (present, absent) = if has_src { (&src, &tgt) } else { (&tgt, &src) };
            return mismatch(format!(
                "has {} but not {}",
                file_name(present),
                file_name(absent)
            ));
        }
        let check_split = |vocab: Vocab, path: &Path| -> Result<Vocab, Error> {
            if vocab.splits_punctuation() == cfg.split_punctuation {
                return Ok(vocab);
            }
            Err(Error::Config(format!(
                "{} was trained with split_punctuation = {} but data.split_punctuation = {}: \
                 use a fresh run directory (or set the key as the run had it)",
                path.display(),
                vocab.splits_punctuation(),
                cfg.split_punctuation
            )))
        };
        if cfg.joint_vocab && has_joint {
            let v = Arc::new(check_split(Vocab::load(&joint)?, &joint)?);
            return Ok(Vocabs::new(v.clone(), v, vec![joint], true));
        }
        if !cfg.joint_vocab && has_src {
            let s = check_split(Vocab::load(&src)?, &src)?;
            let t = check_split(Vocab::load(&tgt)?, &tgt)?;
            return Ok(Vocabs::new(Arc::new(s), Arc::new(t), vec![src, tgt], true));
        }
        Vocabs::train(cfg, train, run_dir)
    }

    fn train(cfg: &DataConfig, train: &Texts, run_dir: &Path) -> Result<Vocabs, Error> {
        let size = match cfg.tokenizer_kind() {
            TokenizerKind::Char => 0,
            _ => cfg.vocab_size,
        };
        std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, "cannot create", e))?;
        if cfg.joint_vocab {
            let both: Vec<&String> = train.src.iter().chain(&train.tgt).collect();
            let v = Arc::new(Vocab::train(&both, size, cfg.split_punctuation)?);
            let path = run_dir.join(JOINT_VOCAB_FILE);
            v.save(&path)?;
            return Ok(Vocabs::new(v.clone(), v, vec![path], false));
        }
        let s = Arc::new(Vocab::train(&train.src, size, cfg.split_punctuation)?);
        let t = Arc::new(Vocab::train(&train.tgt, size, cfg.split_punctuation)?);
        let (src, tgt) = (run_dir.join(SRC_VOCAB_FILE), run_dir.join(TGT_VOCAB_FILE));
        s.save(&src)?;
        t.save(&tgt)?;
        Ok(Vocabs::new(s, t, vec![src, tgt], false))
    }

    fn new(src: Arc<Vocab>, tgt: Arc<Vocab>, files: Vec<PathBuf>, loaded: bool) -> Vocabs {
        Vocabs {
            src,
            tgt,
            files,
            loaded,
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
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

/// Length statistics of one side of the training split (subwords, no BOS/EOS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SideStats {
    pub tokens: usize,
    pub mean_len: f64,
    pub max_len: usize,
}

impl SideStats {
    fn of(lengths: impl Iterator<Item = usize>) -> SideStats {
        let (mut n, mut tokens, mut max_len) = (0usize, 0usize, 0usize);
        for len in lengths {
            n += 1;
            tokens += len;
            max_len = max_len.max(len);
        }
        let mean_len = if n == 0 {
            0.0
        } else {
            tokens as f64 / n as f64
        };
        SideStats {
            tokens,
            mean_len,
            max_len,
        }
    }
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
    pub batch_tokens: usize,
    pub batches_per_epoch: usize,
    pub padding_fraction: f64,
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
        writeln!(
            f,
            "batches: {} per epoch at {} tokens, padding {:.1}%",
            self.batches_per_epoch,
            self.batch_tokens,
            100.0 * self.padding_fraction
        )?;
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
        assert_eq!(p.train.src_text[3], "some cat");
        assert_eq!(p.train.tgt_text[0], "eine katze");
        assert_eq!(p.valid.len(), 2, "valid is never filtered");
        assert_eq!(p.valid.src_text, vec!["", "the cat"]);
        assert!(p.test.is_none());
        assert!(run.join(JOINT_VOCAB_FILE).exists());
        assert!(Arc::ptr_eq(&p.src_vocab, &p.tgt_vocab));
        let shown = p.summary.to_string();
        assert!(shown.contains("train filtered: 3 (empty 1"), "{shown}");
        assert!(shown.contains("trained, saved to"), "{shown}");
        for (ex, text) in p.train.examples.iter().zip(&p.train.src_text) {
            assert_eq!(&p.src_vocab.decode(&ex.src), text);
        }
        // Second time round the vocabulary is loaded, and encodes identically.
        let again = Prepared::prepare(&parallel_cfg(), dir.path(), &run).unwrap();
        assert!(again.summary.vocab_loaded);
        assert_eq!(again.train.examples, p.train.examples);
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
        assert_eq!(
            err,
            "data config: no training pairs left after filtering (2 read)"
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

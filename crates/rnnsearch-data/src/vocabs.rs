//! The text and vocabularies that datasets are made from: the normalised parallel text, the
//! run's vocabularies (loaded from its directory, or trained there), and the length statistics
//! a dataset records. Both `prepare` and `dataset` build on these.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{DataConfig, TokenizerKind};
use crate::corpus::normalize;
use crate::{Error, Vocab};

/// Source and target lines, normalised, before encoding.
#[derive(Default)]
pub(crate) struct Texts {
    pub(crate) src: Vec<String>,
    pub(crate) tgt: Vec<String>,
}

impl Texts {
    pub(crate) fn normalized(src: &[String], tgt: &[String]) -> Texts {
        Texts {
            src: src.iter().map(|l| normalize(l)).collect(),
            tgt: tgt.iter().map(|l| normalize(l)).collect(),
        }
    }

    pub(crate) fn from_pairs(pairs: &[(String, String)]) -> Texts {
        let (src, tgt): (Vec<String>, Vec<String>) = pairs.iter().cloned().unzip();
        Texts::normalized(&src, &tgt)
    }
}

/// The file names a run directory holds.
pub const JOINT_VOCAB_FILE: &str = "tokenizer.json";
pub const SRC_VOCAB_FILE: &str = "tokenizer.src.json";
pub const TGT_VOCAB_FILE: &str = "tokenizer.tgt.json";

pub(crate) struct Vocabs {
    pub(crate) src: Arc<Vocab>,
    pub(crate) tgt: Arc<Vocab>,
    pub(crate) files: Vec<PathBuf>,
}

impl Vocabs {
    /// Loads what `run_dir` holds (`None` when it holds none). A run directory with the other
    /// layout (joint vs separate) is an error, never silently retrained.
    pub(crate) fn load(cfg: &DataConfig, run_dir: &Path) -> Result<Option<Vocabs>, Error> {
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
            return Ok(Some(Vocabs::new(v.clone(), v, vec![joint])));
        }
        if !cfg.joint_vocab && has_src {
            let s = check_split(Vocab::load(&src)?, &src)?;
            let t = check_split(Vocab::load(&tgt)?, &tgt)?;
            return Ok(Some(Vocabs::new(Arc::new(s), Arc::new(t), vec![src, tgt])));
        }
        Ok(None)
    }

    /// Trains the vocabularies on `train` and saves them in `run_dir`.
    pub(crate) fn train(cfg: &DataConfig, train: &Texts, run_dir: &Path) -> Result<Vocabs, Error> {
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
            return Ok(Vocabs::new(v.clone(), v, vec![path]));
        }
        let s = Arc::new(Vocab::train(&train.src, size, cfg.split_punctuation)?);
        let t = Arc::new(Vocab::train(&train.tgt, size, cfg.split_punctuation)?);
        let (src, tgt) = (run_dir.join(SRC_VOCAB_FILE), run_dir.join(TGT_VOCAB_FILE));
        s.save(&src)?;
        t.save(&tgt)?;
        Ok(Vocabs::new(s, t, vec![src, tgt]))
    }

    fn new(src: Arc<Vocab>, tgt: Arc<Vocab>, files: Vec<PathBuf>) -> Vocabs {
        Vocabs { src, tgt, files }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Length statistics of one side of the training split (subwords, no BOS/EOS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SideStats {
    pub tokens: usize,
    pub mean_len: f64,
    pub max_len: usize,
}

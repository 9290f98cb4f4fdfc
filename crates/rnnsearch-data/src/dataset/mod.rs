//! Prepared datasets: the training corpus encoded once, as flat arrays of token ids with
//! offsets on disk, memory-mapped by every run that trains on it.
//!
//! A dataset folder holds, for the training split and each side (`src`, `tgt`), `train.SIDE.ids`
//! (the ids of every kept pair one after another, little-endian u16 when the vocabularies fit,
//! else u32) and `train.SIDE.offsets` (little-endian u64, pair i spanning offsets i .. i + 1);
//! the normalised text of the small splits (`valid.src.txt`, …); the tokenizer files; and
//! `manifest.json`, written last ([`Manifest`]).
//!
//! A run never holds the training corpus in memory: batches are planned from the pairs'
//! lengths alone ([`Dataset::epoch`]) and their ids are read from the map when a batch is built.

mod manifest;
mod write;

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::{Advice, Mmap, UncheckedAdvice};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use manifest::{CorpusPart, InputFile, Manifest, MANIFEST_FILE};
pub use write::{write_dataset, WriteOptions};

use crate::batch::{epoch_rng, planned_padding, Batch, EpochPlan, Example};
use crate::corpus::read_lines;
use crate::Error;

/// One side of the training split, mapped.
struct Side {
    ids: Option<Mmap>,
    offsets: Mmap,
    id_bytes: usize,
}

/// Drops `map`'s pages from this process's resident set (they stay in the page cache, so the
/// next read costs no I/O): a batch reads a few rows scattered over the whole corpus, and
/// without this each would keep its pages, and those the kernel read ahead, counted in the
/// process's memory.
fn release(map: &Mmap) {
    // SAFETY: the maps are read-only views of files that are not written while mapped; after
    // MADV_DONTNEED a read maps the file's page again, with the same contents. No reference
    // into the map is held across the call (the callers have copied what they read).
    let _ = unsafe { map.unchecked_advise(UncheckedAdvice::DontNeed) };
}

/// Maps `path` read-only; `None` for an empty file (which cannot be mapped).
fn map(path: &Path) -> Result<Option<Mmap>, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, "cannot open", e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "cannot read", e))?
        .len();
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: the dataset's files are written once and only read afterwards; a file changed
    // under a running process is outside what rnnsearch supports (as for any mapped input).
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, "cannot map", e))?;
    // Rows are read in a random order: no read-ahead.
    let _ = map.advise(Advice::Random);
    Ok(Some(map))
}

impl Side {
    fn open(dir: &Path, side: &str, pairs: usize, id_bytes: usize) -> Result<Side, Error> {
        let (ids_path, offsets_path) = write::side_files(dir, side);
        let offsets = map(&offsets_path)?
            .ok_or_else(|| Error::Config(format!("{}: empty", offsets_path.display())))?;
        let ids = map(&ids_path)?;
        let side = Side {
            ids,
            offsets,
            id_bytes,
        };
        let broken = |what: String| {
            Error::Config(format!("{what}: the dataset is damaged; prepare it again"))
        };
        if side.offsets.len() != 8 * (pairs + 1) {
            return Err(broken(format!(
                "{} holds {} bytes, not the {} of {pairs} pairs",
                offsets_path.display(),
                side.offsets.len(),
                8 * (pairs + 1)
            )));
        }
        let tokens = side.offset(pairs);
        let id_len = side.ids.as_ref().map_or(0, |m| m.len());
        if id_len != tokens * id_bytes {
            return Err(broken(format!(
                "{} holds {id_len} bytes, not the {} of {tokens} ids",
                ids_path.display(),
                tokens * id_bytes
            )));
        }
        Ok(side)
    }

    fn release(&self) {
        release(&self.offsets);
        if let Some(ids) = &self.ids {
            release(ids);
        }
    }

    fn offset(&self, i: usize) -> usize {
        let bytes: [u8; 8] = self.offsets[8 * i..8 * i + 8].try_into().expect("8 bytes");
        u64::from_le_bytes(bytes) as usize
    }

    fn ids(&self, i: usize) -> Vec<u32> {
        let (start, end) = (self.offset(i), self.offset(i + 1));
        let Some(ids) = &self.ids else {
            return Vec::new();
        };
        let bytes = &ids[start * self.id_bytes..end * self.id_bytes];
        match self.id_bytes {
            2 => bytes
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as u32)
                .collect(),
            _ => bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        }
    }
}

/// A prepared dataset, its training split mapped from disk.
pub struct Dataset {
    pub dir: PathBuf,
    pub manifest: Manifest,
    src: Side,
    tgt: Side,
    /// Every pair's lengths in subwords, source and target as little-endian u16: batches are
    /// planned from these alone, without touching the ids or their offsets.
    lengths: Option<Mmap>,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("dir", &self.dir)
            .field("pairs", &self.len())
            .finish()
    }
}

impl Dataset {
    /// Opens the dataset in `dir`: reads its manifest and maps the training split.
    pub fn open(dir: &Path) -> Result<Dataset, Error> {
        let manifest = Manifest::read(dir)?;
        let pairs = manifest.train_pairs;
        let src = Side::open(dir, "src", pairs, manifest.id_bytes)?;
        let tgt = Side::open(dir, "tgt", pairs, manifest.id_bytes)?;
        let lengths_path = write::lengths_file(dir);
        let lengths = map(&lengths_path)?;
        let bytes = lengths.as_ref().map_or(0, |m| m.len());
        if bytes != 4 * pairs {
            return Err(Error::Config(format!(
                "{} holds {bytes} bytes, not the {} of {pairs} pairs: the dataset is damaged; \
                 prepare it again",
                lengths_path.display(),
                4 * pairs
            )));
        }
        Ok(Dataset {
            dir: dir.to_path_buf(),
            manifest,
            src,
            tgt,
            lengths,
        })
    }

    /// Training pairs.
    pub fn len(&self) -> usize {
        self.manifest.train_pairs
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pair `i`'s ids.
    pub fn example(&self, i: usize) -> Example {
        Example {
            src: self.src.ids(i),
            tgt: self.tgt.ids(i),
        }
    }

    /// The padded batch of pairs `indices`, in that order, read from the map.
    pub fn batch(&self, indices: &[u32]) -> Batch {
        // Each row's pages are let go a few rows later: the kernel maps a fault's neighbours
        // too (fault-around), so a whole batch's would add up.
        let mut rows = Vec::with_capacity(indices.len());
        for (n, &i) in indices.iter().enumerate() {
            rows.push(self.example(i as usize));
            if n % 8 == 7 || n + 1 == indices.len() {
                self.src.release();
                self.tgt.release();
            }
        }
        let mut batch = Batch::from_examples(&rows, (0..rows.len()).collect());
        batch.indices = indices.iter().map(|&i| i as usize).collect();
        batch
    }

    /// The pairs an epoch draws: every pair of a corpus of weight 1 once; a weight w draws
    /// each pair ⌊w⌋ times plus a random (w − ⌊w⌋) share of them, chosen anew from
    /// (`seed`, `epoch`).
    pub fn draws(&self, weights: &[f64], seed: u64, epoch: u64) -> Vec<u32> {
        let parts = &self.manifest.corpora;
        if weights.iter().all(|&w| w == 1.0) || weights.len() != parts.len() {
            return (0..self.len() as u32).collect();
        }
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&epoch.to_le_bytes());
        key[16..24].copy_from_slice(b"rnndraws");
        let mut rng = ChaCha8Rng::from_seed(key);
        let mut order = Vec::new();
        for (part, &weight) in parts.iter().zip(weights) {
            let range = part.start as u32..(part.start + part.kept) as u32;
            for _ in 0..weight.floor() as usize {
                order.extend(range.clone());
            }
            let share = ((weight - weight.floor()) * part.kept as f64).round() as usize;
            if share > 0 {
                let mut all: Vec<u32> = range.collect();
                let (chosen, _) = all.partial_shuffle(&mut rng, share);
                let mut chosen = chosen.to_vec();
                chosen.sort_unstable();
                order.extend(chosen);
            }
        }
        order
    }

    /// The epoch's batches as index groups, planned from the pairs' lengths as
    /// [`crate::batches`] plans them: deterministic in (`seed`, `epoch`) and the weights.
    pub fn epoch(&self, weights: &[f64], batch_tokens: usize, seed: u64, epoch: u64) -> EpochPlan {
        let mut rng = epoch_rng(seed, epoch);
        let order = self.draws(weights, seed, epoch);
        let plan = EpochPlan::new(order, |i| self.widths(i), batch_tokens, &mut rng);
        if let Some(lengths) = &self.lengths {
            release(lengths);
        }
        plan
    }

    /// The share of padding in `plan`'s batches, both sides.
    pub fn padding(&self, plan: &EpochPlan) -> f64 {
        let padding = planned_padding(plan.batches(), |i| self.widths(i));
        if let Some(lengths) = &self.lengths {
            release(lengths);
        }
        padding
    }

    /// Widths in a batch (subwords + 1) of pair `i`, source and target.
    pub fn widths(&self, i: u32) -> (usize, usize) {
        let Some(lengths) = &self.lengths else {
            return (1, 1);
        };
        let at = 4 * i as usize;
        let src = u16::from_le_bytes([lengths[at], lengths[at + 1]]);
        let tgt = u16::from_le_bytes([lengths[at + 2], lengths[at + 3]]);
        (src as usize + 1, tgt as usize + 1)
    }

    /// The normalised text of a small split (`valid` or `test`), sources and targets: `None`
    /// when the dataset has none.
    pub fn texts(&self, split: &str) -> Result<Option<[Vec<String>; 2]>, Error> {
        let (src, tgt) = (
            write::text_file(&self.dir, split, "src"),
            write::text_file(&self.dir, split, "tgt"),
        );
        if !src.exists() {
            return Ok(None);
        }
        Ok(Some([read_lines(&src)?, read_lines(&tgt)?]))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::{CorpusKind, DataConfig, Prepared, TokenizerKind, TrainCorpus, Vocab};

    fn write(dir: &Path, name: &str, text: &str) {
        fs::write(dir.join(name), text).unwrap();
    }

    /// `n` numbered pairs in `NAME.en` / `NAME.de`.
    fn corpus(dir: &Path, name: &str, n: usize) {
        let en: String = (0..n).map(|i| format!("the cat {i} sat\n")).collect();
        let de: String = (0..n).map(|i| format!("die katze {i} sass\n")).collect();
        write(dir, &format!("{name}.en"), &en);
        write(dir, &format!("{name}.de"), &de);
    }

    fn config(dir: &Path) -> DataConfig {
        corpus(dir, "train", 300);
        corpus(dir, "valid", 5);
        DataConfig {
            corpus: CorpusKind::Parallel,
            train_src: Some("train.en".into()),
            train_tgt: Some("train.de".into()),
            valid_src: Some("valid.en".into()),
            valid_tgt: Some("valid.de".into()),
            tokenizer: TokenizerKind::Bpe,
            vocab_size: 60,
            ..DataConfig::default()
        }
    }

    fn write_to(cfg: &DataConfig, base: &Path, out: &Path, force: bool) -> Result<Manifest, Error> {
        let options = WriteOptions {
            force,
            vocab_dir: None,
        };
        write_dataset(cfg, base, out, &options)
    }

    #[test]
    fn ids_read_back_to_the_same_text() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let out = dir.path().join("data");
        let manifest = write_to(&cfg, dir.path(), &out, false).unwrap();
        assert_eq!((manifest.train_pairs, manifest.id_bytes), (300, 2));
        let dataset = Dataset::open(&out).unwrap();
        let vocab = Vocab::load(&out.join(crate::JOINT_VOCAB_FILE)).unwrap();
        for i in [0, 1, 150, 299] {
            let ex = dataset.example(i);
            assert_eq!(vocab.decode(&ex.src), format!("the cat {i} sat"));
            assert_eq!(vocab.decode(&ex.tgt), format!("die katze {i} sass"));
            assert_eq!(
                dataset.widths(i as u32),
                (ex.src.len() + 1, ex.tgt.len() + 1)
            );
        }
        let batch = dataset.batch(&[7, 3]);
        assert_eq!(batch.indices, vec![7, 3]);
        assert_eq!(batch.src_lengths[0], dataset.example(7).src.len() + 1);
        let [src, tgt] = dataset.texts("valid").unwrap().unwrap();
        assert_eq!(
            (src[4].as_str(), tgt[0].as_str()),
            ("the cat 4 sat", "die katze 0 sass")
        );
        assert!(dataset.texts("test").unwrap().is_none());
    }

    /// An epoch planned from the map is the one `batches` plans over the same examples.
    #[test]
    fn planned_epochs_equal_in_memory_batches() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let out = dir.path().join("data");
        write_to(&cfg, dir.path(), &out, false).unwrap();
        let dataset = Dataset::open(&out).unwrap();
        let examples: Vec<Example> = (0..dataset.len()).map(|i| dataset.example(i)).collect();
        for epoch in 0..3 {
            let planned: Vec<Batch> = dataset
                .epoch(&[1.0], 200, 5, epoch)
                .batches()
                .map(|g| dataset.batch(g))
                .collect();
            assert_eq!(planned, crate::batches(&examples, 200, 5, epoch));
        }
    }

    #[test]
    fn an_existing_folder_needs_force_and_a_failed_prepare_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let out = dir.path().join("data");
        write_to(&cfg, dir.path(), &out, false).unwrap();
        let err = write_to(&cfg, dir.path(), &out, false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "data config: {}: already exists; pass --force to replace it, or choose another \
                 folder",
                out.display()
            )
        );
        // A corpus with a bad byte on its last line: the error names it, the old dataset stays
        // whole, and no partial folder is left.
        let mut bad = fs::read(dir.path().join("train.de")).unwrap();
        bad.extend_from_slice(b"\xff\n");
        fs::write(dir.path().join("train.de"), bad).unwrap();
        write(
            dir.path(),
            "train.en",
            &(fs::read_to_string(dir.path().join("train.en")).unwrap() + "x\n"),
        );
        let err = write_to(&cfg, dir.path(), &out, true)
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("train.de: line 301: invalid UTF-8"), "{err}");
        assert!(
            Dataset::open(&out).is_ok(),
            "the earlier dataset is untouched"
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty());
        // A folder that a prepare never finished is not a dataset.
        let unfinished = dir.path().join("unfinished");
        fs::create_dir(&unfinished).unwrap();
        let err = Dataset::open(&unfinished).unwrap_err().to_string();
        assert!(err.contains("not a prepared dataset"), "{err}");
    }

    #[test]
    fn line_counts_that_differ_name_both_files_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        write(dir.path(), "train.de", "eins\nzwei\n");
        let err = write_to(&cfg, dir.path(), &dir.path().join("d"), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("train.en has 300 lines but"), "{err}");
        assert!(err.contains("train.de has 2"), "{err}");
    }

    #[test]
    fn a_dataset_of_another_config_or_changed_inputs_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let out = dir.path().join("data");
        write_to(&cfg, dir.path(), &out, false).unwrap();
        let run = dir.path().join("run");
        // batching and seeds may differ: the same dataset serves the run
        let mut other_run = cfg.clone();
        other_run.batch_tokens = 999;
        other_run.seed = 7;
        other_run.prepared = Some("data".into());
        Prepared::prepare(&other_run, dir.path(), &run).unwrap();
        let mut bigger = other_run.clone();
        bigger.vocab_size = 80;
        let err = Prepared::prepare(&bigger, dir.path(), &run)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data.vocab_size is 60 in the dataset but 80 in the config"),
            "{err}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        corpus(dir.path(), "train", 301);
        let err = Prepared::prepare(&other_run, dir.path(), &run)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train.en changed since the dataset was made"),
            "{err}"
        );
    }

    /// Weight 2 draws every pair of its corpus twice an epoch; weight 0.5 half of them, a
    /// different half each epoch, so each pair about every other epoch.
    #[test]
    fn corpus_weights_set_how_often_pairs_are_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        corpus(dir.path(), "extra", 200);
        cfg.train_src = None;
        cfg.train_tgt = None;
        cfg.train = vec![
            TrainCorpus {
                src: "train.en".into(),
                tgt: "train.de".into(),
                weight: 2.0,
            },
            TrainCorpus {
                src: "extra.en".into(),
                tgt: "extra.de".into(),
                weight: 0.5,
            },
        ];
        let out = dir.path().join("data");
        let manifest = write_to(&cfg, dir.path(), &out, false).unwrap();
        assert_eq!(manifest.corpora.len(), 2);
        assert_eq!(
            (manifest.corpora[1].start, manifest.corpora[1].kept),
            (300, 200)
        );
        let dataset = Dataset::open(&out).unwrap();
        let weights = [2.0, 0.5];
        let epochs = 40;
        let mut counts = vec![0usize; 500];
        for epoch in 0..epochs {
            let drawn = dataset.draws(&weights, 1, epoch);
            assert_eq!(drawn.len(), 600 + 100);
            for i in drawn {
                counts[i as usize] += 1;
            }
            let planned: usize = dataset
                .epoch(&weights, 300, 1, epoch)
                .batches()
                .map(<[u32]>::len)
                .sum();
            assert_eq!(planned, 700);
        }
        assert!(counts[..300].iter().all(|&c| c == 2 * epochs as usize));
        let mean = counts[300..].iter().sum::<usize>() as f64 / 200.0;
        assert_eq!(mean, 20.0);
        assert!(
            counts[300..].iter().all(|&c| (8..=32).contains(&c)),
            "{:?}",
            &counts[300..]
        );
        assert_ne!(dataset.draws(&weights, 1, 0), dataset.draws(&weights, 1, 1));
    }
}

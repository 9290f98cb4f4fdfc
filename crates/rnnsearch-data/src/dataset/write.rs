//! Making a dataset: the corpora are read as streams, twice at most (a reservoir sample for the
//! BPE vocabulary, then the encoding), encoded a chunk at a time, and written as flat id arrays
//! with offsets, into a temporary folder that is renamed into place only once it is complete.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::manifest::{CorpusPart, InputFile, Manifest, FORMAT, MANIFEST_FILE, VERSION};
use crate::config::{CorpusKind, DataConfig};
use crate::corpus::{normalize, read_parallel, Filter, FilterCounts, LineReader};
use crate::dates;
use crate::vocabs::{SideStats, Texts, Vocabs};
use crate::{Error, Vocab};

/// Pairs encoded at a time: large enough for `tokenizers`' parallel batch encoding, small enough
/// that memory does not grow with the corpus.
const CHUNK: usize = 1 << 15;

/// The training corpus file names of a dataset, per side (`src`, `tgt`): ids and offsets.
pub(crate) fn side_files(dir: &Path, side: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("train.{side}.ids")),
        dir.join(format!("train.{side}.offsets")),
    )
}

/// Every training pair's lengths in subwords, source and target, as little-endian u16.
pub(crate) fn lengths_file(dir: &Path) -> PathBuf {
    dir.join("train.lengths")
}

/// The normalised text of a small split (`valid`, `test`), per side.
pub(crate) fn text_file(dir: &Path, split: &str, side: &str) -> PathBuf {
    dir.join(format!("{split}.{side}.txt"))
}

/// Where a corpus's pairs come from.
enum Source {
    Files { src: PathBuf, tgt: PathBuf },
    Memory(Vec<(String, String)>),
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::Files { src, tgt } => format!("{} → {}", src.display(), tgt.display()),
            Source::Memory(_) => "dates".into(),
        }
    }

    /// Calls `f` with every pair, normalised, in order; returns how many were read. Files of
    /// different lengths are an error that names both files and both counts.
    fn for_each(
        &self,
        mut f: impl FnMut(String, String) -> Result<(), Error>,
    ) -> Result<usize, Error> {
        match self {
            Source::Memory(pairs) => {
                for (s, t) in pairs {
                    f(normalize(s), normalize(t))?;
                }
                Ok(pairs.len())
            }
            Source::Files { src, tgt } => {
                let (mut a, mut b) = (LineReader::open(src)?, LineReader::open(tgt)?);
                let mut n = 0;
                loop {
                    match (a.next_line()?, b.next_line()?) {
                        (Some(s), Some(t)) => f(normalize(&s), normalize(&t))?,
                        (None, None) => return Ok(n),
                        (s, _) => {
                            let mut longer = if s.is_some() { a } else { b };
                            let mut rest = 1;
                            while longer.next_line()?.is_some() {
                                rest += 1;
                            }
                            let (src_lines, tgt_lines) = if s.is_some() {
                                (n + rest, n)
                            } else {
                                (n, n + rest)
                            };
                            return Err(Error::LineCount {
                                src: src.clone(),
                                src_lines,
                                tgt: tgt.clone(),
                                tgt_lines,
                            });
                        }
                    }
                    n += 1;
                }
            }
        }
    }
}

/// One side's ids and offsets, written as they come.
struct SideWriter {
    ids: BufWriter<File>,
    offsets: BufWriter<File>,
    paths: (PathBuf, PathBuf),
    id_bytes: usize,
    written: u64,
    count: usize,
    max_len: usize,
}

impl SideWriter {
    fn create(dir: &Path, side: &str, id_bytes: usize) -> Result<SideWriter, Error> {
        let paths = side_files(dir, side);
        let open = |p: &Path| {
            File::create(p)
                .map(|f| BufWriter::with_capacity(1 << 20, f))
                .map_err(|e| Error::io(p, "cannot create", e))
        };
        let mut writer = SideWriter {
            ids: open(&paths.0)?,
            offsets: open(&paths.1)?,
            paths,
            id_bytes,
            written: 0,
            count: 0,
            max_len: 0,
        };
        writer.write_offset()?;
        Ok(writer)
    }

    fn write_offset(&mut self) -> Result<(), Error> {
        let path = &self.paths.1;
        self.offsets
            .write_all(&self.written.to_le_bytes())
            .map_err(|e| Error::io(path, "cannot write", e))
    }

    fn push(&mut self, ids: &[u32]) -> Result<(), Error> {
        let path = &self.paths.0;
        for &id in ids {
            let written = match self.id_bytes {
                2 => self.ids.write_all(&(id as u16).to_le_bytes()),
                _ => self.ids.write_all(&id.to_le_bytes()),
            };
            written.map_err(|e| Error::io(path, "cannot write", e))?;
        }
        self.written += ids.len() as u64;
        self.count += 1;
        self.max_len = self.max_len.max(ids.len());
        self.write_offset()
    }

    /// Flushes both files to disk; the side's length statistics.
    fn finish(self) -> Result<SideStats, Error> {
        for (writer, path) in [(self.ids, &self.paths.0), (self.offsets, &self.paths.1)] {
            let file = writer
                .into_inner()
                .map_err(|e| Error::io(path, "cannot write", e.into_error()))?;
            file.sync_all()
                .map_err(|e| Error::io(path, "cannot write", e))?;
        }
        let tokens = self.written as usize;
        Ok(SideStats {
            tokens,
            mean_len: if self.count == 0 {
                0.0
            } else {
                tokens as f64 / self.count as f64
            },
            max_len: self.max_len,
        })
    }
}

/// Encodes pairs a chunk at a time, filters them and writes the kept ones.
struct Encoder<'a> {
    vocabs: &'a Vocabs,
    filter: Filter,
    src: SideWriter,
    tgt: SideWriter,
    lengths: BufWriter<File>,
    lengths_path: PathBuf,
    chunk: (Vec<String>, Vec<String>),
    counts: FilterCounts,
    kept: usize,
}

impl Encoder<'_> {
    fn add(&mut self, src: String, tgt: String) -> Result<(), Error> {
        self.chunk.0.push(src);
        self.chunk.1.push(tgt);
        if self.chunk.0.len() == CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        let src_ids = self.vocabs.src.encode_batch(&self.chunk.0);
        let tgt_ids = self.vocabs.tgt.encode_batch(&self.chunk.1);
        for (s, t) in src_ids.iter().zip(&tgt_ids) {
            match self.filter.check(s.len(), t.len()) {
                Some(reason) => self.counts.add(reason),
                None => {
                    self.src.push(s)?;
                    self.tgt.push(t)?;
                    let mut both = [0u8; 4];
                    both[..2].copy_from_slice(&(s.len() as u16).to_le_bytes());
                    both[2..].copy_from_slice(&(t.len() as u16).to_le_bytes());
                    let path = &self.lengths_path;
                    self.lengths
                        .write_all(&both)
                        .map_err(|e| Error::io(path, "cannot write", e))?;
                    self.kept += 1;
                }
            }
        }
        self.chunk.0.clear();
        self.chunk.1.clear();
        Ok(())
    }
}

/// A uniform sample of at most `capacity` pairs of a stream (Vitter's algorithm R): the first
/// `capacity` pairs in order when the stream is no longer.
struct Reservoir {
    capacity: usize,
    seen: usize,
    pairs: Texts,
    rng: ChaCha8Rng,
}

impl Reservoir {
    fn offer(&mut self, src: String, tgt: String) {
        self.seen += 1;
        if self.pairs.src.len() < self.capacity {
            self.pairs.src.push(src);
            self.pairs.tgt.push(tgt);
            return;
        }
        let j = self.rng.random_range(0..self.seen);
        if j < self.capacity {
            self.pairs.src[j] = src;
            self.pairs.tgt[j] = tgt;
        }
    }
}

/// Options of [`write_dataset`].
pub struct WriteOptions<'a> {
    /// Replace a dataset that is already at the output folder.
    pub force: bool,
    /// Where the vocabularies live: loaded from there when present, else trained and saved
    /// there too (a run directory); `None` trains them into the dataset alone.
    pub vocab_dir: Option<&'a Path>,
}

/// Reads `cfg`'s corpora (paths relative to `base_dir`) and writes the dataset folder `out`.
///
/// Everything is written under a temporary name beside `out` and renamed at the end, so an
/// interrupted run, a full disk or an error leaves nothing that looks like a dataset.
pub fn write_dataset(
    cfg: &DataConfig,
    base_dir: &Path,
    out: &Path,
    options: &WriteOptions,
) -> Result<Manifest, Error> {
    let started = Instant::now();
    cfg.validate()?;
    if out.exists() && !options.force {
        return Err(Error::Config(format!(
            "{}: already exists; pass --force to replace it, or choose another folder",
            out.display()
        )));
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| Error::io(parent, "cannot create", e))?;
    let partial = parent.join(format!(".{name}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(|e| Error::io(&partial, "cannot remove", e))?;
    }
    fs::create_dir(&partial).map_err(|e| Error::io(&partial, "cannot create", e))?;
    let result = write_into(cfg, base_dir, &partial, options, started);
    let manifest = match result {
        Ok(manifest) => manifest,
        Err(e) => {
            let _ = fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    if out.exists() {
        let old = parent.join(format!(".{name}.old"));
        let _ = fs::remove_dir_all(&old);
        fs::rename(out, &old).map_err(|e| Error::io(out, "cannot replace", e))?;
        fs::rename(&partial, out).map_err(|e| Error::io(out, "cannot create", e))?;
        let _ = fs::remove_dir_all(&old);
    } else {
        fs::rename(&partial, out).map_err(|e| Error::io(out, "cannot create", e))?;
    }
    Ok(manifest)
}

fn write_into(
    cfg: &DataConfig,
    base_dir: &Path,
    dir: &Path,
    options: &WriteOptions,
    started: Instant,
) -> Result<Manifest, Error> {
    let resolve = |p: &Path| base_dir.join(p);
    let mut inputs = Vec::new();
    let (sources, valid, test) = match cfg.corpus {
        CorpusKind::Dates => {
            let splits = dates::generate(&cfg.dates);
            (
                vec![Source::Memory(splits.train)],
                Texts::from_pairs(&splits.valid),
                Some(Texts::from_pairs(&splits.test)),
            )
        }
        CorpusKind::Parallel => {
            let mut sources = Vec::new();
            for corpus in cfg.train_corpora() {
                let (src, tgt) = (resolve(&corpus.src), resolve(&corpus.tgt));
                inputs.push(InputFile::of(&src)?);
                inputs.push(InputFile::of(&tgt)?);
                sources.push(Source::Files { src, tgt });
            }
            let mut small = |s: &Option<PathBuf>, t: &Option<PathBuf>| -> Result<_, Error> {
                match (s, t) {
                    (Some(s), Some(t)) => {
                        let (s, t) = (resolve(s), resolve(t));
                        inputs.push(InputFile::of(&s)?);
                        inputs.push(InputFile::of(&t)?);
                        let (src, tgt) = read_parallel(&s, &t)?;
                        Ok(Some(Texts::normalized(&src, &tgt)))
                    }
                    _ => Ok(None),
                }
            };
            let valid = small(&cfg.valid_src, &cfg.valid_tgt)?.unwrap_or_default();
            let test = small(&cfg.test_src, &cfg.test_tgt)?;
            (sources, valid, test)
        }
    };

    let vocab_started = Instant::now();
    let loaded = match options.vocab_dir {
        Some(run_dir) => Vocabs::load(cfg, run_dir)?,
        None => None,
    };
    let vocabs = match loaded {
        Some(vocabs) => vocabs,
        None => {
            let mut reservoir = Reservoir {
                capacity: cfg.vocab_sample,
                seen: 0,
                pairs: Texts::default(),
                rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x7265_7365_7276_6f69),
            };
            for source in &sources {
                source.for_each(|s, t| {
                    reservoir.offer(s, t);
                    Ok(())
                })?;
            }
            Vocabs::train(cfg, &reservoir.pairs, options.vocab_dir.unwrap_or(dir))?
        }
    };
    let mut vocab_files = Vec::new();
    for file in &vocabs.files {
        let name = file.file_name().expect("a file name");
        let copy = dir.join(name);
        if *file != copy {
            fs::copy(file, &copy).map_err(|e| Error::io(&copy, "cannot write", e))?;
        }
        vocab_files.push(name.to_string_lossy().into_owned());
    }

    let vocab_seconds = vocab_started.elapsed().as_secs_f64();
    let encode_started = Instant::now();
    let id_bytes = if vocabs.src.len().max(vocabs.tgt.len()) <= 1 << 16 {
        2
    } else {
        4
    };
    let mut encoder = Encoder {
        vocabs: &vocabs,
        filter: Filter {
            max_len: cfg.max_len,
            max_ratio: cfg.max_ratio,
        },
        src: SideWriter::create(dir, "src", id_bytes)?,
        tgt: SideWriter::create(dir, "tgt", id_bytes)?,
        lengths: BufWriter::new(
            File::create(lengths_file(dir))
                .map_err(|e| Error::io(&lengths_file(dir), "cannot create", e))?,
        ),
        lengths_path: lengths_file(dir),
        chunk: (Vec::with_capacity(CHUNK), Vec::with_capacity(CHUNK)),
        counts: FilterCounts::default(),
        kept: 0,
    };
    let mut corpora = Vec::new();
    for source in &sources {
        let (start, before) = (encoder.kept, encoder.counts);
        let read = source.for_each(|s, t| encoder.add(s, t))?;
        encoder.flush()?;
        let c = encoder.counts;
        corpora.push(CorpusPart {
            name: source.name(),
            read,
            filtered: FilterCounts {
                empty: c.empty - before.empty,
                too_long: c.too_long - before.too_long,
                ratio: c.ratio - before.ratio,
            },
            start,
            kept: encoder.kept - start,
        });
    }
    let Encoder {
        src,
        tgt,
        lengths,
        lengths_path,
        counts,
        kept,
        ..
    } = encoder;
    let (src_stats, tgt_stats) = (src.finish()?, tgt.finish()?);
    lengths
        .into_inner()
        .map_err(|e| Error::io(&lengths_path, "cannot write", e.into_error()))?
        .sync_all()
        .map_err(|e| Error::io(&lengths_path, "cannot write", e))?;
    let encode_seconds = encode_started.elapsed().as_secs_f64();
    if kept == 0 {
        return Err(Error::Config(format!(
            "no training pairs left after filtering ({} read: {} empty, {} over max_len = {}, \
             {} over max_ratio = {})",
            counts.total(),
            counts.empty,
            counts.too_long,
            cfg.max_len,
            counts.ratio,
            cfg.max_ratio
        )));
    }
    for (name, texts) in [("valid", Some(&valid)), ("test", test.as_ref())] {
        if let Some(texts) = texts {
            write_lines(&text_file(dir, name, "src"), &texts.src)?;
            write_lines(&text_file(dir, name, "tgt"), &texts.tgt)?;
        }
    }
    let unk = |ids: Vec<Vec<u32>>| -> usize {
        ids.iter()
            .map(|s| s.iter().filter(|&&id| id == Vocab::UNK).count())
            .sum()
    };
    let valid_unk =
        unk(vocabs.src.encode_batch(&valid.src)) + unk(vocabs.tgt.encode_batch(&valid.tgt));
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        rnnsearch_version: env!("CARGO_PKG_VERSION").into(),
        data: cfg.dataset_key(),
        inputs,
        id_bytes,
        corpora,
        train_pairs: kept,
        valid_pairs: valid.src.len(),
        test_pairs: test.as_ref().map(|t| t.src.len()),
        filtered: counts,
        vocab_files,
        src_vocab_size: vocabs.src.len(),
        tgt_vocab_size: vocabs.tgt.len(),
        src: src_stats,
        tgt: tgt_stats,
        valid_unk,
        seconds: started.elapsed().as_secs_f64(),
        vocab_seconds,
        encode_seconds,
    };
    let path = dir.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&manifest).expect("serialisable");
    write_synced(&path, text.as_bytes())?;
    Ok(manifest)
}

/// `lines`, one per line, synced to disk.
fn write_lines(path: &Path, lines: &[String]) -> Result<(), Error> {
    let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    write_synced(path, text.as_bytes())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut file = File::create(path).map_err(|e| Error::io(path, "cannot create", e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(path, "cannot write", e))
}

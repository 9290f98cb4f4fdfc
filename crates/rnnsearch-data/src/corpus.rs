//! Reading line-aligned corpora, normalising text and the training-set filters.
//!
//! Everything here is loud: a wrong line count, a bad byte or an unreadable file
//! is an error that names the file (and line), and every filtered pair is counted
//! by reason so the summary can report it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use tokenizers::NormalizedString;

use crate::Error;

/// The two bytes every gzip stream starts with. They can never begin valid UTF-8
/// text (0x8b is a continuation byte), so sniffing them is safe.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads all lines of a plain or gzip-compressed UTF-8 file; `-` reads stdin.
///
/// Compression is detected by a `.gz` extension or by the gzip magic bytes.
/// Line terminators (`\n`, `\r\n`) and a leading byte-order mark are removed;
/// nothing else is changed (see [`normalize`]). Invalid UTF-8 is an error that
/// names the file and the 1-based line number.
pub fn read_lines(path: &Path) -> Result<Vec<String>, Error> {
    let mut reader = LineReader::open(path)?;
    let mut lines = Vec::new();
    while let Some(line) = reader.next_line()? {
        lines.push(line);
    }
    Ok(lines)
}

/// Reads a line-aligned pair of files, failing if their line counts differ.
pub fn read_parallel(src: &Path, tgt: &Path) -> Result<(Vec<String>, Vec<String>), Error> {
    let src_lines = read_lines(src)?;
    let tgt_lines = read_lines(tgt)?;
    if src_lines.len() != tgt_lines.len() {
        return Err(Error::LineCount {
            src: src.to_path_buf(),
            src_lines: src_lines.len(),
            tgt: tgt.to_path_buf(),
            tgt_lines: tgt_lines.len(),
        });
    }
    Ok((src_lines, tgt_lines))
}

/// Opens `path` (or stdin for `-`) as a buffered reader, decompressing gzip.
fn open(path: &Path) -> Result<Box<dyn BufRead + Send>, Error> {
    let raw: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(|e| Error::io(path, "cannot open", e))?)
    };
    let mut buffered = BufReader::with_capacity(1 << 16, raw);
    let head = buffered
        .fill_buf()
        .map_err(|e| Error::io(path, "cannot read", e))?;
    let gz_name = path.extension().is_some_and(|ext| ext == "gz");
    if gz_name || head.starts_with(&GZIP_MAGIC) {
        let decoder = MultiGzDecoder::new(buffered);
        Ok(Box::new(BufReader::with_capacity(1 << 16, decoder)))
    } else {
        Ok(Box::new(buffered))
    }
}

/// Lines of a text stream one at a time, as [`read_lines`] reads them (a final newline ends
/// the last line, `\r\n` counts as `\n`, a leading byte-order mark is dropped): for input
/// that arrives while it is being translated.
pub struct LineReader {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    read: usize,
}

impl LineReader {
    /// Reads `path` (or stdin for `-`) line by line.
    pub fn open(path: &Path) -> Result<Self, Error> {
        Ok(LineReader {
            path: path.to_path_buf(),
            reader: open(path)?,
            read: 0,
        })
    }

    /// The next line, or `None` at the end; invalid UTF-8 names the file and line.
    pub fn next_line(&mut self) -> Result<Option<String>, Error> {
        let mut buf = Vec::with_capacity(256);
        let n = self
            .reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(&self.path, "cannot read", e))?;
        if n == 0 {
            return Ok(None);
        }
        strip_terminator(&mut buf);
        if self.read == 0 && buf.starts_with("\u{feff}".as_bytes()) {
            buf.drain(..3);
        }
        self.read += 1;
        String::from_utf8(buf).map(Some).map_err(|_| Error::Utf8 {
            path: self.path.clone(),
            line: self.read,
        })
    }
}

fn strip_terminator(buf: &mut Vec<u8>) {
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
}

/// Normalises one line: Unicode NFC, trimmed, every run of whitespace collapsed
/// to a single space.
///
/// NFC is part of this (not only of the tokenizer) so that the normalised line
/// is exactly what decoding its subwords gives back; the round trip is then an
/// identity on normalised text. ASCII lines skip the NFC pass.
pub fn normalize(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for word in line.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_ascii() {
        return out;
    }
    let mut normalized = NormalizedString::from(out.as_str());
    normalized.nfc();
    normalized.get().to_string()
}

/// Why a training pair was left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterReason {
    /// One side has no tokens.
    Empty,
    /// One side has more than `max_len` subwords.
    TooLong,
    /// longer / shorter (in subwords) exceeds `max_ratio`.
    Ratio,
}

/// Training-filter settings (the `max_len` / `max_ratio` of the data config).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Filter {
    pub max_len: usize,
    pub max_ratio: f64,
}

impl Filter {
    /// The reason a pair of subword sequences is filtered, or `None` to keep it.
    /// Reasons are checked in the order empty, too long, ratio; a pair is counted
    /// once, under the first that applies.
    pub fn check(&self, src_len: usize, tgt_len: usize) -> Option<FilterReason> {
        let (short, long) = (src_len.min(tgt_len), src_len.max(tgt_len));
        if short == 0 {
            Some(FilterReason::Empty)
        } else if long > self.max_len {
            Some(FilterReason::TooLong)
        } else if long as f64 / short as f64 > self.max_ratio {
            Some(FilterReason::Ratio)
        } else {
            None
        }
    }
}

/// How many training pairs each filter removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterCounts {
    pub empty: usize,
    pub too_long: usize,
    pub ratio: usize,
}

impl FilterCounts {
    pub fn add(&mut self, reason: FilterReason) {
        match reason {
            FilterReason::Empty => self.empty += 1,
            FilterReason::TooLong => self.too_long += 1,
            FilterReason::Ratio => self.ratio += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.empty + self.too_long + self.ratio
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn reads_plain_and_gzip_alike() {
        let dir = tempfile::tempdir().unwrap();
        let text = "\u{feff}a b\r\n\nc  d\nlast";
        let plain = write(dir.path(), "x.en", text.as_bytes());
        let gz = write(dir.path(), "x.en.gz", &gzip(text.as_bytes()));
        let sniffed = write(dir.path(), "x.compressed", &gzip(text.as_bytes()));
        let want = vec!["a b", "", "c  d", "last"];
        assert_eq!(read_lines(&plain).unwrap(), want);
        assert_eq!(read_lines(&gz).unwrap(), want);
        assert_eq!(read_lines(&sniffed).unwrap(), want);
    }

    #[test]
    fn empty_file_has_no_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "empty.en", b"");
        assert!(read_lines(&path).unwrap().is_empty());
    }

    #[test]
    fn invalid_utf8_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "bad.en", b"ok\nfine\nbro\xffken\n");
        let err = read_lines(&path).unwrap_err().to_string();
        assert_eq!(err, format!("{}: line 3: invalid UTF-8", path.display()));
        let gz = write(dir.path(), "bad.en.gz", &gzip(b"\xc3\n"));
        let err = read_lines(&gz).unwrap_err().to_string();
        assert_eq!(err, format!("{}: line 1: invalid UTF-8", gz.display()));
    }

    #[test]
    fn missing_file_is_named() {
        let err = read_lines(Path::new("/nonexistent/x.en"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/nonexistent/x.en: cannot open: "), "{err}");
    }

    #[test]
    fn corrupt_gzip_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = gzip("hello world\n".repeat(100).as_bytes());
        let n = bytes.len();
        bytes.truncate(n / 2);
        let path = write(dir.path(), "cut.en.gz", &bytes);
        let err = read_lines(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: cannot read: ", path.display())),
            "{err}"
        );
        let fake = write(dir.path(), "plain.gz", b"not gzip\n");
        let err = read_lines(&fake).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: cannot read: ", fake.display())),
            "{err}"
        );
    }

    #[test]
    fn line_count_mismatch_names_both_files_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let src = write(dir.path(), "t.en", b"a\nb\nc\n");
        let tgt = write(dir.path(), "t.de", b"a\nb\n");
        let err = read_parallel(&src, &tgt).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{} has 3 lines but {} has 2: parallel files must be line-aligned",
                src.display(),
                tgt.display()
            )
        );
    }

    #[test]
    fn normalize_trims_collapses_and_composes() {
        assert_eq!(normalize("  a \t b\u{a0}\u{2009}c  "), "a b c");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize(" \t "), "");
        // "e" + combining acute -> precomposed "é".
        assert_eq!(normalize("caf\u{65}\u{301}  x"), "caf\u{e9} x");
        assert_eq!(normalize("Straße"), "Straße");
    }

    #[test]
    fn filter_reasons_in_order() {
        let f = Filter {
            max_len: 5,
            max_ratio: 2.0,
        };
        assert_eq!(f.check(0, 3), Some(FilterReason::Empty));
        assert_eq!(f.check(3, 0), Some(FilterReason::Empty));
        assert_eq!(f.check(6, 4), Some(FilterReason::TooLong));
        assert_eq!(f.check(1, 6), Some(FilterReason::TooLong));
        assert_eq!(f.check(1, 3), Some(FilterReason::Ratio));
        assert_eq!(f.check(2, 4), None);
        assert_eq!(f.check(5, 5), None);
        let mut counts = FilterCounts::default();
        for reason in [
            FilterReason::Empty,
            FilterReason::Ratio,
            FilterReason::Ratio,
        ] {
            counts.add(reason);
        }
        assert_eq!((counts.empty, counts.too_long, counts.ratio), (1, 0, 2));
        assert_eq!(counts.total(), 3);
    }
}

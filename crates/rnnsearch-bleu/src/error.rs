//! The typed error of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading or scoring streams.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file (or stdin, shown as `-`) could not be opened or read.
    #[error("reading {}", path.display())]
    Read {
        /// The file that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A line is not valid UTF-8.
    #[error("reading {}: line {line} is not valid UTF-8", path.display())]
    InvalidUtf8 {
        /// The file holding the line.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },

    /// The hypothesis stream and a reference stream differ in length.
    #[error("line counts differ: {hyp} has {hyp_lines} lines, {reference} has {ref_lines}")]
    LineCountMismatch {
        /// What the hypotheses are (a file name, or "hypotheses").
        hyp: String,
        /// Number of hypothesis lines.
        hyp_lines: usize,
        /// What the reference stream is (a file name, or "reference stream N").
        reference: String,
        /// Number of lines in that reference stream.
        ref_lines: usize,
    },

    /// Scoring was asked for without any reference stream.
    #[error("scoring: no reference stream given")]
    NoReferences,

    /// An option has a value the metric cannot use.
    #[error("options: {0}")]
    InvalidOption(String),
}

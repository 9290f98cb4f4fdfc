//! The typed error of this crate.
//!
//! Messages are lowercase and lead with the file they concern, so a caller
//! can print them as they are (`fig.png: unsupported image format ...`) or
//! chain them with `anyhow`'s `{:#}` without repeating the I/O cause.

use std::path::PathBuf;

/// Everything that can go wrong while reading metrics or writing a figure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The output path's extension is neither `.png` nor `.svg`.
    #[error("{}: unsupported image format (use .png or .svg)", path.display())]
    UnsupportedFormat {
        /// The requested output file.
        path: PathBuf,
    },

    /// There is nothing to draw (no tokens, or no metric records).
    #[error("{}: nothing to draw: {what}", path.display())]
    Empty {
        /// The output file (alignments) or the metrics file (curves).
        path: PathBuf,
        /// What was missing.
        what: &'static str,
    },

    /// An input file could not be read.
    #[error("{}: reading failed", path.display())]
    Read {
        /// The file that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The figure (or its temporary file) could not be written or renamed.
    #[error("{}: writing failed", path.display())]
    Write {
        /// The output file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A line of `metrics.jsonl` is not a JSON object with numeric fields.
    #[error("{}:{line}: {message}", path.display())]
    Metrics {
        /// The metrics file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },

    /// plotters failed while drawing (should not happen with the embedded
    /// font; kept typed so a caller never sees a panic).
    #[error("{}: drawing failed: {message}", path.display())]
    Draw {
        /// The output file.
        path: PathBuf,
        /// plotters' description of the failure.
        message: String,
    },

    /// The pixel buffer could not be encoded as PNG.
    #[error("{}: png encoding failed", path.display())]
    Png {
        /// The output file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: png::EncodingError,
    },

    /// The font compiled into the binary could not be registered.
    #[error("embedded font: {0}")]
    Font(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_lead_with_the_path() {
        let e = Error::UnsupportedFormat {
            path: PathBuf::from("fig.jpg"),
        };
        assert_eq!(
            e.to_string(),
            "fig.jpg: unsupported image format (use .png or .svg)"
        );
        let e = Error::Metrics {
            path: PathBuf::from("runs/x/metrics.jsonl"),
            line: 7,
            message: "invalid JSON".into(),
        };
        assert_eq!(e.to_string(), "runs/x/metrics.jsonl:7: invalid JSON");
    }
}

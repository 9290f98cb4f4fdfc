//! The one error type of this crate.
//!
//! Messages are lowercase and context-first (`data/x.en: line 17: invalid UTF-8`) so
//! that a caller can prefix them with its own context and the result still reads as
//! one sentence.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while reading corpora, building vocabularies or
/// preparing a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure on a named file (`action` is e.g. "cannot open", "cannot read").
    #[error("{}: {action}: {source}", shown(path))]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    /// A line that is not valid UTF-8 (`line` is 1-based).
    #[error("{}: line {line}: invalid UTF-8", shown(path))]
    Utf8 { path: PathBuf, line: usize },
    /// The two sides of a parallel corpus are not line-aligned.
    #[error(
        "{} has {src_lines} lines but {} has {tgt_lines}: parallel files must be line-aligned",
        shown(src),
        shown(tgt)
    )]
    LineCount {
        src: PathBuf,
        src_lines: usize,
        tgt: PathBuf,
        tgt_lines: usize,
    },
    /// A tokenizer file that cannot be parsed, written, or lacks the fixed special ids.
    #[error("{}: {message}", shown(path))]
    Vocab { path: PathBuf, message: String },
    /// Training a subword vocabulary failed inside the `tokenizers` crate.
    #[error("training the vocabulary: {0}")]
    Train(String),
    /// An invalid or incomplete data configuration.
    #[error("data config: {0}")]
    Config(String),
}

impl Error {
    /// Wraps an I/O error with the file it concerns and what was being attempted.
    pub(crate) fn io(path: &Path, action: &'static str, source: io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    pub(crate) fn vocab(path: &Path, message: impl fmt::Display) -> Error {
        Error::Vocab {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

/// How paths appear in messages; `-` (stdin) is spelled out.
fn shown(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_context_first() {
        let e = Error::Utf8 {
            path: "data/x.en".into(),
            line: 17,
        };
        assert_eq!(e.to_string(), "data/x.en: line 17: invalid UTF-8");
        let e = Error::LineCount {
            src: "a.en".into(),
            src_lines: 3,
            tgt: "a.de".into(),
            tgt_lines: 2,
        };
        assert_eq!(
            e.to_string(),
            "a.en has 3 lines but a.de has 2: parallel files must be line-aligned"
        );
        let e = Error::io(
            Path::new("-"),
            "cannot read",
            io::Error::other("broken pipe"),
        );
        assert_eq!(e.to_string(), "<stdin>: cannot read: broken pipe");
        assert_eq!(
            Error::Config("x".into()).to_string(),
            "data config: x".to_string()
        );
    }
}

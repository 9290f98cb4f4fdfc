//! Errors of training and translation runs.

/// What can go wrong in a run; messages are lowercase and start with their context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration file or override is invalid.
    #[error("{0}")]
    Config(String),
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(String),
    /// Corpora or vocabularies could not be prepared.
    #[error(transparent)]
    Data(#[from] rnnsearch_data::Error),
    /// A run directory or checkpoint is missing, incomplete or incompatible.
    #[error("{0}")]
    Checkpoint(String),
    /// Training cannot go on (e.g. repeated non-finite losses).
    #[error("{0}")]
    Diverged(String),
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Maps an I/O error to [`Error::Io`] with the path as context.
pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io(format!("{}: {e}", path.display()))
}

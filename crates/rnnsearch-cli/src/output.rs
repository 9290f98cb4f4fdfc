//! Output files written atomically: a temporary file beside the target, renamed at the end,
//! so an interrupted run never leaves a half-written file under the final name.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A text sink: standard output, or a file committed by [`Output::finish`].
pub struct Output {
    writer: BufWriter<Box<dyn Write>>,
    /// (temporary file, its handle for fsync, final path) when writing a file.
    file: Option<(PathBuf, fs::File, PathBuf)>,
}

impl Output {
    /// `-` (or none) is standard output.
    pub fn create(path: Option<&Path>) -> Result<Self> {
        match path {
            Some(p) if p != Path::new("-") => {
                let dir = p
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("output");
                let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
                let file = fs::File::create(&tmp)
                    .with_context(|| format!("{}: cannot create", p.display()))?;
                let handle = file
                    .try_clone()
                    .with_context(|| format!("{}: cannot create", p.display()))?;
                Ok(Output {
                    writer: BufWriter::new(Box::new(file)),
                    file: Some((tmp, handle, p.to_path_buf())),
                })
            }
            _ => Ok(Output {
                writer: BufWriter::new(Box::new(io::stdout())),
                file: None,
            }),
        }
    }

    /// Writes one line.
    pub fn line(&mut self, text: &str) -> Result<()> {
        writeln!(self.writer, "{text}").context("cannot write output")
    }

    /// Sends what is written so far on (standard output: to the reader at once).
    pub fn flush(&mut self) -> Result<()> {
        self.writer.flush().context("cannot write output")
    }

    /// Flushes and, for a file, renames it into place.
    pub fn finish(mut self) -> Result<()> {
        self.writer.flush().context("cannot write output")?;
        if let Some((tmp, handle, path)) = self.file.take() {
            handle
                .sync_all()
                .with_context(|| format!("{}: cannot write", path.display()))?;
            fs::rename(&tmp, &path).with_context(|| format!("{}: cannot write", path.display()))?;
        }
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        // Reached with a file only when finish() was not: an error path. The final name is untouched.
        if let Some((tmp, _, _)) = self.file.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

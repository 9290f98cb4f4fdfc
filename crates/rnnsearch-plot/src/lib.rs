//! Figures for rnnsearch: the attention (alignment) heat-map of a
//! translation, and training curves from a run's `metrics.jsonl`.
//!
//! The alignment matrix is the picture that explains RNNsearch: Bahdanau et
//! al. (2014), figure 3, shows α_ij as grey cells, white = 1, black = 0,
//! source words along x and generated target words along y.
//! [`draw_alignment`] draws exactly that; [`merge_subwords`] turns a
//! subword-level matrix into a word-level one first, so the picture shows
//! words rather than BPE pieces. [`draw_curves`] plots training loss,
//! validation loss and validation BLEU against the step.
//!
//! Output format follows the extension (`.png` or `.svg`), files are
//! written atomically (temporary file in the same directory, then rename),
//! so a reader never sees half a figure, and text is drawn with a font
//! compiled into the binary, so figures render on a machine with no system
//! fonts (see the `font` module).
//!
//! ```no_run
//! use std::path::Path;
//! let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
//! let (src, tgt, w) = rnnsearch_plot::merge_subwords(
//!     &s(&["▁a", "▁dog", "</s>"]),
//!     &s(&["▁ein", "▁Hund", "e", "</s>"]),
//!     &[vec![0.9, 0.1, 0.0], vec![0.1, 0.8, 0.1], vec![0.0, 0.9, 0.1], vec![0.0, 0.0, 1.0]],
//! );
//! rnnsearch_plot::draw_alignment(Path::new("align.svg"), &src, &tgt, &w)?;
//! rnnsearch_plot::draw_curves(Path::new("runs/x/metrics.jsonl"), Path::new("curves.png"))?;
//! # Ok::<(), rnnsearch_plot::Error>(())
//! ```

mod alignment;
mod curves;
mod error;
mod font;

use std::io::Write;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, DrawingBackend, IntoDrawingArea, SVGBackend};

pub use alignment::{draw_alignment, merge_subwords};
pub use curves::draw_curves;
pub use error::Error;

/// Result of a drawing routine: plotters' errors are generic over the
/// back-end, so they are boxed here and turned into [`Error::Draw`] once.
pub(crate) type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Output format, chosen from the file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Png,
    Svg,
}

impl Format {
    /// `.png` / `.svg` (any case); anything else is an error naming `path`.
    pub(crate) fn from_path(path: &Path) -> Result<Self, Error> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(Self::Png),
            Some("svg") => Ok(Self::Svg),
            _ => Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// A figure that can draw itself on any plotters back-end.
pub(crate) trait Figure {
    /// Canvas size in pixels (width, height).
    fn size(&self) -> (u32, u32);
    /// Draws onto the whole canvas.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static;
}

/// Renders `figure` in memory in the format of `path`'s extension and
/// writes it atomically. Rendering to memory (rather than letting plotters
/// write the file) keeps the write atomic and lets PNG encoding use the
/// small `png` crate instead of plotters' `image`-based encoder.
pub(crate) fn render(path: &Path, figure: &impl Figure) -> Result<(), Error> {
    let format = Format::from_path(path)?;
    font::ensure_registered()?;
    let (w, h) = figure.size();
    let draw_err = |e: Box<dyn std::error::Error>| Error::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let bytes = match format {
        Format::Png => {
            let mut buf = vec![0u8; w as usize * h as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
                figure.draw(&root).map_err(draw_err)?;
                root.present().map_err(|e| draw_err(e.into()))?;
            }
            encode_png(&buf, w, h).map_err(|source| Error::Png {
                path: path.to_path_buf(),
                source,
            })?
        }
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
                figure.draw(&root).map_err(draw_err)?;
                root.present().map_err(|e| draw_err(e.into()))?;
            }
            svg.into_bytes()
        }
    };
    write_atomic(path, &bytes)
}

/// 8-bit RGB PNG from plotters' pixel buffer (RGB, row-major).
fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(rgb)?;
        writer.finish()?;
    }
    Ok(out)
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over
/// `path`, so `path` is either the old file or the complete new one.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".rnnsearch-plot-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    // tempfile creates 0600 files; a figure is meant to be shared.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(err)?;
    }
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Decodes an 8-bit RGB PNG: (width, height, pixels).
    pub(crate) fn decode_png(path: &Path) -> (u32, u32, Vec<u8>) {
        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        let mut reader = png::Decoder::new(file).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(
            Format::from_path(Path::new("a/b.png")).unwrap(),
            Format::Png
        );
        assert_eq!(Format::from_path(Path::new("b.SVG")).unwrap(), Format::Svg);
        for bad in ["fig.jpg", "fig", "png"] {
            let e = Format::from_path(Path::new(bad)).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("{bad}: unsupported image format (use .png or .svg)")
            );
        }
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.svg");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn write_into_missing_dir_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope/x.png");
        let e = write_atomic(&p, b"x").unwrap_err();
        assert!(e.to_string().contains("nope/x.png: writing failed"), "{e}");
    }
}

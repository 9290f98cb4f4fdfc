//! The font compiled into the binary.
//!
//! plotters normally finds fonts through fontconfig (`ttf` feature, via
//! font-kit), which fails on a fresh machine or container with no system
//! fonts and needs native libraries at build time. Instead we use plotters'
//! pure-Rust `ab_glyph` renderer and register DejaVu Sans from the `dejavu`
//! crate (which ships the upstream DejaVu 2.37 TTFs; the DejaVu licence
//! permits embedding and redistribution) under the family name every figure
//! uses, [`FAMILY`]. Only `DejaVuSans.ttf` (~740 KB) ends up in the binary:
//! the crate exposes each face through its own function, so unused faces are
//! never referenced.

use std::sync::OnceLock;

use plotters::style::{register_font, FontDesc, FontFamily, FontStyle};

use crate::Error;

/// Family name figures use; plotters' SVG back-end also writes it into
/// `font-family`, where viewers map it to their own sans-serif face.
pub(crate) const FAMILY: &str = "sans-serif";

static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();

/// Registers the embedded font once per process (idempotent, thread-safe).
pub(crate) fn ensure_registered() -> Result<(), Error> {
    REGISTERED
        .get_or_init(|| {
            register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "DejaVu Sans could not be parsed".to_string())
        })
        .clone()
        .map_err(Error::Font)
}

/// The embedded font at `size` (plotters' size unit: ab_glyph pixel scale).
pub(crate) fn font(size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), size, FontStyle::Normal)
}

/// Width in pixels of `text` drawn horizontally at `size`.
///
/// Falls back to an over-estimate when the font is unavailable, so layout
/// never fails (drawing will report the font error instead).
pub(crate) fn text_width(text: &str, size: f64) -> u32 {
    match font(size).box_size(text) {
        Ok((w, _)) => w,
        Err(_) => (text.chars().count() as f64 * size * 0.7).ceil() as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_measures() {
        ensure_registered().unwrap();
        ensure_registered().unwrap();
        let short = text_width("cat", 15.0);
        let long = text_width("catastrophe", 15.0);
        assert!(short > 10, "{short}");
        assert!(long > 2 * short, "{long} vs {short}");
        assert!(font(15.0).box_size("x").is_ok());
    }
}

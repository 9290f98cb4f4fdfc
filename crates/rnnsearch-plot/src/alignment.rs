//! The alignment heat-map (Bahdanau et al. 2014, figure 3) and the
//! subword → word merge that makes it readable.
//!
//! The figure is drawn directly on the canvas (cells as filled squares,
//! labels as text) rather than through a chart with axes: a heat-map of
//! tokens has no numeric axes, and owning the geometry lets tests find every
//! cell through [`Layout`].

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::{
    DrawingArea, DrawingBackend, RGBColor, Rectangle, ShapeStyle, Text, TextStyle, BLACK, WHITE,
};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, FontTransform};
use rnnsearch_data::group_words;

use crate::{font, render, DrawResult, Error, Figure, Format};

/// Side of one cell in pixels: room for a 15 px label per row/column.
pub(crate) const CELL: u32 = 24;
/// Smallest canvas side, so short sentences still give a usable picture.
const MIN_SIDE: u32 = 400;
/// Label font size (ab_glyph scale, ≈ cap height 11 px).
const LABEL_SIZE: f64 = 15.0;
/// Margin between the canvas edge and the labels.
const PAD: u32 = 12;
/// Gap between a label and the grid.
const GAP: u32 = 6;
/// Longer tokens are cut (with `…`) so one odd token can't eat the canvas.
const MAX_LABEL_CHARS: usize = 30;
/// Frame drawn around the grid, so white (α = 1) cells at its edge stay
/// visible against the white background.
const FRAME: RGBColor = RGBColor(128, 128, 128);

/// Where everything goes on the canvas: source labels above the grid
/// (rotated to read bottom-up), target labels to its left, right-aligned.
/// Sizes in pixels: canvas `width × height`, grid's top-left corner at
/// (`left`, `top`), `cols` source columns and `rows` target rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub width: u32,
    pub height: u32,
    pub left: u32,
    pub top: u32,
    pub cols: usize,
    pub rows: usize,
}

impl Layout {
    /// Sizes the canvas from the labels: margins fit the longest label, the
    /// grid gets [`CELL`] pixels per token, and a canvas smaller than
    /// [`MIN_SIDE`] is enlarged with the picture centred.
    pub(crate) fn new(src_labels: &[String], tgt_labels: &[String]) -> Self {
        let widest = |labels: &[String]| {
            labels
                .iter()
                .map(|l| font::text_width(l, LABEL_SIZE))
                .max()
                .unwrap_or(0)
        };
        let (cols, rows) = (src_labels.len(), tgt_labels.len());
        let mut left = PAD + widest(tgt_labels) + GAP;
        let mut top = PAD + widest(src_labels) + GAP;
        let need_w = left + cols as u32 * CELL + PAD;
        let need_h = top + rows as u32 * CELL + PAD;
        let (width, height) = (need_w.max(MIN_SIDE), need_h.max(MIN_SIDE));
        left += (width - need_w) / 2;
        top += (height - need_h) / 2;
        Self {
            width,
            height,
            left,
            top,
            cols,
            rows,
        }
    }

    /// Upper-left and lower-right corners of cell (target row `i`, source
    /// column `j`).
    pub(crate) fn cell_rect(&self, i: usize, j: usize) -> [(i32, i32); 2] {
        let x0 = (self.left + j as u32 * CELL) as i32;
        let y0 = (self.top + i as u32 * CELL) as i32;
        [(x0, y0), (x0 + CELL as i32, y0 + CELL as i32)]
    }

    /// Centre pixel of cell (`i`, `j`).
    #[cfg(test)]
    pub(crate) fn cell_center(&self, i: usize, j: usize) -> (u32, u32) {
        let [(x0, y0), _] = self.cell_rect(i, j);
        (x0 as u32 + CELL / 2, y0 as u32 + CELL / 2)
    }
}

/// A token as shown: cut to [`MAX_LABEL_CHARS`] characters.
fn label(token: &str) -> String {
    if token.chars().count() <= MAX_LABEL_CHARS {
        token.to_string()
    } else {
        let mut s: String = token.chars().take(MAX_LABEL_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// Grey level of α: white = 1, black = 0 (as in the paper); values are
/// clamped to [0, 1] and NaN shows as black.
fn grey(alpha: f32) -> u8 {
    let a = if alpha.is_nan() {
        0.0
    } else {
        alpha.clamp(0.0, 1.0)
    };
    (a * 255.0).round() as u8
}

struct Alignment {
    layout: Layout,
    src: Vec<String>,
    tgt: Vec<String>,
    /// `grey[i][j]`, exactly `rows × cols`.
    grey: Vec<Vec<u8>>,
}

impl Alignment {
    fn new(source: &[String], target: &[String], weights: &[Vec<f32>]) -> Self {
        let src: Vec<String> = source.iter().map(|t| label(t)).collect();
        let tgt: Vec<String> = target.iter().map(|t| label(t)).collect();
        let grey = (0..tgt.len())
            .map(|i| {
                (0..src.len())
                    .map(|j| {
                        let a = weights.get(i).and_then(|r| r.get(j)).copied();
                        grey(a.unwrap_or(0.0))
                    })
                    .collect()
            })
            .collect();
        Self {
            layout: Layout::new(&src, &tgt),
            src,
            tgt,
            grey,
        }
    }
}

impl Figure for Alignment {
    fn size(&self) -> (u32, u32) {
        (self.layout.width, self.layout.height)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let l = &self.layout;
        root.fill(&WHITE)?;
        let [(x0, y0), _] = l.cell_rect(0, 0);
        let [_, (x1, y1)] = l.cell_rect(l.rows - 1, l.cols - 1);
        let frame = ShapeStyle::from(&FRAME).stroke_width(1);
        root.draw(&Rectangle::new([(x0 - 1, y0 - 1), (x1 + 1, y1 + 1)], frame))?;
        for (i, row) in self.grey.iter().enumerate() {
            for (j, &g) in row.iter().enumerate() {
                let fill = RGBColor(g, g, g).filled();
                root.draw(&Rectangle::new(l.cell_rect(i, j), fill))?;
            }
        }
        // Source labels: rotated to read bottom-up, starting just above the
        // grid, centred on their column.
        let src_style = TextStyle::from(font::font(LABEL_SIZE).transform(FontTransform::Rotate270))
            .pos(Pos::new(HPos::Left, VPos::Center))
            .color(&BLACK);
        for (j, text) in self.src.iter().enumerate() {
            let [(cx, _), _] = l.cell_rect(0, j);
            let pos = (cx + CELL as i32 / 2, l.top as i32 - GAP as i32);
            root.draw(&Text::new(text.as_str(), pos, src_style.clone()))?;
        }
        // Target labels: right-aligned against the grid, centred on their row.
        let tgt_style = TextStyle::from(font::font(LABEL_SIZE))
            .pos(Pos::new(HPos::Right, VPos::Center))
            .color(&BLACK);
        for (i, text) in self.tgt.iter().enumerate() {
            let [(_, cy), _] = l.cell_rect(i, 0);
            let pos = (l.left as i32 - GAP as i32, cy + CELL as i32 / 2);
            root.draw(&Text::new(text.as_str(), pos, tgt_style.clone()))?;
        }
        Ok(())
    }
}

/// Draws the alignment matrix `weights[i][j]` = α_ij (target token `i`
/// attending to source token `j`) as grey cells, white = 1, black = 0.
///
/// Source tokens label the columns (top, rotated), target tokens the rows
/// (left). Columns beyond `source.len()` and rows beyond `target.len()` are
/// ignored; missing entries draw as 0. The canvas grows with the sentence
/// ([`CELL`] px per token, at least 400 px a side), so labels stay readable
/// up to 50 tokens and beyond. The format follows `path`'s extension
/// (`.png` or `.svg`); the file is written atomically.
pub fn draw_alignment(
    path: &Path,
    source: &[String],
    target: &[String],
    weights: &[Vec<f32>],
) -> Result<(), Error> {
    Format::from_path(path)?;
    if source.is_empty() || target.is_empty() {
        return Err(Error::Empty {
            path: path.to_path_buf(),
            what: "no source or no target tokens",
        });
    }
    // The layout measures labels with the embedded font.
    font::ensure_registered()?;
    render(path, &Alignment::new(source, target, weights))
}

/// Turns a subword-level alignment into a word-level one, for a picture of
/// words rather than BPE pieces.
///
/// A piece starting with `▁` (U+2581), the first piece, and any special
/// token such as `</s>` open a new word; the piece after a special token
/// does too. Labels drop the `▁`. A source word's weight is the SUM over its
/// pieces (attention mass is additive over the source: the merged row still
/// sums to 1), a target word's row is the MEAN over its pieces' rows (each
/// target piece is one distribution; their mean is again a distribution).
///
/// `weights[i][j]` is α for target piece `i`, source piece `j`; columns
/// beyond `source_pieces.len()` and rows beyond `target_pieces.len()` are
/// ignored, and target pieces without a row do not count in the mean. The
/// result is exactly (source words, target words, target words × source
/// words).
pub fn merge_subwords(
    source_pieces: &[String],
    target_pieces: &[String],
    weights: &[Vec<f32>],
) -> (Vec<String>, Vec<String>, Vec<Vec<f32>>) {
    let (src_words, src_index) = group_words(source_pieces);
    let (tgt_words, tgt_index) = group_words(target_pieces);
    let mut merged = vec![vec![0f32; src_words.len()]; tgt_words.len()];
    let mut rows = vec![0u32; tgt_words.len()];
    for (row, &t) in weights.iter().zip(&tgt_index) {
        rows[t] += 1;
        for (&a, &s) in row.iter().zip(&src_index) {
            merged[t][s] += a;
        }
    }
    for (row, &n) in merged.iter_mut().zip(&rows) {
        if n > 1 {
            row.iter_mut().for_each(|a| *a /= n as f32);
        }
    }
    (src_words, tgt_words, merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn identity(n: usize, cols: usize) -> Vec<Vec<f32>> {
        (0..n)
            .map(|i| (0..cols).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
            .collect()
    }

    #[test]
    fn png_has_layout_size_and_hot_cells_are_light() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        let src = s(&["▁the", "▁agreement", "▁on", "▁the", "</s>"]);
        let tgt = s(&["▁l'", "▁accord", "▁sur", "▁la", "</s>"]);
        // Extra column and extra row must be ignored.
        let mut w = identity(6, 6);
        w[0][5] = 1.0;
        draw_alignment(&path, &src, &tgt, &w).unwrap();

        font::ensure_registered().unwrap();
        let layout = Alignment::new(&src, &tgt, &w).layout;
        let (width, height, rgb) = crate::tests::decode_png(&path);
        assert_eq!((width, height), (layout.width, layout.height));
        assert!(width >= 400 && height >= 400);
        for i in 0..5 {
            for j in 0..5 {
                let (x, y) = layout.cell_center(i, j);
                let p = ((y * width + x) * 3) as usize;
                let px = &rgb[p..p + 3];
                assert!(px[0] == px[1] && px[1] == px[2], "({i},{j}): {px:?}");
                if i == j {
                    assert!(px[0] > 230, "hot cell ({i},{j}) not light: {px:?}");
                } else {
                    assert!(px[0] < 25, "cell ({i},{j}) not dark: {px:?}");
                }
            }
        }
        // Some label ink left of and above the grid.
        let dark = |x0: u32, x1: u32, y0: u32, y1: u32| {
            (y0..y1)
                .flat_map(|y| (x0..x1).map(move |x| (x, y)))
                .filter(|&(x, y)| rgb[((y * width + x) * 3) as usize] < 128)
                .count()
        };
        assert!(dark(0, layout.left - 2, layout.top, height) > 50);
        assert!(dark(layout.left, width, 0, layout.top - 2) > 50);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn canvas_grows_with_sentence_length() {
        font::ensure_registered().unwrap();
        let src: Vec<String> = (0..50).map(|k| format!("▁word{k}")).collect();
        let tgt: Vec<String> = (0..45).map(|k| format!("▁mot{k}")).collect();
        let l = Layout::new(&src, &tgt);
        assert!(l.width >= 50 * CELL + l.left && l.height >= 45 * CELL + l.top);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.png");
        draw_alignment(&path, &src, &tgt, &identity(45, 50)).unwrap();
        let (w, h, _) = crate::tests::decode_png(&path);
        assert_eq!((w, h), (l.width, l.height));
    }

    #[test]
    fn svg_holds_tokens_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.svg");
        let src = s(&["Katze", "schläft", "</s>"]);
        let tgt = s(&["cat", "sleeps", "</s>"]);
        draw_alignment(&path, &src, &tgt, &identity(3, 3)).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        for t in ["Katze", "schläft", "cat", "sleeps", "&lt;/s&gt;"] {
            assert!(svg.contains(&format!(">\n{t}\n</text>")), "missing {t}");
        }
        assert!(svg.contains("rotate(270"));
    }

    #[test]
    fn bad_extension_and_empty_input_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fig.jpg");
        let e = draw_alignment(&path, &s(&["a"]), &s(&["b"]), &[vec![1.0]]).unwrap_err();
        assert!(matches!(e, Error::UnsupportedFormat { .. }));
        assert!(e
            .to_string()
            .ends_with("fig.jpg: unsupported image format (use .png or .svg)"));
        let path = dir.path().join("fig.png");
        let e = draw_alignment(&path, &[], &s(&["b"]), &[]).unwrap_err();
        assert!(matches!(e, Error::Empty { .. }), "{e}");
        assert!(!path.exists());
    }

    #[test]
    fn grey_levels() {
        let got: Vec<u8> = [1.0, 0.0, 0.5, f32::NAN, 1.5, -1.0].map(grey).to_vec();
        assert_eq!(got, [255, 0, 128, 0, 255, 0]);
    }

    #[test]
    fn merge_sums_source_and_averages_target() {
        let src = s(&["▁ein", "▁Hund", "e", "</s>"]);
        let tgt = s(&["▁do", "g", "s", "▁bark", "</s>"]);
        let w = vec![
            vec![0.1, 0.6, 0.2, 0.1],
            vec![0.0, 0.5, 0.5, 0.0],
            vec![0.2, 0.2, 0.2, 0.4],
            vec![0.7, 0.1, 0.1, 0.1],
            vec![0.0, 0.0, 0.0, 1.0],
        ];
        let (sw, tw, m) = merge_subwords(&src, &tgt, &w);
        assert_eq!(sw, s(&["ein", "Hunde", "</s>"]));
        assert_eq!(tw, s(&["dogs", "bark", "</s>"]));
        // "dogs" = mean of rows 0..3, with Hund+e summed.
        let expect = [
            vec![0.1, 2.2 / 3.0, 0.5 / 3.0],
            vec![0.7, 0.2, 0.1],
            vec![0.0, 0.0, 1.0],
        ];
        assert_eq!(m.len(), 3);
        for (got, want) in m.iter().zip(&expect) {
            let close = got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6);
            assert!(close && got.len() == 3, "{got:?} vs {want:?}");
            assert!((got.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn merge_edge_cases() {
        // First piece without marker opens a word; a piece after a special
        // token opens a word; extra columns and rows are ignored; a target
        // word without rows stays zero.
        let src = s(&["Hund", "e", "<unk>", "x"]);
        let tgt = s(&["a", "▁b"]);
        let w = vec![
            vec![0.25, 0.25, 0.25, 0.25, 9.0],
            vec![1.0; 5],
            vec![5.0; 5],
        ];
        let (sw, tw, m) = merge_subwords(&src, &tgt, &w);
        assert_eq!(sw, s(&["Hunde", "<unk>", "x"]));
        assert_eq!(tw, s(&["a", "b"]));
        assert_eq!(m, vec![vec![0.5, 0.25, 0.25], vec![2.0, 1.0, 1.0]]);
        let (_, tw, m) = merge_subwords(&src, &tgt, &w[..1]);
        assert_eq!(tw.len(), 2);
        assert_eq!(m[1], vec![0.0; 3]);
        let (sw, tw, m) = merge_subwords(&[], &[], &[]);
        assert!(sw.is_empty() && tw.is_empty() && m.is_empty());
    }
}

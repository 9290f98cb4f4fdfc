//! Training curves from a run's `metrics.jsonl`.
//!
//! The trainer appends one JSON object per line: training records carry
//! `step` and `loss`, validation records `step`, `val_loss` and `val_bleu`
//! (other keys, such as `lr` or `val_chrf`, are ignored here). The figure
//! has the losses on top (train and validation share a scale: both are mean
//! per-token cross-entropy) and BLEU below, since BLEU lives on 0–100 and
//! would flatten the losses on a shared axis. A run without validation yet
//! gets the loss panel alone.

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::{
    ChartBuilder, DrawingArea, DrawingBackend, LineSeries, PathElement, RGBColor,
    SeriesLabelPosition, BLACK, WHITE,
};
use plotters::style::Color;
use serde_json::Value;

use crate::{font, render, DrawResult, Error, Figure, Format};

const WIDTH: u32 = 900;
const PANEL_HEIGHT: u32 = 380;
const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VALID: RGBColor = RGBColor(214, 39, 40);
const BLEU: RGBColor = RGBColor(44, 160, 44);

/// One curve: (step, value) points in step order.
type Points = Vec<(i64, f64)>;

/// The three curves of a run.
#[derive(Debug, Default, PartialEq)]
struct Metrics {
    loss: Points,
    val_loss: Points,
    val_bleu: Points,
}

/// Appends a point. A step at or before the last one means the run was
/// resumed from an earlier checkpoint and re-logged those steps: the later
/// records replace the abandoned ones, so each curve stays a function of
/// the step instead of zig-zagging back.
fn push(points: &mut Points, step: i64, value: f64) {
    while points.last().is_some_and(|&(s, _)| s >= step) {
        points.pop();
    }
    points.push((step, value));
}

/// Parses `metrics.jsonl`; blank lines are skipped, lines with none of the
/// plotted keys are ignored, and `null` values (NaN as serde_json writes it)
/// are treated as absent.
fn read_metrics(path: &Path) -> Result<Metrics, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut m = Metrics::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |message: String| Error::Metrics {
            path: path.to_path_buf(),
            line: n + 1,
            message,
        };
        let value: Value =
            serde_json::from_str(line).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        let field = |key: &str| match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| bad(format!("`{key}` is not a number"))),
        };
        let (loss, val_loss, val_bleu) = (field("loss")?, field("val_loss")?, field("val_bleu")?);
        if loss.is_none() && val_loss.is_none() && val_bleu.is_none() {
            continue;
        }
        let step = field("step")?.ok_or_else(|| bad("missing `step`".into()))?;
        let step = step.round() as i64;
        for (points, v) in [
            (&mut m.loss, loss),
            (&mut m.val_loss, val_loss),
            (&mut m.val_bleu, val_bleu),
        ] {
            if let Some(v) = v {
                push(points, step, v);
            }
        }
    }
    Ok(m)
}

/// Range covering `values`, padded by 5 %, optionally floored at 0.
fn value_range(values: impl Iterator<Item = f64>, floor_zero: bool) -> Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 0.5 };
    let lo = if floor_zero {
        (lo - pad).max(0.0)
    } else {
        lo - pad
    };
    lo..hi + pad
}

struct Curves {
    m: Metrics,
}

impl Curves {
    /// x range covering every step, never empty.
    fn steps(&self) -> Range<i64> {
        let all = || {
            [&self.m.loss, &self.m.val_loss, &self.m.val_bleu]
                .into_iter()
                .flatten()
                .map(|&(s, _)| s)
        };
        let (lo, hi) = (all().min().unwrap_or(0), all().max().unwrap_or(1));
        if lo == hi {
            return lo - 1..hi + 1;
        }
        // A little room on the right keeps the last marker whole.
        lo..hi + ((hi - lo) / 50).max(1)
    }
}

/// One labelled curve for [`panel`]: name, points, colour, marker size.
type Curve<'a> = (&'a str, &'a Points, RGBColor, u32);

/// Draws one panel: title, axes, curves, legend.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    x: Range<i64>,
    y: Range<f64>,
    curves: &[Curve<'_>],
    legend: SeriesLabelPosition,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .caption(title, font::font(20.0))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc(y_desc)
        .label_style(font::font(14.0))
        .axis_desc_style(font::font(15.0))
        .draw()?;
    for &(name, points, color, marker) in curves {
        if points.is_empty() {
            continue;
        }
        let style = color.stroke_width(2);
        // A lone point draws no line: show it as a marker.
        let marker = if points.len() == 1 {
            marker.max(3)
        } else {
            marker
        };
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style).point_size(marker))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(font::font(14.0))
        .draw()?;
    Ok(())
}

impl Figure for Curves {
    fn size(&self) -> (u32, u32) {
        let panels = if self.m.val_bleu.is_empty() { 1 } else { 2 };
        (WIDTH, panels * PANEL_HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let m = &self.m;
        let x = self.steps();
        let (top, bottom) = if m.val_bleu.is_empty() {
            (root.clone(), None)
        } else {
            let (t, b) = root.split_vertically(PANEL_HEIGHT);
            (t, Some(b))
        };
        let losses = m.loss.iter().chain(&m.val_loss).map(|&(_, v)| v);
        panel(
            &top,
            "loss",
            "cross-entropy per token",
            x.clone(),
            value_range(losses, true),
            &[
                ("train loss", &m.loss, TRAIN, 0),
                ("validation loss", &m.val_loss, VALID, 3),
            ],
            SeriesLabelPosition::UpperRight, // losses fall
        )?;
        if let Some(bottom) = bottom {
            let hi = m.val_bleu.iter().map(|&(_, v)| v).fold(0.0, f64::max);
            let y = 0.0..(hi * 1.1).max(1.0);
            let curves = [("validation BLEU", &m.val_bleu, BLEU, 3)];
            let legend = SeriesLabelPosition::LowerRight; // BLEU rises
            panel(&bottom, "validation BLEU", "BLEU", x, y, &curves, legend)?;
        }
        Ok(())
    }
}

/// Draws training loss, validation loss and validation BLEU against the
/// step from `metrics_jsonl` into `out` (`.png` or `.svg`, written
/// atomically). A malformed line is an error naming the file and the 1-based
/// line number; a run with no validation yet draws the loss panel alone.
pub fn draw_curves(metrics_jsonl: &Path, out: &Path) -> Result<(), Error> {
    Format::from_path(out)?;
    let m = read_metrics(metrics_jsonl)?;
    if m.loss.is_empty() && m.val_loss.is_empty() && m.val_bleu.is_empty() {
        return Err(Error::Empty {
            path: metrics_jsonl.to_path_buf(),
            what: "no `loss`, `val_loss` or `val_bleu` records",
        });
    }
    render(out, &Curves { m })
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = r#"{"step":50,"epoch":1,"loss":4.5,"lr":0.003,"ppl":90.0}
{"step":100,"epoch":1,"loss":3.0,"lr":0.003}

{"step":100,"epoch":1,"lr":0.003,"val_loss":3.2,"val_ppl":24.5,"val_bleu":5.5,"val_chrf":20.0}
{"step":150,"epoch":2,"loss":2.5}
{"step":200,"epoch":2,"loss":2.1}
{"step":200,"val_loss":2.6,"val_bleu":12.25}
"#;

    fn write(dir: &Path, text: &str) -> std::path::PathBuf {
        let p = dir.join("metrics.jsonl");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn png_size(path: &Path) -> (u32, u32) {
        let (w, h, _) = crate::tests::decode_png(path);
        (w, h)
    }

    #[test]
    fn parses_series() {
        let dir = tempfile::tempdir().unwrap();
        let m = read_metrics(&write(dir.path(), METRICS)).unwrap();
        assert_eq!(m.loss, vec![(50, 4.5), (100, 3.0), (150, 2.5), (200, 2.1)]);
        assert_eq!(m.val_loss, vec![(100, 3.2), (200, 2.6)]);
        assert_eq!(m.val_bleu, vec![(100, 5.5), (200, 12.25)]);
    }

    #[test]
    fn resumed_steps_replace_abandoned_ones() {
        let dir = tempfile::tempdir().unwrap();
        let text = "{\"step\":1,\"loss\":3}\n{\"step\":2,\"loss\":2}\n{\"step\":3,\"loss\":1}\n\
                    {\"step\":2,\"loss\":2.5,\"val_loss\":null}\n{\"step\":3,\"loss\":1.5}\n";
        let m = read_metrics(&write(dir.path(), text)).unwrap();
        assert_eq!(m.loss, vec![(1, 3.0), (2, 2.5), (3, 1.5)]);
        assert!(m.val_loss.is_empty());
    }

    #[test]
    fn draws_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = write(dir.path(), METRICS);
        let png = dir.path().join("curves.png");
        draw_curves(&metrics, &png).unwrap();
        assert_eq!(png_size(&png), (WIDTH, 2 * PANEL_HEIGHT));
        let svg = dir.path().join("curves.svg");
        draw_curves(&metrics, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        for label in ["train loss", "validation loss", "validation BLEU", "step"] {
            assert!(
                text.contains(&format!(">\n{label}\n</text>")),
                "missing {label}"
            );
        }
    }

    #[test]
    fn run_without_validation_draws_loss_only() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = write(dir.path(), "{\"step\":10,\"loss\":5.0}\n");
        let png = dir.path().join("c.png");
        draw_curves(&metrics, &png).unwrap();
        assert_eq!(png_size(&png), (WIDTH, PANEL_HEIGHT));
    }

    #[test]
    fn bad_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = write(
            dir.path(),
            "{\"step\":1,\"loss\":2}\n\n{\"step\":2,\"loss\n",
        );
        let out = dir.path().join("c.png");
        let e = draw_curves(&metrics, &out).unwrap_err();
        assert!(matches!(e, Error::Metrics { line: 3, .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("metrics.jsonl:3: invalid JSON"), "{msg}");
        assert!(!out.exists());

        let metrics = write(dir.path(), "[1]\n");
        let e = draw_curves(&metrics, &out).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("metrics.jsonl:1: not a JSON object"),
            "{e}"
        );
        let metrics = write(dir.path(), "{\"loss\":1}\n");
        let e = draw_curves(&metrics, &out).unwrap_err();
        assert!(e.to_string().ends_with(":1: missing `step`"), "{e}");
        let metrics = write(dir.path(), "{\"step\":1,\"loss\":\"x\"}\n");
        let e = draw_curves(&metrics, &out).unwrap_err();
        assert!(e.to_string().ends_with(":1: `loss` is not a number"), "{e}");
    }

    #[test]
    fn empty_missing_and_bad_extension() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("c.svg");
        let metrics = write(dir.path(), "\n{\"step\":1,\"lr\":0.1}\n");
        let e = draw_curves(&metrics, &out).unwrap_err();
        assert!(matches!(e, Error::Empty { .. }), "{e}");
        let e = draw_curves(&dir.path().join("none.jsonl"), &out).unwrap_err();
        assert!(matches!(e, Error::Read { .. }), "{e}");
        let e = draw_curves(&metrics, &dir.path().join("c.pdf")).unwrap_err();
        assert!(matches!(e, Error::UnsupportedFormat { .. }), "{e}");
    }

    #[test]
    fn ranges() {
        assert_eq!(value_range([].into_iter(), true), 0.0..1.0);
        assert_eq!(value_range([2.0].into_iter(), true), 1.5..2.5);
        let r = value_range([0.0, 10.0].into_iter(), true);
        assert_eq!(r, 0.0..10.5);
    }
}

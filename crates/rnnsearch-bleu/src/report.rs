//! sacreBLEU's text layout: a score's line, and for several systems a
//! `fancy_grid` table (as the `tabulate` package draws it), the p-values
//! in it and the list of metric signatures; the paired test's explanation
//! is [`crate::significance::paired_legend`]. A score of any metric is a
//! [`Report`]; its JSON layout is in [`crate::json`].

use serde_json::Value;

use crate::resample::Confidence;
use crate::Signature;

/// A score of any metric as reports print it (sacreBLEU's `Score`): the
/// name, the number, the signature, the text after the number and the
/// metric's own JSON fields. Every metric's score converts into one.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The metric name (`BLEU`, `chrF2`, `TER`).
    pub name: String,
    /// The score, unrounded.
    pub score: f64,
    /// The reproducibility signature.
    pub signature: Signature,
    /// The text after the score in the text line (BLEU's precisions and
    /// lengths), or empty.
    pub verbose: String,
    /// The metric's own JSON fields, in sacreBLEU's order.
    pub fields: Vec<(&'static str, Value)>,
}

impl Report {
    /// `NAME|signature = 12.34 (μ = 12.30 ± 1.02) verbose`, as sacreBLEU
    /// prints it, the numbers to `width` decimals.
    pub fn text(&self, width: usize, confidence: Option<Confidence>) -> String {
        text_line(
            &self.name,
            &self.signature,
            self.score,
            width,
            confidence,
            &self.verbose,
        )
    }
}

/// sacreBLEU's text line of a score: the name, the signature, the score to
/// `width` decimals, the bootstrap estimate if any, and the verbose part if
/// not empty.
pub(crate) fn text_line(
    name: &str,
    signature: &Signature,
    score: f64,
    width: usize,
    confidence: Option<Confidence>,
    verbose: &str,
) -> String {
    let mut line = format!("{name}|{signature} = {score:.width$}");
    if let Some(c) = confidence {
        line.push_str(&format!(" (μ = {:.width$} ± {:.width$})", c.mean, c.ci));
    }
    if !verbose.is_empty() {
        line.push(' ');
        line.push_str(verbose);
    }
    line
}

/// A table with box-drawing borders: the first column right-aligned, the
/// others centred; a cell may hold several lines (`\n`).
pub fn fancy_grid(headers: &[String], rows: &[Vec<String>]) -> String {
    let cols = headers.len();
    let lines_of = |cell: &str| cell.split('\n').map(str::to_string).collect::<Vec<_>>();
    // tabulate gives every column at least its header's width plus 2.
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count() + 2).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            for line in lines_of(cell) {
                *w = (*w).max(line.chars().count());
            }
        }
    }
    let rule = |left: &str, fill: &str, mid: &str, right: &str| {
        let parts: Vec<String> = widths.iter().map(|w| fill.repeat(w + 2)).collect();
        format!("{left}{}{right}\n", parts.join(mid))
    };
    let render_row = |cells: &[String]| {
        let cell_lines: Vec<Vec<String>> = cells.iter().map(|c| lines_of(c)).collect();
        let height = cell_lines.iter().map(Vec::len).max().unwrap_or(1);
        let mut out = String::new();
        for k in 0..height {
            let parts: Vec<String> = (0..cols)
                .map(|c| {
                    let text = cell_lines[c].get(k).map_or("", String::as_str);
                    let w = widths[c];
                    if c == 0 {
                        format!(" {text:>w$} ")
                    } else {
                        format!(" {text:^w$} ")
                    }
                })
                .collect();
            out.push_str(&format!("│{}│\n", parts.join("│")));
        }
        out
    };
    let mut out = rule("╒", "═", "╤", "╕");
    out.push_str(&render_row(headers));
    out.push_str(&rule("╞", "═", "╪", "╡"));
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push_str(&rule("├", "─", "┼", "┤"));
        }
        out.push_str(&render_row(row));
    }
    out.push_str(&rule("╘", "═", "╧", "╛"));
    out
}

/// The signature list that ends a multi-system report.
pub fn signature_list(signatures: &[(String, String)]) -> String {
    let mut out = String::from("-----------------\nMetric signatures\n-----------------\n");
    for (name, sig) in signatures {
        out.push_str(&format!(" - {name:<10} {sig}\n"));
    }
    out
}

/// A p-value as sacreBLEU prints it in the table: four decimals, and `*`
/// when below the 0.05 threshold.
pub fn format_p_value(p: f64) -> String {
    let marker = if p > 0.05 { "" } else { "*" };
    format!("(p = {p:.4}){marker}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_matches_tabulate_layout() {
        let headers = vec!["System".to_string(), "BLEU (μ ± 95% CI)".to_string()];
        let rows = vec![
            vec![
                "Baseline: a.txt".to_string(),
                "50.67 (50.67 ± 2.18)".to_string(),
            ],
            vec![
                "b.txt".to_string(),
                format!("41.54 (41.51 ± 2.23)\n{}", format_p_value(0.000999)),
            ],
        ];
        let want = "\
╒═════════════════╤══════════════════════╕
│          System │  BLEU (μ ± 95% CI)   │
╞═════════════════╪══════════════════════╡
│ Baseline: a.txt │ 50.67 (50.67 ± 2.18) │
├─────────────────┼──────────────────────┤
│           b.txt │ 41.54 (41.51 ± 2.23) │
│                 │    (p = 0.0010)*     │
╘═════════════════╧══════════════════════╛
";
        assert_eq!(fancy_grid(&headers, &rows), want);
    }

    #[test]
    fn narrow_columns_are_as_wide_as_their_header_and_two() {
        let headers: Vec<String> = ["System", "BLEU", "TER"].map(String::from).to_vec();
        let rows = vec![["a.txt", "50.67", "23.77"].map(String::from).to_vec()];
        let want = "\
╒══════════╤════════╤═══════╕
│   System │  BLEU  │  TER  │
╞══════════╪════════╪═══════╡
│    a.txt │ 50.67  │ 23.77 │
╘══════════╧════════╧═══════╛
";
        assert_eq!(fancy_grid(&headers, &rows), want);
    }

    #[test]
    fn p_values_above_the_threshold_are_unmarked() {
        assert_eq!(format_p_value(0.1259), "(p = 0.1259)");
        assert_eq!(format_p_value(0.05), "(p = 0.0500)*");
    }
}

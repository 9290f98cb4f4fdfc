//! What every tokenizer shares (sacreBLEU's `tokenizer_base.py`): the
//! [`Tokenizer`] trait and whitespace normalisation.

use crate::text::py_split;

/// A BLEU tokenizer: turns one (already lowercased and right-stripped)
/// segment into its tokenized form.
pub trait Tokenizer: Send + Sync {
    /// The name sacreBLEU prints in the `tok:` field of a signature.
    fn signature(&self) -> &'static str;

    /// Writes the tokenized form of `line` into `out` (cleared first).
    ///
    /// The result is exactly the string sacreBLEU's tokenizer returns;
    /// BLEU then splits it on whitespace.
    fn tokenize_into(&self, line: &str, out: &mut String);

    /// The tokenized form of `line` as a new string.
    fn tokenize(&self, line: &str) -> String {
        let mut out = String::new();
        self.tokenize_into(line, &mut out);
        out
    }
}

/// Joins the whitespace-separated words of `s` with single spaces into
/// `out`: Python's `' '.join(s.split())`.
pub(crate) fn join_words(s: &str, out: &mut String) {
    out.clear();
    for word in py_split(s) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_words_normalizes_spaces() {
        let mut out = String::from("junk");
        join_words("  a \u{1c} b\u{3000}c  ", &mut out);
        assert_eq!(out, "a b c");
    }
}

//! The Tercom tokenizer (sacreBLEU's `TercomTokenizer`, after Tercom's
//! `Normalizer.java`).
//!
//! In order: lowercase (unless case-sensitive); with `normalized`, the
//! general and Western normalisation (line joins, XML entities, 13a-style
//! punctuation splitting plus possessive `'s`) and, with `asian_support`,
//! CJK characters and CJK punctuation split apart; with `no_punct`, ASCII
//! punctuation (and, with `asian_support`, CJK punctuation) deleted;
//! finally whitespace collapsed to single spaces.

use std::borrow::Cow;

use crate::text::py_lower;
use crate::tokenizers::{bytes_to_string, join_words, pad_periods_commas_dashes, pad_punctuation};

/// Tercom's normalisation switches (see [`crate::TerOptions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TercomTokenizer {
    pub(crate) normalized: bool,
    pub(crate) no_punct: bool,
    pub(crate) asian_support: bool,
    pub(crate) case_sensitive: bool,
}

impl TercomTokenizer {
    /// Writes the tokenized `sent` into `out` (cleared first): the string
    /// `TercomTokenizer.__call__` returns.
    pub(crate) fn tokenize_into(&self, sent: &str, out: &mut String) {
        out.clear();
        if sent.is_empty() {
            return;
        }
        let mut sent = if self.case_sensitive {
            Cow::Borrowed(sent)
        } else {
            py_lower(sent)
        };
        if self.normalized {
            sent = Cow::Owned(normalize_general_and_western(&sent));
            if self.asian_support {
                sent = Cow::Owned(normalize_asian(&sent));
            }
        }
        if self.no_punct {
            sent = Cow::Owned(remove_punct(&sent, self.asian_support));
        }
        join_words(&sent, out);
    }
}

/// `_normalize_general_and_western`: join lines (`\n-` first, then `\n`),
/// unescape `&quot; &amp; &lt; &gt;` in that order, pad with a space on
/// each side, then 13a's punctuation substitution, the possessive split,
/// and 13a's period / comma / dash substitutions.
///
/// Tercom's second possessive rule, `'s$` → ` 's`, can never fire: the
/// padded line ends in a space and contains no newline any more.
fn normalize_general_and_western(sent: &str) -> String {
    let mut sent = Cow::Borrowed(sent);
    if sent.contains('\n') {
        sent = Cow::Owned(sent.replace("\n-", "").replace('\n', " "));
    }
    if sent.contains('&') {
        sent = Cow::Owned(
            sent.replace("&quot;", "\"")
                .replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">"),
        );
    }
    let mut a = Vec::with_capacity(sent.len() * 2 + 8);
    pad_punctuation(sent.as_bytes(), true, &mut a);
    let mut text = bytes_to_string(a);
    if text.contains("'s ") {
        text = text.replace("'s ", " 's ");
    }
    let mut a = text.into_bytes();
    let mut b = Vec::with_capacity(a.len() + 16);
    pad_periods_commas_dashes(&mut a, &mut b);
    bytes_to_string(a)
}

/// `_normalize_asian`: every character of the CJK blocks and of the CJK
/// punctuation sets is surrounded by spaces.
///
/// sacreBLEU runs one substitution per block; each only inserts spaces,
/// which no later pattern matches, so a single pass over the union is the
/// same after whitespace is collapsed. Its three kana substitutions are
/// anchored at the start of the string (`^`), which after the Western
/// padding is always a space, so they never match and are left out.
fn normalize_asian(sent: &str) -> String {
    let mut out = String::with_capacity(sent.len() * 2);
    for c in sent.chars() {
        if is_cjk_split(c) || is_asian_punct(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// The blocks `_normalize_asian` splits into single characters.
fn is_cjk_split(c: char) -> bool {
    matches!(c,
        '\u{4e00}'..='\u{9fff}' // CJK Unified Ideographs
        | '\u{3400}'..='\u{4dbf}' // CJK Unified Ideographs Extension A
        | '\u{31c0}'..='\u{31ef}' // CJK Strokes
        | '\u{2e80}'..='\u{2eff}' // CJK Radicals Supplement
        | '\u{3300}'..='\u{33ff}' // CJK Compatibility
        | '\u{f900}'..='\u{faff}' // CJK Compatibility Ideographs
        | '\u{fe30}'..='\u{fe4f}' // CJK Compatibility Forms
        | '\u{3200}'..='\u{3f22}' // Enclosed CJK Letters and Months, as sacreBLEU writes it
    )
}

/// `ASIAN_PUNCT` and `FULL_WIDTH_PUNCT`: split by `_normalize_asian`,
/// deleted by `_remove_asian_punct`.
fn is_asian_punct(c: char) -> bool {
    matches!(c,
        '\u{3001}' | '\u{3002}' | '\u{3008}'..='\u{3011}' | '\u{3014}'..='\u{301f}'
        | '\u{ff61}'..='\u{ff65}' | '\u{30fb}'
        | '\u{ff0e}' | '\u{ff0c}' | '\u{ff1f}' | '\u{ff1a}' | '\u{ff1b}' | '\u{ff01}'
        | '\u{ff02}' | '\u{ff08}' | '\u{ff09}'
    )
}

/// `_remove_punct` (`[.,?:;!"()]`), then with `asian` `_remove_asian_punct`.
fn remove_punct(sent: &str, asian: bool) -> String {
    sent.chars()
        .filter(|&c| !matches!(c, '.' | ',' | '?' | ':' | ';' | '!' | '"' | '(' | ')'))
        .filter(|&c| !(asian && is_asian_punct(c)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(sent: &str, flags: [bool; 4]) -> String {
        let [normalized, no_punct, asian_support, case_sensitive] = flags;
        let t = TercomTokenizer {
            normalized,
            no_punct,
            asian_support,
            case_sensitive,
        };
        let mut out = String::new();
        t.tokenize_into(sent, &mut out);
        out
    }

    #[test]
    fn sacrebleu_outputs() {
        // Each expected string is TercomTokenizer(normalized, no_punct,
        // asian_support, case_sensitive)(line) from sacreBLEU 2.6.0.
        let line = "He said: \"It's John's (5.5, 1-2) &amp; Co.'s\"";
        let cases = [
            (
                [false; 4],
                "he said: \"it's john's (5.5, 1-2) &amp; co.'s\"",
            ),
            (
                [true, false, false, false],
                "he said : \" it 's john 's ( 5.5 , 1 - 2 ) & co . 's \"",
            ),
            (
                [false, true, false, true],
                "He said It's John's 55 1-2 &amp Co's",
            ),
            (
                [true, true, false, false],
                "he said it 's john 's 55 1 - 2 & co 's",
            ),
        ];
        for (flags, expected) in cases {
            assert_eq!(tok(line, flags), expected, "{flags:?}");
        }
    }

    #[test]
    fn asian_support_outputs() {
        let line = "東京は「日本」の首都です。ｶﾀｶﾅ，全角！ＡＢ";
        let cases = [
            ([false; 4], "東京は「日本」の首都です。ｶﾀｶﾅ，全角！ａｂ"),
            (
                [true, false, false, false],
                "東京は「日本」の首都です。ｶﾀｶﾅ，全角！ａｂ",
            ),
            (
                [true, false, true, false],
                "東 京 は 「 日 本 」 の 首 都 です 。 ｶﾀｶﾅ ， 全 角 ！ ａｂ",
            ),
            (
                [false, true, true, false],
                "東京は日本の首都ですｶﾀｶﾅ全角ａｂ",
            ),
            (
                [true, true, true, true],
                "東 京 は 日 本 の 首 都 です ｶﾀｶﾅ 全 角 ＡＢ",
            ),
        ];
        for (flags, expected) in cases {
            assert_eq!(tok(line, flags), expected, "{flags:?}");
        }
    }

    #[test]
    fn empty_and_whitespace() {
        assert_eq!(tok("", [true; 4]), "");
        assert_eq!(tok(" \t ", [true; 4]), "");
        assert_eq!(tok("a\n-b\nc", [true, false, false, false]), "ab c");
        // Kana runs are never split on their own (see `normalize_asian`).
        assert_eq!(tok("ひらがな", [true, false, true, false]), "ひらがな");
    }
}

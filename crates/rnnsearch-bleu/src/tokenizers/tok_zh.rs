//! The `zh` tokenizer (sacreBLEU's `TokenizerZh`, by Shujian Huang) for
//! Chinese targets.
//!
//! sacreBLEU strips the line (Python's `str.strip()`), surrounds every
//! "Chinese" character with spaces, and runs the result through
//! `TokenizerRegexp`, the same four substitutions and whitespace collapse
//! that end 13a, but without 13a's one-space padding.
//!
//! "Chinese" is membership in sacreBLEU's `_UCODE_RANGES`, compared as
//! Python strings. Two of those bounds were meant as astral code points
//! but are written `u'\u20000'`, `u'\u2a6d6'`, `u'\u2f800'`, `u'\u2fa1d'`:
//! each is a *two*-character string (a BMP character followed by an ASCII
//! digit or letter). A one-character string `c` then satisfies
//! `'\u2000' + '0' <= c <= '\u2a6d' + '6'` exactly for U+2001..=U+2A6D, so
//! sacreBLEU splits general punctuation (`—`, `“`), currency (`€`), arrows
//! and maths symbols off words, while the intended CJK Extension B
//! characters (U+20000..) are not split. We reproduce what sacreBLEU does.

use super::base::Tokenizer;
use super::tok_13a::regexp_post_process;
use crate::text::{is_py_space, py_rstrip};

/// The Chinese tokenizer (`zh`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenizerZh;

impl Tokenizer for TokenizerZh {
    fn signature(&self) -> &'static str {
        "zh"
    }

    fn tokenize_into(&self, line: &str, out: &mut String) {
        let line = py_rstrip(line).trim_start_matches(is_py_space);
        let mut spaced = String::with_capacity(line.len() * 2);
        for c in line.chars() {
            if is_chinese_char(c) {
                spaced.push(' ');
                spaced.push(c);
                spaced.push(' ');
            } else {
                spaced.push(c);
            }
        }
        regexp_post_process(&spaced, false, out);
    }
}

/// sacreBLEU's `_is_chinese_char`: membership in `_UCODE_RANGES`, in the
/// same order, with the two mis-typed astral ranges as Python evaluates
/// them (see the module documentation).
fn is_chinese_char(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4db5}' // CJK Unified Ideographs Extension A
        | '\u{4e00}'..='\u{9fa5}' // CJK Unified Ideographs
        | '\u{9fa6}'..='\u{9fbb}' // CJK Unified Ideographs, release 4.1
        | '\u{f900}'..='\u{fa2d}' // CJK Compatibility Ideographs
        | '\u{fa30}'..='\u{fa6a}' // CJK Compatibility Ideographs, release 3.2
        | '\u{fa70}'..='\u{fad9}' // CJK Compatibility Ideographs, release 4.1
        | '\u{2001}'..='\u{2a6d}' // written (u'\u20000', u'\u2a6d6')
        | '\u{2f81}'..='\u{2fa1}' // written (u'\u2f800', u'\u2fa1d')
        | '\u{ff00}'..='\u{ffef}' // full-width ASCII and punctuation, half-width kana, Hangul
        | '\u{2e80}'..='\u{2eff}' // CJK Radicals Supplement
        | '\u{3000}'..='\u{303f}' // CJK punctuation
        | '\u{31c0}'..='\u{31ef}' // CJK strokes
        | '\u{2f00}'..='\u{2fdf}' // Kangxi Radicals
        | '\u{2ff0}'..='\u{2fff}' // ideographic description characters
        | '\u{3100}'..='\u{312f}' // Bopomofo
        | '\u{31a0}'..='\u{31bf}' // Bopomofo Extended
        | '\u{fe10}'..='\u{fe1f}' // vertical forms
        | '\u{fe30}'..='\u{fe4f}' // CJK Compatibility Forms
        // (u'\u2600', u'\u26ff') and (u'\u2700', u'\u27bf'), miscellaneous
        // symbols and dingbats, lie inside U+2001..=U+2A6D above.
        | '\u{3200}'..='\u{32ff}' // enclosed CJK letters and months
        | '\u{3300}'..='\u{33ff}' // CJK compatibility
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(line: &str) -> String {
        TokenizerZh.tokenize(line)
    }

    #[test]
    fn chinese_ranges_as_python_compares_them() {
        // The maximal runs of `TokenizerZh._is_chinese_char(chr(c))` over
        // all code points, printed by sacreBLEU 2.6.0 on Python 3.11.
        let expected: [(u32, u32); 13] = [
            (0x2001, 0x2a6d),
            (0x2e80, 0x2fdf),
            (0x2ff0, 0x303f),
            (0x3100, 0x312f),
            (0x31a0, 0x31ef),
            (0x3200, 0x4db5),
            (0x4e00, 0x9fbb),
            (0xf900, 0xfa2d),
            (0xfa30, 0xfa6a),
            (0xfa70, 0xfad9),
            (0xfe10, 0xfe1f),
            (0xfe30, 0xfe4f),
            (0xff00, 0xffef),
        ];
        for c in (0..=0x10ffffu32).filter_map(char::from_u32) {
            let cp = u32::from(c);
            let inside = expected.iter().any(|&(a, b)| (a..=b).contains(&cp));
            assert_eq!(is_chinese_char(c), inside, "U+{cp:04X}");
        }
    }

    #[test]
    fn sacrebleu_outputs() {
        // Every expected string is TokenizerZh()(line) from sacreBLEU 2.6.0.
        let cases = [
            (".5", ".5"),
            ("5.", "5."),
            (" a.b ", "a . b"),
            ("中.5", "中 . 5"),
            ("1,000.", "1,000."),
            ("a-1 1-a", "a-1 1 - a"),
            ("“中文”—€→", "“ 中 文 ” — € →"),
            ("ｈｅｌｌｏ，世界！", "ｈ ｅ ｌ ｌ ｏ ， 世 界 ！"),
            ("\u{3000}x\u{3000}", "x"),
            ("", ""),
            ("a\u{20000}b", "a\u{20000}b"),
            ("x™y", "x ™ y"),
            ("x\u{2a6d}y\u{2a6e}z", "x \u{2a6d} y\u{2a6e}z"),
            ("Ｕ．Ｓ．1.5", "Ｕ ． Ｓ ． 1.5"),
            ("他说：“OK。”", "他 说 ： “ OK 。 ”"),
            ("AT&T 3-4 $5.00.", "AT & T 3 - 4 $ 5.00."),
        ];
        for (line, expected) in cases {
            assert_eq!(tok(line), expected, "line {line:?}");
        }
    }
}

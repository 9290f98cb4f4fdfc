//! The `intl` tokenizer (mteval-v14 international).
//!
//! sacreBLEU applies three substitutions with the Python `regex` module and
//! then collapses whitespace (no padding, no entity unescaping):
//!
//! 1. `(\P{N})(\p{P})` → `\1 \2 ` (punctuation after a non-number)
//! 2. `(\p{P})(\P{N})` → ` \1 \2` (punctuation before a non-number)
//! 3. `(\p{S})` → ` \1 ` (every symbol)
//!
//! `P`, `S` and `N` are Unicode general category groups (`Pc Pd Ps Pe Pi Pf
//! Po`, `Sm Sc Sk So`, `Nd Nl No`), looked up with
//! `unicode-general-category`. Note that, as in mteval-v14, a number
//! followed by a final period keeps the period attached (`2015.`).

use unicode_general_category::{get_general_category, GeneralCategory as G};

use super::base::{join_words, Tokenizer};

/// The mteval-v14 international tokenizer (`intl`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenizerIntl;

impl Tokenizer for TokenizerIntl {
    fn signature(&self) -> &'static str {
        "intl"
    }

    fn tokenize_into(&self, line: &str, out: &mut String) {
        let mut a = String::with_capacity(line.len() * 2 + 8);
        split_pairs(line, &mut a, |c| !is_number(c), is_punct, Pad::After);
        let mut b = String::with_capacity(a.len() + 16);
        split_pairs(&a, &mut b, is_punct, |c| !is_number(c), Pad::Before);
        a.clear();
        for c in b.chars() {
            if is_symbol(c) {
                a.push(' ');
                a.push(c);
                a.push(' ');
            } else {
                a.push(c);
            }
        }
        join_words(&a, out);
    }
}

/// The general category group of a character, as far as `intl` cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Punct,
    Symbol,
    Number,
    Other,
}

#[inline]
fn class(c: char) -> Class {
    if c.is_ascii() {
        return match c {
            '0'..='9' => Class::Number,
            '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~' => Class::Symbol,
            _ if c.is_ascii_punctuation() => Class::Punct,
            _ => Class::Other,
        };
    }
    match get_general_category(c) {
        G::ConnectorPunctuation
        | G::DashPunctuation
        | G::OpenPunctuation
        | G::ClosePunctuation
        | G::InitialPunctuation
        | G::FinalPunctuation
        | G::OtherPunctuation => Class::Punct,
        G::MathSymbol | G::CurrencySymbol | G::ModifierSymbol | G::OtherSymbol => Class::Symbol,
        G::DecimalNumber | G::LetterNumber | G::OtherNumber => Class::Number,
        _ => Class::Other,
    }
}

#[inline]
fn is_punct(c: char) -> bool {
    class(c) == Class::Punct
}

#[inline]
fn is_symbol(c: char) -> bool {
    class(c) == Class::Symbol
}

#[inline]
fn is_number(c: char) -> bool {
    class(c) == Class::Number
}

/// Where a matched pair `xy` gets its spaces.
#[derive(Clone, Copy)]
enum Pad {
    /// `\1 \2 `
    After,
    /// ` \1 \2`
    Before,
}

/// One non-overlapping left-to-right `(first)(second)` substitution over
/// characters.
fn split_pairs(
    input: &str,
    out: &mut String,
    first: impl Fn(char) -> bool,
    second: impl Fn(char) -> bool,
    pad: Pad,
) {
    let mut chars = input.chars().peekable();
    while let Some(x) = chars.next() {
        if first(x) {
            if let Some(&y) = chars.peek() {
                if second(y) {
                    chars.next();
                    match pad {
                        Pad::After => {
                            out.push(x);
                            out.push(' ');
                            out.push(y);
                            out.push(' ');
                        }
                        Pad::Before => {
                            out.push(' ');
                            out.push(x);
                            out.push(' ');
                            out.push(y);
                        }
                    }
                    continue;
                }
            }
        }
        out.push(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    const SUBS: [(&str, &str); 3] = [
        (r"(\P{N})(\p{P})", "${1} ${2} "),
        (r"(\p{P})(\P{N})", " ${1} ${2}"),
        (r"(\p{S})", " ${1} "),
    ];

    /// sacreBLEU's `intl` written with the regex crate.
    fn reference(line: &str) -> String {
        let mut s = line.to_string();
        thread_local! {
            static COMPILED: Vec<Regex> = SUBS.iter().map(|(p, _)| Regex::new(p).unwrap()).collect();
        }
        COMPILED.with(|compiled| {
            for (re, (_, replacement)) in compiled.iter().zip(SUBS) {
                s = re.replace_all(&s, replacement).into_owned();
            }
        });
        let mut out = String::new();
        join_words(&s, &mut out);
        out
    }

    fn tok(line: &str) -> String {
        TokenizerIntl.tokenize(line)
    }

    #[test]
    fn ascii_classes_match_unicode_tables() {
        for b in 0u8..128 {
            let c = char::from(b);
            let expected = match get_general_category(c) {
                G::ConnectorPunctuation
                | G::DashPunctuation
                | G::OpenPunctuation
                | G::ClosePunctuation
                | G::InitialPunctuation
                | G::FinalPunctuation
                | G::OtherPunctuation => Class::Punct,
                G::MathSymbol | G::CurrencySymbol | G::ModifierSymbol | G::OtherSymbol => {
                    Class::Symbol
                }
                G::DecimalNumber | G::LetterNumber | G::OtherNumber => Class::Number,
                _ => Class::Other,
            };
            assert_eq!(class(c), expected, "{c:?}");
        }
    }

    #[test]
    fn known_outputs() {
        assert_eq!(tok("Hello, world!"), "Hello , world !");
        assert_eq!(tok("In 2015."), "In 2015.");
        assert_eq!(tok("1,000.5 €"), "1,000.5 €");
        assert_eq!(tok("「你好」。"), "「 你好 」 。");
        assert_eq!(tok("a+b=c"), "a + b = c");
        assert_eq!(tok(""), "");
    }

    #[test]
    fn equals_regex_reference_on_random_text() {
        let alphabet: Vec<char> = "ab 09.,-'&;:/()$+€£©½²٣ⅷ\t\u{a0}é—。，中「」«»‘’\u{1c}"
            .chars()
            .collect();
        let mut state = 0x0bad_cafe_dead_beefu64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 20) as usize;
            let mut line = String::new();
            let mut s = state;
            for _ in 0..len {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                line.push(alphabet[(s >> 33) as usize % alphabet.len()]);
            }
            assert_eq!(tok(&line), reference(&line), "line {line:?}");
        }
    }
}

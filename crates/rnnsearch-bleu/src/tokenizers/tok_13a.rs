//! The `13a` tokenizer (mteval-v13a), sacreBLEU's default.
//!
//! sacreBLEU's version: remove `<skipped>`, join `-\n` and turn newlines
//! into spaces, unescape `&quot; &amp; &lt; &gt;` (in that order), pad with
//! one space on each side, then apply four regex substitutions in turn:
//!
//! 1. `([\{-\~\[-\` -\&\(-\+\:-\@\/])` → ` \1 ` (ASCII punctuation except
//!    `'`, `,`, `-`, `.`)
//! 2. `([^0-9])([\.,])` → `\1 \2 ` (period/comma not after a digit)
//! 3. `([\.,])([^0-9])` → ` \1 \2` (period/comma not before a digit)
//! 4. `([0-9])(-)` → `\1 \2 ` (dash after a digit)
//!
//! and finally collapse whitespace. The substitutions and the whitespace
//! collapse are sacreBLEU's `TokenizerRegexp`, shared with the `zh`
//! tokenizer ([`regexp_post_process`]) and, in pieces, with TER's Tercom
//! normalisation. Each substitution is a left-to-right,
//! non-overlapping scan; the two-character patterns only test ASCII bytes
//! (digits, `.`, `,`, `-`), which never occur inside a multi-byte UTF-8
//! sequence, so scanning bytes gives exactly the matches Python finds
//! scanning characters.

use std::borrow::Cow;

use super::base::{join_words, Tokenizer};

/// The mteval-v13a tokenizer (`13a`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokenizer13a;

impl Tokenizer for Tokenizer13a {
    fn signature(&self) -> &'static str {
        "13a"
    }

    fn tokenize_into(&self, line: &str, out: &mut String) {
        regexp_post_process(&normalize(line), true, out);
    }
}

/// sacreBLEU's `TokenizerRegexp`: substitutions 1–4, then whitespace
/// collapsed, into `out`. `pad` first surrounds `line` with one space on
/// each side (13a's own step, fused here to save a copy); `zh` passes its
/// line unpadded, which matters: `.5` stays `.5` there but 13a gives `. 5`.
pub(super) fn regexp_post_process(line: &str, pad: bool, out: &mut String) {
    let mut a = Vec::with_capacity(line.len() * 2 + 8);
    pad_punctuation(line.as_bytes(), pad, &mut a);
    let mut b = Vec::with_capacity(a.len() + 16);
    pad_periods_commas_dashes(&mut a, &mut b);
    join_words(&bytes_to_string(a), out);
}

/// The bytes of a substituted line as text. Only ASCII spaces were
/// inserted next to ASCII bytes, so valid UTF-8 stays valid.
pub(crate) fn bytes_to_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Substitutions 2, 3 and 4 in turn, on `a` in place (`b` is scratch).
pub(crate) fn pad_periods_commas_dashes(a: &mut Vec<u8>, b: &mut Vec<u8>) {
    b.clear();
    pad_after_pairs(a, b, is_period_comma, |x| !x.is_ascii_digit());
    a.clear();
    pad_before_pairs(b, a, is_period_comma, |y| !y.is_ascii_digit());
    b.clear();
    pad_after_pairs(a, b, |y| y == b'-', |x| x.is_ascii_digit());
    std::mem::swap(a, b);
}

/// The language-independent part: `<skipped>`, line breaks, entities.
fn normalize(line: &str) -> Cow<'_, str> {
    let mut line = Cow::Borrowed(line);
    if line.contains("<skipped>") {
        line = Cow::Owned(line.replace("<skipped>", ""));
    }
    if line.contains('\n') {
        line = Cow::Owned(line.replace("-\n", "").replace('\n', " "));
    }
    if line.contains('&') {
        line = Cow::Owned(
            line.replace("&quot;", "\"")
                .replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">"),
        );
    }
    line
}

/// `[\{-\~\[-\` -\&\(-\+\:-\@\/]`: the ASCII characters that substitution 1
/// surrounds with spaces.
#[inline]
fn is_13a_punct(b: u8) -> bool {
    matches!(b, b'{'..=b'~' | b'['..=b'`' | b' '..=b'&' | b'('..=b'+' | b':'..=b'@' | b'/')
}

#[inline]
fn is_period_comma(b: u8) -> bool {
    b == b'.' || b == b','
}

/// Applies substitution 1 to `line`, appending to `out`; with `pad`, to
/// ` {line} ` (13a's and Tercom's padding).
pub(crate) fn pad_punctuation(line: &[u8], pad: bool, out: &mut Vec<u8>) {
    if pad {
        out.push(b' ');
    }
    let mut done = 0;
    for (p, &b) in line.iter().enumerate() {
        if is_13a_punct(b) {
            out.extend_from_slice(&line[done..p]);
            out.extend_from_slice(&[b' ', b, b' ']);
            done = p + 1;
        }
    }
    out.extend_from_slice(&line[done..]);
    if pad {
        out.push(b' ');
    }
}

/// `(x)(anchor)` → `x anchor ` (substitutions 2 and 4): a left-to-right,
/// non-overlapping scan, anchored on the rare ASCII byte of the pair.
fn pad_after_pairs(
    input: &[u8],
    out: &mut Vec<u8>,
    anchor: impl Fn(u8) -> bool,
    before: impl Fn(u8) -> bool,
) {
    let mut done = 0; // input[..done] is written (and consumed)
    for p in 1..input.len() {
        if anchor(input[p]) && p > done && before(input[p - 1]) {
            out.extend_from_slice(&input[done..p]);
            out.extend_from_slice(&[b' ', input[p], b' ']);
            done = p + 1;
        }
    }
    out.extend_from_slice(&input[done..]);
}

/// `(anchor)(y)` → ` anchor y` (substitution 3), scanned like
/// [`pad_after_pairs`].
fn pad_before_pairs(
    input: &[u8],
    out: &mut Vec<u8>,
    anchor: impl Fn(u8) -> bool,
    after: impl Fn(u8) -> bool,
) {
    let mut done = 0;
    for p in 0..input.len().saturating_sub(1) {
        if anchor(input[p]) && p >= done && after(input[p + 1]) {
            out.extend_from_slice(&input[done..p]);
            out.extend_from_slice(&[b' ', input[p], b' ', input[p + 1]]);
            done = p + 2;
        }
    }
    out.extend_from_slice(&input[done..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    const SUBS: [(&str, &str); 4] = [
        (r"([\{-\~\[-` -\&\(-\+:-@/])", " ${1} "),
        (r"([^0-9])([\.,])", "${1} ${2} "),
        (r"([\.,])([^0-9])", " ${1} ${2}"),
        (r"([0-9])(-)", "${1} ${2} "),
    ];

    /// sacreBLEU's 13a written with the regex crate, substitution by
    /// substitution (the reference this byte scanner must equal).
    fn reference(line: &str) -> String {
        let line = normalize(line);
        reference_regexp(&format!(" {line} "))
    }

    /// sacreBLEU's `TokenizerRegexp` with the regex crate.
    fn reference_regexp(line: &str) -> String {
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
        Tokenizer13a.tokenize(line)
    }

    #[test]
    fn known_outputs() {
        assert_eq!(tok("Hello, world!"), "Hello , world !");
        assert_eq!(tok("It costs $1,000.50."), "It costs $ 1,000.50 .");
        assert_eq!(tok("1990-2000 a-b"), "1990 - 2000 a-b");
        assert_eq!(tok("&quot;Hi&quot; &amp; &lt;b&gt;"), "\" Hi \" & < b >");
        assert_eq!(tok("&amp;quot;"), "& quot ;");
        assert_eq!(tok("a<skipped>b"), "ab");
        assert_eq!(tok("don't."), "don't .");
        assert_eq!(tok("..,.x"), ". . , . x");
        assert_eq!(tok(""), "");
        assert_eq!(tok("Straße, café."), "Straße , café .");
    }

    #[test]
    fn equals_regex_reference_on_random_text() {
        let alphabet: Vec<char> = "ab 0 1 9.,-'&;:/()[]{}<>\"\t\u{a0}é\u{2014}。，中\u{1c}"
            .chars()
            .collect();
        let mut state = 0x1234_5678_9abc_def0u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 24) as usize;
            let mut line = String::new();
            let mut s = state;
            for _ in 0..len {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                line.push(alphabet[(s >> 33) as usize % alphabet.len()]);
            }
            assert_eq!(tok(&line), reference(&line), "line {line:?}");
            let mut unpadded = String::new();
            regexp_post_process(&line, false, &mut unpadded);
            assert_eq!(unpadded, reference_regexp(&line), "line {line:?}");
        }
    }
}

//! Python string semantics that sacreBLEU relies on, and token interning.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Python's `str.isspace()`: Unicode `White_Space` plus U+001C..U+001F
/// (information separators, bidi classes B and S), which Rust's
/// `char::is_whitespace` leaves out. `str.split()` and `str.rstrip()`
/// without arguments use exactly this set.
#[inline]
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `s.split()` (no argument): runs of whitespace separate words,
/// and no empty word is produced.
#[inline]
pub(crate) fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|w| !w.is_empty())
}

/// Python's `s.rstrip()` (no argument).
#[inline]
pub(crate) fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(is_py_space)
}

/// Python's `s.lower()` (full case mapping, final sigma included), with an
/// allocation-free path for strings that are already lowercase ASCII.
pub(crate) fn py_lower(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

/// A small, fast, non-cryptographic hasher (the "Fx" multiply-rotate hash)
/// for short token strings.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// Maps distinct token strings to dense ids, so n-grams become short
/// integer sequences (compared exactly, never by hash alone).
#[derive(Default)]
pub(crate) struct Interner {
    ids: HashMap<Box<str>, u32, BuildHasherDefault<FxHasher>>,
}

impl Interner {
    /// The id of `token`, assigning the next free id on first sight.
    #[inline]
    pub(crate) fn id(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.ids.get(token) {
            return id;
        }
        let id = u32::try_from(self.ids.len()).expect("fewer than 2^32 distinct tokens");
        self.ids.insert(token.into(), id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_set() {
        // The exact list printed by Python 3.11:
        // [c for c in range(0x110000) if chr(c).isspace()]
        let expected: Vec<u32> = [
            0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680,
        ]
        .into_iter()
        .chain(0x2000..=0x200a)
        .chain([0x2028, 0x2029, 0x202f, 0x205f, 0x3000])
        .collect();
        let got: Vec<u32> = (0..=0x10ffffu32)
            .filter_map(char::from_u32)
            .filter(|&c| is_py_space(c))
            .map(u32::from)
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn split_and_rstrip() {
        let words: Vec<&str> = py_split("  a\u{1c}b\u{3000}c\t\n").collect();
        assert_eq!(words, ["a", "b", "c"]);
        assert_eq!(py_rstrip(" x y \u{a0}\u{1f}"), " x y");
        assert_eq!(py_split("").count(), 0);
        assert_eq!(py_split(" \t ").count(), 0);
        let words: Vec<&str> = py_split("a\x0b b\x1fc  ").collect();
        assert_eq!(words, ["a", "b", "c"]);
        let words: Vec<&str> = py_split("\u{a0}é\u{2028}ü  x").collect();
        assert_eq!(words, ["é", "ü", "x"]);
    }

    #[test]
    fn lower_matches_python() {
        assert_eq!(py_lower("ABC def"), "abc def");
        assert!(matches!(py_lower("abc"), Cow::Borrowed(_)));
        // 'İ'.lower() == 'i̇' and final sigma, as in Python.
        assert_eq!(py_lower("İ"), "i\u{307}");
        assert_eq!(py_lower("ΟΔΟΣ ΟΔΟΣ."), "οδο\u{3c2} οδο\u{3c2}.");
        assert_eq!(py_lower("ÄÖÜ"), "äöü");
    }

    #[test]
    fn interner_is_dense_and_stable() {
        let mut interner = Interner::default();
        assert_eq!(interner.id("a"), 0);
        assert_eq!(interner.id("b"), 1);
        assert_eq!(interner.id("a"), 0);
        assert_eq!(interner.id("a long token over eight bytes"), 2);
    }
}

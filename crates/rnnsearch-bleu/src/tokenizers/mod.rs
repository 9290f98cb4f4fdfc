//! BLEU tokenizers, each reproducing the sacreBLEU tokenizer of that name
//! character for character.

mod base;
mod tok_13a;
mod tok_char;
mod tok_intl;
mod tok_none;
mod tok_zh;

use std::fmt;
use std::str::FromStr;

pub use base::Tokenizer;
pub use tok_13a::Tokenizer13a;
pub use tok_char::TokenizerChar;
pub use tok_intl::TokenizerIntl;
pub use tok_none::TokenizerNone;
pub use tok_zh::TokenizerZh;

pub(crate) use base::join_words;
pub(crate) use tok_13a::{bytes_to_string, pad_periods_commas_dashes, pad_punctuation};

use crate::Error;

/// The tokenizers this crate provides, by sacreBLEU name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TokenizerKind {
    /// `13a`: mteval-v13a, the WMT standard and sacreBLEU's default.
    #[default]
    Tok13a,
    /// `intl`: mteval-v14 international (Unicode punctuation and symbols).
    Intl,
    /// `char`: every non-space character is a token.
    Char,
    /// `none`: split on whitespace only.
    None,
    /// `zh`: Chinese characters (and sacreBLEU's other ranges) split
    /// apart, the rest as 13a's substitutions.
    Zh,
}

impl TokenizerKind {
    /// All kinds, in sacreBLEU's listing order.
    pub const ALL: [TokenizerKind; 5] =
        [Self::None, Self::Zh, Self::Tok13a, Self::Intl, Self::Char];

    /// The sacreBLEU name (`13a`, `intl`, `char`, `none`, `zh`).
    pub fn name(self) -> &'static str {
        self.tokenizer().signature()
    }

    /// The tokenizer implementing this kind.
    pub fn tokenizer(self) -> &'static dyn Tokenizer {
        match self {
            Self::Tok13a => &Tokenizer13a,
            Self::Intl => &TokenizerIntl,
            Self::Char => &TokenizerChar,
            Self::None => &TokenizerNone,
            Self::Zh => &TokenizerZh,
        }
    }
}

impl fmt::Display for TokenizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TokenizerKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| Error::InvalidOption(format!("unknown tokenizer {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in TokenizerKind::ALL {
            assert_eq!(kind.name().parse::<TokenizerKind>().unwrap(), kind);
        }
        assert_eq!(TokenizerKind::default().to_string(), "13a");
        assert_eq!("zh".parse::<TokenizerKind>().unwrap(), TokenizerKind::Zh);
        assert!("ja-mecab".parse::<TokenizerKind>().is_err());
    }
}

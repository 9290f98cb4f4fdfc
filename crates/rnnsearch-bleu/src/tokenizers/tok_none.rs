//! The `none` tokenizer: the line is left as it is, so BLEU splits it on
//! whitespace only.

use super::base::Tokenizer;

/// The identity tokenizer (`none`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenizerNone;

impl Tokenizer for TokenizerNone {
    fn signature(&self) -> &'static str {
        "none"
    }

    fn tokenize_into(&self, line: &str, out: &mut String) {
        out.clear();
        out.push_str(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_line() {
        assert_eq!(TokenizerNone.tokenize(" a,b  c. "), " a,b  c. ");
    }
}

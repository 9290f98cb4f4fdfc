//! The `char` tokenizer: every character becomes a token.
//!
//! sacreBLEU returns `" ".join(line)`: all characters of the line separated
//! by single spaces, whitespace characters included (BLEU's later
//! whitespace split then drops those).

use super::base::Tokenizer;

/// The character-level tokenizer (`char`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenizerChar;

impl Tokenizer for TokenizerChar {
    fn signature(&self) -> &'static str {
        "char"
    }

    fn tokenize_into(&self, line: &str, out: &mut String) {
        out.clear();
        for (i, c) in line.chars().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_every_character() {
        assert_eq!(TokenizerChar.tokenize("ab c"), "a b   c");
        assert_eq!(TokenizerChar.tokenize("你好!"), "你 好 !");
        assert_eq!(TokenizerChar.tokenize(""), "");
    }
}

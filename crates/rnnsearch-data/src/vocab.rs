//! Subword vocabularies: a thin wrapper around a Hugging Face `tokenizers::Tokenizer`.
//!
//! The pipeline is NFC normaliser → Metaspace pre-tokenizer (sentencepiece-style
//! `▁` word boundaries), optionally followed by a split that isolates every punctuation
//! character (so `Hund.` and `Hund` share the subword `▁Hund`; a run like `...` stays three
//! pieces, and punctuation that opens a word costs a lone `▁` before it) → BPE with `<unk>` →
//! Metaspace decoder. Because spaces
//! survive as `▁`, decoding is an exact inverse of encoding on normalised text
//! (see [`crate::normalize`]), except for characters never seen in training,
//! which become `<unk>`. The saved `tokenizer.json` loads unchanged in Python's
//! `tokenizers.Tokenizer.from_file`.

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tokenizers::decoders::metaspace::Metaspace as MetaspaceDecoder;
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::normalizers::NFC;
use tokenizers::pre_tokenizers::metaspace::Metaspace;
use tokenizers::pre_tokenizers::punctuation::Punctuation;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::SplitDelimiterBehavior;
use tokenizers::{AddedToken, Tokenizer};

use crate::Error;

/// A trained subword vocabulary with fixed special-token ids.
#[derive(Clone)]
pub struct Vocab {
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for Vocab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocab").field("len", &self.len()).finish()
    }
}

impl Vocab {
    pub const PAD: u32 = 0;
    pub const UNK: u32 = 1;
    pub const BOS: u32 = 2;
    pub const EOS: u32 = 3;
    /// The special tokens, in id order; training puts them first so the ids hold.
    pub const SPECIALS: [&'static str; 4] = ["<pad>", "<unk>", "<s>", "</s>"];

    /// Trains a BPE vocabulary of at most `vocab_size` entries on `texts`
    /// (normalised lines).
    ///
    /// Every character of the training text is in the vocabulary, so a
    /// `vocab_size` at or below specials + alphabet yields a pure character-level
    /// vocabulary (no merges): that is how the `char` tokenizer is made. Merges
    /// need a pair frequency of at least 2, so a small corpus may give fewer
    /// entries than asked for. `split_punctuation` keeps merges from crossing a
    /// punctuation character.
    pub fn train<S: AsRef<str> + Sync>(
        texts: &[S],
        vocab_size: usize,
        split_punctuation: bool,
    ) -> Result<Vocab, Error> {
        let model = BPE::builder()
            .unk_token(Self::SPECIALS[Self::UNK as usize].to_string())
            .build()
            .map_err(|e| Error::Train(e.to_string()))?;
        let mut tokenizer = Tokenizer::new(model);
        let words: PreTokenizerWrapper = Metaspace::default().into();
        let pre_tokenizer = if split_punctuation {
            let isolated = Punctuation::new(SplitDelimiterBehavior::Isolated);
            Sequence::new(vec![words, isolated.into()]).into()
        } else {
            words
        };
        tokenizer
            .with_normalizer(Some(NFC))
            .with_pre_tokenizer(Some(pre_tokenizer))
            .with_decoder(Some(MetaspaceDecoder::default()));
        let specials = Self::SPECIALS
            .iter()
            .map(|s| AddedToken::from(s.to_string(), true))
            .collect();
        let mut trainer: TrainerWrapper = BpeTrainer::builder()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(specials)
            .build()
            .into();
        tokenizer
            .train(&mut trainer, texts.iter().map(|s| s.as_ref()))
            .map_err(|e| Error::Train(e.to_string()))?;
        Self::checked(tokenizer).map_err(Error::Train)
    }

    /// Wraps a tokenizer after checking that the special tokens have their fixed ids.
    ///
    /// Special-token strings in the *text* are encoded as ordinary characters, so a
    /// literal `<s>` in a corpus can never turn into BOS.
    pub fn from_tokenizer(tokenizer: Tokenizer) -> Result<Vocab, String> {
        Self::checked(tokenizer)
    }

    fn checked(mut tokenizer: Tokenizer) -> Result<Vocab, String> {
        tokenizer.set_encode_special_tokens(true);
        for (id, token) in Self::SPECIALS.iter().enumerate() {
            match tokenizer.token_to_id(token) {
                Some(found) if found == id as u32 => {}
                Some(found) => return Err(format!("{token} has id {found}, expected {id}")),
                None => return Err(format!("special token {token} is missing")),
            }
        }
        Ok(Vocab { tokenizer })
    }

    /// Whether the pre-tokenizer isolates punctuation (`split_punctuation` at training).
    pub fn splits_punctuation(&self) -> bool {
        match self.tokenizer.get_pre_tokenizer() {
            Some(PreTokenizerWrapper::Sequence(steps)) => steps
                .as_ref()
                .iter()
                .any(|step| matches!(step, PreTokenizerWrapper::Punctuation(_))),
            Some(PreTokenizerWrapper::Punctuation(_)) => true,
            _ => false,
        }
    }

    /// Loads a `tokenizer.json` file.
    pub fn load(path: &Path) -> Result<Vocab, Error> {
        let json = fs::read_to_string(path).map_err(|e| Error::io(path, "cannot read", e))?;
        let tokenizer = Tokenizer::from_str(&json)
            .map_err(|e| Error::vocab(path, format!("not a tokenizer file: {e}")))?;
        Self::from_tokenizer(tokenizer).map_err(|m| Error::vocab(path, m))
    }

    /// Saves as a Hugging Face `tokenizer.json`, atomically: a crash leaves either
    /// the old file or the new one, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let json = self
            .tokenizer
            .to_string(true)
            .map_err(|e| Error::vocab(path, format!("cannot serialise: {e}")))?;
        let tmp = temp_path(path);
        let written = fs::write(&tmp, json).and_then(|()| fs::rename(&tmp, path));
        written.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(path, "cannot write", e)
        })
    }

    /// Subword ids of one line, without BOS/EOS. Unknown characters map to
    /// [`Vocab::UNK`]; this never panics.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self.tokenizer.encode_fast(text, false) {
            Ok(encoding) => encoding.get_ids().to_vec(),
            Err(_) => vec![Self::UNK],
        }
    }

    /// [`Vocab::encode`] for many lines at once (parallel inside `tokenizers`).
    pub fn encode_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<Vec<u32>> {
        let inputs: Vec<&str> = texts.iter().map(|s| s.as_ref()).collect();
        match self.tokenizer.encode_batch_fast(inputs, false) {
            Ok(encodings) => encodings.iter().map(|e| e.get_ids().to_vec()).collect(),
            Err(_) => texts.iter().map(|t| self.encode(t.as_ref())).collect(),
        }
    }

    /// Detokenised text. Special tokens (PAD, UNK, BOS, EOS) and out-of-range ids
    /// are skipped — it does not stop at EOS, the caller cuts there. Whitespace in
    /// the result is collapsed, so even odd model output is normalised text.
    pub fn decode(&self, ids: &[u32]) -> String {
        let text = self.tokenizer.decode(ids, true).unwrap_or_default();
        crate::normalize(&text)
    }

    /// The token string of every id (`▁` marks a word start), for attention plots.
    /// Out-of-range ids show as `<id?>`.
    pub fn pieces(&self, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&id| {
                self.tokenizer
                    .id_to_token(id)
                    .unwrap_or_else(|| format!("<{id}?>"))
            })
            .collect()
    }

    /// Number of entries, specials included.
    pub fn len(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Never true for a valid vocabulary (the specials are always there).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `other` splits and numbers text exactly as this vocabulary does (same
    /// normaliser, pre-tokeniser, entries and merges): the condition for models of two runs
    /// to translate as one ensemble.
    pub fn same_as(&self, other: &Vocab) -> bool {
        let json = |v: &Vocab| v.tokenizer.to_string(false).ok();
        match (json(self), json(other)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// The underlying Hugging Face tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
}

/// A sibling temp file, unique per process, matching the repo's `*.tmp` ignore rule.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// The sentencepiece / Metaspace word-boundary marker.
const MARKER: char = '\u{2581}';

/// Special tokens (`</s>`, `<unk>`, ...) are words of their own.
fn is_special(piece: &str) -> bool {
    piece.len() > 2 && piece.starts_with('<') && piece.ends_with('>')
}

/// Groups subword pieces into words: returns the word labels (marker stripped) and the word
/// index of every piece. A piece starting with `▁` (U+2581), the first piece, a special token
/// such as `</s>` and the piece after one open a new word.
pub fn group_words(pieces: &[String]) -> (Vec<String>, Vec<usize>) {
    let mut labels: Vec<String> = Vec::new();
    let mut index = Vec::with_capacity(pieces.len());
    let mut after_special = false;
    for piece in pieces {
        let text = piece.strip_prefix(MARKER);
        let special = is_special(text.unwrap_or(piece));
        let opens = labels.is_empty() || text.is_some() || special || after_special;
        let text = text.unwrap_or(piece);
        match labels.last_mut() {
            Some(last) if !opens => last.push_str(text),
            _ => labels.push(text.to_string()),
        }
        index.push(labels.len() - 1);
        after_special = special;
    }
    (labels, index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{multi30k, multi30k_file};
    use crate::{normalize, read_lines};

    fn toy() -> Vocab {
        let lines = ["the cat sat on the mat", "the dog sat", "a cat and a dog"];
        Vocab::train(&lines, 60, false).unwrap()
    }

    /// Vocabularies are the same when trained alike, or read back from a saved copy; not when
    /// their size or punctuation splitting differs.
    #[test]
    fn vocabularies_compare_by_what_they_do() {
        let lines = ["the cat sat on the mat", "the dog sat", "a cat and a dog"];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        toy().save(&path).unwrap();
        assert!(toy().same_as(&Vocab::load(&path).unwrap()));
        let small = Vocab::train(&lines, 25, false).unwrap();
        assert!(small.len() < toy().len());
        assert!(!toy().same_as(&small));
        assert!(!toy().same_as(&Vocab::train(&lines, 60, true).unwrap()));
    }

    #[test]
    fn group_words_joins_pieces_and_keeps_specials_apart() {
        let pieces: Vec<String> = ["\u{2581}A", "\u{2581}bik", "er", "s", ".", "</s>"]
            .iter()
            .map(|p| p.to_string())
            .collect();
        let (words, index) = group_words(&pieces);
        assert_eq!(words, vec!["A", "bikers.", "</s>"]);
        assert_eq!(index, vec![0, 1, 1, 1, 1, 2]);
        assert_eq!(group_words(&[]), (vec![], vec![]));
    }

    #[test]
    fn specials_have_fixed_ids() {
        let v = toy();
        assert_eq!(
            v.pieces(&[0, 1, 2, 3]),
            vec!["<pad>", "<unk>", "<s>", "</s>"]
        );
        assert!(v.len() > 4 && v.len() <= 60, "{}", v.len());
    }

    /// Without the split, BPE learns `▁dog.` from a corpus where the word mostly ends a
    /// sentence; with it, the period stays its own piece and `▁dog` is shared. Both decode
    /// back to the text.
    #[test]
    fn split_punctuation_keeps_merges_off_punctuation() {
        let lines = [
            "a dog.",
            "the dog.",
            "one dog.",
            "a dog, a cat.",
            "the cat.",
        ];
        let text = "the dog, a dog.";
        let plain = Vocab::train(&lines, 60, false).unwrap();
        let split = Vocab::train(&lines, 60, true).unwrap();
        let plain_pieces = plain.pieces(&plain.encode(text));
        let split_pieces = split.pieces(&split.encode(text));
        assert!(
            plain_pieces.contains(&"\u{2581}dog.".to_string()),
            "{plain_pieces:?}"
        );
        assert_eq!(
            split_pieces,
            [
                "\u{2581}the",
                "\u{2581}dog",
                ",",
                "\u{2581}a",
                "\u{2581}dog",
                "."
            ]
        );
        assert_eq!(split.decode(&split.encode(text)), text);
        assert_eq!(plain.decode(&plain.encode(text)), text);
        assert!(split.splits_punctuation() && !plain.splits_punctuation());
    }

    #[test]
    fn round_trip_and_unknown_characters() {
        let v = toy();
        let ids = v.encode("the cat sat on a dog");
        assert!(!ids.contains(&Vocab::UNK));
        assert_eq!(v.decode(&ids), "the cat sat on a dog");
        let ids = v.encode("the ☃ cat");
        assert!(ids.contains(&Vocab::UNK), "{:?}", v.pieces(&ids));
        assert_eq!(v.decode(&ids), "the cat");
        assert_eq!(v.encode(""), Vec::<u32>::new());
        // Literal special-token strings are text, never specials.
        let ids = v.encode("<s> cat </s>");
        assert!(!ids.contains(&Vocab::BOS) && !ids.contains(&Vocab::EOS));
    }

    #[test]
    fn decode_skips_specials_and_bad_ids() {
        let v = toy();
        let mut ids = vec![Vocab::BOS];
        ids.extend(v.encode("the dog"));
        ids.extend([Vocab::EOS, Vocab::PAD, 99_999]);
        assert_eq!(v.decode(&ids), "the dog");
        assert_eq!(v.pieces(&[99_999]), vec!["<99999?>"]);
    }

    #[test]
    fn tiny_vocab_size_gives_characters() {
        let v = Vocab::train(&["ab ba", "abba"], 0, false).unwrap();
        let pieces = v.pieces(&v.encode("abba ab"));
        assert_eq!(pieces, vec!["▁", "a", "b", "b", "a", "▁", "a", "b"]);
    }

    #[test]
    fn save_load_identical() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        let v = toy();
        v.save(&path).unwrap();
        let back = Vocab::load(&path).unwrap();
        assert_eq!(back.len(), v.len());
        let line = "the mat and the cat";
        assert_eq!(back.encode(line), v.encode(line));
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp file left behind");
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let err = Vocab::load(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: cannot read: ", missing.display())),
            "{err}"
        );
        let junk = dir.path().join("junk.json");
        fs::write(&junk, "{\"not\": 1}").unwrap();
        let err = Vocab::load(&junk).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: not a tokenizer file: ", junk.display())),
            "{err}"
        );
    }

    #[test]
    fn load_rejects_moved_specials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        toy().save(&path).unwrap();
        let json = fs::read_to_string(&path).unwrap();
        let swapped = json
            .replace("\"<s>\"", "\"<tmp>\"")
            .replace("\"</s>\"", "\"<s>\"")
            .replace("\"<tmp>\"", "\"</s>\"");
        fs::write(&path, swapped).unwrap();
        let err = Vocab::load(&path).unwrap_err().to_string();
        assert_eq!(err, format!("{}: <s> has id 3, expected 2", path.display()));
        fs::write(&path, json.replace("\"<pad>\"", "\"<nothing>\"")).unwrap();
        let err = Vocab::load(&path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{}: special token <pad> is missing", path.display())
        );
    }

    #[test]
    fn save_into_missing_dir_fails_cleanly() {
        let path = Path::new("/nonexistent-dir/tokenizer.json");
        let err = toy().save(path).unwrap_err().to_string();
        assert!(
            err.starts_with("/nonexistent-dir/tokenizer.json: cannot write: "),
            "{err}"
        );
    }

    /// The saved file loads in Python's `tokenizers` and encodes/decodes alike.
    /// Runs only when `TOKENIZERS_PYTHON` names a Python with `tokenizers`
    /// installed (e.g. `~/.venvs/tok/bin/python`).
    #[test]
    fn python_tokenizers_agrees() {
        let Some(python) = std::env::var_os("TOKENIZERS_PYTHON") else {
            eprintln!("skipping: set TOKENIZERS_PYTHON to a python with `tokenizers`");
            return;
        };
        let (vocab, lines) = match crate::test_support::prepared_en_de() {
            Some(p) => (p.src_vocab.as_ref().clone(), p.valid.src_text.clone()),
            None => (
                toy(),
                ["the cat sat.", "a dog, \"the\" cat...", "(a) dog's toy!"]
                    .map(String::from)
                    .to_vec(),
            ),
        };
        let split = Vocab::train(&lines, 500, true).unwrap();
        for vocab in [vocab, split] {
            agrees_in_python(&python, &vocab, &lines);
        }
    }

    fn agrees_in_python(python: &std::ffi::OsStr, vocab: &Vocab, lines: &[String]) {
        let dir = tempfile::tempdir().unwrap();
        let (json, text) = (dir.path().join("tokenizer.json"), dir.path().join("lines"));
        vocab.save(&json).unwrap();
        fs::write(&text, lines.join("\n")).unwrap();
        let script = "import sys, json\nfrom tokenizers import Tokenizer\n\
            t = Tokenizer.from_file(sys.argv[1])\n\
            lines = open(sys.argv[2], encoding='utf-8').read().split('\\n')\n\
            encs = [t.encode(l, add_special_tokens=False).ids for l in lines]\n\
            print(json.dumps([[ids, t.decode(ids)] for ids in encs]))\n";
        let out = std::process::Command::new(python)
            .args(["-c", script])
            .arg(&json)
            .arg(&text)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<(Vec<u32>, String)> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(got.len(), lines.len());
        for ((ids, decoded), line) in got.iter().zip(lines) {
            assert_eq!(ids, &vocab.encode(line), "{line}");
            assert_eq!(decoded, line);
        }
        eprintln!(
            "python tokenizers agrees on {} lines (split_punctuation = {})",
            lines.len(),
            vocab.splits_punctuation()
        );
    }

    /// decode(encode(line)) == line on ≥ 99.9% of Multi30k val, per language.
    #[test]
    fn multi30k_round_trip() {
        let Some(dir) = multi30k() else { return };
        for (lang, split_punctuation) in [("en", false), ("de", true), ("fr", false), ("cs", true)]
        {
            let train: Vec<String> = read_lines(&multi30k_file(&dir, "train", lang))
                .unwrap()
                .iter()
                .map(|l| normalize(l))
                .collect();
            let vocab = Vocab::train(&train, 8000, split_punctuation).unwrap();
            let val: Vec<String> = read_lines(&multi30k_file(&dir, "val", lang))
                .unwrap()
                .iter()
                .map(|l| normalize(l))
                .collect();
            let encoded = vocab.encode_batch(&val);
            let failures: Vec<&String> = val
                .iter()
                .zip(&encoded)
                .filter(|(line, ids)| vocab.decode(ids) != **line)
                .map(|(line, _)| line)
                .collect();
            let exact = 1.0 - failures.len() as f64 / val.len() as f64;
            eprintln!(
                "{lang}: vocab {}, round trip exact on {:.2}% of {} lines; failures: {:?}",
                vocab.len(),
                100.0 * exact,
                val.len(),
                failures
            );
            assert!(exact >= 0.999, "{lang}: {failures:?}");
        }
    }
}

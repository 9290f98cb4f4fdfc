//! Translating text with a trained model: token-budget batches sorted by length, batched
//! search, output restored to input order.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rnnsearch_data::{normalize, source_batches, Vocab};
use rnnsearch_model::{search, Hypothesis, SearchConfig, Seq2Seq};

/// One translated input line.
#[derive(Clone, Debug, Default)]
pub struct Translation {
    /// Subword ids given to the encoder (without the final `</s>`).
    pub source_ids: Vec<u32>,
    /// Hypotheses, best first (one unless n-best was asked for).
    pub hypotheses: Vec<Hypothesis>,
}

/// A model with its vocabularies, ready to translate.
pub struct Translator<'a> {
    /// The model, on an inference (non-autodiff) device.
    pub model: &'a Seq2Seq,
    /// Source vocabulary.
    pub src_vocab: &'a Vocab,
    /// Target vocabulary.
    pub tgt_vocab: &'a Vocab,
    /// Where the model lives.
    pub device: Device,
}

impl Translator<'_> {
    /// Translates `lines` (raw text, normalised here) in input order.
    ///
    /// `on_batch` is called with the number of sentences done after every batch (progress).
    pub fn translate(
        &self,
        lines: &[String],
        config: &SearchConfig,
        batch_tokens: usize,
        mut on_batch: impl FnMut(usize),
    ) -> Vec<Translation> {
        let encoded: Vec<Vec<u32>> = lines
            .iter()
            .map(|l| self.src_vocab.encode(&normalize(l)))
            .collect();
        let mut out: Vec<Translation> = encoded
            .iter()
            .map(|ids| Translation {
                source_ids: ids.clone(),
                hypotheses: vec![Hypothesis::default()],
            })
            .collect();
        // Empty lines translate to empty lines without running the model.
        let todo: Vec<usize> = (0..lines.len())
            .filter(|&i| !encoded[i].is_empty())
            .collect();
        let lengths: Vec<usize> = todo.iter().map(|&i| encoded[i].len() + 1).collect();
        let mut done = lines.len() - todo.len();
        for group in source_batches(&lengths, batch_tokens.max(1)) {
            let rows: Vec<usize> = group.iter().map(|&g| todo[g]).collect();
            let (source, lens) =
                source_tensor(rows.iter().map(|&i| encoded[i].as_slice()), &self.device);
            let results = search(self.model, source, &lens, config);
            for (row, hyps) in rows.iter().zip(results) {
                out[*row].hypotheses = hyps;
            }
            done += rows.len();
            on_batch(done);
        }
        out
    }

    /// Detokenised text of a hypothesis.
    pub fn detokenize(&self, hypothesis: &Hypothesis) -> String {
        self.tgt_vocab.decode(&hypothesis.tokens)
    }
}

/// Pads sentences (each followed by `</s>`) into `[batch, max_len + 1]` ids and their lengths.
pub fn source_tensor<'s>(
    rows: impl Iterator<Item = &'s [u32]>,
    device: &Device,
) -> (Tensor<2, Int>, Vec<usize>) {
    let rows: Vec<&[u32]> = rows.collect();
    let width = rows.iter().map(|r| r.len() + 1).max().unwrap_or(1);
    let mut ids = vec![Vocab::PAD as i64; rows.len() * width];
    let mut lengths = Vec::with_capacity(rows.len());
    for (b, row) in rows.iter().enumerate() {
        for (j, &id) in row.iter().enumerate() {
            ids[b * width + j] = id as i64;
        }
        ids[b * width + row.len()] = Vocab::EOS as i64;
        lengths.push(row.len() + 1);
    }
    (
        Tensor::from_data(TensorData::new(ids, [rows.len(), width]), device),
        lengths,
    )
}

//! Translating text with a trained model: token-budget batches sorted by length, batched
//! search, output restored to input order.

use burn::tensor::{Device, Tensor, TensorData};
use rnnsearch_data::{normalize, source_batches, Vocab};
use rnnsearch_model::{search, search_with, Hypothesis, SearchConfig, Seq2Seq};

use crate::fused::{FusedSteps, FusedWeights};

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
    /// The weights for `rnnsearch-fused`'s forward pass, when the search runs there.
    fused: Option<FusedWeights>,
}

impl<'a> Translator<'a> {
    /// A translator that searches with `rnnsearch-fused`'s CPU forward pass when `fused` (the
    /// model must be of a shape [`crate::fused::unsupported`] accepts), else with the burn model
    /// on `device`. Both give the same translations up to floating-point rounding.
    pub fn new(
        model: &'a Seq2Seq,
        src_vocab: &'a Vocab,
        tgt_vocab: &'a Vocab,
        device: Device,
        fused: bool,
    ) -> Self {
        Self {
            model,
            src_vocab,
            tgt_vocab,
            device,
            fused: fused.then(|| FusedWeights::of(model)),
        }
    }

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
            let (ids, lens) = padded(rows.iter().map(|&i| encoded[i].as_slice()));
            let results = match &self.fused {
                Some(weights) => {
                    let mut steps =
                        FusedSteps::new(weights, &ids, &lens, config.rows_per_sentence());
                    search_with(&mut steps, &lens, config)
                }
                None => {
                    let ids = ids.into_iter().map(i64::from).collect();
                    let source = Tensor::from_data(
                        TensorData::new(ids, [lens.len(), lens.iter().max().copied().unwrap_or(1)]),
                        &self.device,
                    );
                    search(self.model, source, &lens, config)
                }
            };
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

/// Pads sentences, each followed by `</s>`, into `[batch, max_len + 1]` ids; returns them with
/// the lengths (`</s>` included).
pub fn padded<'s>(rows: impl Iterator<Item = &'s [u32]>) -> (Vec<u32>, Vec<usize>) {
    let rows: Vec<&[u32]> = rows.collect();
    let width = rows.iter().map(|r| r.len() + 1).max().unwrap_or(1);
    let mut ids = vec![Vocab::PAD; rows.len() * width];
    let mut lengths = Vec::with_capacity(rows.len());
    for (b, row) in rows.iter().enumerate() {
        ids[b * width..b * width + row.len()].copy_from_slice(row);
        ids[b * width + row.len()] = Vocab::EOS;
        lengths.push(row.len() + 1);
    }
    (ids, lengths)
}

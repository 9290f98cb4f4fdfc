//! Translating text with a trained model: token-budget batches sorted by length, batched
//! search, output restored to input order.

use burn::tensor::{Device, Tensor, TensorData};
use rnnsearch_data::{normalize, source_batches, Vocab};
use rnnsearch_model::{
    search, search_with, BurnSteps, Ensemble, Hypothesis, SearchConfig, Seq2Seq,
};

use rnnsearch_fused::parallel;

use std::borrow::Cow;

use crate::engine::Engine;
use crate::fused::{FusedSteps, FusedWeights};
use crate::rescore::Rescorer;

/// One translated input line.
#[derive(Clone, Debug, Default)]
pub struct Translation {
    /// Subword ids given to the encoder (without the final `</s>`).
    pub source_ids: Vec<u32>,
    /// Hypotheses, best first (one unless n-best was asked for).
    pub hypotheses: Vec<Hypothesis>,
}

/// One model or the members of an ensemble, with the engine that runs their search: the
/// part of a [`Translator`] that knows nothing of vocabularies (`rnnsearch bench` times it).
pub struct Searcher<'a> {
    /// The models, on an inference (non-autodiff) device: one, or the members of an ensemble.
    models: Vec<&'a Seq2Seq>,
    /// Where the models live.
    device: Device,
    /// The weights for `rnnsearch-fused`'s forward pass, one per model, when the search runs
    /// there; empty otherwise.
    fused: Vec<Cow<'a, FusedWeights>>,
}

impl<'a> Searcher<'a> {
    /// Searches with `engine`: `rnnsearch-fused`'s CPU forward pass, or the burn models on
    /// `device`.
    /// Both give the same translations up to floating-point rounding. With more than one
    /// model every step takes the mean of their distributions ([`Ensemble`]).
    pub fn new(models: Vec<&'a Seq2Seq>, device: Device, engine: Engine) -> Self {
        assert!(!models.is_empty(), "a search needs a model");
        let fused = match engine {
            Engine::Fused => models
                .iter()
                .map(|m| Cow::Owned(FusedWeights::of(m)))
                .collect(),
            Engine::Burn => Vec::new(),
        };
        Self {
            models,
            device,
            fused,
        }
    }

    /// The search over the fused engine's own `weights` (no burn model; `device` is unused).
    pub fn of_weights(weights: &'a FusedWeights, device: Device) -> Self {
        Self {
            models: Vec::new(),
            device,
            fused: vec![Cow::Borrowed(weights)],
        }
    }

    /// The search over one padded batch (`ids` `[batch, src_len]`, with `lengths`).
    pub fn search(
        &self,
        ids: &[u32],
        lengths: &[usize],
        config: &SearchConfig,
    ) -> Vec<Vec<Hypothesis>> {
        let width = lengths.iter().max().copied().unwrap_or(1);
        assert_eq!(
            ids.len(),
            lengths.len() * width,
            "ids must be [batch, longest length]"
        );
        let rows = config.rows_per_sentence();
        if !self.fused.is_empty() {
            return self.search_fused(ids, lengths, width, config, rayon::current_num_threads());
        }
        let ids = ids.iter().map(|&t| i64::from(t)).collect();
        let source = Tensor::from_data(TensorData::new(ids, [lengths.len(), width]), &self.device);
        match self.models[..] {
            [model] => search(model, source, lengths, config),
            _ => {
                let members = self
                    .models
                    .iter()
                    .map(|model| BurnSteps::new(model, source.clone(), lengths, rows))
                    .collect();
                search_with(&mut Ensemble::new(members), lengths, config)
            }
        }
    }
}

impl Searcher<'_> {
    /// The search through `rnnsearch-fused`, the batch cut into one part of whole sentences
    /// per thread (up to `threads`) (each part padded to its own longest sentence; see
    /// `rnnsearch_fused::parallel`), the parts' hypotheses in batch order.
    fn search_fused(
        &self,
        ids: &[u32],
        lengths: &[usize],
        width: usize,
        config: &SearchConfig,
        threads: usize,
    ) -> Vec<Vec<Hypothesis>> {
        let rows = config.rows_per_sentence();
        let sentences = lengths.len();
        let parts =
            parallel::parts_for(sentences * rows, threads, MIN_PART_ROWS).min(sentences.max(1));
        let ranges = parallel::part_ranges(sentences, parts);
        let search_part = |p: usize| {
            let range = ranges[p].clone();
            let lengths = &lengths[range.clone()];
            let longest = lengths.iter().copied().max().unwrap_or(1);
            let ids: Vec<u32> = range
                .flat_map(|b| ids[b * width..b * width + longest].iter().copied())
                .collect();
            let mut members: Vec<FusedSteps> = self
                .fused
                .iter()
                .map(|weights| FusedSteps::new(weights, &ids, lengths, rows))
                .collect();
            match members.len() {
                1 => search_with(&mut members[0], lengths, config),
                _ => search_with(&mut Ensemble::new(members), lengths, config),
            }
        };
        if parts == 1 {
            return search_part(0);
        }
        parallel::on_own_threads(parts, search_part)
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Decoder rows (sentences × beam) a thread needs at the least before a batch is cut.
const MIN_PART_ROWS: usize = 16;

/// A model (or an ensemble of models) with its vocabularies, ready to translate.
pub struct Translator<'a> {
    /// The models and their search.
    pub searcher: Searcher<'a>,
    /// Source vocabulary.
    pub src_vocab: &'a Vocab,
    /// Target vocabulary.
    pub tgt_vocab: &'a Vocab,
    /// The models write right to left (`train.right_to_left`): hypotheses are turned back.
    pub right_to_left: bool,
    /// Reranks the beam's hypotheses with other models.
    pub rescorer: Option<Rescorer<'a>>,
}

impl<'a> Translator<'a> {
    /// A translator over [`Searcher::new`]`(vec![model], device, engine)`.
    pub fn new(
        model: &'a Seq2Seq,
        src_vocab: &'a Vocab,
        tgt_vocab: &'a Vocab,
        device: Device,
        engine: Engine,
    ) -> Self {
        Self::ensemble(vec![model], src_vocab, tgt_vocab, device, engine)
    }

    /// [`Translator::new`] for an ensemble of `models` of one vocabulary (at least one).
    pub fn ensemble(
        models: Vec<&'a Seq2Seq>,
        src_vocab: &'a Vocab,
        tgt_vocab: &'a Vocab,
        device: Device,
        engine: Engine,
    ) -> Self {
        Self::with_searcher(Searcher::new(models, device, engine), src_vocab, tgt_vocab)
    }

    /// A translator over `searcher`.
    pub fn with_searcher(
        searcher: Searcher<'a>,
        src_vocab: &'a Vocab,
        tgt_vocab: &'a Vocab,
    ) -> Self {
        Self {
            searcher,
            src_vocab,
            tgt_vocab,
            right_to_left: false,
            rescorer: None,
        }
    }

    /// The same translator, reranking the whole beam with `rescorer` before it keeps the
    /// n best.
    pub fn rescored_by(self, rescorer: Option<Rescorer<'a>>) -> Self {
        Self { rescorer, ..self }
    }

    /// The same translator for models trained with `train.right_to_left = right_to_left`.
    pub fn right_to_left(self, right_to_left: bool) -> Self {
        Self {
            right_to_left,
            ..self
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
        // a rescorer reranks the whole beam, then keeps config.nbest
        let search = match self.rescorer {
            Some(_) => Cow::Owned(SearchConfig {
                nbest: config.beam.max(config.nbest),
                ..config.clone()
            }),
            None => Cow::Borrowed(config),
        };
        for group in source_batches(&lengths, batch_tokens.max(1)) {
            let rows: Vec<usize> = group.iter().map(|&g| todo[g]).collect();
            let (ids, lens) = padded(rows.iter().map(|&i| encoded[i].as_slice()));
            let results = self.searcher.search(&ids, &lens, &search);
            for (row, mut hyps) in rows.iter().zip(results) {
                if self.right_to_left {
                    hyps.iter_mut().for_each(reading_order);
                }
                out[*row].hypotheses = hyps;
            }
            done += rows.len();
            on_batch(done);
        }
        if let Some(rescorer) = &self.rescorer {
            rescorer.rerank(&mut out, config.nbest, batch_tokens);
        }
        out
    }

    /// Detokenised text of a hypothesis.
    pub fn detokenize(&self, hypothesis: &Hypothesis) -> String {
        self.tgt_vocab.decode(&hypothesis.tokens)
    }
}

/// A right-to-left model's hypothesis in reading order: its words and their alignment rows
/// reversed, the row of `</s>` (when produced) kept last.
pub fn reading_order(hypothesis: &mut Hypothesis) {
    let words = hypothesis.tokens.len().min(hypothesis.alignment.len());
    hypothesis.tokens.reverse();
    hypothesis.alignment[..words].reverse();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::tests::tiny_config;

    /// Words and their alignment rows turn around; the row of `</s>` stays last.
    #[test]
    fn reading_order_reverses_words_and_their_alignment() {
        let mut h = Hypothesis {
            tokens: vec![7, 8, 9],
            score: -1.0,
            alignment: vec![vec![0.7], vec![0.8], vec![0.9], vec![1.0]],
        };
        reading_order(&mut h);
        assert_eq!(h.tokens, [9, 8, 7]);
        assert_eq!(h.alignment, [vec![0.9], vec![0.8], vec![0.7], vec![1.0]]);
        let mut plain = Hypothesis {
            tokens: vec![1, 2],
            ..Hypothesis::default()
        };
        reading_order(&mut plain);
        assert_eq!((plain.tokens, plain.alignment.len()), (vec![2, 1], 0));
    }

    /// Cut into parts, each padded to its own longest sentence, a batch gets the hypotheses it
    /// gets whole, in the same order.
    #[test]
    fn a_batch_searched_in_parts_gets_the_same_hypotheses() {
        let device = Device::flex();
        device.seed(3);
        let model = tiny_config(1).init(13, 11, &device);
        let searcher = Searcher::new(vec![&model], device, Engine::Fused);
        // 40 sentences of 1 to 5 tokens, the last being </s>, padded to 5.
        let lengths: Vec<usize> = (0..40).map(|b| 1 + (b * 7) % 5).collect();
        let ids: Vec<u32> = lengths
            .iter()
            .enumerate()
            .flat_map(|(b, &len)| {
                (0..5).map(move |j| match j {
                    j if j + 1 < len => 4 + ((b + j) % 9) as u32,
                    j if j + 1 == len => 3,
                    _ => 0,
                })
            })
            .collect();
        for beam in [1, 2] {
            let search = SearchConfig {
                beam,
                nbest: beam,
                alignments: true,
                ..SearchConfig::greedy(Vocab::BOS, Vocab::EOS)
            };
            let whole = searcher.search_fused(&ids, &lengths, 5, &search, 1);
            let parts = searcher.search_fused(&ids, &lengths, 5, &search, 3);
            assert_eq!(whole.len(), 40);
            for (w, p) in whole.iter().flatten().zip(parts.iter().flatten()) {
                assert_eq!(w.tokens, p.tokens, "beam {beam}");
                assert!((w.score - p.score).abs() < 1e-5, "beam {beam}");
                assert_eq!(w.alignment, p.alignment, "beam {beam}");
            }
            assert_eq!(
                whole.iter().flatten().count(),
                parts.iter().flatten().count()
            );
        }
    }
}

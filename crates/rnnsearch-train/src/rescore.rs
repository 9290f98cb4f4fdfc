//! Reranking an n-best list with other models, e.g. right-to-left ones (Liu et al. 2016;
//! Sennrich et al. 2016's WMT systems): every hypothesis y of the search gets the rescorer's
//! log p_r(y | x) under teacher forcing, and the list is sorted again by
//! (1 − λ) · s_search(y) + λ · s_r(y), both normalised by ((5 + |y|) / 6)^α as the search's
//! finished hypotheses are.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};
use rnnsearch_data::{batches, Example};
use rnnsearch_model::{Hypothesis, Seq2Seq};

use crate::engine::BatchTensors;
use crate::translate::Translation;

/// Models that score given translations, and how much their score weighs.
pub struct Rescorer<'a> {
    /// One model, or the members of an ensemble (the mean of their distributions).
    pub models: Vec<&'a Seq2Seq>,
    /// The models read and write targets right to left (`train.right_to_left`).
    pub right_to_left: bool,
    /// λ: the rescorer's share of the combined score, in [0, 1].
    pub weight: f64,
    /// α of the length normalisation ((5 + |y|) / 6)^α.
    pub alpha: f64,
    pub device: Device,
}

impl Rescorer<'_> {
    /// Reranks every translation's hypotheses by the combined score, which becomes their
    /// `score`; keeps the best `nbest`.
    pub fn rerank(&self, translations: &mut [Translation], nbest: usize, batch_tokens: usize) {
        // an empty source was never translated: its one empty hypothesis stays
        let translated = |t: &&mut Translation| !t.source_ids.is_empty();
        let pairs: Vec<Example> = translations
            .iter_mut()
            .filter(translated)
            .flat_map(|t| {
                t.hypotheses.iter().map(|h| Example {
                    src: t.source_ids.clone(),
                    tgt: h.tokens.clone(),
                })
            })
            .collect();
        let mut scores = self.log_probs(&pairs, batch_tokens).into_iter();
        for t in translations.iter_mut().filter(translated) {
            for h in &mut t.hypotheses {
                let rescored = scores.next().expect("one score per hypothesis");
                h.score = self.combine(h, rescored);
            }
            t.hypotheses.sort_by(|a, b| b.score.total_cmp(&a.score));
            t.hypotheses.truncate(nbest.max(1));
        }
    }

    /// (1 − λ) · the search's score + λ · the rescorer's `log_prob`, length-normalised.
    fn combine(&self, h: &Hypothesis, log_prob: f64) -> f32 {
        let penalty = ((5.0 + (h.tokens.len() + 1) as f64) / 6.0).powf(self.alpha);
        ((1.0 - self.weight) * h.score as f64 + self.weight * log_prob / penalty) as f32
    }

    /// log p(y | x) = Σ_i log p(y_i | y_<i, x) of each pair, `</s>` included; for an ensemble,
    /// p(y_i | ·) is the mean of the members' (the distribution the search's ensemble uses).
    pub fn log_probs(&self, pairs: &[Example], batch_tokens: usize) -> Vec<f64> {
        let mut out = vec![0.0; pairs.len()];
        for mut batch in batches(pairs, batch_tokens.max(1), 0, 0) {
            if self.right_to_left {
                batch.reverse_targets();
            }
            let tensors = BatchTensors::new(&batch, &self.device);
            let [rows, len] = tensors.target_out.dims();
            let members: Vec<Tensor<2>> = self
                .models
                .iter()
                .map(|model| {
                    let logits = model
                        .forward(
                            tensors.source.clone(),
                            &tensors.source_lengths,
                            tensors.target_in.clone(),
                        )
                        .logits;
                    log_softmax(logits, 2)
                        .gather(2, tensors.target_out.clone().reshape([rows, len, 1]))
                        .reshape([rows, len])
                })
                .collect();
            let count = members.len() as f32;
            let stacked = Tensor::stack::<3>(members, 0); // [K, rows, len]
            let max = stacked.clone().max_dim(0); // [1, rows, len]
            let mean = (stacked - max.clone()).exp().sum_dim(0).div_scalar(count);
            let token_log_probs = (mean.log() + max).reshape([rows, len]);
            let keep = tensors.target_padding.bool_not().float();
            let sums = (token_log_probs * keep).sum_dim(1).into_data();
            let sums = sums.try_into_vec_as::<f32>().expect("f32 sums");
            for (&i, s) in batch.indices.iter().zip(sums) {
                out[i] = s as f64;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::tests::tiny_config;
    use crate::translate::Searcher;
    use crate::Engine;
    use rnnsearch_data::Vocab;
    use rnnsearch_model::SearchConfig;

    fn rescorer<'a>(models: Vec<&'a Seq2Seq>, right_to_left: bool, weight: f64) -> Rescorer<'a> {
        Rescorer {
            models,
            right_to_left,
            weight,
            alpha: 0.0,
            device: Device::flex(),
        }
    }

    /// A greedy hypothesis's score is its summed log-probability: teacher forcing it gives the
    /// same number, in any batch (less log p(</s>) for one cut at the length limit); a right-to-left scorer reads the reversed
    /// words, and an ensemble of one model twice scores as the model.
    #[test]
    fn teacher_forced_log_probs_match_the_search() {
        let device = Device::flex();
        device.seed(5);
        let model = tiny_config(1).init(13, 11, &device);
        let searcher = Searcher::new(vec![&model], device.clone(), Engine::Burn);
        let sources: Vec<Vec<u32>> = vec![vec![4, 5, 6], vec![7], vec![8, 9, 10, 11, 12]];
        let (ids, lengths) = crate::translate::padded(sources.iter().map(|s| s.as_slice()));
        let search = SearchConfig {
            max_len_ratio: 1.0,
            ..SearchConfig::greedy(Vocab::BOS, Vocab::EOS)
        };
        let found = searcher.search(&ids, &lengths, &search);
        let pairs: Vec<Example> = sources
            .iter()
            .zip(&found)
            .map(|(src, hyps)| Example {
                src: src.clone(),
                tgt: hyps[0].tokens.clone(),
            })
            .collect();
        let scores = rescorer(vec![&model], false, 1.0).log_probs(&pairs, 8);
        for ((src, hyps), &score) in sources.iter().zip(&found).zip(&scores) {
            let searched = hyps[0].score as f64;
            // a hypothesis cut at the length limit scored without log p(</s> | y, x) ≤ 0
            let cut = hyps[0].tokens.len() == src.len() + 1 + 5;
            if cut {
                assert!(score <= searched + 1e-4, "{hyps:?} {score}");
            } else {
                assert!((searched - score).abs() < 1e-3, "{hyps:?} {score}");
            }
        }
        let twice = rescorer(vec![&model, &model], false, 1.0).log_probs(&pairs, 1000);
        for (a, b) in scores.iter().zip(&twice) {
            assert!((a - b).abs() < 1e-4);
        }
        let reversed: Vec<Example> = pairs
            .iter()
            .map(|p| Example {
                src: p.src.clone(),
                tgt: p.tgt.iter().rev().copied().collect(),
            })
            .collect();
        let right_to_left = rescorer(vec![&model], true, 1.0).log_probs(&reversed, 1000);
        for (a, b) in scores.iter().zip(&right_to_left) {
            assert!((a - b).abs() < 1e-4);
        }
    }

    /// λ = 0 keeps the search's order; λ = 1 sorts by the rescorer alone; the list is cut to
    /// `nbest` and an empty source is left alone.
    #[test]
    fn reranking_mixes_the_scores() {
        let device = Device::flex();
        device.seed(6);
        let model = tiny_config(1).init(13, 11, &device);
        let hypotheses: Vec<Hypothesis> = [vec![4, 4, 4, 4], vec![5], vec![6, 7]]
            .into_iter()
            .enumerate()
            .map(|(i, tokens)| Hypothesis {
                tokens,
                score: -(i as f32),
                alignment: vec![],
            })
            .collect();
        let translations = || {
            vec![
                Translation {
                    source_ids: vec![4, 5],
                    hypotheses: hypotheses.clone(),
                },
                Translation {
                    source_ids: vec![],
                    hypotheses: vec![Hypothesis::default()],
                },
            ]
        };
        let mut kept = translations();
        rescorer(vec![&model], false, 0.0).rerank(&mut kept, 3, 100);
        let tokens = |t: &Translation| {
            t.hypotheses
                .iter()
                .map(|h| h.tokens.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(tokens(&kept[0]), tokens(&translations()[0]));
        let alone = rescorer(vec![&model], false, 1.0);
        let pairs: Vec<Example> = hypotheses
            .iter()
            .map(|h| Example {
                src: vec![4, 5],
                tgt: h.tokens.clone(),
            })
            .collect();
        let log_probs = alone.log_probs(&pairs, 100);
        let best = (0..3)
            .max_by(|&a, &b| log_probs[a].total_cmp(&log_probs[b]))
            .unwrap();
        let mut reranked = translations();
        alone.rerank(&mut reranked, 1, 100);
        assert_eq!(reranked[0].hypotheses.len(), 1);
        assert_eq!(reranked[0].hypotheses[0].tokens, hypotheses[best].tokens);
        assert!((reranked[0].hypotheses[0].score as f64 - log_probs[best]).abs() < 1e-4);
        assert_eq!(reranked[1].hypotheses.len(), 1);
    }
}

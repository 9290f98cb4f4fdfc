//! Validation: the label-smoothed loss and perplexity of the val set under teacher forcing, and
//! BLEU and chrF of its translations; and translating a split with the run's search settings,
//! which the choice of the test model and the final report use too.

use burn::tensor::Device;
use rnnsearch_bleu::{Bleu, Chrf, Metric};
use rnnsearch_data::{batches, Batch, Prepared, Vocab};
use rnnsearch_model::{SearchConfig, Seq2Seq};

use crate::config::TrainConfig;
use crate::engine::{BatchTensors, Engine, Snapshot};
use crate::loss::label_smoothed_cross_entropy;
use crate::translate::{Searcher, Translator};

/// Validation figures.
#[derive(Clone, Debug)]
pub struct Validation {
    /// Label-smoothed loss per target token.
    pub loss: f64,
    /// exp of the unsmoothed per-token negative log-likelihood.
    pub ppl: f64,
    /// sacreBLEU-compatible corpus BLEU.
    pub bleu: f64,
    /// chrF2.
    pub chrf: f64,
    /// The translations.
    pub hypotheses: Vec<String>,
}

/// Translates and scores a run's splits: its vocabularies, `[train]`'s `alpha` and
/// `valid_batch_tokens`, and the engine the run trains with.
pub struct Evaluator<'a> {
    /// The run's data.
    pub data: &'a Prepared,
    /// The run's `[train]` section.
    pub train: &'a TrainConfig,
    /// The inference device (without autodiff).
    pub device: Device,
    /// The engine that runs the search.
    pub engine: Engine,
}

impl Evaluator<'_> {
    /// Loss, perplexity, BLEU and chrF of the weights of `snapshot` on the val set, decoding
    /// with beam `beam`.
    pub fn validate(&self, snapshot: &Snapshot, beam: usize) -> Validation {
        let split = &self.data.valid;
        let mut loss_sum = 0.0;
        let mut nll_sum = 0.0;
        let mut tokens = 0usize;
        for mut batch in batches(&split.examples, self.train.valid_batch_tokens, 0, 0) {
            if self.train.right_to_left {
                batch.reverse_targets();
            }
            let n = batch.num_tgt_tokens();
            let (loss, nll) = match snapshot {
                Snapshot::Burn(model) => self.burn_loss(model, &batch),
                Snapshot::Fused(weights) => weights.loss(&batch, self.train.label_smoothing),
            };
            loss_sum += loss * n as f64;
            nll_sum += nll;
            tokens += n;
        }
        let hypotheses = match snapshot {
            Snapshot::Burn(model) => self.translate(&[model], &split.src_text, beam),
            Snapshot::Fused(weights) => {
                let searcher = Searcher::of_weights(weights, self.device.clone());
                self.translate_with(searcher, &split.src_text, beam)
            }
        };
        let (bleu, chrf) = score(&hypotheses, &split.tgt_text);
        Validation {
            loss: loss_sum / tokens.max(1) as f64,
            ppl: (nll_sum / tokens.max(1) as f64).exp(),
            bleu,
            chrf,
            hypotheses,
        }
    }

    /// The label-smoothed loss per token and Σ −log p of `batch` under the burn `model`.
    fn burn_loss(&self, model: &Seq2Seq, batch: &Batch) -> (f64, f64) {
        let tensors = BatchTensors::new(batch, &self.device);
        let out = model.forward(tensors.source, &tensors.source_lengths, tensors.target_in);
        let loss = label_smoothed_cross_entropy(
            out.logits,
            tensors.target_out,
            tensors.target_padding,
            self.train.label_smoothing,
            batch.num_tgt_tokens(),
        );
        (
            loss.per_token.into_scalar::<f32>() as f64,
            loss.nll_sum.into_scalar::<f32>() as f64,
        )
    }

    /// `sources` translated by `models` (one, or the members of an ensemble), detokenized.
    pub fn translate(&self, models: &[&Seq2Seq], sources: &[String], beam: usize) -> Vec<String> {
        let searcher = Searcher::new(models.to_vec(), self.device.clone(), self.engine);
        self.translate_with(searcher, sources, beam)
    }

    /// `sources` translated by `searcher`, detokenized.
    fn translate_with(&self, searcher: Searcher, sources: &[String], beam: usize) -> Vec<String> {
        let translator =
            Translator::with_searcher(searcher, &self.data.src_vocab, &self.data.tgt_vocab)
                .right_to_left(self.train.right_to_left);
        let search = SearchConfig {
            beam,
            alpha: self.train.alpha,
            ..SearchConfig::greedy(Vocab::BOS, Vocab::EOS)
        };
        translator
            .translate(sources, &search, self.train.valid_batch_tokens, |_| {})
            .iter()
            .map(|t| translator.detokenize(&t.hypotheses[0]))
            .collect()
    }
}

/// BLEU and chrF with sacreBLEU's defaults.
pub fn score(hypotheses: &[String], references: &[String]) -> (f64, f64) {
    let refs = [references];
    let same_length = "hypotheses and references have the same length";
    let bleu = Bleu::default().corpus_score(hypotheses, &refs);
    let chrf = Chrf::default().corpus_score(hypotheses, &refs);
    (
        bleu.expect(same_length).score,
        chrf.expect(same_length).score,
    )
}

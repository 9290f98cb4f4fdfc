//! Batched greedy and beam search.
//!
//! Both advance every sentence (× K beams) by one decoder step per call of a [`StepDecoder`]:
//! the burn model ([`BurnSteps`], any backend) or, on the CPU, the hand-written forward pass of
//! `rnnsearch-fused` (adapted in `rnnsearch-train`). The search itself (bookkeeping of
//! hypotheses, top-k, length normalisation) runs on the host over each step's log-probabilities.
//! [`search`] picks greedy for K < 2 and beam search otherwise; both return, per sentence,
//! hypotheses best first.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use rayon::prelude::*;

use crate::attention::ProjectedAnnotations;
use crate::cell::RecurrentState;
use crate::decoder::{Decoder, StepWeights};
use crate::model::Seq2Seq;

/// How to search.
#[derive(Clone, Debug)]
pub struct SearchConfig {
    /// Beam size K; 1 is greedy.
    pub beam: usize,
    /// Length normalisation α of Wu et al. (2016): score = log p / ((5 + |y|) / 6)^α.
    pub alpha: f64,
    /// Hypotheses are cut at ⌈ratio × source length⌉ + 5 tokens.
    pub max_len_ratio: f64,
    /// Hypotheses to return per sentence (≤ beam).
    pub nbest: usize,
    /// Keep the alignment weights of every output token.
    pub alignments: bool,
    /// The target vocabulary's `<s>`, fed first.
    pub bos: u32,
    /// The target vocabulary's `</s>`, which ends a hypothesis.
    pub eos: u32,
}

impl SearchConfig {
    /// Greedy search, α 1, hypotheses cut at twice the source length, one per sentence, for a
    /// target vocabulary whose `<s>` and `</s>` are `bos` and `eos`.
    pub fn greedy(bos: u32, eos: u32) -> Self {
        Self {
            beam: 1,
            alpha: 1.0,
            max_len_ratio: 2.0,
            nbest: 1,
            alignments: false,
            bos,
            eos,
        }
    }

    /// Decoder rows per sentence: the beam size, or 1 for greedy.
    pub fn rows_per_sentence(&self) -> usize {
        self.beam.max(1)
    }
}

/// One output of the search.
#[derive(Clone, Debug, Default)]
pub struct Hypothesis {
    /// Target ids without `<s>` and `</s>`.
    pub tokens: Vec<u32>,
    /// Length-normalised log-probability (greedy: the plain sum of log-probabilities).
    pub score: f32,
    /// α for every output token (and `</s>` when produced), each over the source positions.
    pub alignment: Vec<Vec<f32>>,
}

/// What a decoder step gives the search, for every row (sentence × beam): borrowed from the
/// decoder, whose buffers the next step writes over.
///
/// The rows come unnormalised, with their normalisers: log p(y_i = v | y_<i, x) =
/// `logits[row][v] − log_normalizers[row]`. The search ranks within a row by the logits alone
/// and subtracts the normaliser only from the tokens it keeps, so a decoder need not write
/// normalised rows (a pass over all V per row).
pub struct StepScores<'a> {
    /// z_i, `[rows, V]`: the log-probabilities up to a constant per row.
    pub logits: &'a [f32],
    /// log Σ_v exp z_i[v], `[rows]` (zeros when `logits` are log-probabilities already).
    pub log_normalizers: &'a [f32],
    /// α_i, `[rows, src_len]`, when asked for.
    pub alignment: Option<&'a [f32]>,
    /// Source positions (padded): the width of an alignment row.
    pub src_len: usize,
}

impl StepScores<'_> {
    /// log p(y_i | y_<i, x), `[rows, V]`.
    pub fn log_probs(&self) -> Vec<f32> {
        let vocab = self.logits.len() / self.log_normalizers.len().max(1);
        self.logits
            .chunks_exact(vocab.max(1))
            .zip(self.log_normalizers)
            .flat_map(|(row, &lse)| row.iter().map(move |&z| z - lse))
            .collect()
    }
}

/// A batch being decoded, `rows_per_sentence` rows per sentence, row r of sentence b at
/// b · rows_per_sentence + r, every row starting from s_0.
pub trait StepDecoder {
    /// Advances every row by one token given each row's previous output (`<s>` at first).
    fn step(&mut self, previous: &[u32], alignments: bool) -> StepScores<'_>;
    /// Row r continues from the state of row `origin[r]` (always a row of the same sentence).
    fn reorder(&mut self, origin: &[usize]);
    /// Keeps only `rows`, in that order: later steps see `rows.len()` rows, row r being old row
    /// `rows[r]` (the search drops sentences that are done).
    fn retain(&mut self, rows: &[usize]);
}

/// The burn model as a [`StepDecoder`]: the encoder runs once, [`Decoder::step`] per step.
pub struct BurnSteps<'m> {
    model: &'m Seq2Seq,
    projected: ProjectedAnnotations,
    state: Option<RecurrentState<2>>,
    weights: StepWeights,
    /// The last step's rows, held here for [`StepScores`] to borrow: log-probabilities, so
    /// their normalisers are zeros.
    log_probs: Vec<f32>,
    zeros: Vec<f32>,
    alignment: Vec<f32>,
}

impl<'m> BurnSteps<'m> {
    /// Encodes a padded batch (`[batch, src_len]`, with lengths) and repeats every sentence
    /// `rows_per_sentence` times.
    pub fn new(
        model: &'m Seq2Seq,
        source: Tensor<2, Int>,
        lengths: &[usize],
        rows_per_sentence: usize,
    ) -> Self {
        let device = source.device();
        let encoded = model.encode(source, lengths);
        let decoder: &Decoder = &model.decoder;
        let mut projected = decoder.attention.project(&encoded);
        let mut state = decoder.initial_state(&encoded);
        if rows_per_sentence > 1 {
            let repeat: Vec<i64> = (0..lengths.len() * rows_per_sentence)
                .map(|r| (r / rows_per_sentence) as i64)
                .collect();
            let repeat = Tensor::<1, Int>::from_data(
                TensorData::new(repeat, [lengths.len() * rows_per_sentence]),
                &device,
            );
            projected = projected.select(repeat.clone());
            state = state.select(0, repeat);
        }
        Self {
            model,
            projected,
            state: Some(state),
            weights: decoder.step_weights(),
            log_probs: Vec::new(),
            zeros: Vec::new(),
            alignment: Vec::new(),
        }
    }
}

impl BurnSteps<'_> {
    fn row_indices(&self, rows: &[usize]) -> Tensor<1, Int> {
        let rows: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let n = rows.len();
        Tensor::from_data(TensorData::new(rows, [n]), &self.projected.padding.device())
    }
}

impl StepDecoder for BurnSteps<'_> {
    fn step(&mut self, previous: &[u32], alignments: bool) -> StepScores<'_> {
        let device = self.projected.padding.device();
        let previous: Vec<i64> = previous.iter().map(|&t| t as i64).collect();
        let rows = previous.len();
        let previous = Tensor::<1, Int>::from_data(TensorData::new(previous, [rows]), &device);
        let state = self.state.take().expect("a state between steps");
        let step = self
            .model
            .decoder
            .step(previous, state, &self.projected, &self.weights);
        self.state = Some(step.state);
        self.log_probs = to_vec_f32(log_softmax(step.logits.expect("step logits"), 1));
        if alignments {
            self.alignment = to_vec_f32(step.alignment_weights);
        }
        self.zeros.resize(rows, 0.0);
        StepScores {
            logits: &self.log_probs,
            log_normalizers: &self.zeros,
            alignment: alignments.then_some(&self.alignment[..]),
            src_len: self.projected.padding.dims()[1],
        }
    }

    fn reorder(&mut self, origin: &[usize]) {
        let origin = self.row_indices(origin);
        let state = self.state.take().expect("a state between steps");
        self.state = Some(state.select(0, origin));
    }

    fn retain(&mut self, rows: &[usize]) {
        let rows = self.row_indices(rows);
        self.projected = self.projected.select(rows.clone());
        let state = self.state.take().expect("a state between steps");
        self.state = Some(state.select(0, rows));
    }
}

/// Several decoders over one target vocabulary as one: p(y_i | y_<i, x) = (1/N) Σ_n
/// p_n(y_i | y_<i, x), the mean of the members' distributions (OpenNMT-py's `-avg_raw_probs`;
/// a mixture stays a distribution, unlike a mean of log-probabilities), and α_i the mean of
/// theirs. The members see the same rows, reorders and retains.
pub struct Ensemble<D> {
    members: Vec<D>,
    /// log of the mean distribution, `[rows, V]`.
    log_probs: Vec<f32>,
    zeros: Vec<f32>,
    alignment: Vec<f32>,
}

impl<D: StepDecoder> Ensemble<D> {
    /// An ensemble of `members` (at least one), each made for the same batch.
    pub fn new(members: Vec<D>) -> Self {
        assert!(!members.is_empty(), "an ensemble needs a member");
        Self {
            members,
            log_probs: Vec::new(),
            zeros: Vec::new(),
            alignment: Vec::new(),
        }
    }
}

impl<D: StepDecoder> StepDecoder for Ensemble<D> {
    fn step(&mut self, previous: &[u32], alignments: bool) -> StepScores<'_> {
        let weight = 1.0 / self.members.len() as f32;
        let mut src_len = 0;
        for (n, member) in self.members.iter_mut().enumerate() {
            let step = member.step(previous, alignments);
            debug_assert_eq!(
                step.log_normalizers.len(),
                previous.len(),
                "member {n}: rows"
            );
            src_len = step.src_len;
            if n == 0 {
                self.log_probs.clear();
                self.log_probs.resize(step.logits.len(), 0.0);
                self.alignment.clear();
            }
            let vocab = step.logits.len() / previous.len().max(1);
            self.log_probs
                .par_chunks_exact_mut(vocab.max(1))
                .zip(step.logits.par_chunks_exact(vocab.max(1)))
                .zip(step.log_normalizers.par_iter())
                .for_each(|((mean, z), &lse)| {
                    mean.iter_mut()
                        .zip(z)
                        .for_each(|(p, &z)| *p += weight * (z - lse).exp());
                });
            if let Some(alignment) = step.alignment {
                self.alignment.resize(alignment.len(), 0.0);
                self.alignment
                    .iter_mut()
                    .zip(alignment)
                    .for_each(|(mean, &a)| *mean += weight * a);
            }
        }
        self.log_probs.par_iter_mut().for_each(|p| *p = p.ln());
        self.zeros.resize(previous.len(), 0.0);
        StepScores {
            logits: &self.log_probs,
            log_normalizers: &self.zeros,
            alignment: alignments.then_some(&self.alignment[..]),
            src_len,
        }
    }

    fn reorder(&mut self, origin: &[usize]) {
        self.members.iter_mut().for_each(|m| m.reorder(origin));
    }

    fn retain(&mut self, rows: &[usize]) {
        self.members.iter_mut().for_each(|m| m.retain(rows));
    }
}

/// Translates a padded batch (`[batch, src_len]`, with lengths) with the burn model: greedy
/// when `beam < 2`, beam search otherwise. Returns, per sentence, up to `nbest` hypotheses,
/// best first.
pub fn search(
    model: &Seq2Seq,
    source: Tensor<2, Int>,
    lengths: &[usize],
    config: &SearchConfig,
) -> Vec<Vec<Hypothesis>> {
    let mut decoder = BurnSteps::new(model, source, lengths, config.rows_per_sentence());
    search_with(&mut decoder, lengths, config)
}

/// [`search`] over any [`StepDecoder`], made with [`SearchConfig::rows_per_sentence`] rows per
/// sentence for the sentences of `lengths`.
pub fn search_with(
    decoder: &mut impl StepDecoder,
    lengths: &[usize],
    config: &SearchConfig,
) -> Vec<Vec<Hypothesis>> {
    if config.beam < 2 {
        greedy(decoder, lengths, config)
            .into_iter()
            .map(|h| vec![h])
            .collect()
    } else {
        beam_search(decoder, lengths, config)
    }
}

/// Per sentence, the most output tokens: ⌈ratio × source length⌉ + 5; and the largest of them.
fn output_limits(lengths: &[usize], ratio: f64) -> (Vec<usize>, usize) {
    let limits: Vec<usize> = lengths
        .iter()
        .map(|&l| (ratio * l as f64).ceil() as usize + 5)
        .collect();
    let longest = limits.iter().copied().max().unwrap_or(0);
    (limits, longest)
}

fn to_vec_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float tensor")
}

/// The largest value of a row, NaNs aside, and its index (the first one on ties; (−∞, 0) when
/// there is no value above −∞): the maximum in a pass that vectorises, then its first position.
fn argmax(row: &[f32]) -> (f32, u32) {
    let best = max(row);
    let j = row.iter().position(|&v| v == best).unwrap_or(0);
    (best, j as u32)
}

/// The largest of `x` (−∞ when empty; NaNs ignored), in sixteen interleaved maxima.
fn max(x: &[f32]) -> f32 {
    let larger = |m: f32, v: f32| if v > m { v } else { m };
    let mut lanes = [f32::NEG_INFINITY; 16];
    let chunks = x.chunks_exact(16);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| larger(m, v));
    for chunk in chunks {
        lanes
            .iter_mut()
            .zip(chunk)
            .for_each(|(l, &v)| *l = larger(*l, v));
    }
    lanes.iter().fold(tail, |m, &v| larger(m, v))
}

/// Batched greedy search: y_i = argmax p(y | y_<i, x) until `</s>` or the length limit.
///
/// Sentences that are done leave the batch once they are a tenth of it.
fn greedy(
    decoder: &mut impl StepDecoder,
    lengths: &[usize],
    config: &SearchConfig,
) -> Vec<Hypothesis> {
    let batch = lengths.len();
    let (limits, longest) = output_limits(lengths, config.max_len_ratio);
    let mut hyps = vec![Hypothesis::default(); batch];
    let mut done = vec![false; batch];
    // The sentence of every decoder row, and its previous output.
    let mut sentence: Vec<usize> = (0..batch).collect();
    let mut previous = vec![config.bos; batch];
    for i in 0..longest {
        let step = decoder.step(&previous, config.alignments);
        let vocab = step.logits.len() / sentence.len().max(1);
        for (r, &b) in sentence.iter().enumerate() {
            if done[b] {
                continue;
            }
            let (z, token) = argmax(&step.logits[r * vocab..(r + 1) * vocab]);
            hyps[b].score += z - step.log_normalizers[r];
            if let Some(a) = &step.alignment {
                let at = r * step.src_len;
                hyps[b].alignment.push(a[at..at + lengths[b]].to_vec());
            }
            if token == config.eos {
                done[b] = true;
            } else {
                hyps[b].tokens.push(token);
                done[b] = i + 1 >= limits[b];
            }
            previous[r] = token;
        }
        let live: Vec<usize> = (0..sentence.len())
            .filter(|&r| !done[sentence[r]])
            .collect();
        if live.is_empty() {
            break;
        }
        if 10 * (sentence.len() - live.len()) >= sentence.len() {
            decoder.retain(&live);
            sentence = live.iter().map(|&r| sentence[r]).collect();
            previous = live.iter().map(|&r| previous[r]).collect();
        }
    }
    hyps
}

/// One live hypothesis of the beam.
#[derive(Clone)]
struct Beam {
    tokens: Vec<u32>,
    log_prob: f32,
    alignment: Vec<Vec<f32>>,
}

/// The `width` best continuations of every sentence: for its K rows of `logits`
/// (`[sentences·K, V]`), score = `offsets[j]` + z_j[token], as `(score, j·V + token)`, best
/// first (ties: lower index first). With row j's running log-probability minus its
/// log-normaliser as the offset, the score is the continuation's log-probability.
///
/// The best `width` of a sentence are among the best `width` of each of its rows, so the rows
/// are scanned on their own, in parallel, and only K·width candidates per sentence are merged
/// (rather than adding the running score to all K·V and ranking them in one pass).
fn best_continuations(
    logits: &[f32],
    vocab: usize,
    offsets: &[f32],
    k: usize,
    width: usize,
) -> Vec<Vec<(f32, u32)>> {
    let per_row: Vec<Vec<(f32, u32)>> = logits
        .par_chunks_exact(vocab)
        .zip(offsets.par_iter())
        .map(|(row, &offset)| top_k(row, offset, width))
        .collect();
    per_row
        .chunks_exact(k)
        .map(|rows| {
            let mut merged: Vec<(f32, u32)> = rows
                .iter()
                .enumerate()
                .flat_map(|(j, best)| best.iter().map(move |&(v, t)| (v, (j * vocab) as u32 + t)))
                .collect();
            merged.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            merged.truncate(width);
            merged
        })
        .collect()
}

/// The `width` largest of `offset + z` over a row's `z` with their positions, largest first
/// (ties: lower position first), in one pass keeping a small sorted list. Once the list is
/// full, a run of 16 values whose largest cannot enter it is skipped after one vectorised
/// maximum, which is most of a row.
fn top_k(row: &[f32], offset: f32, width: usize) -> Vec<(f32, u32)> {
    const RUN: usize = 16;
    let mut best: Vec<(f32, u32)> = Vec::with_capacity(width + 1);
    for (run, values) in row.chunks(RUN).enumerate() {
        if best.len() == width && (offset + max(values)).total_cmp(&best[width - 1].0).is_le() {
            continue;
        }
        for (i, &z) in values.iter().enumerate() {
            let v = offset + z;
            if best.len() == width && v.total_cmp(&best[width - 1].0).is_le() {
                continue;
            }
            let at = best.partition_point(|&(b, _)| b.total_cmp(&v).is_ge());
            best.insert(at, (v, (run * RUN + i) as u32));
            best.truncate(width);
        }
    }
    best
}

/// Batched beam search with length normalisation.
///
/// All sentences × K beams advance together. Per step and sentence the 2K best continuations
/// are ranked; those that end in `</s>` within the top K are set aside as finished, and the K
/// best others continue. A sentence is done once it has K finished hypotheses or reaches its
/// length limit, where its live beams are finished as they stand. Sentences that are done
/// leave the batch once they are a tenth of it.
fn beam_search(
    decoder: &mut impl StepDecoder,
    lengths: &[usize],
    config: &SearchConfig,
) -> Vec<Vec<Hypothesis>> {
    let batch = lengths.len();
    let k = config.beam;
    let (limits, longest) = output_limits(lengths, config.max_len_ratio);
    // Only beam 0 of each sentence is live at the start; the others are copies of it.
    let mut beams: Vec<Vec<Beam>> = (0..batch)
        .map(|_| {
            vec![Beam {
                tokens: vec![],
                log_prob: 0.0,
                alignment: vec![],
            }]
        })
        .collect();
    let mut finished: Vec<Vec<Hypothesis>> = vec![Vec::new(); batch];
    let mut done = vec![false; batch];
    let mut previous = vec![config.bos; batch * k];
    let normalise = |log_prob: f32, len: usize| -> f32 {
        (log_prob as f64 / ((5.0 + len as f64) / 6.0).powf(config.alpha)) as f32
    };

    // The sentence at each position of the decoder's batch (rows p·K .. p·K + K).
    let mut sentence: Vec<usize> = (0..batch).collect();
    for i in 0..longest {
        let step = decoder.step(&previous, config.alignments);
        let src_len = step.src_len;
        let vocab = step.logits.len() / (sentence.len() * k);
        // log p(prefix) − lse per row, so that offset + z is log p(prefix, token); dead rows
        // get -inf so they are never chosen.
        let offsets: Vec<f32> = sentence
            .iter()
            .flat_map(|&b| (0..k).map(move |j| (b, j)))
            .zip(step.log_normalizers)
            .map(|((b, j), &lse)| match beams[b].get(j) {
                Some(beam) if !done[b] => beam.log_prob - lse,
                _ => f32::NEG_INFINITY,
            })
            .collect();
        let width = (2 * k).min(k * vocab);
        let best = best_continuations(step.logits, vocab, &offsets, k, width);
        let alignment = step.alignment;

        let mut origin = vec![0usize; sentence.len() * k];
        for (p, &b) in sentence.iter().enumerate() {
            if done[b] {
                continue;
            }
            let mut next: Vec<Beam> = Vec::with_capacity(k);
            for (rank, &(score, flat)) in best[p].iter().enumerate() {
                if score == f32::NEG_INFINITY || next.len() == k {
                    break;
                }
                let flat = flat as usize;
                let (from, token) = (flat / vocab, (flat % vocab) as u32);
                let parent = &beams[b][from];
                let mut alignment_so_far = Vec::new();
                if let Some(a) = &alignment {
                    let row = p * k + from;
                    alignment_so_far = parent.alignment.clone();
                    alignment_so_far.push(a[row * src_len..row * src_len + lengths[b]].to_vec());
                }
                if token == config.eos {
                    if rank < k {
                        finished[b].push(Hypothesis {
                            tokens: parent.tokens.clone(),
                            score: normalise(score, parent.tokens.len() + 1),
                            alignment: alignment_so_far,
                        });
                    }
                    continue;
                }
                let mut tokens = parent.tokens.clone();
                tokens.push(token);
                origin[p * k + next.len()] = p * k + from;
                previous[p * k + next.len()] = token;
                next.push(Beam {
                    tokens,
                    log_prob: score,
                    alignment: alignment_so_far,
                });
            }
            if finished[b].len() >= k || i + 1 >= limits[b] || next.is_empty() {
                done[b] = true;
                if finished[b].len() < config.nbest.max(1) {
                    for beam in &next {
                        finished[b].push(Hypothesis {
                            tokens: beam.tokens.clone(),
                            score: normalise(beam.log_prob, beam.tokens.len()),
                            alignment: beam.alignment.clone(),
                        });
                    }
                }
            }
            beams[b] = next;
        }
        let live: Vec<usize> = (0..sentence.len())
            .filter(|&p| !done[sentence[p]])
            .collect();
        if live.is_empty() {
            break;
        }
        if 10 * (sentence.len() - live.len()) >= sentence.len() {
            // Finished sentences leave the batch; the others' rows move with their beams.
            let rows: Vec<usize> = live.iter().flat_map(|&p| p * k..(p + 1) * k).collect();
            decoder.retain(&rows.iter().map(|&r| origin[r]).collect::<Vec<_>>());
            previous = rows.iter().map(|&r| previous[r]).collect();
            sentence = live.iter().map(|&p| sentence[p]).collect();
        } else {
            decoder.reorder(&origin);
        }
    }
    finished
        .into_iter()
        .map(|mut hyps| {
            hyps.sort_by(|a, b| b.score.total_cmp(&a.score));
            hyps.truncate(config.nbest.max(1));
            hyps
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row gets the same unnormalised scores and alignment.
    struct Fixed {
        logits: Vec<f32>,
        lse: f32,
        alignment: Vec<f32>,
        rows_z: Vec<f32>,
        rows_lse: Vec<f32>,
        rows_alignment: Vec<f32>,
    }

    impl Fixed {
        fn new(logits: Vec<f32>, alignment: Vec<f32>) -> Self {
            let lse = logits.iter().map(|z| z.exp()).sum::<f32>().ln();
            Self {
                logits,
                lse,
                alignment,
                rows_z: vec![],
                rows_lse: vec![],
                rows_alignment: vec![],
            }
        }
    }

    impl StepDecoder for Fixed {
        fn step(&mut self, previous: &[u32], alignments: bool) -> StepScores<'_> {
            self.rows_z = self.logits.repeat(previous.len());
            self.rows_lse = vec![self.lse; previous.len()];
            self.rows_alignment = self.alignment.repeat(previous.len());
            StepScores {
                logits: &self.rows_z,
                log_normalizers: &self.rows_lse,
                alignment: alignments.then_some(&self.rows_alignment[..]),
                src_len: self.alignment.len(),
            }
        }
        fn reorder(&mut self, _: &[usize]) {}
        fn retain(&mut self, _: &[usize]) {}
    }

    #[test]
    fn an_ensemble_takes_the_mean_of_the_distributions() {
        let a = Fixed::new(vec![2.0, 0.0, -1.0, 0.5], vec![0.75, 0.25]);
        let b = Fixed::new(vec![-1.0, 3.0, 0.0, 0.0], vec![0.25, 0.75]);
        let softmax = |z: &[f32]| -> Vec<f32> {
            let total: f32 = z.iter().map(|v| v.exp()).sum();
            z.iter().map(|v| v.exp() / total).collect()
        };
        let want: Vec<f32> = softmax(&a.logits)
            .iter()
            .zip(softmax(&b.logits))
            .map(|(p, q)| ((p + q) / 2.0).ln())
            .collect();
        let mut ensemble = Ensemble::new(vec![a, b]);
        let step = ensemble.step(&[2, 2, 7], true);
        let got = step.log_probs();
        assert_eq!(got.len(), 3 * 4);
        for row in got.chunks_exact(4) {
            assert!(
                row.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-5),
                "{row:?}"
            );
        }
        assert_eq!(step.alignment.unwrap(), &[0.5; 6]);
        assert_eq!(step.src_len, 2);
    }

    #[test]
    fn argmax_takes_the_first_of_equal_maxima() {
        let mut row = vec![-1.0f32; 40];
        row[33] = 2.5;
        row[17] = 2.5;
        assert_eq!(argmax(&row), (2.5, 17));
        assert_eq!(argmax(&row[..17]), (-1.0, 0));
        assert_eq!(argmax(&[f32::NEG_INFINITY; 5]), (f32::NEG_INFINITY, 0));
        assert_eq!(argmax(&[f32::NAN, 1.0, 3.0]), (3.0, 2));
    }

    #[test]
    fn best_continuations_match_a_full_sort() {
        // 37: fewer values than the skipped runs; 1,001: mostly skipped runs, ties among them.
        for vocab in [37, 1001] {
            best_continuations_match_a_full_sort_at(vocab);
        }
    }

    fn best_continuations_match_a_full_sort_at(vocab: usize) {
        let (k, sentences) = (3, 2);
        let log_probs: Vec<f32> = (0..sentences * k * vocab)
            .map(|i| {
                if i % 11 == 0 {
                    f32::NEG_INFINITY
                } else {
                    ((i * 7919) % 101) as f32 - 50.0
                }
            })
            .collect();
        let running = [0.0, -3.0, f32::NEG_INFINITY, -1.0, 0.0, -2.5];
        let best = best_continuations(&log_probs, vocab, &running, k, 6);
        for (p, got) in best.iter().enumerate() {
            let all: Vec<f32> = (0..k * vocab)
                .map(|c| running[p * k + c / vocab] + log_probs[p * k * vocab + c])
                .collect();
            let mut order: Vec<usize> = (0..k * vocab).collect();
            order.sort_by(|&a, &b| all[b].total_cmp(&all[a]).then(a.cmp(&b)));
            let want: Vec<(f32, u32)> = order[..6].iter().map(|&c| (all[c], c as u32)).collect();
            assert_eq!(got, &want, "vocabulary {vocab}, sentence {p}");
        }
    }
}

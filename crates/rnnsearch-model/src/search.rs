//! Batched greedy and beam search.
//!
//! Both encode a batch once, then advance every sentence (× K beams) in one tensor pass per
//! step through [`Decoder::step`]. [`search`] picks greedy for K < 2 and beam search otherwise;
//! both return, per sentence, hypotheses best first.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};

use crate::attention::ProjectedAnnotations;
use crate::cell::RecurrentState;
use crate::decoder::Decoder;
use crate::model::Seq2Seq;

/// Ids the search needs from the target vocabulary.
const BOS: u32 = 2;
const EOS: u32 = 3;

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
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            beam: 1,
            alpha: 1.0,
            max_len_ratio: 2.0,
            nbest: 1,
            alignments: false,
        }
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

/// Translates a padded batch (`[batch, src_len]`, with lengths): greedy when `beam < 2`,
/// beam search otherwise. Returns, per sentence, up to `nbest` hypotheses, best first.
pub fn search(
    model: &Seq2Seq,
    source: Tensor<2, Int>,
    lengths: &[usize],
    config: &SearchConfig,
) -> Vec<Vec<Hypothesis>> {
    if config.beam < 2 {
        greedy(model, source, lengths, config)
            .into_iter()
            .map(|h| vec![h])
            .collect()
    } else {
        beam_search(model, source, lengths, config)
    }
}

fn max_output_len(src_len: usize, ratio: f64) -> usize {
    (ratio * src_len as f64).ceil() as usize + 5
}

struct Prepared {
    projected: ProjectedAnnotations,
    state: RecurrentState<2>,
    weights: crate::decoder::StepWeights,
}

fn prepare(model: &Seq2Seq, source: Tensor<2, Int>, lengths: &[usize]) -> Prepared {
    let encoded = model.encode(source, lengths);
    let decoder: &Decoder = &model.decoder;
    Prepared {
        projected: decoder.attention.project(&encoded),
        state: decoder.initial_state(&encoded),
        weights: decoder.step_weights(),
    }
}

fn to_vec_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float tensor")
}

fn to_vec_u32<const D: usize>(t: Tensor<D, Int>) -> Vec<u32> {
    t.into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("int tensor")
        .into_iter()
        .map(|v| v as u32)
        .collect()
}

/// Batched greedy search: y_i = argmax p(y | y_<i, x) until `</s>` or the length limit.
pub fn greedy(
    model: &Seq2Seq,
    source: Tensor<2, Int>,
    lengths: &[usize],
    config: &SearchConfig,
) -> Vec<Hypothesis> {
    let device = source.device();
    let batch = lengths.len();
    let limits: Vec<usize> = lengths
        .iter()
        .map(|&l| max_output_len(l, config.max_len_ratio))
        .collect();
    let longest = limits.iter().copied().max().unwrap_or(0);
    let Prepared {
        projected,
        mut state,
        weights,
    } = prepare(model, source, lengths);
    let mut hyps = vec![Hypothesis::default(); batch];
    let mut done = vec![false; batch];
    let mut previous =
        Tensor::<1, Int>::from_data(TensorData::new(vec![BOS as i64; batch], [batch]), &device);
    for i in 0..longest {
        let step = model.decoder.step(previous, state, &projected, &weights);
        state = step.state;
        let log_probs = log_softmax(step.logits.expect("step logits"), 1);
        let (best, index) = log_probs.max_dim_with_indices(1);
        let tokens = to_vec_u32(index.clone());
        let scores = to_vec_f32(best);
        let alignment = config
            .alignments
            .then(|| to_vec_f32(step.alignment_weights));
        let src_len = projected.padding.dims()[1];
        for b in 0..batch {
            if done[b] {
                continue;
            }
            hyps[b].score += scores[b];
            if let Some(a) = &alignment {
                hyps[b]
                    .alignment
                    .push(a[b * src_len..b * src_len + lengths[b]].to_vec());
            }
            if tokens[b] == EOS {
                done[b] = true;
            } else {
                hyps[b].tokens.push(tokens[b]);
                done[b] = i + 1 >= limits[b];
            }
        }
        if done.iter().all(|&d| d) {
            break;
        }
        previous = index.reshape([batch]);
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

/// Batched beam search with length normalisation.
///
/// All sentences × K beams advance as one `[batch·K, ..]` tensor. Per step and sentence the 2K
/// best continuations are ranked; those that end in `</s>` within the top K are set aside as
/// finished, and the K best others continue. A sentence is done once it has K finished
/// hypotheses or reaches its length limit, where its live beams are finished as they stand.
/// The `width` largest values of each row of `scores` (`[rows, cols]`) and their column
/// indices, largest first (ties: lower index first).
///
/// One pass over each row keeping a small sorted list: burn's `topk` sorts whole rows (K·V
/// candidates per sentence), which took most of a beam search's time.
fn top_k_rows(scores: &[f32], cols: usize, width: usize) -> (Vec<f32>, Vec<u32>) {
    let rows = scores.len() / cols;
    let mut values = Vec::with_capacity(rows * width);
    let mut indices = Vec::with_capacity(rows * width);
    let mut best: Vec<(f32, u32)> = Vec::with_capacity(width + 1);
    for row in scores.chunks_exact(cols) {
        best.clear();
        for (j, &v) in row.iter().enumerate() {
            if best.len() == width && v.total_cmp(&best[width - 1].0).is_le() {
                continue;
            }
            let at = best.partition_point(|&(b, _)| b.total_cmp(&v).is_ge());
            best.insert(at, (v, j as u32));
            best.truncate(width);
        }
        values.extend(best.iter().map(|&(v, _)| v));
        indices.extend(best.iter().map(|&(_, j)| j));
    }
    (values, indices)
}

pub fn beam_search(
    model: &Seq2Seq,
    source: Tensor<2, Int>,
    lengths: &[usize],
    config: &SearchConfig,
) -> Vec<Vec<Hypothesis>> {
    let device = source.device();
    let batch = lengths.len();
    let k = config.beam;
    let limits: Vec<usize> = lengths
        .iter()
        .map(|&l| max_output_len(l, config.max_len_ratio))
        .collect();
    let longest = limits.iter().copied().max().unwrap_or(0);
    let Prepared {
        projected,
        state,
        weights,
    } = prepare(model, source, lengths);
    let repeat: Vec<i64> = (0..batch * k).map(|r| (r / k) as i64).collect();
    let repeat = Tensor::<1, Int>::from_data(TensorData::new(repeat, [batch * k]), &device);
    let projected = projected.select(repeat.clone());
    let mut state = state.select(0, repeat);
    let src_len = projected.padding.dims()[1];

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
    let mut previous = vec![BOS as i64; batch * k];
    let normalise = |log_prob: f32, len: usize| -> f32 {
        (log_prob as f64 / ((5.0 + len as f64) / 6.0).powf(config.alpha)) as f32
    };

    for i in 0..longest {
        let prev =
            Tensor::<1, Int>::from_data(TensorData::new(previous.clone(), [batch * k]), &device);
        let step = model.decoder.step(prev, state, &projected, &weights);
        let log_probs = log_softmax(step.logits.expect("step logits"), 1); // [batch·K, V]
        let vocab = log_probs.dims()[1];
        // Add each beam's running score; dead rows get -inf so they are never chosen.
        let mut running = vec![f32::NEG_INFINITY; batch * k];
        for (b, bs) in beams.iter().enumerate() {
            if !done[b] {
                for (j, beam) in bs.iter().enumerate() {
                    running[b * k + j] = beam.log_prob;
                }
            }
        }
        let running = Tensor::<2>::from_data(TensorData::new(running, [batch * k, 1]), &device);
        let candidates = (log_probs + running).reshape([batch, k * vocab]);
        let width = (2 * k).min(k * vocab);
        let (top_scores, top_index) = top_k_rows(&to_vec_f32(candidates), k * vocab, width);
        let alignment = config
            .alignments
            .then(|| to_vec_f32(step.alignment_weights));

        let mut origin = vec![0i64; batch * k];
        let mut next_beams: Vec<Vec<Beam>> = vec![Vec::new(); batch];
        for b in 0..batch {
            if done[b] {
                continue;
            }
            for rank in 0..width {
                let score = top_scores[b * width + rank];
                if score == f32::NEG_INFINITY || next_beams[b].len() == k {
                    break;
                }
                let flat = top_index[b * width + rank] as usize;
                let (from, token) = (flat / vocab, (flat % vocab) as u32);
                let parent = &beams[b][from];
                let mut alignment_so_far = Vec::new();
                if let Some(a) = &alignment {
                    let row = b * k + from;
                    alignment_so_far = parent.alignment.clone();
                    alignment_so_far.push(a[row * src_len..row * src_len + lengths[b]].to_vec());
                }
                if token == EOS {
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
                origin[b * k + next_beams[b].len()] = (b * k + from) as i64;
                previous[b * k + next_beams[b].len()] = token as i64;
                next_beams[b].push(Beam {
                    tokens,
                    log_prob: score,
                    alignment: alignment_so_far,
                });
            }
            if finished[b].len() >= k || i + 1 >= limits[b] || next_beams[b].is_empty() {
                done[b] = true;
                if finished[b].len() < config.nbest.max(1) {
                    for beam in &next_beams[b] {
                        finished[b].push(Hypothesis {
                            tokens: beam.tokens.clone(),
                            score: normalise(beam.log_prob, beam.tokens.len()),
                            alignment: beam.alignment.clone(),
                        });
                    }
                }
            }
        }
        beams = next_beams;
        if done.iter().all(|&d| d) {
            break;
        }
        let origin = Tensor::<1, Int>::from_data(TensorData::new(origin, [batch * k]), &device);
        state = step.state.select(0, origin);
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

    #[test]
    fn top_k_rows_matches_a_full_sort() {
        let cols = 37;
        let scores: Vec<f32> = (0..3 * cols)
            .map(|i| {
                if i % 11 == 0 {
                    f32::NEG_INFINITY
                } else {
                    ((i * 7919) % 101) as f32 - 50.0
                }
            })
            .collect();
        let (values, indices) = top_k_rows(&scores, cols, 6);
        for (r, row) in scores.chunks_exact(cols).enumerate() {
            let mut order: Vec<usize> = (0..cols).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            let want: Vec<u32> = order[..6].iter().map(|&j| j as u32).collect();
            assert_eq!(&indices[r * 6..(r + 1) * 6], want.as_slice());
            for (v, &j) in values[r * 6..(r + 1) * 6].iter().zip(&want) {
                assert_eq!(*v, row[j as usize]);
            }
        }
    }
}

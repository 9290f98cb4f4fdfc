//! Token-budget batches grouped by length, shuffled reproducibly per epoch.
//!
//! Like fairseq's `--max-tokens`: a batch holds as many sentences as fit in
//! `batch_tokens`, where the cost of a batch is `sentences × padded length` of
//! its longer side. Sorting by length before packing keeps padding small;
//! shuffling the batch order (and ties within a length) from `(seed, epoch)`
//! keeps training stochastic yet exactly rebuildable when a run resumes.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Vocab;

/// One sentence pair as subword ids, without BOS/EOS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Example {
    pub src: Vec<u32>,
    pub tgt: Vec<u32>,
}

impl Example {
    /// Length of the source row in a batch (the ids plus the appended EOS).
    pub fn src_width(&self) -> usize {
        self.src.len() + 1
    }

    /// Length of the target rows in a batch (`<s>` y… or y… `</s>`).
    pub fn tgt_width(&self) -> usize {
        self.tgt.len() + 1
    }
}

/// A padded batch, flat row-major, ready to become tensors.
///
/// Source rows are `x1..xm </s>` (EOS appended, so even an empty source has one
/// real position to attend to); `src_lengths[i] = m + 1`. Target rows are
/// `tgt_in = <s> y1..yn` and `tgt_out = y1..yn </s>`; `tgt_lengths[i] = n + 1`.
/// Padding is [`Vocab::PAD`] (0). Rows are sorted by source length (ascending).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Index of each row's example in the slice the batch was built from.
    pub indices: Vec<usize>,
    /// `[batch_size, src_len]`.
    pub src: Vec<u32>,
    pub src_lengths: Vec<usize>,
    /// `[batch_size, tgt_len]`.
    pub tgt_in: Vec<u32>,
    /// `[batch_size, tgt_len]`.
    pub tgt_out: Vec<u32>,
    pub tgt_lengths: Vec<usize>,
}

impl Batch {
    /// Builds the padded batch of `examples[i]` for `i` in `indices` (in that order).
    /// Also serves inference: give examples with an empty `tgt`.
    pub fn from_examples(examples: &[Example], indices: Vec<usize>) -> Batch {
        let rows: Vec<&Example> = indices.iter().map(|&i| &examples[i]).collect();
        let src_len = rows.iter().map(|e| e.src_width()).max().unwrap_or(0);
        let tgt_len = rows.iter().map(|e| e.tgt_width()).max().unwrap_or(0);
        let mut batch = Batch {
            src: Vec::with_capacity(rows.len() * src_len),
            tgt_in: Vec::with_capacity(rows.len() * tgt_len),
            tgt_out: Vec::with_capacity(rows.len() * tgt_len),
            indices,
            ..Batch::default()
        };
        for e in rows {
            push_row(&mut batch.src, None, &e.src, Some(Vocab::EOS), src_len);
            push_row(&mut batch.tgt_in, Some(Vocab::BOS), &e.tgt, None, tgt_len);
            push_row(&mut batch.tgt_out, None, &e.tgt, Some(Vocab::EOS), tgt_len);
            batch.src_lengths.push(e.src_width());
            batch.tgt_lengths.push(e.tgt_width());
        }
        batch
    }

    pub fn batch_size(&self) -> usize {
        self.src_lengths.len()
    }

    /// Padded source length (columns of `src`).
    pub fn src_len(&self) -> usize {
        self.src.len().checked_div(self.batch_size()).unwrap_or(0)
    }

    /// Padded target length (columns of `tgt_in` / `tgt_out`).
    pub fn tgt_len(&self) -> usize {
        self.tgt_in
            .len()
            .checked_div(self.batch_size())
            .unwrap_or(0)
    }

    /// Real source positions (EOS included).
    pub fn num_src_tokens(&self) -> usize {
        self.src_lengths.iter().sum()
    }

    /// Real target positions = the number of predicted tokens (EOS included).
    pub fn num_tgt_tokens(&self) -> usize {
        self.tgt_lengths.iter().sum()
    }

    /// `[batch_size, src_len]`, true on real tokens.
    pub fn src_mask(&self) -> Vec<bool> {
        mask(&self.src_lengths, self.src_len())
    }

    /// `[batch_size, tgt_len]`, true on real tokens (same for `tgt_in` and `tgt_out`).
    pub fn tgt_mask(&self) -> Vec<bool> {
        mask(&self.tgt_lengths, self.tgt_len())
    }

    /// `(padding slots, all slots)` over both sides.
    pub fn padding(&self) -> (usize, usize) {
        let slots = self.src.len() + self.tgt_in.len();
        (slots - self.num_src_tokens() - self.num_tgt_tokens(), slots)
    }

    /// The budget this batch uses: `batch_size × max(src_len, tgt_len)`.
    pub fn cost(&self) -> usize {
        self.batch_size() * self.src_len().max(self.tgt_len())
    }

    /// Word dropout (Gal & Ghahramani 2016; Marian's `--dropout-src`/`--dropout-trg`): every
    /// source word x_j, and every target word y_{i-1} the decoder reads, becomes `<unk>` with
    /// probability `src_p` and `tgt_p`, drawn from `seed`. `</s>` and `<s>` stay, and so do the
    /// words the decoder predicts (`tgt_out`): the model learns to translate around a missing
    /// word rather than to emit `<unk>`.
    pub fn drop_words(&mut self, src_p: f32, tgt_p: f32, seed: u64) {
        let mut rng = epoch_rng(seed, u64::MAX);
        let (src_len, tgt_len) = (self.src_len(), self.tgt_len());
        for (b, &n) in self.src_lengths.iter().enumerate() {
            // the row's last real position is </s>
            let words = &mut self.src[b * src_len..b * src_len + n.saturating_sub(1)];
            unk_with(words, src_p, &mut rng);
        }
        for (b, &n) in self.tgt_lengths.iter().enumerate() {
            // the row's first position is <s>
            let words = &mut self.tgt_in[b * tgt_len..b * tgt_len + n];
            unk_with(words.get_mut(1..).unwrap_or_default(), tgt_p, &mut rng);
        }
    }
}

impl Batch {
    /// Reverses every target sentence in place (Marian's `--right-left`): the decoder of a
    /// right-to-left model reads `<s> y_n … y_1` and predicts `y_n … y_1 </s>`.
    pub fn reverse_targets(&mut self) {
        let tgt_len = self.tgt_len();
        for (b, &n) in self.tgt_lengths.iter().enumerate() {
            // n counts the words and one of <s> (tgt_in's first) or </s> (tgt_out's last)
            let (row, words) = (b * tgt_len, n.saturating_sub(1));
            self.tgt_in[row + 1..row + 1 + words].reverse();
            self.tgt_out[row..row + words].reverse();
        }
    }
}

/// Replaces each of `words` by `<unk>` with probability `p`.
fn unk_with(words: &mut [u32], p: f32, rng: &mut ChaCha8Rng) {
    if p <= 0.0 {
        return;
    }
    for w in words {
        if rng.random::<f32>() < p {
            *w = Vocab::UNK;
        }
    }
}

fn push_row(out: &mut Vec<u32>, first: Option<u32>, ids: &[u32], last: Option<u32>, width: usize) {
    let start = out.len();
    out.extend(first);
    out.extend_from_slice(ids);
    out.extend(last);
    out.resize(start + width, Vocab::PAD);
}

fn mask(lengths: &[usize], width: usize) -> Vec<bool> {
    lengths
        .iter()
        .flat_map(|&n| (0..width).map(move |j| j < n))
        .collect()
}

/// The epoch's batches: deterministic in `(examples, batch_tokens, seed, epoch)`.
///
/// Examples are shuffled, stably sorted by (source, target) length, packed
/// greedily under the budget, and the batches shuffled. An example longer than
/// the budget on its own still gets a batch of one — nothing is dropped.
pub fn batches(examples: &[Example], batch_tokens: usize, seed: u64, epoch: u64) -> Vec<Batch> {
    let mut rng = epoch_rng(seed, epoch);
    let order: Vec<usize> = (0..examples.len()).collect();
    let widths = |i: usize| (examples[i].src_width(), examples[i].tgt_width());
    plan(order, widths, batch_tokens, &mut rng)
        .into_iter()
        .map(|g| Batch::from_examples(examples, g))
        .collect()
}

/// An epoch's plan over the items of `order` with the given (source, target) widths: shuffled,
/// stably sorted by widths, packed under `batch_tokens`, and the groups shuffled.
pub(crate) fn plan<T: Copy>(
    order: Vec<T>,
    widths: impl Fn(T) -> (usize, usize),
    batch_tokens: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<T>> {
    let plan = EpochPlan::new(order, widths, batch_tokens, rng);
    plan.batches().map(<[T]>::to_vec).collect()
}

/// An epoch's batches as index groups, kept as one sorted index array and the spans of the
/// batches in it (in the order the epoch takes them): no allocation per batch, and no more
/// memory than the indices themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochPlan<T = u32> {
    order: Vec<T>,
    spans: Vec<(usize, usize)>,
}

impl<T: Copy> EpochPlan<T> {
    /// `order` shuffled, stably sorted by `widths`, packed under `batch_tokens`, and the
    /// batches shuffled, all from `rng`.
    pub(crate) fn new(
        mut order: Vec<T>,
        widths: impl Fn(T) -> (usize, usize),
        batch_tokens: usize,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        order.shuffle(rng);
        let order = sort_by_widths(order, &widths);
        let mut spans = Vec::new();
        let mut start = 0;
        for size in pack(&order, widths, batch_tokens) {
            spans.push((start, size));
            start += size;
        }
        spans.shuffle(rng);
        EpochPlan { order, spans }
    }

    /// Batches in the epoch.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The batches' indices, in the order the epoch takes them.
    pub fn batches(&self) -> impl Iterator<Item = &[T]> + '_ {
        self.spans
            .iter()
            .map(|&(start, size)| &self.order[start..start + size])
    }
}

/// Index groups for source-only input (inference): indices sorted by length
/// (stable), packed so that `count × max length ≤ batch_tokens`. The caller
/// restores the original order from the indices. Pass the lengths the rows will
/// have (`src.len() + 1` with [`Batch::from_examples`], which appends EOS).
pub fn source_batches(lengths: &[usize], batch_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut groups = Vec::new();
    let mut start = 0;
    for size in pack(&order, |i| (lengths[i], 0), batch_tokens) {
        groups.push(order[start..start + size].to_vec());
        start += size;
    }
    groups
}

/// `order` stably sorted by `widths` (source, then target): a counting sort over the widths'
/// few distinct values (two passes, the same result as a stable comparison sort without its
/// n log n lookups), or that sort when the widths spread too wide for a table of counts.
fn sort_by_widths<T: Copy>(mut order: Vec<T>, widths: &impl Fn(T) -> (usize, usize)) -> Vec<T> {
    let (mut max_s, mut max_t) = (0, 0);
    for &i in &order {
        let (s, t) = widths(i);
        max_s = max_s.max(s);
        max_t = max_t.max(t);
    }
    let buckets = (max_s + 1) * (max_t + 1);
    if order.len() < 1024 || buckets > order.len() {
        order.sort_by_key(|&i| widths(i));
        return order;
    }
    let key = |i: T| {
        let (s, t) = widths(i);
        s * (max_t + 1) + t
    };
    let mut starts = vec![0usize; buckets + 1];
    for &i in &order {
        starts[key(i) + 1] += 1;
    }
    for k in 1..starts.len() {
        starts[k] += starts[k - 1];
    }
    let mut sorted = order.clone();
    for &i in &order {
        let slot = &mut starts[key(i)];
        sorted[*slot] = i;
        *slot += 1;
    }
    sorted
}

/// Greedy packing of `order` into consecutive groups whose cost `count × max(width)` stays
/// within `budget` (a single over-budget item forms its own group): the groups' sizes.
fn pack<T: Copy>(order: &[T], widths: impl Fn(T) -> (usize, usize), budget: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut current = 0;
    let mut widest = 0;
    for &i in order {
        let (a, b) = widths(i);
        let wider = widest.max(a).max(b);
        if current > 0 && (current + 1) * wider > budget {
            sizes.push(current);
            current = 0;
            widest = a.max(b);
        } else {
            widest = wider;
        }
        current += 1;
    }
    if current > 0 {
        sizes.push(current);
    }
    sizes
}

/// ChaCha8 seeded with `seed` and `epoch` in separate words, so distinct
/// `(seed, epoch)` pairs never share a stream.
pub(crate) fn epoch_rng(seed: u64, epoch: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&epoch.to_le_bytes());
    key[16..24].copy_from_slice(b"rnnbatch");
    ChaCha8Rng::from_seed(key)
}

/// Padding fraction of planned groups over both sides, from the items' widths alone.
pub fn planned_padding<'a, T: Copy + 'a>(
    groups: impl IntoIterator<Item = &'a [T]>,
    widths: impl Fn(T) -> (usize, usize),
) -> f64 {
    let (mut pad, mut all) = (0usize, 0usize);
    for group in groups {
        let w: Vec<(usize, usize)> = group.iter().map(|&i| widths(i)).collect();
        let src = w.iter().map(|x| x.0).max().unwrap_or(0);
        let tgt = w.iter().map(|x| x.1).max().unwrap_or(0);
        // as `Batch::padding` counts: the source rows and one target side
        let real: usize = w.iter().map(|x| x.0 + x.1).sum();
        let slots = w.len() * (src + tgt);
        pad += slots - real;
        all += slots;
    }
    if all == 0 {
        0.0
    } else {
        pad as f64 / all as f64
    }
}

/// Padding fraction of a set of batches over both sides: pad slots / all slots.
pub fn padding_fraction(batches: &[Batch]) -> f64 {
    let (pad, all) = batches.iter().fold((0, 0), |(p, a), b| {
        let (bp, ba) = b.padding();
        (p + bp, a + ba)
    });
    if all == 0 {
        0.0
    } else {
        pad as f64 / all as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::prepared_en_de;

    fn ex(src: &[u32], tgt: &[u32]) -> Example {
        Example {
            src: src.to_vec(),
            tgt: tgt.to_vec(),
        }
    }

    /// Reversed targets keep `<s>`, `</s>` and padding in place; the source stays.
    #[test]
    fn reversed_targets_read_right_to_left() {
        let examples = [
            ex(&[5, 6], &[7, 8, 9]),
            ex(&[5], &[]),
            ex(&[5, 6, 7], &[10]),
        ];
        let mut batch = Batch::from_examples(&examples, vec![0, 1, 2]);
        let before = batch.clone();
        batch.reverse_targets();
        let (bos, eos) = (Vocab::BOS, Vocab::EOS);
        assert_eq!(batch.tgt_in, [bos, 9, 8, 7, bos, 0, 0, 0, bos, 10, 0, 0]);
        assert_eq!(batch.tgt_out, [9, 8, 7, eos, eos, 0, 0, 0, 10, eos, 0, 0]);
        assert_eq!(
            (&batch.src, &batch.tgt_lengths),
            (&before.src, &before.tgt_lengths)
        );
        batch.reverse_targets();
        assert_eq!(batch, before);
    }

    /// Word dropout turns words into `<unk>` at about its rate, never `<s>`, `</s>`, padding
    /// or the predicted words, and draws the same words from the same seed.
    #[test]
    fn word_dropout_replaces_words_only() {
        let examples: Vec<Example> = (0..200)
            .map(|i| ex(&[10 + i % 7; 9], &vec![20 + i % 5; 4 + (i as usize % 6)]))
            .collect();
        let batch = Batch::from_examples(&examples, (0..200).collect());
        let mut same = batch.clone();
        same.drop_words(0.0, 0.0, 1);
        assert_eq!(same.src, batch.src);
        assert_eq!(same.tgt_in, batch.tgt_in);

        let mut all = batch.clone();
        all.drop_words(1.0, 1.0, 1);
        let kept = |x: u32| [Vocab::PAD, Vocab::BOS, Vocab::EOS].contains(&x);
        for (before, after) in [(&batch.src, &all.src), (&batch.tgt_in, &all.tgt_in)] {
            for (&x, &y) in before.iter().zip(after.iter()) {
                assert_eq!(y, if kept(x) { x } else { Vocab::UNK });
            }
        }
        assert_eq!(all.tgt_out, batch.tgt_out);

        let mut some = batch.clone();
        some.drop_words(0.2, 0.1, 7);
        let rate = |before: &[u32], after: &[u32]| {
            let words = before.iter().filter(|&&x| !kept(x)).count();
            let unk = after.iter().filter(|&&y| y == Vocab::UNK).count();
            unk as f64 / words as f64
        };
        assert!((rate(&batch.src, &some.src) - 0.2).abs() < 0.03);
        assert!((rate(&batch.tgt_in, &some.tgt_in) - 0.1).abs() < 0.03);
        let mut again = batch.clone();
        again.drop_words(0.2, 0.1, 7);
        assert_eq!(again.src, some.src);
        assert_eq!(again.tgt_in, some.tgt_in);
    }

    fn toy(n: usize) -> Vec<Example> {
        (0..n)
            .map(|i| {
                let s = 1 + (i * 7) % 13;
                let t = 1 + (i * 5) % 11;
                ex(&vec![10 + i as u32; s], &vec![20 + i as u32; t])
            })
            .collect()
    }

    #[test]
    fn layout_and_masks() {
        let examples = vec![ex(&[5, 6], &[7]), ex(&[8], &[9, 10, 11]), ex(&[], &[])];
        let b = Batch::from_examples(&examples, vec![0, 1, 2]);
        assert_eq!((b.batch_size(), b.src_len(), b.tgt_len()), (3, 3, 4));
        assert_eq!(b.src, vec![5, 6, 3, 8, 3, 0, 3, 0, 0]);
        assert_eq!(b.src_lengths, vec![3, 2, 1]);
        assert_eq!(b.tgt_in, vec![2, 7, 0, 0, 2, 9, 10, 11, 2, 0, 0, 0]);
        assert_eq!(b.tgt_out, vec![7, 3, 0, 0, 9, 10, 11, 3, 3, 0, 0, 0]);
        assert_eq!(b.tgt_lengths, vec![2, 4, 1]);
        assert_eq!(b.num_tgt_tokens(), 7);
        assert_eq!(b.num_src_tokens(), 6);
        let m = b.src_mask();
        assert_eq!(
            m,
            vec![true, true, true, true, true, false, true, false, false]
        );
        assert_eq!(b.tgt_mask().iter().filter(|&&x| x).count(), 7);
        assert_eq!(b.padding(), (21 - 13, 21));
        assert_eq!(b.cost(), 12);
    }

    #[test]
    fn every_example_once_and_within_budget() {
        let examples = toy(1000);
        let budget = 60;
        let bs = batches(&examples, budget, 3, 0);
        let mut seen: Vec<usize> = bs.iter().flat_map(|b| b.indices.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        for b in &bs {
            assert!(b.cost() <= budget || b.batch_size() == 1, "{}", b.cost());
        }
    }

    #[test]
    fn over_budget_example_gets_its_own_batch() {
        let examples = vec![ex(&[4; 50], &[4; 2]), ex(&[4; 2], &[4; 2])];
        let bs = batches(&examples, 10, 1, 0);
        assert_eq!(bs.len(), 2);
        assert!(bs.iter().all(|b| b.batch_size() == 1));
    }

    #[test]
    fn order_is_deterministic_per_seed_and_epoch() {
        let examples = toy(500);
        let a = batches(&examples, 80, 7, 3);
        let b = batches(&examples, 80, 7, 3);
        assert_eq!(a, b);
        let other_epoch: Vec<_> = batches(&examples, 80, 7, 4)
            .into_iter()
            .map(|b| b.indices)
            .collect();
        let other_seed: Vec<_> = batches(&examples, 80, 8, 3)
            .into_iter()
            .map(|b| b.indices)
            .collect();
        let a: Vec<_> = a.into_iter().map(|b| b.indices).collect();
        assert_ne!(a, other_epoch);
        assert_ne!(a, other_seed);
    }

    #[test]
    fn source_batches_cover_sorted_within_budget() {
        let lengths = vec![5, 1, 9, 3, 3, 7, 2, 20];
        let groups = source_batches(&lengths, 10);
        let flat: Vec<usize> = groups.iter().flatten().copied().collect();
        assert_eq!(flat, vec![1, 6, 3, 4, 0, 5, 2, 7]);
        for g in &groups {
            let widest = g.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(g.len() * widest <= 10 || g.len() == 1);
        }
        assert!(source_batches(&[], 10).is_empty());
    }

    #[test]
    fn counting_sort_is_the_stable_sort() {
        let mut rng = epoch_rng(3, 4);
        let mut order: Vec<u32> = (0..5000).collect();
        order.shuffle(&mut rng);
        let widths = |i: u32| {
            (
                1 + (i as usize * 7919) % 31,
                1 + (i as usize * 104_729) % 17,
            )
        };
        let mut stable = order.clone();
        stable.sort_by_key(|&i| widths(i));
        assert_eq!(sort_by_widths(order, &widths), stable);
    }

    #[test]
    fn empty_input_gives_no_batches() {
        assert!(batches(&[], 100, 1, 0).is_empty());
        assert_eq!(padding_fraction(&[]), 0.0);
    }

    /// At the default budget the padding fraction on Multi30k en-de stays ≤ 10%.
    #[test]
    fn multi30k_padding_at_most_ten_percent() {
        let Some(prepared) = prepared_en_de() else {
            return;
        };
        let train = &prepared.train;
        for epoch in 0..3 {
            let plan = train.epoch(&[1.0], 2000, 1, epoch);
            let bs: Vec<Batch> = plan.batches().map(|g| train.batch(g)).collect();
            let frac = padding_fraction(&bs);
            assert_eq!(frac, planned_padding(plan.batches(), |i| train.widths(i)));
            let mean = train.len() as f64 / bs.len() as f64;
            eprintln!(
                "epoch {epoch}: {} batches, {mean:.1} sentences each, padding {:.2}%",
                bs.len(),
                100.0 * frac
            );
            assert!(frac <= 0.10, "padding {frac}");
            assert!(bs.iter().all(|b| b.cost() <= 2000));
        }
    }
}

//! The number of TER edits of one hypothesis against one reference:
//! sacreBLEU's `lib_ter.py`, a port of Tercom's greedy shift search over a
//! beam-limited Levenshtein distance.
//!
//! Tercom repeatedly looks for the block shift (moving up to
//! [`MAX_SHIFT_SIZE`] words that also occur in the reference, at most
//! [`MAX_SHIFT_DIST`] positions apart) that lowers the edit distance the
//! most, applies it, and stops when no shift helps or after
//! [`MAX_SHIFT_CANDIDATES`] evaluated candidates in total. The edits are
//! the shifts plus the final edit distance. Every detail that can change
//! the count is kept: the order in which candidates are generated, their
//! ranking, the beam around the pseudo-diagonal, and the preference among
//! equally cheap operations (which decides the alignment, hence the
//! candidates).
//!
//! Words are interned ids. sacreBLEU memoises matrix rows in a prefix trie
//! of hypotheses; here the rows of the current hypothesis are kept, and a
//! shifted candidate recomputes only the rows after the first word where
//! it differs (all candidates have the same length, so rows of a shared
//! prefix are identical).

/// The largest block a shift moves (Tercom's `MAX_SHIFT_SIZE`).
const MAX_SHIFT_SIZE: usize = 10;
/// The farthest apart a block may start in hypothesis and reference.
const MAX_SHIFT_DIST: usize = 50;
/// Half the width of the band of matrix cells computed around the
/// pseudo-diagonal.
const BEAM_WIDTH: usize = 25;
/// sacreBLEU's cap on shift candidates evaluated for one sentence pair.
const MAX_SHIFT_CANDIDATES: usize = 1000;
/// The cost of cells outside the beam (`_INT_INFINITY`): never reached by
/// a real cost, and still no overflow after adding one.
const INFINITY: i32 = i32::MAX / 4;

/// An edit operation, as stored in the matrix: how a cell was reached
/// when rewriting the hypothesis (rows) into the reference (columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// The words match (`' '`).
    Nop,
    /// Substitution (`'s'`).
    Sub,
    /// A reference word is inserted (`'i'`, from the cell to the left).
    Ins,
    /// A hypothesis word is deleted (`'d'`, from the cell above).
    Del,
    /// A cell outside the beam (`'x'`).
    Undef,
}

/// Edit counting with reusable buffers; one per scorer.
#[derive(Default)]
pub(crate) struct TerAligner {
    ed: BeamEditDistance,
    words: Vec<u32>,
    shifted: Vec<u32>,
    alignment: Alignment,
}

impl TerAligner {
    /// `translation_edit_rate`: the number of edits (shifts plus edit
    /// distance after shifting) turning `hyp` into `reference`; with an
    /// empty reference, every hypothesis word.
    pub(crate) fn edits(&mut self, hyp: &[u32], reference: &[u32]) -> usize {
        if reference.is_empty() {
            return hyp.len();
        }
        self.ed.reset(reference, hyp.len());
        self.words.clear();
        self.words.extend_from_slice(hyp);
        let mut shifts = 0;
        let mut checked = 0;
        loop {
            let (distance, best) = self.best_shift(reference, &mut checked);
            match best {
                Some(shift) if checked < MAX_SHIFT_CANDIDATES && shift.gain > 0 => {
                    perform_shift(&self.words, shift, &mut self.shifted);
                    std::mem::swap(&mut self.words, &mut self.shifted);
                    shifts += 1;
                }
                _ => return shifts + distance as usize,
            }
        }
    }

    /// `_shift`: the edit distance of the current words and the best
    /// ranked shift candidate, if any was evaluated.
    fn best_shift(&mut self, reference: &[u32], checked: &mut usize) -> (i32, Option<Shift>) {
        let distance = self.ed.distance_with_trace(&self.words, reference);
        self.alignment.fill_from_trace(&self.ed.trace);
        let mut best: Option<Shift> = None;
        let (n_hyp, n_ref) = (self.words.len(), reference.len());
        for start_h in 0..n_hyp {
            let first_r = start_h.saturating_sub(MAX_SHIFT_DIST);
            let end_r = n_ref.min(start_h + MAX_SHIFT_DIST + 1);
            for start_r in first_r..end_r {
                // `_find_shifted_pairs`: every common block length, growing.
                let mut length = 0;
                while length < MAX_SHIFT_SIZE
                    && self.words[start_h + length] == reference[start_r + length]
                {
                    length += 1;
                    let block = Block {
                        start_h,
                        start_r,
                        length,
                    };
                    self.try_block(block, reference, distance, checked, &mut best);
                    if *checked >= MAX_SHIFT_CANDIDATES {
                        return (distance, best);
                    }
                    if start_h + length == n_hyp || start_r + length == n_ref {
                        break;
                    }
                }
            }
        }
        (distance, best)
    }

    /// Evaluates the shifts of one matching block to every target position
    /// next to the reference words it matches, unless the block is already
    /// well aligned.
    fn try_block(
        &mut self,
        block: Block,
        reference: &[u32],
        distance: i32,
        checked: &mut usize,
        best: &mut Option<Shift>,
    ) {
        let Block {
            start_h,
            start_r,
            length,
        } = block;
        let al = &self.alignment;
        // Only move words that are wrong to where the reference is wrong,
        // and not within the block itself.
        if al.hyp_errors(start_h, length) == 0 || al.ref_errors(start_r, length) == 0 {
            return;
        }
        let aligned = al.align[start_r];
        if start_h as isize <= aligned && aligned < (start_h + length) as isize {
            return;
        }
        let mut prev_target = -1;
        for offset in -1..length as isize {
            let pos = start_r as isize + offset;
            // Unlike Tercom, the block goes *before* the index.
            let target = match pos {
                -1 => 0,
                p if (p as usize) < reference.len() => self.alignment.align[p as usize] + 1,
                _ => break,
            };
            if target == prev_target {
                continue;
            }
            prev_target = target;
            let shift = Shift {
                gain: 0,
                length,
                start_h,
                target: target as usize,
            };
            perform_shift(&self.words, shift, &mut self.shifted);
            let gain = distance - self.ed.distance(&self.shifted, reference);
            *checked += 1;
            let candidate = Shift { gain, ..shift };
            if best.is_none_or(|b| candidate.rank() > b.rank()) {
                *best = Some(candidate);
            }
        }
    }
}

/// A common word block of hypothesis and reference.
#[derive(Debug, Clone, Copy)]
struct Block {
    start_h: usize,
    start_r: usize,
    length: usize,
}

/// A shift candidate: `length` hypothesis words from `start_h` moved
/// before hypothesis index `target`, lowering the distance by `gain`.
#[derive(Debug, Clone, Copy)]
struct Shift {
    gain: i32,
    length: usize,
    start_h: usize,
    target: usize,
}

impl Shift {
    /// Tercom's ranking, highest first: largest gain, then longest block,
    /// then earliest block, then earliest target. (sacreBLEU's tuple ends
    /// with the shifted words, but equal ranks imply equal words.)
    fn rank(
        &self,
    ) -> (
        i32,
        usize,
        std::cmp::Reverse<usize>,
        std::cmp::Reverse<usize>,
    ) {
        use std::cmp::Reverse;
        (
            self.gain,
            self.length,
            Reverse(self.start_h),
            Reverse(self.target),
        )
    }
}

/// `_perform_shift` into `out`, with Python's clipping slices (a block
/// moved right past the end ends up last).
fn perform_shift(words: &[u32], shift: Shift, out: &mut Vec<u32>) {
    let Shift {
        start_h: start,
        length,
        target,
        ..
    } = shift;
    let n = words.len();
    let slice = |a: usize, b: usize| {
        let a = a.min(n);
        &words[a..b.min(n).max(a)]
    };
    out.clear();
    let parts = if target < start {
        [
            (0, target),
            (start, start + length),
            (target, start),
            (start + length, n),
        ]
    } else if target > start + length {
        [
            (0, start),
            (start + length, target),
            (start, start + length),
            (target, n),
        ]
    } else {
        [
            (0, start),
            (start + length, length + target),
            (start, start + length),
            (length + target, n),
        ]
    };
    for (a, b) in parts {
        out.extend_from_slice(slice(a, b));
    }
}

/// `trace_to_alignment` of the flipped trace: for each reference word the
/// hypothesis index it is aligned to (-1 before the first), and which
/// words of either side are errors, as prefix sums.
#[derive(Default)]
struct Alignment {
    align: Vec<isize>,
    hyp_err: Vec<u32>,
    ref_err: Vec<u32>,
}

impl Alignment {
    /// Fills the alignment from a trace in forward order.
    fn fill_from_trace(&mut self, trace: &[Op]) {
        self.align.clear();
        self.hyp_err.clear();
        self.ref_err.clear();
        self.hyp_err.push(0);
        self.ref_err.push(0);
        let mut pos_hyp: isize = -1;
        for &op in trace {
            // Flipped: an insertion of a reference word is a reference
            // error, a deletion of a hypothesis word a hypothesis error.
            let (hyp_step, ref_step, error) = match op {
                Op::Nop => (true, true, 0),
                Op::Sub => (true, true, 1),
                Op::Del => (true, false, 1),
                Op::Ins => (false, true, 1),
                Op::Undef => unreachable!("traces only pass through computed cells"),
            };
            if hyp_step {
                pos_hyp += 1;
                self.hyp_err.push(self.hyp_err.last().unwrap() + error);
            }
            if ref_step {
                self.align.push(pos_hyp);
                self.ref_err.push(self.ref_err.last().unwrap() + error);
            }
        }
    }

    /// Errors among hypothesis words `start..start + length`.
    fn hyp_errors(&self, start: usize, length: usize) -> u32 {
        self.hyp_err[start + length] - self.hyp_err[start]
    }

    /// Errors among reference words `start..start + length`.
    fn ref_errors(&self, start: usize, length: usize) -> u32 {
        self.ref_err[start + length] - self.ref_err[start]
    }
}

/// `BeamEditDistance`: Levenshtein distance from hypotheses of one fixed
/// length to one reference, computing only a band of cells around the
/// pseudo-diagonal `j = i * n_ref / n_hyp`.
#[derive(Default)]
struct BeamEditDistance {
    /// Reference length plus one: the row width.
    width: usize,
    /// The computed column range `[min_j, max_j)` of each row.
    beams: Vec<(usize, usize)>,
    /// The hypothesis whose rows `costs` and `ops` hold (rows 1..=len).
    base: Vec<u32>,
    costs: Vec<i32>,
    ops: Vec<Op>,
    /// The trace of the last [`Self::distance_with_trace`], forward.
    trace: Vec<Op>,
    /// Rolling rows for [`Self::distance`].
    prev: Vec<i32>,
    cur: Vec<i32>,
}

impl BeamEditDistance {
    /// Prepares for hypotheses of `n_hyp` words against `reference`.
    fn reset(&mut self, reference: &[u32], n_hyp: usize) {
        let n_ref = reference.len();
        self.width = n_ref + 1;
        self.beams.clear();
        self.beams
            .extend((0..=n_hyp).map(|i| beam(i, n_hyp, n_ref)));
        self.base.clear();
        self.costs.clear();
        self.costs.resize((n_hyp + 1) * self.width, INFINITY);
        self.ops.clear();
        self.ops.resize((n_hyp + 1) * self.width, Op::Undef);
        // Row 0: the reference words inserted one by one.
        for j in 0..self.width {
            self.costs[j] = j as i32;
            self.ops[j] = Op::Ins;
        }
        self.prev.resize(self.width, INFINITY);
        self.cur.resize(self.width, INFINITY);
    }

    /// The distance of `hyp`, which becomes the base whose rows later
    /// candidates reuse; also records the trace.
    fn distance_with_trace(&mut self, hyp: &[u32], reference: &[u32]) -> i32 {
        let start = common_prefix(&self.base, hyp);
        self.base.clear();
        self.base.extend_from_slice(hyp);
        let w = self.width;
        for i in start + 1..=hyp.len() {
            let (above, rest) = self.costs.split_at_mut(i * w);
            let prev = &above[(i - 1) * w..];
            let row = &mut rest[..w];
            let ops = &mut self.ops[i * w..(i + 1) * w];
            row_with_ops(hyp[i - 1], reference, self.beams[i], prev, row, ops);
        }
        self.record_trace(hyp.len());
        self.costs[hyp.len() * w + w - 1]
    }

    /// Walks the operations back from the last cell.
    fn record_trace(&mut self, n_hyp: usize) {
        self.trace.clear();
        let (mut i, mut j) = (n_hyp, self.width - 1);
        while i > 0 || j > 0 {
            let op = self.ops[i * self.width + j];
            self.trace.push(op);
            match op {
                Op::Nop | Op::Sub => (i, j) = (i - 1, j - 1),
                Op::Ins => j -= 1,
                Op::Del => i -= 1,
                Op::Undef => unreachable!("traces only pass through computed cells"),
            }
        }
        self.trace.reverse();
    }

    /// The distance of `hyp` (as long as the base), reusing the base's
    /// rows up to the first word where they differ.
    fn distance(&mut self, hyp: &[u32], reference: &[u32]) -> i32 {
        let w = self.width;
        let start = common_prefix(&self.base, hyp);
        if start == hyp.len() {
            return self.costs[start * w + w - 1];
        }
        let base_row = &self.costs[start * w..(start + 1) * w];
        cost_row(
            hyp[start],
            reference,
            self.beams[start + 1],
            base_row,
            &mut self.cur,
        );
        for i in start + 2..=hyp.len() {
            std::mem::swap(&mut self.prev, &mut self.cur);
            cost_row(
                hyp[i - 1],
                reference,
                self.beams[i],
                &self.prev,
                &mut self.cur,
            );
        }
        self.cur[w - 1]
    }
}

/// The length of the common prefix of two word sequences.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The computed columns `[min_j, max_j)` of row `i`: the beam around
/// `floor(i * n_ref / n_hyp)` (in floating point, as Python computes it),
/// widened when the lengths differ so much that consecutive rows would
/// not overlap; the last row always reaches the last column.
fn beam(i: usize, n_hyp: usize, n_ref: usize) -> (usize, usize) {
    let ratio = if n_hyp > 0 {
        n_ref as f64 / n_hyp as f64
    } else {
        1.0
    };
    let width = if (BEAM_WIDTH as f64) < ratio / 2.0 {
        (ratio / 2.0 + BEAM_WIDTH as f64).ceil() as usize
    } else {
        BEAM_WIDTH
    };
    let diagonal = (i as f64 * ratio).floor() as usize;
    let min_j = diagonal.saturating_sub(width);
    let max_j = if i == n_hyp {
        n_ref + 1
    } else {
        (n_ref + 1).min(diagonal + width)
    };
    (min_j, max_j)
}

/// One matrix row with its operations. Ties prefer a match or
/// substitution, then deletion, then insertion (Tercom's preference with
/// insertion and deletion swapped, because the trace is flipped later).
fn row_with_ops(
    word: u32,
    reference: &[u32],
    (min_j, max_j): (usize, usize),
    prev: &[i32],
    row: &mut [i32],
    ops: &mut [Op],
) {
    row.fill(INFINITY);
    ops.fill(Op::Undef);
    for j in min_j..max_j {
        if j == 0 {
            row[0] = prev[0] + 1;
            ops[0] = Op::Del;
            continue;
        }
        let (sub_cost, sub_op) = if word == reference[j - 1] {
            (0, Op::Nop)
        } else {
            (1, Op::Sub)
        };
        let mut best = (INFINITY, Op::Undef);
        for option in [
            (prev[j - 1] + sub_cost, sub_op),
            (prev[j] + 1, Op::Del),
            (row[j - 1] + 1, Op::Ins),
        ] {
            if best.0 > option.0 {
                best = option;
            }
        }
        (row[j], ops[j]) = best;
    }
}

/// One matrix row, costs only (the minimum is the same whatever the tie
/// preference).
fn cost_row(
    word: u32,
    reference: &[u32],
    (min_j, max_j): (usize, usize),
    prev: &[i32],
    row: &mut [i32],
) {
    row.fill(INFINITY);
    let mut j = min_j;
    if j == 0 && j < max_j {
        row[0] = prev[0] + 1;
        j = 1;
    }
    for j in j..max_j {
        let sub = prev[j - 1] + i32::from(word != reference[j - 1]);
        row[j] = INFINITY.min(sub).min(prev[j] + 1).min(row[j - 1] + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words as ids: each distinct string its own id.
    fn ids(text: &str, vocab: &mut Vec<String>) -> Vec<u32> {
        text.split_whitespace()
            .map(|w| match vocab.iter().position(|v| v == w) {
                Some(i) => i as u32,
                None => {
                    vocab.push(w.to_string());
                    (vocab.len() - 1) as u32
                }
            })
            .collect()
    }

    fn edits(hyp: &str, reference: &str) -> usize {
        let mut vocab = Vec::new();
        let h = ids(hyp, &mut vocab);
        let r = ids(reference, &mut vocab);
        TerAligner::default().edits(&h, &r)
    }

    #[test]
    fn sacrebleu_translation_edit_rate() {
        // lib_ter.translation_edit_rate(hyp.split(), ref.split())[0] from
        // sacreBLEU 2.6.0.
        let cases = [
            ("a b c", "a b c", 0),
            ("", "a b", 2),
            ("a b", "", 2),
            ("d e f g h a b c", "a b c d e f g h", 1),
            ("a c b d", "a b c d", 1),
            ("x y z", "a b c", 3),
        ];
        for (hyp, reference, expected) in cases {
            assert_eq!(edits(hyp, reference), expected, "{hyp:?} / {reference:?}");
        }
    }

    #[test]
    fn shifts_clip_like_python_slices() {
        let words = [0, 1, 2, 3, 4];
        let mut out = Vec::new();
        let shift = |start_h, length, target| Shift {
            gain: 0,
            length,
            start_h,
            target,
        };
        perform_shift(&words, shift(3, 1, 0), &mut out);
        assert_eq!(out, [3, 0, 1, 2, 4]);
        perform_shift(&words, shift(0, 2, 4), &mut out);
        assert_eq!(out, [2, 3, 0, 1, 4]);
        perform_shift(&words, shift(2, 2, 4), &mut out);
        assert_eq!(out, [0, 1, 4, 2, 3]);
        perform_shift(&words, shift(1, 2, 1), &mut out);
        assert_eq!(out, words);
    }
}

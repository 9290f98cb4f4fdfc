//! Clipped n-gram matching without building per-n-gram strings or maps.
//!
//! Every position of the hypothesis and of each reference starts one
//! "suffix" of at most `max_order` symbols. Sorting all suffixes
//! lexicographically (a shorter one before its extensions) puts every
//! n-gram's occurrences next to each other for every order `n` at once, so
//! one scan over the sorted list with the common-prefix length of
//! neighbours yields, per order, the sum over distinct hypothesis n-grams of
//! `min(hypothesis count, max over references of reference count)` — the
//! clipped match count of BLEU and of chrF.
//!
//! Symbols are small integers (token ids or Unicode scalar values). When
//! `max_order` fields of `bits` bits fit in 128 bits, a suffix is packed into
//! one `u128` (symbol + 1 per field, 0 as padding); comparing packed keys is
//! comparing the sequences, and the leading zeros of `a ^ b` give the common
//! prefix. Otherwise a slice-comparing fallback is used.

/// Reusable buffers for [`Matcher::clipped_matches`].
#[derive(Default)]
pub(crate) struct Matcher {
    packed: Vec<Packed>,
    keys_h: Vec<u128>,
    keys_r: Vec<u128>,
    spans: Vec<Span>,
    hyp: Vec<u64>,
    refs: Vec<u64>,
}

/// A suffix packed into one integer, with the stream it comes from.
#[derive(Clone, Copy)]
struct Packed {
    key: u128,
    side: u32,
}

/// The packed keys of all suffixes of `seq` (in reverse order): field `k`
/// (from the top) holds `seq[start + k] + 1`, at most `max_order` fields.
/// Built right to left, each key is the next one shifted down a field.
fn suffix_keys(seq: &[u32], bits: u32, max_order: usize, out: &mut Vec<u128>) {
    let used = bits * max_order as u32;
    let mask = if used >= 128 {
        u128::MAX
    } else {
        !((1u128 << (128 - used)) - 1)
    };
    out.clear();
    let mut key = 0u128;
    for &sym in seq.iter().rev() {
        key = (((u128::from(sym) + 1) << (128 - bits)) | (key >> bits)) & mask;
        out.push(key);
    }
}

/// The number of symbols in a (non-zero) packed key.
#[inline]
fn key_len(key: u128, bits: u32) -> usize {
    ((127 - key.trailing_zeros()) / bits) as usize + 1
}

/// A suffix by position, for orders too long to pack.
#[derive(Clone, Copy)]
struct Span {
    side: u32,
    start: u32,
    avail: u32,
}

impl Matcher {
    /// Adds, for each order `n` in `1..=matches.len()`, the clipped match
    /// count of `hyp` against `refs` to `matches[n - 1]`.
    ///
    /// `bits` is the field width for `symbol + 1` (21 for Unicode scalar
    /// values, 31 for token ids); larger symbols fall back to slices.
    pub(crate) fn clipped_matches(
        &mut self,
        hyp: &[u32],
        refs: &[Vec<u32>],
        bits: u32,
        matches: &mut [u64],
    ) {
        let max_order = matches.len();
        if max_order == 0 || hyp.is_empty() || refs.iter().all(|r| r.is_empty()) {
            return;
        }
        self.hyp.clear();
        self.hyp.resize(max_order, 0);
        self.refs.clear();
        self.refs.resize(max_order * refs.len(), 0);
        let largest = hyp.iter().chain(refs.iter().flatten()).copied().max();
        let fits = u64::from(largest.unwrap_or(0)) + 1 < 1u64 << bits;
        let used = bits as usize * max_order;
        match refs {
            [reference] if fits && used < 128 => self.tagged_scan(hyp, reference, bits, matches),
            _ if fits && used <= 128 => self.packed_scan(hyp, refs, bits, matches),
            _ => self.span_scan(hyp, refs, matches),
        }
    }

    fn packed_scan(&mut self, hyp: &[u32], refs: &[Vec<u32>], bits: u32, matches: &mut [u64]) {
        let max_order = matches.len();
        let mut packed = std::mem::take(&mut self.packed);
        packed.clear();
        let mut keys = std::mem::take(&mut self.keys_h);
        for (side, seq) in std::iter::once(hyp)
            .chain(refs.iter().map(Vec::as_slice))
            .enumerate()
        {
            suffix_keys(seq, bits, max_order, &mut keys);
            packed.extend(keys.iter().map(|&key| Packed {
                key,
                side: side as u32,
            }));
        }
        self.keys_h = keys;
        packed.sort_unstable_by_key(|p| p.key);
        let mut prev = 0u128;
        for &Packed { key, side } in &packed {
            let avail = key_len(key, bits);
            let lcp = (((prev ^ key).leading_zeros() / bits) as usize).min(avail);
            self.step(lcp, side as usize, avail, refs.len(), matches);
            prev = key;
        }
        self.step(0, 0, 0, refs.len(), matches);
        self.packed = packed;
    }

    /// The one-reference case: the lowest key bit (below every field) tags
    /// reference suffixes, so one sort of plain integers does it all.
    fn tagged_scan(&mut self, hyp: &[u32], reference: &[u32], bits: u32, matches: &mut [u64]) {
        let max_order = matches.len();
        let mut keys = std::mem::take(&mut self.keys_h);
        let mut ref_keys = std::mem::take(&mut self.keys_r);
        suffix_keys(hyp, bits, max_order, &mut keys);
        suffix_keys(reference, bits, max_order, &mut ref_keys);
        keys.extend(ref_keys.iter().map(|k| k | 1));
        keys.sort_unstable();
        let mut counts = [
            std::mem::take(&mut self.hyp),
            std::mem::take(&mut self.refs),
        ];
        let mut prev = 0u128;
        for &tagged in &keys {
            let key = tagged & !1;
            let avail = key_len(key, bits);
            let lcp = (((prev ^ key).leading_zeros() / bits) as usize).min(avail);
            prev = key;
            let [h, r] = &mut counts;
            for n in lcp..max_order {
                matches[n] += h[n].min(r[n]);
                h[n] = 0;
                r[n] = 0;
            }
            counts[(tagged & 1) as usize][..avail]
                .iter_mut()
                .for_each(|c| *c += 1);
        }
        let [h, r] = &counts;
        for n in 0..max_order {
            matches[n] += h[n].min(r[n]);
        }
        [self.hyp, self.refs] = counts;
        self.keys_h = keys;
        self.keys_r = ref_keys;
    }

    fn span_scan(&mut self, hyp: &[u32], refs: &[Vec<u32>], matches: &mut [u64]) {
        let max_order = matches.len();
        let seq = |side: u32| -> &[u32] {
            if side == 0 {
                hyp
            } else {
                &refs[side as usize - 1]
            }
        };
        let slice = |s: &Span| &seq(s.side)[s.start as usize..(s.start + s.avail) as usize];
        let mut spans = std::mem::take(&mut self.spans);
        spans.clear();
        for side in 0..=refs.len() as u32 {
            let len = seq(side).len();
            for start in 0..len {
                spans.push(Span {
                    side,
                    start: start as u32,
                    avail: (len - start).min(max_order) as u32,
                });
            }
        }
        spans.sort_unstable_by(|a, b| slice(a).cmp(slice(b)));
        let mut prev: Option<&Span> = None;
        for cur in &spans {
            let lcp = prev.map_or(0, |p| {
                slice(p)
                    .iter()
                    .zip(slice(cur))
                    .take_while(|(a, b)| a == b)
                    .count()
            });
            self.step(
                lcp,
                cur.side as usize,
                cur.avail as usize,
                refs.len(),
                matches,
            );
            prev = Some(cur);
        }
        self.step(0, 0, 0, refs.len(), matches);
        self.spans = spans;
    }

    /// Closes the groups of orders above `lcp` (their n-gram changed) and
    /// counts a suffix of `avail` symbols from `side` (0 = hypothesis).
    #[inline]
    fn step(&mut self, lcp: usize, side: usize, avail: usize, nrefs: usize, matches: &mut [u64]) {
        let groups = self.hyp.iter_mut().zip(self.refs.chunks_exact_mut(nrefs));
        for ((h, r), matched) in groups.zip(matches.iter_mut()).skip(lcp) {
            if *h > 0 {
                *matched += (*h).min(r.iter().copied().max().unwrap_or(0));
                *h = 0;
            }
            r.fill(0);
        }
        if side == 0 {
            self.hyp[..avail].iter_mut().for_each(|h| *h += 1);
        } else {
            for r in self.refs.chunks_exact_mut(nrefs).take(avail) {
                r[side - 1] += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The obvious map-based count, as sacreBLEU does it.
    fn naive(hyp: &[u32], refs: &[Vec<u32>], max_order: usize) -> Vec<u64> {
        let count = |seq: &[u32], n: usize| {
            let mut m: HashMap<Vec<u32>, u64> = HashMap::new();
            for w in seq.windows(n) {
                *m.entry(w.to_vec()).or_default() += 1;
            }
            m
        };
        (1..=max_order)
            .map(|n| {
                let h = count(hyp, n);
                let rs: Vec<_> = refs.iter().map(|r| count(r, n)).collect();
                h.iter()
                    .map(|(g, &c)| {
                        let best = rs.iter().map(|r| r.get(g).copied().unwrap_or(0)).max();
                        c.min(best.unwrap_or(0))
                    })
                    .sum()
            })
            .collect()
    }

    fn lcg(state: &mut u64) -> u32 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*state >> 33) as u32
    }

    #[test]
    fn matches_naive_counts() {
        let mut state = 7u64;
        let mut matcher = Matcher::default();
        for round in 0..3000 {
            let alphabet = 1 + lcg(&mut state) % 4;
            let seq = |state: &mut u64| -> Vec<u32> {
                let len = lcg(state) % 12;
                (0..len).map(|_| lcg(state) % alphabet).collect()
            };
            let hyp = seq(&mut state);
            let nrefs = 1 + (round % 3);
            let refs: Vec<Vec<u32>> = (0..nrefs).map(|_| seq(&mut state)).collect();
            for (max_order, bits) in [(4, 31), (4, 32), (6, 21), (2, 31), (7, 21), (5, 32)] {
                let mut got = vec![0; max_order];
                matcher.clipped_matches(&hyp, &refs, bits, &mut got);
                assert_eq!(
                    got,
                    naive(&hyp, &refs, max_order),
                    "{hyp:?} {refs:?} {max_order}"
                );
            }
        }
    }

    #[test]
    fn large_symbols_pack_exactly() {
        let mut matcher = Matcher::default();
        let hyp = vec![0x10_ffff, 0, 0x10_ffff, 5];
        let refs = vec![vec![0x10_ffff, 0, 0x10_ffff, 6]];
        let mut got = vec![0; 6];
        matcher.clipped_matches(&hyp, &refs, 21, &mut got);
        assert_eq!(got, naive(&hyp, &refs, 6));
        let hyp = vec![u32::MAX - 1, 1];
        let refs = vec![vec![u32::MAX - 1, 1]];
        for bits in [31, 32] {
            let mut got = vec![0; 4];
            matcher.clipped_matches(&hyp, &refs, bits, &mut got);
            assert_eq!(got, vec![2, 1, 0, 0]);
        }
    }
}

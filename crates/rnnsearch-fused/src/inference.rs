//! The forward pass one output token at a time, for translation: encode a batch once, then
//! advance every row (sentence × beam) by one decoder step per call. The search itself (greedy,
//! beam) lives in `rnnsearch-model`; this is the fast CPU path under it.
//!
//! z_i = W_o f(U_o s_i + C_o c_i + V_o E y_{i-1} + b_o) + b (f: maxout or tanh),
//! log p(y_i = v | y_<i, x) = z_i[v] − log Σ_w exp z_i[w].
//!
//! A step hands the search z_i and the log-normaliser rather than normalised rows: greedy and
//! beam search rank each row by z_i alone, so writing z_i − lse over all V would be a pass
//! over the largest buffer of the step for nothing.

use crate::attention::{Memory, Shape};
use crate::cell::{memory_len, StepCache};
use crate::decoder::{StepOut, Stepper};
use crate::output;
use crate::packed::PackedDecoder;
use crate::step::{embed, encode, input_terms, output_features, Masks};
use crate::{Dims, Weights};

/// A batch being decoded: the annotations and keys of every row, and the decoder states.
pub struct Decoding {
    dims: Dims,
    rows: usize,
    src_len: usize,
    /// Source length of every row.
    lengths: Vec<usize>,
    /// h_j per row, `[rows, src_len, 2n]`.
    annotations: Vec<f32>,
    /// The keys per row, `[rows, src_len, k]`.
    keys: Vec<f32>,
    /// s_{i-1} per row, `[rows, m]`.
    states: Vec<f32>,
    /// The LSTM's memory cell beside s_{i-1} per row, `[rows, m]` (empty for the GRU).
    cells: Vec<f32>,
    stepper: Stepper,
    hidden: Vec<f32>,
    cache: StepCache,
    /// The last step's z_i, `[rows, V]`, kept to be written over by the next.
    logits: Vec<f32>,
    /// The last step's log Σ_v exp z_i[v], `[rows]`.
    log_normalizers: Vec<f32>,
    /// The last step's α_i, `[rows, src_len]`.
    alignment: Vec<f32>,
}

/// Each `[·, width]` row of `x` repeated `copies` times in place.
fn repeat_rows(x: &[f32], width: usize, copies: usize) -> Vec<f32> {
    if copies == 1 {
        return x.to_vec();
    }
    let mut out = Vec::with_capacity(x.len() * copies);
    for row in x.chunks_exact(width) {
        for _ in 0..copies {
            out.extend_from_slice(row);
        }
    }
    out
}

impl Decoding {
    /// Encodes `source` (`[batch, src_len]` ids, padded at the end, with `lengths`) and starts
    /// `copies` rows per sentence (the beam size; 1 for greedy) from s_0.
    pub fn new(
        weights: &Weights,
        dims: &Dims,
        source: &[usize],
        lengths: &[usize],
        copies: usize,
    ) -> Self {
        let batch = lengths.len();
        let src_len = source.len() / batch.max(1);
        let encoded = encode(weights, dims, source, lengths, &mut Masks::new(0.0, 0));
        let rows = batch * copies;
        let (m, a, k, h2) = (
            dims.decoder_hidden,
            dims.query_width(),
            dims.key_width(),
            2 * dims.hidden,
        );
        Self {
            dims: *dims,
            rows,
            src_len,
            lengths: lengths
                .iter()
                .flat_map(|&l| std::iter::repeat_n(l, copies))
                .collect(),
            annotations: repeat_rows(&encoded.annotations, src_len * h2, copies),
            keys: repeat_rows(&encoded.keys.values, src_len * k, copies),
            states: repeat_rows(&encoded.bridge.initial_state, m, copies),
            cells: vec![0.0; memory_len(dims.cell, rows, m)],
            stepper: Stepper::new(weights, dims, rows, src_len),
            hidden: vec![0.0; rows * src_len * a],
            cache: StepCache::new(dims.cell, rows, m),
            logits: Vec::new(),
            log_normalizers: Vec::new(),
            alignment: Vec::new(),
        }
    }

    /// Source positions of the batch (the width of an alignment row).
    pub fn src_len(&self) -> usize {
        self.src_len
    }

    /// Advances every row by one token, `previous` being each row's last output (`<s>` at
    /// first). Returns z_i, `[rows, V]`, log Σ_v exp z_i[v], `[rows]`, and α_i,
    /// `[rows, src_len]`. `packed` is the decoder of `weights` packed for few rows, when this CPU
    /// has the kernel for it ([`PackedDecoder::new`]).
    pub fn step(
        &mut self,
        weights: &Weights,
        packed: Option<&PackedDecoder>,
        previous: &[usize],
    ) -> (&[f32], &[f32], &[f32]) {
        let Dims {
            embedding: e,
            decoder_hidden: m,
            ..
        } = self.dims;
        let (rows, h2) = (self.rows, 2 * self.dims.hidden);
        assert_eq!(previous.len(), rows, "one previous token per row");

        let embedded = embed(weights.tgt_embedding, previous.iter().copied(), e);
        let input_terms = input_terms(weights, &embedded, e, packed.map(|p| &p.input));

        let mut next = vec![0.0; rows * m];
        let mut cells_next = vec![0.0; self.cells.len()];
        let mut context = vec![0.0; rows * h2];
        self.alignment.resize(rows * self.src_len, 0.0);
        let memory = Memory {
            shape: Shape {
                batch: rows,
                src_len: self.src_len,
                d_annotation: h2,
                d_attention: self.dims.key_width(),
            },
            annotations: &self.annotations,
            keys: &self.keys,
            lengths: &self.lengths,
        };
        let out = StepOut {
            s_next: &mut next,
            cell_next: &mut cells_next,
            context: &mut context,
            alignment: &mut self.alignment,
            hidden: &mut self.hidden,
            cache: &mut self.cache,
        };
        let (s, cells) = (&self.states, &self.cells);
        self.stepper
            .step(weights, packed, &memory, s, cells, &input_terms, out);

        let features = output_features(&next, &context, &embedded, &self.dims);
        output::logits_and_normalizers(
            &weights.output(),
            &features,
            packed,
            &mut self.logits,
            &mut self.log_normalizers,
        );
        self.states = next;
        self.cells = cells_next;
        (&self.logits, &self.log_normalizers, &self.alignment)
    }

    /// Keeps only `rows`, in that order: row r becomes old row `rows[r]` (sentences that are
    /// done leave the batch, so later steps cost less).
    pub fn retain(&mut self, rows: &[usize]) {
        let (m, a, k) = (
            self.dims.decoder_hidden,
            self.dims.query_width(),
            self.dims.key_width(),
        );
        let (s, h2) = (self.src_len, 2 * self.dims.hidden);
        let gather = |x: &[f32], width: usize| -> Vec<f32> {
            let mut out = Vec::with_capacity(rows.len() * width);
            for &r in rows {
                out.extend_from_slice(&x[r * width..(r + 1) * width]);
            }
            out
        };
        self.states = gather(&self.states, m);
        if !self.cells.is_empty() {
            self.cells = gather(&self.cells, m);
        }
        self.annotations = gather(&self.annotations, s * h2);
        self.keys = gather(&self.keys, s * k);
        self.lengths = rows.iter().map(|&r| self.lengths[r]).collect();
        self.rows = rows.len();
        self.hidden.truncate(self.rows * s * a);
        self.cache = StepCache::new(self.dims.cell, self.rows, m);
    }

    /// Row r continues from the state of row `origin[r]` (beam search keeps the best
    /// continuations; rows of one sentence share its source, so only the states move).
    pub fn reorder(&mut self, origin: &[usize]) {
        let m = self.dims.decoder_hidden;
        let gather = |x: &[f32]| -> Vec<f32> {
            let mut moved = vec![0.0; x.len()];
            for (row, &from) in moved.chunks_exact_mut(m).zip(origin) {
                row.copy_from_slice(&x[from * m..(from + 1) * m]);
            }
            moved
        };
        self.states = gather(&self.states);
        self.cells = gather(&self.cells);
    }
}

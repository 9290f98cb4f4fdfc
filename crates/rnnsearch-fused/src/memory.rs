//! The model's parameters as one flat buffer, as llm.c keeps its `params_memory`: every weight a
//! named range of it, in a fixed order. Gradients and Adam's moments are buffers of the same
//! layout, so the optimiser, the gradient norm and clipping are loops over one array each.
//!
//! W_o comes last. With tied embeddings it is Eᵀ, copied in before each step
//! ([`Layout::tie`]) and left out of the optimised range ([`Layout::trained`]); its gradient
//! is folded into E's ([`Layout::fold_tied`]).

use std::ops::Range;

use crate::{CellGrads, CellWeights, Dims, Grads, Weights};

/// Where each weight of a model of size `dims` lies in the flat buffers.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub dims: Dims,
    /// W_o = Eᵀ.
    pub tied: bool,
    /// τ of the cosine scorer with a fixed temperature (a setting, not a weight).
    pub fixed_temperature: f32,
    slots: Vec<(String, Range<usize>)>,
}

impl Layout {
    /// The layout of a model of size `dims`; tied embeddings need l = E.
    pub fn new(dims: Dims, tied: bool) -> Self {
        assert!(
            !tied || dims.output == dims.embedding,
            "tied embeddings need the deep output's width to be the embedding's"
        );
        let (e, n, m, l) = (
            dims.embedding,
            dims.hidden,
            dims.decoder_hidden,
            dims.output,
        );
        let gates = dims.gates();
        let mut sizes: Vec<(String, usize)> = vec![("src_embedding".into(), dims.src_vocab * e)];
        let gru = |sizes: &mut Vec<(String, usize)>, name: &str, d_in: usize, d: usize| {
            for (part, len) in [
                ("w", d_in * gates * d),
                ("b", gates * d),
                ("u", d * gates * d),
                ("c", gates * d),
            ] {
                sizes.push((format!("{name}.{part}"), len));
            }
        };
        for layer in 0..dims.layers {
            let d_in = if layer == 0 { e } else { 2 * n };
            for direction in ["forward", "backward"] {
                gru(&mut sizes, &format!("encoder.{layer}.{direction}"), d_in, n);
            }
        }
        sizes.extend([
            ("bridge_w".into(), dims.bridge_inputs() * m),
            (
                "bridge_b".into(),
                if dims.bridge_inputs() > 0 { m } else { 0 },
            ),
            ("key".into(), dims.key_weights()),
            ("query".into(), m * dims.query_width()),
            ("energy".into(), dims.query_width()),
            ("log_temperature".into(), dims.temperatures()),
            ("tgt_embedding".into(), dims.tgt_vocab * e),
        ]);
        gru(&mut sizes, "decoder", e + 2 * n, m);
        sizes.extend([
            ("deep_w".into(), (m + 2 * n + e) * dims.deep_width()),
            ("deep_b".into(), dims.deep_width()),
            ("out_b".into(), dims.tgt_vocab),
            ("out_w".into(), l * dims.tgt_vocab),
        ]);
        let mut offset = 0;
        let slots = sizes
            .into_iter()
            .map(|(name, len)| {
                offset += len;
                (name, offset - len..offset)
            })
            .collect();
        Self {
            dims,
            tied,
            fixed_temperature: 1.0,
            slots,
        }
    }

    /// Values in a buffer of this layout.
    pub fn len(&self) -> usize {
        self.slots.last().map_or(0, |(_, r)| r.end)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The weights the optimiser updates: all, or all but W_o when it is tied to E.
    pub fn trained(&self) -> Range<usize> {
        if self.tied {
            0..self.slot("out_w").start
        } else {
            0..self.len()
        }
    }

    /// Every weight's name and range, in buffer order.
    pub fn slots(&self) -> impl Iterator<Item = (&str, Range<usize>)> {
        self.slots
            .iter()
            .map(|(name, r)| (name.as_str(), r.clone()))
    }

    /// The range of the weight named `name` (as [`Self::slots`] names it).
    pub fn slot(&self, name: &str) -> Range<usize> {
        self.slots
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("no weight named {name}"))
    }

    /// The weights, borrowed from `flat`.
    pub fn weights<'a>(&self, flat: &'a [f32]) -> Weights<'a> {
        assert_eq!(flat.len(), self.len(), "a buffer of this layout");
        let mut slots = self.slots.iter().map(|(_, r)| &flat[r.clone()]);
        let mut next = || slots.next().expect("a slot per weight");
        let gru = |next: &mut dyn FnMut() -> &'a [f32]| CellWeights {
            w: next(),
            b: next(),
            u: next(),
            c: next(),
        };
        let src_embedding = next();
        let encoder = (0..self.dims.layers)
            .map(|_| [gru(&mut next), gru(&mut next)])
            .collect();
        Weights {
            src_embedding,
            encoder,
            bridge_w: next(),
            bridge_b: next(),
            key: next(),
            query: next(),
            energy: next(),
            log_temperature: next(),
            fixed_temperature: self.fixed_temperature,
            tgt_embedding: next(),
            decoder: gru(&mut next),
            deep_w: next(),
            deep_b: next(),
            out_b: next(),
            out_w: next(),
            deep_output: self.dims.deep_output,
        }
    }

    /// Gradients written into `flat`, a buffer of this layout.
    pub fn grads<'a>(&self, flat: &'a mut [f32]) -> Grads<'a> {
        assert_eq!(flat.len(), self.len(), "a buffer of this layout");
        let mut rest = flat;
        let mut slots = self.slots.iter().map(|(_, r)| r.len());
        let mut next = move || {
            let len = slots.next().expect("a slot per weight");
            let (slot, tail) = std::mem::take(&mut rest).split_at_mut(len);
            rest = tail;
            slot
        };
        let gru = |next: &mut dyn FnMut() -> &'a mut [f32]| CellGrads {
            w: next(),
            b: next(),
            u: next(),
            c: next(),
        };
        let src_embedding = next();
        let encoder = (0..self.dims.layers)
            .map(|_| [gru(&mut next), gru(&mut next)])
            .collect();
        Grads {
            src_embedding,
            encoder,
            bridge_w: next(),
            bridge_b: next(),
            key: next(),
            query: next(),
            energy: next(),
            log_temperature: next(),
            tgt_embedding: next(),
            decoder: gru(&mut next),
            deep_w: next(),
            deep_b: next(),
            out_b: next(),
            out_w: next(),
        }
    }

    /// With tied embeddings, copies Eᵀ into W_o's slot of `params`.
    pub fn tie(&self, params: &mut [f32]) {
        if self.tied {
            let (table, out_w) = (self.slot("tgt_embedding"), self.slot("out_w"));
            let (head, tail) = params.split_at_mut(out_w.start);
            transpose_into(&head[table], self.dims.embedding, tail);
        }
    }

    /// With tied embeddings, adds ∂L/∂W_oᵀ to ∂L/∂E in `grads`: E is used twice.
    pub fn fold_tied(&self, grads: &mut [f32]) {
        if self.tied {
            let (table, out_w) = (self.slot("tgt_embedding"), self.slot("out_w"));
            let (head, tail) = grads.split_at_mut(out_w.start);
            let d_table = transposed(tail, self.dims.tgt_vocab);
            head[table]
                .iter_mut()
                .zip(d_table)
                .for_each(|(d, o)| *d += o);
        }
    }
}

/// `x` (`[rows, cols]`, row-major) transposed to `[cols, rows]`.
pub fn transposed(x: &[f32], cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; x.len()];
    transpose_into(x, cols, &mut t);
    t
}

/// `x` (`[rows, cols]`) transposed into `t` (`[cols, rows]`), in tiles that stay in cache
/// (element by element, the transpose of tied embeddings, one every step each way, cost a
/// noticeable share of a training step: docs/benchmarks.md, "Packed products").
pub fn transpose_into(x: &[f32], cols: usize, t: &mut [f32]) {
    const TILE: usize = 32;
    assert_eq!(x.len(), t.len());
    let rows = x.len() / cols;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                let row = &x[r * cols..(r + 1) * cols];
                for c in c0..(c0 + TILE).min(cols) {
                    t[c * rows + r] = row[c];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::small_dims;

    /// (The sizes themselves are checked against burn's parameters by `Binding::of` in
    /// `rnnsearch-train`, in every test that builds one.)
    #[test]
    fn weights_and_gradients_cover_the_buffer_in_the_same_order() {
        for layers in [1, 2] {
            let layout = Layout::new(small_dims(layers), false);
            let flat: Vec<f32> = (0..layout.len()).map(|i| i as f32).collect();
            let weights = layout.weights(&flat);
            let mut grads_flat = flat.clone();
            let grads = layout.grads(&mut grads_flat);
            // The same value at the start of each weight and its gradient.
            assert_eq!(weights.key[0], grads.key[0]);
            assert_eq!(weights.out_w[0], grads.out_w[0]);
            assert_eq!(weights.decoder.c[0], grads.decoder.c[0]);
            assert_eq!(
                weights.encoder[layers - 1][1].u[0],
                grads.encoder[layers - 1][1].u[0]
            );
            assert_eq!(*grads.out_w.last().unwrap() as usize, layout.len() - 1);
            assert_eq!(layout.slot("src_embedding").start, 0);
        }
    }

    #[test]
    fn tied_output_is_the_transposed_embedding_and_outside_the_trained_range() {
        let dims = Dims {
            output: 3,
            ..small_dims(1)
        };
        let layout = Layout::new(dims, true);
        let mut params: Vec<f32> = (0..layout.len()).map(|i| i as f32).collect();
        layout.tie(&mut params);
        let w = layout.weights(&params);
        let (e, v) = (layout.dims.embedding, layout.dims.tgt_vocab);
        for token in 0..v {
            for k in 0..e {
                assert_eq!(w.out_w[k * v + token], w.tgt_embedding[token * e + k]);
            }
        }
        assert_eq!(layout.trained().end, layout.slot("out_w").start);

        let mut grads = vec![0.0; layout.len()];
        let out_w = layout.slot("out_w");
        grads[out_w.start + 1] = 1.0; // ∂L/∂W_o[0, 1]: row 1 of E, column 0
        layout.fold_tied(&mut grads);
        assert_eq!(grads[layout.slot("tgt_embedding").start + e], 1.0);
    }

    #[test]
    fn transposed_moves_every_value_across_partial_tiles() {
        let (rows, cols) = (45, 70);
        let x: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let t = transposed(&x, cols);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(t[c * rows + r], x[r * cols + c]);
            }
        }
    }
}

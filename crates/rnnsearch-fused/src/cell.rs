//! One step of either recurrent cell ([`CellKind`]) for a batch of rows: the encoder's layers
//! and the decoder call these, so the recurrences are written once for both cells.
//!
//! The state of a row is h (`[d]`), and for the LSTM also its memory c (`[d]`); a GRU's memory
//! buffers are empty.

use crate::{gru, lstm, CellKind};

/// What the backward pass needs from one step.
#[derive(Clone, Debug)]
pub enum StepCache {
    Gru(gru::StepCache),
    Lstm(lstm::StepCache),
}

impl StepCache {
    pub fn new(kind: CellKind, rows: usize, d: usize) -> Self {
        match kind {
            CellKind::Gru => StepCache::Gru(gru::StepCache::new(rows, d)),
            CellKind::Lstm => StepCache::Lstm(lstm::StepCache::new(rows, d)),
        }
    }
}

/// The size of a memory buffer of `rows` rows: `rows · d` for the LSTM, 0 for the GRU.
pub fn memory_len(kind: CellKind, rows: usize, d: usize) -> usize {
    match kind {
        CellKind::Gru => 0,
        CellKind::Lstm => rows * d,
    }
}

/// h' (and c') from the input terms x (`[batch, G·d]`), the recurrent terms u (`[batch, G·d]`),
/// h and c, filling `cache` (made by [`StepCache::new`] for the same cell).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    x: &[f32],
    u: &[f32],
    h: &[f32],
    c: &[f32],
    h_next: &mut [f32],
    c_next: &mut [f32],
    cache: &mut StepCache,
    d: usize,
) {
    match cache {
        StepCache::Gru(cache) => gru::forward(x, u, h, h_next, cache, d),
        StepCache::Lstm(cache) => lstm::forward(x, u, c, h_next, c_next, cache, d),
    }
}

/// The derivatives of one step, given ∂L/∂h' (`dh`) and ∂L/∂c' (`dc`, empty for the GRU) and
/// the state h it started from: writes ∂L/∂x and ∂L/∂u, and replaces `dh` and `dc` with the
/// direct parts of ∂L/∂h and ∂L/∂c (the caller adds du Uᵀ to `dh`).
pub fn backward(
    dh: &mut [f32],
    dc: &mut [f32],
    h: &[f32],
    cache: &StepCache,
    dx: &mut [f32],
    du: &mut [f32],
    d: usize,
) {
    match cache {
        StepCache::Gru(cache) => gru::backward(dh, h, cache, dx, du, d),
        StepCache::Lstm(cache) => lstm::backward(dh, dc, cache, dx, du, d),
    }
}

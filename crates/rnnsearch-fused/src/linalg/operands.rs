//! What every product shares, whichever library runs it: the layouts of its operands, the
//! size from which it is split over threads, and the pointers its parts share.

/// Below this many multiply-adds a product runs on the calling thread: splitting it costs more
/// than it saves.
pub(super) const PARALLEL_WORK: usize = 1 << 18;

/// Which operand is read transposed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Layout {
    /// C = A B, A `[m, k]`, B `[k, n]`.
    NN,
    /// C = Aᵀ B, A `[k, m]`, B `[k, n]` (weight gradients: inputsᵀ · output gradients).
    TN,
    /// C = A Bᵀ, A `[m, k]`, B `[n, k]` (input gradients: output gradients · weightsᵀ).
    NT,
}

/// Raw pointers that cross to rayon threads: each part of a product writes its own block of C.
#[derive(Clone, Copy)]
pub(super) struct Shared(
    pub(super) *const f32,
    pub(super) *const f32,
    pub(super) *mut f32,
);
// SAFETY: the parts of one product only read A and B and write disjoint blocks of C.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

//! Row-major products C = A B (with the transposes the backward pass needs expressed as
//! strides), dispatched to OpenBLAS or the `gemm` crate and split over the rayon threads.

use gemm::Parallelism;

use std::ffi::c_int;

use super::blas::{blas, blas_matmul, Blas, NO_TRANS, ROW_MAJOR};
use super::operands::{Layout, Shared, PARALLEL_WORK};

/// C (`[m, n]`) = A B in the given layout, added to C when `accumulate`.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    layout: Layout,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
) {
    assert_eq!(c.len(), m * n, "matmul: output is not [{m}, {n}]");
    assert_eq!(a.len(), m * k, "matmul: left operand is not [{m}, {k}]");
    assert_eq!(b.len(), k * n, "matmul: right operand is not [{k}, {n}]");
    match blas() {
        Some(blas) if m > 0 && n > 0 && k > 0 => {
            blas_matmul(blas, layout, m, k, n, a, b, c, accumulate)
        }
        _ => gemm_matmul(layout, m, k, n, a, b, c, accumulate),
    }
}

/// C = A B + bias (A `[m, k]`, B `[k, n]`, C `[m, n]`, row-major; C written over) in blocks
/// of `block` columns spread over the rayon threads, each block handed row by row to
/// `summarise` as soon as it is computed, while it is still in cache. Returns, per block (block
/// b holds columns b·block ..), the summaries of its m rows.
///
/// For the vocabulary product of a decoding step: the statistics of a softmax are taken in the
/// same pass that writes the logits, rather than in passes of their own over all of them.
#[allow(clippy::too_many_arguments)]
pub fn affine_by_column_blocks<T: Send>(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    bias: &[f32],
    c: &mut [f32],
    block: usize,
    summarise: impl Fn(&[f32]) -> T + Sync,
) -> Vec<Vec<T>> {
    affine_blocks_with(blas(), m, k, n, a, b, bias, c, block, summarise)
}

/// [`affine_by_column_blocks`] through OpenBLAS, or the `gemm` crate when `blas` is `None`.
#[allow(clippy::too_many_arguments)]
pub(super) fn affine_blocks_with<T: Send>(
    blas: Option<&Blas>,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    bias: &[f32],
    c: &mut [f32],
    block: usize,
    summarise: impl Fn(&[f32]) -> T + Sync,
) -> Vec<Vec<T>> {
    assert_eq!(c.len(), m * n, "matmul: output is not [{m}, {n}]");
    assert_eq!(a.len(), m * k, "matmul: left operand is not [{m}, {k}]");
    assert_eq!(b.len(), k * n, "matmul: right operand is not [{k}, {n}]");
    assert_eq!(bias.len(), n, "matmul: bias is not [{n}]");
    let block = block.max(1);
    let ptrs = Shared(a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    let summarise = &summarise;
    let task = move |index: usize| -> Vec<T> {
        let ptrs = ptrs;
        let start = index * block;
        let cols = block.min(n - start);
        // SAFETY: block `index` reads A, B's columns start..start + cols and writes C's same
        // columns only, disjoint from every other block's; all offsets stay inside the lengths
        // checked above, and each row slice lives only while its block is being summarised.
        unsafe {
            column_block_product(blas, m, k, n, start, cols, ptrs);
            (0..m)
                .map(|r| {
                    let row = std::slice::from_raw_parts_mut(ptrs.2.add(r * n + start), cols);
                    row.iter_mut()
                        .zip(&bias[start..start + cols])
                        .for_each(|(v, b)| *v += b);
                    summarise(row)
                })
                .collect()
        }
    };
    let blocks = n.div_ceil(block);
    if blocks > 1 && m * n * k >= 4 * PARALLEL_WORK {
        use rayon::prelude::*;
        (0..blocks).into_par_iter().map(task).collect()
    } else {
        (0..blocks).map(task).collect()
    }
}

/// C[:, start .. start + cols] = A B[:, start .. start + cols] on the calling thread (pointers
/// and sizes as in [`affine_by_column_blocks`]), through `blas` or else the `gemm` crate.
///
/// # Safety
/// `ptrs` must point to A `[m, k]`, B `[k, n]` and C `[m, n]`, with start + cols ≤ n, and no
/// other thread may touch those columns of C meanwhile.
unsafe fn column_block_product(
    blas: Option<&Blas>,
    m: usize,
    k: usize,
    n: usize,
    start: usize,
    cols: usize,
    ptrs: Shared,
) {
    if m == 0 || cols == 0 {
        return;
    }
    let (a, b, c) = (ptrs.0, ptrs.1.add(start), ptrs.2.add(start));
    if k == 0 {
        for r in 0..m {
            std::slice::from_raw_parts_mut(c.add(r * n), cols).fill(0.0);
        }
        return;
    }
    match blas {
        Some(blas) => (blas.sgemm)(
            ROW_MAJOR,
            NO_TRANS,
            NO_TRANS,
            m as c_int,
            cols as c_int,
            k as c_int,
            1.0,
            a,
            k as c_int,
            b,
            n as c_int,
            0.0,
            c,
            n as c_int,
        ),
        None => gemm::gemm(
            m,
            cols,
            k,
            c,
            1,
            n as isize,
            false,
            a,
            1,
            k as isize,
            b,
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        ),
    }
}

/// The product through the `gemm` crate.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_matmul(
    layout: Layout,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    // (column stride, row stride) of A as an [m, k] matrix and of B as a [k, n] matrix.
    let (a_cs, a_rs) = match layout {
        Layout::TN => (m as isize, 1),
        _ => (1, k as isize),
    };
    let (b_cs, b_rs) = match layout {
        Layout::NT => (k as isize, 1),
        _ => (1, n as isize),
    };
    let parallelism = if m * n * k >= PARALLEL_WORK {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    };
    // SAFETY: `matmul`'s asserts bound every index gemm computes from (m, n, k) and the strides
    // to the three slices, and `c` does not alias `a` or `b` (it is borrowed mutably).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

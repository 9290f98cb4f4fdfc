//! Products with few rows against a fixed matrix: the vocabulary projection of a decoding step,
//! logits = t W_o + b, with t `[rows, l]` for a few dozen rows and W_o `[l, V]`.
//!
//! A general matrix product (OpenBLAS's included) first copies B into panels that its kernel
//! reads in order. With a few dozen rows each value of W_o is used only that many times after the
//! copy, so the copy itself is a large part of a greedy decoding step. W_o does not change while a
//! model translates: [`PackedColumns`] makes the copy once, and
//! [`affine_packed_by_column_blocks`] runs an AVX-512 kernel straight over it (timings in
//! docs/benchmarks.md, "Packed products").

use crate::linalg::{add_bias, matmul, simd, Layout, Simd};
use crate::{Dims, Weights};

/// Columns per panel: two AVX-512 vectors.
pub const PANEL: usize = 32;

/// B (`[k, n]`, row-major) as panels of [`PANEL`] columns: panel p holds columns
/// p·PANEL .. p·PANEL + PANEL as k rows of PANEL contiguous values, the last panel padded
/// with zeros.
#[derive(Clone, Debug)]
pub struct PackedColumns {
    k: usize,
    n: usize,
    panels: Vec<f32>,
}

impl PackedColumns {
    /// Packs `b` (`[k, n]`), or None when this CPU has no kernel for it (no AVX-512, or
    /// `RNNSEARCH_SIMD` caps it below): the product then runs unpacked.
    pub fn new(b: &[f32], k: usize, n: usize) -> Option<Self> {
        (simd() == Simd::Avx512).then(|| Self::pack(b, k, n))
    }

    fn pack(b: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(b.len(), k * n, "packing: matrix is not [{k}, {n}]");
        let count = n.div_ceil(PANEL);
        let mut panels = vec![0.0; count * k * PANEL];
        for (p, panel) in panels.chunks_exact_mut(k * PANEL).enumerate() {
            let (start, width) = (p * PANEL, PANEL.min(n - p * PANEL));
            for (row, out) in panel.chunks_exact_mut(PANEL).enumerate() {
                out[..width].copy_from_slice(&b[row * n + start..row * n + start + width]);
            }
        }
        Self { k, n, panels }
    }

    /// B's rows.
    pub fn k(&self) -> usize {
        self.k
    }

    /// B's columns.
    pub fn n(&self) -> usize {
        self.n
    }
}

/// C = A B + bias (A `[m, k]`, B packed, C `[m, n]`, row-major; C written over) in blocks of
/// `block` columns (rounded up to whole panels) spread over the rayon threads, each block
/// handed row by row to `summarise` as soon as it is computed: what
/// [`crate::linalg::affine_by_column_blocks`] does for an unpacked B.
pub fn affine_packed_by_column_blocks<T: Send>(
    m: usize,
    a: &[f32],
    b: &PackedColumns,
    bias: &[f32],
    c: &mut [f32],
    block: usize,
    summarise: impl Fn(&[f32]) -> T + Sync,
) -> Vec<Vec<T>> {
    let n = b.n;
    check_operands(m, a, b, c);
    assert_eq!(bias.len(), n, "packed product: bias is not [{n}]");
    let block = block.max(1).div_ceil(PANEL) * PANEL;
    let out = OutPtr(c.as_mut_ptr());
    let summarise = &summarise;
    let task = move |index: usize| -> Vec<T> {
        let out = out;
        let start = index * block;
        let cols = block.min(n - start);
        for p in start / PANEL..(start + cols).div_ceil(PANEL) {
            // SAFETY: the CPU has AVX-512 (checked above); panel p writes C's columns
            // p·PANEL .. + PANEL (cut at n) of every row, inside this block and so touched
            // by no other task.
            unsafe { panel_product(m, a, b, p, bias.as_ptr(), out.0, false) };
        }
        (0..m)
            .map(|r| {
                // SAFETY: these columns of row r are this block's alone, written above.
                let row = unsafe { std::slice::from_raw_parts(out.0.add(r * n + start), cols) };
                summarise(row)
            })
            .collect()
    };
    let blocks = n.div_ceil(block);
    if blocks > 1 && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        (0..blocks).into_par_iter().map(task).collect()
    } else {
        (0..blocks).map(task).collect()
    }
}

/// Checks that A is `[m, b.k]` and C `[m, b.n]`, and that the kernel can run here.
fn check_operands(m: usize, a: &[f32], b: &PackedColumns, c: &[f32]) {
    let (k, n) = (b.k, b.n);
    assert_eq!(c.len(), m * n, "packed product: output is not [{m}, {n}]");
    assert_eq!(
        a.len(),
        m * k,
        "packed product: left operand is not [{m}, {k}]"
    );
    assert_eq!(simd(), Simd::Avx512, "packed product without AVX-512");
}

/// C's pointer, crossing to the rayon threads: each block writes its own columns.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: the blocks of one product write disjoint columns of C.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Rows per tile: 8 rows × 2 vectors are 16 of the 32 AVX-512 registers as accumulators.
const TILE_ROWS: usize = 8;

/// C[:, panel p's columns] = A · panel (+ C when `accumulate`) (+ bias when not null) for
/// all m rows, tile by tile.
///
/// # Safety
/// The CPU must have AVX-512F; `c` must point to C `[m, b.n]`, `bias` be null or point to
/// b.n values (A sized as in [`affine_packed_by_column_blocks`]).
#[target_feature(enable = "avx512f")]
unsafe fn panel_product(
    m: usize,
    a: &[f32],
    b: &PackedColumns,
    p: usize,
    bias: *const f32,
    c: *mut f32,
    accumulate: bool,
) {
    let (k, n) = (b.k, b.n);
    let start = p * PANEL;
    let width = PANEL.min(n - start);
    let panel = b.panels[p * k * PANEL..(p + 1) * k * PANEL].as_ptr();
    let bias = if bias.is_null() {
        bias
    } else {
        bias.add(start)
    };
    let mut r = 0;
    while r < m {
        let rows = TILE_ROWS.min(m - r);
        let (a, c) = (a[r * k..].as_ptr(), c.add(r * n + start));
        let tile = match rows {
            8 => tile::<8>,
            7 => tile::<7>,
            6 => tile::<6>,
            5 => tile::<5>,
            4 => tile::<4>,
            3 => tile::<3>,
            2 => tile::<2>,
            _ => tile::<1>,
        };
        tile(a, k, panel, bias, c, n, width, accumulate);
        r += rows;
    }
}

/// R rows of A (`a`, row stride k) times one panel (k × [`PANEL`]), plus the R rows of C
/// (`c`, row stride `ldc`) when `accumulate`, plus `bias` unless it is null, into those rows of
/// C, of which the first `width` columns are read and written.
///
/// # Safety
/// AVX-512F; `a` holds R rows of k values, `panel` k·PANEL values, `bias` (unless null) and
/// every row of `c` `width` ≤ PANEL values.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const R: usize>(
    a: *const f32,
    k: usize,
    panel: *const f32,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
    width: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    let lanes = |from: usize| -> __mmask16 {
        let count = width.saturating_sub(from).min(16);
        ((1u32 << count) - 1) as __mmask16
    };
    let (low, high, upper) = (lanes(0), lanes(16), 16.min(width));
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    if accumulate {
        for (r, acc) in acc.iter_mut().enumerate() {
            let row = c.add(r * ldc);
            acc[0] = _mm512_maskz_loadu_ps(low, row);
            acc[1] = _mm512_maskz_loadu_ps(high, row.add(upper));
        }
    }
    for j in 0..k {
        let b0 = _mm512_loadu_ps(panel.add(j * PANEL));
        let b1 = _mm512_loadu_ps(panel.add(j * PANEL + 16));
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_ps(*a.add(r * k + j));
            acc[0] = _mm512_fmadd_ps(x, b0, acc[0]);
            acc[1] = _mm512_fmadd_ps(x, b1, acc[1]);
        }
    }
    let (bias0, bias1) = if bias.is_null() {
        (_mm512_setzero_ps(), _mm512_setzero_ps())
    } else {
        (
            _mm512_maskz_loadu_ps(low, bias),
            _mm512_maskz_loadu_ps(high, bias.add(upper)),
        )
    };
    for (r, acc) in acc.iter().enumerate() {
        let row = c.add(r * ldc);
        _mm512_mask_storeu_ps(row, low, _mm512_add_ps(acc[0], bias0));
        _mm512_mask_storeu_ps(row.add(upper), high, _mm512_add_ps(acc[1], bias1));
    }
}

/// C (`[m, b.n]`) = A B + bias, or C += A B + bias when `accumulate` (A `[m, b.k]`), on the
/// calling thread: the products of a decoding step other than the vocabulary's.
pub fn packed_product(
    m: usize,
    a: &[f32],
    b: &PackedColumns,
    bias: Option<&[f32]>,
    c: &mut [f32],
    accumulate: bool,
) {
    let n = b.n;
    check_operands(m, a, b, c);
    let bias = match bias {
        Some(bias) => {
            assert_eq!(bias.len(), n, "packed product: bias is not [{n}]");
            bias.as_ptr()
        }
        None => std::ptr::null(),
    };
    for p in 0..n.div_ceil(PANEL) {
        // SAFETY: AVX-512 and the sizes were checked above.
        unsafe { panel_product(m, a, b, p, bias, c.as_mut_ptr(), accumulate) };
    }
}

/// C (`[m, n]`) = A B + bias, or C += A B + bias when `accumulate` (A `[m, k]`, B `[k, n]`):
/// through the packed kernel when `packed` holds B packed, else through
/// [`crate::linalg::matmul`] over `b`. The one place the decoder's products choose between them.
#[allow(clippy::too_many_arguments)]
pub fn affine(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    packed: Option<&PackedColumns>,
    bias: Option<&[f32]>,
    c: &mut [f32],
    accumulate: bool,
) {
    match packed {
        Some(packed) => packed_product(m, a, packed, bias, c, accumulate),
        None => {
            matmul(Layout::NN, m, k, n, a, b, c, accumulate);
            if let Some(bias) = bias {
                add_bias(c, bias);
            }
        }
    }
}

/// The decoder's weights packed for [`crate::Decoding::step`]: every product of a step has a
/// few dozen rows (sentences × beams of one thread's part of the batch) against a fixed matrix.
#[derive(Clone, Debug)]
pub struct PackedDecoder {
    /// The E y_{i-1} rows of the decoder cell's W, `[E, G·m]`.
    pub input: PackedColumns,
    /// [U | W_a], `[m, G·m + a]`.
    pub recurrent: PackedColumns,
    /// The c_i rows of the decoder cell's W, `[2n, G·m]`.
    pub context: PackedColumns,
    /// The deep output, `[m + 2n + E, k·l]`.
    pub deep: PackedColumns,
    /// W_o, `[l, V]`.
    pub out: PackedColumns,
}

impl PackedDecoder {
    /// The packed decoder of `weights`, or None where the CPU has no kernel for it.
    pub fn new(weights: &Weights, dims: &Dims) -> Option<Self> {
        if simd() != Simd::Avx512 {
            return None;
        }
        let (e, h2, m, a, l) = (
            dims.embedding,
            2 * dims.hidden,
            dims.decoder_hidden,
            dims.attention,
            dims.output,
        );
        let (w, g) = (weights.decoder.w, dims.gates());
        let recurrent = fuse_recurrent(weights.decoder.u, weights.query, m, a);
        Some(Self {
            input: PackedColumns::pack(&w[..e * g * m], e, g * m),
            recurrent: PackedColumns::pack(&recurrent, m, g * m + a),
            context: PackedColumns::pack(&w[e * g * m..], h2, g * m),
            deep: PackedColumns::pack(weights.deep_w, m + h2 + e, dims.deep_width()),
            out: PackedColumns::pack(weights.out_w, l, dims.tgt_vocab),
        })
    }
}

/// [U | W_a] row by row (U `[m, G·m]`, W_a `[m, a]`).
pub(crate) fn fuse_recurrent(u: &[f32], w_a: &[f32], m: usize, a: usize) -> Vec<f32> {
    let width = u.len() / m.max(1);
    let mut fused = Vec::with_capacity(m * (width + a));
    for p in 0..m {
        fused.extend_from_slice(&u[p * width..(p + 1) * width]);
        fused.extend_from_slice(&w_a[p * a..(p + 1) * a]);
    }
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_products_agree_with_the_definition() {
        if simd() != Simd::Avx512 {
            eprintln!("no AVX-512 here: the packed kernel is not used, so not tested");
            return;
        }
        // Ragged everywhere: 13 rows (a tile of 8 and one of 5), 100 columns (three whole
        // panels and one of 4), blocks of 64 columns (two panels each).
        let (m, k, n) = (13, 37, 100);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37) % 19) as f32 / 7.0 - 1.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 53) % 23) as f32 / 11.0 - 1.0)
            .collect();
        let bias: Vec<f32> = (0..n).map(|j| j as f32 / 50.0).collect();
        let packed = PackedColumns::new(&b, k, n).unwrap();
        let mut c = vec![f32::NAN; m * n];
        let sums = affine_packed_by_column_blocks(m, &a, &packed, &bias, &mut c, 64, |row| {
            row.iter().sum::<f32>()
        });
        for r in 0..m {
            for j in 0..n {
                let want: f32 = bias[j] + (0..k).map(|i| a[r * k + i] * b[i * n + j]).sum::<f32>();
                let got = c[r * n + j];
                assert!((want - got).abs() < 1e-4, "[{r}, {j}]: {got} vs {want}");
            }
        }
        let mut d: Vec<f32> = (0..m * n).map(|i| (i % 7) as f32).collect();
        let before = d.clone();
        packed_product(m, &a, &packed, None, &mut d, true);
        for (i, (&got, &was)) in d.iter().zip(&before).enumerate() {
            let want = was + c[i] - bias[i % n];
            assert!(
                (want - got).abs() < 1e-4,
                "accumulated [{i}]: {got} vs {want}"
            );
        }
        assert_eq!(sums.len(), 2);
        for (block, cols) in [(0, 0..64), (1, 64..100)] {
            for r in 0..m {
                let want: f32 = c[r * n + cols.start..r * n + cols.end].iter().sum();
                assert_eq!(sums[block][r], want);
            }
        }
    }
}

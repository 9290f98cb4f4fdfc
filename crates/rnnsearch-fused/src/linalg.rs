//! Row-major matrix products on plain `f32` slices, with the transposes the backward pass needs
//! expressed as strides.
//!
//! The products run through OpenBLAS when the system has it (`libopenblas.so.0`, loaded at run
//! time, so the build never depends on it; `RNNSEARCH_BLAS=off` turns it off), else through the
//! `gemm` crate (the kernels burn-flex uses). OpenBLAS runs single-threaded here and a large
//! product is split across the rayon threads, so no second thread pool competes with rayon.

use std::ffi::c_int;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use gemm::Parallelism;

/// The widest vector instructions the element-wise loops are compiled for, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    /// Baseline x86-64 (SSE2, 4 lanes), or any other architecture.
    Baseline,
    /// AVX2, 8 lanes.
    Avx2,
    /// AVX-512 (F, VL, BW, DQ), 16 lanes.
    Avx512,
}

/// The tier cap: 0 = not yet read, else 1 + the highest tier allowed.
static SIMD_CAP: AtomicU8 = AtomicU8::new(0);

/// The tier the dispatched loops run at: the best this CPU has, capped by `RNNSEARCH_SIMD`
/// (`baseline`, `avx2` or `avx512`; read once) or by [`cap_simd`].
pub fn simd() -> Simd {
    let tier = |n: u8| [Simd::Baseline, Simd::Avx2, Simd::Avx512][usize::from(n - 1)];
    match SIMD_CAP.load(Ordering::Relaxed) {
        0 => {
            // An unknown value was reported by `check_environment`; here it means no cap.
            let cap = simd_cap_from_env().ok().flatten().unwrap_or(Simd::Avx512);
            let chosen = cap.min(detected_simd());
            SIMD_CAP.store(chosen as u8 + 1, Ordering::Relaxed);
            chosen
        }
        n => tier(n),
    }
}

/// The cap `RNNSEARCH_SIMD` asks for: `None` when unset.
fn simd_cap_from_env() -> Result<Option<Simd>, String> {
    match std::env::var("RNNSEARCH_SIMD") {
        Err(_) => Ok(None),
        Ok(value) => match value.as_str() {
            "baseline" => Ok(Some(Simd::Baseline)),
            "avx2" => Ok(Some(Simd::Avx2)),
            "avx512" => Ok(Some(Simd::Avx512)),
            other => Err(format!(
                "RNNSEARCH_SIMD={other:?} is not a tier: use baseline, avx2 or avx512 (or unset it)"
            )),
        },
    }
}

/// Checks the environment variables this crate reads (`RNNSEARCH_SIMD`, `RNNSEARCH_BLAS`), so
/// that a misspelt value is an error before any work rather than silently the default.
pub fn check_environment() -> Result<(), String> {
    simd_cap_from_env()?;
    match std::env::var("RNNSEARCH_BLAS").as_deref() {
        Err(_) | Ok("off") | Ok("auto") => Ok(()),
        Ok(other) => Err(format!(
            "RNNSEARCH_BLAS={other:?} is not a setting: use off (the gemm crate's products) or \
             auto (OpenBLAS when libopenblas.so.0 loads; the default)"
        )),
    }
}

/// Lowers (or restores, up to what the CPU has) the tier from now on, for every thread. Every
/// tier computes the same bits, so this only changes speed: the tests use it.
pub fn cap_simd(cap: Simd) {
    SIMD_CAP.store(cap.min(detected_simd()) as u8 + 1, Ordering::Relaxed);
}

fn detected_simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            return Simd::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return Simd::Avx2;
        }
    }
    Simd::Baseline
}

/// Defines `fn NAME(args) -> R { body }` that runs `body` compiled for AVX-512 or AVX2 when the
/// CPU has them ([`simd`], a cached flag) and for the baseline x86-64 (SSE2) otherwise: the
/// element-wise loops (exp, tanh, the gates) vectorise 16 or 8 wide instead of 4. Rust never
/// fuses a multiply and an add on its own and the reductions keep their own fixed lanes, so
/// every variant computes the same bits.
macro_rules! simd_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                match $crate::linalg::simd() {
                    // SAFETY: simd() never names a tier the CPU lacks.
                    $crate::linalg::Simd::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    $crate::linalg::Simd::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::linalg::Simd::Baseline => {}
                }
            }
            portable($($arg),*)
        }
    };
}
pub(crate) use simd_dispatch;

/// Below this many multiply-adds a product runs on the calling thread: splitting it costs more
/// than it saves.
const PARALLEL_WORK: usize = 1 << 18;

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

/// CBLAS's `CblasRowMajor`, `CblasNoTrans` and `CblasTrans`.
const ROW_MAJOR: c_int = 101;
const NO_TRANS: c_int = 111;
const TRANS: c_int = 112;

/// `cblas_sgemm`.
type Sgemm = unsafe extern "C" fn(
    order: c_int,
    trans_a: c_int,
    trans_b: c_int,
    m: c_int,
    n: c_int,
    k: c_int,
    alpha: f32,
    a: *const f32,
    lda: c_int,
    b: *const f32,
    ldb: c_int,
    beta: f32,
    c: *mut f32,
    ldc: c_int,
);

/// OpenBLAS, loaded once.
struct Blas {
    sgemm: Sgemm,
    _library: libloading::Library,
}

fn blas() -> Option<&'static Blas> {
    static BLAS: OnceLock<Option<Blas>> = OnceLock::new();
    BLAS.get_or_init(|| {
        if std::env::var("RNNSEARCH_BLAS").is_ok_and(|v| v == "off") {
            return None;
        }
        ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"]
            .iter()
            .find_map(|name| {
                // SAFETY: loading OpenBLAS runs only its own initialisers; the symbols are
                // looked up with their documented C signatures.
                unsafe {
                    let library = libloading::Library::new(name).ok()?;
                    let sgemm = *library.get::<Sgemm>(b"cblas_sgemm\0").ok()?;
                    if let Ok(set_threads) =
                        library.get::<unsafe extern "C" fn(c_int)>(b"openblas_set_num_threads\0")
                    {
                        set_threads(1);
                    }
                    Some(Blas {
                        sgemm,
                        _library: library,
                    })
                }
            })
    })
    .as_ref()
}

/// Whether the products run through OpenBLAS.
pub fn uses_blas() -> bool {
    blas().is_some()
}

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

/// Raw pointers that cross to rayon threads: each part of a product writes its own block of C.
#[derive(Clone, Copy)]
struct Shared(*const f32, *const f32, *mut f32);
// SAFETY: the parts of one product only read A and B and write disjoint blocks of C.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

/// The product through OpenBLAS, split into one block of C's rows (or columns, whichever it has
/// more of) per rayon thread when it is large enough.
#[allow(clippy::too_many_arguments)]
fn blas_matmul(
    blas: &Blas,
    layout: Layout,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
) {
    let (trans_a, lda) = match layout {
        Layout::TN => (TRANS, m),
        _ => (NO_TRANS, k),
    };
    let (trans_b, ldb) = match layout {
        Layout::NT => (TRANS, k),
        _ => (NO_TRANS, n),
    };
    let beta = if accumulate { 1.0 } else { 0.0 };
    let by_rows = m >= n;
    let extent = if by_rows { m } else { n };
    let parts = if m * n * k >= 4 * PARALLEL_WORK {
        rayon::current_num_threads().clamp(1, extent)
    } else {
        1
    };
    let ptrs = Shared(a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    let sgemm = blas.sgemm;
    let run = move |part: usize| {
        let ptrs = ptrs;
        let start = extent * part / parts;
        let len = extent * (part + 1) / parts - start;
        // SAFETY: the offsets stay inside A, B and C (their sizes were checked against m, k, n)
        // and the parts write disjoint rows or columns of C.
        unsafe {
            let (a, b, c, rows, cols) = if by_rows {
                let a_offset = if trans_a == TRANS { start } else { start * k };
                (ptrs.0.add(a_offset), ptrs.1, ptrs.2.add(start * n), len, n)
            } else {
                let b_offset = if trans_b == TRANS { start * k } else { start };
                (ptrs.0, ptrs.1.add(b_offset), ptrs.2.add(start), m, len)
            };
            sgemm(
                ROW_MAJOR,
                trans_a,
                trans_b,
                rows as c_int,
                cols as c_int,
                k as c_int,
                1.0,
                a,
                lda as c_int,
                b,
                ldb as c_int,
                beta,
                c,
                n as c_int,
            );
        }
    };
    if parts == 1 {
        run(0);
    } else {
        use rayon::prelude::*;
        (0..parts).into_par_iter().for_each(run);
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
fn affine_blocks_with<T: Send>(
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
fn gemm_matmul(
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

/// Adds `bias` (`[n]`) to every row of `x` (`[rows, n]`).
pub fn add_bias(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
}

/// Σ a_i b_i, in eight interleaved sums so that it vectorises.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        lanes
            .iter_mut()
            .zip(x.iter().zip(y))
            .for_each(|(l, (x, y))| *l += x * y);
    }
    lanes.iter().sum::<f32>() + tail
}

/// Σ x_i, in eight interleaved sums so that it vectorises.
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    sum_of(x, |v| v)
}

/// Σ_i exp(x_i − shift), added up as [`sum`] adds (the same bits as `sum` of the
/// exponentials) without a buffer for them.
///
/// Always inlined, like the other reductions here, so that it takes the SIMD tier of its caller:
/// called out of line from `max_and_sum_exp`'s AVX-512 body, it ran 4 wide and took a tenth of
/// a greedy decoding step.
#[inline(always)]
pub fn sum_exp(x: &[f32], shift: f32) -> f32 {
    sum_of(x, |v| exp(v - shift))
}

/// Σ_i f(x_i) in eight interleaved sums: the one summation order of [`sum`] and [`sum_exp`].
#[inline(always)]
fn sum_of(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 8];
    let x8 = x.chunks_exact(8);
    let tail: f32 = x8.remainder().iter().map(|&v| f(v)).sum();
    for x in x8 {
        lanes.iter_mut().zip(x).for_each(|(l, &v)| *l += f(v));
    }
    lanes.iter().sum::<f32>() + tail
}

simd_dispatch! {
    /// (max_i x_i, Σ_i exp(x_i − max)): a softmax's statistics over `x`, as [`max`] and
    /// [`sum_exp`] give them.
    pub fn max_and_sum_exp(x: &[f32]) -> (f32, f32) {
        let top = max(x);
        (top, sum_exp(x, top))
    }
}

/// max_i x_i (−∞ for an empty slice), in eight interleaved maxima so that it vectorises.
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let x8 = x.chunks_exact(8);
    let tail = x8
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for x in x8 {
        lanes
            .iter_mut()
            .zip(x)
            .for_each(|(l, &v)| *l = if v > *l { v } else { *l });
    }
    lanes.iter().fold(tail, |m, &v| m.max(v))
}

/// Adds the column sums of `x` (`[rows, n]`) to `out` (`[n]`): the gradient of a bias.
pub fn add_column_sums(x: &[f32], out: &mut [f32]) {
    for row in x.chunks_exact(out.len()) {
        out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
    }
}

/// e^x to within 2 ulp for x ≥ −87 (below that, the smallest normal float rather than 0).
///
/// Branch-free, so loops over it vectorise, unlike calls to `expf`, which took a seventh of
/// a decoding step and most of the loss: e^x = 2^k e^r with k = round(x / ln 2) and
/// r = x − k ln 2 in [−ln 2 / 2, ln 2 / 2] (ln 2 in two parts, so r stays exact), e^r from its
/// Taylor series to r⁷ (error below 6·10⁻⁹ there), and 2^k built from its exponent bits.
#[inline]
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5 · 2^23 rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let k = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    p * f32::from_bits(((k as i32 + 127) as u32) << 23)
}

/// σ(x) = 1 / (1 + e^{−x}).
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// tanh(x) = 2σ(2x) − 1 (`expf` is several times cheaper than `tanhf`).
#[inline]
pub fn tanh(x: f32) -> f32 {
    2.0 * sigmoid(2.0 * x) - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tier the CPU has gives the baseline's bits: the softmax statistics, a GRU step
    /// and the smoothed loss with its gradient, on lengths that leave ragged tails.
    #[test]
    fn simd_tiers_compute_the_same_bits() {
        let values = |n: usize, seed: u32| -> Vec<f32> {
            (0..n)
                .map(|i| {
                    ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / u32::MAX as f32 * 6.0
                        - 3.0
                })
                .collect()
        };
        let run = || {
            let mut bits = Vec::new();
            let (top, total) = max_and_sum_exp(&values(1003, 1));
            bits.extend([top, total].map(|v| u64::from(v.to_bits())));
            let (rows, d) = (3, 37);
            let (x, u, h) = (
                values(rows * 3 * d, 2),
                values(rows * 3 * d, 3),
                values(rows * d, 4),
            );
            let mut h_next = vec![0.0; rows * d];
            let mut cache = crate::gru::StepCache::new(rows, d);
            crate::gru::forward(&x, &u, &h, &mut h_next, &mut cache, d);
            bits.extend(h_next.iter().map(|v| u64::from(v.to_bits())));
            let mut logits = values(2 * 1001, 5);
            let sums = crate::output::loss_and_gradient(&mut logits, &[7, 999], &[1.0, 1.0], 0.1);
            bits.extend([sums.objective.to_bits(), sums.nll.to_bits()]);
            bits.extend(logits.iter().map(|v| u64::from(v.to_bits())));
            bits
        };
        let best = simd();
        cap_simd(Simd::Baseline);
        let baseline = run();
        for tier in [Simd::Avx2, Simd::Avx512] {
            cap_simd(tier);
            if simd() < tier {
                eprintln!("{tier:?} not compared: this CPU lacks it");
                continue;
            }
            assert_eq!(run(), baseline, "{:?} differs from the baseline", simd());
        }
        cap_simd(best);
    }

    #[test]
    fn exp_is_within_two_ulp_of_std() {
        let mut x = -87.0f32;
        while x <= 88.0 {
            let (got, want) = (exp(x), x.exp());
            assert!(
                ((got - want) / want).abs() <= 2.5e-7,
                "exp({x}) = {got}, std says {want}"
            );
            x += 0.0137;
        }
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
    }

    #[test]
    fn sum_exp_adds_the_exponentials_as_sum_does() {
        for len in [0, 1, 7, 8, 9, 8003] {
            let x: Vec<f32> = (0..len)
                .map(|i| ((i * 37) % 101) as f32 * 0.3 - 15.0)
                .collect();
            let shift = max(&x);
            let exps: Vec<f32> = x.iter().map(|&v| exp(v - shift)).collect();
            assert_eq!(
                sum_exp(&x, shift).to_bits(),
                sum(&exps).to_bits(),
                "len {len}"
            );
        }
    }

    fn naive(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    fn transpose(rows: usize, cols: usize, x: &[f32]) -> Vec<f32> {
        let mut t = vec![0.0; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                t[j * rows + i] = x[i * cols + j];
            }
        }
        t
    }

    #[test]
    fn layouts_agree_with_the_definition() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
        let want = naive(m, k, n, &a, &b);
        let close = |c: &[f32]| c.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-5);

        let at = transpose(m, k, &a);
        let bt = transpose(k, n, &b);
        type Product<'p> = Box<dyn Fn(Layout, &[f32], &[f32], &mut [f32], bool) + 'p>;
        let mut paths: Vec<Product> = vec![Box::new(|l, a, b, c, acc| {
            gemm_matmul(l, m, k, n, a, b, c, acc)
        })];
        match blas() {
            Some(blas) => paths.push(Box::new(move |l, a, b, c, acc| {
                blas_matmul(blas, l, m, k, n, a, b, c, acc)
            })),
            None => eprintln!("OpenBLAS not found: only the gemm crate's path is checked"),
        }
        for product in &paths {
            let mut c = vec![0.0; m * n];
            product(Layout::NN, &a, &b, &mut c, false);
            assert!(close(&c));
            let mut c = vec![0.0; m * n];
            product(Layout::TN, &at, &b, &mut c, false);
            assert!(close(&c));
            let mut c = vec![1.0; m * n];
            product(Layout::NT, &a, &bt, &mut c, true);
            assert!(c.iter().zip(&want).all(|(x, y)| (x - 1.0 - y).abs() < 1e-5));
        }
    }

    /// Products large enough to be split across threads, by rows and by columns.
    #[test]
    fn split_products_agree_with_the_definition() {
        for (m, k, n) in [(300, 64, 90), (90, 64, 300)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i % 97) as f32 - 48.0) / 50.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i % 89) as f32 - 44.0) / 50.0)
                .collect();
            let want = naive(m, k, n, &a, &b);
            for layout in [Layout::NN, Layout::TN, Layout::NT] {
                let (a_in, b_in) = match layout {
                    Layout::NN => (a.clone(), b.clone()),
                    Layout::TN => (transpose(m, k, &a), b.clone()),
                    Layout::NT => (a.clone(), transpose(k, n, &b)),
                };
                let mut c = vec![0.0; m * n];
                matmul(layout, m, k, n, &a_in, &b_in, &mut c, false);
                let diff = c
                    .iter()
                    .zip(&want)
                    .fold(0f32, |d, (x, y)| d.max((x - y).abs()));
                assert!(diff < 1e-3, "{layout:?} {m}x{k}x{n}: {diff}");
            }
        }
    }

    #[test]
    fn column_blocks_agree_with_the_definition() {
        // Large enough to run in parallel, with a last block narrower than the others.
        let (m, k, n) = (70, 64, 1000);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i % 97) as f32 - 48.0) / 50.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i % 89) as f32 - 44.0) / 50.0)
            .collect();
        let bias: Vec<f32> = (0..n).map(|j| j as f32 / 100.0).collect();
        let mut want = naive(m, k, n, &a, &b);
        add_bias(&mut want, &bias);
        for backend in [blas(), None] {
            for block in [1000, 384, 7] {
                let mut c = vec![f32::NAN; m * n];
                let sums = affine_blocks_with(backend, m, k, n, &a, &b, &bias, &mut c, block, sum);
                let diff = c
                    .iter()
                    .zip(&want)
                    .fold(0f32, |d, (x, y)| d.max((x - y).abs()));
                assert!(diff < 1e-3, "block {block}: {diff}");
                assert_eq!(sums.len(), n.div_ceil(block));
                for (index, rows) in sums.iter().enumerate() {
                    let cols = index * block..(index * block + block).min(n);
                    for (r, &got) in rows.iter().enumerate() {
                        assert_eq!(got, sum(&c[r * n + cols.start..r * n + cols.end]));
                    }
                }
            }
        }
    }

    #[test]
    fn tanh_matches_std() {
        for i in -400..400 {
            let x = i as f32 / 40.0;
            assert!((tanh(x) - x.tanh()).abs() < 1e-6, "{x}");
        }
        assert!((0.0..1e-37).contains(&sigmoid(-200.0)));
        assert_eq!(sigmoid(200.0), 1.0);
    }
}

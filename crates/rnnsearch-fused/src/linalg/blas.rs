//! OpenBLAS, loaded at run time when the system has it (`libopenblas.so.0`), and products
//! through its `cblas_sgemm`, split over the rayon threads.

use std::ffi::c_int;
use std::sync::OnceLock;

use super::operands::{Layout, Shared, PARALLEL_WORK};

/// CBLAS's `CblasRowMajor`, `CblasNoTrans` and `CblasTrans`.
pub(super) const ROW_MAJOR: c_int = 101;
pub(super) const NO_TRANS: c_int = 111;
pub(super) const TRANS: c_int = 112;

/// `cblas_sgemm`.
pub(super) type Sgemm = unsafe extern "C" fn(
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
pub(super) struct Blas {
    pub(super) sgemm: Sgemm,
    _library: libloading::Library,
}

pub(super) fn blas() -> Option<&'static Blas> {
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

/// The product through OpenBLAS, split into one block of C's rows (or columns, whichever it has
/// more of) per rayon thread when it is large enough.
#[allow(clippy::too_many_arguments)]
pub(super) fn blas_matmul(
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

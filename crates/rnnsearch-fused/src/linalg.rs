//! Row-major matrix products on plain `f32` slices, through the `gemm` crate (the kernels
//! burn-flex uses), with the transposes the backward pass needs expressed as strides.

use gemm::Parallelism;

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
    assert_eq!(
        a.len(),
        m * k,
        "matmul: left operand has {} values, not {m}×{k}",
        a.len()
    );
    assert_eq!(
        b.len(),
        k * n,
        "matmul: right operand has {} values, not {k}×{n}",
        b.len()
    );
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
    // SAFETY: the asserts above bound every index gemm computes from (m, n, k) and the strides
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

/// Adds the column sums of `x` (`[rows, n]`) to `out` (`[n]`): the gradient of a bias.
pub fn add_column_sums(x: &[f32], out: &mut [f32]) {
    for row in x.chunks_exact(out.len()) {
        out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
    }
}

/// σ(x) = 1 / (1 + e^{−x}), written so that e^{|x|} never overflows.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// tanh(x) = 2σ(2x) − 1 (`expf` is several times cheaper than `tanhf`).
#[inline]
pub fn tanh(x: f32) -> f32 {
    2.0 * sigmoid(2.0 * x) - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

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

        let mut c = vec![0.0; m * n];
        matmul(Layout::NN, m, k, n, &a, &b, &mut c, false);
        assert!(close(&c));
        let mut c = vec![0.0; m * n];
        matmul(Layout::TN, m, k, n, &transpose(m, k, &a), &b, &mut c, false);
        assert!(close(&c));
        let mut c = vec![1.0; m * n];
        matmul(Layout::NT, m, k, n, &a, &transpose(k, n, &b), &mut c, true);
        assert!(c.iter().zip(&want).all(|(x, y)| (x - 1.0 - y).abs() < 1e-5));
    }

    #[test]
    fn tanh_matches_std() {
        for i in -400..400 {
            let x = i as f32 / 40.0;
            assert!((tanh(x) - x.tanh()).abs() < 1e-6, "{x}");
        }
        assert_eq!(sigmoid(-200.0), 0.0);
        assert_eq!(sigmoid(200.0), 1.0);
    }
}

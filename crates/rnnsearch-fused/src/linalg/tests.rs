use super::blas::{blas, blas_matmul};
use super::products::{affine_blocks_with, gemm_matmul};
use super::*;
/// Every tier the CPU has gives the baseline's bits: the softmax statistics, a GRU step
/// and the smoothed loss with its gradient, on lengths that leave ragged tails.
#[test]
fn simd_tiers_compute_the_same_bits() {
    let values = |n: usize, seed: u32| -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / u32::MAX as f32 * 6.0 - 3.0
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

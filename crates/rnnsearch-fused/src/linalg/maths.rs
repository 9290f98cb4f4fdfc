//! Element-wise maths and reductions: bias adds, dot products, sums, softmax statistics, and
//! branch-free exp, sigmoid and tanh that vectorise.

use super::simd_dispatch;

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
/// called out of line from `max_and_sum_exp`'s AVX-512 body, it ran only 4 wide.
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
    if out.is_empty() {
        return;
    }
    for row in x.chunks_exact(out.len()) {
        out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
    }
}

/// e^x to within 2 ulp for x ≥ −87 (below that, the smallest normal float rather than 0).
///
/// Branch-free, so loops over it vectorise, unlike calls to `expf` (docs/benchmarks.md,
/// "Moved from code comments"): e^x = 2^k e^r with k = round(x / ln 2) and
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

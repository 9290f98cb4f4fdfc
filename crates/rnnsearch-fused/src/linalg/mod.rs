//! Row-major matrix products on plain `f32` slices, with the transposes the backward pass needs
//! expressed as strides.
//!
//! The products run through OpenBLAS when the system has it (`libopenblas.so.0`, loaded at run
//! time, so the build never depends on it; `RNNSEARCH_BLAS=off` turns it off), else through the
//! `gemm` crate (the kernels burn-flex uses). OpenBLAS runs single-threaded here and a large
//! product is split across the rayon threads, so no second thread pool competes with rayon.
//!
//! One file per job: [`simd`] (which vector instructions the loops use), [`operands`] (layouts
//! and what the parts of a product share), [`blas`] (the OpenBLAS loader and its products),
//! [`products`] (the matrix products, dispatched), [`maths`] (element-wise maths and reductions).

mod blas;
mod maths;
mod operands;
mod products;
mod simd;

pub use blas::uses_blas;
pub use maths::*;
pub use operands::Layout;
pub use products::{affine_by_column_blocks, matmul};
pub(crate) use simd::simd_dispatch;
pub use simd::{cap_simd, simd, Simd};

/// Checks the environment variables this crate reads (`RNNSEARCH_SIMD`, `RNNSEARCH_BLAS`), so
/// that a misspelt value is an error before any work rather than silently the default.
pub fn check_environment() -> Result<(), String> {
    simd::simd_cap_from_env()?;
    match std::env::var("RNNSEARCH_BLAS").as_deref() {
        Err(_) | Ok("off") | Ok("auto") => Ok(()),
        Ok(other) => Err(format!(
            "RNNSEARCH_BLAS={other:?} is not a setting: use off (the gemm crate's products) or \
             auto (OpenBLAS when libopenblas.so.0 loads; the default)"
        )),
    }
}

#[cfg(test)]
mod tests;

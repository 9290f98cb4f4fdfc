//! Which vector instructions the element-wise loops run with: detection, the
//! `RNNSEARCH_SIMD` cap, and the macro that compiles a loop for each tier.

use std::sync::atomic::{AtomicU8, Ordering};

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
pub(super) fn simd_cap_from_env() -> Result<Option<Simd>, String> {
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

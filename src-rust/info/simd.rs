//! Which vector instructions the CPU offers, detected once at run time.
//!
//! The crate is compiled for the baseline x86-64 (SSE2), where float-to-integer conversions
//! and wide comparisons do not vectorise. The few hot loops are compiled again with AVX2 and
//! AVX-512 enabled and picked by [`widest`]; the loop bodies are the same Rust code.

/// The widest vector instructions available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Vectors {
    /// AVX-512 F, DQ, VL and BW.
    Avx512,
    /// AVX2.
    Avx2,
    /// What the target guarantees.
    Portable,
}

/// The widest vector instructions of this CPU (the standard library caches the detection).
#[inline]
pub(crate) fn widest() -> Vectors {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bw")
        {
            return Vectors::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return Vectors::Avx2;
        }
    }
    Vectors::Portable
}

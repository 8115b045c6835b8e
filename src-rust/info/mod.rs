//! Information-theory kernels (SPEC §7).

//! Bindings of the information-theory kernels.

//! offload

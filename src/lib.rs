//! Sluice, the product: the `sluiced` binary (a thin main over `sluice_control`) and
//! the end-to-end tests in `tests/`, which run it on DPDK virtual devices.
//!
//! The layers are their own crates, re-exported here for tests and tools:
//! `control -> {fastpath, offload} -> ffi (dpdk-sys)`.
#![deny(unsafe_code)]

pub use dpdk_sys;
pub use sluice_control as control;
pub use sluice_fastpath as fastpath;

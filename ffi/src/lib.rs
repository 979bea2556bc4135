//! `dpdk-sys`: Sluice's only door to DPDK.
//!
//! * [`raw`] is bindgen's output over the system DPDK 22.11 headers (allowlisted), plus
//!   linkable wrappers for DPDK's `static inline` hot functions (`rte_eth_rx_burst`,
//!   `rte_pktmbuf_free_bulk`, `rte_ring_*_burst`, `rte_rdtsc`, ...), compiled from C by
//!   the build script.
//! * The modules around it are a thin safe layer: [`eal`] (init once per process),
//!   [`lcore`] (thread registration, TSC), [`mempool`], [`mbuf`] (RAII packet and
//!   fixed-size [`mbuf::Burst`]), [`port`] (ethdev by devargs, queues claimed by one
//!   owner each), [`ring`].
//!
//! # Design
//! Every DPDK object is an RAII type over a checked pointer or id; every failing call
//! becomes a [`DpdkError`] that names the call and its subject. The other crates of the
//! workspace deny `unsafe`: soundness arguments live here, one `// SAFETY:` comment per
//! block.
//!
//! # Thread-safety
//! DPDK queues are single-owner: an rx or tx queue handle is claimed once and is `!Clone`,
//! and polling takes `&mut self`. A port can be stopped or closed only through
//! `&mut Port`, which control gets back only when every queue handle (each holds an
//! `Arc<Port>`) has been dropped by the workers.
//!
//! # Limitations
//! Multi-segment mbufs are exposed through their first segment only.

pub mod eal;
mod error;
pub mod flow;
pub mod lcore;
pub mod log;
pub mod mbuf;
pub mod mempool;
pub mod meter;
pub mod mtr;
pub mod port;
pub mod ring;

pub use error::{errno_name, DpdkError, Result};

/// bindgen's output over `wrapper.h` and the static-inline wrappers. Unsafe to use
/// directly; prefer the safe modules of this crate.
#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]
pub mod raw {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

/// The DPDK version this crate was built against, as `pkg-config` reported it.
pub const DPDK_PKG_VERSION: &str = env!("SLUICE_DPDK_PKG_VERSION");

/// The DPDK version of the library linked at run time (`rte_version()`), e.g. "DPDK 22.11.11".
pub fn runtime_version() -> String {
    // SAFETY: rte_version returns a pointer to a static NUL-terminated string; it
    // needs no EAL initialisation.
    let p = unsafe { raw::rte_version() };
    if p.is_null() {
        return String::from("unknown");
    }
    // SAFETY: non-null, NUL-terminated, static lifetime (see above).
    unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

#[cfg(test)]
pub(crate) mod test_eal {
    /// The shared EAL of this crate's unit tests.
    pub fn eal() -> &'static crate::eal::Eal {
        crate::eal::Eal::for_tests("sluice-ffi-test")
    }
}

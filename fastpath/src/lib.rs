//! The fast path: pinned run-to-completion workers and the stages they run.
//!
//! A worker polls its rx queues in bursts of [`BURST_SIZE`], hands each burst to a
//! [`BurstProcessor`] (today the [`xconnect::CrossConnect`] table; the cache hierarchy
//! and P4 pipeline plug in behind the same trait), which moves every packet to an
//! [`egress::Egress`] batch or drops it with a counted [`stats::DropReason`]. Egress
//! batches go out in one `tx_burst` per port per loop.
//!
//! This crate knows nothing of configuration files, tokio or gRPC; it owns no shared
//! mutable state except single-writer counters ([`stats::WorkerStats`]).
#![deny(unsafe_code)]

pub mod cache;
pub mod egress;
pub mod mailbox;
pub mod p4;
pub mod pipeline;
pub mod qos;
pub mod stats;
pub mod uplink;
pub mod worker;
pub mod xconnect;

pub use dpdk_sys::mbuf::{Burst, BURST_SIZE};

/// Sluice's dense index of a port (0..number of ports), not a DPDK port id.
pub type PortIndex = usize;

/// A forwarding stage: decides the fate of every packet of a burst.
///
/// Contract: on return `burst` is empty — each packet was moved to `egress` or
/// dropped and counted in `stats`. Called on the worker's core for every non-empty rx
/// burst: no allocation, lock, syscall or blocking.
pub trait BurstProcessor: Send {
    /// Process one burst received on `in_port`.
    fn process(
        &mut self,
        in_port: PortIndex,
        burst: &mut Burst,
        egress: &mut egress::Egress,
        stats: &stats::WorkerStats,
    );

    /// Called by the worker every so many polls that received nothing
    /// ([`worker::Worker::run`]): time-driven upkeep (idle expiry, settling) that
    /// would otherwise wait for the next packet. The same rules as `process`.
    fn idle(&mut self) {}
}

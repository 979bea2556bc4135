//! Hardware offload with rte_flow.
//!
//! Today this crate answers one question per port at start-up: does the device
//! implement rte_flow at all? It validates the simplest ingress rule (any Ethernet frame
//! to queue 0). No device on a machine without a capable NIC does — `net_null` and
//! `net_ring` have no flow ops (`ENOSYS`), and `net_tap` needs tc flower — so the
//! answer is reported once and forwarding stays in software. Translation of megaflows
//! to rte_flow rules and the offload manager come with the offload issue.
#![deny(unsafe_code)]

pub mod device;
pub mod manager;
pub mod model;
pub mod translate;

#[cfg(test)]
mod test_util;

#[cfg(test)]
mod differential_tests;

use dpdk_sys::port::Port;

/// What a port can do with rte_flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowSupport {
    /// The PMD validated a basic ingress rule.
    Capable,
    /// The PMD refused: no offload on this port.
    NotCapable {
        /// `ENOSYS`, `ENOTSUP`, ...
        errno: i32,
        /// The PMD's message.
        reason: String,
    },
}

impl FlowSupport {
    /// A short human form: `capable`, or `not capable: <reason> (<ERRNO>)`.
    pub fn describe(&self) -> String {
        match self {
            FlowSupport::Capable => "capable".into(),
            FlowSupport::NotCapable { errno, reason } => {
                format!("not capable: {reason} ({})", dpdk_sys::errno_name(*errno))
            }
        }
    }
}

/// Probe `port` (configured; started or not).
pub fn probe(port: &Port) -> FlowSupport {
    match dpdk_sys::flow::validate_eth_to_queue(port, 0) {
        Ok(()) => FlowSupport::Capable,
        Err(e) => FlowSupport::NotCapable { errno: e.errno, reason: e.message },
    }
}

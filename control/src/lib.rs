//! The control side of Sluice: everything that is not the per-packet fast path.
//!
//! * [`config`]: the TOML configuration and its validation.
//! * [`eal_args`]: EAL arguments from the configuration, with host checks (hugepages).
//! * [`placement`]: which worker polls which rx queue.
//! * [`dataplane`]: brings ports and workers up, reads their counters, stops them.
//! * [`report`]: counters as human tables, interval lines and JSON.
//! * [`workers`]: control's handle on the workers' mailboxes (updates visible on return).
//! * [`flows`]: the workers' megaflows as control sees them (event rings).
//! * [`p4rt`]: the P4Runtime server.
//! * [`mgmt`]: the management API (what `sluicectl` talks to).
//! * [`offload`]: the rte_flow offload manager's rounds and its hook on writes.
//! * [`telemetry`]: Prometheus metrics, read from the workers' counters on scrape.
//! * [`daemon`]: the `sluiced` program.
//! * [`demo`]: the embedded default configuration `make run` uses.
//! * [`app`]: the built-in app that programs Sluice's default program.
#![deny(unsafe_code)]

pub mod app;
pub mod background;
pub mod config;
pub mod ctl;
pub mod daemon;
pub mod dataplane;
pub mod demo;
pub mod eal_args;
pub mod entries;
pub mod flows;
pub mod mgmt;
pub mod offload;
pub mod p4rt;
pub mod pcap;
pub mod pipeline;
pub mod placement;
pub mod qos;
pub mod report;
pub mod telemetry;
pub mod workers;

/// What the binary was built from, for `--version` and reports.
#[derive(Debug, Clone, Copy)]
pub struct BuildInfo {
    /// The crate version.
    pub version: &'static str,
    /// The git revision, or "unknown".
    pub git_rev: &'static str,
}

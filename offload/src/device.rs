//! Where rules go: a [`FlowDevice`] — DPDK's rte_flow on real ports
//! ([`EthdevFlows`]), or the software NIC model ([`crate::model::NicModel`]) in tests.
//! The offload manager only talks to this trait.

use std::collections::HashMap;
use std::sync::Arc;

use dpdk_sys::flow::{self, FlowCount, FlowError, FlowRule, Rule};
use dpdk_sys::mtr::{self, MeterSpec, MeterStats};
use dpdk_sys::port::Port;

/// A device that holds flow rules, per DPDK port id.
pub trait FlowDevice: Send {
    /// A created rule.
    type Handle: Send;

    /// Would `rule` be created on `port` now?
    fn validate(&mut self, port: u16, rule: &Rule) -> Result<(), FlowError>;

    /// Create `rule` on `port`.
    fn create(&mut self, port: u16, rule: &Rule) -> Result<Self::Handle, FlowError>;

    /// Destroy a rule.
    fn destroy(&mut self, handle: Self::Handle) -> Result<(), FlowError>;

    /// A rule's COUNT counters (totals since creation).
    fn query(&mut self, handle: &Self::Handle) -> Result<FlowCount, FlowError>;

    /// Create meter object `id` on `port` (rte_mtr: its profile, policy and object),
    /// for rules' `METER(id)` actions.
    fn meter_create(&mut self, port: u16, id: u32, spec: &MeterSpec) -> Result<(), FlowError>;

    /// Destroy meter object `id` on `port` (after the rules using it).
    fn meter_destroy(&mut self, port: u16, id: u32) -> Result<(), FlowError>;

    /// Meter object `id`'s per-color statistics (totals since creation).
    fn meter_stats(&mut self, port: u16, id: u32) -> Result<MeterStats, FlowError>;

    /// DPDK port `id` may be used (`Some`) or not any more (`None`; its rules are
    /// destroyed already). Devices that need no port handle ignore it.
    fn set_port(&mut self, id: u16, port: Option<Arc<Port>>) {
        let _ = (id, port);
    }
}

/// rte_flow on the switch's DPDK ports. Holds the ports it may use (a port cannot
/// close while it has rules: forget it with [`FlowDevice::set_port`] after its rules
/// are destroyed).
#[derive(Debug, Default)]
pub struct EthdevFlows {
    ports: HashMap<u16, Arc<Port>>,
}

fn no_port(op: &'static str, port: u16) -> FlowError {
    FlowError {
        op,
        port,
        errno: ENODEV,
        kind: 0,
        message: "the port is not (or no longer) a port of this switch".into(),
    }
}

/// `ENODEV` (Linux).
const ENODEV: i32 = 19;

impl FlowDevice for EthdevFlows {
    type Handle = FlowRule;

    fn validate(&mut self, port: u16, rule: &Rule) -> Result<(), FlowError> {
        let p = self.ports.get(&port).ok_or_else(|| no_port("rte_flow_validate", port))?;
        flow::validate(p, rule)
    }

    fn create(&mut self, port: u16, rule: &Rule) -> Result<FlowRule, FlowError> {
        let p = self.ports.get(&port).ok_or_else(|| no_port("rte_flow_create", port))?;
        flow::create(p, rule)
    }

    fn destroy(&mut self, handle: FlowRule) -> Result<(), FlowError> {
        handle.destroy()
    }

    fn query(&mut self, handle: &FlowRule) -> Result<FlowCount, FlowError> {
        handle.query_count()
    }

    fn meter_create(&mut self, port: u16, id: u32, spec: &MeterSpec) -> Result<(), FlowError> {
        let p = self.ports.get(&port).ok_or_else(|| no_port("rte_mtr_create", port))?;
        mtr::create(p, id, spec)
    }

    fn meter_destroy(&mut self, port: u16, id: u32) -> Result<(), FlowError> {
        let p = self.ports.get(&port).ok_or_else(|| no_port("rte_mtr_destroy", port))?;
        mtr::destroy(p, id)
    }

    fn meter_stats(&mut self, port: u16, id: u32) -> Result<MeterStats, FlowError> {
        let p = self.ports.get(&port).ok_or_else(|| no_port("rte_mtr_stats_read", port))?;
        mtr::stats(p, id)
    }

    fn set_port(&mut self, id: u16, port: Option<Arc<Port>>) {
        match port {
            Some(p) => self.ports.insert(id, p),
            None => self.ports.remove(&id),
        };
    }
}

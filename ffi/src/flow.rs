//! rte_flow. Today: validating a probe rule, to learn whether a port can offload at
//! all. Rule creation, queries and destruction come with the offload manager.

use std::ffi::CStr;

use crate::port::Port;
use crate::{errno_name, raw};

/// Why `rte_flow_validate` refused a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rte_flow_validate(port {port}): {message} ({errno_name}, error type {kind})", errno_name = errno_name(*.errno))]
pub struct FlowError {
    /// The DPDK port id.
    pub port: u16,
    /// The positive errno (`ENOSYS`: the PMD has no flow ops; `ENOTSUP`: an item or
    /// action is not supported).
    pub errno: i32,
    /// `rte_flow_error_type` of the refusal.
    pub kind: u32,
    /// The PMD's message, or strerror when it gave none.
    pub message: String,
}

/// Validate the simplest ingress rule — match any Ethernet frame, send it to `queue` —
/// on `port`. `Ok` means the PMD implements rte_flow and accepts basic rules.
pub fn validate_eth_to_queue(port: &Port, queue: u16) -> Result<(), FlowError> {
    let mut attr = raw::rte_flow_attr::default();
    attr.set_ingress(1);
    let pattern = [
        raw::rte_flow_item { type_: raw::rte_flow_item_type::RTE_FLOW_ITEM_TYPE_ETH, ..Default::default() },
        raw::rte_flow_item { type_: raw::rte_flow_item_type::RTE_FLOW_ITEM_TYPE_END, ..Default::default() },
    ];
    let queue_conf = raw::rte_flow_action_queue { index: queue };
    let actions = [
        raw::rte_flow_action {
            type_: raw::rte_flow_action_type::RTE_FLOW_ACTION_TYPE_QUEUE,
            conf: (&queue_conf as *const raw::rte_flow_action_queue).cast(),
        },
        raw::rte_flow_action { type_: raw::rte_flow_action_type::RTE_FLOW_ACTION_TYPE_END, conf: std::ptr::null() },
    ];
    let mut err = raw::rte_flow_error::default();
    let id = port.id().0;
    // SAFETY: id is an attached port (we borrow it); attr, pattern and actions are valid,
    // END-terminated and outlive the call; err is a valid out struct. Validation creates
    // nothing and may run concurrently with polling.
    let ret = unsafe { raw::rte_flow_validate(id, &attr, pattern.as_ptr(), actions.as_ptr(), &mut err) };
    if ret == 0 {
        return Ok(());
    }
    let errno = ret.saturating_abs();
    let message = if err.message.is_null() {
        // SAFETY: rte_strerror returns a valid NUL-terminated string for any value.
        unsafe { CStr::from_ptr(raw::rte_strerror(errno)) }.to_string_lossy().into_owned()
    } else {
        // SAFETY: the PMD sets message to a static NUL-terminated string.
        unsafe { CStr::from_ptr(err.message) }.to_string_lossy().into_owned()
    };
    Err(FlowError { port: id, errno, kind: err.type_.0, message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::{Mempool, DEFAULT_DATA_ROOM};
    use crate::port::PortConf;

    #[test]
    fn net_null_has_no_flow_ops() {
        let eal = crate::test_eal::eal();
        let pool = Mempool::create(eal, "flow_test_null", 1023, 0, DEFAULT_DATA_ROOM, None).unwrap();
        let mut port = Port::attach(eal, "f", "net_null_ftest0,no-rx=1").unwrap();
        port.configure(pool, &PortConf::default()).unwrap();
        let err = validate_eth_to_queue(&port, 0).unwrap_err();
        assert_eq!(err.errno, libc::ENOSYS, "{err}");
        assert!(err.to_string().starts_with("rte_flow_validate(port "), "{err}");
    }
}

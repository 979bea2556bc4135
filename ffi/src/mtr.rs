//! rte_mtr: the metering and policing objects a flow rule's [`Action::Meter`] runs
//! packets through, in the NIC.
//!
//! One [`MeterSpec`] becomes three DPDK objects with the same id on a port: a meter
//! profile (RFC 2698 trTCM, in bytes or packets — what v1model meters are), a policy
//! (one action list per color, each ending with its fate), and the MTR object using
//! both, color-blind, with per-color packet and byte statistics. [`create`] makes
//! all three or none; [`destroy`] removes them in reverse. A PMD without metering
//! (every virtual device of DPDK 22.11 here) fails the first call with `ENOSYS`.

use crate::flow::{Action, FlowError, Rule};
use crate::port::Port;
use crate::raw;

/// A trTCM profile (RFC 2698), in bytes (or packets) per second and bytes (or packets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Profile {
    /// Committed rate.
    pub cir: u64,
    /// Peak rate (≥ `cir`).
    pub pir: u64,
    /// Committed burst.
    pub cbs: u64,
    /// Peak burst.
    pub pbs: u64,
    /// Rates and bursts count packets (else bytes).
    pub packets: bool,
}

/// What a meter object is: its marker and, per color (GREEN, YELLOW, RED), the
/// actions a packet of that color gets, ending with a fate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MeterSpec {
    /// The marker.
    pub profile: Profile,
    /// Actions per color.
    pub colors: [Vec<Action>; 3],
}

/// Packets and bytes the meter colored, per color (GREEN, YELLOW, RED).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeterStats {
    /// Packets.
    pub packets: [u64; 3],
    /// Bytes.
    pub bytes: [u64; 3],
}

fn check(op: &'static str, port: u16, ret: i32, err: &raw::rte_mtr_error) -> Result<(), FlowError> {
    if ret == 0 {
        Ok(())
    } else {
        Err(FlowError::from_parts(op, port, ret, err.type_.0, err.message))
    }
}

/// All the statistics a meter object keeps.
const STATS_MASK: u64 = 0xff;

/// Create meter object `id` (and its profile and policy, same id) on `port`. On
/// failure nothing is left behind.
pub fn create(port: &Port, id: u32, spec: &MeterSpec) -> Result<(), FlowError> {
    let p = port.id().0;
    let mut err = raw::rte_mtr_error::default();
    let mut prof = raw::rte_mtr_meter_profile {
        alg: raw::rte_mtr_algorithm::RTE_MTR_TRTCM_RFC2698,
        packet_mode: spec.profile.packets as i32,
        ..Default::default()
    };
    prof.__bindgen_anon_1.trtcm_rfc2698 = raw::rte_mtr_meter_profile__bindgen_ty_1__bindgen_ty_2 {
        cir: spec.profile.cir,
        pir: spec.profile.pir,
        cbs: spec.profile.cbs,
        pbs: spec.profile.pbs,
    };
    // SAFETY: p is an attached port (borrowed); prof and err are valid for the call.
    let ret = unsafe { raw::rte_mtr_meter_profile_add(p, id, &mut prof, &mut err) };
    check("rte_mtr_meter_profile_add", p, ret, &err)?;
    // The color lists in DPDK's structures; each END-terminated, alive until the
    // policy is added (DPDK copies them).
    let lists: Vec<_> = spec
        .colors
        .iter()
        .map(|c| crate::flow::RawRule::new(&Rule { actions: c.clone(), ..Rule::default() }))
        .collect();
    let mut policy = raw::rte_mtr_meter_policy_params::default();
    for (i, l) in lists.iter().enumerate() {
        policy.actions[i] = l.actions.as_ptr();
    }
    // SAFETY: as above; every actions pointer is an END-terminated list kept in `lists`.
    let ret = unsafe { raw::rte_mtr_meter_policy_add(p, id, &mut policy, &mut err) };
    if let Err(e) = check("rte_mtr_meter_policy_add", p, ret, &err) {
        // SAFETY: the profile was added above and has no user.
        unsafe { raw::rte_mtr_meter_profile_delete(p, id, &mut err) };
        return Err(e);
    }
    let mut params = raw::rte_mtr_params {
        meter_profile_id: id,
        meter_enable: 1,
        stats_mask: STATS_MASK,
        meter_policy_id: id,
        ..Default::default()
    };
    // SAFETY: as above; the null color tables make the object color-blind. Shared: more
    // than one rule may use it.
    let ret = unsafe { raw::rte_mtr_create(p, id, &mut params, 1, &mut err) };
    if let Err(e) = check("rte_mtr_create", p, ret, &err) {
        // SAFETY: policy and profile were added above and have no user.
        unsafe {
            raw::rte_mtr_meter_policy_delete(p, id, &mut err);
            raw::rte_mtr_meter_profile_delete(p, id, &mut err);
        }
        return Err(e);
    }
    Ok(())
}

/// Destroy meter object `id` and its policy and profile (no rule may use it any more).
/// Every step is tried; the first failure is returned.
pub fn destroy(port: &Port, id: u32) -> Result<(), FlowError> {
    let p = port.id().0;
    let mut err = raw::rte_mtr_error::default();
    // SAFETY: p is an attached port (borrowed); err is valid for each call; DPDK checks
    // the ids.
    let r1 = unsafe { raw::rte_mtr_destroy(p, id, &mut err) };
    let e1 = check("rte_mtr_destroy", p, r1, &err);
    // SAFETY: as above.
    let r2 = unsafe { raw::rte_mtr_meter_policy_delete(p, id, &mut err) };
    let e2 = check("rte_mtr_meter_policy_delete", p, r2, &err);
    // SAFETY: as above.
    let r3 = unsafe { raw::rte_mtr_meter_profile_delete(p, id, &mut err) };
    let e3 = check("rte_mtr_meter_profile_delete", p, r3, &err);
    e1.and(e2).and(e3)
}

/// Meter object `id`'s statistics since it was created.
pub fn stats(port: &Port, id: u32) -> Result<MeterStats, FlowError> {
    let p = port.id().0;
    let mut err = raw::rte_mtr_error::default();
    let mut s = raw::rte_mtr_stats::default();
    let mut mask = 0u64;
    // SAFETY: p is an attached port (borrowed); s, mask and err are valid out structs;
    // clear = 0 keeps the counters.
    let ret = unsafe { raw::rte_mtr_stats_read(p, id, &mut s, &mut mask, 0, &mut err) };
    check("rte_mtr_stats_read", p, ret, &err)?;
    Ok(MeterStats { packets: s.n_pkts, bytes: s.n_bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::{Mempool, DEFAULT_DATA_ROOM};
    use crate::port::PortConf;

    #[test]
    fn net_null_has_no_meter_ops_and_is_left_as_it_was() {
        let eal = crate::test_eal::eal();
        let pool = Mempool::create(eal, "mtr_test_null", 1023, 0, DEFAULT_DATA_ROOM, None).unwrap();
        let mut port = Port::attach(eal, "m", "net_null_mtest0,no-rx=1").unwrap();
        port.configure(pool, &PortConf::default()).unwrap();
        let spec = MeterSpec {
            profile: Profile { cir: 1000, pir: 2000, cbs: 1500, pbs: 3000, packets: false },
            colors: [vec![Action::RepresentedPort(1)], vec![Action::RepresentedPort(1)], vec![Action::Drop]],
        };
        let err = create(&port, 7, &spec).unwrap_err();
        assert_eq!((err.op, err.errno), ("rte_mtr_meter_profile_add", libc::ENOSYS), "{err}");
        assert!(err.to_string().starts_with("rte_mtr_meter_profile_add(port "), "{err}");
        assert_eq!(stats(&port, 7).unwrap_err().errno, libc::ENOSYS);
        let err = destroy(&port, 7).unwrap_err();
        assert_eq!(err.op, "rte_mtr_destroy", "{err}");
    }
}

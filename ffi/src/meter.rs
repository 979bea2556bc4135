//! Traffic meters: DPDK's `rte_meter` (RFC 2698 trTCM, RFC 2697 srTCM, RFC 4115
//! trTCM), color-blind.
//!
//! A [`Meter`] owns its profile (rates turned into TSC periods, computed once by
//! `rte_meter_*_profile_config` from the EAL's TSC frequency) and its run-time state
//! (token buckets and their last update times), both plain C structs: a meter is
//! `Copy`, has no pointers into DPDK, and the checks are DPDK's `static inline`
//! functions — no allocation, lock or syscall. The caller passes the time (TSC
//! cycles) of each check, so tests drive meters with a synthetic clock.
//!
//! Units: `rte_meter` counts bytes. A packets-mode meter passes a length of 1 per
//! packet and its rates in packets per second.

use crate::raw;
use crate::{DpdkError, Result};

/// A packet's color.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Color {
    /// Within the committed rate.
    Green = 0,
    /// Above the committed rate, within the peak (or excess) rate.
    Yellow = 1,
    /// Above the peak rate.
    Red = 2,
}

impl Color {
    fn from_raw(c: raw::rte_color) -> Color {
        match c {
            raw::rte_color::RTE_COLOR_GREEN => Color::Green,
            raw::rte_color::RTE_COLOR_YELLOW => Color::Yellow,
            _ => Color::Red,
        }
    }
}

/// Which marker, with its rates (units per second) and bursts (units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeterParams {
    /// RFC 2698 two-rate three-color marker (what v1model meters are).
    TrTcm {
        /// Committed rate.
        cir: u64,
        /// Committed burst.
        cbs: u64,
        /// Peak rate (≥ `cir`).
        pir: u64,
        /// Peak burst.
        pbs: u64,
    },
    /// RFC 2697 single-rate three-color marker.
    SrTcm {
        /// Committed rate.
        cir: u64,
        /// Committed burst.
        cbs: u64,
        /// Excess burst.
        ebs: u64,
    },
    /// RFC 4115 two-rate three-color marker (excess rate on top of the committed).
    TrTcm4115 {
        /// Committed rate.
        cir: u64,
        /// Committed burst.
        cbs: u64,
        /// Excess rate.
        eir: u64,
        /// Excess burst.
        ebs: u64,
    },
}

#[derive(Debug, Clone, Copy)]
enum Inner {
    Tr(raw::rte_meter_trtcm_profile, raw::rte_meter_trtcm),
    Sr(raw::rte_meter_srtcm_profile, raw::rte_meter_srtcm),
    Rfc4115(raw::rte_meter_trtcm_rfc4115_profile, raw::rte_meter_trtcm_rfc4115),
}

/// A configured meter: profile and state.
#[derive(Debug, Clone, Copy)]
pub struct Meter {
    params: MeterParams,
    inner: Inner,
}

fn invalid(what: &'static str, params: &MeterParams, ret: i32) -> DpdkError {
    DpdkError::new(what, format!("{params:?}"), -ret)
}

/// The EAL's TSC frequency (0 until the EAL is initialised).
fn tsc_hz() -> u64 {
    // SAFETY: reads a global set at EAL init; valid before it (returns 0).
    unsafe { raw::rte_get_tsc_hz() }
}

impl Meter {
    /// A meter with full buckets at time `now` (TSC cycles). Fails when the EAL is
    /// not initialised (the profile needs its TSC frequency) or DPDK refuses the
    /// parameters (a zero rate or burst, a peak rate below the committed).
    pub fn new(params: MeterParams, now: u64) -> Result<Meter> {
        if tsc_hz() == 0 {
            return Err(DpdkError::new("rte_meter profile", "the EAL is not initialised (no TSC frequency)", 22));
        }
        let inner = match params {
            MeterParams::TrTcm { cir, cbs, pir, pbs } => {
                let mut prm = raw::rte_meter_trtcm_params { cir, pir, cbs, pbs };
                let mut p = raw::rte_meter_trtcm_profile::default();
                // SAFETY: both pointers are to live locals of the right types; the
                // function reads `prm`, writes `p`, and checks the values itself.
                let ret = unsafe { raw::rte_meter_trtcm_profile_config(&mut p, &mut prm) };
                if ret != 0 {
                    return Err(invalid("rte_meter_trtcm_profile_config", &params, ret));
                }
                let mut m = raw::rte_meter_trtcm::default();
                // SAFETY: as above; `p` was accepted by the profile call.
                let ret = unsafe { raw::rte_meter_trtcm_config(&mut m, &mut p) };
                if ret != 0 {
                    return Err(invalid("rte_meter_trtcm_config", &params, ret));
                }
                (m.time_tc, m.time_tp) = (now, now);
                Inner::Tr(p, m)
            }
            MeterParams::SrTcm { cir, cbs, ebs } => {
                let mut prm = raw::rte_meter_srtcm_params { cir, cbs, ebs };
                let mut p = raw::rte_meter_srtcm_profile::default();
                // SAFETY: pointers to live locals; see the trTCM case.
                let ret = unsafe { raw::rte_meter_srtcm_profile_config(&mut p, &mut prm) };
                if ret != 0 {
                    return Err(invalid("rte_meter_srtcm_profile_config", &params, ret));
                }
                let mut m = raw::rte_meter_srtcm::default();
                // SAFETY: pointers to live locals; `p` was accepted.
                let ret = unsafe { raw::rte_meter_srtcm_config(&mut m, &mut p) };
                if ret != 0 {
                    return Err(invalid("rte_meter_srtcm_config", &params, ret));
                }
                m.time = now;
                Inner::Sr(p, m)
            }
            MeterParams::TrTcm4115 { cir, cbs, eir, ebs } => {
                let mut prm = raw::rte_meter_trtcm_rfc4115_params { cir, eir, cbs, ebs };
                let mut p = raw::rte_meter_trtcm_rfc4115_profile::default();
                // SAFETY: pointers to live locals; see the trTCM case.
                let ret = unsafe { raw::rte_meter_trtcm_rfc4115_profile_config(&mut p, &mut prm) };
                if ret != 0 {
                    return Err(invalid("rte_meter_trtcm_rfc4115_profile_config", &params, ret));
                }
                let mut m = raw::rte_meter_trtcm_rfc4115::default();
                // SAFETY: pointers to live locals; `p` was accepted.
                let ret = unsafe { raw::rte_meter_trtcm_rfc4115_config(&mut m, &mut p) };
                if ret != 0 {
                    return Err(invalid("rte_meter_trtcm_rfc4115_config", &params, ret));
                }
                (m.time_tc, m.time_te) = (now, now);
                Inner::Rfc4115(p, m)
            }
        };
        Ok(Meter { params, inner })
    }

    /// Change the rates and bursts of a running meter, keeping its buckets: tokens
    /// carry over (capped at the new burst sizes) and so do the buckets' update
    /// times, so a rate change neither refills nor empties a bucket. This is how a
    /// worker's share of a meter follows its traffic. The marker kind must stay the
    /// same; on error the meter is unchanged.
    pub fn reshape(&mut self, params: MeterParams, now: u64) -> Result<()> {
        let fresh = Meter::new(params, now)?;
        self.inner = match (self.inner, fresh.inner) {
            (Inner::Tr(_, old), Inner::Tr(p, mut m)) => {
                (m.time_tc, m.time_tp) = (old.time_tc, old.time_tp);
                (m.tc, m.tp) = (old.tc.min(p.cbs), old.tp.min(p.pbs));
                Inner::Tr(p, m)
            }
            (Inner::Sr(_, old), Inner::Sr(p, mut m)) => {
                m.time = old.time;
                (m.tc, m.te) = (old.tc.min(p.cbs), old.te.min(p.ebs));
                Inner::Sr(p, m)
            }
            (Inner::Rfc4115(_, old), Inner::Rfc4115(p, mut m)) => {
                (m.time_tc, m.time_te) = (old.time_tc, old.time_te);
                (m.tc, m.te) = (old.tc.min(p.cbs), old.te.min(p.ebs));
                Inner::Rfc4115(p, m)
            }
            _ => {
                return Err(DpdkError::new(
                    "rte_meter reshape",
                    format!("{:?} to {params:?}: the marker kind cannot change", self.params),
                    22,
                ))
            }
        };
        self.params = params;
        Ok(())
    }

    /// The parameters it was made with.
    pub fn params(&self) -> MeterParams {
        self.params
    }

    /// Color a packet of `len` units (bytes, or 1 for a packet) at time `now` (TSC
    /// cycles, not before the last check's).
    #[inline]
    pub fn check(&mut self, now: u64, len: u32) -> Color {
        let c = match &mut self.inner {
            // SAFETY: profile and state are owned, initialised by their config calls;
            // the check reads the profile and updates the state in place.
            Inner::Tr(p, m) => unsafe { raw::rte_meter_trtcm_color_blind_check(m, p, now, len) },
            // SAFETY: as above.
            Inner::Sr(p, m) => unsafe { raw::rte_meter_srtcm_color_blind_check(m, p, now, len) },
            // SAFETY: as above.
            Inner::Rfc4115(p, m) => unsafe { raw::rte_meter_trtcm_rfc4115_color_blind_check(m, p, now, len) },
        };
        Color::from_raw(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_eal::eal;

    /// Offer `pps` packets of `len` for `secs` seconds of synthetic time; the units
    /// colored green, yellow, red per second.
    fn offer(m: &mut Meter, pps: u64, len: u32, secs: u64) -> [f64; 3] {
        let hz = tsc_hz();
        let mut units = [0u64; 3];
        let n = pps * secs;
        for i in 0..n {
            let t = 1_000 + i * hz / pps;
            units[m.check(t, len) as usize] += len as u64;
        }
        units.map(|u| u as f64 / secs as f64)
    }

    #[test]
    fn a_meter_needs_the_eal_or_refuses_bad_rates() {
        let _ = eal();
        let bad = MeterParams::TrTcm { cir: 2000, cbs: 100, pir: 1000, pbs: 100 };
        let e = Meter::new(bad, 0).unwrap_err();
        assert!(e.to_string().contains("rte_meter_trtcm_profile_config"), "{e}");
        assert!(Meter::new(MeterParams::TrTcm { cir: 0, cbs: 1, pir: 1, pbs: 1 }, 0).is_err());
    }

    #[test]
    fn trtcm_passes_cir_green_and_pir_minus_cir_yellow() {
        let _ = eal();
        let t0 = 1_000;
        // Bytes: 1 Mbit/s committed, 2 Mbit/s peak; 1500-byte packets at 4 Mbit/s.
        let p = MeterParams::TrTcm { cir: 125_000, cbs: 3000, pir: 250_000, pbs: 3000 };
        let mut m = Meter::new(p, t0).unwrap();
        let [g, y, r] = offer(&mut m, 500_000 / 1500, 1500, 20);
        assert!((g / 125_000.0 - 1.0).abs() < 0.02, "green {g} B/s");
        assert!((y / 125_000.0 - 1.0).abs() < 0.02, "yellow {y} B/s");
        assert!(r > 0.0);
        // Packets: 1000 pkt/s committed, 64-byte packets at 5000 pkt/s, length 1 each.
        let p = MeterParams::TrTcm { cir: 1000, cbs: 10, pir: 1000, pbs: 10 };
        let mut m = Meter::new(p, t0).unwrap();
        let [g, y, _] = offer(&mut m, 5000, 1, 20);
        assert!((g / 1000.0 - 1.0).abs() < 0.02, "green {g} pkt/s");
        assert_eq!(y, 0.0);
    }

    #[test]
    fn srtcm_and_rfc4115_color_within_their_rates() {
        let _ = eal();
        let mut m = Meter::new(MeterParams::SrTcm { cir: 10_000, cbs: 1500, ebs: 3000 }, 1_000).unwrap();
        let [g, _, r] = offer(&mut m, 100, 1500, 20);
        assert!((g / 10_000.0 - 1.0).abs() < 0.05, "green {g}");
        assert!(r > 0.0);
        let p = MeterParams::TrTcm4115 { cir: 10_000, cbs: 1500, eir: 5_000, ebs: 1500 };
        let mut m = Meter::new(p, 1_000).unwrap();
        let [g, y, _] = offer(&mut m, 100, 1500, 20);
        assert!((g / 10_000.0 - 1.0).abs() < 0.05, "green {g}");
        assert!((y / 5_000.0 - 1.0).abs() < 0.1, "yellow {y}");
        assert_eq!(m.params(), p);
    }
    #[test]
    fn reshape_keeps_the_buckets_and_changes_the_rate() {
        let _ = eal();
        let hz = tsc_hz();
        let p = MeterParams::TrTcm { cir: 1000, cbs: 100, pir: 1000, pbs: 100 };
        let mut m = Meter::new(p, 1_000).unwrap();
        // Drain the full buckets (100 units) at time 1000: no refill, then red.
        for _ in 0..100 {
            assert_eq!(m.check(1_000, 1), Color::Green);
        }
        assert_eq!(m.check(1_000, 1), Color::Red);
        // A reshape neither refills nor resets: still red at the same instant.
        let q = MeterParams::TrTcm { cir: 4000, cbs: 50, pir: 4000, pbs: 50 };
        m.reshape(q, 1_000).unwrap();
        assert_eq!(m.check(1_000, 1), Color::Red);
        assert_eq!(m.params(), q);
        // The new rate from now on: 4000 units/s over 10 s.
        let mut green = 0;
        for i in 1..=160_000u64 {
            if m.check(1_000 + i * hz / 16_000, 1) == Color::Green {
                green += 1;
            }
        }
        let rate = green as f64 / 10.0;
        assert!((rate / 4000.0 - 1.0).abs() < 0.02, "{rate}/s");
        // Tokens above a smaller burst are capped, and the kind cannot change.
        let mut full = Meter::new(p, 0).unwrap();
        full.reshape(MeterParams::TrTcm { cir: 1000, cbs: 10, pir: 1000, pbs: 10 }, 0).unwrap();
        assert_eq!((0..11).filter(|_| full.check(0, 1) == Color::Green).count(), 10);
        let e = full.reshape(MeterParams::SrTcm { cir: 1, cbs: 1, ebs: 1 }, 0).unwrap_err();
        assert!(e.to_string().contains("kind cannot change"), "{e}");
    }
}

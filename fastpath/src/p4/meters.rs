//! P4 meters (v1model `meter` / `direct_meter`) on DPDK's `rte_meter`.
//!
//! v1model meters are RFC 2698 two-rate three-color markers, color-blind, in packets
//! or bytes (a packets meter checks a length of 1 per packet): GREEN (0) within the
//! committed rate, YELLOW (1) within the peak rate, RED (2) above it. A cell that was
//! never configured marks GREEN, as BMv2 does.
//!
//! # State and workers
//! Each worker's [`Runtime`](super::tables::Runtime) has its own cells (no sharing,
//! no atomics on the packet path). With `n` workers, each cell is configured with
//! `1/n` of the rates and bursts ([`MeterShare`]), so `n` workers that each see a
//! share of the traffic together enforce the configured rates; that holds when RSS
//! spreads a meter's traffic evenly, and a meter whose traffic lands on one worker
//! out of `n` passes only `1/n` of its rate (the price of lock-free cells; a rebalancer
//! that moves rate to where the traffic is would lift it). Control's copy of the
//! state keeps the configs only (`share` `None`): it never colors a packet.
//!
//! # Cost and the cache
//! A configured cell costs one `rte_meter_trtcm_color_blind_check` (a few tens of
//! cycles) per packet, and makes the packet's flow uncacheable: its color (hence
//! what the program does next) changes from packet to packet, so no megaflow may
//! freeze it. Unconfigured cells (GREEN, always) stay cacheable; configuring a meter
//! invalidates the megaflows that executed one ([`crate::cache::Change::Meters`]).

use dpdk_sys::meter::{Meter, MeterParams};

/// Colors as v1model programs read them.
pub const GREEN: u128 = 0;

/// A meter cell's configuration, in the meter's units (packets or bytes) per second
/// and units: P4Runtime's `MeterConfig` for v1model (trTCM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct MeterConfig {
    /// Committed information rate.
    pub cir: u64,
    /// Committed burst size.
    pub cburst: u64,
    /// Peak information rate.
    pub pir: u64,
    /// Peak burst size.
    pub pburst: u64,
}

impl MeterConfig {
    /// Why `rte_meter` would refuse it, if it would.
    pub fn check(&self) -> Result<(), String> {
        if self.cir == 0 || self.pir == 0 || self.cburst == 0 || self.pburst == 0 {
            return Err(format!("meter config {self:?}: rates and bursts must be > 0 (rte_meter trTCM)"));
        }
        if self.pir < self.cir {
            return Err(format!("meter config {self:?}: pir must be >= cir"));
        }
        Ok(())
    }

    /// Scaled to a worker's share (never below 1 unit).
    fn scaled(&self, s: MeterShare) -> MeterParams {
        let f = |v: u64| (v as u128 * s.num as u128 / s.den.max(1) as u128).max(1) as u64;
        MeterParams::TrTcm { cir: f(self.cir), cbs: f(self.cburst), pir: f(self.pir), pbs: f(self.pburst) }
    }
}

/// The part of each configured rate a worker's cells enforce: `num / den`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterShare {
    /// Numerator.
    pub num: u32,
    /// Denominator.
    pub den: u32,
}

/// A configured meter cell: its config, its marker (in workers) and color counts.
#[derive(Debug, Clone, Copy)]
pub struct MeterCell {
    /// The configuration.
    pub config: MeterConfig,
    meter: Option<Meter>,
    /// Packets and units marked GREEN, YELLOW, RED.
    pub counts: [(u64, u64); 3],
}

impl MeterCell {
    /// A cell for `config`; with a `share`, a running marker with full buckets at
    /// `now` (TSC cycles).
    pub fn new(config: MeterConfig, share: Option<MeterShare>, now: u64) -> Result<MeterCell, String> {
        config.check()?;
        let meter = match share {
            Some(s) => Some(Meter::new(config.scaled(s), now).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(MeterCell { config, meter, counts: [(0, 0); 3] })
    }

    /// Color a packet of `units` (1, or its length in bytes) at `now`, and count it.
    #[inline]
    pub fn check(&mut self, now: u64, units: u32, bytes: u64) -> u128 {
        let c = match &mut self.meter {
            Some(m) => m.check(now, units) as usize,
            None => 0,
        };
        self.counts[c].0 += 1;
        self.counts[c].1 += bytes;
        c as u128
    }
}

impl super::tables::Runtime {
    /// Make this state a worker's: its meter cells enforce `share` of each configured
    /// rate (cells configured so far get running markers with full buckets).
    pub fn set_meter_share(&mut self, share: MeterShare) -> Result<(), String> {
        self.meter_share = Some(share);
        let now = dpdk_sys::lcore::rdtsc();
        for cell in self.meters.iter_mut().flatten().flatten() {
            *cell = MeterCell::new(cell.config, Some(share), now)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_are_checked_and_shares_scale_rates() {
        assert!(MeterConfig { cir: 0, cburst: 1, pir: 1, pburst: 1 }.check().is_err());
        assert!(MeterConfig { cir: 2, cburst: 1, pir: 1, pburst: 1 }.check().is_err());
        let c = MeterConfig { cir: 1000, cburst: 100, pir: 3000, pburst: 1 };
        assert_eq!(
            c.scaled(MeterShare { num: 1, den: 4 }),
            MeterParams::TrTcm { cir: 250, cbs: 25, pir: 750, pbs: 1 },
            "a share never goes below one unit"
        );
        // Control's copy: a config without a marker colors GREEN and counts.
        let mut cell = MeterCell::new(c, None, 0).unwrap();
        assert_eq!(cell.check(5, 1, 64), GREEN);
        assert_eq!(cell.counts[0], (1, 64));
    }
}

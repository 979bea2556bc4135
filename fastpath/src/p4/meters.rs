//! P4 meters (v1model `meter` / `direct_meter`) on DPDK's `rte_meter`.
//!
//! v1model meters are RFC 2698 two-rate three-color markers, color-blind, in packets
//! or bytes (a packets meter checks a length of 1 per packet): GREEN (0) within the
//! committed rate, YELLOW (1) within the peak rate, RED (2) above it. A cell that was
//! never configured marks GREEN, as BMv2 does.
//!
//! # State and workers
//! Each worker's [`Runtime`](super::tables::Runtime) has its own cells (no sharing,
//! no atomics on the packet path). Each cell enforces the worker's [`Share`] of the
//! configured rates and bursts; new cells start with an even share (`1/n` for `n`
//! workers) and the control side's balancer moves shares to the workers where each
//! cell's traffic is (see [`crate::qos`] for how, how accurately, and at what cost).
//! Control's copy of the state keeps the configs only (`share` `None`): it never
//! colors a packet.
//!
//! # Cost and the cache
//! A configured cell costs one `rte_meter_trtcm_color_blind_check` (a few tens of
//! cycles) per packet. Its color (hence what the program does next) changes from
//! packet to packet, so no megaflow may freeze it: the megaflow of a metered flow
//! executes the cell per packet and holds the outcome of each color (see
//! [`crate::cache`], "Metered megaflows"). Unconfigured cells (GREEN, always) are
//! frozen like any constant; configuring a meter invalidates the megaflows that
//! executed one ([`crate::cache::Change::Meters`]).

use dpdk_sys::meter::{Meter, MeterParams};

use crate::qos::{Offered, RateId, Share, MAX_FRAME};

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

    /// Scaled to a worker's share; bursts keep room for one frame (bytes meters) or
    /// one packet.
    fn scaled(&self, s: Share, bytes: bool) -> MeterParams {
        let unit = if bytes { MAX_FRAME } else { 1 };
        MeterParams::TrTcm {
            cir: s.rate(self.cir),
            cbs: s.burst(self.cburst, unit),
            pir: s.rate(self.pir),
            pbs: s.burst(self.pburst, unit),
        }
    }
}

/// A configured meter cell: its config, its marker (in workers) and color counts.
#[derive(Debug, Clone, Copy)]
pub struct MeterCell {
    /// The configuration.
    pub config: MeterConfig,
    meter: Option<Meter>,
    /// This worker's part of the rates.
    pub share: Share,
    /// Bytes (else packets) meter.
    bytes: bool,
    /// Packets and bytes marked GREEN, YELLOW, RED.
    pub counts: [(u64, u64); 3],
}

impl MeterCell {
    /// A cell for `config` of a bytes (else packets) meter; with a `share`, a running
    /// marker with full buckets at `now` (TSC cycles).
    pub fn new(config: MeterConfig, share: Option<Share>, now: u64, bytes: bool) -> Result<MeterCell, String> {
        config.check()?;
        let meter = match share {
            Some(s) => Some(Meter::new(config.scaled(s, bytes), now).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(MeterCell { config, meter, share: share.unwrap_or(Share::WHOLE), bytes, counts: [(0, 0); 3] })
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

    /// Units offered so far (all colors): bytes or packets.
    pub fn offered(&self) -> u64 {
        self.counts.iter().map(|(p, b)| if self.bytes { *b } else { *p }).sum()
    }

    /// Packets offered so far (all colors).
    pub fn packets(&self) -> u64 {
        self.counts.iter().map(|(p, _)| *p).sum()
    }

    /// Enforce `share` from now on, keeping the buckets' tokens.
    pub fn reshare(&mut self, share: Share, now: u64) -> Result<(), String> {
        if let Some(m) = &mut self.meter {
            m.reshape(self.config.scaled(share, self.bytes), now).map_err(|e| e.to_string())?;
        }
        self.share = share;
        Ok(())
    }
}

impl super::tables::Runtime {
    /// Make this state a worker's: new meter cells enforce `share` of their rates,
    /// and cells configured so far get running markers with full buckets and that
    /// share.
    pub fn set_meter_share(&mut self, share: Share, ir: &super::ir::Ir) -> Result<(), String> {
        self.meter_share = Some(share);
        let now = dpdk_sys::lcore::rdtsc();
        for (m, cells) in self.meters.iter_mut().enumerate() {
            let bytes = ir.meters[m].bytes;
            for cell in cells.iter_mut().flatten() {
                *cell = MeterCell::new(cell.config, Some(share), now, bytes)?;
            }
        }
        Ok(())
    }

    /// What the balancer needs of this worker's configured cells: units offered so
    /// far and the share now (appended to `out`).
    pub fn meter_offered(&self, out: &mut Vec<Offered>) {
        for (m, cells) in self.meters.iter().enumerate() {
            for (i, c) in cells.iter().enumerate() {
                if let Some(c) = c {
                    let id = RateId::Meter { meter: m as u32, cell: i as u32 };
                    out.push(Offered { id, units: c.offered(), packets: c.packets(), share: c.share });
                }
            }
        }
    }

    /// Cell `cell` of meter `meter` enforces `share` from now on (a cell that is no
    /// longer configured is left alone: the next round forgets it).
    pub fn set_cell_share(&mut self, meter: u32, cell: u32, share: Share, now: u64) -> Result<(), String> {
        match self.meters.get_mut(meter as usize).and_then(|c| c.get_mut(cell as usize)) {
            Some(Some(c)) => c.reshare(share, now),
            _ => Ok(()),
        }
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
            c.scaled(Share::even(4), false),
            MeterParams::TrTcm { cir: 250, cbs: 25, pir: 750, pbs: 1 },
            "a share never goes below one unit"
        );
        assert_eq!(
            c.scaled(Share::even(4), true),
            MeterParams::TrTcm { cir: 250, cbs: 100, pir: 750, pbs: 1 },
            "bytes meters: room for a frame, or the whole burst if smaller"
        );
        // Control's copy: a config without a marker colors GREEN and counts.
        let mut cell = MeterCell::new(c, None, 0, true).unwrap();
        assert_eq!(cell.check(5, 1, 64), GREEN);
        assert_eq!(cell.counts[0], (1, 64));
        assert_eq!(cell.offered(), 64);
    }
}

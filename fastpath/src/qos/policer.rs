//! Port policers: ingress policing and egress rate limiting per port, on `rte_meter`.
//!
//! The semantics are Open vSwitch's, so operators find what they know:
//! * `eir = 0`: RFC 2697 srTCM with committed rate `cir` and burst `cbs`, and no
//!   excess bucket; a packet passes when GREEN. That is OVS's
//!   `ingress_policing_rate`/`ingress_policing_burst` and its `egress-policer` QoS.
//! * `eir > 0`: RFC 4115 trTCM (`cir`/`cbs` committed, `eir`/`ebs` excess on top);
//!   GREEN and YELLOW pass, RED is dropped. That is OVS's `trtcm-policer`.
//!
//! Rates are bytes per second and bursts bytes (the Ethernet frame without CRC, as
//! `pkt_len` counts it), or packets per second and packets with `packets = true`.
//! A dropped packet is counted as [`crate::stats::DropReason::Policed`] and per port
//! and direction. With several workers, each enforces a [`Share`] of the rates, which
//! the control side's [`super::Balancer`] moves to where the traffic is.

use dpdk_sys::mbuf::Burst;
use dpdk_sys::meter::{Color, Meter, MeterParams};

use super::{Offered, RateId, Share, MAX_FRAME};

/// A policer's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PolicerConfig {
    /// Committed rate (bytes or packets per second).
    pub cir: u64,
    /// Committed burst (bytes or packets).
    pub cbs: u64,
    /// Excess rate on top of `cir` (0: none, srTCM).
    pub eir: u64,
    /// Excess burst (only with `eir`).
    pub ebs: u64,
    /// Count packets instead of bytes.
    pub packets: bool,
}

impl PolicerConfig {
    /// Why it cannot run, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.cir == 0 || self.cbs == 0 {
            return Err(format!("policer {}: cir and cbs must be > 0", self.describe()));
        }
        if self.eir == 0 && self.ebs != 0 {
            return Err(format!("policer {}: ebs needs an excess rate (eir > 0)", self.describe()));
        }
        if self.eir != 0 && self.ebs == 0 {
            return Err(format!("policer {}: an excess rate (eir) needs an excess burst (ebs > 0)", self.describe()));
        }
        Ok(())
    }

    /// For messages: `cir=… cbs=… [eir=… ebs=…] (bytes|packets)`.
    pub fn describe(&self) -> String {
        let unit = if self.packets { "packets" } else { "bytes" };
        if self.eir == 0 {
            format!("cir={} cbs={} ({unit})", self.cir, self.cbs)
        } else {
            format!("cir={} cbs={} eir={} ebs={} ({unit})", self.cir, self.cbs, self.eir, self.ebs)
        }
    }

    fn params(&self, share: Share) -> MeterParams {
        let unit = if self.packets { 1 } else { MAX_FRAME };
        if self.eir == 0 {
            MeterParams::SrTcm { cir: share.rate(self.cir), cbs: share.burst(self.cbs, unit), ebs: 0 }
        } else {
            MeterParams::TrTcm4115 {
                cir: share.rate(self.cir),
                cbs: share.burst(self.cbs, unit),
                eir: share.rate(self.eir),
                ebs: share.burst(self.ebs, unit),
            }
        }
    }
}

/// One worker's policer for one port and direction.
#[derive(Debug, Clone, Copy)]
pub struct Policer {
    config: PolicerConfig,
    share: Share,
    meter: Meter,
    /// Units and packets offered so far (what the balancer splits by).
    offered: u64,
    offered_packets: u64,
}

impl Policer {
    /// A policer enforcing `share` of `config`, with full buckets at `now` (TSC).
    pub fn new(config: PolicerConfig, share: Share, now: u64) -> Result<Policer, String> {
        config.check()?;
        let meter = Meter::new(config.params(share), now).map_err(|e| e.to_string())?;
        Ok(Policer { config, share, meter, offered: 0, offered_packets: 0 })
    }

    /// Its configuration.
    pub fn config(&self) -> PolicerConfig {
        self.config
    }

    /// Its share now.
    pub fn share(&self) -> Share {
        self.share
    }

    /// Units offered so far.
    pub fn offered(&self) -> u64 {
        self.offered
    }

    /// What the balancer needs: offered so far and the share, as rate `id`.
    pub fn report(&self, id: RateId) -> Offered {
        Offered { id, units: self.offered, packets: self.offered_packets, share: self.share }
    }

    /// Enforce `share` from now on, keeping the buckets.
    pub fn reshare(&mut self, share: Share, now: u64) -> Result<(), String> {
        self.meter.reshape(self.config.params(share), now).map_err(|e| e.to_string())?;
        self.share = share;
        Ok(())
    }

    /// Police `burst` at `now`: packets over the rate are freed. Returns (packets,
    /// bytes) dropped.
    #[inline]
    pub fn police(&mut self, burst: &mut Burst, now: u64) -> (usize, u64) {
        let (meter, packets, offered) = (&mut self.meter, self.config.packets, &mut self.offered);
        let srtcm = self.config.eir == 0;
        self.offered_packets += burst.len() as u64;
        burst.retain_by_len(|len| {
            let units = if packets { 1 } else { len };
            *offered += units as u64;
            match meter.check(now, units) {
                Color::Green => true,
                Color::Yellow => !srtcm,
                Color::Red => false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpdk_sys::eal::Eal;
    use dpdk_sys::mbuf::Mbuf;
    use dpdk_sys::mempool::{Mempool, DEFAULT_DATA_ROOM};

    fn setup(name: &str) -> (u64, &'static Mempool) {
        let eal = Eal::for_tests("sluice-fastpath-test");
        let pool = Mempool::create(eal, name, 1023, 0, DEFAULT_DATA_ROOM, None).unwrap();
        (dpdk_sys::lcore::tsc_hz(eal), pool)
    }

    /// Offer `secs` of `pps` bursts of one `len`-byte packet; bytes passed per second.
    fn offer(p: &mut Policer, pool: &Mempool, hz: u64, pps: u64, len: usize, secs: u64) -> f64 {
        let mut passed = 0u64;
        for i in 0..pps * secs {
            let mut b = Burst::new();
            b.push(Mbuf::from_bytes(pool, &vec![0; len]).unwrap()).unwrap();
            let (dropped, _) = p.police(&mut b, 1_000 + i * hz / pps);
            assert_eq!(dropped + b.len(), 1);
            passed += b.len() as u64 * len as u64;
        }
        passed as f64 / secs as f64
    }

    #[test]
    fn configs_are_checked_with_clear_errors() {
        let ok = PolicerConfig { cir: 1000, cbs: 1500, ..Default::default() };
        assert!(ok.check().is_ok());
        let e = PolicerConfig { cir: 0, ..ok }.check().unwrap_err();
        assert!(e.contains("cir and cbs must be > 0"), "{e}");
        let e = PolicerConfig { ebs: 10, ..ok }.check().unwrap_err();
        assert!(e.contains("ebs needs an excess rate"), "{e}");
        let e = PolicerConfig { eir: 10, ..ok }.check().unwrap_err();
        assert!(e.contains("needs an excess burst"), "{e}");
        assert_eq!(PolicerConfig { eir: 5, ebs: 6, ..ok }.describe(), "cir=1000 cbs=1500 eir=5 ebs=6 (bytes)");
    }

    #[test]
    fn srtcm_passes_cir_and_rfc4115_passes_cir_plus_eir() {
        let (hz, pool) = setup("qos_pol_rates");
        for len in [64usize, 1500] {
            let cfg = PolicerConfig { cir: 100_000, cbs: 3000, ..Default::default() };
            let mut p = Policer::new(cfg, Share::WHOLE, 1_000).unwrap();
            let got = offer(&mut p, pool, hz, 3 * 100_000 / len as u64, len, 10);
            assert!((got / 100_000.0 - 1.0).abs() < 0.05, "{len} B: {got} B/s");
            assert_eq!(p.offered(), 3 * 100_000 / len as u64 * 10 * len as u64);
            let cfg = PolicerConfig { cir: 100_000, cbs: 3000, eir: 50_000, ebs: 3000, packets: false };
            let mut p = Policer::new(cfg, Share::WHOLE, 1_000).unwrap();
            let got = offer(&mut p, pool, hz, 3 * 100_000 / len as u64, len, 10);
            assert!((got / 150_000.0 - 1.0).abs() < 0.05, "{len} B: {got} B/s");
        }
        // Packets mode: 500 packets/s whatever their size.
        let cfg = PolicerConfig { cir: 500, cbs: 5, packets: true, ..Default::default() };
        let mut p = Policer::new(cfg, Share::WHOLE, 1_000).unwrap();
        let got = offer(&mut p, pool, hz, 2000, 1000, 10) / 1000.0;
        assert!((got / 500.0 - 1.0).abs() < 0.05, "{got} pkt/s");
        assert_eq!(pool.in_use(), 0, "every dropped packet was freed");
    }

    #[test]
    fn a_share_limits_a_worker_to_its_part_and_reshare_moves_it() {
        let (hz, pool) = setup("qos_pol_share");
        let cfg = PolicerConfig { cir: 200_000, cbs: 3000, ..Default::default() };
        let mut p = Policer::new(cfg, Share::even(4), 1_000).unwrap();
        let got = offer(&mut p, pool, hz, 1000, 1000, 5);
        assert!((got / 50_000.0 - 1.0).abs() < 0.05, "a quarter: {got} B/s");
        p.reshare(Share::WHOLE, 1_000 + 5 * hz).unwrap();
        assert_eq!(p.share(), Share::WHOLE);
        assert_eq!(p.config(), cfg);
    }
}

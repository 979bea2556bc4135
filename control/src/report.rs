//! Counters for people and scripts: a final table, one line per port per interval,
//! and JSON (`--stats-json`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::flows::FlowSummary;
use serde::Serialize;
use sluice_fastpath::cache::CacheSnapshot;
use sluice_fastpath::stats::WorkerSnapshot;

/// Everything `sluiced` reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Seconds since the workers started.
    pub elapsed_seconds: f64,
    /// TSC frequency, for converting cycles.
    pub tsc_hz: u64,
    /// Mbufs in the pool.
    pub mempool_size: u32,
    /// Mbufs taken from it now.
    pub mempool_in_use: u32,
    /// Per port.
    pub ports: Vec<PortReport>,
    /// Per worker.
    pub workers: Vec<WorkerReport>,
    /// Megaflow events the control side has seen (all workers).
    pub megaflows: FlowSummary,
}

/// One port's counters: the device's own (`rte_eth_stats`) and Sluice's.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PortReport {
    /// Port index (its slot; stable while the port exists).
    pub index: usize,
    /// Port name.
    pub name: String,
    /// The devargs it was attached with.
    pub devargs: String,
    /// PMD name.
    pub driver: String,
    /// Its P4 port number.
    pub p4_port: u32,
    /// Its DPDK port id.
    pub dpdk_port: u16,
    /// Link speed in Mb/s (0: unknown).
    pub link_speed_mbps: u32,
    /// MTU now (0: unknown).
    pub mtu: u16,
    /// Rx queues.
    pub rx_queues: u16,
    /// Tx queues.
    pub tx_queues: u16,
    /// Whether the port can offload with rte_flow (`capable` / `not capable: ...`).
    pub rte_flow: String,
    /// Link up.
    pub link_up: bool,
    /// Device: packets received.
    pub rx_packets: u64,
    /// Device: packets sent.
    pub tx_packets: u64,
    /// Device: bytes received.
    pub rx_bytes: u64,
    /// Device: bytes sent.
    pub tx_bytes: u64,
    /// Device: dropped for lack of rx descriptors.
    pub rx_missed: u64,
    /// Device: receive errors.
    pub rx_errors: u64,
    /// Device: transmit errors.
    pub tx_errors: u64,
    /// Device: rx mbuf allocation failures (mempool empty).
    pub rx_nombuf: u64,
    /// Workers: packets received from this port.
    pub sw_rx_packets: u64,
    /// Packets its ingress policer dropped.
    pub policed_rx: u64,
    /// Packets its egress policer dropped.
    pub policed_tx: u64,
    /// Its ingress policer.
    pub ingress_policer: Option<crate::config::PolicerSpec>,
    /// Its egress policer.
    pub egress_policer: Option<crate::config::PolicerSpec>,
    /// Workers: packets sent to this port.
    pub sw_tx_packets: u64,
}

/// One worker's counters.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WorkerReport {
    /// Worker index.
    pub worker: usize,
    /// Its core.
    pub core: usize,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Drops by reason (every reason listed, zero or not).
    pub drops: BTreeMap<&'static str, u64>,
    /// TSC cycles in iterations that received packets.
    pub busy_cycles: u64,
    /// TSC cycles in iterations that received nothing.
    pub idle_cycles: u64,
    /// Busy cycles per received packet (0 if none).
    pub cycles_per_packet: f64,
    /// Loop iterations.
    pub iterations: u64,
    /// Packets sent to the controller.
    pub to_cpu: u64,
    /// Packets injected by the controller.
    pub from_cpu: u64,
    /// Digest samples sent to control.
    pub digests: u64,
    /// Digest samples lost.
    pub digest_drops: u64,
    /// Digest samples held back as repeats of a recent one.
    pub digests_held: u64,
    /// Megaflow cache counters (all zero without a pipeline).
    pub cache: CacheSnapshot,
}

impl WorkerReport {
    /// From a worker's snapshot.
    pub fn new(worker: usize, core: usize, s: &WorkerSnapshot) -> Self {
        Self {
            worker,
            core,
            rx_packets: s.rx_packets,
            tx_packets: s.tx_packets,
            drops: s.drops.iter().map(|(r, n)| (r.name(), *n)).collect(),
            busy_cycles: s.busy_cycles,
            idle_cycles: s.idle_cycles,
            cycles_per_packet: if s.rx_packets == 0 { 0.0 } else { s.busy_cycles as f64 / s.rx_packets as f64 },
            iterations: s.iterations,
            to_cpu: s.to_cpu,
            from_cpu: s.from_cpu,
            digests: s.digests,
            digest_drops: s.digest_drops,
            digests_held: s.digests_held,
            cache: s.cache,
        }
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.values().sum()
    }
}

impl Report {
    /// The final table: ports, then workers.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "forwarded for {:.2} s; mempool {} of {} mbufs in use",
            self.elapsed_seconds, self.mempool_in_use, self.mempool_size
        );
        let _ = writeln!(
            s,
            "{:<12} {:<10} {:>4} {:>14} {:>14} {:>16} {:>16} {:>10} {:>10} {:>10}",
            "port",
            "driver",
            "link",
            "rx_packets",
            "tx_packets",
            "rx_bytes",
            "tx_bytes",
            "rx_missed",
            "errors",
            "nombuf"
        );
        for p in &self.ports {
            let _ = writeln!(
                s,
                "{:<12} {:<10} {:>4} {:>14} {:>14} {:>16} {:>16} {:>10} {:>10} {:>10}",
                p.name,
                p.driver,
                if p.link_up { "up" } else { "down" },
                p.rx_packets,
                p.tx_packets,
                p.rx_bytes,
                p.tx_bytes,
                p.rx_missed,
                p.rx_errors + p.tx_errors,
                p.rx_nombuf
            );
        }
        let _ = writeln!(
            s,
            "{:<8} {:>4} {:>14} {:>14} {:>12} {:>10} {:>6}  drops by reason",
            "worker", "core", "rx_packets", "tx_packets", "drops", "cyc/pkt", "busy%"
        );
        for w in &self.workers {
            let total = (w.busy_cycles + w.idle_cycles).max(1);
            let reasons: Vec<String> =
                w.drops.iter().filter(|(_, n)| **n > 0).map(|(r, n)| format!("{r}={n}")).collect();
            let _ = writeln!(
                s,
                "{:<8} {:>4} {:>14} {:>14} {:>12} {:>10.1} {:>5.1}%  {}",
                w.worker,
                w.core,
                w.rx_packets,
                w.tx_packets,
                w.total_drops(),
                w.cycles_per_packet,
                100.0 * w.busy_cycles as f64 / total as f64,
                if reasons.is_empty() { "-".into() } else { reasons.join(" ") }
            );
        }
        if self.workers.iter().any(|w| w.cache.upcalls > 0) {
            let _ = writeln!(
                s,
                "{:<8} {:>12} {:>12} {:>10} {:>12} {:>10} {:>10} {:>8} {:>9} {:>9} {:>11} {:>12}",
                "worker",
                "emc_hits",
                "dpcls_hits",
                "upcalls",
                "uncacheable",
                "megaflows",
                "subtables",
                "sub/hit",
                "evicted",
                "expired",
                "invalidated",
                "sent_whole"
            );
            for w in &self.workers {
                let c = &w.cache;
                let _ = writeln!(
                    s,
                    "{:<8} {:>12} {:>12} {:>10} {:>12} {:>10} {:>10} {:>8.2} {:>9} {:>9} {:>11} {:>12}",
                    w.worker,
                    c.emc_hits,
                    c.dpcls_hits,
                    c.upcalls,
                    c.uncacheable,
                    c.megaflows,
                    c.subtables,
                    // Per dpcls hit, as OVS's "avg. subtable lookups per megaflow hit"
                    // (labelled per packet before: EMC hits search none).
                    c.subtables_searched as f64 / c.dpcls_hits.max(1) as f64,
                    c.evicted,
                    c.expired,
                    c.invalidated,
                    // Packets of bursts sent to one port whole (no per-packet dispatch).
                    c.sent_whole
                );
            }
            let m = &self.megaflows;
            let _ = writeln!(
                s,
                "megaflow events seen by control: {} installed, {} live, removed {} idle / {} evicted / {} invalidated \
                 (they had matched {} packets)",
                m.installed, m.live, m.removed_idle, m.removed_evicted, m.removed_invalidated, m.removed_packets
            );
        }
        let (sent, held, lost) =
            self.workers.iter().fold((0, 0, 0), |(a, b, c), w| (a + w.digests, b + w.digests_held, c + w.digest_drops));
        if sent + held + lost > 0 {
            let _ = writeln!(
                s,
                "digest samples: {sent} sent to control, {held} held back by the workers (repeats within {} ms), \
                 {lost} lost (ring full)",
                sluice_fastpath::uplink::DIGEST_HOLD_MS
            );
        }
        s
    }

    /// One `stats ...` line per port, with rates against `prev` (taken `dt` s earlier).
    pub fn interval_lines(&self, prev: &Report) -> String {
        let dt = (self.elapsed_seconds - prev.elapsed_seconds).max(1e-9);
        let mut s = String::new();
        for p in &self.ports {
            let Some(q) = prev.ports.iter().find(|q| q.name == p.name) else { continue };
            let _ = writeln!(
                s,
                "stats t={:.3} port={} rx_packets={} tx_packets={} rx_pps={:.0} tx_pps={:.0}",
                self.elapsed_seconds,
                p.name,
                p.rx_packets,
                p.tx_packets,
                p.rx_packets.saturating_sub(q.rx_packets) as f64 / dt,
                p.tx_packets.saturating_sub(q.tx_packets) as f64 / dt,
            );
        }
        s
    }
}

//! Per-worker counters: one writer (the worker), any number of readers (control).
//!
//! Each counter is an `AtomicU64` that the worker updates with a relaxed load and store
//! (a plain `mov` on x86: no locked instruction, since no one else writes it) and
//! control reads with a relaxed load. Updates are made once per burst, not per packet.
//! The block is cache-line aligned so two workers' counters never share a line.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::cache::{CacheSnapshot, CacheStats};

/// A single-writer counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add `n`. Only the owning worker may call this (single writer).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Set to `v` (a gauge). Only the owning worker may call this (single writer).
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Why a packet was dropped. Every drop in Sluice has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum DropReason {
    /// The packet's input port has no forwarding entry.
    NoRoute,
    /// The output tx queue was full (the device took fewer packets than offered).
    TxQueueFull,
    /// A processing stage returned a packet without a verdict (a bug; never expected).
    Unhandled,
    /// The P4 program dropped it in ingress (`egress_spec` = 511, `mark_to_drop`).
    P4Ingress,
    /// The P4 program dropped it in egress.
    P4Egress,
    /// `mcast_grp` named a multicast group that is missing or empty.
    P4NoMcastGroup,
    /// More than 6 passes through ingress (resubmit/recirculate loop).
    P4PassLimit,
    /// A P4 `assert`/`assume` failed.
    P4Assert,
    /// The packet spans several mbuf segments (the pipeline needs one).
    MultiSegment,
    /// No mbuf for a copy (clone, multicast) or a rewritten packet.
    NoMbuf,
    /// A packet for the controller (the CPU port) found the packet-in ring full.
    ToCpuRingFull,
    /// A port policer (ingress policing or egress rate limit) found it over the rate.
    Policed,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 12] = [
        DropReason::NoRoute,
        DropReason::TxQueueFull,
        DropReason::Unhandled,
        DropReason::P4Ingress,
        DropReason::P4Egress,
        DropReason::P4NoMcastGroup,
        DropReason::P4PassLimit,
        DropReason::P4Assert,
        DropReason::MultiSegment,
        DropReason::NoMbuf,
        DropReason::ToCpuRingFull,
        DropReason::Policed,
    ];

    /// The stable snake_case name used in reports and metrics labels.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::NoRoute => "no_route",
            DropReason::TxQueueFull => "tx_full",
            DropReason::Unhandled => "unhandled",
            DropReason::P4Ingress => "p4_ingress_drop",
            DropReason::P4Egress => "p4_egress_drop",
            DropReason::P4NoMcastGroup => "p4_no_mcast_group",
            DropReason::P4PassLimit => "p4_pass_limit",
            DropReason::P4Assert => "p4_assert",
            DropReason::MultiSegment => "multi_segment",
            DropReason::NoMbuf => "no_mbuf",
            DropReason::ToCpuRingFull => "to_cpu_ring_full",
            DropReason::Policed => "policed",
        }
    }
}

/// The counters of one worker.
#[derive(Debug)]
#[repr(align(64))]
pub struct WorkerStats {
    /// Packets received, all queues.
    pub rx_packets: Counter,
    /// Packets handed to tx queues and accepted by the devices.
    pub tx_packets: Counter,
    /// TSC cycles spent in loop iterations that received packets.
    pub busy_cycles: Counter,
    /// TSC cycles spent in loop iterations that received nothing.
    pub idle_cycles: Counter,
    /// Loop iterations.
    pub iterations: Counter,
    /// Packets sent to the controller (the CPU port's packet-in ring).
    pub to_cpu: Counter,
    /// Packets injected by the controller (packet-out).
    pub from_cpu: Counter,
    /// State updates this worker refused after control had accepted them on its
    /// own copy (the copies diverged: a bug, never expected).
    pub refused_ops: Counter,
    /// Digest samples sent to control.
    pub digests: Counter,
    /// Digest samples lost (the ring to control was full, or there is none).
    pub digest_drops: Counter,
    /// Digest samples not sent: the worker sent the same data less than
    /// [`crate::uplink::DIGEST_HOLD_MS`] ago.
    pub digests_held: Counter,
    /// The megaflow cache's counters (zero for stages without one).
    pub cache: Arc<CacheStats>,
    drops: [Counter; DropReason::ALL.len()],
    port_rx: Box<[Counter]>,
    port_tx: Box<[Counter]>,
    /// Packets dropped by each port's ingress and egress policers.
    port_policed: Box<[[Counter; 2]]>,
}

impl WorkerStats {
    /// Counters for a worker serving up to `ports` ports.
    pub fn new(ports: usize) -> Self {
        Self {
            rx_packets: Counter::default(),
            tx_packets: Counter::default(),
            busy_cycles: Counter::default(),
            idle_cycles: Counter::default(),
            iterations: Counter::default(),
            to_cpu: Counter::default(),
            from_cpu: Counter::default(),
            refused_ops: Counter::default(),
            digests: Counter::default(),
            digest_drops: Counter::default(),
            digests_held: Counter::default(),
            cache: Arc::default(),
            drops: Default::default(),
            port_rx: (0..ports).map(|_| Counter::default()).collect(),
            port_tx: (0..ports).map(|_| Counter::default()).collect(),
            port_policed: (0..ports).map(|_| Default::default()).collect(),
        }
    }

    /// Count `n` drops for `reason`.
    #[inline(always)]
    pub fn drop_packets(&self, reason: DropReason, n: usize) {
        self.drops[reason as usize].add(n as u64);
    }

    /// Drops so far for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].get()
    }

    /// Count `n` packets received on port `port`.
    #[inline(always)]
    pub(crate) fn port_rx(&self, port: usize, n: usize) {
        if let Some(c) = self.port_rx.get(port) {
            c.add(n as u64);
        }
    }

    /// Count `n` packets sent on port `port`.
    #[inline(always)]
    pub(crate) fn port_tx(&self, port: usize, n: usize) {
        if let Some(c) = self.port_tx.get(port) {
            c.add(n as u64);
        }
    }

    /// Count `n` packets dropped by port `port`'s policer (ingress or egress), also
    /// as [`DropReason::Policed`].
    #[inline(always)]
    pub(crate) fn port_policed(&self, port: usize, egress: bool, n: usize) {
        self.drop_packets(DropReason::Policed, n);
        if let Some(c) = self.port_policed.get(port) {
            c[egress as usize].add(n as u64);
        }
    }

    /// Packets dropped by port `port`'s ingress and egress policers.
    pub fn port_policed_packets(&self, port: usize) -> (u64, u64) {
        self.port_policed.get(port).map_or((0, 0), |c| (c[0].get(), c[1].get()))
    }

    /// Packets received from and sent to port `port` (0 for an unknown port).
    pub fn port_packets(&self, port: usize) -> (u64, u64) {
        (self.port_rx.get(port).map_or(0, Counter::get), self.port_tx.get(port).map_or(0, Counter::get))
    }

    /// A consistent-enough copy for reports (each counter read once, relaxed).
    pub fn snapshot(&self) -> WorkerSnapshot {
        WorkerSnapshot {
            rx_packets: self.rx_packets.get(),
            tx_packets: self.tx_packets.get(),
            busy_cycles: self.busy_cycles.get(),
            idle_cycles: self.idle_cycles.get(),
            iterations: self.iterations.get(),
            to_cpu: self.to_cpu.get(),
            from_cpu: self.from_cpu.get(),
            refused_ops: self.refused_ops.get(),
            digests: self.digests.get(),
            digest_drops: self.digest_drops.get(),
            digests_held: self.digests_held.get(),
            cache: self.cache.snapshot(),
            drops: DropReason::ALL.map(|r| (r, self.drops(r))),
            port_rx: self.port_rx.iter().map(Counter::get).collect(),
            port_tx: self.port_tx.iter().map(Counter::get).collect(),
        }
    }
}

/// A copy of a worker's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSnapshot {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Busy TSC cycles.
    pub busy_cycles: u64,
    /// Idle TSC cycles.
    pub idle_cycles: u64,
    /// Loop iterations.
    pub iterations: u64,
    /// Packets sent to the controller.
    pub to_cpu: u64,
    /// Packets injected by the controller.
    pub from_cpu: u64,
    /// Updates refused by this worker after control accepted them (a bug).
    pub refused_ops: u64,
    /// Digest samples sent to control.
    pub digests: u64,
    /// Digest samples lost.
    pub digest_drops: u64,
    /// Digest samples held back as repeats of a recent one.
    pub digests_held: u64,
    /// Cache counters.
    pub cache: CacheSnapshot,
    /// Drops by reason.
    pub drops: [(DropReason, u64); DropReason::ALL.len()],
    /// Packets received per port index.
    pub port_rx: Vec<u64>,
    /// Packets sent per port index.
    pub port_tx: Vec<u64>,
}

impl WorkerSnapshot {
    /// All drops, every reason.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_and_snapshot_by_reason_and_port() {
        let s = WorkerStats::new(2);
        s.rx_packets.add(5);
        s.drop_packets(DropReason::TxQueueFull, 3);
        s.drop_packets(DropReason::NoRoute, 1);
        s.port_rx(1, 7);
        s.port_tx(0, 2);
        s.port_tx(9, 100); // unknown port index: ignored, never a panic
        let snap = s.snapshot();
        assert_eq!(snap.rx_packets, 5);
        assert_eq!(snap.total_drops(), 4);
        assert_eq!(snap.drops[DropReason::TxQueueFull as usize], (DropReason::TxQueueFull, 3));
        assert_eq!(snap.port_rx, vec![0, 7]);
        assert_eq!(snap.port_tx, vec![2, 0]);
        assert_eq!((s.port_packets(1), s.port_packets(9)), ((7, 0), (0, 0)));
        assert_eq!(std::mem::align_of::<WorkerStats>(), 64);
    }

    #[test]
    fn reason_names_are_unique_and_stable() {
        let names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(
            names,
            [
                "no_route",
                "tx_full",
                "unhandled",
                "p4_ingress_drop",
                "p4_egress_drop",
                "p4_no_mcast_group",
                "p4_pass_limit",
                "p4_assert",
                "multi_segment",
                "no_mbuf",
                "to_cpu_ring_full",
                "policed"
            ]
        );
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}

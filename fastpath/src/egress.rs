//! Egress batching: one pending [`Burst`] and one tx queue per output port, owned by
//! a worker.
//!
//! Stages move packets in with [`Egress::send`]; the worker calls [`Egress::flush`]
//! once per loop iteration, which issues one `tx_burst` per port that has packets.
//! Whatever a device does not take is freed and counted as
//! [`DropReason::TxQueueFull`] (no retry loop: a worker never waits on a device).
//! Packets for a port this worker has no tx queue on are counted as
//! [`DropReason::NoRoute`]. A port with an egress policer (rate limit) has each batch
//! policed just before its `tx_burst`; what is over the rate is counted as
//! [`DropReason::Policed`].

use dpdk_sys::mbuf::Mbuf;
use dpdk_sys::port::TxQueue;

use crate::qos::policer::Policer;
use crate::stats::{DropReason, WorkerStats};
use crate::{Burst, PortIndex};

struct EgressPort {
    txq: Option<TxQueue>,
    pending: Burst,
    /// The port's egress rate limit (this worker's share of it).
    policer: Option<Policer>,
}

/// A worker's output side: per-port tx queue and pending batch.
pub struct Egress {
    ports: Box<[EgressPort]>,
    /// Bit i set: port i has pending packets (ports beyond 64 are always scanned).
    dirty: u64,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress").field("ports", &self.ports.len()).finish()
    }
}

impl Egress {
    /// `txqs[i]` is this worker's tx queue on port index `i` (`None`: no queue there).
    pub fn new(txqs: Vec<Option<TxQueue>>) -> Self {
        Self {
            ports: txqs.into_iter().map(|txq| EgressPort { txq, pending: Burst::new(), policer: None }).collect(),
            dirty: 0,
        }
    }

    /// Move every packet of `burst` to `port`'s pending batch, flushing it when full.
    #[inline]
    pub fn send(&mut self, port: PortIndex, burst: &mut Burst, stats: &WorkerStats) {
        let Some(p) = self.ports.get_mut(port) else {
            stats.drop_packets(DropReason::NoRoute, burst.free_all());
            return;
        };
        if p.txq.is_none() {
            stats.drop_packets(DropReason::NoRoute, burst.free_all());
            return;
        }
        if p.pending.is_empty() {
            if burst.room() == 0 {
                // A full burst for an idle port: send it as it is, no copy. Batching could
                // not make it larger.
                Self::flush_port_from(p.txq.as_mut(), p.policer.as_mut(), burst, port, stats);
                return;
            }
            // Otherwise take the whole burst by a fixed-size swap instead of a
            // variable-length copy (a memmove call).
            std::mem::swap(&mut p.pending, burst);
        } else {
            p.pending.append_from(burst);
        }
        while !burst.is_empty() {
            Self::flush_port(p, port, stats);
            p.pending.append_from(burst);
        }
        if port < 64 {
            self.dirty |= 1 << port;
        } else {
            self.dirty = u64::MAX;
        }
    }

    /// Move one packet to `port`'s pending batch, flushing it when full (stages that
    /// decide packet by packet, such as the P4 pipeline).
    #[inline]
    pub fn send_one(&mut self, port: PortIndex, m: Mbuf, stats: &WorkerStats) {
        let Some(p) = self.ports.get_mut(port) else {
            stats.drop_packets(DropReason::NoRoute, 1);
            return;
        };
        if p.txq.is_none() {
            stats.drop_packets(DropReason::NoRoute, 1);
            return;
        }
        if let Err(m) = p.pending.push(m) {
            Self::flush_port(p, port, stats);
            // The batch was just emptied: the push succeeds.
            let _ = p.pending.push(m);
        }
        if port < 64 {
            self.dirty |= 1 << port;
        } else {
            self.dirty = u64::MAX;
        }
    }

    /// Send every pending batch; free and count what the devices refuse.
    #[inline]
    pub fn flush(&mut self, stats: &WorkerStats) {
        if self.dirty == 0 {
            return;
        }
        if self.dirty == u64::MAX || self.ports.len() > 64 {
            for (i, p) in self.ports.iter_mut().enumerate() {
                Self::flush_port(p, i, stats);
            }
        } else {
            let mut d = self.dirty;
            while d != 0 {
                let i = d.trailing_zeros() as usize;
                d &= d - 1;
                Self::flush_port(&mut self.ports[i], i, stats);
            }
        }
        self.dirty = 0;
    }

    #[inline(always)]
    fn flush_port(p: &mut EgressPort, index: PortIndex, stats: &WorkerStats) {
        if p.pending.is_empty() {
            return;
        }
        Self::flush_port_from(p.txq.as_mut(), p.policer.as_mut(), &mut p.pending, index, stats);
    }

    /// Send `burst` on `txq`, through `policer` if any; free and count what is
    /// policed or refused. Leaves `burst` empty.
    #[inline(always)]
    fn flush_port_from(
        txq: Option<&mut TxQueue>,
        policer: Option<&mut Policer>,
        burst: &mut Burst,
        index: PortIndex,
        stats: &WorkerStats,
    ) {
        let Some(txq) = txq else {
            stats.drop_packets(DropReason::NoRoute, burst.free_all());
            return;
        };
        if let Some(p) = policer {
            let (dropped, _) = p.police(burst, dpdk_sys::lcore::rdtsc());
            if dropped > 0 {
                stats.port_policed(index, true, dropped);
            }
            if burst.is_empty() {
                return;
            }
        }
        let sent = txq.tx_burst(burst);
        stats.tx_packets.add(sent as u64);
        stats.port_tx(index, sent);
        let refused = burst.free_all();
        if refused > 0 {
            stats.drop_packets(DropReason::TxQueueFull, refused);
        }
    }

    /// Use `txq` for port index `port` from now on (`None`: no queue there), growing
    /// the table as needed; returns the queue it replaces, after sending what was
    /// pending for it. Control calls this between bursts, when ports come and go.
    pub fn set_txq(&mut self, port: PortIndex, txq: Option<TxQueue>, stats: &WorkerStats) -> Option<TxQueue> {
        let p = self.grown(port);
        Self::flush_port(p, port, stats);
        std::mem::replace(&mut p.txq, txq)
    }

    /// Port `port`'s egress policer from now on (`None`: no limit); returns the one
    /// it replaces. Pending packets are sent under the old one first.
    pub fn set_policer(&mut self, port: PortIndex, policer: Option<Policer>, stats: &WorkerStats) -> Option<Policer> {
        if port >= self.ports.len() {
            // Nothing to remove there; a new policer grows the table.
            policer.as_ref()?;
        }
        let p = self.grown(port);
        Self::flush_port(p, port, stats);
        std::mem::replace(&mut p.policer, policer)
    }

    /// Port `port`'s slot, the table grown to hold it (between bursts only).
    fn grown(&mut self, port: PortIndex) -> &mut EgressPort {
        if port >= self.ports.len() {
            let mut v = std::mem::take(&mut self.ports).into_vec();
            v.resize_with(port + 1, || EgressPort { txq: None, pending: Burst::new(), policer: None });
            self.ports = v.into_boxed_slice();
        }
        &mut self.ports[port]
    }

    /// Port `port`'s egress policer, if it has one.
    pub fn policer_mut(&mut self, port: PortIndex) -> Option<&mut Policer> {
        self.ports.get_mut(port).and_then(|p| p.policer.as_mut())
    }

    /// Every egress policer, with its port index.
    pub fn policers(&self) -> impl Iterator<Item = (PortIndex, &Policer)> {
        self.ports.iter().enumerate().filter_map(|(i, p)| p.policer.as_ref().map(|x| (i, x)))
    }

    /// Give back the tx queue handles (so control can stop the ports); pending packets
    /// are flushed first.
    pub fn into_queues(mut self, stats: &WorkerStats) -> Vec<Option<TxQueue>> {
        self.dirty = u64::MAX;
        self.flush(stats);
        std::mem::take(&mut self.ports).into_vec().into_iter().map(|p| p.txq).collect()
    }
}

//! What workers send up to control: packets for the controller (the CPU port) and
//! digest samples, on one bounded ring per data plane ([`Uplink`]).
//!
//! Both come from the slow path only: a packet-in is a copy for the CPU port, and a
//! flow that samples a digest is never cached, so it takes the interpreter every time
//! (see [`crate::cache`]). A worker never waits: when the ring is full the packet is
//! dropped as [`DropReason::ToCpuRingFull`] and the sample is counted in
//! [`WorkerStats::digest_drops`]. Control de-duplicates samples (the P4Runtime
//! rules: no repeat of unacknowledged data), so the worker sends every one.

use std::sync::mpsc::{SyncSender, TrySendError};

use dpdk_sys::mbuf::Mbuf;
use dpdk_sys::mempool::Mempool;

use crate::p4::ir::Value;
use crate::stats::{DropReason, WorkerStats};

/// Messages from workers to control.
#[derive(Debug)]
pub enum ToControl {
    /// A copy the pipeline sent to the CPU port (packet-in header first).
    PacketIn(Mbuf),
    /// A digest sample: the learn list (the program's index) and its field values,
    /// in list order.
    Digest {
        /// Learn list index in the compiled program.
        list: u32,
        /// Field values.
        values: Vec<Value>,
    },
}

/// The worker's end of the ring to control.
pub type Uplink = SyncSender<ToControl>;

/// Send a copy of `bytes` to the controller; counted either way.
#[inline(never)]
pub fn packet_in(to: &Uplink, pool: &Mempool, bytes: &[u8], stats: &WorkerStats) {
    let Some(m) = Mbuf::from_bytes(pool, bytes) else {
        return stats.drop_packets(DropReason::NoMbuf, 1);
    };
    match to.try_send(ToControl::PacketIn(m)) {
        Ok(()) => stats.to_cpu.add(1),
        // The returned mbuf is freed on drop.
        Err(_) => stats.drop_packets(DropReason::ToCpuRingFull, 1),
    }
}

/// Send a digest sample; counted either way.
#[inline(never)]
pub fn digest(to: Option<&Uplink>, list: u32, values: Vec<Value>, stats: &WorkerStats) {
    let Some(to) = to else {
        return stats.digest_drops.add(1);
    };
    match to.try_send(ToControl::Digest { list, values }) {
        Ok(()) => stats.digests.add(1),
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => stats.digest_drops.add(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_sent_or_counted_never_blocked() {
        let stats = WorkerStats::new(1);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        digest(Some(&tx), 3, vec![7, 9], &stats);
        // The ring holds one: the second is counted, not waited for.
        digest(Some(&tx), 3, vec![8], &stats);
        digest(None, 3, vec![8], &stats);
        let s = stats.snapshot();
        assert_eq!((s.digests, s.digest_drops), (1, 2));
        match rx.try_recv() {
            Ok(ToControl::Digest { list, values }) => assert_eq!((list, values), (3, vec![7, 9])),
            other => panic!("expected the first sample, got {other:?}"),
        }
        drop(rx);
        digest(Some(&tx), 3, vec![1], &stats);
        assert_eq!(stats.snapshot().digest_drops, 3);
    }
}

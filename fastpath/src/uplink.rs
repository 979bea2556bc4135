//! What workers send up to control: packets for the controller (the CPU port) and
//! digest samples, on one bounded ring per data plane ([`Uplink`]).
//!
//! Both come from the slow path only: a packet-in is a copy for the CPU port, and a
//! flow that samples a digest is never cached, so it takes the interpreter every time
//! (see [`crate::cache`]). A worker never waits: when the ring is full the packet is
//! dropped as [`DropReason::ToCpuRingFull`] and the sample is counted in
//! [`WorkerStats::digest_drops`]. Control de-duplicates samples (the P4Runtime
//! rules: no repeat of unacknowledged data).
//!
//! Until control writes the entry that stops them, every packet of a flow that
//! samples a digest sends the same sample again (an allocation, and often a futex
//! wake of the uplink thread, each), and control's core is kept busy dropping them
//! as duplicates. With 64 unlearned hosts at line rate that was ~20 % of the
//! worker's profile; holding repeats back took the worker from 4,205 to 2,746
//! cycles per packet and the samples sent from 2.25 M to 22.6 K in 3 s
//! (`perf/bench_learning.sh`; docs/p4runtime.md, "Digests"). So each
//! worker holds back a sample whose data (list and values) it sent less than
//! [`DIGEST_HOLD_MS`] ago ([`DigestFilter`], counted in
//! [`WorkerStats::digests_held`]). Control would have dropped nearly all of them as
//! pending or unacknowledged; what the hold changes is that data control has
//! released (acknowledged, or `ack_timeout_ns` 0) comes back from a worker at most
//! once per hold. A sample the ring refused is not remembered, so the next one is
//! sent.

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

/// How long a worker holds back repeats of a digest sample it sent.
pub const DIGEST_HOLD_MS: u64 = 10;

/// Sets of a [`DigestFilter`] (picked by the data's hash): 8,192 samples in 128 KB,
/// touched only on the digest path. With 256 sets (1,024 samples), 4,096 hosts
/// sampling at once evicted each other before their repeats came: nothing was held.
const FILTER_SETS: usize = 2048;
/// Ways per set. Direct-mapped (one way), 64 flows sampling at once collided in
/// ~8 pairs that evicted each other on every packet: a quarter of the samples were
/// sent anyway.
const FILTER_WAYS: usize = 4;

/// The samples a worker sent recently: the hash of each one's data and when it was
/// sent, in a set-associative table; a send replaces the set's oldest. Data whose
/// way another sample took since is sent again (a miss costs a duplicate that
/// control drops, never a lost sample).
#[derive(Debug)]
pub struct DigestFilter {
    sets: Box<[[(u64, u64); FILTER_WAYS]]>,
    /// The hold, in TSC ticks.
    hold: u64,
}

impl DigestFilter {
    /// A filter for a TSC running at `tsc_hz`.
    pub fn new(tsc_hz: u64) -> Self {
        let sets = vec![[(0, 0); FILTER_WAYS]; FILTER_SETS].into_boxed_slice();
        Self { sets, hold: tsc_hz / 1000 * DIGEST_HOLD_MS }
    }

    fn hash(list: u32, values: &[Value]) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        list.hash(&mut h);
        values.hash(&mut h);
        h.finish()
    }
}

/// Send a digest sample at TSC `now`, unless `filter` holds it back; counted
/// every way.
#[inline(never)]
pub fn digest(
    to: Option<&Uplink>,
    filter: &mut DigestFilter,
    list: u32,
    values: &[Value],
    now: u64,
    stats: &WorkerStats,
) {
    let h = DigestFilter::hash(list, values);
    let set = &mut filter.sets[h as usize % FILTER_SETS];
    if set.iter().any(|&(k, t)| k == h && now.wrapping_sub(t) < filter.hold) {
        return stats.digests_held.add(1);
    }
    let Some(to) = to else {
        return stats.digest_drops.add(1);
    };
    match to.try_send(ToControl::Digest { list, values: values.to_vec() }) {
        Ok(()) => {
            // Its own way if it has one (an expired hold), else an empty one (hash
            // 0), else the oldest.
            let way = set.iter().position(|&(k, _)| k == h).unwrap_or_else(|| {
                (0..FILTER_WAYS).min_by_key(|&w| (set[w].0 != 0, set[w].1)).expect("a set has ways")
            });
            set[way] = (h, now);
            stats.digests.add(1)
        }
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => stats.digest_drops.add(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_sent_or_counted_never_blocked() {
        let stats = WorkerStats::new(1);
        let mut f = DigestFilter::new(1_000_000);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        digest(Some(&tx), &mut f, 3, &[7, 9], 0, &stats);
        // The ring holds one: the second is counted, not waited for.
        digest(Some(&tx), &mut f, 3, &[8], 0, &stats);
        digest(None, &mut f, 3, &[8], 0, &stats);
        let s = stats.snapshot();
        assert_eq!((s.digests, s.digest_drops), (1, 2));
        match rx.try_recv() {
            Ok(ToControl::Digest { list, values }) => assert_eq!((list, values), (3, vec![7, 9])),
            other => panic!("expected the first sample, got {other:?}"),
        }
        drop(rx);
        digest(Some(&tx), &mut f, 3, &[1], 0, &stats);
        assert_eq!(stats.snapshot().digest_drops, 3);
    }

    #[test]
    fn samples_sharing_a_set_are_held_up_to_its_ways_then_the_oldest_goes() {
        let stats = WorkerStats::new(1);
        let mut f = DigestFilter::new(1_000_000);
        let (tx, rx) = std::sync::mpsc::sync_channel(64);
        let set = |v: u128| DigestFilter::hash(3, &[v]) as usize % FILTER_SETS;
        let same: Vec<u128> = (0..).filter(|v| set(*v) == set(0)).take(FILTER_WAYS + 1).collect();
        for (t, v) in same[..FILTER_WAYS].iter().enumerate() {
            digest(Some(&tx), &mut f, 3, &[*v], t as u64, &stats);
        }
        for v in &same[..FILTER_WAYS] {
            digest(Some(&tx), &mut f, 3, &[*v], 10, &stats);
        }
        assert_eq!((rx.try_iter().count(), stats.snapshot().digests_held), (FILTER_WAYS, FILTER_WAYS as u64));
        // One more in the set takes the oldest's way: the others stay held, that
        // one is sent again.
        digest(Some(&tx), &mut f, 3, &[same[FILTER_WAYS]], 20, &stats);
        for v in &same[1..FILTER_WAYS] {
            digest(Some(&tx), &mut f, 3, &[*v], 21, &stats);
        }
        digest(Some(&tx), &mut f, 3, &[same[0]], 22, &stats);
        assert_eq!((rx.try_iter().count(), stats.snapshot().digests_held), (2, 2 * FILTER_WAYS as u64 - 1));
    }

    #[test]
    fn repeats_are_held_for_the_hold_and_refused_samples_are_not_remembered() {
        let stats = WorkerStats::new(1);
        // 1 MHz: the hold is 10,000 ticks.
        let mut f = DigestFilter::new(1_000_000);
        let (tx, rx) = std::sync::mpsc::sync_channel(16);
        let sent = |rx: &std::sync::mpsc::Receiver<ToControl>| rx.try_iter().count();
        digest(Some(&tx), &mut f, 3, &[7, 9], 100, &stats);
        digest(Some(&tx), &mut f, 3, &[7, 9], 10_099, &stats);
        assert_eq!((sent(&rx), stats.snapshot().digests_held), (1, 1));
        // Other data, or another list: sent.
        digest(Some(&tx), &mut f, 3, &[7, 8], 200, &stats);
        digest(Some(&tx), &mut f, 4, &[7, 9], 200, &stats);
        assert_eq!(sent(&rx), 2);
        // The hold is over: sent again, and held from then on.
        digest(Some(&tx), &mut f, 3, &[7, 9], 10_100, &stats);
        digest(Some(&tx), &mut f, 3, &[7, 9], 10_101, &stats);
        assert_eq!((sent(&rx), stats.snapshot().digests_held), (1, 2));
        // Lost on a full ring: the next one goes.
        let (tx1, rx1) = std::sync::mpsc::sync_channel(1);
        digest(Some(&tx1), &mut f, 5, &[1], 0, &stats);
        digest(Some(&tx1), &mut f, 5, &[2], 0, &stats);
        assert_eq!(stats.snapshot().digest_drops, 1);
        assert_eq!(sent(&rx1), 1);
        digest(Some(&tx1), &mut f, 5, &[2], 1, &stats);
        assert_eq!((sent(&rx1), stats.snapshot().digests), (1, 6));
    }
}

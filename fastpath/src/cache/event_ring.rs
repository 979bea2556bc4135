//! The ring flow events travel on: one single-producer single-consumer ring of
//! 64-bit words per cache, all of a worker's rings read through one [`EventHub`].
//!
//! * **Records, not slots.** An event is written as a record of words (a header word,
//!   then its fields): a removal is 5 words, an install 6 plus 2 per mask word (12
//!   for simple_router). The worker's stores walk the ring sequentially, a cache
//!   line and a half per install instead of the ~230 bytes a slot of the
//!   [`FlowEvent`] enum takes (plus a slot stamp), and no compare-and-swap: the
//!   producer publishes its tail with one release store; the consumer its head.
//! * **Events that carry references** (actions not yet delivered, actions of one
//!   megaflow alone, masks wider than [`INLINE_WORDS`]) go whole over a side channel,
//!   sent *before* a marker record in the ring: the marker keeps their order among
//!   the others, and the reader takes them from the side channel when it meets it.
//! * **Bounded twice**: at most `capacity` events and the words they take; a full
//!   ring refuses the event (the cache counts it), never blocks.
//! * **One producer per ring**: each [`EventTx`] (one per cache, so per pipeline
//!   stage) has its own ring, registered with its worker's [`EventHub`]; the hub
//!   drains its rings in the order they were made (an old stage stops sending before
//!   a new one starts), and forgets a ring once its sender is gone and it is empty.
//!   Only control touches the hub's lock: making a sender and draining.
//!
//! Safe Rust throughout: the words are `AtomicU64`, written and read relaxed (plain
//! moves on x86) and ordered by the tail and head's release/acquire pairs.
//!
//! Measured with `pipeline_bench --only-setup` (a full cache, every setup evicting
//! and posting two events, drained each millisecond by a thread on the other core;
//! 7 interleaved runs, medians, TSC cycles per setup): posting the events cost 280
//! cycles per setup on the std channel (2,718 against 2,439 without events), 150 on
//! this ring (2,623 against 2,470). What is left was mostly the ring's stores
//! missing: the lines the consumer read must come back. So each publish asks for
//! the next lines ahead of the tail with `prefetchw` (owned for writing), which
//! took ~65 more cycles off (2,477 → 2,412). Whether anyone reads the
//! events makes no difference; a consumer that spins on the ring makes it worse
//! (~3,080: it takes lines the producer is still filling).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use dpdk_sys::lcore::prefetch_write;

use super::events::{EventActions, EventMatch, FlowEvent, Removal, INLINE_WORDS};
use super::key::KEY_WORDS;
use super::RemoveReason;

/// Words a ring holds per event of its capacity (an install of simple_router takes
/// 12, a removal 5).
const WORDS_PER_EVENT: usize = 12;
/// The longest record: an install with [`INLINE_WORDS`] mask words.
const MAX_RECORD: usize = 6 + 2 * INLINE_WORDS;

const INSTALLED: u64 = 1;
const REMOVED: u64 = 2;
const GONE: u64 = 3;
const SIDE: u64 = 4;

/// A value alone on its cache line (the producer's and the consumer's positions
/// must not share one).
#[derive(Debug, Default)]
#[repr(align(64))]
struct Line<T>(T);

#[derive(Debug)]
struct Ring {
    words: Box<[AtomicU64]>,
    /// Events it may hold.
    capacity: usize,
    /// Producer: words and events written.
    tail: Line<(AtomicUsize, AtomicUsize)>,
    /// Consumer: words and events read.
    head: Line<(AtomicUsize, AtomicUsize)>,
    /// The sender is gone.
    closed: AtomicBool,
}

/// The event did not fit: the ring (or its side channel) is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingFull;

/// An install event's fixed fields.
#[derive(Debug, Clone, Copy)]
pub struct InstallHead {
    /// Worker.
    pub worker: u32,
    /// Megaflow id (slot).
    pub flow: u32,
    /// Slot version.
    pub version: u32,
    /// Minimum length.
    pub min_len: u32,
    /// Dependency bits.
    pub deps: u64,
}

/// The sending half of one ring: owned by one cache.
#[derive(Debug)]
pub struct EventTx {
    ring: Arc<Ring>,
    side: SyncSender<FlowEvent>,
    /// Words and events written (the ring's tail, unpublished copy).
    tail: (usize, usize),
    /// The consumer's position as last read.
    head: (usize, usize),
}

#[derive(Debug)]
struct EventRx {
    ring: Arc<Ring>,
    side: Receiver<FlowEvent>,
}

/// A worker's event rings, as control reads them (cloned: one handle per user).
#[derive(Debug, Clone)]
pub struct EventHub {
    capacity: usize,
    rings: Arc<Mutex<Vec<EventRx>>>,
}

impl EventHub {
    /// A hub whose rings each hold up to `capacity` events.
    pub fn new(capacity: usize) -> Self {
        EventHub { capacity: capacity.max(1), rings: Arc::default() }
    }

    /// A new ring, and its sender (for one cache).
    pub fn sender(&self) -> EventTx {
        let words = (self.capacity * WORDS_PER_EVENT).max(2 * MAX_RECORD).next_power_of_two();
        let ring = Arc::new(Ring {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            capacity: self.capacity,
            tail: Line::default(),
            head: Line::default(),
            closed: AtomicBool::new(false),
        });
        let (side, side_rx) = sync_channel(self.capacity);
        self.lock().push(EventRx { ring: Arc::clone(&ring), side: side_rx });
        EventTx { ring, side, tail: (0, 0), head: (0, 0) }
    }

    /// Take every pending event, ring by ring, in order.
    pub fn drain(&self, mut f: impl FnMut(FlowEvent)) {
        let mut rings = self.lock();
        rings.retain(|rx| {
            // Closed first: a closed ring drained after it is empty for good.
            let closed = rx.ring.closed.load(Ordering::Acquire);
            rx.drain(&mut f);
            !closed
        });
    }

    /// Every pending event.
    pub fn collect(&self) -> Vec<FlowEvent> {
        let mut v = Vec::new();
        self.drain(|e| v.push(e));
        v
    }

    /// Rings whose sender may still send.
    pub fn rings(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<EventRx>> {
        self.rings.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for EventTx {
    fn drop(&mut self) {
        self.ring.closed.store(true, Ordering::Release);
    }
}

impl EventTx {
    /// Post `e` (dropped if the ring is full).
    pub fn send(&mut self, e: FlowEvent) -> Result<(), RingFull> {
        let heavy = match &e {
            FlowEvent::Installed { matched, actions, .. } => {
                matched.spill.is_some() || !matches!(actions, EventActions::Shared { first: None, .. })
            }
            _ => false,
        };
        let len = if heavy { 1 } else { record_len(&e) };
        if !self.room(len) {
            return Err(RingFull);
        }
        if heavy {
            // Sent before its marker is published: the reader finds it there.
            self.side.try_send(e).map_err(|_| RingFull)?;
            self.put(0, SIDE | 1 << 8);
        } else {
            self.write(&e, len);
        }
        self.publish(len);
        Ok(())
    }

    /// Post the install of a megaflow whose mask is `full` (key-space words), the
    /// nonzero ones numbered `idx`, with masked key `key`: written straight into the
    /// ring when its actions travel by id (no [`FlowEvent`] built on the way). A full
    /// ring refuses it.
    pub fn send_install(
        &mut self,
        h: InstallHead,
        actions: EventActions,
        full: &[u64; KEY_WORDS],
        idx: &[u8],
        key: &[u64],
    ) -> Result<(), RingFull> {
        let n = idx.len();
        let id = match actions {
            EventActions::Shared { id, first: None } if n <= INLINE_WORDS => id,
            actions => {
                let InstallHead { worker, flow, version, min_len, deps } = h;
                let matched = EventMatch::new(full, key);
                let e = FlowEvent::Installed { worker, flow, version, matched, min_len, deps, actions };
                return self.send(e);
            }
        };
        let len = 6 + 2 * n;
        if !self.room(len) {
            return Err(RingFull);
        }
        // Packed by shifts, not a byte copy then a word load: no store forwards to
        // that load (see `Replays::new`).
        let packed = idx.iter().enumerate().fold(0u64, |p, (j, &w)| p | (w as u64) << (8 * j)).to_le_bytes();
        self.put_install(h, id, n, packed, |j| full[idx[j] as usize], |j| key[j]);
        self.publish(len);
        Ok(())
    }

    /// Write an install record of `n` mask words (numbered `idx`, masks `bits(j)`,
    /// key words `key(j)`) at the tail.
    #[inline(always)]
    fn put_install(
        &self,
        h: InstallHead,
        id: u64,
        n: usize,
        idx: [u8; INLINE_WORDS],
        bits: impl Fn(usize) -> u64,
        key: impl Fn(usize) -> u64,
    ) {
        self.put(0, INSTALLED | ((6 + 2 * n) as u64) << 8 | (n as u64) << 16);
        self.put(1, h.worker as u64 | (h.flow as u64) << 32);
        self.put(2, h.version as u64 | (h.min_len as u64) << 32);
        self.put(3, h.deps);
        self.put(4, id);
        self.put(5, u64::from_le_bytes(idx));
        for j in 0..n {
            self.put(6 + j, bits(j));
            self.put(6 + n + j, key(j));
        }
    }

    /// Publish a record of `len` words written at the tail.
    #[inline(always)]
    fn publish(&mut self, len: usize) {
        self.tail = (self.tail.0 + len, self.tail.1 + 1);
        let t = &self.ring.tail.0;
        t.1.store(self.tail.1, Ordering::Relaxed);
        // Publishes the record's words (and the event count stored just before).
        t.0.store(self.tail.0, Ordering::Release);
        // Ask for the lines of the next record or two, for writing: the consumer
        // read them last lap, so a store would wait for the line to come back.
        // Asked here, the request overlaps the setup work before the next event.
        // (`pipeline_bench --only-setup`, full cache with events, 7 interleaved
        // runs: 2,477 → 2,412 cycles per setup; asking for words +0, +8 and +16
        // instead: 2,409.)
        let r = &self.ring.words;
        for k in [16, 24] {
            prefetch_write(&r[(self.tail.0 + k) & (r.len() - 1)]);
        }
    }

    /// Whether `len` more words and one more event fit; re-reads the consumer's
    /// position only when the last one read says no.
    fn room(&mut self, len: usize) -> bool {
        let fits = |tail: (usize, usize), head: (usize, usize), r: &Ring| {
            tail.0 + len - head.0 <= r.words.len() && tail.1 - head.1 < r.capacity
        };
        if fits(self.tail, self.head, &self.ring) {
            return true;
        }
        let h = &self.ring.head.0;
        // The words the consumer read before publishing its head are free.
        self.head = (h.0.load(Ordering::Acquire), h.1.load(Ordering::Acquire));
        fits(self.tail, self.head, &self.ring)
    }

    #[inline(always)]
    fn put(&self, k: usize, w: u64) {
        let r = &self.ring.words;
        r[(self.tail.0 + k) & (r.len() - 1)].store(w, Ordering::Relaxed);
    }

    fn write(&self, e: &FlowEvent, len: usize) {
        let head = |kind: u64, extra: u64| kind | (len as u64) << 8 | extra << 16;
        match e {
            FlowEvent::Installed { worker, flow, version, matched: m, min_len, deps, actions } => {
                let EventActions::Shared { id, first: None } = actions else { unreachable!("a light install") };
                let h = InstallHead { worker: *worker, flow: *flow, version: *version, min_len: *min_len, deps: *deps };
                self.put_install(h, *id, m.n as usize, m.idx, |j| m.bits[j], |j| m.key[j]);
            }
            FlowEvent::Removed(r) => {
                let reason = match r.reason {
                    RemoveReason::Idle => 0,
                    RemoveReason::Evicted => 1,
                    RemoveReason::Invalidated => 2,
                };
                self.put(0, head(REMOVED, reason));
                self.put(1, r.worker as u64 | (r.flow as u64) << 32);
                self.put(2, r.version as u64);
                self.put(3, r.packets);
                self.put(4, r.bytes);
            }
            FlowEvent::ActionsGone { worker, id } => {
                self.put(0, head(GONE, *worker as u64));
                self.put(1, *id);
            }
        }
    }
}

/// Words of a light event's record.
fn record_len(e: &FlowEvent) -> usize {
    match e {
        FlowEvent::Installed { matched, .. } => 6 + 2 * matched.n as usize,
        FlowEvent::Removed(_) => 5,
        FlowEvent::ActionsGone { .. } => 2,
    }
}

impl EventRx {
    fn drain(&self, f: &mut impl FnMut(FlowEvent)) {
        let r = &*self.ring;
        let (mut at, mut n) = (r.head.0 .0.load(Ordering::Relaxed), r.head.0 .1.load(Ordering::Relaxed));
        // Acquire: every word up to the tail is written.
        let tail = r.tail.0 .0.load(Ordering::Acquire);
        let get = |k: usize| r.words[k & (r.words.len() - 1)].load(Ordering::Relaxed);
        while at < tail {
            let h = get(at);
            let len = (h >> 8 & 0xff) as usize;
            let field = |k: usize| get(at + k);
            let lo = |w: u64| w as u32;
            let hi = |w: u64| (w >> 32) as u32;
            let e = match h & 0xff {
                INSTALLED => {
                    let n = (h >> 16 & 0xff) as usize;
                    let mut m = EventMatch::empty();
                    m.n = n as u8;
                    m.idx = field(5).to_le_bytes();
                    for j in 0..n {
                        m.bits[j] = field(6 + j);
                        m.key[j] = field(6 + n + j);
                    }
                    Some(FlowEvent::Installed {
                        worker: lo(field(1)),
                        flow: hi(field(1)),
                        version: lo(field(2)),
                        min_len: hi(field(2)),
                        deps: field(3),
                        actions: EventActions::Shared { id: field(4), first: None },
                        matched: m,
                    })
                }
                REMOVED => Some(FlowEvent::Removed(Removal {
                    worker: lo(field(1)),
                    flow: hi(field(1)),
                    version: lo(field(2)),
                    reason: match h >> 16 {
                        0 => RemoveReason::Idle,
                        1 => RemoveReason::Evicted,
                        _ => RemoveReason::Invalidated,
                    },
                    packets: field(3),
                    bytes: field(4),
                })),
                GONE => Some(FlowEvent::ActionsGone { worker: (h >> 16) as u32, id: field(1) }),
                // Sent before the marker was published, so there.
                _ => self.side.try_recv().ok(),
            };
            at += len.max(1);
            n += 1;
            if let Some(e) = e {
                f(e);
            }
        }
        r.head.0 .1.store(n, Ordering::Relaxed);
        // Release: the words read are free for the producer.
        r.head.0 .0.store(at, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(flow: u32, words: usize, actions: EventActions) -> FlowEvent {
        let mut full = [0u64; KEY_WORDS];
        for (k, w) in full.iter_mut().skip(1).step_by(2).take(words).enumerate() {
            *w = 0xf0f0 + k as u64;
        }
        let key: Vec<u64> = (0..words as u64).map(|k| k * 3 + flow as u64).collect();
        FlowEvent::Installed {
            worker: 3,
            flow,
            version: flow + 1,
            matched: EventMatch::new(&full, &key),
            min_len: 34,
            deps: 1 << (flow % 64),
            actions,
        }
    }

    fn removal(flow: u32) -> FlowEvent {
        let reason = [RemoveReason::Idle, RemoveReason::Evicted, RemoveReason::Invalidated][flow as usize % 3];
        FlowEvent::Removed(Removal { worker: 3, flow, version: 7, reason, packets: 9, bytes: 1 << 40 })
    }

    fn shared(id: u64) -> EventActions {
        EventActions::Shared { id, first: None }
    }

    #[test]
    fn every_kind_of_event_arrives_as_it_was_sent_in_order() {
        let hub = EventHub::new(64);
        let mut tx = hub.sender();
        let a = Arc::new(crate::cache::actions::Actions::default());
        let sent = vec![
            install(1, 3, shared(77)),
            removal(1),
            install(2, INLINE_WORDS, shared(78)),
            install(3, INLINE_WORDS + 2, shared(79)),
            install(4, 1, EventActions::Shared { id: 80, first: Some(Arc::clone(&a)) }),
            install(5, 0, EventActions::Own(a)),
            FlowEvent::ActionsGone { worker: 3, id: 80 },
            removal(2),
            removal(3),
        ];
        for e in &sent {
            tx.send(e.clone()).unwrap();
        }
        let got = hub.collect();
        assert_eq!(format!("{got:?}"), format!("{sent:?}"));
        assert!(hub.collect().is_empty());
    }

    #[test]
    fn a_full_ring_refuses_then_takes_again_once_read_and_wraps() {
        let hub = EventHub::new(2);
        let mut tx = hub.sender();
        tx.send(install(1, 3, shared(1))).unwrap();
        tx.send(removal(1)).unwrap();
        assert!(tx.send(removal(2)).is_err(), "two events at most");
        assert_eq!(hub.collect().len(), 2);
        // Many rounds around the (32-word) ring, records straddling its end.
        for k in 0..200u32 {
            let e = install(k, (k % 9) as usize, shared(k as u64));
            tx.send(e.clone()).unwrap();
            tx.send(removal(k)).unwrap();
            let got = hub.collect();
            assert_eq!(format!("{got:?}"), format!("{:?}", [e, removal(k)]), "round {k}");
        }
    }

    #[test]
    fn a_ring_is_forgotten_once_its_sender_is_gone_and_it_is_read() {
        let hub = EventHub::new(8);
        let mut old = hub.sender();
        let mut new = hub.sender();
        old.send(removal(1)).unwrap();
        new.send(removal(2)).unwrap();
        drop(old);
        assert_eq!(hub.rings(), 2);
        let got = hub.collect();
        assert_eq!(format!("{got:?}"), format!("{:?}", [removal(1), removal(2)]), "the older ring first");
        assert_eq!(hub.rings(), 1);
        new.send(removal(3)).unwrap();
        drop(new);
        assert_eq!(hub.collect().len(), 1, "sent before its sender went");
        assert_eq!(hub.rings(), 0);
    }

    #[test]
    fn events_cross_threads_whole_and_in_order() {
        let hub = EventHub::new(16);
        let mut tx = hub.sender();
        let n = 20_000u32;
        let producer = std::thread::spawn(move || {
            let mut dropped = 0;
            for k in 0..n {
                let e = if k % 2 == 0 { install(k, (k % 11) as usize, shared(k as u64)) } else { removal(k) };
                if tx.send(e).is_err() {
                    dropped += 1;
                }
            }
            dropped
        });
        let mut got = Vec::new();
        while !producer.is_finished() {
            hub.drain(|e| got.push(e));
        }
        let dropped = producer.join().unwrap();
        hub.drain(|e| got.push(e));
        assert_eq!(got.len() as u32 + dropped, n);
        let mut last = None;
        for e in &got {
            let k = match e {
                FlowEvent::Installed { flow, .. } => {
                    assert_eq!(
                        format!("{e:?}"),
                        format!("{:?}", install(*flow, (*flow % 11) as usize, shared(*flow as u64)))
                    );
                    *flow
                }
                FlowEvent::Removed(r) => {
                    assert_eq!(format!("{e:?}"), format!("{:?}", removal(r.flow)));
                    r.flow
                }
                _ => panic!("{e:?}"),
            };
            assert!(last.is_none_or(|l| k > l), "in order");
            last = Some(k);
        }
    }
}

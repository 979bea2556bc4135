//! Flow events: what a worker tells the control side about its megaflows (installs
//! and removals), over a bounded ring, without allocating on the worker.
//!
//! * **Matches travel inline.** An install's mask and key are carried in the event
//!   itself ([`EventMatch`]) up to [`INLINE_WORDS`] mask words (every program in
//!   `shared/p4` stays under it); wider masks spill to the heap.
//! * **Shared actions travel once.** Megaflows with equal actions share one copy
//!   ([`super::actions`]). An install event names shared actions by an id (the
//!   address of the shared copy) and carries the actions themselves only until one
//!   event carrying them has been delivered; [`FlowEvent::ActionsGone`] says when the
//!   last megaflow using them left. So an install does not touch a reference count
//!   that the control core also touches (with 64 actions shared by 64,000 flows,
//!   that cache line moved between the cores on every setup), and control holds a
//!   reference to each announced copy until its `ActionsGone`, so an id is never
//!   reused while control may still resolve it.
//! * Actions nobody shares (a 64-bit hash collision) travel with their install.
//!
//! Measured with `pipeline_bench --only-setup` (a full cache, every setup evicting,
//! the ring drained every millisecond by a thread on the other core, medians of 3):
//! with an allocated mask and key per install and a clone of the shared actions, a
//! flow setup cost 3,400–3,550 cycles; with this layout 2,640–2,680; without events
//! 2,360–2,390 (then on a std channel; the ring they travel on now is
//! [`super::event_ring`]).
//!
//! [`EventReader`] turns the events back into installs with their actions resolved.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::actions::Actions;
use super::key::{Mask, KEY_WORDS};
use super::RemoveReason;

/// Mask words an event carries without allocating.
pub const INLINE_WORDS: usize = 8;

/// A megaflow's match as its install event carries it: the mask's nonzero words
/// (with their word numbers) and the masked key.
#[derive(Debug, Clone)]
pub struct EventMatch {
    pub(super) n: u8,
    pub(super) idx: [u8; INLINE_WORDS],
    pub(super) bits: [u64; INLINE_WORDS],
    pub(super) key: [u64; INLINE_WORDS],
    /// Masks wider than [`INLINE_WORDS`] words.
    pub(super) spill: Option<Box<(Mask, Box<[u64]>)>>,
}

impl EventMatch {
    /// The match of everything (no mask words).
    pub(super) fn empty() -> Self {
        EventMatch { n: 0, idx: [0; INLINE_WORDS], bits: [0; INLINE_WORDS], key: [0; INLINE_WORDS], spill: None }
    }

    /// The match of mask `full` (key-space words) and masked key `key` (its
    /// nonzero words' values, in order).
    pub fn new(full: &[u64; KEY_WORDS], key: &[u64]) -> Self {
        let mut m = EventMatch::empty();
        if key.len() > INLINE_WORDS {
            m.spill = Some(Box::new((Mask::from_words(full), key.into())));
            return m;
        }
        for (j, (i, b)) in full.iter().enumerate().filter(|(_, b)| **b != 0).enumerate() {
            m.idx[j] = i as u8;
            m.bits[j] = *b;
        }
        m.n = key.len() as u8;
        m.key[..key.len()].copy_from_slice(key);
        m
    }

    /// The mask and the masked key.
    pub fn parts(&self) -> (Mask, Box<[u64]>) {
        if let Some(s) = &self.spill {
            return (s.0.clone(), s.1.clone());
        }
        let n = self.n as usize;
        (Mask { idx: self.idx[..n].into(), bits: self.bits[..n].into() }, self.key[..n].into())
    }
}

/// The actions of an installed megaflow, as its event names them.
#[derive(Debug, Clone)]
pub enum EventActions {
    /// Actions megaflows share: `id` names them until [`FlowEvent::ActionsGone`].
    /// `first` carries them in every event until one carrying them is delivered.
    Shared {
        /// Their id.
        id: u64,
        /// The actions, if not delivered before.
        first: Option<Arc<Actions>>,
    },
    /// Actions of this megaflow alone.
    Own(Arc<Actions>),
}

/// A megaflow event for the control side.
#[derive(Debug, Clone)]
pub enum FlowEvent {
    /// Installed.
    Installed {
        /// Worker.
        worker: u32,
        /// Megaflow id (slot) and version: unique together.
        flow: u32,
        /// Slot version.
        version: u32,
        /// The mask and key.
        matched: EventMatch,
        /// Minimum length.
        min_len: u32,
        /// Its dependency bits ([`super::Change::bit`]).
        deps: u64,
        /// The actions.
        actions: EventActions,
    },
    /// Removed.
    Removed(Removal),
    /// No megaflow uses the shared actions `id` any more (sent only for actions an
    /// install event delivered).
    ActionsGone {
        /// Worker.
        worker: u32,
        /// The actions' id.
        id: u64,
    },
}

/// A megaflow's match and actions, as control learns them from install events.
#[derive(Debug, Clone)]
pub struct MegaflowDesc {
    /// Its mask.
    pub mask: Mask,
    /// Its masked key words.
    pub key: Box<[u64]>,
    /// Packets shorter than this do not match.
    pub min_len: u32,
    /// Its dependency bits.
    pub deps: u64,
    /// Its actions.
    pub actions: Arc<Actions>,
}

/// An install, its actions resolved.
#[derive(Debug, Clone)]
pub struct Install {
    /// Worker.
    pub worker: u32,
    /// Megaflow id (slot).
    pub flow: u32,
    /// Slot version.
    pub version: u32,
    /// What it matches and does.
    pub desc: InstallDesc,
}

/// What an install says a megaflow matches and does, as it came: the match still in
/// the event's inline form. Reading an event allocates nothing; [`InstallDesc::desc`]
/// makes the [`MegaflowDesc`] (three small allocations) when something needs it, so
/// a megaflow that comes and goes in a flow setup storm costs control no allocation.
#[derive(Debug, Clone)]
pub struct InstallDesc {
    matched: EventMatch,
    /// Packets shorter than this do not match.
    pub min_len: u32,
    /// Its dependency bits.
    pub deps: u64,
    /// Its actions.
    pub actions: Arc<Actions>,
}

impl InstallDesc {
    /// The description.
    pub fn desc(&self) -> MegaflowDesc {
        let (mask, key) = self.matched.parts();
        MegaflowDesc { mask, key, min_len: self.min_len, deps: self.deps, actions: Arc::clone(&self.actions) }
    }
}

/// A megaflow's removal.
#[derive(Debug, Clone, Copy)]
pub struct Removal {
    /// Worker.
    pub worker: u32,
    /// Megaflow id.
    pub flow: u32,
    /// Slot version.
    pub version: u32,
    /// Why.
    pub reason: RemoveReason,
    /// Packets it matched.
    pub packets: u64,
    /// Bytes it matched.
    pub bytes: u64,
}

/// An event as the control side uses it.
#[derive(Debug, Clone)]
pub enum Event {
    /// A megaflow was installed.
    Installed(Install),
    /// A megaflow was removed.
    Removed(Removal),
}

/// Reads the events of any number of workers' rings: remembers the shared actions
/// delivered until they are gone, and resolves installs.
#[derive(Debug, Default)]
pub struct EventReader {
    shared: FxHashMap<u64, Arc<Actions>>,
    unresolved: u64,
}

impl EventReader {
    /// What `e` means, or `None` for bookkeeping events (and for an install naming
    /// actions never delivered, counted in [`EventReader::unresolved`]: the event that
    /// carried them was dropped, which the worker counts too).
    pub fn read(&mut self, e: FlowEvent) -> Option<Event> {
        match e {
            FlowEvent::Installed { worker, flow, version, matched, min_len, deps, actions } => {
                let actions = match actions {
                    EventActions::Own(a) => a,
                    EventActions::Shared { id, first: Some(a) } => {
                        self.shared.insert(id, Arc::clone(&a));
                        a
                    }
                    EventActions::Shared { id, first: None } => match self.shared.get(&id) {
                        Some(a) => Arc::clone(a),
                        None => {
                            self.unresolved += 1;
                            return None;
                        }
                    },
                };
                let desc = InstallDesc { matched, min_len, deps, actions };
                Some(Event::Installed(Install { worker, flow, version, desc }))
            }
            FlowEvent::Removed(r) => Some(Event::Removed(r)),
            FlowEvent::ActionsGone { id, .. } => {
                self.shared.remove(&id);
                None
            }
        }
    }

    /// Shared actions delivered and not gone.
    pub fn shared_actions(&self) -> usize {
        self.shared.len()
    }

    /// Installs whose actions were never delivered.
    pub fn unresolved(&self) -> u64 {
        self.unresolved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_round_trip_inline_and_spilled() {
        for words in [0usize, 1, 3, INLINE_WORDS, INLINE_WORDS + 1, KEY_WORDS] {
            let mut full = [0u64; KEY_WORDS];
            // Every third word, from word 1 on (wrapping to fill the wide cases).
            let picked: Vec<usize> = (0..KEY_WORDS).map(|i| (1 + 3 * i) % KEY_WORDS).take(words).collect();
            for (k, &w) in picked.iter().enumerate() {
                full[w] = 0xff00 + k as u64;
            }
            let key: Vec<u64> = (0..words as u64).map(|k| k * 7 + 1).collect();
            let m = EventMatch::new(&full, &key);
            assert_eq!(m.spill.is_some(), words > INLINE_WORDS, "{words} words");
            let (mask, k) = m.parts();
            assert_eq!(mask, Mask::from_words(&full), "{words} words");
            assert_eq!(&*k, &key[..], "{words} words");
        }
    }

    fn installed(flow: u32, actions: EventActions) -> FlowEvent {
        let full = [0u64; KEY_WORDS];
        FlowEvent::Installed {
            worker: 0,
            flow,
            version: 0,
            matched: EventMatch::new(&full, &[]),
            min_len: 0,
            deps: 0,
            actions,
        }
    }

    #[test]
    fn shared_actions_resolve_from_their_first_delivery_until_gone() {
        let a = Arc::new(Actions::default());
        let mut r = EventReader::default();
        let first = EventActions::Shared { id: 7, first: Some(Arc::clone(&a)) };
        let Some(Event::Installed(i)) = r.read(installed(1, first)) else { panic!("an install") };
        assert!(Arc::ptr_eq(&i.desc.actions, &a));
        let Some(Event::Installed(i)) = r.read(installed(2, EventActions::Shared { id: 7, first: None })) else {
            panic!("an install of the same actions, by id")
        };
        assert!(Arc::ptr_eq(&i.desc.actions, &a));
        assert_eq!(r.shared_actions(), 1);
        assert!(r.read(FlowEvent::ActionsGone { worker: 0, id: 7 }).is_none());
        assert_eq!(r.shared_actions(), 0);
        assert!(r.read(installed(3, EventActions::Shared { id: 7, first: None })).is_none(), "gone: unresolved");
        assert_eq!(r.unresolved(), 1);
        let Some(Event::Installed(i)) = r.read(installed(4, EventActions::Own(Arc::clone(&a)))) else {
            panic!("own actions need no id")
        };
        assert!(Arc::ptr_eq(&i.desc.actions, &a));
    }
}

//! EMC: the exact-match cache in front of dpcls.
//!
//! **Key.** The packet's words under the *union* of all installed megaflow masks:
//! every bit any megaflow reads, nothing else (so payload, IP identification and
//! other unread bytes never split an entry). A packet equal to another on the union
//! bits matches every megaflow the other matches, so an entry pointing at megaflow M
//! is right for any packet with its key that also meets M's length condition
//! (checked on a hit). When a new mask adds bits to the union, entries keyed on the
//! old union are cleared. With more than [`MAX_WORDS`] union words the EMC is off
//! (dpcls alone).
//!
//! **Shape.** [`EmcConfig::entries`] entries (a power of two, default 8192), 2-way
//! set-associative: a key may live in two slots picked by two hash segments; an
//! insertion takes an empty or stale slot of the two, else the first. Each entry
//! holds the key hash, the megaflow id and its slot version (so entries of removed
//! megaflows are ignored, with no scan) and the key words: 80 bytes, 640 KiB per
//! worker at the default size.
//!
//! **Insertion.** After a dpcls hit, with probability 1/`insert_inv_prob` (a per
//! worker xorshift; 0 turns the EMC off), as OVS does to keep many short flows from
//! thrashing it. Measured (`perf/bench_cache.sh` configurations, cycles per packet):
//! always inserting is best with few flows (L3, 1,024 flows: ~155 with, ~162
//! without the EMC); with more flows than entries the EMC thrashes whatever the
//! probability (65,536 flows: ~245 at 1/1, ~250 at 1/100, ~200 without), so the
//! default inserts always and the cache pauses an EMC that misses more than it hits
//! (see [`super`]).

use super::key::{hash_words, Mask, PacketView, KEY_WORDS};

/// Widest union the EMC keys on, in words.
pub const MAX_WORDS: usize = 8;

/// EMC settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmcConfig {
    /// Entries (rounded up to a power of two; at least 2).
    pub entries: usize,
    /// Insert with probability 1/N after a dpcls hit; 0 disables the EMC.
    pub insert_inv_prob: u32,
}

impl Default for EmcConfig {
    fn default() -> Self {
        EmcConfig { entries: 8192, insert_inv_prob: 1 }
    }
}

#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct Entry {
    hash: u32,
    flow: u32,
    version: u32,
    live: u32,
    key: [u64; MAX_WORDS],
}

/// Which packet words a key is made of (the union of the megaflows' masks).
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// The union's words padded to MAX_WORDS (padding: word 0 under a zero mask).
    idx: [u8; MAX_WORDS],
    bits: [u64; MAX_WORDS],
    /// Words in the union (0..=MAX_WORDS).
    n: usize,
    /// Each union word's packet byte offset (word 0, the metadata word, and padding:
    /// 0), and the packet bytes a key reads: packets at least this long take the
    /// straight path of [`Shape::key_words`].
    off: [u32; MAX_WORDS],
    reach: usize,
}

/// The exact-match cache.
#[derive(Debug)]
pub struct Emc {
    cfg: EmcConfig,
    full: [u64; KEY_WORDS],
    shape: Shape,
    on: bool,
    entries: Box<[Entry]>,
    rng: u64,
}

/// An EMC candidate: the megaflow and the version it had when inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Megaflow id.
    pub flow: u32,
    /// Its slot version at insertion.
    pub version: u32,
}

impl Emc {
    /// An empty EMC.
    pub fn new(cfg: EmcConfig) -> Self {
        let n = cfg.entries.max(2).next_power_of_two();
        Emc {
            cfg,
            full: [0; KEY_WORDS],
            shape: Shape::EMPTY,
            on: false,
            entries: vec![Entry::default(); if cfg.insert_inv_prob == 0 { 0 } else { n }].into(),
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Whether lookups can hit.
    #[inline(always)]
    pub fn enabled(&self) -> bool {
        self.on
    }

    fn set_union(&mut self, full: [u64; KEY_WORDS]) {
        self.full = full;
        let union = Mask::from_words(&full);
        self.on = !self.entries.is_empty() && !union.is_empty() && union.len() <= MAX_WORDS;
        let mut sh = Shape::EMPTY;
        if self.on {
            sh.n = union.len();
            for (k, (i, b)) in union.idx.iter().zip(union.bits.iter()).enumerate() {
                sh.idx[k] = *i;
                sh.bits[k] = *b;
                let off = (*i as usize).saturating_sub(1) * 8;
                sh.off[k] = off as u32;
                sh.reach = sh.reach.max(off + 8);
            }
        }
        self.shape = sh;
        self.clear();
    }

    /// Widen the union to cover the mask `full` (all key-space words), whose nonzero
    /// words are the set `used` (see [`crate::cache::key::words_of`]); clears the
    /// entries if it grew.
    pub fn cover(&mut self, full: &[u64; KEY_WORDS], used: u64) {
        if crate::p4::ir::bits_of(used).all(|w| self.full[w] & full[w] == full[w]) {
            return;
        }
        let mut grown = self.full;
        grown.iter_mut().zip(full).for_each(|(u, m)| *u |= m);
        self.set_union(grown);
    }

    /// Forget every entry (the union stays).
    pub fn clear(&mut self) {
        self.entries.iter_mut().for_each(|e| e.live = 0);
    }

    /// Reset the union (after every megaflow was removed).
    pub fn reset(&mut self) {
        self.set_union([0; KEY_WORDS]);
    }

    #[inline(always)]
    fn key(&self, v: &PacketView, k: &mut [u64; MAX_WORDS]) -> u32 {
        self.key_words(v, k);
        hash_words(&k[..self.shape.n.min(MAX_WORDS)])
    }

    /// A packet's key (the union's words), unhashed.
    #[inline(always)]
    pub fn key_words(&self, v: &PacketView, k: &mut [u64; MAX_WORDS]) {
        self.shape.key_words(v, k)
    }

    /// Whether two keys of [`Emc::key_words`] are equal: word by word with an early
    /// exit, so no `memcmp` call and no vector loads across a key's just-stored words
    /// (a store-forwarding stall).
    #[inline(always)]
    pub fn same_key(&self, a: &[u64; MAX_WORDS], b: &[u64; MAX_WORDS]) -> bool {
        (0..self.shape.n.min(MAX_WORDS)).all(|i| a[i] == b[i])
    }

    /// The candidate for a key of [`Emc::key_words`], if it is here.
    #[inline(always)]
    pub fn probe(&self, k: &[u64; MAX_WORDS]) -> Option<Candidate> {
        let h = hash_words(&k[..self.shape.n.min(MAX_WORDS)]);
        for w in self.ways(h) {
            let e = &self.entries[w];
            if e.live != 0 && e.hash == h && self.same_key(&e.key, k) {
                return Some(Candidate { flow: e.flow, version: e.version });
            }
        }
        None
    }

    #[inline(always)]
    fn ways(&self, h: u32) -> [usize; 2] {
        let m = self.entries.len() - 1;
        [h as usize & m, (h.rotate_right(16) as usize ^ 1) & m]
    }

    /// The candidate for a packet, if its key is here.
    #[inline(always)]
    pub fn lookup(&self, v: &PacketView) -> Option<Candidate> {
        let mut k = [0u64; MAX_WORDS];
        self.key_words(v, &mut k);
        self.probe(&k)
    }

    /// Maybe remember that `v`'s key leads to megaflow `c` (insertion policy);
    /// `valid` tells whether an occupying candidate still exists.
    #[inline]
    pub fn insert(&mut self, v: &PacketView, c: Candidate, valid: impl Fn(Candidate) -> bool) {
        if !self.enabled() {
            return;
        }
        if self.cfg.insert_inv_prob > 1 {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            if !self.rng.is_multiple_of(self.cfg.insert_inv_prob as u64) {
                return;
            }
        }
        let mut k = [0u64; MAX_WORDS];
        let h = self.key(v, &mut k);
        let ways = self.ways(h);
        let pick = ways
            .iter()
            .copied()
            .find(|w| {
                let e = &self.entries[*w];
                e.live == 0
                    || (e.hash == h && self.same_key(&e.key, &k))
                    || !valid(Candidate { flow: e.flow, version: e.version })
            })
            .unwrap_or(ways[0]);
        // The key is made again in place rather than copied from `k`: the copy's
        // vector loads span `k`'s just-made scalar stores, no store forwards to them,
        // and each waits for every older store to reach the cache (after a flow
        // setup's many to cold lines, the slowest step of an install).
        let e = &mut self.entries[pick];
        (e.hash, e.flow, e.version, e.live) = (h, c.flow, c.version, 1);
        self.shape.key_words(v, &mut e.key);
    }
}

impl Shape {
    /// No words (a key of none).
    const EMPTY: Shape = Shape { idx: [0; MAX_WORDS], bits: [0; MAX_WORDS], n: 0, off: [0; MAX_WORDS], reach: 8 };

    /// A packet's key (the union's words), unhashed.
    #[inline(always)]
    fn key_words(&self, v: &PacketView, k: &mut [u64; MAX_WORDS]) {
        // Filled in place: returning the array by value copied it back with vector
        // loads right after its scalar stores (a store-forwarding stall per packet).
        let d = v.data();
        if d.len() >= self.reach {
            // Long enough for every word: all MAX_WORDS loads straight from the
            // packet at their offsets, no per-word length test or word count (the
            // padding's mask is zero), then the metadata word (only ever first).
            let d = &d[..self.reach];
            for (i, w) in k.iter_mut().enumerate() {
                let o = self.off[i] as usize;
                let b: [u8; 8] = d[o..o + 8].try_into().unwrap_or_default();
                *w = u64::from_le_bytes(b) & self.bits[i];
            }
            if self.idx[0] == 0 {
                k[0] = v.word(0) & self.bits[0];
            }
            return;
        }
        for (i, w) in k.iter_mut().enumerate() {
            *w = if i < self.n { v.word(self.idx[i] as usize) & self.bits[i] } else { 0 };
        }
    }
}

const _: () = assert!(MAX_WORDS <= KEY_WORDS && std::mem::size_of::<Entry>() == 80);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p4::track::KEY_BYTES;

    fn mask(bytes: &[(usize, u8)]) -> [u64; KEY_WORDS] {
        let mut m = [0u8; KEY_BYTES];
        for (i, b) in bytes {
            m[*i] = *b;
        }
        crate::cache::key::words(&m)
    }

    /// [`Emc::cover`] the mask of `bytes`.
    fn cover(e: &mut Emc, bytes: &[(usize, u8)]) {
        let full = mask(bytes);
        let used = (0..KEY_WORDS).filter(|w| full[*w] != 0).fold(0, |s, w| s | 1 << w);
        e.cover(&full, used);
    }

    #[test]
    fn keys_on_the_union_and_clears_when_it_grows() {
        let mut e = Emc::new(EmcConfig::default());
        assert!(!e.enabled(), "no mask yet");
        cover(&mut e, &[(8 + 12, 0xff)]);
        let a = vec![1u8; 64];
        let mut b = a.clone();
        b[40] = 9; // outside the union: same key
        e.insert(&PacketView::new(0, &a), Candidate { flow: 3, version: 1 }, |_| true);
        assert_eq!(e.lookup(&PacketView::new(0, &b)), Some(Candidate { flow: 3, version: 1 }));
        b[12] = 2; // in the union
        assert_eq!(e.lookup(&PacketView::new(0, &b)), None);
        // A new mask bit: old entries go.
        cover(&mut e, &[(8 + 40, 0x01)]);
        assert_eq!(e.lookup(&PacketView::new(0, &a)), None);
        // Covered already: entries stay.
        e.insert(&PacketView::new(0, &a), Candidate { flow: 4, version: 1 }, |_| true);
        cover(&mut e, &[(8 + 12, 0x0f)]);
        assert_eq!(e.lookup(&PacketView::new(0, &a)).map(|c| c.flow), Some(4));
    }

    #[test]
    fn two_ways_and_stale_slots_are_reused() {
        let mut e = Emc::new(EmcConfig { entries: 2, insert_inv_prob: 1 });
        cover(&mut e, &[(8, 0xff)]);
        let pkts: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 8]).collect();
        for (i, p) in pkts.iter().enumerate().take(2) {
            e.insert(&PacketView::new(0, p), Candidate { flow: i as u32, version: 0 }, |_| true);
        }
        // Two slots, two keys: both may be present (if their ways differ).
        let present = pkts.iter().take(2).filter(|p| e.lookup(&PacketView::new(0, p)).is_some()).count();
        assert!(present >= 1);
        // Everything stale: the new key takes a slot and is found.
        e.insert(&PacketView::new(0, &pkts[2]), Candidate { flow: 2, version: 0 }, |_| false);
        assert_eq!(e.lookup(&PacketView::new(0, &pkts[2])).map(|c| c.flow), Some(2));
        let off = Emc::new(EmcConfig { entries: 8, insert_inv_prob: 0 });
        assert!(!off.enabled());
    }
}

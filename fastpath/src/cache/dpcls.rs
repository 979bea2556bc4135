//! dpcls: the megaflow classifier, a tuple space of subtables, one per mask.
//!
//! A subtable holds the masked keys of its megaflows in an open-addressing hash
//! table (linear probing, 8-byte slots of `hash << 32 | entry + 1`, load ≤ 1/2,
//! backward-shift deletion so there are no tombstones); the entries live in one
//! flat array, each its key words followed by one word of megaflow id and minimum
//! length, so that matching a slot's entry reads one record (one or two cache lines),
//! not a key, an id and a length from three arrays (three misses per lookup or
//! install once the subtable outgrows the cache). A burst is looked up subtable by
//! subtable, most-hit first: each subtable takes every packet still unmatched, so its
//! mask and slots stay in cache for the whole burst. Lookups are specialized by word
//! count (1 to 8 words: fixed-size arrays the compiler unrolls) with a generic
//! fallback for wider masks. Megaflows never need priorities: any megaflow that
//! matches a packet gives the pipeline's result for it (see [`super`]).

use super::key::{hash_words, Mask, PacketView, KEY_WORDS};
use dpdk_sys::lcore::prefetch;

/// No megaflow.
pub const NONE: u32 = u32::MAX;

/// One mask's megaflows.
#[derive(Debug)]
pub struct Subtable {
    /// The mask.
    pub mask: Mask,
    /// Packets matched since the last re-ranking.
    pub hits: u64,
    slots: Vec<u64>,
    /// Per entry, [`Subtable::stride`] words: the masked key, then
    /// `min_len << 32 | megaflow` ([`NONE`] when the entry is free).
    entries: Vec<u64>,
    free: Vec<u32>,
    len: usize,
    /// The classifier's insert count ([`Dpcls::inserts`]) after this subtable's
    /// latest insert.
    inserted: u64,
}

impl Subtable {
    fn new(mask: Mask) -> Self {
        Subtable { mask, hits: 0, slots: vec![0; 16], entries: vec![], free: vec![], len: 0, inserted: 0 }
    }

    /// Megaflows in this subtable.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Key words.
    fn words(&self) -> usize {
        self.mask.len()
    }

    /// Words per entry: the key and the id/length word.
    fn stride(&self) -> usize {
        self.mask.len() + 1
    }

    /// Entry `e`'s key and its megaflow and minimum length.
    #[inline(always)]
    fn entry(&self, e: usize) -> (&[u64], u32, u32) {
        let n = self.words();
        let r = &self.entries[e * (n + 1)..e * (n + 1) + n + 1];
        (&r[..n], r[n] as u32, (r[n] >> 32) as u32)
    }

    /// Probe for `key` (masked words, hash `h`): the first entry with that key that
    /// `accept` takes.
    #[inline(always)]
    fn probe(&self, key: &[u64], h: u32, accept: impl Fn(u32) -> bool) -> Option<u32> {
        let cap = self.slots.len() - 1;
        let mut i = h as usize & cap;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if (s >> 32) as u32 == h {
                let (k, flow, min_len) = self.entry((s as u32 - 1) as usize);
                if k == key && accept(min_len) {
                    return Some(flow);
                }
            }
            i = (i + 1) & cap;
        }
    }

    /// The megaflow whose key is `key` (hash `h`) and whose length condition `len`
    /// meets.
    #[inline(always)]
    fn find(&self, key: &[u64], h: u32, len: usize) -> u32 {
        self.probe(key, h, |min_len| len >= min_len as usize).unwrap_or(NONE)
    }

    /// The megaflow with an identical key (same masked words and length condition;
    /// `h` is the key's hash).
    fn find_exact(&self, key: &[u64], h: u32, min_len: u32) -> Option<u32> {
        self.probe(key, h, |m| m == min_len)
    }

    fn place(&mut self, h: u32, e: u32) {
        let cap = self.slots.len() - 1;
        let mut i = h as usize & cap;
        while self.slots[i] != 0 {
            i = (i + 1) & cap;
        }
        self.slots[i] = (h as u64) << 32 | (e as u64 + 1);
    }

    fn insert(&mut self, key: &[u64], h: u32, min_len: u32, flow: u32) -> u32 {
        if (self.len + 1) * 2 > self.slots.len() {
            let grown = vec![0; self.slots.len() * 2];
            let old = std::mem::replace(&mut self.slots, grown);
            for s in old.into_iter().filter(|s| *s != 0) {
                self.place((s >> 32) as u32, s as u32 - 1);
            }
        }
        let n = self.stride();
        let tail = (min_len as u64) << 32 | flow as u64;
        let e = match self.free.pop() {
            Some(e) => {
                let r = &mut self.entries[e as usize * n..e as usize * n + n];
                r[..n - 1].copy_from_slice(key);
                r[n - 1] = tail;
                e
            }
            None => {
                self.entries.extend_from_slice(key);
                self.entries.push(tail);
                (self.entries.len() / n - 1) as u32
            }
        };
        self.place(h, e);
        self.len += 1;
        e
    }

    /// Remove entry `e`, whose key hashes to `h` (kept by the caller: reading the
    /// key back would be a cache miss on every eviction).
    fn remove(&mut self, e: u32, h: u32) {
        debug_assert_eq!(h, hash_words(self.entry(e as usize).0));
        let cap = self.slots.len() - 1;
        let mut i = h as usize & cap;
        while self.slots[i] as u32 != e + 1 {
            debug_assert!(self.slots[i] != 0, "entry {e} is in its subtable");
            i = (i + 1) & cap;
        }
        // Backward shift: pull later members of the probe run into the hole.
        let mut hole = i;
        let mut j = (i + 1) & cap;
        while self.slots[j] != 0 {
            let home = (self.slots[j] >> 32) as usize & cap;
            let dist_j = j.wrapping_sub(home) & cap;
            let dist_hole = hole.wrapping_sub(home) & cap;
            if dist_hole <= dist_j {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
            j = (j + 1) & cap;
        }
        self.slots[hole] = 0;
        let last = e as usize * self.stride() + self.words();
        self.entries[last] = NONE as u64;
        self.free.push(e);
        self.len -= 1;
    }

    /// Look up the packets of `todo` (a bit per view); matched ones get their
    /// megaflow in `found` and leave `todo`. Returns the number matched.
    #[inline(always)]
    fn lookup_burst(&self, views: &[PacketView], todo: &mut u32, found: &mut [u32]) -> u32 {
        match self.words() {
            1 => self.lookup_n::<1>(views, todo, found),
            2 => self.lookup_n::<2>(views, todo, found),
            3 => self.lookup_n::<3>(views, todo, found),
            4 => self.lookup_n::<4>(views, todo, found),
            5 => self.lookup_n::<5>(views, todo, found),
            6 => self.lookup_n::<6>(views, todo, found),
            7 => self.lookup_n::<7>(views, todo, found),
            8 => self.lookup_n::<8>(views, todo, found),
            _ => self.lookup_generic(views, todo, found),
        }
    }

    /// In two passes: every packet's masked key and hash, its home slot asked for;
    /// then the probes. A burst's slot misses (a subtable outgrows the cache with
    /// tens of thousands of megaflows) are then in flight together instead of one
    /// at a time.
    fn lookup_n<const N: usize>(&self, views: &[PacketView], todo: &mut u32, found: &mut [u32]) -> u32 {
        let idx: &[u8; N] = (&*self.mask.idx).try_into().expect("stride N");
        let bits: &[u64; N] = (&*self.mask.bits).try_into().expect("stride N");
        let cap = self.slots.len() - 1;
        let mut keys = [[0u64; N]; 32];
        let mut hashes = [0u32; 32];
        let mut m = *todo;
        while m != 0 {
            let p = m.trailing_zeros() as usize;
            m &= m - 1;
            let v = &views[p];
            keys[p] = std::array::from_fn(|k| v.word(idx[k] as usize) & bits[k]);
            hashes[p] = hash_words(&keys[p]);
            // `get`, though always in range: an index's panic path in this loop cost
            // a flow setup ~60 cycles (7 interleaved `pipeline_bench` runs).
            if let Some(s) = self.slots.get(hashes[p] as usize & cap) {
                prefetch(s);
            }
        }
        let mut hits = 0;
        let mut m = *todo;
        while m != 0 {
            let p = m.trailing_zeros() as usize;
            m &= m - 1;
            let f = self.find(&keys[p], hashes[p], views[p].data().len());
            if f != NONE {
                found[p] = f;
                *todo &= !(1 << p);
                hits += 1;
            }
        }
        hits
    }

    fn lookup_generic(&self, views: &[PacketView], todo: &mut u32, found: &mut [u32]) -> u32 {
        let mut key = [0u64; KEY_WORDS];
        let mut hits = 0;
        let mut m = *todo;
        while m != 0 {
            let p = m.trailing_zeros() as usize;
            m &= m - 1;
            let f = self.lookup_one(&views[p], &mut key);
            if f != NONE {
                found[p] = f;
                *todo &= !(1 << p);
                hits += 1;
            }
        }
        hits
    }

    /// One packet's megaflow here, or [`NONE`] (`key`: scratch).
    #[inline]
    fn lookup_one(&self, v: &PacketView, key: &mut [u64; KEY_WORDS]) -> u32 {
        let n = self.words();
        self.mask.apply(v, &mut key[..n]);
        self.find(&key[..n], hash_words(&key[..n]), v.data().len())
    }
}

/// Where a megaflow sits in the classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// Subtable index.
    pub subtable: u32,
    /// Entry in the subtable.
    pub entry: u32,
    /// Its key's hash.
    pub hash: u32,
}

/// The classifier.
#[derive(Debug, Default)]
pub struct Dpcls {
    subtables: Vec<Subtable>,
    /// Subtable indices, most hits first; empty subtables are left out.
    order: Vec<u32>,
    /// Keys inserted so far (never reset): the epoch of [`Dpcls::lookup_since`].
    inserts: u64,
}

/// Result of a burst lookup.
#[derive(Debug, Default, Clone, Copy)]
pub struct BurstLookup {
    /// Packets matched.
    pub hits: u32,
    /// Subtables probed, summed over matched packets (each counts the subtables
    /// searched until its match).
    pub searched: u32,
}

impl Dpcls {
    /// Subtables with megaflows.
    pub fn active_subtables(&self) -> usize {
        self.order.len()
    }

    /// Look up the packets of `todo` (bit i: `views[i]`), most-hit subtable first.
    #[inline]
    pub fn lookup(&mut self, views: &[PacketView], todo: &mut u32, found: &mut [u32]) -> BurstLookup {
        let mut r = BurstLookup::default();
        for (rank, &s) in self.order.iter().enumerate() {
            if *todo == 0 {
                break;
            }
            let sub = &mut self.subtables[s as usize];
            let h = sub.lookup_burst(views, todo, found);
            sub.hits += h as u64;
            r.hits += h;
            r.searched += h * (rank as u32 + 1);
        }
        r
    }

    /// Keys inserted so far: an epoch for [`Dpcls::lookup_since`].
    #[inline]
    pub fn inserts(&self) -> u64 {
        self.inserts
    }

    /// Look up one packet that matched nothing when the insert count was `since`:
    /// only the subtables with a key inserted after that, most-hit first (removals
    /// only take matches away, so nothing else can match it now). The worker's miss
    /// path asks this of each miss after the burst's upcalls installed megaflows: a
    /// probe of the one or two subtables they went to, instead of a whole lookup.
    /// Returns the megaflow (or [`NONE`]) and the subtables searched.
    #[inline]
    pub fn lookup_since(&mut self, view: &PacketView, since: u64) -> (u32, u32) {
        if self.inserts == since {
            return (NONE, 0);
        }
        let mut searched = 0;
        let mut key = [0u64; KEY_WORDS];
        for &s in &self.order {
            let sub = &mut self.subtables[s as usize];
            if sub.inserted <= since {
                continue;
            }
            searched += 1;
            let f = sub.lookup_one(view, &mut key);
            if f != NONE {
                sub.hits += 1;
                return (f, searched);
            }
        }
        (NONE, searched)
    }

    /// Install a masked key: `full` is the mask as all key-space words, `key` the
    /// packet's words under it (the non-zero mask words only). If the same key is
    /// already there, nothing changes and its megaflow is returned as `Err`.
    pub fn insert(&mut self, full: &[u64; KEY_WORDS], key: &[u64], min_len: u32, flow: u32) -> Result<Place, u32> {
        let same =
            |m: &Mask| m.len() == key.len() && m.idx.iter().zip(m.bits.iter()).all(|(i, b)| full[*i as usize] == *b);
        let s = match self.subtables.iter().position(|s| same(&s.mask)) {
            Some(s) => s,
            None => {
                self.subtables.push(Subtable::new(Mask::from_words(full)));
                self.subtables.len() - 1
            }
        };
        let sub = &mut self.subtables[s];
        let hash = hash_words(key);
        if let Some(f) = sub.find_exact(key, hash, min_len) {
            return Err(f);
        }
        let entry = sub.insert(key, hash, min_len, flow);
        self.inserts += 1;
        sub.inserted = self.inserts;
        if sub.len == 1 {
            self.order.push(s as u32);
        }
        Ok(Place { subtable: s as u32, entry, hash })
    }

    /// The megaflow with exactly this mask (its words, as [`Mask`] holds them), key
    /// and minimum length, if installed.
    pub fn find(&self, mask: &Mask, key: &[u64], min_len: u32) -> Option<u32> {
        self.subtables.iter().find(|s| s.mask == *mask && s.len > 0)?.find_exact(key, hash_words(key), min_len)
    }

    /// Remove a megaflow's key.
    pub fn remove(&mut self, p: Place) {
        let sub = &mut self.subtables[p.subtable as usize];
        sub.remove(p.entry, p.hash);
        if sub.len == 0 {
            self.order.retain(|s| *s != p.subtable);
        }
    }

    /// Re-rank subtables by hits since the last ranking, then restart the counts.
    pub fn rerank(&mut self) {
        let subs = &self.subtables;
        self.order.sort_by_key(|s| std::cmp::Reverse(subs[*s as usize].hits));
        self.subtables.iter_mut().for_each(|s| s.hits = 0);
    }

    /// Remove everything.
    pub fn clear(&mut self) {
        self.subtables.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p4::track::KEY_BYTES;

    fn mask(bytes: &[(usize, u8)]) -> Mask {
        let mut m = [0u8; KEY_BYTES];
        for (i, b) in bytes {
            m[*i] = *b;
        }
        Mask::from_bytes(&m)
    }

    fn key(m: &Mask, v: &PacketView) -> Vec<u64> {
        let mut k = vec![0; m.len()];
        m.apply(v, &mut k);
        k
    }

    fn full(m: &Mask) -> [u64; KEY_WORDS] {
        let mut f = [0; KEY_WORDS];
        for (i, b) in m.idx.iter().zip(m.bits.iter()) {
            f[*i as usize] = *b;
        }
        f
    }

    #[test]
    fn lookup_since_probes_only_subtables_inserted_into_after_the_epoch() {
        let mut d = Dpcls::default();
        let by_first = mask(&[(8, 0xff)]);
        let by_tenth = mask(&[(8 + 9, 0xff)]);
        let pkts: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 64]).collect();
        let views: Vec<_> = pkts.iter().map(|p| PacketView::new(1, p)).collect();
        d.insert(&full(&by_first), &key(&by_first, &views[0]), 10, 0).unwrap();
        let epoch = d.inserts();
        assert_eq!(d.lookup_since(&views[0], epoch), (NONE, 0), "nothing inserted since: no probe at all");
        d.insert(&full(&by_tenth), &key(&by_tenth, &views[1]), 64, 1).unwrap();
        assert_eq!(d.lookup_since(&views[1], epoch), (1, 1), "the new megaflow, one subtable probed");
        assert_eq!(d.lookup_since(&views[0], epoch), (NONE, 1), "the older subtable is not probed");
        assert_eq!(d.lookup_since(&views[2], epoch), (NONE, 1));
        let short = PacketView::new(1, &pkts[1][..40]);
        assert_eq!(d.lookup_since(&short, epoch).0, NONE, "the minimum length still applies");
        // A key into the older subtable makes it new again.
        d.insert(&full(&by_first), &key(&by_first, &views[3]), 10, 3).unwrap();
        assert_eq!(d.lookup_since(&views[3], epoch).0, 3);
        assert_eq!(d.lookup_since(&views[0], epoch).0, 0, "a subtable probed is probed whole");
        assert_eq!(d.lookup_since(&views[3], d.inserts()), (NONE, 0));
        // The epoch survives a clear: what is inserted after it is new.
        let before = d.inserts();
        d.clear();
        d.insert(&full(&by_first), &key(&by_first, &views[2]), 10, 2).unwrap();
        assert_eq!(d.lookup_since(&views[2], before).0, 2);
    }

    #[test]
    fn burst_lookup_finds_each_packet_in_its_subtable_and_removal_keeps_the_rest() {
        let mut d = Dpcls::default();
        let by_first = mask(&[(8, 0xff)]);
        let by_tenth = mask(&[(8 + 9, 0xf0), (8 + 40, 0xff)]); // two words, one partial
        let pkts: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 64]).collect();
        let views: Vec<_> = pkts.iter().map(|p| PacketView::new(1, p)).collect();
        let mut places = vec![];
        for (i, v) in views.iter().enumerate().take(20) {
            let m = if i % 2 == 0 { &by_first } else { &by_tenth };
            places.push(d.insert(&full(m), &key(m, v), 10, i as u32).unwrap());
        }
        // The same key again: refused with the megaflow that has it.
        assert_eq!(d.insert(&full(&by_first), &key(&by_first, &views[0]), 10, 99), Err(0));
        assert_eq!(d.active_subtables(), 2);
        let mut found = [NONE; 32];
        let mut todo = u32::MAX;
        let r = d.lookup(&views[..32], &mut todo, &mut found);
        assert_eq!(r.hits, 20);
        for (i, f) in found.iter().enumerate() {
            let want = if i < 20 { i as u32 } else { NONE };
            assert_eq!(*f, want, "packet {i}");
        }
        // Remove half; the others are still found (backward shift kept the runs).
        for (i, p) in places.iter().enumerate() {
            if i % 4 == 0 {
                d.remove(*p);
            }
        }
        let mut found = [NONE; 32];
        let mut todo = (1 << 20) - 1;
        d.lookup(&views[..20], &mut todo, &mut found);
        for i in (0..20).step_by(2) {
            assert_eq!(found[i] == NONE, i % 4 == 0, "packet {i}");
        }
    }

    #[test]
    fn length_conditions_and_growth() {
        let mut d = Dpcls::default();
        let m = mask(&[(8 + 30, 0xff), (8 + 31, 0xff), (8 + 32, 0xff)]);
        let pkts: Vec<Vec<u8>> = (0..2000u32).map(|i| [&[0u8; 30][..], &i.to_be_bytes()[1..]].concat()).collect();
        for (i, p) in pkts.iter().enumerate() {
            d.insert(&full(&m), &key(&m, &PacketView::new(0, p)), 33, i as u32).unwrap();
        }
        let mut found = [NONE; 1];
        let mut todo = 1;
        d.lookup(&[PacketView::new(0, &pkts[1234])], &mut todo, &mut found);
        assert_eq!(found[0], 1234);
        // Too short for the length condition: no match.
        let short = &pkts[0][..32];
        let mut todo = 1;
        let mut found = [NONE; 1];
        d.lookup(&[PacketView::new(0, short)], &mut todo, &mut found);
        assert_eq!((todo, found[0]), (1, NONE));
        // A wide mask (generic path).
        let wide = Mask::from_bytes(&[0xff; KEY_BYTES]);
        let p = vec![7u8; 300];
        d.insert(&full(&wide), &key(&wide, &PacketView::new(3, &p)), 256, 5000).unwrap();
        let mut todo = 1;
        let mut found = [NONE; 1];
        d.lookup(&[PacketView::new(3, &p)], &mut todo, &mut found);
        assert_eq!(found[0], 5000);
        d.rerank();
        assert_eq!(d.active_subtables(), 2);
    }
}

//! A binary trie of an LPM table's prefixes, for read tracking only: how many leading
//! bits of a lookup key decide the longest-prefix match.
//!
//! The tuple-space lookup of [`super::tables`] probes prefix lengths longest first, so
//! marking the probed groups' masks would mark every bit of the longest length present
//! (a /32 route makes every megaflow exact on the whole address). The trie answers
//! what really decides (as OVS's prefix tracking does): walking the key's bits from the
//! most significant one, the walk reaches depth `d` before falling off the trie. Every
//! prefix longer than the winner that does not match diverges from the key within the
//! first `d + 1` bits, so every key that agrees on `max(winner length, d + 1)` bits
//! (or `d` when the walk ends in a leaf: nothing below it) gets the same result.

/// Prefixes of one `width`-bit field.
#[derive(Debug, Clone)]
pub(crate) struct PrefixTrie {
    width: u32,
    /// Children (0 = none; the root is node 0 and is nobody's child).
    kids: Vec<[u32; 2]>,
    /// Prefixes ending at each node.
    ends: Vec<u32>,
    free: Vec<u32>,
}

impl PrefixTrie {
    pub(crate) fn new(width: u32) -> Self {
        PrefixTrie { width, kids: vec![[0, 0]], ends: vec![0], free: vec![] }
    }

    fn bit(&self, v: u128, depth: u32) -> usize {
        (v >> (self.width - 1 - depth) & 1) as usize
    }

    /// Add a prefix (`value`'s top `len` bits).
    pub(crate) fn insert(&mut self, value: u128, len: u32) {
        let mut n = 0usize;
        for d in 0..len {
            let b = self.bit(value, d);
            if self.kids[n][b] == 0 {
                let new = match self.free.pop() {
                    Some(f) => f as usize,
                    None => {
                        self.kids.push([0, 0]);
                        self.ends.push(0);
                        self.kids.len() - 1
                    }
                };
                self.kids[new] = [0, 0];
                self.ends[new] = 0;
                self.kids[n][b] = new as u32;
            }
            n = self.kids[n][b] as usize;
        }
        self.ends[n] += 1;
    }

    /// Remove a prefix added before; empty branches are pruned.
    pub(crate) fn remove(&mut self, value: u128, len: u32) {
        let mut path = Vec::with_capacity(len as usize);
        let mut n = 0usize;
        for d in 0..len {
            let b = self.bit(value, d);
            let next = self.kids[n][b];
            if next == 0 {
                return;
            }
            path.push((n, b));
            n = next as usize;
        }
        self.ends[n] = self.ends[n].saturating_sub(1);
        while let Some((parent, b)) = path.pop() {
            if self.ends[n] != 0 || self.kids[n] != [0, 0] {
                break;
            }
            self.kids[parent][b] = 0;
            self.free.push(n as u32);
            n = parent;
        }
    }

    /// Walk `key` from the root: the node where it falls off the trie, and its depth.
    fn walk(&self, key: u128) -> (usize, u32) {
        let (mut n, mut d) = (0usize, 0);
        while d < self.width {
            let next = self.kids[n][self.bit(key, d)];
            if next == 0 {
                break;
            }
            n = next as usize;
            d += 1;
        }
        (n, d)
    }

    /// [`Self::walk`] for keys of up to 64 bits (IPv4 addresses, MACs), with 64-bit
    /// shifts: the key MSB-aligned, one bit shifted out per level.
    fn walk64(&self, key: u64) -> (usize, u32) {
        debug_assert!((1..=64).contains(&self.width));
        let mut k = key << (64 - self.width);
        let (mut n, mut d) = (0usize, 0);
        while d < self.width {
            let next = self.kids[n][(k >> 63) as usize];
            if next == 0 {
                break;
            }
            n = next as usize;
            d += 1;
            k <<= 1;
        }
        (n, d)
    }

    /// Leading bits of `key` that decide a match won by a prefix of `winner` bits
    /// (0 on a miss): see the module doc.
    pub(crate) fn deciding_bits(&self, key: u128, winner: u32) -> u32 {
        if winner >= self.width {
            // A full-length prefix won (a host route): every bit decides, and the
            // walk (a dependent load per bit) would say so.
            return self.width;
        }
        let (n, d) = if self.width <= 64 { self.walk64(key as u64) } else { self.walk(key) };
        let need = if d == self.width || self.kids[n] == [0, 0] { d } else { d + 1 };
        need.max(winner).min(self.width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> u128 {
        s.split('.').fold(0u128, |a, o| a << 8 | o.parse::<u128>().unwrap())
    }

    #[test]
    fn deciding_bits_stop_where_the_trie_ends() {
        let mut t = PrefixTrie::new(32);
        t.insert(ip("10.0.0.0"), 16);
        t.insert(ip("10.0.1.0"), 24);
        t.insert(ip("10.0.1.10"), 32);
        // In 10.0.7.x: the walk follows 10.0 (16 bits), then 0000_0 of the third
        // octet matches the /24's path for five bits: diverges at bit 21.
        assert_eq!(t.deciding_bits(ip("10.0.7.1"), 16), 22);
        // In 10.0.1.x but not .10: the /24 wins, the /32 below decides more bits.
        assert_eq!(t.deciding_bits(ip("10.0.1.99"), 24), 26);
        assert_eq!(t.deciding_bits(ip("10.0.1.10"), 32), 32);
        // Outside 10/8: the first differing bit decides the miss.
        assert_eq!(t.deciding_bits(ip("192.168.0.1"), 0), 1);
        assert_eq!(t.deciding_bits(ip("10.1.0.1"), 0), 16);
        // Removing the /32 and /24 leaves the /16 leaf: 16 bits suffice.
        t.remove(ip("10.0.1.10"), 32);
        t.remove(ip("10.0.1.0"), 24);
        assert_eq!(t.deciding_bits(ip("10.0.1.99"), 16), 16);
        // A default route: the root ends a prefix.
        t.insert(0, 0);
        assert_eq!(t.deciding_bits(ip("192.168.0.1"), 0), 1);
        t.remove(ip("10.0.0.0"), 16);
        assert_eq!(t.deciding_bits(ip("192.168.0.1"), 0), 0, "only the default route: nothing decides");
        // Nodes are reused after pruning.
        let before = t.kids.len();
        t.insert(ip("172.16.0.0"), 12);
        assert_eq!(t.kids.len(), before);
    }

    proptest::proptest! {
        /// The 64-bit walk ends where the generic one does, at every width it takes
        /// (a prefix's value may have bits below its length: they are ignored).
        #[test]
        fn walk64_is_walk(
            width in 1u32..=64,
            prefixes in proptest::collection::vec((proptest::prelude::any::<u64>(), 0u32..=64), 0..12),
            keys in proptest::collection::vec(proptest::prelude::any::<u64>(), 1..8),
        ) {
            let m = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
            let mut t = PrefixTrie::new(width);
            for (v, len) in &prefixes {
                t.insert((v & m) as u128, (*len).min(width));
            }
            for k in keys {
                proptest::prop_assert_eq!(t.walk64(k & m), t.walk((k & m) as u128));
            }
        }
    }
}

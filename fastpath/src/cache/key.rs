//! The flow key: a packet seen as 64-bit words of the tracking key space, read in
//! place (no parse, no copy).
//!
//! The key space is the one [`crate::p4::track`] records reads in: word 0 holds the
//! ingress port (2 bytes, big-endian), the packet length (4 bytes) and 2 zero bytes;
//! words 1..=32 are the first 256 packet bytes, zero past the packet's end. Words are
//! loaded little-endian, and masks are built from the tracker's byte mask the same
//! way, so `word & mask` compares exactly the bits the pipeline read.

use crate::p4::ir::bits_of;
use crate::p4::track::{ReadSet, KEY_BYTES, KEY_PACKET_OFFSET};

/// Words in the key space.
pub const KEY_WORDS: usize = KEY_BYTES / 8;
const _: () = assert!(KEY_BYTES.is_multiple_of(8) && KEY_PACKET_OFFSET == 8);

/// A packet as key-space words.
#[derive(Debug, Clone, Copy)]
pub struct PacketView<'a> {
    head: u64,
    data: &'a [u8],
}

impl<'a> PacketView<'a> {
    /// The view of `data` received on P4 port `ingress_port`.
    #[inline(always)]
    pub fn new(ingress_port: u32, data: &'a [u8]) -> Self {
        let p = (ingress_port as u16).to_be_bytes();
        let l = (data.len() as u32).to_be_bytes();
        let head = u64::from_le_bytes([p[0], p[1], l[0], l[1], l[2], l[3], 0, 0]);
        PacketView { head, data }
    }

    /// The packet bytes.
    #[inline(always)]
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Key-space word `w` (0..[`KEY_WORDS`]).
    #[inline(always)]
    pub fn word(&self, w: usize) -> u64 {
        if w == 0 {
            return self.head;
        }
        let off = (w - 1) * 8;
        match self.data.get(off..off + 8) {
            Some(b) => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            None => {
                let mut b = [0u8; 8];
                if let Some(tail) = self.data.get(off..) {
                    b[..tail.len()].copy_from_slice(tail);
                }
                u64::from_le_bytes(b)
            }
        }
    }
}

/// A mask over the key space, as its non-zero words.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mask {
    /// Word indices, ascending.
    pub idx: Box<[u8]>,
    /// The mask of each word.
    pub bits: Box<[u64]>,
}

impl Mask {
    /// The mask of a tracker byte mask (one bit per key-space bit).
    pub fn from_bytes(m: &[u8; KEY_BYTES]) -> Mask {
        Mask::from_words(&words(m))
    }

    /// The mask of all key-space words.
    pub fn from_words(full: &[u64; KEY_WORDS]) -> Mask {
        let (idx, bits): (Vec<u8>, Vec<u64>) =
            full.iter().enumerate().filter(|(_, b)| **b != 0).map(|(i, b)| (i as u8, *b)).unzip();
        Mask { idx: idx.into(), bits: bits.into() }
    }

    /// Non-zero words.
    pub fn len(&self) -> usize {
        self.idx.len()
    }

    /// Whether no bit is set.
    pub fn is_empty(&self) -> bool {
        self.idx.is_empty()
    }

    /// The masked words of a packet, into `out` (its first `len()` entries).
    #[inline(always)]
    pub fn apply(&self, v: &PacketView, out: &mut [u64]) {
        for ((o, i), b) in out.iter_mut().zip(self.idx.iter()).zip(self.bits.iter()) {
            *o = v.word(*i as usize) & b;
        }
    }
}

/// A tracker byte mask as key-space words.
pub fn words(m: &[u8; KEY_BYTES]) -> [u64; KEY_WORDS] {
    std::array::from_fn(|w| u64::from_le_bytes(m[w * 8..w * 8 + 8].try_into().expect("8 bytes")))
}

/// Write a read set's mask as key-space words into `full` (zero on entry), and
/// return the set of the nonzero ones (bit `w` for word `w`): converted word by word
/// from the tracker's record of them, not across the whole key space. (Filled in
/// place: a returned 264-byte array was a `memcpy` call per flow setup.)
#[inline(always)]
pub fn words_of(r: &ReadSet, full: &mut [u64; KEY_WORDS]) -> u64 {
    let (m, used) = (r.mask(), r.used_words());
    for w in bits_of(used) {
        full[w] = u64::from_le_bytes(m[w * 8..w * 8 + 8].try_into().expect("8 bytes"));
    }
    debug_assert_eq!(*full, words(m), "the read set's word set names every nonzero word");
    used
}

/// The extent of a full mask whose nonzero words are the set `used` (as [`words_of`]
/// gives): one past the last masked packet byte, found without scanning the others.
#[inline]
pub fn extent_in(full: &[u64; KEY_WORDS], used: u64) -> usize {
    // Word 0 is the port and length, not packet bytes.
    let packet = used & !1;
    if packet == 0 {
        return 0;
    }
    let w = 63 - packet.leading_zeros() as usize;
    (w - 1) * 8 + 8 - (full[w].leading_zeros() / 8) as usize
}

/// Hash of masked key words.
#[inline(always)]
pub fn hash_words(words: &[u64]) -> u32 {
    let mut h: u64 = 0x243f_6a88_85a3_08d3;
    for w in words {
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 29;
    }
    (h ^ (h >> 32)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_the_tracker_key_space() {
        let data: Vec<u8> = (1..=21).collect();
        let v = PacketView::new(0x0102, &data);
        let k = ReadSet::key_of(0x0102, &data);
        for w in 0..KEY_WORDS {
            assert_eq!(v.word(w), u64::from_le_bytes(k[w * 8..w * 8 + 8].try_into().unwrap()), "word {w}");
        }
    }

    #[test]
    fn masks_select_bytes_and_know_their_extent() {
        let mut m = [0u8; KEY_BYTES];
        m[0] = 0xff; // port
        m[8 + 12] = 0xff; // ether type
        m[8 + 13] = 0x0f;
        let mask = Mask::from_bytes(&m);
        assert_eq!(&*mask.idx, &[0, 2]);
        assert_eq!(extent_in(&words(&m), 0b101), 14);
        assert_eq!(extent_in(&words(&m), 0b1), 0, "the port word is no packet byte");
        let data = [0xabu8; 20];
        let mut out = [0u64; 2];
        mask.apply(&PacketView::new(7, &data), &mut out);
        assert_eq!(out[0], 0, "port 7: high byte only, zero");
        assert_eq!(out[1].to_le_bytes(), [0, 0, 0, 0, 0xab, 0x0b, 0, 0]);
        assert_eq!(extent_in(&[0; KEY_WORDS], 0), 0);
        assert!(Mask::from_bytes(&[0u8; KEY_BYTES]).is_empty());
    }
}

//! Big-endian bit-field access to packet bytes, and the hash algorithms of v1model.
//!
//! Fields sit MSB first at any bit offset (network order). Reads and writes work on
//! up to 128 bits; callers check bounds first (`bit_offset + width <= 8 * buf.len()`).

use super::ir::{mask_of, HashAlgo, Value};

/// The bytes `first..=last` (at most 16) as a big-endian number.
#[inline(always)]
fn load(buf: &[u8], first: usize, last: usize) -> u128 {
    let n = last + 1 - first;
    let mut w = [0u8; 16];
    w[16 - n..].copy_from_slice(&buf[first..=last]);
    u128::from_be_bytes(w)
}

/// Store the low bytes of `acc` as bytes `first..=last` (at most 16).
#[inline(always)]
fn store(buf: &mut [u8], first: usize, last: usize, acc: u128) {
    let n = last + 1 - first;
    buf[first..=last].copy_from_slice(&acc.to_be_bytes()[16 - n..]);
}

/// Read `width` (1..=64) bits at `bit` from `buf`.
#[inline]
fn read_small(buf: &[u8], bit: usize, width: u32) -> u64 {
    let first = bit / 8;
    let last = (bit + width as usize - 1) / 8;
    let trailing = (last + 1) * 8 - (bit + width as usize);
    ((load(buf, first, last) >> trailing) & mask_of(width)) as u64
}

/// Read `width` (1..=128) bits at bit offset `bit`.
///
/// Fast paths: one fixed-size unaligned load of 8 or 16 bytes when the buffer has
/// them from the field's first byte (packets and scratch buffers with slack do);
/// otherwise exactly the bytes the field spans.
///
/// The one-load path is inlined into every caller (a header's fields are extracted
/// by it); the others are out of line.
#[inline(always)]
pub fn read_bits(buf: &[u8], bit: usize, width: u32) -> Value {
    let (first, lead) = (bit / 8, (bit % 8) as u32);
    if lead + width <= 64 {
        if let Some(w) = buf.get(first..first + 8) {
            let w = u64::from_be_bytes(w.try_into().expect("8 bytes"));
            return ((w << lead) >> (64 - width)) as Value;
        }
    }
    read_bits_wide(buf, bit, width)
}

/// [`read_bits`] past its one-load path.
#[inline(never)]
fn read_bits_wide(buf: &[u8], bit: usize, width: u32) -> Value {
    let (first, lead) = (bit / 8, (bit % 8) as u32);
    if lead + width <= 128 && lead + width > 64 {
        if let Some(w) = buf.get(first..first + 16) {
            let w = u128::from_be_bytes(w.try_into().expect("16 bytes"));
            return (w << lead) >> (128 - width);
        }
    }
    if bit.is_multiple_of(8) && width.is_multiple_of(8) {
        let start = bit / 8;
        return load(buf, start, start + width as usize / 8 - 1);
    }
    if width <= 64 {
        read_small(buf, bit, width) as Value
    } else {
        let hi = width - 64;
        ((read_small(buf, bit, hi) as Value) << 64) | read_small(buf, bit + hi as usize, 64) as Value
    }
}

/// Write `width` (1..=64) bits of `v` at `bit`: read-modify-write of the bytes spanned.
#[inline]
fn write_small(buf: &mut [u8], bit: usize, width: u32, v: u64) {
    let first = bit / 8;
    let last = (bit + width as usize - 1) / 8;
    let trailing = (last + 1) * 8 - (bit + width as usize);
    let m = mask_of(width) << trailing;
    let acc = (load(buf, first, last) & !m) | (((v as u128) << trailing) & m);
    store(buf, first, last, acc);
}

/// Write the low `width` (1..=128) bits of `v` at bit offset `bit`, leaving every
/// other bit as it was (fast paths as [`read_bits`]: a read-modify-write of 8 or 16
/// bytes when the buffer has them).
#[inline]
pub fn write_bits(buf: &mut [u8], bit: usize, width: u32, v: Value) {
    let (first, lead) = (bit / 8, (bit % 8) as u32);
    if lead + width <= 64 {
        if let Some(w) = buf.get_mut(first..first + 8) {
            let shift = 64 - lead - width;
            let m = (u64::MAX >> (64 - width)) << shift;
            let old = u64::from_be_bytes((&*w).try_into().expect("8 bytes"));
            w.copy_from_slice(&((old & !m) | (((v as u64) << shift) & m)).to_be_bytes());
            return;
        }
    } else if lead + width <= 128 {
        if let Some(w) = buf.get_mut(first..first + 16) {
            let shift = 128 - lead - width;
            let m = (u128::MAX >> (128 - width)) << shift;
            let old = u128::from_be_bytes((&*w).try_into().expect("16 bytes"));
            w.copy_from_slice(&((old & !m) | ((v << shift) & m)).to_be_bytes());
            return;
        }
    }
    if bit.is_multiple_of(8) && width.is_multiple_of(8) {
        let start = bit / 8;
        store(buf, start, start + width as usize / 8 - 1, v);
        return;
    }
    if width <= 64 {
        write_small(buf, bit, width, v as u64);
    } else {
        let hi = width - 64;
        write_small(buf, bit, hi, (v >> 64) as u64);
        write_small(buf, bit + hi as usize, 64, v as u64);
    }
}

/// [`write_bits`] with stores only when the field is whole bytes on a byte boundary
/// (MACs, addresses, TTLs, checksums): patching bytes just copied into a buffer by a
/// read-modify-write would wait for those stores (a store-forwarding stall).
#[inline]
pub fn put_bits(buf: &mut [u8], bit: usize, width: u32, v: Value) {
    if !(bit.is_multiple_of(8) && width.is_multiple_of(8)) {
        return write_bits(buf, bit, width, v);
    }
    let b = bit / 8;
    match width / 8 {
        1 => buf[b] = v as u8,
        2 => buf[b..b + 2].copy_from_slice(&(v as u16).to_be_bytes()),
        4 => buf[b..b + 4].copy_from_slice(&(v as u32).to_be_bytes()),
        6 => buf[b..b + 6].copy_from_slice(&(v as u64).to_be_bytes()[2..]),
        8 => buf[b..b + 8].copy_from_slice(&(v as u64).to_be_bytes()),
        n => store(buf, b, b + n as usize - 1, v),
    }
}

/// A field's share of a one's-complement sum of 16-bit big-endian words, modulo
/// 0xffff: the field holds `v` and its last bit is bit `end` (exclusive) from the
/// start of the summed bytes. As 2^16 = 1 modulo 0xffff, the words a value spans add
/// up to the value itself once its last bit is moved to a word's end (RFC 1624's
/// incremental update, for fields of any width and alignment).
#[inline]
pub fn word_share(v: Value, end: u32) -> u64 {
    let shift = (16 - end % 16) % 16;
    let r = ((v as u64) % 0xffff + ((v >> 64) as u64) % 0xffff) % 0xffff;
    (r << shift) % 0xffff
}

/// Packs fields MSB first into whole bytes from the start of a buffer, 64 bits per
/// store: building a header field by field with [`write_bits`] would re-read bytes
/// just stored, which stalls store-to-load forwarding on every field.
pub struct BitWriter<'a> {
    out: &'a mut [u8],
    pos: usize,
    /// Pending bits, right-aligned (the bits above them are zero).
    acc: u64,
    /// Bits pending in `acc` (below 64 between pushes).
    n: u32,
}

impl<'a> BitWriter<'a> {
    /// A writer at the start of `out`, which must hold every bit pushed.
    #[inline]
    pub fn new(out: &'a mut [u8]) -> Self {
        BitWriter { out, pos: 0, acc: 0, n: 0 }
    }

    /// Bits pushed so far.
    #[inline]
    pub fn bits(&self) -> usize {
        self.pos * 8 + self.n as usize
    }

    /// Append `width` (1..=64) bits, `v` holding no bits above them. 64-bit shifts
    /// only (a u128 accumulator costs a shift pair and a select per field).
    #[inline(always)]
    fn push64(&mut self, width: u32, v: u64) {
        let free = 64 - self.n;
        if width < free {
            self.acc = (self.acc << width) | v;
            self.n += width;
        } else {
            // `rest` bits of `v` do not fit in this word.
            let rest = width - free;
            let hi = if free == 64 { 0 } else { self.acc << free };
            let word = hi | (v >> rest);
            self.out[self.pos..self.pos + 8].copy_from_slice(&word.to_be_bytes());
            self.pos += 8;
            self.acc = v & !(u64::MAX << rest);
            self.n = rest;
        }
    }

    /// Append the low `width` (1..=128) bits of `v`.
    #[inline]
    pub fn push(&mut self, width: u32, v: Value) {
        if width > 64 {
            self.push64(width - 64, (v >> 64) as u64 & (u64::MAX >> (128 - width)));
            self.push64(64, v as u64);
        } else {
            self.push64(width, v as u64 & (u64::MAX >> (64 - width)));
        }
    }

    /// Store the pending bits (the last byte zero padded).
    #[inline]
    pub fn finish(self) {
        if self.n > 0 {
            let v = self.acc << (64 - self.n);
            let k = self.n.div_ceil(8) as usize;
            self.out[self.pos..self.pos + k].copy_from_slice(&v.to_be_bytes()[..k]);
        }
    }
}

/// Append `width` bits of `v` to a bit-packed buffer of `*nbits` bits (zero padded to
/// whole bytes), as BMv2 builds hash inputs.
pub fn push_bits(buf: &mut [u8], nbits: &mut usize, width: u32, v: Value) {
    write_bits(buf, *nbits, width, v);
    *nbits += width as usize;
}

/// v1model hash of `data`, as BMv2 computes it.
pub fn hash(algo: HashAlgo, data: &[u8]) -> u64 {
    match algo {
        HashAlgo::Crc16 => crc16(data) as u64,
        HashAlgo::Crc32 => crc32(data) as u64,
        HashAlgo::Csum16 => csum16(data) as u64,
        HashAlgo::Identity => data.iter().rev().take(8).rev().fold(0u64, |a, b| (a << 8) | *b as u64),
    }
}

/// CRC-16/ARC: polynomial 0x8005 reflected (0xA001), init 0, no final xor.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for b in data {
        crc ^= *b as u16;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
    }
    crc
}

/// CRC-32 (IEEE 802.3): polynomial 0x04C11DB7 reflected, init and final xor all ones.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc: u32 = !0;
    for b in data {
        crc ^= *b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// The Internet checksum (RFC 1071) of `data`, an odd last byte padded with zero.
pub fn csum16(data: &[u8]) -> u16 {
    !fold16(ones_sum(data))
}

/// Fold a [`ones_sum`] accumulator to the 16-bit one's-complement sum, in network
/// byte order. Four fixed steps, no loop (a branch per step would follow the data):
/// 64 -> 33 bits, then 33 -> 18 -> 17 -> 16 (2^16 = 1 modulo 0xffff, so each step
/// keeps the sum's class).
#[inline]
pub fn fold16(acc: u64) -> u16 {
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    (acc as u16).swap_bytes()
}

/// The unfolded one's-complement sum of `data` as little-endian 16-bit words (the
/// sum is byte-order independent up to a final byte swap, RFC 1071): sums of pieces
/// starting at even offsets add up; [`fold16`] finishes it.
#[inline]
pub fn ones_sum(data: &[u8]) -> u64 {
    // 32-bit pieces into 64 bits: no overflow below 2^32 pieces.
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (v & 0xffff_ffff) + (v >> 32);
    }
    let mut rest = chunks.remainder();
    if rest.len() >= 4 {
        acc += u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as u64;
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        acc += u16::from_le_bytes([rest[0], rest[1]]) as u64;
        rest = &rest[2..];
    }
    if let [last] = rest {
        acc += *last as u64;
    }
    acc
}

/// The unfolded one's-complement sum of header bytes `at..end` without the 16-bit
/// field at `f` (at an even distance from `at`): three fixed-size loads for an IPv4
/// header without options, [`ones_sum`] otherwise.
#[inline(always)]
pub fn ones_sum_without(bytes: &[u8], at: usize, f: usize, end: usize) -> u64 {
    if end == at + 20 && f == at + 10 {
        let h = &bytes[at..at + 20];
        let a = u64::from_le_bytes(h[0..8].try_into().expect("8 bytes"));
        let b = u16::from_le_bytes(h[8..10].try_into().expect("2 bytes"));
        let d = u64::from_le_bytes(h[12..20].try_into().expect("8 bytes"));
        return (a & 0xffff_ffff) + (a >> 32) + b as u64 + (d & 0xffff_ffff) + (d >> 32);
    }
    ones_sum(&bytes[at..f]) + ones_sum(&bytes[f + 2..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071, word by word.
    fn csum16_reference(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        let mut chunks = data.chunks_exact(2);
        for c in &mut chunks {
            sum += u16::from_be_bytes([c[0], c[1]]) as u32;
        }
        if let [last] = chunks.remainder() {
            sum += (*last as u32) << 8;
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// The loop [`fold16`] replaced.
    fn fold16_reference(mut acc: u64) -> u16 {
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        (acc as u16).swap_bytes()
    }

    #[test]
    fn fold16_folds_the_extremes() {
        for acc in [0, 1, 0xffff, 0x1_0000, 0x1_ffff, 0x2_fffe, 0xffff_ffff, 0x1_ffff_fffe, u64::MAX, u64::MAX - 1] {
            assert_eq!(fold16(acc), fold16_reference(acc), "{acc:#x}");
        }
    }

    proptest! {
        #[test]
        fn fold16_equals_the_folding_loop(acc in any::<u64>()) {
            prop_assert_eq!(fold16(acc), fold16_reference(acc));
        }

        #[test]
        fn csum16_equals_the_word_by_word_sum(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(csum16(&data), csum16_reference(&data));
        }
    }

    #[test]
    fn crc_check_values() {
        // The standard check input "123456789".
        assert_eq!(crc16(b"123456789"), 0xBB3D);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn csum16_of_a_real_ipv4_header() {
        // 45 00 00 73 00 00 40 00 40 11 [b8 61] c0 a8 00 01 c0 a8 00 c7
        let h = [0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7];
        assert_eq!(csum16(&h), 0xb861);
    }

    proptest! {
        #[test]
        fn bit_writer_packs_as_write_bits_does(fields in proptest::collection::vec((1u32..=128, any::<u128>()), 1..12)) {
            let total: usize = fields.iter().map(|(w, _)| *w as usize).sum();
            let bytes = total.div_ceil(8);
            let mut want = vec![0u8; bytes];
            let mut got = vec![0xa5u8; bytes + 4];
            let mut at = 0;
            for (w, v) in &fields {
                write_bits(&mut want, at, *w, v & mask_of(*w));
                at += *w as usize;
            }
            let mut bw = BitWriter::new(&mut got);
            for (w, v) in &fields {
                bw.push(*w, *v);
            }
            prop_assert_eq!(bw.bits(), total);
            bw.finish();
            prop_assert_eq!(&got[..bytes], &want[..]);
            prop_assert_eq!(&got[bytes..], &[0xa5u8; 4][..]);
        }
    }

    /// The sum of `data`'s big-endian 16-bit words modulo 0xffff.
    fn words_mod(data: &[u8]) -> u64 {
        data.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u64).sum::<u64>() % 0xffff
    }

    proptest! {
        /// Changing one field changes the word sum by the difference of its shares.
        #[test]
        fn a_field_s_word_share_updates_the_sum_of_words(
            buf in proptest::collection::vec(any::<u8>(), 2..60),
            bit in 0usize..200, width in 1u32..=128, v in any::<u128>(),
        ) {
            prop_assume!(bit + width as usize <= buf.len() * 8);
            let end = (bit + width as usize) as u32;
            let old = read_bits(&buf, bit, width);
            let mut b = buf.clone();
            let new = v & mask_of(width);
            write_bits(&mut b, bit, width, new);
            let want = words_mod(&b);
            let got = (words_mod(&buf) + word_share(new, end) + 0xffff - word_share(old, end)) % 0xffff;
            prop_assert_eq!(got, want);
        }
    }

    fn reference_read(buf: &[u8], bit: usize, width: u32) -> Value {
        (0..width as usize).fold(0, |acc, i| {
            let p = bit + i;
            (acc << 1) | ((buf[p / 8] >> (7 - p % 8)) & 1) as Value
        })
    }

    proptest! {
        #[test]
        fn read_and_write_agree_with_a_bit_by_bit_reference(
            buf in proptest::collection::vec(any::<u8>(), 1..40),
            bit in 0usize..64, width in 1u32..=128, v in any::<u128>(),
        ) {
            prop_assume!(bit + width as usize <= buf.len() * 8);
            prop_assert_eq!(read_bits(&buf, bit, width), reference_read(&buf, bit, width));
            let mut b2 = buf.clone();
            write_bits(&mut b2, bit, width, v & mask_of(width));
            prop_assert_eq!(read_bits(&b2, bit, width), v & mask_of(width));
            // put_bits (stores only, when it can) writes exactly what write_bits does.
            let mut b3 = buf.clone();
            put_bits(&mut b3, bit, width, v & mask_of(width));
            prop_assert_eq!(&b3, &b2);
            // Bits outside the field are untouched.
            for p in (0..buf.len() * 8).filter(|p| *p < bit || *p >= bit + width as usize) {
                prop_assert_eq!((b2[p / 8] >> (7 - p % 8)) & 1, (buf[p / 8] >> (7 - p % 8)) & 1);
            }
        }
    }
}

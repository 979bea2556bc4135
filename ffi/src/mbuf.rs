//! Packets: one owned mbuf ([`Mbuf`]) and a fixed-size owned burst ([`Burst`]).
//!
//! A [`Burst`] is the unit the fast path moves: up to [`BURST_SIZE`] mbuf pointers in
//! an inline array (no heap), filled by an rx queue, handed to a tx queue, and freed
//! in bulk for whatever is left. Both types free their mbufs on drop, so a packet can
//! only leave by being sent, moved, or freed (and, above this crate, counted).

use std::ptr::NonNull;

use crate::mempool::Mempool;
use crate::raw;

/// Packets per burst everywhere in Sluice.
pub const BURST_SIZE: usize = 32;

/// One owned packet buffer. Freed on drop.
#[derive(Debug)]
pub struct Mbuf(NonNull<raw::rte_mbuf>);

// SAFETY: an mbuf is owned by exactly one Mbuf value; DPDK allows freeing it on any
// thread (the mempool is thread-safe).
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Allocate an empty packet from `pool`; `None` when the pool is exhausted.
    pub fn alloc(pool: &Mempool) -> Option<Mbuf> {
        // SAFETY: the pool pointer is valid for the process lifetime.
        NonNull::new(unsafe { raw::rte_pktmbuf_alloc(pool.as_ptr()) }).map(Mbuf)
    }

    /// Allocate a packet holding a copy of `bytes`; `None` if the pool is empty or the
    /// bytes do not fit one segment.
    pub fn from_bytes(pool: &Mempool, bytes: &[u8]) -> Option<Mbuf> {
        let mut m = Mbuf::alloc(pool)?;
        m.append(bytes.len())?.copy_from_slice(bytes);
        Some(m)
    }

    /// Grow the packet by `len` bytes at its tail and return them; `None` if there is
    /// no tailroom.
    pub fn append(&mut self, len: usize) -> Option<&mut [u8]> {
        let len16 = u16::try_from(len).ok()?;
        // SAFETY: self.0 is a valid owned mbuf; rte_pktmbuf_append checks tailroom
        // and returns NULL when it is short.
        let p = unsafe { raw::rte_pktmbuf_append(self.0.as_ptr(), len16) };
        // SAFETY: non-null p points at len writable bytes inside this mbuf's buffer,
        // which we borrow mutably through &mut self.
        NonNull::new(p).map(|p| unsafe { std::slice::from_raw_parts_mut(p.as_ptr().cast(), len) })
    }

    /// Replace the first `strip` bytes with `new` (headers popped, pushed or
    /// rewritten), moving the data start instead of the payload. Returns false, with
    /// the packet unchanged, if `strip` exceeds the first segment or the headroom is
    /// short.
    pub fn replace_front(&mut self, strip: usize, new: &[u8]) -> bool {
        // SAFETY: self.0 is a valid mbuf we own, exclusively borrowed.
        unsafe { replace_front_of(self.0.as_ptr(), strip, new) }
    }

    /// The first `strip` bytes made room for `new_len` bytes, returned to be written
    /// whole, or `None` with the packet unchanged if they do not fit (the first
    /// segment is shorter than `strip`, or the headroom too small).
    #[inline]
    pub fn reframe(&mut self, strip: usize, new_len: usize) -> Option<&mut [u8]> {
        // SAFETY: self.0 is a valid mbuf we own, exclusively borrowed (the returned
        // slice borrows self).
        unsafe { reframe_of(self.0.as_ptr(), strip, new_len) }
    }

    /// The packet bytes (first segment).
    pub fn data(&self) -> &[u8] {
        // SAFETY: self.0 is a valid owned mbuf.
        unsafe { seg_data(self.0.as_ptr()) }
    }

    /// The packet bytes, writable (first segment).
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: valid owned mbuf, exclusively borrowed.
        unsafe { seg_data_mut(self.0.as_ptr()) }
    }

    /// Total packet length over all segments.
    pub fn pkt_len(&self) -> u32 {
        // SAFETY: valid owned mbuf; plain field read.
        unsafe { (*self.0.as_ptr()).pkt_len }
    }

    /// Whether the packet is one segment (its bytes are all in [`Mbuf::data`]).
    pub fn is_contiguous(&self) -> bool {
        // SAFETY: valid owned mbuf; plain field read.
        unsafe { (*self.0.as_ptr()).nb_segs == 1 }
    }

    /// The port the packet arrived on (as set by the PMD).
    pub fn port(&self) -> u16 {
        // SAFETY: valid owned mbuf; plain field read.
        unsafe { (*self.0.as_ptr()).port }
    }

    /// The flow mark the NIC put on the packet (rte_flow MARK), if any.
    #[inline(always)]
    pub fn mark(&self) -> Option<u32> {
        // SAFETY: valid owned mbuf; plain field reads of ol_flags and the hash union
        // (any bit pattern is a valid u32).
        unsafe { mark_of(self.0.as_ptr()) }
    }

    /// Mark the packet as a NIC executing rte_flow MARK does (for NIC models and
    /// tests); `None` clears the mark.
    pub fn set_mark(&mut self, mark: Option<u32>) {
        // SAFETY: valid owned mbuf, exclusively borrowed; plain field writes.
        unsafe {
            let m = &mut *self.0.as_ptr();
            let flags = (raw::RTE_MBUF_F_RX_FDIR | raw::RTE_MBUF_F_RX_FDIR_ID) as u64;
            match mark {
                Some(id) => {
                    m.ol_flags |= flags;
                    m.__bindgen_anon_2.hash.fdir.hi = id;
                }
                None => m.ol_flags &= !flags,
            }
        }
    }

    fn into_raw(self) -> *mut raw::rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own this mbuf and drop it exactly once.
        unsafe { raw::rte_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// SAFETY: `m` must be a valid mbuf the caller may read.
#[inline(always)]
unsafe fn mark_of(m: *const raw::rte_mbuf) -> Option<u32> {
    // SAFETY: per the contract m is valid; the PMD sets RX_FDIR_ID exactly when
    // hash.fdir.hi holds a MARK id (rte_flow MARK action).
    unsafe {
        let m = &*m;
        if m.ol_flags & raw::RTE_MBUF_F_RX_FDIR_ID as u64 != 0 {
            Some(m.__bindgen_anon_2.hash.fdir.hi)
        } else {
            None
        }
    }
}

/// [`Mbuf::replace_front`] on a raw mbuf (shared with [`Burst::replace_front`]).
///
/// SAFETY: `m` must be a valid mbuf the caller owns and may write.
unsafe fn replace_front_of(m: *mut raw::rte_mbuf, strip: usize, new: &[u8]) -> bool {
    // SAFETY: per the contract (passed on).
    match unsafe { reframe_of(m, strip, new.len()) } {
        Some(front) => {
            front.copy_from_slice(new);
            true
        }
        None => false,
    }
}

/// Whether [`reframe_of`] succeeds: the first segment holds `strip` bytes and the
/// headroom the growth.
///
/// SAFETY: `m` must be a valid mbuf.
#[inline(always)]
unsafe fn front_fits_of(m: *const raw::rte_mbuf, strip: usize, new_len: usize) -> bool {
    // SAFETY: per the contract, m is valid; plain field reads.
    let (data_len, headroom) = unsafe { ((*m).data_len as usize, (*m).data_off as usize) };
    strip <= data_len && new_len <= strip + headroom
}

/// Make the first `strip` bytes of `m` room for `new_len` bytes (the rest of the
/// packet unmoved) and return that room, or `None` (nothing changed) if the first
/// segment is shorter than `strip` or the headroom too small. The room holds
/// whatever bytes were there: the caller writes all of it.
///
/// This is `rte_pktmbuf_prepend` or `rte_pktmbuf_adj` done here, without their
/// call: they only move `data_off` and the two lengths.
///
/// SAFETY: `m` must be a valid mbuf the caller owns and may write for the returned
/// lifetime.
#[inline(always)]
unsafe fn reframe_of<'a>(m: *mut raw::rte_mbuf, strip: usize, new_len: usize) -> Option<&'a mut [u8]> {
    // SAFETY: per the contract (passed on).
    if !unsafe { front_fits_of(m, strip, new_len) } {
        return None;
    }
    // SAFETY: per the contract, m is valid and exclusively ours; plain field access.
    let mb = unsafe { &mut *m };
    let (data_len, headroom) = (mb.data_len as usize, mb.data_off as usize);
    // data_off >= 0 and data_len <= u16::MAX follow from the checks: the new front
    // starts inside the buffer (at most the headroom before the data) and the data
    // still ends where it ended.
    let off = headroom + strip - new_len;
    mb.data_off = off as u16;
    mb.data_len = (data_len - strip + new_len) as u16;
    mb.pkt_len = mb.pkt_len - strip as u32 + new_len as u32;
    // SAFETY: valid mbuf, exclusively ours; buf_addr + data_off now starts data_len
    // bytes of the first segment, all inside the buffer (the headroom bytes taken are
    // part of it), and new_len <= data_len.
    let data = unsafe { seg_data_mut(m) };
    Some(&mut data[..new_len])
}

/// SAFETY: `m` must be a valid mbuf the caller may read for the returned lifetime.
unsafe fn seg_data<'a>(m: *const raw::rte_mbuf) -> &'a [u8] {
    // SAFETY: per the contract, m is valid; buf_addr + data_off is the start of
    // data_len initialised bytes inside the mbuf's buffer (rte_pktmbuf_mtod).
    unsafe {
        let m = &*m;
        let p = (m.buf_addr as *const u8).add(m.data_off as usize);
        std::slice::from_raw_parts(p, m.data_len as usize)
    }
}

/// SAFETY: `m` must be a valid mbuf the caller may write for the returned lifetime.
unsafe fn seg_data_mut<'a>(m: *mut raw::rte_mbuf) -> &'a mut [u8] {
    // SAFETY: as in seg_data, with exclusive access guaranteed by the caller.
    unsafe {
        let m = &mut *m;
        let p = (m.buf_addr as *mut u8).add(m.data_off as usize);
        std::slice::from_raw_parts_mut(p, m.data_len as usize)
    }
}

/// Up to [`BURST_SIZE`] owned packets in an inline array. Frees what it holds on drop.
pub struct Burst {
    len: usize,
    bufs: [*mut raw::rte_mbuf; BURST_SIZE],
}

// SAFETY: a Burst exclusively owns its mbufs (see Mbuf's Send).
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Burst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Burst").field("len", &self.len).finish()
    }
}

impl Burst {
    /// An empty burst.
    pub const fn new() -> Self {
        Self { len: 0, bufs: [std::ptr::null_mut(); BURST_SIZE] }
    }

    /// Packets held.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds no packet.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free room left.
    #[inline(always)]
    pub fn room(&self) -> usize {
        BURST_SIZE - self.len
    }

    /// Add a packet; gives it back if the burst is full.
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == BURST_SIZE {
            return Err(m);
        }
        self.bufs[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Hand every packet, in order, to `f`; the burst becomes empty.
    #[inline]
    pub fn drain(&mut self, mut f: impl FnMut(Mbuf)) {
        let n = self.len;
        // Emptied first: each packet's ownership moves to `f` exactly once.
        self.len = 0;
        for i in 0..n {
            // SAFETY: slots below the old len hold valid owned non-null mbufs, and
            // len was reset so the burst no longer owns them.
            f(Mbuf(unsafe { NonNull::new_unchecked(self.bufs[i]) }));
        }
    }

    /// Remove and return the last packet.
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slots below the old len hold valid owned non-null mbufs; ownership
        // moves out of the burst as len shrinks.
        Some(Mbuf(unsafe { NonNull::new_unchecked(self.bufs[self.len]) }))
    }

    /// Move every packet of `other` to the end of `self`, as many as fit; returns how
    /// many moved (the rest stay in `other`, at its front).
    #[inline]
    pub fn append_from(&mut self, other: &mut Burst) -> usize {
        let n = other.len.min(self.room());
        self.bufs[self.len..self.len + n].copy_from_slice(&other.bufs[..n]);
        self.len += n;
        other.bufs.copy_within(n..other.len, 0);
        other.len -= n;
        n
    }

    /// The bytes of packet `i` (first segment). Panics if `i >= len`.
    #[inline(always)]
    pub fn data(&self, i: usize) -> &[u8] {
        assert!(i < self.len);
        // SAFETY: slot i < len holds a valid owned mbuf; borrowed through &self.
        unsafe { seg_data(self.bufs[i]) }
    }

    /// The bytes of packet `i`, writable. Panics if `i >= len`.
    #[inline(always)]
    pub fn data_mut(&mut self, i: usize) -> &mut [u8] {
        assert!(i < self.len);
        // SAFETY: slot i < len holds a valid owned mbuf; borrowed through &mut self.
        unsafe { seg_data_mut(self.bufs[i]) }
    }

    /// The flow mark of packet `i` (see [`Mbuf::mark`]). Panics if `i >= len`.
    #[inline(always)]
    pub fn mark(&self, i: usize) -> Option<u32> {
        assert!(i < self.len);
        // SAFETY: slot i < len holds a valid owned mbuf; borrowed through &self.
        unsafe { mark_of(self.bufs[i]) }
    }

    /// Whether [`Burst::replace_front`] of `strip` bytes by `new_len` bytes succeeds
    /// on every packet: each is at least `strip` bytes long in its first segment and
    /// has the headroom to grow by the difference.
    #[inline]
    pub fn fronts_fit(&self, strip: usize, new_len: usize) -> bool {
        // SAFETY: slots below len hold valid owned mbufs.
        self.bufs[..self.len].iter().all(|m| unsafe { front_fits_of(*m, strip, new_len) })
    }

    /// [`Burst::fronts_fit`] for packet `i` alone. Panics if `i >= len`.
    #[inline]
    pub fn front_fits(&self, i: usize, strip: usize, new_len: usize) -> bool {
        assert!(i < self.len);
        // SAFETY: slot i < len holds a valid owned mbuf.
        unsafe { front_fits_of(self.bufs[i], strip, new_len) }
    }

    /// [`Mbuf::replace_front`] on packet `i`. Panics if `i >= len`.
    #[inline]
    pub fn replace_front(&mut self, i: usize, strip: usize, new: &[u8]) -> bool {
        assert!(i < self.len);
        // SAFETY: slot i < len holds a valid owned mbuf, written through &mut self.
        unsafe { replace_front_of(self.bufs[i], strip, new) }
    }

    /// Packet `i`'s first `strip` bytes made room for `new_len` bytes, returned to be
    /// written whole (as [`Burst::replace_front`], for a caller that writes the new
    /// bytes itself), or `None` with the packet unchanged if they do not fit. Panics
    /// if `i >= len`.
    #[inline]
    pub fn reframe(&mut self, i: usize, strip: usize, new_len: usize) -> Option<&mut [u8]> {
        assert!(i < self.len);
        // SAFETY: slot i < len holds a valid owned mbuf, written through &mut self
        // (which the returned slice borrows).
        unsafe { reframe_of(self.bufs[i], strip, new_len) }
    }

    /// Whether every packet is one segment (see [`Mbuf::is_contiguous`]).
    #[inline]
    pub fn all_contiguous(&self) -> bool {
        // SAFETY: slots below len hold valid owned mbufs; plain field reads.
        self.bufs[..self.len].iter().all(|m| unsafe { (**m).nb_segs == 1 })
    }

    /// Total length of packet `i`. Panics if `i >= len`.
    #[inline]
    pub fn pkt_len(&self, i: usize) -> u32 {
        assert!(i < self.len);
        // SAFETY: slot i < len holds a valid owned mbuf; plain field read.
        unsafe { (*self.bufs[i]).pkt_len }
    }

    /// Free every packet; the burst becomes empty. Returns how many were freed.
    #[inline]
    pub fn free_all(&mut self) -> usize {
        let n = self.len;
        if n > 0 {
            // SAFETY: slots below len hold valid owned mbufs, freed once: len is
            // reset before anyone can see them again.
            unsafe { raw::rte_pktmbuf_free_bulk(self.bufs.as_mut_ptr(), n as u32) };
            self.len = 0;
        }
        n
    }

    /// Keep, in order, the packets for which `keep(pkt_len)` is true; free the others
    /// (one bulk free). Returns (packets, bytes) freed. Policers use it: the decision
    /// needs only each packet's length, read from the mbuf header.
    #[inline]
    pub fn retain_by_len(&mut self, mut keep: impl FnMut(u32) -> bool) -> (usize, u64) {
        let mut gone = [std::ptr::null_mut(); BURST_SIZE];
        let (mut kept, mut n_gone, mut bytes) = (0, 0, 0u64);
        for i in 0..self.len {
            let m = self.bufs[i];
            // SAFETY: slot i < len holds a valid owned mbuf; plain field read.
            let len = unsafe { (*m).pkt_len };
            if keep(len) {
                self.bufs[kept] = m;
                kept += 1;
            } else {
                gone[n_gone] = m;
                n_gone += 1;
                bytes += len as u64;
            }
        }
        self.len = kept;
        if n_gone > 0 {
            // SAFETY: the first n_gone slots of `gone` hold valid mbufs this burst
            // owned and no longer lists (len excludes them): freed exactly once.
            unsafe { raw::rte_pktmbuf_free_bulk(gone.as_mut_ptr(), n_gone as u32) };
        }
        (n_gone, bytes)
    }

    /// Raw slots for the rx path: the pointer to fill and the room.
    #[inline(always)]
    pub(crate) fn rx_slots(&mut self) -> (*mut *mut raw::rte_mbuf, usize) {
        // SAFETY: len <= BURST_SIZE, so the offset stays within the array.
        (unsafe { self.bufs.as_mut_ptr().add(self.len) }, BURST_SIZE - self.len)
    }

    /// Record that the rx path filled `n` more slots with owned mbufs.
    #[inline(always)]
    pub(crate) fn rx_filled(&mut self, n: usize) {
        debug_assert!(self.len + n <= BURST_SIZE);
        self.len += n;
    }

    /// Raw view for the tx path.
    #[inline(always)]
    pub(crate) fn tx_slots(&mut self) -> (*mut *mut raw::rte_mbuf, usize) {
        (self.bufs.as_mut_ptr(), self.len)
    }

    /// Record that the first `n` packets were handed over (tx); the rest move to the front.
    #[inline(always)]
    pub(crate) fn tx_consumed(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        if n < self.len {
            self.bufs.copy_within(n..self.len, 0);
        }
        self.len -= n;
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.free_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::{Mempool, DEFAULT_DATA_ROOM};

    fn pool(name: &str) -> &'static Mempool {
        Mempool::create(crate::test_eal::eal(), name, 255, 0, DEFAULT_DATA_ROOM, None).unwrap()
    }

    #[test]
    fn mbuf_holds_bytes_and_returns_to_pool_on_drop() {
        let p = pool("mb_test_bytes");
        let m = Mbuf::from_bytes(p, &[1, 2, 3, 4, 5]).unwrap();
        assert_eq!(m.data(), &[1, 2, 3, 4, 5]);
        assert_eq!(m.pkt_len(), 5);
        assert_eq!(p.in_use(), 1);
        drop(m);
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn replace_front_pushes_pops_and_rewrites_headers() {
        let p = pool("mb_test_front");
        let mut m = Mbuf::from_bytes(p, &[1, 2, 3, 4, 5, 6]).unwrap();
        assert!(m.replace_front(2, &[9, 9, 9, 9]), "push 2 bytes");
        assert_eq!(m.data(), &[9, 9, 9, 9, 3, 4, 5, 6]);
        assert_eq!(m.pkt_len(), 8);
        assert!(m.replace_front(4, &[7]), "pop 3 bytes");
        assert_eq!(m.data(), &[7, 3, 4, 5, 6]);
        assert!(m.replace_front(1, &[8]), "rewrite in place");
        assert_eq!(m.data(), &[8, 3, 4, 5, 6]);
        assert!(!m.replace_front(6, &[0]), "strip beyond the data is refused");
        assert!(!m.replace_front(0, &[0; 4096]), "beyond the headroom is refused");
        assert_eq!(m.data(), &[8, 3, 4, 5, 6], "refusals change nothing");
        assert!(m.is_contiguous());
    }

    #[test]
    fn burst_replace_front_checks_every_packet_first() {
        let p = pool("mb_test_bfront");
        let mut b = Burst::new();
        b.push(Mbuf::from_bytes(p, &[1, 2, 3, 4]).unwrap()).unwrap();
        b.push(Mbuf::from_bytes(p, &[5, 6]).unwrap()).unwrap();
        assert!(b.fronts_fit(2, 6), "both long enough, default headroom");
        assert!(!b.fronts_fit(3, 3), "the second packet is shorter than the strip");
        assert!(!b.fronts_fit(0, 4096), "beyond the headroom");
        assert!(b.front_fits(0, 3, 3) && !b.front_fits(1, 3, 3), "per packet");
        assert!(b.replace_front(0, 2, &[9, 9, 9]) && b.replace_front(1, 2, &[8]));
        assert_eq!((b.data(0), b.data(1)), (&[9, 9, 9, 3, 4][..], &[8][..]));
        assert_eq!((b.pkt_len(0), b.pkt_len(1)), (5, 1));
        assert!(!b.replace_front(1, 2, &[0]), "refused: strip beyond the data");
        assert_eq!(b.data(1), &[8], "a refusal changes nothing");
        b.free_all();
    }

    #[test]
    fn reframe_moves_the_front_within_the_first_segment_and_headroom() {
        let p = pool("mb_test_reframe");
        let mut b = Burst::new();
        b.push(Mbuf::from_bytes(p, &[1, 2, 3, 4]).unwrap()).unwrap();
        assert!(b.reframe(0, 5, 5).is_none(), "strip beyond the data");
        assert!(b.reframe(0, 0, 1 << 15).is_none(), "beyond the headroom");
        assert_eq!((b.data(0), b.pkt_len(0)), (&[1, 2, 3, 4][..], 4), "a refusal changes nothing");
        b.reframe(0, 1, 3).unwrap().copy_from_slice(&[7, 8, 9]);
        assert_eq!((b.data(0), b.pkt_len(0)), (&[7, 8, 9, 2, 3, 4][..], 6), "grown into the headroom");
        b.reframe(0, 4, 1).unwrap().copy_from_slice(&[5]);
        assert_eq!((b.data(0), b.pkt_len(0)), (&[5, 3, 4][..], 3), "shrunk");
        assert_eq!(b.reframe(0, 3, 0).unwrap().len(), 0);
        assert_eq!((b.data(0), b.pkt_len(0)), (&[][..], 0), "everything stripped");
        b.free_all();
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn burst_push_pop_append_and_free() {
        let p = pool("mb_test_burst");
        let mut a = Burst::new();
        for i in 0..BURST_SIZE as u8 {
            a.push(Mbuf::from_bytes(p, &[i]).unwrap()).unwrap();
        }
        assert!(a.all_contiguous() && Burst::new().all_contiguous());
        let extra = Mbuf::from_bytes(p, &[99]).unwrap();
        assert!(a.push(extra).is_err(), "full burst refuses");
        assert_eq!(p.in_use(), BURST_SIZE as u32, "refused mbuf was given back and freed");
        let mut b = Burst::new();
        b.push(Mbuf::from_bytes(p, &[200]).unwrap()).unwrap();
        assert_eq!(b.append_from(&mut a), BURST_SIZE - 1);
        assert_eq!(a.len(), 1);
        assert_eq!(a.data(0), &[(BURST_SIZE - 1) as u8], "leftover moved to the front");
        assert_eq!(b.data(0), &[200]);
        assert_eq!(b.data(1), &[0]);
        b.data_mut(1)[0] = 7;
        assert_eq!(b.data(1), &[7]);
        assert_eq!(b.pop().unwrap().data(), &[(BURST_SIZE - 2) as u8]);
        assert_eq!(b.free_all(), BURST_SIZE - 1);
        drop(a);
        assert_eq!(p.in_use(), 0);
    }
    #[test]
    fn retain_by_len_keeps_order_and_frees_the_rest() {
        let p = pool("mb_test_retain");
        let mut a = Burst::new();
        for i in 1..=6u8 {
            a.push(Mbuf::from_bytes(p, &vec![i; i as usize]).unwrap()).unwrap();
        }
        assert_eq!(a.retain_by_len(|len| len % 2 == 0), (3, 1 + 3 + 5));
        assert_eq!((a.len(), p.in_use()), (3, 3), "dropped packets went back to the pool");
        assert_eq!([a.data(0)[0], a.data(1)[0], a.data(2)[0]], [2, 4, 6]);
        assert_eq!(a.retain_by_len(|_| true), (0, 0));
        drop(a);
        assert_eq!(p.in_use(), 0);
    }
}

//! A copy's last steps: checksum updates, deparsing, and the tracker's view of the
//! copy (see the parent module's doc for when a tracked run skips deparsing).

use super::*;
use crate::p4::track::{EmitView, NoTrack};

/// The header state a deparse reads.
pub(super) struct Headers<'a> {
    values: &'a [Value],
    valid: &'a [bool],
    src: &'a [u32],
    dirty: &'a [u64],
    vlen: &'a [u16],
    vbytes: &'a [u8],
}

impl Headers<'_> {
    /// Emit the valid headers in deparser order, then the payload.
    pub(super) fn deparse_into(&self, ir: &Ir, data: &[u8], payload: usize, out: &mut Vec<u8>) {
        for &h in &ir.deparser {
            let h = h as usize;
            if !self.valid[h] {
                continue;
            }
            let hd = &ir.headers[h];
            let len = hd.bytes as usize + self.vlen[h] as usize;
            let at = out.len();
            if self.src[h] != 0 && self.dirty[h] != ALL_DIRTY {
                let from = self.src[h] as usize - 1;
                out.extend_from_slice(&data[from..from + len]);
                self.patch(ir, hd, h, &mut out[at..]);
            } else {
                out.resize(at + len, 0);
                Interp::write_header(ir, hd, self.values, self.vlen, self.vbytes, h, &mut out[at..]);
            }
        }
        out.extend_from_slice(&data[payload.min(data.len())..]);
    }

    /// Header `h`'s wire bytes into the start of `out` (which may be longer).
    fn header_into(&self, ir: &Ir, h: usize, data: &[u8], out: &mut [u8]) {
        let hd = &ir.headers[h];
        if self.src[h] != 0 && self.dirty[h] != ALL_DIRTY {
            let (from, len) = (self.src[h] as usize - 1, hd.bytes as usize + self.vlen[h] as usize);
            out[..len].copy_from_slice(&data[from..from + len]);
            self.patch(ir, hd, h, out);
        } else {
            Interp::write_header(ir, hd, self.values, self.vlen, self.vbytes, h, out);
        }
    }

    /// Write the dirty fields of extracted header `h` over its received bytes at the
    /// start of `out` (a dirty mask short of [`ALL_DIRTY`] names fields, not varbit
    /// bytes: assigning those makes the whole header dirty).
    #[inline]
    fn patch(&self, ir: &Ir, hd: &HeaderDef, h: usize, out: &mut [u8]) {
        for f in hd.fields_of(self.dirty[h]) {
            let fd = &ir.fields[f as usize];
            if fd.width > 0 {
                bits::put_bits(out, fd.bit_offset as usize, fd.width, self.values[f as usize]);
            }
        }
    }
}

impl Interp {
    /// The header state, for deparsing.
    pub(super) fn headers(&self) -> Headers<'_> {
        Headers {
            values: &self.values,
            valid: &self.valid,
            src: &self.src,
            dirty: &self.dirty,
            vlen: &self.vlen,
            vbytes: &self.vbytes,
        }
    }

    /// A checksum's value: straight from the header's bytes when it covers its own
    /// header (IPv4), else through the generic calculation.
    pub(super) fn checksum(&mut self, ir: &Ir, ck: &ChecksumDef, data: &[u8]) -> Value {
        let received = self.received(ir, ck);
        self.checksum_of(ir, ck, data, received)
    }

    /// [`Interp::checksum`] with [`Interp::received`]'s answer at hand (verification
    /// gives it to the tracker too: asked once).
    #[inline]
    pub(super) fn checksum_of(
        &mut self,
        ir: &Ir,
        ck: &ChecksumDef,
        data: &[u8],
        received: Option<(usize, usize)>,
    ) -> Value {
        if !ck.whole_header {
            return self.calc(ir, ck.calc);
        }
        let fd = &ir.fields[ck.field as usize];
        if let Some((from, len)) = received {
            // The header as received (verification, mostly): summed where it lies,
            // without its checksum field (no copy to zero it). `whole_header` means a
            // 16-bit-aligned 16-bit field.
            let f = from + fd.bit_offset as usize / 8;
            return !bits::fold16(bits::ones_sum_without(data, from, f, from + len)) as Value;
        }
        if let Some(c) = self.incremental(ir, ck, data) {
            return c;
        }
        let h = fd.header as usize;
        let len = ir.headers[h].bytes as usize + self.vlen[h] as usize;
        let mut buf = [0u8; 64 + SLACK];
        self.headers().header_into(ir, h, data, &mut buf);
        write_bits(&mut buf, fd.bit_offset as usize, 16, 0);
        bits::csum16(&buf[..len]) as Value
    }

    /// A whole-header checksum of an extracted header with some fields written, from
    /// the received bytes' sum and the written fields' old and new shares of it
    /// ([`bits::word_share`]): nothing is built or summed again. `None` when the header
    /// was not extracted, was written whole, or when the sum comes out as zero modulo
    /// 0xffff, whose one's-complement form (+0 or -0) only the whole sum tells.
    fn incremental(&self, ir: &Ir, ck: &ChecksumDef, data: &[u8]) -> Option<Value> {
        let fd = &ir.fields[ck.field as usize];
        let h = fd.header as usize;
        let (src, dirty) = (self.src[h], self.dirty[h]);
        if src == 0 || dirty == ALL_DIRTY {
            return None;
        }
        let hd = &ir.headers[h];
        let from = src as usize - 1;
        let len = hd.bytes as usize + self.vlen[h] as usize;
        let mut acc = bits::ones_sum_without(data, from, from + fd.bit_offset as usize / 8, from + len);
        // The shares, big-endian, with no negative terms: + new + (0xffff - old).
        let mut delta = 0u64;
        for f in hd.fields_of(dirty) {
            let d = &ir.fields[f as usize];
            if f == ck.field || d.width == 0 {
                continue;
            }
            let end = d.bit_offset + d.width;
            let old = read_bits(data, from * 8 + d.bit_offset as usize, d.width);
            delta += bits::word_share(self.values[f as usize], end) + 0xffff - bits::word_share(old, end);
        }
        // `acc` sums little-endian words: a big-endian share is byte-swapped, which
        // modulo 0xffff is a multiplication by 2^8.
        acc += (delta % 0xffff) << 8;
        match bits::fold16(acc) {
            0xffff => None,
            s => Some(!s as Value),
        }
    }

    /// Where the header of a whole-header checksum lies in the received bytes, and
    /// its length, if it is still as received (extracted and not written since): the
    /// checksum is then computed from those bytes.
    #[inline]
    pub(super) fn received(&self, ir: &Ir, ck: &ChecksumDef) -> Option<(usize, usize)> {
        let h = ir.fields[ck.field as usize].header as usize;
        (ck.whole_header && self.src[h] != 0 && self.dirty[h] == 0)
            .then(|| (self.src[h] as usize - 1, ir.headers[h].bytes as usize + self.vlen[h] as usize))
    }

    /// The rest of a copy's egress after the control: drop, checksums, deparse (and
    /// the tracker's view of the copy), truncate, recirculate. `last`: no other copy of
    /// the packet follows this one.
    pub(super) fn finish_copy<T: Track>(
        &mut self,
        ir: &Ir,
        port: u32,
        inst: Value,
        data: &[u8],
        t: &mut T,
        last: bool,
    ) -> Option<Value> {
        let s = ir.std;
        // Dropped or not: either way the outcome was read from egress_spec.
        t.read_field(s.egress_spec, Value::MAX);
        if self.values[s.egress_spec as usize] == DROP_PORT {
            self.out.drops.push(DropCause::Egress);
            return None;
        }
        t.phase(Phase::Deparse);
        let recirc = self.req.recirculate;
        let trunc = self.req.truncate.map(|n| (n as usize).max(1));
        // A tracked run that will be cached needs no output bytes: the packet leaves
        // by the megaflow's actions. When this copy is the last and nothing so far
        // refuses caching, its bytes (and whole-header checksums, which the actions
        // recompute) are made only if the tracker's view of it refuses after all.
        let elide = last && recirc.is_none() && !t.needs_bytes() && ir.update_checksums.iter().all(|c| c.whole_header);
        self.update_checksums(ir, data, t, elide);
        // The output buffer, taken out while the headers are read.
        let mut out = std::mem::take(if recirc.is_some() { &mut self.recirc } else { &mut self.out.next().bytes });
        out.clear();
        if !elide {
            self.headers().deparse_into(ir, data, self.payload, &mut out);
        }
        let view = EmitView {
            values: &self.values,
            valid: &self.valid,
            src: &self.src,
            vlen: &self.vlen,
            vbytes: &self.vbytes,
            bytes: (!elide).then_some(&out[..]),
            truncate: trunc,
        };
        t.emitted_view(ir, &view, recirc.is_some());
        if elide && t.needs_bytes() {
            self.update_checksums(ir, data, &mut NoTrack, false);
            self.headers().deparse_into(ir, data, self.payload, &mut out);
        }
        if let Some(n) = trunc {
            out.truncate(n);
        }
        *(if recirc.is_some() { &mut self.recirc } else { &mut self.out.packets[self.out.used - 1].bytes }) = out;
        t.phase(Phase::Done);
        if let Some(fl) = recirc {
            Self::field_list_into(&self.values, ir, fl, &mut self.preserved);
            return Some(instance::RECIRC);
        }
        let strip = (self.first_pass && trunc.is_none()).then_some(self.payload as u32);
        let p = &mut self.out.packets[self.out.used - 1];
        p.port = port;
        p.instance = inst;
        p.strip = strip;
        None
    }

    /// The checksum updates; with `elide` the values of whole-header checksums are not
    /// computed (the tracker still sees every update).
    fn update_checksums<T: Track>(&mut self, ir: &Ir, data: &[u8], t: &mut T, elide: bool) {
        for ck in &ir.update_checksums {
            if let Some(c) = &ck.cond {
                if self.eval(ir, c, &[], &Pkt { data, cursor: 0 }, t) == 0 {
                    continue;
                }
            }
            if elide && ck.whole_header {
                t.checksum_updated(ir, ck);
                continue;
            }
            let v = self.checksum(ir, ck, data);
            let f = ck.field;
            if self.values[f as usize] != v & ir.fields[f as usize].mask {
                self.set(ir, f, v);
            }
            t.checksum_updated(ir, ck);
        }
    }

    /// Header `h`'s wire bytes from its fields (and varbit bytes) into the start of
    /// `out` (which may be longer: bytes past the header are left as they are).
    pub(crate) fn write_header(
        ir: &Ir,
        hd: &HeaderDef,
        values: &[Value],
        vlen: &[u16],
        vbytes: &[u8],
        h: usize,
        out: &mut [u8],
    ) {
        // Fields are laid out back to back (compile/layout.rs), the varbit one last.
        let mut w = BitWriter::new(out);
        for f in hd.fields.clone() {
            let fd = &ir.fields[f as usize];
            if fd.width > 0 {
                debug_assert_eq!(w.bits(), fd.bit_offset as usize);
                w.push(fd.width, values[f as usize]);
            }
        }
        w.finish();
        if let Some(vb) = hd.varbit {
            let (at, n) = (hd.bytes as usize, vlen[h] as usize);
            out[at..at + n].copy_from_slice(&vbytes[vb.base as usize..vb.base as usize + n]);
        }
    }
}

//! Classic libpcap files (Ethernet link type): just enough to write demo traffic and
//! to read back what a `net_pcap` port wrote.

use std::io::{self, Read, Write};

const MAGIC_US: u32 = 0xa1b2_c3d4;
const MAGIC_NS: u32 = 0xa1b2_3c4d;
const LINKTYPE_ETHERNET: u32 = 1;

/// Write `frames` as a pcap file (microsecond timestamps, 1 µs apart).
pub fn write<W: Write>(mut w: W, frames: &[Vec<u8>]) -> io::Result<()> {
    let mut hdr = Vec::with_capacity(24);
    hdr.extend(MAGIC_US.to_le_bytes());
    hdr.extend(2u16.to_le_bytes());
    hdr.extend(4u16.to_le_bytes());
    hdr.extend(0i32.to_le_bytes());
    hdr.extend(0u32.to_le_bytes());
    hdr.extend(65535u32.to_le_bytes());
    hdr.extend(LINKTYPE_ETHERNET.to_le_bytes());
    w.write_all(&hdr)?;
    for (i, f) in frames.iter().enumerate() {
        let len = u32::try_from(f.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
        let mut rec = Vec::with_capacity(16);
        rec.extend(((i / 1_000_000) as u32).to_le_bytes());
        rec.extend(((i % 1_000_000) as u32).to_le_bytes());
        rec.extend(len.to_le_bytes());
        rec.extend(len.to_le_bytes());
        w.write_all(&rec)?;
        w.write_all(f)?;
    }
    w.flush()
}

/// Read every frame of a pcap file (either byte order, µs or ns timestamps).
pub fn read<R: Read>(mut r: R) -> io::Result<Vec<Vec<u8>>> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let mut buf = Vec::new();
    r.read_to_end(&mut buf)?;
    if buf.len() < 24 {
        return Err(bad("pcap: shorter than its 24-byte header"));
    }
    let magic = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes"));
    let le = match magic {
        MAGIC_US | MAGIC_NS => true,
        m if m.swap_bytes() == MAGIC_US || m.swap_bytes() == MAGIC_NS => false,
        _ => return Err(bad("pcap: bad magic number")),
    };
    let u32_at = |b: &[u8], o: usize| {
        let a: [u8; 4] = b[o..o + 4].try_into().expect("4 bytes");
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut frames = Vec::new();
    let mut off = 24;
    while off < buf.len() {
        if off + 16 > buf.len() {
            return Err(bad("pcap: truncated record header"));
        }
        let caplen = u32_at(&buf, off + 8) as usize;
        off += 16;
        if off + caplen > buf.len() {
            return Err(bad("pcap: truncated record"));
        }
        frames.push(buf[off..off + caplen].to_vec());
        off += caplen;
    }
    Ok(frames)
}

/// A 60-byte Ethernet/IPv4/UDP frame (64 on the wire with FCS) for flow `flow`, with
/// a correct IPv4 header checksum and `seq` in the last two payload bytes.
pub fn udp_frame(flow: u32, seq: u16) -> Vec<u8> {
    let src = [10, 0, (flow >> 8) as u8, flow as u8];
    udp4([0x02, 0, 0, 0, 0, 0x02], [0x02, 0, 0, 0, 0, 0x01], src, [10, 1, 0, 1], 1024 + (flow >> 16) as u16, 4789, seq)
}

/// A 60-byte Ethernet/IPv4/UDP frame with these addresses and ports, a correct IPv4
/// header checksum and `seq` in the last two payload bytes.
pub fn udp4(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u16,
) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&46u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let csum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&dport.to_be_bytes());
    udp[4..6].copy_from_slice(&26u16.to_be_bytes());
    f[58..60].copy_from_slice(&seq.to_be_bytes());
    f
}

/// The IPv4 header checksum of `hdr` (its checksum field taken as is: zero it first
/// to compute, or keep it to verify — a correct header sums to 0).
pub fn ipv4_checksum(hdr: &[u8]) -> u16 {
    sluice_fastpath::p4::bits::csum16(hdr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_roundtrips_and_frames_are_valid_ipv4() {
        let frames: Vec<_> = (0..5).map(|i| udp_frame(i, i as u16)).collect();
        let mut file = Vec::new();
        write(&mut file, &frames).unwrap();
        assert_eq!(file.len(), 24 + 5 * (16 + 60));
        assert_eq!(read(&file[..]).unwrap(), frames);
        for f in &frames {
            assert_eq!(ipv4_checksum(&f[14..34]), 0, "a correct header sums to zero");
        }
        assert_ne!(frames[1][14..34], frames[2][14..34]);
    }

    #[test]
    fn read_rejects_garbage_and_truncation() {
        assert!(read(&[0u8; 10][..]).is_err());
        assert!(read(&[0u8; 24][..]).unwrap_err().to_string().contains("magic"));
        let mut file = Vec::new();
        write(&mut file, &[udp_frame(0, 0)]).unwrap();
        assert!(read(&file[..file.len() - 1]).unwrap_err().to_string().contains("truncated"));
    }
}

//! Test helpers shared by the translation and manager tests: megaflow actions built
//! by hand.

use sluice_fastpath::cache::actions::{Actions, Output};
use sluice_fastpath::p4::interp::DropCause;
use sluice_fastpath::p4::track::{ChecksumFix, Edit, Patch, Segment};

/// Actions with these outputs and drops, no counters.
pub fn actions(outputs: Vec<Output>, drops: Vec<DropCause>) -> Actions {
    Actions { outputs: outputs.into(), drops: drops.into(), replay: Box::new([]), metered: None }
}

/// Output to `port` keeping the layout of `hdr` bytes, with byte patches and, if
/// given, the IPv4 checksum of the header at `checksum_at` recomputed.
pub fn in_place(port: u32, hdr: u32, bytes: &[(u32, u8)], checksum_at: Option<u32>) -> Output {
    let patches = bytes.iter().map(|(off, v)| Patch { bit: off * 8, width: 8, value: *v as u128 }).collect();
    let checksums = checksum_at.map(|at| ChecksumFix { at, len: 20, field_bit: (at + 10) * 8 }).into_iter().collect();
    Output::new(
        port,
        Edit {
            strip: hdr,
            segments: vec![Segment::Copy { from: 0, len: hdr }],
            patches,
            len_patches: vec![],
            checksums,
            truncate: None,
        },
    )
}

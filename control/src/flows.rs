//! The control side's view of the workers' megaflows, fed by their event rings.
//!
//! Each worker pushes an event when it installs or removes a megaflow
//! (`fastpath::cache::FlowEvent`, on a bounded ring it never blocks on). The control
//! thread drains the rings when it reports, keeping the live megaflows (match and
//! actions, for dumps and, later, offload) and totals of removals by reason with the
//! traffic the removed megaflows carried. Events a full ring dropped are counted by the
//! worker (`events_dropped`), so a gap is visible, never silent.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use sluice_fastpath::cache::actions::{Actions, Apply};
use sluice_fastpath::cache::event_ring::EventHub;
use sluice_fastpath::cache::events::{Event, EventReader, Install, InstallDesc, Removal};
use sluice_fastpath::cache::RemoveReason;
use sluice_fastpath::p4::track::KEY_PACKET_OFFSET;

/// Events per worker ring.
pub const EVENT_RING: usize = 16384;

/// A live megaflow as control knows it (shared with the offload manager).
pub type MegaflowInfo = sluice_offload::manager::MegaflowDesc;

/// Totals over the events seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FlowSummary {
    /// Live megaflows (installed, not yet removed), all workers.
    pub live: u64,
    /// Installs seen.
    pub installed: u64,
    /// Removed as idle.
    pub removed_idle: u64,
    /// Evicted at the limit.
    pub removed_evicted: u64,
    /// Removed by state changes.
    pub removed_invalidated: u64,
    /// Packets the removed megaflows matched.
    pub removed_packets: u64,
    /// Bytes the removed megaflows matched.
    pub removed_bytes: u64,
}

/// The workers' rings and what came out of them.
#[derive(Debug, Default)]
pub struct FlowLog {
    rings: Vec<EventHub>,
    reader: EventReader,
    /// The live megaflows: per worker, by megaflow id (a cache slot: ids stay under
    /// the worker's flow limit, freed ones are reused first, so the table stays
    /// dense). A storm of setups costs control a slot write per install and per
    /// removal, with no allocation and no tree to walk (measured in
    /// `perf/pipeline_bench.rs`: the "control reading flow events" table). A slot
    /// is 192 bytes (the match inline), kept up to the highest id seen: 38 MB per
    /// worker once a worker has used all 200,000 ids of the default limit, about
    /// what the boxed descriptions and tree nodes took for as many live megaflows.
    live: Vec<Vec<Option<Live>>>,
    summary: FlowSummary,
}

/// A live megaflow as its install described it.
#[derive(Debug)]
struct Live {
    version: u32,
    desc: Known,
}

/// What the install said: as it came, until something asks for the description,
/// which is then made once and kept.
#[derive(Debug)]
enum Known {
    Raw(InstallDesc),
    Made(Arc<MegaflowInfo>),
}

impl Live {
    fn made(&mut self) -> &Arc<MegaflowInfo> {
        if let Known::Raw(d) = &self.desc {
            self.desc = Known::Made(Arc::new(d.desc()));
        }
        match &self.desc {
            Known::Made(m) => m,
            Known::Raw(_) => unreachable!("made above"),
        }
    }

    fn render(&self) -> String {
        match &self.desc {
            Known::Made(m) => render(m),
            Known::Raw(d) => render(&d.desc()),
        }
    }
}

impl FlowLog {
    /// A log reading `rings` (one hub per worker).
    pub fn new(rings: Vec<EventHub>) -> Self {
        FlowLog { rings, ..FlowLog::default() }
    }

    /// Take every pending event.
    pub fn drain(&mut self) {
        let FlowLog { rings, reader, live, summary: s } = self;
        for r in rings.iter() {
            r.drain(|e| match reader.read(e) {
                None => {}
                Some(Event::Installed(Install { worker, flow, version, desc })) => {
                    s.installed += 1;
                    let w = worker as usize;
                    if live.len() <= w {
                        live.resize_with(w + 1, Vec::new);
                    }
                    let slots = &mut live[w];
                    if slots.len() <= flow as usize {
                        slots.resize_with(flow as usize + 1, || None);
                    }
                    // An occupied slot means its megaflow's removal event was dropped
                    // (a full ring): the new install replaces it.
                    let slot = &mut slots[flow as usize];
                    s.live += slot.is_none() as u64;
                    *slot = Some(Live { version, desc: Known::Raw(desc) });
                }
                Some(Event::Removed(Removal { worker, flow, version, reason, packets, bytes })) => {
                    let slot = live.get_mut(worker as usize).and_then(|w| w.get_mut(flow as usize));
                    if let Some(slot) = slot.filter(|l| l.as_ref().is_some_and(|l| l.version == version)) {
                        *slot = None;
                        s.live -= 1;
                    }
                    match reason {
                        RemoveReason::Idle => s.removed_idle += 1,
                        RemoveReason::Evicted => s.removed_evicted += 1,
                        RemoveReason::Invalidated => s.removed_invalidated += 1,
                    }
                    s.removed_packets += packets;
                    s.removed_bytes += bytes;
                }
            });
        }
    }

    /// The totals.
    pub fn summary(&self) -> FlowSummary {
        self.summary
    }

    fn get(&self, worker: u32, flow: u32, version: u32) -> Option<&Live> {
        self.live.get(worker as usize)?.get(flow as usize)?.as_ref().filter(|l| l.version == version)
    }

    /// Megaflow `flow` (version `version`) of worker `worker` as (match, actions),
    /// if its install event has been seen.
    pub fn describe(&self, worker: u32, flow: u32, version: u32) -> Option<(String, String)> {
        let line = self.get(worker, flow, version)?.render();
        let (m, a) = line.split_once(" ->").unwrap_or((&line, ""));
        Some((m.to_owned(), a.trim_start().to_owned()))
    }

    /// Megaflow `flow` (version `version`) of worker `worker`, if its install event
    /// has been seen (its description made on the first call, then kept).
    pub fn info(&mut self, worker: u32, flow: u32, version: u32) -> Option<&Arc<MegaflowInfo>> {
        let l = self.live.get_mut(worker as usize)?.get_mut(flow as usize)?.as_mut()?;
        (l.version == version).then(|| l.made())
    }

    /// Up to `limit` live megaflows, one readable line each, by worker and id.
    pub fn dump(&self, limit: usize) -> Vec<String> {
        let live =
            self.live.iter().enumerate().flat_map(|(w, slots)| {
                slots.iter().enumerate().filter_map(move |(f, l)| l.as_ref().map(|l| (w, f, l)))
            });
        live.take(limit).map(|(w, f, l)| format!("worker {w} flow {f}: {}", l.render())).collect()
    }
}

/// `match -> actions`: the ingress port and length conditions, then masked packet
/// bytes as `pkt[from..to]=value/mask` (hex), then outputs and drops.
pub fn render(m: &MegaflowInfo) -> String {
    // Key-space bytes and mask bytes, little-endian words as the cache keeps them.
    let mut key = vec![0u8; 8 * 33];
    let mut mask = vec![0u8; 8 * 33];
    for ((i, b), k) in m.mask.idx.iter().zip(m.mask.bits.iter()).zip(m.key.iter()) {
        let at = *i as usize * 8;
        mask[at..at + 8].copy_from_slice(&b.to_le_bytes());
        key[at..at + 8].copy_from_slice(&k.to_le_bytes());
    }
    let mut s = String::new();
    if mask[0..2] != [0, 0] {
        let _ = write!(s, "in_port=0x{:02x}{:02x}/0x{:02x}{:02x} ", key[0], key[1], mask[0], mask[1]);
    }
    if mask[2..6] != [0, 0, 0, 0] {
        let v = u32::from_be_bytes([key[2], key[3], key[4], key[5]]);
        let _ = write!(s, "len=0x{v:x}/0x{:02x}{:02x}{:02x}{:02x} ", mask[2], mask[3], mask[4], mask[5]);
    }
    let _ = write!(s, "len>={}", m.min_len);
    // Runs of masked packet bytes.
    let pkt = KEY_PACKET_OFFSET;
    let mut i = pkt;
    while i < mask.len() {
        if mask[i] == 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < mask.len() && mask[i] != 0 {
            i += 1;
        }
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let full = mask[start..i].iter().all(|b| *b == 0xff);
        let _ = write!(s, " pkt[{}..{}]={}", start - pkt, i - pkt, hex(&key[start..i]));
        if !full {
            let _ = write!(s, "/{}", hex(&mask[start..i]));
        }
    }
    s.push_str(" ->");
    render_actions(&m.actions, &mut s);
    s
}

/// ` output:P(how)... drop(reason)...`, or for a metered flow
/// ` meter(M[cell]) green{...} yellow{...} red{...}`.
fn render_actions(a: &Actions, s: &mut String) {
    if let Some(b) = &a.metered {
        let _ = write!(s, " meter({}[{}])", b.meter, b.cell);
        for (name, c) in ["green", "yellow", "red"].iter().zip(b.colors.iter()) {
            let _ = write!(s, " {name}{{");
            render_actions(c, s);
            s.push_str(" }");
        }
        return;
    }
    for o in a.outputs.iter() {
        let how = match &o.apply {
            Apply::InPlace { patches } if patches.is_empty() && o.edit.checksums.is_empty() => String::new(),
            Apply::InPlace { patches } => {
                format!("(patch {} bytes, {} checksums)", patches.len(), o.edit.checksums.len())
            }
            Apply::Rebuild { .. } => {
                let new = o.edit.header_len();
                let lens = match o.edit.len_patches.len() {
                    0 => String::new(),
                    n => format!(", {n} length fields"),
                };
                format!("(headers {}B -> {new}B{lens})", o.edit.strip)
            }
            Apply::Copy => "(copy)".into(),
        };
        let _ = write!(s, " output:{}{how}", o.port);
    }
    for d in a.drops.iter() {
        let _ = write!(s, " drop({d:?})");
    }
    if a.outputs.is_empty() && a.drops.is_empty() {
        s.push_str(" drop");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_fastpath::cache::actions::{Actions, Output};
    use sluice_fastpath::cache::events::{EventActions, EventMatch};
    use sluice_fastpath::cache::FlowEvent;
    use sluice_fastpath::p4::interp::DropCause;
    use sluice_fastpath::p4::track::{Edit, LenPatch, Segment};

    #[test]
    fn events_build_the_live_set_and_totals() {
        let hub = EventHub::new(8);
        let mut tx = hub.sender();
        let mut log = FlowLog::new(vec![hub]);
        let mut m = [0u8; sluice_fastpath::p4::track::KEY_BYTES];
        m[KEY_PACKET_OFFSET + 12] = 0xff;
        m[KEY_PACKET_OFFSET + 13] = 0xff;
        let mut k = [0u8; 8];
        k[4] = 0x08; // packet byte 12 is byte 4 of word 2
        let key: Box<[u64]> = Box::new([u64::from_le_bytes(k)]);
        let actions = Arc::new(Actions {
            outputs: Box::new([Output {
                port: 2,
                edit: Edit::default(),
                apply: Apply::InPlace { patches: Default::default() },
            }]),
            drops: Box::new([DropCause::Egress]),
            replay: Box::new([]),
            metered: None,
        });
        let words = sluice_fastpath::cache::key::words(&m);
        for flow in 0..2 {
            let first = (flow == 0).then(|| Arc::clone(&actions));
            tx.send(FlowEvent::Installed {
                worker: 0,
                flow,
                version: 0,
                matched: EventMatch::new(&words, &key),
                min_len: 14,
                deps: 0,
                actions: EventActions::Shared { id: 1, first },
            })
            .unwrap();
        }
        tx.send(FlowEvent::Removed(Removal {
            worker: 0,
            flow: 1,
            version: 0,
            reason: RemoveReason::Idle,
            packets: 5,
            bytes: 300,
        }))
        .unwrap();
        log.drain();
        let s = log.summary();
        assert_eq!((s.live, s.installed, s.removed_idle, s.removed_packets, s.removed_bytes), (1, 2, 1, 5, 300));
        assert_eq!(log.dump(10), ["worker 0 flow 0: len>=14 pkt[12..14]=0800 -> output:2 drop(Egress)"]);
        // The description is made on the first ask and kept; a raw one renders the same.
        let (m, a) = log.describe(0, 0, 0).expect("flow 0 is live");
        assert_eq!((m.as_str(), a.as_str()), ("len>=14 pkt[12..14]=0800", "output:2 drop(Egress)"));
        let first = Arc::clone(log.info(0, 0, 0).expect("flow 0 is live"));
        assert!(Arc::ptr_eq(&first, log.info(0, 0, 0).unwrap()), "made once");
        assert_eq!((&*first.key, first.min_len), (&key[..], 14));
        assert!(Arc::ptr_eq(&first.actions, &actions));
        assert_eq!(log.describe(0, 0, 0).unwrap().0, m);
        assert!(log.info(0, 0, 1).is_none() && log.info(0, 1, 0).is_none() && log.info(1, 0, 0).is_none());
        // Slot 0 again at version 1 (its removal dropped by a full ring, say) replaces
        // version 0; a removal naming version 0 then leaves version 1 alone. Another
        // worker's flow 0 is its own.
        let install = |worker, version| FlowEvent::Installed {
            worker,
            flow: 0,
            version,
            matched: EventMatch::new(&words, &key),
            min_len: 20,
            deps: 0,
            actions: EventActions::Own(Arc::clone(&actions)),
        };
        tx.send(install(0, 1)).unwrap();
        tx.send(install(3, 0)).unwrap();
        let gone = Removal { worker: 0, flow: 0, version: 0, reason: RemoveReason::Evicted, packets: 0, bytes: 0 };
        tx.send(FlowEvent::Removed(gone)).unwrap();
        log.drain();
        let s = log.summary();
        assert_eq!((s.live, s.installed, s.removed_evicted), (2, 4, 1));
        assert!(log.info(0, 0, 0).is_none());
        assert_eq!(log.info(0, 0, 1).map(|d| d.min_len), Some(20));
        assert_eq!(
            log.dump(10),
            [
                "worker 0 flow 0: len>=20 pkt[12..14]=0800 -> output:2 drop(Egress)",
                "worker 3 flow 0: len>=20 pkt[12..14]=0800 -> output:2 drop(Egress)"
            ]
        );
        assert_eq!(log.dump(1).len(), 1);
    }

    #[test]
    fn a_live_slot_stays_small() {
        // What the live table costs per megaflow id (the doc on `FlowLog::live`).
        let size = std::mem::size_of::<Option<Live>>();
        assert!(size <= 192, "{size} bytes");
    }

    #[test]
    fn a_tunnel_push_shows_its_new_headers_and_length_fields() {
        let lens = [16, 38].map(|at| LenPatch { bit: at * 8, width: 16, off: 36, modw: 16 }).to_vec();
        let segments = vec![Segment::Bytes(vec![0; 50]), Segment::Copy { from: 0, len: 14 }];
        let push = Output::new(3, Edit { strip: 14, segments, len_patches: lens, ..Edit::default() });
        let a = Actions { outputs: Box::new([push]), drops: Box::new([]), replay: Box::new([]), metered: None };
        let mut s = String::new();
        render_actions(&a, &mut s);
        assert_eq!(s, " output:3(headers 14B -> 64B, 2 length fields)");
    }
}

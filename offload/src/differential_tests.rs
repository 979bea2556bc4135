//! Offloaded megaflows against software, on random state and packets: issue 9's
//! "offloaded flows bypass lookup and produce the same output as software".
//!
//! Each case is a program and a seed ([`Rng`] of the fast path's generator, as in the
//! cache's own differential test): random table state, a pool of random packets pushed
//! through [`Datapath::process`] so that real megaflows get installed (their
//! [`FlowEvent::Installed`] events carry mask, key, minimum length and actions), every
//! megaflow translated for the switch's ports, and its rules created on a
//! [`NicModel`] the way the manager does — full offload where the actions have an
//! rte_flow form and the model accepts it, else partial (MARK, bound in the cache with
//! [`FlowCache::bind_mark`] first). A second phase installs partial rules only (the
//! manager with full offload off). Then the pool, and mutations of it that still or no
//! longer match, arrive at the model:
//!
//! * a full rule forwarded or dropped the packet: its bytes and port (or the drop)
//!   must be what [`Datapath::process`] gives for the same packet on the same port;
//! * a partial rule marked it: unmodified, and [`FlowCache::marked`] names the rule's
//!   megaflow (or nothing, when the packet is shorter than its minimum length: the
//!   worker then looks up as usual); executing that megaflow gives the software
//!   outcome, and when a lookup finds another (overlapping) megaflow, both agree;
//! * a metered full rule (`METER(object)`, [`Case::new_metered`]: every meter cell
//!   configured) forwarded or dropped it: the color the model's meter gave it (read
//!   from the object's statistics) picks the megaflow's outcome, whose bytes and port
//!   (or drop) the NIC's must equal; and where software's own meter colored the same
//!   packet alike, [`Datapath::process`]'s too;
//! * no rule matched: nothing to compare.
//!
//! And whatever rule matched, the packet must match the rule's own megaflow (key, and
//! length for full rules): a rule never matches more than its megaflow. A failure names
//! the program, the seed, the packet, the megaflow, the rule and both outcomes.
//!
//! The corpus of P4 programs (`simple_router`, `onos_basic`) is found through
//! `SLUICE_P4_CORPUS`, defaulting to `../shared/p4` beside the repository; where it is
//! absent those programs are skipped with a notice. Sluice's default program ships
//! with Sluice and always runs.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use dpdk_sys::flow::{Action, Rule};
use dpdk_sys::mtr::{MeterSpec, Profile};
use sluice_fastpath::cache::actions::Actions;
use sluice_fastpath::cache::datapath::Datapath;
use sluice_fastpath::cache::dpcls::NONE;
use sluice_fastpath::cache::event_ring::EventHub;
use sluice_fastpath::cache::events::{Event, EventReader, Install, MegaflowDesc};
use sluice_fastpath::cache::key::{Mask, PacketView};
use sluice_fastpath::cache::{CacheConfig, CacheStats, FlowCache};
use sluice_fastpath::p4::compile::compile_bytes;
use sluice_fastpath::p4::gen::{configure_meter, random_entries, random_packet, Pools, Rng, CPU_PORT};
use sluice_fastpath::p4::ir::{ActionCall, Ir, KeyValue, Value};
use sluice_fastpath::p4::tables::{Entry, EntryAction, Runtime};
use sluice_fastpath::p4::track::KEY_PACKET_OFFSET;

use crate::device::FlowDevice;
use crate::model::{ModelConfig, ModelHandle, NicModel, Verdict};
use crate::translate::{translate, MegaflowRef, PortInfo};

/// Seeds per program.
const SEEDS: u64 = 24;
/// Random packets per seed (pushed through the datapath to install megaflows).
const POOL: usize = 64;
/// Mutations per pool packet, per phase.
const MUTATIONS: usize = 4;

/// The switch's ports: P4 ports 0–4 on DPDK ports 10–14 (port 2 with four rx queues,
/// so its partial rules end in RSS). The CPU port has no device.
fn ports() -> Vec<PortInfo> {
    (0..5).map(|p4| PortInfo { p4, dpdk: 10 + p4 as u16, rx_queues: if p4 == 2 { 4 } else { 1 } }).collect()
}

fn corpus_program(rel: &str) -> Option<Ir> {
    let dir = sluice_fastpath::p4::corpus::dir()?;
    Some(compile_bytes(&std::fs::read(dir.join(rel)).unwrap()).unwrap())
}

/// Sluice's own program (ships with Sluice, not in the corpus).
fn sluice_default() -> Ir {
    compile_bytes(include_bytes!("../../pipelines/sluice_default/sluice_default.json")).unwrap()
}

/// An installed megaflow, from its event.
#[derive(Debug)]
struct Flow {
    id: u32,
    mask: Mask,
    key: Box<[u64]>,
    min_len: u32,
    actions: Arc<Actions>,
}

impl Flow {
    /// Whether a packet on P4 port `port` matches the key (the length aside).
    fn key_matches(&self, port: u32, data: &[u8]) -> bool {
        let v = PacketView::new(port, data);
        self.mask
            .idx
            .iter()
            .zip(self.mask.bits.iter())
            .zip(self.key.iter())
            .all(|((i, b), k)| v.word(*i as usize) & b == *k)
    }

    /// The key as `offset: value/mask` bytes (offsets in the packet; `port`, `len`
    /// for the key-space head).
    fn describe(&self) -> String {
        let mut s = format!("flow {} min_len {}:", self.id, self.min_len);
        for ((i, b), k) in self.mask.idx.iter().zip(self.mask.bits.iter()).zip(self.key.iter()) {
            for j in 0..8 {
                let (m, v) = ((b >> (8 * j)) as u8, (k >> (8 * j)) as u8);
                if m == 0 {
                    continue;
                }
                let at = *i as usize * 8 + j;
                match at.checked_sub(KEY_PACKET_OFFSET) {
                    Some(off) => write!(s, " {off}:{v:02x}/{m:02x}").unwrap(),
                    None => write!(s, " head{at}:{v:02x}/{m:02x}").unwrap(),
                }
            }
        }
        write!(s, "; actions {:?}", self.actions).unwrap();
        s
    }
}

/// A rule created on the model.
#[derive(Debug)]
struct Installed {
    /// Index in the case's flows.
    flow: usize,
    port: PortInfo,
    rule: Rule,
    handle: ModelHandle,
    /// Partial: its mark. Full: `None`.
    mark: Option<u32>,
    /// Full: its COUNT hits (a metered rule's: its meter object's per color) when
    /// last queried.
    hits: [u64; 3],
    /// A metered rule's meter object.
    meter: Option<u32>,
}

/// What happened, summed over cases.
#[derive(Debug, Default)]
struct Tally {
    /// Megaflows translated in the first phase (the counts below up to `refused` are of those).
    megaflows: u64,
    /// Translations with a full-offload form.
    full: u64,
    /// Translations with a pattern but no full form, by the full refusal's reason.
    partial_only: BTreeMap<&'static str, u64>,
    /// Megaflows without any rule, by reason.
    refused: BTreeMap<&'static str, u64>,
    /// Rules the model refused to create, by mode and error.
    model_refused: BTreeMap<String, u64>,
    rules_full: u64,
    rules_partial: u64,
    /// Packets offered to the NIC, and of those mutated ones.
    offered: u64,
    mutated: u64,
    /// Full rules that forwarded (compared), dropped (compared).
    full_forwarded: u64,
    full_dropped: u64,
    /// Partial hits whose megaflow was executed and compared.
    partial_compared: u64,
    /// ... of which a lookup found another megaflow (also compared).
    partial_overlaps: u64,
    /// Marked packets shorter than the megaflow (the worker looks up as usual).
    mark_short: u64,
    /// Comparisons made on mutated packets.
    mutated_compared: u64,
    /// Packets no rule matched.
    no_rule: u64,
    /// Metered full rules created.
    rules_metered: u64,
    /// Packets a metered full rule handled, by the color its meter gave them.
    metered_colors: [u64; 3],
    /// ... of which software's meter gave the same color (compared with the pipeline too).
    metered_same_color: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        fn merge<K: Ord + Clone>(a: &mut BTreeMap<K, u64>, b: &BTreeMap<K, u64>) {
            for (k, v) in b {
                *a.entry(k.clone()).or_default() += v;
            }
        }
        self.megaflows += o.megaflows;
        self.full += o.full;
        merge(&mut self.partial_only, &o.partial_only);
        merge(&mut self.refused, &o.refused);
        merge(&mut self.model_refused, &o.model_refused);
        self.rules_full += o.rules_full;
        self.rules_partial += o.rules_partial;
        self.offered += o.offered;
        self.mutated += o.mutated;
        self.full_forwarded += o.full_forwarded;
        self.full_dropped += o.full_dropped;
        self.partial_compared += o.partial_compared;
        self.partial_overlaps += o.partial_overlaps;
        self.mark_short += o.mark_short;
        self.mutated_compared += o.mutated_compared;
        self.no_rule += o.no_rule;
        self.rules_metered += o.rules_metered;
        for c in 0..3 {
            self.metered_colors[c] += o.metered_colors[c];
        }
        self.metered_same_color += o.metered_same_color;
    }
}

/// One case: a program, a seed, its datapath, its megaflows.
struct Case<'a> {
    name: &'a str,
    seed: u64,
    rng: Rng,
    dp: Datapath,
    events: EventHub,
    reader: EventReader,
    flows: Vec<Flow>,
    pool: Vec<(u32, Vec<u8>)>,
    ports: Vec<PortInfo>,
    next_mark: u32,
    next_meter: u32,
    tally: Tally,
}

/// How rules are made in a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Full where possible, else partial (the manager's default).
    FullFirst,
    /// Partial only (the manager with full offload off).
    PartialOnly,
}

impl<'a> Case<'a> {
    fn new(name: &'a str, ir: &Ir, seed: u64) -> Case<'a> {
        let mut rng = Rng::new(seed);
        let pools = Pools::default();
        let mut rt = Runtime::new(ir);
        random_entries(ir, &mut rt, &mut rng, &pools, 6);
        let pool: Vec<(u32, Vec<u8>)> = (0..POOL).map(|_| random_packet(&mut rng, &pools)).collect();
        Case::with(name, ir, rt, pool, rng, seed)
    }

    /// [`Case::new`] with every cell of every meter configured ([`configure_meter`]:
    /// few packets see all three colors). The software clock stands still (buckets
    /// never refill), so colors depend on the packets alone.
    fn new_metered(name: &'a str, ir: &Ir, seed: u64) -> Case<'a> {
        dpdk_sys::eal::Eal::for_tests("sluice-offload-test");
        let mut rng = Rng::new(seed);
        let pools = Pools::default();
        let mut rt = Runtime::new(ir);
        random_entries(ir, &mut rt, &mut rng, &pools, 6);
        for m in 0..ir.meters.len() {
            configure_meter(ir, &mut rt, m);
        }
        let pool: Vec<(u32, Vec<u8>)> = (0..POOL).map(|_| random_packet(&mut rng, &pools)).collect();
        Case::with(name, ir, rt, pool, rng, seed)
    }

    /// A case on given table state and packets.
    fn with(name: &'a str, ir: &Ir, rt: Runtime, pool: Vec<(u32, Vec<u8>)>, rng: Rng, seed: u64) -> Case<'a> {
        let events = EventHub::new(1 << 16);
        let cache = FlowCache::new(CacheConfig::default(), 0, Arc::new(CacheStats::default()), Some(events.sender()));
        let mut dp = Datapath::new(Arc::new(ir.clone()), rt, cache);
        for (port, pkt) in &pool {
            dp.process(*port, pkt);
        }
        let mut c = Case {
            name,
            seed,
            rng,
            dp,
            events,
            reader: EventReader::default(),
            flows: vec![],
            pool,
            ports: ports(),
            next_mark: 1,
            next_meter: 1,
            tally: Tally::default(),
        };
        c.collect();
        c
    }

    /// Take the megaflows installed since the last call.
    fn collect(&mut self) {
        for e in self.events.collect() {
            match self.reader.read(e) {
                Some(Event::Installed(Install { flow, desc, .. })) => {
                    let MegaflowDesc { mask, key, min_len, actions, .. } = desc.desc();
                    self.flows.push(Flow { id: flow, mask, key, min_len, actions })
                }
                Some(Event::Removed(r)) => panic!("{}: megaflow {} removed (no expiry here)", self.name, r.flow),
                None => {}
            }
        }
    }

    fn p4_of(&self, dpdk: u16) -> u32 {
        self.ports.iter().find(|p| p.dpdk == dpdk).expect("a port of the switch").p4
    }

    /// Translate every megaflow and create its rules on a fresh model.
    fn install(&mut self, mode: Mode) -> (NicModel, Vec<Installed>) {
        let mut model = NicModel::new(ModelConfig::default());
        let mut rules = vec![];
        let t = &mut self.tally;
        for (i, f) in self.flows.iter().enumerate() {
            let m = MegaflowRef { mask: &f.mask, key: &f.key, min_len: f.min_len, actions: &f.actions };
            let tr = match translate(&m, &self.ports) {
                Ok(tr) => tr,
                Err(r) => {
                    if mode == Mode::FullFirst {
                        t.megaflows += 1;
                        *t.refused.entry(r.reason()).or_default() += 1;
                    }
                    continue;
                }
            };
            if mode == Mode::FullFirst {
                t.megaflows += 1;
                match &tr.full {
                    Ok(_) => t.full += 1,
                    Err(r) => *t.partial_only.entry(r.reason()).or_default() += 1,
                }
            }
            for port in &tr.in_ports {
                if mode == Mode::FullFirst {
                    // A metered megaflow's meter object first, from its cell's
                    // configuration, as the manager makes it.
                    let meter = tr.meter.as_ref().and_then(|plan| {
                        let cell = self.dp.rt.meters[plan.meter as usize][plan.cell as usize]?;
                        let c = cell.config;
                        let profile =
                            Profile { cir: c.cir, pir: c.pir, cbs: c.cburst, pbs: c.pburst, packets: !plan.bytes };
                        let id = self.next_meter;
                        self.next_meter += 1;
                        model.meter_create(port.dpdk, id, &MeterSpec { profile, colors: plan.colors.clone() }).unwrap();
                        Some(id)
                    });
                    if let Ok(rule) = tr.full_rule(port, meter) {
                        match model.validate(port.dpdk, &rule).and_then(|()| model.create(port.dpdk, &rule)) {
                            Ok(handle) => {
                                t.rules_full += 1;
                                t.rules_metered += meter.is_some() as u64;
                                let (flow, port, mark, hits) = (i, *port, None, [0; 3]);
                                rules.push(Installed { flow, port, rule, handle, mark, hits, meter });
                                continue;
                            }
                            Err(e) => *t.model_refused.entry(format!("full: {e}")).or_default() += 1,
                        }
                    }
                    if let Some(id) = meter {
                        model.meter_destroy(port.dpdk, id).unwrap();
                    }
                }
                let mark = self.next_mark;
                self.next_mark += 1;
                // Bound before the rule exists, as the manager does.
                let bound = self.dp.cache.bind_mark(mark, &f.mask, &f.key, f.min_len);
                assert_eq!(bound, Some(f.id), "{}: mark {mark} binds megaflow {}", self.name, f.id);
                let rule = tr.partial_rule(port, mark);
                match model.validate(port.dpdk, &rule).and_then(|()| model.create(port.dpdk, &rule)) {
                    Ok(handle) => {
                        t.rules_partial += 1;
                        let (flow, port, mark, hits) = (i, *port, Some(mark), [0; 3]);
                        rules.push(Installed { flow, port, rule, handle, mark, hits, meter: None });
                    }
                    Err(e) => {
                        self.dp.cache.unbind_mark(mark);
                        *t.model_refused.entry(format!("partial: {e}")).or_default() += 1;
                    }
                }
            }
        }
        (model, rules)
    }

    /// A mutation of pool packet `i`: one that may still match its megaflow or not.
    fn mutate(&mut self, i: usize) -> (u32, Vec<u8>) {
        let (mut port, mut p) = self.pool[i].clone();
        let rng = &mut self.rng;
        // The megaflow software has for the original, if any: flip a byte it does or
        // does not read.
        let mut found = [NONE; 1];
        self.dp.cache.lookup(&[PacketView::new(port, &p)], &mut found);
        let flow = self.flows.iter().find(|f| f.id == found[0] && found[0] != NONE);
        let read = |f: &Flow, off: usize| {
            let at = KEY_PACKET_OFFSET + off;
            f.mask
                .idx
                .iter()
                .zip(f.mask.bits.iter())
                .any(|(w, b)| *w as usize == at / 8 && (b >> (8 * (at % 8))) & 0xff != 0)
        };
        let tag = |p: &[u8]| p.len() >= 18 && matches!(u16::from_be_bytes([p[12], p[13]]), 0x8100 | 0x88a8);
        match rng.below(10) {
            0 | 1 if !p.is_empty() => {
                // A byte the megaflow does not read (or any byte).
                let cands: Vec<usize> = (0..p.len()).filter(|o| flow.is_none_or(|f| !read(f, *o))).collect();
                let at = rng.pick_opt(&cands).copied().unwrap_or_else(|| rng.index(p.len()));
                p[at] ^= 1 << rng.below(8);
            }
            2 if !p.is_empty() => {
                // A byte it reads (or any byte).
                let cands: Vec<usize> = (0..p.len()).filter(|o| flow.is_some_and(|f| read(f, *o))).collect();
                let at = rng.pick_opt(&cands).copied().unwrap_or_else(|| rng.index(p.len()));
                p[at] ^= 1 << rng.below(8);
            }
            3 if !p.is_empty() => {
                // Interesting values where the headers are.
                let at = rng.index(p.len().min(64));
                p[at] = rng.pick(&[0x00, 0xff, 0x45, 0x46, 0x4f, 0x08, 0x81, 0x86, 0xdd, 0x06, 0x11, 0x12, 0xb5, 0x3a]);
            }
            4 => {
                // Truncated.
                let n = rng.index(p.len() + 1);
                p.truncate(n);
            }
            5 => {
                // Longer.
                let n = 1 + rng.index(40);
                p.extend((0..n).map(|_| rng.next_u64() as u8));
            }
            6 => {
                // Another port (the CPU port's packets move to a NIC port).
                port = rng.pick(&[0, 1, 2, 3, 4]);
            }
            7 if p.len() >= 14 => {
                // A VLAN tag pushed.
                let tci = rng.below(1 << 16) as u16;
                let tpid: u16 = rng.pick(&[0x8100, 0x88a8]);
                p.splice(12..12, [tpid.to_be_bytes(), tci.to_be_bytes()].concat());
            }
            8 if tag(&p) => {
                // The outer tag popped.
                p.drain(12..16);
            }
            _ => {
                // IPv4 options: IHL 6, four bytes after the base header (L4 moves).
                let ip = if tag(&p) { 18 } else { 14 };
                if p.len() >= ip + 20 && u16::from_be_bytes([p[ip - 2], p[ip - 1]]) == 0x0800 {
                    p[ip] = 0x46;
                    p.splice(ip + 20..ip + 20, [1, 1, 1, 0]);
                } else if !p.is_empty() {
                    let at = rng.index(p.len());
                    p[at] ^= 0x80;
                }
            }
        }
        (port, p)
    }

    /// Replay the pool and its mutations through the model; compare with software.
    fn replay(&mut self, mut model: NicModel, mut rules: Vec<Installed>) {
        let mut by_mark: HashMap<u32, usize> = HashMap::new();
        for (r, inst) in rules.iter().enumerate() {
            if let Some(m) = inst.mark {
                by_mark.insert(m, r);
            }
        }
        for i in 0..self.pool.len() {
            let original = self.pool[i].clone();
            self.offer(&mut model, &mut rules, &by_mark, original, false);
            for _ in 0..MUTATIONS {
                let m = self.mutate(i);
                self.offer(&mut model, &mut rules, &by_mark, m, true);
            }
        }
        // Unbind this phase's marks: the next phase binds its own.
        for r in &rules {
            if let Some(m) = r.mark {
                self.dp.cache.unbind_mark(m);
            }
        }
    }

    /// One packet at the NIC.
    fn offer(
        &mut self,
        model: &mut NicModel,
        rules: &mut [Installed],
        by_mark: &HashMap<u32, usize>,
        (port, pkt): (u32, Vec<u8>),
        mutated: bool,
    ) {
        let Some(info) = self.ports.iter().find(|p| p.p4 == port).copied() else {
            // The CPU port: packet-outs come from the controller, not a NIC.
            assert_eq!(port, CPU_PORT);
            return;
        };
        self.tally.offered += 1;
        self.tally.mutated += mutated as u64;
        let mut wire = pkt.clone();
        let verdict = model.receive(info.dpdk, &mut wire);
        let ctx = |c: &Case, r: &Installed, got: &dyn std::fmt::Debug, want: &dyn std::fmt::Debug| {
            format!(
                "{} seed {}: packet on P4 port {port} ({} bytes{}): {pkt:02x?}\n  megaflow: {}\n  rule on DPDK port {}: \
                 {:?}\n  NIC: {got:?}\n  software: {want:?}",
                c.name,
                c.seed,
                pkt.len(),
                if mutated { ", mutated" } else { "" },
                c.flows[r.flow].describe(),
                r.port.dpdk,
                r.rule,
            )
        };
        match verdict {
            Verdict::Forwarded { .. } | Verdict::Dropped => {
                let (r, color) = self.full_hit(model, rules, info.dpdk);
                let f = &self.flows[rules[r].flow];
                // A metered megaflow's cell, with its color counts before software's run.
                let cell = f.actions.metered.as_ref().map(|b| (b.meter as usize, b.cell as usize));
                let counts = |dp: &Datapath| cell.and_then(|(m, c)| dp.rt.meters[m][c]).map(|c| c.counts);
                let before = counts(&self.dp);
                let sw = self.dp.process(port, &pkt);
                let after = counts(&self.dp);
                let rule = &rules[r];
                let f = &self.flows[rule.flow];
                let got: Vec<(u32, Vec<u8>)> = match verdict {
                    Verdict::Forwarded { port: out } => vec![(self.p4_of(out), wire)],
                    _ => vec![],
                };
                assert!(
                    f.key_matches(port, &pkt) && pkt.len() >= f.min_len as usize,
                    "a full rule matched a packet outside its megaflow\n{}",
                    ctx(self, rule, &got, &sw.outputs)
                );
                if let Some(c) = color {
                    // The NIC's color picks the outcome; software's own meter may have
                    // colored this packet otherwise (its buckets are its own).
                    let want = rendered(&f.actions.metered.as_ref().expect("a metered megaflow").colors[c], &pkt);
                    assert_eq!(
                        got,
                        want,
                        "a metered rule's color-{c} output differs\n{}",
                        ctx(self, rule, &got, &want)
                    );
                    self.tally.metered_colors[c] += 1;
                    let sw_color = before.zip(after).and_then(|(b, a)| (0..3).find(|i| a[*i].0 > b[*i].0));
                    if sw_color != Some(c) {
                        self.tally.mutated_compared += mutated as u64;
                        return;
                    }
                    self.tally.metered_same_color += 1;
                }
                assert_eq!(
                    got,
                    sw.outputs,
                    "a full rule's output differs from software\n{}",
                    ctx(self, rule, &got, &sw)
                );
                match verdict {
                    Verdict::Dropped => self.tally.full_dropped += 1,
                    _ => self.tally.full_forwarded += 1,
                }
                self.tally.mutated_compared += mutated as u64;
            }
            Verdict::ToHost { mark: Some(mark), .. } => {
                let r = *by_mark.get(&mark).expect("a mark of this phase");
                let rule = &rules[r];
                let f = &self.flows[rule.flow];
                assert_eq!(wire, pkt, "a partial rule changed the packet\n{}", ctx(self, rule, &wire, &pkt));
                assert!(
                    f.key_matches(port, &pkt),
                    "a partial rule matched a packet outside its megaflow\n{}",
                    ctx(self, rule, &verdict, &"-")
                );
                let Some(id) = self.dp.cache.marked(mark, pkt.len()) else {
                    assert!(pkt.len() < f.min_len as usize, "mark {mark} unbound\n{}", ctx(self, rule, &verdict, &"-"));
                    self.tally.mark_short += 1;
                    return;
                };
                assert_eq!(id, f.id, "mark {mark} names another megaflow\n{}", ctx(self, rule, &id, &f.id));
                let mut found = [NONE; 1];
                self.dp.cache.lookup(&[PacketView::new(port, &pkt)], &mut found);
                assert_ne!(found[0], NONE, "no megaflow for a marked packet\n{}", ctx(self, rule, &verdict, &"-"));
                let len = pkt.len() as u64;
                let now = self.dp.interp.now;
                let run = |dp: &mut Datapath, a: &Actions| {
                    let leaf = a.leaf(&mut dp.rt, now, len);
                    let outputs = rendered(leaf, &pkt);
                    let mut drops = leaf.drops.to_vec();
                    drops.sort_by_key(|d| *d as u8);
                    (outputs, drops)
                };
                // Each run executes the meters from the same state (a metered
                // megaflow's color would otherwise differ run to run).
                let meters = self.dp.rt.meters.clone();
                let got = run(&mut self.dp, &f.actions);
                if found[0] != id {
                    // Overlapping megaflows: any match is right, so they agree.
                    let other = Arc::clone(&self.dp.cache.get(found[0]).expect("live").actions);
                    self.dp.rt.meters = meters.clone();
                    let theirs = run(&mut self.dp, &other);
                    assert_eq!(got, theirs, "overlapping megaflows differ\n{}", ctx(self, rule, &got, &theirs));
                    self.tally.partial_overlaps += 1;
                }
                self.dp.rt.meters = meters;
                let sw = self.dp.process(port, &pkt);
                let mut drops = sw.drops.clone();
                drops.sort_by_key(|d| *d as u8);
                let want = (sw.outputs.clone(), drops);
                assert_eq!(
                    got,
                    want,
                    "a marked megaflow's outcome differs from software\n{}",
                    ctx(self, rule, &got, &sw)
                );
                self.tally.partial_compared += 1;
                self.tally.mutated_compared += mutated as u64;
            }
            Verdict::ToHost { mark: None, .. } => {
                assert_eq!(wire, pkt, "no rule, yet the packet changed");
                self.tally.no_rule += 1;
            }
        }
    }

    /// The full rule on DPDK port `dpdk` that just counted a hit, and for a metered
    /// one the color its meter gave.
    fn full_hit(&self, model: &mut NicModel, rules: &mut [Installed], dpdk: u16) -> (usize, Option<usize>) {
        let mut hit = None;
        for (i, r) in rules.iter_mut().enumerate() {
            if r.mark.is_some() || r.port.dpdk != dpdk {
                continue;
            }
            let hits = match r.meter {
                Some(id) => model.meter_stats(dpdk, id).expect("meter objects count").packets,
                None => [model.query(&r.handle).expect("full rules count").hits, 0, 0],
            };
            if let Some(c) = (0..3).find(|c| hits[*c] != r.hits[*c]) {
                assert_eq!(hits.iter().sum::<u64>(), r.hits.iter().sum::<u64>() + 1);
                assert!(hit.is_none(), "two rules counted one packet");
                r.hits = hits;
                hit = Some((i, r.meter.map(|_| c)));
            }
        }
        hit.expect("a full rule counted the packet")
    }
}

/// The copies an outcome sends for `pkt`: (P4 port, bytes).
fn rendered(a: &Actions, pkt: &[u8]) -> Vec<(u32, Vec<u8>)> {
    a.outputs
        .iter()
        .map(|o| {
            let mut b = vec![];
            o.render(pkt, &mut b);
            (o.port, b)
        })
        .collect()
}

/// Every seed of one program; the tally.
fn run(name: &str, ir: &Ir) -> Tally {
    let start = std::time::Instant::now();
    let mut total = Tally::default();
    for seed in 0..SEEDS {
        let mut c = Case::new(name, ir, seed);
        let (model, rules) = c.install(Mode::FullFirst);
        c.replay(model, rules);
        // The replay may have installed more megaflows (mutated packets): offload them too.
        c.collect();
        let (model, rules) = c.install(Mode::PartialOnly);
        c.replay(model, rules);
        total.add(&c.tally);
    }
    eprintln!("{name}: {total:#?} in {:.1?}", start.elapsed());
    total
}

#[test]
fn offloaded_megaflows_forward_as_software_does() {
    let mut programs: Vec<(&str, Ir)> = vec![("sluice_default", sluice_default())];
    for (name, rel) in [("simple_router", "simple_router/simple_router.json"), ("onos_basic", "onos_basic/basic.json")]
    {
        if let Some(ir) = corpus_program(rel) {
            programs.push((name, ir));
        }
    }
    let mut all = Tally::default();
    for (name, ir) in &programs {
        let t = run(name, ir);
        all.add(&t);
    }
    eprintln!("all programs: {all:#?}");
    // The comparisons must have happened.
    assert!(all.full_forwarded > 0, "no full rule forwarded a packet: {all:#?}");
    assert!(all.partial_compared > 0, "no partial rule marked a packet: {all:#?}");
}

/// Programs that read `standard_metadata.ingress_port` (9 bits) give megaflows whose
/// key-space port field (16 bits) is masked `0x01ff`: the rule goes on the one port
/// whose number matches, so onos_basic and Sluice's default program are offloaded
/// too (simple_router does not read the port).
#[test]
fn megaflows_reading_the_9_bit_ingress_port_are_offloaded() {
    let mut programs: Vec<(&str, Ir)> = vec![("sluice_default", sluice_default())];
    if let Some(ir) = corpus_program("onos_basic/basic.json") {
        programs.push(("onos_basic", ir));
    }
    for (name, ir) in &programs {
        let t = run(name, ir);
        assert!(t.full_forwarded + t.full_dropped > 0 && t.partial_compared > 0, "{name}: {t:#?}");
    }
}

/// Sluice's default program bridging VLAN 10: access ports 1 and 2, trunk port 4, and
/// hosts behind a remote VTEP reached over port 3 (VXLAN tunnel 7), as the built-in
/// app programs them. Sources are learned (no digest: the flows are cached).
fn vxlan_state(ir: &Ir) -> Runtime {
    let mut rt = Runtime::new(ir);
    let mut add = |table: &str, key: &[Value], action: &str, args: &[Value]| {
        let t = ir.table(table).unwrap();
        let slot = ir.tables[t as usize].actions.iter().position(|a| ir.actions[*a as usize].name == action).unwrap();
        let key = key.iter().map(|v| KeyValue::Exact(*v)).collect();
        let action = EntryAction::Call(ActionCall { slot: slot as u32, args: args.into() });
        rt.insert(ir, t, Entry { key, priority: 0, action, meta: None }).unwrap();
    };
    for port in [1, 2] {
        add("ingress.port_vlan", &[port], "ingress.access_port", &[10]);
        add("egress.egress_vlan", &[port, 10], "egress.untagged", &[]);
    }
    add("ingress.trunk_vlan", &[4, 10], "ingress.trunk_port", &[]);
    add("egress.egress_vlan", &[4, 10], "egress.push_vlan", &[]);
    add("ingress.dmac", &[10, REMOTE_HOST], "ingress.l2_tunnel", &[3, 7]);
    let (local, remote) = (0x0a00_0001, 0x0a00_0002);
    add("egress.tunnel_encap", &[7, 10], "egress.vxlan_encap", &[5010, local, remote, 0x5e00_0201, 0x5e00_02fe]);
    for (host, port) in [(1, 1), (2, 2), (4, 4)] {
        add("ingress.mac_learning", &[10, host, port], "NoAction", &[]);
    }
    rt
}

const REMOTE_HOST: Value = 0x0a09;

/// A frame from host `src` to the remote host, `n` bytes of payload.
fn to_remote_host(src: u8, n: usize, tag: bool) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 0, 0x0a, 0x09, 0, 0, 0, 0, 0, src];
    if tag {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 10]);
    }
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..n).map(|i| i as u8));
    f
}

/// Tunnel pushes (VXLAN encapsulation, from access ports and from the trunk with its
/// tag popped) are offloaded in full as `RAW_ENCAP`, and the model's NIC, filling in
/// the outer lengths and checksum per packet, sends what software sends, for frames
/// of every length (the replay's mutations lengthen and truncate them too).
#[test]
fn tunnel_pushes_are_offloaded_and_encapsulate_as_software_does() {
    let ir = sluice_default();
    let mut pool = vec![];
    for n in [46, 0, 1, 100, 1000, 1486] {
        pool.push((1, to_remote_host(1, n, false)));
        pool.push((2, to_remote_host(2, n + 3, false)));
        pool.push((4, to_remote_host(4, n, true)));
    }
    let mut c = Case::with("sluice_default vxlan", &ir, vxlan_state(&ir), pool, Rng::new(9), 9);
    assert_eq!(c.flows.len(), 3, "one megaflow per ingress port, for every length");
    let (model, rules) = c.install(Mode::FullFirst);
    let encaps = rules.iter().filter(|r| r.rule.actions.iter().any(|a| matches!(a, Action::RawEncap(_)))).count();
    assert_eq!(encaps, 3, "{:#?}", c.tally);
    c.replay(model, rules);
    let t = &c.tally;
    eprintln!("{t:#?}");
    assert!(t.full_forwarded >= 18 && t.mutated_compared > 0, "{t:#?}");
}

/// Metered megaflows (every meter cell configured, rates low enough that a few
/// packets see all three colors) are offloaded in full as `METER(object)` with each
/// color's outcome in the object's policy, and the model's NIC, coloring with its own
/// trTCM, sends or drops each packet as the megaflow's outcome for that color does.
#[test]
fn metered_megaflows_are_offloaded_and_each_color_forwards_as_software_does() {
    let mut programs: Vec<(&str, Ir)> = vec![("sluice_default", sluice_default())];
    for (name, rel) in [("onos_basic", "onos_basic/basic.json"), ("onos_fabric", "onos_fabric/fabric.json")] {
        if let Some(ir) = corpus_program(rel) {
            programs.push((name, ir));
        }
    }
    let mut all = Tally::default();
    for (name, ir) in &programs {
        let mut t = Tally::default();
        for seed in 0..SEEDS {
            let mut c = Case::new_metered(name, ir, seed);
            let (model, rules) = c.install(Mode::FullFirst);
            c.replay(model, rules);
            t.add(&c.tally);
        }
        eprintln!("{name} metered: {t:#?}");
        all.add(&t);
    }
    assert!(all.rules_metered > 0, "no metered full rule: {all:#?}");
    assert!(all.metered_colors.iter().all(|n| *n > 0), "not every color seen: {all:#?}");
    assert!(all.metered_same_color > 0, "{all:#?}");
}

//! The offload manager: which megaflows go to the NIC, and keeping the NIC's rules
//! exactly as live as their megaflows. It runs on the control side (never in a
//! worker), one [`Manager::round`] at a time, over any [`FlowDevice`].
//!
//! Per round:
//! 1. **Retire**: every rule whose megaflow is gone (idle, evicted, invalidated,
//!    replaced) is destroyed and its mark unbound in the workers.
//! 2. **Count**: full-offload rules are queried (COUNT; a metered rule's meter
//!    object's per-color statistics); the hits since the last round are credited to
//!    their megaflow in its worker ([`Command::Credit`], per color for a metered
//!    one), so megaflow statistics, P4 counters, meter color counts and drop counters
//!    include what the NIC did.
//! 3. **Offload**: live megaflows whose rate since the last round is at least
//!    [`OffloadConfig::min_pps`], hottest first, at most
//!    [`OffloadConfig::max_inserts_per_round`] of them, are translated
//!    ([`crate::translate`]) and installed on each ingress port within its budget
//!    ([`OffloadConfig::max_rules_per_port`]): full offload first (when enabled and
//!    the actions have a form), `rte_flow_validate` then `rte_flow_create`; on any
//!    failure partial offload (MARK + RSS, the mark bound to the megaflow in every
//!    worker that has it); on failure of that, software. Every refusal and failure
//!    is counted by reason, and a megaflow that failed is not tried again.
//!
//! # Meters
//! A megaflow that branches on a P4 meter cell's color is fully offloaded as
//! `METER(object)`: a meter object (rte_mtr) made per rule from the cell's
//! configuration (the full rates: the NIC sees all of the rule's traffic) and a
//! policy holding each color's actions ([`crate::translate::MeterPlan`]). A cell's
//! token buckets must live in one place, so this happens only while the megaflow is
//! the only live one executing that cell, on one ingress port (per-flow policers; a
//! cell shared by several megaflows, such as a per-port meter, or a megaflow whose
//! rules go on several ports, stays with the workers, partial offload, counted as
//! `full_meter_shared`). A full rule whose cell gains another megaflow is
//! demoted (destroyed, offloaded again partially): from then on the workers' cell
//! meters all of it, starting with full buckets. Objects are destroyed after their
//! rule. A meter reconfiguration invalidates the megaflows that executed the cell, so
//! their rules and objects go before it returns, like any write.
//!
//! A port whose device has no rte_flow at all (`ENOSYS`) is marked not capable: it
//! is reported once and never tried again (`ENOTSUP` only refuses that rule: a NIC
//! without full offload may still take partial rules).
//!
//! # A write is visible when it returns
//! Full-offload rules execute actions in the NIC: a stale one would forward with old
//! state. The write path calls [`Manager::invalidate`] with the change's dependency
//! bits *before* the workers apply it, which destroys every rule whose megaflow read
//! what changes. Partial rules cannot be stale (the worker checks the megaflow's
//! version on every marked packet) but go the same way.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use dpdk_sys::flow::{Action, FlowCount, FlowError, Item, Rule};
use dpdk_sys::mtr::{MeterSpec, MeterStats, Profile};
use dpdk_sys::port::Port;
use serde::Serialize;
use sluice_fastpath::cache::key::Mask;
use sluice_fastpath::p4::meters::MeterConfig;

use crate::device::FlowDevice;
use crate::translate::{translate, MegaflowRef, PortInfo, Refusal, Translation};

/// Settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OffloadConfig {
    /// Offload at all.
    pub enabled: bool,
    /// Try full offload (the NIC executes the actions) before partial.
    pub full: bool,
    /// A megaflow is offloaded when it matched at least this many packets per second
    /// since the last round.
    pub min_pps: u64,
    /// Rules per port at most.
    pub max_rules_per_port: usize,
    /// Megaflows offloaded per round at most (rate limit on insertions).
    pub max_inserts_per_round: usize,
}

impl Default for OffloadConfig {
    fn default() -> Self {
        OffloadConfig { enabled: true, full: true, min_pps: 1000, max_rules_per_port: 8192, max_inserts_per_round: 256 }
    }
}

pub use sluice_fastpath::cache::events::MegaflowDesc;

/// A live megaflow, as the manager sees it each round.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The worker whose cache holds it.
    pub worker: u32,
    /// Its id there.
    pub flow: u32,
    /// Its slot version.
    pub version: u32,
    /// Packets it matched so far (in software).
    pub packets: u64,
    /// What it is.
    pub desc: Arc<MegaflowDesc>,
    /// For a megaflow that branches on a meter cell's color: the cell's configuration
    /// now (`None` for others).
    pub meter: Option<MeterConfig>,
}

/// A megaflow's identity: worker, id, version.
pub type FlowId = (u32, u32, u32);

/// What the workers must do after a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Bind `mark` to the megaflow with this mask, key and minimum length, in every
    /// worker that has it.
    Bind {
        /// The mark.
        mark: u32,
        /// Mask.
        mask: Mask,
        /// Key.
        key: Box<[u64]>,
        /// Minimum length.
        min_len: u32,
    },
    /// Unbind `mark` in every worker.
    Unbind(u32),
    /// Credit hardware hits to a megaflow of one worker.
    Credit {
        /// The megaflow.
        flow: FlowId,
        /// Packets.
        packets: u64,
        /// Bytes.
        bytes: u64,
        /// For a metered megaflow, the color the NIC's meter gave them (0 GREEN, 1
        /// YELLOW, 2 RED): the outcome they took.
        color: Option<u8>,
    },
}

/// Full or partial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The NIC executes the actions.
    Full,
    /// The NIC marks; the worker executes.
    Partial,
}

struct Installed<H> {
    port: PortInfo,
    handle: H,
    mode: Mode,
    mark: Option<u32>,
    /// Full offload: the DPDK ports it forwards to.
    to: Vec<u16>,
    rule: Rule,
    /// Hardware totals (a metered rule's: its meter object's, all colors).
    count: FlowCount,
    /// A metered rule's meter object.
    meter: Option<MeterUse>,
}

/// A meter object of a rule.
struct MeterUse {
    id: u32,
    spec: MeterSpec,
    /// Its statistics at the last round.
    seen: MeterStats,
}

/// A megaflow's match on a port (identical megaflows of several workers share one
/// rule per port).
type MatchKey = (u16, Mask, Box<[u64]>, u32);

/// A megaflow's match (mask, key, minimum length), borrowed.
type MatchRef<'a> = (&'a Mask, &'a [u64], u32);

struct Offloaded<H> {
    deps: u64,
    /// The meter cell its full rules meter.
    cell: Option<(u32, u32)>,
    rules: Vec<Installed<H>>,
    matches: Vec<MatchKey>,
}

/// An offloaded rule, for operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    /// Worker of the megaflow.
    pub worker: u32,
    /// Megaflow id.
    pub flow: u32,
    /// DPDK port id.
    pub port: u16,
    /// P4 port number.
    pub p4_port: u32,
    /// Full or partial.
    pub mode: Mode,
    /// The mark (partial).
    pub mark: Option<u32>,
    /// The rule, readable.
    pub rule: String,
    /// Hardware hits (full; partial hits are counted by the worker).
    pub hw_packets: u64,
    /// Hardware bytes.
    pub hw_bytes: u64,
}

/// Counters (monotonic unless said otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OffloadStats {
    /// Rounds run.
    pub rounds: u64,
    /// Rules created, full offload.
    pub created_full: u64,
    /// Rules created, partial offload.
    pub created_partial: u64,
    /// Rules destroyed.
    pub destroyed: u64,
    /// Rules destroyed by a state change before it was applied.
    pub destroyed_by_writes: u64,
    /// Rule destroys that failed (the rule is forgotten anyway).
    pub destroy_failures: u64,
    /// Megaflows offloaded now (a gauge).
    pub offloaded_flows: u64,
    /// Rules now, full (a gauge).
    pub rules_full: u64,
    /// Rules now, partial (a gauge).
    pub rules_partial: u64,
    /// Packets the NIC handled for full-offload rules.
    pub hw_packets: u64,
    /// Their bytes.
    pub hw_bytes: u64,
    /// Megaflows (or their full offload) left in software by translation, by reason.
    pub refused: BTreeMap<String, u64>,
    /// Device failures by call and errno (`create_full:ENOTSUP`, ...), and
    /// `port_budget` for rules not created because a port was full.
    pub failures: BTreeMap<String, u64>,
    /// Rules per DPDK port now (a gauge).
    pub rules_per_port: BTreeMap<u16, u64>,
    /// Ports found not capable, with the device's reason.
    pub not_capable: BTreeMap<u16, String>,
    /// Meter objects now (a gauge).
    pub meters: u64,
    /// Metered full rules destroyed because another megaflow came to execute their
    /// cell (offloaded again partially).
    pub meter_demotions: u64,
}

/// The manager.
pub struct Manager<D: FlowDevice> {
    dev: D,
    cfg: OffloadConfig,
    ports: Vec<PortInfo>,
    offloaded: HashMap<FlowId, Offloaded<D::Handle>>,
    /// Megaflows not to try again (refused or failed).
    tried: HashSet<FlowId>,
    /// Packet totals at the last round.
    last: HashMap<FlowId, u64>,
    /// Matches already offloaded on a port (another worker's identical megaflow).
    matches: HashSet<MatchKey>,
    free_marks: Vec<u32>,
    next_mark: u32,
    free_meters: Vec<u32>,
    next_meter: u32,
    /// Meter cells more than one live megaflow (distinct matches) executes.
    shared_cells: HashSet<(u32, u32)>,
    stats: OffloadStats,
}

impl<D: FlowDevice> std::fmt::Debug for Manager<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").field("cfg", &self.cfg).field("stats", &self.stats).finish()
    }
}

/// Is this failure the device saying "no rte_flow here"?
fn incapable(e: &FlowError) -> bool {
    const ENOSYS: i32 = 38;
    e.errno == ENOSYS
}

fn errno_label(e: &FlowError) -> String {
    dpdk_sys::errno_name(e.errno).to_string()
}

/// A rule, readable: `ETH(mask ..) / IPV4 ... -> MARK(5) / QUEUE(0)`.
pub fn describe(rule: &Rule) -> String {
    let item = |i: &Item| {
        let bytes: Vec<String> = i
            .spec
            .iter()
            .zip(&i.mask)
            .enumerate()
            .filter(|(_, (_, m))| **m != 0)
            .map(|(at, (s, m))| if *m == 0xff { format!("{at}={s:02x}") } else { format!("{at}={s:02x}/{m:02x}") })
            .collect();
        let flag = i.flag.map(|f| format!(" flag={}", f as u8)).unwrap_or_default();
        if bytes.is_empty() {
            format!("{:?}{flag}", i.kind).to_uppercase()
        } else {
            format!("{}[{}]{flag}", format!("{:?}", i.kind).to_uppercase(), bytes.join(" "))
        }
    };
    let attr = if rule.attr.transfer { "transfer " } else { "ingress " };
    format!(
        "{attr}{} -> {}",
        rule.pattern.iter().map(item).collect::<Vec<_>>().join(" / "),
        describe_actions(&rule.actions)
    )
}

/// Actions, readable: `SetMacDst(..) / RawEncap(50 bytes) / RepresentedPort(11)`.
fn describe_actions(actions: &[Action]) -> String {
    let action = |a: &Action| match a {
        Action::RawEncap(b) => format!("RawEncap({} bytes)", b.len()),
        Action::RawDecap(b) => format!("RawDecap({} bytes)", b.len()),
        other => format!("{other:?}"),
    };
    actions.iter().map(action).collect::<Vec<_>>().join(" / ")
}

impl<D: FlowDevice> Manager<D> {
    /// A manager installing into `dev`.
    pub fn new(dev: D, cfg: OffloadConfig) -> Self {
        Manager {
            dev,
            cfg,
            ports: Vec::new(),
            offloaded: HashMap::new(),
            tried: HashSet::new(),
            last: HashMap::new(),
            matches: HashSet::new(),
            free_marks: Vec::new(),
            next_mark: 1,
            free_meters: Vec::new(),
            next_meter: 1,
            shared_cells: HashSet::new(),
            stats: OffloadStats::default(),
        }
    }

    /// Its settings.
    pub fn config(&self) -> OffloadConfig {
        self.cfg
    }

    /// Change the settings (disabling keeps existing rules until their megaflows go;
    /// call [`Manager::clear`] to remove them now).
    pub fn set_config(&mut self, cfg: OffloadConfig) {
        self.cfg = cfg;
    }

    /// Counters now.
    pub fn stats(&self) -> &OffloadStats {
        &self.stats
    }

    /// Port `info` joins (`Some`: its DPDK port, for devices that need it) or
    /// leaves (`None`: its rules, and full-offload rules forwarding to it, are
    /// destroyed first, then the device forgets it).
    pub fn set_port(&mut self, info: PortInfo, port: Option<Arc<Port>>) -> Vec<Command> {
        let mut cmds = vec![];
        if port.is_none() {
            let ids: Vec<FlowId> = self
                .offloaded
                .iter()
                .filter(|(_, o)| o.rules.iter().any(|r| r.port.dpdk == info.dpdk || r.to.contains(&info.dpdk)))
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                self.retire(id, &mut cmds, false);
                self.tried.remove(&id);
            }
            self.stats.not_capable.remove(&info.dpdk);
        }
        self.ports.retain(|p| p.dpdk != info.dpdk);
        if port.is_some() {
            self.ports.push(info);
            self.ports.sort_by_key(|p| p.p4);
        }
        self.dev.set_port(info.dpdk, port);
        self.gauges();
        cmds
    }

    /// Every offloaded rule, for operators.
    pub fn rules(&self) -> Vec<RuleInfo> {
        let mut v: Vec<RuleInfo> = self
            .offloaded
            .iter()
            .flat_map(|(id, o)| {
                o.rules.iter().map(move |r| RuleInfo {
                    worker: id.0,
                    flow: id.1,
                    port: r.port.dpdk,
                    p4_port: r.port.p4,
                    mode: r.mode,
                    mark: r.mark,
                    rule: match &r.meter {
                        Some(m) => format!("{} {}", describe(&r.rule), describe_meter(&m.spec)),
                        None => describe(&r.rule),
                    },
                    hw_packets: r.count.hits,
                    hw_bytes: r.count.bytes,
                })
            })
            .collect();
        v.sort_by_key(|r| (r.worker, r.flow, r.port));
        v
    }

    /// Whether megaflow `id` has rules, and in which mode (full if any is full).
    pub fn mode_of(&self, id: FlowId) -> Option<Mode> {
        let o = self.offloaded.get(&id)?;
        Some(if o.rules.iter().any(|r| r.mode == Mode::Full) { Mode::Full } else { Mode::Partial })
    }

    fn alloc_meter(&mut self) -> u32 {
        self.free_meters.pop().unwrap_or_else(|| {
            self.next_meter += 1;
            self.next_meter - 1
        })
    }

    fn alloc_mark(&mut self) -> u32 {
        self.free_marks.pop().unwrap_or_else(|| {
            self.next_mark += 1;
            self.next_mark - 1
        })
    }

    fn gauges(&mut self) {
        let mut per_port: BTreeMap<u16, u64> = BTreeMap::new();
        let (mut full, mut partial) = (0, 0);
        for o in self.offloaded.values() {
            for r in &o.rules {
                *per_port.entry(r.port.dpdk).or_default() += 1;
                match r.mode {
                    Mode::Full => full += 1,
                    Mode::Partial => partial += 1,
                }
            }
        }
        self.stats.rules_per_port = per_port;
        self.stats.rules_full = full;
        self.stats.rules_partial = partial;
        self.stats.offloaded_flows = self.offloaded.len() as u64;
        self.stats.meters = self.offloaded.values().flat_map(|o| &o.rules).filter(|r| r.meter.is_some()).count() as u64;
    }

    /// A full rule's hardware hits since the last look, credited to megaflow `id`
    /// (per color for a metered rule).
    fn harvest(
        dev: &mut D,
        stats: &mut OffloadStats,
        id: FlowId,
        r: &mut Installed<D::Handle>,
        cmds: &mut Vec<Command>,
    ) {
        let mut credit = |packets: u64, bytes: u64, color: Option<u8>| {
            if packets > 0 {
                stats.hw_packets += packets;
                stats.hw_bytes += bytes;
                cmds.push(Command::Credit { flow: id, packets, bytes, color });
            }
        };
        match &mut r.meter {
            Some(m) => {
                if let Ok(now) = dev.meter_stats(r.port.dpdk, m.id) {
                    for c in 0..3 {
                        let p = now.packets[c].saturating_sub(m.seen.packets[c]);
                        credit(p, now.bytes[c].saturating_sub(m.seen.bytes[c]), Some(c as u8));
                    }
                    m.seen = now;
                    r.count = FlowCount { hits: now.packets.iter().sum(), bytes: now.bytes.iter().sum() };
                }
            }
            None => {
                if let Ok(c) = dev.query(&r.handle) {
                    credit(c.hits.saturating_sub(r.count.hits), c.bytes.saturating_sub(r.count.bytes), None);
                    r.count = c;
                }
            }
        }
    }

    /// Destroy megaflow `id`'s rules; unbind its marks.
    fn retire(&mut self, id: FlowId, cmds: &mut Vec<Command>, by_write: bool) {
        let Some(o) = self.offloaded.remove(&id) else { return };
        for k in &o.matches {
            self.matches.remove(k);
        }
        for mut r in o.rules {
            if let Some(m) = r.mark {
                cmds.push(Command::Unbind(m));
                self.free_marks.push(m);
            }
            if r.mode == Mode::Full {
                // The hits since the last round, before the counters go with the rule.
                Self::harvest(&mut self.dev, &mut self.stats, id, &mut r, cmds);
            }
            match self.dev.destroy(r.handle) {
                Ok(()) => {}
                Err(_) => self.stats.destroy_failures += 1,
            }
            if let Some(m) = r.meter {
                // After its rule: an object in use cannot go.
                if self.dev.meter_destroy(r.port.dpdk, m.id).is_err() {
                    self.stats.destroy_failures += 1;
                }
                self.free_meters.push(m.id);
            }
            self.stats.destroyed += 1;
            if by_write {
                self.stats.destroyed_by_writes += 1;
            }
        }
    }

    /// A state change with dependency bits `deps` is about to be applied: destroy
    /// every rule whose megaflow depends on it. Returns the workers' commands
    /// (unbinds), which the caller runs before the change.
    pub fn invalidate(&mut self, deps: u64) -> Vec<Command> {
        let ids: Vec<FlowId> = self.offloaded.iter().filter(|(_, o)| o.deps & deps != 0).map(|(id, _)| *id).collect();
        let mut cmds = vec![];
        for id in ids {
            self.retire(id, &mut cmds, true);
        }
        self.gauges();
        cmds
    }

    /// Destroy every rule.
    pub fn clear(&mut self) -> Vec<Command> {
        let ids: Vec<FlowId> = self.offloaded.keys().copied().collect();
        let mut cmds = vec![];
        for id in ids {
            self.retire(id, &mut cmds, false);
        }
        self.tried.clear();
        self.gauges();
        cmds
    }

    /// One round over the live megaflows `live`, `elapsed` after the previous one.
    /// `run` executes commands on the workers and returns when they have: a mark is
    /// bound before its rule exists (so no marked packet finds it unbound to the
    /// wrong megaflow) and reused only after it was unbound.
    pub fn round(&mut self, live: &[Candidate], elapsed: Duration, run: &mut dyn FnMut(Vec<Command>)) {
        self.stats.rounds += 1;
        let mut cmds = vec![];
        let alive: HashSet<FlowId> = live.iter().map(|c| (c.worker, c.flow, c.version)).collect();
        // 1. Retire.
        let gone: Vec<FlowId> = self.offloaded.keys().filter(|id| !alive.contains(id)).copied().collect();
        for id in gone {
            self.retire(id, &mut cmds, false);
        }
        self.tried.retain(|id| alive.contains(id));
        // Meter cells now executed by more than one megaflow: their full rules go
        // (the workers meter the cell from now on) and are offloaded again partially.
        let mut cells: HashMap<(u32, u32), HashSet<MatchRef>> = HashMap::new();
        for c in live {
            if let Some(b) = &c.desc.actions.metered {
                cells.entry((b.meter, b.cell)).or_default().insert((&c.desc.mask, &c.desc.key[..], c.desc.min_len));
            }
        }
        self.shared_cells = cells.into_iter().filter(|(_, m)| m.len() > 1).map(|(cell, _)| cell).collect();
        let demoted: Vec<FlowId> = self
            .offloaded
            .iter()
            .filter(|(_, o)| o.cell.is_some_and(|c| self.shared_cells.contains(&c)))
            .map(|(id, _)| *id)
            .collect();
        for id in demoted {
            self.retire(id, &mut cmds, false);
            self.tried.remove(&id);
            self.stats.meter_demotions += 1;
        }
        // 2. Count.
        for (id, o) in self.offloaded.iter_mut() {
            for r in o.rules.iter_mut().filter(|r| r.mode == Mode::Full) {
                Self::harvest(&mut self.dev, &mut self.stats, *id, r, &mut cmds);
            }
        }
        // 3. Offload the hottest.
        let secs = elapsed.as_secs_f64().max(1e-3);
        let mut hot: Vec<(u64, &Candidate)> = vec![];
        for c in live {
            let id = (c.worker, c.flow, c.version);
            let before = self.last.insert(id, c.packets).unwrap_or(0);
            let rate = (c.packets.saturating_sub(before) as f64 / secs) as u64;
            if self.cfg.enabled
                && rate >= self.cfg.min_pps
                && !self.offloaded.contains_key(&id)
                && !self.tried.contains(&id)
            {
                hot.push((rate, c));
            }
        }
        self.last.retain(|id, _| alive.contains(id));
        hot.sort_by_key(|(r, _)| std::cmp::Reverse(*r));
        run(std::mem::take(&mut cmds));
        // Budgets as they are after this round's retirements.
        self.gauges();
        for (_, c) in hot.into_iter().take(self.cfg.max_inserts_per_round) {
            self.offload(c, run);
        }
        self.gauges();
    }

    fn count(map: &mut BTreeMap<String, u64>, key: String) {
        *map.entry(key).or_default() += 1;
    }

    fn offload(&mut self, c: &Candidate, run: &mut dyn FnMut(Vec<Command>)) {
        let id = (c.worker, c.flow, c.version);
        self.tried.insert(id);
        let m = MegaflowRef { mask: &c.desc.mask, key: &c.desc.key, min_len: c.desc.min_len, actions: &c.desc.actions };
        let t = match translate(&m, &self.ports) {
            Ok(t) => t,
            Err(r) => return Self::count(&mut self.stats.refused, r.reason().into()),
        };
        let refusal = match (&t.full, &t.meter) {
            (Err(r), _) => Some(r.clone()),
            // Another megaflow, or this one's rule on another port, would meter the
            // cell with buckets of its own.
            (Ok(_), Some(p)) if self.shared_cells.contains(&(p.meter, p.cell)) || t.in_ports.len() > 1 => {
                Some(Refusal::MeterShared)
            }
            (Ok(_), Some(_)) if c.meter.is_none() => Some(Refusal::Metered),
            (Ok(_), _) => None,
        };
        if let Some(r) = &refusal {
            if self.cfg.full {
                Self::count(&mut self.stats.refused, format!("full_{}", r.reason()));
            }
        }
        let mut rules = vec![];
        let mut matches = vec![];
        for port in &t.in_ports {
            if self.stats.not_capable.contains_key(&port.dpdk) {
                continue;
            }
            let key = (port.dpdk, c.desc.mask.clone(), c.desc.key.clone(), c.desc.min_len);
            if self.matches.contains(&key) {
                // Another worker's identical megaflow is offloaded on this port.
                continue;
            }
            let used = self.stats.rules_per_port.get(&port.dpdk).copied().unwrap_or(0) as usize
                + rules.iter().filter(|r: &&Installed<D::Handle>| r.port.dpdk == port.dpdk).count();
            if used >= self.cfg.max_rules_per_port {
                Self::count(&mut self.stats.failures, "port_budget".into());
                continue;
            }
            if let Some(r) = self.install(c, &t, refusal.is_none(), port, run) {
                self.matches.insert(key.clone());
                matches.push(key);
                rules.push(r);
            }
        }
        if rules.is_empty() {
            return;
        }
        for r in &rules {
            match r.mode {
                Mode::Full => self.stats.created_full += 1,
                Mode::Partial => self.stats.created_partial += 1,
            }
            *self.stats.rules_per_port.entry(r.port.dpdk).or_default() += 1;
        }
        let cell = t.meter.as_ref().filter(|_| rules.iter().any(|r| r.meter.is_some())).map(|p| (p.meter, p.cell));
        self.offloaded.insert(id, Offloaded { deps: c.desc.deps, cell, rules, matches });
    }

    /// Full (when `full` may be tried), then partial, on one port.
    fn install(
        &mut self,
        c: &Candidate,
        t: &Translation,
        full: bool,
        port: &PortInfo,
        run: &mut dyn FnMut(Vec<Command>),
    ) -> Option<Installed<D::Handle>> {
        if self.cfg.full && full {
            match self.install_full(c, t, port) {
                Ok(r) => return Some(r),
                Err(true) => return None,
                Err(false) => {}
            }
        }
        let mark = self.alloc_mark();
        let rule = t.partial_rule(port, mark);
        if self.dev.validate(port.dpdk, &rule).is_ok() {
            // Bound before the rule exists: no packet carries the mark before.
            run(vec![Command::Bind {
                mark,
                mask: c.desc.mask.clone(),
                key: c.desc.key.clone(),
                min_len: c.desc.min_len,
            }]);
        }
        match self.try_create(port, &rule, "partial") {
            Ok(handle) => Some(Installed {
                port: *port,
                handle,
                mode: Mode::Partial,
                mark: Some(mark),
                to: vec![],
                rule,
                count: FlowCount::default(),
                meter: None,
            }),
            Err(_) => {
                run(vec![Command::Unbind(mark)]);
                self.free_marks.push(mark);
                None
            }
        }
    }

    /// The full rule on one port, with its meter object first if it needs one;
    /// `Err(true)` when the port turned out not capable. On failure nothing is left.
    fn install_full(&mut self, c: &Candidate, t: &Translation, port: &PortInfo) -> Result<Installed<D::Handle>, bool> {
        let meter = match (&t.meter, c.meter) {
            (None, _) => None,
            (Some(plan), Some(cfg)) => {
                let id = self.alloc_meter();
                let profile =
                    Profile { cir: cfg.cir, pir: cfg.pir, cbs: cfg.cburst, pbs: cfg.pburst, packets: !plan.bytes };
                let spec = MeterSpec { profile, colors: plan.colors.clone() };
                if let Err(e) = self.dev.meter_create(port.dpdk, id, &spec) {
                    Self::count(&mut self.stats.failures, format!("meter_create:{}", errno_label(&e)));
                    self.free_meters.push(id);
                    return Err(false);
                }
                Some(MeterUse { id, spec, seen: MeterStats::default() })
            }
            (Some(_), None) => return Err(false),
        };
        let created = match t.full_rule(port, meter.as_ref().map(|m| m.id)) {
            Ok(rule) => self.try_create(port, &rule, "full").map(|h| (h, rule)),
            Err(_) => Err(false),
        };
        match created {
            Ok((handle, rule)) => {
                let to = match (&t.meter, &t.full) {
                    (Some(plan), _) => plan.outs.iter().map(|o| o.dpdk).collect(),
                    (None, Ok((_, out))) => out.iter().map(|o| o.dpdk).collect(),
                    (None, Err(_)) => vec![],
                };
                let (mode, mark, count) = (Mode::Full, None, FlowCount::default());
                Ok(Installed { port: *port, handle, mode, mark, to, rule, count, meter })
            }
            Err(e) => {
                if let Some(m) = meter {
                    if self.dev.meter_destroy(port.dpdk, m.id).is_err() {
                        self.stats.destroy_failures += 1;
                    }
                    self.free_meters.push(m.id);
                }
                Err(e)
            }
        }
    }

    /// Validate and create; `Err(true)` when the port turned out not capable.
    fn try_create(&mut self, port: &PortInfo, rule: &Rule, mode: &str) -> Result<D::Handle, bool> {
        let r = self
            .dev
            .validate(port.dpdk, rule)
            .map_err(|e| ("validate", e))
            .and_then(|()| self.dev.create(port.dpdk, rule).map_err(|e| ("create", e)));
        match r {
            Ok(h) => Ok(h),
            Err((call, e)) => {
                Self::count(&mut self.stats.failures, format!("{call}_{mode}:{}", errno_label(&e)));
                if incapable(&e) {
                    self.stats.not_capable.insert(port.dpdk, e.to_string());
                    return Err(true);
                }
                Err(false)
            }
        }
    }
}

/// A meter object, readable: `[meter 3: trTCM cir 100 pir 200 cbs 1500 pbs 3000 bytes;
/// GREEN SetMacDst(..) / RepresentedPort(11); YELLOW ..; RED Drop]`.
pub fn describe_meter(spec: &MeterSpec) -> String {
    let p = spec.profile;
    let unit = if p.packets { "packets" } else { "bytes" };
    let colors: Vec<String> = ["GREEN", "YELLOW", "RED"]
        .iter()
        .zip(&spec.colors)
        .map(|(name, list)| format!("{name} {}", describe_actions(list)))
        .collect();
    format!("[trTCM cir {} pir {} cbs {} pbs {} {unit}; {}]", p.cir, p.pir, p.cbs, p.pbs, colors.join("; "))
}

/// Refusal reasons for zero-initialised metrics.
pub fn refusal_reasons() -> impl Iterator<Item = &'static str> {
    Refusal::REASONS.iter().copied()
}

/// The manager as the control side holds it, whatever its device.
pub trait Offloader: Send {
    /// See [`Manager::round`].
    fn round(&mut self, live: &[Candidate], elapsed: Duration, run: &mut dyn FnMut(Vec<Command>));
    /// See [`Manager::invalidate`].
    fn invalidate(&mut self, deps: u64) -> Vec<Command>;
    /// See [`Manager::clear`].
    fn clear(&mut self) -> Vec<Command>;
    /// See [`Manager::set_port`].
    fn set_port(&mut self, info: PortInfo, port: Option<Arc<Port>>) -> Vec<Command>;
    /// See [`Manager::rules`].
    fn rules(&self) -> Vec<RuleInfo>;
    /// See [`Manager::stats`].
    fn stats(&self) -> OffloadStats;
    /// See [`Manager::config`].
    fn config(&self) -> OffloadConfig;
    /// See [`Manager::set_config`].
    fn set_config(&mut self, cfg: OffloadConfig);
    /// See [`Manager::mode_of`].
    fn mode_of(&self, id: FlowId) -> Option<Mode>;
}

impl<D: FlowDevice> Offloader for Manager<D> {
    fn round(&mut self, live: &[Candidate], elapsed: Duration, run: &mut dyn FnMut(Vec<Command>)) {
        Manager::round(self, live, elapsed, run)
    }
    fn invalidate(&mut self, deps: u64) -> Vec<Command> {
        Manager::invalidate(self, deps)
    }
    fn clear(&mut self) -> Vec<Command> {
        Manager::clear(self)
    }
    fn set_port(&mut self, info: PortInfo, port: Option<Arc<Port>>) -> Vec<Command> {
        Manager::set_port(self, info, port)
    }
    fn rules(&self) -> Vec<RuleInfo> {
        Manager::rules(self)
    }
    fn stats(&self) -> OffloadStats {
        self.stats.clone()
    }
    fn config(&self) -> OffloadConfig {
        self.cfg
    }
    fn set_config(&mut self, cfg: OffloadConfig) {
        self.cfg = cfg;
    }
    fn mode_of(&self, id: FlowId) -> Option<Mode> {
        Manager::mode_of(self, id)
    }
}

#[cfg(test)]
#[path = "manager_tests.rs"]
mod tests;

//! The offload manager: which megaflows go to the NIC, and keeping the NIC's rules
//! exactly as live as their megaflows. It runs on the control side (never in a
//! worker), one [`Manager::round`] at a time, over any [`FlowDevice`].
//!
//! Per round:
//! 1. **Retire**: every rule whose megaflow is gone (idle, evicted, invalidated,
//!    replaced) is destroyed and its mark unbound in the workers.
//! 2. **Count**: full-offload rules are queried (COUNT); the hits since the last
//!    round are credited to their megaflow in its worker ([`Command::Credit`]), so
//!    megaflow statistics, P4 counters and drop counters include what the NIC did.
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
use dpdk_sys::port::Port;
use serde::Serialize;
use sluice_fastpath::cache::key::Mask;

use crate::device::FlowDevice;
use crate::translate::{translate, MegaflowRef, PortInfo, Refusal};

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
    /// Full offload: the DPDK port it forwards to.
    to: Option<u16>,
    rule: Rule,
    count: FlowCount,
}

/// A megaflow's match on a port (identical megaflows of several workers share one
/// rule per port).
type MatchKey = (u16, Mask, Box<[u64]>, u32);

struct Offloaded<H> {
    deps: u64,
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
    let action = |a: &Action| match a {
        Action::RawEncap(b) => format!("RawEncap({} bytes)", b.len()),
        Action::RawDecap(b) => format!("RawDecap({} bytes)", b.len()),
        other => format!("{other:?}"),
    };
    let attr = if rule.attr.transfer { "transfer " } else { "ingress " };
    format!(
        "{attr}{} -> {}",
        rule.pattern.iter().map(item).collect::<Vec<_>>().join(" / "),
        rule.actions.iter().map(action).collect::<Vec<_>>().join(" / ")
    )
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
                .filter(|(_, o)| o.rules.iter().any(|r| r.port.dpdk == info.dpdk || r.to == Some(info.dpdk)))
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
                    rule: describe(&r.rule),
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
    }

    /// Destroy megaflow `id`'s rules; unbind its marks.
    fn retire(&mut self, id: FlowId, cmds: &mut Vec<Command>, by_write: bool) {
        let Some(o) = self.offloaded.remove(&id) else { return };
        for k in &o.matches {
            self.matches.remove(k);
        }
        for r in o.rules {
            if let Some(m) = r.mark {
                cmds.push(Command::Unbind(m));
                self.free_marks.push(m);
            }
            if r.mode == Mode::Full {
                // The hits since the last round, before the counter goes with the rule.
                if let Ok(c) = self.dev.query(&r.handle) {
                    let (p, b) = (c.hits.saturating_sub(r.count.hits), c.bytes.saturating_sub(r.count.bytes));
                    if p > 0 {
                        self.stats.hw_packets += p;
                        self.stats.hw_bytes += b;
                        cmds.push(Command::Credit { flow: id, packets: p, bytes: b });
                    }
                }
            }
            match self.dev.destroy(r.handle) {
                Ok(()) => {}
                Err(_) => self.stats.destroy_failures += 1,
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
        // 2. Count.
        for (id, o) in self.offloaded.iter_mut() {
            for r in o.rules.iter_mut().filter(|r| r.mode == Mode::Full) {
                if let Ok(c) = self.dev.query(&r.handle) {
                    let (p, b) = (c.hits.saturating_sub(r.count.hits), c.bytes.saturating_sub(r.count.bytes));
                    r.count = c;
                    if p > 0 {
                        self.stats.hw_packets += p;
                        self.stats.hw_bytes += b;
                        cmds.push(Command::Credit { flow: *id, packets: p, bytes: b });
                    }
                }
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
        if let Err(r) = &t.full {
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
            if let Some(r) = self.install(c, &t, port, run) {
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
        self.offloaded.insert(id, Offloaded { deps: c.desc.deps, rules, matches });
    }

    /// Full, then partial, on one port.
    fn install(
        &mut self,
        c: &Candidate,
        t: &crate::translate::Translation,
        port: &PortInfo,
        run: &mut dyn FnMut(Vec<Command>),
    ) -> Option<Installed<D::Handle>> {
        if self.cfg.full {
            if let Ok(rule) = t.full_rule(port, None) {
                match self.try_create(port, &rule, "full") {
                    Ok(handle) => {
                        let to = t.full.as_ref().ok().and_then(|(_, out)| out.map(|o| o.dpdk));
                        return Some(Installed {
                            port: *port,
                            handle,
                            mode: Mode::Full,
                            mark: None,
                            to,
                            rule,
                            count: FlowCount::default(),
                        });
                    }
                    Err(true) => return None,
                    Err(false) => {}
                }
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
                to: None,
                rule,
                count: FlowCount::default(),
            }),
            Err(_) => {
                run(vec![Command::Unbind(mark)]);
                self.free_marks.push(mark);
                None
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

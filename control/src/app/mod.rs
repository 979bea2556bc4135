//! The built-in app: the control plane of Sluice's default program
//! (`pipelines/sluice_default/`), so that a `sluiced` with no controller is a working
//! switch — what OVS's `NORMAL` action is to Open vSwitch.
//!
//! * [`config`]: the switch sections of the configuration, validated into a plan.
//! * [`entries`]: the plan as P4Runtime entities of the program.
//! * [`program`]: the embedded program and entities built by name.
//! * [`change`]: live changes of the configuration, applied as a diff of entities.
//!
//! The app is an in-process P4Runtime client of the switch's own service
//! ([`crate::p4rt::P4rt`]): it writes through the same checks, and a controller reading
//! the switch sees its entries. At start it loads the configuration (flood groups per
//! VLAN, VLAN membership, router MACs, next hops and ECMP groups, routes, VTEPs, static
//! MACs, ACL rules, mirrors). Then its thread:
//!
//! * **learns MACs** from the program's `mac_learn_digest_t` digests: an unknown
//!   (VLAN, MAC, port) gets a `mac_learning` entry (with the aging time as its idle
//!   timeout) and a `dmac` entry; a MAC seen on another port moves (old learning entry
//!   deleted, `dmac` modified), a list's MACs in one write. Static MACs never move.
//!   Beyond `max_learned_macs`, nothing more is learned (counted: frames to unknown
//!   MACs are flooded);
//! * **ages** learned MACs: an idle-timeout notification of a learning entry deletes it
//!   and its `dmac` entry;
//! * counts the packet-ins (ACL `punt`) that reach it: with no controller connected
//!   nobody else takes them.
//!
//! **External controllers.** While an external P4Runtime client is the primary (of any
//! role), the app steps back: it writes nothing, and digests, idle-timeout
//! notifications and packet-ins go to that primary. The entries stay as they are,
//! and the controller owns the switch. When no external primary is left, the app takes
//! the switch back — if the running program is still the default one (its cookie):
//! it reloads the program (every entry is gone, the controller's included) and writes
//! its configuration again; MACs are learned anew. If the controller loaded another
//! program, the app stays idle. `[switch] app = false` turns the app off entirely.
//!
//! The app's writes are counted per outcome ([`AppStats`]); a refused write is logged
//! with the switch's reason and never retried in a loop.

pub mod change;
pub mod config;
pub mod entries;
pub mod program;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_proto::p4::v1 as pb;
use sluice_proto::p4::v1::stream_message_response::Update;
use sluice_proto::p4::v1::update::Type;

use self::config::{SwitchPlan, SwitchSection};
use self::program::{update, Names};
use crate::background::Background;
use crate::config::Config;
use crate::p4rt::P4rt;

/// How often the app looks for a change of primary.
const POLL: Duration = Duration::from_millis(100);

/// What the app has done.
#[derive(Debug, Default)]
pub struct AppStats {
    /// MACs learned.
    pub learned: AtomicU64,
    /// MACs moved to another port.
    pub moved: AtomicU64,
    /// Learned MACs aged out.
    pub aged: AtomicU64,
    /// MACs not learned: the table of learned MACs is full.
    pub table_full: AtomicU64,
    /// Digests about a static MAC seen on another port (ignored).
    pub static_conflicts: AtomicU64,
    /// Writes the switch refused.
    pub write_errors: AtomicU64,
    /// Packet-ins received (punted by the ACL) with no controller to take them.
    pub packet_ins: AtomicU64,
    /// Times an external controller took over.
    pub stepped_back: AtomicU64,
    /// Times the app took the switch back.
    pub took_over: AtomicU64,
    /// MACs learned now.
    pub learned_now: AtomicU64,
    /// The mode: 0 active, 1 stepped back, 2 idle.
    pub mode: AtomicU64,
}

impl AppStats {
    /// The event counters by their metrics label.
    pub fn events(&self) -> [(&'static str, u64); 9] {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("learned", n(&self.learned)),
            ("moved", n(&self.moved)),
            ("aged", n(&self.aged)),
            ("table_full", n(&self.table_full)),
            ("static_conflict", n(&self.static_conflicts)),
            ("write_error", n(&self.write_errors)),
            ("packet_in", n(&self.packet_ins)),
            ("stepped_back", n(&self.stepped_back)),
            ("took_over", n(&self.took_over)),
        ]
    }

    /// The mode's name, as metrics label it.
    pub fn mode_name(&self) -> &'static str {
        match self.mode.load(Ordering::Relaxed) {
            0 => "active",
            1 => "stepped_back",
            _ => "idle",
        }
    }
}

/// Whether the app is programming the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Programming it.
    Active,
    /// An external controller is primary.
    SteppedBack,
    /// Another program is running: nothing to do.
    Idle,
}

/// The app's state (its thread owns it).
#[derive(Debug)]
pub struct App {
    p4rt: Arc<P4rt>,
    names: Names,
    /// The configuration in effect (the file's, with live changes).
    config: Config,
    plan: SwitchPlan,
    section: SwitchSection,
    /// Learned MACs: (VLAN, MAC) -> port.
    learned: HashMap<(u16, u64), u32>,
    statics: HashSet<(u16, u64)>,
    mode: Mode,
    /// Counters (shared with the management API).
    pub stats: Arc<AppStats>,
}

/// A learning sample: VLAN, MAC, port.
type Sample = (u16, u64, u32);

/// What reaches the app's thread.
#[derive(Debug)]
pub enum Event {
    /// A stream update (digest list, idle timeouts, packet-in).
    Stream(Update),
    /// A live change of the configuration: operation, section, item; the reply.
    Change(String, String, serde_json::Value, mpsc::Sender<Result<String, String>>),
    /// The state, for `sluicectl`.
    Show(mpsc::Sender<serde_json::Value>),
}

/// How the management API reaches a running app.
#[derive(Debug, Clone)]
pub struct AppHandle {
    tx: mpsc::Sender<Event>,
    /// The app's counters.
    pub stats: Arc<AppStats>,
}

impl AppHandle {
    fn ask<T>(&self, make: impl FnOnce(mpsc::Sender<T>) -> Event) -> Result<T, String> {
        let (tx, rx) = mpsc::channel();
        self.tx.send(make(tx)).map_err(|_| "the built-in app has stopped".to_string())?;
        rx.recv_timeout(Duration::from_secs(10)).map_err(|_| "the built-in app did not answer within 10 s".to_string())
    }

    /// Apply a live change (see [`change::edit`]); what it did.
    pub fn change(&self, op: &str, section: &str, spec: serde_json::Value) -> Result<String, String> {
        let (op, section) = (op.to_string(), section.to_string());
        self.ask(|tx| Event::Change(op, section, spec, tx))?
    }

    /// The app's state: mode, configuration in effect, learned MACs, counters.
    pub fn show(&self) -> Result<serde_json::Value, String> {
        self.ask(Event::Show)
    }
}

impl App {
    /// An app for the configuration `config` (which runs the default program),
    /// driving `p4rt`.
    pub fn new(p4rt: Arc<P4rt>, config: Config) -> Result<App, crate::config::ConfigError> {
        let plan = SwitchPlan::build(&config)?;
        let statics = plan.macs.iter().map(|m| (m.vlan, m.mac)).collect();
        Ok(App {
            p4rt,
            names: Names::new(),
            section: config.switch.clone(),
            config,
            plan,
            learned: HashMap::new(),
            statics,
            mode: Mode::Active,
            stats: Arc::default(),
        })
    }

    fn set_mode(&mut self, m: Mode) {
        self.mode = m;
        let n = match m {
            Mode::Active => 0,
            Mode::SteppedBack => 1,
            Mode::Idle => 2,
        };
        self.stats.mode.store(n, Ordering::Relaxed);
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Learned MACs: (VLAN, MAC) -> port.
    pub fn learned(&self) -> &HashMap<(u16, u64), u32> {
        &self.learned
    }

    fn write(&self, updates: Vec<pb::Update>) -> Result<(), String> {
        if updates.is_empty() {
            return Ok(());
        }
        let req = pb::WriteRequest {
            device_id: 0,
            updates,
            // All or nothing: a refused batch leaves the switch as it was.
            atomicity: pb::write_request::Atomicity::RollbackOnError as i32,
            ..Default::default()
        };
        self.p4rt.write(&req).map_err(|s| {
            self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
            update_errors(&s, &req.updates)
        })
    }

    /// Write the configuration (the switch runs the default program, empty).
    pub fn program(&mut self) -> Result<(), String> {
        self.learned.clear();
        self.stats.learned_now.store(0, Ordering::Relaxed);
        let plan = self.plan.clone();
        self.apply(None, &plan)
            .map(|_| ())
            .map_err(|e| format!("the built-in app could not write its configuration: {e}"))
    }

    /// Write what turns the entities of `from` into those of `to` (`None`: an empty
    /// switch); the number of writes.
    fn apply(&self, from: Option<&SwitchPlan>, to: &SwitchPlan) -> Result<usize, String> {
        let old = from.map(|p| entries::config_updates(p, &self.names)).unwrap_or_default();
        let mut n = 0;
        for batch in change::diff(old, entries::config_updates(to, &self.names)) {
            n += batch.len();
            self.write(batch)?;
        }
        Ok(n)
    }

    /// Apply a live change of the configuration: validated whole first (a refused
    /// change writes nothing), then written as a diff. Learned MACs that the change
    /// contradicts (now static, or in a VLAN their port left) are forgotten.
    pub fn change(&mut self, op: &str, section: &str, spec: &serde_json::Value) -> Result<String, String> {
        if self.mode != Mode::Active {
            return Err(format!("the built-in app is {:?}: an external controller owns the switch", self.mode));
        }
        let mut config = self.config.clone();
        let what = change::edit(&mut config, op, section, spec)?;
        let plan = SwitchPlan::build(&config).map_err(|e| e.0)?;
        let statics: HashSet<(u16, u64)> = plan.macs.iter().map(|m| (m.vlan, m.mac)).collect();
        let stale: Vec<Sample> = self
            .learned
            .iter()
            .filter(|((vlan, mac), port)| {
                let member = plan.ports.get(port).is_some_and(|p| p.untagged == Some(*vlan) || p.tagged.contains(vlan));
                statics.contains(&(*vlan, *mac)) || !member
            })
            .map(|((v, m), p)| (*v, *m, *p))
            .collect();
        for (vlan, mac, port) in stale {
            self.forget(vlan, mac, port)?;
        }
        let writes = self.apply(Some(&self.plan), &plan)?;
        self.config = config;
        self.plan = plan;
        self.statics = statics;
        Ok(format!("{what} ({writes} writes)"))
    }

    /// The state for `sluicectl`: mode, the switch sections in effect, learned MACs,
    /// counters.
    pub fn view(&self) -> serde_json::Value {
        let c = &self.config;
        let ports: Vec<serde_json::Value> = c
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let v = &self.plan.ports[&c.p4_port(i)];
                serde_json::json!({
                    "name": p.name, "p4_port": c.p4_port(i), "untagged": v.untagged,
                    "tagged": v.tagged, "vlan_mode": p.vlan_mode.unwrap_or_default(),
                })
            })
            .collect();
        let port_name = |p: u32| self.plan.ports.get(&p).map_or_else(|| p.to_string(), |v| v.name.clone());
        let mut learned: Vec<_> = self.learned.iter().map(|((v, m), p)| (*v, *m, *p)).collect();
        learned.sort();
        let learned: Vec<serde_json::Value> = learned
            .into_iter()
            .map(|(v, m, p)| serde_json::json!({"vlan": v, "mac": mac_str(m), "port": port_name(p)}))
            .collect();
        let s = &self.stats;
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "mode": format!("{:?}", self.mode).to_lowercase(),
            "switch": c.switch,
            "ports": ports,
            "vlans": c.vlans, "router_interfaces": c.router_interfaces, "neighbors": c.neighbors,
            "routes": c.routes, "macs": c.macs, "vteps": c.vteps, "acls": c.acls, "mirrors": c.mirrors,
            "learned": learned,
            "counters": {
                "learned": n(&s.learned), "moved": n(&s.moved), "aged": n(&s.aged), "table_full": n(&s.table_full),
                "static_conflicts": n(&s.static_conflicts), "write_errors": n(&s.write_errors),
                "packet_ins": n(&s.packet_ins), "stepped_back": n(&s.stepped_back), "took_over": n(&s.took_over),
            },
        })
    }

    /// Delete a learned MAC's entries.
    fn forget(&mut self, vlan: u16, mac: u64, port: u32) -> Result<(), String> {
        let (src, dst) = entries::learned(&self.names, vlan, mac, port, 0);
        let table = |e| pb::entity::Entity::TableEntry(e);
        self.write(vec![update(Type::Delete, table(src)), update(Type::Delete, table(dst))])?;
        self.learned.remove(&(vlan, mac));
        self.stats.learned_now.store(self.learned.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn aging_ns(&self) -> i64 {
        (self.section.mac_aging_s.saturating_mul(1_000_000_000)).min(i64::MAX as u64) as i64
    }

    /// Learn from digest samples: new MACs, moves.
    ///
    /// A list is written as one batch: one command to the workers and one pass over
    /// their megaflows, however many MACs it holds. Written a MAC at a time, a list
    /// of 64 took 64 round trips to a worker that was running every packet of the
    /// unknown sources through the pipeline, so those packets stayed uncached longer
    /// (7-135 ms to learn the demo's 64 MACs, ~1 s in the VM's slow phases). If the
    /// switch refuses the batch (all or nothing), each MAC is written
    /// alone, so one bad sample keeps no other out. Within a list the last port
    /// reported for a MAC wins.
    pub fn learn(&mut self, samples: &[Sample]) {
        if !self.section.learning {
            return;
        }
        let mut wanted: Vec<Sample> = Vec::with_capacity(samples.len());
        let mut at: HashMap<(u16, u64), usize> = HashMap::with_capacity(samples.len());
        for &(vlan, mac, port) in samples {
            if self.statics.contains(&(vlan, mac)) {
                self.stats.static_conflicts.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            match at.get(&(vlan, mac)) {
                Some(&i) => wanted[i].2 = port,
                None => {
                    at.insert((vlan, mac), wanted.len());
                    wanted.push((vlan, mac, port));
                }
            }
        }
        // (sample, the port it moves from)
        let mut plan: Vec<(Sample, Option<u32>)> = Vec::with_capacity(wanted.len());
        let mut new = 0;
        for (vlan, mac, port) in wanted {
            match self.learned.get(&(vlan, mac)) {
                Some(&p) if p == port => {}
                Some(&old) => plan.push(((vlan, mac, port), Some(old))),
                None if self.learned.len() + new >= self.section.max_learned_macs => {
                    self.stats.table_full.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    new += 1;
                    plan.push(((vlan, mac, port), None));
                }
            }
        }
        if plan.len() > 1 {
            let batch = plan.iter().flat_map(|&(s, old)| self.learn_updates(s, old)).collect();
            if self.write(batch).is_ok() {
                for (s, old) in plan {
                    self.learned_one(s, old.is_some());
                }
                return;
            }
        }
        for (s @ (vlan, mac, port), old) in plan {
            match self.write(self.learn_updates(s, old)) {
                Ok(()) => self.learned_one(s, old.is_some()),
                Err(e) => eprintln!("sluiced: app: cannot learn {} in VLAN {vlan} on port {port}: {e}", mac_str(mac)),
            }
        }
    }

    /// The updates that learn `(vlan, mac)` on `port`, moving it from `old`.
    fn learn_updates(&self, (vlan, mac, port): Sample, old: Option<u32>) -> Vec<pb::Update> {
        let table = |e| pb::entity::Entity::TableEntry(e);
        let (src, dst) = entries::learned(&self.names, vlan, mac, port, self.aging_ns());
        match old {
            Some(old) => {
                let (old_src, _) = entries::learned(&self.names, vlan, mac, old, 0);
                vec![
                    update(Type::Delete, table(old_src)),
                    update(Type::Insert, table(src)),
                    update(Type::Modify, table(dst)),
                ]
            }
            None => vec![update(Type::Insert, table(src)), update(Type::Insert, table(dst))],
        }
    }

    /// Bookkeeping of a MAC written as learned.
    fn learned_one(&mut self, (vlan, mac, port): Sample, moved: bool) {
        self.learned.insert((vlan, mac), port);
        self.stats.learned_now.store(self.learned.len() as u64, Ordering::Relaxed);
        let c = if moved { &self.stats.moved } else { &self.stats.learned };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Forget MACs whose learning entries timed out.
    pub fn age(&mut self, n: &pb::IdleTimeoutNotification) {
        let learning = self.names.table_id("ingress.mac_learning");
        for e in &n.table_entry {
            if e.table_id != learning {
                continue;
            }
            let Some([vlan, mac, port]) = exact_values::<3>(e) else { continue };
            let (vlan, mac, port) = (vlan as u16, mac as u64, port as u32);
            if self.learned.get(&(vlan, mac)) != Some(&port) {
                continue;
            }
            match self.forget(vlan, mac, port) {
                Ok(()) => {
                    self.stats.aged.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => eprintln!("sluiced: app: cannot age out {} in VLAN {vlan}: {e}", mac_str(mac)),
            }
        }
    }

    /// One stream update for the app.
    pub fn handle(&mut self, u: Update) {
        match u {
            Update::Digest(list) => {
                let samples: Vec<Sample> = list
                    .data
                    .iter()
                    .filter_map(|d| {
                        let members = match &d.data {
                            Some(pb::p4_data::Data::Struct(s)) => &s.members,
                            _ => return None,
                        };
                        let v: Vec<u128> = members
                            .iter()
                            .filter_map(|m| match &m.data {
                                Some(pb::p4_data::Data::Bitstring(b)) => Some(bytes_value(b)),
                                _ => None,
                            })
                            .collect();
                        (v.len() == 3).then(|| (v[0] as u16, v[1] as u64, v[2] as u32))
                    })
                    .collect();
                if self.mode == Mode::Active {
                    self.learn(&samples);
                }
                let ack = pb::DigestListAck { digest_id: list.digest_id, list_id: list.list_id };
                if let Err(f) = self.p4rt.on_digest_ack(&ack) {
                    eprintln!("sluiced: app: digest ack refused: {}", f.message);
                }
            }
            Update::IdleTimeoutNotification(n) if self.mode == Mode::Active => self.age(&n),
            Update::Packet(_) if self.stats.packet_ins.fetch_add(1, Ordering::Relaxed) == 0 => {
                eprintln!(
                    "sluiced: app: a packet was punted to the controller and none is connected \
                     (counted in the app's packet_ins)"
                );
            }
            _ => {}
        }
    }

    /// Follow the primary: step back when an external one appears, take the switch
    /// back (reload the program, rewrite the configuration) when it is gone.
    pub fn follow_primary(&mut self) {
        let external = self.p4rt.has_external_primary();
        match (self.mode, external) {
            (Mode::Active, true) => {
                self.set_mode(Mode::SteppedBack);
                self.stats.stepped_back.fetch_add(1, Ordering::Relaxed);
                eprintln!("sluiced: app: an external controller is primary; the built-in app steps back");
            }
            (Mode::SteppedBack, false) => {
                if self.p4rt.running_cookie() != Some(program::COOKIE) {
                    self.set_mode(Mode::Idle);
                    eprintln!("sluiced: app: the controller left another program running; the built-in app stays idle");
                    return;
                }
                let req = pb::SetForwardingPipelineConfigRequest {
                    device_id: 0,
                    action: pb::set_forwarding_pipeline_config_request::Action::VerifyAndCommit as i32,
                    config: Some(program::config()),
                    ..Default::default()
                };
                let r = self.p4rt.set_pipeline(&req).map_err(|s| s.message().to_string()).and_then(|_| self.program());
                match r {
                    Ok(()) => {
                        self.set_mode(Mode::Active);
                        self.stats.took_over.fetch_add(1, Ordering::Relaxed);
                        eprintln!(
                            "sluiced: app: no external controller is primary; the built-in app took the switch back"
                        );
                    }
                    Err(e) => {
                        self.set_mode(Mode::Idle);
                        eprintln!("sluiced: app: cannot take the switch back: {e}");
                    }
                }
            }
            _ => {}
        }
    }

    /// Program the switch (only the digest's configuration if `programmed`: the
    /// program started from [`preprogram`]'s state), then run on a thread of its own
    /// until the handle drops.
    pub fn start(mut self, programmed: bool) -> Result<(AppHandle, Background), String> {
        if programmed {
            self.write(vec![entries::digest_update(&self.names)])
                .map_err(|e| format!("the built-in app could not configure its digest: {e}"))?;
        } else {
            self.program()?;
        }
        let (tx, rx) = mpsc::channel();
        let stream = Mutex::new(tx.clone());
        self.p4rt.set_local(Box::new(move |u| lock(&stream).send(Event::Stream(u)).is_ok()));
        let handle = AppHandle { tx, stats: Arc::clone(&self.stats) };
        let thread = Background::spawn("sluice-app", move |stop| {
            while !stop.is_stopped() {
                match rx.recv_timeout(POLL) {
                    Ok(Event::Stream(u)) => self.handle(u),
                    Ok(Event::Change(op, section, spec, reply)) => {
                        let _ = reply.send(self.change(&op, &section, &spec));
                    }
                    Ok(Event::Show(reply)) => {
                        let _ = reply.send(self.view());
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                self.follow_primary();
            }
        })
        .map_err(|e| format!("cannot start the app thread: {e}"))?;
        Ok((handle, thread))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The default program with `config`'s switch already written into its state, so
/// that the workers start with a programmed switch (no frame meets an empty one). The
/// digest's configuration is not part of the state: [`App::start`] writes it.
pub fn preprogram(config: &Config) -> Result<crate::pipeline::Loaded, String> {
    let load = || {
        crate::pipeline::from_bytes(program::JSON, Some(program::P4INFO))
            .map_err(|e| format!("the default program: {e}"))
    };
    let p = crate::p4rt::device::Pipeline::new(load()?, program::config()).map_err(|f| f.message)?;
    let scratch = P4rt::new(0, None, None, Some(p));
    let mut app = App::new(Arc::clone(&scratch), config.clone()).map_err(|e| e.0)?;
    app.program()?;
    let (ir, rt) = scratch.with_running(|p| (Arc::clone(&p.ir), p.rt.clone())).ok_or("no program")?;
    let entities = entries::config_updates(&app.plan, &app.names).len();
    Ok(crate::pipeline::Loaded { ir, rt, p4info: load()?.p4info, entries: entities })
}

/// A refused write as text: the batch message and each failed update's reason.
fn update_errors(s: &tonic::Status, updates: &[pb::Update]) -> String {
    use prost::Message as _;
    let mut out = s.message().to_string();
    let Ok(st) = sluice_proto::google::rpc::Status::decode(s.details()) else { return out };
    for (i, d) in st.details.iter().enumerate() {
        let Ok(e) = pb::Error::decode(d.value.as_slice()) else { continue };
        if e.canonical_code != 0 {
            let what = updates.get(i).and_then(|u| u.entity.as_ref()).and_then(|e| e.entity.as_ref());
            out.push_str(&format!("; update {i} ({}): {}", entity_kind(what), e.message));
        }
    }
    out
}

fn entity_kind(e: Option<&pb::entity::Entity>) -> &'static str {
    use pb::entity::Entity as E;
    match e {
        Some(E::TableEntry(_)) => "table entry",
        Some(E::ActionProfileMember(_)) => "action profile member",
        Some(E::ActionProfileGroup(_)) => "action profile group",
        Some(E::PacketReplicationEngineEntry(_)) => "replication entry",
        Some(E::DigestEntry(_)) => "digest entry",
        _ => "entity",
    }
}

/// A bytestring as a number.
fn bytes_value(b: &[u8]) -> u128 {
    b.iter().rev().take(16).rev().fold(0u128, |a, x| (a << 8) | *x as u128)
}

/// The exact values of an entry's first `N` match fields (by field id 1..=N).
fn exact_values<const N: usize>(e: &pb::TableEntry) -> Option<[u128; N]> {
    let mut out = [0u128; N];
    for (i, slot) in out.iter_mut().enumerate() {
        let m = e.r#match.iter().find(|m| m.field_id == i as u32 + 1)?;
        match &m.field_match_type {
            Some(pb::field_match::FieldMatchType::Exact(x)) => *slot = bytes_value(&x.value),
            _ => return None,
        }
    }
    Some(out)
}

/// `02:00:00:00:00:01`.
pub fn mac_str(m: u64) -> String {
    let b = m.to_be_bytes();
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[2], b[3], b[4], b[5], b[6], b[7])
}

/// Test configurations: ports named and numbered in order (P4 ports 1, 2, ...) on
/// `net_null` devices, each with its VLAN lines, then `extra` sections.
#[cfg(test)]
pub(crate) fn test_config(ports: &[(&str, &str)], extra: &str) -> String {
    let mut text = String::from("[workers]\ncores = [1]\n");
    for (i, (name, vlans)) in ports.iter().enumerate() {
        text += &format!("[[port]]\nname = \"{name}\"\ndevargs = \"net_null{i}\"\np4_port = {}\n{vlans}\n", i + 1);
    }
    text + extra
}

#[cfg(test)]
mod tests;

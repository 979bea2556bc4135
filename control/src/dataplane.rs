//! Brings the data plane up from a validated configuration, changes its ports while
//! it runs, reads its counters, and takes it down in order: stop workers (they
//! drain) → take back queue handles → stop and close ports (closing flushes PMD
//! state such as pcap files).
//!
//! # Ports while forwarding
//! Workers start with no queues; every port, the configured ones included, comes in
//! through [`Dataplane::add_port`]: control attaches, configures and starts the
//! device on its own core, claims one tx queue per worker and the rx queues, and
//! posts each worker one mailbox command that installs its handles and the port's
//! P4 number between two bursts. [`Dataplane::remove_port`] is the reverse: each
//! worker sends what was pending for the port, hands its handles back, and only
//! then is the device stopped and closed. Other ports' queues are never touched,
//! so their packets keep flowing (tested end to end). Port indices are slots that
//! a removed port frees; counters per slot are kept net of the slot's earlier use.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dpdk_sys::eal::Eal;
use dpdk_sys::mempool::Mempool;
use dpdk_sys::port::{Port, PortConf};
use sluice_fastpath::cache::datapath::Datapath;
use sluice_fastpath::cache::event_ring::EventHub;
use sluice_fastpath::mailbox;
use sluice_fastpath::pipeline::Stage;
use sluice_fastpath::qos::policer::Policer;
use sluice_fastpath::qos::Share;

use crate::flows::{FlowLog, EVENT_RING};
use sluice_fastpath::stats::WorkerStats;
use sluice_fastpath::uplink::ToControl;
use sluice_fastpath::worker::{self, Io, RxAssignment, Worker, WorkerHandle};
use sluice_fastpath::xconnect::CrossConnect;
use sluice_offload::translate::PortInfo;

use crate::config::{Config, CorePlan, PolicerSpec, PortConfig};
use crate::placement::{self, RxqRef};
use crate::report::{PortReport, Report, WorkerReport};
use crate::workers::{StageRecipe, WorkerLink, Workers};

/// A start-up or shutdown failure, with a message meant for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DataplaneError(pub String);

/// Ports at most at once (port indices are below this).
pub const MAX_PORTS: usize = 64;

/// What kind of failure a live change met (the management API maps it to a status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeErrorKind {
    /// The request itself is wrong.
    Invalid,
    /// No such port, queue or worker.
    NotFound,
    /// The name or P4 port number is taken.
    Exists,
    /// Out of port slots.
    Exhausted,
    /// A worker did not take the change.
    Unavailable,
    /// DPDK refused (attach, configure, start, queue claim).
    Device,
}

/// A live change was refused; the running data plane is as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ChangeError {
    /// What kind.
    pub kind: ChangeErrorKind,
    /// For the operator.
    pub message: String,
}

fn change_err<T>(kind: ChangeErrorKind, message: impl Into<String>) -> Result<T, ChangeError> {
    Err(ChangeError { kind, message: message.into() })
}

fn unavailable(e: sluice_fastpath::mailbox::MailboxError) -> ChangeError {
    ChangeError { kind: ChangeErrorKind::Unavailable, message: format!("a worker did not take the change: {e}") }
}

/// One port in its slot.
#[derive(Debug)]
struct Slot {
    port: Arc<Port>,
    cfg: PortConfig,
    driver: String,
    rte_flow: String,
    p4_port: u32,
    tx_queues: u16,
    /// Each worker's counters of this slot when the port took it (rx, tx).
    base: Vec<(u64, u64)>,
    /// Each worker's policer drop counters of this slot then (ingress, egress).
    policed_base: Vec<(u64, u64)>,
}

/// The ports and where their queues are polled.
#[derive(Debug, Default)]
struct PortTable {
    slots: Vec<Option<Slot>>,
    /// Rx queues by worker.
    placement: Vec<Vec<RxqRef>>,
    /// Cross-connect mode: where packets from each port index go.
    xconnect: Vec<Option<usize>>,
}

impl PortTable {
    fn index(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.as_ref().is_some_and(|s| s.cfg.name == name))
    }

    fn live(&self) -> impl Iterator<Item = (usize, &Slot)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| Some((i, s.as_ref()?)))
    }
}

/// One rx queue as placed, for reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RxqInfo {
    /// Port name.
    pub port: String,
    /// Queue number.
    pub queue: u16,
    /// Packets this worker received on this port (all its queues of it).
    pub packets: u64,
}

/// A live megaflow, for dumps.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlowInfo {
    /// The worker whose cache holds it.
    pub worker: usize,
    /// Its id there.
    pub id: u32,
    /// What it matches.
    pub matches: String,
    /// What it does.
    pub actions: String,
    /// Packets it matched (the upcall included).
    pub packets: u64,
    /// Bytes it matched.
    pub bytes: u64,
    /// Milliseconds since it was installed.
    pub age_ms: u32,
    /// Milliseconds since it last matched.
    pub idle_ms: u32,
    /// Its NIC rules: "full", "partial", or "" (none).
    pub offload: &'static str,
}

/// The running data plane.
pub struct Dataplane {
    eal: &'static Eal,
    table: Mutex<PortTable>,
    pool: &'static Mempool,
    workers: Vec<WorkerHandle<Stage>>,
    stats: Vec<Arc<WorkerStats>>,
    cores: Vec<usize>,
    stop: Arc<AtomicBool>,
    started: Instant,
    tsc_hz: u64,
    flows: Arc<Mutex<FlowLog>>,
    control: Arc<Workers>,
    offload: Arc<crate::offload::Offload>,
    uplink: Mutex<Option<Receiver<ToControl>>>,
    pipeline: bool,
}

impl std::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataplane").field("cores", &self.cores).finish()
    }
}

const KNOWN_VDEVS: &str = "net_pcap, net_null, net_ring, net_tap, net_vhost, net_af_xdp, net_af_packet, net_memif";

fn attach_port(
    eal: &'static Eal,
    pool: &'static Mempool,
    cfg: &PortConfig,
    workers: usize,
) -> Result<Port, ChangeError> {
    let mut port = Port::attach(eal, &cfg.name, &cfg.devargs).map_err(|e| ChangeError {
        kind: ChangeErrorKind::Device,
        message: format!(
            "port {:?}: cannot attach devargs {:?}: {e}. Check the driver name and its arguments \
             (virtual devices: {KNOWN_VDEVS}; NICs: a PCI address bound to vfio-pci)",
            cfg.name, cfg.devargs
        ),
    })?;
    let conf = PortConf {
        rx_queues: cfg.rx_queues,
        tx_queues: cfg.tx_queues.unwrap_or(workers as u16).max(workers as u16),
        rx_descriptors: cfg.rx_descriptors,
        tx_descriptors: cfg.tx_descriptors,
        mtu: cfg.mtu,
        promiscuous: true,
    };
    // net_pcap with infinite_rx preloads its whole file into the pool (at queue
    // set-up or start), the usual reason such a port fails to come up.
    let hint = if cfg.devargs.contains("infinite_rx") {
        format!(
            ". net_pcap with infinite_rx preloads the whole pcap into the mempool ({} mbufs): raise [mempool] mbufs",
            pool.size()
        )
    } else {
        format!(
            ". The mempool has {} of {} mbufs in use: raise [mempool] mbufs or spare_ports",
            pool.in_use(),
            pool.size()
        )
    };
    let dev = |what: &str, e: dpdk_sys::DpdkError| ChangeError {
        kind: ChangeErrorKind::Device,
        message: format!("port {:?}: cannot {what}: {e}{hint}", cfg.name),
    };
    port.configure(pool, &conf).map_err(|e| dev("configure", e))?;
    port.start().map_err(|e| dev("start", e))?;
    Ok(port)
}

impl Dataplane {
    /// Create the mempool, start one pinned worker per worker core running
    /// `pipeline` if given (each worker gets its own copy of the program's state),
    /// else the cross-connects, then bring up every configured port.
    pub fn start(
        eal: &'static Eal,
        config: &Config,
        plan: &CorePlan,
        pipeline: Option<&crate::pipeline::Loaded>,
    ) -> Result<Self, DataplaneError> {
        let nworkers = plan.workers.len();
        let mbufs = config.mempool.mbufs.unwrap_or_else(|| config.default_mbufs(nworkers));
        let pool = Mempool::create(eal, "sluice_pkt", mbufs, config.mempool.cache_size, config.mempool.data_room, None)
            .map_err(|e| {
                DataplaneError(format!(
                    "cannot create the packet mempool ({mbufs} mbufs of {} bytes): {e}. Lower [mempool] mbufs \
                     or raise [eal] memory_mb",
                    config.mempool.data_room
                ))
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let tsc_hz = dpdk_sys::lcore::tsc_hz(eal);
        let recipe = StageRecipe {
            pool,
            p4_ports: Vec::new(),
            cache: config.cache.to_fastpath(),
            tsc_hz,
            // Packets for the CPU port go to control unless a Sluice port has its number.
            cpu_port: config.cpu_port().filter(|c| !(0..config.ports.len()).any(|i| config.p4_port(i) == *c)),
        };
        // Each worker's counters, event ring and mailbox first: its stage needs them.
        let (mut rings, mut links, mut mailboxes) = (Vec::new(), Vec::new(), Vec::new());
        for _ in &plan.workers {
            let stats = Arc::new(WorkerStats::new(MAX_PORTS));
            let events = EventHub::new(EVENT_RING);
            let (poster, mailbox) = mailbox::mailbox();
            rings.push(events.clone());
            links.push(WorkerLink { poster, stats, events });
            mailboxes.push(mailbox);
        }
        let (control, uplink) = Workers::new(links, recipe);
        let mut dp = Dataplane {
            eal,
            table: Mutex::new(PortTable { placement: vec![Vec::new(); nworkers], ..PortTable::default() }),
            pool,
            workers: Vec::new(),
            stats: Vec::new(),
            cores: plan.workers.clone(),
            stop,
            started: Instant::now(),
            tsc_hz,
            flows: Arc::new(Mutex::new(FlowLog::new(rings))),
            control: Arc::new(control),
            offload: Arc::new(crate::offload::Offload::ethdev(config.offload.to_manager())),
            uplink: Mutex::new(Some(uplink)),
            pipeline: pipeline.is_some(),
        };
        let offload = Arc::clone(&dp.offload);
        dp.control.set_before_write(Box::new(move |deps| offload.lock().invalidate(deps)));
        for ((w, core), mailbox) in plan.workers.iter().copied().enumerate().zip(mailboxes) {
            let stats = Arc::clone(dp.control.stats(w));
            let stage = match pipeline {
                Some(l) => Stage::Pipeline(Box::new(dp.control.stage(w, &l.ir, l.rt.clone()))),
                None => Stage::XConnect(CrossConnect::new(0, &[])),
            };
            let worker = Worker::new(w, Vec::new(), Vec::new(), stage, Arc::clone(&stats)).with_mailbox(mailbox);
            let handle = worker::spawn(eal, core, worker, Arc::clone(&dp.stop))
                .map_err(|e| DataplaneError(format!("worker {w} (core {core}): {e}")))?;
            dp.workers.push(handle);
            dp.stats.push(stats);
        }
        // Every port's tx side and cross-connects first, then the rx queues: no
        // packet arrives before its way out exists.
        let mut pending = Vec::new();
        {
            let mut t = dp.lock();
            for p in &config.ports {
                pending.push(dp.attach_slot(&mut t, p.clone()).map_err(|e| DataplaneError(e.message))?.1);
            }
        }
        for x in &config.xconnects {
            dp.set_xconnect(&x.from, Some(&x.to)).map_err(|e| DataplaneError(e.message))?;
        }
        {
            let mut t = dp.lock();
            for rx in pending {
                dp.hand_rx(&mut t, rx).map_err(|e| DataplaneError(e.message))?;
            }
        }
        for (_, s) in dp.lock().live() {
            // Said once per port at start-up; forwarding never depends on it.
            eprintln!("sluiced: port {:?} ({}): rte_flow {}", s.cfg.name, s.driver, s.rte_flow);
        }
        dp.started = Instant::now();
        Ok(dp)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PortTable> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The workers' counters of port slot `i` (rx, tx), summed.
    fn slot_counters(&self, i: usize) -> Vec<(u64, u64)> {
        self.stats.iter().map(|s| s.port_packets(i)).collect()
    }

    /// Worker `w`'s counters of port `s` in slot `i` since the port took it.
    fn port_counts(&self, w: usize, i: usize, s: &Slot) -> (u64, u64) {
        let (rx, tx) = self.stats[w].port_packets(i);
        let (brx, btx) = s.base.get(w).copied().unwrap_or_default();
        (rx.wrapping_sub(brx), tx.wrapping_sub(btx))
    }

    /// Whether the workers run a P4 pipeline (else cross-connects).
    pub fn runs_pipeline(&self) -> bool {
        self.pipeline
    }

    /// Bring up a port while forwarding: attach, configure and start it, hand each
    /// worker a tx queue, cross-connect it as asked (cross-connect mode: packets
    /// from it leave on `to`, packets from `from` leave on it), and only then put
    /// each rx queue on the worker polling the fewest. Its P4 port number is
    /// `p4_port`, or its index. On any failure the port is closed again and
    /// nothing else changed.
    pub fn add_port(&self, cfg: PortConfig, to: Option<&str>, from: Option<&str>) -> Result<PortReport, ChangeError> {
        let mut t = self.lock();
        if (to.is_some() || from.is_some()) && self.pipeline {
            return change_err(
                ChangeErrorKind::Invalid,
                "cross-connects apply in cross-connect mode; the workers run a P4 program (use its tables)",
            );
        }
        let find = |t: &PortTable, n: &str| {
            t.index(n).ok_or_else(|| ChangeError {
                kind: ChangeErrorKind::NotFound,
                message: format!("no port named {n:?} to cross-connect with (sluicectl port list)"),
            })
        };
        let to = to.map(|n| find(&t, n)).transpose()?;
        let from = from.map(|n| find(&t, n)).transpose()?;
        let name = cfg.name.clone();
        let (index, rx) = self.attach_slot(&mut t, cfg)?;
        let links = [(Some(index), to), (from, Some(index))];
        for (f, x) in links.into_iter().filter_map(|(f, x)| Some((f?, x?))) {
            if let Err(e) = self.post_xconnect(f, Some(x)) {
                drop(t);
                let _ = self.remove_port(&name);
                return Err(unavailable(e));
            }
            t.xconnect[f] = Some(x);
        }
        if let Err(e) = self.hand_rx(&mut t, rx) {
            drop(t);
            let _ = self.remove_port(&name);
            return Err(e);
        }
        let slot = t.slots[index].as_ref().expect("just set");
        Ok(self.port_report(index, slot))
    }

    /// Attach and start a port in a free slot, and install its tx queues and P4
    /// port number on every worker. Returns its index and its claimed rx queues,
    /// by the worker that is to poll them (see [`Dataplane::hand_rx`]).
    fn attach_slot(&self, t: &mut PortTable, cfg: PortConfig) -> Result<(usize, Vec<Vec<RxAssignment>>), ChangeError> {
        use ChangeErrorKind::*;
        if cfg.name.is_empty() || cfg.name.contains(char::is_whitespace) {
            return change_err(Invalid, format!("port name {:?} must be non-empty without spaces", cfg.name));
        }
        if cfg.rx_queues == 0 {
            return change_err(Invalid, format!("port {:?}: rx_queues must be at least 1", cfg.name));
        }
        if t.index(&cfg.name).is_some() {
            return change_err(Exists, format!("a port named {:?} exists already (sluicectl port list)", cfg.name));
        }
        for (dir, spec) in [("ingress_policer", &cfg.ingress_policer), ("egress_policer", &cfg.egress_policer)] {
            if let Some(e) = spec.and_then(|s| s.to_fastpath().check().err()) {
                return change_err(Invalid, format!("port {:?}: {dir}: {e}", cfg.name));
            }
        }
        let index = match t.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None if t.slots.len() < MAX_PORTS => {
                t.slots.push(None);
                t.slots.len() - 1
            }
            None => return change_err(Exhausted, format!("{MAX_PORTS} ports are up already: remove one first")),
        };
        let p4_port = cfg.p4_port.unwrap_or(index as u32);
        if let Some((_, other)) = t.live().find(|(_, s)| s.p4_port == p4_port) {
            return change_err(
                Exists,
                format!("P4 port {p4_port} is port {:?}'s already: give the new port another p4_port", other.cfg.name),
            );
        }
        let nworkers = self.workers.len();
        let port = Arc::new(attach_port(self.eal, self.pool, &cfg, nworkers)?);
        let claim = |e: dpdk_sys::DpdkError| ChangeError {
            kind: Device,
            message: format!("port {:?}: cannot claim a queue: {e}", cfg.name),
        };
        let mut txqs = Vec::with_capacity(nworkers);
        for w in 0..nworkers {
            txqs.push(Some(port.tx_queue(w as u16).map_err(claim)?));
        }
        let mut rx: Vec<Vec<RxAssignment>> = (0..nworkers).map(|_| Vec::new()).collect();
        let mut placement = t.placement.clone();
        for q in 0..cfg.rx_queues {
            let w = placement::least_loaded(&placement);
            rx[w].push(RxAssignment { port: index, queue: port.rx_queue(q).map_err(claim)? });
            placement[w].push(RxqRef { port: index, queue: q });
        }
        let base = self.slot_counters(index);
        let policed_base = self.stats.iter().map(|s| s.port_policed_packets(index)).collect();
        let mut txqs = txqs.into_iter();
        let (ingress, egress) = (self.policers(cfg.ingress_policer)?, self.policers(cfg.egress_policer)?);
        let r = self.control.port_change(index, Some(p4_port), |w| {
            let txq = txqs.next().flatten();
            let (i, e) = (ingress.as_ref().map(|v| v[w]), egress.as_ref().map(|v| v[w]));
            Box::new(move |_: &mut Stage, io: &mut Io, stats: &WorkerStats| {
                io.egress.set_txq(index, txq, stats);
                io.set_ingress_policer(index, i);
                io.egress.set_policer(index, e, stats);
            })
        });
        if let Err(e) = r {
            // Take back what any worker took, so the port can close.
            let back = self.control.port_change(index, None, |_| {
                Box::new(move |_: &mut Stage, io: &mut Io, stats: &WorkerStats| {
                    drop(io.egress.set_txq(index, None, stats));
                    io.set_ingress_policer(index, None);
                    io.egress.set_policer(index, None, stats);
                })
            });
            if back.is_err() {
                eprintln!("sluiced: port {:?}: a worker still holds its queues after a failed add", cfg.name);
            }
            return Err(unavailable(e));
        }
        let tx_queues = cfg.tx_queues.unwrap_or(nworkers as u16).max(nworkers as u16);
        let driver = port.info().map(|i| i.driver).unwrap_or_else(|_| "unknown".into());
        let rte_flow = sluice_offload::probe(&port).describe();
        if t.xconnect.len() <= index {
            t.xconnect.resize(index + 1, None);
        }
        t.xconnect[index] = None;
        let info = PortInfo { p4: p4_port, dpdk: port.id().0, rx_queues: cfg.rx_queues };
        crate::offload::execute(&self.control, self.offload.lock().set_port(info, Some(Arc::clone(&port))));
        t.slots[index] = Some(Slot { port, cfg, driver, rte_flow, p4_port, tx_queues, base, policed_base });
        Ok((index, rx))
    }

    /// Give each worker its rx queues (`rx[w]`): from now on they are polled.
    fn hand_rx(&self, t: &mut PortTable, rx: Vec<Vec<RxAssignment>>) -> Result<(), ChangeError> {
        let refs: Vec<Vec<RxqRef>> =
            rx.iter().map(|qs| qs.iter().map(|a| RxqRef { port: a.port, queue: a.queue.queue() }).collect()).collect();
        let mut rx = rx.into_iter();
        self.control
            .run_each(|_| {
                let qs = rx.next().unwrap_or_default();
                Box::new(move |_: &mut Stage, io: &mut Io, _: &WorkerStats| io.rx.extend(qs))
            })
            .map_err(unavailable)?;
        for (w, r) in refs.into_iter().enumerate() {
            t.placement[w].extend(r);
        }
        Ok(())
    }

    /// Take a port out while forwarding: every worker sends what was pending for
    /// it and hands back its queues, then the device is stopped, closed and
    /// detached. Returns its last counters.
    pub fn remove_port(&self, name: &str) -> Result<PortReport, ChangeError> {
        let mut t = self.lock();
        let Some(index) = t.index(name) else {
            return change_err(ChangeErrorKind::NotFound, format!("no port named {name:?} (sluicectl port list)"));
        };
        let last = self.port_report(index, t.slots[index].as_ref().expect("live"));
        let (back_tx, back_rx) = std::sync::mpsc::channel();
        self.control
            .port_change(index, None, |_| {
                let back = back_tx.clone();
                Box::new(move |stage: &mut Stage, io: &mut Io, stats: &WorkerStats| {
                    if let Stage::XConnect(x) = stage {
                        x.set(index, None);
                    }
                    let rx = io.take_rx(index, None);
                    let tx = io.egress.set_txq(index, None, stats);
                    io.set_ingress_policer(index, None);
                    io.egress.set_policer(index, None, stats);
                    let _ = back.send((rx, tx));
                })
            })
            .map_err(unavailable)?;
        drop(back_rx.try_iter().collect::<Vec<_>>());
        // Cross-connects into the port now lead nowhere (counted as no_route).
        let into: Vec<usize> =
            t.xconnect.iter().enumerate().filter(|(_, to)| **to == Some(index)).map(|(i, _)| i).collect();
        for from in into {
            t.xconnect[from] = None;
            self.post_xconnect(from, None).map_err(unavailable)?;
        }
        t.xconnect[index] = None;
        for q in t.placement.iter_mut() {
            q.retain(|r| r.port != index);
        }
        let slot = t.slots[index].take().expect("live");
        drop(t);
        // Its NIC rules go first (they hold the port).
        let info = PortInfo { p4: slot.p4_port, dpdk: slot.port.id().0, rx_queues: slot.cfg.rx_queues };
        crate::offload::execute(&self.control, self.offload.lock().set_port(info, None));
        match Arc::try_unwrap(slot.port) {
            Ok(mut p) => p.stop().map_err(|e| ChangeError {
                kind: ChangeErrorKind::Device,
                message: format!("port {name:?} left the workers but did not stop cleanly: {e}"),
            })?,
            Err(_) => {
                return change_err(ChangeErrorKind::Unavailable, format!("port {name:?}: a queue handle is still held"))
            }
        }
        Ok(last)
    }

    /// One policer per worker for `spec` (each with an even share; the balancer
    /// moves shares to where the traffic is), or why `spec` cannot run.
    fn policers(&self, spec: Option<PolicerSpec>) -> Result<Option<Vec<Policer>>, ChangeError> {
        let Some(spec) = spec else { return Ok(None) };
        let share = Share::even(self.workers.len());
        let now = dpdk_sys::lcore::rdtsc();
        let p = Policer::new(spec.to_fastpath(), share, now)
            .map_err(|e| ChangeError { kind: ChangeErrorKind::Invalid, message: e })?;
        Ok(Some(vec![p; self.workers.len()]))
    }

    /// Police traffic received on port `name` (`egress` false) or sent on it
    /// (`egress` true) at `spec` from now on; `None` removes the policer. Every
    /// worker has it when this returns, with full buckets.
    pub fn set_policer(&self, name: &str, egress: bool, spec: Option<PolicerSpec>) -> Result<(), ChangeError> {
        let mut t = self.lock();
        let Some(index) = t.index(name) else {
            return change_err(ChangeErrorKind::NotFound, format!("no port named {name:?} (sluicectl port list)"));
        };
        let dir = if egress { "egress" } else { "ingress" };
        let ps = self.policers(spec).map_err(|e| ChangeError {
            kind: e.kind,
            message: format!("port {name:?}: {dir} policer: {}", e.message),
        })?;
        self.control
            .run_each(|w| {
                let p = ps.as_ref().map(|v| v[w]);
                Box::new(move |_: &mut Stage, io: &mut Io, stats: &WorkerStats| {
                    if egress {
                        io.egress.set_policer(index, p, stats);
                    } else {
                        io.set_ingress_policer(index, p);
                    }
                })
            })
            .map_err(unavailable)?;
        let slot = t.slots[index].as_mut().expect("live");
        if egress {
            slot.cfg.egress_policer = spec;
        } else {
            slot.cfg.ingress_policer = spec;
        }
        Ok(())
    }

    fn post_xconnect(&self, from: usize, to: Option<usize>) -> Result<(), sluice_fastpath::mailbox::MailboxError> {
        self.control.run_each(|_| {
            Box::new(move |stage: &mut Stage, _: &mut Io, _: &WorkerStats| {
                if let Stage::XConnect(x) = stage {
                    x.set(from, to);
                }
            })
        })
    }

    /// Cross-connect mode: packets from port `from` leave on `to` (`None`: nowhere).
    pub fn set_xconnect(&self, from: &str, to: Option<&str>) -> Result<(), ChangeError> {
        let mut t = self.lock();
        if self.pipeline {
            return change_err(
                ChangeErrorKind::Invalid,
                "the workers run a P4 program: forwarding between ports is the program's (use its tables)",
            );
        }
        let find = |n: &str| {
            t.index(n).ok_or_else(|| ChangeError {
                kind: ChangeErrorKind::NotFound,
                message: format!("no port named {n:?} (sluicectl port list)"),
            })
        };
        let f = find(from)?;
        let to = to.map(find).transpose()?;
        self.post_xconnect(f, to).map_err(unavailable)?;
        t.xconnect[f] = to;
        Ok(())
    }

    /// Move rx queue `queue` of `port` to worker `worker`. The queue's packets wait
    /// in the device meanwhile: none is lost.
    pub fn pin_rxq(&self, port: &str, queue: u16, worker: usize) -> Result<(), ChangeError> {
        let mut t = self.lock();
        let Some(index) = t.index(port) else {
            return change_err(ChangeErrorKind::NotFound, format!("no port named {port:?} (sluicectl port list)"));
        };
        if worker >= self.workers.len() {
            return change_err(
                ChangeErrorKind::NotFound,
                format!("no worker {worker}: workers are 0..{} (sluicectl pmd rxq)", self.workers.len()),
            );
        }
        let r = RxqRef { port: index, queue };
        let Some(from) = t.placement.iter().position(|q| q.contains(&r)) else {
            return change_err(ChangeErrorKind::NotFound, format!("port {port:?} has no rx queue {queue}"));
        };
        if from == worker {
            return Ok(());
        }
        self.move_rxq(from, worker, r)?;
        t.placement[from].retain(|x| *x != r);
        t.placement[worker].push(r);
        Ok(())
    }

    fn move_rxq(&self, from: usize, to: usize, r: RxqRef) -> Result<(), ChangeError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.control
            .run_one(
                from,
                Box::new(move |_: &mut Stage, io: &mut Io, _: &WorkerStats| {
                    let _ = tx.send(io.take_rx(r.port, Some(r.queue)));
                }),
            )
            .map_err(unavailable)?;
        let taken = rx.try_iter().flatten().collect::<Vec<_>>();
        let held = Arc::new(Mutex::new(Some(taken)));
        let give = |w: usize, held: &Arc<Mutex<Option<Vec<RxAssignment>>>>| {
            let h = Arc::clone(held);
            self.control.run_one(
                w,
                Box::new(move |_: &mut Stage, io: &mut Io, _: &WorkerStats| {
                    io.rx.extend(h.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default());
                }),
            )
        };
        if let Err(e) = give(to, &held) {
            // Back where it was, so it keeps being polled.
            let _ = give(from, &held);
            return Err(unavailable(e));
        }
        Ok(())
    }

    /// Deal every rx queue round-robin over the workers again, in port and queue
    /// order; moves only those whose worker changes.
    pub fn rebalance_rxqs(&self) -> Result<usize, ChangeError> {
        let mut t = self.lock();
        let queues: Vec<RxqRef> =
            t.live().flat_map(|(i, s)| (0..s.cfg.rx_queues).map(move |queue| RxqRef { port: i, queue })).collect();
        let n = self.workers.len().max(1);
        let mut moved = 0;
        for (k, r) in queues.into_iter().enumerate() {
            let want = k % n;
            let Some(from) = t.placement.iter().position(|q| q.contains(&r)) else { continue };
            if from != want {
                self.move_rxq(from, want, r)?;
                t.placement[from].retain(|x| *x != r);
                t.placement[want].push(r);
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// Each worker's rx queues, with the packets it received per port.
    pub fn rxqs(&self) -> Vec<Vec<RxqInfo>> {
        let t = self.lock();
        t.placement
            .iter()
            .enumerate()
            .map(|(w, qs)| {
                qs.iter()
                    .filter_map(|r| {
                        let s = t.slots.get(r.port)?.as_ref()?;
                        let packets = self.port_counts(w, r.port, s).0;
                        Some(RxqInfo { port: s.cfg.name.clone(), queue: r.queue, packets })
                    })
                    .collect()
            })
            .collect()
    }

    /// The offload manager.
    pub fn offload(&self) -> Arc<crate::offload::Offload> {
        Arc::clone(&self.offload)
    }

    /// The megaflow log (install and removal events).
    pub fn flow_log(&self) -> Arc<Mutex<FlowLog>> {
        Arc::clone(&self.flows)
    }

    /// Take the workers' pending flow events into the megaflow log. The daemon's
    /// main loop calls this every few milliseconds: a worker setting up flows at
    /// ~1.3 M/s fills its ring ([`crate::flows::EVENT_RING`] events) in ~12 ms, and
    /// an install event the full ring drops leaves its megaflow undescribed in
    /// dumps and out of offload's reach for its whole life. Reports, dumps and
    /// offload rounds drain too.
    pub fn drain_flow_events(&self) {
        self.flows.lock().unwrap_or_else(|e| e.into_inner()).drain();
    }

    /// Control's handle on the workers (state updates, pipeline swaps, packet-out).
    pub fn control(&self) -> Arc<Workers> {
        Arc::clone(&self.control)
    }

    /// The uplink ring (packets the pipelines sent to the CPU port, digest
    /// samples); taken once.
    pub fn take_uplink(&self) -> Option<Receiver<ToControl>> {
        self.uplink.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Port names in index order.
    pub fn port_names(&self) -> Vec<String> {
        self.lock().live().map(|(_, s)| s.cfg.name.clone()).collect()
    }

    /// The ports and their devices' extended counters (for metrics).
    pub fn port_xstats(&self) -> Vec<(String, Vec<(String, u64)>)> {
        self.lock().live().map(|(_, s)| (s.cfg.name.clone(), s.port.xstats().unwrap_or_default())).collect()
    }

    fn port_report(&self, index: usize, s: &Slot) -> PortReport {
        let st = s.port.stats().unwrap_or_default();
        let link = s.port.link().ok();
        let (rx, tx) =
            (0..self.stats.len()).map(|w| self.port_counts(w, index, s)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let policed = (0..self.stats.len())
            .map(|w| {
                let (i, e) = self.stats[w].port_policed_packets(index);
                let (bi, be) = s.policed_base.get(w).copied().unwrap_or_default();
                (i.wrapping_sub(bi), e.wrapping_sub(be))
            })
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        PortReport {
            dpdk_port: s.port.id().0,
            index,
            name: s.cfg.name.clone(),
            devargs: s.cfg.devargs.clone(),
            driver: s.driver.clone(),
            p4_port: s.p4_port,
            rte_flow: s.rte_flow.clone(),
            link_up: link.is_some_and(|l| l.up),
            link_speed_mbps: link.map(|l| l.speed_mbps).unwrap_or(0),
            mtu: s.port.mtu().unwrap_or(0),
            rx_queues: s.cfg.rx_queues,
            tx_queues: s.tx_queues,
            rx_packets: st.rx_packets,
            tx_packets: st.tx_packets,
            rx_bytes: st.rx_bytes,
            tx_bytes: st.tx_bytes,
            rx_missed: st.rx_missed,
            rx_errors: st.rx_errors,
            tx_errors: st.tx_errors,
            rx_nombuf: st.rx_nombuf,
            sw_rx_packets: rx,
            sw_tx_packets: tx,
            policed_rx: policed.0,
            policed_tx: policed.1,
            ingress_policer: s.cfg.ingress_policer,
            egress_policer: s.cfg.egress_policer,
        }
    }

    /// A report of every counter now.
    pub fn report(&self) -> Report {
        let snaps: Vec<_> = self.stats.iter().map(|s| s.snapshot()).collect();
        let ports = {
            let t = self.lock();
            t.live().map(|(i, s)| self.port_report(i, s)).collect()
        };
        let workers = snaps.iter().enumerate().map(|(w, s)| WorkerReport::new(w, self.cores[w], s)).collect();
        let megaflows = {
            let mut f = self.flows.lock().unwrap_or_else(|e| e.into_inner());
            f.drain();
            f.summary()
        };
        Report {
            megaflows,
            elapsed_seconds: self.started.elapsed().as_secs_f64(),
            tsc_hz: self.tsc_hz,
            mempool_size: self.pool.size(),
            mempool_in_use: self.pool.in_use(),
            ports,
            workers,
        }
    }

    /// Live megaflows with their counts and age, read from the workers' caches
    /// (`worker`: only that one's), up to `limit` (0: all); and how many there are.
    /// With `offloaded`, only megaflows with NIC rules (and `total` counts those).
    pub fn flows(
        &self,
        limit: usize,
        worker: Option<usize>,
        offloaded: bool,
    ) -> Result<(Vec<FlowInfo>, usize), ChangeError> {
        let read = |dp: &mut Datapath, slots: std::ops::Range<usize>| {
            let now = dp.cache.now_ms();
            dp.cache
                .iter_slots(slots)
                .map(|(id, v, m)| {
                    let idle = now.wrapping_sub(dp.cache.used_ms(id).unwrap_or(now));
                    (id, v, m.packets, m.bytes, now.wrapping_sub(m.installed_ms), idle)
                })
                .collect::<Vec<_>>()
        };
        // Only the worker asked about is read.
        let counts = match worker {
            Some(w) if w < self.control.len() => self.control.scan_one(w, read),
            Some(_) => Ok(vec![]),
            None => self.control.scan(read),
        }
        .map_err(unavailable)?;
        let modes: std::collections::HashMap<(u32, u32, u32), sluice_offload::manager::Mode> = {
            let m = self.offload.lock();
            counts
                .iter()
                .enumerate()
                .flat_map(|(w, c)| c.iter().flatten().map(move |f| (w as u32, f.0, f.1)))
                .filter_map(|id| Some((id, m.mode_of(id)?)))
                .collect()
        };
        let mut log = self.flows.lock().unwrap_or_else(|e| e.into_inner());
        log.drain();
        let mut out = Vec::new();
        let mut total = 0;
        for (w, c) in counts.into_iter().enumerate() {
            if worker.is_some_and(|x| x != w) {
                continue;
            }
            for (id, version, packets, bytes, age_ms, idle_ms) in c.unwrap_or_default() {
                let mode = modes.get(&(w as u32, id, version));
                if offloaded && mode.is_none() {
                    continue;
                }
                total += 1;
                if limit != 0 && out.len() >= limit {
                    continue;
                }
                let (matches, actions) = log
                    .describe(w as u32, id, version)
                    .unwrap_or_else(|| ("(install event lost: ring full)".into(), String::new()));
                let offload = match mode {
                    Some(sluice_offload::manager::Mode::Full) => "full",
                    Some(sluice_offload::manager::Mode::Partial) => "partial",
                    None => "",
                };
                out.push(FlowInfo { worker: w, id, matches, actions, packets, bytes, age_ms, idle_ms, offload });
            }
        }
        Ok((out, total))
    }

    /// Up to `limit` live megaflows as control has seen them, one line each.
    pub fn flow_dump(&self, limit: usize) -> Vec<String> {
        let mut f = self.flows.lock().unwrap_or_else(|e| e.into_inner());
        f.drain();
        f.dump(limit)
    }

    /// Stop the workers (they drain), report the final counters, then stop and close
    /// every port.
    pub fn stop(mut self) -> Result<Report, DataplaneError> {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut returned = Vec::new();
        for h in self.workers.drain(..) {
            returned.push(h.join().into_queues());
        }
        let mut report = self.report();
        report.elapsed_seconds = elapsed;
        drop(returned);
        let mut problems = Vec::new();
        let slots = std::mem::take(&mut self.lock().slots);
        // NIC rules hold their ports: destroy them first (the workers are gone).
        {
            let mut m = self.offload.lock();
            drop(m.clear());
            for s in slots.iter().flatten() {
                drop(m.set_port(PortInfo { p4: s.p4_port, dpdk: s.port.id().0, rx_queues: s.cfg.rx_queues }, None));
            }
        }
        for slot in slots.into_iter().flatten() {
            let name = slot.cfg.name.clone();
            match Arc::try_unwrap(slot.port) {
                Ok(mut p) => {
                    if let Err(e) = p.stop() {
                        problems.push(format!("port {name:?}: {e}"));
                    }
                }
                Err(_) => problems.push(format!("port {name:?}: still in use at shutdown (a bug)")),
            }
        }
        if problems.is_empty() {
            Ok(report)
        } else {
            Err(DataplaneError(problems.join("; ")))
        }
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        // Reached only when `stop` was not called (an error path): stop the workers
        // so no thread polls a port while it is closed.
        self.stop.store(true, Ordering::Relaxed);
        for h in self.workers.drain(..) {
            drop(h.join());
        }
    }
}

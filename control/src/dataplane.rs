//! Brings the data plane up from a validated configuration, reads its counters, and
//! takes it down in order: stop workers (they drain) → take back queue handles →
//! stop and close ports (closing flushes PMD state such as pcap files).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dpdk_sys::eal::Eal;
use dpdk_sys::mempool::Mempool;
use dpdk_sys::port::{Port, PortConf};
use sluice_fastpath::mailbox;
use sluice_fastpath::pipeline::Stage;

use crate::flows::{FlowLog, EVENT_RING};
use sluice_fastpath::stats::WorkerStats;
use sluice_fastpath::uplink::ToControl;
use sluice_fastpath::worker::{self, RxAssignment, Worker, WorkerHandle};
use sluice_fastpath::xconnect::CrossConnect;

use crate::config::{Config, CorePlan};
use crate::placement;
use crate::report::{PortReport, Report, WorkerReport};
use crate::workers::{StageRecipe, WorkerLink, Workers};

/// A start-up or shutdown failure, with a message meant for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DataplaneError(pub String);

/// The running data plane.
pub struct Dataplane {
    ports: Vec<Arc<Port>>,
    drivers: Vec<String>,
    flow_support: Vec<String>,
    pool: &'static Mempool,
    workers: Vec<WorkerHandle<Stage>>,
    stats: Vec<Arc<WorkerStats>>,
    cores: Vec<usize>,
    stop: Arc<AtomicBool>,
    started: Instant,
    tsc_hz: u64,
    flows: Mutex<FlowLog>,
    control: Arc<Workers>,
    uplink: Option<Receiver<ToControl>>,
}

impl std::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataplane").field("ports", &self.ports.len()).field("cores", &self.cores).finish()
    }
}

const KNOWN_VDEVS: &str = "net_pcap, net_null, net_ring, net_tap, net_vhost, net_af_xdp, net_af_packet, net_memif";

fn attach_port(
    eal: &'static Eal,
    pool: &'static Mempool,
    cfg: &crate::config::PortConfig,
    workers: usize,
) -> Result<Port, DataplaneError> {
    let mut port = Port::attach(eal, &cfg.name, &cfg.devargs).map_err(|e| {
        DataplaneError(format!(
            "port {:?}: cannot attach devargs {:?}: {e}. Check the driver name and its arguments \
             (virtual devices: {KNOWN_VDEVS}; NICs: a PCI address bound to vfio-pci)",
            cfg.name, cfg.devargs
        ))
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
        String::new()
    };
    port.configure(pool, &conf)
        .map_err(|e| DataplaneError(format!("port {:?}: cannot configure: {e}{hint}", cfg.name)))?;
    port.start().map_err(|e| DataplaneError(format!("port {:?}: cannot start: {e}{hint}", cfg.name)))?;
    Ok(port)
}

impl Dataplane {
    /// Create the mempool, attach/configure/start every port, place rx queues, and
    /// start one pinned worker per worker core, running `pipeline` if given (each
    /// worker gets its own copy of the program's state), else the cross-connects.
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
        let mut ports = Vec::with_capacity(config.ports.len());
        let mut drivers = Vec::with_capacity(config.ports.len());
        let mut flow_support = Vec::with_capacity(config.ports.len());
        for p in &config.ports {
            let port = attach_port(eal, pool, p, nworkers)?;
            let driver = port.info().map(|i| i.driver).unwrap_or_else(|_| "unknown".into());
            // Said once per port at start-up; forwarding never depends on it.
            let flow = sluice_offload::probe(&port).describe();
            eprintln!("sluiced: port {:?} ({driver}): rte_flow {flow}", p.name);
            drivers.push(driver);
            flow_support.push(flow);
            ports.push(Arc::new(port));
        }
        let pairs: Vec<(usize, usize)> = config
            .xconnects
            .iter()
            .filter_map(|x| Some((config.port_index(&x.from)?, config.port_index(&x.to)?)))
            .collect();
        let xconnect = CrossConnect::new(ports.len(), &pairs);
        let placement = placement::round_robin(&config.ports.iter().map(|p| p.rx_queues).collect::<Vec<_>>(), nworkers);
        let stop = Arc::new(AtomicBool::new(false));
        let tsc_hz = dpdk_sys::lcore::tsc_hz(eal);
        let p4_ports: Vec<u32> = (0..ports.len()).map(|i| config.p4_port(i)).collect();
        let recipe = StageRecipe {
            pool,
            p4_ports: p4_ports.clone(),
            cache: config.cache.to_fastpath(),
            tsc_hz,
            // Packets for the CPU port go to control unless a Sluice port has its number.
            cpu_port: config.p4runtime.cpu_port.filter(|c| !p4_ports.contains(c)),
        };
        // Each worker's counters, event ring and mailbox first: its stage needs them.
        let (mut rings, mut links, mut mailboxes) = (Vec::new(), Vec::new(), Vec::new());
        for _ in &plan.workers {
            let stats = Arc::new(WorkerStats::new(ports.len()));
            let (events, rx) = std::sync::mpsc::sync_channel(EVENT_RING);
            let (poster, mailbox) = mailbox::mailbox();
            rings.push(rx);
            links.push(WorkerLink { poster, stats, events });
            mailboxes.push(mailbox);
        }
        let (control, uplink) = Workers::new(links, recipe);
        let mut dp = Dataplane {
            ports,
            drivers,
            flow_support,
            pool,
            workers: Vec::new(),
            stats: Vec::new(),
            cores: plan.workers.clone(),
            stop,
            started: Instant::now(),
            tsc_hz,
            flows: Mutex::new(FlowLog::new(rings)),
            control: Arc::new(control),
            uplink: Some(uplink),
        };
        for ((w, core), mailbox) in plan.workers.iter().copied().enumerate().zip(mailboxes) {
            let claim_err =
                |e: dpdk_sys::DpdkError| DataplaneError(format!("worker {w} (core {core}): cannot claim a queue: {e}"));
            let mut rxqs = Vec::new();
            for q in &placement[w] {
                rxqs.push(RxAssignment { port: q.port, queue: dp.ports[q.port].rx_queue(q.queue).map_err(claim_err)? });
            }
            let mut txqs = Vec::new();
            for port in &dp.ports {
                txqs.push(Some(port.tx_queue(w as u16).map_err(claim_err)?));
            }
            let stats = Arc::clone(dp.control.stats(w));
            let stage = match pipeline {
                Some(l) => Stage::Pipeline(Box::new(dp.control.stage(w, &l.ir, l.rt.clone()))),
                None => Stage::XConnect(xconnect.clone()),
            };
            let worker = Worker::new(w, rxqs, txqs, stage, Arc::clone(&stats)).with_mailbox(mailbox);
            let handle = worker::spawn(eal, core, worker, Arc::clone(&dp.stop))
                .map_err(|e| DataplaneError(format!("worker {w}: {e}")))?;
            dp.workers.push(handle);
            dp.stats.push(stats);
        }
        dp.started = Instant::now();
        Ok(dp)
    }

    /// Control's handle on the workers (state updates, pipeline swaps, packet-out).
    pub fn control(&self) -> Arc<Workers> {
        Arc::clone(&self.control)
    }

    /// The uplink ring (packets the pipelines sent to the CPU port, digest
    /// samples); taken once.
    pub fn take_uplink(&mut self) -> Option<Receiver<ToControl>> {
        self.uplink.take()
    }

    /// Port names in index order.
    pub fn port_names(&self) -> Vec<String> {
        self.ports.iter().map(|p| p.name().to_owned()).collect()
    }

    /// A report of every counter now.
    pub fn report(&self) -> Report {
        let snaps: Vec<_> = self.stats.iter().map(|s| s.snapshot()).collect();
        let ports = self
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let st = p.stats().unwrap_or_default();
                PortReport {
                    name: p.name().to_owned(),
                    driver: self.drivers[i].clone(),
                    rte_flow: self.flow_support[i].clone(),
                    link_up: p.link().map(|l| l.up).unwrap_or(false),
                    rx_packets: st.rx_packets,
                    tx_packets: st.tx_packets,
                    rx_bytes: st.rx_bytes,
                    tx_bytes: st.tx_bytes,
                    rx_missed: st.rx_missed,
                    rx_errors: st.rx_errors,
                    tx_errors: st.tx_errors,
                    rx_nombuf: st.rx_nombuf,
                    sw_rx_packets: snaps.iter().map(|s| s.port_rx.get(i).copied().unwrap_or(0)).sum(),
                    sw_tx_packets: snaps.iter().map(|s| s.port_tx.get(i).copied().unwrap_or(0)).sum(),
                }
            })
            .collect();
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
        for port in self.ports.drain(..) {
            let name = port.name().to_owned();
            match Arc::try_unwrap(port) {
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

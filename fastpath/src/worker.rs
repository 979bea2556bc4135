//! A pinned run-to-completion worker.
//!
//! # Design
//! One thread per worker core, pinned with `core_affinity` and registered with DPDK
//! (so it has an lcore id and its own mempool cache). The loop: for each assigned rx
//! queue, receive a burst of up to 32, police it if its port has an ingress policer
//! (one `rdtsc` and one `rte_meter` check per packet, only then; see
//! [`crate::qos::policer`]) and hand it to the [`BurstProcessor`]; then flush
//! egress (one `tx_burst` per output port); then account the iteration's TSC cycles as
//! busy (something received) or idle. The stop flag is a relaxed atomic load per
//! iteration — no syscall, lock or allocation anywhere in the loop. After 1,024 polls
//! in a row that received nothing, the processor's [`BurstProcessor::idle`] runs its
//! clock-driven upkeep (a pipeline's idle megaflows expire without traffic too).
//!
//! Between bursts the worker serves its [`Mailbox`]: commands from control (state
//! updates, pipeline swaps, counter reads, packet-out) run on the worker's own core
//! with its own state, so nothing it owns is ever shared.
//!
//! # Stopping
//! When the stop flag is seen the worker drains: it keeps polling until one full round
//! of its queues returns nothing (bounded by [`DRAIN_ROUNDS`], since a source such as
//! `net_pcap` with `infinite_rx` never runs dry), flushes egress, and returns its
//! queue handles so control can stop the ports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dpdk_sys::eal::Eal;
use dpdk_sys::lcore::{rdtsc, ThreadRegistration};
use dpdk_sys::port::{RxQueue, TxQueue};

use crate::egress::Egress;
use crate::mailbox::Mailbox;
use crate::qos::policer::Policer;
use crate::qos::{Offered, RateId, Share};
use crate::stats::{DropReason, WorkerStats};
use crate::{Burst, BurstProcessor, PortIndex};

/// Upper bound on drain rounds after stop.
pub const DRAIN_ROUNDS: usize = 1024;

/// An rx queue a worker polls, with the port index packets are attributed to.
#[derive(Debug)]
pub struct RxAssignment {
    /// The input port's index.
    pub port: PortIndex,
    /// The claimed queue.
    pub queue: RxQueue,
}

/// A worker's queues: what it polls and what it sends on. Mailbox commands get it
/// too, which is how ports come and go while the worker runs: control posts a
/// command that adds or takes back queue handles between two bursts.
#[derive(Debug)]
pub struct Io {
    /// The rx queues polled, in order.
    pub rx: Vec<RxAssignment>,
    /// The output side (with the ports' egress policers).
    pub egress: Egress,
    /// Ingress policers by port index (this worker's share of each).
    ingress: Vec<Option<Policer>>,
}

impl Io {
    /// Queues to poll and the output side; no policers.
    pub fn new(rx: Vec<RxAssignment>, egress: Egress) -> Io {
        Io { rx, egress, ingress: Vec::new() }
    }

    /// Port `port`'s ingress policer from now on (`None`: none); returns the one it
    /// replaces.
    pub fn set_ingress_policer(&mut self, port: PortIndex, policer: Option<Policer>) -> Option<Policer> {
        if port >= self.ingress.len() {
            // Nothing to remove there; a new policer grows the table.
            policer.as_ref()?;
            self.ingress.resize(port + 1, None);
        }
        std::mem::replace(&mut self.ingress[port], policer)
    }

    /// Port `port`'s ingress policer, if any.
    pub fn ingress_policer(&self, port: PortIndex) -> Option<&Policer> {
        self.ingress.get(port).and_then(Option::as_ref)
    }

    /// What the balancer needs of every policer here (appended to `out`).
    pub fn policers_offered(&self, out: &mut Vec<Offered>) {
        for (i, p) in self.ingress.iter().enumerate() {
            if let Some(p) = p {
                out.push(p.report(RateId::PortIn(i as u32)));
            }
        }
        for (i, p) in self.egress.policers() {
            out.push(p.report(RateId::PortOut(i as u32)));
        }
    }

    /// Policer `id` enforces `share` from now on (one that is gone is left alone).
    pub fn set_policer_share(&mut self, id: RateId, share: Share, now: u64) -> Result<(), String> {
        let p = match id {
            RateId::PortIn(i) => self.ingress.get_mut(i as usize).and_then(Option::as_mut),
            RateId::PortOut(i) => self.egress.policer_mut(i as usize),
            RateId::Meter { .. } => None,
        };
        p.map_or(Ok(()), |p| p.reshare(share, now))
    }

    /// Take back every rx queue of `port` (all queues when `queue` is `None`).
    pub fn take_rx(&mut self, port: PortIndex, queue: Option<u16>) -> Vec<RxAssignment> {
        let (taken, kept) = std::mem::take(&mut self.rx)
            .into_iter()
            .partition(|a| a.port == port && queue.is_none_or(|q| a.queue.queue() == q));
        self.rx = kept;
        taken
    }
}

/// Everything a worker owns.
pub struct Worker<P: BurstProcessor> {
    id: usize,
    io: Io,
    processor: P,
    stats: Arc<WorkerStats>,
    mailbox: Option<Mailbox<P>>,
}

impl<P: BurstProcessor> std::fmt::Debug for Worker<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("id", &self.id).field("rxqs", &self.io.rx.len()).finish()
    }
}

/// The queue handles a stopped worker gives back.
#[derive(Debug)]
pub struct ReturnedQueues {
    /// Its rx queues.
    pub rx: Vec<RxAssignment>,
    /// Its tx queues, by port index.
    pub tx: Vec<Option<TxQueue>>,
}

impl<P: BurstProcessor> Worker<P> {
    /// A worker `id` polling `rxqs`, sending through `txqs` (by port index), running
    /// `processor`, counting into `stats`.
    pub fn new(
        id: usize,
        rxqs: Vec<RxAssignment>,
        txqs: Vec<Option<TxQueue>>,
        processor: P,
        stats: Arc<WorkerStats>,
    ) -> Self {
        Self { id, io: Io::new(rxqs, Egress::new(txqs)), processor, stats, mailbox: None }
    }

    /// Serve control's commands from `mailbox` between bursts.
    pub fn with_mailbox(mut self, mailbox: Mailbox<P>) -> Self {
        self.mailbox = Some(mailbox);
        self
    }

    /// The worker's counters.
    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }

    /// Poll until `stop` is set, then drain. Runs on the calling thread.
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut burst = Burst::new();
        // One clone per run (not per packet) so the loop can borrow self mutably.
        let stats_owner = Arc::clone(&self.stats);
        let stats = &*stats_owner;
        // Cycle accounting reads the TSC only when the loop turns busy or idle, and at
        // least every TSC_EVERY iterations: rdtsc costs ~40 cycles in a VM, over a
        // cycle per packet if read every burst. A period is charged to the state it
        // was in; the iteration that flips the state is charged to the old one.
        const TSC_EVERY: u32 = 1024;
        let mut last = rdtsc();
        let mut busy = false;
        let mut iters = 0u32;
        let mut in_period = 0u64;
        while !stop.load(Ordering::Relaxed) {
            if let Some(m) = &self.mailbox {
                m.serve(&mut self.processor, &mut self.io, stats);
            }
            let now_busy = self.poll_once(&mut burst, stats) > 0;
            iters += 1;
            in_period += 1;
            if now_busy != busy || iters >= TSC_EVERY {
                if !busy && !now_busy {
                    // TSC_EVERY polls in a row received nothing: what upkeep is due
                    // by the clock (idle megaflows expire with no traffic at all).
                    self.processor.idle();
                }
                let now = rdtsc();
                let c = if busy { &stats.busy_cycles } else { &stats.idle_cycles };
                c.add(now.wrapping_sub(last));
                stats.iterations.add(in_period);
                last = now;
                busy = now_busy;
                iters = 0;
                in_period = 0;
            }
        }
        let now = rdtsc();
        let c = if busy { &stats.busy_cycles } else { &stats.idle_cycles };
        c.add(now.wrapping_sub(last));
        stats.iterations.add(in_period);
        for _ in 0..DRAIN_ROUNDS {
            if self.poll_once(&mut burst, stats) == 0 {
                break;
            }
        }
        self.io.egress.flush(stats);
        // Commands posted from now on fail as `Closed` instead of waiting.
        self.mailbox = None;
    }

    #[inline(always)]
    fn poll_once(&mut self, burst: &mut Burst, stats: &WorkerStats) -> usize {
        let mut got = 0;
        let io = &mut self.io;
        for a in io.rx.iter_mut() {
            let n = a.queue.rx_burst(burst);
            if n == 0 {
                continue;
            }
            got += n;
            stats.port_rx(a.port, n);
            if let Some(Some(p)) = io.ingress.get_mut(a.port) {
                let (dropped, _) = p.police(burst, rdtsc());
                if dropped > 0 {
                    stats.port_policed(a.port, false, dropped);
                }
                if burst.is_empty() {
                    continue;
                }
            }
            self.processor.process(a.port, burst, &mut io.egress, stats);
            if !burst.is_empty() {
                stats.drop_packets(DropReason::Unhandled, burst.free_all());
            }
        }
        if got > 0 {
            stats.rx_packets.add(got as u64);
            io.egress.flush(stats);
        }
        got
    }

    /// Stop owning the queues: hand them back for the ports to be stopped.
    pub fn into_queues(self) -> ReturnedQueues {
        let tx = self.io.egress.into_queues(&self.stats);
        ReturnedQueues { rx: self.io.rx, tx }
    }
}

/// Why a worker thread could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnError {
    /// The core could not be pinned (not in this process's CPU set).
    Pin(usize),
    /// DPDK refused to register the thread.
    Register(String),
    /// The OS refused to create the thread.
    Thread(String),
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::Pin(c) => write!(f, "cannot pin a worker to core {c}: not in this process's CPU set"),
            SpawnError::Register(e) => {
                write!(f, "cannot register the worker thread with DPDK: {e}")
            }
            SpawnError::Thread(e) => write!(f, "cannot start the worker thread: {e}"),
        }
    }
}

impl std::error::Error for SpawnError {}

/// A running worker thread.
#[derive(Debug)]
pub struct WorkerHandle<P: BurstProcessor + 'static> {
    thread: std::thread::JoinHandle<Worker<P>>,
    core: usize,
}

impl<P: BurstProcessor + 'static> WorkerHandle<P> {
    /// The core it is pinned to.
    pub fn core(&self) -> usize {
        self.core
    }

    /// Wait for the worker to finish (after the stop flag is set) and get it back.
    pub fn join(self) -> Worker<P> {
        match self.thread.join() {
            Ok(w) => w,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Start `worker` on its own thread pinned to `core`, registered with DPDK. Returns
/// once the thread is pinned and registered (or failed to be).
pub fn spawn<P: BurstProcessor + 'static>(
    eal: &'static Eal,
    core: usize,
    mut worker: Worker<P>,
    stop: Arc<AtomicBool>,
) -> Result<WorkerHandle<P>, SpawnError> {
    // core_affinity panics on ids beyond the kernel's CPU set size (CPU_SETSIZE,
    // 1024). Membership in the process's set is not checked here: after EAL init the
    // calling thread is pinned to the main lcore, so its own mask says nothing about
    // the cores workers may use; sched_setaffinity itself refuses unusable cores.
    const CPU_SETSIZE: usize = 1024;
    if core >= CPU_SETSIZE {
        return Err(SpawnError::Pin(core));
    }
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), SpawnError>>(1);
    let thread = std::thread::Builder::new()
        .name(format!("sluice-w{}", worker.id))
        .spawn(move || {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                let _ = ready_tx.send(Err(SpawnError::Pin(core)));
                return worker;
            }
            let reg = match ThreadRegistration::register(eal) {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(SpawnError::Register(e.to_string())));
                    return worker;
                }
            };
            let _ = ready_tx.send(Ok(()));
            worker.run(&stop);
            drop(reg);
            worker
        })
        .map_err(|e| SpawnError::Thread(e.to_string()))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(WorkerHandle { thread, core }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(SpawnError::Thread("worker thread exited before it was ready".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xconnect::CrossConnect;
    use dpdk_sys::mbuf::Mbuf;
    use dpdk_sys::mempool::{Mempool, DEFAULT_DATA_ROOM};
    use dpdk_sys::port::{Port, PortConf};

    fn eal() -> &'static Eal {
        Eal::for_tests("sluice-fastpath-test")
    }

    /// A net_ring port whose tx feeds its own rx (a loopback).
    fn loop_port(name: &str, pool: &'static Mempool) -> Arc<Port> {
        let mut p = Port::attach(eal(), name, &format!("net_ring_{name},nodeaction=r_{name}:0:CREATE")).unwrap();
        p.configure(pool, &PortConf { rx_descriptors: 512, tx_descriptors: 512, ..Default::default() }).unwrap();
        p.start().unwrap();
        Arc::new(p)
    }

    fn frame(i: u16) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[58..60].copy_from_slice(&i.to_be_bytes());
        f
    }

    #[test]
    fn worker_cross_connects_drains_on_stop_and_counts() {
        let pool = Mempool::create(eal(), "fp_test_xc", 4095, 0, DEFAULT_DATA_ROOM, None).unwrap();
        let a = loop_port("wa", pool);
        let b = loop_port("wb", pool);
        let c = loop_port("wc", pool);
        // Inject 100 frames into a's rx (through its own tx: a loopback) and 7 into c's.
        let inject = |p: &Arc<Port>, n: u16| {
            let mut tx = p.tx_queue(0).unwrap();
            let mut sent = 0;
            while sent < n {
                let mut burst = Burst::new();
                while burst.room() > 0 && sent + (burst.len() as u16) < n {
                    burst.push(Mbuf::from_bytes(pool, &frame(sent + burst.len() as u16)).unwrap()).unwrap();
                }
                let k = burst.len() as u16;
                assert_eq!(tx.tx_burst(&mut burst), k as usize);
                sent += k;
            }
        };
        inject(&a, 100);
        inject(&c, 7);
        let stats = Arc::new(WorkerStats::new(3));
        // Ports by index: 0 = a, 1 = b, 2 = c; a -> b; c has no entry.
        let rxqs = vec![
            RxAssignment { port: 0, queue: a.rx_queue(0).unwrap() },
            RxAssignment { port: 2, queue: c.rx_queue(0).unwrap() },
        ];
        let txqs = vec![None, Some(b.tx_queue(0).unwrap()), None];
        let worker = Worker::new(0, rxqs, txqs, CrossConnect::new(3, &[(0, 1)]), Arc::clone(&stats));
        let stop = Arc::new(AtomicBool::new(true)); // stop at once: the drain must still forward all
        let core = core_affinity::get_core_ids().unwrap()[0].id;
        let h = spawn(eal(), core, worker, Arc::clone(&stop)).unwrap();
        let worker = h.join();
        let snap = stats.snapshot();
        assert_eq!(snap.rx_packets, 107);
        assert_eq!(snap.tx_packets, 100);
        assert_eq!(snap.port_rx, vec![100, 0, 7]);
        assert_eq!(snap.port_tx, vec![0, 100, 0]);
        assert_eq!(snap.drops[DropReason::NoRoute as usize].1, 7);
        assert_eq!(snap.total_drops(), 7);
        drop(worker.into_queues());
        // Everything sent to b is in b's ring, in order and intact.
        let mut rx = b.rx_queue(0).unwrap();
        let mut got = Vec::new();
        let mut burst = Burst::new();
        while rx.rx_burst(&mut burst) > 0 {
            for i in 0..burst.len() {
                got.push(burst.data(i).to_vec());
            }
            burst.free_all();
        }
        assert_eq!(got, (0..100).map(frame).collect::<Vec<_>>());
        drop(rx);
        assert_eq!(pool.in_use(), 0, "every mbuf came back to the pool");
    }

    #[test]
    fn spawn_on_a_core_outside_the_cpu_set_fails_clearly() {
        let stats = Arc::new(WorkerStats::new(0));
        let w = Worker::new(1, vec![], vec![], CrossConnect::new(0, &[]), stats);
        let err = spawn(eal(), 4096, w, Arc::new(AtomicBool::new(true))).unwrap_err();
        assert_eq!(err, SpawnError::Pin(4096));
        assert!(err.to_string().contains("core 4096"));
    }
}

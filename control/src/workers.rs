//! Control's handle on the running workers: post commands to their mailboxes
//! (`fastpath::mailbox`) and wait for them, to change what they run.
//!
//! * [`Workers::apply`]: a batch of state updates ([`Op`]s), visible on return: each
//!   worker applies the batch between two bursts and removes the megaflows it
//!   invalidates before completing; this returns when every worker has.
//! * [`Workers::set_pipeline`]: replace the program (a new stage per worker, built
//!   here; the old stage comes back to be freed here, not on the worker's core).
//! * [`Workers::query`]: run a read-only closure on every worker's datapath (counters).
//! * [`Workers::inject`]: packet-out, into the pipeline as if received on the CPU port.
//!
//! Control never blocks a worker: a full mailbox fails the post (the caller reports
//! RESOURCE_EXHAUSTED or UNAVAILABLE), and waits spin on control's own core.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use dpdk_sys::mbuf::Mbuf;
use dpdk_sys::mempool::Mempool;
use sluice_fastpath::cache::datapath::Datapath;
use sluice_fastpath::cache::{CacheConfig, FlowEvent};
use sluice_fastpath::egress::Egress;
use sluice_fastpath::mailbox::{MailboxError, Poster};
use sluice_fastpath::p4::ir::Ir;
use sluice_fastpath::p4::ops::Op;
use sluice_fastpath::p4::tables::Runtime;
use sluice_fastpath::pipeline::{PipelineStage, Stage, StageConfig};
use sluice_fastpath::stats::WorkerStats;

/// How long control waits for a worker to complete a command before reporting it
/// stuck. Workers serve their mailbox every loop iteration (microseconds apart).
pub const WAIT: Duration = Duration::from_secs(5);

/// Packet-ins waiting for control at most (all workers).
pub const PACKET_IN_RING: usize = 4096;

/// One worker as control sees it.
pub struct WorkerLink {
    /// Its mailbox.
    pub poster: Poster<Stage>,
    /// Its counters.
    pub stats: Arc<WorkerStats>,
    /// Its megaflow event ring (for the stages of new pipelines).
    pub events: SyncSender<FlowEvent>,
}

/// Everything needed to build a worker's pipeline stage.
#[derive(Debug, Clone)]
pub struct StageRecipe {
    /// The packet mempool.
    pub pool: &'static Mempool,
    /// P4 port number of each Sluice port index.
    pub p4_ports: Vec<u32>,
    /// Cache settings.
    pub cache: CacheConfig,
    /// TSC ticks per second.
    pub tsc_hz: u64,
    /// The CPU port, when packet-ins go to control.
    pub cpu_port: Option<u32>,
}

impl StageRecipe {
    /// A recipe for no ports (a placeholder before the workers start).
    pub fn none(pool: &'static Mempool) -> Self {
        StageRecipe { pool, p4_ports: vec![], cache: CacheConfig::default(), tsc_hz: 1, cpu_port: None }
    }
}

/// The workers, from control's side.
pub struct Workers {
    links: Vec<WorkerLink>,
    recipe: StageRecipe,
    packet_in_tx: SyncSender<Mbuf>,
    next_inject: AtomicU64,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").field("workers", &self.links.len()).finish()
    }
}

fn wait_all(tickets: &[(usize, u64)], links: &[WorkerLink]) -> Result<(), MailboxError> {
    for (w, t) in tickets {
        links[*w].poster.wait(*t, WAIT)?;
    }
    Ok(())
}

impl Workers {
    /// Control's side of `links`; packet-ins arrive on the returned receiver.
    pub fn new(links: Vec<WorkerLink>, recipe: StageRecipe) -> (Self, Receiver<Mbuf>) {
        let (packet_in_tx, rx) = std::sync::mpsc::sync_channel(PACKET_IN_RING);
        let w = Workers { links, recipe, packet_in_tx, next_inject: AtomicU64::new(0) };
        (w, rx)
    }

    /// Worker `w`'s counters.
    pub fn stats(&self, w: usize) -> &Arc<WorkerStats> {
        &self.links[w].stats
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// A pipeline stage for worker `w` running `ir` with state `rt`.
    pub fn stage(&self, w: usize, ir: &Arc<Ir>, rt: Runtime) -> PipelineStage {
        let r = &self.recipe;
        let link = &self.links[w];
        let cfg = StageConfig { cache: r.cache, worker: w as u32, tsc_hz: r.tsc_hz };
        let mut stage =
            PipelineStage::new(Arc::clone(ir), rt, &r.p4_ports, r.pool, &cfg, &link.stats, Some(link.events.clone()));
        if let Some(cpu) = r.cpu_port {
            stage.set_cpu_port(cpu, self.packet_in_tx.clone());
        }
        stage
    }

    /// Apply `ops` on every worker running a pipeline; returns when all have, with
    /// stale megaflows gone.
    pub fn apply(&self, ops: Arc<[Op]>) -> Result<(), MailboxError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut tickets = Vec::with_capacity(self.links.len());
        for (w, link) in self.links.iter().enumerate() {
            let ops = Arc::clone(&ops);
            let t = link.poster.post(Box::new(move |stage: &mut Stage, _: &mut Egress, stats: &WorkerStats| {
                if let Stage::Pipeline(p) = stage {
                    let n = p.datapath().apply(&ops);
                    stats.refused_ops.add(n as u64);
                }
            }))?;
            tickets.push((w, t));
        }
        wait_all(&tickets, &self.links)
    }

    /// Run `ir` with state `rt` on every worker from now on (megaflows of the old
    /// program are gone with its stage). Returns when every worker has switched.
    pub fn set_pipeline(&self, ir: &Arc<Ir>, rt: &Runtime) -> Result<(), MailboxError> {
        let (old_tx, old_rx) = std::sync::mpsc::channel::<Stage>();
        let mut tickets = Vec::with_capacity(self.links.len());
        for (w, link) in self.links.iter().enumerate() {
            let new = Stage::Pipeline(Box::new(self.stage(w, ir, rt.clone())));
            let old_tx = old_tx.clone();
            let t =
                link.poster.post(Box::new(move |stage: &mut Stage, egress: &mut Egress, stats: &WorkerStats| {
                    // Packets of the old program are all out: it ran to completion.
                    egress.flush(stats);
                    let old = std::mem::replace(stage, new);
                    // Freed on control's side (a program's state can be large).
                    let _ = old_tx.send(old);
                }))?;
            tickets.push((w, t));
        }
        drop(old_tx);
        let r = wait_all(&tickets, &self.links);
        drop(old_rx.try_iter().collect::<Vec<_>>());
        r
    }

    /// Run `f` on every worker's datapath (workers without a pipeline give `None`).
    pub fn query<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Datapath) -> T + Send + Sync + 'static,
    ) -> Result<Vec<Option<T>>, MailboxError> {
        let f = Arc::new(f);
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Option<T>)>();
        let mut tickets = Vec::with_capacity(self.links.len());
        for (w, link) in self.links.iter().enumerate() {
            let (f, tx) = (Arc::clone(&f), tx.clone());
            let t = link.poster.post(Box::new(move |stage: &mut Stage, _: &mut Egress, _: &WorkerStats| {
                let r = match stage {
                    Stage::Pipeline(p) => Some(f(p.datapath())),
                    Stage::XConnect(_) => None,
                };
                let _ = tx.send((w, r));
            }))?;
            tickets.push((w, t));
        }
        drop(tx);
        wait_all(&tickets, &self.links)?;
        let mut out: Vec<Option<T>> = (0..self.links.len()).map(|_| None).collect();
        for (w, r) in rx.try_iter() {
            out[w] = r;
        }
        Ok(out)
    }

    /// Run `f` on worker `w`'s datapath, if it runs a pipeline.
    pub fn query_one<T: Send + 'static>(
        &self,
        w: usize,
        f: impl FnOnce(&mut Datapath) -> T + Send + 'static,
    ) -> Result<Option<T>, MailboxError> {
        let (tx, rx) = std::sync::mpsc::channel::<Option<T>>();
        let t = self.links[w].poster.post(Box::new(move |stage: &mut Stage, _: &mut Egress, _: &WorkerStats| {
            let _ = tx.send(match stage {
                Stage::Pipeline(p) => Some(f(p.datapath())),
                Stage::XConnect(_) => None,
            });
        }))?;
        self.links[w].poster.wait(t, WAIT)?;
        Ok(rx.try_recv().ok().flatten())
    }

    /// Packet-out: run `bytes` through the pipeline as received on P4 port `in_p4`,
    /// on the workers in turn. Does not wait: it is ordered after every write posted
    /// before it.
    pub fn inject(&self, in_p4: u32, bytes: Vec<u8>) -> Result<(), MailboxError> {
        if self.links.is_empty() {
            return Err(MailboxError::Closed);
        }
        let w = (self.next_inject.fetch_add(1, Ordering::Relaxed) % self.links.len() as u64) as usize;
        self.links[w].poster.post(Box::new(move |stage: &mut Stage, egress: &mut Egress, stats: &WorkerStats| {
            if let Stage::Pipeline(p) = stage {
                p.inject(in_p4, &bytes, egress, stats);
            }
        }))?;
        Ok(())
    }
}

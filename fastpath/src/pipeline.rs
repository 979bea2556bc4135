//! The P4 pipeline as a forwarding stage: every packet of a burst runs through the
//! interpreter ([`crate::p4::interp`]), and each copy it produces goes to the output
//! port the program chose.
//!
//! The received mbuf carries the last copy out: its headers are replaced in place
//! (data start moved, payload untouched). Other copies (clones, multicast replicas)
//! are new mbufs. P4 port numbers map to Sluice ports through the configuration; a
//! copy for a P4 port with no Sluice port is dropped as `no_route`. Every drop is
//! counted with its reason ([`DropReason`]).
//!
//! Per packet: no allocation once the interpreter's buffers have grown (copies take
//! mbufs from the pool), no lock, no syscall. Each worker owns its [`Runtime`]; with
//! several workers each has its own copy of the tables (updates reach them over the
//! control rings — the P4Runtime issue), and registers are per worker.

use std::sync::Arc;

use dpdk_sys::mbuf::Mbuf;
use dpdk_sys::mempool::Mempool;

use crate::egress::Egress;
use crate::p4::interp::{DropCause, Interp};
use crate::p4::ir::Ir;
use crate::p4::tables::Runtime;
use crate::p4::track::NoTrack;
use crate::stats::{DropReason, WorkerStats};
use crate::{Burst, BurstProcessor, PortIndex};

/// Number of P4 port numbers (9-bit `egress_spec`).
pub const P4_PORTS: usize = 512;

/// A worker's P4 pipeline stage.
pub struct PipelineStage {
    ir: Arc<Ir>,
    rt: Runtime,
    interp: Interp,
    pool: &'static Mempool,
    to_index: Box<[Option<PortIndex>; P4_PORTS]>,
    to_p4: Vec<u32>,
}

impl std::fmt::Debug for PipelineStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineStage").field("program", &self.ir.name).field("ports", &self.to_p4).finish()
    }
}

fn reason(c: DropCause) -> DropReason {
    match c {
        DropCause::Ingress => DropReason::P4Ingress,
        DropCause::Egress => DropReason::P4Egress,
        DropCause::NoMcastGroup => DropReason::P4NoMcastGroup,
        DropCause::PassLimit => DropReason::P4PassLimit,
        DropCause::Assert => DropReason::P4Assert,
    }
}

impl PipelineStage {
    /// A stage running `ir` with state `rt`; `p4_ports[i]` is the P4 port number of
    /// Sluice port index `i`. Copies are allocated from `pool`.
    pub fn new(ir: Arc<Ir>, rt: Runtime, p4_ports: &[u32], pool: &'static Mempool) -> Self {
        let mut to_index = Box::new([None; P4_PORTS]);
        for (i, p) in p4_ports.iter().enumerate() {
            if let Some(slot) = to_index.get_mut(*p as usize) {
                *slot = Some(i);
            }
        }
        let interp = Interp::new(&ir);
        Self { ir, rt, interp, pool, to_index, to_p4: p4_ports.to_vec() }
    }

    fn one(&mut self, in_port: PortIndex, m: Mbuf, egress: &mut Egress, stats: &WorkerStats) {
        if !m.is_contiguous() {
            stats.drop_packets(DropReason::MultiSegment, 1);
            return;
        }
        let in_p4 = self.to_p4.get(in_port).copied().unwrap_or(u32::MAX);
        self.interp.run(&self.ir, &mut self.rt, m.data(), in_p4, &mut NoTrack);
        for d in &self.interp.out.drops {
            stats.drop_packets(reason(*d), 1);
        }
        let n = self.interp.out.packets().len();
        if n == 0 {
            return;
        }
        let in_len = m.data().len();
        let mut original = Some(m);
        for k in 0..n {
            let (port, reuse) = {
                let o = &self.interp.out.packets()[k];
                (o.port, k + 1 == n)
            };
            let Some(idx) = self.to_index.get(port as usize).copied().flatten() else {
                stats.drop_packets(DropReason::NoRoute, 1);
                continue;
            };
            let o = &self.interp.out.packets()[k];
            let rewritten = match (reuse, o.strip) {
                (true, Some(strip)) => {
                    let mut m = original.take().expect("the received mbuf is used once");
                    match (o.bytes.len() + strip as usize).checked_sub(in_len) {
                        Some(headers) if m.replace_front(strip as usize, &o.bytes[..headers]) => Some(m),
                        _ => None,
                    }
                }
                _ => None,
            };
            let out = match rewritten {
                Some(m) => m,
                None => match Mbuf::from_bytes(self.pool, &o.bytes) {
                    Some(m) => m,
                    None => {
                        stats.drop_packets(DropReason::NoMbuf, 1);
                        continue;
                    }
                },
            };
            egress.send_one(idx, out, stats);
        }
    }
}

impl BurstProcessor for PipelineStage {
    fn process(&mut self, in_port: PortIndex, burst: &mut Burst, egress: &mut Egress, stats: &WorkerStats) {
        burst.drain(|m| self.one(in_port, m, egress, stats));
    }
}

/// What a worker runs: a cross-connect table or a P4 pipeline.
#[derive(Debug)]
pub enum Stage {
    /// Port-to-port.
    XConnect(crate::xconnect::CrossConnect),
    /// A P4 program.
    Pipeline(Box<PipelineStage>),
}

impl BurstProcessor for Stage {
    #[inline(always)]
    fn process(&mut self, in_port: PortIndex, burst: &mut Burst, egress: &mut Egress, stats: &WorkerStats) {
        match self {
            Stage::XConnect(x) => x.process(in_port, burst, egress, stats),
            Stage::Pipeline(p) => p.process(in_port, burst, egress, stats),
        }
    }
}

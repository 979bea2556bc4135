//! The offload manager's home on the control side (`sluice_offload::manager`): its
//! rounds on a thread of the control core, its commands carried to the workers, and
//! the hook that destroys stale NIC rules before a state change is applied.
//!
//! A round reads every worker's live megaflows with their packet counts (one mailbox
//! query), joins them with what the install events said they are ([`FlowLog`]),
//! and lets the manager retire, count and offload. The manager's commands — bind or
//! unbind a flow mark, credit hardware hits — run on the workers between bursts.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sluice_fastpath::cache::datapath::Datapath;
use sluice_fastpath::cache::Megaflow;
use sluice_fastpath::p4::meters::MeterConfig;
use sluice_fastpath::pipeline::PipelineStage;
use sluice_fastpath::stats::WorkerStats;
use sluice_offload::device::EthdevFlows;
use sluice_offload::manager::{Candidate, Command, Manager, OffloadConfig, Offloader};

use crate::background::Background;
use crate::flows::FlowLog;
use crate::workers::Workers;

/// Run the commands that concern worker `w` on its pipeline stage.
pub fn run_commands(p: &mut PipelineStage, w: usize, cmds: &[Command], stats: &WorkerStats) {
    for c in cmds {
        match c {
            Command::Bind { mark, mask, key, min_len } => {
                p.datapath().cache.bind_mark(*mark, mask, key, *min_len);
            }
            Command::Unbind(mark) => p.datapath().cache.unbind_mark(*mark),
            Command::Credit { flow: (worker, id, version), packets, bytes, color } if *worker as usize == w => {
                p.credit_offloaded(*id, *version, *packets, *bytes, *color, stats);
            }
            Command::Credit { .. } => {}
        }
    }
}

/// Run `cmds` on every worker; returns when all have (errors: the workers stopped).
pub fn execute(workers: &Workers, cmds: Vec<Command>) {
    if cmds.is_empty() {
        return;
    }
    let cmds = Arc::new(cmds);
    let _ = workers.run_each(|w| {
        let cmds = Arc::clone(&cmds);
        Box::new(move |stage, _, stats| {
            if let sluice_fastpath::pipeline::Stage::Pipeline(p) = stage {
                run_commands(p, w, &cmds, stats);
            }
        })
    });
}

/// The manager, shared by its thread, the write path and the management API.
pub struct Offload {
    manager: Mutex<Box<dyn Offloader>>,
    last: Mutex<Instant>,
}

impl std::fmt::Debug for Offload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offload").finish()
    }
}

impl Offload {
    /// A manager installing rte_flow rules on the switch's ports.
    pub fn ethdev(cfg: OffloadConfig) -> Offload {
        Offload::with(Box::new(Manager::new(EthdevFlows::default(), cfg)))
    }

    /// Around any manager (tests use the software NIC model).
    pub fn with(manager: Box<dyn Offloader>) -> Offload {
        Offload { manager: Mutex::new(manager), last: Mutex::new(Instant::now()) }
    }

    /// The manager.
    pub fn lock(&self) -> MutexGuard<'_, Box<dyn Offloader>> {
        self.manager.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One round: live megaflows and their counts from the workers, their
    /// descriptions from `flows`, then the manager.
    pub fn round(&self, workers: &Workers, flows: &Mutex<FlowLog>) {
        // A slice of each cache per command: one command for all held the worker.
        let Ok(counts) = workers.scan(live_megaflows) else {
            return;
        };
        let live: Vec<Candidate> = {
            let mut log = flows.lock().unwrap_or_else(|e| e.into_inner());
            log.drain();
            counts
                .into_iter()
                .enumerate()
                .flat_map(|(w, c)| c.unwrap_or_default().into_iter().map(move |f| (w as u32, f)))
                .filter_map(|(w, (flow, version, packets, meter))| {
                    let desc = Arc::clone(log.info(w, flow, version)?);
                    Some(Candidate { worker: w, flow, version, packets, desc, meter })
                })
                .collect()
        };
        let elapsed = {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            let e = last.elapsed();
            *last = Instant::now();
            e
        };
        self.lock().round(&live, elapsed, &mut |cmds| execute(workers, cmds));
    }
}

/// A worker's live megaflows among slots `slots`: id, version, packets, and for a metered one the
/// configuration of the meter cell it executes first (a reconfiguration invalidates
/// the megaflow, so it cannot change under the megaflow's rule).
pub fn live_megaflows(dp: &mut Datapath, slots: std::ops::Range<usize>) -> Vec<(u32, u32, u64, Option<MeterConfig>)> {
    let config = |m: &Megaflow| {
        let b = m.actions.metered.as_ref()?;
        dp.rt.meters.get(b.meter as usize)?.get(b.cell as usize)?.as_ref().map(|c| c.config)
    };
    dp.cache.iter_slots(slots).map(|(id, v, m)| (id, v, m.packets, config(m))).collect()
}

/// Rounds every `interval` on a thread until the handle drops.
pub fn spawn(
    offload: Arc<Offload>,
    workers: Arc<Workers>,
    flows: Arc<Mutex<FlowLog>>,
    interval: Duration,
) -> std::io::Result<Background> {
    Background::spawn("sluice-offload", move |stop| {
        while !stop.is_stopped() {
            std::thread::sleep(interval);
            offload.round(&workers, &flows);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workers::tests::loop_port;
    use crate::workers::{StageRecipe, WorkerLink};
    use dpdk_sys::eal::Eal;
    use dpdk_sys::mbuf::{Burst, Mbuf};
    use dpdk_sys::mempool::{Mempool, DEFAULT_DATA_ROOM};
    use dpdk_sys::port::Port;
    use sluice_fastpath::cache::event_ring::EventHub;
    use sluice_fastpath::cache::CacheConfig;
    use sluice_fastpath::mailbox::mailbox;
    use sluice_fastpath::p4::ir::KeyValue;
    use sluice_fastpath::p4::ops::Op;
    use sluice_fastpath::p4::tables::EntryAction;
    use sluice_fastpath::pipeline::Stage;
    use sluice_fastpath::worker::{self, RxAssignment, Worker};
    use sluice_offload::model::{ModelConfig, NicModel, Verdict};
    use sluice_offload::translate::PortInfo;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// What a round learns of a worker's megaflows: a metered one comes with its
    /// meter cell's configuration (the manager's meter object is made from it), an
    /// unmetered one without.
    #[test]
    fn live_megaflows_carry_the_configuration_of_their_meter_cell() {
        let Some(dir) = sluice_fastpath::p4::corpus::dir() else {
            eprintln!("SKIP: P4 corpus not found (set SLUICE_P4_CORPUS)");
            return;
        };
        let eal = Eal::for_tests("sluice-control-test");
        let tmp = std::env::temp_dir().join(format!("sluice-live-{}.txt", std::process::id()));
        let entries = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../perf/entries/basic_l2.txt");
        let mut text = std::fs::read_to_string(entries).unwrap();
        // Traffic leaves by port 2: cell 2 of the egress port meter, 20 kB/s.
        text.push_str("meter_set_rates egress_port_meter 2 0.02:1000 0.02:2000\n");
        std::fs::write(&tmp, text).unwrap();
        let l = crate::pipeline::load(&dir.join("onos_basic/basic.json"), None, Some(&tmp));
        std::fs::remove_file(&tmp).unwrap();
        let mut l = l.unwrap();
        dpdk_sys::lcore::tsc_hz(eal);
        l.rt.set_meter_share(sluice_fastpath::qos::Share::WHOLE, &l.ir).unwrap();
        let cache = sluice_fastpath::cache::FlowCache::new(
            CacheConfig::default(),
            0,
            Arc::new(sluice_fastpath::cache::CacheStats::default()),
            None,
        );
        let mut dp = Datapath::new(l.ir, l.rt, cache);
        let pkt = crate::pcap::udp_frame(1, 7);
        dp.process(1, &pkt);
        let live = live_megaflows(&mut dp, 0..usize::MAX);
        assert_eq!(live.len(), 1, "{live:?}");
        assert_eq!(live[0].3, Some(MeterConfig { cir: 20_000, cburst: 1000, pir: 20_000, pburst: 2000 }));
        // Unconfigured, the cell marks GREEN: the megaflow (rebuilt) branches on nothing.
        let meter = dp.ir.meters.iter().position(|m| m.name.ends_with("egress_port_meter")).unwrap() as u32;
        assert_eq!(dp.apply(&[Op::SetMeter { meter, index: Some(2), config: None }]), 0);
        dp.process(1, &pkt);
        let live = live_megaflows(&mut dp, 0..usize::MAX);
        assert_eq!((live.len(), live[0].3), (1, None), "{live:?}");
    }

    /// Up to `want` packets from `p`'s loop, waiting a little for stragglers.
    fn drain(p: &Arc<Port>, want: usize) -> Vec<Vec<u8>> {
        let mut rx = p.rx_queue(0).unwrap();
        let mut b = Burst::new();
        let mut out = vec![];
        let deadline = Instant::now() + Duration::from_secs(5);
        while out.len() < want && Instant::now() < deadline {
            rx.rx_burst(&mut b);
            b.drain(|m| out.push(m.data().to_vec()));
        }
        std::thread::sleep(Duration::from_millis(20));
        rx.rx_burst(&mut b);
        b.drain(|m| out.push(m.data().to_vec()));
        out
    }

    /// The whole loop on a running worker, with the software NIC model as the NIC on
    /// the wire: simple_router's route to 10.0.1.10 goes from software to a full
    /// offload rule (the NIC forwards; the worker sees nothing; hardware hits are
    /// credited to the megaflow), then to a partial one (marked packets skip the
    /// lookup), each producing exactly the software's bytes; a route change destroys
    /// the rules before it returns; a megaflow that leaves takes its rules along.
    #[test]
    fn offloaded_flows_bypass_the_lookup_and_forward_as_software_does() {
        let dir = std::env::var_os("SLUICE_P4_CORPUS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/p4"));
        if !dir.is_dir() {
            eprintln!("SKIP: P4 corpus not found at {} (set SLUICE_P4_CORPUS)", dir.display());
            return;
        }
        let eal = Eal::for_tests("sluice-control-test");
        let pool = Mempool::create(eal, "ctl_off", 4095, 0, DEFAULT_DATA_ROOM, None).unwrap();
        let (inp, out) = (loop_port(eal, "ofin", pool), loop_port(eal, "ofout", pool));
        let entries = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../perf/entries/simple_router.txt");
        let l = crate::pipeline::load(&dir.join("simple_router/simple_router.json"), None, Some(&entries)).unwrap();
        let (poster, mb) = mailbox();
        let events = EventHub::new(1024);
        let stats = Arc::new(WorkerStats::new(2));
        let link = WorkerLink { poster, stats: Arc::clone(&stats), events: events.clone() };
        let recipe = StageRecipe {
            pool,
            p4_ports: vec![1, 2],
            cache: CacheConfig::default(),
            tsc_hz: dpdk_sys::lcore::tsc_hz(eal),
            cpu_port: None,
        };
        let (workers, _uplink) = Workers::new(vec![link], recipe);
        let flows = Mutex::new(FlowLog::new(vec![events]));
        let stage = Stage::Pipeline(Box::new(workers.stage(0, &l.ir, l.rt.clone())));
        let rxqs = vec![RxAssignment { port: 0, queue: inp.rx_queue(0).unwrap() }];
        let txqs = vec![None, Some(out.tx_queue(0).unwrap())];
        let worker = Worker::new(0, rxqs, txqs, stage, Arc::clone(&stats)).with_mailbox(mb);
        let stop = Arc::new(AtomicBool::new(false));
        let core = core_affinity::get_core_ids().unwrap().last().unwrap().id;
        let h = worker::spawn(eal, core, worker, Arc::clone(&stop)).unwrap();

        let model = NicModel::new(ModelConfig::default());
        let cfg = OffloadConfig { min_pps: 1, ..OffloadConfig::default() };
        let offload = Arc::new(Offload::with(Box::new(Manager::new(model.clone(), cfg))));
        let (din, dout) = (inp.id().0, out.id().0);
        execute(&workers, offload.lock().set_port(PortInfo { p4: 1, dpdk: din, rx_queues: 1 }, Some(Arc::clone(&inp))));
        execute(
            &workers,
            offload.lock().set_port(PortInfo { p4: 2, dpdk: dout, rx_queues: 1 }, Some(Arc::clone(&out))),
        );
        let hook = Arc::clone(&offload);
        workers.set_before_write(Box::new(move |deps| hook.lock().invalidate(deps)));

        // The wire: every packet meets the NIC first; what it sends to the host goes
        // to the worker (marked as the NIC marked it), what it forwards is returned.
        let mut tx = inp.tx_queue(0).unwrap();
        let mut wire = |n: usize| -> Vec<Verdict> {
            let mut burst = Burst::new();
            let mut verdicts = vec![];
            for _ in 0..n {
                let mut bytes = crate::pcap::udp_frame(1, 7);
                bytes[30..34].copy_from_slice(&[10, 0, 1, 10]);
                bytes[24..26].copy_from_slice(&[0, 0]);
                let c = crate::pcap::ipv4_checksum(&bytes[14..34]);
                bytes[24..26].copy_from_slice(&c.to_be_bytes());
                let v = model.receive(din, &mut bytes);
                if let Verdict::ToHost { mark, .. } = v {
                    let mut m = Mbuf::from_bytes(pool, &bytes).unwrap();
                    m.set_mark(mark);
                    burst.push(m).unwrap();
                }
                verdicts.push(match v {
                    Verdict::Forwarded { port } => {
                        assert_eq!(port, dout);
                        Verdict::Forwarded { port }
                    }
                    other => other,
                });
                if let Verdict::Forwarded { .. } = verdicts.last().unwrap() {
                    FORWARDED.with(|f| f.borrow_mut().push(bytes));
                }
            }
            let k = burst.len();
            assert_eq!(tx.tx_burst(&mut burst), k);
            verdicts
        };
        thread_local!(static FORWARDED: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(vec![]) });
        let forwarded = || FORWARDED.with(|f| std::mem::take(&mut *f.borrow_mut()));
        let snap = || stats.snapshot().cache;
        let megaflow_packets =
            || workers.query(|dp| dp.cache.iter().map(|(_, _, m)| m.packets).sum::<u64>()).unwrap()[0].unwrap();

        // 1. Software.
        assert!(wire(8).iter().all(|v| *v == Verdict::ToHost { mark: None, queue: None }));
        let software = drain(&out, 8);
        assert_eq!(software.len(), 8);
        assert!(software.iter().all(|b| *b == software[0]));
        assert_eq!(software[0][22], 63, "routed: TTL decremented");

        // 2. Full offload: the NIC forwards the same bytes; the worker sees nothing.
        offload.round(&workers, &flows);
        let s = offload.lock().stats();
        // simple_router does not read the ingress port: a rule on each port.
        assert_eq!((s.created_full, s.rules_full, model.total_rules()), (2, 2, 2), "{s:?}");
        let rx_before = stats.snapshot().rx_packets;
        assert!(wire(8).iter().all(|v| *v == Verdict::Forwarded { port: dout }));
        assert_eq!(forwarded(), software, "the NIC's copies are the software's");
        assert!(drain(&out, 0).is_empty());
        assert_eq!(stats.snapshot().rx_packets, rx_before);
        offload.round(&workers, &flows);
        assert_eq!(offload.lock().stats().hw_packets, 8);
        assert_eq!(megaflow_packets(), 16, "hardware hits credited to the megaflow");

        // 3. Partial offload (the NIC cannot execute actions): marked packets skip
        // the lookup and leave as in software.
        execute(&workers, offload.lock().clear());
        assert_eq!(model.total_rules(), 0);
        model.set_config(ModelConfig { transfer: false, ..ModelConfig::default() });
        wire(1);
        drain(&out, 1);
        offload.round(&workers, &flows);
        let s = offload.lock().stats();
        assert_eq!((s.created_partial, s.rules_partial, s.rules_full), (2, 2, 0), "{s:?}");
        assert_eq!(s.failures.get("validate_full:ENOTSUP"), Some(&2), "{s:?}");
        let before = snap();
        let verdicts = wire(8);
        assert!(verdicts.iter().all(|v| matches!(v, Verdict::ToHost { mark: Some(_), .. })), "{verdicts:?}");
        assert_eq!(drain(&out, 8), software);
        let after = snap();
        assert_eq!(after.mark_hits - before.mark_hits, 8);
        assert_eq!(
            (after.emc_hits, after.dpcls_hits, after.upcalls),
            (before.emc_hits, before.dpcls_hits, before.upcalls)
        );

        // 4. A route change: the rules are gone when the write returns.
        let t = l.ir.tables.iter().position(|t| t.name == "ipv4_lpm").unwrap() as u32;
        let mut route = l.rt.tables[t as usize]
            .entries()
            .map(|(_, e)| e.clone())
            .find(|e| e.key == vec![KeyValue::Lpm { value: 0x0a00010a, prefix: 32 }])
            .unwrap();
        if let EntryAction::Call(c) = &mut route.action {
            c.args[1] = 1;
        }
        workers.apply(vec![Op::Modify { table: t, entry: route }].into()).unwrap();
        assert_eq!(model.total_rules(), 0, "no stale rule after the write returned");
        assert_eq!(offload.lock().stats().destroyed_by_writes, 2);
        assert!(wire(4).iter().all(|v| *v == Verdict::ToHost { mark: None, queue: None }));
        assert!(drain(&out, 0).is_empty(), "the new route leads to port 1, which has no tx queue here");

        // 5. A megaflow that leaves takes its rules along.
        offload.round(&workers, &flows);
        assert_eq!(model.total_rules(), 2, "the new route's megaflow is offloaded");
        workers.query(|dp| dp.flush()).unwrap();
        offload.round(&workers, &flows);
        assert_eq!(model.total_rules(), 0);
        assert_eq!(offload.lock().stats().rules_partial, 0);

        stop.store(true, Ordering::Relaxed);
        drop(h.join().into_queues());
        drop(tx);
    }
}

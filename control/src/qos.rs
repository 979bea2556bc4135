//! The share balancer: every `[qos] rebalance_interval_ms`, read what each worker
//! was offered on every configured P4 meter cell and port policer, and move each
//! worker's share of those rates to where the traffic is
//! ([`sluice_fastpath::qos::Balancer`] decides; its module doc says how and at what
//! cost). Runs on its own thread on the control core, only with two workers or more.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use sluice_fastpath::mailbox::MailboxError;
use sluice_fastpath::pipeline::Stage;
use sluice_fastpath::qos::{Balancer, Offered, RateId, Share};
use sluice_fastpath::stats::WorkerStats;
use sluice_fastpath::worker::Io;

use crate::background::Background;
use crate::workers::Workers;

/// What the balancer has done.
#[derive(Debug, Default)]
pub struct BalancerStats {
    /// Rounds run.
    pub rounds: AtomicU64,
    /// Shares moved (one per worker and rate).
    pub moves: AtomicU64,
    /// Rounds skipped because a worker did not answer (mailbox full or stuck).
    pub skipped: AtomicU64,
    /// Shared rates tracked now.
    pub tracked: AtomicU64,
}

/// One round: read every worker's offered counts, and post the shares that move.
/// Returns the number of shares moved.
pub fn round(workers: &Workers, balancer: &mut Balancer) -> Result<usize, MailboxError> {
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Vec<Offered>)>();
    workers.run_each(|w| {
        let tx = tx.clone();
        Box::new(move |stage: &mut Stage, io: &mut Io, _: &WorkerStats| {
            let mut v = Vec::new();
            if let Stage::Pipeline(p) = stage {
                p.datapath().rt.meter_offered(&mut v);
            }
            io.policers_offered(&mut v);
            let _ = tx.send((w, v));
        })
    })?;
    drop(tx);
    let mut reports = vec![Vec::new(); workers.len()];
    for (w, v) in rx.try_iter() {
        reports[w] = v;
    }
    let moves = balancer.round(&reports);
    let n: usize = moves.iter().map(Vec::len).sum();
    if n == 0 {
        return Ok(0);
    }
    let mut moves = moves.into_iter();
    workers.run_each(|_| {
        let m: Vec<(RateId, Share)> = moves.next().unwrap_or_default();
        Box::new(move |stage: &mut Stage, io: &mut Io, _: &WorkerStats| {
            let now = dpdk_sys::lcore::rdtsc();
            for (id, share) in m {
                // A rate reconfigured since the report keeps its new even share
                // until the next round; reshaping never fails for a valid config.
                let _ = match (id, &mut *stage) {
                    (RateId::Meter { meter, cell }, Stage::Pipeline(p)) => {
                        p.datapath().rt.set_cell_share(meter, cell, share, now)
                    }
                    (RateId::Meter { .. }, _) => Ok(()),
                    _ => io.set_policer_share(id, share, now),
                };
            }
        })
    })?;
    Ok(n)
}

/// Run rounds every `interval` on a thread until the handle is dropped.
pub fn spawn(workers: Arc<Workers>, interval: Duration, stats: Arc<BalancerStats>) -> std::io::Result<Background> {
    Background::spawn("sluice-qos", move |stop| {
        let mut b = Balancer::new(workers.len());
        while !stop.is_stopped() {
            std::thread::sleep(interval);
            match round(&workers, &mut b) {
                Ok(n) => {
                    stats.rounds.fetch_add(1, Relaxed);
                    stats.moves.fetch_add(n as u64, Relaxed);
                }
                Err(_) => {
                    stats.skipped.fetch_add(1, Relaxed);
                }
            }
            stats.tracked.store(b.tracked() as u64, Relaxed);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workers::{StageRecipe, WorkerLink};
    use dpdk_sys::eal::Eal;
    use dpdk_sys::mbuf::{Burst, Mbuf};
    use dpdk_sys::mempool::{Mempool, DEFAULT_DATA_ROOM};
    use dpdk_sys::port::{Port, PortConf};
    use sluice_fastpath::cache::event_ring::EventHub;
    use sluice_fastpath::cache::CacheConfig;
    use sluice_fastpath::mailbox::mailbox;
    use sluice_fastpath::qos::policer::{Policer, PolicerConfig};
    use sluice_fastpath::stats::DropReason;
    use sluice_fastpath::worker::{self, RxAssignment, Worker};
    use sluice_fastpath::xconnect::CrossConnect;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A ring port whose tx loops back to its rx, with `txqs` tx queues.
    fn ring(eal: &'static Eal, name: &str, pool: &'static Mempool, txqs: u16) -> Arc<Port> {
        let mut p = Port::attach(eal, name, &format!("net_ring_{name},nodeaction=r_{name}:0:CREATE")).unwrap();
        let conf = PortConf { tx_queues: txqs, rx_descriptors: 1024, tx_descriptors: 1024, ..Default::default() };
        p.configure(pool, &conf).unwrap();
        p.start().unwrap();
        Arc::new(p)
    }

    fn send(port: &Arc<Port>, pool: &Mempool, n: usize) {
        let mut tx = port.tx_queue(0).unwrap();
        let mut left = n;
        while left > 0 {
            let mut b = Burst::new();
            for _ in 0..left.min(32) {
                b.push(Mbuf::from_bytes(pool, &[0u8; 60]).unwrap()).unwrap();
            }
            let n = b.len();
            left -= n;
            assert_eq!(tx.tx_burst(&mut b), n);
        }
    }

    fn drain(port: &Arc<Port>, want: usize) -> usize {
        let mut rx = port.rx_queue(0).unwrap();
        let (mut b, mut got) = (Burst::new(), 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while got < want && std::time::Instant::now() < deadline {
            got += rx.rx_burst(&mut b);
            b.free_all();
        }
        // Anything beyond what was expected would show up now.
        std::thread::sleep(Duration::from_millis(20));
        got + rx.rx_burst(&mut b)
    }

    /// Two running workers; port 0's only rx queue is polled by worker 1. Its
    /// ingress policer starts with an even share on each; the balancer moves the
    /// share to worker 1 from the counts alone (no timing). Then policers with a
    /// tiny rate drop what they must, counted as `policed` per port and direction.
    #[test]
    fn the_balancer_moves_a_policer_share_to_the_worker_with_the_traffic() {
        let eal = Eal::for_tests("sluice-control-test");
        let pool = Mempool::create(eal, "qos_bal", 4095, 0, DEFAULT_DATA_ROOM, None).unwrap();
        let (a, b) = (ring(eal, "qa", pool, 1), ring(eal, "qb", pool, 2));
        let recipe = StageRecipe {
            pool,
            p4_ports: vec![0, 1],
            cache: CacheConfig::default(),
            tsc_hz: dpdk_sys::lcore::tsc_hz(eal),
            cpu_port: None,
        };
        let (mut links, mut boxes, mut stats) = (vec![], vec![], vec![]);
        for _ in 0..2 {
            let (poster, mb) = mailbox();
            let events = EventHub::new(16);
            let s = Arc::new(WorkerStats::new(2));
            links.push(WorkerLink { poster, stats: Arc::clone(&s), events });
            boxes.push(mb);
            stats.push(s);
        }
        let (workers, _uplink) = Workers::new(links, recipe);
        let stop = Arc::new(AtomicBool::new(false));
        let core = core_affinity::get_core_ids().unwrap().last().unwrap().id;
        let mut handles = vec![];
        for (w, mb) in boxes.into_iter().enumerate() {
            let rx = if w == 1 { vec![RxAssignment { port: 0, queue: a.rx_queue(0).unwrap() }] } else { vec![] };
            // Worker 1 forwards: it gets tx queue 0, the one the ring loops back.
            let tx = vec![None, Some(b.tx_queue(1 - w as u16).unwrap())];
            let stage = Stage::XConnect(CrossConnect::new(2, &[(0, 1)]));
            let worker = Worker::new(w, rx, tx, stage, Arc::clone(&stats[w])).with_mailbox(mb);
            handles.push(worker::spawn(eal, core, worker, Arc::clone(&stop)).unwrap());
        }
        let install = |ingress: Option<PolicerConfig>, egress: Option<PolicerConfig>| {
            let now = dpdk_sys::lcore::rdtsc();
            let mk = |c: Option<PolicerConfig>| c.map(|c| Policer::new(c, Share::even(2), now).unwrap());
            let (i, e) = (mk(ingress), mk(egress));
            workers
                .run_each(|_| {
                    Box::new(move |_: &mut Stage, io: &mut Io, st: &WorkerStats| {
                        io.set_ingress_policer(0, i);
                        io.egress.set_policer(1, e, st);
                    })
                })
                .unwrap();
        };
        let shares = || {
            let (tx, rx) = std::sync::mpsc::channel();
            workers
                .run_each(|w| {
                    let tx = tx.clone();
                    Box::new(move |_: &mut Stage, io: &mut Io, _: &WorkerStats| {
                        let _ = tx.send((w, io.ingress_policer(0).map(|p| p.share().fraction())));
                    })
                })
                .unwrap();
            let mut v: Vec<_> = rx.try_iter().collect();
            v.sort_by_key(|(w, _)| *w);
            v.into_iter().map(|(_, s)| s.unwrap()).collect::<Vec<_>>()
        };
        // Plenty of rate: nothing is dropped, only counted as offered.
        install(Some(PolicerConfig { cir: 1 << 30, cbs: 1 << 20, ..Default::default() }), None);
        assert_eq!(shares(), vec![0.5, 0.5]);
        let mut balancer = Balancer::new(2);
        assert_eq!(round(&workers, &mut balancer).unwrap(), 0, "the first round only takes the counts");
        send(&a, pool, 40);
        assert_eq!(drain(&b, 40), 40);
        assert_eq!(round(&workers, &mut balancer).unwrap(), 2, "both workers' shares moved");
        let s = shares();
        assert!(s[1] > 0.99 && s[0] < 0.01, "the share went to the worker polling the port: {s:?}");
        assert_eq!(balancer.tracked(), 1);

        // One packet per second, bursts of 2: of 100 packets, 2 pass in each
        // direction's policer (ingress first: it sees all 100).
        let tiny = PolicerConfig { cir: 1, cbs: 2, packets: true, ..Default::default() };
        install(Some(tiny), None);
        // Worker 1 got an even share again: 1 packet of burst (the floor: one packet).
        send(&a, pool, 100);
        let passed = drain(&b, 1);
        assert!((1..=2).contains(&passed), "{passed} passed the ingress policer");
        let (pi, pe) = stats[1].port_policed_packets(0);
        assert_eq!((pi as usize + passed, pe), (100, 0));
        install(None, Some(PolicerConfig { cir: 1, cbs: 2, packets: true, ..Default::default() }));
        send(&a, pool, 100);
        let passed = drain(&b, 1);
        assert!((1..=2).contains(&passed), "{passed} passed the egress policer");
        assert_eq!(stats[1].port_policed_packets(1).1 as usize + passed, 100);
        assert_eq!(stats[1].drops(DropReason::Policed), stats[1].port_policed_packets(0).0 + (100 - passed) as u64);
        // Removed: everything passes.
        install(None, None);
        send(&a, pool, 50);
        assert_eq!(drain(&b, 50), 50);
        let _ = round(&workers, &mut balancer).unwrap();
        assert_eq!(balancer.tracked(), 0, "no policer left to balance");

        stop.store(true, Ordering::Relaxed);
        for h in handles {
            drop(h.join().into_queues());
        }
    }
}

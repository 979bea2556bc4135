//! Many workers sharing one meter, simulated: real `rte_meter` cells (one per
//! simulated worker, as in the switch), the real [`Balancer`], a synthetic clock.
//! Checks the passed rates against the configured ones for 1 to 64 workers under
//! even, one-hot, skewed and shifting traffic, from 64 to 1500-byte packets.

use dpdk_sys::eal::Eal;

use super::{Balancer, Offered, RateId, Share};
use crate::p4::meters::{MeterCell, MeterConfig};

const ROUND_MS: u64 = 10;
const SECS: u64 = 8;
/// Not measured: the first second (every bucket starts full).
const WARMUP: u64 = 1;

#[derive(Debug, Clone, Copy)]
enum Traffic {
    /// Uniform over the workers.
    Even,
    /// Everything on the last worker.
    OneHot,
    /// Worker w gets weight 1/(w+1).
    Skewed,
    /// 90% on a hot worker that changes every second, 10% uniform.
    Shifting,
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn pick(t: Traffic, n: usize, sec: u64, cdf: &[f64], rng: &mut Rng) -> usize {
    match t {
        Traffic::Even => rng.below(n as u64) as usize,
        Traffic::OneHot => n - 1,
        Traffic::Skewed => {
            let x = rng.below(1 << 30) as f64 / (1u64 << 30) as f64;
            cdf.iter().position(|c| x < *c).unwrap_or(n - 1)
        }
        Traffic::Shifting => {
            if rng.below(10) == 0 {
                rng.below(n as u64) as usize
            } else {
                (sec as usize * 7 + 3) % n
            }
        }
    }
}

/// Green and green+yellow bytes per second passed after the warm-up, and the share
/// changes made per round on average.
fn run(n: usize, t: Traffic, len: u64, cfg: MeterConfig, balance: bool) -> (f64, f64, f64) {
    let hz = dpdk_sys::lcore::tsc_hz(Eal::for_tests("sluice-fastpath-test"));
    let t0 = 1_000_000u64;
    let mut cells: Vec<MeterCell> =
        (0..n).map(|_| MeterCell::new(cfg, Some(Share::even(n)), t0, true).unwrap()).collect();
    let mut balancer = Balancer::new(n);
    let id = RateId::Meter { meter: 0, cell: 0 };
    // Offered: twice the peak rate.
    let pps = 2 * cfg.pir / len;
    let weights: Vec<f64> = (0..n).map(|w| 1.0 / (w + 1) as f64).collect();
    let total: f64 = weights.iter().sum();
    let cdf: Vec<f64> = weights.iter().scan(0.0, |a, w| Some(*a + w / total)).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut green, mut yellow) = (0u64, 0u64);
    let (mut changes, mut rounds) = (0usize, 0usize);
    let per_round = pps * ROUND_MS / 1000;
    for i in 0..pps * SECS {
        let now = t0 + i * hz / pps;
        let sec = i / pps;
        let w = pick(t, n, sec, &cdf, &mut rng);
        let c = cells[w].check(now, len as u32, len);
        if sec >= WARMUP {
            match c {
                0 => green += len,
                1 => yellow += len,
                _ => {}
            }
        }
        if balance && i % per_round == per_round - 1 {
            let reports: Vec<Vec<Offered>> = cells
                .iter()
                .map(|c| vec![Offered { id, units: c.offered(), packets: c.packets(), share: c.share }])
                .collect();
            let out = balancer.round(&reports);
            rounds += 1;
            for (w, moves) in out.into_iter().enumerate() {
                for (_, s) in moves {
                    cells[w].reshare(s, now).unwrap();
                    changes += 1;
                }
            }
        }
    }
    let secs = (SECS - WARMUP) as f64;
    (green as f64 / secs, (green + yellow) as f64 / secs, changes as f64 / rounds.max(1) as f64)
}

#[test]
fn a_shared_meter_passes_its_rates_within_5_percent_from_1_to_64_workers() {
    // 1 MB/s committed, 2 MB/s peak; bursts of 20 kB.
    let cfg = MeterConfig { cir: 1_000_000, cburst: 20_000, pir: 2_000_000, pburst: 20_000 };
    let mut report = String::new();
    for n in [1usize, 2, 16, 64] {
        for t in [Traffic::Even, Traffic::OneHot, Traffic::Skewed, Traffic::Shifting] {
            for len in [64u64, 1500] {
                if n == 64 && len == 64 && !matches!(t, Traffic::Shifting) {
                    // The slowest combination (most packets, most workers): the
                    // hardest case, shifting, stands for the others.
                    continue;
                }
                let (g, gy, moves) = run(n, t, len, cfg, true);
                let (eg, egy) = (g / cfg.cir as f64 - 1.0, gy / cfg.pir as f64 - 1.0);
                report += &format!(
                    "{n:>3} workers {t:?} {len} B: green {:+.2}%, green+yellow {:+.2}%, {moves:.1} moves/round\n",
                    eg * 100.0,
                    egy * 100.0
                );
                assert!(eg.abs() < 0.05 && egy.abs() < 0.05, "{n} workers, {t:?}, {len} B:\n{report}");
            }
        }
    }
    eprintln!("{report}");
}

#[test]
fn without_the_balancer_one_hot_traffic_gets_only_its_even_share() {
    let cfg = MeterConfig { cir: 1_000_000, cburst: 20_000, pir: 1_000_000, pburst: 20_000 };
    let (g, _, _) = run(16, Traffic::OneHot, 1500, cfg, false);
    assert!((g / (cfg.cir as f64 / 16.0) - 1.0).abs() < 0.05, "{g} B/s");
    let (g, _, _) = run(16, Traffic::OneHot, 1500, cfg, true);
    assert!((g / cfg.cir as f64 - 1.0).abs() < 0.05, "{g} B/s");
}

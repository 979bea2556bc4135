//! Rates shared by workers: P4 meters and port policers, and how their rates are
//! split between the workers that enforce them.
//!
//! # How a rate is shared
//! Every worker owns its own `rte_meter` state for every meter cell and policer (no
//! atomics, no shared cache line on the packet path). Each worker's copy enforces a
//! [`Share`] of the configured rates; the shares of one rate add up to the whole.
//! A worker's share follows its traffic: every [`Balancer`] round (control, every
//! `[qos] rebalance_interval_ms`, 10 ms by default) reads, per worker, the units each
//! rate was *offered* (all colors: what arrived, not what passed). Once a window of
//! rounds holds enough packets to go by (see [`Balancer`]), each worker gets
//!
//! ```text
//!   share(w) = floor + (1 - n * floor) * demand(w) / sum of demands,   floor = 1 / (128 n)
//! ```
//!
//! When the offered total exceeds the rate, every worker is over its share and passes
//! exactly its share: together, the rate. When it is below, every worker's share
//! covers its demand: everything passes. Either way the sum is what one meter seeing
//! all the traffic would pass, up to the floors of idle workers (at most 1/128 of the
//! rate in all) and the rounds after a sudden shift of traffic between workers (the
//! new worker starts at its floor and reaches its share within two or three rounds).
//! Reshaping a worker's marker keeps its buckets' tokens ([`dpdk_sys::meter::Meter::reshape`]):
//! a share change neither refills nor empties a bucket.
//!
//! Bursts are split like rates, except that a worker's bucket never holds less than
//! one maximum-size frame ([`MAX_FRAME`] bytes, or one packet for packets meters), or
//! the configured burst when that is smaller: so a worker can always pass a packet,
//! at the price of a larger aggregate burst (up to `n` frames) right after an idle
//! period.
//!
//! # What it costs
//! On the packet path, nothing beyond the meter check itself (a few tens of cycles).
//! Per round, per worker: one mailbox command that copies out the offered counts of
//! the configured cells and policers it has, and, when some share moved by more than
//! 1/512, one command that reshapes those cells (an `rte_meter` profile computation
//! each). Control's work per round is linear in cells × workers. With 16 or 64
//! workers this stays under a millisecond per round; the simulation in `sim_tests`
//! runs 16, 32 and 64 workers with one-hot, skewed and shifting traffic and checks
//! the passed rate against the configured one.

pub mod policer;
#[cfg(test)]
mod sim_tests;

use std::collections::HashMap;

/// The largest frame a worker's bucket always has room for (bytes meters).
pub const MAX_FRAME: u64 = 9216;

/// Fixed-point parts of a whole share.
const ONE: u32 = 1 << 20;

/// Idle workers keep `1 / (FLOOR_DIV * n)` of a rate each.
const FLOOR_DIV: u64 = 128;

/// Shares move only when one changes by more than `ONE / HYSTERESIS`.
const HYSTERESIS: u32 = 512;

/// A worker's part of a rate, in 2^-20 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Share(u32);

impl Share {
    /// All of it (one worker).
    pub const WHOLE: Share = Share(ONE);

    /// An even split between `n` workers.
    pub fn even(n: usize) -> Share {
        Share(ONE / n.clamp(1, ONE as usize) as u32)
    }

    /// `parts` 2^-20ths (capped at the whole).
    pub fn from_parts(parts: u32) -> Share {
        Share(parts.min(ONE))
    }

    /// The parts, in 2^-20ths.
    pub fn parts(self) -> u32 {
        self.0
    }

    /// As a fraction.
    pub fn fraction(self) -> f64 {
        self.0 as f64 / ONE as f64
    }

    /// This share of a rate (never below 1).
    pub fn rate(self, v: u64) -> u64 {
        ((v as u128 * self.0 as u128) >> 20).max(1) as u64
    }

    /// This share of a burst, never below one `max_unit` (or the whole burst when
    /// that is smaller): a worker can always pass a packet.
    pub fn burst(self, v: u64, max_unit: u64) -> u64 {
        self.rate(v).max(v.min(max_unit)).max(1)
    }
}

/// A rate the workers share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RateId {
    /// A P4 meter's cell: `cell` is the index (indexed meters) or the entry handle
    /// (direct meters).
    Meter {
        /// The meter's id in the program.
        meter: u32,
        /// The cell.
        cell: u32,
    },
    /// A port's ingress policer (by port index).
    PortIn(u32),
    /// A port's egress policer (by port index).
    PortOut(u32),
}

/// What a worker reports for one rate: units and packets offered so far
/// (cumulative; a reconfigured rate starts again from 0) and its share now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offered {
    /// The rate.
    pub id: RateId,
    /// Units offered (bytes, or packets for packets meters), cumulative.
    pub units: u64,
    /// Packets offered, cumulative.
    pub packets: u64,
    /// The worker's share now.
    pub share: Share,
}

/// The long window closes when it holds this many packets per worker on average,
const WINDOW_PACKETS: u64 = 32;
/// or after this many rounds.
const WINDOW_ROUNDS: u32 = 100;
/// The recent window is judged once its busiest worker has this many packets.
const RECENT_PACKETS: u64 = 16;

/// Offered units and packets per worker over some rounds.
#[derive(Debug, Default, Clone)]
struct Window {
    units: Vec<u64>,
    packets: Vec<u64>,
    rounds: u32,
}

impl Window {
    fn new(n: usize) -> Window {
        Window { units: vec![0; n], packets: vec![0; n], rounds: 0 }
    }

    fn add(&mut self, w: usize, units: u64, packets: u64) {
        self.units[w] += units;
        self.packets[w] += packets;
    }

    fn clear(&mut self) {
        self.units.fill(0);
        self.packets.fill(0);
        self.rounds = 0;
    }
}

#[derive(Debug, Default)]
struct RateState {
    /// Last cumulative (units, packets) per worker.
    last: Vec<(u64, u64)>,
    /// Demand to split by.
    long: Window,
    /// Demand to catch shifts by.
    recent: Window,
    /// A shift was just made from the recent window (which still held traffic from
    /// before it): the long window closes early, at a quarter of its size.
    settling: bool,
}

/// Splits every shared rate between the workers by their demand. Lives on the
/// control side; pure (fed with reports, returns share changes) so it can be
/// simulated.
///
/// Demand is measured over windows of rounds, not single rounds: a split made from a
/// handful of packets per worker would follow noise (a worker given more than it is
/// offered wastes rate that another worker lacks). Two windows:
/// * the long one closes when it holds [`WINDOW_PACKETS`] packets per worker on
///   average, or after [`WINDOW_ROUNDS`] rounds: every share is set from it;
/// * the recent one is judged whenever its busiest worker has [`RECENT_PACKETS`]
///   packets: a worker offered at least twice its share of the traffic there
///   (traffic moved to it) gets its part of that window at once, taken from the
///   others in proportion to their shares, and the long window starts again (and
///   closes at a quarter of its size, once: the recent window still held traffic
///   from before the shift, so the first estimate is rough).
#[derive(Debug)]
pub struct Balancer {
    workers: usize,
    rates: HashMap<RateId, RateState>,
}

impl Balancer {
    /// A balancer for `workers` workers.
    pub fn new(workers: usize) -> Balancer {
        Balancer { workers, rates: HashMap::new() }
    }

    /// Rates it tracks now.
    pub fn tracked(&self) -> usize {
        self.rates.len()
    }

    /// One round: `reports[w]` is worker `w`'s report. Returns, per worker, the
    /// shares to set (only those that moved). Rates no worker reports are forgotten.
    pub fn round(&mut self, reports: &[Vec<Offered>]) -> Vec<Vec<(RateId, Share)>> {
        let n = self.workers;
        let mut out = vec![Vec::new(); n];
        let mut seen: HashMap<RateId, Vec<Option<&Offered>>> = HashMap::new();
        for (w, report) in reports.iter().enumerate().take(n) {
            for o in report {
                seen.entry(o.id).or_insert_with(|| vec![None; n])[w] = Some(o);
            }
        }
        self.rates.retain(|id, _| seen.contains_key(id));
        for (id, per_worker) in seen {
            let st = self.rates.entry(id).or_default();
            let now: Vec<(u64, u64)> = per_worker.iter().map(|r| r.map_or((0, 0), |o| (o.units, o.packets))).collect();
            if st.last.len() != n {
                (st.last, st.long, st.recent) = (now, Window::new(n), Window::new(n));
                continue;
            }
            for (w, (&(u, p), &(lu, lp))) in now.iter().zip(&st.last).enumerate() {
                // A reconfigured rate counts again from 0.
                let (du, dp) = (if u >= lu { u - lu } else { u }, if p >= lp { p - lp } else { p });
                st.long.add(w, du, dp);
                st.recent.add(w, du, dp);
            }
            st.last = now;
            st.long.rounds += 1;
            let current: Vec<Share> = per_worker.iter().map(|r| r.map_or(Share::even(n), |o| o.share)).collect();
            let size = if st.settling { WINDOW_PACKETS / 4 } else { WINDOW_PACKETS };
            let target = if st.long.packets.iter().sum::<u64>() >= size * n as u64 || st.long.rounds >= WINDOW_ROUNDS {
                let t = split(&st.long.units, &current);
                st.settling = false;
                st.long.clear();
                st.recent.clear();
                t
            } else if st.recent.packets.iter().max().is_some_and(|p| *p >= RECENT_PACKETS) {
                let t = shift(&st.recent.units, &st.recent.packets, &current);
                if t.is_some() {
                    // The traffic changed: what the long window holds is history.
                    st.long.clear();
                    st.settling = true;
                }
                st.recent.clear();
                t
            } else {
                None
            };
            if let Some(target) = target {
                for w in 0..n {
                    if per_worker[w].is_some() && target[w] != current[w] {
                        out[w].push((id, target[w]));
                    }
                }
            }
        }
        for o in &mut out {
            o.sort_by_key(|(id, _)| *id);
        }
        out
    }
}

/// Shares when traffic moved: workers offered at least twice their share of
/// `recent` (units), with at least half of [`RECENT_PACKETS`] packets there (not
/// noise), get their part of it; the others keep theirs, scaled to what is left.
/// `None` when no worker is in that case.
fn shift(recent: &[u64], packets: &[u64], current: &[Share]) -> Option<Vec<Share>> {
    let n = recent.len();
    let total: u64 = recent.iter().sum();
    if n < 2 || total == 0 {
        return None;
    }
    let floor = ONE as u64 / (FLOOR_DIV * n as u64);
    let spread = ONE as u64 - floor * n as u64;
    let frac = |w: usize| recent[w] as f64 / total as f64;
    let moved: Vec<bool> =
        (0..n).map(|w| packets[w] >= RECENT_PACKETS / 2 && frac(w) >= 2.0 * current[w].fraction()).collect();
    if !moved.contains(&true) {
        return None;
    }
    let mut t = vec![0u64; n];
    for w in (0..n).filter(|w| moved[*w]) {
        t[w] = floor + (spread as u128 * recent[w] as u128 / total as u128) as u64;
    }
    let left = (ONE as u64).saturating_sub(t.iter().sum::<u64>());
    let others: Vec<usize> = (0..n).filter(|w| !moved[*w]).collect();
    let others_now: u64 = others.iter().map(|w| current[*w].0 as u64).sum();
    let others_floor = floor * others.len() as u64;
    for w in &others {
        let above = (current[*w].0 as u64).saturating_sub(floor);
        let pool = left.saturating_sub(others_floor);
        let above_now = others_now.saturating_sub(others_floor).max(1);
        t[*w] = floor + (pool as u128 * above as u128 / above_now as u128) as u64;
    }
    // Rounding: the rest to (or from) the busiest worker.
    let busiest = (0..n).max_by_key(|w| recent[*w]).unwrap_or(0);
    let sum: u64 = t.iter().sum();
    t[busiest] = (t[busiest] + ONE as u64).saturating_sub(sum);
    Some(t.into_iter().map(|p| Share(p as u32)).collect())
}

/// The shares for `demand` (see the module doc), or `None` when they would not move
/// `current` by more than the hysteresis (or there is no demand to go by).
pub fn split(demand: &[u64], current: &[Share]) -> Option<Vec<Share>> {
    let n = demand.len();
    if n == 0 {
        return None;
    }
    if n == 1 {
        return (current[0] != Share::WHOLE).then(|| vec![Share::WHOLE]);
    }
    let total: u128 = demand.iter().map(|d| *d as u128).sum();
    if total == 0 {
        return None;
    }
    let floor = ONE as u64 / (FLOOR_DIV * n as u64);
    let spread = (ONE as u64 - floor * n as u64) as u128;
    let mut t: Vec<u32> = demand.iter().map(|d| (floor as u128 + spread * *d as u128 / total) as u32).collect();
    // Rounding leaves a few parts: to the busiest worker.
    let rest = ONE - t.iter().sum::<u32>();
    let busiest = (0..n).max_by_key(|w| demand[*w]).unwrap_or(0);
    t[busiest] += rest;
    let moved = t.iter().zip(current).any(|(a, b)| a.abs_diff(b.0) > ONE / HYSTERESIS);
    moved.then(|| t.into_iter().map(Share).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_scale_rates_and_keep_a_frame_of_burst() {
        let quarter = Share::even(4);
        assert_eq!(quarter.rate(1000), 250);
        assert_eq!(quarter.rate(1), 1, "never below one unit");
        assert_eq!(quarter.burst(100_000, MAX_FRAME), 25_000);
        assert_eq!(Share::even(64).burst(100_000, MAX_FRAME), MAX_FRAME, "one jumbo frame at least");
        assert_eq!(Share::even(64).burst(3000, MAX_FRAME), 3000, "or the whole burst if smaller");
        assert_eq!(Share::even(64).burst(100, 1), 1, "packets meters: one packet");
        assert_eq!(Share::WHOLE.fraction(), 1.0);
    }

    #[test]
    fn shift_moves_share_to_where_traffic_went_and_keeps_the_rest_in_proportion() {
        let cur = [Share::from_parts(ONE / 2), Share::from_parts(ONE / 4), Share::from_parts(ONE / 4), Share(0)];
        let t = shift(&[0, 10, 10, 80], &[0, 10, 10, 80], &cur).unwrap();
        assert_eq!(t.iter().map(|s| s.0).sum::<u32>(), ONE);
        assert!((t[3].fraction() - 0.8).abs() < 0.01, "{t:?}");
        assert!((t[0].fraction() - 0.1).abs() < 0.01 && (t[1].fraction() - 0.05).abs() < 0.01, "{t:?}");
        assert_eq!(shift(&[50, 25, 25, 0], &[50, 25, 25, 0], &cur), None, "nobody above twice its share");
        assert_eq!(shift(&[0, 10, 10, 80], &[0, 10, 10, 7], &cur), None, "7 packets could be noise");
    }

    #[test]
    fn split_follows_demand_with_a_floor_and_adds_up() {
        let even = vec![Share::even(4); 4];
        let t = split(&[1000, 0, 0, 0], &even).unwrap();
        assert_eq!(t.iter().map(|s| s.0).sum::<u32>(), ONE);
        assert_eq!(t[1].0, ONE / 512, "idle workers keep 1/(128 n)");
        assert!(t[0].fraction() > 0.99);
        let t = split(&[300, 100, 100, 0], &even).unwrap();
        assert_eq!(t.iter().map(|s| s.0).sum::<u32>(), ONE);
        assert!((t[0].fraction() - 0.6).abs() < 0.01, "{t:?}");
        assert_eq!(split(&[0, 0, 0, 0], &even), None, "no demand: no move");
        assert_eq!(split(&[5, 5, 5, 5], &even), None, "within the hysteresis: no move");
        assert_eq!(split(&[7], &[Share::even(2)]), Some(vec![Share::WHOLE]));
    }

    #[test]
    fn balancer_windows_use_deltas_and_forget_vanished_rates() {
        let id = RateId::Meter { meter: 0, cell: 3 };
        let mut b = Balancer::new(2);
        let rep = |a: u64, b: u64, s: [Share; 2]| {
            let o = |units: u64, share| Offered { id, units, packets: units / 100, share };
            vec![vec![o(a, s[0])], vec![o(b, s[1])]]
        };
        let even = [Share::even(2); 2];
        // The first round only records where the counts start.
        assert_eq!(b.round(&rep(5000, 5000, even)), vec![vec![], vec![]]);
        // 10 new packets on worker 1 only: not enough to go by yet.
        assert_eq!(b.round(&rep(5000, 6000, even)), vec![vec![], vec![]]);
        // 20 now, all of them above its share: traffic moved, worker 1 gets the rate.
        let out = b.round(&rep(5000, 7000, even));
        let (s0, s1) = (out[0][0].1, out[1][0].1);
        assert!(s1.fraction() > 0.99 && s0.0 + s1.0 == ONE, "{out:?}");
        // A reset counter (reconfigured cell) counts from zero. The shift restarted
        // the long window, which now closes early: 3200 units against 6400.
        let out = b.round(&rep(3200, 7000 + 6400, [s0, s1]));
        assert!((out[0][0].1.fraction() - 0.335).abs() < 0.005, "{out:?}");
        // Gone from every report: forgotten.
        assert_eq!(b.round(&[vec![], vec![]]), vec![vec![], vec![]]);
        assert_eq!(b.tracked(), 0);
    }
}

//! Table entry idle timeouts (P4Runtime v1.5 § "Idle-timeout"), kept by control.
//!
//! Workers only count hits per entry (the megaflows credit the entries they stand
//! for, [`sluice_fastpath::cache::datapath::Datapath::replay`]). Control
//! sweeps: it sums each idle-capable table's hit counts over the workers and
//! compares them with the previous sweep's. An entry whose count moved was hit (its
//! last-hit time is the sweep's); an entry with a non-zero `idle_timeout_ns` not hit
//! for that long is reported in an `IdleTimeoutNotification` and its timer restarts,
//! so an entry that stays idle is reported again every TTL, as the spec asks.
//!
//! Precision: a hit is seen at the first sweep after it, so notifications come
//! between TTL and TTL + one sweep interval after the last hit, and
//! `time_since_last_hit` is exact to one sweep interval (reads sweep first, so they
//! are exact to the worker's last counter credit). The interval follows the
//! shortest TTL: a quarter of it, between [`MIN_SWEEP`] and [`MAX_SWEEP`]. A sweep
//! costs each worker one copy of the hit counts of the idle-capable tables.
//!
//! A modify keeps the entry's timer (as BMv2 does) and takes the new TTL. Entries
//! are tracked by handle; control sees every insert and delete (the write path
//! reports them), so a reused handle starts afresh.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sluice_fastpath::p4::ir::TableId;
use sluice_fastpath::p4::tables::{Handle, Runtime};

/// Shortest sweep interval.
pub const MIN_SWEEP: Duration = Duration::from_millis(50);
/// Longest sweep interval.
pub const MAX_SWEEP: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Slot {
    ttl: Duration,
    hits: u64,
    last_hit: Instant,
    timer: Instant,
}

/// Idle state of the entries of the idle-capable tables.
#[derive(Debug, Clone, Default)]
pub struct IdleTracker {
    tables: BTreeMap<TableId, Vec<Option<Slot>>>,
    /// Notified entries, in all.
    pub notified: u64,
}

impl IdleTracker {
    /// A tracker for `tables`, with the entries `rt` already holds (from now).
    pub fn new(tables: impl IntoIterator<Item = TableId>, rt: &Runtime, now: Instant) -> Self {
        let mut t = IdleTracker { tables: tables.into_iter().map(|t| (t, vec![])).collect(), notified: 0 };
        let ids: Vec<TableId> = t.tables.keys().copied().collect();
        for id in ids {
            for (h, e) in rt.tables[id as usize].entries() {
                let ttl = e.meta.as_ref().map_or(0, |m| m.idle_timeout_ns);
                t.inserted(id, h, ttl, now);
            }
        }
        t
    }

    /// Whether `table` supports idle timeouts.
    pub fn tracks(&self, table: TableId) -> bool {
        self.tables.contains_key(&table)
    }

    /// The idle-capable tables.
    pub fn tables(&self) -> Vec<TableId> {
        self.tables.keys().copied().collect()
    }

    fn slot(&mut self, table: TableId, h: Handle) -> Option<&mut Option<Slot>> {
        let slots = self.tables.get_mut(&table)?;
        if slots.len() <= h as usize {
            slots.resize(h as usize + 1, None);
        }
        slots.get_mut(h as usize)
    }

    /// Entry `h` of `table` was inserted with `ttl_ns` (its hit count starts at 0).
    pub fn inserted(&mut self, table: TableId, h: Handle, ttl_ns: i64, now: Instant) {
        if let Some(s) = self.slot(table, h) {
            let ttl = Duration::from_nanos(ttl_ns.max(0) as u64);
            *s = Some(Slot { ttl, hits: 0, last_hit: now, timer: now });
        }
    }

    /// Entry `h` of `table` now has `ttl_ns` (its timer runs on).
    pub fn modified(&mut self, table: TableId, h: Handle, ttl_ns: i64, now: Instant) {
        match self.slot(table, h) {
            Some(Some(s)) => s.ttl = Duration::from_nanos(ttl_ns.max(0) as u64),
            Some(None) => self.inserted(table, h, ttl_ns, now),
            None => {}
        }
    }

    /// Entry `h` of `table` was deleted.
    pub fn deleted(&mut self, table: TableId, h: Handle) {
        if let Some(s) = self.slot(table, h) {
            *s = None;
        }
    }

    /// The hit counts of `table`'s entries by handle (summed over the workers), seen
    /// at `now`: moved counts are hits.
    pub fn observe(&mut self, table: TableId, hits: &[u64], now: Instant) {
        let Some(slots) = self.tables.get_mut(&table) else { return };
        for (s, n) in slots.iter_mut().zip(hits) {
            if let Some(s) = s {
                if *n != s.hits {
                    s.hits = *n;
                    s.last_hit = now;
                    s.timer = now;
                }
            }
        }
    }

    /// Entries idle for their TTL at `now` (each timer restarts).
    pub fn expired(&mut self, now: Instant) -> Vec<(TableId, Handle)> {
        let mut out = vec![];
        for (t, slots) in self.tables.iter_mut() {
            for (h, s) in slots.iter_mut().enumerate() {
                if let Some(s) = s {
                    if !s.ttl.is_zero() && now.saturating_duration_since(s.timer) >= s.ttl {
                        s.timer = now;
                        out.push((*t, h as Handle));
                    }
                }
            }
        }
        self.notified += out.len() as u64;
        out
    }

    /// Time since entry `h` of `table` was last hit (or inserted), if tracked.
    pub fn since_last_hit(&self, table: TableId, h: Handle, now: Instant) -> Option<Duration> {
        let s = self.tables.get(&table)?.get(h as usize)?.as_ref()?;
        Some(now.saturating_duration_since(s.last_hit))
    }

    /// How often to sweep: a quarter of the shortest TTL, clamped; `None` when no
    /// entry has a TTL.
    pub fn interval(&self) -> Option<Duration> {
        let ttl = self.tables.values().flatten().flatten().map(|s| s.ttl).filter(|t| !t.is_zero()).min()?;
        Some((ttl / 4).clamp(MIN_SWEEP, MAX_SWEEP))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn tracker() -> IdleTracker {
        IdleTracker { tables: BTreeMap::from([(3, vec![])]), notified: 0 }
    }

    #[test]
    fn an_idle_entry_is_reported_every_ttl_until_hit() {
        let mut t = tracker();
        let t0 = Instant::now();
        t.inserted(3, 0, 2_000_000_000, t0);
        t.inserted(3, 1, 0, t0);
        assert_eq!(t.interval(), Some(ms(500)));
        t.observe(3, &[0, 5], t0 + ms(1000));
        assert!(t.expired(t0 + ms(1999)).is_empty());
        assert_eq!(t.expired(t0 + ms(2000)), vec![(3, 0)], "TTL 0 never expires");
        assert!(t.expired(t0 + ms(3000)).is_empty());
        assert_eq!(t.expired(t0 + ms(4000)), vec![(3, 0)], "reported again after another TTL");
        // A hit restarts the timer.
        t.observe(3, &[1, 5], t0 + ms(4500));
        assert!(t.expired(t0 + ms(6000)).is_empty());
        assert_eq!(t.expired(t0 + ms(6500)), vec![(3, 0)]);
        assert_eq!(t.since_last_hit(3, 0, t0 + ms(7000)), Some(ms(2500)));
        assert_eq!(t.since_last_hit(3, 1, t0 + ms(7000)), Some(ms(6000)));
        assert_eq!(t.notified, 3);
    }

    #[test]
    fn modify_keeps_the_timer_delete_and_reinsert_restart_it() {
        let mut t = tracker();
        let t0 = Instant::now();
        t.inserted(3, 0, 1_000_000_000, t0);
        t.modified(3, 0, 3_000_000_000, t0 + ms(900));
        assert!(t.expired(t0 + ms(2000)).is_empty());
        assert_eq!(t.expired(t0 + ms(3000)), vec![(3, 0)]);
        t.deleted(3, 0);
        assert!(t.expired(t0 + ms(9000)).is_empty());
        assert_eq!(t.since_last_hit(3, 0, t0), None);
        // The handle is reused: a fresh entry with a fresh hit count.
        t.inserted(3, 0, 1_000_000_000, t0 + ms(9000));
        t.observe(3, &[0], t0 + ms(9500));
        assert_eq!(t.since_last_hit(3, 0, t0 + ms(9600)), Some(ms(600)));
        // Untracked tables and handles are ignored.
        t.inserted(4, 0, 1, t0);
        t.observe(4, &[1], t0);
        assert!(!t.tracks(4));
        assert_eq!(t.interval(), Some(ms(250)));
    }
}

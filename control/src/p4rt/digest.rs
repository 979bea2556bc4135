//! Digests to the controller: the samples the workers send up become `DigestList`s
//! under the rules of each digest's `DigestEntry` config (P4Runtime v1.5 §
//! "DigestEntry", "DigestList", "DigestListAck").
//!
//! * A digest with no `DigestEntry` is not delivered: its samples are counted
//!   (`unconfigured`) and dropped, as in PI/BMv2.
//! * Samples of one digest gather in a pending list, sent when it holds
//!   `max_list_size` samples or its oldest has waited `max_timeout_ns` (0: at once).
//! * No duplicates: data already pending, or sent in a list not yet acknowledged
//!   (`DigestListAck` with its `list_id`) and whose `ack_timeout_ns` has not run out,
//!   is not sent again (`suppressed`). An ack releases its list's data; so does the
//!   ack timeout.
//!   With `ack_timeout_ns` 0 nothing is held once sent (the spec: "the cache must
//!   always be an empty set"). Acks of unknown lists (already acked, timed out) are
//!   ignored and counted (`stale_acks`); an ack for a digest with no `DigestEntry`
//!   is an error (the spec's INVALID_ARGUMENT stream error).
//! * `list_id`s are unique for the life of the server, across digests.
//!
//! Time is a parameter ([`Instant`]), so the rules are tested without sleeping. The
//! uplink thread ([`super::P4rt::spawn_uplink`]) feeds samples, calls
//! [`Digests::poll`] at [`Digests::next_deadline`], and hands lists to the primary.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_fastpath::p4::ir::Value;
use sluice_proto::p4::v1 as pb;

use super::codec;
use super::schema::{DigestSchema, Schema};

/// A digest's configuration (`DigestEntry.Config`), validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestConfig {
    /// Longest a sample waits in a pending list.
    pub max_timeout: Duration,
    /// Samples per list at most.
    pub max_list_size: usize,
    /// How long sent data stays suppressed without an ack.
    pub ack_timeout: Duration,
}

impl DigestConfig {
    /// From the wire, or why not.
    pub fn from_pb(c: &pb::digest_entry::Config) -> Result<Self, String> {
        if c.max_timeout_ns < 0 || c.ack_timeout_ns < 0 {
            return Err("max_timeout_ns and ack_timeout_ns must not be negative".into());
        }
        if c.max_list_size < 0 {
            return Err("max_list_size must not be negative".into());
        }
        Ok(DigestConfig {
            max_timeout: Duration::from_nanos(c.max_timeout_ns as u64),
            // 0: no limit of our own beyond the list the timeout gathers.
            max_list_size: if c.max_list_size == 0 { usize::MAX } else { c.max_list_size as usize },
            ack_timeout: Duration::from_nanos(c.ack_timeout_ns as u64),
        })
    }

    /// Back to the wire.
    pub fn to_pb(self) -> pb::digest_entry::Config {
        pb::digest_entry::Config {
            max_timeout_ns: self.max_timeout.as_nanos() as i64,
            max_list_size: if self.max_list_size == usize::MAX { 0 } else { self.max_list_size as i32 },
            ack_timeout_ns: self.ack_timeout.as_nanos() as i64,
        }
    }
}

/// Counters of the digest engine.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DigestStats {
    /// Samples received from the workers.
    pub samples: u64,
    /// Samples of digests with no DigestEntry (dropped).
    pub unconfigured: u64,
    /// Samples whose data was pending or unacknowledged (dropped as duplicates).
    pub suppressed: u64,
    /// DigestLists generated.
    pub lists: u64,
    /// Acks that released a list.
    pub acks: u64,
    /// Lists whose ack timeout ran out.
    pub ack_timeouts: u64,
    /// Acks of lists not awaiting one (ignored).
    pub stale_acks: u64,
}

#[derive(Debug)]
struct Pending {
    since: Instant,
    samples: Vec<Vec<Value>>,
}

#[derive(Debug)]
struct Sent {
    deadline: Instant,
    samples: Vec<Vec<Value>>,
}

/// The digest engine of the running pipeline.
#[derive(Debug, Default)]
pub struct Digests {
    schema: Option<Arc<Schema>>,
    configs: BTreeMap<u32, DigestConfig>,
    pending: HashMap<u32, Pending>,
    /// Lists sent and not yet acknowledged, by (digest id, list id).
    sent: HashMap<(u32, u64), Sent>,
    /// Data pending or unacknowledged: (digest id, values).
    held: HashSet<(u32, Vec<Value>)>,
    next_list: u64,
    /// Counters.
    pub stats: DigestStats,
}

impl Digests {
    /// Follow the running pipeline: its schema and digest configs. A new program
    /// (another schema) starts from nothing; the same one keeps what is pending and
    /// unacknowledged for digests that stay configured.
    pub fn configure(&mut self, schema: Option<&Arc<Schema>>, configs: &BTreeMap<u32, DigestConfig>) {
        let same = match (&self.schema, schema) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            self.pending.clear();
            self.sent.clear();
            self.held.clear();
        }
        self.schema = schema.cloned();
        self.configs = configs.clone();
        let keep = |id: &u32| configs.contains_key(id);
        self.pending.retain(|id, _| keep(id));
        self.sent.retain(|(id, _), _| keep(id));
        self.held.retain(|(id, _)| keep(id));
    }

    fn digest_of(&self, list: u32) -> Option<(u32, &DigestSchema)> {
        self.schema.as_ref()?.digest_of_list(list)
    }

    /// A sample of learn list `list` from a worker; the lists it completes.
    pub fn sample(&mut self, list: u32, values: Vec<Value>, now: Instant) -> Vec<pb::DigestList> {
        self.stats.samples += 1;
        let Some((id, _)) = self.digest_of(list) else {
            self.stats.unconfigured += 1;
            return vec![];
        };
        let Some(cfg) = self.configs.get(&id).copied() else {
            self.stats.unconfigured += 1;
            return vec![];
        };
        let key = (id, values);
        if self.held.contains(&key) {
            self.stats.suppressed += 1;
            return vec![];
        }
        let p = self.pending.entry(id).or_insert_with(|| Pending { since: now, samples: vec![] });
        p.samples.push(key.1.clone());
        self.held.insert(key);
        let full = p.samples.len() >= cfg.max_list_size || cfg.max_timeout.is_zero();
        if full {
            self.flush(id, now).into_iter().collect()
        } else {
            vec![]
        }
    }

    /// Send digest `id`'s pending list now.
    fn flush(&mut self, id: u32, now: Instant) -> Option<pb::DigestList> {
        let p = self.pending.remove(&id)?;
        let cfg = self.configs.get(&id).copied()?;
        let (_, d) = self.digest_of_id(id)?;
        let data = p.samples.iter().map(|v| d.encode(v)).collect();
        self.next_list += 1;
        let list_id = self.next_list;
        if cfg.ack_timeout.is_zero() {
            // "If ack_timeout_ns is set to 0, the cache must always be an empty set."
            self.release(id, p.samples);
        } else {
            self.sent.insert((id, list_id), Sent { deadline: now + cfg.ack_timeout, samples: p.samples });
        }
        self.stats.lists += 1;
        Some(pb::DigestList { digest_id: id, list_id, data, timestamp: codec::now_ns() })
    }

    fn digest_of_id(&self, id: u32) -> Option<(u32, &DigestSchema)> {
        self.schema.as_ref()?.digests.get(&id).map(|d| (id, d))
    }

    fn release(&mut self, id: u32, samples: Vec<Vec<Value>>) {
        for v in samples {
            self.held.remove(&(id, v));
        }
    }

    /// A `DigestListAck`: release the list's data, or say why not.
    pub fn ack(&mut self, digest_id: u32, list_id: u64) -> Result<(), String> {
        match self.sent.remove(&(digest_id, list_id)) {
            Some(s) => {
                self.stats.acks += 1;
                self.release(digest_id, s.samples);
                Ok(())
            }
            None if self.configs.contains_key(&digest_id) => {
                // Already acked, timed out, or from before a config change: harmless.
                self.stats.stale_acks += 1;
                Ok(())
            }
            None => Err(format!("digest {digest_id} is not configured (no DigestEntry): list {list_id} not acked")),
        }
    }

    /// Lists whose time came, and data whose ack timed out released.
    pub fn poll(&mut self, now: Instant) -> Vec<pb::DigestList> {
        let due: Vec<u32> = self
            .pending
            .iter()
            .filter(|(id, p)| self.configs.get(id).is_some_and(|c| now >= p.since + c.max_timeout))
            .map(|(id, _)| *id)
            .collect();
        let out = due.into_iter().filter_map(|id| self.flush(id, now)).collect();
        let expired: Vec<(u32, u64)> = self.sent.iter().filter(|(_, s)| now >= s.deadline).map(|(k, _)| *k).collect();
        for k in expired {
            let s = self.sent.remove(&k).expect("listed above");
            self.stats.ack_timeouts += 1;
            self.release(k.0, s.samples);
        }
        out
    }

    /// When [`Digests::poll`] has something to do next, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        let pending = self.pending.iter().filter_map(|(id, p)| self.configs.get(id).map(|c| p.since + c.max_timeout));
        pending.chain(self.sent.values().map(|s| s.deadline)).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(cfg: DigestConfig) -> Digests {
        let mut s = Schema::default();
        s.digests.insert(77, DigestSchema { name: "L2_digest".into(), shape: Default::default() });
        s.digest_by_list.insert(0, 77);
        let mut d = Digests::default();
        d.configure(Some(&Arc::new(s)), &BTreeMap::from([(77, cfg)]));
        d
    }

    fn cfg(max_timeout_ms: u64, size: usize, ack_ms: u64) -> DigestConfig {
        DigestConfig {
            max_timeout: Duration::from_millis(max_timeout_ms),
            max_list_size: size,
            ack_timeout: Duration::from_millis(ack_ms),
        }
    }

    fn bits(d: &pb::P4Data) -> Vec<Vec<u8>> {
        use pb::p4_data::Data;
        match &d.data {
            Some(Data::Struct(s)) => s
                .members
                .iter()
                .map(|m| match &m.data {
                    Some(Data::Bitstring(b)) => b.clone(),
                    other => panic!("member {other:?}"),
                })
                .collect(),
            other => panic!("data {other:?}"),
        }
    }

    #[test]
    fn one_sample_lists_go_at_once_with_canonical_struct_data() {
        let mut d = engine(cfg(0, 1, 1000));
        let t = Instant::now();
        let l = d.sample(0, vec![0x0000_0a0b_0c0d, 3], t);
        assert_eq!(l.len(), 1);
        assert_eq!((l[0].digest_id, l[0].list_id), (77, 1));
        assert_eq!(bits(&l[0].data[0]), vec![vec![0x0a, 0x0b, 0x0c, 0x0d], vec![3]]);
        assert!(l[0].timestamp > 0);
        let l = d.sample(0, vec![1, 4], t);
        assert_eq!(l[0].list_id, 2, "list ids are unique");
    }

    #[test]
    fn unacknowledged_data_is_not_sent_again_until_ack_or_ack_timeout() {
        let mut d = engine(cfg(0, 1, 1000));
        let t = Instant::now();
        let first = d.sample(0, vec![5, 1], t);
        assert!(d.sample(0, vec![5, 1], t + Duration::from_millis(10)).is_empty());
        assert_eq!(d.stats.suppressed, 1);
        d.ack(77, first[0].list_id).unwrap();
        d.ack(77, first[0].list_id).unwrap();
        assert_eq!((d.stats.acks, d.stats.stale_acks), (1, 1), "a second ack is ignored, counted");
        assert_eq!(d.sample(0, vec![5, 1], t + Duration::from_millis(20)).len(), 1);
        // Without an ack, the ack timeout releases the data.
        assert!(d.sample(0, vec![5, 1], t + Duration::from_millis(500)).is_empty());
        assert_eq!(d.next_deadline(), Some(t + Duration::from_millis(1020)));
        assert!(d.poll(t + Duration::from_millis(1020)).is_empty());
        assert_eq!(d.stats.ack_timeouts, 1);
        assert_eq!(d.sample(0, vec![5, 1], t + Duration::from_millis(1021)).len(), 1);
    }

    #[test]
    fn lists_fill_to_max_size_or_leave_at_max_timeout() {
        let mut d = engine(cfg(100, 3, 1000));
        let t = Instant::now();
        assert!(d.sample(0, vec![1, 1], t).is_empty());
        assert!(d.sample(0, vec![2, 1], t + Duration::from_millis(1)).is_empty());
        assert!(d.sample(0, vec![2, 1], t + Duration::from_millis(2)).is_empty(), "pending data is held too");
        let l = d.sample(0, vec![3, 1], t + Duration::from_millis(3));
        assert_eq!(l[0].data.len(), 3);
        assert!(d.sample(0, vec![4, 1], t + Duration::from_millis(4)).is_empty());
        assert_eq!(d.next_deadline(), Some(t + Duration::from_millis(104)));
        assert!(d.poll(t + Duration::from_millis(103)).is_empty());
        let l = d.poll(t + Duration::from_millis(104));
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].data.len(), 1);
    }

    #[test]
    fn ack_timeout_zero_holds_nothing_once_sent() {
        let mut d = engine(cfg(100, 2, 0));
        let t = Instant::now();
        assert!(d.sample(0, vec![1, 1], t).is_empty());
        assert!(d.sample(0, vec![1, 1], t).is_empty(), "no duplicates within a list");
        assert_eq!(d.sample(0, vec![2, 1], t)[0].data.len(), 2);
        assert_eq!(d.sample(0, vec![1, 1], t).len(), 0, "pending again, not suppressed");
        assert_eq!(d.stats.suppressed, 1);
        assert_eq!(d.next_deadline(), Some(t + Duration::from_millis(100)));
    }

    #[test]
    fn unconfigured_digests_and_unknown_lists_deliver_nothing() {
        let mut d = engine(cfg(0, 1, 1000));
        let t = Instant::now();
        assert!(d.sample(9, vec![1], t).is_empty());
        d.configure(d.schema.clone().as_ref(), &BTreeMap::new());
        assert!(d.sample(0, vec![1, 1], t).is_empty());
        assert_eq!(d.stats.unconfigured, 2);
        assert!(d.ack(77, 1).unwrap_err().contains("not configured"));
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn configs_are_checked() {
        let bad = |t, s, a| {
            DigestConfig::from_pb(&pb::digest_entry::Config { max_timeout_ns: t, max_list_size: s, ack_timeout_ns: a })
        };
        assert!(bad(-1, 1, 0).is_err());
        assert!(bad(0, -1, 0).is_err());
        assert!(bad(0, 1, -5).is_err());
        let c = bad(10, 0, 20).unwrap();
        assert_eq!(c.max_list_size, usize::MAX);
        assert_eq!(c.to_pb().max_list_size, 0);
    }
}

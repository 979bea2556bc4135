//! Test support: random but *relevant* runtime state and packets for any compiled
//! program, for differential property tests (the megaflow cache's result must equal the
//! full pipeline's on every packet, across state changes).
//!
//! Such a test finds bugs only where packets hit entries, take selector members, meet
//! multicast groups and cross the parser's branches. Uniformly random keys and bytes
//! almost never do, so everything here draws from small [`Pools`] of values shared by
//! the entries and the packets: a table entry keyed on a MAC, an IPv4 address or a port
//! is keyed on one of the few MACs, addresses or ports the packets carry. Entries favour
//! each pool's first (hot) value, so that the ids one table writes (a next-hop id, a
//! VLAN, a port) meet the keys of the tables after it.
//!
//! # What it generates
//! * [`random_entries`]: entries for every table with a key (keys drawn by field width,
//!   LPM prefixes from {0, 8, 16, 24, width}, ternary masks all ones, upper half or
//!   wildcard, ranges, distinct priorities), action profile members and selector groups
//!   (weights, watch ports) for indirect tables, some default actions, multicast groups,
//!   clone sessions and parser value set members.
//! * [`random_packet`]: Ethernet frames from templates (0–2 VLAN tags; IPv4 with good
//!   or bad checksum, options, TTL 0/1/2/64, fragments; IPv6; ARP; MPLS (1–4 labels); the mytunnel
//!   header; TCP, UDP, ICMP; VXLAN on UDP 4789 with an inner frame), CPU port packet-outs
//!   with their 2-byte header, and damage: truncation at any length, corrupted bytes and
//!   pure garbage.
//! * [`mutate_state`]: one state change, and what it touched ([`Change`]), so a cache
//!   test can invalidate and compare.
//!
//! Everything is deterministic in the seed of [`Rng`]: the same seed and program give
//! the same state and packets (hash maps are read in sorted key order), so a failing
//! case is reproduced by its seed.
//!
//! # Limitations
//! * Values are chosen by field width, not meaning: a 32-bit next-hop id draws from the
//!   IPv4 pool. That is what makes ids written by one table meet the keys of the next,
//!   but a key no packet field of its width resembles never matches (bmv2's `counter`
//!   test keys on the 32-bit `packet_length`).
//! * Deep pipelines are reached less: each table a packet must hit divides the share
//!   that gets further (fabric's `routing_v4` needs a `fwd_classifier` hit that sets
//!   the IPv4 forwarding type). More entries per table reach deeper.
//! * The JSON has no `@defaultonly`/`@tableonly` annotations, so any action of a table
//!   may run from an entry or as its default, which a P4Runtime server might refuse.
//! * Tables with `const entries` are left alone (P4Runtime cannot write them).

use super::ir::*;
use super::meters::{MeterCell, MeterConfig};
use super::tables::{Entry, EntryAction, Member, Replica, Runtime};
use crate::qos::Share;

/// A deterministic xorshift64* generator (no dependency, stable across versions, so a
/// seed reproduces a failure forever).
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; nearby seeds give unrelated streams).
    pub fn new(seed: u64) -> Rng {
        // splitmix64 scrambles the seed; xorshift needs a nonzero state.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(z.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// An index into a collection of `len` items (`len > 0`).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.index(xs.len())]
    }

    /// One element of a non-empty pool, the first (the pool's hot value) drawn a third
    /// of the time and all uniformly otherwise: values meet more often than uniformly
    /// drawn ones, and the rest still show up.
    pub fn pick_hot<T: Copy>(&mut self, pool: &[T]) -> T {
        if self.chance(1, 3) {
            pool[0]
        } else {
            self.pick(pool)
        }
    }

    /// One element of a slice, by reference; `None` when it is empty.
    pub fn pick_opt<'a, T>(&mut self, xs: &'a [T]) -> Option<&'a T> {
        (!xs.is_empty()).then(|| &xs[self.index(xs.len())])
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// A uniformly random `width`-bit value.
    pub fn bits(&mut self, width: u32) -> Value {
        (((self.next_u64() as Value) << 64) | self.next_u64() as Value) & mask_of(width)
    }

    /// A random byte.
    fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// `n` random bytes appended to `out`.
    fn fill(&mut self, n: usize, out: &mut Vec<u8>) {
        out.extend((0..n).map(|_| self.byte()));
    }
}

/// v1model's CPU port in the ONOS programs (packet-outs arrive on it).
pub const CPU_PORT: u32 = 255;

/// Longest packet [`random_packet`] makes.
pub const MAX_PACKET: usize = 300;

/// The values entries and packets are made of. Small on purpose: the fewer values, the
/// more packets hit the entries.
///
/// Entries draw the first value of each pool (its hot value) more often
/// ([`Rng::pick_hot`]), so that the ids one table writes meet the keys of the next more
/// often. Packets draw uniformly: against uniform packets, an entry's field matches with
/// probability 1/len whatever the entry's skew, and hot packets would only make the
/// first tables swallow everything.
pub struct Pools {
    /// MAC addresses (48 bits).
    pub macs: Vec<Value>,
    /// IPv4 addresses (32 bits): some share a /24, some a /16.
    pub ipv4: Vec<Value>,
    /// IPv6 addresses (128 bits).
    pub ipv6: Vec<Value>,
    /// L4 ports (16 bits), VXLAN's and GTP-U's included.
    pub l4_ports: Vec<Value>,
    /// P4 ports (9 bits), the CPU port included.
    pub ports: Vec<Value>,
    /// Ether types (16 bits): the ones the corpus parsers branch on, and a few more.
    pub ether_types: Vec<Value>,
    /// VLAN ids (12 bits).
    pub vlans: Vec<Value>,
    /// MPLS labels (20 bits).
    pub mpls_labels: Vec<Value>,
    /// Values of narrow fields (2–8 bits: protocols, types, ids), masked to the width.
    pub small: Vec<Value>,
}

fn mac(s: &str) -> Value {
    s.split(':').fold(0, |a, x| (a << 8) | Value::from(u8::from_str_radix(x, 16).expect("hex byte")))
}

fn ip4(s: &str) -> Value {
    Value::from(u32::from(s.parse::<std::net::Ipv4Addr>().expect("an IPv4 address")))
}

fn ip6(s: &str) -> Value {
    u128::from(s.parse::<std::net::Ipv6Addr>().expect("an IPv6 address"))
}

impl Default for Pools {
    fn default() -> Pools {
        Pools {
            // 02:...: a first byte (2) the small pool has, for programs whose key is
            // the first byte of the frame.
            macs: ["00:00:00:00:00:01", "00:00:00:00:00:02", "02:00:00:00:aa:01", "ff:ff:ff:ff:ff:ff"]
                .map(mac)
                .to_vec(),
            ipv4: ["10.0.0.1", "10.0.0.2", "10.0.1.1", "10.1.0.1", "192.168.0.1", "172.16.0.1"].map(ip4).to_vec(),
            ipv6: ["2001:db8::1", "2001:db8::2", "fe80::1"].map(ip6).to_vec(),
            l4_ports: vec![80, 53, 443, 4789, 1234, 2152],
            ports: vec![1, 2, 3, 4, 0, CPU_PORT as Value],
            // fabric: 0x9100 (QinQ), 0x8847; mytunnel: 0x1212.
            ether_types: vec![0x0800, 0x86dd, 0x8100, 0x88a8, 0x9100, 0x8847, 0x0806, 0x88cc, 0x1212],
            vlans: vec![1, 2, 3, 4],
            mpls_labels: vec![1, 2, 3, 100],
            small: vec![1, 0, 2, 3, 6, 17],
        }
    }
}

impl Pools {
    /// A value for a `width`-bit key field or action parameter: from the pool of that
    /// width (16 bits: ether types or L4 ports), else a small or a random value.
    pub fn value(&self, rng: &mut Rng, width: u32) -> Value {
        let v = match width {
            48 => rng.pick_hot(&self.macs),
            32 => rng.pick_hot(&self.ipv4),
            128 => rng.pick_hot(&self.ipv6),
            16 if rng.chance(1, 2) => rng.pick_hot(&self.ether_types),
            16 => rng.pick_hot(&self.l4_ports),
            9 => rng.pick_hot(&self.ports),
            12 => rng.pick_hot(&self.vlans),
            20 => rng.pick_hot(&self.mpls_labels),
            // Flags and validity bits: both values alike.
            1 => rng.below(2) as Value,
            2..=8 => rng.pick_hot(&self.small),
            _ if rng.chance(1, 2) => rng.pick_hot(&self.small),
            _ => rng.bits(width),
        };
        v & mask_of(width)
    }

    /// A multicast group or clone session id: what a 16-bit or 32-bit action parameter
    /// (fabric's `group_id`, `clone_id`) or a small field would carry.
    fn session_id(&self, rng: &mut Rng) -> u32 {
        let width = rng.pick(&[8, 16, 32]);
        self.value(rng, width) as u32
    }

    /// 1–3 replicas on pool ports with small replication ids (rarely none).
    fn replicas(&self, rng: &mut Rng) -> Vec<Replica> {
        if rng.chance(1, 16) {
            return vec![];
        }
        let mut out: Vec<Replica> = vec![];
        for _ in 0..1 + rng.below(3) {
            let r = (rng.pick(&self.ports) as u32, rng.below(4) as u32);
            if !out.contains(&r) {
                out.push(r);
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------

/// What a state change touched (what a cache must invalidate for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A table's entries or default action.
    Table(TableId),
    /// An action profile's members or groups.
    Profile(u32),
    /// The multicast groups.
    Mcast,
    /// The clone sessions.
    Clone,
    /// A parser value set.
    ValueSet(u32),
    /// Port liveness (selector watch ports).
    Ports,
}

/// Tables whose entries the control plane writes: those with a key and no `const
/// entries`.
fn writable(ir: &Ir) -> Vec<TableId> {
    (0..ir.tables.len() as TableId)
        .filter(|t| {
            let d = &ir.tables[*t as usize];
            !d.keys.is_empty() && d.const_entries.is_empty()
        })
        .collect()
}

/// Tables whose default action the control plane may change: not const, and not one of
/// p4c's keyless `tbl_*` tables (straight-line code, invisible to P4Runtime).
fn default_settable(ir: &Ir) -> Vec<TableId> {
    (0..ir.tables.len() as TableId)
        .filter(|t| {
            let d = &ir.tables[*t as usize];
            let compiler_made = d.keys.is_empty() && d.name.rsplit('.').next().is_some_and(|n| n.starts_with("tbl_"));
            !d.default_const && !compiler_made && !d.actions.is_empty()
        })
        .collect()
}

/// Action profiles some writable table uses.
fn used_profiles(ir: &Ir) -> Vec<u32> {
    let mut v: Vec<u32> = writable(ir).iter().filter_map(|t| ir.tables[*t as usize].profile).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The actions a profile's members may run: those of the tables that use it.
fn profile_actions(ir: &Ir, profile: u32) -> Vec<ActionId> {
    let mut v: Vec<ActionId> =
        ir.tables.iter().filter(|t| t.profile == Some(profile)).flat_map(|t| t.actions.iter().copied()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Sorted keys of a map (hash map order would make the choices depend on the process).
fn sorted_ids<V>(m: &std::collections::HashMap<u32, V>) -> Vec<u32> {
    let mut v: Vec<u32> = m.keys().copied().collect();
    v.sort_unstable();
    v
}

/// An id no key of `m` has.
fn fresh_id<V>(m: &std::collections::HashMap<u32, V>) -> u32 {
    m.keys().max().map_or(1, |x| x + 1)
}

fn random_args(ir: &Ir, action: ActionId, rng: &mut Rng, pools: &Pools) -> Vec<Value> {
    ir.actions[action as usize].params.iter().map(|(_, w)| pools.value(rng, *w)).collect()
}

fn random_call(ir: &Ir, def: &TableDef, rng: &mut Rng, pools: &Pools) -> ActionCall {
    let slot = rng.index(def.actions.len());
    ActionCall { slot: slot as u32, args: random_args(ir, def.actions[slot], rng, pools).into() }
}

/// What an entry (or default) of table `t` runs: an action call for a direct table; an
/// existing member or group for an indirect one (`None` while the profile is empty).
fn random_action(ir: &Ir, rt: &Runtime, t: TableId, rng: &mut Rng, pools: &Pools) -> Option<EntryAction> {
    let def = &ir.tables[t as usize];
    match (def.kind, def.profile) {
        (TableKind::Indirect, Some(p)) => {
            let ps = &rt.profiles[p as usize];
            let groups = sorted_ids(&ps.groups);
            let members = sorted_ids(&ps.members);
            if !groups.is_empty() && (members.is_empty() || rng.chance(1, 2)) {
                Some(EntryAction::Group(rng.pick(&groups)))
            } else if !members.is_empty() {
                Some(EntryAction::Member(rng.pick(&members)))
            } else {
                None
            }
        }
        _ if def.actions.is_empty() => None,
        _ => Some(EntryAction::Call(random_call(ir, def, rng, pools))),
    }
}

/// A random match for every key field. A ternary, range or optional field is a
/// wildcard 1 time in 3; in tables with more than 3 of them (ACLs) only 1–3 of them are
/// constrained: all would match no packet, none would shadow every entry below.
fn random_key(def: &TableDef, rng: &mut Rng, pools: &Pools) -> Vec<KeyValue> {
    let loose: Vec<usize> = (0..def.keys.len())
        .filter(|i| matches!(def.keys[*i].kind, MatchKind::Ternary | MatchKind::Range | MatchKind::Optional))
        .collect();
    let mut wild: Vec<bool> = def.keys.iter().map(|_| rng.chance(1, 3)).collect();
    if loose.len() > 3 {
        loose.iter().for_each(|i| wild[*i] = true);
        for _ in 0..1 + rng.below(3) {
            wild[rng.pick(&loose)] = false;
        }
    }
    def.keys
        .iter()
        .zip(wild)
        .map(|(k, wild)| {
            let w = k.width;
            let full = mask_of(w);
            match k.kind {
                MatchKind::Exact => KeyValue::Exact(pools.value(rng, w)),
                MatchKind::Lpm => {
                    let prefix = rng.pick(&[0, 8, 16, 24, w]).min(w);
                    let mask = full & !mask_of(w - prefix);
                    KeyValue::Lpm { value: pools.value(rng, w) & mask, prefix }
                }
                MatchKind::Ternary => {
                    let mask = if wild {
                        0
                    } else if rng.chance(2, 3) {
                        full
                    } else {
                        full & !mask_of(w - w / 2)
                    };
                    KeyValue::Ternary { value: pools.value(rng, w) & mask, mask }
                }
                MatchKind::Optional => {
                    let mask = if wild { 0 } else { full };
                    KeyValue::Ternary { value: pools.value(rng, w) & mask, mask }
                }
                MatchKind::Range if wild => KeyValue::Range { low: 0, high: full },
                MatchKind::Range => {
                    let (a, b) = (pools.value(rng, w), pools.value(rng, w));
                    let b = if rng.chance(1, 4) { a } else { b };
                    KeyValue::Range { low: a.min(b), high: a.max(b) }
                }
            }
        })
        .collect()
}

/// A priority no entry of table `t` has (ties would make the winner depend on
/// insertion order), or 0 where the table takes none.
fn fresh_priority(ir: &Ir, rt: &Runtime, t: TableId, rng: &mut Rng) -> i32 {
    if !ir.tables[t as usize].needs_priority() {
        return 0;
    }
    let used: Vec<i32> = rt.tables[t as usize].entries().map(|(_, e)| e.priority).collect();
    for _ in 0..32 {
        let p = 1 + rng.below(1000) as i32;
        if !used.contains(&p) {
            return p;
        }
    }
    used.iter().max().map_or(1, |m| m + 1)
}

/// Try to insert one random entry into table `t`; whether the runtime took it.
fn insert_random(ir: &Ir, rt: &mut Runtime, t: TableId, rng: &mut Rng, pools: &Pools) -> bool {
    let Some(action) = random_action(ir, rt, t, rng, pools) else { return false };
    let key = random_key(&ir.tables[t as usize], rng, pools);
    let priority = fresh_priority(ir, rt, t, rng);
    rt.insert(ir, t, Entry { key, priority, action, meta: None }).is_ok()
}

/// Set a random default action on table `t` (now and then back to the program's).
fn set_random_default(ir: &Ir, rt: &mut Runtime, t: TableId, rng: &mut Rng, pools: &Pools) -> bool {
    let a = if rng.chance(1, 4) { None } else { random_action(ir, rt, t, rng, pools) };
    rt.set_default(ir, t, a).is_ok()
}

/// Add a member, or replace one (1 in 3, when there are any).
fn random_member(ir: &Ir, rt: &mut Runtime, p: u32, rng: &mut Rng, pools: &Pools) -> bool {
    let actions = profile_actions(ir, p);
    if actions.is_empty() {
        return false;
    }
    let members = &rt.profiles[p as usize].members;
    let id = if !members.is_empty() && rng.chance(1, 3) { rng.pick(&sorted_ids(members)) } else { fresh_id(members) };
    let action = rng.pick(&actions);
    let args = random_args(ir, action, rng, pools);
    rt.set_member(ir, p, id, Member { action, args }).is_ok()
}

/// Add a selector group, or replace one (1 in 3): 1–3 members (rarely none), weights
/// 1–4, a watch port on 1 member in 4.
fn random_group(ir: &Ir, rt: &mut Runtime, p: u32, rng: &mut Rng, pools: &Pools) -> bool {
    let ps = &rt.profiles[p as usize];
    let members = sorted_ids(&ps.members);
    if members.is_empty() {
        return false;
    }
    let id = if !ps.groups.is_empty() && rng.chance(1, 3) {
        rng.pick(&sorted_ids(&ps.groups))
    } else {
        fresh_id(&ps.groups)
    };
    let n = if rng.chance(1, 16) { 0 } else { 1 + rng.below(3) };
    let mut list: Vec<(u32, u32, Option<u32>)> = vec![];
    for _ in 0..n {
        let m = rng.pick(&members);
        if list.iter().all(|(x, _, _)| *x != m) {
            let watch = rng.chance(1, 4).then(|| rng.pick(&pools.ports) as u32);
            list.push((m, 1 + rng.below(4) as u32, watch));
        }
    }
    rt.set_group(ir, p, id, list).is_ok()
}

/// Add or replace a multicast group.
fn random_mcast(rt: &mut Runtime, rng: &mut Rng, pools: &Pools) {
    let id = pools.session_id(rng);
    rt.mcast.insert(id, pools.replicas(rng));
}

/// Add or replace a clone session (truncating now and then).
fn random_clone_session(rt: &mut Runtime, rng: &mut Rng, pools: &Pools) {
    let id = pools.session_id(rng);
    let trunc = if rng.chance(1, 8) { rng.pick(&[14, 34, 64]) } else { 0 };
    rt.clone_sessions.insert(id, (pools.replicas(rng), trunc));
}

/// Add a member to value set `s` (exact or upper-half mask), up to its capacity.
fn random_value_set_member(ir: &Ir, rt: &mut Runtime, s: u32, rng: &mut Rng, pools: &Pools) -> bool {
    let def = &ir.value_sets[s as usize];
    let set = &mut rt.value_sets[s as usize];
    if set.len() >= def.max_size.max(1) as usize {
        return false;
    }
    let full = mask_of(def.width);
    let mask = if rng.chance(3, 4) { full } else { full & !mask_of(def.width - def.width / 2) };
    set.push((pools.value(rng, def.width) & mask, mask));
    true
}

/// Configure every cell of meter array `m` (a direct meter: one per entry of its
/// table now) with rates low enough that a few packets see all three colors: packets
/// meters 10/s committed (burst 2) and 20/s peak (burst 3), bytes meters 1000 B/s
/// (200) and 2000 B/s (400). The cells enforce the whole rate with full buckets at
/// time 0; their markers need the EAL's TSC frequency.
pub fn configure_meter(ir: &Ir, rt: &mut Runtime, m: usize) {
    let def = &ir.meters[m];
    let config = if def.bytes {
        MeterConfig { cir: 1_000, cburst: 200, pir: 2_000, pburst: 400 }
    } else {
        MeterConfig { cir: 10, cburst: 2, pir: 20, pburst: 3 }
    };
    if let Some(t) = def.direct {
        let handles = rt.tables[t as usize].hits.len();
        rt.meters[m].resize(handles, None);
    }
    for cell in rt.meters[m].iter_mut() {
        *cell = Some(MeterCell::new(config, Some(Share::WHOLE), 0, def.bytes).expect("a valid meter config"));
    }
}

/// Fill the state of a program: for every writable table, up to `per_table` entries
/// (after creating the members and groups its action profile needs); a default action
/// on a third of the tables that allow it; multicast groups, clone sessions and value
/// set members. Refused updates are skipped. Returns the number of entries inserted.
pub fn random_entries(ir: &Ir, rt: &mut Runtime, rng: &mut Rng, pools: &Pools, per_table: usize) -> usize {
    for p in used_profiles(ir) {
        for _ in 0..per_table.clamp(2, 8) {
            random_member(ir, rt, p, rng, pools);
        }
        if ir.profiles[p as usize].selector.is_some() {
            for _ in 0..(per_table / 2).clamp(1, 4) {
                random_group(ir, rt, p, rng, pools);
            }
        }
    }
    let mut inserted = 0;
    for t in writable(ir) {
        let mut n = 0;
        // Small key spaces run out of fresh keys: a few tries each, then give up.
        for _ in 0..per_table * 4 {
            if n == per_table {
                break;
            }
            n += insert_random(ir, rt, t, rng, pools) as usize;
        }
        inserted += n;
    }
    for t in default_settable(ir) {
        if rng.chance(1, 3) {
            set_random_default(ir, rt, t, rng, pools);
        }
    }
    for _ in 0..per_table.clamp(2, 8) {
        random_mcast(rt, rng, pools);
        random_clone_session(rt, rng, pools);
    }
    for s in 0..ir.value_sets.len() as u32 {
        for _ in 0..per_table.min(4) {
            random_value_set_member(ir, rt, s, rng, pools);
        }
    }
    inserted
}

/// One random state change that the runtime accepted, and what it touched; `None` if
/// every try was refused. Changes: insert an entry, modify an entry's action, delete an
/// entry, set or reset a default action, add/replace/delete a member or group, add,
/// replace or remove a multicast group or clone session, add or remove a value set
/// member, take a port down or up.
pub fn mutate_state(ir: &Ir, rt: &mut Runtime, rng: &mut Rng, pools: &Pools) -> Option<Change> {
    (0..16).find_map(|_| try_mutate(ir, rt, rng, pools))
}

fn try_mutate(ir: &Ir, rt: &mut Runtime, rng: &mut Rng, pools: &Pools) -> Option<Change> {
    let tables = writable(ir);
    let filled: Vec<TableId> = tables.iter().copied().filter(|t| !rt.tables[*t as usize].is_empty()).collect();
    match rng.below(20) {
        0..=4 => {
            let t = *rng.pick_opt(&tables)?;
            insert_random(ir, rt, t, rng, pools).then_some(Change::Table(t))
        }
        5..=7 => {
            let t = *rng.pick_opt(&filled)?;
            let entries: Vec<Entry> = rt.tables[t as usize].entries().map(|(_, e)| e.clone()).collect();
            let e = rng.pick_opt(&entries)?;
            let action = random_action(ir, rt, t, rng, pools)?;
            let e = Entry { key: e.key.clone(), priority: e.priority, action, meta: None };
            rt.modify(ir, t, e).is_ok().then_some(Change::Table(t))
        }
        8..=10 => {
            let t = *rng.pick_opt(&filled)?;
            let keys: Vec<(Vec<KeyValue>, i32)> =
                rt.tables[t as usize].entries().map(|(_, e)| (e.key.clone(), e.priority)).collect();
            let (key, priority) = rng.pick_opt(&keys)?.clone();
            rt.delete(ir, t, key, priority).is_ok().then_some(Change::Table(t))
        }
        11..=12 => {
            let t = *rng.pick_opt(&default_settable(ir))?;
            set_random_default(ir, rt, t, rng, pools).then_some(Change::Table(t))
        }
        13..=15 => {
            let p = *rng.pick_opt(&used_profiles(ir))?;
            let ps = &rt.profiles[p as usize];
            let ok = match rng.below(4) {
                0 => random_member(ir, rt, p, rng, pools),
                1 => random_group(ir, rt, p, rng, pools),
                // Deletes are refused while in use; that is part of what is tested.
                2 => {
                    let id = *rng.pick_opt(&sorted_ids(&ps.members))?;
                    rt.delete_member(ir, p, id).is_ok()
                }
                _ => {
                    let id = *rng.pick_opt(&sorted_ids(&ps.groups))?;
                    rt.delete_group(ir, p, id).is_ok()
                }
            };
            ok.then_some(Change::Profile(p))
        }
        16 => {
            if rng.chance(1, 4) {
                let id = *rng.pick_opt(&sorted_ids(&rt.mcast))?;
                rt.mcast.remove(&id);
            } else {
                random_mcast(rt, rng, pools);
            }
            Some(Change::Mcast)
        }
        17 => {
            if rng.chance(1, 4) {
                let id = *rng.pick_opt(&sorted_ids(&rt.clone_sessions))?;
                rt.clone_sessions.remove(&id);
            } else {
                random_clone_session(rt, rng, pools);
            }
            Some(Change::Clone)
        }
        18 => {
            let s = rng.below(ir.value_sets.len().max(1) as u64) as u32;
            ir.value_sets.get(s as usize)?;
            let ok = if !rt.value_sets[s as usize].is_empty() && rng.chance(1, 3) {
                let i = rng.index(rt.value_sets[s as usize].len());
                rt.value_sets[s as usize].remove(i);
                true
            } else {
                random_value_set_member(ir, rt, s, rng, pools)
            };
            ok.then_some(Change::ValueSet(s))
        }
        _ => {
            let port = rng.pick(&pools.ports) as u32;
            let down = !rt.down_ports.contains(&port);
            rt.set_port_down(port, down);
            Some(Change::Ports)
        }
    }
}

// ---------------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------------

/// A packet field from `pool`, now and then (1 in 16) any `width`-bit value, so
/// packets also miss.
fn field(rng: &mut Rng, pool: &[Value], width: u32) -> Value {
    if rng.chance(1, 16) {
        rng.bits(width)
    } else {
        rng.pick(pool)
    }
}

/// Append the low `bytes` bytes of `v`, big-endian.
fn put(out: &mut Vec<u8>, v: Value, bytes: usize) {
    out.extend_from_slice(&v.to_be_bytes()[16 - bytes..]);
}

/// A TTL or hop limit: the ones that decrement to zero, and a normal one.
fn ttl(rng: &mut Rng) -> Value {
    rng.pick(&[0, 1, 2, 64])
}

/// A random frame on a random pool port: see the module doc for the templates.
/// Returns the input port and the bytes (at most [`MAX_PACKET`]).
pub fn random_packet(rng: &mut Rng, pools: &Pools) -> (u32, Vec<u8>) {
    let port = rng.pick(&pools.ports) as u32;
    let mut pkt = Vec::with_capacity(MAX_PACKET);
    if rng.chance(1, 32) {
        let n = rng.index(MAX_PACKET + 1);
        rng.fill(n, &mut pkt);
        return (port, pkt);
    }
    if port == CPU_PORT && rng.chance(7, 8) {
        // packet_out: egress_port (9 bits), then fabric's do_forwarding (1 bit), then
        // padding (zero, as the server sends it, or now and then not).
        let out_port = rng.pick(&pools.ports);
        let fwd = rng.below(2) as Value;
        let pad = if rng.chance(1, 8) { rng.bits(6) } else { 0 };
        put(&mut pkt, (out_port << 7) | (fwd << 6) | pad, 2);
    }
    let start = pkt.len();
    ethernet(rng, pools, true, &mut pkt);
    if pkt.len() - start < 60 && rng.chance(1, 2) {
        pkt.resize(start + 60, 0);
    }
    if rng.chance(1, 12) {
        let len = if rng.chance(1, 3) { rng.index(15) } else { rng.index(pkt.len() + 1) };
        pkt.truncate(len);
    }
    if !pkt.is_empty() && rng.chance(1, 12) {
        for _ in 0..1 + rng.below(3) {
            let i = rng.index(pkt.len());
            pkt[i] = rng.byte();
        }
    }
    pkt.truncate(MAX_PACKET);
    (port, pkt)
}

/// An Ethernet frame with 0–2 VLAN tags and a payload chosen by ether type. `outer`:
/// whether the payload may nest another frame (VXLAN, MPLS pseudowire).
fn ethernet(rng: &mut Rng, pools: &Pools, outer: bool, out: &mut Vec<u8>) {
    put(out, field(rng, &pools.macs, 48), 6);
    put(out, field(rng, &pools.macs, 48), 6);
    let tags = rng.pick(&[0, 0, 0, 0, 1, 1, 2]);
    for i in 0..tags {
        let tpid = if i == 0 { rng.pick(&[0x8100, 0x8100, 0x88a8, 0x9100]) } else { 0x8100 };
        put(out, tpid, 2);
        put(out, (rng.bits(3) << 13) | field(rng, &pools.vlans, 12), 2);
    }
    match rng.below(20) {
        0..=8 => {
            put(out, 0x0800, 2);
            ipv4(rng, pools, outer, out);
        }
        9 | 10 => {
            put(out, 0x86dd, 2);
            ipv6(rng, pools, outer, out);
        }
        11 | 12 => {
            put(out, 0x0806, 2);
            arp(rng, pools, out);
        }
        13 | 14 => {
            put(out, 0x8847, 2);
            mpls(rng, pools, outer, out);
        }
        15 => {
            // mytunnel: proto_id (16), tun_id (32).
            put(out, 0x1212, 2);
            let proto = if rng.chance(7, 8) { 0x0800 } else { field(rng, &pools.ether_types, 16) };
            put(out, proto, 2);
            put(out, field(rng, &pools.ipv4, 32), 4);
            if proto == 0x0800 {
                ipv4(rng, pools, outer, out);
            }
        }
        _ => {
            put(out, field(rng, &pools.ether_types, 16), 2);
            let n = rng.index(47);
            rng.fill(n, out);
        }
    }
}

/// IPv4: options 1 time in 8, TTL 0/1/2/64, a fragment 1 in 16, a wrong total length 1
/// in 16, a wrong header checksum 1 in 8.
fn ipv4(rng: &mut Rng, pools: &Pools, outer: bool, out: &mut Vec<u8>) {
    let words = if rng.chance(1, 8) { 1 + rng.below(3) as usize } else { 0 };
    let proto = match rng.below(8) {
        0 | 1 => 6,
        2..=4 => 17,
        5 => 1,
        _ => rng.byte() as Value,
    };
    let l4 = l4(rng, pools, proto, outer);
    let hlen = 20 + 4 * words;
    let total = if rng.chance(1, 16) { rng.bits(16) } else { (hlen + l4.len()) as Value };
    let frag = if rng.chance(1, 16) { 0x2000 | rng.bits(13) } else { rng.pick(&[0, 0x4000]) };
    let mut h = Vec::with_capacity(hlen);
    h.push(0x45 + words as u8);
    h.push(rng.byte());
    put(&mut h, total, 2);
    put(&mut h, rng.bits(16), 2);
    put(&mut h, frag, 2);
    put(&mut h, ttl(rng), 1);
    put(&mut h, proto, 1);
    put(&mut h, 0, 2);
    put(&mut h, field(rng, &pools.ipv4, 32), 4);
    put(&mut h, field(rng, &pools.ipv4, 32), 4);
    for _ in 0..4 * words {
        // Mostly NOPs (1), some noise.
        let b = if rng.chance(3, 4) { 1 } else { rng.byte() };
        h.push(b);
    }
    let mut csum = super::bits::csum16(&h);
    if rng.chance(1, 8) {
        csum ^= 1 + rng.below(0xffff) as u16;
    }
    h[10..12].copy_from_slice(&csum.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&l4);
}

/// IPv6 with a TCP, UDP, ICMPv6 or unknown next header, hop limit 0/1/2/64.
fn ipv6(rng: &mut Rng, pools: &Pools, outer: bool, out: &mut Vec<u8>) {
    let next = match rng.below(6) {
        0 => 6,
        1 | 2 => 17,
        3 => 58,
        _ => rng.byte() as Value,
    };
    let l4 = l4(rng, pools, next, outer);
    put(out, (6 << 28) | (rng.bits(8) << 20) | rng.bits(20), 4);
    put(out, l4.len() as Value, 2);
    put(out, next, 1);
    put(out, ttl(rng), 1);
    put(out, field(rng, &pools.ipv6, 128), 16);
    put(out, field(rng, &pools.ipv6, 128), 16);
    out.extend_from_slice(&l4);
}

/// The layer 4 header and payload for IP protocol `proto`.
fn l4(rng: &mut Rng, pools: &Pools, proto: Value, outer: bool) -> Vec<u8> {
    let mut b = vec![];
    let payload = rng.index(25);
    match proto {
        6 => {
            put(&mut b, field(rng, &pools.l4_ports, 16), 2);
            put(&mut b, field(rng, &pools.l4_ports, 16), 2);
            rng.fill(8, &mut b); // seq, ack
            b.push(0x50);
            let flags = rng.pick(&[0x02, 0x10, 0x18, 0x11, 0x04]);
            b.push(if rng.chance(1, 8) { rng.byte() } else { flags });
            rng.fill(4, &mut b); // window, checksum
            put(&mut b, 0, 2);
            rng.fill(payload, &mut b);
        }
        17 => {
            let dport = field(rng, &pools.l4_ports, 16);
            put(&mut b, field(rng, &pools.l4_ports, 16), 2);
            put(&mut b, dport, 2);
            let mut body = vec![];
            if dport == 4789 && outer {
                // VXLAN: flags (I), 3 reserved, VNI, 1 reserved; then a frame.
                put(&mut body, 0x0800_0000, 4);
                put(&mut body, rng.below(4) as Value + 1, 3);
                body.push(0);
                ethernet(rng, pools, false, &mut body);
            } else {
                rng.fill(payload, &mut body);
            }
            put(&mut b, (8 + body.len()) as Value, 2);
            put(&mut b, if rng.chance(1, 2) { 0 } else { rng.bits(16) }, 2);
            b.extend_from_slice(&body);
        }
        1 | 58 => {
            let types: &[u8] = if proto == 1 { &[0, 8, 3, 11, 5] } else { &[128, 129, 133, 135, 136] };
            b.push(rng.pick(types));
            b.push(rng.pick(&[0, 1, 3]));
            rng.fill(6, &mut b); // checksum, rest of header
            rng.fill(payload, &mut b);
        }
        _ => rng.fill(payload, &mut b),
    }
    b
}

/// An ARP request or reply for pool addresses.
fn arp(rng: &mut Rng, pools: &Pools, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0]);
    out.push(rng.pick(&[1, 2]));
    put(out, field(rng, &pools.macs, 48), 6);
    put(out, field(rng, &pools.ipv4, 32), 4);
    put(out, if rng.chance(1, 2) { 0 } else { field(rng, &pools.macs, 48) }, 6);
    put(out, field(rng, &pools.ipv4, 32), 4);
}

/// 1–2 MPLS labels (sometimes 3–4, past a 3-deep label stack) over IPv4, an Ethernet
/// pseudowire (outer frames only) or noise.
fn mpls(rng: &mut Rng, pools: &Pools, outer: bool, out: &mut Vec<u8>) {
    let n = if rng.chance(1, 4) { 3 + rng.below(2) } else { 1 + rng.below(2) };
    for i in 0..n {
        let bos = Value::from(i == n - 1);
        put(out, (field(rng, &pools.mpls_labels, 20) << 12) | (rng.bits(3) << 9) | (bos << 8) | ttl(rng), 4);
    }
    match rng.below(8) {
        0..=5 => ipv4(rng, pools, outer, out),
        6 if outer => ethernet(rng, pools, false, out),
        _ => {
            let n = rng.index(33);
            rng.fill(n, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::compile::compile_bytes;
    use super::super::corpus;
    use super::super::engine_tests::{load, Prog};
    use super::super::interp::Interp;
    use super::super::track::NoTrack;
    use super::*;

    const PACKETS: usize = 2000;
    const PER_TABLE: usize = 8;
    /// Seeds per program for the relevance floors: one seed's state can drop nearly
    /// everything (a default `drop` on the one table all packets cross), so the floors
    /// hold for sums over several.
    const SEEDS: std::ops::Range<u64> = 0..8;

    /// What [`exercise`] measured (summed over runs).
    #[derive(Debug, Default)]
    struct Outcome {
        /// Packets per phase.
        packets: usize,
        /// Writable tables, and how many got at least one entry.
        tables: usize,
        filled: usize,
        entries: usize,
        /// Before any state change: writable tables hit at least once; packets that hit
        /// at least one entry; packets with at least one copy out, all of them and
        /// those not received on the CPU port (not packet-outs).
        tables_hit: usize,
        hit: usize,
        forwarded: usize,
        forwarded_not_cpu: usize,
        /// State changes applied, one tried per 10 packets of the second phase.
        changes: usize,
    }

    impl Outcome {
        fn add(&mut self, o: &Outcome) {
            self.packets += o.packets;
            self.tables += o.tables;
            self.filled += o.filled;
            self.entries += o.entries;
            self.tables_hit += o.tables_hit;
            self.hit += o.hit;
            self.forwarded += o.forwarded;
            self.forwarded_not_cpu += o.forwarded_not_cpu;
            self.changes += o.changes;
        }

        fn print(&self, name: &str) {
            let pct = |n: usize| 100.0 * n as f64 / self.packets as f64;
            eprintln!(
                "{name}: {} entries, {}/{n} writable tables filled, {}/{n} hit; of {} packets {:.1}% hit an entry, \
                 {:.1}% forwarded ({:.1}% not from the CPU port); {}/{} state changes applied",
                self.entries,
                self.filled,
                self.tables_hit,
                self.packets,
                pct(self.hit),
                pct(self.forwarded),
                pct(self.forwarded_not_cpu),
                self.changes,
                self.packets / 10,
                n = self.tables,
            );
        }
    }

    /// Fill `p` with random state, run [`PACKETS`] random packets, then as many again
    /// with a state change tried every 10 packets. The interpreter must not panic.
    fn exercise(p: &mut Prog, seed: u64) -> Outcome {
        let pools = Pools::default();
        let mut rng = Rng::new(seed);
        let entries = random_entries(&p.ir, &mut p.rt, &mut rng, &pools, PER_TABLE);
        let tables = writable(&p.ir);
        let filled = tables.iter().filter(|t| !p.rt.tables[**t as usize].is_empty()).count();
        let hits = |rt: &Runtime| -> Vec<u64> { rt.tables.iter().map(|t| t.hits.iter().sum()).collect() };
        let before = hits(&p.rt);
        let (mut forwarded, mut forwarded_not_cpu, mut hit) = (0, 0, 0);
        for _ in 0..PACKETS {
            let (port, pkt) = random_packet(&mut rng, &pools);
            let h = hits(&p.rt);
            p.it.run(&p.ir, &mut p.rt, &pkt, port, &mut NoTrack);
            let out = !p.it.out.packets().is_empty();
            forwarded += out as usize;
            forwarded_not_cpu += (out && port != CPU_PORT) as usize;
            hit += (hits(&p.rt) != h) as usize;
        }
        let after = hits(&p.rt);
        let tables_hit = tables.iter().filter(|t| after[**t as usize] > before[**t as usize]).count();
        let mut changes = 0;
        for i in 0..PACKETS {
            if i % 10 == 0 {
                changes += mutate_state(&p.ir, &mut p.rt, &mut rng, &pools).is_some() as usize;
            }
            let (port, pkt) = random_packet(&mut rng, &pools);
            p.it.run(&p.ir, &mut p.rt, &pkt, port, &mut NoTrack);
        }
        Outcome {
            packets: PACKETS,
            tables: tables.len(),
            filled,
            entries,
            tables_hit,
            hit,
            forwarded,
            forwarded_not_cpu,
            changes,
        }
    }

    /// Half the writable tables filled, and most state changes applied.
    fn assert_filled(name: &str, o: &Outcome) {
        assert!(o.filled * 2 >= o.tables, "{name}: only {}/{} tables got entries", o.filled, o.tables);
        assert!(o.entries >= o.filled, "{name}");
        assert!(o.changes * 20 >= o.packets, "{name}: {} state changes", o.changes);
    }

    /// [`assert_filled`], and packets meet the entries over [`SEEDS`]: half the writable
    /// tables hit, a fifth of the packets hit an entry, at least 5% of the packets
    /// forwarded (not counting packet-outs).
    fn assert_relevant(rel: &str) {
        let mut total = Outcome::default();
        for seed in SEEDS {
            let Some(mut p) = load(rel) else { return };
            let o = exercise(&mut p, seed);
            o.print(&format!("{rel} seed {seed}"));
            total.add(&o);
        }
        total.print(&format!("{rel} total"));
        assert_filled(rel, &total);
        assert!(total.tables_hit * 2 >= total.tables, "{rel}: only {}/{} tables hit", total.tables_hit, total.tables);
        assert!(total.hit * 5 >= total.packets, "{rel}: {} of {} packets hit an entry", total.hit, total.packets);
        assert!(
            total.forwarded_not_cpu * 20 >= total.packets,
            "{rel}: {} of {} forwarded",
            total.forwarded_not_cpu,
            total.packets
        );
    }

    #[test]
    fn simple_router_random_state_is_hit_and_forwards() {
        assert_relevant("simple_router/simple_router.json");
    }

    #[test]
    fn onos_basic_random_state_is_hit_and_forwards() {
        assert_relevant("onos_basic/basic.json");
    }

    #[test]
    fn onos_fabric_random_state_is_hit_and_forwards() {
        assert_relevant("onos_fabric/fabric.json");
    }

    #[test]
    fn every_corpus_program_takes_random_state_and_packets() {
        let Some(dir) = corpus::dir() else { return };
        for (i, f) in corpus::files(&dir, ".json").iter().enumerate() {
            let name = f.strip_prefix(&dir).unwrap_or(f).display().to_string();
            let ir = compile_bytes(&std::fs::read(f).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let rt = Runtime::new(&ir);
            let it = Interp::new(&ir);
            let o = exercise(&mut Prog { ir, rt, it }, 100 + i as u64);
            o.print(&name);
            assert_filled(&name, &o);
        }
    }

    /// The same seed gives the same state and packets (a failure is reproduced by its
    /// seed).
    #[test]
    fn same_seed_same_state_and_packets() {
        let Some(a) = load("onos_fabric/fabric.json") else { return };
        let pools = Pools::default();
        let build = |mut p: Prog| {
            let mut rng = Rng::new(7);
            random_entries(&p.ir, &mut p.rt, &mut rng, &pools, PER_TABLE);
            for _ in 0..200 {
                mutate_state(&p.ir, &mut p.rt, &mut rng, &pools);
            }
            let packets: Vec<_> = (0..200).map(|_| random_packet(&mut rng, &pools)).collect();
            (p.rt, packets)
        };
        let b = load("onos_fabric/fabric.json").unwrap();
        let ((ra, pa), (rb, pb)) = (build(a), build(b));
        assert_eq!(pa, pb);
        for (x, y) in ra.tables.iter().zip(&rb.tables) {
            assert!(x.entries().eq(y.entries()));
            assert_eq!(x.default, y.default);
        }
        for (x, y) in ra.profiles.iter().zip(&rb.profiles) {
            assert_eq!((&x.members, &x.groups), (&y.members, &y.groups));
        }
        assert_eq!((&ra.mcast, &ra.clone_sessions, &ra.down_ports), (&rb.mcast, &rb.clone_sessions, &rb.down_ports));
    }

    /// The templates all show up, and the damage too.
    #[test]
    fn packets_cover_the_templates() {
        let pools = Pools::default();
        let mut rng = Rng::new(42);
        let mut types = std::collections::BTreeSet::new();
        let (mut short, mut cpu, mut good_csum, mut bad_csum, mut vxlan) = (0, 0, 0, 0, 0);
        for _ in 0..5000 {
            let (port, p) = random_packet(&mut rng, &pools);
            assert!(p.len() <= MAX_PACKET);
            short += (p.len() < 14) as usize;
            cpu += (port == CPU_PORT) as usize;
            if port == CPU_PORT || p.len() < 34 {
                continue;
            }
            let ty = u16::from_be_bytes([p[12], p[13]]);
            types.insert(ty);
            if ty == 0x0800 && p[14] == 0x45 {
                if super::super::bits::csum16(&p[14..34]) == 0 {
                    good_csum += 1;
                } else {
                    bad_csum += 1;
                }
                vxlan += (p[23] == 17 && p.len() > 38 && p[36..38] == [0x12, 0xb5]) as usize;
            }
        }
        for t in [0x0800, 0x86dd, 0x8100, 0x88a8, 0x9100, 0x8847, 0x0806, 0x1212] {
            assert!(types.contains(&t), "ether type {t:#06x} never generated");
        }
        assert!(short > 20 && cpu > 300 && vxlan > 10, "short {short}, cpu {cpu}, vxlan {vxlan}");
        assert!(good_csum > 3 * bad_csum && bad_csum > 10, "checksums: {good_csum} good, {bad_csum} bad");
    }

    #[test]
    fn rng_is_in_range_and_covers_it() {
        let mut rng = Rng::new(0);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            seen[rng.below(7) as usize] += 1;
        }
        assert!(seen.iter().all(|n| (800..1200).contains(n)), "{seen:?}");
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}

//! The mutable state of a loaded program: table entries, action profile members and
//! groups, the packet replication engine (multicast groups, clone sessions), value
//! sets, registers and counters.
//!
//! # Lookup
//! A table is a tuple space: entries are grouped by their mask (one mask per key
//! field: all ones for exact, the prefix for LPM, the entry's mask for ternary and
//! optional, none for range), and each group is a hash map from masked key to the
//! entries with that key, best first. A lookup probes groups in order of the best
//! priority they hold and stops as soon as no remaining group can beat the best hit —
//! so an LPM table probes from the longest prefix down and stops at the first hit, and
//! an exact table is one hash probe. Range fields are checked on the candidates.
//! The masks of the probed groups are exactly the key bits the result depends on,
//! which is what read tracking records.
//!
//! Priorities: higher wins (P4Runtime's convention). LPM entries rank by prefix length.

use std::collections::{BTreeMap, HashMap};

use hashbrown::Equivalent;

use super::ir::*;
use super::meters::MeterCell;
use super::ops::Op as StateOp;
use super::trie::PrefixTrie;
use crate::qos::Share;

/// Why a table or PRE update was refused. Refused updates change nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// The table, profile, group or session does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// An entry with the same key exists.
    #[error("{0} already exists")]
    Exists(String),
    /// The update is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The table or profile is full.
    #[error("{0} is full")]
    Full(String),
    /// The member or group is still used (by a group or a table entry).
    #[error("{0}")]
    InUse(String),
    /// The program fixes this (a const default action).
    #[error("{0}")]
    Const(String),
}

type Res<T> = Result<T, UpdateError>;

/// What a table entry runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryAction {
    /// An action of the table, with arguments.
    Call(ActionCall),
    /// A member of the table's action profile.
    Member(u32),
    /// A group of the table's action selector.
    Group(u32),
}

/// A table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// One match per key field, in key order.
    pub key: Vec<KeyValue>,
    /// Priority (higher wins); 0 for exact/LPM tables.
    pub priority: i32,
    /// The action.
    pub action: EntryAction,
    /// What the controller attached (not used for forwarding).
    pub meta: Option<Box<EntryMeta>>,
}

/// What a controller attaches to a table entry: stored, replaced by a modify, read
/// back, and never looked at by the data plane (P4Runtime's idle timeout is kept
/// by control, which reads the entries' hit counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryMeta {
    /// P4Runtime `idle_timeout_ns` (0: never times out).
    pub idle_timeout_ns: i64,
    /// P4Runtime `controller_metadata`.
    pub controller_metadata: u64,
    /// P4Runtime `metadata` (opaque bytes).
    pub metadata: Vec<u8>,
}

impl EntryMeta {
    /// `None` when everything is zero (most entries: no allocation).
    pub fn boxed(self) -> Option<Box<EntryMeta>> {
        (self != EntryMeta::default()).then(|| Box::new(self))
    }
}

/// A handle on an installed entry (stable until deleted).
pub type Handle = u32;

/// How to take back one table op ([`Runtime::apply_undoable`], [`Runtime::undo`]):
/// a batch written with rollback keeps one per op instead of a copy of the whole
/// state, which made every such write cost as much as all the entries (learning
/// 8,192 MACs in lists of 64 spent ~1 ms per write cloning the tables). Taken back
/// in reverse order, the state is what it was: the same entries under the same
/// handles with the same counters, meter cells and free handles, and the same
/// probe order (ties are ordered by the entries, not by history).
#[derive(Debug)]
pub enum Undo {
    /// An insert: the entry goes; its handle goes back to the free list with the
    /// counters it held (`reused`), or the tables shrink (a new handle).
    Inserted {
        /// Table.
        table: TableId,
        /// The new entry's handle.
        handle: Handle,
        /// A reused handle's direct counter cell and hits before the insert.
        reused: Option<((u64, u64), u64)>,
    },
    /// A delete: the entry and its direct meter cell come back under its handle.
    Deleted {
        /// Table.
        table: TableId,
        /// Its handle.
        handle: Handle,
        /// The entry.
        entry: Entry,
        /// Its direct meter cell (boxed: a cell is large, and most entries have none).
        meter: Option<Box<MeterCell>>,
    },
    /// A modify: the entry as it was.
    Modified {
        /// Table.
        table: TableId,
        /// Its handle.
        handle: Handle,
        /// The entry before.
        entry: Entry,
    },
}

#[derive(Debug, Clone)]
struct Group {
    masks: Box<[Value]>,
    /// Best rank of any entry in the group.
    best: i64,
    /// How many entries hold each rank, so that a delete finds the new best in
    /// O(log ranks) instead of visiting every entry of the group (a /32 group of an
    /// LPM table may hold every route).
    ranks: BTreeMap<i64, u32>,
    map: GroupMap,
}

/// Key fields held inline in a group's map (most tables have one or two).
const INLINE_KEYS: usize = 2;

/// Key fields a lookup's scratch holds without sizing it for [`MAX_KEYS`].
const SHORT_KEY: usize = 4;

/// A group's map: masked key values to the entries holding them. hashbrown's own map
/// rather than std's, for [`Equivalent`]: a lookup probes it with the borrowed
/// [`KeyRef`], hashed and compared value by value, where std's `Borrow<[Value]>`
/// hashed the slice as bytes and compared it with a `memcmp` call.
type GroupMap = hashbrown::HashMap<GroupKey, Ranked, rustc_hash::FxBuildHasher>;

/// A group's masked key values: inline for up to [`INLINE_KEYS`] fields, so that a
/// lookup compares them in the map's bucket instead of following a pointer (a cache
/// miss per table per flow setup); boxed beyond. Hashes and compares as its values
/// (see [`KeyRef`]).
#[derive(Debug, Clone)]
enum GroupKey {
    Inline(u8, [Value; INLINE_KEYS]),
    Boxed(Box<[Value]>),
}

impl GroupKey {
    fn new(v: &[Value]) -> Self {
        if v.len() <= INLINE_KEYS {
            let mut a = [0; INLINE_KEYS];
            a[..v.len()].copy_from_slice(v);
            GroupKey::Inline(v.len() as u8, a)
        } else {
            GroupKey::Boxed(v.into())
        }
    }

    fn as_slice(&self) -> &[Value] {
        match self {
            GroupKey::Inline(n, a) => &a[..*n as usize],
            GroupKey::Boxed(b) => b,
        }
    }
}

impl PartialEq for GroupKey {
    fn eq(&self, o: &Self) -> bool {
        KeyRef(self.as_slice()).equivalent(o)
    }
}

impl Eq for GroupKey {}

impl std::hash::Hash for GroupKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        KeyRef(self.as_slice()).hash(h)
    }
}

/// Masked key values to probe a group's map with, without building a [`GroupKey`].
/// Hashes as the key it finds: each value as one `u128` (no length: every key of a
/// group has the table's key count).
struct KeyRef<'a>(&'a [Value]);

impl std::hash::Hash for KeyRef<'_> {
    #[inline(always)]
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        for v in self.0 {
            h.write_u128(*v);
        }
    }
}

impl hashbrown::Equivalent<GroupKey> for KeyRef<'_> {
    /// Value by value: a short key's compare inline, not a `memcmp` call.
    #[inline(always)]
    fn equivalent(&self, k: &GroupKey) -> bool {
        let k = k.as_slice();
        k.len() == self.0.len() && self.0.iter().zip(k).all(|(a, b)| a == b)
    }
}

/// The entries of one masked key, best rank first: one, inline (exact and LPM keys
/// are unique), or several (ternary and range entries whose masked values agree).
#[derive(Debug, Clone)]
enum Ranked {
    One((i64, Handle)),
    Many(Vec<(i64, Handle)>),
}

impl Ranked {
    fn as_slice(&self) -> &[(i64, Handle)] {
        match self {
            Ranked::One(e) => std::slice::from_ref(e),
            Ranked::Many(v) => v,
        }
    }

    /// Add `h` of rank `rank` after the entries ranked at least as high.
    fn insert(&mut self, rank: i64, h: Handle) {
        let mut v = match std::mem::replace(self, Ranked::Many(vec![])) {
            Ranked::One(e) => vec![e],
            Ranked::Many(v) => v,
        };
        // Equal ranks (entries that differ only in range fields) by handle: the order
        // depends on the entries, not on the order they came in (see `Undo`).
        let pos = v.iter().position(|&(r, x)| r < rank || (r == rank && x > h)).unwrap_or(v.len());
        v.insert(pos, (rank, h));
        *self = Ranked::Many(v);
    }

    /// Remove `h`; whether none are left.
    fn remove(&mut self, h: Handle) -> bool {
        let Ranked::Many(v) = self else {
            return matches!(self, Ranked::One((_, x)) if *x == h);
        };
        v.retain(|(_, x)| *x != h);
        match v[..] {
            [] => return true,
            [e] => *self = Ranked::One(e),
            _ => {}
        }
        false
    }
}

/// One table's entries and index.
#[derive(Debug, Clone)]
pub struct TableState {
    entries: Vec<Option<Entry>>,
    free: Vec<Handle>,
    groups: Vec<Group>,
    /// The default action (`None`: no action).
    pub default: Option<EntryAction>,
    /// Direct counter cells by handle: packets, bytes.
    pub direct_counters: Vec<(u64, u64)>,
    /// Hits by handle (for idle timeouts and dumps).
    pub hits: Vec<u64>,
    count: usize,
    capacity: usize,
    kinds: Vec<MatchKind>,
    widths: Vec<u32>,
    lpm_rank: bool,
    /// The LPM key's position and its prefixes (tables ranked by prefix length).
    trie: Option<(usize, PrefixTrie)>,
}

/// A member of an action profile: an action and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The action (dense id).
    pub action: ActionId,
    /// Arguments.
    pub args: Vec<Value>,
}

/// A selector group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupDef {
    /// Members: id, weight, watch port (`None`: always live).
    pub members: Vec<(u32, u32, Option<u32>)>,
    /// Member ids expanded by weight, live members only.
    expanded: Vec<u32>,
}

/// An action profile's members and groups.
#[derive(Debug, Clone, Default)]
pub struct ProfileState {
    /// Members by id.
    pub members: HashMap<u32, Member>,
    /// Groups by id.
    pub groups: HashMap<u32, GroupDef>,
}

/// A replica: output port and replication id.
pub type Replica = (u32, u32);

/// The mutable state of one program.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// Tables, by table id.
    pub tables: Vec<TableState>,
    /// Action profiles, by profile id.
    pub profiles: Vec<ProfileState>,
    /// Multicast groups.
    pub mcast: HashMap<u32, Vec<Replica>>,
    /// Clone sessions: replicas and truncation length (0: none).
    pub clone_sessions: HashMap<u32, (Vec<Replica>, u32)>,
    /// Value sets: (value, mask) pairs.
    pub value_sets: Vec<Vec<(Value, Value)>>,
    /// Register cells.
    pub registers: Vec<Vec<Value>>,
    /// Indexed counter cells: packets, bytes.
    pub counters: Vec<Vec<(u64, u64)>>,
    /// Ports that are down (watch ports of selector members).
    pub down_ports: Vec<u32>,
    /// Meter cells by meter array: by index (indexed meters) or entry handle (direct
    /// meters); `None`: unconfigured (GREEN).
    pub meters: Vec<Vec<Option<MeterCell>>>,
    /// This state's part of each meter's rates; `None` (control's copy): configs only.
    pub meter_share: Option<Share>,
    /// The table each meter is direct on (`None`: indexed).
    meter_tables: Vec<Option<TableId>>,
}

fn prefix_mask(width: u32, prefix: u32) -> Value {
    if prefix == 0 {
        0
    } else {
        mask_of(width) & !mask_of(width - prefix)
    }
}

impl TableState {
    fn new(def: &TableDef) -> TableState {
        let kinds: Vec<MatchKind> = def.keys.iter().map(|k| k.kind).collect();
        let lpm_rank = kinds.contains(&MatchKind::Lpm) && !def.needs_priority();
        let capacity = def.max_size.clamp(1, 1 << 24) as usize;
        let trie = match kinds.iter().filter(|k| **k == MatchKind::Lpm).count() {
            1 if lpm_rank => {
                let pos = kinds.iter().position(|k| *k == MatchKind::Lpm).expect("one LPM key");
                Some((pos, PrefixTrie::new(def.keys[pos].width)))
            }
            _ => None,
        };
        TableState {
            entries: vec![],
            free: vec![],
            groups: vec![],
            default: def.default_action.clone().map(EntryAction::Call),
            direct_counters: vec![],
            hits: vec![],
            count: 0,
            capacity,
            kinds,
            widths: def.keys.iter().map(|k| k.width).collect(),
            lpm_rank,
            trie,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Entries with their handles.
    pub fn entries(&self) -> impl Iterator<Item = (Handle, &Entry)> {
        self.entries.iter().enumerate().filter_map(|(h, e)| e.as_ref().map(|e| (h as Handle, e)))
    }

    /// An entry by handle.
    pub fn get(&self, h: Handle) -> Option<&Entry> {
        self.entries.get(h as usize).and_then(Option::as_ref)
    }

    /// The handle of the entry with `key` and `priority`.
    pub fn find_handle(&self, key: &[KeyValue], priority: i32) -> Option<Handle> {
        if key.len() != self.widths.len() {
            return None;
        }
        self.find(&Entry { key: key.to_vec(), priority, action: EntryAction::Member(0), meta: None })
    }

    fn masks_and_value(&self, key: &[KeyValue]) -> (Box<[Value]>, Box<[Value]>) {
        let mut masks = Vec::with_capacity(key.len());
        let mut vals = Vec::with_capacity(key.len());
        for (k, w) in key.iter().zip(&self.widths) {
            let (m, v) = match *k {
                KeyValue::Exact(v) => (mask_of(*w), v),
                KeyValue::Lpm { value, prefix } => (prefix_mask(*w, prefix), value),
                KeyValue::Ternary { value, mask } => (mask, value),
                KeyValue::Range { .. } => (0, 0),
            };
            masks.push(m);
            vals.push(v & m);
        }
        (masks.into(), vals.into())
    }

    fn rank(&self, e: &Entry) -> i64 {
        if self.lpm_rank {
            e.key
                .iter()
                .map(|k| match k {
                    KeyValue::Lpm { prefix, .. } => *prefix as i64,
                    _ => 0,
                })
                .sum()
        } else {
            e.priority as i64
        }
    }

    /// Check an entry's shape against the table.
    fn check(&self, ir: &Ir, def: &TableDef, e: &Entry, profile: Option<&ProfileState>) -> Res<()> {
        let name = &def.name;
        if e.key.len() != def.keys.len() {
            return Err(UpdateError::Invalid(format!(
                "table {name:?} has {} key fields, the entry gives {}",
                def.keys.len(),
                e.key.len()
            )));
        }
        for (k, (kv, kd)) in e.key.iter().zip(&def.keys).enumerate() {
            let m = mask_of(kd.width);
            let ok = match (kd.kind, kv) {
                (MatchKind::Exact, KeyValue::Exact(v)) => *v <= m,
                (MatchKind::Lpm, KeyValue::Lpm { value, prefix }) => {
                    *prefix <= kd.width && *value <= m && value & !prefix_mask(kd.width, *prefix) == 0
                }
                (MatchKind::Ternary, KeyValue::Ternary { value, mask }) => {
                    *value <= m && *mask <= m && value & !mask == 0
                }
                (MatchKind::Optional, KeyValue::Ternary { value, mask }) => {
                    (*mask == 0 || *mask == m) && value & !mask == 0
                }
                (MatchKind::Optional, KeyValue::Exact(v)) => *v <= m,
                (MatchKind::Range, KeyValue::Range { low, high }) => low <= high && *high <= m,
                _ => false,
            };
            if !ok {
                return Err(UpdateError::Invalid(format!(
                    "table {name:?} key field {k} ({:?}, {:?}, {} bits): bad match {kv:?} (values must fit the width, \
                     masked-off bits must be zero)",
                    kd.name, kd.kind, kd.width
                )));
            }
        }
        if def.needs_priority() && e.priority <= 0 {
            return Err(UpdateError::Invalid(format!(
                "table {name:?} needs a priority > 0 (ternary, range or optional key)"
            )));
        }
        if !def.needs_priority() && e.priority != 0 {
            return Err(UpdateError::Invalid(format!("table {name:?} takes no priority (exact/LPM keys only)")));
        }
        check_action(def, &e.action, profile)?;
        match &e.action {
            EntryAction::Call(c) => check_args(ir, def.actions[c.slot as usize], &c.args),
            _ => Ok(()),
        }
    }

    fn find(&self, e: &Entry) -> Option<Handle> {
        let (masks, vals) = self.masks_and_value(&e.key);
        let g = self.groups.iter().find(|g| g.masks == masks)?;
        g.map.get(&KeyRef(&vals))?.as_slice().iter().map(|(_, h)| *h).find(|h| {
            let x = self.entries[*h as usize].as_ref().expect("indexed entries exist");
            x.key == e.key && x.priority == e.priority
        })
    }

    fn index(&mut self, h: Handle) {
        let e = self.entries[h as usize].as_ref().expect("indexing an existing entry");
        let rank = self.rank(e);
        let (masks, vals) = self.masks_and_value(&e.key);
        let gi = match self.groups.iter().position(|g| g.masks == masks) {
            Some(i) => i,
            None => {
                self.groups.push(Group { masks, best: i64::MIN, ranks: BTreeMap::new(), map: GroupMap::default() });
                self.groups.len() - 1
            }
        };
        if let Some((pos, trie)) = &mut self.trie {
            if let KeyValue::Lpm { value, prefix } = e.key[*pos] {
                trie.insert(value, prefix);
            }
        }
        let g = &mut self.groups[gi];
        g.best = g.best.max(rank);
        *g.ranks.entry(rank).or_default() += 1;
        match g.map.entry(GroupKey::new(&vals)) {
            hashbrown::hash_map::Entry::Occupied(mut o) => o.get_mut().insert(rank, h),
            hashbrown::hash_map::Entry::Vacant(v) => {
                v.insert(Ranked::One((rank, h)));
            }
        }
        self.sort_groups();
    }

    /// Groups by best rank, then by masks: the probe order depends on the entries,
    /// not on the order they came in, so a batch taken back by [`Undo`] leaves the
    /// table as it was (equal-priority overlapping entries in two groups win the
    /// same way on control's copy and on every worker's).
    fn sort_groups(&mut self) {
        self.groups.sort_by(|a, b| b.best.cmp(&a.best).then_with(|| a.masks.cmp(&b.masks)));
    }

    fn unindex(&mut self, h: Handle) {
        let e = self.entries[h as usize].as_ref().expect("unindexing an existing entry");
        let rank = self.rank(e);
        if let Some((pos, trie)) = &mut self.trie {
            if let KeyValue::Lpm { value, prefix } = e.key[*pos] {
                trie.remove(value, prefix);
            }
        }
        let (masks, vals) = self.masks_and_value(&e.key);
        if let Some(gi) = self.groups.iter().position(|g| g.masks == masks) {
            let g = &mut self.groups[gi];
            if g.map.get_mut(&KeyRef(&vals)).is_some_and(|list| list.remove(h)) {
                g.map.remove(&KeyRef(&vals));
            }
            if let std::collections::btree_map::Entry::Occupied(mut o) = g.ranks.entry(rank) {
                *o.get_mut() -= 1;
                if *o.get() == 0 {
                    o.remove();
                }
            }
            if g.map.is_empty() {
                self.groups.remove(gi);
            } else if g.ranks.last_key_value().map(|(r, _)| *r) != Some(g.best) {
                g.best = g.ranks.last_key_value().map_or(i64::MIN, |(r, _)| *r);
                self.sort_groups();
            }
        }
    }

    /// Look up `key` (one value per key field). `probe` is called with masks of the
    /// key bits the result depends on: the masks of every group probed, except that
    /// the LPM key of a prefix-ranked table is reported once, as the leading bits
    /// its prefix trie says decide (see [`super::trie`]). Without `reads`, `probe` is
    /// not called and the trie is not walked (an untracked run).
    #[inline]
    pub fn lookup(&self, key: &[Value], reads: bool, probe: impl FnMut(&[Value])) -> Option<(Handle, &Entry)> {
        // Scratch sized for the common short key: zeroing two arrays of MAX_KEYS
        // 128-bit values (1 KB) per lookup was ~4 % of a flow setup's profile.
        if key.len() <= SHORT_KEY {
            self.lookup_in::<SHORT_KEY>(key, reads, probe)
        } else {
            self.lookup_in::<MAX_KEYS>(key, reads, probe)
        }
    }

    /// [`TableState::lookup`] with scratch room for `N` key fields (`key.len() <= N`).
    #[inline(always)]
    fn lookup_in<const N: usize>(
        &self,
        key: &[Value],
        reads: bool,
        mut probe: impl FnMut(&[Value]),
    ) -> Option<(Handle, &Entry)> {
        let mut best: Option<(i64, Handle)> = None;
        let mut masked = [0 as Value; N];
        let mut reported = [0 as Value; N];
        let has_range = self.kinds.contains(&MatchKind::Range);
        for g in &self.groups {
            if let Some((r, _)) = best {
                if r >= g.best {
                    break;
                }
            }
            // The masks are copied in the masking loop, not by a `memcpy` call.
            for (i, (k, m)) in key.iter().zip(g.masks.iter()).enumerate() {
                masked[i] = k & m;
                reported[i] = *m;
            }
            match &self.trie {
                _ if !reads => {}
                None => probe(&g.masks),
                Some((pos, _)) => {
                    reported[*pos] = 0;
                    probe(&reported[..g.masks.len()]);
                }
            }
            let Some(list) = g.map.get(&KeyRef(&masked[..key.len()])) else { continue };
            for (rank, h) in list.as_slice() {
                if best.is_some_and(|(r, _)| r >= *rank) {
                    break;
                }
                if has_range {
                    let e = self.entries[*h as usize].as_ref().expect("indexed entries exist");
                    let in_range = e.key.iter().zip(key).all(|(kv, v)| match kv {
                        KeyValue::Range { low, high } => low <= v && v <= high,
                        _ => true,
                    });
                    if !in_range {
                        continue;
                    }
                }
                best = Some((*rank, *h));
                break;
            }
        }
        if let Some((pos, trie)) = self.trie.as_ref().filter(|_| reads) {
            // The rank of a prefix-ranked entry is its prefix length.
            let winner = best.map_or(0, |(r, _)| r as u32);
            let bits = trie.deciding_bits(key[*pos], winner);
            let w = self.widths[*pos];
            reported[..key.len()].fill(0);
            reported[*pos] = mask_of(w) & !mask_of(w - bits);
            probe(&reported[..key.len()]);
        }
        best.map(|(_, h)| (h, self.entries[h as usize].as_ref().expect("indexed entries exist")))
    }
}

fn check_action(def: &TableDef, a: &EntryAction, profile: Option<&ProfileState>) -> Res<()> {
    let name = &def.name;
    match (a, def.kind) {
        (EntryAction::Call(c), TableKind::Direct) => match def.actions.get(c.slot as usize) {
            Some(_) => Ok(()),
            None => Err(UpdateError::Invalid(format!("table {name:?} has no action slot {}", c.slot))),
        },
        (EntryAction::Member(m), TableKind::Indirect) => match profile {
            Some(p) if p.members.contains_key(m) => Ok(()),
            _ => Err(UpdateError::NotFound(format!("member {m} of table {name:?}'s action profile"))),
        },
        (EntryAction::Group(g), TableKind::Indirect) => match profile {
            Some(p) if p.groups.contains_key(g) => Ok(()),
            _ => Err(UpdateError::NotFound(format!("group {g} of table {name:?}'s action profile"))),
        },
        (EntryAction::Call(_), TableKind::Indirect) => {
            Err(UpdateError::Invalid(format!("table {name:?} is indirect: entries name a member or group")))
        }
        (_, TableKind::Direct) => {
            Err(UpdateError::Invalid(format!("table {name:?} is direct: entries name an action")))
        }
    }
}

impl GroupDef {
    fn rebuild(&mut self, down: &[u32]) {
        self.expanded.clear();
        for (m, w, watch) in &self.members {
            if watch.is_some_and(|p| down.contains(&p)) {
                continue;
            }
            for _ in 0..*w {
                self.expanded.push(*m);
            }
        }
    }

    /// The member a hash picks (`None` for an empty group).
    #[inline]
    pub fn pick(&self, hash: u64) -> Option<u32> {
        if self.expanded.is_empty() {
            None
        } else {
            Some(self.expanded[(hash % self.expanded.len() as u64) as usize])
        }
    }
}

impl Runtime {
    /// Empty state for a program, with its const entries installed.
    ///
    /// Panics if a const entry is refused, which [`super::compile::compile`] rules
    /// out (it installs them once with [`Runtime::try_new`] and reports the entry).
    pub fn new(ir: &Ir) -> Runtime {
        Runtime::try_new(ir).unwrap_or_else(|e| panic!("a compiled program's const entries install: {e:?}"))
    }

    /// Empty state with the const entries installed, or the first one refused:
    /// `(table, entry index, why)`.
    pub fn try_new(ir: &Ir) -> Result<Runtime, (TableId, usize, UpdateError)> {
        let mut rt = Runtime {
            tables: ir.tables.iter().map(TableState::new).collect(),
            profiles: ir.profiles.iter().map(|_| ProfileState::default()).collect(),
            mcast: HashMap::new(),
            clone_sessions: HashMap::new(),
            value_sets: ir.value_sets.iter().map(|_| vec![]).collect(),
            registers: ir.registers.iter().map(|r| vec![0; r.size.min(1 << 24) as usize]).collect(),
            counters: ir.counters.iter().map(|c| vec![(0, 0); c.size.min(1 << 24) as usize]).collect(),
            down_ports: vec![],
            meters: ir
                .meters
                .iter()
                .map(|m| if m.direct.is_some() { vec![] } else { vec![None; m.size.min(1 << 20) as usize] })
                .collect(),
            meter_share: None,
            meter_tables: ir.meters.iter().map(|m| m.direct).collect(),
        };
        for (t, def) in ir.tables.iter().enumerate() {
            for (i, ce) in def.const_entries.iter().enumerate() {
                let e = Entry {
                    key: ce.key.clone(),
                    priority: ce.priority,
                    action: EntryAction::Call(ce.action.clone()),
                    meta: None,
                };
                rt.insert(ir, t as TableId, e).map_err(|err| (t as TableId, i, err))?;
            }
        }
        Ok(rt)
    }

    fn table<'a>(&self, ir: &'a Ir, t: TableId) -> Res<&'a TableDef> {
        ir.tables.get(t as usize).ok_or_else(|| UpdateError::NotFound(format!("table id {t}")))
    }

    fn insert_unchecked(&mut self, t: usize, e: Entry) -> Handle {
        let ts = &mut self.tables[t];
        let h = match ts.free.pop() {
            Some(h) => {
                ts.entries[h as usize] = Some(e);
                h
            }
            None => {
                ts.entries.push(Some(e));
                ts.direct_counters.push((0, 0));
                ts.hits.push(0);
                (ts.entries.len() - 1) as Handle
            }
        };
        ts.direct_counters[h as usize] = (0, 0);
        ts.hits[h as usize] = 0;
        ts.count += 1;
        ts.index(h);
        h
    }

    /// Insert an entry.
    pub fn insert(&mut self, ir: &Ir, t: TableId, e: Entry) -> Res<Handle> {
        let def = self.table(ir, t)?;
        let ts = &self.tables[t as usize];
        ts.check(ir, def, &e, def.profile.map(|p| &self.profiles[p as usize]))?;
        if ts.find(&e).is_some() {
            return Err(UpdateError::Exists(format!("an entry of table {:?} with this key and priority", def.name)));
        }
        if ts.count >= ts.capacity {
            return Err(UpdateError::Full(format!("table {:?} ({} entries)", def.name, ts.capacity)));
        }
        let direct_meter = def.direct_meter;
        let h = self.insert_unchecked(t as usize, e);
        if let Some(m) = direct_meter {
            *self.direct_meter_cell(m, h) = None;
        }
        Ok(h)
    }

    /// The table meter `m` is direct on (`None`: an indexed meter).
    pub fn meter_table(&self, m: u32) -> Option<TableId> {
        self.meter_tables.get(m as usize).copied().flatten()
    }

    /// Direct meter `m`'s cell for entry handle `h` (grown on demand).
    pub fn direct_meter_cell(&mut self, m: u32, h: Handle) -> &mut Option<MeterCell> {
        let cells = &mut self.meters[m as usize];
        if cells.len() <= h as usize {
            cells.resize(h as usize + 1, None);
        }
        &mut cells[h as usize]
    }

    /// Replace the action of the entry with `e`'s key and priority.
    pub fn modify(&mut self, ir: &Ir, t: TableId, e: Entry) -> Res<Handle> {
        self.modify_taking(ir, t, e).map(|(h, _)| h)
    }

    /// [`Runtime::modify`], returning the entry as it was too.
    fn modify_taking(&mut self, ir: &Ir, t: TableId, e: Entry) -> Res<(Handle, Entry)> {
        let def = self.table(ir, t)?;
        let ts = &self.tables[t as usize];
        ts.check(ir, def, &e, def.profile.map(|p| &self.profiles[p as usize]))?;
        let Some(h) = ts.find(&e) else {
            return Err(UpdateError::NotFound(format!("an entry of table {:?} with this key and priority", def.name)));
        };
        let old = self.tables[t as usize].entries[h as usize].replace(e).expect("found entries exist");
        Ok((h, old))
    }

    /// Delete the entry with `key` and `priority`.
    pub fn delete(&mut self, ir: &Ir, t: TableId, key: Vec<KeyValue>, priority: i32) -> Res<Entry> {
        self.delete_taking(ir, t, key, priority).map(|(_, e, _)| e)
    }

    /// [`Runtime::delete`], returning its handle and its direct meter cell too.
    fn delete_taking(
        &mut self,
        ir: &Ir,
        t: TableId,
        key: Vec<KeyValue>,
        priority: i32,
    ) -> Res<(Handle, Entry, Option<MeterCell>)> {
        let def = self.table(ir, t)?;
        let probe = Entry { key, priority, action: EntryAction::Member(0), meta: None };
        let ts = &mut self.tables[t as usize];
        let Some(h) = ts.find(&probe) else {
            return Err(UpdateError::NotFound(format!("an entry of table {:?} with this key and priority", def.name)));
        };
        ts.unindex(h);
        ts.count -= 1;
        ts.free.push(h);
        let e = ts.entries[h as usize].take().expect("found entries exist");
        let cell = match def.direct_meter {
            Some(m) => self.direct_meter_cell(m, h).take(),
            None => None,
        };
        Ok((h, e, cell))
    }

    /// Whether [`Runtime::apply_undoable`] takes `op`: table entry inserts, modifies
    /// and deletes, the ops of nearly every batch.
    pub fn undoable(op: &StateOp) -> bool {
        matches!(op, StateOp::Insert { .. } | StateOp::Modify { .. } | StateOp::Delete { .. })
    }

    /// Apply a table entry insert, modify or delete ([`Runtime::undoable`]) and say
    /// how to take it back. A refused op changes nothing. This is how a batch is
    /// rolled back without copying the whole state first (see [`Undo`]).
    pub fn apply_undoable(&mut self, ir: &Ir, op: &StateOp) -> Res<Undo> {
        match op {
            StateOp::Insert { table, entry } => {
                let reused = self.tables.get(*table as usize).and_then(|ts| {
                    let h = *ts.free.last()?;
                    Some((ts.direct_counters[h as usize], ts.hits[h as usize]))
                });
                let handle = self.insert(ir, *table, entry.clone())?;
                Ok(Undo::Inserted { table: *table, handle, reused })
            }
            StateOp::Modify { table, entry } => {
                let (handle, entry) = self.modify_taking(ir, *table, entry.clone())?;
                Ok(Undo::Modified { table: *table, handle, entry })
            }
            StateOp::Delete { table, key, priority } => {
                let (handle, entry, meter) = self.delete_taking(ir, *table, key.clone(), *priority)?;
                Ok(Undo::Deleted { table: *table, handle, entry, meter: meter.map(Box::new) })
            }
            _ => Err(UpdateError::Invalid("only table entry inserts, modifies and deletes can be undone".into())),
        }
    }

    /// Take back an op [`Runtime::apply_undoable`] applied. Undos of a batch run in
    /// the reverse order of their ops, each on the state its op left.
    pub fn undo(&mut self, ir: &Ir, u: Undo) {
        match u {
            Undo::Inserted { table, handle, reused } => {
                let ts = &mut self.tables[table as usize];
                ts.unindex(handle);
                ts.count -= 1;
                ts.entries[handle as usize] = None;
                match reused {
                    Some((counters, hits)) => {
                        ts.direct_counters[handle as usize] = counters;
                        ts.hits[handle as usize] = hits;
                        ts.free.push(handle);
                    }
                    None => {
                        debug_assert_eq!(handle as usize + 1, ts.entries.len(), "an appended handle is the last");
                        ts.entries.pop();
                        ts.direct_counters.pop();
                        ts.hits.pop();
                    }
                }
            }
            Undo::Deleted { table, handle, entry, meter } => {
                let ts = &mut self.tables[table as usize];
                let freed = ts.free.pop();
                debug_assert_eq!(freed, Some(handle), "undone in reverse order");
                ts.entries[handle as usize] = Some(entry);
                ts.count += 1;
                ts.index(handle);
                if let Some(m) = ir.tables[table as usize].direct_meter {
                    *self.direct_meter_cell(m, handle) = meter.map(|c| *c);
                }
            }
            Undo::Modified { table, handle, entry } => {
                self.tables[table as usize].entries[handle as usize] = Some(entry);
            }
        }
    }

    /// Set the default action (`None` resets it to the program's).
    pub fn set_default(&mut self, ir: &Ir, t: TableId, a: Option<EntryAction>) -> Res<()> {
        let def = self.table(ir, t)?;
        if def.default_const {
            return Err(UpdateError::Const(format!("table {:?} has a const default action", def.name)));
        }
        let a = match a {
            None => def.default_action.clone().map(EntryAction::Call),
            Some(a) => {
                if let EntryAction::Call(c) = &a {
                    let Some(action) = def.actions.get(c.slot as usize) else {
                        return Err(UpdateError::Invalid(format!(
                            "table {:?} has no action slot {}",
                            def.name, c.slot
                        )));
                    };
                    check_args(ir, *action, &c.args)?;
                } else {
                    check_action(def, &a, def.profile.map(|p| &self.profiles[p as usize]))?;
                }
                Some(a)
            }
        };
        self.tables[t as usize].default = a;
        Ok(())
    }

    /// Add or replace a member of an action profile.
    pub fn set_member(&mut self, ir: &Ir, profile: u32, id: u32, m: Member) -> Res<()> {
        let Some(pdef) = ir.profiles.get(profile as usize) else {
            return Err(UpdateError::NotFound(format!("action profile {profile}")));
        };
        let users: Vec<&TableDef> = ir.tables.iter().filter(|t| t.profile == Some(profile)).collect();
        if !users.iter().any(|t| t.actions.contains(&m.action)) {
            return Err(UpdateError::Invalid(format!(
                "action {:?} is not an action of the tables of profile {:?}",
                ir.actions.get(m.action as usize).map(|a| a.name.as_str()).unwrap_or("?"),
                pdef.name
            )));
        }
        check_args(ir, m.action, &m.args)?;
        let p = &mut self.profiles[profile as usize];
        if !p.members.contains_key(&id) && p.members.len() as u64 >= pdef.max_size.max(1) {
            return Err(UpdateError::Full(format!("action profile {:?}", pdef.name)));
        }
        p.members.insert(id, m);
        Ok(())
    }

    /// Remove a member (refused while a group or entry uses it).
    pub fn delete_member(&mut self, ir: &Ir, profile: u32, id: u32) -> Res<()> {
        let p = self
            .profiles
            .get(profile as usize)
            .ok_or_else(|| UpdateError::NotFound(format!("action profile {profile}")))?;
        if !p.members.contains_key(&id) {
            return Err(UpdateError::NotFound(format!("member {id}")));
        }
        if p.groups.values().any(|g| g.members.iter().any(|(m, _, _)| *m == id)) {
            return Err(UpdateError::InUse(format!("member {id} is in a group")));
        }
        if self.profile_in_use(ir, profile, &EntryAction::Member(id)) {
            return Err(UpdateError::InUse(format!("member {id} is used by a table entry")));
        }
        self.profiles[profile as usize].members.remove(&id);
        Ok(())
    }

    fn profile_in_use(&self, ir: &Ir, profile: u32, a: &EntryAction) -> bool {
        ir.tables.iter().enumerate().filter(|(_, t)| t.profile == Some(profile)).any(|(i, _)| {
            let ts = &self.tables[i];
            ts.default.as_ref() == Some(a) || ts.entries().any(|(_, e)| e.action == *a)
        })
    }

    /// Add or replace a group: members with weights and watch ports.
    pub fn set_group(&mut self, ir: &Ir, profile: u32, id: u32, members: Vec<(u32, u32, Option<u32>)>) -> Res<()> {
        let Some(pdef) = ir.profiles.get(profile as usize) else {
            return Err(UpdateError::NotFound(format!("action profile {profile}")));
        };
        if pdef.selector.is_none() {
            return Err(UpdateError::Invalid(format!("action profile {:?} has no selector: no groups", pdef.name)));
        }
        let p = &mut self.profiles[profile as usize];
        for (m, w, _) in &members {
            if !p.members.contains_key(m) {
                return Err(UpdateError::NotFound(format!("member {m} of profile {:?}", pdef.name)));
            }
            if *w == 0 || *w > 1024 {
                return Err(UpdateError::Invalid(format!("member {m} weight {w} not in 1..=1024")));
            }
        }
        let mut g = GroupDef { members, expanded: vec![] };
        g.rebuild(&self.down_ports);
        p.groups.insert(id, g);
        Ok(())
    }

    /// Remove a group (refused while an entry uses it).
    pub fn delete_group(&mut self, ir: &Ir, profile: u32, id: u32) -> Res<()> {
        let p = self
            .profiles
            .get(profile as usize)
            .ok_or_else(|| UpdateError::NotFound(format!("action profile {profile}")))?;
        if !p.groups.contains_key(&id) {
            return Err(UpdateError::NotFound(format!("group {id}")));
        }
        if self.profile_in_use(ir, profile, &EntryAction::Group(id)) {
            return Err(UpdateError::InUse(format!("group {id} is used by a table entry")));
        }
        self.profiles[profile as usize].groups.remove(&id);
        Ok(())
    }

    /// Mark a port up or down (selector watch ports).
    pub fn set_port_down(&mut self, port: u32, down: bool) {
        self.down_ports.retain(|p| *p != port);
        if down {
            self.down_ports.push(port);
        }
        for p in &mut self.profiles {
            for g in p.groups.values_mut() {
                g.rebuild(&self.down_ports);
            }
        }
    }
}

fn check_args(ir: &Ir, action: ActionId, args: &[Value]) -> Res<()> {
    let a = &ir.actions[action as usize];
    if args.len() != a.params.len() {
        return Err(UpdateError::Invalid(format!(
            "action {:?} takes {} parameters, {} given",
            a.name,
            a.params.len(),
            args.len()
        )));
    }
    for (v, (n, w)) in args.iter().zip(&a.params) {
        if *v > mask_of(*w) {
            return Err(UpdateError::Invalid(format!(
                "action {:?} parameter {n:?}: {v:#x} does not fit {w} bits",
                a.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod undo_tests;

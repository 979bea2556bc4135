//! P4Runtime entities to and from the engine's state: bytestrings, table entries,
//! action profiles, the packet replication engine, value sets, registers, counters.
//!
//! Writes become [`Op`]s (applied to control's copy first, then to every worker);
//! reads render the control copy (counters come from the workers). Every refusal is
//! a [`Fail`] with the spec's code and a message that names the object.

use sluice_fastpath::p4::ir::{mask_of, ActionCall, Ir, KeyValue, MatchKind, Value};
use sluice_fastpath::p4::meters::MeterConfig;
use sluice_fastpath::p4::ops::Op;
use sluice_fastpath::p4::p4info::MatchType;
use sluice_fastpath::p4::tables::{Entry, EntryAction, EntryMeta, Member, Runtime, UpdateError};
use sluice_proto::p4::v1 as pb;
use tonic::Code;

use super::digest::DigestConfig;
use super::schema::{Schema, TableSchema};

/// Why an update or read request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    /// The gRPC canonical code.
    pub code: Code,
    /// What was wrong.
    pub message: String,
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

/// A refusal with `code`.
pub fn fail<T>(code: Code, message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail { code, message: message.into() })
}

impl From<UpdateError> for Fail {
    fn from(e: UpdateError) -> Fail {
        let code = match &e {
            UpdateError::NotFound(_) => Code::NotFound,
            UpdateError::Exists(_) => Code::AlreadyExists,
            UpdateError::Full(_) => Code::ResourceExhausted,
            UpdateError::InUse(_) => Code::FailedPrecondition,
            UpdateError::Const(_) => Code::PermissionDenied,
            UpdateError::Invalid(_) => Code::InvalidArgument,
        };
        Fail { code, message: e.to_string() }
    }
}

type R<T> = Result<T, Fail>;

/// A bytestring as a value of `bitwidth` bits. Canonical (shortest) and padded
/// forms are both accepted; empty strings and values wider than `bitwidth` are
/// OUT_OF_RANGE.
pub fn decode(bytes: &[u8], bitwidth: u32, what: &dyn Fn() -> String) -> R<Value> {
    if bytes.is_empty() {
        return fail(Code::OutOfRange, format!("{}: empty bytestring (zero is \"\\x00\")", what()));
    }
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let significant = &bytes[first..];
    if significant.len() > 16 {
        return fail(Code::OutOfRange, format!("{}: value wider than {bitwidth} bits", what()));
    }
    let v = significant.iter().fold(0u128, |acc, b| (acc << 8) | *b as u128);
    if bitwidth < 128 && v > mask_of(bitwidth) {
        return fail(Code::OutOfRange, format!("{}: value {v:#x} does not fit {bitwidth} bits", what()));
    }
    Ok(v)
}

/// The canonical bytestring of `v` (shortest big-endian; zero is one zero byte).
pub fn encode(v: Value) -> Vec<u8> {
    let b = v.to_be_bytes();
    let first = b.iter().position(|x| *x != 0).unwrap_or(15);
    b[first..].to_vec()
}

fn table(s: &Schema, id: u32) -> R<&TableSchema> {
    match s.tables.get(&id) {
        Some(t) => Ok(t),
        None if id == 0 => fail(Code::InvalidArgument, "table_id 0: a write must name a table"),
        None => fail(Code::NotFound, format!("no table with id {id} in the P4Info")),
    }
}

/// The engine key of a match list (don't-care fields omitted, as the spec requires).
pub fn key_of(t: &TableSchema, matches: &[pb::FieldMatch]) -> R<Vec<KeyValue>> {
    use pb::field_match::FieldMatchType as M;
    let mut key: Vec<Option<KeyValue>> = vec![None; t.fields.len()];
    for m in matches {
        let Some(i) = t.fields.iter().position(|f| f.id == m.field_id) else {
            return fail(Code::InvalidArgument, format!("table {:?} has no match field id {}", t.name, m.field_id));
        };
        let f = &t.fields[i];
        if key[i].is_some() {
            return fail(Code::InvalidArgument, format!("table {:?}: match field {:?} given twice", t.name, f.name));
        }
        let w = f.bitwidth;
        let what = || format!("table {:?} match field {:?} ({w} bits)", t.name, f.name);
        let kv = match (&m.field_match_type, &f.kind) {
            (Some(M::Exact(x)), MatchType::Exact) => KeyValue::Exact(decode(&x.value, w, &what)?),
            (Some(M::Lpm(x)), MatchType::Lpm) => {
                let value = decode(&x.value, w, &what)?;
                if x.prefix_len <= 0 || x.prefix_len as u32 > w {
                    return fail(
                        Code::InvalidArgument,
                        format!("{}: prefix length {} not in 1..={w} (omit the field for /0)", what(), x.prefix_len),
                    );
                }
                let prefix = x.prefix_len as u32;
                if value & mask_of(w - prefix) != 0 {
                    return fail(
                        Code::InvalidArgument,
                        format!("{}: bits beyond the /{prefix} prefix are set", what()),
                    );
                }
                KeyValue::Lpm { value, prefix }
            }
            (Some(M::Ternary(x)), MatchType::Ternary) => {
                let value = decode(&x.value, w, &what)?;
                let mask = decode(&x.mask, w, &what)?;
                if mask == 0 {
                    return fail(Code::InvalidArgument, format!("{}: mask 0 (omit the field for don't care)", what()));
                }
                if value & !mask != 0 {
                    return fail(Code::InvalidArgument, format!("{}: value has bits outside the mask", what()));
                }
                KeyValue::Ternary { value, mask }
            }
            (Some(M::Range(x)), MatchType::Range) => {
                let low = decode(&x.low, w, &what)?;
                let high = decode(&x.high, w, &what)?;
                if low > high {
                    return fail(Code::InvalidArgument, format!("{}: low {low:#x} > high {high:#x}", what()));
                }
                if low == 0 && high == mask_of(w) {
                    return fail(
                        Code::InvalidArgument,
                        format!("{}: full range (omit the field for don't care)", what()),
                    );
                }
                KeyValue::Range { low, high }
            }
            (Some(M::Optional(x)), MatchType::Optional) => {
                KeyValue::Ternary { value: decode(&x.value, w, &what)?, mask: mask_of(w) }
            }
            (None, _) => return fail(Code::InvalidArgument, format!("{}: no match type set", what())),
            (Some(_), kind) => {
                return fail(Code::InvalidArgument, format!("{}: the field's match type is {kind:?}", what()))
            }
        };
        key[i] = Some(kv);
    }
    t.fields
        .iter()
        .zip(key)
        .map(|(f, k)| match k {
            Some(k) => Ok(k),
            None => match f.ir_kind {
                MatchKind::Exact => fail(
                    Code::InvalidArgument,
                    format!(
                        "table {:?}: exact match field {:?} is missing (exact fields cannot be omitted)",
                        t.name, f.name
                    ),
                ),
                MatchKind::Lpm => Ok(KeyValue::Lpm { value: 0, prefix: 0 }),
                MatchKind::Range => Ok(KeyValue::Range { low: 0, high: mask_of(f.bitwidth) }),
                MatchKind::Ternary | MatchKind::Optional => Ok(KeyValue::Ternary { value: 0, mask: 0 }),
            },
        })
        .collect()
}

/// The match list of an engine key (canonical bytestrings, don't-care omitted).
pub fn matches_of(t: &TableSchema, key: &[KeyValue]) -> Vec<pb::FieldMatch> {
    use pb::field_match::{self as fm, FieldMatchType as M};
    let mut out = Vec::with_capacity(key.len());
    for (f, k) in t.fields.iter().zip(key) {
        let m = match (*k, &f.kind) {
            (KeyValue::Exact(v), MatchType::Optional) => M::Optional(fm::Optional { value: encode(v) }),
            (KeyValue::Exact(v), _) => M::Exact(fm::Exact { value: encode(v) }),
            (KeyValue::Lpm { prefix: 0, .. }, _) | (KeyValue::Ternary { mask: 0, .. }, _) => continue,
            (KeyValue::Lpm { value, prefix }, _) => M::Lpm(fm::Lpm { value: encode(value), prefix_len: prefix as i32 }),
            (KeyValue::Ternary { value, .. }, MatchType::Optional) => {
                M::Optional(fm::Optional { value: encode(value) })
            }
            (KeyValue::Ternary { value, mask }, _) => {
                M::Ternary(fm::Ternary { value: encode(value), mask: encode(mask) })
            }
            (KeyValue::Range { low, high }, _) if low == 0 && high == mask_of(f.bitwidth) => continue,
            (KeyValue::Range { low, high }, _) => M::Range(fm::Range { low: encode(low), high: encode(high) }),
        };
        out.push(pb::FieldMatch { field_id: f.id, field_match_type: Some(m) });
    }
    out
}

/// An action with its arguments in the engine's parameter order.
fn call_args(s: &Schema, a: &pb::Action, context: &str) -> R<Vec<Value>> {
    let Some(def) = s.actions.get(&a.action_id) else {
        return fail(Code::InvalidArgument, format!("{context}: no action with id {}", a.action_id));
    };
    let mut args: Vec<Option<Value>> = vec![None; def.params.len()];
    for p in &a.params {
        let Some(i) = def.params.iter().position(|(id, _, _)| *id == p.param_id) else {
            return fail(Code::InvalidArgument, format!("action {:?} has no parameter id {}", def.name, p.param_id));
        };
        let (_, name, w) = &def.params[i];
        if args[i].is_some() {
            return fail(Code::InvalidArgument, format!("action {:?}: parameter {name:?} given twice", def.name));
        }
        args[i] = Some(decode(&p.value, *w, &|| format!("action {:?} parameter {name:?} ({w} bits)", def.name))?);
    }
    args.into_iter()
        .zip(&def.params)
        .map(|(v, (_, name, _))| {
            v.ok_or_else(|| Fail {
                code: Code::InvalidArgument,
                message: format!("action {:?}: parameter {name:?} is missing", def.name),
            })
        })
        .collect()
}

fn table_action(s: &Schema, t: &TableSchema, a: &pb::TableAction) -> R<EntryAction> {
    use pb::table_action::Type;
    match &a.r#type {
        Some(Type::Action(x)) => {
            if t.profile.is_some() {
                return fail(Code::InvalidArgument, format!("table {:?} is indirect: give a member or group", t.name));
            }
            let Some(slot) = t.actions.get(&x.action_id) else {
                return fail(
                    Code::InvalidArgument,
                    format!("action id {} is not an action of table {:?}", x.action_id, t.name),
                );
            };
            Ok(EntryAction::Call(ActionCall {
                slot: *slot,
                args: call_args(s, x, &format!("table {:?}", t.name))?.into(),
            }))
        }
        Some(Type::ActionProfileMemberId(m)) if t.profile.is_some() => Ok(EntryAction::Member(*m)),
        Some(Type::ActionProfileGroupId(g)) if t.profile.is_some() => Ok(EntryAction::Group(*g)),
        Some(Type::ActionProfileActionSet(_)) => fail(
            Code::Unimplemented,
            "one-shot action selector programming (action_profile_action_set) is not supported yet: \
             program members and groups",
        ),
        Some(_) => fail(Code::InvalidArgument, format!("table {:?} is direct: give an action", t.name)),
        None => fail(Code::InvalidArgument, format!("table {:?}: the entry has no action", t.name)),
    }
}

/// The P4Runtime form of an engine action of table `t`.
pub fn action_of(s: &Schema, t: &TableSchema, ir: &Ir, a: &EntryAction) -> pb::TableAction {
    use pb::table_action::Type;
    let ty = match a {
        EntryAction::Call(c) => {
            let id = t.slot_actions.get(c.slot as usize).copied().unwrap_or(0);
            let ir_action = ir.tables[t.ir as usize].actions[c.slot as usize];
            Type::Action(action_msg(s, id, &ir.actions[ir_action as usize].params, &c.args))
        }
        EntryAction::Member(m) => Type::ActionProfileMemberId(*m),
        EntryAction::Group(g) => Type::ActionProfileGroupId(*g),
    };
    pb::TableAction { r#type: Some(ty) }
}

fn action_msg(s: &Schema, id: u32, ir_params: &[(String, u32)], args: &[Value]) -> pb::Action {
    let params = match s.actions.get(&id) {
        Some(def) => def
            .params
            .iter()
            .zip(args)
            .map(|((pid, _, _), v)| pb::action::Param { param_id: *pid, value: encode(*v) })
            .collect(),
        None => ir_params
            .iter()
            .zip(args)
            .enumerate()
            .map(|(i, (_, v))| pb::action::Param { param_id: i as u32 + 1, value: encode(*v) })
            .collect(),
    };
    pb::Action { action_id: id, params }
}

/// What a write does besides [`Op`]s: counter cells set on the workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterWrite {
    /// A direct counter cell of an entry (engine table, key, priority).
    Direct {
        /// Engine table.
        table: u32,
        /// Key.
        key: Vec<KeyValue>,
        /// Priority.
        priority: i32,
        /// Packets.
        packets: u64,
        /// Bytes.
        bytes: u64,
    },
    /// Indexed counter cells (`None`: all).
    Indexed {
        /// Engine counter.
        counter: u32,
        /// Cell.
        index: Option<u32>,
        /// Packets.
        packets: u64,
        /// Bytes.
        bytes: u64,
    },
}

/// What one update does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// State updates.
    pub ops: Vec<Op>,
    /// Counter cells to set after the ops.
    pub counters: Vec<CounterWrite>,
    /// A digest's configuration (control-side only).
    pub digest: Option<DigestWrite>,
}

/// A `DigestEntry` write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestWrite {
    /// The digest (P4Info id).
    pub id: u32,
    /// The config; `None`: delete.
    pub config: Option<DigestConfig>,
    /// INSERT (the digest must not be configured yet) rather than MODIFY.
    pub insert: bool,
}

fn data(d: Option<pb::CounterData>) -> R<(u64, u64)> {
    let d = d.unwrap_or_default();
    if d.packet_count < 0 || d.byte_count < 0 {
        return fail(Code::InvalidArgument, "counter values must not be negative");
    }
    Ok((d.packet_count as u64, d.byte_count as u64))
}

fn modify_only(ty: i32, what: &str) -> R<()> {
    if ty != pb::update::Type::Modify as i32 {
        return fail(Code::InvalidArgument, format!("{what} entries take MODIFY only"));
    }
    Ok(())
}

fn index(i: &Option<pb::Index>, size: u64, what: &str) -> R<Option<u32>> {
    match i {
        None => Ok(None),
        Some(x) if x.index < 0 => fail(Code::InvalidArgument, format!("{what}: negative index {}", x.index)),
        Some(x) if x.index as u64 >= size => {
            fail(Code::OutOfRange, format!("{what}: index {} out of range (size {size})", x.index))
        }
        Some(x) => Ok(Some(x.index as u32)),
    }
}

fn replicas(rs: &[pb::Replica]) -> R<Vec<(u32, u32)>> {
    use pb::replica::PortKind;
    rs.iter()
        .map(|r| {
            if !r.backup_replicas.is_empty() {
                return fail(Code::Unimplemented, "backup replicas are not supported");
            }
            let port = match &r.port_kind {
                #[allow(deprecated)] // older clients (p4runtime < 1.4) send it
                Some(PortKind::EgressPort(p)) => *p,
                Some(PortKind::Port(b)) => decode(b, 32, &|| "replica port".into())? as u32,
                None => return fail(Code::InvalidArgument, "a replica has no port"),
            };
            if port >= 511 {
                return fail(Code::InvalidArgument, format!("replica port {port}: P4 ports are 0..=510"));
            }
            Ok((port, r.instance))
        })
        .collect()
}

const METER_DATA_READ_ONLY: &str = "meter counter data is read-only here (it counts the colors marked)";

/// The table entry of a direct resource update and its table, which must have a
/// direct `what` (`has`).
fn direct_table<'a>(
    s: &'a Schema,
    e: &'a Option<pb::TableEntry>,
    what: &str,
    has: impl Fn(&TableSchema) -> bool,
) -> R<(&'a pb::TableEntry, &'a TableSchema)> {
    let Some(e) = e else {
        return fail(Code::InvalidArgument, format!("a direct {what} entry needs its table entry"));
    };
    let t = table(s, e.table_id)?;
    if !has(t) {
        return fail(Code::InvalidArgument, format!("table {:?} has no direct {what}", t.name));
    }
    Ok((e, t))
}

/// A meter config from the wire: `None` (unset, or all zero) leaves the cell
/// unconfigured (GREEN); v1model meters are trTCM (RFC 2698).
fn meter_config(c: &Option<pb::MeterConfig>, what: &str) -> R<Option<MeterConfig>> {
    let Some(c) = c else { return Ok(None) };
    if *c == pb::MeterConfig::default() {
        return Ok(None);
    }
    if c.eburst != 0 {
        return fail(Code::InvalidArgument, format!("{what}: v1model meters are trTCM (RFC 2698): eburst must be 0"));
    }
    if c.cir < 0 || c.cburst < 0 || c.pir < 0 || c.pburst < 0 {
        return fail(Code::InvalidArgument, format!("{what}: meter rates and bursts must not be negative"));
    }
    let m = MeterConfig { cir: c.cir as u64, cburst: c.cburst as u64, pir: c.pir as u64, pburst: c.pburst as u64 };
    m.check().map_err(|e| Fail { code: Code::InvalidArgument, message: format!("{what}: {e}") })?;
    Ok(Some(m))
}

/// A meter config for the wire.
pub fn meter_config_msg(m: &MeterConfig) -> pb::MeterConfig {
    pb::MeterConfig {
        cir: m.cir as i64,
        cburst: m.cburst as i64,
        pir: m.pir as i64,
        pburst: m.pburst as i64,
        eburst: 0,
    }
}

/// A table entry update as a plan.
fn table_update(s: &Schema, ty: i32, e: &pb::TableEntry) -> R<Plan> {
    use pb::update::Type;
    let t = table(s, e.table_id)?;
    if e.is_const {
        return fail(Code::InvalidArgument, "is_const is set by the server only");
    }
    if e.meter_counter_data.is_some() {
        return fail(Code::Unimplemented, METER_DATA_READ_ONLY);
    }
    let meter = meter_config(&e.meter_config, &t.name)?;
    if e.meter_config.is_some() && (t.direct_meter.is_none() || e.is_default_action) {
        return fail(Code::InvalidArgument, format!("table {:?}: this entry has no direct meter to configure", t.name));
    }
    if e.time_since_last_hit.is_some() {
        return fail(Code::InvalidArgument, "time_since_last_hit must be unset in writes");
    }
    if e.idle_timeout_ns < 0 {
        return fail(Code::InvalidArgument, format!("idle_timeout_ns {} is negative", e.idle_timeout_ns));
    }
    if e.idle_timeout_ns != 0 && e.is_default_action {
        return fail(Code::InvalidArgument, "default entries have no idle timeout (idle_timeout_ns must be 0)");
    }
    if e.idle_timeout_ns != 0 && !t.idle_timeout {
        return fail(
            Code::InvalidArgument,
            format!("table {:?} does not support idle timeouts (idle_timeout_ns must be 0)", t.name),
        );
    }
    #[allow(deprecated)]
    let controller_metadata = e.controller_metadata;
    if e.is_default_action && (controller_metadata != 0 || !e.metadata.is_empty()) {
        return fail(Code::InvalidArgument, "the default entry carries no metadata");
    }
    let meta = EntryMeta {
        idle_timeout_ns: e.idle_timeout_ns,
        // Deprecated in v1.5 but still sent by older clients: stored and read back.
        controller_metadata,
        metadata: e.metadata.clone(),
    };
    let ir_table = t.ir;
    if e.is_default_action {
        if ty != Type::Modify as i32 {
            return fail(Code::InvalidArgument, "the default entry takes MODIFY only");
        }
        if !e.r#match.is_empty() || e.priority != 0 {
            return fail(Code::InvalidArgument, "the default entry has no match and priority 0");
        }
        if t.default_const {
            return fail(Code::PermissionDenied, format!("table {:?} has a const default action", t.name));
        }
        let action = match &e.action {
            None => None,
            Some(a) => Some(table_action(s, t, a)?),
        };
        return Ok(Plan { ops: vec![Op::SetDefault { table: ir_table, action }], ..Default::default() });
    }
    if t.is_const {
        return fail(Code::PermissionDenied, format!("table {:?} is const: its entries are fixed", t.name));
    }
    if t.fields.is_empty() {
        return fail(
            Code::InvalidArgument,
            format!("table {:?} has no key: only its default entry can be set", t.name),
        );
    }
    let key = key_of(t, &e.r#match)?;
    if t.needs_priority && e.priority <= 0 {
        return fail(
            Code::InvalidArgument,
            format!("table {:?} needs a priority > 0 (ternary, range or optional key)", t.name),
        );
    }
    if !t.needs_priority && e.priority != 0 {
        return fail(Code::InvalidArgument, format!("table {:?} takes priority 0 (exact and LPM keys only)", t.name));
    }
    let priority = e.priority;
    let mut plan = Plan::default();
    match Type::try_from(ty) {
        Ok(Type::Insert) | Ok(Type::Modify) => {
            let Some(a) = &e.action else {
                return fail(Code::InvalidArgument, format!("table {:?}: the entry has no action", t.name));
            };
            let entry = Entry { key: key.clone(), priority, action: table_action(s, t, a)?, meta: meta.boxed() };
            plan.ops.push(if ty == Type::Insert as i32 {
                Op::Insert { table: ir_table, entry }
            } else {
                Op::Modify { table: ir_table, entry }
            });
            if e.meter_config.is_some() {
                // Checked above: it cannot fail once the entry exists.
                let (key, config) = (key.clone(), meter);
                plan.ops.push(Op::SetDirectMeter { table: ir_table, key, priority, config });
            }
            if let Some(d) = &e.counter_data {
                if t.direct_counter.is_none() {
                    return fail(Code::InvalidArgument, format!("table {:?} has no direct counter", t.name));
                }
                let (packets, bytes) = data(Some(*d))?;
                plan.counters.push(CounterWrite::Direct { table: ir_table, key, priority, packets, bytes });
            }
        }
        Ok(Type::Delete) => plan.ops.push(Op::Delete { table: ir_table, key, priority }),
        _ => return fail(Code::InvalidArgument, format!("update type {ty} is not INSERT, MODIFY or DELETE")),
    }
    Ok(plan)
}

/// One update as a plan.
pub fn plan(s: &Schema, ir: &Ir, u: &pb::Update) -> R<Plan> {
    use pb::entity::Entity as E;
    use pb::update::Type;
    let ty = u.r#type;
    let Some(entity) = u.entity.as_ref().and_then(|e| e.entity.as_ref()) else {
        return fail(Code::InvalidArgument, "the update has no entity");
    };
    let is = |t: Type| ty == t as i32;
    if !(is(Type::Insert) || is(Type::Modify) || is(Type::Delete)) {
        return fail(Code::InvalidArgument, format!("update type {ty} is not INSERT, MODIFY or DELETE"));
    }
    let op = |op| Ok(Plan { ops: vec![op], ..Default::default() });
    match entity {
        E::TableEntry(e) => table_update(s, ty, e),
        E::ActionProfileMember(m) => {
            let Some(p) = s.profiles.get(&m.action_profile_id) else {
                return fail(Code::NotFound, format!("no action profile with id {}", m.action_profile_id));
            };
            if is(Type::Delete) {
                return op(Op::DeleteMember { profile: p.ir, id: m.member_id });
            }
            let Some(a) = &m.action else {
                return fail(Code::InvalidArgument, format!("member {} has no action", m.member_id));
            };
            // The action must belong to one of the profile's tables.
            let Some(t) =
                p.tables.iter().filter_map(|id| s.tables.get(id)).find(|t| t.actions.contains_key(&a.action_id))
            else {
                return fail(
                    Code::InvalidArgument,
                    format!("action id {} is not an action of profile {:?}'s tables", a.action_id, p.name),
                );
            };
            let slot = t.actions[&a.action_id];
            let action = ir.tables[t.ir as usize].actions[slot as usize];
            let args = call_args(s, a, &format!("profile {:?}", p.name))?;
            op(Op::SetMember {
                profile: p.ir,
                id: m.member_id,
                member: Member { action, args },
                insert: is(Type::Insert),
            })
        }
        E::ActionProfileGroup(g) => {
            use pb::action_profile_group::member::WatchKind;
            let Some(p) = s.profiles.get(&g.action_profile_id) else {
                return fail(Code::NotFound, format!("no action profile with id {}", g.action_profile_id));
            };
            if is(Type::Delete) {
                return op(Op::DeleteGroup { profile: p.ir, id: g.group_id });
            }
            if p.max_group_size > 0 && (g.max_size > p.max_group_size || g.members.len() as i32 > p.max_group_size) {
                return fail(
                    Code::InvalidArgument,
                    format!("profile {:?} groups hold at most {} members", p.name, p.max_group_size),
                );
            }
            let mut members = Vec::with_capacity(g.members.len());
            for m in &g.members {
                if m.weight <= 0 {
                    return fail(
                        Code::InvalidArgument,
                        format!("member {} weight {} must be > 0", m.member_id, m.weight),
                    );
                }
                let watch = match &m.watch_kind {
                    None => None,
                    #[allow(deprecated)] // older clients (p4runtime < 1.3) send it
                    Some(WatchKind::Watch(p)) => Some(*p as u32),
                    Some(WatchKind::WatchPort(b)) => Some(decode(b, 32, &|| "watch_port".into())? as u32),
                };
                members.push((m.member_id, m.weight as u32, watch));
            }
            op(Op::SetGroup { profile: p.ir, id: g.group_id, members, insert: is(Type::Insert) })
        }
        E::PacketReplicationEngineEntry(pre) => {
            use pb::packet_replication_engine_entry::Type as P;
            match &pre.r#type {
                Some(P::MulticastGroupEntry(m)) => {
                    if !m.metadata.is_empty() {
                        return fail(Code::Unimplemented, "multicast group metadata is not stored");
                    }
                    if m.multicast_group_id == 0 {
                        return fail(Code::InvalidArgument, "multicast group id 0 is reserved");
                    }
                    if is(Type::Delete) {
                        return op(Op::DeleteMcast { group: m.multicast_group_id });
                    }
                    op(Op::SetMcast {
                        group: m.multicast_group_id,
                        replicas: replicas(&m.replicas)?,
                        insert: is(Type::Insert),
                    })
                }
                Some(P::CloneSessionEntry(c)) => {
                    if c.session_id == 0 {
                        return fail(Code::InvalidArgument, "clone session id 0 is reserved");
                    }
                    if is(Type::Delete) {
                        return op(Op::DeleteClone { session: c.session_id });
                    }
                    if c.class_of_service != 0 {
                        return fail(
                            Code::Unimplemented,
                            "clone session class_of_service is not supported (v1model has none)",
                        );
                    }
                    if c.packet_length_bytes < 0 {
                        return fail(Code::InvalidArgument, "packet_length_bytes must not be negative");
                    }
                    op(Op::SetClone {
                        session: c.session_id,
                        replicas: replicas(&c.replicas)?,
                        truncate: c.packet_length_bytes as u32,
                        insert: is(Type::Insert),
                    })
                }
                None => fail(Code::InvalidArgument, "empty PacketReplicationEngineEntry"),
            }
        }
        E::ValueSetEntry(v) => {
            modify_only(ty, "value set")?;
            let Some(vs) = s.value_sets.get(&v.value_set_id) else {
                return fail(Code::NotFound, format!("no value set with id {}", v.value_set_id));
            };
            let w = vs.bitwidth;
            let mut members = Vec::with_capacity(v.members.len());
            for m in &v.members {
                use pb::field_match::FieldMatchType as M;
                let what = || format!("value set {:?} ({w} bits)", vs.name);
                let [fm] = m.r#match.as_slice() else {
                    return fail(Code::Unimplemented, format!("{}: members of one match field only", what()));
                };
                members.push(match &fm.field_match_type {
                    Some(M::Exact(x)) => (decode(&x.value, w, &what)?, mask_of(w)),
                    Some(M::Ternary(x)) => (decode(&x.value, w, &what)?, decode(&x.mask, w, &what)?),
                    _ => return fail(Code::InvalidArgument, format!("{}: members match exact or ternary", what())),
                });
            }
            op(Op::SetValueSet { set: vs.ir, members })
        }
        E::RegisterEntry(r) => {
            modify_only(ty, "register")?;
            let Some(reg) = s.registers.get(&r.register_id) else {
                return fail(Code::NotFound, format!("no register with id {}", r.register_id));
            };
            let index = index(&r.index, reg.size, &format!("register {:?}", reg.name))?;
            let value = match r.data.as_ref().and_then(|d| d.data.as_ref()) {
                Some(pb::p4_data::Data::Bitstring(b)) => {
                    decode(b, reg.bitwidth, &|| format!("register {:?}", reg.name))?
                }
                _ => return fail(Code::InvalidArgument, format!("register {:?}: data must be a bitstring", reg.name)),
            };
            op(Op::WriteRegister { register: reg.ir, index, value })
        }
        E::CounterEntry(c) => {
            modify_only(ty, "counter")?;
            let Some(cs) = s.counters.get(&c.counter_id) else {
                return fail(Code::NotFound, format!("no counter with id {}", c.counter_id));
            };
            let index = index(&c.index, cs.size, &format!("counter {:?}", cs.name))?;
            let (packets, bytes) = data(c.data)?;
            Ok(Plan {
                counters: vec![CounterWrite::Indexed { counter: cs.ir, index, packets, bytes }],
                ..Default::default()
            })
        }
        E::DirectCounterEntry(d) => {
            modify_only(ty, "direct counter")?;
            let (e, t) = direct_table(s, &d.table_entry, "counter", |t| t.direct_counter.is_some())?;
            let key = key_of(t, &e.r#match)?;
            let (packets, bytes) = data(d.data)?;
            Ok(Plan {
                counters: vec![CounterWrite::Direct { table: t.ir, key, priority: e.priority, packets, bytes }],
                ..Default::default()
            })
        }
        E::MeterEntry(m) => {
            modify_only(ty, "MeterEntry")?;
            let Some(ms) = s.meters.get(&m.meter_id).filter(|x| x.direct_table.is_none()) else {
                return fail(Code::NotFound, format!("no indexed meter with id {}", m.meter_id));
            };
            if m.counter_data.is_some() {
                return fail(Code::Unimplemented, METER_DATA_READ_ONLY);
            }
            let index = index(&m.index, ms.size, &format!("meter {:?}", ms.name))?;
            let config = meter_config(&m.config, &ms.name)?;
            op(Op::SetMeter { meter: ms.ir, index, config })
        }
        E::DirectMeterEntry(d) => {
            modify_only(ty, "DirectMeterEntry")?;
            let (e, t) = direct_table(s, &d.table_entry, "meter", |t| t.direct_meter.is_some())?;
            if d.counter_data.is_some() {
                return fail(Code::Unimplemented, METER_DATA_READ_ONLY);
            }
            let key = key_of(t, &e.r#match)?;
            let config = meter_config(&d.config, &t.name)?;
            op(Op::SetDirectMeter { table: t.ir, key, priority: e.priority, config })
        }
        E::DigestEntry(d) => {
            if d.digest_id == 0 {
                return fail(Code::InvalidArgument, "digest_id 0: a write must name a digest");
            }
            if !s.digests.contains_key(&d.digest_id) {
                return fail(Code::NotFound, format!("no digest with id {} in the P4Info", d.digest_id));
            }
            let config = if is(Type::Delete) {
                None
            } else {
                let Some(c) = &d.config else {
                    return fail(
                        Code::InvalidArgument,
                        format!("digest {}: INSERT and MODIFY need a config", d.digest_id),
                    );
                };
                Some(DigestConfig::from_pb(c).map_err(|m| Fail { code: Code::InvalidArgument, message: m })?)
            };
            let write = DigestWrite { id: d.digest_id, config, insert: is(Type::Insert) };
            Ok(Plan { digest: Some(write), ..Default::default() })
        }
        E::ExternEntry(_) => fail(Code::Unimplemented, "v1model has no P4Runtime extern entries"),
    }
}

/// The P4Runtime form of entry `e` of table `t`.
pub fn entry_msg(s: &Schema, t: &TableSchema, ir: &Ir, e: &Entry) -> pb::TableEntry {
    let mut m = key_msg(t, e);
    m.action = Some(action_of(s, t, ir, &e.action));
    m.is_const = t.is_const;
    m
}

/// An entry's key, priority and what the controller attached: the fields of an
/// idle-timeout notification.
pub fn key_msg(t: &TableSchema, e: &Entry) -> pb::TableEntry {
    let meta = e.meta.as_deref().cloned().unwrap_or_default();
    #[allow(deprecated)] // still read by older clients
    pb::TableEntry {
        table_id: t.id,
        r#match: matches_of(t, &e.key),
        priority: e.priority,
        controller_metadata: meta.controller_metadata,
        metadata: meta.metadata,
        idle_timeout_ns: meta.idle_timeout_ns,
        ..Default::default()
    }
}

/// Nanoseconds since the Unix epoch (P4Runtime timestamps).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// The default entry of table `t` (`None` when a miss runs no action).
pub fn default_msg(s: &Schema, t: &TableSchema, ir: &Ir, rt: &Runtime) -> pb::TableEntry {
    pb::TableEntry {
        table_id: t.id,
        action: rt.tables[t.ir as usize].default.as_ref().map(|a| action_of(s, t, ir, a)),
        is_default_action: true,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytestrings_canonical_padded_and_refused() {
        let w = |b: &[u8], bits| decode(b, bits, &|| "f".into());
        assert_eq!(w(&[0x09], 9), Ok(9));
        assert_eq!(w(&[0x00, 0x09], 9), Ok(9));
        assert_eq!(w(&[0x00, 0x00, 0x00, 0x01, 0xff], 9), Ok(0x1ff));
        assert_eq!(w(&[0x02, 0x00], 9).unwrap_err().code, Code::OutOfRange);
        assert_eq!(w(&[], 9).unwrap_err().code, Code::OutOfRange);
        assert_eq!(w(&[0xff; 16], 128), Ok(u128::MAX));
        assert_eq!(w(&[0x01; 17], 128).unwrap_err().code, Code::OutOfRange);
        assert_eq!(encode(0), vec![0]);
        assert_eq!(encode(0x1ff), vec![1, 0xff]);
        assert_eq!(encode(0x0a000001), vec![10, 0, 0, 1]);
        for v in [0u128, 1, 255, 256, 0xdead_beef, u128::MAX] {
            assert_eq!(decode(&encode(v), 128, &|| "x".into()), Ok(v));
        }
    }
}

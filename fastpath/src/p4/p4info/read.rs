//! The mapping from a text-format tree onto the P4Info model, and its validation.

use super::*;

/// One object, as seen by validation: enough to check ids and names and to report where.
struct ObjectRecord {
    kind: ResourceKind,
    id: u32,
    name: String,
    alias: String,
    /// The object (its `tables {` etc.); names are reported here.
    pos: Pos,
    /// Its `id:` value when given; ids are reported here.
    id_pos: Pos,
}

/// An id reference, checked once every object is known.
struct Reference {
    pos: Pos,
    from: String,
    id: u32,
    expected: &'static [ResourceKind],
    expected_name: &'static str,
}

/// Collects objects and references while mapping, then validates them together (objects
/// may refer to objects written later in the text).
#[derive(Default)]
pub(super) struct Builder {
    objects: Vec<ObjectRecord>,
    refs: Vec<Reference>,
}

/// Reads the fields of one message: converts values, rejects a second occurrence of a
/// singular field, and names the message in errors.
struct Reader<'a> {
    /// The protobuf message name, e.g. `Table`.
    m: &'static str,
    seen: Vec<&'a str>,
}

/// Visit each field of the message in `f`. `visit` returns `Ok(false)` for a name it does
/// not know, which becomes [`P4InfoError::UnknownField`].
fn read<'a>(
    f: &'a Field,
    m: &'static str,
    mut visit: impl FnMut(&mut Reader<'a>, &'a Field) -> Result<bool, P4InfoError>,
) -> Result<(), P4InfoError> {
    let mut r = Reader { m, seen: Vec::new() };
    for x in &sub(f, m)?.fields {
        if !visit(&mut r, x)? {
            return Err(P4InfoError::UnknownField { pos: x.pos, message: m, field: x.name.clone() });
        }
    }
    Ok(())
}

impl<'a> Reader<'a> {
    /// `f` is a singular field: fail if it was seen before in this message.
    fn once(&mut self, f: &'a Field) -> Result<&'a Field, P4InfoError> {
        if self.seen.contains(&f.name.as_str()) {
            return Err(P4InfoError::RepeatedField { pos: f.pos, message: self.m, field: f.name.clone() });
        }
        self.seen.push(&f.name);
        Ok(f)
    }

    fn u32(&mut self, f: &'a Field) -> Result<u32, P4InfoError> {
        u32_of(self.once(f)?, self.m)
    }

    fn i32(&mut self, f: &'a Field) -> Result<i32, P4InfoError> {
        i32_of(self.once(f)?, self.m)
    }

    fn i64(&mut self, f: &'a Field) -> Result<i64, P4InfoError> {
        i64_of(self.once(f)?, self.m)
    }

    fn width(&mut self, f: &'a Field) -> Result<i32, P4InfoError> {
        width_of(self.once(f)?, self.m)
    }

    fn bool(&mut self, f: &'a Field) -> Result<bool, P4InfoError> {
        bool_of(self.once(f)?, self.m)
    }

    fn string(&mut self, f: &'a Field) -> Result<String, P4InfoError> {
        string_of(self.once(f)?, self.m)
    }

    fn enumeration<T: Clone>(&mut self, f: &'a Field, rows: &[(&str, u64, T)]) -> Result<T, P4InfoError> {
        enum_of(self.once(f)?, self.m, rows)
    }

    /// One more element of a repeated `string` field.
    fn push_string(&self, f: &Field, to: &mut Vec<String>) -> Result<(), P4InfoError> {
        to.push(string_of(f, self.m)?);
        Ok(())
    }
}

fn bad(f: &Field, message: &'static str, reason: impl Into<String>) -> P4InfoError {
    P4InfoError::BadValue { pos: f.value_pos, message, field: f.name.clone(), reason: reason.into() }
}

fn sub<'a>(f: &'a Field, message: &'static str) -> Result<&'a Message, P4InfoError> {
    match &f.value {
        Value::Message(m) => Ok(m),
        other => Err(bad(f, message, format!("expected a message, found {}", other.kind()))),
    }
}

/// An integer converted by `conv`; `what` names the type for errors.
fn int_of<T>(
    f: &Field,
    message: &'static str,
    what: &str,
    conv: impl Fn(textproto::Int) -> Option<T>,
) -> Result<T, P4InfoError> {
    match &f.value {
        Value::Int(i) => conv(*i).ok_or_else(|| bad(f, message, format!("{what} out of range"))),
        other => Err(bad(f, message, format!("expected {what}, found {}", other.kind()))),
    }
}

fn u32_of(f: &Field, message: &'static str) -> Result<u32, P4InfoError> {
    int_of(f, message, "an unsigned 32-bit integer", textproto::Int::to_u32)
}

fn i32_of(f: &Field, message: &'static str) -> Result<i32, P4InfoError> {
    int_of(f, message, "a signed 32-bit integer", textproto::Int::to_i32)
}

fn i64_of(f: &Field, message: &'static str) -> Result<i64, P4InfoError> {
    int_of(f, message, "a signed 64-bit integer", textproto::Int::to_i64)
}

/// A bit width: an `int32` that must not be negative.
fn width_of(f: &Field, message: &'static str) -> Result<i32, P4InfoError> {
    let w = i32_of(f, message)?;
    if w < 0 {
        return Err(bad(f, message, "a bit width cannot be negative"));
    }
    Ok(w)
}

/// A `bool`, spelled as the text format allows.
fn bool_of(f: &Field, message: &'static str) -> Result<bool, P4InfoError> {
    match &f.value {
        Value::Ident(s) if matches!(s.as_str(), "true" | "True" | "t") => Ok(true),
        Value::Ident(s) if matches!(s.as_str(), "false" | "False" | "f") => Ok(false),
        Value::Int(i) if i.to_u64() == Some(1) => Ok(true),
        Value::Int(i) if i.to_u64() == Some(0) => Ok(false),
        other => Err(bad(f, message, format!("expected true or false, found {}", other.kind()))),
    }
}

fn string_of(f: &Field, message: &'static str) -> Result<String, P4InfoError> {
    match &f.value {
        Value::Str(bytes) => {
            String::from_utf8(bytes.clone()).map_err(|_| bad(f, message, "the string is not valid UTF-8"))
        }
        other => Err(bad(f, message, format!("expected a string, found {}", other.kind()))),
    }
}

/// An enum value, by name or by number, from `(name, number, value)` rows.
fn enum_of<T: Clone>(f: &Field, message: &'static str, rows: &[(&str, u64, T)]) -> Result<T, P4InfoError> {
    let found = match &f.value {
        Value::Ident(s) => rows.iter().find(|r| r.0 == s),
        Value::Int(i) => i.to_u64().and_then(|n| rows.iter().find(|r| r.1 == n)),
        other => return Err(bad(f, message, format!("expected an enum value, found {}", other.kind()))),
    };
    found.map(|r| r.2.clone()).ok_or_else(|| {
        let names: Vec<&str> = rows.iter().map(|r| r.0).collect();
        bad(f, message, format!("unknown enum value; expected one of {}", names.join(", ")))
    })
}

const MATCH_TYPES: &[(&str, u64, MatchType)] = &[
    ("UNSPECIFIED", 0, MatchType::Unspecified),
    ("EXACT", 2, MatchType::Exact),
    ("LPM", 3, MatchType::Lpm),
    ("TERNARY", 4, MatchType::Ternary),
    ("RANGE", 5, MatchType::Range),
    ("OPTIONAL", 6, MatchType::Optional),
];

const SCOPES: &[(&str, u64, ActionScope)] = &[
    ("TABLE_AND_DEFAULT", 0, ActionScope::TableAndDefault),
    ("TABLE_ONLY", 1, ActionScope::TableOnly),
    ("DEFAULT_ONLY", 2, ActionScope::DefaultOnly),
];

const IDLE_TIMEOUT: &[(&str, u64, IdleTimeoutBehavior)] =
    &[("NO_TIMEOUT", 0, IdleTimeoutBehavior::NoTimeout), ("NOTIFY_CONTROL", 1, IdleTimeoutBehavior::NotifyControl)];

const COUNTER_UNITS: &[(&str, u64, CounterUnit)] = &[
    ("UNSPECIFIED", 0, CounterUnit::Unspecified),
    ("BYTES", 1, CounterUnit::Bytes),
    ("PACKETS", 2, CounterUnit::Packets),
    ("BOTH", 3, CounterUnit::Both),
];

const METER_UNITS: &[(&str, u64, MeterUnit)] =
    &[("UNSPECIFIED", 0, MeterUnit::Unspecified), ("BYTES", 1, MeterUnit::Bytes), ("PACKETS", 2, MeterUnit::Packets)];

/// Fields most P4Info messages define and Sluice ignores: documentation, structured
/// annotations and annotation source locations. (`ActionRef` and `Metadata` have no `doc`;
/// accepting it there too keeps one list and loses nothing.)
fn ignored(name: &str) -> bool {
    matches!(name, "doc" | "structured_annotations" | "annotation_locations")
}

/// A preamble, and where its id was written (if it was).
fn preamble(f: &Field) -> Result<(Preamble, Option<Pos>), P4InfoError> {
    let mut p = Preamble::default();
    let mut id_pos = None;
    read(f, "Preamble", |r, x| {
        match x.name.as_str() {
            "id" => {
                p.id = r.u32(x)?;
                id_pos = Some(x.value_pos);
            }
            "name" => p.name = r.string(x)?,
            "alias" => p.alias = r.string(x)?,
            "annotations" => r.push_string(x, &mut p.annotations)?,
            n => return Ok(ignored(n)),
        }
        Ok(true)
    })?;
    Ok((p, id_pos))
}

fn match_field(f: &Field) -> Result<MatchField, P4InfoError> {
    let mut m = MatchField::default();
    // `match_type` and `other_match_type` are one oneof: at most one may be given.
    let mut oneof: Option<&str> = None;
    read(f, "MatchField", |r, x| {
        match x.name.as_str() {
            "id" => m.id = r.u32(x)?,
            "name" => m.name = r.string(x)?,
            "annotations" => r.push_string(x, &mut m.annotations)?,
            "bitwidth" => m.bitwidth = r.width(x)?,
            n @ ("match_type" | "other_match_type") => {
                if let Some(first) = oneof {
                    return Err(bad(x, r.m, format!("`{first}` was already given; they are members of one oneof")));
                }
                oneof = Some(n);
                m.match_type = match n {
                    "match_type" => r.enumeration(x, MATCH_TYPES)?,
                    _ => MatchType::Other(r.string(x)?),
                };
            }
            n => return Ok(n == "type_name" || ignored(n)),
        }
        Ok(true)
    })?;
    Ok(m)
}

fn action_ref(f: &Field) -> Result<ActionRef, P4InfoError> {
    let mut a = ActionRef::default();
    read(f, "ActionRef", |r, x| {
        match x.name.as_str() {
            "id" => a.id = r.u32(x)?,
            "scope" => a.scope = r.enumeration(x, SCOPES)?,
            "annotations" => r.push_string(x, &mut a.annotations)?,
            n => return Ok(ignored(n)),
        }
        Ok(true)
    })?;
    Ok(a)
}

fn param(f: &Field) -> Result<Param, P4InfoError> {
    let mut p = Param::default();
    read(f, "Action.Param", |r, x| {
        match x.name.as_str() {
            "id" => p.id = r.u32(x)?,
            "name" => p.name = r.string(x)?,
            "bitwidth" => p.bitwidth = r.width(x)?,
            "annotations" => r.push_string(x, &mut p.annotations)?,
            n => return Ok(n == "type_name" || ignored(n)),
        }
        Ok(true)
    })?;
    Ok(p)
}

fn packet_metadata(f: &Field) -> Result<PacketMetadata, P4InfoError> {
    let mut p = PacketMetadata::default();
    read(f, "ControllerPacketMetadata.Metadata", |r, x| {
        match x.name.as_str() {
            "id" => p.id = r.u32(x)?,
            "name" => p.name = r.string(x)?,
            "bitwidth" => p.bitwidth = r.width(x)?,
            n => return Ok(matches!(n, "annotations" | "type_name") || ignored(n)),
        }
        Ok(true)
    })?;
    Ok(p)
}

/// The `unit` of a `CounterSpec` or `MeterSpec` (their only field).
fn spec_unit<T: Clone + Default>(f: &Field, m: &'static str, units: &[(&str, u64, T)]) -> Result<T, P4InfoError> {
    let mut unit = T::default();
    read(f, m, |r, x| {
        // MeterSpec.type (P4Runtime >= 1.4: two-rate three-color, single-rate
        // three-/two-color) is accepted and not modelled: the meter kind is chosen by
        // the meter's configuration (MeterConfig), not by P4Info, in this engine.
        if m == "MeterSpec" && x.name == "type" {
            return Ok(true);
        }
        if x.name != "unit" {
            return Ok(false);
        }
        unit = r.enumeration(x, units)?;
        Ok(true)
    })?;
    Ok(unit)
}

fn pkg_info(f: &Field) -> Result<PkgInfo, P4InfoError> {
    let mut p = PkgInfo::default();
    read(f, "PkgInfo", |r, x| {
        match x.name.as_str() {
            "name" => p.name = r.string(x)?,
            "version" => p.version = r.string(x)?,
            "arch" => p.arch = r.string(x)?,
            n => return Ok(matches!(n, "annotations" | "organization" | "contact" | "url") || ignored(n)),
        }
        Ok(true)
    })?;
    Ok(p)
}

/// Follow a path of message fields inside an unmodelled message (`type_spec`), returning
/// the last field reached. A step that is not a message is an error; other content is not
/// checked.
fn path<'a>(mut f: &'a Field, names: &[&'a str], m: &'static str) -> Result<Option<&'a Field>, P4InfoError> {
    for name in names {
        match sub(f, m)?.get(name).next() {
            Some(next) => f = next,
            None => return Ok(None),
        }
    }
    Ok(Some(f))
}

/// Checks the members of one object (match fields, params, metadata): ids non-zero and
/// unique, names non-empty and unique.
fn check_members<'a>(
    owner: &dyn Fn() -> String,
    what: &str,
    members: impl Iterator<Item = (u32, &'a str, Pos)>,
) -> Result<(), P4InfoError> {
    let mut ids: HashMap<u32, Pos> = HashMap::new();
    let mut names: HashMap<&str, Pos> = HashMap::new();
    for (id, name, pos) in members {
        let fail = |reason: String| Err(P4InfoError::InvalidMember { pos, owner: owner(), reason });
        if id == 0 {
            return fail(format!("{what} `{name}` has id 0, which is reserved"));
        }
        if name.is_empty() {
            return fail(format!("{what} with id {id} has no name"));
        }
        if let Some(first) = ids.insert(id, pos) {
            return fail(format!("{what} `{name}` has id {id}, already used at {first}"));
        }
        if let Some(first) = names.insert(name, pos) {
            return fail(format!("{what} name `{name}` is already used at {first}"));
        }
    }
    Ok(())
}

impl Builder {
    pub(super) fn p4info(&mut self, tree: &Message) -> Result<P4Info, P4InfoError> {
        let mut info = P4Info::default();
        let mut r = Reader { m: "P4Info", seen: Vec::new() };
        for f in &tree.fields {
            match f.name.as_str() {
                "pkg_info" => info.pkg_info = pkg_info(r.once(f)?)?,
                "tables" => info.tables.push(self.table(f)?),
                "actions" => info.actions.push(self.action(f)?),
                "action_profiles" => info.action_profiles.push(self.action_profile(f)?),
                "counters" => info.counters.push(self.counter(f)?),
                "direct_counters" => info.direct_counters.push(self.direct_counter(f)?),
                "meters" => info.meters.push(self.meter(f)?),
                "direct_meters" => info.direct_meters.push(self.direct_meter(f)?),
                "controller_packet_metadata" => info.controller_packet_metadata.push(self.packet_header(f)?),
                "value_sets" => info.value_sets.push(self.value_set(f)?),
                "registers" => info.registers.push(self.register(f)?),
                "digests" => info.digests.push(self.digest(f)?),
                // Defined by P4Info but not used by Sluice: v1model has no externs or
                // generic tables, and type_info only matters to translated types.
                "type_info" => _ = r.once(f)?,
                "externs" | "generic_tables" | "unions" => {}
                _ => return Err(P4InfoError::UnknownField { pos: f.pos, message: r.m, field: f.name.clone() }),
            }
        }
        Ok(info)
    }

    /// Record an object for validation; `field` is the object's own field in the text.
    fn record(&mut self, kind: ResourceKind, p: &Preamble, field: &Field, id_pos: Option<Pos>) {
        let (id, name, alias) = (p.id, p.name.clone(), p.alias.clone());
        self.objects.push(ObjectRecord { kind, id, name, alias, pos: field.pos, id_pos: id_pos.unwrap_or(field.pos) });
    }

    /// Record that `from` (at `pos`) refers to `id`, which must be one of `expected`.
    fn refer(
        &mut self,
        pos: Pos,
        from: String,
        id: u32,
        expected: &'static [ResourceKind],
        expected_name: &'static str,
    ) {
        self.refs.push(Reference { pos, from, id, expected, expected_name });
    }

    fn table(&mut self, f: &Field) -> Result<Table, P4InfoError> {
        let mut t = Table::default();
        let mut id_pos = None;
        let (mut match_pos, mut ref_pos, mut resource_pos) = (Vec::new(), Vec::new(), Vec::new());
        let (mut const_default_pos, mut implementation_pos) = (f.pos, f.pos);
        read(f, "Table", |r, x| {
            match x.name.as_str() {
                "preamble" => (t.preamble, id_pos) = preamble(r.once(x)?)?,
                "match_fields" => {
                    t.match_fields.push(match_field(x)?);
                    match_pos.push(x.pos);
                }
                "action_refs" => {
                    t.action_refs.push(action_ref(x)?);
                    ref_pos.push(x.pos);
                }
                "const_default_action_id" => {
                    t.const_default_action_id = r.u32(x)?;
                    const_default_pos = x.value_pos;
                }
                "implementation_id" => {
                    t.implementation_id = r.u32(x)?;
                    implementation_pos = x.value_pos;
                }
                "direct_resource_ids" => {
                    t.direct_resource_ids.push(u32_of(x, r.m)?);
                    resource_pos.push(x.value_pos);
                }
                "size" => t.size = r.i64(x)?,
                "idle_timeout_behavior" => t.idle_timeout_behavior = r.enumeration(x, IDLE_TIMEOUT)?,
                "is_const_table" => t.is_const_table = r.bool(x)?,
                "other_properties" => {}
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.record(ResourceKind::Table, &t.preamble, f, id_pos);
        let owner = || format!("table `{}`", t.preamble.name);
        let members = t.match_fields.iter().zip(&match_pos).map(|(m, p)| (m.id, m.name.as_str(), *p));
        check_members(&owner, "match field", members)?;
        let mut actions: HashMap<u32, Pos> = HashMap::new();
        for (a, &pos) in t.action_refs.iter().zip(&ref_pos) {
            if let Some(first) = actions.insert(a.id, pos) {
                let reason = format!("action id {:#010x} is listed twice (first at {first})", a.id);
                return Err(P4InfoError::InvalidMember { pos, owner: owner(), reason });
            }
            self.refer(pos, format!("action_refs of {}", owner()), a.id, &[ResourceKind::Action], "action");
        }
        let default = t.const_default_action_id;
        if default != 0 && !actions.contains_key(&default) {
            let reason = format!("const_default_action_id {default:#010x} is not one of the table's actions");
            return Err(P4InfoError::InvalidMember { pos: const_default_pos, owner: owner(), reason });
        }
        if t.implementation_id != 0 {
            let (from, kinds) = (format!("implementation_id of {}", owner()), &[ResourceKind::ActionProfile]);
            self.refer(implementation_pos, from, t.implementation_id, kinds, "action profile");
        }
        for (&id, &pos) in t.direct_resource_ids.iter().zip(&resource_pos) {
            let kinds = &[ResourceKind::DirectCounter, ResourceKind::DirectMeter];
            self.refer(pos, format!("direct_resource_ids of {}", owner()), id, kinds, "direct counter or meter");
        }
        Ok(t)
    }

    fn action(&mut self, f: &Field) -> Result<Action, P4InfoError> {
        let mut a = Action::default();
        let mut id_pos = None;
        let mut param_pos = Vec::new();
        read(f, "Action", |r, x| {
            match x.name.as_str() {
                "preamble" => (a.preamble, id_pos) = preamble(r.once(x)?)?,
                "params" => {
                    a.params.push(param(x)?);
                    param_pos.push(x.pos);
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.record(ResourceKind::Action, &a.preamble, f, id_pos);
        let owner = || format!("action `{}`", a.preamble.name);
        let members = a.params.iter().zip(&param_pos).map(|(p, pos)| (p.id, p.name.as_str(), *pos));
        check_members(&owner, "parameter", members)?;
        Ok(a)
    }

    fn action_profile(&mut self, f: &Field) -> Result<ActionProfile, P4InfoError> {
        let mut a = ActionProfile::default();
        let mut id_pos = None;
        let mut table_pos = Vec::new();
        read(f, "ActionProfile", |r, x| {
            match x.name.as_str() {
                "preamble" => (a.preamble, id_pos) = preamble(r.once(x)?)?,
                "table_ids" => {
                    a.table_ids.push(u32_of(x, r.m)?);
                    table_pos.push(x.value_pos);
                }
                "with_selector" => a.with_selector = r.bool(x)?,
                "size" => a.size = r.i64(x)?,
                "max_group_size" => a.max_group_size = r.i32(x)?,
                // The selector_size_semantics oneof.
                "sum_of_weights" | "sum_of_members" => _ = r.once(x)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.record(ResourceKind::ActionProfile, &a.preamble, f, id_pos);
        for (&id, &pos) in a.table_ids.iter().zip(&table_pos) {
            let from = format!("table_ids of action profile `{}`", a.preamble.name);
            self.refer(pos, from, id, &[ResourceKind::Table], "table");
        }
        Ok(a)
    }

    fn counter(&mut self, f: &Field) -> Result<Counter, P4InfoError> {
        let (preamble, unit, size) = self.indexed(f, ResourceKind::Counter, "Counter", "CounterSpec", COUNTER_UNITS)?;
        Ok(Counter { preamble, unit, size })
    }

    fn direct_counter(&mut self, f: &Field) -> Result<DirectCounter, P4InfoError> {
        let (preamble, unit, direct_table_id) =
            self.direct(f, ResourceKind::DirectCounter, "DirectCounter", "CounterSpec", COUNTER_UNITS)?;
        Ok(DirectCounter { preamble, unit, direct_table_id })
    }

    fn meter(&mut self, f: &Field) -> Result<Meter, P4InfoError> {
        let (preamble, unit, size) = self.indexed(f, ResourceKind::Meter, "Meter", "MeterSpec", METER_UNITS)?;
        Ok(Meter { preamble, unit, size })
    }

    fn direct_meter(&mut self, f: &Field) -> Result<DirectMeter, P4InfoError> {
        let (preamble, unit, direct_table_id) =
            self.direct(f, ResourceKind::DirectMeter, "DirectMeter", "MeterSpec", METER_UNITS)?;
        Ok(DirectMeter { preamble, unit, direct_table_id })
    }

    /// An indexed counter or meter: preamble, spec unit, size.
    fn indexed<U: Clone + Default>(
        &mut self,
        f: &Field,
        kind: ResourceKind,
        message: &'static str,
        spec: &'static str,
        units: &[(&str, u64, U)],
    ) -> Result<(Preamble, U, i64), P4InfoError> {
        let (mut pre, mut unit, mut size) = (Preamble::default(), U::default(), 0);
        let mut id_pos = None;
        read(f, message, |r, x| {
            match x.name.as_str() {
                "preamble" => (pre, id_pos) = preamble(r.once(x)?)?,
                "spec" => unit = spec_unit(r.once(x)?, spec, units)?,
                "size" => size = r.i64(x)?,
                "index_type_name" => {}
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.record(kind, &pre, f, id_pos);
        Ok((pre, unit, size))
    }

    /// A direct counter or meter: preamble, spec unit, the table it is bound to.
    fn direct<U: Clone + Default>(
        &mut self,
        f: &Field,
        kind: ResourceKind,
        message: &'static str,
        spec: &'static str,
        units: &[(&str, u64, U)],
    ) -> Result<(Preamble, U, u32), P4InfoError> {
        let (mut pre, mut unit, mut table) = (Preamble::default(), U::default(), 0);
        let mut id_pos = None;
        let mut table_pos = f.pos;
        read(f, message, |r, x| {
            match x.name.as_str() {
                "preamble" => (pre, id_pos) = preamble(r.once(x)?)?,
                "spec" => unit = spec_unit(r.once(x)?, spec, units)?,
                "direct_table_id" => {
                    table = r.u32(x)?;
                    table_pos = x.value_pos;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.record(kind, &pre, f, id_pos);
        self.direct_table(kind, &pre.name, table, table_pos);
        Ok((pre, unit, table))
    }

    /// A direct resource's `direct_table_id`, which is required (0 is not a table).
    fn direct_table(&mut self, kind: ResourceKind, name: &str, table_id: u32, pos: Pos) {
        let from = format!("direct_table_id of {kind} `{name}`");
        self.refer(pos, from, table_id, &[ResourceKind::Table], "table");
    }

    fn packet_header(&mut self, f: &Field) -> Result<ControllerPacketMetadata, P4InfoError> {
        let mut c = ControllerPacketMetadata::default();
        let mut id_pos = None;
        let mut member_pos = Vec::new();
        read(f, "ControllerPacketMetadata", |r, x| {
            match x.name.as_str() {
                "preamble" => (c.preamble, id_pos) = preamble(r.once(x)?)?,
                "metadata" => {
                    c.metadata.push(packet_metadata(x)?);
                    member_pos.push(x.pos);
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.record(ResourceKind::ControllerPacketMetadata, &c.preamble, f, id_pos);
        let owner = || format!("controller packet metadata `{}`", c.preamble.name);
        let members = c.metadata.iter().zip(&member_pos).map(|(m, p)| (m.id, m.name.as_str(), *p));
        check_members(&owner, "metadata field", members)?;
        Ok(c)
    }

    fn value_set(&mut self, f: &Field) -> Result<ValueSet, P4InfoError> {
        let mut v = ValueSet::default();
        let mut id_pos = None;
        let mut match_pos = Vec::new();
        read(f, "ValueSet", |r, x| {
            match x.name.as_str() {
                "preamble" => (v.preamble, id_pos) = preamble(r.once(x)?)?,
                "match" => {
                    v.match_fields.push(match_field(x)?);
                    match_pos.push(x.pos);
                }
                "size" => v.size = r.i32(x)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.record(ResourceKind::ValueSet, &v.preamble, f, id_pos);
        let owner = || format!("value set `{}`", v.preamble.name);
        let members = v.match_fields.iter().zip(&match_pos).map(|(m, p)| (m.id, m.name.as_str(), *p));
        check_members(&owner, "match field", members)?;
        Ok(v)
    }

    fn register(&mut self, f: &Field) -> Result<Register, P4InfoError> {
        let mut g = Register::default();
        let mut id_pos = None;
        read(f, "Register", |r, x| {
            match x.name.as_str() {
                "preamble" => (g.preamble, id_pos) = preamble(r.once(x)?)?,
                "type_spec" => {
                    if let Some(w) = path(r.once(x)?, &["bitstring", "bit", "bitwidth"], "P4DataTypeSpec")? {
                        g.bitwidth = width_of(w, "P4BitTypeSpec")?;
                    }
                }
                "size" => g.size = r.i32(x)?,
                "index_type_name" => {}
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.record(ResourceKind::Register, &g.preamble, f, id_pos);
        Ok(g)
    }

    fn digest(&mut self, f: &Field) -> Result<Digest, P4InfoError> {
        let mut d = Digest::default();
        let mut id_pos = None;
        read(f, "Digest", |r, x| {
            match x.name.as_str() {
                "preamble" => (d.preamble, id_pos) = preamble(r.once(x)?)?,
                "type_spec" => {
                    if let Some(n) = path(r.once(x)?, &["struct", "name"], "P4DataTypeSpec")? {
                        d.type_name = string_of(n, "P4NamedType")?;
                    }
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.record(ResourceKind::Digest, &d.preamble, f, id_pos);
        Ok(d)
    }

    /// Whole-P4Info checks, in input order so the first error reported is the first in
    /// the text.
    pub(super) fn validate(&self) -> Result<(), P4InfoError> {
        let mut by_id: HashMap<u32, &ObjectRecord> = HashMap::new();
        let mut names: HashMap<(ResourceKind, &str), Pos> = HashMap::new();
        let mut aliases: HashMap<(ResourceKind, &str), Pos> = HashMap::new();
        for o in &self.objects {
            if o.name.is_empty() {
                return Err(P4InfoError::MissingName { pos: o.pos, kind: o.kind, id: o.id });
            }
            if o.id == 0 {
                return Err(P4InfoError::ReservedId { pos: o.id_pos, kind: o.kind, name: o.name.clone() });
            }
            let expected = o.kind.prefix();
            if o.id.to_be_bytes()[0] != expected {
                return Err(P4InfoError::WrongIdPrefix {
                    pos: o.id_pos,
                    kind: o.kind,
                    name: o.name.clone(),
                    id: o.id,
                    expected,
                });
            }
            if let Some(first) = by_id.insert(o.id, o) {
                return Err(P4InfoError::DuplicateId {
                    pos: o.id_pos,
                    id: o.id,
                    kind: o.kind,
                    name: o.name.clone(),
                    first_kind: first.kind,
                    first_name: first.name.clone(),
                    first_pos: first.id_pos,
                });
            }
            if let Some(first_pos) = names.insert((o.kind, &o.name), o.pos) {
                let (pos, kind, name) = (o.pos, o.kind, o.name.clone());
                return Err(P4InfoError::DuplicateName { pos, kind, what: "name", name, first_pos });
            }
            if !o.alias.is_empty() {
                if let Some(first_pos) = aliases.insert((o.kind, &o.alias), o.pos) {
                    let (pos, kind, name) = (o.pos, o.kind, o.alias.clone());
                    return Err(P4InfoError::DuplicateName { pos, kind, what: "alias", name, first_pos });
                }
            }
        }
        for r in &self.refs {
            let ok = by_id.get(&r.id).is_some_and(|o| r.expected.contains(&o.kind));
            if !ok {
                return Err(P4InfoError::UnknownReference {
                    pos: r.pos,
                    from: r.from.clone(),
                    id: r.id,
                    expected: r.expected_name,
                });
            }
        }
        Ok(())
    }
}

//! P4Info (`p4.config.v1.P4Info`) read from protobuf text format into a neutral Rust model.
//!
//! # Design
//!
//! Two stages. [`super::textproto`] turns the text into an untyped tree (names, values and
//! positions); this module maps that tree by field name onto the types below, following
//! p4lang/p4runtime `proto/p4/config/v1/p4info.proto`, and then validates the whole P4Info.
//! No protobuf code generation is involved: the model is plain data the loader and the
//! P4Runtime server can share, and every error points at a line and column of the input.
//!
//! Field names are checked per message. A field P4Info defines but Sluice does not model
//! (`type_info`, `externs`, `doc`, `structured_annotations`, source locations, ...) is
//! skipped; a name P4Info does not define at all is an error, because it is almost always a
//! typo that would otherwise silently drop data. A singular field given twice is an error, as
//! in protobuf's own text parser.
//!
//! Validation ([`parse_text`] always runs it) covers what the P4Runtime specification
//! requires of a P4Info, or what Sluice relies on to resolve names:
//! * every object has a name and a non-zero id whose top byte is the prefix of its kind
//!   ([`ResourceKind::prefix`], from `P4Ids.Prefix`);
//! * ids are unique across the whole P4Info; names and (non-empty) aliases are unique per
//!   kind;
//! * match fields, action parameters and packet metadata have non-zero ids and non-empty
//!   names, unique within their owner;
//! * every id a table, action profile or direct resource refers to names an object of the
//!   right kind, and a table's const default action is one of its own actions.
//!
//! # Limitations
//!
//! * Field names follow p4info.proto on p4lang/p4runtime main (the revision with
//!   `generic_tables` and `unions`). A field added by a later revision is reported as
//!   unknown until it is added to the lists here.
//! * An enum written as a number must be one of the values the proto defines (proto3 would
//!   keep unknown numbers; a switch cannot act on them anyway).
//! * `type_spec` (p4types.proto) is only read for what the model needs: a register's
//!   `bitstring.bit.bitwidth` and a digest's `struct.name`. The rest of it is not checked.
//! * Lookups are linear scans: P4Info is read on the control path and holds at most a few
//!   hundred objects. The loader builds dense indexes of its own.

use std::collections::HashMap;
use std::fmt;

use super::textproto::{self, Field, Message, Pos, TextProtoError, Value};

/// Parse a P4Info in protobuf text format and validate it.
///
/// Empty input is a valid, empty P4Info (some programs have no P4Runtime-visible objects).
pub fn parse_text(text: &str) -> Result<P4Info, P4InfoError> {
    from_tree(&textproto::parse(text)?)
}

/// Map an already parsed text-format tree onto the model and validate it.
pub fn from_tree(tree: &Message) -> Result<P4Info, P4InfoError> {
    let mut b = Builder::default();
    let info = b.p4info(tree)?;
    b.validate()?;
    Ok(info)
}

/// Why a P4Info was rejected. Every variant but [`P4InfoError::Syntax`] names the object or
/// field at fault; positions are those of the input text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum P4InfoError {
    /// The text is not valid protobuf text format.
    #[error(transparent)]
    Syntax(#[from] TextProtoError),
    /// A field name P4Info does not define for this message.
    #[error("{pos}: unknown field `{field}` in {message}")]
    UnknownField {
        /// Where the field name is.
        pos: Pos,
        /// The protobuf message being read, e.g. `Table`.
        message: &'static str,
        /// The unknown name.
        field: String,
    },
    /// A singular (non-repeated) field given more than once.
    #[error("{pos}: field `{field}` of {message} is given more than once")]
    RepeatedField {
        /// Where the second occurrence is.
        pos: Pos,
        /// The protobuf message being read.
        message: &'static str,
        /// The field name.
        field: String,
    },
    /// A field whose value has the wrong type or is out of range for it.
    #[error("{pos}: field `{field}` of {message}: {reason}")]
    BadValue {
        /// Where the value is.
        pos: Pos,
        /// The protobuf message being read.
        message: &'static str,
        /// The field name.
        field: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// An object without a name.
    #[error("{pos}: {kind} with id {id:#010x} has no name")]
    MissingName {
        /// Where the object is.
        pos: Pos,
        /// What kind of object.
        kind: ResourceKind,
        /// Its id.
        id: u32,
    },
    /// An object with id 0, which P4Runtime reserves to mean "invalid".
    #[error("{pos}: {kind} `{name}` has id 0, which is reserved")]
    ReservedId {
        /// Where the object is.
        pos: Pos,
        /// What kind of object.
        kind: ResourceKind,
        /// Its name.
        name: String,
    },
    /// An id whose top byte is not the prefix of the object's kind.
    #[error("{pos}: {kind} `{name}` has id {id:#010x}, but {kind} ids must start with byte {expected:#04x}")]
    WrongIdPrefix {
        /// Where the id is.
        pos: Pos,
        /// What kind of object.
        kind: ResourceKind,
        /// Its name.
        name: String,
        /// The id.
        id: u32,
        /// The prefix its kind requires.
        expected: u8,
    },
    /// Two objects with the same id.
    #[error("{pos}: {kind} `{name}` has id {id:#010x}, already used by {first_kind} `{first_name}` at {first_pos}")]
    DuplicateId {
        /// Where the second object's id is.
        pos: Pos,
        /// The shared id.
        id: u32,
        /// The second object's kind.
        kind: ResourceKind,
        /// The second object's name.
        name: String,
        /// The first object's kind.
        first_kind: ResourceKind,
        /// The first object's name.
        first_name: String,
        /// Where the first object's id is.
        first_pos: Pos,
    },
    /// Two objects of one kind with the same name or alias.
    #[error("{pos}: {kind} {what} `{name}` is already used at {first_pos}")]
    DuplicateName {
        /// Where the second object is.
        pos: Pos,
        /// The kind of both objects.
        kind: ResourceKind,
        /// `"name"` or `"alias"`.
        what: &'static str,
        /// The shared name or alias.
        name: String,
        /// Where the first object is.
        first_pos: Pos,
    },
    /// An id reference to no object, or to an object of the wrong kind.
    #[error("{pos}: {from} refers to id {id:#010x}, which is not a known {expected}")]
    UnknownReference {
        /// Where the reference is.
        pos: Pos,
        /// What holds the reference, e.g. ``action_refs of table `t` ``.
        from: String,
        /// The referenced id.
        id: u32,
        /// What the id should name, e.g. `action`.
        expected: &'static str,
    },
    /// A member of an object (match field, parameter, metadata, const default action) breaks
    /// a rule of P4Info.
    #[error("{pos}: {owner}: {reason}")]
    InvalidMember {
        /// Where the member is.
        pos: Pos,
        /// The object holding it, e.g. ``table `t` ``.
        owner: String,
        /// What is wrong.
        reason: String,
    },
}

/// The kinds of P4Info objects, each with the id prefix (most significant byte) that
/// p4info.proto's `P4Ids.Prefix` assigns to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `P4Ids.ACTION`, 0x01.
    Action,
    /// `P4Ids.TABLE`, 0x02.
    Table,
    /// `P4Ids.VALUE_SET`, 0x03.
    ValueSet,
    /// `P4Ids.CONTROLLER_HEADER`, 0x04.
    ControllerPacketMetadata,
    /// `P4Ids.ACTION_PROFILE`, 0x11.
    ActionProfile,
    /// `P4Ids.COUNTER`, 0x12.
    Counter,
    /// `P4Ids.DIRECT_COUNTER`, 0x13.
    DirectCounter,
    /// `P4Ids.METER`, 0x14.
    Meter,
    /// `P4Ids.DIRECT_METER`, 0x15.
    DirectMeter,
    /// `P4Ids.REGISTER`, 0x16.
    Register,
    /// `P4Ids.DIGEST`, 0x17.
    Digest,
}

impl ResourceKind {
    /// Every kind, in prefix order.
    pub const ALL: [ResourceKind; 11] = [
        ResourceKind::Action,
        ResourceKind::Table,
        ResourceKind::ValueSet,
        ResourceKind::ControllerPacketMetadata,
        ResourceKind::ActionProfile,
        ResourceKind::Counter,
        ResourceKind::DirectCounter,
        ResourceKind::Meter,
        ResourceKind::DirectMeter,
        ResourceKind::Register,
        ResourceKind::Digest,
    ];

    /// The most significant byte every id of this kind must have.
    pub const fn prefix(self) -> u8 {
        match self {
            ResourceKind::Action => 0x01,
            ResourceKind::Table => 0x02,
            ResourceKind::ValueSet => 0x03,
            ResourceKind::ControllerPacketMetadata => 0x04,
            ResourceKind::ActionProfile => 0x11,
            ResourceKind::Counter => 0x12,
            ResourceKind::DirectCounter => 0x13,
            ResourceKind::Meter => 0x14,
            ResourceKind::DirectMeter => 0x15,
            ResourceKind::Register => 0x16,
            ResourceKind::Digest => 0x17,
        }
    }

    /// The kind an id's prefix denotes, if it is one of these.
    pub fn of_id(id: u32) -> Option<ResourceKind> {
        let prefix = id.to_be_bytes()[0];
        Self::ALL.into_iter().find(|k| k.prefix() == prefix)
    }

    /// A lower-case name for messages, e.g. `direct counter`.
    pub const fn name(self) -> &'static str {
        match self {
            ResourceKind::Action => "action",
            ResourceKind::Table => "table",
            ResourceKind::ValueSet => "value set",
            ResourceKind::ControllerPacketMetadata => "controller packet metadata",
            ResourceKind::ActionProfile => "action profile",
            ResourceKind::Counter => "counter",
            ResourceKind::DirectCounter => "direct counter",
            ResourceKind::Meter => "meter",
            ResourceKind::DirectMeter => "direct meter",
            ResourceKind::Register => "register",
            ResourceKind::Digest => "digest",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A whole P4Info: every P4Runtime-visible object of a P4 program.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct P4Info {
    /// Package information (`pkg_info`).
    pub pkg_info: PkgInfo,
    /// Match-action tables.
    pub tables: Vec<Table>,
    /// Actions.
    pub actions: Vec<Action>,
    /// Action profiles and selectors.
    pub action_profiles: Vec<ActionProfile>,
    /// Indexed counters.
    pub counters: Vec<Counter>,
    /// Counters attached to a table.
    pub direct_counters: Vec<DirectCounter>,
    /// Indexed meters.
    pub meters: Vec<Meter>,
    /// Meters attached to a table.
    pub direct_meters: Vec<DirectMeter>,
    /// The packet-in / packet-out headers exchanged with the controller.
    pub controller_packet_metadata: Vec<ControllerPacketMetadata>,
    /// Parser value sets.
    pub value_sets: Vec<ValueSet>,
    /// Registers.
    pub registers: Vec<Register>,
    /// Digests (learn lists).
    pub digests: Vec<Digest>,
}

/// Package information. Only the fields Sluice uses are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PkgInfo {
    /// A definitive name of the configuration.
    pub name: String,
    /// The target architecture, e.g. `v1model`.
    pub arch: String,
    /// A free-form configuration version.
    pub version: String,
}

/// What every object starts with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Preamble {
    /// The P4Runtime id; its top byte encodes the kind ([`ResourceKind::prefix`]).
    pub id: u32,
    /// The fully qualified name, e.g. `ingress.ipv4_lpm`.
    pub name: String,
    /// A shorter name, unique among objects of the same kind.
    pub alias: String,
    /// P4 annotations as written, e.g. `@defaultonly`.
    pub annotations: Vec<String>,
}

/// How a table key field (or value-set field) is matched.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MatchType {
    /// Not set.
    #[default]
    Unspecified,
    /// Exact match.
    Exact,
    /// Longest-prefix match.
    Lpm,
    /// Value and mask.
    Ternary,
    /// Low and high bound.
    Range,
    /// Exact or wildcard.
    Optional,
    /// An architecture-specific match type (`other_match_type`).
    Other(String),
}

/// A key field of a table or value set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatchField {
    /// Id, unique within the table (from 1).
    pub id: u32,
    /// The field's name, e.g. `hdr.ipv4.dst_addr`.
    pub name: String,
    /// P4 annotations.
    pub annotations: Vec<String>,
    /// Width in bits (0 for some translated types).
    pub bitwidth: i32,
    /// How it is matched.
    pub match_type: MatchType,
}

/// Where a table may use an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ActionScope {
    /// In entries and as the default action.
    #[default]
    TableAndDefault,
    /// In entries only (`@tableonly`).
    TableOnly,
    /// As the default action only (`@defaultonly`).
    DefaultOnly,
}

/// One action a table may use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionRef {
    /// The action's id.
    pub id: u32,
    /// Where it may be used.
    pub scope: ActionScope,
    /// P4 annotations on the reference (e.g. `@defaultonly`).
    pub annotations: Vec<String>,
}

/// Whether a table supports idle timeout notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IdleTimeoutBehavior {
    /// No idle timeout.
    #[default]
    NoTimeout,
    /// Entries can expire; the controller is notified.
    NotifyControl,
}

/// A match-action table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    /// Id, name and annotations.
    pub preamble: Preamble,
    /// The key, in order.
    pub match_fields: Vec<MatchField>,
    /// Every action the table may use (also for indirect tables).
    pub action_refs: Vec<ActionRef>,
    /// The const default action, or 0 if the default action may be changed.
    pub const_default_action_id: u32,
    /// The action profile implementing the table, or 0 for a direct table.
    pub implementation_id: u32,
    /// The direct counters and meters attached to the table.
    pub direct_resource_ids: Vec<u32>,
    /// Maximum number of entries.
    pub size: i64,
    /// Idle timeout support.
    pub idle_timeout_behavior: IdleTimeoutBehavior,
    /// The entries are fixed by the P4 program.
    pub is_const_table: bool,
}

/// An action.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Action {
    /// Id, name and annotations.
    pub preamble: Preamble,
    /// Runtime parameters, in order.
    pub params: Vec<Param>,
}

/// A runtime parameter of an action.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Param {
    /// Id, unique within the action (from 1).
    pub id: u32,
    /// The parameter name.
    pub name: String,
    /// Width in bits.
    pub bitwidth: i32,
    /// P4 annotations.
    pub annotations: Vec<String>,
}

/// An action profile, or an action selector when `with_selector` is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionProfile {
    /// Id, name and annotations.
    pub preamble: Preamble,
    /// The tables sharing this profile.
    pub table_ids: Vec<u32>,
    /// Whether it is a selector (has groups).
    pub with_selector: bool,
    /// Maximum number of members (or, for selectors, as the spec's size semantics say).
    pub size: i64,
    /// Maximum group size for selectors; 0 if unset.
    pub max_group_size: i32,
}

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CounterUnit {
    /// Not set.
    #[default]
    Unspecified,
    /// Bytes.
    Bytes,
    /// Packets.
    Packets,
    /// Packets and bytes.
    Both,
}

/// What a meter measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MeterUnit {
    /// Not set.
    #[default]
    Unspecified,
    /// Bytes.
    Bytes,
    /// Packets.
    Packets,
}

/// An indexed counter array.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counter {
    /// Id, name and annotations.
    pub preamble: Preamble,
    /// What it counts (`spec.unit`).
    pub unit: CounterUnit,
    /// Number of cells.
    pub size: i64,
}

/// A counter attached to a table: one cell per entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectCounter {
    /// Id, name and annotations.
    pub preamble: Preamble,
    /// What it counts (`spec.unit`).
    pub unit: CounterUnit,
    /// The table it is attached to.
    pub direct_table_id: u32,
}

/// An indexed meter array.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meter {
    /// Id, name and annotations.
    pub preamble: Preamble,
    /// What it measures (`spec.unit`).
    pub unit: MeterUnit,
    /// Number of cells.
    pub size: i64,
}

/// A meter attached to a table: one cell per entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectMeter {
    /// Id, name and annotations.
    pub preamble: Preamble,
    /// What it measures (`spec.unit`).
    pub unit: MeterUnit,
    /// The table it is attached to.
    pub direct_table_id: u32,
}

/// A controller header (`packet_in` or `packet_out`) carried with packet I/O.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControllerPacketMetadata {
    /// Id and name (`packet_in` / `packet_out`).
    pub preamble: Preamble,
    /// The header's fields, in wire order.
    pub metadata: Vec<PacketMetadata>,
}

/// One field of a controller header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PacketMetadata {
    /// Id, unique within the header (from 1).
    pub id: u32,
    /// The header field name, e.g. `ingress_port`.
    pub name: String,
    /// Width in bits.
    pub bitwidth: i32,
}

/// A parser value set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValueSet {
    /// Id, name and annotations.
    pub preamble: Preamble,
    /// The fields of each member (the proto field `match`).
    pub match_fields: Vec<MatchField>,
    /// Maximum number of members.
    pub size: i32,
}

/// A register array.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Register {
    /// Id, name and annotations.
    pub preamble: Preamble,
    /// Cell width from `type_spec.bitstring.bit.bitwidth`; 0 for other cell types.
    pub bitwidth: i32,
    /// Number of cells.
    pub size: i32,
}

/// A digest (data sent to the controller).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Digest {
    /// Id, name and annotations.
    pub preamble: Preamble,
    /// The struct type's name from `type_spec.struct.name`, or empty.
    pub type_name: String,
}

/// Objects that start with a [`Preamble`], for the shared lookups.
trait HasPreamble {
    fn preamble(&self) -> &Preamble;
}

macro_rules! has_preamble {
    ($($t:ty),*) => {
        $(impl HasPreamble for $t {
            fn preamble(&self) -> &Preamble {
                &self.preamble
            }
        })*
    };
}
has_preamble!(
    Table,
    Action,
    ActionProfile,
    Counter,
    DirectCounter,
    Meter,
    DirectMeter,
    ControllerPacketMetadata,
    ValueSet,
    Register,
    Digest
);

fn by_id<T: HasPreamble>(items: &[T], id: u32) -> Option<&T> {
    items.iter().find(|x| x.preamble().id == id)
}

fn by_name<'a, T: HasPreamble>(items: &'a [T], name: &str) -> Option<&'a T> {
    items.iter().find(|x| x.preamble().name == name)
}

impl P4Info {
    /// Whether the P4Info declares no object at all (e.g. parsed from an empty file).
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
            && self.actions.is_empty()
            && self.action_profiles.is_empty()
            && self.counters.is_empty()
            && self.direct_counters.is_empty()
            && self.meters.is_empty()
            && self.direct_meters.is_empty()
            && self.controller_packet_metadata.is_empty()
            && self.value_sets.is_empty()
            && self.registers.is_empty()
            && self.digests.is_empty()
    }

    /// The table with this id.
    pub fn table(&self, id: u32) -> Option<&Table> {
        by_id(&self.tables, id)
    }

    /// The table with this fully qualified name.
    pub fn table_by_name(&self, name: &str) -> Option<&Table> {
        by_name(&self.tables, name)
    }

    /// The action with this id.
    pub fn action(&self, id: u32) -> Option<&Action> {
        by_id(&self.actions, id)
    }

    /// The action with this fully qualified name.
    pub fn action_by_name(&self, name: &str) -> Option<&Action> {
        by_name(&self.actions, name)
    }

    /// The action profile with this id.
    pub fn action_profile(&self, id: u32) -> Option<&ActionProfile> {
        by_id(&self.action_profiles, id)
    }

    /// The action profile with this fully qualified name.
    pub fn action_profile_by_name(&self, name: &str) -> Option<&ActionProfile> {
        by_name(&self.action_profiles, name)
    }

    /// The indexed counter with this id.
    pub fn counter(&self, id: u32) -> Option<&Counter> {
        by_id(&self.counters, id)
    }

    /// The direct counter with this id.
    pub fn direct_counter(&self, id: u32) -> Option<&DirectCounter> {
        by_id(&self.direct_counters, id)
    }

    /// The indexed meter with this id.
    pub fn meter(&self, id: u32) -> Option<&Meter> {
        by_id(&self.meters, id)
    }

    /// The direct meter with this id.
    pub fn direct_meter(&self, id: u32) -> Option<&DirectMeter> {
        by_id(&self.direct_meters, id)
    }

    /// The controller header with this id.
    pub fn controller_packet_metadata(&self, id: u32) -> Option<&ControllerPacketMetadata> {
        by_id(&self.controller_packet_metadata, id)
    }

    /// The controller header with this name: `packet_in` or `packet_out`.
    pub fn controller_packet_metadata_by_name(&self, name: &str) -> Option<&ControllerPacketMetadata> {
        by_name(&self.controller_packet_metadata, name)
    }

    /// The value set with this id.
    pub fn value_set(&self, id: u32) -> Option<&ValueSet> {
        by_id(&self.value_sets, id)
    }

    /// The register with this id.
    pub fn register(&self, id: u32) -> Option<&Register> {
        by_id(&self.registers, id)
    }

    /// The digest with this id.
    pub fn digest(&self, id: u32) -> Option<&Digest> {
        by_id(&self.digests, id)
    }

    /// The kind and name of the object with this id, whatever its kind.
    pub fn object(&self, id: u32) -> Option<(ResourceKind, &Preamble)> {
        fn find<T: HasPreamble>(items: &[T], id: u32) -> Option<&Preamble> {
            by_id(items, id).map(HasPreamble::preamble)
        }
        let kind = ResourceKind::of_id(id)?;
        let preamble = match kind {
            ResourceKind::Action => find(&self.actions, id),
            ResourceKind::Table => find(&self.tables, id),
            ResourceKind::ValueSet => find(&self.value_sets, id),
            ResourceKind::ControllerPacketMetadata => find(&self.controller_packet_metadata, id),
            ResourceKind::ActionProfile => find(&self.action_profiles, id),
            ResourceKind::Counter => find(&self.counters, id),
            ResourceKind::DirectCounter => find(&self.direct_counters, id),
            ResourceKind::Meter => find(&self.meters, id),
            ResourceKind::DirectMeter => find(&self.direct_meters, id),
            ResourceKind::Register => find(&self.registers, id),
            ResourceKind::Digest => find(&self.digests, id),
        }?;
        Some((kind, preamble))
    }
}

impl Table {
    /// The key field with this id.
    pub fn match_field(&self, id: u32) -> Option<&MatchField> {
        self.match_fields.iter().find(|m| m.id == id)
    }

    /// The key field with this name.
    pub fn match_field_by_name(&self, name: &str) -> Option<&MatchField> {
        self.match_fields.iter().find(|m| m.name == name)
    }

    /// The reference to this action, if the table may use it.
    pub fn action_ref(&self, action_id: u32) -> Option<&ActionRef> {
        self.action_refs.iter().find(|a| a.id == action_id)
    }
}

impl Action {
    /// The parameter with this id.
    pub fn param(&self, id: u32) -> Option<&Param> {
        self.params.iter().find(|p| p.id == id)
    }

    /// The parameter with this name.
    pub fn param_by_name(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

impl ControllerPacketMetadata {
    /// The field with this id.
    pub fn field(&self, id: u32) -> Option<&PacketMetadata> {
        self.metadata.iter().find(|m| m.id == id)
    }

    /// The header's total width in bits (the sum of its fields' widths).
    pub fn total_bitwidth(&self) -> i64 {
        self.metadata.iter().map(|m| i64::from(m.bitwidth)).sum()
    }
}

mod read;
use read::Builder;

#[cfg(test)]
mod tests;

//! The compiled form of a P4 program: what workers execute.
//!
//! Every header, field, parser state, table, action, conditional and extern is a dense
//! index into a `Vec` of this module's types, and every expression is a flat array of
//! [`Op`]s evaluated on a small value stack. Nothing here is looked up by name while a
//! packet is processed; names are kept only for messages, dumps and the control side.
//!
//! Values are unsigned and at most 128 bits wide ([`Value`]). BMv2 evaluates
//! expressions with arbitrary precision and p4c inserts the masks that give P4's
//! fixed-width semantics, so 128-bit wrapping arithmetic agrees with BMv2 for every
//! program whose fields are at most 128 bits wide and unsigned; the compiler rejects
//! the others (signed fields, wider fields) by name. A varbit field is not a value: its
//! bytes live beside the values (see [`Varbit`]) and are only moved, emitted and hashed.
//!
//! Header stacks and unions are made of ordinary header instances (p4c lists every
//! element and member in `headers`): a constant index (`hdr.mpls[0]`) is just a header
//! id. What is dynamic is kept per packet by the interpreter: a stack's *next index*
//! (advanced by `extract(stack.next)`, moved by `push_front`/`pop_front`), which
//! element `.last` and a run-time index (`hdr.mpls[i]`) name, and a union's rule that
//! at most one member is valid.

use std::ops::Range;

/// A field or expression value (fields are at most 128 bits wide).
pub type Value = u128;
/// Dense index of a header instance (metadata included).
pub type HeaderId = u32;
/// Dense index of a field.
pub type FieldId = u32;
/// Dense index of an action.
pub type ActionId = u32;
/// Dense index of a table.
pub type TableId = u32;
/// Dense index of a parser state.
pub type StateId = u32;

/// Most key fields a table may have.
pub const MAX_KEYS: usize = 32;

/// The all-ones mask of a `width`-bit value.
pub const fn mask_of(width: u32) -> Value {
    if width >= 128 {
        Value::MAX
    } else {
        (1u128 << width) - 1
    }
}

/// The compiled program.
#[derive(Debug, Clone)]
pub struct Ir {
    /// The program's name (the P4 source file, or "unnamed").
    pub name: String,
    /// Header and metadata instances.
    pub headers: Vec<HeaderDef>,
    /// Fields of all headers, header by header, in declaration order.
    pub fields: Vec<FieldDef>,
    /// Parser states.
    pub states: Vec<StateDef>,
    /// The parser's start state.
    pub start_state: StateId,
    /// Headers in the order the deparser emits them.
    pub deparser: Vec<HeaderId>,
    /// Actions (JSON action names are not unique: tables refer to these by id).
    pub actions: Vec<ActionDef>,
    /// Match-action tables of both pipelines.
    pub tables: Vec<TableDef>,
    /// Conditionals of both pipelines.
    pub conditionals: Vec<CondDef>,
    /// First node of the ingress pipeline.
    pub ingress: Option<Node>,
    /// First node of the egress pipeline.
    pub egress: Option<Node>,
    /// Action profiles and selectors.
    pub profiles: Vec<ProfileDef>,
    /// Counter arrays (indexed and direct).
    pub counters: Vec<CounterDef>,
    /// Meter arrays (indexed and direct).
    pub meters: Vec<MeterDef>,
    /// Register arrays.
    pub registers: Vec<RegisterDef>,
    /// Hash and checksum calculations.
    pub calcs: Vec<CalcDef>,
    /// Digests (`learn_lists`).
    pub learn_lists: Vec<ListDef>,
    /// Field lists (metadata kept across clone, resubmit, recirculate).
    pub field_lists: Vec<ListDef>,
    /// Parser value sets.
    pub value_sets: Vec<ValueSetDef>,
    /// Checksums verified after parsing.
    pub verify_checksums: Vec<ChecksumDef>,
    /// Checksums updated before deparsing.
    pub update_checksums: Vec<ChecksumDef>,
    /// Where `standard_metadata` lives.
    pub std: StdMeta,
    /// Parser error codes by name (`NoError`, `PacketTooShort`, ...).
    pub errors: Vec<(String, u32)>,
    /// Header stacks.
    pub stacks: Vec<StackDef>,
    /// Header unions.
    pub unions: Vec<UnionDef>,
}

/// A header stack: its elements, `stack[0]` first.
#[derive(Debug, Clone)]
pub struct StackDef {
    /// Name (`mpls`, `hdr.mpls`, ...).
    pub name: String,
    /// The element headers, in index order (all of one header type).
    pub headers: Vec<HeaderId>,
}

/// A header union: at most one member is valid at a time.
#[derive(Debug, Clone)]
pub struct UnionDef {
    /// Name.
    pub name: String,
    /// The member headers.
    pub headers: Vec<HeaderId>,
}

/// A header or metadata instance.
#[derive(Debug, Clone)]
pub struct HeaderDef {
    /// Name (`ipv4`, `hdr.ethernet`, `standard_metadata`, ...).
    pub name: String,
    /// The JSON header type's name.
    pub type_name: String,
    /// Metadata: always valid, never on the wire.
    pub metadata: bool,
    /// Its fields, a contiguous range of field ids.
    pub fields: Range<FieldId>,
    /// Length on the wire in bytes (sum of field widths / 8).
    pub bytes: u32,
    /// The union it is a member of: making it valid invalidates the other members.
    pub union: Option<u32>,
    /// Its varbit field, when it has one (always its last field; `bytes` leaves it
    /// out: its length is set per packet by `extract` with a length).
    pub varbit: Option<Varbit>,
    /// Its fields' one-load extraction, one per field in order: empty when a field
    /// is wider than one load reaches (or is varbit, or the header is metadata).
    pub loads: Vec<FieldLoad>,
    /// Bytes from the header's start that [`HeaderDef::loads`] read (the last load
    /// is 8 bytes wide, so up to 7 past the header).
    pub load_span: u32,
}

/// How one field is read from its header's bytes: the 8 bytes at `byte`
/// (big-endian), shifted left by `lead`, then right by `rshift` (`64 - width`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLoad {
    /// The first byte of the load, from the header's start.
    pub byte: u16,
    /// The field's bit offset within that byte.
    pub lead: u8,
    /// `64 - width`.
    pub rshift: u8,
}

impl FieldLoad {
    /// The loads of a header's fields, or none when a field does not fit one
    /// 8-byte load (wider than `64 - lead` bits, or varbit).
    pub fn plan(fields: &[FieldDef]) -> Vec<FieldLoad> {
        let load = |fd: &FieldDef| {
            let lead = fd.bit_offset % 8;
            (fd.width > 0 && lead + fd.width <= 64 && fd.bit_offset / 8 <= u16::MAX as u32).then(|| FieldLoad {
                byte: (fd.bit_offset / 8) as u16,
                lead: lead as u8,
                rshift: (64 - fd.width) as u8,
            })
        };
        fields.iter().map(load).collect::<Option<Vec<_>>>().unwrap_or_default()
    }
}

/// A header's variable-length (`varbit`) field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Varbit {
    /// The field (width 0 in [`FieldDef`]: its width is per packet).
    pub field: FieldId,
    /// Most bytes it can hold (the header type's `max_length` minus the fixed part).
    pub max_bytes: u32,
    /// Where its bytes live in the interpreter's varbit buffer.
    pub base: u32,
}

/// A per-header set of fields (written fields, touched provenances): bit `i` is the
/// header's `i`-th field; the 64th and later fields share the whole set,
/// [`ALL_FIELDS`].
pub const ALL_FIELDS: u64 = u64::MAX;

/// The bit of a header's field number `i` (from 0) in its field sets: fields past
/// the 63rd take them all ([`ALL_FIELDS`]).
pub const fn set_bit(i: u32) -> u64 {
    if i < 63 {
        1 << i
    } else {
        ALL_FIELDS
    }
}

impl HeaderDef {
    /// Field `f`'s bit in this header's field sets (`f` must be one of its fields).
    #[inline]
    pub fn field_bit(&self, f: FieldId) -> u64 {
        set_bit(f - self.fields.start)
    }

    /// The fields in a field set, in order ([`ALL_FIELDS`]: all of them).
    #[inline]
    pub fn fields_in(&self, set: u64) -> impl Iterator<Item = FieldId> + '_ {
        let n = self.fields.len();
        let (bits, rest) = match set {
            ALL_FIELDS if n >= 64 => (0, self.fields.clone()),
            ALL_FIELDS => ((1u64 << n) - 1, 0..0),
            _ => (set, 0..0),
        };
        self.fields_of(bits).chain(rest)
    }

    /// The fields in a field set short of [`ALL_FIELDS`], in order (the deparser's
    /// walk over written fields: no check for the whole set).
    #[inline]
    pub fn fields_of(&self, set: u64) -> impl Iterator<Item = FieldId> + '_ {
        debug_assert_ne!(set, ALL_FIELDS);
        bits_of(set).map(|i| self.fields.start + i as FieldId)
    }
}

/// The members of a 64-bit set, in increasing order.
#[inline(always)]
pub fn bits_of(mut set: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (set != 0).then(|| {
            let i = set.trailing_zeros() as usize;
            set &= set - 1;
            i
        })
    })
}

/// A field.
#[derive(Debug, Clone)]
pub struct FieldDef {
    /// `header.field`.
    pub name: String,
    /// Its header.
    pub header: HeaderId,
    /// Width in bits (1..=128; 0 for a varbit field, see [`HeaderDef::varbit`]).
    pub width: u32,
    /// Offset of its most significant bit from the start of the header, in bits.
    pub bit_offset: u32,
    /// Its bit in its header's field sets ([`HeaderDef::field_bit`]), precomputed
    /// for writes.
    pub set_bit: u64,
    /// `mask_of(width)`, precomputed for writes (a 128-bit mask is a dozen
    /// instructions to build).
    pub mask: Value,
}

/// One operation of an expression, evaluated on a value stack.
///
/// Booleans are the values 0 and 1. Binary operators pop the right operand, then the
/// left. Arithmetic wraps at 128 bits; p4c's explicit masks give the declared widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Push a field's value.
    Field(FieldId),
    /// Push a constant.
    Const(Value),
    /// Push action parameter `n`.
    Param(u32),
    /// Push 1 if the header is valid, else 0.
    Valid(HeaderId),
    /// Push `width` bits of the packet at `offset` bits past the parser's cursor.
    Lookahead {
        /// Bits past the cursor.
        offset: u32,
        /// Width in bits (at most 128).
        width: u32,
    },
    /// Unary operator.
    Un(UnOp),
    /// Binary operator.
    Bin(BinOp),
    /// Pop `else`, `then` and `cond`; push `then` if `cond`, else `else`.
    Select,
    /// Push field `field` (its index within the element type) of the stack's last
    /// extracted element (`stack.last.f`, BMv2's `stack_field`); 0 if there is none.
    StackLast {
        /// Stack.
        stack: u32,
        /// Field index within the element.
        field: u32,
    },
    /// Pop an index; push field `field` of that element (`stack[i].f`); 0 when the
    /// index is out of range.
    StackAt {
        /// Stack.
        stack: u32,
        /// Field index within the element.
        field: u32,
    },
    /// Push the stack's next index (elements extracted or pushed; BMv2's
    /// `size_stack`; `last_stack_index` is this minus one).
    StackNext(u32),
    /// Push 1 if any member of the union is valid.
    UnionValid(u32),
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    /// Boolean not.
    Not,
    /// Bitwise complement (128-bit; p4c masks it).
    BitNot,
    /// Two's complement negation (128-bit; p4c masks it).
    Neg,
    /// Boolean to integer (identity on 0/1).
    B2d,
    /// Integer to boolean (nonzero).
    D2b,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (division by zero gives 0)
    Div,
    /// `%` (modulo zero gives 0)
    Mod,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
    /// `&`
    And,
    /// `|`
    Or,
    /// `^`
    Xor,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// Boolean `and`.
    LAnd,
    /// Boolean `or`.
    LOr,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
}

impl UnOp {
    /// The result for operand `a`.
    #[inline]
    pub fn apply(self, a: Value) -> Value {
        use UnOp::*;
        match self {
            Not => (a == 0) as Value,
            BitNot => !a,
            Neg => a.wrapping_neg(),
            B2d => a,
            D2b => (a != 0) as Value,
        }
    }
}

impl BinOp {
    /// The result for operands `l` and `r`.
    #[inline]
    pub fn apply(self, l: Value, r: Value) -> Value {
        use BinOp::*;
        match self {
            Add => l.wrapping_add(r),
            Sub => l.wrapping_sub(r),
            Mul => l.wrapping_mul(r),
            Div => l.checked_div(r).unwrap_or(0),
            Mod => l.checked_rem(r).unwrap_or(0),
            Shl => {
                if r >= 128 {
                    0
                } else {
                    l << r
                }
            }
            Shr => {
                if r >= 128 {
                    0
                } else {
                    l >> r
                }
            }
            And => l & r,
            Or => l | r,
            Xor => l ^ r,
            Eq => (l == r) as Value,
            Ne => (l != r) as Value,
            Lt => (l < r) as Value,
            Le => (l <= r) as Value,
            Gt => (l > r) as Value,
            Ge => (l >= r) as Value,
            LAnd => (l != 0 && r != 0) as Value,
            LOr => (l != 0 || r != 0) as Value,
            Min => l.min(r),
            Max => l.max(r),
        }
    }
}

/// A flat expression: ops in postfix order; evaluation leaves one value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expr {
    /// The ops.
    pub ops: Vec<Op>,
}

impl Expr {
    /// A constant.
    pub fn constant(v: Value) -> Expr {
        Expr { ops: vec![Op::Const(v)] }
    }

    /// The field this expression reads, when it is just one field.
    pub fn as_field(&self) -> Option<FieldId> {
        match self.ops.as_slice() {
            [Op::Field(f)] => Some(*f),
            _ => None,
        }
    }

    /// The constant value of this expression, when it is one.
    pub fn as_const(&self) -> Option<Value> {
        match self.ops.as_slice() {
            [Op::Const(v)] => Some(*v),
            _ => None,
        }
    }
}

/// A node of a control: a table or a conditional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// Apply a table.
    Table(TableId),
    /// Branch on a condition.
    Cond(u32),
}

/// A parser state.
#[derive(Debug, Clone)]
pub struct StateDef {
    /// Name.
    pub name: String,
    /// Operations, in order.
    pub ops: Vec<ParseOp>,
    /// The select key: expressions and their widths, concatenated (at most 128 bits).
    pub key: Vec<(Expr, u32)>,
    /// Transitions, tried in order.
    pub transitions: Vec<TransitionDef>,
}

/// A parser operation.
#[derive(Debug, Clone)]
pub enum ParseOp {
    /// Extract a header at the cursor and advance past it.
    Extract(HeaderId),
    /// Extract the stack's next element (`extract(stack.next)`); a full stack stops
    /// parsing with `StackOutOfBounds`.
    ExtractNext(u32),
    /// Extract a header with a varbit field of `bits` bits (`extract(hdr, bits)`):
    /// `ParserInvalidArgument` if not whole bytes, `PacketTooShort`, then
    /// `HeaderTooShort` past the type's `max_length`.
    ExtractVarbit(HeaderId, Expr),
    /// Move the cursor forward by a number of bits.
    Advance(Expr),
    /// Check a condition; on failure set `parser_error` and stop parsing.
    Verify {
        /// The condition.
        cond: Expr,
        /// The error code.
        error: Expr,
    },
    /// An action statement run in the parser (`set`, `primitive`).
    Stmt(Stmt),
}

/// A parser transition.
#[derive(Debug, Clone)]
pub struct TransitionDef {
    /// What the key is compared with.
    pub kind: TransitionKind,
    /// The next state; `None` accepts.
    pub next: Option<StateId>,
}

/// How a transition matches the select key.
#[derive(Debug, Clone, Copy)]
pub enum TransitionKind {
    /// `key & mask == value`.
    Value {
        /// Value (already masked).
        value: Value,
        /// Mask.
        mask: Value,
    },
    /// Key is in a value set (masked).
    ValueSet {
        /// The set.
        set: u32,
        /// Mask applied to the key first.
        mask: Value,
    },
    /// Always.
    Default,
}

/// A statement of an action body (or of a parser state).
#[derive(Debug, Clone)]
pub enum Stmt {
    /// `dst = expr` (truncated to the field's width).
    Assign {
        /// Destination.
        dst: FieldId,
        /// Value.
        expr: Expr,
    },
    /// Copy a whole header (validity and fields).
    AssignHeader {
        /// Destination.
        dst: HeaderId,
        /// Source.
        src: HeaderId,
    },
    /// `dst_stack[index].field = expr`: an element chosen at run time (nothing
    /// happens when the index is out of range).
    AssignAt {
        /// Stack.
        stack: u32,
        /// The element's index.
        index: Expr,
        /// Field index within the element.
        field: u32,
        /// Value.
        expr: Expr,
    },
    /// `stack.push_front(n)`: elements move up by `n` (the last `n` fall off), the
    /// first `n` become invalid, the next index grows by `n` (at most the size).
    PushFront {
        /// Stack.
        stack: u32,
        /// Count.
        n: u32,
    },
    /// `stack.pop_front(n)`: elements move down by `n`, the last `n` become invalid,
    /// the next index shrinks by `n` (at least 0).
    PopFront {
        /// Stack.
        stack: u32,
        /// Count.
        n: u32,
    },
    /// `dst = src` for two varbit fields (`assign_VL`).
    AssignVarbit {
        /// Destination header.
        dst: HeaderId,
        /// Source header.
        src: HeaderId,
    },
    /// Copy a whole union (each member, valid or not).
    AssignUnion {
        /// Destination.
        dst: u32,
        /// Source.
        src: u32,
    },
    /// Copy a whole stack (elements and next index).
    AssignStack {
        /// Destination.
        dst: u32,
        /// Source.
        src: u32,
    },
    /// `setValid()`: valid, fields unchanged (zero unless set earlier).
    SetValid(HeaderId),
    /// `setInvalid()`.
    SetInvalid(HeaderId),
    /// `mark_to_drop`: `egress_spec = 511`, `mcast_grp = 0`.
    MarkToDrop,
    /// `counter.count(index)`.
    Count {
        /// Counter array.
        counter: u32,
        /// Cell.
        index: Expr,
    },
    /// `meter.execute_meter(index, dst)`.
    ExecuteMeter {
        /// Meter array.
        meter: u32,
        /// Cell.
        index: Expr,
        /// Where the color goes.
        dst: FieldId,
    },
    /// `register.read(dst, index)`.
    RegisterRead {
        /// Destination.
        dst: FieldId,
        /// Register array.
        register: u32,
        /// Cell.
        index: Expr,
    },
    /// `register.write(index, value)`.
    RegisterWrite {
        /// Register array.
        register: u32,
        /// Cell.
        index: Expr,
        /// Value.
        value: Expr,
    },
    /// `clone`/`clone3`: I2E when called in ingress, E2E in egress (as simple_switch
    /// decides, whichever of the two primitives p4c named).
    Clone {
        /// Clone session.
        session: Expr,
        /// Field list preserved in the clone.
        field_list: Option<u32>,
    },
    /// `resubmit` with a field list.
    Resubmit(Option<u32>),
    /// `recirculate` with a field list.
    Recirculate(Option<u32>),
    /// `truncate(length)` in bytes.
    Truncate(Expr),
    /// `dst = base + hash(calc) % size` (`hash()` and
    /// `modify_field_with_hash_based_offset`).
    Hash {
        /// Destination.
        dst: FieldId,
        /// Base.
        base: Expr,
        /// Calculation.
        calc: u32,
        /// Modulus (0 means no modulus).
        size: Expr,
    },
    /// `digest(receiver, data)`.
    Digest {
        /// Learn list.
        list: u32,
    },
    /// `exit`: end the current control.
    Exit,
    /// `log_msg` (does nothing on the fast path).
    Log,
    /// Jump to statement `n` of the same body.
    Jump(u32),
    /// Jump to statement `n` when the condition is false/zero.
    JumpIfZero(Expr, u32),
    /// `assert`/`assume`: a false condition drops the packet (BMv2 aborts).
    Assert(Expr),
}

/// An action.
#[derive(Debug, Clone)]
pub struct ActionDef {
    /// Name (not unique).
    pub name: String,
    /// JSON id.
    pub json_id: u32,
    /// Parameter names and widths.
    pub params: Vec<(String, u32)>,
    /// Body.
    pub body: Vec<Stmt>,
}

/// Match kind of one key field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// Exact.
    Exact,
    /// Longest prefix.
    Lpm,
    /// Value and mask.
    Ternary,
    /// Inclusive range.
    Range,
    /// Exact or wildcard (a ternary with an all-ones or zero mask).
    Optional,
}

impl MatchKind {
    /// The P4 name of the match kind.
    pub const fn name(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Lpm => "lpm",
            MatchKind::Ternary => "ternary",
            MatchKind::Range => "range",
            MatchKind::Optional => "optional",
        }
    }
}

/// One key field of a table.
#[derive(Debug, Clone)]
pub struct KeyDef {
    /// Name as P4Info spells it.
    pub name: String,
    /// Match kind.
    pub kind: MatchKind,
    /// The value matched (a field, a validity bit or a masked field).
    pub expr: Expr,
    /// Width in bits.
    pub width: u32,
}

/// How a table runs its actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// Entries name an action.
    Direct,
    /// Entries name a member or group of an action profile.
    Indirect,
}

/// A table entry's action: an action with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionCall {
    /// Index into the table's `actions`.
    pub slot: u32,
    /// Parameter values: inline up to two (most actions take one or two), so that
    /// a table hit reads them from its entry, not from a heap block of their own
    /// (a cache miss per hit in a table of many entries).
    pub args: Args,
}

/// An action call's parameter values.
pub type Args = smallvec::SmallVec<[Value; 2]>;

/// A constant entry from the program.
#[derive(Debug, Clone)]
pub struct ConstEntry {
    /// Per key field: value, mask (ternary/optional), prefix length (lpm) or range high.
    pub key: Vec<KeyValue>,
    /// The action.
    pub action: ActionCall,
    /// Priority (higher wins), for ternary/range/optional tables.
    pub priority: i32,
}

/// The match of one key field in an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyValue {
    /// Exact value.
    Exact(Value),
    /// Prefix.
    Lpm {
        /// Value.
        value: Value,
        /// Prefix length in bits.
        prefix: u32,
    },
    /// Value and mask.
    Ternary {
        /// Value.
        value: Value,
        /// Mask.
        mask: Value,
    },
    /// Inclusive range.
    Range {
        /// Low.
        low: Value,
        /// High.
        high: Value,
    },
}

/// A match-action table.
#[derive(Debug, Clone)]
pub struct TableDef {
    /// Name.
    pub name: String,
    /// JSON id.
    pub json_id: u32,
    /// Key fields.
    pub keys: Vec<KeyDef>,
    /// Direct or through an action profile.
    pub kind: TableKind,
    /// The action profile, when indirect.
    pub profile: Option<u32>,
    /// Capacity.
    pub max_size: u64,
    /// Actions it can run.
    pub actions: Vec<ActionId>,
    /// Next node after each action (parallel to `actions`).
    pub action_next: Vec<Option<Node>>,
    /// Next node after a miss that runs no action (`base_default_next`).
    pub base_next: Option<Node>,
    /// Next node on a hit, when the program branches on hit/miss.
    pub hit_next: Option<Option<Node>>,
    /// Next node on a miss, when the program branches on hit/miss.
    pub miss_next: Option<Option<Node>>,
    /// The program's default action (`None`: a miss runs no action, as for an
    /// indirect table without a default entry).
    pub default_action: Option<ActionCall>,
    /// The default action cannot be changed.
    pub default_const: bool,
    /// Constant entries.
    pub const_entries: Vec<ConstEntry>,
    /// Direct counter.
    pub direct_counter: Option<u32>,
    /// Direct meter.
    pub direct_meter: Option<u32>,
    /// Entries can time out.
    pub support_timeout: bool,
}

impl TableDef {
    /// Whether entries need a priority (ternary, range or optional key fields).
    pub fn needs_priority(&self) -> bool {
        self.keys.iter().any(|k| matches!(k.kind, MatchKind::Ternary | MatchKind::Range | MatchKind::Optional))
    }

    /// The slot of an action in this table.
    pub fn slot_of(&self, action: ActionId) -> Option<u32> {
        self.actions.iter().position(|a| *a == action).map(|p| p as u32)
    }
}

/// A conditional node.
#[derive(Debug, Clone)]
pub struct CondDef {
    /// Name.
    pub name: String,
    /// The condition.
    pub expr: Expr,
    /// Next when true.
    pub true_next: Option<Node>,
    /// Next when false.
    pub false_next: Option<Node>,
}

/// Hash algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgo {
    /// CRC-16 (poly 0x8005, reflected: CRC-16/ARC, as BMv2's `crc16`).
    Crc16,
    /// CRC-32 (IEEE 802.3, as BMv2's `crc32`).
    Crc32,
    /// Internet checksum (ones' complement sum of 16-bit words).
    Csum16,
    /// The input bytes as a big-endian number (last 8 bytes).
    Identity,
}

/// An action profile, with its selector when it has one.
#[derive(Debug, Clone)]
pub struct ProfileDef {
    /// Name.
    pub name: String,
    /// Capacity.
    pub max_size: u64,
    /// Selector hash: algorithm and inputs.
    pub selector: Option<(HashAlgo, Vec<(Expr, u32)>)>,
}

/// A counter array.
#[derive(Debug, Clone)]
pub struct CounterDef {
    /// Name.
    pub name: String,
    /// Cells (indexed counters).
    pub size: u64,
    /// The table it is bound to (direct counters).
    pub direct: Option<TableId>,
}

/// A meter array.
#[derive(Debug, Clone)]
pub struct MeterDef {
    /// Name.
    pub name: String,
    /// Cells (indexed meters).
    pub size: u64,
    /// The table it is bound to (direct meters).
    pub direct: Option<TableId>,
    /// Meters bytes (else packets).
    pub bytes: bool,
    /// Rates per cell.
    pub rate_count: u32,
    /// Where a direct meter writes its color.
    pub result: Option<FieldId>,
}

/// A register array.
#[derive(Debug, Clone)]
pub struct RegisterDef {
    /// Name.
    pub name: String,
    /// Cells.
    pub size: u64,
    /// Cell width in bits.
    pub width: u32,
}

/// A hash or checksum calculation.
#[derive(Debug, Clone)]
pub struct CalcDef {
    /// Name.
    pub name: String,
    /// Algorithm.
    pub algo: HashAlgo,
    /// Inputs and their widths, concatenated MSB first.
    pub inputs: Vec<(Expr, u32)>,
}

/// A list of values (digest, field list).
#[derive(Debug, Clone)]
pub struct ListDef {
    /// Name.
    pub name: String,
    /// JSON id.
    pub json_id: u32,
    /// The fields.
    pub fields: Vec<FieldId>,
}

/// A parser value set.
#[derive(Debug, Clone)]
pub struct ValueSetDef {
    /// Name.
    pub name: String,
    /// Key width in bits.
    pub width: u32,
    /// Capacity.
    pub max_size: u32,
}

/// A checksum to verify or update.
#[derive(Debug, Clone)]
pub struct ChecksumDef {
    /// Name.
    pub name: String,
    /// The checksum field.
    pub field: FieldId,
    /// The calculation over the covered fields.
    pub calc: u32,
    /// Only when this holds.
    pub cond: Option<Expr>,
    /// The Internet checksum of the field's own header with the field left out
    /// (IPv4's): computed straight from the header bytes, and recomputable by the
    /// datapath after edits.
    pub whole_header: bool,
}

/// The `standard_metadata` fields the architecture reads and writes.
#[derive(Debug, Clone, Copy)]
pub struct StdMeta {
    /// `ingress_port`.
    pub ingress_port: FieldId,
    /// `egress_spec`.
    pub egress_spec: FieldId,
    /// `egress_port`.
    pub egress_port: FieldId,
    /// `instance_type`.
    pub instance_type: FieldId,
    /// `packet_length`.
    pub packet_length: FieldId,
    /// `mcast_grp`.
    pub mcast_grp: Option<FieldId>,
    /// `egress_rid`.
    pub egress_rid: Option<FieldId>,
    /// `checksum_error`.
    pub checksum_error: Option<FieldId>,
    /// `parser_error`.
    pub parser_error: Option<FieldId>,
}

/// v1model's `instance_type` values (as BMv2's simple_switch sets them).
pub mod instance {
    /// A packet received on a port.
    pub const NORMAL: u128 = 0;
    /// An ingress-to-egress clone.
    pub const INGRESS_CLONE: u128 = 1;
    /// An egress-to-egress clone.
    pub const EGRESS_CLONE: u128 = 2;
    /// A recirculated packet.
    pub const RECIRC: u128 = 4;
    /// A multicast replica.
    pub const REPLICATION: u128 = 5;
    /// A resubmitted packet.
    pub const RESUBMIT: u128 = 6;
}

/// BMv2's drop port.
pub const DROP_PORT: u128 = 511;

impl Ir {
    /// A header by name.
    pub fn header(&self, name: &str) -> Option<HeaderId> {
        self.headers.iter().position(|h| h.name == name).map(|i| i as HeaderId)
    }

    /// A header stack by name.
    pub fn stack(&self, name: &str) -> Option<u32> {
        self.stacks.iter().position(|s| s.name == name).map(|i| i as u32)
    }

    /// A field by `header.field` name.
    pub fn field(&self, name: &str) -> Option<FieldId> {
        self.fields.iter().position(|f| f.name == name).map(|i| i as FieldId)
    }

    /// A table by name.
    pub fn table(&self, name: &str) -> Option<TableId> {
        self.tables.iter().position(|t| t.name == name).map(|i| i as TableId)
    }

    /// A counter array by name.
    pub fn counter(&self, name: &str) -> Option<u32> {
        self.counters.iter().position(|c| c.name == name).map(|i| i as u32)
    }

    /// A meter array by name.
    pub fn meter(&self, name: &str) -> Option<u32> {
        self.meters.iter().position(|c| c.name == name).map(|i| i as u32)
    }

    /// A register array by name.
    pub fn register(&self, name: &str) -> Option<u32> {
        self.registers.iter().position(|c| c.name == name).map(|i| i as u32)
    }

    /// An action profile by name.
    pub fn profile(&self, name: &str) -> Option<u32> {
        self.profiles.iter().position(|c| c.name == name).map(|i| i as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p4::bits::read_bits;
    use proptest::prelude::*;

    fn layout(widths: &[u32]) -> Vec<FieldDef> {
        let mut bit = 0;
        let mut fields = vec![];
        for (i, &w) in widths.iter().enumerate() {
            let mask = if w == 0 { 0 } else { mask_of(w) };
            fields.push(FieldDef { name: format!("f{i}"), header: 0, width: w, bit_offset: bit, set_bit: 0, mask });
            bit += w;
        }
        fields
    }

    #[test]
    fn a_field_one_load_cannot_reach_leaves_the_header_without_loads() {
        assert_eq!(FieldLoad::plan(&layout(&[4, 64])), vec![], "64 bits at lead 4");
        assert_eq!(FieldLoad::plan(&layout(&[8, 0])), vec![], "varbit");
        assert_eq!(FieldLoad::plan(&layout(&[4, 60, 128])), vec![], "wider than a load");
        let plan = FieldLoad::plan(&layout(&[48, 48, 16]));
        assert_eq!(
            plan.iter().map(|l| (l.byte, l.lead, l.rshift)).collect::<Vec<_>>(),
            [(0, 0, 16), (6, 0, 16), (12, 0, 48)]
        );
    }

    proptest! {
        /// Each load reads what `read_bits` reads, for any layout that has loads.
        #[test]
        fn loads_read_what_read_bits_reads(
            widths in proptest::collection::vec(1u32..=64, 1..12),
            bytes in proptest::collection::vec(any::<u8>(), 128),
        ) {
            let fields = layout(&widths);
            let plan = FieldLoad::plan(&fields);
            let fits = fields.iter().all(|f| f.bit_offset % 8 + f.width <= 64);
            prop_assert_eq!(plan.is_empty(), !fits);
            for (fd, l) in fields.iter().zip(&plan) {
                let at = l.byte as usize;
                let w = u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
                let v = ((w << l.lead) >> l.rshift) as Value;
                prop_assert_eq!(v, read_bits(&bytes, fd.bit_offset as usize, fd.width), "{}", fd.name);
            }
        }
    }
}

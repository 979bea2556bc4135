//! The BMv2 JSON document (`p4c-bm2-ss` output, v1model), as typed data.
//!
//! # Design
//! Structure is typed; expressions, parser-op and primitive parameters stay
//! [`serde_json::Value`] here and are checked by the compiler, which reports each error
//! with its place in the document. Every struct denies unknown keys: a key this engine
//! does not know could change the program's meaning, so it is rejected with its name and
//! position rather than ignored. Keys that carry no semantics (`source_info`,
//! `pi_omit`) are accepted explicitly.
//!
//! # Limitations
//! Header union types and stacks of unions, `extern_instances`, `enums` and
//! `force_arith` are read as raw values; the compiler rejects the ones it cannot run.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// Why a JSON document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("BMv2 JSON: {0}")]
pub struct JsonError(pub String);

/// Where a construct came from in the P4 source (for messages only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SourceInfo {
    /// P4 source file.
    #[serde(default)]
    pub filename: String,
    /// Line.
    #[serde(default)]
    pub line: u32,
    /// Column.
    #[serde(default)]
    pub column: u32,
    /// The source text.
    #[serde(default)]
    pub source_fragment: String,
}

/// The whole program.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// The P4 source file name.
    #[serde(default)]
    pub program: Option<String>,
    /// Format version and compiler.
    #[serde(rename = "__meta__", default)]
    pub meta: Option<Meta>,
    /// Header (and struct) types.
    pub header_types: Vec<HeaderType>,
    /// Header and metadata instances.
    pub headers: Vec<Header>,
    /// Header stacks.
    #[serde(default)]
    pub header_stacks: Vec<HeaderStack>,
    /// Header union types (raw: the unions name their members by header id).
    #[serde(default)]
    pub header_union_types: Vec<Value>,
    /// Header unions.
    #[serde(default)]
    pub header_unions: Vec<HeaderUnion>,
    /// Header union stacks (raw).
    #[serde(default)]
    pub header_union_stacks: Vec<Value>,
    /// Field lists (clone/resubmit/recirculate metadata, digests in old programs).
    #[serde(default)]
    pub field_lists: Vec<NamedElements>,
    /// Parser errors: `[name, value]`.
    #[serde(default)]
    pub errors: Vec<(String, i64)>,
    /// Enums (raw).
    #[serde(default)]
    pub enums: Vec<Value>,
    /// Parsers (v1model has one).
    pub parsers: Vec<Parser>,
    /// Parser value sets.
    #[serde(default)]
    pub parse_vsets: Vec<ParseVset>,
    /// Deparsers (v1model has one).
    pub deparsers: Vec<Deparser>,
    /// Meter arrays (direct and indexed).
    #[serde(default)]
    pub meter_arrays: Vec<MeterArray>,
    /// Counter arrays (direct and indexed).
    #[serde(default)]
    pub counter_arrays: Vec<CounterArray>,
    /// Register arrays.
    #[serde(default)]
    pub register_arrays: Vec<RegisterArray>,
    /// Hash and checksum calculations.
    #[serde(default)]
    pub calculations: Vec<Calculation>,
    /// Digests (`learn_lists`).
    #[serde(default)]
    pub learn_lists: Vec<NamedElements>,
    /// Actions (names are not unique: resolve per table).
    pub actions: Vec<Action>,
    /// `ingress` and `egress`.
    pub pipelines: Vec<Pipeline>,
    /// Checksum verify/update.
    #[serde(default)]
    pub checksums: Vec<Checksum>,
    /// Arithmetic forced on fields (raw; BMv2 optimisation hint).
    #[serde(default)]
    pub force_arith: Vec<Value>,
    /// Extern instances (raw).
    #[serde(default)]
    pub extern_instances: Vec<Value>,
    /// Aliases of standard metadata: `[alias, [header, field]]`.
    #[serde(default)]
    pub field_aliases: Vec<(String, (String, String))>,
}

/// `__meta__`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// `[major, minor]`
    pub version: Vec<u32>,
    /// Compiler URL.
    #[serde(default)]
    pub compiler: Option<String>,
}

/// A header type: fields `[name, width, signed]` (width `"*"` for varbit).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderType {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// Raw field specs; see [`HeaderType::field_specs`].
    pub fields: Vec<Vec<Value>>,
    /// Maximum length in bytes (varbit headers).
    #[serde(default)]
    pub max_length: Option<u32>,
}

/// One field of a header type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    /// Name.
    pub name: String,
    /// Width in bits; `None` for a varbit field.
    pub width: Option<u32>,
    /// Signed (`int<N>`).
    pub signed: bool,
    /// Saturating arithmetic.
    pub saturating: bool,
}

impl HeaderType {
    /// The fields, checked.
    pub fn field_specs(&self) -> Result<Vec<FieldSpec>, JsonError> {
        self.fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let bad = |what: &str| JsonError(format!("header_types {:?} field #{i} {f:?}: {what}", self.name));
                let name = f.first().and_then(Value::as_str).ok_or_else(|| bad("no name"))?.to_owned();
                let width = match f.get(1) {
                    Some(Value::Number(n)) => Some(
                        n.as_u64().filter(|w| (1..=4096).contains(w)).ok_or_else(|| bad("width not in 1..=4096"))?
                            as u32,
                    ),
                    Some(Value::String(s)) if s == "*" => None,
                    _ => return Err(bad("width must be a number or \"*\"")),
                };
                let signed = match f.get(2) {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err(bad("signedness must be true or false")),
                };
                let saturating = match f.get(3) {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err(bad("saturation must be true or false")),
                };
                if f.len() > 4 {
                    return Err(bad("more than 4 elements"));
                }
                Ok(FieldSpec { name, width, signed, saturating })
            })
            .collect()
    }
}

/// A header or metadata instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// Its type's name.
    pub header_type: String,
    /// Metadata (always valid, not on the wire).
    pub metadata: bool,
    /// PI hint, no semantics.
    #[serde(default)]
    pub pi_omit: Option<bool>,
}

/// A header stack.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderStack {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// Element type.
    pub header_type: String,
    /// Elements.
    pub size: u32,
    /// The header instances that make up the stack.
    pub header_ids: Vec<u32>,
}

/// A header union instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderUnion {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// Its union type's name.
    pub union_type: String,
    /// The member header instances.
    pub header_ids: Vec<u32>,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

/// A named list of expressions (field lists, learn lists).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedElements {
    /// Id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Elements (raw expressions).
    pub elements: Vec<Value>,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

/// A parser.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parser {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// Start state.
    pub init_state: String,
    /// States.
    pub parse_states: Vec<ParseState>,
}

/// A parser state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParseState {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// Operations, in order.
    pub parser_ops: Vec<ParserOp>,
    /// Transitions, tried in order.
    pub transitions: Vec<Transition>,
    /// The select key (raw expressions).
    #[serde(default)]
    pub transition_key: Vec<Value>,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

/// A parser operation (`extract`, `set`, `verify`, `advance`, `primitive`, ...).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParserOp {
    /// Operation name.
    pub op: String,
    /// Parameters (raw).
    pub parameters: Vec<Value>,
}

/// A parser transition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// `hexstr`, `default` or `parse_vset`.
    #[serde(rename = "type", default = "default_transition")]
    pub kind: String,
    /// The key value (hex string) or the value set's name.
    #[serde(default)]
    pub value: Option<Value>,
    /// Mask (hex string).
    #[serde(default)]
    pub mask: Option<Value>,
    /// Next state; `None` accepts.
    pub next_state: Option<String>,
}

fn yes() -> bool {
    true
}

fn default_transition() -> String {
    "hexstr".into()
}

/// A parser value set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParseVset {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// Key width in bits (older format).
    #[serde(default)]
    pub compressed_bitwidth: Option<u32>,
    /// Key widths in bits.
    #[serde(default)]
    pub bitwidths: Vec<u32>,
    /// Maximum entries.
    #[serde(default)]
    pub max_size: Option<u32>,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

/// A deparser.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deparser {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// Headers, in emit order.
    pub order: Vec<String>,
    /// Primitives run before emitting (raw).
    #[serde(default)]
    pub primitives: Vec<Value>,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

/// A meter array.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterArray {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// Direct (bound to a table).
    pub is_direct: bool,
    /// The table, when direct.
    #[serde(default)]
    pub binding: Option<String>,
    /// Cells, when indexed.
    #[serde(default)]
    pub size: Option<u64>,
    /// Rates per meter (2 for trTCM).
    pub rate_count: u32,
    /// `bytes` or `packets`.
    #[serde(rename = "type")]
    pub unit: String,
    /// Where a direct meter writes its color.
    #[serde(default)]
    pub result_target: Option<Vec<String>>,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

/// A counter array.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterArray {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// Direct (bound to a table).
    pub is_direct: bool,
    /// The table, when direct.
    #[serde(default)]
    pub binding: Option<String>,
    /// Cells, when indexed.
    #[serde(default)]
    pub size: Option<u64>,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

/// A register array.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterArray {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// Cells.
    pub size: u64,
    /// Cell width in bits.
    pub bitwidth: u32,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

/// A hash or checksum calculation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calculation {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// `csum16`, `crc16`, `crc32`, `identity`, ...
    pub algo: String,
    /// Inputs (raw expressions).
    pub input: Vec<Value>,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

/// An action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// Name (not unique).
    pub name: String,
    /// Id (unique).
    pub id: u32,
    /// Parameters.
    pub runtime_data: Vec<RuntimeData>,
    /// Body.
    pub primitives: Vec<Primitive>,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

/// An action parameter.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeData {
    /// Name.
    pub name: String,
    /// Width in bits.
    pub bitwidth: u32,
}

/// One primitive call in an action body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Primitive {
    /// `assign`, `add_header`, `mark_to_drop`, `count`, ...
    pub op: String,
    /// Parameters (raw expressions).
    pub parameters: Vec<Value>,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

/// A control pipeline (`ingress` or `egress`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// First node (table or conditional); `None`: empty pipeline.
    pub init_table: Option<String>,
    /// Tables.
    pub tables: Vec<Table>,
    /// Action profiles and selectors.
    #[serde(default)]
    pub action_profiles: Vec<ActionProfile>,
    /// Conditionals.
    #[serde(default)]
    pub conditionals: Vec<Conditional>,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

/// A match-action table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// Key fields.
    pub key: Vec<TableKey>,
    /// Overall match kind (`exact`, `lpm`, `ternary`, `range`).
    pub match_type: String,
    /// `simple`, `indirect` or `indirect_ws`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The action profile, when indirect.
    #[serde(default)]
    pub action_profile: Option<String>,
    /// Capacity.
    pub max_size: u64,
    /// Has a direct counter.
    pub with_counters: bool,
    /// Entries can time out.
    pub support_timeout: bool,
    /// The direct meter's name, if any.
    #[serde(default)]
    pub direct_meters: Option<String>,
    /// Action ids this table can run.
    pub action_ids: Vec<u32>,
    /// Action names, parallel to `action_ids`.
    pub actions: Vec<String>,
    /// Next node when the action has no entry in `next_tables`.
    pub base_default_next: Option<String>,
    /// Next node per action name (or `__HIT__` / `__MISS__`).
    pub next_tables: BTreeMap<String, Option<String>>,
    /// The default entry.
    #[serde(default)]
    pub default_entry: Option<DefaultEntry>,
    /// Const entries (raw).
    #[serde(default)]
    pub entries: Vec<Value>,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

/// One key field of a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableKey {
    /// `exact`, `lpm`, `ternary`, `range`, `valid`, `optional`.
    pub match_type: String,
    /// Name (as P4Info spells it).
    #[serde(default)]
    pub name: Option<String>,
    /// `[header, field]` (raw).
    pub target: Value,
    /// A constant mask applied to the field (hex string), if any.
    #[serde(default)]
    pub mask: Option<Value>,
}

/// A table's default entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultEntry {
    /// The action.
    pub action_id: u32,
    /// The action cannot be changed.
    #[serde(default)]
    pub action_const: bool,
    /// Action data (hex strings).
    #[serde(default)]
    pub action_data: Vec<String>,
    /// The whole entry cannot be changed.
    #[serde(default)]
    pub action_entry_const: bool,
}

/// An action profile, with a selector when it has one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionProfile {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// Capacity.
    pub max_size: u64,
    /// Group member selection.
    #[serde(default)]
    pub selector: Option<Selector>,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

/// How a selector hashes to pick a group member.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// Hash algorithm.
    pub algo: String,
    /// Hash inputs (raw expressions).
    pub input: Vec<Value>,
}

/// A conditional node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditional {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// The condition (raw expression).
    pub expression: Value,
    /// Next node when true; `None` ends the pipeline.
    pub true_next: Option<String>,
    /// Next node when false; `None` ends the pipeline.
    pub false_next: Option<String>,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

/// A checksum to verify (in the parser) or update (before the deparser).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checksum {
    /// Name.
    pub name: String,
    /// Id.
    pub id: u32,
    /// The checksum field, `[header, field]`.
    pub target: Vec<String>,
    /// `generic` or `ipv4`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The calculation's name.
    pub calculation: String,
    /// Verify in the parser. Absent means true (BMv2 reads `get("verify", true)`; older
    /// JSON such as simple_router's has neither key, and both checksums run both ways).
    #[serde(default = "yes")]
    pub verify: bool,
    /// Update before deparsing. Absent means true, as for `verify`.
    #[serde(default = "yes")]
    pub update: bool,
    /// Condition (raw expression).
    #[serde(default)]
    pub if_cond: Option<Value>,
    /// Source.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
}

impl Program {
    /// Parse BMv2 JSON text. Errors give line, column and the offending key.
    pub fn parse(text: &str) -> Result<Program, JsonError> {
        serde_json::from_str(text).map_err(|e| JsonError(e.to_string()))
    }

    /// Parse BMv2 JSON bytes (P4Runtime's `p4_device_config`).
    pub fn parse_bytes(bytes: &[u8]) -> Result<Program, JsonError> {
        let text = std::str::from_utf8(bytes).map_err(|e| JsonError(format!("not UTF-8: {e}")))?;
        Self::parse(text)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    use crate::p4::corpus;

    /// The corpus directory (see `p4::corpus`).
    pub fn corpus() -> Option<PathBuf> {
        corpus::dir()
    }

    /// Every `*.json` of the corpus, sorted.
    pub fn corpus_jsons(dir: &std::path::Path) -> Vec<PathBuf> {
        corpus::files(dir, ".json")
    }

    #[test]
    fn every_corpus_program_parses_with_all_header_fields_valid() {
        let Some(dir) = corpus() else { return };
        let files = corpus_jsons(&dir);
        assert!(files.len() >= 13, "corpus has {} programs", files.len());
        for f in files {
            let p = Program::parse(&std::fs::read_to_string(&f).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert_eq!(p.pipelines.len(), 2, "{}: ingress + egress", f.display());
            for ht in &p.header_types {
                ht.field_specs().unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            }
        }
    }

    #[test]
    fn simple_router_shape() {
        let Some(dir) = corpus() else { return };
        let p =
            Program::parse(&std::fs::read_to_string(dir.join("simple_router/simple_router.json")).unwrap()).unwrap();
        let ingress = &p.pipelines[0];
        let lpm = ingress.tables.iter().find(|t| t.name == "ipv4_lpm").unwrap();
        assert_eq!(lpm.match_type, "lpm");
        assert_eq!(lpm.key[0].match_type, "lpm");
        assert_eq!(lpm.key[0].target, serde_json::json!(["ipv4", "dstAddr"]));
        assert_eq!(p.checksums.len(), 2);
        assert!(p.checksums.iter().all(|c| c.verify && c.update), "absent flags mean both, as in BMv2");
    }

    #[test]
    fn unknown_keys_are_named_with_their_position() {
        let text = r#"{"header_types": [], "headers": [], "parsers": [], "deparsers": [],
            "actions": [{"name": "a", "id": 0, "runtime_data": [], "primitives": [], "frobnicate": 1}],
            "pipelines": []}"#;
        let e = Program::parse(text).unwrap_err().0;
        assert!(e.contains("unknown field `frobnicate`"), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn bad_field_specs_are_explained() {
        let ht = HeaderType {
            name: "h".into(),
            id: 0,
            fields: vec![vec![serde_json::json!("f"), serde_json::json!(0)]],
            max_length: None,
        };
        assert!(ht.field_specs().unwrap_err().0.contains("width not in 1..=4096"));
        let ht = HeaderType { fields: vec![vec![serde_json::json!("v"), serde_json::json!("*")]], ..ht };
        assert_eq!(ht.field_specs().unwrap()[0].width, None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = Program::parse_bytes(&bytes);
        }
    }
}

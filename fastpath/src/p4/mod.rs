//! The P4 pipeline engine: BMv2 JSON (v1model, as `p4c-bm2-ss` emits it) plus P4Info,
//! loaded at run time, cross-checked, and compiled to an IR the workers run.
//!
//! * [`json`]: the BMv2 JSON document, as typed data (no semantics yet).
//! * [`crosscheck`]: P4Info checked against the JSON by name, and the mapping between them.
//! * [`p4info`]: P4Info (text format) as a neutral, validated model.
//! * [`textproto`]: a schema-less protobuf text-format parser.
//! * [`ir`]: the compiled program (dense ids, flat expressions); [`compile`] builds it.
//! * [`tables`]: the program's mutable state (entries, profiles, PRE, registers).
//! * [`ops`]: updates of that state as data, replayed identically on every copy.
//! * [`interp`]: runs a packet through the program as simple_switch does.
//! * [`track`]: read tracking and datapath actions (what the megaflow cache installs).
//! * [`bits`]: bit-field access and v1model hashes.

pub mod bits;
pub mod compile;
pub mod crosscheck;
pub mod diff;
pub mod interp;
pub mod ir;
pub mod json;
pub mod meters;
pub mod ops;
pub mod p4info;
pub mod tables;
pub mod textproto;
pub mod track;
mod trie;

// Public (hidden) for other crates' tests.
#[doc(hidden)]
pub mod corpus;

#[cfg(test)]
pub(crate) mod engine_tests;

// Public (hidden) for other crates' tests: the offload differential test draws from it.
#[doc(hidden)]
pub mod gen;

#[cfg(test)]
mod meter_tests;

#[cfg(test)]
mod default_tests;

#[cfg(test)]
pub(crate) mod stack_tests;

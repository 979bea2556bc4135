//! The P4 pipeline engine: BMv2 JSON (v1model, as `p4c-bm2-ss` emits it) plus P4Info,
//! loaded at run time, cross-checked, and compiled to an IR the workers run.
//!
//! * [`json`]: the BMv2 JSON document, as typed data (no semantics yet).

pub mod json;

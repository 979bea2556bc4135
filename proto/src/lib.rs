//! Protocol definitions of Sluice's gRPC services, compiled with tonic/prost: the
//! official P4Runtime protos and Sluice's management API. Used by `control` only.
//!
//! Empty until the P4Runtime and management-API issues land; the crate exists now so
//! the workspace layout (and its one-way dependencies) is fixed from the start.
#![deny(unsafe_code)]

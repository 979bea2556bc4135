//! Protocol definitions of Sluice's gRPC services, compiled with tonic/prost: the
//! official P4Runtime protos (v1.5.0, from the pinned PyPI wheel `proto/fetch.sh`
//! downloads and checks). Used by `control` only.
#![deny(unsafe_code)]
#![allow(missing_docs, clippy::all)] // generated code

/// `google.rpc`: Status and Code.
pub mod google {
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

/// `p4.v1` and `p4.config.v1`.
pub mod p4 {
    pub mod v1 {
        tonic::include_proto!("p4.v1");
    }
    pub mod config {
        pub mod v1 {
            tonic::include_proto!("p4.config.v1");
        }
    }
}

/// The serialized `FileDescriptorSet` of the P4Runtime protos (for text format).
pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/p4runtime_descriptor.bin"));

/// The P4Runtime API version these protos define.
pub const P4RUNTIME_API_VERSION: &str = "1.5.0";

pub mod text;

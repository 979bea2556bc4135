//! Protocol definitions of Sluice's gRPC services, compiled with tonic/prost: the
//! official P4Runtime protos (v1.5.0, from the pinned PyPI wheel `proto/fetch.sh`
//! downloads and checks), and Sluice's management API (`proto/sluice/mgmt/v1`).
//! Used by `control` only.
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

/// `sluice.mgmt.v1`: Sluice's management API (sluiced ⇄ sluicectl).
pub mod sluice {
    pub mod mgmt {
        pub mod v1 {
            tonic::include_proto!("sluice.mgmt.v1");
        }
    }
}

/// The serialized `FileDescriptorSet` of the P4Runtime protos (for text format).
pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/p4runtime_descriptor.bin"));

/// The serialized `FileDescriptorSet` of the management API (for JSON output).
pub const MGMT_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgmt_descriptor.bin"));

/// A management API message as JSON for scripts: proto field names, every field
/// (defaults too), 64-bit integers as numbers.
pub fn mgmt_json<M: prost::Message>(msg: &M, full_name: &str) -> serde_json::Value {
    use std::sync::OnceLock;
    static POOL: OnceLock<prost_reflect::DescriptorPool> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        prost_reflect::DescriptorPool::decode(MGMT_DESCRIPTOR_SET).expect("the built descriptor set decodes")
    });
    let desc = pool.get_message_by_name(full_name).unwrap_or_else(|| panic!("{full_name} is a management message"));
    let dynamic = prost_reflect::DynamicMessage::decode(desc, msg.encode_to_vec().as_slice())
        .expect("a message decodes with its own descriptor");
    let opts = prost_reflect::SerializeOptions::new()
        .stringify_64_bit_integers(false)
        .use_proto_field_name(true)
        .skip_default_fields(false);
    dynamic.serialize_with_options(serde_json::value::Serializer, &opts).expect("a message serialises to JSON")
}

/// The P4Runtime API version these protos define.
pub const P4RUNTIME_API_VERSION: &str = "1.5.0";

pub mod text;

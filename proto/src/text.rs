//! Protobuf text format for P4Info (what p4c writes as `*.p4info.txt`), through the
//! descriptors of the compiled protos.

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

use crate::p4::config::v1::P4Info;

fn descriptor(name: &str) -> MessageDescriptor {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    let pool =
        POOL.get_or_init(|| DescriptorPool::decode(crate::DESCRIPTOR_SET).expect("the built descriptor set decodes"));
    pool.get_message_by_name(name).unwrap_or_else(|| panic!("{name} is in the descriptor set"))
}

/// Parse a P4Info in protobuf text format.
pub fn p4info_from_text(text: &str) -> Result<P4Info, String> {
    let msg = DynamicMessage::parse_text_format(descriptor("p4.config.v1.P4Info"), text).map_err(|e| e.to_string())?;
    msg.transcode_to::<P4Info>().map_err(|e| e.to_string())
}

/// Print a P4Info in protobuf text format (one field per line).
pub fn p4info_to_text(info: &P4Info) -> String {
    let mut msg = DynamicMessage::new(descriptor("p4.config.v1.P4Info"));
    msg.transcode_from(info).expect("a P4Info transcodes to its own descriptor");
    msg.to_text_format_with_options(&prost_reflect::text_format::FormatOptions::new().pretty(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let text = r#"
pkg_info { arch: "v1model" }
tables {
  preamble { id: 33574068 name: "ipv4_lpm" alias: "ipv4_lpm" }
  match_fields { id: 1 name: "ipv4.dstAddr" bitwidth: 32 match_type: LPM }
  action_refs { id: 16812204 }
  size: 1024
}
digests { preamble { id: 1 name: "d" } type_spec { struct { name: "s" } } }
type_info { structs { key: "s" value { members { name: "a" type_spec { bitstring { bit { bitwidth: 9 } } } } } } }
"#;
        let info = p4info_from_text(text).unwrap();
        assert_eq!(info.tables[0].preamble.as_ref().unwrap().name, "ipv4_lpm");
        assert_eq!(info.tables[0].match_fields[0].bitwidth, 32);
        let again = p4info_from_text(&p4info_to_text(&info)).unwrap();
        assert_eq!(again, info);
        assert!(p4info_from_text("tables { bogus: 1 }").unwrap_err().contains("bogus"));
    }
}

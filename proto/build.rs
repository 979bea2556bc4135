//! Compile the P4Runtime protos fetched by `proto/fetch.sh` with `protoc` (Debian's
//! protobuf-compiler) into prost messages and tonic services, and keep the descriptor
//! set (for text-format P4Info); and Sluice's management API (`sluice/mgmt/v1`).

use std::path::{Path, PathBuf};

const PROTOS: [&str; 6] = [
    "p4/v1/p4runtime.proto",
    "p4/v1/p4data.proto",
    "p4/config/v1/p4info.proto",
    "p4/config/v1/p4types.proto",
    "google/rpc/status.proto",
    "google/rpc/code.proto",
];

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = dir.join("upstream");
    println!("cargo:rerun-if-changed={}", root.join(".source").display());
    println!("cargo:rerun-if-changed=build.rs");
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    if let Some(missing) = files.iter().find(|f| !f.exists()) {
        panic!(
            "{} is missing: run proto/fetch.sh (or `make deps`) to fetch the pinned P4Runtime protos from PyPI",
            missing.display()
        );
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .file_descriptor_set_path(out.join("p4runtime_descriptor.bin"))
        .compile_protos(&files, &[root])
        .unwrap_or_else(|e| panic!("cannot compile the P4Runtime protos (is protoc installed? apt-get install protobuf-compiler libprotobuf-dev): {e}"));
    // Sluice's own management API.
    let mgmt = dir.join("sluice/mgmt/v1/mgmt.proto");
    println!("cargo:rerun-if-changed={}", mgmt.display());
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .file_descriptor_set_path(out.join("mgmt_descriptor.bin"))
        .compile_protos(&[mgmt], &[dir.to_path_buf()])
        .unwrap_or_else(|e| panic!("cannot compile sluice/mgmt/v1/mgmt.proto: {e}"));
}

//! Binds the system DPDK (Debian's libdpdk-dev 22.11) with bindgen and compiles
//! C wrappers for its `static inline` hot functions (rx/tx burst, mbuf alloc/free,
//! ring enqueue/dequeue, rdtsc, ...), which have no symbol to link against.
//!
//! Facts this relies on (see DPDK-NOTES.md): the `pkg-config` crate drops
//! `-include rte_config.h` and `-march=corei7`, so the cflags are taken verbatim
//! from the `pkg-config` binary; thread-local `per_lcore_*` variables are never
//! bound (they would link and then segfault) and are read through `shim.c`.

use std::path::PathBuf;
use std::process::Command;

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
        .unwrap_or_else(|e| panic!("cannot run pkg-config ({e}); install pkg-config and libdpdk-dev"));
    if !out.status.success() {
        panic!(
            "pkg-config {args:?} libdpdk failed: {}\nInstall DPDK: apt-get install -y dpdk dpdk-dev libdpdk-dev",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).expect("pkg-config output is UTF-8").split_whitespace().map(str::to_owned).collect()
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for f in ["wrapper.h", "src/shim.h", "src/shim.c", "build.rs"] {
        println!("cargo:rerun-if-changed={}", manifest.join(f).display());
    }
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let version = pkg_config(&["--modversion"]).join("");
    if !version.starts_with("22.11") {
        println!("cargo:warning=Sluice is built and tested against DPDK 22.11; found {version}");
    }
    println!("cargo:rustc-env=SLUICE_DPDK_PKG_VERSION={version}");

    let mut cflags = pkg_config(&["--cflags"]);
    cflags.push("-DALLOW_EXPERIMENTAL_API".into());

    // Link only the libraries the bindings use; PMDs are dlopen()ed by the EAL at
    // init from its pmds directory (shared linkage), so none is named here.
    for dir in pkg_config(&["--libs-only-L"]) {
        println!("cargo:rustc-link-search=native={}", dir.trim_start_matches("-L"));
    }
    for lib in [
        "rte_ethdev",
        "rte_meter",
        "rte_net",
        "rte_mbuf",
        "rte_mempool",
        "rte_rcu",
        "rte_ring",
        "rte_eal",
        "rte_kvargs",
        "rte_telemetry",
    ] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }

    let header = manifest.join("wrapper.h");
    let wrap_base = out_dir.join("static_fns");
    let wrap_c = out_dir.join("static_fns.c");
    let bindings = bindgen::Builder::default()
        .header(header.to_str().unwrap())
        .clang_args(cflags.iter().map(String::as_str))
        .clang_arg(format!("-I{}", manifest.display()))
        .allowlist_function(
            "rte_(eal|eth|pktmbuf|mempool|mbuf|ring|flow|meter|mtr|lcore|thread|rdtsc|get_tsc|rcu|dev|strerror|socket|version|delay|log|get_timer|pause)_?.*",
        )
        .allowlist_function("sluice_.*")
        .allowlist_type("rte_(eth|flow|meter|mtr|mbuf|mempool|ring|rcu)_.*")
        .allowlist_var("RTE_(ETH|MBUF|PKTMBUF|MEMPOOL|RING|FLOW|MAX|VERSION|ETHER)_.*")
        .allowlist_var("SOCKET_ID_ANY|RTE_PTYPE_.*|RING_F_.*|rte_eth_fp_ops")
        .blocklist_item("per_lcore_.*")
        .opaque_type("rte_arp_hdr")
        .opaque_type("rte_arp_ipv4")
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_generic_hdr")
        .no_debug("rte_flow_item_gtp_psc")
        .default_enum_style(bindgen::EnumVariation::NewType { is_bitfield: false, is_global: false })
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .wrap_static_fns(true)
        .wrap_static_fns_path(&wrap_base)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on the DPDK headers (is libclang-dev installed? LIBCLANG_PATH set?)");
    bindings.write_to_file(out_dir.join("bindings.rs")).expect("write bindings.rs");

    let mut build = cc::Build::new();
    build.file(&wrap_c).file(manifest.join("src/shim.c")).include(&manifest).opt_level(3).warnings(false);
    for flag in &cflags {
        build.flag(flag);
    }
    build.compile("sluice_dpdk_wrappers");
}

//! The embedded default: `sluiced --demo` runs Sluice's default program (a bridge and
//! router programmed by the built-in app) on virtual devices only — a pcap replay port
//! and two sinks — so a newcomer with no NIC sees traffic bridged and routed with one
//! command (`make run`).

use std::path::{Path, PathBuf};

use crate::config::{format_cores, Config, ConfigError};
use crate::pcap;

/// The demo configuration text, before substitution.
pub const DEMO_TOML: &str = include_str!("demo.toml");

/// Flows in the demo traffic.
pub const DEMO_FLOWS: u32 = 64;

/// A prepared demo: its configuration and the directory holding its pcap.
#[derive(Debug)]
pub struct Demo {
    /// The configuration to run.
    pub config: Config,
    /// The directory to remove afterwards.
    pub dir: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Write the demo traffic into a fresh directory and build the configuration, with
/// the last available core as the worker and the first as control.
pub fn prepare(online: &[usize]) -> Result<Demo, ConfigError> {
    let (Some(&control), Some(&worker)) = (online.iter().min(), online.iter().max()) else {
        return Err(ConfigError("no CPU core is available to this process".into()));
    };
    if control == worker {
        return Err(ConfigError(format!(
            "the demo needs two cores (one worker, one control); this process may use only {}",
            format_cores(online)
        )));
    }
    let dir = std::env::temp_dir().join(format!("sluice-demo-{}", std::process::id()));
    let text = DEMO_TOML
        .replace("{dir}", &dir.display().to_string())
        .replace("{worker_core}", &worker.to_string())
        .replace("{control_core}", &control.to_string());
    let config = Config::parse(&text, "embedded demo config")?;
    std::fs::create_dir_all(&dir).map_err(|e| ConfigError(format!("cannot create {}: {e}", dir.display())))?;
    // From here on, Demo's Drop removes the directory whatever happens.
    let demo = Demo { config, dir };
    write_traffic(&demo.dir)?;
    Ok(demo)
}

/// Host B's MAC (a static entry behind port "bridged").
const HOST_B: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x0b];
/// The router's MAC in VLAN 10.
const ROUTER: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x01];

/// The demo traffic: flow `f` comes from host `f` (its own MAC and address in VLAN
/// 10); even flows go to host B (bridged), odd ones to 10.20.0.`f` (routed).
pub fn frames() -> Vec<Vec<u8>> {
    (0..DEMO_FLOWS)
        .map(|f| {
            let src_mac = [0x02, 0, 0, 0, 0x0a, 0x20 + f as u8];
            let src = [10, 0, 10, 0x20 + f as u8];
            let (dst_mac, dst) = if f % 2 == 0 { (HOST_B, [10, 0, 10, 11]) } else { (ROUTER, [10, 20, 0, f as u8]) };
            pcap::udp4(dst_mac, src_mac, src, dst, 1024 + f as u16, 5000, f as u16)
        })
        .collect()
}

fn write_traffic(dir: &Path) -> Result<(), ConfigError> {
    let path = dir.join("demo-64flows.pcap");
    let file =
        std::fs::File::create(&path).map_err(|e| ConfigError(format!("cannot write {}: {e}", path.display())))?;
    pcap::write(std::io::BufWriter::new(file), &frames())
        .map_err(|e| ConfigError(format!("cannot write {}: {e}", path.display())))
}

/// What the demo did, in a few lines: frames in, bridged, routed.
pub fn summary(r: &crate::report::Report) -> String {
    let port = |n: &str| r.ports.iter().find(|p| p.name == n);
    let (Some(i), Some(b), Some(o)) = (port("in"), port("bridged"), port("routed")) else {
        return String::new();
    };
    let secs = r.elapsed_seconds.max(1e-9);
    format!(
        "demo: {} frames in on \"in\" (VLAN 10, {DEMO_FLOWS} hosts) in {secs:.1} s:\n\
         demo:   {} bridged to host B out \"bridged\" (VLAN 10, static MAC 02:00:00:00:0a:0b), {:.2} Mpps\n\
         demo:   {} routed to 10.20.0.0/16 out \"routed\" (next hop 10.0.20.2, tagged VLAN 20, TTL - 1), {:.2} Mpps\n",
        i.rx_packets,
        b.tx_packets,
        b.tx_packets as f64 / secs / 1e6,
        o.tx_packets,
        o.tx_packets as f64 / secs / 1e6,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_is_valid_and_its_pcap_exists() {
        let demo = prepare(&[0, 1]).unwrap();
        let plan = demo.config.validate(&[0, 1]).unwrap();
        assert_eq!((plan.workers.as_slice(), plan.control), (&[1usize][..], 0));
        let pcap_path = demo.dir.join("demo-64flows.pcap");
        let read = pcap::read(std::fs::File::open(&pcap_path).unwrap()).unwrap();
        assert_eq!(read, frames());
        assert!(demo.config.runs_default_program());
        crate::app::config::SwitchPlan::build(&demo.config).unwrap();
        let dir = demo.dir.clone();
        drop(demo);
        assert!(!dir.exists(), "the demo cleans up after itself");
        assert!(prepare(&[3]).unwrap_err().0.contains("needs two cores"));
    }
}

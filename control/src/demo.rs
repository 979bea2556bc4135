//! The embedded default: `sluiced --demo` runs the switch on virtual devices only — a
//! pcap replay port cross-connected to a sink — so a newcomer with no NIC sees traffic
//! forwarded with one command (`make run`).

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

fn write_traffic(dir: &Path) -> Result<(), ConfigError> {
    let frames: Vec<Vec<u8>> = (0..DEMO_FLOWS).map(|f| pcap::udp_frame(f, f as u16)).collect();
    let path = dir.join("demo-64flows.pcap");
    let file =
        std::fs::File::create(&path).map_err(|e| ConfigError(format!("cannot write {}: {e}", path.display())))?;
    pcap::write(std::io::BufWriter::new(file), &frames)
        .map_err(|e| ConfigError(format!("cannot write {}: {e}", path.display())))
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
        let frames = pcap::read(std::fs::File::open(&pcap_path).unwrap()).unwrap();
        assert_eq!(frames.len(), DEMO_FLOWS as usize);
        let dir = demo.dir.clone();
        drop(demo);
        assert!(!dir.exists(), "the demo cleans up after itself");
        assert!(prepare(&[3]).unwrap_err().0.contains("needs two cores"));
    }
}

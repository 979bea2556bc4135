//! EAL arguments from the configuration, and the host checks that turn DPDK's
//! cryptic start-up failures into one actionable message.

use crate::config::{Config, ConfigError, CorePlan};

/// Hugepage state of the host, from `/proc/meminfo` and `/proc/mounts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hugepages {
    /// Free hugepages of the default size.
    pub free: u64,
    /// Default hugepage size in kB.
    pub size_kb: u64,
    /// A hugetlbfs is mounted.
    pub mounted: bool,
}

impl Hugepages {
    /// Read the host's state.
    pub fn probe() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        Self::parse(&meminfo, &mounts)
    }

    /// Parse `/proc/meminfo` and `/proc/mounts` text.
    pub fn parse(meminfo: &str, mounts: &str) -> Self {
        let field = |key: &str| {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Self {
            free: field("HugePages_Free:"),
            size_kb: field("Hugepagesize:"),
            mounted: mounts.lines().any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs")),
        }
    }

    /// Free hugepage memory in MB.
    pub fn free_mb(&self) -> u64 {
        self.free * self.size_kb / 1024
    }
}

/// The EAL argument list for `config` on `plan`'s cores, or an error if the host
/// cannot satisfy it (hugepages asked for but missing).
pub fn eal_args(config: &Config, plan: &CorePlan, huge: Hugepages) -> Result<Vec<String>, ConfigError> {
    let eal = &config.eal;
    let mut args = vec!["sluiced".to_string()];
    if eal.hugepages {
        let need = u64::from(eal.memory_mb);
        if !huge.mounted || huge.free_mb() < need {
            return Err(ConfigError(format!(
                "hugepages: need {need} MB, found {} MB free ({} free pages of {} kB){}. As root: \
                 `echo {} > /proc/sys/vm/nr_hugepages && mkdir -p /dev/hugepages && \
                 mount -t hugetlbfs none /dev/hugepages`; or set [eal] hugepages = false \
                 (or pass --no-huge) to run without them, slower, for tests and demos",
                huge.free_mb(),
                huge.free,
                huge.size_kb,
                if huge.mounted { "" } else { ", and no hugetlbfs is mounted" },
                (need * 1024).div_ceil(huge.size_kb.max(2048)) + 64,
            )));
        }
        // In-memory: no files in /dev/hugepages or /var/run/dpdk left behind.
        args.extend(["--in-memory".into(), "-m".into(), eal.memory_mb.to_string()]);
    } else {
        args.extend(["--no-huge".into(), "--no-shconf".into(), "-m".into(), eal.memory_mb.to_string()]);
    }
    let prefix = eal.file_prefix.clone().unwrap_or_else(|| format!("sluiced-{}", std::process::id()));
    args.push(format!("--file-prefix={prefix}"));
    // The EAL's own lcore set is the control core only; workers are registered
    // threads (rte_thread_register), pinned by Sluice.
    args.extend(["-l".into(), plan.control.to_string(), "--main-lcore".into(), plan.control.to_string()]);
    args.extend(eal.extra_args.iter().cloned());
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str =
        "MemTotal: 1 kB\nHugePages_Total:     512\nHugePages_Free:      500\nHugepagesize:       2048 kB\n";
    const MOUNTS: &str = "proc /proc proc rw 0 0\nhugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n";

    fn config(extra: &str) -> Config {
        Config::parse(
            &format!("{extra}\n[workers]\ncores = [1]\n[[port]]\nname = \"p\"\ndevargs = \"net_null0\"\n"),
            "t",
        )
        .unwrap()
    }

    #[test]
    fn parses_meminfo_and_mounts() {
        let h = Hugepages::parse(MEMINFO, MOUNTS);
        assert_eq!(h, Hugepages { free: 500, size_kb: 2048, mounted: true });
        assert_eq!(h.free_mb(), 1000);
        assert!(!Hugepages::parse(MEMINFO, "proc /proc proc rw 0 0").mounted);
    }

    #[test]
    fn hugepage_args_and_missing_hugepages_message() {
        let plan = CorePlan { workers: vec![1], control: 0 };
        let c = config("[eal]\nmemory_mb = 512\nfile_prefix = \"x\"\nextra_args = [\"--no-pci\"]");
        let args = eal_args(&c, &plan, Hugepages::parse(MEMINFO, MOUNTS)).unwrap();
        assert_eq!(
            args,
            ["sluiced", "--in-memory", "-m", "512", "--file-prefix=x", "-l", "0", "--main-lcore", "0", "--no-pci"]
        );
        let e = eal_args(&c, &plan, Hugepages::default()).unwrap_err();
        assert!(e.0.contains("need 512 MB, found 0 MB free"), "{e}");
        assert!(e.0.contains("no hugetlbfs is mounted"), "{e}");
        assert!(e.0.contains("hugepages = false"), "{e}");
    }

    #[test]
    fn no_huge_args() {
        let plan = CorePlan { workers: vec![1], control: 0 };
        let c = config("[eal]\nhugepages = false\nmemory_mb = 256\nfile_prefix = \"t\"");
        let args = eal_args(&c, &plan, Hugepages::default()).unwrap();
        assert_eq!(&args[1..5], ["--no-huge", "--no-shconf", "-m", "256"]);
    }
}

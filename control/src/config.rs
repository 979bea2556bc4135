//! The `sluiced` configuration file (TOML). See `docs/config.md` for the reference.
//!
//! Parsing rejects unknown keys (a typo must not silently become a default), and
//! [`Config::validate`] checks everything that can be checked before DPDK starts:
//! names, cross-connect references, queue counts, and the core list against the
//! machine's CPUs. Every error says which key is wrong and what would be right.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

/// A configuration error, with a message meant for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// EAL options.
    #[serde(default)]
    pub eal: EalConfig,
    /// The packet mempool.
    #[serde(default)]
    pub mempool: MempoolConfig,
    /// Worker and control cores.
    pub workers: WorkersConfig,
    /// Ports, in order (their index is their position).
    #[serde(default, rename = "port")]
    pub ports: Vec<PortConfig>,
    /// Cross-connect entries: every packet from `from` leaves on `to`.
    #[serde(default, rename = "xconnect")]
    pub xconnects: Vec<XConnectConfig>,
    /// The P4 program the workers run (instead of cross-connects).
    pub pipeline: Option<PipelineConfig>,
    /// The megaflow cache in front of the pipeline.
    #[serde(default)]
    pub cache: CacheSection,
    /// The P4Runtime server.
    #[serde(default)]
    pub p4runtime: P4RuntimeSection,
    /// The management API (what `sluicectl` talks to).
    #[serde(default)]
    pub management: ManagementSection,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Policers and meters across workers.
    #[serde(default)]
    pub qos: QosSection,
    /// rte_flow hardware offload of megaflows.
    #[serde(default)]
    pub offload: OffloadSection,
    /// The built-in app that programs the default program (when no `[pipeline]` and no
    /// `[[xconnect]]` are configured, the switch runs Sluice's default program).
    #[serde(default)]
    pub switch: crate::app::config::SwitchSection,
    /// VLAN names (default program).
    #[serde(default, rename = "vlan")]
    pub vlans: Vec<crate::app::config::VlanConfig>,
    /// Router interfaces (default program).
    #[serde(default, rename = "router_interface")]
    pub router_interfaces: Vec<crate::app::config::RouterInterfaceConfig>,
    /// Next hops (default program).
    #[serde(default, rename = "neighbor")]
    pub neighbors: Vec<crate::app::config::NeighborConfig>,
    /// Static routes (default program).
    #[serde(default, rename = "route")]
    pub routes: Vec<crate::app::config::RouteConfig>,
    /// Static MAC entries (default program).
    #[serde(default, rename = "mac")]
    pub macs: Vec<crate::app::config::MacConfig>,
    /// VXLAN tunnel endpoints (default program).
    #[serde(default, rename = "vtep")]
    pub vteps: Vec<crate::app::config::VtepConfig>,
    /// ACL rules (default program).
    #[serde(default, rename = "acl")]
    pub acls: Vec<crate::app::config::AclConfig>,
    /// Mirror destinations (default program).
    #[serde(default, rename = "mirror")]
    pub mirrors: Vec<crate::app::config::MirrorConfig>,
    /// The directory of the file this came from (relative paths start there).
    #[serde(skip)]
    pub base_dir: Option<std::path::PathBuf>,
}

/// `[pipeline]`: a P4 program as p4c's BMv2 back end emits it. Relative paths are
/// relative to the configuration file's directory.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// BMv2 JSON (`p4c-bm2-ss` output).
    pub json: std::path::PathBuf,
    /// P4Info (protobuf text format), cross-checked against the JSON.
    pub p4info: Option<std::path::PathBuf>,
    /// Table entries in `simple_switch_CLI` syntax, applied at start.
    pub entries: Option<std::path::PathBuf>,
}

/// `[p4runtime]`: the P4Runtime server (`p4.v1.P4Runtime`, what simple_switch_grpc serves).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct P4RuntimeSection {
    /// Serve P4Runtime at all.
    pub enabled: bool,
    /// Listen address (host:port; port 0 picks a free port, printed at start).
    pub address: String,
    /// The device id clients must use.
    pub device_id: u64,
    /// The P4 port number of the controller (CPU) port, e.g. 255 for ONOS programs,
    /// 64 for bmv2's tests. Packets the program sends there become packet-ins, and
    /// packet-outs enter the program on it — unless a Sluice port has that `p4_port`,
    /// in which case they leave on that port instead.
    pub cpu_port: Option<u32>,
}

impl Default for P4RuntimeSection {
    fn default() -> Self {
        Self { enabled: true, address: "127.0.0.1:9559".into(), device_id: 1, cpu_port: None }
    }
}

/// `[management]`: the management API (`sluice.mgmt.v1.Management`), on a Unix socket.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ManagementSection {
    /// Serve it at all.
    pub enabled: bool,
    /// The socket path (its directory is created; a stale socket is replaced).
    pub socket: std::path::PathBuf,
    /// The socket's permission bits, octal as a string (`"0660"`: owner and group).
    pub socket_mode: String,
    /// Also serve on this TCP address (`host:port`), e.g. for a remote `sluicectl
    /// --address`. A non-loopback address needs TLS (`tls_cert`, `tls_key`).
    pub tcp_address: Option<String>,
    /// PEM certificate (chain) the TCP listener presents.
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<std::path::PathBuf>,
    /// PEM CA certificate(s): when set, clients must present a certificate it
    /// signed (mutual TLS, the API's authentication over TCP).
    pub tls_client_ca: Option<std::path::PathBuf>,
}

impl Default for ManagementSection {
    fn default() -> Self {
        Self {
            enabled: true,
            socket: crate::mgmt::DEFAULT_SOCKET.into(),
            socket_mode: "0660".into(),
            tcp_address: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
        }
    }
}

impl ManagementSection {
    /// The socket mode as a number.
    pub fn mode(&self) -> Result<u32, ConfigError> {
        u32::from_str_radix(self.socket_mode.trim_start_matches("0o"), 8).ok().filter(|m| *m <= 0o777).ok_or_else(
            || {
                ConfigError(format!(
                    "[management] socket_mode {:?} is not octal permission bits like \"0660\"",
                    self.socket_mode
                ))
            },
        )
    }
}

/// `[metrics]`: Prometheus text exposition at `GET /metrics`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Serve metrics at all.
    pub enabled: bool,
    /// Listen address (`host:port`; port 0 picks a free one, printed at start).
    pub address: String,
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self { enabled: true, address: "127.0.0.1:9480".into() }
    }
}

/// `[cache]`: each worker's megaflow cache (see `fastpath::cache`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSection {
    /// Cache at all (`false`: every packet runs the pipeline).
    pub enabled: bool,
    /// Megaflows per worker at most; at the limit the least recently used of a few
    /// is evicted.
    pub max_flows: usize,
    /// A megaflow unused this long (milliseconds) is removed.
    pub max_idle_ms: u32,
    /// EMC entries per worker (rounded up to a power of two).
    pub emc_entries: usize,
    /// Insert into the EMC with probability 1/N after a dpcls hit; 0 turns it off.
    pub emc_insert_inv_prob: u32,
}

impl Default for CacheSection {
    fn default() -> Self {
        let d = sluice_fastpath::cache::CacheConfig::default();
        Self {
            enabled: true,
            max_flows: d.max_flows,
            max_idle_ms: d.max_idle_ms,
            emc_entries: d.emc.entries,
            emc_insert_inv_prob: d.emc.insert_inv_prob,
        }
    }
}

impl CacheSection {
    /// The fast path's form.
    pub fn to_fastpath(&self) -> sluice_fastpath::cache::CacheConfig {
        sluice_fastpath::cache::CacheConfig {
            max_flows: if self.enabled { self.max_flows } else { 0 },
            max_idle_ms: self.max_idle_ms,
            emc: sluice_fastpath::cache::emc::EmcConfig {
                entries: self.emc_entries,
                insert_inv_prob: self.emc_insert_inv_prob,
            },
        }
    }
}

/// `[eal]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EalConfig {
    /// Use hugepages (production). `false` runs with `--no-huge` (tests, demos).
    pub hugepages: bool,
    /// Memory to reserve, in MB (`-m`).
    pub memory_mb: u32,
    /// EAL `--file-prefix`; default `sluiced-<pid>`. Must be unique per process.
    pub file_prefix: Option<String>,
    /// More EAL arguments, verbatim (e.g. `--no-pci`, `--log-level=*:info`).
    pub extra_args: Vec<String>,
}

impl Default for EalConfig {
    fn default() -> Self {
        Self { hugepages: true, memory_mb: 1024, file_prefix: None, extra_args: Vec::new() }
    }
}

/// `[mempool]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// Mbufs in the pool; default: enough for every descriptor ring plus worker
    /// caches and bursts (see [`Config::default_mbufs`]). A `net_pcap` port with
    /// `infinite_rx=1` preloads its whole file into this pool: size it for that.
    pub mbufs: Option<u32>,
    /// Per-lcore cache size.
    pub cache_size: u32,
    /// Data room per mbuf in bytes (packet + 128 headroom).
    pub data_room: u16,
    /// Ports of the default size (1024 descriptors per queue) that `sluicectl port
    /// add` can bring up beyond the configured ones; the default pool has room for
    /// their rings. Ignored when `mbufs` is set.
    pub spare_ports: u32,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self { mbufs: None, cache_size: 256, data_room: dpdk_sys::mempool::DEFAULT_DATA_ROOM, spare_ports: 2 }
    }
}

/// `[workers]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WorkersConfig {
    /// Worker cores: a list (`[1, 2]`) or a string (`"1-3,6"`).
    pub cores: CoreList,
    /// The control core (EAL main lcore); default: the lowest online core that is
    /// not a worker core.
    pub control_core: Option<usize>,
}

/// A core list as written in the file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum CoreList {
    /// `[1, 2, 3]`
    List(Vec<usize>),
    /// `"1-3,6"`
    Text(String),
}

impl CoreList {
    /// The cores, in order, or an error naming the bad part.
    pub fn cores(&self) -> Result<Vec<usize>, ConfigError> {
        match self {
            CoreList::List(v) => Ok(v.clone()),
            CoreList::Text(s) => parse_core_list(s),
        }
    }
}

/// Parse `"1-3,6"` into `[1, 2, 3, 6]`.
pub fn parse_core_list(s: &str) -> Result<Vec<usize>, ConfigError> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let bad =
            || ConfigError(format!("workers.cores: {part:?} in {s:?} is not a core number or range like \"1-3\""));
        if let Some((a, b)) = part.split_once('-') {
            let a: usize = a.trim().parse().map_err(|_| bad())?;
            let b: usize = b.trim().parse().map_err(|_| bad())?;
            if a > b {
                return Err(bad());
            }
            out.extend(a..=b);
        } else {
            out.push(part.parse().map_err(|_| bad())?);
        }
    }
    Ok(out)
}

/// `[[port]]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Sluice's name for the port (unique).
    pub name: String,
    /// DPDK devargs: a vdev (`net_pcap0,rx_pcap=in.pcap`, `net_tap0,iface=sl0`,
    /// `net_null0`, `net_ring0`, `net_vhost0,iface=/tmp/vh.sock`, `net_af_xdp0,iface=eth0`,
    /// `net_memif0`) or a PCI address of a NIC bound to vfio-pci.
    pub devargs: String,
    /// Receive queues.
    #[serde(default = "one")]
    pub rx_queues: u16,
    /// Transmit queues; default and minimum: one per worker.
    pub tx_queues: Option<u16>,
    /// Descriptors per rx queue.
    #[serde(default = "descriptors")]
    pub rx_descriptors: u16,
    /// Descriptors per tx queue.
    #[serde(default = "descriptors")]
    pub tx_descriptors: u16,
    /// MTU; default: the device's.
    pub mtu: Option<u16>,
    /// The P4 port number of this port (`standard_metadata.ingress_port` /
    /// `egress_spec`); default: its index in the port list.
    pub p4_port: Option<u32>,
    /// Ingress policing: traffic received above the rate is dropped (`policed`).
    pub ingress_policer: Option<PolicerSpec>,
    /// Egress rate limit: traffic sent above the rate is dropped (`policed`).
    pub egress_policer: Option<PolicerSpec>,
    /// Default program: `access` (untagged frames in `vlan`) or `trunk` (tagged frames
    /// of `trunk_vlans`, untagged ones in `vlan` if set). Default: access.
    pub vlan_mode: Option<crate::app::config::VlanMode>,
    /// Default program: the access VLAN, or the trunk's native VLAN. An access port
    /// without one is in VLAN 1.
    pub vlan: Option<u16>,
    /// Default program: the VLANs a trunk carries tagged.
    #[serde(default)]
    pub trunk_vlans: Vec<u16>,
}

/// A port policer as written in the file: `{ cir = 1250000, cbs = 15000 }` (bytes
/// per second, bytes) polices with srTCM, passing GREEN (OVS's ingress policing
/// and `egress-policer`); with `eir`/`ebs` it is an RFC 4115 trTCM passing GREEN
/// and YELLOW (OVS's `trtcm-policer`). `unit = "packets"` counts packets.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicerSpec {
    /// Committed rate, units per second.
    pub cir: u64,
    /// Committed burst, units.
    pub cbs: u64,
    /// Excess rate on top of `cir` (0: none).
    #[serde(default)]
    pub eir: u64,
    /// Excess burst (with `eir`).
    #[serde(default)]
    pub ebs: u64,
    /// `bytes` (default) or `packets`.
    #[serde(default)]
    pub unit: RateUnit,
}

/// What a policer counts.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RateUnit {
    /// Bytes (frames without CRC).
    #[default]
    Bytes,
    /// Packets.
    Packets,
}

impl PolicerSpec {
    /// The fast path's form.
    pub fn to_fastpath(&self) -> sluice_fastpath::qos::policer::PolicerConfig {
        sluice_fastpath::qos::policer::PolicerConfig {
            cir: self.cir,
            cbs: self.cbs,
            eir: self.eir,
            ebs: self.ebs,
            packets: self.unit == RateUnit::Packets,
        }
    }
}

/// `[qos]`: how port policers and P4 meters are shared by the workers.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct QosSection {
    /// How often each worker's share of every configured meter and policer is
    /// moved to where its traffic is (milliseconds; 0: never, shares stay even).
    /// Only matters with more than one worker.
    pub rebalance_interval_ms: u64,
}

impl Default for QosSection {
    fn default() -> Self {
        Self { rebalance_interval_ms: 10 }
    }
}

/// `[offload]`: hot megaflows pushed into NICs with rte_flow (see docs/offload.md).
/// Ports whose device has no rte_flow are found at the first attempt and left alone.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct OffloadSection {
    /// Offload at all.
    pub enabled: bool,
    /// Try full offload (the NIC executes the actions) before partial (MARK).
    pub full: bool,
    /// Packets per second a megaflow needs to be offloaded.
    pub min_pps: u64,
    /// Rules per port at most.
    pub max_rules_per_port: usize,
    /// Rules created per round at most.
    pub max_inserts_per_round: usize,
    /// Milliseconds between rounds (hit rates, counters, expiry).
    pub interval_ms: u64,
}

impl Default for OffloadSection {
    fn default() -> Self {
        let d = sluice_offload::manager::OffloadConfig::default();
        Self {
            enabled: d.enabled,
            full: d.full,
            min_pps: d.min_pps,
            max_rules_per_port: d.max_rules_per_port,
            max_inserts_per_round: d.max_inserts_per_round,
            interval_ms: 500,
        }
    }
}

impl OffloadSection {
    /// The manager's settings.
    pub fn to_manager(&self) -> sluice_offload::manager::OffloadConfig {
        sluice_offload::manager::OffloadConfig {
            enabled: self.enabled,
            full: self.full,
            min_pps: self.min_pps,
            max_rules_per_port: self.max_rules_per_port,
            max_inserts_per_round: self.max_inserts_per_round,
        }
    }
}

fn one() -> u16 {
    1
}

fn descriptors() -> u16 {
    1024
}

/// `[[xconnect]]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct XConnectConfig {
    /// Input port name.
    pub from: String,
    /// Output port name.
    pub to: String,
}

/// The checked core plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorePlan {
    /// Worker cores, one worker each.
    pub workers: Vec<usize>,
    /// The control core.
    pub control: usize,
}

impl Config {
    /// Parse a configuration from TOML text. `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(format!("{origin}: {e}")))
    }

    /// Read and parse a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        let mut c = Self::parse(&text, &path.display().to_string())?;
        c.base_dir = path.parent().map(Path::to_path_buf);
        Ok(c)
    }

    /// Resolve a path from the file against its directory.
    pub fn resolve(&self, p: &Path) -> std::path::PathBuf {
        match &self.base_dir {
            Some(d) if p.is_relative() => d.join(p),
            _ => p.to_path_buf(),
        }
    }

    /// Whether the workers run Sluice's default program: no `[pipeline]`, no
    /// `[[xconnect]]`, and `[switch] program` is not turned off.
    pub fn runs_default_program(&self) -> bool {
        self.pipeline.is_none() && self.xconnects.is_empty() && self.switch.program
    }

    /// The P4 port of the controller: `[p4runtime] cpu_port`, or 255 (the default
    /// program's) when the default program runs.
    pub fn cpu_port(&self) -> Option<u32> {
        self.p4runtime.cpu_port.or_else(|| self.runs_default_program().then_some(crate::app::program::CPU_PORT))
    }

    /// The first section (or port key) that only the default program uses, if any.
    fn switch_sections(&self) -> Option<String> {
        let sections = [
            ("[switch]", {
                let s = crate::app::config::SwitchSection { program: true, ..self.switch.clone() };
                s != crate::app::config::SwitchSection::default()
            }),
            ("[[vlan]]", !self.vlans.is_empty()),
            ("[[router_interface]]", !self.router_interfaces.is_empty()),
            ("[[neighbor]]", !self.neighbors.is_empty()),
            ("[[route]]", !self.routes.is_empty()),
            ("[[mac]]", !self.macs.is_empty()),
            ("[[vtep]]", !self.vteps.is_empty()),
            ("[[acl]]", !self.acls.is_empty()),
            ("[[mirror]]", !self.mirrors.is_empty()),
        ];
        if let Some((s, _)) = sections.iter().find(|(_, used)| *used) {
            return Some(s.to_string());
        }
        self.ports
            .iter()
            .find(|p| p.vlan_mode.is_some() || p.vlan.is_some() || !p.trunk_vlans.is_empty())
            .map(|p| format!("port {:?} (vlan_mode, vlan, trunk_vlans)", p.name))
    }

    /// The P4 port number of port index `i`.
    pub fn p4_port(&self, i: usize) -> u32 {
        self.ports[i].p4_port.unwrap_or(i as u32)
    }

    /// Index of the port named `name`.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }

    /// Check the configuration against itself and the machine's `online` cores.
    pub fn validate(&self, online: &[usize]) -> Result<CorePlan, ConfigError> {
        let plan = self.core_plan(online)?;
        let c = &self.cache;
        if c.max_idle_ms == 0 {
            return err("[cache] max_idle_ms must be > 0 (to disable caching, set enabled = false)");
        }
        if c.emc_entries > 1 << 22 || c.max_flows > 1 << 26 {
            return err("[cache] emc_entries must be ≤ 4194304 and max_flows ≤ 67108864");
        }
        self.management.mode()?;
        let m = &self.management;
        if m.tls_cert.is_some() != m.tls_key.is_some() {
            return err("[management] tls_cert and tls_key go together: give both or neither");
        }
        if (m.tls_cert.is_some() || m.tls_client_ca.is_some()) && m.tcp_address.is_none() {
            return err("[management] TLS applies to tcp_address: set it (the Unix socket needs no TLS)");
        }
        if m.tls_client_ca.is_some() && m.tls_cert.is_none() {
            return err("[management] tls_client_ca needs tls_cert and tls_key (mutual TLS is TLS first)");
        }
        if let Some(a) = &m.tcp_address {
            let addr: std::net::SocketAddr =
                a.parse().map_err(|_| ConfigError(format!("[management] tcp_address {a:?} is not host:port")))?;
            if !addr.ip().is_loopback() && m.tls_cert.is_none() {
                return err(format!(
                    "[management] tcp_address {a}: a non-loopback address needs TLS (tls_cert and tls_key; \
                     tls_client_ca to require client certificates)"
                ));
            }
        }
        if self.metrics.enabled && self.metrics.address.parse::<std::net::SocketAddr>().is_err() {
            return err(format!("[metrics] address {:?} is not host:port", self.metrics.address));
        }
        if self.ports.is_empty() {
            return err("no [[port]] configured: add at least one port with a name and devargs");
        }
        let mut names = HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            if p.name.is_empty() || p.name.contains(char::is_whitespace) {
                return err(format!("port #{}: name {:?} must be non-empty without spaces", i + 1, p.name));
            }
            if !names.insert(p.name.as_str()) {
                return err(format!("port {:?} is defined twice", p.name));
            }
            if p.devargs.trim().is_empty() {
                return err(format!("port {:?}: devargs is empty (e.g. \"net_null0\" or a PCI address)", p.name));
            }
            if p.rx_queues == 0 {
                return err(format!("port {:?}: rx_queues must be at least 1", p.name));
            }
            for (dir, spec) in [("ingress_policer", &p.ingress_policer), ("egress_policer", &p.egress_policer)] {
                if let Some(e) = spec.and_then(|s| s.to_fastpath().check().err()) {
                    return err(format!("port {:?}: {dir}: {e}", p.name));
                }
            }
            let workers = plan.workers.len() as u16;
            if let Some(tx) = p.tx_queues {
                if tx < workers {
                    return err(format!(
                        "port {:?}: tx_queues = {tx}, but each of the {workers} workers needs its own tx queue",
                        p.name
                    ));
                }
            }
        }
        let mut devs = HashSet::new();
        for p in &self.ports {
            let dev = p.devargs.split(',').next().unwrap_or("").trim();
            if !devs.insert(dev) {
                return err(format!("port {:?}: device {dev:?} is used by another port", p.name));
            }
        }
        if self.pipeline.is_some() && !self.xconnects.is_empty() {
            return err("both [pipeline] and [[xconnect]] are configured: the workers run one or the other");
        }
        if self.runs_default_program() {
            crate::app::config::SwitchPlan::build(self)?;
        } else if let Some(what) = self.switch_sections() {
            return err(format!(
                "{what} configures Sluice's default program, which runs only without [pipeline] and [[xconnect]]"
            ));
        }
        let mut p4 = HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            let n = self.p4_port(i);
            if n >= 511 {
                return err(format!(
                    "port {:?}: p4_port = {n}, but P4 ports are 0..=510 (511 is the drop port)",
                    p.name
                ));
            }
            if !p4.insert(n) {
                return err(format!("port {:?}: p4_port {n} is used by another port", p.name));
            }
        }
        if let Some(cpu) = self.cpu_port() {
            if cpu >= 511 {
                return err(format!("p4runtime.cpu_port = {cpu}: P4 ports are 0..=510"));
            }
        }
        if self.p4runtime.enabled && self.p4runtime.address.parse::<std::net::SocketAddr>().is_err() {
            return err(format!(
                "p4runtime.address = {:?}: not an IP address and port (e.g. \"127.0.0.1:9559\", \"[::1]:9559\")",
                self.p4runtime.address
            ));
        }
        let mut froms = HashSet::new();
        for x in &self.xconnects {
            for end in [&x.from, &x.to] {
                if self.port_index(end).is_none() {
                    return err(format!(
                        "xconnect {:?} -> {:?}: unknown port {end:?} (ports: {})",
                        x.from,
                        x.to,
                        self.ports.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            if !froms.insert(x.from.as_str()) {
                return err(format!("xconnect: port {:?} has two destinations", x.from));
            }
        }
        Ok(plan)
    }

    fn core_plan(&self, online: &[usize]) -> Result<CorePlan, ConfigError> {
        let workers = self.workers.cores.cores()?;
        let online_s = format_cores(online);
        if workers.is_empty() {
            return err("workers.cores is empty: name at least one worker core");
        }
        let mut seen = HashSet::new();
        for &c in &workers {
            if !online.contains(&c) {
                return err(format!(
                    "workers.cores: core {c} is not available to this process (available: {online_s})"
                ));
            }
            if !seen.insert(c) {
                return err(format!("workers.cores: core {c} is listed twice"));
            }
        }
        let control = match self.workers.control_core {
            Some(c) if !online.contains(&c) => {
                return err(format!("workers.control_core: core {c} is not available (available: {online_s})"))
            }
            Some(c) if workers.contains(&c) => {
                return err(format!(
                    "workers.control_core: core {c} is also a worker core; a polling worker would starve control"
                ))
            }
            Some(c) => c,
            None => *online.iter().find(|c| !workers.contains(c)).ok_or_else(|| {
                ConfigError(format!(
                    "every available core ({online_s}) is a worker core: leave one for control (workers.control_core)"
                ))
            })?,
        };
        Ok(CorePlan { workers, control })
    }

    /// The default mempool size: every rx and tx descriptor, plus each worker's
    /// mempool cache and a few bursts in flight, plus slack.
    pub fn default_mbufs(&self, workers: usize) -> u32 {
        let rings: u32 = self
            .ports
            .iter()
            .map(|p| {
                let tx = u32::from(p.tx_queues.unwrap_or(workers as u16));
                u32::from(p.rx_queues) * u32::from(p.rx_descriptors) + tx * u32::from(p.tx_descriptors)
            })
            .sum();
        let spare = self.mempool.spare_ports * (1 + workers as u32) * 1024;
        let ports = self.ports.len() as u32 + self.mempool.spare_ports;
        let per_worker = self.mempool.cache_size + 4 * 32 * (ports + 1);
        rings + spare + (workers as u32 + 1) * per_worker + 4096
    }
}

/// `[0, 1, 2, 5]` as `"0-2,5"`.
pub fn format_cores(cores: &[usize]) -> String {
    let mut v = cores.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if i == j { v[i].to_string() } else { format!("{}-{}", v[i], v[j]) });
        i = j + 1;
    }
    if out.is_empty() {
        "none".into()
    } else {
        out.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        [workers]
        cores = [1]
        [[port]]
        name = "in"
        devargs = "net_null0"
        [[port]]
        name = "out"
        devargs = "net_null1,no-rx=1"
        [[xconnect]]
        from = "in"
        to = "out"
    "#;

    fn check(text: &str) -> Result<CorePlan, ConfigError> {
        Config::parse(text, "test.toml")?.validate(&[0, 1])
    }

    #[test]
    fn minimal_config_gets_defaults_and_a_control_core() {
        let c = Config::parse(BASE, "t").unwrap();
        assert!(c.eal.hugepages);
        assert_eq!(c.ports[1].rx_queues, 1);
        assert_eq!(c.ports[1].rx_descriptors, 1024);
        assert_eq!(c.validate(&[0, 1]).unwrap(), CorePlan { workers: vec![1], control: 0 });
        // 2 ports x (1024 rx + 1024 tx) + 2 spare ports x 2048 + 2 x (256 + 4*32*5) + 4096
        assert_eq!(c.default_mbufs(1), 4096 + 4096 + 2 * (256 + 640) + 4096);
    }

    #[test]
    fn management_tcp_and_tls_settings_are_checked_together() {
        let with = |m: &str| check(&format!("{BASE}\n[management]\n{m}\n"));
        assert!(with("tcp_address = \"127.0.0.1:9560\"").is_ok(), "loopback without TLS");
        let e = with("tcp_address = \"0.0.0.0:9560\"").unwrap_err().0;
        assert!(e.contains("needs TLS"), "{e}");
        assert!(with("tcp_address = \"0.0.0.0:9560\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"").is_ok());
        let e = with("tcp_address = \"0.0.0.0:9560\"\ntls_cert = \"c.pem\"").unwrap_err().0;
        assert!(e.contains("go together"), "{e}");
        let e = with("tls_cert = \"c.pem\"\ntls_key = \"k.pem\"").unwrap_err().0;
        assert!(e.contains("applies to tcp_address"), "{e}");
        let e = with("tcp_address = \"127.0.0.1:1\"\ntls_client_ca = \"ca.pem\"").unwrap_err().0;
        assert!(e.contains("needs tls_cert"), "{e}");
        let e = with("socket_mode = \"rw\"").unwrap_err().0;
        assert!(e.contains("octal"), "{e}");
        let e = with("tcp_address = \"nowhere\"").unwrap_err().0;
        assert!(e.contains("not host:port"), "{e}");
    }

    #[test]
    fn core_lists_parse_as_text_or_list() {
        assert_eq!(parse_core_list("1-3,6").unwrap(), vec![1, 2, 3, 6]);
        assert!(parse_core_list("3-1").is_err());
        assert!(parse_core_list("a").unwrap_err().0.contains("\"a\""));
        assert_eq!(format_cores(&[5, 0, 1, 2]), "0-2,5");
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let cases: &[(&str, &str)] = &[
            (&BASE.replace("cores = [1]", "cores = [7]"), "core 7 is not available to this process (available: 0-1)"),
            (&BASE.replace("cores = [1]", "cores = [0, 1]"), "leave one for control"),
            (&BASE.replace("cores = [1]", "cores = [1, 1]"), "core 1 is listed twice"),
            (&BASE.replace("cores = [1]", "cores = \"1-x\""), "is not a core number or range"),
            (&BASE.replace("cores = [1]", "cores = [1]\ncontrol_core = 1"), "also a worker core"),
            (&BASE.replace("to = \"out\"", "to = \"nowhere\""), "unknown port \"nowhere\" (ports: in, out)"),
            (&BASE.replace("name = \"out\"", "name = \"in\""), "port \"in\" is defined twice"),
            (&BASE.replace("net_null1,no-rx=1", "net_null0,no-rx=1"), "device \"net_null0\" is used by another port"),
            (&BASE.replace("[[xconnect]]", "[[xconnect]]\nbogus = 1"), "unknown field `bogus`"),
            (&format!("{BASE}\n[[xconnect]]\nfrom = \"in\"\nto = \"in\""), "has two destinations"),
            (
                &BASE.replace("devargs = \"net_null0\"", "devargs = \"net_null0\"\ntx_queues = 0"),
                "needs its own tx queue",
            ),
        ];
        for (text, want) in cases {
            let e = check(text).unwrap_err();
            assert!(e.0.contains(want), "want {want:?} in {e}");
        }
    }

    #[test]
    fn toml_syntax_errors_carry_the_file_name_and_position() {
        let e = Config::parse("[workers\ncores = 1", "my.toml").unwrap_err();
        assert!(e.0.starts_with("my.toml: "), "{e}");
        assert!(e.0.contains("line 1"), "{e}");
    }
}

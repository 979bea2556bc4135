//! `sluicectl`: the operator's command-line tool, over the management API
//! (`crate::mgmt`) on `sluiced`'s Unix socket.
//!
//! Human tables by default, `--json` everywhere (the API's messages with proto
//! field names). Exit status, for scripts:
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done |
//! | 1 | the switch refused (bad argument, no such port, ...): the message says why |
//! | 2 | bad command line |
//! | 3 | `sluiced` cannot be reached (not running, wrong `--socket`, permissions) |
//!
//! `sluicectl pipeline check` works offline, without a daemon.

mod render;
mod switch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Parser, Subcommand};
use sluice_proto::sluice::mgmt::v1 as pb;
use sluice_proto::sluice::mgmt::v1::management_client::ManagementClient;
use tonic::transport::Channel;

use crate::BuildInfo;

/// Command-line arguments of `sluicectl`.
#[derive(Debug, Parser)]
#[command(name = "sluicectl", about = "Sluice command-line tool", disable_version_flag = true)]
pub struct Args {
    /// Print the version and exit.
    #[arg(long)]
    pub version: bool,
    /// The management socket of sluiced.
    #[arg(long, global = true, env = "SLUICE_SOCKET", default_value = crate::mgmt::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Reach sluiced over TCP at HOST:PORT instead ([management] tcp_address).
    #[arg(long, global = true, env = "SLUICE_ADDRESS")]
    pub address: Option<String>,
    /// With --address: the CA certificate (PEM) that signed sluiced's; turns TLS on.
    #[arg(long, global = true, env = "SLUICE_TLS_CA", value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
    /// With --address: a client certificate (PEM), when sluiced requires one.
    #[arg(long, global = true, env = "SLUICE_TLS_CERT", value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, global = true, env = "SLUICE_TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The name sluiced's certificate must carry (default: the host of --address).
    #[arg(long, global = true, value_name = "NAME")]
    pub tls_domain: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Versions, uptime, cores, addresses.
    Info,
    /// Ports: list, counters, add and remove while forwarding.
    #[command(subcommand)]
    Port(PortCommand),
    /// Workers (PMD threads): counters by path, rx queue placement.
    #[command(subcommand)]
    Pmd(PmdCommand),
    /// Megaflows in the workers' caches.
    #[command(subcommand)]
    Flow(FlowCommand),
    /// Zero the counters this tool shows (Prometheus counters keep counting).
    #[command(name = "clear-stats")]
    ClearStats,
    /// The P4 program.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Table entries of the running program, in simple_switch_CLI syntax.
    #[command(subcommand)]
    Table(TableCommand),
    /// P4 meters of the running program: configured cells, rates, colors.
    #[command(subcommand)]
    Meter(MeterCommand),
    /// rte_flow offload.
    #[command(subcommand)]
    Offload(OffloadCommand),
    /// The default program's built-in app: mode and counters.
    #[command(subcommand)]
    Switch(switch::SwitchCommand),
    /// Default program: ports' VLANs, VLAN names.
    #[command(subcommand)]
    Vlan(switch::VlanCommand),
    /// Default program: router interfaces (router MAC per VLAN).
    #[command(subcommand)]
    Router(switch::RouterCommand),
    /// Default program: next hops.
    #[command(subcommand)]
    Neighbor(switch::NeighborCommand),
    /// Default program: static routes (ECMP with several next hops).
    #[command(subcommand)]
    Route(switch::RouteCommand),
    /// Default program: static and learned MACs.
    #[command(subcommand)]
    Mac(switch::MacCommand),
    /// Default program: VXLAN tunnel endpoints.
    #[command(subcommand)]
    Vtep(switch::VtepCommand),
    /// Default program: the ACL (permit, deny, punt, mirror).
    #[command(subcommand)]
    Acl(switch::AclCommand),
    /// Default program: mirror destinations.
    #[command(subcommand)]
    Mirror(switch::MirrorCommand),
    /// Set DPDK's log level (emerg, alert, crit, err, warning, notice, info, debug).
    #[command(name = "log-level")]
    LogLevel {
        /// The level.
        level: String,
    },
}

/// `sluicectl port ...`
#[derive(Debug, Subcommand)]
pub enum PortCommand {
    /// Ports with driver, link, MTU, queues and P4 port number.
    List,
    /// Ports' counters (device and workers), net of the last clear-stats.
    Stats,
    /// Attach and start a port while forwarding; its rx queues go to the least
    /// loaded workers.
    Add(PortAdd),
    /// Stop and detach a port while forwarding.
    #[command(alias = "remove")]
    Del {
        /// The port's name.
        name: String,
    },
    /// Ports' policers and what they dropped.
    Qos,
    /// Set (or with --clear remove) a port's ingress policer or egress rate limit,
    /// live. Without --eir: srTCM, non-green dropped (OVS ingress policing,
    /// egress-policer); with --eir/--ebs: RFC 4115 trTCM, red dropped (OVS
    /// trtcm-policer).
    Policer(PortPolicer),
}

/// `sluicectl port policer` arguments.
#[derive(Debug, ClapArgs)]
pub struct PortPolicer {
    /// The port's name.
    pub port: String,
    /// `ingress` (traffic received) or `egress` (traffic sent).
    #[arg(value_parser = ["ingress", "egress"])]
    pub direction: String,
    /// Committed rate: bytes (or packets) per second.
    #[arg(long, required_unless_present = "clear")]
    pub cir: Option<u64>,
    /// Committed burst: bytes (or packets).
    #[arg(long, required_unless_present = "clear")]
    pub cbs: Option<u64>,
    /// Excess rate on top of the committed one.
    #[arg(long, default_value_t = 0)]
    pub eir: u64,
    /// Excess burst.
    #[arg(long, default_value_t = 0)]
    pub ebs: u64,
    /// Rates and bursts count packets, not bytes.
    #[arg(long)]
    pub packets: bool,
    /// Remove the policer.
    #[arg(long, conflicts_with_all = ["cir", "cbs", "eir", "ebs", "packets"])]
    pub clear: bool,
}

/// `sluicectl meter ...`
#[derive(Debug, Subcommand)]
pub enum MeterCommand {
    /// Meters with their configured cells: rates and the packets each color got.
    #[command(alias = "show")]
    List {
        /// Only this meter.
        meter: Option<String>,
    },
    /// Configure a cell of an indexed meter (rates per second and bursts, in the
    /// meter's unit: bytes or packets), as a P4Runtime MeterEntry write.
    Set {
        /// The meter's name.
        meter: String,
        /// The cell (`all`: every cell).
        index: String,
        /// Committed rate.
        #[arg(long)]
        cir: u64,
        /// Committed burst.
        #[arg(long)]
        cburst: u64,
        /// Peak rate (≥ cir).
        #[arg(long)]
        pir: u64,
        /// Peak burst.
        #[arg(long)]
        pburst: u64,
    },
    /// Return a cell (or `all`) to unconfigured: it marks every packet GREEN.
    Clear {
        /// The meter's name.
        meter: String,
        /// The cell (`all`: every cell).
        index: String,
    },
}

fn cell_index(i: &str) -> Result<Option<u64>, Failure> {
    if i == "all" {
        return Ok(None);
    }
    i.parse().map(Some).map_err(|_| Failure::Refused(format!("cell {i:?}: give a number, or `all`")))
}

/// `sluicectl port add` arguments.
#[derive(Debug, ClapArgs)]
pub struct PortAdd {
    /// A new name.
    pub name: String,
    /// DPDK devargs, e.g. `net_tap0,iface=sl0`, `net_null0`, a PCI address.
    pub devargs: String,
    /// Rx queues.
    #[arg(long, default_value_t = 1)]
    pub rx_queues: u32,
    /// Descriptors per rx queue.
    #[arg(long, default_value_t = 1024)]
    pub rx_descriptors: u32,
    /// Descriptors per tx queue.
    #[arg(long, default_value_t = 1024)]
    pub tx_descriptors: u32,
    /// MTU (default: the device's).
    #[arg(long)]
    pub mtu: Option<u32>,
    /// Its P4 port number (default: its index).
    #[arg(long)]
    pub p4_port: Option<u32>,
    /// Cross-connect mode: packets from the new port leave on PORT.
    #[arg(long, value_name = "PORT")]
    pub xconnect_to: Option<String>,
    /// Cross-connect mode: packets from PORT leave on the new port.
    #[arg(long, value_name = "PORT")]
    pub xconnect_from: Option<String>,
}

/// `sluicectl pmd ...`
#[derive(Debug, Subcommand)]
pub enum PmdCommand {
    /// Per worker: packets by path, cycles per packet, cache, drops (like
    /// ovs-appctl dpif-netdev/pmd-stats-show).
    Stats,
    /// Per worker: the rx queues it polls (like pmd-rxq-show).
    Rxq,
    /// Move an rx queue to a worker, live.
    #[command(name = "rxq-pin")]
    RxqPin {
        /// Port name.
        port: String,
        /// Queue number.
        queue: u32,
        /// Worker id.
        worker: u32,
    },
    /// Deal every rx queue round-robin over the workers again.
    #[command(name = "rxq-rebalance")]
    RxqRebalance,
}

/// `sluicectl flow ...`
#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Live megaflows: match, actions, packets, bytes, age.
    Dump {
        /// At most this many (0: all).
        #[arg(long, default_value_t = 0)]
        limit: u32,
        /// Only this worker's.
        #[arg(long)]
        worker: Option<u32>,
        /// Only megaflows with NIC rules (rte_flow offload).
        #[arg(long)]
        offloaded: bool,
    },
}

/// `sluicectl pipeline ...`
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// The running program: name, cookie, tables with entry counts.
    Show,
    /// Load and compile a program offline; print a summary or the precise error.
    Check {
        /// BMv2 JSON (p4c-bm2-ss output).
        #[arg(id = "program_json", value_name = "JSON")]
        json: PathBuf,
        /// P4Info (text format), cross-checked against the JSON.
        p4info: Option<PathBuf>,
        /// Table entries (simple_switch_CLI syntax) to apply as a check.
        #[arg(long)]
        entries: Option<PathBuf>,
        /// Print a JSON object instead of text (same as --json).
        #[arg(long)]
        json_output: bool,
    },
}

/// `sluicectl table ...`: the words after the subcommand are those of the
/// simple_switch_CLI command (`table add ipv4_lpm set_nhop 10.0.0.0/8 => 10.0.0.1 1`).
#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// table_add: `<table> <action> <key...> => <args...> [priority]`.
    Add {
        /// The command's words.
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// table_delete: `<table> <handle>`.
    #[command(alias = "delete")]
    Del {
        /// The command's words.
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// table_modify: `<table> <action> <handle> [args...]`.
    Modify {
        /// The command's words.
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// table_set_default: `<table> <action> [args...]`.
    #[command(name = "set-default")]
    SetDefault {
        /// The command's words.
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// Apply a file of simple_switch_CLI commands, all or nothing.
    Apply {
        /// The file (`-`: standard input).
        file: PathBuf,
    },
    /// A table's entries, as the commands that would add them.
    Dump {
        /// The table (full name or unique suffix).
        table: String,
    },
}

/// `sluicectl offload ...`
#[derive(Debug, Subcommand)]
pub enum OffloadCommand {
    /// Per port: rte_flow capability and rules; offloaded megaflows and their rules;
    /// refusals and failures by reason.
    Show,
}

/// Why a command failed, with its exit code.
enum Failure {
    Refused(String),
    Unreachable(String),
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        // A status sluiced sent carries its response headers (content-type at
        // least); one made on this side, because the connection failed under the
        // call (a refused client certificate, plaintext to a TLS port, a reset),
        // carries none.
        let transport = s.metadata().is_empty() || s.code() == tonic::Code::Cancelled;
        if transport {
            return Failure::Unreachable(format!(
                "the connection to sluiced failed: {} (over TCP with TLS: does sluiced require a client \
                 certificate? pass --tls-cert and --tls-key)",
                s.message()
            ));
        }
        Failure::Refused(format!("{} ({:?})", s.message(), s.code()))
    }
}

/// Run `sluicectl`.
pub fn main(build: BuildInfo) -> ExitCode {
    let args = Args::parse();
    if args.version {
        println!("sluicectl {} (git {})", build.version, build.git_rev);
        return ExitCode::SUCCESS;
    }
    let Some(command) = args.command else {
        eprintln!("sluicectl: no command given; try `sluicectl --help`");
        return ExitCode::from(2);
    };
    if let Command::Pipeline(PipelineCommand::Check { json, p4info, entries, json_output }) = &command {
        return check(json, p4info.as_deref(), entries.as_deref(), *json_output || args.json);
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluicectl: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let r = rt.block_on(async {
        let tls = (args.tls_ca.is_some() || args.tls_cert.is_some()).then(|| crate::mgmt::server::ClientTls {
            ca: args.tls_ca.clone(),
            identity: args.tls_cert.clone().zip(args.tls_key.clone()),
            domain: args.tls_domain.clone(),
        });
        let client = crate::mgmt::server::connect(&args.socket, args.address.as_deref(), tls.as_ref())
            .await
            .map_err(Failure::Unreachable)?;
        run(client, command, args.json).await
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused(m)) => {
            eprintln!("sluicectl: {m}");
            ExitCode::from(1)
        }
        Err(Failure::Unreachable(m)) => {
            eprintln!("sluicectl: {m}");
            ExitCode::from(3)
        }
    }
}

/// Print `msg` as JSON or as `text` renders it. A closed stdout (`| head`) is not
/// an error.
fn emit<M: prost::Message>(json: bool, msg: &M, name: &str, text: impl FnOnce(&M) -> String) {
    use std::io::Write as _;
    let out = if json {
        let v = sluice_proto::mgmt_json(msg, &format!("sluice.mgmt.v1.{name}"));
        serde_json::to_string_pretty(&v).expect("JSON value prints") + "\n"
    } else {
        text(msg)
    };
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
}

fn words(cmd: &str, w: &[String]) -> String {
    format!("{cmd} {}", w.join(" "))
}

async fn run(mut c: ManagementClient<Channel>, command: Command, json: bool) -> Result<(), Failure> {
    match command {
        Command::Info => {
            let r = c.get_info(pb::GetInfoRequest {}).await?.into_inner();
            emit(json, &r, "Info", render::info);
        }
        Command::Port(PortCommand::List) => {
            let r = c.list_ports(pb::ListPortsRequest {}).await?.into_inner();
            emit(json, &r, "ListPortsResponse", render::ports);
        }
        Command::Port(PortCommand::Stats) => {
            let r = c.list_ports(pb::ListPortsRequest {}).await?.into_inner();
            emit(json, &r, "ListPortsResponse", render::port_stats);
        }
        Command::Port(PortCommand::Add(a)) => {
            let req = pb::AddPortRequest {
                name: a.name,
                devargs: a.devargs,
                rx_queues: a.rx_queues,
                rx_descriptors: a.rx_descriptors,
                tx_descriptors: a.tx_descriptors,
                mtu: a.mtu.unwrap_or(0),
                p4_port: a.p4_port,
                xconnect_to: a.xconnect_to.unwrap_or_default(),
                xconnect_from: a.xconnect_from.unwrap_or_default(),
            };
            let r = c.add_port(req).await?.into_inner();
            emit(json, &r, "Port", |p| {
                format!("added port {} (index {}, P4 port {}, driver {})\n", p.name, p.index, p.p4_port, p.driver)
            });
        }
        Command::Port(PortCommand::Del { name }) => {
            let r = c.remove_port(pb::RemovePortRequest { name }).await?.into_inner();
            emit(json, &r, "Port", |p| {
                let n = p.counters.unwrap_or_default();
                format!(
                    "removed port {} (it had received {} and sent {} packets)\n",
                    p.name, n.rx_packets, n.tx_packets
                )
            });
        }
        Command::Port(PortCommand::Qos) => {
            let r = c.list_ports(pb::ListPortsRequest {}).await?.into_inner();
            emit(json, &r, "ListPortsResponse", render::port_qos);
        }
        Command::Port(PortCommand::Policer(a)) => {
            let policer = (!a.clear).then(|| pb::Policer {
                cir: a.cir.unwrap_or(0),
                cbs: a.cbs.unwrap_or(0),
                eir: a.eir,
                ebs: a.ebs,
                unit: if a.packets { "packets" } else { "bytes" }.into(),
            });
            let req = pb::SetPortPolicerRequest { port: a.port, direction: a.direction.clone(), policer };
            let r = c.set_port_policer(req).await?.into_inner();
            emit(json, &r, "Port", |p| {
                let now = if a.direction == "ingress" { &p.ingress_policer } else { &p.egress_policer };
                format!("port {} {}: {}\n", p.name, a.direction, render::policer(now.as_ref()))
            });
        }
        Command::Meter(MeterCommand::List { meter }) => {
            let r = c.list_meters(pb::ListMetersRequest { meter: meter.unwrap_or_default() }).await?.into_inner();
            emit(json, &r, "ListMetersResponse", render::meters);
        }
        Command::Meter(MeterCommand::Set { meter, index, cir, cburst, pir, pburst }) => {
            let config = Some(pb::MeterConfig { cir, cburst, pir, pburst });
            let req = pb::SetMeterRequest { meter, index: cell_index(&index)?, config };
            let r = c.set_meter(req).await?.into_inner();
            emit(json, &r, "ListMetersResponse", render::meters);
        }
        Command::Meter(MeterCommand::Clear { meter, index }) => {
            let req = pb::SetMeterRequest { meter, index: cell_index(&index)?, config: None };
            let r = c.set_meter(req).await?.into_inner();
            emit(json, &r, "ListMetersResponse", render::meters);
        }
        Command::Pmd(PmdCommand::Stats) => {
            let r = c.list_workers(pb::ListWorkersRequest {}).await?.into_inner();
            emit(json, &r, "ListWorkersResponse", render::pmd_stats);
        }
        Command::Pmd(PmdCommand::Rxq) => {
            let r = c.list_workers(pb::ListWorkersRequest {}).await?.into_inner();
            emit(json, &r, "ListWorkersResponse", render::pmd_rxq);
        }
        Command::Pmd(PmdCommand::RxqPin { port, queue, worker }) => {
            let r = c.pin_rxq(pb::PinRxqRequest { port, queue, worker }).await?.into_inner();
            emit(json, &r, "ListWorkersResponse", render::pmd_rxq);
        }
        Command::Pmd(PmdCommand::RxqRebalance) => {
            let r = c.rebalance_rxqs(pb::RebalanceRxqsRequest {}).await?.into_inner();
            emit(json, &r, "ListWorkersResponse", render::pmd_rxq);
        }
        Command::Flow(FlowCommand::Dump { limit, worker, offloaded }) => {
            let r = c.dump_flows(pb::DumpFlowsRequest { limit, worker, offloaded }).await?.into_inner();
            emit(json, &r, "DumpFlowsResponse", render::flows);
        }
        Command::ClearStats => {
            let r = c.clear_stats(pb::ClearStatsRequest {}).await?.into_inner();
            emit(json, &r, "ClearStatsResponse", |_| "counters cleared\n".into());
        }
        Command::Pipeline(PipelineCommand::Show) => {
            let r = c.get_pipeline(pb::GetPipelineRequest {}).await?.into_inner();
            emit(json, &r, "PipelineInfo", render::pipeline);
        }
        Command::Pipeline(PipelineCommand::Check { .. }) => unreachable!("handled offline"),
        Command::Table(t) => {
            let commands = match t {
                TableCommand::Dump { table } => {
                    let r = c.table_dump(pb::TableDumpRequest { table }).await?.into_inner();
                    emit(json, &r, "TableDumpResponse", |r| {
                        let mut s = r.entries.iter().map(|e| format!("{e}\n")).collect::<String>();
                        s.push_str(&format!("# default: {}\n", r.default_action));
                        s
                    });
                    return Ok(());
                }
                TableCommand::Add { words: w } => words("table_add", &w),
                TableCommand::Del { words: w } => words("table_delete", &w),
                TableCommand::Modify { words: w } => words("table_modify", &w),
                TableCommand::SetDefault { words: w } => words("table_set_default", &w),
                TableCommand::Apply { file } => {
                    let text = if file.as_os_str() == "-" {
                        std::io::read_to_string(std::io::stdin())
                    } else {
                        std::fs::read_to_string(&file)
                    };
                    text.map_err(|e| Failure::Refused(format!("cannot read {}: {e}", file.display())))?
                }
            };
            let r = c.table_write(pb::TableWriteRequest { commands }).await?.into_inner();
            emit(json, &r, "TableWriteResponse", |r| {
                format!(
                    "applied {} command(s), {} entr{} added\n",
                    r.commands,
                    r.entries,
                    if r.entries == 1 { "y" } else { "ies" }
                )
            });
        }
        Command::Offload(OffloadCommand::Show) => {
            let r = c.get_offload(pb::GetOffloadRequest {}).await?.into_inner();
            emit(json, &r, "OffloadStatus", render::offload);
        }
        Command::Switch(x) => switch_request(&mut c, x.request(), json).await?,
        Command::Vlan(x) => switch_request(&mut c, x.request(), json).await?,
        Command::Router(x) => switch_request(&mut c, x.request(), json).await?,
        Command::Neighbor(x) => switch_request(&mut c, x.request(), json).await?,
        Command::Route(x) => switch_request(&mut c, x.request(), json).await?,
        Command::Mac(x) => switch_request(&mut c, x.request(), json).await?,
        Command::Vtep(x) => switch_request(&mut c, x.request(), json).await?,
        Command::Acl(x) => switch_request(&mut c, x.request(), json).await?,
        Command::Mirror(x) => switch_request(&mut c, x.request(), json).await?,
        Command::LogLevel { level } => {
            let r = c.set_log_level(pb::SetLogLevelRequest { level: level.clone() }).await?.into_inner();
            emit(json, &r, "SetLogLevelResponse", |r| format!("DPDK log level: {} (was {})\n", level, r.previous));
        }
    }
    Ok(())
}

/// A `switch|vlan|route|...` command: show the app's state or change it.
async fn switch_request(c: &mut ManagementClient<Channel>, r: switch::Request, json: bool) -> Result<(), Failure> {
    use std::io::Write as _;
    let out = match r {
        switch::Request::Show(render) => {
            let s = c.get_switch(pb::GetSwitchRequest {}).await?.into_inner();
            let v: serde_json::Value =
                serde_json::from_str(&s.json).map_err(|e| Failure::Refused(format!("sluiced sent bad JSON: {e}")))?;
            if json {
                serde_json::to_string_pretty(&v).expect("JSON value prints") + "\n"
            } else {
                render(&v)
            }
        }
        switch::Request::Change(op, section, spec) => {
            let req = pb::ChangeSwitchRequest { op: op.into(), section: section.into(), spec_json: spec.to_string() };
            let r = c.change_switch(req).await?.into_inner();
            if json {
                serde_json::json!({"summary": r.summary}).to_string() + "\n"
            } else {
                r.summary + "\n"
            }
        }
    };
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(())
}

/// `sluicectl pipeline check`, offline.
fn check(
    json: &std::path::Path,
    p4info: Option<&std::path::Path>,
    entries: Option<&std::path::Path>,
    as_json: bool,
) -> ExitCode {
    match crate::pipeline::load(json, p4info, entries) {
        Ok(l) => {
            if as_json {
                let ir = &l.ir;
                let v = serde_json::json!({
                    "ok": true,
                    "program": ir.name,
                    "tables": ir.tables.iter().enumerate().map(|(i, t)| serde_json::json!({
                        "name": t.name,
                        "keys": t.keys.iter().map(|k| serde_json::json!({"name": k.name, "match": k.kind.name(), "width": k.width})).collect::<Vec<_>>(),
                        "size": t.max_size,
                        "entries": l.rt.tables[i].len(),
                        "actions": t.actions.iter().map(|a| ir.actions[*a as usize].name.clone()).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                    "parser_states": ir.states.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
                    "counters": ir.counters.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                    "meters": ir.meters.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                    "registers": ir.registers.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                    "action_profiles": ir.profiles.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                    "digests": ir.learn_lists.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                });
                println!("{}", serde_json::to_string_pretty(&v).expect("summary serialises"));
            } else {
                print!("{}", crate::pipeline::summary(&l));
                println!("OK: the program loads");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if as_json {
                println!("{}", serde_json::json!({"ok": false, "error": e}));
            } else {
                eprintln!("sluicectl: pipeline check failed: {e}");
            }
            ExitCode::from(1)
        }
    }
}

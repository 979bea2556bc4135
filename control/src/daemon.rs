//! `sluiced`: parse arguments, load and check the configuration, initialise the EAL,
//! start the data plane, print counters, and stop cleanly on SIGINT/SIGTERM (a second
//! signal exits at once).
//!
//! Exit status: 0 after a clean stop; 2 for a configuration or host-setup problem
//! (bad file, bad core list, missing hugepages); 1 for a failure at run time (EAL,
//! port attach/start, worker start, shutdown).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use dpdk_sys::eal::Eal;

use crate::config::Config;
use crate::dataplane::Dataplane;
use crate::eal_args::{eal_args, Hugepages};
use crate::mgmt::{self, Switch};
use crate::{demo, p4rt, telemetry, BuildInfo};

/// How often the main loop takes the workers' flow events (and checks for a stop):
/// at 1.3 M flow setups per second a worker's event ring holds ~12 ms of them.
const FLOW_EVENTS_EVERY_MS: u64 = 5;

/// Command-line arguments of `sluiced`.
#[derive(Debug, Parser)]
#[command(name = "sluiced", about = "Sluice: a userspace virtual switch on DPDK", disable_version_flag = true)]
pub struct Args {
    /// The configuration file (TOML).
    #[arg(long, short, required_unless_present_any = ["demo", "version"], conflicts_with = "demo")]
    pub config: Option<PathBuf>,
    /// Run the embedded default: a pcap replay port cross-connected to a sink.
    #[arg(long)]
    pub demo: bool,
    /// Run without hugepages (overrides [eal] hugepages).
    #[arg(long)]
    pub no_huge: bool,
    /// Stop after this many seconds of forwarding (default: run until signalled;
    /// 5 with --demo).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Print per-port counters and rates every SECS seconds (1 with --demo).
    #[arg(long, value_name = "SECS")]
    pub stats_interval: Option<f64>,
    /// Write the final counters as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    pub stats_json: Option<PathBuf>,
    /// At the end, print up to N live megaflows (match -> actions) before stopping.
    #[arg(long, value_name = "N")]
    pub dump_flows: Option<usize>,
    /// Check the configuration and the host, print the EAL arguments, and exit.
    #[arg(long)]
    pub check_config: bool,
    /// Print the version and exit.
    #[arg(long, short = 'V')]
    pub version: bool,
}

enum Failure {
    Config(String),
    Runtime(String),
}

/// The P4Runtime service state for the data plane, starting from the configured
/// program, and its server when `[p4runtime]` is enabled.
fn start_p4runtime(
    config: &Config,
    dp: &Dataplane,
    pipeline: Option<crate::pipeline::Loaded>,
) -> Result<(Option<Arc<p4rt::P4rt>>, Option<p4rt::Server>), Failure> {
    let c = &config.p4runtime;
    if !c.enabled && pipeline.is_none() {
        return Ok((None, None));
    }
    let initial = match (pipeline, &config.pipeline) {
        (Some(l), None) => Some(
            p4rt::device::Pipeline::new(l, crate::app::program::config())
                .map_err(|f| Failure::Config(format!("the default program: {}", f.message)))?,
        ),
        (Some(l), Some(p)) => {
            let json = std::fs::read(config.resolve(&p.json))
                .map_err(|e| Failure::Config(format!("cannot read {}: {e}", p.json.display())))?;
            let text = match &p.p4info {
                Some(x) => Some(
                    std::fs::read_to_string(config.resolve(x))
                        .map_err(|e| Failure::Config(format!("cannot read {}: {e}", x.display())))?,
                ),
                None => None,
            };
            let cfg = p4rt::device::Pipeline::config_of(json, text.as_deref()).map_err(|e| {
                Failure::Config(format!(
                    "P4Info {}: {e}",
                    p.p4info.as_ref().map(|x| x.display().to_string()).unwrap_or_default()
                ))
            })?;
            Some(p4rt::device::Pipeline::new(l, cfg).map_err(|f| Failure::Config(f.message))?)
        }
        _ => None,
    };
    let svc = p4rt::P4rt::new(c.device_id, config.cpu_port(), Some(dp.control()), initial);
    // Packet-ins and digests reach the primary, or the built-in app.
    if let Some(rx) = dp.take_uplink() {
        svc.spawn_uplink(rx);
    }
    if !c.enabled {
        return Ok((Some(svc), None));
    }
    let addr = c
        .address
        .parse()
        .map_err(|_| Failure::Config(format!("p4runtime.address {:?} is not an address", c.address)))?;
    let server = p4rt::Server::start(addr, Arc::clone(&svc)).map_err(Failure::Runtime)?;
    eprintln!(
        "sluiced: P4Runtime server listening on {} (device {}{})",
        server.addr,
        c.device_id,
        config.cpu_port().map(|p| format!(", CPU port {p}")).unwrap_or_default()
    );
    Ok((Some(svc), Some(server)))
}

/// The operator's side: the management API and Prometheus metrics.
fn start_operator_surface(
    config: &Config,
    switch: Arc<Switch>,
) -> Result<(Option<mgmt::server::Server>, Option<telemetry::Server>), Failure> {
    let mut metrics = None;
    if config.metrics.enabled {
        let addr =
            config.metrics.address.parse().map_err(|_| {
                Failure::Config(format!("[metrics] address {:?} is not host:port", config.metrics.address))
            })?;
        let m = telemetry::Server::start(Arc::clone(&switch), addr).map_err(Failure::Runtime)?;
        let _ = switch.metrics_addr.set(m.addr.to_string());
        eprintln!("sluiced: metrics on http://{}/metrics", m.addr);
        metrics = Some(m);
    }
    let mut api = None;
    let c = &config.management;
    if c.enabled {
        let mode = c.mode().map_err(|e| Failure::Config(e.0))?;
        let socket = config.resolve(&c.socket);
        let tls = match (&c.tls_cert, &c.tls_key) {
            (Some(cert), Some(key)) => Some(mgmt::server::ServerTls {
                cert: config.resolve(cert),
                key: config.resolve(key),
                client_ca: c.tls_client_ca.as_ref().map(|p| config.resolve(p)),
            }),
            _ => None,
        };
        let s = mgmt::server::Server::start(switch, &socket, mode, c.tcp_address.as_deref(), tls.as_ref())
            .map_err(Failure::Runtime)?;
        eprintln!(
            "sluiced: management API on {} (mode {:o}){}",
            s.socket.display(),
            mode,
            s.tcp.map(|a| format!(" and tcp {a}{}", if tls.is_some() { " (TLS)" } else { "" })).unwrap_or_default()
        );
        api = Some(s);
    }
    Ok((api, metrics))
}

/// Run `sluiced` with the process arguments.
pub fn main(build: BuildInfo) -> ExitCode {
    let args = Args::parse();
    if args.version {
        println!(
            "sluiced {} (git {}), built with DPDK {}, running {}",
            build.version,
            build.git_rev,
            dpdk_sys::DPDK_PKG_VERSION,
            dpdk_sys::runtime_version()
        );
        return ExitCode::SUCCESS;
    }
    match run(args, build) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(m)) => {
            eprintln!("sluiced: configuration error: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(m)) => {
            eprintln!("sluiced: error: {m}");
            ExitCode::from(1)
        }
    }
}

fn online_cores() -> Vec<usize> {
    core_affinity::get_core_ids().unwrap_or_default().into_iter().map(|c| c.id).collect()
}

fn run(mut args: Args, build: BuildInfo) -> Result<(), Failure> {
    let online = online_cores();
    let _demo_guard;
    let mut config = if args.demo {
        let d = demo::prepare(&online).map_err(|e| Failure::Config(e.0))?;
        let c = d.config.clone();
        _demo_guard = d;
        args.duration.get_or_insert(5.0);
        args.stats_interval.get_or_insert(1.0);
        c
    } else {
        let path = args.config.as_ref().expect("clap requires --config without --demo");
        Config::load(path).map_err(|e| Failure::Config(e.0))?
    };
    if args.no_huge {
        config.eal.hugepages = false;
    }
    let plan = config.validate(&online).map_err(|e| Failure::Config(e.0))?;
    let eal_argv = eal_args(&config, &plan, Hugepages::probe()).map_err(|e| Failure::Config(e.0))?;
    // The program loads (and its errors show) before DPDK starts.
    let pipeline = match &config.pipeline {
        None if config.runs_default_program() => {
            let l = if config.switch.app {
                crate::app::preprogram(&config).map_err(Failure::Config)?
            } else {
                crate::pipeline::from_bytes(crate::app::program::JSON, Some(crate::app::program::P4INFO))
                    .map_err(|e| Failure::Config(format!("the default program: {e}")))?
            };
            eprintln!(
                "sluiced: running Sluice's default program (bridge and router, docs/default-program.md){}",
                if config.switch.app {
                    format!(", {} entities from the configuration", l.entries)
                } else {
                    ", empty: [switch] app = false leaves it to a controller".into()
                }
            );
            Some(l)
        }
        None => None,
        Some(p) => {
            let json = config.resolve(&p.json);
            let info = p.p4info.as_ref().map(|x| config.resolve(x));
            let entries = p.entries.as_ref().map(|x| config.resolve(x));
            let l = crate::pipeline::load(&json, info.as_deref(), entries.as_deref()).map_err(Failure::Config)?;
            eprintln!(
                "sluiced: pipeline {} loaded from {} ({} tables, {} entries from the entries file)",
                l.ir.name,
                json.display(),
                l.ir.tables.len(),
                l.entries
            );
            Some(l)
        }
    };
    if args.check_config {
        println!(
            "configuration OK: {} ports, workers on cores {:?}, control on core {}",
            config.ports.len(),
            plan.workers,
            plan.control
        );
        println!("EAL arguments: {}", eal_argv.join(" "));
        return Ok(());
    }
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once (status 1).
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&term))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&term)))
            .map_err(|e| Failure::Runtime(format!("cannot install signal handlers: {e}")))?;
    }
    let eal = Eal::init_once(&eal_argv).map_err(|e| {
        Failure::Runtime(format!(
            "DPDK EAL initialisation failed: {e}. Is another process using --file-prefix {:?}? \
             With hugepages, run as root; without, pass --no-huge",
            config.eal.file_prefix.as_deref().unwrap_or("sluiced-<pid>")
        ))
    })?;
    let dp = Arc::new(Dataplane::start(eal, &config, &plan, pipeline.as_ref()).map_err(|e| Failure::Runtime(e.0))?);
    let (p4rt_state, p4rt_server) = start_p4runtime(&config, &dp, pipeline)?;
    // The default program's control plane, unless an external controller is to do it.
    let app = match &p4rt_state {
        Some(svc) if config.runs_default_program() && config.switch.app => {
            let app = crate::app::App::new(Arc::clone(svc), config.clone()).map_err(|e| Failure::Config(e.0))?;
            let (handle, thread) = app.start(true).map_err(Failure::Runtime)?;
            eprintln!("sluiced: built-in app running (MAC learning and aging; steps back for a P4Runtime primary)");
            Some((handle, thread))
        }
        _ => None,
    };
    let mut switch = Switch::new(Arc::clone(&dp), p4rt_state, build, plan.control);
    switch.app = app.as_ref().map(|(h, _)| h.clone());
    switch.p4rt_addr = p4rt_server.as_ref().map(|s| s.addr.to_string()).unwrap_or_default();
    // Shares of meters and policers follow the traffic (only matters with 2+ workers).
    let balancer = if plan.workers.len() > 1 && config.qos.rebalance_interval_ms > 0 {
        let every = Duration::from_millis(config.qos.rebalance_interval_ms);
        Some(
            crate::qos::spawn(dp.control(), every, Arc::clone(&switch.qos))
                .map_err(|e| Failure::Runtime(format!("cannot start the qos balancer thread: {e}")))?,
        )
    } else {
        None
    };
    // Hot megaflows into NICs (ports without rte_flow are found and left alone).
    let offloader = if config.offload.enabled && config.offload.interval_ms > 0 {
        let every = Duration::from_millis(config.offload.interval_ms);
        Some(
            crate::offload::spawn(dp.offload(), dp.control(), dp.flow_log(), every)
                .map_err(|e| Failure::Runtime(format!("cannot start the offload thread: {e}")))?,
        )
    } else {
        None
    };
    let (api, metrics) = start_operator_surface(&config, Arc::new(switch))?;
    eprintln!(
        "sluiced: forwarding: {} ports ({}), {} worker(s) on cores {:?}; Ctrl-C to stop",
        config.ports.len(),
        dp.port_names().join(", "),
        plan.workers.len(),
        plan.workers
    );
    let started = Instant::now();
    let interval = args.stats_interval.filter(|s| *s > 0.0).map(Duration::from_secs_f64);
    let deadline = args.duration.map(|d| started + Duration::from_secs_f64(d.max(0.0)));
    let mut prev = dp.report();
    let mut next_tick = interval.map(|i| started + i);
    while !term.load(Ordering::Relaxed) {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        if let (Some(t), Some(i)) = (next_tick, interval) {
            if now >= t {
                let cur = dp.report();
                print!("{}", cur.interval_lines(&prev));
                prev = cur;
                next_tick = Some(t + i);
            }
        }
        dp.drain_flow_events();
        std::thread::sleep(Duration::from_millis(FLOW_EVENTS_EVERY_MS));
    }
    if let Some(n) = args.dump_flows {
        for line in dp.flow_dump(n) {
            println!("megaflow {line}");
        }
    }
    if let Some((handle, thread)) = app {
        drop(thread);
        let stats = handle.stats;
        let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        eprintln!(
            "sluiced: app: {} MACs learned, {} moved, {} aged, {} not learned (table full), {} write errors",
            n(&stats.learned),
            n(&stats.moved),
            n(&stats.aged),
            n(&stats.table_full),
            n(&stats.write_errors)
        );
    }
    // No request may reach a worker that is stopping.
    drop(balancer);
    drop(offloader);
    drop(api);
    drop(metrics);
    drop(p4rt_server);
    eprintln!("sluiced: stopping: workers drain, then ports stop");
    let dp = Arc::try_unwrap(dp)
        .map_err(|_| Failure::Runtime("the data plane is still referenced at shutdown (a bug)".into()))?;
    let report = dp.stop().map_err(|e| Failure::Runtime(e.0))?;
    print!("{}", report.table());
    if args.demo {
        print!("{}", demo::summary(&report));
    }
    if let Some(path) = &args.stats_json {
        let json = serde_json::to_string_pretty(&report).expect("report serialises");
        std::fs::write(path, json + "\n")
            .map_err(|e| Failure::Runtime(format!("cannot write --stats-json {}: {e}", path.display())))?;
    }
    Ok(())
}

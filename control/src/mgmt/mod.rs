//! The management API (`sluice.mgmt.v1.Management`, `proto/sluice/mgmt/v1`): what
//! `sluicectl` talks to.
//!
//! * [`Switch`]: what the API serves — the data plane, the P4 program (through the
//!   P4Runtime service state), versions and addresses — and the baselines
//!   `ClearStats` keeps.
//! * [`server`]: serving it on a Unix socket (mode 0660 by default) and, optionally,
//!   loopback TCP; connecting to it (for `sluicectl`).
//!
//! Every call that changes the switch or waits for workers runs on tokio's blocking
//! pool; a failed call leaves the switch as it was and maps to a gRPC status whose
//! message tells the operator what to do.

pub mod server;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use sluice_proto::sluice::mgmt::v1 as pb;
use sluice_proto::sluice::mgmt::v1::management_server::Management;
use tonic::{Request, Response, Status};

use crate::config::{PolicerSpec, PortConfig, RateUnit};
use crate::dataplane::{ChangeError, ChangeErrorKind, Dataplane};
use crate::p4rt::operator::MeterInfo;
use crate::p4rt::P4rt;
use crate::report::{PortReport, WorkerReport};
use crate::BuildInfo;
use sluice_fastpath::p4::meters::MeterConfig;

/// Where `sluiced` serves the API and `sluicectl` looks for it by default.
pub const DEFAULT_SOCKET: &str = "/run/sluice/sluiced.sock";

/// Counters as they were at the last `ClearStats`.
#[derive(Debug, Default)]
struct Baseline {
    ports: HashMap<String, PortReport>,
    workers: Vec<WorkerReport>,
}

/// What the management API serves.
pub struct Switch {
    /// The data plane.
    pub dp: Arc<Dataplane>,
    /// The P4Runtime service state (the program, its tables).
    pub p4rt: Option<Arc<P4rt>>,
    /// Versions.
    pub build: BuildInfo,
    /// The control core.
    pub control_core: usize,
    /// Where P4Runtime is served ("" when off).
    pub p4rt_addr: String,
    /// Where metrics are served ("" when off); set once the listener is bound.
    pub metrics_addr: OnceLock<String>,
    /// What the meter and policer share balancer has done.
    pub qos: Arc<crate::qos::BalancerStats>,
    /// The built-in app, when the switch runs the default program with it.
    pub app: Option<crate::app::AppHandle>,
    started: Instant,
    baseline: Mutex<Baseline>,
}

impl std::fmt::Debug for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switch").field("dp", &self.dp).finish()
    }
}

fn status(e: ChangeError) -> Status {
    use ChangeErrorKind::*;
    match e.kind {
        Invalid => Status::invalid_argument(e.message),
        NotFound => Status::not_found(e.message),
        Exists => Status::already_exists(e.message),
        Exhausted => Status::resource_exhausted(e.message),
        Unavailable => Status::unavailable(e.message),
        Device => Status::internal(e.message),
    }
}

/// Run `f` on the blocking pool (it may wait for workers or DPDK).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Status> + Send + 'static) -> Result<T, Status> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Status::internal(format!("the request failed: {e}")))?
}

fn u16_arg(v: u32, what: &str, default: u16) -> Result<u16, Status> {
    match v {
        0 => Ok(default),
        v => u16::try_from(v).map_err(|_| Status::invalid_argument(format!("{what} {v} is too large (at most 65535)"))),
    }
}

impl Switch {
    /// The API's view of `dp`.
    pub fn new(dp: Arc<Dataplane>, p4rt: Option<Arc<P4rt>>, build: BuildInfo, control_core: usize) -> Self {
        Switch {
            dp,
            p4rt,
            build,
            control_core,
            p4rt_addr: String::new(),
            metrics_addr: OnceLock::new(),
            qos: Arc::default(),
            app: None,
            started: Instant::now(),
            baseline: Mutex::default(),
        }
    }

    fn baseline(&self) -> std::sync::MutexGuard<'_, Baseline> {
        self.baseline.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn port_pb(&self, p: &PortReport) -> pb::Port {
        let b = self.baseline();
        let base = b.ports.get(&p.name);
        let net = |f: fn(&PortReport) -> u64| f(p).saturating_sub(base.map(f).unwrap_or(0));
        pb::Port {
            index: p.index as u32,
            name: p.name.clone(),
            devargs: p.devargs.clone(),
            driver: p.driver.clone(),
            p4_port: p.p4_port,
            link_up: p.link_up,
            link_speed_mbps: p.link_speed_mbps,
            mtu: u32::from(p.mtu),
            rx_queues: u32::from(p.rx_queues),
            tx_queues: u32::from(p.tx_queues),
            rte_flow: p.rte_flow.clone(),
            counters: Some(pb::PortCounters {
                rx_packets: net(|p| p.rx_packets),
                tx_packets: net(|p| p.tx_packets),
                rx_bytes: net(|p| p.rx_bytes),
                tx_bytes: net(|p| p.tx_bytes),
                rx_missed: net(|p| p.rx_missed),
                rx_errors: net(|p| p.rx_errors),
                tx_errors: net(|p| p.tx_errors),
                rx_nombuf: net(|p| p.rx_nombuf),
                sw_rx_packets: net(|p| p.sw_rx_packets),
                sw_tx_packets: net(|p| p.sw_tx_packets),
                policed_rx_packets: net(|p| p.policed_rx),
                policed_tx_packets: net(|p| p.policed_tx),
            }),
            ingress_policer: p.ingress_policer.map(policer_pb),
            egress_policer: p.egress_policer.map(policer_pb),
        }
    }

    fn workers_pb(&self) -> pb::ListWorkersResponse {
        let report = self.dp.report();
        let rxqs = self.dp.rxqs();
        let b = self.baseline();
        let workers = report
            .workers
            .iter()
            .map(|w| {
                let base = b.workers.get(w.worker);
                let net = |f: fn(&WorkerReport) -> u64| f(w).saturating_sub(base.map(f).unwrap_or(0));
                let c = &w.cache;
                let cb = base.map(|b| b.cache).unwrap_or_default();
                let rx = net(|w| w.rx_packets);
                let busy = net(|w| w.busy_cycles);
                let dpcls = c.dpcls_hits.saturating_sub(cb.dpcls_hits);
                let searched = c.subtables_searched.saturating_sub(cb.subtables_searched);
                pb::Worker {
                    id: w.worker as u32,
                    core: w.core as u32,
                    rx_packets: rx,
                    tx_packets: net(|w| w.tx_packets),
                    busy_cycles: busy,
                    idle_cycles: net(|w| w.idle_cycles),
                    iterations: net(|w| w.iterations),
                    cycles_per_packet: if rx == 0 { 0.0 } else { busy as f64 / rx as f64 },
                    emc_hits: c.emc_hits.saturating_sub(cb.emc_hits),
                    dpcls_hits: dpcls,
                    upcalls: c.upcalls.saturating_sub(cb.upcalls),
                    uncacheable: c.uncacheable.saturating_sub(cb.uncacheable),
                    offloaded: 0,
                    subtables_per_dpcls_hit: if dpcls == 0 { 0.0 } else { searched as f64 / dpcls as f64 },
                    megaflows: c.megaflows,
                    subtables: c.subtables,
                    evicted: c.evicted.saturating_sub(cb.evicted),
                    expired: c.expired.saturating_sub(cb.expired),
                    invalidated: c.invalidated.saturating_sub(cb.invalidated),
                    sent_whole: c.sent_whole.saturating_sub(cb.sent_whole),
                    drops: w
                        .drops
                        .iter()
                        .map(|(r, n)| {
                            let b = base.and_then(|b| b.drops.get(r)).copied().unwrap_or(0);
                            (r.to_string(), n.saturating_sub(b))
                        })
                        .collect(),
                    rxqs: rxqs
                        .get(w.worker)
                        .map(|qs| {
                            qs.iter()
                                .map(|q| pb::Rxq {
                                    port: q.port.clone(),
                                    queue: u32::from(q.queue),
                                    packets: q.packets,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    to_cpu: net(|w| w.to_cpu),
                    from_cpu: net(|w| w.from_cpu),
                }
            })
            .collect();
        pb::ListWorkersResponse { workers }
    }

    fn p4rt(&self) -> Result<&Arc<P4rt>, Status> {
        self.p4rt.as_ref().ok_or_else(|| Status::failed_precondition("no P4 program is loaded"))
    }
}

fn policer_pb(p: PolicerSpec) -> pb::Policer {
    let unit = match p.unit {
        RateUnit::Bytes => "bytes",
        RateUnit::Packets => "packets",
    };
    pb::Policer { cir: p.cir, cbs: p.cbs, eir: p.eir, ebs: p.ebs, unit: unit.into() }
}

fn policer_spec(p: &pb::Policer) -> Result<PolicerSpec, Status> {
    let unit = match p.unit.as_str() {
        "" | "bytes" => RateUnit::Bytes,
        "packets" => RateUnit::Packets,
        u => return Err(Status::invalid_argument(format!("policer unit {u:?}: use \"bytes\" or \"packets\""))),
    };
    Ok(PolicerSpec { cir: p.cir, cbs: p.cbs, eir: p.eir, ebs: p.ebs, unit })
}

fn meter_config(c: &pb::MeterConfig) -> MeterConfig {
    MeterConfig { cir: c.cir, cburst: c.cburst, pir: c.pir, pburst: c.pburst }
}

fn meters_pb(meters: Vec<MeterInfo>) -> pb::ListMetersResponse {
    let meters = meters
        .into_iter()
        .map(|m| pb::Meter {
            kind: if m.table.is_some() { "direct" } else { "indexed" }.into(),
            table: m.table.unwrap_or_default(),
            unit: if m.bytes { "bytes" } else { "packets" }.into(),
            size: m.size,
            cells: m
                .cells
                .into_iter()
                .map(|c| pb::MeterCell {
                    index: c.index,
                    config: Some(pb::MeterConfig {
                        cir: c.config.cir,
                        cburst: c.config.cburst,
                        pir: c.config.pir,
                        pburst: c.config.pburst,
                    }),
                    packets: c.counts.iter().map(|x| x.0).collect(),
                    bytes: c.counts.iter().map(|x| x.1).collect(),
                })
                .collect(),
            name: m.name,
        })
        .collect();
    pb::ListMetersResponse { meters }
}

/// The tonic service.
#[derive(Debug, Clone)]
pub struct Service(pub Arc<Switch>);

impl Service {
    fn app(&self) -> Result<crate::app::AppHandle, Status> {
        self.0.app.clone().ok_or_else(|| {
            Status::failed_precondition(
                "the switch does not run the built-in app (it runs with no [pipeline] and no [[xconnect]], \
                 and [switch] app = true)",
            )
        })
    }
}

#[tonic::async_trait]
impl Management for Service {
    async fn get_info(&self, _: Request<pb::GetInfoRequest>) -> Result<Response<pb::Info>, Status> {
        let s = &self.0;
        let r = s.dp.report();
        Ok(Response::new(pb::Info {
            version: s.build.version.into(),
            git_rev: s.build.git_rev.into(),
            dpdk_version: dpdk_sys::runtime_version(),
            uptime_seconds: s.started.elapsed().as_secs_f64(),
            worker_cores: r.workers.iter().map(|w| w.core as u32).collect(),
            control_core: s.control_core as u32,
            tsc_hz: r.tsc_hz,
            mempool_size: r.mempool_size,
            mempool_in_use: r.mempool_in_use,
            p4runtime_address: s.p4rt_addr.clone(),
            metrics_address: s.metrics_addr.get().cloned().unwrap_or_default(),
        }))
    }

    async fn list_ports(&self, _: Request<pb::ListPortsRequest>) -> Result<Response<pb::ListPortsResponse>, Status> {
        let s = Arc::clone(&self.0);
        blocking(move || {
            let r = s.dp.report();
            Ok(pb::ListPortsResponse { ports: r.ports.iter().map(|p| s.port_pb(p)).collect() })
        })
        .await
        .map(Response::new)
    }

    async fn add_port(&self, req: Request<pb::AddPortRequest>) -> Result<Response<pb::Port>, Status> {
        let r = req.into_inner();
        let cfg = PortConfig {
            name: r.name.clone(),
            devargs: r.devargs.clone(),
            rx_queues: u16_arg(r.rx_queues, "rx_queues", 1)?,
            tx_queues: None,
            rx_descriptors: u16_arg(r.rx_descriptors, "rx_descriptors", 1024)?,
            tx_descriptors: u16_arg(r.tx_descriptors, "tx_descriptors", 1024)?,
            mtu: (r.mtu != 0).then(|| u16_arg(r.mtu, "mtu", 0)).transpose()?,
            p4_port: r.p4_port,
            ingress_policer: None,
            egress_policer: None,
            vlan_mode: None,
            vlan: None,
            trunk_vlans: vec![],
        };
        if cfg.devargs.is_empty() {
            return Err(Status::invalid_argument(
                "devargs are required, e.g. net_tap0,iface=sl0 or net_null0 or a PCI address bound to vfio-pci",
            ));
        }
        let s = Arc::clone(&self.0);
        blocking(move || {
            let nonempty = |x: &str| (!x.is_empty()).then(|| x.to_owned());
            let (to, from) = (nonempty(&r.xconnect_to), nonempty(&r.xconnect_from));
            let added = s.dp.add_port(cfg, to.as_deref(), from.as_deref()).map_err(status)?;
            s.baseline().ports.remove(&r.name);
            Ok(s.port_pb(&added))
        })
        .await
        .map(Response::new)
    }

    async fn remove_port(&self, req: Request<pb::RemovePortRequest>) -> Result<Response<pb::Port>, Status> {
        let name = req.into_inner().name;
        let s = Arc::clone(&self.0);
        blocking(move || {
            let last = s.dp.remove_port(&name).map_err(status)?;
            let p = s.port_pb(&last);
            s.baseline().ports.remove(&name);
            Ok(p)
        })
        .await
        .map(Response::new)
    }

    async fn list_workers(
        &self,
        _: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let s = Arc::clone(&self.0);
        blocking(move || Ok(s.workers_pb())).await.map(Response::new)
    }

    async fn pin_rxq(&self, req: Request<pb::PinRxqRequest>) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let r = req.into_inner();
        let queue = u16::try_from(r.queue).map_err(|_| Status::invalid_argument(format!("no queue {}", r.queue)))?;
        let s = Arc::clone(&self.0);
        blocking(move || {
            s.dp.pin_rxq(&r.port, queue, r.worker as usize).map_err(status)?;
            Ok(s.workers_pb())
        })
        .await
        .map(Response::new)
    }

    async fn rebalance_rxqs(
        &self,
        _: Request<pb::RebalanceRxqsRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let s = Arc::clone(&self.0);
        blocking(move || {
            s.dp.rebalance_rxqs().map_err(status)?;
            Ok(s.workers_pb())
        })
        .await
        .map(Response::new)
    }

    async fn dump_flows(&self, req: Request<pb::DumpFlowsRequest>) -> Result<Response<pb::DumpFlowsResponse>, Status> {
        let r = req.into_inner();
        let s = Arc::clone(&self.0);
        blocking(move || {
            let (flows, total) =
                s.dp.flows(r.limit as usize, r.worker.map(|w| w as usize), r.offloaded).map_err(status)?;
            Ok(pb::DumpFlowsResponse {
                flows: flows
                    .into_iter()
                    .map(|f| pb::Flow {
                        worker: f.worker as u32,
                        id: f.id,
                        r#match: f.matches,
                        actions: f.actions,
                        packets: f.packets,
                        bytes: f.bytes,
                        age_ms: f.age_ms,
                        idle_ms: f.idle_ms,
                        offloaded: !f.offload.is_empty(),
                        offload_mode: f.offload.into(),
                    })
                    .collect(),
                total: total as u64,
            })
        })
        .await
        .map(Response::new)
    }

    async fn clear_stats(&self, _: Request<pb::ClearStatsRequest>) -> Result<Response<pb::ClearStatsResponse>, Status> {
        let s = Arc::clone(&self.0);
        blocking(move || {
            let r = s.dp.report();
            let mut b = s.baseline();
            b.ports = r.ports.into_iter().map(|p| (p.name.clone(), p)).collect();
            b.workers = r.workers;
            Ok(pb::ClearStatsResponse {})
        })
        .await
        .map(Response::new)
    }

    async fn get_pipeline(&self, _: Request<pb::GetPipelineRequest>) -> Result<Response<pb::PipelineInfo>, Status> {
        let Some(p) = self.0.p4rt.as_ref().and_then(|p| p.pipeline_summary()) else {
            return Ok(Response::new(pb::PipelineInfo::default()));
        };
        Ok(Response::new(pb::PipelineInfo {
            loaded: true,
            program: p.program,
            cookie: p.cookie,
            tables: p
                .tables
                .into_iter()
                .map(|t| pb::Table {
                    name: t.name,
                    keys: t.keys,
                    entries: t.entries as u64,
                    size: t.size,
                    actions: t.actions,
                })
                .collect(),
            counters: p.counters as u32,
            meters: p.meters as u32,
            registers: p.registers as u32,
            digests: p.digests as u32,
        }))
    }

    async fn table_write(
        &self,
        req: Request<pb::TableWriteRequest>,
    ) -> Result<Response<pb::TableWriteResponse>, Status> {
        let text = req.into_inner().commands;
        let p4rt = Arc::clone(self.0.p4rt()?);
        blocking(move || {
            let (commands, entries) = p4rt.table_write(&text)?;
            Ok(pb::TableWriteResponse { commands: commands as u32, entries: entries as u32 })
        })
        .await
        .map(Response::new)
    }

    async fn table_dump(&self, req: Request<pb::TableDumpRequest>) -> Result<Response<pb::TableDumpResponse>, Status> {
        let table = req.into_inner().table;
        let (entries, default_action) = self.0.p4rt()?.table_dump(&table)?;
        Ok(Response::new(pb::TableDumpResponse { entries, default_action }))
    }

    async fn set_port_policer(&self, req: Request<pb::SetPortPolicerRequest>) -> Result<Response<pb::Port>, Status> {
        let r = req.into_inner();
        let egress = match r.direction.as_str() {
            "ingress" => false,
            "egress" => true,
            d => return Err(Status::invalid_argument(format!("direction {d:?}: use \"ingress\" or \"egress\""))),
        };
        let spec = r.policer.as_ref().map(policer_spec).transpose()?;
        let s = Arc::clone(&self.0);
        blocking(move || {
            s.dp.set_policer(&r.port, egress, spec).map_err(status)?;
            let report = s.dp.report();
            let p = report.ports.iter().find(|p| p.name == r.port).ok_or_else(|| Status::not_found("port gone"))?;
            Ok(s.port_pb(p))
        })
        .await
        .map(Response::new)
    }

    async fn list_meters(
        &self,
        req: Request<pb::ListMetersRequest>,
    ) -> Result<Response<pb::ListMetersResponse>, Status> {
        let name = req.into_inner().meter;
        let p4rt = Arc::clone(self.0.p4rt()?);
        blocking(move || Ok(meters_pb(p4rt.meters((!name.is_empty()).then_some(name.as_str()))?)))
            .await
            .map(Response::new)
    }

    async fn set_meter(&self, req: Request<pb::SetMeterRequest>) -> Result<Response<pb::ListMetersResponse>, Status> {
        let r = req.into_inner();
        let p4rt = Arc::clone(self.0.p4rt()?);
        blocking(move || {
            p4rt.meter_set(&r.meter, r.index, r.config.as_ref().map(meter_config))?;
            Ok(meters_pb(p4rt.meters(Some(&r.meter))?))
        })
        .await
        .map(Response::new)
    }

    async fn get_switch(&self, _: Request<pb::GetSwitchRequest>) -> Result<Response<pb::SwitchState>, Status> {
        let app = self.app()?;
        let v = blocking(move || app.show().map_err(Status::unavailable)).await?;
        Ok(Response::new(pb::SwitchState { json: v.to_string() }))
    }

    async fn change_switch(
        &self,
        req: Request<pb::ChangeSwitchRequest>,
    ) -> Result<Response<pb::ChangeSwitchResponse>, Status> {
        let r = req.into_inner();
        let app = self.app()?;
        let spec: serde_json::Value = serde_json::from_str(&r.spec_json)
            .map_err(|e| Status::invalid_argument(format!("spec_json is not JSON: {e}")))?;
        let summary = blocking(move || app.change(&r.op, &r.section, spec).map_err(Status::invalid_argument)).await?;
        Ok(Response::new(pb::ChangeSwitchResponse { summary }))
    }

    async fn get_offload(&self, _: Request<pb::GetOffloadRequest>) -> Result<Response<pb::OffloadStatus>, Status> {
        let r = self.0.dp.report();
        let (stats, cfg, rules) = {
            let off = self.0.dp.offload();
            let m = off.lock();
            (m.stats(), m.config(), m.rules())
        };
        let name_of = |dpdk: u16| {
            r.ports
                .iter()
                .find(|p| p.dpdk_port == dpdk)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| format!("dpdk{dpdk}"))
        };
        Ok(Response::new(pb::OffloadStatus {
            enabled: cfg.enabled,
            ports: r
                .ports
                .iter()
                .map(|p| {
                    // Capable unless the probe at start or a rule attempt said otherwise.
                    let found = stats.not_capable.get(&p.dpdk_port);
                    let capable = p.rte_flow == "capable" && found.is_none();
                    let reason = match found {
                        Some(why) => why.clone(),
                        None if !capable => p.rte_flow.clone(),
                        None => String::new(),
                    };
                    pb::OffloadPort {
                        port: p.name.clone(),
                        capable,
                        reason,
                        rules: stats.rules_per_port.get(&p.dpdk_port).copied().unwrap_or(0),
                        dpdk_port: p.dpdk_port as u32,
                    }
                })
                .collect(),
            offloaded_flows: stats.offloaded_flows,
            failures: stats.failures.clone().into_iter().collect(),
            refused: stats.refused.clone().into_iter().collect(),
            rules: rules
                .into_iter()
                .map(|x| pb::OffloadRule {
                    worker: x.worker,
                    flow: x.flow,
                    port: name_of(x.port),
                    mode: match x.mode {
                        sluice_offload::manager::Mode::Full => "full".into(),
                        sluice_offload::manager::Mode::Partial => "partial".into(),
                    },
                    mark: x.mark,
                    rule: x.rule,
                    hw_packets: x.hw_packets,
                    hw_bytes: x.hw_bytes,
                })
                .collect(),
            full: cfg.full,
            min_pps: cfg.min_pps,
            rounds: stats.rounds,
            created_full: stats.created_full,
            created_partial: stats.created_partial,
            destroyed: stats.destroyed,
            destroyed_by_writes: stats.destroyed_by_writes,
            rules_full: stats.rules_full,
            rules_partial: stats.rules_partial,
            hw_packets: stats.hw_packets,
            hw_bytes: stats.hw_bytes,
            meters: stats.meters,
            meter_demotions: stats.meter_demotions,
        }))
    }

    async fn set_log_level(
        &self,
        req: Request<pb::SetLogLevelRequest>,
    ) -> Result<Response<pb::SetLogLevelResponse>, Status> {
        let level = req.into_inner().level;
        let prev = dpdk_sys::log::set_global_level(&level).map_err(Status::invalid_argument)?;
        Ok(Response::new(pb::SetLogLevelResponse { previous: dpdk_sys::log::name_of(prev).into() }))
    }
}

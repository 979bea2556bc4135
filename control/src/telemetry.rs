//! Prometheus metrics at `GET /metrics` (127.0.0.1:9480 by default).
//!
//! Workers never call the `metrics` crate: they keep plain single-writer counters
//! (`fastpath::stats`). On each scrape the control side reads those counters, the
//! devices' (`rte_eth_stats`, xstats), the mempool's and the P4Runtime service's,
//! and writes them into the `metrics` recorder (`metrics-exporter-prometheus`) as
//! absolute values, then renders the text format. Series of things that are gone
//! (a removed port) are not refreshed by that scrape and the recorder drops them
//! (an idle timeout shorter than any scrape interval). The one histogram, P4Runtime
//! write latency, is recorded by the write path itself.
//!
//! Every family is listed in [`FAMILIES`] and documented in `docs/metrics.md`; a
//! test fails if one is documented but never exported.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{counter, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

use crate::background::Background;
use crate::mgmt::Switch;

/// The P4Runtime write latency histogram.
pub const WRITE_DURATION: &str = "sluice_p4runtime_write_duration_seconds";

/// Every family exported: name, type, labels, help. `docs/metrics.md` documents
/// exactly these.
pub const FAMILIES: &[(&str, &str, &str, &str)] = &[
    ("sluice_build_info", "gauge", "version, git_rev, dpdk_version", "Always 1; the labels say what runs."),
    ("sluice_uptime_seconds", "gauge", "", "Seconds since the data plane started."),
    ("sluice_port_rx_packets_total", "counter", "port", "Packets the device received (rte_eth_stats)."),
    ("sluice_port_tx_packets_total", "counter", "port", "Packets the device sent."),
    ("sluice_port_rx_bytes_total", "counter", "port", "Bytes the device received."),
    ("sluice_port_tx_bytes_total", "counter", "port", "Bytes the device sent."),
    ("sluice_port_rx_dropped_total", "counter", "port", "Packets the device dropped for lack of rx descriptors (imissed)."),
    ("sluice_port_rx_errors_total", "counter", "port", "Erroneous packets received."),
    ("sluice_port_tx_errors_total", "counter", "port", "Failed transmissions."),
    ("sluice_port_rx_nombuf_total", "counter", "port", "Rx mbuf allocation failures (mempool empty)."),
    ("sluice_port_worker_rx_packets_total", "counter", "port", "Packets the workers took from the port."),
    ("sluice_port_worker_tx_packets_total", "counter", "port", "Packets the workers handed to the port and it accepted."),
    ("sluice_port_xstat_total", "counter", "port, xstat", "Every extended counter the PMD offers (rte_eth_xstats)."),
    ("sluice_port_link_up", "gauge", "port", "1 when the link is up."),
    ("sluice_port_rte_flow_capable", "gauge", "port", "1 when the port accepts rte_flow rules (offload)."),
    ("sluice_worker_rx_packets_total", "counter", "worker, core", "Packets the worker received."),
    ("sluice_worker_tx_packets_total", "counter", "worker, core", "Packets the worker sent."),
    ("sluice_worker_busy_cycles_total", "counter", "worker, core", "TSC cycles in loop iterations that received packets."),
    ("sluice_worker_idle_cycles_total", "counter", "worker, core", "TSC cycles in loop iterations that received nothing."),
    ("sluice_worker_cycles_per_packet", "gauge", "worker, core", "Busy cycles per received packet, since start."),
    (
        "sluice_worker_packets_total",
        "counter",
        "worker, core, path",
        "Packets by path: offload (a NIC flow mark named the megaflow), emc, dpcls, upcall (pipeline run, megaflow installed), uncacheable (pipeline run every time).",
    ),
    (
        "sluice_worker_packets_sent_whole_total",
        "counter",
        "worker, core",
        "Packets of bursts sent to one port at once, each rewritten by its megaflow, with no per-packet action dispatch (the rest of the cache hits went packet by packet).",
    ),
    ("sluice_worker_subtables_searched_total", "counter", "worker, core", "dpcls subtables searched (per dpcls hit: the ratio)."),
    ("sluice_worker_megaflows", "gauge", "worker, core", "Megaflows in the worker's cache."),
    ("sluice_worker_subtables", "gauge", "worker, core", "dpcls subtables (masks) in the worker's cache."),
    ("sluice_worker_megaflows_unsettled", "gauge", "worker, core", "Megaflows whose hits' P4 counter effects wait to be settled."),
    ("sluice_worker_megaflows_presettled_total", "counter", "worker, core", "Megaflows settled a slice at a time ahead of a counter read or a state change."),
    ("sluice_worker_megaflows_installed_total", "counter", "worker, core", "Megaflows installed."),
    ("sluice_worker_megaflows_removed_total", "counter", "worker, core, reason", "Megaflows removed: idle, evicted, invalidated."),
    ("sluice_worker_megaflows_stale_found_total", "counter", "worker, core", "Megaflows a state change made stale that a lookup found before the purge removed them (removed then; counted as invalidated too)."),
    ("sluice_worker_to_cpu_packets_total", "counter", "worker, core", "Packets sent to the controller (packet-in)."),
    ("sluice_worker_from_cpu_packets_total", "counter", "worker, core", "Packets injected by the controller (packet-out)."),
    ("sluice_worker_digest_samples_total", "counter", "worker, core, result", "Digest samples: sent to control, or lost (ring full)."),
    ("sluice_worker_mailbox_depth", "gauge", "worker, core", "Control commands waiting in the worker's ring."),
    ("sluice_drops_total", "counter", "worker, core, reason", "Packets dropped, by reason (every reason, zero or not)."),
    ("sluice_mempool_mbufs", "gauge", "", "Mbufs in the packet mempool."),
    ("sluice_mempool_in_use_mbufs", "gauge", "", "Mbufs taken from the packet mempool now."),
    ("sluice_p4runtime_writes_total", "counter", "", "P4Runtime Write RPCs."),
    ("sluice_p4runtime_updates_total", "counter", "result", "Updates in them: ok or error."),
    ("sluice_p4runtime_reads_total", "counter", "", "P4Runtime Read RPCs."),
    (WRITE_DURATION, "histogram", "", "P4Runtime Write latency, until every worker has the change."),
    ("sluice_p4runtime_packet_outs_total", "counter", "result", "Packet-outs: injected, or dropped."),
    ("sluice_p4runtime_packet_ins_total", "counter", "result", "Packet-ins: delivered, or dropped."),
    ("sluice_p4runtime_digest_lists_total", "counter", "result", "DigestLists: delivered, or dropped."),
    ("sluice_p4runtime_idle_notifications_total", "counter", "result", "IdleTimeoutNotifications: delivered, or dropped."),
    ("sluice_p4_table_entries", "gauge", "table", "Entries in each table of the running program."),
    ("sluice_p4_table_size", "gauge", "table", "Capacity of each table."),
    ("sluice_p4_meter_packets_total", "counter", "meter, color", "Packets each meter array colored green, yellow or red."),
    ("sluice_p4_meter_bytes_total", "counter", "meter, color", "Bytes each meter array colored."),
    ("sluice_offload_rules", "gauge", "port", "rte_flow rules the offload manager has on the port."),
    ("sluice_offload_mode_rules", "gauge", "mode", "rte_flow rules by mode: full (the NIC executes the actions), partial (the NIC marks)."),
    ("sluice_offload_megaflows", "gauge", "", "Megaflows with rte_flow rules."),
    ("sluice_offload_rounds_total", "counter", "", "Rounds of the offload manager."),
    ("sluice_offload_rules_created_total", "counter", "mode", "rte_flow rules created."),
    ("sluice_offload_rules_destroyed_total", "counter", "cause", "rte_flow rules destroyed: expired (their megaflow left) or write (a state change made them stale; before it applied)."),
    ("sluice_offload_refused_total", "counter", "reason", "Megaflows without an rte_flow form, by reason (full_ prefix: their full offload only)."),
    ("sluice_offload_failures_total", "counter", "reason", "Device refusals by call, mode and errno (create_full:ENOTSUP), and port_budget."),
    ("sluice_offload_hw_packets_total", "counter", "", "Packets NICs handled for full-offload rules (credited to their megaflows)."),
    ("sluice_offload_hw_bytes_total", "counter", "", "Bytes of those packets."),
    ("sluice_offload_meters", "gauge", "", "Meter objects (rte_mtr) of metered full-offload rules."),
    ("sluice_offload_meter_demotions_total", "counter", "", "Metered full rules destroyed because another megaflow came to execute their meter cell (offloaded again partially)."),
    ("sluice_worker_mark_misses_total", "counter", "worker, core", "Packets whose NIC flow mark named no live megaflow of the worker (looked up as usual)."),
    (
        "sluice_port_policed_packets_total",
        "counter",
        "port, direction",
        "Packets the port's ingress policer or egress rate limit dropped.",
    ),
    ("sluice_qos_rebalance_rounds_total", "counter", "", "Rounds of the meter and policer share balancer (2+ workers)."),
    ("sluice_qos_share_moves_total", "counter", "", "Workers' shares of meters and policers moved by the balancer."),
    ("sluice_qos_rebalance_skipped_total", "counter", "", "Balancer rounds skipped: a worker did not take the command."),
    ("sluice_qos_shared_rates", "gauge", "", "Configured meter cells and policers the balancer splits between workers."),
    ("sluice_app_mode", "gauge", "mode", "The built-in app's mode: 1 for the current one (active, stepped_back, idle, off)."),
    ("sluice_app_learned_macs", "gauge", "", "MACs the built-in app has learned and not yet aged out."),
    ("sluice_app_events_total", "counter", "event", "What the built-in app did: learned, moved, aged, table_full, static_conflict, write_error, packet_in, stepped_back, took_over."),
];

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// The process's recorder (installed once).
fn handle() -> Result<&'static PrometheusHandle, String> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .idle_timeout(MetricKindMask::COUNTER | MetricKindMask::GAUGE, Some(Duration::from_secs(1)))
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(WRITE_DURATION.into()),
                    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0],
                )
                .map_err(|e| e.to_string())?
                .build_recorder();
            let h = recorder.handle();
            metrics::set_global_recorder(recorder)
                .map_err(|e| format!("a metrics recorder is installed already: {e}"))?;
            // Registered now, so it is exported (count 0) before the first write.
            let _ = metrics::histogram!(WRITE_DURATION);
            for (name, kind, _, help) in FAMILIES {
                match *kind {
                    "counter" => metrics::describe_counter!(*name, *help),
                    "gauge" => metrics::describe_gauge!(*name, *help),
                    _ => metrics::describe_histogram!(*name, metrics::Unit::Seconds, *help),
                }
            }
            Ok(h)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Refresh every series from the switch's counters.
pub fn refresh(s: &Switch) {
    let r = s.dp.report();
    let off = s.dp.offload().lock().stats();
    gauge!("sluice_build_info", "version" => s.build.version, "git_rev" => s.build.git_rev,
        "dpdk_version" => dpdk_sys::runtime_version())
    .set(1.0);
    gauge!("sluice_uptime_seconds").set(r.elapsed_seconds);
    for p in &r.ports {
        let l = [("port", p.name.clone())];
        counter!("sluice_port_rx_packets_total", &l).absolute(p.rx_packets);
        counter!("sluice_port_tx_packets_total", &l).absolute(p.tx_packets);
        counter!("sluice_port_rx_bytes_total", &l).absolute(p.rx_bytes);
        counter!("sluice_port_tx_bytes_total", &l).absolute(p.tx_bytes);
        counter!("sluice_port_rx_dropped_total", &l).absolute(p.rx_missed);
        counter!("sluice_port_rx_errors_total", &l).absolute(p.rx_errors);
        counter!("sluice_port_tx_errors_total", &l).absolute(p.tx_errors);
        counter!("sluice_port_rx_nombuf_total", &l).absolute(p.rx_nombuf);
        counter!("sluice_port_worker_rx_packets_total", &l).absolute(p.sw_rx_packets);
        counter!("sluice_port_worker_tx_packets_total", &l).absolute(p.sw_tx_packets);
        gauge!("sluice_port_link_up", &l).set(if p.link_up { 1.0 } else { 0.0 });
        gauge!("sluice_port_rte_flow_capable", &l).set(if p.rte_flow == "capable" { 1.0 } else { 0.0 });
        gauge!("sluice_offload_rules", &l).set(off.rules_per_port.get(&p.dpdk_port).copied().unwrap_or(0) as f64);
        for (dir, n) in [("ingress", p.policed_rx), ("egress", p.policed_tx)] {
            counter!("sluice_port_policed_packets_total", "port" => p.name.clone(), "direction" => dir).absolute(n);
        }
    }
    counter!("sluice_qos_rebalance_rounds_total").absolute(s.qos.rounds.load(Ordering::Relaxed));
    counter!("sluice_qos_share_moves_total").absolute(s.qos.moves.load(Ordering::Relaxed));
    counter!("sluice_qos_rebalance_skipped_total").absolute(s.qos.skipped.load(Ordering::Relaxed));
    gauge!("sluice_qos_shared_rates").set(s.qos.tracked.load(Ordering::Relaxed) as f64);
    // The app's families exist whether or not it runs (mode "off", zero counts).
    let app = s.app.as_ref().map(|h| &*h.stats);
    let mode = app.map_or("off", crate::app::AppStats::mode_name);
    for m in ["active", "stepped_back", "idle", "off"] {
        gauge!("sluice_app_mode", "mode" => m).set(if m == mode { 1.0 } else { 0.0 });
    }
    let none = crate::app::AppStats::default();
    let app = app.unwrap_or(&none);
    gauge!("sluice_app_learned_macs").set(app.learned_now.load(Ordering::Relaxed) as f64);
    for (event, n) in app.events() {
        counter!("sluice_app_events_total", "event" => event).absolute(n);
    }
    for (port, xs) in s.dp.port_xstats() {
        for (name, v) in xs {
            counter!("sluice_port_xstat_total", "port" => port.clone(), "xstat" => name).absolute(v);
        }
    }
    let control = s.dp.control();
    for w in &r.workers {
        let l = [("worker", w.worker.to_string()), ("core", w.core.to_string())];
        counter!("sluice_worker_rx_packets_total", &l).absolute(w.rx_packets);
        counter!("sluice_worker_tx_packets_total", &l).absolute(w.tx_packets);
        counter!("sluice_worker_busy_cycles_total", &l).absolute(w.busy_cycles);
        counter!("sluice_worker_idle_cycles_total", &l).absolute(w.idle_cycles);
        gauge!("sluice_worker_cycles_per_packet", &l).set(w.cycles_per_packet);
        let c = &w.cache;
        let by_path = [
            ("emc", c.emc_hits),
            ("dpcls", c.dpcls_hits),
            ("upcall", c.upcalls),
            ("uncacheable", c.uncacheable),
            ("offload", c.mark_hits),
        ];
        for (path, n) in by_path {
            let l = [l[0].clone(), l[1].clone(), ("path", path.to_string())];
            counter!("sluice_worker_packets_total", &l).absolute(n);
        }
        counter!("sluice_worker_subtables_searched_total", &l).absolute(c.subtables_searched);
        counter!("sluice_worker_packets_sent_whole_total", &l).absolute(c.sent_whole);
        counter!("sluice_worker_mark_misses_total", &l).absolute(c.mark_misses);
        gauge!("sluice_worker_megaflows", &l).set(c.megaflows as f64);
        gauge!("sluice_worker_subtables", &l).set(c.subtables as f64);
        gauge!("sluice_worker_megaflows_unsettled", &l).set(c.unsettled as f64);
        counter!("sluice_worker_megaflows_presettled_total", &l).absolute(c.presettled);
        counter!("sluice_worker_megaflows_installed_total", &l).absolute(c.installed);
        for (reason, n) in [("idle", c.expired), ("evicted", c.evicted), ("invalidated", c.invalidated)] {
            let l = [l[0].clone(), l[1].clone(), ("reason", reason.to_string())];
            counter!("sluice_worker_megaflows_removed_total", &l).absolute(n);
        }
        counter!("sluice_worker_megaflows_stale_found_total", &l).absolute(c.stale_found);
        counter!("sluice_worker_to_cpu_packets_total", &l).absolute(w.to_cpu);
        counter!("sluice_worker_from_cpu_packets_total", &l).absolute(w.from_cpu);
        for (result, n) in [("sent", w.digests), ("lost", w.digest_drops), ("held", w.digests_held)] {
            let l = [l[0].clone(), l[1].clone(), ("result", result.to_string())];
            counter!("sluice_worker_digest_samples_total", &l).absolute(n);
        }
        gauge!("sluice_worker_mailbox_depth", &l).set(control.mailbox_depth(w.worker) as f64);
        for (reason, n) in &w.drops {
            let l = [l[0].clone(), l[1].clone(), ("reason", reason.to_string())];
            counter!("sluice_drops_total", &l).absolute(*n);
        }
    }
    gauge!("sluice_offload_megaflows").set(off.offloaded_flows as f64);
    gauge!("sluice_offload_mode_rules", "mode" => "full").set(off.rules_full as f64);
    gauge!("sluice_offload_mode_rules", "mode" => "partial").set(off.rules_partial as f64);
    counter!("sluice_offload_rounds_total").absolute(off.rounds);
    counter!("sluice_offload_rules_created_total", "mode" => "full").absolute(off.created_full);
    counter!("sluice_offload_rules_created_total", "mode" => "partial").absolute(off.created_partial);
    counter!("sluice_offload_rules_destroyed_total", "cause" => "expired")
        .absolute(off.destroyed.saturating_sub(off.destroyed_by_writes));
    counter!("sluice_offload_rules_destroyed_total", "cause" => "write").absolute(off.destroyed_by_writes);
    // Every translation refusal from zero, then whatever else was counted.
    for reason in sluice_offload::manager::refusal_reasons() {
        let n = off.refused.get(reason).copied().unwrap_or(0);
        counter!("sluice_offload_refused_total", "reason" => reason).absolute(n);
    }
    for (reason, n) in off.refused.iter().filter(|(r, _)| !sluice_offload::manager::refusal_reasons().any(|x| x == *r))
    {
        counter!("sluice_offload_refused_total", "reason" => reason.clone()).absolute(*n);
    }
    counter!("sluice_offload_failures_total", "reason" => "port_budget")
        .absolute(off.failures.get("port_budget").copied().unwrap_or(0));
    for (reason, n) in off.failures.iter().filter(|(r, _)| *r != "port_budget") {
        counter!("sluice_offload_failures_total", "reason" => reason.clone()).absolute(*n);
    }
    counter!("sluice_offload_hw_packets_total").absolute(off.hw_packets);
    counter!("sluice_offload_hw_bytes_total").absolute(off.hw_bytes);
    gauge!("sluice_offload_meters").set(off.meters as f64);
    counter!("sluice_offload_meter_demotions_total").absolute(off.meter_demotions);
    gauge!("sluice_mempool_mbufs").set(f64::from(r.mempool_size));
    gauge!("sluice_mempool_in_use_mbufs").set(f64::from(r.mempool_in_use));
    if let Some(p) = &s.p4rt {
        let st = &p.stats;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        counter!("sluice_p4runtime_writes_total").absolute(get(&st.writes));
        counter!("sluice_p4runtime_reads_total").absolute(get(&st.reads));
        let errors = get(&st.update_errors);
        counter!("sluice_p4runtime_updates_total", "result" => "ok").absolute(get(&st.updates).saturating_sub(errors));
        counter!("sluice_p4runtime_updates_total", "result" => "error").absolute(errors);
        let pairs = [
            ("sluice_p4runtime_packet_outs_total", "injected", &st.packet_outs, &st.packet_out_drops),
            ("sluice_p4runtime_packet_ins_total", "delivered", &st.packet_ins, &st.packet_in_drops),
            ("sluice_p4runtime_digest_lists_total", "delivered", &st.digest_lists, &st.digest_list_drops),
            (
                "sluice_p4runtime_idle_notifications_total",
                "delivered",
                &st.idle_notifications,
                &st.idle_notification_drops,
            ),
        ];
        for (name, ok, good, bad) in pairs {
            counter!(name, "result" => ok).absolute(get(good));
            counter!(name, "result" => "dropped").absolute(get(bad));
        }
        if let Some(sum) = p.pipeline_summary() {
            for t in sum.tables {
                gauge!("sluice_p4_table_entries", "table" => t.name.clone()).set(t.entries as f64);
                gauge!("sluice_p4_table_size", "table" => t.name).set(t.size as f64);
            }
        }
        for (meter, counts) in p.meter_totals() {
            for (color, (pk, by)) in ["green", "yellow", "red"].into_iter().zip(counts) {
                counter!("sluice_p4_meter_packets_total", "meter" => meter.clone(), "color" => color).absolute(pk);
                counter!("sluice_p4_meter_bytes_total", "meter" => meter.clone(), "color" => color).absolute(by);
            }
        }
    }
}

/// A running metrics endpoint.
#[derive(Debug)]
pub struct Server {
    /// The bound address.
    pub addr: SocketAddr,
    _thread: Background,
}

impl Server {
    /// Serve `GET /metrics` for `switch` on `addr`.
    pub fn start(switch: Arc<Switch>, addr: SocketAddr) -> Result<Server, String> {
        let handle = handle()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the metrics runtime: {e}"))?;
        let listener = rt.block_on(tokio::net::TcpListener::bind(addr)).map_err(|e| {
            format!("metrics: cannot listen on {addr}: {e} (set [metrics] address, or enabled = false)")
        })?;
        let bound = listener.local_addr().map_err(|e| format!("metrics: {e}"))?;
        let app = axum::Router::new()
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let s = Arc::clone(&switch);
                    async move {
                        // Reading the workers may wait on their mailboxes: off the runtime.
                        let body = tokio::task::spawn_blocking(move || {
                            refresh(&s);
                            handle.render()
                        })
                        .await
                        .unwrap_or_default();
                        ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
                    }
                }),
            )
            .route("/", axum::routing::get(|| async { "Sluice metrics: GET /metrics\n" }));
        let thread = Background::spawn("sluice-metrics", move |stop| {
            rt.block_on(async move {
                if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop.stopped()).await {
                    eprintln!("sluiced: metrics server failed: {e}");
                }
            });
        })
        .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
        Ok(Server { addr: bound, _thread: thread })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/metrics.md documents exactly the families exported, with their types.
    #[test]
    fn the_reference_table_matches_the_families() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md")).unwrap();
        let documented: Vec<(String, String)> = doc
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                Some((name.to_owned(), cells.get(2)?.to_string()))
            })
            .collect();
        let code: Vec<(String, String)> = FAMILIES.iter().map(|(n, t, _, _)| (n.to_string(), t.to_string())).collect();
        assert_eq!(documented, code);
        let mut names: Vec<&str> = FAMILIES.iter().map(|f| f.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAMILIES.len(), "no family twice");
        for (n, t, _, _) in FAMILIES {
            assert!(n.starts_with("sluice_"), "{n}");
            assert_eq!(*t == "counter", n.ends_with("_total"), "{n}: counters and only counters end in _total");
        }
    }
}

//! `sluicectl`'s human tables.

use std::fmt::Write as _;

use sluice_proto::sluice::mgmt::v1 as pb;

pub fn info(r: &pb::Info) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "sluiced {} (git {}), {}", r.version, r.git_rev, r.dpdk_version);
    let _ = writeln!(s, "uptime: {:.1} s", r.uptime_seconds);
    let _ = writeln!(s, "workers on cores {:?}, control on core {}", r.worker_cores, r.control_core);
    let _ = writeln!(s, "TSC: {} Hz", r.tsc_hz);
    let _ = writeln!(s, "mempool: {} of {} mbufs in use", r.mempool_in_use, r.mempool_size);
    let or_off = |a: &str| if a.is_empty() { "off".to_owned() } else { a.to_owned() };
    let _ = writeln!(s, "P4Runtime: {}", or_off(&r.p4runtime_address));
    let _ = writeln!(s, "metrics: {}", or_off(&r.metrics_address));
    s
}

pub fn ports(r: &pb::ListPortsResponse) -> String {
    let mut s = format!(
        "{:<5} {:<14} {:<10} {:>7} {:<5} {:>6} {:>6} {:>4} {:>4}  {}\n",
        "index", "name", "driver", "p4_port", "link", "speed", "mtu", "rxq", "txq", "devargs"
    );
    for p in &r.ports {
        let _ = writeln!(
            s,
            "{:<5} {:<14} {:<10} {:>7} {:<5} {:>6} {:>6} {:>4} {:>4}  {}",
            p.index,
            p.name,
            p.driver,
            p.p4_port,
            if p.link_up { "up" } else { "down" },
            p.link_speed_mbps,
            p.mtu,
            p.rx_queues,
            p.tx_queues,
            p.devargs
        );
    }
    s
}

pub fn port_stats(r: &pb::ListPortsResponse) -> String {
    let mut s = format!(
        "{:<14} {:>14} {:>14} {:>16} {:>16} {:>10} {:>8} {:>8} {:>14} {:>14}\n",
        "port",
        "rx_packets",
        "tx_packets",
        "rx_bytes",
        "tx_bytes",
        "rx_missed",
        "errors",
        "nombuf",
        "worker_rx",
        "worker_tx"
    );
    for p in &r.ports {
        let c = p.counters.unwrap_or_default();
        let _ = writeln!(
            s,
            "{:<14} {:>14} {:>14} {:>16} {:>16} {:>10} {:>8} {:>8} {:>14} {:>14}",
            p.name,
            c.rx_packets,
            c.tx_packets,
            c.rx_bytes,
            c.tx_bytes,
            c.rx_missed,
            c.rx_errors + c.tx_errors,
            c.rx_nombuf,
            c.sw_rx_packets,
            c.sw_tx_packets
        );
    }
    s
}

pub fn policer(p: Option<&pb::Policer>) -> String {
    let Some(p) = p else { return "none".into() };
    let (rate, burst) = if p.unit == "packets" { ("pkt/s", "pkt") } else { ("B/s", "B") };
    if p.eir == 0 {
        format!("srTCM cir {} {rate} cbs {} {burst}", p.cir, p.cbs)
    } else {
        format!("trTCM cir {} {rate} cbs {} {burst} eir {} {rate} ebs {} {burst}", p.cir, p.cbs, p.eir, p.ebs)
    }
}

pub fn port_qos(r: &pb::ListPortsResponse) -> String {
    let mut s = format!("{:<14} {:<9} {:>14}  {}\n", "port", "direction", "policed", "policer");
    for p in &r.ports {
        let c = p.counters.unwrap_or_default();
        for (dir, pol, n) in
            [("ingress", &p.ingress_policer, c.policed_rx_packets), ("egress", &p.egress_policer, c.policed_tx_packets)]
        {
            let _ = writeln!(s, "{:<14} {:<9} {:>14}  {}", p.name, dir, n, policer(pol.as_ref()));
        }
    }
    s
}

pub fn meters(r: &pb::ListMetersResponse) -> String {
    let mut s = String::new();
    for m in &r.meters {
        let kind = if m.kind == "direct" { format!("direct on {}", m.table) } else { format!("{} cells", m.size) };
        let _ = writeln!(s, "{} ({kind}, {}): {} configured", m.name, m.unit, m.cells.len());
        if m.cells.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "  {:>8} {:>12} {:>10} {:>12} {:>10} {:>14} {:>14} {:>14}",
            "cell", "cir", "cburst", "pir", "pburst", "green", "yellow", "red"
        );
        for c in &m.cells {
            let k = c.config.unwrap_or_default();
            let col = |i: usize| format!("{}/{}B", c.packets.get(i).unwrap_or(&0), c.bytes.get(i).unwrap_or(&0));
            let _ = writeln!(
                s,
                "  {:>8} {:>12} {:>10} {:>12} {:>10} {:>14} {:>14} {:>14}",
                c.index,
                k.cir,
                k.cburst,
                k.pir,
                k.pburst,
                col(0),
                col(1),
                col(2)
            );
        }
    }
    if r.meters.is_empty() {
        s.push_str("the program has no meters\n");
    }
    s
}

pub fn pmd_stats(r: &pb::ListWorkersResponse) -> String {
    let mut s = String::new();
    for w in &r.workers {
        let total = (w.busy_cycles + w.idle_cycles).max(1);
        let pct = |n: u64| if w.rx_packets == 0 { 0.0 } else { 100.0 * n as f64 / w.rx_packets as f64 };
        let _ = writeln!(s, "worker {} (core {}):", w.id, w.core);
        let _ = writeln!(s, "  packets received: {}", w.rx_packets);
        let _ = writeln!(s, "  packets sent: {}", w.tx_packets);
        let _ = writeln!(s, "  emc hits: {} ({:.1}%)", w.emc_hits, pct(w.emc_hits));
        let _ = writeln!(
            s,
            "  dpcls hits: {} ({:.1}%), {:.2} subtables searched per hit",
            w.dpcls_hits,
            pct(w.dpcls_hits),
            w.subtables_per_dpcls_hit
        );
        let _ = writeln!(s, "  upcalls (pipeline, megaflow installed): {} ({:.1}%)", w.upcalls, pct(w.upcalls));
        let _ = writeln!(s, "  uncacheable (pipeline every time): {} ({:.1}%)", w.uncacheable, pct(w.uncacheable));
        let _ = writeln!(s, "  offloaded: {}", w.offloaded);
        let _ = writeln!(
            s,
            "  sent in whole bursts (one port, no per-packet dispatch): {} ({:.1}%)",
            w.sent_whole,
            pct(w.sent_whole)
        );
        let _ = writeln!(
            s,
            "  megaflows: {} in {} subtables; evicted {}, expired {}, invalidated {}",
            w.megaflows, w.subtables, w.evicted, w.expired, w.invalidated
        );
        let _ = writeln!(s, "  to controller: {}, from controller: {}", w.to_cpu, w.from_cpu);
        let mut drops: Vec<_> = w.drops.iter().filter(|(_, n)| **n > 0).collect();
        drops.sort();
        let d: Vec<String> = drops.iter().map(|(r, n)| format!("{r}={n}")).collect();
        let _ = writeln!(s, "  drops: {}", if d.is_empty() { "none".into() } else { d.join(" ") });
        let _ = writeln!(
            s,
            "  busy cycles: {} ({:.1}%), idle cycles: {} ({:.1}%)",
            w.busy_cycles,
            100.0 * w.busy_cycles as f64 / total as f64,
            w.idle_cycles,
            100.0 * w.idle_cycles as f64 / total as f64
        );
        let _ = writeln!(s, "  cycles per packet: {:.1}", w.cycles_per_packet);
    }
    s
}

pub fn pmd_rxq(r: &pb::ListWorkersResponse) -> String {
    let mut s = String::new();
    for w in &r.workers {
        let _ = writeln!(s, "worker {} (core {}):", w.id, w.core);
        if w.rxqs.is_empty() {
            let _ = writeln!(s, "  (no rx queues)");
        }
        for q in &w.rxqs {
            let _ = writeln!(s, "  port: {:<14} queue-id: {:>3}  packets: {}", q.port, q.queue, q.packets);
        }
    }
    s
}

pub fn flows(r: &pb::DumpFlowsResponse) -> String {
    let mut s = String::new();
    for f in &r.flows {
        let _ = writeln!(
            s,
            "worker={} id={}{} packets={} bytes={} age={:.3}s used={:.3}s ago: {} actions: {}",
            f.worker,
            f.id,
            if f.offload_mode.is_empty() { String::new() } else { format!(" offloaded={}", f.offload_mode) },
            f.packets,
            f.bytes,
            f.age_ms as f64 / 1000.0,
            f.idle_ms as f64 / 1000.0,
            f.r#match,
            f.actions
        );
    }
    let _ = writeln!(s, "{} megaflow(s) shown of {}", r.flows.len(), r.total);
    s
}

pub fn pipeline(p: &pb::PipelineInfo) -> String {
    if !p.loaded {
        return "no P4 program is loaded (cross-connect mode)\n".into();
    }
    let mut s = format!("program {} (cookie {})\n", p.program, p.cookie);
    let _ = writeln!(s, "{:<40} {:>9} {:>9}  keys", "table", "entries", "size");
    for t in &p.tables {
        let _ = writeln!(s, "{:<40} {:>9} {:>9}  {}", t.name, t.entries, t.size, t.keys.join(" "));
    }
    let _ = writeln!(
        s,
        "{} counter(s), {} meter(s), {} register(s), {} digest(s)",
        p.counters, p.meters, p.registers, p.digests
    );
    s
}

pub fn offload(o: &pb::OffloadStatus) -> String {
    let mut s = format!(
        "offload: {} ({}; min {} pps), {} megaflow(s) offloaded: {} full rule(s), {} partial rule(s)\n",
        if o.enabled { "on" } else { "off" },
        if o.full { "full, then partial" } else { "partial only" },
        o.min_pps,
        o.offloaded_flows,
        o.rules_full,
        o.rules_partial
    );
    let _ = writeln!(
        s,
        "  rounds {}, created {} full + {} partial, destroyed {} ({} by writes), hardware {} packets {} bytes",
        o.rounds, o.created_full, o.created_partial, o.destroyed, o.destroyed_by_writes, o.hw_packets, o.hw_bytes
    );
    if o.meters > 0 || o.meter_demotions > 0 {
        let _ = writeln!(s, "  meter objects {}, demoted when their cell was shared {}", o.meters, o.meter_demotions);
    }
    for p in &o.ports {
        let _ = writeln!(
            s,
            "  port {:<14} rte_flow {:<12} rules {}{}",
            p.port,
            if p.capable { "capable" } else { "not capable" },
            p.rules,
            if p.reason.is_empty() { String::new() } else { format!("  ({})", p.reason) }
        );
    }
    for (what, map) in [("refused", &o.refused), ("failed", &o.failures)] {
        if !map.is_empty() {
            let mut v: Vec<_> = map.iter().collect();
            v.sort();
            let list: Vec<String> = v.iter().map(|(k, n)| format!("{k}={n}")).collect();
            let _ = writeln!(s, "  {what}: {}", list.join(" "));
        }
    }
    for r in &o.rules {
        let _ = writeln!(
            s,
            "  worker={} flow={} port={} {}{} hw_packets={}: {}",
            r.worker,
            r.flow,
            r.port,
            r.mode,
            r.mark.map(|m| format!(" mark={m}")).unwrap_or_default(),
            r.hw_packets,
            r.rule
        );
    }
    s
}

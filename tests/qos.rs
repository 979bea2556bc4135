//! End to end: QoS on a running `sluiced` — port policers from the config file and
//! set live with `sluicectl`, drops counted as `policed`; P4 meters of onos_basic
//! configured with `sluicectl meter`, their colors feeding the program's drops.
//! Checks are on counts, not on timing (rates are measured in `perf/`).

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn counters(socket: &Path, port: &str) -> Value {
    let ports = ctl_json(socket, &["port", "list"]);
    ports["ports"].as_array().unwrap().iter().find(|p| p["name"] == port).unwrap()["counters"].clone()
}

#[test]
fn port_policers_from_the_config_and_set_live_drop_what_is_over_the_rate() {
    let s = Scratch::new("policer");
    s.write_pcap("in.pcap", &assorted_frames(64));
    let cfg = s.write_config(&format!(
        "[mempool]\nmbufs = 16383\n\n\
         [[port]]\nname = \"a\"\ndevargs = \"net_pcap_qa{n},rx_pcap={d}/in.pcap,infinite_rx=1\"\n\
         ingress_policer = {{ cir = 64000, cbs = 4000 }}\n\n\
         [[port]]\nname = \"b\"\ndevargs = \"net_null_qb{n},no-rx=1\"\n\n\
         [[xconnect]]\nfrom = \"a\"\nto = \"b\"\n",
        n = std::process::id(),
        d = s.dir.display()
    ));
    let d = s.spawn(&cfg);
    let sock = s.socket();
    std::thread::sleep(Duration::from_millis(500));
    // Millions of packets per second offered to 64 kB/s: nearly all are policed.
    let ports = ctl_json(&sock, &["port", "list"]);
    let (a, b) = (&ports["ports"][0]["counters"], ports["ports"][1]["counters"].clone());
    let (rx, policed) = (u(&a["sw_rx_packets"]), u(&a["policed_rx_packets"]));
    assert!(rx > 10_000 && policed * 100 > rx * 95, "policed {policed} of {rx}");
    // (Read while forwarding, one counter after another: the bursts received between
    // the reads of rx, policed and tx make a difference of a few bursts; CI saw 3.)
    let sent = u(&b["sw_tx_packets"]);
    assert!((sent + policed).abs_diff(rx) <= 8 * 32, "what was not policed was sent: {sent} + {policed} vs {rx}");
    let pmd = ctl_json(&sock, &["pmd", "stats"]);
    assert!(u(&pmd["workers"][0]["drops"]["policed"]) >= policed, "{pmd}");
    let (code, out, _) = ctl(&sock, &["port", "qos"]);
    assert_eq!(code, 0);
    assert!(out.contains("srTCM cir 64000 B/s cbs 4000 B"), "{out}");

    // Bad input is refused with a reason and changes nothing.
    let (code, _, err) = ctl(&sock, &["port", "policer", "a", "ingress", "--cir", "0", "--cbs", "10"]);
    assert_eq!(code, 1);
    assert!(err.contains("cir and cbs must be > 0"), "{err}");
    let (code, _, err) = ctl(&sock, &["port", "policer", "nope", "egress", "--cir", "1", "--cbs", "1"]);
    assert!(code == 1 && err.contains("no port named \"nope\""), "{err}");
    let (code, _, err) = ctl(&sock, &["port", "policer", "a", "ingress", "--cir", "5", "--cbs", "5", "--ebs", "3"]);
    assert!(code == 1 && err.contains("ebs needs an excess rate"), "{err}");
    let qos = ctl_json(&sock, &["port", "list"]);
    assert_eq!(u(&qos["ports"][0]["ingress_policer"]["cir"]), 64000, "{qos}");

    // Live: a's policer off, b's egress limited to 1000 packets/s (RFC 4115 with
    // an excess rate): now b's egress policer drops, a's no more.
    let r = ctl_json(&sock, &["port", "policer", "a", "ingress", "--clear"]);
    assert!(r.get("ingress_policer").is_none(), "{r}");
    let r = ctl_json(
        &sock,
        &["port", "policer", "b", "egress", "--cir", "500", "--cbs", "50", "--eir", "500", "--ebs", "50", "--packets"],
    );
    assert_eq!(r["egress_policer"]["unit"], "packets", "{r}");
    let (a1, b1) = (counters(&sock, "a"), counters(&sock, "b"));
    std::thread::sleep(Duration::from_millis(300));
    let (a2, b2) = (counters(&sock, "a"), counters(&sock, "b"));
    assert_eq!(u(&a2["policed_rx_packets"]), u(&a1["policed_rx_packets"]), "a polices no more");
    let sent = u(&b2["sw_tx_packets"]) - u(&b1["sw_tx_packets"]);
    let dropped = u(&b2["policed_tx_packets"]) - u(&b1["policed_tx_packets"]);
    assert!(dropped > 10_000 && dropped > 100 * sent, "b: {sent} sent, {dropped} policed");
    let (code, out, _) = ctl(&sock, &["port", "qos"]);
    assert!(code == 0 && out.contains("trTCM cir 500 pkt/s cbs 50 pkt eir 500 pkt/s ebs 50 pkt"), "{out}");
    assert_eq!(d.stop(), 0);
}

#[test]
fn p4_meters_are_configured_and_reported_through_sluicectl() {
    let Some(corpus) = corpus() else { return };
    let s = Scratch::new("meters");
    // Everything from port 1 to port 2, whose egress meter (bytes) drops RED.
    let frame = udp4("00:00:00:00:00:02", "00:00:00:00:00:01", "10.0.0.1", "10.0.0.2", 64, &[7; 86]);
    s.write_pcap("in.pcap", &[frame]);
    std::fs::write(
        s.path("e.txt"),
        "table_add table0 set_egress_port 0&&&0 0&&&0 0&&&0 0&&&0 0&&&0 0&&&0 0&&&0 0&&&0 0&&&0 => 2 1\n",
    )
    .unwrap();
    let cfg = s.write_config(&format!(
        "[pipeline]\njson = \"{c}/onos_basic/basic.json\"\np4info = \"{c}/onos_basic/basic.p4info.txt\"\n\
         entries = \"e.txt\"\n\n[mempool]\nmbufs = 16383\n\n\
         [[port]]\nname = \"p1\"\np4_port = 1\ndevargs = \"net_pcap_m1{n},rx_pcap={d}/in.pcap,infinite_rx=1\"\n\n\
         [[port]]\nname = \"p2\"\np4_port = 2\ndevargs = \"net_null_m2{n},no-rx=1\"\n",
        c = corpus.display(),
        n = std::process::id(),
        d = s.dir.display()
    ));
    let d = s.spawn(&cfg);
    let sock = s.socket();
    let meter = "egress.port_meters_egress.egress_port_meter";
    let all = ctl_json(&sock, &["meter", "list"]);
    let m = all["meters"].as_array().unwrap().iter().find(|m| m["name"] == meter).unwrap();
    assert_eq!((m["kind"].as_str(), m["unit"].as_str()), (Some("indexed"), Some("bytes")), "{m}");
    assert_eq!(m["cells"], serde_json::json!([]), "nothing configured yet: {m}");

    // 128-byte frames (millions per second) against 100 kB/s: mostly red, dropped.
    let r = ctl_json(
        &sock,
        &["meter", "set", meter, "2", "--cir", "100000", "--cburst", "3000", "--pir", "100000", "--pburst", "3000"],
    );
    let cell = &r["meters"][0]["cells"][0];
    assert_eq!((u(&cell["index"]), u(&cell["config"]["cir"])), (2, 100000), "{r}");
    let drops0 = u(&ctl_json(&sock, &["pmd", "stats"])["workers"][0]["drops"]["p4_egress_drop"]);
    std::thread::sleep(Duration::from_millis(400));
    let r = ctl_json(&sock, &["meter", "list", meter]);
    let cell = &r["meters"][0]["cells"][0];
    let (green, red) = (u(&cell["packets"][0]), u(&cell["packets"][2]));
    assert!(green > 0 && red > 20 * green, "green {green}, red {red}");
    let drops1 = u(&ctl_json(&sock, &["pmd", "stats"])["workers"][0]["drops"]["p4_egress_drop"]);
    assert!(drops1 - drops0 >= red / 2, "RED packets are dropped by the program: {drops0} -> {drops1}, red {red}");
    // Cached all the same: the flow's megaflow executes the meter per packet and
    // branches on its color.
    let w0 = ctl_json(&sock, &["pmd", "stats"])["workers"][0].clone();
    std::thread::sleep(Duration::from_millis(200));
    let w1 = ctl_json(&sock, &["pmd", "stats"])["workers"][0].clone();
    let hits = |w: &serde_json::Value| u(&w["emc_hits"]) + u(&w["dpcls_hits"]);
    assert!(hits(&w1) > hits(&w0) + 1000, "metered packets hit the cache: {w0} -> {w1}");
    assert_eq!(u(&w1["uncacheable"]), u(&w0["uncacheable"]), "none takes the pipeline every time");
    let flows = ctl_json(&sock, &["flow", "dump"]);
    let metered =
        flows["flows"].as_array().unwrap().iter().filter_map(|f| f["actions"].as_str()).find(|a| a.contains("meter("));
    let metered = metered.unwrap_or_else(|| panic!("no metered megaflow in {flows}"));
    assert!(metered.contains("green{ output:2") && metered.contains("red{ drop(Egress)"), "{metered}");
    let (code, out, _) = ctl(&sock, &["meter", "list"]);
    assert!(code == 0 && out.contains(&format!("{meter} (")) && out.contains("100000"), "{out}");

    // Refusals.
    let bad = |args: &[&str], want: &str| {
        let (code, _, err) = ctl(&sock, args);
        assert!(code == 1 && err.contains(want), "{args:?}: {err}");
    };
    bad(&["meter", "set", meter, "9999", "--cir", "1", "--cburst", "1", "--pir", "1", "--pburst", "1"], "out of range");
    bad(
        &["meter", "set", meter, "2", "--cir", "10", "--cburst", "1", "--pir", "5", "--pburst", "1"],
        "pir must be >= cir",
    );
    bad(&["meter", "set", "nope", "1", "--cir", "1", "--cburst", "1", "--pir", "1", "--pburst", "1"], "no meter named");
    bad(&["meter", "clear", meter, "x"], "give a number");
    let r = ctl_json(&sock, &["meter", "list", meter]);
    assert_eq!(u(&r["meters"][0]["cells"][0]["config"]["cir"]), 100000, "refusals changed nothing");

    // Cleared: GREEN again, nothing dropped by the meter.
    let r = ctl_json(&sock, &["meter", "clear", meter, "all"]);
    assert_eq!(r["meters"][0]["cells"], serde_json::json!([]), "{r}");
    let e0 = u(&ctl_json(&sock, &["pmd", "stats"])["workers"][0]["drops"]["p4_egress_drop"]);
    std::thread::sleep(Duration::from_millis(200));
    let e1 = u(&ctl_json(&sock, &["pmd", "stats"])["workers"][0]["drops"]["p4_egress_drop"]);
    assert_eq!(e0, e1, "an unconfigured meter marks GREEN");
    assert_eq!(d.stop(), 0);
}

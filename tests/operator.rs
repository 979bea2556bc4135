//! End to end: the operator's surface of a running `sluiced` — `sluicectl` over the
//! management socket, `/metrics` parsed by `prometheus_client`'s parser, and ports
//! added and removed while traffic flows through TAP interfaces without a loss.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn port<'a>(ports: &'a Value, name: &str) -> &'a Value {
    ports["ports"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name}: {ports}"))
}

fn names(ports: &Value) -> Vec<String> {
    ports["ports"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()
}

/// A replay port into a sink, cross-connected.
fn xconnect_config(s: &Scratch) -> std::path::PathBuf {
    s.write_pcap("in.pcap", &assorted_frames(64));
    s.write_config(&format!(
        "[mempool]\nmbufs = 16383\n\n\
         [[port]]\nname = \"a\"\ndevargs = \"net_pcap_op{n},rx_pcap={d}/in.pcap,infinite_rx=1\"\n\n\
         [[port]]\nname = \"b\"\ndevargs = \"net_null_op{n},no-rx=1\"\n\n\
         [[xconnect]]\nfrom = \"a\"\nto = \"b\"\n",
        n = std::process::id(),
        d = s.dir.display()
    ))
}

#[test]
fn sluicectl_manages_ports_and_workers_of_a_running_switch() {
    let s = Scratch::new("ctl");
    let cfg = xconnect_config(&s);
    let d = s.spawn(&cfg);
    let sock = s.socket();
    let info = ctl_json(&sock, &["info"]);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(u(&info["worker_cores"][0]), cores().1 as u64);
    assert!(info["dpdk_version"].as_str().unwrap().starts_with("DPDK 22.11"), "{info}");
    assert_eq!(info["p4runtime_address"], d.p4rt.as_str());

    let ports = ctl_json(&sock, &["port", "list"]);
    assert_eq!(names(&ports), ["a", "b"]);
    assert_eq!((port(&ports, "a")["driver"].as_str(), u(&port(&ports, "b")["p4_port"])), (Some("net_pcap"), 1));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let st = ctl_json(&sock, &["port", "stats"]);
    let a_rx = u(&port(&st, "a")["counters"]["rx_packets"]);
    assert!(a_rx > 0 && u(&port(&st, "b")["counters"]["tx_packets"]) > 0, "{st}");
    let (code, out, _) = ctl(&sock, &["port", "stats"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("port ") && out.contains("\na "), "{out}");

    // A port comes and goes while a forwards to b.
    let n = std::process::id();
    let added = ctl_json(&sock, &["port", "add", "c", &format!("net_null_opc{n}"), "--xconnect-to", "b"]);
    assert_eq!((added["name"].as_str(), u(&added["index"])), (Some("c"), 2));
    let rxq = ctl_json(&sock, &["pmd", "rxq"]);
    let polled: Vec<&str> =
        rxq["workers"][0]["rxqs"].as_array().unwrap().iter().map(|q| q["port"].as_str().unwrap()).collect();
    assert_eq!(polled, ["a", "b", "c"]);
    let (code, _, err) = ctl(&sock, &["port", "add", "c", &format!("net_null_opd{n}")]);
    assert_eq!(code, 1, "a duplicate name is refused");
    assert!(err.contains("exists already"), "{err}");
    let (code, _, err) = ctl(&sock, &["port", "add", "d", "net_nosuchdriver0"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot attach devargs"), "{err}");
    assert_eq!(names(&ctl_json(&sock, &["port", "list"])), ["a", "b", "c"], "a refused add changes nothing");
    let (code, out, err) = ctl(&sock, &["port", "del", "c"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("removed port c"), "{out}");
    let (code, _, err) = ctl(&sock, &["port", "del", "c"]);
    assert_eq!((code, err.contains("no port named \"c\"")), (1, true), "{err}");
    // Its slot is reused, counters start from zero.
    let again = ctl_json(&sock, &["port", "add", "c", &format!("net_null_ope{n},no-rx=1")]);
    assert_eq!(u(&again["index"]), 2);
    assert_eq!(u(&again["counters"]["sw_rx_packets"]), 0);

    // Workers.
    let (code, _, err) = ctl(&sock, &["pmd", "rxq-pin", "a", "0", "5"]);
    assert_eq!((code, err.contains("no worker 5")), (1, true), "{err}");
    let (code, _, err) = ctl(&sock, &["pmd", "rxq-pin", "a", "3", "0"]);
    assert_eq!((code, err.contains("no rx queue 3")), (1, true), "{err}");
    assert_eq!(ctl(&sock, &["pmd", "rxq-pin", "a", "0", "0"]).0, 0);
    assert_eq!(ctl(&sock, &["pmd", "rxq-rebalance"]).0, 0);
    let pmd = ctl_json(&sock, &["pmd", "stats"]);
    let w = &pmd["workers"][0];
    assert!(u(&w["rx_packets"]) >= a_rx, "{w}");
    assert_eq!(w["drops"].as_object().unwrap().len(), 12, "every drop reason is listed");
    let (code, out, _) = ctl(&sock, &["pmd", "stats"]);
    assert!(code == 0 && out.contains("cycles per packet:") && out.contains("sent in whole bursts"), "{out}");
    assert!(w["sent_whole"].is_u64(), "{w}");

    // clear-stats: the API's counters restart; a keeps forwarding.
    let before = u(&port(&ctl_json(&sock, &["port", "stats"]), "a")["counters"]["rx_packets"]);
    assert_eq!(ctl(&sock, &["clear-stats"]).0, 0);
    let after = u(&port(&ctl_json(&sock, &["port", "stats"]), "a")["counters"]["rx_packets"]);
    assert!(after < before, "cleared: {after} < {before}");

    // The rest of the surface in cross-connect mode.
    let flows = ctl_json(&sock, &["flow", "dump"]);
    assert_eq!(u(&flows["total"]), 0, "no cache without a pipeline");
    assert!(ctl(&sock, &["pipeline", "show"]).1.contains("no P4 program"));
    let (code, _, err) = ctl(&sock, &["table", "dump", "ipv4_lpm"]);
    assert_eq!((code, err.contains("no P4 program is loaded")), (1, true), "{err}");
    let off = ctl_json(&sock, &["offload", "show"]);
    assert_eq!(off["ports"].as_array().unwrap().len(), 3);
    assert_eq!(off["ports"][0]["capable"], false, "no virtual device implements rte_flow");
    assert_eq!(ctl(&sock, &["log-level", "warning"]).0, 0);
    let (code, _, err) = ctl(&sock, &["log-level", "loud"]);
    assert_eq!((code, err.contains("levels: emerg")), (1, true), "{err}");

    // Exit codes scripts rely on.
    assert_eq!(ctl(&s.path("nope.sock"), &["info"]).0, 3, "unreachable");
    assert!(ctl(&s.path("nope.sock"), &["info"]).2.contains("Is sluiced running?"));
    assert_eq!(ctl(&sock, &["port", "frobnicate"]).0, 2, "bad usage");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&sock).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o660, "the socket is for its owner and group");

    // Restarting with the same config brings the configured ports back (ports added
    // live are not in the file and do not come back).
    assert_eq!(d.stop(), 0);
    assert!(!sock.exists(), "the socket is removed on stop");
    let d = s.spawn(&cfg);
    assert_eq!(names(&ctl_json(&sock, &["port", "list"])), ["a", "b"]);
    assert_eq!(d.stop(), 0);
}

#[test]
fn table_commands_and_flow_dump_on_a_running_program() {
    let Some(corpus) = corpus() else { return };
    let s = Scratch::new("ctl-table");
    let dir = corpus.join("simple_router");
    let route = udp4("00:aa:bb:00:00:00", "00:00:00:00:00:01", "10.0.0.1", "10.0.1.10", 64, b"x");
    s.write_pcap("in.pcap", &[route]);
    let entries = Path::new(env!("CARGO_MANIFEST_DIR")).join("perf/entries/simple_router.txt");
    let cfg = s.write_config(&format!(
        "[pipeline]\njson = \"{}\"\np4info = \"{}\"\nentries = \"{}\"\n\n\
         [mempool]\nmbufs = 16383\n\n\
         [[port]]\nname = \"in\"\np4_port = 1\ndevargs = \"net_pcap_tc{n},rx_pcap={d}/in.pcap,infinite_rx=1\"\n\n\
         [[port]]\nname = \"out\"\np4_port = 2\ndevargs = \"net_null_tc{n},no-rx=1\"\n",
        dir.join("simple_router.json").display(),
        dir.join("simple_router.p4info.txt").display(),
        entries.display(),
        n = std::process::id(),
        d = s.dir.display()
    ));
    let d = s.spawn(&cfg);
    let sock = s.socket();
    let p = ctl_json(&sock, &["pipeline", "show"]);
    assert_eq!((p["loaded"].as_bool(), p["program"].as_str()), (Some(true), Some("simple_router")));
    let lpm = p["tables"].as_array().unwrap().iter().find(|t| t["name"] == "ipv4_lpm").unwrap().clone();
    let before = u(&lpm["entries"]);
    assert!(before > 0 && u(&lpm["size"]) == 1024, "{lpm}");

    let (code, out, err) = ctl(&sock, &["table", "add", "ipv4_lpm", "set_nhop", "10.99.0.0/16", "=>", "10.0.0.7", "2"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 entry added"), "{out}");
    let dump = ctl_json(&sock, &["table", "dump", "ipv4_lpm"]);
    let line = dump["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|l| l.contains("0xa630000/16"))
        .unwrap();
    assert!(line.starts_with("table_add ipv4_lpm set_nhop 0xa630000/16 => 0xa000007 0x2  # handle "), "{line}");
    let handle = line.rsplit(' ').next().unwrap().to_owned();
    let p = ctl_json(&sock, &["pipeline", "show"]);
    let n =
        |p: &Value| u(&p["tables"].as_array().unwrap().iter().find(|t| t["name"] == "ipv4_lpm").unwrap()["entries"]);
    assert_eq!(n(&p), before + 1);
    // A bad command is refused with its reason and changes nothing.
    let (code, _, err) = ctl(&sock, &["table", "add", "ipv4_lpm", "set_nhop", "10.99.0.0/16", "=>", "10.0.0.7"]);
    assert_eq!(code, 1);
    assert!(err.contains("takes 2 parameters"), "{err}");
    assert_eq!(n(&ctl_json(&sock, &["pipeline", "show"])), before + 1);
    assert_eq!(ctl(&sock, &["table", "del", "ipv4_lpm", &handle]).0, 0);
    assert_eq!(n(&ctl_json(&sock, &["pipeline", "show"])), before);

    // The replayed packet's megaflow, readable, with counts.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let flows = ctl_json(&sock, &["flow", "dump", "--limit", "10"]);
    assert!(u(&flows["total"]) >= 1, "{flows}");
    let f = &flows["flows"][0];
    assert!(u(&f["packets"]) > 0, "{f}");
    assert!(f["match"].as_str().unwrap().contains("pkt["), "{f}");
    assert!(f["actions"].as_str().unwrap().contains("output:2"), "{f}");
    let (code, out, _) = ctl(&sock, &["flow", "dump"]);
    assert!(code == 0 && out.contains("megaflow(s) shown of"), "{out}");
    // One worker's megaflows (it is the only one), and none of a worker that is not.
    assert!(u(&ctl_json(&sock, &["flow", "dump", "--worker", "0"])["total"]) >= 1);
    assert_eq!(u(&ctl_json(&sock, &["flow", "dump", "--worker", "7"])["total"]), 0);
    let pmd = ctl_json(&sock, &["pmd", "stats"]);
    let w = &pmd["workers"][0];
    assert!(u(&w["emc_hits"]) + u(&w["dpcls_hits"]) > 0, "{w}");
    // Offload: the hot megaflow was tried on its ports; neither device implements
    // rte_flow (ENOSYS), so each is found not capable once and the flow stays in
    // software.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let off = loop {
        let off = ctl_json(&sock, &["offload", "show"]);
        if off["failures"].as_object().is_some_and(|f| !f.is_empty()) || std::time::Instant::now() > deadline {
            break off;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(off["enabled"], true, "{off}");
    assert!(u(&off["rounds"]) >= 1, "{off}");
    let failures = off["failures"].as_object().unwrap();
    assert_eq!(failures.keys().collect::<Vec<_>>(), ["validate_full:ENOSYS"], "{off}");
    assert_eq!(u(&failures["validate_full:ENOSYS"]), 2, "once per port: {off}");
    assert!(off["ports"].as_array().unwrap().iter().all(|p| p["capable"] == false), "{off}");
    assert!(off["rules"].as_array().is_none_or(|r| r.is_empty()), "{off}");
    let (code, out, _) = ctl(&sock, &["offload", "show"]);
    assert!(code == 0 && out.contains("not capable") && out.contains("failed: validate_full:ENOSYS=2"), "{out}");
    assert_eq!(u(&ctl_json(&sock, &["flow", "dump", "--offloaded"])["total"]), 0);
    // In pipeline mode a new port gets its P4 port number; the program decides.
    let added = ctl_json(
        &sock,
        &["port", "add", "x", &format!("net_null_tcx{},no-rx=1", std::process::id()), "--p4-port", "3"],
    );
    assert_eq!(u(&added["p4_port"]), 3);
    let (code, _, err) = ctl(&sock, &["port", "add", "y", "net_null_tcy0", "--p4-port", "3"]);
    assert_eq!((code, err.contains("P4 port 3 is port \"x\"'s")), (1, true), "{err}");
    let (code, _, err) = ctl(&sock, &["port", "add", "y", "net_null_tcy1", "--xconnect-to", "out"]);
    assert_eq!((code, err.contains("cross-connect mode")), (1, true), "{err}");
    assert_eq!(d.stop(), 0);
}

/// Scrape `/metrics` of `d` with prometheus_client's parser (the pinned venv).
fn scrape(d: &Daemon) -> Value {
    p4rt_clients();
    let err = d.stderr();
    let url = err
        .lines()
        .find_map(|l| l.strip_prefix("sluiced: metrics on "))
        .unwrap_or_else(|| panic!("no metrics line: {err}"))
        .to_owned();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join(".venv-p4rt/shell/bin/python"))
        .arg(root.join("tests/operator/scrape.py"))
        .arg(&url)
        .arg(root.join("docs/metrics.md"))
        .output()
        .expect("run scrape.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "scrape.py: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap()
}

fn samples<'a>(m: &'a Value, family: &str) -> &'a Vec<Value> {
    m["families"][family]["samples"].as_array().unwrap_or_else(|| panic!("{family} not scraped"))
}

/// The value of `family`'s sample whose labels include every pair of `labels`.
fn value(m: &Value, family: &str, labels: &[(&str, &str)]) -> f64 {
    samples(m, family)
        .iter()
        .find(|s| labels.iter().all(|(k, v)| s[1][*k] == *v))
        .unwrap_or_else(|| panic!("{family}{labels:?}: {:?}", samples(m, family)))[2]
        .as_f64()
        .unwrap()
}

#[test]
fn metrics_parse_and_carry_every_documented_family() {
    let Some(corpus) = corpus() else { return };
    let s = Scratch::new("metrics");
    let dir = corpus.join("onos_basic");
    s.write_pcap("in.pcap", &assorted_frames(64));
    let json = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let p4info = json.with_extension("p4info.txt");
    let cfg = s.write_config(&format!(
        "[pipeline]\njson = \"{}\"\np4info = \"{}\"\n\n\
         [mempool]\nmbufs = 16383\n\n\
         [[port]]\nname = \"in\"\np4_port = 1\ndevargs = \"net_pcap_mt{n},rx_pcap={d}/in.pcap,infinite_rx=1\"\n\n\
         [[port]]\nname = \"out\"\np4_port = 2\ndevargs = \"net_null_mt{n},no-rx=1\"\n",
        json.display(),
        p4info.display(),
        n = std::process::id(),
        d = s.dir.display()
    ));
    let d = s.spawn(&cfg);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let m1 = scrape(&d);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let m2 = scrape(&d);
    assert_eq!(m2["missing"], serde_json::json!([]), "documented but not exported (or wrong type, or no sample)");
    assert_eq!(m2["undocumented"], serde_json::json!([]), "exported but not in docs/metrics.md");
    assert!(m2["content_type"].as_str().unwrap().starts_with("text/plain; version=0.0.4"));
    // Plausible values.
    let v = |m: &Value, f: &str, l: &[(&str, &str)]| value(m, f, l);
    assert_eq!(v(&m2, "sluice_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    let rx1 = v(&m1, "sluice_port_rx_packets_total", &[("port", "in")]);
    let rx2 = v(&m2, "sluice_port_rx_packets_total", &[("port", "in")]);
    assert!(rx1 > 0.0 && rx2 > rx1, "counters move: {rx1} -> {rx2}");
    assert_eq!(v(&m2, "sluice_port_link_up", &[("port", "out")]), 1.0);
    assert_eq!(v(&m2, "sluice_port_rte_flow_capable", &[("port", "in")]), 0.0);
    let w = [("worker", "0")];
    let worker_rx = v(&m2, "sluice_worker_rx_packets_total", &w);
    let by_path: f64 = samples(&m2, "sluice_worker_packets_total").iter().map(|s| s[2].as_f64().unwrap()).sum();
    assert!(by_path > 0.0 && by_path <= worker_rx * 1.01 + 64.0, "paths {by_path} vs rx {worker_rx}");
    assert!(v(&m2, "sluice_worker_packets_total", &[("path", "upcall")]) >= 1.0);
    let reasons = samples(&m2, "sluice_drops_total").len();
    assert_eq!(reasons, 12, "every drop reason, zero or not");
    // onos_basic with no entries drops what it cannot route, in ingress.
    assert!(v(&m2, "sluice_drops_total", &[("reason", "p4_ingress_drop")]) > 0.0);
    let (pool, used) = (v(&m2, "sluice_mempool_mbufs", &[]), v(&m2, "sluice_mempool_in_use_mbufs", &[]));
    assert!(pool == 16383.0 && used > 0.0 && used <= pool, "{used} of {pool}");
    assert!(v(&m2, "sluice_worker_busy_cycles_total", &w) > 0.0);
    assert!(samples(&m2, "sluice_p4_table_entries")
        .iter()
        .any(|s| s[1]["table"].as_str().unwrap().ends_with("table0")));
    assert!(samples(&m2, "sluice_p4_meter_packets_total").iter().any(|s| s[1]["color"] == "red"));
    assert!(samples(&m2, "sluice_port_xstat_total").iter().any(|s| s[1]["xstat"] == "rx_good_packets"));
    // The write-latency histogram is there before the first write.
    assert!(samples(&m2, "sluice_p4runtime_write_duration_seconds")
        .iter()
        .any(|s| s[0] == "sluice_p4runtime_write_duration_seconds_count"));
    // A removed port's series go.
    let sock = s.socket();
    let (code, _, err) =
        ctl(&sock, &["port", "add", "z", &format!("net_null_mtz{},no-rx=1", std::process::id()), "--p4-port", "7"]);
    assert_eq!(code, 0, "{err}");
    let m3 = scrape(&d);
    assert_eq!(v(&m3, "sluice_port_link_up", &[("port", "z")]), 1.0);
    assert_eq!(ctl(&sock, &["port", "del", "z"]).0, 0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let m4 = scrape(&d);
    assert!(
        !samples(&m4, "sluice_port_link_up").iter().any(|s| s[1]["port"] == "z"),
        "{:?}",
        samples(&m4, "sluice_port_link_up")
    );
    assert_eq!(d.stop(), 0);
}

/// Create nothing: sluiced's net_tap creates (and removes) the interfaces.
fn tap_config(s: &Scratch, tag: &str) -> std::path::PathBuf {
    s.write_config(&format!(
        "[[port]]\nname = \"t0\"\ndevargs = \"net_tap_{tag}0,iface=sl{tag}0\"\n\n\
         [[port]]\nname = \"t1\"\ndevargs = \"net_tap_{tag}1,iface=sl{tag}1\"\n\n\
         [[xconnect]]\nfrom = \"t0\"\nto = \"t1\"\n"
    ))
}

/// The bar: adding and removing ports while traffic flows through others loses none
/// of that traffic. 30 000 frames cross TAP interfaces t0 -> t1 at 10 kpps while
/// ports are added (TAP and null) and removed; every frame must come out.
#[test]
fn adding_and_removing_ports_while_forwarding_loses_nothing_elsewhere() {
    if !is_root() {
        eprintln!("SKIP: TAP interfaces need root");
        return;
    }
    let s = Scratch::new("live");
    let tag = format!("{}", std::process::id() % 10000);
    let d = s.spawn(&tap_config(&s, &tag));
    let sock = s.socket();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut traffic = Command::new("python3")
        .arg(root.join("tests/operator/tap_traffic.py"))
        .args([&format!("sl{tag}0"), &format!("sl{tag}1"), "10000", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 tests/operator/tap_traffic.py");
    // Wait for the counted run to start.
    let mut err = std::io::BufReader::new(traffic.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line).unwrap();
    assert_eq!(line.trim(), "ready", "{line}");
    let mut changes = 0;
    let t0 = std::time::Instant::now();
    while t0.elapsed() < std::time::Duration::from_millis(2500) {
        let (code, _, e) = ctl(&sock, &["port", "add", "t2", &format!("net_tap_{tag}2,iface=sl{tag}2")]);
        assert_eq!(code, 0, "{e}");
        let (code, _, e) = ctl(&sock, &["port", "add", "n", &format!("net_null_{tag}n{changes},no-rx=1")]);
        assert_eq!(code, 0, "{e}");
        assert_eq!(ctl(&sock, &["pmd", "rxq-rebalance"]).0, 0);
        assert_eq!(ctl(&sock, &["port", "del", "t2"]).0, 0);
        assert_eq!(ctl(&sock, &["port", "del", "n"]).0, 0);
        changes += 1;
    }
    let out = traffic.wait_with_output().unwrap();
    let res: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", out));
    assert!(changes >= 3, "only {changes} rounds of port changes during the traffic");
    assert_eq!(res["received"], res["sent"], "every frame crossed while ports came and went ({changes} rounds): {res}");
    let pmd = ctl_json(&sock, &["pmd", "stats"]);
    let drops = &pmd["workers"][0]["drops"];
    assert_eq!(u(&drops["tx_full"]), 0, "{drops}");
    assert_eq!(d.stop(), 0);
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate,
/// made with the openssl CLI in `dir`.
fn make_certs(dir: &Path) -> bool {
    let run = |args: &[&str]| {
        Command::new("openssl").current_dir(dir).args(args).output().map(|o| o.status.success()).unwrap_or(false)
    };
    std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    let days = ["-days", "2"];
    run(&[
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=sluice-test-ca",
        ][..],
        &days,
    ]
    .concat())
        && ["server", "client"].iter().all(|n| {
            run(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{n}.key"),
                "-out",
                &format!("{n}.csr"),
                "-subj",
                &format!("/CN={n}"),
            ]) && run(&[
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{n}.csr"),
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &format!("{n}.pem"),
                    "-extfile",
                    &format!("{n}.ext"),
                ][..],
                &days,
            ]
            .concat())
        })
}

/// Over TCP the API speaks TLS and, with a client CA, requires a client certificate.
#[test]
fn management_over_tcp_uses_tls_with_client_certificates() {
    let s = Scratch::new("tls");
    if !make_certs(&s.dir) {
        eprintln!("SKIP: the openssl CLI is missing or failed");
        return;
    }
    s.write_pcap("in.pcap", &assorted_frames(8));
    let cfg = s.write_config(&format!("[[port]]\nname = \"a\"\ndevargs = \"net_null_tls{}\"\n", std::process::id()));
    // The header has a [management] table: add the TCP keys to it.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[management]\n",
        "[management]\ntcp_address = \"127.0.0.1:0\"\ntls_cert = \"server.pem\"\ntls_key = \"server.key\"\ntls_client_ca = \"ca.pem\"\n",
    );
    std::fs::write(&cfg, text).unwrap();
    let d = s.spawn(&cfg);
    let err = d.stderr();
    let addr = err
        .lines()
        .find_map(|l| l.split(" and tcp ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no tcp line: {err}"))
        .to_owned();
    assert!(err.contains("(TLS)"), "{err}");
    let p = |f: &str| s.path(f).display().to_string();
    let tcp = |extra: &[&str]| {
        let mut a = vec!["--address", &addr, "--json"];
        a.extend_from_slice(extra);
        a.push("info");
        a.iter().map(|x| x.to_string()).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ctl(&s.path("unused.sock"), &refs)
    };
    let (code, out, e) =
        run(tcp(&["--tls-ca", &p("ca.pem"), "--tls-cert", &p("client.pem"), "--tls-key", &p("client.key")]));
    assert_eq!(code, 0, "{e}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["version"], env!("CARGO_PKG_VERSION"));
    let (code, _, e) = run(tcp(&["--tls-ca", &p("ca.pem")]));
    assert_eq!(code, 3, "no client certificate, no service: {e}");
    let (code, _, e) = run(tcp(&[]));
    assert_eq!(code, 3, "plaintext is refused: {e}");
    let (code, _, e) = run(tcp(&["--tls-cert", &p("client.pem"), "--tls-key", &p("client.key")]));
    assert_eq!(code, 3, "the server's certificate is not trusted without its CA: {e}");
    assert_eq!(d.stop(), 0);
}

//! End to end: `sluiced` cross-connects real DPDK virtual devices (net_pcap, net_null)
//! and every packet comes out intact and counted.

mod common;
use common::*;

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn pcap_in_pcap_out_every_packet_intact_and_counted() {
    let s = Scratch::new("xc");
    let frames = assorted_frames(1000);
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    s.write_pcap("in.pcap", &frames);
    let cfg = s.write_config(&format!(
        "[[port]]\nname = \"in\"\ndevargs = \"net_pcap_xi,rx_pcap={}\"\n\n\
         [[port]]\nname = \"out\"\ndevargs = \"net_pcap_xo,tx_pcap={}\"\n\n\
         [[xconnect]]\nfrom = \"in\"\nto = \"out\"\n",
        s.path("in.pcap").display(),
        s.path("out.pcap").display()
    ));
    let run = s.run(&cfg, &["--duration", "1.5"]);
    run.assert_ok();
    assert_eq!(s.read_pcap("out.pcap"), frames, "same frames, same order, same bytes");
    let (pin, pout) = (run.port("in"), run.port("out"));
    assert_eq!(u(&pin["rx_packets"]), 1000);
    assert_eq!(u(&pin["rx_bytes"]), bytes);
    assert_eq!(u(&pin["sw_rx_packets"]), 1000);
    assert_eq!(u(&pout["tx_packets"]), 1000);
    assert_eq!(u(&pout["tx_bytes"]), bytes);
    assert_eq!(u(&pout["sw_tx_packets"]), 1000);
    let w = run.worker(0);
    assert_eq!((u(&w["rx_packets"]), u(&w["tx_packets"])), (1000, 1000));
    for (reason, n) in w["drops"].as_object().unwrap() {
        assert_eq!(u(n), 0, "drop reason {reason}");
    }
    assert!(u(&w["busy_cycles"]) > 0);
    // The final table is printed too.
    assert!(run.stdout().contains("rx_packets"), "{}", run.stdout());
}

#[test]
fn both_directions_and_multiple_rx_queues() {
    let s = Scratch::new("bidir");
    let a1 = assorted_frames(300);
    let a2: Vec<_> = assorted_frames(500).split_off(300);
    let b: Vec<_> = assorted_frames(700).split_off(500);
    s.write_pcap("a1.pcap", &a1);
    s.write_pcap("a2.pcap", &a2);
    s.write_pcap("b.pcap", &b);
    // Port a has two rx queues (one pcap each); both are polled and forwarded to b.
    let cfg = s.write_config(&format!(
        "[[port]]\nname = \"a\"\nrx_queues = 2\n\
         devargs = \"net_pcap_ba,rx_pcap={d}/a1.pcap,rx_pcap={d}/a2.pcap,tx_pcap={d}/a-out.pcap\"\n\n\
         [[port]]\nname = \"b\"\ndevargs = \"net_pcap_bb,rx_pcap={d}/b.pcap,tx_pcap={d}/b-out.pcap\"\n\n\
         [[xconnect]]\nfrom = \"a\"\nto = \"b\"\n\n[[xconnect]]\nfrom = \"b\"\nto = \"a\"\n",
        d = s.dir.display()
    ));
    let run = s.run(&cfg, &["--duration", "1.5"]);
    run.assert_ok();
    assert_eq!(s.read_pcap("a-out.pcap"), b);
    let mut got_b = s.read_pcap("b-out.pcap");
    let mut want_b: Vec<_> = a1.iter().chain(&a2).cloned().collect();
    got_b.sort();
    want_b.sort();
    assert_eq!(got_b, want_b, "both rx queues of a reach b (order across queues is free)");
    assert_eq!(u(&run.port("a")["rx_packets"]), 500);
    assert_eq!(u(&run.port("b")["tx_packets"]), 500);
}

#[test]
fn packets_without_a_route_are_dropped_and_counted() {
    let s = Scratch::new("noroute");
    s.write_pcap("in.pcap", &assorted_frames(250));
    // No program and no cross-connect: a bare switch (not the default program).
    let cfg = s.write_config(&format!(
        "[switch]\nprogram = false\n\n[[port]]\nname = \"in\"\ndevargs = \"net_pcap_ni,rx_pcap={}\"\n\n\
         [[port]]\nname = \"out\"\ndevargs = \"net_null_no,no-rx=1\"\n",
        s.path("in.pcap").display()
    ));
    let run = s.run(&cfg, &["--duration", "1"]);
    let stats = run.assert_ok();
    assert_eq!(u(&run.port("in")["rx_packets"]), 250);
    assert_eq!(u(&run.port("out")["tx_packets"]), 0);
    assert_eq!(u(&run.worker(0)["drops"]["no_route"]), 250);
    assert_eq!(u(&stats["mempool_in_use"]), 0, "dropped packets return to the pool");
    assert!(run.stdout().contains("no_route=250"), "{}", run.stdout());
    // No virtual device implements rte_flow: said once per port, forwarding unaffected.
    assert!(run.stderr().contains("port \"out\" (net_null): rte_flow not capable"), "{}", run.stderr());
    assert!(run.port("out")["rte_flow"].as_str().unwrap().starts_with("not capable"));
}

#[test]
fn sigterm_stops_cleanly_with_final_counters() {
    let s = Scratch::new("sigterm");
    s.write_pcap("flows.pcap", &(0..64).map(|i| pcap::udp_frame(i, 0)).collect::<Vec<_>>());
    let cfg = s.write_config(&format!(
        "[mempool]\nmbufs = 8191\n\n\
         [[port]]\nname = \"in\"\ndevargs = \"net_pcap_si,rx_pcap={},infinite_rx=1\"\n\n\
         [[port]]\nname = \"out\"\ndevargs = \"net_null_so,no-rx=1\"\n\n\
         [[xconnect]]\nfrom = \"in\"\nto = \"out\"\n",
        s.path("flows.pcap").display()
    ));
    let json = s.path("stats.json");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluiced"))
        .arg("--config")
        .arg(&cfg)
        .arg("--stats-json")
        .arg(&json)
        .arg("--stats-interval")
        .arg("0.2")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first interval line, i.e. forwarding is under way.
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("stats t="), "{first}");
    let status = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopping"));
    assert!(rest.iter().any(|l| l.starts_with("worker")), "final table printed: {rest:?}");
    let stats: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let w = &stats["workers"][0];
    let rx = u(&w["rx_packets"]);
    assert!(rx > 10_000, "forwarded only {rx}");
    // Conservation: every packet received was sent or dropped with a reason.
    let drops: u64 = w["drops"].as_object().unwrap().values().map(u).sum();
    assert_eq!(rx, u(&w["tx_packets"]) + drops);
    let out_port = stats["ports"].as_array().unwrap().iter().find(|p| p["name"] == "out").unwrap();
    assert_eq!(u(&out_port["tx_packets"]), u(&w["tx_packets"]));
}

#[test]
fn demo_runs_forwards_and_exits_cleanly() {
    let _s = Scratch::new("demo");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluiced"))
        .args(["--demo", "--no-huge", "--duration", "1.2", "--stats-interval", "0.5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for port in ["bridged", "routed"] {
        let tx: Vec<u64> = stdout
            .lines()
            .filter(|l| l.contains(&format!("port={port} ")))
            .filter_map(|l| {
                l.split_whitespace().find_map(|w| w.strip_prefix("tx_packets=")).map(|n| n.parse().unwrap())
            })
            .collect();
        assert!(!tx.is_empty() && tx.iter().all(|&n| n > 0), "live counters show {port} traffic: {stdout}");
    }
    // The default program bridged half and routed half, and said so; nothing dropped.
    let counts: Vec<u64> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("demo:   "))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 2, "a bridged and a routed line: {stdout}");
    assert!(counts.iter().all(|&n| n > 0), "{stdout}");
    assert!(stdout.contains("routed to 10.20.0.0/16"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("app: 64 MACs learned"), "{stderr}");
    // Until its MAC was learned, each host's packets went uncached and sampled a
    // digest: every sample was sent (one per host at least), held back or lost.
    let lines: Vec<&str> = stdout.lines().collect();
    let header = lines.iter().position(|l| l.contains("uncacheable")).expect("the cache table");
    let uncacheable: u64 = lines[header + 1].split_whitespace().nth(4).unwrap().parse().unwrap();
    let samples = lines.iter().find_map(|l| l.strip_prefix("digest samples: ")).expect("the digest line");
    let n: Vec<u64> = samples.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    let (sent, held, lost) = (n[0], n[1], n[n.len() - 1]);
    assert!(sent >= 64, "{samples}");
    assert_eq!(sent + held + lost, uncacheable, "{stdout}");
}

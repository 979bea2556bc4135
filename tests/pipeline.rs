//! End to end: `sluiced` runs P4 programs from the shared corpus on DPDK virtual
//! devices (pcap in, pcap out), with entries from a `simple_switch_CLI` file.

mod common;
use common::*;

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn drops(run: &Run, reason: &str) -> u64 {
    u(&run.worker(0)["drops"][reason])
}

#[test]
fn simple_router_routes_through_dpdk_ports() {
    let Some(corpus) = corpus() else { return };
    let s = Scratch::new("p4router");
    let to2 = udp4("00:aa:bb:00:00:00", "00:00:00:00:00:01", "10.0.0.10", "10.0.1.10", 64, b"to port 2");
    let to1 = udp4("00:aa:bb:00:00:01", "00:00:00:00:00:02", "10.0.1.10", "10.0.0.10", 7, &[0x42; 300]);
    let miss = udp4("00:aa:bb:00:00:00", "00:00:00:00:00:01", "10.0.0.10", "10.9.9.9", 64, b"nowhere");
    let mut input = vec![];
    for _ in 0..50 {
        input.extend([to2.clone(), to1.clone(), miss.clone()]);
    }
    s.write_pcap("in.pcap", &input);
    let cfg = s.write_config(&format!(
        "[pipeline]\njson = \"{c}/simple_router/simple_router.json\"\np4info = \"{c}/simple_router/simple_router.p4info.txt\"\n\
         entries = \"{e}\"\n\n\
         [[port]]\nname = \"p1\"\np4_port = 1\ndevargs = \"net_pcap_r1,rx_pcap={d}/in.pcap,tx_pcap={d}/p1.pcap\"\n\n\
         [[port]]\nname = \"p2\"\np4_port = 2\ndevargs = \"net_pcap_r2,tx_pcap={d}/p2.pcap\"\n",
        c = corpus.display(),
        e = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("perf/entries/simple_router.txt").display(),
        d = s.dir.display()
    ));
    let run = s.run(&cfg, &["--duration", "1.5", "--dump-flows", "10"]);
    run.assert_ok();
    // Control saw the three megaflows over the event ring: match -> actions.
    let out = run.stdout();
    let dump: Vec<&str> = out.lines().filter(|l| l.starts_with("megaflow worker 0 flow ")).collect();
    assert_eq!(dump.len(), 3, "{out}");
    assert!(
        dump.iter().any(|l| l.contains("pkt[30..") && l.ends_with("output:2(patch 13 bytes, 1 checksums)")),
        "{dump:?}"
    );
    assert!(dump.iter().any(|l| l.contains("drop(Ingress)")), "{dump:?}");
    assert!(out.contains("megaflow events seen by control: 3 installed, 3 live"), "{out}");
    assert!(
        run.stderr().contains("simple_router.json (") && run.stderr().contains("7 entries from the entries file"),
        "{}",
        run.stderr()
    );
    let p2 = s.read_pcap("p2.pcap");
    let p1 = s.read_pcap("p1.pcap");
    assert_eq!((p1.len(), p2.len()), (50, 50), "each routed packet leaves its port once");
    let f = &p2[0];
    assert_eq!(f[0..6], mac("00:04:00:00:00:01")[..]);
    assert_eq!(f[6..12], mac("00:aa:bb:00:00:01")[..]);
    assert_eq!(f[22], 63, "TTL decremented");
    assert_eq!(pcap::ipv4_checksum(&f[14..34]), 0, "checksum valid");
    assert_eq!(f[34..], to2[34..], "payload intact");
    assert_eq!(p1[0][22], 6);
    assert_eq!(p1[0][0..6], mac("00:04:00:00:00:00")[..]);
    assert_eq!(p1[0].len(), to1.len());
    assert_eq!(drops(&run, "p4_ingress_drop"), 50, "misses dropped by the program and counted");
    let w = run.worker(0);
    assert_eq!(u(&w["rx_packets"]), 150);
    assert_eq!(u(&w["tx_packets"]), 100);
    // Three megaflows (two routes and the miss); every other packet hit one.
    let c = &w["cache"];
    assert_eq!((u(&c["upcalls"]), u(&c["installed"]), u(&c["uncacheable"])), (3, 3, 0), "{c}");
    assert_eq!(u(&c["emc_hits"]) + u(&c["dpcls_hits"]), 147, "{c}");
    assert_eq!(u(&c["megaflows"]), 3);
    // The same traffic with the cache off leaves the same bytes.
    let off = s.path("off.toml");
    let text =
        std::fs::read_to_string(&cfg).unwrap().replace("p1.pcap", "p1-off.pcap").replace("p2.pcap", "p2-off.pcap");
    std::fs::write(&off, text + "\n[cache]\nenabled = false\n").unwrap();
    let run = s.run(&off, &["--duration", "1.5"]);
    run.assert_ok();
    assert_eq!((s.read_pcap("p1-off.pcap"), s.read_pcap("p2-off.pcap")), (p1, p2), "cached == uncached");
    let c = &run.worker(0)["cache"];
    assert_eq!((u(&c["upcalls"]), u(&c["uncacheable"]), u(&c["installed"])), (150, 150, 0), "{c}");
}

#[test]
fn clone_and_multicast_replicate_through_dpdk_ports() {
    let Some(corpus) = corpus() else { return };
    let s = Scratch::new("p4mc");
    // multicast.p4: mcast_grp = first 16 bits; egress writes egress_rid there.
    let mut frame = vec![0u8, 10];
    frame.extend([0x77; 60]);
    s.write_pcap("in.pcap", &vec![frame.clone(); 20]);
    std::fs::write(
        s.path("e.txt"),
        "mc_mgrp_create 10\nmc_node_create 1 1\nmc_node_create 2 2\nmc_node_associate 10 0\nmc_node_associate 10 1\n",
    )
    .unwrap();
    let cfg = s.write_config(&format!(
        "[pipeline]\njson = \"{c}/bmv2_grpc_tests/multicast.json\"\nentries = \"e.txt\"\n\n\
         [[port]]\nname = \"in\"\np4_port = 0\ndevargs = \"net_pcap_m0,rx_pcap={d}/in.pcap\"\n\n\
         [[port]]\nname = \"a\"\np4_port = 1\ndevargs = \"net_pcap_m1,tx_pcap={d}/a.pcap\"\n\n\
         [[port]]\nname = \"b\"\np4_port = 2\ndevargs = \"net_pcap_m2,tx_pcap={d}/b.pcap\"\n",
        c = corpus.display(),
        d = s.dir.display()
    ));
    let run = s.run(&cfg, &["--duration", "1.5"]);
    run.assert_ok();
    let (a, b) = (s.read_pcap("a.pcap"), s.read_pcap("b.pcap"));
    assert_eq!((a.len(), b.len()), (20, 20));
    assert_eq!(a[0][0..2], [0, 1], "replica 1 carries rid 1");
    assert_eq!(b[0][0..2], [0, 2], "replica 2 carries rid 2");
    assert_eq!(a[0][2..], frame[2..]);
    assert_eq!(u(&run.worker(0)["tx_packets"]), 40);
}

#[test]
fn packet_in_reaches_the_cpu_port_with_its_header() {
    let Some(corpus) = corpus() else { return };
    let s = Scratch::new("p4cpu");
    let mut arp = udp4("ff:ff:ff:ff:ff:ff", "00:00:00:00:00:01", "0.0.0.0", "0.0.0.0", 64, b"");
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    s.write_pcap("in.pcap", &vec![arp.clone(); 5]);
    std::fs::write(
        s.path("e.txt"),
        "table_add table0 send_to_cpu 0&&&0 0&&&0 0&&&0 0x0806&&&0xffff 0&&&0 0&&&0 0&&&0 0&&&0 0&&&0 => 1\n",
    )
    .unwrap();
    let cfg = s.write_config(&format!(
        "[pipeline]\njson = \"{c}/onos_basic/basic.json\"\np4info = \"{c}/onos_basic/basic.p4info.txt\"\n\
         entries = \"e.txt\"\n\n[p4runtime]\naddress = \"127.0.0.1:0\"\ncpu_port = 255\n\n\
         [[port]]\nname = \"p1\"\np4_port = 1\ndevargs = \"net_pcap_c1,rx_pcap={d}/in.pcap\"\n\n\
         [[port]]\nname = \"cpu\"\np4_port = 255\ndevargs = \"net_pcap_c2,tx_pcap={d}/cpu.pcap\"\n",
        c = corpus.display(),
        d = s.dir.display()
    ));
    let run = s.run(&cfg, &["--duration", "1.5"]);
    run.assert_ok();
    let cpu = s.read_pcap("cpu.pcap");
    assert_eq!(cpu.len(), 5);
    assert_eq!(cpu[0][0..2], [0x00, 0x80], "packet_in.ingress_port = 1");
    assert_eq!(cpu[0][2..], arp[..]);
}

#[test]
fn load_errors_name_the_file_and_the_place() {
    let Some(corpus) = corpus() else { return };
    let s = Scratch::new("p4err");
    std::fs::write(
        s.path("e.txt"),
        "table_add ipv4_lpm set_nhop 10.0.0.10/32 => 10.0.0.10 1\ntable_add nope x 1 => 2\n",
    )
    .unwrap();
    let cfg = s.write_config(&format!(
        "[pipeline]\njson = \"{c}/simple_router/simple_router.json\"\nentries = \"e.txt\"\n\n\
         [[port]]\nname = \"p\"\ndevargs = \"net_null_e0\"\n",
        c = corpus.display()
    ));
    let run = s.run(&cfg, &["--duration", "0.2"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("e.txt") && run.stderr().contains("line 2"), "{}", run.stderr());
    // A P4Info that does not belong to the JSON.
    let cfg = s.write_config(&format!(
        "[pipeline]\njson = \"{c}/simple_router/simple_router.json\"\np4info = \"{c}/onos_basic/basic.p4info.txt\"\n\n\
         [[port]]\nname = \"p\"\ndevargs = \"net_null_e1\"\n",
        c = corpus.display()
    ));
    let run = s.run(&cfg, &["--duration", "0.2"]);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("does not match"), "{}", run.stderr());
    // A JSON with an unsupported construct: the place is named.
    let text = std::fs::read_to_string(corpus.join("simple_router/simple_router.json")).unwrap();
    std::fs::write(
        s.path("bad.json"),
        text.replacen("\"op\" : \"drop\"", "\"op\" : \"frobnicate\"", 1).replacen(
            "\"op\":\"drop\"",
            "\"op\":\"frobnicate\"",
            1,
        ),
    )
    .unwrap();
    let cfg = s.write_config("[pipeline]\njson = \"bad.json\"\n\n[[port]]\nname = \"p\"\ndevargs = \"net_null_e2\"\n");
    let run = s.run(&cfg, &["--duration", "0.2"]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr().contains("bad.json")
            && run.stderr().contains("frobnicate")
            && run.stderr().contains("primitives["),
        "{}",
        run.stderr()
    );
}

#[test]
fn fabric_routes_ipv4_through_the_hashed_selector() {
    let Some(corpus) = corpus() else { return };
    let s = Scratch::new("p4fabric");
    let input = udp4("00:00:00:00:aa:01", "00:00:00:00:00:01", "10.0.9.1", "10.0.2.1", 64, b"fabric e2e");
    let bridged = udp4("00:00:00:00:00:99", "00:00:00:00:00:01", "10.0.9.1", "10.0.2.1", 64, b"no bridging entry");
    s.write_pcap("in.pcap", &[input.clone(), bridged, input.clone()]);
    let entries = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("perf/entries/fabric.txt");
    let cfg = s.write_config(&format!(
        "[pipeline]\njson = \"{c}/onos_fabric/fabric.json\"\np4info = \"{c}/onos_fabric/fabric.p4info.txt\"\n\
         entries = \"{e}\"\n\n[p4runtime]\naddress = \"127.0.0.1:0\"\ncpu_port = 255\n\n\
         [[port]]\nname = \"p1\"\np4_port = 1\ndevargs = \"net_pcap_f1,rx_pcap={d}/in.pcap\"\n\n\
         [[port]]\nname = \"p2\"\np4_port = 2\ndevargs = \"net_pcap_f2,tx_pcap={d}/p2.pcap\"\n",
        c = corpus.display(),
        e = entries.display(),
        d = s.dir.display()
    ));
    let run = s.run(&cfg, &["--duration", "1.5"]);
    run.assert_ok();
    let out = s.read_pcap("p2.pcap");
    assert_eq!(out.len(), 2, "routed twice; the bridged packet has no entry");
    let f = &out[0];
    assert_eq!(f[0..6], mac("00:00:00:00:00:fe")[..], "next-hop MAC");
    assert_eq!(f[6..12], mac("00:00:00:00:aa:01")[..], "switch MAC");
    assert_eq!(f[12..14], [0x08, 0x00], "untagged");
    assert_eq!(f[22], 63);
    assert_eq!(pcap::ipv4_checksum(&f[14..34]), 0);
    assert_eq!(f[34..], input[34..]);
    assert_eq!(drops(&run, "p4_ingress_drop") + drops(&run, "p4_egress_drop"), 1);
}

/// A flow setup storm larger than a worker's event ring (`flows::EVENT_RING`, 16,384
/// events): the default program routing one prefix over two next hops (ECMP on the
/// 5-tuple), so each of 40,000 UDP source ports is its own megaflow. Control takes the
/// events every few milliseconds as they come, not only when it reports or runs an
/// offload round, so it sees every install: a megaflow whose install event a full
/// ring dropped stays undescribed in dumps and out of offload's reach.
#[test]
fn control_keeps_up_with_a_flow_setup_storm_larger_than_the_event_ring() {
    const FLOWS: usize = 40_000;
    let s = Scratch::new("storm");
    let base = udp4("02:5d:00:00:00:0a", "02:00:00:00:10:01", "10.0.10.1", "203.0.113.9", 64, b"storm");
    let frames: Vec<Vec<u8>> = (0..FLOWS)
        .map(|i| {
            let mut f = base.clone();
            f[34..36].copy_from_slice(&(1024 + i as u16).to_be_bytes()); // UDP source port
            f
        })
        .collect();
    s.write_pcap("storm.pcap", &frames);
    let cfg = s.write_config(&format!(
        "[[port]]\nname = \"in\"\np4_port = 1\nvlan = 10\ndevargs = \"net_pcap_st1,rx_pcap={d}/storm.pcap\"\n\n\
         [[port]]\nname = \"out\"\np4_port = 2\nvlan = 20\ndevargs = \"net_pcap_st2,tx_pcap={d}/out.pcap\"\n\n\
         [[vlan]]\nid = 10\nname = \"hosts\"\n\n[[vlan]]\nid = 20\nname = \"core\"\n\n\
         [[mac]]\nvlan = 10\nmac = \"02:00:00:00:10:01\"\nport = \"in\"\n\n\
         [[router_interface]]\nvlan = 10\nmac = \"02:5d:00:00:00:0a\"\n\n\
         [[router_interface]]\nvlan = 20\nmac = \"02:5d:00:00:00:14\"\n\n\
         [[neighbor]]\nip = \"10.0.20.2\"\nmac = \"02:5d:00:00:20:02\"\nport = \"out\"\n\n\
         [[neighbor]]\nip = \"10.0.20.3\"\nmac = \"02:5d:00:00:20:03\"\nport = \"out\"\n\n\
         [[route]]\nprefix = \"203.0.113.0/24\"\nvia = [\"10.0.20.2\", \"10.0.20.3\"]\n",
        d = s.dir.display()
    ));
    let run = s.run(&cfg, &["--duration", "3"]);
    let st = run.assert_ok();
    let c = &run.worker(0)["cache"];
    assert_eq!(u(&run.worker(0)["rx_packets"]), FLOWS as u64, "{}", run.stderr());
    assert_eq!(u(&c["installed"]), FLOWS as u64, "one megaflow per 5-tuple: {c}");
    assert_eq!(s.read_pcap("out.pcap").len(), FLOWS, "every packet routed");
    // Drained only by reports and offload rounds (every 500 ms), the ring lost ~1,000
    // installs here (a debug build sets up flows at ~35 K/s: the ring fills in ~0.5 s);
    // drained every few milliseconds, none. (A release build fills it in ~13 ms.)
    assert_eq!(u(&c["events_dropped"]), 0, "{c}");
    assert_eq!(u(&st["megaflows"]["installed"]), FLOWS as u64, "control saw every install: {}", st["megaflows"]);
}

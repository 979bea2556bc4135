//! End to end: `sluiced`'s P4Runtime server driven by real clients from PyPI
//! (p4runtime-shell 0.0.6, finsy 0.30.0; pinned by `scripts/p4rt-clients.sh`), with
//! the scripts of `tests/p4rt/`. Each test runs its own `sluiced` (a fresh server:
//! arbitration remembers the highest election id until restart).

mod common;
use common::*;

/// A config with two tx-only pcap ports (P4 ports 1 and 2) and the P4Runtime server
/// on a free loopback port.
fn quiet_config(s: &Scratch) -> std::path::PathBuf {
    s.write_config(&format!(
        "[switch]\nprogram = false\n\n[p4runtime]\naddress = \"127.0.0.1:0\"\ncpu_port = 255\n\n\
         [[port]]\nname = \"p1\"\np4_port = 1\ndevargs = \"net_pcap_q1{n},tx_pcap={d}/p1.pcap\"\n\n\
         [[port]]\nname = \"p2\"\np4_port = 2\ndevargs = \"net_pcap_q2{n},tx_pcap={d}/p2.pcap\"\n",
        n = std::process::id(),
        d = s.dir.display()
    ))
}

fn observed<'a>(v: &'a serde_json::Value, path: &[&str]) -> &'a serde_json::Value {
    path.iter().fold(&v["observed"], |v, k| &v[*k])
}

#[test]
fn p4runtime_shell_pushes_writes_reads_modifies_deletes() {
    let Some(corpus) = corpus() else { return };
    let s = Scratch::new("p4rt-shell");
    let d = s.spawn(&quiet_config(&s));
    let v = p4rt_script("shell", "shell_router.py", &d.p4rt, &corpus, &[]);
    assert_eq!(observed(&v, &["p4runtime_api_version"]), "1.5.0");
    assert_eq!(observed(&v, &["primary"]), true);
    assert_eq!(observed(&v, &["p4info_identical"]), true, "GetForwardingPipelineConfig returns the P4Info pushed");
    assert_eq!(observed(&v, &["read_back_bytestrings_canonical"]), true);
    assert_eq!(observed(&v, &["duplicate_insert", "code"]), "ALREADY_EXISTS");
    assert_eq!(observed(&v, &["delete_missing", "code"]), "NOT_FOUND");
    let err = d.stderr();
    assert!(err.contains("P4Runtime: pipeline simple_router committed") || err.contains("committed"), "{err}");
    assert_eq!(d.stop(), 0);
}

#[test]
fn finsy_connects_becomes_primary_and_programs() {
    let Some(corpus) = corpus() else { return };
    let s = Scratch::new("p4rt-finsy");
    let d = s.spawn(&quiet_config(&s));
    let v = p4rt_script("finsy", "finsy_primary.py", &d.p4rt, &corpus, &[]);
    assert_eq!(observed(&v, &["is_primary"]), true);
    assert_eq!(observed(&v, &["read_back"]).as_array().map(Vec::len), Some(1));
    assert_eq!(d.stop(), 0);
}

#[test]
fn arbitration_primary_and_backups_follow_the_spec() {
    let Some(corpus) = corpus() else { return };
    let s = Scratch::new("p4rt-arb");
    let d = s.spawn(&quiet_config(&s));
    let v = p4rt_script("shell", "arbitration.py", &d.p4rt, &corpus, &[]);
    let st = |k: &str| observed(&v, &["statuses", k, "status"]).clone();
    assert_eq!(st("A_open"), "OK");
    assert_eq!(st("A_after_B"), "ALREADY_EXISTS");
    assert_eq!(st("A_after_B_closed"), "NOT_FOUND", "no automatic promotion (spec ≥ 1.1)");
    assert_eq!(st("A_send_3"), "OK");
    assert_eq!(observed(&v, &["statuses", "A_write_as_backup", "code"]), "PERMISSION_DENIED");
    assert_eq!(d.stop(), 0);
}

#[test]
fn malformed_requests_get_the_spec_codes_and_change_nothing() {
    let Some(corpus) = corpus() else { return };
    let s = Scratch::new("p4rt-err");
    let d = s.spawn(&quiet_config(&s));
    let v = p4rt_script("shell", "errors.py", &d.p4rt, &corpus, &["--fresh"]);
    let c = |k: &str| observed(&v, &["codes", k, "code"]).clone();
    assert_eq!(c("get_before_set"), "FAILED_PRECONDITION");
    assert_eq!(c("match_too_wide"), "OUT_OF_RANGE");
    assert_eq!(c("param_missing"), "INVALID_ARGUMENT");
    assert_eq!(c("batch"), "UNKNOWN");
    assert_eq!(d.stop(), 0);
}

/// Packet-out leaves the port its metadata names; a packet the program sends to the
/// CPU port reaches the primary as a packet-in. Through DPDK TAP ports (root only).
#[test]
fn packet_out_and_packet_in_through_tap_ports() {
    let Some(corpus) = corpus() else { return };
    if !is_root() || !std::path::Path::new("/dev/net/tun").exists() {
        eprintln!("SKIP: packet I/O needs root and /dev/net/tun for TAP ports");
        return;
    }
    let s = Scratch::new("p4rt-pktio");
    let tag = std::process::id() % 10000;
    let (if1, if2) = (format!("slp1x{tag}"), format!("slp2x{tag}"));
    let cfg = s.write_config(&format!(
        "[switch]\nprogram = false\n\n[p4runtime]\naddress = \"127.0.0.1:0\"\ncpu_port = 255\n\n\
         [[port]]\nname = \"p1\"\np4_port = 1\ndevargs = \"net_tap_t1{tag},iface={if1}\"\n\n\
         [[port]]\nname = \"p2\"\np4_port = 2\ndevargs = \"net_tap_t2{tag},iface={if2}\"\n"
    ));
    let d = s.spawn(&cfg);
    let v =
        p4rt_script("shell", "shell_packet_io.py", &d.p4rt, &corpus, &["--port1-iface", &if1, "--port2-iface", &if2]);
    assert_eq!(observed(&v, &["packet_out_seen_on"]), if2.as_str());
    assert_eq!(observed(&v, &["packet_in", "metadata", "ingress_port"]), "01");
    assert_eq!(observed(&v, &["packet_in", "payload"]), observed(&v, &["arp_frame"]));
    assert_eq!(d.stop(), 0);
}

/// Digest lists (batching, acks, their timeouts, a bad ack's stream error) and
/// idle-timeout notifications, with packets injected as packet-outs through the
/// running worker.
#[test]
fn digests_and_idle_timeouts_reach_the_controller() {
    let Some(corpus) = corpus() else { return };
    let s = Scratch::new("p4rt-digest");
    let d = s.spawn(&quiet_config(&s));
    let v = p4rt_script("shell", "shell_digest.py", &d.p4rt, &corpus, &[]);
    assert_eq!(observed(&v, &["batched_list_size"]), 2);
    assert_eq!(observed(&v, &["bad_ack_error"]), "INVALID_ARGUMENT");
    let after = observed(&v, &["idle_notification_after_s"]).as_f64().unwrap();
    assert!((0.6..3.0).contains(&after), "notified {after} s after insert (TTL 0.6 s)");
    assert_eq!(d.stop(), 0);
}

/// A meter configured over P4Runtime polices real traffic: packet-outs through the
/// running worker's egress meter, counted on the tx pcap of the port.
#[test]
fn a_meter_entry_polices_packets_through_the_data_plane() {
    let Some(corpus) = corpus() else { return };
    let s = Scratch::new("p4rt-meter");
    let d = s.spawn(&quiet_config(&s));
    let v = p4rt_script("shell", "shell_meter.py", &d.p4rt, &corpus, &["--packets", "300"]);
    assert_eq!(d.stop(), 0);
    let frames = s.read_pcap("p2.pcap");
    let passed = frames.iter().filter(|f| f.len() == 1000).count() as f64;
    let seconds = observed(&v, &["seconds"]).as_f64().unwrap();
    let red = observed(&v, &["red_packets"]).as_f64().unwrap();
    // Allowed: the 3000-byte burst plus 20000 B/s for the time taken (1000-byte frames).
    let allowed = 3.0 + 20.0 * seconds;
    assert!(passed >= 1.0 && passed <= allowed + 1.0, "{passed} frames passed, {allowed:.1} allowed in {seconds} s");
    assert_eq!(passed + red, 300.0, "every packet is either forwarded or dropped RED");
}

//! End to end: Sluice's default program (`pipelines/sluice_default/`) and its built-in
//! app, through the real `sluiced` on DPDK TAP ports. Each test writes a configuration
//! with no `[pipeline]` and no `[[xconnect]]` (so the app programs the default program
//! from it), starts `sluiced`, runs one scenario of `tests/default_program/scenarios.py`
//! (which sends frames on the kernel side of the TAP ports and checks every frame that
//! comes out of every port, byte for byte), asserts on its JSON summary and on what
//! `sluiced` printed, and stops it.
//!
//! The MACs and addresses below are the ones the script's constants name; change both
//! together. TAP interfaces need root (CI is root): elsewhere each test prints a SKIP
//! line and passes.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The script's constants (tests/default_program/scenarios.py).
const ROUTER_MAC_10: &str = "02:5d:00:00:00:0a";
const ROUTER_MAC_20: &str = "02:5d:00:00:00:14";
const STATIC_MAC: &str = "02:5d:00:00:55:01";
const PERMIT_MAC: &str = "02:5d:00:00:99:01";
const VTEP_MAC: &str = "02:5d:00:00:01:01";
const VTEP_NEXT_HOP: &str = "02:5d:00:00:01:02";
const REMOTE_MAC: &str = "02:5d:00:00:99:09";
/// Neighbor N1 (10.0.20.2, behind port 3).
const N1_MAC: &str = "02:5d:00:00:20:02";

fn taps_available() -> bool {
    if is_root() && Path::new("/dev/net/tun").exists() {
        return true;
    }
    eprintln!("SKIP: needs root (and /dev/net/tun) for DPDK TAP ports");
    false
}

/// Interface names of P4 ports 1..=n for one test: unique per process and tag, at most
/// 15 characters.
fn ifaces(tag: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("sd{}{tag}{i}", std::process::id() % 100_000)).collect()
}

/// A `[[port]]` on a TAP interface (P4 port `p4`) with extra keys.
fn port(name: &str, p4: usize, iface: &str, extra: &str) -> String {
    format!("[[port]]\nname = \"{name}\"\np4_port = {p4}\ndevargs = \"net_tap_{iface},iface={iface}\"\n{extra}\n")
}

/// The P4Runtime section: a free port, and the CPU port the default program punts to
/// (255) when `cpu` is set.
fn p4runtime(cpu: bool) -> &'static str {
    if cpu {
        "[p4runtime]\naddress = \"127.0.0.1:0\"\ncpu_port = 255\n\n"
    } else {
        "[p4runtime]\naddress = \"127.0.0.1:0\"\n\n"
    }
}

/// Run one scenario with `python` against `d`; its JSON summary, or a panic with its
/// output and the daemon's.
fn scenario(python: &Path, d: &Daemon, name: &str, ifaces: &[String]) -> Value {
    scenario_with(python, d, name, ifaces, &[])
}

/// [`scenario`] with `extra` arguments for the script.
fn scenario_with(python: &Path, d: &Daemon, name: &str, ifaces: &[String], extra: &[&str]) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(root.join("tests/default_program/scenarios.py"))
        .args(["--addr", &d.p4rt, "--scenario", name, "--ifaces", &ifaces.join(","), "--timeout", "45"])
        .args(extra)
        .output()
        .expect("run tests/default_program/scenarios.py");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "scenario {name} failed ({}):\n{stderr}\nstdout:\n{stdout}\nsluiced:\n{}",
        out.status,
        d.stderr()
    );
    let last = stdout.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{name}: last line is not JSON ({e}): {last}"));
    v["observed"].clone()
}

fn python3() -> PathBuf {
    PathBuf::from("python3")
}

/// The pid of the `sluiced` this process started with `config`.
fn daemon_pid(config: &Path) -> u32 {
    let me = std::process::id();
    let want = config.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .find(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // "pid (comm) state ppid ...": the fields after the last ')'.
            let ppid = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<u32>().ok());
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(me) && String::from_utf8_lossy(&cmd).contains(&want)
        })
        .expect("the pid of the sluiced this test started")
}

/// SIGTERM `d`, wait until it has exited, check it exited 0, and return everything it
/// printed on stderr (the app's summary comes at exit, after `Daemon::stop` could
/// read it).
fn stop(d: Daemon, config: &Path) -> String {
    let pid = daemon_pid(config);
    assert!(Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // Exited: a zombie until Daemon::stop reaps it (its SIGTERM then reaches nobody).
    let exited = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
            .unwrap_or(true)
    };
    while !(exited() && d.stderr().contains("sluiced: stopping")) {
        assert!(std::time::Instant::now() < deadline, "sluiced did not stop in 20 s:\n{}", d.stderr());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    let err = d.stderr();
    assert_eq!(d.stop(), 0, "{err}");
    err
}

/// The app's exit summary: `app: N MACs learned, N moved, N aged, N not learned (table
/// full), N write errors`, as (learned, moved, aged, table full, write errors).
fn app_summary(stderr: &str) -> [u64; 5] {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("sluiced: app:") && l.contains("MACs learned"))
        .unwrap_or_else(|| panic!("no app summary at exit:\n{stderr}"));
    let n: Vec<u64> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    n.try_into().unwrap_or_else(|_| panic!("five counts in {line:?}"))
}

fn mac_value(s: &str) -> u64 {
    u64::from_str_radix(&s.replace(':', ""), 16).unwrap()
}

fn hex(v: &str) -> u64 {
    u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// `ingress.dmac` as `sluicectl table dump` shows it: (VLAN, MAC, action, port).
fn dmac(socket: &Path) -> Vec<(u64, u64, String, u64)> {
    let v = ctl_json(socket, &["table", "dump", "ingress.dmac"]);
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            // table_add ingress.dmac <action> <vlan> <mac> => <port> [<tunnel>]  # handle N
            let w: Vec<&str> = e.as_str().unwrap().split_whitespace().collect();
            (hex(w[3]), hex(w[4]), w[2].to_string(), hex(w[6]))
        })
        .collect()
}

fn ports(v: &Value) -> Vec<u64> {
    v.as_array().unwrap_or_else(|| panic!("not a list of ports: {v}")).iter().map(|p| p.as_u64().unwrap()).collect()
}

/// Bridging: access ports, a trunk, a trunk with a native VLAN, flooding per VLAN,
/// learning through the digest and the app, a MAC move, a static MAC.
#[test]
fn learning_bridge_floods_per_vlan_learns_and_follows_moves() {
    if !taps_available() {
        return;
    }
    let s = Scratch::new("dp-learn");
    let i = ifaces("l", 5);
    let cfg = s.write_config(&format!(
        "{}{}{}{}{}{}\
         [[vlan]]\nid = 10\nname = \"users\"\n\n\
         [[mac]]\nvlan = 10\nmac = \"{STATIC_MAC}\"\nport = \"p2\"\n",
        p4runtime(false),
        port("p1", 1, &i[0], "vlan = 10"),
        port("p2", 2, &i[1], "vlan = 10"),
        port("p3", 3, &i[2], "vlan = 20"),
        port("p4", 4, &i[3], "vlan_mode = \"trunk\"\ntrunk_vlans = [10, 20]"),
        port("p5", 5, &i[4], "vlan_mode = \"trunk\"\nvlan = 20\ntrunk_vlans = [10]"),
    ));
    let d = s.spawn(&cfg);
    let o = scenario(&python3(), &d, "learning", &i);
    assert_eq!(ports(&o["flood_vlan10"]["ports"]), [2, 4, 5], "unknown unicast: VLAN 10 only, not back to 1");
    assert_eq!(ports(&o["unicast_to_learned"]["ports"]), [1], "{o}");
    assert_eq!(ports(&o["unicast_back"]["ports"]), [2]);
    assert_eq!(ports(&o["broadcast_vlan20"]), [4, 5], "VLAN 20 never reaches VLAN 10's ports");
    assert_eq!(ports(&o["trunk_to_access"]), [1]);
    assert_eq!(ports(&o["native_vlan"]), [3, 4]);
    assert_eq!(ports(&o["native_trunk_tagged"]), [1, 2, 4]);
    assert_eq!(o["trunk_foreign_dropped"], true);
    assert_eq!(ports(&o["moved"]["ports"]), [4]);
    assert_eq!(o["static_kept"], true);

    // The app's entries, as the operator sees them.
    let mac = |k: &str| mac_value(o["macs"][k].as_str().unwrap());
    let entries = dmac(&s.socket());
    let find = |m: u64| entries.iter().find(|e| e.0 == 10 && e.1 == m).cloned();
    assert_eq!(find(mac("A")).map(|e| (e.2, e.3)), Some(("ingress.l2_forward".to_string(), 1)), "{entries:?}");
    assert_eq!(find(mac("B")).map(|e| e.3), Some(4), "B moved to the trunk: {entries:?}");
    assert_eq!(find(mac_value(STATIC_MAC)).map(|e| e.3), Some(2), "the static MAC stays: {entries:?}");

    let err = stop(d, &cfg);
    let [learned, moved, _, full, write_errors] = app_summary(&err);
    // A, B, C, D and two hosts on port 5 (plus whatever the kernel sent); not the static MAC.
    assert!(learned >= 6, "{err}");
    assert_eq!((moved, full, write_errors), (1, 0, 0), "{err}");
}

/// Routing: IPv4 and IPv6 routes via one neighbor (tagged on a trunk, untagged on an
/// access port, back out of the ingress trunk), an ECMP route over two neighbors, and
/// the drops (IPv4 with options among them: bridged, never routed). Also
/// `max_learned_macs`: one MAC learned, the rest refused and counted.
#[test]
fn routing_rewrites_and_spreads_ecmp_over_next_hops() {
    if !taps_available() {
        return;
    }
    let s = Scratch::new("dp-route");
    let i = ifaces("r", 4);
    let cfg = s.write_config(&format!(
        "[switch]\nmax_learned_macs = 1\n\n{}{}{}{}{}\
         [[router_interface]]\nvlan = 10\nmac = \"{ROUTER_MAC_10}\"\n\n\
         [[router_interface]]\nvlan = 20\nmac = \"{ROUTER_MAC_20}\"\n\n\
         [[neighbor]]\nip = \"10.0.20.2\"\nmac = \"02:5d:00:00:20:02\"\nport = \"p3\"\n\n\
         [[neighbor]]\nip = \"10.0.20.3\"\nmac = \"02:5d:00:00:20:03\"\nport = \"p4\"\nvlan = 20\n\n\
         [[neighbor]]\nip = \"10.0.10.9\"\nmac = \"02:5d:00:00:10:09\"\nport = \"p2\"\n\n\
         [[neighbor]]\nip = \"2001:db8:20::6\"\nmac = \"02:5d:00:00:20:06\"\nport = \"p4\"\nvlan = 20\n\n\
         [[route]]\nprefix = \"198.51.100.0/24\"\nvia = [\"10.0.20.3\"]\n\n\
         [[route]]\nprefix = \"192.0.2.0/24\"\nvia = [\"10.0.10.9\"]\n\n\
         [[route]]\nprefix = \"2001:db8:99::/48\"\nvia = [\"2001:db8:20::6\"]\n\n\
         [[route]]\nprefix = \"203.0.113.0/24\"\nvia = [\"10.0.20.2\", \"10.0.20.3\"]\n",
        p4runtime(false),
        port("p1", 1, &i[0], "vlan = 10"),
        port("p2", 2, &i[1], "vlan = 10"),
        port("p3", 3, &i[2], "vlan = 20"),
        port("p4", 4, &i[3], "vlan_mode = \"trunk\"\ntrunk_vlans = [10, 20]"),
    ));
    let d = s.spawn(&cfg);
    let o = scenario(&python3(), &d, "routing", &i);
    assert_eq!(ports(&o["route_v4"]["ports"]), [4], "{o}");
    // dst N2, src the VLAN 20 router MAC, tag 20, IPv4 TTL 63 (byte 22 + 4 of the tag).
    let f = o["route_v4"]["frame"].as_str().unwrap();
    assert!(f.starts_with(&format!("025d00002003{}81000014", ROUTER_MAC_20.replace(':', ""))), "{f}");
    assert_eq!(&f[2 * 26..2 * 27], "3f", "TTL 63: {f}");
    assert_eq!(ports(&o["route_hairpin"]), [4]);
    assert_eq!(ports(&o["route_v4_reverse"]), [2]);
    assert_eq!(o["route_v6"]["hop_limit"], 63);
    let (p3, p4) = (o["ecmp_spread"]["port3"].as_u64().unwrap(), o["ecmp_spread"]["port4"].as_u64().unwrap());
    assert!(p3 > 0 && p4 > 0 && p3 + p4 == 64, "64 flows over both next hops: {p3} + {p4}");
    assert_eq!(o["ecmp_stable"], true);
    assert_eq!(o["drops_checked"].as_array().map(Vec::len), Some(4), "TTL 1, no route, non-IP, IPv4 options");
    let err = stop(d, &cfg);
    let [learned, _, _, full, write_errors] = app_summary(&err);
    assert_eq!((learned, write_errors), (1, 0), "max_learned_macs = 1: {err}");
    assert!(full >= 1, "the hosts beyond the limit are counted: {err}");
}

/// IPv4 with options (not routed, see above) is still bridged, and bridging leaves a
/// frame as it is.
#[test]
fn bridged_ipv4_with_options_leaves_unchanged() {
    if !taps_available() {
        return;
    }
    let s = Scratch::new("dp-opts");
    let i = ifaces("o", 3);
    let cfg = s.write_config(&format!(
        "{}{}{}{}",
        p4runtime(false),
        port("p1", 1, &i[0], "vlan = 10"),
        port("p2", 2, &i[1], "vlan = 10"),
        port("p3", 3, &i[2], "vlan_mode = \"trunk\"\ntrunk_vlans = [10]"),
    ));
    let d = s.spawn(&cfg);
    let o = scenario(&python3(), &d, "options", &i);
    assert_eq!(ports(&o["options_bridged"]["ports"]), [2, 3]);
    stop(d, &cfg);
}

/// ACL: mirror (the copy exactly as received, tag included), deny, a higher-priority
/// permit, a deny on IPv4 prefix + protocol + port; then MAC aging (an active host stays,
/// a quiet one is forgotten).
#[test]
fn acl_mirrors_denies_permits_and_macs_age_out() {
    if !taps_available() {
        return;
    }
    let s = Scratch::new("dp-acl");
    let i = ifaces("a", 4);
    let cfg = s.write_config(&format!(
        "[switch]\nmac_aging_s = 1\n\n{}{}{}{}{}\
         [[mirror]]\nname = \"span\"\nport = \"p4\"\n\n\
         [[acl]]\npriority = 10\naction = \"mirror\"\nmirror = \"span\"\nether_type = 0x88b7\n\n\
         [[acl]]\npriority = 20\naction = \"deny\"\nether_type = 0x88b8\n\n\
         [[acl]]\npriority = 30\naction = \"permit\"\nether_type = 0x88b8\nsrc_mac = \"{PERMIT_MAC}\"\n\n\
         [[acl]]\npriority = 25\naction = \"deny\"\ndst_ip = \"10.9.0.0/16\"\nproto = 17\ndst_port = 9999\n",
        p4runtime(false),
        port("p1", 1, &i[0], "vlan = 10"),
        port("p2", 2, &i[1], "vlan = 10"),
        port("p3", 3, &i[2], "vlan_mode = \"trunk\"\ntrunk_vlans = [10]"),
        port("p4", 4, &i[3], "vlan = 99"),
    ));
    let d = s.spawn(&cfg);
    let o = scenario(&python3(), &d, "acl", &i);
    assert_eq!(ports(&o["flood"]["ports"]), [2, 3], "nothing on the mirror port without a rule");
    assert_eq!(ports(&o["mirror_untagged"]), [2, 3, 4]);
    assert_eq!(ports(&o["mirror_tagged"]["ports"]), [1, 2, 4]);
    let copy = o["mirror_tagged"]["copy"].as_str().unwrap();
    assert_eq!(&copy[24..36], "8100a00a88b7", "the copy keeps its tag (PCP 5, VLAN 10): {copy}");
    assert_eq!(o["deny_permit"], true);
    assert_eq!(o["deny_l4"], true);
    assert!(o["active_kept_rounds"].as_u64().unwrap() >= 5, "{o}");
    let aged = o["aged_after_s"].as_f64().unwrap();
    assert!((0.9..8.0).contains(&aged), "a 1 s aging time forgot the host after {aged} s");
    let err = stop(d, &cfg);
    let [_, _, aged, _, write_errors] = app_summary(&err);
    assert!(aged >= 1 && write_errors == 0, "{err}");
}

/// The shell venv's python, or `None` (with a SKIP line) if `scripts/p4rt-clients.sh`
/// has not set it up.
fn shell_python() -> Option<PathBuf> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-p4rt/shell/bin/python");
    if py.exists() {
        p4rt_clients();
        Some(py)
    } else {
        eprintln!("SKIP: {} is absent (run scripts/p4rt-clients.sh)", py.display());
        None
    }
}

fn punt_config(s: &Scratch, i: &[String], cpu: bool) -> PathBuf {
    s.write_config(&format!(
        "{}{}{}{}{}[[acl]]\npriority = 10\naction = \"punt\"\nether_type = 0x88b6\n",
        p4runtime(cpu),
        port("p1", 1, &i[0], "vlan = 10"),
        port("p2", 2, &i[1], "vlan = 10"),
        port("p3", 3, &i[2], "vlan = 10"),
        port("p4", 4, &i[3], "vlan_mode = \"trunk\"\ntrunk_vlans = [10]"),
    ))
}

fn check_punt(o: &Value, err: &str) {
    assert_eq!(o["packet_in"]["metadata"]["ingress_port"], 1, "{o}");
    assert_eq!(o["packet_in"]["payload"], o["packet_in"]["sent"]);
    assert_eq!(o["packet_in_trunk"]["metadata"]["ingress_port"], 4);
    assert_eq!(o["packet_in_trunk"]["payload"], o["packet_in_trunk"]["sent"], "punted from a trunk: with its tag");
    assert_eq!(o["acl_entry"]["action"], "ingress.acl_punt");
    assert_eq!(o["counters"]["acl_punt_packets"][0], o["counters"]["punted"]);
    assert_eq!(ports(&o["packet_out"]), [2]);
    assert_eq!(o["digest_to_controller"]["port"], 1);
    assert_eq!(ports(&o["flooded_after_takeover"]["ports"]), [1, 3, 4], "learned MACs are gone after the reload");
    assert_eq!(ports(&o["relearned"]["ports"]), [1]);
    let at = |s: &str| err.find(s).unwrap_or_else(|| panic!("sluiced did not say {s:?}:\n{err}"));
    let none = at("a packet was punted to the controller and none is connected");
    let back = at("the built-in app steps back");
    let took = at("the built-in app took the switch back");
    assert!(none < back && back < took, "{err}");
}

/// Run the punt scenario on a fresh sluiced (TAP names from `letter`), with or without
/// `[p4runtime] cpu_port = 255` in its configuration.
fn punt_case(tag: &str, letter: &str, cpu_port: bool) {
    if !taps_available() {
        return;
    }
    let Some(py) = shell_python() else { return };
    let s = Scratch::new(tag);
    let i = ifaces(letter, 4);
    let cfg = punt_config(&s, &i, cpu_port);
    let d = s.spawn(&cfg);
    let o = scenario(&py, &d, "punt", &i);
    let err = stop(d, &cfg);
    check_punt(&o, &err);
}

/// ACL punt with a controller: p4runtime-shell connects as primary without pushing a
/// pipeline; the app steps back; punted frames are PacketIns from P4 port 1 (untagged)
/// and from the trunk, port 4 (with their tag); the controller reads the app's entries
/// and counters, sends a PacketOut, gets the learning digests and writes an entry; when
/// it leaves, the app reloads its program, bridges and learns again.
#[test]
fn acl_punt_reaches_a_controller_and_the_app_takes_the_switch_back() {
    punt_case("dp-punt", "p", true);
}

/// The same without `[p4runtime] cpu_port`: the default program's CPU port is 255
/// whatever the configuration says.
#[test]
fn acl_punt_works_without_configuring_the_cpu_port() {
    punt_case("dp-punt0", "q", false);
}

/// The program's port and VLAN counters, as a controller reads them: known numbers of
/// frames in VLAN 10 and VLAN 20, from access ports and tagged from a trunk, each flooded
/// to its VLAN's one other port; then p4runtime-shell connects (after the traffic: a
/// primary makes the app step back) and reads `port_rx`, `port_tx`, `vlan_rx` and
/// `vlan_tx`. `sluicectl` has no counter command, hence the controller. Ports 4 and 5
/// (VLAN 30) only tell the script that the switch bridges, without touching the cells
/// read; a bare P4Runtime Read (no arbitration, the app stays active) takes the cells'
/// values before the traffic.
#[test]
fn port_and_vlan_counters_count_what_crossed_each_port_and_vlan() {
    if !taps_available() {
        return;
    }
    let Some(py) = shell_python() else { return };
    let s = Scratch::new("dp-count");
    let i = ifaces("k", 5);
    let cfg = s.write_config(&format!(
        "{}{}{}{}{}{}",
        p4runtime(false),
        port("p1", 1, &i[0], "vlan = 10"),
        port("p2", 2, &i[1], "vlan = 20"),
        port("p3", 3, &i[2], "vlan_mode = \"trunk\"\ntrunk_vlans = [10, 20]"),
        port("p4", 4, &i[3], "vlan = 30"),
        port("p5", 5, &i[4], "vlan = 30"),
    ));
    let d = s.spawn(&cfg);
    let o = scenario(&py, &d, "counters", &i);
    // What the traffic added: the script read every cell before it too (the kernel sends
    // a frame or two when a TAP interface comes up, before the script can quiet it).
    let cell = |name: &str| -> (u64, u64) {
        let n = |k: &str, i: usize| o[k][name][i].as_u64().unwrap_or_else(|| panic!("{k} {name}: {o}"));
        (n("counters", 0) - n("baseline", 0), n("counters", 1) - n("baseline", 1))
    };
    // The script's COUNTED: VLAN 10: 3 x 100 bytes from p1, 5 x 104 (100 + the tag) from
    // the trunk p3; VLAN 20: 7 x 204 from p3, 11 x 200 from p2.
    let (v10_p1, v10_p3, v20_p3, v20_p2) = ((3, 300), (5, 5 * 104), (7, 7 * 204), (11, 11 * 200));
    let sum = |a: (u64, u64), b: (u64, u64)| (a.0 + b.0, a.1 + b.1);
    assert_eq!(cell("ingress.port_rx[1]"), v10_p1, "{o}");
    assert_eq!(cell("ingress.port_rx[2]"), v20_p2, "{o}");
    assert_eq!(cell("ingress.port_rx[3]"), sum(v10_p3, v20_p3), "{o}");
    assert_eq!(cell("ingress.vlan_rx[10]"), sum(v10_p1, v10_p3), "{o}");
    assert_eq!(cell("ingress.vlan_rx[20]"), sum(v20_p3, v20_p2), "{o}");
    // Every frame left once, in its VLAN. v1model counts the length as received (BMv2's
    // ingress length), in egress too: tags pushed or popped on the way out do not count.
    assert_eq!(cell("egress.vlan_tx[10]"), sum(v10_p1, v10_p3), "{o}");
    assert_eq!(cell("egress.vlan_tx[20]"), sum(v20_p3, v20_p2), "{o}");
    assert_eq!(cell("egress.port_tx[1]"), v10_p3, "{o}");
    assert_eq!(cell("egress.port_tx[2]"), v20_p3, "{o}");
    assert_eq!(cell("egress.port_tx[3]"), sum(v10_p1, v20_p2), "{o}");

    let err = stop(d, &cfg);
    assert!(err.contains("the built-in app steps back"), "the controller was primary: {err}");
}

/// VXLAN: encapsulation to a static MAC behind a remote VTEP (field by field, also from
/// a trunk), flooding to the remote, decapsulation to a learned MAC and flooding of a
/// decapsulated broadcast (never back into the tunnel), an unknown VNI not terminated.
#[test]
fn vxlan_encapsulates_to_the_remote_and_decapsulates_into_the_vlan() {
    if !taps_available() {
        return;
    }
    let s = Scratch::new("dp-vxlan");
    let i = ifaces("v", 4);
    let cfg = s.write_config(&format!(
        "{}{}{}{}{}\
         [[vtep]]\nlocal_ip = \"192.0.2.1\"\nport = \"u\"\nmac = \"{VTEP_MAC}\"\nnext_hop_mac = \"{VTEP_NEXT_HOP}\"\n\
         vnis = [{{ vni = 5000, vlan = 10 }}]\nremotes = [\"192.0.2.2\"]\n\n\
         [[mac]]\nvlan = 10\nmac = \"{REMOTE_MAC}\"\nremote_vtep = \"192.0.2.2\"\n",
        p4runtime(false),
        port("p1", 1, &i[0], "vlan = 10"),
        port("p2", 2, &i[1], "vlan = 10"),
        port("u", 3, &i[2], ""),
        port("t", 4, &i[3], "vlan_mode = \"trunk\"\ntrunk_vlans = [10]"),
    ));
    let d = s.spawn(&cfg);
    let o = scenario(&python3(), &d, "vxlan", &i);
    let frame = o["encap"]["frame"].as_str().unwrap();
    let inner = o["encap"]["inner"].as_str().unwrap();
    let outer = format!("{}{}0800", VTEP_NEXT_HOP.replace(':', ""), VTEP_MAC.replace(':', ""));
    assert!(frame.starts_with(&outer) && frame.ends_with(inner), "{frame}");
    assert_eq!(&frame[2 * 42..2 * 50], "0800000000138800", "VXLAN flags 0x08, VNI 5000: {frame}");
    assert!(inner.starts_with(&REMOTE_MAC.replace(':', "")));
    assert!(o["encap"]["udp_src"].as_u64().unwrap() >= 49152);
    let trunk = o["encap_from_trunk"]["frame"].as_str().unwrap();
    assert!(trunk.ends_with(o["encap_from_trunk"]["inner"].as_str().unwrap()), "the tag is not carried: {trunk}");
    assert_eq!(ports(&o["flood_to_remote"]), [2, 3, 4]);
    assert_eq!(ports(&o["decap_unicast"]["ports"]), [1]);
    assert_eq!(ports(&o["decap_broadcast"]), [1, 2, 4], "never back into the tunnel");
    assert_eq!(o["not_terminated"], true);
    let err = stop(d, &cfg);
    assert_eq!(app_summary(&err)[4], 0, "no write errors: {err}");
}

/// Live changes with `sluicectl` while frames cross: each change is in the data plane
/// when the command returns (the script sends one frame right after it, no retry). A
/// route appears and goes, a route via a non-neighbor is refused whole, an ACL rule
/// drops and then bridges again, a port moves between VLANs; the operator's views
/// (`mac list`, `switch show`, `route list`, `acl list`, `vlan show`) follow.
#[test]
fn live_changes_from_sluicectl_reach_the_data_plane() {
    if !taps_available() {
        return;
    }
    let s = Scratch::new("dp-live");
    let i = ifaces("c", 4);
    let cfg = s.write_config(&format!(
        "{}{}{}{}{}\
         [[router_interface]]\nvlan = 10\nmac = \"{ROUTER_MAC_10}\"\n\n\
         [[router_interface]]\nvlan = 20\nmac = \"{ROUTER_MAC_20}\"\n\n\
         [[neighbor]]\nip = \"10.0.20.2\"\nmac = \"{N1_MAC}\"\nport = \"p3\"\n",
        p4runtime(false),
        port("p1", 1, &i[0], "vlan = 10"),
        port("p2", 2, &i[1], "vlan = 10"),
        port("p3", 3, &i[2], "vlan = 20"),
        port("p4", 4, &i[3], "vlan_mode = \"trunk\"\ntrunk_vlans = [10, 20]"),
    ));
    let d = s.spawn(&cfg);
    let sock = s.socket();
    let extra = ["--sluicectl", env!("CARGO_BIN_EXE_sluicectl"), "--socket", sock.to_str().unwrap()];
    let o = scenario_with(&python3(), &d, "live", &i, &extra);

    assert!(o["mac_list"].as_str().unwrap().contains(o["host"].as_str().unwrap()), "{o}");
    assert!(o["switch_show"]["text"].as_str().unwrap().starts_with("built-in app: active\n"), "{o}");
    assert_eq!(o["switch_show"]["mode"], "active");
    assert_eq!(o["not_routed_before"], true);
    assert_eq!(ports(&o["routed"]["ports"]), [3], "{o}");
    // dst N1, src the VLAN 20 router MAC, untagged, TTL 63 (the script compared every byte).
    let f = o["routed"]["frame"].as_str().unwrap();
    assert!(f.starts_with(&format!("{}{}0800", N1_MAC.replace(':', ""), ROUTER_MAC_20.replace(':', ""))), "{f}");
    assert_eq!(&f[2 * 22..2 * 23], "3f", "TTL 63: {f}");
    assert!(o["route_list"].as_str().unwrap().contains("10.40.0.0/16  10.0.20.2"), "{o}");
    assert!(o["bad_route"]["stderr"].as_str().unwrap().contains("via 10.9.9.9 is not a [[neighbor]]"), "{o}");
    assert_eq!(o["bad_route"]["routes"].as_array().map(Vec::len), Some(1), "only 10.40.0.0/16: {o}");
    assert_eq!(o["not_routed_after"], true);
    assert!(o["acl_list"].as_str().unwrap().contains("ether_type=34997"), "{o}");
    assert_eq!(ports(&o["acl_deleted"]), [2, 4], "bridged again");
    assert_eq!(ports(&o["vlan10_before"]), [2, 4]);
    assert_eq!(ports(&o["vlan20_before"]), [4]);
    assert_eq!(ports(&o["vlan10_after"]), [4], "p2 left VLAN 10");
    assert_eq!(ports(&o["vlan20_after"]), [2, 4], "p2 joined VLAN 20");
    assert_eq!(o["vlan_set"]["p2"]["untagged"], 20, "{o}");

    // What the switch holds at the end, as the operator reads it.
    let state = ctl_json(&sock, &["switch", "show"]);
    assert_eq!(state["routes"], serde_json::json!([]), "{state}");
    assert_eq!(state["acls"], serde_json::json!([]), "{state}");
    assert_eq!(state["counters"]["write_errors"], 0, "{state}");
    let lpm = ctl_json(&sock, &["table", "dump", "ingress.ipv4_route"]);
    assert_eq!(lpm["entries"], serde_json::json!([]), "the deleted route's entry is gone: {lpm}");

    let err = stop(d, &cfg);
    let [learned, _, _, _, write_errors] = app_summary(&err);
    assert!(learned >= 1 && write_errors == 0, "{err}");
}

/// The program's port policer, driven with `sluicectl` (`meter set`, then `table add
/// ingress.port_policing`): a configured cell polices nothing until the port has a
/// `port_policing` entry; then a burst from that port passes the meter's burst plus its
/// rate for the time taken, the rest is RED and dropped; another port's frames (its
/// cell configured, no entry) are never policed.
#[test]
fn the_programs_port_policer_drops_beyond_its_rate() {
    if !taps_available() {
        return;
    }
    let s = Scratch::new("dp-police");
    let i = ifaces("m", 2);
    let cfg = s.write_config(&format!(
        "{}{}{}",
        p4runtime(false),
        port("p1", 1, &i[0], "vlan = 10"),
        port("p2", 2, &i[1], "vlan = 10"),
    ));
    let d = s.spawn(&cfg);
    let sock = s.socket();
    let extra = ["--sluicectl", env!("CARGO_BIN_EXE_sluicectl"), "--socket", sock.to_str().unwrap()];
    let o = scenario_with(&python3(), &d, "police", &i, &extra);

    // The script's constants: 100 frames of 1000 bytes; 20000 B/s, 3000-byte bursts.
    let (sent, size, rate, burst) = (100.0, 1000.0, 20000.0, 3000.0);
    assert_eq!(o["unpoliced"]["passed"], 100, "no port_policing entry, nothing policed: {o}");
    let passed = o["policed"]["passed"].as_f64().unwrap();
    let seconds = o["policed"]["seconds"].as_f64().unwrap();
    let allowed = (burst + rate * seconds) / size;
    assert!(
        passed >= 1.0 && passed <= allowed + 2.0,
        "{passed} frames passed, {allowed:.1} allowed in {seconds} s: {o}"
    );
    assert_eq!(o["port2_unpoliced"]["passed"], 100, "port 2 has no port_policing entry: {o}");
    // Cell 1 colored every frame of the policed burst (and no other); what it did not
    // pass is RED.
    let colors: Vec<f64> = o["cell1"]["packets"].as_array().unwrap().iter().map(|n| n.as_f64().unwrap()).collect();
    assert_eq!(colors.len(), 3, "{o}");
    assert_eq!((colors[0] + colors[1], colors[2]), (passed, sent - passed), "green + yellow passed, red dropped: {o}");
    assert!(colors[2] > 0.0, "{o}");
    let bytes: Vec<f64> = o["cell1"]["bytes"].as_array().unwrap().iter().map(|n| n.as_f64().unwrap()).collect();
    assert_eq!((bytes[0] + bytes[1], bytes[2]), (passed * size, (sent - passed) * size), "a bytes meter: {o}");
    assert_eq!(o["cell2"]["packets"], serde_json::json!([0, 0, 0]), "port 2's cell never ran: {o}");

    let err = stop(d, &cfg);
    assert_eq!(app_summary(&err)[4], 0, "no write errors: {err}");
}

/// `[switch] learning = false`: digests are ignored, so frames to a host that has
/// spoken keep flooding and nothing is learned.
#[test]
fn without_learning_frames_to_known_hosts_keep_flooding() {
    if !taps_available() {
        return;
    }
    let s = Scratch::new("dp-nolearn");
    let i = ifaces("n", 3);
    let cfg = s.write_config(&format!(
        "[switch]\nlearning = false\n\n{}{}{}{}",
        p4runtime(false),
        port("p1", 1, &i[0], "vlan = 10"),
        port("p2", 2, &i[1], "vlan = 10"),
        port("p3", 3, &i[2], "vlan_mode = \"trunk\"\ntrunk_vlans = [10]"),
    ));
    let d = s.spawn(&cfg);
    let o = scenario(&python3(), &d, "nolearn", &i);
    assert_eq!(ports(&o["flood"]["ports"]), [2, 3]);
    assert_eq!(o["flooded_rounds"], 3, "{o}");
    assert_eq!(dmac(&s.socket()), [], "no dmac entry");
    let state = ctl_json(&s.socket(), &["switch", "show"]);
    assert_eq!((&state["switch"]["learning"], &state["learned"]), (&Value::Bool(false), &serde_json::json!([])));
    let err = stop(d, &cfg);
    let [learned, moved, _, full, write_errors] = app_summary(&err);
    assert_eq!((learned, moved, full, write_errors), (0, 0, 0, 0), "{err}");
}

/// `[switch] app = false`: the default program is loaded with no entry (every table
/// empty), so frames miss `port_vlan` and are dropped by the program; the app's
/// management calls are refused.
#[test]
fn without_the_app_the_default_program_is_empty_and_drops() {
    if !taps_available() {
        return;
    }
    let s = Scratch::new("dp-noapp");
    let i = ifaces("e", 2);
    let cfg = s.write_config(&format!(
        "[switch]\napp = false\n\n{}{}{}",
        p4runtime(false),
        port("p1", 1, &i[0], "vlan = 10"),
        port("p2", 2, &i[1], "vlan = 10"),
    ));
    let d = s.spawn(&cfg);
    assert!(d.stderr().contains("empty: [switch] app = false"), "{}", d.stderr());
    let sock = s.socket();
    let p = ctl_json(&sock, &["pipeline", "show"]);
    assert_eq!(p["loaded"], true, "{p}");
    let tables = p["tables"].as_array().unwrap();
    assert!(tables.iter().any(|t| t["name"] == "ingress.port_vlan"), "{p}");
    assert!(tables.iter().all(|t| t["entries"].as_u64() == Some(0)), "every table empty: {p}");

    let o = scenario(&python3(), &d, "empty", &i);
    let sent = o["sent"]["port1"].as_u64().unwrap() + o["sent"]["port2"].as_u64().unwrap();
    // The worker's drop counters, live (Daemon keeps no --stats-json): every frame it
    // received (the script's and any the kernel sent) was dropped by the program in
    // ingress, none for another reason, and nothing left.
    let w = &ctl_json(&sock, &["pmd", "stats"])["workers"][0];
    let rx = w["rx_packets"].as_u64().unwrap();
    assert!(rx >= sent, "{sent} frames sent: {w}");
    for (reason, n) in w["drops"].as_object().unwrap() {
        let want = if reason == "p4_ingress_drop" { rx } else { 0 };
        assert_eq!(n.as_u64(), Some(want), "drops {reason}: {w}");
    }
    assert_eq!(w["tx_packets"].as_u64(), Some(0), "{w}");

    let (code, out, err) = ctl(&sock, &["switch", "show"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("does not run the built-in app") && err.contains("FailedPrecondition"), "{err}");
    let err = stop(d, &cfg);
    assert!(!err.contains("MACs learned"), "no app, no app summary: {err}");
}

//! The app against the switch's P4Runtime service (control's copy of the state, no
//! workers): the configuration becomes entries that forward as configured (packets run
//! through the engine on that state), MACs are learned, moved and aged.

use super::*;
use crate::config::Config;
use crate::p4rt::device::Pipeline;
use sluice_fastpath::p4::interp::Interp;
use sluice_fastpath::p4::track::NoTrack;

/// Ports a and b access VLAN 10, t a trunk of 10 and 20; routers, neighbors, routes,
/// a static MAC, a mirror, an ACL rule; `switch` lines first.
fn config(switch: &str) -> String {
    let trunk = "vlan_mode = \"trunk\"\ntrunk_vlans = [10, 20]";
    let ports = crate::app::test_config(&[("a", "vlan = 10"), ("b", "vlan = 10"), ("t", trunk)], EXTRA);
    format!("{switch}\n{ports}")
}

const EXTRA: &str = r#"
[[router_interface]]
vlan = 10
mac = "02:00:00:00:00:0a"
[[router_interface]]
vlan = 20
mac = "02:00:00:00:00:14"
[[neighbor]]
ip = "10.0.20.2"
mac = "00:00:00:00:20:02"
port = "t"
vlan = 20
[[neighbor]]
ip = "10.0.20.3"
mac = "00:00:00:00:20:03"
port = "t"
vlan = 20
[[route]]
prefix = "10.20.0.0/16"
via = ["10.0.20.2"]
[[route]]
prefix = "10.30.0.0/16"
via = ["10.0.20.2", "10.0.20.3"]
[[mac]]
vlan = 10
mac = "00:00:00:00:00:bb"
port = "b"
[[mirror]]
name = "tap"
port = "t"
[[acl]]
priority = 10
action = "deny"
ether_type = 0x88b5
"#;

fn app(config: &str) -> App {
    let c = Config::parse(config, "test").unwrap();
    let l = crate::pipeline::from_bytes(program::JSON, Some(program::P4INFO)).unwrap();
    let p = Pipeline::new(l, program::config()).unwrap();
    let p4rt = P4rt::new(1, Some(255), None, Some(p));
    let mut app = App::new(p4rt, c).unwrap();
    app.program().unwrap();
    app
}

/// Run a frame through the program on control's copy of the state.
fn run(app: &App, port: u32, frame: &[u8]) -> (Vec<(u32, Vec<u8>)>, usize) {
    app.p4rt
        .with_running(|p| {
            let mut it = Interp::new(&p.ir);
            it.run(&p.ir, &mut p.rt, frame, port, &mut NoTrack);
            let mut out: Vec<(u32, Vec<u8>)> = it.out.packets().iter().map(|o| (o.port, o.bytes.clone())).collect();
            out.sort();
            (out, it.out.digests().len())
        })
        .unwrap()
}

fn frame(dst: u64, src: u64, ether_type: u16) -> Vec<u8> {
    let mut f = dst.to_be_bytes()[2..].to_vec();
    f.extend_from_slice(&src.to_be_bytes()[2..]);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.resize(60, 0);
    f
}

fn tagged(f: &[u8], vid: u16) -> Vec<u8> {
    let mut t = f[..12].to_vec();
    t.extend_from_slice(&[0x81, 0x00]);
    t.extend_from_slice(&vid.to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}

fn ipv4(dst_mac: u64, src_mac: u64, dst: [u8; 4], ttl: u8, sport: u16) -> Vec<u8> {
    let mut f = frame(dst_mac, src_mac, 0x0800)[..14].to_vec();
    let mut ip = vec![0x45, 0, 0, 46, 0, 0, 0, 0, ttl, 17, 0, 0, 10, 0, 10, 5];
    ip.extend_from_slice(&dst);
    let c = sluice_fastpath::p4::bits::csum16(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&[0, 53, 0, 26, 0, 0]);
    f.resize(60, 0);
    f
}

#[test]
fn the_configuration_bridges_routes_and_filters() {
    let app = app(&config(""));
    let host_a = 0x00_00_00_00_00_aa;
    // Unknown destination: flooded to b (untagged) and the trunk (tagged 10); learned.
    let f = frame(0x00_00_00_00_00_cc, host_a, 0x0800 + 1);
    let (out, digests) = run(&app, 1, &f);
    assert_eq!(out, vec![(2, f.clone()), (3, tagged(&f, 10))]);
    assert_eq!(digests, 1);
    // The static MAC: unicast, and no digest for it on its own port.
    let to_b = frame(0x00_00_00_00_00_bb, host_a, 0x0801);
    assert_eq!(run(&app, 1, &to_b).0, vec![(2, to_b.clone())]);
    assert_eq!(run(&app, 2, &frame(host_a, 0x00_00_00_00_00_bb, 0x0801)).1, 0);
    // The ACL drops its EtherType.
    assert_eq!(run(&app, 1, &frame(0x00_00_00_00_00_bb, host_a, 0x88b5)).0, vec![]);
    // Routed to 10.20.0.0/16 via the next hop on the trunk, VLAN 20.
    let p = ipv4(0x02_00_00_00_00_0a, host_a, [10, 20, 1, 1], 64, 1000);
    let out = run(&app, 1, &p).0;
    assert_eq!(out.len(), 1);
    let (port, o) = &out[0];
    assert_eq!(*port, 3);
    assert_eq!(o[..12], [0, 0, 0, 0, 0x20, 2, 2, 0, 0, 0, 0, 0x14]);
    assert_eq!(o[12..16], [0x81, 0, 0, 20], "tagged with VLAN 20");
    assert_eq!(o[18 + 8], 63, "TTL decremented");
    // ECMP over both next hops.
    let ports: HashSet<Vec<u8>> = (0..64)
        .map(|s| run(&app, 1, &ipv4(0x02_00_00_00_00_0a, host_a, [10, 30, 0, 1], 64, s)).0[0].1[..6].to_vec())
        .collect();
    assert_eq!(ports.len(), 2, "both next hops used");
}

#[test]
fn macs_are_learned_moved_and_aged() {
    let mut app = app(&config(""));
    let (h, other) = (0x00_00_00_00_00_aa, 0x00_00_00_00_00_cc);
    app.learn(&[(10, h, 1)]);
    assert_eq!(app.learned().get(&(10, h)), Some(&1));
    // A reply to the learned MAC is unicast, and its source is known: no digest.
    let reply = frame(h, other, 0x0801);
    assert_eq!(run(&app, 2, &reply).0, vec![(1, reply.clone())]);
    assert_eq!(run(&app, 1, &frame(other, h, 0x0801)).1, 0, "known: no digest");
    // It moves to port 2: unicast there now; from port 1 again, a digest.
    app.learn(&[(10, h, 2)]);
    assert_eq!(app.stats.moved.load(Ordering::Relaxed), 1);
    assert_eq!(run(&app, 3, &tagged(&reply, 10)).0, vec![(2, reply.clone())]);
    assert_eq!(run(&app, 1, &frame(other, h, 0x0801)).1, 1);
    // Static MACs never move.
    app.learn(&[(10, 0x00_00_00_00_00_bb, 1)]);
    assert_eq!(app.stats.static_conflicts.load(Ordering::Relaxed), 1);
    // Aging: the learning entry's timeout deletes both entries.
    let n = app.names.clone();
    let (src, _) = entries::learned(&n, 10, h, 2, 0);
    app.age(&pb::IdleTimeoutNotification { table_entry: vec![src], timestamp: 0 });
    assert!(app.learned().is_empty());
    assert_eq!(app.stats.aged.load(Ordering::Relaxed), 1);
    let (out, _) = run(&app, 3, &tagged(&reply, 10));
    assert_eq!(out.len(), 2, "flooded again: {out:?}");
}

#[test]
fn learning_stops_at_the_limit_and_counts() {
    let mut app = app(&config("[switch]\nmax_learned_macs = 2"));
    app.learn(&[(10, 1, 1), (10, 2, 1), (10, 3, 1)]);
    assert_eq!(app.learned().len(), 2);
    assert_eq!(app.stats.table_full.load(Ordering::Relaxed), 1);
}

#[test]
fn a_list_is_learned_in_one_write_and_a_refused_one_mac_at_a_time() {
    let mut app = app(&config(""));
    let writes = |app: &App| app.p4rt.stats.writes.load(Ordering::Relaxed);
    let before = writes(&app);
    // Two new MACs and one reported twice (the last port wins): one write.
    app.learn(&[(10, 0xa1, 1), (10, 0xa2, 1), (10, 0xa1, 2)]);
    assert_eq!(writes(&app) - before, 1);
    assert_eq!((app.learned().get(&(10, 0xa1)), app.learned().get(&(10, 0xa2))), (Some(&2), Some(&1)));
    assert_eq!(app.stats.learned.load(Ordering::Relaxed), 2);
    // A dmac entry the app does not know of makes the batch fail; the other MACs are
    // then written one at a time and learned.
    let (_, dst) = entries::learned(&app.names, 10, 0xa4, 1, 0);
    app.p4rt
        .write(&pb::WriteRequest {
            updates: vec![update(Type::Insert, pb::entity::Entity::TableEntry(dst))],
            ..Default::default()
        })
        .unwrap();
    let before = writes(&app);
    app.learn(&[(10, 0xa3, 1), (10, 0xa4, 1), (10, 0xa5, 1), (10, 0xa1, 1)]);
    assert_eq!(writes(&app) - before, 1 + 4);
    assert_eq!(app.learned().len(), 4, "a3 and a5 learned, a1 moved, a4 not: {:?}", app.learned());
    assert_eq!(app.learned().get(&(10, 0xa1)), Some(&1));
    assert!(!app.learned().contains_key(&(10, 0xa4)));
    assert_eq!((app.stats.learned.load(Ordering::Relaxed), app.stats.moved.load(Ordering::Relaxed)), (4, 1));
    assert_eq!(app.stats.write_errors.load(Ordering::Relaxed), 2, "the batch and a4's own write");
}

#[test]
fn digest_lists_are_learned_and_acknowledged() {
    let mut app = app(&config(""));
    let member = |v: u128| pb::P4Data { data: Some(pb::p4_data::Data::Bitstring(crate::p4rt::codec::encode(v))) };
    let sample = pb::P4Data {
        data: Some(pb::p4_data::Data::Struct(pb::P4StructLike { members: vec![member(10), member(0xaa), member(1)] })),
    };
    let digest_id = app.names.object_id(entries::DIGEST);
    app.handle(Update::Digest(pb::DigestList { digest_id, list_id: 1, data: vec![sample], timestamp: 0 }));
    assert_eq!(app.learned().get(&(10, 0xaa)), Some(&1));
}

#[test]
fn live_changes_are_written_as_diffs_and_bad_ones_change_nothing() {
    let mut app = app(&config(""));
    let host_a = 0x00_00_00_00_00_aa;
    let to = |net: u8| ipv4(0x02_00_00_00_00_0a, host_a, [10, net, 0, 1], 64, 7);
    assert_eq!(run(&app, 1, &to(40)).0, vec![], "no route yet");
    let r = app.change("add", "route", &serde_json::json!({"prefix": "10.40.0.0/16", "via": ["10.0.20.3"]})).unwrap();
    assert!(r.contains("10.40.0.0/16 added"), "{r}");
    let out = run(&app, 1, &to(40)).0;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1[..6], [0, 0, 0, 0, 0x20, 3], "via the new route's neighbor");
    // A refused change writes nothing: the route stays, the error says why.
    let e = app.change("add", "route", &serde_json::json!({"prefix": "10.50.0.0/16", "via": ["10.9.9.9"]}));
    assert!(e.unwrap_err().contains("via 10.9.9.9 is not a [[neighbor]]"));
    assert_eq!(run(&app, 1, &to(40)).0.len(), 1);
    // Deleting a neighbor that a route uses is refused whole.
    let e = app.change("del", "neighbor", &serde_json::json!({"ip": "10.0.20.3"}));
    assert!(e.unwrap_err().contains("is not a [[neighbor]]"));
    app.change("del", "route", &serde_json::json!({"prefix": "10.40.0.0/16"})).unwrap();
    assert_eq!(run(&app, 1, &to(40)).0, vec![], "route gone");
    // A port leaving a VLAN forgets what was learned on it there.
    app.learn(&[(10, host_a, 2)]);
    let e = app.change("set", "port", &serde_json::json!({"name": "b", "vlan": 20}));
    assert!(e.unwrap_err().contains("port \"b\" is not in VLAN 10"), "its static MAC is in the way");
    app.change("del", "mac", &serde_json::json!({"vlan": 10, "mac": "00:00:00:00:00:BB"})).unwrap();
    app.change("set", "port", &serde_json::json!({"name": "b", "vlan": 20})).unwrap();
    assert!(app.learned().is_empty());
    let f = frame(0x00_00_00_00_00_cc, host_a, 0x0801);
    assert_eq!(run(&app, 1, &f).0, vec![(3, tagged(&f, 10))], "b is no longer in VLAN 10");
    let v = app.view();
    assert_eq!(v["ports"][1]["untagged"], 20);
    assert_eq!(v["mode"], "active");
}

#[test]
fn a_vtep_added_live_encapsulates_to_its_remote() {
    let mut app = app(&config(""));
    let vtep = serde_json::json!({"local_ip": "192.0.2.1", "port": "t", "mac": "02:00:00:00:01:01",
        "next_hop_mac": "02:00:00:00:01:02", "vnis": [{"vni": 5000, "vlan": 10}], "remotes": ["192.0.2.2"]});
    app.change("add", "vtep", &vtep).unwrap();
    let remote = serde_json::json!({"vlan": 10, "mac": "00:00:00:00:99:01", "remote_vtep": "192.0.2.2"});
    app.change("add", "mac", &remote).unwrap();
    let f = frame(0x00_00_00_00_99_01, 0x00_00_00_00_00_aa, 0x0801);
    let out = run(&app, 1, &f).0;
    assert_eq!(out.len(), 1, "{out:?}");
    let (port, o) = &out[0];
    assert_eq!(*port, 3, "out of the underlay port");
    assert_eq!(o.len(), f.len() + 50, "Ethernet, IPv4, UDP and VXLAN in front");
    assert_eq!(o[50..], f[..], "the frame inside as it came");
    assert_eq!(o[46..49], [0x00, 0x13, 0x88], "VNI 5000");
    let e = app.change("del", "vtep", &serde_json::json!({"local_ip": "192.0.2.1"}));
    assert!(e.unwrap_err().contains("remote_vtep 192.0.2.2 is not a remote"), "its static MAC is in the way");
}

//! `sluicectl switch|vlan|router|neighbor|route|mac|vtep|acl|mirror`: the default program's
//! configuration, live (through the built-in app; see docs/default-program.md). Every
//! change is checked whole by `sluiced` before anything is written; none is written back
//! to the configuration file.

use clap::Subcommand;
use serde_json::{json, Value};

/// What one of these commands asks of the management API.
pub enum Request {
    /// Show the state, rendered by the function for the section.
    Show(fn(&Value) -> String),
    /// A change: op, section, item.
    Change(&'static str, &'static str, Value),
}

/// `sluicectl switch ...`
#[derive(Debug, Subcommand)]
pub enum SwitchCommand {
    /// The built-in app: mode (active, stepped back for a controller, idle) and counters.
    Show,
}

/// `sluicectl vlan ...`
#[derive(Debug, Subcommand)]
pub enum VlanCommand {
    /// Ports with their VLANs, and VLAN names.
    Show,
    /// Set a port's VLANs: `--access V`, or `--trunk V,V [--native V]`.
    Set {
        /// The port.
        port: String,
        /// Access port of this VLAN.
        #[arg(long, conflicts_with = "trunk")]
        access: Option<u16>,
        /// Trunk carrying these VLANs tagged (comma-separated).
        #[arg(long, value_delimiter = ',')]
        trunk: Vec<u16>,
        /// A trunk's native (untagged) VLAN.
        #[arg(long, requires = "trunk")]
        native: Option<u16>,
    },
    /// Name a VLAN.
    Add {
        /// 1..=4094.
        id: u16,
        /// Its name.
        name: String,
    },
    /// Remove a VLAN's name.
    Del {
        /// The VLAN.
        id: u16,
    },
}

/// `sluicectl router ...` (router interfaces)
#[derive(Debug, Subcommand)]
pub enum RouterCommand {
    /// Router MACs per VLAN.
    List,
    /// Route frames sent to MAC in VLAN.
    Add {
        /// The VLAN.
        vlan: u16,
        /// The router's MAC in it.
        mac: String,
    },
    /// Stop routing in VLAN.
    Del {
        /// The VLAN.
        vlan: u16,
    },
}

/// `sluicectl neighbor ...`
#[derive(Debug, Subcommand)]
pub enum NeighborCommand {
    /// Next hops.
    List,
    /// A next hop: address, MAC, port (and VLAN, default the port's untagged one).
    Add {
        /// IPv4 or IPv6 address.
        ip: String,
        /// Its MAC.
        mac: String,
        /// The port it is behind.
        port: String,
        /// Its VLAN.
        #[arg(long)]
        vlan: Option<u16>,
    },
    /// Remove a next hop (refused while a route uses it).
    Del {
        /// Its address.
        ip: String,
    },
}

/// `sluicectl route ...`
#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Static routes.
    List,
    /// A route via one or more neighbors (more: ECMP).
    Add {
        /// `10.0.0.0/8` or `2001:db8::/32`.
        prefix: String,
        /// Neighbor addresses.
        #[arg(long, required = true, num_args = 1.., value_delimiter = ',')]
        via: Vec<String>,
    },
    /// Remove a route.
    Del {
        /// Its prefix.
        prefix: String,
    },
}

/// `sluicectl mac ...`
#[derive(Debug, Subcommand)]
pub enum MacCommand {
    /// Static and learned MACs.
    List,
    /// A static MAC behind a port or a remote VTEP.
    Add {
        /// The VLAN.
        vlan: u16,
        /// The MAC.
        mac: String,
        /// The port.
        #[arg(long, required_unless_present = "remote_vtep", conflicts_with = "remote_vtep")]
        port: Option<String>,
        /// The remote VTEP's address.
        #[arg(long)]
        remote_vtep: Option<String>,
    },
    /// Remove a static MAC.
    Del {
        /// The VLAN.
        vlan: u16,
        /// The MAC.
        mac: String,
    },
}

/// `sluicectl vtep ...`
#[derive(Debug, Subcommand)]
pub enum VtepCommand {
    /// Local VXLAN tunnel endpoints with their VNIs and remotes.
    List,
    /// A local VTEP.
    Add {
        /// Its underlay address.
        local_ip: String,
        /// The underlay port.
        port: String,
        /// Source MAC of encapsulated frames.
        #[arg(long)]
        mac: String,
        /// Destination MAC of encapsulated frames (the underlay next hop).
        #[arg(long)]
        next_hop_mac: String,
        /// `VNI:VLAN`, repeatable or comma-separated.
        #[arg(long, value_delimiter = ',', value_parser = parse_vni)]
        vni: Vec<(u32, u16)>,
        /// Remote VTEP addresses, repeatable or comma-separated.
        #[arg(long, value_delimiter = ',')]
        remote: Vec<String>,
    },
    /// Remove a local VTEP.
    Del {
        /// Its address.
        local_ip: String,
    },
}

fn parse_vni(s: &str) -> Result<(u32, u16), String> {
    let (vni, vlan) = s.split_once(':').ok_or_else(|| format!("{s:?}: expected VNI:VLAN (e.g. 5000:10)"))?;
    Ok((vni.parse().map_err(|e| format!("{vni:?}: {e}"))?, vlan.parse().map_err(|e| format!("{vlan:?}: {e}"))?))
}

/// `sluicectl acl ...`
#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// ACL rules, highest priority first.
    List,
    /// A rule; fields left out match anything.
    Add {
        /// Higher wins; names the rule.
        #[arg(long)]
        priority: u32,
        /// permit, deny, punt or mirror.
        #[arg(long)]
        action: String,
        /// The mirror (with `--action mirror`).
        #[arg(long)]
        mirror: Option<String>,
        /// Ingress port.
        #[arg(long)]
        in_port: Option<String>,
        /// VLAN.
        #[arg(long)]
        vlan: Option<u16>,
        /// Source MAC (`mac` or `mac/mask`).
        #[arg(long)]
        src_mac: Option<String>,
        /// Destination MAC (`mac` or `mac/mask`).
        #[arg(long)]
        dst_mac: Option<String>,
        /// EtherType (`0x0800` or decimal).
        #[arg(long, value_parser = parse_u16)]
        ether_type: Option<u16>,
        /// IPv4 source prefix.
        #[arg(long)]
        src_ip: Option<String>,
        /// IPv4 destination prefix.
        #[arg(long)]
        dst_ip: Option<String>,
        /// IP protocol.
        #[arg(long)]
        proto: Option<u8>,
        /// TCP/UDP source port.
        #[arg(long)]
        src_port: Option<u16>,
        /// TCP/UDP destination port.
        #[arg(long)]
        dst_port: Option<u16>,
    },
    /// Remove a rule.
    Del {
        /// Its priority.
        priority: u32,
    },
}

/// `sluicectl mirror ...`
#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    /// Mirror destinations.
    List,
    /// A mirror: copies leave on PORT.
    Add {
        /// Its name (what ACL rules refer to).
        name: String,
        /// The port.
        port: String,
    },
    /// Remove a mirror (refused while a rule uses it).
    Del {
        /// Its name.
        name: String,
    },
}

fn parse_u16(s: &str) -> Result<u16, String> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u16::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s:?}: {e}"))
}

/// Drop the JSON nulls (keys left out).
fn compact(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        v => v,
    }
}

impl SwitchCommand {
    /// The request.
    pub fn request(self) -> Request {
        Request::Show(app)
    }
}

impl VlanCommand {
    /// The request.
    pub fn request(self) -> Request {
        match self {
            VlanCommand::Show => Request::Show(vlans),
            VlanCommand::Set { port, access, trunk, native } => {
                let v = if trunk.is_empty() {
                    json!({"name": port, "vlan_mode": "access", "vlan": access})
                } else {
                    json!({"name": port, "vlan_mode": "trunk", "trunk_vlans": trunk, "vlan": native})
                };
                Request::Change("set", "port", compact(v))
            }
            VlanCommand::Add { id, name } => Request::Change("add", "vlan", json!({"id": id, "name": name})),
            VlanCommand::Del { id } => Request::Change("del", "vlan", json!({"id": id})),
        }
    }
}

impl RouterCommand {
    /// The request.
    pub fn request(self) -> Request {
        match self {
            RouterCommand::List => Request::Show(|v| rows(v, "router_interfaces", &["vlan", "mac"])),
            RouterCommand::Add { vlan, mac } => {
                Request::Change("add", "router_interface", json!({"vlan": vlan, "mac": mac}))
            }
            RouterCommand::Del { vlan } => Request::Change("del", "router_interface", json!({"vlan": vlan})),
        }
    }
}

impl NeighborCommand {
    /// The request.
    pub fn request(self) -> Request {
        match self {
            NeighborCommand::List => Request::Show(|v| rows(v, "neighbors", &["ip", "mac", "port", "vlan"])),
            NeighborCommand::Add { ip, mac, port, vlan } => {
                Request::Change("add", "neighbor", compact(json!({"ip": ip, "mac": mac, "port": port, "vlan": vlan})))
            }
            NeighborCommand::Del { ip } => Request::Change("del", "neighbor", json!({"ip": ip})),
        }
    }
}

impl RouteCommand {
    /// The request.
    pub fn request(self) -> Request {
        match self {
            RouteCommand::List => Request::Show(|v| rows(v, "routes", &["prefix", "via"])),
            RouteCommand::Add { prefix, via } => Request::Change("add", "route", json!({"prefix": prefix, "via": via})),
            RouteCommand::Del { prefix } => Request::Change("del", "route", json!({"prefix": prefix})),
        }
    }
}

impl MacCommand {
    /// The request.
    pub fn request(self) -> Request {
        match self {
            MacCommand::List => Request::Show(macs),
            MacCommand::Add { vlan, mac, port, remote_vtep } => Request::Change(
                "add",
                "mac",
                compact(json!({"vlan": vlan, "mac": mac, "port": port, "remote_vtep": remote_vtep})),
            ),
            MacCommand::Del { vlan, mac } => Request::Change("del", "mac", json!({"vlan": vlan, "mac": mac})),
        }
    }
}

impl VtepCommand {
    /// The request.
    pub fn request(self) -> Request {
        match self {
            VtepCommand::List => Request::Show(vteps),
            VtepCommand::Add { local_ip, port, mac, next_hop_mac, vni, remote } => {
                let vnis: Vec<Value> = vni.iter().map(|(vni, vlan)| json!({"vni": vni, "vlan": vlan})).collect();
                Request::Change(
                    "add",
                    "vtep",
                    json!({"local_ip": local_ip, "port": port, "mac": mac, "next_hop_mac": next_hop_mac,
                           "vnis": vnis, "remotes": remote}),
                )
            }
            VtepCommand::Del { local_ip } => Request::Change("del", "vtep", json!({"local_ip": local_ip})),
        }
    }
}

impl AclCommand {
    /// The request.
    pub fn request(self) -> Request {
        match self {
            AclCommand::List => Request::Show(acls),
            AclCommand::Add {
                priority,
                action,
                mirror,
                in_port,
                vlan,
                src_mac,
                dst_mac,
                ether_type,
                src_ip,
                dst_ip,
                proto,
                src_port,
                dst_port,
            } => Request::Change(
                "add",
                "acl",
                compact(json!({
                    "priority": priority, "action": action, "mirror": mirror, "in_port": in_port, "vlan": vlan,
                    "src_mac": src_mac, "dst_mac": dst_mac, "ether_type": ether_type, "src_ip": src_ip,
                    "dst_ip": dst_ip, "proto": proto, "src_port": src_port, "dst_port": dst_port,
                })),
            ),
            AclCommand::Del { priority } => Request::Change("del", "acl", json!({"priority": priority})),
        }
    }
}

impl MirrorCommand {
    /// The request.
    pub fn request(self) -> Request {
        match self {
            MirrorCommand::List => Request::Show(|v| rows(v, "mirrors", &["name", "port"])),
            MirrorCommand::Add { name, port } => Request::Change("add", "mirror", json!({"name": name, "port": port})),
            MirrorCommand::Del { name } => Request::Change("del", "mirror", json!({"name": name})),
        }
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        v => v.to_string(),
    }
}

/// A table of `columns` of the items of `section`.
fn rows(v: &Value, section: &str, columns: &[&str]) -> String {
    let items = v[section].as_array().cloned().unwrap_or_default();
    table(columns, items.iter().map(|i| columns.iter().map(|c| cell(&i[*c])).collect()).collect())
}

fn table(columns: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut w: Vec<usize> = columns.iter().map(|c| c.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<0$}", w[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
            + "\n"
    };
    let mut out = line(columns.iter().map(|c| c.to_string()).collect());
    if rows.is_empty() {
        out.push_str("(none)\n");
    }
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

fn app(v: &Value) -> String {
    let mut out = format!("built-in app: {}\n", cell(&v["mode"]));
    let s = &v["switch"];
    out += &format!(
        "learning: {}, aging {} s, at most {} learned MACs\n",
        cell(&s["learning"]),
        cell(&s["mac_aging_s"]),
        cell(&s["max_learned_macs"])
    );
    if let Some(c) = v["counters"].as_object() {
        out += &c.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(" ");
        out.push('\n');
    }
    out
}

fn vlans(v: &Value) -> String {
    let mut out = rows(v, "ports", &["name", "p4_port", "vlan_mode", "untagged", "tagged"]);
    if v["vlans"].as_array().is_some_and(|a| !a.is_empty()) {
        out.push('\n');
        out += &rows(v, "vlans", &["id", "name"]);
    }
    out
}

fn macs(v: &Value) -> String {
    let mut r: Vec<Vec<String>> = v["macs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let at = if m["port"].is_null() { format!("vtep {}", cell(&m["remote_vtep"])) } else { cell(&m["port"]) };
            vec![cell(&m["vlan"]), cell(&m["mac"]), at, "static".into()]
        })
        .collect();
    for m in v["learned"].as_array().cloned().unwrap_or_default() {
        r.push(vec![cell(&m["vlan"]), cell(&m["mac"]), cell(&m["port"]), "learned".into()]);
    }
    table(&["vlan", "mac", "where", "kind"], r)
}

fn vteps(v: &Value) -> String {
    let r = v["vteps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| {
            let vnis: Vec<String> = t["vnis"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|m| format!("{}:{}", cell(&m["vni"]), cell(&m["vlan"])))
                .collect();
            vec![cell(&t["local_ip"]), cell(&t["port"]), cell(&t["mac"]), vnis.join(","), cell(&t["remotes"])]
        })
        .collect();
    table(&["local_ip", "port", "mac", "vni:vlan", "remotes"], r)
}

fn acls(v: &Value) -> String {
    let mut items = v["acls"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|a| std::cmp::Reverse(a["priority"].as_u64()));
    let fields =
        ["in_port", "vlan", "src_mac", "dst_mac", "ether_type", "src_ip", "dst_ip", "proto", "src_port", "dst_port"];
    let r = items
        .iter()
        .map(|a| {
            let m: Vec<String> =
                fields.iter().filter(|f| !a[**f].is_null()).map(|f| format!("{f}={}", cell(&a[*f]))).collect();
            let action = match a["mirror"].as_str() {
                Some(m) => format!("mirror:{m}"),
                None => cell(&a["action"]),
            };
            vec![cell(&a["priority"]), action, if m.is_empty() { "any".into() } else { m.join(" ") }]
        })
        .collect();
    table(&["priority", "action", "match"], r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_become_the_config_files_keys() {
        let Request::Change(op, section, v) =
            (RouteCommand::Add { prefix: "10.0.0.0/8".into(), via: vec!["10.0.20.2".into()] }).request()
        else {
            panic!()
        };
        assert_eq!((op, section), ("add", "route"));
        assert_eq!(v, json!({"prefix": "10.0.0.0/8", "via": ["10.0.20.2"]}));
        let Request::Change(_, _, v) =
            (VlanCommand::Set { port: "t".into(), access: None, trunk: vec![10, 20], native: None }).request()
        else {
            panic!()
        };
        assert_eq!(v, json!({"name": "t", "vlan_mode": "trunk", "trunk_vlans": [10, 20]}));
        assert_eq!(parse_u16("0x88b5"), Ok(0x88b5));
        let Request::Change(_, section, v) = (VtepCommand::Add {
            local_ip: "192.0.2.1".into(),
            port: "u".into(),
            mac: "02:00:00:00:01:01".into(),
            next_hop_mac: "02:00:00:00:01:02".into(),
            vni: vec![parse_vni("5000:10").unwrap()],
            remote: vec!["192.0.2.2".into()],
        })
        .request() else {
            panic!()
        };
        assert_eq!(section, "vtep");
        assert_eq!(v["vnis"], json!([{"vni": 5000, "vlan": 10}]));
        assert!(parse_vni("5000").unwrap_err().contains("VNI:VLAN"));
    }

    #[test]
    fn lists_render_as_tables() {
        let v = json!({"routes": [{"prefix": "10.0.0.0/8", "via": ["10.0.20.2", "10.0.20.3"]}],
                       "acls": [{"priority": 5, "action": "deny", "ether_type": 34997},
                                {"priority": 9, "action": "mirror", "mirror": "tap"}]});
        assert_eq!(rows(&v, "routes", &["prefix", "via"]), "prefix      via\n10.0.0.0/8  10.0.20.2,10.0.20.3\n");
        let a = acls(&v);
        assert!(a.find("mirror:tap").unwrap() < a.find("deny").unwrap(), "highest priority first: {a}");
        assert!(a.contains("ether_type=34997"));
    }
}

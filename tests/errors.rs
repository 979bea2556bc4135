//! End to end: bad configurations and bad devices give one actionable message and the
//! documented exit status (2: configuration/host, 1: run time).

mod common;
use common::*;

const PORTS: &str = "[[port]]\nname = \"in\"\ndevargs = \"net_null_e0\"\n\n[[port]]\nname = \"out\"\ndevargs = \"net_null_e1,no-rx=1\"\n";

fn run_config(s: &Scratch, text: &str) -> Run {
    let p = s.path("raw.toml");
    std::fs::write(&p, text).unwrap();
    s.run(&p, &["--duration", "0.5"])
}

fn expect(run: &Run, code: i32, needles: &[&str]) {
    let err = run.stderr();
    assert_eq!(run.code(), code, "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "want {n:?} in stderr: {err}");
    }
}

#[test]
fn missing_hugepages_say_how_to_get_them() {
    let s = Scratch::new("huge");
    let text =
        s.header().replace("hugepages = false", "hugepages = true").replace("memory_mb = 256", "memory_mb = 9000000")
            + PORTS;
    expect(
        &run_config(&s, &text),
        2,
        &["hugepages: need 9000000 MB", "/proc/sys/vm/nr_hugepages", "hugepages = false"],
    );
}

#[test]
fn bad_devargs_name_the_port_and_the_driver_list() {
    let s = Scratch::new("devargs");
    let text = s.header() + "[[port]]\nname = \"bad\"\ndevargs = \"net_nosuchdriver0,foo=1\"\n";
    expect(&run_config(&s, &text), 1, &["port \"bad\": cannot attach devargs \"net_nosuchdriver0,foo=1\"", "net_pcap"]);
}

#[test]
fn unknown_port_in_xconnect() {
    let s = Scratch::new("unknown");
    let text = s.header() + PORTS + "[[xconnect]]\nfrom = \"in\"\nto = \"nowhere\"\n";
    expect(&run_config(&s, &text), 2, &["unknown port \"nowhere\" (ports: in, out)"]);
}

#[test]
fn bad_core_list() {
    let s = Scratch::new("cores");
    let text = s.header().replace("cores = [", "cores = [999, ") + PORTS;
    expect(&run_config(&s, &text), 2, &["core 999 is not available to this process"]);
    let (_, worker) = cores();
    let text = s.header().replace(&format!("cores = [{worker}]"), "cores = \"x-1\"") + PORTS;
    expect(&run_config(&s, &text), 2, &["is not a core number or range"]);
}

#[test]
fn toml_errors_point_at_the_file() {
    let s = Scratch::new("toml");
    expect(&run_config(&s, "[workers\n"), 2, &["raw.toml", "line 1"]);
    let text = s.header() + PORTS + "[[port]]\nname = \"x\"\ndevargs = \"net_null_e2\"\nrx_queus = 2\n";
    expect(&run_config(&s, &text), 2, &["unknown field `rx_queus`"]);
}

#[test]
fn a_port_that_cannot_start_fails_with_a_hint() {
    let s = Scratch::new("nostart");
    // 4000 packets preloaded by infinite_rx into a 1023-mbuf pool cannot fit.
    s.write_pcap("big.pcap", &(0..4000).map(|i| pcap::udp_frame(i, 0)).collect::<Vec<_>>());
    let text = s.header()
        + &format!(
            "[mempool]\nmbufs = 1023\ncache_size = 0\n\n[[port]]\nname = \"replay\"\nrx_descriptors = 64\ntx_descriptors = 64\n\
             devargs = \"net_pcap_big,rx_pcap={},infinite_rx=1\"\n",
            s.path("big.pcap").display()
        );
    expect(&run_config(&s, &text), 1, &["port \"replay\"", "raise [mempool] mbufs"]);
}

#[test]
fn check_config_prints_the_eal_arguments_without_starting() {
    let s = Scratch::new("check");
    let cfg = s.write_config(PORTS);
    let run = s.run(&cfg, &["--check-config"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(run.stdout().contains("configuration OK: 2 ports"), "{}", run.stdout());
    assert!(run.stdout().contains("--no-huge --no-shconf -m 256"), "{}", run.stdout());
    assert!(run.stats.is_none(), "nothing ran");
}

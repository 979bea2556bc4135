//! Harness for end-to-end tests: run the real `sluiced` binary on DPDK virtual
//! devices with a generated configuration, and read back its counters and output.
//!
//! Every run is its own process (so its own EAL, with a unique `--file-prefix` and
//! no hugepages). Runs are serialised with a process-wide lock: a worker busy-polls
//! its core, and two at once on a 2-core machine would only measure contention.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

pub use sluice::control::pcap;

static SERIAL: Mutex<()> = Mutex::new(());
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A scratch directory for one test, removed on drop.
pub struct Scratch {
    pub dir: PathBuf,
    _serial: MutexGuard<'static, ()>,
}

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let dir = std::env::temp_dir().join(format!(
            "sluice-e2e-{}-{}-{tag}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir, _serial: serial }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn write_pcap(&self, name: &str, frames: &[Vec<u8>]) -> PathBuf {
        let p = self.path(name);
        pcap::write(std::fs::File::create(&p).unwrap(), frames).unwrap();
        p
    }

    pub fn read_pcap(&self, name: &str) -> Vec<Vec<u8>> {
        pcap::read(std::fs::File::open(self.path(name)).unwrap()).unwrap()
    }

    /// The `[eal]`, `[workers]`, `[management]` (a socket in the scratch directory)
    /// and `[metrics]` (a free loopback port) sections every test config starts with.
    pub fn header(&self) -> String {
        let (control, worker) = cores();
        format!(
            "[eal]\nhugepages = false\nmemory_mb = 256\nfile_prefix = \"{}\"\n\
             extra_args = [\"--no-pci\", \"--no-telemetry\", \"--log-level=*:warning\"]\n\n\
             [workers]\ncores = [{worker}]\ncontrol_core = {control}\n\n\
             [management]\nsocket = \"{}\"\n\n[metrics]\naddress = \"127.0.0.1:0\"\n\n",
            self.dir.file_name().unwrap().to_string_lossy(),
            self.socket().display()
        )
    }

    /// The management socket of configs from [`Scratch::header`].
    pub fn socket(&self) -> PathBuf {
        self.path("sluiced.sock")
    }

    /// Write `sluice.toml`: the header, `body`, and unless `body` has one, a
    /// `[p4runtime]` section on a free loopback port.
    pub fn write_config(&self, body: &str) -> PathBuf {
        let p = self.path("sluice.toml");
        let p4rt = if body.contains("[p4runtime]") { "" } else { "\n[p4runtime]\naddress = \"127.0.0.1:0\"\n" };
        std::fs::write(&p, format!("{}{body}{p4rt}", self.header())).unwrap();
        p
    }

    /// Run `sluiced --config <cfg> --stats-json <dir>/stats.json <extra>` to completion.
    pub fn run(&self, config: &Path, extra: &[&str]) -> Run {
        let json = self.path("stats.json");
        let _ = std::fs::remove_file(&json);
        let out = Command::new(env!("CARGO_BIN_EXE_sluiced"))
            .arg("--config")
            .arg(config)
            .arg("--stats-json")
            .arg(&json)
            .args(extra)
            .output()
            .expect("run sluiced");
        let stats = std::fs::read_to_string(&json).ok().map(|s| serde_json::from_str(&s).expect("stats JSON parses"));
        Run { out, stats }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// (control core, worker core): the first and last core this process may use.
pub fn cores() -> (usize, usize) {
    let mut ids: Vec<usize> = core_ids();
    ids.sort_unstable();
    assert!(ids.len() >= 2, "end-to-end tests need 2 cores (one worker, one control)");
    (ids[0], *ids.last().unwrap())
}

fn core_ids() -> Vec<usize> {
    // sched_getaffinity of this process, via /proc (no extra crate).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap().trim().to_string();
    sluice::control::config::parse_core_list(&list).unwrap()
}

/// A finished `sluiced` run.
pub struct Run {
    pub out: Output,
    pub stats: Option<serde_json::Value>,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn assert_ok(&self) -> &serde_json::Value {
        assert_eq!(self.code(), 0, "sluiced failed:\nstdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr());
        self.stats.as_ref().expect("stats JSON written")
    }
    /// The port report named `name`.
    pub fn port(&self, name: &str) -> &serde_json::Value {
        let ports = self.stats.as_ref().expect("stats")["ports"].as_array().unwrap();
        ports.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no port {name}"))
    }
    pub fn worker(&self, i: usize) -> &serde_json::Value {
        &self.stats.as_ref().expect("stats")["workers"][i]
    }
}

/// Frames of assorted sizes (60..=1514 bytes), each distinct.
pub fn assorted_frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut f = pcap::udp_frame(i as u32, i as u16);
            let size = 60 + (i * 37) % (1514 - 60 + 1);
            f.resize(size, (i % 251) as u8);
            f
        })
        .collect()
}

/// The shared P4 corpus (`SLUICE_P4_CORPUS`, default `../shared/p4`), or `None` with
/// a visible notice when it is absent.
pub fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("SLUICE_P4_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/p4"));
    if dir.join("README.md").exists() {
        Some(dir)
    } else {
        eprintln!("SKIP: P4 corpus not found at {} (set SLUICE_P4_CORPUS)", dir.display());
        None
    }
}

fn parse_mac(s: &str) -> Vec<u8> {
    s.split(':').map(|x| u8::from_str_radix(x, 16).unwrap()).collect()
}

fn parse_ip(s: &str) -> Vec<u8> {
    s.split('.').map(|x| x.parse::<u8>().unwrap()).collect()
}

/// Ethernet + IPv4 (correct checksum) + UDP + payload.
pub fn udp4(dst: &str, src: &str, sip: &str, dip: &str, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = parse_mac(dst);
    p.extend(parse_mac(src));
    p.extend([0x08, 0x00]);
    let total = (28 + payload.len()) as u16;
    let mut ip = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, ttl, 17, 0, 0];
    ip.extend(parse_ip(sip));
    ip.extend(parse_ip(dip));
    let c = pcap::ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend(ip);
    let ulen = (8 + payload.len()) as u16;
    p.extend([0x30, 0x39, 0x00, 0x35, (ulen >> 8) as u8, ulen as u8, 0, 0]);
    p.extend_from_slice(payload);
    p
}

/// Bytes of a MAC address.
pub fn mac(s: &str) -> Vec<u8> {
    parse_mac(s)
}

/// A `sluiced` running in the background (stopped with SIGTERM on [`Daemon::stop`]
/// or drop).
pub struct Daemon {
    child: std::process::Child,
    /// The P4Runtime address it listens on.
    pub p4rt: String,
    stderr: std::sync::Arc<Mutex<String>>,
}

impl Scratch {
    /// Start `sluiced --config <cfg>` and wait until it forwards (its servers listen).
    pub fn spawn(&self, config: &Path) -> Daemon {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluiced"))
            .arg("--config")
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start sluiced");
        let err = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let l = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            // Ready once it forwards: every server (P4Runtime, metrics, management)
            // listens by then.
            let mut p4rt = String::new();
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("sluiced: P4Runtime server listening on ") {
                    p4rt = rest.split_whitespace().next().unwrap_or_default().to_string();
                }
                if line.starts_with("sluiced: forwarding:") {
                    let _ = tx.send(p4rt.clone());
                }
                let mut g = l.lock().unwrap_or_else(|p| p.into_inner());
                g.push_str(&line);
                g.push('\n');
            }
        });
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(addr) => Daemon { child, p4rt: addr, stderr: log },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("sluiced did not start its P4Runtime server:\n{}", log.lock().unwrap());
            }
        }
    }
}

impl Daemon {
    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// SIGTERM, then wait; returns the exit code.
    pub fn stop(mut self) -> i32 {
        self.terminate()
    }

    fn terminate(&mut self) -> i32 {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().map(|s| s.code().unwrap_or(-1)).unwrap_or(-1);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

/// Set up the pinned P4Runtime client venvs (once per test process).
pub fn p4rt_clients() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(root.join("scripts/p4rt-clients.sh")).output().expect("run scripts/p4rt-clients.sh");
        assert!(
            out.status.success(),
            "scripts/p4rt-clients.sh failed (it needs python3-venv and PyPI):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// Run a client script of `tests/p4rt/` in `venv` against `addr`; returns its JSON
/// summary, panicking with its output if it failed.
pub fn p4rt_script(venv: &str, script: &str, addr: &str, corpus: &Path, extra: &[&str]) -> serde_json::Value {
    p4rt_clients();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join(".venv-p4rt").join(venv).join("bin/python"))
        .arg(root.join("tests/p4rt").join(script))
        .args(["--addr", addr, "--corpus"])
        .arg(corpus)
        .args(extra)
        .output()
        .expect("run a P4Runtime client script");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{script} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{script}: last line is not JSON ({e}): {last}"))
}

/// Whether this process runs as root (effective uid 0, from /proc).
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}

/// Run `sluicectl --socket <socket> <args>`: (exit code, stdout, stderr).
pub fn ctl(socket: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluicectl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("run sluicectl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `sluicectl --json <args>`, which must succeed.
pub fn ctl_json(socket: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let (code, out, err) = ctl(socket, &a);
    assert_eq!(code, 0, "sluicectl {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("sluicectl {args:?}: not JSON ({e}): {out}"))
}

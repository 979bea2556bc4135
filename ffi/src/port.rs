//! Ethernet ports (ethdev): attach by devargs, configure queues, start/stop, link,
//! stats, and single-owner rx/tx queue handles for the workers.
//!
//! # Life cycle
//! [`Port::attach`] probes a device by devargs (`rte_dev_probe`: any vdev such as
//! `net_pcap0,rx_pcap=in.pcap`, `net_null0`, `net_ring0`, `net_tap0,iface=x`, or a PCI
//! address) → [`Port::configure`] → [`Port::start`] → [`Port::rx_queue`] /
//! [`Port::tx_queue`] handles for workers → (handles dropped) → [`Port::stop`] → drop,
//! which closes the port (flushing e.g. a pcap tx file) and detaches the device.
//!
//! # Soundness
//! DPDK's burst functions are not thread-safe per queue and must not run on a stopped
//! or closed port. Queue handles are claimed once (a second claim of the same queue
//! fails), take `&mut self` to poll, and each holds an `Arc<Port>`; stopping needs
//! `&mut Port`, which no one can get while any handle is alive.

use std::ffi::{CStr, CString};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::eal::Eal;
use crate::mbuf::Burst;

/// Held while a device is probed or removed: the port a probe creates is found by
/// difference of the port list, which a concurrent probe or removal (two threads
/// adding ports, tests running in parallel) would confuse.
static PROBE: std::sync::Mutex<()> = std::sync::Mutex::new(());
use crate::mempool::Mempool;
use crate::{raw, DpdkError, Result};

/// A DPDK port id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How to configure a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConf {
    /// Receive queues (RSS spreads flows over them when more than one).
    pub rx_queues: u16,
    /// Transmit queues (one per worker, so workers never share one).
    pub tx_queues: u16,
    /// Descriptors per rx queue (adjusted to the device's limits).
    pub rx_descriptors: u16,
    /// Descriptors per tx queue (adjusted to the device's limits).
    pub tx_descriptors: u16,
    /// MTU to set, if any (checked against the device's range).
    pub mtu: Option<u16>,
    /// Put the port in promiscuous mode (a switch port wants every frame).
    pub promiscuous: bool,
}

impl Default for PortConf {
    fn default() -> Self {
        Self { rx_queues: 1, tx_queues: 1, rx_descriptors: 1024, tx_descriptors: 1024, mtu: None, promiscuous: true }
    }
}

/// What the device says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// The PMD name, e.g. `net_pcap`.
    pub driver: String,
    /// Maximum rx queues.
    pub max_rx_queues: u16,
    /// Maximum tx queues.
    pub max_tx_queues: u16,
    /// Smallest MTU accepted.
    pub min_mtu: u16,
    /// Largest MTU accepted.
    pub max_mtu: u16,
    /// NUMA socket of the device, if known.
    pub socket: Option<u32>,
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// Link up.
    pub up: bool,
    /// Speed in Mb/s (0 if unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// The basic hardware/PMD counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets the NIC dropped because no rx descriptor was free.
    pub rx_missed: u64,
    /// Erroneous received packets.
    pub rx_errors: u64,
    /// Failed transmissions.
    pub tx_errors: u64,
    /// Rx mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// An attached ethdev port. See the module doc for its life cycle.
#[derive(Debug)]
pub struct Port {
    id: PortId,
    name: String,
    devargs: String,
    configured: bool,
    started: bool,
    rx_claims: Box<[AtomicBool]>,
    tx_claims: Box<[AtomicBool]>,
}

fn valid_port(p: u16) -> bool {
    // SAFETY: rte_eth_dev_is_valid_port accepts any value and only reads ethdev state.
    unsafe { raw::rte_eth_dev_is_valid_port(p) != 0 }
}

impl Port {
    /// Probe the device described by `devargs` and return its port. `name` is Sluice's
    /// name for the port, used in messages.
    pub fn attach(_eal: &Eal, name: &str, devargs: &str) -> Result<Port> {
        let subject = format!("port {name:?}, devargs {devargs:?}");
        let c = CString::new(devargs).map_err(|_| DpdkError::new("rte_dev_probe", subject.clone(), libc::EINVAL))?;
        // Which port the probe creates is found by difference: ethdev names do not
        // always follow the devargs (net_ring names ports after its nodeaction ring).
        // Probes and removals are serialised so no other one moves the list meanwhile.
        let _probe = PROBE.lock().unwrap_or_else(|e| e.into_inner());
        let before: Vec<u16> = (0..raw::RTE_MAX_ETHPORTS as u16).filter(|p| valid_port(*p)).collect();
        // SAFETY: the EAL is initialised (token); c is a valid C string DPDK copies.
        let ret = unsafe { raw::rte_dev_probe(c.as_ptr()) };
        if ret < 0 {
            return Err(DpdkError::from_ret("rte_dev_probe", subject, ret));
        }
        let new_ports: Vec<u16> =
            (0..raw::RTE_MAX_ETHPORTS as u16).filter(|p| !before.contains(p) && valid_port(*p)).collect();
        let id = match new_ports.as_slice() {
            [id] => *id,
            [] => {
                return Err(DpdkError::new(
                    "rte_dev_probe",
                    format!("{subject}: probed, but the device created no ethdev port (already attached?)"),
                    libc::ENODEV,
                ))
            }
            many => {
                return Err(DpdkError::new(
                    "rte_dev_probe",
                    format!("{subject}: the device created {} ports {many:?}; name one port per devargs", many.len()),
                    libc::EINVAL,
                ))
            }
        };
        Ok(Port {
            id: PortId(id),
            name: name.to_owned(),
            devargs: devargs.to_owned(),
            configured: false,
            started: false,
            rx_claims: Box::new([]),
            tx_claims: Box::new([]),
        })
    }

    /// The DPDK port id.
    pub fn id(&self) -> PortId {
        self.id
    }

    /// Sluice's name for the port.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The devargs it was attached with.
    pub fn devargs(&self) -> &str {
        &self.devargs
    }

    fn subject(&self) -> String {
        format!("port {} {:?}", self.id, self.name)
    }

    fn raw_info(&self) -> Result<raw::rte_eth_dev_info> {
        let mut info = raw::rte_eth_dev_info::default();
        // SAFETY: id is a valid attached port; info is a valid out struct.
        let ret = unsafe { raw::rte_eth_dev_info_get(self.id.0, &mut info) };
        if ret < 0 {
            return Err(DpdkError::from_ret("rte_eth_dev_info_get", self.subject(), ret));
        }
        Ok(info)
    }

    /// Device capabilities and limits.
    pub fn info(&self) -> Result<PortInfo> {
        let info = self.raw_info()?;
        let driver = if info.driver_name.is_null() {
            String::from("unknown")
        } else {
            // SAFETY: driver_name points at the PMD's static NUL-terminated name.
            unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy().into_owned()
        };
        // SAFETY: valid port id.
        let socket = unsafe { raw::rte_eth_dev_socket_id(self.id.0) };
        Ok(PortInfo {
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            min_mtu: info.min_mtu,
            max_mtu: info.max_mtu,
            socket: u32::try_from(socket).ok(),
        })
    }

    /// Configure queues and MTU; rx queues take their mbufs from `pool`. The port must
    /// be stopped.
    pub fn configure(&mut self, pool: &'static Mempool, conf: &PortConf) -> Result<()> {
        let subject = self.subject();
        if self.started {
            return Err(DpdkError::new("rte_eth_dev_configure", format!("{subject}: port is started"), libc::EBUSY));
        }
        let info = self.raw_info()?;
        if conf.rx_queues == 0 || conf.rx_queues > info.max_rx_queues {
            return Err(DpdkError::new(
                "rte_eth_dev_configure",
                format!("{subject}: {} rx queues asked, device allows 1..={}", conf.rx_queues, info.max_rx_queues),
                libc::EINVAL,
            ));
        }
        if conf.tx_queues == 0 || conf.tx_queues > info.max_tx_queues {
            return Err(DpdkError::new(
                "rte_eth_dev_configure",
                format!("{subject}: {} tx queues asked, device allows 1..={}", conf.tx_queues, info.max_tx_queues),
                libc::EINVAL,
            ));
        }
        if let Some(mtu) = conf.mtu {
            if mtu < info.min_mtu || mtu > info.max_mtu {
                return Err(DpdkError::new(
                    "rte_eth_dev_configure",
                    format!("{subject}: MTU {mtu} outside the device's range {}..={}", info.min_mtu, info.max_mtu),
                    libc::EINVAL,
                ));
            }
        }
        let mut eth_conf = raw::rte_eth_conf::default();
        if let Some(mtu) = conf.mtu {
            eth_conf.rxmode.mtu = u32::from(mtu);
        }
        if conf.rx_queues > 1 && info.flow_type_rss_offloads != 0 {
            eth_conf.rxmode.mq_mode = raw::rte_eth_rx_mq_mode::RTE_ETH_MQ_RX_RSS;
            eth_conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads;
        }
        // SAFETY: valid stopped port; eth_conf is a valid, fully initialised struct.
        let ret = unsafe { raw::rte_eth_dev_configure(self.id.0, conf.rx_queues, conf.tx_queues, &eth_conf) };
        if ret < 0 {
            return Err(DpdkError::from_ret("rte_eth_dev_configure", subject, ret));
        }
        let (mut nb_rx, mut nb_tx) = (conf.rx_descriptors, conf.tx_descriptors);
        // SAFETY: valid configured port; both out pointers are valid.
        let ret = unsafe { raw::rte_eth_dev_adjust_nb_rx_tx_desc(self.id.0, &mut nb_rx, &mut nb_tx) };
        if ret < 0 {
            return Err(DpdkError::from_ret("rte_eth_dev_adjust_nb_rx_tx_desc", subject, ret));
        }
        // SAFETY: valid port id.
        let socket = unsafe { raw::rte_eth_dev_socket_id(self.id.0) };
        let socket = if socket < 0 { raw::SOCKET_ID_ANY as u32 } else { socket as u32 };
        for q in 0..conf.rx_queues {
            // SAFETY: q < configured rx queues; NULL rxconf means the PMD's defaults; the
            // pool outlives the port ('static).
            let ret =
                unsafe { raw::rte_eth_rx_queue_setup(self.id.0, q, nb_rx, socket, std::ptr::null(), pool.as_ptr()) };
            if ret < 0 {
                return Err(DpdkError::from_ret("rte_eth_rx_queue_setup", format!("{subject} queue {q}"), ret));
            }
        }
        for q in 0..conf.tx_queues {
            // SAFETY: q < configured tx queues; NULL txconf means the PMD's defaults.
            let ret = unsafe { raw::rte_eth_tx_queue_setup(self.id.0, q, nb_tx, socket, std::ptr::null()) };
            if ret < 0 {
                return Err(DpdkError::from_ret("rte_eth_tx_queue_setup", format!("{subject} queue {q}"), ret));
            }
        }
        if conf.promiscuous {
            // Not every PMD has a promiscuous mode (ENOTSUP); a switch port that cannot
            // be promiscuous still forwards what reaches it, so this is not fatal.
            // SAFETY: valid configured port.
            let _ = unsafe { raw::rte_eth_promiscuous_enable(self.id.0) };
        }
        self.rx_claims = (0..conf.rx_queues).map(|_| AtomicBool::new(false)).collect();
        self.tx_claims = (0..conf.tx_queues).map(|_| AtomicBool::new(false)).collect();
        self.configured = true;
        Ok(())
    }

    /// Start the port.
    pub fn start(&mut self) -> Result<()> {
        if !self.configured {
            return Err(DpdkError::new(
                "rte_eth_dev_start",
                format!("{}: not configured", self.subject()),
                libc::EINVAL,
            ));
        }
        if self.started {
            return Ok(());
        }
        // SAFETY: valid configured port; exclusive access through &mut self.
        let ret = unsafe { raw::rte_eth_dev_start(self.id.0) };
        if ret < 0 {
            return Err(DpdkError::from_ret("rte_eth_dev_start", self.subject(), ret));
        }
        self.started = true;
        Ok(())
    }

    /// Stop the port. Needs `&mut self`: no queue handle can be alive.
    pub fn stop(&mut self) -> Result<()> {
        if !self.started {
            return Ok(());
        }
        // SAFETY: valid started port; no queue handle exists (they borrow an Arc of
        // self, and we have &mut self), so no thread is polling it.
        let ret = unsafe { raw::rte_eth_dev_stop(self.id.0) };
        self.started = false;
        if ret < 0 {
            return Err(DpdkError::from_ret("rte_eth_dev_stop", self.subject(), ret));
        }
        Ok(())
    }

    /// Whether the port is started.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Link state, without waiting for auto-negotiation.
    pub fn link(&self) -> Result<LinkStatus> {
        let mut link = raw::rte_eth_link::default();
        // SAFETY: valid port; link is a valid out struct.
        let ret = unsafe { raw::rte_eth_link_get_nowait(self.id.0, &mut link) };
        if ret < 0 {
            return Err(DpdkError::from_ret("rte_eth_link_get_nowait", self.subject(), ret));
        }
        Ok(LinkStatus {
            up: link.link_status() != 0,
            speed_mbps: if link.link_speed == u32::MAX { 0 } else { link.link_speed },
            full_duplex: link.link_duplex() != 0,
        })
    }

    /// The MTU the device has now.
    pub fn mtu(&self) -> Result<u16> {
        let mut mtu = 0u16;
        // SAFETY: valid port; mtu is a valid out parameter.
        let ret = unsafe { raw::rte_eth_dev_get_mtu(self.id.0, &mut mtu) };
        if ret < 0 {
            return Err(DpdkError::from_ret("rte_eth_dev_get_mtu", self.subject(), ret));
        }
        Ok(mtu)
    }

    /// The device's basic counters.
    pub fn stats(&self) -> Result<PortStats> {
        let mut s = raw::rte_eth_stats::default();
        // SAFETY: valid port; s is a valid out struct. Reading stats while workers
        // poll is allowed by ethdev (counters are read, not reset).
        let ret = unsafe { raw::rte_eth_stats_get(self.id.0, &mut s) };
        if ret < 0 {
            return Err(DpdkError::from_ret("rte_eth_stats_get", self.subject(), ret));
        }
        Ok(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Every extended counter the PMD offers, by name.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>> {
        // SAFETY: valid port; NULL/0 asks for the count.
        let n = unsafe { raw::rte_eth_xstats_get_names(self.id.0, std::ptr::null_mut(), 0) };
        if n < 0 {
            return Err(DpdkError::from_ret("rte_eth_xstats_get_names", self.subject(), n));
        }
        let mut names = vec![raw::rte_eth_xstat_name::default(); n as usize];
        let mut vals = vec![raw::rte_eth_xstat::default(); n as usize];
        // SAFETY: names has room for n entries.
        let got_names = unsafe { raw::rte_eth_xstats_get_names(self.id.0, names.as_mut_ptr(), n as u32) };
        // SAFETY: vals has room for n entries.
        let got_vals = unsafe { raw::rte_eth_xstats_get(self.id.0, vals.as_mut_ptr(), n as u32) };
        if got_names < 0 || got_vals < 0 {
            return Err(DpdkError::from_ret("rte_eth_xstats_get", self.subject(), got_names.min(got_vals)));
        }
        let count = (got_names.min(got_vals) as usize).min(n as usize);
        Ok(vals[..count]
            .iter()
            .filter_map(|v| {
                let name = names.get(v.id as usize)?;
                // SAFETY: xstat names are NUL-terminated within their fixed array.
                let s = unsafe { CStr::from_ptr(name.name.as_ptr()) };
                Some((s.to_string_lossy().into_owned(), v.value))
            })
            .collect())
    }

    /// Claim rx queue `q` for one poller. Fails if the port is not started, `q` does not
    /// exist, or another handle holds it.
    pub fn rx_queue(self: &Arc<Self>, q: u16) -> Result<RxQueue> {
        self.claim(&self.rx_claims, q, "rx")?;
        Ok(RxQueue { port: Arc::clone(self), port_id: self.id.0, queue: q })
    }

    /// Claim tx queue `q` for one sender (same rules as [`Port::rx_queue`]).
    pub fn tx_queue(self: &Arc<Self>, q: u16) -> Result<TxQueue> {
        self.claim(&self.tx_claims, q, "tx")?;
        Ok(TxQueue { port: Arc::clone(self), port_id: self.id.0, queue: q })
    }

    fn claim(&self, claims: &[AtomicBool], q: u16, dir: &str) -> Result<()> {
        let subject = || format!("{} {dir} queue {q}", self.subject());
        if !self.started {
            return Err(DpdkError::new("queue claim", format!("{}: port not started", subject()), libc::EINVAL));
        }
        let slot = claims
            .get(usize::from(q))
            .ok_or_else(|| DpdkError::new("queue claim", format!("{}: no such queue", subject()), libc::EINVAL))?;
        if slot.swap(true, Ordering::AcqRel) {
            return Err(DpdkError::new("queue claim", format!("{}: already claimed", subject()), libc::EBUSY));
        }
        Ok(())
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        let _ = self.stop();
        let _probe = PROBE.lock().unwrap_or_else(|e| e.into_inner());
        let info = self.raw_info().ok();
        // SAFETY: the port is stopped and no queue handle exists (we are being dropped,
        // and handles hold an Arc to us). Closing flushes PMD state (e.g. pcap files).
        unsafe { raw::rte_eth_dev_close(self.id.0) };
        if let Some(info) = info {
            if !info.device.is_null() {
                // SAFETY: device is the rte_device of this (now closed) port, obtained
                // just before closing; removing detaches the device we probed.
                unsafe { raw::rte_dev_remove(info.device) };
            }
        }
    }
}

// `rte_eth_rx_burst` / `rte_eth_tx_burst` are `static inline` in rte_ethdev.h; called
// through bindgen's out-of-line C wrappers they cost a call per burst that Rust cannot
// inline (measured: the wrappers plus `rte_rdtsc__extern` were ~5% of a cross-connect
// worker's cycles). These are the same two functions written in Rust over the exported
// `rte_eth_fp_ops` table, statement for statement as DPDK 22.11 has them with its
// default build config (RTE_ETHDEV_RXTX_CALLBACKS on; RTE_ETHDEV_DEBUG_RX/TX and
// fast-path tracing off): the PMD's burst function on the queue's data pointer, plus the
// rx/tx callbacks (pdump, latency stats) when any are installed.

/// SAFETY: `port_id` must be a started port, `queue_id` a configured queue of it polled by
/// no other thread, and `pkts` valid for `n` writes.
#[inline(always)]
unsafe fn fp_rx_burst(port_id: u16, queue_id: u16, pkts: *mut *mut raw::rte_mbuf, n: u16) -> u16 {
    use std::sync::atomic::AtomicPtr;
    // The callback slot is read with a relaxed atomic load, as rte_eth_rx_burst does.
    // SAFETY: port_id is a valid port (< RTE_MAX_ETHPORTS) whose fp_ops entry, once started,
    // holds its queue data array and burst function; the PMD contract is the caller's.
    unsafe {
        let p = &*std::ptr::addr_of!(raw::rte_eth_fp_ops).cast::<raw::rte_eth_fp_ops>().add(usize::from(port_id));
        let qd = *p.rxq.data.add(usize::from(queue_id));
        let burst = p.rx_pkt_burst.unwrap_unchecked();
        let nb_rx = burst(qd, pkts, n);
        let cb = AtomicPtr::from_ptr(p.rxq.clbk.add(usize::from(queue_id))).load(Ordering::Relaxed);
        if cb.is_null() {
            nb_rx
        } else {
            raw::rte_eth_call_rx_callbacks(port_id, queue_id, pkts, nb_rx, n, cb)
        }
    }
}

/// SAFETY: `port_id` must be a started port, `queue_id` a configured tx queue of it used by
/// no other thread, and `pkts` valid for `n` owned mbufs.
#[inline(always)]
unsafe fn fp_tx_burst(port_id: u16, queue_id: u16, pkts: *mut *mut raw::rte_mbuf, n: u16) -> u16 {
    use std::sync::atomic::AtomicPtr;
    // SAFETY: as in fp_rx_burst, for the tx side; the tx callbacks run before the PMD
    // burst, as rte_eth_tx_burst does.
    unsafe {
        let p = &*std::ptr::addr_of!(raw::rte_eth_fp_ops).cast::<raw::rte_eth_fp_ops>().add(usize::from(port_id));
        let qd = *p.txq.data.add(usize::from(queue_id));
        let mut n = n;
        let cb = AtomicPtr::from_ptr(p.txq.clbk.add(usize::from(queue_id))).load(Ordering::Relaxed);
        if !cb.is_null() {
            n = raw::rte_eth_call_tx_callbacks(port_id, queue_id, pkts, n, cb);
        }
        let burst = p.tx_pkt_burst.unwrap_unchecked();
        burst(qd, pkts, n)
    }
}

/// Exclusive handle on one rx queue of a started port.
#[derive(Debug)]
pub struct RxQueue {
    port: Arc<Port>,
    port_id: u16,
    queue: u16,
}

impl RxQueue {
    /// Receive up to the burst's free room; returns how many packets were added.
    #[inline(always)]
    pub fn rx_burst(&mut self, burst: &mut Burst) -> usize {
        let (slots, room) = burst.rx_slots();
        // SAFETY: the port is started and stays so while this handle lives (module doc);
        // this handle is the queue's only poller (&mut self, claimed once); slots has
        // room for `room` pointers, which the PMD fills with owned mbufs.
        let n = unsafe { fp_rx_burst(self.port_id, self.queue, slots, room as u16) } as usize;
        burst.rx_filled(n);
        n
    }

    /// The port this queue belongs to.
    pub fn port(&self) -> &Arc<Port> {
        &self.port
    }

    /// The queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        self.port.rx_claims[usize::from(self.queue)].store(false, Ordering::Release);
    }
}

/// Exclusive handle on one tx queue of a started port.
#[derive(Debug)]
pub struct TxQueue {
    port: Arc<Port>,
    port_id: u16,
    queue: u16,
}

impl TxQueue {
    /// Send the burst's packets from the front; returns how many the device took. The
    /// ones it did not take stay in the burst (at its front).
    #[inline(always)]
    pub fn tx_burst(&mut self, burst: &mut Burst) -> usize {
        let (slots, len) = burst.tx_slots();
        if len == 0 {
            return 0;
        }
        // SAFETY: port started for this handle's lifetime; sole sender on this queue;
        // slots holds `len` owned mbufs, and ownership of the first n passes to the PMD.
        let n = unsafe { fp_tx_burst(self.port_id, self.queue, slots, len as u16) } as usize;
        burst.tx_consumed(n);
        n
    }

    /// The port this queue belongs to.
    pub fn port(&self) -> &Arc<Port> {
        &self.port
    }

    /// The queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        self.port.tx_claims[usize::from(self.queue)].store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbuf::Mbuf;
    use crate::mempool::DEFAULT_DATA_ROOM;

    #[test]
    fn ring_pmd_loops_packets_and_counts_them() {
        let eal = crate::test_eal::eal();
        let pool = Mempool::create(eal, "port_test_ring", 4095, 0, DEFAULT_DATA_ROOM, None).unwrap();
        // net_ring with nodeaction CREATE: one port whose tx ring feeds its own rx.
        let mut port = Port::attach(eal, "loop", "net_ring_ptest0,nodeaction=r_ptest:0:CREATE").unwrap();
        port.configure(pool, &PortConf { rx_descriptors: 512, tx_descriptors: 512, ..Default::default() }).unwrap();
        assert_eq!(port.info().unwrap().driver, "net_ring");
        port.start().unwrap();
        let port = Arc::new(port);
        let mut rx = port.rx_queue(0).unwrap();
        let mut tx = port.tx_queue(0).unwrap();
        assert_eq!(port.rx_queue(0).unwrap_err().errno, libc::EBUSY, "one poller per queue");
        assert_eq!(port.tx_queue(5).unwrap_err().errno, libc::EINVAL);

        let mut out = Burst::new();
        for i in 0..10u8 {
            out.push(Mbuf::from_bytes(pool, &[i; 64]).unwrap()).unwrap();
        }
        assert_eq!(tx.tx_burst(&mut out), 10);
        assert!(out.is_empty());
        let mut got = Burst::new();
        assert_eq!(rx.rx_burst(&mut got), 10);
        for i in 0..10 {
            assert_eq!(got.data(i), &[i as u8; 64]);
        }
        drop(got);
        let st = port.stats().unwrap();
        assert_eq!((st.rx_packets, st.tx_packets), (10, 10));
        assert!(port.link().unwrap().up);
        drop((rx, tx));
        let mut port = Arc::try_unwrap(port).expect("handles gone, port unique");
        port.stop().unwrap();
        assert_eq!(pool.in_use(), 0, "no mbuf leaked");
    }

    #[test]
    fn bad_devargs_name_the_call_and_the_devargs() {
        let eal = crate::test_eal::eal();
        let err = Port::attach(eal, "bogus", "net_nosuchdriver0,x=1").unwrap_err();
        assert_eq!(err.call, "rte_dev_probe");
        assert!(err.to_string().contains("net_nosuchdriver0,x=1"), "{err}");
    }

    #[test]
    fn configure_rejects_out_of_range_queues_and_mtu() {
        let eal = crate::test_eal::eal();
        let pool = Mempool::create(eal, "port_test_cfg", 1023, 0, DEFAULT_DATA_ROOM, None).unwrap();
        let mut port = Port::attach(eal, "n", "net_null_ptest0,no-rx=1").unwrap();
        let err = port.configure(pool, &PortConf { rx_queues: 0, ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("0 rx queues asked"), "{err}");
        let err = port.configure(pool, &PortConf { mtu: Some(10), ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("MTU 10 outside"), "{err}");
        assert!(port.start().is_err(), "cannot start unconfigured");
        assert!(port.rx_queue_claim_needs_start());
    }

    impl Port {
        fn rx_queue_claim_needs_start(self) -> bool {
            let p = Arc::new(self);
            p.rx_queue(0).is_err()
        }
    }
}

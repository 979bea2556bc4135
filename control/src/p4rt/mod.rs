//! The P4Runtime server (`p4.v1.P4Runtime`, API v1.5.0), what BMv2's
//! simple_switch_grpc serves: pipeline config, Write/Read of every v1model entity,
//! the StreamChannel (arbitration, packet-out, packet-in, digests, idle timeouts).
//!
//! * [`arbiter`]: primary/backup election per role.
//! * [`device`]: the pipelines and control's copy of the state; writes reach every
//!   worker before they return (see its module doc).
//! * [`schema`]: P4Runtime ids resolved to the compiled program's.
//! * [`codec`], [`read`]: entities to and from the engine's state.
//!
//! * [`digest`]: DigestLists from the workers' samples (batching, acks, timeouts).
//! * [`idle`]: idle-timeout notifications from the entries' hit counts.
//! * [`operator`]: what the management API asks of the program (summary, table commands).
//!
//! Not supported yet, and refused as UNIMPLEMENTED (never ignored): writing meter
//! counter data, one-shot selector programming, backup replicas, clone session
//! class of service.
//!
//! Threads: tonic on a small tokio runtime on control's core; writes, reads and
//! pipeline changes run on its blocking pool (they wait for the workers); the
//! uplink thread turns the workers' CPU-port packets into PacketIns and their
//! digest samples into DigestLists, and sweeps for idle entries.

pub mod arbiter;
pub mod codec;
pub mod device;
pub mod digest;
pub mod idle;
pub mod operator;
pub mod read;
pub mod schema;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use prost::Message as _;
use sluice_proto::google::rpc::Status as RpcStatus;
use sluice_proto::p4::v1 as pb;
use sluice_proto::p4::v1::p4_runtime_server::{P4Runtime, P4RuntimeServer};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt as _;
use tonic::{Code, Request, Response, Status, Streaming};

use self::arbiter::{Arbiter, Notice, StreamId};
use self::codec::Fail;
use self::device::{Device, Pipeline};
use self::digest::Digests;
use crate::background::Background;
use crate::workers::Workers;
use sluice_fastpath::uplink::ToControl;

type Sink = mpsc::Sender<Result<pb::StreamMessageResponse, Status>>;

/// Where stream updates go when no external primary is connected (the built-in
/// app); whether it took the update.
pub type LocalSink = Box<dyn Fn(pb::stream_message_response::Update) -> bool + Send>;

/// Messages queued per stream before it is considered stuck (packet-ins are dropped
/// and counted then).
const STREAM_QUEUE: usize = 1024;

/// Entities per ReadResponse message.
const READ_CHUNK: usize = 1000;

/// Counters of the P4Runtime service.
#[derive(Debug, Default)]
pub struct P4rtStats {
    /// Write RPCs.
    pub writes: AtomicU64,
    /// Updates in them.
    pub updates: AtomicU64,
    /// Updates refused.
    pub update_errors: AtomicU64,
    /// Read RPCs.
    pub reads: AtomicU64,
    /// Packet-outs injected.
    pub packet_outs: AtomicU64,
    /// Packet-outs dropped (bad metadata, no CPU port, data plane busy).
    pub packet_out_drops: AtomicU64,
    /// Packet-ins delivered.
    pub packet_ins: AtomicU64,
    /// Packet-ins dropped (no primary, a full stream, undecodable).
    pub packet_in_drops: AtomicU64,
    /// DigestLists delivered.
    pub digest_lists: AtomicU64,
    /// DigestLists not delivered (no primary, a full stream).
    pub digest_list_drops: AtomicU64,
    /// IdleTimeoutNotifications delivered.
    pub idle_notifications: AtomicU64,
    /// IdleTimeoutNotifications not delivered (no primary, a full stream).
    pub idle_notification_drops: AtomicU64,
}

/// The P4Runtime service state.
pub struct P4rt {
    device_id: u64,
    cpu_port: Option<u32>,
    device: Mutex<Device>,
    arbiter: Mutex<Arbiter<Sink>>,
    workers: Option<Arc<Workers>>,
    next_stream: AtomicU64,
    /// The digest engine of the running pipeline (its own lock: the uplink thread
    /// feeds it while writes hold the device).
    pub digests: Mutex<Digests>,
    /// The built-in app (`crate::app`): stream updates (packet-ins, digests, idle
    /// timeouts) go to it while no external primary is connected.
    local: Mutex<Option<LocalSink>>,
    /// Counters.
    pub stats: P4rtStats,
}

impl std::fmt::Debug for P4rt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P4rt").field("device_id", &self.device_id).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn status(f: Fail) -> Status {
    Status::new(f.code, f.message)
}

/// The spec's batch error: UNKNOWN, with one `p4.v1.Error` per update in the details.
fn batch_status(results: &[Result<(), Fail>], what: &str) -> Status {
    let failed = results.iter().filter(|r| r.is_err()).count();
    let details = results
        .iter()
        .map(|r| {
            let e = match r {
                Ok(()) => pb::Error::default(),
                Err(f) => pb::Error { canonical_code: f.code as i32, message: f.message.clone(), ..Default::default() },
            };
            prost_types::Any { type_url: "type.googleapis.com/p4.v1.Error".into(), value: e.encode_to_vec() }
        })
        .collect();
    let message = format!("{failed} of {} {what} failed", results.len());
    let rpc = RpcStatus { code: Code::Unknown as i32, message: message.clone(), details };
    Status::with_details(Code::Unknown, message, rpc.encode_to_vec().into())
}

/// Pack `values` (bit widths in wire order) MSB first into whole bytes.
pub fn pack_bits(fields: &[(u128, u32)]) -> Vec<u8> {
    let total: u32 = fields.iter().map(|(_, w)| *w).sum();
    let mut out = vec![0u8; total.div_ceil(8) as usize];
    let mut pos = 0u32;
    for (v, w) in fields {
        for i in 0..*w {
            if (v >> (w - 1 - i)) & 1 == 1 {
                let bit = pos + i;
                out[(bit / 8) as usize] |= 0x80 >> (bit % 8);
            }
        }
        pos += w;
    }
    out
}

/// Unpack fields of `widths` bits MSB first from the front of `bytes`, or `None` if
/// `bytes` is too short.
pub fn unpack_bits(bytes: &[u8], widths: &[u32]) -> Option<Vec<u128>> {
    let total: u32 = widths.iter().sum();
    if (bytes.len() as u32) * 8 < total {
        return None;
    }
    let mut pos = 0u32;
    let mut out = Vec::with_capacity(widths.len());
    for w in widths {
        let mut v = 0u128;
        for i in 0..*w {
            let bit = pos + i;
            v = (v << 1) | ((bytes[(bit / 8) as usize] >> (7 - bit % 8)) & 1) as u128;
        }
        out.push(v);
        pos += w;
    }
    Some(out)
}

impl P4rt {
    /// The service for device `device_id`, driving `workers`, starting with
    /// `initial` (a program from the configuration file) if any.
    pub fn new(
        device_id: u64,
        cpu_port: Option<u32>,
        workers: Option<Arc<Workers>>,
        initial: Option<Pipeline>,
    ) -> Arc<Self> {
        let p = Arc::new(P4rt {
            device_id,
            cpu_port,
            device: Mutex::new(Device { running: initial, saved: None }),
            arbiter: Mutex::new(Arbiter::new(device_id)),
            workers,
            next_stream: AtomicU64::new(1),
            digests: Mutex::default(),
            local: Mutex::new(None),
            stats: P4rtStats::default(),
        });
        p.sync_digests(&lock(&p.device));
        p
    }

    /// Point the digest engine at the running pipeline's schema and configs.
    fn sync_digests(&self, dev: &Device) {
        let r = dev.running.as_ref();
        let empty = BTreeMap::new();
        lock(&self.digests).configure(r.map(|p| &p.schema), r.map_or(&empty, |p| &p.digests));
    }

    fn check_device(&self, id: u64) -> Result<(), Status> {
        if id != self.device_id {
            return Err(Status::not_found(format!("no device {id} (this switch is device {})", self.device_id)));
        }
        Ok(())
    }

    /// SetForwardingPipelineConfig, after the primary check.
    pub fn set_pipeline(&self, req: &pb::SetForwardingPipelineConfigRequest) -> Result<(), Status> {
        use pb::set_forwarding_pipeline_config_request::Action;
        let action = Action::try_from(req.action).unwrap_or(Action::Unspecified);
        let verify = || -> Result<Pipeline, Status> {
            let Some(c) = &req.config else {
                return Err(Status::invalid_argument(format!("{} needs a config", action.as_str_name())));
            };
            Pipeline::verify(c).map_err(status)
        };
        let mut dev = lock(&self.device);
        match action {
            Action::Verify => verify().map(drop),
            Action::VerifyAndSave => {
                dev.saved = Some(verify()?);
                Ok(())
            }
            Action::VerifyAndCommit => {
                let p = verify()?;
                self.commit(&mut dev, p)
            }
            Action::Commit => {
                if req.config.is_some() {
                    return Err(Status::invalid_argument("COMMIT takes no config: it commits the saved one"));
                }
                let Some(p) = dev.saved.take() else {
                    return Err(Status::not_found("no saved config to commit (VERIFY_AND_SAVE first)"));
                };
                self.commit(&mut dev, p)
            }
            Action::ReconcileAndCommit => {
                let p = verify()?;
                let same = dev.running.as_ref().is_some_and(|r| {
                    r.config.p4info == p.config.p4info && r.config.p4_device_config == p.config.p4_device_config
                });
                if !same {
                    return Err(Status::invalid_argument(
                        "RECONCILE_AND_COMMIT keeps forwarding state only for the program already running; \
                         this config differs: use VERIFY_AND_COMMIT (which clears the state)",
                    ));
                }
                let r = dev.running.as_mut().expect("checked above");
                r.config.cookie = p.config.cookie;
                Ok(())
            }
            Action::Unspecified => Err(Status::invalid_argument("SetForwardingPipelineConfig needs an action")),
        }
    }

    fn commit(&self, dev: &mut Device, p: Pipeline) -> Result<(), Status> {
        if let Some(w) = &self.workers {
            w.set_pipeline(&p.ir, &p.rt)
                .map_err(|e| Status::unavailable(format!("the data plane did not take the pipeline: {e}")))?;
        }
        eprintln!("sluiced: P4Runtime: pipeline {} committed", p.ir.name);
        dev.running = Some(p);
        dev.saved = None;
        self.sync_digests(dev);
        Ok(())
    }

    /// GetForwardingPipelineConfig.
    pub fn get_pipeline(
        &self,
        req: &pb::GetForwardingPipelineConfigRequest,
    ) -> Result<pb::ForwardingPipelineConfig, Status> {
        use pb::get_forwarding_pipeline_config_request::ResponseType as T;
        self.check_device(req.device_id)?;
        let mut dev = lock(&self.device);
        let Some(p) = dev.current() else {
            return Err(Status::failed_precondition(format!(
                "no forwarding pipeline config set for device {}",
                self.device_id
            )));
        };
        let c = &p.config;
        Ok(match T::try_from(req.response_type).unwrap_or(T::All) {
            T::All => c.clone(),
            T::CookieOnly => pb::ForwardingPipelineConfig { cookie: c.cookie, ..Default::default() },
            T::P4infoAndCookie => {
                pb::ForwardingPipelineConfig { p4info: c.p4info.clone(), cookie: c.cookie, ..Default::default() }
            }
            T::DeviceConfigAndCookie => pb::ForwardingPipelineConfig {
                p4_device_config: c.p4_device_config.clone(),
                cookie: c.cookie,
                ..Default::default()
            },
        })
    }

    /// Write, after the primary check. Its latency (until every worker has the
    /// change) goes to the `sluice_p4runtime_write_duration_seconds` histogram.
    pub fn write(&self, req: &pb::WriteRequest) -> Result<(), Status> {
        let t0 = Instant::now();
        let r = self.write_updates(req);
        metrics::histogram!(crate::telemetry::WRITE_DURATION).record(t0.elapsed().as_secs_f64());
        r
    }

    fn write_updates(&self, req: &pb::WriteRequest) -> Result<(), Status> {
        use pb::write_request::Atomicity;
        let rollback = match Atomicity::try_from(req.atomicity) {
            Ok(Atomicity::ContinueOnError) => false,
            // Every batch reaches each worker as one command, applied between two
            // bursts: rolled-back batches never reach the data plane at all.
            Ok(Atomicity::RollbackOnError) | Ok(Atomicity::DataplaneAtomic) => true,
            Err(_) => return Err(Status::invalid_argument(format!("unknown atomicity {}", req.atomicity))),
        };
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        self.stats.updates.fetch_add(req.updates.len() as u64, Ordering::Relaxed);
        let results = {
            let mut dev = lock(&self.device);
            let r = dev.write(&req.updates, rollback, self.workers.as_deref()).map_err(status)?;
            let digests = req.updates.iter().any(|u| {
                matches!(u.entity.as_ref().and_then(|e| e.entity.as_ref()), Some(pb::entity::Entity::DigestEntry(_)))
            });
            if digests {
                self.sync_digests(&dev);
            }
            r
        };
        let failed = results.iter().filter(|r| r.is_err()).count();
        if failed == 0 {
            return Ok(());
        }
        self.stats.update_errors.fetch_add(failed as u64, Ordering::Relaxed);
        Err(batch_status(&results, "updates"))
    }

    /// Read: the entities, or the batch error.
    pub fn read(&self, req: &pb::ReadRequest) -> Result<Vec<pb::Entity>, (Vec<pb::Entity>, Status)> {
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        if let Err(s) = self.check_device(req.device_id) {
            return Err((vec![], s));
        }
        let results = match lock(&self.device).read(&req.entities, self.workers.as_deref()) {
            Ok(r) => r,
            Err(f) => return Err((vec![], status(f))),
        };
        let mut out = vec![];
        let mut statuses = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Ok(v) => {
                    out.extend(v);
                    statuses.push(Ok(()));
                }
                Err(f) => statuses.push(Err(f)),
            }
        }
        if statuses.iter().all(Result::is_ok) {
            Ok(out)
        } else if statuses.len() == 1 {
            Err((out, status(statuses.pop().expect("one").expect_err("an error"))))
        } else {
            Err((out, batch_status(&statuses, "read requests")))
        }
    }

    /// Packet-out: the frame (controller header + payload) into the pipeline on the
    /// CPU port. A refusal is reported on the stream.
    pub fn packet_out(&self, p: &pb::PacketOut) -> Result<(), Fail> {
        let Some(cpu) = self.cpu_port else {
            return codec::fail(Code::FailedPrecondition, "no CPU port is configured ([p4runtime] cpu_port)");
        };
        let schema = {
            let mut dev = lock(&self.device);
            match dev.running.as_mut() {
                Some(p) => Arc::clone(&p.schema),
                None => return codec::fail(Code::FailedPrecondition, "no forwarding pipeline is running"),
            }
        };
        if p.metadata.len() != schema.packet_out.len() {
            return codec::fail(
                Code::InvalidArgument,
                format!("packet_out needs {} metadata fields, {} given", schema.packet_out.len(), p.metadata.len()),
            );
        }
        let mut fields = Vec::with_capacity(schema.packet_out.len());
        for (id, name, w) in &schema.packet_out {
            let Some(m) = p.metadata.iter().find(|m| m.metadata_id == *id) else {
                return codec::fail(
                    Code::InvalidArgument,
                    format!("packet_out metadata {name:?} (id {id}) is missing"),
                );
            };
            fields.push((codec::decode(&m.value, *w, &|| format!("packet_out metadata {name:?}"))?, *w));
        }
        let mut frame = pack_bits(&fields);
        frame.extend_from_slice(&p.payload);
        let Some(w) = &self.workers else {
            return codec::fail(Code::Unavailable, "no data plane");
        };
        w.inject(cpu, frame).map_err(|e| Fail { code: Code::Unavailable, message: e.to_string() })?;
        self.stats.packet_outs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A frame the pipeline sent to the CPU port, as a PacketIn.
    pub fn packet_in(&self, frame: &[u8]) -> Option<pb::PacketIn> {
        let schema = lock(&self.device).running.as_ref().map(|p| Arc::clone(&p.schema))?;
        let widths: Vec<u32> = schema.packet_in.iter().map(|(_, _, w)| *w).collect();
        let values = unpack_bits(frame, &widths)?;
        let header = widths.iter().sum::<u32>().div_ceil(8) as usize;
        let metadata = schema
            .packet_in
            .iter()
            .zip(values)
            .map(|((id, _, _), v)| pb::PacketMetadata { metadata_id: *id, value: codec::encode(v) })
            .collect();
        Some(pb::PacketIn { payload: frame[header..].to_vec(), metadata })
    }

    /// Deliver a packet-in to the primary of every role.
    pub fn deliver_packet_in(&self, frame: &[u8]) {
        let delivered = match self.packet_in(frame) {
            Some(p) => self.to_primaries(pb::stream_message_response::Update::Packet(p)),
            None => false,
        };
        let c = if delivered { &self.stats.packet_ins } else { &self.stats.packet_in_drops };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Hand stream updates to the built-in app while no external primary is
    /// connected.
    pub fn set_local(&self, sink: LocalSink) {
        *lock(&self.local) = Some(sink);
    }

    /// Whether an external controller is the primary of some role.
    pub fn has_external_primary(&self) -> bool {
        !lock(&self.arbiter).primaries().is_empty()
    }

    /// Run `f` on the running pipeline (control's copy of the state).
    pub(crate) fn with_running<R>(&self, f: impl FnOnce(&mut Pipeline) -> R) -> Option<R> {
        lock(&self.device).running.as_mut().map(f)
    }

    /// The running pipeline's cookie (`None`: no pipeline, or no cookie).
    pub fn running_cookie(&self) -> Option<u64> {
        lock(&self.device).running.as_ref().and_then(|p| p.config.cookie.as_ref()).map(|c| c.cookie)
    }

    /// Send `update` to the primary of every role (to the built-in app when there is
    /// none); whether any took it.
    fn to_primaries(&self, update: pb::stream_message_response::Update) -> bool {
        let sinks = lock(&self.arbiter).primaries();
        if sinks.is_empty() {
            return lock(&self.local).as_ref().is_some_and(|sink| sink(update));
        }
        let mut any = false;
        for s in sinks {
            any |= s.try_send(Ok(pb::StreamMessageResponse { update: Some(update.clone()) })).is_ok();
        }
        any
    }

    fn deliver_digests(&self, lists: Vec<pb::DigestList>) {
        for l in lists {
            let ok = self.to_primaries(pb::stream_message_response::Update::Digest(l));
            let c = if ok { &self.stats.digest_lists } else { &self.stats.digest_list_drops };
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A digest sample from a worker; when the digest engine next has work.
    pub fn on_digest(&self, list: u32, values: Vec<u128>, now: Instant) -> Option<Instant> {
        let (lists, next) = {
            let mut d = lock(&self.digests);
            let lists = d.sample(list, values, now);
            (lists, d.next_deadline())
        };
        self.deliver_digests(lists);
        next
    }

    /// A `DigestListAck` from the stream of a primary.
    pub fn on_digest_ack(&self, a: &pb::DigestListAck) -> Result<(), Fail> {
        lock(&self.digests).ack(a.digest_id, a.list_id).map_err(|message| Fail { code: Code::InvalidArgument, message })
    }

    /// Entries idle for their TTL, as one notification (none when nothing expired).
    pub fn idle_sweep(&self, now: Instant) -> Result<Option<pb::IdleTimeoutNotification>, Fail> {
        let mut dev = lock(&self.device);
        let Some(p) = dev.running.as_mut() else { return Ok(None) };
        if p.idle.interval().is_none() {
            return Ok(None);
        }
        self.sweep_running(p, now)
    }

    fn sweep_running(&self, p: &mut Pipeline, now: Instant) -> Result<Option<pb::IdleTimeoutNotification>, Fail> {
        device::observe_hits(p, self.workers.as_deref(), now)?;
        let expired = p.idle.expired(now);
        if expired.is_empty() {
            return Ok(None);
        }
        let s = &*p.schema;
        let table_entry = expired
            .into_iter()
            .filter_map(|(t, h)| {
                let ts = s.tables.get(s.table_of_ir.get(&t)?)?;
                Some(codec::key_msg(ts, p.rt.tables[t as usize].get(h)?))
            })
            .collect();
        Ok(Some(pb::IdleTimeoutNotification { table_entry, timestamp: codec::now_ns() }))
    }

    /// Periodic work of the uplink thread at `now`: digest timeouts and, when
    /// `sweep` is due, the idle sweep. Returns when to come back.
    pub fn tick(&self, now: Instant, sweep: &mut Instant) -> Instant {
        let lists = lock(&self.digests).poll(now);
        self.deliver_digests(lists);
        if now >= *sweep {
            let (swept, interval) = {
                let mut dev = lock(&self.device);
                match dev.running.as_mut() {
                    Some(p) => match p.idle.interval() {
                        Some(i) => (self.sweep_running(p, now), Some(i)),
                        None => (Ok(None), None),
                    },
                    None => (Ok(None), None),
                }
            };
            match swept {
                Ok(Some(n)) => {
                    let ok = self.to_primaries(pb::stream_message_response::Update::IdleTimeoutNotification(n));
                    let c = if ok { &self.stats.idle_notifications } else { &self.stats.idle_notification_drops };
                    c.fetch_add(1, Ordering::Relaxed);
                }
                Ok(None) => {}
                Err(f) => eprintln!("sluiced: P4Runtime: idle sweep failed: {}", f.message),
            }
            *sweep = now + interval.unwrap_or(idle::MAX_SWEEP);
        }
        let digest = lock(&self.digests).next_deadline();
        digest.map_or(*sweep, |d| d.min(*sweep))
    }

    fn notify(notices: Vec<Notice<Sink>>) {
        for (sink, m) in notices {
            let msg = pb::StreamMessageResponse { update: Some(pb::stream_message_response::Update::Arbitration(m)) };
            let _ = sink.try_send(Ok(msg));
        }
    }

    fn stream_error(sink: &Sink, f: Fail, details: Option<pb::stream_error::Details>) {
        use pb::stream_error::Details;
        let details = details.unwrap_or(Details::Other(pb::StreamOtherError { other: None }));
        let e = pb::StreamError {
            canonical_code: f.code as i32,
            message: f.message,
            details: Some(details),
            ..Default::default()
        };
        let _ = sink
            .try_send(Ok(pb::StreamMessageResponse { update: Some(pb::stream_message_response::Update::Error(e)) }));
    }

    async fn serve_stream(self: Arc<Self>, mut inbound: Streaming<pb::StreamMessageRequest>, sink: Sink) {
        use pb::stream_message_request::Update as U;
        let id: StreamId = self.next_stream.fetch_add(1, Ordering::Relaxed);
        while let Some(msg) = inbound.next().await {
            let Ok(msg) = msg else { break };
            let arbitrated = lock(&self.arbiter).knows(id);
            match msg.update {
                Some(U::Arbitration(a)) => {
                    let r = lock(&self.arbiter).update(id, sink.clone(), &a);
                    match r {
                        Ok(n) => Self::notify(n),
                        Err(s) => {
                            let _ = sink.send(Err(s)).await;
                            break;
                        }
                    }
                }
                _ if !arbitrated => {
                    let s = Status::failed_precondition(
                        "the first StreamChannel message must be a MasterArbitrationUpdate",
                    );
                    let _ = sink.send(Err(s)).await;
                    break;
                }
                Some(U::Packet(p)) => {
                    let me = Arc::clone(&self);
                    let primary = lock(&self.arbiter).is_primary(id);
                    let r = if primary {
                        tokio::task::spawn_blocking(move || {
                            let r = me.packet_out(&p);
                            (r, p)
                        })
                        .await
                        .map_err(|e| Fail { code: Code::Internal, message: e.to_string() })
                    } else {
                        Ok((codec::fail(Code::PermissionDenied, "only the primary may send packet-outs"), p))
                    };
                    match r {
                        Ok((Ok(()), _)) => {}
                        Ok((Err(f), p)) => {
                            self.stats.packet_out_drops.fetch_add(1, Ordering::Relaxed);
                            let d = pb::stream_error::Details::PacketOut(pb::PacketOutError { packet_out: Some(p) });
                            Self::stream_error(&sink, f, Some(d));
                        }
                        Err(f) => Self::stream_error(&sink, f, None),
                    }
                }
                Some(U::DigestAck(a)) => {
                    let r = if lock(&self.arbiter).is_primary(id) {
                        self.on_digest_ack(&a)
                    } else {
                        codec::fail(Code::PermissionDenied, "only the primary may acknowledge digest lists")
                    };
                    if let Err(f) = r {
                        let d = pb::stream_error::Details::DigestListAck(pb::DigestListAckError {
                            digest_list_ack: Some(a),
                        });
                        Self::stream_error(&sink, f, Some(d));
                    }
                }
                Some(U::Other(_)) | None => Self::stream_error(
                    &sink,
                    Fail { code: Code::Unimplemented, message: "unknown StreamChannel message".into() },
                    None,
                ),
            }
        }
        Self::notify(lock(&self.arbiter).remove(id));
    }
}

/// The tonic service over a shared [`P4rt`].
#[derive(Debug, Clone)]
pub struct Service(pub Arc<P4rt>);

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Status> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Status::internal(format!("request task failed: {e}")))
}

#[tonic::async_trait]
impl P4Runtime for Service {
    async fn write(&self, request: Request<pb::WriteRequest>) -> Result<Response<pb::WriteResponse>, Status> {
        let req = request.into_inner();
        lock(&self.0.arbiter).check_primary(req.device_id, &req.role, &req.election_id)?;
        let me = Arc::clone(&self.0);
        blocking(move || me.write(&req)).await??;
        Ok(Response::new(pb::WriteResponse {}))
    }

    type ReadStream = ReceiverStream<Result<pb::ReadResponse, Status>>;

    async fn read(&self, request: Request<pb::ReadRequest>) -> Result<Response<Self::ReadStream>, Status> {
        let req = request.into_inner();
        let me = Arc::clone(&self.0);
        let (entities, err) = match blocking(move || me.read(&req)).await? {
            Ok(e) => (e, None),
            Err((e, s)) if e.is_empty() => return Err(s),
            Err((e, s)) => (e, Some(s)),
        };
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            for chunk in entities.chunks(READ_CHUNK) {
                if tx.send(Ok(pb::ReadResponse { entities: chunk.to_vec() })).await.is_err() {
                    return;
                }
            }
            if entities.is_empty() {
                let _ = tx.send(Ok(pb::ReadResponse { entities: vec![] })).await;
            }
            if let Some(s) = err {
                let _ = tx.send(Err(s)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn set_forwarding_pipeline_config(
        &self,
        request: Request<pb::SetForwardingPipelineConfigRequest>,
    ) -> Result<Response<pb::SetForwardingPipelineConfigResponse>, Status> {
        let req = request.into_inner();
        lock(&self.0.arbiter).check_primary(req.device_id, &req.role, &req.election_id)?;
        let me = Arc::clone(&self.0);
        blocking(move || me.set_pipeline(&req)).await??;
        Ok(Response::new(pb::SetForwardingPipelineConfigResponse {}))
    }

    async fn get_forwarding_pipeline_config(
        &self,
        request: Request<pb::GetForwardingPipelineConfigRequest>,
    ) -> Result<Response<pb::GetForwardingPipelineConfigResponse>, Status> {
        let config = self.0.get_pipeline(request.get_ref())?;
        Ok(Response::new(pb::GetForwardingPipelineConfigResponse { config: Some(config) }))
    }

    type StreamChannelStream = ReceiverStream<Result<pb::StreamMessageResponse, Status>>;

    async fn stream_channel(
        &self,
        request: Request<Streaming<pb::StreamMessageRequest>>,
    ) -> Result<Response<Self::StreamChannelStream>, Status> {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        tokio::spawn(Arc::clone(&self.0).serve_stream(request.into_inner(), tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn capabilities(
        &self,
        _: Request<pb::CapabilitiesRequest>,
    ) -> Result<Response<pb::CapabilitiesResponse>, Status> {
        Ok(Response::new(pb::CapabilitiesResponse {
            p4runtime_api_version: sluice_proto::P4RUNTIME_API_VERSION.into(),
            ..Default::default()
        }))
    }
}

impl P4rt {
    /// Serve the workers' uplink (a thread of its own): packet-ins and digest
    /// samples to the primaries, digest list timeouts, idle sweeps.
    pub fn spawn_uplink(self: &Arc<Self>, rx: std::sync::mpsc::Receiver<ToControl>) {
        use std::sync::mpsc::RecvTimeoutError;
        let p4rt = Arc::clone(self);
        let _ = std::thread::Builder::new().name("sluice-uplink".into()).spawn(move || {
            let mut sweep = Instant::now();
            let mut next = Instant::now();
            loop {
                let now = Instant::now();
                if now >= next {
                    next = p4rt.tick(now, &mut sweep);
                }
                match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
                    Ok(ToControl::PacketIn(m)) => p4rt.deliver_packet_in(m.data()),
                    Ok(ToControl::Digest { list, values }) => {
                        if let Some(d) = p4rt.on_digest(list, values, Instant::now()) {
                            next = next.min(d);
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        });
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// The bound address (the real port when 0 was asked).
    pub addr: SocketAddr,
    /// The service state.
    pub p4rt: Arc<P4rt>,
    _thread: Background,
}

impl Server {
    /// Bind `addr` and serve `p4rt` on a tokio runtime of its own threads (which
    /// inherit the calling thread's CPU affinity: control's core).
    pub fn start(addr: SocketAddr, p4rt: Arc<P4rt>) -> Result<Server, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(4)
            .thread_name("sluice-p4rt")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the P4Runtime runtime: {e}"))?;
        let listener = rt.block_on(tokio::net::TcpListener::bind(addr)).map_err(|e| {
            format!("P4Runtime: cannot listen on {addr}: {e} (set [p4runtime] address, or enabled = false)")
        })?;
        let bound = listener.local_addr().map_err(|e| format!("P4Runtime: {e}"))?;
        let svc = P4RuntimeServer::new(Service(Arc::clone(&p4rt)))
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let thread = Background::spawn("sluice-p4rt", move |stop| {
            rt.block_on(async move {
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                let r = tonic::transport::Server::builder()
                    .add_service(svc)
                    .serve_with_incoming_shutdown(incoming, stop.stopped())
                    .await;
                if let Err(e) = r {
                    eprintln!("sluiced: P4Runtime server failed: {e}");
                }
            });
            rt.shutdown_timeout(std::time::Duration::from_millis(200));
        })
        .map_err(|e| format!("cannot start the P4Runtime thread: {e}"))?;
        Ok(Server { addr: bound, p4rt, _thread: thread })
    }
}

#[cfg(test)]
mod tests;

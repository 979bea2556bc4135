//! P4Runtime write benchmark against a running `sluiced` (see `perf/bench_p4rt.sh`).
//!
//! Becomes primary (election id `--election`), reads the running pipeline's P4Info,
//! then, on simple_router's `ipv4_lpm` table, with /32 routes in 172.16.0.0/12 (no
//! traffic matches them):
//!
//! * `inserts`: inserts in batches of 1, 100 and 1000 entries per Write (each round
//!   fills up to 1000 entries, then deletes them untimed); prints entries/s per batch
//!   size from the time spent in the insert RPCs;
//! * `latency`: `--count` single-entry inserts, one at a time (each followed by its
//!   delete); a Write returns only when every worker has applied it and dropped the
//!   stale megaflows, so its round trip bounds write-to-visible latency; prints p50,
//!   p99 and max;
//! * `rate`: `--rate` single-entry writes per second (insert/delete pairs) for
//!   `--seconds`, paced; prints what it achieved.
//!
//! Output: one JSON line per measurement.
//!
//! `cargo run --release --example p4rt_bench -- --addr 127.0.0.1:9559 inserts`

use std::time::{Duration, Instant};

use sluice_proto::p4::v1 as pb;
use sluice_proto::p4::v1::p4_runtime_client::P4RuntimeClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

struct Bench {
    client: P4RuntimeClient<Channel>,
    election: u64,
    ids: Ids,
    _stream: mpsc::Sender<pb::StreamMessageRequest>,
}

#[derive(Clone, Copy)]
struct Ids {
    table: u32,
    action: u32,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn entry(b: Ids, i: u32, port: u8) -> pb::TableEntry {
    let dst = 0xac10_0000u32 + i; // 172.16.0.0 + i
    pb::TableEntry {
        table_id: b.table,
        r#match: vec![pb::FieldMatch {
            field_id: 1,
            field_match_type: Some(pb::field_match::FieldMatchType::Lpm(pb::field_match::Lpm {
                value: dst.to_be_bytes().to_vec(),
                prefix_len: 32,
            })),
        }],
        action: Some(pb::TableAction {
            r#type: Some(pb::table_action::Type::Action(pb::Action {
                action_id: b.action,
                params: vec![
                    pb::action::Param { param_id: 1, value: vec![10, 0, 1, 10] },
                    pb::action::Param { param_id: 2, value: vec![port] },
                ],
            })),
        }),
        ..Default::default()
    }
}

async fn write(b: &mut Bench, ty: pb::update::Type, entries: Vec<pb::TableEntry>) -> Duration {
    let updates = entries
        .into_iter()
        .map(|e| pb::Update {
            r#type: ty as i32,
            entity: Some(pb::Entity { entity: Some(pb::entity::Entity::TableEntry(e)) }),
        })
        .collect();
    let req = pb::WriteRequest {
        device_id: 1,
        election_id: Some(pb::Uint128 { high: 0, low: b.election }),
        updates,
        ..Default::default()
    };
    let t = Instant::now();
    if let Err(s) = b.client.write(req).await {
        panic!("write failed: {s:?}");
    }
    t.elapsed()
}

async fn connect(addr: &str, election: u64) -> Bench {
    let mut client = P4RuntimeClient::connect(format!("http://{addr}")).await.expect("connect");
    let (tx, rx) = mpsc::channel(16);
    tx.send(pb::StreamMessageRequest {
        update: Some(pb::stream_message_request::Update::Arbitration(pb::MasterArbitrationUpdate {
            device_id: 1,
            election_id: Some(pb::Uint128 { high: 0, low: election }),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut inbound = client.stream_channel(ReceiverStream::new(rx)).await.expect("stream").into_inner();
    let first = inbound.message().await.expect("arbitration reply").expect("a reply");
    match first.update {
        Some(pb::stream_message_response::Update::Arbitration(a)) if a.status.as_ref().is_some_and(|s| s.code == 0) => {
        }
        other => panic!("not primary: {other:?}"),
    }
    tokio::spawn(async move { while let Ok(Some(_)) = inbound.message().await {} });
    let cfg = client
        .get_forwarding_pipeline_config(pb::GetForwardingPipelineConfigRequest { device_id: 1, response_type: 2 })
        .await
        .expect("a running pipeline")
        .into_inner();
    let info = cfg.config.and_then(|c| c.p4info).expect("P4Info");
    let id = |name: &str, pre: &Option<sluice_proto::p4::config::v1::Preamble>| {
        pre.as_ref().filter(|p| p.name == name || p.name.ends_with(&format!(".{name}"))).map(|p| p.id)
    };
    let table = info.tables.iter().find_map(|t| id("ipv4_lpm", &t.preamble)).expect("simple_router's ipv4_lpm");
    let action = info.actions.iter().find_map(|a| id("set_nhop", &a.preamble)).expect("set_nhop");
    Bench { client, election, ids: Ids { table, action }, _stream: tx }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = arg(&args, "--addr").unwrap_or_else(|| "127.0.0.1:9559".into());
    let election: u64 = arg(&args, "--election").map(|s| s.parse().unwrap()).unwrap_or(1);
    let mode = args.last().cloned().unwrap_or_default();
    let mut b = connect(&addr, election).await;
    let ids = b.ids;
    match mode.as_str() {
        "inserts" => {
            let total: u32 = arg(&args, "--entries").map(|s| s.parse().unwrap()).unwrap_or(20000);
            for batch in [1u32, 100, 1000] {
                let n = if batch == 1 { total / 10 } else { total };
                let (mut spent, mut done) = (Duration::ZERO, 0u32);
                while done < n {
                    let round: Vec<u32> = (0..(1000 / batch) * batch).collect();
                    for chunk in round.chunks(batch as usize) {
                        spent +=
                            write(&mut b, pb::update::Type::Insert, chunk.iter().map(|i| entry(ids, *i, 2)).collect())
                                .await;
                    }
                    for chunk in round.chunks(1000) {
                        write(&mut b, pb::update::Type::Delete, chunk.iter().map(|i| entry(ids, *i, 2)).collect())
                            .await;
                    }
                    done += round.len() as u32;
                }
                println!(
                    "{{\"mode\":\"inserts\",\"batch\":{batch},\"entries\":{done},\"seconds\":{:.4},\"entries_per_s\":{:.0}}}",
                    spent.as_secs_f64(),
                    done as f64 / spent.as_secs_f64()
                );
            }
        }
        "latency" => {
            let count: u32 = arg(&args, "--count").map(|s| s.parse().unwrap()).unwrap_or(2000);
            let mut lat = Vec::with_capacity(count as usize);
            for i in 0..count {
                let k = i % 1000;
                lat.push(write(&mut b, pb::update::Type::Insert, vec![entry(ids, k, 2)]).await.as_secs_f64() * 1e6);
                write(&mut b, pb::update::Type::Delete, vec![entry(ids, k, 2)]).await;
            }
            lat.sort_by(f64::total_cmp);
            println!(
                "{{\"mode\":\"latency\",\"writes\":{count},\"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1}}}",
                pct(&lat, 0.5),
                pct(&lat, 0.99),
                lat[lat.len() - 1]
            );
        }
        "rate" => {
            let rate: f64 = arg(&args, "--rate").map(|s| s.parse().unwrap()).unwrap_or(1000.0);
            let seconds: f64 = arg(&args, "--seconds").map(|s| s.parse().unwrap()).unwrap_or(5.0);
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed().as_secs_f64() < seconds {
                let due = start + Duration::from_secs_f64(n as f64 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    tokio::time::sleep(wait).await;
                }
                let ty = if n.is_multiple_of(2) { pb::update::Type::Insert } else { pb::update::Type::Delete };
                write(&mut b, ty, vec![entry(ids, 0, 2)]).await;
                n += 1;
            }
            println!(
                "{{\"mode\":\"rate\",\"writes\":{n},\"seconds\":{:.3},\"writes_per_s\":{:.0}}}",
                start.elapsed().as_secs_f64(),
                n as f64 / start.elapsed().as_secs_f64()
            );
        }
        m => panic!("mode {m:?}: use inserts, latency or rate"),
    }
}

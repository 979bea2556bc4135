//! The service's logic without a network or workers (control's copy of the state
//! is the only one): pipeline config, writes with the spec's errors, reads.

use super::*;
use sluice_proto::p4::v1::update::Type;

fn corpus() -> Option<std::path::PathBuf> {
    let d = std::env::var_os("SLUICE_P4_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/p4"));
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("SKIP: P4 corpus not found at {} (set SLUICE_P4_CORPUS)", d.display());
        None
    }
}

fn config(dir: &std::path::Path, json: &str, info: &str, cookie: u64) -> pb::ForwardingPipelineConfig {
    let text = std::fs::read_to_string(dir.join(info)).unwrap();
    pb::ForwardingPipelineConfig {
        p4info: Some(sluice_proto::text::p4info_from_text(&text).unwrap()),
        p4_device_config: std::fs::read(dir.join(json)).unwrap(),
        cookie: Some(pb::forwarding_pipeline_config::Cookie { cookie }),
    }
}

fn set(p: &P4rt, action: i32, c: Option<pb::ForwardingPipelineConfig>) -> Result<(), Status> {
    p.set_pipeline(&pb::SetForwardingPipelineConfigRequest { device_id: 1, action, config: c, ..Default::default() })
}

fn get(p: &P4rt, ty: i32) -> Result<pb::ForwardingPipelineConfig, Status> {
    p.get_pipeline(&pb::GetForwardingPipelineConfigRequest { device_id: 1, response_type: ty })
}

fn b(v: &[u8]) -> Vec<u8> {
    v.to_vec()
}

fn lpm_entry(info: &pb::ForwardingPipelineConfig, dst: [u8; 4], len: i32, port: &[u8]) -> pb::TableEntry {
    let i = info.p4info.as_ref().unwrap();
    let t = i.tables.iter().find(|t| t.preamble.as_ref().unwrap().name == "ipv4_lpm").unwrap();
    let a = i.actions.iter().find(|a| a.preamble.as_ref().unwrap().name == "set_nhop").unwrap();
    pb::TableEntry {
        table_id: t.preamble.as_ref().unwrap().id,
        r#match: vec![pb::FieldMatch {
            field_id: 1,
            field_match_type: Some(pb::field_match::FieldMatchType::Lpm(pb::field_match::Lpm {
                value: b(&dst),
                prefix_len: len,
            })),
        }],
        action: Some(pb::TableAction {
            r#type: Some(pb::table_action::Type::Action(pb::Action {
                action_id: a.preamble.as_ref().unwrap().id,
                params: vec![
                    pb::action::Param { param_id: 1, value: b(&[10, 0, 1, 10]) },
                    pb::action::Param { param_id: 2, value: b(port) },
                ],
            })),
        }),
        ..Default::default()
    }
}

fn upd(ty: Type, e: pb::TableEntry) -> pb::Update {
    pb::Update { r#type: ty as i32, entity: Some(pb::Entity { entity: Some(pb::entity::Entity::TableEntry(e)) }) }
}

fn write(p: &P4rt, updates: Vec<pb::Update>) -> Result<(), Status> {
    p.write(&pb::WriteRequest { device_id: 1, updates, ..Default::default() })
}

fn errors_of(s: &Status) -> Vec<i32> {
    let st = RpcStatus::decode(s.details()).unwrap();
    st.details.iter().map(|a| pb::Error::decode(a.value.as_slice()).unwrap().canonical_code).collect()
}

fn read_table(p: &P4rt, table_id: u32) -> Vec<pb::TableEntry> {
    let e =
        pb::Entity { entity: Some(pb::entity::Entity::TableEntry(pb::TableEntry { table_id, ..Default::default() })) };
    p.read(&pb::ReadRequest { device_id: 1, entities: vec![e], ..Default::default() })
        .map_err(|(_, s)| s)
        .unwrap()
        .into_iter()
        .map(|e| match e.entity {
            Some(pb::entity::Entity::TableEntry(t)) => t,
            _ => panic!("not a table entry"),
        })
        .collect()
}

#[test]
fn pipeline_config_actions_and_get() {
    let Some(c) = corpus() else { return };
    use pb::set_forwarding_pipeline_config_request::Action as A;
    let p = P4rt::new(1, None, None, None);
    let e = get(&p, 1).unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("no forwarding pipeline config"), "{}", e.message());
    let router = config(&c, "simple_router/simple_router.json", "simple_router/simple_router.p4info.txt", 7);
    set(&p, A::Verify as i32, Some(router.clone())).unwrap();
    assert_eq!(get(&p, 1).unwrap_err().code(), Code::FailedPrecondition, "VERIFY saves nothing");
    assert_eq!(set(&p, A::Commit as i32, None).unwrap_err().code(), Code::NotFound);
    set(&p, A::VerifyAndSave as i32, Some(router.clone())).unwrap();
    assert_eq!(get(&p, 1).unwrap().cookie.unwrap().cookie, 7);
    set(&p, A::Commit as i32, None).unwrap();
    // A corrupt JSON fails verification and leaves the running config.
    let mut bad = router.clone();
    bad.p4_device_config = b"{ not json".to_vec();
    bad.cookie = Some(pb::forwarding_pipeline_config::Cookie { cookie: 9 });
    let err = set(&p, A::VerifyAndCommit as i32, Some(bad)).unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("BMv2 JSON"), "{}", err.message());
    let got = get(&p, 0).unwrap();
    assert_eq!(got.cookie.unwrap().cookie, 7);
    assert_eq!(got.p4info, router.p4info);
    assert_eq!(got.p4_device_config, router.p4_device_config);
    let cookie = get(&p, 1).unwrap();
    assert!(cookie.p4info.is_none() && cookie.p4_device_config.is_empty());
    let info = get(&p, 2).unwrap();
    assert!(info.p4info.is_some() && info.p4_device_config.is_empty());
    // A P4Info that does not describe the JSON is refused.
    let mismatched = pb::ForwardingPipelineConfig {
        p4info: config(&c, "onos_basic/basic.json", "onos_basic/basic.p4info.txt", 1).p4info,
        ..router.clone()
    };
    assert_eq!(set(&p, A::VerifyAndCommit as i32, Some(mismatched)).unwrap_err().code(), Code::InvalidArgument);
    // Reconcile keeps state only for the same program.
    let mut again = router.clone();
    again.cookie = Some(pb::forwarding_pipeline_config::Cookie { cookie: 8 });
    set(&p, A::ReconcileAndCommit as i32, Some(again)).unwrap();
    assert_eq!(get(&p, 1).unwrap().cookie.unwrap().cookie, 8);
}

#[test]
fn writes_reads_and_per_update_errors() {
    let Some(c) = corpus() else { return };
    let p = P4rt::new(1, None, None, None);
    let router = config(&c, "simple_router/simple_router.json", "simple_router/simple_router.p4info.txt", 1);
    assert_eq!(
        write(&p, vec![upd(Type::Insert, lpm_entry(&router, [10, 0, 1, 10], 32, &[2]))]).unwrap_err().code(),
        Code::FailedPrecondition
    );
    set(&p, 3, Some(router.clone())).unwrap();
    let e = lpm_entry(&router, [10, 0, 1, 10], 32, &[2]);
    write(&p, vec![upd(Type::Insert, e.clone())]).unwrap();
    let t = e.table_id;
    let got = read_table(&p, t);
    assert_eq!(got, vec![e.clone()], "read back as written (canonical bytestrings)");
    // Padded bytestrings are accepted; reads return canonical ones.
    let padded = lpm_entry(&router, [10, 0, 2, 0], 24, &[0, 3]);
    write(&p, vec![upd(Type::Insert, padded)]).unwrap();
    let got = read_table(&p, t);
    assert_eq!(got.len(), 2);
    assert!(got.iter().any(|x| x == &lpm_entry(&router, [10, 0, 2, 0], 24, &[3])), "{got:?}");
    // A batch: duplicate, good, too-wide port, bits past the prefix, missing.
    let mut wide = lpm_entry(&router, [10, 0, 3, 0], 24, &[2, 0]);
    wide.priority = 0;
    let err = write(
        &p,
        vec![
            upd(Type::Insert, e.clone()),
            upd(Type::Insert, lpm_entry(&router, [10, 0, 4, 0], 24, &[4])),
            upd(Type::Insert, wide),
            upd(Type::Insert, lpm_entry(&router, [10, 0, 5, 1], 24, &[4])),
            upd(Type::Delete, lpm_entry(&router, [10, 9, 9, 9], 32, &[4])),
        ],
    )
    .unwrap_err();
    assert_eq!(err.code(), Code::Unknown);
    assert_eq!(
        errors_of(&err),
        vec![
            Code::AlreadyExists as i32,
            0,
            Code::OutOfRange as i32,
            Code::InvalidArgument as i32,
            Code::NotFound as i32
        ]
    );
    assert_eq!(read_table(&p, t).len(), 3, "only the good update took effect");
    // Rollback: one bad update and nothing is applied.
    let err = p
        .write(&pb::WriteRequest {
            device_id: 1,
            atomicity: pb::write_request::Atomicity::RollbackOnError as i32,
            updates: vec![upd(Type::Insert, lpm_entry(&router, [10, 0, 6, 0], 24, &[4])), upd(Type::Insert, e.clone())],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(errors_of(&err), vec![Code::Aborted as i32, Code::AlreadyExists as i32]);
    assert_eq!(read_table(&p, t).len(), 3);
    // Inserts, a modify and a delete taken back op by op: the table reads as before,
    // and a delete of what the batch deleted still finds it.
    let was = read_table(&p, t);
    let err = p
        .write(&pb::WriteRequest {
            device_id: 1,
            atomicity: pb::write_request::Atomicity::RollbackOnError as i32,
            updates: vec![
                upd(Type::Insert, lpm_entry(&router, [10, 0, 6, 0], 24, &[4])),
                upd(Type::Modify, lpm_entry(&router, [10, 0, 1, 10], 32, &[5])),
                upd(Type::Delete, lpm_entry(&router, [10, 0, 4, 0], 24, &[4])),
                upd(Type::Insert, lpm_entry(&router, [10, 0, 7, 0], 24, &[4])),
                upd(Type::Insert, e.clone()),
            ],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(errors_of(&err), [vec![Code::Aborted as i32; 4], vec![Code::AlreadyExists as i32]].concat());
    assert_eq!(read_table(&p, t), was);
    write(&p, vec![upd(Type::Delete, lpm_entry(&router, [10, 0, 4, 0], 24, &[4]))]).unwrap();
    write(&p, vec![upd(Type::Insert, lpm_entry(&router, [10, 0, 4, 0], 24, &[4]))]).unwrap();
    // Modify, then delete.
    write(&p, vec![upd(Type::Modify, lpm_entry(&router, [10, 0, 1, 10], 32, &[7]))]).unwrap();
    assert!(read_table(&p, t).contains(&lpm_entry(&router, [10, 0, 1, 10], 32, &[7])));
    write(&p, vec![upd(Type::Delete, lpm_entry(&router, [10, 0, 1, 10], 32, &[7]))]).unwrap();
    assert_eq!(read_table(&p, t).len(), 2);
    // Unknown table.
    let mut unknown = e.clone();
    unknown.table_id = 12345;
    let err = write(&p, vec![upd(Type::Insert, unknown)]).unwrap_err();
    assert_eq!(errors_of(&err), vec![Code::NotFound as i32]);
    // Default entry: MODIFY only.
    let mut d = lpm_entry(&router, [0, 0, 0, 0], 8, &[1]);
    d.r#match.clear();
    d.is_default_action = true;
    assert_eq!(
        errors_of(&write(&p, vec![upd(Type::Insert, d.clone())]).unwrap_err()),
        vec![Code::InvalidArgument as i32]
    );
    write(&p, vec![upd(Type::Modify, d.clone())]).unwrap();
    let q = pb::Entity {
        entity: Some(pb::entity::Entity::TableEntry(pb::TableEntry {
            table_id: t,
            is_default_action: true,
            ..Default::default()
        })),
    };
    let got =
        p.read(&pb::ReadRequest { device_id: 1, entities: vec![q], ..Default::default() }).map_err(|(_, s)| s).unwrap();
    match &got[0].entity {
        Some(pb::entity::Entity::TableEntry(x)) => assert_eq!(x.action, d.action),
        other => panic!("{other:?}"),
    }
    // All tables at once (table_id 0).
    assert_eq!(read_table(&p, 0).len(), 2);
}

#[test]
fn bit_packing_round_trips() {
    let packed = pack_bits(&[(0x1ff, 9), (0, 7)]);
    assert_eq!(packed, vec![0xff, 0x80]);
    assert_eq!(unpack_bits(&packed, &[9, 7]), Some(vec![0x1ff, 0]));
    assert_eq!(pack_bits(&[(2, 9), (0x55, 7)]), vec![0x01, 0x55]);
    assert_eq!(unpack_bits(&[0x01], &[9, 7]), None);
}

fn digest_update(ty: Type, digest_id: u32, config: Option<(i64, i32, i64)>) -> pb::Update {
    let config =
        config.map(|(t, n, a)| pb::digest_entry::Config { max_timeout_ns: t, max_list_size: n, ack_timeout_ns: a });
    let e = pb::DigestEntry { digest_id, config };
    pb::Update { r#type: ty as i32, entity: Some(pb::Entity { entity: Some(pb::entity::Entity::DigestEntry(e)) }) }
}

fn read_one(p: &P4rt, e: pb::entity::Entity) -> Result<Vec<pb::Entity>, Status> {
    let entities = vec![pb::Entity { entity: Some(e) }];
    p.read(&pb::ReadRequest { device_id: 1, entities, ..Default::default() }).map_err(|(_, s)| s)
}

const L2_DIGEST: u32 = 385912120;
const SMAC: u32 = 33610141;
const NO_ACTION: u32 = 16800567;

fn smac_entry(mac: u64, ttl_ns: i64) -> pb::TableEntry {
    pb::TableEntry {
        table_id: SMAC,
        r#match: vec![pb::FieldMatch {
            field_id: 1,
            field_match_type: Some(pb::field_match::FieldMatchType::Exact(pb::field_match::Exact {
                value: codec::encode(mac as u128),
            })),
        }],
        action: Some(pb::TableAction {
            r#type: Some(pb::table_action::Type::Action(pb::Action { action_id: NO_ACTION, params: vec![] })),
        }),
        idle_timeout_ns: ttl_ns,
        ..Default::default()
    }
}

#[test]
fn digest_entries_take_the_spec_codes_and_gate_delivery() {
    let Some(c) = corpus() else { return };
    let p = P4rt::new(1, None, None, None);
    set(&p, 3, Some(config(&c, "bmv2_grpc_tests/digest.json", "bmv2_grpc_tests/digest.p4info.txt", 1))).unwrap();
    let one = |u| errors_of(&write(&p, vec![u]).unwrap_err());
    assert_eq!(one(digest_update(Type::Modify, L2_DIGEST, Some((0, 1, 0)))), vec![Code::NotFound as i32]);
    assert_eq!(one(digest_update(Type::Insert, 999, Some((0, 1, 0)))), vec![Code::NotFound as i32]);
    assert_eq!(one(digest_update(Type::Insert, L2_DIGEST, None)), vec![Code::InvalidArgument as i32]);
    assert_eq!(one(digest_update(Type::Insert, L2_DIGEST, Some((-1, 1, 0)))), vec![Code::InvalidArgument as i32]);
    // Unconfigured: a sample is dropped, no list is made.
    p.on_digest(0, vec![0xa, 1], Instant::now());
    assert_eq!(lock(&p.digests).stats.unconfigured, 1);
    write(&p, vec![digest_update(Type::Insert, L2_DIGEST, Some((0, 1, 1_000_000_000)))]).unwrap();
    assert_eq!(one(digest_update(Type::Insert, L2_DIGEST, Some((0, 1, 0)))), vec![Code::AlreadyExists as i32]);
    write(&p, vec![digest_update(Type::Modify, L2_DIGEST, Some((5, 2, 7)))]).unwrap();
    let got = read_one(&p, pb::entity::Entity::DigestEntry(pb::DigestEntry { digest_id: 0, config: None })).unwrap();
    let want = pb::DigestEntry {
        digest_id: L2_DIGEST,
        config: Some(pb::digest_entry::Config { max_timeout_ns: 5, max_list_size: 2, ack_timeout_ns: 7 }),
    };
    assert_eq!(got, vec![pb::Entity { entity: Some(pb::entity::Entity::DigestEntry(want)) }]);
    // Configured, no primary: the list is made and counted undelivered.
    p.on_digest(0, vec![0xa, 1], Instant::now());
    p.on_digest(0, vec![0xb, 1], Instant::now());
    assert_eq!(p.stats.digest_list_drops.load(Ordering::Relaxed), 1);
    assert_eq!(
        p.on_digest_ack(&pb::DigestListAck { digest_id: 5, list_id: 1 }).unwrap_err().code,
        Code::InvalidArgument
    );
    write(&p, vec![digest_update(Type::Delete, L2_DIGEST, None)]).unwrap();
    let e = read_one(&p, pb::entity::Entity::DigestEntry(pb::DigestEntry { digest_id: L2_DIGEST, config: None }));
    assert_eq!(e.unwrap_err().code(), Code::NotFound);
    assert_eq!(one(digest_update(Type::Delete, L2_DIGEST, None)), vec![Code::NotFound as i32]);
}

#[test]
fn idle_timeouts_are_stored_read_and_notified() {
    let Some(c) = corpus() else { return };
    let p = P4rt::new(1, None, None, None);
    set(&p, 3, Some(config(&c, "bmv2_grpc_tests/digest.json", "bmv2_grpc_tests/digest.p4info.txt", 1))).unwrap();
    let one = |u| errors_of(&write(&p, vec![u]).unwrap_err());
    assert_eq!(one(upd(Type::Insert, smac_entry(1, -5))), vec![Code::InvalidArgument as i32]);
    let mut e = smac_entry(0x0a0b0c0d0e0f, 50_000_000);
    e.metadata = b"learned".to_vec();
    let t0 = Instant::now();
    write(&p, vec![upd(Type::Insert, e.clone()), upd(Type::Insert, smac_entry(2, 0))]).unwrap();
    let got = read_table(&p, SMAC);
    assert!(got.contains(&e), "TTL and metadata read back as written: {got:?}");
    let q = pb::TableEntry {
        table_id: SMAC,
        time_since_last_hit: Some(pb::table_entry::IdleTimeout { elapsed_ns: 0 }),
        ..Default::default()
    };
    let got = read_one(&p, pb::entity::Entity::TableEntry(q.clone())).unwrap();
    assert_eq!(got.len(), 2);
    for g in &got {
        let Some(pb::entity::Entity::TableEntry(t)) = &g.entity else { panic!() };
        let elapsed = t.time_since_last_hit.unwrap().elapsed_ns;
        assert!((0..10_000_000_000).contains(&elapsed), "{elapsed}");
    }
    let mut default = q.clone();
    default.is_default_action = true;
    let err = read_one(&p, pb::entity::Entity::TableEntry(default)).unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // Nothing idle yet; then the 50 ms entry (never hit) is reported alone, with its
    // key, TTL and metadata.
    assert_eq!(p.idle_sweep(t0).unwrap(), None);
    let n = p.idle_sweep(t0 + std::time::Duration::from_millis(60)).unwrap().expect("a notification");
    let mut key = e.clone();
    key.action = None;
    assert_eq!(n.table_entry, vec![key]);
    assert!(n.timestamp > 0);
    assert_eq!(p.idle_sweep(t0 + std::time::Duration::from_millis(70)).unwrap(), None, "timer restarted");
    // A modify takes the new TTL (0: never idle).
    write(&p, vec![upd(Type::Modify, smac_entry(0x0a0b0c0d0e0f, 0))]).unwrap();
    assert_eq!(p.idle_sweep(t0 + std::time::Duration::from_secs(5)).unwrap(), None);
    // Tables without idle timeout refuse TTLs and time_since_last_hit.
    let router = config(&c, "simple_router/simple_router.json", "simple_router/simple_router.p4info.txt", 1);
    set(&p, 3, Some(router.clone())).unwrap();
    let mut r = lpm_entry(&router, [10, 0, 1, 10], 32, &[2]);
    r.idle_timeout_ns = 1_000_000;
    assert_eq!(one(upd(Type::Insert, r.clone())), vec![Code::InvalidArgument as i32]);
    let q = pb::TableEntry { table_id: r.table_id, ..q };
    assert_eq!(read_one(&p, pb::entity::Entity::TableEntry(q)).unwrap_err().code(), Code::InvalidArgument);
}

fn meter_cfg(cir: i64, pir: i64) -> pb::MeterConfig {
    pb::MeterConfig { cir, cburst: 100, pir, pburst: 200, eburst: 0 }
}

#[test]
fn meters_are_configured_read_back_and_checked() {
    let Some(c) = corpus() else { return };
    use pb::entity::Entity as E;
    let p = P4rt::new(1, None, None, None);
    set(&p, 3, Some(config(&c, "bmv2_grpc_tests/meter.json", "bmv2_grpc_tests/meter.p4info.txt", 1))).unwrap();
    let redirect = |port: u8| pb::TableEntry {
        table_id: 33579641,
        r#match: vec![pb::FieldMatch {
            field_id: 1,
            field_match_type: Some(pb::field_match::FieldMatchType::Exact(pb::field_match::Exact {
                value: vec![port],
            })),
        }],
        action: Some(pb::TableAction {
            r#type: Some(pb::table_action::Type::Action(pb::Action { action_id: 16793582, params: vec![] })),
        }),
        ..Default::default()
    };
    // An entry with a direct meter config reads back with it (when asked).
    let mut e = redirect(1);
    e.meter_config = Some(meter_cfg(1000, 2000));
    write(&p, vec![upd(Type::Insert, e.clone()), upd(Type::Insert, redirect(2))]).unwrap();
    let q = pb::TableEntry { table_id: 33579641, meter_config: Some(pb::MeterConfig::default()), ..Default::default() };
    let got = read_one(&p, E::TableEntry(q)).unwrap();
    let configs: Vec<_> = got
        .iter()
        .map(|x| match &x.entity {
            Some(E::TableEntry(t)) => t.meter_config,
            _ => panic!(),
        })
        .collect();
    assert_eq!(configs, vec![Some(meter_cfg(1000, 2000)), None], "an unconfigured meter has no config");
    // DirectMeterEntry: MODIFY only; an empty config returns the cell to unconfigured.
    let dm = |config| pb::DirectMeterEntry { table_entry: Some(redirect(2)), config, counter_data: None };
    let up = |ty: Type, d| pb::Update {
        r#type: ty as i32,
        entity: Some(pb::Entity { entity: Some(E::DirectMeterEntry(d)) }),
    };
    assert_eq!(
        errors_of(&write(&p, vec![up(Type::Insert, dm(None))]).unwrap_err()),
        vec![Code::InvalidArgument as i32]
    );
    write(&p, vec![up(Type::Modify, dm(Some(meter_cfg(5, 5))))]).unwrap();
    let got = read_one(&p, E::DirectMeterEntry(pb::DirectMeterEntry::default())).unwrap();
    assert_eq!(got.len(), 2);
    write(&p, vec![up(Type::Modify, dm(Some(pb::MeterConfig::default())))]).unwrap();
    let got = read_one(&p, E::DirectMeterEntry(dm(None))).unwrap();
    let Some(E::DirectMeterEntry(d)) = &got[0].entity else { panic!() };
    assert_eq!(d.config, None);
    // Bad configs: rte_meter's rules, trTCM only.
    let bad = |cfg| errors_of(&write(&p, vec![up(Type::Modify, dm(Some(cfg)))]).unwrap_err());
    assert_eq!(bad(meter_cfg(2000, 1000)), vec![Code::InvalidArgument as i32], "pir < cir");
    assert_eq!(bad(meter_cfg(-1, 1000)), vec![Code::InvalidArgument as i32]);
    assert_eq!(bad(pb::MeterConfig { eburst: 5, ..meter_cfg(1, 1) }), vec![Code::InvalidArgument as i32]);
    let mut gone = dm(Some(meter_cfg(1, 1)));
    gone.table_entry = Some(redirect(9));
    assert_eq!(errors_of(&write(&p, vec![up(Type::Modify, gone)]).unwrap_err()), vec![Code::NotFound as i32]);
    // Indexed meters (onos_basic's egress port meter).
    set(&p, 3, Some(config(&c, "onos_basic/basic.json", "onos_basic/basic.p4info.txt", 1))).unwrap();
    let me = |index: i64, config| pb::MeterEntry {
        meter_id: 335569641,
        index: Some(pb::Index { index }),
        config,
        counter_data: None,
    };
    let mu =
        |m| pb::Update { r#type: Type::Modify as i32, entity: Some(pb::Entity { entity: Some(E::MeterEntry(m)) }) };
    write(&p, vec![mu(me(2, Some(meter_cfg(1000, 1000))))]).unwrap();
    assert_eq!(errors_of(&write(&p, vec![mu(me(511, None))]).unwrap_err()), vec![Code::OutOfRange as i32]);
    let got = read_one(&p, E::MeterEntry(me(2, None))).unwrap();
    assert_eq!(got, vec![pb::Entity { entity: Some(E::MeterEntry(me(2, Some(meter_cfg(1000, 1000))))) }]);
    let mut q = me(0, None);
    q.index = None;
    q.counter_data = Some(pb::MeterCounterData::default());
    let all = read_one(&p, E::MeterEntry(q)).unwrap();
    assert_eq!(all.len(), 511, "every cell of the meter");
    let Some(E::MeterEntry(x)) = &all[0].entity else { panic!() };
    assert!(x.counter_data.is_some(), "color counts when asked");
}

#!/usr/bin/env python3
"""Malformed requests and the status codes of P4Runtime spec 1.5, with raw gRPC and
p4runtime 1.4.1's p4.v1 messages (shell venv). A primary (election id base+1) pushes
simple_router.

With --fresh (the server has had no pipeline yet), first:
  GetForwardingPipelineConfig     -> OK with `config` unset (spec text) or FAILED_PRECONDITION
                                     whose message matches /no .*forwarding pipeline config/i
                                     (what finsy handles); the form seen is recorded
  Read / Write                    -> FAILED_PRECONDITION
Then:
  SetForwardingPipelineConfig VERIFY_AND_COMMIT simple_router, cookie 0x5107... -> OK
  Get COOKIE_ONLY                 -> that cookie;  Get ALL -> the pushed P4Info
  Write (one update each; an UNKNOWN status carrying one p4.Error counts as its code):
    unknown table id                          -> NOT_FOUND or INVALID_ARGUMENT (recorded)
    match value wider than its bitwidth       -> OUT_OF_RANGE (spec "Bytestrings") or
                                                 INVALID_ARGUMENT
    action param wider than its bitwidth      -> OUT_OF_RANGE or INVALID_ARGUMENT
    action param missing                      -> INVALID_ARGUMENT
    exact-match table entry with priority 10  -> INVALID_ARGUMENT
    ... and none of them is in the tables afterwards
  batch [good, bad] CONTINUE_ON_ERROR -> UNKNOWN with 2 p4.v1.Error details (OK, non-OK);
                                         Read: the good entry present, the bad one absent
  SetForwardingPipelineConfig VERIFY with corrupt JSON -> INVALID_ARGUMENT; Get COOKIE_ONLY
                                         still the first cookie; the forwarding state kept

Usage: .venv-p4rt/shell/bin/python tests/p4rt/errors.py --addr 127.0.0.1:PORT [--fresh]
           [--corpus DIR] [--device-id 1] [--election-base 0] [--timeout 60]
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as c  # noqa: E402

SCRIPT = "errors"
COOKIE = 0x5107_0000_0000_0001
BAD_COOKIE = 0x5107_0000_0000_0bad
NO_PIPELINE_RE = re.compile(r"no .*forwarding pipeline config", re.I)


def add_args(p):
    p.add_argument("--fresh", action="store_true",
                   help="the server has had no SetForwardingPipelineConfig yet: first check "
                        "Get/Read/Write without a pipeline")


def body(run):
    args = run.args
    p4info_path = c.corpus_file(args, "simple_router", "simple_router.p4info.txt")
    bmv2_path = c.corpus_file(args, "simple_router", "simple_router.json")
    names = c.P4Names(p4info_path)
    dev = args.device_id
    eid = args.election_base + 1
    run.record("election_id", [0, eid])
    obs = run.record("codes", {})

    from p4.v1 import p4runtime_pb2

    run.step("arbitration: become primary")
    p = c.P4Stream(args.addr, "primary")
    p.arbitrate(dev, 0, eid)
    msg = p.recv("arbitration", 5.0)
    run.check(msg is not None and c.arbitration_code(msg) == "OK",
              f"arbitration status OK (primary) for election id (0, {eid})",
              c.arbitration_dict(msg) if msg else f"no arbitration reply (stream end: {p.end})")

    def write(updates, atomicity=None):
        return lambda: p.write(updates, 0, eid, atomicity=atomicity, device_id=dev)

    def read_table(table):
        ent = p4runtime_pb2.Entity()
        ent.table_entry.table_id = names.table(table).preamble.id
        got = c.expect_rpc_ok(run, f"Read {table}", lambda: p.read([ent], device_id=dev))
        return [c.norm_table_entry(e.table_entry) for e in got]

    def lpm(addr, port_bytes=b"\x02", params=None):
        return c.table_entry_update(
            names, "INSERT", "ipv4_lpm", [("ipv4.dstAddr", "lpm", bytes(addr), 32)], "set_nhop",
            params if params is not None else [("nhop_ipv4", bytes(addr)), ("port", port_bytes)])

    def fwd(addr, dmac=None, params=None, priority=0):
        return c.table_entry_update(
            names, "INSERT", "forward", [("routing_metadata.nhop_ipv4", "exact", bytes(addr))],
            "set_dmac", params if params is not None else [("dmac", dmac)], priority=priority)

    # -- no pipeline yet
    if args.fresh:
        run.step("GetForwardingPipelineConfig before any SetForwardingPipelineConfig")
        import grpc
        try:
            rep = p.get_pipeline("ALL", device_id=dev)
        except grpc.RpcError as e:
            info = c.rpc_error(e)
            run.check(info["code"] == "FAILED_PRECONDITION" and NO_PIPELINE_RE.search(info["details"] or ""),
                      "OK with `config` unset (spec), or FAILED_PRECONDITION with a message "
                      f"matching /{NO_PIPELINE_RE.pattern}/i",
                      f"{info['code']}: {info['details']!r}")
            obs["get_before_set"] = {"code": info["code"], "details": info["details"],
                                     "form": "FAILED_PRECONDITION + message"}
        else:
            run.check(not rep.HasField("config"),
                      "OK with the `config` field unset (spec: 'the top-level config field will "
                      "be unset'), or FAILED_PRECONDITION",
                      f"OK with config {{tables: {len(rep.config.p4info.tables)}, cookie: "
                      f"{rep.config.cookie.cookie if rep.config.HasField('cookie') else None}, "
                      f"device_config: {len(rep.config.p4_device_config)} bytes}}")
            obs["get_before_set"] = {"code": "OK", "form": "OK, config unset"}

        run.step("Read before any pipeline")
        ent = p4runtime_pb2.Entity()
        ent.table_entry.SetInParent()
        obs["read_before_set"] = c.expect_rpc_error(
            run, "a Read before any SetForwardingPipelineConfig",
            lambda: p.read([ent], device_id=dev), "FAILED_PRECONDITION")
        run.step("Write before any pipeline")
        obs["write_before_set"] = c.expect_rpc_error(
            run, "a Write (primary) before any SetForwardingPipelineConfig",
            write([lpm([10, 0, 1, 10])]), "FAILED_PRECONDITION")

    # -- the pipeline
    run.step("SetForwardingPipelineConfig VERIFY_AND_COMMIT simple_router")
    blob = open(bmv2_path, "rb").read()
    cfg = c.pipeline_config(p4info_path, blob, cookie=COOKIE)
    c.expect_rpc_ok(run, "SetForwardingPipelineConfig(VERIFY_AND_COMMIT)",
                    lambda: p.set_pipeline(cfg, 0, eid, device_id=dev))
    run.step("GetForwardingPipelineConfig COOKIE_ONLY and ALL")
    rep = c.expect_rpc_ok(run, "Get COOKIE_ONLY", lambda: p.get_pipeline("COOKIE_ONLY", dev))
    got_cookie = rep.config.cookie.cookie if rep.config.HasField("cookie") else None
    run.check(got_cookie == COOKIE, f"cookie {COOKIE:#x}", got_cookie)
    obs["cookie_only_has_p4info"] = rep.config.HasField("p4info")
    rep = c.expect_rpc_ok(run, "Get ALL", lambda: p.get_pipeline("ALL", dev))
    run.check(rep.config.p4info == names.p4info, "Get ALL: the pushed P4Info",
              f"a P4Info with tables {[t.preamble.name for t in rep.config.p4info.tables]}")
    obs["get_all_device_config"] = (
        "identical" if rep.config.p4_device_config == blob
        else "empty" if not rep.config.p4_device_config
        else f"different ({len(rep.config.p4_device_config)} bytes)")
    run.check(obs["get_all_device_config"] in ("identical", "empty"),
              "Get ALL: p4_device_config as pushed (or empty: not retrievable)",
              obs["get_all_device_config"])

    # -- malformed single updates
    run.step("Write: unknown table id")
    unknown = c.table_entry_update(names, "INSERT", 0x02FFFFFF, [(1, "exact", b"\x01")],
                                   "set_dmac", [("dmac", b"\x01")])
    obs["unknown_table"] = c.expect_rpc_error(run, "INSERT into table id 0x02ffffff",
                                              write([unknown]),
                                              ["NOT_FOUND", "INVALID_ARGUMENT"])
    run.step("Write: match value wider than its bitwidth")
    wide = c.table_entry_update(
        names, "INSERT", "send_frame", [("standard_metadata.egress_port", "exact", b"\x02\x00")],
        "rewrite_mac", [("smac", b"\x01")])
    obs["match_too_wide"] = c.expect_rpc_error(
        run, "INSERT send_frame egress_port = 0x0200 (a bit<9> field)", write([wide]),
        ["OUT_OF_RANGE", "INVALID_ARGUMENT"])
    run.step("Write: action param wider than its bitwidth")
    obs["param_too_wide"] = c.expect_rpc_error(
        run, "INSERT ipv4_lpm set_nhop(port = 0x0200, a bit<9> param)",
        write([lpm([10, 0, 2, 10], port_bytes=b"\x02\x00")]),
        ["OUT_OF_RANGE", "INVALID_ARGUMENT"])
    run.step("Write: action param missing")
    obs["param_missing"] = c.expect_rpc_error(
        run, "INSERT ipv4_lpm set_nhop without its port param",
        write([lpm([10, 0, 3, 10], params=[("nhop_ipv4", bytes([10, 0, 3, 10]))])]),
        "INVALID_ARGUMENT")
    run.step("Write: priority on an exact-match table")
    obs["priority_on_exact"] = c.expect_rpc_error(
        run, "INSERT forward (exact match only) with priority 10",
        write([fwd([10, 0, 4, 10], dmac=b"\x01", priority=10)]), "INVALID_ARGUMENT")
    run.step("none of the rejected entries is in the tables")
    for table in ("ipv4_lpm", "forward", "send_frame"):
        got = read_table(table)
        run.check(got == [], f"{table} empty after the rejected INSERTs", got)

    # -- a batch with one good and one bad update
    run.step("Write batch [good, bad] CONTINUE_ON_ERROR")
    good = fwd([10, 0, 0, 10], dmac=bytes([0, 4, 0, 0, 0, 0]))
    bad = fwd([10, 0, 1, 10], params=[])
    import grpc
    try:
        p.write([good, bad], 0, eid, atomicity=p4runtime_pb2.WriteRequest.CONTINUE_ON_ERROR,
                device_id=dev)
    except grpc.RpcError as e:
        info = c.rpc_error(e)
    else:
        run.fail("expected the batch to fail with UNKNOWN (one update is bad); got success")
    obs["batch"] = info
    run.check(info["code"] == "UNKNOWN", "the batch's gRPC status UNKNOWN",
              f"{info['code']}: {info['details']!r}")
    errs = info["p4_errors"]
    run.check(errs is not None, "google.rpc.Status details (grpc-status-details-bin) with one "
              "p4.v1.Error per update", "no status details")
    run.check(len(errs) == 2 and errs[0]["canonical_code"] == "OK"
              and errs[1]["canonical_code"] not in ("OK", None),
              "2 p4.v1.Errors: [OK, non-OK]", errs)
    run.step("the good update applied, the bad one not")
    want = [c.norm_table_entry(good.entity.table_entry)]
    got = read_table("forward")
    run.check(got == want, f"forward holds exactly the good entry {want}", got)

    # -- VERIFY of a corrupt config leaves everything as it was
    run.step("SetForwardingPipelineConfig VERIFY with corrupt JSON")
    corrupt = c.pipeline_config(p4info_path, blob[: len(blob) // 2] + b"\x00}{ not json",
                                cookie=BAD_COOKIE)
    obs["verify_corrupt_json"] = c.expect_rpc_error(
        run, "SetForwardingPipelineConfig(VERIFY) with a truncated, corrupt BMv2 JSON",
        lambda: p.set_pipeline(corrupt, 0, eid, action="VERIFY", device_id=dev),
        "INVALID_ARGUMENT")
    rep = c.expect_rpc_ok(run, "Get COOKIE_ONLY", lambda: p.get_pipeline("COOKIE_ONLY", dev))
    got_cookie = rep.config.cookie.cookie if rep.config.HasField("cookie") else None
    run.check(got_cookie == COOKIE, f"cookie still {COOKIE:#x} after the failed VERIFY",
              got_cookie if got_cookie is None else hex(got_cookie))
    got = read_table("forward")
    run.check(got == want, "forward unchanged after the failed VERIFY", got)

    run.step("close")
    p.close()


if __name__ == "__main__":
    c.main(SCRIPT, __doc__.splitlines()[0], body, add_args)

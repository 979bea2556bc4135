#!/usr/bin/env python3
"""simple_router through p4runtime-shell 0.0.6 (run with .venv-p4rt/shell/bin/python).

  setup(device_id, addr, election_id=(0, 1), config=simple_router)  -> primary, pipeline pushed
  APIVersion()                                 -> Capabilities answers "1.x.y"
  Get P4INFO_AND_COOKIE                        -> the pushed P4Info's tables and actions
  INSERT ipv4_lpm 10.0.1.10/32 -> set_nhop(10.0.1.10, 2), forward 10.0.1.10 -> set_dmac
         00:04:00:00:00:01, send_frame 2 -> rewrite_mac 00:aa:bb:00:00:01
  read every table (wildcard) and ipv4_lpm by key -> the same match and action params
  INSERT the ipv4_lpm key again (port 7)      -> ALREADY_EXISTS, entry unchanged
  MODIFY port -> 3, read back; DELETE, read -> gone; DELETE / MODIFY again -> NOT_FOUND
  teardown()

Usage: .venv-p4rt/shell/bin/python tests/p4rt/shell_router.py --addr 127.0.0.1:PORT
           [--corpus DIR] [--device-id 1] [--election-base 0] [--timeout 60]
"""

import json
import logging
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as c  # noqa: E402

SCRIPT = "shell_router"


def body(run):
    args = run.args
    p4info_path = c.corpus_file(args, "simple_router", "simple_router.p4info.txt")
    bmv2_path = c.corpus_file(args, "simple_router", "simple_router.json")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    import grpc
    import p4runtime_sh.shell as sh
    from p4runtime_sh.p4runtime import (P4RuntimeErrorFormatException, P4RuntimeException,
                                        P4RuntimeWriteException)

    c.shell_setup(run, args, p4info_path, bmv2_path, "simple_router")
    run.record("primary", True)

    # -- Capabilities
    run.step("Capabilities (sh.APIVersion())")
    try:
        version = sh.APIVersion()
    except P4RuntimeException as e:
        run.fail(f"expected a CapabilitiesResponse; got {e}")
    run.record("p4runtime_api_version", version)
    run.check(re.match(r"^1\.\d+\.\d+", version or ""), "p4runtime_api_version '1.x.y'",
              repr(version))

    # -- the P4Info the server returns is the one pushed
    run.step("GetForwardingPipelineConfig(P4INFO_AND_COOKIE) returns the pushed P4Info")
    names = c.P4Names(p4info_path)
    try:
        got_p4info = sh.client.get_p4info()
    except P4RuntimeException as e:
        run.fail(f"expected the stored P4Info; got {e}")
    run.record("p4info_identical", got_p4info == names.p4info)
    for part in ("tables", "actions"):
        want = [x.preamble.name for x in getattr(names.p4info, part)]
        got = [x.preamble.name for x in getattr(got_p4info, part)]
        run.check(list(getattr(got_p4info, part)) == list(getattr(names.p4info, part)),
                  f"P4Info.{part} identical to simple_router.p4info.txt ({want})",
                  f"{got} (or the same names with other ids/fields)")

    # -- helpers
    def read_table(table, key=None):
        te = sh.TableEntry(table)
        for field, value in (key or {}).items():
            te.match[field] = value
        try:
            return [e.msg() for e in te.read()]
        except P4RuntimeException as e:
            run.fail(f"expected Read of {table} to succeed; got {e}")

    def norm_list(entries):
        return sorted(json.dumps(c.norm_table_entry(e), sort_keys=True) for e in entries)

    def expect_table(table, written, key=None, label=None):
        got = read_table(table, key)
        label = label or f"read {table}" + (f" by key {key}" if key else " (wildcard)")
        want_n = norm_list(written)
        got_n = norm_list(got)
        run.check(got_n == want_n,
                  f"{label}: {len(written)} entr{'y' if len(written) == 1 else 'ies'} "
                  f"{[json.loads(x) for x in want_n]}",
                  f"{len(got)}: {[json.loads(x) for x in got_n]}")
        return got

    def write_ok(what, fn):
        try:
            fn()
        except P4RuntimeWriteException as e:
            run.fail(f"expected {what} to succeed; got {str(e).strip()}")
        except P4RuntimeErrorFormatException as e:
            run.fail(f"expected {what} to succeed; got UNKNOWN without p4.Error details ({e})")
        except grpc.RpcError as e:
            run.fail(f"expected {what} to succeed; got {e.code().name}: {e.details()}")

    def write_err(what, fn, expected):
        try:
            fn()
        except P4RuntimeWriteException as e:
            text = str(e)
            codes = [c.code_name(err.canonical_code) for _, err in e.errors]
            run.check(len(codes) == 1, f"{what}: UNKNOWN with one non-OK p4.Error ({expected})",
                      f"{len(codes)} non-OK p4.Errors: {text.strip()}")
            run.check(codes[0] == expected and expected in text,
                      f"{what}: {expected} (P4RuntimeWriteException text naming it)",
                      text.strip())
            return {"code": codes[0], "reported_as": "UNKNOWN + p4.Error (P4RuntimeWriteException)",
                    "message": e.errors[0][1].message}
        except P4RuntimeErrorFormatException as e:
            run.fail(f"{what}: expected {expected}; got UNKNOWN whose details carry no "
                     f"p4.Error ({e})")
        except grpc.RpcError as e:
            run.check(e.code().name == expected, f"{what}: {expected}",
                      f"{e.code().name}: {e.details()}")
            return {"code": e.code().name, "reported_as": "grpc status", "message": e.details()}
        run.fail(f"expected {what} to fail with {expected}; got success")

    # -- inserts
    run.step("INSERT ipv4_lpm, forward, send_frame")
    lpm = sh.TableEntry("ipv4_lpm")(action="set_nhop")
    lpm.match["ipv4.dstAddr"] = "10.0.1.10/32"
    lpm.action["nhop_ipv4"] = "10.0.1.10"
    lpm.action["port"] = "2"
    fwd = sh.TableEntry("forward")(action="set_dmac")
    fwd.match["routing_metadata.nhop_ipv4"] = "10.0.1.10"
    fwd.action["dmac"] = "00:04:00:00:00:01"
    snd = sh.TableEntry("send_frame")(action="rewrite_mac")
    snd.match["standard_metadata.egress_port"] = "2"
    snd.action["smac"] = "00:aa:bb:00:00:01"
    for name, te in (("ipv4_lpm", lpm), ("forward", fwd), ("send_frame", snd)):
        write_ok(f"INSERT {name} entry", te.insert)

    run.step("read every table back")
    readback = {}
    canonical = True
    for name, te in (("ipv4_lpm", lpm), ("forward", fwd), ("send_frame", snd)):
        got = expect_table(name, [te.msg()])
        readback[name] = c.norm_table_entry(got[0])
        canonical = canonical and c.entry_bytes_canonical(got[0])
    run.record("read_back", readback)
    run.record("read_back_bytestrings_canonical", canonical)

    run.step("read ipv4_lpm by key")
    expect_table("ipv4_lpm", [lpm.msg()], key={"ipv4.dstAddr": "10.0.1.10/32"})

    # -- duplicate insert
    run.step("INSERT an existing ipv4_lpm key")
    dup = sh.TableEntry("ipv4_lpm")(action="set_nhop")
    dup.match["ipv4.dstAddr"] = "10.0.1.10/32"
    dup.action["nhop_ipv4"] = "10.0.1.10"
    dup.action["port"] = "7"
    run.record("duplicate_insert", write_err("INSERT of an existing ipv4_lpm key", dup.insert,
                                             "ALREADY_EXISTS"))
    expect_table("ipv4_lpm", [lpm.msg()], label="ipv4_lpm after the failed duplicate INSERT "
                 "(existing entry unchanged, port 2)")

    # -- modify
    run.step("MODIFY ipv4_lpm port 2 -> 3")
    lpm.action["port"] = "3"
    write_ok("MODIFY ipv4_lpm entry (port 3)", lpm.modify)
    got = expect_table("ipv4_lpm", [lpm.msg()], label="ipv4_lpm after MODIFY (port 3)")
    run.record("after_modify", c.norm_table_entry(got[0]))

    # -- delete
    run.step("DELETE ipv4_lpm entry")
    write_ok("DELETE ipv4_lpm entry", lpm.delete)
    expect_table("ipv4_lpm", [], label="ipv4_lpm after DELETE")
    run.record("after_delete_entries", 0)

    run.step("DELETE the missing ipv4_lpm entry")
    run.record("delete_missing", write_err("DELETE of a missing ipv4_lpm entry", lpm.delete,
                                           "NOT_FOUND"))
    run.step("MODIFY the missing ipv4_lpm entry")
    run.record("modify_missing", write_err("MODIFY of a missing ipv4_lpm entry", lpm.modify,
                                           "NOT_FOUND"))

    run.step("the other tables are untouched")
    expect_table("forward", [fwd.msg()])
    expect_table("send_frame", [snd.msg()])

    run.step("sh.teardown()")
    sh.teardown()


if __name__ == "__main__":
    c.main(SCRIPT, __doc__.splitlines()[0], body)

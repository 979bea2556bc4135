#!/usr/bin/env python3
"""Client arbitration (P4Runtime spec 1.5 "Client Arbitration and Controller Replication"),
with raw gRPC and p4runtime 1.4.1's p4.v1 messages (shell venv). Each controller has its own
channel and StreamChannel; election ids are (high 0, low base+n), device_id 1.

  A opens with id 1                  -> arbitration OK (primary), election_id 1
  B opens with id 2                  -> B: OK, election_id 2; A: ALREADY_EXISTS, election_id 2
  B SetForwardingPipelineConfig(VERIFY_AND_COMMIT, simple_router), B Write -> OK
  A Write / A SetForwardingPipelineConfig (id 1)          -> PERMISSION_DENIED
  Write with id 1000 (no controller has it) / unset id    -> PERMISSION_DENIED
  C opens with id 2 (B's)            -> stream ended with INVALID_ARGUMENT (or any non-OK
                                        answer): C never primary; B still writes
  B closes its stream                -> A: NOT_FOUND (no primary), election_id 2 -- the spec
                                        promotes nobody by itself ("the server will be without
                                        a primary until a client sends a successful
                                        MasterArbitrationUpdate"); A Write -> PERMISSION_DENIED
  A re-sends id 1 (below the highest seen, 2) -> NOT_FOUND: still a backup
  A sends id 3                       -> OK, election_id 3; A Write with id 3 -> OK

Usage: .venv-p4rt/shell/bin/python tests/p4rt/arbitration.py --addr 127.0.0.1:PORT
           [--corpus DIR] [--device-id 1] [--election-base 0] [--timeout 60]
Needs a server that has not yet seen an election id above base+1 (a fresh one with base 0).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as c  # noqa: E402

SCRIPT = "arbitration"
WAIT = 5.0  # seconds to wait for an expected arbitration message


def body(run):
    args = run.args
    p4info_path = c.corpus_file(args, "simple_router", "simple_router.p4info.txt")
    bmv2_path = c.corpus_file(args, "simple_router", "simple_router.json")
    names = c.P4Names(p4info_path)
    dev = args.device_id
    b = args.election_base
    e1, e2, e3, e_none = b + 1, b + 2, b + 3, b + 1000
    run.record("election_ids", {"A": e1, "B": e2, "C": e2, "A_later": e3, "unused": e_none})
    obs = run.record("statuses", {})

    def lpm_insert(addr_bytes, port):
        return c.table_entry_update(
            names, "INSERT", "ipv4_lpm", [("ipv4.dstAddr", "lpm", addr_bytes, 32)],
            "set_nhop", [("nhop_ipv4", addr_bytes), ("port", bytes([port]))])

    def expect_arbitration(stream, who, code, election, what):
        msg = stream.recv("arbitration", WAIT)
        if msg is None:
            end = f"the stream ended: {stream.end[0]} {stream.end[1]!r}" if stream.ended.is_set() \
                else f"nothing within {WAIT:g} s"
            run.fail(f"expected {who} to receive an arbitration message ({what}) with status "
                     f"{code} and election_id (0, {election}); got {end}")
        d = c.arbitration_dict(msg)
        got_code = c.arbitration_code(msg)
        run.check(got_code == code, f"{who}: arbitration status {code} ({what})", d)
        run.check(d["election_id"] == [0, election],
                  f"{who}: arbitration election_id (0, {election}), the highest the server has "
                  f"seen", d)
        run.check(d["device_id"] == dev, f"{who}: arbitration device_id {dev}", d)
        return d

    # -- A becomes primary
    run.step("A opens the stream with election id 1")
    a = c.P4Stream(args.addr, "A")
    a.arbitrate(dev, 0, e1)
    obs["A_open"] = expect_arbitration(a, "A", "OK", e1, "first controller: primary")

    # -- B takes over
    run.step("B opens the stream with election id 2")
    bb = c.P4Stream(args.addr, "B")
    bb.arbitrate(dev, 0, e2)
    obs["B_open"] = expect_arbitration(bb, "B", "OK", e2, "higher id: new primary")
    run.step("A is told it is now a backup")
    obs["A_after_B"] = expect_arbitration(a, "A", "ALREADY_EXISTS", e2, "demoted to backup")

    run.step("B pushes simple_router (VERIFY_AND_COMMIT) and writes")
    cfg = c.pipeline_config(p4info_path, open(bmv2_path, "rb").read(), cookie=0xA7B1)
    c.expect_rpc_ok(run, "B's SetForwardingPipelineConfig(VERIFY_AND_COMMIT)",
                    lambda: bb.set_pipeline(cfg, 0, e2, device_id=dev))
    c.expect_rpc_ok(run, "B's Write (INSERT ipv4_lpm 10.0.1.10/32)",
                    lambda: bb.write([lpm_insert(bytes([10, 0, 1, 10]), 2)], 0, e2,
                                     device_id=dev))
    obs["B_write"] = "OK"

    run.step("backup A cannot write")
    obs["A_write_as_backup"] = c.expect_rpc_error(
        run, "A's Write with election id 1 (a backup)",
        lambda: a.write([lpm_insert(bytes([10, 0, 0, 10]), 1)], 0, e1, device_id=dev),
        "PERMISSION_DENIED")
    obs["A_set_pipeline_as_backup"] = c.expect_rpc_error(
        run, "A's SetForwardingPipelineConfig with election id 1 (a backup)",
        lambda: a.set_pipeline(cfg, 0, e1, device_id=dev), "PERMISSION_DENIED")

    run.step("Write with an election id no controller holds")
    obs["write_unknown_election_id"] = c.expect_rpc_error(
        run, f"a Write with election id (0, {e_none}) that matches no stream",
        lambda: a.write([lpm_insert(bytes([10, 0, 0, 10]), 1)], 0, e_none, device_id=dev),
        "PERMISSION_DENIED")
    obs["write_unset_election_id"] = c.expect_rpc_error(
        run, "a Write without election_id",
        lambda: a.write([lpm_insert(bytes([10, 0, 0, 10]), 1)], 0, 0, device_id=dev,
                        election=False),
        "PERMISSION_DENIED")

    # -- C claims B's election id
    run.step("C opens the stream with election id 2 (B's)")
    cc = c.P4Stream(args.addr, "C")
    cc.arbitrate(dev, 0, e2)
    msg = cc.recv("arbitration", WAIT)
    cc.ended.wait(WAIT)
    c_obs = {"arbitration": c.arbitration_dict(msg),
             "stream_end": list(cc.end) if cc.end else None}
    obs["C_same_id_as_primary"] = c_obs
    run.check(msg is None or c.arbitration_code(msg) != "OK",
              "C (same election id as the live primary B) not to become primary: its stream "
              "terminated with INVALID_ARGUMENT, or a non-OK arbitration status",
              c_obs)
    run.check(msg is not None or cc.end is not None,
              f"C's stream to end with an error (INVALID_ARGUMENT) or carry a non-OK "
              f"arbitration status within {WAIT:g} s", "neither: C's stream stays open, silent")
    cc.close()
    stray = a.recv("arbitration", 0.3)
    obs["A_arbitration_during_C"] = c.arbitration_dict(stray)
    run.check(stray is None or c.arbitration_code(stray) != "OK",
              "A to stay a backup while C is rejected", c.arbitration_dict(stray))
    c.expect_rpc_ok(run, "B's Write after C's attempt (B still primary)",
                    lambda: bb.write([c.table_entry_update(
                        names, "DELETE", "ipv4_lpm",
                        [("ipv4.dstAddr", "lpm", bytes([10, 0, 1, 10]), 32)])], 0, e2,
                        device_id=dev))
    obs["B_write_after_C"] = "OK"

    # -- the primary goes away
    run.step("B closes its stream; A is told there is no primary")
    bb.close()
    msg = a.recv("arbitration", WAIT)
    d = c.arbitration_dict(msg)
    obs["A_after_B_closed"] = d
    run.check(msg is not None,
              "A to receive an arbitration advisory after the primary B disconnected",
              f"nothing within {WAIT:g} s" + (f" (A's stream ended: {a.end})" if a.end else ""))
    if c.arbitration_code(msg) == "OK":
        run.fail("expected A to get status NOT_FOUND (no primary): per spec 1.5 when a primary "
                 "channel breaks 'the P4Runtime server will be without a primary controller, "
                 "until a client sends a successful MasterArbitrationUpdate'; got status OK "
                 f"(A promoted by the server on its own): {d}")
    run.check(c.arbitration_code(msg) == "NOT_FOUND" and d["election_id"] == [0, e2],
              f"A: status NOT_FOUND (no primary), election_id (0, {e2})", d)
    obs["A_write_without_primary"] = c.expect_rpc_error(
        run, "A's Write with election id 1 while there is no primary",
        lambda: a.write([lpm_insert(bytes([10, 0, 0, 10]), 1)], 0, e1, device_id=dev),
        "PERMISSION_DENIED")

    run.step("A re-sends election id 1: below the highest seen (2), stays a backup")
    a.arbitrate(dev, 0, e1)
    obs["A_resend_1"] = expect_arbitration(a, "A", "NOT_FOUND", e2,
                                           "id below the highest seen, no primary")

    run.step("A sends election id 3: becomes primary")
    a.arbitrate(dev, 0, e3)
    obs["A_send_3"] = expect_arbitration(a, "A", "OK", e3, "highest id: primary")
    c.expect_rpc_ok(run, "A's Write with election id 3 (primary)",
                    lambda: a.write([lpm_insert(bytes([10, 0, 0, 10]), 1)], 0, e3,
                                    device_id=dev))
    obs["A_write_as_primary"] = "OK"
    obs["A_write_old_id"] = c.expect_rpc_error(
        run, "A's Write with its old election id 1",
        lambda: a.write([lpm_insert(bytes([10, 0, 0, 11]), 1)], 0, e1, device_id=dev),
        "PERMISSION_DENIED")

    run.step("close")
    a.close()


if __name__ == "__main__":
    c.main(SCRIPT, __doc__.splitlines()[0], body)

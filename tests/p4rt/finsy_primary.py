#!/usr/bin/env python3
"""simple_router through finsy 0.30.0 (run with .venv-p4rt/finsy/bin/python).

`async with fy.Switch("sw1", addr, fy.SwitchOptions(p4info, p4blob, device_id,
initial_election_id=10, ready_handler))` makes finsy do its whole start-up against the
server: StreamChannel arbitration, Capabilities, gNMI Subscribe (UNIMPLEMENTED is fine),
GetForwardingPipelineConfig(COOKIE_ONLY) and, as the cookie differs,
SetForwardingPipelineConfig(VERIFY_AND_COMMIT). Then the ready handler:

  (entries left in ipv4_lpm by an earlier finsy run with the same cookie are deleted first)

  sw.is_primary                                             -> True
  sw.insert([P4TableEntry("ipv4_lpm", ipv4.dstAddr 10.0.1.10/32,
             set_nhop(nhop_ipv4=10.0.1.10, port=2))])       -> OK
  sw.read(P4TableEntry("ipv4_lpm"))                         -> exactly that entry (match,
                                                               action and params)
and leaving the `async with` block stops the switch (cancels its tasks, closes the channel).

Not onos_basic: finsy 0.30.0 cannot load basic.p4info.txt at all. It indexes match fields by
their last name component too, and table0 has both hdr.ethernet.src_addr and
hdr.ipv4.src_addr ("ValueError: name already exists").

Usage: .venv-p4rt/finsy/bin/python tests/p4rt/finsy_primary.py --addr 127.0.0.1:PORT
           [--corpus DIR] [--device-id 1] [--election-base 0] [--timeout 60]
The election id is 10 + base.
"""

import asyncio
import json
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as c  # noqa: E402

SCRIPT = "finsy_primary"
TABLE = "ipv4_lpm"


async def on_ready(run, sw):
    import finsy as fy

    run.step("ready handler: primary?")
    run.record("is_primary", sw.is_primary)
    run.record("election_id", sw.election_id)
    run.record("primary_id", sw.primary_id)
    run.record("p4runtime_version", str(sw.p4runtime_version))
    run.check(sw.is_primary, f"finsy primary with election id {sw.election_id}",
              f"a backup (server's primary election id {sw.primary_id})")

    # finsy skips SetForwardingPipelineConfig when the server already has its cookie (a
    # previous finsy run on the same server), and then the table keeps that run's entry.
    run.step(f"ready handler: clear entries a previous run left in {TABLE}")
    try:
        leftover = [e async for e in sw.read(fy.P4TableEntry(TABLE))]
        if leftover:
            await sw.delete(leftover)
    except fy.P4ClientError as e:
        run.fail(f"expected reading/deleting old {TABLE} entries to succeed; got {e}")
    run.record("leftover_entries_deleted", len(leftover))

    run.step(f"ready handler: insert into {TABLE}")
    entry = fy.P4TableEntry(
        TABLE,
        match=fy.P4TableMatch({"ipv4.dstAddr": "10.0.1.10/32"}),
        action=fy.P4TableAction("set_nhop", nhop_ipv4="10.0.1.10", port=2),
    )
    try:
        await sw.insert([entry])
    except fy.P4ClientError as e:
        run.fail(f"expected sw.insert() to succeed; got {e}")

    run.step(f"ready handler: read {TABLE} back")
    try:
        got = [e async for e in sw.read(fy.P4TableEntry(TABLE))]
    except fy.P4ClientError as e:
        run.fail(f"expected sw.read() to succeed; got {e}")
    schema = sw.p4info
    want = json.dumps(c.norm_table_entry(entry.encode_entry(schema)), sort_keys=True)
    got_n = [json.dumps(c.norm_table_entry(g.encode_entry(schema)), sort_keys=True) for g in got]
    run.record("read_back", [{"match": g.match_str(schema), "action": g.action_str(schema),
                              "priority": g.priority} for g in got])
    run.check(got_n == [want], f"exactly the entry written: {want}", got_n)
    return True


async def amain(run):
    import finsy as fy

    args = run.args
    p4info = Path(c.corpus_file(args, "simple_router", "simple_router.p4info.txt"))
    p4blob = Path(c.corpus_file(args, "simple_router", "simple_router.json"))
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    async def ready_handler(sw):
        try:
            result = await on_ready(run, sw)
        except BaseException as e:  # noqa: BLE001 - hand everything to the main task
            if not done.done():
                done.set_exception(e)
            if isinstance(e, asyncio.CancelledError):
                raise
        else:
            if not done.done():
                done.set_result(result)

    opts = fy.SwitchOptions(
        p4info=p4info,
        p4blob=p4blob,
        device_id=args.device_id,
        initial_election_id=10 + args.election_base,
        ready_handler=ready_handler,
    )
    run.step("fy.Switch(...) loads the P4Info")
    sw = fy.Switch("sw1", args.addr, opts)

    run.step("fy.Switch start-up (arbitration, Capabilities, gNMI, Get/SetForwardingPipelineConfig)")
    try:
        async with sw:
            run.step("waiting for the ready handler")
            await asyncio.wait_for(done, timeout=max(1.0, args.timeout - 5.0))
            run.step("leaving `async with fy.Switch` (stop the switch)")
    except c.CheckFailed:
        raise
    except asyncio.TimeoutError:
        run.fail("expected finsy to call the ready handler; it did not within the time limit "
                 "(see finsy's log above)")
    except asyncio.CancelledError:
        run.fail("expected finsy's start-up to succeed; a switch task failed and finsy "
                 "cancelled the others (its CRITICAL log above names the failing request)")
    except Exception as e:  # noqa: BLE001
        run.fail(f"expected finsy's start-up to succeed; got {type(e).__name__}: {e}")
    run.record("stopped", True)


def body(run):
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(amain(run))


if __name__ == "__main__":
    c.main(SCRIPT, __doc__.splitlines()[0], body)

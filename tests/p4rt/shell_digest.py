#!/usr/bin/env python3
"""Digests and idle timeouts with bmv2's digest test program through p4runtime-shell 0.0.6.

The program (bmv2_grpc_tests/digest): table ingress.smac (exact h.ethernet.smac, idle
timeout NOTIFY_CONTROL); a miss runs send_digest -> digest L2_digest {smac:48, ig_port:9}.
Traffic enters as PacketOuts, which the switch runs through the pipeline as received on
its CPU port (the server needs [p4runtime] cpu_port = 255: ig_port is 255).

  DigestEntry L2_digest {max_timeout 0, max_list_size 1, ack_timeout 5 s}; read it back
  frame from MAC A                    -> DigestList {A, 255}
  frame from MAC A again              -> nothing (the list is not acknowledged)
  DigestListAck; frame from MAC A     -> a DigestList again, a new list_id
  MODIFY {max_timeout 300 ms, max_list_size 10, ack_timeout 0}; frames from B, C, B
                                      -> one DigestList {B, C} about 300 ms later
  ack for a digest id that does not exist -> a StreamError INVALID_ARGUMENT
  INSERT smac[D] NoAction, idle_timeout 600 ms, metadata "learned"; frame from D
                                      -> no DigestList (a hit), then an
                                         IdleTimeoutNotification with D's key, TTL, metadata
  Read smac with time_since_last_hit  -> elapsed_ns set
  DELETE the DigestEntry; frame from E -> nothing

Usage: .venv-p4rt/shell/bin/python tests/p4rt/shell_digest.py --addr 127.0.0.1:PORT
           [--corpus DIR] [--device-id 1] [--election-base 0] [--timeout 60]
"""

import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as c  # noqa: E402

SCRIPT = "shell_digest"
DIGEST = "L2_digest"
SMAC = "ingress.smac"
CPU_PORT = 255


def frame(src):
    return b"\x02\x00\x00\x00\x00\x01" + src + b"\x88\xb5" + b"SLUICE-DIGEST".ljust(46, b".")


def body(run):
    args = run.args
    p4info_path = c.corpus_file(args, "bmv2_grpc_tests", "digest.p4info.txt")
    bmv2_path = c.corpus_file(args, "bmv2_grpc_tests", "digest.json")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    import p4runtime_sh.shell as sh
    from p4.v1 import p4runtime_pb2

    c.shell_setup(run, args, p4info_path, bmv2_path, "digest")
    client = sh.client

    def next_msg(kind, timeout):
        return client.get_stream_packet(kind, timeout=timeout)

    def digest_lists(timeout, want=None):
        """The DigestLists that arrive within `timeout` seconds (returns early once
        `want` have)."""
        out = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and len(out) != want:
            m = next_msg("digest", left)
            if m is not None:
                out.append(m.digest)
        return out

    def samples(dl):
        got = []
        for d in dl.data:
            run.check(d.HasField("struct"), "digest data as a P4StructLike", str(d))
            got.append(tuple(c.bytes_int(m.bitstring) for m in d.struct.members))
            for m in d.struct.members:
                run.check(c.is_canonical(m.bitstring), "canonical bytestrings", m.bitstring.hex())
        return got

    def ack(digest_id, list_id):
        req = p4runtime_pb2.StreamMessageRequest()
        req.digest_ack.digest_id = digest_id
        req.digest_ack.list_id = list_id
        client.stream_out_q.put(req)

    def send(src):
        # The program has no packet_out header, which sh.PacketOut insists on: the
        # message goes on the shell's stream as it is.
        req = p4runtime_pb2.StreamMessageRequest()
        req.packet.payload = frame(src)
        client.stream_out_q.put(req)

    run.step(f"INSERT DigestEntry {DIGEST} max_timeout 0, max_list_size 1, ack_timeout 5 s")
    de = sh.DigestEntry(DIGEST)
    de.max_timeout_ns = 0
    de.max_list_size = 1
    de.ack_timeout_ns = 5_000_000_000
    de.insert()
    got = [e.msg() for e in sh.DigestEntry(DIGEST).read()]
    run.check(len(got) == 1 and got[0].config.ack_timeout_ns == 5_000_000_000,
              "the DigestEntry read back", [str(g) for g in got])
    digest_id = got[0].digest_id

    a = c.unique_mac()
    run.step(f"frame from {c.mac_str(a)} -> one DigestList")
    send(a)
    lists = digest_lists(3.0, want=1)
    lists += digest_lists(0.2)
    run.check(len(lists) == 1, "exactly one DigestList", [str(x) for x in lists])
    first = lists[0]
    run.check(first.digest_id == digest_id and first.timestamp > 0,
              f"digest_id {digest_id} and a timestamp", str(first))
    run.check(samples(first) == [(c.bytes_int(a), CPU_PORT)],
              f"data {{smac {c.mac_str(a)}, ig_port {CPU_PORT}}}", samples(first))
    run.record("first_list", {"list_id": first.list_id, "data": samples(first)})

    run.step("the same data before the ack -> nothing")
    send(a)
    again = digest_lists(0.5)
    run.check(again == [], "no DigestList while the first is unacknowledged", [str(x) for x in again])

    run.step("ack, then the same data -> a new DigestList")
    ack(digest_id, first.list_id)
    time.sleep(0.1)
    send(a)
    lists = digest_lists(3.0, want=1)
    run.check(len(lists) == 1 and lists[0].list_id != first.list_id,
              "one DigestList with a new list_id", [str(x) for x in lists])
    ack(digest_id, lists[0].list_id)

    run.step("MODIFY: max_timeout 300 ms, max_list_size 10, ack_timeout 0; B, C, B -> one list {B, C}")
    de = sh.DigestEntry(DIGEST)
    de.max_timeout_ns = 300_000_000
    de.max_list_size = 10
    de.ack_timeout_ns = 0
    de.modify()
    b, cc = c.unique_mac(), c.unique_mac()
    t0 = time.monotonic()
    for m in (b, cc, b):
        send(m)
    lists = digest_lists(2.0, want=1)
    lists += digest_lists(0.3)
    run.check(len(lists) == 1, "one batched DigestList", [str(x) for x in lists])
    run.check(sorted(samples(lists[0])) == sorted([(c.bytes_int(b), CPU_PORT), (c.bytes_int(cc), CPU_PORT)]),
              "the two distinct samples", samples(lists[0]))
    run.record("batched_list_size", len(lists[0].data))
    run.record("batch_wait_s", round(time.monotonic() - t0, 3))

    run.step("ack for an unknown digest id -> StreamError INVALID_ARGUMENT")
    ack(digest_id + 1, 1)
    err = None
    deadline = time.monotonic() + 3.0
    while err is None and time.monotonic() < deadline:
        m = next_msg("unknown", 0.2)
        if m is not None and m.HasField("error"):
            err = m.error
    run.check(err is not None and err.canonical_code == 3 and err.HasField("digest_list_ack"),
              "a StreamError INVALID_ARGUMENT carrying the ack", str(err))
    run.record("bad_ack_error", c.code_name(err.canonical_code))

    d = c.unique_mac()
    run.step(f"INSERT {SMAC}[{c.mac_str(d)}] NoAction idle_timeout 600 ms; its frame hits it")
    te = sh.TableEntry(SMAC)(action="NoAction")
    te.match["h.ethernet.smac"] = c.mac_str(d)
    te.idle_timeout_ns = 600_000_000
    te.metadata = b"learned"
    te.insert()
    t_insert = time.monotonic()
    send(d)
    lists = digest_lists(0.4)
    run.check(lists == [], "no DigestList for a known MAC", [str(x) for x in lists])

    run.step("an IdleTimeoutNotification for the entry")
    n = next_msg("idle_timeout_notification", 5.0)
    run.check(n is not None, "an IdleTimeoutNotification within 5 s", None)
    waited = time.monotonic() - t_insert
    n = n.idle_timeout_notification
    run.record("idle_notification_after_s", round(waited, 3))
    entries = [(e.table_id, c.bytes_int(e.match[0].exact.value), e.idle_timeout_ns, e.metadata)
               for e in n.table_entry]
    run.check(entries == [(te.msg().table_id, c.bytes_int(d), 600_000_000, b"learned")],
              "the entry's key, TTL and metadata", entries)
    run.check(waited >= 0.6, "not before the TTL", waited)

    run.step(f"Read {SMAC} with time_since_last_hit")
    q = sh.TableEntry(SMAC)
    q.time_since_last_hit
    got = [e.msg() for e in q.read()]
    elapsed = [e.time_since_last_hit.elapsed_ns for e in got if e.HasField("time_since_last_hit")]
    run.check(len(elapsed) == 1 and elapsed[0] > 0, "elapsed_ns for the entry", [str(g) for g in got])
    run.record("time_since_last_hit_ns", elapsed[0])

    run.step("DELETE the DigestEntry; a new MAC -> nothing")
    sh.DigestEntry(DIGEST).delete()
    send(c.unique_mac())
    lists = digest_lists(0.8)
    run.check(lists == [], "no DigestList without a DigestEntry", [str(x) for x in lists])

    run.step("sh.teardown()")
    sh.teardown()


if __name__ == "__main__":
    c.main(SCRIPT, __doc__.splitlines()[0], body)

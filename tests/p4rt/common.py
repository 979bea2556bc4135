"""Shared helpers of the P4Runtime end-to-end client scripts in tests/p4rt/.

Imported from both venvs (.venv-p4rt/shell: protobuf 3.20 + p4runtime 1.4.1;
.venv-p4rt/finsy: protobuf 6.33, no `p4` package), so this module imports only the
standard library at the top. The raw-gRPC helpers at the end (P4Stream, rpc_error,
P4Names, ...) import `grpc`, `p4.v1` and `google.rpc` when first used and so work
only in the shell venv.

Conventions of every script:
  * exit 0: every check passed;
  * exit 1: a check failed (a line "FAIL: <what was expected>; got <what came back>"
    on stderr), an unexpected error, or the overall timeout;
  * exit 2: bad usage or a missing input file;
  * the last stdout line is one JSON object: {"script", "ok", "observed", ...}.
"""

import argparse
import json
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

# gRPC honours http_proxy & co.; the server under test is always local.
for _v in ("http_proxy", "https_proxy", "grpc_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
    os.environ.pop(_v, None)

# The shared corpus as the Rust tests find it: $SLUICE_P4_CORPUS, else ../shared/p4 beside
# the repository.
DEFAULT_CORPUS = os.environ.get("SLUICE_P4_CORPUS") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "p4"))


class CheckFailed(Exception):
    """A check failed: the message says what was expected and what came back."""


class UsageError(Exception):
    pass


class Run:
    """Per-script state: arguments, observations (the JSON summary) and the last step."""

    def __init__(self, script, args):
        self.script = script
        self.args = args
        self.observed = {}
        self.step_name = "start"
        self._done = threading.Lock()

    def step(self, name):
        """Name the step in progress (reported on a timeout or an error)."""
        self.step_name = name
        print(f"[{self.script}] {name}", file=sys.stderr, flush=True)

    def record(self, key, value):
        self.observed[key] = value
        return value

    def check(self, cond, expected, got):
        """Fail the run unless cond: 'expected <expected>; got <got>'."""
        if not cond:
            raise CheckFailed(f"{self.step_name}: expected {expected}; got {got}")

    def fail(self, msg):
        raise CheckFailed(f"{self.step_name}: {msg}")

    def finish(self, code, error=None):
        """Print the JSON summary as the last stdout line and exit at once.

        os._exit: the clients leave non-daemon threads behind (p4runtime-shell's stream
        reader, gRPC), and a wedged one must not keep a finished test alive."""
        if not self._done.acquire(blocking=False):
            return
        summary = {"script": self.script, "ok": code == 0, "observed": self.observed}
        if error is not None:
            summary["error"] = error
            summary["failed_step"] = self.step_name
        try:
            sys.stderr.flush()
            sys.stdout.write(json.dumps(summary, default=_json_default, sort_keys=True) + "\n")
            sys.stdout.flush()
        finally:
            os._exit(code)


def _json_default(o):
    if isinstance(o, bytes):
        return o.hex()
    return str(o)


def parse_args(description, add_args=None, argv=None):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--addr", required=True, help="P4Runtime server, HOST:PORT (e.g. 127.0.0.1:9559)")
    p.add_argument("--corpus", default=DEFAULT_CORPUS,
                   help="folder of compiled P4 programs (default $SLUICE_P4_CORPUS, else "
                        f"../shared/p4 beside the repository: {DEFAULT_CORPUS})")
    p.add_argument("--device-id", type=int, default=1, help="P4Runtime device_id (default 1)")
    p.add_argument("--election-base", type=int, default=0,
                   help="added to the low 64 bits of every election id this script uses "
                        "(default 0). The server remembers the highest election id it has "
                        "seen until a full restart, so a server that has already seen a "
                        "higher id needs a base above it")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="hard limit for the whole script in seconds (default 60)")
    p.add_argument("--connect-wait", type=float, default=15.0,
                   help="first wait up to this many seconds for the server to accept TCP "
                        "connections (default 15)")
    if add_args is not None:
        add_args(p)
    return p.parse_args(argv)


def corpus_file(args, *parts):
    path = os.path.join(args.corpus, *parts)
    if not os.path.isfile(path):
        raise UsageError(f"missing corpus file {path} (--corpus {args.corpus})")
    return path


def main(script, description, body, add_args=None):
    """Parse arguments, arm the timeout, run body(run) and exit with the conventions above."""
    try:
        args = parse_args(description, add_args)
    except SystemExit as e:  # argparse: --help (0) or bad usage (2)
        sys.exit(e.code)
    run = Run(script, args)
    _arm_timeout(run, args.timeout)
    try:
        run.step(f"wait for {args.addr} to accept connections")
        wait_for_server(run, args.addr, args.connect_wait)
        body(run)
    except CheckFailed as e:
        print(f"FAIL: {e}", file=sys.stderr, flush=True)
        run.finish(1, str(e))
    except UsageError as e:
        print(f"ERROR: {e}", file=sys.stderr, flush=True)
        run.finish(2, str(e))
    except BaseException as e:  # noqa: BLE001 - anything else is a failure with a trace
        traceback.print_exc()
        msg = f"{run.step_name}: unexpected {type(e).__name__}: {e}"
        print(f"FAIL: {msg}", file=sys.stderr, flush=True)
        run.finish(1, msg)
    run.finish(0)


def _arm_timeout(run, seconds):
    def expire(*_):
        msg = f"timed out after {seconds:g} s during step '{run.step_name}'"
        print(f"FAIL: {msg}", file=sys.stderr, flush=True)
        run.finish(1, msg)

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(max(1, int(seconds + 0.999)))
    # Backstop if the main thread is stuck inside C code and never runs the handler.
    t = threading.Timer(seconds + 5.0, expire)
    t.daemon = True
    t.start()


def wait_for_server(run, addr, timeout):
    host, _, port = addr.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"

    def try_connect():
        try:
            socket.create_connection((host, int(port)), timeout=1.0).close()
            return True
        except OSError:
            return False

    run.check(wait_until(try_connect, timeout, 0.1),
              f"the P4Runtime server to accept TCP connections on {addr} within {timeout:g} s",
              "connection refused or timed out")


def wait_until(pred, timeout, interval=0.05):
    """Poll pred() until it returns a truthy value (returned) or timeout (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def hexdump(b, limit=64):
    b = bytes(b)
    s = b[:limit].hex(" ")
    return s + (f" ... ({len(b)} bytes)" if len(b) > limit else f" ({len(b)} bytes)")


# ---------------------------------------------------------------------------------------
# Raw frames on the kernel side of the switch's TAP ports (AF_PACKET)

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
IFF_UP = 0x1


def iface_ready(name, timeout=15.0):
    """Wait for interface `name` to exist and bring it up. Returns its flags before."""
    path = f"/sys/class/net/{name}"
    if not wait_until(lambda: os.path.isdir(path), timeout, 0.1):
        raise CheckFailed(f"interface {name}: expected it to exist (a TAP port of the switch) "
                          f"within {timeout:g} s; got no such interface")
    with open(f"{path}/flags") as f:
        flags = int(f.read().strip(), 16)
    if not flags & IFF_UP:
        r = subprocess.run(["ip", "link", "set", "dev", name, "up"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise CheckFailed(f"interface {name}: expected 'ip link set dev {name} up' to work; "
                              f"got exit {r.returncode}: {r.stderr.strip()}")
    return flags


class RawPort:
    """An AF_PACKET socket on one interface: send frames out of it, read frames it receives."""

    def __init__(self, iface):
        self.iface = iface
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((iface, ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)

    def send(self, frame):
        return self.sock.send(frame)

    def drain(self):
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            pass
        finally:
            self.sock.setblocking(True)

    def recv_match(self, pred, timeout):
        """Frames received on the interface (not our own transmissions) until pred(frame)
        is true: returns (frame, others_seen) or (None, others_seen) on timeout."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, seen
            self.sock.settimeout(left)
            try:
                frame, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                return None, seen
            if addr[2] == PACKET_OUTGOING:
                continue
            if pred(frame):
                return frame, seen
            seen += 1

    def close(self):
        self.sock.close()


def mac_bytes(s):
    return bytes(int(x, 16) for x in s.split(":"))


def mac_str(b):
    return ":".join(f"{x:02x}" for x in b)


def unique_mac():
    """A random locally administered unicast MAC."""
    b = bytearray(os.urandom(6))
    b[0] = (b[0] & 0xFC) | 0x02
    return bytes(b)


def arp_probe_frame(sender_mac, target_ip="192.0.2.1"):
    """Broadcast ARP request (an RFC 5227 probe: sender IP 0.0.0.0), padded to 60 bytes so
    nothing on the way needs to pad it."""
    tpa = socket.inet_aton(target_ip)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1,
                      sender_mac, b"\0\0\0\0", b"\0" * 6, tpa)
    frame = b"\xff" * 6 + sender_mac + b"\x08\x06" + arp
    return frame + b"\0" * (60 - len(frame))


def token_frame(token, length=96):
    """A frame that only this run sends: local experimental ethertype 0x88b5 with a random
    token in the payload."""
    frame = b"\x02\x00\x00\x00\x00\x02" + unique_mac() + b"\x88\xb5" + b"SLUICE-P4RT " + token
    return frame + bytes(range(256))[: max(0, length - len(frame))]


# ---------------------------------------------------------------------------------------
# P4Runtime values

def bytes_int(b):
    return int.from_bytes(bytes(b), "big")


def is_canonical(b):
    """P4Runtime canonical bytestring: shortest form (one byte for 0)."""
    b = bytes(b)
    return len(b) >= 1 and (len(b) == 1 or b[0] != 0)


def norm_field_match(fm):
    """FieldMatch (p4.v1) -> comparable tuple of ints (canonical or padded bytes alike)."""
    kind = fm.WhichOneof("field_match_type")
    v = getattr(fm, kind)
    if kind in ("exact", "optional"):
        return (fm.field_id, kind, bytes_int(v.value))
    if kind == "lpm":
        return (fm.field_id, kind, bytes_int(v.value), v.prefix_len)
    if kind == "ternary":
        return (fm.field_id, kind, bytes_int(v.value), bytes_int(v.mask))
    if kind == "range":
        return (fm.field_id, kind, bytes_int(v.low), bytes_int(v.high))
    return (fm.field_id, kind, bytes(v.SerializeToString()))


def norm_table_entry(te):
    """TableEntry (p4.v1) -> dict with what a write and its read-back must share."""
    action = None
    which = te.action.WhichOneof("type")
    if which == "action":
        a = te.action.action
        action = {"action_id": a.action_id,
                  "params": sorted((p.param_id, bytes_int(p.value)) for p in a.params)}
    elif which is not None:
        action = {which: str(getattr(te.action, which)).strip()}
    return {
        "table_id": te.table_id,
        "match": sorted(norm_field_match(m) for m in te.match),
        "action": action,
        "priority": te.priority,
        "is_default_action": te.is_default_action,
    }


def entry_bytes_canonical(te):
    """True if every match value and action parameter of a TableEntry is canonical."""
    vals = []
    for m in te.match:
        kind = m.WhichOneof("field_match_type")
        v = getattr(m, kind)
        if kind in ("exact", "optional", "lpm"):
            vals.append(v.value)
        elif kind == "ternary":
            vals += [v.value, v.mask]
        elif kind == "range":
            vals += [v.low, v.high]
    if te.action.WhichOneof("type") == "action":
        vals += [p.value for p in te.action.action.params]
    return all(is_canonical(v) for v in vals)


# ---------------------------------------------------------------------------------------
# Raw gRPC (shell venv only: p4runtime 1.4.1 `p4.v1`, `google.rpc`, `grpc`)

def code_name(code):
    """google.rpc / gRPC numeric code -> name (e.g. 6 -> 'ALREADY_EXISTS')."""
    from google.rpc import code_pb2
    try:
        return code_pb2.Code.Name(code)
    except ValueError:
        return f"CODE_{code}"


def rpc_error(err):
    """grpc.RpcError -> {'code', 'details', 'p4_errors' (list or None), 'details_via'}.

    p4_errors: the p4.v1.Error messages packed in google.rpc.Status.details (the
    'grpc-status-details-bin' trailer), as {'canonical_code', 'message', ...} dicts."""
    from google.rpc import status_pb2
    from p4.v1 import p4runtime_pb2
    out = {"code": err.code().name, "details": err.details(), "p4_errors": None, "details_via": None}
    status = None
    try:
        from grpc_status import rpc_status  # not in the shell venv as pinned; used if present
        status = rpc_status.from_call(err)
        if status is not None:
            out["details_via"] = "grpc_status.rpc_status.from_call"
    except Exception:  # noqa: BLE001 - ImportError or a call without trailers
        status = None
    if status is None:
        for key, value in (err.trailing_metadata() or ()):
            if key == "grpc-status-details-bin":
                status = status_pb2.Status()
                status.ParseFromString(value)
                out["details_via"] = "trailing metadata grpc-status-details-bin"
                break
    if status is not None:
        errs = []
        for any_msg in status.details:
            e = p4runtime_pb2.Error()
            if any_msg.Unpack(e):
                errs.append({"canonical_code": code_name(e.canonical_code),
                             "message": e.message, "space": e.space, "code": e.code})
            else:
                errs.append({"canonical_code": None, "type_url": any_msg.type_url})
        out["p4_errors"] = errs
        out["status_code"] = code_name(status.code)
    return out


def effective_code(info):
    """The code one single-update Write (or single-entity Read) failed with, and how it was
    reported: ('ALREADY_EXISTS', 'p4.Error') when the RPC failed with UNKNOWN carrying one
    p4.v1.Error (the spec's batch form), ('...', 'grpc status') when reported directly."""
    if info["code"] == "UNKNOWN" and info["p4_errors"]:
        bad = [e for e in info["p4_errors"] if e.get("canonical_code") != "OK"]
        if len(bad) == 1:
            return bad[0]["canonical_code"], "p4.Error"
    return info["code"], "grpc status"


class P4Names:
    """Name -> id lookups in a P4Info parsed from its text file."""

    def __init__(self, p4info_path):
        from google.protobuf import text_format
        from p4.config.v1 import p4info_pb2
        self.p4info = p4info_pb2.P4Info()
        with open(p4info_path) as f:
            text_format.Merge(f.read(), self.p4info, allow_unknown_field=True)

    def table(self, name):
        for t in self.p4info.tables:
            if name in (t.preamble.name, t.preamble.alias):
                return t
        raise KeyError(f"no table {name}")

    def action(self, name):
        for a in self.p4info.actions:
            if name in (a.preamble.name, a.preamble.alias):
                return a
        raise KeyError(f"no action {name}")

    def field_id(self, table, name):
        for m in self.table(table).match_fields:
            if m.name == name:
                return m.id
        raise KeyError(f"no field {name} in {table}")

    def param_id(self, action, name):
        for p in self.action(action).params:
            if p.name == name:
                return p.id
        raise KeyError(f"no param {name} in {action}")

    def packet_metadata(self, which):
        for c in self.p4info.controller_packet_metadata:
            if c.preamble.name == which:
                return {m.id: m.name for m in c.metadata}
        raise KeyError(f"no controller_packet_metadata {which}")


def uint128(high, low):
    from p4.v1 import p4runtime_pb2
    return p4runtime_pb2.Uint128(high=high, low=low)


def pipeline_config(p4info_path, device_config_bytes, cookie=None):
    from google.protobuf import text_format
    from p4.v1 import p4runtime_pb2
    cfg = p4runtime_pb2.ForwardingPipelineConfig()
    with open(p4info_path) as f:
        text_format.Merge(f.read(), cfg.p4info, allow_unknown_field=True)
    cfg.p4_device_config = device_config_bytes
    if cookie is not None:
        cfg.cookie.cookie = cookie
    return cfg


class P4Stream:
    """One P4Runtime controller: its own gRPC channel and StreamChannel, read by a thread.

    Messages land in a queue; when the server ends the stream, `end` holds
    (status code name, details)."""

    RPC_TIMEOUT = 10.0

    def __init__(self, addr, name):
        import grpc
        from p4.v1 import p4runtime_pb2_grpc
        self.name = name
        self.channel = grpc.insecure_channel(addr, options=[("grpc.enable_http_proxy", 0)])
        self.stub = p4runtime_pb2_grpc.P4RuntimeStub(self.channel)
        self._out = queue.Queue()
        self._in = queue.Queue()
        self.end = None
        self.ended = threading.Event()
        self.pending = []  # messages received while waiting for another kind
        self.call = self.stub.StreamChannel(self._requests())
        self._reader = threading.Thread(target=self._read, name=f"stream-{name}", daemon=True)
        self._reader.start()

    def _requests(self):
        while True:
            m = self._out.get()
            if m is None:
                return
            yield m

    def _read(self):
        import grpc
        try:
            for msg in self.call:
                self._in.put(msg)
            self.end = ("OK", "")
        except grpc.RpcError as e:
            self.end = (e.code().name, e.details())
        except Exception as e:  # noqa: BLE001
            self.end = ("CLIENT_ERROR", repr(e))
        finally:
            self.ended.set()
            self._in.put(None)

    def send(self, msg):
        self._out.put(msg)

    def arbitrate(self, device_id, high, low):
        from p4.v1 import p4runtime_pb2
        req = p4runtime_pb2.StreamMessageRequest()
        req.arbitration.device_id = device_id
        req.arbitration.election_id.high = high
        req.arbitration.election_id.low = low
        self.send(req)

    def recv(self, kind, timeout):
        """Next stream message whose `update` is `kind` (e.g. 'arbitration'), or None when
        none came within timeout or the stream ended. Other messages go to .pending."""
        for i, m in enumerate(self.pending):
            if m.WhichOneof("update") == kind:
                return self.pending.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                m = self._in.get(timeout=left)
            except queue.Empty:
                return None
            if m is None:
                self._in.put(None)  # keep the end marker for later callers
                return None
            if m.WhichOneof("update") == kind:
                return m
            self.pending.append(m)

    def close(self):
        """Half-close our side, cancel the call and close the channel (a controller that
        goes away)."""
        self._out.put(None)
        time.sleep(0.05)
        self.call.cancel()
        self.ended.wait(2.0)
        self.channel.close()

    # unary RPCs (on this controller's channel)
    def write(self, updates, high, low, atomicity=None, device_id=1, election=True):
        from p4.v1 import p4runtime_pb2
        req = p4runtime_pb2.WriteRequest(device_id=device_id)
        if election:
            req.election_id.high = high
            req.election_id.low = low
        req.updates.extend(updates)
        if atomicity is not None:
            req.atomicity = atomicity
        return self.stub.Write(req, timeout=self.RPC_TIMEOUT)

    def read(self, entities, device_id=1):
        from p4.v1 import p4runtime_pb2
        req = p4runtime_pb2.ReadRequest(device_id=device_id)
        req.entities.extend(entities)
        out = []
        for rep in self.stub.Read(req, timeout=self.RPC_TIMEOUT):
            out.extend(rep.entities)
        return out

    def set_pipeline(self, config, high, low, action="VERIFY_AND_COMMIT", device_id=1):
        from p4.v1 import p4runtime_pb2
        R = p4runtime_pb2.SetForwardingPipelineConfigRequest
        req = R(device_id=device_id, action=R.Action.Value(action))
        req.election_id.high = high
        req.election_id.low = low
        req.config.CopyFrom(config)
        return self.stub.SetForwardingPipelineConfig(req, timeout=self.RPC_TIMEOUT)

    def get_pipeline(self, response_type="ALL", device_id=1):
        from p4.v1 import p4runtime_pb2
        R = p4runtime_pb2.GetForwardingPipelineConfigRequest
        req = R(device_id=device_id, response_type=R.ResponseType.Value(response_type))
        return self.stub.GetForwardingPipelineConfig(req, timeout=self.RPC_TIMEOUT)


def arbitration_dict(msg):
    """StreamMessageResponse.arbitration -> JSON-able dict (None stays None)."""
    if msg is None:
        return None
    a = msg.arbitration
    d = {"device_id": a.device_id,
         "status": code_name(a.status.code) if a.HasField("status") else "OK (status unset)",
         "status_message": a.status.message}
    if a.HasField("election_id"):
        d["election_id"] = [a.election_id.high, a.election_id.low]
    else:
        d["election_id"] = None
    return d


def arbitration_code(msg):
    a = msg.arbitration
    return code_name(a.status.code) if a.HasField("status") else "OK"


def table_entry_update(names, kind, table, match, action=None, params=None, priority=0):
    """Build a p4.v1.Update for a TableEntry.

    match: list of (field name, kind, values...) where kind is 'exact' (value),
           'lpm' (value, prefix_len), 'ternary' (value, mask); values are bytes.
    params: list of (param name, bytes)."""
    from p4.v1 import p4runtime_pb2
    u = p4runtime_pb2.Update(type=p4runtime_pb2.Update.Type.Value(kind))
    te = u.entity.table_entry
    te.table_id = table if isinstance(table, int) else names.table(table).preamble.id
    for field, mkind, *vals in match:
        fm = te.match.add()
        fm.field_id = field if isinstance(field, int) else names.field_id(table, field)
        if mkind == "exact":
            fm.exact.value = vals[0]
        elif mkind == "lpm":
            fm.lpm.value, fm.lpm.prefix_len = vals[0], vals[1]
        elif mkind == "ternary":
            fm.ternary.value, fm.ternary.mask = vals[0], vals[1]
        else:
            raise ValueError(mkind)
    if action is not None:
        a = te.action.action
        a.action_id = names.action(action).preamble.id
        for pname, value in params or ():
            p = a.params.add()
            p.param_id = names.param_id(action, pname)
            p.value = value
    te.priority = priority
    return u


def expect_rpc_ok(run, what, fn):
    """Call fn(); fail the run with the gRPC status (and p4.Errors) if it raises."""
    import grpc
    try:
        return fn()
    except grpc.RpcError as e:
        info = rpc_error(e)
        run.fail(f"expected {what} to succeed; got {info['code']}: {info['details']!r}"
                 + (f", p4.Errors {info['p4_errors']}" if info["p4_errors"] else ""))


def expect_rpc_error(run, what, fn, expected):
    """Call fn(), which must fail with one of the codes in `expected` (a name or a list).

    A Write (or Read) whose status is UNKNOWN with exactly one non-OK p4.v1.Error counts as
    that Error's canonical_code (the spec's form); a direct status counts as itself. Returns
    {'code', 'reported_as', 'details', ...} for the JSON summary."""
    import grpc
    expected = [expected] if isinstance(expected, str) else list(expected)
    try:
        fn()
    except grpc.RpcError as e:
        info = rpc_error(e)
        code, form = effective_code(info)
        run.check(code in expected, f"{what} to fail with {' or '.join(expected)}",
                  f"{info['code']}: {info['details']!r}"
                  + (f", p4.Errors {info['p4_errors']}" if info["p4_errors"] else ""))
        out = {"code": code, "reported_as": form, "details": info["details"]}
        if info["p4_errors"]:
            out["p4_errors"] = info["p4_errors"]
        return out
    run.fail(f"expected {what} to fail with {' or '.join(expected)}; got success")


def shell_setup(run, args, p4info_path, bmv2_path, program):
    """p4runtime_sh.shell.setup() as primary with election id (0, 1 + --election-base):
    arbitration, SetForwardingPipelineConfig(VERIFY_AND_COMMIT) of `program`, then
    GetForwardingPipelineConfig(P4INFO_AND_COOKIE). Fails the run if the shell gives up or
    ends up a backup. Returns the election id."""
    import contextlib
    import io
    import p4runtime_sh.shell as sh
    election = (0, 1 + args.election_base)
    run.record("election_id", list(election))
    run.step(f"sh.setup (arbitration, Set/GetForwardingPipelineConfig {program})")
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            sh.setup(device_id=args.device_id, grpc_addr=args.addr, election_id=election,
                     config=sh.FwdPipeConfig(p4info_path, bmv2_path), verbose=False)
    except SystemExit:
        run.fail("expected p4runtime_sh.shell.setup() to get arbitration status OK, then "
                 f"SetForwardingPipelineConfig(VERIFY_AND_COMMIT) {program} and "
                 "GetForwardingPipelineConfig(P4INFO_AND_COOKIE) to succeed; got it giving "
                 "up (its log above names the failing step)"
                 + (f"; it printed {printed.getvalue().strip()!r}" if printed.getvalue() else ""))
    run.check("not the primary" not in printed.getvalue(),
              f"arbitration status OK (primary) for election id {election}",
              f"a backup session: the shell printed {printed.getvalue().strip()!r}")
    return election

"""Steady traffic through two TAP interfaces for tests: send frames into IN at a fixed
rate and count the ones that come out of OUT (matched by an EtherType and a tag).

Usage: tap_traffic.py IN OUT RATE_PPS SECONDS
Waits until a probe frame crosses (sluiced forwards), then runs. Writes "ready\n" to
stderr when the counted run starts, then prints JSON {"sent": n, "received": m,
"late": k} (late: frames that arrived during the one second of draining).
"""
import json
import select
import socket
import struct
import sys
import threading
import time

ETHERTYPE = 0x88B5  # IEEE local experimental
TAG = b"SLUICE-TAP-TEST"


def frame(seq):
    dst = b"\x02\x00\x00\x00\x00\x02"
    src = b"\x02\x00\x00\x00\x00\x01"
    return dst + src + struct.pack("!H", ETHERTYPE) + TAG + struct.pack("!Q", seq) + b"\x00" * 30


def main():
    tin, tout, rate, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    tx.bind((tin, 0))
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    rx.bind((tout, 0))
    seen = set()
    probe_seen = threading.Event()
    stop = threading.Event()

    def receive():
        while not stop.is_set():
            r, _, _ = select.select([rx], [], [], 0.05)
            if not r:
                continue
            data, addr = rx.recvfrom(2048)
            if addr[2] == socket.PACKET_OUTGOING or TAG not in data:
                continue
            seq = struct.unpack("!Q", data[14 + len(TAG):22 + len(TAG)])[0]
            if seq >= 1 << 62:
                probe_seen.set()
            else:
                seen.add(seq)

    t = threading.Thread(target=receive, daemon=True)
    t.start()
    deadline = time.time() + 30
    p = 1 << 62
    while not probe_seen.is_set():
        if time.time() > deadline:
            print(json.dumps({"error": "no probe frame crossed in 30 s"}))
            return 1
        tx.send(frame(p))
        p += 1
        probe_seen.wait(0.1)
    sys.stderr.write("ready\n")
    sys.stderr.flush()
    n = int(rate * secs)
    start = time.time()
    for seq in range(n):
        tx.send(frame(seq))
        # Pace: frame seq is due at start + seq / rate.
        ahead = start + (seq + 1) / rate - time.time()
        if ahead > 0:
            time.sleep(ahead)
    end = time.time() + 1.0
    got_at_end = None
    while time.time() < end:
        time.sleep(0.05)
        if len(seen) == n:
            break
    got_at_end = len(seen)
    stop.set()
    t.join()
    print(json.dumps({"sent": n, "received": got_at_end, "missing_first": sorted(set(range(n)) - seen)[:10]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

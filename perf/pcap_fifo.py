#!/usr/bin/env python3
"""Feed a pcap endlessly into a FIFO, for net_pcap `rx_pcap=FIFO` (no infinite_rx).

Usage: pcap_fifo.py PCAP FIFO

Used by perf/bench_cache.sh for profiles too big to preload (OVS's shared mempool cannot hold
a 1M-packet pcap): writes PCAP's global header, then its records over and over, until killed.
net_pcap closes its pcap when a port stops and reopens it when it starts again (OVS may
restart a port while reconfiguring it): when the reader goes away (EPIPE) this reopens the
FIFO, which blocks until the next reader comes, and starts a new stream with a header.
Records are written in ~1 MiB chunks, the pipe is enlarged when the kernel allows it.
Standard library only. Exit status 0 on SIGTERM/SIGINT, 1 on errors.
"""

import errno
import fcntl
import os
import signal
import sys

CHUNK = 1 << 20


def main(argv) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 1
    pcap, fifo = argv[1], argv[2]
    with open(pcap, "rb") as f:
        data = f.read()
    if len(data) <= 24:
        print("pcap_fifo: %s: no records" % pcap, file=sys.stderr)
        return 1
    header, body = data[:24], data[24:]
    # Repeat the body up to ~CHUNK so that each write moves a good amount of whole records.
    reps = max(1, CHUNK // len(body))
    block = memoryview(body * reps)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    while True:
        fd = os.open(fifo, os.O_WRONLY)  # blocks until a reader opens the FIFO
        try:
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        except OSError:
            pass  # above /proc/sys/fs/pipe-max-size: keep the default
        try:
            os.write(fd, header)
            while True:
                off = 0
                while off < len(block):
                    off += os.write(fd, block[off:off + CHUNK])
        except OSError as e:
            if e.errno != errno.EPIPE:
                print("pcap_fifo: %s: %s" % (fifo, e), file=sys.stderr)
                return 1
        finally:
            os.close(fd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Loopback HTTP/1.1 fault-injecting proxy for sync tests. Stdlib only.

Usage:
  faultproxy.py --listen PORT --upstream HOST:PORT [faults] [--count-file F]
                [--trace F] [--log F] [--port-file F]

Forwards HTTP/1.1 requests from clients to the upstream, one upstream
connection per client connection, keep-alive preserved (messages are framed
by Content-Length / chunked encoding, so several requests can share a
connection). Faults (all optional, combinable):
  --cut-every BYTES       close the client connection once BYTES response bytes
                          (head + body) were forwarded on it (per connection)
  --cut-times N           only the first N cuts happen (default: unlimited)
  --stall-after BYTES     after BYTES response bytes on a connection, forward
                          nothing more but keep the socket open (until the
                          client gives up)
  --stall-times N         only the first N stalls happen (default: unlimited)
  --refuse N              reset (accept + RST) the first N connections
  --ignore-range          strip Range / If-Range from requests, so the upstream
                          answers 200 with the whole content
  --corrupt-digest D      flip bits of the body of GET /v2/.../blobs/D (the
                          first byte and every 1 MiB; the length is unchanged)
Measurement:
  --count-file F          the total response bytes forwarded (head + body),
                          rewritten atomically every 0.2 s and at exit
  --trace F               appends "<monotonic seconds> <total bytes>" every 0.5 s
  --log F                 one line per completed request: "<end time> conn N
                          METHOD PATH STATUS BYTES start=<time>" (+ cut/stall lines)
  --port-file F           write the bound port (use --listen 0 to pick one)
SIGTERM/SIGINT: write the count file and exit 0.
"""
import argparse
import os
import select
import signal
import socket
import struct
import sys
import threading
import time

ARGS = None
LOCK = threading.Lock()
TOTAL = 0            # response bytes forwarded to clients
CONNS = 0            # connections accepted
CUTS = 0
STALLS = 0
STOP = threading.Event()


class Closed(Exception):
    """The connection is finished (peer closed, cut, or stalled)."""


def add_total(n):
    global TOTAL
    with LOCK:
        TOTAL += n


def write_count():
    if not ARGS.count_file:
        return
    with LOCK:
        v = TOTAL
    tmp = ARGS.count_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % v)
    os.replace(tmp, ARGS.count_file)


def logline(text):
    if ARGS.log:
        with LOCK:
            with open(ARGS.log, "a") as f:
                f.write("%.3f %s\n" % (time.monotonic(), text))


class Reader:
    """Buffered reads from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def fill(self):
        data = self.sock.recv(256 * 1024)
        if not data:
            raise Closed("eof")
        self.buf += data

    def read_head(self):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.buf[:i + 4])
                del self.buf[:i + 4]
                return head
            if len(self.buf) > 1 << 20:
                raise Closed("head too large")
            self.fill()

    def read_line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i + 2])
                del self.buf[:i + 2]
                return line
            self.fill()

    def read_some(self, limit):
        if not self.buf:
            self.fill()
        n = min(limit, len(self.buf))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


def parse_head(head):
    lines = head.split(b"\r\n")
    first = lines[0].decode("latin-1")
    headers = []
    for ln in lines[1:]:
        if not ln:
            continue
        k, _, v = ln.decode("latin-1").partition(":")
        headers.append((k.strip(), v.strip()))
    return first, headers


def hget(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def build_head(first, headers):
    return ("\r\n".join([first] + ["%s: %s" % kv for kv in headers]) + "\r\n\r\n").encode("latin-1")


class Conn:
    def __init__(self, client, n):
        self.client = client
        self.n = n
        self.sent = 0          # response bytes on this connection
        self.up = None
        self.upr = None
        self.stall_this = ARGS.stall_after is not None
        self.cut_active = ARGS.cut_every is not None

    def next_limit(self):
        limits = []
        if self.stall_this:
            limits.append(ARGS.stall_after)
        if self.cut_active:
            limits.append(ARGS.cut_every)
        return min(limits) if limits else None

    def send(self, data):
        self.client.sendall(data)
        self.sent += len(data)
        add_total(len(data))

    def to_client(self, data):
        """Send response bytes, applying the cut / stall limits of this connection."""
        global CUTS, STALLS
        while data:
            limit = self.next_limit()
            if limit is None or self.sent + len(data) < limit:
                self.send(data)
                return
            part = data[:max(0, limit - self.sent)]
            if part:
                self.send(part)
            data = data[len(part):]
            if self.stall_this and self.sent >= ARGS.stall_after:
                with LOCK:
                    allowed = ARGS.stall_times is None or STALLS < ARGS.stall_times
                    if allowed:
                        STALLS += 1
                if allowed:
                    logline("conn %d stalled after %d bytes" % (self.n, self.sent))
                    self.stall()
                self.stall_this = False  # stalls exhausted
            if self.cut_active and self.sent >= ARGS.cut_every:
                with LOCK:
                    allowed = ARGS.cut_times is None or CUTS < ARGS.cut_times
                    if allowed:
                        CUTS += 1
                if allowed:
                    logline("conn %d cut after %d bytes" % (self.n, self.sent))
                    raise Closed("cut")
                self.cut_active = False  # cuts exhausted: forward the rest normally

    def stall(self):
        # Keep the socket open, forward nothing; end when the client closes.
        while not STOP.is_set():
            r, _, _ = select.select([self.client], [], [], 0.5)
            if r:
                try:
                    if not self.client.recv(65536):
                        break
                except OSError:
                    break
        raise Closed("stalled")

    def connect_up(self):
        host, port = ARGS.upstream.rsplit(":", 1)
        self.up = socket.create_connection((host, int(port)), timeout=120)
        self.up.settimeout(None)
        self.up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.upr = Reader(self.up)

    def close_up(self):
        if self.up is not None:
            try:
                self.up.close()
            except OSError:
                pass
        self.up = self.upr = None

    def forward_body(self, reader, headers, sink, corrupt=False, until_close=False):
        """Copy one message body from reader to sink (a function)."""
        te = (hget(headers, "Transfer-Encoding") or "").lower()
        if "chunked" in te:
            while True:
                line = reader.read_line()
                sink(line)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                left = size + 2  # data + CRLF
                while left > 0:
                    d = reader.read_some(left)
                    left -= len(d)
                    sink(d)
                if size == 0:
                    # trailers until empty line (the "0\r\n" + CRLF already consumed
                    # when there are no trailers)
                    return
            return
        cl = hget(headers, "Content-Length")
        if cl is not None:
            left = int(cl)
            off = 0
            while left > 0:
                d = reader.read_some(min(left, 256 * 1024))
                if corrupt:
                    d = flip(d, off)
                off += len(d)
                left -= len(d)
                sink(d)
            return
        if until_close:
            off = 0
            while True:
                try:
                    d = reader.read_some(256 * 1024)
                except Closed:
                    return
                if corrupt:
                    d = flip(d, off)
                off += len(d)
                sink(d)

    def serve(self):
        creader = Reader(self.client)
        while not STOP.is_set():
            try:
                head = creader.read_head()
            except (Closed, OSError):
                return
            first, headers = parse_head(head)
            parts = first.split(" ")
            method, path = parts[0], parts[1] if len(parts) > 1 else "/"
            if ARGS.ignore_range:
                headers = [(k, v) for k, v in headers if k.lower() not in ("range", "if-range")]
            corrupt = (ARGS.corrupt_digest is not None and method == "GET"
                       and "/blobs/" in path and path.split("?")[0].endswith("/blobs/" + ARGS.corrupt_digest))
            if self.up is None:
                self.connect_up()
            try:
                self.up.sendall(build_head(first, headers))
                if hget(headers, "Content-Length") or "chunked" in (hget(headers, "Transfer-Encoding") or "").lower():
                    self.forward_body(creader, headers, self.up.sendall)
                rhead = self.upr.read_head()
            except (Closed, OSError):
                # upstream dropped a kept-alive connection: retry once on a fresh one
                self.close_up()
                self.connect_up()
                self.up.sendall(build_head(first, headers))
                rhead = self.upr.read_head()
            rfirst, rheaders = parse_head(rhead)
            status = int(rfirst.split(" ")[1])
            before = self.sent
            t_start = time.monotonic()
            self.to_client(rhead)
            no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
            has_framing = hget(rheaders, "Content-Length") is not None or \
                "chunked" in (hget(rheaders, "Transfer-Encoding") or "").lower()
            if not no_body:
                self.forward_body(self.upr, rheaders, self.to_client, corrupt=corrupt,
                                  until_close=not has_framing)
            logline("conn %d %s %s %d %d start=%.3f%s%s" % (self.n, method, path, status, self.sent - before, t_start,
                                                 " corrupted" if corrupt else "",
                                                 " range=" + (hget(headers, "Range") or "") if hget(headers, "Range") else ""))
            conn_hdr = ((hget(rheaders, "Connection") or "") + "," + (hget(headers, "Connection") or "")).lower()
            if "close" in conn_hdr or (not no_body and not has_framing):
                return


def flip(d, off):
    """Flip the byte at every 1 MiB boundary (offset relative to the body start)."""
    if not d:
        return d
    b = bytearray(d)
    step = 1 << 20
    k = ((off + step - 1) // step) * step
    while k < off + len(b):
        b[k - off] ^= 0xFF
        k += step
    return bytes(b)


def handle(client, n):
    c = Conn(client, n)
    try:
        c.serve()
    except (Closed, OSError, ValueError, IndexError):
        pass
    finally:
        c.close_up()
        try:
            client.close()
        except OSError:
            pass
        write_count()


def ticker():
    last = 0.0
    while not STOP.is_set():
        time.sleep(0.2)
        write_count()
        now = time.monotonic()
        if ARGS.trace and now - last >= 0.5:
            last = now
            with LOCK:
                v = TOTAL
            with open(ARGS.trace, "a") as f:
                f.write("%.3f %d\n" % (now, v))


def main(argv):
    global ARGS, CONNS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--cut-every", type=int)
    ap.add_argument("--cut-times", type=int)
    ap.add_argument("--stall-after", type=int)
    ap.add_argument("--stall-times", type=int)
    ap.add_argument("--refuse", type=int, default=0)
    ap.add_argument("--ignore-range", action="store_true")
    ap.add_argument("--corrupt-digest")
    ap.add_argument("--count-file")
    ap.add_argument("--trace")
    ap.add_argument("--log")
    ap.add_argument("--port-file")
    ARGS = ap.parse_args(argv)

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", ARGS.listen))
    srv.listen(128)
    if ARGS.port_file:
        with open(ARGS.port_file + ".tmp", "w") as f:
            f.write("%d\n" % srv.getsockname()[1])
        os.replace(ARGS.port_file + ".tmp", ARGS.port_file)
    write_count()

    def stop(*_):
        STOP.set()
        write_count()
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=ticker, daemon=True).start()
    refused = 0
    while True:
        client, _ = srv.accept()
        CONNS += 1
        if refused < ARGS.refuse:
            refused += 1
            # RST instead of FIN: the client sees "connection reset"
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            logline("conn %d refused" % CONNS)
            continue
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(client, CONNS), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1:])

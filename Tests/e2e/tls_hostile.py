#!/usr/bin/env python3
"""Hostile TLS clients against satellite-lite's TLS listener (called by tls_hostile.sh).

usage: tls_hostile.py HOST PORT CA_FILE SERVER_PID HANDSHAKE_TIMEOUT_S MAX_CONNECTIONS [IDLE_TIMEOUT_S]

Prints one line per failed case ("FAIL case ...") and "cases N failed M" at the end;
exits 1 if any case failed. Every case ends with a check that a well-behaved client still
gets GET /v2/ -> 200 and that the server process is alive.
"""
import os
import socket
import ssl
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import slotcheck  # noqa: E402
from slotcheck import closed_within, slots_released  # noqa: E402

HOST, PORT, CA, PID = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
TIMEOUT = float(sys.argv[5])
MAX_CONN = int(sys.argv[6])
IDLE = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
CASES = 0
FAILS = []


def bad(case, why):
    FAILS.append(case)
    print(f"FAIL case {case:<55} {why}", file=sys.stderr, flush=True)


def log(text):
    print(f"[tls_hostile] {text}", file=sys.stderr, flush=True)


def context():
    ctx = ssl.create_default_context(cafile=CA)
    return ctx


def status(path="/v2/", timeout=10):
    """A well-behaved HTTPS GET; returns the status code (or raises)."""
    with socket.create_connection((HOST, PORT), timeout=timeout) as raw:
        with context().wrap_socket(raw, server_hostname=HOST) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else -1


def alive(case):
    try:
        os.kill(PID, 0)
    except OSError:
        bad(case, "the server process is gone")
        print(f"cases {CASES} failed {len(FAILS)}")
        sys.exit(1)
    try:
        code = status()
    except Exception as error:  # noqa: BLE001 - any failure is the finding
        bad(case, f"afterwards a good client failed: {error!r}")
        return
    if code != 200:
        bad(case, f"afterwards a good client got {code}")


def rss_kib(field="VmRSS"):
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def open_fds():
    return slotcheck.open_fds(PID)


def client_hello():
    """The bytes of a real ClientHello (Python's ssl through memory BIOs)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = context().wrap_bio(incoming, outgoing, server_hostname=HOST)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def reset_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


HELLO = client_hello()

# 1. Idle connections that never send a byte hold the slots, then are closed after the
#    handshake timeout: a good client gets in again.
CASES += 1
case = "idle connections closed after the handshake timeout"
fds_before = open_fds()
idle = [socket.create_connection((HOST, PORT), timeout=5) for _ in range(MAX_CONN)]
time.sleep(0.3)
try:
    code = status(timeout=5)
    if code not in (200, 429):
        bad(case, f"with {MAX_CONN} idle connections a good client got {code}, expected 429 (slots full) or 200")
except Exception:  # noqa: BLE001 - the server may close an over-limit connection at once
    pass
took = slots_released(case, idle, TIMEOUT + 4, "idle connections", PID, fds_before, bad, alive)
fds_after = open_fds()
log(f"{len(idle)} idle connections closed {took:.1f} s after connecting (timeout {TIMEOUT:.0f} s); fds {fds_before} -> {fds_after}")

# 2. A byte per 0.5 s of a ClientHello: the deadline counts from the connect, not from the
#    last byte, so the slow client is closed too.
CASES += 1
case = "slow ClientHello (a byte per 0.5 s) closed at the timeout"
slow = [socket.create_connection((HOST, PORT), timeout=5) for _ in range(4)]
start = time.monotonic()
done = [False] * len(slow)
while time.monotonic() - start < TIMEOUT + 4 and not all(done):
    for i, s in enumerate(slow):
        if done[i]:
            continue
        index = int((time.monotonic() - start) / 0.5)
        try:
            s.send(HELLO[index:index + 1])
        except OSError:
            done[i] = True
            continue
        s.settimeout(0.01)
        try:
            if s.recv(4096) == b"":
                done[i] = True
        except socket.timeout:
            pass
        except OSError:
            done[i] = True
    time.sleep(0.5)
took = time.monotonic() - start
if not all(done):
    bad(case, f"{done.count(False)} slow clients still connected after {took:.1f} s")
elif took > TIMEOUT + 2:
    bad(case, f"closed only after {took:.1f} s (timeout {TIMEOUT:.0f} s)")
for s in slow:
    s.close()
alive(case)
log(f"slow ClientHello clients closed after {took:.1f} s")

# 3. Clients that vanish mid-handshake: after the ClientHello (reset, and FIN), and after
#    half of it.
CASES += 1
case = "clients vanishing mid-handshake"
for i in range(60):
    s = socket.create_connection((HOST, PORT), timeout=5)
    s.sendall(HELLO if i % 3 else HELLO[: len(HELLO) // 2])
    if i % 2:
        time.sleep(0.01)  # the server's ServerHello may be on its way
        reset_close(s)
    else:
        s.close()
time.sleep(0.5)
alive(case)

# 4. Records: truncated, oversized, garbage, a bad MAC, all after a real ClientHello or a
#    completed handshake.
def handshaken():
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = context().wrap_bio(incoming, outgoing, server_hostname=HOST)
    sock = socket.create_connection((HOST, PORT), timeout=5)
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            out = outgoing.read()
            if out:
                sock.sendall(out)
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed during handshake")
            incoming.write(data)
    out = outgoing.read()
    if out:
        sock.sendall(out)
    return sock, obj, incoming, outgoing


record_cases = {
    # A handshake record header announcing 16 KiB, then 10 bytes and EOF.
    "truncated handshake record then EOF": (False, b"\x16\x03\x01\x40\x00" + b"\x01" * 10, "eof"),
    # A record longer than TLS allows (2^14 + 2048 + 1).
    "oversized record length": (False, b"\x16\x03\x01" + struct.pack(">H", 16384 + 2049) + b"\x00" * 64, "wait"),
    # A ClientHello followed by garbage in place of the next flight.
    "ClientHello then garbage": (False, HELLO + os.urandom(3000), "wait"),
    # After the handshake: application data with a bad MAC.
    "application record with a bad MAC": (True, b"\x17\x03\x03\x00\x40" + os.urandom(64), "wait"),
    # After the handshake: a truncated application record, then EOF.
    "truncated application record then EOF": (True, b"\x17\x03\x03\x10\x00" + os.urandom(100), "eof"),
    # After the handshake: an unknown record type.
    "unknown record content type": (True, b"\x63\x03\x03\x00\x10" + os.urandom(16), "wait"),
    # After the handshake: a huge plaintext length claim.
    "application record over 2^14+2048": (True, b"\x17\x03\x03\xff\xff" + os.urandom(200), "wait"),
}
for name, (after_handshake, payload, ending) in record_cases.items():
    CASES += 1
    case = f"record: {name}"
    try:
        if after_handshake:
            sock, _, _, _ = handshaken()
        else:
            sock = socket.create_connection((HOST, PORT), timeout=5)
        sock.sendall(payload)
        if ending == "eof":
            sock.shutdown(socket.SHUT_WR)
        if not closed_within(sock, TIMEOUT + 3):
            bad(case, f"the connection stayed open {TIMEOUT + 3:.0f} s")
        sock.close()
    except Exception as error:  # noqa: BLE001
        bad(case, f"client side error: {error!r}")
    alive(case)

# 5. Many concurrent TLS connections (100, over the 16 slots: 200 or 429): each completes a
#    handshake and a GET; then MAX_CONN - 2 held open, idle after the handshake: memory stays bounded.
CASES += 1
case = "concurrent handshakes and GETs"
codes = []
lock = threading.Lock()


def one():
    try:
        code = status(timeout=30)
    except Exception as error:  # noqa: BLE001
        code = repr(error)
    with lock:
        codes.append(code)


start = time.monotonic()
threads = [threading.Thread(target=one) for _ in range(100)]
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.monotonic() - start
wrong = [c for c in codes if c not in (200, 429)]
if wrong:
    bad(case, f"{len(wrong)} of {len(codes)} concurrent clients failed: {wrong[:3]}")
ok = codes.count(200)
if ok == 0:
    bad(case, "no concurrent client got 200")
alive(case)
log(f"{len(codes)} concurrent TLS clients: {ok} got 200, {codes.count(429)} 429, in {took:.1f} s")

CASES += 1
case = "idle handshaken connections: bounded memory"
rss0 = rss_kib()
held = []
for _ in range(MAX_CONN - 2):
    try:
        held.append(handshaken()[0])
    except Exception as error:  # noqa: BLE001
        bad(case, f"handshake {len(held) + 1} failed: {error!r}")
        break
time.sleep(0.5)
rss1 = rss_kib()
per = (rss1 - rss0) / max(1, len(held))
if per > 160:
    bad(case, f"RSS grew {rss1 - rss0} KiB for {len(held)} idle TLS connections ({per:.0f} KiB each, limit 160)")
for s in held:
    reset_close(s)
time.sleep(0.5)
alive(case)
log(f"{len(held)} idle TLS connections: RSS {rss0} -> {rss1} KiB ({per:.0f} KiB each)")

# 6. registry.idleTimeout after the handshake: every slot held by clients that completed the
#    handshake and then send nothing, or sent one request and keep the connection alive.
#    They are closed at the idle timeout (not never, not at the handshake timeout) and a
#    good client gets in again.
if IDLE:
    CASES += 1
    case = "idle after the handshake: closed at the idle timeout, slots come back"
    fds_before = open_fds()
    held = []
    try:
        kept = context().wrap_socket(socket.create_connection((HOST, PORT), timeout=5), server_hostname=HOST)
        kept.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {HOST}:{PORT}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = kept.recv(4096)
            if not chunk:
                break
            answer += chunk
        if not answer.startswith(b"HTTP/1.1 200"):
            bad(case, f"the kept-alive client got {answer[:40]!r}")
        held.append(kept)
        while len(held) < MAX_CONN:
            held.append(handshaken()[0])
    except Exception as error:  # noqa: BLE001
        bad(case, f"setting up {MAX_CONN} handshaken connections failed at {len(held)}: {error!r}")
    took = slots_released(case, held, IDLE + 8, "handshaken idle connections", PID, fds_before, bad, alive)
    log(f"{len(held)} connections idle after the handshake closed within {took:.1f} s (idle timeout {IDLE:.0f} s)")

print(f"cases {CASES} failed {len(FAILS)}")
sys.exit(1 if FAILS else 0)

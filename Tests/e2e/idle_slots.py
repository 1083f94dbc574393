#!/usr/bin/env python3
"""Connections holding a plain listener's slots without using them (called by hostile.sh --bin).

usage: idle_slots.py HOST PORT SERVER_PID IDLE_TIMEOUT_S MAX_CONNECTIONS cut
       idle_slots.py HOST PORT SERVER_PID SECONDS 0 survive

cut: MAX_CONNECTIONS clients kept alive after one request fill every slot; they are closed
within IDLE_TIMEOUT_S + 8 s and a good client gets 200 again (the slots came back, no
descriptor leak); headers trickling in (a line every 0.3 s) and a PATCH body that stops
after 10 of 1000 bytes are closed too (registry.headerTimeout = registry.idleTimeout here).
survive: a client kept alive after one request is still connected after SECONDS (after a
SIGHUP that raised the timeout). Prints "FAIL case ..." lines and "cases N failed M";
exits 1 if any case failed.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import slotcheck  # noqa: E402
from slotcheck import closed_within, slots_released  # noqa: E402

HOST, PORT, PID = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
SECONDS = float(sys.argv[4])
MAX_CONN = int(sys.argv[5])
MODE = sys.argv[6]
CASES = 0
FAILS = []


def bad(case, why):
    FAILS.append(case)
    print(f"FAIL case {case:<55} {why}", file=sys.stderr, flush=True)


def log(text):
    print(f"[idle_slots] {text}", file=sys.stderr, flush=True)


def status(path="/v2/"):
    with socket.create_connection((HOST, PORT), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else -1


def kept_alive():
    """A connection that sent one GET /v2/, read its answer, and keeps the connection."""
    s = socket.create_connection((HOST, PORT), timeout=10)
    s.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {HOST}:{PORT}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return s, data


def open_fds():
    return slotcheck.open_fds(PID)


def alive(case):
    try:
        os.kill(PID, 0)
    except OSError:
        bad(case, "the server process is gone")
        return
    try:
        code = status()
    except Exception as error:  # noqa: BLE001
        bad(case, f"afterwards a good client failed: {error!r}")
        return
    if code != 200:
        bad(case, f"afterwards a good client got {code}")


if MODE == "cut":
    CASES += 1
    case = "kept-alive idle clients fill every slot, then are closed"
    fds_before = open_fds()
    held = []
    for _ in range(MAX_CONN):
        s, answer = kept_alive()
        if not answer.startswith(b"HTTP/1.1 200"):
            bad(case, f"client {len(held) + 1} of {MAX_CONN} got {answer[:40]!r}")
        held.append(s)
    try:
        extra = status()
        if extra not in (200, 429):
            bad(case, f"with every slot held a client got {extra}, expected 429 (or 200 once slots freed)")
    except Exception:  # noqa: BLE001 - an over-limit connection may be closed at once
        extra = "closed"
    took = slots_released(case, held, SECONDS + 8, "idle kept-alive connections", PID, fds_before, bad, alive)
    log(f"{len(held)} kept-alive idle clients (one more got {extra}) closed within {took:.1f} s (idle timeout {SECONDS:.0f} s)")

    CASES += 1
    case = "headers trickling in (a line every 0.3 s) are cut"
    s = socket.create_connection((HOST, PORT), timeout=10)
    s.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {HOST}:{PORT}\r\n".encode())
    start = time.monotonic()
    cut = False
    while time.monotonic() - start < SECONDS + 8:
        try:
            s.sendall(b"X-Slow: 1\r\n")
        except OSError:
            cut = True
            break
        s.settimeout(0.3)
        try:
            if s.recv(4096) == b"":
                cut = True
                break
        except socket.timeout:
            pass
        except OSError:
            cut = True
            break
    if not cut:
        bad(case, f"still connected after {time.monotonic() - start:.1f} s of trickling headers")
    s.close()
    alive(case)
    log(f"trickled headers cut after {time.monotonic() - start:.1f} s")

    CASES += 1
    case = "a request body that stops arriving is cut"
    s = socket.create_connection((HOST, PORT), timeout=10)
    s.sendall(f"POST /v2/idle/slots/blobs/uploads/ HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nContent-Length: 0\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    location = next((line.split(b":", 1)[1].strip().decode() for line in data.split(b"\r\n")
                     if line.lower().startswith(b"location:")), None)
    if location is None:
        bad(case, f"no upload session: {data[:80]!r}")
    else:
        s.sendall(f"PATCH {location} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nContent-Type: application/octet-stream\r\n"
                  f"Content-Length: 1000\r\n\r\n".encode() + b"0123456789")
        if not closed_within(s, SECONDS + 8):
            bad(case, f"still connected {SECONDS + 8:.0f} s after the body stopped")
    s.close()
    alive(case)
elif MODE == "survive":
    CASES += 1
    case = f"a kept-alive client stays connected for {SECONDS:.0f} s after the reload"
    s, answer = kept_alive()
    if not answer.startswith(b"HTTP/1.1 200"):
        bad(case, f"got {answer[:40]!r}")
    if closed_within(s, SECONDS):
        bad(case, f"closed within {SECONDS:.0f} s: the reloaded idle timeout was not applied")
    s.close()
    alive(case)

print(f"cases {CASES} failed {len(FAILS)}")
sys.exit(1 if FAILS else 0)

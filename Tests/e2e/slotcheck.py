"""Shared by tls_hostile.py and idle_slots.py: whether the listener closes the connections
that hold its slots, and whether it gets the slots and descriptors back afterwards."""
import os
import socket
import threading
import time


def closed_within(sock, seconds):
    """Whether the server closes `sock` (EOF or reset) within `seconds`."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if sock.recv(65536) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def slots_released(case, socks, seconds, what, pid, fds_before, bad, alive):
    """Waits (in parallel) up to `seconds` for the server to close every one of `socks`,
    closes them, then checks that a good client gets in (`alive`) and that the server's
    descriptors came back. Failures go to `bad`; returns the seconds the closes took."""
    start = time.monotonic()
    results = [None] * len(socks)

    def watch(i, sock):
        results[i] = closed_within(sock, seconds)

    threads = [threading.Thread(target=watch, args=(i, s)) for i, s in enumerate(socks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - start
    if not all(results):
        bad(case, f"{results.count(False)} of {len(socks)} {what} still open after {seconds:.0f} s")
    for s in socks:
        s.close()
    time.sleep(0.5)
    alive(case)
    fds_after = open_fds(pid)
    if fds_after > fds_before + 2:
        bad(case, f"server descriptors {fds_before} before, {fds_after} after: connections leaked")
    return took

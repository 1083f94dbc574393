#!/usr/bin/env python3
"""bench/measure.py OUT TIMEOUT CMD...: run CMD; write "rc wall_s maxrss_kib write_bytes
cancelled_write_bytes peak_RssAnon_kib peak_RssFile_kib" to OUT (the Rss* peaks are sampled
every 10 ms; write_bytes is read from /proc/PID/io after exit, before the process is reaped).
Shared by the benchmarks (sync.sh, bundle.sh)."""
import os, subprocess, sys, time
out, timeout, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
log = open(out + ".log", "wb")
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
deadline = t0 + timeout
anon = filep = 0   # peaks of RssAnon / RssFile, sampled every 10 ms
while True:   # wait for exit without reaping, so /proc/PID/io is still there
    r = os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
    if r is not None:
        break
    try:
        for line in open("/proc/%d/status" % p.pid):
            if line.startswith("RssAnon:"):
                anon = max(anon, int(line.split()[1]))
            elif line.startswith("RssFile:"):
                filep = max(filep, int(line.split()[1]))
    except (OSError, ValueError):
        pass
    if time.monotonic() > deadline:
        p.kill()
    time.sleep(0.01)
wall = time.monotonic() - t0
io = {}
for line in open("/proc/%d/io" % p.pid):
    k, v = line.split(":")
    io[k] = int(v)
_, status, ru = os.wait4(p.pid, 0)
p.returncode = os.waitstatus_to_exitcode(status)
with open(out, "w") as f:
    f.write("%d %.3f %d %d %d %d %d\n" % (p.returncode, wall, ru.ru_maxrss, io["write_bytes"], io["cancelled_write_bytes"], anon, filep))

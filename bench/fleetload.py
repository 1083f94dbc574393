#!/usr/bin/env python3
"""Load generator for bench/fleet.sh: simulated satellites against ground-control.

Python asyncio with hand-written HTTP/1.1 over keep-alive connections (no third-party
packages): one process drives every satellite; its own CPU time is measured and reported
so a saturated generator is visible (cpu_percent near 100 means it, not the server, set the
pace).

Phases (each prints one JSON line on stdout; fleet.sh collects them):
  setup    log in as admin, create group `bench` (20 images with real digests) and N
           satellites, onboard each through ZTR (POST /satellites/ztr), write the
           credentials to --creds.
  steady   every satellite heartbeats every --interval seconds (first one at a random
           offset) for --duration seconds: the real fleet's load, N/interval requests/s.
  hour     the compressed hour: --beats heartbeats for each of the first --hour-satellites
           satellites, round by round (every satellite's k-th before any (k+1)-th), with
           --concurrency requests in flight: as fast as the server takes them.
  status   checks one satellite's drift status (must be in_sync).
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import resource
import sys
import time


class HTTPError(Exception):
    pass


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    async def request(self, method, path, body=b"", headers=()):
        if self.writer is None:
            await self.open()
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        if body:
            head.append("Content-Type: application/json")
        head.extend(headers)
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        try:
            status_line = await self.reader.readuntil(b"\r\n")
            parts = status_line.split(b" ", 2)
            status = int(parts[1])
            length, chunked, close = 0, False, False
            while True:
                line = await self.reader.readuntil(b"\r\n")
                if line == b"\r\n":
                    break
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                value = value.strip()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and value.lower() == b"chunked":
                    chunked = True
                elif name == b"connection" and value.lower() == b"close":
                    close = True
            if chunked:
                data = bytearray()
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        await self.reader.readuntil(b"\r\n")
                        break
                    data += await self.reader.readexactly(size)
                    await self.reader.readexactly(2)
                payload = bytes(data)
            else:
                payload = await self.reader.readexactly(length) if length else b""
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError) as error:
            self.close()
            raise HTTPError(f"{method} {path}: connection failed: {error!r}")
        if close:
            self.close()
        return status, payload


class Pool:
    """Connections to one ground-control; `size` of them at most."""

    def __init__(self, url, size):
        hostport = url.split("://", 1)[1].rstrip("/")
        host, _, port = hostport.rpartition(":")
        self.idle = asyncio.Queue()
        for _ in range(size):
            self.idle.put_nowait(Conn(host, int(port)))

    async def request(self, *args, **kwargs):
        conn = await self.idle.get()
        try:
            return await conn.request(*args, **kwargs)
        finally:
            self.idle.put_nowait(conn)


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def rss_of(pids):
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            out[str(pid)] = {
                "rss_kib": int(fields["VmRSS"].split()[0]),
                "peak_kib": int(fields["VmHWM"].split()[0]),
            }
        except (OSError, KeyError, ValueError):
            out[str(pid)] = None
    return out


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# The group's 20 images: real digests of (small, deterministic) manifests.
IMAGES = []
for i in range(20):
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "bench": i},
        sort_keys=True,
    ).encode()
    IMAGES.append((f"bench/app-{i:02d}", "v1", digest_of(manifest), 40_000_000 + 1_234_567 * i))


def group_body(registry_url):
    return json.dumps(
        {
            "group": "bench",
            "registry": registry_url,
            "artifacts": [
                {"repository": r, "tag": [t], "digest": d, "type": "IMAGE", "deleted": False} for r, t, d, _ in IMAGES
            ],
        }
    ).encode()


class Satellite:
    __slots__ = ("name", "auth", "pool", "state_digest", "config_digest", "sent")

    def __init__(self, name, username, password, pool):
        self.name = name
        self.auth = "Authorization: Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.pool = pool
        # The digest of the satellite-state artifact it applied: its state document
        # ({"states": [group state], "config": ...}) as Harbor Satellite's ground control writes it.
        state = json.dumps({"states": ["satellite/group-state/bench/state:latest"], "config": ""}).encode()
        self.state_digest = digest_of(state + name.encode())
        self.config_digest = digest_of(b"{}")
        self.sent = 0

    def heartbeat(self, registry_host, interval):
        self.sent += 1
        body = {
            "name": self.name,
            "activity": f"last pass: 20/20 image(s) present; heartbeat {self.sent}",
            "state_report_interval": f"@every 00h00m{interval:02d}s" if interval < 60 else "@every 00h01m00s",
            "latest_state_digest": self.state_digest,
            "latest_config_digest": self.config_digest,
            "memory_used_bytes": 18_000_000 + random.randrange(2_000_000),
            "storage_used_bytes": sum(size for *_, size in IMAGES),
            "cpu_percent": round(random.random() * 3, 2),
            "request_created_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "last_sync_duration_ms": 120 + random.randrange(400),
            "image_count": len(IMAGES),
            "cached_images": [
                {"reference": f"{registry_host}/{r}@{d}", "size_bytes": size} for r, _, d, size in IMAGES
            ],
        }
        return json.dumps(body).encode()


class Recorder:
    def __init__(self):
        self.latencies = []
        self.errors = 0
        self.error_samples = []
        self.statuses = {}

    def add(self, seconds, status, detail=""):
        self.latencies.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status != 200:
            self.errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(f"{status} {detail}"[:200])

    def summary(self, wall, cpu):
        values = sorted(self.latencies)
        return {
            "requests": len(values),
            "errors": self.errors,
            "error_samples": self.error_samples,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "wall_s": round(wall, 2),
            "requests_per_s": round(len(values) / wall, 1) if wall > 0 else 0,
            "p50_ms": round(percentile(values, 50) * 1000, 2),
            "p90_ms": round(percentile(values, 90) * 1000, 2),
            "p99_ms": round(percentile(values, 99) * 1000, 2),
            "max_ms": round((values[-1] if values else 0) * 1000, 2),
            "loadgen_cpu_percent": round(100 * cpu / wall, 1) if wall > 0 else 0,
        }


async def send_heartbeat(sat, args, recorder):
    body = sat.heartbeat(args.registry_host, args.interval)
    started = time.perf_counter()
    try:
        status, payload = await sat.pool.request("POST", "/satellites/sync", body, (sat.auth,))
    except HTTPError as error:
        recorder.add(time.perf_counter() - started, 0, str(error))
        return
    recorder.add(time.perf_counter() - started, status, payload[:120].decode(errors="replace"))


async def run_setup(args, pools):
    admin = pools[0]
    status, payload = await admin.request(
        "POST", "/login", json.dumps({"username": "admin", "password": args.admin_password}).encode()
    )
    if status != 200:
        raise SystemExit(f"login failed: {status} {payload[:200]!r}")
    token = json.loads(payload)["token"]
    bearer = f"Authorization: Bearer {token}"
    status, payload = await admin.request("POST", "/api/groups/sync", group_body(args.registry_url), (bearer,))
    if status not in (200, 201):
        raise SystemExit(f"group sync failed: {status} {payload[:200]!r}")

    recorder_add, recorder_ztr = Recorder(), Recorder()
    creds = [None] * args.satellites
    started, cpu0 = time.perf_counter(), cpu_seconds()

    async def onboard(index):
        name = f"sat-{index:05d}"
        pool = pools[index % len(pools)]
        t = time.perf_counter()
        status, payload = await pool.request(
            "POST", "/api/satellites", json.dumps({"name": name, "groups": ["bench"]}).encode(), (bearer,)
        )
        recorder_add.add(time.perf_counter() - t, 200 if status in (200, 201) else status, payload[:120].decode(errors="replace"))
        if status not in (200, 201):
            return
        join = json.loads(payload)["token"]
        t = time.perf_counter()
        status, payload = await pool.request("POST", "/satellites/ztr", json.dumps({"token": join}).encode())
        recorder_ztr.add(time.perf_counter() - t, status, payload[:120].decode(errors="replace"))
        if status != 200:
            return
        auth = json.loads(payload)["auth"]
        creds[index] = (name, auth["username"], auth["password"])

    queue = list(range(args.satellites))

    async def worker():
        while queue:
            await onboard(queue.pop())

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu0
    missing = sum(1 for c in creds if c is None)
    with open(args.creds, "w") as f:
        for c in creds:
            if c:
                f.write("\t".join(c) + "\n")
    return {
        "phase": "setup",
        "satellites": args.satellites - missing,
        "failed": missing,
        "add": recorder_add.summary(wall, cpu),
        "ztr": recorder_ztr.summary(wall, cpu),
    }


def load_satellites(args, pools):
    sats = []
    with open(args.creds) as f:
        for index, line in enumerate(f):
            name, user, password = line.rstrip("\n").split("\t")
            sats.append(Satellite(name, user, password, pools[index % len(pools)]))
    return sats


async def run_steady(args, pools):
    sats = load_satellites(args, pools)
    recorder = Recorder()
    tasks = set()
    started, cpu0 = time.perf_counter(), cpu_seconds()
    # Every satellite's heartbeats at offset + k * interval; one timer loop fires them.
    schedule = sorted((random.uniform(0, args.interval), i) for i in range(len(sats)))
    end = started + args.duration
    lag_max = 0.0
    k = 0
    while True:
        base = started + k * args.interval
        if base >= end:
            break
        for offset, i in schedule:
            due = base + offset
            if due >= end:
                break
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            else:
                lag_max = max(lag_max, now - due)
            task = asyncio.ensure_future(send_heartbeat(sats[i], args, recorder))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        k += 1
    if tasks:
        await asyncio.gather(*tasks)
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu0
    result = {"phase": "steady", "satellites": len(sats), "interval_s": args.interval,
              "target_requests_per_s": round(len(sats) / args.interval, 1),
              "schedule_lag_max_ms": round(lag_max * 1000, 1)}
    result.update(recorder.summary(wall, cpu))
    return result


async def run_hour(args, pools):
    sats = load_satellites(args, pools)[: args.hour_satellites]
    recorder = Recorder()
    started, cpu0 = time.perf_counter(), cpu_seconds()
    work = ((r, s) for r in range(args.beats) for s in sats)

    async def worker():
        for _, sat in work:
            await send_heartbeat(sat, args, recorder)

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu0
    result = {"phase": "hour", "satellites": len(sats), "beats_per_satellite": args.beats}
    result.update(recorder.summary(wall, cpu))
    return result


async def run_status(args, pools):
    admin = pools[0]
    status, payload = await admin.request(
        "POST", "/login", json.dumps({"username": "admin", "password": args.admin_password}).encode()
    )
    bearer = "Authorization: Bearer " + json.loads(payload)["token"]
    name = load_satellites(args, pools)[0].name
    status, payload = await pools[-1].request("GET", f"/api/satellites/{name}/status", b"", (bearer,))
    view = json.loads(payload) if status == 200 else {}
    return {"phase": "status", "satellite": name, "http": status, "state": view.get("state"),
            "missing": len(view.get("missing", []) or []), "desired": len(view.get("desired", []) or [])}


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=["setup", "steady", "hour", "status"])
    parser.add_argument("--targets", required=True, help="comma-separated ground-control URLs")
    parser.add_argument("--creds", required=True)
    parser.add_argument("--admin-password", default=os.environ.get("GC_ADMIN_PASSWORD", ""))
    parser.add_argument("--registry-url", default="http://127.0.0.1:9")
    parser.add_argument("--satellites", type=int, default=10000)
    parser.add_argument("--interval", type=int, default=30)
    parser.add_argument("--duration", type=float, default=90)
    parser.add_argument("--beats", type=int, default=120)
    parser.add_argument("--hour-satellites", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--connections", type=int, default=128, help="keep-alive connections per target")
    parser.add_argument("--pids", default="", help="ground-control pids whose RSS is reported")
    args = parser.parse_args()
    args.registry_host = args.registry_url.split("://", 1)[-1].rstrip("/")
    pools = [Pool(url, args.connections) for url in args.targets.split(",")]
    phase = {"setup": run_setup, "steady": run_steady, "hour": run_hour, "status": run_status}[args.phase]
    result = await phase(args, pools)
    if args.pids:
        result["rss"] = rss_of([int(p) for p in args.pids.split(",")])
    # The machine is shared: its load says how much of a tail is other people's work.
    result["loadavg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())

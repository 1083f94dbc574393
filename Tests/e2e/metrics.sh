#!/usr/bin/env bash
# metrics.sh BIN
# GET /metrics of `satellite-lite run` against a real upstream (Debian's docker-registry),
# checked for well-formed Prometheus text and for values that follow what happened:
#   1. an image (2 x 1 MiB layers) synced by the first pass; two image-updated hooks, one
#      exiting 3: satellite_sync_bytes_total >= the image, passes 1+, failed passes 0,
#      bandwidth limit = the configured 10 MB/s, store bytes >= the image, quota = 8 MiB,
#      hook runs 2 and failures 1, nothing pending; WAN bytes >= the image, the WAN
#      window open (no sync.windows).
#   2. requests: a manifest GET and a 404 raise satellite_http_requests_total{status="200"}
#      and {status="404"}, and the bytes served.
#   3. online GC: a 3 MiB blob pushed straight into satellite-lite (unreferenced, and the
#      profile's grace period 1 s) takes use over the 50% watermark: after the next pass
#      satellite_gc_runs_total >= 1 and satellite_gc_freed_bytes_total >= 3 MiB.
# Every sample line must be NAME[{labels}] VALUE with a # HELP and # TYPE for its name.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
need_tools docker-registry skopeo jq python3 curl
T=$E2E_TMP
MIB=1048576
REPO_ROOT=$(cd "$E2E_DIR/../.." && pwd)

start_docker_registry "$T/up"
UP=$DOCKER_REGISTRY_ADDR
python3 "$MKIMAGE" single "oci:$T/img:v1" --platform linux/amd64 --layers 2 --size $MIB >/dev/null || fail "mkimage.py failed"
out=$(e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$T/img:v1" "docker://$UP/edge/app:v1" 2>&1) \
    || fail "push to the upstream failed: $out"

# A profile with a 1 s grace period and GC from 50% to 40% of the quota.
jq '.name = "metrics-e2e" | .gc.gracePeriod = "1s" | .gc.highWatermark = "50%" | .gc.lowWatermark = "40%"' \
    "$REPO_ROOT/hw-profiles/generic-amd64.json" >"$T/profile.json"
PORT=$(free_port)
ADDR=127.0.0.1:$PORT
jq -n --arg store "$T/store" --arg listen "$ADDR" --arg up "http://$UP" --arg profile "$T/profile.json" '{
    profile: $profile, storage: {path: $store, quota: "8MiB"}, registry: {listen: $listen},
    upstream: {url: $up}, state: {images: ["edge/app:v1"], interval: "1s"}, sync: {bandwidth: "10MB/s"},
    hooks: [{on: "image-updated", run: "true"}, {on: "image-updated", run: "exit 3"}]}' >"$T/config.json"
"$BIN" run --config "$T/config.json" >"$T/run.log" 2>&1 &
RUN=$!
on_exit "kill_wait $RUN"
WAIT_HTTP_PID=$RUN WAIT_HTTP_LOG="$T/run.log" wait_http "http://$ADDR/healthz" 20

scrape() { curl -sf --max-time 5 "http://$ADDR/metrics" >"$T/metrics.txt" || fail "GET /metrics failed"; }
# value NAME[{labels}]: the sample's value, or empty.
value() { awk -v n="$1" '$1 == n { print $2 }' "$T/metrics.txt"; }
# wait_metric NAME MIN SECONDS: scrape until NAME >= MIN.
wait_metric() {
    local deadline=$((SECONDS + $3)) v
    while ((SECONDS < deadline)); do
        scrape
        v=$(value "$1")
        [[ -n $v ]] && ((v >= $2)) && return 0
        sleep 0.5
    done
    fail "$1 did not reach $2 within $3 s (last: '${v:-none}'; run log: $(tail -n 3 "$T/run.log" | tr '\n' ' '))"
}
well_formed() {
    python3 - "$T/metrics.txt" <<'PY' || fail "malformed /metrics: $(head -c 600 "$T/metrics.txt" | tr '\n' '|')"
import re, sys
help_, type_, seen = set(), {}, set()
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? (-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?)$')
for number, line in enumerate(open(sys.argv[1]), 1):
    line = line.rstrip("\n")
    if line.startswith("# HELP "):
        help_.add(line.split()[2]); continue
    if line.startswith("# TYPE "):
        parts = line.split()
        assert parts[3] in ("counter", "gauge"), line
        assert parts[2] not in type_, "TYPE twice: " + line
        type_[parts[2]] = parts[3]; continue
    m = sample.match(line)
    assert m, "line %d: %r" % (number, line)
    name = m.group(1)
    assert name in help_ and name in type_, "no HELP/TYPE for " + name
    assert (name, m.group(2)) not in seen, "sample twice: " + line
    seen.add((name, m.group(2)))
    if type_[name] == "counter":
        assert name.endswith("_total"), "counter without _total: " + name
        assert float(m.group(4)) >= 0, line
PY
}

# ---- 1. the first pass and its hooks
wait_metric satellite_sync_passes_total 1 60
wait_metric satellite_hook_runs_total 2 60
well_formed
image_bytes=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(sum(l['size'] for l in m['layers']) + m['config']['size'])" \
    "$T/img/blobs/sha256/$(jq -r '.manifests[0].digest' "$T/img/index.json" | cut -d: -f2)")
(($(value satellite_sync_bytes_total) >= image_bytes)) || fail "satellite_sync_bytes_total $(value satellite_sync_bytes_total) < image $image_bytes"
(($(value satellite_sync_passes_total) >= 1)) || fail "satellite_sync_passes_total: $(value satellite_sync_passes_total)"
[[ $(value satellite_sync_failed_passes_total) == 0 ]] || fail "failed passes: $(value satellite_sync_failed_passes_total)"
[[ $(value satellite_sync_bandwidth_limit_bytes_per_second) == 10000000 ]] \
    || fail "bandwidth limit: $(value satellite_sync_bandwidth_limit_bytes_per_second)"
[[ $(value satellite_store_quota_bytes) == $((8 * MIB)) ]] || fail "quota: $(value satellite_store_quota_bytes)"
(($(value satellite_store_bytes) >= image_bytes)) || fail "store bytes $(value satellite_store_bytes) < image $image_bytes"
[[ $(value satellite_hook_runs_total) == 2 && $(value satellite_hook_failures_total) == 1 ]] \
    || fail "hooks: runs $(value satellite_hook_runs_total), failures $(value satellite_hook_failures_total) (expected 2 and 1)"
[[ $(value satellite_hook_pending) == 0 ]] || fail "hooks pending: $(value satellite_hook_pending)"
(($(value satellite_wan_bytes_total) >= image_bytes)) || fail "satellite_wan_bytes_total $(value satellite_wan_bytes_total) < image $image_bytes"
[[ $(value satellite_wan_window_open) == 1 ]] || fail "satellite_wan_window_open: $(value satellite_wan_window_open) with no sync.windows"
log "ok: sync $(value satellite_sync_bytes_total) B in $(value satellite_sync_passes_total) pass(es), store $(value satellite_store_bytes) B of $(value satellite_store_quota_bytes), hooks 2 runs / 1 failure"

# ---- 2. requests by status
ok_before=$(value 'satellite_http_requests_total{status="200"}'); ok_before=${ok_before:-0}
served_before=$(value satellite_http_served_bytes_total)
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$ADDR/v2/edge/app/manifests/v1")
[[ $code == 200 ]] || fail "GET manifest: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/v2/edge/app/manifests/nope")
[[ $code == 404 ]] || fail "GET unknown tag: $code"
scrape
well_formed
(($(value 'satellite_http_requests_total{status="200"}') > ok_before)) || fail "200 count did not grow"
(($(value 'satellite_http_requests_total{status="404"}') >= 1)) || fail "no 404 counted"
(($(value satellite_http_served_bytes_total) > served_before)) || fail "served bytes did not grow"
log "ok: requests by status and bytes served follow the requests"

# ---- 3. online GC
blob=$T/extra.bin
head -c $((3 * MIB)) /dev/urandom >"$blob"
digest=sha256:$(sha256sum "$blob" | cut -d' ' -f1)
location=$(curl -s -D - -o /dev/null -X POST "http://$ADDR/v2/edge/cache/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
[[ -n $location ]] || fail "no upload location"
[[ $location == http* ]] || location="http://$ADDR$location"
sep='?'; [[ $location == *\?* ]] && sep='&'
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$blob" "$location${sep}digest=$digest")
[[ $code == 201 ]] || fail "blob push: $code"
# A run inside the grace period frees nothing (and counts); a later one takes the blob.
wait_metric satellite_gc_freed_bytes_total $((3 * MIB)) 60
well_formed
(($(value satellite_gc_runs_total) >= 1)) || fail "gc freed bytes without a run counted"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/v2/edge/cache/blobs/$digest")
[[ $code == 404 ]] || fail "the collected blob still answers $code"
log "ok: gc $(value satellite_gc_runs_total) run(s) freed $(value satellite_gc_freed_bytes_total) B"
log "PASS"

#!/usr/bin/env bash
# store_lifecycle.sh BIN
# Issue 4 acceptance (quota, LRU garbage collection, verify/quarantine, crash and
# disk-full safety) against a real upstream (Debian's docker-registry 2.8).
# Profile: a copy of hw-profiles/rpi4-arm64.json with gc.gracePeriod "0s".
#   1. quota: desired state B -> A,B -> B -> C -> C,D -> A,D -> H -> A,D (A-D ~3.5
#      MiB, H ~6 MiB, quota 12 MiB), one `sync` per step; after each: exit 0, disk
#      use (sum of blob sizes, `du -sb STORE/blobs`, `status --json` diskUse) <=
#      quota, the desired images' blobs present and pulled through `serve` with
#      skopeo (digests checked). Step 5 needs room: A (last wanted in step 2) is
#      evicted, not B (downloaded first but wanted until step 3). Step 7 needs the
#      room of the images that just left the desired state. Prints the table
#      "step, desired, quota, disk use, cached, evicted".
#   2. LRU: 3 cached images (L1, L2, L3, cached in that order); L1 is pulled
#      through `serve` (by digest), the use reaches gc/access (serve stopped with
#      SIGTERM and restarted; STORE_LIFECYCLE_WAIT_FLUSH=1: wait for the 30 s
#      background flush instead); a sync that needs ~one image of room evicts L2
#      (least recently used) and keeps L1 (touched) and L3.
#   3. desired > quota: sync exits 1 at once naming every image and size; no new
#      blob, no ingest file.
#   4. GC racing pulls: `gc` in a loop, a cached image re-pushed in a loop, while
#      skopeo pulls the desired image (must always succeed) and the cached one
#      (full success or a clean 404, never a corrupt/short blob).
#   5. kill -9 during `gc` of 3000 unreferenced blobs (random moments, until 3
#      kills landed mid-sweep, at most 10 rounds):
#      `verify` exits 0, no stray file under blobs/, `serve` serves the desired
#      images, a later `gc` completes.
#   6. a flipped byte in a desired layer: `verify` exits 1 with CORRUPT, the blob
#      is in quarantine/ and no longer served; the next `sync` restores it.
#   7. ENOSPC (8 MiB tmpfs as the store): sync of an image larger than the free
#      space fails with a clear one-line error (no crash); every visible blob
#      hashes to its name; the previous image still serves; a push into the full
#      store gets 507/5xx with OCI error JSON; the server stays up.
#   8. GC time for 10,000 unreferenced blobs (+ tagged images): median of 3 of
#      `gc --dry-run` and `gc`.
# STORE_LIFECYCLE_SECTIONS (default "quota lru toobig race kill corrupt enospc gctime")
# selects sections; quota runs first when toobig/race/kill/corrupt are selected.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
for t in docker-registry skopeo jq python3 curl sha256sum du mount umount; do
    command -v "$t" >/dev/null || fail "$t is not installed"
done
T=$E2E_TMP
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}
SECTIONS=" ${STORE_LIFECYCLE_SECTIONS:-quota lru toobig race kill corrupt enospc gctime} "
want() { [[ "$SECTIONS" == *" $1 "* ]]; }
MIB=1048576
QUOTA_TEXT=12MiB
QUOTA=$(( 12 * MIB ))
PROFILE_SRC="$E2E_DIR/../../hw-profiles/rpi4-arm64.json"
[[ -f "$PROFILE_SRC" ]] || fail "profile $PROFILE_SRC not found"
PROFILE=$T/profile.json
jq '.gc.gracePeriod = "0s"' "$PROFILE_SRC" > "$PROFILE" || fail "cannot write the profile copy"
REPORT=$T/report.txt
: > "$REPORT"
report() { printf '%s\n' "$*" >> "$REPORT"; log "$*"; }

# ------------------------------------------------------------------ python helpers
cat > "$T/h.py" <<'PY'
import hashlib, http.client, json, os, random, sys, time

def conn(addr):
    host, port = addr.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=30)

def push_blob(c, repo, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    c.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), body=data,
              headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
    r = c.getresponse(); r.read()
    return r.status, d

cmd = sys.argv[1]
if cmd == "push-blobs":            # ADDR REPO N: N random small blobs, monolithic POST
    addr, repo, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
    c = conn(addr)
    for i in range(n):
        st, d = push_blob(c, repo, os.urandom(random.randint(64, 2048)))
        if st != 201:
            sys.exit("push %d of %d: HTTP %d" % (i, n, st))
elif cmd == "push-loop":           # ADDR REPO LAYOUT MANIFEST STOPFILE: re-push an image by digest
    addr, repo, layout, manifest, stop = sys.argv[2:7]
    blobs = os.path.join(layout, "blobs", "sha256")
    m = open(os.path.join(blobs, manifest.split(":")[1]), "rb").read()
    doc = json.loads(m)
    ok = bad = 0
    while not os.path.exists(stop):
        try:
            c = conn(addr)
            for desc in [doc["config"]] + doc["layers"]:
                push_blob(c, repo, open(os.path.join(blobs, desc["digest"].split(":")[1]), "rb").read())
            c.request("PUT", "/v2/%s/manifests/%s" % (repo, manifest), body=m,
                      headers={"Content-Type": doc["mediaType"]})
            r = c.getresponse(); r.read()
            if r.status == 201: ok += 1
            else: bad += 1
            c.close()
        except Exception:
            bad += 1
        time.sleep(0.05)
    print("%d %d" % (ok, bad))
elif cmd == "gen-blobs":           # STORE N: write N small blobs straight into the store + access times
    store, n = sys.argv[2], int(sys.argv[3])
    now = int(time.time())
    lines = []
    for i in range(n):
        data = os.urandom(random.randint(256, 4096))
        h = hashlib.sha256(data).hexdigest()
        d = os.path.join(store, "blobs", "sha256", h[:2])
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, h), "wb") as f:
            f.write(data)
        lines.append("%d sha256:%s\n" % (now - random.randint(60, 86400), h))
    os.makedirs(os.path.join(store, "gc"), exist_ok=True)
    path = os.path.join(store, "gc", "access")
    old = open(path).read() if os.path.exists(path) else ""
    with open(path + ".tmp", "w") as f:
        f.write(old + "".join(lines))
    os.replace(path + ".tmp", path)
elif cmd == "hashcheck":           # DIR: every DIR/sha256/xx/HEX hashes to HEX; prints offenders
    base = os.path.join(sys.argv[2], "sha256")
    bad = []
    for p in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        for name in os.listdir(os.path.join(base, p)):
            path = os.path.join(base, p, name)
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            if len(p) != 2 or name[:2] != p or h.hexdigest() != name:
                bad.append(path)
    print("\n".join(bad))
    sys.exit(1 if bad else 0)
elif cmd == "ocicheck":            # LAYOUT: every blob of an oci layout hashes to its name
    base = os.path.join(sys.argv[2], "blobs", "sha256")
    bad = [n for n in os.listdir(base)
           if hashlib.sha256(open(os.path.join(base, n), "rb").read()).hexdigest() != n]
    print(" ".join(bad))
    sys.exit(1 if bad else 0)
else:
    sys.exit("unknown command " + cmd)
PY
H() { python3 "$T/h.py" "$@"; }

# ------------------------------------------------------------------ upstream and images
start_docker_registry "$T/up"
UP=$DOCKER_REGISTRY_ADDR
declare -A DIG
# mkimg NAME LAYERS BYTES_PER_LAYER: build oci:$T/src/NAME:v1 (linux/arm64/v8) and push
# it to the upstream as e2e/NAME:v1.
mkimg() {
    local name=$1 layers=$2 size=$3 out
    DIG[$name]=$(python3 "$MKIMAGE" single --platform linux/arm64/v8 --layers "$layers" --size "$size" \
        "oci:$T/src/$name:v1") || fail "mkimage.py for $name failed"
    out=$(e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$T/src/$name:v1" \
        "docker://$UP/e2e/$name:v1" 2>&1) || fail "push of $name to the upstream failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
    blobs_of "$name" > "$T/src/$name.blobs"
}
# blobs_of NAME: hex of the manifest, config and layers (largest layer last).
blobs_of() {
    local m="$T/src/$1/blobs/sha256/${DIG[$1]#sha256:}"
    echo "${DIG[$1]#sha256:}"
    jq -r '.config.digest' "$m" | sed 's/^sha256://'
    jq -r '.layers | sort_by(.size) | .[].digest' "$m" | sed 's/^sha256://'
}
biggest_layer() { tail -n 1 "$T/src/$1.blobs"; }
blob_path() { echo "$1/blobs/sha256/${2:0:2}/$2"; }
# present STORE NAME: every blob of NAME is in STORE and hashes to its name.
present() {
    local h p
    while read -r h; do
        p=$(blob_path "$1" "$h")
        [[ -f "$p" ]] || return 1
        [[ "$(sha256sum "$p" | cut -d' ' -f1)" == "$h" ]] || return 1
    done < "$T/src/$2.blobs"
}
# held STORE NAME: how many of NAME's blobs STORE holds, e.g. "2/3".
held() {
    local h n=0 all=0
    while read -r h; do
        all=$((all + 1)); [[ -f "$(blob_path "$1" "$h")" ]] && n=$((n + 1)); :
    done < "$T/src/$2.blobs"
    echo "$n/$all"
}
used_bytes() { find "$1/blobs" -type f -printf '%s\n' | awk '{s+=$1} END{print s+0}'; }
blob_list() { find "$1/blobs" -type f -printf '%f\n' | sort; }
mib() { awk -v b="$1" 'BEGIN{printf "%.2f MiB", b/1048576}'; }

# write_config FILE STORE LISTEN QUOTA IMAGE...: images as e2e/NAME:v1 (none: serve only).
write_config() {
    local f=$1 store=$2 listen=$3 quota=$4; shift 4
    local images
    images=$(printf '%s\n' "$@" | sed '/^$/d' | sed 's|.*|e2e/&:v1|' | jq -R . | jq -s .)
    jq -n --arg p "$PROFILE" --arg s "$store" --arg q "$quota" --arg l "$listen" --arg u "http://$UP" \
        --argjson i "$images" \
        '{profile:$p, storage:{path:$s, quota:$q}, registry:{listen:$l}, upstream:{url:$u},
          state:{images:$i, interval:"1h"}, sync:{concurrency:2, timeout:"20s"}}' > "$f"
}
# do_sync CONFIG OUT: one sync pass (bounded); sets SYNC_RC.
do_sync() {
    set +e
    timeout --kill-after=5 60 "$BIN" sync --config "$1" > "$2" 2>&1
    SYNC_RC=$?
    set -e
    (( SYNC_RC != 124 && SYNC_RC != 137 )) || fail "sync did not finish within 60s (hang?): $(tail -n 3 "$2" | tr '\n' ' ')"
    (( SYNC_RC < 128 )) || fail "sync crashed (exit $SYNC_RC): $(tail -n 3 "$2" | tr '\n' ' ')"
}
sync_ok() { # CONFIG OUT WHAT
    do_sync "$1" "$2"
    (( SYNC_RC == 0 )) || fail "$3: sync exited $SYNC_RC, expected 0: $(grep -v '^\s*$' "$2" | tail -n 4 | tr '\n' ' ' | cut -c1-400)"
}
# start_serve CONFIG LOG: `serve` in the background; sets SERVE_PID.
start_serve() {
    "$BIN" serve --config "$1" > "$2" 2>&1 &
    SERVE_PID=$!
    on_exit "kill_wait $SERVE_PID"
    WAIT_HTTP_PID=$SERVE_PID WAIT_HTTP_LOG="$2" wait_http "http://$(jq -r .registry.listen "$1")/v2/" 20
}
# pull REGISTRY REF DEST: skopeo copy to an oci layout, then check every blob's digest.
PULL_ERR=""
pull() {
    rm -rf "$3"
    if ! PULL_ERR=$(e2e_skopeo copy -q --src-tls-verify=false "docker://$1/$2" "oci:$3:x" 2>&1); then
        return 1
    fi
    local bad
    bad=$(H ocicheck "$3") || fail "pull of $2 from $1 succeeded but blobs do not match their digests: $bad"
}
pull_ok() { # REGISTRY NAME WHAT: pull e2e/NAME:v1, check the manifest digest.
    pull "$1" "e2e/$2:v1" "$T/pulled-$2" || fail "$3: pull of e2e/$2:v1 through satellite-lite failed: $(tail -n 2 <<<"$PULL_ERR" | tr '\n' ' ')"
    local got
    got=$(jq -r '.manifests[0].digest' "$T/pulled-$2/index.json")
    [[ "$got" == "${DIG[$2]}" ]] || fail "$3: pulled e2e/$2:v1 has manifest $got, expected ${DIG[$2]}"
}
now_ms() { date +%s%3N; }

# ================================================================== 1. quota sequence
S1=$T/s1
CFG1=$T/s1.json
SAT1=127.0.0.1:$(free_port)
if want quota || want toobig || want race || want kill || want corrupt; then
    t0=$SECONDS
    for n in a b c d; do mkimg "$n" 2 $(( 1792 * 1024 )); done   # ~3.5 MiB each
    mkimg h 2 $(( 3 * MIB ))                                      # ~6 MiB
    write_config "$CFG1" "$S1" "$SAT1" "$QUOTA_TEXT"
    start_serve "$CFG1" "$T/serve1.log"
    SERVE1_PID=$SERVE_PID
    TABLE=$T/table.txt
    printf '%-5s %-8s %-10s %-11s %-11s %-11s %-6s %s\n' step desired quota "blob bytes" "du -sb" "status" cached "evicted so far" > "$TABLE"
    step=0
    declare -A EVER=()
    # Default sequence; STORE_LIFECYCLE_STEPS="a b|b c|..." replaces it (then the LRU
    # check of step 5 is skipped).
    IFS='|' read -ra STEPS <<< "${STORE_LIFECYCLE_STEPS:-b|a b|b|c|c d|a d|h|a d}"
    for desired in "${STEPS[@]}"; do
        step=$((step + 1))
        sleep 1.1   # distinct seconds for the LRU order
        # shellcheck disable=SC2086
        write_config "$CFG1" "$S1" "$SAT1" "$QUOTA_TEXT" $desired
        sync_ok "$CFG1" "$T/sync1-$step.out" "quota step $step (desired $desired)"
        for n in $desired; do EVER[$n]=1; done
        bytes=$(used_bytes "$S1")
        du=$(du -sb "$S1/blobs" | cut -f1)
        st=$("$BIN" status --config "$CFG1" --json | jq -r .diskUse) || fail "status --json failed at step $step"
        (( bytes <= QUOTA )) || fail "step $step (desired $desired): blobs use $bytes bytes, over the quota of $QUOTA"
        (( st <= QUOTA )) || fail "step $step (desired $desired): status diskUse $st, over the quota of $QUOTA"
        (( st == bytes )) || fail "step $step: status diskUse $st differs from the blob bytes on disk $bytes"
        cached="" evicted=""
        for n in a b c d h; do
            [[ " $desired " == *" $n "* ]] && continue
            [[ -n "${EVER[$n]:-}" ]] || continue
            h=$(held "$S1" "$n")
            [[ "$h" == "0/"* ]] || cached+="${cached:+,}$n"
            [[ "${h%/*}" == "${h#*/}" ]] || evicted+="${evicted:+,}$n($(( ${h#*/} - ${h%/*} ))/${h#*/} blobs)"
        done
        for n in $desired; do
            present "$S1" "$n" || fail "step $step: desired image $n is not fully present (held $(held "$S1" "$n"))"
            pull_ok "$SAT1" "$n" "step $step"
        done
        printf '%-5s %-8s %-10s %-11s %-11s %-11s %-6s %s\n' "$step" "${desired// /,}" "$QUOTA_TEXT" "$(mib "$bytes")" "$(mib "$du")" "$(mib "$st")" "${cached:--}" "${evicted:--}" >> "$TABLE"
        log "$(head -n 1 "$TABLE")"; log "$(tail -n 1 "$TABLE")"
        # LRU: in step 5 (C,D needs room) the cached images are A (last wanted in step
        # 2) and B (downloaded in step 1, before A, but wanted until step 3): A is the
        # least recently used and goes first, B must stay whole.
        if (( step == 5 )) && [[ -z "${STORE_LIFECYCLE_STEPS:-}" ]]; then
            present "$S1" b || fail "step 5: eviction took blobs of b ($(held "$S1" b) left; wanted until step 3) rather than of a ($(held "$S1" a) left; last wanted in step 2): a sync's use of desired blobs is not recorded for LRU"
            h=$(held "$S1" a)
            [[ "${h%/*}" != "${h#*/}" ]] || fail "step 5: nothing of a (least recently used) was evicted"
        fi
    done
    if [[ "${STEPS[-1]}" != "a d" ]]; then   # the sections below want a,d desired
        write_config "$CFG1" "$S1" "$SAT1" "$QUOTA_TEXT" a d
        sync_ok "$CFG1" "$T/sync1-ad.out" "sync of a,d after the sequence"
    fi
    report "quota sequence ok in $(( SECONDS - t0 ))s"
fi

# ================================================================== 3. desired > quota
if want toobig; then
    blob_list "$S1" > "$T/before.list"
    write_config "$T/toobig.json" "$S1" "$SAT1" "$QUOTA_TEXT" a d h
    t1=$(now_ms)
    do_sync "$T/toobig.json" "$T/toobig.out"
    ms=$(( $(now_ms) - t1 ))
    (( SYNC_RC == 1 )) || fail "desired > quota: sync exited $SYNC_RC, expected 1: $(tr '\n' ' ' < "$T/toobig.out" | cut -c1-300)"
    msg=$(grep -m1 'FAILED' "$T/toobig.out" || true)
    for n in a d h; do
        grep -q "e2e/$n:v1 ([0-9.]* [KM]iB)" <<<"$msg" || fail "desired > quota: message does not name e2e/$n:v1 with its size: $msg"
    done
    grep -qi quota <<<"$msg" || fail "desired > quota: message does not mention the quota: $msg"
    blob_list "$S1" > "$T/after.list"
    cmp -s "$T/before.list" "$T/after.list" || fail "desired > quota: the store changed: $(diff "$T/before.list" "$T/after.list" | grep '^[<>]' | head -n 3 | tr '\n' ' ')"
    [[ -z "$(ls -A "$S1/ingest")" ]] || fail "desired > quota: ingest files left: $(ls "$S1/ingest" | head -n 3 | tr '\n' ' ')"
    (( ms < 15000 )) || fail "desired > quota: sync took ${ms} ms to fail, expected at once"
    report "desired > quota: exit 1 in ${ms} ms, no download: ${msg#*FAILED }"
fi

# ================================================================== 4. GC racing pulls
if want race; then
    t0=$SECONDS
    mkimg k 2 $(( 512 * 1024 ))
    rm -f "$T/stop-race"
    python3 "$T/h.py" push-loop "$SAT1" cache/k "$T/src/k" "${DIG[k]}" "$T/stop-race" > "$T/pushloop.out" 2>&1 &
    PUSH_PID=$!
    on_exit "touch $T/stop-race; kill_wait $PUSH_PID"
    ( while [[ ! -e "$T/stop-race" ]]; do
          "$BIN" gc --config "$CFG1" >> "$T/gcloop.out" 2>&1 || echo "gc exit $?" >> "$T/gcloop.err"
          sleep 0.$(( RANDOM % 5 ))
      done ) &
    GC_LOOP=$!
    on_exit "touch $T/stop-race; kill_wait $GC_LOOP"
    d_ok=0 k_ok=0 k_404=0 end=$(( SECONDS + 15 ))
    while (( SECONDS < end )); do
        pull_ok "$SAT1" a "GC race (desired image, pull $((d_ok + 1)))"
        d_ok=$((d_ok + 1))
        if pull "$SAT1" "cache/k@${DIG[k]}" "$T/pulled-k"; then
            got=$(jq -r '.manifests[0].digest' "$T/pulled-k/index.json")
            [[ "$got" == "${DIG[k]}" ]] || fail "GC race: pull of cache/k@${DIG[k]} produced manifest $got"
            k_ok=$((k_ok + 1))
        elif grep -qiE '404|unknown|not found' <<<"$PULL_ERR" && ! grep -qiE 'digest (mismatch|did not match)|checksum|unexpected EOF|short' <<<"$PULL_ERR"; then
            k_404=$((k_404 + 1))
        else
            fail "GC race: pull of the cached image failed uncleanly: $(tail -n 2 <<<"$PULL_ERR" | tr '\n' ' ')"
        fi
    done
    touch "$T/stop-race"
    wait "$GC_LOOP" || true
    wait "$PUSH_PID" || true
    [[ ! -s "$T/gcloop.err" ]] || fail "GC race: gc failed while racing pulls: $(head -n 2 "$T/gcloop.err" | tr '\n' ' ') $(tail -n 2 "$T/gcloop.out" | tr '\n' ' ')"
    gcs=$(grep -c '^freed' "$T/gcloop.out" || true)
    (( d_ok >= 3 )) || fail "GC race: only $d_ok pulls of the desired image in 15s"
    kill -0 "$SERVE1_PID" 2>/dev/null || fail "GC race: serve died: $(tail -n 3 "$T/serve1.log" | tr '\n' ' ')"
    report "GC race: $gcs gc runs; desired pulls $d_ok/$d_ok ok; cached pulls $k_ok ok + $k_404 clean 404; pushes ok/failed: $(cat "$T/pushloop.out") ($(( SECONDS - t0 ))s)"
    "$BIN" gc --config "$CFG1" > /dev/null 2>&1 || fail "gc after the race failed"
fi

# ================================================================== 5. kill -9 during GC
if want kill; then
    t0=$SECONDS
    junk() { comm -12 <(ls "$S1/repositories/junk/blobs/_layers/sha256" 2>/dev/null | sort) <(blob_list "$S1") | wc -l; }
    kills="" mid=0 delay=150 round=0
    # Adaptive kill moment: shorter when gc finished first, longer when it had not
    # started removing yet; stop after 3 kills in the middle of a sweep (max 10 rounds).
    while (( round < 10 && mid < 3 )); do
        round=$((round + 1))
        if (( $(junk) < 1000 )); then
            H push-blobs "$SAT1" junk/blobs 3000 || fail "kill -9 during GC: pushing 3000 blobs failed"
        fi
        before=$(junk)
        "$BIN" gc --config "$CFG1" > "$T/gckill-$round.out" 2>&1 &
        gpid=$!
        d=$(( delay / 2 + RANDOM % (delay + 1) ))
        sleep "$(awk -v d="$d" 'BEGIN{printf "%.3f", d/1000}')"
        if kill -0 "$gpid" 2>/dev/null; then kill -9 "$gpid"; state=killed; else state=finished; fi
        wait "$gpid" 2>/dev/null || true
        after=$(junk)
        if [[ $state == finished ]]; then delay=$(( delay * 2 / 3 + 1 ))
        elif (( after == before )); then delay=$(( delay * 3 / 2 + 1 ))
        else mid=$((mid + 1)); fi
        kills+=" ${d}ms:$before->$after($state)"
        out=$(timeout 60 "$BIN" verify --config "$CFG1" 2>&1) \
            || fail "kill -9 during GC (round $round): verify failed: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
        stray=$(find "$S1/blobs" -regextype posix-extended -type f ! -regex '.*/sha256/[0-9a-f][0-9a-f]/[0-9a-f]{64}' | head -n 3)
        [[ -z "$stray" ]] || fail "kill -9 during GC (round $round): stray files under blobs/: $stray"
        for n in a d; do present "$S1" "$n" || fail "kill -9 during GC (round $round): desired $n lost blobs"; done
        pull_ok "$SAT1" d "kill -9 during GC (round $round)"
    done
    (( mid > 0 )) || fail "kill -9 during GC: no kill landed in the middle of a sweep in $round rounds ($kills)"
    out=$(timeout 60 "$BIN" gc --config "$CFG1" 2>&1) || fail "gc after the kills failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
    (( $(junk) == 0 )) || fail "gc after the kills left $(junk) unreferenced blobs"
    pull_ok "$SAT1" a "after kill -9 rounds"
    report "kill -9 during GC: $mid kills mid-sweep in $round rounds (delay:unreferenced before->after:$kills); verify 0 each time ($(( SECONDS - t0 ))s)"
fi

# ================================================================== 6. corruption
if want corrupt; then
    write_config "$CFG1" "$S1" "$SAT1" "$QUOTA_TEXT" a d
    L=$(biggest_layer a)
    P=$(blob_path "$S1" "$L")
    [[ -f "$P" ]] || fail "corrupt: layer $L of a is not in the store"
    python3 - "$P" <<'PY'
import sys
p = sys.argv[1]
with open(p, "r+b") as f:
    f.seek(4096); b = f.read(1); f.seek(4096); f.write(bytes([b[0] ^ 0x01]))
PY
    set +e; out=$(timeout 60 "$BIN" verify --config "$CFG1" 2>&1); rc=$?; set -e
    (( rc == 1 )) || fail "corrupt: verify exited $rc, expected 1: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
    grep -q "CORRUPT sha256:$L" <<<"$out" || fail "corrupt: verify does not report CORRUPT sha256:$L: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"
    [[ -f "$S1/quarantine/sha256-$L" ]] || fail "corrupt: sha256:$L is not in $S1/quarantine/ ($(ls "$S1/quarantine" 2>/dev/null | tr '\n' ' '))"
    [[ ! -e "$P" ]] || fail "corrupt: the corrupt blob is still under blobs/"
    code=$(curl -s -o "$T/corrupt.body" -w '%{http_code}' --max-time 10 "http://$SAT1/v2/e2e/a/blobs/sha256:$L")
    [[ "$code" == 404 ]] || fail "corrupt: GET of the quarantined blob answers $code, expected 404"
    sync_ok "$CFG1" "$T/sync-repair.out" "sync after quarantine"
    present "$S1" a || fail "corrupt: sync did not restore a (held $(held "$S1" a))"
    out=$(timeout 60 "$BIN" verify --config "$CFG1" 2>&1) || fail "corrupt: verify after the repair failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
    pull_ok "$SAT1" a "after repair"
    report "corruption: verify exit 1 ('CORRUPT sha256:${L:0:12}…'), blob in quarantine/, GET 404, sync restored it, verify exit 0"
fi
[[ -n "${SERVE1_PID:-}" ]] && kill_wait "$SERVE1_PID"

# ================================================================== 2. LRU with a touch through serve
if want lru; then
    t0=$SECONDS
    for n in l1 l2 l3 f; do mkimg "$n" 1 $(( 2 * MIB )); done
    mkimg g 1 $(( 5 * MIB ))
    S2=$T/s2 CFG2=$T/s2.json SAT2=127.0.0.1:$(free_port)
    write_config "$CFG2" "$S2" "$SAT2" "$QUOTA_TEXT"
    start_serve "$CFG2" "$T/serve2.log"
    SERVE2_PID=$SERVE_PID
    for n in l1 l2 l3 f; do
        write_config "$CFG2" "$S2" "$SAT2" "$QUOTA_TEXT" "$n"
        sync_ok "$CFG2" "$T/sync2-$n.out" "LRU: sync of $n"
        sleep 1.1
    done
    for n in l1 l2 l3; do present "$S2" "$n" || fail "LRU: cached $n is not whole before the test (held $(held "$S2" "$n"))"; done
    # touch l1 through the registry (by digest: its tag left with the desired state)
    pull "$SAT2" "e2e/l1@${DIG[l1]}" "$T/pulled-l1" || fail "LRU: pull of cached l1 by digest failed: $(tail -n 2 <<<"$PULL_ERR" | tr '\n' ' ')"
    # The registry records uses in memory and writes gc/access at most 30 s later and when
    # it exits: stop it gracefully (STORE_LIFECYCLE_WAIT_FLUSH=1: keep it and wait 32 s).
    if [[ -n "${STORE_LIFECYCLE_WAIT_FLUSH:-}" ]]; then
        sleep 32
    else
        kill_wait "$SERVE2_PID"
        kill -0 "$SERVE2_PID" 2>/dev/null && fail "LRU: serve did not stop on SIGTERM"
        start_serve "$CFG2" "$T/serve2b.log"
        SERVE2_PID=$SERVE_PID
    fi
    grep -q "sha256:$(biggest_layer l1)" "$S2/gc/access" 2>/dev/null \
        || fail "LRU: the pull of l1 through serve is not recorded in $S2/gc/access"
    write_config "$CFG2" "$S2" "$SAT2" "$QUOTA_TEXT" f g
    sync_ok "$CFG2" "$T/sync2-g.out" "LRU: sync of f,g (needs room)"
    bytes=$(used_bytes "$S2")
    (( bytes <= QUOTA )) || fail "LRU: blobs use $bytes bytes after the sync, over the quota of $QUOTA"
    state="l1 $(held "$S2" l1), l2 $(held "$S2" l2), l3 $(held "$S2" l3)"
    h=$(held "$S2" l2)
    [[ "${h%/*}" != "${h#*/}" ]] || fail "LRU: l2 (least recently used) was not evicted: $state"
    present "$S2" l1 || fail "LRU: l1, pulled through serve after l2/l3 were cached, was evicted: $state"
    present "$S2" l3 || fail "LRU: l3 (more recent than l2) was evicted: $state"
    for n in f g; do pull_ok "$SAT2" "$n" "LRU"; done
    kill_wait "$SERVE2_PID"
    report "LRU: touched l1 kept, least recently used l2 evicted ($state; $(mib "$bytes") of $QUOTA_TEXT) ($(( SECONDS - t0 ))s)"
fi

# ================================================================== 7. ENOSPC on a small tmpfs
if want enospc; then
    t0=$SECONDS
    [[ $EUID -eq 0 ]] || fail "ENOSPC: needs root to mount a tmpfs"
    mkimg p1 1 $(( 2 * MIB ))
    mkimg p2 1 $(( 7 * MIB ))
    mkimg p3 1 $(( 7 * MIB ))
    S4=$T/tmpfs
    mkdir -p "$S4"
    mount -t tmpfs -o size=8m tmpfs "$S4" || fail "ENOSPC: cannot mount a tmpfs on $S4"
    on_exit "umount -l $S4"
    CFG4=$T/s4.json SAT4=127.0.0.1:$(free_port)
    write_config "$CFG4" "$S4" "$SAT4" 64MiB p1
    start_serve "$CFG4" "$T/serve4.log"
    SERVE4_PID=$SERVE_PID
    sync_ok "$CFG4" "$T/sync4-1.out" "ENOSPC: first sync (p1)"
    write_config "$CFG4" "$S4" "$SAT4" 64MiB p1 p2
    do_sync "$CFG4" "$T/sync4-2.out"
    (( SYNC_RC == 1 )) || fail "ENOSPC: sync of an image larger than the free space exited $SYNC_RC, expected 1: $(tail -n 3 "$T/sync4-2.out" | tr '\n' ' ')"
    emsg=$(grep -m1 'FAILED e2e/p2' "$T/sync4-2.out" || true)
    grep -qiE 'no space|disk is full|ENOSPC|not enough (room|space)' <<<"$emsg" \
        || fail "ENOSPC: sync error does not say the disk is full: $(tail -n 3 "$T/sync4-2.out" | tr '\n' ' ' | cut -c1-300)"
    bad=$(H hashcheck "$S4/blobs") || fail "ENOSPC: blobs that do not hash to their name after the failed sync: $bad"
    present "$S4" p1 || fail "ENOSPC: p1 lost blobs"
    pull_ok "$SAT4" p1 "ENOSPC: after the failed sync"
    # a push into the full store
    set +e
    out=$(e2e_skopeo copy -q --dest-tls-verify=false "oci:$T/src/p3:v1" "docker://$SAT4/push/p3:v1" 2>&1); rc=$?
    set -e
    (( rc != 0 )) || fail "ENOSPC: push of a 7 MiB image into a full 8 MiB store succeeded"
    L=$(biggest_layer p3)
    code=$(curl -s -o "$T/push.body" -w '%{http_code}' --max-time 30 -X POST -H 'Content-Type: application/octet-stream' \
        --data-binary "@$T/src/p3/blobs/sha256/$L" "http://$SAT4/v2/push/p3/blobs/uploads/?digest=sha256:$L" || true)
    [[ "$code" == 5* ]] || fail "ENOSPC: monolithic push into a full store answered '$code', expected 507/5xx"
    jq -e '.errors[0].code' "$T/push.body" > /dev/null 2>&1 || fail "ENOSPC: the $code answer is not OCI error JSON: $(head -c 200 "$T/push.body")"
    kill -0 "$SERVE4_PID" 2>/dev/null || fail "ENOSPC: serve died: $(tail -n 3 "$T/serve4.log" | tr '\n' ' ')"
    check_registry "$SAT4"
    bad=$(H hashcheck "$S4/blobs") || fail "ENOSPC: blobs that do not hash to their name after the pushes: $bad"
    pull_ok "$SAT4" p1 "ENOSPC: after the pushes"
    [[ ! -e "$(blob_path "$S4" "$L")" ]] || fail "ENOSPC: the layer of the failed push is visible under blobs/"
    kill_wait "$SERVE4_PID"
    report "ENOSPC: sync exit 1 '${emsg#*FAILED }'; push -> skopeo: '$(grep -oiE '(507|insufficient storage|disk is full|no space)[^"]{0,60}' <<<"$out" | head -n 1)', curl: $code $(jq -c '.errors[0]' "$T/push.body" | cut -c1-120); server up ($(( SECONDS - t0 ))s)"
fi

# ================================================================== 8. GC time, 10,000 blobs
if want gctime; then
    t0=$SECONDS
    [[ -n "${DIG[a]:-}" ]] || for n in a d; do mkimg "$n" 2 $(( 1792 * 1024 )); done
    S5=$T/s5 CFG5=$T/s5.json
    write_config "$CFG5" "$S5" "127.0.0.1:1" 1GiB a d
    sync_ok "$CFG5" "$T/sync5.out" "GC time: sync of a,d"
    live=$(blob_list "$S5" | wc -l)
    median() { sort -n | sed -n 2p; }
    H gen-blobs "$S5" 10000
    n=$(blob_list "$S5" | wc -l)
    (( n == live + 10000 )) || fail "GC time: store holds $n blobs, expected $((live + 10000))"
    : > "$T/dry.ms"
    for i in 1 2 3; do
        t1=$(now_ms)
        out=$(timeout 120 "$BIN" gc --dry-run --config "$CFG5" 2>&1) || fail "gc --dry-run failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
        echo $(( $(now_ms) - t1 )) >> "$T/dry.ms"
        grep -q 'would free .* in 10000 blob' <<<"$out" || fail "gc --dry-run does not plan 10000 blobs: $(tail -n 1 <<<"$out")"
    done
    : > "$T/gc.ms"
    for i in 1 2 3; do
        (( i == 1 )) || H gen-blobs "$S5" 10000
        t1=$(now_ms)
        out=$(timeout 120 "$BIN" gc --config "$CFG5" 2>&1) || fail "gc failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
        echo $(( $(now_ms) - t1 )) >> "$T/gc.ms"
        n=$(blob_list "$S5" | wc -l)
        (( n == live )) || fail "GC time: $n blobs left after gc, expected the $live live ones"
    done
    for n in a d; do present "$S5" "$n" || fail "GC time: gc removed blobs of tagged $n"; done
    report "GC time, 10000 unreferenced + $live live blobs: gc --dry-run median $(median < "$T/dry.ms") ms ($(tr '\n' ' ' < "$T/dry.ms")), gc median $(median < "$T/gc.ms") ms ($(tr '\n' ' ' < "$T/gc.ms")) ($(( SECONDS - t0 ))s)"
fi

[[ -f "${TABLE:-/nonexistent}" ]] && { echo "disk use per step (quota $QUOTA_TEXT):"; cat "$TABLE"; }
cat "$REPORT"
echo "PASS store_lifecycle"

#!/usr/bin/env bash
# crash_push.sh SATELLITE_LITE_BIN
# Crash test: kill -9 satellite-lite repeatedly during pushes, restart it on
# the same store, and show that every visible blob matches its digest and
# that the pushes complete afterwards.
#
# Each round (ROUNDS, default 10) adds 2 random 8-64 MiB blobs pushed in
# chunks (POST, PATCH with Content-Range, PUT; interrupted sessions are
# resumed after the restart from the offset GET <upload> reports), 1 random
# blob pushed monolithically (POST ?digest=, body streamed) and one
# mkimage.py image pushed with skopeo; all pending pushes run concurrently
# and the server is killed with SIGKILL after a random 0.05-1.5 s.
# After every restart:
#   - every file under STORE/blobs/sha256/xx/HEX hashes to HEX (sha512 too),
#     xx is HEX's prefix;
#   - every file of the store is where the layout puts it (blobs, ingest,
#     uploads/<id>/{data,info}, repositories/<name>/_layers|_manifests|
#     _referrers); leftover ingest/put-* (recover() removes them) is an error;
#   - every repository link has its blob, every tag its manifest, every image
#     manifest its config and layers;
#   - GET /v2/ is 200 and every blob already reported pushed is still served.
# Finally all pending pushes complete without kills; every blob is pulled
# back and hashed; every image skopeo pushed is pulled back (digest equal)
# and a fresh image round-trips byte-identical.
# curl's "Expect: 100-continue" is turned off (-H 'Expect:'): satellite-lite
# does not answer it, so curl would stall 1 s per request (see bench/README.md).
# Env: ROUNDS (10), CRASH_SEED (for $RANDOM), E2E_KEEP=1 keeps the temp dir.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=${1:-}
[[ -n "$BIN" && -x "$BIN" ]] || fail "usage: $0 PATH/TO/satellite-lite (got '${BIN}', not executable)"
ROUNDS=${ROUNDS:-10}
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || fail "ROUNDS must be a positive number, got '$ROUNDS'"
[[ -n "${CRASH_SEED:-}" ]] && RANDOM=$CRASH_SEED
T=$E2E_TMP
STORE="$T/store"
PORT=$(free_port)
ADDR="127.0.0.1:$PORT"
URL="http://$ADDR"
REPO=crash/blobs
MiB=$((1024 * 1024))
printf '{"storage":{"path":"%s"},"registry":{"listen":"%s"},"profile":"generic-amd64"}\n' "$STORE" "$ADDR" > "$T/config.json"
"$BIN" config check --config "$T/config.json" > /dev/null 2>&1 || fail "config check rejected $T/config.json"

# ------------------------------------------------------------------ server
SERVER_PID=""
start_server() {
    local i
    # the port was just freed by a SIGKILLed process: retry the bind briefly
    for (( i=0; i<20; i++ )); do
        "$BIN" serve --config "$T/config.json" >> "$T/server.log" 2>&1 &
        SERVER_PID=$!
        local deadline=$(( SECONDS + 20 ))
        while (( SECONDS < deadline )); do
            curl -s -o /dev/null --max-time 2 "$URL/v2/" && return 0
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$SERVER_PID" 2>/dev/null && fail "server (pid $SERVER_PID) did not answer $URL/v2/ within 20 s"
        wait "$SERVER_PID" 2>/dev/null || true
        sleep 0.25
    done
    fail "server would not start: $(tail -n 3 "$T/server.log" | tr '\n' ' ')"
}
crash_server() {
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
on_exit '[[ -n "$SERVER_PID" ]] && kill_wait "$SERVER_PID" 5'

# ------------------------------------------------------------------ pushers
# State of blob i: $T/b/i/{data,digest,mode,chunk,loc,result}. result is
# "done" once the push returned 201 and HEAD shows the blob; "err ..." records
# an HTTP answer that is wrong even for a server about to die.
mkdir -p "$T/b" "$T/img"
NBLOBS=0
new_blob() {  # MODE(chunked|mono)
    local i=$NBLOBS d="$T/b/$NBLOBS" mib
    NBLOBS=$((NBLOBS + 1))
    mkdir -p "$d"
    mib=$(( 8 + RANDOM % 57 ))
    head -c $(( mib * MiB - RANDOM )) /dev/urandom > "$d/data"
    echo "sha256:$(sha256sum "$d/data" | cut -d' ' -f1)" > "$d/digest"
    echo "$1" > "$d/mode"
    local sizes=(1 2 4 8 16)
    echo $(( sizes[RANDOM % 5] * MiB )) > "$d/chunk"
    : > "$d/result"
}

hdr() { tr -d '\r' < "$1" | awk -v h="$(tr 'A-Z' 'a-z' <<<"$2"):" 'tolower($1)==h{print $2}' | tail -n 1; }

# push_chunked DIR: resumable chunked push; returns 0 done, 1 server gone, 2 protocol error
push_chunked() {
    local d=$1 size digest chunk loc code off len end range
    size=$(stat -c %s "$d/data"); digest=$(cat "$d/digest"); chunk=$(cat "$d/chunk")
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -I "$URL/v2/$REPO/blobs/$digest") || return 1
    [[ $code == 200 ]] && return 0   # committed before the last kill
    loc=$(cat "$d/loc" 2>/dev/null || true)
    off=""
    if [[ -n "$loc" ]]; then
        code=$(curl -s -D "$d/h" -o /dev/null -w '%{http_code}' --max-time 10 "$URL$loc") || return 1
        range=$(hdr "$d/h" Range)
        if [[ $code == 204 && "$range" =~ ^0-([0-9]+)$ && "$range" != 0-0 ]]; then
            off=$(( BASH_REMATCH[1] + 1 ))
            echo "resume $off/$size" >> "$d/log"
        elif [[ $code == 204 || $code == 404 ]]; then
            echo "restart (status $code range '$range')" >> "$d/log"   # 0-0 is ambiguous: start over
        else
            echo "err GET upload status $code" > "$d/result"; return 2
        fi
    fi
    if [[ -z "$off" ]]; then
        code=$(curl -s -D "$d/h" -o /dev/null -w '%{http_code}' --max-time 10 -X POST "$URL/v2/$REPO/blobs/uploads/") || return 1
        [[ $code == 202 ]] || { echo "err POST uploads $code" > "$d/result"; return 2; }
        loc=$(hdr "$d/h" Location); loc=${loc#"$URL"}
        [[ "$loc" == /v2/* ]] || { echo "err POST Location '$loc'" > "$d/result"; return 2; }
        echo "$loc" > "$d/loc"; off=0
    fi
    while (( off < size )); do
        len=$(( size - off < chunk ? size - off : chunk )); end=$(( off + len - 1 ))
        code=$(dd if="$d/data" iflag=skip_bytes,count_bytes skip="$off" count="$len" bs=1M status=none \
            | curl -s -D "$d/h" -o /dev/null -w '%{http_code}' --max-time 60 -X PATCH \
                -H 'Expect:' -H 'Content-Type: application/octet-stream' -H "Content-Range: $off-$end" \
                --data-binary @- "$URL$loc") || return 1
        [[ $code == 202 ]] || { echo "err PATCH $off-$end: $code" > "$d/result"; return 2; }
        range=$(hdr "$d/h" Range)
        [[ "$range" == "0-$end" ]] || { echo "err PATCH $off-$end: Range '$range'" > "$d/result"; return 2; }
        off=$(( end + 1 ))
    done
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X PUT "$URL$loc?digest=$digest") || return 1
    [[ $code == 201 ]] || { echo "err PUT ?digest: $code" > "$d/result"; return 2; }
    return 0
}

# push_mono DIR: POST ?digest= with the whole body streamed from the file
push_mono() {
    local d=$1 digest code
    digest=$(cat "$d/digest")
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -I "$URL/v2/$REPO/blobs/$digest") || return 1
    [[ $code == 200 ]] && return 0
    # (not -T: curl would append the file name to a URL ending in "/")
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 120 -X POST --data-binary "@$d/data" \
        -H 'Expect:' -H 'Content-Type: application/octet-stream' "$URL/v2/$REPO/blobs/uploads/?digest=$digest") || return 1
    [[ $code == 201 ]] || { [[ $code == 000 ]] && return 1; echo "err POST ?digest: $code" > "$d/result"; return 2; }
}

push_blob() {  # DIR
    local d=$1 rc=0 code
    if [[ $(cat "$d/mode") == chunked ]]; then push_chunked "$d" || rc=$?; else push_mono "$d" || rc=$?; fi
    if (( rc == 0 )); then
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -I "$URL/v2/$REPO/blobs/$(cat "$d/digest")") || return 1
        if [[ $code == 200 ]]; then echo "done" > "$d/result"; else echo "err HEAD after push: $code" > "$d/result"; fi
    fi
}

# Images: $T/img/N/{layout/,digest,result}
NIMGS=0
new_image() {
    local d="$T/img/$NIMGS"
    mkdir -p "$d"
    python3 "$MKIMAGE" single "oci:$d/layout:v1" --layers 2 --size $(( (1 + RANDOM % 4) * MiB )) > "$d/digest" \
        || fail "mkimage.py failed"
    : > "$d/result"
    NIMGS=$((NIMGS + 1))
}
push_image() {  # N
    local d="$T/img/$1"
    if E2E_CMD_TIMEOUT=${SKOPEO_TIMEOUT:-25} e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false --digestfile "$d/pushed" \
        "oci:$d/layout:v1" "docker://$ADDR/crash/img$1:v1" > "$d/log" 2>&1; then
        if [[ "$(cat "$d/pushed")" == "$(cat "$d/digest")" ]]; then echo "done" > "$d/result"
        else echo "err skopeo pushed $(cat "$d/pushed"), expected $(cat "$d/digest")" > "$d/result"; fi
    fi
}

# launch_pending: start every unfinished push in the background; PIDS gets their pids
PIDS=()
launch_pending() {
    local i
    PIDS=()
    for (( i=0; i<NBLOBS; i++ )); do
        [[ -z "$(cat "$T/b/$i/result")" ]] || continue
        push_blob "$T/b/$i" & PIDS+=($!)
    done
    for (( i=0; i<NIMGS; i++ )); do
        [[ -z "$(cat "$T/img/$i/result")" ]] || continue
        push_image "$i" & PIDS+=($!)
    done
}
wait_pushers() {  # SECONDS: bound, then kill stragglers
    local t=$1 p deadline=$(( SECONDS + $1 ))
    for p in "${PIDS[@]}"; do
        while kill -0 "$p" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.1; done
        if kill -0 "$p" 2>/dev/null; then   # its children (curl, timeout->skopeo) first, by parent pid
            pkill -TERM -P "$p" 2>/dev/null || true; sleep 0.5
            pkill -KILL -P "$p" 2>/dev/null || true; kill -KILL "$p" 2>/dev/null || true
        fi
        wait "$p" 2>/dev/null || true
    done
    (( SECONDS < deadline )) || log "pushers still running after ${t}s were killed"
}
check_results() {
    local f
    for f in "$T"/b/*/result "$T"/img/*/result; do
        [[ -e "$f" ]] || continue
        [[ "$(cat "$f")" != err* ]] || fail "$(dirname "${f#"$T"/}"): $(cat "$f")"
    done
}
count_done() { grep -lx "done" "$T"/b/*/result 2>/dev/null | wc -l; }

# ------------------------------------------------------------------ store checks
cat > "$T/check_store.py" <<'PY'
import hashlib, json, os, re, stat, sys
store, cache_path = sys.argv[1], sys.argv[2]
try:
    cache = json.load(open(cache_path))
except (OSError, ValueError):
    cache = {}
HEX = {"sha256": 64, "sha512": 128}
NAME = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
TMP = r"\.tmp-[^/]+"
errors, temps = [], []
counts = dict(blobs=0, hashed=0, uploads=0, links=0, manifests=0, tags=0, referrers=0)
links, revisions, tags = [], [], []
new_cache = {}
for dirpath, dirnames, filenames in os.walk(store):
    for fn in filenames:
        full = os.path.join(dirpath, fn)
        rel = os.path.relpath(full, store)
        st = os.lstat(full)
        if not stat.S_ISREG(st.st_mode):
            errors.append(f"{rel}: not a regular file"); continue
        parts = rel.split("/")
        if parts[0] == "blobs":
            if len(parts) != 4 or parts[1] not in HEX or not re.fullmatch(r"[0-9a-f]{%d}" % HEX[parts[1]], parts[3]) \
                    or parts[2] != parts[3][:2]:
                errors.append(f"{rel}: not blobs/<alg>/<xx>/<hex>"); continue
            counts["blobs"] += 1
            key = f"{rel}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}"
            if key in cache:
                new_cache[key] = 1; continue
            h = hashlib.new(parts[1])
            with open(full, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            counts["hashed"] += 1
            if h.hexdigest() != parts[3]:
                errors.append(f"{rel}: content hashes to {parts[1]}:{h.hexdigest()} ({st.st_size} bytes)")
            else:
                new_cache[key] = 1
        elif parts[0] == "ingest":
            errors.append(f"{rel}: left in ingest/ after restart (recover() should remove put-*; no downloads run here)")
        elif parts[0] == "uploads":
            if len(parts) == 3 and re.fullmatch(r"[0-9a-f]{32}", parts[1]) and parts[2] in ("data", "info"):
                counts["uploads"] += parts[2] == "data"
            elif len(parts) == 3 and re.fullmatch(r"[0-9a-f]{32}", parts[1]) and re.fullmatch(TMP, parts[2]):
                temps.append(rel)
            else:
                errors.append(f"{rel}: not uploads/<id>/(data|info)")
        elif parts[0] == "repositories":
            r = "/".join(parts[1:])
            if m := re.fullmatch(rf"({NAME})/_layers/(sha256|sha512)/([0-9a-f]+)", r):
                links.append((rel, m.group(1), m.group(2), m.group(3))); counts["links"] += 1
            elif m := re.fullmatch(rf"({NAME})/_manifests/revisions/(sha256|sha512)/([0-9a-f]+)", r):
                revisions.append((rel, m.group(1), m.group(2), m.group(3))); counts["manifests"] += 1
            elif m := re.fullmatch(rf"({NAME})/_manifests/tags/([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})", r):
                tags.append((rel, m.group(1), m.group(2))); counts["tags"] += 1
            elif re.fullmatch(rf"({NAME})/_referrers/(sha256|sha512)/[0-9a-f]+/(sha256|sha512)-[0-9a-f]+", r):
                counts["referrers"] += 1
            elif re.fullmatch(rf"({NAME})/_(?:manifests/revisions/sha256|manifests/revisions/sha512|manifests/tags|layers/sha256|layers/sha512|referrers/sha256/[0-9a-f]+)/{TMP}", r):
                temps.append(rel)
            else:
                errors.append(f"{rel}: not a repository link, revision, tag or referrer")
        elif parts[0] == "sync" and len(parts) == 2 and parts[1] in ("lock", "managed.lock", "managed.json", "status.json", "wan.json"):
            pass  # a push takes managed.json's cross-process lock to check desired tags
        elif parts[0] == "gc" and len(parts) == 2 and (parts[1] in ("access", "reads", "changes") or re.fullmatch(TMP, parts[1])):
            # The registry records blob uses in memory and writes gc/access (atomically, via a
            # temp file) at most 30 s later: a run slower than that has one.
            if re.fullmatch(TMP, parts[1]):
                temps.append(rel)
        else:
            errors.append(f"{rel}: outside blobs/, ingest/, uploads/, repositories/, gc/, sync/")
def blob(alg, hexd):
    return os.path.join(store, "blobs", alg, hexd[:2], hexd)
for rel, name, alg, hexd in links:
    if not os.path.isfile(blob(alg, hexd)):
        errors.append(f"{rel}: linked blob {alg}:{hexd} is not in the store")
revset = set()
for rel, name, alg, hexd in revisions:
    revset.add((name, f"{alg}:{hexd}"))
    p = blob(alg, hexd)
    if not os.path.isfile(p):
        errors.append(f"{rel}: manifest blob is not in the store"); continue
    try:
        m = json.load(open(p))
    except ValueError:
        errors.append(f"{rel}: manifest blob is not JSON"); continue
    if "manifests" in m:
        continue
    for d in [m.get("config")] + m.get("layers", []):
        if not d: continue
        a, _, h = d["digest"].partition(":")
        if not os.path.isfile(os.path.join(store, "repositories", name, "_layers", a, h)) or not os.path.isfile(blob(a, h)):
            errors.append(f"{rel}: references {d['digest']}, which is not linked in {name} or not stored")
for rel, name, tag in tags:
    target = open(os.path.join(store, rel)).read().strip()
    if (name, target) not in revset:
        errors.append(f"{rel}: tag points to {target!r}, not a manifest of {name}")
json.dump(new_cache, open(cache_path, "w"))
print(" ".join(f"{k}={v}" for k, v in counts.items()) + f" stray_tmp={len(temps)}")
if temps:
    print("stray temp files: " + " ".join(temps[:5]), file=sys.stderr)
for e in errors[:10]:
    print("VIOLATION " + e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY

STRAY_TMP=0
check_store() {  # WHEN
    local out code d
    out=$(python3 "$T/check_store.py" "$STORE" "$T/hash-cache.json" 2> "$T/check.err") \
        || fail "after $1: store check failed: $(grep VIOLATION "$T/check.err" | head -n 3 | tr '\n' ' ')"
    if [[ -s "$T/check.err" ]]; then
        log "after $1: $(tr '\n' ' ' < "$T/check.err")"
        STRAY_TMP=$(( STRAY_TMP + 1 ))
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/v2/") || true
    [[ $code == 200 ]] || fail "after $1: GET /v2/ returned '$code', expected 200"
    for d in "$T"/b/*/; do
        [[ -d "$d" && "$(cat "$d/result")" == "done" ]] || continue
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -I "$URL/v2/$REPO/blobs/$(cat "$d/digest")") || true
        [[ $code == 200 ]] || fail "after $1: blob $(cat "$d/digest") was pushed (201) before, HEAD now returns '$code'"
    done
    LAST_CHECK=$out
}

# ------------------------------------------------------------------ rounds
KILLS=0
start_server
check_store "first start"
for (( r=1; r<=ROUNDS; r++ )); do
    new_blob chunked; new_blob chunked; new_blob mono; new_image
    launch_pending
    ms=$(( 50 + RANDOM % 1451 ))
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    crash_server; KILLS=$((KILLS + 1))
    wait_pushers 30
    check_results
    start_server
    check_store "kill $r (at ${ms} ms)"
    log "round $r: killed at ${ms} ms; blobs pushed $(count_done)/$NBLOBS; store: $LAST_CHECK"
done

# ------------------------------------------------------------------ completion
log "completing every pending push without kills"
SKOPEO_TIMEOUT=120
launch_pending
wait_pushers 300
check_results
for (( i=0; i<NBLOBS; i++ )); do
    [[ "$(cat "$T/b/$i/result")" == "done" ]] || fail "blob $i ($(cat "$T/b/$i/mode")) did not complete after the crashes: $(tail -n 2 "$T/b/$i/log" 2>/dev/null | tr '\n' ' ')"
done
for (( i=0; i<NIMGS; i++ )); do
    [[ "$(cat "$T/img/$i/result")" == "done" ]] || fail "image $i did not push after the crashes: $(tail -n 2 "$T/img/$i/log" | tr '\n' ' ')"
done
check_store "completion"

VERIFIED=0
for (( i=0; i<NBLOBS; i++ )); do
    want=$(cat "$T/b/$i/digest")
    got=$(curl -sf --max-time 60 "$URL/v2/$REPO/blobs/$want" | sha256sum | cut -d' ' -f1)
    [[ "sha256:$got" == "$want" ]] || fail "pulled blob $want hashes to sha256:$got"
    VERIFIED=$((VERIFIED + 1))
done
for (( i=0; i<NIMGS; i++ )); do
    run_or_fail "skopeo pull of crash/img$i:v1" e2e_skopeo copy -q --preserve-digests --src-tls-verify=false \
        --digestfile "$T/img/$i/pulled" "docker://$ADDR/crash/img$i:v1" "oci:$T/img/$i/back:v1"
    [[ "$(cat "$T/img/$i/pulled")" == "$(cat "$T/img/$i/digest")" ]] \
        || fail "crash/img$i:v1 pulled as $(cat "$T/img/$i/pulled"), pushed $(cat "$T/img/$i/digest")"
    for f in "$T/img/$i/back/blobs/sha256/"*; do
        cmp -s "$f" "$T/img/$i/layout/blobs/sha256/$(basename "$f")" || fail "crash/img$i blob $(basename "$f") differs after the round trip"
        VERIFIED=$((VERIFIED + 1))
    done
done
# a fresh image after all the crashes
python3 "$MKIMAGE" single "oci:$T/fresh:v1" --layers 3 --size $((2 * MiB)) > "$T/fresh.digest" || fail "mkimage.py failed"
run_or_fail "skopeo push of crash/fresh:v1" e2e_skopeo copy -q --preserve-digests --dest-tls-verify=false \
    "oci:$T/fresh:v1" "docker://$ADDR/crash/fresh:v1"
run_or_fail "skopeo pull of crash/fresh:v1" e2e_skopeo copy -q --preserve-digests --src-tls-verify=false \
    --digestfile "$T/fresh.pulled" "docker://$ADDR/crash/fresh:v1" "oci:$T/freshback:v1"
[[ "$(cat "$T/fresh.pulled")" == "$(cat "$T/fresh.digest")" ]] || fail "crash/fresh:v1 pulled as $(cat "$T/fresh.pulled"), pushed $(cat "$T/fresh.digest")"
diff <(cd "$T/fresh/blobs/sha256" && sha256sum ./*) <(cd "$T/freshback/blobs/sha256" && sha256sum ./*) > /dev/null \
    || fail "crash/fresh:v1 blobs differ after the round trip"
check_store "final"
kill -0 "$SERVER_PID" 2>/dev/null || fail "server died at the end"
resumed=$(cat "$T"/b/*/log 2>/dev/null | grep -c '^resume' || true)
restarted=$(cat "$T"/b/*/log 2>/dev/null | grep -c '^restart' || true)
echo "PASS crash_push: $ROUNDS rounds, $KILLS kill -9, $NBLOBS blobs + $NIMGS images pushed through the crashes" \
     "($resumed chunked sessions resumed after a restart, $restarted restarted), $VERIFIED blobs verified by pull;" \
     "store: $LAST_CHECK; rounds with stray temp files: $STRAY_TMP"

#!/usr/bin/env bash
# sync_harbor_state.sh BIN
# Desired state from Harbor Satellite state artifacts (built with mkstate.py,
# pushed with skopeo to a docker-registry with Basic auth):
#   satellite/satellite-state/edge-01/state:latest  {"states":[g1, g2], "config": ...}
#   satellite/group-state/g1/state:latest           (OCI media types)
#   satellite/group-state/g2/state:latest           (Docker schema2 media types,
#                                                    repositories with the registry host)
# Config: "state": {"artifact": "satellite/satellite-state/edge-01/state:latest"}.
# Round 1: g1 wants proj/app (index, digest given), proj/web (tag only), and
#   proj/pinned:v1 pinned to its OLD digest (upstream's v1 has moved on);
#   g2 wants proj/app too and lists proj/old with "deleted": true.
#   -> app (arm64 only), web, pinned@old present; old absent (no blob of it).
# Round 2: g1 drops proj/app and marks proj/web deleted -> app stays (g2
#   still wants it), web's tag is removed, pinned unchanged.
# Round 3: g2 marks proj/app deleted -> app's tag is removed.
# Round 4: a group state that is not valid JSON -> sync exits 1, nothing removed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
for t in docker-registry skopeo jq python3 curl htpasswd; do
    command -v "$t" >/dev/null || fail "$t is not installed"
done
T=$E2E_TMP
MKSTATE="$E2E_DIR/mkstate.py"
USER_NAME=robot-edge-01
PASSWORD=state-pass
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}

# ---------------------------------------------------------------- upstream (Basic auth)
mkdir -p "$T/up/storage"
htpasswd -B -b -c "$T/up/htpasswd" "$USER_NAME" "$PASSWORD" >/dev/null 2>&1 || fail "htpasswd -B failed"
UP_PORT=$(free_port)
UP=127.0.0.1:$UP_PORT
cat > "$T/up/config.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $T/up/storage
  delete:
    enabled: true
http:
  addr: $UP
auth:
  htpasswd:
    realm: e2e-basic
    path: $T/up/htpasswd
YAML
unset_env=()
for v in $(compgen -e | grep '^REGISTRY_' || true); do unset_env+=(-u "$v"); done
env "${unset_env[@]}" docker-registry serve "$T/up/config.yml" >"$T/up/registry.log" 2>&1 &
UP_PID=$!
on_exit "kill_wait $UP_PID"
WAIT_HTTP_PID=$UP_PID WAIT_HTTP_LOG="$T/up/registry.log" wait_http "http://$UP/v2/" 20

push() { # SRC REPO:TAG
    local out
    out=$(e2e_skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
        --dest-creds "$USER_NAME:$PASSWORD" "$1" "docker://$UP/$2" 2>&1) \
        || fail "push of $1 to $2 failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
}
# push_state REPO JSON [--docker]
push_state() {
    local repo=$1 json=$2 dir
    dir=$T/state-$(tr '/' '_' <<<"$repo")-$RANDOM
    local ref="oci:$dir:latest"
    [[ "${3:-}" == --docker ]] && ref="dir:$dir"
    printf '%s\n' "$json" | python3 "$MKSTATE" ${3:+"$3"} --json - "$ref" >/dev/null \
        || fail "mkstate.py failed for $repo"
    push "$ref" "$repo:latest"
}
# art REPO TAG DIGEST [DELETED]: one group-state artifact entry
art() {
    jq -cn --arg r "$1" --arg t "$2" --arg d "$3" --argjson del "${4:-false}" \
        '{repository:$r, tag:[$t], digest:$d, type:"IMAGE", deleted:$del}'
}
group() { # NAME ENTRY...
    local name=$1; shift
    printf '%s\n' "$@" | jq -cs --arg g "$name" --arg reg "http://$UP" '{group:$g, registry:$reg, artifacts:.}'
}

# ---------------------------------------------------------------- images
APP=$(python3 "$MKIMAGE" index "oci:$T/img/app:v1" --layers 2 --size 16384) || fail "mkimage failed"
WEB=$(python3 "$MKIMAGE" single --platform linux/arm64/v8 "oci:$T/img/web:v1" --layers 1 --size 16384) || fail "mkimage failed"
OLD=$(python3 "$MKIMAGE" single --platform linux/arm64/v8 "oci:$T/img/old:v1" --layers 1 --size 16384) || fail "mkimage failed"
P1=$(python3 "$MKIMAGE" single --platform linux/arm64/v8 "oci:$T/img/p1:v1" --layers 1 --size 16384) || fail "mkimage failed"
P2=$(python3 "$MKIMAGE" single --platform linux/arm64/v8 "oci:$T/img/p2:v1" --layers 1 --size 16384) || fail "mkimage failed"
push "oci:$T/img/app:v1" proj/app:v1
push "oci:$T/img/web:v1" proj/web:v1
push "oci:$T/img/old:v1" proj/old:v1
push "oci:$T/img/p1:v1" proj/pinned:v1
push "oci:$T/img/p2:v1" proj/pinned:v1     # upstream's v1 moves on to P2
APP_ARM=$(jq -r '.manifests[] | select(.platform.architecture=="arm64") | .digest' "$T/img/app/blobs/sha256/${APP#sha256:}")

# ---------------------------------------------------------------- satellite-lite config
STORE=$T/store
printf '%s\n' "$PASSWORD" > "$T/password"
jq -n --arg store "$STORE" --arg listen "127.0.0.1:$(free_port)" --arg url "http://$UP" \
    --arg u "$USER_NAME" --arg pw "$T/password" \
    '{profile:"rpi4-arm64", storage:{path:$store}, registry:{listen:$listen},
      upstream:{url:$url, username:$u, passwordFile:$pw},
      state:{artifact:"satellite/satellite-state/edge-01/state:latest", interval:"1h"},
      sync:{timeout:"60s"}}' > "$T/config.json"

push_state satellite/satellite-state/edge-01/state \
    "$(jq -cn --arg up "$UP" '{states:["satellite/group-state/g1/state:latest", ($up + "/satellite/group-state/g2/state:latest")],
                              config:"satellite/config-state/edge-01/state:latest"}')"
push_state satellite/config-state/edge-01/state '{"state_replication_interval":"@every 00h00m10s"}'

do_sync() { # WHAT EXPECTED_RC
    set +e
    timeout --kill-after=5 100 "$BIN" sync --config "$T/config.json" >"$T/sync.out" 2>&1
    local rc=$?
    set -e
    cp "$T/sync.out" "$T/sync-$ROUND.out"
    (( rc != 124 && rc != 137 )) || fail "round $ROUND: sync did not finish within 100s: $(tail -n 3 "$T/sync.out" | tr '\n' ' ')"
    (( rc == $2 )) || fail "round $ROUND ($1): sync exited $rc, expected $2: $(grep -v '^\s*$' "$T/sync.out" | tail -n 4 | tr '\n' ' ' | cut -c1-400)"
}
tag_of() { cat "$STORE/repositories/$1/_manifests/tags/$2" 2>/dev/null | tr -d ' \n' || true; }
has_blob() { [[ -e "$STORE/blobs/sha256/${1:7:2}/${1#sha256:}" ]]; }
expect_tag() { # REPO TAG DIGEST
    local got
    got=$(tag_of "$1" "$2")
    [[ "$got" == "$3" ]] || fail "round $ROUND: $1:$2 is '${got:-absent}', expected $3"
}
expect_no_tag() {
    [[ ! -e "$STORE/repositories/$1/_manifests/tags/$2" ]] || fail "round $ROUND: $1:$2 is still tagged ($(tag_of "$1" "$2")), expected removed"
}
expect_image_blobs() { # LAYOUT MANIFEST_DIGEST
    local m=$1/blobs/sha256/${2#sha256:} d
    for d in "$2" $(jq -r '.config.digest, .layers[].digest' "$m"); do
        has_blob "$d" || fail "round $ROUND: blob $d of manifest $2 is not in the store"
    done
}

# ---------------------------------------------------------------- round 1
ROUND=1
push_state satellite/group-state/g1/state "$(group g1 \
    "$(art proj/app v1 "$APP")" \
    "$(art proj/web v1 "")" \
    "$(art proj/pinned v1 "$P1")")"
push_state satellite/group-state/g2/state "$(group g2 \
    "$(art "$UP/proj/app" v1 "$APP")" \
    "$(art "$UP/proj/old" v1 "$OLD" true)")" --docker
do_sync "two groups" 0
expect_tag proj/app v1 "$APP"
expect_image_blobs "$T/img/app" "$APP_ARM"
for m in $(jq -r '.manifests[] | select(.platform.architecture!="arm64") | .digest' "$T/img/app/blobs/sha256/${APP#sha256:}"); do
    ! has_blob "$m" || fail "round 1: non-arm64 manifest $m of proj/app was downloaded"
done
expect_tag proj/web v1 "$WEB"
expect_image_blobs "$T/img/web" "$WEB"
expect_tag proj/pinned v1 "$P1"
expect_image_blobs "$T/img/p1" "$P1"
has_blob "$P2" && fail "round 1: proj/pinned follows upstream's tag ($P2) instead of the pinned digest $P1"
expect_no_tag proj/old v1
for d in "$OLD" $(jq -r '.config.digest, .layers[].digest' "$T/img/old/blobs/sha256/${OLD#sha256:}"); do
    ! has_blob "$d" || fail "round 1: blob $d of the deleted proj/old was downloaded"
done
grep -q '3/3 image(s) present' "$T/sync.out" || fail "round 1: summary is '$(grep '^sync:' "$T/sync.out")', expected 3/3 image(s) present"
log "round 1 ok: $(grep '^sync:' "$T/sync.out")"

# A group state artifact on its own is a desired state too (what one Ground Control group must
# hold): `bundle create` for an air-gapped site of group g2 carries proj/app (arm64 only, the
# profile's platform) and not the deleted proj/old.
jq '.state.artifact = "satellite/group-state/g2/state:latest" | .storage.path = $s' --arg s "$T/bundle-store" \
    "$T/config.json" > "$T/group-config.json"
run_or_fail "bundle create from group g2's state" "$BIN" bundle create --config "$T/group-config.json" --output "$T/g2.bundle"
"$BIN" bundle inspect --json "$T/g2.bundle" > "$T/g2.json" || fail "bundle inspect failed"
[[ "$(jq -c '[.images[] | .repository + ":" + .tag + "@" + .digest]' "$T/g2.json")" == "[\"proj/app:v1@$APP\"]" ]] \
    || fail "the bundle of group g2 holds $(jq -c '[.images[] | .repository + ":" + .tag]' "$T/g2.json"), expected proj/app:v1@$APP only"
log "bundle create from a group state artifact: $(jq -c '[.images[] | .repository + ":" + .tag]' "$T/g2.json"), $(stat -c %s "$T/g2.bundle") bytes"

# ---------------------------------------------------------------- round 2
ROUND=2
push_state satellite/group-state/g1/state "$(group g1 \
    "$(art proj/web v1 "$WEB" true)" \
    "$(art proj/pinned v1 "$P1")")"
do_sync "g1 drops app, deletes web" 0
expect_tag proj/app v1 "$APP"
expect_no_tag proj/web v1
expect_tag proj/pinned v1 "$P1"
log "round 2 ok: $(grep '^sync:' "$T/sync.out") $(grep 'removed:' "$T/sync.out" | tr -s ' ' | tr '\n' ' ')"

# ---------------------------------------------------------------- round 3
ROUND=3
push_state satellite/group-state/g2/state "$(group g2 \
    "$(art "$UP/proj/app" v1 "$APP" true)" \
    "$(art "$UP/proj/old" v1 "$OLD" true)")" --docker
do_sync "g2 deletes app" 0
expect_no_tag proj/app v1
expect_tag proj/pinned v1 "$P1"
log "round 3 ok: $(grep '^sync:' "$T/sync.out") $(grep 'removed:' "$T/sync.out" | tr -s ' ' | tr '\n' ' ')"

# ---------------------------------------------------------------- round 4
ROUND=4
printf 'this is not json' > "$T/bad.txt"
python3 "$MKSTATE" --raw "$T/bad.txt" "oci:$T/badstate:latest" >/dev/null || fail "mkstate.py --raw failed"
push "oci:$T/badstate:latest" satellite/group-state/g1/state:latest
do_sync "malformed group state" 1
expect_tag proj/pinned v1 "$P1"
grep -qi 'g1' "$T/sync.out" || fail "round 4: the error does not name the bad group state: $(tr '\n' ' ' < "$T/sync.out" | cut -c1-300)"
log "round 4 ok: $(grep -i 'FAILED' "$T/sync.out" | head -n 1 | sed 's/^ *//' | cut -c1-200)"

echo "PASS sync_harbor_state"

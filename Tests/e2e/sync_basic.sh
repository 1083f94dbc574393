#!/usr/bin/env bash
# sync_basic.sh BIN
# `satellite-lite sync` against a real upstream (Debian's docker-registry 2.8),
# once per auth mode: none, Basic (htpasswd -B), bearer token (tokenserver.py).
# Per mode (satellite-lite `serve` runs on the same store throughout):
#   1. a multi-arch index (amd64, arm64/v8, arm/v7) pushed with skopeo --all is
#      synced with profile rpi4-arm64: exit 0; STORE/blobs holds exactly the
#      index, the arm64 manifest, its config and layers (no amd64 / arm/v7
#      digest); `skopeo inspect --raw` through satellite-lite returns the index
#      byte-identical; an arm64/v8 pull works; the image-updated hook ran once
#      with the right variables.
#   2. a second sync fetches no blob (upstream access log), fires no hook.
#   3. re-tag upstream: the tag moves, the hook gets SATELLITE_PREVIOUS_DIGEST.
#   4. the image leaves state.images (replaced by a digest-pinned repo@sha256
#      entry): the tag is removed, image-removed fires, a tag pushed directly
#      to satellite-lite in another repo is untouched, the pinned image is
#      present and servable by digest.
#   5. sync.platform "all": every platform's blobs are kept.
#   6. (auth modes) wrong password: exit 1 with a clear one-line error.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

e2e_binary "${1:-}"
for t in docker-registry skopeo jq python3 curl htpasswd openssl; do
    command -v "$t" >/dev/null || fail "$t is not installed"
done
T=$E2E_TMP
USER_NAME=edgeuser
PASSWORD=s3cret-pass
SYNC_TIMEOUT=${SYNC_TIMEOUT:-90}
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}

# start_upstream DIR MODE: docker-registry with access log (to DIR/registry.log)
# and auth MODE (none|basic|token). Sets UP_ADDR, UP_PID; SKOPEO_CREDS array.
start_upstream() {
    local dir=$1 mode=$2 tport auth=""
    mkdir -p "$dir/storage"
    SKOPEO_CREDS=()
    case $mode in
        none) ;;
        basic)
            htpasswd -B -b -c "$dir/htpasswd" "$USER_NAME" "$PASSWORD" >/dev/null 2>&1 \
                || fail "htpasswd -B failed"
            auth="auth:
  htpasswd:
    realm: e2e-basic
    path: $dir/htpasswd"
            SKOPEO_CREDS=(--creds "$USER_NAME:$PASSWORD") ;;
        token)
            python3 "$E2E_DIR/tokenserver.py" keygen "$dir/tok" >"$dir/kid" 2>"$dir/keygen.err" \
                || fail "tokenserver.py keygen failed: $(tail -n 2 "$dir/keygen.err" | tr '\n' ' ')"
            printf '%s\n' "$PASSWORD" > "$dir/tok/password"
            tport=$(free_port)
            python3 "$E2E_DIR/tokenserver.py" serve --dir "$dir/tok" --port "$tport" \
                --user "$USER_NAME" --password-file "$dir/tok/password" \
                --issuer e2e-issuer --service e2e-registry --log "$dir/token.log" \
                >"$dir/tokenserver.out" 2>&1 &
            local tpid=$!
            on_exit "kill_wait $tpid"
            WAIT_HTTP_PID=$tpid WAIT_HTTP_LOG="$dir/tokenserver.out" wait_http "http://127.0.0.1:$tport/token" 20
            auth="auth:
  token:
    realm: http://127.0.0.1:$tport/token
    service: e2e-registry
    issuer: e2e-issuer
    rootcertbundle: $dir/tok/cert.pem"
            SKOPEO_CREDS=(--creds "$USER_NAME:$PASSWORD") ;;
        *) fail "unknown auth mode $mode" ;;
    esac
    DOCKER_REGISTRY_ACCESSLOG=1 start_docker_registry "$dir" "$auth"
    UP_PID=$DOCKER_REGISTRY_PID
    UP_ADDR=$DOCKER_REGISTRY_ADDR
}

# up_skopeo ARGS: skopeo with the upstream's credentials where needed.
push_up() { # SRC DSTREF(repo:tag)
    local out
    if [[ ${#SKOPEO_CREDS[@]} -gt 0 ]]; then
        out=$(e2e_skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
            --dest-creds "${SKOPEO_CREDS[1]}" "$1" "docker://$UP_ADDR/$2" 2>&1) \
            || fail "push of $1 to upstream $2 failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
    else
        out=$(e2e_skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
            "$1" "docker://$UP_ADDR/$2" 2>&1) \
            || fail "push of $1 to upstream $2 failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
    fi
}

# write_config FILE STORE LISTEN IMAGES_JSON [PLATFORM] [PWFILE]
write_config() {
    local f=$1 store=$2 listen=$3 images=$4 platform=${5:-} pw=${6:-}
    local up sync hooks
    up=$(jq -n --arg url "http://$UP_ADDR" '{url:$url}')
    if [[ "$MODE" != none ]]; then
        up=$(jq -n --arg url "http://$UP_ADDR" --arg u "$USER_NAME" --arg p "$pw" \
            '{url:$url, username:$u, passwordFile:$p}')
    fi
    sync=$(jq -n --arg t "${SYNC_TIMEOUT}s" '{concurrency:2, timeout:$t}')
    [[ -n "$platform" ]] && sync=$(jq --arg p "$platform" '. + {platform:$p}' <<<"$sync")
    local cmd='printf "%s|%s|%s|%s|%s|%s|%s\n" "$SATELLITE_EVENT" "$SATELLITE_IMAGE" "$SATELLITE_DIGEST" "$SATELLITE_PREVIOUS_DIGEST" "$SATELLITE_REPOSITORY" "$SATELLITE_TAG" "$SATELLITE_REGISTRY" >> '"$D/hooks.log"
    hooks=$(jq -n --arg c "$cmd" '[{on:"image-updated", match:"edge/*", run:$c}, {on:"image-removed", match:"edge/*", run:$c}]')
    jq -n --arg store "$store" --arg listen "$listen" --argjson up "$up" --argjson images "$images" \
        --argjson sync "$sync" --argjson hooks "$hooks" \
        '{profile:"rpi4-arm64", storage:{path:$store}, registry:{listen:$listen}, upstream:$up,
          state:{images:$images, interval:"1h"}, sync:$sync, hooks:$hooks}' > "$f"
}

# do_sync CONFIG OUT: run one sync pass; sets SYNC_RC.
do_sync() {
    set +e
    timeout --kill-after=5 $(( SYNC_TIMEOUT + 30 )) "$BIN" sync --config "$1" >"$2" 2>&1
    SYNC_RC=$?
    set -e
    (( SYNC_RC != 124 && SYNC_RC != 137 )) || fail "$MODE: sync did not finish within $(( SYNC_TIMEOUT + 30 ))s (hang?): $(tail -n 3 "$2" | tr '\n' ' ')"
}
sync_ok() { # CONFIG OUT WHAT
    do_sync "$1" "$2"
    (( SYNC_RC == 0 )) || fail "$MODE: $3: sync exited $SYNC_RC, expected 0: $(grep -v '^\s*$' "$2" | tail -n 4 | tr '\n' ' ')"
}

store_blobs() { find "$1/blobs/sha256" -type f -printf '%f\n' 2>/dev/null | sort; }
blob_count() { store_blobs "$1" | wc -l; }
up_blob_gets() { grep -c '"GET /v2/[^ ]*/blobs/sha256:' "$D/registry.log" || true; }
tag_digest() { cat "$1/repositories/$2/_manifests/tags/$3" 2>/dev/null | tr -d ' \n' || true; }
downloaded_of() { sed -n 's/.* present, \(.*\) downloaded.*/\1/p' "$1" | head -n 1; }

# manifest_blobs LAYOUT MANIFEST_DIGEST: the manifest, its config and layers.
manifest_blobs() {
    local m="$1/blobs/sha256/${2#sha256:}"
    { echo "${2#sha256:}"; jq -r '.config.digest, .layers[].digest' "$m" | sed 's/^sha256://'; }
}

run_mode() {
    MODE=$1
    D=$T/$MODE
    mkdir -p "$D"
    local t0=$SECONDS
    start_upstream "$D/up" "$MODE"
    local PW=$D/password
    printf '%s\n' "$PASSWORD" > "$PW"
    local src=$D/src store=$D/store cfg=$D/config.json port listen sat
    port=$(free_port); listen=127.0.0.1:$port; sat=$listen
    # registry.log of docker-registry is where up_blob_gets looks
    ln -s "$D/up/registry.log" "$D/registry.log"

    local idx1 arm1 idx2 arm2 app
    idx1=$(python3 "$MKIMAGE" index "oci:$src:v1" --layers 2 --size 32768) || fail "mkimage index failed"
    push_up "oci:$src:v1" edge/multi:v1
    arm1=$(jq -r '.manifests[] | select(.platform.architecture=="arm64") | .digest' "$src/blobs/sha256/${idx1#sha256:}")

    # ---- 1. first sync
    write_config "$cfg" "$store" "$listen" '["edge/multi:v1"]' "" "$PW"
    "$BIN" serve --config "$cfg" >"$D/serve.log" 2>&1 &
    local serve_pid=$!
    on_exit "kill_wait $serve_pid"
    WAIT_HTTP_PID=$serve_pid WAIT_HTTP_LOG="$D/serve.log" wait_http "http://$sat/v2/" 20

    sync_ok "$cfg" "$D/sync1.out" "first sync"
    { echo "${idx1#sha256:}"; manifest_blobs "$src" "$arm1"; } | sort -u > "$D/want.list"
    store_blobs "$store" > "$D/have.list"
    cmp -s "$D/want.list" "$D/have.list" \
        || fail "$MODE: STORE/blobs should hold exactly the index + arm64 manifest/config/layers ($(wc -l < "$D/want.list")), has $(wc -l < "$D/have.list"): $(diff "$D/want.list" "$D/have.list" | grep '^[<>]' | head -n 3 | tr '\n' ' ')"
    local other
    for other in $(jq -r '.manifests[] | select(.platform.architecture!="arm64") | .digest' "$src/blobs/sha256/${idx1#sha256:}"); do
        while read -r h; do
            [[ ! -e "$store/blobs/sha256/${h:0:2}/$h" ]] || fail "$MODE: non-arm64 blob sha256:$h is in the store"
        done < <(manifest_blobs "$src" "$other")
    done
    [[ "$(tag_digest "$store" edge/multi v1)" == "$idx1" ]] \
        || fail "$MODE: tag file edge/multi:v1 holds '$(tag_digest "$store" edge/multi v1)', expected $idx1"
    e2e_skopeo inspect --raw --tls-verify=false "docker://$sat/edge/multi:v1" > "$D/raw.json" \
        || fail "$MODE: skopeo inspect --raw docker://$sat/edge/multi:v1 failed"
    cmp -s "$D/raw.json" "$src/blobs/sha256/${idx1#sha256:}" \
        || fail "$MODE: index served by satellite-lite is not byte-identical to upstream's ($(sha256_file "$D/raw.json") vs $idx1)"
    run_or_fail "$MODE: arm64/v8 pull from satellite-lite" \
        e2e_skopeo copy -q --src-tls-verify=false --override-os linux --override-arch arm64 --override-variant v8 \
        "docker://$sat/edge/multi:v1" "oci:$D/pulled:v1"
    local pulled
    pulled=$(jq -r '.manifests[0].digest' "$D/pulled/index.json")
    [[ "$pulled" == "$arm1" ]] || fail "$MODE: arm64 pull got manifest $pulled, expected $arm1"
    [[ -f "$D/hooks.log" ]] || fail "$MODE: image-updated hook did not run after the first sync"
    local want_hook="image-updated|edge/multi:v1|$idx1||edge/multi|v1|$sat"
    [[ "$(cat "$D/hooks.log")" == "$want_hook" ]] \
        || fail "$MODE: hooks.log after first sync is '$(tr '\n' '~' < "$D/hooks.log")', expected '$want_hook'"
    log "$MODE: first sync ok ($(downloaded_of "$D/sync1.out") downloaded, $(blob_count "$store") blobs)"

    # ---- 2. second sync: nothing to download
    local gets_before gets_after
    gets_before=$(up_blob_gets)
    sync_ok "$cfg" "$D/sync2.out" "second sync"
    gets_after=$(up_blob_gets)
    (( gets_after == gets_before )) || fail "$MODE: second sync fetched $(( gets_after - gets_before )) blob(s) from the upstream, expected 0"
    (( $(wc -l < "$D/hooks.log") == 1 )) || fail "$MODE: second sync fired another hook: $(tail -n 1 "$D/hooks.log")"
    grep -q 'updated:' "$D/sync2.out" && fail "$MODE: second sync reports an update: $(tr '\n' ' ' < "$D/sync2.out")"
    log "$MODE: second sync: 0 blob GETs upstream, summary says $(downloaded_of "$D/sync2.out") downloaded"

    # ---- 3. re-tag upstream
    rm -rf "$D/src2"
    idx2=$(python3 "$MKIMAGE" index "oci:$D/src2:v1" --layers 2 --size 32768) || fail "mkimage index failed"
    push_up "oci:$D/src2:v1" edge/multi:v1
    sync_ok "$cfg" "$D/sync3.out" "sync after re-tag"
    [[ "$(tag_digest "$store" edge/multi v1)" == "$idx2" ]] \
        || fail "$MODE: after re-tag the tag holds '$(tag_digest "$store" edge/multi v1)', expected $idx2"
    want_hook="image-updated|edge/multi:v1|$idx2|$idx1|edge/multi|v1|$sat"
    [[ "$(sed -n 2p "$D/hooks.log")" == "$want_hook" && $(wc -l < "$D/hooks.log") -eq 2 ]] \
        || fail "$MODE: hook after re-tag: '$(tail -n +2 "$D/hooks.log" | tr '\n' '~')', expected '$want_hook'"
    e2e_skopeo inspect --raw --tls-verify=false "docker://$sat/edge/multi:v1" > "$D/raw2.json" \
        || fail "$MODE: skopeo inspect --raw after re-tag failed"
    [[ "$(sha256_file "$D/raw2.json")" == "$idx2" ]] || fail "$MODE: satellite-lite serves $(sha256_file "$D/raw2.json") after re-tag, expected $idx2"
    arm2=$(jq -r '.manifests[] | select(.platform.architecture=="arm64") | .digest' "$D/src2/blobs/sha256/${idx2#sha256:}")
    while read -r h; do
        [[ -e "$store/blobs/sha256/${h:0:2}/$h" ]] || fail "$MODE: after re-tag, blob sha256:$h of the new arm64 manifest is missing"
    done < <(manifest_blobs "$D/src2" "$arm2")
    log "$MODE: re-tag ok"

    # ---- 4. removal + digest-pinned entry; a locally pushed tag stays
    app=$(python3 "$MKIMAGE" single --platform linux/arm64/v8 "oci:$D/app:v1" --layers 1 --size 16384) || fail "mkimage single failed"
    push_up "oci:$D/app:v1" edge/app:v1
    python3 "$MKIMAGE" single --platform linux/arm64/v8 "oci:$D/local:v1" --layers 1 --size 8192 > "$D/local.digest" || fail "mkimage single failed"
    run_or_fail "$MODE: push of a local image to satellite-lite" \
        e2e_skopeo copy -q --dest-tls-verify=false "oci:$D/local:v1" "docker://$sat/local/keep:v1"
    local keep
    keep=$(tag_digest "$store" local/keep v1)
    [[ -n "$keep" ]] || fail "$MODE: local/keep:v1 pushed to satellite-lite has no tag file"
    write_config "$cfg" "$store" "$listen" "[\"edge/app@$app\"]" "" "$PW"
    sync_ok "$cfg" "$D/sync4.out" "sync after removing edge/multi:v1"
    [[ ! -e "$store/repositories/edge/multi/_manifests/tags/v1" ]] \
        || fail "$MODE: edge/multi:v1 is still tagged after leaving the desired state"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$sat/v2/edge/multi/manifests/v1")
    [[ "$code" == 404 ]] || fail "$MODE: GET edge/multi/manifests/v1 answers $code after removal, expected 404"
    want_hook="image-removed|edge/multi:v1|$idx2||edge/multi|v1|$sat"
    grep -qxF "$want_hook" "$D/hooks.log" \
        || fail "$MODE: image-removed hook missing; hooks.log tail: '$(tail -n 2 "$D/hooks.log" | tr '\n' '~')', expected '$want_hook'"
    [[ "$(tag_digest "$store" local/keep v1)" == "$keep" ]] || fail "$MODE: locally pushed local/keep:v1 changed/removed by sync"
    e2e_skopeo inspect --raw --tls-verify=false "docker://$sat/local/keep:v1" >/dev/null \
        || fail "$MODE: locally pushed local/keep:v1 is no longer servable after sync"
    e2e_skopeo inspect --raw --tls-verify=false "docker://$sat/edge/app@$app" > "$D/app.json" \
        || fail "$MODE: digest-pinned edge/app@$app not servable after sync"
    [[ "$(sha256_file "$D/app.json")" == "$app" ]] || fail "$MODE: edge/app@$app served with digest $(sha256_file "$D/app.json")"
    while read -r h; do
        [[ -e "$store/blobs/sha256/${h:0:2}/$h" ]] || fail "$MODE: blob sha256:$h of pinned edge/app is missing"
    done < <(manifest_blobs "$D/app" "$app")
    log "$MODE: removal + digest pin ok"

    # ---- 5. platform "all"
    write_config "$cfg" "$store" "$listen" '["edge/multi:v1"]' all "$PW"
    sync_ok "$cfg" "$D/sync5.out" "sync with platform all"
    [[ "$(tag_digest "$store" edge/multi v1)" == "$idx2" ]] || fail "$MODE: platform all: tag holds '$(tag_digest "$store" edge/multi v1)', expected $idx2"
    local m n=0
    for m in $(jq -r '.manifests[].digest' "$D/src2/blobs/sha256/${idx2#sha256:}"); do
        while read -r h; do
            [[ -e "$store/blobs/sha256/${h:0:2}/$h" ]] || fail "$MODE: platform all: blob sha256:$h (of manifest $m) missing"
            n=$((n + 1))
        done < <(manifest_blobs "$D/src2" "$m")
    done
    run_or_fail "$MODE: arm/v7 pull after platform all" \
        e2e_skopeo copy -q --src-tls-verify=false --override-os linux --override-arch arm --override-variant v7 \
        "docker://$sat/edge/multi:v1" "oci:$D/pulled-armv7:v1"
    log "$MODE: platform all ok ($n blobs of 3 platforms present)"

    # ---- 6. wrong credentials
    if [[ "$MODE" != none ]]; then
        printf 'wrong-password\n' > "$D/badpw"
        write_config "$D/bad.json" "$D/store-bad" "127.0.0.1:$(free_port)" '["edge/multi:v1"]' "" "$D/badpw"
        do_sync "$D/bad.json" "$D/sync-bad.out"
        (( SYNC_RC == 1 )) || fail "$MODE: sync with a wrong password exited $SYNC_RC, expected 1: $(tr '\n' ' ' < "$D/sync-bad.out" | cut -c1-300)"
        grep -qiE 'credential|password|refused|rejected|unauthori|denied|401' "$D/sync-bad.out" \
            || fail "$MODE: sync with a wrong password gives no clear error: $(tr '\n' ' ' < "$D/sync-bad.out" | cut -c1-300)"
        log "$MODE: wrong password -> exit 1: $(grep -iE 'FAILED' "$D/sync-bad.out" | head -n 1 | sed 's/^ *//' | cut -c1-160)"
    fi
    kill_wait "$serve_pid"
    log "$MODE: all checks passed in $(( SECONDS - t0 ))s"
}

for mode in ${SYNC_BASIC_MODES:-none basic token}; do
    run_mode "$mode"
done
echo "PASS sync_basic"

#!/usr/bin/env bash
# selftest.sh [HOST:PORT]
# Without an argument: start Debian's docker-registry (distribution 2.8) with
# lib.sh and run every e2e script against it, proving the scripts themselves
# are correct. With HOST:PORT: run the same scripts against that registry
# (e.g. satellite-lite). ROUNDS=N repeats the whole suite N times (default 1).
# Prints one PASS/FAIL line per script with its run time; exits 1 if any failed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SCRIPTS=(skopeo_roundtrip.sh podman_pull.sh ctr_mirror_pull.sh)
ROUNDS=${ROUNDS:-1}
PER_SCRIPT_TIMEOUT=${PER_SCRIPT_TIMEOUT:-180}

if [[ -n "${1:-}" ]]; then
    REG=$1
    check_registry "$REG"
    log "running against $REG"
else
    start_docker_registry "$E2E_TMP/registry"
    REG=$DOCKER_REGISTRY_ADDR
    log "docker-registry $(docker-registry --version | awk '{print $3}') on $REG (pid $DOCKER_REGISTRY_PID)"
fi

failed=0
for (( r=1; r<=ROUNDS; r++ )); do
    for s in "${SCRIPTS[@]}"; do
        start=$(date +%s.%N)
        if timeout --kill-after=10 "$PER_SCRIPT_TIMEOUT" "$E2E_DIR/$s" "$REG" > "$E2E_TMP/out" 2>&1; then
            res=PASS
        else
            res=FAIL; failed=$((failed + 1))
        fi
        secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
        printf '%s round %d/%d  %-22s %6ss\n' "$res" "$r" "$ROUNDS" "$s" "$secs"
        if [[ $res == FAIL || -n "${E2E_VERBOSE:-}" ]]; then sed 's/^/    | /' "$E2E_TMP/out"; fi
    done
done
if [[ -z "${1:-}" ]] && ! kill -0 "$DOCKER_REGISTRY_PID" 2>/dev/null; then
    fail "docker-registry died during the run: $(tail -n 3 "$E2E_TMP/registry/registry.log" | tr '\n' ' ')"
fi
(( failed == 0 )) || fail "$failed script run(s) failed"
echo "ALL PASS ($ROUNDS round(s), ${#SCRIPTS[@]} scripts)"

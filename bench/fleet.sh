#!/usr/bin/env bash
# bench/fleet.sh: issue 11's fleet benchmark. Simulated satellites heartbeat against
# ground-control on PostgreSQL (a temporary cluster started here, N replicas over one
# database, satellites spread across them) and on SQLite (one process). See bench/README.md.
#
#   bench/fleet.sh [--db postgres|sqlite|both] [--satellites 10000] [--replicas 2]
#                  [--duration 120] [--beats 120] [--hour-satellites N] [--bin PATH]
#                  [--interval 30] [--durable] [--perf SECONDS]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

DB=both SATS=10000 REPLICAS=2 DURATION=120 BEATS=120 HOUR_SATS= BIN= PERF=0 CONC=64 INTERVAL=30 FSYNC=off
while (($#)); do
    case $1 in
    --db) DB=$2; shift 2 ;;
    --satellites) SATS=$2; shift 2 ;;
    --replicas) REPLICAS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --durable) FSYNC=on; shift ;;
    --beats) BEATS=$2; shift 2 ;;
    --hour-satellites) HOUR_SATS=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --perf) PERF=$2; shift 2 ;;
    -h | --help) sed -n 2,8p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
HOUR_SATS=${HOUR_SATS:-$SATS}
if [[ -z "$BIN" ]]; then
    for b in "$ROOT/.build-bench/release/ground-control" "$ROOT/.build/release/ground-control"; do
        [[ -x "$b" ]] && { BIN=$b; break; }
    done
fi
[[ -n "$BIN" && -x "$BIN" ]] || { echo "no ground-control binary: swift build -c release --product ground-control, or --bin PATH" >&2; exit 1; }
for t in python3 jq curl; do command -v "$t" >/dev/null || { echo "$t is not installed" >&2; exit 1; }; done

PGBIN=
for v in 17 16 15; do [[ -x /usr/lib/postgresql/$v/bin/initdb ]] && { PGBIN=/usr/lib/postgresql/$v/bin; break; }; done
if [[ "$DB" != sqlite && -z "$PGBIN" ]]; then
    echo "installing postgresql (apt)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    for v in 17 16 15; do [[ -x /usr/lib/postgresql/$v/bin/initdb ]] && { PGBIN=/usr/lib/postgresql/$v/bin; break; }; done
fi

T=$(mktemp -d /tmp/gcbench.XXXXXX)
chmod 755 "$T"
PIDS=()
PG_DATA=
cleanup() {
    # start_gc runs in a command substitution: its pids come back through $T/pids.
    [[ -s "$T/pids" ]] && mapfile -t -O "${#PIDS[@]}" PIDS < "$T/pids"
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -9 "$p" 2>/dev/null || true; done
    if [[ -n "$PG_DATA" ]]; then as_postgres "$PGBIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true; fi
    rm -rf "$T"
}
trap cleanup EXIT
as_postgres() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ADMIN_PW="bench-$RANDOM$RANDOM"
log() { printf '[fleet] %s\n' "$*" >&2; }

# start_gc NAME DATABASE_URL: starts one ground-control, prints "PID URL".
start_gc() {
    local name=$1 db=$2 port
    port=$(free_port)
    mkdir -p "$T/$name"
    # No central registry runs here: state publishing fails fast (counted), which takes
    # it out of what is measured (heartbeats never publish).
    jq -n --arg listen "127.0.0.1:$port" --arg db "$db" --arg data "$T/shared" \
        '{listen:$listen, database:$db, dataDirectory:$data, registry:{url:"http://127.0.0.1:9", kind:"distribution"}}' \
        > "$T/$name/config.json"
    GC_ADMIN_PASSWORD=$ADMIN_PW "$BIN" serve --config "$T/$name/config.json" >"$T/$name/log" 2>&1 &
    local pid=$!
    echo "$pid" >> "$T/pids"
    for _ in $(seq 300); do
        curl -sf "http://127.0.0.1:$port/ping" >/dev/null 2>&1 && { echo "$pid http://127.0.0.1:$port"; return 0; }
        kill -0 "$pid" 2>/dev/null || { tail -5 "$T/$name/log" >&2; return 1; }
        sleep 0.2
    done
    echo "ground-control $name did not start" >&2
    return 1
}

load() { # PHASE ARGS...: runs the load generator, prints its JSON line
    python3 "$HERE/fleetload.py" "$@" --admin-password "$ADMIN_PW" --creds "$T/creds.tsv"
}

# run_one KIND REPLICAS
run_one() {
    local kind=$1 replicas=$2 dburl targets=() pids=() i out
    rm -rf "$T/shared" "$T"/gc* "$T/creds.tsv"
    mkdir -p "$T/shared"
    if [[ $kind == postgres ]]; then
        local pgport
        pgport=$(free_port)
        mkdir -p "$T/pgroot"
        [[ $(id -u) == 0 ]] && chown postgres:postgres "$T/pgroot"
        PG_DATA=$T/pgroot/data
        as_postgres "$PGBIN/initdb" -D "$PG_DATA" -A trust -U postgres --no-sync >/dev/null
        # Debian's defaults, plus loopback only and no fsync (a benchmark cluster, as in the
        # tests) unless --durable: then PostgreSQL's defaults (fsync, synchronous_commit on).
        as_postgres "$PGBIN/pg_ctl" -D "$PG_DATA" -l "$T/pgroot/log" -w \
            -o "-p $pgport -k $T/pgroot -c listen_addresses=127.0.0.1 -c fsync=$FSYNC -c max_connections=200" start >/dev/null
        "$PGBIN/createdb" -h 127.0.0.1 -p "$pgport" -U postgres gcbench
        dburl="postgres://postgres@127.0.0.1:$pgport/gcbench?sslmode=disable"
    else
        dburl="sqlite://$T/shared/gc.sqlite"
    fi
    for ((i = 1; i <= replicas; i++)); do
        out=$(start_gc "gc$i" "$dburl") || exit 1
        pids+=("${out%% *}")
        targets+=("${out#* }")
    done
    local T_LIST P_LIST
    T_LIST=$(IFS=,; echo "${targets[*]}")
    P_LIST=$(IFS=,; echo "${pids[*]}")
    [[ $kind == postgres ]] && log "postgres: fsync=$FSYNC"
    log "$kind: $replicas ground-control process(es) ($T_LIST), $SATS satellites: onboarding (admin API + ZTR)"
    load setup --targets "$T_LIST" --satellites "$SATS" --concurrency 32 --pids "$P_LIST" | tee "$T/$kind-setup.json" >&2
    log "$kind: steady load, every satellite heartbeats every ${INTERVAL} s for ${DURATION}s"
    local perfpid=
    if ((PERF > 0)) && command -v perf >/dev/null; then
        (sleep 20; perf record -F 499 -g -o "$T/$kind.perf.data" -p "${pids[0]}" -- sleep "$PERF" >/dev/null 2>&1; \
         perf report -i "$T/$kind.perf.data" --no-children --sort dso,sym --percent-limit 0.7 --stdio -g none 2>/dev/null \
            | grep -v '^$' | swift demangle --simplified | cut -c1-200 | head -80 > "${TMPDIR:-/tmp}/fleet-perf-$kind.txt"; \
         log "perf profile of replica 1: ${TMPDIR:-/tmp}/fleet-perf-$kind.txt") &
        perfpid=$!
    fi
    load steady --targets "$T_LIST" --duration "$DURATION" --interval "$INTERVAL" --pids "$P_LIST" | tee "$T/$kind-steady.json" >&2
    [[ -n "$perfpid" ]] && wait "$perfpid"
    log "$kind: compressed hour, $BEATS heartbeats for each of $HOUR_SATS satellites, as fast as the server takes them"
    load hour --targets "$T_LIST" --beats "$BEATS" --hour-satellites "$HOUR_SATS" --concurrency "$CONC" --pids "$P_LIST" \
        | tee "$T/$kind-hour.json" >&2
    load status --targets "$T_LIST" | tee "$T/$kind-status.json" >&2
    local size rows
    if [[ $kind == postgres ]]; then
        size=$("$PGBIN/psql" -h 127.0.0.1 -p "$pgport" -U postgres -d gcbench -Atc "VACUUM" -c "SELECT pg_database_size('gcbench')" | tail -1)
        rows=$("$PGBIN/psql" -h 127.0.0.1 -p "$pgport" -U postgres -d gcbench -Atc "SELECT count(*) FROM gc_heartbeats")
        perSat=$("$PGBIN/psql" -h 127.0.0.1 -p "$pgport" -U postgres -d gcbench -Atc "SELECT max(n) FROM (SELECT count(*) AS n FROM gc_heartbeats GROUP BY satellite_name) c")
    else
        size=$(du -cb "$T/shared"/gc.sqlite* | tail -1 | cut -f1)
        rows=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from gc_heartbeats").fetchone()[0])' "$T/shared/gc.sqlite")
        perSat=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select max(n) from (select count(*) as n from gc_heartbeats group by satellite_name)").fetchone()[0])' "$T/shared/gc.sqlite")
    fi
    jq -n --arg kind "$kind" --argjson replicas "$replicas" --argjson size "$size" --argjson rows "$rows" --argjson persat "$perSat" \
        --slurpfile setup "$T/$kind-setup.json" --slurpfile steady "$T/$kind-steady.json" \
        --slurpfile hour "$T/$kind-hour.json" --slurpfile status "$T/$kind-status.json" \
        '{kind:$kind, replicas:$replicas, db_bytes:$size, heartbeat_rows:$rows, max_rows_per_satellite:$persat, setup:$setup[0], steady:$steady[0], hour:$hour[0], status:$status[0]}' \
        > "$T/$kind.json"
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    if [[ $kind == postgres ]]; then as_postgres "$PGBIN/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null; PG_DATA=; fi
    report "$T/$kind.json"
}

report() {
    jq -r '
      def mib: (. / 1048576 * 10 | floor / 10 | tostring) + " MiB";
      "== \(.kind), \(.replicas) ground-control process(es), \(.setup.satellites) satellites onboarded (\(.setup.failed) failed)",
      "   onboarding: add p99 \(.setup.add.p99_ms) ms, ZTR p99 \(.setup.ztr.p99_ms) ms, errors \(.setup.add.errors + .setup.ztr.errors), \(.setup.add.wall_s) s",
      "   steady (\(.steady.interval_s) s interval, target \(.steady.target_requests_per_s) req/s): held \(.steady.requests_per_s) req/s over \(.steady.wall_s) s, p50 \(.steady.p50_ms) ms, p99 \(.steady.p99_ms) ms, max \(.steady.max_ms) ms, errors \(.steady.errors), loadgen CPU \(.steady.loadgen_cpu_percent)% of a core, machine load \(.steady.loadavg_1m // "?")",
      "   hour (\(.hour.beats_per_satellite) beats x \(.hour.satellites) satellites, as fast as taken): \(.hour.requests_per_s) req/s, p50 \(.hour.p50_ms) ms, p99 \(.hour.p99_ms) ms, errors \(.hour.errors), loadgen CPU \(.hour.loadgen_cpu_percent)%",
      "   RSS after the hour: " + ([.hour.rss | to_entries[] | "pid \(.key) \((.value.rss_kib * 1024) | mib) (peak \((.value.peak_kib * 1024) | mib))"] | join(", ")),
      "   database after the hour: \(.db_bytes | mib), \(.heartbeat_rows) heartbeat rows (at most \(.max_rows_per_satellite) per satellite); \(.status.satellite) is \(.status.state)",
      (if (.steady.errors + .hour.errors + .setup.add.errors + .setup.ztr.errors) > 0 then "   ERROR SAMPLES: \(.steady.error_samples + .hour.error_samples + .setup.add.error_samples + .setup.ztr.error_samples)" else empty end)
    ' "$1"
}

case $DB in
postgres) run_one postgres "$REPLICAS" ;;
sqlite) run_one sqlite 1 ;;
both) run_one postgres "$REPLICAS"; run_one sqlite 1 ;;
*) echo "--db postgres|sqlite|both" >&2; exit 2 ;;
esac

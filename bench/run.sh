#!/usr/bin/env bash
# openai-proxy benchmark harness (`make bench`). Measures and prints; it asserts nothing except reporting
# whether the targets were met. See bench/README.md for what is measured and how.
#
# Binaries: OPENAI_PROXY_BIN, CURSOR_BENCH_BIN (default: <repo>/.build/release/{openai-proxy,cursor-bench}).
# Knobs (defaults): BENCH_REPS=3  BENCH_DURATION=10s  BENCH_CONNECTIONS="16 64"  BENCH_WORKERS=2
#                   BENCH_TTFB_REQUESTS=200  BENCH_CURSOR_SECONDS=3  BENCH_KEEP_TMP=0  NGINX_BIN=nginx
#                   BENCH_PERF=0 (1: also profile openai-proxy with perf under load; needs perf)
#                   BENCH_COLLECTOR_ROWS=200000  BENCH_SOAK_SECONDS=0 (600: the 10-minute WAL soak)
#                   BENCH_STREAMS="100 1000 5000" (open streams held at once; "" skips)  BENCH_STREAM_WINDOW=10
set -Eeuo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
LIB=$BENCH_DIR/lib
PROXY_BIN=${OPENAI_PROXY_BIN:-$REPO/.build/release/openai-proxy}
CURSOR_BIN=${CURSOR_BENCH_BIN:-$REPO/.build/release/cursor-bench}
REPS=${BENCH_REPS:-3}
DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-16 64}
WORKERS=${BENCH_WORKERS:-2}
TTFB_REQUESTS=${BENCH_TTFB_REQUESTS:-200}
CURSOR_SECONDS=${BENCH_CURSOR_SECONDS:-3}
KEEP_TMP=${BENCH_KEEP_TMP:-0}
COLLECTOR_ROWS=${BENCH_COLLECTOR_ROWS:-200000}
SOAK_SECONDS=${BENCH_SOAK_SECONDS:-0}
STREAMS=${BENCH_STREAMS-100 1000 5000}
STREAM_WINDOW=${BENCH_STREAM_WINDOW:-10}
KEYS=3
READY_TIMEOUT=90    # seconds; a debug build with a cold page cache can take a while to start

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------- preflight
NGINX=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
command -v wrk >/dev/null 2>&1 || die "wrk is not installed (apt-get install wrk)"
[[ -x $NGINX ]] || die "nginx is not installed at $NGINX (apt-get install nginx, or set NGINX_BIN)"
command -v python3 >/dev/null 2>&1 || die "python3 is not installed"
python3 -c 'import asyncio, sqlite3, statistics' 2>/dev/null || die "python3 lacks asyncio/sqlite3/statistics"
[[ -x $PROXY_BIN ]] || die "openai-proxy binary not found at $PROXY_BIN (swift build -c release, or set OPENAI_PROXY_BIN)"
[[ -x $CURSOR_BIN ]] || die "cursor-bench binary not found at $CURSOR_BIN (swift build -c release, or set CURSOR_BENCH_BIN)"
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPS must be a positive integer, got '$REPS'"
for n in $STREAMS; do [[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_STREAMS must list positive integers, got '$STREAMS'"; done
[[ $STREAM_WINDOW =~ ^[1-9][0-9]*$ ]] || die "BENCH_STREAM_WINDOW must be whole seconds, got '$STREAM_WINDOW'"

# Open streams held at once need file descriptors: the client and the SSE upstream one per stream, an nginx
# worker two (client and upstream side, and the kernel may hand every connection to one worker); openai-proxy
# raises its own limit. Take the hard limit, and leave out the sizes it cannot hold.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FILE_LIMIT=$(ulimit -n)
[[ $FILE_LIMIT == unlimited ]] && FILE_LIMIT=1048576
STREAM_SIZES=()
for n in $STREAMS; do
    if ((2 * n + 256 <= FILE_LIMIT)); then STREAM_SIZES+=("$n"); else
        say "bench: warning: $n open streams need about $((2 * n + 256)) open files, the limit is $FILE_LIMIT; skipped"
    fi
done
MAX_STREAMS=0
for n in "${STREAM_SIZES[@]}"; do ((n > MAX_STREAMS)) && MAX_STREAMS=$n; done

# The proxy reads its whole configuration from the environment: start from a clean slate.
unset OPENAI_PROXY_CONFIG OPENAI_API_BASE_URL KEY_ROTATION_STRATEGY SECRET_KEY OPENAI_PROXY_DATA_DIR \
    OPENAI_PROXY_LISTEN OPENAI_PROXY_ADMIN_LISTEN OPENAI_PROXY_WORKERS OPENAI_PROXY_ADMIN_TOKEN \
    OPENAI_PROXY_DRAIN_TIMEOUT OPENAI_PROXY_MAX_BODY_BYTES LOG_LEVEL LOG_FORMAT OPENAI_PROXY_USAGE \
    OPENAI_PROXY_SPOOL_MAX_BYTES OPENAI_PROXY_LOG_RETENTION_DAYS OPENAI_PROXY_CHAT_HISTORY \
    OPENAI_PROXY_CHAT_HISTORY_MAX_BYTES OPENAI_PROXY_USAGE_BATCH_INTERVAL OPENAI_PROXY_USAGE_BATCH_ROWS

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$BENCH_DIR/out
RAW=$OUT/raw-$STAMP
REPORT=$OUT/report-$STAMP.md
mkdir -p "$RAW"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/openai-proxy-bench.XXXXXX")
# The throw-away PostgreSQL cluster's directory: outside $TMP, whose mode keeps out the `postgres` user a root
# run hands the cluster to (scripts/pg-scratch.sh).
PG_DIR=${TMPDIR:-/tmp}/openai-proxy-bench-pg-$$
STARTED=$(date +%s)

# --------------------------------------------------------------------------------------------- clean-up
SERVICES=()            # long-running pids we started (nginx masters, SSE upstream, openai-proxy supervisors)
declare -A SERVICE_NAME=()

descendants() {
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$child"
        descendants "$child"
    done
}

# stop_service PID [TIMEOUT]: SIGTERM, wait, then SIGKILL the process and whatever it left behind.
stop_service() {
    local pid=$1 timeout=${2:-15} tree i
    kill -0 "$pid" 2>/dev/null || return 0
    tree=$(descendants "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "bench: ${SERVICE_NAME[$pid]:-pid $pid} did not stop within ${timeout}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    # Children left behind (their parent was killed): only if still ours, not a reused pid.
    for i in $tree; do
        if tr '\0' ' ' 2>/dev/null <"/proc/$i/cmdline" | grep -q -e "$TMP" -e '^nginx: worker'; then
            kill -KILL "$i" 2>/dev/null || true
        fi
    done
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM HUP
    set +e
    for pid in $(jobs -pr); do
        [[ -n ${SERVICE_NAME[$pid]:-} ]] || kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${SERVICES[@]}"; do stop_service "$pid" 10; done
    if ((rc != 0)); then
        mkdir -p "$RAW/logs"
        find "$TMP" -name '*.log' -exec cp {} "$RAW/logs/" \; 2>/dev/null
        say "bench: failed (exit $rc); logs copied to $RAW/logs"
    fi
    [[ -d $PG_DIR ]] && "$REPO/scripts/pg-scratch.sh" stop "$PG_DIR"
    if [[ $KEEP_TMP == 1 ]]; then say "bench: temp dir kept: $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'say "bench: interrupted"; exit 130' INT TERM HUP

# start_service NAME LOG COMMAND...: runs COMMAND in the background; sets SERVICE_PID.
start_service() {
    local name=$1 log=$2
    shift 2
    "$@" >"$log" 2>&1 &
    SERVICE_PID=$!
    SERVICES+=("$SERVICE_PID")
    SERVICE_NAME[$SERVICE_PID]=$name
}

fail_with_log() {
    local log=$1
    shift
    say "bench: error: $*"
    [[ -f $log ]] && { say "--- last lines of $log:"; tail -n 20 "$log" >&2; }
    exit 1
}

# wait_port NAME PID PORT LOG: until something accepts on 127.0.0.1:PORT (bounded), or the process died.
wait_port() {
    local name=$1 pid=$2 port=$3 log=$4 deadline=$((SECONDS + READY_TIMEOUT))
    while ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || fail_with_log "$log" "$name exited during start-up"
        ((SECONDS < deadline)) || fail_with_log "$log" "$name did not listen on port $port within ${READY_TIMEOUT}s"
        sleep 0.1
    done
}

# wait_line NAME PID PATTERN LOG: until LOG contains PATTERN (bounded), or the process died.
wait_line() {
    local name=$1 pid=$2 pattern=$3 log=$4 deadline=$((SECONDS + READY_TIMEOUT))
    until grep -q -- "$pattern" "$log" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || fail_with_log "$log" "$name exited during start-up"
        ((SECONDS < deadline)) || fail_with_log "$log" "$name was not ready within ${READY_TIMEOUT}s"
        sleep 0.1
    done
}

# check_chat NAME URL TOKEN: one non-streamed request must answer 200 with a chat.completion.
check_chat() {
    python3 - "$1" "$2" "$3" <<'PY' || exit 1
import sys, urllib.request, urllib.error
name, url, token = sys.argv[1:]
req = urllib.request.Request(url, method="POST", data=b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
                             headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=15) as r:
        body = r.read()
        if r.status == 200 and b'"chat.completion"' in body:
            sys.exit(0)
        print(f"bench: error: {name} answered {r.status}: {body[:300]!r}", file=sys.stderr)
except urllib.error.HTTPError as e:
    print(f"bench: error: {name} answered {e.code}: {e.read()[:300]!r}", file=sys.stderr)
except Exception as e:
    print(f"bench: error: {name} request failed: {e}", file=sys.stderr)
sys.exit(1)
PY
}

# Run private copies, so a rebuild during the bench (the linker rewriting the file) cannot break or mix
# binaries; the supervisor re-executes its own binary for each child, which is then the copy too.
mkdir -p "$TMP/bin"
cp "$PROXY_BIN" "$TMP/bin/openai-proxy" && cp "$CURSOR_BIN" "$TMP/bin/cursor-bench" ||
    die "could not copy the binaries to $TMP/bin"
PROXY_EXE=$TMP/bin/openai-proxy
CURSOR_EXE=$TMP/bin/cursor-bench

# ------------------------------------------------------------------------------------------ environment
read -r P_UP P_SSE P_NGX P_NGX_SSE P_OP P_OP_ADMIN P_OP2 P_OP2_ADMIN P_OFF P_OFF_ADMIN \
    P_HOLD P_NGX_HOLD P_OP3 P_OP3_ADMIN P_PG P_PGOP P_PGOP_ADMIN < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(17)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()')

binary_line() {  # binary_line ORIGINAL COPY
    local kind=build
    case $1 in */debug/*) kind="DEBUG build" ;; */release/*) kind="release build" ;; esac
    printf '%s (%s, %s MB, modified %s, sha256 %s)' "$1" "$kind" "$(($(stat -c %s "$2") / 1000000))" \
        "$(date -u -d "@$(stat -c %Y "$1")" +%Y-%m-%dT%H:%MZ)" "$(sha256sum "$2" | cut -c1-12)"
}
{
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); host: $(uname -srm)"
    echo "- nproc: $(nproc); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- openai-proxy: $(binary_line "$PROXY_BIN" "$PROXY_EXE")"
    echo "- cursor-bench: $(binary_line "$CURSOR_BIN" "$CURSOR_EXE")"
    echo "- repo: $REPO at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (working tree modified)')"
    echo "- $("$NGINX" -v 2>&1 | head -1); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $(python3 --version 2>&1)"
    echo "- settings: $REPS runs per configuration, wrk -t2 -c{${CONNECTIONS// /,}} -d$DURATION --latency, $WORKERS openai-proxy workers / nginx worker_processes, $KEYS upstream keys (round_robin), LOG_LEVEL=warning, $TTFB_REQUESTS streamed requests per target, cursor runs of ${CURSOR_SECONDS}s, open streams held at once: ${STREAM_SIZES[*]:-none} (${STREAM_WINDOW}s each, open-file limit $FILE_LIMIT)"
} >"$RAW/env.md"
say "bench: environment"
cat "$RAW/env.md" >&2
case $PROXY_BIN in */debug/*) say "bench: WARNING: openai-proxy is a debug build; numbers are not representative" ;; esac

# ------------------------------------------------------------------------------------------- upstreams
# shellcheck source=lib/fake_upstream.sh
. "$LIB/fake_upstream.sh"

mkdir -p "$TMP/upstream" "$TMP/nginx" "$TMP/op" "$TMP/op-off" "$TMP/cursor"
fake_upstream_conf "$TMP/upstream" "$P_UP"

{
    nginx_common "$TMP/nginx"
    echo "worker_processes $WORKERS;"
    echo "http {"
    nginx_http_common "$TMP/nginx"
    cat <<CONF
    upstream fake_openai { server 127.0.0.1:$P_UP; keepalive 128; keepalive_requests 1000000; keepalive_timeout 300s; }
    upstream fake_sse { server 127.0.0.1:$P_SSE; keepalive 128; keepalive_requests 1000000; keepalive_timeout 300s; }
    # One location per upstream, configured as for a real OpenAI gateway (streaming and non-streaming alike).
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_buffering off;
    server {
        listen 127.0.0.1:$P_NGX backlog=4096;
        location / { proxy_pass http://fake_openai; }
    }
    server {
        listen 127.0.0.1:$P_NGX_SSE backlog=4096;
        location / { proxy_pass http://fake_sse; }
    }
}
CONF
} >"$TMP/nginx/nginx.conf"

for instance in upstream nginx; do
    "$NGINX" -t -q -p "$TMP/$instance" -c "$TMP/$instance/nginx.conf" -e "$TMP/$instance/error.log" \
        >"$TMP/$instance/test.log" 2>&1 || fail_with_log "$TMP/$instance/test.log" "nginx rejected the $instance config"
done

say "bench: starting the fake upstreams and nginx (ports: upstream $P_UP, sse $P_SSE, nginx $P_NGX/$P_NGX_SSE)"
start_service "upstream nginx" "$TMP/upstream/stdout.log" \
    "$NGINX" -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf" -e "$TMP/upstream/error.log"
UP_PID=$SERVICE_PID
start_service "sse upstream" "$TMP/sse.log" python3 "$LIB/sse_upstream.py" "$P_SSE" 4 0.05
SSE_PID=$SERVICE_PID
start_service "nginx proxy" "$TMP/nginx/stdout.log" \
    "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log"
NGX_PID=$SERVICE_PID
wait_port "upstream nginx" "$UP_PID" "$P_UP" "$TMP/upstream/error.log"
wait_port "sse upstream" "$SSE_PID" "$P_SSE" "$TMP/sse.log"
wait_port "nginx proxy" "$NGX_PID" "$P_NGX" "$TMP/nginx/error.log"
wait_port "nginx proxy" "$NGX_PID" "$P_NGX_SSE" "$TMP/nginx/error.log"

# ---------------------------------------------------------------------------------------- openai-proxy
OP_ENV=(OPENAI_PROXY_DATA_DIR="$TMP/op" OPENAI_PROXY_WORKERS="$WORKERS" LOG_LEVEL=warning
    KEY_ROTATION_STRATEGY=round_robin OPENAI_PROXY_DRAIN_TIMEOUT=5s)
for i in $(seq 1 $KEYS); do
    env "${OP_ENV[@]}" "$PROXY_EXE" keys add --name "bench-$i" --value "sk-bench-upstream-key-$i-0123456789abcdef" \
        >"$TMP/op/keys-add.log" 2>&1 || fail_with_log "$TMP/op/keys-add.log" "openai-proxy keys add failed"
done
env "${OP_ENV[@]}" "$PROXY_EXE" tokens create --name bench >"$TMP/op/token.log" 2>&1 ||
    fail_with_log "$TMP/op/token.log" "openai-proxy tokens create failed"
TOKEN=$(tail -n 1 "$TMP/op/token.log")
[[ -n $TOKEN && $TOKEN != *" "* ]] || fail_with_log "$TMP/op/token.log" "could not read the client token"
export BENCH_TOKEN=$TOKEN

# The same keys, token and secret in a second data directory, for openai-proxy with the usage path off.
cp "$TMP/op/openai_proxy.db" "$TMP/op/secret.key" "$TMP/op-off/"

# The same keys, token and secret on PostgreSQL (a throw-away cluster on loopback, as the tests use), moved
# in with `openai-proxy migrate --to`: the single-host benchmark on both engines in the same run.
PG_URL=""
if [[ ${BENCH_POSTGRESQL:-1} == 1 ]]; then
    say "bench: starting a throw-away PostgreSQL cluster on port $P_PG (BENCH_POSTGRESQL=0 skips it)"
    PG_URL=$("$REPO/scripts/pg-scratch.sh" start "$PG_DIR" "$P_PG") || die "could not start PostgreSQL"
    # A database of the role's own: PostgreSQL 15 lets only a database's owner create tables in it.
    psql "$PG_URL" -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE openai_proxy_bench" >/dev/null ||
        die "could not create the benchmark's PostgreSQL database"
    PG_URL=${PG_URL%/*}/openai_proxy_bench
    PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid")
    mkdir -p "$TMP/op-pg"
    cp "$TMP/op/secret.key" "$TMP/op-pg/"
    env "${OP_ENV[@]}" "$PROXY_EXE" migrate --to "$PG_URL" >"$TMP/op-pg/migrate.log" 2>&1 ||
        fail_with_log "$TMP/op-pg/migrate.log" "openai-proxy migrate --to PostgreSQL failed"
fi

# start_proxy LISTEN_PORT ADMIN_PORT UPSTREAM_URL LOG [ENV…]: sets OP_PID once `openai-proxy ready` is printed.
start_proxy() {
    local port=$1 admin=$2 upstream=$3 log=$4
    shift 4
    start_service "openai-proxy" "$log" env "${OP_ENV[@]}" OPENAI_PROXY_LISTEN="127.0.0.1:$port" \
        OPENAI_PROXY_ADMIN_LISTEN="127.0.0.1:$admin" OPENAI_API_BASE_URL="$upstream" "$@" "$PROXY_EXE" serve
    OP_PID=$SERVICE_PID
    wait_line "openai-proxy" "$OP_PID" "openai-proxy ready" "$log"
    wait_port "openai-proxy" "$OP_PID" "$port" "$log"
}

# `env` execs the binary, so $! is the supervisor itself.
say "bench: starting openai-proxy ($WORKERS workers, $KEYS keys) on port $P_OP"
start_proxy "$P_OP" "$P_OP_ADMIN" "http://127.0.0.1:$P_UP/v1" "$TMP/op/serve.log"
say "bench: openai-proxy ready: $(grep -m1 'openai-proxy ready' "$TMP/op/serve.log"); processes: $((1 + $(descendants "$OP_PID" | wc -l)))"
# The usage path's cost: the same service with OPENAI_PROXY_USAGE=off (no rows, no collector work), idle
# while the other targets run.
MAIN_PID=$OP_PID
start_proxy "$P_OFF" "$P_OFF_ADMIN" "http://127.0.0.1:$P_UP/v1" "$TMP/op-off/serve.log" \
    OPENAI_PROXY_DATA_DIR="$TMP/op-off" OPENAI_PROXY_USAGE=off
OFF_PID=$OP_PID
OP_PID=$MAIN_PID
PGOP_PID=""
if [[ -n $PG_URL ]]; then
    start_proxy "$P_PGOP" "$P_PGOP_ADMIN" "http://127.0.0.1:$P_UP/v1" "$TMP/op-pg/serve.log" \
        OPENAI_PROXY_DATA_DIR="$TMP/op-pg" OPENAI_PROXY_DATABASE_URL="$PG_URL"
    PGOP_PID=$OP_PID
    OP_PID=$MAIN_PID
fi

declare -A URL=(
    [direct]="http://127.0.0.1:$P_UP/v1/chat/completions"
    [nginx]="http://127.0.0.1:$P_NGX/v1/chat/completions"
    [openai-proxy]="http://127.0.0.1:$P_OP/v1/chat/completions"
    [openai-proxy-usage-off]="http://127.0.0.1:$P_OFF/v1/chat/completions"
    [openai-proxy-postgresql]="http://127.0.0.1:$P_PGOP/v1/chat/completions"
)
declare -A PROXY_PID=([direct]="" [nginx]=$NGX_PID [openai-proxy]=$OP_PID [openai-proxy-usage-off]=$OFF_PID
    [openai-proxy-postgresql]=$PGOP_PID)
TARGETS=(direct nginx openai-proxy openai-proxy-usage-off)
[[ -n $PG_URL ]] && TARGETS+=(openai-proxy-postgresql)
for t in "${TARGETS[@]}"; do check_chat "$t" "${URL[$t]}" "$TOKEN"; done

# ------------------------------------------------------------------------------ non-streaming throughput
RUNS=$RAW/runs.jsonl
: >"$RUNS"
measure() {  # measure REP TARGET CONNS DURATION
    local args=(--jsonl "$RUNS" --raw "$RAW/wrk-r$1-$2-c$3.txt" --target "$2" --conns "$3" --rep "$1"
        --duration "$4" --lua "$LIB/post.lua" --upstream-pid "$UP_PID")
    [[ -n ${PROXY_PID[$2]} ]] && args+=(--proxy-pid "${PROXY_PID[$2]}")
    # On PostgreSQL the database server's work is part of the request's cost.
    [[ $2 == openai-proxy-postgresql ]] && args+=(--database-pid "$PG_PID")
    python3 "$LIB/measure.py" "${args[@]}" "${URL[$2]}" || exit 1
}
say "bench: warm-up (3 s per target, not counted)"
for t in "${TARGETS[@]}"; do measure 0 "$t" 16 3s; done
say "bench: non-streaming load: $REPS runs x {${CONNECTIONS// /,}} connections x ${#TARGETS[@]} targets, $DURATION each"
for ((rep = 1; rep <= REPS; rep++)); do
    for conns in $CONNECTIONS; do
        # Rotate the target order every run so drift on this noisy machine falls on every target alike.
        for ((k = 0; k < ${#TARGETS[@]}; k++)); do
            t=${TARGETS[$(((k + rep - 1) % ${#TARGETS[@]}))]}
            measure "$rep" "$t" "$conns" "$DURATION"
        done
    done
done

# Optional profile of openai-proxy under load (not part of the measured runs).
if [[ ${BENCH_PERF:-0} == 1 ]]; then
    if command -v perf >/dev/null 2>&1; then
        say "bench: profiling openai-proxy with perf (c=64, 8 s)"
        pids=$(echo "$OP_PID" $(descendants "$OP_PID") | tr ' ' ',')
        wrk -t2 -c64 -d12s -s "$LIB/post.lua" "${URL[openai-proxy]}" >"$RAW/wrk-perf.txt" 2>&1 &
        wrk_pid=$!
        sleep 2
        perf record -F 499 -g -p "$pids" -o "$TMP/perf.data" -- sleep 8 >"$TMP/perf.log" 2>&1 ||
            say "bench: perf record failed (see $TMP/perf.log)"
        wait "$wrk_pid" || true
        if [[ -s $TMP/perf.data ]]; then
            {
                echo "# share of samples by process and thread"
                perf report -i "$TMP/perf.data" --stdio --no-children --sort comm -g none 2>/dev/null | grep '%' | head -12 || true
                echo "# top functions including callees (children), 2% and more"
                perf report -i "$TMP/perf.data" --stdio --children --sort sym -g none --percent-limit 2 2>/dev/null |
                    grep '%' | grep -v -e 'NIOPosix' -e 'start_thread' -e 'dispatch' -e 'swift_job_run' \
                        -e 'runJobInEstablishedExecutorContext' | cut -c1-160 | head -40 || true
            } >"$RAW/perf-top.txt"
            perf report -i "$TMP/perf.data" --stdio --children --sort sym -g caller,0.5,callee,function,percent \
                --percent-limit 1 >"$RAW/perf-callgraph.txt" 2>/dev/null || true
        fi
    else
        say "bench: perf is not installed; skipping the profile"
    fi
fi

# Per-key counts: the collector lands usage rows within ~0.2 s.
sleep 1.5
python3 - "$TMP/op/openai_proxy.db" >"$RAW/keys.json" <<'PY' || die "could not read key counts from the database"
import json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=10)
keys = [dict(id=i, name=n, usage_count=u, success_count=s, failure_count=f)
        for i, n, u, s, f in db.execute("SELECT id, name, usage_count, success_count, failure_count FROM keys ORDER BY id")]
rows = db.execute("SELECT COUNT(*) FROM usage_log").fetchone()[0]
statuses = dict(db.execute("SELECT status, COUNT(*) FROM usage_log GROUP BY status").fetchall())
errors = dict(db.execute("SELECT error, COUNT(*) FROM usage_log WHERE error IS NOT NULL GROUP BY error").fetchall())
workers = dict(db.execute("SELECT worker, COUNT(*) FROM usage_log GROUP BY worker").fetchall())
cursor = db.execute("SELECT position FROM rotation_cursor").fetchone()[0]
print(json.dumps(dict(keys=keys, usage_log_rows=rows, statuses=statuses, errors=errors, workers=workers, cursor=cursor)))
PY
stop_service "$OFF_PID" 15
[[ -n $PGOP_PID ]] && stop_service "$PGOP_PID" 15

# Collector throughput: rows straight into the running collector's socket until every one is acknowledged.
say "bench: collector throughput ($COLLECTOR_ROWS rows over 2 connections)"
python3 "$LIB/collector_bench.py" --socket "$TMP/op/stats.sock" --rows "$COLLECTOR_ROWS" --connections 2 \
    --out "$RAW/collector.json" || die "the collector benchmark failed"

# The WAL under sustained load with readers always open (BENCH_SOAK_SECONDS; 600 for the 10-minute figure).
if ((SOAK_SECONDS > 0)); then
    say "bench: WAL soak: wrk -c16 for ${SOAK_SECONDS}s with readers open"
    wrk -t2 -c16 -d"${SOAK_SECONDS}s" -s "$LIB/post.lua" "${URL[openai-proxy]}" >"$RAW/wrk-soak.txt" 2>&1 &
    soak_wrk=$!
    python3 "$LIB/wal_soak.py" --db "$TMP/op/openai_proxy.db" --seconds "$SOAK_SECONDS" --out "$RAW/wal.json" ||
        die "the WAL soak failed"
    wait "$soak_wrk" || true
fi

say "bench: stopping openai-proxy"
t0=$(date +%s.%N)
kill -TERM "$OP_PID"
rc=0
wait "$OP_PID" || rc=$?
echo "{\"exit\": $rc, \"seconds\": $(python3 -c "print(round($(date +%s.%N) - $t0, 2))")}" >"$RAW/shutdown.json"

# ------------------------------------------------------------------------------------- streaming TTFB
say "bench: streaming time to first byte: $TTFB_REQUESTS requests per target, interleaved"
start_proxy "$P_OP2" "$P_OP2_ADMIN" "http://127.0.0.1:$P_SSE/v1" "$TMP/op/serve-sse.log"
python3 "$LIB/ttfb.py" --out "$RAW/ttfb.json" --requests "$TTFB_REQUESTS" --warmup 10 --token "$TOKEN" \
    "direct=127.0.0.1:$P_SSE" "nginx=127.0.0.1:$P_NGX_SSE" "openai-proxy=127.0.0.1:$P_OP2" || die "the TTFB client failed"
stop_service "$OP_PID" 15

# ------------------------------------------------------------------------------- open streams held at once
# The scaling figure: N streams open together through nginx and through openai-proxy (usage on), events paced
# one a second by a second SSE upstream that keeps every stream open until the client goes; see hold_streams.py.
if ((${#STREAM_SIZES[@]} > 0)); then
    say "bench: open streams held at once: ${STREAM_SIZES[*]} (${STREAM_WINDOW}s window each)"
    mkdir -p "$TMP/nginx-hold"
    {
        # A worker may get every stream, and holds two connections for each.
        echo "daemon off;"
        echo "master_process on;"
        echo "pid $TMP/nginx-hold/nginx.pid;"
        echo "error_log $TMP/nginx-hold/error.log warn;"
        echo "worker_processes $WORKERS;"
        echo "worker_rlimit_nofile $((2 * MAX_STREAMS + 256));"
        echo "events { worker_connections $((2 * MAX_STREAMS + 128)); }"
        echo "http {"
        nginx_http_common "$TMP/nginx-hold"
        cat <<CONF
    upstream hold_sse { server 127.0.0.1:$P_HOLD; keepalive 128; keepalive_requests 1000000; keepalive_timeout 300s; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_buffering off;
    server {
        listen 127.0.0.1:$P_NGX_HOLD backlog=4096;
        location / { proxy_pass http://hold_sse; }
    }
}
CONF
    } >"$TMP/nginx-hold/nginx.conf"
    "$NGINX" -t -q -p "$TMP/nginx-hold" -c "$TMP/nginx-hold/nginx.conf" -e "$TMP/nginx-hold/error.log" \
        >"$TMP/nginx-hold/test.log" 2>&1 || fail_with_log "$TMP/nginx-hold/test.log" "nginx rejected the streams config"
    start_service "hold upstream" "$TMP/hold.log" python3 "$LIB/sse_upstream.py" "$P_HOLD" 1000000 1
    HOLD_PID=$SERVICE_PID
    start_service "nginx streams" "$TMP/nginx-hold/stdout.log" \
        "$NGINX" -p "$TMP/nginx-hold" -c "$TMP/nginx-hold/nginx.conf" -e "$TMP/nginx-hold/error.log"
    NGX_HOLD_PID=$SERVICE_PID
    wait_port "hold upstream" "$HOLD_PID" "$P_HOLD" "$TMP/hold.log"
    wait_port "nginx streams" "$NGX_HOLD_PID" "$P_NGX_HOLD" "$TMP/nginx-hold/error.log"
    # The per-worker connection cap (auto: half the open-file limit less 128) must not refuse a stream even
    # if one worker gets them all.
    start_proxy "$P_OP3" "$P_OP3_ADMIN" "http://127.0.0.1:$P_HOLD/v1" "$TMP/op/serve-hold.log" \
        OPENAI_PROXY_WORKER_CONNECTIONS=$((MAX_STREAMS + 256))
    OP_HOLD_PID=$OP_PID
    : >"$RAW/streams.jsonl"
    hold_targets=(nginx openai-proxy)
    declare -A HOLD_PORT=([nginx]=$P_NGX_HOLD [openai-proxy]=$P_OP3)
    declare -A HOLD_ROOT=([nginx]=$NGX_HOLD_PID [openai-proxy]=$OP_HOLD_PID)
    i=0
    for n in "${STREAM_SIZES[@]}"; do
        for ((k = 0; k < ${#hold_targets[@]}; k++)); do
            t=${hold_targets[$(((k + i) % ${#hold_targets[@]}))]}
            python3 "$LIB/hold_streams.py" --jsonl "$RAW/streams.jsonl" --target "$t" --port "${HOLD_PORT[$t]}" \
                --token "$TOKEN" --proxy-pid "${HOLD_ROOT[$t]}" --streams "$n" --window "$STREAM_WINDOW" ||
                die "the open-streams client failed ($t, $n streams)"
        done
        i=$((i + 1))
    done
    stop_service "$OP_HOLD_PID" 15
    stop_service "$NGX_HOLD_PID" 10
    stop_service "$HOLD_PID" 10
fi

# ---------------------------------------------------------------------------------- cursor contention
say "bench: rotation cursor under contention (${CURSOR_SECONDS}s per run)"
env OPENAI_PROXY_DATA_DIR="$TMP/cursor" "$PROXY_EXE" keys list >"$TMP/cursor/init.log" 2>&1 ||
    fail_with_log "$TMP/cursor/init.log" "could not create the cursor-bench database"
CURSOR_DB=$TMP/cursor/openai_proxy.db
: >"$RAW/cursor.jsonl"
cursor_run() {  # cursor_run PROCS BLOCK
    local procs=$1 block=$2 i pids=() rc=0
    for ((i = 0; i < procs; i++)); do
        "$CURSOR_EXE" "$CURSOR_DB" "$CURSOR_SECONDS" "$block" >"$TMP/cursor/p$procs-b$block-$i.log" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || rc=$?; done
    ((rc == 0)) || fail_with_log "$TMP/cursor/p$procs-b$block-0.log" "cursor-bench failed (exit $rc)"
    python3 - "$procs" "$block" "$TMP/cursor/p$procs-b$block-"*.log >>"$RAW/cursor.jsonl" <<'PY'
import json, re, sys
procs, block, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
runs = []
for name in files:
    text = open(name).read()
    m = re.search(r"writes=(\d+) positions=(\d+) seconds=([\d.e+-]+) slowest_ms=([\d.e+-]+)", text)
    if not m:
        sys.exit(f"bench: error: unexpected cursor-bench output in {name}: {text[:200]!r}")
    runs.append(dict(writes=int(m[1]), positions=int(m[2]), seconds=float(m[3]), slowest_ms=float(m[4])))
print(json.dumps(dict(procs=procs, block=block, runs=runs)))
writes = sum(r["writes"] / r["seconds"] for r in runs)
positions = sum(r["positions"] / r["seconds"] for r in runs)
slowest = max(r["slowest_ms"] for r in runs)
print(f"  cursor: {procs} process(es), block {block}: {writes:.0f} writes/s, {positions:.0f} positions/s,"
      f" slowest write {slowest:.1f} ms", file=sys.stderr)
PY
}
cursor_run 1 1
cursor_run 2 1
cursor_run 4 1
cursor_run "$WORKERS" 32

# ------------------------------------------------------------------------------------------------ report
python3 "$LIB/report.py" --raw "$RAW" --elapsed "$(($(date +%s) - STARTED))" >"$REPORT" || die "could not build the report"
cat "$REPORT"
say "bench: report saved to $REPORT (raw data in $RAW)"

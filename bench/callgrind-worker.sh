#!/usr/bin/env bash
# The worker's own cost per request, counted in instructions: one proxy worker (started directly, the way the
# supervisor starts it: `openai-proxy worker --index 0` on an inherited listening socket as fd 3) serves a fixed
# number of identical non-streamed chat requests against a fast fake upstream (nginx), usage off. Instruction
# counts are the same run after run even on a busy machine; wall time and CPU time are not.
#
#   bench/callgrind-worker.sh            # callgrind: Ir per request and the top functions
#   bench/callgrind-worker.sh perf       # perf stat on the native worker under wrk: task-clock (and
#                                        # instructions, where the machine has hardware counters) per request
#
# Knobs (defaults): OPENAI_PROXY_BIN=.build/release/openai-proxy  CG_REQUESTS=2000  CG_WARMUP=200
#                   CG_CONNECTIONS=1  CG_USAGE=off  CG_STRATEGY=random  CG_TOP=40
#                   PERF_CONNECTIONS=16  PERF_DURATION=10s  PERF_REQUESTS=20000 (without wrk)
#                   NGINX_BIN=nginx
# Output: bench/out/callgrind-<UTC timestamp>-<pid>/ (summary.txt, the callgrind dumps, inclusive.txt, exclusive.txt
# per request, calling-tree.txt, idle-exclusive.txt)
# or bench/out/perf-<timestamp>-<pid>/summary.txt. Needs valgrind (callgrind_control, callgrind_annotate), nginx,
# python3; `perf` for the second mode.
#
# Ir per request = (Ir while serving the requests − Ir of an idle stretch as long) ÷ requests, on the event
# loop's thread, which serves every request; the idle stretch takes out what the loop does anyway (timers, the
# loop's share of the snapshot polls). The figure over all threads is printed too, but the polls' work on
# GRDB's threads follows the wall clock, and so how busy the machine was: it varies by some 10 % run to run.
set -Eeuo pipefail

MODE=${1:-callgrind}
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
PROXY_BIN=${OPENAI_PROXY_BIN:-$REPO/.build/release/openai-proxy}
REQUESTS=${CG_REQUESTS:-2000}
WARMUP=${CG_WARMUP:-200}
CONNECTIONS=${CG_CONNECTIONS:-1}
PERF_REQUESTS=${PERF_REQUESTS:-20000}
PERF_CONNECTIONS=${PERF_CONNECTIONS:-16}
PERF_DURATION=${PERF_DURATION:-10s}
USAGE=${CG_USAGE:-off}
# random, not round_robin: a round-robin worker leases cursor positions in blocks sized to its rate, and under
# valgrind (some 30 requests a second) that is a database write for every request, which at real rates happens
# some 20 times a second in all. random picks without the database, as round_robin does between leases.
STRATEGY=${CG_STRATEGY:-random}
TOP=${CG_TOP:-40}
NGINX=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}

say() { printf '%s\n' "$*" >&2; }
die() { say "callgrind-worker: error: $*"; exit 1; }

case $MODE in
    callgrind) command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
        die "valgrind is not installed (apt-get install valgrind)" ;;
    perf) command -v perf >/dev/null || die "perf is not installed (apt-get install linux-perf)" ;;
    *) die "mode must be callgrind or perf, got '$MODE'" ;;
esac
[[ -x $PROXY_BIN ]] || die "openai-proxy binary not found at $PROXY_BIN (swift build -c release, or set OPENAI_PROXY_BIN)"
[[ -x $NGINX ]] || die "nginx is not installed at $NGINX (apt-get install nginx, or set NGINX_BIN)"

# The worker reads its whole configuration from the environment: start from a clean slate.
for variable in $(env | grep -o '^OPENAI_[A-Z_]*' || true); do unset "$variable"; done
unset KEY_ROTATION_STRATEGY SECRET_KEY LOG_LEVEL LOG_FORMAT LISTEN_FDS

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$BENCH_DIR/out/$MODE-$STAMP-$$
mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/openai-proxy-callgrind.XXXXXX")
PIDS=()
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    ((rc == 0)) || { find "$TMP" -name '*.log' -exec cp {} "$OUT/" \; 2>/dev/null; say "logs copied to $OUT"; }
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r P_UP P_PROXY < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')

# --------------------------------------------------------------------- the fake upstream (as bench/run.sh)
# shellcheck source=lib/fake_upstream.sh
. "$BENCH_DIR/lib/fake_upstream.sh"
mkdir -p "$TMP/upstream" "$TMP/data"
fake_upstream_conf "$TMP/upstream" "$P_UP"
"$NGINX" -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf" -e "$TMP/upstream/error.log" \
    >"$TMP/upstream/stdout.log" 2>&1 &
PIDS+=($!)

# ------------------------------------------------------------------- keys, token, and the worker alone
ENV=(OPENAI_PROXY_DATA_DIR="$TMP/data" OPENAI_API_BASE_URL="http://127.0.0.1:$P_UP/v1"
    KEY_ROTATION_STRATEGY="$STRATEGY" LOG_LEVEL=warning OPENAI_PROXY_USAGE="$USAGE"
    # As many workers as cores: each worker then runs one event loop, as in production and in bench/run.sh.
    OPENAI_PROXY_WORKERS="$(nproc)")
for i in 1 2 3; do
    env "${ENV[@]}" "$PROXY_BIN" keys add --name "bench-$i" --value "sk-bench-upstream-key-$i-0123456789abcdef" \
        >>"$TMP/keys.log" 2>&1 || die "keys add failed: $(tail -n 3 "$TMP/keys.log")"
done
env "${ENV[@]}" "$PROXY_BIN" tokens create --name bench >"$TMP/token.log" 2>&1 ||
    die "tokens create failed: $(tail -n 3 "$TMP/token.log")"
TOKEN=$(tail -n 1 "$TMP/token.log")
URL="http://127.0.0.1:$P_PROXY/v1/chat/completions"

RUNNER=()
WORKER_BIN=$PROXY_BIN
if [[ $MODE == callgrind ]]; then
    # Valgrind 3.19 gives up on the toolchain's DWARF 5 debug info; the symbol table is enough for functions.
    WORKER_BIN=$TMP/openai-proxy
    objcopy --strip-debug "$PROXY_BIN" "$WORKER_BIN" || die "objcopy --strip-debug failed (apt-get install binutils)"
    cc -shared -fPIC -O2 -o "$TMP/sigsuspend_copy.so" "$BENCH_DIR/lib/sigsuspend_copy.c" -ldl ||
        die "could not build bench/lib/sigsuspend_copy.c (needs cc)"
    # Deterministic hashing: dictionaries and sets then probe the same way every run.
    RUNNER=(env LD_PRELOAD="$TMP/sigsuspend_copy.so" SWIFT_DETERMINISTIC_HASHING=1)
    RUNNER+=(valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" --dump-instr=no
        --collect-jumps=no --trace-children=no --separate-threads=yes)
fi
# Binds the proxy port, hands it down as fd 3 (LISTEN_FDS=1), then becomes the worker: $! is the worker.
env "${ENV[@]}" LISTEN_FDS=1 python3 -c '
import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1024)
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.execvp(sys.argv[2], sys.argv[2:])' "$P_PROXY" "${RUNNER[@]}" "$WORKER_BIN" worker --index 0 >"$TMP/worker.log" 2>&1 &
WORKER=$!
PIDS=("$WORKER" "${PIDS[@]}")

# Sends $1 requests; prints how many were answered and the seconds they took; fails unless every answer is a 200.
load() {
    local started ended counts
    started=$(date +%s.%N)
    counts=$(python3 "$BENCH_DIR/lib/fixed_load.py" 127.0.0.1 "$P_PROXY" "$TOKEN" "$1" "$CONNECTIONS") || return 1
    ended=$(date +%s.%N)
    python3 -c 'import json, sys
r = json.loads(sys.argv[1])
print(r["ok"], f"{float(sys.argv[3]) - float(sys.argv[2]):.2f}")
sys.exit(r["ok"] != r["requests"])' "$counts" "$started" "$ended"
}

# Ready once a request is served (bounded: under valgrind the start takes a while).
deadline=$((SECONDS + 180))
until load 1 >/dev/null 2>&1; do
    kill -0 "$WORKER" 2>/dev/null || die "the worker exited: $(tail -n 5 "$TMP/worker.log")"
    ((SECONDS < deadline)) || die "the worker did not serve within 180 s: $(tail -n 5 "$TMP/worker.log")"
    sleep 1
done
say "callgrind-worker: worker $WORKER serving on $P_PROXY; warm-up: $WARMUP requests"
load "$WARMUP" >/dev/null || die "the warm-up failed"

{
    echo "binary: $PROXY_BIN (modified $(date -u -r "$PROXY_BIN" +%Y-%m-%dT%H:%MZ))"
    echo "repo: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (working tree modified)')"
    echo "usage: $USAGE; connections: $CONNECTIONS; warm-up: $WARMUP requests"
} >"$OUT/summary.txt"

if [[ $MODE == perf ]]; then
    # wrk drives the worker as hard as bench/run.sh does (the Python client tops out far below the worker, so
    # the worker would idle between requests and count wake-ups as their cost); without wrk, the fixed load.
    perf stat -e task-clock,instructions,context-switches -p "$WORKER" -o "$OUT/perf-stat.txt" &
    PERF=$!
    sleep 0.5
    if command -v wrk >/dev/null; then
        BENCH_TOKEN=$TOKEN wrk -t1 -c"$PERF_CONNECTIONS" -d"$PERF_DURATION" -s "$BENCH_DIR/lib/post.lua" "$URL" \
            >"$OUT/wrk.txt" 2>&1 || die "wrk failed: $(tail -n 3 "$OUT/wrk.txt")"
        served=$(sed -n 's/^ *\([0-9]*\) requests in \([0-9.]*\)s.*/\1/p' "$OUT/wrk.txt")
        elapsed=$(sed -n 's/^ *\([0-9]*\) requests in \([0-9.]*\)s.*/\2/p' "$OUT/wrk.txt")
        grep -q 'Non-2xx' "$OUT/wrk.txt" && die "wrk got error answers: $(grep Non-2xx "$OUT/wrk.txt")"
    else
        result=$(load "$PERF_REQUESTS") || die "the load failed"
        read -r served elapsed <<<"$result"
    fi
    kill -INT "$PERF"
    wait "$PERF" || true
    python3 - "$OUT/perf-stat.txt" "$served" "$elapsed" >>"$OUT/summary.txt" <<'PY'
import re, sys
path, served, elapsed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
text = open(path).read()
print(f"requests: {served} in {elapsed:.2f} s ({served / elapsed:.0f} req/s)")
clock = re.search(r"([\d.,]+)\s+msec task-clock", text)
if clock:
    print(f"task-clock per request: {float(clock.group(1).replace(',', '')) * 1000 / served:.1f} us")
ins = re.search(r"([\d,]+)\s+instructions", text)
print(f"instructions per request: {int(ins.group(1).replace(',', '')) // served}" if ins
      else "instructions per request: not supported on this machine (no hardware counters)")
cs = re.search(r"([\d,]+)\s+context-switches", text)
if cs:
    print(f"context switches per request: {int(cs.group(1).replace(',', '')) / served:.3f}")
PY
    cat "$OUT/summary.txt"
    exit 0
fi

# -------------------------------------------------------------------------------- callgrind: count, dump
callgrind_control -z "$WORKER" >/dev/null
result=$(load "$REQUESTS") || die "the load failed"
read -r served elapsed <<<"$result"
callgrind_control -d load "$WORKER" >/dev/null
# An idle stretch as long as the loaded one: what the worker spends without requests.
callgrind_control -z "$WORKER" >/dev/null
sleep "$elapsed"
callgrind_control -d idle "$WORKER" >/dev/null
kill -TERM "$WORKER"
wait "$WORKER" 2>/dev/null || true

total() { sed -n 's/^summary: *//p; s/^totals: *//p' "$1" | head -n 1 | cut -d' ' -f1; }
sum_totals() {
    local file sum=0
    for file in "$@"; do sum=$((sum + $(total "$file"))); done
    echo "$sum"
}
# One file per thread and dump (callgrind.out.<dump>-<thread>). The requests are served on the event loop's
# thread (usage off, random: nothing of theirs leaves it); the other threads run the periodic database polls
# (GRDB's queues), whose cost follows the wall clock, not the requests. The loop is the busiest thread by far.
LOOP_THREAD=""
best=0
for file in "$OUT"/callgrind.out.1-*; do
    ir=$(total "$file")
    if ((ir > best)); then best=$ir LOOP_THREAD=${file##*-}; fi
done
[[ -n $LOOP_THREAD ]] || die "no event-loop thread in the load dump"
LOAD_FILE=$OUT/callgrind.out.1-$LOOP_THREAD
IDLE_FILE=$OUT/callgrind.out.2-$LOOP_THREAD
LOAD_IR=$(total "$LOAD_FILE")
IDLE_IR=$(total "$IDLE_FILE")
LOAD_ALL=$(sum_totals "$OUT"/callgrind.out.1-*)
IDLE_ALL=$(sum_totals "$OUT"/callgrind.out.2-*)
{
    echo "requests: $served in $elapsed s under valgrind"
    echo "event-loop thread: Ir while serving $LOAD_IR; idle stretch as long $IDLE_IR"
    echo "all threads: Ir while serving $LOAD_ALL; idle stretch as long $IDLE_ALL"
    echo "Ir per request, all threads: $(((LOAD_ALL - IDLE_ALL) / served))"
    echo "Ir per request, event-loop thread (the request path; the figure to compare): $(((LOAD_IR - IDLE_IR) / served))"
} >>"$OUT/summary.txt"

DEMANGLE=(cat)
command -v swift >/dev/null 2>&1 && swift demangle --simplified </dev/null >/dev/null 2>&1 &&
    DEMANGLE=(swift demangle --simplified)
# Whole listings first (a `head` in the pipe would stop the annotator with SIGPIPE), then their tops.
callgrind_annotate --inclusive=yes --threshold=100 "$LOAD_FILE" >"$TMP/inclusive.raw" 2>&1 || true
"${DEMANGLE[@]}" <"$TMP/inclusive.raw" >"$TMP/inclusive.txt" || cp "$TMP/inclusive.raw" "$TMP/inclusive.txt"
head -n $((TOP + 25)) "$TMP/inclusive.txt" >"$OUT/inclusive.txt"
callgrind_annotate --inclusive=yes --tree=calling --threshold=100 "$LOAD_FILE" >"$TMP/calling.raw" 2>&1 || true
"${DEMANGLE[@]}" <"$TMP/calling.raw" >"$OUT/calling-tree.txt" || cp "$TMP/calling.raw" "$OUT/calling-tree.txt"
# Self cost from our own reader (callgrind_annotate's exclusive listing miscounts calls under way at zeroing).
python3 "$BENCH_DIR/lib/callgrind_self.py" "$LOAD_FILE" "$TOP" "$served" | "${DEMANGLE[@]}" >"$OUT/exclusive.txt"
python3 "$BENCH_DIR/lib/callgrind_self.py" "$IDLE_FILE" "$TOP" | "${DEMANGLE[@]}" >"$OUT/idle-exclusive.txt"
cat "$OUT/summary.txt"
say "callgrind-worker: top functions in $OUT/inclusive.txt and $OUT/exclusive.txt"

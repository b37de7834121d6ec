#!/usr/bin/env bash
# What the usage path costs, counted in instructions (valgrind's callgrind), not in time: repeatable on a busy
# machine where CPU time per request moves by ±10 % from run to run. For each mode (on, off, on:SETTING) it runs
# the collector and 2 workers (3 keys, the bench's fake upstream: nginx answering one fixed chat.completion) and
# counts one side at a time under callgrind, nothing while starting and warming up: the workers over a fixed
# number of paced requests (bench/lib/fixed_load.py), then the collector while wrk drives plain workers, until
# every row is stored. From each count it subtracts the same processes' count over an idle window as long
# (callgrind slows them about 50-fold, so their clock-driven timers weigh that much more), and prints
# instructions per request per side, their sum, and on ÷ off (issue 13's goal: at most 1.15). User-space
# instructions only: the kernel's share (socket work) is in neither side. See bench/README.md.
#
# bench/usage_instructions.sh                       # .build/release/openai-proxy, 2000 requests at 50/s, 16 connections
# OPENAI_PROXY_BIN=… USAGE_REQUESTS=2000 USAGE_COLLECTOR_SECONDS=10 USAGE_MODES="on:metadata on off" bench/usage_instructions.sh
# Any other OPENAI_PROXY_* variable set in the environment (OPENAI_PROXY_CHAT_HISTORY=metadata …) is passed on.
# Needs valgrind (callgrind_control), binutils (objcopy), a C compiler, nginx, wrk, curl, python3. About 4 minutes a mode.
set -Eeuo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
PROXY_BIN=${OPENAI_PROXY_BIN:-$REPO/.build/release/openai-proxy}
REQUESTS=${USAGE_REQUESTS:-2000}
# The workers' requests are paced: their timers (database polls) run by the clock, so the same pace gives usage on
# and off the same window and the same timer work, whatever else the machine does; callgrind keeps up with 50/s.
RATE=${USAGE_RATE:-50}
CONNECTIONS=${USAGE_CONNECTIONS:-16}
WARMUP=${USAGE_WARMUP:-300}
COLLECTOR_SECONDS=${USAGE_COLLECTOR_SECONDS:-10}s
MODES=${USAGE_MODES:-on off}
NGINX=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}

say() { printf '%s\n' "$*" >&2; }
die() { say "usage_instructions: error: $*"; exit 1; }
command -v callgrind_control >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
[[ -x $NGINX ]] || die "nginx is not installed at $NGINX"
[[ -x $PROXY_BIN ]] || die "openai-proxy binary not found at $PROXY_BIN"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/openai-proxy-usage-instr.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ ${BENCH_KEEP_TMP:-0} == 1 ]] && say "temp dir kept: $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

read -r P_UP P_OP P_ADMIN < <(python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')

wait_port() {  # wait_port PORT PID: until 127.0.0.1:PORT accepts (at most 300 s: callgrind starts slowly)
    local deadline=$((SECONDS + 300))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        kill -0 "$2" 2>/dev/null || die "process $2 exited during start-up (logs in $TMP)"
        ((SECONDS < deadline)) || die "nothing listened on port $1 within 300 s"
        sleep 0.2
    done
}

# Without its DWARF 5 debug information, which valgrind 3.19 cannot read (it gives up on the binary); the symbol
# table stays, so a profile still names functions.
objcopy --strip-debug "$PROXY_BIN" "$TMP/openai-proxy" || die "could not copy $PROXY_BIN"
cc -shared -fPIC -O2 -o "$TMP/sigsuspend_copy.so" "$BENCH_DIR/lib/sigsuspend_copy.c" -ldl ||
    die "could not build bench/lib/sigsuspend_copy.c (needs a C compiler)"
mkdir -p "$TMP/upstream"
# shellcheck source=lib/fake_upstream.sh
. "$BENCH_DIR/lib/fake_upstream.sh"
fake_upstream_conf "$TMP/upstream" "$P_UP"
"$NGINX" -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf" -e "$TMP/upstream/error.log" >"$TMP/upstream/out.log" 2>&1 &
PIDS+=($!)
wait_port "$P_UP" "${PIDS[-1]}"

# total_of PID: instructions counted by PID's callgrind since counting was switched on (dumped now).
total_of() {
    callgrind_control -d "$1" >/dev/null 2>&1
    local file
    file=$(ls -t "$TMP/$MODE"/cg.out."$1".* 2>/dev/null | head -n 1)
    [[ -n $file ]] || die "no callgrind dump for pid $1"
    awk '/^(summary|totals):/ { print $2; exit }' "$file"
}

# logged_rows: rows in the request log now.
logged_rows() {
    python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM usage_log").fetchone()[0])' \
        "$TMP/$MODE/openai_proxy.db"
}

# count_window REQUESTS|idle:SECONDS: switches counting on in the workers and the collector, runs the load (or
# waits), and prints "role instructions" per process.
count_window() {
    local what=$1 pid role
    for pid in "${ROLE_PIDS[@]}"; do callgrind_control -z "$pid" >/dev/null 2>&1; callgrind_control -i on "$pid" >/dev/null 2>&1; done
    local started=$EPOCHREALTIME before
    if [[ $what == idle:* ]]; then sleep "${what#idle:}"; else
        before=$(logged_rows)
        if [[ $what == wrk:* ]]; then
            BENCH_TOKEN=$TOKEN wrk -t2 -c"$CONNECTIONS" -d"${what#wrk:}" -s "$BENCH_DIR/lib/post.lua" \
                "http://127.0.0.1:$P_OP/v1/chat/completions" >"$TMP/$MODE/wrk.txt"
            what=$(sed -n 's/^WRK_JSON .*"requests":\([0-9]*\).*"err_status":\([0-9]*\).*/\1 \2/p' "$TMP/$MODE/wrk.txt")
            [[ ${what#* } == 0 ]] || die "some requests failed: $(cat "$TMP/$MODE/wrk.txt")"
            what=${what% *}
            echo "{\"requests\": $what, \"ok\": $what, \"other\": 0}" >"$TMP/$MODE/load.json"
        else
            python3 "$BENCH_DIR/lib/fixed_load.py" 127.0.0.1 "$P_OP" "$TOKEN" "$what" "$CONNECTIONS" "$RATE" \
                >"$TMP/$MODE/load.json"
        fi
        COMPLETED=$what
        # The window ends once the collector has stored every row of it, so that none is left for the idle one.
        if [[ $MODE == on* ]]; then
            local deadline=$((SECONDS + 300))
            while (($(logged_rows) < before + what)); do
                ((SECONDS < deadline)) || die "the collector did not store the load's rows within 300 s"
                sleep 0.2
            done
        fi
    fi
    # The window's length: the idle window is made as long as the load's.
    WINDOW=$(python3 -c "print(f'{$EPOCHREALTIME - $started:.3f}')")
    for pid in "${ROLE_PIDS[@]}"; do
        role=${ROLE_NAME[$pid]}
        echo "$role $(total_of "$pid")"
        callgrind_control -i off "$pid" >/dev/null 2>&1
    done
}

RESULTS=$TMP/results.txt
: >"$RESULTS"
for MODE in $MODES; do
    DATA=$TMP/$MODE
    mkdir -p "$DATA"
    # `random`: round_robin leases cursor positions in blocks sized to the request rate, which callgrind slows
    # 50-fold and differently with usage on and off, so its database writes per request would differ between the
    # two (one per request here, a few per thousand at full speed): not the usage path's cost. cursor-bench
    # (bench/run.sh) measures the cursor.
    ENV=(OPENAI_PROXY_DATA_DIR="$DATA" OPENAI_PROXY_WORKERS=2 LOG_LEVEL=warning KEY_ROTATION_STRATEGY=random
        OPENAI_PROXY_LISTEN="127.0.0.1:$P_OP" OPENAI_PROXY_ADMIN_LISTEN="127.0.0.1:$P_ADMIN"
        OPENAI_API_BASE_URL="http://127.0.0.1:$P_UP/v1" OPENAI_PROXY_DRAIN_TIMEOUT=5s)
    [[ $MODE == off ]] && ENV+=(OPENAI_PROXY_USAGE=off)
    # on:SETTING: usage on with OPENAI_PROXY_CHAT_HISTORY=SETTING (on:metadata was the default before it was off).
    [[ $MODE == on:* ]] && ENV+=(OPENAI_PROXY_CHAT_HISTORY="${MODE#on:}")
    for i in 1 2 3; do
        env "${ENV[@]}" "$TMP/openai-proxy" keys add --name "bench-$i" --value "sk-bench-upstream-key-$i-0123456789abcdef" \
            >"$DATA/keys.log" 2>&1 || die "keys add failed: $(tail -n 3 "$DATA/keys.log")"
    done
    env "${ENV[@]}" "$TMP/openai-proxy" tokens create --name bench >"$DATA/token.log" 2>&1 || die "tokens create failed"
    TOKEN=$(tail -n 1 "$DATA/token.log")
    # Counted one side at a time, the other running at full speed: the workers under callgrind with the collector
    # plain, then the collector under callgrind fed by plain workers, so that it commits batches of the size it
    # does under real load (the workers slowed 50-fold would hand it a few rows per commit).
    for PHASE in worker collector; do
        # The collector's share at the rate of real load (wrk), so that its commits hold as many rows as they do then.
        if [[ $PHASE == worker ]]; then count=$REQUESTS; else count=wrk:$COLLECTOR_SECONDS; fi
        say "usage $MODE: starting the collector and 2 workers, the ${PHASE}s under callgrind"
        rm -f "$DATA/roles"
        env "${ENV[@]}" LD_PRELOAD="$TMP/sigsuspend_copy.so" SPAWN_WRAPPED=$PHASE python3 "$BENCH_DIR/lib/spawn_roles.py" \
            "$P_OP" 2 "$DATA/roles" -- valgrind --tool=callgrind --instr-atstart=no \
            --callgrind-out-file="$DATA/cg.out.%p" "$TMP/openai-proxy" >"$DATA/$PHASE.log" 2>&1 &
        LAUNCHER=$!
        PIDS+=("$LAUNCHER")
        deadline=$((SECONDS + 300))
        # Serving once a request is answered 200 (the socket accepts from the start: the launcher listens).
        until curl -fsS -o /dev/null --max-time 20 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
            -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' \
            "http://127.0.0.1:$P_OP/v1/chat/completions" 2>/dev/null && (($(cat "$DATA/roles" 2>/dev/null | wc -l) >= 3)); do
            kill -0 "$LAUNCHER" 2>/dev/null || die "the processes exited during start-up: $(tail -n 5 "$DATA/$PHASE.log")"
            ((SECONDS < deadline)) || die "openai-proxy did not answer within 300 s"
            sleep 1
        done
        declare -A ROLE_NAME=()
        ROLE_PIDS=()
        while read -r role pid; do
            [[ $role == "$PHASE"* ]] || continue
            ROLE_NAME[$pid]=$role
            ROLE_PIDS+=("$pid")
        done <"$DATA/roles"
        say "usage $MODE: counting ${ROLE_PIDS[*]}; warming up with $WARMUP requests"
        python3 "$BENCH_DIR/lib/fixed_load.py" 127.0.0.1 "$P_OP" "$TOKEN" "$WARMUP" "$CONNECTIONS" >/dev/null
        sleep 2
        count_window "$count" >"$DATA/load.counts"
        load_window=$WINDOW
        grep -q '"other": 0' "$DATA/load.json" || die "some requests failed: $(cat "$DATA/load.json")"
        say "usage $MODE: $(cat "$DATA/load.json") in ${load_window}s; counting as long idle"
        count_window "idle:$load_window" >"$DATA/idle.counts"
        sed "s/^/$MODE $COMPLETED load $load_window /" "$DATA/load.counts" >>"$RESULTS"
        sed "s/^/$MODE $COMPLETED idle $WINDOW /" "$DATA/idle.counts" >>"$RESULTS"
        kill -TERM "$LAUNCHER"
        wait "$LAUNCHER" 2>/dev/null || true
    done
done

python3 - "$RESULTS" <<'PY'
import collections, sys
seconds, counts, requests = {}, collections.defaultdict(int), {}
for line in open(sys.argv[1]):
    mode, count, window, length, role, instructions = line.split()
    role = role.split("-")[0]
    seconds[(mode, role, window)] = float(length)
    requests[(mode, role)] = int(count)
    counts[(mode, role, window)] += int(instructions)
print("instructions per request (workers summed), net: counted while loaded less the same processes' count over an")
print("idle window as long (callgrind's 50-fold slowdown makes timers weigh that much more)")
print()
print("| usage | workers | collector | sum | workers loaded / idle | collector loaded / idle | requests (worker, collector) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
sums = {}
for mode in dict.fromkeys(m for m, _, _ in seconds):
    net, raw = {}, {}
    for role in ("worker", "collector"):
        n = requests[(mode, role)]
        scale = seconds[(mode, role, "load")] / seconds[(mode, role, "idle")]
        loaded, idle = counts[(mode, role, "load")], counts[(mode, role, "idle")] * scale
        net[role] = (loaded - idle) / n
        raw[role] = f"{loaded / n:,.0f} / {idle / n:,.0f}"
    sums[mode] = net["worker"] + net["collector"]
    print(f"| {mode} | {net['worker']:,.0f} | {net['collector']:,.0f} | {sums[mode]:,.0f} | {raw['worker']} "
          f"| {raw['collector']} | {requests[(mode, 'worker')]}, {requests[(mode, 'collector')]} |")
for mode in sums:
    if mode.startswith("on") and "off" in sums:
        print(f"usage {mode} ÷ off (sums): {sums[mode] / sums['off']:.3f}")
PY

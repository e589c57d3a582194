#!/usr/bin/env bash
# LL-HLS origin load benchmark: ferrocast under N concurrent low-latency clients, and
# part requests/s from ferrocast beside nginx serving the same bytes from a file.
#
# One ffmpeg publisher pushes a live 720p30 test pattern (x264 zerolatency, GOP 2 s) to
# ferrocast. Then, for each N in $NS:
#   1. llhls: N clients (examples/llhls_load.rs, one keep-alive connection each), each a
#      blocking playlist reload for the hinted part then a GET of that part, in a loop:
#      requests/s, the delay from part availability to response complete (p50/p99; a
#      part is available from the first time any client got a playlist listing it; see
#      the example's docs), and ferrocast's peak RSS;
#   2. parts: N connections GETting one part URL of ferrocast as fast as it answers, then
#      the same against nginx serving the same bytes from a file in a temp dir, with the
#      same tool and connection count: requests/s and response times.
# ferrocast's own `ferrocast_part_publish_delay_seconds` (last frame of a part received
# -> part servable) is printed from /metrics at the end. It prints figures; it is not a
# test and passes or fails nothing. Client and servers share this machine's cores.
#
# Environment:
#   DURATION=20          measured seconds per run (after the clients are connected)
#   NS="1000 5000 10000" client counts
#   BENCH_FERROCAST=PATH use this ferrocast binary instead of building target/release/
#                        (not FERROCAST_*: ferrocast rejects unknown FERROCAST_ variables)
#   KEEP_TMP=1           keep the temp dir (logs, nginx.conf, JSON results)
#
# Needs: ffmpeg, nginx (scripts/setup.sh installs both), curl, cargo; `ulimit -n` of at
# least max(NS) + 1000 (the script raises the soft limit to the hard one).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-20}
NS=${NS:-"1000 5000 10000"}

FC_HTTP=127.0.0.1:18480
FC_RTMP=127.0.0.1:18435
FC_ADMIN=127.0.0.1:18481
NGINX_PORT=18482
STREAM=live/bench

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ferrocast-origin-bench.XXXXXX")
PIDS=()

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}

# Stops a process, politely first, then for good (bounded: 3 s).
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in ffmpeg curl nginx; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (bash scripts/setup.sh installs it)"
done

max_n=0
for n in $NS; do
    [ "$n" -gt "$max_n" ] && max_n=$n
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# Per process: the load client holds N sockets, ferrocast and nginx N each as well.
need=$((max_n + 1000))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
    die "ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)); $need needed for N=$max_n: raise the hard limit"
fi

# --- build ----------------------------------------------------------------------------

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
log "building the load client (release)"
(cd "$ROOT" && cargo build --release --locked --quiet --example llhls_load) >&2 ||
    die "cargo build --release --example llhls_load failed"
LOAD="$ROOT/target/release/examples/llhls_load"
if [ -n "${BENCH_FERROCAST:-}" ]; then
    BIN=$BENCH_FERROCAST
else
    log "building ferrocast (release)"
    (cd "$ROOT" && cargo build --release --locked --quiet --bin ferrocast) >&2 ||
        die "cargo build --release failed"
    BIN="$ROOT/target/release/ferrocast"
fi

wait_http() {
    local url=$1 pid=$2 i
    for i in $(seq 200); do
        curl -fsS --max-time 1 -o /dev/null "$url" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# --- ferrocast and the publisher ------------------------------------------------------

printf '[http]\nmax_connections = %d\n' $((max_n + 1000)) >"$TMP/ferrocast.toml"
RUST_LOG=${RUST_LOG:-warn} "$BIN" serve --config "$TMP/ferrocast.toml" \
    --http "$FC_HTTP" --rtmp "$FC_RTMP" --admin "$FC_ADMIN" >"$TMP/ferrocast.log" 2>&1 &
FC_PID=$!
PIDS+=("$FC_PID")
wait_http "http://$FC_ADMIN/readyz" "$FC_PID" ||
    die "ferrocast did not become ready; log: $(tail -n 20 "$TMP/ferrocast.log")"

ffmpeg -hide_banner -nostdin -loglevel error \
    -re -f lavfi -i testsrc2=size=1280x720:rate=30 \
    -re -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -c:v libx264 -preset ultrafast -tune zerolatency -g 60 -pix_fmt yuv420p -b:v 3M \
    -c:a aac -ar 48000 -ac 2 -f flv "rtmp://$FC_RTMP/$STREAM" >"$TMP/ffmpeg.log" 2>&1 &
PIDS+=("$!")
MEDIA="http://$FC_HTTP/$STREAM/source/index.m3u8"
for i in $(seq 200); do
    curl -fsS --max-time 1 "$MEDIA" 2>/dev/null | grep -q '^#EXTINF' && break
    [ "$i" = 200 ] && die "no playlist at $MEDIA; logs: $(tail -n 5 "$TMP/ffmpeg.log" "$TMP/ferrocast.log")"
    sleep 0.1
done
sleep 4 # a few segments in the window

# The newest listed part, served by ferrocast and (copied to a file) by nginx; taken
# again before each N: with the default window (12 segments of 2 s) plus the 3 x TD a
# removed part stays downloadable, it outlives a run of up to ~25 s.
mkdir -p "$TMP/www" "$TMP/nginx"
# nginx started as root serves as `nobody`: the files must be readable by it.
chmod a+rx "$TMP" "$TMP/www"
PART="" PART_URL="" PART_BYTES=0
fresh_part() {
    PART=$(curl -fsS "$MEDIA" | sed -n 's/^#EXT-X-PART:.*URI="\([^"]*\)".*/\1/p' | tail -n 1)
    [ -n "$PART" ] || die "no EXT-X-PART in $MEDIA"
    PART_URL="http://$FC_HTTP/$STREAM/source/$PART"
    curl -fsS -o "$TMP/www/part.m4s.new" "$PART_URL"
    chmod a+r "$TMP/www/part.m4s.new"
    mv "$TMP/www/part.m4s.new" "$TMP/www/part.m4s"
    PART_BYTES=$(stat -c %s "$TMP/www/part.m4s")
}
fresh_part

cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes auto;
worker_rlimit_nofile $((max_n + 2000));
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections $((max_n + 1000)); multi_accept on; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 100000000;
    types { video/mp4 m4s; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $TMP/www;
        add_header Cache-Control "public, max-age=31536000, immutable";
        add_header Access-Control-Allow-Origin "*";
    }
}
EOF
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "http://127.0.0.1:$NGINX_PORT/part.m4s" "$NGINX_PID" ||
    die "nginx did not start; log: $(tail -n 20 "$TMP/nginx/error.log" "$TMP/nginx/stdout.log" 2>/dev/null)"
same_bytes() {
    cmp -s "$TMP/www/part.m4s" <(curl -fsS "http://127.0.0.1:$NGINX_PORT/part.m4s") &&
        cmp -s "$TMP/www/part.m4s" <(curl -fsS "$PART_URL") ||
        die "ferrocast and nginx do not serve the same bytes"
}
same_bytes

# --- runs -----------------------------------------------------------------------------

# Runs the load client; prints its JSON (also kept in $TMP).
load() {
    local name=$1
    shift
    "$LOAD" "$@" --duration "$DURATION" 2>>"$TMP/load.log" | tee "$TMP/$name.json"
}

# A field of a JSON object (jq when present, python3 otherwise).
field() {
    local json=$1 path=$2
    if command -v jq >/dev/null 2>&1; then
        printf '%s' "$json" | jq -r "$path // \"-\""
    else
        printf '%s' "$json" | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].lstrip(".").split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("-" if v is None else v)' "$path"
    fi
}

num() { awk -v v="$1" 'BEGIN { if (v == "-" || v == "") print "-"; else printf "%.1f", v }'; }
errs() { printf '%s' "$1" | grep -o '"errors":{[^}]*}' | sed 's/"errors"://'; }

printf '# origin load: %s s per run; %s cores, %s; one stream 720p30 3 Mbit/s, parts of ~%s bytes\n' \
    "$DURATION" "$(nproc)" "$(uname -sr)" "$PART_BYTES"
printf '# llhls: each client = blocking playlist reload + part GET; delay = response complete - part availability\n'
printf '%-7s %6s %9s %9s %9s %9s %9s %9s  %s\n' mode N 'req/s' 'pl p50ms' 'pl p99ms' 'pt p50ms' 'pt p99ms' 'RSS MiB' errors
ROWS=()
for n in $NS; do
    j=$(load "llhls-$n" llhls --url "$MEDIA" --clients "$n" --pid "$FC_PID")
    printf '%-7s %6s %9s %9s %9s %9s %9s %9s  %s\n' llhls "$n" \
        "$(num "$(field "$j" .requests_per_s)")" \
        "$(num "$(field "$j" .playlist_delay_ms.p50)")" "$(num "$(field "$j" .playlist_delay_ms.p99)")" \
        "$(num "$(field "$j" .part_delay_ms.p50)")" "$(num "$(field "$j" .part_delay_ms.p99)")" \
        "$(awk -v b="$(field "$j" .rss_max_bytes)" 'BEGIN { printf "%.1f", b / 1048576 }')" \
        "$(errs "$j")"
    fresh_part
    same_bytes
    for server in ferrocast nginx; do
        if [ "$server" = ferrocast ]; then
            url=$PART_URL pid=$FC_PID
        else
            url="http://127.0.0.1:$NGINX_PORT/part.m4s" pid=$NGINX_PID
        fi
        j=$(load "parts-$server-$n" parts --url "$url" --clients "$n" --pid "$pid")
        ROWS+=("$(printf '%-9s %6s %8s %10s %9s %9s %9s  %s' "$server" "$n" "$PART_BYTES" \
            "$(num "$(field "$j" .requests_per_s)")" "$(num "$(field "$j" .mbit_per_s)")" \
            "$(num "$(field "$j" .latency_ms.p50)")" "$(num "$(field "$j" .latency_ms.p99)")" \
            "$(errs "$j")")")
    done
done
printf '\n# part requests/s: N connections GETting one part (ferrocast: from memory; nginx: the same bytes from a file)\n'
printf '%-9s %6s %8s %10s %9s %9s %9s  %s\n' server N bytes 'req/s' 'Mbit/s' 'p50 ms' 'p99 ms' errors
printf '%s\n' "${ROWS[@]}"

printf '\n# ferrocast_part_publish_delay_seconds (last frame of a part received -> part servable)\n'
curl -fsS "http://$FC_ADMIN/metrics" | grep '^ferrocast_part_publish_delay_seconds' |
    grep -E '_(sum|count)|le="(0.005|0.01|0.025|0.05|0.1|\+Inf)"' || printf '(not found)\n'
printf '# ferrocast RSS after the runs: %s MiB\n' \
    "$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$FC_PID/status")"

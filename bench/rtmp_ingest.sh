#!/usr/bin/env bash
# RTMP ingest benchmark: ferrocast against nginx-rtmp as a reference.
#
# For each server and each N in $NS, N ffmpeg processes push the same pre-encoded
# 1080p30 6 Mbit/s H.264 + AAC file (`-re -stream_loop -1 -c copy`, so the pushers
# themselves cost little) for $DURATION seconds, while the script samples the server's
# CPU time (utime+stime from /proc, all threads; nginx: master + workers) and resident
# memory (VmRSS; nginx: summed). It prints a table of figures; it is not a test and
# passes or fails nothing.
#
# Environment:
#   DURATION=20          measured seconds per run
#   WARMUP=3             seconds between starting the pushers and measuring
#   NS="1 5 10 20"       concurrent publisher counts
#   SERVERS="ferrocast nginx"
#   BENCH_FERROCAST=PATH use this ferrocast binary instead of building target/release/
#                        (not FERROCAST_*: ferrocast rejects unknown FERROCAST_ variables)
#   KEEP_TMP=1           keep the temp dir (logs, nginx.conf) for inspection
#
# Needs: ffmpeg, nginx + libnginx-mod-rtmp (scripts/setup.sh installs them), curl, cargo.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
NS=${NS:-"1 5 10 20"}
SERVERS=${SERVERS:-"ferrocast nginx"}

FC_RTMP=127.0.0.1:19350
FC_ADMIN=127.0.0.1:18081
NGINX_PORT=19351

TICKS=$(getconf CLK_TCK)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ferrocast-bench.XXXXXX")
CACHE="$ROOT/target/bench"
INPUT="$CACHE/1080p30-6M-h264-aac.mp4"

SERVER_PID=""
PUSHERS=()

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}

# Stops a process group or process, politely first, then for good (bounded: 3 s).
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

stop_pushers() {
    local pid
    for pid in "${PUSHERS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PUSHERS[@]}"; do
        stop_pid "$pid"
    done
    PUSHERS=()
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        stop_pid "$SERVER_PID"
        SERVER_PID=""
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pushers
    stop_server
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

# --- input ----------------------------------------------------------------------------

make_input() {
    if [ -s "$INPUT" ]; then
        log "input: $INPUT (cached)"
        return
    fi
    mkdir -p "$CACHE"
    log "encoding input: 20 s 1080p30 H.264 6 Mbit/s CBR-ish, GOP 2 s, AAC 48 kHz"
    ffmpeg -hide_banner -loglevel error -y \
        -f lavfi -i testsrc2=size=1920x1080:rate=30 \
        -f lavfi -i sine=frequency=440:sample_rate=48000 \
        -t 20 -map 0:v -map 1:a \
        -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p \
        -b:v 6M -maxrate 6M -bufsize 12M -g 60 -keyint_min 60 -sc_threshold 0 \
        -c:a aac -b:a 128k -ac 2 \
        -movflags +faststart "$INPUT.part.mp4"
    mv "$INPUT.part.mp4" "$INPUT"
}

# --- process figures ------------------------------------------------------------------

# The PIDs a server's figures are summed over: the process and its direct children
# (nginx's workers; ferrocast has none, its threads are inside its own stat line).
server_pids() {
    local pid=$1
    printf '%s\n' "$pid"
    if [ -r "/proc/$pid/task/$pid/children" ]; then
        tr ' ' '\n' <"/proc/$pid/task/$pid/children" | grep -E '^[0-9]+$' || true
    else
        pgrep -P "$pid" || true
    fi
}

# Sum of utime+stime in clock ticks over the given PIDs.
cpu_ticks() {
    local pid total=0 stat rest f
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        # Field 2 (comm) may hold spaces: cut after the last ')'. Then utime and stime,
        # fields 14 and 15 of the whole line, are at indices 11 and 12 of the rest.
        rest=${stat##*) }
        read -r -a f <<<"$rest"
        total=$((total + f[11] + f[12]))
    done
    printf '%s\n' "$total"
}

# Sum of VmRSS in KiB over the given PIDs.
rss_kib() {
    local pid total=0 kib
    for pid in "$@"; do
        kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        total=$((total + ${kib:-0}))
    done
    printf '%s\n' "$total"
}

now_ns() { date +%s%N; }

# --- servers --------------------------------------------------------------------------

wait_tcp() {
    local addr=$1 host port i
    host=${addr%:*}
    port=${addr##*:}
    for i in $(seq 100); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

ferrocast_bin() {
    if [ -n "${BENCH_FERROCAST:-}" ]; then
        printf '%s\n' "$BENCH_FERROCAST"
        return
    fi
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    log "building ferrocast (release)"
    (cd "$ROOT" && cargo build --release --locked --quiet --bin ferrocast) >&2 ||
        die "cargo build --release failed"
    printf '%s\n' "$ROOT/target/release/ferrocast"
}

start_ferrocast() {
    local bin=$1
    # Only the listeners this benchmark uses, on ports of its own; open auth so that
    # every push key is accepted; logs to a file.
    FERROCAST_AUTH_MODE=open RUST_LOG=${RUST_LOG:-warn} \
        "$bin" serve --rtmp "$FC_RTMP" --admin "$FC_ADMIN" \
        >"$TMP/ferrocast.log" 2>&1 &
    SERVER_PID=$!
    if ! { wait_tcp "$FC_RTMP" && wait_tcp "$FC_ADMIN"; }; then
        die "ferrocast did not start listening on $FC_RTMP and $FC_ADMIN; log: $(tail -n 20 "$TMP/ferrocast.log")"
    fi
}

start_nginx() {
    local module=/usr/lib/nginx/modules/ngx_rtmp_module.so
    [ -e "$module" ] || die "$module not found: install libnginx-mod-rtmp"
    mkdir -p "$TMP/nginx"
    sed -e "s|@PREFIX@|$TMP/nginx|g" -e "s|@MODULE@|$module|g" -e "s|@PORT@|$NGINX_PORT|g" \
        "$ROOT/bench/nginx-rtmp.conf" >"$TMP/nginx/nginx.conf"
    nginx -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" \
        >"$TMP/nginx/stdout.log" 2>&1 &
    SERVER_PID=$!
    wait_tcp "127.0.0.1:$NGINX_PORT" ||
        die "nginx did not start listening on $NGINX_PORT; log: $(tail -n 20 "$TMP/nginx/error.log" "$TMP/nginx/stdout.log" 2>/dev/null)"
}

# Frames ferrocast has received, summed over all streams and tracks, and the number of
# streams it lists as live, from the admin API: "<frames> <streams>".
ferrocast_ingested() {
    local json
    json=$(curl -fsS --max-time 2 "http://$FC_ADMIN/api/v1/streams" 2>/dev/null) || {
        printf '? ?\n'
        return
    }
    printf '%s\n' "$json" | api_frames_and_streams
}

# Reads the /api/v1/streams JSON on stdin (an array of streams, each with tracks[]
# holding a frames counter) and prints "<frames> <streams>".
api_frames_and_streams() {
    if command -v jq >/dev/null 2>&1; then
        # An array of streams, each with tracks[].frames.
        jq -r '"\([.[].tracks[]?.frames // 0] | add // 0) \(length)"'
    else
        # Without jq: count the stream objects' "name" keys and add up the "frames" fields.
        # shellcheck disable=SC2020 # each of the five characters becomes a newline
        tr ',{}[]' '\n\n\n\n\n' | awk -F: '
            /"frames"/ { gsub(/[^0-9]/, "", $2); f += $2 }
            /"name"/   { s++ }
            END        { printf "%d %d\n", f, s }'
    fi
}

# --- runs -----------------------------------------------------------------------------

start_pushers() {
    local url_base=$1 n=$2 i
    for i in $(seq "$n"); do
        ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$INPUT" \
            -c copy -f flv "$url_base/b${n}_$i" \
            >"$TMP/push-$n-$i.log" 2>&1 &
        PUSHERS+=("$!")
    done
}

alive_pushers() {
    local pid alive=0
    for pid in "${PUSHERS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            alive=$((alive + 1))
        fi
    done
    printf '%s\n' "$alive"
}

# One measured run; prints a table row.
run_one() {
    local server=$1 url_base=$2 n=$3
    local pids t0 t1 c0 c1 rss peak=0 i alive ingest cpu

    start_pushers "$url_base" "$n"
    sleep "$WARMUP"
    mapfile -t pids < <(server_pids "$SERVER_PID")
    t0=$(now_ns)
    c0=$(cpu_ticks "${pids[@]}")
    for i in $(seq "$DURATION"); do
        sleep 1
        mapfile -t pids < <(server_pids "$SERVER_PID")
        rss=$(rss_kib "${pids[@]}")
        [ "$rss" -gt "$peak" ] && peak=$rss
    done
    c1=$(cpu_ticks "${pids[@]}")
    t1=$(now_ns)
    alive=$(alive_pushers)
    if [ "$server" = ferrocast ]; then
        ingest=$(ferrocast_ingested)
    else
        ingest="- -"
    fi
    stop_pushers

    # CPU% of one core = cpu seconds / wall seconds * 100.
    cpu=$(awk -v c=$((c1 - c0)) -v hz="$TICKS" -v ns=$((t1 - t0)) \
        'BEGIN { printf "%.1f", (c / hz) / (ns / 1e9) * 100 }')
    # shellcheck disable=SC2086
    printf '%-10s %4s %7s %9s %8s %12s %8s\n' "$server" "$n" "$alive/$n" "$cpu" \
        "$(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }')" $ingest
    if [ "$alive" -lt "$n" ]; then
        log "$server N=$n: $((n - alive)) pusher(s) exited early; see $TMP/push-$n-*.log (KEEP_TMP=1)"
    fi
}

make_input
BIN=""
for server in $SERVERS; do
    case $server in
    ferrocast) BIN=$(ferrocast_bin) ;;
    nginx) ;;
    *) die "unknown server '$server' (ferrocast, nginx)" ;;
    esac
done

printf '# rtmp ingest: %s s per run after %s s warm-up, input %s\n' "$DURATION" "$WARMUP" "$(basename "$INPUT")"
printf '# %s cores, %s; CPU%% is of one core; RSS is the peak over the run\n' "$(nproc)" "$(uname -sr)"
printf '%-10s %4s %7s %9s %8s %12s %8s\n' server N pushing 'CPU%' 'RSS MiB' frames streams
for server in $SERVERS; do
    for n in $NS; do
        case $server in
        ferrocast)
            start_ferrocast "$BIN"
            run_one ferrocast "rtmp://$FC_RTMP/live" "$n"
            ;;
        nginx)
            start_nginx
            run_one nginx "rtmp://127.0.0.1:$NGINX_PORT/live" "$n"
            ;;
        esac
        # A fresh server per run, so that RSS is not carried over from the last one.
        stop_server
    done
done

#!/usr/bin/env bash
# Packager benchmark: what packaging costs next to encoding the same frames.
#
# 1. Encodes a test source once (cached in target/bench): $RES at $FPS fps for $DURATION
#    seconds, H.264 High with B-frames (GOP 2 s) + 48 kHz stereo AAC, in FLV: what an
#    RTMP publisher sends.
# 2. Runs examples/packager_bench.rs pinned to one core: the FLV's tags go through the
#    real ingest path (FrameBuilder) untimed, then through packager::Program, timed
#    (best of $RUNS), with a counting allocator: frames/s, MB/s of fMP4 output, and
#    allocations per part.
# 3. Times x264 encoding the same frames on that core (libx264 -preset $PRESET
#    -threads 1 into -f null), and the lavfi source alone, whose cost is subtracted.
# Prints a table. It is a benchmark: it passes or fails nothing.
#
# Environment:
#   RES=1280x720 FPS=30 DURATION=30 RUNS=5 PRESET=veryfast CORE=0
#   KEEP_TMP=1   keep the temp dir
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RES=${RES:-1280x720}
FPS=${FPS:-30}
DURATION=${DURATION:-30}
RUNS=${RUNS:-5}
PRESET=${PRESET:-veryfast}
CORE=${CORE:-0}
CACHE="$ROOT/target/bench"
INPUT="$CACHE/packager-$RES-$FPS-${DURATION}s.flv"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ferrocast-packager-bench.XXXXXX")

log() { printf 'bench: %s\n' "$*" >&2; }
cleanup() { [[ -n ${KEEP_TMP:-} ]] || rm -rf "$TMP"; }
trap cleanup EXIT

for tool in ffmpeg cargo taskset; do
    command -v "$tool" >/dev/null || { log "needs $tool"; exit 1; }
done
PIN=(taskset -c "$CORE")

mkdir -p "$CACHE"
if [[ ! -s $INPUT ]]; then
    log "encoding the source ($RES, $FPS fps, $DURATION s) into $INPUT"
    ffmpeg -hide_banner -nostdin -loglevel error -y \
        -f lavfi -i "testsrc2=size=$RES:rate=$FPS" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000" \
        -t "$DURATION" -pix_fmt yuv420p -c:v libx264 -preset "$PRESET" -profile:v high \
        -bf 2 -g $((FPS * 2)) -c:a aac -ar 48000 -ac 2 -f flv "$INPUT.tmp"
    mv "$INPUT.tmp" "$INPUT"
fi

log "building the bench example (release)"
(cd "$ROOT" && cargo build --release --quiet --example packager_bench)
BIN="$ROOT/target/release/examples/packager_bench"

log "packaging on core $CORE (best of $RUNS)"
"${PIN[@]}" "$BIN" "$INPUT" --runs "$RUNS" >"$TMP/packager.txt"
get() { sed -n "s/^$1=//p" "$TMP/packager.txt"; }

# Seconds of CPU (user + sys) an ffmpeg command takes on the pinned core.
cpu_seconds() {
    local t
    t=$( { TIMEFORMAT='%U %S'; time "${PIN[@]}" ffmpeg -hide_banner -nostdin -loglevel error "$@" >/dev/null 2>&1; } 2>&1 )
    awk '{printf "%.3f", $1 + $2}' <<<"$t"
}

FRAMES=$((FPS * DURATION))
log "timing the lavfi source alone ($FRAMES frames)"
SRC_S=$(cpu_seconds -f lavfi -i "testsrc2=size=$RES:rate=$FPS" -frames:v "$FRAMES" \
    -pix_fmt yuv420p -f null -)
log "timing x264 -preset $PRESET -threads 1 on the same frames"
ENC_S=$(cpu_seconds -f lavfi -i "testsrc2=size=$RES:rate=$FPS" -frames:v "$FRAMES" \
    -pix_fmt yuv420p -c:v libx264 -preset "$PRESET" -profile:v high -bf 2 -g $((FPS * 2)) \
    -threads 1 -f null -)
X264_S=$(awk -v e="$ENC_S" -v s="$SRC_S" 'BEGIN { d = e - s; if (d < 0.001) d = 0.001; printf "%.3f", d }')

PKG_S=$(get seconds)
VFRAMES=$(get video_frames)
MEDIA_S=$DURATION

echo
echo "Packager vs x264 on one core: $RES, $FPS fps, ${DURATION} s of H.264 + AAC ($(get frames) frames, $VFRAMES video)"
echo
printf '%-34s %12s %14s %14s %16s\n' "stage" "seconds" "video fr/s" "x realtime" "cores/stream"
awk -v name="packager (FrameBuilder output in)" -v s="$PKG_S" -v f="$VFRAMES" -v m="$MEDIA_S" \
    'BEGIN { printf "%-34s %12.4f %14.0f %14.0f %16.5f\n", name, s, f / s, m / s, s / m }'
awk -v name="x264 $PRESET, 1 thread" -v s="$X264_S" -v f="$VFRAMES" -v m="$MEDIA_S" \
    'BEGIN { printf "%-34s %12.3f %14.1f %14.2f %16.3f\n", name, s, f / s, m / s, s / m }'
echo
awk -v p="$PKG_S" -v x="$X264_S" 'BEGIN { printf "packaging costs %.3f%% of encoding the same frames (x264 / packager = %.0fx)\n", 100 * p / x, x / p }'
echo
printf '%-30s %s\n' "packager frames/s (all tracks)" "$(get frames_per_s)"
printf '%-30s %s\n' "packager output MB/s" "$(get mb_per_s)"
printf '%-30s %s\n' "µs per frame" "$(get us_per_frame)"
printf '%-30s %s\n' "parts / segments" "$(get parts) / $(get segments)"
printf '%-30s %s\n' "allocations per part" "$(get allocs_per_part)"
printf '%-30s %s\n' "allocated bytes per part" "$(get alloc_bytes_per_part)"
printf '%-30s %s\n' "allocations per frame" "$(get allocs_per_frame)"
printf '%-30s %s\n' "µs per media playlist render" "$(get render_us_per_playlist)"
printf '%-30s %s\n' "lavfi source alone (s)" "$SRC_S (subtracted from x264's $ENC_S)"

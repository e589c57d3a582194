#!/usr/bin/env bash
# Transcode benchmark: the GStreamer ladder (x264 on the CPU) beside ffmpeg encoding the
# same ladder. Prints figures; passes or fails nothing.
#
# 1. latency: one ${LAT_HEIGHT:-720}p30 source published in real time through transcode::run
#    (720p by default: a ladder that is not real time on the machine measures its queue)
#    (examples/transcode_bench.rs): frame in -> rung frame out, p50/p99 per rung.
# 2. cpu: the same source as fast as the ladder takes it: CPU-seconds per media-second;
#    beside it ONE ffmpeg process encoding the same rungs (split + scale filters, libx264
#    -preset $PRESET -tune zerolatency, CBR at the same bitrates, GOP 2 s, no B-frames)
#    from the same pictures (the source written to an MP4 by gst-launch).
# 3. capacity: 1, 2, 3, ... concurrent real-time copies of a 1080p30 and a 720p30 source,
#    until the realtime ratio of the slowest rung drops below 1 (0.98 allows for the
#    start-up second).
#
# Environment: SECONDS_LONG=20 PRESET=veryfast MAX_COPIES=8 KEEP_TMP=1
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DUR=${SECONDS_LONG:-20}
PRESET=${PRESET:-veryfast}
MAX_COPIES=${MAX_COPIES:-8}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ferrocast-transcode-bench.XXXXXX")
log() { printf 'bench: %s\n' "$*" >&2; }
cleanup() { [[ -n ${KEEP_TMP:-} ]] || rm -rf "$TMP"; }
trap cleanup EXIT
for tool in ffmpeg gst-launch-1.0 cargo; do
    command -v "$tool" >/dev/null || { log "needs $tool"; exit 1; }
done

log "building the bench example (release)"
(cd "$ROOT" && cargo build --release --quiet -p transcode --example transcode_bench)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/transcode_bench"
get() { sed -n "s/^$1=//p" "$2"; }

echo "Transcode ladder benchmark ($(nproc) cores, x264 -preset $PRESET)"
echo

LAT_HEIGHT=${LAT_HEIGHT:-720}
log "latency, ${LAT_HEIGHT}p30, ${DUR} s in real time"
"$BIN" latency --height "$LAT_HEIGHT" --seconds "$DUR" --preset "$PRESET" >"$TMP/latency.txt"
echo "Latency the ladder adds (source frame published -> rung frame out), ${LAT_HEIGHT}p30 source:"
grep '^latency_ms_' "$TMP/latency.txt" | sed 's/^latency_ms_/  /; s/=/: /'
echo

log "cpu, 1080p30, ${DUR} s as fast as possible"
"$BIN" cpu --height 1080 --seconds "$DUR" --preset "$PRESET" >"$TMP/cpu.txt"
LADDER=$(get cpu_per_media_second "$TMP/cpu.txt")

log "ffmpeg, the same ladder"
N=$((DUR * 30))
gst-launch-1.0 -q videotestsrc pattern=ball num-buffers="$N" \
    ! video/x-raw,width=1920,height=1080,framerate=30/1,format=I420 \
    ! x264enc speed-preset=ultrafast key-int-max=60 bframes=0 bitrate=6480 \
    ! h264parse ! mp4mux ! filesink location="$TMP/src.mp4" >/dev/null
X264="-c:v libx264 -preset $PRESET -tune zerolatency -g 600 -sc_threshold 0 -bf 0 -force_key_frames expr:gte(t,n_forced*2)"
t=$( { TIMEFORMAT='%U %S'; time ffmpeg -hide_banner -nostdin -loglevel error -i "$TMP/src.mp4" \
    -filter_complex "[0:v]split=2[a][s];[s]scale=1280:720[b0];[b0]split=2[b][s2];[s2]scale=854:480[c0];[c0]split=2[c][s3];[s3]scale=640:360[d]" \
    -map "[a]" $X264 -b:v 5000k -maxrate 5000k -bufsize 5000k -f null - \
    -map "[b]" $X264 -b:v 2800k -maxrate 2800k -bufsize 2800k -f null - \
    -map "[c]" $X264 -profile:v main -b:v 1400k -maxrate 1400k -bufsize 1400k -f null - \
    -map "[d]" $X264 -profile:v main -b:v 800k -maxrate 800k -bufsize 800k -f null - ; } 2>&1 )
FFMPEG=$(awk -v d="$DUR" '{printf "%.3f", ($1 + $2) / d}' <<<"$t")
echo "CPU-seconds per media-second, 1080p30 -> 1080p/720p/480p/360p:"
printf '  %-44s %s\n' "ferrocast ladder (GStreamer, decode once)" "$LADDER"
printf '  %-44s %s\n' "ffmpeg, one process, split + scale cascade" "$FFMPEG"
echo

for h in 1080 720; do
    best=0
    for n in $(seq 1 "$MAX_COPIES"); do
        log "capacity ${h}p30: $n copies"
        "$BIN" capacity --height "$h" --seconds "$DUR" --copies "$n" --preset "$PRESET" >"$TMP/cap.txt"
        ratio=$(get realtime_ratio "$TMP/cap.txt")
        echo "  ${h}p30 x $n: realtime ratio $ratio"
        if awk -v r="$ratio" 'BEGIN { exit !(r < 0.98) }'; then break; fi
        best=$n
    done
    echo "Concurrent ${h}p30 sources transcoded in real time: $best"
done

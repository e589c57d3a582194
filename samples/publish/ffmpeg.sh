#!/usr/bin/env bash
# Push a live test pattern (H.264 + AAC) to ferrocast over RTMP with ffmpeg.
#
#   HOST=localhost PORT=1935 APP=live KEY=alice bash samples/publish/ffmpeg.sh
#
# DURATION=seconds stops after that long (default: until Ctrl-C). The settings match
# what the README recommends for OBS: keyframe every 2 s, no B-frame look-ahead
# (zerolatency), 48 kHz AAC.
set -euo pipefail
HOST=${HOST:-localhost}
PORT=${PORT:-1935}
APP=${APP:-live}
KEY=${KEY:-alice}
LIMIT=()
if [ -n "${DURATION:-}" ]; then
    LIMIT=(-t "$DURATION")
fi

exec ffmpeg -hide_banner -nostdin -re \
    -f lavfi -i testsrc2=size=1280x720:rate=30 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 \
    "${LIMIT[@]}" -map 0:v -map 1:a \
    -c:v libx264 -preset veryfast -tune zerolatency -profile:v high -pix_fmt yuv420p \
    -b:v 3000k -maxrate 3000k -bufsize 6000k -g 60 -keyint_min 60 -sc_threshold 0 \
    -c:a aac -b:a 128k -ar 48000 -ac 2 \
    -f flv "rtmp://$HOST:$PORT/$APP/$KEY"

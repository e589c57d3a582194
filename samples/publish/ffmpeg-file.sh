#!/usr/bin/env bash
# Push an existing file to ferrocast over RTMP without re-encoding, at its own pace.
#
#   HOST=localhost PORT=1935 APP=live KEY=alice bash samples/publish/ffmpeg-file.sh FILE
#
# FILE should hold H.264 video (keyframes every ~2 s play best) and AAC audio, e.g. an
# MP4 or FLV. LOOP=1 repeats it forever.
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: [HOST=..] [KEY=..] [LOOP=1] $0 FILE" >&2
    exit 2
fi
HOST=${HOST:-localhost}
PORT=${PORT:-1935}
APP=${APP:-live}
KEY=${KEY:-alice}
LOOPS=()
if [ "${LOOP:-0}" = 1 ]; then
    LOOPS=(-stream_loop -1)
fi

exec ffmpeg -hide_banner -nostdin -re "${LOOPS[@]}" -i "$1" \
    -map 0:v:0 -map '0:a:0?' -c copy \
    -f flv "rtmp://$HOST:$PORT/$APP/$KEY"

#!/usr/bin/env bash
# Push a live test pattern (H.264 + AAC) to ferrocast over RTMP with GStreamer.
#
#   HOST=localhost PORT=1935 APP=live KEY=alice bash samples/publish/gst-launch.sh
#
# Needs gstreamer1.0-tools and the base, good, bad and ugly plugin sets (x264enc is in
# ugly; rtmp2sink, h264parse and voaacenc are in bad). Ctrl-C sends EOS and stops
# cleanly (-e).
set -euo pipefail
HOST=${HOST:-localhost}
PORT=${PORT:-1935}
APP=${APP:-live}
KEY=${KEY:-alice}

exec gst-launch-1.0 -e \
    videotestsrc is-live=true pattern=smpte \
    ! video/x-raw,width=1280,height=720,framerate=30/1 \
    ! videoconvert \
    ! x264enc tune=zerolatency speed-preset=veryfast bitrate=3000 key-int-max=60 \
    ! video/x-h264,profile=high \
    ! h264parse \
    ! queue \
    ! flvmux name=m streamable=true \
    ! rtmp2sink location="rtmp://$HOST:$PORT/$APP/$KEY" \
    audiotestsrc is-live=true wave=sine freq=440 \
    ! audio/x-raw,rate=48000,channels=2 \
    ! audioconvert \
    ! voaacenc bitrate=128000 \
    ! aacparse \
    ! queue \
    ! m.

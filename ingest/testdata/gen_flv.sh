#!/bin/sh
# Regenerates the FLV/HEVC vectors used by ingest/src/rtmp/frames_tests.rs
# (ffmpeg 5.1 with libx264 and the native aac encoder, x265 CLI 3.5).
set -eu
cd "$(dirname "$0")"
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=r=48000 -t 2 \
  -c:v libx264 -profile:v high -bf 2 -g 30 -crf 32 -c:a aac -ac 2 -f flv h264_aac.flv
# What an independent parser sees: per packet stream,pts,dts,flags (ms) ...
ffprobe -v error -show_entries packet=stream_index,pts,dts,flags -of csv=p=0 h264_aac.flv \
  > h264_aac.packets.csv
# ... and per decoded frame stream,key_frame.
ffprobe -v error -show_entries frame=stream_index,key_frame -of csv=p=0 h264_aac.flv \
  | awk -F, 'NF>=2{print $1","$2}' > h264_aac.frames.csv
tmp=$(mktemp -d)
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=320x240:rate=25 \
  -frames:v 10 -pix_fmt yuv420p -f rawvideo "$tmp/in.yuv"
x265 --input "$tmp/in.yuv" --input-res 320x240 --fps 25 --frames 10 --bframes 0 \
  --keyint 5 --aud --crf 35 --log-level error -o hevc_320x240.265
rm -r "$tmp"
# The MPEG-TS vector of ingest/src/mpegts/*_tests.rs and the ts_demux fuzz seed.
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=128x72:rate=25 \
  -f lavfi -i sine=sample_rate=48000 -c:v libx264 -g 10 -bf 2 -c:a aac -b:a 32k -t 0.8 \
  -f mpegts h264_aac.ts

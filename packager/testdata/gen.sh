#!/bin/sh
# Decoder configuration records used by packager/src/fmp4/tests_init.rs.
# Most are copies of media/testdata vectors (made by media/testdata/gen.sh with ffmpeg 5.1,
# libx264, libx265, libsvtav1 and the native aac encoder); the anamorphic H.264 one is
# made here. The ffprobe tests in packager/tests/fmp4_ffprobe.rs encode their own streams.
set -eu
cd "$(dirname "$0")"
for f in h264_high_1080p2997.avcc h264_baseline_720p30.avcc hevc_main10_720p50_sl.hvcc \
    av1_main10_642x362.av1c aac_lc_48000_mono.asc aac_lc_22050_stereo.asc; do
    cp "../../media/testdata/$f" .
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# 480x360 with a 4:3 sample aspect ratio (ffprobe: Main, level 21, DAR 16:9).
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=480x360:rate=25 \
    -frames:v 1 -vf setsar=4/3 -c:v libx264 -preset veryfast -profile:v main "$T/a.mp4"
../../media/testdata/extract.py record "$T/a.mp4" avcC h264_main_480x360_sar4x3.avcc

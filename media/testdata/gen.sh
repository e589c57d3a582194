#!/bin/sh
# Regenerates the bitstream test vectors in this directory (ffmpeg 5.1 with libx264,
# libx265, libaom, libsvtav1, aac; python3). Each video vector is one encoded frame; we
# keep only the decoder configuration record (from an MP4 ffmpeg wrote) and the Annex B
# parameter sets (from the same stream). ffprobe.txt records what ffprobe says about
# each source file: the expected values in the Rust tests come from it.
set -eu
cd "$(dirname "$0")"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ff="ffmpeg -hide_banner -loglevel error -y"
probe() {
    echo "== $1" >>ffprobe.txt
    ffprobe -v error -show_entries \
        stream=codec_name,profile,level,width,height,coded_width,coded_height,r_frame_rate,pix_fmt,field_order,sample_rate,channels \
        -of compact=nokey=0 "$2" >>ffprobe.txt
}
: >ffprobe.txt
# codecs.txt: the RFC 6381 string as GStreamer (gst_codec_utils_caps_get_mime_codec)
# and ffmpeg's DASH muxer write it, for the checks of Codec::rfc6381.
: >codecs.txt
gcc mime_codec.c -o "$T/mime_codec" $(pkg-config --cflags --libs gstreamer-pbutils-1.0)
codecs() {
    caps=$(gst-launch-1.0 -v filesrc location="$2" ! qtdemux ! fakesink 2>&1 |
        sed -n 's/.*fakesink0.GstPad:sink: caps = //p' | head -n 1)
    mkdir -p "$T/dash"
    $ff -i "$2" -c copy -f dash "$T/dash/o.mpd"
    dash=$(sed -n 's/.*codecs="\([^"]*\)".*/\1/p' "$T/dash/o.mpd" | head -n 1)
    rm -rf "$T/dash"
    echo "$1 gstreamer=$("$T/mime_codec" "$caps") ffmpeg-dash=$dash" >>codecs.txt
}

# name, size, rate, extra ffmpeg args
h264() {
    $ff -f lavfi -i "testsrc2=size=$2:rate=$3" -frames:v 1 -c:v libx264 -preset veryfast $4 "$T/$1.mp4"
    $ff -i "$T/$1.mp4" -c copy -bsf:v h264_mp4toannexb -f h264 "$T/$1.h264"
    probe "$1" "$T/$1.mp4"
    ./extract.py record "$T/$1.mp4" avcC "$1.avcc"
    codecs "$1" "$T/$1.mp4"
    ./extract.py ps h264 "$T/$1.h264" "$1.h264"
}
h265() {
    $ff -f lavfi -i "testsrc2=size=$2:rate=$3" -frames:v 1 -c:v libx265 -preset ultrafast $4 "$T/$1.mp4"
    $ff -i "$T/$1.mp4" -c copy -bsf:v hevc_mp4toannexb -f hevc "$T/$1.h265"
    probe "$1" "$T/$1.mp4"
    ./extract.py record "$T/$1.mp4" hvcC "$1.hvcc"
    codecs "$1" "$T/$1.mp4"
    ./extract.py ps h265 "$T/$1.h265" "$1.h265"
}
av1() {
    $ff -f lavfi -i "testsrc2=size=$2:rate=$3" -frames:v 1 $4 "$T/$1.mp4" 2>/dev/null
    probe "$1" "$T/$1.mp4"
    ./extract.py record "$T/$1.mp4" av1C "$1.av1c"
    codecs "$1" "$T/$1.mp4"
}

h264 h264_high_1080p2997 1920x1080 30000/1001 "-profile:v high"
h264 h264_baseline_720p30 1280x720 30 "-profile:v baseline"
h264 h264_interlaced_1080i 1920x1080 30000/1001 "-flags +ildct+ilme -x264-params interlaced=1"
h264 h264_444_cqm_642x362 642x362 25 "-pix_fmt yuv444p -x264-params cqm=jvt"
h264 h264_422_642x362 642x362 24000/1001 "-pix_fmt yuv422p"
# Custom (explicit) 4x4 and 8x8 scaling matrices in the SPS.
cqm4=$(python3 -c "print(','.join(str(6 + i * 3) for i in range(16)))")
cqm8=$(python3 -c "print(','.join(str(4 + (i * 7) % 60) for i in range(64)))")
h264 h264_custom_cqm_352x288 352x288 15 "-x264-params cqm4=$cqm4:cqm8=$cqm8"
h264 h264_high10_cqm_360p60 640x360 60 "-pix_fmt yuv420p10le -x264-params cqm=jvt"

# One small frame, whole: the MP4 sample and the Annex B stream ffmpeg makes of it.
$ff -f lavfi -i testsrc2=size=160x96:rate=10 -frames:v 1 -c:v libx264 -preset veryfast "$T/au.mp4"
$ff -i "$T/au.mp4" -c copy -bsf:v h264_mp4toannexb -f h264 h264_au_160x96.h264
./extract.py sample "$T/au.mp4" h264_au_160x96.sample
./extract.py record "$T/au.mp4" avcC h264_au_160x96.avcc

x265p="-x265-params log-level=error"
h265 hevc_main_1080p2997 1920x1080 30000/1001 "$x265p"
h265 hevc_main10_720p50_sl 1280x720 50 "-pix_fmt yuv420p10le $x265p:scaling-list=default"
h265 hevc_rext444_642x362 642x362 24 "-pix_fmt yuv444p $x265p"
h265 hevc_main_422_10_320x240 320x240 25 "-pix_fmt yuv422p10le $x265p"
# Explicit scaling_list_data() in the SPS, from an HM-format list file.
python3 - >"$T/sl.txt" <<'PY'
k = 0
for size, n in [("4X4", 16), ("8X8", 64), ("16X16", 64), ("32X32", 64)]:
    for mode in ["INTRA", "INTER"]:
        for c in ["LUMA", "CHROMAU", "CHROMAV"]:
            print(f"{mode}{size}_{c} =")
            vals = [str(8 + (i * 5 + k * 3) % 40) for i in range(n)]
            for i in range(0, n, 8):
                print(",".join(vals[i:i + 8]) + ",")
            if size in ("16X16", "32X32"):
                print(f"{mode}{size}_{c}_DC =")
                print(f"{10 + k},")
            k += 1
PY
h265 hevc_scaling_list_416x240 416x240 24000/1001 "$x265p:scaling-list=$T/sl.txt"
# Inter-RPS prediction and long-term refs spliced into an IDR-only stream's SPS; the
# spliced stream must decode to the same frame (same framemd5) for the vector to count.
./hevc_rps.py "$T/hevc_main_1080p2997.h265" "$T/rps.h265"
a=$($ff -i "$T/hevc_main_1080p2997.h265" -f framemd5 - | tail -n 1)
b=$($ff -i "$T/rps.h265" -f framemd5 - | tail -n 1)
[ "$a" = "$b" ] || { echo "RPS splice changed the decode" >&2; exit 1; }
probe hevc_rps_1080p2997 "$T/rps.h265"
./extract.py ps h265 "$T/rps.h265" hevc_rps_1080p2997.h265

av1 av1_main_720p30 1280x720 30 "-c:v libaom-av1 -cpu-used 8 -usage realtime"
av1 av1_main10_642x362 642x362 25 "-pix_fmt yuv420p10le -c:v libsvtav1"
av1 av1_high444_320x240 320x240 25 "-pix_fmt yuv444p -c:v libaom-av1 -cpu-used 8 -usage realtime"

# AAC: ADTS streams (first frames) and an MP4 esds AudioSpecificConfig.
$ff -f lavfi -i sine=frequency=440:sample_rate=44100 -ac 2 -t 0.1 -c:a aac -f adts aac_lc_44100_stereo.adts
probe aac_lc_44100_stereo aac_lc_44100_stereo.adts
$ff -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -af "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0" -t 0.1 -c:a aac -f adts aac_lc_48000_51.adts
probe aac_lc_48000_51 aac_lc_48000_51.adts
$ff -f lavfi -i sine=frequency=440:sample_rate=48000 -ac 1 -t 0.1 -c:a aac "$T/mono.mp4"
probe aac_lc_48000_mono "$T/mono.mp4"
./extract.py asc "$T/mono.mp4" aac_lc_48000_mono.asc
codecs aac_lc_48000_mono "$T/mono.mp4"
$ff -f lavfi -i sine=frequency=440:sample_rate=22050 -ac 2 -t 0.1 -c:a aac "$T/lc22.mp4"
probe aac_lc_22050_stereo "$T/lc22.mp4"
./extract.py asc "$T/lc22.mp4" aac_lc_22050_stereo.asc

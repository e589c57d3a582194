#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each; pass another number of
# seconds as $1). Needs a nightly toolchain and cargo-fuzz (libFuzzer instrumentation is
# nightly-only):
#   rustup toolchain install nightly
#   cargo install cargo-fuzz
# Not run in CI. Crashes land in fuzz/artifacts/<target>/; reproduce one with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
seconds="${1:-60}"

# Seed the chunk-stream corpus with the captured publishers' bytes after their
# handshake (1 + 2 * 1536 bytes), cut into pieces libFuzzer likes.
mkdir -p corpus/rtmp_chunk corpus/amf0 corpus/flv_tag corpus/ts_demux corpus/srt_streamid
for capture in ../ingest/testdata/*_publish.bin; do
    [ -f "$capture" ] || continue
    name="$(basename "$capture" .bin)"
    tail -c +3074 "$capture" | head -c 4096 > "corpus/rtmp_chunk/$name.head"
    # A leading 0x80 makes the target feed the session in two halves.
    { printf '\x80'; tail -c +3074 "$capture" | head -c 16384; } > "corpus/rtmp_chunk/$name.split"
done

# The MPEG-TS capture, whole (its first byte 0x47 feeds 71-byte pieces) and from its
# second packet.
cp ../ingest/testdata/h264_aac.ts corpus/ts_demux/h264_aac.ts
tail -c +189 ../ingest/testdata/h264_aac.ts > corpus/ts_demux/h264_aac.from2.ts

printf '#!::r=live/alice,m=publish' > corpus/srt_streamid/access_control
printf 'publish:live/alice' > corpus/srt_streamid/publish_prefix

for target in rtmp_chunk amf0 flv_tag ts_demux srt_streamid; do
    echo "== $target ($seconds s)"
    cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds"
done

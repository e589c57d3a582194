//! Tests of [`FrameBuilder`] with tags from real encoders (see `testdata/gen_flv.sh`).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use media::{Codec, DiscontinuityReason, Frame, StreamEvent};

use super::*;

const FLV: &[u8] = include_bytes!("../../testdata/h264_aac.flv");
const PACKETS_CSV: &str = include_str!("../../testdata/h264_aac.packets.csv");
const FRAMES_CSV: &str = include_str!("../../testdata/h264_aac.frames.csv");
const HEVC: &[u8] = include_bytes!("../../testdata/hevc_320x240.265");

const AUDIO: u8 = 8;
const VIDEO: u8 = 9;

/// One FLV file tag: type (8 audio, 9 video, 18 script), timestamp, body.
#[derive(Clone, Debug)]
struct Tag {
    kind: u8,
    ts: u32,
    body: Bytes,
}

/// Walks an FLV file's tags (header, then PreviousTagSize + tag, repeated).
fn flv_tags(file: &[u8]) -> Vec<Tag> {
    assert_eq!(&file[..3], b"FLV");
    let header = u32::from_be_bytes([file[5], file[6], file[7], file[8]]) as usize;
    let mut pos = header + 4; // skip PreviousTagSize0
    let mut tags = Vec::new();
    while pos + 11 <= file.len() {
        let kind = file[pos] & 0x1f;
        let size = u32::from_be_bytes([0, file[pos + 1], file[pos + 2], file[pos + 3]]) as usize;
        let ts = u32::from_be_bytes([file[pos + 7], file[pos + 4], file[pos + 5], file[pos + 6]]);
        let body = Bytes::copy_from_slice(&file[pos + 11..pos + 11 + size]);
        tags.push(Tag { kind, ts, body });
        pos += 11 + size + 4;
    }
    assert_eq!(pos, file.len(), "FLV walk ended off the end of the file");
    tags
}

/// ffprobe's view of the file: (stream, pts ms, dts ms, keyframe) per packet.
fn ffprobe_packets() -> Vec<(u32, i64, i64, bool)> {
    PACKETS_CSV
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].starts_with('K'),
            )
        })
        .collect()
}

/// ffprobe -show_frames: decoded frame count per stream.
fn ffprobe_frame_count(stream: u32) -> usize {
    FRAMES_CSV
        .lines()
        .filter(|l| l.split(',').next() == Some(&stream.to_string()))
        .count()
}

fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
}

/// Feeds tags (with timestamps mapped by `ts`) and collects every event.
fn feed(b: &mut FrameBuilder, tags: &[Tag], ts: impl Fn(usize, u32) -> u32) -> Vec<StreamEvent> {
    let mut events = Vec::new();
    for (i, tag) in tags.iter().enumerate() {
        let t = ts(i, tag.ts);
        let out = match tag.kind {
            VIDEO => b.video(t, &tag.body, at(u64::from(tag.ts))).unwrap(),
            AUDIO => b.audio(t, &tag.body, at(u64::from(tag.ts))).unwrap(),
            _ => continue,
        };
        events.extend(out);
    }
    events
}

fn frames(events: &[StreamEvent], track: u32) -> Vec<&Frame> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Frame(f) if f.track == track => Some(f),
            _ => None,
        })
        .collect()
}

/// Number of legacy AVC/AAC coded-frame tags (packet type 1).
fn coded_frames(tags: &[Tag]) -> usize {
    tags.iter()
        .filter(|t| matches!(t.kind, AUDIO | VIDEO) && t.body.get(1) == Some(&1))
        .count()
}

fn count_tracks_events(events: &[StreamEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Tracks(_)))
        .count()
}

/// NAL unit types (H.264: low 5 bits) of a 4-byte length-prefixed frame.
fn h264_nal_types(data: &[u8]) -> Vec<u8> {
    media::nal::iter_length_prefixed(data, 4)
        .map(|n| n.unwrap()[0] & 0x1f)
        .collect()
}

fn check_ffmpeg_stream(events: &[StreamEvent]) {
    // Exactly one Tracks, before every frame.
    assert_eq!(count_tracks_events(events), 1);
    let StreamEvent::Tracks(tracks) = &events[0] else {
        panic!("first event is not Tracks: {:?}", events[0]);
    };
    assert_eq!(tracks.len(), 2);
    assert_eq!(tracks[0].id, VIDEO_TRACK);
    assert_eq!(tracks[0].timescale, 90_000);
    match &tracks[0].codec {
        Codec::H264 {
            width,
            height,
            avcc,
            ..
        } => {
            assert_eq!((*width, *height), (640, 360));
            assert_eq!(avcc[4] & 0x03, 3, "avcC says 4-byte NAL lengths");
        }
        other => panic!("video codec {other:?}"),
    }
    let rfc = tracks[0].codec.rfc6381();
    assert!(rfc.to_lowercase().starts_with("avc1.64"), "{rfc}");
    assert_eq!(tracks[1].id, AUDIO_TRACK);
    assert_eq!(tracks[1].timescale, 48_000);
    assert_eq!(tracks[1].codec.audio(), Some((48_000, 2)));
    assert!(matches!(tracks[1].codec, Codec::Aac { .. }));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, StreamEvent::Discontinuity { .. }))
    );

    let probe = ffprobe_packets();
    let video = frames(events, VIDEO_TRACK);
    let audio = frames(events, AUDIO_TRACK);
    assert_eq!(video.len(), ffprobe_frame_count(0));
    assert_eq!(audio.len(), ffprobe_frame_count(1));
    let probe_video: Vec<_> = probe.iter().filter(|p| p.0 == 0).collect();
    let probe_audio: Vec<_> = probe.iter().filter(|p| p.0 == 1).collect();
    assert_eq!(video.len(), probe_video.len());
    assert_eq!(audio.len(), probe_audio.len());

    // The earliest first timestamp of the two tracks is zero.
    let base = probe_video[0].2.min(probe_audio[0].1);
    for (f, p) in video.iter().zip(&probe_video) {
        assert_eq!(f.dts, (p.2 - base) * 90, "dts of {p:?}");
        assert_eq!(f.pts, (p.1 - base) * 90, "pts of {p:?}");
        assert_eq!(f.keyframe, p.3, "keyframe flag of {p:?}");
        let types = h264_nal_types(&f.data);
        assert_eq!(f.keyframe, types.contains(&5), "IDR NAL in {types:?}");
        assert_eq!(f.received, at(p.2 as u64));
    }
    assert!(video.iter().any(|f| f.pts != f.dts), "B-frames reorder");
    assert!(video.windows(2).all(|w| w[0].dts < w[1].dts));
    assert!(video.iter().all(|f| f.pts >= f.dts));
    assert_eq!(video.iter().filter(|f| f.keyframe).count(), 2);

    assert_eq!(audio[0].pts, (probe_audio[0].1 - base) * 48);
    for w in audio.windows(2) {
        assert_eq!(w[1].pts - w[0].pts, 1024);
        assert_eq!(w[1].dts, w[1].pts);
    }
    for (f, p) in audio.iter().zip(&probe_audio) {
        // Within 1 ms of the rounded message clock.
        assert!(
            (f.pts - (p.1 - base) * 48).abs() <= 48,
            "{} vs {p:?}",
            f.pts
        );
        assert!(f.keyframe);
    }
}

#[test]
fn ffmpeg_h264_aac_with_metadata() {
    let tags = flv_tags(FLV);
    let mut b = FrameBuilder::new();
    b.expect(true, true);
    let events = feed(&mut b, &tags, |_, ts| ts);
    check_ffmpeg_stream(&events);
    assert_eq!(b.tracks().map(<[_]>::len), Some(2));
    assert!(b.finish().is_empty());
}

#[test]
fn ffmpeg_h264_aac_without_metadata() {
    let tags = flv_tags(FLV);
    let mut b = FrameBuilder::new();
    let events = feed(&mut b, &tags, |_, ts| ts);
    check_ffmpeg_stream(&events);
}

#[test]
fn tracks_sent_when_headers_complete() {
    let tags = flv_tags(FLV);
    let mut b = FrameBuilder::new();
    b.expect(true, true);
    let vseq = tags.iter().position(|t| t.kind == VIDEO).unwrap();
    let aseq = tags.iter().position(|t| t.kind == AUDIO).unwrap();
    let first = b.video(0, &tags[vseq].body, at(0)).unwrap();
    assert!(first.is_empty(), "audio header still missing: {first:?}");
    let second = b.audio(0, &tags[aseq].body, at(0)).unwrap();
    assert_eq!(count_tracks_events(&second), 1);
    // An identical repeat changes nothing.
    assert!(b.video(0, &tags[vseq].body, at(0)).unwrap().is_empty());
    assert!(b.audio(0, &tags[aseq].body, at(0)).unwrap().is_empty());
}

/// The 32-bit clock crosses 0xFFFFFFFF -> 0 mid-stream: times stay monotonic and equal
/// to the unshifted run.
#[test]
fn timestamps_unwrap_across_the_32_bit_wrap() {
    let tags = flv_tags(FLV);
    let reference = feed(&mut FrameBuilder::new(), &tags, |_, ts| ts);
    let start = u32::MAX - 700; // wraps about 0.7 s in
    let shifted = feed(&mut FrameBuilder::new(), &tags, |_, ts| {
        ts.wrapping_add(start)
    });
    assert!(tags.iter().any(|t| t.ts.wrapping_add(start) < 1000));
    assert_eq!(reference, shifted);
    let video = frames(&shifted, VIDEO_TRACK);
    assert!(video.windows(2).all(|w| w[0].dts < w[1].dts));
}

/// A stream that starts just before the wrap point, with its audio 54 ms ahead of
/// its video: the audio's first timestamp becomes zero and the video starts at 54 ms.
#[test]
fn rebase_uses_the_earliest_track() {
    let tags = flv_tags(FLV);
    let events = feed(&mut FrameBuilder::new(), &tags, |i, ts| {
        let shift = if tags[i].kind == AUDIO { 110 } else { 10 };
        ts.wrapping_sub(shift)
    });
    // Video ts 0 went out as 2^32 - 10, audio 46 as 2^32 - 64.
    let video = frames(&events, VIDEO_TRACK);
    let audio = frames(&events, AUDIO_TRACK);
    assert_eq!(audio[0].pts, 0);
    assert_eq!(video[0].dts, 54 * 90);
    assert!(video.iter().chain(audio.iter()).all(|f| f.dts >= 0));
    assert!(video.windows(2).all(|w| w[0].dts < w[1].dts));
    assert!(audio.windows(2).all(|w| w[1].pts - w[0].pts == 1024));
}

fn jump_test(delta: i64) {
    let tags = flv_tags(FLV);
    let cut = tags.len() / 2;
    let reference = feed(&mut FrameBuilder::new(), &tags, |_, ts| ts);
    let events = feed(&mut FrameBuilder::new(), &tags, |i, ts| {
        if i >= cut {
            (i64::from(ts) + delta) as u32
        } else {
            ts
        }
    });
    let jumps = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                StreamEvent::Discontinuity {
                    reason: DiscontinuityReason::TimestampJump
                }
            )
        })
        .count();
    assert_eq!(jumps, 1, "one discontinuity for a jump of {delta} ms");
    let video = frames(&events, VIDEO_TRACK);
    let audio = frames(&events, AUDIO_TRACK);
    assert_eq!(video.len(), frames(&reference, VIDEO_TRACK).len());
    assert!(video.windows(2).all(|w| w[0].dts < w[1].dts));
    assert!(audio.windows(2).all(|w| w[0].dts < w[1].dts));
    // After the jump both tracks moved by the same amount (within a frame), so A/V
    // sync holds: compare with the reference run.
    let ref_video = frames(&reference, VIDEO_TRACK);
    let ref_audio = frames(&reference, AUDIO_TRACK);
    let v_shift = video.last().unwrap().dts - ref_video.last().unwrap().dts;
    let a_shift = audio.last().unwrap().dts - ref_audio.last().unwrap().dts;
    let v_ms = v_shift / 90;
    let a_ms = a_shift / 48;
    assert!(
        v_ms.abs() <= 40,
        "video continued near where it was: {v_ms} ms"
    );
    assert!(
        (v_ms - a_ms).abs() <= 25,
        "A/V shift differs: {v_ms} vs {a_ms} ms"
    );
}

#[test]
fn forward_jump_is_a_discontinuity() {
    jump_test(10_000);
}

#[test]
fn backward_jump_is_a_discontinuity() {
    jump_test(-1_500);
}

#[test]
fn codec_change_sends_discontinuity_and_tracks() {
    let tags = flv_tags(FLV);
    let mut b = FrameBuilder::new();
    let mut events = feed(&mut b, &tags, |_, ts| ts);
    let (hvcc, aus) = hevc_stream(2);
    let last = tags.last().unwrap().ts;
    events.extend(
        b.video(last + 33, &hevc_sequence_start(&hvcc), at(0))
            .unwrap(),
    );
    let tail = &events[events.len() - 2..];
    assert_eq!(
        tail[0],
        StreamEvent::Discontinuity {
            reason: DiscontinuityReason::CodecChange
        }
    );
    let StreamEvent::Tracks(tracks) = &tail[1] else {
        panic!("expected Tracks, got {:?}", tail[1]);
    };
    assert_eq!(tracks.len(), 2);
    assert!(matches!(tracks[0].codec, Codec::H265 { .. }));
    assert!(matches!(tracks[1].codec, Codec::Aac { .. }));
    // The same header again: nothing.
    assert!(
        b.video(last + 33, &hevc_sequence_start(&hvcc), at(0))
            .unwrap()
            .is_empty()
    );
    let out = b
        .video(last + 33, &hevc_coded_frame(&aus[0], true, 1), at(0))
        .unwrap();
    assert!(matches!(&out[..], [StreamEvent::Frame(f)] if f.keyframe));
    // An H.264 frame now is a mismatch with the current configuration.
    let avc_frame = tags
        .iter()
        .rev()
        .find(|t| t.kind == VIDEO && t.body[1] == 1)
        .unwrap();
    assert!(b.video(last + 66, &avc_frame.body, at(0)).is_err());
}

/// Startup waits for every announced track, but only up to the bound.
#[test]
fn startup_buffer_is_bounded() {
    let tags: Vec<Tag> = flv_tags(FLV)
        .into_iter()
        .filter(|t| t.kind == VIDEO)
        .collect();
    let mut b = FrameBuilder::new();
    b.expect(true, true); // audio never comes
    let first = feed(&mut b, &tags, |_, ts| ts);
    assert!(first.is_empty(), "held back: under 2 s of video");
    let period = tags.last().unwrap().ts + 33;
    let second = feed(&mut b, &tags[1..], |_, ts| ts + period);
    assert_eq!(count_tracks_events(&second), 1);
    let StreamEvent::Tracks(tracks) = &second[0] else {
        panic!("Tracks first");
    };
    assert_eq!(tracks.len(), 1);
    // Everything fed came out, in order.
    let video = frames(&second, VIDEO_TRACK);
    assert_eq!(video.len(), 2 * coded_frames(&tags));
    assert!(video.windows(2).all(|w| w[0].dts < w[1].dts));

    // finish() releases what is held back when the publisher stops early.
    let mut b = FrameBuilder::new();
    b.expect(true, true);
    assert!(feed(&mut b, &tags[..10], |_, ts| ts).is_empty());
    let out = b.finish();
    assert_eq!(count_tracks_events(&out), 1);
    assert_eq!(frames(&out, VIDEO_TRACK).len(), 9);
}

/// An unsupported audio codec fails with UnsupportedCodec and is not waited for.
#[test]
fn unsupported_audio_is_ignorable() {
    let tags: Vec<Tag> = flv_tags(FLV)
        .into_iter()
        .filter(|t| t.kind == VIDEO)
        .collect();
    let mut b = FrameBuilder::new();
    b.expect(true, true);
    let mp3 = Bytes::from_static(&[0x2f, 0xff, 0xfb, 0x90, 0x00]);
    assert!(matches!(
        b.audio(0, &mp3, at(0)),
        Err(Error::UnsupportedCodec { kind: "audio", .. })
    ));
    let events = feed(&mut b, &tags, |_, ts| ts);
    assert_eq!(count_tracks_events(&events), 1);
    assert!(matches!(&events[0], StreamEvent::Tracks(t) if t.len() == 1));
    assert_eq!(frames(&events, VIDEO_TRACK).len(), coded_frames(&tags));
}

/// Rewrites an FLV AVC tag to 2-byte NAL lengths (and its avcC to say so).
fn to_two_byte_lengths(body: &Bytes) -> Bytes {
    let mut out = body[..5].to_vec();
    if body[1] == 0 {
        out.extend_from_slice(&body[5..]);
        out[5 + 4] = (out[5 + 4] & !0x03) | 0x01;
    } else {
        for nal in media::nal::iter_length_prefixed(&body[5..], 4) {
            let nal = nal.unwrap();
            out.extend_from_slice(&u16::try_from(nal.len()).unwrap().to_be_bytes());
            out.extend_from_slice(nal);
        }
    }
    Bytes::from(out)
}

#[test]
fn short_nal_lengths_are_rewritten_to_four_bytes() {
    let tags = flv_tags(FLV);
    let reference = feed(&mut FrameBuilder::new(), &tags, |_, ts| ts);
    let short: Vec<Tag> = tags
        .iter()
        .map(|t| Tag {
            body: if t.kind == VIDEO {
                to_two_byte_lengths(&t.body)
            } else {
                t.body.clone()
            },
            ..t.clone()
        })
        .collect();
    assert_ne!(short[1].body, tags[1].body);
    let events = feed(&mut FrameBuilder::new(), &short, |_, ts| ts);
    assert_eq!(events, reference);
}

/// HEVC access units from the x265 vector: (hvcC saying `length_size`-byte lengths,
/// AUs as NAL lists).
fn hevc_stream(length_size: u8) -> (Vec<u8>, Vec<Vec<Bytes>>) {
    let mut aus: Vec<Vec<Bytes>> = Vec::new();
    let (mut vps, mut sps, mut pps) = (None, None, None);
    for nal in media::nal::split_annexb(HEVC) {
        let kind = (nal[0] >> 1) & 0x3f;
        // An access unit delimiter starts an AU (x265 writes none before the first).
        if kind == 35 || aus.is_empty() {
            aus.push(Vec::new());
        }
        match kind {
            32 => vps = Some(Bytes::copy_from_slice(nal)),
            33 => sps = Some(Bytes::copy_from_slice(nal)),
            34 => pps = Some(Bytes::copy_from_slice(nal)),
            _ => {}
        }
        if let Some(au) = aus.last_mut() {
            au.push(Bytes::copy_from_slice(nal));
        }
    }
    let (vps, sps, pps) = (vps.unwrap(), sps.unwrap(), pps.unwrap());
    let mut config = media::h265::HevcConfig::from_parameter_sets(&[vps], &[sps], &[pps]).unwrap();
    config.nal_length_size = length_size;
    let hvcc = config.to_bytes().to_vec();
    assert_eq!(hvcc[21] & 0x03, length_size - 1);
    (hvcc, aus)
}

fn hevc_sequence_start(hvcc: &[u8]) -> Bytes {
    let mut tag = vec![0x90, b'h', b'v', b'c', b'1'];
    tag.extend_from_slice(hvcc);
    Bytes::from(tag)
}

/// An enhanced-RTMP hvc1 frame: CodedFrames (with SI24 0) or CodedFramesX.
fn hevc_coded_frame(au: &[Bytes], keyframe: bool, packet_type: u8) -> Bytes {
    let frame_type = if keyframe { 0x10 } else { 0x20 };
    let mut tag = vec![0x80 | frame_type | packet_type, b'h', b'v', b'c', b'1'];
    if packet_type == 1 {
        tag.extend_from_slice(&[0, 0, 0]);
    }
    for nal in au {
        tag.extend_from_slice(&u16::try_from(nal.len()).unwrap().to_be_bytes());
        tag.extend_from_slice(nal);
    }
    Bytes::from(tag)
}

fn is_hevc_irap(au: &[Bytes]) -> bool {
    au.iter().any(|n| (16..=21).contains(&((n[0] >> 1) & 0x3f)))
}

#[test]
fn enhanced_rtmp_hevc_from_x265() {
    let (hvcc, aus) = hevc_stream(2);
    assert_eq!(aus.len(), 10);
    let mut b = FrameBuilder::new();
    b.expect(true, false);
    let mut events = b.video(0, &hevc_sequence_start(&hvcc), at(0)).unwrap();
    for (i, au) in aus.iter().enumerate() {
        // Alternate CodedFrames and CodedFramesX.
        let tag = hevc_coded_frame(au, is_hevc_irap(au), if i % 2 == 0 { 1 } else { 3 });
        let ts = 1000 + 40 * i as u32;
        events.extend(b.video(ts, &tag, at(u64::from(ts))).unwrap());
    }
    let StreamEvent::Tracks(tracks) = &events[0] else {
        panic!("first event {:?}", events[0]);
    };
    assert_eq!(tracks.len(), 1);
    assert_eq!(tracks[0].timescale, 90_000);
    let Codec::H265 {
        width,
        height,
        hvcc: out_hvcc,
        ..
    } = &tracks[0].codec
    else {
        panic!("codec {:?}", tracks[0].codec);
    };
    assert_eq!((*width, *height), (320, 240));
    assert_eq!(out_hvcc[21] & 0x03, 3, "hvcC rewritten to 4-byte lengths");
    assert_eq!(out_hvcc[22..], hvcc[22..]);
    let rfc = tracks[0].codec.rfc6381();
    assert!(rfc.starts_with("hvc1.1."), "{rfc}");

    let video = frames(&events, VIDEO_TRACK);
    assert_eq!(video.len(), 10);
    for (i, (f, au)) in video.iter().zip(&aus).enumerate() {
        assert_eq!(f.dts, 40 * 90 * i as i64);
        assert_eq!(f.pts, f.dts);
        assert_eq!(f.keyframe, is_hevc_irap(au));
        let nals: Vec<&[u8]> = media::nal::iter_length_prefixed(&f.data, 4)
            .map(|n| n.unwrap())
            .collect();
        let expected: Vec<&[u8]> = au.iter().map(|n| &n[..]).collect();
        assert_eq!(nals, expected);
    }
    assert!(video[0].keyframe);
    assert!(video.iter().filter(|f| !f.keyframe).count() >= 5);
}

/// Every truncation of real tags fails or parses without panicking; truncations that
/// cut a header or a NAL unit fail.
#[test]
fn truncated_tags_fail_cleanly() {
    let tags = flv_tags(FLV);
    let vseq = tags.iter().find(|t| t.kind == VIDEO).unwrap();
    let aseq = tags.iter().find(|t| t.kind == AUDIO).unwrap();
    let vframe = tags.iter().filter(|t| t.kind == VIDEO).nth(3).unwrap();
    let aframe = tags.iter().filter(|t| t.kind == AUDIO).nth(3).unwrap();
    let configured = || {
        let mut b = FrameBuilder::new();
        b.video(0, &vseq.body, at(0)).unwrap();
        b.audio(0, &aseq.body, at(0)).unwrap();
        b
    };
    // avcC: header (5) + fixed part of the record (6) + the SPS length (2).
    for len in 0..13 {
        let cut = vseq.body.slice(..len);
        let r = FrameBuilder::new().video(0, &cut, at(0));
        assert!(
            len == 5 || r.is_err(),
            "avc sequence header cut at {len}: {r:?}"
        );
    }
    for len in 13..vseq.body.len() {
        let _ = FrameBuilder::new().video(0, &vseq.body.slice(..len), at(0));
    }
    // The coded frame: only cuts at NAL boundaries (or the empty frame) are valid.
    let mut boundaries = vec![5];
    for nal in media::nal::iter_length_prefixed(&vframe.body[5..], 4) {
        let nal = nal.unwrap();
        boundaries.push(nal.as_ptr() as usize - vframe.body.as_ptr() as usize + nal.len());
    }
    for len in 0..vframe.body.len() {
        let r = configured().video(40, &vframe.body.slice(..len), at(0));
        assert_eq!(
            r.is_ok(),
            boundaries.contains(&len),
            "frame cut at {len}: {r:?}"
        );
    }
    for len in 0..aseq.body.len() {
        let _ = FrameBuilder::new().audio(0, &aseq.body.slice(..len), at(0));
    }
    assert!(
        FrameBuilder::new()
            .audio(0, &aseq.body.slice(..1), at(0))
            .is_err()
    );
    for len in 0..aframe.body.len() {
        let r = configured().audio(40, &aframe.body.slice(..len), at(0));
        // Raw AAC has no framing to check; only the 2-byte header can be cut.
        assert_eq!(r.is_ok(), len != 1, "audio frame cut at {len}: {r:?}");
    }
}

#[test]
fn aac_frame_lengths() {
    // AAC-LC 48 kHz stereo: 1024 samples.
    assert_eq!(aac_frame_samples(&[0x11, 0x90], 48_000), Some(1024));
    // frameLengthFlag set: 960.
    assert_eq!(aac_frame_samples(&[0x11, 0x94], 48_000), Some(960));
    // Explicit HE-AAC (AOT 5), core 24 kHz, SBR 48 kHz, core AOT 2: 2048 at 48 kHz,
    // 1024 at the core rate.
    let he = [0x2b, 0x11, 0x88, 0x00];
    assert_eq!(aac_frame_samples(&he, 48_000), Some(2048));
    assert_eq!(aac_frame_samples(&he, 24_000), Some(1024));
    assert_eq!(aac_frame_samples(&[], 48_000), None);
}

#[test]
fn opus_durations_and_head() {
    // CELT 20 ms, one frame.
    assert_eq!(opus_packet_samples(&[0xf8, 0xff]), Some(960));
    // SILK 60 ms, two frames (code 1): 120 ms.
    assert_eq!(opus_packet_samples(&[(3 << 3) | 1, 0]), Some(5760));
    // Code 3 with 3 frames of 10 ms (CELT config 18).
    assert_eq!(opus_packet_samples(&[(18 << 3) | 3, 3]), Some(1440));
    // Code 3 without its count byte, or 0 frames.
    assert_eq!(opus_packet_samples(&[(18 << 3) | 3]), None);
    assert_eq!(opus_packet_samples(&[(18 << 3) | 3, 0]), None);
    assert_eq!(opus_packet_samples(&[]), None);

    let mut head = b"OpusHead".to_vec();
    head.extend_from_slice(&[1, 6, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 1]);
    let cfg = opus_config(&head).unwrap();
    assert_eq!(cfg.codec.audio(), Some((48_000, 6)));
    assert_eq!(opus_config(&[]).unwrap().codec.audio(), Some((48_000, 2)));
    assert!(opus_config(b"OpusTags").is_err());
}

/// Enhanced-RTMP Opus: pts counts TOC durations at 48 kHz.
#[test]
fn enhanced_rtmp_opus_counts_samples() {
    let mut b = FrameBuilder::new();
    b.expect(false, true);
    let mut head = vec![0x90, b'O', b'p', b'u', b's'];
    head.extend_from_slice(b"OpusHead");
    head.extend_from_slice(&[1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0]);
    let mut events = b.audio(0, &Bytes::from(head), at(0)).unwrap();
    assert_eq!(count_tracks_events(&events), 1);
    for i in 0..50u32 {
        let tag = Bytes::from(vec![0x91, b'O', b'p', b'u', b's', 0xf8, 0xaa, 0xbb]);
        events.extend(b.audio(500 + i * 20, &tag, at(0)).unwrap());
    }
    let audio = frames(&events, AUDIO_TRACK);
    assert_eq!(audio.len(), 50);
    for (i, f) in audio.iter().enumerate() {
        assert_eq!(f.pts, 960 * i as i64);
        assert_eq!(&f.data[..], &[0xf8, 0xaa, 0xbb]);
    }
}

#[test]
fn adts_headers_are_stripped() {
    let raw = [0x21, 0x10, 0x04, 0x60, 0x8c];
    let len = 7 + raw.len();
    let mut adts = vec![
        0xff,
        0xf1,
        0x4c,
        0x80 | ((len >> 11) as u8 & 0x03),
        (len >> 3) as u8,
        ((len as u8 & 0x07) << 5) | 0x1f,
        0xfc,
    ];
    adts.extend_from_slice(&raw);
    assert_eq!(strip_adts(&adts), &raw);
    assert_eq!(strip_adts(&raw), &raw);
    // A wrong length leaves the frame alone.
    adts.push(0);
    assert_eq!(strip_adts(&adts), &adts[..]);
}

/// Some encoders put Annex B start codes in FLV AVC frames; they are converted.
#[test]
fn annexb_frames_are_converted() {
    let tags = flv_tags(FLV);
    let reference = feed(&mut FrameBuilder::new(), &tags, |_, ts| ts);
    let annexb: Vec<Tag> = tags
        .iter()
        .map(|t| {
            if t.kind != VIDEO || t.body[1] != 1 {
                return t.clone();
            }
            let mut body = t.body[..5].to_vec();
            body.extend(media::nal::length_prefixed_to_annexb(&t.body[5..], 4).unwrap());
            Tag {
                body: Bytes::from(body),
                ..t.clone()
            }
        })
        .collect();
    let events = feed(&mut FrameBuilder::new(), &annexb, |_, ts| ts);
    assert_eq!(events, reference);
}

mod prop {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Arbitrary tags after real sequence headers: errors, never panics, and every
        /// frame that comes out is 4-byte length-prefixed.
        #[test]
        fn arbitrary_tags_never_panic(
            tags in proptest::collection::vec(
                (any::<bool>(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..64)),
                0..40,
            ),
            first in prop_oneof![Just(0x17u8), Just(0x27), Just(0xaf), Just(0x91), Just(0x97)],
        ) {
            let real = flv_tags(FLV);
            let mut b = FrameBuilder::new();
            b.expect(true, true);
            for t in real.iter().filter(|t| t.kind != 18).take(2) {
                match t.kind {
                    VIDEO => { b.video(0, &t.body, at(0)).unwrap(); }
                    _ => { b.audio(0, &t.body, at(0)).unwrap(); }
                }
            }
            for (video, ts, mut body) in tags {
                if let Some(b0) = body.first_mut() {
                    *b0 = first;
                }
                let body = Bytes::from(body);
                let out = if video {
                    b.video(ts, &body, at(0))
                } else {
                    b.audio(ts, &body, at(0))
                };
                for event in out.into_iter().flatten() {
                    if let StreamEvent::Frame(f) = event
                        && f.track == VIDEO_TRACK
                    {
                        for nal in media::nal::iter_length_prefixed(&f.data, 4) {
                            prop_assert!(nal.is_ok());
                        }
                    }
                }
            }
            b.finish();
        }
    }
}

//! A 60 s ffmpeg-made source (H.264 High with B-frames + AAC, FLV) goes through the real
//! ingest path (FLV tags -> `FrameBuilder`) into a `packager::Program`; what comes out is
//! checked with parsers we did not write: mp4-atom (strict) box by box against the
//! frames that went in, and ffprobe against the source file.
mod support;

#[path = "../packager/tests/support/llhls.rs"]
mod llhls;
#[path = "support/packager_run.rs"]
mod run;
#[path = "support/packager.rs"]
mod source;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use media::{Frame, StreamEvent};
use packager::PackagerConfig;
use packager::playlist::render_multivariant;
use run::{Chunk, InitInfo, Probe, Run, ffprobe, parse_chunks, parse_init, write_concat};

const VIDEO: u32 = ingest::rtmp::frames::VIDEO_TRACK;
const AUDIO: u32 = ingest::rtmp::frames::AUDIO_TRACK;

/// 60 s of 320x180 30 fps H.264 High, 2 B-frames, GOP 60 (2 s) and 48 kHz stereo AAC.
fn source_60s() -> PathBuf {
    support::fixture(
        "packager-60s-320x180.flv",
        "ffmpeg -hide_banner -nostdin -loglevel error -y \
         -f lavfi -i testsrc2=size=320x180:rate=30 \
         -f lavfi -i sine=frequency=440:sample_rate=48000 \
         -t 60 -pix_fmt yuv420p -c:v libx264 -profile:v high -bf 2 -g 60 -r 30 \
         -c:a aac -ar 48000 -ac 2 -f flv \"$OUT\"",
    )
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

/// Parses every part of a rendition (one moof+mdat each) and checks, per track: mfhd
/// sequence numbers increase, tfdt is version 1 and continuous (each part starts where
/// the previous one's samples end), INDEPENDENT matches the first sample's sync flag.
fn check_parts(rendition: &str, run: &Run, init: &InitInfo, video: bool) -> Vec<run::SampleInfo> {
    let log = run.log(rendition);
    let mut samples = Vec::new();
    let mut next_tfdt: Option<u64> = None;
    let mut last_sequence: Option<u32> = None;
    for part in &log.parts {
        let chunks: Vec<Chunk> = parse_chunks(&part.data, init);
        assert_eq!(
            chunks.len(),
            1,
            "{rendition} part {}.{}: one moof+mdat",
            part.msn,
            part.index
        );
        let c = &chunks[0];
        let at = format!("{rendition} part {}.{}", part.msn, part.index);
        assert!(!c.samples.is_empty(), "{at}: no samples");
        assert_eq!(c.tfdt_version, 1, "{at}: tfdt version");
        if let Some(last) = last_sequence {
            assert!(
                c.sequence > last,
                "{at}: mfhd sequence {} after {last}",
                c.sequence
            );
        }
        last_sequence = Some(c.sequence);
        if let Some(expect) = next_tfdt {
            assert_eq!(c.tfdt, expect, "{at}: tfdt not continuous");
        }
        let duration: u64 = c.samples.iter().map(|s| u64::from(s.duration)).sum();
        next_tfdt = Some(c.tfdt + duration);
        assert_eq!(
            part.duration,
            Duration::from_nanos(duration * 1_000_000_000 / u64::from(init.timescale)),
            "{at}: announced duration vs its samples"
        );
        if video {
            assert_eq!(
                part.independent, c.samples[0].sync,
                "{at}: INDEPENDENT vs the first sample's sync flag"
            );
            if part.index == 0 {
                assert!(
                    c.samples[0].sync,
                    "{at}: a video segment starts with a sync sample"
                );
            }
            // B-frames: signed composition offsets, trun version 1 (LLHLS.md).
            if c.samples.iter().any(|s| s.cts != 0) {
                assert_eq!(
                    c.trun_version, 1,
                    "{at}: composition offsets in a version 0 trun"
                );
            }
        }
        samples.extend(c.samples.iter().cloned());
    }
    samples
}

/// The samples are the frames that went in: same bytes, same order, same decode
/// deltas, same composition offsets, sync flag exactly on keyframes.
fn check_samples_are_frames(rendition: &str, samples: &[run::SampleInfo], frames: &[&Frame]) {
    assert_eq!(
        samples.len(),
        frames.len(),
        "{rendition}: sample count vs frames pushed"
    );
    let (s0, f0) = (samples[0].decode_time as i64, frames[0].dts);
    for (i, (s, f)) in samples.iter().zip(frames).enumerate() {
        assert!(
            s.data == f.data,
            "{rendition} sample {i}: bytes differ from the frame"
        );
        assert_eq!(
            s.sync, f.keyframe,
            "{rendition} sample {i}: sync flag vs keyframe"
        );
        assert_eq!(
            s.decode_time as i64 - s0,
            f.dts - f0,
            "{rendition} sample {i}: decode time"
        );
        assert_eq!(
            s.cts,
            f.pts - f.dts,
            "{rendition} sample {i}: composition offset"
        );
        if let Some(next) = frames.get(i + 1) {
            assert_eq!(
                i64::from(s.duration),
                next.dts - f.dts,
                "{rendition} sample {i}: duration"
            );
        }
    }
}

/// ffprobe of the packaged file against ffprobe of the source: decoded frame count,
/// packet count, key flags, and timestamps.
fn check_probe(what: &str, out: &Probe, src: &Probe, codec_type: &str) {
    assert!(
        out.errors.trim().is_empty(),
        "{what}: ffprobe reported errors:\n{}",
        out.errors
    );
    assert_eq!(out.streams.len(), 1, "{what}: one stream");
    let (os, ss) = (out.stream(codec_type), src.stream(codec_type));
    assert_eq!(os.codec_name, ss.codec_name, "{what}: codec");
    assert_eq!(os.frames, ss.frames, "{what}: decoded frames vs the source");
    assert!(os.frames > 0, "{what}: nothing decoded");
    let (op, sp) = (out.packets_of(codec_type), src.packets_of(codec_type));
    assert_eq!(op.len(), sp.len(), "{what}: packets vs the source");
    assert_eq!(ss.time_base, (1, 1000), "FLV time base");
    let (o0, s0) = (op[0].dts, sp[0].dts);
    for (i, (o, s)) in op.iter().zip(&sp).enumerate() {
        assert_eq!(o.key, s.key, "{what} packet {i}: key flag");
        if codec_type == "video" {
            // Exact: the source's ms are 90 kHz ticks x 90, and the packager must keep them.
            assert_eq!(os.time_base, (1, 90_000), "{what}: video time base");
            assert_eq!(o.dts - o0, (s.dts - s0) * 90, "{what} packet {i}: dts");
            assert_eq!(o.pts - o0, (s.pts - s0) * 90, "{what} packet {i}: pts");
        } else {
            // AAC frames are 1024 samples; FLV rounded their times to the ms.
            let rate = os.time_base.1;
            assert_eq!(
                o.dts - o0,
                i as i64 * 1024,
                "{what} packet {i}: dts in samples"
            );
            assert_eq!(o.pts, o.dts, "{what} packet {i}: audio pts");
            let ms = (o.dts - o0) as f64 * 1000.0 / rate as f64;
            assert!(
                ((s.dts - s0) as f64 - ms).abs() <= 1.0,
                "{what} packet {i}: {ms} ms vs the source's {} ms",
                s.dts - s0
            );
        }
    }
}

#[test]
fn sixty_seconds_package_to_what_the_source_decodes_to() {
    let flv = source_60s();
    let tags = source::flv_tags(&std::fs::read(&flv).expect("read source"));
    let events = source::publish(&tags);
    let src = ffprobe(&flv, &[]);
    assert_eq!(
        frames(&events, VIDEO).len(),
        src.packets_of("video").len(),
        "FrameBuilder kept every video frame"
    );
    assert_eq!(
        frames(&events, AUDIO).len(),
        src.packets_of("audio").len(),
        "FrameBuilder kept every audio frame"
    );

    let mut run = Run::new(PackagerConfig::default());
    run.push_all(&events);
    run.push(&StreamEvent::End);
    assert!(run.ended, "Output::Ended after End");
    assert!(
        run.checked > 100,
        "playlists checked along the way: {}",
        run.checked
    );

    let mut renditions = run.program.renditions();
    renditions.sort();
    assert_eq!(renditions, ["audio", "source"]);

    let dir = support::temp_dir("packager-ffprobe");
    let mut codecs = Vec::new();
    for (rendition, codec_type, track) in [("source", "video", VIDEO), ("audio", "audio", AUDIO)] {
        let log = run.log(rendition);
        assert_eq!(
            log.inits.keys().copied().collect::<Vec<_>>(),
            [0],
            "{rendition}: one init, version 0"
        );
        let init = log.inits[&0].clone();
        let info = parse_init(&init);
        assert_eq!(
            info.timescale,
            if track == VIDEO { 90_000 } else { 48_000 },
            "{rendition} timescale"
        );
        let cmaf = [b"iso6", b"cmfc"].map(mp4_atom::FourCC::new);
        for brand in cmaf {
            assert!(
                info.major_brand == brand || info.brands.contains(&brand),
                "{rendition}: ftyp lacks {brand}: {:?} {:?}",
                info.major_brand,
                info.brands
            );
        }
        codecs.push(info.codec.clone());

        // Box level, against the frames pushed.
        let samples = check_parts(rendition, &run, &info, track == VIDEO);
        check_samples_are_frames(rendition, &samples, &frames(&events, track));

        // Segments: complete, in order, and the first sample's ingest time is its PDT.
        assert!(
            log.segments.len() >= 25,
            "{rendition}: {} segments from 60 s",
            log.segments.len()
        );
        // PDT is the program clock: it steps by each segment's duration (the clock may be
        // anchored again once, if media ran ahead of the wall clock) and never dates a
        // segment more than the re-anchoring threshold (0.5 s) before its first frame
        // arrived.
        let mut first_sample = 0;
        let track_frames = frames(&events, track);
        let mut reanchored = 0;
        let mut previous: Option<(SystemTime, Duration)> = None;
        for seg in &log.segments {
            let chunks = parse_chunks(&seg.data, &info);
            let f = track_frames[first_sample];
            if let Ok(ahead) = seg.program_date_time.duration_since(f.received) {
                assert!(
                    ahead <= Duration::from_millis(505),
                    "{rendition} segment {}: PDT {ahead:?} after its first frame's ingest time",
                    seg.msn
                );
            }
            if let Some((pdt, duration)) = previous {
                let step = seg
                    .program_date_time
                    .duration_since(pdt)
                    .unwrap_or_default();
                if step.abs_diff(duration) > Duration::from_millis(2) {
                    reanchored += 1;
                }
            }
            previous = Some((seg.program_date_time, seg.duration));
            first_sample += chunks.iter().map(|c| c.samples.len()).sum::<usize>();
        }
        assert!(
            reanchored <= 1,
            "{rendition}: PDT steps differ from the durations {reanchored} times"
        );
        assert_eq!(
            first_sample,
            samples.len(),
            "{rendition}: segments hold every sample"
        );

        // ffprobe: init + segments, init + parts.
        let segs = dir.join(format!("{rendition}-segments.mp4"));
        write_concat(
            &segs,
            std::iter::once(&init).chain(log.segments.iter().map(|s| &s.data)),
        );
        check_probe(
            &format!("{rendition} init+segments"),
            &ffprobe(&segs, &[]),
            &src,
            codec_type,
        );
        let parts = dir.join(format!("{rendition}-parts.mp4"));
        write_concat(
            &parts,
            std::iter::once(&init).chain(log.parts.iter().map(|p| &p.data)),
        );
        check_probe(
            &format!("{rendition} init+parts"),
            &ffprobe(&parts, &[]),
            &src,
            codec_type,
        );
    }

    // CODECS in the multivariant playlist = what the init segments say.
    let m = run.program.multivariant().expect("multivariant playlist");
    assert_eq!(m.variants.len(), 1);
    let v = &m.variants[0];
    assert_eq!(
        v.codecs, codecs,
        "variant CODECS vs avcC/esds in the init segments"
    );
    assert_eq!(codecs[1], "mp4a.40.2");
    assert!(
        codecs[0].starts_with("avc1.64"),
        "High profile: {}",
        codecs[0]
    );
    assert_eq!(v.resolution, Some((320, 180)));
    assert!(
        (v.frame_rate.expect("FRAME-RATE") - 30.0).abs() < 0.01,
        "{:?}",
        v.frame_rate
    );
    let audio = m.audio.as_ref().expect("audio rendition");
    assert_eq!(audio.codec, codecs[1]);
    assert_eq!(audio.channels, 2);
    let text = render_multivariant(&m);
    let parsed = m3u8_rs::parse_master_playlist_res(text.as_bytes())
        .expect("m3u8-rs parses the multivariant playlist");
    assert_eq!(parsed.variants.len(), 1);
    assert_eq!(
        parsed.variants[0].codecs.as_deref(),
        Some(codecs.join(",").as_str()),
        "{text}"
    );
    assert!(parsed.variants[0].bandwidth > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

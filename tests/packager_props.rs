//! The packager's part and segment rules over many frame grids, through the real ingest
//! path (FLV tags with millisecond RTMP timestamps -> `FrameBuilder` -> `Program`):
//! - a table: 25, 29.97, 30, 50, 59.94 and 60 fps x AAC at 44.1 and 48 kHz, plus
//!   audio-only and video-only streams, plus a real ffmpeg source at 29.97 fps / 44.1 kHz;
//! - a property test over random frame rates, jittered timestamps, GOP lengths from 0.5
//!   to 6 s (longer than the segment target too), B-frames or not, audio or not.
//!
//! Every playlist after every change goes through the LL-HLS checker
//! (`packager/tests/support/llhls.rs`), every segment is compared with its parts byte for
//! byte as it completes, and the part durations the `Output`s announce are held to the
//! PART-TARGET rules directly (not through the rendered, rounded text).
mod support;

#[path = "../packager/tests/support/llhls.rs"]
mod llhls;
#[path = "support/packager_run.rs"]
mod run;
#[path = "support/packager.rs"]
mod source;

use std::time::Duration;

use media::StreamEvent;
use packager::PackagerConfig;
use proptest::prelude::*;
use run::{Run, parse_chunks, parse_init};
use source::{AudioSpec, SynthSpec, VideoSpec};

const FPS: [(u32, u32); 6] = [
    (25, 1),
    (30_000, 1001),
    (30, 1),
    (50, 1),
    (60_000, 1001),
    (60, 1),
];
const RATES: [u32; 2] = [44_100, 48_000];

/// Pushes a publish (plus `End`) through a fresh program and checks everything it
/// emitted; returns the run for more checks.
fn package(what: &str, events: &[StreamEvent]) -> Run {
    let mut run = Run::new(PackagerConfig::default());
    run.push_all(events);
    run.push(&StreamEvent::End);
    assert!(run.ended, "{what}: Output::Ended");
    check_rules(what, &run, events);
    run
}

/// Part and segment durations against PART-TARGET and TARGETDURATION, the first part of
/// each video segment independent, every frame packaged once.
fn check_rules(what: &str, run: &Run, events: &[StreamEvent]) {
    let renditions = run.program.renditions();
    assert!(!renditions.is_empty(), "{what}: no rendition");
    for r in renditions {
        let pl = run
            .program
            .playlist(&r)
            .unwrap_or_else(|| panic!("{what}: {r} has no playlist"));
        let pt = pl.part_target;
        let td = Duration::from_secs(u64::from(pl.target_duration));
        let log = run.log(&r);
        assert!(
            log.segments.len() >= 3,
            "{what}: {r}: only {} segments",
            log.segments.len()
        );
        for seg in &log.segments {
            let parts = log.parts_of(seg.msn);
            for (i, p) in parts.iter().enumerate() {
                let at = format!(
                    "{what}: {r} part {}.{} ({:?}, PART-TARGET {pt:?})",
                    p.msn, p.index, p.duration
                );
                assert!(p.duration <= pt, "{at}: longer than PART-TARGET");
                assert!(!p.duration.is_zero(), "{at}: empty");
                if i + 1 < parts.len() && !p.independent {
                    assert!(
                        p.duration.as_secs_f64() >= 0.85 * pt.as_secs_f64(),
                        "{at}: under 85% of PART-TARGET"
                    );
                }
            }
            let extinf = (seg.duration.as_secs_f64() + 0.5).floor() as u64;
            assert!(
                extinf <= td.as_secs(),
                "{what}: {r} segment {} lasts {:?}, TARGETDURATION {td:?}",
                seg.msn,
                seg.duration
            );
        }
        // Every frame of the track is in exactly one part (the last segment included).
        let track = if r == "audio" { 1 } else { 0 };
        let pushed = source::frame_count(events, track);
        let init = parse_init(&log.inits[&0]);
        let packaged: usize = log
            .parts
            .iter()
            .map(|p| {
                parse_chunks(&p.data, &init)
                    .iter()
                    .map(|c| c.samples.len())
                    .sum::<usize>()
            })
            .sum();
        assert_eq!(
            packaged, pushed,
            "{what}: {r}: samples packaged vs frames pushed"
        );
        if track == 0 {
            for p in &log.parts {
                let c = parse_chunks(&p.data, &init);
                assert_eq!(
                    p.independent, c[0].samples[0].sync,
                    "{what}: {r} part {}.{} INDEPENDENT vs its first sample",
                    p.msn, p.index
                );
            }
            // EXT-X-INDEPENDENT-SEGMENTS exactly when every segment starts with an IDR.
            assert_eq!(
                pl.independent_segments,
                starts_independent(run, &r),
                "{what}: {r} EXT-X-INDEPENDENT-SEGMENTS"
            );
        }
    }
    // All renditions on one grid: the same MSNs complete, except that a rendition may
    // lack the last one when its media ran out before that segment starts on screen
    // (tracks end apart, and the leader may have cut its last segment a frame or two
    // before the end): its last sample ends less than one of its frames after the start
    // of the other's last segment.
    let msns: Vec<Vec<u64>> = run
        .logs
        .values()
        .map(|l| l.segments.iter().map(|s| s.msn).collect())
        .collect();
    let longest = msns.iter().map(Vec::len).max().unwrap_or(0);
    let longest_name = run
        .logs
        .iter()
        .find(|(_, l)| l.segments.len() == longest)
        .map(|(name, _)| name.clone())
        .unwrap_or_default();
    for (name, m) in run.logs.keys().zip(&msns) {
        let short_tail = m.len() + 1 == longest && {
            let (end, frame, _) = tail_times(run, name);
            let (_, _, start) = tail_times(run, &longest_name);
            end < start + frame
        };
        assert!(
            m.iter().zip(&msns[0]).all(|(a, b)| a == b) && (m.len() == longest || short_tail),
            "{what}: renditions complete different segments: {msns:?}"
        );
    }
}

/// A rendition's tail, in seconds: where its last sample ends, that sample's duration,
/// and where its last segment starts on screen: its first decode time plus the source's
/// reorder delay (the composition offset of the rendition's first sample, an IDR; a
/// segment cut inside a GOP starts with a sample whose own offset is out of order).
fn tail_times(run: &Run, rendition: &str) -> (f64, f64, f64) {
    let log = run.log(rendition);
    let init = parse_init(&log.inits[&0]);
    let last = log.segments.last().map_or(0, |s| s.msn);
    let (mut end, mut frame, mut start, mut delay) = (0u64, 0u32, None, None);
    for p in &log.parts {
        for c in parse_chunks(&p.data, &init) {
            for s in &c.samples {
                delay.get_or_insert(s.cts);
                if s.decode_time + u64::from(s.duration) >= end {
                    (end, frame) = (s.decode_time + u64::from(s.duration), s.duration);
                }
                if p.msn == last {
                    start.get_or_insert(s.decode_time as i64 + delay.unwrap_or(0));
                }
            }
        }
    }
    let ts = f64::from(init.timescale);
    let start = start.unwrap_or(i64::MAX);
    (end as f64 / ts, f64::from(frame) / ts, start as f64 / ts)
}

/// Every segment of the rendition starts with an independent part.
fn starts_independent(run: &Run, rendition: &str) -> bool {
    run.log(rendition)
        .parts
        .iter()
        .filter(|p| p.index == 0)
        .all(|p| p.independent)
}

fn synth(video: Option<VideoSpec>, audio: Option<AudioSpec>, seconds: u32) -> Vec<StreamEvent> {
    source::publish(&source::synth_tags(&SynthSpec {
        video,
        audio,
        duration_ms: seconds * 1000,
    }))
}

/// The synthetic streams' SPS says what the test means (media's parser reads it).
#[test]
fn synthetic_parameter_sets_parse() {
    for fps in FPS {
        let codec = media::Codec::h264(source::synth_avcc(320, 176, Some(fps)))
            .expect("synthetic avcC parses");
        assert_eq!(codec.dimensions(), Some((320, 176)));
        let rate = codec.fps().expect("frame rate in the VUI").as_f64();
        assert!(
            (rate - f64::from(fps.0) / f64::from(fps.1)).abs() < 1e-9,
            "{fps:?}: {rate}"
        );
    }
    let codec = media::Codec::h264(source::synth_avcc(640, 368, None)).expect("avcC without VUI");
    assert_eq!((codec.dimensions(), codec.fps()), (Some((640, 368)), None));
}

#[test]
fn every_frame_rate_with_every_audio_rate() {
    for fps in FPS {
        for rate in RATES {
            let what = format!("{}/{} fps + AAC {rate} Hz", fps.0, fps.1);
            let events = synth(
                Some(VideoSpec::regular(fps, 2.0)),
                Some(AudioSpec { rate, channels: 2 }),
                10,
            );
            let run = package(&what, &events);
            assert!(
                starts_independent(&run, "source"),
                "{what}: a 2 s GOP, every segment on an IDR"
            );
            let mut renditions = run.program.renditions();
            renditions.sort();
            assert_eq!(renditions, ["audio", "source"], "{what}");
        }
    }
}

#[test]
fn video_only_at_every_frame_rate() {
    for fps in FPS {
        let what = format!("{}/{} fps, no audio", fps.0, fps.1);
        let run = package(&what, &synth(Some(VideoSpec::regular(fps, 2.0)), None, 10));
        assert!(
            starts_independent(&run, "source"),
            "{what}: a 2 s GOP, every segment on an IDR"
        );
        assert_eq!(run.program.renditions(), ["source"], "{what}");
        let m = run.program.multivariant().expect("multivariant");
        assert!(m.audio.is_none(), "{what}: no audio rendition");
    }
}

#[test]
fn audio_only_at_both_rates() {
    for rate in RATES {
        let what = format!("AAC {rate} Hz, no video");
        let run = package(
            &what,
            &synth(None, Some(AudioSpec { rate, channels: 2 }), 10),
        );
        assert_eq!(run.program.renditions(), ["audio"], "{what}");
    }
}

#[test]
fn gop_longer_than_the_segment_target() {
    for gop_s in [3.0, 5.0, 10.0] {
        let what = format!("30 fps, GOP {gop_s} s");
        package(
            &what,
            &synth(
                Some(VideoSpec::regular((30, 1), gop_s)),
                Some(AudioSpec {
                    rate: 48_000,
                    channels: 2,
                }),
                20,
            ),
        );
    }
}

/// Found by `random_timings_keep_every_rule`: segments cut inside a long GOP with
/// B-frames, no audio, frame rate measured. A cut lands on a frame whose own pts is out
/// of order, and dating the segment by it made PDT steps differ from EXTINF.
#[test]
fn cuts_inside_a_b_frame_gop_step_date_times_by_extinf() {
    let video = VideoSpec {
        fps: (20, 1),
        gops: vec![82],
        bframes: true,
        jitter_ms: vec![0],
        avcc: source::synth_avcc(320, 176, None),
    };
    package(
        "20 fps, GOP 82 frames, B-frames, no audio",
        &synth(Some(video), None, 9),
    );
}

#[test]
fn real_ffmpeg_source_at_29_97_fps_and_44_1_khz() {
    let flv = support::fixture(
        "packager-2997-44k.flv",
        "ffmpeg -hide_banner -nostdin -loglevel error -y \
         -f lavfi -i testsrc2=size=320x180:rate=30000/1001 \
         -f lavfi -i sine=frequency=440:sample_rate=44100 \
         -t 10 -pix_fmt yuv420p -c:v libx264 -profile:v high -bf 2 -g 60 \
         -c:a aac -ar 44100 -ac 2 -f flv \"$OUT\"",
    );
    let events = source::publish(&source::flv_tags(
        &std::fs::read(&flv).expect("read source"),
    ));
    let run = package("ffmpeg 29.97 fps + 44.1 kHz", &events);
    let m = run.program.multivariant().expect("multivariant");
    let rate = m.variants[0].frame_rate.expect("FRAME-RATE");
    assert!((rate - 29.97).abs() < 0.01, "FRAME-RATE {rate}");
}

/// A random stream: (fps num, den), GOP lengths (s), B-frames, the frame rate signalled
/// in the SPS or not (then the packager measures it), jitter per frame (0 to 4 ms on
/// top of the millisecond rounding, cycled: what capture clocks of real publishers
/// add), audio rate or none, seconds.
fn streams() -> impl Strategy<Value = (SynthSpec, String)> {
    (
        20u32..=60,
        any::<bool>(),
        prop::collection::vec(0.5f64..6.0, 1..5),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(0u32..=4, 1..12),
        prop::option::of(prop::sample::select(RATES.to_vec())),
        6u32..=16,
    )
        .prop_map(|(fps, ntsc, gops_s, bframes, signalled, jitter, rate, seconds)| {
            let fps = if ntsc { (fps * 1000, 1001) } else { (fps, 1) };
            let gops: Vec<u32> = gops_s.iter().map(|g| ((g * f64::from(fps.0) / f64::from(fps.1)).round() as u32).max(1)).collect();
            let what = format!("{}/{} fps, GOPs {gops:?} frames, B-frames {bframes}, fps in the SPS {signalled}, jitter {jitter:?} ms, audio {rate:?}, {seconds} s", fps.0, fps.1);
            let spec = SynthSpec {
                video: Some(VideoSpec {
                    fps,
                    gops,
                    bframes,
                    jitter_ms: jitter,
                    avcc: source::synth_avcc(320, 176, signalled.then_some(fps)),
                }),
                audio: rate.map(|rate| AudioSpec { rate, channels: 2 }),
                duration_ms: seconds * 1000,
            };
            (spec, what)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_timings_keep_every_rule((spec, what) in streams()) {
        let events = source::publish(&source::synth_tags(&spec));
        prop_assert!(source::discontinuities(&events).is_empty(), "{what}: the generator made a jump");
        package(&what, &events);
    }
}

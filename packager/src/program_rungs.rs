//! Transcoded rungs ([`Program::push_rendition`]): a rung fed the source's
//! presentation times, with keyframes where the source has them, gets segments of the
//! same MSNs starting at the same presentation times, on an IDR; a gap in a rung's
//! frames stays local to it.
use super::*;

const RUNG: &str = "360p";
/// The synthetic source's composition offset (pts - dts), 2 frames at 30 fps.
const SOURCE_CTTS: u64 = 6_000;

fn rung_track() -> TrackInfo {
    TrackInfo {
        id: 0,
        codec: Codec::H264 {
            avcc: Bytes::from_static(AVCC),
            width: 640,
            height: 360,
            fps: Some(FrameRate { num: 30, den: 1 }),
        },
        timescale: 90_000,
    }
}

/// The source's events with a rung's interleaved: each source video frame's rung frame
/// (same pts, dts = pts, keyframe where the source's is) comes `delay` source video
/// frames later, as a ladder's output does. Rung frames whose pts falls in `gap`
/// (seconds) are left out.
fn with_rung(src: &Source, delay: usize, gap: Option<(f64, f64)>) -> Vec<(bool, StreamEvent)> {
    let mut out = vec![
        (false, StreamEvent::Tracks(src.tracks())),
        (true, StreamEvent::Tracks(vec![rung_track()])),
    ];
    let mut pending: std::collections::VecDeque<Frame> = Default::default();
    for f in src.frames() {
        let video = f.track == VIDEO;
        out.push((false, StreamEvent::Frame(f.clone())));
        if !video {
            continue;
        }
        let t = f.pts as f64 / 90_000.0;
        if !gap.is_some_and(|(a, b)| t >= a && t < b) {
            pending.push_back(Frame {
                track: 0,
                pts: f.pts,
                dts: f.pts,
                keyframe: f.keyframe,
                data: Bytes::from(vec![0x36; 30]),
                received: f.received,
            });
        }
        while pending.len() > delay {
            let r = pending.pop_front().expect("queued");
            out.push((true, StreamEvent::Frame(r)));
        }
    }
    out.extend(pending.into_iter().map(|r| (true, StreamEvent::Frame(r))));
    out.push((false, StreamEvent::End));
    out
}

fn run_rungs(events: &[(bool, StreamEvent)], listed: bool) -> (Program, Collected) {
    let mut program = Program::new(PackagerConfig::default());
    program.set_source_listed(listed);
    let mut c = Collected::default();
    for (rung, event) in events {
        let outputs = if *rung {
            program.push_rendition(RUNG, event)
        } else {
            program.push(event)
        };
        collect(&program, outputs, &mut c);
    }
    (program, c)
}

/// Decode time of a segment's first part.
fn tfdt(seg: &SegRec) -> u64 {
    let moof = Moof::decode(&mut seg.parts[0].3.clone()).expect("moof");
    moof.traf[0]
        .tfdt
        .as_ref()
        .expect("tfdt")
        .base_media_decode_time
}

#[test]
fn a_rung_follows_the_source_grid_on_idrs() {
    let src = Source::new(30, 1);
    let (program, c) = run_rungs(&with_rung(&src, 5, None), true);
    assert!(c.discontinuities.is_empty(), "{:?}", c.discontinuities);
    let source = &c.segments[SOURCE];
    let rung = &c.segments[RUNG];
    assert_eq!(source.len(), rung.len());
    assert!(source.len() >= 5, "{} segments", source.len());
    for (s, r) in source.iter().zip(rung) {
        assert_eq!(s.msn, r.msn);
        assert!(r.parts[0].2, "rung segment {} starts on an IDR", r.msn);
        // Same presentation time: the source's first sample is shown SOURCE_CTTS
        // after its decode time, the rung's (no reordering) at its decode time.
        assert_eq!(tfdt(r), tfdt(s) + SOURCE_CTTS, "segment {}", r.msn);
    }
    // All but the last (ended by the flush) have the source's duration.
    for (s, r) in source.iter().zip(rung).take(source.len() - 1) {
        assert_eq!(s.duration, r.duration, "segment {}", s.msn);
    }
    let mv = program.multivariant().expect("multivariant");
    let names: Vec<&str> = mv.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, [SOURCE, RUNG]);
    assert_eq!(mv.variants[1].resolution, Some((640, 360)));
    assert!(program.playlist(RUNG).is_some());
    assert!(
        program
            .rendition_reports(SOURCE)
            .iter()
            .any(|r| r.uri == "../360p/index.m3u8")
    );
}

#[test]
fn a_gap_in_a_rung_stays_in_that_rung() {
    let src = Source::new(30, 1);
    // The ladder fails at 4.3 s and is back at the source keyframe shown at 8.067 s
    // (decoded at 8 s).
    let (program, c) = run_rungs(&with_rung(&src, 5, Some((4.3, 8.05))), true);
    assert!(c.discontinuities.is_empty(), "{:?}", c.discontinuities);
    let source = &c.segments[SOURCE];
    let rung = &c.segments[RUNG];
    // The source and audio went on untouched: one segment per 2 s GOP.
    for s in source.iter().take(source.len() - 1) {
        assert_eq!(s.duration, Duration::from_secs(2), "source {}", s.msn);
    }
    let by_msn = |msn: u64| rung.iter().find(|r| r.msn == msn);
    // Source segments start at 0, 2, 4, ... s (pts); the one at 4 s is cut short in
    // the rung, the one at 6 s is missing, the one at 8 s is back with the same MSN.
    let m4 = source[2].msn;
    let short = by_msn(m4).expect("rung segment at 4 s");
    assert!(
        short.duration < Duration::from_millis(400),
        "{:?}",
        short.duration
    );
    assert!(
        by_msn(m4 + 1).is_none(),
        "no rung media between 4.3 s and 8 s"
    );
    let playlist = program.playlist(RUNG).expect("rung playlist");
    let gap = playlist
        .segments
        .iter()
        .find(|s| s.msn == m4 + 1)
        .expect("the missing segment is listed");
    assert!(gap.gap && gap.parts.is_empty());
    assert_eq!(gap.duration, Duration::from_secs(2));
    let msns: Vec<u64> = playlist.segments.iter().map(|s| s.msn).collect();
    assert!(msns.windows(2).all(|w| w[1] == w[0] + 1), "{msns:?}");
    assert_eq!(
        playlist.segments.iter().filter(|s| s.gap).count(),
        1,
        "only the one segment is a gap"
    );
    let text = crate::playlist::render_media(&playlist, &Default::default());
    assert!(text.contains("#EXT-X-GAP\n#EXTINF:2.00000,\n"), "{text}");
    let back = by_msn(m4 + 2).expect("rung segment at 8 s");
    let source_back = &source[4];
    assert_eq!(source_back.msn, back.msn);
    assert!(back.parts[0].2);
    assert_eq!(tfdt(back), tfdt(source_back) + SOURCE_CTTS);
}

#[test]
fn an_unlisted_source_leaves_the_multivariant_to_the_rungs() {
    let src = Source::new(30, 1);
    let (program, _) = run_rungs(&with_rung(&src, 3, None), false);
    let mv = program.multivariant().expect("multivariant");
    let names: Vec<&str> = mv.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, [RUNG]);
    // Still served.
    assert!(program.playlist(SOURCE).is_some());
}

#[test]
fn rung_names_that_are_not_a_path_segment_are_refused() {
    let mut program = Program::new(PackagerConfig::default());
    for bad in ["", "source", "audio", "../x", "a/b", ".hidden"] {
        let out = program.push_rendition(bad, &StreamEvent::Tracks(vec![rung_track()]));
        assert!(out.is_empty(), "{bad:?}");
    }
}

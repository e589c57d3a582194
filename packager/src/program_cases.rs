//! Table and scenario tests of the program (see the harness in the parent module).
use super::*;

#[test]
fn every_frame_rate_and_audio_rate_meets_the_part_rules() {
    for (num, den) in FPS {
        for rate in [44_100, 48_000] {
            for rtmp in [false, true] {
                let mut src = Source::new(num, den);
                src.audio = Some(rate);
                src.rtmp = rtmp;
                let label = format!("{num}/{den} fps, {rate} Hz, rtmp {rtmp}");
                let (program, c) = run(PackagerConfig::default(), &ended(&src.events()));
                check_rules(&program, &c, Floor::All, &label);
                check_video_grid(&c, &label);
                check_alignment(&c, 1024.0 / f64::from(rate), &label);
                let pt = program.part_target().unwrap().as_millis();
                assert!((190..=215).contains(&pt), "{label}: PT {pt}");
                assert!(c.segments[SOURCE].len() >= 5, "{label}");
                assert!(c.ended);
            }
        }
    }
}

#[test]
fn video_only_and_audio_only() {
    for (num, den) in FPS {
        let mut src = Source::new(num, den);
        src.audio = None;
        let label = format!("{num}/{den} video only");
        let (program, c) = run(PackagerConfig::default(), &ended(&src.events()));
        check_rules(&program, &c, Floor::All, &label);
        check_video_grid(&c, &label);
        assert_eq!(program.renditions(), vec![SOURCE.to_string()]);
        assert!(program.playlist(AUDIO).is_none());
    }
    for rate in [44_100, 48_000] {
        let mut src = Source::new(30, 1);
        src.video = false;
        src.audio = Some(rate);
        let label = format!("{rate} audio only");
        let (program, c) = run(PackagerConfig::default(), &ended(&src.events()));
        check_rules(&program, &c, Floor::All, &label);
        let segs = &c.segments[AUDIO];
        assert_eq!(segs[0].msn, 1);
        for s in &segs[..segs.len() - 1] {
            let d = s.duration.as_secs_f64();
            assert!(
                (2.0 - 0.012..=2.0 + 0.024).contains(&d),
                "{label} {}: {d}",
                s.msn
            );
        }
        assert_eq!(program.renditions(), vec![AUDIO.to_string()]);
        let m = program.multivariant().unwrap();
        assert_eq!(m.variants.len(), 1);
        assert_eq!(m.variants[0].codecs, vec!["mp4a.40.2".to_string()]);
        assert!(m.audio.is_none());
    }
}

#[test]
fn unsignalled_frame_rate_is_measured_before_the_first_part() {
    let mut src = Source::new(30, 1);
    src.signal_fps = false;
    src.rtmp = true;
    let (program, c) = run(PackagerConfig::default(), &ended(&src.events()));
    assert_eq!(program.part_target(), Some(Duration::from_millis(208)));
    check_rules(&program, &c, Floor::All, "measured 30 fps");
    check_video_grid(&c, "measured 30 fps");
    // The held-back frames were all packaged: 12 s of 30 fps.
    let frames: usize = c.chunks[SOURCE].iter().map(sample_count).sum();
    assert_eq!(frames, 360);
    let m = program.multivariant().unwrap();
    assert_eq!(m.variants[0].frame_rate, Some(30.0));
}

#[test]
fn decode_times_are_continuous_and_sequence_numbers_increase() {
    let src = Source::new(30000, 1001);
    let (_, c) = run(PackagerConfig::default(), &ended(&src.events()));
    for (name, chunks) in &c.chunks {
        let mut next_tfdt = None;
        let mut last_seq = 0;
        for chunk in chunks {
            let moof = Moof::decode(&mut chunk.clone()).expect("moof (strict)");
            assert!(moof.mfhd.sequence_number > last_seq, "{name}: sequence");
            last_seq = moof.mfhd.sequence_number;
            let traf = &moof.traf[0];
            let tfdt = traf.tfdt.as_ref().expect("tfdt").base_media_decode_time;
            if let Some(expected) = next_tfdt {
                assert_eq!(tfdt, expected, "{name}: tfdt continuous");
            }
            let total: u64 = traf
                .trun
                .iter()
                .flat_map(|t| t.samples.iter())
                .map(|e| u64::from(e.duration.expect("duration")))
                .sum();
            next_tfdt = Some(tfdt + total);
        }
    }
    // Sync flags: each video segment's first sample is a keyframe (frames i % gop == 0).
    let first = c.segments[SOURCE][1].parts[0].3.clone();
    let moof = Moof::decode(&mut first.clone()).unwrap();
    let entry = moof.traf[0].trun[0].samples.get(0).unwrap();
    assert_eq!(entry.flags.map(|f| f & 0x0001_0000), Some(0), "sync sample");
}

#[test]
fn long_gop_cuts_at_non_keyframes_without_exceeding_the_target_duration() {
    for gop_seconds in [3, 5, 7] {
        let mut src = Source::new(30, 1);
        src.gop = 30 * gop_seconds;
        src.seconds = 30;
        let label = format!("{gop_seconds} s GOP");
        let (program, c) = run(PackagerConfig::default(), &ended(&src.events()));
        check_rules(&program, &c, Floor::All, &label);
        let segs = &c.segments[SOURCE];
        let mut t = 0.0;
        let mut dependent = 0;
        for s in segs {
            let starts_on_keyframe = ((t * 30.0_f64).round() as u64).is_multiple_of(src.gop);
            assert_eq!(s.parts[0].2, starts_on_keyframe, "{label} {} at {t}", s.msn);
            if !starts_on_keyframe {
                dependent += 1;
            }
            assert!(s.duration.as_secs_f64() <= 2.45 + 1e-9, "{label} {}", s.msn);
            t += s.duration.as_secs_f64();
        }
        assert!(dependent > 0, "{label}");
        // Every keyframe starts a segment.
        let starts: Vec<u64> = segs
            .iter()
            .scan(0.0, |t, s| {
                let start = *t;
                *t += s.duration.as_secs_f64();
                Some((start * 30.0_f64).round() as u64)
            })
            .collect();
        for k in (0..30 * src.seconds).step_by(src.gop as usize) {
            assert!(
                starts.contains(&k),
                "{label}: keyframe {k} starts a segment"
            );
        }
        assert!(!program.playlist(SOURCE).unwrap().independent_segments);
        assert!(program.playlist(AUDIO).unwrap().independent_segments);
        assert!(!program.multivariant().unwrap().independent_segments);
        check_alignment(&c, 1024.0 / 48_000.0, &label);
    }
}

#[test]
fn gops_shorter_than_the_target_make_no_overlong_segments() {
    // 1.9 s GOP: cutting at the first keyframe past 2 s would make 3.8 s segments.
    let mut src = Source::new(30, 1);
    src.gop = 57;
    let (program, c) = run(PackagerConfig::default(), &ended(&src.events()));
    check_rules(&program, &c, Floor::All, "1.9 s GOP");
    let segs = &c.segments[SOURCE];
    for s in &segs[1..segs.len() - 1] {
        assert!(
            (s.duration.as_secs_f64() - 1.9).abs() < 1e-6,
            "{}: {:?}",
            s.msn,
            s.duration
        );
        assert!(s.parts[0].2);
    }
    assert!(program.playlist(SOURCE).unwrap().independent_segments);
    // 1 s GOP: segments of two GOPs.
    let mut src = Source::new(30, 1);
    src.gop = 30;
    let (_, c) = run(PackagerConfig::default(), &ended(&src.events()));
    let segs = &c.segments[SOURCE];
    for s in &segs[..segs.len() - 1] {
        assert!(
            (s.duration.as_secs_f64() - 2.0).abs() < 1e-6,
            "{}: {:?}",
            s.msn,
            s.duration
        );
    }
}

#[test]
fn takeover_discontinuity_ends_segments_and_continues_the_msn() {
    let mut src = Source::new(30, 1);
    src.seconds = 5;
    let first = src.events();
    let mut events = first.clone();
    events.push(StreamEvent::Discontinuity {
        reason: DiscontinuityReason::Takeover,
    });
    // The new publisher's timestamps restart at zero.
    events.extend(first.iter().cloned());
    let (program, c) = run(PackagerConfig::default(), &ended(&events));
    check_rules(&program, &c, Floor::Spec, "takeover");
    // Both renditions: 3 segments before (2 + 2 + 1 s), the fourth follows the tag.
    for name in [SOURCE, AUDIO] {
        assert!(
            c.discontinuities.contains(&(name.to_string(), 4)),
            "{name}: {:?}",
            c.discontinuities
        );
        let pl = program.playlist(name).unwrap();
        let flagged: Vec<u64> = pl
            .segments
            .iter()
            .filter(|s| s.discontinuity)
            .map(|s| s.msn)
            .collect();
        assert_eq!(flagged, vec![4], "{name}");
        assert_eq!(pl.discontinuity_sequence, 0);
        assert!(pl.ended);
        assert!(pl.pending.is_none());
    }
    let v = &c.segments[SOURCE];
    assert!(
        (v[2].duration.as_secs_f64() - 1.0).abs() < 0.04,
        "{:?}",
        v[2].duration
    );
    assert!(v[3].parts[0].2, "new publisher starts on a keyframe");
    check_alignment(&c, 1024.0 / 48_000.0, "takeover");
}

#[test]
fn timestamp_jumps_without_an_event_are_discontinuities() {
    for (label, seconds) in [("forward", 30), ("backward", -4)] {
        let mut src = Source::new(30, 1);
        src.seconds = 6;
        let part1 = src.events();
        let mut events = part1.clone();
        events.extend(
            shifted(&part1[1..], if seconds > 0 { seconds } else { 0 })
                .into_iter()
                .map(|e| match e {
                    // Backward: the second half restarts from zero (6 s behind).
                    StreamEvent::Frame(f) => StreamEvent::Frame(f),
                    other => other,
                }),
        );
        if seconds < 0 {
            // Replace the second half by the first half again: dts steps back to 0.
            events.truncate(part1.len());
            events.extend(part1[1..].iter().cloned());
        }
        let (program, c) = run(PackagerConfig::default(), &ended(&events));
        check_rules(&program, &c, Floor::Spec, label);
        for name in [SOURCE, AUDIO] {
            let pl = program.playlist(name).unwrap();
            let flagged = pl.segments.iter().filter(|s| s.discontinuity).count();
            assert_eq!(flagged, 1, "{label} {name}");
        }
        assert_eq!(
            c.discontinuities.len(),
            2,
            "{label}: {:?}",
            c.discontinuities
        );
        check_alignment(&c, 1024.0 / 48_000.0, label);
    }
}

#[test]
fn a_gap_longer_than_the_part_target_is_a_discontinuity() {
    let src = Source::new(30, 1);
    // Drop 10 video frames (333 ms) in the middle of a GOP.
    let events: Vec<StreamEvent> = src
        .events()
        .into_iter()
        .filter(|e| !matches!(e, StreamEvent::Frame(f) if f.track == VIDEO && (100..110).contains(&(f.dts / 3000))))
        .collect();
    let (program, c) = run(PackagerConfig::default(), &ended(&events));
    check_rules(&program, &c, Floor::Spec, "gap");
    assert_eq!(c.discontinuities.len(), 2);
    // The video after the gap resumes at the next keyframe (frame 120).
    let v = program.playlist(SOURCE).unwrap();
    let after = v.segments.iter().find(|s| s.discontinuity).unwrap();
    assert!(after.parts[0].independent);
}

#[test]
fn codec_change_makes_a_new_init_version() {
    for with_event in [true, false] {
        let mut src = Source::new(30, 1);
        src.seconds = 5;
        let first = src.events();
        let mut events = first.clone();
        if with_event {
            events.push(StreamEvent::Discontinuity {
                reason: DiscontinuityReason::CodecChange,
            });
        }
        let mut tracks = src.tracks();
        tracks[0].codec = Codec::h264(Bytes::from_static(AVCC_HIGH)).expect("avcc");
        events.push(StreamEvent::Tracks(tracks));
        events.extend(shifted(&first[1..], 5));
        let label = format!("codec change, event {with_event}");
        let (program, c) = run(PackagerConfig::default(), &ended(&events));
        check_rules(&program, &c, Floor::Spec, &label);
        assert!(
            c.inits.contains(&(SOURCE.to_string(), 1)),
            "{label}: {:?}",
            c.inits
        );
        // The part target stays the one fitted at the start.
        assert_eq!(
            program.part_target(),
            Some(Duration::from_millis(208)),
            "{label}"
        );
        assert!(!c.inits.contains(&(AUDIO.to_string(), 1)), "{label}");
        let pl = program.playlist(SOURCE).unwrap();
        let versions: Vec<(u64, u32, bool)> = pl
            .segments
            .iter()
            .map(|s| (s.msn, s.init_version, s.discontinuity))
            .collect();
        assert_eq!(
            versions,
            vec![
                (1, 0, false),
                (2, 0, false),
                (3, 0, false),
                (4, 1, true),
                (5, 1, false),
                (6, 1, false)
            ],
            "{label}"
        );
        assert_ne!(program.init(SOURCE, 0), program.init(SOURCE, 1));
        let m = program.multivariant().unwrap();
        assert_eq!(m.variants[0].codecs[0], "avc1.640028", "{label}");
        assert_eq!(m.variants[0].resolution, Some((1920, 1080)), "{label}");
        // The audio playlist has the discontinuity too, no new init.
        let audio = program.playlist(AUDIO).unwrap();
        assert!(
            audio
                .segments
                .iter()
                .any(|s| s.discontinuity && s.init_version == 0)
        );
    }
}

#[test]
fn retention_keeps_the_window_and_drops_the_rest() {
    let mut src = Source::new(30, 1);
    src.seconds = 40;
    let config = PackagerConfig {
        window_segments: 6,
        ..PackagerConfig::default()
    };
    let mut program = Program::new(config);
    let mut c = Collected::default();
    let events = src.events();
    let half = events.len() / 2;
    run_into(&mut program, &events[..half], &mut c);
    run_into(
        &mut program,
        &[StreamEvent::Discontinuity {
            reason: DiscontinuityReason::Reconnect,
        }],
        &mut c,
    );
    run_into(&mut program, &shifted(&events[half..], 1), &mut c);
    for name in [SOURCE, AUDIO] {
        let pl = program.playlist(name).unwrap();
        assert_eq!(pl.segments.len(), 6, "{name}");
        let last = c.segments[name].last().unwrap().msn;
        assert_eq!(pl.media_sequence, last - 5, "{name}");
        assert_eq!(pl.segments.first().unwrap().msn, pl.media_sequence);
        // The discontinuity segment slid out: counted.
        assert_eq!(pl.discontinuity_sequence, 1, "{name}");
        assert!(program.segment(name, pl.media_sequence - 1).is_none());
        assert!(program.part(name, pl.media_sequence - 1, 0).is_none());
        assert!(program.segment(name, pl.media_sequence).is_some());
        // Every segment in the window keeps its parts.
        for s in &pl.segments {
            assert!(!s.parts.is_empty());
            for p in &s.parts {
                assert!(program.part(name, s.msn, p.index).is_some());
            }
        }
    }
}

#[test]
fn the_end_flushes_everything() {
    let mut src = Source::new(30, 1);
    src.seconds = 3;
    let (program, c) = run(PackagerConfig::default(), &ended(&src.events()));
    assert!(c.ended);
    assert!(c.open.is_empty(), "no part left outside a segment");
    // Every frame was packaged: 90 video frames, 140 audio frames.
    let count = |name: &str| -> usize { c.chunks[name].iter().map(sample_count).sum() };
    assert_eq!(count(SOURCE), 90);
    assert_eq!(count(AUDIO), 140);
    let pl = program.playlist(SOURCE).unwrap();
    assert!(pl.ended && pl.pending.is_none());
    // Nothing after the end.
    let mut program = program;
    assert!(program.push(&StreamEvent::End).is_empty());
}

#[test]
fn a_late_audio_track_joins_the_grid() {
    let mut src = Source::new(30, 1);
    src.seconds = 10;
    let events = src.events();
    // Tracks with video only, then audio announced at 3 s.
    let mut late = vec![StreamEvent::Tracks(vec![video_track(Some(src.fps))])];
    let mut announced = false;
    for e in &events[1..] {
        if let StreamEvent::Frame(f) = e {
            if f.track == AUDIO_ID && f.dts < 3 * 48_000 {
                continue;
            }
            if f.track == AUDIO_ID && !announced {
                late.push(StreamEvent::Tracks(src.tracks()));
                announced = true;
            }
        }
        late.push(e.clone());
    }
    let (program, c) = run(PackagerConfig::default(), &ended(&late));
    check_rules(&program, &c, Floor::All, "late audio");
    let audio = &c.segments[AUDIO];
    assert_eq!(audio[0].msn, 2, "audio joins in the segment it starts in");
    assert_eq!(audio[1].msn, 3);
    assert_eq!(
        program.renditions(),
        vec![SOURCE.to_string(), AUDIO.to_string()]
    );
}

#[test]
fn multivariant_and_rendition_reports() {
    let src = Source::new(30000, 1001);
    let mut program = Program::new(PackagerConfig::default());
    assert!(program.multivariant().is_none());
    let events = src.events();
    program.push(&events[0]);
    // Before any segment is complete: an estimate, never 0.
    let m = program.multivariant().unwrap();
    assert!(m.variants[0].bandwidth > 0);
    for e in &events[1..30] {
        program.push(e);
    }
    let m = program.multivariant().unwrap();
    assert!(m.variants[0].bandwidth > 0 && m.variants[0].average_bandwidth > 0);
    for e in &events[30..] {
        program.push(e);
    }
    let m = program.multivariant().unwrap();
    let v = &m.variants[0];
    assert_eq!(v.name, SOURCE);
    assert_eq!(
        v.codecs,
        vec!["avc1.42c01f".to_string(), "mp4a.40.2".to_string()]
    );
    assert_eq!(v.resolution, Some((1280, 720)));
    assert!((v.frame_rate.unwrap() - 29.97).abs() < 0.001);
    assert!(v.bandwidth >= v.average_bandwidth && v.average_bandwidth > 0);
    // Peak of video + audio: at least the sum of the two averages.
    let a = m.audio.as_ref().unwrap();
    assert_eq!(
        (a.group_id.as_str(), a.name.as_str(), a.channels),
        (AUDIO, AUDIO, 2)
    );
    assert!(m.independent_segments);

    let reports = program.rendition_reports(SOURCE);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].uri, "../audio/index.m3u8");
    let audio = program.playlist(AUDIO).unwrap();
    let (msn, part) = match audio.pending.as_ref().filter(|p| !p.parts.is_empty()) {
        Some(p) => (p.msn, p.parts.len() as u32 - 1),
        None => {
            let s = audio.segments.last().unwrap();
            (s.msn, s.parts.len() as u32 - 1)
        }
    };
    assert_eq!((reports[0].last_msn, reports[0].last_part), (msn, part));
}

#[test]
fn config_defaults_validation_and_unknown_keys() {
    let config = PackagerConfig::default();
    assert_eq!(config.segment_target(), Duration::from_secs(2));
    assert_eq!(config.part_target(), Duration::from_millis(200));
    assert_eq!(config.window_segments, 12);
    config.validate().unwrap();
    let cases = [
        (
            PackagerConfig {
                segment_target_ms: 500,
                part_target_ms: 100,
                ..config.clone()
            },
            "packager.segment_target_ms: must be between 1000 and 30000, got 500",
        ),
        (
            PackagerConfig {
                part_target_ms: 20,
                ..config.clone()
            },
            "packager.part_target_ms: must be between 50 and 2000, got 20",
        ),
        (
            PackagerConfig {
                part_target_ms: 1500,
                ..config.clone()
            },
            "packager.part_target_ms: must be at most half of segment_target_ms (2000), got 1500",
        ),
        (
            PackagerConfig {
                window_segments: 3,
                ..config.clone()
            },
            "packager.window_segments: must be between 6 and 1000, got 3",
        ),
    ];
    for (bad, message) in cases {
        assert_eq!(bad.validate().unwrap_err().to_string(), message);
    }
}

#[test]
fn a_stalled_leader_does_not_hold_the_follower_forever() {
    let mut src = Source::new(30, 1);
    src.seconds = 16;
    // Video stops at 5 s for good; audio goes on to 16 s.
    let events: Vec<StreamEvent> = src
        .events()
        .into_iter()
        .filter(|e| !matches!(e, StreamEvent::Frame(f) if f.track == VIDEO && f.dts >= 5 * 90_000))
        .collect();
    let mut program = Program::new(PackagerConfig::default());
    let mut c = Collected::default();
    run_into(&mut program, &events, &mut c);
    check_rules(&program, &c, Floor::Spec, "stall");
    assert!(
        c.discontinuities.iter().any(|d| d.0 == AUDIO),
        "{:?}",
        c.discontinuities
    );
    // The audio queue is bounded: nothing older than the lead limit is held.
    let audio = program.playlist(AUDIO).unwrap();
    assert!(
        audio
            .segments
            .iter()
            .all(|s| s.duration <= Duration::from_millis(2450))
    );
    run_into(&mut program, &[StreamEvent::End], &mut c);
    check_rules(&program, &c, Floor::Spec, "stall, ended");
}

#[test]
fn config_deserializes_with_defaults_and_refuses_unknown_keys() {
    use serde::Deserialize;
    use serde::de::value::{Error as DeError, MapDeserializer};
    let parse = |pairs: &[(&'static str, u64)]| {
        PackagerConfig::deserialize(MapDeserializer::<_, DeError>::new(pairs.iter().copied()))
    };
    assert_eq!(parse(&[]).unwrap(), PackagerConfig::default());
    let config = parse(&[("part_target_ms", 300), ("window_segments", 8)]).unwrap();
    assert_eq!(
        config,
        PackagerConfig {
            part_target_ms: 300,
            window_segments: 8,
            ..PackagerConfig::default()
        }
    );
    let error = parse(&[("part_target", 300)]).unwrap_err().to_string();
    assert!(error.contains("unknown field `part_target`"), "{error}");
}

#[test]
fn scene_cut_keyframes_do_not_force_non_keyframe_cuts() {
    // A 2 s GOP whose counter restarts at scene cuts (as x264 does): keyframes at 0, 2,
    // 3 (scene cut), 5, 7, ... A scene cut 1 s into a segment ends it: waiting for the
    // next regular keyframe (2 s later) would pass the 2.45 s limit. (Predicting from
    // the last interval alone, 1 s, would not cut there and then have to cut at a
    // non-keyframe at 2.45 s.)
    let mut src = Source::new(30, 1);
    src.seconds = 12;
    let keyframes = [0u64, 60, 90, 150, 210, 270, 330];
    let events: Vec<StreamEvent> = src
        .events()
        .into_iter()
        .map(|e| match e {
            StreamEvent::Frame(mut f) if f.track == VIDEO => {
                f.keyframe = keyframes.contains(&(f.dts as u64 / 3000));
                StreamEvent::Frame(f)
            }
            other => other,
        })
        .collect();
    let (program, c) = run(PackagerConfig::default(), &ended(&events));
    check_rules(&program, &c, Floor::All, "scene cuts");
    let durations: Vec<u64> = c.segments[SOURCE]
        .iter()
        .map(|s| (s.duration.as_secs_f64() * 30.0).round() as u64)
        .collect();
    assert_eq!(
        durations,
        vec![60, 30, 60, 60, 60, 60, 30],
        "segment lengths in frames"
    );
    assert!(program.playlist(SOURCE).unwrap().independent_segments);
}

#[test]
fn parts_carry_the_ingest_time_of_their_last_sample() {
    // 25 fps and 48 kHz: every frame's time is a whole number of nanoseconds, and each
    // frame is received 5 ms after it (see `Source::frames`).
    let src = Source::new(25, 1);
    let mut program = Program::new(PackagerConfig::default());
    let mut parts = 0;
    for event in ended(&src.events()) {
        for output in program.push(&event) {
            let Output::Part {
                rendition,
                msn,
                index,
                data,
                last_received,
                ..
            } = output
            else {
                continue;
            };
            let moof = Moof::decode(&mut data.clone()).expect("moof");
            let traf = &moof.traf[0];
            let tfdt = traf.tfdt.as_ref().expect("tfdt").base_media_decode_time;
            let durations: Vec<u64> = traf
                .trun
                .iter()
                .flat_map(|t| t.samples.iter())
                .map(|e| u64::from(e.duration.expect("duration")))
                .collect();
            let last_dts = tfdt + durations.iter().sum::<u64>() - durations.last().unwrap();
            let timescale: u64 = if rendition == SOURCE { 90_000 } else { 48_000 };
            let expected = epoch()
                + Duration::from_millis(5)
                + Duration::from_nanos(last_dts * 1_000_000_000 / timescale);
            assert_eq!(last_received, expected, "{rendition} part {msn}.{index}");
            parts += 1;
        }
    }
    assert!(parts > 100, "{parts} parts");
}

/// Adds `jitter` ms (cycled over the video frames in decode order) to every video
/// frame's timestamps, as a publisher's capture clock does.
fn jittered(events: &[StreamEvent], jitter: &[i64]) -> Vec<StreamEvent> {
    let mut i = 0;
    events
        .iter()
        .map(|e| match e {
            StreamEvent::Frame(f) if f.track == VIDEO => {
                let mut f = f.clone();
                let j = jitter[i % jitter.len()] * 90;
                (f.dts, f.pts) = (f.dts + j, f.pts + j);
                i += 1;
                StreamEvent::Frame(f)
            }
            other => other.clone(),
        })
        .collect()
}

/// (tfdt, total duration) of every chunk of a rendition, in order.
fn chunk_spans(c: &Collected, rendition: &str) -> Vec<(u64, u64)> {
    c.chunks[rendition]
        .iter()
        .map(|chunk| {
            let moof = Moof::decode(&mut chunk.clone()).expect("moof");
            let traf = &moof.traf[0];
            let total = traf
                .trun
                .iter()
                .flat_map(|t| t.samples.iter())
                .map(|e| u64::from(e.duration.expect("duration")))
                .sum();
            (
                traf.tfdt.as_ref().expect("tfdt").base_media_decode_time,
                total,
            )
        })
        .collect()
}

/// Per track, each chunk's tfdt is where the previous chunk ended.
fn check_tfdt_continuous(c: &Collected, label: &str) {
    for name in c.chunks.keys() {
        let spans = chunk_spans(c, name);
        for (i, w) in spans.windows(2).enumerate() {
            assert_eq!(
                w[1].0,
                w[0].0 + w[0].1,
                "{label} {name}: chunk {} tfdt after chunk {i}",
                i + 1
            );
        }
    }
}

#[test]
fn millisecond_jitter_keeps_regular_parts_within_the_rules() {
    // 25 fps with [2, 0, 0] ms made 160 ms parts against a 201 ms target (a 202 ms
    // jittered part could not fit, so it was cut a frame short).
    let patterns: [&[i64]; 4] = [&[2, 0, 0], &[0, 4], &[4, 0, 1, 3, 2], &[0, 0, 0, 4]];
    for (num, den) in FPS {
        for jitter in patterns {
            for audio in [None, Some(44_100), Some(48_000)] {
                let mut src = Source::new(num, den);
                src.rtmp = true;
                src.audio = audio;
                src.seconds = 8;
                let label = format!("{num}/{den} fps, jitter {jitter:?}, audio {audio:?}");
                let events = jittered(&src.events(), jitter);
                let (program, c) = run(PackagerConfig::default(), &ended(&events));
                check_rules(&program, &c, Floor::All, &label);
                check_video_grid(&c, &label);
            }
        }
    }
}

#[test]
fn a_late_last_frame_does_not_cut_the_last_part_short() {
    // 20 fps, 4 frames (200 ms) a part. The last frame arrives 8 ms late: a 58 ms
    // step. Given that step as its duration, it would not fit the open part (158 + 58 >
    // PART-TARGET), which would close as a 158 ms regular part; with the nominal 50 ms
    // it fits.
    let mut src = Source::new(20, 1);
    src.audio = None;
    src.seconds = 6;
    let mut events = src.events();
    let Some(StreamEvent::Frame(last)) = events.last_mut() else {
        panic!("last event is a frame");
    };
    (last.dts, last.pts) = (last.dts + 720, last.pts + 720);
    let (program, c) = run(PackagerConfig::default(), &ended(&events));
    assert_eq!(program.part_target(), Some(Duration::from_millis(208)));
    check_rules(&program, &c, Floor::All, "late last frame");
    let last = c.segments[SOURCE].last().unwrap();
    let durations: Vec<Duration> = last.parts.iter().map(|p| p.1).collect();
    assert_eq!(
        durations.last(),
        Some(&Duration::from_millis(208)),
        "{durations:?}"
    );
    let frames: usize = c.chunks[SOURCE].iter().map(sample_count).sum();
    assert_eq!(frames, 120);
}

#[test]
fn a_timestamp_jump_event_drops_nothing_and_tags_the_next_segment() {
    // Ingest reports the jump and has already made the timestamps continuous: the open
    // segment goes on, the next one (on the next IDR) carries the tag.
    let mut src = Source::new(30, 1);
    src.seconds = 8;
    let mut events = Vec::new();
    let mut video = 0;
    for e in src.events() {
        if matches!(&e, StreamEvent::Frame(f) if f.track == VIDEO) {
            if video == 75 {
                events.push(StreamEvent::Discontinuity {
                    reason: DiscontinuityReason::TimestampJump,
                });
            }
            video += 1;
        }
        events.push(e);
    }
    let (program, c) = run(PackagerConfig::default(), &ended(&events));
    check_rules(&program, &c, Floor::All, "jump event");
    check_video_grid(&c, "jump event");
    check_tfdt_continuous(&c, "jump event");
    // Frame 75 is in segment 2 ([60, 120) frames); segment 3 follows the jump.
    assert_eq!(
        c.discontinuities,
        vec![(SOURCE.to_string(), 3), (AUDIO.to_string(), 3)]
    );
    for name in [SOURCE, AUDIO] {
        let pl = program.playlist(name).unwrap();
        let tagged: Vec<u64> = pl
            .segments
            .iter()
            .filter(|s| s.discontinuity)
            .map(|s| s.msn)
            .collect();
        assert_eq!(tagged, vec![3], "{name}");
        assert!(pl.independent_segments, "{name}");
    }
    let count = |name: &str| -> usize { c.chunks[name].iter().map(sample_count).sum() };
    assert_eq!(count(SOURCE), 240, "no video frame dropped");
    assert_eq!(count(AUDIO), 48_000 * 8 / 1024, "no audio frame dropped");
}

#[test]
fn decode_times_continue_in_sync_across_discontinuities() {
    // A takeover (timestamps restart at zero) and a jump back without an event: each
    // track's tfdt goes on where it ended, and the new timeline starts at the same time
    // in both tracks (the audio's last sample before the break ends where the video's
    // does).
    for label in ["takeover", "backward jump"] {
        let mut src = Source::new(30, 1);
        src.seconds = 5;
        let first = src.events();
        let mut events = first.clone();
        if label == "takeover" {
            events.push(StreamEvent::Discontinuity {
                reason: DiscontinuityReason::Takeover,
            });
        }
        events.extend(first[1..].iter().cloned());
        let (program, c) = run(PackagerConfig::default(), &ended(&events));
        check_rules(&program, &c, Floor::Spec, label);
        check_tfdt_continuous(&c, label);
        // 5 s per session, whatever the input timestamps said.
        let (v, a) = (chunk_spans(&c, SOURCE), chunk_spans(&c, AUDIO));
        let v_end = v.last().map(|s| s.0 + s.1).unwrap();
        let a_end = a.last().map(|s| s.0 + s.1).unwrap();
        assert_eq!(v_end, 10 * 90_000, "{label}");
        assert_eq!(a_end, 10 * 48_000, "{label}");
        // Where the second session starts in each track: the first part of the tagged
        // segment.
        let tagged = c.discontinuities[0].1;
        let start = |name: &str| -> u64 {
            let i = c.chunk_ids[name]
                .iter()
                .position(|&(msn, index, _)| msn == tagged && index == 0)
                .expect("tagged segment");
            chunk_spans(&c, name)[i].0
        };
        assert_eq!(start(SOURCE), 5 * 90_000, "{label}");
        assert_eq!(start(AUDIO), 5 * 48_000, "{label}");
    }
}

#[test]
fn cuts_inside_a_gop_keep_every_follower_segment_within_the_limit() {
    // A 5 s GOP with real B-frame reordering (decode order I P B B P B B ...: a P
    // frame's pts is 4 frames after its dts, a B frame's 1). Segments are cut at
    // non-keyframes; cutting the audio at a P frame's pts made audio segments ~100 ms
    // longer than the video ones, past what EXTINF may round to.
    for gop in [150u64, 151, 152] {
        let mut src = Source::new(30, 1);
        src.gop = gop;
        src.seconds = 12;
        let mut i = 0u64;
        let events: Vec<StreamEvent> = src
            .events()
            .into_iter()
            .map(|e| match e {
                StreamEvent::Frame(mut f) if f.track == VIDEO => {
                    let k = i % gop;
                    let frames = match (k, (k.max(1) - 1) % 3) {
                        (0, _) => 2,
                        (_, 0) => 4,
                        _ => 1,
                    };
                    f.pts = f.dts + frames * 3000;
                    i += 1;
                    StreamEvent::Frame(f)
                }
                other => other,
            })
            .collect();
        let label = format!("GOP {gop}");
        let (program, c) = run(PackagerConfig::default(), &ended(&events));
        check_rules(&program, &c, Floor::Spec, &label);
        assert!(!program.playlist(SOURCE).unwrap().independent_segments);
        // The audio segments last what the video ones do, to within an audio frame.
        let (v, a) = (&c.segments[SOURCE], &c.segments[AUDIO]);
        for s in &a[1..a.len() - 1] {
            let vs = v.iter().find(|x| x.msn == s.msn).expect("video segment");
            assert!(
                s.duration.abs_diff(vs.duration) <= Duration::from_micros(21_400),
                "{label} {}: audio {:?} vs video {:?}",
                s.msn,
                s.duration,
                vs.duration
            );
        }
    }
}

#[test]
fn a_video_segment_shorter_than_an_audio_frame_still_gets_its_audio_segment() {
    // 60 fps with a GOP a little longer than the first segment's limit (2.45 s less the
    // keyframe's 33 ms composition offset): the segment is cut a frame or two before the
    // keyframe, which starts the next segment at once. That 17 or 33 ms segment can fall
    // inside one 23.2 ms audio frame (44.1 kHz); the audio must still make a segment of
    // that MSN, or its MSNs fall behind the video's for good.
    for gop in 146..=147 {
        let label = format!("GOP {gop}");
        let mut src = Source::new(60, 1);
        src.gop = gop;
        src.audio = Some(44_100);
        src.seconds = 8;
        let (program, c) = run(PackagerConfig::default(), &ended(&src.events()));
        check_rules(&program, &c, Floor::Spec, &label);
        let (v, a) = (&c.segments[SOURCE], &c.segments[AUDIO]);
        assert!(
            v.iter().any(|s| s.duration < Duration::from_millis(40)),
            "{label}: a short video segment: {:?}",
            v.iter().map(|s| s.duration).collect::<Vec<_>>()
        );
        let msns = |segs: &[SegRec]| segs.iter().map(|s| s.msn).collect::<Vec<_>>();
        assert_eq!(msns(v), msns(a), "{label}");
        // Segment N covers the same time in both: the audio segment starts (its program
        // date-time: its first sample's presentation time on the program clock) within
        // an audio frame of where the video segment starts on screen; the first segment
        // starts with both tracks.
        for (sv, sa) in v.iter().zip(a).skip(1) {
            let gap = sv
                .pdt
                .unwrap()
                .duration_since(sa.pdt.unwrap())
                .unwrap_or_else(|e| e.duration());
            assert!(
                gap <= Duration::from_micros(24_300),
                "{label} {}: {gap:?}",
                sv.msn
            );
        }
    }
}

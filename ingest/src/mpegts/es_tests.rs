use super::*;
use crate::mpegts::demux::{EsInfo, TsDemuxer};
use media::aac::AudioSpecificConfig;
use proptest::prelude::*;

/// 0.8 s of x264 (GOP 10, B-frames) + AAC 48 kHz mono from ffmpeg (testdata/gen_flv.sh).
const FILE: &[u8] = include_bytes!("../../testdata/h264_aac.ts");
const VPID: u16 = 0x100;
const APID: u16 = 0x101;

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
}

fn capture() -> Vec<TsEvent> {
    let mut d = TsDemuxer::new();
    let mut events = d.push(FILE);
    events.extend(d.flush());
    events
}

fn feed(es: &mut EsFrames, events: impl IntoIterator<Item = TsEvent>) -> Vec<StreamEvent> {
    let mut out = Vec::new();
    for e in events {
        out.extend(es.push(e, t0()));
    }
    out
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

fn non_frames(events: &[StreamEvent]) -> Vec<&StreamEvent> {
    events
        .iter()
        .filter(|e| !matches!(e, StreamEvent::Frame(_)))
        .collect()
}

/// The capture's events with every PES time moved by `shift` ticks.
fn shifted(events: &[TsEvent], shift: i64) -> Vec<TsEvent> {
    events
        .iter()
        .filter(|e| matches!(e, TsEvent::Pes { .. }))
        .map(|e| match e.clone() {
            TsEvent::Pes {
                pid,
                pts,
                dts,
                data,
                random_access,
            } => TsEvent::Pes {
                pid,
                pts: pts.map(|t| t + shift),
                dts: dts.map(|t| t + shift),
                data,
                random_access,
            },
            other => other,
        })
        .collect()
}

#[test]
fn capture_gives_tracks_then_frames() {
    let mut es = EsFrames::new();
    let mut events = feed(&mut es, capture());
    events.extend(es.finish());
    let StreamEvent::Tracks(tracks) = &events[0] else {
        panic!("Tracks first: {:?}", events[0]);
    };
    assert_eq!(tracks.len(), 2);
    assert!(matches!(
        tracks[0].codec,
        Codec::H264 {
            width: 128,
            height: 72,
            ..
        }
    ));
    assert_eq!((tracks[1].id, tracks[1].timescale), (AUDIO_TRACK, 48_000));
    assert_eq!(non_frames(&events).len(), 1);

    let video = frames(&events, VIDEO_TRACK);
    assert_eq!(video.len(), 20);
    assert_eq!(
        video.iter().filter(|f| f.keyframe).count(),
        2,
        "GOP of 10 frames"
    );
    for f in &video {
        let nals: Vec<&[u8]> = media::nal::iter_length_prefixed(&f.data, 4)
            .collect::<media::Result<_>>()
            .expect("length-prefixed");
        assert!(
            nals.iter().all(|n| media::h264::nal_type(n) != Some(9)),
            "no AUD"
        );
        assert_eq!(f.keyframe, media::h264::contains_idr(&f.data));
    }
    // In-band SPS and PPS stay in the keyframes, as RTMP passes them through.
    assert!(
        media::nal::iter_length_prefixed(&video[0].data, 4)
            .any(|n| n.is_ok_and(|n| media::h264::nal_type(n) == Some(7)))
    );
    let audio = frames(&events, AUDIO_TRACK);
    assert_eq!(
        audio.len(),
        39,
        "ADTS frames of the capture (ffprobe counts 39)"
    );
    for w in audio.windows(2) {
        assert_eq!(w[1].pts - w[0].pts, 1024);
    }
    assert_eq!(video[0].dts.min(audio[0].pts), 0);
    assert_eq!(es.stats().frames, 59);
    assert_eq!(es.stats().dropped_frames, 0);
}

#[test]
fn frames_before_the_configuration_are_dropped() {
    // The first keyframe without its SPS and PPS: video starts at the second one.
    let mut events = capture();
    let first_video = events
        .iter_mut()
        .find_map(|e| match e {
            TsEvent::Pes { pid, data, .. } if *pid == VPID => Some(data),
            _ => None,
        })
        .expect("video PES");
    let mut stripped = Vec::new();
    for nal in media::nal::split_annexb(first_video) {
        if !matches!(media::h264::nal_type(nal), Some(7 | 8)) {
            stripped.extend_from_slice(&[0, 0, 0, 1]);
            stripped.extend_from_slice(nal);
        }
    }
    *first_video = Bytes::from(stripped);
    let mut es = EsFrames::new();
    let mut out = feed(&mut es, events);
    out.extend(es.finish());
    assert!(matches!(out[0], StreamEvent::Tracks(ref t) if t.len() == 2));
    let video = frames(&out, VIDEO_TRACK);
    assert_eq!(video.len(), 10);
    assert!(video[0].keyframe);
    assert_eq!(es.stats().dropped_frames, 10);
    // Audio from the start is kept (held until video arrived) and starts at zero.
    assert_eq!(frames(&out, AUDIO_TRACK).len(), 39);
    assert_eq!(frames(&out, AUDIO_TRACK)[0].pts, 0);
}

#[test]
fn missing_audio_is_waited_for_about_a_second_then_joins_later() {
    let events = capture();
    let streams = events[0].clone();
    assert!(matches!(streams, TsEvent::Streams(ref s) if s.len() == 2));
    let video_only: Vec<TsEvent> = shifted(&events, 0)
        .into_iter()
        .filter(|e| matches!(e, TsEvent::Pes { pid, .. } if *pid == VPID))
        .collect();
    let mut es = EsFrames::new();
    let mut out = feed(&mut es, [streams]);
    // 0.8 s of video: not yet a second, no tracks, frames held.
    out.extend(feed(&mut es, video_only.clone()));
    assert!(out.is_empty());
    // The next 0.8 s passes the second: video-only tracks, and the held frames.
    out.extend(feed(&mut es, shifted(&video_only, 72_000)));
    let StreamEvent::Tracks(t) = &out[0] else {
        panic!("Tracks first");
    };
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].id, VIDEO_TRACK);
    assert_eq!(frames(&out, VIDEO_TRACK).len(), 40);
    // Audio appears later: a codec change with both tracks.
    let n = out.len();
    out.extend(feed(&mut es, shifted(&events, 144_000)));
    let tail = non_frames(&out[n..]);
    assert_eq!(
        tail[0],
        &StreamEvent::Discontinuity {
            reason: DiscontinuityReason::CodecChange
        }
    );
    assert!(matches!(tail[1], StreamEvent::Tracks(t) if t.len() == 2));
    assert!(!frames(&out[n..], AUDIO_TRACK).is_empty());
    let video = frames(&out, VIDEO_TRACK);
    assert!(video.windows(2).all(|w| w[1].dts > w[0].dts));
}

fn adts_pes(asc: &AudioSpecificConfig, payloads: &[&[u8]], pts: i64) -> TsEvent {
    let mut data = Vec::new();
    for p in payloads {
        let h = AdtsHeader::for_payload(asc, p.len()).expect("adts header");
        data.extend_from_slice(&h.to_bytes());
        data.extend_from_slice(p);
    }
    TsEvent::Pes {
        pid: APID,
        pts: Some(pts),
        dts: None,
        data: Bytes::from(data),
        random_access: true,
    }
}

fn audio_only() -> TsEvent {
    TsEvent::Streams(vec![EsInfo {
        pid: APID,
        kind: EsKind::Aac,
    }])
}

#[test]
fn several_adts_frames_per_pes_and_garbage_between_them() {
    let asc = AudioSpecificConfig::new(2, 48_000, 2).expect("asc");
    let mut es = EsFrames::new();
    let mut out = feed(
        &mut es,
        [
            audio_only(),
            adts_pes(&asc, &[&[1; 10], &[2; 11], &[3; 12]], 900_000),
            adts_pes(&asc, &[&[4; 13], &[5; 14]], 900_000 + 3 * 1920),
        ],
    );
    // Garbage before and between frames of one PES is skipped.
    let TsEvent::Pes { data, .. } = adts_pes(&asc, &[&[6; 15], &[7; 16]], 900_000 + 5 * 1920)
    else {
        unreachable!()
    };
    let mut messy = vec![0x12, 0xff, 0x00];
    messy.extend_from_slice(&data[..22]);
    messy.extend_from_slice(&[0xff, 0x13, 0x99]);
    messy.extend_from_slice(&data[22..]);
    out.extend(feed(
        &mut es,
        [TsEvent::Pes {
            pid: APID,
            pts: Some(900_000 + 5 * 1920),
            dts: None,
            data: Bytes::from(messy),
            random_access: false,
        }],
    ));
    out.extend(es.finish());
    let StreamEvent::Tracks(t) = &out[0] else {
        panic!("Tracks first");
    };
    assert_eq!(t[0].codec.audio(), Some((48_000, 2)));
    assert_eq!(t[0].timescale, 48_000);
    let audio = frames(&out, AUDIO_TRACK);
    let got: Vec<(i64, u8, usize)> = audio
        .iter()
        .map(|f| (f.pts, f.data[0], f.data.len()))
        .collect();
    assert_eq!(
        got,
        (0..7)
            .map(|i| (i * 1024, i as u8 + 1, 10 + i as usize))
            .collect::<Vec<_>>()
    );
    assert!(es.stats().adts_errors >= 2);
}

#[test]
fn sample_rate_change_is_a_codec_change() {
    let a = AudioSpecificConfig::new(2, 48_000, 2).expect("asc");
    let b = AudioSpecificConfig::new(2, 44_100, 2).expect("asc");
    let mut es = EsFrames::new();
    let out = feed(
        &mut es,
        [
            audio_only(),
            adts_pes(&a, &[&[1; 10], &[1; 10]], 0),
            adts_pes(&a, &[&[1; 10]], 3840),
            adts_pes(&b, &[&[2; 10]], 5760),
            adts_pes(&b, &[&[2; 10]], 5760 + 2090),
        ],
    );
    let events: Vec<String> = out
        .iter()
        .map(|e| match e {
            StreamEvent::Tracks(t) => format!("tracks {}", t[0].timescale),
            StreamEvent::Frame(f) => format!("frame {}", f.pts),
            StreamEvent::Discontinuity { reason } => format!("{reason:?}"),
            StreamEvent::End => "end".into(),
        })
        .collect();
    assert_eq!(
        events,
        [
            "tracks 48000",
            "frame 0",
            "frame 1024",
            "frame 2048",
            "CodecChange",
            "tracks 44100",
            "frame 2822",
            "frame 3846",
        ]
    );
}

#[test]
fn backward_jump_is_a_discontinuity_and_time_goes_on() {
    let events = capture();
    let mut es = EsFrames::new();
    let mut out = feed(&mut es, events.clone());
    // The same media again with the same (now earlier) timestamps, as after an encoder
    // restart.
    out.extend(feed(&mut es, shifted(&events, 0)));
    out.extend(es.finish());
    let jumps = out
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
    assert!(jumps >= 1);
    let video = frames(&out, VIDEO_TRACK);
    let audio = frames(&out, AUDIO_TRACK);
    assert_eq!(video.len(), 40);
    assert!(video.windows(2).all(|w| w[1].dts > w[0].dts));
    assert!(audio.windows(2).all(|w| w[1].pts > w[0].pts));
    // The second copy continues right after the first (within a frame or two).
    assert!(video[20].dts - video[19].dts <= 2 * 3600);
}

#[test]
fn garbage_pes_never_panics() {
    let mut es = EsFrames::new();
    let streams = TsEvent::Streams(vec![
        EsInfo {
            pid: VPID,
            kind: EsKind::H264,
        },
        EsInfo {
            pid: APID,
            kind: EsKind::Aac,
        },
    ]);
    es.push(streams, t0());
    let junk: [&[u8]; 6] = [
        &[],
        &[0, 0, 1],
        &[0, 0, 1, 0x67, 0xff, 0xff],
        &[0, 0, 1, 0x68],
        &[0xff, 0xf1, 0, 0, 0, 0, 0],
        &[0xff, 0xf1, 0x50, 0x80, 0xff, 0xff, 0xfc, 1, 2, 3],
    ];
    for (i, data) in junk.iter().enumerate() {
        for pid in [VPID, APID] {
            es.push(
                TsEvent::Pes {
                    pid,
                    pts: Some(i as i64 * 3000),
                    dts: None,
                    data: Bytes::copy_from_slice(data),
                    random_access: false,
                },
                t0(),
            );
        }
    }
    es.finish();
    assert!(es.stats().codec_errors >= 1);
}

#[test]
fn wall_clock_also_ends_the_startup_wait() {
    // Video only, although the PMT lists audio too; 40 ms of media per PES but 400 ms
    // of wall-clock time between them (a publisher that sends slower than real time).
    let events = capture();
    let mut es = EsFrames::new();
    es.push(events[0].clone(), t0());
    let video: Vec<TsEvent> = events
        .into_iter()
        .filter(|e| matches!(e, TsEvent::Pes { pid, .. } if *pid == VPID))
        .collect();
    let mut out = Vec::new();
    let mut tracks_at = None;
    for (i, ev) in video.into_iter().enumerate() {
        out.extend(es.push(ev, t0() + Duration::from_millis(400 * i as u64)));
        if tracks_at.is_none() && out.iter().any(|e| matches!(e, StreamEvent::Tracks(_))) {
            tracks_at = Some(i);
        }
    }
    // PES 0 at 0 ms ... PES 3 at 1.2 s: the wait is over at the first PES past 1 s.
    assert_eq!(tracks_at, Some(3));
    assert_eq!(frames(&out, VIDEO_TRACK).len(), 20);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    /// The capture with bytes changed, removed and inserted, through both stages: no
    /// panic; tracks before frames; video well-formed and its DTS never back; audio PTS
    /// strictly increasing within one configuration.
    #[test]
    fn damaged_capture_through_both_stages(
        edits in proptest::collection::vec((0usize..FILE.len(), any::<u8>(), 0u8..3), 1..40),
        step in 1usize..2000,
    ) {
        let mut data = FILE.to_vec();
        for (at, byte, op) in edits {
            let at = at.min(data.len().saturating_sub(1));
            match op {
                0 => data[at] = byte,
                1 => { data.remove(at); }
                _ => data.insert(at, byte),
            }
        }
        let mut ts = crate::mpegts::TsFrames::new();
        let mut out = Vec::new();
        for chunk in data.chunks(step) {
            out.extend(ts.push(chunk, t0()));
        }
        out.extend(ts.finish(t0()));
        let mut announced: Vec<u32> = Vec::new();
        let mut last_dts: [Option<i64>; 2] = [None, None];
        for e in &out {
            match e {
                StreamEvent::Tracks(t) => {
                    announced = t.iter().map(|t| t.id).collect();
                    last_dts[AUDIO_TRACK as usize] = None;
                }
                StreamEvent::Frame(f) => {
                    prop_assert!(announced.contains(&f.track));
                    let last = &mut last_dts[f.track as usize];
                    if f.track == VIDEO_TRACK {
                        prop_assert!(media::nal::iter_length_prefixed(&f.data, 4).all(|n| n.is_ok()));
                        prop_assert!(last.is_none_or(|l| f.dts >= l));
                    } else {
                        prop_assert!(last.is_none_or(|l| f.pts > l));
                    }
                    *last = Some(f.dts);
                }
                _ => {}
            }
        }
    }
}

#[test]
fn another_video_codec_in_a_new_pmt_waits_for_its_own_configuration() {
    let events = capture();
    let mut es = EsFrames::new();
    let out = feed(&mut es, events.clone());
    let before = frames(&out, VIDEO_TRACK).len();
    assert_eq!(before, 20);
    // The PMT now says H.265 on the same PID, but the PES still hold H.264: nothing
    // decodable as H.265 comes out under the old H.264 configuration.
    let hevc = TsEvent::Streams(vec![
        EsInfo {
            pid: VPID,
            kind: EsKind::H265,
        },
        EsInfo {
            pid: APID,
            kind: EsKind::Aac,
        },
    ]);
    let mut more = feed(&mut es, [hevc]);
    more.extend(feed(&mut es, shifted(&events, 72_000)));
    assert!(frames(&more, VIDEO_TRACK).is_empty());
    assert!(!frames(&more, AUDIO_TRACK).is_empty());
}

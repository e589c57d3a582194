//! Program tests on synthetic streams: frame timing is exact (or millisecond-rounded as
//! RTMP carries it), payloads are small fake bytes. The boxes are decoded with
//! `mp4-atom` (strict) where their fields matter.
//!
//! This module is the harness (a synthetic publisher, a runner that checks every output
//! against the program's lookups, and the rule checks); the cases are in `cases` and
//! the property test in `props`.
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use media::{Codec, DiscontinuityReason, Frame, FrameRate, StreamEvent, TrackInfo};
use mp4_atom::{Decode, Moof};

use super::*;

#[path = "program_cases.rs"]
mod cases;
#[path = "program_dates.rs"]
mod dates;
#[path = "program_props.rs"]
mod props;
#[path = "program_rungs.rs"]
mod rungs;

const AVCC: &[u8] = include_bytes!("../testdata/h264_baseline_720p30.avcc");
const AVCC_HIGH: &[u8] = include_bytes!("../testdata/h264_high_1080p2997.avcc");
const VIDEO: u32 = 0;
const AUDIO_ID: u32 = 1;

fn video_track(fps: Option<FrameRate>) -> TrackInfo {
    TrackInfo {
        id: VIDEO,
        codec: Codec::H264 {
            avcc: Bytes::from_static(AVCC),
            width: 1280,
            height: 720,
            fps,
        },
        timescale: 90_000,
    }
}

/// AAC LC stereo AudioSpecificConfig at `rate`.
fn audio_track(rate: u32) -> TrackInfo {
    let index: u16 = match rate {
        48_000 => 3,
        44_100 => 4,
        _ => panic!("rate"),
    };
    let word: u16 = (2 << 11) | (index << 7) | (2 << 3);
    TrackInfo {
        id: AUDIO_ID,
        codec: Codec::aac(Bytes::copy_from_slice(&word.to_be_bytes())).expect("asc"),
        timescale: rate,
    }
}

fn epoch() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// A synthetic publisher.
#[derive(Clone, Debug)]
struct Source {
    fps: FrameRate,
    /// Keyframe interval in frames.
    gop: u64,
    video: bool,
    audio: Option<u32>,
    /// Timestamps rounded to whole milliseconds, as RTMP carries video.
    rtmp: bool,
    /// Signal the frame rate in the codec (else the packager measures it).
    signal_fps: bool,
    seconds: u64,
}

impl Source {
    fn new(num: u32, den: u32) -> Source {
        let fps = FrameRate { num, den };
        Source {
            fps,
            gop: (2 * u64::from(num)).div_ceil(u64::from(den)),
            video: true,
            audio: Some(48_000),
            rtmp: false,
            signal_fps: true,
            seconds: 12,
        }
    }

    fn tracks(&self) -> Vec<TrackInfo> {
        let mut t = Vec::new();
        if self.video {
            t.push(video_track(self.signal_fps.then_some(self.fps)));
        }
        if let Some(rate) = self.audio {
            t.push(audio_track(rate));
        }
        t
    }

    /// Frames interleaved by time, starting at `offset` seconds.
    fn frames(&self) -> Vec<Frame> {
        let (num, den) = (i128::from(self.fps.num), i128::from(self.fps.den));
        let mut timed: Vec<(i128, u8, Frame)> = Vec::new(); // (ns, order, frame)
        if self.video {
            let count = u64::from(self.fps.num) * self.seconds / u64::from(self.fps.den);
            for i in 0..count {
                let ns = i128::from(i) * den * 1_000_000_000 / num;
                let dts = if self.rtmp {
                    ((ns + 500_000) / 1_000_000) * 90
                } else {
                    (i128::from(i) * den * 90_000 + num / 2) / num
                };
                let frame_ticks = (den * 90_000 / num) as i64;
                let dts = dts as i64;
                timed.push((
                    ns,
                    0,
                    Frame {
                        track: VIDEO,
                        pts: dts + 2 * frame_ticks,
                        dts,
                        keyframe: i % self.gop == 0,
                        data: Bytes::from(vec![(i % 251) as u8; 40 + (i % 13) as usize]),
                        received: epoch() + Duration::from_nanos(ns as u64 + 5_000_000),
                    },
                ));
            }
        }
        if let Some(rate) = self.audio {
            let count = u64::from(rate) * self.seconds / 1024;
            for k in 0..count {
                let ticks = (k * 1024) as i64;
                let ns = i128::from(ticks) * 1_000_000_000 / i128::from(rate);
                timed.push((
                    ns,
                    1,
                    Frame {
                        track: AUDIO_ID,
                        pts: ticks,
                        dts: ticks,
                        keyframe: true,
                        data: Bytes::from(vec![0xA0; 8 + (k % 5) as usize]),
                        received: epoch() + Duration::from_nanos(ns as u64 + 5_000_000),
                    },
                ));
            }
        }
        timed.sort_by_key(|(ns, order, _)| (*ns, *order));
        timed.into_iter().map(|(_, _, f)| f).collect()
    }

    fn events(&self) -> Vec<StreamEvent> {
        let mut events = vec![StreamEvent::Tracks(self.tracks())];
        events.extend(self.frames().into_iter().map(StreamEvent::Frame));
        events
    }
}

/// Shifts frames by `seconds` (positive or negative) on every track.
fn shifted(events: &[StreamEvent], seconds: i64) -> Vec<StreamEvent> {
    events
        .iter()
        .map(|e| match e {
            StreamEvent::Frame(f) => {
                let ts = if f.track == VIDEO { 90_000 } else { 48_000 };
                let mut f = f.clone();
                f.dts += seconds * ts;
                f.pts += seconds * ts;
                StreamEvent::Frame(f)
            }
            other => other.clone(),
        })
        .collect()
}

#[derive(Clone, Debug, Default)]
struct SegRec {
    msn: u64,
    duration: Duration,
    pdt: Option<SystemTime>,
    parts: Vec<(u32, Duration, bool, Bytes)>,
}

/// Everything a run produced, per rendition.
#[derive(Default)]
struct Collected {
    inits: Vec<(String, u32)>,
    /// Complete segments, in order.
    segments: BTreeMap<String, Vec<SegRec>>,
    /// Parts of the segment being built.
    open: BTreeMap<String, SegRec>,
    discontinuities: Vec<(String, u64)>,
    ended: bool,
    /// Every part's bytes in order, per rendition.
    chunks: BTreeMap<String, Vec<Bytes>>,
    /// (msn, index, independent) of every part, in the same order.
    chunk_ids: BTreeMap<String, Vec<(u64, u32, bool)>>,
}

/// Pushes `events`, checking every output against the program's lookups as it comes.
fn run_into(program: &mut Program, events: &[StreamEvent], c: &mut Collected) {
    for event in events {
        let outputs = program.push(event);
        collect(program, outputs, c);
    }
}

/// Records `outputs`, checking each against the program's lookups.
fn collect(program: &Program, outputs: Vec<Output>, c: &mut Collected) {
    {
        for output in outputs {
            match output {
                Output::Init {
                    rendition,
                    version,
                    data,
                } => {
                    assert_eq!(program.init(&rendition, version), Some(data));
                    c.inits.push((rendition, version));
                }
                Output::Part {
                    rendition,
                    msn,
                    index,
                    duration,
                    independent,
                    data,
                    ..
                } => {
                    assert!(!c.ended);
                    let open = c.open.entry(rendition.clone()).or_default();
                    if open.parts.is_empty() {
                        open.msn = msn;
                    }
                    assert_eq!(open.msn, msn, "{rendition}: part of another segment");
                    assert_eq!(
                        open.parts.len() as u32,
                        index,
                        "{rendition} {msn}: part index"
                    );
                    assert_eq!(program.part(&rendition, msn, index).as_ref(), Some(&data));
                    open.parts
                        .push((index, duration, independent, data.clone()));
                    c.chunk_ids.entry(rendition.clone()).or_default().push((
                        msn,
                        index,
                        independent,
                    ));
                    c.chunks.entry(rendition).or_default().push(data);
                }
                Output::Segment {
                    rendition,
                    msn,
                    duration,
                    program_date_time,
                } => {
                    let mut rec = c.open.remove(&rendition).expect("segment with parts");
                    assert_eq!(rec.msn, msn);
                    rec.duration = duration;
                    rec.pdt = Some(program_date_time);
                    let mut concat = BytesMut::new();
                    for p in &rec.parts {
                        concat.extend_from_slice(&p.3);
                    }
                    assert_eq!(
                        program.segment(&rendition, msn),
                        Some(concat.freeze()),
                        "{rendition} {msn}: segment = concatenation of its parts"
                    );
                    let sum: Duration = rec.parts.iter().map(|p| p.1).sum();
                    assert!(
                        sum.abs_diff(duration) < Duration::from_micros(10),
                        "{rendition} {msn}: parts sum {sum:?} vs {duration:?}"
                    );
                    c.segments.entry(rendition).or_default().push(rec);
                }
                Output::Discontinuity { rendition, msn } => {
                    c.discontinuities.push((rendition, msn))
                }
                Output::Ended => c.ended = true,
            }
        }
    }
}

fn run(config: PackagerConfig, events: &[StreamEvent]) -> (Program, Collected) {
    let mut program = Program::new(config);
    let mut c = Collected::default();
    run_into(&mut program, events, &mut c);
    (program, c)
}

fn ended(events: &[StreamEvent]) -> Vec<StreamEvent> {
    let mut e = events.to_vec();
    e.push(StreamEvent::End);
    e
}

/// Which parts the ">= 85 % of PART-TARGET" rule is checked on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Floor {
    /// Every part but the last of its segment (regular frame grids).
    All,
    /// The spec's: parts that are neither INDEPENDENT=YES nor last [S §4.4.4.9].
    Spec,
    /// Not checked: dropped frames leave samples no online cutter can pack into
    /// parts of 85 % (a part must end before a long sample that would overflow it).
    Off,
}

/// The part rules [S §4.4.4.9] and segment rules [S §4.4.3.1] on every rendition.
fn check_rules(program: &Program, c: &Collected, floor: Floor, label: &str) {
    let pt = program.part_target().expect("part target");
    let td = f64::from(program.target_duration());
    for (name, segs) in &c.segments {
        for s in segs {
            assert!(!s.parts.is_empty(), "{label} {name} {}: no parts", s.msn);
            for (i, p) in s.parts.iter().enumerate() {
                assert!(
                    p.1 <= pt,
                    "{label} {name} {} part {i}: {:?} > PT {pt:?}",
                    s.msn,
                    p.1
                );
                let last = i + 1 == s.parts.len();
                if !last && (floor == Floor::All || (floor == Floor::Spec && !p.2)) {
                    assert!(
                        p.1.as_secs_f64() >= 0.85 * pt.as_secs_f64(),
                        "{label} {name} {} part {i}: {:?} < 0.85 x {pt:?}",
                        s.msn,
                        p.1
                    );
                }
                if name == AUDIO {
                    assert!(p.2, "{label}: audio parts are independent");
                }
            }
            assert!(
                s.duration.as_secs_f64().round() <= td,
                "{label} {name} {}: EXTINF {:?} rounds above TD {td}",
                s.msn,
                s.duration
            );
        }
        // MSNs consecutive.
        for w in segs.windows(2) {
            assert_eq!(w[0].msn + 1, w[1].msn, "{label} {name}: MSNs consecutive");
        }
    }
}

/// Video segments start on keyframes (first part independent) and last the target
/// (the source GOP is 2 s), except the last.
fn check_video_grid(c: &Collected, label: &str) {
    let segs = &c.segments[SOURCE];
    assert_eq!(segs[0].msn, 1, "{label}: MSN starts at 1");
    for (i, s) in segs.iter().enumerate() {
        assert!(s.parts[0].2, "{label} {}: first part independent", s.msn);
        for p in &s.parts[1..] {
            assert!(
                !p.2,
                "{label} {}: only the first part starts on an IDR",
                s.msn
            );
        }
        if i + 1 < segs.len() {
            let d = s.duration.as_secs_f64();
            assert!((1.95..=2.05).contains(&d), "{label} {}: {d}", s.msn);
        }
    }
}

/// Audio segment N starts at the audio frame nearest to the pts of the video frame
/// that starts video segment N: compare the segments' program date-times (both their
/// first sample's presentation time on the program clock). The
/// first segment of each timeline is exempt: it starts with the first frame of each
/// track.
fn check_alignment(c: &Collected, audio_frame: f64, label: &str) {
    let (v, a) = (&c.segments[SOURCE], &c.segments[AUDIO]);
    assert!(
        v.len().abs_diff(a.len()) <= 1,
        "{label}: counts {} vs {}",
        v.len(),
        a.len()
    );
    let fresh: Vec<u64> = c.discontinuities.iter().map(|d| d.1).collect();
    for s in a {
        let Some(vs) = v.iter().find(|x| x.msn == s.msn) else {
            continue;
        };
        if s.msn == v[0].msn || fresh.contains(&s.msn) {
            continue;
        }
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        let boundary = secs(vs.pdt.unwrap());
        let start = secs(s.pdt.unwrap());
        assert!(
            (boundary - start).abs() <= audio_frame / 2.0 + 0.0011,
            "{label} msn {}: video boundary {boundary}, audio start {start}",
            s.msn
        );
    }
    assert_eq!(v[0].msn, a[0].msn, "{label}: first MSN");
}

const FPS: [(u32, u32); 6] = [
    (25, 1),
    (30000, 1001),
    (30, 1),
    (50, 1),
    (60000, 1001),
    (60, 1),
];

/// Sample count of one chunk, from its `trun`.
fn sample_count(chunk: &Bytes) -> usize {
    let moof = Moof::decode(&mut chunk.clone()).expect("moof");
    moof.traf[0].trun.iter().map(|t| t.samples.len()).sum()
}

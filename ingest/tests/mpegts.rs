//! MPEG-TS demux and elementary streams -> frames, checked against ffprobe on transport
//! streams that real ffmpeg writes (x264, x265, AAC), whole, in random chunks, with
//! garbage inserted, with a packet lost, across the 33-bit wrap and a clock jump.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use ingest::mpegts::{EsFrames, EsKind, TsDemuxer, TsEvent, TsStats};
use media::{Codec, DiscontinuityReason, Frame, StreamEvent};
use rand::{Rng, SeedableRng};

const VIDEO: u32 = 0;
const AUDIO: u32 = 1;

/// Writes `<name>.ts` with ffmpeg (lavfi sources, 4 s; written anew each time); `args` go
/// between the inputs and the output.
fn ffmpeg_ts(name: &str, audio_rate: u32, args: &[&str]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mpegts");
    std::fs::create_dir_all(&dir).expect("create tmp dir");
    let path = dir.join(format!("{name}.ts"));
    let tmp = dir.join(format!("{name}.{}.tmp.ts", std::process::id()));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=25")
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:sample_rate={audio_rate}"))
        .args(args)
        .args(["-t", "4", "-f", "mpegts"])
        .arg(&tmp)
        .stdin(Stdio::null())
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg failed for {name}");
    std::fs::rename(&tmp, &path).expect("rename");
    path
}

#[derive(Debug, Clone)]
struct Packet {
    video: bool,
    pts: i64,
    dts: i64,
    keyframe: bool,
    size: usize,
    /// Byte offset of the packet where the PES starts (ffprobe knows it for the first
    /// frame of each PES).
    pos: Option<usize>,
}

/// `ffprobe -show_packets` of a file: codec type, pts, dts, key flag, size.
fn ffprobe(path: &Path) -> Vec<Packet> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_packets", "-of", "json"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ffprobe");
    assert!(out.status.success(), "ffprobe failed");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let num = |v: &serde_json::Value| v.as_i64().or_else(|| v.as_str()?.parse().ok());
    v["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|p| Packet {
            video: p["codec_type"] == "video",
            pts: num(&p["pts"]).expect("pts"),
            dts: num(&p["dts"]).expect("dts"),
            keyframe: p["flags"].as_str().is_some_and(|f| f.contains('K')),
            size: num(&p["size"]).expect("size") as usize,
            pos: num(&p["pos"]).map(|p| p as usize),
        })
        .collect()
}

/// A fixed arrival time: the wall-clock startup wait never runs out, so results depend
/// only on the bytes.
fn received() -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)
}

struct Run {
    ts_events: Vec<TsEvent>,
    events: Vec<StreamEvent>,
    stats: TsStats,
}

impl Run {
    fn frames(&self, track: u32) -> Vec<&Frame> {
        self.events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Frame(f) if f.track == track => Some(f),
                _ => None,
            })
            .collect()
    }

    fn pes(&self) -> Vec<(u16, Option<i64>, &[u8])> {
        self.ts_events
            .iter()
            .filter_map(|e| match e {
                TsEvent::Pes { pid, pts, data, .. } => Some((*pid, *pts, &data[..])),
                _ => None,
            })
            .collect()
    }
}

/// Demuxes `bytes` fed in the given chunk sizes (the rest in one go).
fn run(bytes: &[u8], chunks: impl IntoIterator<Item = usize>) -> Run {
    let mut demux = TsDemuxer::new();
    let mut es = EsFrames::new();
    let mut ts_events = Vec::new();
    let mut pos = 0;
    for len in chunks {
        let end = (pos + len).min(bytes.len());
        ts_events.extend(demux.push(&bytes[pos..end]));
        pos = end;
    }
    ts_events.extend(demux.push(&bytes[pos..]));
    ts_events.extend(demux.flush());
    let mut events = Vec::new();
    for ev in &ts_events {
        events.extend(es.push(ev.clone(), received()));
    }
    events.extend(es.finish());
    Run {
        ts_events,
        events,
        stats: demux.stats(),
    }
}

/// Checks every frame against ffprobe's packets of the same file: count, order,
/// keyframes, timestamps (rebased by the earliest DTS of either track), sizes.
fn compare_with_ffprobe(run: &Run, probe: &[Packet], audio_rate: i64) {
    let pv: Vec<&Packet> = probe.iter().filter(|p| p.video).collect();
    let pa: Vec<&Packet> = probe.iter().filter(|p| !p.video).collect();
    let base = pv[0].dts.min(pa[0].dts);
    let video = run.frames(VIDEO);
    let audio = run.frames(AUDIO);
    assert_eq!(video.len(), pv.len(), "video frame count");
    assert_eq!(audio.len(), pa.len(), "audio frame count");
    for (i, (f, p)) in video.iter().zip(&pv).enumerate() {
        assert_eq!(f.dts, p.dts - base, "video dts of frame {i}");
        assert_eq!(f.pts, p.pts - base, "video pts of frame {i}");
        assert_eq!(f.keyframe, p.keyframe, "video keyframe flag of frame {i}");
        // Length-prefixed, no AUD: well-formed, and no larger than the Annex B input.
        let nals: Vec<&[u8]> = media::nal::iter_length_prefixed(&f.data, 4)
            .collect::<Result<_, _>>()
            .expect("length-prefixed NAL units");
        assert!(!nals.is_empty());
        assert!(f.data.len() <= p.size + 4, "video size of frame {i}");
    }
    for (i, (f, p)) in audio.iter().zip(&pa).enumerate() {
        let expected = ((p.pts - base) * audio_rate + 45_000).div_euclid(90_000);
        assert!(
            (f.pts - expected).abs() <= 1,
            "audio pts of frame {i}: {} vs ffprobe {expected}",
            f.pts
        );
        assert_eq!(f.dts, f.pts);
        assert!(f.keyframe);
        // ffprobe counts the 7-byte ADTS header; the frame is the raw AU.
        assert_eq!(f.data.len() + 7, p.size, "audio size of frame {i}");
    }
    assert!(video[0].keyframe, "video starts on a keyframe");
    assert_eq!(video[0].dts.min(audio[0].dts), 0, "rebased to zero");
    assert!(video.windows(2).all(|w| w[1].dts > w[0].dts));
    assert!(audio.windows(2).all(|w| w[1].pts > w[0].pts));
}

fn tracks(run: &Run) -> &[media::TrackInfo] {
    match run.events.first() {
        Some(StreamEvent::Tracks(t)) => t,
        other => panic!("first event is not Tracks: {other:?}"),
    }
}

fn h264_aac() -> (PathBuf, Vec<u8>) {
    // 44.1 kHz audio: 1024 samples are not a whole number of 90 kHz ticks.
    let path = ffmpeg_ts(
        "h264_aac",
        44_100,
        &["-c:v", "libx264", "-g", "50", "-bf", "2", "-c:a", "aac"],
    );
    let bytes = std::fs::read(&path).expect("read ts");
    (path, bytes)
}

#[test]
fn h264_aac_matches_ffprobe() {
    let (path, bytes) = h264_aac();
    let run = run(&bytes, []);
    let t = tracks(&run);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].id, VIDEO);
    assert_eq!(t[0].timescale, 90_000);
    assert!(matches!(
        t[0].codec,
        Codec::H264 {
            width: 320,
            height: 240,
            ..
        }
    ));
    assert_eq!(t[1].id, AUDIO);
    assert_eq!(t[1].timescale, 44_100);
    assert_eq!(t[1].codec.audio(), Some((44_100, 1)));
    assert_eq!(t[1].codec.rfc6381(), "mp4a.40.2");
    let streams: Vec<EsKind> = run
        .ts_events
        .iter()
        .find_map(|e| match e {
            TsEvent::Streams(s) => Some(s.iter().map(|s| s.kind).collect()),
            _ => None,
        })
        .expect("Streams event");
    assert_eq!(streams, [EsKind::H264, EsKind::Aac]);
    compare_with_ffprobe(&run, &ffprobe(&path), 44_100);
    // Only one Tracks, no discontinuity.
    assert_eq!(
        run.events
            .iter()
            .filter(|e| !matches!(e, StreamEvent::Frame(_)))
            .count(),
        1
    );
    let s = run.stats;
    assert_eq!(s.packets as usize, bytes.len() / 188);
    assert_eq!((s.continuity_errors, s.resyncs, s.pes_errors), (0, 0, 0));
    assert_eq!(s.skipped_bytes, 0);
}

#[test]
fn h265_aac_matches_ffprobe() {
    let path = ffmpeg_ts(
        "h265_aac",
        48_000,
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "keyint=50:log-level=error",
            "-c:a",
            "aac",
        ],
    );
    let bytes = std::fs::read(&path).expect("read ts");
    let run = run(&bytes, []);
    let t = tracks(&run);
    assert!(matches!(
        t[0].codec,
        Codec::H265 {
            width: 320,
            height: 240,
            ..
        }
    ));
    assert!(t[0].codec.rfc6381().starts_with("hvc1."));
    assert_eq!(t[1].codec.audio(), Some((48_000, 1)));
    let probe = ffprobe(&path);
    compare_with_ffprobe(&run, &probe, 48_000);
    assert!(run.frames(VIDEO).iter().filter(|f| f.keyframe).count() >= 2);
}

#[test]
fn random_chunks_give_the_same_result() {
    let (_, bytes) = h264_aac();
    let whole = run(&bytes, []);
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    for round in 0..8 {
        // Mostly small pieces (1 to 400 bytes), some as large as an SRT payload.
        let max = if round % 2 == 0 { 400 } else { 1316 * 3 };
        let chunks: Vec<usize> = (0..bytes.len())
            .map(|_| rng.random_range(1..=max))
            .collect();
        let split = run(&bytes, chunks);
        assert_same(
            &split.ts_events,
            &whole.ts_events,
            &format!("round {round}"),
        );
        assert_same(&split.events, &whole.events, &format!("round {round}"));
        assert_eq!(split.stats, whole.stats, "round {round}");
    }
    // Byte by byte.
    let single = run(&bytes, std::iter::repeat_n(1, bytes.len()));
    assert_same(&single.events, &whole.events, "byte by byte");
    // The same through TsFrames, in SRT-sized payloads (7 packets).
    let mut frames = ingest::mpegts::TsFrames::new();
    let mut events = Vec::new();
    for chunk in bytes.chunks(7 * 188) {
        events.extend(frames.push(chunk, received()));
    }
    events.extend(frames.finish(received()));
    assert_same(&events, &whole.events, "TsFrames");
    assert_eq!(frames.ts_stats(), whole.stats);
    assert_eq!(
        frames.es_stats().frames as usize,
        whole.frames(VIDEO).len() + whole.frames(AUDIO).len()
    );
    assert_eq!(frames.streams().len(), 2);
}

/// Packet index, PID and payload_unit_start of each packet.
fn packets(bytes: &[u8]) -> Vec<(usize, u16, bool)> {
    bytes
        .chunks_exact(188)
        .enumerate()
        .map(|(i, p)| {
            (
                i,
                (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]),
                p[1] & 0x40 != 0,
            )
        })
        .collect()
}

fn video_pid(run: &Run) -> u16 {
    run.ts_events
        .iter()
        .find_map(|e| match e {
            TsEvent::Streams(s) => s.iter().find(|s| s.kind == EsKind::H264).map(|s| s.pid),
            _ => None,
        })
        .expect("video pid")
}

/// `damaged`'s PES are `clean`'s with exactly `missing` video PES left out.
fn assert_lost_only(clean: &Run, damaged: &Run, video: u16, missing: usize) {
    let a = clean.pes();
    let b = damaged.pes();
    assert_eq!(b.len() + missing, a.len(), "PES count");
    let mut j = 0;
    let mut lost = 0;
    for pes in &a {
        if b.get(j) == Some(pes) {
            j += 1;
        } else {
            assert_eq!(pes.0, video, "only video PES are lost");
            lost += 1;
        }
    }
    assert_eq!(
        (j, lost),
        (b.len(), missing),
        "damaged PES are a subsequence"
    );
}

#[test]
fn garbage_inside_a_packet_resyncs_and_loses_only_that_pes() {
    let (_, bytes) = h264_aac();
    let clean = run(&bytes, []);
    let video = video_pid(&clean);
    let garbage: Vec<u8> = (0..100u32).map(|i| (i * 7 + 3) as u8 | 0x80).collect();
    assert!(!garbage.contains(&0x47));
    // A video packet in the middle that continues a PES; the inserted bytes must not
    // make a false sync pattern with what follows (so the test is deterministic).
    let pkts = packets(&bytes);
    let (index, ..) = pkts[pkts.len() / 2..]
        .iter()
        .copied()
        .find(|&(i, pid, pusi)| {
            if pid != video || pusi || pkts[i + 1].1 != video || pkts[i + 1].2 {
                return false;
            }
            let mut d = bytes[i * 188..i * 188 + 50].to_vec();
            d.extend_from_slice(&garbage);
            d.extend_from_slice(&bytes[i * 188 + 50..(i + 4) * 188]);
            (1..288).all(|k| !(d[k] == 0x47 && d[k + 188] == 0x47))
        })
        .expect("a suitable packet");
    let at = index * 188 + 50;
    let mut damaged = bytes[..at].to_vec();
    damaged.extend_from_slice(&garbage);
    damaged.extend_from_slice(&bytes[at..]);
    let run = run(&damaged, []);
    assert_eq!(run.stats.resyncs, 1);
    assert_eq!(run.stats.pes_errors, 1);
    assert_eq!(run.stats.continuity_errors, 1);
    assert_eq!(run.stats.skipped_bytes, 288);
    assert_lost_only(&clean, &run, video, 1);
    // One video frame fewer; every other frame is unchanged.
    let cv = clean.frames(VIDEO);
    let dv = run.frames(VIDEO);
    assert_eq!(dv.len() + 1, cv.len());
    assert!(dv.iter().all(|f| cv.contains(f)));
    assert_same(&run.frames(AUDIO), &clean.frames(AUDIO), "audio");

    // Garbage before the first packet: skipped, nothing lost.
    let mut framed = garbage.clone();
    framed.extend_from_slice(&bytes);
    let run = run_framed(&framed);
    assert_eq!(run.stats.resyncs, 1);
    assert_eq!(run.stats.skipped_bytes, garbage.len() as u64);
    assert_same(&run.events, &clean.events, "garbage first");
}

/// Compares event lists without printing megabytes of frame data.
fn assert_same<T: PartialEq + std::fmt::Debug>(a: &[T], b: &[T], what: &str) {
    if a == b {
        return;
    }
    let first = a.iter().zip(b).position(|(x, y)| x != y);
    let brief = |x: Option<&T>| format!("{x:?}").chars().take(300).collect::<String>();
    panic!(
        "{what}: {} vs {} events, first difference at {first:?}: {} vs {}",
        a.len(),
        b.len(),
        brief(first.and_then(|i| a.get(i))),
        brief(first.and_then(|i| b.get(i))),
    );
}

fn run_framed(bytes: &[u8]) -> Run {
    run(bytes, [])
}

#[test]
fn lost_packet_counts_a_continuity_error_and_drops_its_pes() {
    let (_, bytes) = h264_aac();
    let clean = run(&bytes, []);
    let video = video_pid(&clean);
    let pkts = packets(&bytes);
    let (index, ..) = pkts[pkts.len() / 3..]
        .iter()
        .copied()
        .find(|&(i, pid, pusi)| pid == video && !pusi && pkts[i + 1].1 == video && !pkts[i + 1].2)
        .expect("a continuation packet");
    let mut damaged = bytes[..index * 188].to_vec();
    damaged.extend_from_slice(&bytes[(index + 1) * 188..]);
    let run = run(&damaged, []);
    assert_eq!(run.stats.continuity_errors, 1);
    assert_eq!(run.stats.resyncs, 0);
    assert_eq!(run.stats.pes_errors, 1);
    assert_lost_only(&clean, &run, video, 1);
    assert_eq!(run.frames(VIDEO).len() + 1, clean.frames(VIDEO).len());

    // A duplicated packet (allowed once by the standard) is ignored.
    let mut dup = bytes[..(index + 1) * 188].to_vec();
    dup.extend_from_slice(&bytes[index * 188..]);
    let run = run_framed(&dup);
    assert_eq!(run.stats.continuity_errors, 0);
    assert_same(&run.events, &clean.events, "duplicate");
}

#[test]
fn pts_wraparound_continues_monotonic() {
    // Timestamps start about one second before the 33-bit wrap.
    let path = ffmpeg_ts(
        "h264_wrap",
        48_000,
        &[
            "-c:v",
            "libx264",
            "-g",
            "50",
            "-c:a",
            "aac",
            "-output_ts_offset",
            "95441.3",
        ],
    );
    let bytes = std::fs::read(&path).expect("read ts");
    let run = run(&bytes, []);
    let raw: Vec<i64> = run
        .ts_events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Pes { pts, .. } => *pts,
            _ => None,
        })
        .collect();
    let wrap = 1i64 << 33;
    assert!(raw.iter().any(|&t| t < wrap) && raw.iter().any(|&t| t > wrap));
    compare_with_ffprobe(&run, &ffprobe(&path), 48_000);
    assert!(
        !run.events
            .iter()
            .any(|e| matches!(e, StreamEvent::Discontinuity { .. }))
    );
    let video = run.frames(VIDEO);
    assert!(video.windows(2).all(|w| w[1].dts - w[0].dts == 3600));
}

#[test]
fn clock_jump_is_a_discontinuity_and_time_keeps_going() {
    let (_, first) = h264_aac();
    // The same program again with its clock 100 s later (as from a restarted encoder).
    let path = ffmpeg_ts(
        "h264_later",
        44_100,
        &[
            "-c:v",
            "libx264",
            "-g",
            "50",
            "-bf",
            "2",
            "-c:a",
            "aac",
            "-output_ts_offset",
            "100",
        ],
    );
    let second = std::fs::read(&path).expect("read ts");
    let mut bytes = first.clone();
    bytes.extend_from_slice(&second);
    let a = run(&first, []);
    let run = run(&bytes, []);
    let jumps = run
        .events
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
    assert!(jumps >= 1, "a timestamp jump is reported");
    let video = run.frames(VIDEO);
    let audio = run.frames(AUDIO);
    assert!(video.windows(2).all(|w| w[1].dts > w[0].dts));
    for w in audio.windows(2) {
        assert!(w[1].pts > w[0].pts, "audio {} then {}", w[0].pts, w[1].pts);
    }
    // The second part starts right after the first (not 100 s later).
    let end_of_first = a.frames(VIDEO).last().expect("video").dts;
    let after = video[a.frames(VIDEO).len()..].first().expect("second part");
    assert!(after.dts > end_of_first && after.dts - end_of_first <= 2 * 3600 + 90_000 / 2);
    assert!(video.last().unwrap().dts < 9 * 90_000);
}

#[test]
fn unsupported_streams_are_listed_and_skipped() {
    let path = ffmpeg_ts(
        "h264_mp2",
        48_000,
        &["-c:v", "libx264", "-g", "50", "-c:a", "mp2"],
    );
    let bytes = std::fs::read(&path).expect("read ts");
    let run = run(&bytes, []);
    let kinds: Vec<EsKind> = run
        .ts_events
        .iter()
        .find_map(|e| match e {
            TsEvent::Streams(s) => Some(s.iter().map(|s| s.kind).collect()),
            _ => None,
        })
        .expect("Streams");
    assert_eq!(kinds[0], EsKind::H264);
    assert!(matches!(kinds[1], EsKind::Unsupported(0x03 | 0x04)));
    let t = tracks(&run);
    assert_eq!(t.len(), 1, "video only");
    assert!(run.frames(AUDIO).is_empty());
    let probe = ffprobe(&path);
    assert_eq!(
        run.frames(VIDEO).len(),
        probe.iter().filter(|p| p.video).count()
    );
}

#[test]
fn joining_mid_stream_starts_at_a_keyframe() {
    let (path, bytes) = h264_aac();
    let probe = ffprobe(&path);
    // Cut inside a packet, a third into the file (before the second keyframe at 2 s).
    let cut = bytes.len() / 3 + 77;
    let run = run(&bytes[cut..], []);
    assert_eq!(run.stats.resyncs, 1);
    let pv: Vec<&Packet> = probe.iter().filter(|p| p.video).collect();
    // The first keyframe whose PES starts after the cut (ffmpeg repeats SPS/PPS there).
    let first_key = pv
        .iter()
        .position(|p| p.keyframe && p.pos.expect("video pos") >= cut)
        .expect("a keyframe after the cut");
    let expected = &pv[first_key..];
    let video = run.frames(VIDEO);
    assert_eq!(video.len(), expected.len());
    assert!(video[0].keyframe);
    let audio = run.frames(AUDIO);
    assert!(!audio.is_empty());
    let base = video[0].dts.min(audio[0].dts);
    assert_eq!(base, 0);
    // Same spacing as ffprobe's from the first frame on.
    for (f, p) in video.iter().zip(expected) {
        assert_eq!(f.dts - video[0].dts, p.dts - expected[0].dts);
        assert_eq!(f.pts - f.dts, p.pts - p.dts);
        assert_eq!(f.keyframe, p.keyframe);
    }
}

#[test]
fn new_parameter_sets_are_a_codec_change() {
    let (_, first) = h264_aac();
    // Another resolution, its clock continuing shortly after the first file's end (4.2 s
    // later: with 4 s, the second file's audio would start before the first one's end,
    // a step back reported as a TimestampJump).
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mpegts");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("h264_small.ts");
    let tmp = dir.join(format!("h264_small.{}.tmp.ts", std::process::id()));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=160x120:rate=25")
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-c:v", "libx264", "-g", "50", "-bf", "2", "-c:a", "aac"])
        .args(["-output_ts_offset", "4.2", "-t", "2", "-f", "mpegts"])
        .arg(&tmp)
        .stdin(Stdio::null())
        .status()
        .expect("run ffmpeg");
    assert!(status.success());
    std::fs::rename(&tmp, &path).expect("rename");
    let mut bytes = first.clone();
    bytes.extend_from_slice(&std::fs::read(&path).expect("read"));
    let run = run(&bytes, []);
    let control: Vec<&StreamEvent> = run
        .events
        .iter()
        .filter(|e| !matches!(e, StreamEvent::Frame(_)))
        .collect();
    let brief: Vec<String> = control
        .iter()
        .map(|e| format!("{e:?}").chars().take(60).collect())
        .collect();
    assert_eq!(control.len(), 3, "Tracks, CodecChange, Tracks: {brief:?}");
    assert_eq!(
        control[1],
        &StreamEvent::Discontinuity {
            reason: DiscontinuityReason::CodecChange
        }
    );
    let StreamEvent::Tracks(t) = control[2] else {
        panic!("new Tracks");
    };
    assert_eq!(t[0].codec.dimensions(), Some((160, 120)));
    assert_eq!(t.len(), 2);
    // The frame right after the change is the new stream's first keyframe.
    let at = run
        .events
        .iter()
        .position(
            |e| matches!(e, StreamEvent::Tracks(t) if t[0].codec.dimensions() == Some((160, 120))),
        )
        .expect("second Tracks");
    let next_video = run.events[at..]
        .iter()
        .find_map(|e| match e {
            StreamEvent::Frame(f) if f.track == VIDEO => Some(f),
            _ => None,
        })
        .expect("video after the change");
    assert!(next_video.keyframe);
    let video = run.frames(VIDEO);
    assert!(video.windows(2).all(|w| w[1].dts > w[0].dts));
}

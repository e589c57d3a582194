//! Discontinuities through the packager: timestamps jumping forward (+5 s) and backward
//! (-3 s) in the middle of a GOP (through `FrameBuilder`, which reports them), a publisher
//! takeover (timestamps restart), and a codec change (a second source at another
//! resolution: a new init segment and EXT-X-MAP).
//!
//! Checked: EXT-X-DISCONTINUITY lands on the first segment boundary at or after each
//! break (exactly on it for the takeover and the codec change, which start on an IDR),
//! DISCONTINUITY-SEQUENCE counts the tagged segments that slid out of a small window,
//! the EXT-X-MAP of every segment names the init its samples need, and PDT follows the
//! ingest wall-clock across the jumps.
//!
//! "Players need no restart": the whole run, written as an HLS directory with ENDLIST,
//! decodes end to end with ffmpeg's HLS demuxer (ffprobe -count_frames on the
//! multivariant playlist) to every frame that went in, without a decode error.
//! ffmpeg 5.1's HLS demuxer feeds a new EXT-X-MAP to its mp4 demuxer, which skips a
//! second `moov` ("Found duplicated MOOV Atom"), so it can only follow a resolution
//! change through parameter sets repeated in-band: the second source repeats them
//! (x264 through `dump_extra`), as broadcast encoders do. That the new init itself is
//! right is checked directly: its avcC carries the second source's SPS/PPS, and each run
//! of segments decodes on its own with only its EXT-X-MAP in front.
mod support;

#[path = "../packager/tests/support/llhls.rs"]
mod llhls;
#[path = "support/packager_run.rs"]
mod run;
#[path = "support/packager.rs"]
mod source;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use media::{DiscontinuityReason, Frame, StreamEvent};
use mp4_atom::{Atom, Codec as SampleEntry, Decode, Moov};
use packager::PackagerConfig;
use packager::playlist::{RenderOptions, render_media, render_multivariant};
use run::{Run, ffprobe, parse_chunks, parse_init, top_boxes, write_concat};
use source::{AUDIO_TAG, Tag, VIDEO_TAG};

const VIDEO: u32 = ingest::rtmp::frames::VIDEO_TRACK;
const AUDIO: u32 = ingest::rtmp::frames::AUDIO_TRACK;

/// 8 s of 320x180 30 fps H.264 High (B-frames, GOP 2 s) + 48 kHz stereo AAC.
fn source_a() -> PathBuf {
    support::fixture(
        "packager-disc-a-320x180.flv",
        "ffmpeg -hide_banner -nostdin -loglevel error -y \
         -f lavfi -i testsrc2=size=320x180:rate=30 \
         -f lavfi -i sine=frequency=440:sample_rate=48000 \
         -t 8 -pix_fmt yuv420p -c:v libx264 -profile:v high -bf 2 -g 60 -r 30 \
         -c:a aac -ar 48000 -ac 2 -f flv \"$OUT\"",
    )
}

/// 6 s at 480x270 (another SPS), parameter sets repeated before every IDR.
fn source_b() -> PathBuf {
    support::fixture(
        "packager-disc-b-480x270.flv",
        "ffmpeg -hide_banner -nostdin -loglevel error -y \
         -f lavfi -i testsrc=size=480x270:rate=30 \
         -f lavfi -i sine=frequency=880:sample_rate=48000 \
         -t 6 -pix_fmt yuv420p -c:v libx264 -profile:v high -bf 2 -g 60 -r 30 \
         -bsf:v dump_extra=freq=keyframe \
         -c:a aac -ar 48000 -ac 2 -f flv \"$OUT\"",
    )
}

fn read_tags(path: &Path) -> Vec<Tag> {
    source::flv_tags(&std::fs::read(path).expect("read FLV"))
}

/// Shifts every tag's timestamp by `ts` ms and its arrival by `wall` ms.
fn shifted(tags: &[Tag], ts: i64, wall: i64) -> Vec<Tag> {
    tags.iter()
        .map(|t| Tag {
            ts: (i64::from(t.ts) + ts) as u32,
            wall_ms: t.wall_ms + wall,
            ..t.clone()
        })
        .collect()
}

/// The whole session, as the hub delivers it:
/// - publisher 1: source A; from 3.0 s its clock jumps +5 s, from 5.5 s it steps back 3 s
///   (arrival times stay regular: only the timestamps jump);
/// - takeover by publisher 2: source A again (timestamps from 0), then source B right
///   after A's last frame, whose new sequence header is a codec change.
fn session() -> Vec<StreamEvent> {
    let a = read_tags(&source_a());
    let b = read_tags(&source_b());
    let pub1: Vec<Tag> = a
        .iter()
        .map(|t| {
            let jump = match t.ts {
                ts if t.is_sequence_header() || ts < 3000 => 0,
                ts if ts < 5500 => 5000,
                _ => 2000,
            };
            Tag {
                ts: t.ts + jump,
                ..t.clone()
            }
        })
        .collect();
    let mut events = source::publish(&pub1);
    events.push(StreamEvent::Discontinuity {
        reason: DiscontinuityReason::Takeover,
    });
    // B's first frame of each track follows A's last one by one frame interval, as an
    // encoder that changes its video settings goes on.
    let next = |kind: u8| {
        let ts: Vec<i64> = a
            .iter()
            .filter(|t| t.kind == kind && t.is_coded_frame())
            .map(|t| i64::from(t.ts))
            .collect();
        ts[ts.len() - 1] * 2 - ts[ts.len() - 2]
    };
    let first = |kind: u8| {
        i64::from(
            b.iter()
                .find(|t| t.kind == kind && t.is_coded_frame())
                .expect("coded frame")
                .ts,
        )
    };
    let (video_shift, audio_shift) = (
        next(VIDEO_TAG) - first(VIDEO_TAG),
        next(AUDIO_TAG) - first(AUDIO_TAG),
    );
    let mut b_tags: Vec<Tag> = b
        .iter()
        .map(|t| {
            let shift = if t.kind == AUDIO_TAG {
                audio_shift
            } else {
                video_shift
            };
            Tag {
                ts: (i64::from(t.ts) + shift) as u32,
                wall_ms: t.wall_ms + shift + 8_100,
                ..t.clone()
            }
        })
        .collect();
    b_tags.sort_by_key(|t| t.ts);
    let mut pub2 = shifted(&a, 0, 8_100);
    pub2.extend(b_tags);
    events.extend(source::publish(&pub2));
    events.push(StreamEvent::End);
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

/// For each discontinuity event: its reason and the index (among `track`'s frames) of
/// the first frame after it.
fn breaks(events: &[StreamEvent], track: u32) -> Vec<(DiscontinuityReason, usize)> {
    let mut out = Vec::new();
    let mut seen = 0;
    for e in events {
        match e {
            StreamEvent::Frame(f) if f.track == track => seen += 1,
            StreamEvent::Discontinuity { reason } => out.push((reason.clone(), seen)),
            _ => {}
        }
    }
    out
}

/// Where the packaged samples of a rendition came from: for each segment (MSN, init
/// version) the index among `frames` of its first sample, and the frames that were not
/// packaged. Samples are matched to frames by their bytes, in order.
struct Packaged {
    starts: Vec<(u64, usize, u32)>,
    dropped: Vec<usize>,
    samples: usize,
}

fn packaged(run: &Run, rendition: &str, frames: &[&Frame]) -> Packaged {
    let log = run.log(rendition);
    let (mut starts, mut dropped) = (Vec::new(), Vec::new());
    let mut next = 0;
    let mut samples = 0;
    for p in &log.parts {
        let init = parse_init(&log.inits[&p.init_version]);
        for (i, sample) in parse_chunks(&p.data, &init)
            .iter()
            .flat_map(|c| &c.samples)
            .enumerate()
        {
            let at = frames[next..]
                .iter()
                .position(|f| f.data == sample.data)
                .unwrap_or_else(|| panic!("{rendition} part {}.{}: a sample that is no frame pushed after frame {next}", p.msn, p.index))
                + next;
            dropped.extend(next..at);
            if p.index == 0 && i == 0 {
                starts.push((p.msn, at, p.init_version));
            }
            next = at + 1;
            samples += 1;
        }
    }
    dropped.extend(next..frames.len());
    Packaged {
        starts,
        dropped,
        samples,
    }
}

/// Runs of consecutive indices, for messages.
fn ranges(indices: &[usize]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &i in indices {
        match out.last_mut() {
            Some(r) if r.1 + 1 == i => r.1 = i,
            _ => out.push((i, i)),
        }
    }
    out
}

#[test]
fn discontinuities_are_tagged_where_the_breaks_are() {
    let events = session();
    let reasons: Vec<_> = breaks(&events, VIDEO).into_iter().map(|b| b.0).collect();
    assert_eq!(
        reasons,
        [
            DiscontinuityReason::TimestampJump,
            DiscontinuityReason::TimestampJump,
            DiscontinuityReason::Takeover,
            DiscontinuityReason::CodecChange
        ],
        "the session as FrameBuilder and the hub deliver it"
    );

    // A small window, so tagged segments slide out while we watch.
    let window = 6;
    let mut run = Run::new(PackagerConfig {
        window_segments: window,
        ..PackagerConfig::default()
    });
    let mut slid_checks = 0;
    for e in &events {
        if run.push(e).is_empty() {
            continue;
        }
        for r in run.program.renditions() {
            let Some(pl) = run.program.playlist(&r) else {
                continue;
            };
            let tagged: BTreeSet<u64> = run
                .logs
                .get(&r)
                .map(|l| l.discontinuities.iter().copied().collect())
                .unwrap_or_default();
            // Segments tagged and already gone = the discontinuity sequence.
            let first = pl.segments.first().map_or(pl.media_sequence, |s| s.msn);
            assert_eq!(
                first, pl.media_sequence,
                "{r}: MEDIA-SEQUENCE is the first segment's MSN"
            );
            let gone = tagged.iter().filter(|&&d| d < first).count() as u64;
            assert_eq!(
                pl.discontinuity_sequence, gone,
                "{r}: DISCONTINUITY-SEQUENCE with MSN {first}, tagged {tagged:?}"
            );
            for s in &pl.segments {
                assert_eq!(
                    s.discontinuity,
                    tagged.contains(&s.msn),
                    "{r}: segment {} tag",
                    s.msn
                );
            }
            assert!(
                pl.segments.len() <= window,
                "{r}: {} segments in a window of {window}",
                pl.segments.len()
            );
            let text = render_media(
                &pl,
                &RenderOptions {
                    skip: false,
                    reports: &[],
                },
            );
            let line = format!("#EXT-X-DISCONTINUITY-SEQUENCE:{gone}");
            assert!(text.lines().any(|l| l == line), "{r}: no {line} in\n{text}");
            if gone > 0 {
                slid_checks += 1;
            }
        }
    }
    assert!(run.ended);
    assert!(
        slid_checks > 0,
        "no tagged segment ever slid out of the window"
    );

    let (mut lost, mut steps) = (Vec::new(), Vec::new());
    for (rendition, track) in [("source", VIDEO), ("audio", AUDIO)] {
        let log = run.log(rendition);
        let tagged: Vec<u64> = log
            .discontinuities
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            tagged.len(),
            4,
            "{rendition}: one tagged segment per break: {tagged:?}"
        );
        let track_frames = frames(&events, track);
        let Packaged {
            starts, dropped, ..
        } = packaged(&run, rendition, &track_frames);
        for ((reason, frame), msn) in breaks(&events, track).into_iter().zip(&tagged) {
            // The tagged segment is the first one starting at or after the break.
            let first_at_or_after = starts.iter().find(|s| s.1 >= frame).unwrap_or_else(|| {
                panic!("{rendition}: no segment after the {reason:?} at frame {frame}")
            });
            assert_eq!(
                first_at_or_after.0, *msn,
                "{rendition}: {reason:?} at frame {frame} tagged on segment {msn}; segment starts {starts:?}"
            );
            if matches!(
                reason,
                DiscontinuityReason::Takeover | DiscontinuityReason::CodecChange
            ) && track == VIDEO
            {
                assert_eq!(
                    first_at_or_after.1, frame,
                    "{rendition}: the {reason:?} starts a segment on its IDR"
                );
            }
        }
        // The audio grid follows the video grid: same tagged MSNs.
        if track == AUDIO {
            let video: BTreeSet<u64> = run.log("source").discontinuities.iter().copied().collect();
            assert_eq!(
                tagged.iter().copied().collect::<BTreeSet<_>>(),
                video,
                "audio and video tag the same segments"
            );
        }
        // PDT is the program clock (anchored at each timeline's first frame, then media
        // time): close to the ingest wall-clock of each segment's first frame, jumps or
        // not. Not equal: the first audio sample is shown before the first picture (the
        // source's two-frame composition offset), and the clock follows media time, not
        // each frame's arrival.
        for seg in &log.segments {
            let (_, first, _) = starts
                .iter()
                .find(|s| s.0 == seg.msn)
                .expect("segment start");
            let f = track_frames[*first];
            let skew = seg
                .program_date_time
                .duration_since(f.received)
                .unwrap_or_else(|e| e.duration());
            assert!(
                skew <= Duration::from_millis(100),
                "{rendition} segment {}: PDT off by {skew:?}",
                seg.msn
            );
        }
        // LLHLS.md: per track, each part's tfdt is where the previous part's samples end,
        // across parts and segments (discontinuities included).
        let mut end: Option<(u64, u64, u32)> = None;
        for p in &log.parts {
            let c = &parse_chunks(&p.data, &parse_init(&log.inits[&p.init_version]))[0];
            if let Some((t, msn, index)) = end
                && c.tfdt != t
            {
                steps.push(format!("{rendition}: part {}.{} tfdt {} after part {msn}.{index} ended at {t} ({:+} ticks)", p.msn, p.index, c.tfdt, i128::from(c.tfdt) - i128::from(t)));
            }
            end = Some((
                c.tfdt + c.samples.iter().map(|s| u64::from(s.duration)).sum::<u64>(),
                p.msn,
                p.index,
            ));
        }
        if !dropped.is_empty() {
            let breaks: Vec<(DiscontinuityReason, usize)> = breaks(&events, track);
            lost.push(format!(
                "{rendition}: frames {:?} of {} not packaged (breaks at {breaks:?})",
                ranges(&dropped),
                track_frames.len()
            ));
        }
    }

    // Video inits: the codec change needs a new one, with source B's parameter sets.
    let log = run.log("source");
    let versions: Vec<u32> = log.inits.keys().copied().collect();
    assert!(
        versions.len() >= 2,
        "a new init after the codec change: {versions:?}"
    );
    let last = parse_init(&log.inits[versions.last().unwrap()]);
    assert_eq!(last.dimensions, Some((480, 270)));
    assert_eq!(parse_init(&log.inits[&0]).dimensions, Some((320, 180)));
    let b_seq = read_tags(&source_b())
        .into_iter()
        .find(|t| t.kind == VIDEO_TAG && t.is_sequence_header())
        .expect("B's sequence header");
    let b_avcc = media::h264::AvcConfig::parse(&b_seq.body[5..]).expect("B's avcC");
    let init = &log.inits[versions.last().unwrap()];
    let boxes = top_boxes(init);
    let moov = Moov::decode(&mut &init[boxes[1].1..boxes[1].2]).expect("moov");
    let SampleEntry::Avc1(avc1) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
        panic!("avc1 entry")
    };
    assert_eq!(
        avc1.avcc.sequence_parameter_sets,
        b_avcc.sps.iter().map(|s| s.to_vec()).collect::<Vec<_>>(),
        "init SPS = source B's"
    );
    assert_eq!(
        avc1.avcc.picture_parameter_sets,
        b_avcc.pps.iter().map(|s| s.to_vec()).collect::<Vec<_>>(),
        "init PPS = source B's"
    );
    let _ = Moov::KIND;

    // Last: nothing the publisher sent is lost at a break (the decoder state survives a
    // timestamp jump; the frames up to the next IDR are as decodable as before it), and
    // decode times neither jump nor step back.
    lost.extend(steps);
    assert!(lost.is_empty(), "{}", lost.join("\n"));
}

#[test]
fn the_whole_session_plays_through_as_one_hls_presentation() {
    let events = session();
    let mut run = Run::new(PackagerConfig {
        window_segments: 1000,
        ..PackagerConfig::default()
    });
    run.push_all(&events);
    assert!(run.ended);

    let dir = support::temp_dir("packager-discontinuity-vod");
    std::fs::write(
        dir.join("index.m3u8"),
        render_multivariant(&run.program.multivariant().expect("multivariant")),
    )
    .unwrap();
    for rendition in run.program.renditions() {
        let log = run.log(&rendition);
        let rdir = dir.join(&rendition);
        std::fs::create_dir_all(&rdir).unwrap();
        for (v, data) in &log.inits {
            let name = if *v == 0 {
                "init.mp4".to_owned()
            } else {
                format!("init-{v}.mp4")
            };
            std::fs::write(rdir.join(name), data).unwrap();
        }
        for s in &log.segments {
            std::fs::write(rdir.join(format!("{}.m4s", s.msn)), &s.data).unwrap();
        }
        for p in &log.parts {
            std::fs::write(rdir.join(format!("{}.{}.m4s", p.msn, p.index)), &p.data).unwrap();
        }
        let pl = run.program.playlist(&rendition).expect("playlist");
        assert!(pl.ended, "{rendition}: ended");
        let reports = run.program.rendition_reports(&rendition);
        let text = render_media(
            &pl,
            &RenderOptions {
                skip: false,
                reports: &reports,
            },
        );
        std::fs::write(rdir.join("index.m3u8"), &text).unwrap();

        // What m3u8-rs reads: every segment, the tags where the breaks are, each
        // segment's EXT-X-MAP naming the init of its samples, every URI present.
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes())
            .expect("m3u8-rs parses the media playlist");
        assert!(parsed.end_list, "{rendition}: ENDLIST");
        assert_eq!(parsed.discontinuity_sequence, 0);
        assert_eq!(
            parsed.segments.len(),
            log.segments.len(),
            "{rendition}: every segment listed"
        );
        let tagged: BTreeSet<u64> = log.discontinuities.iter().copied().collect();
        let mut map = None;
        for (seg, out) in parsed.segments.iter().zip(&log.segments) {
            assert_eq!(seg.uri, format!("{}.m4s", out.msn));
            assert_eq!(
                seg.discontinuity,
                tagged.contains(&out.msn),
                "{rendition}: segment {} tag",
                out.msn
            );
            if let Some(m) = &seg.map {
                map = Some(m.uri.clone());
            }
            let version = log.parts_of(out.msn)[0].init_version;
            let want = if version == 0 {
                "init.mp4".to_owned()
            } else {
                format!("init-{version}.mp4")
            };
            assert_eq!(
                map.as_deref(),
                Some(want.as_str()),
                "{rendition}: EXT-X-MAP of segment {}",
                out.msn
            );
            assert!(rdir.join(&seg.uri).exists());
        }

        // Each run of segments between breaks decodes alone behind its own EXT-X-MAP.
        let mut spans: Vec<Vec<&run::SegmentOut>> = Vec::new();
        for out in &log.segments {
            if tagged.contains(&out.msn) || spans.is_empty() {
                spans.push(Vec::new());
            }
            spans.last_mut().unwrap().push(out);
        }
        for (i, span) in spans.iter().enumerate() {
            let version = log.parts_of(span[0].msn)[0].init_version;
            let init = &log.inits[&version];
            let info = parse_init(init);
            let samples: usize = span
                .iter()
                .map(|s| {
                    parse_chunks(&s.data, &info)
                        .iter()
                        .map(|c| c.samples.len())
                        .sum::<usize>()
                })
                .sum();
            let file = dir.join(format!("{rendition}-span-{i}.mp4"));
            write_concat(
                &file,
                std::iter::once(init).chain(span.iter().map(|s| &s.data)),
            );
            let probe = ffprobe(&file, &[]);
            assert!(
                probe.errors.trim().is_empty(),
                "{rendition} span {i}: {}",
                probe.errors
            );
            assert_eq!(
                probe.streams[0].frames as usize, samples,
                "{rendition} span {i}: decoded frames"
            );
        }
    }

    // The multivariant playlist, as a player opens it: both renditions, every frame.
    let (video, audio) = (frames(&events, VIDEO), frames(&events, AUDIO));
    let packaged_video = packaged(&run, "source", &video).samples;
    let packaged_audio = packaged(&run, "audio", &audio).samples;
    let master = dir.join("index.m3u8");
    let probe = ffprobe(&master, &[]);
    assert!(
        probe.errors.trim().is_empty(),
        "ffmpeg's HLS demuxer reported errors:\n{}",
        probe.errors
    );
    let (pv, pa) = (
        probe.packets_of("video").len(),
        probe.packets_of("audio").len(),
    );
    assert_eq!(
        (pv, pa),
        (packaged_video, packaged_audio),
        "packets read through the playlist vs packaged"
    );
    // The bitstream the playlist delivers decodes whole, with no restart: every frame.
    for (kind, map, format, demuxer, packaged) in [
        ("video", "0:v", "h264", "h264", packaged_video),
        ("audio", "0:a", "adts", "aac", packaged_audio),
    ] {
        let es = dir.join(format!("all.{format}"));
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-y", "-i"])
            .arg(&master)
            .args(["-map", map, "-c", "copy", "-f", format])
            .arg(&es)
            .output()
            .expect("run ffmpeg");
        assert!(
            out.status.success(),
            "ffmpeg copy of the {kind} playlist: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let decoded = ffprobe(&es, &["-f", demuxer]);
        assert!(
            decoded.errors.trim().is_empty(),
            "{kind} elementary stream decode errors:\n{}",
            decoded.errors
        );
        assert_eq!(
            decoded.streams[0].frames as usize, packaged,
            "{kind}: frames decoded from the playlist's bitstream vs packaged"
        );
    }
    // Decoded with its timestamps, as a player does.
    let (v, a) = (probe.stream("video"), probe.stream("audio"));
    assert_eq!(
        (v.frames as usize, a.frames as usize),
        (packaged_video, packaged_audio),
        "frames decoded through the playlist with their timestamps vs packaged (ffmpeg loses \
         frames where a rendition's decode times step back, e.g. at the takeover)"
    );
    assert_eq!(
        (packaged_video, packaged_audio),
        (video.len(), audio.len()),
        "frames packaged vs pushed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

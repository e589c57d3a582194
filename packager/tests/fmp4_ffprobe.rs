//! The fMP4 writer against ffprobe, with streams real encoders made for each test:
//! H.264 (B-frames) + AAC through an FLV and ingest's `FrameBuilder`, H.265 from the x265
//! CLI, AV1 from libaom, Opus from libopus. Each track is written as init + chunks to a
//! file; ffprobe must decode every frame without a message at `-v error`, and report
//! the timestamps, key flags and codec parameters the source had.
//!
//! Needs ffmpeg/ffprobe 5.1 (libx264, libaom, libopus) and x265 on PATH, as CI installs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use bytes::Bytes;
use ingest::rtmp::frames::FrameBuilder;
use media::{Codec, Frame, StreamEvent, TrackInfo};
use mp4_atom::{Codec as Entry, Decode, Ftyp, Moov};
use packager::fmp4::{Sample, fragment, init_segment};
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// Tools

/// A fresh directory for one test's files.
fn workdir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("fmp4_ffprobe")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create work dir");
    dir
}

/// Runs a tool, panics with its stderr when it fails; returns stdout.
fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (is it installed?): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs ffmpeg with the whitespace-separated `args`, writing `output`.
fn ffmpeg(args: &str, output: &Path) {
    let mut all = vec!["-hide_banner", "-loglevel", "error", "-y"];
    all.extend(args.split_whitespace());
    all.push(output.to_str().expect("UTF-8 path"));
    run("ffmpeg", &all);
}

/// What ffprobe says about a file: streams, packets and (decoded) frames.
struct Probe {
    stream: Value,
    packets: Vec<Value>,
    frames: Vec<Value>,
}

/// Probes stream `select` (`v`, `a`) of `path`, decoding every frame; any message at
/// `-v error` fails the test.
fn probe_stream(path: &Path, select: &str) -> Probe {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", select])
        .args([
            "-show_streams",
            "-show_packets",
            "-show_frames",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("cannot run ffprobe (is it installed?)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe {}: {stderr}",
        path.display()
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        streams.len(),
        1,
        "one {select} stream in {}",
        path.display()
    );
    // With both -show_packets and -show_frames, ffprobe lists them together, in the
    // order it read and decoded them.
    let both = json["packets_and_frames"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let of_type = |t: &str| both.iter().filter(|v| v["type"] == t).cloned().collect();
    Probe {
        stream: streams[0].clone(),
        packets: of_type("packet"),
        frames: of_type("frame"),
    }
}

/// Probes the one track of a file we wrote.
fn ffprobe(path: &Path) -> Probe {
    probe_stream(path, "0")
}

fn int(v: &Value, key: &str) -> i64 {
    match &v[key] {
        Value::Number(n) => n.as_i64().expect("integer"),
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("{key}: {s}")),
        other => panic!("{key} missing: {other} in {v}"),
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn is_key(packet: &Value) -> bool {
    text(packet, "flags").starts_with('K')
}

// ---------------------------------------------------------------------------------------
// Writing a track

/// A track's frames as fMP4 samples: each duration is the step to the next dts (the
/// last repeats the one before), the composition offset is `pts - dts`.
fn samples(frames: &[Frame]) -> Vec<Sample> {
    let mut out = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        let duration = match (frames.get(i + 1), i.checked_sub(1).map(|j| &frames[j])) {
            (Some(next), _) => next.dts - f.dts,
            (None, Some(prev)) => f.dts - prev.dts,
            (None, None) => 0,
        };
        out.push(Sample {
            duration: u32::try_from(duration).expect("duration"),
            composition_offset: i32::try_from(f.pts - f.dts).expect("offset"),
            keyframe: f.keyframe,
            data: f.data.clone(),
        });
    }
    out
}

/// Writes init + chunks of `per_chunk` samples (sequence numbers from 1, `tfdt`
/// continuing from `base`) to `path`; returns the init segment.
fn write_track(
    path: &Path,
    track: &TrackInfo,
    samples: &[Sample],
    base: u64,
    per_chunk: usize,
) -> Bytes {
    let init = init_segment(track).expect("init segment");
    let mut file = init.to_vec();
    let mut decode_time = base;
    for (i, chunk) in samples.chunks(per_chunk).enumerate() {
        let seq = u32::try_from(i + 1).unwrap();
        file.extend_from_slice(&fragment(seq, decode_time, chunk).expect("fragment"));
        decode_time += chunk.iter().map(|s| u64::from(s.duration)).sum::<u64>();
    }
    std::fs::write(path, file).expect("write track");
    init
}

/// The sample entry of an init segment, decoded with mp4-atom (strict).
fn sample_entry(init: &Bytes) -> Entry {
    let mut buf = init.clone();
    Ftyp::decode(&mut buf).expect("ftyp");
    let moov = Moov::decode(&mut buf).expect("moov");
    moov.trak[0].mdia.minf.stbl.stsd.codecs[0].clone()
}

/// Checks ffprobe's packets and decoded frames of a written track against the samples:
/// one packet per sample in order with its size, pts = decode time + offset, dts =
/// decode time (so each dts step is the previous sample's duration), key flag; every
/// packet decoded. (ffprobe's packet durations come from the H.264 parser's frame rate,
/// not from the file, so they are not compared.)
///
/// ffmpeg's mov demuxer adds the most negative composition offset's magnitude to every
/// pts (its `dts_shift`, so that no pts is below its dts); the expected pts include it.
fn check_packets(probe: &Probe, samples: &[Sample], base: u64) {
    assert_eq!(probe.packets.len(), samples.len(), "packet count");
    let dts_shift = samples
        .iter()
        .map(|s| -i64::from(s.composition_offset))
        .max()
        .unwrap_or(0)
        .max(0);
    let mut dts = i64::try_from(base).unwrap();
    for (i, (p, s)) in probe.packets.iter().zip(samples).enumerate() {
        assert_eq!(int(p, "size"), s.data.len() as i64, "packet {i} size");
        assert_eq!(int(p, "dts"), dts, "packet {i} dts");
        assert_eq!(
            int(p, "pts"),
            dts + i64::from(s.composition_offset) + dts_shift,
            "packet {i} pts"
        );
        assert_eq!(is_key(p), s.keyframe, "packet {i} key flag");
        dts += i64::from(s.duration);
    }
    assert_eq!(probe.frames.len(), samples.len(), "decoded frame count");
}

// ---------------------------------------------------------------------------------------
// H.264 + AAC through FLV

/// One FLV file tag: type (8 audio, 9 video, 18 script), timestamp (ms), body.
struct Tag {
    kind: u8,
    ts: u32,
    body: Bytes,
}

/// Walks an FLV file's tags (header, then PreviousTagSize + tag, repeated).
fn flv_tags(file: &[u8]) -> Vec<Tag> {
    assert_eq!(&file[..3], b"FLV");
    let header = u32::from_be_bytes([file[5], file[6], file[7], file[8]]) as usize;
    let mut pos = header + 4;
    let mut tags = Vec::new();
    while pos + 11 <= file.len() {
        let kind = file[pos] & 0x1f;
        let size = u32::from_be_bytes([0, file[pos + 1], file[pos + 2], file[pos + 3]]) as usize;
        let ts = u32::from_be_bytes([file[pos + 7], file[pos + 4], file[pos + 5], file[pos + 6]]);
        tags.push(Tag {
            kind,
            ts,
            body: Bytes::copy_from_slice(&file[pos + 11..pos + 11 + size]),
        });
        pos += 11 + size + 4;
    }
    assert_eq!(pos, file.len(), "FLV walk ended off the end of the file");
    tags
}

/// The tracks and frames ingest makes of an FLV file.
fn ingest_flv(path: &Path) -> (Vec<TrackInfo>, Vec<Frame>) {
    let file = std::fs::read(path).expect("read FLV");
    let mut builder = FrameBuilder::new();
    let mut events = Vec::new();
    let now = SystemTime::UNIX_EPOCH;
    for tag in flv_tags(&file) {
        match tag.kind {
            8 => events.extend(builder.audio(tag.ts, &tag.body, now).expect("audio tag")),
            9 => events.extend(builder.video(tag.ts, &tag.body, now).expect("video tag")),
            _ => {}
        }
    }
    events.extend(builder.finish());
    let mut tracks = Vec::new();
    let mut frames = Vec::new();
    for event in events {
        match event {
            StreamEvent::Tracks(t) => tracks = t,
            StreamEvent::Frame(f) => frames.push(f),
            other => panic!("unexpected event {other:?}"),
        }
    }
    (tracks, frames)
}

#[test]
fn h264_and_aac_from_flv_decode_with_ffprobe() {
    let dir = workdir("h264_aac");
    let flv = dir.join("source.flv");
    ffmpeg(
        "-f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
         -t 4 -c:v libx264 -preset veryfast -profile:v high -bf 3 -g 30 -crf 30 \
         -c:a aac -ac 2 -b:a 96k -f flv",
        &flv,
    );
    let (tracks, frames) = ingest_flv(&flv);
    let video_track = tracks
        .iter()
        .find(|t| matches!(t.codec, Codec::H264 { .. }))
        .unwrap();
    let audio_track = tracks
        .iter()
        .find(|t| matches!(t.codec, Codec::Aac { .. }))
        .unwrap();
    let video: Vec<Frame> = frames
        .iter()
        .filter(|f| f.track == video_track.id)
        .cloned()
        .collect();
    let audio: Vec<Frame> = frames
        .iter()
        .filter(|f| f.track == audio_track.id)
        .cloned()
        .collect();
    assert_eq!(video.len(), 120);
    assert!(
        video.iter().any(|f| f.pts != f.dts),
        "the source has B-frames"
    );

    // Video, as ingested: positive composition offsets, tfdt from the first dts.
    let video_samples = samples(&video);
    let base = u64::try_from(video[0].dts).unwrap();
    let path = dir.join("video.mp4");
    let init = write_track(&path, video_track, &video_samples, base, 5);
    let probe = ffprobe(&path);
    check_packets(&probe, &video_samples, base);
    let s = &probe.stream;
    assert_eq!(text(s, "codec_name"), "h264");
    assert_eq!(text(s, "codec_tag_string"), "avc1");
    assert_eq!(text(s, "profile"), "High");
    assert_eq!((int(s, "width"), int(s, "height")), (640, 360));
    assert_eq!(text(s, "time_base"), "1/90000");
    // The same timeline (ms there, 90 kHz here), key frames, profile and level as
    // ffprobe's view of the FLV.
    let source = probe_stream(&flv, "v");
    assert_eq!(source.packets.len(), video.len());
    assert_eq!(source.frames.len(), video.len());
    let (ours0, theirs0) = (
        int(&probe.packets[0], "dts"),
        int(&source.packets[0], "dts"),
    );
    for (i, (ours, theirs)) in probe.packets.iter().zip(&source.packets).enumerate() {
        for key in ["pts", "dts"] {
            let want = (int(theirs, key) - theirs0) * 90;
            assert_eq!(int(ours, key) - ours0, want, "{key} of video packet {i}");
        }
        assert_eq!(is_key(ours), is_key(theirs), "key flag of video packet {i}");
    }
    assert_eq!(text(&source.stream, "profile"), "High");
    assert_eq!(int(s, "level"), int(&source.stream, "level"));
    assert_eq!(
        probe
            .frames
            .iter()
            .filter(|f| int(f, "key_frame") == 1)
            .count(),
        video.iter().filter(|f| f.keyframe).count()
    );
    // CODECS: from the avcC in the init == Codec::rfc6381 == what ffprobe decoded.
    let Entry::Avc1(avc1) = sample_entry(&init) else {
        panic!("avc1")
    };
    let codecs = format!(
        "avc1.{:02x}{:02x}{:02x}",
        avc1.avcc.avc_profile_indication,
        avc1.avcc.profile_compatibility,
        avc1.avcc.avc_level_indication
    );
    assert_eq!(codecs, video_track.codec.rfc6381());
    assert_eq!(avc1.avcc.avc_profile_indication, 100, "High");
    assert_eq!(i64::from(avc1.avcc.avc_level_indication), int(s, "level"));

    // Video, CMAF style: decode times shifted by the first frame's offset, so B-frames
    // get negative (version 1) offsets and presentation starts at tfdt.
    let shift = video[0].pts - video[0].dts;
    assert!(shift > 0);
    let shifted: Vec<Sample> = video_samples
        .iter()
        .map(|s| Sample {
            composition_offset: s.composition_offset - shift as i32,
            ..s.clone()
        })
        .collect();
    assert!(shifted.iter().any(|s| s.composition_offset < 0));
    let base = u64::try_from(video[0].pts).unwrap();
    let path = dir.join("video_negative_offsets.mp4");
    write_track(&path, video_track, &shifted, base, 7);
    let probe = ffprobe(&path);
    check_packets(&probe, &shifted, base);
    // The written presentation times (tfdt + durations + offset) are the source's.
    let mut decode_time = video[0].pts;
    for (s, f) in shifted.iter().zip(&video) {
        assert_eq!(decode_time + i64::from(s.composition_offset), f.pts);
        decode_time += i64::from(s.duration);
    }

    // Audio.
    assert!(audio.iter().all(|f| f.keyframe && f.pts == f.dts));
    let audio_samples = samples(&audio);
    assert!(audio_samples.iter().all(|s| s.duration == 1024));
    let base = u64::try_from(audio[0].dts).unwrap();
    let path = dir.join("audio.mp4");
    let init = write_track(&path, audio_track, &audio_samples, base, 9);
    let probe = ffprobe(&path);
    check_packets(&probe, &audio_samples, base);
    let s = &probe.stream;
    assert_eq!(text(s, "codec_name"), "aac");
    assert_eq!(text(s, "codec_tag_string"), "mp4a");
    assert_eq!(text(s, "profile"), "LC");
    assert_eq!(int(s, "sample_rate"), 48_000);
    assert_eq!(int(s, "channels"), 2);
    assert_eq!(text(s, "time_base"), "1/48000");
    let source = probe_stream(&flv, "a");
    assert_eq!(audio.len(), source.packets.len());
    assert_eq!(int(&source.stream, "sample_rate"), 48_000);
    let Entry::Mp4a(mp4a) = sample_entry(&init) else {
        panic!("mp4a")
    };
    let dsi = mp4a
        .esds
        .es_desc
        .dec_config
        .dec_specific
        .expect("DecoderSpecificInfo");
    assert_eq!(
        format!("mp4a.40.{}", dsi.profile),
        audio_track.codec.rfc6381()
    );
    assert_eq!(audio_track.codec.rfc6381(), "mp4a.40.2", "ffprobe: LC");
}

// ---------------------------------------------------------------------------------------
// H.265 from the x265 CLI

/// The RFC 6381 string of an `hvcC`, from its decoded fields (ISO/IEC 14496-15 E.3).
fn hevc_codecs(hvcc: &mp4_atom::Hvcc) -> String {
    let space = ["", "A", "B", "C"][usize::from(hvcc.general_profile_space)];
    let compat = u32::from_be_bytes(hvcc.general_profile_compatibility_flags).reverse_bits();
    let tier = if hvcc.general_tier_flag { 'H' } else { 'L' };
    let mut constraints = hvcc.general_constraint_indicator_flags.to_vec();
    while constraints.last() == Some(&0) {
        constraints.pop();
    }
    let mut out = format!(
        "hvc1.{space}{}.{compat:X}.{tier}{}",
        hvcc.general_profile_idc, hvcc.general_level_idc
    );
    for byte in constraints {
        out.push_str(&format!(".{byte:02X}"));
    }
    out
}

/// Splits an x265 Annex B stream written with `--aud` into access units (4-byte
/// length-prefixed, without the AUD and the parameter sets) and returns the first
/// VPS, SPS and PPS (x265 writes those before the first AUD).
fn hevc_access_units(stream: &[u8]) -> (Vec<Bytes>, [Bytes; 3]) {
    let mut units: Vec<Vec<u8>> = Vec::new();
    let mut sets: [Option<Bytes>; 3] = [None, None, None];
    for nal in media::nal::split_annexb(stream) {
        match media::h265::nal_type(nal) {
            Some(35) => units.push(Vec::new()),
            Some(t @ 32..=34) => {
                sets[usize::from(t - 32)].get_or_insert_with(|| Bytes::copy_from_slice(nal));
            }
            _ => {
                if units.is_empty() {
                    units.push(Vec::new());
                }
                let au = units.last_mut().expect("an access unit");
                au.extend_from_slice(&u32::try_from(nal.len()).unwrap().to_be_bytes());
                au.extend_from_slice(nal);
            }
        }
    }
    let [vps, sps, pps] = sets.map(|s| s.expect("parameter set"));
    (
        units.into_iter().map(Bytes::from).collect(),
        [vps, sps, pps],
    )
}

#[test]
fn h265_from_x265_decodes_with_ffprobe() {
    let dir = workdir("h265");
    let yuv = dir.join("source.yuv");
    let stream = dir.join("source.265");
    ffmpeg(
        "-f lavfi -i testsrc2=size=320x240:rate=25 -frames:v 20 -pix_fmt yuv420p -f rawvideo",
        &yuv,
    );
    let x265 = "--input-res 320x240 --fps 25 --frames 20 --bframes 0 --keyint 10 --aud \
                --crf 35 --log-level error";
    let mut args: Vec<&str> = x265.split_whitespace().collect();
    args.extend([
        "--input",
        yuv.to_str().unwrap(),
        "-o",
        stream.to_str().unwrap(),
    ]);
    run("x265", &args);
    let (units, [vps, sps, pps]) = hevc_access_units(&std::fs::read(&stream).unwrap());
    assert_eq!(units.len(), 20);
    let record = media::h265::HevcConfig::from_parameter_sets(&[vps], &[sps], &[pps])
        .expect("hvcC")
        .to_bytes();
    let track = TrackInfo {
        id: 0,
        codec: Codec::h265(record).expect("codec"),
        timescale: 90_000,
    };
    // No B-frames: presentation order is decode order, 25 fps = 3600 ticks.
    let samples: Vec<Sample> = units
        .into_iter()
        .map(|data| Sample {
            duration: 3600,
            composition_offset: 0,
            keyframe: media::h265::contains_irap(&data),
            data,
        })
        .collect();
    let path = dir.join("video.mp4");
    // The parameter sets are only in the hvcC: decoding proves the init carries them.
    let init = write_track(&path, &track, &samples, 0, 4);
    let probe = ffprobe(&path);
    check_packets(&probe, &samples, 0);
    let s = &probe.stream;
    assert_eq!(text(s, "codec_name"), "hevc");
    assert_eq!(text(s, "codec_tag_string"), "hvc1");
    assert_eq!(text(s, "profile"), "Main");
    assert_eq!((int(s, "width"), int(s, "height")), (320, 240));

    // Key frames where ffprobe finds them in the raw x265 output.
    let source = Command::new("ffprobe")
        .args(["-v", "error", "-show_packets", "-of", "json"])
        .arg(&stream)
        .output()
        .expect("ffprobe");
    let source: Value = serde_json::from_slice(&source.stdout).expect("ffprobe JSON");
    let source_keys: Vec<bool> = source["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(is_key)
        .collect();
    let keys: Vec<bool> = probe.packets.iter().map(is_key).collect();
    assert_eq!(keys, source_keys);
    assert_eq!(
        keys.iter().filter(|&&k| k).count(),
        2,
        "keyint 10 over 20 frames"
    );

    let Entry::Hvc1(hvc1) = sample_entry(&init) else {
        panic!("hvc1")
    };
    let codecs = hevc_codecs(&hvc1.hvcc);
    assert_eq!(codecs, track.codec.rfc6381());
    assert!(
        codecs.starts_with("hvc1.1.6.L") && codecs.contains(&format!(".L{}.", int(s, "level"))),
        "{codecs}: Main profile at ffprobe's level {}",
        int(s, "level")
    );
}

// ---------------------------------------------------------------------------------------
// AV1 from libaom

/// The temporal units of an IVF file.
fn ivf_frames(file: &[u8]) -> Vec<&[u8]> {
    assert_eq!(&file[..4], b"DKIF");
    let mut pos = usize::from(u16::from_le_bytes([file[6], file[7]]));
    let mut frames = Vec::new();
    while pos + 12 <= file.len() {
        let size = u32::from_le_bytes(file[pos..pos + 4].try_into().unwrap()) as usize;
        frames.push(&file[pos + 12..pos + 12 + size]);
        pos += 12 + size;
    }
    assert_eq!(pos, file.len());
    frames
}

#[test]
fn av1_from_libaom_decodes_with_ffprobe() {
    let dir = workdir("av1");
    let ivf = dir.join("source.ivf");
    ffmpeg(
        "-f lavfi -i testsrc2=size=320x240:rate=25 -frames:v 20 \
         -c:v libaom-av1 -cpu-used 8 -usage realtime -g 10 -f ivf",
        &ivf,
    );
    let file = std::fs::read(&ivf).unwrap();
    let mut record = None;
    let mut samples = Vec::new();
    for tu in ivf_frames(&file) {
        // A sample is the temporal unit without its temporal delimiter (AV1-ISOBMFF
        // §2.4); libaom sends the sequence header with every key frame.
        let mut data = Vec::new();
        let mut keyframe = false;
        for obu in media::av1::iter_obus(tu) {
            let obu = obu.expect("OBU");
            match obu.obu_type {
                2 => continue,
                1 => {
                    keyframe = true;
                    record.get_or_insert_with(|| {
                        media::av1::Av1Config::from_sequence_header(obu.raw)
                            .expect("av1C")
                            .to_bytes()
                    });
                }
                _ => {}
            }
            data.extend_from_slice(obu.raw);
        }
        samples.push(Sample {
            duration: 3600,
            composition_offset: 0,
            keyframe,
            data: Bytes::from(data),
        });
    }
    assert_eq!(samples.len(), 20);
    let track = TrackInfo {
        id: 0,
        codec: Codec::av1(record.expect("sequence header")).expect("codec"),
        timescale: 90_000,
    };
    let path = dir.join("video.mp4");
    let init = write_track(&path, &track, &samples, 0, 3);
    let probe = ffprobe(&path);
    check_packets(&probe, &samples, 0);
    let s = &probe.stream;
    assert_eq!(text(s, "codec_name"), "av1");
    assert_eq!(text(s, "codec_tag_string"), "av01");
    assert_eq!((int(s, "width"), int(s, "height")), (320, 240));
    let source = probe_stream(&ivf, "v");
    let source_keys: Vec<bool> = source.packets.iter().map(is_key).collect();
    let keys: Vec<bool> = probe.packets.iter().map(is_key).collect();
    assert_eq!(keys, source_keys, "key frames as ffprobe sees the IVF");
    let Entry::Av01(av01) = sample_entry(&init) else {
        panic!("av01")
    };
    let c = &av01.av1c;
    let depth = if c.high_bitdepth { 10 } else { 8 };
    let tier = if c.seq_tier_0 { 'H' } else { 'M' };
    let codecs = format!(
        "av01.{}.{:02}{tier}.{depth:02}",
        c.seq_profile, c.seq_level_idx_0
    );
    assert_eq!(codecs, track.codec.rfc6381());
    assert!(codecs.starts_with("av01.0."), "{codecs}: Main profile");
}

// ---------------------------------------------------------------------------------------
// Opus from libopus

/// The packets of the first logical stream of an Ogg file.
fn ogg_packets(file: &[u8]) -> Vec<Bytes> {
    let mut packets = Vec::new();
    let mut partial = Vec::new();
    let mut pos = 0;
    while pos + 27 <= file.len() {
        assert_eq!(&file[pos..pos + 4], b"OggS");
        let segments = usize::from(file[pos + 26]);
        let table = &file[pos + 27..pos + 27 + segments];
        let mut at = pos + 27 + segments;
        for &lace in table {
            partial.extend_from_slice(&file[at..at + usize::from(lace)]);
            at += usize::from(lace);
            if lace < 255 {
                packets.push(Bytes::from(std::mem::take(&mut partial)));
            }
        }
        pos = at;
    }
    assert_eq!(pos, file.len());
    packets
}

/// Samples (48 kHz) in an Opus packet, from its TOC (RFC 6716 §3.1).
fn opus_samples(packet: &[u8]) -> u32 {
    let config = packet[0] >> 3;
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match packet[0] & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(packet[1] & 0x3f),
    };
    frame * frames
}

#[test]
fn opus_from_libopus_decodes_with_ffprobe() {
    let dir = workdir("opus");
    let ogg = dir.join("source.ogg");
    ffmpeg(
        "-f lavfi -i sine=frequency=440:sample_rate=48000 -t 1 -ac 2 \
         -c:a libopus -b:a 64k -f ogg",
        &ogg,
    );
    let packets = ogg_packets(&std::fs::read(&ogg).unwrap());
    assert!(packets[0].starts_with(b"OpusHead") && packets[1].starts_with(b"OpusTags"));
    let channels = packets[0][9];
    assert_eq!(channels, 2);
    let samples: Vec<Sample> = packets[2..]
        .iter()
        .map(|p| Sample {
            duration: opus_samples(p),
            composition_offset: 0,
            keyframe: true,
            data: p.clone(),
        })
        .collect();
    assert!(samples.len() >= 50, "1 s of 20 ms packets");
    let track = TrackInfo {
        id: 1,
        codec: Codec::Opus {
            sample_rate: 48_000,
            channels,
        },
        timescale: 48_000,
    };
    let path = dir.join("audio.mp4");
    write_track(&path, &track, &samples, 0, 10);
    let probe = ffprobe(&path);
    check_packets(&probe, &samples, 0);
    let s = &probe.stream;
    assert_eq!(text(s, "codec_name"), "opus");
    assert_eq!(text(s, "codec_tag_string"), "Opus");
    assert_eq!(int(s, "sample_rate"), 48_000);
    assert_eq!(int(s, "channels"), 2);
    let source = probe_stream(&ogg, "a");
    assert_eq!(source.packets.len(), samples.len());
}

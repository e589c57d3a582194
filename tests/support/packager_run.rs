//! Drives a [`Program`] with stream events and checks what it emits as it goes:
//! every part readable back with [`Program::part`], every segment equal to the
//! concatenation of its parts byte for byte, and every playlist, after every change,
//! through the LL-HLS checker (`packager/tests/support/llhls.rs`).
//!
//! Also: an fMP4 reader on `mp4-atom` (strict), not on our writer, and ffprobe helpers.
#![allow(dead_code)] // every test binary uses its own subset

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use media::StreamEvent;
use mp4_atom::{Atom, Codec as SampleEntry, Decode, FourCC, Moof, Moov};
use packager::playlist::{RenderOptions, render_media, render_multivariant};
use packager::{Output, PackagerConfig, Program};

use crate::llhls;

/// A part as it was emitted.
#[derive(Clone, Debug)]
pub struct PartOut {
    pub msn: u64,
    pub index: u32,
    pub duration: Duration,
    pub independent: bool,
    pub data: Bytes,
    /// Which init applied when it was emitted.
    pub init_version: u32,
}

/// A segment as it was completed, with the bytes [`Program::segment`] served then.
#[derive(Clone, Debug)]
pub struct SegmentOut {
    pub msn: u64,
    pub duration: Duration,
    pub program_date_time: SystemTime,
    pub data: Bytes,
}

/// Everything one rendition emitted, in order.
#[derive(Clone, Debug, Default)]
pub struct RenditionLog {
    pub inits: BTreeMap<u32, Bytes>,
    pub current_init: u32,
    pub parts: Vec<PartOut>,
    pub segments: Vec<SegmentOut>,
    /// MSNs named by `Output::Discontinuity`.
    pub discontinuities: Vec<u64>,
}

impl RenditionLog {
    pub fn parts_of(&self, msn: u64) -> Vec<&PartOut> {
        self.parts.iter().filter(|p| p.msn == msn).collect()
    }
}

/// A program under test.
pub struct Run {
    pub program: Program,
    pub logs: BTreeMap<String, RenditionLog>,
    pub ended: bool,
    /// Playlists rendered and checked so far.
    pub checked: usize,
    /// The last full media playlist rendered for each rendition (the client's previous
    /// playlist for the delta and sequence checks).
    pub last: BTreeMap<String, String>,
    /// Checker options (defaults unless a test says why).
    pub opts: llhls::CheckOptions,
    /// Render and check every playlist after every change (true by default).
    pub check_every_step: bool,
}

impl Run {
    pub fn new(config: PackagerConfig) -> Run {
        Run {
            program: Program::new(config),
            logs: BTreeMap::new(),
            ended: false,
            checked: 0,
            last: BTreeMap::new(),
            opts: llhls::CheckOptions::default(),
            check_every_step: true,
        }
    }

    pub fn log(&self, rendition: &str) -> &RenditionLog {
        self.logs
            .get(rendition)
            .unwrap_or_else(|| panic!("rendition {rendition} emitted nothing"))
    }

    pub fn push_all(&mut self, events: &[StreamEvent]) {
        for e in events {
            self.push(e);
        }
    }

    /// Pushes one event, records and checks its outputs.
    pub fn push(&mut self, event: &StreamEvent) -> Vec<Output> {
        let outputs = self.program.push(event);
        for out in &outputs {
            self.record(out);
        }
        if !outputs.is_empty() && self.check_every_step {
            self.check_playlists();
        }
        outputs
    }

    fn record(&mut self, out: &Output) {
        match out {
            Output::Init {
                rendition,
                version,
                data,
            } => {
                assert_eq!(
                    self.program.init(rendition, *version).as_ref(),
                    Some(data),
                    "{rendition}: init {version} as emitted and as served"
                );
                let log = self.logs.entry(rendition.clone()).or_default();
                if let Some(old) = log.inits.insert(*version, data.clone()) {
                    assert_eq!(
                        old, data,
                        "{rendition}: init version {version} emitted twice, different"
                    );
                }
                log.current_init = *version;
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
                assert_eq!(
                    self.program.part(rendition, *msn, *index).as_ref(),
                    Some(data),
                    "{rendition}: part {msn}.{index} as emitted and as served"
                );
                let log = self.logs.entry(rendition.clone()).or_default();
                if let Some(prev) = log.parts.last() {
                    let next = if prev.msn == *msn {
                        (prev.msn, prev.index + 1)
                    } else {
                        (prev.msn + 1, 0)
                    };
                    assert_eq!(
                        (*msn, *index),
                        next,
                        "{rendition}: part after {}.{}",
                        prev.msn,
                        prev.index
                    );
                }
                log.parts.push(PartOut {
                    msn: *msn,
                    index: *index,
                    duration: *duration,
                    independent: *independent,
                    data: data.clone(),
                    init_version: log.current_init,
                });
            }
            Output::Segment {
                rendition,
                msn,
                duration,
                program_date_time,
            } => {
                let served = self.program.segment(rendition, *msn).unwrap_or_else(|| {
                    panic!("{rendition}: segment {msn} completed but not served")
                });
                let log = self.logs.entry(rendition.clone()).or_default();
                let parts = log.parts_of(*msn);
                assert!(!parts.is_empty(), "{rendition}: segment {msn} has no parts");
                for (i, p) in parts.iter().enumerate() {
                    assert_eq!(
                        p.index as usize, i,
                        "{rendition}: part indices of segment {msn}"
                    );
                }
                let concat: Vec<u8> = parts.iter().flat_map(|p| p.data.iter().copied()).collect();
                assert!(
                    served[..] == concat[..],
                    "{rendition}: segment {msn} ({} bytes) differs from the concatenation of its {} parts ({} bytes)",
                    served.len(),
                    parts.len(),
                    concat.len()
                );
                // Each duration is its ticks rounded to the nanosecond.
                let sum: Duration = parts.iter().map(|p| p.duration).sum();
                let slack = Duration::from_nanos(parts.len() as u64);
                assert!(
                    duration.abs_diff(sum) <= slack,
                    "{rendition}: segment {msn} lasts {duration:?}, its parts {sum:?}"
                );
                if let Some(prev) = log.segments.last() {
                    assert_eq!(
                        *msn,
                        prev.msn + 1,
                        "{rendition}: segment after {}",
                        prev.msn
                    );
                }
                log.segments.push(SegmentOut {
                    msn: *msn,
                    duration: *duration,
                    program_date_time: *program_date_time,
                    data: served,
                });
            }
            Output::Discontinuity { rendition, msn } => {
                self.logs
                    .entry(rendition.clone())
                    .or_default()
                    .discontinuities
                    .push(*msn);
            }
            Output::Ended => self.ended = true,
        }
    }

    /// Renders every rendition's playlist, full and delta (`_HLS_skip=YES`), and runs the
    /// LL-HLS checker: each playlist alone, the delta against the client's previous
    /// playlist and the fresh full one, the step from the previous full playlist, and
    /// across renditions the same TARGETDURATION, PART-INF and SERVER-CONTROL
    /// [S §6.2.4]. The multivariant playlist goes through m3u8-rs and [`check_multivariant`].
    pub fn check_playlists(&mut self) {
        let mut shared: Option<(String, llhls::Playlist)> = None;
        let mut all_independent = true;
        for r in self.program.renditions() {
            let Some(pl) = self.program.playlist(&r) else {
                continue;
            };
            let reports = self.program.rendition_reports(&r);
            let render = |skip| {
                render_media(
                    &pl,
                    &RenderOptions {
                        skip,
                        reports: &reports,
                    },
                )
            };
            let (full, delta) = (render(false), render(true));
            // A source whose keyframe interval exceeds what a segment may last gets
            // segments that start mid-GOP: their first part cannot be INDEPENDENT=YES,
            // and the playlist must then not claim EXT-X-INDEPENDENT-SEGMENTS (the tests
            // check that claim against the samples separately).
            let mut opts = self.opts.clone();
            opts.require_independent_first_part &= pl.independent_segments;
            all_independent &= pl.independent_segments;
            let fail = |what: &str, v: Vec<llhls::Violation>, text: &str| {
                if !v.is_empty() {
                    let list: Vec<String> = v.iter().map(ToString::to_string).collect();
                    panic!(
                        "{r}: {what} breaks LL-HLS rules:\n  {}\n{text}",
                        list.join("\n  ")
                    );
                }
            };
            fail("playlist", llhls::check(&full, &opts), &full);
            let previous = self.last.get(&r).cloned().unwrap_or_else(|| full.clone());
            if delta.contains("#EXT-X-SKIP:") {
                fail(
                    "delta update",
                    llhls::check_delta(&previous, &delta, &full, &opts),
                    &delta,
                );
            } else {
                fail("_HLS_skip=YES answer", llhls::check(&delta, &opts), &delta);
            }
            fail(
                "the update from the previous playlist",
                llhls::check_sequence(&[&previous, &full]),
                &format!("{previous}\n-- then --\n{full}"),
            );
            let (parsed, _) = llhls::parse(&full);
            match &shared {
                None => shared = Some((r.clone(), parsed)),
                Some((first, p)) => {
                    assert_eq!(
                        (&p.target_duration, &p.part_target, &p.server_control),
                        (
                            &parsed.target_duration,
                            &parsed.part_target,
                            &parsed.server_control
                        ),
                        "{first} and {r}: TARGETDURATION, PART-INF, SERVER-CONTROL differ"
                    );
                }
            }
            self.checked += 1;
            self.last.insert(r, full);
        }
        if let Some(m) = self.program.multivariant() {
            check_multivariant(&render_multivariant(&m), all_independent);
        }
    }
}

/// The multivariant rules of LLHLS.md that the text shows, read with m3u8-rs: BANDWIDTH,
/// AVERAGE-BANDWIDTH, CODECS on every variant, RESOLUTION and FRAME-RATE (3 decimals) on
/// video variants, AUDIO naming an EXT-X-MEDIA TYPE=AUDIO group whose DEFAULT=YES
/// implies AUTOSELECT=YES, EXT-X-INDEPENDENT-SEGMENTS exactly when every media playlist
/// carries it (`independent`).
pub fn check_multivariant(text: &str, independent: bool) {
    let m = m3u8_rs::parse_master_playlist_res(text.as_bytes()).unwrap_or_else(|e| {
        panic!("m3u8-rs cannot parse the multivariant playlist ({e:?}):\n{text}")
    });
    assert!(text.starts_with("#EXTM3U"), "{text}");
    assert_eq!(
        m.independent_segments, independent,
        "EXT-X-INDEPENDENT-SEGMENTS vs the media playlists:\n{text}"
    );
    for a in &m.alternatives {
        if a.default {
            assert!(a.autoselect, "DEFAULT=YES without AUTOSELECT=YES:\n{text}");
        }
    }
    assert!(!m.variants.is_empty(), "no variant:\n{text}");
    for v in &m.variants {
        assert!(v.bandwidth > 0, "BANDWIDTH:\n{text}");
        let avg = v
            .average_bandwidth
            .unwrap_or_else(|| panic!("no AVERAGE-BANDWIDTH:\n{text}"));
        assert!(
            avg <= v.bandwidth,
            "AVERAGE-BANDWIDTH above BANDWIDTH:\n{text}"
        );
        let codecs = v
            .codecs
            .as_deref()
            .unwrap_or_else(|| panic!("no CODECS:\n{text}"));
        if codecs.contains("avc1") || codecs.contains("hvc1") || codecs.contains("av01") {
            assert!(
                v.resolution.is_some(),
                "video variant without RESOLUTION:\n{text}"
            );
            let line = text
                .lines()
                .find(|l| l.starts_with("#EXT-X-STREAM-INF"))
                .unwrap_or_default();
            let rate = line
                .split("FRAME-RATE=")
                .nth(1)
                .map(|r| r.split(',').next().unwrap_or_default());
            let rate = rate.unwrap_or_else(|| panic!("video variant without FRAME-RATE:\n{text}"));
            assert_eq!(
                rate.split('.').nth(1).map(str::len),
                Some(3),
                "FRAME-RATE with 3 decimals:\n{text}"
            );
        }
        if let Some(group) = &v.audio {
            let media = m.alternatives.iter().find(|a| {
                &a.group_id == group && a.media_type == m3u8_rs::AlternativeMediaType::Audio
            });
            let media = media.unwrap_or_else(|| {
                panic!("AUDIO={group} names no EXT-X-MEDIA TYPE=AUDIO:\n{text}")
            });
            assert!(media.uri.is_some(), "audio rendition without URI:\n{text}");
            assert!(
                media.channels.is_some(),
                "audio rendition without CHANNELS:\n{text}"
            );
            assert!(
                codecs.contains("mp4a") || codecs.contains("opus"),
                "CODECS lack the audio group's codec:\n{text}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// fMP4 through mp4-atom (strict)

/// What the init segment says about its one track.
#[derive(Clone, Debug)]
pub struct InitInfo {
    pub major_brand: FourCC,
    pub brands: Vec<FourCC>,
    pub track_id: u32,
    pub timescale: u32,
    pub handler: FourCC,
    /// RFC 6381 codec string derived from the sample entry (avcC / esds).
    pub codec: String,
    pub dimensions: Option<(u16, u16)>,
    pub trex: mp4_atom::Trex,
}

/// Top-level boxes: (type, start offset, end offset).
pub fn top_boxes(data: &[u8]) -> Vec<(FourCC, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        assert!(pos + 8 <= data.len(), "truncated box header at {pos}");
        let mut size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = FourCC::new(&data[pos + 4..pos + 8].try_into().unwrap());
        if size == 1 {
            size = u64::from_be_bytes(data[pos + 8..pos + 16].try_into().unwrap()) as usize;
        }
        assert!(
            size >= 8 && pos + size <= data.len(),
            "box {kind} at {pos} of size {size} overruns {} bytes",
            data.len()
        );
        out.push((kind, pos, pos + size));
        pos += size;
    }
    out
}

/// Decodes one whole box with mp4-atom and checks it consumed every byte.
fn decode_whole<T: Atom>(data: &[u8]) -> T {
    let mut buf = data;
    let atom = T::decode(&mut buf)
        .unwrap_or_else(|e| panic!("mp4-atom (strict) refuses {}: {e}", T::KIND));
    assert!(
        buf.is_empty(),
        "{} left {} bytes undecoded",
        T::KIND,
        buf.len()
    );
    atom
}

pub fn parse_init(data: &[u8]) -> InitInfo {
    let boxes = top_boxes(data);
    let kinds: Vec<String> = boxes.iter().map(|b| b.0.to_string()).collect();
    assert_eq!(kinds, ["ftyp", "moov"], "init segment boxes");
    let ftyp: mp4_atom::Ftyp = decode_whole(&data[boxes[0].1..boxes[0].2]);
    let moov: Moov = decode_whole(&data[boxes[1].1..boxes[1].2]);
    assert_eq!(moov.trak.len(), 1, "one track per init segment");
    let trak = &moov.trak[0];
    let mvex = moov.mvex.as_ref().expect("moov has mvex");
    assert_eq!(mvex.trex.len(), 1, "one trex");
    let trex = mvex.trex[0].clone();
    assert_eq!(trex.track_id, trak.tkhd.track_id, "trex names the track");
    let stbl = &trak.mdia.minf.stbl;
    let stsz_count = match &stbl.stsz.samples {
        mp4_atom::StszSamples::Identical { count, .. } => *count as usize,
        mp4_atom::StszSamples::Different { sizes } => sizes.len(),
    };
    assert_eq!(stsz_count, 0, "no samples in the init's stsz");
    assert_eq!(stbl.stsd.codecs.len(), 1, "one sample entry");
    let (codec, dimensions) = match &stbl.stsd.codecs[0] {
        SampleEntry::Avc1(a) => (
            format!(
                "avc1.{:02x}{:02x}{:02x}",
                a.avcc.avc_profile_indication,
                a.avcc.profile_compatibility,
                a.avcc.avc_level_indication
            ),
            Some((a.visual.width, a.visual.height)),
        ),
        SampleEntry::Mp4a(m) => {
            let dc = &m.esds.es_desc.dec_config;
            assert_eq!(
                dc.object_type_indication, 0x40,
                "esds object type: MPEG-4 audio"
            );
            let ds = dc
                .dec_specific
                .as_ref()
                .expect("esds has a DecoderSpecificInfo");
            (format!("mp4a.40.{}", ds.profile), None)
        }
        other => panic!("unexpected sample entry {other:?}"),
    };
    InitInfo {
        major_brand: ftyp.major_brand,
        brands: ftyp.compatible_brands,
        track_id: trak.tkhd.track_id,
        timescale: trak.mdia.mdhd.timescale,
        handler: trak.mdia.hdlr.handler,
        codec,
        dimensions,
        trex,
    }
}

/// One sample of a chunk, its fields resolved against tfhd and trex defaults.
#[derive(Clone, Debug)]
pub struct SampleInfo {
    pub decode_time: u64,
    pub duration: u32,
    pub sync: bool,
    pub cts: i64,
    pub data: Bytes,
}

/// One `moof` + `mdat`.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub sequence: u32,
    pub tfdt: u64,
    pub tfdt_version: u8,
    pub trun_version: u8,
    pub samples: Vec<SampleInfo>,
}

/// Splits CMAF chunks (optional `styp`, then `moof` + `mdat` pairs) and resolves every
/// sample.
pub fn parse_chunks(data: &Bytes, init: &InitInfo) -> Vec<Chunk> {
    let boxes = top_boxes(data);
    let mut chunks = Vec::new();
    let mut i = 0;
    while i < boxes.len() {
        let (kind, start, end) = boxes[i];
        if kind == FourCC::new(b"styp") {
            let _: mp4_atom::Styp = decode_whole(&data[start..end]);
            i += 1;
            continue;
        }
        assert_eq!(kind, Moof::KIND, "box {i} at {start}");
        let (mkind, mstart, mend) = *boxes.get(i + 1).expect("moof without mdat");
        assert_eq!(mkind, FourCC::new(b"mdat"), "box after moof at {start}");
        let moof_bytes = &data[start..end];
        let moof: Moof = decode_whole(moof_bytes);
        assert_eq!(moof.traf.len(), 1, "one traf per moof");
        let traf = &moof.traf[0];
        assert_eq!(traf.tfhd.track_id, init.track_id, "tfhd track id");
        assert!(traf.tfhd.default_base_is_moof, "tfhd default-base-is-moof");
        assert!(traf.tfhd.base_data_offset.is_none(), "no base data offset");
        let tfdt = traf
            .tfdt
            .as_ref()
            .expect("traf has tfdt")
            .base_media_decode_time;
        let tfdt_version = box_version(moof_bytes, b"tfdt");
        let trun_version = box_version(moof_bytes, b"trun");
        assert_eq!(traf.trun.len(), 1, "one trun");
        let trun = &traf.trun[0];
        let offset = usize::try_from(trun.data_offset.expect("trun data offset"))
            .expect("positive data offset");
        let mut pos = start + offset;
        assert_eq!(
            pos,
            mstart + 8,
            "trun data offset points at the start of the mdat payload"
        );
        let mut time = tfdt;
        let mut samples = Vec::new();
        for e in trun.samples.iter() {
            let duration = e
                .duration
                .or(traf.tfhd.default_sample_duration)
                .unwrap_or(init.trex.default_sample_duration);
            let size = e
                .size
                .or(traf.tfhd.default_sample_size)
                .unwrap_or(init.trex.default_sample_size) as usize;
            let flags = e
                .flags
                .or(traf.tfhd.default_sample_flags)
                .unwrap_or(init.trex.default_sample_flags);
            assert!(pos + size <= mend, "sample overruns the mdat");
            samples.push(SampleInfo {
                decode_time: time,
                duration,
                sync: flags & 0x0001_0000 == 0,
                cts: e.cts.unwrap_or(0),
                data: data.slice(pos..pos + size),
            });
            pos += size;
            time += u64::from(duration);
        }
        assert_eq!(pos, mend, "mdat holds exactly the trun's samples");
        chunks.push(Chunk {
            sequence: moof.mfhd.sequence_number,
            tfdt,
            tfdt_version,
            trun_version,
            samples,
        });
        i += 2;
    }
    chunks
}

/// The version byte of the first box of type `kind` inside `data` (a full box).
fn box_version(data: &[u8], kind: &[u8; 4]) -> u8 {
    let at = data
        .windows(4)
        .position(|w| w == kind)
        .unwrap_or_else(|| panic!("no {} box", String::from_utf8_lossy(kind)));
    data[at + 4]
}

// ---------------------------------------------------------------------------------------
// ffprobe

#[derive(Clone, Debug)]
pub struct ProbePacket {
    pub stream: u64,
    pub pts: i64,
    pub dts: i64,
    pub key: bool,
}

#[derive(Clone, Debug)]
pub struct ProbeStream {
    pub index: u64,
    pub codec_type: String,
    pub codec_name: String,
    /// time_base as (num, den).
    pub time_base: (i64, i64),
    /// Decoded frames (`-count_frames`).
    pub frames: u64,
    pub width: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Probe {
    pub streams: Vec<ProbeStream>,
    pub packets: Vec<ProbePacket>,
    /// What ffprobe wrote at `-v error`: decode and demux errors.
    pub errors: String,
}

impl Probe {
    pub fn stream(&self, codec_type: &str) -> &ProbeStream {
        self.streams
            .iter()
            .find(|s| s.codec_type == codec_type)
            .unwrap_or_else(|| panic!("no {codec_type} stream"))
    }

    pub fn packets_of(&self, codec_type: &str) -> Vec<&ProbePacket> {
        let index = self.stream(codec_type).index;
        self.packets.iter().filter(|p| p.stream == index).collect()
    }
}

/// `ffprobe -count_frames -show_streams -show_packets -of json` on `path` (plus `extra`
/// options before the input).
pub fn ffprobe(path: &Path, extra: &[&str]) -> Probe {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_packets",
            "-of",
            "json",
        ])
        .args(extra)
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let num = |v: &serde_json::Value| -> Option<i64> {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    };
    let streams = v["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            let tb = s["time_base"].as_str().expect("time_base");
            let (n, d) = tb.split_once('/').expect("time_base n/d");
            ProbeStream {
                index: s["index"].as_u64().expect("index"),
                codec_type: s["codec_type"].as_str().unwrap_or_default().to_owned(),
                codec_name: s["codec_name"].as_str().unwrap_or_default().to_owned(),
                time_base: (n.parse().expect("tb num"), d.parse().expect("tb den")),
                frames: num(&s["nb_read_frames"]).expect("nb_read_frames") as u64,
                width: s["width"].as_u64(),
            }
        })
        .collect();
    let packets = v["packets"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| ProbePacket {
            stream: p["stream_index"].as_u64().expect("stream_index"),
            // Elementary streams carry no timestamps: i64::MIN, which compares unequal.
            pts: num(&p["pts"]).unwrap_or(i64::MIN),
            dts: num(&p["dts"]).unwrap_or(i64::MIN),
            key: p["flags"].as_str().is_some_and(|f| f.starts_with('K')),
        })
        .collect();
    Probe {
        streams,
        packets,
        errors: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Writes the concatenation of `pieces` to `path`.
pub fn write_concat<'a>(path: &Path, pieces: impl IntoIterator<Item = &'a Bytes>) {
    let mut all = Vec::new();
    for p in pieces {
        all.extend_from_slice(p);
    }
    std::fs::write(path, all).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

//! Sources for the packager tests and benchmark: FLV files walked tag by tag and synthetic
//! FLV tag streams with realistic RTMP timing, both turned into [`StreamEvent`]s by the
//! real ingest path ([`FrameBuilder`]), without sockets.
//!
//! Included with `#[path]` by `tests/packager_*.rs` and `examples/packager_bench.rs`, so
//! it depends on nothing but `bytes`, `media` and `ingest`.
#![allow(dead_code)] // every user takes its own subset

use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use ingest::rtmp::frames::FrameBuilder;
use media::{DiscontinuityReason, StreamEvent};

/// FLV tag types.
pub const AUDIO_TAG: u8 = 8;
pub const VIDEO_TAG: u8 = 9;
pub const SCRIPT_TAG: u8 = 18;

/// One FLV tag as an RTMP message: type, 32-bit ms timestamp, body; `wall_ms` is when
/// it "arrives" (ms after [`START`]): the `received` stamp [`feed`] gives its frame.
#[derive(Clone, Debug)]
pub struct Tag {
    pub kind: u8,
    pub ts: u32,
    pub body: Bytes,
    pub wall_ms: i64,
}

impl Tag {
    /// A legacy AVC/AAC sequence header (packet type 0).
    pub fn is_sequence_header(&self) -> bool {
        matches!(self.kind, AUDIO_TAG | VIDEO_TAG) && self.body.get(1) == Some(&0)
    }

    /// A legacy AVC/AAC coded frame (packet type 1).
    pub fn is_coded_frame(&self) -> bool {
        matches!(self.kind, AUDIO_TAG | VIDEO_TAG) && self.body.get(1) == Some(&1)
    }
}

/// The wall-clock origin of every test stream: `received = START + wall_ms`.
pub fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

pub fn wall(ms: i64) -> SystemTime {
    start() + Duration::from_millis(u64::try_from(ms).expect("wall time after START"))
}

/// Walks an FLV file: 9-byte header (its own length in bytes 5..9), PreviousTagSize0, then
/// tags of an 11-byte header (type, 24-bit size, 24-bit timestamp + 8-bit extension,
/// stream id), body and PreviousTagSize. `wall_ms` is the tag timestamp.
pub fn flv_tags(file: &[u8]) -> Vec<Tag> {
    assert_eq!(file.get(..3), Some(&b"FLV"[..]), "not an FLV file");
    let header = u32::from_be_bytes([file[5], file[6], file[7], file[8]]) as usize;
    let mut pos = header + 4;
    let mut tags = Vec::new();
    while pos + 11 <= file.len() {
        let kind = file[pos] & 0x1f;
        let size = u32::from_be_bytes([0, file[pos + 1], file[pos + 2], file[pos + 3]]) as usize;
        let ts = u32::from_be_bytes([file[pos + 7], file[pos + 4], file[pos + 5], file[pos + 6]]);
        let end = pos + 11 + size;
        assert!(end + 4 <= file.len(), "FLV tag at {pos} overruns the file");
        let prev = u32::from_be_bytes([file[end], file[end + 1], file[end + 2], file[end + 3]]);
        assert_eq!(
            prev as usize,
            11 + size,
            "PreviousTagSize after the tag at {pos}"
        );
        tags.push(Tag {
            kind,
            ts,
            body: Bytes::copy_from_slice(&file[pos + 11..end]),
            wall_ms: i64::from(ts),
        });
        pos = end + 4;
    }
    assert_eq!(pos, file.len(), "FLV walk ended off the end of the file");
    tags
}

/// Feeds tags to `builder` as an RTMP session would (audio and video messages; script
/// tags skipped) and returns every event, in order.
pub fn feed(builder: &mut FrameBuilder, tags: &[Tag]) -> Vec<StreamEvent> {
    let mut events = Vec::new();
    for tag in tags {
        let received = wall(tag.wall_ms);
        let out = match tag.kind {
            VIDEO_TAG => builder.video(tag.ts, &tag.body, received),
            AUDIO_TAG => builder.audio(tag.ts, &tag.body, received),
            _ => continue,
        };
        events.extend(
            out.unwrap_or_else(|e| panic!("FrameBuilder refused the tag at {}: {e}", tag.ts)),
        );
    }
    events
}

/// One whole publish: a fresh [`FrameBuilder`] over `tags`, then `finish()`; no `End`.
pub fn publish(tags: &[Tag]) -> Vec<StreamEvent> {
    let mut builder = FrameBuilder::new();
    let has = |k| tags.iter().any(|t| t.kind == k && t.is_sequence_header());
    builder.expect(has(VIDEO_TAG), has(AUDIO_TAG));
    let mut events = feed(&mut builder, tags);
    events.extend(builder.finish());
    events
}

/// Counts the events of each kind: (frames of track 0, frames of track 1, tracks,
/// discontinuities by reason).
pub fn frame_count(events: &[StreamEvent], track: u32) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Frame(f) if f.track == track))
        .count()
}

pub fn discontinuities(events: &[StreamEvent]) -> Vec<DiscontinuityReason> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Discontinuity { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Synthetic sources

/// Bits, most significant first, with H.264's Exp-Golomb codes.
#[derive(Default)]
struct BitWriter {
    bits: Vec<bool>,
}

impl BitWriter {
    fn u(&mut self, n: u32, value: u64) {
        for i in (0..n).rev() {
            self.bits.push(value >> i & 1 == 1);
        }
    }

    fn flag(&mut self, f: bool) {
        self.bits.push(f);
    }

    fn ue(&mut self, value: u64) {
        let v = value + 1;
        let len = 64 - v.leading_zeros();
        self.u(len - 1, 0);
        self.u(len, v);
    }

    fn se(&mut self, value: i64) {
        self.ue(if value > 0 {
            (2 * value - 1) as u64
        } else {
            (-2 * value) as u64
        });
    }

    /// rbsp_trailing_bits, then the bytes with emulation prevention inserted, after
    /// the one-byte NAL header.
    fn nal(mut self, header: u8) -> Vec<u8> {
        self.flag(true);
        while !self.bits.len().is_multiple_of(8) {
            self.flag(false);
        }
        let rbsp: Vec<u8> = self
            .bits
            .chunks(8)
            .map(|c| c.iter().fold(0u8, |b, &bit| b << 1 | u8::from(bit)))
            .collect();
        let mut out = vec![header];
        let mut zeros = 0;
        for b in rbsp {
            if zeros >= 2 && b <= 3 {
                out.push(3);
                zeros = 0;
            }
            out.push(b);
            zeros = if b == 0 { zeros + 1 } else { 0 };
        }
        out
    }
}

/// An AVCDecoderConfigurationRecord for a Main-profile stream of `width` x `height`
/// (multiples of 16) whose SPS signals `fps` (num/den) in its VUI timing info, or no
/// frame rate at all: what a synthetic stream needs to look like its publisher's.
pub fn synth_avcc(width: u32, height: u32, fps: Option<(u32, u32)>) -> Bytes {
    let mut sps = BitWriter::default();
    sps.u(8, 77); // profile_idc: Main
    sps.u(8, 0x40); // constraint_set1_flag
    sps.u(8, 31); // level_idc 3.1
    sps.ue(0); // seq_parameter_set_id
    sps.ue(4); // log2_max_frame_num_minus4
    sps.ue(0); // pic_order_cnt_type
    sps.ue(4); // log2_max_pic_order_cnt_lsb_minus4
    sps.ue(3); // max_num_ref_frames
    sps.flag(false); // gaps_in_frame_num_value_allowed_flag
    sps.ue(u64::from(width / 16 - 1));
    sps.ue(u64::from(height / 16 - 1));
    sps.flag(true); // frame_mbs_only_flag
    sps.flag(true); // direct_8x8_inference_flag
    sps.flag(false); // frame_cropping_flag
    sps.flag(fps.is_some()); // vui_parameters_present_flag
    if let Some((num, den)) = fps {
        sps.flag(false); // aspect_ratio_info_present_flag
        sps.flag(false); // overscan_info_present_flag
        sps.flag(false); // video_signal_type_present_flag
        sps.flag(false); // chroma_loc_info_present_flag
        sps.flag(true); // timing_info_present_flag
        sps.u(32, u64::from(den)); // num_units_in_tick
        sps.u(32, 2 * u64::from(num)); // time_scale
        sps.flag(true); // fixed_frame_rate_flag
        sps.flag(false); // nal_hrd_parameters_present_flag
        sps.flag(false); // vcl_hrd_parameters_present_flag
        sps.flag(false); // pic_struct_present_flag
        sps.flag(false); // bitstream_restriction_flag
    }
    let sps = sps.nal(0x67);
    let mut pps = BitWriter::default();
    pps.ue(0); // pic_parameter_set_id
    pps.ue(0); // seq_parameter_set_id
    pps.flag(true); // entropy_coding_mode_flag (CABAC)
    pps.flag(false); // bottom_field_pic_order_in_frame_present_flag
    pps.ue(0); // num_slice_groups_minus1
    pps.ue(2); // num_ref_idx_l0_default_active_minus1
    pps.ue(0); // num_ref_idx_l1_default_active_minus1
    pps.flag(false); // weighted_pred_flag
    pps.u(2, 0); // weighted_bipred_idc
    pps.se(0); // pic_init_qp_minus26
    pps.se(0); // pic_init_qs_minus26
    pps.se(0); // chroma_qp_index_offset
    pps.flag(true); // deblocking_filter_control_present_flag
    pps.flag(false); // constrained_intra_pred_flag
    pps.flag(false); // redundant_pic_cnt_present_flag
    let pps = pps.nal(0x68);
    let mut avcc = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
    avcc.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(&sps);
    avcc.push(1);
    avcc.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(&pps);
    Bytes::from(avcc)
}

/// An AAC-LC AudioSpecificConfig for `rate` Hz (one of the 13 indexed rates) and
/// `channels` channels.
pub fn aac_asc(rate: u32, channels: u8) -> [u8; 2] {
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    let index = RATES
        .iter()
        .position(|&r| r == rate)
        .unwrap_or_else(|| panic!("no AAC sampling frequency index for {rate} Hz"))
        as u8;
    [
        (2 << 3) | (index >> 1),
        ((index & 1) << 7) | (channels << 3),
    ]
}

/// The video half of a synthetic stream.
#[derive(Clone, Debug)]
pub struct VideoSpec {
    /// Frame rate as a fraction (30000/1001 for 29.97).
    pub fps: (u32, u32),
    /// GOP lengths in frames, used in turn (cycled).
    pub gops: Vec<u32>,
    /// Two B-frames between references (decode order I P B B P B B ...).
    pub bframes: bool,
    /// Added to each frame's millisecond timestamp (cycled; kept monotonic).
    pub jitter_ms: Vec<u32>,
    /// The AVC sequence header's record (see [`synth_avcc`]).
    pub avcc: Bytes,
}

/// The audio half of a synthetic stream: AAC-LC, 1024 samples per frame.
#[derive(Clone, Debug)]
pub struct AudioSpec {
    pub rate: u32,
    pub channels: u8,
}

/// A synthetic stream: which tracks, for how long.
#[derive(Clone, Debug)]
pub struct SynthSpec {
    pub video: Option<VideoSpec>,
    pub audio: Option<AudioSpec>,
    pub duration_ms: u32,
}

impl VideoSpec {
    /// `fps` frames per second (num/den), signalled in the SPS, a keyframe every `gop_s`
    /// seconds, B-frames, 320x176.
    pub fn regular(fps: (u32, u32), gop_s: f64) -> VideoSpec {
        let gop = (gop_s * f64::from(fps.0) / f64::from(fps.1))
            .round()
            .max(1.0) as u32;
        VideoSpec {
            fps,
            gops: vec![gop],
            bframes: true,
            jitter_ms: vec![0],
            avcc: synth_avcc(320, 176, Some(fps)),
        }
    }
}

fn round_div(a: u64, b: u64) -> u64 {
    (a + b / 2) / b
}

/// A length-prefixed frame of `size` bytes: one NAL unit of type `nal_type`, filled with
/// a pattern derived from `seed` (so frames differ).
fn nal_frame(nal_type: u8, size: usize, seed: u64) -> Bytes {
    let mut b = BytesMut::with_capacity(size);
    let len = size - 4;
    b.put_u32(len as u32);
    b.put_u8(nal_type);
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for _ in 1..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.put_u8((x as u8) | 1); // never 0: no start-code look-alikes
    }
    b.freeze()
}

/// The frames of the synthetic video track in decode order: (dts ms, pts ms, keyframe,
/// size).
fn video_frames(spec: &VideoSpec, duration_ms: u32) -> Vec<(u64, u64, bool, usize)> {
    let (num, den) = (u64::from(spec.fps.0), u64::from(spec.fps.1));
    let count = (u64::from(duration_ms) * num / (1000 * den)) as usize;
    // Presentation index of each frame in decode order, and its keyframe flag.
    let mut order: Vec<(u64, bool)> = Vec::with_capacity(count);
    let mut start = 0u64;
    let mut g = 0;
    while (start as usize) < count {
        let len = u64::from(spec.gops[g % spec.gops.len()].max(1)).min(count as u64 - start);
        g += 1;
        order.push((start, true));
        let mut j = 1;
        while j < len {
            let anchor = if spec.bframes {
                (j + 2).min(len - 1)
            } else {
                j
            };
            order.push((start + anchor, false));
            for b in j..anchor {
                order.push((start + b, false));
            }
            j = anchor + 1;
        }
        start += len;
    }
    let delay = if spec.bframes { 2 } else { 0 };
    let ms = |i: u64| round_div(i * 1000 * den, num);
    let mut last_dts = None;
    order
        .iter()
        .enumerate()
        .map(|(i, &(p, key))| {
            let jitter = u64::from(spec.jitter_ms[i % spec.jitter_ms.len()]);
            let mut dts = ms(i as u64) + jitter;
            if let Some(last) = last_dts {
                dts = dts.max(last + 1);
            }
            last_dts = Some(dts);
            let pts = (ms(p + delay) + jitter).max(dts);
            let size = if key {
                6000
            } else if p > i as u64 {
                1500
            } else {
                500
            };
            (dts, pts, key, size)
        })
        .collect()
}

/// The FLV tags of a synthetic stream: sequence headers at 0, then video and audio
/// frames interleaved by timestamp, as an RTMP publisher sends them.
pub fn synth_tags(spec: &SynthSpec) -> Vec<Tag> {
    let mut tags = Vec::new();
    let mut frames: Vec<Tag> = Vec::new();
    if let Some(v) = &spec.video {
        let mut seq = BytesMut::from(&[0x17, 0, 0, 0, 0][..]);
        seq.extend_from_slice(&v.avcc);
        tags.push(Tag {
            kind: VIDEO_TAG,
            ts: 0,
            body: seq.freeze(),
            wall_ms: 0,
        });
        for (i, (dts, pts, key, size)) in video_frames(v, spec.duration_ms).into_iter().enumerate()
        {
            let cto = (pts - dts) as u32;
            let mut body = BytesMut::with_capacity(size + 5);
            body.put_u8(if key { 0x17 } else { 0x27 });
            body.put_u8(1);
            body.put_slice(&cto.to_be_bytes()[1..]);
            body.put_slice(&nal_frame(if key { 0x65 } else { 0x41 }, size, i as u64));
            frames.push(Tag {
                kind: VIDEO_TAG,
                ts: dts as u32,
                body: body.freeze(),
                wall_ms: dts as i64,
            });
        }
    }
    if let Some(a) = &spec.audio {
        let asc = aac_asc(a.rate, a.channels);
        tags.push(Tag {
            kind: AUDIO_TAG,
            ts: 0,
            body: Bytes::copy_from_slice(&[0xaf, 0, asc[0], asc[1]]),
            wall_ms: 0,
        });
        let count = u64::from(spec.duration_ms) * u64::from(a.rate) / (1000 * 1024);
        for k in 0..count {
            let ts = round_div(k * 1024 * 1000, u64::from(a.rate));
            let mut body = BytesMut::with_capacity(300);
            body.put_slice(&[0xaf, 1]);
            body.put_u8(0x21);
            body.put_slice(&nal_frame(0x21, 280, k)[5..]);
            frames.push(Tag {
                kind: AUDIO_TAG,
                ts: ts as u32,
                body: body.freeze(),
                wall_ms: ts as i64,
            });
        }
    }
    frames.sort_by_key(|t| (t.ts, t.kind == AUDIO_TAG));
    tags.extend(frames);
    tags
}

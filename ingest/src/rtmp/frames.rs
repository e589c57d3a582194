//! Turns FLV audio/video tags into [`StreamEvent`]s: tracks from the sequence headers,
//! frames with 64-bit timestamps in each track's timescale.
//!
//! [`FrameBuilder`] is sans-IO: the RTMP session hands it each audio/video message body
//! with its 32-bit millisecond timestamp and the wall-clock arrival time, and gets back
//! the events to publish, in order.
//!
//! # Tracks
//!
//! Video is track [`VIDEO_TRACK`] (0, timescale 90 kHz), audio track [`AUDIO_TRACK`]
//! (1, timescale the AAC sample rate, 48 kHz for Opus). [`StreamEvent::Tracks`] is sent
//! once every track that `onMetaData` announced ([`FrameBuilder::expect`]) has its
//! sequence header; without `onMetaData`, when the first coded frame arrives, with the
//! sequence headers seen so far. A different sequence header later sends
//! `Discontinuity { CodecChange }` and the new `Tracks`; an identical repeat is ignored.
//! Coded frames of a track whose sequence header has not arrived cannot be decoded and
//! are dropped.
//!
//! # Timestamps
//!
//! The 32-bit RTMP clock is unwrapped to 64 bits (one unwrapper for both tracks, so they
//! stay on one timeline) and rebased: frames are held back at startup until every
//! track has sent one (at most [`MAX_STARTUP_FRAMES`] frames or [`MAX_STARTUP_MS`] of
//! media), and the smallest first timestamp becomes zero, so neither track starts
//! negative. A video `pts` below its `dts` (a negative composition offset) or a track
//! whose first frame comes after that window with an earlier timestamp are the only
//! ways a time can be negative.
//!
//! Video: `dts` is the message timestamp, `pts = dts + composition offset`, both
//! converted from ms to 90 kHz exactly. Audio `pts` (= `dts`) counts samples from the
//! first frame (1024 or 960 per AAC frame from the AudioSpecificConfig, the TOC duration
//! for Opus), so the 21.333 ms AAC frames show no ms-rounding jitter; it is re-synced to
//! the message clock when the two differ by more than half a frame plus 1 ms (a lost
//! frame, a gap).
//!
//! A step back in a track's message timestamps, or a step forward of more than
//! [`MAX_FORWARD_JUMP_MS`], sends `Discontinuity { TimestampJump }` and rebases that
//! track to continue one frame interval after its last frame. The other track adopts the
//! same rebase when its own jump arrives, which keeps A/V sync when the publisher's
//! whole clock jumped.

use std::collections::VecDeque;
use std::time::SystemTime;

use bytes::Bytes;
use media::{Codec, DiscontinuityReason, Frame, StreamEvent, TrackId, TrackInfo};

use crate::rtmp::flv::{AudioCodec, AudioTag, VideoCodec, VideoTag};
use crate::timestamp::Unwrapper;
use crate::{Error, Result};

/// Track id of the video track.
pub const VIDEO_TRACK: TrackId = 0;
/// Track id of the audio track.
pub const AUDIO_TRACK: TrackId = 1;
/// Timescale of the video track.
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// Most frames held back at startup while waiting for every track.
pub const MAX_STARTUP_FRAMES: usize = 300;
/// Most media time (ms) held back at startup while waiting for every track.
pub const MAX_STARTUP_MS: i64 = 2_000;
/// A larger step forward between two frames of one track is a timestamp jump.
pub const MAX_FORWARD_JUMP_MS: i64 = 1_000;

const OPUS_RATE: u32 = 48_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Video = 0,
    Audio = 1,
}

impl Kind {
    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Debug)]
struct VideoConfig {
    codec: Codec,
    source: VideoCodec,
    /// NAL length size of the coded frames (1, 2, 3 or 4); None for AV1 (OBUs).
    nal_length_size: Option<u8>,
}

#[derive(Clone, Debug)]
struct AudioConfig {
    codec: Codec,
    source: AudioCodec,
    timescale: u32,
    /// Samples per AAC frame, in the timescale; None when unknown (and for Opus, whose
    /// packets say their own duration).
    frame_samples: Option<u32>,
}

/// A coded frame waiting for the startup rebase.
#[derive(Debug)]
struct Pending {
    kind: Kind,
    /// Unwrapped message timestamp, ms.
    ms: i64,
    /// Composition offset, ms (video only).
    cto: i32,
    keyframe: bool,
    data: Bytes,
    received: SystemTime,
}

/// One track's mapping from the unwrapped message clock to its output clock.
#[derive(Clone, Debug, Default)]
struct TrackClock {
    /// Last unwrapped message timestamp of this track, ms.
    last_ms: Option<i64>,
    /// Output ms = message ms + offset.
    offset: i64,
    /// Offset set by the other track's jump, taken when this track's own jump comes.
    adopt: Option<i64>,
    last_out: i64,
    /// Last normal step between frames, ms: how far past its last frame a rebased track
    /// continues.
    step: i64,
    /// Audio: the pts the next frame has when it follows on without a gap.
    next_sample: Option<i64>,
}

/// Converts the FLV tags of one RTMP publish into [`StreamEvent`]s; see the module docs.
#[derive(Debug)]
pub struct FrameBuilder {
    expected: Option<[bool; 2]>,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// A track whose codec is not supported: not waited for.
    unsupported: [bool; 2],
    tracks: Option<Vec<TrackInfo>>,
    unwrapper: Unwrapper,
    /// True once the startup rebase is done and frames flow straight through.
    started: bool,
    pending: VecDeque<Pending>,
    clocks: [TrackClock; 2],
}

impl Default for FrameBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameBuilder {
    pub fn new() -> Self {
        FrameBuilder {
            expected: None,
            video: None,
            audio: None,
            unsupported: [false; 2],
            tracks: None,
            unwrapper: Unwrapper::new(),
            started: false,
            pending: VecDeque::new(),
            clocks: Default::default(),
        }
    }

    /// From `onMetaData`: which tracks to wait for before sending
    /// [`StreamEvent::Tracks`] (`videocodecid` / `audiocodecid` present). Ignored once
    /// the tracks were sent.
    /// Announcing neither track (no codec ids in `onMetaData`) is the same as not
    /// calling this.
    pub fn expect(&mut self, video: bool, audio: bool) {
        if self.tracks.is_none() {
            self.expected = (video || audio).then_some([video, audio]);
        }
    }

    /// The tracks last sent in [`StreamEvent::Tracks`], if any were.
    pub fn tracks(&self) -> Option<&[TrackInfo]> {
        self.tracks.as_deref()
    }

    /// Handles the body of an RTMP video message with timestamp `timestamp` (ms).
    ///
    /// [`Error::UnsupportedCodec`] means the tag was dropped and the video track will
    /// not be waited for; the builder stays usable and the caller may go on. Any other
    /// error is a malformed tag or codec configuration.
    pub fn video(
        &mut self,
        timestamp: u32,
        data: &Bytes,
        received: SystemTime,
    ) -> Result<Vec<StreamEvent>> {
        let tag = match VideoTag::parse(data) {
            Err(e @ Error::UnsupportedCodec { .. }) => {
                self.unsupported[Kind::Video.index()] = true;
                return Err(e);
            }
            tag => tag?,
        };
        match tag {
            VideoTag::SequenceStart { codec, config } => {
                if config.is_empty() {
                    return Ok(Vec::new());
                }
                let config = video_config(codec, config)?;
                if self.video.as_ref().is_some_and(|v| v.codec == config.codec) {
                    return Ok(Vec::new());
                }
                self.video = Some(config);
                self.unsupported[Kind::Video.index()] = false;
                Ok(self.config_changed(Kind::Video))
            }
            VideoTag::Frame {
                codec,
                keyframe,
                cto,
                data: payload,
            } => {
                let Some(config) = &self.video else {
                    tracing::debug!(timestamp, "video frame before its sequence header, dropped");
                    return Ok(Vec::new());
                };
                if config.source != codec {
                    return Err(Error::Flv {
                        kind: "video",
                        reason: "coded frame codec differs from the sequence header",
                    });
                }
                let data = match config.nal_length_size {
                    Some(size) => length_prefixed(data, payload, size)?,
                    None => data.slice_ref(payload),
                };
                if data.is_empty() {
                    return Ok(Vec::new());
                }
                let ms = self.unwrapper.unwrap(timestamp);
                Ok(self.push(Pending {
                    kind: Kind::Video,
                    ms,
                    cto,
                    keyframe,
                    data,
                    received,
                }))
            }
            VideoTag::SequenceEnd { .. }
            | VideoTag::Command(_)
            | VideoTag::Metadata(_)
            | VideoTag::OtherTrack { .. } => Ok(Vec::new()),
        }
    }

    /// Handles the body of an RTMP audio message with timestamp `timestamp` (ms).
    ///
    /// [`Error::UnsupportedCodec`] (MP3, Speex, ...) means the tag was dropped and the
    /// audio track will not be waited for; the builder stays usable and the caller may
    /// go on without audio. Any other error is a malformed tag or configuration.
    pub fn audio(
        &mut self,
        timestamp: u32,
        data: &Bytes,
        received: SystemTime,
    ) -> Result<Vec<StreamEvent>> {
        let tag = match AudioTag::parse(data) {
            Err(e @ Error::UnsupportedCodec { .. }) => {
                self.unsupported[Kind::Audio.index()] = true;
                return Err(e);
            }
            tag => tag?,
        };
        match tag {
            AudioTag::SequenceStart { codec, config } => {
                let config = match codec {
                    AudioCodec::Aac if config.is_empty() => return Ok(Vec::new()),
                    AudioCodec::Aac => aac_config(config)?,
                    AudioCodec::Opus => opus_config(config)?,
                };
                if self.audio.as_ref().is_some_and(|a| a.codec == config.codec) {
                    return Ok(Vec::new());
                }
                self.audio = Some(config);
                self.unsupported[Kind::Audio.index()] = false;
                self.clocks[Kind::Audio.index()].next_sample = None;
                Ok(self.config_changed(Kind::Audio))
            }
            AudioTag::Frame {
                codec,
                data: payload,
            } => {
                let Some(config) = &self.audio else {
                    tracing::debug!(timestamp, "audio frame before its sequence header, dropped");
                    return Ok(Vec::new());
                };
                if config.source != codec {
                    return Err(Error::Flv {
                        kind: "audio",
                        reason: "coded frame codec differs from the sequence header",
                    });
                }
                let payload = match codec {
                    AudioCodec::Aac => strip_adts(payload),
                    AudioCodec::Opus => payload,
                };
                if payload.is_empty() {
                    return Ok(Vec::new());
                }
                let ms = self.unwrapper.unwrap(timestamp);
                Ok(self.push(Pending {
                    kind: Kind::Audio,
                    ms,
                    cto: 0,
                    keyframe: true,
                    data: data.slice_ref(payload),
                    received,
                }))
            }
            AudioTag::SequenceEnd { .. }
            | AudioTag::MultichannelConfig { .. }
            | AudioTag::Silence
            | AudioTag::OtherTrack { .. } => Ok(Vec::new()),
        }
    }

    /// Releases the frames still held back at startup (sending `Tracks` first if it was
    /// not sent). Call when the publisher stops, before [`StreamEvent::End`].
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        if !self.started && !self.pending.is_empty() {
            if self.tracks.is_none() {
                self.emit_tracks(&mut events);
            }
            self.start(&mut events);
        }
        events
    }

    /// After a new sequence header for `kind`.
    fn config_changed(&mut self, kind: Kind) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        if self.tracks.is_some() {
            if self.started || !self.pending.is_empty() {
                // Frames of the old configuration go out under the old tracks.
                if !self.started {
                    self.start(&mut events);
                }
                tracing::debug!(?kind, "codec configuration changed");
                events.push(StreamEvent::Discontinuity {
                    reason: DiscontinuityReason::CodecChange,
                });
            }
            self.emit_tracks(&mut events);
        } else if self.expected_configured() {
            self.emit_tracks(&mut events);
        }
        events
    }

    /// True when every track `onMetaData` announced has its configuration (or is
    /// unsupported) and at least one has.
    fn expected_configured(&self) -> bool {
        let Some(expected) = self.expected else {
            return false;
        };
        let configured = [self.video.is_some(), self.audio.is_some()];
        let any = configured.iter().any(|&c| c);
        any && (0..2).all(|i| !expected[i] || configured[i] || self.unsupported[i])
    }

    fn emit_tracks(&mut self, events: &mut Vec<StreamEvent>) {
        let mut tracks = Vec::with_capacity(2);
        if let Some(v) = &self.video {
            tracks.push(TrackInfo {
                id: VIDEO_TRACK,
                codec: v.codec.clone(),
                timescale: VIDEO_TIMESCALE,
            });
        }
        if let Some(a) = &self.audio {
            tracks.push(TrackInfo {
                id: AUDIO_TRACK,
                codec: a.codec.clone(),
                timescale: a.timescale,
            });
        }
        if tracks.is_empty() {
            return;
        }
        self.tracks = Some(tracks.clone());
        events.push(StreamEvent::Tracks(tracks));
    }

    fn push(&mut self, frame: Pending) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        if self.started {
            self.emit_frame(frame, &mut events);
            return events;
        }
        self.pending.push_back(frame);
        let overflow = self.pending.len() >= MAX_STARTUP_FRAMES || {
            let (lo, hi) = self
                .pending
                .iter()
                .fold((i64::MAX, i64::MIN), |(lo, hi), p| {
                    (lo.min(p.ms), hi.max(p.ms))
                });
            hi - lo > MAX_STARTUP_MS
        };
        if self.tracks.is_none()
            && (self.expected.is_none() || overflow || self.expected_configured())
        {
            self.emit_tracks(&mut events);
        }
        if let Some(tracks) = &self.tracks {
            let every_track_started = tracks.iter().all(|t| {
                let kind = if t.id == VIDEO_TRACK {
                    Kind::Video
                } else {
                    Kind::Audio
                };
                self.pending.iter().any(|p| p.kind == kind)
            });
            if every_track_started || overflow {
                self.start(&mut events);
            }
        }
        events
    }

    /// The startup rebase: the earliest held-back timestamp becomes zero for both
    /// tracks; then the held-back frames go out.
    fn start(&mut self, events: &mut Vec<StreamEvent>) {
        let Some(base) = self.pending.iter().map(|p| p.ms).min() else {
            return;
        };
        for clock in &mut self.clocks {
            clock.offset = -base;
        }
        self.started = true;
        while let Some(frame) = self.pending.pop_front() {
            self.emit_frame(frame, events);
        }
    }

    fn emit_frame(&mut self, frame: Pending, events: &mut Vec<StreamEvent>) {
        let out_ms = self.output_ms(frame.kind, frame.ms, events);
        let (track, pts, dts) = match frame.kind {
            Kind::Video => {
                let dts = out_ms * 90;
                (VIDEO_TRACK, dts + i64::from(frame.cto) * 90, dts)
            }
            Kind::Audio => {
                let pts = self.audio_pts(out_ms, &frame.data);
                (AUDIO_TRACK, pts, pts)
            }
        };
        events.push(StreamEvent::Frame(Frame {
            track,
            pts,
            dts,
            keyframe: frame.keyframe,
            data: frame.data,
            received: frame.received,
        }));
    }

    /// Maps a track's unwrapped message time to output ms, detecting jumps.
    fn output_ms(&mut self, kind: Kind, ms: i64, events: &mut Vec<StreamEvent>) -> i64 {
        let [video, audio] = &mut self.clocks;
        let (clock, other) = match kind {
            Kind::Video => (video, audio),
            Kind::Audio => (audio, video),
        };
        if let Some(last) = clock.last_ms {
            let delta = ms - last;
            if (0..=MAX_FORWARD_JUMP_MS).contains(&delta) {
                if delta > 0 {
                    clock.step = delta;
                }
            } else {
                let last_out = clock.last_out;
                let adopted = clock.adopt.take().filter(|offset| {
                    let step = ms + offset - last_out;
                    (0..=MAX_FORWARD_JUMP_MS).contains(&step)
                });
                if let Some(offset) = adopted {
                    clock.offset = offset;
                } else {
                    tracing::debug!(?kind, delta, "timestamp jump");
                    clock.offset = last_out + clock.step.max(1) - ms;
                    if other.last_ms.is_some() {
                        other.adopt = Some(clock.offset);
                    } else {
                        other.offset = clock.offset;
                    }
                    events.push(StreamEvent::Discontinuity {
                        reason: DiscontinuityReason::TimestampJump,
                    });
                }
                clock.next_sample = None;
            }
        }
        clock.last_ms = Some(ms);
        clock.last_out = ms + clock.offset;
        clock.last_out
    }

    /// Audio pts in the track timescale: counted in samples while it stays within half
    /// a frame plus 1 ms of the message clock, re-synced to it otherwise.
    fn audio_pts(&mut self, out_ms: i64, data: &[u8]) -> i64 {
        let (rate, samples) = match &self.audio {
            Some(a) => (
                a.timescale,
                match a.source {
                    AudioCodec::Aac => a.frame_samples,
                    AudioCodec::Opus => opus_packet_samples(data),
                },
            ),
            None => (OPUS_RATE, None),
        };
        let rate = i64::from(rate);
        let clock_pts = (out_ms * rate + 500).div_euclid(1000);
        let clock = &mut self.clocks[Kind::Audio.index()];
        let pts = match (clock.next_sample, samples) {
            (Some(next), Some(n)) if (next - clock_pts).abs() <= i64::from(n) / 2 + rate / 1000 => {
                next
            }
            _ => clock_pts,
        };
        clock.next_sample = samples.map(|n| pts + i64::from(n));
        pts
    }
}

/// Builds a video track configuration from a sequence header, rewriting an avcC/hvcC
/// with 1- or 2-byte NAL lengths to say 4 (frames are converted to 4-byte lengths).
fn video_config(source: VideoCodec, record: &[u8]) -> Result<VideoConfig> {
    // Offset of the byte holding lengthSizeMinusOne in its low two bits.
    let length_byte = match source {
        VideoCodec::Avc => Some(4),
        VideoCodec::Hevc => Some(21),
        VideoCodec::Av1 => None,
    };
    let mut record = record.to_vec();
    let nal_length_size = match length_byte {
        Some(at) => {
            let Some(byte) = record.get_mut(at) else {
                return Err(Error::Flv {
                    kind: "video",
                    reason: "decoder configuration record too short",
                });
            };
            let size = (*byte & 0x03) + 1;
            *byte |= 0x03;
            Some(size)
        }
        None => None,
    };
    let record = Bytes::from(record);
    let codec = match source {
        VideoCodec::Avc => Codec::h264(record)?,
        VideoCodec::Hevc => Codec::h265(record)?,
        VideoCodec::Av1 => Codec::av1(record)?,
    };
    Ok(VideoConfig {
        codec,
        source,
        nal_length_size,
    })
}

/// The coded frame as 4-byte length-prefixed NAL units; a slice of `whole` (no copy)
/// when it already is. A frame that does not parse with the configured length size but
/// starts with a 4-byte Annex B start code (some encoders send those) is converted.
fn length_prefixed(whole: &Bytes, payload: &[u8], size: u8) -> Result<Bytes> {
    match length_prefixed_checked(whole, payload, size) {
        Err(e) if payload.starts_with(&[0, 0, 0, 1]) => {
            tracing::debug!(error = %e, "Annex B video frame converted");
            Ok(media::nal::annexb_to_length_prefixed(payload))
        }
        other => other,
    }
}

fn length_prefixed_checked(whole: &Bytes, payload: &[u8], size: u8) -> Result<Bytes> {
    if size == 4 {
        let mut pos = 0usize;
        let mut contiguous = true;
        for nal in media::nal::iter_length_prefixed(payload, 4) {
            let nal = nal?;
            let offset = nal.as_ptr() as usize - payload.as_ptr() as usize;
            contiguous &= offset == pos + 4;
            pos = offset + nal.len();
        }
        if contiguous && pos == payload.len() {
            return Ok(whole.slice_ref(payload));
        }
    }
    Ok(media::nal::relength(payload, size)?)
}

fn aac_config(asc: &[u8]) -> Result<AudioConfig> {
    let codec = Codec::aac(Bytes::copy_from_slice(asc))?;
    let Some((rate, _)) = codec.audio() else {
        return Err(Error::Flv {
            kind: "audio",
            reason: "AAC configuration without a sample rate",
        });
    };
    if rate == 0 {
        return Err(Error::Flv {
            kind: "audio",
            reason: "AAC sample rate of 0",
        });
    }
    Ok(AudioConfig {
        frame_samples: aac_frame_samples(asc, rate),
        codec,
        source: AudioCodec::Aac,
        timescale: rate,
    })
}

const AAC_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Samples per AAC frame at `rate` (the sample rate the track uses as timescale): 1024,
/// or 960 when the GASpecificConfig frameLengthFlag is set, scaled when `rate` is the
/// SBR output rate rather than the core rate. None when the config is not understood.
fn aac_frame_samples(asc: &[u8], rate: u32) -> Option<u32> {
    let mut r = media::bits::BitReader::new(asc, "AudioSpecificConfig");
    let object_type = |r: &mut media::bits::BitReader<'_>| -> Option<u32> {
        let aot = r.read_bits(5).ok()?;
        if aot == 31 {
            Some(32 + r.read_bits(6).ok()?)
        } else {
            Some(aot)
        }
    };
    let sample_rate = |r: &mut media::bits::BitReader<'_>| -> Option<u32> {
        let index = r.read_bits(4).ok()?;
        if index == 15 {
            r.read_bits(24).ok()
        } else {
            AAC_RATES.get(index as usize).copied()
        }
    };
    let mut aot = object_type(&mut r)?;
    let core_rate = sample_rate(&mut r)?;
    r.read_bits(4).ok()?; // channelConfiguration
    if aot == 5 || aot == 29 {
        // Explicit SBR/PS: the extension rate, then the core object type.
        sample_rate(&mut r)?;
        aot = object_type(&mut r)?;
    }
    let frame_length: u32 = match aot {
        1 | 2 | 3 | 4 | 6 | 7 | 17 | 19 | 20 | 21 | 22 => {
            if r.read_bit().ok()? {
                960
            } else {
                1024
            }
        }
        _ => return None,
    };
    if core_rate == 0 {
        return None;
    }
    let samples = u64::from(frame_length) * u64::from(rate) / u64::from(core_rate);
    u32::try_from(samples).ok().filter(|&n| n > 0)
}

/// An Opus track from its ID header (RFC 7845 section 5.1); an empty header means
/// stereo (E-RTMP v2).
fn opus_config(head: &[u8]) -> Result<AudioConfig> {
    let channels = if head.is_empty() {
        2
    } else {
        if head.len() < 19 || &head[..8] != b"OpusHead" {
            return Err(Error::Flv {
                kind: "audio",
                reason: "Opus sequence start is not an OpusHead",
            });
        }
        match head[9] {
            0 => {
                return Err(Error::Flv {
                    kind: "audio",
                    reason: "OpusHead with 0 channels",
                });
            }
            n => n,
        }
    };
    Ok(AudioConfig {
        codec: Codec::Opus {
            sample_rate: OPUS_RATE,
            channels,
        },
        source: AudioCodec::Opus,
        timescale: OPUS_RATE,
        frame_samples: None,
    })
}

/// Duration of an Opus packet in 48 kHz samples, from its TOC (RFC 6716 section 3.1).
fn opus_packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = u32::from(toc >> 3);
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][(config % 4) as usize],
        12..=15 => [480, 960][(config % 2) as usize],
        _ => [120, 240, 480, 960][(config % 4) as usize],
    };
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    let total = frame * frames;
    (1..=5760).contains(&total).then_some(total)
}

/// Removes an ADTS header some publishers leave on RTMP AAC frames (only a header
/// whose frame length is exactly this frame, with one raw data block).
fn strip_adts(frame: &[u8]) -> &[u8] {
    if frame.len() < 7 || frame[0] != 0xff || frame[1] & 0xf6 != 0xf0 {
        return frame;
    }
    let header = if frame[1] & 0x01 == 1 { 7 } else { 9 };
    let length = (usize::from(frame[3] & 0x03) << 11)
        | (usize::from(frame[4]) << 3)
        | usize::from(frame[5] >> 5);
    if length == frame.len() && length > header && frame[6] & 0x03 == 0 {
        &frame[header..]
    } else {
        frame
    }
}

#[cfg(test)]
#[path = "frames_tests.rs"]
mod tests;

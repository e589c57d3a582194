//! Turns the demuxer's PES packets into [`StreamEvent`]s: tracks from in-band codec
//! configuration, frames with rebased 64-bit timestamps.
//!
//! [`EsFrames`] is sans-IO: feed it every [`TsEvent`] with the wall-clock time its bytes
//! arrived, publish what it returns, call [`EsFrames::finish`] at the end.
//!
//! # Tracks
//!
//! The first H.264 or H.265 stream of the PMT is video track [`VIDEO_TRACK`] (0, 90 kHz),
//! the first AAC stream audio track [`AUDIO_TRACK`] (1, timescale the AAC sample rate),
//! the same ids as RTMP ingest. Other streams are ignored (the caller sees them in
//! [`TsEvent::Streams`] and warns).
//!
//! - Video: each PES is one access unit (as every common muxer writes it). Its Annex B
//!   NAL units become 4-byte length-prefixed units; access unit delimiters and filler
//!   data are dropped, parameter sets are kept in the frame as they came (like RTMP
//!   ingest, which passes frames through). The track's avcC/hvcC is built from the
//!   SPS and PPS (and VPS) seen in band; a keyframe is an access unit with an IDR (H.264)
//!   or IRAP (H.265) picture. Frames before the configuration, and non-key frames
//!   before the first keyframe, cannot be decoded and are dropped.
//! - Audio: a PES holds one or more ADTS frames; each becomes one raw access unit. The
//!   AudioSpecificConfig is derived from the first ADTS header.
//!
//! [`StreamEvent::Tracks`] is sent once every stream the PMT lists (that this module
//! carries) has its configuration, or when [`STARTUP_WAIT`] of media (or wall-clock
//! time) passed since the first PES, with the tracks known then. A different
//! configuration later (new parameter sets, another sample rate, a track that appears
//! late) sends `Discontinuity { CodecChange }` and the new `Tracks`; an identical
//! repeat (x264 repeats SPS/PPS at each IDR) changes nothing.
//!
//! # Timestamps
//!
//! The demuxer already unwrapped the 33-bit clocks, so both tracks are on one 64-bit
//! 90 kHz timeline. As in RTMP ingest ([`crate::rtmp::frames`]) frames are held back at
//! startup until every track has one (at most [`MAX_STARTUP_FRAMES`] frames or
//! [`MAX_STARTUP_TICKS`] of media), and the smallest DTS among them becomes zero for
//! both tracks, which keeps A/V sync.
//!
//! Audio frame `n` of a PES is at the PES PTS plus `n * 1024` samples, converted to the
//! sample rate; the output counts samples on from one frame to the next while that stays
//! within half a frame plus 1 ms of this clock, so rates that 90 kHz cannot express
//! exactly (44.1 kHz) show no rounding jitter, and re-syncs to it after a gap.
//!
//! A step back in a track's DTS, or a step forward of more than [`MAX_FORWARD_JUMP`]
//! (1 s), sends `Discontinuity { TimestampJump }` and rebases that track to continue
//! one frame interval after its last frame; the other track adopts the same rebase when
//! its own jump arrives (the whole publisher clock jumped), exactly as RTMP ingest does.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use media::aac::AdtsHeader;
use media::{Codec, DiscontinuityReason, Frame, StreamEvent, TrackInfo};

use super::demux::{EsKind, TsEvent};
pub use crate::rtmp::frames::{AUDIO_TRACK, VIDEO_TIMESCALE, VIDEO_TRACK};

/// How long (media time, 90 kHz, or wall-clock) to wait for every PMT stream's
/// configuration before sending the tracks known so far.
pub const STARTUP_WAIT: Duration = Duration::from_secs(1);
/// Most frames held back at startup while waiting for every track to have a frame.
pub const MAX_STARTUP_FRAMES: usize = 300;
/// Most media time (90 kHz ticks) held back at startup.
pub const MAX_STARTUP_TICKS: i64 = 2 * 90_000;
/// A larger step forward (90 kHz ticks) between two frames of one track is a jump.
pub const MAX_FORWARD_JUMP: i64 = 90_000;

const STARTUP_WAIT_TICKS: i64 = 90_000;

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

/// Counters of what [`EsFrames`] made of the PES packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EsStats {
    /// Frames sent.
    pub frames: u64,
    /// Frames dropped: before their configuration, before the first keyframe, without
    /// a timestamp, or while their track was not announced.
    pub dropped_frames: u64,
    /// Parameter sets or ADTS headers that did not give a codec configuration.
    pub codec_errors: u64,
    /// Bytes of an audio PES that were not ADTS frames (skipped to the next sync word).
    pub adts_errors: u64,
}

#[derive(Debug, Default)]
struct VideoState {
    pid: Option<u16>,
    /// `EsKind::H264` or `EsKind::H265` once a pid is chosen.
    kind: Option<EsKind>,
    codec: Option<Codec>,
    vps: Vec<Bytes>,
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
    /// A keyframe was sent since the configuration was first known.
    seen_key: bool,
}

#[derive(Debug, Default)]
struct AudioState {
    pid: Option<u16>,
    codec: Option<Codec>,
    /// (object type, sampling frequency index, channel configuration) of the ADTS
    /// header the codec came from.
    header: Option<(u8, u8, u8)>,
    rate: u32,
    frame_samples: u32,
}

/// A frame waiting for the startup rebase (or on its way out).
#[derive(Debug)]
struct Pending {
    kind: Kind,
    /// 90 kHz, unwrapped, not rebased. Audio: the PES PTS plus the duration of the
    /// frames before this one in the PES.
    dts: i64,
    pts: i64,
    keyframe: bool,
    data: Bytes,
    received: SystemTime,
}

/// One track's mapping from the input 90 kHz clock to its output clock.
#[derive(Clone, Debug, Default)]
struct TrackClock {
    last_in: Option<i64>,
    /// Output = input + offset.
    offset: i64,
    /// Offset set by the other track's jump, taken when this track's own jump comes.
    adopt: Option<i64>,
    last_out: i64,
    /// Last normal step between frames: how far past its last frame a rebased track
    /// continues.
    step: i64,
    /// Audio: the pts (samples) the next frame has when it follows on without a gap.
    next_sample: Option<i64>,
    /// Audio: the last pts sent, in the current timescale.
    last_pts: Option<i64>,
}

/// Converts demuxed PES packets into [`StreamEvent`]s; see the module docs.
#[derive(Debug, Default)]
pub struct EsFrames {
    video: VideoState,
    audio: AudioState,
    tracks: Option<Vec<TrackInfo>>,
    started: bool,
    pending: VecDeque<Pending>,
    clocks: [TrackClock; 2],
    /// First PES timestamp and arrival time seen: the startup wait runs from here.
    first_seen: Option<(Option<i64>, SystemTime)>,
    stats: EsStats,
}

impl EsFrames {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters so far.
    pub fn stats(&self) -> EsStats {
        self.stats
    }

    /// The tracks last sent in [`StreamEvent::Tracks`], if any were.
    pub fn tracks(&self) -> Option<&[TrackInfo]> {
        self.tracks.as_deref()
    }

    /// Handles one demuxer event whose bytes arrived at `received`.
    pub fn push(&mut self, ev: TsEvent, received: SystemTime) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        match ev {
            TsEvent::Streams(streams) => {
                let video = streams
                    .iter()
                    .find(|s| matches!(s.kind, EsKind::H264 | EsKind::H265));
                let audio = streams.iter().find(|s| s.kind == EsKind::Aac);
                for s in &streams {
                    let used =
                        Some(s.pid) == video.map(|v| v.pid) || Some(s.pid) == audio.map(|a| a.pid);
                    if !used {
                        // The caller warns (it sees the same Streams event).
                        tracing::debug!(pid = s.pid, kind = ?s.kind, "mpeg-ts stream ignored");
                    }
                }
                self.video.pid = video.map(|v| v.pid);
                let kind = video.map(|v| v.kind);
                if kind != self.video.kind {
                    // Another codec: wait for its parameter sets and a keyframe (the old
                    // configuration cannot describe its frames).
                    self.video = VideoState {
                        pid: self.video.pid,
                        kind,
                        ..VideoState::default()
                    };
                }
                self.audio.pid = audio.map(|a| a.pid);
            }
            TsEvent::Pes {
                pid,
                pts,
                dts,
                data,
                random_access: _,
            } => {
                if self.first_seen.is_none() {
                    self.first_seen = Some((dts.or(pts), received));
                }
                if Some(pid) == self.video.pid {
                    self.video_pes(pts, dts, data, received, &mut events);
                } else if Some(pid) == self.audio.pid {
                    self.audio_pes(pts, data, received, &mut events);
                }
                if self.tracks.is_none() && self.waited(dts.or(pts), received) {
                    self.emit_tracks(&mut events);
                    self.maybe_start(false, &mut events);
                }
            }
        }
        events
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

    /// True when the startup wait for missing configurations is over.
    fn waited(&self, ts: Option<i64>, received: SystemTime) -> bool {
        let Some((first_ts, first_received)) = self.first_seen else {
            return false;
        };
        let media = matches!((first_ts, ts), (Some(a), Some(b)) if b - a >= STARTUP_WAIT_TICKS);
        let wall = received
            .duration_since(first_received)
            .is_ok_and(|d| d >= STARTUP_WAIT);
        media || wall
    }

    fn video_pes(
        &mut self,
        pts: Option<i64>,
        dts: Option<i64>,
        data: Bytes,
        received: SystemTime,
        events: &mut Vec<StreamEvent>,
    ) {
        let hevc = self.video.kind == Some(EsKind::H265);
        let mut out = BytesMut::with_capacity(data.len() + 16);
        let mut keyframe = false;
        let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
        for nal in media::nal::split_annexb(&data) {
            let Ok(len) = u32::try_from(nal.len()) else {
                continue;
            };
            if hevc {
                match media::h265::nal_type(nal) {
                    Some(media::h265::NAL_AUD | 38) => continue, // AUD, filler data
                    Some(media::h265::NAL_VPS) => vps.push(data.slice_ref(nal)),
                    Some(media::h265::NAL_SPS) => sps.push(data.slice_ref(nal)),
                    Some(media::h265::NAL_PPS) => pps.push(data.slice_ref(nal)),
                    _ => keyframe |= media::h265::is_irap(nal),
                }
            } else {
                match media::h264::nal_type(nal) {
                    Some(media::h264::NAL_AUD | 12) => continue, // AUD, filler data
                    Some(media::h264::NAL_SPS) => sps.push(data.slice_ref(nal)),
                    Some(media::h264::NAL_PPS) => pps.push(data.slice_ref(nal)),
                    _ => keyframe |= media::h264::is_idr(nal),
                }
            }
            out.put_u32(len);
            out.extend_from_slice(nal);
        }
        if !(vps.is_empty() && sps.is_empty() && pps.is_empty()) {
            self.parameter_sets(hevc, vps, sps, pps, events);
        }
        if out.is_empty() {
            return;
        }
        let (Some(pts), true) = (pts, self.video.codec.is_some()) else {
            self.stats.dropped_frames += 1;
            return;
        };
        if !self.video.seen_key && !keyframe {
            self.stats.dropped_frames += 1;
            return;
        }
        self.video.seen_key = true;
        self.push_frame(
            Pending {
                kind: Kind::Video,
                dts: dts.unwrap_or(pts),
                pts,
                keyframe,
                data: out.freeze(),
                received,
            },
            events,
        );
    }

    /// Parameter sets seen in an access unit: each kind present replaces the stored
    /// ones; a complete set that differs from the current configuration is a new one.
    fn parameter_sets(
        &mut self,
        hevc: bool,
        vps: Vec<Bytes>,
        sps: Vec<Bytes>,
        pps: Vec<Bytes>,
        events: &mut Vec<StreamEvent>,
    ) {
        let v = &mut self.video;
        for (stored, new) in [(&mut v.vps, vps), (&mut v.sps, sps), (&mut v.pps, pps)] {
            if !new.is_empty() {
                let mut new = new;
                new.dedup();
                *stored = new;
            }
        }
        if v.sps.is_empty() || v.pps.is_empty() || (hevc && v.vps.is_empty()) {
            return;
        }
        let codec = if hevc {
            media::h265::HevcConfig::from_parameter_sets(&v.vps, &v.sps, &v.pps)
                .and_then(|c| Codec::h265(c.to_bytes()))
        } else {
            media::h264::AvcConfig::from_parameter_sets(&v.sps, &v.pps)
                .and_then(|c| Codec::h264(c.to_bytes()))
        };
        match codec {
            Ok(codec) if v.codec.as_ref() != Some(&codec) => {
                v.codec = Some(codec);
                self.config_changed(Kind::Video, events);
            }
            Ok(_) => {}
            Err(e) => {
                self.stats.codec_errors += 1;
                tracing::debug!(error = %e, "mpeg-ts video parameter sets rejected");
            }
        }
    }

    fn audio_pes(
        &mut self,
        pts: Option<i64>,
        data: Bytes,
        received: SystemTime,
        events: &mut Vec<StreamEvent>,
    ) {
        let mut pos = 0usize;
        let mut index = 0u32;
        while pos < data.len() {
            let rest = &data[pos..];
            let (header, payload, used) = match AdtsHeader::parse_frame(rest) {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    // A truncated last frame.
                    self.stats.adts_errors += 1;
                    break;
                }
                Err(_) => {
                    self.stats.adts_errors += 1;
                    // Skip to the next sync word.
                    match rest[1..]
                        .windows(2)
                        .position(|w| w[0] == 0xff && w[1] & 0xf0 == 0xf0)
                    {
                        Some(p) => {
                            pos += 1 + p;
                            continue;
                        }
                        None => break,
                    }
                }
            };
            pos += used;
            let key = (
                header.object_type,
                header.sampling_frequency_index,
                header.channel_configuration,
            );
            if self.audio.header != Some(key) {
                self.audio_config(&header, key, events);
            }
            let Some(pts) = pts else {
                self.stats.dropped_frames += 1;
                continue;
            };
            if self.audio.codec.is_none() || header.raw_data_blocks != 1 || payload.is_empty() {
                self.stats.dropped_frames += 1;
                continue;
            }
            // Frame n of the PES starts n frame durations after the PES PTS.
            let offset = (i64::from(index) * i64::from(self.audio.frame_samples) * 90_000
                + i64::from(self.audio.rate / 2))
                / i64::from(self.audio.rate.max(1));
            self.push_frame(
                Pending {
                    kind: Kind::Audio,
                    dts: pts + offset,
                    pts: pts + offset,
                    keyframe: true,
                    data: data.slice_ref(payload),
                    received,
                },
                events,
            );
            index += 1;
        }
    }

    fn audio_config(
        &mut self,
        header: &AdtsHeader,
        key: (u8, u8, u8),
        events: &mut Vec<StreamEvent>,
    ) {
        self.audio.header = Some(key);
        let config = header.to_asc().and_then(|asc| {
            let codec = Codec::aac(asc.to_bytes())?;
            Ok((codec, asc.samples_per_frame()))
        });
        match config {
            Ok((codec, samples)) => {
                let Some((rate, _)) = codec.audio().filter(|(rate, _)| *rate > 0) else {
                    return;
                };
                if self.audio.codec.as_ref() == Some(&codec) {
                    return;
                }
                self.audio.rate = rate;
                self.audio.frame_samples = samples;
                self.audio.codec = Some(codec);
                let clock = &mut self.clocks[Kind::Audio.index()];
                clock.next_sample = None;
                clock.last_pts = None;
                self.config_changed(Kind::Audio, events);
            }
            Err(e) => {
                self.stats.codec_errors += 1;
                self.audio.codec = None;
                tracing::debug!(error = %e, "mpeg-ts ADTS header gives no AAC configuration");
            }
        }
    }

    /// After a new configuration for `kind`.
    fn config_changed(&mut self, kind: Kind, events: &mut Vec<StreamEvent>) {
        if self.tracks.is_some() {
            if self.started || !self.pending.is_empty() {
                // Frames of the old configuration go out under the old tracks.
                if !self.started {
                    self.start(events);
                }
                tracing::debug!(?kind, "codec configuration changed");
                events.push(StreamEvent::Discontinuity {
                    reason: DiscontinuityReason::CodecChange,
                });
            }
            self.emit_tracks(events);
        } else if self.all_configured() {
            self.emit_tracks(events);
            self.maybe_start(false, events);
        }
    }

    /// Every stream this module carries has its configuration.
    fn all_configured(&self) -> bool {
        let video = self.video.pid.is_none() || self.video.codec.is_some();
        let audio = self.audio.pid.is_none() || self.audio.codec.is_some();
        video && audio && (self.video.codec.is_some() || self.audio.codec.is_some())
    }

    fn emit_tracks(&mut self, events: &mut Vec<StreamEvent>) {
        let mut tracks = Vec::with_capacity(2);
        if let Some(codec) = &self.video.codec {
            tracks.push(TrackInfo {
                id: VIDEO_TRACK,
                codec: codec.clone(),
                timescale: VIDEO_TIMESCALE,
            });
        }
        if let Some(codec) = &self.audio.codec {
            tracks.push(TrackInfo {
                id: AUDIO_TRACK,
                codec: codec.clone(),
                timescale: self.audio.rate,
            });
        }
        if tracks.is_empty() {
            return;
        }
        self.tracks = Some(tracks.clone());
        events.push(StreamEvent::Tracks(tracks));
    }

    fn announced(&self, kind: Kind) -> bool {
        let id = match kind {
            Kind::Video => VIDEO_TRACK,
            Kind::Audio => AUDIO_TRACK,
        };
        self.tracks
            .as_ref()
            .is_some_and(|t| t.iter().any(|t| t.id == id))
    }

    fn push_frame(&mut self, frame: Pending, events: &mut Vec<StreamEvent>) {
        if self.started {
            if self.announced(frame.kind) {
                self.emit_frame(frame, events);
            } else {
                self.stats.dropped_frames += 1;
            }
            return;
        }
        self.pending.push_back(frame);
        let overflow = self.pending.len() >= MAX_STARTUP_FRAMES || {
            let (lo, hi) = self
                .pending
                .iter()
                .fold((i64::MAX, i64::MIN), |(lo, hi), p| {
                    (lo.min(p.dts), hi.max(p.dts))
                });
            hi - lo > MAX_STARTUP_TICKS
        };
        if self.tracks.is_none() && overflow {
            self.emit_tracks(events);
        }
        self.maybe_start(overflow, events);
    }

    /// Starts once the tracks are sent and every track has a held-back frame (or the
    /// startup window overflowed).
    fn maybe_start(&mut self, overflow: bool, events: &mut Vec<StreamEvent>) {
        if self.started || self.tracks.is_none() || self.pending.is_empty() {
            return;
        }
        let every_track_started = [Kind::Video, Kind::Audio]
            .into_iter()
            .filter(|&k| self.announced(k))
            .all(|k| self.pending.iter().any(|p| p.kind == k));
        if every_track_started || overflow {
            self.start(events);
        }
    }

    /// The startup rebase: the earliest held-back DTS becomes zero for both tracks;
    /// then the held-back frames of announced tracks go out.
    fn start(&mut self, events: &mut Vec<StreamEvent>) {
        let Some(base) = self.pending.iter().map(|p| p.dts).min() else {
            return;
        };
        for clock in &mut self.clocks {
            clock.offset = -base;
        }
        self.started = true;
        while let Some(frame) = self.pending.pop_front() {
            if self.announced(frame.kind) {
                self.emit_frame(frame, events);
            } else {
                self.stats.dropped_frames += 1;
            }
        }
    }

    fn emit_frame(&mut self, frame: Pending, events: &mut Vec<StreamEvent>) {
        let dts = self.output(frame.kind, frame.dts, events);
        let (track, pts, dts) = match frame.kind {
            Kind::Video => (VIDEO_TRACK, frame.pts + (dts - frame.dts), dts),
            Kind::Audio => {
                let pts = self.audio_pts(dts);
                (AUDIO_TRACK, pts, pts)
            }
        };
        self.stats.frames += 1;
        events.push(StreamEvent::Frame(Frame {
            track,
            pts,
            dts,
            keyframe: frame.keyframe,
            data: frame.data,
            received: frame.received,
        }));
    }

    /// Maps a track's input DTS to its output DTS, detecting jumps (90 kHz).
    fn output(&mut self, kind: Kind, ts: i64, events: &mut Vec<StreamEvent>) -> i64 {
        let [video, audio] = &mut self.clocks;
        let (clock, other) = match kind {
            Kind::Video => (video, audio),
            Kind::Audio => (audio, video),
        };
        if let Some(last) = clock.last_in {
            let delta = ts - last;
            if (0..=MAX_FORWARD_JUMP).contains(&delta) {
                if delta > 0 {
                    clock.step = delta;
                }
            } else {
                let last_out = clock.last_out;
                let adopted = clock.adopt.take().filter(|offset| {
                    let step = ts + offset - last_out;
                    (0..=MAX_FORWARD_JUMP).contains(&step)
                });
                if let Some(offset) = adopted {
                    clock.offset = offset;
                } else {
                    tracing::debug!(?kind, delta, "mpeg-ts timestamp jump");
                    clock.offset = last_out + clock.step.max(1) - ts;
                    if other.last_in.is_some() {
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
        clock.last_in = Some(ts);
        clock.last_out = ts + clock.offset;
        clock.last_out
    }

    /// Audio pts in samples for a frame whose rebased time is `ts` (90 kHz): counted on
    /// from the previous frame while that stays within half a frame plus 1 ms of `ts`.
    fn audio_pts(&mut self, ts: i64) -> i64 {
        let rate = i64::from(self.audio.rate.max(1));
        let samples = i64::from(self.audio.frame_samples);
        let clock_pts = (ts * rate + 45_000).div_euclid(90_000);
        let clock = &mut self.clocks[Kind::Audio.index()];
        let pts = match clock.next_sample {
            Some(next) if (next - clock_pts).abs() <= samples / 2 + rate / 1000 => next,
            _ => clock_pts,
        };
        // Never back: a counted pts may run up to half a frame ahead of the clock, and a
        // damaged stream may re-sync to a clock just behind it.
        let pts = match clock.last_pts {
            Some(last) if pts <= last => last + 1,
            _ => pts,
        };
        clock.last_pts = Some(pts);
        clock.next_sample = Some(pts + samples);
        pts
    }
}

#[cfg(test)]
#[path = "es_tests.rs"]
mod tests;

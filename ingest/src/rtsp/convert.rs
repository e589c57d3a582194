//! retina's frames to [`StreamEvent`]s, sans-IO: the pull task hands over each frame's
//! RTP timestamp (retina's 64-bit extended value relative to the stream's start, and the
//! RTP clock rate), its payload and its arrival time, and publishes what comes back.
//!
//! # Tracks
//!
//! Video is track [`VIDEO_TRACK`] (timescale 90 kHz), audio [`AUDIO_TRACK`] (timescale
//! the AAC output sample rate). `Tracks` is sent once every expected track has its codec
//! (from the SDP's parameters or, for video, the first frame that carries them); frames
//! before that are dropped. An H.265 frame holding a CRA or BLA picture is a keyframe
//! like an IDR (retina flags only IDRs). New video parameters later send
//! `Discontinuity { CodecChange }` and the new `Tracks`.
//!
//! # Timestamps
//!
//! RTSP carries one time per frame (the RTP timestamp) and no decode time, so `dts =
//! pts`: a camera stream with B-frames is not supported (IP cameras do not send them).
//! retina maps each stream's RTP clock onto the presentation's play time (NPT) with the
//! PLAY response's `RTP-Info`, so audio and video share one timeline. Nothing is sent
//! before the first video keyframe (audio included, so both tracks start together at
//! about 0); that frame's time becomes 0 for every track. Each track's times are
//! converted from its RTP clock rate to its timescale (exact when they are equal, the
//! usual case) as 64-bit values. A small step back (up to 1 s) is clamped to one tick
//! after the previous frame; a jump of more than 1 s back or 10 s forward is an
//! [`Error::RtspTimestampJump`], which ends the session (the pull reconnects, and the
//! playlists continue after a discontinuity).
use std::time::SystemTime;

use bytes::Bytes;
use media::{Codec, DiscontinuityReason, Frame, StreamEvent, TrackId, TrackInfo};

use crate::{Error, Result};

/// Track id of the video track.
pub const VIDEO_TRACK: TrackId = 0;
/// Track id of the audio track.
pub const AUDIO_TRACK: TrackId = 1;
/// Timescale of the video track.
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// Largest forward step between two frames of a track, in seconds.
pub const MAX_FORWARD_JUMP_SECS: i64 = 10;
/// Largest backward step that is clamped rather than refused, in seconds.
pub const MAX_BACKWARD_STEP_SECS: i64 = 1;

const NANOS: i128 = 1_000_000_000;

/// A frame time as retina gives it: ticks of the RTP clock since the stream's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpTime {
    /// `retina::Timestamp::elapsed()`.
    pub elapsed: i64,
    /// `retina::Timestamp::clock_rate()`, never 0.
    pub clock_rate: u32,
}

impl RtpTime {
    fn nanos(self) -> i128 {
        i128::from(self.elapsed) * NANOS / i128::from(self.clock_rate.max(1))
    }

    fn ticks(self, timescale: u32) -> i128 {
        if self.clock_rate == timescale {
            return i128::from(self.elapsed);
        }
        (i128::from(self.elapsed) * i128::from(timescale))
            .div_euclid(i128::from(self.clock_rate.max(1)))
    }
}

#[derive(Debug)]
struct Track {
    id: TrackId,
    kind: &'static str,
    codec: Option<Codec>,
    /// This track's time of the common zero, in its timescale.
    base: Option<i128>,
    last: Option<i64>,
}

impl Track {
    fn new(id: TrackId, kind: &'static str) -> Track {
        Track {
            id,
            kind,
            codec: None,
            base: None,
            last: None,
        }
    }

    fn timescale(&self) -> u32 {
        match &self.codec {
            Some(Codec::Aac { sample_rate, .. }) => *sample_rate,
            _ => VIDEO_TIMESCALE,
        }
    }

    fn info(&self) -> Option<TrackInfo> {
        Some(TrackInfo {
            id: self.id,
            codec: self.codec.clone()?,
            timescale: self.timescale(),
        })
    }
}

/// The state of one session's conversion (see the module docs).
#[derive(Debug)]
pub struct Converter {
    video: Option<Track>,
    audio: Option<Track>,
    /// The Tracks last sent; None before the first.
    sent: Option<Vec<TrackInfo>>,
    /// The common zero, in ns of play time; set by the first frame sent.
    zero: Option<i128>,
    /// Backward steps clamped so far.
    clamped: u64,
}

impl Converter {
    /// A converter for a session with (or without) a video and an audio stream.
    pub fn new(video: bool, audio: bool) -> Converter {
        Converter {
            video: video.then(|| Track::new(VIDEO_TRACK, "video")),
            audio: audio.then(|| Track::new(AUDIO_TRACK, "audio")),
            sent: None,
            zero: None,
            clamped: 0,
        }
    }

    /// Whether `Tracks` has been sent.
    pub fn started(&self) -> bool {
        self.sent.is_some()
    }

    /// Backward timestamp steps clamped so far.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// Sets the video codec (from the SDP, or a frame with new parameters). After
    /// `Tracks` went out, a different codec sends `Discontinuity { CodecChange }` and the
    /// new `Tracks`.
    pub fn set_video_codec(&mut self, codec: Codec) -> Vec<StreamEvent> {
        match &mut self.video {
            Some(track) if track.codec.as_ref() != Some(&codec) => track.codec = Some(codec),
            _ => return Vec::new(),
        }
        self.retrack()
    }

    /// Sets the audio codec (from the SDP).
    pub fn set_audio_codec(&mut self, codec: Codec) -> Vec<StreamEvent> {
        match &mut self.audio {
            Some(track) if track.codec.as_ref() != Some(&codec) => track.codec = Some(codec),
            _ => return Vec::new(),
        }
        self.retrack()
    }

    fn retrack(&mut self) -> Vec<StreamEvent> {
        if self.sent.is_none() {
            return Vec::new();
        }
        match self.tracks() {
            Some(tracks) => {
                self.sent = Some(tracks.clone());
                vec![
                    StreamEvent::Discontinuity {
                        reason: DiscontinuityReason::CodecChange,
                    },
                    StreamEvent::Tracks(tracks),
                ]
            }
            None => Vec::new(),
        }
    }

    /// Every expected track's info, once all have a codec.
    fn tracks(&self) -> Option<Vec<TrackInfo>> {
        let mut out = Vec::new();
        for track in [&self.video, &self.audio].into_iter().flatten() {
            out.push(track.info()?);
        }
        Some(out)
    }

    /// A video frame. `data` is 4-byte length-prefixed NAL units; `random_access` is
    /// retina's flag. retina 0.4 flags only IDR pictures in H.265, so an H.265 frame
    /// with any IRAP picture (CRA, BLA: what x265 and many cameras send at GOP starts
    /// after the first) is a keyframe too, from its NAL unit types.
    pub fn video(
        &mut self,
        time: RtpTime,
        random_access: bool,
        data: Bytes,
        received: SystemTime,
    ) -> Result<Vec<StreamEvent>> {
        let h265 = self
            .video
            .as_ref()
            .is_some_and(|t| matches!(t.codec, Some(Codec::H265 { .. })));
        let keyframe = random_access || (h265 && media::h265::contains_irap(&data));
        let mut out = Vec::new();
        if self.sent.is_none() {
            // The stream starts at a keyframe, with every track described.
            if !keyframe {
                return Ok(out);
            }
            let Some(tracks) = self.tracks() else {
                return Ok(out);
            };
            self.sent = Some(tracks.clone());
            out.push(StreamEvent::Tracks(tracks));
        }
        let zero = *self.zero.get_or_insert(time.nanos());
        let Some(track) = self.video.as_mut() else {
            return Ok(out);
        };
        let t = place(track, time, zero, &mut self.clamped)?;
        out.push(StreamEvent::Frame(Frame {
            track: track.id,
            pts: t,
            dts: t,
            keyframe,
            data,
            received,
        }));
        Ok(out)
    }

    /// An audio frame: one raw AAC access unit.
    pub fn audio(
        &mut self,
        time: RtpTime,
        data: Bytes,
        received: SystemTime,
    ) -> Result<Vec<StreamEvent>> {
        let mut out = Vec::new();
        if self.sent.is_none() {
            // With video, wait for its first keyframe; audio alone starts at once.
            if self.video.is_some() {
                return Ok(out);
            }
            let Some(tracks) = self.tracks() else {
                return Ok(out);
            };
            self.sent = Some(tracks.clone());
            out.push(StreamEvent::Tracks(tracks));
        }
        let zero = *self.zero.get_or_insert(time.nanos());
        let Some(track) = self.audio.as_mut() else {
            return Ok(out);
        };
        let t = place(track, time, zero, &mut self.clamped)?;
        out.push(StreamEvent::Frame(Frame {
            track: track.id,
            pts: t,
            dts: t,
            keyframe: true,
            data,
            received,
        }));
        Ok(out)
    }
}

/// The frame's time in `track`'s timescale, relative to the common zero; checks and
/// records the step from the previous frame.
fn place(track: &mut Track, time: RtpTime, zero: i128, clamped: &mut u64) -> Result<i64> {
    let scale = track.timescale();
    let base = *track
        .base
        .get_or_insert_with(|| (zero * i128::from(scale) + NANOS / 2).div_euclid(NANOS));
    let t = i64::try_from(time.ticks(scale) - base).map_err(|_| Error::RtspTimestampJump {
        kind: track.kind,
        from: track.last.unwrap_or(0),
        to: i64::MAX,
        timescale: scale,
    })?;
    let t = match track.last {
        Some(last) => {
            let step = t.saturating_sub(last);
            let scale = i64::from(scale);
            if step > MAX_FORWARD_JUMP_SECS * scale || step < -MAX_BACKWARD_STEP_SECS * scale {
                return Err(Error::RtspTimestampJump {
                    kind: track.kind,
                    from: last,
                    to: t,
                    timescale: scale as u32,
                });
            }
            if step <= 0 {
                *clamped += 1;
                last + 1
            } else {
                t
            }
        }
        None => t,
    };
    track.last = Some(t);
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real avcC (x264, baseline, 720p30) from media's test vectors.
    fn avcc() -> Codec {
        let rec = include_bytes!("../../../media/testdata/h264_baseline_720p30.avcc");
        Codec::h264(Bytes::from_static(rec)).expect("valid avcC")
    }

    fn aac48() -> Codec {
        // AAC-LC, 48 kHz, stereo.
        Codec::aac(Bytes::from_static(&[0x11, 0x90])).expect("valid ASC")
    }

    fn frames(events: &[StreamEvent]) -> Vec<(TrackId, i64, bool)> {
        events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Frame(f) => Some((f.track, f.pts, f.keyframe)),
                _ => None,
            })
            .collect()
    }

    const NOW: SystemTime = SystemTime::UNIX_EPOCH;
    fn v(elapsed: i64) -> RtpTime {
        RtpTime {
            elapsed,
            clock_rate: 90_000,
        }
    }
    fn a(elapsed: i64) -> RtpTime {
        RtpTime {
            elapsed,
            clock_rate: 48_000,
        }
    }

    #[test]
    fn starts_at_the_first_keyframe_with_tracks_and_a_common_zero() {
        let mut c = Converter::new(true, true);
        assert!(c.set_video_codec(avcc()).is_empty());
        // Audio and a non-keyframe before the first keyframe are dropped, and so is a
        // keyframe before every codec is known.
        assert!(c.audio(a(48_000), Bytes::new(), NOW).unwrap().is_empty());
        assert!(
            c.video(v(90_000), false, Bytes::new(), NOW)
                .unwrap()
                .is_empty()
        );
        assert!(
            c.video(v(93_000), true, Bytes::new(), NOW)
                .unwrap()
                .is_empty()
        );
        assert!(c.set_audio_codec(aac48()).is_empty());
        let ev = c.video(v(96_000), true, Bytes::new(), NOW).unwrap();
        let StreamEvent::Tracks(tracks) = &ev[0] else {
            panic!("Tracks first: {ev:?}");
        };
        assert_eq!(tracks.len(), 2);
        assert_eq!((tracks[0].id, tracks[0].timescale), (VIDEO_TRACK, 90_000));
        assert_eq!((tracks[1].id, tracks[1].timescale), (AUDIO_TRACK, 48_000));
        assert_eq!(frames(&ev), vec![(VIDEO_TRACK, 0, true)]);
        // 96000/90000 s is 51200 audio samples: audio at 52224 samples is 1024 after zero.
        let ev = c.audio(a(52_224), Bytes::new(), NOW).unwrap();
        assert_eq!(frames(&ev), vec![(AUDIO_TRACK, 1024, true)]);
        let ev = c.video(v(99_000), false, Bytes::new(), NOW).unwrap();
        assert_eq!(frames(&ev), vec![(VIDEO_TRACK, 3000, false)]);
        assert!(c.started());
    }

    #[test]
    fn exact_steps_over_long_runs_and_64_bit_times() {
        let mut c = Converter::new(true, false);
        c.set_video_codec(avcc());
        // Start far beyond 32 bits (retina's extended timestamps do not wrap).
        let start = (1i64 << 33) + 12_345;
        let mut last = None;
        for i in 0..10_000i64 {
            let ev = c
                .video(v(start + i * 3003), i % 60 == 0, Bytes::new(), NOW)
                .unwrap();
            let f = frames(&ev);
            assert_eq!(f.len(), 1);
            assert_eq!(f[0].1, i * 3003);
            last = Some(f[0].1);
        }
        assert_eq!(last, Some(9_999 * 3003));
    }

    #[test]
    fn audio_clock_other_than_the_sample_rate_is_rescaled() {
        let mut c = Converter::new(false, true);
        c.set_audio_codec(aac48());
        // A camera announcing a 90 kHz clock for 48 kHz audio.
        let ev = c
            .audio(
                RtpTime {
                    elapsed: 900,
                    clock_rate: 90_000,
                },
                Bytes::new(),
                NOW,
            )
            .unwrap();
        assert!(matches!(ev[0], StreamEvent::Tracks(_)));
        assert_eq!(frames(&ev), vec![(AUDIO_TRACK, 0, true)]);
        let ev = c
            .audio(
                RtpTime {
                    elapsed: 900 + 1920,
                    clock_rate: 90_000,
                },
                Bytes::new(),
                NOW,
            )
            .unwrap();
        assert_eq!(frames(&ev), vec![(AUDIO_TRACK, 1024, true)]);
    }

    #[test]
    fn small_steps_back_are_clamped_and_jumps_refused() {
        let mut c = Converter::new(true, false);
        c.set_video_codec(avcc());
        c.video(v(0), true, Bytes::new(), NOW).unwrap();
        c.video(v(3000), false, Bytes::new(), NOW).unwrap();
        let ev = c.video(v(1000), false, Bytes::new(), NOW).unwrap();
        assert_eq!(frames(&ev), vec![(VIDEO_TRACK, 3001, false)]);
        assert_eq!(c.clamped(), 1);
        let err = c
            .video(v(3001 + 11 * 90_000), false, Bytes::new(), NOW)
            .unwrap_err();
        assert!(
            matches!(err, Error::RtspTimestampJump { kind: "video", .. }),
            "{err}"
        );
        let err = c
            .video(v(3001 - 2 * 90_000), false, Bytes::new(), NOW)
            .unwrap_err();
        assert!(matches!(err, Error::RtspTimestampJump { .. }), "{err}");
    }

    #[test]
    fn h265_cra_frames_are_keyframes() {
        let rec = include_bytes!("../../../media/testdata/hevc_main_1080p2997.hvcc");
        let mut c = Converter::new(true, false);
        c.set_video_codec(Codec::h265(Bytes::from_static(rec)).expect("valid hvcC"));
        // One NAL unit each, 4-byte lengths: CRA (type 21), TRAIL_R (1), IDR_W_RADL (19).
        let au = |nal_type: u8| Bytes::from(vec![0, 0, 0, 3, nal_type << 1, 1, 0xaf]);
        // Not flagged by retina, but a CRA: the stream starts here.
        let ev = c.video(v(0), false, au(21), NOW).unwrap();
        assert_eq!(frames(&ev), vec![(VIDEO_TRACK, 0, true)]);
        let ev = c.video(v(3000), false, au(1), NOW).unwrap();
        assert_eq!(frames(&ev), vec![(VIDEO_TRACK, 3000, false)]);
        let ev = c.video(v(6000), true, au(19), NOW).unwrap();
        assert_eq!(frames(&ev), vec![(VIDEO_TRACK, 6000, true)]);
        // H.264 bytes that would read as a CRA header are not re-examined.
        let mut h264 = Converter::new(true, false);
        h264.set_video_codec(avcc());
        assert!(h264.video(v(0), false, au(21), NOW).unwrap().is_empty());
    }

    #[test]
    fn new_video_parameters_send_a_codec_change() {
        let mut c = Converter::new(true, false);
        c.set_video_codec(avcc());
        c.video(v(0), true, Bytes::new(), NOW).unwrap();
        // The same parameters again: nothing.
        assert!(c.set_video_codec(avcc()).is_empty());
        let Codec::H264 { avcc: rec, .. } = avcc() else {
            unreachable!()
        };
        // Same SPS, another PPS id (the byte after the PPS NAL header): a different
        // record that still parses.
        let mut other = rec.to_vec();
        let pps_len_at = 6 + 2 + usize::from(u16::from_be_bytes([rec[6], rec[7]])) + 1;
        other[pps_len_at + 3] ^= 0x40;
        let changed = Codec::h264(Bytes::from(other)).expect("still valid");
        let ev = c.set_video_codec(changed.clone());
        assert_eq!(
            ev[0],
            StreamEvent::Discontinuity {
                reason: DiscontinuityReason::CodecChange
            }
        );
        let StreamEvent::Tracks(t) = &ev[1] else {
            panic!("{ev:?}")
        };
        assert_eq!(t[0].codec, changed);
    }
}

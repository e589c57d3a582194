//! A synthetic publisher: H.264 30 fps (a real avcC from the packager's test vectors,
//! fake frame payloads) with a keyframe every second, and AAC-LC 48 kHz stereo, frames
//! interleaved by time. `received` stamps are a fixed epoch plus media time, so
//! EXT-X-PROGRAM-DATE-TIME follows EXTINF exactly, however fast frames are pushed.
//!
//! Shared by the store's unit tests and the server tests (`#[path]`).
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use media::{Codec, FrameRate, StreamEvent, TrackInfo};

const AVCC: &[u8] = include_bytes!("../../../packager/testdata/h264_baseline_720p30.avcc");
pub const VIDEO: u32 = 0;
pub const AUDIO: u32 = 1;
const FPS: u64 = 30;
const RATE: u64 = 48_000;
const AAC_FRAME: u64 = 1024;

/// The packager settings the tests use: 1 s segments (TD 1), 200 ms parts, a window of
/// 8 segments (long enough for a Skip Boundary of 6 s).
pub fn packager_config() -> packager::PackagerConfig {
    packager::PackagerConfig {
        segment_target_ms: 1000,
        part_target_ms: 200,
        window_segments: 8,
    }
}

pub struct Synth {
    pub audio: bool,
    /// Next video frame index and next audio frame index.
    video_next: u64,
    audio_next: u64,
    epoch: SystemTime,
}

impl Default for Synth {
    fn default() -> Self {
        Synth::new(true)
    }
}

impl Synth {
    pub fn new(audio: bool) -> Synth {
        Synth {
            audio,
            video_next: 0,
            audio_next: 0,
            epoch: UNIX_EPOCH + Duration::from_secs(1_750_000_000),
        }
    }

    pub fn tracks(&self) -> StreamEvent {
        let mut tracks = vec![TrackInfo {
            id: VIDEO,
            codec: Codec::H264 {
                avcc: Bytes::from_static(AVCC),
                width: 1280,
                height: 720,
                fps: Some(FrameRate { num: 30, den: 1 }),
            },
            timescale: 90_000,
        }];
        if self.audio {
            // AAC LC (2), 48 kHz (index 3), stereo (2).
            let word: u16 = (2 << 11) | (3 << 7) | (2 << 3);
            let codec = Codec::aac(Bytes::copy_from_slice(&word.to_be_bytes()))
                .expect("valid AudioSpecificConfig");
            tracks.push(TrackInfo {
                id: AUDIO,
                codec,
                timescale: RATE as u32,
            });
        }
        StreamEvent::Tracks(tracks)
    }

    /// Media time of the next frame.
    pub fn position(&self) -> Duration {
        let v = Duration::from_nanos(self.video_next * 1_000_000_000 / FPS);
        if !self.audio {
            return v;
        }
        let a = Duration::from_nanos(self.audio_next * AAC_FRAME * 1_000_000_000 / RATE);
        v.min(a)
    }

    /// Every frame starting before media time `until`, interleaved by time.
    pub fn frames_until(&mut self, until: Duration) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        let until_ns = until.as_nanos() as u64;
        loop {
            let v_ns = self.video_next * 1_000_000_000 / FPS;
            let a_ns = if self.audio {
                self.audio_next * AAC_FRAME * 1_000_000_000 / RATE
            } else {
                u64::MAX
            };
            let next = v_ns.min(a_ns);
            if next >= until_ns {
                return out;
            }
            if v_ns <= a_ns {
                let i = self.video_next;
                let dts = (i * 90_000 / FPS) as i64;
                out.push(StreamEvent::Frame(media::Frame {
                    track: VIDEO,
                    pts: dts,
                    dts,
                    keyframe: i.is_multiple_of(FPS),
                    data: Bytes::from(vec![(i % 251) as u8; 200 + (i % 17) as usize]),
                    received: self.epoch + Duration::from_nanos(v_ns),
                }));
                self.video_next += 1;
            } else {
                let k = self.audio_next;
                out.push(StreamEvent::Frame(media::Frame {
                    track: AUDIO,
                    pts: (k * AAC_FRAME) as i64,
                    dts: (k * AAC_FRAME) as i64,
                    keyframe: true,
                    data: Bytes::from(vec![0xA0; 12 + (k % 5) as usize]),
                    received: self.epoch + Duration::from_nanos(a_ns),
                }));
                self.audio_next += 1;
            }
        }
    }
}

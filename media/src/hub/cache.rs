//! The GOP cache: what a new subscriber is replayed so it can start decoding at once.
//!
//! For a stream with video, the cache holds the Tracks in effect at the latest video
//! keyframe, then every event since that keyframe (frames of all tracks, and the control
//! events the publisher sent in between), exactly as a subscriber present at the time saw
//! them. It is bounded by `max_frames` events and `max_bytes` of frame payload: a GOP that
//! outgrows either is dropped whole, and new subscribers wait for the next keyframe rather
//! than receive a GOP they cannot decode from its start.
//!
//! For a stream without video every frame is a sync sample, so the cache keeps a short
//! tail instead: the last [`AUDIO_TAIL_FRAMES`] events (about one second of AAC at 48 kHz
//! or of 20 ms Opus packets), within the same caps.
//!
//! The cache stores `Bytes` handles: caching and replaying never copy a payload.

use std::collections::VecDeque;

use crate::{Frame, StreamEvent, TrackInfo};

/// Events kept for a stream with no video track.
pub(super) const AUDIO_TAIL_FRAMES: usize = 50;

#[derive(Debug)]
pub(super) struct GopCache {
    max_events: usize,
    max_bytes: usize,
    /// The Tracks in effect at the first cached event.
    start_tracks: Option<Vec<TrackInfo>>,
    /// Starts with a resume frame, or is empty (nothing to replay).
    events: VecDeque<StreamEvent>,
    frames: usize,
    bytes: usize,
}

/// What a new subscriber is given.
pub(super) struct Replay {
    pub(super) events: Vec<StreamEvent>,
    pub(super) frames: usize,
}

impl GopCache {
    pub(super) fn new(max_frames: usize, max_bytes: usize) -> GopCache {
        GopCache {
            max_events: max_frames.max(1),
            max_bytes,
            start_tracks: None,
            events: VecDeque::new(),
            frames: 0,
            bytes: 0,
        }
    }

    /// Offers a frame. `resume`: a video keyframe (or, with `video` false, any sync
    /// sample). `tracks`: the Tracks in effect, recorded when a new GOP starts.
    pub(super) fn push_frame(
        &mut self,
        frame: &Frame,
        resume: bool,
        video: bool,
        tracks: Option<&Vec<TrackInfo>>,
    ) {
        let restart = if video {
            resume
        } else {
            resume && self.events.is_empty()
        };
        if restart {
            self.clear();
            self.start_tracks = tracks.cloned();
        } else if self.events.is_empty() {
            return;
        }
        self.frames += 1;
        self.bytes += frame.data.len();
        self.events.push_back(StreamEvent::Frame(frame.clone()));
        self.enforce(video);
    }

    /// Records a Tracks or Discontinuity event inside the current GOP.
    pub(super) fn push_control(&mut self, event: &StreamEvent, video: bool) {
        if self.events.is_empty() {
            return;
        }
        self.events.push_back(event.clone());
        self.enforce(video);
    }

    pub(super) fn clear(&mut self) {
        self.start_tracks = None;
        self.events.clear();
        self.frames = 0;
        self.bytes = 0;
    }

    fn over(&self, max_events: usize) -> bool {
        self.events.len() > max_events || self.bytes > self.max_bytes
    }

    fn enforce(&mut self, video: bool) {
        if video {
            if self.over(self.max_events) {
                self.clear();
            }
            return;
        }
        let max_events = self.max_events.min(AUDIO_TAIL_FRAMES);
        while self.over(max_events) {
            self.pop_front();
            // Keep the invariant: the cache starts at a sync sample, under the Tracks
            // that govern it.
            while let Some(front) = self.events.front() {
                match front {
                    StreamEvent::Frame(f) if f.keyframe => break,
                    _ => {
                        if let Some(StreamEvent::Tracks(t)) = self.pop_front() {
                            self.start_tracks = Some(t);
                        }
                    }
                }
            }
        }
    }

    fn pop_front(&mut self) -> Option<StreamEvent> {
        let ev = self.events.pop_front()?;
        if let StreamEvent::Frame(f) = &ev {
            self.frames -= 1;
            self.bytes -= f.data.len();
        }
        Some(ev)
    }

    /// The events to replay to a new subscriber, Tracks first; None when the cache holds
    /// no decodable start.
    pub(super) fn replay(&self) -> Option<Replay> {
        if self.events.is_empty() {
            return None;
        }
        let mut events = Vec::with_capacity(self.events.len() + 1);
        if let Some(t) = &self.start_tracks {
            events.push(StreamEvent::Tracks(t.clone()));
        }
        events.extend(self.events.iter().cloned());
        Some(Replay {
            events,
            frames: self.frames,
        })
    }

    #[cfg(test)]
    pub(super) fn frames(&self) -> usize {
        self.frames
    }

    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.events.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use bytes::Bytes;

    use super::*;
    use crate::{Codec, DiscontinuityReason};

    fn frame(n: i64, keyframe: bool, size: usize) -> Frame {
        Frame {
            track: 1,
            pts: n,
            dts: n,
            keyframe,
            data: Bytes::from(vec![0u8; size]),
            received: SystemTime::UNIX_EPOCH,
        }
    }

    fn tracks(id: u32) -> Vec<TrackInfo> {
        vec![TrackInfo {
            id,
            codec: Codec::Opus {
                sample_rate: 48_000,
                channels: 2,
            },
            timescale: 48_000,
        }]
    }

    fn pts_of(events: &[StreamEvent]) -> Vec<i64> {
        events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Frame(f) => Some(f.pts),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn video_cache_restarts_at_each_keyframe() {
        let t = tracks(1);
        let mut c = GopCache::new(100, 1 << 20);
        for n in 0..10 {
            let key = n % 4 == 0;
            c.push_frame(&frame(n, key, 10), key, true, Some(&t));
        }
        let r = c.replay().expect("cache holds a GOP");
        assert_eq!(r.events[0], StreamEvent::Tracks(t));
        assert_eq!(pts_of(&r.events), vec![8, 9]);
        assert_eq!(r.frames, 2);
    }

    #[test]
    fn no_keyframe_ever_means_nothing_cached() {
        let mut c = GopCache::new(100, 1 << 20);
        for n in 0..1000 {
            c.push_frame(&frame(n, false, 10), false, true, None);
            assert_eq!(c.len(), 0);
        }
        assert!(c.replay().is_none());
    }

    #[test]
    fn endless_gop_is_bounded_by_frame_cap() {
        let mut c = GopCache::new(30, usize::MAX);
        c.push_frame(&frame(0, true, 10), true, true, None);
        for n in 1..10_000 {
            c.push_frame(&frame(n, false, 10), false, true, None);
            assert!(c.len() <= 30 && c.frames() <= 30);
        }
        // The GOP outgrew the cap: nothing decodable is left to replay.
        assert!(c.replay().is_none());
        c.push_frame(&frame(10_000, true, 10), true, true, None);
        assert_eq!(c.replay().map(|r| r.frames), Some(1));
    }

    #[test]
    fn endless_gop_is_bounded_by_byte_cap() {
        let mut c = GopCache::new(usize::MAX, 1000);
        c.push_frame(&frame(0, true, 100), true, true, None);
        let mut max_bytes = 0;
        for n in 1..10_000 {
            c.push_frame(&frame(n, false, 100), false, true, None);
            max_bytes = max_bytes.max(c.bytes());
            assert!(c.bytes() <= 1000);
        }
        assert_eq!(
            max_bytes, 1000,
            "the cache filled up to its cap before resetting"
        );
    }

    #[test]
    fn control_events_inside_a_gop_are_replayed_and_bounded() {
        let mut c = GopCache::new(10, usize::MAX);
        let disc = StreamEvent::Discontinuity {
            reason: DiscontinuityReason::TimestampJump,
        };
        c.push_control(&disc, true);
        assert!(c.replay().is_none(), "no control event before a keyframe");
        c.push_frame(&frame(0, true, 1), true, true, None);
        c.push_control(&disc, true);
        c.push_frame(&frame(1, false, 1), false, true, None);
        let r = c.replay().expect("gop");
        assert_eq!(r.events.len(), 3);
        assert_eq!(r.events[1], disc);
        for _ in 0..20 {
            c.push_control(&disc, true);
            assert!(c.len() <= 10);
        }
    }

    #[test]
    fn audio_only_keeps_a_short_tail_starting_at_a_sync_sample() {
        let mut c = GopCache::new(1500, usize::MAX);
        c.push_frame(&frame(0, true, 10), true, false, Some(&tracks(1)));
        c.push_frame(&frame(1, true, 10), true, false, Some(&tracks(1)));
        c.push_control(&StreamEvent::Tracks(tracks(2)), false);
        for n in 2..1000 {
            c.push_frame(&frame(n, true, 10), true, false, Some(&tracks(2)));
            assert!(c.len() <= AUDIO_TAIL_FRAMES);
        }
        let r = c.replay().expect("tail");
        // The Tracks that governed the oldest kept frame leads the replay.
        assert_eq!(r.events[0], StreamEvent::Tracks(tracks(2)));
        let pts = pts_of(&r.events);
        assert_eq!(pts.len(), AUDIO_TAIL_FRAMES);
        assert_eq!(pts.first(), Some(&(1000 - AUDIO_TAIL_FRAMES as i64)));
        assert_eq!(pts.last(), Some(&999));
    }

    #[test]
    fn audio_tail_respects_a_small_byte_cap() {
        let mut c = GopCache::new(1500, 35);
        for n in 0..100 {
            c.push_frame(&frame(n, true, 10), true, false, None);
            assert!(c.bytes() <= 35);
        }
        assert_eq!(
            c.replay().map(|r| pts_of(&r.events)),
            Some(vec![97, 98, 99])
        );
    }
}

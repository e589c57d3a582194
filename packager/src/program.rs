//! The [`Program`]: one stream's renditions on one shared segment grid.
//!
//! Stream events go in ([`Program::push`]); [`Output`] events come out (init segments,
//! parts, complete segments, discontinuities, the end), and the program answers
//! playlist snapshots and byte lookups for the origin. It does no I/O and keeps no
//! clock: program date-times are the frames' `received` stamps.
//!
//! # Renditions
//!
//! The first video track becomes rendition `source`, the first audio track `audio`
//! (one track per rendition, track_ID 1 in each fMP4). Video-only and audio-only
//! streams work. `source` (or `audio` when there is no video) leads: it decides where
//! segments start (see [`crate::segmenter`]); the others cut at its boundaries, so
//! segment N covers the same time in every rendition [S §6.2.4, A 8.22]. The set of
//! renditions comes from the first `Tracks`; a later `Tracks` may change a rendition's
//! codec or add the audio track (publishers without `onMetaData` announce it late); a
//! video track appearing in an audio-only stream is ignored, and a leader track that
//! disappears from a later `Tracks` is not replaced (its followers wait for it).
//!
//! Followers are generic (any track, cut at the nearest frame to each boundary). The
//! transcoded rungs of a ladder are follower renditions fed their own events through
//! [`Program::push_rendition`] beside [`Program::push`]: their frames carry the source's
//! presentation times and their encoders are forced to a keyframe at each source
//! keyframe, so each rung segment starts on an IDR at the same presentation time as the
//! source's. A rung is its own rendition in every respect (init, parts, segments,
//! playlist, variant in the multivariant playlist), with three differences:
//! - its `Discontinuity` and `End` events are ignored: the source's events, which the
//!   ladder mirrors, already apply to every rendition;
//! - a gap in its frames (a ladder restarting after an error) is local to it: the
//!   rung's open segment ends where its frames stopped, and it starts again at the
//!   leader's next boundary, on the program's timeline (a hole in that rung, no
//!   discontinuity for the others, whose media never stopped);
//! - rungs announced before the part target is fitted wait for it.
//!
//! With [`Program::set_source_listed`]`(false)` the passthrough `source` rendition is
//! left out of the multivariant playlist once a rung exists (it still leads the grid
//! and stays addressable).
//!
//! # Part target [S §4.4.4.9]
//!
//! PART-TARGET is fitted once ([`crate::timing::fit`]) from the configured nominal target,
//! the video frame rate (the bitstream's, or measured from the first decode timestamps:
//! frames are held back until [`ESTIMATE_FRAMES`] frames or [`ESTIMATE_SPAN`] of video
//! have arrived) and the audio frame duration, and never changes for the stream. A track
//! that appears or changes later is planned against the fixed target.
//!
//! # Media sequence, date-time, discontinuities
//!
//! Media sequence numbers start at 1 [S §4.4.3.2]. A segment's EXT-X-PROGRAM-DATE-TIME
//! [S §4.4.4.6] is its first sample's presentation time on the program's clock: the
//! ingest wall-clock of the first frame of the timeline plus the media time since, the
//! same map for every rendition (see `segmenter::ProgramClock`). Dating each segment by
//! its own first frame's arrival instead made date-times step unlike EXTINF whenever a
//! publisher's frames came late or in bursts, and differ between the audio and video
//! playlists for the same instant; hls.js aligns alternate-audio playlists by date-time,
//! so that put holes into its buffer. The clock is anchored again at each discontinuity,
//! and when a segment's first frame arrives more than 0.5 s before or 10 s after its
//! date-time (publisher and server clocks drifting apart). Every discontinuity applies
//! to every rendition, so discontinuity sequence numbers match across them
//! [S §6.2.4]; EXT-X-DISCONTINUITY-SEQUENCE counts the tagged segments that have left the
//! window [S §4.4.3.3], and an [`Output::Discontinuity`] names the tagged segment at once.
//! There are two kinds:
//!
//! - `Discontinuity { TimestampJump }`: ingest saw the publisher's clock jump and has
//!   already made the timestamps continuous (it rebases the track to go on one frame
//!   interval after its last frame), and the decoder state is intact. Nothing is
//!   flushed or dropped: the open segment goes on, and the next segment the leader
//!   starts on its usual grid (the first boundary at or after the jump; the followers'
//!   segments of that MSN) carries EXT-X-DISCONTINUITY [S §4.4.4.3], so players that
//!   map program date-times to media times start afresh there.
//! - Every other break — the `Discontinuity` event for a takeover, a reconnect or a codec
//!   change, or a jump the packager sees itself: a track's dts not moving forward, or
//!   stepping forward by more than PART-TARGET (or two frames, whichever is longer: such
//!   a sample could not fit any part) or by more than 1 s — ends the open segment of
//!   every rendition (its parts are flushed, see [`crate::segmenter`] for the last
//!   sample's duration), and each rendition's next segment carries EXT-X-DISCONTINUITY.
//!   The leader then waits for a keyframe (a new publisher session or new codec
//!   parameters start with one; a jump the packager detects may follow lost frames, and
//!   a decoder needs an IDR after those) and the followers for its first boundary.
//!
//! Decode times stay continuous per track across both kinds (tfdt of each part = the
//! previous part's tfdt plus its sample durations): each new input timeline is mapped
//! onto the output timeline where the previous one ended, with one offset for the
//! program taken from the leader's first boundary and carried to the followers in
//! their timescales (see [`crate::segmenter`], "Output decode timeline").
//!
//! New codec parameters (a `Tracks` whose configuration differs) give the rendition a
//! new init segment version ([`Output::Init`] with the version), named by the following
//! segments' EXT-X-MAP [S §4.4.4.5]; if no `Discontinuity` event came first, the program
//! makes one.
//!
//! A follower that runs more than [`LEAD_LIMIT`] ahead of a stalled leader is treated
//! as a timestamp jump, so nothing waits without bound. Known limit: a follower with no
//! frames for a whole segment (audio that stops while video goes on) cannot emit an
//! empty segment; its open segment continues, and when its frames come back each
//! boundary it missed starts a segment at its next frame, so its MSNs catch up with the
//! leader's (the last 16 boundaries are kept; beyond that its MSNs fall behind).
//!
//! Frames must have `dts >= 0` (`tfdt` is unsigned); ingest rebases timestamps to start
//! at zero, and a frame before zero is dropped.
//!
//! # Retention [S §6.2.2]
//!
//! Each rendition keeps `window_segments` complete segments with their parts' bytes;
//! older segments, their parts and unreferenced init segments are dropped (the origin
//! keeps removed media available for its own grace period). The renderer decides which
//! parts to list (the last ~3 target durations); every segment in the window keeps its
//! part list so part lookups work for the whole window.
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use media::{DiscontinuityReason, Frame, MediaKind, StreamEvent, TrackId, TrackInfo};

use crate::playlist::{AudioRendition, MediaPlaylist, Multivariant, RenditionReport, Variant};
use crate::segmenter::{ProgramClock, Rendition, SegmentRules};
use crate::timing::{self, PartFit, Seconds};

/// Video frames held back at most to measure an unsignalled frame rate.
pub const ESTIMATE_FRAMES: usize = 120;
/// Video time held back at most to measure an unsignalled frame rate: the measurement's
/// error is the end timestamps' (ms rounding and capture jitter, a few ms) spread over
/// this span, about 1 ms per 200 ms part over 1 s (see [`crate::timing`]).
pub const ESTIMATE_SPAN: Duration = Duration::from_secs(1);
/// How far a follower may run ahead of the leader before the leader counts as stalled.
pub const LEAD_LIMIT: Duration = Duration::from_secs(4);
/// Frames held back at most (all tracks) while measuring the frame rate.
const STARTUP_FRAMES: usize = 600;
/// Name of the rendition made from the source video track.
pub const SOURCE: &str = "source";
/// Name (and group id) of the audio rendition.
pub const AUDIO: &str = "audio";

/// `[packager]` settings.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PackagerConfig {
    /// Segment target in milliseconds; EXT-X-TARGETDURATION is this rounded up to whole
    /// seconds. Segments start on keyframes once they reach it.
    pub segment_target_ms: u64,
    /// Nominal part target in milliseconds; fitted to the frame grids (PART-TARGET ends up
    /// within a few milliseconds of it).
    pub part_target_ms: u64,
    /// Complete segments kept in each media playlist (Apple asks for at least 6).
    pub window_segments: usize,
}

impl Default for PackagerConfig {
    fn default() -> Self {
        PackagerConfig {
            segment_target_ms: 2000,
            part_target_ms: 200,
            window_segments: 12,
        }
    }
}

impl PackagerConfig {
    pub fn segment_target(&self) -> Duration {
        Duration::from_millis(self.segment_target_ms)
    }

    pub fn part_target(&self) -> Duration {
        Duration::from_millis(self.part_target_ms)
    }

    /// Checks every key; the error names the first bad one (`packager.part_target_ms: ...`).
    pub fn validate(&self) -> crate::Result<()> {
        if !(1000..=30_000).contains(&self.segment_target_ms) {
            return Err(crate::Error::Config {
                key: "segment_target_ms",
                problem: format!(
                    "must be between 1000 and 30000, got {}",
                    self.segment_target_ms
                ),
            });
        }
        if !(50..=2000).contains(&self.part_target_ms) {
            return Err(crate::Error::Config {
                key: "part_target_ms",
                problem: format!("must be between 50 and 2000, got {}", self.part_target_ms),
            });
        }
        if self.part_target_ms * 2 > self.segment_target_ms {
            return Err(crate::Error::Config {
                key: "part_target_ms",
                problem: format!(
                    "must be at most half of segment_target_ms ({}), got {}",
                    self.segment_target_ms, self.part_target_ms
                ),
            });
        }
        if !(6..=1000).contains(&self.window_segments) {
            return Err(crate::Error::Config {
                key: "window_segments",
                problem: format!("must be between 6 and 1000, got {}", self.window_segments),
            });
        }
        Ok(())
    }
}

/// What the program produced from one event.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// An init segment: `version` 0 is `init.mp4`, later versions follow codec changes.
    Init {
        rendition: String,
        version: u32,
        data: Bytes,
    },
    /// A complete part (one CMAF chunk).
    Part {
        rendition: String,
        msn: u64,
        index: u32,
        duration: Duration,
        independent: bool,
        data: Bytes,
        /// Ingest wall-clock time (`Frame::received`) of the part's newest sample: the
        /// start of the part-publish delay.
        last_received: SystemTime,
    },
    /// A complete segment: its bytes are the concatenation of its parts.
    Segment {
        rendition: String,
        msn: u64,
        duration: Duration,
        program_date_time: SystemTime,
    },
    /// The segment `msn` of `rendition` (the next one to start: after a timestamp jump
    /// that ingest made continuous, the one after the open segment) follows a
    /// discontinuity.
    Discontinuity { rendition: String, msn: u64 },
    /// The stream ended: every open segment was completed; playlists carry EXT-X-ENDLIST.
    Ended,
}

/// One stream being packaged.
pub struct Program {
    config: PackagerConfig,
    rules: SegmentRules,
    /// Fixed once the first tracks (and, if needed, the frame rate) are known.
    fit: Option<PartFit>,
    tracks: Vec<TrackInfo>,
    startup: Vec<Frame>,
    renditions: Vec<Rendition>,
    by_track: HashMap<TrackId, usize>,
    leader: usize,
    ended: bool,
    /// Rung renditions by name (their track ids are their own, not the source's).
    rungs: HashMap<String, usize>,
    /// Rung tracks announced before the part target was fitted.
    pending_rungs: Vec<(String, TrackInfo)>,
    /// Whether `source` is listed in the multivariant playlist beside rungs.
    source_listed: bool,
    /// The rung being added (its track id is not the source's to map).
    adding_rung: Option<String>,
    /// EXT-X-PROGRAM-DATE-TIME for every rendition.
    clock: ProgramClock,
}

impl Program {
    /// A program with `config`, which should have passed [`PackagerConfig::validate`]
    /// (out-of-range values are clamped to something that works).
    pub fn new(config: PackagerConfig) -> Program {
        let mut config = config;
        config.segment_target_ms = config.segment_target_ms.clamp(100, 3_600_000);
        config.part_target_ms = config.part_target_ms.clamp(10, config.segment_target_ms);
        config.window_segments = config.window_segments.max(1);
        Program {
            rules: SegmentRules::new(config.segment_target()),
            config,
            fit: None,
            tracks: Vec::new(),
            startup: Vec::new(),
            renditions: Vec::new(),
            by_track: HashMap::new(),
            leader: 0,
            ended: false,
            rungs: HashMap::new(),
            pending_rungs: Vec::new(),
            source_listed: true,
            adding_rung: None,
            clock: ProgramClock::default(),
        }
    }

    fn pending_rung(&self, name: &str) -> bool {
        self.adding_rung.as_deref() == Some(name)
    }

    /// Whether the passthrough `source` rendition is listed in the multivariant playlist
    /// when the stream has rungs (default true).
    pub fn set_source_listed(&mut self, listed: bool) {
        self.source_listed = listed;
    }

    /// Feeds one event of the transcoded rung `name` (see "Renditions" in the module
    /// docs): its first video track becomes rendition `name`, following the source's
    /// segment grid. `source`, `audio` and names that are not a single path segment are
    /// refused (logged, nothing happens).
    pub fn push_rendition(&mut self, name: &str, event: &StreamEvent) -> Vec<Output> {
        let mut out = Vec::new();
        if self.ended || !valid_rung_name(name) {
            if !self.ended {
                tracing::warn!(rendition = name, "rung name refused");
            }
            return out;
        }
        match event {
            StreamEvent::Tracks(tracks) => {
                let Some(track) = tracks.iter().find(|t| t.codec.kind() == MediaKind::Video) else {
                    return out;
                };
                if self.fit.is_none() {
                    self.pending_rungs.retain(|(n, _)| n != name);
                    self.pending_rungs.push((name.to_owned(), track.clone()));
                } else {
                    self.rung_track(name, track.clone(), &mut out);
                }
            }
            StreamEvent::Frame(frame) => {
                if let Some(&i) = self.rungs.get(name) {
                    let mut frame = frame.clone();
                    frame.track = self.renditions[i].track.id;
                    self.frame_at(i, frame, &mut out);
                }
            }
            StreamEvent::Discontinuity { .. } | StreamEvent::End => {}
        }
        out
    }

    /// Adds rung `name` with `track`, or gives it new codec parameters.
    fn rung_track(&mut self, name: &str, track: TrackInfo, out: &mut Vec<Output>) {
        let Some(fit) = self.fit.clone() else {
            return;
        };
        let frame = timing::video_frame(&track.codec)
            .or_else(|| self.renditions.get(self.leader).map(|l| l.plan().frame));
        let Some(frame) = frame else {
            return;
        };
        let plan = timing::plan_for(fit.part_target, frame);
        match self.rungs.get(name) {
            None => {
                let before = self.renditions.len();
                self.adding_rung = Some(name.to_owned());
                self.add_rendition(name, track, plan, fit.part_target, out);
                self.adding_rung = None;
                if self.renditions.len() > before {
                    self.rungs.insert(name.to_owned(), before);
                }
            }
            Some(&i) => {
                let r = &mut self.renditions[i];
                if r.track.codec == track.codec && r.track.timescale == track.timescale {
                    r.retrack(track);
                    return;
                }
                // The source's own codec change came first (with its discontinuity);
                // a rung whose parameters change on their own (a rebuilt encoder) ends
                // its open segment and goes on at the next boundary.
                let horizon = self.renditions[self.leader].horizon();
                let r = &mut self.renditions[i];
                if r.has_media() {
                    r.flush(horizon, None, out);
                }
                match r.change_codec(track, plan, fit.part_target) {
                    Ok(init) => out.push(init),
                    Err(error) => {
                        tracing::warn!(rendition = name, %error, "new codec parameters not packaged");
                    }
                }
            }
        }
    }

    /// Feeds one stream event, in order. The video track becomes rendition `source`, the
    /// audio track `audio`. Events after `End` are ignored.
    pub fn push(&mut self, event: &StreamEvent) -> Vec<Output> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        match event {
            StreamEvent::Tracks(tracks) => {
                if self.fit.is_some() {
                    self.change_tracks(tracks, &mut out);
                } else {
                    self.tracks = tracks.clone();
                    self.try_start(false, &mut out);
                }
            }
            StreamEvent::Frame(frame) => {
                if self.fit.is_some() {
                    self.frame(frame.clone(), &mut out);
                } else if !self.tracks.is_empty() {
                    self.startup.push(frame.clone());
                    self.try_start(false, &mut out);
                }
            }
            StreamEvent::Discontinuity {
                reason: DiscontinuityReason::TimestampJump,
            } => {
                self.try_start(true, &mut out);
                self.tag_next_boundary(&mut out);
            }
            StreamEvent::Discontinuity { .. } => {
                self.try_start(true, &mut out);
                self.discontinuity(&mut out);
            }
            StreamEvent::End => {
                self.try_start(true, &mut out);
                self.end(&mut out);
            }
        }
        out
    }

    /// Fixes the part target and creates the renditions once the frame rate is known
    /// (or `force`), then replays the held-back frames.
    fn try_start(&mut self, force: bool, out: &mut Vec<Output>) {
        if self.fit.is_some() || self.tracks.is_empty() {
            return;
        }
        let video = self
            .tracks
            .iter()
            .find(|t| t.codec.kind() == MediaKind::Video);
        let audio = self
            .tracks
            .iter()
            .find(|t| t.codec.kind() == MediaKind::Audio);
        let video_frame = match video {
            None => None,
            Some(v) => match timing::video_frame(&v.codec) {
                Some(f) => Some(f),
                None => {
                    let dts: Vec<i64> = self
                        .startup
                        .iter()
                        .filter(|f| f.track == v.id)
                        .map(|f| f.dts)
                        .collect();
                    let span = match (dts.first(), dts.last()) {
                        (Some(a), Some(b)) => b.saturating_sub(*a).max(0).unsigned_abs(),
                        _ => 0,
                    };
                    let enough = dts.len() >= ESTIMATE_FRAMES
                        || span >= ESTIMATE_SPAN.as_millis() as u64 * u64::from(v.timescale) / 1000
                        || self.startup.len() >= STARTUP_FRAMES;
                    if !(enough || force) {
                        return;
                    }
                    // Nothing measurable: assume 30 fps (parts are still cut by time).
                    Some(timing::estimate_frame(&dts, v.timescale).unwrap_or(Seconds::new(1, 30)))
                }
            },
        };
        let audio_frame = audio.and_then(|a| timing::audio_frame(&a.codec));
        let fit = timing::fit(self.config.part_target(), video_frame, audio_frame);
        tracing::debug!(part_target = ?fit.part_target, ?fit.video, ?fit.audio, "part target fitted");
        let video = video.cloned();
        let audio = audio.cloned();
        if let (Some(track), Some(plan)) = (video, fit.video) {
            self.add_rendition(SOURCE, track, plan, fit.part_target, out);
        }
        if let Some(track) = audio {
            let plan =
                fit.audio
                    .or(timing::audio_frame(&track.codec)
                        .map(|f| timing::plan_for(fit.part_target, f)));
            if let Some(plan) = plan {
                self.add_rendition(AUDIO, track, plan, fit.part_target, out);
            }
        }
        self.fit = Some(fit);
        for (name, track) in std::mem::take(&mut self.pending_rungs) {
            self.rung_track(&name, track, out);
        }
        for frame in std::mem::take(&mut self.startup) {
            self.frame(frame, out);
        }
    }

    fn add_rendition(
        &mut self,
        name: &str,
        track: TrackInfo,
        plan: timing::TrackPlan,
        part_target: Duration,
        out: &mut Vec<Output>,
    ) {
        let leader = self.renditions.is_empty();
        let first_msn = self
            .renditions
            .get(self.leader)
            .map_or(1, Rendition::next_msn);
        let id = track.id;
        match Rendition::new(
            name,
            track,
            leader,
            plan,
            part_target,
            self.rules,
            self.config.window_segments,
            first_msn,
        ) {
            Ok((mut rendition, init)) => {
                rendition.set_clock(self.clock.clone());
                rendition.set_gaps(self.pending_rung(name));
                if !leader
                    && let Some(b) = self
                        .renditions
                        .get(self.leader)
                        .and_then(Rendition::open_boundary)
                {
                    // Joining mid-segment: the open segment's start is its first boundary.
                    rendition.add_boundary(b);
                }
                if !self.rungs.contains_key(name) && !self.pending_rung(name) {
                    self.by_track.insert(id, self.renditions.len());
                }
                self.renditions.push(rendition);
                out.push(init);
            }
            Err(error) => {
                tracing::warn!(rendition = name, %error, "track not packaged");
            }
        }
    }

    fn frame(&mut self, frame: Frame, out: &mut Vec<Output>) {
        let Some(&i) = self.by_track.get(&frame.track) else {
            return;
        };
        self.frame_at(i, frame, out);
    }

    /// Places `frame` of rendition `i`.
    fn frame_at(&mut self, i: usize, frame: Frame, out: &mut Vec<Output>) {
        if frame.dts < 0 {
            tracing::debug!(
                track = frame.track,
                dts = frame.dts,
                "frame before time zero dropped"
            );
            return;
        }
        if self.renditions[i].is_jump(&frame) {
            tracing::debug!(rendition = %self.renditions[i].name, dts = frame.dts, "timestamp jump");
            if self.rungs.values().any(|&r| r == i) {
                // A rung's gap is its own: the others' media never stopped.
                let horizon = self.renditions[self.leader].horizon();
                self.renditions[i].restart_follower(horizon, out);
            } else {
                self.discontinuity(out);
            }
        }
        if i == self.leader {
            for b in self.renditions[i]
                .push_leader(frame, out)
                .into_iter()
                .flatten()
            {
                for (j, r) in self.renditions.iter_mut().enumerate() {
                    if j != i {
                        r.add_boundary(b);
                    }
                }
            }
            let msn = self.renditions[i].next_msn();
            let horizon = self.renditions[i].horizon();
            for (j, r) in self.renditions.iter_mut().enumerate() {
                if j != i {
                    r.follow_msn(msn);
                    r.commit(horizon, false, LEAD_LIMIT, out);
                }
            }
        } else {
            let horizon = self.renditions[self.leader].horizon();
            let r = &mut self.renditions[i];
            r.push_follower(frame);
            r.commit(horizon, false, LEAD_LIMIT, out);
        }
        let horizon = self.renditions[self.leader].horizon();
        if self
            .renditions
            .iter()
            .enumerate()
            .any(|(j, r)| j != self.leader && r.stalled(horizon, LEAD_LIMIT))
        {
            tracing::debug!("leader stalled behind a follower");
            self.discontinuity(out);
        }
    }

    /// Ends every rendition's open segment; the next ones carry EXT-X-DISCONTINUITY.
    fn discontinuity(&mut self, out: &mut Vec<Output>) {
        self.flush(out);
        for r in &mut self.renditions {
            let msn = r.next_msn();
            r.mark_discontinuity(msn, out);
        }
    }

    /// A timestamp jump that ingest has already made continuous: nothing is flushed or
    /// dropped; the next segment the leader starts (and the followers' segments of that
    /// MSN) carry EXT-X-DISCONTINUITY.
    fn tag_next_boundary(&mut self, out: &mut Vec<Output>) {
        let Some(msn) = self
            .renditions
            .get(self.leader)
            .map(Rendition::next_boundary_msn)
        else {
            return;
        };
        for r in &mut self.renditions {
            r.mark_discontinuity(msn, out);
        }
    }

    /// Flushes every rendition (the leader first, so the followers can end where it
    /// ended), then tells each where the output timeline resumes: the latest end of any
    /// rendition.
    fn flush(&mut self, out: &mut Vec<Output>) {
        let horizon = self
            .renditions
            .get(self.leader)
            .and_then(Rendition::horizon);
        let mut leader_end = None;
        if let Some(leader) = self.renditions.get_mut(self.leader) {
            leader.flush(horizon, None, out);
            leader_end = leader.timeline_end();
        }
        for (j, r) in self.renditions.iter_mut().enumerate() {
            if j != self.leader {
                r.flush(horizon, leader_end, out);
            }
        }
        let resume = self
            .renditions
            .iter()
            .filter_map(Rendition::timeline_end)
            .max_by(|a, b| {
                (u128::from(a.0) * u128::from(b.1)).cmp(&(u128::from(b.0) * u128::from(a.1)))
            });
        for r in &mut self.renditions {
            r.resume_at(resume);
        }
    }

    fn end(&mut self, out: &mut Vec<Output>) {
        self.flush(out);
        for r in &mut self.renditions {
            r.end();
        }
        self.ended = true;
        out.push(Output::Ended);
    }

    /// A new track list once started: codec changes get a new init version (after a
    /// flush, if the `Discontinuity` event did not already come), a late audio track gets
    /// its rendition.
    fn change_tracks(&mut self, tracks: &[TrackInfo], out: &mut Vec<Output>) {
        let Some(fit) = self.fit.clone() else {
            return;
        };
        let mut flushed = false;
        for kind in [MediaKind::Video, MediaKind::Audio] {
            let Some(track) = tracks.iter().find(|t| t.codec.kind() == kind) else {
                continue;
            };
            let name = if kind == MediaKind::Video {
                SOURCE
            } else {
                AUDIO
            };
            let Some(i) = self.renditions.iter().position(|r| r.name == name) else {
                if kind == MediaKind::Audio
                    && let Some(frame) = timing::audio_frame(&track.codec)
                {
                    let plan = timing::plan_for(fit.part_target, frame);
                    self.add_rendition(AUDIO, track.clone(), plan, fit.part_target, out);
                } else {
                    tracing::warn!(
                        codec = track.codec.name(),
                        "a video track appearing after the stream started is not packaged"
                    );
                }
                continue;
            };
            let old_id = self.renditions[i].track.id;
            if self.renditions[i].track.codec == track.codec
                && self.renditions[i].track.timescale == track.timescale
            {
                self.renditions[i].retrack(track.clone());
            } else {
                if !flushed && self.renditions.iter().any(Rendition::has_media) {
                    self.discontinuity(out);
                }
                flushed = true;
                let frame =
                    match kind {
                        MediaKind::Video => timing::video_frame(&track.codec)
                            .unwrap_or(self.renditions[i].plan().frame),
                        MediaKind::Audio => timing::audio_frame(&track.codec)
                            .unwrap_or(self.renditions[i].plan().frame),
                    };
                let plan = timing::plan_for(fit.part_target, frame);
                match self.renditions[i].change_codec(track.clone(), plan, fit.part_target) {
                    Ok(init) => out.push(init),
                    Err(error) => {
                        tracing::warn!(rendition = name, %error, "new codec parameters not packaged");
                        continue;
                    }
                }
            }
            self.by_track.remove(&old_id);
            self.by_track.insert(track.id, i);
        }
        self.tracks = tracks.to_vec();
    }

    /// Rendition names: video renditions first, then `audio`.
    pub fn renditions(&self) -> Vec<String> {
        let mut names: Vec<&Rendition> = self.renditions.iter().collect();
        names.sort_by_key(|r| !r.is_video());
        names.into_iter().map(|r| r.name.clone()).collect()
    }

    /// The fitted PART-TARGET, once known.
    pub fn part_target(&self) -> Option<Duration> {
        self.fit.as_ref().map(|f| f.part_target)
    }

    /// EXT-X-TARGETDURATION, fixed by the configuration.
    pub fn target_duration(&self) -> u32 {
        self.rules.target_duration
    }

    fn rendition(&self, name: &str) -> Option<&Rendition> {
        self.renditions.iter().find(|r| r.name == name)
    }

    /// A snapshot of `rendition`'s media playlist.
    pub fn playlist(&self, rendition: &str) -> Option<MediaPlaylist> {
        let pt = self.part_target()?;
        let skip = crate::playlist::skip_boundary(
            self.rules.target_duration,
            self.config.window_segments,
            self.config.segment_target(),
        );
        Some(self.rendition(rendition)?.playlist(pt, skip))
    }

    /// EXT-X-RENDITION-REPORTs for every rendition but `except` that has a part.
    pub fn rendition_reports(&self, except: &str) -> Vec<RenditionReport> {
        self.renditions
            .iter()
            .filter(|r| r.name != except)
            .filter_map(|r| {
                let pl = r.playlist(self.fit.as_ref()?.part_target, None);
                let (last_msn, last_part) = crate::playlist::last_part(&pl)?;
                Some(RenditionReport {
                    uri: format!("../{}/index.m3u8", r.name),
                    last_msn,
                    last_part,
                })
            })
            .collect()
    }

    pub fn init(&self, rendition: &str, version: u32) -> Option<Bytes> {
        self.rendition(rendition)?.init(version)
    }

    pub fn part(&self, rendition: &str, msn: u64, index: u32) -> Option<Bytes> {
        self.rendition(rendition)?.part(msn, index)
    }

    /// A complete segment in the window: the concatenation of its parts.
    pub fn segment(&self, rendition: &str, msn: u64) -> Option<Bytes> {
        self.rendition(rendition)?.segment(msn)
    }

    /// The multivariant playlist model: one variant per video rendition (or one for the
    /// audio rendition of an audio-only stream), the audio rendition as a group.
    pub fn multivariant(&self) -> Option<Multivariant> {
        if self.renditions.is_empty() {
            return None;
        }
        let audio = self.renditions.iter().find(|r| !r.is_video());
        let audio_group = audio.and_then(|a| {
            let (_, channels) = a.track.codec.audio()?;
            Some(AudioRendition {
                name: a.name.clone(),
                group_id: AUDIO.to_string(),
                language: None,
                channels,
                codec: a.track.codec.rfc6381(),
            })
        });
        let (audio_peak, audio_avg) = audio.map_or((0, 0), bandwidth);
        let hide_source = !self.source_listed && !self.rungs.is_empty();
        let mut variants: Vec<Variant> = self
            .renditions
            .iter()
            .filter(|r| r.is_video() && !(hide_source && r.name == SOURCE))
            .map(|v| {
                let (peak, avg) = bandwidth(v);
                let mut codecs = vec![v.track.codec.rfc6381()];
                if let Some(a) = &audio_group {
                    codecs.push(a.codec.clone());
                }
                let frame_rate = v.track.codec.fps().map(|r| r.as_f64()).or_else(|| {
                    let f = v.plan().frame;
                    (f.num > 0).then(|| f.den as f64 / f.num as f64)
                });
                Variant {
                    name: v.name.clone(),
                    bandwidth: peak + audio_peak,
                    average_bandwidth: avg + audio_avg,
                    codecs,
                    resolution: v.track.codec.dimensions(),
                    frame_rate,
                }
            })
            .collect();
        // The source first, then the rungs from the tallest down.
        variants.sort_by_key(|v| {
            (
                v.name != SOURCE,
                std::cmp::Reverse(v.resolution.map_or(0, |(_, h)| h)),
            )
        });
        if variants.is_empty()
            && let Some(a) = audio
        {
            // Audio-only: the audio rendition is the variant itself.
            variants.push(Variant {
                name: a.name.clone(),
                bandwidth: audio_peak,
                average_bandwidth: audio_avg,
                codecs: vec![a.track.codec.rfc6381()],
                resolution: None,
                frame_rate: None,
            });
            return Some(Multivariant {
                variants,
                audio: None,
                independent_segments: a.independent_segments(),
            });
        }
        Some(Multivariant {
            variants,
            audio: audio_group,
            independent_segments: self.renditions.iter().all(Rendition::independent_segments),
        })
    }
}

/// A rung name is one path segment of `[A-Za-z0-9._-]` (it names a directory in the
/// playback URLs), not `source` or `audio`, not `.`/`..`.
fn valid_rung_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != SOURCE
        && name != AUDIO
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Fallback bitrates before anything was measured: never advertise 0.
const FALLBACK_VIDEO_BPS: u64 = 2_000_000;
const FALLBACK_AUDIO_BPS: u64 = 128_000;

/// (peak, average) bits/s of a rendition: measured over complete segments, else
/// estimated from the parts so far, else a fallback.
fn bandwidth(r: &Rendition) -> (u64, u64) {
    let s = r.stats();
    let ts = u128::from(r.track.timescale);
    let rate = |bytes: u64, ticks: u64| -> Option<u64> {
        (ticks > 0 && bytes > 0)
            .then(|| u64::try_from(u128::from(bytes) * 8 * ts / u128::from(ticks)).ok())
            .flatten()
    };
    let average = rate(s.bytes, s.ticks);
    let open = rate(s.open_bytes, s.open_ticks);
    match (s.peak_bps, average, open) {
        (peak, Some(avg), _) if peak > 0 => (peak, avg),
        (_, _, Some(est)) => (est, est),
        _ => {
            let fallback = if r.is_video() {
                FALLBACK_VIDEO_BPS
            } else {
                FALLBACK_AUDIO_BPS
            };
            (fallback, fallback)
        }
    }
}

#[cfg(test)]
#[path = "program_tests.rs"]
mod tests;

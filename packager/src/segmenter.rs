//! Per-rendition cutting: frames in, CMAF parts and segments out, for one rendition.
//!
//! A [`Rendition`] holds one track. It is either the stream's *leader* (the source video
//! track; the audio track when there is no video), which decides where segments start,
//! or a *follower* (the audio track; later the transcoded video rungs), which cuts at the
//! leader's [`Boundary`] instants so that segment N covers the same time in every
//! rendition [S §6.2.4, A 8.22].
//!
//! # Sample durations
//!
//! A sample's duration is the next frame's `dts` minus its own, so a sample is complete
//! (and may join a part) only when the following frame of its track has arrived. At a
//! flush (end of stream, discontinuity) no next frame gives the last sample its
//! duration: it takes the nominal frame duration, not the previous sample's (a jittered
//! long step there would push the last part past PART-TARGET, splitting it into a short
//! regular part and a one-sample part), shortened to what still fits the open part when
//! that is at least half a frame. A follower's last sample instead ends where the
//! leader's last sample ended when that makes it last between half a frame and two
//! frames: the tracks' timelines end together, so the next timeline starts in sync.
//!
//! # Output decode timeline
//!
//! `tfdt` is the part's first sample's output decode time, `dts + offset`, and each
//! rendition keeps its output timeline continuous across parts, segments and
//! discontinuities: each part starts where the previous one ended [S §3, A 7.3]. The
//! offset is zero on the first input timeline (output decode times are the input's) and
//! changes only where a new input timeline starts, after a flush (a takeover, a
//! reconnect, a codec change, a jump the packager detected; ingest already makes the
//! timestamps continuous across the timestamp jumps it reports). There:
//! - the program's output timeline resumes at the latest end of any rendition (compared
//!   exactly across timescales); the leader maps its first new sample there, so the
//!   program's offset comes from the leader's first boundary, which carries it
//!   ([`Boundary::offset`]);
//! - a follower maps its first new sample with the leader's offset converted to its
//!   timescale (integer arithmetic, rounded to the nearest tick), which keeps A/V sync;
//! - every rendition then snaps that start to its own previous end, so its `tfdt` has no
//!   gap and no overlap. The snap moves a track by at most a part: the ends of two
//!   tracks differ by a few frames at most (the followers' last samples are aligned to
//!   the leader's end; AAC priming and padding make audio outlast video by two or three
//!   frames), and a new session may start its tracks a little apart. A larger
//!   difference is a hole in one track (the leader stalled while audio went on, or a
//!   track stopped early): the start stays where the program's offset puts it, so the
//!   tracks stay in sync and that track's decode times skip the hole.
//!
//! # Parts [S §4.4.4.9]
//!
//! A part closes (and is emitted at once) when its duration reaches the fitted part
//! duration less half a frame ([`crate::timing::TrackPlan::close_ticks`]); a sample
//! that would take it past PART-TARGET starts a new part instead, so no part is ever
//! longer than PART-TARGET. Parts restart at every segment start; the last part of a
//! segment may be short. INDEPENDENT=YES exactly when a part's first sample is a sync
//! sample (every audio part; a video part that starts on an IDR).
//!
//! # Segments (leader)
//!
//! TD = ceil(segment target) and never changes [S §6.2.1]; EXTINF rounded to the nearest
//! integer must stay `<= TD` [S §4.4.3.1], so a segment may last up to
//! `TD + 0.45 s` (`max`, a margin under the rounding limit). Before each frame `f` the
//! leader decides whether a new segment starts at `f`, with `d` the segment's duration
//! up to `f`:
//! - keyframe `f`: cut when `d` has reached the target (less half a frame, for
//!   millisecond-jittered timestamps); or when waiting for the next keyframe would take
//!   the segment past `max` — a 1.9 s GOP with a 2 s target makes 1.9 s segments, not
//!   3.8 s ones. The next interval is predicted as the longest of the last four
//!   (a scene-cut keyframe makes a short interval, but the encoder's regular interval
//!   follows it), so a scene cut late in a segment ends it there rather than leave the
//!   segment to be cut at a non-keyframe later; or when the current segment did not
//!   start on a keyframe (see below): as soon as possible.
//! - non-keyframe `f` (a long GOP): cut anyway when including `f` would take the segment
//!   past `max`, or, once the keyframe interval is known to exceed `max`, as soon as the
//!   segment reaches the target. Such a segment starts with a non-sync sample: its first
//!   part is INDEPENDENT=NO and the playlist drops EXT-X-INDEPENDENT-SEGMENTS from then
//!   on. The target duration stays valid whatever the source's keyframe interval; a
//!   player joining at that segment decodes from the next IDR, which starts the next
//!   segment.
//!
//! # Segments (follower)
//!
//! A follower queues its frames until it knows whether a leader boundary falls before
//! them. A boundary at leader time `B` (the pts of the leader frame that starts the
//! segment) starts the follower's segment at its frame nearest to `B`: the first frame
//! whose start is at or after `B` less half its duration. A frame starts at most one
//! segment: when a leader segment is shorter than a follower frame (a one-frame video
//! segment before a keyframe, after a cut inside a long GOP), the next boundary starts at
//! the follower's next frame, so every leader MSN gets its follower segment (a frame late
//! at worst) and the MSNs stay the same across renditions. Times in different timescales
//! are compared exactly in integer arithmetic (`a * ts_b` against `b * ts_a`). A frame is
//! known to precede every future boundary once the leader has passed it (future
//! boundaries start at a leader frame not yet seen, whose pts is after the last leader
//! dts seen), so the follower never waits longer than the interleaving between tracks.
//!
//! The first segment of a timeline (the stream start, or after a discontinuity) is
//! the exception: its boundary is the leader keyframe's *decode* time. Encoders start
//! audio with the first video dts, and B-frame reordering puts the first video pts a few
//! frames later; cutting at the pts would drop the audio in between. The followers'
//! first segment is then longer by that offset (at most PART-TARGET), and the leader
//! takes the offset off its own limit for that segment, so the follower stays within
//! `max` too. Follower frames before a timeline's start are dropped (they are not on
//! the grid); at a flush, follower frames past a stalled leader that would take the
//! segment past `max` are dropped too.
//!
//! A cut inside a GOP (long GOPs, above) gives the followers a boundary at the cut
//! frame's dts plus the source's reorder delay (the latest keyframe's composition
//! offset), not at its own pts: in decode order `I P B B P ...` a P frame's pts lies
//! several frames after the B frames that follow it, and cutting the followers there
//! would make their segments that much longer than the leader's (past `max`).
//!
//! A frame's duration is known only when the next leader frame arrives, so the decision
//! at a frame guesses that it lasts as long as the frame before it. When the next frame
//! shows that it lasts longer and would take the open segment past `max`, the leader cuts
//! before it after all ([`Rendition::push_leader`] then returns two boundaries). The
//! followers have placed nothing at or after it: they place only frames before the
//! leader's latest dts, which was that frame's.
//!
//! # Irregular timing
//!
//! `<= PART-TARGET` and the segment limit hold for any input. `>= 85 %` holds on the
//! frame grid the target was fitted to, with timestamp jitter up to the fitted margin
//! (see [`crate::timing`]); after dropped frames a long sample may not fit
//! the open part, which then closes short (no online cutter can do better without
//! delaying parts). A sample longer than PART-TARGET cannot fit any part: the program
//! treats it as a timestamp jump (see [`crate::program`]).
//!
//! # Retention [S §6.2.2]
//!
//! The last `window` complete segments are kept, with their parts' bytes; a segment's
//! bytes are the concatenation of its parts' bytes. Older segments (and their parts and
//! unreferenced init segments) are dropped, so memory is bounded by the window.
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use media::{Frame, MediaKind, TrackInfo};

use crate::fmp4::{self, Sample};
use crate::playlist::{MediaPlaylist, Part, PendingSegment, Segment};
use crate::program::Output;
use crate::timing::TrackPlan;

mod clock;
mod follower;
mod leader;

pub(crate) use clock::ProgramClock;

/// A leader's decision that a segment starts at a frame: followers cut there too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Boundary {
    /// Presentation time of the leader frame that starts the segment.
    pub pts: i64,
    pub timescale: u32,
    pub msn: u64,
    /// The leader's output decode time less its input decode time on this timeline
    /// (its ticks): where followers starting a timeline map theirs.
    pub offset: i64,
}

/// How far the leader has got: the dts of its latest frame, in its timescale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Horizon {
    pub dts: i64,
    pub timescale: u32,
}

/// Segment-length rules in a rendition's ticks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SegmentRules {
    /// TD as a whole number of seconds.
    pub target_duration: u32,
    pub target: Duration,
    /// Longest segment allowed: TD + 0.45 s.
    pub max: Duration,
}

impl SegmentRules {
    pub fn new(target: Duration) -> SegmentRules {
        let td = u32::try_from(target.as_millis().div_ceil(1000))
            .unwrap_or(u32::MAX)
            .max(1);
        SegmentRules {
            target_duration: td,
            target,
            max: Duration::from_secs(u64::from(td)) + Duration::from_millis(450),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No open segment: the leader waits for a keyframe, a follower for a boundary.
    Waiting,
    Running,
}

struct OpenSegment {
    msn: u64,
    start_dts: i64,
    program_date_time: SystemTime,
    discontinuity: bool,
    init_version: u32,
    /// Its first sample is a sync sample.
    independent: bool,
    /// Ticks taken off the segment limit (see [`Rendition::push_leader`]).
    shortened: u64,
    ticks: u64,
    parts: Vec<Part>,
    data: Vec<Bytes>,
}

#[derive(Default)]
struct OpenPart {
    samples: Vec<Sample>,
    /// Output decode time of the first sample: its `tfdt`.
    start: i64,
    ticks: u64,
    /// Ingest wall-clock time of the newest sample (for the publish-delay metric).
    last_received: Option<SystemTime>,
}

struct DoneSegment {
    segment: Segment,
    data: Vec<Bytes>,
}

/// Byte and time totals for bandwidth figures.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stats {
    /// Bytes and ticks of complete segments.
    pub bytes: u64,
    pub ticks: u64,
    /// Highest bitrate of one complete segment, bits/s.
    pub peak_bps: u64,
    /// Bytes and ticks of parts in the open segment.
    pub open_bytes: u64,
    pub open_ticks: u64,
}

/// One rendition: its track, cutting state, and window of segments.
pub(crate) struct Rendition {
    pub name: String,
    pub track: TrackInfo,
    leader: bool,
    /// The program's date-time clock (see [`ProgramClock`]).
    clock: ProgramClock,
    /// A transcoded rung: segments it has no media for become EXT-X-GAP segments (see
    /// [`Rendition::restart_follower`]).
    gaps: bool,
    plan: TrackPlan,
    part_close: u64,
    part_max: u64,
    nominal_frame: u64,
    rules: SegmentRules,
    // Input.
    queue: VecDeque<Frame>,
    last_duration: Option<u64>,
    latest_dts: Option<i64>,
    state: State,
    boundaries: VecDeque<Boundary>,
    /// Boundaries a restarting follower passed without media (see
    /// [`Rendition::restart_follower`]): they become EXT-X-GAP segments.
    skipped: Vec<Boundary>,
    ever_started: bool,
    last_keyframe: Option<i64>,
    /// The last few keyframe intervals (leader).
    gops: VecDeque<u64>,
    long_gop: bool,
    /// The latest keyframe's composition offset (pts - dts): the source's reorder delay.
    key_delay: i64,
    /// Where the open segment started, as a boundary (for a follower that joins late).
    open_boundary: Option<Boundary>,
    // Output.
    init_version: u32,
    inits: BTreeMap<u32, Bytes>,
    sequence: u32,
    open: Option<OpenSegment>,
    part: OpenPart,
    next_msn: u64,
    /// The next segment to start with an MSN at or past this one carries
    /// EXT-X-DISCONTINUITY.
    tag_from: Option<u64>,
    // Output decode timeline.
    /// Output decode time less input decode time, on the current input timeline.
    offset: i64,
    /// Output decode time where the last sample written ends.
    end: Option<u64>,
    /// The next segment starts a new input timeline (after a flush).
    rebase: bool,
    /// Where the program's output timeline resumes after a flush (the latest end of any
    /// rendition, in this rendition's ticks): the leader starts its next timeline there.
    resume: Option<u64>,
    /// During a flush: where the last sample should end (the leader's end, in this
    /// rendition's ticks).
    flush_end: Option<u64>,
    window: VecDeque<DoneSegment>,
    window_size: usize,
    discontinuity_sequence: u64,
    ended: bool,
    independent_segments: bool,
    stats: Stats,
}

/// Keyframe intervals remembered to predict the next one.
const GOP_HISTORY: usize = 4;

impl Rendition {
    /// A rendition for `track`, its init segment (version 0) built; `first_msn` is the
    /// MSN its first segment gets (a follower adopts the leader's instead).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        track: TrackInfo,
        leader: bool,
        plan: TrackPlan,
        part_target: Duration,
        rules: SegmentRules,
        window_size: usize,
        first_msn: u64,
    ) -> crate::Result<(Rendition, Output)> {
        let init = fmp4::init_segment(&track)?;
        let mut r = Rendition {
            name: name.to_string(),
            leader,
            clock: ProgramClock::default(),
            gaps: false,
            plan,
            part_close: 0,
            part_max: 0,
            nominal_frame: 1,
            rules,
            queue: VecDeque::new(),
            last_duration: None,
            latest_dts: None,
            state: State::Waiting,
            boundaries: VecDeque::new(),
            skipped: Vec::new(),
            ever_started: false,
            last_keyframe: None,
            gops: VecDeque::new(),
            long_gop: false,
            key_delay: 0,
            open_boundary: None,
            init_version: 0,
            inits: BTreeMap::from([(0, init.clone())]),
            sequence: 1,
            open: None,
            part: OpenPart::default(),
            next_msn: first_msn.max(1),
            tag_from: None,
            offset: 0,
            end: None,
            rebase: false,
            resume: None,
            flush_end: None,
            window: VecDeque::new(),
            window_size: window_size.max(1),
            discontinuity_sequence: 0,
            ended: false,
            independent_segments: true,
            stats: Stats::default(),
            track,
        };
        r.set_plan(plan, part_target);
        let out = Output::Init {
            rendition: r.name.clone(),
            version: 0,
            data: init,
        };
        Ok((r, out))
    }

    fn set_plan(&mut self, plan: TrackPlan, part_target: Duration) {
        let ts = self.track.timescale;
        self.plan = plan;
        self.part_close = plan.close_ticks(ts);
        self.part_max = crate::timing::mul_div_floor(
            u64::try_from(part_target.as_nanos()).unwrap_or(u64::MAX),
            u64::from(ts),
            1_000_000_000,
        );
        self.nominal_frame = plan.frame.ticks_floor(ts).max(1);
    }

    pub fn is_video(&self) -> bool {
        self.track.codec.kind() == MediaKind::Video
    }

    pub fn plan(&self) -> TrackPlan {
        self.plan
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn ticks(&self, d: Duration) -> u64 {
        crate::timing::mul_div_floor(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            u64::from(self.track.timescale),
            1_000_000_000,
        )
    }

    fn duration(&self, ticks: u64) -> Duration {
        let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(self.track.timescale.max(1));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// A step from this track's previous frame to `f` that cannot be a sample duration:
    /// backwards or zero, or a gap longer than PART-TARGET (the sample would make a part
    /// longer than PART-TARGET [S §4.4.4.9]) and than two nominal frames, or longer
    /// than 1 s.
    pub fn is_jump(&self, f: &Frame) -> bool {
        let Some(prev) = self.queue.back() else {
            return false;
        };
        let step = f.dts.saturating_sub(prev.dts);
        if step <= 0 {
            return true;
        }
        let step = step.unsigned_abs();
        let gap_limit = self.part_max.max(2 * self.nominal_frame);
        step > gap_limit || step > u64::from(self.track.timescale)
    }

    /// The last time this rendition has seen, as a horizon for followers.
    pub fn horizon(&self) -> Option<Horizon> {
        self.latest_dts.map(|dts| Horizon {
            dts,
            timescale: self.track.timescale,
        })
    }

    /// Adds the last sample of a flush, which no next frame gives a duration. It gets the
    /// nominal frame duration (not the previous sample's: a jittered long step there
    /// would push the last part past PART-TARGET and leave a short regular part before
    /// it), or, for a follower, the duration that makes it end where the leader's last
    /// sample ended when that is within half to twice a frame, so that the tracks'
    /// timelines end together and the next timeline starts in sync. It is shortened to
    /// what still fits the open part when that is at least half a frame.
    fn add_last(&mut self, f: &Frame, out: &mut Vec<Output>) {
        if self.open.is_none() {
            self.start_segment(f, None);
        }
        let nominal = self.nominal_frame;
        let start = f.dts.saturating_add(self.offset);
        let aligned = self.flush_end.and_then(|end| {
            let d = i64::try_from(end).ok()?.checked_sub(start)?;
            u64::try_from(d)
                .ok()
                .filter(|d| (nominal.div_ceil(2)..=2 * nominal).contains(d))
        });
        let mut duration = aligned.unwrap_or(nominal);
        if !self.part.samples.is_empty() {
            let room = self.part_max.saturating_sub(self.part.ticks);
            if duration > room && room >= nominal.div_ceil(2) {
                duration = room;
            }
        }
        self.add_sample(f, duration.max(1), out);
    }

    /// Duration of the open segment so far, including the open part.
    fn segment_ticks(&self) -> u64 {
        self.open.as_ref().map_or(0, |o| o.ticks) + self.part.ticks
    }

    /// Starts the open segment at `f`; `leader` is the boundary a follower starts it at.
    /// A follower's first segment takes the leader's MSN. The first segment of an input
    /// timeline maps it onto the output timeline ([`Rendition::timeline_offset`]): a
    /// follower where the leader's offset puts it, the leader where the program's
    /// output timeline resumes.
    fn start_segment(&mut self, f: &Frame, leader: Option<&Boundary>) -> Boundary {
        if let Some(b) = leader {
            if !self.ever_started {
                self.next_msn = b.msn.max(1);
            } else if self.gaps && self.rebase && b.msn > self.next_msn {
                // A follower starting again after a gap of its own (a transcoded rung
                // whose ladder restarted): the segments it has no media for are gaps.
                self.fill_gaps(b);
            }
        }
        self.skipped.clear();
        let new_timeline = self.rebase || !self.ever_started;
        if self.rebase || !self.ever_started {
            let mapped = match leader {
                Some(b) => Some(f.dts.saturating_add(rescale(
                    b.offset,
                    b.timescale,
                    self.track.timescale,
                ))),
                None => self.resume.and_then(|r| i64::try_from(r).ok()),
            };
            self.offset = self.timeline_offset(f.dts, mapped);
            self.rebase = false;
        }
        self.ever_started = true;
        let discontinuity = self.tag_from.is_some_and(|m| self.next_msn >= m);
        if discontinuity {
            self.tag_from = None;
        }
        if !f.keyframe {
            self.independent_segments = false;
        }
        self.open = Some(OpenSegment {
            msn: self.next_msn,
            start_dts: f.dts,
            program_date_time: self.date_time(f, new_timeline),
            discontinuity,
            init_version: self.init_version,
            independent: f.keyframe,
            shortened: 0,
            ticks: 0,
            parts: Vec::new(),
            data: Vec::new(),
        });
        self.stats.open_bytes = 0;
        self.stats.open_ticks = 0;
        let boundary = Boundary {
            pts: f.pts,
            timescale: self.track.timescale,
            msn: self.next_msn,
            offset: self.offset,
        };
        self.open_boundary = Some(boundary);
        boundary
    }

    /// The offset that maps a new input timeline, whose first sample has input decode
    /// time `dts`, onto the output timeline. The sample starts where this rendition's
    /// last one ended (tfdt continuous: no gap, no overlap), unless the program's mapping
    /// (`mapped`: where the leader's offset or the resumed program timeline puts it)
    /// is more than a part (PART-TARGET, at least two frames) later: that is a hole in
    /// this track (it stopped well before the others, or the leader stalled), kept so
    /// that the tracks stay in sync. Smaller differences are what sources do at their
    /// ends (AAC priming and padding make audio outlast video by two or three frames)
    /// and are closed up, at the price of the tracks being off by that much (less than a
    /// part) until the next discontinuity. With no sample written yet, the program's
    /// mapping (a late follower) or the current offset (zero: the first timeline keeps
    /// its input decode times).
    fn timeline_offset(&self, dts: i64, mapped: Option<i64>) -> i64 {
        let end = self.end.and_then(|e| i64::try_from(e).ok());
        let tolerance =
            i64::try_from(self.part_max.max(2 * self.nominal_frame)).unwrap_or(i64::MAX);
        match (end, mapped) {
            (Some(e), Some(m)) if m > e.saturating_add(tolerance) => m.saturating_sub(dts),
            (Some(e), _) => e.saturating_sub(dts),
            (None, Some(m)) => m.saturating_sub(dts),
            (None, None) => self.offset,
        }
    }

    /// EXT-X-GAP segments for the MSNs from `next_msn` up to `b.msn`, timed by the
    /// boundaries passed on the way (a missing one lasts the segment target).
    fn fill_gaps(&mut self, b: &Boundary) {
        let mut pdt = self
            .window
            .back()
            .map(|d| d.segment.program_date_time + d.segment.duration);
        let starts: Vec<Boundary> = self.skipped.clone();
        for msn in self.next_msn..b.msn {
            let duration = starts
                .iter()
                .position(|s| s.msn == msn)
                .and_then(|i| {
                    let start = starts[i];
                    let end = starts.get(i + 1).copied().unwrap_or(*b);
                    let ticks = u64::try_from(
                        rescale(end.pts, end.timescale, start.timescale).checked_sub(start.pts)?,
                    )
                    .ok()?;
                    Some(Duration::from_nanos(
                        u64::try_from(
                            u128::from(ticks) * 1_000_000_000 / u128::from(start.timescale.max(1)),
                        )
                        .ok()?,
                    ))
                })
                .filter(|d| *d <= self.rules.max)
                .unwrap_or(self.rules.target);
            let start = pdt.unwrap_or_else(SystemTime::now);
            self.window.push_back(DoneSegment {
                segment: Segment {
                    msn,
                    duration,
                    program_date_time: start,
                    discontinuity: false,
                    init_version: self.init_version,
                    parts: Vec::new(),
                    gap: true,
                },
                data: Vec::new(),
            });
            pdt = Some(start + duration);
        }
        self.next_msn = b.msn;
        while self.window.len() > self.window_size {
            if let Some(old) = self.window.pop_front()
                && old.segment.discontinuity
            {
                self.discontinuity_sequence += 1;
            }
        }
    }

    /// A follower whose frames stopped and start again (a rung whose ladder restarted):
    /// what it has is placed and its open segment ends; it starts again at the leader's
    /// boundary at or before its next frame, on the program's timeline, and the
    /// boundaries in between become EXT-X-GAP segments. The leader's boundaries are kept.
    pub fn restart_follower(&mut self, horizon: Option<Horizon>, out: &mut Vec<Output>) {
        self.commit(horizon, true, Duration::ZERO, out);
        self.close_segment(out);
        self.queue.clear();
        self.state = State::Waiting;
        self.last_duration = None;
        self.rebase = true;
    }

    /// Marks a transcoded rung (see the `gaps` field).
    pub fn set_gaps(&mut self, gaps: bool) {
        self.gaps = gaps;
    }

    /// Shares the program's date-time clock.
    pub fn set_clock(&mut self, clock: ProgramClock) {
        self.clock = clock;
    }

    /// The date-time of frame `f` on the output timeline (see [`ProgramClock`]), for a
    /// segment starting at `f`. A leader segment cut inside a GOP starts on screen where
    /// its boundary says (dts plus the source's reorder delay), not at the frame's own
    /// pts, which B-frame reordering puts out of order: so date-times step exactly as
    /// EXTINF (decode-time spans) does.
    fn date_time(&self, f: &Frame, new_timeline: bool) -> SystemTime {
        let presented = if f.keyframe || !self.leader {
            f.pts
        } else {
            f.dts.saturating_add(self.key_delay)
        };
        let out = i128::from(presented) + i128::from(self.offset);
        let ns = out * 1_000_000_000 / i128::from(self.track.timescale.max(1));
        self.clock
            .date_time(ns, f.received, self.leader, new_timeline)
    }

    /// Where the open segment started, for a follower created mid-segment.
    pub fn open_boundary(&self) -> Option<Boundary> {
        self.open.as_ref().and(self.open_boundary)
    }

    /// Adds a complete sample to the open part, closing parts by the part rules.
    fn add_sample(&mut self, f: &Frame, duration: u64, out: &mut Vec<Output>) {
        if self.open.is_none() {
            // Not reachable through the cutting rules; keep the sample rather than lose it.
            self.start_segment(f, None);
        }
        if !self.part.samples.is_empty() && self.part.ticks + duration > self.part_max {
            self.close_part(out);
        }
        let Ok(duration32) = u32::try_from(duration) else {
            tracing::warn!(rendition = %self.name, duration, "sample duration out of range, dropped");
            return;
        };
        let offset = f.pts.saturating_sub(f.dts);
        let Ok(composition_offset) = i32::try_from(offset) else {
            tracing::warn!(rendition = %self.name, offset, "composition offset out of range, dropped");
            return;
        };
        let start = f.dts.saturating_add(self.offset);
        if self.part.samples.is_empty() {
            self.part.start = start;
        }
        self.part.samples.push(Sample {
            duration: duration32,
            composition_offset,
            keyframe: f.keyframe,
            data: f.data.clone(),
        });
        self.part.ticks += duration;
        self.part.last_received = Some(f.received);
        self.end = u64::try_from(start)
            .ok()
            .map(|s| s.saturating_add(duration));
        if self.part.ticks >= self.part_close {
            self.close_part(out);
        }
    }

    /// Writes the open part as one CMAF chunk and emits it.
    fn close_part(&mut self, out: &mut Vec<Output>) {
        let part = std::mem::take(&mut self.part);
        if part.samples.is_empty() {
            return;
        }
        let Some(open) = self.open.as_mut() else {
            return;
        };
        let Ok(tfdt) = u64::try_from(part.start) else {
            tracing::warn!(rendition = %self.name, dts = part.start, "negative decode time, part dropped");
            return;
        };
        let data = match fmp4::fragment(self.sequence, tfdt, &part.samples) {
            Ok(data) => data,
            Err(error) => {
                tracing::warn!(rendition = %self.name, msn = open.msn, %error, "part dropped");
                return;
            }
        };
        self.sequence = self.sequence.wrapping_add(1).max(1);
        let index = u32::try_from(open.parts.len()).unwrap_or(u32::MAX);
        let independent = part.samples.first().is_some_and(|s| s.keyframe);
        let nanos =
            u128::from(part.ticks) * 1_000_000_000 / u128::from(self.track.timescale.max(1));
        let duration = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        open.ticks += part.ticks;
        open.parts.push(Part {
            index,
            duration,
            independent,
        });
        open.data.push(data.clone());
        self.stats.open_bytes += data.len() as u64;
        self.stats.open_ticks += part.ticks;
        out.push(Output::Part {
            rendition: self.name.clone(),
            msn: open.msn,
            index,
            duration,
            independent,
            data,
            last_received: part.last_received.unwrap_or(open.program_date_time),
        });
    }

    /// Closes the open part and segment; emits the segment and trims the window.
    fn close_segment(&mut self, out: &mut Vec<Output>) {
        self.close_part(out);
        let Some(open) = self.open.take() else {
            return;
        };
        if open.parts.is_empty() {
            // Nothing was written: the segment never existed.
            if open.discontinuity {
                self.tag_from = Some(self.tag_from.map_or(open.msn, |m| m.min(open.msn)));
            }
            return;
        }
        let duration = self.duration(open.ticks);
        let bytes: u64 = open.data.iter().map(|d| d.len() as u64).sum();
        let bps = if open.ticks > 0 {
            u64::try_from(
                u128::from(bytes) * 8 * u128::from(self.track.timescale) / u128::from(open.ticks),
            )
            .unwrap_or(u64::MAX)
        } else {
            0
        };
        self.stats.bytes += bytes;
        self.stats.ticks += open.ticks;
        self.stats.peak_bps = self.stats.peak_bps.max(bps);
        self.stats.open_bytes = 0;
        self.stats.open_ticks = 0;
        out.push(Output::Segment {
            rendition: self.name.clone(),
            msn: open.msn,
            duration,
            program_date_time: open.program_date_time,
        });
        self.window.push_back(DoneSegment {
            segment: Segment {
                msn: open.msn,
                duration,
                program_date_time: open.program_date_time,
                discontinuity: open.discontinuity,
                init_version: open.init_version,
                parts: open.parts,
                gap: false,
            },
            data: open.data,
        });
        self.next_msn = open.msn + 1;
        while self.window.len() > self.window_size {
            if let Some(old) = self.window.pop_front()
                && old.segment.discontinuity
            {
                self.discontinuity_sequence += 1;
            }
        }
        self.prune_inits();
    }

    /// Drops init segments no segment in the window (or the open one) refers to.
    fn prune_inits(&mut self) {
        let oldest = self
            .window
            .front()
            .map(|s| s.segment.init_version)
            .or(self.open.as_ref().map(|o| o.init_version))
            .unwrap_or(self.init_version)
            .min(self.init_version);
        self.inits.retain(|&v, _| v >= oldest);
    }

    /// Places everything queued and closes the open segment (a discontinuity or the
    /// end); the last sample's duration is chosen by [`Rendition::add_last`].
    /// `leader_end` (a follower's) is where the leader's last sample ended, in its
    /// timescale. The next segment starts a new input timeline.
    pub fn flush(
        &mut self,
        horizon: Option<Horizon>,
        leader_end: Option<(u64, u32)>,
        out: &mut Vec<Output>,
    ) {
        self.flush_end = leader_end.map(|(t, ts)| rescale_up(t, ts, self.track.timescale));
        if self.leader {
            if let Some(p) = self.queue.pop_front()
                && self.state == State::Running
            {
                self.add_last(&p, out);
            }
        } else {
            self.commit(horizon, true, Duration::ZERO, out);
        }
        self.flush_end = None;
        self.close_segment(out);
        self.queue.clear();
        self.boundaries.clear();
        self.state = State::Waiting;
        self.last_duration = None;
        self.last_keyframe = None;
        self.gops.clear();
        self.long_gop = false;
        self.rebase = true;
    }

    /// Where this rendition's last sample ends on the output timeline: (ticks, timescale).
    pub fn timeline_end(&self) -> Option<(u64, u32)> {
        self.end.map(|e| (e, self.track.timescale))
    }

    /// Where the program's output timeline resumes after a flush: (ticks, timescale).
    pub fn resume_at(&mut self, at: Option<(u64, u32)>) {
        self.resume = at.map(|(t, ts)| rescale_up(t, ts, self.track.timescale));
    }

    /// Segments from `msn` on follow a discontinuity: the next one to start carries
    /// EXT-X-DISCONTINUITY, and an [`Output::Discontinuity`] says so now. Nothing is
    /// marked before the first segment, or twice (a mark already pending for `msn` or an
    /// earlier segment covers this one).
    pub fn mark_discontinuity(&mut self, msn: u64, out: &mut Vec<Output>) {
        if !self.ever_started || self.tag_from.is_some_and(|m| m <= msn) {
            return;
        }
        self.tag_from = Some(msn);
        out.push(Output::Discontinuity {
            rendition: self.name.clone(),
            msn,
        });
    }

    /// The MSN of the next segment to start: the one after the open segment.
    pub fn next_boundary_msn(&self) -> u64 {
        self.open.as_ref().map_or(self.next_msn, |o| o.msn + 1)
    }

    /// The stream ended (after [`Rendition::flush`]).
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// New codec parameters: a new init segment version for the segments that follow.
    pub fn change_codec(
        &mut self,
        track: TrackInfo,
        plan: TrackPlan,
        part_target: Duration,
    ) -> crate::Result<Output> {
        let init = fmp4::init_segment(&track)?;
        let (from, to) = (self.track.timescale, track.timescale);
        if from != to {
            // The output timeline goes on in the new timescale.
            self.end = self.end.map(|e| rescale_up(e, from, to));
            self.resume = self.resume.map(|r| rescale_up(r, from, to));
            self.offset = rescale(self.offset, from, to);
        }
        self.track = track;
        self.set_plan(plan, part_target);
        self.init_version += 1;
        self.inits.insert(self.init_version, init.clone());
        Ok(Output::Init {
            rendition: self.name.clone(),
            version: self.init_version,
            data: init,
        })
    }

    /// Follows a track whose id changed but whose codec did not.
    pub fn retrack(&mut self, track: TrackInfo) {
        self.track.id = track.id;
    }

    /// Frames are queued or a segment is open: a codec change must flush first.
    pub fn has_media(&self) -> bool {
        !self.queue.is_empty() || self.open.is_some()
    }

    pub fn init(&self, version: u32) -> Option<Bytes> {
        self.inits.get(&version).cloned()
    }

    pub fn part(&self, msn: u64, index: u32) -> Option<Bytes> {
        let i = usize::try_from(index).ok()?;
        if let Some(open) = self.open.as_ref().filter(|o| o.msn == msn) {
            return open.data.get(i).cloned();
        }
        self.find(msn)?.data.get(i).cloned()
    }

    pub fn segment(&self, msn: u64) -> Option<Bytes> {
        let done = self.find(msn)?;
        let mut buf = BytesMut::with_capacity(done.data.iter().map(Bytes::len).sum());
        for d in &done.data {
            buf.extend_from_slice(d);
        }
        Some(buf.freeze())
    }

    fn find(&self, msn: u64) -> Option<&DoneSegment> {
        let first = self.window.front()?.segment.msn;
        let i = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.window.get(i).filter(|d| d.segment.msn == msn)
    }

    /// The media playlist snapshot.
    pub fn playlist(
        &self,
        part_target: Duration,
        can_skip_until: Option<Duration>,
    ) -> MediaPlaylist {
        let segments: Vec<Segment> = self.window.iter().map(|d| d.segment.clone()).collect();
        let pending = (!self.ended).then(|| match &self.open {
            Some(open) => PendingSegment {
                msn: open.msn,
                program_date_time: Some(open.program_date_time),
                discontinuity: open.discontinuity,
                init_version: open.init_version,
                parts: open.parts.clone(),
            },
            None => PendingSegment {
                msn: self.next_msn,
                program_date_time: None,
                discontinuity: self.tag_from.is_some_and(|m| self.next_msn >= m),
                init_version: self.init_version,
                parts: Vec::new(),
            },
        });
        let media_sequence = segments
            .first()
            .map(|s| s.msn)
            .or(pending.as_ref().map(|p| p.msn))
            .unwrap_or(self.next_msn);
        MediaPlaylist {
            target_duration: self.rules.target_duration,
            part_target,
            media_sequence,
            discontinuity_sequence: self.discontinuity_sequence,
            segments,
            pending,
            ended: self.ended,
            independent_segments: self.independent_segments,
            can_skip_until,
        }
    }

    /// Every segment so far started with a sync sample.
    pub fn independent_segments(&self) -> bool {
        self.independent_segments
    }

    /// Before its first segment, a follower's pending MSN tracks the leader's.
    pub fn follow_msn(&mut self, msn: u64) {
        if !self.ever_started {
            self.next_msn = msn.max(1);
        }
    }

    pub fn next_msn(&self) -> u64 {
        self.next_msn
    }
}

/// `t` ticks of timescale `from` in ticks of timescale `to`, rounded to the nearest
/// (exact integer arithmetic, saturating).
fn rescale(t: i64, from: u32, to: u32) -> i64 {
    if from == to {
        return t;
    }
    let d = i128::from(from.max(1));
    let n = i128::from(t) * i128::from(to);
    let q = (n.abs() + d / 2) / d;
    let q = if n < 0 { -q } else { q };
    i64::try_from(q).unwrap_or(if t < 0 { i64::MIN } else { i64::MAX })
}

/// `t` ticks of timescale `from` in ticks of timescale `to`, rounded up (saturating).
fn rescale_up(t: u64, from: u32, to: u32) -> u64 {
    if from == to {
        return t;
    }
    let q = (u128::from(t) * u128::from(to)).div_ceil(u128::from(from.max(1)));
    u64::try_from(q).unwrap_or(u64::MAX)
}

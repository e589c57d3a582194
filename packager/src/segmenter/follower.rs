//! The follower's side of [`Rendition`]: queueing frames and placing them on the
//! leader's boundaries (see "Segments (follower)" in the parent module).
use std::time::Duration;

use media::Frame;

use super::{Boundary, Horizon, Rendition, State};
use crate::program::Output;

/// Boundaries a follower keeps at most (older ones are stale: it had no frames for them).
const MAX_BOUNDARIES: usize = 16;

impl Rendition {
    /// A follower's frame; [`Rendition::commit`] places it.
    pub fn push_follower(&mut self, f: Frame) {
        self.latest_dts = Some(f.dts);
        self.queue.push_back(f);
    }

    /// A boundary from the leader, for a follower.
    pub fn add_boundary(&mut self, b: Boundary) {
        self.boundaries.push_back(b);
        while self.boundaries.len() > MAX_BOUNDARIES {
            self.boundaries.pop_front();
        }
    }

    /// `x` (this track's ticks, lasting `d`) is at or after boundary `b`, to the nearest frame.
    fn at_or_after(&self, x: i64, d: u64, b: &Boundary) -> bool {
        let ts = i128::from(self.track.timescale);
        let bts = i128::from(b.timescale);
        2 * i128::from(x) * bts >= 2 * i128::from(b.pts) * ts - i128::from(d) * bts
    }

    /// `x` (lasting `d`) precedes every boundary the leader can still announce.
    fn before_horizon(&self, x: i64, d: u64, h: Horizon) -> bool {
        let ts = i128::from(self.track.timescale);
        let hts = i128::from(h.timescale);
        2 * i128::from(x) * hts < 2 * i128::from(h.dts) * ts - i128::from(d) * hts
    }

    /// Places a follower's queued frames that can be placed: those whose duration is
    /// known and whose side of every boundary is known. `flush` places everything.
    /// `lead_limit` bounds the queue while the leader has not started.
    pub fn commit(
        &mut self,
        horizon: Option<Horizon>,
        flush: bool,
        lead_limit: Duration,
        out: &mut Vec<Output>,
    ) {
        if self.state == State::Waiting && self.boundaries.is_empty() {
            let limit = self.ticks(lead_limit);
            while let (Some(front), Some(back)) = (self.queue.front(), self.queue.back()) {
                if back.dts.saturating_sub(front.dts).max(0).unsigned_abs() <= limit {
                    break;
                }
                self.queue.pop_front();
            }
        }
        while let Some(front) = self.queue.front() {
            let last = flush && self.queue.len() == 1;
            let step = match self.queue.get(1) {
                Some(next) => next.dts.saturating_sub(front.dts).max(1).unsigned_abs(),
                None if flush => self.nominal_frame,
                None => break,
            };
            let x = front.pts;
            // Waiting: the latest boundary the frame is at or after starts the timeline
            // (earlier ones are not on it). Running: one boundary per frame, so every
            // leader segment gets a segment of the same MSN here even when it is shorter
            // than a frame of this track (a one-frame video segment before a keyframe,
            // after a cut inside a long GOP); the next boundary starts at the next frame.
            let mut hit = None;
            while let Some(b) = self.boundaries.front() {
                if !self.at_or_after(x, step, b) {
                    break;
                }
                if let Some(passed) = hit.replace(*b) {
                    self.skipped.push(passed);
                }
                self.boundaries.pop_front();
                if self.state == State::Running {
                    break;
                }
            }
            let placed = !self.boundaries.is_empty()
                || horizon.is_some_and(|h| self.before_horizon(x, step, h));
            match (self.state, hit) {
                (State::Waiting, Some(b)) => {
                    self.state = State::Running;
                    let Some(f) = self.queue.pop_front() else {
                        break;
                    };
                    self.start_segment(&f, Some(&b));
                    self.place(&f, step, last, out);
                    continue;
                }
                (State::Waiting, None) => {
                    if placed || flush {
                        // Before the leader's segment start: not on the grid.
                        self.queue.pop_front();
                        continue;
                    }
                    break;
                }
                (State::Running, Some(_)) => {
                    let Some(f) = self.queue.pop_front() else {
                        break;
                    };
                    if self.open.as_ref().is_some_and(|o| !o.parts.is_empty())
                        || !self.part.samples.is_empty()
                    {
                        self.close_segment(out);
                        self.start_segment(&f, None);
                    } else if self.open.is_none() {
                        self.start_segment(&f, None);
                    }
                    self.place(&f, step, last, out);
                }
                (State::Running, None) => {
                    if !(placed || flush) {
                        break;
                    }
                    let Some(f) = self.queue.pop_front() else {
                        break;
                    };
                    if !placed && self.segment_ticks() + step > self.ticks(self.rules.max) {
                        // Flushing past a stalled leader: what does not fit the segment
                        // limit is dropped rather than make an overlong segment.
                        continue;
                    }
                    if self.open.is_none() {
                        self.start_segment(&f, None);
                    }
                    self.place(&f, step, last, out);
                }
            }
        }
    }

    /// Adds a follower's sample of duration `step`, or the last one of a flush.
    fn place(&mut self, f: &Frame, step: u64, last: bool, out: &mut Vec<Output>) {
        if last {
            self.add_last(f, out);
        } else {
            self.last_duration = Some(step);
            self.add_sample(f, step, out);
        }
    }

    /// A running follower whose queue reaches further than `limit` past the leader: the
    /// leader has stalled.
    pub fn stalled(&self, horizon: Option<Horizon>, limit: Duration) -> bool {
        let (Some(h), Some(back), State::Running) = (horizon, self.queue.back(), self.state) else {
            return false;
        };
        let ts = i128::from(self.track.timescale);
        let hts = i128::from(h.timescale);
        let lead = i128::from(back.dts) * hts - i128::from(h.dts) * ts;
        lead > i128::from(self.ticks(limit)) * hts
    }
}

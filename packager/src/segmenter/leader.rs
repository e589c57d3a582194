//! The leader's side of [`Rendition`]: deciding where segments start and announcing the
//! boundaries (see "Segments (leader)" in the parent module).
use media::Frame;

use super::{Boundary, GOP_HISTORY, Rendition, State};
use crate::program::Output;

impl Rendition {
    /// A leader's frame. Returns the boundaries it made, in order: one at the previous
    /// frame when that frame's duration, known only now, would take the open segment past
    /// its limit, and one when `f` starts a segment.
    pub fn push_leader(&mut self, f: Frame, out: &mut Vec<Output>) -> [Option<Boundary>; 2] {
        self.latest_dts = Some(f.dts);
        let mut late = None;
        if let Some(p) = self.queue.pop_front() {
            let step = f.dts.saturating_sub(p.dts).max(1).unsigned_abs();
            late = self.cut_before_long_sample(&p, step, out);
            self.last_duration = Some(step);
            self.add_sample(&p, step, out);
        }
        [late, self.decide(f, out)]
    }

    /// Whether `p` starts a segment after all: it was let into the open segment on the
    /// guess that it lasts as long as the frame before it, and it lasts `step` (a dropped
    /// frame or a stutter after it) that would take the segment past its limit. The
    /// segment then ends before `p` (inside a GOP, unless `p` is a keyframe). Followers
    /// have placed nothing at or after `p` yet: they place frames only before the
    /// leader's latest dts, which was `p`'s, and the boundary is at or after it.
    fn cut_before_long_sample(
        &mut self,
        p: &Frame,
        step: u64,
        out: &mut Vec<Output>,
    ) -> Option<Boundary> {
        let open = self.open.as_ref()?;
        if self.state != State::Running || (open.parts.is_empty() && self.part.samples.is_empty()) {
            return None;
        }
        let max = self.ticks(self.rules.max).saturating_sub(open.shortened);
        if self.segment_ticks() + step <= max {
            return None;
        }
        Some(self.cut(p, out))
    }

    /// Ends the open segment and starts the next at `f`. Inside a GOP the followers cut
    /// where the decode-time grid puts the segment's start on screen, the frame's dts
    /// plus the source's reorder delay: its own pts is out of order (a P frame's comes
    /// after the B frames that follow it).
    fn cut(&mut self, f: &Frame, out: &mut Vec<Output>) -> Boundary {
        self.close_segment(out);
        let mut b = self.start_segment(f, None);
        if !f.keyframe {
            b.pts = f.dts.saturating_add(self.key_delay);
            self.open_boundary = Some(b);
        }
        b
    }

    /// The segmenting decision at a leader frame, made when it arrives (its duration is
    /// not known yet): returns the boundary when `f` starts a segment.
    fn decide(&mut self, f: Frame, out: &mut Vec<Output>) -> Option<Boundary> {
        if f.keyframe
            && let Some(k) = self.last_keyframe
        {
            self.note_gop(f.dts.saturating_sub(k).max(0).unsigned_abs());
        }
        let mut boundary = None;
        match (self.state, &self.open) {
            (State::Waiting, _) | (State::Running, None) => {
                if !f.keyframe {
                    return None;
                }
                self.state = State::Running;
                let mut b = self.start_segment(&f, None);
                // The first segment of a timeline starts, for the followers, at this
                // keyframe's decode time rather than its presentation time: encoders
                // start audio with the first video dts, and B-frame reordering puts the
                // first video pts a few frames later. The followers' first segment is
                // then longer by that offset, which this segment gives up from its limit.
                let offset = f.pts.saturating_sub(f.dts).max(0).unsigned_abs();
                if offset <= self.part_max {
                    b.pts = f.dts;
                    if let Some(open) = self.open.as_mut() {
                        open.shortened = offset;
                    }
                }
                self.open_boundary = Some(b);
                boundary = Some(b);
            }
            (State::Running, Some(open)) => {
                let d = f.dts.saturating_sub(open.start_dts).max(0).unsigned_abs();
                let target = self.ticks(self.rules.target);
                let max = self.ticks(self.rules.max).saturating_sub(open.shortened);
                let tolerance = self.nominal_frame / 2;
                let reached = d + tolerance >= target;
                let cut = if f.keyframe {
                    !open.independent
                        || reached
                        || self.predicted_gop().is_some_and(|gop| d + gop > max)
                } else {
                    d + self.last_duration.unwrap_or(self.nominal_frame) > max
                        || (self.long_gop && reached)
                };
                if cut {
                    boundary = Some(self.cut(&f, out));
                }
            }
        }
        let max = self.ticks(self.rules.max);
        if f.keyframe {
            self.key_delay = f.pts.saturating_sub(f.dts).max(0);
            self.long_gop = self.predicted_gop().is_some_and(|gop| gop > max);
            self.last_keyframe = Some(f.dts);
        } else if let Some(k) = self.last_keyframe
            && f.dts.saturating_sub(k).max(0).unsigned_abs() > max
        {
            self.long_gop = true;
        }
        self.queue.push_back(f);
        boundary
    }

    /// Records a keyframe interval (once per keyframe).
    fn note_gop(&mut self, gop: u64) {
        if self.gops.len() == GOP_HISTORY {
            self.gops.pop_front();
        }
        self.gops.push_back(gop);
    }

    /// The next keyframe interval, predicted as the longest of the last few: scene-cut
    /// keyframes make short intervals, but the encoder's regular interval follows them.
    fn predicted_gop(&self) -> Option<u64> {
        self.gops.iter().copied().max()
    }
}

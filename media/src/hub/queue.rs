//! One subscriber's bounded queue and its drop-to-keyframe gate.
//!
//! The queue holds at most `cap` frames. Control events (Tracks, Discontinuity, End) are
//! never dropped and do not count against the cap; so that a publisher that floods control
//! events cannot grow a stalled queue without bound, a run of more than
//! [`MAX_CONTROL_RUN`] control events with no frame between them is folded into its
//! meaning: the first Discontinuity and the last Tracks of the run (Tracks is always the
//! complete track set, so an earlier one with no frame after it says nothing more).

use std::collections::VecDeque;

use crate::{Frame, StreamEvent};

/// Longest run of consecutive control events kept verbatim in a queue.
pub(super) const MAX_CONTROL_RUN: usize = 8;

/// Where a subscriber stands with respect to keyframes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Gate {
    /// Frames are queued as they come.
    Open,
    /// A new subscriber waiting for its first resume point; the frames it skips were never
    /// its to lose, so they are not counted as drops.
    Joining,
    /// The queue overflowed: every frame is dropped (and counted) until a resume point
    /// finds room.
    Overflowed,
}

/// What happened to one frame offered to a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Push {
    Queued,
    /// Skipped while joining, or after End: not a drop.
    Skipped,
    /// Dropped because the subscriber is too slow; counted.
    Dropped,
}

#[derive(Debug)]
pub(super) struct SubQueue {
    events: VecDeque<StreamEvent>,
    /// Frames currently in `events`.
    frames: usize,
    cap: usize,
    gate: Gate,
    dropped: u64,
    /// Control events at the tail of `events` since the last frame.
    control_run: usize,
    end_queued: bool,
    end_delivered: bool,
}

impl SubQueue {
    /// A queue pre-filled with `initial` (the GOP cache replay), bypassing the gate.
    pub(super) fn new(cap: usize, initial: Vec<StreamEvent>, gate: Gate) -> SubQueue {
        let mut q = SubQueue {
            events: VecDeque::with_capacity(initial.len().max(16)),
            frames: 0,
            cap: cap.max(1),
            gate,
            dropped: 0,
            control_run: 0,
            end_queued: false,
            end_delivered: false,
        };
        for ev in initial {
            match ev {
                StreamEvent::Frame(_) => {
                    q.frames += 1;
                    q.control_run = 0;
                    q.events.push_back(ev);
                }
                other => q.push_control(other),
            }
        }
        q
    }

    /// Offers one frame. `resume` says whether delivery may (re)start at this frame.
    pub(super) fn push_frame(&mut self, frame: &Frame, resume: bool) -> Push {
        if self.end_queued {
            return Push::Skipped;
        }
        match self.gate {
            Gate::Joining if !resume => return Push::Skipped,
            Gate::Overflowed if !resume => {
                self.dropped += 1;
                return Push::Dropped;
            }
            _ => {}
        }
        if self.frames >= self.cap {
            self.gate = Gate::Overflowed;
            self.dropped += 1;
            return Push::Dropped;
        }
        self.gate = Gate::Open;
        self.frames += 1;
        self.control_run = 0;
        self.events.push_back(StreamEvent::Frame(frame.clone()));
        Push::Queued
    }

    /// Queues a control event; never dropped (a long run is folded, see the module docs).
    pub(super) fn push_control(&mut self, event: StreamEvent) {
        if self.end_queued {
            return;
        }
        if matches!(event, StreamEvent::End) {
            self.end_queued = true;
        } else if self.control_run >= MAX_CONTROL_RUN {
            self.fold_control_run();
        }
        self.control_run += 1;
        self.events.push_back(event);
    }

    /// Replaces the tail run of control events by its first Discontinuity and last Tracks.
    fn fold_control_run(&mut self) {
        let start = self.events.len() - self.control_run;
        let mut discontinuity = None;
        let mut tracks = None;
        for ev in self.events.drain(start..) {
            match ev {
                StreamEvent::Discontinuity { .. } if discontinuity.is_none() => {
                    discontinuity = Some(ev)
                }
                StreamEvent::Tracks(_) => tracks = Some(ev),
                _ => {}
            }
        }
        self.control_run = 0;
        for ev in [discontinuity, tracks].into_iter().flatten() {
            self.control_run += 1;
            self.events.push_back(ev);
        }
    }

    pub(super) fn pop(&mut self) -> Option<StreamEvent> {
        let ev = self.events.pop_front()?;
        self.control_run = self.control_run.min(self.events.len());
        match ev {
            StreamEvent::Frame(_) => self.frames -= 1,
            StreamEvent::End => self.end_delivered = true,
            _ => {}
        }
        Some(ev)
    }

    /// True once End has been handed out: nothing more will ever come.
    pub(super) fn finished(&self) -> bool {
        self.end_delivered
    }

    pub(super) fn gate(&self) -> Gate {
        self.gate
    }

    pub(super) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub(super) fn frames(&self) -> usize {
        self.frames
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.events.len()
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use bytes::Bytes;

    use super::*;
    use crate::{DiscontinuityReason, TrackInfo};

    fn frame(n: i64, keyframe: bool) -> Frame {
        Frame {
            track: 1,
            pts: n,
            dts: n,
            keyframe,
            data: Bytes::from(vec![0u8; 4]),
            received: SystemTime::UNIX_EPOCH,
        }
    }

    fn drain(q: &mut SubQueue) -> Vec<StreamEvent> {
        std::iter::from_fn(|| q.pop()).collect()
    }

    #[test]
    fn overflow_drops_until_a_resume_point_with_room() {
        let mut q = SubQueue::new(3, Vec::new(), Gate::Open);
        for n in 0..3 {
            assert_eq!(q.push_frame(&frame(n, n == 0), n == 0), Push::Queued);
        }
        // Full: a non-key frame is dropped, then so are frames until a keyframe with room.
        assert_eq!(q.push_frame(&frame(3, false), false), Push::Dropped);
        assert_eq!(q.push_frame(&frame(4, true), true), Push::Dropped);
        assert_eq!(q.frames(), 3);
        assert_eq!(
            q.pop().map(|e| matches!(e, StreamEvent::Frame(_))),
            Some(true)
        );
        assert_eq!(q.push_frame(&frame(5, false), false), Push::Dropped);
        assert_eq!(q.push_frame(&frame(6, true), true), Push::Queued);
        assert_eq!(
            q.push_frame(&frame(7, false), false),
            Push::Dropped,
            "full again"
        );
        assert_eq!(q.dropped(), 4);
        let pts: Vec<i64> = drain(&mut q)
            .into_iter()
            .filter_map(|e| match e {
                StreamEvent::Frame(f) => Some(f.pts),
                _ => None,
            })
            .collect();
        assert_eq!(pts, vec![1, 2, 6]);
    }

    #[test]
    fn joining_skips_without_counting() {
        let mut q = SubQueue::new(4, Vec::new(), Gate::Joining);
        assert_eq!(q.push_frame(&frame(0, false), false), Push::Skipped);
        assert_eq!(q.push_frame(&frame(1, true), true), Push::Queued);
        assert_eq!(q.push_frame(&frame(2, false), false), Push::Queued);
        assert_eq!(q.dropped(), 0);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn control_events_are_kept_when_full_and_end_is_final() {
        let mut q = SubQueue::new(1, Vec::new(), Gate::Open);
        assert_eq!(q.push_frame(&frame(0, true), true), Push::Queued);
        q.push_control(StreamEvent::Discontinuity {
            reason: DiscontinuityReason::Takeover,
        });
        q.push_control(StreamEvent::Tracks(Vec::new()));
        q.push_control(StreamEvent::End);
        q.push_control(StreamEvent::Tracks(Vec::new()));
        assert_eq!(q.push_frame(&frame(1, true), true), Push::Skipped);
        let got = drain(&mut q);
        assert_eq!(got.len(), 4);
        assert!(matches!(got[1], StreamEvent::Discontinuity { .. }));
        assert!(matches!(got[2], StreamEvent::Tracks(_)));
        assert_eq!(got[3], StreamEvent::End);
        assert!(q.finished());
    }

    #[test]
    fn control_flood_is_folded_and_bounded() {
        let mut q = SubQueue::new(2, Vec::new(), Gate::Open);
        assert_eq!(q.push_frame(&frame(0, true), true), Push::Queued);
        for i in 0..10_000u32 {
            q.push_control(StreamEvent::Discontinuity {
                reason: DiscontinuityReason::TimestampJump,
            });
            q.push_control(StreamEvent::Tracks(vec![TrackInfo {
                id: i,
                codec: crate::Codec::Opus {
                    sample_rate: 48_000,
                    channels: 2,
                },
                timescale: 48_000,
            }]));
            assert!(q.len() <= 1 + MAX_CONTROL_RUN);
        }
        let got = drain(&mut q);
        assert!(matches!(got[0], StreamEvent::Frame(_)));
        assert!(matches!(got[1], StreamEvent::Discontinuity { .. }));
        // The newest Tracks survives, last.
        match got.last() {
            Some(StreamEvent::Tracks(t)) => assert_eq!(t[0].id, 9_999),
            other => panic!("expected Tracks last, got {other:?}"),
        }
    }
}

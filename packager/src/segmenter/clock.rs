//! The program's date-time clock, shared by its renditions (see [`ProgramClock`]).
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How much earlier than its date-time a segment's first frame may arrive before the
/// program's clock is anchored again: media running ahead of the wall clock (the
/// timeline's first frame came late, or the publisher's clock is fast) would date media
/// in the future.
pub(crate) const REANCHOR_EARLY: Duration = Duration::from_millis(500);
/// How much later: a publisher starved of CPU or network sends late and catches up, so
/// lateness alone is tolerated for long; a slow publisher clock shows as lasting drift.
pub(crate) const REANCHOR_LATE: Duration = Duration::from_secs(10);

/// The program's map from output presentation time to wall-clock time, shared by its
/// renditions: EXT-X-PROGRAM-DATE-TIME is the anchor's wall-clock time plus the media
/// time since the anchor, so every rendition dates the same instant alike and date-time
/// steps equal media durations. The leader anchors it at the start of every timeline
/// (its first frame's arrival) and again, at one of its segment starts, when that
/// segment's first frame arrives more than [`REANCHOR_EARLY`] before or
/// [`REANCHOR_LATE`] after its date-time.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProgramClock(std::sync::Arc<std::sync::Mutex<Option<Anchor>>>);

#[derive(Clone, Copy, Debug)]
struct Anchor {
    wall: SystemTime,
    /// Output presentation time at `wall`, in nanoseconds.
    at_ns: i128,
}

impl ProgramClock {
    /// The date-time of output presentation time `at_ns`, for a segment whose first
    /// frame arrived at `received`; the leader (re)anchors as described above.
    pub(super) fn date_time(
        &self,
        at_ns: i128,
        received: SystemTime,
        leader: bool,
        new_timeline: bool,
    ) -> SystemTime {
        let mut anchor = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dated = anchor.map(|a| shift(a.wall, at_ns - a.at_ns));
        let off_clock = dated.is_none_or(|d| match received.duration_since(d) {
            Ok(late) => late > REANCHOR_LATE,
            Err(early) => early.duration() > REANCHOR_EARLY,
        });
        let reanchor = leader && (new_timeline || off_clock);
        if reanchor || dated.is_none() {
            let wall = whole_millis(received);
            *anchor = Some(Anchor { wall, at_ns });
            return wall;
        }
        dated.unwrap_or(received)
    }
}

/// `t` truncated to a whole millisecond. The anchor is: date-times are written with
/// milliseconds, truncated, and a player aligning an audio playlist to the video one by
/// date-time (hls.js does) then sees each audio segment start at or before where its
/// media starts. With a fractional-millisecond anchor, truncation could carry an audio
/// date-time (a 48 kHz AAC frame grid is not whole milliseconds) past the next
/// millisecond while the video's did not: the player then expected the next audio part
/// up to 1 ms after the buffered audio ended, waited for media it already had, and
/// stalled until its gap handling skipped ahead (seconds).
fn whole_millis(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => {
            UNIX_EPOCH + Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        }
        Err(_) => t,
    }
}

/// `t` moved by `ns` nanoseconds (either way), saturating at the epoch.
fn shift(t: SystemTime, ns: i128) -> SystemTime {
    let d = Duration::from_nanos(u64::try_from(ns.unsigned_abs()).unwrap_or(u64::MAX));
    if ns >= 0 {
        t.checked_add(d).unwrap_or(t)
    } else {
        t.checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

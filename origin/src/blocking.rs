//! Blocking playlist reload [S §6.2.5.2], delta-update requests [S §6.2.5.1] and
//! preload-hint part requests [S §4.4.5.3, §6.2.6]: the query parser, the pure decisions
//! on a playlist snapshot, and the one bounded wait they share.
//!
//! The rules, as LLHLS.md states them:
//! - `_HLS_msn=M&_HLS_part=P` holds until the playlist contains part P of M or later;
//!   P past the last part of a finished segment means part 0 of M+1
//!   ([`packager::playlist::request_satisfied`] is the one definition of that).
//! - `_HLS_msn=M` alone holds until segment M is complete.
//! - Already satisfied, or M older than the window: answered at once (the full playlist).
//! - `_HLS_part` without `_HLS_msn`: 400. M more than two past the last segment, or P
//!   beyond the Advance Part Limit: 400. Held longer than 3 x TD: 503.
//! - With EXT-X-ENDLIST the parameters are ignored.
//! - Values that are not plain decimal numbers in range, `_HLS_skip` other than `YES`
//!   or `v2`, or a parameter given twice: 400.
use std::sync::Arc;
use std::time::Duration;

use packager::playlist::{MediaPlaylist, last_part, preload_hint, request_satisfied};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::store::Snapshot;

/// A media playlist request's query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlaylistQuery {
    pub msn: Option<u64>,
    pub part: Option<u32>,
    /// `_HLS_skip=YES` (or `v2`, which also skips date ranges; we write none).
    pub skip: bool,
}

/// Why a query was refused with 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("_HLS_part without _HLS_msn")]
    PartWithoutMsn,
    #[error("{key} given more than once")]
    Repeated { key: &'static str },
    #[error("{key}={value:?} is not a valid value")]
    BadValue { key: &'static str, value: String },
}

/// Longest accepted decimal number (u64::MAX has 20 digits).
const MAX_DIGITS: usize = 20;

/// Parses the query of a media playlist URL. Parameters other than the three `_HLS_`
/// ones are ignored (the spec reserves the `_HLS_` prefix [S §6.2.5]).
pub fn parse_query(query: Option<&str>) -> Result<PlaylistQuery, QueryError> {
    let mut q = PlaylistQuery::default();
    let mut seen_skip = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "_HLS_msn" => {
                if q.msn.is_some() {
                    return Err(QueryError::Repeated { key: "_HLS_msn" });
                }
                q.msn = Some(number(value).ok_or_else(|| bad("_HLS_msn", value))?);
            }
            "_HLS_part" => {
                if q.part.is_some() {
                    return Err(QueryError::Repeated { key: "_HLS_part" });
                }
                let n = number(value).ok_or_else(|| bad("_HLS_part", value))?;
                q.part = Some(u32::try_from(n).map_err(|_| bad("_HLS_part", value))?);
            }
            "_HLS_skip" => {
                if seen_skip {
                    return Err(QueryError::Repeated { key: "_HLS_skip" });
                }
                seen_skip = true;
                q.skip = match value {
                    "YES" | "v2" => true,
                    _ => return Err(bad("_HLS_skip", value)),
                };
            }
            _ => {}
        }
    }
    if q.part.is_some() && q.msn.is_none() {
        return Err(QueryError::PartWithoutMsn);
    }
    Ok(q)
}

fn bad(key: &'static str, value: &str) -> QueryError {
    QueryError::BadValue {
        key,
        value: value.chars().take(40).collect(),
    }
}

/// A plain decimal number: ASCII digits only, no sign, no leading zeros (except "0"),
/// within u64.
pub fn number(s: &str) -> Option<u64> {
    if s.is_empty()
        || s.len() > MAX_DIGITS
        || !s.bytes().all(|b| b.is_ascii_digit())
        || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// What to do with a blocking playlist request, given the current snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Answer now with this snapshot.
    Ready,
    /// Hold until a later snapshot satisfies it.
    Wait,
    /// 400 [S §6.2.5.2].
    Reject(Reject),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("_HLS_msn={msn} is more than two past the last segment ({last})")]
    MsnTooFar { msn: u64, last: u64 },
    #[error("_HLS_part={part} of segment {msn} is beyond the advance part limit ({limit} parts)")]
    PartTooFar { msn: u64, part: u32, limit: u64 },
}

/// The Advance Part Limit [S §6.2.5.2]: three divided by the part target (in seconds)
/// when it is under one second, else three.
pub fn advance_part_limit(part_target: Duration) -> u64 {
    let ms = part_target.as_millis().max(1);
    if ms < 1000 {
        3000_u128.div_ceil(ms) as u64
    } else {
        3
    }
}

/// The highest MSN the playlist lists (complete, or pending with a part); with nothing
/// listed yet, the one before the first.
fn last_listed_msn(p: &MediaPlaylist) -> u64 {
    let pending = p
        .pending
        .as_ref()
        .filter(|s| !s.parts.is_empty())
        .map(|s| s.msn);
    pending
        .or(p.segments.last().map(|s| s.msn))
        .unwrap_or(p.media_sequence.saturating_sub(1))
}

/// Decides a blocking request `_HLS_msn=msn[&_HLS_part=part]` on snapshot `p`.
pub fn decide(p: &MediaPlaylist, msn: u64, part: Option<u32>) -> Decision {
    // With EXT-X-ENDLIST the parameters are ignored; an already satisfied request (an old
    // MSN included) is answered at once [S §6.2.5.2].
    if p.ended || request_satisfied(p, msn, part) {
        return Decision::Ready;
    }
    let last = last_listed_msn(p);
    if msn > last.saturating_add(2) {
        return Decision::Reject(Reject::MsnTooFar { msn, last });
    }
    if let Some(part) = part {
        let limit = advance_part_limit(p.part_target);
        // How many parts past the last one the request is, at least.
        let ahead = match last_part(p) {
            Some((lm, lp)) if msn == lm => u64::from(part.saturating_sub(lp)),
            Some((lm, _)) if msn < lm => 0,
            _ => u64::from(part) + 1,
        };
        if ahead > limit {
            return Decision::Reject(Reject::PartTooFar { msn, part, limit });
        }
    }
    Decision::Wait
}

/// What to do with a request for a part the store does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartDecision {
    /// The hinted part (or the one right after it): hold until it exists.
    Wait,
    /// It does not exist and is not about to: 404.
    NotFound,
}

/// [S §4.4.5.3, §6.2.6]: a GET of the part named by EXT-X-PRELOAD-HINT blocks until the
/// part is complete; so does the part right after it (the next index, or part 0 of the
/// next segment), which a client one part ahead may ask for; two or more beyond: 404.
pub fn part_decision(p: &MediaPlaylist, msn: u64, index: u32) -> PartDecision {
    let Some((hm, hi)) = preload_hint(p) else {
        return PartDecision::NotFound;
    };
    let next = (msn == hm && (index == hi || Some(index) == hi.checked_add(1)))
        || (Some(msn) == hm.checked_add(1) && index == 0);
    if next {
        PartDecision::Wait
    } else {
        PartDecision::NotFound
    }
}

/// Why a wait ended without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitEnd {
    /// Held for the longest allowed time (3 x TD): 503 [S §6.2.5.2].
    Timeout,
    /// The server is shutting down: 503.
    Shutdown,
}

/// The longest a request may be held: three target durations [S §6.2.5.2].
pub fn max_hold(p: &MediaPlaylist) -> Duration {
    Duration::from_secs(3 * u64::from(p.target_duration.max(1)))
}

/// Waits on `rx` until `check` returns `Some` for a snapshot, `deadline` passes, or
/// `shutdown` fires, all in one `select!`. `check` sees the current snapshot first, then
/// every new one. Dropping the future (the client went away) ends the wait at once.
pub async fn wait_for<T>(
    mut rx: watch::Receiver<Arc<Snapshot>>,
    deadline: Instant,
    shutdown: &CancellationToken,
    mut check: impl FnMut(&Arc<Snapshot>) -> Option<T>,
) -> Result<T, WaitEnd> {
    loop {
        let snapshot = rx.borrow_and_update().clone();
        if let Some(t) = check(&snapshot) {
            return Ok(t);
        }
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    // The rendition's sender is gone: nothing will change any more.
                    return Err(WaitEnd::Shutdown);
                }
            }
            () = tokio::time::sleep_until(deadline) => return Err(WaitEnd::Timeout),
            () = shutdown.cancelled() => return Err(WaitEnd::Shutdown),
        }
    }
}

#[cfg(test)]
#[path = "blocking_tests.rs"]
mod tests;

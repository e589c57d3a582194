//! Decisions on hand-built playlists: one TD of 1 s, parts of 200 ms (five per segment).
use std::time::{Duration, SystemTime};

use packager::playlist::{Part, PendingSegment, Segment};

use super::*;

fn parts(n: u32) -> Vec<Part> {
    (0..n)
        .map(|index| Part {
            index,
            duration: Duration::from_millis(200),
            independent: index == 0,
        })
        .collect()
}

/// Complete segments `first..=last` (five parts each) and a pending segment with
/// `pending` parts.
fn playlist(first: u64, last: u64, pending: u32) -> MediaPlaylist {
    MediaPlaylist {
        target_duration: 1,
        part_target: Duration::from_millis(200),
        media_sequence: first,
        discontinuity_sequence: 0,
        segments: (first..=last)
            .map(|msn| Segment {
                msn,
                duration: Duration::from_secs(1),
                program_date_time: SystemTime::UNIX_EPOCH,
                discontinuity: false,
                init_version: 0,
                parts: parts(5),
                gap: false,
            })
            .collect(),
        pending: Some(PendingSegment {
            msn: last + 1,
            program_date_time: None,
            discontinuity: false,
            init_version: 0,
            parts: parts(pending),
        }),
        ended: false,
        independent_segments: true,
        can_skip_until: None,
    }
}

#[test]
fn query_parsing() {
    let ok = |q: &str| parse_query(Some(q)).expect(q);
    assert_eq!(ok(""), PlaylistQuery::default());
    assert_eq!(
        ok("_HLS_msn=12&_HLS_part=3&_HLS_skip=YES"),
        PlaylistQuery {
            msn: Some(12),
            part: Some(3),
            skip: true
        }
    );
    assert!(ok("_HLS_skip=v2").skip);
    assert_eq!(ok("_HLS_msn=0").msn, Some(0));
    assert_eq!(ok("foo=bar&_HLS_msn=5").msn, Some(5));
    assert_eq!(ok("_HLS_msn=18446744073709551615").msn, Some(u64::MAX));
    assert_eq!(parse_query(None), Ok(PlaylistQuery::default()));

    let err = |q: &str| parse_query(Some(q)).expect_err(q);
    assert_eq!(err("_HLS_part=1"), QueryError::PartWithoutMsn);
    for q in [
        "_HLS_msn=-1",
        "_HLS_msn=+1",
        "_HLS_msn=1.5",
        "_HLS_msn=abc",
        "_HLS_msn=",
        "_HLS_msn",
        "_HLS_msn=01",
        "_HLS_msn=18446744073709551616",
        "_HLS_msn=99999999999999999999999999",
        "_HLS_msn=1&_HLS_part=4294967296",
        "_HLS_msn=1&_HLS_part=-3",
        "_HLS_skip=NO",
        "_HLS_skip=yes",
        "_HLS_skip=",
        "_HLS_msn=%31",
    ] {
        assert!(matches!(err(q), QueryError::BadValue { .. }), "{q}");
    }
    assert_eq!(
        err("_HLS_msn=1&_HLS_msn=2"),
        QueryError::Repeated { key: "_HLS_msn" }
    );
    assert_eq!(
        err("_HLS_skip=YES&_HLS_skip=YES"),
        QueryError::Repeated { key: "_HLS_skip" }
    );
}

#[test]
fn advance_part_limits() {
    assert_eq!(advance_part_limit(Duration::from_millis(200)), 15);
    assert_eq!(advance_part_limit(Duration::from_millis(334)), 9);
    assert_eq!(advance_part_limit(Duration::from_millis(1000)), 3);
    assert_eq!(advance_part_limit(Duration::from_millis(2000)), 3);
}

#[test]
fn satisfied_requests_are_ready() {
    // Segments 3..=10 complete, segment 11 has parts 0 and 1.
    let p = playlist(3, 10, 2);
    assert_eq!(decide(&p, 10, None), Decision::Ready);
    assert_eq!(decide(&p, 11, Some(1)), Decision::Ready);
    assert_eq!(decide(&p, 11, Some(0)), Decision::Ready);
    // P past the last part of a complete segment: part 0 of the next, which exists.
    assert_eq!(decide(&p, 10, Some(7)), Decision::Ready);
    // Older than the window: at once.
    assert_eq!(decide(&p, 1, None), Decision::Ready);
    assert_eq!(decide(&p, 0, Some(3)), Decision::Ready);
}

#[test]
fn future_requests_wait() {
    let p = playlist(3, 10, 2);
    assert_eq!(decide(&p, 11, Some(2)), Decision::Wait);
    assert_eq!(decide(&p, 11, None), Decision::Wait);
    assert_eq!(decide(&p, 12, None), Decision::Wait);
    assert_eq!(decide(&p, 12, Some(0)), Decision::Wait);
    assert_eq!(decide(&p, 13, None), Decision::Wait);
    // A segment with no parts yet: P past its end is part 0 of the next.
    let q = playlist(3, 10, 0);
    assert_eq!(decide(&q, 10, Some(5)), Decision::Wait);
    assert_eq!(decide(&q, 10, Some(4)), Decision::Ready);
}

#[test]
fn too_far_is_rejected() {
    let p = playlist(3, 10, 2);
    // Last listed MSN is 11 (pending with parts): 14 is more than two past it.
    assert!(matches!(
        decide(&p, 14, None),
        Decision::Reject(Reject::MsnTooFar { msn: 14, last: 11 })
    ));
    assert!(matches!(decide(&p, u64::MAX, Some(0)), Decision::Reject(_)));
    // Advance Part Limit 15 parts at 200 ms: part 1 + 16 = 17 is too far, 16 is not.
    assert_eq!(decide(&p, 11, Some(16)), Decision::Wait);
    assert!(matches!(
        decide(&p, 11, Some(17)),
        Decision::Reject(Reject::PartTooFar { .. })
    ));
    assert!(matches!(
        decide(&p, 12, Some(u32::MAX)),
        Decision::Reject(Reject::PartTooFar { .. })
    ));
    // Nothing listed yet: MEDIA-SEQUENCE 1, the first parts may be waited for.
    let mut empty = playlist(1, 0, 0);
    empty.segments.clear();
    empty.pending.as_mut().expect("pending").msn = 1;
    assert_eq!(decide(&empty, 1, Some(0)), Decision::Wait);
    assert_eq!(decide(&empty, 2, None), Decision::Wait);
    assert!(matches!(decide(&empty, 3, None), Decision::Reject(_)));
}

#[test]
fn ended_ignores_parameters() {
    let mut p = playlist(3, 10, 0);
    p.pending = None;
    p.ended = true;
    assert_eq!(decide(&p, 11, Some(3)), Decision::Ready);
    assert_eq!(decide(&p, 1000, None), Decision::Ready);
    assert_eq!(part_decision(&p, 11, 0), PartDecision::NotFound);
}

#[test]
fn preload_hint_parts() {
    // Hint is (11, 2).
    let p = playlist(3, 10, 2);
    assert_eq!(part_decision(&p, 11, 2), PartDecision::Wait);
    assert_eq!(part_decision(&p, 11, 3), PartDecision::Wait);
    assert_eq!(part_decision(&p, 12, 0), PartDecision::Wait);
    assert_eq!(part_decision(&p, 11, 4), PartDecision::NotFound);
    assert_eq!(part_decision(&p, 12, 1), PartDecision::NotFound);
    assert_eq!(part_decision(&p, 13, 0), PartDecision::NotFound);
    // Behind the hint and not in the store: gone or never existed.
    assert_eq!(part_decision(&p, 10, 7), PartDecision::NotFound);
    assert_eq!(part_decision(&p, 11, 0), PartDecision::NotFound);
}

#[test]
fn hold_limit_is_three_target_durations() {
    let mut p = playlist(1, 2, 0);
    assert_eq!(max_hold(&p), Duration::from_secs(3));
    p.target_duration = 2;
    assert_eq!(max_hold(&p), Duration::from_secs(6));
}

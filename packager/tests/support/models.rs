//! Hand-built playlist models and check helpers shared by the playlist tests. Include
//! with `#[path]` next to `support/llhls.rs` (as `mod llhls`).
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use packager::playlist::{
    MediaPlaylist, Part, PendingSegment, RenderOptions, Segment, render_media,
};

use super::llhls::{self, CheckOptions, Rule, Violation};

/// 2026-11-24T22:33:17Z.
pub const T0: u64 = 1_795_559_597;

pub fn at_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0) + Duration::from_millis(ms)
}

pub fn parts(n: u32, each: Duration) -> Vec<Part> {
    (0..n)
        .map(|index| Part {
            index,
            duration: each,
            independent: index == 0,
        })
        .collect()
}

/// A steady live stream: TD 2 s, parts of 200 ms, ten per segment; `n` complete segments
/// from MSN 1 and a pending segment with `pending` parts; delta updates offered (12 s).
pub fn steady(n: u64, pending: u32) -> MediaPlaylist {
    let part = Duration::from_millis(200);
    let segments = (0..n)
        .map(|i| Segment {
            msn: 1 + i,
            duration: Duration::from_secs(2),
            program_date_time: at_ms(2000 * i),
            discontinuity: false,
            init_version: 0,
            parts: parts(10, part),
            gap: false,
        })
        .collect();
    MediaPlaylist {
        target_duration: 2,
        part_target: part,
        media_sequence: 1,
        discontinuity_sequence: 0,
        segments,
        pending: Some(PendingSegment {
            msn: 1 + n,
            program_date_time: Some(at_ms(2000 * n)),
            discontinuity: false,
            init_version: 0,
            parts: parts(pending, part),
        }),
        ended: false,
        independent_segments: true,
        can_skip_until: Some(Duration::from_secs(12)),
    }
}

pub fn strict() -> CheckOptions {
    CheckOptions {
        pdt_tolerance_ms: 2,
        ..CheckOptions::default()
    }
}

pub fn full(p: &MediaPlaylist) -> String {
    render_media(p, &RenderOptions::default())
}

pub fn delta(p: &MediaPlaylist) -> String {
    render_media(
        p,
        &RenderOptions {
            skip: true,
            ..RenderOptions::default()
        },
    )
}

pub fn rules(violations: &[Violation]) -> Vec<Rule> {
    let mut r: Vec<Rule> = violations.iter().map(|v| v.rule).collect();
    r.dedup();
    r
}

#[track_caller]
pub fn assert_clean(text: &str) {
    let found = llhls::check(text, &strict());
    assert!(found.is_empty(), "{found:#?}\n{text}");
}

#[track_caller]
pub fn assert_flags(text: &str, rule: Rule) {
    let found = llhls::check(text, &strict());
    assert!(
        found.iter().any(|v| v.rule == rule),
        "expected {rule:?}, got {found:#?}\n{text}"
    );
}

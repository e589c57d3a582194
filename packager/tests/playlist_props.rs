//! Property tests: random live streams (frame-grid-free part durations within the rules,
//! random GOP-length segments, discontinuities with PDT jumps and new init segments,
//! windows, skip boundaries, ended or not) rendered snapshot by snapshot, after every
//! part. Every snapshot must pass the independent checker, every delta update merged
//! into the previous playlist must equal the full one, and the whole run must keep MSN
//! and discontinuity numbering stable.
#[path = "support/llhls.rs"]
mod llhls;
#[path = "support/models.rs"]
mod models;

use std::time::{Duration, UNIX_EPOCH};

use models::{T0, full, strict};
use packager::playlist::{
    MediaPlaylist, Part, PendingSegment, RenderOptions, RenditionReport, Segment, render_media,
    skipped_segments,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// One generated segment: part durations (ns), independence, discontinuity, PDT jump.
#[derive(Clone, Debug)]
struct GenSegment {
    parts: Vec<(u64, bool)>,
    discontinuity: bool,
    new_init: bool,
    pdt_jump_ms: i64,
}

#[derive(Clone, Debug)]
struct Stream {
    td: u32,
    pt_ns: u64,
    window: usize,
    ms0: u64,
    ds0: u64,
    skip: bool,
    end: bool,
    segments: Vec<GenSegment>,
}

fn stream() -> impl Strategy<Value = Stream> {
    (1u32..=4, 100u64..=1000, any::<u32>()).prop_flat_map(|(td, pt_ms, ns)| {
        // PT with sub-millisecond noise, so it does not fit five decimals.
        let pt_ns =
            (pt_ms * 1_000_000 + u64::from(ns % 1_000_000)).min(u64::from(td) * 1_000_000_000);
        let max_parts = (u64::from(td) * 1_000_000_000 / pt_ns).max(1) as usize;
        // Shortest regular part: 0.85 x the written (truncated) PT plus one unit of
        // truncation, so the text meets the 85% rule.
        let pt_text = pt_ns / 10_000 * 10_000;
        let min_ns = (pt_text * 85).div_ceil(100) + 10_000;
        // Mostly segments close to the target duration, as a segmenter cuts them; now and
        // then a short one (a discontinuity or an early keyframe cut it).
        let near_full = (max_parts * 2 / 3).max(1);
        let count = prop_oneof![4 => near_full..=max_parts, 1 => 1..=max_parts];
        let segment = (
            count,
            prop::collection::vec((min_ns..=pt_ns, any::<bool>()), max_parts),
            1u64..=pt_ns,
            prop::bool::weighted(0.15),
            any::<bool>(),
            -5_000i64..5_000,
        )
            .prop_map(|(n, regular, last, disc, new_init, jump)| {
                let mut parts: Vec<(u64, bool)> = regular[..n].to_vec();
                parts[0].1 = true; // video: every segment starts on an IDR
                if n > 1 {
                    parts[n - 1].0 = last;
                }
                GenSegment {
                    parts,
                    discontinuity: disc,
                    new_init: disc && new_init,
                    pdt_jump_ms: jump,
                }
            });
        (
            Just(td),
            Just(pt_ns),
            // Windows mostly long enough for delta updates to skip something.
            prop_oneof![3 => 8usize..=14, 1 => 3usize..=7],
            1u64..=1000,
            0u64..=5,
            prop::bool::weighted(0.75),
            any::<bool>(),
            prop::collection::vec(segment, 2..=28),
        )
            .prop_map(
                |(td, pt_ns, window, ms0, ds0, skip, end, segments)| Stream {
                    td,
                    pt_ns,
                    window,
                    ms0,
                    ds0,
                    skip,
                    end,
                    segments,
                },
            )
    })
}

/// The playlist after `published` parts (and, when `ended`, the final playlist).
fn snapshot(s: &Stream, published: usize, ended: bool) -> MediaPlaylist {
    let mut complete = Vec::new();
    let mut pending: Option<PendingSegment> = None;
    let mut left = published;
    let mut pdt = UNIX_EPOCH + Duration::from_secs(T0);
    let mut init = 0u32;
    for (i, g) in s.segments.iter().enumerate() {
        if g.discontinuity && i > 0 {
            let jump = Duration::from_millis(g.pdt_jump_ms.unsigned_abs());
            pdt = if g.pdt_jump_ms < 0 {
                pdt - jump
            } else {
                pdt + jump
            };
        }
        if g.new_init {
            init += 1;
        }
        let msn = s.ms0 + i as u64;
        let take = left.min(g.parts.len());
        left -= take;
        let parts: Vec<Part> = g.parts[..take]
            .iter()
            .enumerate()
            .map(|(index, (ns, independent))| Part {
                index: index as u32,
                duration: Duration::from_nanos(*ns),
                independent: *independent,
            })
            .collect();
        if take == g.parts.len() {
            let duration = parts.iter().map(|p| p.duration).sum();
            complete.push(Segment {
                msn,
                duration,
                program_date_time: pdt,
                discontinuity: g.discontinuity && i > 0,
                init_version: init,
                parts,
                gap: false,
            });
            pdt += duration;
            continue;
        }
        pending = Some(PendingSegment {
            msn,
            program_date_time: (take > 0).then_some(pdt),
            discontinuity: g.discontinuity && i > 0,
            init_version: init,
            parts,
        });
        break;
    }
    if pending.is_none() && !ended {
        pending = Some(PendingSegment {
            msn: s.ms0 + complete.len() as u64,
            program_date_time: None,
            discontinuity: false,
            init_version: init,
            parts: Vec::new(),
        });
    }
    // The window: the last `window` complete segments; removed discontinuities count.
    let drop = complete.len().saturating_sub(s.window);
    let removed: Vec<Segment> = complete.drain(..drop).collect();
    let ds = s.ds0 + removed.iter().filter(|x| x.discontinuity).count() as u64;
    MediaPlaylist {
        target_duration: s.td,
        part_target: Duration::from_nanos(s.pt_ns),
        media_sequence: s.ms0 + drop as u64,
        discontinuity_sequence: ds,
        segments: complete,
        pending,
        ended,
        independent_segments: true,
        can_skip_until: s.skip.then(|| Duration::from_secs(6 * u64::from(s.td))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_streams_meet_every_rule(s in stream()) {
        let total: usize = s.segments.iter().map(|g| g.parts.len()).sum();
        let mut fulls = Vec::new();
        let mut prev_full: Option<String> = None;
        let report = [RenditionReport { uri: "../audio/index.m3u8".into(), last_msn: 3, last_part: 1 }];
        for published in 0..=total {
            let p = snapshot(&s, published, false);
            let opts = RenderOptions { skip: false, reports: &report };
            let f = render_media(&p, &opts);
            let found = llhls::check(&f, &strict());
            prop_assert!(found.is_empty(), "{found:#?}\n{f}");
            let d = render_media(&p, &RenderOptions { skip: true, ..opts });
            if skipped_segments(&p) > 0 {
                // Merged into this instant's full playlist, or into the previous one
                // (one part older, as a client polling at the live edge has).
                for previous in [Some(&f), prev_full.as_ref()].into_iter().flatten() {
                    let found = llhls::check_delta(previous, &d, &f, &strict());
                    prop_assert!(found.is_empty(), "{found:#?}\n{d}\n---\n{f}");
                }
            } else {
                prop_assert_eq!(&d, &f);
            }
            prev_full = Some(f.clone());
            fulls.push(f);
        }
        if s.end {
            let p = snapshot(&s, total, true);
            let f = full(&p);
            let found = llhls::check(&f, &strict());
            prop_assert!(found.is_empty(), "{found:#?}\n{f}");
            fulls.push(f);
        }
        let refs: Vec<&str> = fulls.iter().map(String::as_str).collect();
        let found = llhls::check_sequence(&refs);
        prop_assert!(found.is_empty(), "{found:#?}");
    }
}

/// The generator is worth running: a good share of its streams reach a delta update that
/// skips something, and a discontinuity and an init change inside the window.
#[test]
fn the_generator_exercises_deltas_and_discontinuities() {
    let mut runner = TestRunner::deterministic();
    let (n, mut skips, mut discontinuities, mut inits) = (200, 0, 0, 0);
    for _ in 0..n {
        let s = stream().new_tree(&mut runner).expect("a stream").current();
        let total: usize = s.segments.iter().map(|g| g.parts.len()).sum();
        let last = snapshot(&s, total, false);
        skips += usize::from(skipped_segments(&last) > 0);
        discontinuities += usize::from(last.segments.iter().any(|x| x.discontinuity));
        inits += usize::from(last.segments.iter().any(|x| x.init_version > 0));
    }
    assert!(skips * 6 >= n, "{skips} of {n} streams skip");
    assert!(discontinuities * 3 >= n, "{discontinuities} of {n}");
    assert!(inits * 5 >= n, "{inits} of {n}");
}

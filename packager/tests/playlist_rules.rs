//! The playlist renderers against the LL-HLS rule book (LLHLS.md), checked by an
//! independent checker (`support/llhls.rs`) and by `m3u8-rs`'s parser:
//!
//! - the checker itself: each rule flagged on a deliberately broken string;
//! - the renderer: each rule a broken model breaks is flagged, correct models pass;
//! - delta updates, position helpers (LAST-MSN/LAST-PART, hint, blocking);
//! - the multivariant playlist parsed back with `m3u8-rs`.
//!
//! The property tests over random streams are in `playlist_props.rs`.
#[path = "support/llhls.rs"]
mod llhls;
#[path = "support/models.rs"]
mod models;

use std::time::{Duration, UNIX_EPOCH};

use llhls::Rule;
use models::*;
use packager::playlist::{
    AudioRendition, MediaPlaylist, Multivariant, Part, PendingSegment, RenderOptions,
    RenditionReport, Segment, Variant, last_part, preload_hint, render_media, render_multivariant,
    rendition_report, request_satisfied, skipped_segments,
};

// ---------------------------------------------------------------------------------------
// Exact output
// ---------------------------------------------------------------------------------------

#[test]
fn renders_the_expected_text() {
    // Four segments of 1 s (TD 1, PT 0.5): parts only for the two starting within 3 s
    // of the end; a discontinuity with a new init segment; durations that do not fit five
    // decimals (truncated); a pending segment; a report.
    let half = Duration::from_millis(500);
    let odd = Duration::from_nanos(466_666_667);
    let seg = |msn: u64, ms: u64, d: Duration, ps: Vec<Part>| Segment {
        msn,
        duration: d,
        program_date_time: at_ms(ms),
        discontinuity: false,
        init_version: 0,
        parts: ps,
        gap: false,
    };
    let mut odd_parts = parts(2, half);
    odd_parts[1].duration = odd;
    let mut s6 = seg(6, 10_250, Duration::from_secs(1), parts(2, half));
    s6.discontinuity = true;
    s6.init_version = 1;
    let p = MediaPlaylist {
        target_duration: 1,
        part_target: half,
        media_sequence: 3,
        discontinuity_sequence: 1,
        segments: vec![
            seg(3, 123, Duration::from_secs(1), parts(2, half)),
            seg(4, 1123, Duration::from_secs(1), parts(2, half)),
            seg(5, 2123, half + odd, odd_parts),
            s6,
        ],
        pending: Some(PendingSegment {
            msn: 7,
            program_date_time: Some(at_ms(11_250)),
            discontinuity: false,
            init_version: 1,
            parts: parts(1, half),
        }),
        ended: false,
        independent_segments: true,
        can_skip_until: None,
    };
    let reports = [RenditionReport {
        uri: "../audio/index.m3u8".into(),
        last_msn: 7,
        last_part: 0,
    }];
    let text = render_media(
        &p,
        &RenderOptions {
            skip: true, // ignored: no CAN-SKIP-UNTIL
            reports: &reports,
        },
    );
    let want = "\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.50000
#EXT-X-PART-INF:PART-TARGET=0.50000
#EXT-X-MEDIA-SEQUENCE:3
#EXT-X-DISCONTINUITY-SEQUENCE:1
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-24T22:33:17.123Z
#EXTINF:1.00000,
3.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-24T22:33:18.123Z
#EXTINF:1.00000,
4.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-24T22:33:19.123Z
#EXT-X-PART:DURATION=0.50000,URI=\"5.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.46666,URI=\"5.1.m4s\"
#EXTINF:0.96666,
5.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init-1.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-24T22:33:27.250Z
#EXT-X-PART:DURATION=0.50000,URI=\"6.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI=\"6.1.m4s\"
#EXTINF:1.00000,
6.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-24T22:33:28.250Z
#EXT-X-PART:DURATION=0.50000,URI=\"7.0.m4s\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"7.1.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN=7,LAST-PART=0
";
    assert_eq!(text, want);
    assert_clean(&text);
    // Same model, same bytes.
    assert_eq!(
        text,
        render_media(
            &p.clone(),
            &RenderOptions {
                skip: false,
                reports: &reports
            }
        )
    );
}

#[test]
fn part_target_is_truncated_and_durations_still_fit_textually() {
    // A part target that five decimals cannot hold: 0.2002001 s.
    let pt = Duration::from_nanos(200_200_100);
    let mut p = steady(3, 2);
    p.part_target = pt;
    for s in &mut p.segments {
        s.parts.iter_mut().for_each(|x| x.duration = pt);
        s.duration = pt * 10;
    }
    p.segments.iter_mut().enumerate().for_each(|(i, s)| {
        s.program_date_time = UNIX_EPOCH + Duration::from_secs(T0) + pt * 10 * i as u32;
    });
    p.pending
        .as_mut()
        .unwrap()
        .parts
        .iter_mut()
        .for_each(|x| x.duration = pt);
    p.pending.as_mut().unwrap().program_date_time =
        Some(UNIX_EPOCH + Duration::from_secs(T0) + pt * 30);
    let text = full(&p);
    assert!(
        text.contains("#EXT-X-PART-INF:PART-TARGET=0.20020\n"),
        "{text}"
    );
    assert!(text.contains("PART-HOLD-BACK=0.60060"), "{text}");
    assert!(text.contains("#EXT-X-PART:DURATION=0.20020,"), "{text}");
    assert!(text.contains("#EXTINF:2.00200,"), "{text}");
    assert_clean(&text);
}

// ---------------------------------------------------------------------------------------
// The checker on broken strings: every rule can fail
// ---------------------------------------------------------------------------------------

/// A correct playlist with a pending segment, a discontinuity + new init, delta updates
/// offered, a report; then broken copies of it, one per rule.
fn base_text() -> String {
    let mut p = steady(12, 3);
    p.segments[10].discontinuity = true;
    p.segments[10].init_version = 1;
    p.pending.as_mut().unwrap().init_version = 1;
    let reports = [RenditionReport {
        uri: "../audio/index.m3u8".into(),
        last_msn: 13,
        last_part: 2,
    }];
    render_media(
        &p,
        &RenderOptions {
            skip: false,
            reports: &reports,
        },
    )
}

fn replace_line(text: &str, starts: &str, with: &str) -> String {
    let mut hit = false;
    let mut out = String::new();
    for line in text.lines() {
        if !hit && line.starts_with(starts) {
            hit = true;
            if with.is_empty() {
                continue;
            }
            out.push_str(with);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    assert!(hit, "no line starts with {starts:?}");
    out
}

#[test]
fn the_base_playlist_is_clean() {
    let text = base_text();
    assert_clean(&text);
    // And m3u8-rs, a parser we did not write, reads the same segments.
    let Ok(m3u8_rs::Playlist::MediaPlaylist(m)) = m3u8_rs::parse_playlist_res(text.as_bytes())
    else {
        panic!("m3u8-rs could not parse\n{text}");
    };
    assert_eq!(m.target_duration, 2);
    assert_eq!(m.media_sequence, 1);
    assert_eq!(m.discontinuity_sequence, 0);
    assert!(m.independent_segments);
    assert_eq!(m.segments.len(), 12);
    for (i, s) in m.segments.iter().enumerate() {
        assert_eq!(s.uri, format!("{}.m4s", i + 1));
        assert!((s.duration - 2.0).abs() < 1e-6);
        assert_eq!(s.discontinuity, i == 10);
        let pdt = s.program_date_time.expect("PDT on every segment");
        assert_eq!(pdt.timestamp_millis(), (T0 * 1000 + 2000 * i as u64) as i64);
    }
    assert_eq!(
        m.segments[0].map.as_ref().map(|x| x.uri.as_str()),
        Some("init.mp4")
    );
    assert_eq!(
        m.segments[10].map.as_ref().map(|x| x.uri.as_str()),
        Some("init-1.mp4")
    );
}

#[test]
fn the_checker_flags_each_broken_rule() {
    let base = base_text();
    let cases: Vec<(&str, String, Rule)> = vec![
        ("no #EXTM3U", replace_line(&base, "#EXTM3U", ""), Rule::Syntax),
        ("URI without EXTINF", base.replace("#EXTINF:2.00000,\n3.m4s", "3.m4s"), Rule::Syntax),
        ("bad attribute list", replace_line(&base, "#EXT-X-PART:", "#EXT-X-PART:DURATION=0.2,URI=\"1.0.m4s"), Rule::Syntax),
        ("no version", replace_line(&base, "#EXT-X-VERSION", ""), Rule::Version),
        ("version 5 with MAP", replace_line(&base, "#EXT-X-VERSION", "#EXT-X-VERSION:5"), Rule::Version),
        ("fractional TD", replace_line(&base, "#EXT-X-TARGETDURATION", "#EXT-X-TARGETDURATION:2.5"), Rule::TargetDuration),
        ("EXTINF rounds above TD", base.replacen("#EXTINF:2.00000,", "#EXTINF:2.50000,", 1), Rule::ExtinfOverTarget),
        ("no PART-INF", replace_line(&base, "#EXT-X-PART-INF", ""), Rule::PartInf),
        ("part above PT", base.replacen("DURATION=0.20000,URI=\"12.3.m4s\"", "DURATION=0.20001,URI=\"12.3.m4s\"", 1), Rule::PartOverTarget),
        ("short middle part", base.replacen("DURATION=0.20000,URI=\"12.3.m4s\"", "DURATION=0.16999,URI=\"12.3.m4s\"", 1), Rule::PartTooShort),
        ("no SERVER-CONTROL", replace_line(&base, "#EXT-X-SERVER-CONTROL", ""), Rule::ServerControl),
        ("no blocking reload", base.replace("CAN-BLOCK-RELOAD=YES,", ""), Rule::ServerControl),
        ("PART-HOLD-BACK < 3 PT", base.replace("PART-HOLD-BACK=0.60000", "PART-HOLD-BACK=0.59999"), Rule::PartHoldBack),
        ("CAN-SKIP-UNTIL < 6 TD", base.replace("CAN-SKIP-UNTIL=12.00000", "CAN-SKIP-UNTIL=11.99999"), Rule::CanSkipUntil),
        ("MEDIA-SEQUENCE 0", base.replace("#EXT-X-MEDIA-SEQUENCE:1\n", "#EXT-X-MEDIA-SEQUENCE:0\n"), Rule::MediaSequence),
        ("no DISCONTINUITY-SEQUENCE", replace_line(&base, "#EXT-X-DISCONTINUITY-SEQUENCE", ""), Rule::DiscontinuitySequence),
        ("PLAYLIST-TYPE while live", base.replace("#EXT-X-INDEPENDENT-SEGMENTS\n", "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-PLAYLIST-TYPE:EVENT\n"), Rule::PlaylistType),
        ("no MAP", replace_line(&base, "#EXT-X-MAP:URI=\"init.mp4\"", ""), Rule::Map),
        ("no hint", replace_line(&base, "#EXT-X-PRELOAD-HINT", ""), Rule::PreloadHint),
        ("two hints", base.replace("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"13.3.m4s\"\n", "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"13.3.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"13.4.m4s\"\n"), Rule::PreloadHint),
        ("hint skips a part", base.replace("URI=\"13.3.m4s\"", "URI=\"13.4.m4s\""), Rule::PreloadHint),
        ("hint after ENDLIST", base.replace("#EXT-X-PRELOAD-HINT", "#EXT-X-ENDLIST\n#EXT-X-PRELOAD-HINT"), Rule::PreloadHint),
        ("first part dependent", base.replace("URI=\"12.0.m4s\",INDEPENDENT=YES", "URI=\"12.0.m4s\""), Rule::Independent),
        ("parts of an old segment", base.replace("#EXTINF:2.00000,\n2.m4s", "#EXT-X-PART:DURATION=2.00000,URI=\"2.0.m4s\",INDEPENDENT=YES\n#EXTINF:2.00000,\n2.m4s"), Rule::PartsTooOld),
        ("recent segment without parts", drop_lines(&base, "URI=\"11."), Rule::PartsMissing),
        ("parts do not add up", base.replacen("#EXTINF:2.00000,\n12.m4s", "#EXTINF:1.90000,\n12.m4s", 1), Rule::PartsSum),
        ("segment URI off by one", base.replace("\n5.m4s\n", "\n6.m4s\n"), Rule::Uri),
        ("part URI off by one", base.replace("\"12.3.m4s\"", "\"12.4.m4s\""), Rule::Uri),
        ("PDT without millis", base.replacen(".000Z", "Z", 1), Rule::ProgramDateTime),
        ("PDT without zone", base.replacen(".000Z", ".000", 1), Rule::ProgramDateTime),
        ("PDT impossible date", base.replacen("2026-11-24", "2026-11-31", 1), Rule::ProgramDateTime),
        ("segment without PDT", replace_line(&base, "#EXT-X-PROGRAM-DATE-TIME:2026-11-24T22:33:19", ""), Rule::ProgramDateTime),
        ("PDT jump without discontinuity", base.replace("22:33:19.000Z", "22:33:19.500Z"), Rule::PdtGap),
        ("report without LAST-PART", base.replace(",LAST-PART=2", ""), Rule::RenditionReport),
        ("absolute report URI", base.replace("../audio/index.m3u8", "http://x/audio/index.m3u8"), Rule::RenditionReport),
        ("SKIP without CAN-SKIP-UNTIL", delta_text().replace(",CAN-SKIP-UNTIL=12.00000", ""), Rule::Skip),
        ("version 6 with SKIP", delta_text().replace("#EXT-X-VERSION:9", "#EXT-X-VERSION:6"), Rule::Version),
        ("no MAP after SKIP", drop_lines(&delta_text(), "#EXT-X-MAP:URI=\"init.mp4\""), Rule::Map),
        ("delta skips too little", skip_fewer(&delta_text()), Rule::Skip),
    ];
    for (name, text, rule) in cases {
        let found = llhls::check(&text, &strict());
        assert!(
            found.iter().any(|v| v.rule == rule),
            "{name}: expected {rule:?}, got {found:#?}\n{text}"
        );
    }
}

/// The delta update of [`base_text`]'s stream.
fn delta_text() -> String {
    delta(&steady(12, 3))
}

fn drop_lines(text: &str, containing: &str) -> String {
    let out: Vec<&str> = text.lines().filter(|l| !l.contains(containing)).collect();
    assert!(
        out.len() < text.lines().count(),
        "nothing contains {containing:?}"
    );
    out.join("\n") + "\n"
}

/// A delta update that skips one segment fewer, listing the last skipped one again.
fn skip_fewer(delta: &str) -> String {
    // steady(12, 3) skips 1..=7; put segment 7 back.
    let pdt = "#EXT-X-PROGRAM-DATE-TIME:2026-11-24T22:33:29.000Z\n#EXTINF:2.00000,\n7.m4s\n";
    delta
        .replace("SKIPPED-SEGMENTS=7", "SKIPPED-SEGMENTS=6")
        .replace(
            "#EXT-X-MAP:URI=\"init.mp4\"\n",
            &format!("#EXT-X-MAP:URI=\"init.mp4\"\n{pdt}"),
        )
}

#[test]
fn the_checker_accepts_a_zone_offset_and_more_digits() {
    let base = base_text();
    let text = base.replace("T22:33:17.000Z", "T23:33:17.000000+01:00");
    assert_ne!(text, base);
    assert_clean(&text);
    assert_eq!(
        llhls::parse_date_time("2026-11-24T23:33:17.123+01:00"),
        llhls::parse_date_time("2026-11-24T22:33:17.123Z")
    );
    assert_eq!(llhls::parse_date_time("1970-01-01T00:00:00.000Z"), Ok(0));
    assert_eq!(
        llhls::parse_date_time("2000-03-01T00:00:00.000Z"),
        Ok(951_868_800_000)
    );
}

// ---------------------------------------------------------------------------------------
// The renderer: broken models are caught, good ones pass
// ---------------------------------------------------------------------------------------

#[test]
fn broken_models_render_to_flagged_playlists() {
    type Breaker = fn(&mut MediaPlaylist);
    let cases: Vec<(&str, Breaker, Rule)> = vec![
        (
            "segment over TD",
            |p| p.segments[3].duration = Duration::from_millis(2500),
            Rule::ExtinfOverTarget,
        ),
        (
            "part over PT",
            |p| p.segments[11].parts[4].duration = Duration::from_millis(201),
            Rule::PartOverTarget,
        ),
        (
            "short middle part",
            |p| p.segments[11].parts[4].duration = Duration::from_millis(160),
            Rule::PartTooShort,
        ),
        (
            "short pending part",
            |p| p.pending.as_mut().unwrap().parts[1].duration = Duration::from_millis(160),
            Rule::PartTooShort,
        ),
        (
            "media sequence 0",
            |p| {
                p.media_sequence = 0;
                for (i, s) in p.segments.iter_mut().enumerate() {
                    s.msn = i as u64
                }
                p.pending.as_mut().unwrap().msn = 12;
            },
            Rule::MediaSequence,
        ),
        (
            "dependent first part",
            |p| p.segments[11].parts[0].independent = false,
            Rule::Independent,
        ),
        (
            "dependent first pending part",
            |p| p.pending.as_mut().unwrap().parts[0].independent = false,
            Rule::Independent,
        ),
        (
            "recent segment lost its parts",
            |p| p.segments[10].parts.clear(),
            Rule::PartsMissing,
        ),
        (
            "parts do not add up",
            |p| p.segments[11].duration = Duration::from_millis(1900),
            Rule::PartsSum,
        ),
        (
            "PDT jump, no discontinuity",
            |p| p.segments[6].program_date_time += Duration::from_millis(700),
            Rule::PdtGap,
        ),
        (
            "pending PDT off",
            |p| p.pending.as_mut().unwrap().program_date_time = Some(at_ms(0)),
            Rule::PdtGap,
        ),
        (
            "skip boundary below 6 TD",
            |p| p.can_skip_until = Some(Duration::from_secs(11)),
            Rule::CanSkipUntil,
        ),
        (
            "part indices with a hole",
            |p| p.segments[11].parts[5].index = 6,
            Rule::Uri,
        ),
        ("msn out of order", |p| p.segments[5].msn = 60, Rule::Uri),
    ];
    for (name, brk, rule) in cases {
        let mut p = steady(12, 3);
        assert_clean(&full(&p));
        brk(&mut p);
        let text = full(&p);
        let found = llhls::check(&text, &strict());
        assert!(
            found.iter().any(|v| v.rule == rule),
            "{name}: expected {rule:?}, got {found:#?}\n{text}"
        );
    }
}

#[test]
fn good_models_pass() {
    type Maker = fn() -> MediaPlaylist;
    let cases: Vec<(&str, Maker)> = vec![
        ("first segment, nothing yet", || steady(0, 0)),
        ("first part", || steady(0, 1)),
        ("segment just completed", || steady(5, 0)),
        ("short window, no skip offered", || {
            let mut p = steady(4, 2);
            p.can_skip_until = None;
            p
        }),
        ("ended", || {
            let mut p = steady(12, 0);
            p.pending = None;
            p.ended = true;
            p
        }),
        ("PDT jump with discontinuity", || {
            let mut p = steady(12, 3);
            p.segments[6].discontinuity = true;
            for s in &mut p.segments[6..] {
                s.program_date_time -= Duration::from_secs(30);
            }
            let pend = p.pending.as_mut().unwrap();
            pend.program_date_time = pend.program_date_time.map(|t| t - Duration::from_secs(30));
            p
        }),
        ("discontinuity on the pending segment", || {
            let mut p = steady(12, 2);
            let pend = p.pending.as_mut().unwrap();
            pend.discontinuity = true;
            pend.init_version = 3;
            pend.program_date_time = Some(at_ms(99_999));
            p
        }),
        ("short last part and short independent part", || {
            let mut p = steady(12, 3);
            let s = &mut p.segments[11];
            s.parts[9].duration = Duration::from_millis(20);
            s.parts[5].duration = Duration::from_millis(30);
            s.parts[5].independent = true;
            s.duration = Duration::from_millis(1650);
            p.pending.as_mut().unwrap().program_date_time = Some(at_ms(22_000 + 1650));
            p
        }),
        ("audio: every part independent", || {
            let mut p = steady(12, 3);
            p.segments
                .iter_mut()
                .flat_map(|s| &mut s.parts)
                .for_each(|x| x.independent = true);
            p.independent_segments = false;
            p
        }),
    ];
    for (name, make) in cases {
        let p = make();
        for text in [full(&p), delta(&p)] {
            let found = llhls::check(&text, &strict());
            assert!(found.is_empty(), "{name}: {found:#?}\n{text}");
        }
    }
}

#[test]
fn no_hint_and_an_endlist_once_ended() {
    let mut p = steady(12, 0);
    p.pending = None;
    p.ended = true;
    let text = full(&p);
    assert!(text.contains("\n#EXT-X-ENDLIST\n"));
    assert!(!text.contains("PRELOAD-HINT"));
    assert_eq!(preload_hint(&p), None);
    assert_clean(&text);
}

#[test]
fn the_hint_names_the_next_part_even_across_a_segment_boundary() {
    // Pending with parts: the next index of the pending segment.
    assert_eq!(preload_hint(&steady(3, 4)), Some((4, 4)));
    assert!(full(&steady(3, 4)).contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"4.4.m4s\"\n"));
    // The pending segment has nothing yet: its part 0, though the last listed part is 3.9.
    assert_eq!(preload_hint(&steady(3, 0)), Some((4, 0)));
    assert!(full(&steady(3, 0)).contains("URI=\"4.0.m4s\""));
    // No pending segment in the model (not ended): part 0 of the next MSN.
    let mut p = steady(3, 0);
    p.pending = None;
    assert_eq!(preload_hint(&p), Some((4, 0)));
    assert_clean(&full(&p));
}

#[test]
fn parts_are_listed_for_the_last_three_target_durations() {
    // 12 segments of 2 s, 3 pending parts (0.6 s): the end is 24.6 s after segment 1's
    // start; segments starting within 6 s of it (11 at 20 s, 12 at 22 s) list their parts.
    let text = full(&steady(12, 3));
    for msn in 1..=12u64 {
        let listed = text.contains(&format!("URI=\"{msn}.0.m4s\""));
        assert_eq!(listed, msn >= 11, "segment {msn}\n{text}");
    }
    // With the pending segment empty the end is 24 s: segment 10 starts exactly 6 s
    // before it and is still listed.
    let text = full(&steady(12, 0));
    assert!(text.contains("URI=\"10.0.m4s\""));
    assert!(!text.contains("URI=\"9.0.m4s\""));
}

// ---------------------------------------------------------------------------------------
// Delta updates
// ---------------------------------------------------------------------------------------

#[test]
fn delta_skips_exactly_the_segments_past_the_boundary() {
    // End at 24.6 s; segment i starts at 2(i-1): skippable when 24.6 - 2(i-1) > 12,
    // i.e. segments 1..=7.
    let p = steady(12, 3);
    assert_eq!(skipped_segments(&p), 7);
    let text = delta(&p);
    assert!(text.contains("#EXT-X-VERSION:9\n"));
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:1\n"));
    assert!(text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=7\n#EXT-X-MAP:URI=\"init.mp4\"\n"));
    assert!(
        !text.contains("\n7.m4s\n") && text.contains("\n8.m4s\n"),
        "{text}"
    );
    // Pending parts count toward the end: with none, 24 - 2(i-1) > 12 gives 1..=6.
    assert_eq!(skipped_segments(&steady(12, 0)), 6);
    // The full playlist carries the same version.
    assert!(full(&p).contains("#EXT-X-VERSION:9\n"));
    let found = llhls::check_delta(&full(&p), &text, &full(&p), &strict());
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn delta_is_ignored_without_a_skip_boundary_or_anything_to_skip() {
    let mut p = steady(12, 3);
    p.can_skip_until = None;
    assert_eq!(delta(&p), full(&p));
    assert!(full(&p).contains("#EXT-X-VERSION:6\n"));
    assert!(!full(&p).contains("CAN-SKIP-UNTIL"));
    // Offered but nothing old enough yet: the full playlist.
    let p = steady(5, 3);
    assert_eq!(skipped_segments(&p), 0);
    assert_eq!(delta(&p), full(&p));
}

#[test]
fn delta_keeps_discontinuity_numbering_and_repeats_the_current_map() {
    // Discontinuities at 3 (skipped) and 9 (kept); init changes at 3 and 9.
    let mut p = steady(12, 3);
    p.discontinuity_sequence = 4;
    for (msn, init) in [(3usize, 1u32), (9, 2)] {
        p.segments[msn - 1].discontinuity = true;
        for s in &mut p.segments[msn - 1..] {
            s.init_version = init;
        }
    }
    p.pending.as_mut().unwrap().init_version = 2;
    let f = full(&p);
    let d = delta(&p);
    assert_eq!(f.matches("#EXT-X-DISCONTINUITY\n").count(), 2);
    assert_eq!(d.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
    assert!(d.contains("#EXT-X-DISCONTINUITY-SEQUENCE:4\n"));
    // After the skip, the MAP in force (init-1, from segment 3) comes first; then init-2.
    let maps: Vec<&str> = d.lines().filter(|l| l.starts_with("#EXT-X-MAP")).collect();
    assert_eq!(
        maps,
        [
            "#EXT-X-MAP:URI=\"init-1.mp4\"",
            "#EXT-X-MAP:URI=\"init-2.mp4\""
        ]
    );
    let maps: Vec<&str> = f.lines().filter(|l| l.starts_with("#EXT-X-MAP")).collect();
    assert_eq!(maps.len(), 3);
    let found = llhls::check_delta(&f, &d, &f, &strict());
    assert!(found.is_empty(), "{found:#?}\n{d}");
    // A client merging into a playlist that lacks a skipped segment cannot.
    let older = full(&steady(2, 0));
    let found = llhls::check_delta(&older, &d, &f, &strict());
    assert!(rules(&found).contains(&Rule::DeltaMerge), "{found:#?}");
}

#[test]
fn check_delta_catches_a_wrong_delta() {
    let p = steady(12, 3);
    let (f, d) = (full(&p), delta(&p));
    // A delta whose kept segment differs from the full playlist.
    let bad = d.replace("#EXTINF:2.00000,\n9.m4s", "#EXTINF:1.99000,\n9.m4s");
    assert!(rules(&llhls::check_delta(&f, &bad, &f, &strict())).contains(&Rule::DeltaMerge));
    // A delta with a different discontinuity sequence.
    let bad = d.replace("DISCONTINUITY-SEQUENCE:0", "DISCONTINUITY-SEQUENCE:1");
    assert!(rules(&llhls::check_delta(&f, &bad, &f, &strict())).contains(&Rule::DeltaMerge));
    // A delta skipping one segment too many (segment 8 starts 10.6 s before the end).
    let bad = d
        .replace("SKIPPED-SEGMENTS=7", "SKIPPED-SEGMENTS=8")
        .replace(
            "#EXT-X-PROGRAM-DATE-TIME:2026-11-24T22:33:31.000Z\n#EXTINF:2.00000,\n8.m4s\n",
            "",
        );
    let found = llhls::check_delta(&f, &bad, &f, &strict());
    assert!(rules(&found).contains(&Rule::Skip), "{found:#?}\n{bad}");
    // A full playlist is not a delta.
    assert!(rules(&llhls::check_delta(&f, &f, &f, &strict())).contains(&Rule::Skip));
}

// ---------------------------------------------------------------------------------------
// Position helpers: LAST-MSN/LAST-PART, blocking reload
// ---------------------------------------------------------------------------------------

#[test]
fn last_part_and_reports() {
    assert_eq!(last_part(&steady(0, 0)), None);
    assert_eq!(rendition_report("../a/index.m3u8", &steady(0, 0)), None);
    assert_eq!(last_part(&steady(0, 1)), Some((1, 0)));
    assert_eq!(last_part(&steady(3, 4)), Some((4, 3)));
    // Pending empty: the last part of the last complete segment.
    assert_eq!(last_part(&steady(3, 0)), Some((3, 9)));
    let mut ended = steady(3, 0);
    ended.pending = None;
    ended.ended = true;
    assert_eq!(last_part(&ended), Some((3, 9)));
    assert_eq!(
        rendition_report("../720p/index.m3u8", &steady(3, 4)),
        Some(RenditionReport {
            uri: "../720p/index.m3u8".into(),
            last_msn: 4,
            last_part: 3
        })
    );
    // The checker's reading of the text agrees with the model's.
    for p in [steady(3, 4), steady(3, 0), steady(0, 1), ended] {
        let (parsed, _) = llhls::parse(&full(&p));
        assert_eq!(
            parsed.last_part(),
            last_part(&p).map(|(m, i)| (m, u64::from(i)))
        );
    }
}

#[test]
fn blocking_requests() {
    let p = steady(3, 4); // segments 1..=3 (parts 0..=9), pending 4 with parts 0..=3
    let cases = [
        (3, None, true),
        (4, None, false),
        (4, Some(3), true),
        (4, Some(4), false),
        (3, Some(9), true),
        (3, Some(10), true), // past the last part of 3 means (4, 0)
        (1, Some(0), true),  // old: at once
        (5, Some(0), false),
        (5, None, false),
    ];
    for (msn, part, want) in cases {
        assert_eq!(
            request_satisfied(&p, msn, part),
            want,
            "msn {msn} part {part:?}"
        );
    }
    let p = steady(3, 0);
    assert!(!request_satisfied(&p, 3, Some(10))); // means (4, 0): not yet
    assert!(request_satisfied(&p, 3, Some(9)));
    assert!(!request_satisfied(&steady(0, 0), 1, Some(0)));
    let mut ended = steady(3, 0);
    ended.pending = None;
    ended.ended = true;
    assert!(request_satisfied(&ended, 99, Some(5)));
}

// ---------------------------------------------------------------------------------------
// Successive playlists
// ---------------------------------------------------------------------------------------

#[test]
fn check_sequence_catches_renumbering() {
    let a = steady(5, 3);
    let mut b = steady(6, 1);
    assert!(llhls::check_sequence(&[&full(&a), &full(&b)]).is_empty());
    // MSNs renumbered: the same MSN now names a different segment.
    for s in &mut b.segments {
        s.program_date_time += Duration::from_secs(2);
    }
    let found = llhls::check_sequence(&[&full(&a), &full(&b)]);
    assert!(rules(&found).contains(&Rule::Sequence), "{found:#?}");
    // Discontinuity sequence going down.
    let mut a2 = steady(5, 3);
    a2.discontinuity_sequence = 2;
    let found = llhls::check_sequence(&[&full(&a2), &full(&steady(6, 1))]);
    assert!(rules(&found).contains(&Rule::Sequence), "{found:#?}");
    // A removed segment's discontinuity not counted in DISCONTINUITY-SEQUENCE.
    let mut a3 = steady(5, 3);
    a3.segments[1].discontinuity = true;
    let mut b3 = steady(6, 1);
    b3.segments.remove(0);
    b3.segments.remove(0);
    b3.media_sequence = 3;
    let found = llhls::check_sequence(&[&full(&a3), &full(&b3)]);
    assert!(rules(&found).contains(&Rule::Sequence), "{found:#?}");
    b3.discontinuity_sequence = 1;
    assert!(llhls::check_sequence(&[&full(&a3), &full(&b3)]).is_empty());
    // Going backwards.
    let found = llhls::check_sequence(&[&full(&steady(6, 1)), &full(&steady(5, 3))]);
    assert!(rules(&found).contains(&Rule::Sequence), "{found:#?}");
}

// ---------------------------------------------------------------------------------------
// Multivariant
// ---------------------------------------------------------------------------------------

fn multivariant() -> Multivariant {
    Multivariant {
        variants: vec![
            Variant {
                name: "source".into(),
                bandwidth: 6_400_000,
                average_bandwidth: 5_100_000,
                codecs: vec!["avc1.64001F".into(), "mp4a.40.2".into()],
                resolution: Some((1280, 720)),
                frame_rate: Some(30_000.0 / 1001.0),
            },
            Variant {
                name: "360p".into(),
                bandwidth: 900_000,
                average_bandwidth: 700_000,
                codecs: vec!["avc1.42C01E".into(), "mp4a.40.2".into()],
                resolution: Some((640, 360)),
                frame_rate: Some(25.0),
            },
        ],
        audio: Some(AudioRendition {
            name: "audio".into(),
            group_id: "audio".into(),
            language: Some("en".into()),
            channels: 2,
            codec: "mp4a.40.2".into(),
        }),
        independent_segments: true,
    }
}

#[test]
fn multivariant_parses_back_with_m3u8_rs() {
    let m = multivariant();
    let text = render_multivariant(&m);
    assert!(text.starts_with("#EXTM3U\n"));
    assert!(text.contains(",FRAME-RATE=29.970,"), "{text}");
    assert!(text.contains(",FRAME-RATE=25.000,"), "{text}");
    // No media playlist tags in a multivariant playlist.
    for tag in [
        "#EXT-X-TARGETDURATION",
        "#EXTINF",
        "#EXT-X-MEDIA-SEQUENCE",
        "#EXT-X-PART",
    ] {
        assert!(!text.contains(tag), "{tag}");
    }
    let Ok(m3u8_rs::Playlist::MasterPlaylist(parsed)) =
        m3u8_rs::parse_playlist_res(text.as_bytes())
    else {
        panic!("m3u8-rs could not parse\n{text}");
    };
    assert!(parsed.independent_segments);
    assert_eq!(parsed.alternatives.len(), 1);
    let a = &parsed.alternatives[0];
    let audio = m.audio.as_ref().unwrap();
    assert_eq!(a.media_type, m3u8_rs::AlternativeMediaType::Audio);
    assert_eq!(a.group_id, audio.group_id);
    assert_eq!(a.name, audio.name);
    assert_eq!(a.language.as_deref(), Some("en"));
    assert_eq!(a.channels.as_deref(), Some("2"));
    assert_eq!(a.uri.as_deref(), Some("audio/index.m3u8"));
    assert!(a.default && a.autoselect);
    assert_eq!(a.other_attributes, None);
    assert_eq!(parsed.variants.len(), m.variants.len());
    for (got, want) in parsed.variants.iter().zip(&m.variants) {
        assert!(!got.is_i_frame);
        assert_eq!(got.uri, format!("{}/index.m3u8", want.name));
        assert_eq!(got.bandwidth, want.bandwidth);
        assert_eq!(got.average_bandwidth, Some(want.average_bandwidth));
        assert_eq!(got.codecs.as_deref(), Some(want.codecs.join(",").as_str()));
        let (w, h) = want.resolution.unwrap();
        assert_eq!(
            got.resolution,
            Some(m3u8_rs::Resolution {
                width: u64::from(w),
                height: u64::from(h)
            })
        );
        let fps = got.frame_rate.unwrap();
        assert!((fps - want.frame_rate.unwrap()).abs() < 0.0005, "{fps}");
        assert_eq!(got.audio.as_deref(), Some("audio"));
        assert_eq!(got.other_attributes, None);
    }
    assert_eq!(text, render_multivariant(&m.clone()));
}

#[test]
fn multivariant_without_audio_or_independence() {
    let mut m = multivariant();
    m.audio = None;
    m.independent_segments = false;
    m.variants[1].resolution = None;
    m.variants[1].frame_rate = None;
    let text = render_multivariant(&m);
    assert!(
        !text.contains("EXT-X-MEDIA") && !text.contains("AUDIO="),
        "{text}"
    );
    assert!(!text.contains("INDEPENDENT-SEGMENTS"));
    let Ok(m3u8_rs::Playlist::MasterPlaylist(parsed)) =
        m3u8_rs::parse_playlist_res(text.as_bytes())
    else {
        panic!("{text}");
    };
    assert_eq!(parsed.variants[1].resolution, None);
    assert_eq!(parsed.variants[1].frame_rate, None);
    assert_eq!(parsed.variants[1].uri, "360p/index.m3u8");
}

#[test]
fn violations_display_their_rule() {
    let found = llhls::check("#EXTM3U\n", &strict());
    let text: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|t| t.starts_with("TargetDuration: ")),
        "{text:?}"
    );
}

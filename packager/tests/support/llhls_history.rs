//! The checker's rules across playlists: delta updates against full playlists, and
//! successive playlists of one rendition. Part of `llhls.rs`.
use super::{CheckOptions, Dec, Playlist, Rule, Segment, Violation, check_parsed, parse, v};

// ---------------------------------------------------------------------------------------
// Delta updates
// ---------------------------------------------------------------------------------------

/// Applies a delta update to the previous playlist, as a client does: the skipped MSNs
/// come from `previous`, the rest from `delta`. A full playlist (no EXT-X-SKIP) is
/// returned as is.
pub fn merge_delta(previous: &Playlist, delta: &Playlist) -> Result<Playlist, Violation> {
    let Some(skipped) = delta.skipped else {
        return Ok(delta.clone());
    };
    let first = delta
        .media_sequence
        .ok_or_else(|| v(Rule::DeltaMerge, "delta without EXT-X-MEDIA-SEQUENCE"))?;
    let mut merged = delta.clone();
    merged.skipped = None;
    let mut segments = Vec::new();
    for msn in first..first + skipped {
        let seg = previous
            .segments
            .iter()
            .find(|s| s.msn == msn)
            .ok_or_else(|| {
                v(
                    Rule::DeltaMerge,
                    format!("skipped segment {msn} is not in the previous playlist"),
                )
            })?;
        segments.push(seg.clone());
    }
    segments.extend(delta.segments.iter().cloned());
    merged.segments = segments;
    Ok(merged)
}

/// Checks a delta update: its own rules, that merged into `previous` it equals `fresh`
/// (the full playlist of the same instant; EXT-X-VERSION may differ), and that it skips
/// exactly the segments of `fresh` that start more than CAN-SKIP-UNTIL before the end.
pub fn check_delta(
    previous: &str,
    delta: &str,
    fresh: &str,
    opts: &CheckOptions,
) -> Vec<Violation> {
    let (prev, _) = parse(previous);
    let (d, mut out) = parse(delta);
    let (full, full_errs) = parse(fresh);
    out.extend(check_parsed(&d, opts));
    out.extend(full_errs);
    if d.skipped.is_none() {
        out.push(v(Rule::Skip, "no EXT-X-SKIP in the delta update"));
    }
    match merge_delta(&prev, &d) {
        Err(e) => out.push(e),
        Ok(mut merged) => {
            merged.version = full.version;
            out.extend(diff(&merged, &full, Rule::DeltaMerge));
        }
    }
    if let (Some(n), Some(csu)) = (
        d.skipped,
        full.server_control.as_ref().and_then(|s| s.can_skip_until),
    ) {
        let slack = Dec::micros(opts.sum_slack_us).0;
        let ages = full.start_ages();
        let surely = ages.iter().filter(|a| a.0 > csu.0 + slack).count() as u64;
        let maybe = ages.iter().filter(|a| a.0 > csu.0 - slack).count() as u64;
        if n < surely || n > maybe {
            out.push(v(
                Rule::Skip,
                format!(
                    "SKIPPED-SEGMENTS={n}, the Skip Boundary {csu} calls for {surely}..={maybe}"
                ),
            ));
        }
    }
    out
}

/// Differences between two parsed playlists, field by field.
pub fn diff(a: &Playlist, b: &Playlist, rule: Rule) -> Vec<Violation> {
    let mut out = Vec::new();
    macro_rules! field {
        ($($f:ident),*) => {$(
            if a.$f != b.$f {
                out.push(v(rule, format!("{}: {:?} != {:?}", stringify!($f), a.$f, b.$f)));
            }
        )*};
    }
    field!(
        version,
        target_duration,
        media_sequence,
        discontinuity_sequence,
        independent_segments,
        playlist_type,
        server_control,
        part_target,
        skipped,
        pending,
        hints,
        reports,
        endlist
    );
    if a.segments.len() != b.segments.len() {
        out.push(v(
            rule,
            format!("{} segments != {}", a.segments.len(), b.segments.len()),
        ));
    }
    for (x, y) in a.segments.iter().zip(&b.segments) {
        if x != y {
            out.push(v(rule, format!("segment {x:?} != {y:?}")));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Successive playlists
// ---------------------------------------------------------------------------------------

/// Checks successive full playlists of one rendition, oldest first.
pub fn check_sequence(playlists: &[&str]) -> Vec<Violation> {
    let parsed: Vec<Playlist> = playlists.iter().map(|t| parse(t).0).collect();
    check_sequence_parsed(&parsed)
}

/// [`check_sequence`] on parsed playlists (e.g. deltas already merged).
pub fn check_sequence_parsed(playlists: &[Playlist]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, pair) in playlists.windows(2).enumerate() {
        let (a, b) = (&pair[0], &pair[1]);
        let at = |s: String| format!("playlists {i}->{}: {s}", i + 1);
        if a.skipped.is_some() || b.skipped.is_some() {
            out.push(v(
                Rule::Sequence,
                at("a delta update: merge it first".into()),
            ));
            continue;
        }
        if a.target_duration != b.target_duration {
            out.push(v(
                Rule::Sequence,
                at(format!(
                    "TD {:?} -> {:?}",
                    a.target_duration, b.target_duration
                )),
            ));
        }
        if a.part_target != b.part_target || a.server_control != b.server_control {
            out.push(v(
                Rule::Sequence,
                at("PART-INF or SERVER-CONTROL changed".into()),
            ));
        }
        if b.media_sequence < a.media_sequence {
            out.push(v(
                Rule::Sequence,
                at(format!(
                    "MEDIA-SEQUENCE {:?} -> {:?}",
                    a.media_sequence, b.media_sequence
                )),
            ));
        }
        if b.discontinuity_sequence < a.discontinuity_sequence {
            out.push(v(
                Rule::Sequence,
                at(format!(
                    "DISCONTINUITY-SEQUENCE {:?} -> {:?}",
                    a.discontinuity_sequence, b.discontinuity_sequence
                )),
            ));
        }
        if a.endlist && !b.endlist {
            out.push(v(Rule::Sequence, at("EXT-X-ENDLIST went away".into())));
        }
        if b.next_msn() < a.next_msn() || b.last_part() < a.last_part() {
            out.push(v(Rule::Sequence, at("the playlist went backwards".into())));
        }
        // The same MSN names the same segment, with the same discontinuity number.
        let (da, db) = (a.discontinuity_numbers(), b.discontinuity_numbers());
        for x in &a.segments {
            let Some(y) = b.segments.iter().find(|y| y.msn == x.msn) else {
                continue;
            };
            let strip = |s: &Segment| Segment {
                parts: Vec::new(),
                ..s.clone()
            };
            if strip(x) != strip(y) {
                out.push(v(
                    Rule::Sequence,
                    at(format!("segment {} changed: {x:?} -> {y:?}", x.msn)),
                ));
            }
            if da.get(&x.msn) != db.get(&x.msn) {
                out.push(v(
                    Rule::Sequence,
                    at(format!(
                        "segment {}: discontinuity number {:?} -> {:?}",
                        x.msn,
                        da.get(&x.msn),
                        db.get(&x.msn)
                    )),
                ));
            }
        }
        // Published parts stay as they were: the pending parts of `a` start segment
        // `a.pending.msn` in `b` (when `b` still lists its parts).
        if let Some(pa) = &a.pending {
            let later = b
                .segments
                .iter()
                .chain(&b.pending)
                .find(|s| s.msn == pa.msn);
            if let Some(s) = later
                && !s.parts.is_empty()
                && !s.parts.starts_with(&pa.parts)
            {
                out.push(v(
                    Rule::Sequence,
                    at(format!("parts of segment {} changed", pa.msn)),
                ));
            }
        }
    }
    out
}

//! The media playlist renderer: a pure function from a [`MediaPlaylist`] snapshot to the
//! playlist text, full or as a Playlist Delta Update (`_HLS_skip=YES`).
//!
//! Number formats, chosen so every textual comparison a client makes holds exactly:
//! - `EXTINF` and `EXT-X-PART:DURATION` are written with five decimals, *truncated*, so a
//!   written duration never exceeds the true one.
//! - `PART-TARGET` is written with five decimals, truncated too: truncation keeps order,
//!   so a part no longer than the model's part target is written no longer than the
//!   written `PART-TARGET`, a comparison a client makes on the text [S §4.4.4.9]. Rounding
//!   `PART-TARGET` down (rather than up) also keeps its 85% floor as low as possible.
//! - `PART-HOLD-BACK` is exactly three times the written `PART-TARGET` [S §4.4.3.8, A 14.3].
//! - `EXT-X-PROGRAM-DATE-TIME` is UTC with milliseconds and a `Z` zone [S §4.4.4.6].
//!
//! The output depends on nothing but the model and the options: the same snapshot always
//! renders to the same bytes.
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::model::{MediaPlaylist, Part, PendingSegment, RenditionReport, Segment};

/// Per-request rendering options.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenderOptions<'a> {
    /// `_HLS_skip=YES` was requested: render a Playlist Delta Update when the playlist
    /// offers one (CAN-SKIP-UNTIL); ignored otherwise [S §6.2.5.1].
    pub skip: bool,
    /// One EXT-X-RENDITION-REPORT per other rendition of the stream [S §4.4.5.4].
    pub reports: &'a [RenditionReport],
}

/// EXT-X-VERSION without delta updates: EXT-X-MAP in a playlist that is not
/// I-frames-only requires version 6 [S §7]. No other tag we write needs more.
pub const VERSION: u32 = 6;
/// EXT-X-VERSION when CAN-SKIP-UNTIL is offered: EXT-X-SKIP requires version 9 [S §7].
pub const VERSION_DELTA: u32 = 9;

/// The Skip Boundary to offer for a stream, from its configuration: six target durations
/// (the minimum, [S §4.4.3.8]) when the window is long enough for a segment to ever be
/// older than that, otherwise `None` (a delta update could never skip anything).
///
/// "Long enough" keeps one target duration of slack: the window, at the segment target,
/// must hold at least seven target durations, since real segments can come out a little
/// shorter than the target.
pub fn skip_boundary(
    target_duration: u32,
    window_segments: usize,
    segment_target: Duration,
) -> Option<Duration> {
    let td = Duration::from_secs(u64::from(target_duration));
    let window = u32::try_from(window_segments)
        .ok()
        .and_then(|n| segment_target.checked_mul(n))?;
    let boundary = td.checked_mul(6)?;
    let needed = td.checked_mul(7)?;
    (target_duration > 0 && window >= needed).then_some(boundary)
}

/// URI of an init segment: `init.mp4`, then `init-<n>.mp4` after each codec change.
pub fn init_uri(init_version: u32) -> String {
    if init_version == 0 {
        "init.mp4".to_owned()
    } else {
        format!("init-{init_version}.mp4")
    }
}

/// URI of a complete segment: `<msn>.m4s`.
pub fn segment_uri(msn: u64) -> String {
    format!("{msn}.m4s")
}

/// URI of a partial segment: `<msn>.<index>.m4s`.
pub fn part_uri(msn: u64, index: u32) -> String {
    format!("{msn}.{index}.m4s")
}

/// The most recent complete part, as `(msn, part index)`: the pending segment's last part,
/// else the last part of the last complete segment. `None` before the first part.
///
/// This is the one definition of "where the playlist is" shared by
/// EXT-X-RENDITION-REPORT's LAST-MSN/LAST-PART ([S §4.4.5.4]: the MSN of the last
/// partial segment and its index) and by blocking reload ([`request_satisfied`]).
pub fn last_part(playlist: &MediaPlaylist) -> Option<(u64, u32)> {
    if let Some(pending) = &playlist.pending
        && let Some(part) = pending.parts.last()
    {
        return Some((pending.msn, part.index));
    }
    playlist
        .segments
        .last()
        .and_then(|s| s.parts.last().map(|p| (s.msn, p.index)))
}

/// The part named by EXT-X-PRELOAD-HINT: the next part the server will publish, `None` once
/// the playlist has ended [S §4.4.5.3]. `pending` is the segment being built, so the next
/// part is the pending segment's next index, even when it will be the first part of a
/// segment that has not produced anything yet.
pub fn preload_hint(playlist: &MediaPlaylist) -> Option<(u64, u32)> {
    if playlist.ended {
        return None;
    }
    Some(match &playlist.pending {
        Some(pending) => (pending.msn, pending.parts.last().map_or(0, |p| p.index + 1)),
        None => (next_msn(playlist), 0),
    })
}

/// The report another rendition's playlist carries about this one, `None` before its
/// first part.
pub fn rendition_report(
    uri: impl Into<String>,
    playlist: &MediaPlaylist,
) -> Option<RenditionReport> {
    last_part(playlist).map(|(last_msn, last_part)| RenditionReport {
        uri: uri.into(),
        last_msn,
        last_part,
    })
}

/// Whether a blocking playlist request is satisfied by this snapshot [S §6.2.5.2]:
/// - `_HLS_msn=M` alone: segment M is complete (or a later one is);
/// - `_HLS_msn=M&_HLS_part=P`: the playlist holds part P of segment M or a later part;
///   a P past the last part of a complete segment M means part 0 of M+1.
///
/// An ended playlist satisfies everything (the parameters are then ignored). Requests that
/// must be refused (too far ahead) are the caller's business.
pub fn request_satisfied(playlist: &MediaPlaylist, msn: u64, part: Option<u32>) -> bool {
    if playlist.ended {
        return true;
    }
    let Some(part) = part else {
        return playlist.segments.last().is_some_and(|s| s.msn >= msn);
    };
    // Order (msn, part) lexicographically. "P past the last part L of a complete segment
    // M means part 0 of M+1" needs no special case: the playlist holds no (M, P) with
    // P > L, so `last_part >= (M, P)` holds exactly when `last_part >= (M+1, 0)`.
    last_part(playlist).is_some_and(|have| have >= (msn, part))
}

/// The number of segments a delta update replaces with EXT-X-SKIP: the leading segments
/// that start more than the Skip Boundary before the end of the playlist [S §6.2.5.1].
/// Zero when no Skip Boundary is offered.
pub fn skipped_segments(playlist: &MediaPlaylist) -> usize {
    let Some(boundary) = playlist.can_skip_until else {
        return 0;
    };
    let ages = start_ages(playlist);
    ages.iter().take_while(|age| **age > boundary).count()
}

/// Renders the media playlist. With `options.skip` and a Skip Boundary offered, renders a
/// Playlist Delta Update; a delta that would skip nothing is rendered as the full playlist
/// (a full playlist is always an acceptable answer to `_HLS_skip=YES`).
pub fn render_media(playlist: &MediaPlaylist, options: &RenderOptions) -> String {
    let p = playlist;
    let mut out = String::with_capacity(256 + 96 * p.segments.len());

    // --- Header [S §4.4.3] ---
    out.push_str("#EXTM3U\n");
    // One version for the full playlist and its delta updates: the delta is only ever
    // requested by a client that read CAN-SKIP-UNTIL in a full playlist, and keeping the
    // headers identical makes "delta merged into the previous playlist" equal the full
    // playlist line for line. Version 9 covers EXT-X-SKIP, 6 covers EXT-X-MAP [S §7].
    let version = if p.can_skip_until.is_some() {
        VERSION_DELTA
    } else {
        VERSION
    };
    let _ = writeln!(out, "#EXT-X-VERSION:{version}");
    // An integer that never changes for the stream [S §4.4.3.1, §6.2.1].
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", p.target_duration);
    // PART-HOLD-BACK: three part targets, the SHOULD of [S §4.4.3.8] and [A 14.3]; computed
    // from the written PART-TARGET so the comparison holds on the text.
    let part_target = floor_units(p.part_target);
    out.push_str("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES");
    if let Some(boundary) = p.can_skip_until {
        // The Skip Boundary, >= 6 x TD [S §4.4.3.8]; written rounded up so it is never
        // below what the model (and the skip decision below) uses.
        out.push_str(",CAN-SKIP-UNTIL=");
        write_units(&mut out, ceil_units(boundary));
    }
    out.push_str(",PART-HOLD-BACK=");
    write_units(&mut out, part_target.saturating_mul(3));
    out.push('\n');
    out.push_str("#EXT-X-PART-INF:PART-TARGET=");
    write_units(&mut out, part_target);
    out.push('\n');
    // MSN of the first segment, starting at 1 or more (DESIGN.md: hls.js stalls on 0).
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", p.media_sequence);
    // Always present, also when zero, so a client never has to guess [S §4.4.3.3].
    let _ = writeln!(
        out,
        "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
        p.discontinuity_sequence
    );
    if p.independent_segments {
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }

    // --- Delta update [S §4.4.5.2, §6.2.5.1] ---
    // EXT-X-SKIP replaces exactly the segments starting more than the Skip Boundary before
    // the end, with every tag applying to them (their EXT-X-DISCONTINUITY included);
    // MEDIA-SEQUENCE and DISCONTINUITY-SEQUENCE keep describing the first (skipped)
    // segment, as in the full playlist, so the client's merge lines up.
    let skipped = if options.skip { skipped_segments(p) } else { 0 };
    if skipped > 0 {
        let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }

    // --- Segments ---
    // Parts are listed for the segments that start within the last three target
    // durations (and for the pending segment): enough for PART-HOLD-BACK, no more
    // [S §4.4.4.9, §6.2.2].
    let parts_window = Duration::from_secs(3 * u64::from(p.target_duration));
    let ages = start_ages(p);
    // The EXT-X-MAP in force. `None` at the top and after EXT-X-SKIP, so the current MAP
    // is written before the first listed segment: a tag replaced by EXT-X-SKIP no longer
    // applies [S §4.4.5.2]. Repeated wherever the init segment changes [S §4.4.4.5].
    let mut map: Option<u32> = None;
    for (seg, age) in p.segments.iter().zip(&ages).skip(skipped) {
        write_segment(&mut out, seg, *age <= parts_window, &mut map);
    }
    if let Some(pending) = &p.pending {
        write_pending(&mut out, pending, &mut map);
    }

    // --- Tail ---
    if p.ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    // Exactly one hint, naming the URI the next EXT-X-PART will carry; none after
    // EXT-X-ENDLIST [S §4.4.5.3].
    if let Some((msn, index)) = preload_hint(p) {
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
            part_uri(msn, index)
        );
    }
    // [S §4.4.5.4, App. B.1]: LAST-MSN/LAST-PART as computed by [`last_part`].
    for report in options.reports {
        let _ = writeln!(
            out,
            "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={},LAST-PART={}",
            report.uri, report.last_msn, report.last_part
        );
    }
    out
}

fn write_segment(out: &mut String, seg: &Segment, with_parts: bool, map: &mut Option<u32>) {
    if seg.discontinuity {
        // [S §4.4.4.3]
        out.push_str("#EXT-X-DISCONTINUITY\n");
    }
    write_map(out, seg.init_version, map);
    // Every segment carries its own date-time: the ingest wall-clock of its first sample
    // [S §4.4.4.6]; a client can then map any segment without summing EXTINFs.
    write_pdt(out, seg.program_date_time);
    if seg.gap {
        // [S §4.4.4.7]; a gap segment has no parts.
        out.push_str("#EXT-X-GAP\n");
    }
    if with_parts {
        for part in &seg.parts {
            write_part(out, seg.msn, part);
        }
    }
    // [S §4.4.4.1]: a decimal duration, truncated (see the module docs).
    out.push_str("#EXTINF:");
    write_units(out, floor_units(seg.duration));
    out.push_str(",\n");
    out.push_str(&segment_uri(seg.msn));
    out.push('\n');
}

fn write_pending(out: &mut String, pending: &PendingSegment, map: &mut Option<u32>) {
    // Segment tags apply to the next segment; with no part yet there is nothing for them
    // to apply to, and they appear with the first part.
    if pending.parts.is_empty() {
        return;
    }
    if pending.discontinuity {
        out.push_str("#EXT-X-DISCONTINUITY\n");
    }
    write_map(out, pending.init_version, map);
    if let Some(pdt) = pending.program_date_time {
        write_pdt(out, pdt);
    }
    for part in &pending.parts {
        write_part(out, pending.msn, part);
    }
}

fn write_map(out: &mut String, init_version: u32, map: &mut Option<u32>) {
    if *map != Some(init_version) {
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", init_uri(init_version));
        *map = Some(init_version);
    }
}

fn write_part(out: &mut String, msn: u64, part: &Part) {
    // [S §4.4.4.9]: DURATION truncated, so <= the true duration <= PART-TARGET.
    out.push_str("#EXT-X-PART:DURATION=");
    write_units(out, floor_units(part.duration));
    let _ = write!(out, ",URI=\"{}\"", part_uri(msn, part.index));
    if part.independent {
        out.push_str(",INDEPENDENT=YES");
    }
    out.push('\n');
}

/// For each complete segment, how long before the end of the playlist it starts. The end
/// is the end of the last listed media: the last complete segment plus the pending parts.
fn start_ages(p: &MediaPlaylist) -> Vec<Duration> {
    let pending: Duration = p
        .pending
        .iter()
        .flat_map(|s| &s.parts)
        .fold(Duration::ZERO, |a, part| a.saturating_add(part.duration));
    let mut age = pending;
    let mut ages: Vec<Duration> = p
        .segments
        .iter()
        .rev()
        .map(|s| {
            age = age.saturating_add(s.duration);
            age
        })
        .collect();
    ages.reverse();
    ages
}

fn next_msn(p: &MediaPlaylist) -> u64 {
    p.segments.last().map_or(p.media_sequence, |s| s.msn + 1)
}

/// Ten-microsecond units: the resolution of five decimals.
const UNIT_NANOS: u128 = 10_000;

fn floor_units(d: Duration) -> u128 {
    d.as_nanos() / UNIT_NANOS
}

fn ceil_units(d: Duration) -> u128 {
    d.as_nanos().div_ceil(UNIT_NANOS)
}

/// Writes `units` ten-microsecond units as seconds with five decimals.
fn write_units(out: &mut String, units: u128) {
    let _ = write!(out, "{}.{:05}", units / 100_000, units % 100_000);
}

/// `#EXT-X-PROGRAM-DATE-TIME:YYYY-MM-DDThh:mm:ss.sssZ`, UTC, milliseconds truncated.
fn write_pdt(out: &mut String, t: SystemTime) {
    out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
    out.push_str(&format_date_time(t));
    out.push('\n');
}

/// Formats a wall-clock time as ISO 8601 / RFC 3339 UTC with milliseconds, e.g.
/// `2026-11-24T22:33:17.123Z` (the date-time form of [S §4.4.4.6]).
pub fn format_date_time(t: SystemTime) -> String {
    // Whole milliseconds since the epoch, rounded toward negative infinity.
    let millis: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_millis()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos().div_ceil(1_000_000)).unwrap_or(0),
    };
    let days = millis.div_euclid(86_400_000);
    let ms_of_day = millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let secs = ms_of_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms_of_day % 1000
    )
}

/// Proleptic Gregorian date of a day count from 1970-01-01, after Howard Hinnant's
/// `civil_from_days`: shift to a calendar whose year starts in March (so the leap day
/// ends a year), split into 400-year eras of 146,097 days, then year, day of year and month.
fn civil_from_days(days: i128) -> (i128, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // March = 0 .. February = 11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    // day in [1, 31] and month in [1, 12] by construction.
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn date_time_known_instants() {
        // Values cross-checked with `date -u -d @<secs>`.
        let cases = [
            (at(0, 0), "1970-01-01T00:00:00.000Z"),
            (at(951_782_400, 999_999_999), "2000-02-29T00:00:00.999Z"),
            (at(1_795_559_597, 123_456_789), "2026-11-24T22:33:17.123Z"),
            (at(4_107_542_399, 0), "2100-02-28T23:59:59.000Z"),
            (at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z"),
            (
                UNIX_EPOCH - Duration::from_millis(1),
                "1969-12-31T23:59:59.999Z",
            ),
            (
                UNIX_EPOCH - Duration::from_nanos(1_500_000),
                "1969-12-31T23:59:59.998Z",
            ),
        ];
        for (t, want) in cases {
            assert_eq!(format_date_time(t), want, "{t:?}");
        }
    }

    #[test]
    fn civil_round_trips_every_day_of_four_centuries() {
        // Walk day by day from 1900-01-01 and compare with a naive calendar.
        let mut days = -25_567; // 1900-01-01
        for year in 1900..2300i128 {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            let lengths = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            for (m, len) in lengths.iter().enumerate() {
                for d in 1..=*len {
                    assert_eq!(civil_from_days(days), (year, m as u32 + 1, d));
                    days += 1;
                }
            }
        }
    }

    #[test]
    fn units_truncate_and_round_up() {
        let d = Duration::from_nanos(200_200_001);
        assert_eq!(floor_units(d), 20_020);
        assert_eq!(ceil_units(d), 20_021);
        let mut s = String::new();
        write_units(&mut s, 20_020);
        assert_eq!(s, "0.20020");
        s.clear();
        write_units(&mut s, 1_200_000);
        assert_eq!(s, "12.00000");
    }

    #[test]
    fn skip_boundary_needs_a_long_enough_window() {
        let two = Duration::from_secs(2);
        assert_eq!(skip_boundary(2, 12, two), Some(Duration::from_secs(12)));
        assert_eq!(skip_boundary(2, 7, two), Some(Duration::from_secs(12)));
        assert_eq!(skip_boundary(2, 6, two), None);
        assert_eq!(skip_boundary(0, 12, two), None);
        assert_eq!(skip_boundary(4, 12, two), None);
    }
}

//! The checker's parser: media playlist text to [`Playlist`], on its own (no code shared
//! with the renderer). Part of `llhls.rs`.
use std::collections::BTreeMap;

use super::{Dec, PartLine, Playlist, Rule, Segment, ServerControl, Violation, v};

// ---------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------

/// Parses an attribute list [S §4.2]: `NAME=value` pairs separated by commas, a value
/// being a quoted string or a run of characters without comma.
pub fn parse_attrs(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("attribute without '=' in {s:?}"))?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!("bad attribute name {name:?} in {s:?}"));
        }
        let (value, after) = if let Some(q) = after.strip_prefix('"') {
            let end = q
                .find('"')
                .ok_or_else(|| format!("unterminated quoted string in {s:?}"))?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if out.insert(name.to_owned(), value.to_owned()).is_some() {
            return Err(format!("attribute {name} twice in {s:?}"));
        }
        rest = match after.strip_prefix(',') {
            Some(r) if !r.is_empty() => r,
            Some(_) => return Err(format!("trailing comma in {s:?}")),
            None if after.is_empty() => "",
            None => return Err(format!("junk after a value in {s:?}")),
        };
    }
    Ok(out)
}

/// Parses `YYYY-MM-DDThh:mm:ss.sss` with at least millisecond precision and a zone (`Z`,
/// `+hh:mm`, `-hh:mm`) into milliseconds since the Unix epoch.
pub fn parse_date_time(s: &str) -> Result<i64, String> {
    let bad = |why: &str| format!("{s:?}: {why}");
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, String> {
        let part = b.get(from..from + len).ok_or_else(|| bad("too short"))?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad("expected digits"));
        }
        Ok(part.iter().fold(0i64, |a, d| a * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, c: u8| {
        if b.get(at) == Some(&c) {
            Ok(())
        } else {
            Err(bad(&format!("expected {:?} at {at}", c as char)))
        }
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    sep(4, b'-')?;
    sep(7, b'-')?;
    sep(10, b'T')?;
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    sep(13, b':')?;
    sep(16, b':')?;
    sep(19, b'.').map_err(|_| bad("no fractional seconds"))?;
    let digits = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits < 3 {
        return Err(bad("fewer than 3 fractional digits (milliseconds)"));
    }
    let millis = num(20, 3)?;
    let zone = &s[20 + digits..];
    let offset_min = match zone.as_bytes() {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), ..] => {
            let z = &zone[1..];
            let (h, m) = z
                .split_once(':')
                .or_else(|| (z.len() == 4).then(|| z.split_at(2)))
                .ok_or_else(|| bad("bad zone"))?;
            let (h, m): (i64, i64) = (
                h.parse().map_err(|_| bad("bad zone hours"))?,
                m.parse().map_err(|_| bad("bad zone minutes"))?,
            );
            if h > 23 || m > 59 {
                return Err(bad("zone out of range"));
            }
            if *sign == b'+' {
                h * 60 + m
            } else {
                -(h * 60 + m)
            }
        }
        [] => return Err(bad("no zone")),
        _ => return Err(bad("bad zone")),
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_len = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad("month out of range")),
    };
    if day < 1 || day > month_len || hour > 23 || minute > 59 || second > 60 {
        return Err(bad("field out of range"));
    }
    let days = days_from_civil(year, month, day);
    Ok((((days * 24 + hour) * 60 + minute - offset_min) * 60 + second) * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (years counted from March so the
/// leap day is last; 400-year eras of 146,097 days).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses a media playlist. Malformed input yields [`Rule::Syntax`] violations and a
/// best-effort parse.
pub fn parse(text: &str) -> (Playlist, Vec<Violation>) {
    let mut p = Playlist::default();
    let mut errs = Vec::new();
    let mut next = Segment::default();
    let mut next_touched = false;
    let mut extinf: Option<Dec> = None;
    let mut map: Option<String> = None;
    let mut seen_segment = false;
    let mut lines = text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l));
    if lines.next() != Some("#EXTM3U") {
        errs.push(v(Rule::Syntax, "first line is not #EXTM3U"));
    }
    let header = |name: &str, slot_set: bool, errs: &mut Vec<Violation>| {
        if slot_set {
            errs.push(v(Rule::Syntax, format!("{name} appears twice")));
        }
    };
    for (n, line) in lines.enumerate() {
        let at = n + 2;
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            // A segment URI.
            let Some(duration) = extinf.take() else {
                errs.push(v(
                    Rule::Syntax,
                    format!("line {at}: URI {line:?} without EXTINF"),
                ));
                continue;
            };
            next.duration = Some(duration);
            next.uri = Some(line.to_owned());
            next.map = map.clone();
            p.segments.push(std::mem::take(&mut next));
            next_touched = false;
            seen_segment = true;
            continue;
        }
        if !line.starts_with("#EXT") {
            continue; // a comment
        }
        let (tag, value) = line.split_once(':').unwrap_or((line, ""));
        let attrs =
            || parse_attrs(value).map_err(|e| v(Rule::Syntax, format!("line {at}: {tag}: {e}")));
        let int = |what: Rule| {
            value.parse::<u64>().map_err(|_| {
                v(
                    what,
                    format!("line {at}: {tag}:{value} is not a decimal-integer"),
                )
            })
        };
        let result: Result<(), Violation> = (|| {
            match tag {
                "#EXT-X-VERSION" => {
                    header(tag, p.version.is_some(), &mut errs);
                    p.version = Some(int(Rule::Version)?);
                }
                "#EXT-X-TARGETDURATION" => {
                    header(tag, p.target_duration.is_some(), &mut errs);
                    p.target_duration = Some(int(Rule::TargetDuration)?);
                }
                "#EXT-X-MEDIA-SEQUENCE" => {
                    header(tag, p.media_sequence.is_some(), &mut errs);
                    p.media_sequence = Some(int(Rule::MediaSequence)?);
                }
                "#EXT-X-DISCONTINUITY-SEQUENCE" => {
                    header(tag, p.discontinuity_sequence.is_some(), &mut errs);
                    p.discontinuity_sequence = Some(int(Rule::DiscontinuitySequence)?);
                }
                "#EXT-X-INDEPENDENT-SEGMENTS" => p.independent_segments = true,
                "#EXT-X-PLAYLIST-TYPE" => p.playlist_type = Some(value.to_owned()),
                "#EXT-X-ENDLIST" => p.endlist = true,
                "#EXT-X-SERVER-CONTROL" => {
                    header(tag, p.server_control.is_some(), &mut errs);
                    let a = attrs()?;
                    let dec = |k: &str| -> Result<Option<Dec>, Violation> {
                        a.get(k)
                            .map(|x| {
                                Dec::parse(x).ok_or_else(|| {
                                    v(Rule::ServerControl, format!("line {at}: {k}={x}"))
                                })
                            })
                            .transpose()
                    };
                    p.server_control = Some(ServerControl {
                        can_block_reload: a.get("CAN-BLOCK-RELOAD").is_some_and(|x| x == "YES"),
                        part_hold_back: dec("PART-HOLD-BACK")?,
                        can_skip_until: dec("CAN-SKIP-UNTIL")?,
                        hold_back: dec("HOLD-BACK")?,
                    });
                }
                "#EXT-X-PART-INF" => {
                    header(tag, p.part_target.is_some(), &mut errs);
                    let a = attrs()?;
                    let pt = a.get("PART-TARGET").and_then(|x| Dec::parse(x));
                    p.part_target =
                        Some(pt.ok_or_else(|| v(Rule::PartInf, format!("line {at}: {value}")))?);
                }
                "#EXT-X-SKIP" => {
                    header(tag, p.skipped.is_some(), &mut errs);
                    if seen_segment || next_touched {
                        errs.push(v(
                            Rule::Syntax,
                            format!("line {at}: EXT-X-SKIP after media"),
                        ));
                    }
                    let a = attrs()?;
                    let n = a.get("SKIPPED-SEGMENTS").and_then(|x| x.parse().ok());
                    p.skipped =
                        Some(n.ok_or_else(|| v(Rule::Skip, format!("line {at}: {value}")))?);
                    // Tags before EXT-X-SKIP applied to the skipped segments.
                    map = None;
                }
                "#EXT-X-MAP" => {
                    let a = attrs()?;
                    let uri = a
                        .get("URI")
                        .ok_or_else(|| v(Rule::Map, format!("line {at}: no URI")))?;
                    map = Some(uri.clone());
                    p.has_map = true;
                }
                "#EXT-X-DISCONTINUITY" => {
                    next.discontinuity = true;
                    next_touched = true;
                }
                "#EXT-X-PROGRAM-DATE-TIME" => {
                    next.pdt = Some((value.to_owned(), parse_date_time(value).ok()));
                    next_touched = true;
                }
                "#EXT-X-PART" => {
                    let a = attrs()?;
                    let duration = a.get("DURATION").and_then(|x| Dec::parse(x));
                    let (Some(duration), Some(uri)) = (duration, a.get("URI")) else {
                        return Err(v(
                            Rule::Syntax,
                            format!("line {at}: part without DURATION/URI"),
                        ));
                    };
                    next.parts.push(PartLine {
                        duration,
                        uri: uri.clone(),
                        independent: a.get("INDEPENDENT").is_some_and(|x| x == "YES"),
                    });
                    next_touched = true;
                }
                "#EXTINF" => {
                    let d = value.split_once(',').map_or(value, |(d, _)| d);
                    extinf =
                        Some(Dec::parse(d).ok_or_else(|| {
                            v(Rule::Syntax, format!("line {at}: EXTINF {value:?}"))
                        })?);
                }
                "#EXT-X-PRELOAD-HINT" => p.hints.push(attrs()?),
                "#EXT-X-RENDITION-REPORT" => p.reports.push(attrs()?),
                _ => {} // tags this checker has no rule about
            }
            Ok(())
        })();
        if let Err(e) = result {
            errs.push(e);
        }
    }
    if extinf.is_some() {
        errs.push(v(Rule::Syntax, "EXTINF without a URI at the end"));
    }
    if !next.parts.is_empty() {
        next.map = map.clone();
        p.pending = Some(next);
    } else if next_touched {
        errs.push(v(
            Rule::Syntax,
            "segment tags at the end apply to no segment or part",
        ));
    }
    // Assign media sequence numbers [S §4.4.3.2]; EXT-X-SKIP stands for `skipped` of them.
    let first = p.media_sequence.unwrap_or(0) + p.skipped.unwrap_or(0);
    for (i, s) in p.segments.iter_mut().enumerate() {
        s.msn = first + i as u64;
    }
    let next_msn = first + p.segments.len() as u64;
    if let Some(pending) = &mut p.pending {
        pending.msn = next_msn;
    }
    (p, errs)
}

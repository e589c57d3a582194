//! An LL-HLS media playlist checker, independent of the renderer: it parses the text
//! itself (std only, no code shared with `packager::playlist`) and returns the rules of
//! `/work/shared/LLHLS.md` that the text breaks.
//!
//! Reusable by any test crate: `#[path = "../../packager/tests/support/llhls.rs"] mod llhls;`.
//!
//! - [`check`]: one playlist (full or delta).
//! - [`check_delta`]: a delta update merged into the client's previous playlist must equal a
//!   fresh full playlist, and must skip exactly the segments past the Skip Boundary.
//! - [`check_sequence`]: successive playlists of one rendition (MSN and discontinuity
//!   numbering stable, nothing goes backwards, TD and server control constant).
//!
//! Every comparison the spec makes on written values ("DURATION <= PART-TARGET") is made
//! on the text, exactly: decimals are parsed to fixed point (12 decimals), never to `f64`.
#![allow(dead_code, unused_imports)]

use std::collections::BTreeMap;
use std::fmt;

#[path = "llhls_history.rs"]
mod history;
#[path = "llhls_parse.rs"]
mod parse;

pub use history::{check_delta, check_sequence, check_sequence_parsed, diff, merge_delta};
pub use parse::{parse, parse_attrs, parse_date_time};

/// One rule of LLHLS.md (with the spec section it comes from).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// Not a well-formed playlist: no `#EXTM3U`, a bad attribute list, a URI without
    /// EXTINF, a duplicated header tag, tags applying to nothing.
    Syntax,
    /// EXT-X-VERSION missing or too low for the tags used (6 for EXT-X-MAP, 9 for
    /// EXT-X-SKIP) [S §7].
    Version,
    /// EXT-X-TARGETDURATION missing or not an integer [S §4.4.3.1].
    TargetDuration,
    /// An EXTINF that rounds to more than the target duration [S §4.4.3.1].
    ExtinfOverTarget,
    /// EXT-X-PART-INF missing or malformed [S §4.4.3.7].
    PartInf,
    /// A part DURATION greater than PART-TARGET [S §4.4.4.9].
    PartOverTarget,
    /// A part shorter than 85% of PART-TARGET that is neither INDEPENDENT=YES nor the
    /// last part of its segment [S §4.4.4.9].
    PartTooShort,
    /// EXT-X-SERVER-CONTROL missing or without CAN-BLOCK-RELOAD=YES [S §4.4.3.8].
    ServerControl,
    /// PART-HOLD-BACK missing or below 3 x PART-TARGET [S §4.4.3.8, A 14.3].
    PartHoldBack,
    /// CAN-SKIP-UNTIL below 6 x TD [S §4.4.3.8].
    CanSkipUntil,
    /// EXT-X-MEDIA-SEQUENCE missing or below 1 (LLHLS.md).
    MediaSequence,
    /// EXT-X-DISCONTINUITY-SEQUENCE missing (LLHLS.md).
    DiscontinuitySequence,
    /// EXT-X-PLAYLIST-TYPE on a live playlist.
    PlaylistType,
    /// A segment or part with no EXT-X-MAP in force [S §4.4.4.5].
    Map,
    /// Not exactly one EXT-X-PRELOAD-HINT:TYPE=PART naming the next part, or a hint after
    /// EXT-X-ENDLIST [S §4.4.5.3].
    PreloadHint,
    /// The first part of a segment without INDEPENDENT=YES.
    Independent,
    /// Parts listed for a segment starting more than ~3 TD before the end [S §4.4.4.9].
    PartsTooOld,
    /// No parts listed for a segment starting within the last ~3 TD of a live playlist.
    PartsMissing,
    /// A segment's listed parts do not add up to its EXTINF [S §3.2].
    PartsSum,
    /// URIs not in the `<msn>.m4s` / `<msn>.<part>.m4s` scheme of DESIGN.md, or not
    /// matching the segment's media sequence number.
    Uri,
    /// EXT-X-PROGRAM-DATE-TIME missing on a segment, or without milliseconds and a zone.
    ProgramDateTime,
    /// PDT(n+1) - PDT(n) differs from EXTINF(n) with no discontinuity between.
    PdtGap,
    /// EXT-X-RENDITION-REPORT without a relative URI, LAST-MSN or LAST-PART [S §4.4.5.4].
    RenditionReport,
    /// EXT-X-SKIP misused: without CAN-SKIP-UNTIL, or not replacing exactly the segments
    /// past the Skip Boundary [S §4.4.5.2, §6.2.5.1].
    Skip,
    /// A delta update merged into the previous playlist differs from the full playlist.
    DeltaMerge,
    /// Successive playlists disagree: MSN or discontinuity numbering moved, something
    /// went backwards, TD or server control changed [S §6.2.1, §6.2.2].
    Sequence,
}

/// A broken rule and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.rule, self.detail)
    }
}

fn v(rule: Rule, detail: impl Into<String>) -> Violation {
    Violation {
        rule,
        detail: detail.into(),
    }
}

/// Knobs for checks whose thresholds are approximate in the rule book.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// How far PDT(n+1) - PDT(n) may stray from EXTINF(n), in milliseconds.
    pub pdt_tolerance_ms: i64,
    /// Parts are expected for the segments starting within this many target durations
    /// of the end, and only for those.
    pub parts_window_tds: u32,
    /// Slack on every comparison of summed durations (five-decimal truncation adds up),
    /// in microseconds.
    pub sum_slack_us: i64,
    /// The first part of every segment must be INDEPENDENT=YES.
    pub require_independent_first_part: bool,
    /// URIs follow DESIGN.md: `<msn>.m4s` and `<msn>.<part>.m4s`.
    pub check_uris: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            pdt_tolerance_ms: 100,
            parts_window_tds: 3,
            sum_slack_us: 1_000,
            require_independent_first_part: true,
            check_uris: true,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fixed-point decimals
// ---------------------------------------------------------------------------------------

const PICO: i128 = 1_000_000_000_000;

/// A non-negative decimal number of seconds, exact to 12 decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dec(pub i128);

impl Dec {
    pub fn parse(s: &str) -> Option<Dec> {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty()
            || frac.len() > 12
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || int.len() > 15
        {
            return None;
        }
        let mut value: i128 = int.parse().ok()?;
        value *= PICO;
        let mut scale = PICO / 10;
        for b in frac.bytes() {
            value += i128::from(b - b'0') * scale;
            scale /= 10;
        }
        Some(Dec(value))
    }
    pub fn secs(n: u64) -> Dec {
        Dec(i128::from(n) * PICO)
    }
    pub fn micros(n: i64) -> Dec {
        Dec(i128::from(n) * 1_000_000)
    }
    pub fn millis(self) -> i128 {
        self.0 / 1_000_000_000
    }
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:012}", self.0 / PICO, self.0 % PICO)
    }
}

// ---------------------------------------------------------------------------------------
// Parsed form
// ---------------------------------------------------------------------------------------

/// A media playlist as a client understands it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Playlist {
    pub version: Option<u64>,
    pub target_duration: Option<u64>,
    pub media_sequence: Option<u64>,
    pub discontinuity_sequence: Option<u64>,
    pub independent_segments: bool,
    pub playlist_type: Option<String>,
    pub server_control: Option<ServerControl>,
    pub part_target: Option<Dec>,
    /// EXT-X-SKIP:SKIPPED-SEGMENTS.
    pub skipped: Option<u64>,
    /// Complete segments (with EXTINF and URI), MSNs assigned.
    pub segments: Vec<Segment>,
    /// Parts after the last complete segment.
    pub pending: Option<Segment>,
    pub hints: Vec<BTreeMap<String, String>>,
    pub reports: Vec<BTreeMap<String, String>>,
    pub endlist: bool,
    /// Any EXT-X-MAP tag appears.
    pub has_map: bool,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct ServerControl {
    pub can_block_reload: bool,
    pub part_hold_back: Option<Dec>,
    pub can_skip_until: Option<Dec>,
    pub hold_back: Option<Dec>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Segment {
    pub msn: u64,
    /// EXTINF (`None` for the pending segment).
    pub duration: Option<Dec>,
    pub uri: Option<String>,
    pub discontinuity: bool,
    /// The EXT-X-MAP URI in force.
    pub map: Option<String>,
    /// EXT-X-PROGRAM-DATE-TIME text and its value in ms since the epoch (`None` when the
    /// text is malformed).
    pub pdt: Option<(String, Option<i64>)>,
    pub parts: Vec<PartLine>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PartLine {
    pub duration: Dec,
    pub uri: String,
    pub independent: bool,
}

impl Playlist {
    /// Total listed media: complete segments plus pending parts.
    fn end(&self) -> Dec {
        let segs: i128 = self
            .segments
            .iter()
            .map(|s| s.duration.unwrap_or_default().0)
            .sum();
        let pending: i128 = self
            .pending
            .iter()
            .flat_map(|p| &p.parts)
            .map(|p| p.duration.0)
            .sum();
        Dec(segs + pending)
    }

    /// For each complete segment, how long before the end of the playlist it starts.
    pub fn start_ages(&self) -> Vec<Dec> {
        let mut age = self.end().0
            - self
                .segments
                .iter()
                .map(|s| s.duration.unwrap_or_default().0)
                .sum::<i128>();
        let mut ages: Vec<Dec> = self
            .segments
            .iter()
            .rev()
            .map(|s| {
                age += s.duration.unwrap_or_default().0;
                Dec(age)
            })
            .collect();
        ages.reverse();
        ages
    }

    /// MSN the next segment will get.
    pub fn next_msn(&self) -> u64 {
        self.segments.last().map_or(
            self.media_sequence.unwrap_or(0) + self.skipped.unwrap_or(0),
            |s| s.msn + 1,
        )
    }

    /// The last listed part as (msn, index): the basis of LAST-MSN/LAST-PART.
    pub fn last_part(&self) -> Option<(u64, u64)> {
        if let Some(p) = &self.pending
            && !p.parts.is_empty()
        {
            return Some((p.msn, p.parts.len() as u64 - 1));
        }
        self.segments
            .iter()
            .rev()
            .find(|s| !s.parts.is_empty())
            .map(|s| (s.msn, s.parts.len() as u64 - 1))
    }

    /// The discontinuity sequence number of each complete segment, by MSN (hls.js's
    /// reading: DISCONTINUITY-SEQUENCE plus the EXT-X-DISCONTINUITY tags up to and
    /// including the segment).
    pub fn discontinuity_numbers(&self) -> BTreeMap<u64, u64> {
        let mut n = self.discontinuity_sequence.unwrap_or(0);
        self.segments
            .iter()
            .map(|s| {
                n += u64::from(s.discontinuity);
                (s.msn, n)
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Rules on one playlist
// ---------------------------------------------------------------------------------------

/// Parses `text` and checks every rule that one playlist can show.
pub fn check(text: &str, opts: &CheckOptions) -> Vec<Violation> {
    let (p, mut out) = parse(text);
    out.extend(check_parsed(&p, opts));
    out
}

/// The rules of one parsed playlist.
pub fn check_parsed(p: &Playlist, opts: &CheckOptions) -> Vec<Violation> {
    let mut out = Vec::new();
    let slack = Dec::micros(opts.sum_slack_us);

    // Version [S §7].
    let need = if p.skipped.is_some() {
        9
    } else if p.has_map {
        6
    } else {
        1
    };
    match p.version {
        Some(have) if have >= need => {}
        have => out.push(v(
            Rule::Version,
            format!("EXT-X-VERSION {have:?}, tags need {need}"),
        )),
    }

    // Target duration, EXTINF [S §4.4.3.1].
    let td = p.target_duration;
    match td {
        None => out.push(v(Rule::TargetDuration, "no EXT-X-TARGETDURATION")),
        Some(td) => {
            // Rounds to <= TD  <=>  EXTINF < TD + 0.5.
            let limit = Dec(Dec::secs(td).0 + PICO / 2);
            for s in &p.segments {
                if let Some(d) = s.duration
                    && d >= limit
                {
                    out.push(v(
                        Rule::ExtinfOverTarget,
                        format!("msn {}: EXTINF {d} > TD {td}", s.msn),
                    ));
                }
            }
        }
    }

    // Server control [S §4.4.3.8].
    let pt = p.part_target;
    if pt.is_none() {
        out.push(v(Rule::PartInf, "no EXT-X-PART-INF:PART-TARGET"));
    }
    match &p.server_control {
        None => out.push(v(Rule::ServerControl, "no EXT-X-SERVER-CONTROL")),
        Some(sc) => {
            if !sc.can_block_reload {
                out.push(v(Rule::ServerControl, "no CAN-BLOCK-RELOAD=YES"));
            }
            match (sc.part_hold_back, pt) {
                (None, _) => out.push(v(Rule::PartHoldBack, "no PART-HOLD-BACK")),
                (Some(phb), Some(pt)) if phb.0 < 3 * pt.0 => out.push(v(
                    Rule::PartHoldBack,
                    format!("PART-HOLD-BACK {phb} < 3 x PART-TARGET {pt}"),
                )),
                _ => {}
            }
            if let (Some(csu), Some(td)) = (sc.can_skip_until, td)
                && csu < Dec::secs(6 * td)
            {
                out.push(v(
                    Rule::CanSkipUntil,
                    format!("CAN-SKIP-UNTIL {csu} < 6 x TD {td}"),
                ));
            }
        }
    }

    // Sequence numbers, playlist type.
    match p.media_sequence {
        Some(ms) if ms >= 1 => {}
        ms => out.push(v(
            Rule::MediaSequence,
            format!("EXT-X-MEDIA-SEQUENCE {ms:?}"),
        )),
    }
    if p.discontinuity_sequence.is_none() {
        out.push(v(
            Rule::DiscontinuitySequence,
            "no EXT-X-DISCONTINUITY-SEQUENCE",
        ));
    }
    if p.playlist_type.is_some() && !p.endlist {
        out.push(v(
            Rule::PlaylistType,
            "EXT-X-PLAYLIST-TYPE on a live playlist",
        ));
    }

    // Per segment and part.
    let all: Vec<&Segment> = p.segments.iter().chain(&p.pending).collect();
    for s in &all {
        let pending = s.duration.is_none();
        let what = if pending {
            "pending segment"
        } else {
            "segment"
        };
        if s.map.is_none() {
            out.push(v(
                Rule::Map,
                format!("{what} {}: no EXT-X-MAP in force", s.msn),
            ));
        }
        if let Some(pt) = pt {
            for (i, part) in s.parts.iter().enumerate() {
                if part.duration > pt {
                    out.push(v(
                        Rule::PartOverTarget,
                        format!(
                            "{}: DURATION {} > PART-TARGET {pt}",
                            part.uri, part.duration
                        ),
                    ));
                }
                let last_of_segment = !pending && i + 1 == s.parts.len();
                if !part.independent && !last_of_segment && part.duration.0 * 100 < pt.0 * 85 {
                    out.push(v(
                        Rule::PartTooShort,
                        format!(
                            "{}: DURATION {} < 0.85 x PART-TARGET {pt}",
                            part.uri, part.duration
                        ),
                    ));
                }
            }
        }
        if opts.require_independent_first_part
            && let Some(first) = s.parts.first()
            && !first.independent
        {
            out.push(v(
                Rule::Independent,
                format!("{}: first part not INDEPENDENT=YES", first.uri),
            ));
        }
        if opts.check_uris {
            if let Some(uri) = &s.uri
                && *uri != format!("{}.m4s", s.msn)
            {
                out.push(v(Rule::Uri, format!("segment {}: URI {uri}", s.msn)));
            }
            for (i, part) in s.parts.iter().enumerate() {
                if part.uri != format!("{}.{i}.m4s", s.msn) {
                    out.push(v(
                        Rule::Uri,
                        format!("segment {} part {i}: URI {}", s.msn, part.uri),
                    ));
                }
            }
        }
        if let (Some(d), false) = (s.duration, s.parts.is_empty()) {
            let sum: i128 = s.parts.iter().map(|x| x.duration.0).sum();
            let tolerance = 10_000_000 * (s.parts.len() as i128 + 1); // 1e-5 s per value
            if (sum - d.0).abs() > tolerance {
                out.push(v(
                    Rule::PartsSum,
                    format!("segment {}: parts sum {} != EXTINF {d}", s.msn, Dec(sum)),
                ));
            }
        }
        match &s.pdt {
            None if !pending => out.push(v(
                Rule::ProgramDateTime,
                format!("segment {}: no PROGRAM-DATE-TIME", s.msn),
            )),
            Some((text, None)) => {
                let why = parse_date_time(text).err().unwrap_or_default();
                out.push(v(Rule::ProgramDateTime, format!("{what} {}: {why}", s.msn)));
            }
            _ => {}
        }
    }
    // PDT(n+1) - PDT(n) ~ EXTINF(n), except across a discontinuity.
    for pair in all.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if let (Some((_, Some(ta))), Some((_, Some(tb))), Some(d), false) =
            (&a.pdt, &b.pdt, a.duration, b.discontinuity)
        {
            // In microseconds: PDT has milliseconds, EXTINF more.
            let gap = i128::from(*tb - *ta) * 1000 - d.0 / 1_000_000;
            if gap.abs() > i128::from(opts.pdt_tolerance_ms) * 1000 {
                out.push(v(
                    Rule::PdtGap,
                    format!(
                        "PDT({}) - PDT({}) differs from EXTINF {d} by {gap} us",
                        b.msn, a.msn
                    ),
                ));
            }
        }
    }

    // Parts only for the last ~3 TD, and present there while live [S §4.4.4.9].
    if let Some(td) = td {
        let window = Dec::secs(u64::from(opts.parts_window_tds) * td);
        for (s, age) in p.segments.iter().zip(p.start_ages()) {
            if !s.parts.is_empty() && age.0 > window.0 + slack.0 {
                out.push(v(
                    Rule::PartsTooOld,
                    format!("segment {} starts {age} s before the end", s.msn),
                ));
            }
            if s.parts.is_empty() && !p.endlist && age.0 < window.0 - slack.0 {
                out.push(v(
                    Rule::PartsMissing,
                    format!("segment {} starts {age} s before the end", s.msn),
                ));
            }
        }
    }

    // Preload hint [S §4.4.5.3].
    let part_hints: Vec<_> = p
        .hints
        .iter()
        .filter(|h| h.get("TYPE").is_some_and(|t| t == "PART"))
        .collect();
    if p.endlist {
        if !p.hints.is_empty() {
            out.push(v(
                Rule::PreloadHint,
                "EXT-X-PRELOAD-HINT after EXT-X-ENDLIST",
            ));
        }
    } else if part_hints.len() != 1 {
        out.push(v(
            Rule::PreloadHint,
            format!("{} TYPE=PART hints, want 1", part_hints.len()),
        ));
    } else {
        let want = match &p.pending {
            Some(s) => format!("{}.{}.m4s", s.msn, s.parts.len()),
            None => format!("{}.0.m4s", p.next_msn()),
        };
        let got = part_hints[0].get("URI").map(String::as_str).unwrap_or("");
        if got != want {
            out.push(v(
                Rule::PreloadHint,
                format!("hint URI {got:?}, the next part is {want:?}"),
            ));
        }
    }

    // Rendition reports [S §4.4.5.4].
    for r in &p.reports {
        let uri_ok = r
            .get("URI")
            .is_some_and(|u| !u.is_empty() && !u.contains("://"));
        let num = |k: &str| r.get(k).is_some_and(|x| x.parse::<u64>().is_ok());
        if !uri_ok || !num("LAST-MSN") || !num("LAST-PART") {
            out.push(v(Rule::RenditionReport, format!("{r:?}")));
        }
    }

    // Delta [S §6.2.5.1]: only when offered, and nothing left that should be skipped.
    if p.skipped.is_some() {
        let csu = p.server_control.as_ref().and_then(|s| s.can_skip_until);
        match csu {
            None => out.push(v(Rule::Skip, "EXT-X-SKIP without CAN-SKIP-UNTIL")),
            Some(csu) => {
                for (s, age) in p.segments.iter().zip(p.start_ages()) {
                    if age.0 > csu.0 + slack.0 {
                        out.push(v(
                            Rule::Skip,
                            format!(
                                "segment {} starts {age} s before the end but was not skipped",
                                s.msn
                            ),
                        ));
                    }
                }
            }
        }
    }
    out
}

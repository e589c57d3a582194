//! The checks `tests/llhls_http.rs` makes on each answer: headers of each kind of
//! response (content types, Cache-Control, CORS, no Age, gzip), the playlist checker of
//! `packager/tests/support/llhls.rs`, and small playlist helpers. Problems are collected
//! in [`Faults`] and reported together.
//!
//! Include with `#[path = "support/http_checks.rs"] mod http_checks;` next to
//! `mod binary;` and `mod llhls;` (it uses both through `super::`).
use std::sync::Mutex;

use super::binary::{Resp, gunzip, part_of_uri};
use super::llhls::{self, CheckOptions, Playlist};

/// Sent as `Origin` on every request: the answers must allow it (CORS).
pub const ORIGIN: &str = "https://player.example";
pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";

/// The checker's options for playlists of a live publisher: the defaults, but
/// EXT-X-PROGRAM-DATE-TIME steps may differ from EXTINF by up to [`PDT_JITTER_MS`].
pub fn check_options() -> CheckOptions {
    CheckOptions {
        pdt_tolerance_ms: PDT_JITTER_MS,
        ..CheckOptions::default()
    }
}

/// A segment's PROGRAM-DATE-TIME is the wall-clock arrival of its first frame. ffmpeg
/// `-re` on a loaded 2-core machine (a browser starting beside it) sends late and then
/// catches up: arrival jitter of a few hundred ms, which the playlist shows as a PDT step
/// that differs from the EXTINF before it. The packager's own tests check PDT exactly.
pub const PDT_JITTER_MS: i64 = 1000;

pub fn origin() -> (&'static str, &'static str) {
    ("origin", ORIGIN)
}

/// Problems found, reported together at the end.
#[derive(Default)]
pub struct Faults(Mutex<Vec<String>>);

impl Faults {
    pub fn check(&self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            let msg = msg();
            eprintln!("FAULT: {msg}");
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(msg);
        }
    }

    pub fn assert_none(&self) {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            all.is_empty(),
            "{} problem(s):\n{}",
            all.len(),
            all.iter()
                .take(40)
                .map(|s| format!("- {s}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// The preload hint as `(msn, part, URI)`.
pub fn hint_of(p: &Playlist) -> Option<(u64, u64, String)> {
    let uri = p.hints.first()?.get("URI")?.clone();
    let (m, n) = part_of_uri(&uri)?;
    Some((m, n, uri))
}

/// The listed parts, in order, as `(msn, index)` with their URIs.
pub fn listed_parts(p: &Playlist) -> Vec<((u64, u64), String)> {
    p.segments
        .iter()
        .chain(p.pending.iter())
        .flat_map(|s| &s.parts)
        .filter_map(|part| Some((part_of_uri(&part.uri)?, part.uri.clone())))
        .collect()
}

/// Same playlist state (two answers rendered from the same snapshot: a report about
/// another rendition may change while this one does not).
pub fn same_state(a: &Playlist, b: &Playlist) -> bool {
    a.last_part() == b.last_part()
        && a.reports == b.reports
        && a.hints == b.hints
        && a.next_msn() == b.next_msn()
        && a.media_sequence == b.media_sequence
}

/// Headers every answer carries: CORS for a player on another origin (exposing Age), and
/// no Age from the origin itself.
pub fn common_headers(f: &Faults, what: &str, r: &Resp) {
    f.check(r.header("age").is_none(), || {
        format!(
            "{what}: the origin sent an Age header: {:?}",
            r.header("age")
        )
    });
    let allow = r.header("access-control-allow-origin");
    f.check(matches!(allow, Some("*") | Some(ORIGIN)), || {
        format!("{what}: Access-Control-Allow-Origin is {allow:?}")
    });
    let expose = r.header("access-control-expose-headers").unwrap_or("");
    f.check(
        expose
            .split(',')
            .any(|h| h.trim().eq_ignore_ascii_case("age") || h.trim() == "*"),
        || format!("{what}: Access-Control-Expose-Headers {expose:?} does not expose Age"),
    );
}

/// The text of a 200 playlist answer (decompressed when `gzip` was asked for), after the
/// checks of its headers. Empty on a non-200.
pub fn playlist_text(f: &Faults, what: &str, r: &Resp, gzip: bool) -> String {
    f.check(r.status == 200, || format!("{what}: {}", r.describe()));
    if r.status != 200 {
        return String::new();
    }
    common_headers(f, what, r);
    let ct = r.header("content-type").unwrap_or("");
    f.check(ct.starts_with(PLAYLIST_TYPE), || {
        format!("{what}: Content-Type {ct:?}, want {PLAYLIST_TYPE}")
    });
    let encoding = r.header("content-encoding");
    if gzip {
        f.check(encoding == Some("gzip"), || {
            format!("{what}: Accept-Encoding: gzip answered with Content-Encoding {encoding:?}")
        });
        let vary = r.header("vary").unwrap_or("").to_ascii_lowercase();
        f.check(vary.contains("accept-encoding"), || {
            format!("{what}: a compressed answer without Vary: Accept-Encoding ({vary:?})")
        });
        if encoding == Some("gzip") {
            return String::from_utf8(gunzip(&r.body)).expect("UTF-8 playlist");
        }
    } else {
        f.check(encoding.is_none(), || {
            format!("{what}: Content-Encoding {encoding:?} without Accept-Encoding")
        });
    }
    r.text()
}

/// Runs the checker on one media playlist text.
pub fn check_playlist(f: &Faults, what: &str, text: &str) -> Playlist {
    let violations = llhls::check(text, &check_options());
    f.check(violations.is_empty(), || {
        format!(
            "{what}: checker: {}\n{text}",
            violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    });
    llhls::parse(text).0
}

/// Cache-Control of a plain playlist answer: at most half a target duration.
pub fn plain_cache(f: &Faults, what: &str, r: &Resp, td: u64) {
    let age = r.max_age();
    let no_cache = r
        .header("cache-control")
        .is_some_and(|c| c.contains("no-cache") || c.contains("no-store"));
    f.check(no_cache || age.is_some_and(|a| a <= td.div_ceil(2)), || {
        format!(
            "{what}: Cache-Control {:?}: a live playlist may be cached 0.5 x TD at most",
            r.header("cache-control")
        )
    });
}

/// Cache-Control of a blocking playlist answer (its URL names a future part): ~6 x TD.
pub fn blocking_cache(f: &Faults, what: &str, r: &Resp, td: u64) {
    let age = r.max_age();
    f.check(age.is_some_and(|a| (3 * td..=12 * td).contains(&a)), || {
        format!(
            "{what}: Cache-Control {:?}: a blocking playlist answer should be cached ~6 x TD",
            r.header("cache-control")
        )
    });
}

/// Headers of an init segment, part or segment answer.
pub fn media_headers(f: &Faults, what: &str, r: &Resp, audio: bool) {
    f.check(r.status == 200, || format!("{what}: {}", r.describe()));
    if r.status != 200 {
        return;
    }
    common_headers(f, what, r);
    let ct = r.header("content-type").unwrap_or("");
    let ok = if audio {
        ct.starts_with("audio/mp4") || ct.starts_with("video/iso.segment")
    } else {
        ct.starts_with("video/mp4") || ct.starts_with("video/iso.segment")
    };
    f.check(ok, || format!("{what}: Content-Type {ct:?}"));
    let len = r
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    f.check(len == Some(r.body.len()), || {
        format!(
            "{what}: Content-Length {len:?} but {} bytes came",
            r.body.len()
        )
    });
    f.check(r.max_age().is_some_and(|a| a >= 60), || {
        format!(
            "{what}: Cache-Control {:?}: published media never changes, cache it long",
            r.header("cache-control")
        )
    });
}

/// A 404 with a short Cache-Control (~1 x TD).
pub fn not_found(f: &Faults, what: &str, r: &Resp, td: u64) {
    f.check(r.status == 404, || {
        format!("{what}: want 404, got {}", r.describe())
    });
    common_headers(f, what, r);
    f.check(r.max_age().is_some_and(|a| a <= td), || {
        format!(
            "{what}: Cache-Control {:?} on a 404: keep it short (<= TD)",
            r.header("cache-control")
        )
    });
}

/// Audio's real position against the report about it: how many parts the audio
/// playlist is ahead of (LAST-MSN, LAST-PART); `None` when the report names a part the
/// audio playlist does not list.
pub fn report_lag(report: (u64, u64), audio: &Playlist) -> Option<i64> {
    let listed: Vec<(u64, u64)> = listed_parts(audio).into_iter().map(|(k, _)| k).collect();
    let at = listed.iter().position(|k| *k == report)?;
    Some((listed.len() - 1 - at) as i64)
}

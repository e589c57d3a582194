//! Response headers: Cache-Control per kind of response, content types, validators
//! (ETag, Last-Modified, `If-None-Match`), content negotiation for gzip, CORS.
//!
//! Cache-Control follows [S App. B.1] as LLHLS.md summarises it:
//! - a blocking playlist response (its URL names a future MSN/part, so what it answers
//!   never changes): six target durations;
//! - a plain playlist: half a target duration (at least one second);
//! - parts, segments, init segments: published bytes never change: long-lived and
//!   `immutable`;
//! - 404: one second (a part that is not there yet will be soon; a CDN must not keep
//!   the 404 longer);
//! - 400 and 503: `no-store`.
//!
//! No `Age` header is ever set by the origin (caches add it; players read it to tune in
//! behind a CDN, so CORS exposes it).
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
pub const VIDEO_MP4: &str = "video/mp4";
pub const AUDIO_MP4: &str = "audio/mp4";

/// Headers a cross-origin player may read [LLHLS.md: `Age` included].
pub const EXPOSE_HEADERS: &str =
    "Age, Cache-Control, Content-Encoding, Content-Length, Content-Type, Date, ETag, Last-Modified";
/// Request headers a preflight allows when the request names none acceptable.
pub const ALLOW_HEADERS: &str = "Range, If-None-Match, If-Modified-Since";
pub const ALLOW_METHODS: &str = "GET, HEAD, OPTIONS";

/// A playlist response whose URL names a future MSN/part [S App. B.1]: 6 x TD.
pub fn blocking_playlist(td: u32) -> HeaderValue {
    max_age(u64::from(td.max(1)) * 6)
}

/// A plain playlist response: half a target duration, at least one second.
pub fn plain_playlist(td: u32) -> HeaderValue {
    max_age((u64::from(td) / 2).max(1))
}

/// Parts, segments, init segments: the bytes behind a URL never change.
pub fn media(max_age: Duration) -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={}, immutable", max_age.as_secs())).unwrap_or(
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    )
}

/// 404: short, so an edge asks again for a part that is about to exist.
pub fn not_found() -> HeaderValue {
    HeaderValue::from_static("public, max-age=1")
}

/// 400, 503, 405: never cached.
pub fn no_store() -> HeaderValue {
    HeaderValue::from_static("no-store")
}

fn max_age(secs: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={secs}"))
        .unwrap_or(HeaderValue::from_static("public, max-age=1"))
}

/// Whether the request's `Accept-Encoding` allows gzip (RFC 9110 §12.5.3): a `gzip` (or
/// `x-gzip`) coding with a non-zero weight, or `*` with a non-zero weight when gzip is
/// not listed on its own.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip: Option<bool> = None;
    let mut star: Option<bool> = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q_ok = true;
            for param in parts {
                if let Some((k, v)) = param.split_once('=')
                    && k.trim().eq_ignore_ascii_case("q")
                {
                    q_ok = v.trim().parse::<f32>().is_ok_and(|q| q > 0.0);
                }
            }
            match coding.as_str() {
                "gzip" | "x-gzip" => gzip = Some(gzip.unwrap_or(false) || q_ok),
                "*" => star = Some(q_ok),
                _ => {}
            }
        }
    }
    gzip.or(star).unwrap_or(false)
}

/// `If-None-Match` against `etag` (weak comparison, RFC 9110 §13.1.2): true when the
/// client's copy is current and a 304 is the answer.
pub fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    let ours = etag.trim_start_matches("W/");
    headers.get_all(header::IF_NONE_MATCH).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|tag| {
                let tag = tag.trim();
                tag == "*" || tag.trim_start_matches("W/") == ours
            })
        })
    })
}

/// `Access-Control-Allow-Headers` for a preflight: the requested list when it is a
/// plain comma-separated token list, else the default.
pub fn allow_headers(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .filter(|v| {
            v.len() <= 512
                && v.as_bytes().iter().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b',' | b' ' | b'.')
                })
        })
        .cloned()
        .unwrap_or(HeaderValue::from_static(ALLOW_HEADERS))
}

/// CORS headers every response carries.
pub fn add_cors(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
}

pub fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// An IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil(days);
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let month_name = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!(
        "{weekday}, {day:02} {month_name} {year:04} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (days >= 0), by the
/// March-based era calendar (Howard Hinnant's `civil_from_days`).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(name: HeaderName, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn http_dates() {
        // Values cross-checked with `date -u -R -d @<secs>`.
        let cases = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_795_559_597, "Tue, 24 Nov 2026 22:33:17 GMT"),
        ];
        for (secs, want) in cases {
            assert_eq!(http_date(UNIX_EPOCH + Duration::from_secs(secs)), want);
        }
    }

    #[test]
    fn gzip_negotiation() {
        let yes = [
            "gzip",
            "br, gzip, deflate",
            "gzip;q=0.5",
            "*",
            "identity, *;q=0.1",
            "GZIP",
            "x-gzip",
        ];
        for v in yes {
            assert!(accepts_gzip(&map(header::ACCEPT_ENCODING, v)), "{v}");
        }
        let no = [
            "identity",
            "br",
            "gzip;q=0",
            "*;q=0",
            "gzip;q=0, *",
            "deflate",
        ];
        for v in no {
            assert!(!accepts_gzip(&map(header::ACCEPT_ENCODING, v)), "{v}");
        }
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn etag_matching() {
        let etag = "\"abc\"";
        assert!(none_match(&map(header::IF_NONE_MATCH, "\"abc\""), etag));
        assert!(none_match(&map(header::IF_NONE_MATCH, "W/\"abc\""), etag));
        assert!(none_match(
            &map(header::IF_NONE_MATCH, "\"x\", \"abc\""),
            etag
        ));
        assert!(none_match(&map(header::IF_NONE_MATCH, "*"), etag));
        assert!(!none_match(&map(header::IF_NONE_MATCH, "\"abd\""), etag));
        assert!(!none_match(&HeaderMap::new(), etag));
    }

    #[test]
    fn cache_control_values() {
        assert_eq!(blocking_playlist(2), "public, max-age=12");
        assert_eq!(plain_playlist(2), "public, max-age=1");
        assert_eq!(plain_playlist(1), "public, max-age=1");
        assert_eq!(plain_playlist(6), "public, max-age=3");
        assert_eq!(
            media(Duration::from_secs(31_536_000)),
            "public, max-age=31536000, immutable"
        );
    }

    #[test]
    fn preflight_headers_filtered() {
        let ok = map(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "range, if-none-match",
        );
        assert_eq!(allow_headers(&ok), "range, if-none-match");
        let bad = map(header::ACCESS_CONTROL_REQUEST_HEADERS, "x\"y");
        assert_eq!(allow_headers(&bad), ALLOW_HEADERS);
    }
}

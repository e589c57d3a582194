//! The origin's HTTP server, in process on 127.0.0.1:0, against a store fed by a real
//! `packager::Program` from a synthetic publisher (1 s segments, ~200 ms parts, TD 1).
//! The LL-HLS checker of the packager's tests reads every playlist.
mod support;

#[path = "../../packager/tests/support/llhls.rs"]
mod llhls;

mod http {
    mod blocking;
    mod headers;
    mod hostile;
    mod parts;
    mod tls;
}

use std::time::Duration;

/// Whether a media playlist text lists part `part` of segment `msn`, or something
/// later (the LL-HLS meaning of "contains the part" [S §6.2.5.2]).
pub fn contains(text: &str, msn: u64, part: u32) -> bool {
    let (p, _) = llhls::parse(text);
    p.last_part()
        .is_some_and(|(m, i)| (m, i) >= (msn, u64::from(part)))
}

/// Whether segment `msn` is complete in a media playlist text.
pub fn has_segment(text: &str, msn: u64) -> bool {
    let (p, _) = llhls::parse(text);
    p.segments.last().is_some_and(|s| s.msn >= msn)
}

/// Rule violations of a playlist text (the checker's defaults).
pub fn violations(text: &str) -> Vec<llhls::Violation> {
    llhls::check(text, &llhls::CheckOptions::default())
}

pub const PROMPT: Duration = Duration::from_millis(250);

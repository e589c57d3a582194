//! The SRT stream id (`SRTO_STREAMID`): which stream a caller wants to publish.
//!
//! SRT carries one free-form string in the handshake. Three forms are accepted:
//!
//! - the SRT Access Control form, `#!::r=live/<key>,m=publish`: comma-separated
//!   `key=value` pairs after `#!::`. `r` (resource) names the stream; `m` (mode) must be
//!   `publish` when given (a missing `m` is taken as `publish`: this server only takes
//!   publishers). Other keys (`u=` user, `s=` session, `t=` type, `h=` host, custom
//!   ones) are allowed and ignored. `m=request` (playback) and `m=bidirectional` are
//!   refused: SRT playback is not served, players use LL-HLS.
//! - `publish:live/<key>`,
//! - `live/<key>`.
//!
//! The resource is `<app>/<key>`, split at the first `/`. The key is a secret (see
//! [`crate::auth`]): errors never include it.
use thiserror::Error;

/// What a stream id asks for: publish `key` in `app`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishTarget {
    /// The application, e.g. `live`.
    pub app: String,
    /// The secret stream key.
    pub key: String,
}

/// Why a stream id is unusable. Messages are safe to log: they never contain the key.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StreamIdError {
    #[error("no stream id (expected #!::r=live/<key>,m=publish, publish:live/<key> or live/<key>)")]
    Missing,
    #[error("the stream id names no resource (r=<app>/<key>)")]
    NoResource,
    #[error("the resource must be <app>/<key>")]
    NotAppKey,
    #[error("mode m={mode:?} is not served: this server only accepts publishers (m=publish)")]
    Mode { mode: String },
    #[error("access control entry {index} is not key=value")]
    Entry { index: usize },
    #[error("access control key {key:?} appears twice")]
    Duplicate { key: String },
    #[error("the nested access control form (#!:{{...}}) is not supported")]
    Nested,
    #[error("unknown prefix before ':': only publish:<app>/<key> is accepted")]
    Prefix,
    #[error("the stream id contains control characters")]
    Control,
}

/// Parses a stream id into the stream it wants to publish.
pub fn parse(stream_id: &str) -> Result<PublishTarget, StreamIdError> {
    if stream_id.is_empty() {
        return Err(StreamIdError::Missing);
    }
    if stream_id.chars().any(char::is_control) {
        return Err(StreamIdError::Control);
    }
    if let Some(rest) = stream_id.strip_prefix("#!") {
        return match rest.strip_prefix("::") {
            Some(pairs) => access_control(pairs),
            None => Err(StreamIdError::Nested),
        };
    }
    if let Some((prefix, resource)) = stream_id.split_once(':') {
        if prefix != "publish" {
            // Not echoed: a mistyped id may carry the key before the ':'.
            return Err(StreamIdError::Prefix);
        }
        return resource_target(resource);
    }
    resource_target(stream_id)
}

/// `r=live/alice,m=publish,u=bob` (after `#!::`).
fn access_control(pairs: &str) -> Result<PublishTarget, StreamIdError> {
    let mut resource = None;
    let mut mode = None;
    let mut seen: Vec<&str> = Vec::new();
    for (index, entry) in pairs.split(',').enumerate() {
        let Some((key, value)) = entry.split_once('=') else {
            return Err(StreamIdError::Entry { index });
        };
        if key.is_empty() {
            return Err(StreamIdError::Entry { index });
        }
        if seen.contains(&key) {
            let key: String = key.chars().take(32).collect();
            return Err(StreamIdError::Duplicate { key });
        }
        seen.push(key);
        match key {
            "r" => resource = Some(value),
            "m" => mode = Some(value),
            _ => {}
        }
    }
    match mode {
        None | Some("publish") => {}
        Some(other) => {
            let mode: String = other.chars().take(32).collect();
            return Err(StreamIdError::Mode { mode });
        }
    }
    match resource {
        Some(resource) if !resource.is_empty() => resource_target(resource),
        _ => Err(StreamIdError::NoResource),
    }
}

fn resource_target(resource: &str) -> Result<PublishTarget, StreamIdError> {
    match resource.split_once('/') {
        Some((app, key)) if !app.is_empty() && !key.is_empty() => Ok(PublishTarget {
            app: app.to_string(),
            key: key.to_string(),
        }),
        _ => Err(StreamIdError::NotAppKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(app: &str, key: &str) -> Result<PublishTarget, StreamIdError> {
        Ok(PublishTarget {
            app: app.into(),
            key: key.into(),
        })
    }

    #[test]
    fn accepted_forms() {
        let cases = [
            ("#!::r=live/alice,m=publish", ok("live", "alice")),
            ("#!::m=publish,r=live/alice", ok("live", "alice")),
            ("#!::r=live/alice", ok("live", "alice")),
            (
                "#!::u=bob,r=live/s3cr3t,m=publish,s=abc",
                ok("live", "s3cr3t"),
            ),
            ("#!::r=live/alice,m=publish,x-custom=1", ok("live", "alice")),
            ("publish:live/alice", ok("live", "alice")),
            ("live/alice", ok("live", "alice")),
            // Split at the first '/': auth then refuses names with more segments.
            ("live/a/b", ok("live", "a/b")),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), want, "{input}");
        }
    }

    #[test]
    fn refused_forms_name_the_problem() {
        let cases = [
            ("", StreamIdError::Missing),
            (
                "#!::r=live/alice,m=request",
                StreamIdError::Mode {
                    mode: "request".into(),
                },
            ),
            (
                "#!::r=live/alice,m=bidirectional",
                StreamIdError::Mode {
                    mode: "bidirectional".into(),
                },
            ),
            ("#!::m=publish", StreamIdError::NoResource),
            ("#!::r=,m=publish", StreamIdError::NoResource),
            ("#!::r=live/a,garbage", StreamIdError::Entry { index: 1 }),
            ("#!::=x", StreamIdError::Entry { index: 0 }),
            ("#!::", StreamIdError::Entry { index: 0 }),
            (
                "#!::r=live/a,r=live/b",
                StreamIdError::Duplicate { key: "r".into() },
            ),
            ("#!:{r=live/a}", StreamIdError::Nested),
            ("#!x", StreamIdError::Nested),
            ("live", StreamIdError::NotAppKey),
            ("live/", StreamIdError::NotAppKey),
            ("/alice", StreamIdError::NotAppKey),
            ("#!::r=alice", StreamIdError::NotAppKey),
            ("play:live/alice", StreamIdError::Prefix),
            ("publish:live", StreamIdError::NotAppKey),
            ("live/al\nice", StreamIdError::Control),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Err(want), "{input:?}");
        }
    }

    #[test]
    fn errors_never_contain_the_key() {
        for input in [
            "#!::r=live/TOPSECRET,m=request",
            "#!::r=TOPSECRET",
            "#!::r=live/TOPSECRET,TOPSECRET",
            "TOPSECRET",
            "TOPSECRET:live/x",
        ] {
            let message = parse(input).unwrap_err().to_string();
            assert!(!message.contains("TOPSECRET"), "{input}: {message}");
        }
    }

    #[test]
    fn never_panics_on_split_points() {
        let id = "#!::u=bob,r=live/alice,m=publish";
        for i in 0..=id.len() {
            let _ = parse(&id[..i]);
            let _ = parse(&id[i..]);
        }
    }
}

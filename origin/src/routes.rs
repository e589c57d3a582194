//! The handlers behind the playback URLs of DESIGN.md:
//!
//! - `/{app}/{name}/index.m3u8`: multivariant playlist
//! - `/{app}/{name}/{rendition}/index.m3u8`: media playlist (`_HLS_msn`, `_HLS_part`,
//!   `_HLS_skip`)
//! - `/{app}/{name}/{rendition}/init.mp4`, `init-{v}.mp4`: init segments
//! - `/{app}/{name}/{rendition}/{msn}.m4s`: segments
//! - `/{app}/{name}/{rendition}/{msn}.{part}.m4s`: parts
//!
//! Paths are parsed strictly from the raw (still percent-encoded) path: every segment is
//! `[A-Za-z0-9._-]+`, never `.` or `..`, and numbers are canonical decimals within range.
//! Anything else is a 404; nothing ever touches a file system.
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use tokio::time::Instant;

use crate::blocking::{self, Decision, PartDecision, WaitEnd};
use crate::headers;
use crate::metrics::RequestKind;
use crate::server::Shared;
use crate::store::{Media, MediaType, Rendered};

/// What a path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Multivariant {
        stream: String,
    },
    Playlist {
        stream: String,
        rendition: String,
    },
    Init {
        stream: String,
        rendition: String,
        version: u32,
    },
    Segment {
        stream: String,
        rendition: String,
        msn: u64,
    },
    Part {
        stream: String,
        rendition: String,
        msn: u64,
        index: u32,
    },
}

/// Longest accepted path segment.
const MAX_SEGMENT: usize = 128;

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SEGMENT
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Parses a raw request path into a [`Target`]; `None` for anything else.
pub fn parse_path(path: &str) -> Option<Target> {
    let rest = path.strip_prefix('/')?;
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.len() > 4 || !segs.iter().all(|s| valid_name(s)) {
        return None;
    }
    match segs.as_slice() {
        [app, name, "index.m3u8"] => Some(Target::Multivariant {
            stream: format!("{app}/{name}"),
        }),
        [app, name, rendition, file] => {
            let stream = format!("{app}/{name}");
            let rendition = (*rendition).to_owned();
            if *file == "index.m3u8" {
                return Some(Target::Playlist { stream, rendition });
            }
            if *file == "init.mp4" {
                return Some(Target::Init {
                    stream,
                    rendition,
                    version: 0,
                });
            }
            if let Some(v) = file
                .strip_prefix("init-")
                .and_then(|f| f.strip_suffix(".mp4"))
            {
                // `init-0.mp4` is not a URI we write (version 0 is `init.mp4`).
                let version = u32::try_from(blocking::number(v)?).ok()?;
                return (version > 0).then_some(Target::Init {
                    stream,
                    rendition,
                    version,
                });
            }
            let stem = file.strip_suffix(".m4s")?;
            match stem.split_once('.') {
                None => Some(Target::Segment {
                    stream,
                    rendition,
                    msn: blocking::number(stem)?,
                }),
                Some((msn, index)) => Some(Target::Part {
                    stream,
                    rendition,
                    msn: blocking::number(msn)?,
                    index: u32::try_from(blocking::number(index)?).ok()?,
                }),
            }
        }
        _ => None,
    }
}

/// The handler of every playback URL (GET and HEAD; axum answers HEAD without the body).
pub async fn media(State(shared): State<Arc<Shared>>, req: Request<Body>) -> Response<Body> {
    let (parts, _) = req.into_parts();
    let Some(target) = parse_path(parts.uri.path()) else {
        return not_found(RequestKind::Other);
    };
    let h = &parts.headers;
    let on_demand = shared
        .demand
        .as_ref()
        .is_some_and(|d| d.touch(target.stream()));
    match target {
        Target::Multivariant { stream } => {
            if on_demand {
                await_live(&shared, &stream, None).await;
            }
            multivariant(&shared, &stream, h)
        }
        Target::Playlist { stream, rendition } => {
            if on_demand {
                await_live(&shared, &stream, Some(&rendition)).await;
            }
            playlist(&shared, &stream, &rendition, parts.uri.query(), h).await
        }
        Target::Init {
            stream,
            rendition,
            version,
        } => {
            let found = shared
                .store
                .lookup(&stream, &rendition)
                .and_then(|(e, r)| r.init(&e, version));
            media_response(&shared, RequestKind::Init, found, h)
        }
        Target::Segment {
            stream,
            rendition,
            msn,
        } => {
            let found = shared
                .store
                .lookup(&stream, &rendition)
                .and_then(|(e, r)| r.segment(&e, msn));
            media_response(&shared, RequestKind::Segment, found, h)
        }
        Target::Part {
            stream,
            rendition,
            msn,
            index,
        } => part(&shared, &stream, &rendition, msn, index, h).await,
    }
}

/// How long a playlist request for an on-demand stream that is not live waits for it
/// (the pull connects to the camera, waits for a keyframe and the first part).
pub const ON_DEMAND_WAIT: Duration = Duration::from_secs(8);
/// How often such a request looks at the store while it waits.
const ON_DEMAND_POLL: Duration = Duration::from_millis(50);

impl Target {
    /// The stream name the path is under.
    pub fn stream(&self) -> &str {
        match self {
            Target::Multivariant { stream }
            | Target::Playlist { stream, .. }
            | Target::Init { stream, .. }
            | Target::Segment { stream, .. }
            | Target::Part { stream, .. } => stream,
        }
    }
}

/// Waits (at most [`ON_DEMAND_WAIT`], less on shutdown) until `stream` (with
/// `rendition`, for a media playlist) is live in the store: its multivariant or media
/// playlist exists and has not ended. Called for on-demand streams, whose request just
/// started the pull: the answer then is the playlist, not a 404 the player gives up on.
/// The store has no "stream appeared" signal, so this looks every 50 ms.
async fn await_live(shared: &Shared, stream: &str, rendition: Option<&str>) {
    let deadline = Instant::now() + ON_DEMAND_WAIT;
    loop {
        let live = shared.store.stream(stream).is_some_and(|e| {
            !e.is_closed()
                && match rendition {
                    None => e.multivariant().is_some(),
                    Some(r) => e.rendition(r).is_some(),
                }
        });
        if live || Instant::now() >= deadline {
            return;
        }
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            () = tokio::time::sleep(ON_DEMAND_POLL) => {}
        }
    }
}

/// CORS preflight for the playback URLs.
pub async fn preflight(req: Request<Body>) -> Response<Body> {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(headers::ALLOW_METHODS),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        headers::allow_headers(req.headers()),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Access-Control-Request-Headers"),
    );
    res.extensions_mut().insert(RequestKind::Other);
    res
}

fn multivariant(shared: &Shared, stream: &str, h: &HeaderMap) -> Response<Body> {
    let Some(entry) = shared.store.stream(stream) else {
        return not_found(RequestKind::Multivariant);
    };
    let Some(rendered) = entry.multivariant() else {
        return not_found(RequestKind::Multivariant);
    };
    let td = entry.target_duration().unwrap_or(1);
    playlist_response(
        RequestKind::Multivariant,
        &rendered,
        headers::plain_playlist(td),
        h,
    )
}

async fn playlist(
    shared: &Shared,
    stream: &str,
    rendition: &str,
    query: Option<&str>,
    h: &HeaderMap,
) -> Response<Body> {
    let q = match blocking::parse_query(query) {
        Ok(q) => q,
        Err(e) => {
            let kind = if query.is_some_and(|q| q.contains("_HLS_msn")) {
                RequestKind::BlockingPlaylist
            } else {
                RequestKind::Playlist
            };
            return bad_request(kind, &e.to_string());
        }
    };
    let kind = if q.msn.is_some() {
        RequestKind::BlockingPlaylist
    } else {
        RequestKind::Playlist
    };
    let Some((_, r)) = shared.store.lookup(stream, rendition) else {
        return not_found(kind);
    };
    let mut snapshot = r.snapshot();
    if let Some(msn) = q.msn {
        match blocking::decide(&snapshot.playlist, msn, q.part) {
            Decision::Ready => {}
            Decision::Reject(why) => return bad_request(kind, &why.to_string()),
            Decision::Wait => {
                let _open = shared.metrics.blocking_guard();
                let deadline = Instant::now() + blocking::max_hold(&snapshot.playlist);
                let waited = blocking::wait_for(r.subscribe(), deadline, &shared.shutdown, |s| {
                    // A later snapshot may only make the request satisfied (or end the
                    // stream); re-deciding also catches a rejection after a reset.
                    match blocking::decide(&s.playlist, msn, q.part) {
                        Decision::Wait => None,
                        d => Some((s.clone(), d)),
                    }
                })
                .await;
                match waited {
                    Ok((s, Decision::Reject(why))) => {
                        drop(s);
                        return bad_request(kind, &why.to_string());
                    }
                    Ok((s, _)) => snapshot = s,
                    Err(end) => return unavailable(kind, end),
                }
            }
        }
    }
    let td = snapshot.playlist.target_duration;
    // A response to a URL naming an MSN (part) answers a request that can never be
    // answered differently: cacheable for 6 x TD [S App. B.1]. Ended: nothing changes.
    let cache = if q.msn.is_some() && !snapshot.playlist.ended {
        headers::blocking_playlist(td)
    } else {
        headers::plain_playlist(td)
    };
    // A client whose MSN is older than the window cannot merge a delta into what it
    // has: it gets the whole playlist [S §6.2.5.2].
    let old = q.msn.is_some_and(|m| m < snapshot.playlist.media_sequence);
    let rendered = snapshot.rendered(q.skip && !old);
    playlist_response(kind, &rendered, cache, h)
}

async fn part(
    shared: &Shared,
    stream: &str,
    rendition: &str,
    msn: u64,
    index: u32,
    h: &HeaderMap,
) -> Response<Body> {
    let Some((entry, r)) = shared.store.lookup(stream, rendition) else {
        return not_found(RequestKind::Part);
    };
    // The snapshot first: the store holds a part's bytes before any snapshot lists it,
    // so a part missing from the store is judged against a snapshot that predates it.
    let snapshot = r.snapshot();
    if let Some(m) = r.part(&entry, msn, index) {
        return media_response(shared, RequestKind::Part, Some(m), h);
    }
    if blocking::part_decision(&snapshot.playlist, msn, index) == PartDecision::NotFound {
        return not_found(RequestKind::Part);
    }
    // The hinted part [S §4.4.5.3, §6.2.6]: hold until it is complete, then send it
    // whole (its length is known before the first byte goes out).
    let _open = shared.metrics.blocking_guard();
    let deadline = Instant::now() + blocking::max_hold(&snapshot.playlist);
    let waited = blocking::wait_for(r.subscribe(), deadline, &shared.shutdown, |s| {
        if let Some(m) = r.part(&entry, msn, index) {
            return Some(Some(m));
        }
        match blocking::part_decision(&s.playlist, msn, index) {
            PartDecision::Wait => None,
            PartDecision::NotFound => Some(None),
        }
    })
    .await;
    match waited {
        Ok(Some(m)) => media_response(shared, RequestKind::Part, Some(m), h),
        Ok(None) => not_found(RequestKind::Part),
        Err(end) => unavailable(RequestKind::Part, end),
    }
}

fn playlist_response(
    kind: RequestKind,
    rendered: &Rendered,
    cache: HeaderValue,
    h: &HeaderMap,
) -> Response<Body> {
    let gzip = if headers::accepts_gzip(h) {
        rendered.gzip()
    } else {
        None
    };
    let etag = if gzip.is_some() {
        rendered.gzip_etag()
    } else {
        rendered.etag.clone()
    };
    let not_modified = headers::none_match(h, &etag);
    let (status, body) = match (&gzip, not_modified) {
        (_, true) => (StatusCode::NOT_MODIFIED, Bytes::new()),
        (Some(gz), false) => (StatusCode::OK, gz.clone()),
        (None, false) => (StatusCode::OK, rendered.body.clone()),
    };
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    let out = res.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(headers::PLAYLIST_TYPE),
    );
    out.insert(header::CACHE_CONTROL, cache);
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    headers::set(out, header::ETAG, &etag);
    headers::set(
        out,
        header::LAST_MODIFIED,
        &headers::http_date(rendered.modified),
    );
    if gzip.is_some() {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    res.extensions_mut().insert(kind);
    res
}

fn media_response(
    shared: &Shared,
    kind: RequestKind,
    media: Option<Media>,
    h: &HeaderMap,
) -> Response<Body> {
    let Some(m) = media else {
        return not_found(kind);
    };
    let not_modified = headers::none_match(h, &m.etag);
    let mut res = if not_modified {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        res
    } else {
        Response::new(Body::new(Chunks::new(m.chunks.clone(), m.len)))
    };
    let out = res.headers_mut();
    let content_type = match m.media_type {
        MediaType::Video => headers::VIDEO_MP4,
        MediaType::Audio => headers::AUDIO_MP4,
    };
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    out.insert(
        header::CACHE_CONTROL,
        headers::media(shared.config.media_max_age),
    );
    headers::set(out, header::ETAG, &m.etag);
    headers::set(out, header::LAST_MODIFIED, &headers::http_date(m.stored));
    res.extensions_mut().insert(kind);
    res
}

pub fn not_found(kind: RequestKind) -> Response<Body> {
    let mut res = Response::new(Body::from(&b"not found\n"[..]));
    *res.status_mut() = StatusCode::NOT_FOUND;
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, headers::not_found());
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res.extensions_mut().insert(kind);
    res
}

fn bad_request(kind: RequestKind, why: &str) -> Response<Body> {
    let mut res = Response::new(Body::from(format!("bad request: {why}\n")));
    *res.status_mut() = StatusCode::BAD_REQUEST;
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, headers::no_store());
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res.extensions_mut().insert(kind);
    res
}

fn unavailable(kind: RequestKind, end: WaitEnd) -> Response<Body> {
    let text: &'static [u8] = match end {
        WaitEnd::Timeout => b"not available within three target durations\n",
        WaitEnd::Shutdown => b"shutting down\n",
    };
    let mut res = Response::new(Body::from(text));
    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, headers::no_store());
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res.extensions_mut().insert(kind);
    res
}

/// 405 for methods other than GET, HEAD and OPTIONS.
pub fn method_not_allowed(method: &Method) -> Response<Body> {
    let mut res = Response::new(Body::from(format!("method {method} not allowed\n")));
    *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    let h = res.headers_mut();
    h.insert(
        header::ALLOW,
        HeaderValue::from_static(headers::ALLOW_METHODS),
    );
    h.insert(header::CACHE_CONTROL, headers::no_store());
    res.extensions_mut().insert(RequestKind::Other);
    res
}

/// A response body made of shared chunks (a segment is its parts, never copied), with
/// an exact size hint so the length goes out as Content-Length.
pub struct Chunks {
    chunks: Arc<[Bytes]>,
    next: usize,
    remaining: u64,
}

impl Chunks {
    pub fn new(chunks: Arc<[Bytes]>, len: u64) -> Chunks {
        Chunks {
            chunks,
            next: 0,
            remaining: len,
        }
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let Some(chunk) = self.chunks.get(self.next).cloned() else {
            return Poll::Ready(None);
        };
        self.next += 1;
        self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.chunks.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(path: &str) -> Option<Target> {
        parse_path(path)
    }

    #[test]
    fn valid_paths() {
        let s = || "live/alice".to_owned();
        let r = || "source".to_owned();
        assert_eq!(
            t("/live/alice/index.m3u8"),
            Some(Target::Multivariant { stream: s() })
        );
        assert_eq!(
            t("/live/alice/source/index.m3u8"),
            Some(Target::Playlist {
                stream: s(),
                rendition: r()
            })
        );
        assert_eq!(
            t("/live/alice/source/init.mp4"),
            Some(Target::Init {
                stream: s(),
                rendition: r(),
                version: 0
            })
        );
        assert_eq!(
            t("/live/alice/source/init-3.mp4"),
            Some(Target::Init {
                stream: s(),
                rendition: r(),
                version: 3
            })
        );
        assert_eq!(
            t("/live/alice/source/17.m4s"),
            Some(Target::Segment {
                stream: s(),
                rendition: r(),
                msn: 17
            })
        );
        assert_eq!(
            t("/live/alice/source/17.0.m4s"),
            Some(Target::Part {
                stream: s(),
                rendition: r(),
                msn: 17,
                index: 0
            })
        );
        assert_eq!(
            t("/live/a.b_c-d/720p/18446744073709551615.4294967295.m4s"),
            Some(Target::Part {
                stream: "live/a.b_c-d".to_owned(),
                rendition: "720p".to_owned(),
                msn: u64::MAX,
                index: u32::MAX
            })
        );
    }

    #[test]
    fn hostile_paths() {
        for p in [
            "",
            "/",
            "/live/index.m3u8",
            "/live/alice/../index.m3u8",
            "/live/../source/index.m3u8",
            "/live/alice/./index.m3u8",
            "/live/alice/%2e%2e/index.m3u8",
            "/live/alice/source/%2e%2e",
            "/live//source/index.m3u8",
            "/live/alice/source/index.m3u8/",
            "/live/alice/source/x/index.m3u8",
            "/live/alice/source/18446744073709551616.m4s",
            "/live/alice/source/1.4294967296.m4s",
            "/live/alice/source/-1.m4s",
            "/live/alice/source/+1.m4s",
            "/live/alice/source/01.m4s",
            "/live/alice/source/1.01.m4s",
            "/live/alice/source/1.2.3.m4s",
            "/live/alice/source/1..m4s",
            "/live/alice/source/.m4s",
            "/live/alice/source/1.m4s.m4s",
            "/live/alice/source/init-0.mp4",
            "/live/alice/source/init-x.mp4",
            "/live/alice/source/init-99999999999.mp4",
            "/live/alice/source/../../../../etc/passwd",
            "/live/alice/source/segment.ts",
            "/live/al ice/source/1.m4s",
            "/live/alice\\..\\/source/1.m4s",
            "live/alice/index.m3u8",
        ] {
            assert_eq!(t(p), None, "{p:?}");
        }
        let long = format!("/live/{}/index.m3u8", "a".repeat(129));
        assert_eq!(t(&long), None);
    }

    #[tokio::test]
    async fn chunks_body_is_exact() {
        use http_body_util::BodyExt;
        let chunks: Arc<[Bytes]> =
            Arc::from(vec![Bytes::from_static(b"abc"), Bytes::from_static(b"de")]);
        let body = Chunks::new(chunks, 5);
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(5));
        let all = body.collect().await.expect("infallible").to_bytes();
        assert_eq!(&all[..], b"abcde");
    }
}

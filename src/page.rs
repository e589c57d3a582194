//! The player page on the public HTTP port: `/` lists the live streams and plays one
//! with hls.js (low-latency mode), with a rendition selector and a live readout of the
//! latency (`Date.now() - hls.playingDate`) and the buffer.
//!
//! | route | what |
//! | --- | --- |
//! | `/` | the page (`src/page/index.html`) |
//! | `/hls.min.js` | hls.js, embedded at build time from npm (see `build.rs`) |
//! | `/hls.js-LICENSE.txt` | hls.js's licence (Apache-2.0), linked from the page footer |
//! | `/api/streams.json` | the streams the store serves: public names, playlist URLs, renditions |
//!
//! Nothing is fetched from elsewhere at run time. The JSON holds public stream names only
//! (the store never sees stream keys). The page reads `?stream=<name>` to pick a stream,
//! else plays the first live one; it exposes `window.ferrocastPlayer` (`latencyMs`,
//! `bufferMs`, `hls`) and `data-ms` attributes on `#latency` and `#buffer` for tests.
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use origin::Store;
use serde::Serialize;

/// hls.js's `dist/hls.min.js`, without its source-map comment.
pub static HLS_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hls.min.js"));
/// hls.js's licence file.
pub static HLS_LICENSE: &str = include_str!(concat!(env!("OUT_DIR"), "/hls.js-LICENSE.txt"));
/// The embedded hls.js version, from its package.json.
pub static HLS_VERSION: &str = include_str!(concat!(env!("OUT_DIR"), "/hls.js-version.txt"));

const INDEX_TEMPLATE: &str = include_str!("page/index.html");

/// `/api/streams.json`
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct StreamList {
    pub streams: Vec<StreamEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct StreamEntry {
    /// Public name, `<app>/<name>`.
    pub name: String,
    /// Multivariant playlist, `/<name>/index.m3u8`.
    pub url: String,
    /// Rendition names (`source`, ..., `audio`).
    pub renditions: Vec<String>,
    /// The playlists carry EXT-X-ENDLIST (the stream lingers for a while).
    pub ended: bool,
}

#[derive(Clone)]
struct PageState {
    store: Store,
    index: Bytes,
}

/// The page's routes, to merge with the origin's router.
pub fn router(store: Store) -> Router {
    let index = Bytes::from(INDEX_TEMPLATE.replace("{{HLS_VERSION}}", HLS_VERSION.trim()));
    Router::new()
        .route("/", get(index_html))
        .route("/hls.min.js", get(hls_js))
        .route("/hls.js-LICENSE.txt", get(hls_license))
        .route("/api/streams.json", get(streams_json))
        .with_state(PageState { store, index })
}

/// The streams to list: those with at least one rendition (something to play).
pub fn stream_list(store: &Store) -> StreamList {
    StreamList {
        streams: store
            .streams()
            .into_iter()
            .filter(|s| !s.renditions.is_empty())
            .map(|s| StreamEntry {
                url: format!("/{}/index.m3u8", s.name),
                name: s.name,
                renditions: s.renditions,
                ended: s.ended,
            })
            .collect(),
    }
}

fn with_headers(
    body: impl IntoResponse,
    content_type: &'static str,
    cache: &'static str,
) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn index_html(State(state): State<PageState>) -> Response {
    with_headers(state.index, "text/html; charset=utf-8", "no-cache")
}

async fn hls_js() -> Response {
    // The page asks for `/hls.min.js?v=<version>`, so a new build gets a new URL.
    with_headers(
        Bytes::from_static(HLS_JS),
        "application/javascript; charset=utf-8",
        "public, max-age=31536000, immutable",
    )
}

async fn hls_license() -> Response {
    with_headers(
        HLS_LICENSE,
        "text/plain; charset=utf-8",
        "public, max-age=86400",
    )
}

async fn streams_json(State(state): State<PageState>) -> Response {
    with_headers(
        axum::Json(stream_list(&state.store)),
        "application/json",
        "no-store",
    )
}

//! Response headers: content types, Cache-Control per kind, CORS, gzip, validators,
//! metrics by kind, and the extra routes.
use std::io::Read as _;

use axum::routing::get;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::support::{Harness, Options};
use origin::RequestKind;

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} in {h:?}"))
        .to_str()
        .expect("ascii")
}

fn assert_cors(h: &HeaderMap) {
    assert_eq!(header(h, "access-control-allow-origin"), "*");
    let exposed = header(h, "access-control-expose-headers").to_ascii_lowercase();
    for name in ["age", "content-length", "etag"] {
        assert!(exposed.contains(name), "{name} not exposed: {exposed}");
    }
    assert!(h.get("age").is_none(), "the origin never sends Age");
}

#[tokio::test]
async fn every_kind_of_response_has_its_headers() {
    let h = Harness::start(Options::default()).await;
    let (msn, part) = h.hint("source");
    let last = h.playlist("source").segments.last().expect("segment").msn;

    let mv = h.get("index.m3u8").await;
    assert_eq!(mv.status(), StatusCode::OK);
    assert_eq!(
        header(mv.headers(), "content-type"),
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(header(mv.headers(), "cache-control"), "public, max-age=1");
    assert_cors(mv.headers());
    let text = mv.text().await.expect("body");
    assert!(text.starts_with("#EXTM3U") && text.contains("source/index.m3u8"));

    let plain = h.get("source/index.m3u8").await;
    let hd = plain.headers().clone();
    assert_eq!(header(&hd, "content-type"), "application/vnd.apple.mpegurl");
    // Half a target duration, at least one second.
    assert_eq!(header(&hd, "cache-control"), "public, max-age=1");
    assert_eq!(header(&hd, "vary"), "Accept-Encoding");
    assert!(header(&hd, "etag").starts_with('"'));
    assert!(header(&hd, "last-modified").ends_with(" GMT"));
    assert!(hd.get("content-encoding").is_none(), "no gzip unless asked");
    assert_cors(&hd);

    let blocking = h
        .get(&format!("source/index.m3u8?_HLS_msn={last}&_HLS_part=0"))
        .await;
    assert_eq!(
        header(blocking.headers(), "cache-control"),
        "public, max-age=6"
    );

    for (path, content_type) in [
        (format!("source/{}.m4s", last), "video/mp4"),
        (format!("source/{last}.0.m4s"), "video/mp4"),
        ("source/init.mp4".to_owned(), "video/mp4"),
        ("audio/init.mp4".to_owned(), "audio/mp4"),
        (format!("audio/{last}.0.m4s"), "audio/mp4"),
    ] {
        let res = h.get(&path).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let hd = res.headers();
        assert_eq!(header(hd, "content-type"), content_type, "{path}");
        assert_eq!(
            header(hd, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert!(header(hd, "etag").starts_with('"'));
        assert!(header(hd, "last-modified").ends_with(" GMT"));
        assert!(hd.get("vary").is_none());
        assert!(hd.get("content-length").is_some());
        assert_cors(hd);
    }

    let missing = h.get(&format!("source/{msn}.{}.m4s", part + 5)).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        header(missing.headers(), "cache-control"),
        "public, max-age=1"
    );
    assert_cors(missing.headers());
    let bad = h.get("source/index.m3u8?_HLS_part=2").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(bad.headers(), "cache-control"), "no-store");
    assert_cors(bad.headers());

    let post = h
        .client
        .post(h.url("source/index.m3u8"))
        .send()
        .await
        .expect("POST");
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);

    // HEAD: the headers of GET, no body.
    let head = h
        .client
        .head(h.url("source/init.mp4"))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), StatusCode::OK);
    let length: usize = header(head.headers(), "content-length").parse().expect("n");
    assert!(length > 0);
    assert!(head.bytes().await.expect("body").is_empty());

    // Counted by kind and status.
    let m = &h.metrics;
    assert_eq!(
        m.requests(RequestKind::Multivariant, http::StatusCode::OK),
        1
    );
    assert_eq!(m.requests(RequestKind::Playlist, http::StatusCode::OK), 1);
    assert_eq!(
        m.requests(RequestKind::BlockingPlaylist, http::StatusCode::OK),
        1
    );
    assert_eq!(m.requests(RequestKind::Segment, http::StatusCode::OK), 1);
    assert_eq!(m.requests(RequestKind::Init, http::StatusCode::OK), 3);
    assert_eq!(m.requests(RequestKind::Part, http::StatusCode::OK), 2);
    assert_eq!(
        m.requests(RequestKind::Part, http::StatusCode::NOT_FOUND),
        1
    );
    assert_eq!(
        m.requests(RequestKind::Playlist, http::StatusCode::BAD_REQUEST),
        1
    );
    h.stop().await;
}

#[tokio::test]
async fn playlists_are_gzipped_when_accepted_and_media_never() {
    let h = Harness::start(Options::default()).await;
    let identity = h.get("source/index.m3u8").await.text().await.expect("body");
    for path in [
        "source/index.m3u8",
        "index.m3u8",
        "audio/index.m3u8?_HLS_skip=YES",
    ] {
        let res = h
            .client
            .get(h.url(path))
            .header("accept-encoding", "gzip, deflate, br")
            .send()
            .await
            .expect("GET");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(res.headers(), "content-encoding"), "gzip", "{path}");
        assert_eq!(header(res.headers(), "vary"), "Accept-Encoding");
        let gz = res.bytes().await.expect("body");
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .expect("valid gzip");
        assert!(text.starts_with("#EXTM3U"));
        if path == "source/index.m3u8" {
            assert_eq!(text, identity);
            assert!(gz.len() < identity.len());
        }
    }
    let refused = h
        .client
        .get(h.url("source/index.m3u8"))
        .header("accept-encoding", "gzip;q=0, identity")
        .send()
        .await
        .expect("GET");
    assert!(refused.headers().get("content-encoding").is_none());
    let last = h.playlist("source").segments.last().expect("segment").msn;
    for path in [format!("source/{last}.m4s"), "source/init.mp4".to_owned()] {
        let res = h
            .client
            .get(h.url(&path))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .expect("GET");
        assert!(res.headers().get("content-encoding").is_none(), "{path}");
    }
    h.stop().await;
}

#[tokio::test]
async fn if_none_match_gets_304() {
    let h = Harness::start(Options::default()).await;
    let last = h.playlist("source").segments.last().expect("segment").msn;
    for path in [
        format!("source/{last}.0.m4s"),
        format!("source/{last}.m4s"),
        "source/init.mp4".to_owned(),
        "source/index.m3u8".to_owned(),
    ] {
        let first = h.get(&path).await;
        let etag = header(first.headers(), "etag").to_owned();
        let again = h
            .client
            .get(h.url(&path))
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("GET");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(header(again.headers(), "etag"), etag);
        assert!(again.bytes().await.expect("body").is_empty());
        let other = h
            .client
            .get(h.url(&path))
            .header("if-none-match", "\"something-else\"")
            .send()
            .await
            .expect("GET");
        assert_eq!(other.status(), StatusCode::OK, "{path}");
    }
    // The playlist's validator changes when the playlist does.
    let before = header(h.get("source/index.m3u8").await.headers(), "etag").to_owned();
    h.push_until(h.position() + 0.5);
    let after = header(h.get("source/index.m3u8").await.headers(), "etag").to_owned();
    assert_ne!(before, after);
    h.stop().await;
}

#[tokio::test]
async fn preflight_is_answered() {
    let h = Harness::start(Options::default()).await;
    let res = h
        .client
        .request(reqwest::Method::OPTIONS, h.url("source/index.m3u8"))
        .header("origin", "https://player.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "range")
        .send()
        .await
        .expect("OPTIONS");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let hd = res.headers();
    assert_eq!(header(hd, "access-control-allow-origin"), "*");
    assert!(header(hd, "access-control-allow-methods").contains("GET"));
    assert_eq!(header(hd, "access-control-allow-headers"), "range");
    assert!(hd.get("access-control-max-age").is_some());
    h.stop().await;
}

#[tokio::test]
async fn extra_routes_are_merged_and_counted_as_pages() {
    let extra = axum::Router::new().route("/", get(|| async { "the page" }));
    let h = Harness::start(Options {
        extra_routes: Some(extra),
        ..Options::default()
    })
    .await;
    let res = h
        .client
        .get(format!("{}/", h.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::OK);
    assert_cors(res.headers());
    assert_eq!(res.text().await.expect("body"), "the page");
    assert_eq!(
        h.metrics.requests(RequestKind::Page, http::StatusCode::OK),
        1
    );
    // The playback routes still work beside it.
    assert_eq!(h.get("source/index.m3u8").await.status(), StatusCode::OK);
    let none = h
        .client
        .get(format!("{}/nothing", h.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(none.status(), StatusCode::NOT_FOUND);
    h.stop().await;
}

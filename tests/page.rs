//! The player page and the wiring behind it, in-process: the `App` with its HTTP origin,
//! packaging driver and store, fed synthetic frames through its hub. Checks the page and
//! its embedded hls.js (content types, caching, licence, no external resources), the
//! public stream list, that a listed stream plays from the origin, that the origin's
//! metrics reach the admin registry, and that shutdown ends the playlists.
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use ferrocast::app::App;
use ferrocast::config::Config;
use ferrocast::page::{HLS_JS, HLS_VERSION, StreamEntry, StreamList};
use media::hub::PublisherInfo;
use media::{Codec, Frame, FrameRate, StreamEvent, TrackInfo};
use tokio_util::sync::CancellationToken;

const AVCC: &[u8] = include_bytes!("../packager/testdata/h264_baseline_720p30.avcc");

fn local_config() -> Config {
    let mut config = Config::default();
    config.rtmp.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.listen = "127.0.0.1:0".parse().unwrap();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.srt.listen = "127.0.0.1:0".parse().unwrap();
    // The page is the subject: no ladder subscribing beside the packager.
    config.transcode.enabled = false;
    config
}

fn tracks() -> Vec<TrackInfo> {
    let asc: u16 = (2 << 11) | (3 << 7) | (2 << 3); // AAC LC 48 kHz stereo
    vec![
        TrackInfo {
            id: 0,
            codec: Codec::H264 {
                avcc: Bytes::from_static(AVCC),
                width: 1280,
                height: 720,
                fps: Some(FrameRate { num: 30, den: 1 }),
            },
            timescale: 90_000,
        },
        TrackInfo {
            id: 1,
            codec: Codec::aac(Bytes::copy_from_slice(&asc.to_be_bytes())).unwrap(),
            timescale: 48_000,
        },
    ]
}

/// `seconds` of 30 fps video (keyframe every 2 s) and AAC, interleaved, sent at once.
fn frames(seconds: u64) -> Vec<StreamEvent> {
    let now = SystemTime::now();
    let mut out: Vec<(u64, u32, Frame)> = Vec::new();
    for i in 0..30 * seconds {
        let ns = i * 1_000_000_000 / 30;
        out.push((
            ns,
            0,
            Frame {
                track: 0,
                pts: (i * 3000) as i64,
                dts: (i * 3000) as i64,
                keyframe: i % 60 == 0,
                data: Bytes::from(vec![7; 200]),
                received: now,
            },
        ));
    }
    for k in 0..48_000 * seconds / 1024 {
        out.push((
            k * 1024 * 1_000_000_000 / 48_000,
            1,
            Frame {
                track: 1,
                pts: (k * 1024) as i64,
                dts: (k * 1024) as i64,
                keyframe: true,
                data: Bytes::from(vec![9; 20]),
                received: now,
            },
        ));
    }
    out.sort_by_key(|(ns, t, _)| (*ns, *t));
    out.into_iter()
        .map(|(_, _, f)| StreamEvent::Frame(f))
        .collect()
}

struct Got {
    status: u16,
    content_type: String,
    cache_control: String,
    body: Bytes,
}

async fn get(client: &reqwest::Client, addr: SocketAddr, path: &str) -> Got {
    let r = client
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    Got {
        status: r.status().as_u16(),
        content_type: header("content-type"),
        cache_control: header("cache-control"),
        body: r.bytes().await.unwrap(),
    }
}

fn text(b: &Bytes) -> &str {
    std::str::from_utf8(b).unwrap()
}

/// Polls `f` every 10 ms for up to 20 s.
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn page_assets_stream_list_metrics_and_shutdown() {
    let app = App::bind(local_config()).await.unwrap();
    let http = app.http_addr().unwrap();
    let admin = app.admin_addr().unwrap();
    let hub = app.hub().clone();
    let store = app.store().clone();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run(shutdown.clone()));
    let client = reqwest::Client::new();

    // The page: HTML, not cached stale, referring to the embedded script by version
    // and to the licence, with nothing from another origin.
    until("the page", || async {
        let r = client.get(format!("http://{http}/")).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let page = get(&client, http, "/").await;
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert_eq!(page.cache_control, "no-cache");
    let html = text(&page.body);
    let version = HLS_VERSION.trim();
    assert!(version.starts_with("1."), "hls.js {version}");
    assert!(
        html.contains(&format!(
            "<script src=\"/hls.min.js?v={version}\"></script>"
        )),
        "{html}"
    );
    assert!(html.contains("href=\"/hls.js-LICENSE.txt\""));
    assert!(html.contains("lowLatencyMode: true"));
    assert!(html.contains("Date.now() - hls.playingDate.getTime()"));
    assert!(!html.contains("{{"), "template placeholders left");
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"),
        "the page must not load anything from elsewhere"
    );

    // hls.js itself, cached for long (the URL carries the version), and its licence.
    let js = get(&client, http, &format!("/hls.min.js?v={version}")).await;
    assert_eq!(js.status, 200);
    assert_eq!(js.content_type, "application/javascript; charset=utf-8");
    assert_eq!(js.cache_control, "public, max-age=31536000, immutable");
    assert_eq!(js.body.as_ref(), HLS_JS);
    assert!(js.body.len() > 100_000, "{} bytes", js.body.len());
    let js_text = text(&js.body);
    assert!(js_text.contains("lowLatencyMode") && js_text.contains("playingDate"));
    assert!(!js_text.contains("sourceMappingURL"));
    let license = get(&client, http, "/hls.js-LICENSE.txt").await;
    assert_eq!(license.status, 200);
    assert_eq!(license.content_type, "text/plain; charset=utf-8");
    assert!(text(&license.body).contains("Apache License"));

    // The public list: empty, then the published stream (its public name only).
    let list = get(&client, http, "/api/streams.json").await;
    assert_eq!(list.content_type, "application/json");
    assert_eq!(list.cache_control, "no-store");
    let parsed: StreamList = serde_json::from_slice(&list.body).unwrap();
    assert_eq!(parsed, StreamList { streams: vec![] });

    let publisher = hub
        .publish(
            "live/page",
            PublisherInfo {
                protocol: "test",
                peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            },
        )
        .unwrap();
    until("the driver to subscribe", || {
        let hub = hub.clone();
        async move { (hub.stream("live/page")?.subscribers == 1).then_some(()) }
    })
    .await;
    publisher.send(StreamEvent::Tracks(tracks()));
    for f in frames(5) {
        publisher.send(f);
    }
    let listed = until("the stream in the list", || async {
        let got = get(&client, http, "/api/streams.json").await;
        let list: StreamList = serde_json::from_slice(&got.body).ok()?;
        (!list.streams.is_empty()).then_some(list)
    })
    .await;
    assert_eq!(
        listed.streams,
        vec![StreamEntry {
            name: "live/page".into(),
            url: "/live/page/index.m3u8".into(),
            renditions: vec!["source".into(), "audio".into()],
            ended: false,
        }]
    );
    // What the page will play is there.
    let multivariant = get(&client, http, &listed.streams[0].url).await;
    assert_eq!(multivariant.status, 200);
    assert!(text(&multivariant.body).contains("source/index.m3u8"));
    let media = until("a segment", || async {
        let got = get(&client, http, "/live/page/source/index.m3u8").await;
        text(&got.body).contains("#EXTINF").then_some(got)
    })
    .await;
    assert!(text(&media.body).starts_with("#EXTM3U"));

    // The origin's metrics are in the admin registry.
    let metrics = get(&client, admin, "/metrics").await;
    let metrics = text(&metrics.body);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("ferrocast_http_requests_total{code=\"200\",kind=\"page\"}")),
        "{metrics}"
    );
    let delay_count: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ferrocast_part_publish_delay_seconds_count "))
        .expect("publish delay histogram")
        .parse()
        .unwrap();
    assert!(delay_count > 10.0, "{delay_count} parts observed");

    // Shutdown with the publisher still there: the playlists end.
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("run returns")
        .unwrap()
        .unwrap();
    for rendition in ["source", "audio"] {
        let p = store.playlist("live/page", rendition).expect("playlist");
        assert!(p.ended, "{rendition} has EXT-X-ENDLIST after shutdown");
    }
    assert!(
        client.get(format!("http://{http}/")).send().await.is_err(),
        "the page is still served after run returned"
    );
    drop(publisher);
}

//! Publish authorization end to end: ffmpeg publishes with stream keys against the `keys`
//! and `webhook` modes; refusals must end ffmpeg promptly and leave a log line with the
//! reason and the peer, and accepted publishes must appear under their public name.
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ingest::auth::{AuthConfig, AuthMode};
use support::*;
use tokio::net::TcpListener;

/// The log checks below look at the lines written during one scenario: run the
/// scenarios of this binary one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// ffmpeg must give up within this long after a refusal.
const REFUSAL_EXIT: Duration = Duration::from_secs(5);

/// Publishes `flv` with ffmpeg and expects a refusal: a non-zero exit within
/// [`REFUSAL_EXIT`] (plus `extra`). Returns how long ffmpeg ran.
async fn expect_refused(url: &str, extra: Duration) -> Duration {
    let started = Instant::now();
    let mut ff = ffmpeg_publish(&avc_aac_flv(), url, &[]);
    let status = ff.wait(REFUSAL_EXIT + extra).await;
    assert!(
        !status.success(),
        "ffmpeg publishing to {url} should have been refused; stderr:\n{}",
        ff.stderr()
    );
    started.elapsed()
}

/// The one line logged since `mark` that reports a refused publish; checks that it names
/// a loopback peer and contains `reason`, and returns the peer.
fn refusal_line(mark: LogMark, reason: &str) -> (String, SocketAddr) {
    let lines = mark.lines();
    let refused: Vec<&String> = lines.iter().filter(|l| l.contains("refused")).collect();
    let line = refused
        .iter()
        .find(|l| l.contains(reason))
        .unwrap_or_else(|| {
            panic!(
                "no refusal line with {reason:?}; log:\n{}",
                lines.join("\n")
            )
        });
    let at = line.find("127.0.0.1:").expect("the refusal names the peer");
    let peer: SocketAddr = line[at..]
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .next()
        .and_then(|s| s.trim_end_matches(':').parse().ok())
        .unwrap_or_else(|| panic!("no peer address in {line:?}"));
    ((*line).clone(), peer)
}

/// Waits for the refusal line (the server logs it when the connection task ends, which
/// may be just after ffmpeg exits).
async fn wait_refusal_line(mark: LogMark, reason: &str) -> (String, SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if mark
            .lines()
            .iter()
            .any(|l| l.contains("refused") && l.contains(reason))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    refusal_line(mark, reason)
}

/// Publishes the fixture through a relay and checks that the hub carries it, from the
/// first frame to End, under `public` only.
async fn expect_published(server: &TestServer, path: &str, public: &str, secret: Option<&str>) {
    let mut proxy = SubscribeProxy::start(server, public).await;
    let mut ff = ffmpeg_publish(&avc_aac_flv(), &proxy.url(path), &[]);
    let mut sub = proxy.subscriber(Duration::from_secs(10)).await;
    let names: Vec<String> = server.hub.streams().into_iter().map(|s| s.name).collect();
    assert_eq!(names, [public], "the hub lists the public name only");
    if let Some(secret) = secret {
        assert!(
            !names.iter().any(|n| n.contains(secret)),
            "the secret key leaked into a stream name: {names:?}"
        );
    }
    let got = collect_until_end(&mut sub, Duration::from_secs(30)).await;
    ff.wait_success(Duration::from_secs(10)).await;
    let want = ffprobe(&avc_aac_flv(), &[]).packets("video").len();
    assert_eq!(got.frames(VIDEO).len(), want, "video frames under {public}");
    assert_eq!(got.track(VIDEO).codec.dimensions(), Some((640, 360)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_mode_refuses_unknown_keys_and_maps_known_ones() {
    let _serial = SERIAL.lock().await;
    let secret = "k3y-7f3a9c";
    let server = TestServer::start(ServerOpts {
        auth: AuthConfig {
            mode: AuthMode::Keys,
            keys: BTreeMap::from([(secret.to_string(), "live/keyed".to_string())]),
            ..AuthConfig::default()
        },
        ..ServerOpts::default()
    })
    .await;

    let mark = log_mark();
    expect_refused(&server.url("live/wr0ng-k3y"), Duration::ZERO).await;
    let (line, peer) = wait_refusal_line(mark, "unknown stream key").await;
    assert_ne!(
        peer.port(),
        server.addr.port(),
        "the peer is ffmpeg, not the server"
    );
    assert!(
        !line.contains("wr0ng-k3y"),
        "the refusal line echoes the key: {line}"
    );
    assert!(
        server.hub.streams().is_empty(),
        "a refused publish left a stream"
    );

    let mark = log_mark();
    expect_published(
        &server,
        &format!("live/{secret}"),
        "live/keyed",
        Some(secret),
    )
    .await;
    let leaked: Vec<String> = mark
        .lines()
        .into_iter()
        .filter(|l| l.contains(secret))
        .collect();
    assert!(leaked.is_empty(), "the secret key was logged: {leaked:#?}");
    server.shutdown(Duration::from_secs(5)).await;
}

/// What the test webhook saw.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<serde_json::Value>>>);

/// Allows `good` (renamed to `live/renamed`) and `plain` (default name), 403 otherwise.
async fn webhook(State(calls): State<Calls>, Json(body): Json<serde_json::Value>) -> Response {
    calls.0.lock().unwrap().push(body.clone());
    match body["key"].as_str() {
        Some("good") => Json(serde_json::json!({ "name": "live/renamed" })).into_response(),
        Some("plain") => StatusCode::OK.into_response(),
        _ => (StatusCode::FORBIDDEN, "no").into_response(),
    }
}

async fn start_webhook() -> (String, Calls) {
    let calls = Calls::default();
    let app = axum::Router::new()
        .route("/publish", axum::routing::post(webhook))
        .with_state(calls.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/publish", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_decides_and_names_streams() {
    let _serial = SERIAL.lock().await;
    let (url, calls) = start_webhook().await;
    let server = TestServer::start(ServerOpts {
        auth: AuthConfig {
            mode: AuthMode::Webhook,
            webhook_url: Some(url),
            webhook_timeout_ms: 2000,
            ..AuthConfig::default()
        },
        ..ServerOpts::default()
    })
    .await;

    let mark = log_mark();
    expect_refused(&server.url("live/bad"), Duration::ZERO).await;
    let (_, peer) = wait_refusal_line(mark, "403").await;
    {
        let calls = calls.0.lock().unwrap();
        assert_eq!(calls.len(), 1, "one webhook call per publish: {calls:?}");
        let call = &calls[0];
        assert_eq!(call["app"], "live");
        assert_eq!(call["key"], "bad");
        assert_eq!(call["protocol"], "rtmp");
        assert_eq!(
            call["peer"].as_str(),
            Some(peer.to_string().as_str()),
            "the webhook and the log name the same peer"
        );
    }
    assert!(server.hub.streams().is_empty());

    expect_published(&server, "live/good", "live/renamed", Some("good")).await;
    expect_published(&server, "live/plain", "live/plain", None).await;
    assert_eq!(calls.0.lock().unwrap().len(), 3);
    server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_that_never_answers_refuses_after_the_timeout() {
    let _serial = SERIAL.lock().await;
    // Accepts connections, reads nothing, answers nothing; counts the connections.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/publish", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let held = accepted.clone();
    let hang = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            held.lock().unwrap().push(socket);
        }
    });
    let timeout = Duration::from_millis(700);
    let server = TestServer::start(ServerOpts {
        auth: AuthConfig {
            mode: AuthMode::Webhook,
            webhook_url: Some(url),
            webhook_timeout_ms: timeout.as_millis() as u64,
            ..AuthConfig::default()
        },
        ..ServerOpts::default()
    })
    .await;

    let mark = log_mark();
    let took = expect_refused(&server.url("live/slow"), timeout).await;
    assert!(
        took >= timeout,
        "ffmpeg was refused after {took:?}, before the {timeout:?} webhook timeout"
    );
    let (line, _) = wait_refusal_line(mark, "did not answer").await;
    assert!(
        line.contains("700 ms"),
        "the reason names the timeout: {line}"
    );
    assert!(
        !accepted.lock().unwrap().is_empty(),
        "the webhook was never called"
    );
    assert!(server.hub.streams().is_empty());
    server.shutdown(Duration::from_secs(5)).await;
    hang.abort();
}

//! Hostile input: raw request paths (reqwest would normalise `..`), absurd numbers, idle
//! connections against the connection limit and the header read timeout.
use std::time::Duration;

use origin::HttpConfig;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::support::{Harness, Options, raw, raw_status};

#[tokio::test]
async fn traversal_and_absurd_paths_are_refused_without_harm() {
    let h = Harness::start(Options::default()).await;
    let paths = [
        "/../../../../etc/passwd",
        "/live/test/../../../etc/passwd",
        "/live/test/source/../../../../etc/passwd",
        "/live/test/source/..%2f..%2fetc%2fpasswd",
        "/live/test/%2e%2e/index.m3u8",
        "/live/%2e%2e/source/index.m3u8",
        "/live/test/source/%2e%2e",
        "/live/test/./source/index.m3u8",
        "//live/test/index.m3u8",
        "/live/test/source/1.0.m4s/../../index.m3u8",
        "/live/test/source/99999999999999999999999.m4s",
        "/live/test/source/1.99999999999.m4s",
        "/live/test/source/-1.m4s",
        "/live/test/source/1.-1.m4s",
        "/live/test/source/0x10.m4s",
        "/live/test/source/1e3.m4s",
        "/live/test/source/init-99999999999999.mp4",
        "/live/test/source\\..\\..\\x",
        "/live/test/source/index.m3u8%00",
        "/etc/passwd",
        "/live/test/source/1.0.m4s.mp4",
    ];
    for path in paths {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let res = raw(h.addr, request.as_bytes(), Duration::from_secs(2)).await;
        let status = raw_status(&res);
        assert!(
            matches!(status, Some(400 | 404)),
            "{path}: {}",
            String::from_utf8_lossy(&res)
        );
        assert!(
            !String::from_utf8_lossy(&res).contains("root:"),
            "{path} reached a file"
        );
    }
    for query in [
        "_HLS_msn=1e400",
        "_HLS_msn=NaN",
        "_HLS_msn=0x10",
        "_HLS_msn=%00",
        "_HLS_msn=1&_HLS_part=1&_HLS_part=2",
        "_HLS_skip=YES&_HLS_skip=NO",
    ] {
        let request = format!(
            "GET /live/test/source/index.m3u8?{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let res = raw(h.addr, request.as_bytes(), Duration::from_secs(2)).await;
        assert_eq!(raw_status(&res), Some(400), "{query}");
    }
    // Still serving.
    assert_eq!(h.get("source/index.m3u8").await.status(), StatusCode::OK);
    h.stop().await;
}

#[tokio::test]
async fn idle_connections_are_bounded_and_timed_out() {
    let limit = 8;
    let h = Harness::start(Options {
        http: HttpConfig {
            max_connections: limit,
            header_read_timeout: Duration::from_millis(600),
            ..HttpConfig::default()
        },
        ..Options::default()
    })
    .await;
    // Twice the limit of connections that never send a byte.
    let start = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..2 * limit {
        idle.push(
            tokio::net::TcpStream::connect(h.addr)
                .await
                .expect("connect"),
        );
    }
    assert!(
        Harness::eventually(Duration::from_secs(1), || h.metrics.connections()
            == limit as i64)
        .await
    );
    // A real client meanwhile: it waits for a slot, then is served.
    let client = h.client.clone();
    let url = h.url("source/index.m3u8");
    let real = tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) });
    let mut peak = 0;
    while !real.is_finished() {
        peak = peak.max(h.metrics.connections());
        assert!(start.elapsed() < Duration::from_secs(5), "never served");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(peak <= limit as i64, "{peak} connections open at once");
    assert_eq!(real.await.expect("task").expect("served"), StatusCode::OK);
    assert!(
        start.elapsed() >= Duration::from_millis(550),
        "served before any slot freed"
    );
    // The server closed the idle connections: each read sees the end.
    let mut closed = 0;
    for mut s in idle {
        let mut buf = [0u8; 64];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 2 * limit);
    assert!(
        Harness::eventually(Duration::from_secs(2), || h.metrics.connections() <= 1).await,
        "{} connections left",
        h.metrics.connections()
    );
    h.stop().await;
}

#[tokio::test]
async fn a_slow_request_head_is_cut_off() {
    let h = Harness::start(Options {
        http: HttpConfig {
            header_read_timeout: Duration::from_millis(500),
            ..HttpConfig::default()
        },
        ..Options::default()
    })
    .await;
    let mut s = tokio::net::TcpStream::connect(h.addr)
        .await
        .expect("connect");
    let t = Instant::now();
    // A byte every 200 ms: the head is never complete within the timeout.
    for b in b"GET /live/test/source/index.m3u8 HTTP/1.1\r\nHost: x\r\n" {
        if s.write_all(&[*b]).await.is_err() {
            break;
        }
        if t.elapsed() > Duration::from_secs(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut rest)).await;
    assert!(t.elapsed() < Duration::from_secs(3), "connection kept open");
    // Others are served all along.
    assert_eq!(h.get("source/index.m3u8").await.status(), StatusCode::OK);
    h.stop().await;
}

//! TLS: HTTP/2 and HTTP/1.1 by ALPN, from a self-signed certificate and from PEM files.
use std::time::Duration;

use origin::{HttpConfig, HttpState};
use reqwest::{StatusCode, Version};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::contains;
use crate::support::{Harness, Options};

async fn start_tls(
    h: &Harness,
    config: std::sync::Arc<rustls::ServerConfig>,
    http: HttpConfig,
) -> (
    String,
    CancellationToken,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let shutdown = CancellationToken::new();
    let state = HttpState::new(h.store.clone(), http, h.metrics.clone());
    let task = tokio::spawn(origin::serve_tls(listener, state, config, shutdown.clone()));
    (format!("https://localhost:{port}"), shutdown, task)
}

fn client(cert_pem: &str, http1: bool) -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("certificate");
    let mut b = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(cert)
        .resolve("localhost", "127.0.0.1:0".parse().expect("addr"));
    if http1 {
        b = b.http1_only();
    }
    b.build().expect("client")
}

#[tokio::test]
async fn h2_and_http1_over_tls_with_blocking_reload() {
    let h = Harness::start(Options::default()).await;
    let tls = origin::tls::self_signed().expect("self-signed");
    let (base, shutdown, task) = start_tls(&h, tls.config.clone(), HttpConfig::default()).await;
    for (http1, version) in [(false, Version::HTTP_2), (true, Version::HTTP_11)] {
        let c = client(&tls.cert_pem, http1);
        let res = c
            .get(format!("{base}/live/test/source/index.m3u8"))
            .send()
            .await
            .expect("GET over TLS");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.version(), version);
        // A blocked request over this protocol is answered when the part comes.
        let (msn, part) = h.hint("source");
        let url = format!("{base}/live/test/source/index.m3u8?_HLS_msn={msn}&_HLS_part={part}");
        let waiting = tokio::spawn(async move { c.get(url).send().await.expect("GET") });
        assert!(
            Harness::eventually(Duration::from_secs(2), || h.metrics.blocking_requests()
                == 1)
            .await
        );
        let t = Instant::now();
        h.push_until(h.position() + 0.4);
        let res = waiting.await.expect("task");
        assert_eq!(res.version(), version);
        let text = res.text().await.expect("body");
        assert!(contains(&text, msn, part));
        assert!(t.elapsed() < Duration::from_secs(1));
    }
    shutdown.cancel();
    task.await.expect("task").expect("serve_tls");
    h.stop().await;
}

#[tokio::test]
async fn an_idle_h2_connection_is_closed_and_a_bad_handshake_is_cut() {
    let h = Harness::start(Options::default()).await;
    let tls = origin::tls::self_signed().expect("self-signed");
    let (base, shutdown, task) = start_tls(
        &h,
        tls.config.clone(),
        HttpConfig {
            idle_timeout: Duration::from_millis(400),
            tls_handshake_timeout: Duration::from_millis(300),
            ..HttpConfig::default()
        },
    )
    .await;
    let c = client(&tls.cert_pem, false);
    let res = c
        .get(format!("{base}/live/test/index.m3u8"))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.version(), Version::HTTP_2);
    assert!(h.metrics.connections() >= 1);
    assert!(
        Harness::eventually(Duration::from_secs(3), || h.metrics.connections() == 0).await,
        "idle HTTP/2 connection kept"
    );
    // A peer that never completes a handshake.
    let port: u16 = base
        .rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("port");
    let _silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    assert!(Harness::eventually(Duration::from_secs(1), || h.metrics.connections() == 1).await);
    assert!(
        Harness::eventually(Duration::from_secs(2), || h.metrics.connections() == 0).await,
        "handshake not timed out"
    );
    shutdown.cancel();
    task.await.expect("task").expect("serve_tls");
    h.stop().await;
}

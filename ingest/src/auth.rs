//! Publish authorization: who may publish, and under which public stream name.
//!
//! The stream key a publisher sends is a secret; the public name (`<app>/<name>`, e.g.
//! `live/alice`) ends up in playback URLs. Three modes ([`AuthMode`]):
//!
//! - `open`: anyone may publish; the public name is `<app>/<key>` (local use, tests).
//! - `keys`: the config maps each secret key to a public name; an unknown key is refused.
//! - `webhook`: an HTTP `POST` to `webhook_url` with the JSON body
//!   `{"app": .., "key": .., "protocol": .., "peer": "ip:port"}` decides. Any 2xx allows;
//!   a 2xx JSON body `{"name": "live/x"}` names the stream, otherwise the name is
//!   `<app>/<key>`. A non-2xx status, a connection error or no answer within
//!   `webhook_timeout_ms` refuses.
//!
//! Every public name is checked with [`validate_stream_name`] before it is returned.
//! A [`Denied`] reason never contains the stream key: the server logs it and sends it to
//! the peer.
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use thiserror::Error;

/// Longest accepted segment of a public stream name, in bytes.
pub const MAX_NAME_SEGMENT_LEN: usize = 128;

/// Largest webhook response body read, in bytes; a longer body refuses the publish.
const MAX_WEBHOOK_BODY: usize = 64 * 1024;

/// How publishers are authorized (`auth.mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Anyone may publish; the key is the public name.
    Open,
    /// Only the keys listed in `auth.keys`.
    Keys,
    /// An HTTP callback decides.
    Webhook,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Open => "open",
            AuthMode::Keys => "keys",
            AuthMode::Webhook => "webhook",
        }
    }
}

/// `[auth]` settings.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `open`, `keys` or `webhook`.
    pub mode: AuthMode,
    /// Secret stream key -> public stream name (`live/alice`). Used by `keys` mode.
    pub keys: BTreeMap<String, String>,
    /// `http://` URL the `webhook` mode posts to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// How long the webhook may take to answer, in milliseconds.
    pub webhook_timeout_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Open,
            keys: BTreeMap::new(),
            webhook_url: None,
            webhook_timeout_ms: 2000,
        }
    }
}

/// A problem with an [`AuthConfig`]: `key` is the config key (`keys`, `webhook_url`, ...)
/// relative to the `[auth]` section.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("auth.{key}: {reason}")]
pub struct AuthConfigError {
    pub key: &'static str,
    pub reason: String,
}

impl AuthConfig {
    /// Checks what serde cannot: the settings the mode needs, URL form, public names.
    pub fn validate(&self) -> Result<(), AuthConfigError> {
        let err = |key, reason: String| Err(AuthConfigError { key, reason });
        if self.mode == AuthMode::Keys && self.keys.is_empty() {
            return err("keys", "mode \"keys\" needs at least one key".into());
        }
        for (key, name) in &self.keys {
            if key.is_empty() {
                return err("keys", "a stream key must not be empty".into());
            }
            if let Err(e) = validate_stream_name(name) {
                // The map key is a secret: name only the public side.
                return err("keys", format!("public name {name:?}: {e}"));
            }
        }
        if self.webhook_timeout_ms == 0 {
            return err("webhook_timeout_ms", "must be greater than 0".into());
        }
        match (&self.webhook_url, self.mode) {
            (None, AuthMode::Webhook) => {
                return err("webhook_url", "mode \"webhook\" needs a URL".into());
            }
            (Some(url), _) => match reqwest::Url::parse(url) {
                Err(e) => return err("webhook_url", format!("invalid URL {url:?}: {e}")),
                Ok(u) if u.scheme() != "http" => {
                    return err(
                        "webhook_url",
                        format!("only http:// URLs are supported, got {url:?}"),
                    );
                }
                Ok(_) => {}
            },
            (None, _) => {}
        }
        Ok(())
    }

    pub fn webhook_timeout(&self) -> Duration {
        Duration::from_millis(self.webhook_timeout_ms)
    }
}

/// Why a public stream name is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("must be <app>/<name> (exactly two segments)")]
    Segments,
    #[error("a segment is empty")]
    EmptySegment,
    #[error("a segment is longer than {MAX_NAME_SEGMENT_LEN} bytes")]
    TooLong,
    #[error("only A-Z a-z 0-9 . _ - are allowed in a segment")]
    Character,
    #[error("\"..\" is not allowed")]
    DotDot,
}

/// Checks a public stream name: `<app>/<name>`, each segment 1..=128 characters of
/// `[A-Za-z0-9._-]`, no `..` anywhere and no segment that is `.`. The name ends up in
/// URLs and object-store keys.
pub fn validate_stream_name(name: &str) -> Result<(), NameError> {
    let mut segments = 0;
    for seg in name.split('/') {
        segments += 1;
        if seg.is_empty() {
            return Err(NameError::EmptySegment);
        }
        if seg.len() > MAX_NAME_SEGMENT_LEN {
            return Err(NameError::TooLong);
        }
        if !seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(NameError::Character);
        }
        if seg.contains("..") || seg == "." {
            return Err(NameError::DotDot);
        }
    }
    if segments != 2 {
        return Err(NameError::Segments);
    }
    Ok(())
}

/// One publish attempt, as the ingest protocol saw it.
#[derive(Clone, Debug)]
pub struct PublishRequest<'a> {
    /// The application (RTMP app, first segment of an SRT stream id), e.g. `live`.
    pub app: &'a str,
    /// The secret stream key.
    pub key: &'a str,
    /// `rtmp`, `srt`, ...
    pub protocol: &'static str,
    pub peer: SocketAddr,
}

/// A refused publish. `reason` is safe to log and to send to the peer: it never contains
/// the stream key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    pub reason: String,
}

impl Denied {
    fn new(reason: impl Into<String>) -> Self {
        Denied {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Denied {}

#[derive(serde::Serialize)]
struct WebhookRequest<'a> {
    app: &'a str,
    key: &'a str,
    protocol: &'a str,
    peer: String,
}

#[derive(serde::Deserialize)]
struct WebhookAnswer {
    #[serde(default)]
    name: Option<String>,
}

/// How many publish attempts of one protocol were allowed and denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionCounts {
    pub protocol: &'static str,
    pub allowed: u64,
    pub denied: u64,
}

/// Decides publish attempts according to an [`AuthConfig`]. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Authenticator {
    config: AuthConfig,
    client: reqwest::Client,
    decisions: Mutex<Vec<DecisionCounts>>,
}

impl Authenticator {
    /// Validates `config` ([`AuthConfig::validate`]) and builds the HTTP client the
    /// webhook mode uses.
    pub fn new(config: AuthConfig) -> Result<Self, AuthConfigError> {
        config.validate()?;
        let client = reqwest::Client::builder()
            .timeout(config.webhook_timeout())
            .connect_timeout(config.webhook_timeout())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthConfigError {
                key: "webhook_url",
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Authenticator {
            config,
            client,
            decisions: Mutex::new(Vec::new()),
        })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Publish attempts decided so far, per protocol (for metrics).
    pub fn decisions(&self) -> Vec<DecisionCounts> {
        self.decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Decides one publish attempt: `Ok(public stream name)` or the reason it is refused.
    pub async fn authorize(&self, req: &PublishRequest<'_>) -> Result<String, Denied> {
        let decision = self.decide(req).await;
        let mut counts = self
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let i = match counts.iter().position(|c| c.protocol == req.protocol) {
            Some(i) => i,
            None => {
                counts.push(DecisionCounts {
                    protocol: req.protocol,
                    allowed: 0,
                    denied: 0,
                });
                counts.len() - 1
            }
        };
        match decision {
            Ok(_) => counts[i].allowed += 1,
            Err(_) => counts[i].denied += 1,
        }
        decision
    }

    async fn decide(&self, req: &PublishRequest<'_>) -> Result<String, Denied> {
        match self.config.mode {
            AuthMode::Open => {
                let name = format!("{}/{}", req.app, req.key);
                checked_name(name, "stream name")
            }
            AuthMode::Keys => match self.config.keys.get(req.key) {
                Some(name) => checked_name(name.clone(), "configured stream name"),
                None => Err(Denied::new("unknown stream key")),
            },
            AuthMode::Webhook => self.ask_webhook(req).await,
        }
    }

    async fn ask_webhook(&self, req: &PublishRequest<'_>) -> Result<String, Denied> {
        let Some(url) = self.config.webhook_url.as_deref() else {
            // `new` validated the config; keep the failure a refusal, not a panic.
            return Err(Denied::new("webhook: no webhook_url configured"));
        };
        let timeout = self.config.webhook_timeout();
        let body = WebhookRequest {
            app: req.app,
            key: req.key,
            protocol: req.protocol,
            peer: req.peer.to_string(),
        };
        let call = async {
            let mut resp = self.client.post(url).json(&body).send().await?;
            let status = resp.status();
            let mut buf = Vec::new();
            if status.is_success() {
                while let Some(chunk) = resp.chunk().await? {
                    buf.extend_from_slice(&chunk);
                    if buf.len() > MAX_WEBHOOK_BODY {
                        break;
                    }
                }
            }
            Ok::<_, reqwest::Error>((status, buf))
        };
        let (status, buf) = match tokio::time::timeout(timeout, call).await {
            Err(_) => return Err(timeout_denied(timeout)),
            Ok(Err(e)) if e.is_timeout() => return Err(timeout_denied(timeout)),
            Ok(Err(e)) => {
                let e = e.without_url();
                return Err(Denied::new(format!(
                    "webhook request failed: {}",
                    error_chain(&e)
                )));
            }
            Ok(Ok(answer)) => answer,
        };
        if !status.is_success() {
            return Err(Denied::new(format!("webhook refused with HTTP {status}")));
        }
        if buf.len() > MAX_WEBHOOK_BODY {
            return Err(Denied::new(format!(
                "webhook answer is larger than {MAX_WEBHOOK_BODY} bytes"
            )));
        }
        let named = if buf.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            // A 2xx body that is not `{"name": ..}` JSON still allows, with the default name.
            serde_json::from_slice::<WebhookAnswer>(&buf)
                .ok()
                .and_then(|a| a.name)
        };
        match named {
            Some(name) => checked_name(name, "stream name from the webhook"),
            None => checked_name(format!("{}/{}", req.app, req.key), "stream name"),
        }
    }
}

fn timeout_denied(timeout: Duration) -> Denied {
    Denied::new(format!(
        "webhook did not answer within {} ms",
        timeout.as_millis()
    ))
}

fn checked_name(name: String, what: &str) -> Result<String, Denied> {
    match validate_stream_name(&name) {
        Ok(()) => Ok(name),
        // Do not echo the name: in open and default-named modes it contains the key.
        Err(e) => Err(Denied::new(format!("invalid {what}: {e}"))),
    }
}

/// `e: source: source ...`, the way a person wants to read a connection failure.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;

    fn peer() -> SocketAddr {
        "192.0.2.7:50123".parse().unwrap()
    }

    fn req<'a>(app: &'a str, key: &'a str) -> PublishRequest<'a> {
        PublishRequest {
            app,
            key,
            protocol: "rtmp",
            peer: peer(),
        }
    }

    fn keys_config() -> AuthConfig {
        AuthConfig {
            mode: AuthMode::Keys,
            keys: [
                ("s3cr3t-a".to_string(), "live/alice".to_string()),
                ("s3cr3t-b".to_string(), "show/bob".to_string()),
            ]
            .into_iter()
            .collect(),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn stream_names() {
        for ok in ["live/alice", "a/b", "live/cam-1_HD.v2", "x.y/z"] {
            assert_eq!(validate_stream_name(ok), Ok(()), "{ok}");
        }
        let long = format!("live/{}", "a".repeat(MAX_NAME_SEGMENT_LEN + 1));
        let bad = [
            ("live", NameError::Segments),
            ("live/a/b", NameError::Segments),
            ("/alice", NameError::EmptySegment),
            ("live/", NameError::EmptySegment),
            ("", NameError::EmptySegment),
            ("live/al ice", NameError::Character),
            ("live/al%2Fice", NameError::Character),
            ("live/\u{e9}", NameError::Character),
            ("live/..", NameError::DotDot),
            ("live/a..b", NameError::DotDot),
            ("./alice", NameError::DotDot),
            (long.as_str(), NameError::TooLong),
        ];
        for (name, want) in bad {
            assert_eq!(validate_stream_name(name), Err(want), "{name:?}");
        }
    }

    #[tokio::test]
    async fn open_mode_names_app_slash_key() {
        let auth = Authenticator::new(AuthConfig::default()).unwrap();
        assert_eq!(
            auth.authorize(&req("live", "alice")).await.unwrap(),
            "live/alice"
        );
        let denied = auth.authorize(&req("live", "../etc")).await.unwrap_err();
        assert_eq!(denied.reason, "invalid stream name: \"..\" is not allowed");
        let denied = auth.authorize(&req("live", "a b")).await.unwrap_err();
        assert_eq!(
            denied.reason,
            "invalid stream name: only A-Z a-z 0-9 . _ - are allowed in a segment"
        );
        let denied = auth.authorize(&req("live/x", "alice")).await.unwrap_err();
        assert_eq!(
            denied.reason,
            "invalid stream name: must be <app>/<name> (exactly two segments)"
        );
    }

    #[tokio::test]
    async fn keys_mode_maps_keys_and_refuses_unknown() {
        let auth = Authenticator::new(keys_config()).unwrap();
        assert_eq!(
            auth.authorize(&req("live", "s3cr3t-a")).await.unwrap(),
            "live/alice"
        );
        // The app the publisher used does not matter: the key alone decides the name.
        assert_eq!(
            auth.authorize(&req("other", "s3cr3t-b")).await.unwrap(),
            "show/bob"
        );
        let denied = auth.authorize(&req("live", "alice")).await.unwrap_err();
        assert_eq!(denied.to_string(), "unknown stream key");
        let srt = PublishRequest {
            protocol: "srt",
            ..req("live", "nope")
        };
        auth.authorize(&srt).await.unwrap_err();
        assert_eq!(
            auth.decisions(),
            vec![
                DecisionCounts {
                    protocol: "rtmp",
                    allowed: 2,
                    denied: 1
                },
                DecisionCounts {
                    protocol: "srt",
                    allowed: 0,
                    denied: 1
                },
            ]
        );
    }

    #[test]
    fn config_validation() {
        let cases: Vec<(AuthConfig, &str)> = vec![
            (
                AuthConfig {
                    mode: AuthMode::Keys,
                    ..AuthConfig::default()
                },
                "auth.keys: mode \"keys\" needs at least one key",
            ),
            (
                AuthConfig {
                    keys: [("k".to_string(), "alice".to_string())].into(),
                    ..keys_config()
                },
                "auth.keys: public name \"alice\": must be <app>/<name> (exactly two segments)",
            ),
            (
                AuthConfig {
                    keys: [(String::new(), "live/a".to_string())].into(),
                    ..keys_config()
                },
                "auth.keys: a stream key must not be empty",
            ),
            (
                AuthConfig {
                    mode: AuthMode::Webhook,
                    ..AuthConfig::default()
                },
                "auth.webhook_url: mode \"webhook\" needs a URL",
            ),
            (
                AuthConfig {
                    mode: AuthMode::Webhook,
                    webhook_url: Some("https://auth.example/publish".into()),
                    ..AuthConfig::default()
                },
                "auth.webhook_url: only http:// URLs are supported, got \"https://auth.example/publish\"",
            ),
            (
                AuthConfig {
                    webhook_url: Some("not a url".into()),
                    ..AuthConfig::default()
                },
                "auth.webhook_url: invalid URL \"not a url\": relative URL without a base",
            ),
            (
                AuthConfig {
                    webhook_timeout_ms: 0,
                    ..AuthConfig::default()
                },
                "auth.webhook_timeout_ms: must be greater than 0",
            ),
        ];
        for (config, want) in cases {
            assert_eq!(config.validate().unwrap_err().to_string(), want);
            assert_eq!(Authenticator::new(config).unwrap_err().to_string(), want);
        }
        AuthConfig::default().validate().unwrap();
        keys_config().validate().unwrap();
    }

    /// What the test webhook answers.
    #[derive(Clone)]
    struct Reply {
        status: &'static str,
        body: &'static str,
        delay: Duration,
    }

    /// A one-request-per-connection HTTP/1.1 server on 127.0.0.1:0 that answers every
    /// request with `reply` and sends each request body it read to the returned channel.
    async fn webhook_server(reply: Reply) -> (String, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/publish", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (tx, reply) = (tx.clone(), reply.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let header_end = loop {
                        let n = sock.read(&mut chunk).await.unwrap();
                        assert!(n > 0, "client closed before the request ended");
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
                    assert!(head.starts_with("post /publish http/1.1\r\n"), "{head}");
                    assert!(head.contains("content-type: application/json"), "{head}");
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .expect("content-length")
                        .trim()
                        .parse()
                        .unwrap();
                    while buf.len() < header_end + len {
                        let n = sock.read(&mut chunk).await.unwrap();
                        assert!(n > 0, "client closed before the body ended");
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let body = String::from_utf8(buf[header_end..header_end + len].to_vec());
                    let _ = tx.send(body.unwrap());
                    tokio::time::sleep(reply.delay).await;
                    let answer = format!(
                        "HTTP/1.1 {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                        reply.status,
                        reply.body.len(),
                        reply.body
                    );
                    let _ = sock.write_all(answer.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        (url, rx)
    }

    fn webhook_config(url: String, timeout_ms: u64) -> AuthConfig {
        AuthConfig {
            mode: AuthMode::Webhook,
            webhook_url: Some(url),
            webhook_timeout_ms: timeout_ms,
            ..AuthConfig::default()
        }
    }

    const QUICK: Duration = Duration::ZERO;

    #[tokio::test]
    async fn webhook_allows_with_default_name_and_sends_the_request() {
        let (url, mut bodies) = webhook_server(Reply {
            status: "200 OK",
            body: "",
            delay: QUICK,
        })
        .await;
        let auth = Authenticator::new(webhook_config(url, 2000)).unwrap();
        let name = auth.authorize(&req("live", "k3y")).await.unwrap();
        assert_eq!(name, "live/k3y");
        let sent: serde_json::Value = serde_json::from_str(&bodies.recv().await.unwrap()).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"app": "live", "key": "k3y", "protocol": "rtmp", "peer": "192.0.2.7:50123"})
        );
    }

    #[tokio::test]
    async fn webhook_allows_with_name() {
        let (url, _bodies) = webhook_server(Reply {
            status: "200 OK",
            body: r#"{"name": "live/renamed", "extra": 1}"#,
            delay: QUICK,
        })
        .await;
        let auth = Authenticator::new(webhook_config(url, 2000)).unwrap();
        assert_eq!(
            auth.authorize(&req("live", "secret")).await.unwrap(),
            "live/renamed"
        );
    }

    #[tokio::test]
    async fn webhook_name_is_validated() {
        let (url, _bodies) = webhook_server(Reply {
            status: "201 Created",
            body: r#"{"name": "../../etc/passwd"}"#,
            delay: QUICK,
        })
        .await;
        let auth = Authenticator::new(webhook_config(url, 2000)).unwrap();
        let denied = auth.authorize(&req("live", "secret")).await.unwrap_err();
        assert_eq!(
            denied.reason,
            "invalid stream name from the webhook: \"..\" is not allowed"
        );
    }

    #[tokio::test]
    async fn webhook_403_refuses() {
        let (url, _bodies) = webhook_server(Reply {
            status: "403 Forbidden",
            body: r#"{"name": "live/ignored"}"#,
            delay: QUICK,
        })
        .await;
        let auth = Authenticator::new(webhook_config(url, 2000)).unwrap();
        let denied = auth.authorize(&req("live", "secret")).await.unwrap_err();
        assert_eq!(denied.reason, "webhook refused with HTTP 403 Forbidden");
        assert!(!denied.reason.contains("secret"));
    }

    #[tokio::test]
    async fn webhook_slower_than_the_timeout_refuses_in_about_the_timeout() {
        let (url, _bodies) = webhook_server(Reply {
            status: "200 OK",
            body: "",
            delay: Duration::from_secs(10),
        })
        .await;
        let auth = Authenticator::new(webhook_config(url, 300)).unwrap();
        let start = Instant::now();
        let denied = auth.authorize(&req("live", "secret")).await.unwrap_err();
        let took = start.elapsed();
        assert_eq!(denied.reason, "webhook did not answer within 300 ms");
        assert!(took >= Duration::from_millis(290), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    #[tokio::test]
    async fn webhook_connection_error_refuses() {
        // Bind then drop a listener: nothing listens on that port any more.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let auth = Authenticator::new(webhook_config(
            format!("http://{addr}/publish?token=tok"),
            2000,
        ))
        .unwrap();
        let denied = auth.authorize(&req("live", "secret")).await.unwrap_err();
        assert!(
            denied.reason.starts_with("webhook request failed: "),
            "{}",
            denied.reason
        );
        assert!(!denied.reason.contains("secret"), "{}", denied.reason);
        assert!(!denied.reason.contains("tok"), "{}", denied.reason);
    }
}

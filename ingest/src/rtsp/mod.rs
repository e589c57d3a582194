//! RTSP camera pulls: the server is the client here. Each `[[pull]]` entry of the config
//! names a public stream and an `rtsp://` URL; one task per entry ([`pull::run`]) asks the
//! camera for its media (DESCRIBE, SETUP, PLAY) with [retina], turns retina's frames into
//! [`media::StreamEvent`]s ([`convert`]) and publishes them on the hub under that name
//! (protocol `"rtsp"`).
//!
//! - Codecs: the first H.264 or H.265 video stream and the first AAC (`mpeg4-generic`)
//!   audio stream of the presentation; others are left out with a log line. retina
//!   delivers video as 4-byte length-prefixed NAL units and its parameters as an
//!   avcC/hvcC record, AAC as raw access units with the AudioSpecificConfig: the forms
//!   `media` uses, so no bitstream is rewritten here.
//! - Reconnect: when the camera goes away or errors, the task tries again after a
//!   backoff (250 ms, doubling to 2 s, back to 250 ms after a session that delivered
//!   media). Each new session publishes the name again; the packaging driver turns a
//!   re-publish within its grace period into an EXT-X-DISCONTINUITY on the same playlists.
//!   A pull never takes a name over: while another publisher (an RTMP push, say) has the
//!   name, or after one took it, the pull waits, looking again at each backoff step
//!   without contacting the camera.
//! - On demand (`on_demand = true`): the pull runs only while the origin sees requests
//!   for the stream ([`media::demand::Demand`]) and stops `on_demand_idle_ms` after the
//!   last one.
//! - Every wait is bounded: each RTSP step must answer within [`STEP_TIMEOUT`], a
//!   playing session that delivers no frame for [`MEDIA_TIMEOUT`] is dropped.
//!
//! # Peer bytes
//!
//! This module parses no protocol bytes from the camera itself: retina reads the RTSP
//! messages, SDP, RTP and RTCP (and is fuzzed in its own repository). What reaches our
//! code is retina's typed frames and parameters: the parameter records are parsed by the
//! `media::Codec` constructors, and H.265 frames' NAL unit headers are read to find
//! CRA/BLA keyframes ([`convert`]). The `rtsp_convert` fuzz target drives [`convert`]
//! with arbitrary frames, times and payloads.
//!
//! [retina]: https://docs.rs/retina
pub mod convert;
pub mod pull;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use pull::run;

/// The protocol label used for the hub and metrics.
pub const PROTOCOL: &str = "rtsp";
/// Each RTSP request (DESCRIBE, SETUP, PLAY) must be answered within this long.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// A playing session that delivers no frame for this long is dropped (and retried).
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(10);

/// How RTP travels from the camera.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Interleaved on the RTSP TCP connection (works through NAT and firewalls).
    #[default]
    Tcp,
    /// RTP/RTCP over UDP (LAN only: retina has no reorder buffer).
    Udp,
}

/// One `[[pull]]` entry.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    /// Public stream name (`<app>/<name>`), as playback URLs use it.
    pub name: String,
    /// `rtsp://host[:port]/path`; credentials may be given as `rtsp://user:pass@host/...`.
    pub url: String,
    #[serde(default)]
    pub transport: Transport,
    /// Digest/basic credentials, when not in the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Pull only while someone requests the stream from the origin.
    #[serde(default)]
    pub on_demand: bool,
    /// An on-demand pull stops after this many ms without a request.
    #[serde(default = "default_idle_ms")]
    pub on_demand_idle_ms: u64,
}

fn default_idle_ms() -> u64 {
    30_000
}

/// What is wrong with a `[[pull]]` entry: the field and the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullConfigError {
    /// The field name (`url`, `name`, ...).
    pub key: &'static str,
    pub reason: String,
}

/// A pull's URL split for retina: the URL without credentials, and the credentials.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: url::Url,
    pub credentials: Option<retina::client::Credentials>,
}

impl PullConfig {
    /// The idle time of an on-demand pull.
    pub fn idle(&self) -> Duration {
        Duration::from_millis(self.on_demand_idle_ms)
    }

    /// Checks the entry and splits its URL and credentials.
    pub fn target(&self) -> Result<Target, PullConfigError> {
        let err = |key, reason: String| PullConfigError { key, reason };
        crate::auth::validate_stream_name(&self.name).map_err(|e| err("name", e.to_string()))?;
        let mut url =
            url::Url::parse(&self.url).map_err(|e| err("url", format!("not a URL ({e})")))?;
        if url.scheme() != "rtsp" {
            return Err(err(
                "url",
                format!("scheme must be rtsp, got {:?}", url.scheme()),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(err("url", "no host".into()));
        }
        let in_url = (!url.username().is_empty() || url.password().is_some()).then(|| {
            retina::client::Credentials {
                username: percent_decode(url.username()),
                password: percent_decode(url.password().unwrap_or("")),
            }
        });
        let in_fields = match (&self.username, &self.password) {
            (None, None) => None,
            (Some(username), password) => Some(retina::client::Credentials {
                username: username.clone(),
                password: password.clone().unwrap_or_default(),
            }),
            (None, Some(_)) => {
                return Err(err("password", "set without a username".into()));
            }
        };
        let credentials = match (in_url, in_fields) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "username",
                    "credentials are in the url already: give them in one place".into(),
                ));
            }
            (a, b) => a.or(b),
        };
        // retina refuses URLs with credentials; they travel as `Credentials`.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        if self.on_demand_idle_ms == 0 {
            return Err(err("on_demand_idle_ms", "must be greater than 0".into()));
        }
        Ok(Target { url, credentials })
    }
}

/// `%XX` escapes of a URL's user info decoded (invalid escapes and non-UTF-8 kept as is).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

/// The state of every pull, for metrics (`ferrocast_rtsp_pull_up{stream}`,
/// `ferrocast_rtsp_reconnects_total{stream}`). Cheap to clone.
#[derive(Clone, Default)]
pub struct PullStatus(Arc<Mutex<BTreeMap<String, Arc<PullCounters>>>>);

/// One pull's counters.
#[derive(Debug, Default)]
pub struct PullCounters {
    up: AtomicBool,
    reconnects: AtomicU64,
}

/// One pull at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullSnapshot {
    pub stream: String,
    /// A session is playing and publishing.
    pub up: bool,
    /// Connection attempts after a session failed or was lost.
    pub reconnects: u64,
}

impl PullStatus {
    /// A status with every configured pull down and no reconnects.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> PullStatus {
        let status = PullStatus::default();
        for name in names {
            status.counters(name);
        }
        status
    }

    /// The counters of `name` (created on first use).
    pub fn counters(&self, name: &str) -> Arc<PullCounters> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(name.to_owned()).or_default())
    }

    /// Every pull, sorted by name.
    pub fn snapshot(&self) -> Vec<PullSnapshot> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.iter()
            .map(|(stream, c)| PullSnapshot {
                stream: stream.clone(),
                up: c.up.load(Ordering::Relaxed),
                reconnects: c.reconnects.load(Ordering::Relaxed),
            })
            .collect()
    }
}

impl PullCounters {
    pub(crate) fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }

    pub(crate) fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(url: &str) -> PullConfig {
        PullConfig {
            name: "live/cam".into(),
            url: url.into(),
            transport: Transport::Tcp,
            username: None,
            password: None,
            on_demand: false,
            on_demand_idle_ms: 30_000,
        }
    }

    #[test]
    fn credentials_move_out_of_the_url() {
        let t = pull("rtsp://admin:p%40ss@10.0.0.2:554/stream1")
            .target()
            .unwrap();
        assert_eq!(t.url.as_str(), "rtsp://10.0.0.2:554/stream1");
        let c = t.credentials.unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("admin", "p@ss")
        );

        let mut p = pull("rtsp://10.0.0.2/s");
        p.username = Some("u".into());
        p.password = Some("pw".into());
        let c = p.target().unwrap().credentials.unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "pw"));
        assert!(
            pull("rtsp://10.0.0.2/s")
                .target()
                .unwrap()
                .credentials
                .is_none()
        );
    }

    #[test]
    fn bad_entries_name_the_field() {
        let key = |p: PullConfig| p.target().unwrap_err().key;
        assert_eq!(key(pull("http://cam/s")), "url");
        assert_eq!(key(pull("not a url")), "url");
        let mut p = pull("rtsp://u:p@cam/s");
        p.username = Some("x".into());
        assert_eq!(key(p), "username");
        let mut p = pull("rtsp://cam/s");
        p.password = Some("x".into());
        assert_eq!(key(p), "password");
        let mut p = pull("rtsp://cam/s");
        p.name = "nope".into();
        assert_eq!(key(p), "name");
        let mut p = pull("rtsp://cam/s");
        p.on_demand_idle_ms = 0;
        assert_eq!(key(p), "on_demand_idle_ms");
    }

    #[test]
    fn status_counts() {
        let s = PullStatus::new(["live/b", "live/a"]);
        s.counters("live/a").set_up(true);
        s.counters("live/b").reconnected();
        let snap = s.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(
            snap[0],
            PullSnapshot {
                stream: "live/a".into(),
                up: true,
                reconnects: 0
            }
        );
        assert_eq!(snap[1].reconnects, 1);
    }
}

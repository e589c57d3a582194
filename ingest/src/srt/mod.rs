//! SRT ingest: one UDP port for many publishers (ffmpeg `srt://`, GStreamer `srtsink`,
//! `srt-live-transmit`, OBS, hardware encoders), each sending MPEG-TS.
//!
//! SRT is used for its loss recovery (ARQ within a fixed latency) and its encryption;
//! the media inside is MPEG-TS, demuxed by [`crate::mpegts`] into hub frames. The
//! protocol itself is [srt-tokio](https://docs.rs/srt-tokio), which interoperates with
//! libsrt; this module decides who may connect and moves their data:
//!
//! - [`streamid`]: the stream id a caller sends (`#!::r=live/<key>,m=publish`,
//!   `publish:live/<key>`, `live/<key>`) -> app and key.
//! - [`server`]: the listener. Each connection request is decided before the handshake
//!   completes: stream id, then [`crate::auth::Authenticator`] (the same as RTMP), then
//!   the stream's passphrase. A refusal is an SRT reject code the caller prints (libsrt:
//!   `SRT_REJ_*`), and our log names the reason. Accepted connections feed
//!   [`media::hub`] and report SRT statistics as [`media::hub::TransportStats`].
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;

use crate::auth::validate_stream_name;

pub mod server;
pub mod streamid;

/// `[srt]` settings.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SrtConfig {
    /// Run the SRT listener.
    pub enabled: bool,
    /// UDP listen address.
    pub listen: SocketAddr,
    /// Receive latency in milliseconds (SRTO_LATENCY): how long SRT may spend recovering
    /// a lost packet. The larger of ours and the caller's applies.
    pub latency_ms: u64,
    /// Passphrase every publisher must use (AES encryption), "" for none. 10 to 79
    /// characters. A stream listed in `passphrases` uses its own instead.
    pub passphrase: String,
    /// Smallest AES key length accepted from an encrypting caller, in bytes: 16, 24 or 32
    /// (AES-128/192/256). Callers choose theirs (`pbkeylen`).
    pub key_length: u16,
    /// Public stream name (`live/alice`) -> passphrase for that stream.
    pub passphrases: BTreeMap<String, String>,
    /// Most concurrent SRT connections; more are refused (SRT_REJ overload).
    pub max_connections: usize,
    /// A publisher that sends no media for this many milliseconds is dropped.
    pub idle_timeout_ms: u64,
}

impl Default for SrtConfig {
    fn default() -> Self {
        SrtConfig {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 9000)),
            latency_ms: 120,
            passphrase: String::new(),
            key_length: 16,
            passphrases: BTreeMap::new(),
            max_connections: 1000,
            idle_timeout_ms: 10_000,
        }
    }
}

/// A problem with an [`SrtConfig`]: `key` is relative to the `[srt]` section.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("srt.{key}: {reason}")]
pub struct SrtConfigError {
    pub key: &'static str,
    pub reason: String,
}

/// Longest receive latency accepted in the config, in milliseconds.
pub const MAX_LATENCY_MS: u64 = 60_000;

impl SrtConfig {
    /// Checks what serde cannot. Passphrases are never echoed.
    pub fn validate(&self) -> Result<(), SrtConfigError> {
        let err = |key, reason: String| Err(SrtConfigError { key, reason });
        if !matches!(self.key_length, 16 | 24 | 32) {
            return err(
                "key_length",
                format!("must be 16, 24 or 32, got {}", self.key_length),
            );
        }
        if !self.passphrase.is_empty()
            && let Err(reason) = check_passphrase(&self.passphrase)
        {
            return err("passphrase", reason);
        }
        for (name, passphrase) in &self.passphrases {
            if let Err(e) = validate_stream_name(name) {
                return err("passphrases", format!("stream name {name:?}: {e}"));
            }
            if let Err(reason) = check_passphrase(passphrase) {
                return err("passphrases", format!("{name}: {reason}"));
            }
        }
        if self.latency_ms > MAX_LATENCY_MS {
            return err(
                "latency_ms",
                format!("must be at most {MAX_LATENCY_MS}, got {}", self.latency_ms),
            );
        }
        if self.max_connections == 0 {
            return err("max_connections", "must be greater than 0".into());
        }
        if self.idle_timeout_ms == 0 {
            return err("idle_timeout_ms", "must be greater than 0".into());
        }
        Ok(())
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// The passphrase a publisher of `name` must use, if any.
    pub fn passphrase_for(&self, name: &str) -> Option<&str> {
        match self.passphrases.get(name) {
            Some(p) => Some(p),
            None if !self.passphrase.is_empty() => Some(&self.passphrase),
            None => None,
        }
    }
}

/// SRT passphrases are 10 to 79 bytes (SRTO_PASSPHRASE).
fn check_passphrase(passphrase: &str) -> Result<(), String> {
    let len = passphrase.len();
    if (10..=79).contains(&len) {
        Ok(())
    } else {
        Err(format!(
            "a passphrase must be 10 to 79 characters, got {len}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_key() {
        let cases: Vec<(SrtConfig, &str)> = vec![
            (
                SrtConfig {
                    key_length: 20,
                    ..SrtConfig::default()
                },
                "srt.key_length: must be 16, 24 or 32, got 20",
            ),
            (
                SrtConfig {
                    passphrase: "short".into(),
                    ..SrtConfig::default()
                },
                "srt.passphrase: a passphrase must be 10 to 79 characters, got 5",
            ),
            (
                SrtConfig {
                    passphrase: "x".repeat(80),
                    ..SrtConfig::default()
                },
                "srt.passphrase: a passphrase must be 10 to 79 characters, got 80",
            ),
            (
                SrtConfig {
                    passphrases: [("alice".to_string(), "0123456789".to_string())].into(),
                    ..SrtConfig::default()
                },
                "srt.passphrases: stream name \"alice\": must be <app>/<name> (exactly two segments)",
            ),
            (
                SrtConfig {
                    passphrases: [("live/alice".to_string(), "123".to_string())].into(),
                    ..SrtConfig::default()
                },
                "srt.passphrases: live/alice: a passphrase must be 10 to 79 characters, got 3",
            ),
            (
                SrtConfig {
                    latency_ms: 60_001,
                    ..SrtConfig::default()
                },
                "srt.latency_ms: must be at most 60000, got 60001",
            ),
            (
                SrtConfig {
                    max_connections: 0,
                    ..SrtConfig::default()
                },
                "srt.max_connections: must be greater than 0",
            ),
            (
                SrtConfig {
                    idle_timeout_ms: 0,
                    ..SrtConfig::default()
                },
                "srt.idle_timeout_ms: must be greater than 0",
            ),
        ];
        for (config, want) in cases {
            assert_eq!(config.validate().unwrap_err().to_string(), want);
        }
        SrtConfig::default().validate().unwrap();
    }

    #[test]
    fn per_stream_passphrase_wins_over_the_global_one() {
        let config = SrtConfig {
            passphrase: "global-passphrase".into(),
            passphrases: [("live/alice".to_string(), "alice-passphrase".to_string())].into(),
            ..SrtConfig::default()
        };
        config.validate().unwrap();
        assert_eq!(
            config.passphrase_for("live/alice"),
            Some("alice-passphrase")
        );
        assert_eq!(config.passphrase_for("live/bob"), Some("global-passphrase"));
        let open = SrtConfig::default();
        assert_eq!(open.passphrase_for("live/bob"), None);
    }
}

//! The `ferrocast` configuration: one TOML file, environment variables, CLI flags.
//!
//! Precedence, lowest first: the defaults ([`Config::default`]), the TOML file, environment
//! variables `FERROCAST_<SECTION>_<KEY>`, CLI flags ([`Overrides`]). The layers are merged
//! as `toml::Value` tables and deserialized once; then [`Config::validate`] checks what
//! serde cannot.
//!
//! Environment variables: the section is the first `_`-separated segment after
//! `FERROCAST_`, the key is the rest, lowercased (`FERROCAST_RTMP_CHUNK_SIZE` ->
//! `rtmp.chunk_size`). The value is parsed as a TOML value (`true`, `4096`,
//! `{ "k" = "live/a" }`), falling back to a plain string (`0.0.0.0:1935`). A variable that
//! names an unknown section or key is an error naming the variable. `FERROCAST_CONFIG`
//! is not a setting: it is the `--config` path.
//!
//! Every error message starts with the key path (`rtmp.chunk_size: ...`) and says where
//! the value came from when it was not the file.
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ingest::auth::AuthConfig;
use ingest::rtmp::server::RtmpConfig;
use ingest::rtsp::PullConfig;
use ingest::srt::SrtConfig;
use media::hub::HubConfig;
use origin::{HttpConfig, StoreConfig};
use packager::PackagerConfig;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use toml::{Table, Value};

/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "FERROCAST_";
/// The environment variable for `--config`; not a config key.
pub const ENV_CONFIG_FILE: &str = "FERROCAST_CONFIG";

/// The whole configuration. Every key has a default; `samples/ferrocast.toml` lists them.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub log: LogConfig,
    pub admin: AdminConfig,
    pub rtmp: RtmpConfig,
    pub srt: SrtConfig,
    pub auth: AuthConfig,
    pub hub: HubSection,
    pub http: HttpSection,
    pub packager: PackagerConfig,
    pub origin: OriginSection,
    pub shutdown: ShutdownConfig,
    pub transcode: transcode::TranscodeConfig,
    /// `[[pull]]`: RTSP cameras pulled as streams (none by default).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pull: Vec<PullConfig>,
}

/// `[log]`
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing_subscriber::EnvFilter` directive (`info`, `ferrocast=debug,info`).
    /// `RUST_LOG`, when set, replaces it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

/// `[admin]`: the metrics, health and API server.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
        }
    }
}

/// `[hub]`: mirrors [`media::hub::HubConfig`] (which has no serde derive).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubSection {
    /// A new publisher of a live stream name replaces the old one (true) or is refused.
    pub takeover: bool,
    /// Frames a subscriber may have waiting before it starts dropping to the next keyframe.
    pub subscriber_queue_frames: usize,
    /// Most events kept in a stream's GOP cache (what a new subscriber starts with).
    pub gop_cache_max_frames: usize,
    /// Most payload bytes kept in a stream's GOP cache.
    pub gop_cache_max_bytes: usize,
}

impl Default for HubSection {
    fn default() -> Self {
        HubConfig::default().into()
    }
}

impl From<HubConfig> for HubSection {
    fn from(c: HubConfig) -> Self {
        HubSection {
            takeover: c.takeover,
            subscriber_queue_frames: c.subscriber_queue_frames,
            gop_cache_max_frames: c.gop_cache_max_frames,
            gop_cache_max_bytes: c.gop_cache_max_bytes,
        }
    }
}

impl From<&HubSection> for HubConfig {
    fn from(s: &HubSection) -> Self {
        HubConfig {
            takeover: s.takeover,
            subscriber_queue_frames: s.subscriber_queue_frames,
            gop_cache_max_frames: s.gop_cache_max_frames,
            gop_cache_max_bytes: s.gop_cache_max_bytes,
        }
    }
}

/// `[http]`: the public LL-HLS origin and the player page.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Plain HTTP/1.1 listen address.
    pub listen: SocketAddr,
    /// Most open client connections per listener; more wait in the listen backlog.
    pub max_connections: usize,
    /// HTTP/1.1: a connection must send a complete request head within this many ms
    /// (from its start, or from the previous response).
    pub header_read_timeout_ms: u64,
    /// HTTP/2: a connection with no open request for this many ms is closed.
    pub idle_timeout_ms: u64,
    /// TLS listen address (HTTP/2 and HTTP/1.1). No default: when TLS is on
    /// (`tls_cert`/`tls_key` or `tls_self_signed`) and this is unset, the IP of `listen`
    /// with port 8443.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain for TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Serve TLS with a self-signed certificate made at startup (for local use).
    pub tls_self_signed: bool,
    /// A TLS handshake must complete within this many ms.
    pub tls_handshake_timeout_ms: u64,
}

/// Port of the TLS listener when `http.tls_listen` is not set.
pub const DEFAULT_TLS_PORT: u16 = 8443;

impl Default for HttpSection {
    fn default() -> Self {
        let d = HttpConfig::default();
        HttpSection {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            max_connections: d.max_connections,
            header_read_timeout_ms: d.header_read_timeout.as_millis() as u64,
            idle_timeout_ms: d.idle_timeout.as_millis() as u64,
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            tls_self_signed: false,
            tls_handshake_timeout_ms: d.tls_handshake_timeout.as_millis() as u64,
        }
    }
}

impl HttpSection {
    /// TLS is served (with files or self-signed).
    pub fn tls_enabled(&self) -> bool {
        self.tls_self_signed || self.tls_cert.is_some() || self.tls_key.is_some()
    }

    /// The TLS listen address when TLS is on: `tls_listen`, else `listen`'s IP with
    /// [`DEFAULT_TLS_PORT`].
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_enabled().then(|| {
            self.tls_listen
                .unwrap_or(SocketAddr::new(self.listen.ip(), DEFAULT_TLS_PORT))
        })
    }
}

/// `[origin]`: what happens around a stream's life in the origin.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OriginSection {
    /// After a publisher leaves, how long its playlists wait for it to come back (and
    /// continue after EXT-X-DISCONTINUITY) before they end with EXT-X-ENDLIST.
    pub grace_period_ms: u64,
    /// How long an ended stream stays downloadable before its state is dropped.
    pub linger_ms: u64,
    /// Parts and segments removed from a playlist stay downloadable for this many target
    /// durations.
    pub removed_retention_tds: u32,
}

impl Default for OriginSection {
    fn default() -> Self {
        let store = StoreConfig::default();
        OriginSection {
            grace_period_ms: 10_000,
            linger_ms: store.linger.as_millis() as u64,
            removed_retention_tds: store.removed_retention_tds,
        }
    }
}

impl OriginSection {
    pub fn grace_period(&self) -> Duration {
        Duration::from_millis(self.grace_period_ms)
    }

    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            linger: Duration::from_millis(self.linger_ms),
            removed_retention_tds: self.removed_retention_tds,
        }
    }
}

/// `[shutdown]`
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// On SIGTERM/SIGINT, how long open connections get to finish before the process exits.
    pub drain_timeout_ms: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            drain_timeout_ms: 5000,
        }
    }
}

impl ShutdownConfig {
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }
}

/// Settings given as CLI flags: the top layer. `None` leaves the lower layers alone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    /// `--admin ADDR` -> `admin.listen`
    pub admin_listen: Option<SocketAddr>,
    /// `--rtmp ADDR` -> `rtmp.listen`
    pub rtmp_listen: Option<SocketAddr>,
    /// `--log LEVEL` -> `log.level`
    pub log_level: Option<String>,
    /// `--http ADDR` -> `http.listen`
    pub http_listen: Option<SocketAddr>,
    /// `--tls-self-signed` -> `http.tls_self_signed = true`
    pub tls_self_signed: Option<bool>,
    /// `--srt ADDR` -> `srt.listen`
    pub srt_listen: Option<SocketAddr>,
}

/// Why a configuration was rejected. The message names the key (`rtmp.chunk_size`), or
/// the environment variable, and the problem.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {}: {io}", path.display())]
    Read { path: PathBuf, io: std::io::Error },
    /// The file is not valid TOML, or a value in it has the wrong type or an unknown key.
    /// `key` is empty when the problem is not inside a key (TOML syntax).
    #[error("{}{message} ({} line {line}, column {column})", key_prefix(key), path.display())]
    File {
        path: PathBuf,
        key: String,
        message: String,
        line: usize,
        column: usize,
    },
    /// An environment variable that names no key or holds an unusable value.
    #[error("{var}: {message}")]
    Env { var: String, message: String },
    /// A value that parsed but is not allowed.
    #[error("{key}: {message}{}", origin_suffix(origin))]
    Invalid {
        key: String,
        message: String,
        /// Where the value came from when not the file: `FERROCAST_X` or `--flag`.
        origin: Option<String>,
    },
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

fn origin_suffix(origin: &Option<String>) -> String {
    origin
        .as_ref()
        .map(|o| format!(" (set by {o})"))
        .unwrap_or_default()
}

/// The key path (`rtmp.chunk_size`, empty at the root) and the one-line message of a
/// deserialization error. For an unknown key the path names the table that holds it
/// (`rtmp: unknown field `chunksize``), since the message already names the key.
fn describe<E: fmt::Display>(e: &serde_path_to_error::Error<E>, message: &str) -> (String, String) {
    let mut segments: Vec<String> = e.path().iter().map(|s| s.to_string()).collect();
    if message.starts_with("unknown field") {
        segments.pop();
    }
    let message = message.trim_end().replace('\n', ": ");
    let mut key = String::new();
    for s in segments {
        if !key.is_empty() && !s.starts_with('[') {
            key.push('.');
        }
        key.push_str(&s);
    }
    (key, message)
}

/// Where each key set above the file came from, for error messages.
type Origins = BTreeMap<String, String>;

impl Config {
    /// Parses a TOML document (no env, no flags) and validates it. `path` only names the
    /// document in error messages.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config = parse_file(text, path)?.0;
        config.validate_with(&Origins::new())?;
        Ok(config)
    }

    /// Reads and validates one file, without env or flags (what `check-config` does).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        Config::from_toml_str(&text, path)
    }

    /// The effective configuration: defaults < `file` < `env` (all variables of the
    /// process, or any list in tests; names without the `FERROCAST_` prefix are ignored)
    /// < `flags`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => parse_file(&read(path)?, path)?.1,
            None => Table::new(),
        };
        let mut origins = Origins::new();
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k != ENV_CONFIG_FILE)
            .collect();
        env.sort();
        for (var, raw) in env {
            let (section, key, value) = env_entry(&var, &raw)?;
            origins.insert(format!("{section}.{key}"), var);
            set(&mut table, &section, &key, value);
        }
        let mut flag = |section: &str, key: &str, value: Value, name: &str| {
            origins.insert(format!("{section}.{key}"), name.to_string());
            set(&mut table, section, key, value);
        };
        if let Some(addr) = flags.admin_listen {
            flag(
                "admin",
                "listen",
                Value::String(addr.to_string()),
                "--admin",
            );
        }
        if let Some(addr) = flags.rtmp_listen {
            flag("rtmp", "listen", Value::String(addr.to_string()), "--rtmp");
        }
        if let Some(addr) = flags.srt_listen {
            flag("srt", "listen", Value::String(addr.to_string()), "--srt");
        }
        if let Some(level) = &flags.log_level {
            flag("log", "level", Value::String(level.clone()), "--log");
        }
        if let Some(addr) = flags.http_listen {
            flag("http", "listen", Value::String(addr.to_string()), "--http");
        }
        if let Some(on) = flags.tls_self_signed {
            flag(
                "http",
                "tls_self_signed",
                Value::Boolean(on),
                "--tls-self-signed",
            );
        }
        let config: Config = serde_path_to_error::deserialize(Value::Table(table)).map_err(
            // Each layer was checked on its own above; keep a readable error regardless.
            |e| {
                let (key, message) = describe(&e, e.inner().message());
                ConfigError::Invalid {
                    key,
                    message,
                    origin: None,
                }
            },
        )?;
        config.validate_with(&origins)?;
        Ok(config)
    }

    /// Checks the rules serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_with(&Origins::new())
    }

    fn validate_with(&self, origins: &Origins) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.to_string(),
            message,
            origin: origins.get(key).cloned(),
        };
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log.level) {
            return Err(invalid(
                "log.level",
                format!("invalid filter {:?}: {e}", self.log.level),
            ));
        }
        let rtmp = &self.rtmp;
        if !(128..=65536).contains(&rtmp.chunk_size) {
            return Err(invalid(
                "rtmp.chunk_size",
                format!("must be between 128 and 65536, got {}", rtmp.chunk_size),
            ));
        }
        let positive: [(&str, u64); 4] = [
            ("rtmp.max_message_size", rtmp.max_message_size.into()),
            ("rtmp.max_connections", rtmp.max_connections as u64),
            ("rtmp.handshake_timeout_ms", rtmp.handshake_timeout_ms),
            ("rtmp.idle_timeout_ms", rtmp.idle_timeout_ms),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0".into()));
            }
        }
        if let Err(e) = self.srt.validate() {
            return Err(invalid(&format!("srt.{}", e.key), e.reason));
        }
        if self.hub.subscriber_queue_frames == 0 {
            return Err(invalid(
                "hub.subscriber_queue_frames",
                "must be at least 1, got 0".into(),
            ));
        }
        if self.admin.listen.port() != 0 && self.admin.listen == self.rtmp.listen {
            return Err(invalid(
                "admin.listen",
                format!("{} is also rtmp.listen", self.admin.listen),
            ));
        }
        self.validate_http(&invalid)?;
        match self.packager.validate() {
            Ok(()) => {}
            Err(packager::Error::Config { key, problem }) => {
                return Err(invalid(&format!("packager.{key}"), problem));
            }
            Err(other) => return Err(invalid("packager", other.to_string())),
        }
        match self.transcode.validate() {
            Ok(()) => {}
            Err(transcode::Error::Config { key, problem }) => {
                return Err(invalid(&format!("transcode.{key}"), problem));
            }
            Err(other) => return Err(invalid("transcode", other.to_string())),
        }
        if self.transcode.keyframe_interval_ms > self.packager.segment_target_ms {
            // Rungs of a long-GOP source would then miss segment starts.
            return Err(invalid(
                "transcode.keyframe_interval_ms",
                format!(
                    "must not exceed packager.segment_target_ms ({}), or rung segments of a long-GOP source cannot start on keyframes",
                    self.packager.segment_target_ms
                ),
            ));
        }
        let origin = &self.origin;
        if origin.grace_period_ms > 3_600_000 {
            return Err(invalid(
                "origin.grace_period_ms",
                format!(
                    "must be at most 3600000 (one hour), got {}",
                    origin.grace_period_ms
                ),
            ));
        }
        if !(1000..=86_400_000).contains(&origin.linger_ms) {
            return Err(invalid(
                "origin.linger_ms",
                format!(
                    "must be between 1000 and 86400000, got {}",
                    origin.linger_ms
                ),
            ));
        }
        if !(1..=100).contains(&origin.removed_retention_tds) {
            return Err(invalid(
                "origin.removed_retention_tds",
                format!(
                    "must be between 1 and 100, got {}",
                    origin.removed_retention_tds
                ),
            ));
        }
        if let Err(e) = self.auth.validate() {
            let key = format!("auth.{}", e.key);
            return Err(invalid(&key, e.reason));
        }
        self.validate_pulls(&invalid)
    }

    /// `[[pull]]` entries: each one usable, no two with one name.
    fn validate_pulls(
        &self,
        invalid: &impl Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        for (i, pull) in self.pull.iter().enumerate() {
            if let Err(e) = pull.target() {
                return Err(invalid(&format!("pull[{i}].{}", e.key), e.reason));
            }
            if let Some(j) = self.pull[..i].iter().position(|p| p.name == pull.name) {
                return Err(invalid(
                    &format!("pull[{i}].name"),
                    format!("{:?} is already the name of pull[{j}]", pull.name),
                ));
            }
        }
        Ok(())
    }

    fn validate_http(
        &self,
        invalid: &impl Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let http = &self.http;
        let positive: [(&str, u64); 4] = [
            ("http.max_connections", http.max_connections as u64),
            ("http.header_read_timeout_ms", http.header_read_timeout_ms),
            ("http.idle_timeout_ms", http.idle_timeout_ms),
            (
                "http.tls_handshake_timeout_ms",
                http.tls_handshake_timeout_ms,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0".into()));
            }
        }
        match (&http.tls_cert, &http.tls_key) {
            (Some(_), None) => {
                return Err(invalid(
                    "http.tls_key",
                    "http.tls_cert is set: the key file is needed too".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "http.tls_cert",
                    "http.tls_key is set: the certificate file is needed too".into(),
                ));
            }
            (Some(_), Some(_)) if http.tls_self_signed => {
                return Err(invalid(
                    "http.tls_self_signed",
                    "cannot be combined with http.tls_cert and http.tls_key".into(),
                ));
            }
            _ => {}
        }
        if http.tls_listen.is_some() && !http.tls_enabled() {
            return Err(invalid(
                "http.tls_listen",
                "TLS needs http.tls_cert and http.tls_key, or http.tls_self_signed = true".into(),
            ));
        }
        // Two listeners of ours on one address (port 0 picks a free port each time).
        let mut taken: Vec<(&str, SocketAddr)> = vec![
            ("rtmp.listen", self.rtmp.listen),
            ("admin.listen", self.admin.listen),
        ];
        let mut ours: Vec<(&str, SocketAddr)> = vec![("http.listen", http.listen)];
        if let Some(addr) = http.tls_addr() {
            ours.push(("http.tls_listen", addr));
        }
        for (key, addr) in ours {
            if addr.port() != 0
                && let Some((other, _)) = taken.iter().find(|(_, a)| *a == addr)
            {
                let what = if key == "http.tls_listen" && http.tls_listen.is_none() {
                    format!("{addr} (the default with TLS on) is also {other}")
                } else {
                    format!("{addr} is also {other}")
                };
                return Err(invalid(key, what));
            }
            taken.push((key, addr));
        }
        Ok(())
    }

    /// The origin server settings from `[http]` (and the drain timeout).
    pub fn http_config(&self) -> HttpConfig {
        let ms = Duration::from_millis;
        HttpConfig {
            max_connections: self.http.max_connections,
            header_read_timeout: ms(self.http.header_read_timeout_ms),
            idle_timeout: ms(self.http.idle_timeout_ms),
            tls_handshake_timeout: ms(self.http.tls_handshake_timeout_ms),
            drain_timeout: self.shutdown.drain_timeout(),
            ..HttpConfig::default()
        }
    }

    /// The configuration as TOML, in the file's format (`print-config`).
    pub fn to_toml(&self) -> String {
        // Every field is a string, integer, bool, table or map of strings: serializable.
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render the config: {e}\n"))
    }

    pub fn hub_config(&self) -> HubConfig {
        HubConfig::from(&self.hub)
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|io| ConfigError::Read {
        path: path.to_path_buf(),
        io,
    })
}

/// Deserializes the file alone (for errors with line numbers) and returns it as a table too.
fn parse_file(text: &str, path: &Path) -> Result<(Config, Table), ConfigError> {
    let located = |key: String, message: String, e: &toml::de::Error| {
        let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
        ConfigError::File {
            path: path.to_path_buf(),
            key,
            message,
            line,
            column,
        }
    };
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        let message = e.message().trim_end().replace('\n', ": ");
        located(String::new(), message, &e)
    })?;
    let config = serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(
        |e: serde_path_to_error::Error<toml::de::Error>| {
            let (key, message) = describe(&e, e.inner().message());
            located(key, message, e.inner())
        },
    )?;
    Ok((config, table))
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn set(table: &mut Table, section: &str, key: &str, value: Value) {
    let entry = table
        .entry(section.to_string())
        .or_insert_with(|| Value::Table(Table::new()));
    if !entry.is_table() {
        // The file layer was deserialized first, so a section is always a table there.
        *entry = Value::Table(Table::new());
    }
    if let Value::Table(t) = entry {
        t.insert(key.to_string(), value);
    }
}

/// Parses one `FERROCAST_<SECTION>_<KEY>` variable into `(section, key, value)` and checks
/// that a config with only that setting deserializes.
fn env_entry(var: &str, raw: &str) -> Result<(String, String, Value), ConfigError> {
    let env_err = |message: String| ConfigError::Env {
        var: var.to_string(),
        message,
    };
    let rest = var[ENV_PREFIX.len()..].to_ascii_lowercase();
    let Some((section, key)) = rest
        .split_once('_')
        .filter(|(s, k)| !s.is_empty() && !k.is_empty())
    else {
        return Err(env_err(
            "expected FERROCAST_<SECTION>_<KEY>, e.g. FERROCAST_RTMP_LISTEN".into(),
        ));
    };
    let sections = section_names();
    if !sections.iter().any(|s| s == section) {
        return Err(env_err(format!(
            "unknown config section `{section}`, expected one of {}",
            sections
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut candidates = Vec::with_capacity(2);
    if let Some(v) = parse_toml_value(raw) {
        candidates.push(v);
    }
    candidates.push(Value::String(raw.to_string()));
    let mut first_error = None;
    for value in candidates {
        let mut table = Table::new();
        set(&mut table, section, key, value.clone());
        match serde_path_to_error::deserialize::<_, Config>(Value::Table(table)) {
            Ok(_) => return Ok((section.to_string(), key.to_string(), value)),
            Err(e) => {
                let (path, message) = describe(&e, e.inner().message());
                first_error.get_or_insert(format!("{}{message}", key_prefix(&path)));
            }
        }
    }
    Err(env_err(first_error.unwrap_or_default()))
}

/// `raw` as a single TOML value, or None when it is not one.
fn parse_toml_value(raw: &str) -> Option<Value> {
    let mut table: Table = format!("v = {raw}").parse().ok()?;
    if table.len() != 1 {
        return None;
    }
    table.remove("v")
}

fn section_names() -> Vec<String> {
    match Value::try_from(Config::default()) {
        Ok(Value::Table(t)) => t.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// The process's `FERROCAST_*` environment variables. A value that is not UTF-8 is an
/// error naming the variable.
pub fn process_env() -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (k, v) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        if !k.starts_with(ENV_PREFIX) {
            continue;
        }
        match v.into_string() {
            Ok(v) => out.push((k.to_string(), v)),
            Err(_) => {
                return Err(ConfigError::Env {
                    var: k.to_string(),
                    message: "value is not valid UTF-8".into(),
                });
            }
        }
    }
    Ok(out)
}

//! The config layers (file, env, flags), validation messages, the shipped sample, and the
//! `check-config` / `print-config` commands of the real binary.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Parser;
use ferrocast::cli::{Cli, Command as Sub, RunArgs};
use ferrocast::config::{Config, Overrides};
use ingest::auth::AuthMode;

fn sample_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/ferrocast.toml")
}

/// Writes `text` to a fresh file under Cargo's per-test temp dir.
fn temp_file(name: &str, text: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("config-{}-{n}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn sample_parses_and_equals_the_defaults() {
    let config = Config::from_file(&sample_path()).unwrap();
    assert_eq!(config, Config::default());
}

/// Every key of every section appears in the sample (set, or commented out when it has no
/// default), right under a comment line that documents it.
#[test]
fn sample_documents_every_key() {
    let sample = std::fs::read_to_string(sample_path()).unwrap();
    let lines: Vec<&str> = sample.lines().collect();
    let toml::Value::Table(defaults) = toml::Value::try_from(Config::default()).unwrap() else {
        panic!("the config is not a table");
    };
    let mut expected: Vec<(String, String, bool)> = Vec::new();
    for (section, table) in &defaults {
        let toml::Value::Table(table) = table else {
            panic!("[{section}] is not a table");
        };
        for (key, value) in table {
            expected.push((section.clone(), key.clone(), value.is_table()));
        }
    }
    // Keys without a default are not serialized: list them by hand.
    expected.push(("auth".into(), "webhook_url".into(), false));
    for key in ["tls_listen", "tls_cert", "tls_key"] {
        expected.push(("http".into(), key.into(), false));
    }
    assert!(expected.len() >= 32, "{expected:?}");

    for (section, key, is_table) in expected {
        let idx = if is_table {
            let header = format!("[{section}.{key}]");
            lines.iter().position(|l| l.trim() == header)
        } else {
            let header = format!("[{section}]");
            let start = lines
                .iter()
                .position(|l| l.trim() == header)
                .unwrap_or_else(|| panic!("no {header} in the sample"));
            lines[start + 1..]
                .iter()
                .take_while(|l| !l.trim_start().starts_with('['))
                .position(|l| {
                    let l = l.trim_start().trim_start_matches('#').trim_start();
                    l.strip_prefix(key.as_str())
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                })
                .map(|i| start + 1 + i)
        };
        let idx = idx.unwrap_or_else(|| panic!("{section}.{key} is not in the sample"));
        assert!(
            lines[idx - 1].trim_start().starts_with('#'),
            "{section}.{key} has no comment above it"
        );
    }
}

#[test]
fn print_config_output_round_trips() {
    let mut config = Config::default();
    config.auth.mode = AuthMode::Webhook;
    config.auth.webhook_url = Some("http://127.0.0.1:9/hook".into());
    config
        .auth
        .keys
        .insert("k-1 with space".into(), "live/alice".into());
    config.hub.takeover = false;
    config.rtmp.listen = addr("[::1]:1935");
    config.log.level = "ingest=trace,info".into();
    config.http.tls_listen = Some(addr("127.0.0.1:9443"));
    config.http.tls_cert = Some("/etc/ferrocast/cert.pem".into());
    config.http.tls_key = Some("/etc/ferrocast/key.pem".into());
    config.packager.window_segments = 8;
    config.origin.grace_period_ms = 0;
    config.pull.push(ingest::rtsp::PullConfig {
        name: "live/door".into(),
        url: "rtsp://10.0.0.7:554/Streaming/Channels/101".into(),
        transport: ingest::rtsp::Transport::Udp,
        username: Some("admin".into()),
        password: Some("p w".into()),
        on_demand: true,
        on_demand_idle_ms: 5000,
    });
    let text = config.to_toml();
    assert_eq!(
        Config::from_toml_str(&text, Path::new("printed.toml")).unwrap(),
        config
    );
    assert_eq!(
        Config::from_toml_str(&Config::default().to_toml(), Path::new("d.toml")).unwrap(),
        Config::default()
    );
}

/// `[[pull]]` entries: the defaults of the optional keys, credentials from the URL.
#[test]
fn pull_entries_parse_with_their_defaults() {
    let text = "[[pull]]\nname = \"live/door\"\nurl = \"rtsp://u:p%40ss@cam.lan/s\"\n\n\
                [[pull]]\nname = \"live/yard\"\nurl = \"rtsp://10.0.0.8/s\"\n\
                transport = \"udp\"\non_demand = true\n";
    let config = Config::from_toml_str(text, Path::new("pull.toml")).unwrap();
    assert_eq!(config.pull.len(), 2);
    let door = &config.pull[0];
    assert_eq!(door.transport, ingest::rtsp::Transport::Tcp);
    assert!(!door.on_demand);
    assert_eq!(door.on_demand_idle_ms, 30_000);
    let target = door.target().unwrap();
    assert_eq!(target.url.as_str(), "rtsp://cam.lan/s");
    let creds = target.credentials.unwrap();
    assert_eq!(
        (creds.username.as_str(), creds.password.as_str()),
        ("u", "p@ss")
    );
    let yard = &config.pull[1];
    assert_eq!(yard.transport, ingest::rtsp::Transport::Udp);
    assert!(yard.on_demand);
    assert!(Config::default().pull.is_empty());
}

#[test]
fn hub_section_converts_to_the_hub_config() {
    let defaults = media::hub::HubConfig::default();
    assert_eq!(Config::default().hub_config(), defaults);
    let text = "[hub]\ntakeover = false\nsubscriber_queue_frames = 7\ngop_cache_max_frames = 8\ngop_cache_max_bytes = 9\n";
    let hub = Config::from_toml_str(text, Path::new("h.toml"))
        .unwrap()
        .hub_config();
    assert_eq!(
        hub,
        media::hub::HubConfig {
            takeover: false,
            subscriber_queue_frames: 7,
            gop_cache_max_frames: 8,
            gop_cache_max_bytes: 9,
        }
    );
}

#[test]
fn invalid_files_have_exact_messages() {
    let cases: &[(&str, &str)] = &[
        (
            "[shutdown]\ndrain_timeout = 5\n",
            "shutdown: unknown field `drain_timeout`, expected `drain_timeout_ms` (bad.toml line 2, column 1)",
        ),
        (
            "[logs]\nlevel = \"info\"\n",
            "unknown field `logs`, expected one of `log`, `admin`, `rtmp`, `srt`, `auth`, `hub`, `http`, `packager`, `origin`, `shutdown`, `transcode`, `pull` (bad.toml line 1, column 2)",
        ),
        (
            "[rtmp]\nchunk_size = 64\n",
            "rtmp.chunk_size: must be between 128 and 65536, got 64",
        ),
        (
            "[rtmp]\nchunk_size = 70000\n",
            "rtmp.chunk_size: must be between 128 and 65536, got 70000",
        ),
        (
            "[rtmp]\nchunk_size = \"big\"\n",
            "rtmp.chunk_size: invalid type: string \"big\", expected u32 (bad.toml line 2, column 14)",
        ),
        (
            "[rtmp]\nmax_connections = 0\n",
            "rtmp.max_connections: must be greater than 0",
        ),
        (
            "[rtmp]\nlisten = \"nope\"\n",
            "rtmp.listen: invalid socket address syntax (bad.toml line 2, column 10)",
        ),
        (
            "[admin]\nlisten = \"127.0.0.1:1935\"\n[rtmp]\nlisten = \"127.0.0.1:1935\"\n",
            "admin.listen: 127.0.0.1:1935 is also rtmp.listen",
        ),
        (
            "[auth]\nmode = \"keys\"\n",
            "auth.keys: mode \"keys\" needs at least one key",
        ),
        (
            "[auth]\nmode = \"keys\"\n[auth.keys]\nk1 = \"alice\"\n",
            "auth.keys: public name \"alice\": must be <app>/<name> (exactly two segments)",
        ),
        (
            "[auth.keys]\nk1 = 5\n",
            "auth.keys.k1: invalid type: integer `5`, expected a string (bad.toml line 2, column 6)",
        ),
        (
            "[auth]\nmode = \"secret\"\n",
            "auth.mode: unknown variant `secret`, expected one of `open`, `keys`, `webhook` (bad.toml line 2, column 8)",
        ),
        (
            "[auth]\nmode = \"webhook\"\n",
            "auth.webhook_url: mode \"webhook\" needs a URL",
        ),
        (
            "[auth]\nmode = \"webhook\"\nwebhook_url = \"https://a.example/x\"\n",
            "auth.webhook_url: only http:// URLs are supported, got \"https://a.example/x\"",
        ),
        (
            "[auth]\nwebhook_timeout_ms = 0\n",
            "auth.webhook_timeout_ms: must be greater than 0",
        ),
        (
            "[log]\nlevel = \"info,ingest=loud\"\n",
            "log.level: invalid filter \"info,ingest=loud\": error parsing level filter: expected one of \"off\", \"error\", \"warn\", \"info\", \"debug\", \"trace\", or a number 0-5",
        ),
        (
            "[hub]\nsubscriber_queue_frames = 0\n",
            "hub.subscriber_queue_frames: must be at least 1, got 0",
        ),
        (
            "[hub]\ntakeover = \"yes\"\n",
            "hub.takeover: invalid type: string \"yes\", expected a boolean (bad.toml line 2, column 12)",
        ),
        (
            "[shutdown]\ndrain_timeout_ms = -1\n",
            "shutdown.drain_timeout_ms: invalid value: integer `-1`, expected u64 (bad.toml line 2, column 20)",
        ),
        (
            "rtmp = 5\n",
            "rtmp: invalid type: integer `5`, expected struct RtmpConfig (bad.toml line 1, column 8)",
        ),
        (
            "[rtmp\n",
            "invalid table header: expected `.`, `]` (bad.toml line 1, column 6)",
        ),
        (
            "[log]\nlevel = \n",
            "invalid string: expected `\"`, `'` (bad.toml line 2, column 9)",
        ),
        (
            "[http]\nmax_connections = 0\n",
            "http.max_connections: must be greater than 0",
        ),
        (
            "[http]\nheader_read_timeout_ms = 0\n",
            "http.header_read_timeout_ms: must be greater than 0",
        ),
        (
            "[http]\nlisten = \"127.0.0.1:1935\"\n[rtmp]\nlisten = \"127.0.0.1:1935\"\n",
            "http.listen: 127.0.0.1:1935 is also rtmp.listen",
        ),
        (
            "[http]\nlisten = \"127.0.0.1:8081\"\n",
            "http.listen: 127.0.0.1:8081 is also admin.listen",
        ),
        (
            "[http]\nlisten = \"0.0.0.0:8080\"\ntls_listen = \"0.0.0.0:8080\"\ntls_self_signed = true\n",
            "http.tls_listen: 0.0.0.0:8080 is also http.listen",
        ),
        (
            "[http]\nlisten = \"0.0.0.0:8443\"\ntls_self_signed = true\n",
            "http.tls_listen: 0.0.0.0:8443 (the default with TLS on) is also http.listen",
        ),
        (
            "[http]\ntls_listen = \"0.0.0.0:8443\"\n",
            "http.tls_listen: TLS needs http.tls_cert and http.tls_key, or http.tls_self_signed = true",
        ),
        (
            "[http]\ntls_cert = \"/etc/c.pem\"\n",
            "http.tls_key: http.tls_cert is set: the key file is needed too",
        ),
        (
            "[http]\ntls_key = \"/etc/k.pem\"\n",
            "http.tls_cert: http.tls_key is set: the certificate file is needed too",
        ),
        (
            "[http]\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\ntls_self_signed = true\n",
            "http.tls_self_signed: cannot be combined with http.tls_cert and http.tls_key",
        ),
        (
            "[http]\nlisten = \"localhost:80\"\n",
            "http.listen: invalid socket address syntax (bad.toml line 2, column 10)",
        ),
        (
            "[http]\ntls = true\n",
            "http: unknown field `tls`, expected one of `listen`, `max_connections`, `header_read_timeout_ms`, `idle_timeout_ms`, `tls_listen`, `tls_cert`, `tls_key`, `tls_self_signed`, `tls_handshake_timeout_ms` (bad.toml line 2, column 1)",
        ),
        (
            "[packager]\npart_target_ms = 20\n",
            "packager.part_target_ms: must be between 50 and 2000, got 20",
        ),
        (
            "[packager]\nsegment_target_ms = 1000\npart_target_ms = 600\n",
            "packager.part_target_ms: must be at most half of segment_target_ms (1000), got 600",
        ),
        (
            "[packager]\nwindow_segments = 3\n",
            "packager.window_segments: must be between 6 and 1000, got 3",
        ),
        (
            "[packager]\nsegment_target = 2\n",
            "packager: unknown field `segment_target`, expected one of `segment_target_ms`, `part_target_ms`, `window_segments` (bad.toml line 2, column 1)",
        ),
        (
            "[origin]\ngrace_period_ms = 3600001\n",
            "origin.grace_period_ms: must be at most 3600000 (one hour), got 3600001",
        ),
        (
            "[origin]\nlinger_ms = 10\n",
            "origin.linger_ms: must be between 1000 and 86400000, got 10",
        ),
        (
            "[origin]\nremoved_retention_tds = 0\n",
            "origin.removed_retention_tds: must be between 1 and 100, got 0",
        ),
        (
            "[transcode]\nx264_preset = \"turbo\"\n",
            "transcode.x264_preset: must be one of ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow, placebo, got \"turbo\"",
        ),
        (
            "[transcode]\nrungs = [{ name = \"a\", height = 721, video_bitrate_kbps = 800, max_fps = 30, profile = \"main\" }]\n",
            "transcode.rungs[0].height: must be even and between 64 and 4320, got 721",
        ),
        (
            "[transcode.streams.\"live/a\"]\nrungs = [\"999p\"]\n",
            "transcode.streams.\"live/a\".rungs: no rung named \"999p\" in rungs",
        ),
        (
            "[origin]\ngrace_period_ms = -5\n",
            "origin.grace_period_ms: invalid value: integer `-5`, expected u64 (bad.toml line 2, column 19)",
        ),
        (
            "[[pull]]\nname = \"live/a\"\nurl = \"rtsp://cam/a\"\n[[pull]]\nname = \"live/b\"\nurl = \"http://cam/b\"\n",
            "pull[1].url: scheme must be rtsp, got \"http\"",
        ),
        (
            "[[pull]]\nname = \"live/a\"\nurl = \"rtsp://cam/a\"\n[[pull]]\nname = \"live/a\"\nurl = \"rtsp://cam/b\"\n",
            "pull[1].name: \"live/a\" is already the name of pull[0]",
        ),
        (
            "[[pull]]\nname = \"cam\"\nurl = \"rtsp://cam/a\"\n",
            "pull[0].name: must be <app>/<name> (exactly two segments)",
        ),
        (
            "[[pull]]\nname = \"live/a\"\nurl = \"rtsp://u:p@cam/a\"\nusername = \"v\"\n",
            "pull[0].username: credentials are in the url already: give them in one place",
        ),
        (
            "[[pull]]\nname = \"live/a\"\nurl = \"rtsp://cam/a\"\npassword = \"p\"\n",
            "pull[0].password: set without a username",
        ),
        (
            "[[pull]]\nname = \"live/a\"\nurl = \"rtsp://cam/a\"\non_demand_idle_ms = 0\n",
            "pull[0].on_demand_idle_ms: must be greater than 0",
        ),
        (
            "[[pull]]\nname = \"live/a\"\nurl = \"rtsp://cam/a\"\ntransport = \"sctp\"\n",
            "pull[0].transport: unknown variant `sctp`, expected `tcp` or `udp` (bad.toml line 4, column 13)",
        ),
        (
            "[[pull]]\nname = \"live/a\"\n",
            "pull[0]: missing field `url` (bad.toml line 1, column 1)",
        ),
        (
            "[[pull]]\nname = \"live/a\"\nurl = \"rtsp://cam/a\"\nport = 554\n",
            "pull[0]: unknown field `port`, expected one of `name`, `url`, `transport`, `username`, `password`, `on_demand`, `on_demand_idle_ms` (bad.toml line 4, column 1)",
        ),
    ];
    for (text, want) in cases {
        let err = Config::from_toml_str(text, Path::new("bad.toml"))
            .expect_err(text)
            .to_string();
        assert_eq!(&err, want, "for {text:?}");
    }
}

/// The RtmpConfig fields belong to the ingest crate; pin the start and the location.
#[test]
fn unknown_rtmp_key_names_the_section_and_line() {
    let err = Config::from_toml_str("[log]\n\n[rtmp]\nchunksize = 5\n", Path::new("bad.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("rtmp: unknown field `chunksize`, expected one of `listen`, `chunk_size`"),
        "{err}"
    );
    assert!(err.ends_with("(bad.toml line 4, column 1)"), "{err}");
}

#[test]
fn a_missing_file_names_the_path() {
    let err = Config::from_file(Path::new("/nonexistent/ferrocast.toml"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "cannot read config file /nonexistent/ferrocast.toml: No such file or directory (os error 2)"
    );
}

#[test]
fn env_overrides_each_section() {
    let config = Config::load(
        None,
        env(&[
            ("FERROCAST_LOG_LEVEL", "debug"),
            ("FERROCAST_ADMIN_LISTEN", "127.0.0.1:9100"),
            ("FERROCAST_RTMP_LISTEN", "127.0.0.1:1936"),
            ("FERROCAST_RTMP_CHUNK_SIZE", "8192"),
            ("FERROCAST_AUTH_MODE", "keys"),
            ("FERROCAST_AUTH_KEYS", r#"{ "s3cret" = "live/alice" }"#),
            ("FERROCAST_HUB_TAKEOVER", "false"),
            ("FERROCAST_HUB_GOP_CACHE_MAX_BYTES", "1000"),
            ("FERROCAST_SHUTDOWN_DRAIN_TIMEOUT_MS", "250"),
            ("FERROCAST_HTTP_LISTEN", "127.0.0.1:9080"),
            ("FERROCAST_HTTP_TLS_LISTEN", "127.0.0.1:9443"),
            ("FERROCAST_HTTP_TLS_SELF_SIGNED", "true"),
            ("FERROCAST_HTTP_MAX_CONNECTIONS", "50"),
            ("FERROCAST_PACKAGER_PART_TARGET_MS", "300"),
            ("FERROCAST_ORIGIN_GRACE_PERIOD_MS", "2500"),
            ("FERROCAST_ORIGIN_LINGER_MS", "5000"),
            // Not settings: ignored.
            ("PATH", "/usr/bin"),
            ("FERROCAST_CONFIG", "/elsewhere.toml"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    let mut want = Config::default();
    want.log.level = "debug".into();
    want.admin.listen = addr("127.0.0.1:9100");
    want.rtmp.listen = addr("127.0.0.1:1936");
    want.rtmp.chunk_size = 8192;
    want.auth.mode = AuthMode::Keys;
    want.auth.keys.insert("s3cret".into(), "live/alice".into());
    want.hub.takeover = false;
    want.hub.gop_cache_max_bytes = 1000;
    want.shutdown.drain_timeout_ms = 250;
    want.http.listen = addr("127.0.0.1:9080");
    want.http.tls_listen = Some(addr("127.0.0.1:9443"));
    want.http.tls_self_signed = true;
    want.http.max_connections = 50;
    want.packager.part_target_ms = 300;
    want.origin.grace_period_ms = 2500;
    want.origin.linger_ms = 5000;
    assert_eq!(config, want);
    assert_eq!(config.http.tls_addr(), Some(addr("127.0.0.1:9443")));
    assert_eq!(config.origin.store_config().linger, Duration::from_secs(5));
}

#[test]
fn env_beats_the_file_and_leaves_its_other_keys() {
    let file = temp_file(
        "env-beats-file",
        "[rtmp]\nchunk_size = 8192\nmax_connections = 7\n[auth]\nwebhook_timeout_ms = 900\n",
    );
    let config = Config::load(
        Some(&file),
        env(&[
            ("FERROCAST_RTMP_CHUNK_SIZE", "16384"),
            ("FERROCAST_AUTH_WEBHOOK_URL", "http://127.0.0.1:9/x"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.rtmp.chunk_size, 16384);
    assert_eq!(config.rtmp.max_connections, 7);
    assert_eq!(config.auth.webhook_timeout_ms, 900);
    assert_eq!(
        config.auth.webhook_url.as_deref(),
        Some("http://127.0.0.1:9/x")
    );
}

#[test]
fn a_string_setting_may_look_like_another_toml_type() {
    // "5" parses as a TOML integer; the string fallback makes it a valid filter.
    let config = Config::load(
        None,
        env(&[("FERROCAST_LOG_LEVEL", "5")]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.log.level, "5");
}

#[test]
fn env_errors_name_the_variable() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "FERROCAST_RTMPX_LISTEN",
            "0.0.0.0:1",
            "FERROCAST_RTMPX_LISTEN: unknown config section `rtmpx`, expected one of `admin`, `auth`, `http`, `hub`, `log`, `origin`, `packager`, `rtmp`, `shutdown`, `srt`, `transcode`",
        ),
        (
            "FERROCAST_SHUTDOWN_DRAIN",
            "5",
            "FERROCAST_SHUTDOWN_DRAIN: shutdown: unknown field `drain`, expected `drain_timeout_ms`",
        ),
        (
            "FERROCAST_LOG",
            "debug",
            "FERROCAST_LOG: expected FERROCAST_<SECTION>_<KEY>, e.g. FERROCAST_RTMP_LISTEN",
        ),
        (
            "FERROCAST_RTMP_CHUNK_SIZE",
            "abc",
            "FERROCAST_RTMP_CHUNK_SIZE: rtmp.chunk_size: invalid type: string \"abc\", expected u32",
        ),
        (
            "FERROCAST_RTMP_CHUNK_SIZE",
            "-5",
            "FERROCAST_RTMP_CHUNK_SIZE: rtmp.chunk_size: invalid value: integer `-5`, expected u32",
        ),
        (
            "FERROCAST_HUB_TAKEOVER",
            "yes",
            "FERROCAST_HUB_TAKEOVER: hub.takeover: invalid type: string \"yes\", expected a boolean",
        ),
        (
            "FERROCAST_RTMP_CHUNK_SIZE",
            "64",
            "rtmp.chunk_size: must be between 128 and 65536, got 64 (set by FERROCAST_RTMP_CHUNK_SIZE)",
        ),
        (
            "FERROCAST_AUTH_MODE",
            "keys",
            "auth.keys: mode \"keys\" needs at least one key",
        ),
        (
            "FERROCAST_HTTP_TLS_SELF_SIGNED",
            "yes",
            "FERROCAST_HTTP_TLS_SELF_SIGNED: http.tls_self_signed: invalid type: string \"yes\", expected a boolean",
        ),
        (
            "FERROCAST_PACKAGER_WINDOW_SEGMENTS",
            "2",
            "packager.window_segments: must be between 6 and 1000, got 2 (set by FERROCAST_PACKAGER_WINDOW_SEGMENTS)",
        ),
        (
            "FERROCAST_HTTP_TLS_LISTEN",
            "127.0.0.1:8443",
            "http.tls_listen: TLS needs http.tls_cert and http.tls_key, or http.tls_self_signed = true (set by FERROCAST_HTTP_TLS_LISTEN)",
        ),
    ];
    for (var, value, want) in cases {
        let err = Config::load(None, env(&[(var, value)]), &Overrides::default())
            .expect_err(var)
            .to_string();
        assert_eq!(&err, want);
    }
}

fn run_args(argv: &[&str]) -> RunArgs {
    let cli = Cli::try_parse_from(argv).unwrap();
    match cli.command {
        Sub::Serve(args) | Sub::PrintConfig(args) => args,
        other => panic!("not serve/print-config: {other:?}"),
    }
}

/// A file and an env var set the same keys the flags set; only the flag given wins.
fn layered(argv: &[&str]) -> Config {
    let file = temp_file(
        "flags",
        "[log]\nlevel = \"warn\"\n[admin]\nlisten = \"127.0.0.1:7001\"\n[rtmp]\nlisten = \"127.0.0.1:7002\"\n[http]\nlisten = \"127.0.0.1:7006\"\ntls_self_signed = false\n",
    );
    let args = run_args(argv);
    let config = Config::load(
        Some(&file),
        env(&[
            ("FERROCAST_RTMP_LISTEN", "127.0.0.1:7003"),
            ("FERROCAST_HTTP_LISTEN", "127.0.0.1:7008"),
        ]),
        &args.overrides(),
    );
    std::fs::remove_file(&file).unwrap();
    config.unwrap()
}

#[test]
fn flag_rtmp_overrides_env_and_file() {
    let config = layered(&["ferrocast", "serve", "--rtmp", "127.0.0.1:7004"]);
    assert_eq!(config.rtmp.listen, addr("127.0.0.1:7004"));
    assert_eq!(config.admin.listen, addr("127.0.0.1:7001"));
    assert_eq!(config.log.level, "warn");
}

#[test]
fn srt_flag_env_and_validation() {
    let config = layered(&["ferrocast", "serve", "--srt", "127.0.0.1:7011"]);
    assert_eq!(config.srt.listen, addr("127.0.0.1:7011"));
    let config = Config::load(
        None,
        env(&[
            ("FERROCAST_SRT_LATENCY_MS", "400"),
            (
                "FERROCAST_SRT_PASSPHRASES",
                "{ \"live/alice\" = \"alice-passphrase\" }",
            ),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.srt.latency_ms, 400);
    assert_eq!(
        config.srt.passphrase_for("live/alice"),
        Some("alice-passphrase")
    );
    let err = Config::load(
        None,
        env(&[("FERROCAST_SRT_PASSPHRASE", "short")]),
        &Overrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "srt.passphrase: a passphrase must be 10 to 79 characters, got 5 (set by FERROCAST_SRT_PASSPHRASE)"
    );
    let err = Config::load(
        None,
        env(&[("FERROCAST_SRT_KEY_LENGTH", "20")]),
        &Overrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "srt.key_length: must be 16, 24 or 32, got 20 (set by FERROCAST_SRT_KEY_LENGTH)"
    );
}

#[test]
fn flag_admin_overrides_the_file() {
    let config = layered(&["ferrocast", "serve", "--admin", "[::1]:7005"]);
    assert_eq!(config.admin.listen, addr("[::1]:7005"));
    assert_eq!(config.rtmp.listen, addr("127.0.0.1:7003"));
    assert_eq!(config.log.level, "warn");
}

#[test]
fn flag_log_overrides_the_file() {
    let config = layered(&["ferrocast", "print-config", "--log", "ingest=trace,info"]);
    assert_eq!(config.log.level, "ingest=trace,info");
    assert_eq!(config.admin.listen, addr("127.0.0.1:7001"));
    assert_eq!(config.rtmp.listen, addr("127.0.0.1:7003"));
}

#[test]
fn flag_http_overrides_env_and_file() {
    let config = layered(&["ferrocast", "serve", "--http", "127.0.0.1:7010"]);
    assert_eq!(config.http.listen, addr("127.0.0.1:7010"));
    assert!(!config.http.tls_self_signed);
    assert_eq!(config.http.tls_addr(), None);
    assert_eq!(config.rtmp.listen, addr("127.0.0.1:7003"));
    assert_eq!(config.admin.listen, addr("127.0.0.1:7001"));
}

#[test]
fn flag_tls_self_signed_overrides_the_file() {
    let config = layered(&["ferrocast", "serve", "--tls-self-signed"]);
    assert!(config.http.tls_self_signed);
    // No tls_listen anywhere: the IP of http.listen (from the env) with port 8443.
    assert_eq!(config.http.listen, addr("127.0.0.1:7008"));
    assert_eq!(config.http.tls_addr(), Some(addr("127.0.0.1:8443")));
    assert_eq!(config.log.level, "warn");
    let config = layered(&[
        "ferrocast",
        "print-config",
        "--tls-self-signed",
        "--http",
        "[::1]:7011",
    ]);
    assert_eq!(config.http.listen, addr("[::1]:7011"));
    assert_eq!(config.http.tls_addr(), Some(addr("[::1]:8443")));
}

#[test]
fn flag_tls_self_signed_conflicts_are_named() {
    let file = temp_file(
        "tls-files",
        "[http]\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n",
    );
    let args = run_args(&["ferrocast", "serve", "--tls-self-signed"]);
    let err = Config::load(Some(&file), no_env(), &args.overrides())
        .unwrap_err()
        .to_string();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(
        err,
        "http.tls_self_signed: cannot be combined with http.tls_cert and http.tls_key (set by --tls-self-signed)"
    );
    let err = Cli::try_parse_from(["ferrocast", "serve", "--http", "localhost:80"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid value 'localhost:80' for '--http <ADDR>'"),
        "{err}"
    );
    // A switch takes no value.
    assert!(Cli::try_parse_from(["ferrocast", "serve", "--tls-self-signed", "true"]).is_err());
}

#[test]
fn absent_flags_leave_the_lower_layers_alone() {
    let args = run_args(&["ferrocast", "serve"]);
    assert_eq!(args.overrides(), Overrides::default());
    let config = layered(&["ferrocast", "serve"]);
    assert_eq!(config.log.level, "warn");
    assert_eq!(config.admin.listen, addr("127.0.0.1:7001"));
    assert_eq!(config.rtmp.listen, addr("127.0.0.1:7003"));
    assert_eq!(config.http.listen, addr("127.0.0.1:7008"));
    assert!(!config.http.tls_self_signed);
}

#[test]
fn flag_values_are_validated_and_named() {
    let err = Cli::try_parse_from(["ferrocast", "serve", "--rtmp", "nope"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid value 'nope' for '--rtmp <ADDR>'"),
        "{err}"
    );
    let args = run_args(&["ferrocast", "serve", "--log", "info,x=loud"]);
    let err = Config::load(None, no_env(), &args.overrides())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("log.level: invalid filter \"info,x=loud\": "),
        "{err}"
    );
    assert!(err.ends_with(" (set by --log)"), "{err}");
}

#[test]
fn config_flag_reads_the_file() {
    let file = temp_file("config-flag", "[hub]\ntakeover = false\n");
    let args = run_args(&["ferrocast", "serve", "--config", file.to_str().unwrap()]);
    assert_eq!(args.config.as_deref(), Some(file.as_path()));
    let config = Config::load(args.config.as_deref(), no_env(), &args.overrides()).unwrap();
    assert!(!config.hub.takeover);
}

/// The binary, with no `FERROCAST_*` or `RUST_LOG` variable from the test's environment.
fn ferrocast() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrocast"));
    for (k, _) in std::env::vars_os() {
        if k.to_str()
            .is_some_and(|k| k.starts_with("FERROCAST_") || k == "RUST_LOG")
        {
            cmd.env_remove(k);
        }
    }
    cmd
}

#[test]
fn check_config_exit_codes() {
    let out = ferrocast()
        .args(["check-config"])
        .arg(sample_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout, format!("{}: ok\n", sample_path().display()));

    let bad = temp_file("check-bad", "[rtmp]\nchunk_size = 64\n");
    let out = ferrocast()
        .args(["check-config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: rtmp.chunk_size: must be between 128 and 65536, got 64\n"
    );
    assert!(out.stdout.is_empty());

    let out = ferrocast()
        .args(["check-config", "/nonexistent/x.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    // No file argument: a usage error.
    let out = ferrocast().args(["check-config"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn check_config_ignores_the_environment() {
    let out = ferrocast()
        .env("FERROCAST_RTMP_CHUNK_SIZE", "64")
        .args(["check-config"])
        .arg(sample_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn print_config_prints_the_effective_config() {
    let out = ferrocast().args(["print-config"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        Config::from_toml_str(&printed, Path::new("stdout")).unwrap(),
        Config::default()
    );

    let file = temp_file("print", "[rtmp]\nchunk_size = 8192\n");
    let out = ferrocast()
        .env("FERROCAST_HUB_TAKEOVER", "false")
        .env("FERROCAST_CONFIG", &file)
        .args(["print-config", "--rtmp", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed =
        Config::from_toml_str(&String::from_utf8(out.stdout).unwrap(), Path::new("stdout"))
            .unwrap();
    let mut want = Config::default();
    want.rtmp.chunk_size = 8192;
    want.rtmp.listen = addr("127.0.0.1:1");
    want.hub.takeover = false;
    assert_eq!(printed, want);

    let out = ferrocast()
        .env("FERROCAST_HUB_TAKEOVR", "false")
        .args(["print-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: FERROCAST_HUB_TAKEOVR: hub: unknown field `takeovr`"),
        "{stderr}"
    );
}

//! The admin server in-process (a hub with a publisher made here, a real HTTP client), the
//! wiring in `App`, and the real binary's start line and SIGTERM drain.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use ferrocast::admin::{self, AdminState, Readiness};
use ferrocast::app::App;
use ferrocast::config::Config;
use ingest::auth::{AuthConfig, Authenticator, PublishRequest};
use media::hub::{Hub, HubConfig, PublisherInfo};
use media::{Codec, Frame, StreamEvent, TrackInfo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// SPS and PPS of a 320x240 25 fps High profile level 2.1 stream, written by
/// `ffmpeg -f lavfi -i testsrc=size=320x240:rate=25 -pix_fmt yuv420p -c:v libx264
/// -profile:v high -level 2.1`.
const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x15, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
    0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x62, 0xd9, 0x60,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
/// AudioSpecificConfig: AAC-LC, 44100 Hz, stereo.
const ASC: &[u8] = &[0x12, 0x10];

const VIDEO: u32 = 1;
const AUDIO: u32 = 2;
const FRAMES: u64 = 10;
const VIDEO_BYTES: usize = 1000;
const AUDIO_BYTES: usize = 200;

fn avcc() -> Bytes {
    let mut v = vec![1, SPS[1], SPS[2], SPS[3], 0xff, 0xe1];
    v.extend_from_slice(&u16::try_from(SPS.len()).unwrap().to_be_bytes());
    v.extend_from_slice(SPS);
    v.push(1);
    v.extend_from_slice(&u16::try_from(PPS.len()).unwrap().to_be_bytes());
    v.extend_from_slice(PPS);
    Bytes::from(v)
}

fn tracks() -> Vec<TrackInfo> {
    vec![
        TrackInfo {
            id: VIDEO,
            codec: Codec::h264(avcc()).unwrap(),
            timescale: 90_000,
        },
        TrackInfo {
            id: AUDIO,
            codec: Codec::aac(Bytes::from_static(ASC)).unwrap(),
            timescale: 44_100,
        },
    ]
}

fn frame(track: u32, i: u64, step: i64, size: usize) -> StreamEvent {
    let ts = i as i64 * step;
    StreamEvent::Frame(Frame {
        track,
        pts: ts,
        dts: ts,
        keyframe: track == AUDIO || i == 0,
        data: Bytes::from(vec![0u8; size]),
        received: SystemTime::now(),
    })
}

type Labels = BTreeMap<String, String>;
/// `name -> [(labels, value)]`
type Metrics = BTreeMap<String, Vec<(Labels, f64)>>;

/// Parses Prometheus text into [`Metrics`].
fn parse_metrics(text: &str) -> Metrics {
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap();
                let labels = body
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap();
                        (k.to_string(), v.trim_matches('"').to_string())
                    })
                    .collect();
                (name, labels)
            }
            None => (series, BTreeMap::new()),
        };
        out.entry(name.to_string())
            .or_default()
            .push((labels, value));
    }
    out
}

fn value(metrics: &Metrics, name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let series = metrics
        .get(name)
        .unwrap_or_else(|| panic!("no metric {name}"));
    series
        .iter()
        .find(|(l, _)| *l == want)
        .unwrap_or_else(|| panic!("no {name}{want:?} in {series:?}"))
        .1
}

async fn get(client: &reqwest::Client, addr: SocketAddr, path: &str) -> (u16, String) {
    let resp = client
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

#[tokio::test]
async fn admin_endpoints_report_the_hub() {
    let hub = Hub::new(HubConfig {
        subscriber_queue_frames: 4,
        ..HubConfig::default()
    });
    let auth = Arc::new(Authenticator::new(AuthConfig::default()).unwrap());
    let peer: SocketAddr = "192.0.2.10:50000".parse().unwrap();
    let req = |key| PublishRequest {
        app: "live",
        key,
        protocol: "rtmp",
        peer,
    };
    assert_eq!(auth.authorize(&req("alice")).await.unwrap(), "live/alice");
    auth.authorize(&req("bad key")).await.unwrap_err();

    let registry = ferrocast::metrics::registry(hub.clone(), Some(Arc::clone(&auth))).unwrap();
    let readiness = Arc::new(Readiness::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(admin::serve(
        listener,
        AdminState {
            hub: hub.clone(),
            registry,
            readiness: Arc::clone(&readiness),
        },
        stop.clone(),
    ));
    let client = reqwest::Client::new();

    assert_eq!(get(&client, addr, "/healthz").await, (200, "ok\n".into()));
    assert_eq!(
        get(&client, addr, "/readyz").await,
        (503, "starting\n".into())
    );
    readiness.set_ready();
    assert_eq!(get(&client, addr, "/readyz").await, (200, "ready\n".into()));
    assert_eq!(
        get(&client, addr, "/api/v1/streams").await,
        (200, "[]".into())
    );

    let publisher = hub
        .publish(
            "live/alice",
            PublisherInfo {
                protocol: "rtmp",
                peer,
            },
        )
        .unwrap();
    let tracks = tracks();
    publisher.send(StreamEvent::Tracks(tracks.clone()));
    // A subscriber that never reads: its queue of 4 fills and later frames are dropped.
    let slow = hub.subscribe("live/alice").unwrap();
    for i in 0..FRAMES {
        publisher.send(frame(VIDEO, i, 3600, VIDEO_BYTES));
        publisher.send(frame(AUDIO, i, 1024, AUDIO_BYTES));
    }
    publisher.add_bytes(12_345);
    let dropped = slow.dropped();
    assert!(dropped > 0, "the slow subscriber dropped nothing");
    assert_eq!(hub.dropped_frames_total(), dropped);

    let (status, body) = get(&client, addr, "/api/v1/streams").await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let streams = json.as_array().unwrap();
    assert_eq!(streams.len(), 1, "{json}");
    let s = &streams[0];
    assert_eq!(s["name"], "live/alice");
    assert_eq!(s["protocol"], "rtmp");
    assert_eq!(s["peer"], "192.0.2.10:50000");
    assert!(s["uptime_seconds"].as_u64().unwrap() < 60, "{s}");
    assert_eq!(s["bytes_in"], 12_345);
    assert_eq!(s["subscribers"], 1);
    assert_eq!(s["dropped_frames"], dropped);
    // Over a window of FRAMES frames, the bitrate counts the bytes after the first one
    // over the span from the first to the last dts.
    let span = FRAMES - 1;
    let video_bps = span * VIDEO_BYTES as u64 * 8 * 90_000 / (span * 3600);
    let audio_bps = span * AUDIO_BYTES as u64 * 8 * 44_100 / (span * 1024);
    assert_eq!(
        s["tracks"],
        serde_json::json!([
            {
                "id": VIDEO, "kind": "video", "codec": "avc1.640015",
                "width": 320, "height": 240, "fps": 25.0,
                "sample_rate": null, "channels": null,
                "bitrate_bps": video_bps, "frames": FRAMES,
            },
            {
                "id": AUDIO, "kind": "audio", "codec": "mp4a.40.2",
                "width": null, "height": null, "fps": null,
                "sample_rate": 44_100, "channels": 2,
                "bitrate_bps": audio_bps, "frames": FRAMES,
            },
        ]),
        "{s}"
    );

    let (status, text) = get(&client, addr, "/metrics").await;
    assert_eq!(status, 200);
    let m = parse_metrics(&text);
    let stream = ("stream", "live/alice");
    assert_eq!(value(&m, "ferrocast_ingest_streams", &[]), 1.0);
    assert_eq!(
        value(
            &m,
            "ferrocast_ingest_frames_total",
            &[stream, ("track", "video")]
        ),
        FRAMES as f64
    );
    assert_eq!(
        value(
            &m,
            "ferrocast_ingest_frames_total",
            &[stream, ("track", "audio")]
        ),
        FRAMES as f64
    );
    assert_eq!(
        value(
            &m,
            "ferrocast_ingest_bytes_total",
            &[stream, ("protocol", "rtmp")]
        ),
        12_345.0
    );
    assert_eq!(value(&m, "ferrocast_ingest_subscribers", &[stream]), 1.0);
    assert_eq!(
        value(&m, "ferrocast_hub_dropped_frames_total", &[]),
        dropped as f64
    );
    let attempts = "ferrocast_ingest_publish_attempts_total";
    let rtmp = ("protocol", "rtmp");
    assert_eq!(value(&m, attempts, &[rtmp, ("result", "allowed")]), 1.0);
    assert_eq!(value(&m, attempts, &[rtmp, ("result", "denied")]), 1.0);
    assert!(
        text.contains("# TYPE ferrocast_ingest_frames_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE ferrocast_ingest_streams gauge"),
        "{text}"
    );
    if cfg!(target_os = "linux") {
        assert!(value(&m, "process_resident_memory_bytes", &[]) > 0.0);
    }

    // The publisher leaves: the stream and its per-stream series go away.
    drop(publisher);
    assert_eq!(
        get(&client, addr, "/api/v1/streams").await,
        (200, "[]".into())
    );
    let m = parse_metrics(&get(&client, addr, "/metrics").await.1);
    assert_eq!(value(&m, "ferrocast_ingest_streams", &[]), 0.0);
    assert!(!m.contains_key("ferrocast_ingest_frames_total"), "{m:?}");
    assert_eq!(
        value(&m, "ferrocast_hub_dropped_frames_total", &[]),
        dropped as f64
    );

    readiness.set_draining();
    assert_eq!(
        get(&client, addr, "/readyz").await,
        (503, "draining\n".into())
    );
    readiness.set_ready();
    assert_eq!(get(&client, addr, "/readyz").await.0, 503, "left draining");

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("admin server did not stop")
        .unwrap()
        .unwrap();
    drop(slow);
}

#[tokio::test]
async fn track_labels_distinguish_tracks_of_one_kind() {
    let hub = Hub::new(HubConfig::default());
    let publisher = hub
        .publish(
            "live/multi",
            PublisherInfo {
                protocol: "srt",
                peer: "192.0.2.1:1".parse().unwrap(),
            },
        )
        .unwrap();
    let mut infos = tracks();
    let mut second_audio = infos[1].clone();
    second_audio.id = 7;
    infos.push(second_audio);
    publisher.send(StreamEvent::Tracks(infos));
    let snapshot = hub.stream("live/multi").unwrap();
    assert_eq!(
        ferrocast::metrics::track_labels(&snapshot),
        ["video", "audio-2", "audio-7"]
    );
}

fn local_config() -> Config {
    let mut config = Config::default();
    config.rtmp.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.listen = "127.0.0.1:0".parse().unwrap();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.srt.listen = "127.0.0.1:0".parse().unwrap();
    config
}

#[tokio::test]
async fn app_serves_until_cancelled() {
    let app = App::bind(local_config()).await.unwrap();
    let admin_addr = app.admin_addr().unwrap();
    let rtmp_addr = app.rtmp_addr().unwrap();
    assert_ne!(rtmp_addr.port(), 0);
    let readiness = app.readiness();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run(shutdown.clone()));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if get(&client, admin_addr, "/readyz").await.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let m = parse_metrics(&get(&client, admin_addr, "/metrics").await.1);
    assert_eq!(value(&m, "ferrocast_ingest_streams", &[]), 0.0);
    // The RTMP port accepts connections.
    tokio::net::TcpStream::connect(rtmp_addr).await.unwrap();

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("run did not return")
        .unwrap()
        .unwrap();
    assert!(!readiness.is_ready());
    assert!(
        client
            .get(format!("http://{admin_addr}/healthz"))
            .send()
            .await
            .is_err(),
        "admin still serving after run returned"
    );
}

#[tokio::test]
async fn bind_failure_names_the_address_and_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut config = local_config();
    config.rtmp.listen = addr;
    let err = App::bind(config.clone()).await.err().unwrap();
    let msg = format!("{err:#}");
    assert!(
        msg.starts_with(&format!("cannot listen on {addr} (rtmp.listen): ")),
        "{msg}"
    );
    config.rtmp.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.listen = addr;
    let msg = format!("{:#}", App::bind(config.clone()).await.err().unwrap());
    assert!(
        msg.starts_with(&format!("cannot listen on {addr} (admin.listen): ")),
        "{msg}"
    );
    // SRT is UDP: a taken UDP port is named with its key.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_addr = udp.local_addr().unwrap();
    config.admin.listen = "127.0.0.1:0".parse().unwrap();
    config.srt.listen = udp_addr;
    let msg = format!("{:#}", App::bind(config).await.err().unwrap());
    assert!(
        msg.starts_with(&format!("cannot listen on {udp_addr} (srt.listen, UDP): ")),
        "{msg}"
    );
}

/// Kills the child if the test fails before it exits.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn binary_logs_its_addresses_and_drains_on_sigterm() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrocast"));
    for (k, _) in std::env::vars_os() {
        if k.to_str()
            .is_some_and(|k| k.starts_with("FERROCAST_") || k == "RUST_LOG")
        {
            cmd.env_remove(k);
        }
    }
    let mut child = Child(
        cmd.args([
            "serve",
            "--rtmp",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--log",
            "info",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let field = |line: &str, name: &str| -> Option<SocketAddr> {
        let start = line.find(&format!("{name}="))? + name.len() + 1;
        line[start..].split_whitespace().next()?.parse().ok()
    };
    let mut seen = Vec::new();
    let (admin_addr, rtmp_addr, http_addr) = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no start line; stderr so far: {seen:#?}"));
        if line.contains("ferrocast listening") {
            break (
                field(&line, "admin").unwrap(),
                field(&line, "rtmp").unwrap(),
                field(&line, "http").unwrap(),
            );
        }
        seen.push(line);
    };
    assert_ne!(rtmp_addr.port(), 0);
    assert_ne!(http_addr.port(), 0);
    let page_line = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        page_line.contains(&format!("player page: http://{http_addr}/")),
        "{page_line}"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        assert_eq!(
            get(&client, admin_addr, "/healthz").await,
            (200, "ok\n".into())
        );
        assert_eq!(get(&client, admin_addr, "/readyz").await.0, 200);
        let (status, page) = get(&client, http_addr, "/").await;
        assert_eq!(status, 200);
        assert!(page.contains("hls.min.js"), "{page}");
    });

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    // The child exited, so its stderr ends and the reader thread hangs up.
    let mut rest = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        rest.push(line);
    }
    assert!(
        rest.iter()
            .any(|l| l.contains("shutting down") && l.contains("SIGTERM")),
        "{rest:#?}"
    );
}

//! RTSP pulls end to end: the real binary pulls a real RTSP camera (GStreamer's RTSP
//! server from Python, `support/rtsp_server.py`: live x264 test pattern + AAC tone), and
//! we check what the origin serves.
//!
//! - The pulled stream's playlists appear and their segments decode with ffprobe
//!   (H.264 320x240, AAC 48 kHz); the admin API and metrics show the pull; SIGTERM ends
//!   the pull and the process promptly.
//! - The same for an H.265 camera pulled with RTP over UDP.
//! - The camera goes away and comes back on the same port: the pull is up again within
//!   5 s of its return, the media playlist goes on (same media sequence, MSNs keep
//!   increasing) with one EXT-X-DISCONTINUITY, and segments after the return decode.
//! - An RTMP publisher that takes the name over keeps it: the pull waits (no session with
//!   the camera) and takes the name again only once that publisher is gone.
//! - `on_demand`: nothing is pulled (the camera sees no client, the stream is not in
//!   `/api/v1/streams`) until a playlist is requested; the request waits for the stream
//!   and gets it; the pull stops after `on_demand_idle_ms` without requests, and a new
//!   request starts it again.
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "support/binary.rs"]
mod binary;
#[path = "../packager/tests/support/llhls.rs"]
mod llhls;

use binary::{Ferrocast, Http, Options, Publisher, temp_dir};
use llhls::{CheckOptions, Playlist};

const STREAM: &str = "live/cam";
/// Frames between keyframes of the camera (1 s at 30 fps).
const CAMERA_GOP: u32 = 30;

// ---------------------------------------------------------------------------------------
// The camera

/// `support/rtsp_server.py` on a port; killed on drop.
struct Camera {
    child: Child,
    port: u16,
    /// stdout lines ("ready ...", "client <ip>").
    lines: Arc<Mutex<Vec<String>>>,
}

/// A free TCP port on loopback (bound and released; the camera binds it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl Camera {
    /// Starts an H.264 camera on `port` and waits (up to 30 s) until it listens.
    fn start(port: u16) -> Camera {
        Camera::start_codec(port, "h264")
    }

    /// Starts a camera sending `codec` (`h264`, `h265`) video.
    fn start_codec(port: u16, codec: &str) -> Camera {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/rtsp_server.py");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(&script)
            .arg(port.to_string())
            .arg(CAMERA_GOP.to_string())
            .arg(codec)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: prctl only touches the child; it dies with the test process.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .expect("spawn /usr/bin/python3 (python3-gi, gir1.2-gst-rtsp-server-1.0)");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line.clone());
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) if line.starts_with("ready ") => break,
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("wait for the camera");
                    panic!("the RTSP camera exited ({status}) before listening on {port}");
                }
            }
            assert!(
                Instant::now() < deadline,
                "the RTSP camera did not listen on {port} within 30 s"
            );
        }
        Camera { child, port, lines }
    }

    fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam", self.port)
    }

    /// RTSP connections the camera has accepted so far.
    fn clients(&self) -> usize {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|l| l.starts_with("client "))
            .count()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

fn pull_toml(url: &str, extra: &str, origin: &str) -> String {
    format!("[origin]\n{origin}\n\n[[pull]]\nname = \"{STREAM}\"\nurl = \"{url}\"\n{extra}\n")
}

fn assert_clean(what: &str, text: &str) -> Playlist {
    let options = CheckOptions {
        // PROGRAM-DATE-TIME is the arrival time of frames from a live source on a loaded
        // machine (see tests/reconnect.rs).
        pdt_tolerance_ms: 1000,
        ..CheckOptions::default()
    };
    let v = llhls::check(text, &options);
    assert!(
        v.is_empty(),
        "{what}: {}\n{text}",
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    );
    llhls::parse(text).0
}

/// The URI of the last EXT-X-MAP in a playlist.
fn map_uri(text: &str) -> String {
    text.lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .filter_map(|l| l.split('"').next())
        .next_back()
        .unwrap_or("init.mp4")
        .to_owned()
}

/// What ffprobe decoded from a file: (codec, width, height, sample rate, frames) of
/// its one stream.
#[derive(Debug)]
struct Decoded {
    codec: String,
    width: u64,
    height: u64,
    sample_rate: u64,
    frames: u64,
}

/// Writes `init` + `media` to a file and decodes it with ffprobe (`-count_frames`);
/// panics when ffprobe reports an error.
fn decode(dir: &Path, name: &str, init: &[u8], media: &[u8]) -> Decoded {
    let path: PathBuf = dir.join(name);
    let mut bytes = init.to_vec();
    bytes.extend_from_slice(media);
    std::fs::write(&path, &bytes).expect("write the probe file");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .arg("stream=codec_name,width,height,sample_rate,nb_read_frames")
        .args(["-of", "json"])
        .arg(&path)
        .output()
        .expect("run ffprobe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe {name}: {}\n{stderr}",
        out.status
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let s = &json["streams"][0];
    let num = |v: &serde_json::Value| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0)
    };
    Decoded {
        codec: s["codec_name"].as_str().unwrap_or("").to_owned(),
        width: num(&s["width"]),
        height: num(&s["height"]),
        sample_rate: num(&s["sample_rate"]),
        frames: num(&s["nb_read_frames"]),
    }
}

/// Fetches the init segment and segment `msn` of a rendition and decodes them.
async fn decode_segment(
    http: &Http,
    server: &Ferrocast,
    dir: &Path,
    rendition: &str,
    map: &str,
    msn: u64,
) -> Decoded {
    let base = format!("/{STREAM}/{rendition}");
    let init = http.get(&server.url(&format!("{base}/{map}"))).await;
    assert_eq!(init.status, 200, "{rendition} {map}: {}", init.describe());
    let seg = http.get(&server.url(&format!("{base}/{msn}.m4s"))).await;
    assert_eq!(seg.status, 200, "{rendition} {msn}.m4s: {}", seg.describe());
    decode(
        dir,
        &format!("{rendition}-{msn}.mp4"),
        &init.body,
        &seg.body,
    )
}

fn assert_video(d: &Decoded, what: &str) {
    assert_video_codec(d, "h264", what);
}

fn assert_video_codec(d: &Decoded, codec: &str, what: &str) {
    assert_eq!(d.codec, codec, "{what}: {d:?}");
    assert_eq!((d.width, d.height), (320, 240), "{what}: {d:?}");
    // A 2 s segment of 30 fps video; at least a second's worth decodes.
    assert!(d.frames >= 30, "{what}: {d:?}");
}

fn assert_audio(d: &Decoded, what: &str) {
    assert_eq!(d.codec, "aac", "{what}: {d:?}");
    assert_eq!(d.sample_rate, 48_000, "{what}: {d:?}");
    // 1024-sample frames at 48 kHz: 47 a second.
    assert!(d.frames >= 40, "{what}: {d:?}");
}

/// The value of a metric line `name{stream="live/cam"} v`, if present.
fn metric(text: &str, name: &str) -> Option<f64> {
    let prefix = format!("{name}{{stream=\"{STREAM}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// The stream names in `/api/v1/streams` with their protocol.
async fn live_streams(server: &Ferrocast) -> Vec<(String, String)> {
    let body = reqwest::get(format!("http://{}/api/v1/streams", server.admin))
        .await
        .expect("GET /api/v1/streams")
        .text()
        .await
        .expect("streams body");
    let json: serde_json::Value = serde_json::from_str(&body).expect("streams json");
    json.as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or("").to_owned(),
                        s["protocol"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The protocol of the stream's publisher, if live.
async fn publisher_protocol(server: &Ferrocast) -> Option<String> {
    live_streams(server)
        .await
        .into_iter()
        .find(|(n, _)| n == STREAM)
        .map(|(_, p)| p)
}

async fn is_live(server: &Ferrocast) -> bool {
    live_streams(server).await.iter().any(|(n, _)| n == STREAM)
}

/// Polls the metrics until `ferrocast_rtsp_pull_up` is `want`; the time it took.
async fn wait_pull_up(server: &Ferrocast, want: f64, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let text = server.metrics().await;
        if metric(&text, "ferrocast_rtsp_pull_up") == Some(want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "ferrocast_rtsp_pull_up not {want} within {within:?}:\n{}\n{}",
            text.lines()
                .filter(|l| l.contains("rtsp"))
                .collect::<Vec<_>>()
                .join("\n"),
            server.stderr_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pulled_camera_is_served_and_decodes() {
    let camera = Camera::start(free_port());
    let server = Ferrocast::start(Options::toml(&pull_toml(&camera.url(), "", ""))).await;
    let http = Http::new();
    let dir = temp_dir("rtsp-pull");

    let multivariant = http
        .wait_for(
            &server.url(&format!("/{STREAM}/index.m3u8")),
            Duration::from_secs(30),
            "the multivariant playlist",
            |r| r.text().contains("#EXT-X-STREAM-INF"),
        )
        .await
        .text();
    assert!(
        multivariant.contains("avc1.42") && multivariant.contains("mp4a.40.2"),
        "codecs of the camera (H.264 baseline, AAC-LC) in:\n{multivariant}"
    );
    assert!(
        multivariant.contains("RESOLUTION=320x240"),
        "{multivariant}"
    );

    for (rendition, video) in [("source", true), ("audio", false)] {
        let url = server.url(&format!("/{STREAM}/{rendition}/index.m3u8"));
        let text = http
            .wait_for(&url, Duration::from_secs(30), "two segments", |r| {
                r.text().matches("#EXTINF").count() >= 2
            })
            .await
            .text();
        let p = assert_clean(rendition, &text);
        let map = map_uri(&text);
        for seg in p.segments.iter().take(2) {
            let d = decode_segment(&http, &server, &dir, rendition, &map, seg.msn).await;
            if video {
                assert_video(&d, &format!("source segment {}", seg.msn));
            } else {
                assert_audio(&d, &format!("audio segment {}", seg.msn));
            }
        }
    }

    assert_eq!(
        live_streams(&server).await,
        vec![(STREAM.to_owned(), "rtsp".to_owned())]
    );
    let metrics = server.metrics().await;
    assert_eq!(metric(&metrics, "ferrocast_rtsp_pull_up"), Some(1.0));
    assert_eq!(
        metric(&metrics, "ferrocast_rtsp_reconnects_total"),
        Some(0.0)
    );
    assert_eq!(camera.clients(), 1, "one RTSP session");

    // SIGTERM: the pull ends its session promptly and the process drains and stops.
    // SAFETY: kill(2) on the child we started.
    unsafe {
        libc::kill(server.pid(), libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while !server
        .stderr()
        .lines()
        .any(|l| l.trim_end().ends_with("ferrocast::app: stopped"))
    {
        assert!(
            Instant::now() < deadline,
            "not stopped 15 s after SIGTERM:\n{}",
            server.stderr_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = server.stderr();
    assert!(
        log.contains("rtsp pull stopped: shutting down"),
        "the pull did not stop on shutdown:\n{}",
        server.stderr_tail(30)
    );
    assert!(
        !log.contains("rtsp pulls did not stop in time"),
        "{}",
        server.stderr_tail(30)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// H.265 from the camera, RTP over UDP (`transport = "udp"`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h265_camera_pulled_over_udp_is_served_and_decodes() {
    let camera = Camera::start_codec(free_port(), "h265");
    let server = Ferrocast::start(Options::toml(&pull_toml(
        &camera.url(),
        "transport = \"udp\"",
        "",
    )))
    .await;
    let http = Http::new();
    let dir = temp_dir("rtsp-h265");
    let multivariant = http
        .wait_for(
            &server.url(&format!("/{STREAM}/index.m3u8")),
            Duration::from_secs(30),
            "the multivariant playlist",
            |r| r.text().contains("#EXT-X-STREAM-INF"),
        )
        .await
        .text();
    assert!(
        multivariant.contains("hvc1.") && multivariant.contains("mp4a.40.2"),
        "H.265 and AAC in:\n{multivariant}"
    );
    for (rendition, video) in [("source", true), ("audio", false)] {
        let url = server.url(&format!("/{STREAM}/{rendition}/index.m3u8"));
        let text = http
            .wait_for(&url, Duration::from_secs(30), "two segments", |r| {
                r.text().matches("#EXTINF").count() >= 2
            })
            .await
            .text();
        let p = assert_clean(rendition, &text);
        let map = map_uri(&text);
        for seg in p.segments.iter().take(2) {
            let d = decode_segment(&http, &server, &dir, rendition, &map, seg.msn).await;
            if video {
                assert_video_codec(&d, "hevc", &format!("source segment {}", seg.msn));
            } else {
                assert_audio(&d, &format!("audio segment {}", seg.msn));
            }
        }
    }
    assert!(
        server.stderr().contains("transport=Udp"),
        "the session did not use UDP:\n{}",
        server.stderr_tail(20)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_that_comes_back_continues_the_playlists() {
    let port = free_port();
    let mut camera = Camera::start(port);
    let server = Ferrocast::start(Options::toml(&pull_toml(
        &camera.url(),
        "",
        // Covers the outage (a few seconds) with room to spare on a loaded machine.
        "grace_period_ms = 30000",
    )))
    .await;
    let http = Http::new();
    let dir = temp_dir("rtsp-restart");
    let media = server.url(&format!("/{STREAM}/source/index.m3u8"));
    let mut playlists: Vec<Playlist> = Vec::new();
    let text = http
        .wait_for(&media, Duration::from_secs(30), "two segments", |r| {
            r.text().matches("#EXTINF").count() >= 2
        })
        .await
        .text();
    playlists.push(assert_clean("before", &text));
    wait_pull_up(&server, 1.0, Duration::from_secs(10)).await;

    camera.kill();
    // The pull notices (the RTSP connection closes) and tries again, failing while the
    // camera is away.
    wait_pull_up(&server, 0.0, Duration::from_secs(15)).await;
    let outage_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < outage_until {
        let text = http.get(&media).await.text();
        let p = assert_clean("during the outage", &text);
        assert!(!p.endlist, "ENDLIST during the grace period:\n{text}");
        playlists.push(p);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let last_before = playlists
        .last()
        .and_then(|p| p.segments.last())
        .map_or(0, |s| s.msn);

    let camera = Camera::start(port);
    let resumed = wait_pull_up(&server, 1.0, Duration::from_secs(20)).await;
    eprintln!("pull up again {resumed:?} after the camera returned");
    assert!(
        resumed <= Duration::from_secs(5),
        "the pull took {resumed:?} to resume after the camera returned"
    );
    assert!(camera.clients() >= 1);

    // Poll until two complete segments after the discontinuity.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (text, after) = loop {
        let text = http.get(&media).await.text();
        let p = assert_clean("after the return", &text);
        assert!(!p.endlist, "ENDLIST although the camera came back:\n{text}");
        playlists.push(p.clone());
        let tagged = p.segments.iter().find(|s| s.discontinuity).map(|s| s.msn);
        if let Some(d) = tagged
            && p.segments.iter().filter(|s| s.msn > d).count() >= 1
        {
            break (text, p);
        }
        assert!(
            Instant::now() < deadline,
            "no complete segment after a discontinuity within 30 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let v = llhls::check_sequence_parsed(&playlists);
    assert!(
        v.is_empty(),
        "successive playlists disagree: {}",
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    );
    let tagged: Vec<u64> = after
        .segments
        .iter()
        .filter(|s| s.discontinuity)
        .map(|s| s.msn)
        .collect();
    assert_eq!(tagged.len(), 1, "one EXT-X-DISCONTINUITY:\n{text}");
    assert!(
        tagged[0] > last_before,
        "the discontinuity is on segment {} but {last_before} existed before the return",
        tagged[0]
    );
    assert!(
        after.media_sequence >= playlists[0].media_sequence,
        "MEDIA-SEQUENCE went back"
    );
    let map = map_uri(&text);
    for seg in after.segments.iter().filter(|s| s.msn >= tagged[0]) {
        let d = decode_segment(&http, &server, &dir, "source", &map, seg.msn).await;
        assert_video(&d, &format!("segment {} after the return", seg.msn));
    }
    let audio = http
        .get(&server.url(&format!("/{STREAM}/audio/index.m3u8")))
        .await
        .text();
    let ap = assert_clean("audio after the return", &audio);
    let amap = map_uri(&audio);
    let seg = ap
        .segments
        .iter()
        .rfind(|s| s.msn >= tagged[0])
        .expect("an audio segment after the return");
    let d = decode_segment(&http, &server, &dir, "audio", &amap, seg.msn).await;
    assert_audio(&d, "audio after the return");

    let reconnects = metric(&server.metrics().await, "ferrocast_rtsp_reconnects_total");
    assert!(
        reconnects.is_some_and(|r| r >= 1.0),
        "reconnects counted: {reconnects:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_does_not_take_the_name_back_from_another_publisher() {
    let camera = Camera::start(free_port());
    let server = Ferrocast::start(Options::toml(&pull_toml(&camera.url(), "", ""))).await;
    wait_pull_up(&server, 1.0, Duration::from_secs(30)).await;
    assert_eq!(publisher_protocol(&server).await.as_deref(), Some("rtsp"));

    // An RTMP push of the same name takes it over (hub.takeover is on by default).
    let mut rtmp = Publisher::start(&server.rtmp_url(STREAM), 60);
    let deadline = Instant::now() + Duration::from_secs(30);
    while publisher_protocol(&server).await.as_deref() != Some("rtmp") {
        assert!(
            Instant::now() < deadline,
            "the RTMP publisher never took the name:\n{}",
            server.stderr_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_pull_up(&server, 0.0, Duration::from_secs(10)).await;
    let sessions = camera.clients();
    // For several backoff periods, the name stays with RTMP and the camera is left alone.
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        assert_eq!(
            publisher_protocol(&server).await.as_deref(),
            Some("rtmp"),
            "the pull took the name back:\n{}",
            server.stderr_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        camera.clients(),
        sessions,
        "the pull contacted the camera meanwhile"
    );

    // The RTMP publisher leaves: the pull publishes again.
    rtmp.kill();
    let back = wait_pull_up(&server, 1.0, Duration::from_secs(20)).await;
    eprintln!("pull up {back:?} after the RTMP publisher left");
    assert_eq!(publisher_protocol(&server).await.as_deref(), Some("rtsp"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_demand_pull_runs_only_while_watched() {
    const IDLE: Duration = Duration::from_secs(3);
    let camera = Camera::start(free_port());
    let server = Ferrocast::start(Options::toml(&pull_toml(
        &camera.url(),
        &format!("on_demand = true\non_demand_idle_ms = {}", IDLE.as_millis()),
        "grace_period_ms = 1000",
    )))
    .await;
    let http = Http::new();

    // Nobody watches: no pull.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        camera.clients(),
        0,
        "the camera was contacted without a viewer"
    );
    assert!(
        !is_live(&server).await,
        "the stream is live without a viewer"
    );
    assert_eq!(
        metric(&server.metrics().await, "ferrocast_rtsp_pull_up"),
        Some(0.0)
    );

    // A request for a playlist starts the pull and waits for the stream.
    let multivariant = server.url(&format!("/{STREAM}/index.m3u8"));
    let r = http.get(&multivariant).await;
    eprintln!(
        "first multivariant request: {} in {:?}",
        r.status,
        r.elapsed()
    );
    assert_eq!(
        r.status,
        200,
        "the first request should wait for the pull: {}\n{}",
        r.describe(),
        server.stderr_tail(30)
    );
    assert!(r.text().contains("#EXT-X-STREAM-INF"), "{}", r.text());
    assert!(is_live(&server).await);
    assert_eq!(camera.clients(), 1);

    // A viewer polling its media playlist keeps it running past the idle time.
    let media = server.url(&format!("/{STREAM}/source/index.m3u8"));
    let watch_until = Instant::now() + IDLE * 2;
    let mut last_request = Instant::now();
    while Instant::now() < watch_until {
        // Taken before the request is sent: the server sees it later.
        last_request = Instant::now();
        let r = http.get(&media).await;
        assert_eq!(r.status, 200, "{}", r.describe());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(is_live(&server).await, "stopped while watched");
    assert_eq!(camera.clients(), 1, "one session while watched");

    // Nobody asks any more: it stops after the idle time, not before.
    tokio::time::sleep((last_request + IDLE / 2).saturating_duration_since(Instant::now())).await;
    assert!(is_live(&server).await, "stopped before the idle time");
    loop {
        if !is_live(&server).await {
            break;
        }
        assert!(
            last_request.elapsed() < IDLE + Duration::from_secs(10),
            "still pulling {:?} after the last request (idle {IDLE:?})",
            last_request.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stopped_after = last_request.elapsed();
    eprintln!("stopped {stopped_after:?} after the last request (idle {IDLE:?})");
    assert!(
        stopped_after >= IDLE,
        "stopped {stopped_after:?} after the last request, before the idle time {IDLE:?}"
    );
    wait_pull_up(&server, 0.0, Duration::from_secs(5)).await;
    let metrics = server.metrics().await;
    assert_eq!(
        metric(&metrics, "ferrocast_rtsp_reconnects_total"),
        Some(0.0),
        "an idle stop is not a reconnect"
    );

    // A new viewer starts it again (after the grace period ended the old playlists, so
    // the request must wait for the new stream rather than take the ended one).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = http.get(&media).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let p = assert_clean("restarted", &r.text());
    assert!(
        !p.endlist,
        "the restarted stream's playlist ended:\n{}",
        r.text()
    );
    assert!(is_live(&server).await);
    assert_eq!(
        camera.clients(),
        2,
        "a second session for the second viewer"
    );
}

//! Shared harness for the end-to-end RTMP ingest tests.
//!
//! - [`TestServer`]: the RTMP server in-process on `127.0.0.1:0` with its own hub and
//!   authenticator, cancelled on drop.
//! - [`logs`]: every `tracing` event of the process, captured into one buffer so a test
//!   can assert that a clear line was written (filter by peer address or stream name:
//!   tests of one binary run in parallel threads).
//! - [`fixture`]: media files generated once with ffmpeg into the target directory.
//! - [`Proc`]: child processes (ffmpeg, gst-launch) killed on drop, with their stderr kept
//!   for failure messages; [`ffprobe`] parses `-show_packets -show_streams` JSON.
//! - [`subscribe`] and [`Collected`]: read a stream from the hub with bounded waits.
#![allow(dead_code)] // every test binary uses its own subset

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ingest::auth::{AuthConfig, Authenticator};
use ingest::rtmp::server::{RtmpConfig, RtmpServer};
use media::hub::{Hub, HubConfig, Subscriber};
use media::{Frame, StreamEvent, TrackInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Video track id in the hub.
pub const VIDEO: u32 = 0;
/// Audio track id in the hub.
pub const AUDIO: u32 = 1;

// ---------------------------------------------------------------------------------------
// Log capture

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static LOG_INIT: OnceLock<()> = OnceLock::new();

/// Appends each formatted event to [`LOGS`] in one piece (and to stderr when
/// `FERROCAST_TEST_ECHO` is set).
struct CaptureWriter {
    buf: Vec<u8>,
}

impl Write for CaptureWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for CaptureWriter {
    fn drop(&mut self) {
        if std::env::var_os("FERROCAST_TEST_ECHO").is_some() {
            let _ = std::io::stderr().write_all(&self.buf);
        }
        let mut logs = LOGS.lock().unwrap_or_else(|e| e.into_inner());
        logs.extend_from_slice(&self.buf);
    }
}

/// Installs the process-wide capturing subscriber (once). The filter is `debug` for our
/// crates, `FERROCAST_TEST_LOG` (an `EnvFilter` string) overrides it.
pub fn init_logs() {
    LOG_INIT.get_or_init(|| {
        let filter = std::env::var("FERROCAST_TEST_LOG")
            .unwrap_or_else(|_| "info,ingest=debug,media=debug,ferrocast=debug".into());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(false)
            .with_writer(|| CaptureWriter { buf: Vec::new() })
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global tracing subscriber in the test binary");
    });
}

/// A position in the captured log; lines written after it are [`LogMark::lines`].
#[derive(Clone, Copy, Debug)]
pub struct LogMark(usize);

pub fn log_mark() -> LogMark {
    LogMark(LOGS.lock().unwrap_or_else(|e| e.into_inner()).len())
}

impl LogMark {
    /// Lines logged since this mark.
    pub fn lines(&self) -> Vec<String> {
        let logs = LOGS.lock().unwrap_or_else(|e| e.into_inner());
        let tail = logs.get(self.0..).unwrap_or_default();
        String::from_utf8_lossy(tail)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Every line captured so far.
pub fn all_log_lines() -> Vec<String> {
    LogMark(0).lines()
}

/// Waits until a line matching `pred` has been logged (since the start of the process),
/// and returns it; panics with the recent log after `within`.
pub async fn wait_for_log(what: &str, within: Duration, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        if let Some(line) = all_log_lines().into_iter().find(|l| pred(l)) {
            return line;
        }
        if Instant::now() >= deadline {
            let lines = all_log_lines();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            panic!("no log line {what} within {within:?}; last lines:\n{tail}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Server

/// What a test may change from the defaults.
#[derive(Clone, Debug, Default)]
pub struct ServerOpts {
    pub hub: HubConfig,
    pub auth: AuthConfig,
    pub rtmp: RtmpConfig,
}

/// The RTMP server running in this process; cancelled when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub hub: Hub,
    shutdown: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(opts: ServerOpts) -> TestServer {
        init_logs();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let hub = Hub::new(opts.hub);
        let auth = Authenticator::new(opts.auth).expect("valid auth config");
        let mut rtmp = opts.rtmp;
        rtmp.listen = addr;
        let server = RtmpServer {
            hub: hub.clone(),
            auth: Arc::new(auth),
            config: rtmp,
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(ingest::rtmp::server::run(
            listener,
            server,
            shutdown.clone(),
        ));
        TestServer {
            addr,
            hub,
            shutdown,
            task: Some(task),
        }
    }

    /// `rtmp://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("rtmp://{}/{}", self.addr, path)
    }

    /// Cancels the server and checks that `run` returns `Ok` within `within`.
    pub async fn shutdown(mut self, within: Duration) {
        self.shutdown.cancel();
        let task = self.task.take().expect("not shut down twice");
        match tokio::time::timeout(within, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("rtmp server returned an error: {e}"),
            Ok(Err(e)) => panic!("rtmp server task failed: {e}"),
            Err(_) => panic!("rtmp server did not stop within {within:?}"),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hub helpers

/// Polls `hub.subscribe(name)` until the stream exists; panics after `within`.
pub async fn subscribe(hub: &Hub, name: &str, within: Duration) -> Subscriber {
    let deadline = Instant::now() + within;
    loop {
        if let Some(sub) = hub.subscribe(name) {
            return sub;
        }
        if Instant::now() >= deadline {
            panic!("stream {name:?} did not appear on the hub within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Next event within `within`; `None` when the subscription closed.
pub async fn next_event(sub: &mut Subscriber, within: Duration) -> Option<StreamEvent> {
    match tokio::time::timeout(within, sub.recv()).await {
        Ok(event) => event,
        Err(_) => panic!("no stream event within {within:?}"),
    }
}

/// Everything a subscriber saw, in order.
#[derive(Debug, Default)]
pub struct Collected {
    pub events: Vec<StreamEvent>,
    pub ended: bool,
}

impl Collected {
    /// The last `Tracks` event.
    pub fn tracks(&self) -> &[TrackInfo] {
        self.events
            .iter()
            .rev()
            .find_map(|e| match e {
                StreamEvent::Tracks(t) => Some(t.as_slice()),
                _ => None,
            })
            .unwrap_or_default()
    }

    pub fn track(&self, id: u32) -> &TrackInfo {
        self.tracks()
            .iter()
            .find(|t| t.id == id)
            .unwrap_or_else(|| panic!("no track {id} in {:?}", self.tracks()))
    }

    pub fn frames(&self, track: u32) -> Vec<&Frame> {
        self.events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Frame(f) if f.track == track => Some(f),
                _ => None,
            })
            .collect()
    }

    pub fn discontinuities(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, StreamEvent::Discontinuity { .. }))
            .count()
    }
}

/// Collects events until `End` (or the subscription closing); panics after `within`
/// with a summary of what arrived.
pub async fn collect_until_end(sub: &mut Subscriber, within: Duration) -> Collected {
    let deadline = tokio::time::Instant::now() + within;
    let mut out = Collected::default();
    loop {
        match tokio::time::timeout_at(deadline, sub.recv()).await {
            Err(_) => panic!(
                "no End within {within:?}: {} events, {} video and {} audio frames",
                out.events.len(),
                out.frames(VIDEO).len(),
                out.frames(AUDIO).len()
            ),
            Ok(None) => return out,
            Ok(Some(StreamEvent::End)) => {
                out.events.push(StreamEvent::End);
                out.ended = true;
                return out;
            }
            Ok(Some(event)) => out.events.push(event),
        }
    }
}

/// A one-connection TCP relay in front of the server that subscribes to `name` before
/// the publisher can send media, so a test sees the stream from its first frame even when
/// the publisher pushes faster than real time.
///
/// The server claims the name on the hub before it answers `publish`, and publishers
/// (ffmpeg, rtmp2sink) send no media before that answer: the relay tries to subscribe each
/// time it is about to forward bytes from the server, so it holds a subscription by the
/// time the answer reaches the publisher.
pub struct SubscribeProxy {
    pub addr: SocketAddr,
    sub: Option<tokio::sync::oneshot::Receiver<Subscriber>>,
    task: JoinHandle<()>,
}

impl SubscribeProxy {
    pub async fn start(server: &TestServer, name: &str) -> SubscribeProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let upstream = server.addr;
        let hub = server.hub.clone();
        let name = name.to_owned();
        let task = tokio::spawn(async move {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let up = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut cr, &mut sw).await;
                let _ = sw.shutdown().await;
            });
            let mut tx = Some(tx);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match sr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if tx.is_some()
                    && let Some(sub) = hub.subscribe(&name)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(sub);
                }
                if cw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = cw.shutdown().await;
            let _ = up.await;
        });
        SubscribeProxy {
            addr,
            sub: Some(rx),
            task,
        }
    }

    /// `rtmp://<relay>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("rtmp://{}/{}", self.addr, path)
    }

    /// The subscription taken when the server accepted the publish.
    pub async fn subscriber(&mut self, within: Duration) -> Subscriber {
        let rx = self.sub.take().expect("subscriber taken once");
        match tokio::time::timeout(within, rx).await {
            Ok(Ok(sub)) => sub,
            Ok(Err(_)) => panic!("the relay closed without seeing the stream published"),
            Err(_) => panic!("the stream was not published through the relay within {within:?}"),
        }
    }
}

impl Drop for SubscribeProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures

/// A directory under the target dir that survives between runs, so fixtures are made
/// once.
pub fn fixture_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ferrocast-fixtures");
        std::fs::create_dir_all(&dir).expect("create fixture dir");
        dir
    })
}

/// A fresh, empty directory under the target dir for one test's files.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Runs a shell `recipe` that must write `$OUT`, once: the file name carries a hash of the
/// recipe, so a changed recipe makes a new file. Written to a temporary name and renamed,
/// so a half-written file is never used.
pub fn fixture(name: &str, recipe: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut h = DefaultHasher::new();
    recipe.hash(&mut h);
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "bin"));
    let path = fixture_dir().join(format!("{stem}-{:016x}.{ext}", h.finish()));
    if path.exists() {
        return path;
    }
    let tmp = fixture_dir().join(format!("{stem}.tmp-{}.{ext}", std::process::id()));
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", recipe])
        .env("OUT", &tmp)
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "fixture {name} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &path).expect("rename fixture");
    path
}

/// 5 s of 640x360 30 fps H.264 High with B-frames (GOP 30) and 48 kHz stereo AAC, FLV.
pub fn avc_aac_flv() -> PathBuf {
    fixture(
        "avc-aac-640x360.flv",
        "ffmpeg -hide_banner -nostdin -loglevel error -y \
         -f lavfi -i testsrc2=size=640x360:rate=30 \
         -f lavfi -i sine=frequency=440:sample_rate=48000 \
         -t 5 -c:v libx264 -profile:v high -bf 2 -g 30 \
         -c:a aac -ar 48000 -ac 2 -f flv \"$OUT\"",
    )
}

/// 2 s of 320x180 25 fps H.264 Main (GOP 25) and 44.1 kHz mono AAC, FLV: a second
/// publisher that is easy to tell apart from [`avc_aac_flv`].
pub fn small_avc_aac_flv() -> PathBuf {
    fixture(
        "avc-aac-320x180.flv",
        "ffmpeg -hide_banner -nostdin -loglevel error -y \
         -f lavfi -i testsrc=size=320x180:rate=25 \
         -f lavfi -i sine=frequency=1000:sample_rate=44100 \
         -t 2 -pix_fmt yuv420p -c:v libx264 -profile:v main -bf 0 -g 25 \
         -c:a aac -ar 44100 -ac 1 -f flv \"$OUT\"",
    )
}

// ---------------------------------------------------------------------------------------
// Child processes

/// A child process, killed on drop; its stderr is collected for failure messages.
pub struct Proc {
    pub name: String,
    child: tokio::process::Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Proc {
    pub fn spawn(program: &str, args: &[String]) -> Proc {
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        });
        Proc {
            name: program.to_string(),
            child,
            stderr,
            reader: Some(reader),
        }
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into()
    }

    /// Waits for the exit; panics (with its stderr) if it runs longer than `within`.
    pub async fn wait(&mut self, within: Duration) -> ExitStatus {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => {
                let status = status.expect("wait for child");
                // Let the stderr reader drain what the child wrote last.
                if let Some(reader) = self.reader.take() {
                    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
                }
                status
            }
            Err(_) => panic!(
                "{} still running after {within:?}; stderr:\n{}",
                self.name,
                self.stderr()
            ),
        }
    }

    /// Waits for a successful exit.
    pub async fn wait_success(&mut self, within: Duration) {
        let status = self.wait(within).await;
        assert!(
            status.success(),
            "{} failed ({status}); stderr:\n{}",
            self.name,
            self.stderr()
        );
    }

    /// `Some(status)` if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// `ffmpeg [input_opts] -i input -c copy -f flv url` (no `-re`: as fast as the server
/// takes it, unless `input_opts` says otherwise).
pub fn ffmpeg_publish(input: &Path, url: &str, input_opts: &[&str]) -> Proc {
    let mut args = strings(&["-hide_banner", "-nostdin", "-loglevel", "warning"]);
    args.extend(strings(input_opts));
    args.push("-i".into());
    args.push(input.display().to_string());
    args.extend(strings(&["-c", "copy", "-f", "flv"]));
    args.push(url.into());
    Proc::spawn("ffmpeg", &args)
}

// ---------------------------------------------------------------------------------------
// ffprobe

#[derive(Clone, Debug)]
pub struct ProbeStream {
    pub index: u64,
    pub codec_type: String,
    pub codec_name: String,
    pub profile: Option<String>,
    pub level: Option<i64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub pix_fmt: Option<String>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct ProbePacket {
    pub stream_index: u64,
    pub codec_type: String,
    pub pts: Option<i64>,
    pub dts: Option<i64>,
    pub keyframe: bool,
    pub size: usize,
}

#[derive(Clone, Debug)]
pub struct Probe {
    pub streams: Vec<ProbeStream>,
    pub packets: Vec<ProbePacket>,
}

impl Probe {
    pub fn stream(&self, codec_type: &str) -> &ProbeStream {
        self.streams
            .iter()
            .find(|s| s.codec_type == codec_type)
            .unwrap_or_else(|| panic!("ffprobe found no {codec_type} stream"))
    }

    pub fn packets(&self, codec_type: &str) -> Vec<&ProbePacket> {
        self.packets
            .iter()
            .filter(|p| p.codec_type == codec_type)
            .collect()
    }
}

/// `ffprobe -show_packets -show_streams -of json` (plus `extra` options before the input).
pub fn ffprobe(path: &Path, extra: &[&str]) -> Probe {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_packets",
            "-show_streams",
            "-of",
            "json",
        ])
        .args(extra)
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let num = |v: &serde_json::Value| -> Option<i64> {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    };
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let streams = v["streams"]
        .as_array()
        .expect("streams array")
        .iter()
        .map(|s| ProbeStream {
            index: s["index"].as_u64().expect("stream index"),
            codec_type: text(&s["codec_type"]).unwrap_or_default(),
            codec_name: text(&s["codec_name"]).unwrap_or_default(),
            profile: text(&s["profile"]),
            level: num(&s["level"]),
            width: num(&s["width"]).map(|x| x as u32),
            height: num(&s["height"]).map(|x| x as u32),
            pix_fmt: text(&s["pix_fmt"]),
            sample_rate: num(&s["sample_rate"]).map(|x| x as u32),
            channels: num(&s["channels"]).map(|x| x as u32),
        })
        .collect();
    let packets = v["packets"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| ProbePacket {
            stream_index: p["stream_index"].as_u64().expect("stream_index"),
            codec_type: text(&p["codec_type"]).unwrap_or_default(),
            pts: num(&p["pts"]),
            dts: num(&p["dts"]),
            keyframe: p["flags"].as_str().is_some_and(|f| f.starts_with('K')),
            size: num(&p["size"]).expect("packet size") as usize,
        })
        .collect();
    Probe { streams, packets }
}

// ---------------------------------------------------------------------------------------
// Process facts

/// Resident set size of this process, in bytes (`VmRSS` in `/proc/self/status`).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS line")
        * 1024
}

/// Length-prefixed (4-byte) NAL units of a frame payload; panics on a malformed payload.
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        assert!(
            rest.len() >= 4,
            "truncated NAL length in {} bytes",
            data.len()
        );
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        assert!(
            rest.len() >= 4 + len,
            "NAL of {len} bytes overruns the frame"
        );
        out.push(&rest[4..4 + len]);
        rest = &rest[4 + len..];
    }
    out
}

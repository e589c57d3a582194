//! Harness for the end-to-end tests of the real `ferrocast` binary.
//!
//! Include it with `#[path = "support/binary.rs"] mod binary;` (it does not need the
//! in-process harness of `support/mod.rs`).
//!
//! - [`Ferrocast`]: `ferrocast serve` on `127.0.0.1:0` for every listener (the addresses
//!   are read back from its start line), a temp config file, a clean environment; waits
//!   for `/readyz`; killed on drop, its stderr kept (and its tail printed when a test
//!   panics).
//! - [`Publisher`]: ffmpeg pushing a live test pattern (`-re`, x264 `zerolatency`, AAC)
//!   over RTMP; killed on drop.
//! - [`Http`] and [`Resp`]: a reqwest client that never decompresses on its own, with the
//!   timing of each response; [`raw_get`]: a request written byte for byte on a TCP
//!   socket, for paths a URL parser would normalize.
//! - [`Player`]: the node + playwright-core script of `tests/player/` driving headless
//!   Chromium against the built-in page; [`chromium_or_skip`] decides whether such a test
//!   runs.
//! - Process facts of the server: [`Ferrocast::rss_bytes`], [`Ferrocast::open_fds`].
//!
//! Every child runs with `PR_SET_PDEATHSIG` (SIGKILL; SIGTERM for node, so that
//! Playwright closes Chromium), so nothing outlives a test process that is killed outright
//! (a test runner's timeout); node runs in its own process group and Chromium in another
//! (Playwright's), both killed on drop.
#![allow(dead_code)] // every test binary uses its own subset

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_ferrocast");
/// The repository root (where `package.json` and `node_modules/` live).
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

// ---------------------------------------------------------------------------------------
// Child processes

/// Makes the child get `death_signal` when the test process dies (`PR_SET_PDEATHSIG`),
/// and optionally puts it in its own process group.
fn guard_child(cmd: &mut Command, own_group: bool, death_signal: i32) {
    if own_group {
        cmd.process_group(0);
    }
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, death_signal) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sends `signal` to a process (or, with a negative id, a process group).
fn send_signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) with a pid we spawned; failure (already gone) is harmless.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Raises this process's soft `RLIMIT_NOFILE` to `want` (capped by the hard limit);
/// children inherit it. Returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        let target = want.min(lim.rlim_max);
        if lim.rlim_cur < target {
            lim.rlim_cur = target;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    lim.rlim_cur
}

/// Lines of a child's stderr, collected by a thread.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn collect(
        pipe: impl Read + Send + 'static,
        tx: Option<std::sync::mpsc::Sender<String>>,
    ) -> Lines {
        let lines = Lines::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { return };
                if let Some(tx) = &tx {
                    let _ = tx.send(line.clone());
                }
                sink.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        lines
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn text(&self) -> String {
        self.all().join("\n")
    }

    pub fn tail(&self, n: usize) -> String {
        let all = self.all();
        all[all.len().saturating_sub(n)..].join("\n")
    }
}

// ---------------------------------------------------------------------------------------
// The server

/// How to start the binary.
#[derive(Clone, Debug)]
pub struct Options {
    /// Extra TOML for the config file (sections such as `[origin]`, `[http]`); the
    /// listen addresses are given as flags.
    pub toml: String,
    /// Extra environment variables (`FERROCAST_*` ones are cleared first); the default
    /// turns transcoding off.
    pub env: Vec<(String, String)>,
    /// `--log`.
    pub log: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            toml: String::new(),
            // Transcoding is on by default; the tests that are not about it turn it off
            // (a 360p test stream would get a 360p rung: CPU and a second variant for
            // the players). tests/transcode_ladder.rs turns it on.
            env: vec![("FERROCAST_TRANSCODE_ENABLED".into(), "false".into())],
            log: "info,ferrocast=debug,origin=debug".into(),
        }
    }
}

impl Options {
    pub fn toml(toml: &str) -> Options {
        Options {
            toml: toml.to_owned(),
            ..Options::default()
        }
    }
}

/// A running `ferrocast serve`; killed on drop.
pub struct Ferrocast {
    child: Child,
    pub http: SocketAddr,
    pub rtmp: SocketAddr,
    pub admin: SocketAddr,
    /// The SRT listener (UDP), unless `[srt] enabled = false`.
    pub srt: Option<SocketAddr>,
    lines: Lines,
    dir: PathBuf,
}

/// A fresh directory under the target dir (removed again by the owner).
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// `name=ADDR` in a log line.
fn addr_field(line: &str, name: &str) -> Option<SocketAddr> {
    let key = format!(" {name}=");
    let start = line.find(&key)? + key.len();
    line[start..]
        .split_whitespace()
        .next()?
        .trim_matches('"')
        .parse()
        .ok()
}

impl Ferrocast {
    /// Starts the binary and waits (up to 30 s) until `/readyz` answers 200.
    pub async fn start(opts: Options) -> Ferrocast {
        let dir = temp_dir("ferrocast-e2e");
        let config = dir.join("ferrocast.toml");
        std::fs::write(&config, &opts.toml).expect("write config");
        let mut cmd = Command::new(BINARY);
        for (k, _) in std::env::vars_os() {
            if k.to_str()
                .is_some_and(|k| k.starts_with("FERROCAST_") || k == "RUST_LOG")
            {
                cmd.env_remove(k);
            }
        }
        cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
        cmd.arg("serve")
            .arg("--config")
            .arg(&config)
            .args(["--http", "127.0.0.1:0"])
            .args(["--rtmp", "127.0.0.1:0"])
            .args(["--admin", "127.0.0.1:0"])
            .args(["--srt", "127.0.0.1:0"])
            .args(["--log", &opts.log])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        guard_child(&mut cmd, false, libc::SIGKILL);
        let mut child = cmd.spawn().expect("spawn ferrocast");
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = Lines::collect(child.stderr.take().expect("piped stderr"), Some(tx));
        let deadline = Instant::now() + Duration::from_secs(30);
        let (http, rtmp, admin, srt) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) if line.contains("ferrocast listening") => {
                    let get = |name| addr_field(&line, name);
                    if let (Some(h), Some(r), Some(a)) = (get("http"), get("rtmp"), get("admin")) {
                        break (h, r, a, get("srt"));
                    }
                    let _ = child.kill();
                    panic!("no http=, rtmp= and admin= addresses in the start line: {line}");
                }
                Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    // stderr closed: the process is exiting.
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "ferrocast exited ({status}) before listening:\n{}",
                    lines.text()
                );
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("no start line within 30 s:\n{}", lines.text());
            }
        };
        let server = Ferrocast {
            child,
            http,
            rtmp,
            admin,
            srt,
            lines,
            dir,
        };
        let client = reqwest::Client::new();
        let ready = format!("http://{}/readyz", server.admin);
        loop {
            if let Ok(r) = client.get(&ready).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz not 200 within 30 s:\n{}",
                server.lines.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    /// `http://ADDR<path>` on the origin port.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// `rtmp://ADDR/<name>`.
    pub fn rtmp_url(&self, name: &str) -> String {
        format!("rtmp://{}/{}", self.rtmp, name)
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits i32")
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.lines.text()
    }

    pub fn stderr_tail(&self, n: usize) -> String {
        self.lines.tail(n)
    }

    /// The server's resident set size (`VmRSS`).
    pub fn rss_bytes(&self) -> u64 {
        proc_rss(self.child.id())
    }

    /// How many file descriptors the server has open.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The server is still running.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("ferrocast exited ({status}):\n{}", self.stderr_tail(80));
        }
    }

    /// The admin `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }
}

/// `VmRSS` of a process, in bytes (0 when it is gone).
pub fn proc_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

impl Drop for Ferrocast {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- ferrocast stderr (last 60 lines) ----\n{}\n----",
                self.lines.tail(60)
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------
// Publisher

/// ffmpeg pushing a 640x360 30 fps test pattern (x264 ultrafast zerolatency, GOP 60)
/// with a 48 kHz AAC sine over RTMP, at real time; killed on drop.
///
/// The media is encoded once into a file (see [`test_media`]) and pushed with
/// `-re -c copy`: an encoder running beside the tests on a loaded 2-core machine falls
/// behind real time, and a player then stalls for the publisher's sake, not ours.
pub struct Publisher {
    child: Child,
    lines: Lines,
}

/// Seconds of media in each [`test_media`] file: longer than any publisher runs.
const TEST_MEDIA_SECONDS: u32 = 150;

/// The path of an FLV file with [`TEST_MEDIA_SECONDS`] of the publisher's media, the tone
/// at `hz`.
pub fn test_media(hz: u32) -> std::path::PathBuf {
    encoded_media("640x360", hz, TEST_MEDIA_SECONDS)
}

/// The path of an FLV file with `seconds` of a `size` (`1920x1080`) 30 fps test pattern
/// (x264 ultrafast, GOP 60) and a 48 kHz AAC sine at `hz`, encoded on first use. Encoded
/// under a lock directory (test processes run in parallel) into a temporary file that is
/// renamed into place, so a reader never sees a partial file.
pub fn encoded_media(size: &str, hz: u32, seconds: u32) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let key = format!("publisher-{size}-{hz}hz-{seconds}s");
    let path = dir.join(format!("{key}.flv"));
    let lock = dir.join(format!("{key}.lock"));
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        if std::fs::create_dir(&lock).is_err() {
            // Another test encodes it; a lock left by a killed process goes stale.
            let stale = std::fs::metadata(&lock)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(120));
            if stale {
                let _ = std::fs::remove_dir(&lock);
            }
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let tmp = dir.join(format!("{key}.{}.tmp.flv", std::process::id()));
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size={size}:rate=30"))
            .args(["-f", "lavfi", "-i"])
            .arg(format!("sine=frequency={hz}:sample_rate=48000"))
            .args(["-t", &seconds.to_string()])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
            ])
            .args(["-g", "60", "-pix_fmt", "yuv420p"])
            .args(["-c:a", "aac", "-ar", "48000", "-ac", "2"])
            .args(["-f", "flv"])
            .arg(&tmp)
            .status()
            .expect("run ffmpeg");
        assert!(status.success(), "encoding the test media failed: {status}");
        std::fs::rename(&tmp, &path).expect("move the test media into place");
        let _ = std::fs::remove_dir(&lock);
    }
    path
}

impl Publisher {
    /// Pushes to `url` for `seconds`.
    pub fn start(url: &str, seconds: u32) -> Publisher {
        Publisher::start_with(url, seconds, 440)
    }

    /// Pushes to `url` for `seconds` (at most [`TEST_MEDIA_SECONDS`]), the tone at `hz`
    /// (tells publishers apart).
    pub fn start_with(url: &str, seconds: u32, hz: u32) -> Publisher {
        assert!(seconds <= TEST_MEDIA_SECONDS, "{seconds} s of test media");
        Publisher::start_file(url, &test_media(hz), seconds)
    }

    /// Pushes the FLV file `media` to `url` at real time for `seconds` (`-c copy`).
    pub fn start_file(url: &str, media: &Path, seconds: u32) -> Publisher {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning"])
            .args(["-re", "-i"])
            .arg(media)
            .args(["-t", &seconds.to_string()])
            .args(["-c", "copy", "-f", "flv", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        guard_child(&mut cmd, false, libc::SIGKILL);
        let mut child = cmd.spawn().expect("spawn ffmpeg");
        let lines = Lines::collect(child.stderr.take().expect("piped stderr"), None);
        Publisher { child, lines }
    }

    pub fn stderr(&self) -> String {
        self.lines.text()
    }

    /// Exited (and how), without waiting.
    pub fn try_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Stops it abruptly (SIGKILL: the server sees the connection drop) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for it to end on its own (its `-t`), up to `within`.
    pub async fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_status() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ffmpeg still running after {within:?}; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------
// HTTP

/// A response with its timing.
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
    /// When the request was sent.
    pub sent: Instant,
    /// When the body had been read completely.
    pub done: Instant,
}

impl Resp {
    pub fn elapsed(&self) -> Duration {
        self.done - self.sent
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `max-age` of `Cache-Control`, if any.
    pub fn max_age(&self) -> Option<u64> {
        self.header("cache-control")?
            .split(',')
            .find_map(|d| d.trim().strip_prefix("max-age="))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Short description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "{} after {:?}, headers {:?}, body {:?}",
            self.status,
            self.elapsed(),
            self.headers,
            String::from_utf8_lossy(&self.body[..self.body.len().min(400)])
        )
    }
}

/// A reqwest client that keeps `Content-Encoding` as sent (no automatic decompression).
#[derive(Clone)]
pub struct Http {
    pub client: reqwest::Client,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    pub fn new() -> Http {
        Http {
            client: reqwest::Client::builder()
                .no_gzip()
                .no_brotli()
                .no_deflate()
                .no_zstd()
                .pool_max_idle_per_host(64)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("reqwest client"),
        }
    }

    /// GET with extra headers; panics on a transport error.
    pub async fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> Resp {
        match self.try_get_with(url, headers).await {
            Ok(r) => r,
            Err(e) => panic!("GET {url}: {e}"),
        }
    }

    pub async fn get(&self, url: &str) -> Resp {
        self.get_with(url, &[]).await
    }

    pub async fn try_get_with(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Resp, reqwest::Error> {
        let mut req = self.client.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let sent = Instant::now();
        let r = req.send().await?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await?;
        Ok(Resp {
            status,
            headers,
            body,
            sent,
            done: Instant::now(),
        })
    }

    /// Polls `url` until `pred` holds for a 200 response; panics after `within`.
    pub async fn wait_for(
        &self,
        url: &str,
        within: Duration,
        what: &str,
        pred: impl Fn(&Resp) -> bool,
    ) -> Resp {
        let deadline = Instant::now() + within;
        let mut last = None;
        loop {
            if let Ok(r) = self.try_get_with(url, &[]).await {
                if r.status == 200 && pred(&r) {
                    return r;
                }
                last = Some(r);
            }
            if Instant::now() >= deadline {
                panic!(
                    "{what}: not within {within:?}; last answer: {}",
                    last.map_or_else(|| "none".into(), |r| r.describe())
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Decompresses a gzip body.
pub fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .expect("valid gzip body");
    out
}

/// A response read off a raw socket.
#[derive(Clone, Debug)]
pub struct RawResp {
    pub status: u16,
    /// Header lines, lowercased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `GET <target> HTTP/1.1` exactly as given (no normalization) with
/// `Connection: close`, reads the whole answer; `Err` with a description on a transport
/// error or after `within`.
pub async fn raw_get(addr: SocketAddr, target: &str, within: Duration) -> Result<RawResp, String> {
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    raw_request(addr, request.as_bytes(), within).await
}

/// Writes `request` on a new connection and reads the response until the connection
/// closes (or the declared length is read).
pub async fn raw_request(
    addr: SocketAddr,
    request: &[u8],
    within: Duration,
) -> Result<RawResp, String> {
    let work = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.write_all(request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        loop {
            let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(r) = parse_complete(&buf)? {
                return Ok(r);
            }
        }
        parse_complete(&buf)?.ok_or_else(|| {
            format!(
                "connection closed after {} bytes: {:?}",
                buf.len(),
                String::from_utf8_lossy(&buf[..buf.len().min(300)])
            )
        })
    };
    match tokio::time::timeout(within, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("no complete response within {within:?}")),
    }
}

/// A complete response in `buf`, `Ok(None)` when more bytes are needed.
fn parse_complete(buf: &[u8]) -> Result<Option<RawResp>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|e| format!("head not UTF-8: {e}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &buf[end + 4..];
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let body = if let Some(len) = get("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad content-length {len}"))?;
        if rest.len() < len {
            return Ok(None);
        }
        rest[..len].to_vec()
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        match dechunk(rest)? {
            Some(b) => b,
            None => return Ok(None),
        }
    } else {
        return Ok(None); // until EOF
    };
    Ok(Some(RawResp {
        status,
        headers,
        body,
    }))
}

fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&rest[..eol]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

// ---------------------------------------------------------------------------------------
// Playlist helpers

/// `(msn, part)` from a part URI `<msn>.<part>.m4s` (a relative URI, maybe with a path).
pub fn part_of_uri(uri: &str) -> Option<(u64, u64)> {
    let name = uri.rsplit('/').next()?;
    let stem = name.strip_suffix(".m4s")?;
    let (m, p) = stem.split_once('.')?;
    Some((m.parse().ok()?, p.parse().ok()?))
}

/// Percentile (0..=100) of a sorted copy of `v`.
pub fn percentile(v: &[Duration], pct: u32) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let mut s = v.to_vec();
    s.sort();
    let idx = ((s.len() - 1) * pct as usize).div_ceil(100);
    s[idx.min(s.len() - 1)]
}

// ---------------------------------------------------------------------------------------
// Headless Chromium

/// Where Debian installs Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether a Chromium test runs: `true` when Chromium is installed; `false` (after
/// printing why) when it is not and `CI` is unset; a panic when it is missing in CI.
pub fn chromium_or_skip(test: &str) -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "{test}: {CHROMIUM} is not installed, and CI is set: run scripts/setup.sh"
    );
    eprintln!(
        "SKIPPED {test}: {CHROMIUM} is not installed (apt-get install chromium, or run \
         scripts/setup.sh); in CI this test fails instead"
    );
    false
}

/// Runs `npm ci` once (across test processes: under a file lock) when
/// `node_modules/playwright-core` is missing.
pub fn ensure_node_modules() {
    let root = Path::new(ROOT);
    let marker = root.join("node_modules/playwright-core/package.json");
    if marker.exists() {
        return;
    }
    let lock_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("npm-ci.lock");
    let lock = std::fs::File::create(&lock_path).expect("create npm lock file");
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file we own; released when `lock` is closed.
    unsafe {
        libc::flock(lock.as_raw_fd(), libc::LOCK_EX);
    }
    if !marker.exists() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(root)
            .stdin(Stdio::null())
            .output()
            .expect("run npm ci (is node/npm installed? scripts/setup.sh installs them)");
        assert!(
            out.status.success(),
            "npm ci failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(lock);
}

/// One run of `tests/player/play.js`; the node process group is killed on drop.
pub struct Player {
    child: Child,
    lines: Lines,
    stdout: Arc<Mutex<Vec<u8>>>,
}

/// What `play.js` is asked to do.
#[derive(Clone, Debug)]
pub struct PlayerArgs {
    /// The page (`http://ADDR/`).
    pub page: String,
    /// The stream to select (`live/test`).
    pub stream: String,
    /// How long to play after playback starts.
    pub play_seconds: u32,
    /// Gives up when playback has not started by then (reported, not thrown).
    pub start_timeout_seconds: u32,
    /// A rendition (`360p`) to choose in the page's selector once playing.
    pub rendition: Option<String>,
}

impl Player {
    pub fn start(args: &PlayerArgs) -> Player {
        ensure_node_modules();
        let script = Path::new(ROOT).join("tests/player/play.js");
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .env("PLAYER_PAGE", &args.page)
            .env("PLAYER_STREAM", &args.stream)
            .env("PLAYER_SECONDS", args.play_seconds.to_string())
            .env(
                "PLAYER_START_TIMEOUT",
                args.start_timeout_seconds.to_string(),
            )
            .env("PLAYER_CHROMIUM", CHROMIUM)
            .env("PLAYER_RENDITION", args.rendition.as_deref().unwrap_or(""))
            .current_dir(ROOT)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SIGTERM, not SIGKILL, if this process dies: Playwright then closes Chromium.
        guard_child(&mut cmd, true, libc::SIGTERM);
        let mut child = cmd.spawn().expect("spawn node (is node installed?)");
        let lines = Lines::collect(child.stderr.take().expect("piped stderr"), None);
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let sink = stdout.clone();
        let mut pipe = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        });
        Player {
            child,
            lines,
            stdout,
        }
    }

    /// The script's log (stderr).
    pub fn log(&self) -> String {
        self.lines.text()
    }

    /// Waits for the script to exit (up to `within`) and parses the JSON report it prints
    /// on stdout.
    pub async fn report(&mut self, within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "player script still running after {within:?}; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        // Let the reader threads drain the pipes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let out = String::from_utf8_lossy(&self.stdout.lock().unwrap_or_else(|e| e.into_inner()))
            .into_owned();
        assert!(
            status.success(),
            "player script failed ({status}); stdout:\n{out}\nlog:\n{}",
            self.log()
        );
        let json = out
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON report on stdout:\n{out}\nlog:\n{}", self.log()));
        serde_json::from_str(json).unwrap_or_else(|e| panic!("bad JSON report ({e}): {json}"))
    }
}

/// The direct children of process `pid` (`/proc/PID/task/*/children`).
fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

impl Drop for Player {
    /// A script still running gets SIGTERM to its group (Playwright closes the browser on
    /// it) and 3 s; if it is still running then, SIGKILL to its group and to Chromium's
    /// (Playwright starts the browser in a group of its own).
    fn drop(&mut self) {
        let pid = i32::try_from(self.child.id()).unwrap_or(0);
        if pid <= 0 || !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        send_signal(-pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            // Chromium is node's child, in a process group of its own.
            for browser in children(pid) {
                send_signal(-browser, libc::SIGKILL);
            }
            send_signal(-pid, libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

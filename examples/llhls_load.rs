//! Load client for the LL-HLS origin benchmark (`bench/origin_load.sh` runs it).
//!
//! Two modes, each with `--clients N` concurrent HTTP/1.1 keep-alive connections (one
//! per simulated client, opened in batches so the server's listen backlog never
//! overflows), for `--duration` seconds after all are connected:
//!
//! - `llhls --url http://HOST:PORT/live/x/source/index.m3u8`: each client behaves like a
//!   low-latency player: a plain playlist GET, then in a loop a blocking reload for the
//!   part named by EXT-X-PRELOAD-HINT (`?_HLS_msn=M&_HLS_part=P`) followed by a GET of
//!   that part.
//!
//!   Delay from part availability: a part's availability time is the moment the *first*
//!   client completed a blocking playlist response listing it (the server has the part
//!   at least from then on); each client's delay is its own completion time minus that,
//!   for the playlist response and for the part response. The figure is therefore the
//!   fan-out cost (how long the server takes to answer every waiting client once a part
//!   exists), not the packaging delay before it: the server reports that one itself as
//!   `ferrocast_part_publish_delay_seconds` (printed by the script from `/metrics`).
//!
//! - `parts --url http://HOST:PORT/any/file`: every client GETs the same URL in a loop,
//!   as fast as the server answers (request rate and response time).
//!
//! With `--pid PID` the server's resident memory (`VmRSS`) is sampled every 200 ms and
//! its maximum reported. The result is one JSON object on stdout; progress goes to stderr.
//!
//! `cargo run --release --example llhls_load -- llhls --url ... --clients 1000`

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Blocking playlist reload + part fetch per client.
    Llhls,
    /// The same URL, as fast as possible.
    Parts,
}

#[derive(Debug, Parser)]
#[command(about = "LL-HLS origin load client")]
struct Args {
    #[arg(value_enum)]
    mode: Mode,
    /// `http://HOST:PORT/path` (a media playlist for `llhls`, any URL for `parts`).
    #[arg(long)]
    url: String,
    /// Concurrent clients (one connection each).
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Measured seconds, after every client is connected.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Connections opened at once while ramping up (below the servers' listen backlog,
    /// 128 for ferrocast, so that no SYN is dropped and retried a second later).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Server process whose VmRSS is sampled.
    #[arg(long)]
    pid: Option<u32>,
}

struct Target {
    addr: SocketAddr,
    host: String,
    /// Path (and query) of the URL.
    path: String,
}

fn parse_url(url: &str) -> anyhow::Result<Target> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("only http:// URLs: {url}"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr: SocketAddr = host
        .parse()
        .with_context(|| format!("the host must be IP:PORT, got {host:?}"))?;
    Ok(Target {
        addr,
        host: host.to_owned(),
        path: format!("/{path}"),
    })
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    sender: http1::SendRequest<Empty<Bytes>>,
    host: String,
}

impl Conn {
    async fn open(addr: SocketAddr, host: &str) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr).await.context("connect")?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            sender,
            host: host.to_owned(),
        })
    }

    /// GET `path`: (status, body).
    async fn get(&mut self, path: &str) -> anyhow::Result<(u16, Bytes)> {
        self.sender.ready().await?;
        let req = hyper::Request::get(path)
            .header(hyper::header::HOST, &self.host)
            .body(Empty::<Bytes>::new())?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// `(msn, part)` of the EXT-X-PRELOAD-HINT.
fn hint(playlist: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(playlist).ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:") && l.contains("TYPE=PART"))?;
    let uri = line.split("URI=\"").nth(1)?.split('"').next()?;
    let name = uri.rsplit('/').next()?.strip_suffix(".m4s")?;
    let (m, p) = name.split_once('.')?;
    Some((m.parse().ok()?, p.parse().ok()?))
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

/// What one client saw.
#[derive(Default)]
struct ClientLog {
    /// (msn, part, when the blocking playlist response completed)
    playlists: Vec<(u64, u64, Instant)>,
    /// (msn, part, when the part response completed)
    parts: Vec<(u64, u64, Instant)>,
    /// Response times (`parts` mode).
    latencies: Vec<Duration>,
    errors: HashMap<String, u64>,
}

fn count_error(log: &mut ClientLog, counters: &Counters, what: String) {
    counters.errors.fetch_add(1, Ordering::Relaxed);
    *log.errors.entry(what).or_default() += 1;
}

async fn llhls_client(
    mut conn: Conn,
    path: String,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) -> ClientLog {
    let mut log = ClientLog::default();
    let dir = path
        .split('?')
        .next()
        .unwrap_or("")
        .rsplit_once('/')
        .map_or(String::new(), |(d, _)| d.to_owned());
    let mut next = match conn.get(&path).await {
        Ok((200, body)) => hint(&body),
        Ok((s, _)) => {
            count_error(&mut log, &counters, format!("playlist {s}"));
            None
        }
        Err(e) => {
            count_error(&mut log, &counters, format!("playlist: {e}"));
            None
        }
    };
    while let Some((m, p)) = next {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let measured = measuring.load(Ordering::Relaxed);
        let q = format!("{path}?_HLS_msn={m}&_HLS_part={p}");
        next = match conn.get(&q).await {
            Ok((200, body)) => {
                let done = Instant::now();
                counters.requests.fetch_add(1, Ordering::Relaxed);
                counters
                    .bytes
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
                if measured {
                    log.playlists.push((m, p, done));
                }
                hint(&body)
            }
            Ok((s, _)) => {
                count_error(&mut log, &counters, format!("blocking playlist {s}"));
                break;
            }
            Err(e) => {
                count_error(&mut log, &counters, format!("blocking playlist: {e}"));
                break;
            }
        };
        match conn.get(&format!("{dir}/{m}.{p}.m4s")).await {
            Ok((200, body)) => {
                counters.requests.fetch_add(1, Ordering::Relaxed);
                counters
                    .bytes
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
                if measured {
                    log.parts.push((m, p, Instant::now()));
                }
            }
            Ok((s, _)) => count_error(&mut log, &counters, format!("part {s}")),
            Err(e) => {
                count_error(&mut log, &counters, format!("part: {e}"));
                break;
            }
        }
    }
    log
}

async fn parts_client(
    mut conn: Conn,
    path: String,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) -> ClientLog {
    let mut log = ClientLog::default();
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        match conn.get(&path).await {
            Ok((200, body)) => {
                if measuring.load(Ordering::Relaxed) {
                    counters.requests.fetch_add(1, Ordering::Relaxed);
                    counters
                        .bytes
                        .fetch_add(body.len() as u64, Ordering::Relaxed);
                    log.latencies.push(sent.elapsed());
                }
            }
            Ok((s, _)) => count_error(&mut log, &counters, format!("GET {s}")),
            Err(e) => {
                count_error(&mut log, &counters, format!("GET: {e}"));
                break;
            }
        }
    }
    log
}

fn rss(pid: u32) -> u64 {
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

fn pct_ms(v: &mut [Duration], pct: usize) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() - 1) * pct).div_ceil(100).min(v.len() - 1);
    v[i].as_secs_f64() * 1000.0
}

/// Delays from each part's availability (its first playlist completion) to each
/// completion in `events`.
fn delays(
    first: &HashMap<(u64, u64), Instant>,
    events: impl Iterator<Item = (u64, u64, Instant)>,
) -> Vec<Duration> {
    events
        .filter_map(|(m, p, t)| first.get(&(m, p)).map(|f| t.saturating_duration_since(*f)))
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let target = parse_url(&args.url)?;
    let counters = Arc::new(Counters::default());
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));

    // Connect every client, in batches.
    let ramp = Instant::now();
    let mut conns = Vec::with_capacity(args.clients);
    let mut failed = 0usize;
    while conns.len() + failed < args.clients {
        let n = args.batch.min(args.clients - conns.len() - failed);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (addr, host) = (target.addr, target.host.clone());
            set.spawn(async move { Conn::open(addr, &host).await });
        }
        while let Some(r) = set.join_next().await {
            match r? {
                Ok(c) => conns.push(c),
                Err(e) => {
                    if failed == 0 {
                        eprintln!("connect failed: {e:#}");
                    }
                    failed += 1;
                }
            }
        }
    }
    if conns.is_empty() {
        bail!("no connection could be opened to {}", target.addr);
    }
    eprintln!(
        "{} clients connected in {:?} ({failed} failed)",
        conns.len(),
        ramp.elapsed()
    );

    let mut tasks = tokio::task::JoinSet::new();
    for conn in conns {
        let (path, measuring, stop, counters) = (
            target.path.clone(),
            measuring.clone(),
            stop.clone(),
            counters.clone(),
        );
        match args.mode {
            Mode::Llhls => tasks.spawn(llhls_client(conn, path, measuring, stop, counters)),
            Mode::Parts => tasks.spawn(parts_client(conn, path, measuring, stop, counters)),
        };
    }
    // Warm-up: every client through its first requests.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let requests_before = counters.requests.load(Ordering::Relaxed);
    let bytes_before = counters.bytes.load(Ordering::Relaxed);
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut rss_max = 0;
    while Instant::now() < deadline {
        if let Some(pid) = args.pid {
            rss_max = rss_max.max(rss(pid));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    measuring.store(false, Ordering::Relaxed);
    let measured = started.elapsed();
    let requests = counters.requests.load(Ordering::Relaxed) - requests_before;
    let bytes = counters.bytes.load(Ordering::Relaxed) - bytes_before;
    stop.store(true, Ordering::Relaxed);

    // Blocking clients wait at most for the next part; give them a moment, then abort.
    let mut logs = Vec::new();
    let collect_until = Instant::now() + Duration::from_secs(10);
    while !tasks.is_empty() {
        match tokio::time::timeout_at(collect_until.into(), tasks.join_next()).await {
            Ok(Some(Ok(log))) => logs.push(log),
            Ok(Some(Err(_))) => {}
            Ok(None) | Err(_) => break,
        }
    }
    tasks.abort_all();

    let mut errors: HashMap<String, u64> = HashMap::new();
    for log in &logs {
        for (k, v) in &log.errors {
            *errors.entry(k.clone()).or_default() += v;
        }
    }
    let secs = measured.as_secs_f64();
    let mut out = serde_json::json!({
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "clients": args.clients,
        "connected": args.clients - failed,
        "seconds": secs,
        "requests": requests,
        "requests_per_s": requests as f64 / secs,
        "mbit_per_s": bytes as f64 * 8.0 / secs / 1e6,
        "errors": errors,
        "rss_max_bytes": rss_max,
    });
    match args.mode {
        Mode::Llhls => {
            let mut first: HashMap<(u64, u64), Instant> = HashMap::new();
            for log in &logs {
                for &(m, p, t) in &log.playlists {
                    first
                        .entry((m, p))
                        .and_modify(|f| *f = (*f).min(t))
                        .or_insert(t);
                }
            }
            let mut pl = delays(
                &first,
                logs.iter().flat_map(|l| l.playlists.iter().copied()),
            );
            let mut parts = delays(&first, logs.iter().flat_map(|l| l.parts.iter().copied()));
            out["parts_seen"] = first.len().into();
            out["playlist_delay_ms"] = serde_json::json!({"p50": pct_ms(&mut pl, 50), "p99": pct_ms(&mut pl, 99), "max": pct_ms(&mut pl, 100)});
            out["part_delay_ms"] = serde_json::json!({"p50": pct_ms(&mut parts, 50), "p99": pct_ms(&mut parts, 99), "max": pct_ms(&mut parts, 100)});
        }
        Mode::Parts => {
            let mut lat: Vec<Duration> = logs
                .iter()
                .flat_map(|l| l.latencies.iter().copied())
                .collect();
            out["latency_ms"] = serde_json::json!({"p50": pct_ms(&mut lat, 50), "p99": pct_ms(&mut lat, 99), "max": pct_ms(&mut lat, 100)});
        }
    }
    println!("{out}");
    Ok(())
}

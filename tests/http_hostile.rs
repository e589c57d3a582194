//! Hostile HTTP clients against the real binary, with a live stream and a well-behaved
//! low-latency client beside them:
//!
//! - path traversal attempts (plain, percent-encoded, encoded slashes and backslashes,
//!   NUL, overlong paths), written byte for byte on a socket: never a file from disk,
//!   never a 5xx, the server keeps serving;
//! - absurd `_HLS_msn` / `_HLS_part` / `_HLS_skip` values: a prompt 400 (or, for the
//!   harmless ones, a prompt answer), never a held request or a crash;
//! - 3000 idle TCP connections (half of them with an unfinished request head) against
//!   `http.max_connections = 1000`: the server holds no more than its limit (the rest
//!   wait in the listen backlog or time out connecting), closes the idle ones after
//!   `http.header_read_timeout_ms`, serves a newcomer that connected during the flood once
//!   they are gone, keeps its memory bounded, and a client that already had its
//!   connection keeps getting its blocking playlist answers and parts on time;
//! - slow readers (segments read one byte a second through a tiny receive window): the
//!   other client is not slowed, memory stays bounded.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

#[path = "support/binary.rs"]
mod binary;
#[path = "../packager/tests/support/llhls.rs"]
mod llhls;

use binary::{Ferrocast, Http, Options, Publisher, part_of_uri, percentile, raw_get, raw_request};

const MAX_CONNECTIONS: usize = 1000;
/// `http.header_read_timeout_ms`: idle connections are closed after this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(4);

async fn live(server: &Ferrocast, stream: &str) -> (Http, String, Duration) {
    let http = Http::new();
    let media = server.url(&format!("/{stream}/source/index.m3u8"));
    let r = http
        .wait_for(&media, Duration::from_secs(20), "a complete segment", |r| {
            r.text().contains("#EXTINF")
        })
        .await;
    let p = llhls::parse(&r.text()).0;
    let pt = Duration::from_millis(
        u64::try_from(p.part_target.expect("PART-TARGET").millis()).expect("positive"),
    );
    (http, media, pt)
}

// ---------------------------------------------------------------------------------------
// Paths and queries

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_and_absurd_queries_get_prompt_refusals() {
    const STREAM: &str = "live/hostile";
    let mut server = Ferrocast::start(Options::default()).await;
    let _publisher = Publisher::start(&server.rtmp_url(STREAM), 60);
    let (http, media, _) = live(&server, STREAM).await;
    let within = Duration::from_secs(2);

    let long = format!("/live/{}/source/index.m3u8", "a".repeat(10_000));
    let traversals = [
        "/../../etc/passwd",
        "/live/../../../../etc/passwd",
        "/live/hostile/../../../../etc/passwd",
        "/live/hostile/source/../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/live/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/live/hostile/source/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/live/hostile/source/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/live%2fhostile%2fsource%2findex.m3u8",
        "/live/hostile%2fsource/index.m3u8",
        "/live/hostile/source%2findex.m3u8",
        "/..%5c..%5c..%5cetc%5cpasswd",
        "/live/hostile/source/..%5c..%5cindex.m3u8",
        "/live/hostile/source/index.m3u8%00.txt",
        "/live/hostile/source/%00",
        "/live/%ff%fe/source/index.m3u8",
        "//etc/passwd",
        "/etc/passwd",
        "/live/hostile/source/init.mp4/../../../../etc/passwd",
        "/live/hostile/source/1.0.m4s/..",
        "/live/hostile/source/-1.m4s",
        "/live/hostile/source/99999999999999999999999.0.m4s",
        "/live/hostile/source/1.99999999999.m4s",
        "/live/hostile/source/init-99999999999999999999.mp4",
        "/proc/self/environ",
        "/live/hostile/source/index.m3u8/",
        long.as_str(),
    ];
    for path in traversals {
        let shown = &path[..path.len().min(80)];
        match raw_get(server.http, path, within).await {
            Ok(r) => {
                assert!(
                    matches!(r.status, 400 | 404 | 414 | 431),
                    "GET {shown}: status {} (want 400/404/414/431), body {:?}",
                    r.status,
                    String::from_utf8_lossy(&r.body[..r.body.len().min(200)])
                );
                let body = String::from_utf8_lossy(&r.body);
                assert!(
                    !body.contains("root:") && !body.contains("PATH="),
                    "GET {shown} leaked a file: {body}"
                );
            }
            // Closing the connection on a request it will not parse is fine too, if fast.
            Err(e) => assert!(
                !e.contains("within"),
                "GET {shown}: no answer within {within:?}"
            ),
        }
    }

    // Absurd queries: a prompt 400 (the spec's cases and values that are not numbers).
    let r = http.get(&media).await;
    let p = llhls::parse(&r.text()).0;
    let next = p.next_msn();
    let refused = [
        "_HLS_msn=99999999999999999999".to_string(),
        "_HLS_msn=18446744073709551615".to_string(),
        "_HLS_msn=18446744073709551615&_HLS_part=4294967295".to_string(),
        "_HLS_msn=-1".to_string(),
        "_HLS_msn=-1&_HLS_part=0".to_string(),
        "_HLS_msn=abc".to_string(),
        "_HLS_msn=1e3".to_string(),
        "_HLS_msn=0x10".to_string(),
        "_HLS_msn=".to_string(),
        "_HLS_msn=%20%31".to_string(),
        format!("_HLS_msn={next}&_HLS_part=99999999999"),
        format!("_HLS_msn={next}&_HLS_part=4294967296"),
        format!("_HLS_msn={next}&_HLS_part=-5"),
        format!("_HLS_msn={next}&_HLS_part=1.5"),
        format!("_HLS_msn={next}&_HLS_msn={next}"),
        "_HLS_part=3".to_string(),
        format!("_HLS_msn={}", next + 1_000_000),
    ];
    for q in &refused {
        let target = format!(
            "{}?{q}",
            media.trim_start_matches(&format!("http://{}", server.http))
        );
        let r = raw_get(server.http, &target, within)
            .await
            .unwrap_or_else(|e| panic!("?{q}: {e}"));
        assert_eq!(
            r.status,
            400,
            "?{q}: want 400, body {:?}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // Odd but harmless: answered (400 or a playlist) without being held.
    let long_query = "x=y&".repeat(2000);
    let harmless = [
        "_HLS_skip=MAYBE",
        "_HLS_skip=",
        "_HLS_foo=1",
        "_HLS_msn",
        "&&&=&=",
        "%ff%fe=%00",
        long_query.as_str(),
    ];
    for q in harmless {
        let target = format!(
            "{}?{q}",
            media.trim_start_matches(&format!("http://{}", server.http))
        );
        let sent = Instant::now();
        match raw_get(server.http, &target, within).await {
            Ok(r) => assert!(
                matches!(r.status, 200 | 400 | 414 | 431),
                "?{}: status {}",
                &q[..q.len().min(60)],
                r.status
            ),
            Err(e) => panic!("?{}: {e}", &q[..q.len().min(60)]),
        }
        assert!(sent.elapsed() < within);
    }
    // Garbage request lines and headers.
    for request in [
        &b"GET\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"\x00\x01\x02\x03\r\n\r\n",
        b"GET /live/hostile/source/index.m3u8 HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET /live/hostile/source/index.m3u8 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        // Any answer or a closed connection, but promptly.
        if let Err(e) = raw_request(server.http, request, within).await {
            assert!(!e.contains("within"), "{request:?}: {e}");
        }
    }

    // Still serving, promptly.
    let r = http.get(&media).await;
    assert_eq!(r.status, 200);
    assert!(r.elapsed() < Duration::from_secs(1));
    server.assert_running();
}

// ---------------------------------------------------------------------------------------
// Connections

/// A low-latency client in a loop: blocking reload for the hinted part, then the part.
/// Records (response time of the blocking request, interval since the previous part).
struct Player {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<PlayerStats>,
}

#[derive(Debug, Default)]
struct PlayerStats {
    rounds: usize,
    failures: Vec<String>,
    /// (when, interval since the previous answer)
    intervals: Vec<(Instant, Duration)>,
    part_times: Vec<(Instant, Duration)>,
}

impl PlayerStats {
    fn between(v: &[(Instant, Duration)], from: Instant, to: Instant) -> Vec<Duration> {
        v.iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, d)| *d)
            .collect()
    }
}

impl Player {
    fn start(http: Http, media: String) -> Player {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut st = PlayerStats::default();
            let base = media.trim_end_matches("index.m3u8").to_owned();
            let mut text = http.get(&media).await.text();
            let mut last = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                st.rounds += 1;
                let p = llhls::parse(&text).0;
                let Some((m, n)) = p
                    .hints
                    .first()
                    .and_then(|h| h.get("URI"))
                    .and_then(|u| part_of_uri(u))
                else {
                    st.failures.push(format!("no hint in\n{text}"));
                    break;
                };
                let url = format!("{media}?_HLS_msn={m}&_HLS_part={n}");
                let r = match http.try_get_with(&url, &[]).await {
                    Ok(r) => r,
                    Err(e) => {
                        st.failures.push(format!("{url}: {e}"));
                        break;
                    }
                };
                if r.status != 200 {
                    st.failures.push(format!("{url}: {}", r.describe()));
                    break;
                }
                let now = Instant::now();
                st.intervals.push((now, now - last));
                last = now;
                text = r.text();
                let part = format!("{base}{m}.{n}.m4s");
                match http.try_get_with(&part, &[]).await {
                    Ok(r) if r.status == 200 => st.part_times.push((Instant::now(), r.elapsed())),
                    Ok(r) => st.failures.push(format!("{part}: {}", r.describe())),
                    Err(e) => st.failures.push(format!("{part}: {e}")),
                }
            }
            st
        });
        Player { stop, task }
    }

    async fn finish(self) -> PlayerStats {
        self.stop.store(true, Ordering::Relaxed);
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("player loop ends")
            .expect("player task")
    }
}

/// Opens up to `n` TCP connections that send nothing, or (every other one) half a
/// request head; gives up on each after `timeout` (the server stops accepting at its
/// limit: the rest wait in, or overflow, the listen backlog).
async fn idle_connections(
    addr: std::net::SocketAddr,
    n: usize,
    timeout: Duration,
) -> Vec<TcpStream> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        tasks.spawn(async move {
            let mut s = tokio::time::timeout(timeout, TcpStream::connect(addr))
                .await
                .ok()
                .and_then(Result::ok)?;
            if i % 2 == 1 {
                let _ = s
                    .write_all(b"GET /live/crowded/source/index.m3u8 HTTP/1.1\r\nHost: x\r\n")
                    .await;
            }
            Some(s)
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        if let Ok(Some(s)) = r {
            out.push(s);
        }
    }
    out
}

/// How many of `conns` the server has closed (EOF or reset), without waiting.
fn closed_by_server(conns: &[TcpStream]) -> usize {
    let mut buf = [0u8; 256];
    conns
        .iter()
        .filter(|s| match s.try_read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false, // an answer (a 408, say) is followed by the close
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        })
        .count()
}

/// A connection that asks for `path` and then reads one byte a second through a 4 KiB
/// receive buffer.
async fn slow_reader(addr: std::net::SocketAddr, path: String, stop: Arc<AtomicBool>) -> usize {
    let Ok(socket) = TcpSocket::new_v4() else {
        return 0;
    };
    let _ = socket.set_recv_buffer_size(4096);
    let Ok(mut s) = socket.connect(addr).await else {
        return 0;
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return 0;
    }
    let mut read = 0;
    let mut byte = [0u8; 1];
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => read += n,
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    read
}

fn summary(v: &[Duration]) -> String {
    format!(
        "n {} p50 {:?} p99 {:?} max {:?}",
        v.len(),
        percentile(v, 50),
        percentile(v, 99),
        percentile(v, 100)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_connections_and_slow_readers_do_not_starve_a_player() {
    const STREAM: &str = "live/crowded";
    // Room for the idle connections in this process and the server's limit in its own.
    let nofile = binary::raise_nofile(16_384);
    let idle_count = 3000.min(usize::try_from(nofile).unwrap_or(1024).saturating_sub(300));
    let server = Ferrocast::start(Options::toml(&format!(
        "[http]\nmax_connections = {MAX_CONNECTIONS}\nheader_read_timeout_ms = {}\n",
        HEADER_TIMEOUT.as_millis()
    )))
    .await;
    let _publisher = Publisher::start(&server.rtmp_url(STREAM), 120);
    let (http, media, pt) = live(&server, STREAM).await;
    // Let the window fill a little, then measure the server at rest.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_rest = server.rss_bytes();
    let fds_rest = server.open_fds();

    let player = Player::start(http.clone(), media.clone());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let calm_until = Instant::now();

    // Phase 1: idle connections, far more than the limit, half of them with an
    // unfinished request head. The server holds its limit, closes them after
    // `header_read_timeout_ms`, and then accepts the ones queued behind them: a newcomer
    // connecting during the flood is served once the idle ones are reaped.
    let flood_from = Instant::now();
    let idle = idle_connections(server.http, idle_count, Duration::from_secs(3)).await;
    let connected_at = Instant::now();
    let newcomer_media = media.clone();
    let newcomer = tokio::spawn(async move {
        let fresh = Http::new();
        let sent = Instant::now();
        loop {
            match fresh.try_get_with(&newcomer_media, &[]).await {
                Ok(r) if r.status == 200 => return Ok(sent.elapsed()),
                Ok(r) => return Err(r.describe()),
                Err(e) if sent.elapsed() > Duration::from_secs(30) => return Err(e.to_string()),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    let mut fds_max = 0;
    let mut rss_max = 0;
    let hold = connected_at + HEADER_TIMEOUT + Duration::from_secs(3);
    while Instant::now() < hold || !newcomer.is_finished() {
        fds_max = fds_max.max(server.open_fds());
        rss_max = rss_max.max(server.rss_bytes());
        assert!(
            connected_at.elapsed() < Duration::from_secs(40),
            "the newcomer is still waiting"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let flood_until = Instant::now();
    let reaped = closed_by_server(&idle);
    let newcomer = newcomer.await.expect("newcomer task");
    eprintln!(
        "idle: {} of {idle_count} connected (nofile {nofile}); server fds {fds_rest} at rest, \
         {fds_max} at most; RSS {} MiB at rest, {} MiB at most; {reaped} closed by the \
         server after {:?}; a newcomer during the flood was served after {newcomer:?}",
        idle.len(),
        rss_rest >> 20,
        rss_max >> 20,
        connected_at.elapsed(),
    );
    assert!(
        idle.len() >= MAX_CONNECTIONS,
        "only {} idle connections could be opened: the test proves nothing",
        idle.len()
    );
    assert!(
        fds_max <= fds_rest + MAX_CONNECTIONS + 16,
        "the server held {fds_max} file descriptors with a limit of {MAX_CONNECTIONS} \
         connections ({fds_rest} at rest)"
    );
    assert!(
        reaped >= MAX_CONNECTIONS * 9 / 10,
        "only {reaped} of {} idle connections were closed by the server within \
         header_read_timeout ({HEADER_TIMEOUT:?}) + 3 s",
        idle.len()
    );
    let waited = newcomer.unwrap_or_else(|e| panic!("the newcomer was refused: {e}"));
    assert!(
        waited <= HEADER_TIMEOUT * 2 + Duration::from_secs(8),
        "a newcomer waited {waited:?} during the flood"
    );
    drop(idle);

    // Phase 2: slow readers of whole segments.
    let text = http.get(&media).await.text();
    let p = llhls::parse(&text).0;
    let segs: Vec<u64> = p.segments.iter().rev().take(4).map(|s| s.msn).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let slow_from = Instant::now();
    let base = media
        .trim_start_matches(&format!("http://{}", server.http))
        .trim_end_matches("index.m3u8")
        .to_owned();
    let readers: Vec<_> = (0..200)
        .map(|i| {
            let path = format!("{base}{}.m4s", segs[i % segs.len()]);
            tokio::spawn(slow_reader(server.http, path, stop.clone()))
        })
        .collect();
    let hold = Instant::now() + Duration::from_secs(8);
    while Instant::now() < hold {
        rss_max = rss_max.max(server.rss_bytes());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let slow_until = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let mut bytes_read = 0;
    for r in readers {
        bytes_read += r.await.unwrap_or(0);
    }
    let stats = player.finish().await;

    let calm = PlayerStats::between(
        &stats.intervals,
        flood_from - Duration::from_secs(4),
        calm_until,
    );
    let flood = PlayerStats::between(&stats.intervals, flood_from, flood_until);
    let slow = PlayerStats::between(&stats.intervals, slow_from, slow_until);
    let parts_flood = PlayerStats::between(&stats.part_times, flood_from, slow_until);
    eprintln!(
        "player: {} rounds; intervals calm {}; with idle connections {}; with slow readers \
         {}; part fetches {}; slow readers read {bytes_read} bytes; RSS max {} MiB",
        stats.rounds,
        summary(&calm),
        summary(&flood),
        summary(&slow),
        summary(&parts_flood),
        rss_max >> 20
    );
    assert!(
        stats.failures.is_empty(),
        "player failures: {:#?}",
        stats.failures
    );
    for (what, v) in [("idle connections", &flood), ("slow readers", &slow)] {
        assert!(
            v.len() >= 10,
            "the player got only {} answers with {what}",
            v.len()
        );
        // A new part about every PART-TARGET, as without the hostile clients.
        assert!(
            percentile(v, 50) <= pt * 3 / 2,
            "with {what}, blocking answers every {:?} (median), PART-TARGET {pt:?}",
            percentile(v, 50)
        );
        assert!(
            percentile(v, 100) <= pt + Duration::from_millis(1500),
            "with {what}, a blocking answer took {:?}",
            percentile(v, 100)
        );
    }
    assert!(
        percentile(&parts_flood, 99) <= Duration::from_millis(500),
        "listed parts took p99 {:?} to fetch under the hostile clients",
        percentile(&parts_flood, 99)
    );
    assert!(
        rss_max <= rss_rest + (128 << 20),
        "RSS grew from {} MiB to {} MiB",
        rss_rest >> 20,
        rss_max >> 20
    );

    // Afterwards a new client is served promptly (the idle connections are gone).
    let fresh = Http::new();
    let sent = Instant::now();
    let r = loop {
        match fresh.try_get_with(&media, &[]).await {
            Ok(r) => break r,
            Err(e) => assert!(
                sent.elapsed() < Duration::from_secs(15),
                "a new client is not served after the hostile clients left: {e}"
            ),
        }
    };
    assert_eq!(r.status, 200);
    eprintln!(
        "a new client served {:?} after the hostile clients left",
        sent.elapsed()
    );
}

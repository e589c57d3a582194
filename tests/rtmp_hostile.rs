//! Hostile and broken peers against a server that also carries a real ffmpeg publisher:
//! each bad connection must be closed with a logged reason, the publisher's frames must
//! keep flowing, and memory must stay flat. Also: `max_connections` is enforced.
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ingest::rtmp::server::RtmpConfig;
use media::StreamEvent;
use media::hub::Subscriber;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(1000);
const MAX_MESSAGE: u32 = 1 << 20;
/// Slack for a loaded 2-core machine on top of the configured timeouts.
const MARGIN: Duration = Duration::from_secs(3);

/// xorshift64*: reproducible junk without a dependency.
struct Junk(u64);

impl Junk {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }
}

/// True when `line` names `peer` (not merely a longer port with the same prefix).
fn mentions_peer(line: &str, peer: SocketAddr) -> bool {
    let needle = peer.to_string();
    line.match_indices(&needle).any(|(at, _)| {
        !line[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// Waits for the server's "connection closed" line about `peer` and checks its reason.
async fn closed_line(peer: SocketAddr, reason: &str) -> String {
    let line = wait_for_log(
        &format!("about closing {peer}"),
        Duration::from_secs(3),
        |l| mentions_peer(l, peer) && l.contains("closed"),
    )
    .await;
    assert!(
        line.contains(reason),
        "closing {peer}: want reason {reason:?} in {line:?}"
    );
    line
}

/// Reads (and discards) until the server closes the connection; returns when, or panics
/// after `within`.
async fn wait_closed(stream: &mut TcpStream, within: Duration, what: &str) -> Duration {
    let start = Instant::now();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let left = within.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => panic!("{what}: the server kept the connection open for {within:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

/// True if the connection is still open after `wait` (no EOF, no error, no data needed).
async fn stays_open(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return true,
            Ok(Ok(0)) | Ok(Err(_)) => return false,
            Ok(Ok(_)) => {}
        }
    }
}

/// A plain handshake: C0 C1, read S0 S1 S2, answer C2 (S1 echoed).
async fn handshake(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0; 8]);
    c0c1.extend(Junk(7).bytes(1528));
    s.write_all(&c0c1).await.expect("write C0 C1");
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut s0s1s2))
        .await
        .expect("S0 S1 S2 in time")
        .expect("read S0 S1 S2");
    assert_eq!(s0s1s2[0], 3, "S0 version");
    s.write_all(&s0s1s2[1..1537]).await.expect("write C2");
    s
}

/// A type-0 chunk header (chunk stream ids 2..=319) for a message of `len` bytes on
/// message stream 1.
fn chunk_header(csid: u16, len: u32, message_type: u8) -> Vec<u8> {
    let mut h = match csid {
        2..=63 => vec![csid as u8],
        64..=319 => vec![0, (csid - 64) as u8],
        _ => panic!("chunk stream id {csid} needs the 3-byte form"),
    };
    h.extend_from_slice(&[0, 0, 0]);
    h.extend_from_slice(&len.to_be_bytes()[1..]);
    h.push(message_type);
    h.extend_from_slice(&1u32.to_le_bytes());
    h
}

/// Set Chunk Size (type 1) to `size`, on the control chunk stream.
fn set_chunk_size(size: u32) -> Vec<u8> {
    let mut m = chunk_header(2, 4, 1);
    m[8..12].copy_from_slice(&0u32.to_le_bytes()); // control messages go on stream 0
    m.extend_from_slice(&size.to_be_bytes());
    m
}

/// Counts a subscriber's video frames and the longest wall-clock gap between them
/// until `stop`.
struct FlowStats {
    video_frames: usize,
    max_gap: Duration,
    discontinuities: usize,
    ended: bool,
    elapsed: Duration,
}

async fn watch_flow(mut sub: Subscriber, stop: CancellationToken) -> FlowStats {
    let start = Instant::now();
    let mut stats = FlowStats {
        video_frames: 0,
        max_gap: Duration::ZERO,
        discontinuities: 0,
        ended: false,
        elapsed: Duration::ZERO,
    };
    let mut last = Instant::now();
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => break,
            event = sub.recv() => event,
        };
        match event {
            None | Some(StreamEvent::End) => {
                stats.ended = true;
                break;
            }
            Some(StreamEvent::Frame(f)) if f.track == VIDEO => {
                stats.video_frames += 1;
                stats.max_gap = stats.max_gap.max(last.elapsed());
                last = Instant::now();
            }
            Some(StreamEvent::Discontinuity { .. }) => stats.discontinuities += 1,
            Some(_) => {}
        }
    }
    stats.max_gap = stats.max_gap.max(last.elapsed());
    stats.elapsed = start.elapsed();
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_closed_and_a_publisher_keeps_flowing() {
    let server = TestServer::start(ServerOpts {
        rtmp: RtmpConfig {
            handshake_timeout_ms: HANDSHAKE_TIMEOUT.as_millis() as u64,
            idle_timeout_ms: 5000,
            max_message_size: MAX_MESSAGE,
            ..RtmpConfig::default()
        },
        ..ServerOpts::default()
    })
    .await;
    let addr = server.addr;
    let name = "live/steady";
    let mut publisher = ffmpeg_publish(
        &avc_aac_flv(),
        &server.url(name),
        &["-re", "-stream_loop", "-1"],
    );
    let mut sub = subscribe(&server.hub, name, Duration::from_secs(10)).await;
    // Steady state first: 15 frames in.
    let mut seen = 0;
    while seen < 15 {
        if let Some(StreamEvent::Frame(f)) = next_event(&mut sub, Duration::from_secs(5)).await {
            seen += usize::from(f.track == VIDEO);
        }
    }
    let stop = CancellationToken::new();
    let flow = tokio::spawn(watch_flow(sub, stop.clone()));
    let rss_before = rss_bytes();

    let mut cases = JoinSet::new();

    // (a) 64 KiB of junk instead of a handshake (first byte not version 3).
    cases.spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let peer = s.local_addr().unwrap();
        let mut junk = Junk(42).bytes(64 * 1024);
        junk[0] = 0xAB;
        let _ = s.write_all(&junk).await; // the server may hang up mid-write
        wait_closed(&mut s, MARGIN, "junk").await;
        closed_line(peer, "version").await;
    });

    // (b) truncated handshakes: C0 only, and C0 + half of C1, then our side closes.
    for cut in [1usize, 1 + 768] {
        cases.spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let peer = s.local_addr().unwrap();
            let mut c0c1 = vec![3u8];
            c0c1.extend(Junk(9).bytes(1536));
            s.write_all(&c0c1[..cut]).await.unwrap();
            s.shutdown().await.unwrap();
            let took = wait_closed(&mut s, MARGIN, "truncated handshake").await;
            assert!(
                took < HANDSHAKE_TIMEOUT,
                "EOF mid-handshake noticed after {took:?}"
            );
            closed_line(peer, "peer closed").await;
        });
    }

    // (c) a valid handshake, chunk size 0x7FFFFFFF, a message header declaring just under
    // the limit, then one byte every 50 ms: closed at the handshake deadline, because
    // it never publishes.
    for _ in 0..8 {
        cases.spawn(async move {
            let mut s = handshake(addr).await;
            let peer = s.local_addr().unwrap();
            s.write_all(&set_chunk_size(0x7FFF_FFFF)).await.unwrap();
            s.write_all(&chunk_header(3, MAX_MESSAGE - 1, 9))
                .await
                .unwrap();
            let start = Instant::now();
            let mut closed = false;
            while start.elapsed() < HANDSHAKE_TIMEOUT + MARGIN {
                if s.write_all(&[0x17]).await.is_err()
                    || !stays_open(&mut s, Duration::from_millis(50)).await
                {
                    closed = true;
                    break;
                }
            }
            assert!(closed, "a trickling peer was never dropped");
            let took = start.elapsed();
            assert!(
                took >= HANDSHAKE_TIMEOUT / 2,
                "the trickling peer was dropped after {took:?}, before the deadline"
            );
            closed_line(peer, "handshake and publish").await;
        });
    }

    // (e) a message larger than max_message_size: closed at once with the reason.
    cases.spawn(async move {
        let mut s = handshake(addr).await;
        let peer = s.local_addr().unwrap();
        s.write_all(&chunk_header(3, 0xFF_FFFF, 9)).await.unwrap();
        let _ = s.write_all(&Junk(3).bytes(4096)).await;
        wait_closed(&mut s, MARGIN, "oversized message").await;
        closed_line(peer, "exceeds the limit").await;
    });

    // (f) messages started on 200 chunk streams at once (one 128-byte chunk each, the
    // default chunk size), each left unfinished.
    cases.spawn(async move {
        let mut s = handshake(addr).await;
        let peer = s.local_addr().unwrap();
        let mut burst = Vec::new();
        for csid in 3..203u16 {
            burst.extend(chunk_header(csid, MAX_MESSAGE - 1, 9));
            burst.extend(Junk(u64::from(csid)).bytes(128));
        }
        let _ = s.write_all(&burst).await;
        wait_closed(&mut s, HANDSHAKE_TIMEOUT + MARGIN, "many chunk streams").await;
        closed_line(peer, "").await;
    });

    while let Some(done) = cases.join_next().await {
        done.expect("hostile case");
    }

    // (d) 200 sockets that never send a byte: each closed after the handshake timeout.
    let mut idle = JoinSet::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(addr).await.expect("connect idle socket");
        let opened = Instant::now();
        idle.spawn(async move {
            let peer = s.local_addr().unwrap();
            wait_closed(&mut s, HANDSHAKE_TIMEOUT + MARGIN, "idle socket").await;
            (peer, opened.elapsed())
        });
    }
    let mut peers = Vec::new();
    while let Some(done) = idle.join_next().await {
        let (peer, after) = done.expect("idle socket task");
        assert!(
            after >= HANDSHAKE_TIMEOUT * 8 / 10,
            "idle {peer} closed after {after:?}, before the handshake timeout"
        );
        peers.push(peer);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    let missing = loop {
        let lines: Vec<String> = all_log_lines()
            .into_iter()
            .filter(|l| l.contains("handshake and publish"))
            .collect();
        let missing: Vec<SocketAddr> = peers
            .iter()
            .copied()
            .filter(|p| !lines.iter().any(|l| mentions_peer(l, *p)))
            .collect();
        if missing.is_empty() || Instant::now() >= deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        missing.is_empty(),
        "no timeout line for idle peers {missing:?}"
    );

    let rss_after = rss_bytes();
    stop.cancel();
    let stats = flow.await.expect("flow watcher");
    assert!(
        publisher.try_status().is_none(),
        "the ffmpeg publisher stopped"
    );
    assert!(
        !stats.ended,
        "the publisher's stream ended during the attacks"
    );
    assert_eq!(stats.discontinuities, 0, "discontinuity during the attacks");
    let expected = (stats.elapsed.as_secs_f64() * 30.0 * 0.75) as usize;
    assert!(
        stats.video_frames >= expected,
        "{} video frames in {:?}, want >= {expected}",
        stats.video_frames,
        stats.elapsed
    );
    assert!(
        stats.max_gap < Duration::from_millis(750),
        "the publisher's frames stalled for {:?}",
        stats.max_gap
    );
    let growth = rss_after.saturating_sub(rss_before);
    assert!(
        growth < 64 << 20,
        "RSS grew by {} MiB ({} -> {})",
        growth >> 20,
        rss_before,
        rss_after
    );
    drop(publisher);
    server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_is_enforced() {
    const LIMIT: usize = 50;
    let server = TestServer::start(ServerOpts {
        rtmp: RtmpConfig {
            max_connections: LIMIT,
            handshake_timeout_ms: 20_000,
            ..RtmpConfig::default()
        },
        ..ServerOpts::default()
    })
    .await;
    let addr = server.addr;
    let mut held = Vec::new();
    for _ in 0..LIMIT {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // Ten more: each is closed at once, long before the handshake timeout.
    let mut extra = JoinSet::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(addr).await.expect("connect extra");
        extra.spawn(
            async move { wait_closed(&mut s, Duration::from_secs(2), "over the limit").await },
        );
    }
    while let Some(done) = extra.join_next().await {
        done.expect("extra socket task");
    }
    // The first fifty are still open.
    let mut open = JoinSet::new();
    for mut s in held.drain(..) {
        open.spawn(async move { (stays_open(&mut s, Duration::from_millis(300)).await, s) });
    }
    while let Some(done) = open.join_next().await {
        let (still, s) = done.expect("held socket task");
        assert!(still, "a connection within the limit was closed");
        held.push(s);
    }
    wait_for_log("about the connection limit", Duration::from_secs(2), |l| {
        l.contains("connection limit")
    })
    .await;

    // Freeing slots lets new connections in again.
    held.truncate(LIMIT - 10);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut s = TcpStream::connect(addr)
            .await
            .expect("connect after freeing");
        if stays_open(&mut s, Duration::from_millis(300)).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no connection accepted after 10 slots were freed"
        );
    }
    drop(held);
    server.shutdown(Duration::from_secs(5)).await;
}

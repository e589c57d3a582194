//! SRT ingest with real libsrt publishers: ffmpeg (`srt://`), GStreamer (`srtsink`) and
//! `srt-live-transmit` each push an H.264 + AAC MPEG-TS file; what the hub yields is
//! compared, frame by frame, with ffprobe's view of the same file. On the real binary:
//! three publishers on one port at once, and refusals (wrong passphrase, missing
//! passphrase, unknown key, playback mode) with the server's log line and no stream.
//! A lossy path (2% loss and 20 ms delay each way, through a UDP relay in the test)
//! must still deliver every frame, and the retransmission counters must move.
mod support;

#[path = "support/binary.rs"]
mod binary;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ingest::auth::{AuthConfig, Authenticator};
use ingest::srt::SrtConfig;
use ingest::srt::server::SrtServer;
use media::hub::{Hub, HubConfig};
use media::{Codec, StreamEvent};
use support::*;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// 5 s of 640x360 30 fps H.264 High with B-frames (GOP 30) and 48 kHz stereo AAC, in
/// MPEG-TS.
fn avc_aac_ts() -> PathBuf {
    fixture(
        "avc-aac-640x360.ts",
        "ffmpeg -hide_banner -nostdin -loglevel error -y \
         -f lavfi -i testsrc2=size=640x360:rate=30 \
         -f lavfi -i sine=frequency=440:sample_rate=48000 \
         -t 5 -c:v libx264 -profile:v high -bf 2 -g 30 \
         -c:a aac -ar 48000 -ac 2 -f mpegts \"$OUT\"",
    )
}

/// `seconds` of `w`x`h` 25 fps H.264 (GOP 25) and 44.1 kHz mono AAC, MPEG-TS.
fn sized_ts(w: u32, h: u32, seconds: u32) -> PathBuf {
    fixture(
        &format!("avc-aac-{w}x{h}-{seconds}s.ts"),
        &format!(
            "ffmpeg -hide_banner -nostdin -loglevel error -y \
             -f lavfi -i testsrc=size={w}x{h}:rate=25 \
             -f lavfi -i sine=frequency=1000:sample_rate=44100 \
             -t {seconds} -pix_fmt yuv420p -c:v libx264 -profile:v main -g 25 \
             -c:a aac -ar 44100 -ac 1 -f mpegts \"$OUT\""
        ),
    )
}

/// The SRT listener in this process with its own hub; cancelled when dropped.
struct SrtTestServer {
    addr: SocketAddr,
    hub: Hub,
    shutdown: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SrtTestServer {
    async fn start(mut config: SrtConfig, auth: AuthConfig) -> SrtTestServer {
        init_logs();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.validate().expect("valid srt config");
        let binding = ingest::srt::server::bind(&config).await.expect("bind srt");
        let addr = binding.local_addr();
        let hub = Hub::new(HubConfig::default());
        let server = SrtServer {
            hub: hub.clone(),
            auth: Arc::new(Authenticator::new(auth).expect("auth config")),
            config,
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(ingest::srt::server::run(binding, server, shutdown.clone()));
        SrtTestServer {
            addr,
            hub,
            shutdown,
            task: Some(task),
        }
    }

    async fn shutdown(mut self, within: Duration) {
        self.shutdown.cancel();
        let task = self.task.take().expect("once");
        match tokio::time::timeout(within, task).await {
            Ok(Ok(Ok(()))) => {}
            other => panic!("srt server did not stop cleanly within {within:?}: {other:?}"),
        }
    }
}

impl Drop for SrtTestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `ffmpeg -re -i ts -c copy -f mpegts srt://addr?streamid=..&pkt_size=1316[&extra]`.
fn ffmpeg_srt(input: &Path, addr: SocketAddr, stream_id: &str, extra: &str) -> Proc {
    // linger: libsrt drops unsent data at close in live mode unless told to wait.
    let url = format!("srt://{addr}?streamid={stream_id}&pkt_size=1316&linger=3{extra}");
    let mut a = args(&[
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "warning",
        "-re",
        "-i",
    ]);
    a.push(input.display().to_string());
    a.extend(args(&["-c", "copy", "-f", "mpegts"]));
    a.push(url);
    Proc::spawn("ffmpeg", &a)
}

/// Checks what the hub yielded against ffprobe's packets of the TS file. ffprobe's TS
/// times are 90 kHz; ADTS headers (7 bytes, no CRC from ffmpeg's encoder) are in its
/// audio packet sizes and not in ours.
///
/// `tail` is how much media at the end may be missing: a libsrt caller that closes with
/// `SRTO_LINGER` 0 (GStreamer's srtsink sets it) throws away what it has not sent yet.
/// What arrived must then be exactly the file's first frames.
fn check_ts_stream(who: &str, got: &Collected, probe: &Probe, tail: Duration) {
    assert!(got.ended, "{who}: stream did not end with End");
    assert_eq!(got.discontinuities(), 0, "{who}: unexpected discontinuity");
    assert!(
        matches!(got.events.first(), Some(StreamEvent::Tracks(_))),
        "{who}: first event must be Tracks"
    );
    let pv = probe.stream("video");
    let pa = probe.stream("audio");
    let video = got.track(VIDEO);
    assert_eq!(video.timescale, 90_000, "{who}: video timescale");
    assert!(
        matches!(video.codec, Codec::H264 { .. }),
        "{who}: video codec {:?}",
        video.codec
    );
    assert_eq!(
        video.codec.dimensions(),
        Some((pv.width.unwrap(), pv.height.unwrap())),
        "{who}: dimensions"
    );
    let audio = got.track(AUDIO);
    let rate = pa.sample_rate.expect("sample rate");
    assert_eq!(audio.timescale, rate, "{who}: audio timescale");
    assert_eq!(
        audio.codec.audio(),
        Some((rate, pa.channels.unwrap() as u8)),
        "{who}: audio rate and channels"
    );

    let frames = got.frames(VIDEO);
    let packets = probe.packets("video");
    let dts0 = packets[0].dts.expect("dts");
    let f0 = frames[0].dts;
    let last = packets.last().unwrap().dts.unwrap() - dts0;
    let got_last = frames.last().unwrap().dts - f0;
    let tail_90k = tail.as_millis() as i64 * 90;
    assert!(
        frames.len() <= packets.len() && got_last >= last - tail_90k,
        "{who}: {} video frames, the file has {}; last dts {got_last}, the file's {last}",
        frames.len(),
        packets.len()
    );
    if tail.is_zero() {
        assert_eq!(frames.len(), packets.len(), "{who}: video frame count");
    }
    for (i, (f, p)) in frames.iter().zip(&packets).enumerate() {
        let (dts, pts) = (p.dts.expect("dts"), p.pts.expect("pts"));
        assert_eq!(f.keyframe, p.keyframe, "{who}: keyframe flag of frame {i}");
        assert_eq!(f.dts - f0, dts - dts0, "{who}: dts of video frame {i}");
        assert_eq!(
            f.pts - f.dts,
            pts - dts,
            "{who}: pts-dts of video frame {i}"
        );
        let nals = nal_units(&f.data);
        assert!(!nals.is_empty(), "{who}: empty video frame {i}");
        if f.keyframe {
            assert!(
                nals.iter().any(|n| n.first().map(|b| b & 0x1f) == Some(5)),
                "{who}: keyframe {i} has no IDR slice"
            );
        }
    }
    let b_frames = frames.iter().filter(|f| f.pts != f.dts).count();
    let probe_b = packets[..frames.len()]
        .iter()
        .filter(|p| p.pts != p.dts)
        .count();
    assert_eq!(b_frames, probe_b, "{who}: frames with pts != dts");
    assert!(b_frames > 0 || probe_b == 0, "{who}: B-frames lost");
    assert!(
        frames[0].keyframe,
        "{who}: first video frame not a keyframe"
    );

    let aframes = got.frames(AUDIO);
    let apackets = probe.packets("audio");
    let tail_frames = (tail.as_secs_f64() * f64::from(rate) / 1024.0).ceil() as usize;
    assert!(
        aframes.len() <= apackets.len() && aframes.len() + tail_frames >= apackets.len(),
        "{who}: {} audio frames, the file has {}",
        aframes.len(),
        apackets.len()
    );
    let apts0 = apackets[0].pts.expect("pts");
    let a0 = aframes[0].pts;
    let one_ms = i64::from(rate) / 1000;
    for (i, (f, p)) in aframes.iter().zip(&apackets).enumerate() {
        let want = (p.pts.expect("pts") - apts0) * i64::from(rate) / 90_000;
        assert!(
            (f.pts - a0 - want).abs() <= one_ms,
            "{who}: audio frame {i}: pts {} (rebased {}), ffprobe says {want}",
            f.pts,
            f.pts - a0
        );
        assert_eq!(f.data.len() + 7, p.size, "{who}: audio frame {i} size");
    }
    // A/V sync survives the rebase (within 1 ms).
    let want_us = (apts0 - dts0) * 1000 / 90;
    let got_us = a0 * 1_000_000 / i64::from(rate) - f0 * 1_000_000 / 90_000;
    assert!(
        (got_us - want_us).abs() <= 1000,
        "{who}: audio starts {got_us} us after video, ffprobe says {want_us} us"
    );
}

async fn publish_and_compare(
    who: &str,
    name: &str,
    tail: Duration,
    publisher: impl FnOnce(SocketAddr) -> Proc,
) {
    let server = SrtTestServer::start(SrtConfig::default(), AuthConfig::default()).await;
    let input = avc_aac_ts();
    let probe = ffprobe(&input, &[]);
    let mut proc = publisher(server.addr);
    let mut sub = subscribe(&server.hub, name, Duration::from_secs(30)).await;
    let got = collect_until_end(&mut sub, Duration::from_secs(60)).await;
    proc.wait_success(Duration::from_secs(30)).await;
    check_ts_stream(who, &got, &probe, tail);
    server.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publish_matches_ffprobe() {
    let input = avc_aac_ts();
    publish_and_compare("ffmpeg", "live/ff", Duration::ZERO, |addr| {
        ffmpeg_srt(&input, addr, "#!::r=live/ff,m=publish", "")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_srtsink_publish_matches_ffprobe() {
    let input = avc_aac_ts();
    // srtsink closes with SRTO_LINGER 0: up to the last latency's worth may not be sent.
    publish_and_compare(
        "gst srtsink",
        "live/gst",
        Duration::from_millis(500),
        |addr| {
            // tsparse stamps buffers from the PCR, so srtsink (sync=true) sends in real time.
            Proc::spawn(
                "gst-launch-1.0",
                &[
                    "-q".to_string(),
                    "filesrc".into(),
                    format!("location={}", input.display()),
                    "!".into(),
                    "tsparse".into(),
                    "set-timestamps=true".into(),
                    "alignment=7".into(),
                    "!".into(),
                    "srtsink".into(),
                    format!("uri=srt://{addr}"),
                    "streamid=publish:live/gst".into(),
                    "latency=120".into(),
                    "sync=true".into(),
                ],
            )
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srt_live_transmit_publish_matches_ffprobe() {
    let input = avc_aac_ts();
    // srt-live-transmit relays UDP to SRT, its usual job. (Its `file://con` source stalls
    // on a pipe and refuses a regular file on stdin: it polls the descriptor but reads
    // through a buffered stream.) ffmpeg sends the file in real time to its UDP input; an
    // interrupt then makes it close, lingering until everything is delivered.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = udp.local_addr().unwrap().port();
    drop(udp);
    publish_and_compare("srt-live-transmit", "live/slt", Duration::ZERO, |addr| {
        Proc::spawn(
            "bash",
            &[
                "-c".to_string(),
                format!(
                    "srt-live-transmit -q udp://127.0.0.1:{port} 'srt://{addr}?streamid=live/slt&linger=3' & slt=$!; \
                     sleep 0.5; \
                     ffmpeg -hide_banner -nostdin -loglevel warning -re -i '{}' -c copy -f mpegts 'udp://127.0.0.1:{port}?pkt_size=1316'; \
                     sleep 1; kill -INT $slt; wait $slt",
                    input.display()
                ),
            ],
        )
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// The real binary

async fn streams(server: &binary::Ferrocast) -> Vec<serde_json::Value> {
    let body = reqwest::get(format!("http://{}/api/v1/streams", server.admin))
        .await
        .expect("GET /api/v1/streams")
        .text()
        .await
        .expect("body");
    serde_json::from_str::<Vec<serde_json::Value>>(&body).expect("streams JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_publishers_on_one_port() {
    let server = binary::Ferrocast::start(binary::Options::default()).await;
    let srt = server.srt.expect("srt address in the start line");
    let sizes = [(320u32, 180u32), (480, 270), (640, 360)];
    let mut procs = Vec::new();
    for (i, (w, h)) in sizes.iter().enumerate() {
        let input = sized_ts(*w, *h, 20);
        let id = match i {
            0 => "#!::r=live/one,m=publish".to_string(),
            1 => "publish:live/two".to_string(),
            _ => "live/three".to_string(),
        };
        procs.push(ffmpeg_srt(&input, srt, &id, ""));
    }
    let want = [("live/one", 320u64), ("live/three", 640), ("live/two", 480)];
    let deadline = Instant::now() + Duration::from_secs(60);
    let listed = loop {
        let list = streams(&server).await;
        let ok = list.len() == 3
            && list.iter().zip(&want).all(|(s, (name, width))| {
                s["name"] == *name
                    && s["protocol"] == "srt"
                    && s["tracks"][0]["width"] == *width
                    && s["tracks"][0]["frames"].as_u64().unwrap_or(0) > 50
                    && s["transport"]["packets_received"].as_u64().unwrap_or(0) > 0
            });
        if ok {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "three SRT streams not live within 60 s: {list:#?}\n{}",
            server.stderr_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Distinct publishers: three peers, each with its own transport figures and bitrate.
    let peers: std::collections::HashSet<&str> =
        listed.iter().map(|s| s["peer"].as_str().unwrap()).collect();
    assert_eq!(peers.len(), 3, "{listed:#?}");
    for s in &listed {
        assert_eq!(s["tracks"][1]["sample_rate"], 44100, "{s}");
        assert!(s["transport"]["rtt_ms"].as_f64().is_some(), "{s}");
    }
    let metrics = server.metrics().await;
    for (name, _) in want {
        let line = format!("ferrocast_ingest_bytes_total{{protocol=\"srt\",stream=\"{name}\"}}");
        assert!(metrics.contains(&line), "no {line} in\n{metrics}");
        let rtt = format!("ferrocast_ingest_rtt_seconds{{protocol=\"srt\",stream=\"{name}\"}}");
        assert!(metrics.contains(&rtt), "no {rtt} in\n{metrics}");
    }
    // The receive bitrate comes from two statistics reports a second apart.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = streams(&server).await;
        if list.len() == 3
            && list
                .iter()
                .all(|s| s["transport"]["receive_bitrate_bps"].as_u64().unwrap_or(0) > 10_000)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no receive bitrate: {list:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for mut p in procs {
        p.wait_success(Duration::from_secs(60)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_and_publish_nothing() {
    let toml = r#"
[srt]
passphrase = "global-passphrase-1"
key_length = 24
[srt.passphrases]
"live/alice" = "alice-passphrase-2"
[auth]
mode = "keys"
[auth.keys]
"alice-key" = "live/alice"
"bob-key" = "live/bob"
"#;
    let server = binary::Ferrocast::start(binary::Options::toml(toml)).await;
    let srt = server.srt.expect("srt address");
    let input = sized_ts(320, 180, 20);
    let cases = [
        (
            "wrong passphrase",
            "#!::r=live/alice-key,m=publish",
            "&passphrase=not-the-passphrase&pbkeylen=24",
            "srt connection refused: wrong passphrase, or the caller does not encrypt",
        ),
        (
            "global passphrase for a stream with its own",
            "#!::r=live/alice-key,m=publish",
            "&passphrase=global-passphrase-1&pbkeylen=32",
            "srt connection refused: wrong passphrase, or the caller does not encrypt",
        ),
        (
            "no passphrase",
            "#!::r=live/bob-key,m=publish",
            "",
            "the caller announces no key length (AES-128 or no encryption), srt.key_length requires at least 192 bits",
        ),
        (
            "key shorter than srt.key_length",
            "#!::r=live/bob-key,m=publish",
            "&passphrase=global-passphrase-1&pbkeylen=16",
            "the caller's AES key is 128 bits, srt.key_length requires at least 192 bits",
        ),
        (
            "unknown key",
            "#!::r=live/mallory,m=publish",
            "&passphrase=global-passphrase-1&pbkeylen=24",
            "reason=unknown stream key",
        ),
        (
            "playback mode",
            "#!::r=live/bob-key,m=request",
            "&passphrase=global-passphrase-1&pbkeylen=24",
            "this server only accepts publishers",
        ),
    ];
    for (what, id, extra, log) in cases {
        let mut p = ffmpeg_srt(&input, srt, id, extra);
        let status = p.wait(Duration::from_secs(30)).await;
        assert!(
            !status.success(),
            "{what}: ffmpeg succeeded; stderr:\n{}",
            p.stderr()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.stderr().lines().any(|l| l.contains(log)) {
            assert!(
                Instant::now() < deadline,
                "{what}: no log line with {log:?}:\n{}",
                server.stderr_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            streams(&server).await.is_empty(),
            "{what}: a stream appeared"
        );
        // The secret key never reaches the log.
        assert!(
            !server.stderr().contains("alice-key"),
            "{what}: key in the log"
        );
    }
    // The same publishers with the right passphrases are let in: the refusals above were
    // about the passphrase and the key, not something else.
    let mut alice = ffmpeg_srt(
        &input,
        srt,
        "#!::r=live/alice-key,m=publish",
        "&passphrase=alice-passphrase-2&pbkeylen=24",
    );
    let mut bob = ffmpeg_srt(
        &input,
        srt,
        "#!::r=live/bob-key,m=publish",
        "&passphrase=global-passphrase-1&pbkeylen=32",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = streams(&server).await;
        let names: Vec<&str> = list.iter().filter_map(|s| s["name"].as_str()).collect();
        if names == ["live/alice", "live/bob"]
            && list
                .iter()
                .all(|s| s["tracks"][0]["frames"].as_u64().unwrap_or(0) > 25)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "encrypted publishers not live: {list:#?}\n{}",
            server.stderr_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        server
            .stderr()
            .lines()
            .any(|l| l.contains("srt publish started") && l.contains("encrypted=true")),
        "{}",
        server.stderr_tail(30)
    );
    alice.wait_success(Duration::from_secs(60)).await;
    bob.wait_success(Duration::from_secs(60)).await;
}

// ---------------------------------------------------------------------------------------
// Lossy path

/// Whether this kernel can shape traffic with netem in a network namespace (the
/// preferred way to make a lossy path). Where it cannot, the lossy test uses a UDP relay
/// in the test process instead, and says so.
fn netem_available() -> Result<(), String> {
    let ns = format!("fc-netem-probe-{}", std::process::id());
    let run = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .map_err(|e| format!("{}: {e}", args.join(" ")))
            .and_then(|o| {
                if o.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "{}: {}",
                        args.join(" "),
                        String::from_utf8_lossy(&o.stderr).trim()
                    ))
                }
            })
    };
    run(&["ip", "netns", "add", &ns])?;
    let result = run(&["ip", "-n", &ns, "link", "set", "lo", "up"]).and_then(|()| {
        run(&[
            "tc", "-n", &ns, "qdisc", "add", "dev", "lo", "root", "netem", "loss", "2%",
        ])
    });
    let _ = run(&["ip", "netns", "del", &ns]);
    result
}

/// A small xorshift generator: the relay's coin flips, without a dependency.
struct Coin(std::sync::Mutex<u64>);

impl Coin {
    fn new(seed: u64) -> Coin {
        Coin(std::sync::Mutex::new(seed | 1))
    }

    /// True with probability `p`.
    fn flip(&self, p: f64) -> bool {
        let mut x = self.0.lock().unwrap();
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        ((*x >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// A UDP relay for one SRT caller: every datagram, either way, is dropped with
/// probability `loss` or delivered after `delay`.
async fn lossy_relay(server: SocketAddr, loss: f64, delay: Duration) -> SocketAddr {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    back.connect(server).await.unwrap();
    let addr = front.local_addr().unwrap();
    let caller: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let coin = Arc::new(Coin::new(seed));
    {
        let (front, back, caller, coin) =
            (front.clone(), back.clone(), caller.clone(), coin.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, from)) = front.recv_from(&mut buf).await {
                *caller.lock().unwrap() = Some(from);
                if coin.flip(loss) {
                    continue;
                }
                let data = buf[..n].to_vec();
                let back = back.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = back.send(&data).await;
                });
            }
        });
    }
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok(n) = back.recv(&mut buf).await {
            let Some(to) = *caller.lock().unwrap() else {
                continue;
            };
            if coin.flip(loss) {
                continue;
            }
            let data = buf[..n].to_vec();
            let front = front.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = front.send_to(&data, to).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_path_recovers_every_frame() {
    match netem_available() {
        Ok(()) => eprintln!(
            "srt lossy test: netem works here, but this test uses its own UDP relay \
             (2% loss, 20 ms delay each way) so it runs the same everywhere"
        ),
        Err(why) => eprintln!(
            "srt lossy test: NOTE: netem in a network namespace is NOT available here \
             ({why}); using a UDP relay in the test process (2% loss, 20 ms delay each \
             way) as the lossy path instead"
        ),
    }
    let config = SrtConfig {
        latency_ms: 400,
        ..SrtConfig::default()
    };
    let server = SrtTestServer::start(config, AuthConfig::default()).await;
    let relay = lossy_relay(server.addr, 0.02, Duration::from_millis(20)).await;
    let input = sized_ts(640, 360, 15);
    let probe = ffprobe(&input, &[]);
    let mut proc = ffmpeg_srt(&input, relay, "live/lossy", "&latency=400000");
    let mut sub = subscribe(&server.hub, "live/lossy", Duration::from_secs(30)).await;
    // Read the transport figures while the stream is live (they go with the publisher).
    let hub = server.hub.clone();
    let watcher = tokio::spawn(async move {
        let mut last = None;
        while let Some(s) = hub.stream("live/lossy") {
            if s.transport.is_some() {
                last = s.transport;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        last
    });
    let got = collect_until_end(&mut sub, Duration::from_secs(90)).await;
    proc.wait_success(Duration::from_secs(30)).await;
    let transport = watcher.await.unwrap().expect("transport stats while live");

    // Every frame arrived, in order, with the right timing: ARQ recovered the losses.
    let frames = got.frames(VIDEO);
    let packets = probe.packets("video");
    assert_eq!(got.discontinuities(), 0);
    assert_eq!(frames.len(), packets.len(), "video frames: {transport:?}");
    assert_eq!(
        got.frames(AUDIO).len(),
        probe.packets("audio").len(),
        "audio frames: {transport:?}"
    );
    let d0 = packets[0].dts.unwrap();
    for (i, (f, p)) in frames.iter().zip(&packets).enumerate() {
        assert_eq!(
            f.dts - frames[0].dts,
            p.dts.unwrap() - d0,
            "dts of frame {i}"
        );
        assert_eq!(f.keyframe, p.keyframe, "keyframe flag of frame {i}");
    }
    assert_eq!(transport.ts_continuity_errors, 0, "{transport:?}");
    assert!(
        transport.packets_retransmitted > 0,
        "no retransmission counted through 2% loss: {transport:?}"
    );
    assert!(transport.packets_lost > 0, "{transport:?}");
    assert!(transport.packets_received > 500, "{transport:?}");
    server.shutdown(Duration::from_secs(10)).await;
}

/// srt-tokio 0.4's listener task panics on a caller that encrypts without announcing a
/// key size to a stream without a passphrase (see `ingest::srt::server`): the server
/// must log it, bind the port again, and take the next publisher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_recovers_after_srt_tokio_panics() {
    let server = SrtTestServer::start(SrtConfig::default(), AuthConfig::default()).await;
    let input = sized_ts(320, 180, 20);
    let mark = log_mark();
    let mut bad = ffmpeg_srt(
        &input,
        server.addr,
        "live/encrypted",
        "&passphrase=unexpected-passphrase",
    );
    let status = bad.wait(Duration::from_secs(30)).await;
    assert!(
        !status.success(),
        "an encrypting caller got in: {}",
        bad.stderr()
    );
    let lines = || mark.lines().join("\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !mark
        .lines()
        .iter()
        .any(|l| l.contains("srt listener restarted"))
    {
        assert!(
            Instant::now() < deadline,
            "listener not restarted within 60 s:\n{}",
            lines()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(lines().contains("srt listener task stopped"), "{}", lines());
    assert!(server.hub.stream("live/encrypted").is_none());
    // The port takes publishers again.
    let good = ffmpeg_srt(&input, server.addr, "live/after", "");
    let mut sub = subscribe(&server.hub, "live/after", Duration::from_secs(30)).await;
    let mut frames = 0;
    while frames < 50 {
        match next_event(&mut sub, Duration::from_secs(10)).await {
            Some(StreamEvent::Frame(f)) if f.track == VIDEO => frames += 1,
            Some(StreamEvent::End) | None => panic!("stream ended after {frames} frames"),
            Some(_) => {}
        }
    }
    drop(good); // killed on drop
    server.shutdown(Duration::from_secs(10)).await;
}

/// A second publisher of a live name takes it over (hub takeover on, as for RTMP): the
/// first connection is closed with a logged reason and subscribers read a Takeover
/// discontinuity, then the new publisher's media.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_publisher_takes_the_stream_over() {
    let server = SrtTestServer::start(SrtConfig::default(), AuthConfig::default()).await;
    let first_input = sized_ts(320, 180, 20);
    let second_input = sized_ts(480, 270, 20);
    let mark = log_mark();
    let mut first = ffmpeg_srt(&first_input, server.addr, "live/take", "");
    let mut sub = subscribe(&server.hub, "live/take", Duration::from_secs(30)).await;
    let first_peer = server.hub.stream("live/take").unwrap().peer;
    // Wait for the first publisher's media before the second one comes.
    let mut frames = 0;
    while frames < 25 {
        if let Some(StreamEvent::Frame(f)) = next_event(&mut sub, Duration::from_secs(10)).await
            && f.track == VIDEO
        {
            frames += 1;
        }
    }
    let _second = ffmpeg_srt(&second_input, server.addr, "live/take", "");
    let mut saw_takeover = false;
    let width = loop {
        match next_event(&mut sub, Duration::from_secs(20)).await {
            Some(StreamEvent::Discontinuity {
                reason: media::DiscontinuityReason::Takeover,
            }) => saw_takeover = true,
            Some(StreamEvent::Tracks(tracks)) if saw_takeover => {
                break tracks[0].codec.dimensions().unwrap().0;
            }
            Some(StreamEvent::End) | None => panic!("stream ended instead of a takeover"),
            Some(_) => {}
        }
    };
    assert_eq!(
        width, 480,
        "tracks after the takeover are the second publisher's"
    );
    assert_ne!(server.hub.stream("live/take").unwrap().peer, first_peer);
    let status = first.wait(Duration::from_secs(30)).await;
    assert!(
        !status.success(),
        "the first publisher was not disconnected: {}",
        first.stderr()
    );
    let peer = first_peer.to_string();
    assert!(
        mark.lines()
            .iter()
            .any(|l| l.contains(&peer)
                && l.contains("reason=another publisher took over the stream")),
        "{}",
        mark.lines().join("\n")
    );
    server.shutdown(Duration::from_secs(10)).await;
}

//! Ladders on real GStreamer: sources encoded by x264 in the test, fed to a hub, rung
//! streams read back and checked (sizes from the SPS, keyframe pts, bitrate, timeline).
mod support;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use media::StreamEvent;
use media::hub::{Hub, rung_stream_name};
use support::*;
use tokio_util::sync::CancellationToken;
use transcode::{DecoderChoice, EncoderChoice, TranscodeConfig, TranscodeMetrics};

/// Bound of every wait: the 1080p ladder runs slower than real time on a loaded 2-core CI.
const LONG: Duration = Duration::from_secs(600);

fn cpu_config() -> TranscodeConfig {
    TranscodeConfig {
        encoder: EncoderChoice::X264,
        decoder: DecoderChoice::Cpu,
        ..TranscodeConfig::default()
    }
}

struct Running {
    hub: Hub,
    metrics: TranscodeMetrics,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(config: TranscodeConfig) -> Running {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
    let hub = hub();
    let registry = prometheus::Registry::new();
    let metrics = TranscodeMetrics::new(&registry).unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(transcode::run(
        hub.clone(),
        config,
        Some(metrics.clone()),
        shutdown.clone(),
    ));
    Running {
        hub,
        metrics,
        shutdown,
        task,
    }
}

/// Publishes `src` as `name` once the ladder has subscribed and its rungs (`rungs`)
/// exist, then reads every rung to its End.
async fn run_source(
    r: &Running,
    name: &str,
    src: &Source,
    rungs: &[&str],
    mangle: impl Fn(usize, &media::Frame) -> media::Frame,
) -> HashMap<String, Vec<StreamEvent>> {
    let publisher = publish(&r.hub, name);
    let hub = r.hub.clone();
    wait_for("the ladder to subscribe", LONG, || {
        hub.stream(name).is_some_and(|s| s.subscribers > 0)
    })
    .await;
    publisher.send(StreamEvent::Tracks(vec![src.track.clone()]));
    for rung in rungs {
        let n = rung_stream_name(name, rung);
        wait_for(&n, LONG, || hub.stream(&n).is_some()).await;
    }
    let readers: Vec<_> = rungs
        .iter()
        .map(|rung| {
            let (hub, name, rung) = (hub.clone(), name.to_owned(), rung.to_string());
            tokio::spawn(async move {
                let ev = read_until_end(&hub, &name, &rung, LONG).await;
                (rung, ev)
            })
        })
        .collect();
    for (i, f) in src.frames.iter().enumerate() {
        publisher.send(StreamEvent::Frame(mangle(i, f)));
        if i % 30 == 0 {
            tokio::task::yield_now().await;
        }
    }
    drop(publisher);
    let mut out = HashMap::new();
    for reader in readers {
        let (rung, ev) = reader.await.unwrap();
        out.insert(rung, ev);
    }
    out
}

fn keyframe_pts(events: &[StreamEvent]) -> BTreeSet<i64> {
    frames(events)
        .iter()
        .filter(|f| f.keyframe)
        .map(|f| f.pts)
        .collect()
}

/// 1080p30 with real motion through the default ladder: 1080p/720p/480p/360p, sizes from
/// the SPS, every source picture in every rung on the source timeline, keyframes exactly
/// at the source keyframes, bitrate within 15% over 22 s; meanwhile the runtime (one
/// thread) keeps ticking, so no GStreamer call blocks it.
#[tokio::test(flavor = "current_thread")]
async fn a_1080p_source_makes_four_rungs_on_the_source_timeline() {
    let src = tokio::task::spawn_blocking(|| {
        encode_source(
            "zone-plate kx2=20 ky2=20 kt=1",
            1920,
            1080,
            30,
            22,
            60,
            0,
            12_000,
        )
    })
    .await
    .unwrap();
    let r = start(cpu_config());

    // A 10 ms ticker on the single runtime thread: a blocking push would stall it.
    let worst_gap = Arc::new(AtomicU64::new(0));
    let ticker = {
        let worst_gap = worst_gap.clone();
        tokio::spawn(async move {
            let mut last = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let gap = last.elapsed().as_millis() as u64;
                worst_gap.fetch_max(gap, Ordering::Relaxed);
                last = Instant::now();
            }
        })
    };
    let rungs = ["1080p", "720p", "480p", "360p"];
    let out = run_source(&r, "live/t", &src, &rungs, |_, f| f.clone()).await;
    ticker.abort();

    assert!(r.hub.stream("live/t@1440p").is_none() && r.hub.stream("live/t@2160p").is_none());
    let received = received_by_pts(&src);
    let src_pts: BTreeSet<i64> = src.frames.iter().map(|f| f.pts).collect();
    let src_keys: BTreeSet<i64> = src
        .frames
        .iter()
        .filter(|f| f.keyframe)
        .map(|f| f.pts)
        .collect();
    assert_eq!(src_keys.len(), 11);
    let sizes = [(1920, 1080), (1280, 720), (854, 480), (640, 360)];
    let targets = [5000.0, 2800.0, 1400.0, 800.0];
    for ((rung, size), target) in rungs.iter().zip(sizes).zip(targets) {
        let ev = &out[*rung];
        assert!(
            matches!(ev[0], StreamEvent::Tracks(_)),
            "{rung}: Tracks first"
        );
        let codecs = codecs(ev);
        assert_eq!(codecs.len(), 1, "{rung}: one Tracks");
        assert_eq!(sps_size(&codecs[0]), size, "{rung}: SPS size");
        assert_eq!(codecs[0].dimensions(), Some(size));
        let fr = frames(ev);
        let pts: BTreeSet<i64> = fr.iter().map(|f| f.pts).collect();
        assert_eq!(
            (
                pts.len(),
                pts.symmetric_difference(&src_pts)
                    .take(8)
                    .collect::<Vec<_>>()
            ),
            (src_pts.len(), vec![]),
            "{rung}: every source picture, same pts"
        );
        assert!(
            fr.windows(2).all(|w| w[0].pts < w[1].pts),
            "{rung}: no B-frames"
        );
        for f in &fr {
            assert_eq!(f.dts, f.pts);
            assert_eq!(f.keyframe, media::h264::contains_idr(&f.data));
            assert_eq!(
                f.received, received[&f.pts],
                "{rung}: received of the source"
            );
        }
        assert_eq!(
            keyframe_pts(ev),
            src_keys,
            "{rung}: keyframes at the source's"
        );
        let bytes: usize = fr.iter().map(|f| f.data.len()).sum();
        let kbps = bytes as f64 * 8.0 / 22.0 / 1000.0;
        assert!(
            (kbps - target).abs() <= target * 0.15,
            "{rung}: {kbps:.0} kb/s, target {target}"
        );
        assert!(matches!(ev.last(), Some(StreamEvent::End)));
    }
    let gap = worst_gap.load(Ordering::Relaxed);
    assert!(gap < 1000, "the runtime thread stalled for {gap} ms");
    assert_eq!(r.metrics.restarts.with_label_values(&["live/t"]).get(), 0);
    assert!(
        r.metrics
            .encode_latency
            .with_label_values(&["360p"])
            .get_sample_count()
            >= 660
    );
    r.shutdown.cancel();
    r.task.await.unwrap();
}

/// The keyframes a ladder must make: every source keyframe, and the first picture a
/// keyframe interval (`interval` ticks) or more after the last forced one.
fn expected_keyframes(src: &Source, interval: i64) -> BTreeSet<i64> {
    let mut last: Option<i64> = None;
    let mut out = BTreeSet::new();
    for f in &src.frames {
        if f.keyframe || last.is_none_or(|l| f.pts - l >= interval) {
            last = Some(f.pts);
            out.insert(f.pts);
        }
    }
    out
}

/// A 720p source with an 8 s GOP and B-frames: no rung above 720p; rung keyframes at the
/// source keyframes and every 2 s (the keyframe interval) between them; B-frame reordering
/// mapped back to the source pts.
#[tokio::test]
async fn a_long_gop_720p_source_gets_keyframes_every_interval_and_no_upscale() {
    let src =
        tokio::task::spawn_blocking(|| encode_source("ball", 1280, 720, 30, 12, 240, 2, 3000))
            .await
            .unwrap();
    assert_eq!(src.frames.iter().filter(|f| f.keyframe).count(), 2);
    assert!(
        src.frames.iter().any(|f| f.pts != f.dts),
        "source has B-frames"
    );
    let config = TranscodeConfig {
        keyframe_interval_ms: 2000,
        ..cpu_config()
    };
    let r = start(config);
    let rungs = ["720p", "480p", "360p"];
    let out = run_source(&r, "live/gop", &src, &rungs, |_, f| f.clone()).await;
    for above in ["1080p", "1440p", "2160p"] {
        assert!(r.hub.stream(&rung_stream_name("live/gop", above)).is_none());
    }
    let src_pts: BTreeSet<i64> = src.frames.iter().map(|f| f.pts).collect();
    let want = expected_keyframes(&src, 180_000);
    // 0, 2, 4, 6 s, 8 s (source), 10 s.
    assert_eq!(want.len(), 6);
    for rung in rungs {
        let ev = &out[rung];
        let fr = frames(ev);
        let pts: BTreeSet<i64> = fr.iter().map(|f| f.pts).collect();
        assert_eq!(pts, src_pts, "{rung}: every source picture, same pts");
        assert_eq!(keyframe_pts(ev), want, "{rung}: keyframes");
        let h = sps_size(&codecs(ev)[0]).1;
        assert_eq!(h, rung.trim_end_matches('p').parse::<u32>().unwrap());
    }
    r.shutdown.cancel();
    r.task.await.unwrap();
}

/// Garbage in the NAL payloads of 20 consecutive frames: the decoder's error is caught,
/// the restart counted, the ladder rebuilt at the next source keyframe, and the rungs go
/// on (same publishers: no End until the source ends).
#[tokio::test]
async fn corrupt_input_restarts_the_ladder_at_the_next_keyframe() {
    let src = tokio::task::spawn_blocking(|| encode_source("ball", 854, 480, 30, 8, 60, 0, 1500))
        .await
        .unwrap();
    let config = TranscodeConfig {
        rungs: transcode::default_rungs()
            .into_iter()
            .filter(|r| r.height <= 480)
            .collect(),
        ..cpu_config()
    };
    let r = start(config);
    let rungs = ["480p", "360p"];
    let corrupt = 70..90;
    let out = run_source(&r, "live/bad", &src, &rungs, |i, f| {
        if !corrupt.contains(&i) {
            return f.clone();
        }
        // Keep every NAL's length and header byte, scramble the rest.
        let mut data = f.data.to_vec();
        let mut pos = 0;
        let mut x = 0x9e37_79b9u32 ^ i as u32;
        while pos + 4 <= data.len() {
            let len = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
            let end = (pos + 4 + len).min(data.len());
            for b in &mut data[(pos + 5).min(end)..end] {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            pos = end;
        }
        media::Frame {
            data: data.into(),
            ..f.clone()
        }
    })
    .await;
    let restarts = r.metrics.restarts.with_label_values(&["live/bad"]).get();
    assert!(restarts >= 1, "no restart counted");
    let resume = src.frames[120].pts;
    assert!(src.frames[120].keyframe);
    let after: BTreeSet<i64> = src.frames[120..].iter().map(|f| f.pts).collect();
    for rung in rungs {
        let ev = &out[rung];
        let ends = ev.iter().filter(|e| matches!(e, StreamEvent::End)).count();
        assert_eq!(ends, 1, "{rung}: the rung ended only with the source");
        assert!(matches!(ev.last(), Some(StreamEvent::End)));
        let fr = frames(ev);
        assert!(
            fr.iter().filter(|f| f.pts < src.frames[70].pts).count() >= 30,
            "{rung}: frames before the damage"
        );
        let got: BTreeSet<i64> = fr
            .iter()
            .filter(|f| f.pts >= resume)
            .map(|f| f.pts)
            .collect();
        assert_eq!(got, after, "{rung}: every frame from the next keyframe on");
        let first = fr.iter().find(|f| f.pts >= resume).unwrap();
        assert!(
            first.pts == resume && first.keyframe,
            "{rung}: resumes on a keyframe"
        );
    }
    r.shutdown.cancel();
    r.task.await.unwrap();
}

/// Without NVIDIA elements (this machine), `auto` picks x264 and CPU decoding and says why.
#[test]
fn auto_without_nvidia_picks_x264_and_says_why() {
    let b = transcode::select_backend(&TranscodeConfig::default()).unwrap();
    if gstreamer::ElementFactory::find("nvh264enc").is_some() {
        // A machine with the nvcodec plugin: the probe decided on a real session.
        return;
    }
    assert_eq!(b.encoder, transcode::EncoderKind::X264);
    assert!(
        b.encoder_reason.contains("nvh264enc"),
        "{}",
        b.encoder_reason
    );
    assert!(
        b.encoder_reason.contains("not available"),
        "{}",
        b.encoder_reason
    );
    assert_eq!(b.decoder, transcode::DecoderKind::Cpu);
    assert!(
        b.decoder_reason.contains("nvh264dec"),
        "{}",
        b.decoder_reason
    );
}

/// A publisher reconnecting with a smaller picture: the Discontinuity is forwarded to
/// every rung after the old pipeline drained; the new Tracks rebuild the ladder, the rung
/// that no longer fits ends, the one that fits goes on with new Tracks and every new
/// frame.
#[tokio::test]
async fn a_resolution_change_rebuilds_the_ladder() {
    let (a, b) = tokio::task::spawn_blocking(|| {
        (
            encode_source("ball", 854, 480, 30, 3, 30, 0, 1500),
            encode_source("smpte", 640, 360, 30, 3, 30, 0, 800),
        )
    })
    .await
    .unwrap();
    let config = TranscodeConfig {
        rungs: transcode::default_rungs()
            .into_iter()
            .filter(|r| r.height <= 480)
            .collect(),
        ..cpu_config()
    };
    let r = start(config);
    let name = "live/change";
    let publisher = publish(&r.hub, name);
    let hub = r.hub.clone();
    wait_for("the ladder to subscribe", LONG, || {
        hub.stream(name).is_some_and(|s| s.subscribers > 0)
    })
    .await;
    publisher.send(StreamEvent::Tracks(vec![a.track.clone()]));
    for rung in ["480p", "360p"] {
        let n = rung_stream_name(name, rung);
        wait_for(&n, LONG, || hub.stream(&n).is_some()).await;
    }
    let readers: Vec<_> = ["480p", "360p"]
        .into_iter()
        .map(|rung| {
            let hub = hub.clone();
            tokio::spawn(async move { read_until_end(&hub, name, rung, LONG).await })
        })
        .collect();
    for f in &a.frames {
        publisher.send(StreamEvent::Frame(f.clone()));
    }
    let shift = a.frames.iter().map(|f| f.pts).max().unwrap() + 3000 - b.frames[0].pts;
    let b_frames: Vec<media::Frame> = b
        .frames
        .iter()
        .map(|f| media::Frame {
            pts: f.pts + shift,
            dts: f.dts + shift,
            ..f.clone()
        })
        .collect();
    publisher.send(StreamEvent::Discontinuity {
        reason: media::DiscontinuityReason::Reconnect,
    });
    publisher.send(StreamEvent::Tracks(vec![b.track.clone()]));
    for f in &b_frames {
        publisher.send(StreamEvent::Frame(f.clone()));
    }
    drop(publisher);
    let mut out = Vec::new();
    for reader in readers {
        out.push(reader.await.unwrap());
    }
    let (r480, r360) = (&out[0], &out[1]);
    let a_pts: BTreeSet<i64> = a.frames.iter().map(|f| f.pts).collect();
    let b_pts: BTreeSet<i64> = b_frames.iter().map(|f| f.pts).collect();

    // 480p: the first source only, then the discontinuities, then End (it no longer fits).
    let pts480: BTreeSet<i64> = frames(r480).iter().map(|f| f.pts).collect();
    assert_eq!(pts480, a_pts);
    let tail: Vec<_> = r480.iter().rev().take(3).rev().collect();
    assert!(
        matches!(
            tail[..],
            [
                StreamEvent::Discontinuity {
                    reason: media::DiscontinuityReason::Reconnect
                },
                StreamEvent::Discontinuity {
                    reason: media::DiscontinuityReason::CodecChange
                },
                StreamEvent::End
            ]
        ),
        "480p tail: {tail:?}"
    );

    // 360p: both sources, with the discontinuities and new Tracks between.
    let split = r360
        .iter()
        .position(|e| matches!(e, StreamEvent::Discontinuity { .. }))
        .unwrap();
    let before: BTreeSet<i64> = frames(&r360[..split]).iter().map(|f| f.pts).collect();
    let after_events = &r360[split..];
    let after: BTreeSet<i64> = frames(after_events).iter().map(|f| f.pts).collect();
    assert_eq!(before, a_pts);
    assert_eq!(after, b_pts);
    assert!(matches!(
        after_events[0],
        StreamEvent::Discontinuity {
            reason: media::DiscontinuityReason::Reconnect
        }
    ));
    assert!(matches!(
        after_events[1],
        StreamEvent::Discontinuity {
            reason: media::DiscontinuityReason::CodecChange
        }
    ));
    assert!(matches!(after_events[2], StreamEvent::Tracks(_)));
    assert_eq!(sps_size(&codecs(after_events)[0]), (640, 360));
    assert!(frames(after_events)[0].keyframe);
    r.shutdown.cancel();
    r.task.await.unwrap();
}

/// A 60 fps source on rungs capped at 30 fps: every other picture, each rung frame still
/// a source picture (pts and received), keyframes at the source keyframes.
#[tokio::test]
async fn a_60fps_source_is_capped_to_the_rung_max_fps() {
    let src = tokio::task::spawn_blocking(|| encode_source("ball", 854, 480, 60, 4, 60, 0, 2000))
        .await
        .unwrap();
    let config = TranscodeConfig {
        rungs: transcode::default_rungs()
            .into_iter()
            .filter(|r| r.height <= 480)
            .collect(),
        ..cpu_config()
    };
    let r = start(config);
    let rungs = ["480p", "360p"];
    let out = run_source(&r, "live/fps", &src, &rungs, |_, f| f.clone()).await;
    let received = received_by_pts(&src);
    let src_keys: BTreeSet<i64> = src
        .frames
        .iter()
        .filter(|f| f.keyframe)
        .map(|f| f.pts)
        .collect();
    for rung in rungs {
        let ev = &out[rung];
        let fr = frames(ev);
        let n = fr.len();
        assert!(
            (118..=122).contains(&n),
            "{rung}: {n} frames for 4 s at 30 fps"
        );
        for f in &fr {
            assert_eq!(
                received.get(&f.pts),
                Some(&f.received),
                "{rung}: pts {} is a source picture",
                f.pts
            );
        }
        assert_eq!(keyframe_pts(ev), src_keys, "{rung}: keyframes");
        assert_eq!(
            codecs(ev)[0].fps().map(|f| f.as_f64().round()),
            Some(30.0),
            "{rung}: SPS frame rate"
        );
    }
    r.shutdown.cancel();
    r.task.await.unwrap();
}

/// The driver leaves alone rung streams, streams whose override disables them, and
/// streams published before it started are picked up (resynchronised from the list).
#[tokio::test]
async fn the_driver_skips_rungs_and_disabled_streams() {
    let hub = hub();
    let early = publish(&hub, "live/early");
    let mut config = cpu_config();
    config.streams.insert(
        "live/off".into(),
        transcode::StreamOverride {
            enabled: Some(false),
            ..Default::default()
        },
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(transcode::run(hub.clone(), config, None, shutdown.clone()));
    let rung = publish(&hub, "live/x@720p");
    let off = publish(&hub, "live/off");
    let on = publish(&hub, "live/on");
    let h = hub.clone();
    wait_for("ladders for live/on and live/early", LONG, || {
        ["live/on", "live/early"]
            .iter()
            .all(|n| h.stream(n).is_some_and(|s| s.subscribers == 1))
    })
    .await;
    // Give the driver time to (wrongly) pick up the others.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hub.stream("live/x@720p").unwrap().subscribers, 0);
    assert_eq!(hub.stream("live/off").unwrap().subscribers, 0);
    shutdown.cancel();
    task.await.unwrap();
    drop((early, rung, off, on));
}

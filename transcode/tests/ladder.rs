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

const LONG: Duration = Duration::from_secs(300);

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

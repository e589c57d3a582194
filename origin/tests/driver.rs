//! The packaging driver with a real hub, synthetic publishers and a real store: streams
//! appear in the store, a publisher that leaves ends its playlists only after the grace
//! period, one that comes back within it continues the same playlists after an
//! EXT-X-DISCONTINUITY, shutdown ends every playlist, and each part's publish delay is
//! observed. Playlists are rendered and checked with the LL-HLS checker of the packager
//! tests.
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use media::hub::{Hub, HubConfig, Publisher, PublisherInfo, rung_stream_name};
use media::{Codec, Frame, FrameRate, StreamEvent, TrackInfo};
use origin::driver::{PackagingConfig, run_packaging};
use origin::{OriginMetrics, Store, StoreConfig};
use packager::PackagerConfig;
use packager::playlist::{MediaPlaylist, RenderOptions, render_media};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[path = "../../packager/tests/support/llhls.rs"]
mod llhls;

const AVCC: &[u8] = include_bytes!("../../packager/testdata/h264_baseline_720p30.avcc");
const VIDEO: u32 = 1;
const AUDIO: u32 = 2;
const NAME: &str = "live/t";
/// Bound on every wait for the driver.
const PATIENCE: Duration = Duration::from_secs(20);

fn tracks() -> Vec<TrackInfo> {
    // AAC LC, 48 kHz, stereo.
    let asc: u16 = (2 << 11) | (3 << 7) | (2 << 3);
    vec![
        TrackInfo {
            id: VIDEO,
            codec: Codec::H264 {
                avcc: Bytes::from_static(AVCC),
                width: 1280,
                height: 720,
                fps: Some(FrameRate { num: 30, den: 1 }),
            },
            timescale: 90_000,
        },
        TrackInfo {
            id: AUDIO,
            codec: Codec::aac(Bytes::copy_from_slice(&asc.to_be_bytes())).expect("asc"),
            timescale: 48_000,
        },
    ]
}

/// Sends `seconds` of 30 fps video (a keyframe every 2 s) and 48 kHz AAC, interleaved
/// by time, with timestamps from zero. Frames are sent faster than real time; their
/// `received` stamps follow the media clock from `wall_start`, as if paced.
fn send_media(publisher: &Publisher, seconds: u64, wall_start: SystemTime) {
    let mut events: Vec<(u64, Frame)> = Vec::new();
    for i in 0..30 * seconds {
        let ns = i * 1_000_000_000 / 30;
        events.push((
            ns,
            Frame {
                track: VIDEO,
                pts: (i * 3000) as i64,
                dts: (i * 3000) as i64,
                keyframe: i % 60 == 0,
                data: Bytes::from(vec![(i % 251) as u8; 300]),
                received: wall_start + Duration::from_nanos(ns),
            },
        ));
    }
    for k in 0..48_000 * seconds / 1024 {
        let ns = k * 1024 * 1_000_000_000 / 48_000;
        events.push((
            ns,
            Frame {
                track: AUDIO,
                pts: (k * 1024) as i64,
                dts: (k * 1024) as i64,
                keyframe: true,
                data: Bytes::from(vec![0xA0; 20]),
                received: wall_start + Duration::from_nanos(ns),
            },
        ));
    }
    events.sort_by_key(|(ns, f)| (*ns, f.track));
    publisher.send(StreamEvent::Tracks(tracks()));
    for (_, f) in events {
        publisher.send(StreamEvent::Frame(f));
    }
}

fn info(port: u16) -> PublisherInfo {
    PublisherInfo {
        protocol: "test",
        peer: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

struct Fixture {
    hub: Hub,
    store: Store,
    metrics: OriginMetrics,
    shutdown: CancellationToken,
    driver: JoinHandle<()>,
}

fn start(hub: Hub, grace: Duration) -> Fixture {
    let store = Store::new(StoreConfig::default());
    let metrics = OriginMetrics::new();
    let shutdown = CancellationToken::new();
    let driver = tokio::spawn(run_packaging(
        hub.clone(),
        store.clone(),
        PackagingConfig {
            packager: PackagerConfig::default(),
            grace_period: grace,
            metrics: Some(metrics.clone()),
            source_listed: None,
        },
        shutdown.clone(),
    ));
    Fixture {
        hub,
        store,
        metrics,
        shutdown,
        driver,
    }
}

fn hub() -> Hub {
    Hub::new(HubConfig {
        // Publishers here send faster than real time: no drops.
        subscriber_queue_frames: 100_000,
        ..HubConfig::default()
    })
}

/// Polls `f` until it returns Some, failing after [`PATIENCE`].
async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

impl Fixture {
    /// Publishes `NAME` and waits until the driver follows it.
    async fn publish(&self, port: u16) -> Publisher {
        let publisher = self.hub.publish(NAME, info(port)).expect("publish");
        until("the driver to subscribe", || {
            self.hub
                .stream(NAME)
                .is_some_and(|s| s.subscribers == 1)
                .then_some(())
        })
        .await;
        publisher
    }

    fn playlist(&self, rendition: &str) -> Option<MediaPlaylist> {
        self.store.playlist(NAME, rendition)
    }

    /// Waits until `rendition`'s playlist satisfies `f`.
    async fn playlist_until(
        &self,
        rendition: &str,
        what: &str,
        f: impl Fn(&MediaPlaylist) -> bool,
    ) -> MediaPlaylist {
        until(what, || self.playlist(rendition).filter(|p| f(p))).await
    }
}

fn render(p: &MediaPlaylist) -> String {
    render_media(
        p,
        &RenderOptions {
            skip: false,
            reports: &[],
        },
    )
}

fn assert_conforms(text: &str) {
    let violations = llhls::check(text, &llhls::CheckOptions::default());
    assert!(
        violations.is_empty(),
        "{}\n{text}",
        violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn last_msn(p: &MediaPlaylist) -> u64 {
    p.segments.last().map_or(0, |s| s.msn)
}

/// Parts listed in a playlist (complete segments and the pending one).
fn part_count(p: &MediaPlaylist) -> usize {
    p.segments.iter().map(|s| s.parts.len()).sum::<usize>()
        + p.pending.as_ref().map_or(0, |s| s.parts.len())
}

#[tokio::test]
async fn reconnect_within_grace_continues_then_the_playlists_end() {
    let grace = Duration::from_millis(600);
    let fx = start(hub(), grace);
    let t0 = SystemTime::now() - Duration::from_secs(30);

    // First publisher: 6 s, three GOPs. Segments 1 and 2 complete, 3 is open.
    let first = fx.publish(1000).await;
    send_media(&first, 6, t0);
    let p = fx
        .playlist_until("source", "two segments", |p| p.segments.len() >= 2)
        .await;
    assert_eq!(p.media_sequence, 1);
    assert!(!p.ended);
    let summary = fx.store.streams();
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0].name, NAME);
    assert_eq!(summary[0].renditions, vec!["source", "audio"]);
    let mut history = vec![render(&p)];

    // The publisher leaves: the open segment is completed at once, nothing ends yet.
    drop(first);
    let p = fx
        .playlist_until("source", "the open segment to complete", |p| {
            last_msn(p) == 3
        })
        .await;
    assert!(!p.ended, "ended before the grace period");
    assert!(p.segments.iter().all(|s| !s.discontinuity));
    history.push(render(&p));

    // Back within the grace period, timestamps from zero again: same playlists, the
    // next segment after a discontinuity, media sequence unchanged.
    let second = fx.publish(1001).await;
    send_media(&second, 6, t0 + Duration::from_secs(10));
    let p = fx
        .playlist_until("source", "segments after the reconnect", |p| {
            last_msn(p) >= 5
        })
        .await;
    assert_eq!(p.media_sequence, 1, "same playlist");
    assert!(!p.ended);
    let tagged: Vec<u64> = p
        .segments
        .iter()
        .filter(|s| s.discontinuity)
        .map(|s| s.msn)
        .collect();
    assert_eq!(tagged, vec![4], "one discontinuity, before segment 4");
    let audio = fx.playlist("audio").expect("audio playlist");
    assert!(
        audio.segments.iter().any(|s| s.msn == 4 && s.discontinuity),
        "audio follows: {:?}",
        audio
            .segments
            .iter()
            .map(|s| (s.msn, s.discontinuity))
            .collect::<Vec<_>>()
    );
    let text = render(&p);
    assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    assert_conforms(&text);
    history.push(text);
    assert_eq!(fx.store.streams().len(), 1, "still one stream");

    // Gone for good: ENDLIST only once the grace period is over.
    drop(second);
    let dropped = Instant::now();
    let p = fx.playlist_until("source", "ENDLIST", |p| p.ended).await;
    let waited = dropped.elapsed();
    assert!(waited >= grace, "ended after {waited:?}, grace {grace:?}");
    assert!(p.pending.is_none());
    assert_eq!(last_msn(&p), 6, "the last open segment was completed");
    let text = render(&p);
    assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    assert_conforms(&text);
    history.push(text);
    let refs: Vec<&str> = history.iter().map(String::as_str).collect();
    let violations = llhls::check_sequence(&refs);
    assert!(violations.is_empty(), "{violations:?}");
    assert!(fx.playlist("audio").expect("audio").ended);
    let summary = fx.store.streams();
    assert!(summary[0].ended && summary[0].closed, "{summary:?}");

    // Every part's publish delay was observed once (all parts are still in the window),
    // measured from its last frame's `received` (which lies in the past here).
    let parts = part_count(&p) + part_count(&fx.playlist("audio").expect("audio"));
    let registry = prometheus::Registry::new();
    fx.metrics.register(&registry).expect("register");
    let family = registry
        .gather()
        .into_iter()
        .find(|f| f.name() == "ferrocast_part_publish_delay_seconds")
        .expect("histogram");
    let h = family.get_metric()[0].get_histogram();
    assert_eq!(h.get_sample_count() as usize, parts);
    assert!(
        h.get_sample_sum() / h.get_sample_count() as f64 > 1.0,
        "delays from received stamps 30 s old: {}",
        h.get_sample_sum()
    );

    // A publisher after the grace period starts a new stream under the same name.
    let third = fx.publish(1002).await;
    send_media(&third, 3, SystemTime::now());
    let p = fx
        .playlist_until("source", "a fresh stream", |p| {
            !p.ended && !p.segments.is_empty()
        })
        .await;
    assert_eq!(p.media_sequence, 1);
    assert_eq!(last_msn(&p), 1, "numbering starts over");
    assert!(p.segments.iter().all(|s| !s.discontinuity));

    fx.shutdown.cancel();
    tokio::time::timeout(PATIENCE, fx.driver)
        .await
        .expect("driver stops")
        .expect("driver task");
    drop(third);
}

#[tokio::test]
async fn shutdown_ends_live_streams_including_those_published_before_the_driver() {
    let hub = hub();
    // Already live when the driver starts: found by the initial listing.
    let early = hub.publish("live/early", info(2000)).expect("publish");
    let fx = start(hub, Duration::from_secs(60));
    until("the driver to subscribe", || {
        fx.hub
            .stream("live/early")
            .is_some_and(|s| s.subscribers == 1)
            .then_some(())
    })
    .await;
    send_media(&early, 3, SystemTime::now());
    let late = fx.publish(2001).await;
    send_media(&late, 3, SystemTime::now());
    for name in ["live/early", NAME] {
        until("both streams packaged", || {
            fx.store
                .playlist(name, "source")
                .filter(|p| !p.segments.is_empty())
        })
        .await;
    }
    assert_eq!(fx.store.names(), vec!["live/early", NAME]);

    // Publishers still connected: shutdown completes the open parts and ends every
    // playlist without waiting for the (long) grace period.
    let started = Instant::now();
    fx.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), fx.driver)
        .await
        .expect("driver stops promptly")
        .expect("driver task");
    assert!(started.elapsed() < Duration::from_secs(10));
    for name in ["live/early", NAME] {
        for rendition in ["source", "audio"] {
            let p = fx.store.playlist(name, rendition).expect("playlist");
            assert!(p.ended, "{name}/{rendition} ended");
            assert!(p.pending.is_none());
            let text = render(&p);
            assert_conforms(&text);
        }
        // 3 s: segment 1 (2 s) and segment 2 (the last second, flushed).
        assert_eq!(last_msn(&fx.store.playlist(name, "source").unwrap()), 2);
    }
    assert!(fx.store.streams().iter().all(|s| s.closed));
    drop((early, late));
}

#[tokio::test]
async fn takeover_is_one_stream_with_a_discontinuity() {
    let fx = start(hub(), Duration::from_secs(60));
    let first = fx.publish(3000).await;
    send_media(&first, 4, SystemTime::now());
    fx.playlist_until("source", "the first segment", |p| !p.segments.is_empty())
        .await;
    // A second publisher evicts the first; the driver keeps one subscriber and one
    // Program.
    let second = fx.hub.publish(NAME, info(3001)).expect("takeover");
    drop(first);
    send_media(&second, 6, SystemTime::now());
    let p = fx
        .playlist_until("source", "segments of the new publisher", |p| {
            p.segments.iter().any(|s| s.discontinuity) && last_msn(p) >= 4
        })
        .await;
    assert_eq!(p.media_sequence, 1);
    assert!(!p.ended);
    assert_eq!(
        p.segments.iter().filter(|s| s.discontinuity).count(),
        1,
        "{:?}",
        p.segments
            .iter()
            .map(|s| (s.msn, s.discontinuity))
            .collect::<Vec<_>>()
    );
    assert_eq!(fx.hub.stream(NAME).map(|s| s.subscribers), Some(1));
    assert_conforms(&render(&p));
    fx.shutdown.cancel();
    tokio::time::timeout(PATIENCE, fx.driver)
        .await
        .expect("driver stops")
        .expect("driver task");
    drop(second);
}

#[tokio::test]
async fn a_rung_stream_is_packaged_beside_its_source() {
    let fx = start(hub(), Duration::from_secs(60));
    let source = fx.publish(3000).await;
    let rung_name = rung_stream_name(NAME, "360p");
    let rung = fx.hub.publish(&rung_name, info(0)).expect("publish rung");
    until("the driver to subscribe to the rung", || {
        fx.hub
            .stream(&rung_name)
            .is_some_and(|s| s.subscribers == 1)
            .then_some(())
    })
    .await;
    let wall = SystemTime::now();
    send_media(&source, 7, wall);
    rung.send(StreamEvent::Tracks(vec![TrackInfo {
        id: 0,
        codec: Codec::H264 {
            avcc: Bytes::from_static(AVCC),
            width: 640,
            height: 360,
            fps: Some(FrameRate { num: 30, den: 1 }),
        },
        timescale: 90_000,
    }]));
    for i in 0..30 * 7u64 {
        rung.send(StreamEvent::Frame(Frame {
            track: 0,
            pts: (i * 3000) as i64,
            dts: (i * 3000) as i64,
            keyframe: i % 60 == 0,
            data: Bytes::from(vec![0x36; 100]),
            received: wall + Duration::from_nanos(i * 1_000_000_000 / 30),
        }));
    }
    let rung_pl = fx
        .playlist_until("360p", "three rung segments", |p| p.segments.len() >= 3)
        .await;
    let source_pl = fx
        .playlist_until("source", "three source segments", |p| p.segments.len() >= 3)
        .await;
    for (r, s) in rung_pl.segments.iter().zip(&source_pl.segments).take(3) {
        assert_eq!(r.msn, s.msn);
        assert_eq!(r.duration, s.duration, "segment {}", r.msn);
        assert!(r.parts[0].independent);
        assert!(!r.gap);
    }
    assert_conforms(&render(&rung_pl));
    // The rung's bytes are served like any rendition's.
    let p = &rung_pl.segments[0];
    assert!(fx.store.part(NAME, "360p", p.msn, 0).is_some());
    drop((source, rung));
}

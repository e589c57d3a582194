//! Two ffmpeg publishers on one stream name: with takeover on, the second evicts the
//! first and subscribers follow it after a Takeover discontinuity; with takeover off, the
//! second is refused and the first keeps publishing.
mod support;

use std::time::{Duration, Instant};

use media::hub::{HubConfig, Subscriber};
use media::{DiscontinuityReason, StreamEvent};
use support::*;

/// A real-time, endless publish of `flv` (ffmpeg `-re -stream_loop -1`).
fn endless_publish(flv: &std::path::Path, url: &str) -> Proc {
    ffmpeg_publish(flv, url, &["-re", "-stream_loop", "-1"])
}

/// Reads until `n` video frames arrived, checking that nothing but Tracks and frames
/// shows up; returns the events.
async fn read_video_frames(sub: &mut Subscriber, n: usize, within: Duration) -> Vec<StreamEvent> {
    let deadline = Instant::now() + within;
    let mut events = Vec::new();
    let mut video = 0;
    while video < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "only {video} of {n} video frames within {within:?}"
        );
        let event = next_event(sub, left)
            .await
            .expect("the subscription ended early");
        match &event {
            StreamEvent::Frame(f) if f.track == VIDEO => video += 1,
            StreamEvent::Frame(_) | StreamEvent::Tracks(_) => {}
            other => panic!("unexpected event while streaming: {other:?}"),
        }
        events.push(event);
    }
    events
}

fn dimensions(tracks: &[media::TrackInfo]) -> Option<(u32, u32)> {
    tracks
        .iter()
        .find(|t| t.id == VIDEO)
        .and_then(|t| t.codec.dimensions())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_publisher_takes_over_and_subscribers_follow() {
    let server = TestServer::start(ServerOpts::default()).await;
    let name = "live/take";
    let url = server.url(name);
    let mut a = endless_publish(&avc_aac_flv(), &url);
    let mut sub = subscribe(&server.hub, name, Duration::from_secs(10)).await;
    let first = read_video_frames(&mut sub, 15, Duration::from_secs(10)).await;
    let a_tracks = first.iter().find_map(|e| match e {
        StreamEvent::Tracks(t) => Some(t.clone()),
        _ => None,
    });
    assert_eq!(dimensions(&a_tracks.expect("A's Tracks")), Some((640, 360)));
    assert!(a.try_status().is_none(), "publisher A stopped on its own");

    let mark = log_mark();
    let b_started = Instant::now();
    let mut b = endless_publish(&small_avc_aac_flv(), &url);

    // A's frames may still be queued; then Discontinuity{Takeover}, Tracks(B), B's frames.
    let deadline = Duration::from_secs(3);
    let switched_at = loop {
        let left = deadline.saturating_sub(b_started.elapsed());
        assert!(
            !left.is_zero(),
            "no takeover discontinuity within {deadline:?}"
        );
        match next_event(&mut sub, left).await {
            Some(StreamEvent::Discontinuity {
                reason: DiscontinuityReason::Takeover,
            }) => break Instant::now(),
            Some(StreamEvent::Frame(_)) => {}
            other => panic!("unexpected event before the takeover: {other:?}"),
        }
    };
    let after = next_event(&mut sub, Duration::from_secs(1))
        .await
        .expect("the subscription survives the takeover");
    let StreamEvent::Tracks(b_tracks) = after else {
        panic!("after the takeover discontinuity, want B's Tracks, got {after:?}");
    };
    assert_eq!(dimensions(&b_tracks), Some((320, 180)), "B's tracks");
    let b_audio = b_tracks.iter().find(|t| t.id == AUDIO).expect("B's audio");
    assert_eq!(b_audio.codec.audio(), Some((44_100, 1)));
    let first_b = next_event(&mut sub, Duration::from_secs(1))
        .await
        .expect("B's first frame");
    assert!(
        matches!(&first_b, StreamEvent::Frame(f) if f.keyframe),
        "B starts with a keyframe: {first_b:?}"
    );
    assert!(
        switched_at.elapsed() < Duration::from_secs(1),
        "B's first frame came {:?} after the discontinuity",
        switched_at.elapsed()
    );

    // The server closes A's connection; ffmpeg A ends with an error.
    let status = a.wait(Duration::from_secs(5)).await;
    assert!(!status.success(), "A exited cleanly after being taken over");
    wait_for_log("for the takeover", Duration::from_secs(2), |l| {
        l.contains("taken over") && l.contains(name)
    })
    .await;
    assert!(
        mark.lines().iter().any(|l| l.contains("took over")),
        "A's connection was not reported closed by the takeover"
    );

    // S keeps receiving B (25 fps): 1.5 s of frames in order, no other discontinuity.
    let rest = read_video_frames(&mut sub, 37, Duration::from_secs(4)).await;
    let mut last_dts = None;
    for f in rest.iter().filter_map(|e| match e {
        StreamEvent::Frame(f) if f.track == VIDEO => Some(f),
        _ => None,
    }) {
        if let Some(last) = last_dts {
            assert!(f.dts > last, "B's dts goes back: {last} -> {}", f.dts);
        }
        last_dts = Some(f.dts);
    }
    let snapshot = server.hub.stream(name).expect("stream still live");
    assert_eq!(snapshot.tracks.len(), 2);
    assert!(b.try_status().is_none(), "publisher B stopped");
    drop(b);
    server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_takeover_the_second_publisher_is_refused() {
    let server = TestServer::start(ServerOpts {
        hub: HubConfig {
            takeover: false,
            ..HubConfig::default()
        },
        ..ServerOpts::default()
    })
    .await;
    let name = "live/keep";
    let url = server.url(name);
    let mut a = endless_publish(&avc_aac_flv(), &url);
    let mut sub = subscribe(&server.hub, name, Duration::from_secs(10)).await;
    read_video_frames(&mut sub, 10, Duration::from_secs(10)).await;

    let mark = log_mark();
    let mut b = ffmpeg_publish(&small_avc_aac_flv(), &url, &["-re"]);
    // While B tries, A's frames keep coming with no discontinuity or new tracks.
    let during = tokio::spawn(async move {
        let events = read_video_frames(&mut sub, 30, Duration::from_secs(5)).await;
        (sub, events)
    });
    let status = b.wait(Duration::from_secs(5)).await;
    assert!(
        !status.success(),
        "B was not refused; stderr:\n{}",
        b.stderr()
    );
    let (mut sub, events) = during.await.expect("reader task");
    for e in &events {
        if let StreamEvent::Tracks(t) = e {
            assert_eq!(dimensions(t), Some((640, 360)), "tracks changed to B's");
        }
    }
    // And after B gave up, A still streams.
    read_video_frames(&mut sub, 30, Duration::from_secs(5)).await;
    assert!(a.try_status().is_none(), "publisher A stopped");
    wait_for_log("for the refusal", Duration::from_secs(2), |l| {
        l.contains("already has a publisher") && l.contains(name)
    })
    .await;
    assert!(
        mark.lines()
            .iter()
            .any(|l| l.contains("refused") && l.contains("127.0.0.1:")),
        "no refusal line naming B's peer"
    );
    server.shutdown(Duration::from_secs(5)).await;
}

//! Hub behaviour through its public API (plus a peek at cache sizes).

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::*;
use crate::Codec;

const VIDEO: TrackId = 1;
const AUDIO: TrackId = 2;
const GOP: i64 = 30;

fn peer(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn info(port: u16) -> PublisherInfo {
    PublisherInfo {
        protocol: "rtmp",
        peer: peer(port),
    }
}

fn video_track(width: u32) -> TrackInfo {
    TrackInfo {
        id: VIDEO,
        codec: Codec::H264 {
            avcc: Bytes::from_static(&[1, 0x64, 0, 0x1f]),
            width,
            height: 720,
            fps: None,
        },
        timescale: 90_000,
    }
}

fn audio_track() -> TrackInfo {
    TrackInfo {
        id: AUDIO,
        codec: Codec::Aac {
            asc: Bytes::from_static(&[0x11, 0x90]),
            sample_rate: 48_000,
            channels: 2,
        },
        timescale: 48_000,
    }
}

fn av_tracks() -> StreamEvent {
    StreamEvent::Tracks(vec![video_track(1280), audio_track()])
}

/// Video frame `n` at 30 fps, a keyframe every [`GOP`] frames.
fn video(n: i64, data: &Bytes) -> StreamEvent {
    StreamEvent::Frame(Frame {
        track: VIDEO,
        pts: n * 3000,
        dts: n * 3000,
        keyframe: n % GOP == 0,
        data: data.clone(),
        received: SystemTime::now(),
    })
}

/// AAC frame `n` (1024 samples at 48 kHz).
fn audio(n: i64, data: &Bytes) -> StreamEvent {
    StreamEvent::Frame(Frame {
        track: AUDIO,
        pts: n * 1024,
        dts: n * 1024,
        keyframe: true,
        data: data.clone(),
        received: SystemTime::now(),
    })
}

fn frame_of(ev: &StreamEvent) -> Option<&Frame> {
    match ev {
        StreamEvent::Frame(f) => Some(f),
        _ => None,
    }
}

fn drain(sub: &mut Subscriber) -> Vec<StreamEvent> {
    std::iter::from_fn(|| sub.try_recv()).collect()
}

fn cache_len(hub: &Hub, name: &str) -> usize {
    let streams = lock(&hub.0.streams);
    let stream = streams.get(name).expect("stream is live");
    lock(&stream.state).cache.len()
}

#[test]
fn stalled_subscriber_drops_without_slowing_others() {
    let hub = Hub::new(HubConfig::default());
    let cap = hub.config().subscriber_queue_frames;
    let publisher = hub.publish("live/alice", info(1000)).expect("publish");
    publisher.send(av_tracks());
    let mut stalled = hub.subscribe("live/alice").expect("live");
    let mut reader = hub.subscribe("live/alice").expect("live");
    assert!(matches!(reader.try_recv(), Some(StreamEvent::Tracks(_))));

    let payload = Bytes::from(vec![7u8; 1500]);
    let total = 100_000;
    let start = Instant::now();
    for n in 0..total {
        publisher.send(video(n, &payload));
        let got = reader
            .try_recv()
            .expect("the reading subscriber gets every frame");
        let f = frame_of(&got).expect("a frame");
        assert_eq!(f.pts, n * 3000, "in order");
        // Same allocation: fanned out by handle, not copied.
        assert_eq!(f.data.as_ptr(), payload.as_ptr());
        assert!(stalled.queued_frames() <= cap);
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(30),
        "100k sends took {elapsed:?}"
    );
    assert_eq!(reader.dropped(), 0);
    let expected_drops = total as u64 - cap as u64;
    assert_eq!(stalled.dropped(), expected_drops);
    assert_eq!(hub.dropped_frames_total(), expected_drops);
    assert_eq!(
        hub.stream("live/alice").map(|s| s.dropped_frames),
        Some(expected_drops)
    );

    // Draining yields Tracks and the first `cap` frames, contiguous.
    let queued = drain(&mut stalled);
    assert!(matches!(queued[0], StreamEvent::Tracks(_)));
    let pts: Vec<i64> = queued[1..]
        .iter()
        .map(|e| frame_of(e).expect("frame").pts)
        .collect();
    let want: Vec<i64> = (0..cap as i64).map(|n| n * 3000).collect();
    assert_eq!(pts, want);

    // Live again: it resumes exactly at the next video keyframe.
    let next_key = (total + GOP - 1) / GOP * GOP;
    for n in total..=next_key + 5 {
        publisher.send(video(n, &payload));
    }
    let resumed = drain(&mut stalled);
    let first = frame_of(&resumed[0]).expect("a frame");
    assert!(first.keyframe);
    assert_eq!(first.pts, next_key * 3000);
    assert_eq!(resumed.len(), 6);
    let more = (next_key - total) as u64;
    assert_eq!(stalled.dropped(), expected_drops + more);
    assert_eq!(hub.dropped_frames_total(), expected_drops + more);
}

#[test]
fn overflowed_subscriber_skips_audio_until_the_video_keyframe() {
    let hub = Hub::new(HubConfig {
        subscriber_queue_frames: 4,
        ..HubConfig::default()
    });
    let publisher = hub.publish("live/av", info(1000)).expect("publish");
    publisher.send(av_tracks());
    let mut sub = hub.subscribe("live/av").expect("live");
    let data = Bytes::from_static(b"x");
    for n in 0..10 {
        publisher.send(video(n, &data));
        publisher.send(audio(n, &data));
    }
    assert_eq!(drain(&mut sub).len(), 1 + 4);
    for n in 10..GOP {
        publisher.send(audio(n, &data));
    }
    publisher.send(audio(GOP, &data));
    publisher.send(video(GOP, &data));
    publisher.send(audio(GOP + 1, &data));
    let got = drain(&mut sub);
    let tracks: Vec<TrackId> = got.iter().filter_map(frame_of).map(|f| f.track).collect();
    assert_eq!(
        tracks,
        vec![VIDEO, AUDIO],
        "audio resumes with the video keyframe"
    );
    assert!(frame_of(&got[0]).is_some_and(|f| f.keyframe));
}

#[tokio::test(flavor = "current_thread")]
async fn async_reader_follows_a_fast_publisher_then_ends() {
    let hub = Hub::new(HubConfig::default());
    let publisher = hub.publish("live/bob", info(1000)).expect("publish");
    let mut sub = hub.subscribe("live/bob").expect("live");
    let reader = tokio::spawn(async move {
        let mut frames = Vec::new();
        while let Some(ev) = sub.recv().await {
            match ev {
                StreamEvent::Frame(f) => frames.push(f.pts),
                StreamEvent::End => break,
                _ => {}
            }
        }
        // After End, recv keeps returning None.
        assert_eq!(sub.recv().await, None);
        (frames, sub.dropped())
    });
    let data = Bytes::from_static(b"frame");
    publisher.send(av_tracks());
    for n in 0..10_000 {
        publisher.send(video(n, &data));
        if n % 100 == 99 {
            tokio::task::yield_now().await;
        }
    }
    drop(publisher);
    let (frames, dropped) = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("reader finishes")
        .expect("reader task");
    assert_eq!(dropped, 0);
    assert_eq!(frames, (0..10_000).map(|n| n * 3000).collect::<Vec<_>>());
}

#[tokio::test]
async fn recv_is_cancel_safe() {
    let hub = Hub::new(HubConfig::default());
    let publisher = hub.publish("live/c", info(1000)).expect("publish");
    let mut sub = hub.subscribe("live/c").expect("live");
    // A recv cancelled while waiting loses nothing.
    let waited = tokio::time::timeout(Duration::from_millis(20), sub.recv()).await;
    assert!(waited.is_err());
    publisher.send(av_tracks());
    let got = tokio::time::timeout(Duration::from_secs(5), sub.recv()).await;
    assert_eq!(got.ok().flatten(), Some(av_tracks()));
}

#[test]
fn late_subscriber_starts_with_tracks_at_the_latest_keyframe() {
    let hub = Hub::new(HubConfig::default());
    let publisher = hub.publish("live/late", info(1000)).expect("publish");
    let data = Bytes::from_static(b"payload");
    publisher.send(av_tracks());
    for n in 0..(3 * GOP + 5) {
        publisher.send(video(n, &data));
        publisher.send(audio(n, &data));
    }
    let mut sub = hub.subscribe("live/late").expect("live");
    publisher.send(video(3 * GOP + 5, &data));
    let got = drain(&mut sub);
    assert_eq!(got[0], av_tracks());
    let first = frame_of(&got[1]).expect("frame after Tracks");
    assert_eq!(
        (first.track, first.pts, first.keyframe),
        (VIDEO, 3 * GOP * 3000, true)
    );
    let videos: Vec<i64> = got
        .iter()
        .filter_map(frame_of)
        .filter(|f| f.track == VIDEO)
        .map(|f| f.pts / 3000)
        .collect();
    assert_eq!(videos, (3 * GOP..=3 * GOP + 5).collect::<Vec<_>>());
    // Audio sent after the keyframe comes along, in order.
    let audios: Vec<i64> = got
        .iter()
        .filter_map(frame_of)
        .filter(|f| f.track == AUDIO)
        .map(|f| f.pts / 1024)
        .collect();
    assert_eq!(audios, (3 * GOP..3 * GOP + 5).collect::<Vec<_>>());
    assert_eq!(sub.dropped(), 0);
}

#[test]
fn late_subscriber_before_any_keyframe_waits_for_one_uncounted() {
    let hub = Hub::new(HubConfig::default());
    let publisher = hub.publish("live/w", info(1000)).expect("publish");
    let data = Bytes::from_static(b"p");
    publisher.send(av_tracks());
    for n in 1..10 {
        publisher.send(video(n, &data));
    }
    let mut sub = hub.subscribe("live/w").expect("live");
    assert_eq!(drain(&mut sub), vec![av_tracks()]);
    for n in 10..=GOP {
        publisher.send(video(n, &data));
    }
    let got = drain(&mut sub);
    assert_eq!(got.len(), 1);
    assert!(frame_of(&got[0]).is_some_and(|f| f.keyframe && f.pts == GOP * 3000));
    assert_eq!(
        sub.dropped(),
        0,
        "frames before a joiner's first keyframe are not drops"
    );
    assert_eq!(hub.dropped_frames_total(), 0);
}

#[test]
fn cache_larger_than_a_queue_is_not_replayed() {
    let hub = Hub::new(HubConfig {
        subscriber_queue_frames: 8,
        ..HubConfig::default()
    });
    let publisher = hub.publish("live/big", info(1000)).expect("publish");
    let data = Bytes::from_static(b"p");
    publisher.send(av_tracks());
    for n in 0..20 {
        publisher.send(video(n, &data));
    }
    let mut sub = hub.subscribe("live/big").expect("live");
    assert_eq!(drain(&mut sub), vec![av_tracks()]);
    for n in 20..=GOP {
        publisher.send(video(n, &data));
    }
    let got = drain(&mut sub);
    assert_eq!(got.len(), 1);
    assert!(frame_of(&got[0]).is_some_and(|f| f.keyframe));
}

#[test]
fn gop_cache_is_bounded_when_no_keyframe_follows() {
    let hub = Hub::new(HubConfig {
        gop_cache_max_frames: 100,
        gop_cache_max_bytes: 1 << 20,
        ..HubConfig::default()
    });
    let publisher = hub.publish("live/nokey", info(1000)).expect("publish");
    let data = Bytes::from(vec![0u8; 1000]);
    publisher.send(av_tracks());
    // Never a keyframe: nothing is cached at all.
    for n in 1..GOP {
        publisher.send(video(n, &data));
        assert_eq!(cache_len(&hub, "live/nokey"), 0);
    }
    // One keyframe, then an endless GOP: the cache never outgrows its caps.
    publisher.send(video(0, &data));
    let mut peak = 0;
    for n in 1..5_000 {
        publisher.send(StreamEvent::Frame(Frame {
            keyframe: false,
            ..frame_of(&video(n, &data)).expect("frame").clone()
        }));
        let len = cache_len(&hub, "live/nokey");
        assert!(len <= 100, "cache holds {len} events");
        peak = peak.max(len);
    }
    assert_eq!(peak, 100);
    // Nothing decodable is cached: a joiner gets Tracks and waits.
    let mut sub = hub.subscribe("live/nokey").expect("live");
    assert_eq!(drain(&mut sub), vec![av_tracks()]);

    // The byte cap bounds it too.
    let hub = Hub::new(HubConfig {
        gop_cache_max_frames: 100_000,
        gop_cache_max_bytes: 50_000,
        ..HubConfig::default()
    });
    let publisher = hub.publish("live/nokey", info(1000)).expect("publish");
    publisher.send(av_tracks());
    publisher.send(video(0, &data));
    for n in 1..5_000 {
        publisher.send(StreamEvent::Frame(Frame {
            keyframe: false,
            ..frame_of(&video(n, &data)).expect("frame").clone()
        }));
        let streams = lock(&hub.0.streams);
        let st = lock(&streams["live/nokey"].state);
        assert!(st.cache.bytes() <= 50_000 && st.cache.frames() <= 50);
    }
}

#[test]
fn audio_only_stream_replays_a_short_tail_and_resumes_on_any_frame() {
    let hub = Hub::new(HubConfig {
        subscriber_queue_frames: 10,
        ..HubConfig::default()
    });
    let publisher = hub.publish("live/radio", info(1000)).expect("publish");
    let data = Bytes::from_static(b"aac");
    publisher.send(StreamEvent::Tracks(vec![audio_track()]));
    for n in 0..5 {
        publisher.send(audio(n, &data));
    }
    let mut sub = hub.subscribe("live/radio").expect("live");
    let got = drain(&mut sub);
    assert_eq!(got[0], StreamEvent::Tracks(vec![audio_track()]));
    let pts: Vec<i64> = got
        .iter()
        .filter_map(frame_of)
        .map(|f| f.pts / 1024)
        .collect();
    assert_eq!(pts, vec![0, 1, 2, 3, 4]);
    for n in 5..1000 {
        publisher.send(audio(n, &data));
        assert!(cache_len(&hub, "live/radio") <= cache::AUDIO_TAIL_FRAMES);
    }
    // Overflowed at 10 queued; after a drain it resumes on the very next frame.
    assert_eq!(drain(&mut sub).len(), 10);
    publisher.send(audio(1000, &data));
    let got = drain(&mut sub);
    assert_eq!(frame_of(&got[0]).map(|f| f.pts / 1024), Some(1000));
    assert_eq!(sub.dropped(), 1000 - 15);
}

#[tokio::test]
async fn takeover_evicts_the_old_publisher() {
    let hub = Hub::new(HubConfig::default());
    let old = hub.publish("live/t", info(1000)).expect("publish");
    let data = Bytes::from_static(b"old");
    old.send(av_tracks());
    old.send(video(0, &data));
    let mut sub = hub.subscribe("live/t").expect("live");
    assert_eq!(drain(&mut sub).len(), 2);
    // Not taken over yet: pending (and the timeout cancels it safely).
    assert!(
        tokio::time::timeout(Duration::from_millis(20), old.taken_over())
            .await
            .is_err()
    );

    let new = hub.publish("live/t", info(2000)).expect("takeover");
    tokio::time::timeout(Duration::from_secs(5), old.taken_over())
        .await
        .expect("taken_over resolves");
    assert!(!old.is_current());
    assert!(new.is_current());
    old.send(video(1, &data));
    old.send(StreamEvent::End);
    let new_tracks = StreamEvent::Tracks(vec![video_track(1920)]);
    new.send(new_tracks.clone());
    new.send(video(0, &Bytes::from_static(b"new")));
    assert_eq!(
        sub.recv().await,
        Some(StreamEvent::Discontinuity {
            reason: DiscontinuityReason::Takeover
        })
    );
    assert_eq!(sub.recv().await, Some(new_tracks.clone()));
    let f = sub.recv().await.expect("frame");
    assert_eq!(frame_of(&f).map(|f| f.data.as_ref()), Some(&b"new"[..]));
    assert!(
        sub.try_recv().is_none(),
        "the old publisher's sends were ignored"
    );

    // Dropping the evicted publisher does not end the stream.
    drop(old);
    assert!(sub.try_recv().is_none());
    let snap = hub.stream("live/t").expect("still live");
    assert_eq!(snap.peer, peer(2000));
    assert_eq!(snap.subscribers, 1);
    assert_eq!(snap.tracks.len(), 1);
    assert_eq!(snap.tracks[0].info, video_track(1920));
    assert_eq!(snap.tracks[0].frames, 1);
    // A joiner now sees only the new publisher.
    let mut late = hub.subscribe("live/t").expect("live");
    assert_eq!(late.try_recv(), Some(new_tracks));

    drop(new);
    assert_eq!(sub.recv().await, Some(StreamEvent::End));
    assert_eq!(sub.recv().await, None);
    assert!(hub.subscribe("live/t").is_none());
}

#[test]
fn takeover_off_refuses_and_drop_ends_the_stream() {
    let hub = Hub::new(HubConfig {
        takeover: false,
        ..HubConfig::default()
    });
    let first = hub.publish("live/busy", info(1000)).expect("publish");
    let err = hub
        .publish("live/busy", info(2000))
        .expect_err("name is taken");
    let PublishError::Busy { name, peer: who } = &err;
    assert_eq!((name.as_str(), *who), ("live/busy", peer(1000)));
    assert_eq!(
        err.to_string(),
        "stream live/busy already has a publisher (127.0.0.1:1000)"
    );
    assert!(first.is_current());

    let mut sub = hub.subscribe("live/busy").expect("live");
    first.send(av_tracks());
    drop(first);
    assert_eq!(drain(&mut sub), vec![av_tracks(), StreamEvent::End]);
    assert_eq!(sub.try_recv(), None);
    assert!(hub.subscribe("live/busy").is_none());
    assert!(hub.stream("live/busy").is_none());
    assert!(hub.streams().is_empty());
    // The name is free again.
    let again = hub.publish("live/busy", info(3000)).expect("free");
    assert_eq!(again.name(), "live/busy");
}

#[test]
fn sending_end_ends_the_stream_once() {
    let hub = Hub::new(HubConfig::default());
    let publisher = hub.publish("live/e", info(1000)).expect("publish");
    let mut sub = hub.subscribe("live/e").expect("live");
    publisher.send(StreamEvent::End);
    assert!(!publisher.is_current());
    assert!(hub.subscribe("live/e").is_none());
    // A new publisher of the name is a new stream, not a takeover of the ended one.
    let next = hub.publish("live/e", info(2000)).expect("free");
    drop(publisher);
    assert!(next.is_current());
    assert_eq!(drain(&mut sub), vec![StreamEvent::End]);
}

#[test]
fn stats_count_frames_bytes_and_bitrate_per_track() {
    let hub = Hub::new(HubConfig::default());
    let publisher = hub.publish("live/stats", info(1000)).expect("publish");
    let _other = hub
        .publish(
            "live/aaa",
            PublisherInfo {
                protocol: "srt",
                peer: peer(9),
            },
        )
        .expect("publish");
    let s1 = hub.subscribe("live/stats").expect("live");
    let _s2 = hub.subscribe("live/stats").expect("live");
    publisher.send(av_tracks());
    let vdata = Bytes::from(vec![1u8; 1000]);
    let adata = Bytes::from(vec![2u8; 200]);
    // 10 s of media: 300 video frames at 30 fps, 469 AAC frames.
    for n in 0..300 {
        publisher.send(video(n, &vdata));
    }
    for n in 0..469 {
        publisher.send(audio(n, &adata));
    }
    publisher.add_bytes(123);
    publisher.add_bytes(1000);

    let snap = hub.stream("live/stats").expect("live");
    assert_eq!(snap.name, "live/stats");
    assert_eq!(snap.protocol, "rtmp");
    assert_eq!(snap.peer, peer(1000));
    assert_eq!(snap.bytes_in, 1123);
    assert_eq!(snap.subscribers, 2);
    assert!(snap.started <= SystemTime::now());
    assert_eq!(snap.tracks.len(), 2);
    let v = &snap.tracks[0];
    assert_eq!((v.info.id, v.frames, v.bytes), (VIDEO, 300, 300_000));
    assert_eq!(v.bitrate_bps, 1000 * 8 * 30);
    let a = &snap.tracks[1];
    assert_eq!((a.info.id, a.frames, a.bytes), (AUDIO, 469, 469 * 200));
    assert_eq!(a.bitrate_bps, 200 * 8 * 48_000 / 1024);

    let names: Vec<String> = hub.streams().into_iter().map(|s| s.name).collect();
    assert_eq!(names, vec!["live/aaa", "live/stats"]);
    drop(s1);
    assert_eq!(hub.stream("live/stats").map(|s| s.subscribers), Some(1));
}

#[test]
fn frames_are_fanned_out_by_handle() {
    let hub = Hub::new(HubConfig::default());
    let publisher = hub.publish("live/copy", info(1000)).expect("publish");
    let mut subs: Vec<Subscriber> = (0..50)
        .map(|_| hub.subscribe("live/copy").expect("live"))
        .collect();
    let payload = Bytes::from(vec![9u8; 100_000]);
    publisher.send(av_tracks());
    publisher.send(video(0, &payload));
    let mut late = hub.subscribe("live/copy").expect("live");
    for sub in subs.iter_mut().chain(std::iter::once(&mut late)) {
        let frames: Vec<StreamEvent> = drain(sub);
        let f = frames.iter().find_map(frame_of).expect("frame");
        assert_eq!(f.data.as_ptr(), payload.as_ptr());
        assert_eq!(f.data.len(), payload.len());
    }
}

fn next_announcement(rx: &mut broadcast::Receiver<Announcement>) -> Option<Announcement> {
    match rx.try_recv() {
        Ok(a) => Some(a),
        Err(broadcast::error::TryRecvError::Empty) => None,
        Err(e) => panic!("announcements: {e}"),
    }
}

#[tokio::test]
async fn announcements_report_new_entries_and_ends_in_order() {
    let hub = Hub::new(HubConfig::default());
    let mut rx = hub.announcements();
    let announced = |name: &str, id: u64, kind: AnnouncementKind| Announcement {
        name: name.to_owned(),
        id,
        kind,
    };

    let a = hub.publish("live/a", info(1000)).expect("publish");
    let first = next_announcement(&mut rx).expect("published");
    assert_eq!(first.name, "live/a");
    assert_eq!(first.kind, AnnouncementKind::Published);
    let sub = hub.subscribe("live/a").expect("live");
    assert_eq!(sub.stream_id(), first.id);

    // A takeover keeps the entry: nothing is announced.
    let a2 = hub.publish("live/a", info(1001)).expect("takeover");
    drop(a);
    assert_eq!(next_announcement(&mut rx), None);
    assert_eq!(
        hub.subscribe("live/a").map(|s| s.stream_id()),
        Some(first.id)
    );

    // Ending the current publisher ends the entry once; a re-publish is a new entry
    // with a higher id, even though the name is the same.
    a2.send(StreamEvent::End);
    drop(a2);
    assert_eq!(
        next_announcement(&mut rx),
        Some(announced("live/a", first.id, AnnouncementKind::Ended))
    );
    assert_eq!(next_announcement(&mut rx), None);
    let b = hub.publish("live/a", info(1002)).expect("free again");
    let again = next_announcement(&mut rx).expect("published again");
    assert_eq!(again.kind, AnnouncementKind::Published);
    assert!(again.id > first.id, "{again:?} after {first:?}");
    assert_eq!(
        hub.subscribe("live/a").map(|s| s.stream_id()),
        Some(again.id)
    );
    drop(sub);

    // Refused publishes announce nothing; other names interleave in order.
    let c = hub.publish("live/c", info(1003)).expect("publish");
    drop(b);
    drop(c);
    let names: Vec<(String, AnnouncementKind)> = std::iter::from_fn(|| next_announcement(&mut rx))
        .map(|a| (a.name, a.kind))
        .collect();
    assert_eq!(
        names,
        vec![
            ("live/c".to_owned(), AnnouncementKind::Published),
            ("live/a".to_owned(), AnnouncementKind::Ended),
            ("live/c".to_owned(), AnnouncementKind::Ended),
        ]
    );

    // A receiver taken later sees only later changes; one that falls behind is told so.
    let mut late = hub.announcements();
    for i in 0..ANNOUNCEMENT_CAPACITY + 1 {
        drop(
            hub.publish(&format!("live/n{i}"), info(2000))
                .expect("publish"),
        );
    }
    assert!(matches!(
        late.try_recv(),
        Err(broadcast::error::TryRecvError::Lagged(_))
    ));
    // The blocking form wakes up on a publish.
    let mut rx = hub.announcements();
    let waiter = tokio::spawn(async move { rx.recv().await });
    let _d = hub.publish("live/d", info(3000)).expect("publish");
    let got = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("announced in time")
        .expect("task")
        .expect("received");
    assert_eq!(
        (got.name.as_str(), got.kind),
        ("live/d", AnnouncementKind::Published)
    );
}

#[test]
fn transport_stats_follow_the_current_publisher() {
    let hub = Hub::new(HubConfig {
        takeover: true,
        ..HubConfig::default()
    });
    let first = hub.publish("live/t", info(1)).unwrap();
    assert_eq!(hub.stream("live/t").unwrap().transport, None);
    let stats = TransportStats {
        rtt: Some(Duration::from_millis(12)),
        packets_received: 100,
        packets_lost: 3,
        packets_retransmitted: 2,
        packets_dropped: 1,
        receive_bitrate_bps: 800_000,
        ts_continuity_errors: 4,
        ts_resyncs: 5,
    };
    first.set_transport_stats(stats.clone());
    assert_eq!(hub.stream("live/t").unwrap().transport, Some(stats.clone()));
    // A takeover starts with no figures, and the evicted publisher cannot set them.
    let second = hub.publish("live/t", info(2)).unwrap();
    assert_eq!(hub.stream("live/t").unwrap().transport, None);
    first.set_transport_stats(stats.clone());
    assert_eq!(hub.stream("live/t").unwrap().transport, None);
    let newer = TransportStats {
        packets_received: 7,
        ..TransportStats::default()
    };
    second.set_transport_stats(newer.clone());
    assert_eq!(hub.stream("live/t").unwrap().transport, Some(newer));
}

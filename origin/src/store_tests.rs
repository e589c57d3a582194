//! Store tests with a real `Program` fed by the synthetic publisher of
//! `tests/support/synth.rs`.
use std::time::Duration;

use media::StreamEvent;
use packager::Program;

use super::*;

#[path = "../tests/support/synth.rs"]
mod synth;
use synth::{Synth, packager_config};

/// A program and its writer, fed up to a media time.
struct Feed {
    program: Program,
    writer: StreamWriter,
    synth: Synth,
    /// Every output seen, in order.
    outputs: Vec<Output>,
}

impl Feed {
    fn new(store: &Store, name: &str, audio: bool) -> Feed {
        let synth = Synth::new(audio);
        let mut feed = Feed {
            program: Program::new(packager_config()),
            writer: store.writer(name),
            synth,
            outputs: Vec::new(),
        };
        let tracks = feed.synth.tracks();
        feed.push(&tracks);
        feed
    }

    fn push(&mut self, event: &StreamEvent) {
        let out = self.program.push(event);
        self.writer.apply(&self.program, &out);
        self.outputs.extend(out);
    }

    fn until(&mut self, secs: f64) {
        for e in self.synth.frames_until(Duration::from_secs_f64(secs)) {
            self.push(&e);
        }
    }
}

fn store() -> Store {
    Store::new(StoreConfig::default())
}

#[test]
fn snapshots_and_bytes_match_the_program() {
    let store = store();
    let mut feed = Feed::new(&store, "live/a", true);
    feed.until(5.5);
    assert_eq!(store.names(), vec!["live/a".to_owned()]);
    let names = feed.program.renditions();
    assert_eq!(names, vec!["source".to_owned(), "audio".to_owned()]);
    let (entry, _) = store.lookup("live/a", "source").expect("stream");
    for name in &names {
        let playlist = feed.program.playlist(name).expect("playlist");
        assert_eq!(store.playlist("live/a", name).as_ref(), Some(&playlist));
        let r = entry.rendition(name).expect("rendition");
        assert_eq!(
            r.snapshot().reports,
            feed.program.rendition_reports(name),
            "{name}"
        );
        for seg in &playlist.segments {
            let m = r.segment(&entry, seg.msn).expect("segment");
            let joined: Vec<u8> = m.chunks.iter().flat_map(|c| c.iter().copied()).collect();
            let want = feed
                .program
                .segment(name, seg.msn)
                .expect("program segment");
            assert_eq!(joined, want.to_vec(), "{name} segment {}", seg.msn);
            assert_eq!(m.len, want.len() as u64);
            for p in &seg.parts {
                assert_eq!(
                    store.part("live/a", name, seg.msn, p.index),
                    feed.program.part(name, seg.msn, p.index),
                );
            }
        }
        let init = r.init(&entry, 0).expect("init");
        assert_eq!(Some(init.chunks[0].clone()), feed.program.init(name, 0));
    }
    assert_eq!(
        entry.rendition("source").expect("source").media_type(),
        MediaType::Video
    );
    assert_eq!(
        entry.rendition("audio").expect("audio").media_type(),
        MediaType::Audio
    );
    let mv = entry.multivariant().expect("multivariant");
    let text = std::str::from_utf8(&mv.body).expect("utf-8");
    assert!(text.contains("#EXT-X-STREAM-INF"), "{text}");
    assert_eq!(entry.target_duration(), Some(1));
    let summary = store.streams();
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0].renditions, names);
    assert!(!summary[0].ended && !summary[0].closed);
}

#[test]
fn audio_only_stream_is_audio() {
    let store = store();
    let mut feed = Feed::new(&store, "live/radio", true);
    // Replace the tracks with audio only before any frame.
    let StreamEvent::Tracks(mut tracks) = feed.synth.tracks() else {
        unreachable!()
    };
    tracks.retain(|t| t.id == synth::AUDIO);
    let mut program = Program::new(packager_config());
    let writer = store.writer("live/radio2");
    let out = program.push(&StreamEvent::Tracks(tracks));
    writer.apply(&program, &out);
    for e in feed.synth.frames_until(Duration::from_secs(2)) {
        if let StreamEvent::Frame(f) = &e
            && f.track == synth::AUDIO
        {
            let out = program.push(&e);
            writer.apply(&program, &out);
        }
    }
    let (entry, r) = store
        .lookup("live/radio2", "audio")
        .expect("audio rendition");
    assert_eq!(r.media_type(), MediaType::Audio);
    assert!(r.part(&entry, 1, 0).is_some());
}

#[test]
fn removed_media_is_kept_for_the_retention_then_freed() {
    let t0 = Instant::now();
    let td = Duration::from_secs(1);
    let retention = 3 * td;
    let cap = 5 * td;
    let mut m = MediaStore::default();
    let stored = SystemTime::now();
    for msn in 1..=10u64 {
        for i in 0..5 {
            m.parts.insert(
                (msn, i),
                Stored {
                    data: Bytes::from_static(b"p"),
                    stored,
                },
            );
        }
    }
    let durations: BTreeMap<u64, Duration> = (1..=10).map(|msn| (msn, td)).collect();
    m.window_start = 1;
    // Segments 1 and 2 leave the window at t0.
    m.advance(3, &durations, t0, retention, cap);
    assert!(m.servable(1, t0 + Duration::from_millis(2900), retention));
    assert!(m.servable(2, t0 + retention, retention));
    assert!(!m.servable(1, t0 + Duration::from_millis(3100), retention));
    assert!(m.servable(3, t0 + Duration::from_secs(100), retention));
    assert_eq!(m.parts.len(), 50);
    // Segment 3 leaves at t0 + 2 s; at t0 + 3.5 s segments 1 and 2 are freed, 3 is not.
    m.advance(4, &durations, t0 + Duration::from_secs(2), retention, cap);
    m.advance(
        4,
        &durations,
        t0 + Duration::from_millis(3500),
        retention,
        cap,
    );
    assert!(m.parts.range((1, 0)..(3, 0)).next().is_none());
    assert_eq!(m.parts.range((3, 0)..(4, 0)).count(), 5);
    assert_eq!(m.removed.len(), 1);
    // A publisher far faster than real time: the media-time cap bounds what is kept.
    let t1 = t0 + Duration::from_secs(4);
    m.advance(11, &durations, t1, retention, cap);
    let kept: Duration = m.removed.iter().map(|r| r.duration).sum();
    assert!(kept <= cap, "{kept:?}");
    assert_eq!(m.removed.len(), 5);
    assert_eq!(m.parts.len(), 25);
}

#[test]
fn memory_stays_bounded_when_pushed_faster_than_real_time() {
    let store = store();
    let mut feed = Feed::new(&store, "live/fast", true);
    feed.until(60.0);
    let (_, r) = store.lookup("live/fast", "source").expect("source");
    let media = read(&r.media);
    let window = packager_config().window_segments as u64;
    let segments = media.segments.len() as u64;
    // The window, the pending segment's parts, and at most REMOVED_CAP_TDS removed
    // one-second segments.
    assert!(
        segments <= window + u64::from(REMOVED_CAP_TDS),
        "{segments} segments stored"
    );
    let part_msns: std::collections::BTreeSet<u64> = media.parts.keys().map(|k| k.0).collect();
    assert!(part_msns.len() as u64 <= window + u64::from(REMOVED_CAP_TDS) + 1);
    assert!(media.inits.len() == 1);
}

#[tokio::test]
async fn closed_stream_lingers_then_disappears() {
    let store = Store::new(StoreConfig {
        linger: Duration::from_millis(200),
        ..StoreConfig::default()
    });
    let mut feed = Feed::new(&store, "live/bye", false);
    feed.until(2.5);
    let first_epoch = store.stream("live/bye").expect("stream").epoch;
    let mut rx = store
        .lookup("live/bye", "source")
        .expect("source")
        .1
        .subscribe();
    rx.borrow_and_update();
    feed.push(&StreamEvent::End);
    assert!(
        rx.has_changed().expect("sender alive"),
        "apply wakes waiters"
    );
    feed.writer.close();
    let s = store.streams();
    assert!(s[0].ended && s[0].closed, "{s:?}");
    // Still served while lingering.
    assert!(store.playlist("live/bye", "source").is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(store.names().is_empty());
    assert!(store.playlist("live/bye", "source").is_none());
    // The same name again: a fresh entry.
    let again = Feed::new(&store, "live/bye", false);
    let second = store.stream("live/bye").expect("new stream");
    assert_ne!(second.epoch, first_epoch);
    drop(again);
}

#[test]
fn writer_continues_a_live_stream() {
    let store = store();
    let mut feed = Feed::new(&store, "live/c", false);
    feed.until(1.5);
    let epoch = store.stream("live/c").expect("stream").epoch;
    let second = store.writer("live/c");
    assert_eq!(second.name(), "live/c");
    assert_eq!(store.stream("live/c").expect("stream").epoch, epoch);
    // Empty outputs change nothing.
    let before = store.playlist("live/c", "source");
    second.apply(&feed.program, &[]);
    assert_eq!(store.playlist("live/c", "source"), before);
}

#[test]
fn waiters_wake_on_their_own_rendition_only_but_reports_stay_current() {
    let store = store();
    let mut feed = Feed::new(&store, "live/w", true);
    feed.until(2.0);
    let (_, source) = store.lookup("live/w", "source").expect("source");
    let mut rx = source.subscribe();
    let mut audio_only = 0;
    let mut with_source = 0;
    for e in feed.synth.frames_until(Duration::from_secs(4)) {
        rx.borrow_and_update();
        let before = feed.outputs.len();
        feed.push(&e);
        let new = &feed.outputs[before..];
        if new.is_empty() {
            assert!(!rx.has_changed().expect("alive"));
            continue;
        }
        let touches_source = new.iter().any(|o| match o {
            Output::Init { rendition, .. }
            | Output::Part { rendition, .. }
            | Output::Segment { rendition, .. }
            | Output::Discontinuity { rendition, .. } => rendition == "source",
            Output::Ended => true,
        });
        if touches_source {
            with_source += 1;
            assert!(rx.has_changed().expect("alive"), "source waiters woken");
        } else {
            audio_only += 1;
            assert!(!rx.has_changed().expect("alive"), "woken for audio only");
        }
        // Either way the served snapshot reports the other renditions as they are now.
        assert_eq!(
            source.snapshot().reports,
            feed.program.rendition_reports("source")
        );
        assert_eq!(
            Some(&source.snapshot().playlist),
            feed.program.playlist("source").as_ref()
        );
    }
    assert!(
        audio_only > 0 && with_source > 0,
        "{audio_only} {with_source}"
    );
}

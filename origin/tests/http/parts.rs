//! Parts, segments, init segments: preload-hint blocking [S §4.4.5.3, §6.2.6] and the
//! retention of removed media [S §6.2.2].
use std::time::Duration;

use reqwest::StatusCode;
use tokio::time::Instant;

use crate::PROMPT;
use crate::support::{Harness, Options, STREAM};

#[tokio::test]
async fn the_hinted_part_blocks_then_comes_whole() {
    let mut h = Harness::start(Options::default()).await;
    h.go_live();
    let mut blocked = 0;
    for rendition in ["source", "audio", "source", "audio", "source"] {
        let (msn, part) = h.hint(rendition);
        let sent = Instant::now();
        let res = h.get(&format!("{rendition}/{msn}.{part}.m4s")).await;
        assert_eq!(res.status(), StatusCode::OK, "{rendition} {msn}.{part}");
        let length: usize = res.headers()["content-length"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("number");
        let body = res.bytes().await.expect("body");
        let done = Instant::now();
        let published = h.published(rendition, msn, part).expect("published");
        blocked += usize::from(sent < published);
        assert!(
            done.saturating_duration_since(published) < PROMPT,
            "answered {:?} after the part existed",
            done - published
        );
        let stored = h
            .store
            .part(STREAM, rendition, msn, part)
            .expect("stored part");
        assert_eq!(body, stored, "the whole part");
        assert_eq!(length, stored.len());
        // A CMAF chunk: moof then mdat.
        assert_eq!(&body[4..8], b"moof");
    }
    assert!(blocked >= 3, "only {blocked} of 5 part requests were held");
    assert_eq!(h.metrics.blocking_requests(), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_part_two_beyond_the_hint_is_404_at_once() {
    let h = Harness::start(Options::default()).await;
    let (msn, part) = h.hint("source");
    for path in [
        format!("source/{msn}.{}.m4s", part + 2),
        format!("source/{msn}.{}.m4s", part + 50),
        format!("source/{}.1.m4s", msn + 1),
        format!("source/{}.0.m4s", msn + 2),
        format!("source/{}.m4s", msn),
        format!("source/{}.m4s", msn + 5),
        "source/init-7.mp4".to_owned(),
        "nosuch/1.0.m4s".to_owned(),
        "source/18446744073709551615.0.m4s".to_owned(),
    ] {
        let t = Instant::now();
        let res = h.get(&path).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(res.headers()["cache-control"], "public, max-age=1");
        assert!(t.elapsed() < Duration::from_millis(200), "{path} was held");
    }
    assert_eq!(h.metrics.blocking_requests(), 0);
    h.stop().await;
}

#[tokio::test]
async fn the_part_after_the_hint_waits_and_a_skipped_one_is_404() {
    let h = Harness::start(Options::default()).await;
    let (msn, part) = h.hint("source");
    // The part right after the hint: held until it exists.
    let next = {
        let client = h.client.clone();
        let url = h.url(&format!("source/{msn}.{}.m4s", part + 1));
        tokio::spawn(async move { client.get(url).send().await.expect("GET") })
    };
    assert!(
        Harness::eventually(Duration::from_secs(2), || h.metrics.blocking_requests()
            == 1)
        .await
    );
    // Push until part+1 exists (or the segment ended before it).
    let start = h.position();
    let mut pushed = start;
    while h.published("source", msn, part + 1).is_none()
        && h.published("source", msn + 1, 0).is_none()
    {
        assert!(pushed < start + 3.0, "no part after 3 s of media");
        pushed += 0.05;
        h.push_until(pushed);
    }
    let res = next.await.expect("task");
    match h.published("source", msn, part + 1) {
        Some(_) => assert_eq!(res.status(), StatusCode::OK),
        // The segment ended before that index: it will never exist.
        None => assert_eq!(res.status(), StatusCode::NOT_FOUND),
    }
    h.stop().await;
}

#[tokio::test]
async fn removed_media_stays_three_target_durations_then_404() {
    let h = Harness::start(Options {
        prefill: 9.2,
        ..Options::default()
    })
    .await;
    let first = h.playlist("source").segments[0].msn;
    // One more second: segment `first` leaves the window.
    h.push_until(10.2);
    let removed_at = Instant::now();
    assert!(h.playlist("source").segments[0].msn > first);
    for path in [
        format!("source/{first}.0.m4s"),
        format!("source/{first}.m4s"),
    ] {
        let res = h.get(&path).await;
        assert_eq!(res.status(), StatusCode::OK, "{path} right after removal");
    }
    // 3 x TD = 3 s after removal: gone.
    tokio::time::sleep_until(removed_at + Duration::from_millis(3100)).await;
    for path in [
        format!("source/{first}.0.m4s"),
        format!("source/{first}.m4s"),
    ] {
        let res = h.get(&path).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path} after 3 TD");
    }
    // Still in the window: still there.
    let kept = h.playlist("source").segments[0].msn;
    assert_eq!(
        h.get(&format!("source/{kept}.m4s")).await.status(),
        StatusCode::OK
    );
    h.stop().await;
}

#[tokio::test]
async fn segments_and_init_segments_are_served_as_stored() {
    let h = Harness::start(Options::default()).await;
    for (rendition, content_type) in [("source", "video/mp4"), ("audio", "audio/mp4")] {
        let p = h.playlist(rendition);
        let init = h.get(&format!("{rendition}/init.mp4")).await;
        assert_eq!(init.status(), StatusCode::OK);
        assert_eq!(init.headers()["content-type"], content_type);
        let init = init.bytes().await.expect("body");
        assert_eq!(&init[4..8], b"ftyp");
        let seg = &p.segments[1];
        let res = h.get(&format!("{rendition}/{}.m4s", seg.msn)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], content_type);
        let body = res.bytes().await.expect("body");
        let feed = h.feed.lock().expect("feed");
        let want = feed.program.segment(rendition, seg.msn).expect("segment");
        assert_eq!(body, want);
        for part in &seg.parts {
            let want = feed
                .program
                .part(rendition, seg.msn, part.index)
                .expect("part");
            assert!(body.windows(want.len()).any(|w| w == &want[..]));
        }
    }
    h.stop().await;
}

//! Blocking playlist reload [S §6.2.5.2] and delta updates [S §6.2.5.1].
use std::time::Duration;

use media::StreamEvent;
use reqwest::StatusCode;
use tokio::time::Instant;

use crate::support::{Harness, Options};
use crate::{PROMPT, contains, has_segment, llhls, violations};

#[tokio::test]
async fn blocked_requests_are_answered_promptly_with_the_requested_part() {
    let mut h = Harness::start(Options::default()).await;
    h.go_live();
    let mut blocked = 0;
    for rendition in ["source", "audio"] {
        for _ in 0..6 {
            let (msn, part) = h.hint(rendition);
            let sent = Instant::now();
            let res = h
                .get(&format!(
                    "{rendition}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"
                ))
                .await;
            let got = Instant::now();
            assert_eq!(res.status(), StatusCode::OK);
            let text = res.text().await.expect("body");
            let done = Instant::now();
            // Never early with stale content: the answer lists the part.
            assert!(
                contains(&text, msn, part),
                "{rendition} {msn}.{part} missing from\n{text}"
            );
            let published = h
                .published(rendition, msn, part)
                .or_else(|| h.published(rendition, msn + 1, 0))
                .expect("the part was published");
            assert!(got >= published, "answered before the part existed");
            assert!(
                done.saturating_duration_since(published) < PROMPT,
                "{rendition} {msn}.{part}: answered {:?} after the part existed",
                done - published
            );
            blocked += usize::from(sent < published);
            let v = violations(&text);
            assert!(v.is_empty(), "{v:?}\n{text}");
        }
    }
    // The hint named the next part, so most requests had to wait for it.
    assert!(blocked >= 8, "only {blocked} of 12 requests were held");
    // `_HLS_msn=M` alone holds until segment M is complete.
    let (msn, _) = h.hint("source");
    let res = h.get(&format!("source/index.m3u8?_HLS_msn={msn}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.expect("body");
    let done = Instant::now();
    assert!(
        has_segment(&text, msn),
        "segment {msn} not complete in\n{text}"
    );
    let completed = h.feed.lock().expect("feed").segments[&("source".to_owned(), msn)];
    assert!(done.saturating_duration_since(completed) < PROMPT);
    assert_eq!(h.metrics.blocking_requests(), 0);
    h.stop().await;
}

#[tokio::test]
async fn satisfied_and_old_requests_are_answered_at_once() {
    // 12 s pushed, a window of 8 segments: segment 1 left the window long ago.
    let h = Harness::start(Options {
        prefill: 12.0,
        ..Options::default()
    })
    .await;
    let p = h.playlist("source");
    let first = p.segments[0].msn;
    assert!(first > 2, "window starts at {first}");
    let last = p.segments.last().expect("segments").msn;
    for query in [
        format!("_HLS_msn={last}"),
        format!("_HLS_msn={last}&_HLS_part=0"),
        format!("_HLS_msn={last}&_HLS_part=999"),
        "_HLS_msn=1".to_owned(),
        "_HLS_msn=0&_HLS_part=2".to_owned(),
        format!("_HLS_msn={first}&_HLS_skip=YES"),
    ] {
        let t = Instant::now();
        let res = h.get(&format!("source/index.m3u8?{query}")).await;
        assert_eq!(res.status(), StatusCode::OK, "{query}");
        assert_eq!(
            res.headers()["cache-control"],
            "public, max-age=6",
            "{query}: a response to a URL naming an MSN"
        );
        let text = res.text().await.expect("body");
        assert!(t.elapsed() < Duration::from_millis(200), "{query} was held");
        assert!(text.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{first}")));
    }
    // Delta updates: offered to a client inside the window, not to one whose MSN fell out
    // of it (it could not merge the skipped segments).
    let delta = h
        .get(&format!("source/index.m3u8?_HLS_msn={first}&_HLS_skip=YES"))
        .await
        .text()
        .await
        .expect("body");
    assert!(delta.contains("#EXT-X-SKIP:"), "{delta}");
    let old = h
        .get("source/index.m3u8?_HLS_msn=1&_HLS_skip=YES")
        .await
        .text()
        .await
        .expect("body");
    assert!(!old.contains("#EXT-X-SKIP:"), "{old}");
    assert!(violations(&old).is_empty());
    h.stop().await;
}

#[tokio::test]
async fn refused_requests_are_400() {
    let h = Harness::start(Options::default()).await;
    let p = h.playlist("source");
    let pending = p.pending.as_ref().expect("pending").msn;
    let (hm, hi) = h.hint("source");
    for query in [
        "_HLS_part=1".to_owned(),
        format!("_HLS_msn={}", pending + 3),
        format!("_HLS_msn={}&_HLS_part=0", pending + 3),
        format!("_HLS_msn={hm}&_HLS_part={}", hi + 40),
        format!("_HLS_msn={}&_HLS_part=200", hm + 1),
        "_HLS_msn=abc".to_owned(),
        "_HLS_msn=-1".to_owned(),
        "_HLS_msn=1.0".to_owned(),
        "_HLS_msn=99999999999999999999999".to_owned(),
        "_HLS_msn=18446744073709551615".to_owned(),
        "_HLS_msn=1&_HLS_part=99999999999".to_owned(),
        "_HLS_msn=1&_HLS_part=-1".to_owned(),
        "_HLS_skip=NO".to_owned(),
        "_HLS_msn=3&_HLS_msn=4".to_owned(),
        "_HLS_msn=%33".to_owned(),
    ] {
        let t = Instant::now();
        let res = h.get(&format!("source/index.m3u8?{query}")).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(res.headers()["cache-control"], "no-store", "{query}");
        assert!(t.elapsed() < Duration::from_millis(200), "{query} was held");
    }
    assert_eq!(h.metrics.blocking_requests(), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_request_held_three_target_durations_is_503() {
    // Nothing is pushed after the prefill: a stalled publisher.
    let h = Harness::start(Options::default()).await;
    let (msn, part) = h.hint("source");
    let t = Instant::now();
    let res = h
        .get(&format!(
            "source/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"
        ))
        .await;
    let held = t.elapsed();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["cache-control"], "no-store");
    // TD is 1 s: held three seconds, not (much) more.
    assert!(
        held >= Duration::from_millis(2950) && held < Duration::from_millis(4000),
        "held {held:?}"
    );
    assert_eq!(h.metrics.blocking_requests(), 0);
    assert_eq!(
        h.metrics.requests(
            origin::RequestKind::BlockingPlaylist,
            http::StatusCode::SERVICE_UNAVAILABLE
        ),
        1
    );
    h.stop().await;
}

#[tokio::test]
async fn with_endlist_the_parameters_are_ignored() {
    let h = Harness::start(Options::default()).await;
    let (msn, _) = h.hint("source");
    // A request waiting when the stream ends is answered with the final playlist.
    let waiting = {
        let client = h.client.clone();
        let url = h.url(&format!(
            "source/index.m3u8?_HLS_msn={}&_HLS_part=3",
            msn + 1
        ));
        tokio::spawn(async move { client.get(url).send().await.expect("GET") })
    };
    assert!(
        Harness::eventually(Duration::from_secs(2), || h.metrics.blocking_requests()
            == 1)
        .await
    );
    h.push(&StreamEvent::End);
    let res = waiting.await.expect("task");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.expect("body").contains("#EXT-X-ENDLIST"));
    for query in [
        format!("_HLS_msn={}&_HLS_part=3", msn + 2),
        "_HLS_msn=1000000".to_owned(),
    ] {
        let t = Instant::now();
        let res = h.get(&format!("source/index.m3u8?{query}")).await;
        assert_eq!(res.status(), StatusCode::OK, "{query}");
        let text = res.text().await.expect("body");
        assert!(text.contains("#EXT-X-ENDLIST"));
        assert!(!text.contains("PRELOAD-HINT"));
        assert!(t.elapsed() < Duration::from_millis(200));
    }
    h.stop().await;
}

#[tokio::test]
async fn a_delta_update_merged_with_the_previous_playlist_equals_the_full_one() {
    // 10 s pushed: the Skip Boundary (6 x TD) leaves segments to skip.
    let h = Harness::start(Options {
        prefill: 10.0,
        ..Options::default()
    })
    .await;
    for rendition in ["source", "audio"] {
        let previous = h
            .get(&format!("{rendition}/index.m3u8"))
            .await
            .text()
            .await
            .expect("body");
        assert!(previous.contains("CAN-SKIP-UNTIL="), "{previous}");
        h.push_until(h.position() + 0.7);
        let (msn, part) = h.hint(rendition);
        let delta_url =
            format!("{rendition}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}&_HLS_skip=YES");
        // The delta is requested for the next part: push it while the request waits.
        let waiting = {
            let client = h.client.clone();
            let url = h.url(&delta_url);
            tokio::spawn(async move { client.get(url).send().await.expect("GET") })
        };
        assert!(
            Harness::eventually(Duration::from_secs(2), || h.metrics.blocking_requests()
                == 1)
            .await
        );
        h.push_until(h.position() + 0.4);
        let blocked = waiting.await.expect("task").text().await.expect("body");
        assert!(
            blocked.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS="),
            "{blocked}"
        );
        assert!(contains(&blocked, msn, part));
        // A delta and a full playlist of the same instant (nothing is pushed between).
        let delta = h
            .get(&format!("{rendition}/index.m3u8?_HLS_skip=YES"))
            .await
            .text()
            .await
            .expect("body");
        let fresh = h
            .get(&format!("{rendition}/index.m3u8"))
            .await
            .text()
            .await
            .expect("body");
        let v = llhls::check_delta(&previous, &delta, &fresh, &llhls::CheckOptions::default());
        assert!(v.is_empty(), "{rendition}: {v:?}\n{delta}\n---\n{fresh}");
        let v = violations(&fresh);
        assert!(v.is_empty(), "{v:?}");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_client_that_goes_away_frees_its_wait_at_once() {
    let h = Harness::start(Options::default()).await;
    let (msn, part) = h.hint("source");
    for path in [
        format!("source/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"),
        format!("source/{msn}.{part}.m4s"),
    ] {
        let client = h.client.clone();
        let url = h.url(&path);
        let task = tokio::spawn(async move { client.get(url).send().await });
        assert!(
            Harness::eventually(Duration::from_secs(2), || h.metrics.blocking_requests()
                == 1)
            .await,
            "{path}: the request blocks"
        );
        task.abort();
        let t = Instant::now();
        assert!(
            Harness::eventually(Duration::from_secs(1), || h.metrics.blocking_requests()
                == 0)
            .await,
            "{path}: the wait outlived its client"
        );
        assert!(t.elapsed() < Duration::from_millis(500));
    }
    h.stop().await;
}

#[tokio::test]
async fn shutdown_answers_blocked_requests() {
    let h = Harness::start(Options::default()).await;
    let (msn, part) = h.hint("source");
    let client = h.client.clone();
    let url = h.url(&format!(
        "source/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"
    ));
    let task = tokio::spawn(async move { client.get(url).send().await });
    assert!(
        Harness::eventually(Duration::from_secs(2), || h.metrics.blocking_requests()
            == 1)
        .await
    );
    let t = Instant::now();
    h.stop().await;
    assert!(t.elapsed() < Duration::from_secs(2));
    let res = task.await.expect("task").expect("answered");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

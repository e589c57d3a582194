//! A publisher that leaves: the real binary with a short grace period, ffmpeg publishers,
//! a playlist poller and (when Chromium is installed) hls.js on the built-in page.
//!
//! - The publisher stops for good: the playlists carry EXT-X-ENDLIST once the grace
//!   period has passed, not before; blocking parameters are then ignored.
//! - The publisher comes back within the grace period: the same playlists go on (media
//!   sequence numbers continue, nothing is lost) with EXT-X-DISCONTINUITY before the
//!   first new segment, no ENDLIST; hls.js keeps playing across it (it plays fragments of
//!   the new discontinuity and its currentTime keeps moving).
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "support/binary.rs"]
mod binary;
#[path = "../packager/tests/support/llhls.rs"]
mod llhls;

use binary::{Ferrocast, Http, Options, Player, PlayerArgs, Publisher, chromium_or_skip};
use llhls::{CheckOptions, Playlist};

/// See `PDT_JITTER_MS` in `support/http_checks.rs`: a real-time publisher's frames arrive
/// with jitter on a loaded machine, and PROGRAM-DATE-TIME is their arrival time.
const PDT_JITTER_MS: i64 = 1000;

fn assert_clean(what: &str, text: &str) -> Playlist {
    let options = CheckOptions {
        pdt_tolerance_ms: PDT_JITTER_MS,
        ..CheckOptions::default()
    };
    let v = llhls::check(text, &options);
    assert!(
        v.is_empty(),
        "{what}: {}\n{text}",
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    );
    llhls::parse(text).0
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlists_end_after_the_grace_period() {
    const GRACE: Duration = Duration::from_secs(3);
    const STREAM: &str = "live/leaves";
    let server = Ferrocast::start(Options::toml(&format!(
        "[origin]\ngrace_period_ms = {}\n",
        GRACE.as_millis()
    )))
    .await;
    let http = Http::new();
    let mut publisher = Publisher::start(&server.rtmp_url(STREAM), 6);
    let media = server.url(&format!("/{STREAM}/source/index.m3u8"));
    let audio = server.url(&format!("/{STREAM}/audio/index.m3u8"));
    http.wait_for(&media, Duration::from_secs(20), "the media playlist", |r| {
        r.text().contains("#EXT-X-PART:")
    })
    .await;
    let status = publisher.wait(Duration::from_secs(30)).await;
    assert!(status.success(), "ffmpeg: {status}\n{}", publisher.stderr());
    let stopped = Instant::now();

    // Poll until ENDLIST; every playlist on the way passes the checker.
    let mut seen = Vec::new();
    let ended_after = loop {
        let r = http.get(&media).await;
        assert_eq!(r.status, 200, "{}", r.describe());
        let text = r.text();
        assert_clean("during the grace period", &text);
        if text.contains("#EXT-X-ENDLIST") {
            break stopped.elapsed();
        }
        seen.push(text);
        assert!(
            stopped.elapsed() < GRACE + Duration::from_secs(10),
            "no ENDLIST {:?} after the publisher stopped (grace {GRACE:?}); last:\n{}",
            stopped.elapsed(),
            seen.last().map_or("", String::as_str)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("ENDLIST {ended_after:?} after the publisher stopped (grace {GRACE:?})");
    assert!(
        ended_after >= GRACE - Duration::from_millis(500),
        "ENDLIST after {ended_after:?}, before the grace period of {GRACE:?}"
    );
    assert!(
        ended_after <= GRACE + Duration::from_millis(2500),
        "ENDLIST only after {ended_after:?} (grace {GRACE:?})"
    );
    assert!(
        !seen.is_empty(),
        "the playlist ended before it was polled during the grace period"
    );

    // Every rendition ends; the ended playlists keep the media and pass the checker.
    let last_live = llhls::parse(seen.last().expect("a live playlist")).0;
    let text = http.get(&media).await.text();
    let ended = assert_clean("ended source playlist", &text);
    assert!(ended.endlist && ended.hints.is_empty(), "{text}");
    assert!(
        ended.segments.last().map(|s| s.msn) >= last_live.segments.last().map(|s| s.msn),
        "the ended playlist lost segments:\n{text}"
    );
    let atext = http.get(&audio).await.text();
    let aended = assert_clean("ended audio playlist", &atext);
    assert!(aended.endlist, "the audio playlist did not end:\n{atext}");

    // Blocking parameters are ignored now, at once.
    let next = ended.next_msn();
    for q in [
        format!("_HLS_msn={next}&_HLS_part=0"),
        format!("_HLS_msn={}", next + 100),
    ] {
        let r = http.get(&format!("{media}?{q}")).await;
        assert_eq!(r.status, 200, "?{q}: {}", r.describe());
        assert!(r.text().contains("#EXT-X-ENDLIST"), "?{q}: {}", r.text());
        assert!(
            r.elapsed() < Duration::from_millis(500),
            "?{q} on an ended playlist took {:?}",
            r.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_back_within_the_grace_period_continues_the_playlists() {
    const GRACE: Duration = Duration::from_secs(6);
    const STREAM: &str = "live/returns";
    /// Seconds hls.js plays before the first publisher is killed.
    const BEFORE: u64 = 15;
    /// The gap between the two publishers.
    const GAP: Duration = Duration::from_millis(1000);
    /// Seconds played after the second publisher starts.
    const AFTER: u64 = 20;
    let with_player = chromium_or_skip("hls.js part of a_publisher_back_within_the_grace_period");

    let server = Ferrocast::start(Options::toml(&format!(
        "[origin]\ngrace_period_ms = {}\n",
        GRACE.as_millis()
    )))
    .await;
    let http = Http::new();
    let media = server.url(&format!("/{STREAM}/source/index.m3u8"));
    let mut first = Publisher::start(&server.rtmp_url(STREAM), 120);
    http.wait_for(&media, Duration::from_secs(20), "a complete segment", |r| {
        r.text().contains("#EXTINF")
    })
    .await;
    let mut player = with_player.then(|| {
        Player::start(&PlayerArgs {
            page: server.url("/"),
            stream: STREAM.into(),
            play_seconds: u32::try_from(BEFORE + AFTER).expect("small") + 1,
            start_timeout_seconds: 15,
            rendition: None,
        })
    });

    // Poll the playlist throughout.
    let mut playlists: Vec<Playlist> = Vec::new();
    let poll = |playlists: &mut Vec<Playlist>, text: String| {
        let p = assert_clean("media playlist", &text);
        assert!(
            !p.endlist,
            "ENDLIST although the publisher came back:\n{text}"
        );
        playlists.push(p);
    };
    let until = Instant::now() + Duration::from_secs(BEFORE);
    while Instant::now() < until {
        poll(&mut playlists, http.get(&media).await.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    first.kill();
    let killed_at = epoch_ms();
    let before = playlists.last().expect("playlists").clone();
    let last_before = before.segments.last().map_or(0, |s| s.msn);
    tokio::time::sleep(GAP).await;
    let _second = Publisher::start_with(&server.rtmp_url(STREAM), 120, 880);
    let back_at = epoch_ms();
    let until = Instant::now() + Duration::from_secs(AFTER);
    while Instant::now() < until {
        poll(&mut playlists, http.get(&media).await.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The same playlist went on: MSNs continue, one discontinuity after the old media.
    let v = llhls::check_sequence_parsed(&playlists);
    assert!(
        v.is_empty(),
        "successive playlists disagree: {}",
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    );
    let after = playlists.last().expect("playlists");
    let tagged: Vec<u64> = after
        .segments
        .iter()
        .filter(|s| s.discontinuity)
        .map(|s| s.msn)
        .collect();
    assert_eq!(
        tagged.len(),
        1,
        "want one EXT-X-DISCONTINUITY after the reconnect, got {tagged:?}"
    );
    assert!(
        tagged[0] > last_before,
        "the discontinuity is on segment {} but segment {last_before} was already there \
         before the reconnect",
        tagged[0]
    );
    let new_segments = after.segments.iter().filter(|s| s.msn > tagged[0]).count();
    assert!(
        new_segments >= 5,
        "only {new_segments} segments after the reconnect"
    );
    assert!(
        after.media_sequence >= before.media_sequence,
        "MEDIA-SEQUENCE went back"
    );

    let Some(player) = player.as_mut() else {
        return;
    };
    let report = player
        .report(Duration::from_secs(BEFORE + AFTER + 90))
        .await;
    let log = || format!("player log:\n{}", player.log());
    assert_eq!(report["started"], true, "playback never started; {}", log());
    let fatal: Vec<&serde_json::Value> = report["errors"]
        .as_array()
        .map(|a| a.iter().filter(|e| e["fatal"] == true).collect())
        .unwrap_or_default();
    assert!(
        fatal.is_empty(),
        "fatal hls.js errors: {fatal:?}; {}",
        log()
    );
    // hls.js played fragments of the new discontinuity.
    let frags: Vec<(f64, i64)> = report["frags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| Some((f[0].as_f64()?, f[2].as_i64()?)))
                .collect()
        })
        .unwrap_or_default();
    let first_cc = frags.first().map(|f| f.1);
    assert!(
        frags
            .iter()
            .any(|f| Some(f.1) > first_cc && f.0 > killed_at),
        "hls.js never played past the discontinuity (fragments [t, cc]: {frags:?}); {}",
        log()
    );
    // currentTime kept moving after the reconnect.
    let samples: Vec<(f64, f64, bool)> = report["samples"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| Some((s[0].as_f64()?, s[1].as_f64()?, s[2].as_bool()?)))
                .collect()
        })
        .unwrap_or_default();
    let at = |t: f64| {
        samples
            .iter()
            .find(|s| s.0 >= t)
            .map(|s| s.1)
            .unwrap_or(f64::NAN)
    };
    let end_t = samples.last().map_or(0.0, |s| s.0);
    let played_after = at(end_t) - at(back_at + 3000.0);
    let window_s = (end_t - back_at - 3000.0) / 1000.0;
    let cc_changes: Vec<String> = frags
        .windows(2)
        .filter(|w| w[0].1 != w[1].1)
        .map(|w| {
            format!(
                "cc {} -> {} at {:+.0} ms",
                w[0].1,
                w[1].1,
                w[1].0 - killed_at
            )
        })
        .collect();
    eprintln!(
        "reconnect: publisher killed, back {:.0} ms later; hls.js: {cc_changes:?} (from the \
         kill); played {played_after:.1} s of media in the last {window_s:.1} s; stalled {} \
         ms in total (currentTime still), {} waiting events for {} ms; the page's hls.js \
         work-around took effect {} times",
        back_at - killed_at,
        report["stall_ms"],
        report["waiting_events"],
        report["waiting_ms"],
        report["partial_segments_kept"]
    );
    assert!(
        played_after >= window_s - 3.0,
        "after the reconnect hls.js played {played_after:.1} s in {window_s:.1} s; {}",
        log()
    );
    let tail = samples
        .iter()
        .rev()
        .take_while(|s| s.0 >= end_t - 3000.0)
        .collect::<Vec<_>>();
    assert!(
        tail.first().map(|s| s.1) > tail.last().map(|s| s.1) && !tail[0].2,
        "not playing at the end: {tail:?}"
    );
    let stall = report["stall_ms"].as_f64().unwrap_or(f64::INFINITY);
    assert!(
        stall < 6000.0,
        "stalled {stall} ms in total across a {GAP:?} publisher gap; {}",
        log()
    );
}

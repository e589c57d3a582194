//! A real player: headless Chromium (Debian's package) with hls.js, on the page the
//! binary serves at `/`, plays a stream ffmpeg pushes over RTMP for 60 s.
//!
//! Fails if playback does not start within 5 s of selecting the stream, if it stalls for
//! more than 1 s in total, if hls.js reports a fatal error, or if no latency
//! (`Date.now() - hls.playingDate`) is measured; prints the measured latency.
//!
//! Skipped (with a message) only when Chromium is not installed and `CI` is not set.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[path = "support/binary.rs"]
mod binary;

use binary::{
    Ferrocast, Http, Options, Player, PlayerArgs, Publisher, chromium_or_skip, part_of_uri,
};

const STREAM: &str = "live/chromium";
const PLAY_SECONDS: u32 = 60;

fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
        .unwrap_or_default()
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Follows the media playlist with blocking reloads, as a second client would, and
/// returns the gaps of more than 500 ms between new parts as (ms since the epoch, gap ms):
/// a stall of the player at the same time is then the stream's, not the player's.
fn watch_parts(
    http: Http,
    media: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(f64, f64)>> {
    tokio::spawn(async move {
        let mut gaps = Vec::new();
        let mut text = http.get(&media).await.text();
        let mut last = epoch_ms();
        while !stop.load(Ordering::Relaxed) {
            let hint = text
                .lines()
                .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))
                .and_then(|l| l.split("URI=\"").nth(1))
                .and_then(|u| part_of_uri(u.trim_end_matches('"')));
            let Some((m, p)) = hint else { break };
            let Ok(r) = http
                .try_get_with(&format!("{media}?_HLS_msn={m}&_HLS_part={p}"), &[])
                .await
            else {
                break;
            };
            let now = epoch_ms();
            if now - last > 500.0 {
                gaps.push((last, now - last));
            }
            last = now;
            text = r.text();
        }
        gaps
    })
}

fn pct(sorted: &[f64], p: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) * p).div_ceil(100).min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_in_chromium_plays_a_minute_without_stalling() {
    if !chromium_or_skip("hls_js_in_chromium_plays_a_minute_without_stalling") {
        return;
    }
    let server = Ferrocast::start(Options::default()).await;
    let _publisher = Publisher::start(&server.rtmp_url(STREAM), PLAY_SECONDS + 15);
    // The stream is live (a complete segment) before the page is opened.
    Http::new()
        .wait_for(
            &server.url(&format!("/{STREAM}/source/index.m3u8")),
            Duration::from_secs(20),
            "a media playlist with a complete segment",
            |r| r.text().contains("#EXTINF"),
        )
        .await;

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_parts(
        Http::new(),
        server.url(&format!("/{STREAM}/source/index.m3u8")),
        stop.clone(),
    );
    let mut player = Player::start(&PlayerArgs {
        page: server.url("/"),
        stream: STREAM.into(),
        play_seconds: PLAY_SECONDS,
        start_timeout_seconds: 15,
        rendition: None,
    });
    let report = player
        .report(Duration::from_secs(u64::from(PLAY_SECONDS) + 90))
        .await;
    stop.store(true, Ordering::Relaxed);
    let gaps = watcher.await.unwrap_or_default();

    let started = report["started"].as_bool().unwrap_or(false);
    let start_ms = report["start_ms"].as_f64();
    let stall_ms = report["stall_ms"].as_f64().unwrap_or(f64::INFINITY);
    let waiting_ms = report["waiting_ms"].as_f64().unwrap_or(0.0);
    let played = report["played_s"].as_f64().unwrap_or(0.0);
    let mut latency = numbers(&report["latency_ms"]);
    latency.sort_by(f64::total_cmp);
    let fatal: Vec<&serde_json::Value> = report["errors"]
        .as_array()
        .map(|a| a.iter().filter(|e| e["fatal"] == true).collect())
        .unwrap_or_default();
    let opened = report["opened_at"].as_f64().unwrap_or(0.0);
    let episodes: Vec<String> = report["stall_episodes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            format!(
                "{:.0} ms at +{:.1} s (buffer {} s)",
                e[1].as_f64().unwrap_or(0.0),
                (e[0].as_f64().unwrap_or(0.0) - opened) / 1000.0,
                e[2]
            )
        })
        .collect();
    let gaps: Vec<String> = gaps
        .iter()
        .map(|(t, ms)| format!("{ms:.0} ms at +{:.1} s", (t - opened) / 1000.0))
        .collect();
    eprintln!(
        "chromium: started {started} after {start_ms:?} ms; played {played:.1} s; stalled \
         {stall_ms} ms {episodes:?} (waiting events: {} for {waiting_ms} ms); latency p50 \
         {:.0} ms, max {:.0} ms, min {:.0} ms over {} samples; page readouts {}; errors {}; \
         slow or failed requests {}; gaps between parts on the server {gaps:?}; the page's \
         hls.js work-around took effect {} times",
        report["waiting_events"],
        pct(&latency, 50),
        pct(&latency, 100),
        pct(&latency, 0),
        latency.len(),
        report["readouts"],
        report["errors"],
        report["network"],
        report["partial_segments_kept"],
    );
    let context = || format!("player log:\n{}", player.log());
    assert!(started, "playback never started; {}", context());
    let start_ms = start_ms.expect("start_ms");
    assert!(
        start_ms < 5000.0,
        "playback started after {start_ms} ms (limit 5000); {}",
        context()
    );
    assert!(fatal.is_empty(), "fatal hls.js errors: {fatal:?}");
    assert!(
        report["page_errors"].as_array().is_none_or(Vec::is_empty),
        "errors in the page: {}",
        report["page_errors"]
    );
    assert!(
        stall_ms <= 1000.0 && waiting_ms <= 1000.0,
        "stalled for {stall_ms} ms (currentTime not moving) / {waiting_ms} ms (waiting \
         events) in total, limit 1000 ms; {}",
        context()
    );
    assert!(
        played >= f64::from(PLAY_SECONDS) - 3.0,
        "only {played:.1} s of media played in {PLAY_SECONDS} s"
    );
    // Latency is reported: a number a second, positive and plausible for a live stream.
    assert!(
        latency.len() >= (PLAY_SECONDS as usize) / 2,
        "latency measured {} times in {PLAY_SECONDS} s: {}",
        latency.len(),
        report["latency_ms"]
    );
    assert!(
        pct(&latency, 0) > 0.0 && pct(&latency, 100) < 10_000.0,
        "implausible latency samples {latency:?}"
    );
    let readouts = report["readouts"].as_array().map_or(0, Vec::len);
    assert!(
        readouts > 0,
        "the page shows no latency readout (an element with id `latency`)"
    );
}

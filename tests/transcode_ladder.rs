//! Transcoding end to end, on the real binary with real publishers:
//!
//! - ffmpeg pushes 1080p30 over RTMP: the multivariant playlist lists `source`, `1080p`,
//!   `720p`, `480p`, `360p` and the audio rendition; for 30 s of segments ffprobe confirms
//!   each rung's resolution, each rung's bitrate is within 15 % of its target, every
//!   segment's IDR positions are identical in all video renditions, and each rung's
//!   pictures keep the source's timestamps (so audio stays in sync with every rung as it
//!   is with the source, to within a frame);
//! - a 720p source gets no rung above 720p;
//! - a stretch of corrupted pictures (slice data overwritten, the stream still well
//!   formed) makes the ladder restart, the source rendition plays on without a break, and
//!   hls.js in headless Chromium playing a rung keeps playing.
//!
//! The ladders run x264 at `ultrafast` so a 2-core CI machine keeps up with a 1080p
//! source; what is checked does not depend on the preset.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

mod support;

#[path = "support/binary.rs"]
mod binary;
#[path = "support/flv_publish.rs"]
mod flv_publish;

use binary::{
    Ferrocast, Http, Options, Player, PlayerArgs, Publisher, chromium_or_skip, encoded_media,
};
use support::ffprobe;

/// The default ladder's rungs up to 1080p: (name, height, target kb/s).
const RUNGS: [(&str, u32, u32); 4] = [
    ("1080p", 1080, 5000),
    ("720p", 720, 2800),
    ("480p", 480, 1400),
    ("360p", 360, 800),
];

fn ladder_options() -> Options {
    Options {
        toml: "[transcode]\nenabled = true\nx264_preset = \"ultrafast\"\n".into(),
        // The harness turns transcoding off for the other tests; this one is about it.
        env: vec![("FERROCAST_TRANSCODE_ENABLED".into(), "true".into())],
        ..Options::default()
    }
}

/// The variants of a multivariant playlist: (rendition directory, RESOLUTION).
fn variants(text: &str) -> Vec<(String, Option<(u32, u32)>)> {
    let mut out = Vec::new();
    let mut resolution = None;
    for line in text.lines() {
        if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            resolution = attrs
                .split(',')
                .find_map(|a| a.strip_prefix("RESOLUTION="))
                .and_then(|r| r.split_once('x'))
                .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
        } else if !line.starts_with('#') && !line.is_empty() {
            let dir = line.split('/').next().unwrap_or_default().to_owned();
            out.push((dir, resolution.take()));
        }
    }
    out
}

/// Waits until the multivariant playlist of `stream` lists exactly `want` (in any
/// order) and an audio rendition; returns its variants.
async fn wait_for_variants(
    http: &Http,
    server: &Ferrocast,
    stream: &str,
    want: &[&str],
) -> Vec<(String, Option<(u32, u32)>)> {
    let url = server.url(&format!("/{stream}/index.m3u8"));
    let resp = http
        .wait_for(
            &url,
            Duration::from_secs(60),
            "every rendition listed",
            |r| {
                let mut names: Vec<String> = variants(&r.text()).into_iter().map(|v| v.0).collect();
                names.sort();
                let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
                want.sort();
                names == want && r.text().contains("TYPE=AUDIO")
            },
        )
        .await;
    variants(&resp.text())
}

/// A complete segment: its duration and bytes (None for an EXT-X-GAP segment).
type Segments = BTreeMap<u64, (f64, Option<bytes::Bytes>)>;

/// Follows the media playlists of `renditions` for `span`, downloading every complete
/// segment once; returns the init segment and the segments of each.
async fn collect(
    http: &Http,
    server: &Ferrocast,
    stream: &str,
    renditions: &[&str],
    span: Duration,
) -> BTreeMap<String, (bytes::Bytes, Segments)> {
    let mut out: BTreeMap<String, (bytes::Bytes, Segments)> = BTreeMap::new();
    for r in renditions {
        let init = http
            .get(&server.url(&format!("/{stream}/{r}/init.mp4")))
            .await;
        assert_eq!(init.status, 200, "{r} init: {}", init.describe());
        out.insert(r.to_string(), (init.body, Segments::new()));
    }
    let end = Instant::now() + span;
    while Instant::now() < end {
        for r in renditions {
            let text = http
                .get(&server.url(&format!("/{stream}/{r}/index.m3u8")))
                .await
                .text();
            let mut duration = None;
            let mut gap = false;
            for line in text.lines() {
                if let Some(d) = line.strip_prefix("#EXTINF:") {
                    duration = d.trim_end_matches(',').parse::<f64>().ok();
                } else if line == "#EXT-X-GAP" {
                    gap = true;
                } else if let Some(msn) = line.strip_suffix(".m4s").and_then(|m| m.parse().ok()) {
                    let segments = &mut out.get_mut(*r).expect("rendition").1;
                    if let (Some(d), false) = (duration.take(), segments.contains_key(&msn)) {
                        let bytes = if gap {
                            None
                        } else {
                            let resp = http
                                .get(&server.url(&format!("/{stream}/{r}/{msn}.m4s")))
                                .await;
                            assert_eq!(resp.status, 200, "{r}/{msn}.m4s: {}", resp.describe());
                            Some(resp.body)
                        };
                        segments.insert(msn, (d, bytes));
                    }
                    gap = false;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    out
}

/// ffprobe of `init` + `segment`: (width, height) and the video packets' (pts in
/// seconds, keyframe).
fn probe_segment(
    dir: &Path,
    name: &str,
    init: &[u8],
    segment: &[u8],
) -> ((u32, u32), Vec<(f64, bool)>) {
    let path = dir.join(format!("{name}.mp4"));
    let mut bytes = init.to_vec();
    bytes.extend_from_slice(segment);
    std::fs::write(&path, bytes).expect("write the segment");
    let probe = ffprobe(&path, &[]);
    let stream = probe.stream("video");
    let size = (stream.width.unwrap_or(0), stream.height.unwrap_or(0));
    let packets = probe
        .packets("video")
        .into_iter()
        .map(|p| (p.pts.unwrap_or(-1) as f64 / 90_000.0, p.keyframe))
        .collect();
    (size, packets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1080p30_source_gets_an_aligned_ladder_on_its_bitrates() {
    let media = encoded_media("1920x1080", 440, 75);
    let server = Ferrocast::start(ladder_options()).await;
    let http = Http::new();
    let stream = "live/ladder";
    let _publisher = Publisher::start_file(&server.rtmp_url(stream), &media, 75);

    let mut want = vec!["source"];
    want.extend(RUNGS.iter().map(|r| r.0));
    let listed = wait_for_variants(&http, &server, stream, &want).await;
    for (name, height, _) in RUNGS {
        let (_, resolution) = listed.iter().find(|v| v.0 == name).expect("listed");
        let width = (height * 16 / 9 + 1) & !1;
        assert_eq!(*resolution, Some((width, height)), "{name} RESOLUTION");
    }
    assert_eq!(
        listed.iter().find(|v| v.0 == "source").and_then(|v| v.1),
        Some((1920, 1080))
    );

    // Let the encoders settle (rate control starts from nothing), then take 40 s.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut all = vec!["source"];
    all.extend(RUNGS.iter().map(|r| r.0));
    let got = collect(&http, &server, stream, &all, Duration::from_secs(40)).await;
    let dir = binary::temp_dir("transcode-ladder");

    // The segments every video rendition has (complete, not gaps), first one excluded
    // (it may have started before the rungs joined).
    let common: Vec<u64> = got["source"]
        .1
        .keys()
        .copied()
        .filter(|msn| {
            all.iter()
                .all(|r| got[*r].1.get(msn).is_some_and(|s| s.1.is_some()))
        })
        .skip(1)
        .collect();
    let covered: f64 = common.iter().map(|m| got["source"].1[m].0).sum();
    assert!(
        covered >= 30.0,
        "only {covered:.1} s of segments in every rendition: {common:?}\n{}",
        server.stderr_tail(40)
    );

    let mut failures = Vec::new();
    for msn in &common {
        let (src_init, src_segs) = &got["source"];
        let (src_size, src_packets) = probe_segment(
            &dir,
            &format!("source-{msn}"),
            src_init,
            src_segs[msn].1.as_ref().expect("bytes"),
        );
        assert_eq!(src_size, (1920, 1080));
        let src_keys: Vec<f64> = src_packets.iter().filter(|p| p.1).map(|p| p.0).collect();
        assert!(
            src_packets.first().is_some_and(|p| p.1),
            "source segment {msn} starts with a keyframe"
        );
        for (name, height, _) in RUNGS {
            let (init, segs) = &got[name];
            let (size, packets) = probe_segment(
                &dir,
                &format!("{name}-{msn}"),
                init,
                segs[msn].1.as_ref().expect("bytes"),
            );
            if size.1 != height {
                failures.push(format!("{name} {msn}: {size:?}"));
            }
            let keys: Vec<f64> = packets.iter().filter(|p| p.1).map(|p| p.0).collect();
            let same = keys.len() == src_keys.len()
                && keys
                    .iter()
                    .zip(&src_keys)
                    .all(|(a, b)| (a - b).abs() < 0.001);
            if !same || !packets.first().is_some_and(|p| p.1) {
                failures.push(format!(
                    "{name} {msn}: IDRs at {keys:?}, source at {src_keys:?}"
                ));
            }
            // The same pictures at the same times: the first and last picture of the
            // segment within a frame of the source's (a rung may drop frames only
            // above its frame-rate cap, which a 30 fps source does not reach).
            let first = |p: &[(f64, bool)]| p.first().map_or(-1.0, |x| x.0);
            let last = |p: &[(f64, bool)]| p.iter().map(|x| x.0).fold(f64::MIN, f64::max);
            if (first(&packets) - first(&src_packets)).abs() > 1.0 / 30.0
                || (last(&packets) - last(&src_packets)).abs() > 1.0 / 30.0
            {
                failures.push(format!(
                    "{name} {msn}: pictures {:.3}..{:.3} s, source {:.3}..{:.3} s",
                    first(&packets),
                    last(&packets),
                    first(&src_packets),
                    last(&src_packets)
                ));
            }
            if (segs[msn].0 - src_segs[msn].0).abs() > 1.0 / 30.0 {
                failures.push(format!(
                    "{name} {msn}: EXTINF {} vs source {}",
                    segs[msn].0, src_segs[msn].0
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Bitrate over the 30 s (and more) every rendition has.
    for (name, _, kbps) in RUNGS {
        let segs = &got[name].1;
        let bytes: usize = common
            .iter()
            .map(|m| segs[m].1.as_ref().map_or(0, |b| b.len()))
            .sum();
        let seconds: f64 = common.iter().map(|m| segs[m].0).sum();
        let rate = bytes as f64 * 8.0 / seconds / 1000.0;
        println!("{name}: {rate:.0} kb/s over {seconds:.1} s (target {kbps} kb/s)");
        assert!(
            (rate - f64::from(kbps)).abs() <= 0.15 * f64::from(kbps),
            "{name}: {rate:.0} kb/s, target {kbps} kb/s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_720p_source_gets_no_rung_above_720p() {
    let media = encoded_media("1280x720", 440, 30);
    let server = Ferrocast::start(ladder_options()).await;
    let http = Http::new();
    let stream = "live/small";
    let _publisher = Publisher::start_file(&server.rtmp_url(stream), &media, 30);
    let listed =
        wait_for_variants(&http, &server, stream, &["source", "720p", "480p", "360p"]).await;
    assert!(
        listed.iter().all(|v| v.1.is_some_and(|(_, h)| h <= 720)),
        "{listed:?}"
    );
    // And it stays so: nothing appears later.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let text = http
        .get(&server.url(&format!("/{stream}/index.m3u8")))
        .await
        .text();
    let names: Vec<String> = variants(&text).into_iter().map(|v| v.0).collect();
    for above in ["1080p", "1440p", "2160p"] {
        assert!(!names.iter().any(|n| n == above), "{above} listed:\n{text}");
    }
}

/// `ferrocast_transcode_restarts_total`, summed over its labels.
fn restarts(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("ferrocast_transcode_restarts_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_stretch_restarts_the_ladder_while_playback_goes_on() {
    if !chromium_or_skip("a_corrupted_stretch_restarts_the_ladder_while_playback_goes_on") {
        return;
    }
    const CORRUPT_FROM_MS: u32 = 20_000;
    const CORRUPT_TO_MS: u32 = 23_000;
    const PLAY_SECONDS: u32 = 45;
    let media = encoded_media("1280x720", 440, 75);
    let server = Ferrocast::start(ladder_options()).await;
    let http = Http::new();
    let stream = "live/broken";
    let tags = flv_publish::read_flv(&media);
    let addr = server.rtmp;
    let started = Instant::now();
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let publisher = tokio::spawn(async move {
        flv_publish::publish_tags(addr, "live", "broken", tags, |ts| {
            (CORRUPT_FROM_MS..CORRUPT_TO_MS).contains(&ts)
        })
        .await;
    });
    wait_for_variants(&http, &server, stream, &["source", "720p", "480p", "360p"]).await;
    let mut player = Player::start(&PlayerArgs {
        page: server.url("/"),
        stream: stream.into(),
        play_seconds: PLAY_SECONDS,
        start_timeout_seconds: 15,
        rendition: Some("480p".into()),
    });

    // The restart is counted once the corrupted pictures reached the decoder.
    let deadline = started + Duration::from_millis(u64::from(CORRUPT_TO_MS) + 15_000);
    let mut counted = 0.0;
    while Instant::now() < deadline {
        counted = restarts(&server.metrics().await);
        if counted >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        counted >= 1.0,
        "no ladder restart counted after the corrupted stretch:\n{}",
        server.stderr_tail(60)
    );
    // The source rendition plays on through it: no break in its timeline, no gap.
    let source_at_restart = source_playlist(&http, &server, stream).await;
    assert!(
        !source_at_restart.contains("#EXT-X-DISCONTINUITY\n")
            && !source_at_restart.contains("#EXT-X-GAP"),
        "{source_at_restart}"
    );

    let report = player
        .report(Duration::from_secs(u64::from(PLAY_SECONDS) + 60))
        .await;
    let log = player.log();
    assert_eq!(
        report["started"], true,
        "playback did not start: {report}\n{log}"
    );
    let level = report["rendition_level"]
        .as_i64()
        .expect("a rendition chosen");
    let levels = report["levels"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        levels.get(level as usize).and_then(|l| l[1].as_u64()),
        Some(480),
        "the chosen level is the 480p rung: {levels:?}"
    );
    // The source rendition passes the publisher's corrupted pictures through, and while
    // the ladder restarts hls.js plays the source for the segments the rung lists as
    // EXT-X-GAP: Chromium's decoder may then fail, a fatal media error the page recovers
    // from (`hls.recoverMediaError()`), as a viewer's would. Any other fatal error fails
    // the test, and so does a media error after which playback did not go on.
    let errors = report["errors"].as_array().cloned().unwrap_or_default();
    let samples = report["samples"].as_array().cloned().unwrap_or_default();
    for e in errors.iter().filter(|e| e["fatal"] == true) {
        assert_eq!(
            e["type"], "mediaError",
            "fatal hls.js error {}: {}",
            e["details"], e["error"]
        );
        let t = e["t"].as_f64().unwrap_or(f64::MAX);
        let at = e["currentTime"].as_f64().unwrap_or(0.0);
        assert!(
            samples
                .iter()
                .any(|s| s[0].as_f64().is_some_and(|st| st > t)
                    && s[1].as_f64().is_some_and(|ct| ct > at + 5.0)),
            "playback did not go on after the fatal media error {} ({}) at {at:.1} s",
            e["details"],
            e["error"]
        );
        println!(
            "recovered from a fatal media error at {at:.1} s: {} ({})",
            e["details"], e["error"]
        );
    }
    // Kept playing: the position went on well past the restart, on the rung.
    let played = report["played_s"].as_f64().unwrap_or(0.0);
    let stall = report["stall_ms"].as_f64().unwrap_or(f64::MAX);
    println!("rung playback through a ladder restart: played {played:.1} s, stalled {stall:.0} ms");
    assert!(
        played >= f64::from(PLAY_SECONDS) - 10.0,
        "played only {played:.1} s of {PLAY_SECONDS} (stalled {stall:.0} ms): {report}\n{log}"
    );
    // Still loading media well after the restart (hls.js may take another rendition for
    // the segments the rung lists as EXT-X-GAP, so any level counts).
    let after_ms = started_ms + f64::from(CORRUPT_TO_MS) + 10_000.0;
    let frags = report["frags"].as_array().cloned().unwrap_or_default();
    assert!(
        frags
            .iter()
            .any(|f| f[0].as_f64().is_some_and(|t| t > after_ms)),
        "no fragment played after the restart: {frags:?}"
    );
    // The rung itself came back: media (not gaps) after the restart.
    let rung = http
        .get(&server.url(&format!("/{stream}/480p/index.m3u8")))
        .await
        .text();
    assert!(
        last_msn(&rung) > last_msn(&source_at_restart),
        "the 480p rung did not come back after the restart:\n{rung}"
    );
    // Parts are listed for the last three target durations only: rung media is recent.
    assert!(rung.contains("#EXT-X-PART:"), "{rung}");

    // The source rendition went on: the same timeline, more segments.
    let source_after = source_playlist(&http, &server, stream).await;
    assert!(
        last_msn(&source_after) > last_msn(&source_at_restart),
        "{source_after}"
    );
    assert!(
        !source_after.contains("#EXT-X-DISCONTINUITY\n"),
        "{source_after}"
    );
    publisher.abort();
}

async fn source_playlist(http: &Http, server: &Ferrocast, stream: &str) -> String {
    http.get(&server.url(&format!("/{stream}/source/index.m3u8")))
        .await
        .text()
}

fn last_msn(playlist: &str) -> u64 {
    playlist
        .lines()
        .filter_map(|l| l.strip_suffix(".m4s")?.parse().ok())
        .max()
        .unwrap_or(0)
}

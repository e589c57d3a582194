//! End to end over HTTP: the real `ferrocast` binary, ffmpeg publishing a live test
//! pattern over RTMP, and a client that drives the request chain of a low-latency player
//! for 30 s, checking every HTTP rule of LLHLS.md on the way:
//!
//! - the chain: multivariant -> media playlist -> loop { blocking reload for the hinted
//!   part (`_HLS_msn`/`_HLS_part`, sometimes `_HLS_skip=YES`, sometimes gzip) beside a
//!   GET of the preload-hinted part }: every answer contains the part it asked for (never
//!   early, never stale), arrives with the part (the two waits end together) and about one
//!   part target after the previous one; the hinted part blocks and comes whole, equal to
//!   the listed part fetched later; every playlist passes the checker of
//!   `packager/tests/support/llhls.rs`, successive ones agree, a delta merged into the
//!   previous full playlist equals a fresh full one, gzip decompresses to the same text,
//!   the rendition report on the audio rendition is within one part of its playlist;
//! - beside it: the 400 cases, `_HLS_msn` alone, already-satisfied requests, a part
//!   beyond the hint (404), init segments, headers of each kind of answer (content types,
//!   Cache-Control, CORS, no Age), conditional GETs;
//! - a second stream whose publisher stops: a request held 3 target durations gets 503;
//!   after the grace period the playlists end and their parameters are ignored;
//! - after the chain: MSNs older than the window are answered at once, and parts and
//!   segments that left the playlist stay downloadable.
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;

#[path = "support/binary.rs"]
mod binary;
#[path = "support/http_checks.rs"]
mod http_checks;
#[path = "../packager/tests/support/llhls.rs"]
mod llhls;

use binary::{Ferrocast, Http, Options, Publisher, percentile};
use http_checks::{
    Faults, ORIGIN, blocking_cache, check_options, check_playlist, common_headers, hint_of,
    listed_parts, media_headers, not_found, origin, plain_cache, playlist_text, report_lag,
    same_state,
};
use llhls::Playlist;

const STREAM: &str = "live/e2e";
/// A second stream whose publisher stops early (503 and ENDLIST cases).
const ENDING: &str = "live/ending";
const CHAIN: Duration = Duration::from_secs(30);
const GRACE_MS: u64 = 12_000;

struct Ctx {
    http: Http,
    server: Ferrocast,
    /// `http://ADDR/live/e2e`
    base: String,
    /// EXT-X-TARGETDURATION, seconds.
    td: u64,
    /// PART-TARGET.
    pt: Duration,
}

// ---------------------------------------------------------------------------------------
// The chain

#[derive(Default)]
struct ChainStats {
    iterations: usize,
    /// playlist answer done - hinted part done (ms, signed).
    skew_ms: Vec<i64>,
    /// Time the hinted-part GET waited.
    part_waits: Vec<Duration>,
    /// Between successive part availabilities.
    intervals: Vec<Duration>,
    /// Parts the audio rendition was ahead of the report about it.
    report_lags: Vec<i64>,
    deltas_checked: usize,
    deltas_raced: usize,
    gzip_compared: usize,
    /// Every part fetched: URI -> bytes.
    parts: HashMap<String, Bytes>,
    /// URI -> when it was last listed.
    last_listed: HashMap<String, Instant>,
    /// MSN -> number of parts once complete.
    part_counts: BTreeMap<u64, usize>,
    /// MSN -> when it left the window.
    removed_at: BTreeMap<u64, Instant>,
    /// The last merged playlist.
    last: Playlist,
}

async fn chain(ctx: &Ctx, f: &Faults) -> ChainStats {
    let http = &ctx.http;
    let media = format!("{}/source/index.m3u8", ctx.base);
    let audio = format!("{}/audio/index.m3u8", ctx.base);
    let part_url = |uri: &str| format!("{}/source/{uri}", ctx.base);
    let mut st = ChainStats::default();

    let r = http.get_with(&media, &[origin()]).await;
    let text = playlist_text(f, "first media playlist", &r, false);
    plain_cache(f, "first media playlist", &r, ctx.td);
    let mut current = check_playlist(f, "first media playlist", &text);
    let mut last_full = text;
    let mut history = vec![current.clone()];
    let mut last_avail: Option<Instant> = None;
    let deadline = Instant::now() + CHAIN;

    while Instant::now() < deadline {
        st.iterations += 1;
        let i = st.iterations;
        let Some((m, p, hint_uri)) = hint_of(&current) else {
            f.check(false, || format!("no preload hint in\n{last_full}"));
            break;
        };
        let what = format!("#{i} _HLS_msn={m}&_HLS_part={p}");
        let q = format!("{media}?_HLS_msn={m}&_HLS_part={p}");
        // Every 4th: a delta, a full and a gzipped full answer to the same request, to
        // compare; otherwise plain, delta or gzip in turn.
        let compare = i % 4 == 0;
        let skip = i % 4 == 1 || compare;
        let gzip = i % 4 == 2;
        let main_url = if skip {
            format!("{q}&_HLS_skip=YES")
        } else {
            q.clone()
        };
        let main_headers: &[(&str, &str)] = if gzip {
            &[("origin", ORIGIN), ("accept-encoding", "gzip")]
        } else {
            &[("origin", ORIGIN)]
        };
        let hinted_url = part_url(&hint_uri);
        let plain_headers = [origin()];
        let (part, main, full, full_gz) = tokio::join!(
            http.get_with(&hinted_url, &plain_headers),
            http.get_with(&main_url, main_headers),
            async {
                if compare {
                    Some(http.get_with(&q, &[origin()]).await)
                } else {
                    None
                }
            },
            async {
                if compare {
                    Some(
                        http.get_with(&q, &[origin(), ("accept-encoding", "gzip")])
                            .await,
                    )
                } else {
                    None
                }
            },
        );

        // The playlist answer.
        let text = playlist_text(f, &what, &main, gzip);
        if text.is_empty() {
            break;
        }
        blocking_cache(f, &what, &main, ctx.td);
        let parsed = check_playlist(f, &what, &text);
        let merged = match llhls::merge_delta(&current, &parsed) {
            Ok(merged) => merged,
            Err(e) => {
                f.check(false, || format!("{what}: delta does not merge: {e}"));
                break;
            }
        };
        f.check(
            merged.last_part().is_some_and(|have| have >= (m, p)),
            || {
                format!(
                    "{what}: answered before the part existed (last part {:?})\n{text}",
                    merged.last_part()
                )
            },
        );

        // The hinted part.
        media_headers(f, &format!("{what}: hinted part {hint_uri}"), &part, false);
        let listed = listed_parts(&merged);
        f.check(listed.iter().any(|(k, _)| *k == (m, p)), || {
            format!("{what}: the playlist answer does not list the hinted part {hint_uri}")
        });
        if part.status == 200 {
            // The listed part, fetched again, is the same bytes.
            let again = http.get_with(&part_url(&hint_uri), &[origin()]).await;
            f.check(again.status == 200 && again.body == part.body, || {
                format!(
                    "{what}: the listed part differs from the hinted part ({} vs {} bytes, status {})",
                    again.body.len(),
                    part.body.len(),
                    again.status
                )
            });
            f.check(again.elapsed() < Duration::from_millis(500), || {
                format!("{what}: a listed part took {:?}", again.elapsed())
            });
            st.parts.insert(hint_uri.clone(), part.body.clone());
        }

        // Timing.
        let avail = main.done.min(part.done);
        st.skew_ms.push(
            main.done.duration_since(part.sent).as_millis() as i64
                - part.done.duration_since(part.sent).as_millis() as i64,
        );
        st.part_waits.push(part.done - part.sent);
        if let Some(prev) = last_avail {
            st.intervals.push(avail - prev);
        }
        last_avail = Some(avail);

        // The rendition report about audio against the audio playlist.
        if !compare {
            let report = merged
                .reports
                .iter()
                .find(|r| r.get("URI").is_some_and(|u| u == "../audio/index.m3u8"));
            let report = report.and_then(|r| {
                Some((
                    r.get("LAST-MSN")?.parse::<u64>().ok()?,
                    r.get("LAST-PART")?.parse::<u64>().ok()?,
                ))
            });
            f.check(report.is_some(), || {
                format!("{what}: no EXT-X-RENDITION-REPORT for ../audio/index.m3u8\n{text}")
            });
            if let Some(report) = report {
                let a = http.get_with(&audio, &[origin()]).await;
                let atext = playlist_text(f, "audio playlist", &a, false);
                let ap = check_playlist(f, "audio playlist", &atext);
                match report_lag(report, &ap) {
                    Some(lag) => st.report_lags.push(lag),
                    None => f.check(false, || {
                        format!(
                            "{what}: the report {report:?} names a part the audio playlist \
                             does not list (its last part {:?})",
                            ap.last_part()
                        )
                    }),
                }
            }
        }

        // Delta against full, gzip against plain.
        if let (Some(full), Some(full_gz)) = (full, full_gz) {
            let ftext = playlist_text(f, &format!("{what} (full)"), &full, false);
            blocking_cache(f, &format!("{what} (full)"), &full, ctx.td);
            let fp = check_playlist(f, &format!("{what} (full)"), &ftext);
            let gtext = playlist_text(f, &format!("{what} (gzip)"), &full_gz, true);
            if same_state(&llhls::parse(&gtext).0, &fp) {
                st.gzip_compared += 1;
                f.check(gtext == ftext, || {
                    format!("{what}: gzip answer differs:\n{gtext}\n---\n{ftext}")
                });
            }
            if parsed.skipped.is_some() {
                if same_state(&parsed, &fp) {
                    st.deltas_checked += 1;
                    let v = llhls::check_delta(&last_full, &text, &ftext, &check_options());
                    f.check(v.is_empty(), || {
                        format!(
                            "{what}: delta vs full: {}\nprevious:\n{last_full}\ndelta:\n{text}\nfull:\n{ftext}",
                            v.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                        )
                    });
                } else {
                    st.deltas_raced += 1;
                }
            }
            if !ftext.is_empty() {
                last_full = ftext;
            }
        } else if parsed.skipped.is_none() {
            last_full = text.clone();
        }

        // Bookkeeping for the retention checks.
        let now = Instant::now();
        for (_, uri) in &listed {
            st.last_listed.insert(uri.clone(), now);
        }
        for s in &merged.segments {
            if !s.parts.is_empty() {
                st.part_counts.insert(s.msn, s.parts.len());
            }
        }
        if let (Some(old), Some(new)) = (current.media_sequence, merged.media_sequence) {
            for msn in old..new {
                st.removed_at.entry(msn).or_insert(now);
            }
        }
        history.push(merged.clone());
        current = merged;
    }

    let v = llhls::check_sequence_parsed(&history);
    f.check(v.is_empty(), || {
        format!(
            "successive playlists: {}",
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    });
    st.last = current;
    st
}

// ---------------------------------------------------------------------------------------
// Beside the chain

/// The 400 cases, `_HLS_msn` alone, already satisfied requests, skip alone, 404s, init
/// segments, the multivariant playlist, conditional GETs and the CORS preflight.
async fn side(ctx: &Ctx, f: &Faults) {
    let http = &ctx.http;
    let media = format!("{}/source/index.m3u8", ctx.base);
    let td = ctx.td;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = http.get_with(&media, &[origin()]).await;
    let text = playlist_text(f, "plain playlist", &r, false);
    plain_cache(f, "plain playlist", &r, td);
    let now = check_playlist(f, "plain playlist", &text);
    let last_seg = now
        .segments
        .last()
        .map(|s| s.msn)
        .expect("a complete segment");
    let (hm, hp, _) = hint_of(&now).expect("a preload hint");

    // 400s [S §6.2.5.2], promptly.
    for q in [
        "_HLS_part=0".to_string(),
        format!("_HLS_msn={}", last_seg + 10),
        format!("_HLS_msn={}&_HLS_part=0", last_seg + 10),
        format!("_HLS_msn={hm}&_HLS_part={}", hp + 1000),
    ] {
        let r = http.get_with(&format!("{media}?{q}"), &[origin()]).await;
        f.check(r.status == 400, || {
            format!("?{q}: want 400, got {}", r.describe())
        });
        f.check(r.elapsed() < Duration::from_secs(1), || {
            format!("?{q}: the 400 took {:?}", r.elapsed())
        });
        common_headers(f, &format!("?{q}"), &r);
    }

    // Already satisfied: at once.
    for q in [
        format!("_HLS_msn={last_seg}"),
        format!("_HLS_msn={last_seg}&_HLS_part=0"),
    ] {
        let r = http.get_with(&format!("{media}?{q}"), &[origin()]).await;
        let t = playlist_text(f, &format!("?{q}"), &r, false);
        let p = check_playlist(f, &format!("?{q}"), &t);
        f.check(r.elapsed() < ctx.pt.max(Duration::from_millis(300)), || {
            format!("?{q} was satisfied already but took {:?}", r.elapsed())
        });
        f.check(p.segments.iter().any(|s| s.msn == last_seg), || {
            format!("?{q}: segment {last_seg} missing\n{t}")
        });
    }

    // `_HLS_skip=YES` alone: a plain (non-blocking) answer.
    let r = http
        .get_with(&format!("{media}?_HLS_skip=YES"), &[origin()])
        .await;
    let t = playlist_text(f, "?_HLS_skip=YES", &r, false);
    check_playlist(f, "?_HLS_skip=YES", &t);
    plain_cache(f, "?_HLS_skip=YES", &r, td);
    f.check(r.elapsed() < Duration::from_millis(500), || {
        format!("?_HLS_skip=YES alone took {:?}", r.elapsed())
    });

    // A part two or more beyond the hint, a future segment, unknown names: 404.
    let r = http.get_with(&media, &[origin()]).await;
    let fresh = llhls::parse(&r.text()).0;
    let (hm, hp, _) = hint_of(&fresh).expect("a preload hint");
    let beyond = format!("{}/source/{hm}.{}.m4s", ctx.base, hp + 3);
    let r = http.get_with(&beyond, &[origin()]).await;
    not_found(f, "a part 3 beyond the hint", &r, td);
    f.check(r.elapsed() < Duration::from_secs(1), || {
        format!("the part beyond the hint took {:?} to 404", r.elapsed())
    });
    for path in [
        format!("/source/{}.m4s", hm + 5),
        "/nope/index.m3u8".to_string(),
        "/source/init-7.mp4".to_string(),
    ] {
        let r = http
            .get_with(&format!("{}{path}", ctx.base), &[origin()])
            .await;
        not_found(f, &path, &r, td);
    }
    let r = http
        .get_with(&ctx.server.url("/live/nope/index.m3u8"), &[origin()])
        .await;
    not_found(f, "an unknown stream", &r, td);

    // `_HLS_msn` alone, two past the last segment: allowed, held until that segment is
    // complete.
    let want = last_seg + 2;
    let r = http
        .get_with(&format!("{media}?_HLS_msn={want}"), &[origin()])
        .await;
    let t = playlist_text(f, &format!("?_HLS_msn={want}"), &r, false);
    let p = check_playlist(f, &format!("?_HLS_msn={want}"), &t);
    f.check(p.segments.last().is_some_and(|s| s.msn >= want), || {
        format!("?_HLS_msn={want} answered before segment {want} was complete\n{t}")
    });
    f.check(r.elapsed() <= Duration::from_secs(3 * td + 1), || {
        format!("?_HLS_msn={want} took {:?}", r.elapsed())
    });

    // Init segments, with a conditional GET when there is an ETag.
    for (rendition, audio) in [("source", false), ("audio", true)] {
        let url = format!("{}/{rendition}/init.mp4", ctx.base);
        let r = http.get_with(&url, &[origin()]).await;
        media_headers(f, &format!("{rendition}/init.mp4"), &r, audio);
        f.check(r.body.get(4..8) == Some(b"ftyp"), || {
            format!("{rendition}/init.mp4 does not start with ftyp")
        });
        if let Some(etag) = r.header("etag") {
            let c = http
                .get_with(&url, &[origin(), ("if-none-match", etag)])
                .await;
            f.check(c.status == 304, || {
                format!(
                    "{rendition}/init.mp4 If-None-Match {etag}: {}",
                    c.describe()
                )
            });
        }
    }

    // The multivariant playlist, plain and gzipped.
    // Its measured bandwidths change whenever a segment completes, so compare a gzip
    // answer only with plain answers fetched just before and after it that agree.
    let url = format!("{}/index.m3u8", ctx.base);
    let mut attempt = 0;
    let (plain, pt, gt) = loop {
        attempt += 1;
        let plain = http.get_with(&url, &[origin()]).await;
        let gz = http
            .get_with(&url, &[origin(), ("accept-encoding", "gzip")])
            .await;
        let after = http.get_with(&url, &[origin()]).await;
        let pt = playlist_text(f, "multivariant", &plain, false);
        let gt = playlist_text(f, "multivariant (gzip)", &gz, true);
        let stable = pt == playlist_text(f, "multivariant", &after, false);
        if stable || attempt == 5 {
            break (plain, pt, gt);
        }
    };
    f.check(pt == gt, || {
        format!("gzip multivariant differs:\n{gt}\n---\n{pt}")
    });
    f.check(plain.header("cache-control").is_some(), || {
        "multivariant without Cache-Control".into()
    });
    f.check(
        pt.starts_with("#EXTM3U")
            && pt.contains("#EXT-X-STREAM-INF:")
            && pt.contains("source/index.m3u8")
            && pt.contains("TYPE=AUDIO")
            && pt.contains("URI=\"audio/index.m3u8\""),
        || format!("multivariant lacks the renditions:\n{pt}"),
    );

    // CORS preflight.
    let r = http
        .client
        .request(reqwest::Method::OPTIONS, &media)
        .header("origin", ORIGIN)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .expect("OPTIONS");
    f.check(r.status().is_success(), || {
        format!("CORS preflight: {}", r.status())
    });
    f.check(
        r.headers().contains_key("access-control-allow-origin"),
        || {
            format!(
                "CORS preflight without Access-Control-Allow-Origin: {:?}",
                r.headers()
            )
        },
    );
}

/// The stream whose publisher stops: 503 after 3 x TD, ENDLIST after the grace period,
/// parameters ignored then.
async fn ending(ctx: &Ctx, f: &Faults, mut publisher: Publisher) {
    let http = &ctx.http;
    let base = ctx.server.url(&format!("/{ENDING}"));
    let media = format!("{base}/source/index.m3u8");
    let td = ctx.td;
    let status = publisher.wait(Duration::from_secs(30)).await;
    assert!(status.success(), "ffmpeg: {status}\n{}", publisher.stderr());
    let stopped = Instant::now();

    // The last part arrives at once (the driver completes it when the publisher leaves).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = http.get_with(&media, &[origin()]).await;
    let t = playlist_text(f, "stopped stream", &r, false);
    let p = check_playlist(f, "stopped stream", &t);
    f.check(!p.endlist, || "ENDLIST long before the grace period".into());
    let Some((m, n, uri)) = hint_of(&p) else {
        f.check(false, || {
            format!("stopped stream: no preload hint during the grace period\n{t}")
        });
        return;
    };
    let q = format!("{media}?_HLS_msn={m}&_HLS_part={n}");
    let r = http.get_with(&q, &[origin()]).await;
    let limit = Duration::from_secs(3 * td);
    eprintln!(
        "{ENDING}: publisher stopped; a request for the next part got {} after {:?}",
        r.status,
        r.elapsed()
    );
    f.check(r.status == 503, || {
        format!(
            "a request held with the publisher gone: want 503, got {}",
            r.describe()
        )
    });
    f.check(
        r.elapsed() >= limit - Duration::from_millis(300)
            && r.elapsed() <= limit + Duration::from_secs(2),
        || {
            format!(
                "the 503 came after {:?}, want ~3 x TD = {limit:?}",
                r.elapsed()
            )
        },
    );
    common_headers(f, "503", &r);
    f.check(stopped.elapsed() < Duration::from_millis(GRACE_MS), || {
        "the 503 check outlasted the grace period: the test's timing is off".into()
    });

    // ENDLIST after the grace period.
    let r = http
        .wait_for(
            &media,
            Duration::from_millis(GRACE_MS) + Duration::from_secs(8),
            "ENDLIST after the grace period",
            |r| r.text().contains("#EXT-X-ENDLIST"),
        )
        .await;
    let after = stopped.elapsed();
    eprintln!("{ENDING}: ENDLIST {after:?} after the publisher stopped (grace {GRACE_MS} ms)");
    f.check(after >= Duration::from_millis(GRACE_MS - 500), || {
        format!("ENDLIST {after:?} after the publisher stopped, grace is {GRACE_MS} ms")
    });
    let t = playlist_text(f, "ended stream", &r, false);
    let ended = check_playlist(f, "ended stream", &t);
    // Parameters are ignored once the playlist has ended, even ones that would be 400.
    for q in [
        format!("_HLS_msn={}&_HLS_part=0", m + 1),
        format!("_HLS_msn={}", m + 50),
    ] {
        let r = http.get_with(&format!("{media}?{q}"), &[origin()]).await;
        let t = playlist_text(f, &format!("ended ?{q}"), &r, false);
        f.check(t.contains("#EXT-X-ENDLIST"), || {
            format!("ended ?{q}: no ENDLIST\n{t}")
        });
        f.check(r.elapsed() < Duration::from_millis(500), || {
            format!("ended ?{q} took {:?}", r.elapsed())
        });
    }
    // The hinted part never came: 404 now.
    let r = http
        .get_with(&format!("{base}/source/{uri}"), &[origin()])
        .await;
    f.check(r.status == 404, || {
        format!(
            "the never-published part {uri} after the end: {}",
            r.describe()
        )
    });
    f.check(
        ended.segments.last().map(|s| s.msn) >= p.segments.last().map(|s| s.msn),
        || "the ended playlist lost segments".into(),
    );
}

/// After the chain: requests older than the window, removed parts and segments.
async fn after_chain(ctx: &Ctx, f: &Faults, st: &ChainStats) {
    let http = &ctx.http;
    let media = format!("{}/source/index.m3u8", ctx.base);
    let first = st.last.media_sequence.unwrap_or(1);
    f.check(first > 1, || {
        format!("after 30 s the window has not moved (MEDIA-SEQUENCE {first})")
    });
    for q in ["_HLS_msn=1", "_HLS_msn=1&_HLS_part=0"] {
        let r = http.get_with(&format!("{media}?{q}"), &[origin()]).await;
        let t = playlist_text(f, &format!("old ?{q}"), &r, false);
        let p = check_playlist(f, &format!("old ?{q}"), &t);
        f.check(r.elapsed() < Duration::from_millis(300), || {
            format!("?{q} (older than the window) took {:?}", r.elapsed())
        });
        f.check(
            p.skipped.is_none() && p.media_sequence >= Some(first),
            || format!("?{q}: not the whole current playlist\n{t}"),
        );
    }

    // Parts no longer listed, within 3 x TD of leaving the playlist: still there.
    let listed_now: Vec<String> = listed_parts(&st.last).into_iter().map(|(_, u)| u).collect();
    let keep = Duration::from_secs(3 * ctx.td) - Duration::from_millis(500);
    let mut checked = 0;
    for (uri, at) in &st.last_listed {
        if listed_now.contains(uri) || at.elapsed() > keep {
            continue;
        }
        let Some(bytes) = st.parts.get(uri) else {
            continue;
        };
        let r = http
            .get_with(&format!("{}/source/{uri}", ctx.base), &[origin()])
            .await;
        f.check(r.status == 200 && r.body == *bytes, || {
            format!(
                "part {uri}, unlisted {:?} ago, is gone: {}",
                at.elapsed(),
                r.status
            )
        });
        checked += 1;
    }
    f.check(checked > 0, || {
        "no unlisted part to check: the test's timing is off".into()
    });

    // Segments: the concatenation of their parts, also right after leaving the window.
    let mut segments = 0;
    for (&msn, &count) in st.part_counts.iter().rev() {
        let uris: Vec<String> = (0..count).map(|i| format!("{msn}.{i}.m4s")).collect();
        let Some(parts) = uris
            .iter()
            .map(|u| st.parts.get(u))
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        let removed = st.removed_at.get(&msn);
        if removed.is_some_and(|at| at.elapsed() > keep) {
            continue;
        }
        let r = http
            .get_with(&format!("{}/source/{msn}.m4s", ctx.base), &[origin()])
            .await;
        media_headers(f, &format!("segment {msn}"), &r, false);
        let concat: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
        f.check(r.body == concat, || {
            format!(
                "segment {msn} ({} bytes) is not its {count} parts ({} bytes){}",
                r.body.len(),
                concat.len(),
                removed.map_or(String::new(), |at| format!(
                    ", removed {:?} ago",
                    at.elapsed()
                ))
            )
        });
        segments += 1;
        if segments >= 4 {
            break;
        }
    }
    f.check(segments > 0, || "no segment with every part fetched".into());
}

fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn low_latency_request_chain_follows_the_http_rules() {
    let server = Ferrocast::start(Options::toml(&format!(
        "[origin]\ngrace_period_ms = {GRACE_MS}\n"
    )))
    .await;
    let publisher = Publisher::start(&server.rtmp_url(STREAM), 60);
    let ending_publisher = Publisher::start_with(&server.rtmp_url(ENDING), 8, 880);
    let http = Http::new();
    let base = server.url(&format!("/{STREAM}"));

    // Ready: the multivariant and a media playlist with a complete segment.
    http.wait_for(
        &format!("{base}/index.m3u8"),
        Duration::from_secs(20),
        "the multivariant playlist",
        |r| r.text().contains("#EXT-X-STREAM-INF"),
    )
    .await;
    let r = http
        .wait_for(
            &format!("{base}/source/index.m3u8"),
            Duration::from_secs(20),
            "a media playlist with a complete segment",
            |r| !llhls::parse(&r.text()).0.segments.is_empty(),
        )
        .await;
    let first = llhls::parse(&r.text()).0;
    let td = first.target_duration.expect("EXT-X-TARGETDURATION");
    let pt_ms = first.part_target.expect("PART-TARGET").millis();
    let pt = Duration::from_millis(u64::try_from(pt_ms).expect("positive PART-TARGET"));
    eprintln!("TD {td} s, PART-TARGET {pt:?}");

    let ctx = Ctx {
        http,
        server,
        base,
        td,
        pt,
    };
    let faults = Faults::default();
    let (stats, (), ()) = tokio::join!(
        chain(&ctx, &faults),
        side(&ctx, &faults),
        ending(&ctx, &faults, ending_publisher)
    );
    after_chain(&ctx, &faults, &stats).await;
    drop(publisher);

    // Timing figures.
    let skews: Vec<Duration> = stats
        .skew_ms
        .iter()
        .map(|s| Duration::from_millis(s.unsigned_abs()))
        .collect();
    let intervals = &stats.intervals;
    eprintln!(
        "chain: {} rounds; |playlist - part| p50 {:?} p99 {:?} max {:?}; part waits p50 {:?}; \
         part intervals p50 {:?} p95 {:?} max {:?}; report lags {:?}; {} deltas checked ({} raced), \
         {} gzip compared",
        stats.iterations,
        percentile(&skews, 50),
        percentile(&skews, 99),
        percentile(&skews, 100),
        percentile(&stats.part_waits, 50),
        percentile(intervals, 50),
        percentile(intervals, 95),
        percentile(intervals, 100),
        {
            let mut c = BTreeMap::new();
            for l in &stats.report_lags {
                *c.entry(*l).or_insert(0) += 1;
            }
            c
        },
        stats.deltas_checked,
        stats.deltas_raced,
        stats.gzip_compared,
    );
    let f = &faults;
    let min_rounds = (CHAIN.as_millis() / pt.as_millis() / 2) as usize;
    f.check(stats.iterations >= min_rounds, || {
        format!(
            "only {} rounds in {CHAIN:?} (PART-TARGET {pt:?})",
            stats.iterations
        )
    });
    // The playlist answer and the part answer wait for the same event.
    f.check(percentile(&skews, 95) <= Duration::from_millis(100), || {
        format!(
            "playlist and part answers apart by p95 {:?}",
            percentile(&skews, 95)
        )
    });
    f.check(
        percentile(&skews, 100) <= Duration::from_millis(500),
        || {
            format!(
                "playlist and part answers apart by up to {:?}",
                percentile(&skews, 100)
            )
        },
    );
    // A part about every PART-TARGET [S §6.2.1].
    let p50 = percentile(intervals, 50);
    f.check(p50 >= pt / 2 && p50 <= pt * 3 / 2, || {
        format!("parts every {p50:?} (median), PART-TARGET {pt:?}")
    });
    f.check(
        percentile(intervals, 95) <= pt + Duration::from_millis(300),
        || format!("p95 part interval {:?}", percentile(intervals, 95)),
    );
    // The preload-hint GET really blocks (it is sent before the part exists).
    f.check(percentile(&stats.part_waits, 50) >= pt / 4, || {
        format!(
            "hinted parts came after {:?} (median): not blocking?",
            percentile(&stats.part_waits, 50)
        )
    });
    // Rendition reports within one part (the audio playlist is fetched a moment later).
    let lags = &stats.report_lags;
    f.check(!lags.is_empty(), || "no rendition report checked".into());
    f.check(lags.iter().all(|l| (0..=3).contains(l)), || {
        format!("rendition report lags {lags:?}")
    });
    let close = lags.iter().filter(|l| **l <= 1).count();
    f.check(close * 10 >= lags.len() * 9, || {
        format!("rendition reports more than one part behind too often: {lags:?}")
    });
    f.check(stats.deltas_checked >= 3, || {
        format!(
            "only {} delta updates compared with full playlists",
            stats.deltas_checked
        )
    });
    f.check(stats.gzip_compared >= 3, || {
        format!("only {} gzip answers compared", stats.gzip_compared)
    });

    // Metrics of the origin.
    let metrics = ctx.server.metrics().await;
    for name in [
        "ferrocast_http_requests_total",
        "ferrocast_part_publish_delay_seconds_count",
    ] {
        f.check(metric_sum(&metrics, name) > 0.0, || {
            format!("metric {name} is 0 or missing")
        });
    }
    f.check(metrics.contains("ferrocast_blocking_requests"), || {
        "no ferrocast_blocking_requests gauge".into()
    });
    faults.assert_none();
}

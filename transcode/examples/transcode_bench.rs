//! Ladder benchmark (prints figures; checks nothing). `bench/transcode.sh` runs it.
//!
//! The source is encoded once in-process by GStreamer (`videotestsrc pattern=ball`, x264
//! ultrafast, GOP 2 s, no B-frames; not timed), then:
//!
//! - `latency`: one source published in real time (paced on its pts) through
//!   `transcode::run`; for every rung frame, the wall time from the source frame's
//!   publish to the rung frame's arrival: p50/p99 per rung.
//! - `cpu`: the same source pushed as fast as the ladder takes it; the process's CPU
//!   seconds (user + sys, /proc/self/stat) per media second.
//! - `capacity`: N copies published in real time for `--seconds`; the realtime ratio of
//!   the slowest rung of the slowest copy (rung media seconds produced / wall seconds).
//!
//! Usage: `transcode_bench MODE --height H [--seconds S] [--copies N] [--preset P]`,
//! prints `key=value` lines.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use media::StreamEvent;
use media::hub::{Hub, rung_stream_name};
use tokio_util::sync::CancellationToken;
use transcode::{DecoderChoice, EncoderChoice, TranscodeConfig, plan_rungs};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" of the command name: utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct Copy {
    name: String,
    rungs: Vec<String>,
}

/// Collects, per (stream, rung), frame count and latencies, until End.
type Stats = Arc<Mutex<HashMap<(String, String), (u64, Vec<f64>)>>>;

async fn read_rungs(hub: &Hub, copies: &[Copy], stats: &Stats) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for c in copies {
        for r in &c.rungs {
            let n = rung_stream_name(&c.name, r);
            support::wait_for(&n, Duration::from_secs(60), || hub.stream(&n).is_some()).await;
            let mut sub = hub.subscribe(&n).unwrap();
            let (stats, key) = (stats.clone(), (c.name.clone(), r.clone()));
            tasks.push(tokio::spawn(async move {
                while let Some(ev) = sub.recv().await {
                    if let StreamEvent::Frame(f) = ev {
                        let lat = SystemTime::now()
                            .duration_since(f.received)
                            .unwrap_or_default()
                            .as_secs_f64();
                        let mut s = stats.lock().unwrap();
                        let e = s.entry(key.clone()).or_default();
                        e.0 += 1;
                        e.1.push(lat);
                    }
                }
            }));
        }
    }
    tasks
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).cloned().unwrap_or_else(|| "latency".into());
    let height: u32 = arg(&args, "--height", "1080").parse().unwrap();
    let seconds: u32 = arg(&args, "--seconds", "20").parse().unwrap();
    let copies: usize = arg(&args, "--copies", "1").parse().unwrap();
    let preset = arg(&args, "--preset", "veryfast");
    let width = height * 16 / 9 / 2 * 2;
    let src = tokio::task::spawn_blocking(move || {
        support::encode_source("ball", width, height, 30, seconds, 60, 0, height * 6)
    })
    .await
    .unwrap();

    let hub = support::hub();
    let config = TranscodeConfig {
        encoder: EncoderChoice::X264,
        decoder: DecoderChoice::Cpu,
        x264_preset: preset,
        ..TranscodeConfig::default()
    };
    let rung_names: Vec<String> = plan_rungs(&config.rungs, height)
        .iter()
        .map(|r| r.name.clone())
        .collect();
    let shutdown = CancellationToken::new();
    let driver = tokio::spawn(transcode::run(hub.clone(), config, None, shutdown.clone()));

    let copies: Vec<Copy> = (0..copies)
        .map(|i| Copy {
            name: format!("bench/{i}"),
            rungs: rung_names.clone(),
        })
        .collect();
    let mut publishers = Vec::new();
    for c in &copies {
        let p = support::publish(&hub, &c.name);
        let n = c.name.clone();
        support::wait_for("ladder", Duration::from_secs(60), || {
            hub.stream(&n).is_some_and(|s| s.subscribers > 0)
        })
        .await;
        p.send(StreamEvent::Tracks(vec![src.track.clone()]));
        publishers.push(p);
    }
    let stats = Stats::default();
    let readers = read_rungs(&hub, &copies, &stats).await;
    let paced = mode != "cpu";
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let first = src.frames[0].dts;
    for f in &src.frames {
        if paced {
            let due = Duration::from_secs_f64((f.dts - first) as f64 / 90_000.0);
            tokio::time::sleep_until((start + due).into()).await;
        }
        for p in &publishers {
            p.send(StreamEvent::Frame(media::Frame {
                received: SystemTime::now(),
                ..f.clone()
            }));
        }
        if !paced {
            // Let the ladder's hub queue drain: never more than ~1 s of frames ahead.
            let n = copies[0].name.clone();
            let key = (n, rung_names.last().unwrap().clone());
            loop {
                let done = stats.lock().unwrap().get(&key).map_or(0, |e| e.0);
                let pushed = (f.dts - first) / 3000;
                if pushed - (done as i64) < 30 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let pushed_wall = start.elapsed().as_secs_f64();
    // Frames produced by the time the source finished (plus 1 s): the realtime view.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let at_end: HashMap<(String, String), u64> = stats
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.0))
        .collect();
    drop(publishers);
    for r in readers {
        let _ = r.await;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    shutdown.cancel();
    let _ = driver.await;

    let media_s = src.frames.len() as f64 / 30.0;
    println!("mode={mode}");
    println!("height={height}");
    println!("copies={}", copies.len());
    println!("media_seconds={media_s:.1}");
    println!("rungs={}", rung_names.join(","));
    match mode.as_str() {
        "cpu" => {
            println!("wall_seconds={wall:.2}");
            println!("cpu_seconds={cpu:.2}");
            println!("cpu_per_media_second={:.3}", cpu / media_s);
        }
        "latency" => {
            let mut s = stats.lock().unwrap();
            for r in &rung_names {
                let v = &mut s.get_mut(&(copies[0].name.clone(), r.clone())).unwrap().1;
                println!(
                    "latency_ms_{r}=p50:{:.1},p99:{:.1}",
                    percentile(v, 0.5) * 1000.0,
                    percentile(v, 0.99) * 1000.0
                );
            }
        }
        _ => {
            let total = src.frames.len() as f64;
            let worst = at_end.values().copied().min().unwrap_or(0) as f64;
            let expected = total.min(pushed_wall * 30.0);
            println!("realtime_ratio={:.3}", worst / expected);
            println!("cpu_seconds={cpu:.2}");
        }
    }
}

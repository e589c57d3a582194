//! Packager throughput on one thread: an FLV file's tags go through the real ingest path
//! (`FrameBuilder`) once, untimed; then the resulting events are pushed through a fresh
//! `packager::Program` `--runs` times, timed, with a counting global allocator.
//!
//! Prints one `key=value` line per figure (bench/packager.sh reads them):
//! frames, parts, segments, output bytes, seconds per run (best of the runs), frames/s,
//! MB/s of fMP4 written, µs per frame, allocations and allocated bytes per part, and the
//! cost of rendering a media playlist after each part (what the origin does per part).
//!
//! Usage: `packager_bench FILE.flv [--runs N]`. A benchmark: it checks nothing.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../tests/support/packager.rs"]
mod source;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use media::StreamEvent;
use packager::playlist::{RenderOptions, render_media};
use packager::{Output, PackagerConfig, Program};

/// Counts every allocation (and reallocation) and the bytes asked for.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size as u64, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Default)]
struct Totals {
    parts: u64,
    segments: u64,
    bytes: u64,
}

/// One pass: every event through a fresh program; returns the totals and the time.
fn pass(events: &[StreamEvent]) -> (Totals, Duration) {
    let mut totals = Totals::default();
    let mut program = Program::new(PackagerConfig::default());
    let start = Instant::now();
    for e in events {
        for out in program.push(e) {
            match out {
                Output::Part { data, .. } => {
                    totals.parts += 1;
                    totals.bytes += data.len() as u64;
                }
                Output::Segment { .. } => totals.segments += 1,
                Output::Init { data, .. } => totals.bytes += data.len() as u64,
                _ => {}
            }
        }
    }
    (totals, start.elapsed())
}

/// Renders the media playlist of the rendition after each of its parts; returns
/// (renders, time spent rendering).
fn render_pass(events: &[StreamEvent]) -> (u64, Duration) {
    let mut program = Program::new(PackagerConfig::default());
    let (mut renders, mut spent) = (0u64, Duration::ZERO);
    for e in events {
        for out in program.push(e) {
            if let Output::Part { rendition, .. } = out {
                let start = Instant::now();
                if let Some(pl) = program.playlist(&rendition) {
                    let reports = program.rendition_reports(&rendition);
                    let text = render_media(
                        &pl,
                        &RenderOptions {
                            skip: false,
                            reports: &reports,
                        },
                    );
                    std::hint::black_box(text);
                    renders += 1;
                }
                spent += start.elapsed();
            }
        }
    }
    (renders, spent)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut runs = 5u32;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            _ if path.is_none() => path = Some(a),
            _ => usage(),
        }
    }
    let path = path.unwrap_or_else(|| usage());
    let file = std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("packager_bench: read {path}: {e}");
        std::process::exit(1)
    });
    let mut events = source::publish(&source::flv_tags(&file));
    events.push(StreamEvent::End);
    let frames = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Frame(_)))
        .count() as u64;
    let video = source::frame_count(&events, 0) as u64;
    let input: u64 = events
        .iter()
        .map(|e| match e {
            StreamEvent::Frame(f) => f.data.len() as u64,
            _ => 0,
        })
        .sum();

    // Warm-up, then the timed runs (best of), then one counted run.
    let _ = pass(&events);
    let mut best = Duration::MAX;
    let mut totals = Totals::default();
    for _ in 0..runs.max(1) {
        let (t, d) = pass(&events);
        best = best.min(d);
        totals = t;
    }
    let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    let _ = pass(&events);
    let (allocs, bytes) = (ALLOCS.load(Relaxed) - a0, BYTES.load(Relaxed) - b0);
    let (renders, render_time) = render_pass(&events);

    let secs = best.as_secs_f64();
    let parts = totals.parts.max(1);
    println!("frames={frames}");
    println!("video_frames={video}");
    println!("input_bytes={input}");
    println!("parts={}", totals.parts);
    println!("segments={}", totals.segments);
    println!("output_bytes={}", totals.bytes);
    println!("seconds={secs:.6}");
    println!("frames_per_s={:.0}", frames as f64 / secs);
    println!("video_frames_per_s={:.0}", video as f64 / secs);
    println!("mb_per_s={:.1}", totals.bytes as f64 / secs / 1e6);
    println!("us_per_frame={:.3}", secs * 1e6 / frames as f64);
    println!("allocs_per_part={:.1}", allocs as f64 / parts as f64);
    println!("alloc_bytes_per_part={:.0}", bytes as f64 / parts as f64);
    println!("allocs_per_frame={:.2}", allocs as f64 / frames as f64);
    println!(
        "render_us_per_playlist={:.2}",
        render_time.as_secs_f64() * 1e6 / renders.max(1) as f64
    );
}

fn usage() -> ! {
    eprintln!("usage: packager_bench FILE.flv [--runs N]");
    std::process::exit(2)
}

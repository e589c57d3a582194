//! Measures the cost of `Publisher::send`: heap bytes allocated per send must not depend
//! on the payload size (no per-subscriber copy), and time per send grows with the number
//! of subscribers, not with the payload.
//!
//! A counting global allocator sees every allocation of this test binary; the tests run
//! one at a time behind a lock so their counts do not mix.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use media::hub::{Hub, HubConfig, PublisherInfo, Subscriber};
use media::{Codec, Frame, StreamEvent, TrackInfo};

struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only adds a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

static SERIAL: Mutex<()> = Mutex::new(());

fn tracks() -> StreamEvent {
    StreamEvent::Tracks(vec![TrackInfo {
        id: 1,
        codec: Codec::H264 {
            avcc: Bytes::from_static(&[1, 0x64, 0, 0x1f]),
            width: 1920,
            height: 1080,
            fps: None,
        },
        timescale: 90_000,
    }])
}

fn frame(n: i64, data: &Bytes) -> StreamEvent {
    StreamEvent::Frame(Frame {
        track: 1,
        pts: n * 3000,
        dts: n * 3000,
        keyframe: n % 60 == 0,
        data: data.clone(),
        received: SystemTime::UNIX_EPOCH,
    })
}

struct Run {
    allocated_per_send: u64,
    time_per_send: Duration,
}

/// Sends `sends` frames of `payload_len` bytes to `subs` subscribers that read after every
/// send (so queues stay short), after a warm-up that grows every buffer to steady state.
fn run(subs: usize, payload_len: usize, sends: i64) -> Run {
    let hub = Hub::new(HubConfig::default());
    let publisher = hub
        .publish(
            "live/bench",
            PublisherInfo {
                protocol: "test",
                peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            },
        )
        .expect("publish");
    let mut readers: Vec<Subscriber> = (0..subs)
        .map(|_| hub.subscribe("live/bench").expect("live"))
        .collect();
    let payload = Bytes::from(vec![0xAB; payload_len]);
    publisher.send(tracks());
    let mut n = 0;
    let mut step = |count: i64, readers: &mut [Subscriber]| {
        for _ in 0..count {
            publisher.send(frame(n, &payload));
            n += 1;
            for r in readers.iter_mut() {
                while r.try_recv().is_some() {}
            }
        }
    };
    // Warm-up: two full GOPs, so the GOP cache and bitrate window reached their size.
    step(600, &mut readers);
    let before = ALLOCATED.load(Ordering::Relaxed);
    let start = Instant::now();
    step(sends, &mut readers);
    let elapsed = start.elapsed();
    let allocated = ALLOCATED.load(Ordering::Relaxed) - before;
    let sends_u = sends as u64;
    Run {
        allocated_per_send: allocated / sends_u,
        time_per_send: elapsed / sends as u32,
    }
}

#[test]
fn send_allocates_nothing_per_subscriber_payload() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for subs in [1, 100] {
        let small = run(subs, 16, 600);
        let big = run(subs, 256 * 1024, 600);
        eprintln!(
            "{subs} subscribers: {} B/send allocated with 16 B payloads, {} B/send with 256 KiB",
            small.allocated_per_send, big.allocated_per_send
        );
        // A single copy of the big payload per send would be 256 KiB; per subscriber,
        // 100 times that. What is allocated is queue bookkeeping, the same either way.
        assert!(big.allocated_per_send < 4096, "{}", big.allocated_per_send);
        assert!(big.allocated_per_send <= small.allocated_per_send + 64);
    }
}

#[test]
fn send_time_scales_with_subscribers_not_payload() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut per_sub = Vec::new();
    for subs in [10, 100, 1000] {
        let r = run(subs, 64 * 1024, 600);
        let each = r.time_per_send / subs as u32;
        eprintln!(
            "{subs:>5} subscribers: {:?}/send (with the readers' drain), {:?} per subscriber",
            r.time_per_send, each
        );
        per_sub.push(each);
    }
    // Linear, not worse: the per-subscriber cost does not climb with the count. A loose
    // bound, since CI machines are noisy; a quadratic fan-out would be ~100x here.
    let (first, last) = (per_sub[0], per_sub[2]);
    assert!(
        last < first * 10 + Duration::from_micros(5),
        "per-subscriber cost went from {first:?} to {last:?}"
    );
    // And the payload size does not matter: 64 B vs 1 MiB at 100 subscribers.
    let small = run(100, 64, 600).time_per_send;
    let big = run(100, 1 << 20, 600).time_per_send;
    eprintln!("100 subscribers: {small:?}/send with 64 B payloads, {big:?} with 1 MiB");
    assert!(
        big < small * 10 + Duration::from_micros(50),
        "{big:?} vs {small:?}"
    );
}

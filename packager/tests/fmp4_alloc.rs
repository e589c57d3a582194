//! Heap use of `fmp4::fragment`, counted by a global allocator: a fixed number of
//! allocations per chunk whatever the sample count, and no growth of the output buffer
//! (it is sized up front, so each payload is copied once and never moved).
//!
//! One test in its own binary, so no other test allocates while it counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use packager::fmp4::{Sample, fragment};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static REALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are
// atomics and allocate nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            REALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// (allocations, reallocations, bytes allocated) of one `fragment` call.
fn measure(samples: &[Sample]) -> (usize, usize, usize, usize) {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    REALLOCATIONS.store(0, Ordering::SeqCst);
    BYTES.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let chunk = fragment(9, 123_456, samples).expect("fragment");
    COUNTING.store(false, Ordering::SeqCst);
    (
        ALLOCATIONS.load(Ordering::SeqCst),
        REALLOCATIONS.load(Ordering::SeqCst),
        BYTES.load(Ordering::SeqCst),
        chunk.len(),
    )
}

#[test]
fn fragment_allocations_do_not_grow_with_samples() {
    for count in [1, 6, 12, 60] {
        let samples: Vec<Sample> = (0..count)
            .map(|i| Sample {
                duration: 3000,
                composition_offset: if i % 3 == 1 { 6000 } else { -3000 },
                keyframe: i == 0,
                data: Bytes::from(vec![i as u8; 1000 + 100 * i]),
            })
            .collect();
        let (allocations, reallocations, bytes, len) = measure(&samples);
        // The output buffer, the trun entries, and mp4-atom's traf and trun vectors.
        assert!(
            allocations <= 4,
            "{count} samples: {allocations} allocations"
        );
        assert_eq!(reallocations, 0, "{count} samples: the output buffer grew");
        // The output plus the trun entries (32 bytes each) and the one-element traf and
        // trun vectors (mp4-atom's `Traf` is several hundred bytes).
        let overhead = bytes - len;
        assert!(
            overhead <= 32 * count + 1024,
            "{count} samples: {bytes} bytes allocated for {len} bytes of output"
        );
    }
}

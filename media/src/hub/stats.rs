//! Per-track counters and payload bitrate for one publisher session.
//!
//! Bitrate is measured on the track's own timestamps (`dts`), not the wall clock, so it
//! reflects what the encoder produced rather than network jitter: over the frames whose
//! `dts` lies within the last [`BITRATE_WINDOW_SECS`] seconds of the newest one,
//! `bits(frames after the oldest) * timescale / (newest dts - oldest dts)`. A constant
//! bitrate stream reads exactly its bitrate. A `dts` that goes backwards, or a
//! Discontinuity, restarts the window.

use std::collections::VecDeque;

use super::TrackStats;
use crate::{Frame, TrackId, TrackInfo};

/// Span of track time the bitrate is averaged over.
pub(super) const BITRATE_WINDOW_SECS: i64 = 5;
/// Bound on the samples one window holds, whatever the timestamps do.
const MAX_WINDOW_SAMPLES: usize = 4096;

#[derive(Debug, Default)]
struct BitrateWindow {
    /// (dts, payload bytes), oldest first.
    samples: VecDeque<(i64, u64)>,
    bytes: u64,
}

impl BitrateWindow {
    fn push(&mut self, dts: i64, bytes: u64, timescale: u32) {
        if self.samples.back().is_some_and(|&(last, _)| dts < last) {
            self.reset();
        }
        self.samples.push_back((dts, bytes));
        self.bytes += bytes;
        let span = BITRATE_WINDOW_SECS.saturating_mul(i64::from(timescale));
        while let Some(&(front, b)) = self.samples.front() {
            if dts.saturating_sub(front) <= span && self.samples.len() <= MAX_WINDOW_SAMPLES {
                break;
            }
            self.samples.pop_front();
            self.bytes -= b;
        }
    }

    fn reset(&mut self) {
        self.samples.clear();
        self.bytes = 0;
    }

    fn bps(&self, timescale: u32) -> u64 {
        let (Some(&(first, first_bytes)), Some(&(last, _))) =
            (self.samples.front(), self.samples.back())
        else {
            return 0;
        };
        let Ok(span) = u128::try_from(last.saturating_sub(first)) else {
            return 0;
        };
        if span == 0 {
            return 0;
        }
        let bits = u128::from(self.bytes - first_bytes) * 8;
        u64::try_from(bits * u128::from(timescale) / span).unwrap_or(u64::MAX)
    }
}

#[derive(Debug)]
struct TrackCounters {
    info: TrackInfo,
    frames: u64,
    bytes: u64,
    window: BitrateWindow,
}

#[derive(Debug, Default)]
pub(super) struct TrackStatsSet {
    tracks: Vec<TrackCounters>,
}

impl TrackStatsSet {
    /// Adopts a new Tracks event: counters of tracks that stay (same id) carry on, others
    /// are dropped or start at zero.
    pub(super) fn set_tracks(&mut self, infos: &[TrackInfo]) {
        let mut old = std::mem::take(&mut self.tracks);
        self.tracks = infos
            .iter()
            .map(|info| match old.iter().position(|c| c.info.id == info.id) {
                Some(i) => {
                    let mut c = old.swap_remove(i);
                    if c.info.timescale != info.timescale {
                        c.window.reset();
                    }
                    c.info = info.clone();
                    c
                }
                None => TrackCounters {
                    info: info.clone(),
                    frames: 0,
                    bytes: 0,
                    window: BitrateWindow::default(),
                },
            })
            .collect();
    }

    /// Counts a frame; frames of a track no Tracks event announced are not counted.
    pub(super) fn on_frame(&mut self, frame: &Frame) {
        if let Some(c) = self.find_mut(frame.track) {
            let n = frame.data.len() as u64;
            c.frames += 1;
            c.bytes += n;
            let timescale = c.info.timescale;
            c.window.push(frame.dts, n, timescale);
        }
    }

    pub(super) fn on_discontinuity(&mut self) {
        for c in &mut self.tracks {
            c.window.reset();
        }
    }

    fn find_mut(&mut self, id: TrackId) -> Option<&mut TrackCounters> {
        self.tracks.iter_mut().find(|c| c.info.id == id)
    }

    pub(super) fn snapshot(&self) -> Vec<TrackStats> {
        self.tracks
            .iter()
            .map(|c| TrackStats {
                info: c.info.clone(),
                frames: c.frames,
                bytes: c.bytes,
                bitrate_bps: c.window.bps(c.info.timescale),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_bitrate_reads_exactly() {
        let mut w = BitrateWindow::default();
        // 30 fps at 90 kHz, 1000 bytes a frame: 240 kbit/s.
        for n in 0..1000 {
            w.push(n * 3000, 1000, 90_000);
            if n > 0 {
                assert_eq!(w.bps(90_000), 240_000, "after {n} frames");
            }
        }
        // The window holds only the last 5 s of track time.
        assert_eq!(w.samples.len(), 151);
    }

    #[test]
    fn bitrate_follows_a_change_within_the_window() {
        let mut w = BitrateWindow::default();
        for n in 0..300 {
            w.push(n * 3000, 1000, 90_000);
        }
        for n in 300..600 {
            w.push(n * 3000, 2000, 90_000);
        }
        assert_eq!(w.bps(90_000), 480_000);
    }

    #[test]
    fn backwards_dts_and_degenerate_input_do_not_panic() {
        let mut w = BitrateWindow::default();
        assert_eq!(w.bps(90_000), 0);
        w.push(i64::MAX, 10, 90_000);
        w.push(i64::MIN, 10, 90_000);
        assert_eq!(w.samples.len(), 1);
        w.push(i64::MAX, 10, 0);
        assert_eq!(w.bps(0), 0);
        for _ in 0..10_000 {
            w.push(i64::MAX, 10, 90_000);
        }
        assert!(w.samples.len() <= MAX_WINDOW_SAMPLES);
        assert_eq!(w.bps(90_000), 0, "no time elapsed");
    }
}

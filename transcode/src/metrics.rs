//! Prometheus metrics of the ladders, registered into a registry the binary gives.
use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// The transcode metrics (cheap to clone: handles to the same collectors).
#[derive(Clone)]
pub struct TranscodeMetrics {
    /// `ferrocast_transcode_realtime_ratio{stream,rung}`: media seconds a rung produced
    /// per wall-clock second, over windows of about 2 s (below 1: falling behind).
    pub realtime_ratio: GaugeVec,
    /// `ferrocast_transcode_encode_latency_seconds{rung}`: from a source frame entering the
    /// pipeline to the rung frame of the same picture leaving it.
    pub encode_latency: HistogramVec,
    /// `ferrocast_transcode_frames_in_flight{stream}`: source frames pushed that the
    /// slowest rung has not produced yet.
    pub frames_in_flight: IntGaugeVec,
    /// `ferrocast_transcode_restarts_total{stream}`: ladder rebuilds after a pipeline error.
    pub restarts: IntCounterVec,
}

impl TranscodeMetrics {
    /// Creates the collectors and registers them into `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<TranscodeMetrics> {
        let m = TranscodeMetrics {
            realtime_ratio: GaugeVec::new(
                Opts::new(
                    "ferrocast_transcode_realtime_ratio",
                    "Media seconds produced per wall-clock second, per rung",
                ),
                &["stream", "rung"],
            )?,
            encode_latency: HistogramVec::new(
                HistogramOpts::new(
                    "ferrocast_transcode_encode_latency_seconds",
                    "Source frame into the ladder to rung frame out",
                )
                .buckets(vec![
                    0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56,
                ]),
                &["rung"],
            )?,
            frames_in_flight: IntGaugeVec::new(
                Opts::new(
                    "ferrocast_transcode_frames_in_flight",
                    "Source frames in the ladder not yet produced by its slowest rung",
                ),
                &["stream"],
            )?,
            restarts: IntCounterVec::new(
                Opts::new(
                    "ferrocast_transcode_restarts_total",
                    "Ladder rebuilds after a pipeline error",
                ),
                &["stream"],
            )?,
        };
        registry.register(Box::new(m.realtime_ratio.clone()))?;
        registry.register(Box::new(m.encode_latency.clone()))?;
        registry.register(Box::new(m.frames_in_flight.clone()))?;
        registry.register(Box::new(m.restarts.clone()))?;
        Ok(m)
    }

    /// Drops the per-stream series of a ladder that ended.
    pub(crate) fn forget_stream(&self, stream: &str, rungs: &[String]) {
        for r in rungs {
            let _ = self.realtime_ratio.remove_label_values(&[stream, r]);
        }
        let _ = self.frames_in_flight.remove_label_values(&[stream]);
    }
}

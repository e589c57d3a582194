//! The origin's Prometheus metrics.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `ferrocast_http_requests_total` | counter | `kind`, `code` |
//! | `ferrocast_http_bytes_sent_total` | counter | `kind` |
//! | `ferrocast_blocking_requests` | gauge | (open blocking playlist and preload-hint waits) |
//! | `ferrocast_http_connections` | gauge | (open client connections, both ports) |
//! | `ferrocast_part_publish_delay_seconds` | histogram | (last frame of a part received -> part servable; observed by the driver) |
//!
//! `kind` is one of [`RequestKind`]'s labels. Bytes are counted as the response bodies'
//! lengths when the response is made (a client that goes away early is still counted).
use http::StatusCode;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

/// What a request asked for: the `kind` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    Multivariant,
    Playlist,
    /// A media playlist request with `_HLS_msn` [S §6.2.5.2].
    BlockingPlaylist,
    Part,
    Segment,
    Init,
    /// The page and its assets (routes merged from [`crate::HttpState::extra_routes`]).
    Page,
    Other,
}

impl RequestKind {
    pub fn label(self) -> &'static str {
        match self {
            RequestKind::Multivariant => "multivariant",
            RequestKind::Playlist => "playlist",
            RequestKind::BlockingPlaylist => "blocking_playlist",
            RequestKind::Part => "part",
            RequestKind::Segment => "segment",
            RequestKind::Init => "init",
            RequestKind::Page => "page",
            RequestKind::Other => "other",
        }
    }
}

/// The origin's metrics; cheap to clone (the metric handles are shared).
#[derive(Clone)]
pub struct OriginMetrics {
    requests: IntCounterVec,
    bytes: IntCounterVec,
    blocking: IntGauge,
    connections: IntGauge,
    part_delay: Histogram,
}

impl Default for OriginMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl OriginMetrics {
    pub fn new() -> OriginMetrics {
        // The options below are constant and valid, so construction cannot fail; the
        // fallbacks only exist to avoid a panic path.
        let requests = IntCounterVec::new(
            Opts::new(
                "ferrocast_http_requests_total",
                "HTTP requests answered by the origin, by kind and status code",
            ),
            &["kind", "code"],
        );
        let bytes = IntCounterVec::new(
            Opts::new(
                "ferrocast_http_bytes_sent_total",
                "Response body bytes sent by the origin, by kind",
            ),
            &["kind"],
        );
        let blocking = IntGauge::new(
            "ferrocast_blocking_requests",
            "Open blocking playlist reloads and preload-hint part requests",
        );
        let connections =
            IntGauge::new("ferrocast_http_connections", "Open HTTP client connections");
        let part_delay = Histogram::with_opts(
            HistogramOpts::new(
                "ferrocast_part_publish_delay_seconds",
                "Delay from the last frame of a part being received to the part being servable",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        );
        const VALID: &str = "constant metric options are valid";
        OriginMetrics {
            requests: requests.expect(VALID),
            bytes: bytes.expect(VALID),
            blocking: blocking.expect(VALID),
            connections: connections.expect(VALID),
            part_delay: part_delay.expect(VALID),
        }
    }

    /// Registers every metric with `registry`.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.requests.clone()))?;
        registry.register(Box::new(self.bytes.clone()))?;
        registry.register(Box::new(self.blocking.clone()))?;
        registry.register(Box::new(self.connections.clone()))?;
        registry.register(Box::new(self.part_delay.clone()))?;
        Ok(())
    }

    /// One answered request.
    pub fn request(&self, kind: RequestKind, code: StatusCode, body_bytes: u64) {
        self.requests
            .with_label_values(&[kind.label(), code.as_str()])
            .inc();
        if body_bytes > 0 {
            self.bytes
                .with_label_values(&[kind.label()])
                .inc_by(body_bytes);
        }
    }

    /// The driver's observation: seconds from the last frame of a part being received to
    /// the part being in the store.
    pub fn observe_part_delay(&self, secs: f64) {
        self.part_delay.observe(secs);
    }

    /// Open blocking waits now.
    pub fn blocking_requests(&self) -> i64 {
        self.blocking.get()
    }

    /// Open connections now.
    pub fn connections(&self) -> i64 {
        self.connections.get()
    }

    /// Requests answered so far with this kind and code.
    pub fn requests(&self, kind: RequestKind, code: StatusCode) -> u64 {
        self.requests
            .with_label_values(&[kind.label(), code.as_str()])
            .get()
    }

    /// Counts one open blocking wait until the guard is dropped (also when the request
    /// future is dropped because the client went away).
    pub(crate) fn blocking_guard(&self) -> GaugeGuard {
        GaugeGuard::new(self.blocking.clone())
    }

    pub(crate) fn connection_guard(&self) -> GaugeGuard {
        GaugeGuard::new(self.connections.clone())
    }
}

/// Increments a gauge now, decrements it on drop.
pub(crate) struct GaugeGuard(IntGauge);

impl GaugeGuard {
    fn new(g: IntGauge) -> GaugeGuard {
        g.inc();
        GaugeGuard(g)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_counts() {
        let m = OriginMetrics::new();
        let registry = Registry::new();
        m.register(&registry).expect("register");
        m.request(RequestKind::Part, StatusCode::OK, 1000);
        m.request(RequestKind::Part, StatusCode::OK, 24);
        m.request(
            RequestKind::BlockingPlaylist,
            StatusCode::SERVICE_UNAVAILABLE,
            0,
        );
        assert_eq!(m.requests(RequestKind::Part, StatusCode::OK), 2);
        assert_eq!(
            m.requests(
                RequestKind::BlockingPlaylist,
                StatusCode::SERVICE_UNAVAILABLE
            ),
            1
        );
        {
            let _g = m.blocking_guard();
            assert_eq!(m.blocking_requests(), 1);
        }
        assert_eq!(m.blocking_requests(), 0);
        m.observe_part_delay(0.002);
        let families = registry.gather();
        let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        for want in [
            "ferrocast_http_requests_total",
            "ferrocast_http_bytes_sent_total",
            "ferrocast_blocking_requests",
            "ferrocast_http_connections",
            "ferrocast_part_publish_delay_seconds",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let bytes = families
            .iter()
            .find(|f| f.name() == "ferrocast_http_bytes_sent_total")
            .expect("bytes family");
        assert_eq!(bytes.get_metric()[0].get_counter().get_value(), 1024.0);
    }
}

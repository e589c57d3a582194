//! Prometheus metrics, read from the hub and the authenticator at scrape time.
//!
//! Nothing on the media path touches a metric: [`HubCollector`] takes a
//! [`Hub::streams`] snapshot when `/metrics` is scraped and turns it into:
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `ferrocast_ingest_streams` | gauge | |
//! | `ferrocast_ingest_frames_total` | counter | `stream`, `track` |
//! | `ferrocast_ingest_bytes_total` | counter | `stream`, `protocol` |
//! | `ferrocast_ingest_subscribers` | gauge | `stream` |
//! | `ferrocast_hub_dropped_frames_total` | counter | |
//! | `ferrocast_ingest_publish_attempts_total` | counter | `protocol`, `result` (`allowed`, `denied`) |
//! | `ferrocast_ingest_rtt_seconds` | gauge | `stream`, `protocol` |
//! | `ferrocast_ingest_packets_lost_total` | counter | `stream`, `protocol` |
//! | `ferrocast_ingest_packets_retransmitted_total` | counter | `stream`, `protocol` |
//! | `ferrocast_ingest_packets_dropped_total` | counter | `stream`, `protocol` |
//! | `ferrocast_ingest_receive_bitrate_bps` | gauge | `stream`, `protocol` |
//! | `ferrocast_ingest_ts_continuity_errors_total` | counter | `stream`, `protocol` |
//! | `ferrocast_ingest_ts_resyncs_total` | counter | `stream`, `protocol` |
//!
//! The transport rows exist only for streams whose publisher reports
//! [`media::hub::TransportStats`] (SRT); see `ingest::srt::server` for what each means there.
//!
//! The origin's own metrics (`ferrocast_http_requests_total{kind,code}`,
//! `ferrocast_http_bytes_sent_total{kind}`, `ferrocast_blocking_requests`,
//! `ferrocast_http_connections`, `ferrocast_part_publish_delay_seconds`) are
//! [`origin::OriginMetrics`], registered into the same registry by [`crate::app::App::bind`].
//!
//! The `track` label is the track's kind, `video` or `audio`; a stream with more than one
//! track of a kind labels them `video-<id>`, `audio-<id>` (track ids are per stream).
//! `ferrocast_ingest_bytes_total` counts wire bytes of the current publisher, and per
//! stream counters restart when a publisher takes a stream over (Prometheus' `rate()`
//! handles the reset). On Linux the `process_*` metrics (CPU, memory, file descriptors)
//! are included.
use std::sync::{Arc, Mutex, PoisonError};

use ingest::auth::Authenticator;
use media::MediaKind;
use media::hub::{Hub, StreamSnapshot};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// The `track` label of each track of a stream, in track order.
pub fn track_labels(stream: &StreamSnapshot) -> Vec<String> {
    let kind = |k: MediaKind| match k {
        MediaKind::Video => "video",
        MediaKind::Audio => "audio",
    };
    stream
        .tracks
        .iter()
        .map(|t| {
            let k = t.info.codec.kind();
            let same_kind = stream
                .tracks
                .iter()
                .filter(|o| o.info.codec.kind() == k)
                .count();
            if same_kind > 1 {
                format!("{}-{}", kind(k), t.info.id)
            } else {
                kind(k).to_string()
            }
        })
        .collect()
}

struct Families {
    streams: IntGauge,
    frames: IntCounterVec,
    bytes: IntCounterVec,
    subscribers: IntGaugeVec,
    dropped: IntCounter,
    publish: IntCounterVec,
    transport: TransportFamilies,
}

/// Families from [`media::hub::TransportStats`], labelled `stream`, `protocol`.
struct TransportFamilies {
    rtt: GaugeVec,
    lost: IntCounterVec,
    retransmitted: IntCounterVec,
    dropped: IntCounterVec,
    bitrate: IntGaugeVec,
    continuity: IntCounterVec,
    resyncs: IntCounterVec,
}

impl TransportFamilies {
    fn new() -> prometheus::Result<Self> {
        const LABELS: &[&str] = &["stream", "protocol"];
        let counter = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), LABELS);
        Ok(TransportFamilies {
            rtt: GaugeVec::new(
                Opts::new(
                    "ferrocast_ingest_rtt_seconds",
                    "Round-trip time to the publisher, as its transport measures it.",
                ),
                LABELS,
            )?,
            lost: counter(
                "ferrocast_ingest_packets_lost_total",
                "Data packets from the publisher found missing (recovered or not).",
            )?,
            retransmitted: counter(
                "ferrocast_ingest_packets_retransmitted_total",
                "Retransmitted data packets received from the publisher.",
            )?,
            dropped: counter(
                "ferrocast_ingest_packets_dropped_total",
                "Data packets from the publisher lost for good (too late or never).",
            )?,
            bitrate: IntGaugeVec::new(
                Opts::new(
                    "ferrocast_ingest_receive_bitrate_bps",
                    "Receive bitrate from the publisher over the last report interval.",
                ),
                LABELS,
            )?,
            continuity: counter(
                "ferrocast_ingest_ts_continuity_errors_total",
                "MPEG-TS continuity counter errors in the publisher's stream.",
            )?,
            resyncs: counter(
                "ferrocast_ingest_ts_resyncs_total",
                "Times the MPEG-TS demuxer lost and regained packet sync.",
            )?,
        })
    }

    fn descs(&self) -> Vec<Desc> {
        let mut d = Vec::new();
        d.extend(self.rtt.desc().into_iter().cloned());
        d.extend(self.lost.desc().into_iter().cloned());
        d.extend(self.retransmitted.desc().into_iter().cloned());
        d.extend(self.dropped.desc().into_iter().cloned());
        d.extend(self.bitrate.desc().into_iter().cloned());
        d.extend(self.continuity.desc().into_iter().cloned());
        d.extend(self.resyncs.desc().into_iter().cloned());
        d
    }

    fn reset(&self) {
        self.rtt.reset();
        self.lost.reset();
        self.retransmitted.reset();
        self.dropped.reset();
        self.bitrate.reset();
        self.continuity.reset();
        self.resyncs.reset();
    }

    fn observe(&self, s: &StreamSnapshot) {
        let Some(t) = &s.transport else { return };
        let labels = [s.name.as_str(), s.protocol];
        if let Some(rtt) = t.rtt {
            self.rtt.with_label_values(&labels).set(rtt.as_secs_f64());
        }
        self.lost.with_label_values(&labels).inc_by(t.packets_lost);
        self.retransmitted
            .with_label_values(&labels)
            .inc_by(t.packets_retransmitted);
        self.dropped
            .with_label_values(&labels)
            .inc_by(t.packets_dropped);
        self.bitrate
            .with_label_values(&labels)
            .set(i64::try_from(t.receive_bitrate_bps).unwrap_or(i64::MAX));
        self.continuity
            .with_label_values(&labels)
            .inc_by(t.ts_continuity_errors);
        self.resyncs.with_label_values(&labels).inc_by(t.ts_resyncs);
    }

    fn collect(&self, out: &mut Vec<MetricFamily>) {
        out.extend(self.rtt.collect());
        out.extend(self.lost.collect());
        out.extend(self.retransmitted.collect());
        out.extend(self.dropped.collect());
        out.extend(self.bitrate.collect());
        out.extend(self.continuity.collect());
        out.extend(self.resyncs.collect());
    }
}

/// A [`Collector`] that reads the hub and the authenticator when scraped.
pub struct HubCollector {
    hub: Hub,
    auth: Option<Arc<Authenticator>>,
    descs: Vec<Desc>,
    /// Filled at each scrape; the lock keeps two scrapes from mixing their values.
    families: Mutex<Families>,
}

impl HubCollector {
    pub fn new(hub: Hub, auth: Option<Arc<Authenticator>>) -> prometheus::Result<Self> {
        let families = Families {
            streams: IntGauge::with_opts(Opts::new(
                "ferrocast_ingest_streams",
                "Streams with a publisher.",
            ))?,
            frames: IntCounterVec::new(
                Opts::new(
                    "ferrocast_ingest_frames_total",
                    "Frames received per stream and track.",
                ),
                &["stream", "track"],
            )?,
            bytes: IntCounterVec::new(
                Opts::new(
                    "ferrocast_ingest_bytes_total",
                    "Bytes received from the publisher of each stream.",
                ),
                &["stream", "protocol"],
            )?,
            subscribers: IntGaugeVec::new(
                Opts::new(
                    "ferrocast_ingest_subscribers",
                    "Subscribers reading each stream.",
                ),
                &["stream"],
            )?,
            dropped: IntCounter::with_opts(Opts::new(
                "ferrocast_hub_dropped_frames_total",
                "Frames dropped for slow subscribers, all streams.",
            ))?,
            publish: IntCounterVec::new(
                Opts::new(
                    "ferrocast_ingest_publish_attempts_total",
                    "Publish attempts decided by auth, per protocol and result.",
                ),
                &["protocol", "result"],
            )?,
            transport: TransportFamilies::new()?,
        };
        let mut descs = Vec::new();
        descs.extend(families.streams.desc().into_iter().cloned());
        descs.extend(families.frames.desc().into_iter().cloned());
        descs.extend(families.bytes.desc().into_iter().cloned());
        descs.extend(families.subscribers.desc().into_iter().cloned());
        descs.extend(families.dropped.desc().into_iter().cloned());
        descs.extend(families.publish.desc().into_iter().cloned());
        descs.extend(families.transport.descs());
        Ok(HubCollector {
            hub,
            auth,
            descs,
            families: Mutex::new(families),
        })
    }
}

impl Collector for HubCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut streams = self.hub.streams();
        streams.sort_by(|a, b| a.name.cmp(&b.name));
        let f = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        f.frames.reset();
        f.bytes.reset();
        f.subscribers.reset();
        f.publish.reset();
        f.transport.reset();
        f.streams
            .set(i64::try_from(streams.len()).unwrap_or(i64::MAX));
        for s in &streams {
            for (t, label) in s.tracks.iter().zip(track_labels(s)) {
                f.frames
                    .with_label_values(&[&s.name, &label])
                    .inc_by(t.frames);
            }
            f.bytes
                .with_label_values(&[&s.name, s.protocol])
                .inc_by(s.bytes_in);
            f.subscribers
                .with_label_values(&[&s.name])
                .set(i64::try_from(s.subscribers).unwrap_or(i64::MAX));
            f.transport.observe(s);
        }
        f.dropped.reset();
        f.dropped.inc_by(self.hub.dropped_frames_total());
        if let Some(auth) = &self.auth {
            for d in auth.decisions() {
                f.publish
                    .with_label_values(&[d.protocol, "allowed"])
                    .inc_by(d.allowed);
                f.publish
                    .with_label_values(&[d.protocol, "denied"])
                    .inc_by(d.denied);
            }
        }
        let mut out = Vec::new();
        out.extend(f.streams.collect());
        out.extend(f.frames.collect());
        out.extend(f.bytes.collect());
        out.extend(f.subscribers.collect());
        out.extend(f.dropped.collect());
        out.extend(f.publish.collect());
        f.transport.collect(&mut out);
        out
    }
}

/// A registry with the [`HubCollector`] and, where available, the process collector.
pub fn registry(hub: Hub, auth: Option<Arc<Authenticator>>) -> prometheus::Result<Registry> {
    let registry = Registry::new();
    registry.register(Box::new(HubCollector::new(hub, auth)?))?;
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    Ok(registry)
}

/// The registry's metrics in the Prometheus text exposition format.
pub fn render(registry: &Registry) -> Result<String, prometheus::Error> {
    prometheus::TextEncoder::new().encode_to_string(&registry.gather())
}

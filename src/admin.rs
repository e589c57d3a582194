//! The admin HTTP server (default `127.0.0.1:8081`): health, readiness, metrics, API.
//!
//! - `GET /healthz`: `200 ok` while the process runs.
//! - `GET /readyz`: `200 ready` once the listeners are bound and until draining starts;
//!   `503 starting` before, `503 draining` after.
//! - `GET /metrics`: Prometheus text format (see [`crate::metrics`]).
//! - `GET /api/v1/streams`: the live streams as JSON, sorted by name ([`StreamInfo`]).
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::SystemTime;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use media::MediaKind;
use media::hub::{Hub, StreamSnapshot};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Where the process is in its life, as `/readyz` reports it.
#[derive(Debug, Default)]
pub struct Readiness(AtomicU8);

const STARTING: u8 = 0;
const READY: u8 = 1;
const DRAINING: u8 = 2;

impl Readiness {
    pub fn set_ready(&self) {
        // Never leave draining: a late `set_ready` must not reopen a closing server.
        let _ = self
            .0
            .compare_exchange(STARTING, READY, Ordering::SeqCst, Ordering::SeqCst);
    }
    pub fn set_draining(&self) {
        self.0.store(DRAINING, Ordering::SeqCst);
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst) == READY
    }
    fn describe(&self) -> &'static str {
        match self.0.load(Ordering::SeqCst) {
            STARTING => "starting",
            READY => "ready",
            _ => "draining",
        }
    }
}

/// What the admin handlers read.
#[derive(Clone)]
pub struct AdminState {
    pub hub: Hub,
    pub registry: prometheus::Registry,
    pub readiness: Arc<Readiness>,
}

/// One stream of `/api/v1/streams`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamInfo {
    pub name: String,
    pub protocol: String,
    /// `ip:port` of the publisher.
    pub peer: String,
    pub uptime_seconds: u64,
    pub bytes_in: u64,
    pub subscribers: usize,
    pub dropped_frames: u64,
    pub tracks: Vec<TrackInfoJson>,
    /// Figures of a packet transport (SRT), `null` for publishers that report none.
    pub transport: Option<TransportJson>,
}

/// The [`media::hub::TransportStats`] of a [`StreamInfo`]: counters since the
/// connection started, the bitrate over the last report interval.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TransportJson {
    pub rtt_ms: Option<f64>,
    pub packets_received: u64,
    pub packets_lost: u64,
    pub packets_retransmitted: u64,
    pub packets_dropped: u64,
    pub receive_bitrate_bps: u64,
    pub ts_continuity_errors: u64,
    pub ts_resyncs: u64,
}

/// One track of a [`StreamInfo`]. Fields that do not apply to the track's kind, or that
/// the bitstream does not signal (`fps`), are `null`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrackInfoJson {
    pub id: u32,
    /// `video` or `audio`.
    pub kind: &'static str,
    /// RFC 6381 codec string, e.g. `avc1.64001F`, `mp4a.40.2`.
    pub codec: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
    pub bitrate_bps: u64,
    pub frames: u64,
}

impl StreamInfo {
    pub fn from_snapshot(s: &StreamSnapshot, now: SystemTime) -> StreamInfo {
        StreamInfo {
            name: s.name.clone(),
            protocol: s.protocol.to_string(),
            peer: s.peer.to_string(),
            uptime_seconds: now.duration_since(s.started).map_or(0, |d| d.as_secs()),
            bytes_in: s.bytes_in,
            subscribers: s.subscribers,
            dropped_frames: s.dropped_frames,
            tracks: s
                .tracks
                .iter()
                .map(|t| {
                    let codec = &t.info.codec;
                    let dims = codec.dimensions();
                    let audio = codec.audio();
                    TrackInfoJson {
                        id: t.info.id,
                        kind: match codec.kind() {
                            MediaKind::Video => "video",
                            MediaKind::Audio => "audio",
                        },
                        codec: codec.rfc6381(),
                        width: dims.map(|d| d.0),
                        height: dims.map(|d| d.1),
                        fps: codec.fps().map(|f| f.as_f64()),
                        sample_rate: audio.map(|a| a.0),
                        channels: audio.map(|a| a.1),
                        bitrate_bps: t.bitrate_bps,
                        frames: t.frames,
                    }
                })
                .collect(),
            transport: s.transport.as_ref().map(|t| TransportJson {
                rtt_ms: t.rtt.map(|d| d.as_secs_f64() * 1000.0),
                packets_received: t.packets_received,
                packets_lost: t.packets_lost,
                packets_retransmitted: t.packets_retransmitted,
                packets_dropped: t.packets_dropped,
                receive_bitrate_bps: t.receive_bitrate_bps,
                ts_continuity_errors: t.ts_continuity_errors,
                ts_resyncs: t.ts_resyncs,
            }),
        }
    }
}

/// The admin routes over `state`.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/streams", get(streams))
        .with_state(state)
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let status = if state.readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, format!("{}\n", state.readiness.describe())).into_response()
}

async fn metrics(State(state): State<AdminState>) -> Response {
    match crate::metrics::render(&state.registry) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot render metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("metrics: {e}\n")).into_response()
        }
    }
}

async fn streams(State(state): State<AdminState>) -> Json<Vec<StreamInfo>> {
    let now = SystemTime::now();
    let mut streams: Vec<StreamInfo> = state
        .hub
        .streams()
        .iter()
        .map(|s| StreamInfo::from_snapshot(s, now))
        .collect();
    streams.sort_by(|a, b| a.name.cmp(&b.name));
    Json(streams)
}

/// Serves the admin routes on `listener` until `shutdown` is cancelled, then finishes the
/// requests in flight and returns.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::debug!(?addr, "admin server running");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

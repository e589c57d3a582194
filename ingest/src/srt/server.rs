//! The SRT listener: one UDP port, many publishers, each an MPEG-TS stream on the hub.
//!
//! [`bind`] opens the UDP socket (so a busy port fails at startup) and starts
//! srt-tokio's multiplexing listener on it; [`run`] answers its connection requests until
//! shutdown. Each request is decided before the SRT handshake completes, in its own task
//! (a webhook may be slow; the listener loop never waits on it):
//!
//! 1. the connection limit (`max_connections`; over it: `SRT_REJ_OVERLOAD`-class reject),
//! 2. the stream id ([`super::streamid`]; unusable: reject 2400 "bad request", playback
//!    `m=request`: 2405 "bad mode"),
//! 3. [`Authenticator::authorize`] with protocol `srt` (denied: 2401 "unauthorized"),
//! 4. a name already live with takeover off (2409 "conflict"),
//! 5. encryption: the stream's passphrase (`passphrases`, else `passphrase`) against
//!    what the caller announces. A key shorter than `key_length`, or an announced key for
//!    a stream without a passphrase, is refused with `SRT_REJ_UNSECURE` (1011). A wrong
//!    passphrase (or none) for a protected stream is found by srt-tokio when it unwraps
//!    the caller's keying material: the caller gets `SRT_REJ_BADSECRET` (1010) or
//!    `SRT_REJ_UNSECURE`, and we log "wrong passphrase, or the caller does not encrypt".
//!
//! Only then is the hub name claimed (a refused caller never evicts a live publisher).
//! Per connection, SRT messages go through [`TsDemuxer`] and [`EsFrames`] to the hub.
//! Every statistics report of the SRT socket (once a second) refreshes the stream's
//! [`TransportStats`]. A publisher that sends no media for `idle_timeout_ms` is dropped;
//! takeover and shutdown end the connection as for RTMP.
//!
//! srt-tokio 0.4 gaps worked around here: its receiver never counts lost packets
//! (`rx_loss_data` stays 0), so "lost" is reported as packets recovered by retransmission
//! plus packets dropped too late; it keeps no running RTT, so the RTT shown is the one
//! measured during the handshake; and its listener task panics (`unimplemented!()`) on
//! a caller whose key size differs from the one we accept with (so we always accept
//! with the caller's), and on a caller that encrypts without announcing it (libsrt
//! without `pbkeylen`) to a stream that has no passphrase: the request does not show
//! that. [`run`] then restarts the listener on the same port (connections of the old
//! one end), so SRT ingest recovers instead of staying down. Setting a global
//! `passphrase` avoids the case altogether.
use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use media::hub::{Hub, Publisher, PublisherInfo, TransportStats};
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::options::KeySize;
use srt_tokio::{ConnectionRequest, SocketStatistics, SrtIncoming, SrtListener, SrtSocket};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, error, info, info_span, warn};

use super::SrtConfig;
use super::streamid;
use crate::auth::{Authenticator, PublishRequest};
use crate::mpegts::{EsFrames, EsKind, TsDemuxer, TsEvent};

/// The protocol label used for the hub, auth and metrics.
pub const PROTOCOL: &str = "srt";
/// How long the end of an accepted handshake may take (the caller's conclusion).
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long closing a connection may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// libsrt's `SRT_REJ_UNSECURE`: encryption expected on one side only.
const REJ_UNSECURE: i32 = 1011;

/// What every SRT connection shares.
#[derive(Clone)]
pub struct SrtServer {
    pub hub: Hub,
    pub auth: Arc<Authenticator>,
    pub config: SrtConfig,
}

/// A bound SRT listener, not yet answering (see [`run`]).
pub struct SrtBinding {
    listener: SrtListener,
    incoming: SrtIncoming,
    local: SocketAddr,
}

impl SrtBinding {
    /// The UDP address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl fmt::Debug for SrtBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtBinding")
            .field("local", &self.local)
            .finish()
    }
}

/// Binds `config.listen` (UDP) and starts the SRT listener on it. Connection requests
/// wait (bounded by srt-tokio's queue of 100) until [`run`] takes them.
pub async fn bind(config: &SrtConfig) -> io::Result<SrtBinding> {
    let socket = tokio::net::UdpSocket::bind(config.listen).await?;
    let local = socket.local_addr()?;
    let (listener, incoming) = SrtListener::builder()
        .latency(config.latency())
        .socket(socket)
        .bind(local)
        .await?;
    Ok(SrtBinding {
        listener,
        incoming,
        local,
    })
}

/// Answers SRT connection requests until `shutdown` is cancelled, then closes every
/// publisher (their streams end) and returns once every connection task has finished.
/// Returns an error if the srt-tokio listener stopped by itself.
pub async fn run(
    binding: SrtBinding,
    server: SrtServer,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let server = Arc::new(server);
    let slots = Arc::new(Semaphore::new(server.config.max_connections));
    let tracker = TaskTracker::new();
    let mut refused_logged = RateLimit::new(Duration::from_secs(5));
    let mut binding = Some(binding);
    while let Some(SrtBinding {
        listener,
        mut incoming,
        local,
    }) = binding.take()
    {
        loop {
            let request = tokio::select! {
                _ = shutdown.cancelled() => break,
                request = incoming.incoming().next() => match request {
                    Some(request) => request,
                    None => {
                        error!(%local, "srt listener task stopped; restarting it");
                        break;
                    }
                },
            };
            let peer = request.remote();
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                if refused_logged.ready() {
                    warn!(%peer, limit = server.config.max_connections, "srt connection refused: connection limit reached");
                }
                tracker.spawn(async move {
                    let _ = request
                        .reject(RejectReason::Server(ServerRejectReason::Overload))
                        .await;
                });
                continue;
            };
            let server = server.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(
                async move {
                    let _permit = permit;
                    serve_request(&server, request, &shutdown).await;
                }
                .instrument(info_span!("srt", %peer)),
            );
        }
        // Dropping (not `close()`, which unwraps the task's result) stops the listener.
        drop(listener);
        if shutdown.is_cancelled() {
            break;
        }
        binding = rebind(&server.config, local, &shutdown).await;
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Binds the SRT listener again after its task died (srt-tokio 0.4 panics on some
/// handshakes, see the module docs). The port is free once the old connections, which
/// share its socket, have timed out; until then, retry once a second.
async fn rebind(
    config: &SrtConfig,
    local: SocketAddr,
    shutdown: &CancellationToken,
) -> Option<SrtBinding> {
    let config = SrtConfig {
        listen: local,
        ..config.clone()
    };
    let mut logged = RateLimit::new(Duration::from_secs(10));
    loop {
        match bind(&config).await {
            Ok(binding) => {
                warn!(%local, "srt listener restarted");
                return Some(binding);
            }
            Err(error) => {
                if logged.ready() {
                    warn!(%local, %error, "srt listener cannot rebind yet; retrying");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// A refused connection request: the reject code the caller sees, and our log's reason.
struct Refusal {
    code: RejectReason,
    reason: String,
}

impl Refusal {
    fn server(code: ServerRejectReason, reason: impl Into<String>) -> Self {
        Refusal {
            code: RejectReason::Server(code),
            reason: reason.into(),
        }
    }

    fn core(code: i32, reason: impl Into<String>) -> Self {
        Refusal {
            code: RejectReason::CoreUnrecognized(code),
            reason: reason.into(),
        }
    }
}

/// An admitted request: the public name, and the encryption to accept it with.
struct Admitted {
    name: String,
    passphrase: Option<(String, KeySize)>,
}

async fn serve_request(
    server: &SrtServer,
    request: ConnectionRequest,
    shutdown: &CancellationToken,
) {
    let peer = request.remote();
    let admitted = match admit(server, &request).await {
        Ok(admitted) => admitted,
        Err(refusal) => {
            warn!(reason = %refusal.reason, code = i32::from(refusal.code), "srt connection refused");
            // The caller may already be gone; the log is what matters here.
            let _ = request.reject(refusal.code).await;
            return;
        }
    };
    let key_settings = admitted.passphrase.as_ref().and_then(|(passphrase, size)| {
        // Both were checked: the passphrase by config validation, the size in `admit`.
        // The caller's own announcement, "unspecified" included: srt-tokio aborts on a
        // key size that differs from the caller's.
        let bytes = match size {
            KeySize::Unspecified => 0,
            KeySize::AES128 => 16,
            KeySize::AES192 => 24,
            KeySize::AES256 => 32,
        };
        srt_tokio::access::AcceptParameters::new()
            .set_key_settings(passphrase.clone(), bytes)
            .take_key_settings()
    });
    let encrypted = key_settings.is_some();
    let socket = match tokio::time::timeout(ACCEPT_TIMEOUT, request.accept(key_settings)).await {
        Ok(Ok(socket)) => socket,
        Ok(Err(error)) if encrypted => {
            // srt-tokio refused it while unwrapping the caller's keys: a wrong passphrase
            // (SRT_REJ_BADSECRET), or no encryption at all (SRT_REJ_UNSECURE).
            warn!(stream = %admitted.name, %error, "srt connection refused: wrong passphrase, or the caller does not encrypt");
            return;
        }
        Ok(Err(error)) => {
            warn!(stream = %admitted.name, %error, "srt connection failed during the handshake");
            return;
        }
        Err(_) => {
            warn!(stream = %admitted.name, after = ?ACCEPT_TIMEOUT, "srt handshake did not complete");
            return;
        }
    };
    let info = PublisherInfo {
        protocol: PROTOCOL,
        peer,
    };
    let publisher = match server.hub.publish(&admitted.name, info) {
        Ok(publisher) => publisher,
        Err(busy) => {
            warn!(stream = %admitted.name, reason = %busy, "srt connection closed: stream is busy");
            close(socket).await;
            return;
        }
    };
    info!(stream = %admitted.name, encrypted, latency_ms = socket.settings().recv_tsbpd_latency.as_millis() as u64, "srt publish started");
    let mut connection = Connection::new(publisher, server.config.idle_timeout());
    let closed = connection.run(socket, shutdown).await;
    let totals = connection.totals();
    match closed {
        Ok(reason) => info!(%reason, %totals, "srt connection closed"),
        Err(error) => warn!(%error, %totals, "srt connection closed on error"),
    }
}

/// Decides a connection request (see the module docs for the order and the codes).
async fn admit(server: &SrtServer, request: &ConnectionRequest) -> Result<Admitted, Refusal> {
    let stream_id = request.stream_id().map(|id| id.as_str()).unwrap_or("");
    let target = streamid::parse(stream_id).map_err(|e| {
        let code = match e {
            streamid::StreamIdError::Mode { .. } => ServerRejectReason::BadMode,
            _ => ServerRejectReason::BadRequest,
        };
        Refusal::server(code, format!("stream id: {e}"))
    })?;
    let publish = PublishRequest {
        app: &target.app,
        key: &target.key,
        protocol: PROTOCOL,
        peer: request.remote(),
    };
    let name = server
        .auth
        .authorize(&publish)
        .await
        .map_err(|denied| Refusal::server(ServerRejectReason::Unauthorized, denied.reason))?;
    if !server.hub.config().takeover && server.hub.stream(&name).is_some() {
        return Err(Refusal::server(
            ServerRejectReason::Conflict,
            format!("stream {name} already has a publisher (takeover is off)"),
        ));
    }
    // libsrt callers announce a key size only when `pbkeylen` was set; otherwise it is
    // AES-128 (what srt-tokio assumes for "unspecified" too).
    let offered = request.key_size();
    let passphrase = match (server.config.passphrase_for(&name), offered) {
        (None, KeySize::Unspecified) => None,
        (None, _) => {
            return Err(Refusal::core(
                REJ_UNSECURE,
                format!("stream {name}: the caller encrypts but the stream has no passphrase"),
            ));
        }
        (Some(passphrase), offered) => {
            let offered_len = key_len(offered);
            if offered_len < server.config.key_length {
                let caller = if offered == KeySize::Unspecified {
                    "the caller announces no key length (AES-128 or no encryption)".to_string()
                } else {
                    format!("the caller's AES key is {} bits", offered_len * 8)
                };
                return Err(Refusal::core(
                    REJ_UNSECURE,
                    format!(
                        "stream {name}: {caller}, srt.key_length requires at least {} bits",
                        server.config.key_length * 8
                    ),
                ));
            }
            Some((passphrase.to_string(), offered))
        }
    };
    Ok(Admitted { name, passphrase })
}

fn key_len(size: KeySize) -> u16 {
    match size {
        KeySize::Unspecified => 16,
        KeySize::AES128 => 16,
        KeySize::AES192 => 24,
        KeySize::AES256 => 32,
    }
}

async fn close(mut socket: SrtSocket) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, futures::SinkExt::close(&mut socket)).await;
}

/// Why a connection ended without an error.
#[derive(Debug)]
enum Closed {
    PeerLeft,
    TakenOver,
    Shutdown,
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Closed::PeerLeft => "peer closed the connection",
            Closed::TakenOver => "another publisher took over the stream",
            Closed::Shutdown => "server shutting down",
        })
    }
}

/// One accepted publisher: SRT messages -> MPEG-TS demuxer -> frames -> hub.
struct Connection {
    publisher: Publisher,
    idle_timeout: Duration,
    demux: TsDemuxer,
    frames: EsFrames,
    /// Stream types of the TS program already reported as unsupported.
    skipped: HashSet<u8>,
    /// The last statistics report and when it came, for the receive bitrate over the
    /// next interval (srt-tokio's `elapsed_time` is not kept current in every mode).
    last_stats: Option<(Instant, SocketStatistics)>,
    transport: TransportStats,
    rtt: Duration,
}

impl Connection {
    fn new(publisher: Publisher, idle_timeout: Duration) -> Self {
        Connection {
            publisher,
            idle_timeout,
            demux: TsDemuxer::new(),
            frames: EsFrames::new(),
            skipped: HashSet::new(),
            last_stats: None,
            transport: TransportStats::default(),
            rtt: Duration::ZERO,
        }
    }

    async fn run(
        &mut self,
        mut socket: SrtSocket,
        shutdown: &CancellationToken,
    ) -> crate::Result<Closed> {
        self.rtt = socket.settings().rtt;
        let mut statistics = socket.statistics().clone();
        let mut statistics_open = true;
        let mut deadline = Instant::now() + self.idle_timeout;
        let closed = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break Ok(Closed::Shutdown),
                _ = self.publisher.taken_over() => break Ok(Closed::TakenOver),
                stats = statistics.next(), if statistics_open => match stats {
                    Some(stats) => self.on_statistics(stats),
                    None => statistics_open = false,
                },
                message = tokio::time::timeout_at(deadline, socket.next()) => match message {
                    Err(_) => break Err(crate::Error::Timeout {
                        what: "media from the publisher",
                        after: self.idle_timeout,
                    }),
                    Ok(None) => break Ok(Closed::PeerLeft),
                    Ok(Some(Err(error))) => break Err(error.into()),
                    Ok(Some(Ok((_, data)))) => {
                        deadline = Instant::now() + self.idle_timeout;
                        self.publisher.add_bytes(data.len() as u64);
                        self.on_data(&data);
                    }
                },
            }
        };
        // What the demuxer and the start-up hold-back still have belongs to the stream;
        // the hub sends `End` when the publisher is dropped.
        let received = SystemTime::now();
        for event in self.demux.flush() {
            for out in self.frames.push(event, received) {
                self.publisher.send(out);
            }
        }
        for out in self.frames.finish() {
            self.publisher.send(out);
        }
        close(socket).await;
        closed
    }

    fn on_data(&mut self, data: &[u8]) {
        let received = SystemTime::now();
        for event in self.demux.push(data) {
            if let TsEvent::Streams(streams) = &event {
                for es in streams {
                    if let EsKind::Unsupported(stream_type) = es.kind
                        && self.skipped.insert(stream_type)
                    {
                        warn!(
                            stream = %self.publisher.name(),
                            pid = es.pid,
                            stream_type,
                            "srt: MPEG-TS stream of an unsupported type is ignored"
                        );
                    }
                }
            }
            for out in self.frames.push(event, received) {
                self.publisher.send(out);
            }
        }
    }

    fn on_statistics(&mut self, stats: SocketStatistics) {
        let now = Instant::now();
        let bitrate = match &self.last_stats {
            Some((at, last)) => {
                let bytes = stats.rx_bytes.saturating_sub(last.rx_bytes);
                let span = now.saturating_duration_since(*at);
                if span < Duration::from_millis(100) {
                    self.transport.receive_bitrate_bps
                } else {
                    (bytes as f64 * 8.0 / span.as_secs_f64()) as u64
                }
            }
            None => 0,
        };
        let ts = self.demux.stats();
        self.transport = TransportStats {
            rtt: Some(self.rtt),
            packets_received: stats.rx_data,
            packets_lost: stats
                .rx_loss_data
                .max(stats.rx_retransmit_data + stats.rx_dropped_data),
            packets_retransmitted: stats.rx_retransmit_data,
            packets_dropped: stats.rx_dropped_data,
            receive_bitrate_bps: bitrate,
            ts_continuity_errors: ts.continuity_errors,
            ts_resyncs: ts.resyncs,
        };
        self.publisher.set_transport_stats(self.transport.clone());
        self.last_stats = Some((now, stats));
    }

    fn totals(&self) -> Totals {
        let ts = self.demux.stats();
        Totals {
            transport: self.transport.clone(),
            continuity_errors: ts.continuity_errors,
            resyncs: ts.resyncs,
        }
    }
}

/// Connection totals for the close log line.
struct Totals {
    transport: TransportStats,
    continuity_errors: u64,
    resyncs: u64,
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.transport;
        write!(
            f,
            "packets {} received, {} lost, {} retransmitted, {} dropped; ts continuity errors {}, resyncs {}",
            t.packets_received,
            t.packets_lost,
            t.packets_retransmitted,
            t.packets_dropped,
            self.continuity_errors,
            self.resyncs
        )
    }
}

/// Lets a repeated log line through at most once per period.
struct RateLimit {
    period: Duration,
    last: Option<Instant>,
}

impl RateLimit {
    fn new(period: Duration) -> Self {
        RateLimit { period, last: None }
    }

    fn ready(&mut self) -> bool {
        let now = Instant::now();
        if self.last.is_some_and(|last| now - last < self.period) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

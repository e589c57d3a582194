//! The tokio shell around the RTMP core: accepts sockets, runs one [`Session`] per
//! connection, asks [`Authenticator`] who may publish, and feeds the hub.
//!
//! Every wait is bounded: the handshake and `publish` must complete within
//! `handshake_timeout_ms`, a publisher that goes silent is dropped after
//! `idle_timeout_ms`, connections are capped by `max_connections`, and a protocol error
//! closes only its own connection with a logged reason.
use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use media::StreamEvent;
use media::hub::{Hub, Publisher, PublisherInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::auth::{Authenticator, PublishRequest};
use crate::rtmp::frames::FrameBuilder;
use crate::rtmp::session::{Session, SessionConfig, SessionEvent};
use crate::{Error, Result};

/// The protocol label used for the hub, auth and metrics.
pub const PROTOCOL: &str = "rtmp";
const READ_BUFFER: usize = 64 * 1024;
/// A peer that does not take our bytes within this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection stays open after its publisher unpublished.
const UNPUBLISH_LINGER: Duration = Duration::from_secs(5);

/// `[rtmp]` settings.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtmpConfig {
    /// Listen address.
    pub listen: std::net::SocketAddr,
    /// Outbound chunk size we announce and use (128..=65536).
    pub chunk_size: u32,
    /// Largest RTMP message accepted from a peer, in bytes; larger closes the connection.
    pub max_message_size: u32,
    /// Most concurrent RTMP connections; more are refused at accept.
    pub max_connections: usize,
    /// A peer must finish the handshake and start publishing within this many milliseconds.
    pub handshake_timeout_ms: u64,
    /// A publishing peer that sends nothing for this many milliseconds is dropped.
    pub idle_timeout_ms: u64,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        RtmpConfig {
            listen: "0.0.0.0:1935".parse().expect("static address"),
            chunk_size: 4096,
            max_message_size: 16 * 1024 * 1024,
            max_connections: 1000,
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 20_000,
        }
    }
}

impl RtmpConfig {
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}

/// What every RTMP connection shares.
#[derive(Clone)]
pub struct RtmpServer {
    pub hub: Hub,
    pub auth: Arc<Authenticator>,
    pub config: RtmpConfig,
}

/// Accept RTMP connections on `listener` until `shutdown` is cancelled, then stop
/// accepting, close publishers (their streams end) and return once every connection task
/// has finished.
pub async fn run(
    listener: TcpListener,
    server: RtmpServer,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let server = Arc::new(server);
    let slots = Arc::new(Semaphore::new(server.config.max_connections));
    let tracker = TaskTracker::new();
    let mut refused_logged = RateLimit::new(Duration::from_secs(5));
    loop {
        let (socket, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    warn!(%error, "rtmp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            if refused_logged.ready() {
                warn!(%peer, limit = server.config.max_connections, "rtmp connection refused: connection limit reached");
            }
            drop(socket);
            continue;
        };
        let server = server.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(
            async move {
                let _permit = permit;
                match Connection::new(&server, peer).run(socket, &shutdown).await {
                    Ok(reason) => info!(%reason, "rtmp connection closed"),
                    Err(error) => warn!(%error, "rtmp connection closed on error"),
                }
            }
            .instrument(info_span!("rtmp", %peer)),
        );
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Why a connection ended without an error.
#[derive(Debug)]
enum Closed {
    PeerLeft,
    Unpublished,
    TakenOver,
    Shutdown,
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Closed::PeerLeft => "peer closed the connection",
            Closed::Unpublished => "publisher unpublished",
            Closed::TakenOver => "another publisher took over the stream",
            Closed::Shutdown => "server shutting down",
        })
    }
}

struct Connection<'a> {
    server: &'a RtmpServer,
    peer: SocketAddr,
    session: Session,
    frames: FrameBuilder,
    publisher: Option<Publisher>,
    /// Set once the peer unpublished: when the connection closes at the latest.
    unpublished: Option<Instant>,
    /// Track kinds already reported as unsupported.
    skipped: HashSet<&'static str>,
}

impl<'a> Connection<'a> {
    fn new(server: &'a RtmpServer, peer: SocketAddr) -> Self {
        let config = &server.config;
        Connection {
            server,
            peer,
            session: Session::new(SessionConfig {
                chunk_size: config.chunk_size,
                max_message_size: config.max_message_size,
                ..SessionConfig::default()
            }),
            frames: FrameBuilder::new(),
            publisher: None,
            unpublished: None,
            skipped: HashSet::new(),
        }
    }

    async fn run(mut self, socket: TcpStream, shutdown: &CancellationToken) -> Result<Closed> {
        let closed = self.serve(socket, shutdown).await;
        // Frames still held back at startup belong to the stream; the hub sends `End`
        // when the publisher is dropped.
        let events = self.frames.finish();
        self.forward(events);
        closed
    }

    async fn serve(
        &mut self,
        mut socket: TcpStream,
        shutdown: &CancellationToken,
    ) -> Result<Closed> {
        let _ = socket.set_nodelay(true);
        let handshake_deadline = Instant::now() + self.server.config.handshake_timeout();
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            let deadline = match (&self.publisher, self.unpublished) {
                (Some(_), _) => Instant::now() + self.server.config.idle_timeout(),
                (None, Some(linger)) => linger,
                (None, None) => handshake_deadline,
            };
            let read = tokio::select! {
                _ = shutdown.cancelled() => return Ok(Closed::Shutdown),
                _ = taken_over(self.publisher.as_ref()) => return Ok(Closed::TakenOver),
                read = tokio::time::timeout_at(deadline, socket.read(&mut buf)) => read,
            };
            let n = match read {
                Err(_) if self.unpublished.is_some() => return Ok(Closed::Unpublished),
                Err(_) if self.publisher.is_none() => {
                    return Err(Error::Timeout {
                        what: "handshake and publish",
                        after: self.server.config.handshake_timeout(),
                    });
                }
                Err(_) => {
                    return Err(Error::Timeout {
                        what: "media from the publisher",
                        after: self.server.config.idle_timeout(),
                    });
                }
                Ok(read) => read?,
            };
            if n == 0 {
                return Ok(match self.unpublished {
                    Some(_) => Closed::Unpublished,
                    None => Closed::PeerLeft,
                });
            }
            if let Some(publisher) = &self.publisher {
                publisher.add_bytes(n as u64);
            }
            let mut input = &buf[..n];
            loop {
                let events = self.session.handle_input(input)?;
                input = &[];
                // The session holds back what follows `publish` until we decide; once we
                // have, run it again so those bytes are not left waiting for the next read.
                let decided = events
                    .iter()
                    .any(|event| matches!(event, SessionEvent::PublishRequested { .. }));
                for event in events {
                    if let Some(closed) = self.handle(event, &mut socket).await? {
                        return Ok(closed);
                    }
                }
                if !decided {
                    break;
                }
            }
        }
    }

    async fn handle(
        &mut self,
        event: SessionEvent,
        socket: &mut TcpStream,
    ) -> Result<Option<Closed>> {
        match event {
            SessionEvent::Send(bytes) => write(socket, &bytes).await?,
            SessionEvent::Connect { app, .. } => debug!(%app, "rtmp connect"),
            SessionEvent::PublishRequested { app, key, .. } => {
                self.publish(&app, &key, socket).await?;
            }
            SessionEvent::Metadata(properties) => {
                let has = |key: &str| properties.iter().any(|(k, _)| k == key);
                self.frames.expect(has("videocodecid"), has("audiocodecid"));
            }
            SessionEvent::Video { timestamp, data } => {
                let events = self.frames.video(timestamp, &data, SystemTime::now());
                self.forward_or_skip(events)?;
            }
            SessionEvent::Audio { timestamp, data } => {
                let events = self.frames.audio(timestamp, &data, SystemTime::now());
                self.forward_or_skip(events)?;
            }
            SessionEvent::Unpublished => self.unpublish(),
        }
        Ok(None)
    }

    /// Authorize a `publish` and claim the stream name on the hub, then answer the peer.
    /// A refusal is sent to the peer (an error `onStatus` with the reason) and then ends
    /// the connection.
    async fn publish(&mut self, app: &str, key: &str, socket: &mut TcpStream) -> Result<()> {
        if self.publisher.is_some() {
            return Err(Error::Command {
                command: "publish".into(),
                reason: "this connection already publishes a stream",
            });
        }
        let request = PublishRequest {
            app,
            key,
            protocol: PROTOCOL,
            peer: self.peer,
        };
        let refusal = match self.server.auth.authorize(&request).await {
            Ok(name) => {
                let info = PublisherInfo {
                    protocol: PROTOCOL,
                    peer: self.peer,
                };
                match self.server.hub.publish(&name, info) {
                    Ok(publisher) => {
                        info!(stream = %name, "rtmp publish started");
                        self.publisher = Some(publisher);
                        let reply = self.session.accept_publish()?;
                        return write(socket, &reply).await;
                    }
                    Err(busy) => busy.to_string(),
                }
            }
            Err(denied) => denied.to_string(),
        };
        let reply = self.session.reject_publish(&refusal);
        // The peer may already be gone; the refusal is what matters.
        let _ = write(socket, &reply).await;
        Err(Error::Refused {
            peer: self.peer,
            reason: refusal,
        })
    }

    /// Ends the stream at once (subscribers see `End`) but leaves the connection open a
    /// moment: publishers send `deleteStream` after `FCUnpublish`, and closing under them
    /// makes ffmpeg report a broken pipe.
    fn unpublish(&mut self) {
        let events = self.frames.finish();
        self.forward(events);
        if let Some(publisher) = self.publisher.take() {
            info!(stream = %publisher.name(), "rtmp publish ended");
        }
        self.frames = FrameBuilder::new();
        self.unpublished = Some(Instant::now() + UNPUBLISH_LINGER);
    }

    /// Forwards converted frames. A track in a codec we do not carry (MP3 audio, say) is
    /// left out with one warning instead of ending the stream; any other error does.
    fn forward_or_skip(&mut self, events: Result<Vec<StreamEvent>>) -> Result<()> {
        match events {
            Ok(events) => self.forward(events),
            Err(Error::UnsupportedCodec { kind, codec }) => {
                if self.skipped.insert(kind) {
                    warn!(kind, codec, "rtmp track in an unsupported codec is ignored");
                }
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }

    fn forward(&self, events: Vec<StreamEvent>) {
        if let Some(publisher) = &self.publisher {
            for event in events {
                publisher.send(event);
            }
        }
    }
}

/// Resolves when `publisher` has been evicted by a takeover; never without one.
async fn taken_over(publisher: Option<&Publisher>) {
    match publisher {
        Some(publisher) => publisher.taken_over().await,
        None => std::future::pending().await,
    }
}

async fn write(socket: &mut TcpStream, bytes: &[u8]) -> Result<()> {
    match tokio::time::timeout(WRITE_TIMEOUT, socket.write_all(bytes)).await {
        Ok(written) => Ok(written?),
        Err(_) => Err(Error::Timeout {
            what: "writing to the peer",
            after: WRITE_TIMEOUT,
        }),
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

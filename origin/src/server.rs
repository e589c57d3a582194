//! The HTTP server: the [`router`] and the accept loops.
//!
//! - [`serve`]: HTTP/1.1 on a plain TCP listener.
//! - [`serve_tls`]: TLS (rustls) with ALPN `h2` and `http/1.1`; HTTP/2 is what Apple's
//!   low-latency mode needs [S App. B.1], HTTP/1.1 serves the rest.
//!
//! Bounds: at most [`HttpConfig::max_connections`] open connections (a semaphore taken
//! before `accept`, so further clients wait in the listen backlog); an HTTP/1.1
//! connection that does not send a complete request head within
//! [`HttpConfig::header_read_timeout`] (the first one, or the next one on a keep-alive
//! connection) is closed; an HTTP/2 connection with no open request for
//! [`HttpConfig::idle_timeout`] is sent GOAWAY; a TLS handshake has
//! [`HttpConfig::tls_handshake_timeout`]. On shutdown, blocked requests are answered
//! 503, connections are closed gracefully, and [`serve`] returns after at most
//! [`HttpConfig::drain_timeout`].
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use media::demand::Demand;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::headers;
use crate::metrics::{OriginMetrics, RequestKind};
use crate::routes;
use crate::store::Store;

/// Server settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// Open connections at most (both ports share nothing: each listener has its own
    /// limit).
    pub max_connections: usize,
    /// HTTP/1.1: time to receive a complete request head, from the connection's start
    /// or from the previous response (idle keep-alive connections included).
    pub header_read_timeout: Duration,
    /// HTTP/2: a connection without an open request for this long is closed (GOAWAY).
    pub idle_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    /// `max-age` of parts, segments and init segments (with `immutable`).
    pub media_max_age: Duration,
    /// On shutdown, how long open connections get to finish.
    pub drain_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_connections: 20_000,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(10),
            media_max_age: Duration::from_secs(31_536_000),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// What the server serves.
#[derive(Clone)]
pub struct HttpState {
    pub store: Store,
    pub config: HttpConfig,
    pub metrics: OriginMetrics,
    /// Routes added by the binary (the page at `/`, the player's assets), merged into
    /// the origin's router. Their responses are counted as `kind="page"`; they must not
    /// set a fallback and must not use the playback URL shapes.
    pub extra_routes: Option<Router>,
    /// Where requests are recorded for on-demand pulls (see `media::demand`); a playlist
    /// request for an on-demand stream that is not live waits for it (bounded).
    pub demand: Option<Demand>,
}

impl HttpState {
    pub fn new(store: Store, config: HttpConfig, metrics: OriginMetrics) -> HttpState {
        HttpState {
            store,
            config,
            metrics,
            extra_routes: None,
            demand: None,
        }
    }
}

/// What the handlers share.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) config: HttpConfig,
    pub(crate) metrics: OriginMetrics,
    pub(crate) shutdown: CancellationToken,
    pub(crate) demand: Option<Demand>,
}

/// The origin's router: the playback URLs, the extra routes, CORS on every response and
/// the request metrics. `shutdown` ends blocked requests (503).
pub fn router(state: &HttpState, shutdown: CancellationToken) -> Router {
    let shared = Arc::new(Shared {
        store: state.store.clone(),
        config: state.config.clone(),
        metrics: state.metrics.clone(),
        shutdown,
        demand: state.demand.clone(),
    });
    let playback = Router::new()
        .route(
            "/{*path}",
            get(routes::media)
                .options(routes::preflight)
                .fallback(|req: Request| async move { routes::method_not_allowed(req.method()) }),
        )
        .fallback(|| async { routes::not_found(RequestKind::Other) })
        .with_state(shared);
    let app = match &state.extra_routes {
        Some(extra) => playback.merge(extra.clone().layer(middleware::map_response(tag_page))),
        None => playback,
    };
    app.layer(middleware::from_fn_with_state(
        state.metrics.clone(),
        count_and_cors,
    ))
}

async fn tag_page(mut res: Response) -> Response {
    if res.extensions().get::<RequestKind>().is_none() {
        res.extensions_mut().insert(RequestKind::Page);
    }
    res
}

/// Adds the CORS headers and counts the request by kind and status, with its body size.
async fn count_and_cors(
    axum::extract::State(metrics): axum::extract::State<OriginMetrics>,
    req: Request,
    next: Next,
) -> Response {
    let mut res = next.run(req).await;
    headers::add_cors(res.headers_mut());
    let kind = res
        .extensions()
        .get::<RequestKind>()
        .copied()
        .unwrap_or(RequestKind::Other);
    let bytes = http_body::Body::size_hint(res.body()).exact().unwrap_or(0);
    metrics.request(kind, res.status(), bytes);
    res
}

/// Serves HTTP/1.1 on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: CancellationToken,
) -> io::Result<()> {
    accept_loop(listener, state, None, shutdown).await
}

/// Serves HTTP/2 and HTTP/1.1 over TLS on `listener` until `shutdown`. `tls` should
/// offer ALPN `h2` and `http/1.1` ([`crate::tls`] makes such configurations).
pub async fn serve_tls(
    listener: TcpListener,
    state: HttpState,
    tls: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    accept_loop(listener, state, Some(acceptor), shutdown).await
}

async fn accept_loop(
    listener: TcpListener,
    state: HttpState,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let app = router(&state, shutdown.clone());
    let config = Arc::new(state.config.clone());
    let permits = Arc::new(Semaphore::new(
        config.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let tracker = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break, // never closed
            },
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            app: app.clone(),
            config: config.clone(),
            metrics: state.metrics.clone(),
            shutdown: shutdown.clone(),
            peer,
            _permit: permit,
        };
        let tls = tls.clone();
        tracker.spawn(conn.run(stream, tls));
    }
    tracker.close();
    if tokio::time::timeout(config.drain_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::info!(
            open = tracker.len(),
            "connections still open after the drain timeout"
        );
    }
    Ok(())
}

struct Conn {
    app: Router,
    config: Arc<HttpConfig>,
    metrics: OriginMetrics,
    shutdown: CancellationToken,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
}

impl Conn {
    async fn run(self, stream: TcpStream, tls: Option<tokio_rustls::TlsAcceptor>) {
        let _open = self.metrics.connection_guard();
        let Some(acceptor) = tls else {
            self.http1(stream).await;
            return;
        };
        let handshake = tokio::select! {
            r = tokio::time::timeout(self.config.tls_handshake_timeout, acceptor.accept(stream)) => r,
            () = self.shutdown.cancelled() => return,
        };
        let stream = match handshake {
            Ok(Ok(s)) => s,
            Ok(Err(error)) => {
                tracing::debug!(peer = %self.peer, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                return;
            }
        };
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        if h2 {
            self.http2(stream).await;
        } else {
            self.http1(stream).await;
        }
    }

    async fn http1<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let app = self.app.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            app.clone().oneshot(req.map(Body::new))
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.config.header_read_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(error) = r {
                    tracing::debug!(peer = %self.peer, %error, "HTTP/1.1 connection ended");
                }
                return;
            }
            () = self.shutdown.cancelled() => {}
        }
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(self.config.drain_timeout, conn).await;
    }

    async fn http2<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity {
            open: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
        });
        let app = self.app.clone();
        let act = activity.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let app = app.clone();
            let act = act.clone();
            async move {
                let _open = act.start();
                app.oneshot(req.map(Body::new)).await
            }
        });
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new()).max_concurrent_streams(256);
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let idle = self.config.idle_timeout;
        let tick = (idle / 4).max(Duration::from_millis(100));
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(error) = r {
                        tracing::debug!(peer = %self.peer, %error, "HTTP/2 connection ended");
                    }
                    return;
                }
                () = self.shutdown.cancelled() => break,
                () = tokio::time::sleep(tick) => {
                    let quiet = activity.open.load(Ordering::Relaxed) == 0
                        && activity.since_last() >= idle;
                    if quiet {
                        break;
                    }
                }
            }
        }
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(self.config.drain_timeout, conn).await;
    }
}

/// Requests in flight on an HTTP/2 connection and when the last one finished.
struct Activity {
    open: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn start(self: &Arc<Self>) -> InFlight {
        self.open.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn since_last(&self) -> Duration {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }
}

/// One request in flight; dropped when the response is ready or the request is
/// abandoned.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

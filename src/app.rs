//! Wiring: the hub, auth, the RTMP and SRT listeners, RTSP pulls, the transcode ladders,
//! the packaging driver, the origin's store and HTTP server(s) with the player page, the
//! admin server, and the drain on shutdown.
//!
//! [`App::bind`] binds every listener first (and loads or makes the TLS certificate),
//! so a busy port or a bad certificate fails before anything runs, and tests can bind
//! port 0 and read the addresses back. [`App::run`] serves until its token is
//! cancelled, then drains in order:
//! 1. `/readyz` turns 503; ingest stops accepting and closes its publishers (RTSP pulls
//!    end their sessions); the process waits up to `shutdown.drain_timeout_ms` for them;
//!    the transcode ladders drain what they hold and end their rungs (bounded by
//!    `TRANSCODE_STOP_TIMEOUT`), so the rungs' last segments are complete too;
//! 2. the packaging driver completes every open part and ends every playlist
//!    (EXT-X-ENDLIST), without waiting for the reconnect grace period; blocked players
//!    are answered with the final playlists;
//! 3. the HTTP server(s) stop (open connections get `shutdown.drain_timeout_ms`);
//! 4. the admin server stops last (so the 503 is visible while draining).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use ingest::auth::Authenticator;
use ingest::rtmp::server::RtmpServer;
use ingest::rtsp::PullStatus;
use ingest::srt::server::{SrtBinding, SrtServer};
use media::demand::Demand;
use media::hub::Hub;
use origin::driver::{PackagingConfig, run_packaging};
use origin::{HttpState, OriginMetrics, Store};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState, Readiness};
use crate::config::Config;

/// How long the transcode ladders get to drain their pipelines and end their rungs.
const TRANSCODE_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the admin server gets to finish its requests after the drain.
const ADMIN_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the packaging driver gets to end every stream's playlists on shutdown.
const PACKAGING_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A bound, not yet running server.
pub struct App {
    config: Config,
    hub: Hub,
    auth: Arc<Authenticator>,
    readiness: Arc<Readiness>,
    registry: prometheus::Registry,
    store: Store,
    origin_metrics: OriginMetrics,
    /// The ladders' metrics (`ferrocast_transcode_*`).
    transcode_metrics: transcode::TranscodeMetrics,
    /// Requests seen for on-demand pulls (the origin records, the pulls read).
    demand: Demand,
    pulls: PullStatus,
    rtmp: TcpListener,
    /// The SRT listener (UDP), when `srt.enabled`.
    srt: Option<SrtBinding>,
    admin: TcpListener,
    http: TcpListener,
    /// The TLS listener and its configuration, when `[http]` turns TLS on.
    https: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
}

/// Accept backlog for every listener. tokio's default (128) drops SYNs when thousands of
/// players connect at once, and each dropped SYN costs that client a 1 s retransmit.
const LISTEN_BACKLOG: u32 = 4096;

async fn bind(addr: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    let listen = || -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().with_context(|| format!("cannot listen on {addr} ({key})"))
}

impl App {
    /// Builds the hub and the authenticator and binds the listeners. A bind failure names
    /// the address and the config key.
    pub async fn bind(config: Config) -> anyhow::Result<App> {
        config.validate()?;
        let hub = Hub::new(config.hub_config());
        let auth = Arc::new(Authenticator::new(config.auth.clone())?);
        let registry = crate::metrics::registry(hub.clone(), Some(Arc::clone(&auth)))
            .context("cannot register metrics")?;
        let origin_metrics = OriginMetrics::new();
        origin_metrics
            .register(&registry)
            .context("cannot register the origin metrics")?;
        let transcode_metrics = transcode::TranscodeMetrics::new(&registry)
            .context("cannot register the transcode metrics")?;
        let pulls = PullStatus::new(config.pull.iter().map(|p| p.name.as_str()));
        registry
            .register(Box::new(
                crate::metrics::PullCollector::new(pulls.clone())
                    .context("cannot make the rtsp pull metrics")?,
            ))
            .context("cannot register the rtsp pull metrics")?;
        let store = Store::new(config.origin.store_config());
        let tls = tls_config(&config.http)?;
        let rtmp = bind(config.rtmp.listen, "rtmp.listen").await?;
        let srt = if config.srt.enabled {
            let addr = config.srt.listen;
            Some(
                ingest::srt::server::bind(&config.srt)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (srt.listen, UDP)"))?,
            )
        } else {
            None
        };
        let admin = bind(config.admin.listen, "admin.listen").await?;
        let http = bind(config.http.listen, "http.listen").await?;
        let https = match (tls, config.http.tls_addr()) {
            (Some(tls), Some(addr)) => Some((bind(addr, "http.tls_listen").await?, tls)),
            _ => None,
        };
        Ok(App {
            config,
            hub,
            auth,
            readiness: Arc::default(),
            registry,
            store,
            origin_metrics,
            transcode_metrics,
            demand: Demand::new(),
            pulls,
            rtmp,
            srt,
            admin,
            http,
            https,
        })
    }

    pub fn rtmp_addr(&self) -> std::io::Result<SocketAddr> {
        self.rtmp.local_addr()
    }

    /// The SRT listener's UDP address, when `srt.enabled`.
    pub fn srt_addr(&self) -> Option<SocketAddr> {
        self.srt.as_ref().map(SrtBinding::local_addr)
    }

    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin.local_addr()
    }

    /// The plain HTTP origin and player page.
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    /// The TLS origin (HTTP/2 and HTTP/1.1), when configured.
    pub fn https_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.https.as_ref().map(|(l, _)| l.local_addr())
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// What the origin serves.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn origin_metrics(&self) -> &OriginMetrics {
        &self.origin_metrics
    }

    pub fn readiness(&self) -> Arc<Readiness> {
        Arc::clone(&self.readiness)
    }

    /// Serves until `shutdown` is cancelled, then drains (see the module docs). Returns an
    /// error if a server stopped on its own.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let rtmp_addr = self.rtmp_addr()?;
        let srt_addr = self.srt_addr();
        let admin_addr = self.admin_addr()?;
        let http_addr = self.http_addr()?;
        let https_addr = self.https_addr().transpose()?;
        let ingest_stop = CancellationToken::new();
        let transcode_stop = CancellationToken::new();
        let packaging_stop = CancellationToken::new();
        let http_stop = CancellationToken::new();
        let admin_stop = CancellationToken::new();
        let mut packaging_task = tokio::spawn(run_packaging(
            self.hub.clone(),
            self.store.clone(),
            PackagingConfig {
                packager: self.config.packager.clone(),
                grace_period: self.config.origin.grace_period(),
                metrics: Some(self.origin_metrics.clone()),
                source_listed: Some({
                    let transcode = self.config.transcode.clone();
                    Arc::new(move |name: &str| transcode.for_stream(name).source)
                }),
            },
            packaging_stop.clone(),
        ));
        // Returns at once when transcoding is off.
        let mut transcode_task = tokio::spawn(transcode::run(
            self.hub.clone(),
            self.config.transcode.clone(),
            Some(self.transcode_metrics.clone()),
            transcode_stop.clone(),
        ));
        let http_state = HttpState {
            store: self.store.clone(),
            config: self.config.http_config(),
            metrics: self.origin_metrics.clone(),
            extra_routes: Some(crate::page::router(self.store.clone())),
            demand: Some(self.demand.clone()),
        };
        let mut http_tasks: Vec<(&'static str, JoinHandle<std::io::Result<()>>)> = vec![(
            "http server",
            tokio::spawn(origin::serve(
                self.http,
                http_state.clone(),
                http_stop.clone(),
            )),
        )];
        if let Some((listener, tls)) = self.https {
            http_tasks.push((
                "https server",
                tokio::spawn(origin::serve_tls(
                    listener,
                    http_state,
                    tls,
                    http_stop.clone(),
                )),
            ));
        }
        let mut rtmp_task: JoinHandle<std::io::Result<()>> =
            tokio::spawn(ingest::rtmp::server::run(
                self.rtmp,
                RtmpServer {
                    hub: self.hub.clone(),
                    auth: Arc::clone(&self.auth),
                    config: self.config.rtmp.clone(),
                },
                ingest_stop.clone(),
            ));
        // Pending forever when SRT is off, so the select below never sees it end.
        let mut srt_task: JoinHandle<std::io::Result<()>> = match self.srt {
            Some(binding) => tokio::spawn(ingest::srt::server::run(
                binding,
                SrtServer {
                    hub: self.hub.clone(),
                    auth: self.auth,
                    config: self.config.srt.clone(),
                },
                ingest_stop.clone(),
            )),
            None => tokio::spawn(std::future::pending()),
        };
        let srt_enabled = srt_addr.is_some();
        // RTSP pulls stop with the rest of ingest (their streams end at once).
        let mut pull_task = tokio::spawn(ingest::rtsp::run(
            self.hub.clone(),
            self.config.pull.clone(),
            self.demand.clone(),
            self.pulls.clone(),
            ingest_stop.clone(),
        ));
        let mut admin_task = tokio::spawn(admin::serve(
            self.admin,
            AdminState {
                hub: self.hub,
                registry: self.registry,
                readiness: Arc::clone(&self.readiness),
            },
            admin_stop.clone(),
        ));
        self.readiness.set_ready();
        tracing::info!(
            rtmp = %rtmp_addr,
            srt = %srt_addr.map_or_else(|| "off".to_string(), |a| a.to_string()),
            http = %http_addr,
            https = %https_addr.map_or_else(|| "off".to_string(), |a| a.to_string()),
            admin = %admin_addr,
            auth = self.config.auth.mode.as_str(),
            "ferrocast listening"
        );
        tracing::info!(
            "player page: {}  (publish to rtmp://{}/live/<key>)",
            page_url("http", http_addr),
            shown(rtmp_addr)
        );
        if let Some(addr) = https_addr {
            tracing::info!("player page over HTTPS: {}", page_url("https", addr));
        }

        let mut failure = None;
        let mut rtmp_done = false;
        let mut srt_done = !srt_enabled;
        let mut admin_done = false;
        let mut http_done = vec![false; http_tasks.len()];
        let mut packaging_done = false;
        {
            let http_any = futures_first(&mut http_tasks);
            tokio::select! {
                () = shutdown.cancelled() => {}
                r = &mut rtmp_task => {
                    rtmp_done = true;
                    failure = Some(ended("rtmp server", r));
                }
                r = &mut srt_task => {
                    srt_done = true;
                    failure = Some(ended("srt server", r));
                }
                r = &mut admin_task => {
                    admin_done = true;
                    failure = Some(ended("admin server", r));
                }
                (i, what, r) = http_any => {
                    http_done[i] = true;
                    failure = Some(ended(what, r));
                }
                r = &mut packaging_task => {
                    packaging_done = true;
                    failure = Some(match r {
                        Ok(()) => anyhow!("packaging driver stopped unexpectedly"),
                        Err(e) => anyhow::Error::new(e).context("packaging driver task panicked"),
                    });
                }
            }
        }

        self.readiness.set_draining();
        let drain = self.config.shutdown.drain_timeout();
        tracing::info!(timeout_ms = drain.as_millis() as u64, "draining");
        ingest_stop.cancel();
        if tokio::time::timeout(drain, &mut pull_task).await.is_err() {
            tracing::warn!("rtsp pulls did not stop in time");
            pull_task.abort();
        }
        if !rtmp_done {
            match tokio::time::timeout(drain, &mut rtmp_task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(r) => {
                    failure.get_or_insert(ended("rtmp server", r));
                }
                Err(_) => {
                    tracing::warn!(
                        timeout_ms = drain.as_millis() as u64,
                        "drain timeout: closing the remaining rtmp connections"
                    );
                    rtmp_task.abort();
                }
            }
        }
        if srt_done {
            srt_task.abort();
        } else {
            match tokio::time::timeout(drain, &mut srt_task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(r) => {
                    failure.get_or_insert(ended("srt server", r));
                }
                Err(_) => {
                    tracing::warn!(
                        timeout_ms = drain.as_millis() as u64,
                        "drain timeout: closing the remaining srt connections"
                    );
                    srt_task.abort();
                }
            }
        }
        // Sources are gone: the ladders drain and end their rungs.
        transcode_stop.cancel();
        if tokio::time::timeout(TRANSCODE_STOP_TIMEOUT, &mut transcode_task)
            .await
            .is_err()
        {
            tracing::warn!("transcode ladders did not stop in time");
            transcode_task.abort();
        }
        // Publishers are gone: end every playlist now, without waiting for a reconnect.
        packaging_stop.cancel();
        if !packaging_done {
            match tokio::time::timeout(PACKAGING_STOP_TIMEOUT, &mut packaging_task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    failure.get_or_insert(
                        anyhow::Error::new(e).context("packaging driver task panicked"),
                    );
                }
                Err(_) => {
                    tracing::warn!("packaging driver did not stop in time");
                    packaging_task.abort();
                }
            }
        }
        http_stop.cancel();
        // The servers bound their own drain by shutdown.drain_timeout_ms; allow a margin.
        let http_deadline = drain + ADMIN_STOP_TIMEOUT;
        for ((what, task), done) in http_tasks.iter_mut().zip(http_done) {
            if done {
                continue;
            }
            match tokio::time::timeout(http_deadline, &mut *task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(r) => {
                    failure.get_or_insert(ended(what, r));
                }
                Err(_) => {
                    tracing::warn!(server = *what, "did not stop in time");
                    task.abort();
                }
            }
        }
        admin_stop.cancel();
        if !admin_done
            && tokio::time::timeout(ADMIN_STOP_TIMEOUT, &mut admin_task)
                .await
                .is_err()
        {
            admin_task.abort();
        }
        tracing::info!("stopped");
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The first of `tasks` to finish: its index, name and result. Pending forever when
/// there are none.
async fn futures_first(
    tasks: &mut [(&'static str, JoinHandle<std::io::Result<()>>)],
) -> (
    usize,
    &'static str,
    Result<std::io::Result<()>, tokio::task::JoinError>,
) {
    std::future::poll_fn(|cx| {
        for (i, (what, task)) in tasks.iter_mut().enumerate() {
            if let std::task::Poll::Ready(r) = std::pin::Pin::new(task).poll(cx) {
                return std::task::Poll::Ready((i, *what, r));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// The TLS configuration `[http]` asks for: from the certificate and key files, a fresh
/// self-signed certificate, or none.
fn tls_config(
    http: &crate::config::HttpSection,
) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    if let (Some(cert), Some(key)) = (&http.tls_cert, &http.tls_key) {
        let config = origin::tls::from_pem_files(cert, key)
            .context("http.tls_cert / http.tls_key: cannot load the TLS certificate")?;
        return Ok(Some(config));
    }
    if http.tls_self_signed {
        let made = origin::tls::self_signed()
            .context("http.tls_self_signed: cannot make a certificate")?;
        tracing::info!(
            "TLS with a self-signed certificate for localhost, 127.0.0.1 and ::1 (browsers will warn)"
        );
        return Ok(Some(made.config));
    }
    Ok(None)
}

/// An address as a person would type it: `localhost` for the unspecified address.
fn shown(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// The player page's URL on `addr`.
pub fn page_url(scheme: &str, addr: SocketAddr) -> String {
    format!("{scheme}://{}/", shown(addr))
}

/// Turns a server task's end into an error: a server only ends on its own by failing.
fn ended(what: &str, r: Result<std::io::Result<()>, tokio::task::JoinError>) -> anyhow::Error {
    match r {
        Ok(Ok(())) => anyhow!("{what} stopped unexpectedly"),
        Ok(Err(e)) => anyhow::Error::new(e).context(format!("{what} failed")),
        Err(e) => anyhow::Error::new(e).context(format!("{what} task panicked")),
    }
}

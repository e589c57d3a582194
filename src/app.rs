//! Wiring: the hub, auth, the RTMP listener and the admin server, and the drain on
//! shutdown.
//!
//! [`App::bind`] binds every listener first, so a busy port fails before anything runs
//! and tests can bind port 0 and read the addresses back. [`App::run`] serves until its
//! token is cancelled, then: `/readyz` turns 503, ingest stops accepting and closes its
//! publishers, the process waits up to `shutdown.drain_timeout_ms` for them, and the admin
//! server stops last (so the 503 is visible while draining).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use ingest::auth::Authenticator;
use ingest::rtmp::server::RtmpServer;
use media::hub::Hub;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState, Readiness};
use crate::config::Config;

/// How long the admin server gets to finish its requests after the drain.
const ADMIN_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// A bound, not yet running server.
pub struct App {
    config: Config,
    hub: Hub,
    auth: Arc<Authenticator>,
    readiness: Arc<Readiness>,
    registry: prometheus::Registry,
    rtmp: TcpListener,
    admin: TcpListener,
}

async fn bind(addr: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({key})"))
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
        let rtmp = bind(config.rtmp.listen, "rtmp.listen").await?;
        let admin = bind(config.admin.listen, "admin.listen").await?;
        Ok(App {
            config,
            hub,
            auth,
            readiness: Arc::default(),
            registry,
            rtmp,
            admin,
        })
    }

    pub fn rtmp_addr(&self) -> std::io::Result<SocketAddr> {
        self.rtmp.local_addr()
    }

    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin.local_addr()
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    pub fn readiness(&self) -> Arc<Readiness> {
        Arc::clone(&self.readiness)
    }

    /// Serves until `shutdown` is cancelled, then drains (see the module docs). Returns an
    /// error if a server stopped on its own.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let rtmp_addr = self.rtmp_addr()?;
        let admin_addr = self.admin_addr()?;
        let ingest_stop = CancellationToken::new();
        let admin_stop = CancellationToken::new();
        let mut rtmp_task: JoinHandle<std::io::Result<()>> =
            tokio::spawn(ingest::rtmp::server::run(
                self.rtmp,
                RtmpServer {
                    hub: self.hub.clone(),
                    auth: self.auth,
                    config: self.config.rtmp.clone(),
                },
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
            admin = %admin_addr,
            auth = self.config.auth.mode.as_str(),
            "ferrocast listening"
        );

        let mut failure = None;
        let mut rtmp_done = false;
        let mut admin_done = false;
        tokio::select! {
            () = shutdown.cancelled() => {}
            r = &mut rtmp_task => {
                rtmp_done = true;
                failure = Some(ended("rtmp server", r));
            }
            r = &mut admin_task => {
                admin_done = true;
                failure = Some(ended("admin server", r));
            }
        }

        self.readiness.set_draining();
        let drain = self.config.shutdown.drain_timeout();
        tracing::info!(timeout_ms = drain.as_millis() as u64, "draining");
        ingest_stop.cancel();
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

/// Turns a server task's end into an error: a server only ends on its own by failing.
fn ended(what: &str, r: Result<std::io::Result<()>, tokio::task::JoinError>) -> anyhow::Error {
    match r {
        Ok(Ok(())) => anyhow!("{what} stopped unexpectedly"),
        Ok(Err(e)) => anyhow::Error::new(e).context(format!("{what} failed")),
        Err(e) => anyhow::Error::new(e).context(format!("{what} task panicked")),
    }
}

//! The `ferrocast` binary's library: config, CLI, tracing, the admin server, metrics and
//! the wiring of the stages. `main.rs` is a thin shell around it, so integration tests
//! drive the same code.
//!
//! - [`config`]: the one `Config` struct, its TOML/env/flag layers and validation.
//! - [`cli`]: the `clap` command line.
//! - [`app`]: binds the listeners, runs ingest, packaging, the origin and the admin
//!   server, drains on shutdown.
//! - [`admin`]: `/healthz`, `/readyz`, `/metrics`, `/api/v1/streams`.
//! - [`metrics`]: the Prometheus collector over the hub.
//! - [`page`]: the player page at `/` (hls.js embedded at build time, see `build.rs`).
//!
//! Protocol and media logic lives in the library crates (`media`, `ingest`, ...), not here.
#![forbid(unsafe_code)]
// `deny`, not `forbid`: clap's derive macros emit `#[allow(clippy::restriction)]`, which a
// `forbid` rejects. Only `main.rs` prints.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod metrics;
pub mod page;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global `tracing` subscriber: fmt to stderr, filtered by `RUST_LOG` when it
/// is set and not empty, else by `level` (`log.level`).
pub fn init_tracing(level: &str) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => EnvFilter::builder()
            .parse(&env)
            .map_err(|e| anyhow::anyhow!("RUST_LOG: invalid filter {env:?}: {e}"))?,
        _ => EnvFilter::builder()
            .parse(level)
            .map_err(|e| anyhow::anyhow!("log.level: invalid filter {level:?}: {e}"))?,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}

//! The command line (`clap` derive). `main.rs` dispatches; this module only parses, so
//! tests can check each flag.
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, ENV_CONFIG_FILE, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "ferrocast",
    version,
    about = "Live video server: RTMP ingest, LL-HLS origin"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (embedded defaults when no config file is given).
    Serve(RunArgs),
    /// Validate a config file (without environment overrides); exit non-zero with the
    /// problem on error.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
    /// Print the effective config (defaults < file < environment < flags) as TOML.
    PrintConfig(RunArgs),
}

/// The config layers `serve` and `print-config` take. Each flag overrides one config key
/// and leaves it alone when absent.
#[derive(Clone, Debug, Default, PartialEq, Args)]
pub struct RunArgs {
    /// TOML config file.
    #[arg(long, value_name = "FILE", env = ENV_CONFIG_FILE)]
    pub config: Option<PathBuf>,
    /// Admin listen address (`admin.listen`): /metrics, /healthz, /readyz, /api/v1/streams.
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,
    /// RTMP listen address (`rtmp.listen`).
    #[arg(long, value_name = "ADDR")]
    pub rtmp: Option<SocketAddr>,
    /// Log filter (`log.level`), e.g. `debug` or `ingest=trace,info`; RUST_LOG wins.
    #[arg(long, value_name = "LEVEL")]
    pub log: Option<String>,
    /// LL-HLS origin and player page listen address (`http.listen`).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Also serve HTTPS (HTTP/2) with a self-signed certificate made at startup, for
    /// local use (`http.tls_self_signed = true`; port `http.tls_listen`, default 8443).
    #[arg(long)]
    pub tls_self_signed: bool,
    /// SRT listen address, UDP (`srt.listen`).
    #[arg(long, value_name = "ADDR")]
    pub srt: Option<SocketAddr>,
}

impl RunArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            admin_listen: self.admin,
            rtmp_listen: self.rtmp,
            log_level: self.log.clone(),
            http_listen: self.http,
            // A plain switch: given, it sets the key; absent, it leaves the lower layers.
            tls_self_signed: self.tls_self_signed.then_some(true),
            srt_listen: self.srt,
        }
    }

    /// The effective config: the file, then the process's `FERROCAST_*` variables, then
    /// these flags.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let env = crate::config::process_env()?;
        Config::load(self.config.as_deref(), env, &self.overrides())
    }
}

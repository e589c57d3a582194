//! `ferrocast`: see `ferrocast --help` and the `ferrocast` library docs.
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ferrocast::app::App;
use ferrocast::cli::{Cli, Command, RunArgs};
use ferrocast::config::Config;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(&args),
        Command::CheckConfig { file } => Config::from_file(&file)
            .map(|_| println!("{}: ok", file.display()))
            .map_err(anyhow::Error::from),
        Command::PrintConfig(args) => args
            .load()
            .map(|config| print!("{}", config.to_toml()))
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &RunArgs) -> anyhow::Result<()> {
    let config = args.load()?;
    ferrocast::init_tracing(&config.log.level)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let app = App::bind(config).await?;
        let shutdown = CancellationToken::new();
        tokio::spawn(on_signals(shutdown.clone()));
        app.run(shutdown).await
    })
}

/// The first SIGINT or SIGTERM starts the drain; a second one exits at once.
async fn on_signals(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return;
        }
    };
    for n in 0.. {
        let name = tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        if n == 0 {
            tracing::info!(signal = name, "shutting down");
            shutdown.cancel();
        } else {
            tracing::warn!(signal = name, "second signal: exiting without draining");
            std::process::exit(130);
        }
    }
}

use chatoxide::config::{Command, Config};
use chatoxide::startup::{App, shutdown_signal};
use chatoxide::{import, resources, telemetry};
use std::process::ExitCode;

/// mimalloc: the server allocates many small, short-lived buffers (packets, JSON); glibc's
/// malloc was a sixth of its CPU time under load.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let (config, command) = Config::load_with_command()?;
    telemetry::init_logs(&config.log_filter, config.log_format, &config.node_name())
        .map_err(|why| anyhow::anyhow!("log filter: {why}"))?;
    match command {
        Some(Command::Import(args)) => import::run(&config, &args).await,
        None => serve(config).await.map(|()| ExitCode::SUCCESS),
    }
}

/// Serves chat until SIGTERM or Ctrl-C.
async fn serve(config: Config) -> anyhow::Result<()> {
    tracing::info!(config = ?config, "starting chatoxide");
    match resources::raise_open_files() {
        Ok(files) => tracing::info!(
            open_files = files,
            connections = resources::connections_allowed(files),
            "open-files limit raised to the hard limit"
        ),
        Err(err) => tracing::warn!(error = %err, "could not raise the open-files limit"),
    }
    telemetry::watch_runtime();
    let app = App::build(config).await?;
    tracing::info!(addr = %app.local_addr()?, "listening");
    app.run_until_stopped(shutdown_signal()).await
}

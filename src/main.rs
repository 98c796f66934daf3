use chatoxide::config::Config;
use chatoxide::resources;
use chatoxide::startup::{App, shutdown_signal};
use chatoxide::telemetry;

/// mimalloc: the server allocates many small, short-lived buffers (packets, JSON); glibc's
/// malloc was a sixth of its CPU time under load.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load()?;
    telemetry::init_logs(&config.log_filter, config.log_format);
    tracing::info!(config = %config.redacted(), "starting chatoxide");
    match resources::raise_open_files() {
        Ok(files) => tracing::info!(
            open_files = files,
            connections = resources::connections_allowed(files),
            "open-files limit raised to the hard limit"
        ),
        Err(err) => tracing::warn!(error = %err, "could not raise the open-files limit"),
    }
    let app = App::build(config).await?;
    tracing::info!(addr = %app.local_addr()?, "listening");
    app.run_until_stopped(shutdown_signal()).await
}

use chatoxide::config::Config;
use chatoxide::startup::{App, shutdown_signal};
use chatoxide::telemetry;

/// mimalloc: the server allocates many small, short-lived buffers (packets, JSON); glibc's
/// malloc was a sixth of its CPU time under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load()?;
    telemetry::init_logs(&config.log_filter, config.log_format);
    tracing::info!(config = %config.redacted(), "starting chatoxide");
    let app = App::build(config).await?;
    tracing::info!(addr = %app.local_addr()?, "listening");
    app.run_until_stopped(shutdown_signal()).await
}

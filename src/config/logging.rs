//! Logging: which lines, and in which format.

pub use crate::telemetry::LogFormat;

section! {
    #[command(next_help_heading = "Logging")]
    pub struct LoggingSettings {
        /// Log filter, in `RUST_LOG` syntax [default: info].
        #[arg(long, env = "RUST_LOG")]
        pub log_filter: Option<String>,
        /// `pretty` for people, `json` for machines [default: pretty].
        #[arg(long, env = "LOG_FORMAT")]
        pub log_format: Option<LogFormat>,
    }
}

/// What is logged, and how (the [`super::Config`] fields of these names).
pub(super) struct Logging {
    pub log_filter: String,
    pub log_format: LogFormat,
}

impl LoggingSettings {
    /// A filter that does not parse stops the start: silently logging something else than
    /// asked would hide the very lines someone wanted.
    pub(super) fn resolve(self) -> anyhow::Result<Logging> {
        let log_filter = self.log_filter.unwrap_or_else(|| "info".to_owned());
        if let Err(why) = crate::telemetry::log_filter(&log_filter) {
            anyhow::bail!(
                "RUST_LOG (--log-filter, log_filter) `{log_filter}` is not a log filter: {why}"
            );
        }
        Ok(Logging {
            log_filter,
            log_format: self.log_format.unwrap_or(LogFormat::Pretty),
        })
    }
}

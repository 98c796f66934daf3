//! The command line: the settings as flags (and environment variables), the file that may hold
//! them, and the one-off tasks run instead of serving.

use super::Settings;
use clap::Parser;
use std::path::PathBuf;

/// Command line of the `chatoxide` binary.
#[derive(Debug, Parser)]
#[command(
    name = "chatoxide",
    version,
    about = "A Socket.IO-compatible chat server"
)]
pub struct Cli {
    /// Optional TOML file with any of the settings below (keys as the long flags, with `_`).
    #[arg(long, env = "CHATOXIDE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
    /// What to do instead of serving; none: serve chat.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A one-off task run with the server's settings (the database above all), instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Load message history exported from another backend, one JSON object per line
    /// (docs/migrating-from-node.md#importing-history); exits 1 if any line was rejected.
    Import(ImportArgs),
}

/// `chatoxide import FILE`: settings go before `import` (`chatoxide --config x.toml import FILE`).
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// NDJSON file: `room`, `user`, `text`, `created_at` (RFC 3339 or Unix milliseconds), optional `id`.
    pub file: PathBuf,
    /// Lines stored per transaction, 1 to 10000 [default: 500].
    #[arg(long)]
    pub batch: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_subcommand_serves_and_import_takes_a_file_after_the_settings() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map_err(|e| e.to_string());
        assert!(parse(&["chatoxide", "--port", "4000"]).is_ok_and(|c| c.command.is_none()));
        let import = parse(&["chatoxide", "--config", "x.toml", "import", "h.ndjson"]);
        let Ok(Cli {
            config,
            command: Some(Command::Import(args)),
            ..
        }) = import
        else {
            panic!("not an import: {import:?}");
        };
        assert_eq!(config, Some(PathBuf::from("x.toml")));
        assert_eq!((args.file, args.batch), (PathBuf::from("h.ndjson"), None));
        let batch = parse(&["chatoxide", "import", "--batch", "20", "h.ndjson"]);
        assert!(
            batch.is_ok_and(
                |c| matches!(c.command, Some(Command::Import(a)) if a.batch == Some(20))
            )
        );
        assert!(parse(&["chatoxide", "import"]).is_err());
    }
}

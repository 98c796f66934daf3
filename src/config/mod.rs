//! Configuration: every setting is read from a flag, an environment variable or a key of a TOML
//! file, in that order of precedence, over the defaults, and resolved into one [`Config`].
//!
//! Each section owns its settings (the field, its `--help` text, its flag, variable and key),
//! their defaults and their validation; [`Settings`] puts the sections side by side, and
//! [`Config::resolve`] resolves each one. A new setting is a field of its section and a line of
//! that section's `resolve`. The README's configuration table lists every flag (a test checks it).

#[macro_use]
mod section;

mod admin;
mod chat;
mod cli;
mod cluster;
mod compat;
mod identity;
mod limits;
mod logging;
mod outbox;
mod recovery;
mod resolve;
mod server;
mod settings;
mod storage;
mod writer;

pub use admin::{AdminCredentials, AdminSettings};
pub use chat::ChatSettings;
pub use cli::{Cli, Command, ImportArgs};
pub use cluster::{AdapterKind, ClusterConfig, ClusterSettings};
pub use compat::CompatSettings;
pub use identity::{AuthMode, IdentitySettings, TokenRules};
pub use limits::LimitSettings;
pub use logging::{LogFormat, LoggingSettings};
pub use outbox::{BrokerKind, OutboxConfig, OutboxSettings};
pub use recovery::{RecoveringNamespaces, RecoveryConfig, RecoverySettings};
pub use resolve::Config;
pub use server::ServerSettings;
pub use settings::{Settings, flags};
pub use storage::StorageSettings;
pub use writer::WriterSettings;

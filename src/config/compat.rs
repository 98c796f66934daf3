//! Node compatibility: the defaults that `--node-compat` changes, Node socket.io's own where they
//! differ from chatoxide's (a Node frontend must not trip over a smaller limit). One place for
//! both sets; the sections take their defaults from here.

section! {
    #[command(next_help_heading = "Node compatibility")]
    pub struct CompatSettings {
        /// Node socket.io's defaults where they differ from chatoxide's (docs/migrating-from-node.md):
        /// 1 MB payloads, a 45 s connect timeout, no per-user command limits. Settings given
        /// explicitly still win [default: false].
        #[arg(long, env = "CHATOXIDE_NODE_COMPAT", num_args = 0..=1, default_missing_value = "true")]
        pub node_compat: Option<bool>,
    }
}

/// The defaults of the settings Node compatibility changes.
pub(super) struct Defaults {
    /// Node: `maxHttpBufferSize` 1e6.
    pub max_payload: usize,
    /// Node: `connectTimeout` 45000.
    pub connect_timeout_ms: u64,
    /// Node has no per-user command limits.
    pub per_user_limits: bool,
}

impl Defaults {
    const CHATOXIDE: Self = Self {
        max_payload: 100_000,
        connect_timeout_ms: 10_000,
        per_user_limits: true,
    };
    const NODE: Self = Self {
        max_payload: 1_000_000,
        connect_timeout_ms: 45_000,
        per_user_limits: false,
    };
}

impl CompatSettings {
    /// Whether Node's defaults are taken, and the defaults taken.
    pub(super) fn resolve(&self) -> (bool, Defaults) {
        match self.node_compat.unwrap_or(false) {
            true => (true, Defaults::NODE),
            false => (false, Defaults::CHATOXIDE),
        }
    }
}

//! The chat's own rules: how long a message may be, when a room is large, and the relay rules
//! for frontends written for a Node server.

use crate::chat::{LargeRoom, TextLimit};
use crate::rules::{RuleSpec, Rules};

section! {
    #[command(next_help_heading = "Chat")]
    pub struct ChatSettings {
        /// Longest message text, in characters after trimming [default: 4000].
        #[arg(long, env = "CHATOXIDE_MAX_TEXT_LEN")]
        pub max_text_len: Option<usize>,
        /// Rooms with more members than this are large: their joins, leaves and read marks are not
        /// told to every member; their member count is, once a second [default: 1000].
        #[arg(long, env = "CHATOXIDE_LARGE_ROOM")]
        pub large_room: Option<u64>,
        /// Relay rules for frontends written for a Node server (`[[rules]]` tables; the TOML file
        /// only; docs/migrating-from-node.md).
        #[arg(skip)]
        pub rules: Option<Vec<RuleSpec>>,
    }
}

/// The chat's rules (the [`super::Config`] fields of these names).
pub(super) struct ChatRules {
    pub text_limit: TextLimit,
    pub large_room: LargeRoom,
    pub rules: Rules,
}

impl ChatSettings {
    pub(super) fn resolve(self) -> anyhow::Result<ChatRules> {
        let max_text_len = self.max_text_len.unwrap_or(TextLimit::default().0);
        anyhow::ensure!(
            (1..=1_000_000).contains(&max_text_len),
            "max_text_len must be 1 to 1000000"
        );
        let large_room = LargeRoom(self.large_room.unwrap_or(LargeRoom::default().0));
        anyhow::ensure!(large_room.0 >= 1, "large_room must be at least 1");
        let rules = Rules::parse(self.rules.as_deref().unwrap_or_default())
            .map_err(|why| anyhow::anyhow!("{why}"))?;
        Ok(ChatRules {
            text_limit: TextLimit(max_text_len),
            large_room,
            rules,
        })
    }
}

//! The names on the wire, in one place and free of everything else: the contract's commands
//! (client → server), each with the allowance it draws on, and its events (server → client).
//!
//! A leaf: rate limits, relay rules, metrics and the Socket.IO handlers all depend on this
//! module, and it depends on none of them. A new command is one variant here; the compiler then
//! asks for its handler (realtime) and its allowance (below) before anything builds.

/// A command of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Join,
    Leave,
    Message,
    Typing,
    History,
    Read,
    Presence,
    Members,
    Edit,
    Delete,
}

impl Command {
    /// Every command, in the order of the contract's table.
    pub const ALL: [Self; 10] = [
        Self::Join,
        Self::Leave,
        Self::Message,
        Self::Typing,
        Self::History,
        Self::Read,
        Self::Presence,
        Self::Members,
        Self::Edit,
        Self::Delete,
    ];

    /// Its event name, which is also its label in the metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Leave => "leave",
            Self::Message => "message",
            Self::Typing => "typing",
            Self::History => "history",
            Self::Read => "read",
            Self::Presence => "presence",
            Self::Members => "members",
            Self::Edit => "edit",
            Self::Delete => "delete",
        }
    }

    /// The command an event name names.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The allowance it draws on: commands that cost alike share one.
    pub const fn allowance(self) -> Allowance {
        match self {
            Self::Message => Allowance::Messages,
            // A membership change is a write, whichever way it goes.
            Self::Join | Self::Leave => Allowance::Memberships,
            // A page of members or of those online costs what a page of history costs.
            Self::History | Self::Members | Self::Presence => Allowance::Reads,
            Self::Edit | Self::Delete => Allowance::Edits,
            Self::Read => Allowance::ReadMarks,
            Self::Typing => Allowance::Typing,
        }
    }
}

/// What a user may do so often (`--limit-*` sets each one's rate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Allowance {
    /// `message`, and events relayed by rules.
    Messages,
    /// `join` and `leave`, and rooms entered by rules.
    Memberships,
    /// `history`, `members` and `presence`.
    Reads,
    /// `edit` and `delete`.
    Edits,
    /// `read`.
    ReadMarks,
    /// `typing`: over its allowance a signal is dropped in silence (it is only a hint).
    Typing,
}

impl Allowance {
    /// Whether a command over this allowance is answered `ok` and dropped rather than refused.
    pub const fn drops_in_silence(self) -> bool {
        matches!(self, Self::Typing)
    }
}

/// Server → client events.
pub mod event {
    pub const MESSAGE: &str = "message";
    pub const MESSAGE_UPDATED: &str = "message_updated";
    pub const MESSAGE_DELETED: &str = "message_deleted";
    pub const USER_JOINED: &str = "user_joined";
    pub const USER_LEFT: &str = "user_left";
    pub const TYPING: &str = "typing";
    pub const READ: &str = "read";
    pub const MEMBER_COUNT: &str = "member_count";
    pub const ERROR: &str = "error";

    /// Every event the server broadcasts to rooms (`error` goes to one socket only).
    pub const BROADCAST: [&str; 8] = [
        MESSAGE,
        MESSAGE_UPDATED,
        MESSAGE_DELETED,
        USER_JOINED,
        USER_LEFT,
        TYPING,
        READ,
        MEMBER_COUNT,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_found_by_its_name_and_names_are_distinct() {
        for command in Command::ALL {
            assert_eq!(Command::named(command.name()), Some(command));
        }
        let names: std::collections::HashSet<_> = Command::ALL.map(Command::name).into();
        assert_eq!(names.len(), Command::ALL.len());
        assert_eq!(Command::named("subscribe"), None);
    }

    #[test]
    fn only_typing_is_dropped_over_its_allowance() {
        let silent: Vec<_> = Command::ALL
            .into_iter()
            .filter(|c| c.allowance().drops_in_silence())
            .collect();
        assert_eq!(silent, [Command::Typing]);
    }
}

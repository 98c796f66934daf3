//! What the process may hold: every connection is an open file, and the soft limit a shell
//! hands out (often 1,024) is far below what the server can serve.

/// Raises the open-files soft limit to the hard limit and returns the new soft limit.
pub fn raise_open_files() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Files the process keeps for itself (database, Redis, listener, logs), so not for sockets.
const RESERVED_FILES: u64 = 64;

/// How many client connections an open-files limit leaves room for.
pub fn connections_allowed(open_files: u64) -> u64 {
    open_files.saturating_sub(RESERVED_FILES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_never_lowers_the_limit() -> std::io::Result<()> {
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
        let raised = raise_open_files()?;
        assert!(raised >= soft, "{raised} < {soft}");
        assert!(raised <= hard.max(soft), "{raised} > hard {hard}");
        assert_eq!(connections_allowed(raised), raised - RESERVED_FILES);
        assert_eq!(connections_allowed(10), 0);
        Ok(())
    }
}

//! Local ports handed out to the clients of one load process (see
//! [`chatoxide_sio::Socket::connect_from`]): thousands of connections to one server port make
//! the kernel's search for a free ephemeral port the load tool's main cost.

use std::sync::atomic::{AtomicU32, Ordering};

/// Ports from `first` on; a port that is taken (a listening service) is skipped by the caller
/// asking for the next.
pub struct SourcePorts(AtomicU32);

impl SourcePorts {
    pub fn from(first: u16) -> Self {
        Self(AtomicU32::new(u32::from(first)))
    }

    /// The next port; `None` once they ran out.
    pub fn next(&self) -> Option<u16> {
        u16::try_from(self.0.fetch_add(1, Ordering::Relaxed)).ok()
    }
}

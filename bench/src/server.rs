//! What the server process costs, read from /proc (the load tool runs on the server's machine):
//! resident memory, CPU time, and the kernel's TCP buffer pages.

use anyhow::Context;

/// Clock ticks per second of the CPU times in /proc (USER_HZ, 100 on Linux): /proc/<pid>/stat's
/// utime and stime, /proc/stat's per-core times.
pub const TICKS_PER_SEC: f64 = 100.0;

/// Resident memory in KiB (`VmRSS` of /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

/// CPU seconds (user + system) the process has used so far, all its threads.
pub fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis
    // start at field 3, so utime (14) and stime (15) are the 12th and 13th of them.
    let after = stat.rsplit_once(')').context("malformed stat")?.1;
    let mut fields = after.split_whitespace().skip(11);
    let utime: f64 = fields
        .next()
        .and_then(|v| v.parse().ok())
        .context("utime")?;
    let stime: f64 = fields
        .next()
        .and_then(|v| v.parse().ok())
        .context("stime")?;
    Ok((utime + stime) / TICKS_PER_SEC)
}

/// CPU seconds of several processes (the nodes of a cluster).
pub fn total_cpu_secs(pids: &[u32]) -> anyhow::Result<f64> {
    pids.iter().map(|&pid| cpu_secs(pid)).sum()
}

/// Pages the kernel holds for TCP buffers, all sockets of the machine (both ends here).
pub fn tcp_pages() -> anyhow::Result<u64> {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").context("reading sockstat")?;
    Ok(sockstat
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| l.split_whitespace().skip_while(|w| *w != "mem").nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

//! Reads of `/proc` about one process: whether it lives, its parent, its
//! command line, its descendants, its memory, CPU time and context switches.
//!
//! Shared by the integration tests (through `tests/common`) and by the bench
//! (`benches/host/main.rs` includes this file by path), so it uses nothing but
//! `std` and `libc`. A missing file means the process is gone: the readers
//! return `None` / `Err` and never panic, because the processes they watch
//! may exit between two reads.
// Each test binary and the bench use a different subset of these readers.
#![allow(dead_code)]

use std::fs;

/// The fields of `/proc/PID/stat` after the `(comm)` field: index 0 is the
/// state (field 3 in proc(5)), 1 the parent pid, 11 utime, 12 stime.
/// `comm` may itself hold spaces or `)`, so the split starts at the last `)`.
pub fn stat_fields(pid: u32) -> Result<Vec<String>, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("stat: {e}"))?;
    let rest = stat.rsplit_once(')').ok_or("bad stat")?.1;
    Ok(rest.split_whitespace().map(str::to_owned).collect())
}

/// Whether a process still exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .map(|rest| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Waits until none of `pids` is alive (zombies count as gone), polling,
/// for at most `within`; returns those still alive then.
pub fn wait_gone(pids: &[u32], within: std::time::Duration) -> Vec<u32> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The parent pid of a live process.
pub fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid).ok()?.get(1)?.parse().ok()
}

/// The raw arguments of a process (`/proc/PID/cmdline` split at NULs).
pub fn cmdline_args(pid: u32) -> Option<Vec<Vec<u8>>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(raw.split(|&b| b == 0).map(<[u8]>::to_vec).collect())
}

/// The command line of a process, NULs as spaces, trimmed.
pub fn cmdline(pid: u32) -> Option<String> {
    fs::read(format!("/proc/{pid}/cmdline")).ok().map(|c| {
        String::from_utf8_lossy(&c)
            .replace('\0', " ")
            .trim()
            .to_owned()
    })
}

/// PIDs of live descendants of `pid`, found through each process's main
/// thread's `children` list.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        let Ok(children) = fs::read_to_string(format!("/proc/{p}/task/{p}/children")) else {
            continue;
        };
        for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            out.push(c);
            frontier.push(c);
        }
    }
    out
}

/// Every pid in `/proc` (processes only, not threads).
pub fn all_pids() -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect()
}

/// One `kB` line of `/proc/PID/status` (`VmRSS`, `VmHWM`, …), in KiB.
pub fn status_kib(pid: u32, key: &str) -> Result<u64, String> {
    let status =
        fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("status: {e}"))?;
    status
        .lines()
        .find(|l| l.split(':').next() == Some(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no {key}"))
}

/// Peak resident memory (VmHWM) of a live process, in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM").ok()
}

/// Resident file-backed pages (RssFile) of a live process, in KiB: mostly
/// the executable itself, which in a debug build is ~200 MB on disk.
pub fn rss_file_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "RssFile").ok()
}

/// (VmRSS, VmHWM) of one process, MiB.
pub fn rss_and_peak_mib(pid: u32) -> Result<(f64, f64), String> {
    let mib = |kib: u64| kib as f64 / 1024.0;
    Ok((
        mib(status_kib(pid, "VmRSS")?),
        mib(status_kib(pid, "VmHWM")?),
    ))
}

/// Clock ticks per second, the unit of the CPU times in `/proc/PID/stat`.
fn clk_tck() -> f64 {
    // SAFETY: sysconf has no memory effects.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// utime+stime of one process (not its children), seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let f = stat_fields(pid)?;
    let ticks = |i: usize, what: &str| -> Result<f64, String> {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("bad {what}"))
    };
    Ok((ticks(11, "utime")? + ticks(12, "stime")?) / clk_tck())
}

/// Voluntary + involuntary context switches summed over a process's threads.
pub fn context_switches(pid: u32) -> Result<u64, String> {
    let mut sum = 0;
    let dir = fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| format!("task: {e}"))?;
    for e in dir.flatten() {
        let s = fs::read_to_string(e.path().join("status")).unwrap_or_default();
        for ln in s.lines() {
            if ln.starts_with("voluntary_ctxt_switches:")
                || ln.starts_with("nonvoluntary_ctxt_switches:")
            {
                sum += ln
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Ok(sum)
}

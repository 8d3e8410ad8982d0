//! `cargo bench`: end-to-end performance of the `rpc` binary, driven the way a
//! client drives it (spawned child, line-delimited JSON on stdin/stdout),
//! against the fixture providers in `fixtures/`. Prints one markdown table
//! with median and min–max over repeated runs, the target for each row and
//! whether it was met. See `benches/README.md` for what every row means.
//!
//! Environment:
//! - `BENCH_RUNS` (default 10): runs per row.
//! - `BENCH_STALL_RUNS` (default `BENCH_RUNS`): runs of the 1,000,000-delta
//!   stalled-reader row (each takes ≥ 5 s by design).
//! - `BENCH_ONLY` (optional): comma-separated row groups to run
//!   (`spawn,resume,latency,throughput,idle,stall`); default all.
//!
//! The harness reads the host's stdout with 1 MiB `read(2)` calls straight
//! into its line buffer and recognises frames by their fixed prefixes (the
//! host writes `{"type":"…"` first); serde is used only for the handful of
//! non-streaming frames. Its own CPU time is reported beside the throughput
//! rows so it can be seen not to be the bottleneck. Every wait has a deadline:
//! a hang fails the row (reported in the table) instead of stalling the bench.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// The binary under test, built by cargo for this bench (release profile).
const BIN: &str = env!("CARGO_BIN_EXE_rpc");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

const READ_CHUNK: usize = 1 << 20;
const READY_TIMEOUT: f64 = 10.0;
const SMALL_TURN_TIMEOUT: f64 = 30.0;
const BIG_TURN_TIMEOUT: f64 = 120.0;
const STALL_TURN_TIMEOUT: f64 = 180.0;
const STALL_SECS: f64 = 5.0;
/// Warm prompts per run in the latency rows (they are cheap, and a busy
/// machine makes single sub-millisecond samples noisy): n = runs × this.
const LATENCY_PROMPTS_PER_RUN: usize = 5;

type Res<T> = Result<T, String>;

// ---------------------------------------------------------------------------
// clocks and /proc

/// CLOCK_MONOTONIC in seconds: the clock fake_llm.py stamps requests with.
fn mono() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// This (harness) process's user+system CPU seconds, all threads.
fn self_cpu() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// user+system CPU seconds of this process's reaped children.
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no memory effects.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// utime+stime of one process (not its children), seconds.
fn proc_cpu(pid: u32) -> Res<f64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("stat: {e}"))?;
    let r = s.rfind(')').ok_or("bad stat")?;
    let f: Vec<&str> = s[r + 2..].split_whitespace().collect();
    // f[0] is field 3 (state); utime = field 14, stime = field 15.
    let ut: f64 = f[11].parse().map_err(|_| "bad utime")?;
    let st: f64 = f[12].parse().map_err(|_| "bad stime")?;
    Ok((ut + st) / clk_tck())
}

/// Voluntary + involuntary context switches summed over a process's threads.
fn proc_ctxt(pid: u32) -> Res<u64> {
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

/// (VmRSS, VmHWM) of one process, MiB.
fn proc_mem(pid: u32) -> Res<(f64, f64)> {
    let s =
        fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("status: {e}"))?;
    let mut rss = None;
    let mut hwm = None;
    for ln in s.lines() {
        let kb = || {
            ln.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
                .map(|k| k / 1024.0)
        };
        if ln.starts_with("VmRSS:") {
            rss = kb();
        } else if ln.starts_with("VmHWM:") {
            hwm = kb();
        }
    }
    Ok((rss.ok_or("no VmRSS")?, hwm.ok_or("no VmHWM")?))
}

// ---------------------------------------------------------------------------
// frame recognition (no serde on the hot path)

fn starts(line: &[u8], prefix: &str) -> bool {
    line.starts_with(prefix.as_bytes())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let last = hay.len() - needle.len();
    let mut i = 0;
    while i <= last {
        match hay[i..=last].iter().position(|&b| b == first) {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

const DELTA_MARK: &[u8] = br#""event":{"type":"text_delta","delta":""#;

/// The text of a `message_update` text_delta frame, appended to `out`.
/// Returns false if the line is not a text delta.
fn text_delta(line: &[u8], out: &mut Vec<u8>) -> bool {
    if !starts(line, r#"{"type":"message_update""#) {
        return false;
    }
    let Some(i) = find(line, DELTA_MARK) else {
        // Key order differs from what the host writes today: parse it.
        let v: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(_) => return false,
        };
        if v["event"]["type"] != "text_delta" {
            return false;
        }
        out.extend_from_slice(v["event"]["delta"].as_str().unwrap_or("").as_bytes());
        return true;
    };
    let j = i + DELTA_MARK.len();
    // The string ends at the first quote not preceded by an odd number of
    // backslashes.
    let mut k = j;
    let mut escaped = false;
    while k < line.len() {
        match line[k] {
            b'\\' => escaped = true,
            b'"' => break,
            _ => {}
        }
        k += 1;
    }
    if !escaped {
        out.extend_from_slice(&line[j..k]);
        return true;
    }
    let mut k = j;
    loop {
        if k >= line.len() {
            return false;
        }
        if line[k] == b'"' {
            let mut nb = 0;
            while line[k - 1 - nb] == b'\\' {
                nb += 1;
            }
            if nb % 2 == 0 {
                break;
            }
        }
        k += 1;
    }
    match serde_json::from_slice::<String>(&line[j - 1..=k]) {
        Ok(s) => out.extend_from_slice(s.as_bytes()),
        Err(_) => return false,
    }
    true
}

// ---------------------------------------------------------------------------
// one spawned host

struct Host {
    child: Child,
    stdin: Option<ChildStdin>,
    _stdout: ChildStdout,
    fd: i32,
    pid: u32,
    /// Bytes read but not yet consumed as lines.
    pending: Vec<u8>,
    /// Where in `pending` line parsing resumes.
    consumed: usize,
    last_read_t: f64,
    total_bytes: u64,
    stderr_path: PathBuf,
    t_spawn: f64,
}

impl Host {
    fn spawn(args: &[String], env: &[(&str, String)], dir: &Path, tag: &str) -> Res<Host> {
        let home = dir.join("home");
        let cwd = dir.join("cwd");
        fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        fs::create_dir_all(&cwd).map_err(|e| e.to_string())?;
        let stderr_path = dir.join(format!("{tag}.stderr"));
        let errf = fs::File::create(&stderr_path).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .env("HOME", &home)
            .env("LANG", "C.UTF-8")
            .current_dir(&cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(errf));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let t_spawn = mono();
        let mut child = cmd.spawn().map_err(|e| format!("spawn {BIN}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let fd = stdout.as_raw_fd();
        Ok(Host {
            pid: child.id(),
            child,
            stdin,
            _stdout: stdout,
            fd,
            pending: Vec::with_capacity(2 * READ_CHUNK),
            consumed: 0,
            last_read_t: t_spawn,
            total_bytes: 0,
            stderr_path,
            t_spawn,
        })
    }

    fn send(&mut self, line: &str) -> Res<()> {
        let w = self.stdin.as_mut().ok_or("stdin closed")?;
        w.write_all(line.as_bytes())
            .and_then(|_| w.write_all(b"\n"))
            .and_then(|_| w.flush())
            .map_err(|e| format!("write to host stdin: {e}"))
    }

    fn stderr_tail(&self) -> String {
        let s = fs::read(&self.stderr_path).unwrap_or_default();
        let s = String::from_utf8_lossy(&s[s.len().saturating_sub(600)..]).into_owned();
        if s.trim().is_empty() {
            String::new()
        } else {
            format!("; host stderr: {}", s.trim())
        }
    }

    /// Feeds complete lines (without `\n`) with the time the chunk holding
    /// them was read to `f` until it returns true. Reads 1 MiB at a time.
    fn read_lines(
        &mut self,
        deadline: f64,
        what: &str,
        mut f: impl FnMut(&[u8], f64) -> bool,
    ) -> Res<()> {
        loop {
            // Lines already buffered.
            while let Some(p) = self.pending[self.consumed..]
                .iter()
                .position(|&b| b == b'\n')
            {
                let start = self.consumed;
                let end = start + p;
                self.consumed = end + 1;
                if f(&self.pending[start..end], self.last_read_t) {
                    return Ok(());
                }
            }
            // Keep only the partial line.
            if self.consumed > 0 {
                self.pending.drain(..self.consumed);
                self.consumed = 0;
            }
            let left = deadline - mono();
            if left <= 0.0 {
                return Err(format!("timeout waiting for {what}{}", self.stderr_tail()));
            }
            let mut pfd = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = (left * 1000.0).ceil().min(i32::MAX as f64) as i32;
            // SAFETY: one pollfd we own.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("poll: {e}"));
            }
            if r == 0 {
                continue; // deadline re-checked above
            }
            self.pending.reserve(READ_CHUNK);
            let len = self.pending.len();
            // SAFETY: reading into the reserved, uninitialised tail of
            // `pending`, then extending its length by what was written.
            let n = unsafe {
                libc::read(
                    self.fd,
                    self.pending.as_mut_ptr().add(len) as *mut libc::c_void,
                    READ_CHUNK,
                )
            };
            let t = mono();
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("read: {e}"));
            }
            if n == 0 {
                return Err(format!(
                    "host closed stdout while waiting for {what}{}",
                    self.stderr_tail()
                ));
            }
            // SAFETY: the kernel initialised n bytes after len.
            unsafe { self.pending.set_len(len + n as usize) };
            self.total_bytes += n as u64;
            self.last_read_t = t;
        }
    }

    /// Waits for `ready`; returns (spawn→ready seconds, the ready frame).
    fn wait_ready(&mut self) -> Res<(f64, Value)> {
        let mut got = None;
        self.read_lines(mono() + READY_TIMEOUT, "ready", |line, t| {
            if starts(line, r#"{"type":"ready""#) {
                got = Some((t, line.to_vec()));
                return true;
            }
            if starts(line, r#"{"type":"error""#) {
                got = Some((-1.0, line.to_vec()));
                return true;
            }
            false
        })?;
        let (t, line) = got.expect("set before returning");
        if t < 0.0 {
            return Err(format!(
                "start-up error: {}",
                String::from_utf8_lossy(&line)
            ));
        }
        let v: Value = serde_json::from_slice(&line).map_err(|e| format!("ready: {e}"))?;
        Ok((t - self.t_spawn, v))
    }

    /// Sends a command and waits for the `response` (or `error`) with its id.
    fn command(&mut self, cmd: Value, timeout: f64) -> Res<Value> {
        let id = cmd["id"]
            .as_str()
            .ok_or("command without string id")?
            .to_owned();
        self.send(&cmd.to_string())?;
        let needle = format!(r#""id":"{id}""#);
        let mut got = None;
        self.read_lines(mono() + timeout, &format!("answer to {id}"), |line, _| {
            if (starts(line, r#"{"type":"response""#) || starts(line, r#"{"type":"error""#))
                && find(line, needle.as_bytes()).is_some()
            {
                got = Some(line.to_vec());
                return true;
            }
            false
        })?;
        serde_json::from_slice(&got.expect("set")).map_err(|e| e.to_string())
    }

    /// Closes stdin and waits for the exit (kills after `grace`).
    fn close(mut self, grace: f64) -> Res<()> {
        drop(self.stdin.take());
        let end = mono() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) if st.success() => return Ok(()),
                Ok(Some(st)) => return Err(format!("host exited with {st}{}", self.stderr_tail())),
                Ok(None) if mono() < end => std::thread::sleep(Duration::from_millis(2)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!("host did not exit within {grace} s of stdin EOF"));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Only our own child, by its handle.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// one prompt turn

#[derive(Default)]
struct Turn {
    t_sent: f64,
    t_first_delta: Option<f64>,
    t_last_delta: Option<f64>,
    t_end: Option<f64>,
    n_deltas: u64,
    text: Vec<u8>,
    /// stdout bytes from the prompt to agent_end inclusive.
    bytes: u64,
    response: Option<Vec<u8>>,
    ended: bool,
}

impl Turn {
    /// Returns true once the prompt's response has arrived.
    fn on_line(&mut self, line: &[u8], t: f64) -> bool {
        if !self.ended {
            self.bytes += line.len() as u64 + 1;
        }
        if text_delta(line, &mut self.text) {
            self.n_deltas += 1;
            if self.t_first_delta.is_none() {
                self.t_first_delta = Some(t);
            }
            self.t_last_delta = Some(t);
            return false;
        }
        if starts(line, r#"{"type":"agent_end""#) {
            self.t_end = Some(t);
            self.ended = true;
            return false;
        }
        if (starts(line, r#"{"type":"response""#) && find(line, br#""command":"prompt""#).is_some())
            || starts(line, r#"{"type":"error""#)
        {
            self.response = Some(line.to_vec());
            return true;
        }
        false
    }

    fn check_ok(&self) -> Res<()> {
        let r = self.response.as_deref().ok_or("no response")?;
        if find(r, br#""ok":true"#).is_none() {
            return Err(format!(
                "prompt failed: {}",
                String::from_utf8_lossy(&r[..r.len().min(600)])
            ));
        }
        Ok(())
    }

    fn first_delta_s(&self) -> Res<f64> {
        Ok(self.t_first_delta.ok_or("no text_delta")? - self.t_sent)
    }
    fn end_s(&self) -> Res<f64> {
        Ok(self.t_end.ok_or("no agent_end")? - self.t_sent)
    }
}

static PROMPT_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn prompt(host: &mut Host, message: &str, timeout: f64) -> Res<Turn> {
    let n = PROMPT_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let cmd = json!({"type": "prompt", "id": format!("b{n}"), "message": message}).to_string();
    let mut turn = Turn {
        t_sent: mono(),
        ..Default::default()
    };
    host.send(&cmd)?;
    host.read_lines(mono() + timeout, "the prompt's response", |l, t| {
        turn.on_line(l, t)
    })?;
    turn.check_ok()?;
    Ok(turn)
}

// ---------------------------------------------------------------------------
// statistics and the table

#[derive(Clone)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
    n: usize,
}

fn stat(v: &[f64]) -> Option<Stat> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Some(Stat {
        median,
        min: s[0],
        max: s[n - 1],
        n,
    })
}

#[derive(Clone, Copy)]
enum Target {
    None,
    /// median ≤ x
    AtMost(f64),
    /// median ≥ x
    AtLeast(f64),
}

struct Row {
    group: String,
    name: String,
    unit: String,
    stat: Option<Stat>,
    /// Overrides the value cells (e.g. "10/10").
    text: Option<String>,
    decimals: usize,
    target: Target,
    target_text: String,
    /// Overrides the computed status.
    status: Option<String>,
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Table {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        group: &str,
        name: &str,
        unit: &str,
        values: &[f64],
        decimals: usize,
        target: Target,
        target_text: &str,
    ) {
        self.rows.push(Row {
            group: group.into(),
            name: name.into(),
            unit: unit.into(),
            stat: stat(values),
            text: None,
            decimals,
            target,
            target_text: target_text.into(),
            status: None,
        });
    }
    fn add_text(
        &mut self,
        group: &str,
        name: &str,
        text: String,
        target_text: &str,
        status: Option<bool>,
    ) {
        self.rows.push(Row {
            group: group.into(),
            name: name.into(),
            unit: String::new(),
            stat: None,
            text: Some(text),
            decimals: 0,
            target: Target::None,
            target_text: target_text.into(),
            status: Some(match status {
                Some(true) => "**met**".into(),
                Some(false) => "**MISSED**".into(),
                None => "info".into(),
            }),
        });
    }
    fn fail(&mut self, group: &str, what: &str, err: &str) {
        eprintln!("[bench] {group}: FAILED: {err}");
        self.rows.push(Row {
            group: group.into(),
            name: what.into(),
            unit: String::new(),
            stat: None,
            text: Some(format!(
                "FAILED: {}",
                err.replace('|', "/").replace('\n', " ")
            )),
            decimals: 0,
            target: Target::None,
            target_text: String::new(),
            status: Some("**FAILED**".into()),
        });
    }

    fn print(&self, machine: &str, runs: usize, wall: f64) {
        let mut out = String::new();
        out.push_str("\n## agent-rpc host benchmark (`cargo bench`)\n\n");
        out.push_str(machine);
        out.push_str(&format!(
            "\nBinary: `{BIN}`. Cells: median (min–max) over n runs (default n = {runs}). Total bench wall time {wall:.0} s.\n\n"
        ));
        out.push_str("| # | measurement | median | min – max | n | target | status |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for r in &self.rows {
            let (med, range, n) = match (&r.text, &r.stat) {
                (Some(t), _) => (t.clone(), String::new(), String::new()),
                (None, Some(s)) => {
                    let f = |x: f64| fmt_num(x, r.decimals);
                    (
                        format!("{} {}", f(s.median), r.unit),
                        format!("{} – {}", f(s.min), f(s.max)),
                        s.n.to_string(),
                    )
                }
                (None, None) => ("n/a".into(), String::new(), String::new()),
            };
            let status = r
                .status
                .clone()
                .unwrap_or_else(|| match (&r.stat, r.target) {
                    (Some(s), Target::AtMost(x)) => met(s.median <= x),
                    (Some(s), Target::AtLeast(x)) => met(s.median >= x),
                    (None, Target::AtMost(_) | Target::AtLeast(_)) => "**MISSED**".into(),
                    _ => "info".into(),
                });
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                r.group, r.name, med, range, n, r.target_text, status
            ));
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
        println!("{out}");
    }
}

fn met(ok: bool) -> String {
    if ok {
        "**met**".into()
    } else {
        "**MISSED**".into()
    }
}

fn fmt_num(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    if decimals == 0 && x.abs() >= 10_000.0 {
        // thousands separators for large integers
        let neg = s.starts_with('-');
        let digits: Vec<char> = s.trim_start_matches('-').chars().collect();
        let mut o = String::new();
        for (i, c) in digits.iter().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                o.push(',');
            }
            o.push(*c);
        }
        return if neg { format!("-{o}") } else { o };
    }
    s
}

// ---------------------------------------------------------------------------
// machine

fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let procs = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let arch = std::env::consts::ARCH;
    let load = fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "Machine: CPU {model}, {cores} cores usable ({procs} in /proc/cpuinfo), RAM {mem}, kernel Linux {kernel} {arch}; date {} UTC; load average at start {load} (other work on the machine skews every time-based row).\n",
        utc_now()
    )
}

fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // civil_from_days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn iso_ts(i: u64) -> String {
    format!(
        "2026-11-21T05:{:02}:{:02}.{:03}Z",
        (i / 60) % 60,
        i % 60,
        i % 1000
    )
}

// ---------------------------------------------------------------------------
// fixtures

fn ext(name: &str) -> String {
    format!("{ROOT}/fixtures/providers/{name}")
}

fn tmpdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("rpc-bench-{tag}-"))
        .tempdir()
        .expect("temp dir")
}

fn data_dir_args(dir: &Path) -> Vec<String> {
    vec!["--data-dir".into(), dir.join("data").display().to_string()]
}

/// The fake HTTP model server (fixtures/http/fake_llm.py), stopped by
/// closing its stdin.
struct Fake {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
}

impl Fake {
    fn start() -> Res<Fake> {
        let mut child = Command::new("python3")
            .arg(format!("{ROOT}/fixtures/http/fake_llm.py"))
            .args(["--port", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start fake_llm.py: {e}"))?;
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().ok_or("no stdout")?)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("fake_llm.py said {line:?}"))?;
        Ok(Fake { child, stdin, port })
    }

    fn get_json(&self, path: &str) -> Res<Value> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(20))).ok();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
        let p = find(&buf, b"\r\n\r\n").ok_or("no header end")?;
        serde_json::from_slice(&buf[p + 4..]).map_err(|e| format!("{path}: {e}"))
    }

    fn requests(&self) -> Res<Vec<Value>> {
        let v = self.get_json("/_requests")?;
        Ok(v.as_array()
            .ok_or("/_requests: not a list")?
            .iter()
            .filter(|r| r["path"] == "/v1/chat/completions")
            .cloned()
            .collect())
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "OPENAI_BASE_URL",
                format!("http://127.0.0.1:{}/v1", self.port),
            ),
            ("OPENAI_API_KEY", "dummy".into()),
        ]
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let end = mono() + 2.0;
        while mono() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal keep-alive HTTP/1.1 client for the fake: the provider's own
/// latency and serve time, without the host in the way.
struct DirectHttp {
    s: TcpStream,
    port: u16,
}

struct DirectReply {
    /// request written → first byte of a non-empty content delta read
    first_content_s: f64,
    /// request written → terminating chunk read
    total_s: f64,
    content_chunks: usize,
}

impl DirectHttp {
    fn connect(port: u16) -> Res<DirectHttp> {
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_nodelay(true).ok();
        Ok(DirectHttp { s, port })
    }

    fn post(&mut self, body: &[u8], timeout: f64, count: bool) -> Res<DirectReply> {
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nAuthorization: Bearer dummy\r\nAccept: text/event-stream\r\nContent-Length: {}\r\n\r\n",
            self.port,
            body.len()
        );
        let mut req = head.into_bytes();
        req.extend_from_slice(body);
        let deadline = mono() + timeout;
        let t0 = mono();
        self.s.write_all(&req).map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; READ_CHUNK];
        // The previous read's last bytes are kept in front of the new ones so
        // a marker split across reads is still seen (and counted once: only
        // matches that end inside the new bytes count).
        let mut win: Vec<u8> = Vec::with_capacity(READ_CHUNK + 64);
        let mut first = None;
        let mut chunks = 0;
        // Every reply here is `[[n=..]]` deltas of "tok "; the first chunk's
        // `"content":""` does not match.
        const C: &[u8] = br#""content":"tok "#;
        const END: &[u8] = b"\r\n0\r\n\r\n"; // the terminating chunk
                                             // One timeout for the whole reply (not a setsockopt per read).
        self.s
            .set_read_timeout(Some(Duration::from_secs_f64(timeout)))
            .ok();
        loop {
            if mono() > deadline {
                return Err("direct HTTP: timeout".into());
            }
            let n = self
                .s
                .read(&mut buf)
                .map_err(|e| format!("direct HTTP read: {e}"))?;
            let t = mono();
            if n == 0 {
                return Err("direct HTTP: connection closed".into());
            }
            let keep = win.len();
            win.extend_from_slice(&buf[..n]);
            let mut i = (keep + 1).saturating_sub(C.len());
            while let Some(p) = find(&win[i..], C) {
                first.get_or_insert(t);
                chunks += 1;
                if !count {
                    break;
                }
                i += p + C.len();
            }
            if win.ends_with(END) {
                return Ok(DirectReply {
                    first_content_s: first.ok_or("no content delta")? - t0,
                    total_s: t - t0,
                    content_chunks: chunks,
                });
            }
            let cut = win.len().saturating_sub(C.len().max(END.len()));
            win.drain(..cut);
        }
    }
}

/// The echo extension driven directly (Content-Length JSON-RPC over pipes):
/// the provider's own latency without the host.
struct DirectExt {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
    next_id: u64,
}

impl DirectExt {
    fn start(name: &str, mode: &str) -> Res<DirectExt> {
        let dir = ext(name);
        let mut child = Command::new("python3")
            .args(["../fakeprov.py", mode])
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start fakeprov.py: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut d = DirectExt {
            child,
            stdin,
            out,
            next_id: 1,
        };
        let id = d.request(
            "initialize",
            json!({"host_version": "0.1.0", "synaps_version": "0.1.0", "extension_protocol_version": 1,
                   "plugin_id": name, "plugin_root": dir, "config": {}}),
        )?;
        loop {
            let m = d.read_msg()?;
            if m["id"] == id {
                break;
            }
        }
        Ok(d)
    }

    fn request(&mut self, method: &str, params: Value) -> Res<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let body =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{}", body.len(), body)
            .and_then(|_| self.stdin.flush())
            .map_err(|e| e.to_string())?;
        Ok(id)
    }

    fn read_msg(&mut self) -> Res<Value> {
        let mut len = None;
        loop {
            let mut line = String::new();
            if self.out.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("fakeprov closed stdout".into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("Content-Length:") {
                len = v.trim().parse::<usize>().ok();
            }
        }
        let mut body = vec![0u8; len.ok_or("no Content-Length")?];
        self.out.read_exact(&mut body).map_err(|e| e.to_string())?;
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    }

    /// provider.stream → (first text event, response) times, seconds.
    fn stream(&mut self, text: &str) -> Res<(f64, f64)> {
        let t0 = mono();
        let id = self.request(
            "provider.stream",
            json!({"provider_id": "echo", "model_id": "echo-1", "model": "echo-1",
                   "messages": [{"role": "user", "content": text}], "system_prompt": null,
                   "tools": [], "temperature": null, "max_tokens": null}),
        )?;
        let mut first = None;
        loop {
            // Blocking reads: the fixture answers in milliseconds; the child
            // is killed on drop if the bench fails elsewhere.
            let m = self.read_msg()?;
            let t = mono();
            if m["method"] == "provider.stream.event" {
                let ev = if m["params"]["event"].is_object() {
                    &m["params"]["event"]
                } else {
                    &m["params"]
                };
                if ev["type"] == "text" {
                    first.get_or_insert(t);
                }
            } else if m["id"] == id {
                if m.get("error").is_some() {
                    return Err(format!("fakeprov error: {m}"));
                }
                return Ok((first.ok_or("no text event")? - t0, t - t0));
            }
        }
    }
}

impl Drop for DirectExt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// 1. spawn → ready

fn bench_spawn(t: &mut Table, runs: usize) {
    let g = "1a";
    let mut v = Vec::new();
    let mut cpu = Vec::new();
    for i in 0..runs + 1 {
        let dir = tmpdir("spawn");
        let r = (|| -> Res<(f64, f64)> {
            let c0 = children_cpu();
            let mut h = Host::spawn(&data_dir_args(dir.path()), &[], dir.path(), "spawn")?;
            let (dt, ready) = h.wait_ready()?;
            if ready["message_count"] != 0 {
                return Err(format!(
                    "fresh ready has message_count {}",
                    ready["message_count"]
                ));
            }
            h.close(5.0)?;
            Ok((dt, children_cpu() - c0))
        })();
        match r {
            Ok((dt, c)) if i > 0 => {
                // run 0 only warms the page cache
                v.push(dt * 1e3);
                cpu.push(c * 1e3);
            }
            Ok(_) => {}
            Err(e) => return t.fail(g, "spawn → ready, empty data dir", &e),
        }
    }
    t.add(
        g,
        "spawn → `ready`, empty data dir (fresh process)",
        "ms",
        &v,
        2,
        Target::AtMost(5.0),
        "≤ 5 ms median",
    );
    t.add(
        g,
        "… host CPU for its whole life (start, `ready`, stdin EOF, exit; getrusage of children)",
        "ms",
        &cpu,
        2,
        Target::None,
        "—",
    );
}

fn words(seed: &mut u64, min_chars: usize) -> String {
    const W: &[&str] = &[
        "the",
        "function",
        "returns",
        "a",
        "list",
        "of",
        "files",
        "in",
        "directory",
        "and",
        "then",
        "we",
        "should",
        "check",
        "whether",
        "error",
        "handling",
        "is",
        "correct",
        "for",
        "this",
        "case",
        "please",
        "update",
        "tests",
        "so",
        "that",
        "they",
        "cover",
        "edge",
        "cases",
        "like",
        "empty",
        "input",
        "unicode",
        "paths",
        "ok",
        "I",
        "changed",
        "module",
        "to",
        "use",
        "async",
        "reader",
        "which",
        "avoids",
        "blocking",
        "runtime",
        "when",
        "stdout",
        "pipe",
        "is",
        "full",
        "configuration",
        "value",
        "parser",
        "struct",
        "field",
        "could",
        "you",
        "explain",
        "why",
    ];
    let mut s = String::new();
    while s.len() < min_chars {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let w = W[((*seed >> 33) as usize) % W.len()];
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(w);
        if (*seed >> 20).is_multiple_of(11) {
            s.push(if (*seed >> 8).is_multiple_of(3) {
                '?'
            } else {
                '.'
            });
        }
    }
    s.push('.');
    s
}

/// Writes a session file of `pairs` user/assistant pairs (SPEC §7.2).
fn write_session(data: &Path, id: &str, cwd: &Path, pairs: u64) -> Res<u64> {
    let dir = data.join("sessions");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{id}.jsonl"));
    let mut out = String::new();
    let header = json!({"type": "session", "version": 1, "id": id, "created_at": iso_ts(0),
                        "cwd": cwd.display().to_string(), "model": "openai/gpt-4o-mini"});
    out.push_str(&header.to_string());
    out.push('\n');
    let mut seed = 42u64;
    for i in 0..pairs {
        let q = words(&mut seed, 200);
        let a = words(&mut seed, 200);
        let user = json!({"type": "message", "ts": iso_ts(3 * i), "message": {"role": "user", "content": q}});
        let asst = json!({"type": "message", "ts": iso_ts(3 * i + 1), "message": {"role": "assistant",
                          "content": [{"type": "text", "text": a}], "stop_reason": "end_turn"}});
        let end = json!({"type": "turn_end", "ts": iso_ts(3 * i + 2), "prompt_id": format!("p{}", i + 1),
                         "stop_reason": "end_turn", "usage": {"input_tokens": 60 + i, "output_tokens": 55,
                         "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}});
        for l in [user, asst, end] {
            out.push_str(&l.to_string());
            out.push('\n');
        }
    }
    fs::write(&path, &out).map_err(|e| e.to_string())?;
    Ok(out.len() as u64)
}

fn bench_resume(t: &mut Table, runs: usize) {
    let g = "1b";
    let dir = tmpdir("resume");
    let id = "bench-resume-10k";
    let size = match write_session(&dir.path().join("data"), id, &dir.path().join("cwd"), 5000) {
        Ok(s) => s,
        Err(e) => return t.fail(g, "resume", &e),
    };
    let mut args = data_dir_args(dir.path());
    args.extend(["--continue".into(), id.into()]);
    let mut v = Vec::new();
    let mut hwm = Vec::new();
    for i in 0..runs + 1 {
        let r = (|| -> Res<(f64, f64)> {
            let mut h = Host::spawn(&args, &[], dir.path(), "resume")?;
            let (dt, ready) = h.wait_ready()?;
            if ready["message_count"] != 10000 {
                return Err(format!(
                    "ready.message_count = {} (want 10000)",
                    ready["message_count"]
                ));
            }
            if ready["session_id"] != id {
                return Err(format!("ready.session_id = {}", ready["session_id"]));
            }
            let (_, m) = proc_mem(h.pid)?;
            h.close(5.0)?;
            Ok((dt, m))
        })();
        match r {
            Ok((dt, m)) if i > 0 => {
                v.push(dt * 1e3);
                hwm.push(m);
            }
            Ok(_) => {}
            Err(e) => return t.fail(g, "resume 10,000 messages", &e),
        }
    }
    t.add(
        g,
        &format!("spawn → `ready`, `--continue` of 10,000 messages ({:.1} MB file; ready.message_count checked = 10000)", size as f64 / 1e6),
        "ms",
        &v,
        1,
        Target::AtMost(100.0),
        "≤ 100 ms median",
    );
    t.add(
        g,
        "… host VmHWM at `ready` after loading it",
        "MiB",
        &hwm,
        1,
        Target::None,
        "—",
    );
}

// ---------------------------------------------------------------------------
// 2. warm prompt → first delta

fn bench_latency_echo(t: &mut Table, runs: usize) {
    let g = "2a";
    let dir = tmpdir("echo");
    let r = (|| -> Res<(Vec<f64>, Vec<f64>, Vec<f64>)> {
        let mut args = data_dir_args(dir.path());
        args.extend([
            "--extension".into(),
            ext("echo"),
            "--model".into(),
            "echo:echo:echo-1".into(),
        ]);
        let mut h = Host::spawn(&args, &[], dir.path(), "echo")?;
        h.wait_ready()?;
        prompt(&mut h, "warm up [[n=1]]", SMALL_TURN_TIMEOUT)?; // starts the extension
        let mut host = Vec::new();
        let mut end = Vec::new();
        for _ in 0..runs * LATENCY_PROMPTS_PER_RUN {
            let tu = prompt(&mut h, "hi [[n=1]]", SMALL_TURN_TIMEOUT)?;
            if tu.n_deltas != 1 || tu.text != b"tok " {
                return Err(format!(
                    "expected one `tok ` delta, got {} ({:?})",
                    tu.n_deltas,
                    String::from_utf8_lossy(&tu.text)
                ));
            }
            host.push(tu.first_delta_s()? * 1e3);
            end.push(tu.end_s()? * 1e3);
        }
        h.close(5.0)?;
        // The extension alone: same fixture, same framing, no host.
        let mut d = DirectExt::start("echo", "echo")?;
        d.stream("warm up [[n=1]]")?;
        let mut direct = Vec::new();
        for _ in 0..runs * LATENCY_PROMPTS_PER_RUN {
            direct.push(d.stream("hi [[n=1]]")?.0 * 1e3);
        }
        Ok((host, end, direct))
    })();
    match r {
        Ok((host, end, direct)) => {
            let over = stat(&host).unwrap().median - stat(&direct).unwrap().median;
            t.add(
                g,
                "echo extension: warm prompt → first `text_delta` frame",
                "ms",
                &host,
                3,
                Target::None,
                "—",
            );
            t.add(g, "… provider's own latency: fakeprov.py echo driven directly (request → first text event)", "ms", &direct, 3, Target::None, "—");
            t.add_text(
                g,
                "… host overhead = median(host) − median(provider alone)",
                format!("{over:.3} ms"),
                "≤ 1 ms",
                Some(over <= 1.0),
            );
            t.add(
                g,
                "… warm prompt → `agent_end` (after the turn's fsync)",
                "ms",
                &end,
                3,
                Target::None,
                "—",
            );
        }
        Err(e) => t.fail(g, "echo warm prompt → first delta", &e),
    }
}

fn bench_latency_http(t: &mut Table, runs: usize) {
    let prompts = runs * LATENCY_PROMPTS_PER_RUN;
    let g = "2b";
    let dir = tmpdir("http");
    let r = (|| -> Res<()> {
        let fake = Fake::start()?;
        let mut args = data_dir_args(dir.path());
        args.extend(["--model".into(), "openai/gpt-4o-mini".into()]);
        let mut h = Host::spawn(&args, &fake.env(), dir.path(), "http")?;
        h.wait_ready()?;
        prompt(&mut h, "warm up [[n=1]]", SMALL_TURN_TIMEOUT)?;
        let mut turns = Vec::new();
        for _ in 0..prompts {
            let tu = prompt(&mut h, "hi [[n=1]]", SMALL_TURN_TIMEOUT)?;
            if tu.n_deltas != 1 || tu.text != b"tok " {
                return Err(format!("expected one `tok ` delta, got {}", tu.n_deltas));
            }
            turns.push(tu);
        }
        h.close(5.0)?;
        let reqs = fake.requests()?;
        if reqs.len() != prompts + 1 {
            return Err(format!(
                "fake saw {} chat requests, expected {} (retries?)",
                reqs.len(),
                prompts + 1
            ));
        }
        let mut host = Vec::new();
        let mut end = Vec::new();
        let mut to_arrival = Vec::new();
        let mut arrival_to_delta = Vec::new();
        for (tu, rq) in turns.iter().zip(&reqs[1..]) {
            let arr = rq["time"].as_f64().ok_or("request without time")?;
            host.push(tu.first_delta_s()? * 1e3);
            end.push(tu.end_s()? * 1e3);
            to_arrival.push((arr - tu.t_sent) * 1e3);
            arrival_to_delta.push((tu.t_first_delta.unwrap() - arr) * 1e3);
        }
        // The provider alone: replay the host's own last request body on a
        // keep-alive connection of our own.
        let body = serde_json::to_vec(&reqs[prompts]["body"]).map_err(|e| e.to_string())?;
        let mut c = DirectHttp::connect(fake.port)?;
        c.post(&body, SMALL_TURN_TIMEOUT, false)?;
        let mut direct = Vec::new();
        for _ in 0..prompts {
            direct.push(c.post(&body, SMALL_TURN_TIMEOUT, false)?.first_content_s * 1e3);
        }
        let over = stat(&host).unwrap().median - stat(&direct).unwrap().median;
        t.add(
            g,
            "OpenAI HTTP (fake_llm.py): warm prompt → first `text_delta` frame",
            "ms",
            &host,
            3,
            Target::None,
            "—",
        );
        t.add(
            g,
            "… prompt written → request arrival at the fake (its CLOCK_MONOTONIC log)",
            "ms",
            &to_arrival,
            3,
            Target::None,
            "—",
        );
        t.add(
            g,
            "… request arrival → first `text_delta` frame read",
            "ms",
            &arrival_to_delta,
            3,
            Target::None,
            "—",
        );
        t.add(
            g,
            &format!("… provider's own latency: same request body ({} B) replayed by a bare keep-alive client (request → first content chunk)", body.len()),
            "ms",
            &direct,
            3,
            Target::None,
            "—",
        );
        t.add_text(
            g,
            "… host overhead = median(host) − median(provider alone)",
            format!("{over:.3} ms"),
            "≤ 1 ms",
            Some(over <= 1.0),
        );
        t.add(
            g,
            "… warm prompt → `agent_end` (after the turn's fsync)",
            "ms",
            &end,
            3,
            Target::None,
            "—",
        );
        Ok(())
    })();
    if let Err(e) = r {
        t.fail(g, "HTTP warm prompt → first delta", &e);
    }
}

// ---------------------------------------------------------------------------
// 3. throughput

struct BigRun {
    rate: f64,
    stream_rate: f64,
    ctxt_per_delta: f64,
    bytes_per_delta: f64,
    host_cpu: f64,
    harness_cpu: f64,
    hwm: f64,
    first_delta_ms: f64,
    exact: bool,
    n: u64,
}

fn big_turn(h: &mut Host, n: u64, timeout: f64) -> Res<BigRun> {
    let cpu0 = proc_cpu(h.pid)?;
    let cs0 = proc_ctxt(h.pid)?;
    let me0 = self_cpu();
    let tu = prompt(h, &format!("[[n={n}]]"), timeout)?;
    let me1 = self_cpu();
    std::thread::sleep(Duration::from_millis(20));
    let cpu1 = proc_cpu(h.pid)?;
    let cs1 = proc_ctxt(h.pid)?;
    let (_, hwm) = proc_mem(h.pid)?;
    let exact = tu.n_deltas == n
        && tu.text.len() as u64 == 4 * n
        && tu.text.chunks(4).all(|c| c == b"tok ");
    Ok(BigRun {
        rate: n as f64 / tu.end_s()?,
        stream_rate: (n - 1) as f64
            / (tu.t_last_delta.ok_or("no delta")? - tu.t_first_delta.ok_or("no delta")?),
        ctxt_per_delta: (cs1 - cs0) as f64 / n as f64,
        bytes_per_delta: tu.bytes as f64 / n as f64,
        host_cpu: cpu1 - cpu0,
        harness_cpu: me1 - me0,
        hwm,
        first_delta_ms: tu.first_delta_s()? * 1e3,
        exact,
        n: tu.n_deltas,
    })
}

fn report_big(t: &mut Table, g: &str, label: &str, n: u64, runs: &[BigRun], min_rate: f64) {
    let col = |f: fn(&BigRun) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    t.add(
        g,
        &format!(
            "{label}: deltas/s (N / prompt→`agent_end`), N = {}",
            fmt_num(n as f64, 0)
        ),
        "/s",
        &col(|r| r.rate),
        0,
        Target::AtLeast(min_rate),
        &format!("≥ {}/s", fmt_num(min_rate, 0)),
    );
    let exact = runs.iter().filter(|r| r.exact).count();
    let counts: Vec<String> = runs
        .iter()
        .filter(|r| !r.exact)
        .map(|r| r.n.to_string())
        .collect();
    t.add_text(
        g,
        &format!(
            "… all N deltas arrived, concatenated text == \"tok \" × N{}",
            if counts.is_empty() {
                String::new()
            } else {
                format!(" (bad runs got {})", counts.join(", "))
            }
        ),
        format!("{exact}/{}", runs.len()),
        "all",
        Some(exact == runs.len()),
    );
    t.add(
        g,
        "… stdout bytes per delta (prompt → `agent_end`, 4-char deltas)",
        "B",
        &col(|r| r.bytes_per_delta),
        1,
        Target::AtMost(90.0),
        "≤ 90 B",
    );
    t.add(
        g,
        "… host CPU s (utime+stime of `rpc` only, /proc/PID/stat)",
        "s",
        &col(|r| r.host_cpu),
        2,
        Target::AtMost(0.5 * n as f64 / 200_000.0),
        "≤ 0.5 s",
    );
    t.add(
        g,
        "… host peak RSS (VmHWM)",
        "MiB",
        &col(|r| r.hwm),
        1,
        Target::AtMost(16.0),
        "≤ 16 MB",
    );
    t.add(
        g,
        "… prompt → first `text_delta`",
        "ms",
        &col(|r| r.first_delta_ms),
        2,
        Target::None,
        "—",
    );
    t.add(
        g,
        "… streaming rate after the first delta, (N−1)/(first → last delta)",
        "/s",
        &col(|r| r.stream_rate),
        0,
        Target::None,
        "—",
    );
    t.add(
        g,
        "… host context switches per delta (all its threads, /proc/PID/task/*/status)",
        "",
        &col(|r| r.ctxt_per_delta),
        2,
        Target::None,
        "—",
    );
    t.add(
        g,
        "… harness's own CPU s during the turn (reader not the bottleneck)",
        "s",
        &col(|r| r.harness_cpu),
        2,
        Target::None,
        "—",
    );
}

const BIG_N: u64 = 200_000;

fn bench_flood(t: &mut Table, runs: usize) {
    let g = "3a";
    let mut out = Vec::new();
    for _ in 0..runs {
        let dir = tmpdir("flood");
        let r = (|| -> Res<BigRun> {
            let mut args = data_dir_args(dir.path());
            args.extend([
                "--extension".into(),
                ext("flood"),
                "--model".into(),
                "flood:flood:flood-1".into(),
            ]);
            let mut h = Host::spawn(&args, &[], dir.path(), "flood")?;
            h.wait_ready()?;
            prompt(&mut h, "[[n=10]]", SMALL_TURN_TIMEOUT)?; // extension started and warm
            let b = big_turn(&mut h, BIG_N, BIG_TURN_TIMEOUT)?;
            h.close(10.0)?;
            Ok(b)
        })();
        match r {
            Ok(b) => out.push(b),
            Err(e) => return t.fail(g, "flood extension 200,000 deltas", &e),
        }
    }
    report_big(t, g, "flood extension", BIG_N, &out, 250_000.0);
}

fn bench_http_big(t: &mut Table, runs: usize) {
    let g = "3b";
    let mut out = Vec::new();
    let mut serve_host = Vec::new();
    let mut direct_total = Vec::new();
    let mut direct_first = Vec::new();
    let mut direct_stream = Vec::new();
    let r = (|| -> Res<()> {
        let fake = Fake::start()?;
        for _ in 0..runs {
            let dir = tmpdir("httpbig");
            let mut args = data_dir_args(dir.path());
            args.extend(["--model".into(), "openai/gpt-4o-mini".into()]);
            let mut h = Host::spawn(&args, &fake.env(), dir.path(), "httpbig")?;
            h.wait_ready()?;
            prompt(&mut h, "[[n=10]]", SMALL_TURN_TIMEOUT)?; // connection pool warm
            let b = big_turn(&mut h, BIG_N, BIG_TURN_TIMEOUT)?;
            h.close(10.0)?;
            out.push(b);
            let reqs = fake.requests()?;
            let last = reqs.last().ok_or("no request")?;
            if let (Some(a), Some(e)) = (last["time"].as_f64(), last["end_time"].as_f64()) {
                serve_host.push(e - a);
            }
        }
        // The fake alone: the same reply to a bare client that only scans
        // the bytes (its own serve time and its ceiling in deltas/s).
        let body = serde_json::to_vec(&json!({"model": "gpt-4o-mini", "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": format!("[[n={BIG_N}]]")}]}))
        .unwrap();
        let mut c = DirectHttp::connect(fake.port)?;
        for _ in 0..runs.min(5) {
            let d = c.post(&body, BIG_TURN_TIMEOUT, true)?;
            if d.content_chunks as u64 != BIG_N {
                return Err(format!(
                    "direct client saw {} content chunks",
                    d.content_chunks
                ));
            }
            direct_first.push(d.first_content_s);
            direct_stream.push((BIG_N - 1) as f64 / (d.total_s - d.first_content_s));
            direct_total.push(d.total_s);
        }
        Ok(())
    })();
    if let Err(e) = r {
        return t.fail(g, "HTTP 200,000 deltas", &e);
    }
    report_big(t, g, "OpenAI HTTP (fake_llm.py)", BIG_N, &out, 100_000.0);
    let fake_rate: Vec<f64> = direct_total.iter().map(|s| BIG_N as f64 / s).collect();
    t.add(
        g,
        "… fake_llm.py alone: serve time of the same 200,000-delta reply to a bare client",
        "s",
        &direct_total,
        2,
        Target::None,
        "—",
    );
    t.add(
        g,
        "… fake_llm.py alone: its ceiling in deltas/s (N / serve time)",
        "/s",
        &fake_rate,
        0,
        Target::None,
        "—",
    );
    t.add(g, "… fake_llm.py alone: request → first content chunk (it renders the whole reply before sending headers)", "s", &direct_first, 2, Target::None, "—");
    t.add(
        g,
        "… fake_llm.py alone: streaming rate after its first chunk, (N−1)/(first → last byte)",
        "/s",
        &direct_stream,
        0,
        Target::None,
        "—",
    );
    t.add(
        g,
        "… fake's serve time while the host read it (arrival → end, its log)",
        "s",
        &serve_host,
        2,
        Target::None,
        "—",
    );
    if let (Some(h), Some(f)) = (
        stat(&out.iter().map(|r| r.rate).collect::<Vec<_>>()),
        stat(&fake_rate),
    ) {
        t.notes.push(format!(
            "3b: the fake HTTP server alone serves {} deltas/s (median) to a client that does nothing but scan the bytes; the host reached {} deltas/s = {:.0}% of that ceiling.{}",
            fmt_num(f.median, 0),
            fmt_num(h.median, 0),
            100.0 * h.median / f.median,
            if f.median < 1.5 * 100_000.0 { " The fake is close to being the bottleneck of this row." } else { "" }
        ));
        if f.median < 1.2 * 100_000.0 {
            // The fake cannot go much faster than the target itself: the
            // row cannot tell whether the host would meet it.
            if let Some(row) = t
                .rows
                .iter_mut()
                .find(|r| r.group == g && r.name.contains("deltas/s"))
            {
                let verdict = if h.median >= 100_000.0 {
                    "met"
                } else {
                    "MISSED"
                };
                row.status = Some(format!(
                    "**{verdict}**, but fake-bound (fake alone: {}/s)",
                    fmt_num(f.median, 0)
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 4. idle RSS

fn bench_idle(t: &mut Table, runs: usize) {
    let g = "4";
    for with_echo in [false, true] {
        let label = if with_echo {
            "echo extension started"
        } else {
            "no extension"
        };
        let mut rss = Vec::new();
        let mut hwm = Vec::new();
        for _ in 0..runs {
            let dir = tmpdir("idle");
            let r = (|| -> Res<(f64, f64)> {
                let mut args = data_dir_args(dir.path());
                if with_echo {
                    args.extend(["--extension".into(), ext("echo")]);
                }
                let mut h = Host::spawn(&args, &[], dir.path(), "idle")?;
                h.wait_ready()?;
                if with_echo {
                    // Wait until the extension answered initialize.
                    let end = mono() + 10.0;
                    loop {
                        let v =
                            h.command(json!({"type": "get_available_models", "id": "m"}), 5.0)?;
                        let ok = v["models"].as_array().is_some_and(|m| {
                            m.iter()
                                .any(|x| x["id"] == "echo:echo:echo-1" && x["available"] == true)
                        });
                        if ok {
                            break;
                        }
                        if mono() > end {
                            return Err(format!("echo never became available: {v}"));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                } else {
                    h.command(json!({"type": "get_state", "id": "s"}), 5.0)?;
                }
                std::thread::sleep(Duration::from_millis(100));
                let m = proc_mem(h.pid)?;
                h.close(5.0)?;
                Ok(m)
            })();
            match r {
                Ok((a, b)) => {
                    rss.push(a);
                    hwm.push(b);
                }
                Err(e) => return t.fail(g, label, &e),
            }
        }
        t.add(
            g,
            &format!("idle after `ready`, {label}: host VmRSS"),
            "MiB",
            &rss,
            1,
            Target::AtMost(8.0),
            "≤ 8 MB",
        );
        t.add(
            g,
            &format!("… {label}: host VmHWM"),
            "MiB",
            &hwm,
            1,
            Target::AtMost(8.0),
            "≤ 8 MB",
        );
    }
}

// ---------------------------------------------------------------------------
// 5. stalled reader

fn bench_stall(t: &mut Table, runs: usize) {
    let g = "5";
    const N: u64 = 1_000_000;
    let mut hwm = Vec::new();
    let mut rss_stalled = Vec::new();
    let mut total = Vec::new();
    let mut exact = 0;
    let mut bad = Vec::new();
    for _ in 0..runs {
        let dir = tmpdir("stall");
        let r = (|| -> Res<(f64, f64, f64, bool, u64)> {
            let mut args = data_dir_args(dir.path());
            args.extend([
                "--extension".into(),
                ext("flood"),
                "--model".into(),
                "flood:flood:flood-1".into(),
            ]);
            let mut h = Host::spawn(&args, &[], dir.path(), "stall")?;
            h.wait_ready()?;
            prompt(&mut h, "[[n=10]]", SMALL_TURN_TIMEOUT)?;
            let mut tu = Turn {
                t_sent: mono(),
                ..Default::default()
            };
            h.send(
                &json!({"type": "prompt", "id": "stall", "message": format!("[[n={N}]]")})
                    .to_string(),
            )?;
            let deadline = mono() + STALL_TURN_TIMEOUT;
            // Read until the stream has started …
            let mut started = false;
            h.read_lines(deadline, "the first delta", |l, ts| {
                let done = tu.on_line(l, ts);
                started = tu.n_deltas > 0;
                done || started
            })?;
            if tu.response.is_some() {
                return Err("the turn ended before the stall".into());
            }
            // … then do not read stdout at all for 5 s.
            let stall_end = mono() + STALL_SECS;
            let mut peak_rss: f64 = 0.0;
            while mono() < stall_end {
                std::thread::sleep(Duration::from_millis(100));
                peak_rss = peak_rss.max(proc_mem(h.pid)?.0);
            }
            h.read_lines(deadline, "the response after the stall", |l, ts| {
                tu.on_line(l, ts)
            })?;
            tu.check_ok()?;
            let (_, m) = proc_mem(h.pid)?;
            let ok = tu.n_deltas == N
                && tu.text.len() as u64 == 4 * N
                && tu.text.chunks(4).all(|c| c == b"tok ");
            let secs = tu.end_s()?;
            h.close(10.0)?;
            Ok((m, peak_rss, secs, ok, tu.n_deltas))
        })();
        match r {
            Ok((m, p, s, ok, n)) => {
                hwm.push(m);
                rss_stalled.push(p);
                total.push(s);
                if ok {
                    exact += 1;
                } else {
                    bad.push(n.to_string());
                }
            }
            Err(e) => return t.fail(g, "stalled reader", &e),
        }
    }
    t.add(
        g,
        "stalled reader (1,000,000-delta flood, stdout unread for 5 s): host peak RSS (VmHWM)",
        "MiB",
        &hwm,
        1,
        Target::AtMost(32.0),
        "≤ 32 MB",
    );
    t.add_text(
        g,
        &format!(
            "… every character arrived (text == \"tok \" × 1e6){}",
            if bad.is_empty() {
                String::new()
            } else {
                format!(" (bad runs: {} deltas)", bad.join(", "))
            }
        ),
        format!("{exact}/{runs}"),
        "nothing lost",
        Some(exact == runs),
    );
    t.add(
        g,
        "… host VmRSS, highest 100 ms sample during the stall",
        "MiB",
        &rss_stalled,
        1,
        Target::None,
        "—",
    );
    t.add(
        g,
        "… prompt → `agent_end` (includes the 5 s stall)",
        "s",
        &total,
        2,
        Target::None,
        "—",
    );
}

// ---------------------------------------------------------------------------

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass
    // nothing and expects a quick exit.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("benches/host.rs: run with `cargo bench` (skipped: no --bench flag)");
        return;
    }
    // The binary must be the optimised one cargo built for this bench.
    let bin = Path::new(BIN);
    let profile_dir = bin
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|s| s.to_str())
        .unwrap_or("");
    if profile_dir != "release" || cfg!(debug_assertions) {
        eprintln!("error: {BIN} is not the release build (profile dir `{profile_dir}`, debug_assertions {}); run `cargo bench`", cfg!(debug_assertions));
        std::process::exit(1);
    }
    if !bin.exists() {
        eprintln!("error: {BIN} does not exist");
        std::process::exit(1);
    }
    let runs = env_usize("BENCH_RUNS", 10);
    let stall_runs = env_usize("BENCH_STALL_RUNS", runs);
    let only: Option<Vec<String>> = std::env::var("BENCH_ONLY")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(|x| x.trim().to_owned()).collect());
    let want = |g: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == g));
    let machine = machine();
    eprintln!("[bench] {BIN}, {runs} runs per row ({stall_runs} for the stalled reader)");
    let t0 = mono();
    let mut t = Table::default();
    let mut step = |name: &str, f: &mut dyn FnMut(&mut Table)| {
        if want(name) {
            let s = mono();
            eprintln!("[bench] {name} …");
            f(&mut t);
            eprintln!("[bench] {name} done in {:.1} s", mono() - s);
        }
    };
    step("spawn", &mut |t| bench_spawn(t, runs));
    step("resume", &mut |t| bench_resume(t, runs));
    step("latency", &mut |t| {
        bench_latency_echo(t, runs);
        bench_latency_http(t, runs);
    });
    step("throughput", &mut |t| {
        bench_flood(t, runs);
        bench_http_big(t, runs);
    });
    step("idle", &mut |t| bench_idle(t, runs));
    step("stall", &mut |t| bench_stall(t, stall_runs));
    t.print(&machine, runs, mono() - t0);
}

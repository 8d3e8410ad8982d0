//! The host driver: one spawned `rpc` (stdout read with 1 MiB `read(2)`
//! calls under `poll` deadlines, stderr to a file for failure messages) and
//! one prompt turn timed frame by frame.

use std::fs;
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::clock::mono;
use crate::frames::{find, starts, text_delta};
use crate::{Res, BIN, READY_TIMEOUT, READ_CHUNK};

pub struct Host {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub _stdout: ChildStdout,
    pub fd: i32,
    pub pid: u32,
    /// Bytes read but not yet consumed as lines.
    pub pending: Vec<u8>,
    /// Where in `pending` line parsing resumes.
    pub consumed: usize,
    pub last_read_t: f64,
    pub total_bytes: u64,
    pub stderr_path: PathBuf,
    pub t_spawn: f64,
}

impl Host {
    pub fn spawn(args: &[String], env: &[(&str, String)], dir: &Path, tag: &str) -> Res<Host> {
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

    pub fn send(&mut self, line: &str) -> Res<()> {
        let w = self.stdin.as_mut().ok_or("stdin closed")?;
        w.write_all(line.as_bytes())
            .and_then(|_| w.write_all(b"\n"))
            .and_then(|_| w.flush())
            .map_err(|e| format!("write to host stdin: {e}"))
    }

    pub fn stderr_tail(&self) -> String {
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
    pub fn read_lines(
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
    pub fn wait_ready(&mut self) -> Res<(f64, Value)> {
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
    pub fn command(&mut self, cmd: Value, timeout: f64) -> Res<Value> {
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
    pub fn close(mut self, grace: f64) -> Res<()> {
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
pub struct Turn {
    pub t_sent: f64,
    pub t_first_delta: Option<f64>,
    pub t_last_delta: Option<f64>,
    pub t_end: Option<f64>,
    pub n_deltas: u64,
    pub text: Vec<u8>,
    /// stdout bytes from the prompt to agent_end inclusive.
    pub bytes: u64,
    pub response: Option<Vec<u8>>,
    pub ended: bool,
}

impl Turn {
    /// Returns true once the prompt's response has arrived.
    pub fn on_line(&mut self, line: &[u8], t: f64) -> bool {
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

    pub fn check_ok(&self) -> Res<()> {
        let r = self.response.as_deref().ok_or("no response")?;
        if find(r, br#""ok":true"#).is_none() {
            return Err(format!(
                "prompt failed: {}",
                String::from_utf8_lossy(&r[..r.len().min(600)])
            ));
        }
        Ok(())
    }

    pub fn first_delta_s(&self) -> Res<f64> {
        Ok(self.t_first_delta.ok_or("no text_delta")? - self.t_sent)
    }
    pub fn end_s(&self) -> Res<f64> {
        Ok(self.t_end.ok_or("no agent_end")? - self.t_sent)
    }
}

pub static PROMPT_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn prompt(host: &mut Host, message: &str, timeout: f64) -> Res<Turn> {
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

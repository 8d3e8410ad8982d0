//! The kernel sandbox (`--sandbox`, SPEC §10), against the real binary:
//! an escape battery the echo model runs through bash, blocked in
//! `workspace-write` and allowed with `off`; what stays allowed inside the
//! rules; read-only mode; `set_sandbox`; the gate in accept-edits; the note
//! a blocked command gets; the file tools held to the writable roots.
//!
//! Every host gets `root/work` as its cwd, `root/tmp` as `$TMPDIR` and
//! `root/home` as `$HOME` (with a fake `~/.ssh/id_test`), so `root` itself
//! is outside every writable root. Each attempt's effect is checked from
//! the test's side (a file, a listener), not only from the command's word.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};

use super::*;

/// The fake private key's text.
const KEY: &str = "PRIVATE-KEY-SANDBOX-TEST";
/// A credential variable in the host's environment.
const API_KEY: &str = "sk-sandbox-test-secret";

struct Jail {
    root: TempDir,
    cwd: PathBuf,
    tmp: PathBuf,
    home: PathBuf,
}

impl Jail {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let base = root.path().canonicalize().expect("canonical root");
        let cwd = base.join("work");
        let tmp = base.join("tmp");
        let home = base.join("home");
        for d in [&cwd, &tmp, &home.join(".ssh"), &cwd.join(".git/hooks")] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(home.join(".ssh/id_test"), KEY).expect("key");
        std::fs::write(cwd.join(".git/config"), "[core]\n").expect("git config");
        std::fs::write(base.join("victim.txt"), "original\n").expect("victim");
        std::fs::create_dir(base.join("linked")).expect("linked dir");
        symlink(base.join("linked"), cwd.join("link")).expect("symlink");
        Jail {
            root,
            cwd,
            tmp,
            home,
        }
    }

    fn outside(&self) -> PathBuf {
        self.root.path().canonicalize().expect("canonical root")
    }

    fn spawn(&self, sandbox: &str, mode: &str) -> Spawn {
        echo_spawn(&self.cwd, mode)
            .arg("--sandbox")
            .arg(sandbox)
            .env("TMPDIR", self.tmp.to_str().expect("utf-8"))
            .env("HOME", self.home.to_str().expect("utf-8"))
            .env("SANDBOX_TEST_API_KEY", API_KEY)
    }

    /// A ready host in permission `mode` (its `ready` frame unchecked).
    fn start_as(&self, sandbox: &str, mode: &str) -> Rpc {
        let mut rpc = self.spawn(sandbox, mode).start();
        rpc.ready();
        rpc
    }

    fn start(&self, sandbox: &str) -> Rpc {
        let mut rpc = self.spawn(sandbox, "allow-all").start();
        let ready = rpc.ready();
        assert_eq!(ready["sandbox"]["mode"], sandbox, "{ready}");
        rpc
    }
}

/// Runs `command` through bash and returns the tool's result text.
fn run_bash(rpc: &mut Rpc, id: &str, command: &str) -> String {
    let frames = run_ok(rpc, id, &bash(command));
    no_permission_request(&frames);
    result_of(&the_tool_end(&frames)).to_owned()
}

/// Has bash write `name` in the directory above the cwd (outside every
/// writable root); returns that file's path and the tool's result text.
fn bash_write_outside(rpc: &mut Rpc, id: &str, jail: &Jail, name: &str) -> (PathBuf, String) {
    let path = jail.outside().join(name);
    let out = run_bash(rpc, id, &format!("echo x > {}", path.display()));
    (path, out)
}

/// The directive that makes the echo model write "x" to `path`.
fn write_x(path: impl serde::Serialize) -> String {
    call("write", &json!({"path": path, "content": "x"}))
}

/// A listener the test holds: whether anything reached it within `wait`.
fn tcp_reached(listener: &TcpListener, wait: Duration) -> bool {
    listener.set_nonblocking(true).expect("nonblocking");
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut buf = [0u8; 8];
            conn.set_read_timeout(Some(Duration::from_secs(1))).ok();
            let _ = conn.read(&mut buf);
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn udp_reached(socket: &UdpSocket, wait: Duration) -> bool {
    socket.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 16];
    socket.recv(&mut buf).is_ok()
}

/// Waits for `path` to exist (a background process's marker).
fn appears(path: &Path, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// What one run of the battery did, seen from outside the host.
#[derive(Debug, PartialEq, Eq)]
struct Escapes {
    absolute: bool,
    dotdot: bool,
    symlink: bool,
    hard_link: bool,
    proc_cwd: bool,
    git_hook: bool,
    git_config: bool,
    read_ssh: bool,
    tcp_connect: bool,
    udp_send: bool,
    bind: bool,
    background_write: bool,
    background_tcp: bool,
}

/// Runs every escape in `jail` under `sandbox`; each field says whether
/// that escape got through.
fn battery(jail: &Jail, sandbox: &str) -> Escapes {
    let out = jail.outside();
    let o = out.display();
    let tcp = TcpListener::bind("127.0.0.1:0").expect("tcp listener");
    let tcp_port = tcp.local_addr().expect("addr").port();
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let udp_port = udp.local_addr().expect("addr").port();
    let bg_tcp = TcpListener::bind("127.0.0.1:0").expect("tcp listener");
    let bg_port = bg_tcp.local_addr().expect("addr").port();
    let mut rpc = jail.start(sandbox);
    let mut n = 0;
    let mut sh = |command: String| {
        n += 1;
        run_bash(&mut rpc, &n.to_string(), &command)
    };

    sh(format!("echo x > {o}/absolute.txt"));
    sh("echo x > ../dotdot.txt".into());
    sh("echo x > link/symlink.txt".into());
    sh("ln ../victim.txt hard && echo escaped >> hard".into());
    sh("echo x > /proc/self/cwd/../proc.txt".into());
    sh("echo 'exit 0' > .git/hooks/pre-commit".into());
    sh("echo '[alias]' >> .git/config".into());
    let ssh = sh("cat ~/.ssh/id_test".into());
    sh(format!("echo hi > /dev/tcp/127.0.0.1/{tcp_port}"));
    let tcp_connect = tcp_reached(&tcp, Duration::from_secs(2));
    sh(format!("echo hi > /dev/udp/127.0.0.1/{udp_port}"));
    let udp_send = udp_reached(&udp, Duration::from_secs(1));
    let bind = sh(
        "python3 -c \"import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print('BOUND')\""
            .into(),
    );
    // A process that leaves bash's process group (setsid), so it outlives
    // the call, and tries the same after bash ended; it leaves a marker in
    // the cwd when it is done. (bash waits a moment so that the group kill
    // at its end cannot come before setsid.)
    sh(format!(
        "setsid bash -c 'sleep 1; echo x > {o}/background.txt; echo hi > /dev/tcp/127.0.0.1/{bg_port}; touch bg.done' </dev/null >/dev/null 2>&1 & sleep 0.3"
    ));
    assert!(
        appears(&jail.cwd.join("bg.done"), Duration::from_secs(10)),
        "the background process finished"
    );
    let background_tcp = tcp_reached(&bg_tcp, Duration::from_millis(500));
    shutdown(rpc);

    let victim = std::fs::read_to_string(out.join("victim.txt")).unwrap_or_default();
    let hook = std::fs::read_to_string(jail.cwd.join(".git/hooks/pre-commit")).ok();
    let config = std::fs::read_to_string(jail.cwd.join(".git/config")).unwrap_or_default();
    Escapes {
        absolute: out.join("absolute.txt").exists(),
        dotdot: out.join("dotdot.txt").exists(),
        symlink: out.join("linked/symlink.txt").exists(),
        hard_link: victim.contains("escaped"),
        proc_cwd: out.join("proc.txt").exists(),
        git_hook: hook.is_some(),
        git_config: config.contains("[alias]"),
        read_ssh: ssh.contains(KEY),
        tcp_connect,
        udp_send,
        bind: bind.contains("BOUND"),
        background_write: out.join("background.txt").exists(),
        background_tcp,
    }
}

fn all(escaped: bool) -> Escapes {
    Escapes {
        absolute: escaped,
        dotdot: escaped,
        symlink: escaped,
        hard_link: escaped,
        proc_cwd: escaped,
        git_hook: escaped,
        git_config: escaped,
        read_ssh: escaped,
        tcp_connect: escaped,
        udp_send: escaped,
        bind: escaped,
        background_write: escaped,
        background_tcp: escaped,
    }
}

#[test]
fn every_escape_is_blocked_in_workspace_write() {
    let jail = Jail::new();
    assert_eq!(battery(&jail, "workspace-write"), all(false));
}

/// The same battery gets through with the sandbox off: the test would
/// notice an escape (it is not vacuous).
#[test]
fn every_escape_gets_through_with_the_sandbox_off() {
    let jail = Jail::new();
    assert_eq!(battery(&jail, "off"), all(true));
}

/// No credential variable in bash's environment, in either mode (the
/// scrub does not depend on the sandbox).
#[test]
fn bash_gets_no_api_key_in_any_mode() {
    for sandbox in ["workspace-write", "off"] {
        let jail = Jail::new();
        let mut rpc = jail.start(sandbox);
        let env = run_bash(&mut rpc, "1", "env; echo env-shown");
        assert!(env.contains("env-shown"), "{env}");
        assert!(!env.contains("_API_KEY"), "{sandbox}: {env}");
        assert!(!env.contains(API_KEY), "{sandbox}: {env}");
        shutdown(rpc);
    }
}

/// Inside the rules everything works: the cwd, `$TMPDIR`, a new file in
/// `.git` (not hooks or config), reading the system, Unix sockets; and with
/// `[sandbox] network = true`, TCP too, while writes stay confined.
#[test]
fn work_inside_the_rules_goes_on() {
    let jail = Jail::new();
    let mut rpc = jail.start("workspace-write");
    let out = run_bash(
        &mut rpc,
        "1",
        "set -e; mkdir -p src/deep && echo ok > src/deep/f.txt && cat src/deep/f.txt; \
         echo t > \"$TMPDIR/t\" && cat \"$TMPDIR/t\"; echo ref > .git/ORIG_HEAD; \
         head -c 4 /etc/hostname >/dev/null; ls / >/dev/null; \
         python3 -c \"import socket; a, b = socket.socketpair(); a.send(b'unix'); print(b.recv(4).decode())\"",
    );
    assert!(out.contains("exit code 0"), "{out}");
    assert!(out.contains("unix"), "{out}");
    assert!(jail.cwd.join("src/deep/f.txt").exists());
    assert_eq!(
        std::fs::read_to_string(jail.tmp.join("t")).unwrap_or_default(),
        "t\n"
    );
    shutdown(rpc);

    let config = jail.outside().join("net.toml");
    std::fs::write(&config, "[sandbox]\nnetwork = true\n").expect("config");
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("addr").port();
    let mut rpc = jail
        .spawn("workspace-write", "allow-all")
        .arg("--config")
        .arg(config.to_str().expect("utf-8"))
        .start();
    rpc.ready();
    run_bash(
        &mut rpc,
        "1",
        &format!("echo hi > /dev/tcp/127.0.0.1/{port}"),
    );
    assert!(
        tcp_reached(&listener, Duration::from_secs(2)),
        "network = true lets TCP out"
    );
    let (net_write, _) = bash_write_outside(&mut rpc, "2", &jail, "net-write.txt");
    assert!(!net_write.exists(), "network does not open writes");
    shutdown(rpc);
}

/// read-only: nothing in the cwd, a private `$TMPDIR` that works.
#[test]
fn read_only_writes_only_its_private_temp_dir() {
    let jail = Jail::new();
    let mut rpc = jail.start("read-only");
    let out = run_bash(
        &mut rpc,
        "1",
        "cat .git/config; echo x > in-cwd.txt; echo t > \"$TMPDIR/t\" && cat \"$TMPDIR/t\" && echo \"tmp=$TMPDIR\"",
    );
    assert!(out.contains("[core]"), "reads the cwd: {out}");
    assert!(!jail.cwd.join("in-cwd.txt").exists(), "{out}");
    assert!(out.contains("t\ntmp="), "the private temp dir works: {out}");
    assert!(
        !out.contains(&format!("tmp={}\n", jail.tmp.display())),
        "{out}"
    );
    shutdown(rpc);
}

/// `set_sandbox` changes the next command's sandbox; `get_state` says so.
#[test]
fn set_sandbox_switches_the_next_command() {
    let jail = Jail::new();
    let mut rpc = jail.start("workspace-write");
    let state = get_state(&mut rpc, "s1");
    assert_eq!(
        state["sandbox"],
        json!({"mode": "workspace-write", "enforced": true}),
        "{state}"
    );
    let (switched, _) = bash_write_outside(&mut rpc, "1", &jail, "switched.txt");
    assert!(!switched.exists());
    let r = call_ok(
        &mut rpc,
        json!({"type": "set_sandbox", "mode": "off"}),
        "s2",
    );
    assert_eq!(r["mode"], "off", "{r}");
    let state = get_state(&mut rpc, "s3");
    assert_eq!(
        state["sandbox"],
        json!({"mode": "off", "enforced": false}),
        "{state}"
    );
    bash_write_outside(&mut rpc, "2", &jail, "switched.txt");
    assert!(switched.exists());
    let bad = rpc.call(json!({"type": "set_sandbox", "mode": "loose"}), "s4");
    assert_eq!(bad["type"], "error", "{bad}");
    shutdown(rpc);
}

/// A command the sandbox blocked says so to the model, and how to ask for
/// more; a command that failed for another reason gets no note.
#[test]
fn a_blocked_command_is_reported_as_blocked() {
    let jail = Jail::new();
    let mut rpc = jail.start("workspace-write");
    let (_, out) = bash_write_outside(&mut rpc, "1", &jail, "blocked.txt");
    assert!(out.contains("blocked by the sandbox"), "{out}");
    assert!(out.contains("\"sandbox\": false"), "{out}");
    let other = run_bash(&mut rpc, "2", "ls /no/such/dir");
    assert!(!other.contains("sandbox"), "{other}");
    shutdown(rpc);
}

/// accept-edits: bash runs unasked when the sandbox is enforced, asks when
/// it is off; `sandbox: false` asks even after "allow always", and then
/// runs outside.
#[test]
fn accept_edits_trusts_the_sandbox_and_leaving_it_asks() {
    let jail = Jail::new();
    let mut rpc = jail.start_as("workspace-write", "accept-edits");
    let out = run_bash(&mut rpc, "1", "echo unasked");
    assert!(out.contains("unasked"), "{out}");

    let o = jail.outside();
    let outside =
        json!({"command": format!("echo x > {}/outside.txt", o.display()), "sandbox": false});
    let (_, req) = until_permission(&mut rpc, "2", &call("bash", &outside));
    assert!(
        req["title"]
            .as_str()
            .unwrap_or_default()
            .contains("outside the sandbox"),
        "{req}"
    );
    let (frames, resp) = decide(&mut rpc, &req, "allow_always", None, "r1", "2");
    assert_ok(&resp, &rpc);
    assert_eq!(the_tool_end(&frames)["is_error"], false, "{frames:#?}");
    assert!(o.join("outside.txt").exists(), "ran outside the sandbox");
    // Allowed always, yet leaving the sandbox asks again.
    let (_, req) = until_permission(&mut rpc, "3", &call("bash", &outside));
    let (_, resp) = decide(&mut rpc, &req, "deny", None, "r2", "3");
    assert_ok(&resp, &rpc);
    shutdown(rpc);

    let mut rpc = jail.start_as("off", "accept-edits");
    let (_, req) = until_permission(&mut rpc, "1", &bash("echo asked"));
    let (_, resp) = decide(&mut rpc, &req, "deny", None, "r1", "1");
    assert_ok(&resp, &rpc);
    shutdown(rpc);
}

/// write and edit keep to the writable roots in every mode but off, even
/// where the permission mode would let them run.
#[test]
fn the_file_tools_keep_to_the_writable_roots() {
    let jail = Jail::new();
    let mut rpc = jail.start("workspace-write");
    let outside = jail.outside().join("tool-write.txt");
    let frames = run_ok(&mut rpc, "1", &write_x(&outside));
    the_tool_failed_with(&frames, "outside the writable roots");
    assert!(!outside.exists());
    let hook = jail.cwd.join(".git/hooks/post-checkout");
    let frames = run_ok(&mut rpc, "2", &write_x(&hook));
    assert_eq!(the_tool_end(&frames)["is_error"], true, "{frames:#?}");
    let frames = run_ok(&mut rpc, "3", &write_x("inside.txt"));
    assert_eq!(the_tool_end(&frames)["is_error"], false, "{frames:#?}");
    call_ok(&mut rpc, json!({"type": "set_sandbox", "mode": "off"}), "s");
    let frames = run_ok(&mut rpc, "4", &write_x(&outside));
    assert_eq!(the_tool_end(&frames)["is_error"], false, "{frames:#?}");
    assert!(outside.exists());
    shutdown(rpc);
}

/// In `ask` mode a write outside the writable roots is refused before
/// anyone is asked: the question would only lead to the same refusal.
#[test]
fn a_refused_write_asks_nobody() {
    let jail = Jail::new();
    let mut rpc = jail.start_as("workspace-write", "ask");
    let outside = jail.outside().join("asked.txt");
    let (frames, resp) = prompt(&mut rpc, "1", &write_x(&outside));
    assert_ok(&resp, &rpc);
    no_permission_request(&frames);
    the_tool_failed_with(&frames, "refused by the sandbox");
    assert!(!outside.exists());
    shutdown(rpc);
}

#!/usr/bin/env python3
"""Start-up cost of slash commands (SPEC §5.11): spawn -> `ready` (native)
and `session/new` -> its answer and `available_commands_update` (ACP), with
200 command files in the project (both folders, some namespaced) against
none. Median of N interleaved runs. Not part of `cargo bench`.

    python3 benches/slash_commands.py target/release/rpc fixtures/providers/echo [N]
"""
import json, os, statistics, subprocess, sys, tempfile, time
BIN, ECHO = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 15
root = tempfile.mkdtemp()
def tree(name, count):
    repo = os.path.join(root, name); os.makedirs(os.path.join(repo, ".git"))
    cwd = os.path.join(repo, "a", "b"); os.makedirs(cwd)
    for i in range(count):
        folder = os.path.join(repo, ".claude/commands" if i % 2 else ".agents/commands", "ns%d" % (i % 5) if i % 3 == 0 else "")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "cmd%03d.md" % i), "w") as f:
            f.write("---\ndescription: Command %d\nargument-hint: <x> [y]\n---\nDo thing %d with $1 and $ARGUMENTS.\n%s" % (i, i, "More text.\n" * 20))
    return cwd
env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(root, "cfg"))
def native(cwd):
    data = tempfile.mkdtemp()
    t = time.perf_counter()
    p = subprocess.Popen([BIN, "--data-dir", data, "--cwd", cwd, "--extension", ECHO, "--model", "echo:echo:echo-1"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    line = p.stdout.readline(); dt = time.perf_counter() - t
    assert json.loads(line)["type"] == "ready", line
    p.stdin.write(b'{"type":"get_commands","id":1}\n'); p.stdin.flush()
    n = len(json.loads(p.stdout.readline())["commands"])
    p.stdin.close(); p.wait(10)
    return dt * 1000, n
def acp(cwd):
    data = tempfile.mkdtemp()
    p = subprocess.Popen([BIN, "--acp", "--data-dir", data, "--extension", ECHO, "--model", "echo:echo:echo-1"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    send = lambda m: (p.stdin.write((json.dumps(m) + "\n").encode()), p.stdin.flush())
    send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1, "clientCapabilities": {}}})
    json.loads(p.stdout.readline())
    t = time.perf_counter()
    send({"jsonrpc": "2.0", "id": 2, "method": "session/new", "params": {"cwd": cwd, "mcpServers": []}})
    answered = listed = None; n = 0
    while listed is None:
        m = json.loads(p.stdout.readline())
        if m.get("id") == 2: answered = time.perf_counter() - t
        if m.get("params", {}).get("update", {}).get("sessionUpdate") == "available_commands_update":
            listed = time.perf_counter() - t; n = len(m["params"]["update"]["availableCommands"])
    p.stdin.close(); p.wait(10)
    return answered * 1000, listed * 1000, n
trees = {"none": tree("none", 0), "200": tree("many", 200)}
res = {k: {"ready": [], "new": [], "update": []} for k in trees}
for _ in range(N):
    for k, cwd in trees.items():
        ms, n1 = native(cwd); res[k]["ready"].append(ms)
        a, l, n2 = acp(cwd); res[k]["new"].append(a); res[k]["update"].append(l)
        res[k]["n"] = (n1, n2)
for k, r in res.items():
    print("%-5s commands listed %s: ready median %.1f ms (min %.1f); ACP session/new answer median %.2f ms, available_commands_update at %.2f ms"
          % (k, r["n"], statistics.median(r["ready"]), min(r["ready"]), statistics.median(r["new"]), statistics.median(r["update"])))

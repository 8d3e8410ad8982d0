// rpc --acp driven by the acpx CLI (`acpx --agent "rpc --acp …"`): a one-shot
// exec with --approve-all (its write and its bash going through acpx's file
// system and terminal, which acpx advertises) and --deny-all, `sessions`, and `cancel` of a
// prompt running a bash `sleep` from another acpx process. Run by
// tests/acp/real_clients.rs with RPC_BINARY and ECHO_EXTENSION.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

/** A temporary directory, removed when the process exits. */
function scratch(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const ACPX = join(dirname(fileURLToPath(import.meta.url)), "node_modules/.bin/acpx");
const BINARY = process.env.RPC_BINARY;
const ECHO = process.env.ECHO_EXTENSION;

function setup(extra = "") {
  const data = scratch("acpx-data-");
  const cwd = scratch("acpx-cwd-");
  const home = scratch("acpx-home-");
  const agent = `${BINARY} --acp --data-dir ${data} --extension ${ECHO} --model echo:echo:echo-1 ${extra}`;
  return { cwd, home, agent };
}

/** Runs acpx to its end (bounded); resolves with {code, stdout, stderr}. */
function acpx(env, args) {
  return new Promise((resolve) => {
    execFile(
      ACPX,
      ["--cwd", env.cwd, "--ttl", "1", "--agent", env.agent, ...args],
      { env: { ...process.env, HOME: env.home }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stdout, stderr }),
    );
  });
}

test("exec --approve-all writes the file through acpx's file system", async () => {
  const env = setup();
  const r = await acpx(env, ["--approve-all", "--format", "json", "exec", 'go [[tool=write input={"path": "x.txt", "content": "yo"}]]']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(readFileSync(join(env.cwd, "x.txt"), "utf8"), "yo");
  // acpx advertises fs.writeTextFile: the write was its to make.
  assert.match(r.stdout, /"method":"fs\/write_text_file"/);
  assert.match(r.stdout, /end_turn/);
});

test("exec --approve-all runs bash in acpx's terminal", async () => {
  const env = setup();
  const r = await acpx(env, ["--approve-all", "--format", "json", "exec", '[[tool=bash input={"command": "echo from-the-terminal"}]]']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /"method":"terminal\/create"/);
  assert.match(r.stdout, /"method":"terminal\/release"/);
  assert.match(r.stdout, /"type":"terminal"/);
  assert.ok(r.stdout.includes('"result":"from-the-terminal\\n\\nexit code 0"'), r.stdout);
});

test("exec --deny-all denies the call and the turn goes on", async () => {
  const env = setup();
  const r = await acpx(env, ["--deny-all", "exec", 'no [[tool=write input={"path": "x.txt", "content": "yo"}]]']);
  assert.ok(!existsSync(join(env.cwd, "x.txt")));
  assert.match(r.stdout, /the user denied this write call/);
  assert.match(r.stdout, /end_turn/);
});

test("sessions lists what exec created", async () => {
  const env = setup();
  await acpx(env, ["--approve-all", "exec", "first title here"]);
  const r = await acpx(env, ["--format", "json", "sessions"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const listed = JSON.parse(r.stdout.trim().split("\n").at(-1));
  assert.equal(listed.sessions.length, 1);
  assert.equal(listed.sessions[0].title, "first title here");
});

test("cancel from another acpx ends a bash sleep as cancelled", async () => {
  const env = setup("--permission-mode allow-all");
  const created = await acpx(env, ["sessions", "new"]);
  assert.equal(created.code, 0, created.stdout + created.stderr);
  const prompt = spawn(
    ACPX,
    // --approve-all: acpx's own policy, for the terminal it opens for bash.
    ["--approve-all", "--cwd", env.cwd, "--ttl", "1", "--format", "json", "--agent", env.agent, "prompt", '[[tool=bash input={"command": "sleep 31"}]]'],
    { env: { ...process.env, HOME: env.home }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let exited = false;
  prompt.stdout.on("data", (d) => (out += d));
  prompt.on("exit", () => (exited = true));
  const deadline = Date.now() + 30_000;
  // acpx advertises a terminal: bash runs in it, embedded in the call.
  while (!out.includes('"type":"terminal"')) {
    assert.ok(Date.now() < deadline && !exited, "the bash call never started: " + out);
    await new Promise((r) => setTimeout(r, 50));
  }
  const r = await acpx(env, ["cancel"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const code = exited ? prompt.exitCode : await new Promise((resolve) => prompt.on("exit", resolve));
  assert.equal(code, 0, out);
  assert.match(out, /"stopReason":"cancelled"/);
  // acpx killed the sleep when the turn sent terminal/kill and release.
  const ps = await new Promise((resolve) => execFile("ps", ["-eo", "args"], (_, stdout) => resolve(stdout)));
  assert.ok(!ps.split("\n").some((l) => l.trim() === "sleep 31"), ps);
});

// Editor round-trip driver (not a test): the time one tool call takes, seen
// by an ACP client from the call's `tool_call` to its closing
// `tool_call_update`, with the client offering its files and terminal and
// without (the same work done locally), through the official TypeScript SDK.
//
//   RUNS=30 node measure-editor.mjs -- target/release/rpc --extension fixtures/providers/echo
//
// Prints one markdown row per tool: median (min–max) ms locally, through
// the editor, and the difference, after two unrecorded warm-up calls.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { performance } from "node:perf_hooks";
import * as acp from "@agentclientprotocol/sdk";

/** A temporary directory, removed when the process exits. */
function scratch(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const argv = process.argv.slice(process.argv.indexOf("--") + 1);
const RUNS = Number(process.env.RUNS ?? 30);
const WARM_UP = 2;

/** A client serving files from disk and terminals as child processes, as an editor would. */
function client(marks) {
  const terminals = new Map();
  let next = 0;
  return acp
    .client({ name: "measure-editor" })
    .onNotification(acp.methods.client.session.update, ({ params }) => {
      const u = params.update;
      if (u.sessionUpdate === "tool_call") marks.start = performance.now();
      if (u.status === "completed" || u.status === "failed") marks.end = performance.now();
      if (u.status === "failed") marks.failed = JSON.stringify(u.rawOutput);
    })
    .onRequest(acp.methods.client.session.requestPermission, () => ({ outcome: { outcome: "selected", optionId: "allow_once" } }))
    .onRequest(acp.methods.client.fs.readTextFile, ({ params }) => {
      const lines = readFileSync(params.path, "utf8").split(/(?<=\n)/);
      const from = (params.line ?? 1) - 1;
      return { content: lines.slice(from, params.limit == null ? undefined : from + params.limit).join("") };
    })
    .onRequest(acp.methods.client.fs.writeTextFile, ({ params }) => {
      writeFileSync(params.path, params.content);
      return {};
    })
    .onRequest(acp.methods.client.terminal.create, ({ params }) => {
      const id = `t${++next}`;
      const child = spawn(params.command, params.args, { cwd: params.cwd, stdio: ["ignore", "pipe", "pipe"] });
      const t = { output: "", exited: new Promise((r) => child.on("exit", (exitCode, signal) => r({ exitCode, signal }))) };
      child.stdout.on("data", (d) => (t.output += d));
      child.stderr.on("data", (d) => (t.output += d));
      terminals.set(id, { ...t, child });
      return { terminalId: id };
    })
    .onRequest(acp.methods.client.terminal.waitForExit, ({ params }) => terminals.get(params.terminalId).exited)
    .onRequest(acp.methods.client.terminal.output, ({ params }) => ({ output: terminals.get(params.terminalId).output, truncated: false }))
    .onRequest(acp.methods.client.terminal.kill, ({ params }) => (terminals.get(params.terminalId).child.kill("SIGKILL"), {}))
    .onRequest(acp.methods.client.terminal.release, ({ params }) => (terminals.delete(params.terminalId), {}));
}

/** Milliseconds per call of `prompt` (or of each of a list in turn), RUNS of them, with `capabilities` offered. */
async function measure(capabilities, prompt) {
  const data = scratch("measure-data-");
  const cwd = scratch("measure-cwd-");
  writeFileSync(join(cwd, "a.txt"), Array.from({ length: 200 }, (_, i) => `line ${i + 1}\n`).join(""));
  const [bin, ...args] = argv;
  const child = spawn(bin, [...args, "--acp", "--data-dir", data, "--permission-mode", "allow-all"], { stdio: ["pipe", "pipe", "inherit"] });
  const marks = {};
  const c = client(marks);
  const times = [];
  await c.connectWith(acp.ndJsonStream(Writable.toWeb(child.stdin), Readable.toWeb(child.stdout)), async (ctx) => {
    await ctx.request(acp.methods.agent.initialize, { protocolVersion: 1, clientCapabilities: capabilities });
    const { sessionId } = await ctx.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
    for (let i = 0; i < RUNS + WARM_UP; i++) {
      const text = Array.isArray(prompt) ? prompt[i % prompt.length] : prompt;
      await ctx.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: "text", text }] });
      if (marks.failed) throw new Error(`a measured call failed: ${marks.failed}`);
      if (i >= WARM_UP) times.push(marks.end - marks.start);
    }
  });
  child.stdin.end();
  await new Promise((r) => child.on("exit", r));
  return times.sort((a, b) => a - b);
}

const median = (t) => t[Math.floor(t.length / 2)];
const fmt = (t) => `${median(t).toFixed(2)} (${t[0].toFixed(2)}–${t[t.length - 1].toFixed(2)})`;
const EDITOR = { fs: { readTextFile: true, writeTextFile: true }, terminal: true };
const cases = [
  ["read a.txt (200 lines)", '[[tool=read input={"path": "a.txt"}]]'],
  // An edit and its reverse in turn, so that each one changes the file.
  ["edit a.txt", [
    '[[tool=edit input={"path": "a.txt", "old_string": "line 7\\n", "new_string": "LINE 7\\n"}]]',
    '[[tool=edit input={"path": "a.txt", "old_string": "LINE 7\\n", "new_string": "line 7\\n"}]]',
  ]],
  ["bash `true`", '[[tool=bash input={"command": "true"}]]'],
];
console.log(`| tool call, ${RUNS} runs | local, ms | through the editor, ms | added, ms |`);
console.log("|---|---|---|---|");
for (const [name, prompt] of cases) {
  const local = await measure({}, prompt);
  const editor = await measure(EDITOR, prompt);
  console.log(`| ${name} | ${fmt(local)} | ${fmt(editor)} | ${(median(editor) - median(local)).toFixed(2)} |`);
}

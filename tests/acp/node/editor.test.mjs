// rpc --acp using the editor's files and terminal, driven by the official
// TypeScript SDK as a client that advertises `fs.readTextFile`,
// `fs.writeTextFile` and `terminal` and implements them here: its buffers
// differ from the disk, and its terminals are real child processes. The SDK
// checks every request and notification the agent sends against the ACP
// schema on arrival. Run by tests/acp/real_clients.rs with RPC_BINARY and
// ECHO_EXTENSION.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import * as acp from "@agentclientprotocol/sdk";

/** A temporary directory, removed when the test process exits. */
function scratch(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const BINARY = process.env.RPC_BINARY;
const ECHO = process.env.ECHO_EXTENSION;
const EVERYTHING = { fs: { readTextFile: true, writeTextFile: true }, terminal: true };

/** An editor: open buffers by absolute path, terminals it runs, and a log of the agent's requests. */
function editor(buffers = {}, { answerWrites = true, killDelayMs = 0 } = {}) {
  const calls = [];
  const terminals = new Map();
  let next = 0;
  const client = acp
    .client({ name: "agent-rpc-editor-test" })
    .onNotification(acp.methods.client.session.update, ({ params }) => {
      calls.push({ method: "session/update", params });
    })
    .onRequest(acp.methods.client.session.requestPermission, ({ params }) => {
      calls.push({ method: "session/request_permission", params });
      return { outcome: { outcome: "selected", optionId: "allow_once" } };
    })
    .onRequest(acp.methods.client.fs.readTextFile, ({ params }) => {
      calls.push({ method: "fs/read_text_file", params });
      const text = buffers[params.path];
      if (text === undefined) throw acp.RequestError.resourceNotFound(params.path);
      const lines = text.split(/(?<=\n)/);
      const from = (params.line ?? 1) - 1;
      const to = params.limit == null ? lines.length : from + params.limit;
      return { content: lines.slice(from, to).join("") };
    })
    .onRequest(acp.methods.client.fs.writeTextFile, ({ params }) => {
      calls.push({ method: "fs/write_text_file", params });
      if (!answerWrites) return new Promise(() => {});
      buffers[params.path] = params.content;
      return {};
    })
    .onRequest(acp.methods.client.terminal.create, ({ params }) => {
      calls.push({ method: "terminal/create", params });
      const terminalId = `term-${++next}`;
      const child = spawn(params.command, params.args ?? [], { cwd: params.cwd, stdio: ["ignore", "pipe", "pipe"] });
      const t = { child, output: "", exit: null, exited: null, limit: params.outputByteLimit };
      t.exited = new Promise((resolve) =>
        child.on("exit", (exitCode, signal) => {
          t.exit = { exitCode, signal };
          t.exitedAt = performance.now();
          resolve(t.exit);
        }),
      );
      for (const s of [child.stdout, child.stderr]) s.on("data", (d) => (t.output += d));
      terminals.set(terminalId, t);
      return { terminalId };
    })
    .onRequest(acp.methods.client.terminal.waitForExit, async ({ params }) => {
      calls.push({ method: "terminal/wait_for_exit", params });
      return await terminals.get(params.terminalId).exited;
    })
    .onRequest(acp.methods.client.terminal.output, ({ params }) => {
      calls.push({ method: "terminal/output", params });
      const t = terminals.get(params.terminalId);
      const truncated = Buffer.byteLength(t.output) > t.limit;
      const output = truncated ? t.output.slice(-t.limit) : t.output;
      return { output, truncated, exitStatus: t.exit ?? undefined };
    })
    .onRequest(acp.methods.client.terminal.kill, async ({ params }) => {
      calls.push({ method: "terminal/kill", params, at: performance.now() });
      // An editor may take a while (a grace period before SIGKILL).
      if (killDelayMs) await new Promise((r) => setTimeout(r, killDelayMs));
      terminals.get(params.terminalId).child.kill("SIGKILL");
      return {};
    })
    .onRequest(acp.methods.client.terminal.release, ({ params }) => {
      calls.push({ method: "terminal/release", params });
      const t = terminals.get(params.terminalId);
      if (t.exit === null) t.child.kill("SIGKILL");
      return {};
    });
  return { client, calls, buffers, terminals };
}

/** Starts `rpc --acp` in allow-all mode with `ed` as its client; runs `body(ctx, sessionId, cwd)`. */
async function session(ed, capabilities, body) {
  const data = scratch("acp-data-");
  const cwd = scratch("acp-cwd-");
  const child = spawn(
    BINARY,
    ["--acp", "--data-dir", data, "--extension", ECHO, "--model", "echo:echo:echo-1", "--permission-mode", "allow-all"],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const stream = acp.ndJsonStream(Writable.toWeb(child.stdin), Readable.toWeb(child.stdout));
  await ed.client.connectWith(stream, async (ctx) => {
    await ctx.request(acp.methods.agent.initialize, { protocolVersion: 1, clientCapabilities: capabilities });
    const { sessionId } = await ctx.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
    await body(ctx, sessionId, cwd);
  });
  child.stdin.end();
  const code = await new Promise((resolve) => child.on("exit", resolve));
  assert.equal(code, 0);
}

function prompt(ctx, sessionId, text) {
  return ctx.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: "text", text }] });
}

const tool = (name, input) => `[[tool=${name} input=${JSON.stringify(input)}]]`;
const named = (ed, method) => ed.calls.filter((c) => c.method === method);
const updates = (ed) => named(ed, "session/update").map((c) => c.params.update);
const ended = (ed) => updates(ed).filter((u) => u.status === "completed" || u.status === "failed");
const waitFor = async (check) => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), "timed out waiting");
};

test("read, edit and write go through the editor's buffers, not the disk", async () => {
  const ed = editor();
  await session(ed, EVERYTHING, async (ctx, sessionId, cwd) => {
    const file = join(cwd, "a.txt");
    writeFileSync(file, "on disk\n");
    ed.buffers[file] = "unsaved one\nunsaved two\n";

    await prompt(ctx, sessionId, tool("read", { path: "a.txt" }));
    const [read] = named(ed, "fs/read_text_file");
    assert.deepEqual(read.params, { sessionId, path: file, line: 1, limit: 2001 });
    assert.equal(ended(ed)[0].rawOutput.result, "     1\tunsaved one\n     2\tunsaved two\n");

    await prompt(ctx, sessionId, tool("edit", { path: "a.txt", old_string: "two", new_string: "2" }));
    const [write] = named(ed, "fs/write_text_file");
    assert.deepEqual(write.params, { sessionId, path: file, content: "unsaved one\nunsaved 2\n" });
    assert.equal(readFileSync(file, "utf8"), "on disk\n");
    const edited = ended(ed)[1];
    assert.equal(edited.status, "completed", JSON.stringify(edited));

    await prompt(ctx, sessionId, tool("write", { path: "new.txt", content: "fresh\n" }));
    assert.equal(ed.buffers[join(cwd, "new.txt")], "fresh\n");
    assert.ok(!existsSync(join(cwd, "new.txt")));
    assert.match(ended(ed)[2].rawOutput.result, /^Created new\.txt/);
  });
});

test("an editor error is the tool's error and the turn goes on; binary files stay local", async () => {
  const ed = editor();
  await session(ed, EVERYTHING, async (ctx, sessionId, cwd) => {
    writeFileSync(join(cwd, "closed.txt"), "not open in the editor\n");
    writeFileSync(join(cwd, "b.bin"), Buffer.from([1, 0, 2, 0]));
    const answer = await prompt(ctx, sessionId, tool("read", { path: "closed.txt" }));
    assert.equal(answer.stopReason, "end_turn");
    await prompt(ctx, sessionId, tool("read", { path: "b.bin" }));
    const [missing, binary] = ended(ed);
    assert.equal(missing.status, "failed");
    assert.match(missing.rawOutput.result, /closed\.txt does not exist/);
    assert.equal(binary.status, "failed");
    assert.match(binary.rawOutput.result, /binary file/);
    assert.deepEqual(named(ed, "fs/read_text_file").map((c) => c.params.path), [join(cwd, "closed.txt")]);
  });
});

test("without the capability the disk is used and the editor is never asked", async () => {
  const ed = editor();
  await session(ed, {}, async (ctx, sessionId, cwd) => {
    writeFileSync(join(cwd, "a.txt"), "on disk\n");
    await prompt(ctx, sessionId, tool("read", { path: "a.txt" }));
    await prompt(ctx, sessionId, tool("bash", { command: "echo local" }));
    const [read, bash] = ended(ed);
    assert.match(read.rawOutput.result, /on disk/);
    assert.match(bash.rawOutput.result, /local/);
    assert.equal(ed.calls.filter((c) => c.method.startsWith("fs/") || c.method.startsWith("terminal/")).length, 0);
  });
});

test("bash runs in the editor's terminal, embedded in the call, and is released", async () => {
  const ed = editor();
  await session(ed, EVERYTHING, async (ctx, sessionId, cwd) => {
    await prompt(ctx, sessionId, tool("bash", { command: "echo hi from $PWD; exit 3" }));
    const [create] = named(ed, "terminal/create");
    assert.equal(create.params.command, "bash");
    assert.deepEqual(create.params.args, ["-c", "echo hi from $PWD; exit 3"]);
    assert.equal(create.params.cwd, cwd);
    assert.ok(create.params.outputByteLimit > 0);
    const embedded = updates(ed).find((u) => u.content?.[0]?.type === "terminal");
    assert.deepEqual(embedded.content, [{ type: "terminal", terminalId: "term-1" }]);
    const [done] = ended(ed);
    assert.equal(done.status, "failed");
    assert.deepEqual(done.content, [{ type: "terminal", terminalId: "term-1" }]);
    assert.equal(done.rawOutput.result, `hi from ${cwd}\n\nexit code 3`);
    const order = ed.calls.map((c) => c.method).filter((m) => m.startsWith("terminal/"));
    assert.deepEqual(order, ["terminal/create", "terminal/wait_for_exit", "terminal/output", "terminal/release"]);
  });
});

test("a timeout kills the terminal, releases it, and keeps its output", async () => {
  // A slow kill: the output comes back only after it, past bash's own
  // short drain for a local pipe.
  const ed = editor({}, { killDelayMs: 300 });
  await session(ed, EVERYTHING, async (ctx, sessionId) => {
    const answer = await prompt(ctx, sessionId, tool("bash", { command: "echo started; sleep 30", timeout_ms: 300 }));
    assert.equal(answer.stopReason, "end_turn");
    await waitFor(() => named(ed, "terminal/release").length === 1);
    const order = ed.calls.map((c) => c.method).filter((m) => m === "terminal/kill" || m === "terminal/release");
    assert.deepEqual(order, ["terminal/kill", "terminal/release"]);
    const t = ed.terminals.get("term-1");
    await t.exited;
    assert.equal(t.exit.signal, "SIGKILL");
    assert.equal(ended(ed)[0].rawOutput.result, "started\n\ntimed out after 300 ms");
  });
});

test("session/cancel kills and releases the terminal", async () => {
  const ed = editor();
  await session(ed, EVERYTHING, async (ctx, sessionId) => {
    const running = prompt(ctx, sessionId, tool("bash", { command: "sleep 30" }));
    await waitFor(() => updates(ed).some((u) => u.content?.[0]?.type === "terminal"));
    const cancelled = performance.now();
    await ctx.notify(acp.methods.agent.session.cancel, { sessionId });
    assert.equal((await running).stopReason, "cancelled");
    await waitFor(() => named(ed, "terminal/release").length === 1);
    // The agent killed it (the test's release handler would kill it too).
    const order = ed.calls.map((c) => c.method).filter((m) => m === "terminal/kill" || m === "terminal/release");
    assert.deepEqual(order, ["terminal/kill", "terminal/release"]);
    const t = ed.terminals.get("term-1");
    await t.exited;
    assert.equal(t.exit.signal, "SIGKILL");
    console.log(`cancel -> command gone: ${(t.exitedAt - cancelled).toFixed(1)} ms`);
  });
});

test("a cancel does not wait for a write the editor never answers", async () => {
  const ed = editor({}, { answerWrites: false });
  await session(ed, EVERYTHING, async (ctx, sessionId) => {
    const running = prompt(ctx, sessionId, tool("write", { path: "w.txt", content: "x" }));
    await waitFor(() => named(ed, "fs/write_text_file").length === 1);
    const cancelled = performance.now();
    await ctx.notify(acp.methods.agent.session.cancel, { sessionId });
    assert.equal((await running).stopReason, "cancelled");
    console.log(`cancel -> answered with a write pending: ${(performance.now() - cancelled).toFixed(1)} ms`);
  });
});

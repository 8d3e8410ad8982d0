// rpc --acp driven by the official TypeScript SDK (`acp.client()` over
// `acp.ndJsonStream`), as an editor would. Run by tests/acp/real_clients.rs
// with RPC_BINARY (the build under test) and ECHO_EXTENSION (the fixture).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, readFileSync, existsSync, writeFileSync } from "node:fs";
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

/** Starts `rpc --acp` in `data`; the client answers permissions with `pick`. */
function agent(data, pick, extra = []) {
  const child = spawn(
    BINARY,
    ["--acp", "--data-dir", data, "--extension", ECHO, "--model", "echo:echo:echo-1", ...extra],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const updates = [];
  const asked = [];
  const client = acp
    .client({ name: "agent-rpc-test" })
    .onNotification(acp.methods.client.session.update, ({ params }) => {
      updates.push(params);
    })
    .onRequest(acp.methods.client.session.requestPermission, ({ params }) => {
      asked.push(params);
      return { outcome: { outcome: "selected", optionId: pick } };
    });
  const stream = acp.ndJsonStream(Writable.toWeb(child.stdin), Readable.toWeb(child.stdout));
  return { child, client, stream, updates, asked };
}

function textOf(updates, kind) {
  return updates
    .filter((u) => u.update.sessionUpdate === kind)
    .map((u) => u.update.content.text)
    .join("");
}

async function stop(child) {
  child.stdin.end();
  const code = await new Promise((resolve) => child.on("exit", resolve));
  assert.equal(code, 0);
}

test("initialize, new, prompt with a tool and a diff, list, cancel", async () => {
  const data = scratch("acp-data-");
  const cwd = scratch("acp-cwd-");
  const a = agent(data, "allow_once");
  await a.client.connectWith(a.stream, async (ctx) => {
    const init = await ctx.request(acp.methods.agent.initialize, {
      protocolVersion: acp.PROTOCOL_VERSION,
      clientCapabilities: {},
    });
    assert.equal(init.protocolVersion, 1);
    assert.equal(init.agentCapabilities.loadSession, true);
    const session = await ctx.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
    const sessionId = session.sessionId;
    assert.equal(session.modes.currentModeId, "ask");

    let answer = await ctx.request(acp.methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: "text", text: "hello from node [[thinking=1]]" }],
    });
    assert.equal(answer.stopReason, "end_turn");
    assert.equal(textOf(a.updates, "agent_message_chunk"), "hello from node");
    assert.equal(textOf(a.updates, "agent_thought_chunk"), "hmm ");

    a.updates.length = 0;
    answer = await ctx.request(acp.methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: "text", text: 'w [[tool=write input={"path": "n.txt", "content": "node\\n"}]]' }],
    });
    assert.equal(answer.stopReason, "end_turn");
    assert.equal(a.asked.length, 1);
    const done = a.updates.find((u) => u.update.status === "completed");
    assert.equal(done.update.content[0].type, "diff");
    assert.equal(done.update.content[0].newText, "node\n");
    assert.equal(readFileSync(join(cwd, "n.txt"), "utf8"), "node\n");

    const options = await ctx.request(acp.methods.agent.session.setConfigOption, {
      sessionId,
      configId: "thinking",
      value: "low",
    });
    assert.equal(options.configOptions.find((o) => o.id === "thinking").currentValue, "low");
    assert.ok(a.updates.some((u) => u.update.sessionUpdate === "config_option_update"));

    const listed = await ctx.request(acp.methods.agent.session.list, { cwd });
    assert.equal(listed.sessions.length, 1);
    assert.equal(listed.sessions[0].sessionId, sessionId);
    assert.equal(listed.sessions[0].title, "hello from node [[thinking=1]]");

    const moded = await ctx.request(acp.methods.agent.session.setConfigOption, {
      sessionId,
      configId: "mode",
      value: "accept-edits",
    });
    assert.equal(moded.configOptions.find((o) => o.id === "mode").currentValue, "accept-edits");
    assert.ok(a.updates.some((u) => u.update.sessionUpdate === "current_mode_update"));

    await ctx.request(acp.methods.agent.session.setMode, { sessionId, modeId: "allow-all" });
    a.updates.length = 0;
    const running = ctx.request(acp.methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: "text", text: '[[tool=bash input={"command": "sleep 30"}]]' }],
    });
    while (!a.updates.some((u) => u.update.status === "in_progress")) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await ctx.notify(acp.methods.agent.session.cancel, { sessionId });
    answer = await running;
    assert.equal(answer.stopReason, "cancelled");
  });
  await stop(a.child);
});

test("load from a new process replays the history before answering", async () => {
  const data = scratch("acp-data-");
  const cwd = scratch("acp-cwd-");
  const first = agent(data, "allow_once");
  const sessionId = await first.client.connectWith(first.stream, async (ctx) => {
    await ctx.request(acp.methods.agent.initialize, { protocolVersion: 1, clientCapabilities: {} });
    const { sessionId } = await ctx.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
    await ctx.request(acp.methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: "text", text: "remember this" }],
    });
    await ctx.request(acp.methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: "text", text: '[[tool=bash input={"command": "echo replayed"}]]' }],
    });
    return sessionId;
  });
  await stop(first.child);

  const second = agent(data, "reject_once");
  await second.client.connectWith(second.stream, async (ctx) => {
    await ctx.request(acp.methods.agent.initialize, { protocolVersion: 1, clientCapabilities: {} });
    await ctx.request(acp.methods.agent.session.load, { sessionId, cwd, mcpServers: [] });
    // Everything replayed had arrived when the answer did.
    assert.ok(textOf(second.updates, "user_message_chunk").startsWith("remember this"));
    assert.ok(textOf(second.updates, "agent_message_chunk").startsWith("remember this"));
    // Tool calls come back as tool_call + a completed tool_call_update (the
    // SDK checked every notification against the schema on arrival).
    const call = second.updates.find((u) => u.update.sessionUpdate === "tool_call");
    assert.equal(call.update.title, "echo replayed");
    const done = second.updates.find((u) => u.update.sessionUpdate === "tool_call_update");
    assert.equal(done.update.status, "completed");
    assert.match(done.update.content[0].content.text, /replayed/);
    const answer = await ctx.request(acp.methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: "text", text: 'no [[tool=write input={"path": "r.txt", "content": "x"}]]' }],
    });
    assert.equal(answer.stopReason, "end_turn");
    assert.equal(second.asked.length, 1);
    assert.ok(!existsSync(join(cwd, "r.txt")));
  });
  await stop(second.child);
});

test("resume, fork and close, with the title announced", async () => {
  const data = scratch("acp-data-");
  const cwd = scratch("acp-cwd-");
  const first = agent(data, "allow_once");
  const sessionId = await first.client.connectWith(first.stream, async (ctx) => {
    await ctx.request(acp.methods.agent.initialize, { protocolVersion: 1, clientCapabilities: {} });
    const { sessionId } = await ctx.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
    await ctx.request(acp.methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: "text", text: "title me\nnot this" }],
    });
    const info = first.updates.find((u) => u.update.sessionUpdate === "session_info_update");
    assert.equal(info.update.title, "title me");
    assert.equal(typeof info.update.updatedAt, "string");
    return sessionId;
  });
  await stop(first.child);

  const second = agent(data, "allow_once");
  await second.client.connectWith(second.stream, async (ctx) => {
    const init = await ctx.request(acp.methods.agent.initialize, { protocolVersion: 1, clientCapabilities: {} });
    const caps = init.agentCapabilities.sessionCapabilities;
    assert.deepEqual([caps.resume, caps.close, caps.fork], [{}, {}, {}]);
    const resumed = await ctx.request(acp.methods.agent.session.resume, { sessionId, cwd, mcpServers: [] });
    assert.ok(Array.isArray(resumed.configOptions));
    assert.equal(second.updates.filter((u) => u.update.sessionUpdate === "user_message_chunk").length, 0);
    // session/fork is in the SDK's unstable schema only (not in `methods`).
    const forked = await ctx.request("session/fork", { sessionId, cwd, mcpServers: [] });
    assert.notEqual(forked.sessionId, sessionId);
    const answer = await ctx.request(acp.methods.agent.session.prompt, {
      sessionId: forked.sessionId,
      prompt: [{ type: "text", text: "in the fork" }],
    });
    assert.equal(answer.stopReason, "end_turn");
    await ctx.request(acp.methods.agent.session.close, { sessionId });
    await ctx.request(acp.methods.agent.session.close, { sessionId: forked.sessionId });
  });
  await stop(second.child);
});

test("todo_write becomes a plan update, replayed by session/load", async () => {
  const data = scratch("acp-data-");
  const cwd = scratch("acp-cwd-");
  const todos = [
    { content: "read the code", status: "completed", priority: "high" },
    { content: "fix the bug", status: "in_progress" },
  ];
  const first = agent(data, "allow_once");
  const sessionId = await first.client.connectWith(first.stream, async (ctx) => {
    await ctx.request(acp.methods.agent.initialize, { protocolVersion: 1, clientCapabilities: {} });
    const { sessionId } = await ctx.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
    const answer = await ctx.request(acp.methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: "text", text: `plan it [[tool=todo_write input=${JSON.stringify({ todos })}]]` }],
    });
    assert.equal(answer.stopReason, "end_turn");
    // No permission asked, even in the default ask mode.
    assert.equal(first.asked.length, 0);
    const plans = first.updates.filter((u) => u.update.sessionUpdate === "plan");
    assert.equal(plans.length, 1);
    assert.deepEqual(plans[0].update.entries, [
      { content: "read the code", priority: "high", status: "completed" },
      { content: "fix the bug", priority: "medium", status: "in_progress" },
    ]);
    return sessionId;
  });
  await stop(first.child);

  const second = agent(data, "allow_once");
  await second.client.connectWith(second.stream, async (ctx) => {
    await ctx.request(acp.methods.agent.initialize, { protocolVersion: 1, clientCapabilities: {} });
    await ctx.request(acp.methods.agent.session.load, { sessionId, cwd, mcpServers: [] });
    const plans = second.updates.filter((u) => u.update.sessionUpdate === "plan");
    assert.equal(plans.length, 1);
    assert.equal(plans[0].update.entries[1].content, "fix the bug");
  });
  await stop(second.child);
});

test("slash commands: available_commands_update after session/new, a /name prompt expanded", async () => {
  const data = scratch("acp-data-");
  const cwd = scratch("acp-cwd-");
  mkdirSync(join(cwd, ".claude", "commands"), { recursive: true });
  writeFileSync(
    join(cwd, ".claude", "commands", "explain.md"),
    "---\ndescription: Explain some code\nargument-hint: <path>\n---\nExplain $1 simply. $ARGUMENTS\n",
  );
  const a = agent(data, "allow_once");
  await a.client.connectWith(a.stream, async (ctx) => {
    await ctx.request(acp.methods.agent.initialize, {
      protocolVersion: acp.PROTOCOL_VERSION,
      clientCapabilities: {},
    });
    const { sessionId } = await ctx.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
    const announced = () =>
      a.updates.find((u) => u.sessionId === sessionId && u.update.sessionUpdate === "available_commands_update");
    for (let waited = 0; !announced() && waited < 5000; waited += 20) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const commands = announced().update.availableCommands;
    assert.deepEqual(
      commands.find((c) => c.name === "explain"),
      { name: "explain", description: "Explain some code", input: { hint: "<path>" } },
    );
    assert.ok(commands.some((c) => c.name === "compact"));
    assert.ok(commands.some((c) => c.name === "skills"));

    a.updates.length = 0;
    const answer = await ctx.request(acp.methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: "text", text: "/explain src/main.rs [[show=messages]]" }],
    });
    assert.equal(answer.stopReason, "end_turn");
    const sent = JSON.parse(textOf(a.updates, "agent_message_chunk"));
    assert.equal(sent[0].content, "Explain src/main.rs simply. src/main.rs [[show=messages]]");
  });
  await stop(a.child);
});

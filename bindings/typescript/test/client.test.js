import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { AgentClient, ProcessExitedError, RpcError } from "../src/index.js";
import { BINARY, ECHO, SLOW, collect, startClient, tempDir, text, within } from "./helpers.js";

const WRITE = '[[tool=write input={"path":"a.txt","content":"x"}]]';

test("a streamed prompt, then getState and the other queries", async (t) => {
  const { client, cwd } = await startClient(t);
  assert.equal(client.ready.type, "ready");
  assert.equal(client.ready.protocol_version, 1);
  assert.equal(client.ready.model, "echo:echo:echo-1");

  const turn = client.prompt("hello there friend");
  const { events, response } = await collect(turn);
  assert.equal(events[0].type, "agent_start");
  assert.equal(events.at(-1).type, "agent_end");
  const deltas = events.filter((e) => e.type === "message_update").map((e) => e.event.delta);
  assert.deepEqual(deltas, ["hello", " there", " friend"]);
  assert.ok(events.every((e) => e.prompt_id === turn.promptId));
  assert.equal(response.type, "response");
  assert.equal(response.command, "prompt");
  assert.equal(response.ok, true);
  assert.equal(response.stop_reason, "end_turn");
  assert.equal(await turn.response, response);

  const state = await within(client.getState());
  assert.equal(state.streaming, false);
  assert.equal(state.session_id, client.ready.session_id);
  assert.equal(state.message_count, 2);
  assert.equal(state.cwd, cwd);
  assert.equal(state.permission_mode, "ask");

  const messages = await within(client.getMessages());
  assert.deepEqual(messages.messages[0], { role: "user", content: "hello there friend" });
  const stats = await within(client.getSessionStats());
  assert.equal(stats.turns, 1);
  const models = await within(client.getAvailableModels());
  assert.ok(models.models.some((m) => m.id === "echo:echo:echo-1" && m.available));
  const sessions = await within(client.listSessions());
  assert.equal(sessions.sessions[0].title, "hello there friend");
  const forked = await within(client.fork(0));
  assert.equal(forked.forked_from, client.ready.session_id);
  assert.equal(forked.message, "hello there friend");
  assert.equal(forked.message_count, 0);
  const back = await within(client.switchSession(client.ready.session_id));
  assert.equal(back.message_count, 2);
  assert.equal((await within(client.fork())).message_count, 2);
  await within(client.switchSession(client.ready.session_id));
  assert.equal((await within(client.setPermissionMode("accept-edits"))).mode, "accept-edits");
  const budget = await within(client.setBudget({ maxTurns: 50 }));
  assert.deepEqual([budget.max_turns, budget.budget_usd], [50, null]);
  const lifted = await within(client.setBudget({ maxTurns: null, budgetUsd: 1.5 }));
  assert.deepEqual([lifted.max_turns, lifted.budget_usd], [null, 1.5]);
  assert.equal((await within(client.setSandbox("read-only"))).mode, "read-only");
  assert.equal((await within(client.setModel("echo:echo:echo-1"))).model, "echo:echo:echo-1");
  const fresh = await within(client.newSession());
  assert.notEqual(fresh.session_id, client.ready.session_id);
  const deleted = await within(client.deleteSession(client.ready.session_id));
  assert.equal(deleted.session_id, client.ready.session_id);
  const busy = await within(client.deleteSession(fresh.session_id).catch((e) => e));
  assert.equal(busy.code, "busy");
  assert.deepEqual((await within(client.abort())).dropped, []);
  const generic = await within(client.request("get_state"));
  assert.equal(generic.command, "get_state");
  assert.equal(generic.session_id, fresh.session_id);
});

test("two turns in a row, and a follow-up with attachments", async (t) => {
  const { client } = await startClient(t);
  assert.equal(text((await collect(client.prompt("one"))).events), "one");
  const { events, response } = await collect(
    client.followUp("two", { attachments: [{ type: "text", text: "attached" }] }),
  );
  assert.equal(response.command, "follow_up");
  assert.equal(events[0].command, "follow_up");
  assert.equal(events.at(-1).type, "agent_end");
  const { messages } = await within(client.getMessages());
  assert.deepEqual(messages[2].content, [
    { type: "text", text: "two" },
    { type: "text", text: "attached" },
  ]);
});

test("permission allowed: the handler sees the request and the file is written", async (t) => {
  const seen = [];
  const { client, cwd } = await startClient(t, {
    onPermission: async (request) => {
      seen.push(request);
      await new Promise((r) => setTimeout(r, 10));
      return "allow_once";
    },
  });
  const { events } = await collect(client.prompt(`write it ${WRITE}`));
  assert.equal(seen.length, 1);
  assert.equal(seen[0].tool, "write");
  assert.equal(seen[0].title, "Create a.txt (1 bytes)");
  assert.ok(events.some((e) => e.type === "permission_request" && e.request_id === seen[0].request_id));
  const end = events.find((e) => e.type === "tool_execution_end");
  assert.equal(end.is_error, false);
  assert.equal(readFileSync(join(cwd, "a.txt"), "utf8"), "x");
});

test("permission denied with a message: no file, the turn goes on", async (t) => {
  const { client, cwd } = await startClient(t, {
    onPermission: () => ({ decision: "deny", message: "not today" }),
  });
  const { events, response } = await collect(client.prompt(`write it ${WRITE}`));
  assert.equal(response.ok, true);
  const end = events.find((e) => e.type === "tool_execution_end");
  assert.equal(end.is_error, true);
  assert.match(end.result, /the user denied this write call: not today/);
  assert.match(text(events), /tool result: the user denied/);
  assert.equal(existsSync(join(cwd, "a.txt")), false);
});

test("no handler: denied with a message that says why", async (t) => {
  const { client, cwd } = await startClient(t);
  const { events } = await collect(client.prompt(`write it ${WRITE}`));
  const end = events.find((e) => e.type === "tool_execution_end");
  assert.equal(end.is_error, true);
  assert.match(end.result, /no onPermission handler/);
  assert.equal(existsSync(join(cwd, "a.txt")), false);
});

test("a throwing handler: denied with its message", async (t) => {
  const { client, cwd } = await startClient(t, {
    onPermission: () => {
      throw new Error("handler exploded");
    },
  });
  const { events } = await collect(client.prompt(`write it ${WRITE}`));
  const end = events.find((e) => e.type === "tool_execution_end");
  assert.match(end.result, /onPermission threw: handler exploded/);
  assert.equal(existsSync(join(cwd, "a.txt")), false);
});

test("abort of a slow turn ends it normally with cancelled: true", async (t) => {
  const { client } = await startClient(t, { extra: SLOW });
  const turn = client.prompt("go slowly");
  const events = [];
  let aborted;
  const it = turn[Symbol.asyncIterator]();
  let r;
  while (!(r = await within(it.next(), 10000, "next event")).done) {
    events.push(r.value);
    if (r.value.type === "message_update" && !aborted) aborted = client.abort();
  }
  const response = r.value;
  assert.equal(response.ok, true);
  assert.equal(response.cancelled, true);
  assert.equal(response.stop_reason, "aborted");
  assert.equal(events.at(-1).type, "agent_end");
  assert.equal(events.at(-1).stop_reason, "aborted");
  assert.ok(text(events).length < 40 * 4, "the turn stopped early");
  assert.deepEqual((await within(aborted)).dropped, []);
  assert.equal((await within(client.getState())).streaming, false);
});

test("error codes: not_found, not_streaming, busy", async (t) => {
  const { client } = await startClient(t, { extra: SLOW });
  await assert.rejects(within(client.setModel("nope:nope:nope")), (err) => {
    assert.ok(err instanceof RpcError);
    assert.equal(err.code, "not_found");
    assert.equal(err.command, "set_model");
    assert.equal(typeof err.id, "string");
    assert.ok(err.message.length > 0);
    return true;
  });
  await assert.rejects(within(client.steer("now")), { name: "RpcError", code: "not_streaming", command: "steer" });

  const first = client.prompt("[[n=100 delay_ms=20]]");
  const second = client.prompt("again");
  await assert.rejects(collect(second), (err) => {
    assert.equal(err.code, "busy");
    assert.deepEqual(err.events, []);
    return true;
  });
  await within(client.abort());
  assert.equal((await within(first.response)).cancelled, true);
});

test("a turn that fails (ok: false) throws after its events", async (t) => {
  const { client } = await startClient(t);
  const turn = client.prompt("[[n=2 error='rate limited']]");
  const err = await collect(turn).then(
    () => assert.fail("the turn should have failed"),
    (e) => e,
  );
  assert.ok(err instanceof RpcError);
  assert.equal(err.code, "provider_error");
  assert.match(err.message, /rate limited/);
  assert.equal(err.frame.ok, false);
  assert.equal(err.events.at(-1).type, "agent_end");
  assert.equal(text(err.events), "tok tok ");
  await assert.rejects(turn.response, { code: "provider_error" });
});

test("the process killed mid-turn: every pending call rejects with the exit info", async (t) => {
  const { client } = await startClient(t, { extra: SLOW });
  const turn = client.prompt("[[n=200 delay_ms=50 stderr=3]]");
  const it = turn[Symbol.asyncIterator]();
  while ((await within(it.next())).value.type !== "message_update");
  const follow = client.followUp("later");
  client.child.kill("SIGKILL");
  const check = (err) => {
    assert.ok(err instanceof ProcessExitedError);
    assert.equal(err.code, "process_exited");
    assert.equal(err.signal, "SIGKILL");
    assert.equal(err.exitCode, null);
    assert.match(err.message, /killed by signal SIGKILL/);
    return true;
  };
  await assert.rejects(async () => {
    for (;;) if ((await within(it.next())).done) break;
  }, check);
  await assert.rejects(within(follow.response), check);
  await assert.rejects(within(client.getState()), check);
});

test("the process exiting reports its exit code and stderr tail", async (t) => {
  const dir = tempDir(t);
  const client = new AgentClient({
    binary: BINARY,
    args: ["--data-dir", join(dir, "d"), "--continue", "00000000-0000-0000-0000-000000000000", ...ECHO],
  });
  t.after(() => client.close());
  await assert.rejects(within(client.start()), (err) => {
    assert.ok(err instanceof RpcError);
    assert.equal(err.code, "not_found");
    return true;
  });
  await assert.rejects(within(client.getState()), (err) => {
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /exited with code 2; its stderr ends with:\n/);
    assert.ok(err.stderr.length > 0);
    return true;
  });
});

test("a missing binary rejects start()", async () => {
  const client = new AgentClient({ binary: "/nonexistent/rpc" });
  await assert.rejects(within(client.start()), (err) => {
    assert.ok(err instanceof ProcessExitedError);
    assert.match(err.message, /could not be run: .*ENOENT/);
    return true;
  });
  // spawn() itself throwing (here: a NUL in the environment) rejects too.
  const bad = new AgentClient({ binary: BINARY, env: { BAD: "a\0b" } });
  await assert.rejects(within(bad.start()), { name: "ProcessExitedError", code: "process_exited" });
  await assert.rejects(within(bad.getState()), { name: "ProcessExitedError" });
  assert.deepEqual(await within(bad.close()), { exitCode: null, signal: null });
});

test("a line over 64 KiB and U+2028/U+2029 arrive intact", async (t) => {
  const { client } = await startClient(t);
  const big = "x".repeat(100 * 1024);
  const { events } = await collect(client.prompt(big));
  assert.equal(text(events), big);
  const odd = "a\u2028b\u2029c\r\nd";
  const { response } = await collect(client.prompt(odd));
  assert.equal(response.ok, true);
  const { messages } = await within(client.getMessages());
  assert.equal(messages[0].content, big);
  assert.equal(messages[2].content, odd);
});

test("a command over --max-frame-bytes is refused locally, not sent", async (t) => {
  const { client } = await startClient(t, { extra: [...ECHO, "--max-frame-bytes", "1000"] });
  await assert.rejects(collect(client.prompt("y".repeat(2000))), { code: "frame_too_large" });
  assert.equal(text((await collect(client.prompt("small"))).events), "small");
});

test("the --max-frame-bytes=N form sets the cap too", async (t) => {
  const { client } = await startClient(t, { extra: [...ECHO, "--max-frame-bytes=4000000"] });
  assert.equal(client.maxFrameBytes, 4000000);
  const long = "z".repeat(2_000_000);
  const { response } = await collect(client.prompt(long));
  assert.equal(response.ok, true);
});

test("an abort cancels a pending permission handler through its signal", async (t) => {
  let seen;
  const opened = new Promise((resolveOpened) => {
    seen = resolveOpened;
  });
  const { client, cwd } = await startClient(t, {
    onPermission: (request, { signal }) =>
      new Promise((resolveAnswer) => {
        seen(request);
        // A dialog that would wait forever, closed by the host's cancel.
        signal.addEventListener("abort", () => resolveAnswer("allow_once"));
      }),
  });
  const write = JSON.stringify({ path: "never.txt", content: "x" });
  const turn = client.prompt(`[[tool=write input=${write}]]`);
  const done = collect(turn);
  await within(opened);
  const abort = await within(client.abort());
  assert.equal(abort.command, "abort");
  const { events, response } = await done;
  assert.equal(response.cancelled, true);
  assert.ok(events.some((e) => e.type === "permission_cancelled"));
  assert.equal(existsSync(join(cwd, "never.txt")), false);
  assert.equal(client.permissionAborts.size, 0);
});

test("a finished turn leaves nothing behind in the routing tables", async (t) => {
  const { client } = await startClient(t, { onPermission: () => "deny" });
  const write = JSON.stringify({ path: "never.txt", content: "x" });
  await collect(client.prompt(`[[tool=write input=${write}]]`));
  assert.equal(client.turns.size, 0);
  assert.equal(client.permissionTurns.size, 0);
});

test("shutdown answers, then the process exits 0", async (t) => {
  const { client } = await startClient(t);
  const response = await within(client.shutdown());
  assert.equal(response.command, "shutdown");
  assert.deepEqual(await within(client.close()), { exitCode: 0, signal: null });
});

test("close() lets the running turn finish", async (t) => {
  const { client } = await startClient(t);
  const turn = client.prompt("[[n=5 delay_ms=20]]");
  const closed = client.close();
  const { response } = await collect(turn);
  assert.equal(response.ok, true);
  assert.deepEqual(await within(closed), { exitCode: 0, signal: null });
});

test("getCommands: the project's commands, found again by newSession, expand a prompt", async (t) => {
  const { client, cwd } = await startClient(t);
  const builtins = (await within(client.getCommands())).commands;
  assert.ok(builtins.some((c) => c.name === "compact" && c.source === "builtin"));
  mkdirSync(join(cwd, ".agents", "commands"), { recursive: true });
  const greet = "---\ndescription: Greet someone\nargument-hint: <name>\n---\nSay hello to $1.\n";
  writeFileSync(join(cwd, ".agents", "commands", "greet.md"), greet);
  await within(client.newSession());
  const { commands } = await within(client.getCommands());
  assert.deepEqual(commands.find((c) => c.name === "greet"), {
    name: "greet",
    description: "Greet someone",
    argument_hint: "<name>",
    source: "project",
  });
  const { response } = await collect(client.prompt("/greet Ada"));
  assert.equal(response.ok, true);
  const { messages } = await within(client.getMessages());
  assert.equal(messages[0].content, "Say hello to Ada.");
});

// Type-checked (tsc --strict, never run) by types.test.js: the README's
// usage through the package's own name, as an installed user would write it.

import {
  AgentClient,
  ProcessExitedError,
  RpcError,
  type Frame,
  type GetStateResponse,
  type PermissionAnswer,
  type PermissionRequest,
  type TurnEvent,
} from "agent-rpc";

const client = new AgentClient({ args: process.argv.slice(2) }); // runs `rpc` from PATH
console.log("session", (await client.start()).session_id);
for await (const event of client.prompt("Say hello in five words."))
  if (event.type === "message_update" && event.event.type === "text_delta") process.stdout.write(event.event.delta);
console.log(`\n${(await client.getState()).message_count} messages`);
await client.close();

const asking = new AgentClient({
  binary: "/usr/local/bin/rpc",
  cwd: ".",
  env: { ...process.env, RUST_LOG: "info" },
  onPermission: async (request) => {
    if (request.tool === "write" && !request.outside_cwd) return "allow_once";
    return { decision: "deny", message: `not allowed: ${request.title}` };
  },
  onFrame: (frame: Frame) => void frame.type,
});
const ready = await asking.start();
const protocol: number = ready.protocol_version;

const turn = asking.prompt("fix it", { attachments: [{ type: "text", text: "log" }] });
const it = turn[Symbol.asyncIterator]();
for (let r = await it.next(); ; r = await it.next()) {
  if (r.done) {
    const stop: string | undefined = "stop_reason" in r.value ? r.value.stop_reason : undefined;
    console.log(stop, r.value.ok);
    break;
  }
  const event: TurnEvent = r.value;
  switch (event.type) {
    case "tool_execution_end":
      console.log(event.result, event.is_error);
      break;
    case "permission_request":
      console.log(event.request_id, event.diff);
      break;
    case "agent_end":
      console.log(event.usage.output_tokens);
      break;
  }
}
const response = await asking.followUp("and then?").response;
console.log(response.command === "follow_up");

const state: GetStateResponse = await asking.getState();
const mode: "ask" | "accept-edits" | "allow-all" | "read-only" = state.permission_mode;
console.log(protocol, mode, state.prompt_id?.length);
console.log((await asking.steer("be brief")).queued, (await asking.abort()).dropped.length);
console.log((await asking.setModel("echo:echo:echo-1")).model, (await asking.setPermissionMode("ask")).mode);
console.log((await asking.getMessages()).messages[0]?.role, (await asking.getSessionStats()).cost_usd);
console.log((await asking.getAvailableModels()).models[0]?.context_window, (await asking.listSessions()).sessions.length);
console.log((await asking.newSession()).session_id, (await asking.shutdown()).ok);
console.log((await asking.request("get_state", {})).command);

try {
  await asking.setModel("nope/nope");
} catch (err) {
  if (err instanceof RpcError && err.code === "not_found") console.log(err.message, err.command, err.id);
  else if (err instanceof ProcessExitedError) console.log(err.exitCode, err.signal, err.stderr);
  else throw err;
}
const closed = await asking.close({ timeoutMs: 1000 });
console.log(closed.exitCode, closed.signal, asking.stderrTail, asking.ready?.session_id);

const answer = (request: PermissionRequest): PermissionAnswer =>
  request.tool === "bash" ? "deny" : { decision: "allow_always" };
console.log(answer);

// @ts-expect-error: not a decision
const wrong: PermissionAnswer = "maybe";
console.log(wrong);

// A session moved to another host (its own data dir): export, import, continue.
const exported = await asking.exportSession(ready.session_id);
const data: string = exported.data;
const imported: string = (await client.importSession(data, { newId: true })).session_id;
await client.switchSession(imported);

// exportSession / importSession: a session moved to a host on another
// data dir, and the typed errors an import answers.

import assert from "node:assert/strict";
import { test } from "node:test";

import { collect, startClient, within } from "./helpers.js";

test("a session exported from one host continues on another", async (t) => {
  const { client: source } = await startClient(t);
  await collect(source.prompt("remember this"));
  const id = source.ready.session_id;
  const exported = await within(source.exportSession(id));
  assert.equal(exported.session_id, id);
  assert.match(exported.data.split("\n")[0], /"type":"agent_rpc_export"/);

  const { client: target } = await startClient(t);
  assert.equal((await within(target.importSession(exported.data))).session_id, id);
  const exists = await within(target.importSession(exported.data).catch((e) => e));
  assert.equal(exists.code, "session_exists");
  assert.equal((await within(target.switchSession(id))).message_count, 2);
  await collect(target.prompt("and this"));
  assert.equal((await within(target.getMessages())).messages.length, 4);

  const copy = await within(target.importSession(exported.data, { newId: true }));
  assert.notEqual(copy.session_id, id);
  const torn = await within(target.importSession(exported.data.slice(0, -2)).catch((e) => e));
  assert.equal(torn.code, "invalid_params");
  assert.match(torn.message, /line \d+/);
  const busy = await within(target.importSession(exported.data, { replace: true }).catch((e) => e));
  assert.equal(busy.code, "busy");
  assert.equal((await within(target.getState())).session_id, id);
});

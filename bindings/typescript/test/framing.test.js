// Reading stdout: lines split on "\n" only, of any length, with multi-byte
// characters cut across reads. A fake host (a small Node script) writes the
// bytes in awkward pieces, so this does not depend on how `rpc` buffers.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { AgentClient } from "../src/index.js";
import { tempDir, within } from "./helpers.js";

const FAKE_HOST = `
import { readFileSync, writeSync } from "node:fs";
const usage = { input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 };
function send(frame, piece) {
  const bytes = Buffer.from(JSON.stringify(frame) + "\\n", "utf8");
  for (let i = 0; i < bytes.length; i += piece) writeSync(1, bytes.subarray(i, i + piece));
}
send({ type: "ready", protocol_version: 1, version: "0", session_id: "s", model: null, cwd: "/", message_count: 0, usage }, 3);
let buffered = "";
process.stdin.on("data", (chunk) => {
  buffered += chunk;
  let nl;
  while ((nl = buffered.indexOf("\\n")) !== -1) {
    const command = JSON.parse(buffered.slice(0, nl));
    buffered = buffered.slice(nl + 1);
    const text = readFileSync(process.env.TEXT_FILE, "utf8");
    send({ type: "response", id: command.id, command: command.type, ok: true, text }, Number(process.env.PIECE));
  }
});
`;

for (const piece of [1, 7, 65536]) {
  test(`U+2028, U+2029, U+0085 and a 300 KiB line survive ${piece}-byte writes`, async (t) => {
    const dir = tempDir(t);
    const script = join(dir, "fake-host.mjs");
    writeFileSync(script, FAKE_HOST);
    const text = "a\u2028b\u2029c\rd\u0085e" + "é€😀".repeat(piece === 1 ? 2000 : 35000);
    writeFileSync(join(dir, "text"), text);
    const env = { ...process.env, TEXT_FILE: join(dir, "text"), PIECE: String(piece) };
    const client = new AgentClient({ binary: process.execPath, args: [script], env });
    t.after(() => within(client.close({ timeoutMs: 2000 }), 10000, "close"));
    assert.equal((await within(client.start())).session_id, "s");
    const first = await within(client.request("get_state"), 30000);
    assert.equal(first.text, text);
    const second = await within(client.getState(), 30000);
    assert.equal(second.text, text);
  });
}

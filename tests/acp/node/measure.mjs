// ACP latency driver (not a test): spawn an ACP agent, `initialize`,
// `session/new`, then two prompts of 20 text deltas each against fake_llm.py,
// through the official TypeScript SDK — the method of
// shared/bench/ACP.md, so figures compare with the ones there.
//
//   FAKE_LLM=/path/to/fake_llm.py RUNS=5 \
//   node measure.mjs -- target/release/rpc --acp --model anthropic/claude-sonnet-4-5
//
// Prints one markdown row: median (min–max) ms per column, after one
// unrecorded warm-up run.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
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
const RUNS = Number(process.env.RUNS ?? 5);
const PROMPT = "say it [[bench n=20 delay=0 tag=acp]]";

function startFake() {
  return new Promise((resolve, reject) => {
    const fake = spawn("python3", [process.env.FAKE_LLM, "--port", "0"], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    fake.stderr.on("data", (d) => {
      err += d;
      const m = /LISTENING (\d+)/.exec(err);
      if (m) resolve({ fake, port: Number(m[1]) });
    });
    fake.on("exit", () => reject(new Error("fake_llm.py exited: " + err)));
  });
}

async function once(port) {
  const home = scratch("acp-measure-");
  const cwd = scratch("acp-measure-cwd-");
  const base = `http://127.0.0.1:${port}`;
  const env = {
    PATH: process.env.PATH, HOME: home, LANG: "C.UTF-8", TERM: "dumb",
    ANTHROPIC_BASE_URL: base, ANTHROPIC_API_KEY: "dummy",
    OPENAI_BASE_URL: base + "/v1", OPENAI_API_KEY: "dummy",
    DISABLE_TELEMETRY: "1", DISABLE_AUTOUPDATER: "1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1", IS_SANDBOX: "1",
  };
  let firstChunk = null;
  const t0 = performance.now();
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ["pipe", "pipe", "ignore"] });
  const client = acp
    .client({ name: "measure" })
    .onNotification(acp.methods.client.session.update, ({ params }) => {
      if (firstChunk === null && params.update.sessionUpdate === "agent_message_chunk") firstChunk = performance.now();
    })
    .onRequest(acp.methods.client.session.requestPermission, () => ({ outcome: { outcome: "cancelled" } }));
  const stream = acp.ndJsonStream(Writable.toWeb(child.stdin), Readable.toWeb(child.stdout));
  const row = await client.connectWith(stream, async (ctx) => {
    await ctx.request(acp.methods.agent.initialize, { protocolVersion: 1, clientCapabilities: {} });
    const t1 = performance.now();
    const { sessionId } = await ctx.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
    const t2 = performance.now();
    const turn = async () => {
      firstChunk = null;
      const start = performance.now();
      const answer = await ctx.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: "text", text: PROMPT }] });
      if (answer.stopReason !== "end_turn" || firstChunk === null) throw new Error("bad turn: " + JSON.stringify(answer));
      return { chunk: firstChunk - start, turn: performance.now() - start };
    };
    const cold = await turn();
    const warm = await turn();
    return { init: t1 - t0, newSession: t2 - t1, ready: t2 - t0, cold: cold.chunk, warm: warm.chunk, warmTurn: warm.turn };
  });
  child.stdin.end();
  await new Promise((resolve) => { child.on("exit", resolve); setTimeout(() => { child.kill("SIGKILL"); resolve(); }, 3000); });
  return row;
}

const { fake, port } = await startFake();
await once(port);
const rows = [];
for (let i = 0; i < RUNS; i++) rows.push(await once(port));
fake.kill();
const fmt = (k) => {
  const v = rows.map((r) => r[k]).sort((a, b) => a - b);
  const med = v[Math.floor(v.length / 2)];
  const f = (x) => (x < 10 ? x.toFixed(1) : Math.round(x).toLocaleString("en"));
  return `${f(med)} (${f(v[0])}–${f(v.at(-1))})`;
};
console.log("| agent | initialize | session/new | both (ready) | 1st prompt → 1st chunk | warm prompt → 1st chunk | warm turn |");
console.log("|---|---|---|---|---|---|---|");
console.log(`| \`${argv.join(" ")}\` | ${["init", "newSession", "ready", "cold", "warm", "warmTurn"].map(fmt).join(" | ")} |`);

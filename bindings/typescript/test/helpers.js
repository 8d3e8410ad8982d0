// Shared by the tests: the real binary, fixture extensions, bounded waits.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { AgentClient } from "../src/index.js";

export const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_DIR = resolve(PACKAGE_DIR, "..", "..");
export const BINARY = process.env.AGENT_RPC_BINARY
  ? resolve(process.env.AGENT_RPC_BINARY)
  : resolve(PACKAGE_DIR, "../../target/debug/rpc");
export const FIXTURES = join(REPO_DIR, "fixtures", "providers");
export const ECHO = ["--extension", join(FIXTURES, "echo"), "--model", "echo:echo:echo-1"];
export const SLOW = ["--extension", join(FIXTURES, "slow"), "--model", "slow:slow:slow-1"];

/** A fresh temporary directory, removed when the test ends. */
export function tempDir(t, prefix = "agent-rpc-ts-") {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Rejects if `promise` has not settled within `ms`. */
export function within(promise, ms = 10000, what = "operation") {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A started client on a temporary data dir and cwd (echo model unless
 * `extra` says otherwise), closed when the test ends.
 */
export async function startClient(t, { extra = ECHO, ...options } = {}) {
  const dir = tempDir(t);
  const dataDir = join(dir, "data");
  const cwd = join(dir, "cwd");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(cwd);
  const client = new AgentClient({ binary: BINARY, args: ["--data-dir", dataDir, "--cwd", cwd, ...extra], ...options });
  t.after(() => within(client.close({ timeoutMs: 3000 }), 10000, "close"));
  await within(client.start(), 10000, "start");
  return { client, cwd, dataDir };
}

/** Iterates a turn (bounded); returns `{ events, response }` or throws with the events attached. */
export async function collect(turn, ms = 15000) {
  const events = [];
  const run = async () => {
    const it = turn[Symbol.asyncIterator]();
    for (;;) {
      let r;
      try {
        r = await it.next();
      } catch (err) {
        err.events = events;
        throw err;
      }
      if (r.done) return { events, response: r.value };
      events.push(r.value);
    }
  };
  return within(run(), ms, "turn");
}

export function text(events) {
  return events
    .filter((e) => e.type === "message_update" && e.event.type === "text_delta")
    .map((e) => e.event.delta)
    .join("");
}

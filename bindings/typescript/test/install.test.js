// `npm install <this package>` in an empty ESM project, then the README's
// example, exactly as written there, run against the echo fixture.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

import { BINARY, FIXTURES, PACKAGE_DIR, tempDir } from "./helpers.js";

const run = promisify(execFile);

/** The first ```js block after the README's "## Example" heading. */
function readmeExample() {
  const readme = readFileSync(join(PACKAGE_DIR, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("\n## Example\n"));
  const match = /```js\n([\s\S]*?)```/.exec(section);
  assert.ok(match, "README.md has a js block under ## Example");
  return match[1];
}

test("installs into an empty ESM project and runs the README example", async (t) => {
  const dir = tempDir(t, "agent-rpc-install-");
  const project = join(dir, "project");
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "demo", private: true, type: "module" }));
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  await run(npm, ["install", "--offline", "--no-audit", "--no-fund", PACKAGE_DIR], {
    cwd: project,
    timeout: 120000,
    env: { ...process.env, npm_config_cache: join(dir, "npm-cache") },
  }).catch((err) => assert.fail(`npm install failed:\n${err.stdout}${err.stderr}`));

  writeFileSync(join(project, "example.mjs"), readmeExample());
  // The example runs `rpc` from PATH: put the binary under test there.
  const bin = join(dir, "bin");
  mkdirSync(bin);
  symlinkSync(BINARY, join(bin, "rpc"));
  const args = ["--data-dir", join(dir, "data"), "--extension", join(FIXTURES, "echo"), "--model", "echo:echo:echo-1"];
  const { stdout } = await run(process.execPath, ["example.mjs", ...args], {
    cwd: project,
    timeout: 30000,
    env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH}` },
  }).catch((err) => assert.fail(`the example failed:\n${err.stdout}${err.stderr}`));
  assert.match(stdout, /^session [0-9a-f-]{36}\nSay hello in five words\.\n2 messages\n$/);
});

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

/** The main README's js block under "**TypeScript / JavaScript**". */
function mainReadmeSnippet() {
  const readme = readFileSync(join(PACKAGE_DIR, "..", "..", "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("**TypeScript / JavaScript**"));
  const match = /```js\n([\s\S]*?)```/.exec(section);
  assert.ok(match, "README.md has a js block after **TypeScript / JavaScript**");
  return match[1];
}

test("the main README's snippet runs as example.js in an `npm init -y` project", async (t) => {
  const dir = tempDir(t, "agent-rpc-cjs-");
  const project = join(dir, "project");
  mkdirSync(project);
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const npmEnv = { ...process.env, npm_config_cache: join(dir, "npm-cache") };
  await run(npm, ["init", "-y"], { cwd: project, timeout: 60000, env: npmEnv });
  assert.equal(JSON.parse(readFileSync(join(project, "package.json"), "utf8")).type ?? "commonjs", "commonjs");
  await run(npm, ["install", "--offline", "--no-audit", "--no-fund", PACKAGE_DIR], {
    cwd: project,
    timeout: 120000,
    env: npmEnv,
  }).catch((err) => assert.fail(`npm install failed:\n${err.stdout}${err.stderr}`));
  const bin = join(dir, "bin");
  mkdirSync(bin);
  symlinkSync(BINARY, join(bin, "rpc"));
  const env = { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH}`, XDG_CONFIG_HOME: join(dir, "cfg") };
  delete env.ANTHROPIC_API_KEY;
  const snippet = mainReadmeSnippet();

  // As written, without a key: one clean line saying why, exit status 1.
  writeFileSync(join(project, "example.js"), snippet);
  const failed = await run(process.execPath, ["example.js"], { cwd: project, timeout: 30000, env }).then(
    () => assert.fail("the snippet succeeded without a key"),
    (err) => err,
  );
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /^error: .*ANTHROPIC_API_KEY.*\n$/);

  // Against the echo fixture instead: the turn's events.
  const echo = ["--data-dir", join(dir, "data"), "--extension", join(FIXTURES, "echo"), "--model", "echo:echo:echo-1"];
  writeFileSync(
    join(project, "example.js"),
    snippet.replace('["--model", "anthropic/claude-sonnet-5-5"]', JSON.stringify(echo)),
  );
  const { stdout } = await run(process.execPath, ["example.js"], { cwd: project, timeout: 30000, env }).catch((err) =>
    assert.fail(`the snippet failed:\n${err.stdout}${err.stderr}`),
  );
  assert.match(stdout, /agent_end/);
  assert.match(stdout, /delta: ' failing'/);
});

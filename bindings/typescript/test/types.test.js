// The generated types are up to date with the schema, and the .d.ts files
// type-check (strict) the way the README uses them.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

import { OUTPUT_PATH, REGENERATE, SCHEMA_PATH, generate } from "../scripts/generate-types.mjs";
import { PACKAGE_DIR } from "./helpers.js";

test("src/types.d.ts is what the schema generates", () => {
  const wanted = generate(readFileSync(SCHEMA_PATH, "utf8"));
  const current = readFileSync(OUTPUT_PATH, "utf8");
  assert.ok(current === wanted, `src/types.d.ts is stale; regenerate it with \`${REGENERATE}\``);
});

test("generation is deterministic and covers every $defs entry", () => {
  const text = readFileSync(SCHEMA_PATH, "utf8");
  const out = generate(text);
  assert.equal(generate(text), out);
  for (const name of Object.keys(JSON.parse(text).$defs)) {
    assert.match(out, new RegExp(`^export (type|interface) ${name}\\b`, "m"), name);
  }
  assert.match(out, /^export type Decision = "allow_once" \| "allow_always" \| "deny";$/m);
  assert.match(out, /^export type Command = PromptCommand \| /m);
  assert.match(out, /^ {2}attachments\?: Attachment\[\];$/m);
});

test("tsc --noEmit --strict accepts test/example.ts", async () => {
  const tsc = join(PACKAGE_DIR, "node_modules", "typescript", "bin", "tsc");
  const run = promisify(execFile)(process.execPath, [tsc, "--noEmit", "-p", join(PACKAGE_DIR, "test", "tsconfig.json")], {
    cwd: PACKAGE_DIR,
    timeout: 120000,
  });
  await run.catch((err) => assert.fail(`tsc failed:\n${err.stdout}${err.stderr}`));
});

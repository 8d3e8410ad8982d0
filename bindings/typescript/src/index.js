// agent-rpc client: spawns `rpc` and drives it over stdin/stdout with
// line-delimited JSON (SPEC.md). Plain ESM JavaScript, no dependencies;
// types are in index.d.ts and the generated types.d.ts.

import { spawn } from "node:child_process";

const STDERR_TAIL_BYTES = 8192;
const DEFAULT_MAX_FRAME_BYTES = 1048576;

/** The host's line cap as `args` set it (`--max-frame-bytes N` or `=N`, the last one wins, as clap reads it). */
function maxFrameBytes(args) {
  let cap = NaN;
  args.forEach((arg, i) => {
    if (arg === "--max-frame-bytes") cap = Number(args[i + 1]);
    else if (arg.startsWith("--max-frame-bytes=")) cap = Number(arg.slice("--max-frame-bytes=".length));
  });
  return Number.isFinite(cap) ? cap : DEFAULT_MAX_FRAME_BYTES;
}
const DECISIONS = new Set(["allow_once", "allow_always", "deny"]);
const NO_HANDLER_MESSAGE =
  "denied automatically: the client has no onPermission handler (pass one to new AgentClient({ onPermission }))";

/** A command answered with an `error` frame, or a turn that ended `ok: false`. */
export class RpcError extends Error {
  constructor(frame) {
    super(frame.message ?? frame.error ?? `${frame.command ?? "command"} failed (${frame.code})`);
    this.name = "RpcError";
    /** The protocol error code (`not_found`, `busy`, `provider_error`, ...). */
    this.code = frame.code ?? "internal";
    /** The command's type, when the host recognised it. */
    this.command = frame.command ?? null;
    /** The command's id. */
    this.id = frame.id ?? null;
    /** The whole frame: an `error` frame, or the turn's `response` with `ok: false`. */
    this.frame = frame;
  }
}

/** The `rpc` process is gone (or never started); every pending call rejects with this. */
export class ProcessExitedError extends Error {
  constructor({ exitCode = null, signal = null, stderr = "", cause } = {}) {
    const how = cause
      ? `could not be run: ${cause.message}`
      : signal
        ? `was killed by signal ${signal}`
        : `exited with code ${exitCode}`;
    const tail = stderr.trim();
    super(`the agent-rpc process ${how}${tail ? `; its stderr ends with:\n${tail}` : " (nothing on stderr)"}`, {
      cause,
    });
    this.name = "ProcessExitedError";
    this.code = "process_exited";
    this.exitCode = exitCode;
    this.signal = signal;
    this.stderr = stderr;
  }
}

/** Splits a byte stream on "\n" only; lines may be of any length. */
class LineSplitter {
  constructor(onLine) {
    this.onLine = onLine;
    this.chunks = [];
  }
  push(chunk) {
    let start = 0;
    let nl;
    while ((nl = chunk.indexOf(10, start)) !== -1) {
      this.chunks.push(chunk.subarray(start, nl));
      const line = Buffer.concat(this.chunks).toString("utf8");
      this.chunks = [];
      this.onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
      start = nl + 1;
    }
    if (start < chunk.length) this.chunks.push(chunk.subarray(start));
  }
  end() {
    if (this.chunks.length) {
      const line = Buffer.concat(this.chunks).toString("utf8");
      this.chunks = [];
      this.onLine(line);
    }
  }
}

/**
 * One turn (a `prompt` or `follow_up`): an async iterable of its events,
 * which ends after the turn's response. The response itself is
 * `turn.response` and the iterator's return value.
 */
export class Turn {
  constructor(client, id, command) {
    this.client = client;
    /** The id of the command that started the turn. */
    this.id = id;
    this.command = command;
    /** The host's `prompt_id`, once `agent_start` arrived. */
    this.promptId = null;
    this.queue = [];
    this.waiter = null;
    this.outcome = null; // { response } | { error }
    this.iterated = false;
    /**
     * Resolves with the final `response` (also for an aborted turn:
     * `cancelled: true`); rejects with RpcError for an `error` frame or an
     * `ok: false` turn, ProcessExitedError if the process died.
     */
    this.response = new Promise((resolve, reject) => {
      this.resolveResponse = resolve;
      this.rejectResponse = reject;
    });
    this.response.catch(() => {}); // a turn consumed only by iteration must not warn
  }

  _event(frame) {
    if (this.outcome) return;
    this.queue.push(frame);
    this._wake();
  }

  _finish(outcome) {
    if (this.outcome) return;
    this.outcome = outcome;
    if (outcome.error) this.rejectResponse(outcome.error);
    else this.resolveResponse(outcome.response);
    this._wake();
  }

  _wake() {
    const w = this.waiter;
    this.waiter = null;
    if (w) w();
  }

  async *[Symbol.asyncIterator]() {
    if (this.iterated) throw new Error("a Turn can be iterated only once");
    this.iterated = true;
    for (;;) {
      if (this.queue.length) {
        yield this.queue.shift();
        continue;
      }
      if (this.outcome) {
        if (this.outcome.error) throw this.outcome.error;
        return this.outcome.response;
      }
      await new Promise((resolve) => (this.waiter = resolve));
    }
  }
}

export class AgentClient {
  /**
   * @param {object} [options]
   * @param {string} [options.binary] the `rpc` executable (default "rpc", looked up on PATH)
   * @param {string[]} [options.args] its arguments
   * @param {string} [options.cwd] its working directory
   * @param {Record<string, string|undefined>} [options.env] its whole environment (default process.env)
   * @param {(request: object) => any} [options.onPermission] answers permission requests
   * @param {(frame: object) => void} [options.onFrame] sees every frame the host writes
   */
  constructor({ binary = "rpc", args = [], cwd, env, onPermission, onFrame } = {}) {
    this.binary = binary;
    this.args = [...args];
    this.cwd = cwd;
    this.env = env;
    this.onPermission = onPermission;
    this.onFrame = onFrame;
    /** The `ready` frame, after start(). */
    this.ready = null;
    this.child = null;
    this.nextId = 1;
    this.pending = new Map(); // id -> { resolve, reject } | Turn
    this.turns = new Map(); // prompt_id -> Turn
    this.permissionTurns = new Map(); // request_id -> Turn
    this.permissionAborts = new Map(); // request_id -> AbortController of its onPermission call
    this.stderrChunks = [];
    this.stderrBytes = 0;
    this.exitError = null;
    this.exited = null;
    this.maxFrameBytes = maxFrameBytes(this.args);
  }

  /** The last 8 KiB of the process's stderr. */
  get stderrTail() {
    return Buffer.concat(this.stderrChunks).toString("utf8");
  }

  /** Spawns the process; resolves with the `ready` frame. */
  start() {
    if (this.child) throw new Error("start() was already called");
    let resolveReady, rejectReady;
    const readyPromise = new Promise((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    this.startWaiter = { resolve: resolveReady, reject: rejectReady };
    let resolveExited;
    this.exited = new Promise((resolve) => (resolveExited = resolve));

    let child;
    try {
      child = spawn(this.binary, this.args, {
        cwd: this.cwd,
        env: this.env,
        stdio: ["pipe", "pipe", "pipe"],
      });
    } catch (err) {
      // e.g. E2BIG, or a bad option: report it like a failed exec.
      this.child = { stdin: { end() {} }, kill() {} };
      this.exitError = new ProcessExitedError({ cause: err });
      this.startWaiter = null;
      resolveExited({ exitCode: null, signal: null });
      return Promise.reject(this.exitError);
    }
    this.child = child;
    const splitter = new LineSplitter((line) => this._line(line));
    child.stdout.on("data", (chunk) => splitter.push(chunk));
    child.stderr.on("data", (chunk) => this._stderr(chunk));
    child.stdin.on("error", () => {}); // EPIPE: the exit handler reports it

    let exitInfo = null;
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      splitter.end();
      this._died(exitInfo);
      resolveExited({ exitCode: exitInfo.exitCode, signal: exitInfo.signal });
    };
    child.on("error", (err) => {
      exitInfo = { exitCode: null, signal: null, cause: err };
      settle();
    });
    child.on("exit", (exitCode, signal) => {
      exitInfo = { exitCode, signal };
      // Let the remaining stdout arrive, but not forever (a grandchild may hold the pipe).
      setTimeout(settle, 2000).unref();
    });
    child.on("close", () => {
      if (exitInfo) settle();
    });
    return readyPromise;
  }

  _stderr(chunk) {
    this.stderrChunks.push(chunk);
    this.stderrBytes += chunk.length;
    while (this.stderrBytes > STDERR_TAIL_BYTES && this.stderrChunks.length > 1) {
      this.stderrBytes -= this.stderrChunks.shift().length;
    }
    if (this.stderrBytes > STDERR_TAIL_BYTES) {
      const only = this.stderrChunks[0];
      this.stderrChunks[0] = only.subarray(only.length - STDERR_TAIL_BYTES);
      this.stderrBytes = STDERR_TAIL_BYTES;
    }
  }

  _died(info) {
    this.exitError = new ProcessExitedError({ ...info, stderr: this.stderrTail });
    if (this.startWaiter) {
      this.startWaiter.reject(this.exitError);
      this.startWaiter = null;
    }
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.turns.clear();
    this.permissionTurns.clear();
    for (const p of pending) {
      if (p instanceof Turn) p._finish({ error: this.exitError });
      else p.reject(this.exitError);
    }
  }

  _line(line) {
    if (!line.trim()) return;
    let frame;
    try {
      frame = JSON.parse(line);
    } catch {
      return; // the host writes only JSON; nothing sensible to do with anything else
    }
    if (this.onFrame) {
      try {
        this.onFrame(frame);
      } catch {}
    }
    switch (frame.type) {
      case "ready":
        this.ready = frame;
        if (this.startWaiter) {
          this.startWaiter.resolve(frame);
          this.startWaiter = null;
        }
        return;
      case "error": {
        if (frame.id === null && this.startWaiter) {
          // Start-up failure (SPEC §6): the process exits next.
          this.startWaiter.reject(new RpcError(frame));
          this.startWaiter = null;
          return;
        }
        const p = this._take(frame.id);
        if (p instanceof Turn) {
          this._forgetTurn(p);
          p._finish({ error: new RpcError(frame) });
        } else if (p) p.reject(new RpcError(frame));
        return;
      }
      case "response": {
        const p = this._take(frame.id);
        if (p instanceof Turn) {
          this._forgetTurn(p);
          p._finish(frame.ok === false ? { error: new RpcError(frame) } : { response: frame });
        } else if (p) {
          if (frame.ok === false) p.reject(new RpcError(frame));
          else p.resolve(frame);
        }
        return;
      }
      case "agent_start": {
        const p = frame.id == null ? undefined : this.pending.get(String(frame.id));
        if (p instanceof Turn) {
          p.promptId = frame.prompt_id;
          this.turns.set(frame.prompt_id, p);
          p._event(frame);
        }
        return;
      }
      case "permission_request": {
        const turn = this.turns.get(frame.prompt_id);
        if (turn) {
          this.permissionTurns.set(frame.request_id, turn);
          turn._event(frame);
        }
        this._answerPermission(frame);
        return;
      }
      case "permission_cancelled": {
        // The question is moot (the turn was aborted): tell the handler, so
        // a dialog it opened can close.
        this.permissionAborts.get(frame.request_id)?.abort(new Error(frame.reason ?? "cancelled"));
        const turn = this.permissionTurns.get(frame.request_id);
        this.permissionTurns.delete(frame.request_id);
        if (turn) turn._event(frame);
        return;
      }
      default: {
        if (typeof frame.prompt_id === "string") {
          const turn = this.turns.get(frame.prompt_id);
          if (turn) turn._event(frame);
        }
      }
    }
  }

  /** A finished turn is no longer reachable from the routing tables. */
  _forgetTurn(turn) {
    if (turn.promptId) this.turns.delete(turn.promptId);
    for (const [requestId, t] of this.permissionTurns) {
      if (t === turn) this.permissionTurns.delete(requestId);
    }
  }

  _take(id) {
    if (id === null || id === undefined) return undefined;
    const key = String(id);
    const p = this.pending.get(key);
    this.pending.delete(key);
    return p;
  }

  async _answerPermission(request) {
    let decision = "deny";
    let message = NO_HANDLER_MESSAGE;
    const cancelled = new AbortController();
    this.permissionAborts.set(request.request_id, cancelled);
    if (this.onPermission) {
      try {
        const answer = await this.onPermission(request, { signal: cancelled.signal });
        const d = typeof answer === "string" ? answer : answer?.decision;
        if (DECISIONS.has(d)) {
          decision = d;
          message = typeof answer === "object" ? (answer.message ?? null) : null;
        } else {
          message = `denied: onPermission returned ${JSON.stringify(answer)}, not "allow_once", "allow_always", "deny" or {decision, message}`;
        }
      } catch (err) {
        message = `denied: onPermission threw: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
    this.permissionAborts.delete(request.request_id);
    // A cancelled request takes no answer (the host would say not_found).
    if (cancelled.signal.aborted) return;
    const fields = { request_id: request.request_id, decision };
    if (message !== null && message !== undefined) fields.message = message;
    // `not_found` when the turn was aborted meanwhile, or the process is gone: nothing to do.
    this.request("permission_response", fields).catch(() => {});
  }

  _send(type, fields, entry) {
    if (!this.child) throw new Error("call start() first");
    if (this.exitError) throw this.exitError;
    const id = String(this.nextId++);
    const line = JSON.stringify({ ...fields, type, id });
    if (Buffer.byteLength(line, "utf8") > this.maxFrameBytes) {
      throw new RpcError({
        id,
        command: type,
        code: "frame_too_large",
        message: `the ${type} command is ${Buffer.byteLength(line, "utf8")} bytes, over the host's --max-frame-bytes ${this.maxFrameBytes}; it was not sent`,
      });
    }
    this.pending.set(id, typeof entry === "function" ? entry(id) : entry);
    this.child.stdin.write(line + "\n");
    return id;
  }

  /** Sends any command; resolves with its `response` frame, rejects with RpcError. */
  request(type, fields = {}) {
    return new Promise((resolve, reject) => {
      try {
        this._send(type, fields, { resolve, reject });
      } catch (err) {
        reject(err);
      }
    });
  }

  _turn(type, message, attachments) {
    const fields = { message };
    if (attachments !== undefined) fields.attachments = attachments;
    let turn;
    try {
      this._send(type, fields, (id) => (turn = new Turn(this, id, type)));
    } catch (err) {
      turn = new Turn(this, null, type);
      turn._finish({ error: err });
    }
    return turn;
  }

  /** Starts a turn; iterate the result for its events. */
  prompt(message, { attachments } = {}) {
    return this._turn("prompt", message, attachments);
  }

  /** Queues a turn after the current one (at once when idle); iterate the result for its events. */
  followUp(message, { attachments } = {}) {
    return this._turn("follow_up", message, attachments);
  }

  steer(message) {
    return this.request("steer", { message });
  }

  abort() {
    return this.request("abort");
  }

  setModel(model) {
    return this.request("set_model", { model });
  }

  setPermissionMode(mode) {
    return this.request("set_permission_mode", { mode });
  }

  setThinkingLevel(level) {
    return this.request("set_thinking_level", { level });
  }

  /**
   * The session's budget: a limit left out stays as it is, `null` lifts it.
   * @param {{maxTurns?: number | null, budgetUsd?: number | null}} limits
   */
  /**
   * The kernel sandbox of the session's commands, from the next one.
   * @param {"read-only" | "workspace-write" | "off"} mode
   */
  setSandbox(mode) {
    return this.request("set_sandbox", { mode });
  }

  setBudget(limits = {}) {
    const fields = {};
    if ("maxTurns" in limits) fields.max_turns = limits.maxTurns;
    if ("budgetUsd" in limits) fields.budget_usd = limits.budgetUsd;
    return this.request("set_budget", fields);
  }

  getState() {
    return this.request("get_state");
  }

  /** What the model sees; `{ all: true }` for the whole history. */
  getMessages(options = {}) {
    return options.all ? this.request("get_messages", { all: true }) : this.request("get_messages");
  }

  getSessionStats() {
    return this.request("get_session_stats");
  }

  getAvailableModels() {
    return this.request("get_available_models");
  }

  listSessions() {
    return this.request("list_sessions");
  }

  newSession() {
    return this.request("new_session");
  }

  /** Deletes a stored session (not the one in use). */
  deleteSession(sessionId) {
    return this.request("delete_session", { session_id: sessionId });
  }

  /**
   * Copies the first `messageIndex` messages (default: all) into a new
   * session and switches to it; `message` in the answer is the text of the
   * user message at that index, for the input box.
   */
  fork(messageIndex) {
    return this.request("fork", messageIndex === undefined ? {} : { message_index: messageIndex });
  }

  /** Switches this host to another stored session. */
  switchSession(sessionId) {
    return this.request("switch_session", { session_id: sessionId });
  }

  /**
   * A stored session as one export stream, `data` (JSONL); the session in
   * use exports too, as a snapshot of its complete entries.
   */
  exportSession(sessionId) {
    return this.request("export_session", { session_id: sessionId });
  }

  /**
   * Stores an export stream and answers the id it was stored under:
   * `newId` for a copy under a fresh id, `replace` to overwrite a stored
   * session of the same id (else `session_exists`). The stream travels in
   * one command line: raise the host's --max-frame-bytes past 1 MiB for
   * larger sessions.
   */
  importSession(data, options = {}) {
    return this.request("import_session", {
      data,
      new_id: options.newId === true,
      replace: options.replace === true,
    });
  }

  /** Summarises the older history (`busy` during a turn); `abort` stops it. */
  compact(instructions) {
    return instructions === undefined
      ? this.request("compact")
      : this.request("compact", { instructions });
  }

  /** Compaction at the threshold and on overflow, on or off (persisted). */
  setAutoCompaction(enabled) {
    return this.request("set_auto_compaction", { enabled });
  }

  /** The slash commands a prompt may start with (`/name args`). */
  getCommands() {
    return this.request("get_commands");
  }

  /** Answered first; then the host aborts the running turn and exits. */
  shutdown() {
    return this.request("shutdown");
  }

  /**
   * Closes stdin (the host finishes the running turn and queued follow-ups,
   * then exits 0), waits up to `timeoutMs`, then sends SIGTERM and, 2 s later,
   * SIGKILL. Resolves with `{ exitCode, signal }`.
   */
  async close({ timeoutMs = 5000 } = {}) {
    if (!this.child) return { exitCode: null, signal: null };
    if (!this.exitError) this.child.stdin.end();
    const waitFor = (ms) =>
      Promise.race([
        this.exited,
        new Promise((resolve) => setTimeout(resolve, ms).unref()),
      ]);
    let result = await waitFor(timeoutMs);
    if (!result) {
      this.child.kill("SIGTERM");
      result = await waitFor(2000);
    }
    if (!result) {
      this.child.kill("SIGKILL");
      result = await this.exited;
    }
    return result;
  }
}

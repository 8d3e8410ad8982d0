// Hand-written declarations of the client (src/index.js). The protocol's
// shapes are generated from the JSON Schema into ./types.d.ts.

import type {
  AbortResponse,
  CompactResponse,
  SetAutoCompactionResponse,
  Attachment,
  CommandName,
  Decision,
  ErrorCode,
  ErrorFrame,
  Frame,
  GetAvailableModelsResponse,
  GetCommandsResponse,
  GetMessagesResponse,
  GetSessionStatsResponse,
  GetStateResponse,
  DeleteSessionResponse,
  ExportSessionResponse,
  ImportSessionResponse,
  ListSessionsResponse,
  Mode,
  NewSessionResponse,
  ForkResponse,
  SwitchSessionResponse,
  PermissionRequestFrame,
  PromptResponse,
  FollowUpResponse,
  SetModelResponse,
  SetPermissionModeResponse,
  SetThinkingLevelResponse,
  SetBudgetResponse,
  SetSandboxResponse,
  SandboxMode,
  ShutdownResponse,
  SteerResponse,
  ThinkingLevel,
} from "./types.js";

export * from "./types.js";

/** The `ready` frame, the first line the host writes. */
export type Ready = Extract<Frame, { type: "ready" }>;

/** A `permission_request` frame, as given to `onPermission`. */
export type PermissionRequest = PermissionRequestFrame & { type: "permission_request" };

/** A frame of one turn, as yielded by iterating a {@link Turn}. */
export type TurnEvent = Extract<
  Frame,
  {
    type:
      | "agent_start"
      | "message_update"
      | "agent_end"
      | "auto_retry"
      | "tool_execution_start"
      | "tool_execution_update"
      | "tool_execution_end"
      | "permission_request"
      | "permission_cancelled";
  }
>;

/** What `onPermission` may return (or resolve with). */
export type PermissionAnswer = Decision | { decision: Decision; message?: string | null };

export interface AgentClientOptions {
  /** The `rpc` executable; default `"rpc"` (looked up on PATH). */
  binary?: string;
  /** Its arguments, e.g. `["--model", "anthropic/claude-sonnet-5-5"]`. */
  args?: string[];
  /** Its working directory (default: this process's). */
  cwd?: string;
  /** Its whole environment (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /**
   * Answers the host's permission requests (SPEC §9.3); may be async.
   * Without it every request is denied with a message saying so; if it
   * throws, the request is denied with the error's message.
   */
  /** `signal` aborts when the host cancels the request (`permission_cancelled`, e.g. on abort). */
  onPermission?: (
    request: PermissionRequest,
    options: { signal: AbortSignal },
  ) => PermissionAnswer | Promise<PermissionAnswer>;
  /** Sees every frame the host writes (for logging); must not throw. */
  onFrame?: (frame: Frame) => void;
}

/** A command answered with an `error` frame, or a turn that ended `ok: false`. */
export class RpcError extends Error {
  /** Built by the client from an `error` frame or a failed turn's response. */
  constructor(frame: { code?: ErrorCode | null; message?: string; error?: string | null; command?: CommandName | null; id?: string | number | null });
  readonly name: "RpcError";
  /** e.g. `"not_found"`, `"busy"`, `"not_streaming"`, `"provider_error"`. */
  readonly code: ErrorCode;
  /** The command's type, when the host recognised it. */
  readonly command: CommandName | null;
  /** The command's id. */
  readonly id: string | number | null;
  /** The `error` frame, or the failed turn's `response` frame. */
  readonly frame: ErrorFrame | PromptResponse | FollowUpResponse;
}

/** The process exited (or could not be spawned); every pending call rejects with it. */
export class ProcessExitedError extends Error {
  constructor(info?: { exitCode?: number | null; signal?: NodeJS.Signals | null; stderr?: string; cause?: Error });
  readonly name: "ProcessExitedError";
  readonly code: "process_exited";
  /** The exit code, or null when killed by a signal or never started. */
  readonly exitCode: number | null;
  /** The signal that killed it, e.g. `"SIGKILL"`. */
  readonly signal: NodeJS.Signals | null;
  /** The last 8 KiB of its stderr. */
  readonly stderr: string;
}

/**
 * One turn (`prompt` / `followUp`). Iterate it (once) for the turn's
 * events, from `agent_start` to `agent_end`; the loop ends after the turn's
 * response, which is the iterator's return value and `turn.response`.
 * A turn that fails (`ok: false`, or an `error` frame such as `busy`)
 * throws RpcError after its events; an aborted turn ends normally with
 * `cancelled: true`. Leaving the loop early does not abort the turn.
 */
export class Turn<R = PromptResponse> implements AsyncIterable<TurnEvent> {
  /** Made by `prompt()` / `followUp()` only. */
  private constructor();
  /** The id of the command that started the turn. */
  readonly id: string | null;
  readonly command: "prompt" | "follow_up";
  /** The host's `prompt_id`, once `agent_start` arrived. */
  readonly promptId: string | null;
  /** The turn's final response; rejects like the iteration does. */
  readonly response: Promise<R>;
  [Symbol.asyncIterator](): AsyncGenerator<TurnEvent, R, undefined>;
}

export class AgentClient {
  constructor(options?: AgentClientOptions);
  /** The `ready` frame, once start() resolved. */
  readonly ready: Ready | null;
  /** The last 8 KiB of the process's stderr. */
  readonly stderrTail: string;

  /** Spawns the process; resolves with the `ready` frame (rejects with RpcError on a start-up error). */
  start(): Promise<Ready>;

  prompt(message: string, options?: { attachments?: Attachment[] }): Turn<PromptResponse>;
  followUp(message: string, options?: { attachments?: Attachment[] }): Turn<FollowUpResponse>;
  steer(message: string): Promise<SteerResponse>;
  abort(): Promise<AbortResponse>;
  setModel(model: string): Promise<SetModelResponse>;
  setPermissionMode(mode: Mode): Promise<SetPermissionModeResponse>;
  setThinkingLevel(level: ThinkingLevel): Promise<SetThinkingLevelResponse>;
  /** The session's budget: a limit left out stays as it is, `null` lifts it. */
  setBudget(limits?: { maxTurns?: number | null; budgetUsd?: number | null }): Promise<SetBudgetResponse>;
  /** The kernel sandbox of the session's commands, from the next one. */
  setSandbox(mode: SandboxMode): Promise<SetSandboxResponse>;
  getState(): Promise<GetStateResponse>;
  getMessages(options?: { all?: boolean }): Promise<GetMessagesResponse>;
  getSessionStats(): Promise<GetSessionStatsResponse>;
  getAvailableModels(): Promise<GetAvailableModelsResponse>;
  listSessions(): Promise<ListSessionsResponse>;
  newSession(): Promise<NewSessionResponse>;
  deleteSession(sessionId: string): Promise<DeleteSessionResponse>;
  /** A new session holding the first `messageIndex` messages (default: all), switched to. */
  fork(messageIndex?: number): Promise<ForkResponse>;
  /** Switches this host to another stored session. */
  switchSession(sessionId: string): Promise<SwitchSessionResponse>;
  /** A stored session (the one in use too: a snapshot) as one export stream, `data`. */
  exportSession(sessionId: string): Promise<ExportSessionResponse>;
  /**
   * Stores an export stream: under its own id (`session_exists` when taken,
   * unless `replace`), or a fresh one with `newId`. A torn or foreign stream
   * is `invalid_params` naming the line.
   */
  importSession(data: string, options?: { newId?: boolean; replace?: boolean }): Promise<ImportSessionResponse>;
  compact(instructions?: string): Promise<CompactResponse>;
  setAutoCompaction(enabled: boolean): Promise<SetAutoCompactionResponse>;
  /** The slash commands a prompt may start with: the project's, the user's and the built-ins. */
  getCommands(): Promise<GetCommandsResponse>;
  /** Answered first; then the host aborts the running turn and exits. */
  shutdown(): Promise<ShutdownResponse>;
  /** Sends any command (the client sets `type` and `id`); resolves with its response frame. */
  request(type: CommandName | (string & {}), fields?: Record<string, unknown>): Promise<Extract<Frame, { type: "response" }>>;

  /**
   * Closes stdin (the host finishes the running turn and queued follow-ups,
   * then exits), waits up to `timeoutMs` (default 5000), then SIGTERM and,
   * 2 s later, SIGKILL. Resolves with how the process ended.
   */
  close(options?: { timeoutMs?: number }): Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }>;
}

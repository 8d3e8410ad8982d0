"""The asyncio client: spawns `rpc`, writes commands, routes frames."""

import asyncio
import inspect
import json
import logging
import os
from dataclasses import dataclass, field
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from ._types import (
    AbortResponse,
    CompactResponse,
    Attachment,
    Frame,
    DeleteSessionResponse,
    ExportSessionResponse,
    ForkResponse,
    GetAvailableModelsResponse,
    GetCommandsResponse,
    GetMessagesResponse,
    GetSessionStatsResponse,
    GetStateResponse,
    ImportSessionResponse,
    ListSessionsResponse,
    Mode,
    SandboxMode,
    ThinkingLevel,
    NewSessionResponse,
    PermissionRequestFrame,
    SetAutoCompactionResponse,
    SetBudgetResponse,
    SetModelResponse,
    SetPermissionModeResponse,
    SetSandboxResponse,
    SetThinkingLevelResponse,
    ShutdownResponse,
    SteerResponse,
    SwitchSessionResponse,
    SkillEntry,
    Usage,
)
from .errors import NotStarted, ProcessExited, ProtocolError, RpcError

logger = logging.getLogger("agent_rpc")

DECISIONS = ("allow_once", "allow_always", "deny")
NO_HANDLER_MESSAGE = (
    "no permission handler in the Python client (pass on_permission= to AgentClient to answer)"
)
DEFAULT_MAX_FRAME_BYTES = 1_048_576
STDERR_TAIL_BYTES = 64 * 1024
READ_CHUNK = 64 * 1024

PermissionResult = Union[str, Tuple[str, Optional[str]]]
PermissionHandler = Callable[
    [PermissionRequestFrame], Union[Awaitable[PermissionResult], PermissionResult]
]


@dataclass(frozen=True)
class Ready:
    """The host's `ready` frame (SPEC §6) as attributes.

    `raw` is the whole frame, including any field added by a later version.
    """

    protocol_version: int
    version: str
    session_id: str
    model: Optional[str]
    cwd: str
    message_count: int
    usage: Usage
    #: Applies to the session's turns until `set_thinking_level`.
    thinking_level: ThinkingLevel
    #: The AGENTS.md / CLAUDE.md files in the system prompt, outermost first.
    context_files: List[str]
    #: The Agent Skills listed in the system prompt (SPEC §5.12), by name.
    skills: List[SkillEntry]
    raw: Dict[str, Any] = field(repr=False)

    @classmethod
    def from_frame(cls, frame: Dict[str, Any]) -> "Ready":
        return cls(
            protocol_version=frame.get("protocol_version", 0),
            version=frame.get("version", ""),
            session_id=frame.get("session_id", ""),
            model=frame.get("model"),
            cwd=frame.get("cwd", ""),
            message_count=frame.get("message_count", 0),
            usage=frame.get("usage", {}),
            thinking_level=frame.get("thinking_level", "off"),
            context_files=list(frame.get("context_files", [])),
            skills=list(frame.get("skills", [])),
            raw=frame,
        )


_FRAME, _END = "frame", "end"
#: A keyword left out (as opposed to ``None``, which means "no limit").
_UNSET: Any = object()


class Turn:
    """The frames of one turn, started by `prompt`, `follow_up` or `stream`.

    Async-iterate it to get every frame of the turn in order: `agent_start`,
    `message_update`s, `tool_execution_*`, `permission_request`s,
    `agent_end`, and last the command's `response` frame. Iteration then
    stops. If the turn failed (`ok: false`) the response is not yielded:
    iteration raises `RpcError` with the response's `code` and `error`
    instead, after every other frame. An aborted turn ends normally; its
    response has `cancelled: true`. If the command was rejected (an `error`
    frame, e.g. `busy`), iteration raises `RpcError` at once.

    `await turn` instead consumes the frames and returns the response.
    After the end, `turn.response` is the response frame (also when it
    failed) and `turn.prompt_id` the host's id of the turn (None for a
    follow-up dropped before it ran).
    """

    def __init__(self, command: str, id: str, limit: Optional[int] = None) -> None:
        self.command = command
        self.id = id
        self._limit = limit
        # Cleared while `limit` frames wait unread: the client's reader
        # stops taking the host's output until the consumer catches up.
        self._room = asyncio.Event()
        self._room.set()
        self.prompt_id: Optional[str] = None
        self.response: Optional[Dict[str, Any]] = None
        self._queue: "asyncio.Queue[Tuple[str, Any]]" = asyncio.Queue()
        self._ended = False  # no more frames will be queued
        self._finished = False  # the consumer has seen the end
        self._error: Optional[BaseException] = None
        self._requests: List[str] = []

    def __repr__(self) -> str:
        return "<Turn %s id=%r prompt_id=%r>" % (self.command, self.id, self.prompt_id)

    def _put(self, frame: Dict[str, Any]) -> None:
        if not self._ended:
            self._queue.put_nowait((_FRAME, frame))
            if self._limit is not None and self._queue.qsize() >= self._limit:
                self._room.clear()

    def _finish(self, response: Dict[str, Any]) -> None:
        if self._ended:
            return
        self.response = response
        if response.get("ok") is False:
            self._end(RpcError.from_failed_response(response))
        else:
            self._queue.put_nowait((_FRAME, response))
            self._end(None)

    def _end(self, error: Optional[BaseException]) -> None:
        if not self._ended:
            self._ended = True
            self._queue.put_nowait((_END, error))
            self._room.set()

    def pending(self) -> int:
        """Frames received and not yet read (the end counts as one)."""
        return self._queue.qsize()

    def __aiter__(self) -> "Turn":
        return self

    async def __anext__(self) -> Frame:
        if self._finished:
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        kind, value = await self._queue.get()
        if self._limit is None or self._queue.qsize() < self._limit:
            self._room.set()
        if kind == _FRAME:
            return value
        self._finished = True
        self._error = value
        if value is not None:
            raise value
        raise StopAsyncIteration

    async def _wait(self) -> Dict[str, Any]:
        async for _ in self:
            pass
        assert self.response is not None
        return self.response

    def __await__(self):
        return self._wait().__await__()


def _max_frame_bytes(args: Sequence[str]) -> int:
    value = None
    for i, arg in enumerate(args):
        if arg == "--max-frame-bytes" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--max-frame-bytes="):
            value = arg.split("=", 1)[1]
    try:
        return int(value) if value is not None else DEFAULT_MAX_FRAME_BYTES
    except ValueError:
        return DEFAULT_MAX_FRAME_BYTES


def _id_key(value: Any) -> Any:
    return value if isinstance(value, (str, int, float)) else None


class AgentClient:
    """One `rpc` child process, driven over its stdin and stdout.

    `binary` is the executable (looked up on PATH), `args` its arguments,
    `cwd` the child's working directory (the session's cwd unless `args`
    has `--cwd`), `env` the child's whole environment as in `subprocess`
    (None: inherit this process's). `on_permission` answers permission
    requests (see README); without it every request is denied.
    `close_timeout` is how long `close()` waits for the host to finish
    after closing its stdin before it sends SIGTERM (and SIGKILL 2 s later).
    `max_buffered_frames` bounds the frames a `Turn` holds unread: at the
    bound the client stops reading the host's stdout until the consumer
    takes one, so a slow consumer slows the host instead of growing memory
    (None, the default: unbounded). Replies to other commands wait behind
    those frames meanwhile.

    Use `async with AgentClient(...) as client:` or `await client.start()`
    ... `await client.close()`.
    """

    def __init__(
        self,
        binary: str = "rpc",
        args: Sequence[str] = (),
        cwd: Optional[Union[str, "os.PathLike[str]"]] = ".",
        env: Optional[Mapping[str, str]] = None,
        on_permission: Optional[PermissionHandler] = None,
        close_timeout: float = 5.0,
        max_buffered_frames: Optional[int] = None,
    ) -> None:
        self.binary = binary
        self.args = [str(a) for a in args]
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.on_permission = on_permission
        self.close_timeout = close_timeout
        if max_buffered_frames is not None and max_buffered_frames < 1:
            raise ValueError("max_buffered_frames must be at least 1 (or None: unbounded)")
        self.max_buffered_frames = max_buffered_frames
        self.ready: Optional[Ready] = None
        self._max_frame_bytes = _max_frame_bytes(self.args)
        self._proc: Optional[asyncio.subprocess.Process] = None
        self._next_id = 0
        self._ready_future: Optional["asyncio.Future[Dict[str, Any]]"] = None
        self._futures: Dict[Any, "asyncio.Future[Dict[str, Any]]"] = {}
        self._turns: Dict[Any, Turn] = {}
        self._turn_by_prompt: Dict[str, Turn] = {}
        self._turn_by_request: Dict[str, Turn] = {}
        self._permission_tasks: Dict[str, "asyncio.Task[None]"] = {}
        self._stderr = bytearray()
        self._stderr_task: Optional["asyncio.Task[None]"] = None
        self._reader_task: Optional["asyncio.Task[None]"] = None
        self._drain_lock: Optional[asyncio.Lock] = None
        self._failure: Optional[RpcError] = None
        self._closing = False

    # -- lifecycle ----------------------------------------------------------

    async def __aenter__(self) -> "AgentClient":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def start(self) -> Ready:
        """Spawn the process and wait for its `ready` frame.

        A start-up failure (SPEC §6) raises `RpcError` with the host's code
        (e.g. `not_found` for an unknown `--model`); a process that ends
        without a frame raises `ProcessExited`.
        """
        if self._proc is not None:
            raise RuntimeError("AgentClient.start() was already called")
        loop = asyncio.get_running_loop()
        self._drain_lock = asyncio.Lock()
        self._ready_future = loop.create_future()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                self.binary,
                *self.args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=None if self.cwd is None else os.fspath(self.cwd),
                env=self.env,
            )
        except OSError as exc:
            raise NotStarted(self.binary, exc) from exc
        self._stderr_task = loop.create_task(self._read_stderr())
        self._reader_task = loop.create_task(self._read_stdout())
        try:
            frame = await self._ready_future
        except BaseException as exc:
            # A start-up error frame: the host exits by itself (status 2).
            # Anything else (cancelled, say by a wait_for): do not wait for it.
            if not isinstance(exc, RpcError):
                self._kill()
            await self.close()
            raise
        self.ready = Ready.from_frame(frame)
        return self.ready

    async def close(self) -> None:
        """End the process: close its stdin (the host finishes the running
        turn and queued follow-ups, then exits 0), wait up to
        `close_timeout` seconds, then SIGTERM, then SIGKILL. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if self._closing:
            if self._reader_task is not None:
                await asyncio.wait({self._reader_task})
            return
        self._closing = True
        try:
            if proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.close()
            if proc.returncode is None:
                try:
                    await asyncio.wait_for(proc.wait(), self.close_timeout)
                except asyncio.TimeoutError:
                    self._signal(proc.terminate)
                    try:
                        await asyncio.wait_for(proc.wait(), 2.0)
                    except asyncio.TimeoutError:
                        self._kill()
                        await proc.wait()
            if self._reader_task is not None:
                done, _ = await asyncio.wait({self._reader_task}, timeout=2.0)
                if not done:
                    self._reader_task.cancel()
                    self._fail_all(self._exited(proc.returncode))
        except BaseException:
            self._kill()  # close() was cancelled: never leave the child behind
            raise
        finally:
            for task in list(self._permission_tasks.values()):
                task.cancel()
            if self._stderr_task is not None and not self._stderr_task.done():
                self._stderr_task.cancel()

    def _kill(self) -> None:
        if self._proc is not None:
            self._signal(self._proc.kill)

    def _signal(self, send: Callable[[], None]) -> None:
        assert self._proc is not None
        if self._proc.returncode is None:
            try:
                send()
            except ProcessLookupError:
                pass

    @property
    def pid(self) -> Optional[int]:
        """The child's process id (None before `start`)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> Optional[int]:
        """The child's exit status once it has exited (negative: a signal)."""
        return self._proc.returncode if self._proc is not None else None

    @property
    def stderr_tail(self) -> str:
        """The last 64 KiB the child wrote to stderr."""
        return self._stderr.decode("utf-8", "replace")

    # -- commands -----------------------------------------------------------

    def prompt(self, message: str, attachments: Optional[List[Attachment]] = None) -> Turn:
        """Start a turn; returns its `Turn` (async-iterate it, or await it).

        The command is written at once, so the turn runs whether or not
        the frames are consumed (they are buffered until they are)."""
        return self.stream("prompt", **self._message(message, attachments))

    def follow_up(
        self, message: str, attachments: Optional[List[Attachment]] = None
    ) -> Turn:
        """Queue a prompt that runs after the current turn (at once when idle).

        Returns its own `Turn`: iterate it for its events, or `await` it for
        its response (`cancelled: true` if an abort dropped it)."""
        return self.stream("follow_up", **self._message(message, attachments))

    async def steer(self, message: str) -> SteerResponse:
        """Deliver `message` to the running turn at its next safe point."""
        return await self.request("steer", message=message)  # type: ignore[return-value]

    async def abort(self) -> AbortResponse:
        """Abort the running turn; answered after its `agent_end` and response."""
        return await self.request("abort")  # type: ignore[return-value]

    async def set_model(self, model: str) -> SetModelResponse:
        return await self.request("set_model", model=model)  # type: ignore[return-value]

    async def set_permission_mode(self, mode: Mode) -> SetPermissionModeResponse:
        return await self.request("set_permission_mode", mode=mode)  # type: ignore[return-value]

    async def set_thinking_level(self, level: ThinkingLevel) -> SetThinkingLevelResponse:
        return await self.request("set_thinking_level", level=level)  # type: ignore[return-value]

    async def set_budget(
        self, *, max_turns: Any = _UNSET, budget_usd: Any = _UNSET
    ) -> SetBudgetResponse:
        """Set the session's budget. A limit left out stays as it is;
        ``None`` lifts it (``max_turns``: provider rounds over the session,
        ``budget_usd``: its cost in USD)."""
        fields = {}
        if max_turns is not _UNSET:
            fields["max_turns"] = max_turns
        if budget_usd is not _UNSET:
            fields["budget_usd"] = budget_usd
        return await self.request("set_budget", **fields)  # type: ignore[return-value]

    async def set_sandbox(self, mode: SandboxMode) -> SetSandboxResponse:
        """Change the kernel sandbox of the session's commands
        (``read-only``, ``workspace-write`` or ``off``), from the next one."""
        return await self.request("set_sandbox", mode=mode)  # type: ignore[return-value]

    async def get_state(self) -> GetStateResponse:
        return await self.request("get_state")  # type: ignore[return-value]

    async def get_messages(self, all: bool = False) -> GetMessagesResponse:
        """What the model sees (after a compaction: the summary, then the
        kept messages); ``all=True`` for the whole history."""
        if all:
            return await self.request("get_messages", all=True)  # type: ignore[return-value]
        return await self.request("get_messages")  # type: ignore[return-value]

    async def get_session_stats(self) -> GetSessionStatsResponse:
        return await self.request("get_session_stats")  # type: ignore[return-value]

    async def get_available_models(self) -> GetAvailableModelsResponse:
        return await self.request("get_available_models")  # type: ignore[return-value]

    async def list_sessions(self) -> ListSessionsResponse:
        return await self.request("list_sessions")  # type: ignore[return-value]

    async def new_session(self) -> NewSessionResponse:
        return await self.request("new_session")  # type: ignore[return-value]

    async def delete_session(self, session_id: str) -> DeleteSessionResponse:
        """Delete a stored session (not the one in use: that is ``busy``)."""
        return await self.request("delete_session", session_id=session_id)  # type: ignore[return-value]

    async def fork(self, message_index: Optional[int] = None) -> ForkResponse:
        """Copy the first ``message_index`` messages (default: all) into a new
        session and switch to it; ``message`` is the text of the user message
        at that index, for the input box."""
        if message_index is None:
            return await self.request("fork")  # type: ignore[return-value]
        return await self.request("fork", message_index=message_index)  # type: ignore[return-value]

    async def switch_session(self, session_id: str) -> SwitchSessionResponse:
        """Switch this host to another stored session (its model, mode,
        thinking level and directory follow)."""
        return await self.request("switch_session", session_id=session_id)  # type: ignore[return-value]

    async def export_session(self, session_id: str) -> ExportSessionResponse:
        """A stored session as one export stream, ``data`` (JSONL: an
        ``agent_rpc_export`` header line, then the session's lines). The
        session in use exports too, as a snapshot of its complete entries."""
        return await self.request("export_session", session_id=session_id)  # type: ignore[return-value]

    async def import_session(
        self, data: str, *, new_id: bool = False, replace: bool = False
    ) -> ImportSessionResponse:
        """Store an export stream; ``session_id`` in the answer is where.
        ``new_id`` stores a copy under a fresh id; ``replace`` overwrites a
        stored session of the same id (else ``session_exists``). A torn or
        foreign stream is ``invalid_params`` naming the line. The stream
        travels in one command line: raise the host's ``--max-frame-bytes``
        for sessions larger than its 1 MiB default."""
        return await self.request(  # type: ignore[return-value]
            "import_session", data=data, new_id=new_id, replace=replace
        )

    async def compact(self, instructions: Optional[str] = None) -> CompactResponse:
        """Summarise the older history (``busy`` during a turn); an ``abort``
        stops it and the response is then ``{cancelled: true}``."""
        if instructions is None:
            return await self.request("compact")  # type: ignore[return-value]
        return await self.request("compact", instructions=instructions)  # type: ignore[return-value]

    async def set_auto_compaction(self, enabled: bool) -> SetAutoCompactionResponse:
        """Compaction at the threshold and on overflow, on or off (persisted in the session)."""
        return await self.request("set_auto_compaction", enabled=enabled)  # type: ignore[return-value]

    async def get_commands(self) -> GetCommandsResponse:
        """The slash commands a prompt may start with (``/name args``):
        the project's, the user's and the built-ins."""
        return await self.request("get_commands")  # type: ignore[return-value]

    async def shutdown(self) -> ShutdownResponse:
        """Ask the host to end (it aborts the running turn and exits)."""
        return await self.request("shutdown")  # type: ignore[return-value]

    async def request(self, type: str, **fields: Any) -> Dict[str, Any]:
        """Send any command and return its `response` frame.

        Raises `RpcError` for an `error` frame or a response with
        `ok: false`. For commands that start a turn the turn's events are
        discarded; use `stream` to get them."""
        id, future = self._send(type, fields, turn=False)
        try:
            await self._drain()
            response = await future
        finally:
            self._futures.pop(id, None)
        if response.get("ok") is False:
            raise RpcError.from_failed_response(response)
        return response

    def stream(self, type: str, **fields: Any) -> Turn:
        """Send a command that starts a turn and return the `Turn`."""
        _, turn = self._send(type, fields, turn=True)
        return turn

    # -- internals: writing -------------------------------------------------

    @staticmethod
    def _message(message: str, attachments: Optional[List[Attachment]]) -> Dict[str, Any]:
        fields: Dict[str, Any] = {"message": message}
        if attachments is not None:
            fields["attachments"] = list(attachments)
        return fields

    def _send(self, type: str, fields: Dict[str, Any], turn: bool) -> Tuple[str, Any]:
        if self._proc is None or self._ready_future is None:
            raise RuntimeError("the client is not started: use `async with` or `await start()`")
        if "id" in fields or "type" in fields:
            raise ValueError("`id` and `type` are set by the client")
        if self._closing:
            raise RpcError("closed", "the client is closed", type)
        if self._failure is not None:
            raise self._failure
        self._next_id += 1
        id = "py-%d" % self._next_id
        command = {"type": type, "id": id}
        command.update(fields)
        line = json.dumps(command, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        data = line.encode("utf-8")
        if len(data) > self._max_frame_bytes:
            raise RpcError(
                "frame_too_large",
                "the %s command is %d bytes, over the host's --max-frame-bytes %d"
                % (type, len(data), self._max_frame_bytes),
                type,
                id,
            )
        waiter: Any
        if turn:
            waiter = self._turns[id] = Turn(type, id, self.max_buffered_frames)
        else:
            waiter = self._futures[id] = asyncio.get_running_loop().create_future()
        assert self._proc.stdin is not None
        self._proc.stdin.write(data + b"\n")
        return id, waiter

    async def _drain(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        assert self._drain_lock is not None
        async with self._drain_lock:
            try:
                await self._proc.stdin.drain()
            except (ConnectionError, OSError):
                pass  # the process died: the reader reports it to every waiter

    # -- internals: reading -------------------------------------------------

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while True:
            chunk = await self._proc.stderr.read(READ_CHUNK)
            if not chunk:
                return
            self._stderr += chunk
            if len(self._stderr) > STDERR_TAIL_BYTES:
                del self._stderr[: len(self._stderr) - STDERR_TAIL_BYTES]

    async def _read_stdout(self) -> None:
        """Split stdout on b"\\n" only (no line-length limit), dispatch each
        line; at EOF fail whatever still waits with `ProcessExited`."""
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        buf = bytearray()
        scan = 0
        while self._failure is None:
            chunk = await stdout.read(READ_CHUNK)
            if not chunk:
                if buf.strip():
                    # The host ends every frame with a newline: an unfinished
                    # line is a frame cut short by the process dying, which
                    # ProcessExited below reports.
                    logger.debug("agent_rpc: rpc's stdout ended inside a line: %r", bytes(buf[:200]))
                break
            buf += chunk
            start = 0
            while self._failure is None:
                nl = buf.find(b"\n", scan)
                if nl < 0:
                    break
                self._handle_line(bytes(buf[start:nl]))
                start = scan = nl + 1
                await self._wait_for_room()
            del buf[:start]
            scan = len(buf)
        if self._failure is not None:
            return  # a protocol error already failed everything
        try:
            returncode: Optional[int] = await asyncio.wait_for(self._proc.wait(), 5.0)
        except asyncio.TimeoutError:
            returncode = None
        if self._stderr_task is not None:
            await asyncio.wait({self._stderr_task}, timeout=1.0)
        self._fail_all(self._exited(returncode))

    async def _wait_for_room(self) -> None:
        """With `max_buffered_frames`: wait while a turn holds that many
        unread frames, so the host's output waits in its pipe, not here."""
        if self.max_buffered_frames is None:
            return
        for turn in list(self._turns.values()):
            if not turn._room.is_set():
                await turn._room.wait()

    def _exited(self, returncode: Optional[int]) -> ProcessExited:
        return ProcessExited(returncode, self.stderr_tail)

    def _handle_line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            frame = json.loads(line)
        except ValueError as exc:
            self._protocol_error("rpc wrote a line that is not JSON (%s): %r" % (exc, line[:200]), line)
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            self._protocol_error("rpc wrote a line that is not a frame: %r" % line[:200], line)
            return
        self._dispatch(frame)

    def _protocol_error(self, message: str, line: bytes) -> None:
        self._fail_all(ProtocolError(message, line))
        self._kill()

    def _fail_all(self, exc: RpcError) -> None:
        if self._failure is None:
            self._failure = exc
        if self._ready_future is not None and not self._ready_future.done():
            self._ready_future.set_exception(exc)
        for future in self._futures.values():
            if not future.done():
                future.set_exception(exc)
        for turn in self._turns.values():
            turn._end(exc)
        self._turns.clear()
        self._turn_by_prompt.clear()
        self._turn_by_request.clear()
        for task in list(self._permission_tasks.values()):
            task.cancel()

    def _dispatch(self, frame: Dict[str, Any]) -> None:
        kind = frame["type"]
        ready = self._ready_future
        if kind == "ready":
            if ready is not None and not ready.done():
                ready.set_result(frame)
            return
        key = _id_key(frame.get("id"))
        if kind == "response":
            turn = self._turns.pop(key, None) if key is not None else None
            if turn is not None:
                self._forget_turn(turn)
                turn._finish(frame)
                return
            future = self._futures.get(key) if key is not None else None
            if future is not None and not future.done():
                future.set_result(frame)
            else:
                logger.debug("agent_rpc: unmatched response %r", frame)
            return
        if kind == "error":
            exc = RpcError.from_error_frame(frame)
            if ready is not None and not ready.done():
                ready.set_exception(exc)  # a start-up failure (SPEC §6)
                return
            turn = self._turns.pop(key, None) if key is not None else None
            if turn is not None:
                self._forget_turn(turn)
                turn._end(exc)
                return
            future = self._futures.get(key) if key is not None else None
            if future is not None and not future.done():
                future.set_exception(exc)
            elif key is None:
                # Only for lines the host could not decode that far (SPEC
                # §3); the client writes none, so this is worth a warning.
                logger.warning("agent_rpc: error frame for no command: %r", frame)
            else:
                logger.debug("agent_rpc: error for a call no longer waited for: %r", frame)
            return
        if kind == "agent_start":
            turn = self._turns.get(key) if key is not None else None
            prompt_id = frame.get("prompt_id")
            if turn is not None and isinstance(prompt_id, str):
                turn.prompt_id = prompt_id
                self._turn_by_prompt[prompt_id] = turn
                turn._put(frame)
            return
        if kind == "permission_cancelled":
            request_id = frame.get("request_id")
            task = self._permission_tasks.pop(request_id, None)
            if task is not None:
                task.cancel()
            turn = self._turn_by_request.pop(request_id, None)
            if turn is not None:
                turn._put(frame)
            return
        turn = self._turn_by_prompt.get(frame.get("prompt_id"))  # type: ignore[arg-type]
        if kind == "permission_request":
            self._on_permission_request(frame, turn)
        if turn is not None:
            turn._put(frame)
        else:
            logger.debug("agent_rpc: frame of no turn this client follows: %r", frame)

    def _forget_turn(self, turn: Turn) -> None:
        if turn.prompt_id is not None:
            self._turn_by_prompt.pop(turn.prompt_id, None)
        for request_id in turn._requests:
            self._turn_by_request.pop(request_id, None)

    # -- internals: permissions ---------------------------------------------

    def _on_permission_request(self, frame: Dict[str, Any], turn: Optional[Turn]) -> None:
        request_id = frame.get("request_id")
        if not isinstance(request_id, str):
            return
        if turn is not None:
            turn._requests.append(request_id)
            self._turn_by_request[request_id] = turn
        task = asyncio.get_running_loop().create_task(self._answer_permission(request_id, frame))
        self._permission_tasks[request_id] = task
        task.add_done_callback(lambda _: self._permission_tasks.pop(request_id, None))

    async def _answer_permission(self, request_id: str, frame: Dict[str, Any]) -> None:
        decision, message = await self._decide(frame)
        fields: Dict[str, Any] = {"request_id": request_id, "decision": decision}
        if message is not None:
            fields["message"] = message
        try:
            await self.request("permission_response", **fields)
        except RpcError as exc:
            # not_found: the request was cancelled (abort) before our answer.
            if exc.code not in ("not_found", "process_exited", "closed", "protocol_error"):
                logger.warning("agent_rpc: permission_response for %s failed: %s", request_id, exc)

    async def _decide(self, frame: Dict[str, Any]) -> Tuple[str, Optional[str]]:
        handler = self.on_permission
        if handler is None:
            return "deny", NO_HANDLER_MESSAGE
        try:
            result = handler(frame)  # type: ignore[arg-type]
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:  # CancelledError (permission_cancelled) propagates
            return "deny", "the permission handler raised %s: %s" % (type(exc).__name__, exc)
        if isinstance(result, str) and result in DECISIONS:
            return result, None
        if (
            isinstance(result, tuple)
            and len(result) == 2
            and result[0] in DECISIONS
            and (result[1] is None or isinstance(result[1], str))
        ):
            return result[0], result[1]
        return "deny", (
            "the permission handler returned %r; expected one of %s or a (decision, message) tuple"
            % (result, ", ".join(DECISIONS))
        )

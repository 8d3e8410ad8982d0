"""rpc --acp driven by the official Python ACP SDK (`agent-client-protocol`,
pinned in tests/requirements.txt) through its client side: `spawn_agent_process`
gives a `ClientSideConnection`, whose typed methods send the requests and
validate every answer and `session/update` with the SDK's pydantic schema.

Run by tests/acp/real_clients.rs with the pinned interpreter, RPC_BINARY (the
build under test) and ECHO_EXTENSION (the offline echo provider fixture).
Exercises a session's whole life: initialize (resume, close, fork and list
advertised), session/new, a prompt answered through parsed session updates,
session/list (with the title), session/close, session/resume of the closed
session (answered without replaying its history), a second prompt,
session/fork (a new id whose session/load replays the same history as the
original's), and resume of an unknown id (the SDK's RequestError, -32002).

Strict: the schema's lenient parsing (a malformed optional field replaced by
its default, an invalid list item dropped) is turned into a failure, and so is
any error the SDK only logs (a notification it could not parse). Every call is
bounded by asyncio.wait_for. Exits 0 and prints "python sdk lifecycle: ok" on
success; exits 1 with the reason and the agent's stderr otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Awaitable, TypeVar

from pydantic import ValidationError

from acp import PROTOCOL_VERSION, RequestError, schema, spawn_agent_process, text_block
from acp.connection import StreamDirection, StreamEvent
from acp.schema import ClientCapabilities, Implementation, SessionNotification

# How long one SDK call may take; the echo model answers at once.
CALL_TIMEOUT = 30.0
# How long updates are awaited after an answer that comes with none.
SETTLE = 0.5
ECHO_MODEL = "echo:echo:echo-1"
UNKNOWN_ID = "01900000-0000-7000-8000-000000000000"

T = TypeVar("T")


class Failure(Exception):
    """A check that failed; its message says which and why."""


# Everything the SDK would have let through: filled by the strict validators,
# the logging handler and the stream observer, checked after every step.
problems: list[str] = []


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


def no_problems(step: str) -> None:
    if problems:
        raise Failure(f"after {step}: the SDK rejected what the agent sent:\n" + "\n".join(problems))


# The generated schema salvages a malformed non-critical field (its default
# instead) and drops invalid list items, silently. It calls these two helpers
# through the module's globals, so replacing them makes both loud.
def strict_salvage(value: Any, handler: Any, fallback: Any) -> Any:
    try:
        return handler(value)
    except ValidationError as e:
        problems.append(f"schema validation failed (the SDK would default the field): {e}")
        raise


def strict_skip_invalid_items(value: Any, handler: Any) -> Any:
    try:
        return handler(value)
    except ValidationError as e:
        problems.append(f"schema validation failed (the SDK would drop the item): {e}")
        raise


schema.salvage_on_error = strict_salvage  # type: ignore[attr-defined]
schema.skip_invalid_items = strict_skip_invalid_items  # type: ignore[attr-defined]


class ErrorRecorder(logging.Handler):
    """The SDK logs, and otherwise ignores, a notification it cannot parse or
    handle and a failing receive loop: each such record is a failure here."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            problems.append(f"SDK logged: {self.format(record)}")


def observe(event: StreamEvent) -> None:
    """Every raw incoming message: JSON-RPC 2.0, and each session/update valid
    on its own against the schema (the SDK validates it too, off the call)."""
    if event.direction != StreamDirection.INCOMING:
        return
    message = event.message
    if message.get("jsonrpc") != "2.0":
        problems.append(f"not JSON-RPC 2.0: {message}")
    if message.get("method") == "session/update":
        try:
            SessionNotification.model_validate(message.get("params"))
        except ValidationError as e:
            problems.append(f"session/update rejected by the schema: {e}\n{message}")


class Client:
    """The editor side: records every parsed session update."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, Any]] = []

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self.updates.append((session_id, update))

    async def request_permission(self, session_id: str, tool_call: Any, options: Any, **kwargs: Any) -> Any:
        problems.append(f"unexpected session/request_permission for {session_id}: {tool_call}")
        raise RequestError.internal_error({"details": "this test asks for no permission"})

    def since(self, mark: int, session_id: str) -> list[Any]:
        return [u for sid, u in self.updates[mark:] if sid == session_id]


def kinds(updates: list[Any]) -> list[str]:
    return [u.session_update for u in updates]


def text(updates: list[Any], kind: str) -> str:
    return "".join(u.content.text for u in updates if u.session_update == kind)


def history(updates: list[Any]) -> list[tuple[str, str]]:
    """The message chunks as (kind, text), consecutive chunks of one kind joined."""
    out: list[tuple[str, str]] = []
    for u in updates:
        if u.session_update not in ("user_message_chunk", "agent_message_chunk"):
            continue
        if out and out[-1][0] == u.session_update:
            out[-1] = (u.session_update, out[-1][1] + u.content.text)
        else:
            out.append((u.session_update, u.content.text))
    return out


async def call(what: str, awaitable: Awaitable[T], timeout: float = CALL_TIMEOUT) -> T:
    """One SDK call, bounded; a validation failure of its answer fails the test."""
    try:
        result = await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise Failure(f"{what}: no answer within {timeout} s") from None
    except ValidationError as e:
        raise Failure(f"{what}: the SDK rejected the answer: {e}") from None
    except RequestError as e:
        raise Failure(f"{what}: JSON-RPC error {e.code}: {e} {e.data}") from None
    except ConnectionError as e:
        raise Failure(f"{what}: the connection to rpc --acp broke ({e}); did it exit?") from None
    no_problems(what)
    print(f"ok: {what}", flush=True)
    return result


async def expect_error(what: str, awaitable: Awaitable[Any], code: int) -> RequestError:
    """A call that must fail with a JSON-RPC error the SDK raises as RequestError."""
    try:
        result = await asyncio.wait_for(awaitable, CALL_TIMEOUT)
    except asyncio.TimeoutError:
        raise Failure(f"{what}: no answer within {CALL_TIMEOUT} s") from None
    except ConnectionError as e:
        raise Failure(f"{what}: the connection to rpc --acp broke ({e}); did it exit?") from None
    except RequestError as e:
        error = e
    else:
        raise Failure(f"{what}: succeeded ({result!r}), wanted error {code}")
    check(error.code == code, f"{what}: error code {error.code} ({error}), wanted {code}")
    no_problems(what)
    print(f"ok: {what} -> {error.code} {error}", flush=True)
    return error


async def prompt(conn: Any, client: Client, session_id: str, words: str) -> list[Any]:
    """Runs a prompt; returns its updates, checked to echo `words`."""
    mark = len(client.updates)
    answer = await call(
        f"session/prompt {words!r}",
        conn.prompt(session_id=session_id, prompt=[text_block(words)]),
    )
    check(answer.stop_reason == "end_turn", f"prompt {words!r}: stopReason {answer.stop_reason}")
    updates = client.since(mark, session_id)
    got = text(updates, "agent_message_chunk")
    check(got == words, f"prompt {words!r}: the agent_message_chunks say {got!r} ({kinds(updates)})")
    return updates


async def lifecycle(binary: str, echo: str, data: Path, cwd: Path, stderr: Any) -> None:
    client = Client()
    async with spawn_agent_process(
        lambda _agent: client,
        binary,
        "--acp",
        "--data-dir",
        str(data),
        "--extension",
        echo,
        "--model",
        ECHO_MODEL,
        # No developer config leaks in.
        env={"XDG_CONFIG_HOME": str(data / "no-config-home")},
        cwd=str(cwd),
        transport_kwargs={"stderr": stderr},
        observers=[observe],
    ) as (conn, process):
        init = await call(
            "initialize",
            conn.initialize(
                protocol_version=PROTOCOL_VERSION,
                client_capabilities=ClientCapabilities(),
                client_info=Implementation(name="agent-rpc-python-sdk-test", version="1"),
            ),
        )
        check(init.protocol_version == 1, f"protocolVersion {init.protocol_version}")
        caps = init.agent_capabilities
        check(caps is not None and caps.load_session is True, f"loadSession not advertised: {caps}")
        session_caps = caps.session_capabilities
        check(session_caps is not None, f"no sessionCapabilities: {caps}")
        for name in ("list", "resume", "close", "fork"):
            check(getattr(session_caps, name) is not None, f"sessionCapabilities.{name} missing: {session_caps}")

        new = await call("session/new", conn.new_session(cwd=str(cwd), mcp_servers=[]))
        sid = new.session_id
        check(new.modes is not None and new.modes.current_mode_id == "ask", f"session/new modes: {new.modes}")
        check(bool(new.config_options), f"session/new configOptions: {new.config_options}")

        first = "hello from python"
        updates = await prompt(conn, client, sid, first)
        infos = [u for u in updates if u.session_update == "session_info_update"]
        check(len(infos) == 1 and infos[0].title == first, f"session_info_update: {infos}")

        listed = await call("session/list", conn.list_sessions(cwd=str(cwd)))
        entry = [s for s in listed.sessions if s.session_id == sid]
        check(len(entry) == 1, f"session/list lacks {sid}: {listed.sessions}")
        check(entry[0].title == first, f"session/list title {entry[0].title!r}, wanted {first!r}")
        check(entry[0].cwd == str(cwd), f"session/list cwd {entry[0].cwd!r}, wanted {str(cwd)!r}")

        await call("session/close", conn.close_session(session_id=sid))
        await expect_error(
            "session/prompt on the closed session",
            conn.prompt(session_id=sid, prompt=[text_block("gone?")]),
            -32602,
        )

        mark = len(client.updates)
        resumed = await call(
            "session/resume",
            conn.resume_session(session_id=sid, cwd=str(cwd), mcp_servers=[]),
        )
        check(resumed.modes is not None, f"session/resume answered no modes: {resumed}")
        check(bool(resumed.config_options), f"session/resume answered no configOptions: {resumed}")
        await asyncio.sleep(SETTLE)
        replayed = [
            k for k in kinds(client.since(mark, sid)) if k in ("user_message_chunk", "agent_message_chunk")
        ]
        check(not replayed, f"session/resume replayed history: {replayed}")

        second = "second words from python"
        await prompt(conn, client, sid, second)

        fork = await call(
            "session/fork",
            conn.fork_session(session_id=sid, cwd=str(cwd), mcp_servers=[]),
        )
        forked = fork.session_id
        check(forked != sid, f"session/fork answered the same id {forked}")
        check(fork.modes is not None and bool(fork.config_options), f"session/fork answer: {fork}")

        # Each replayed by session/load (a session open on the connection
        # cannot be loaded there: close it first).
        replays: dict[str, list[tuple[str, str]]] = {}
        for name, id_ in (("fork", forked), ("original", sid)):
            await call(f"session/close ({name})", conn.close_session(session_id=id_))
            mark = len(client.updates)
            await call(
                f"session/load ({name})",
                conn.load_session(session_id=id_, cwd=str(cwd), mcp_servers=[]),
            )
            await asyncio.sleep(SETTLE)
            replays[name] = history(client.since(mark, id_))
        wanted = [
            ("user_message_chunk", first),
            ("agent_message_chunk", first),
            ("user_message_chunk", second),
            ("agent_message_chunk", second),
        ]
        check(replays["original"] == wanted, f"session/load of the original replayed {replays['original']}")
        check(replays["fork"] == wanted, f"session/load of the fork replayed {replays['fork']}, wanted {wanted}")

        error = await expect_error(
            "session/resume of an unknown id",
            conn.resume_session(session_id=UNKNOWN_ID, cwd=str(cwd), mcp_servers=[]),
            -32002,
        )
        check(UNKNOWN_ID in str(error), f"the error does not name the id: {error} {error.data}")

    # Leaving the block closed the agent's stdin: it must exit cleanly.
    check(process.returncode == 0, f"rpc --acp exited with {process.returncode} after stdin closed")
    no_problems("the end")


def main() -> int:
    binary = os.environ.get("RPC_BINARY")
    echo = os.environ.get("ECHO_EXTENSION")
    if not binary or not echo:
        print("FAIL: set RPC_BINARY and ECHO_EXTENSION", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().addHandler(ErrorRecorder())
    with tempfile.TemporaryDirectory(prefix="acp-py-") as tmp:
        data, cwd = Path(tmp) / "data", Path(tmp) / "cwd"
        data.mkdir()
        cwd.mkdir()
        log_path = Path(tmp) / "rpc-stderr.log"
        with open(log_path, "wb") as stderr:
            try:
                asyncio.run(lifecycle(binary, echo, data, cwd, stderr))
            except Exception as e:
                print(f"FAIL: {e}", file=sys.stderr)
                if not isinstance(e, Failure):
                    traceback.print_exc()
                print(f"--- rpc --acp stderr ---\n{log_path.read_text(errors='replace')}", file=sys.stderr)
                return 1
    print(f"python sdk lifecycle: ok (agent-client-protocol {package_version()})")
    return 0


def package_version() -> str:
    from importlib.metadata import version

    return version("agent-client-protocol")


if __name__ == "__main__":
    sys.exit(main())

"""Exceptions raised by the client."""

import signal
from typing import Any, Dict, Optional, Union

Id = Union[str, int, float, None]


class RpcError(Exception):
    """A command was rejected (an `error` frame), or a turn failed (`ok: false`).

    `code` is the protocol's error code (`busy`, `not_found`,
    `provider_error`, …, see SPEC §3) or one of the client's own:
    `process_exited`, `protocol_error`, `closed`, `frame_too_large`.
    `frame` is the frame that carried the error, when there was one.
    """

    def __init__(
        self,
        code: str,
        message: str,
        command: Optional[str] = None,
        id: Id = None,
        frame: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message
        self.command = command
        self.id = id
        self.frame = frame

    @classmethod
    def from_error_frame(cls, frame: Dict[str, Any]) -> "RpcError":
        return cls(
            str(frame.get("code")),
            str(frame.get("message", "")),
            frame.get("command"),
            frame.get("id"),
            frame,
        )

    @classmethod
    def from_failed_response(cls, frame: Dict[str, Any]) -> "RpcError":
        return cls(
            str(frame.get("code") or "provider_error"),
            str(frame.get("error") or "the turn failed"),
            frame.get("command"),
            frame.get("id"),
            frame,
        )


def describe_status(returncode: Optional[int]) -> str:
    if returncode is None:
        return "closed its stdout but is still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return "was killed by signal %d (%s)" % (-returncode, name)
    return "exited with status %d" % returncode


class ProcessExited(RpcError):
    """The `rpc` process ended while something was waiting for it.

    `returncode` is the exit status (negative: killed by that signal, as in
    `subprocess`; None: it closed its stdout but had not exited yet) and
    `stderr_tail` the last 64 KiB of what it wrote to stderr.
    """

    def __init__(self, returncode: Optional[int], stderr_tail: str, during: str = "") -> None:
        tail = stderr_tail.rstrip("\n")
        shown = tail[-2000:]
        message = "rpc %s%s" % (describe_status(returncode), during)
        if shown:
            message += "; its stderr ends with:\n" + shown
        else:
            message += " (its stderr was empty)"
        super().__init__("process_exited", message)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class NotStarted(ProcessExited):
    """The `rpc` executable could not be run at all: not on PATH, not
    executable. `binary` is what was run; the `OSError` is the cause."""

    def __init__(self, binary: str, error: OSError) -> None:
        why = error.strerror or str(error)
        message = (
            "rpc could not be run (%r: %s): install it (README, \"Install\") "
            "or pass binary= with its path" % (binary, why)
        )
        RpcError.__init__(self, "process_exited", message)
        self.returncode = None
        self.stderr_tail = ""
        self.binary = binary


class ProtocolError(RpcError):
    """`rpc` wrote something on stdout that is not a JSON object per line.

    The client stops: the process is terminated and every pending call
    raises this error.
    """

    def __init__(self, message: str, line: bytes = b"") -> None:
        super().__init__("protocol_error", message)
        self.line = line

"""What a fleet task can end with instead of a result."""

from typing import Any, Dict, Optional


class FleetError(RuntimeError):
    """The fleet could not run the task (no node can, it was closed, ...)."""


class TaskFailed(FleetError):
    """The turn failed on its host: `code` is the host's (`provider_error`,
    `budget_exceeded`, ...), `rpc_crashed` (the child process died) or
    `rpc_unresponsive` (it did not start or answer within `reply_timeout`);
    for these two `stderr` is its stderr's tail. Not retried. `result` holds what the turn
    left (its `session` reference, to continue it), when it stored any."""

    def __init__(self, key: str, code: str, message: str, stderr: str = "",
                 result: Optional[Dict[str, Any]] = None) -> None:
        text = "%s failed (%s): %s" % (key, code, message)
        if stderr and stderr.strip() not in message:
            text += "\nrpc's stderr ends with:\n" + stderr[-2000:]
        super().__init__(text)
        self.key = key
        self.code = code
        self.stderr = stderr
        self.result = result


class NodeLost(FleetError):
    """The task's node died on each of its `max_retries` + 1 attempts."""

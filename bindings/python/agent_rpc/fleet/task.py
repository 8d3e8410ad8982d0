"""A submitted task as the driver sees it: its result, its bounded event
stream, its cancellation."""

import asyncio
import itertools
from collections import deque
from typing import Any, AsyncIterator, Deque, Dict, Optional

from .errors import FleetError

_keys = itertools.count(1)


def new_key() -> str:
    return "task-%d" % next(_keys)


class TaskResult(dict):
    """`{text, stop_reason, usage, cost_usd, session, session_id, node_id,
    attempts}`; the fields also read as attributes (`result.session`).
    `session` is a Ray object reference to the exported session (None when
    the turn stored nothing): `ray.get` it for the bytes, or pass the result
    (or the reference) as `session=` to continue the conversation."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class EventStream:
    """A bounded buffer between the driver's reader of a task and its one
    consumer. Frames are kept only while a consumer is attached: a task
    nobody watches drops them; a watched one waits for its consumer."""

    def __init__(self, size: int) -> None:
        self._items: Deque[Dict[str, Any]] = deque()
        self._size = size
        self._changed = asyncio.Event()
        self.attached = False
        self.used = False
        self.closed = False

    async def put(self, item: Dict[str, Any]) -> None:
        while self.attached and len(self._items) >= self._size:
            self._changed.clear()
            await self._changed.wait()
        if self.attached:
            self._items.append(item)
            self._changed.set()

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    def detach(self) -> None:
        self.attached = False
        self._items.clear()
        self._changed.set()

    async def iterate(self) -> AsyncIterator[Dict[str, Any]]:
        try:
            while True:
                if self._items:
                    item = self._items.popleft()
                    self._changed.set()
                    yield item
                    continue
                if self.closed:
                    return
                self._changed.clear()
                await self._changed.wait()
        finally:
            self.detach()


class Task:
    """One prompt's turn on the fleet. Get it from `Fleet.submit`."""

    def __init__(self, fleet: Any, spec: Dict[str, Any], event_buffer: int) -> None:
        self.key: str = spec["key"]
        self.prompt: str = spec["prompt"]
        self.spec = spec
        self.attempts = 0
        self.node_id: Optional[str] = None
        self.cancelled = False
        self._fleet = fleet
        self._stream = EventStream(event_buffer)
        self._future: "asyncio.Future[TaskResult]" = asyncio.get_running_loop().create_future()

    def __repr__(self) -> str:
        state = "done" if self.done() else ("running on " + self.node_id[:8] if self.node_id else "queued")
        return "<Task %s %s>" % (self.key, state)

    def done(self) -> bool:
        return self._future.done()

    async def result(self) -> TaskResult:
        """The turn's result; raises `TaskFailed` (the provider failed, the
        budget ran out, rpc crashed), `NodeLost` (its node died more often
        than `max_retries`) or `FleetError`."""
        return await asyncio.shield(self._future)

    def events(self) -> AsyncIterator[Dict[str, Any]]:
        """The turn's native frames as they happen (`agent_start`,
        `message_update`, ..., the prompt's `response`), plus a
        `fleet_retry` frame when its node died and it starts again
        elsewhere. Call it before awaiting anything else to see every frame.
        While the consumer lags `event_buffer` frames behind, the agent
        waits. One consumer per task."""
        if self._stream.used:
            raise FleetError("events() of %s is already being consumed" % self.key)
        self._stream.used = self._stream.attached = True
        return self._stream.iterate()

    def cancel(self) -> None:
        """Aborts the turn: a queued task ends at once, a running one when
        its host answers the abort (it saves the session). The result's
        `stop_reason` is then `cancelled`."""
        if self.done() or self.cancelled:
            return
        self.cancelled = True
        self._stream.detach()  # the reader must not wait on a consumer now
        self._fleet._cancel(self)

    # -- the fleet's side ---------------------------------------------------

    async def _frame(self, frame: Dict[str, Any]) -> None:
        if not self.cancelled:
            await self._stream.put(frame)

    def _resolve(self, result: Dict[str, Any]) -> None:
        if not self._future.done():
            self._future.set_result(TaskResult(result, attempts=self.attempts))
        self._stream.close()

    def _fail(self, error: BaseException) -> None:
        if not self._future.done():
            self._future.set_exception(error)
            # Nobody may ever ask; the exception is still in the result.
            self._future.exception()
        self._stream.close()

"""The session keeper: one actor on the driver's node that owns every
task's exported session.

A worker exports its task's session after the turn and hands the bytes
here; the keeper `ray.put`s them, so the object lives in the driver node's
object store and is owned by an actor that outlives any worker node. The
driver gets a reference, never the bytes, unless it asks (`ray.get`).

It also remembers which tasks finished: when a worker node dies between
storing a task's session and the driver hearing of it, the driver takes
the stored result instead of running the turn a second time.
"""

from typing import Any, Dict, List, Optional

import ray


class SessionKeeper:
    def __init__(self) -> None:
        self._finished: Dict[str, Dict[str, Any]] = {}

    def keep(self, key: str, data: bytes, result: Dict[str, Any]) -> List["ray.ObjectRef"]:
        """Stores a finished task's session and result; returns the
        session's reference in a list (so the caller gets the reference,
        not the bytes)."""
        ref = ray.put(data)
        self._finished[key] = dict(result, session=ref)
        return [ref]

    def finished(self, key: str) -> Optional[Dict[str, Any]]:
        """The result `keep` stored for `key`, if any."""
        return self._finished.get(key)

    def forget(self, key: str) -> None:
        """The driver holds the result now: drop the keeper's own reference
        (the object lives on while the driver's does)."""
        self._finished.pop(key, None)

    def held(self) -> int:
        return len(self._finished)

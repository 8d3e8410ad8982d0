"""The fleet: a worker actor per Ray node, and the driver's queue that
hands each worker at most `agents_per_node` tasks at a time.

Ray places the workers (one per node that has the resources they ask for)
and tells the driver when one dies; the driver only keeps the queue. A
task whose worker died is asked of the session keeper first (it may have
finished just before) and otherwise runs again on another node from the
session it started with, so its turn lands in the session once.
"""

import asyncio
import inspect
import logging
import os
import shutil
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Union

import ray
from ray.exceptions import RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from .cluster import TELEMETRY_OFF, LocalCluster
from .errors import FleetError, NodeLost, TaskFailed
from .keeper import SessionKeeper
from .task import Task, TaskResult, new_key
from .worker import FleetWorker

logger = logging.getLogger("agent_rpc.fleet")

Policy = Union[str, Callable[[Dict[str, Any]], Any]]
POLICIES = ("allow-all", "read-only")
#: How often the driver looks for nodes that joined.
NODE_REFRESH_SECONDS = 5.0
#: A dead worker's errors, as Ray raises them while streaming.
WORKER_GONE = (RayActorError, ray.exceptions.ObjectLostError, ray.exceptions.OwnerDiedError)


class _Worker:
    def __init__(self, node_id: str, actor: Any, slots: int) -> None:
        self.node_id = node_id
        self.actor = actor
        self.free = slots


class Fleet:
    """Agents on a Ray cluster.

    `address`: the cluster's (`ray start --head` prints it), or None to
    start a one-node cluster on this machine with its traffic on loopback
    and no telemetry (stopped by `close`). `rpc_binary`: the `rpc`
    executable, at that path on every node. `agents_per_node`: most turns a
    node runs at once; more tasks queue on the driver. `data_dir`: where
    each node keeps its sessions while a turn runs (a directory per node
    under it; default: the node's temp dir). `num_cpus` and `resources`:
    the Ray resources one agent takes (a worker reserves
    `agents_per_node` times them, so only nodes with that much get one).
    `permission`: `"allow-all"`, `"read-only"`, or a callable run on the
    driver with each `permission_request` frame, returning a decision
    (`allow_once`, `allow_always`, `deny`) or `(decision, message)`, or an
    awaitable of one. `env_vars`: names of environment variables (provider
    keys, base URLs) copied from this process to the workers through Ray's
    `runtime_env`; the `rpc` children inherit them (names not set here are
    skipped, with a warning). `max_retries`: how often
    a task starts again elsewhere after its node died. `event_buffer`: how
    far (in frames, and in batches of them inside Ray) a task's agent may
    run ahead of its `events()` consumer. `reply_timeout`: how long an
    `rpc` may take to start or to answer between turns before the task
    fails (`rpc_unresponsive`); a turn itself may take as long as it needs.

    Create it inside a running event loop and use `async with`, or call
    `await fleet.close()`, which stops the agents still running. A process
    already connected to Ray (`ray.init`) keeps that connection.
    """

    def __init__(self, address: Optional[str] = None, *, rpc_binary: str = "rpc",
                 agents_per_node: int = 4, data_dir: Optional[str] = None,
                 num_cpus: float = 0, resources: Optional[Mapping[str, float]] = None,
                 permission: Policy = "allow-all", env_vars: Sequence[str] = (),
                 max_retries: int = 2, event_buffer: int = 64, reply_timeout: float = 30.0) -> None:
        if agents_per_node < 1:
            raise ValueError("agents_per_node must be at least 1")
        if not (callable(permission) or permission in POLICIES):
            raise ValueError("permission must be %s or a callable" % " or ".join(map(repr, POLICIES)))
        missing = [name for name in env_vars if name not in os.environ]
        if missing:
            logger.warning("agent_rpc.fleet: not set here, so not passed to the workers: %s",
                           ", ".join(missing))
        self.agents_per_node = agents_per_node
        self.max_retries = max_retries
        self.event_buffer = max(1, event_buffer)
        self._policy = permission
        self._loop = asyncio.get_running_loop()
        self._cluster: Optional[LocalCluster] = None
        self._connect(address)
        self._binary = shutil.which(rpc_binary) or rpc_binary
        self._per_agent = {"num_cpus": num_cpus, "resources": dict(resources or {})}
        here = ray.get_runtime_context().get_node_id()
        self._keeper = ray.remote(SessionKeeper).options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()
        self._worker_config = {
            "rpc_binary": self._binary,
            "policy": permission if isinstance(permission, str) else "driver",
            "keeper": self._keeper,
            "frame_buffer": self.event_buffer,
            "reply_timeout": reply_timeout,
            "data_dir": data_dir,
        }
        self._runtime_env = {"env_vars": {n: os.environ[n] for n in env_vars if n in os.environ}}
        self._workers: Dict[str, _Worker] = {}
        self._lost: Set[str] = set()
        self._refreshed = 0.0
        self._queue: Deque[Task] = deque()
        self._running: Dict[str, _Worker] = {}
        self._closed = False
        self._refresh_nodes(force=True)
        if not self._workers:
            ray.kill(self._keeper)
            raise FleetError("no node of the cluster has the resources one worker asks for "
                             "(%s per agent, %d agents)" % (self._per_agent, agents_per_node))

    # -- public -------------------------------------------------------------

    async def __aenter__(self) -> "Fleet":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    @property
    def nodes(self) -> List[str]:
        """The node ids that have a worker."""
        return list(self._workers)

    def submit(self, prompt: str, *, cwd: Optional[str] = None, model: Optional[str] = None,
               args: Sequence[str] = (), budget_usd: Optional[float] = None,
               max_turns: Optional[int] = None, session: Any = None,
               node_id: Optional[str] = None) -> Task:
        """Queues one turn: `prompt` in a new session, or in `session` (a
        `TaskResult`, its `session` reference, or exported bytes) continued.
        `cwd`: the agent's working directory on its node (default: a fresh
        empty one, removed after). `args`: more `rpc` flags. `node_id` pins
        the task to one node (`fleet.nodes`)."""
        if self._closed:
            raise FleetError("the fleet is closed")
        if node_id is not None and node_id not in self._workers:
            raise FleetError("node %s has no worker in this fleet (fleet.nodes lists them)" % node_id)
        spec = {
            "key": new_key(), "prompt": prompt, "cwd": cwd, "model": model,
            "args": [str(a) for a in args], "budget_usd": budget_usd, "max_turns": max_turns,
            "session": _session_ref(session), "node_id": node_id,
        }
        task = Task(self, spec, self.event_buffer)
        self._queue.append(task)
        self._loop.call_soon(self._pump)
        return task

    def map(self, prompts: Iterable[str], **kwargs: Any) -> List[Task]:
        """`submit` for each prompt, with the same keywords."""
        return [self.submit(p, **kwargs) for p in prompts]

    async def stats(self) -> Dict[str, Any]:
        """Each worker's `{running, peak, rss_kb, frames}` by node id, and the
        driver's queue."""
        workers = {}
        for node_id, worker in list(self._workers.items()):
            try:
                workers[node_id] = await worker.actor.stats.remote()
            except WORKER_GONE:
                pass
        return {"queued": len(self._queue), "running": len(self._running), "workers": workers}

    async def close(self) -> None:
        """Cancels what is queued, stops the workers (their agents with
        them) and, if this fleet started the cluster, the cluster."""
        if self._closed:
            return
        self._closed = True
        while self._queue:
            self._queue.popleft()._fail(FleetError("the fleet was closed"))
        workers = list(self._workers.values())
        # Their agents first (an rpc whose worker just vanished would finish
        # its turn on its own), then the workers.
        stopping = [w.actor.shutdown.remote() for w in workers]
        if stopping:
            await asyncio.wait([asyncio.ensure_future(_quiet(ref)) for ref in stopping], timeout=10.0)
        for worker in workers:
            ray.kill(worker.actor)
        ray.kill(self._keeper)
        self._workers.clear()
        if self._cluster is not None:
            ray.shutdown()
            self._cluster.stop()
            self._cluster = None

    # -- the queue ----------------------------------------------------------

    def _pump(self) -> None:
        """Hands queued tasks to workers with a free slot, the emptiest first."""
        if self._closed:
            return
        self._refresh_nodes()
        waiting: Deque[Task] = deque()
        while self._queue and any(w.free > 0 for w in self._workers.values()):
            task = self._queue.popleft()
            worker = self._pick(task)
            if task.done():
                continue  # failed by _pick: pinned to a node that died
            if worker is None:
                waiting.append(task)
                continue
            worker.free -= 1
            self._running[task.key] = worker
            self._loop.create_task(self._drive(task, worker))
        waiting.extend(self._queue)
        self._queue = waiting
        if self._queue and not self._workers and not self._running:
            while self._queue:
                self._queue.popleft()._fail(FleetError(
                    "no node of the cluster has a live worker (they died or could not start)"))

    def _pick(self, task: Task) -> Optional[_Worker]:
        pinned = task.spec["node_id"]
        if pinned is not None:
            if pinned in self._lost:
                task._fail(NodeLost("%s was pinned to node %s, which died" % (task.key, pinned)))
                return None
            worker = self._workers.get(pinned)
            return worker if worker is not None and worker.free > 0 else None
        free = [w for w in self._workers.values() if w.free > 0]
        return max(free, key=lambda w: w.free) if free else None

    async def _drive(self, task: Task, worker: _Worker) -> None:
        task.attempts += 1
        task.node_id = worker.node_id
        try:
            await self._stream(task, worker)
        except WORKER_GONE as exc:
            await self._worker_died(task, worker, exc)
        except Exception as exc:  # a bug or a Ray failure: the task's error, not a hang
            task._fail(FleetError("%s failed on node %s: %s: %s" % (
                task.key, worker.node_id[:8], type(exc).__name__, exc)))
        finally:
            self._running.pop(task.key, None)
            worker.free += 1
            if not task.done() and task not in self._queue:
                task._fail(FleetError("%s ended without a result" % task.key))
            self._pump()

    async def _stream(self, task: Task, worker: _Worker) -> None:
        spec = dict(task.spec)
        gen = worker.actor.run.options(_generator_backpressure_num_objects=self.event_buffer).remote(spec)
        if task.cancelled:  # cancelled while it was being handed out
            worker.actor.abort.remote(task.key)
        async for ref in gen:
            item = await ref
            if "frames" in item:
                for frame in item["frames"]:
                    if frame.get("type") == "permission_request" and callable(self._policy):
                        self._loop.create_task(self._ask_policy(task, worker, frame))
                    await task._frame(frame)
            elif "result" in item:
                task._resolve(item["result"])
                self._keeper.forget.remote(task.key)
            elif "error" in item:
                task._fail(_task_failed(task.key, item["error"]))
                self._keeper.forget.remote(task.key)

    async def _worker_died(self, task: Task, worker: _Worker, exc: BaseException) -> None:
        if self._closed:
            task._fail(FleetError("%s: the fleet was closed while it ran" % task.key))
            return
        self._lost.add(worker.node_id)
        self._workers.pop(worker.node_id, None)
        if "creation task" in str(exc):
            # The worker never started (Ray or agent_rpc missing on the
            # node, say): the same would happen elsewhere.
            task._fail(FleetError("%s: the worker on node %s could not start: %s" % (
                task.key, worker.node_id[:8], exc)))
            return
        finished = await self._keeper.finished.remote(task.key)
        if finished is not None:
            task._resolve(finished)
            self._keeper.forget.remote(task.key)
        elif task.cancelled:
            task._resolve({"text": "", "stop_reason": "cancelled", "usage": {}, "cost_usd": None,
                           "session": task.spec["session"], "session_id": None, "node_id": worker.node_id})
        elif task.attempts > self.max_retries:
            task._fail(NodeLost("%s: its node died on each of %d attempts; the last: %s" % (
                task.key, task.attempts, exc)))
        else:
            await task._frame({"type": "fleet_retry", "attempt": task.attempts + 1,
                               "node_id": worker.node_id, "reason": str(exc).splitlines()[0][:500]})
            self._queue.appendleft(task)

    async def _ask_policy(self, task: Task, worker: _Worker, frame: Dict[str, Any]) -> None:
        try:
            decision = self._policy(frame)  # type: ignore[operator]
            if inspect.isawaitable(decision):
                decision = await decision
        except Exception as exc:
            decision = ("deny", "the fleet's permission policy raised %s: %s" % (type(exc).__name__, exc))
        if isinstance(decision, str):
            decision = (decision, None)
        worker.actor.answer.remote(task.key, frame["request_id"], decision[0], decision[1])

    def _cancel(self, task: Task) -> None:
        if task in self._queue:
            self._queue.remove(task)
            task._resolve({"text": "", "stop_reason": "cancelled", "usage": {}, "cost_usd": None,
                           "session": task.spec["session"], "session_id": None, "node_id": None})
            return
        worker = self._running.get(task.key)
        if worker is not None:
            worker.actor.abort.remote(task.key)

    # -- nodes --------------------------------------------------------------

    def _connect(self, address: Optional[str]) -> None:
        for name, value in TELEMETRY_OFF.items():
            os.environ.setdefault(name, value)
        if ray.is_initialized():
            return
        if address is None:
            self._cluster = LocalCluster()
            head = self._cluster.start_head()
            ray.init(address=head.gcs_address, _node_ip_address=head.ip, logging_level="warning")
        else:
            ray.init(address=address, logging_level="warning")

    def _refresh_nodes(self, force: bool = False) -> None:
        """Starts a worker on every live node that has none (nodes that
        joined since), at most every few seconds."""
        now = time.monotonic()
        if not force and now - self._refreshed < NODE_REFRESH_SECONDS:
            return
        self._refreshed = now
        wanted = {"CPU": self._per_agent["num_cpus"] * self.agents_per_node}
        wanted.update({k: v * self.agents_per_node for k, v in self._per_agent["resources"].items()})
        for node in ray.nodes():
            node_id = node["NodeID"]
            if not node.get("Alive") or node_id in self._workers or node_id in self._lost:
                continue
            have = node.get("Resources", {})
            if all(have.get(k, 0) >= v for k, v in wanted.items() if v):
                self._workers[node_id] = _Worker(node_id, self._start_worker(node_id), self.agents_per_node)

    def _start_worker(self, node_id: str) -> Any:
        return ray.remote(FleetWorker).options(
            num_cpus=self._per_agent["num_cpus"] * self.agents_per_node,
            resources={k: v * self.agents_per_node for k, v in self._per_agent["resources"].items()},
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            runtime_env=self._runtime_env,
            max_restarts=0,
        ).remote(self._worker_config)


async def _quiet(ref: Any) -> None:
    try:
        await ref
    except Exception:
        pass  # a worker that is gone has nothing left to stop


def _session_ref(session: Any) -> Any:
    """What `submit(session=...)` accepts, as an object reference."""
    if session is None or isinstance(session, ray.ObjectRef):
        return session
    if isinstance(session, TaskResult) or isinstance(session, dict):
        return session.get("session")
    if isinstance(session, str):
        session = session.encode("utf-8")
    if isinstance(session, (bytes, bytearray)):
        return ray.put(bytes(session))
    raise TypeError("session= takes a TaskResult, its session reference, exported bytes, or None")


def _task_failed(key: str, error: Dict[str, Any]) -> TaskFailed:
    return TaskFailed(key, error.get("code", "unknown"), error.get("message", ""),
                      error.get("stderr", ""), error.get("result"))

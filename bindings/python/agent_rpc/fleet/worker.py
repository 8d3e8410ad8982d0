"""The worker actor: one per node, running each task's turn in an `rpc`
child of its own, with a data dir local to the node.

A task arrives with its session as a reference (or none). The worker
imports it (`rpc sessions import`), runs the turn with `--continue`,
streams every native frame back as it happens, exports the session
(`rpc sessions export`) and hands it to the session keeper, then deletes
its local copy: a node keeps no state between tasks, so any node can run
a task's next turn.

The frames flow through a Ray streaming generator with backpressure and an
`AgentClient` with a bounded frame buffer: while the driver does not take
frames, the worker stops reading the child's stdout, the pipe fills and
the child waits. Memory stays flat however slow the consumer.
"""

import asyncio
import os
import shutil
import tempfile
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple

import ray

from ..client import AgentClient
from ..errors import ProcessExited, RpcError

#: How long one `rpc sessions ...` call may take.
CLI_TIMEOUT = 60.0
#: How long a worker waits before reporting an agent killed by a signal.
SIGNAL_GRACE = 3.0
#: The policies that are also the host's permission mode (`driver`, the
#: driver's callable, leaves the host asking).
HOST_MODES = ("allow-all", "read-only")



class Running:
    """One task's turn on this worker."""

    def __init__(self) -> None:
        self.client: Optional[AgentClient] = None
        self.cancelled = False
        self.frames = 0
        self.answers: Dict[str, "asyncio.Future[Tuple[str, Optional[str]]]"] = {}


class FleetWorker:
    def __init__(self, config: Dict[str, Any]) -> None:
        self.binary: str = config["rpc_binary"]
        self.policy: str = config["policy"]
        self.keeper = config["keeper"]
        self.frame_buffer: int = config["frame_buffer"]
        #: How long `rpc` may take to start, and to answer a question
        #: between turns (a turn itself may take as long as it needs).
        self.reply_timeout: float = config["reply_timeout"]
        self.node = ray.get_runtime_context().get_node_id()
        root = config.get("data_dir") or os.path.join(tempfile.gettempdir(), "agent-rpc-fleet")
        # Nodes may share a filesystem (several on one machine): one dir each.
        self.data_dir = os.path.join(root, self.node[:16])
        self.work_dir = os.path.join(self.data_dir, "work")
        os.makedirs(self.work_dir, mode=0o700, exist_ok=True)
        self.running: Dict[str, Running] = {}
        self.peak = 0

    # -- control (own concurrency group: answered while turns stream) -------

    def node_id(self) -> str:
        return self.node

    def stats(self) -> Dict[str, Any]:
        return {
            "node_id": self.node,
            "running": len(self.running),
            "peak": self.peak,
            "frames": {key: run.frames for key, run in self.running.items()},
            "rss_kb": _rss_kb(),
        }

    async def abort(self, key: str) -> bool:
        """Cancels a task's turn: the host answers the prompt `cancelled`
        and saves. The abort is written at once; its answer is not waited
        for, since a consumer that stopped taking frames holds the reader."""
        run = self.running.get(key)
        if run is None:
            return False
        run.cancelled = True
        if run.client is not None and run.client.returncode is None:
            asyncio.get_running_loop().create_task(_quietly(run.client.abort()))
        return True

    async def shutdown(self) -> None:
        """Stops every agent this worker runs (SIGTERM, then SIGKILL after
        2 s) and tidies its data dir: the fleet is closing."""
        clients = [run.client for run in self.running.values() if run.client is not None]
        for client in clients:
            client.close_timeout = 0.0
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        # Leave the node as found: the scratch cwds go, and the data dir
        # too unless a session is still in it (a crashed agent's).
        shutil.rmtree(self.work_dir, ignore_errors=True)
        for folder in (os.path.join(self.data_dir, "sessions"), self.data_dir):
            try:
                os.rmdir(folder)
            except OSError:
                pass

    def answer(self, key: str, request_id: str, decision: str, message: Optional[str]) -> None:
        run = self.running.get(key)
        future = run.answers.get(request_id) if run is not None else None
        if future is not None and not future.done():
            future.set_result((decision, message))

    # -- the turn -----------------------------------------------------------

    async def run(self, spec: Dict[str, Any]) -> AsyncIterator[Dict[str, Any]]:
        """Yields `{"frames": [...]}` with the native frames of the turn as
        they come (those at hand together, at most `frame_buffer`), then one
        `{"result": ...}` or `{"error": ...}`."""
        key = spec["key"]
        run = self.running[key] = Running()
        self.peak = max(self.peak, len(self.running))
        scratch = None
        try:
            cwd = spec.get("cwd")
            if cwd is None:
                scratch = cwd = tempfile.mkdtemp(prefix="task-", dir=self.work_dir)
            session_id = None
            if spec.get("session") is not None:
                try:
                    session_id = await self._import(await spec["session"])
                except Exception as exc:
                    yield {"error": {"code": "session_import_failed", "message": str(exc)}}
                    return
            outcome: Dict[str, Any] = {}
            async for frames in self._turn(spec, run, cwd, session_id, outcome):
                yield {"frames": frames}
            try:
                yield await self._finish(key, outcome)
            except RuntimeError as exc:
                yield {"error": {"code": "session_export_failed", "message": str(exc)}}
        finally:
            self.running.pop(key, None)
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

    async def _turn(self, spec: Dict[str, Any], run: Running, cwd: str,
                    session_id: Optional[str], outcome: Dict[str, Any]) -> AsyncIterator[Dict[str, Any]]:
        client = AgentClient(self.binary, self._args(spec, cwd, session_id), cwd=cwd,
                             on_permission=self._permission_handler(run),
                             max_buffered_frames=self.frame_buffer)
        run.client = client
        try:
            ready = await asyncio.wait_for(client.start(), self.reply_timeout)
            outcome["session_id"] = ready.session_id
            before = await self._cost(client)
            if run.cancelled:
                outcome["response"] = {"stop_reason": "cancelled", "usage": ready.usage, "cancelled": True}
            else:
                turn = client.prompt(spec["prompt"])
                batch: List[Dict[str, Any]] = []
                try:
                    # One Ray object per batch of the frames at hand, not per
                    # frame: a streamed reply is many small frames.
                    async for frame in turn:
                        run.frames += 1
                        batch.append(frame)
                        if turn.pending() == 0 or len(batch) >= self.frame_buffer:
                            yield batch
                            batch = []
                except RpcError as exc:
                    outcome["error"] = {"code": exc.code, "message": str(exc)}
                if batch:
                    yield batch
                outcome["response"] = turn.response
            messages = await asyncio.wait_for(client.get_messages(), self.reply_timeout)
            outcome["text"] = _last_text(messages.get("messages", []))
            after = await self._cost(client)
            outcome["cost_usd"] = None if after is None else after - (before or 0.0)
        except asyncio.TimeoutError:
            outcome["error"] = {"code": "rpc_unresponsive", "stderr": client.stderr_tail,
                                "message": "rpc did not answer within %g s" % self.reply_timeout}
        except ProcessExited as exc:
            if (client.returncode or 0) < 0:
                # Killed by a signal: when the whole node is going down, this
                # worker dies within moments too, and the driver then runs
                # the task elsewhere instead of failing it.
                await asyncio.sleep(SIGNAL_GRACE)
            outcome["error"] = {"code": "rpc_crashed", "message": str(exc), "stderr": client.stderr_tail}
        except RpcError as exc:
            outcome["error"] = {"code": exc.code, "message": str(exc), "stderr": client.stderr_tail}
        finally:
            await client.close()

    async def _finish(self, key: str, outcome: Dict[str, Any]) -> Dict[str, Any]:
        """The task's result, with its session exported and kept."""
        response = outcome.get("response") or {}
        summary: Dict[str, Any] = {
            "text": outcome.get("text", ""),
            "stop_reason": "cancelled" if response.get("cancelled") else response.get("stop_reason"),
            "usage": response.get("usage", {}),
            "cost_usd": outcome.get("cost_usd"),
            "session_id": outcome.get("session_id"),
            "node_id": self.node,
        }
        error = outcome.get("error")
        if error is not None and error.get("code") == "rpc_crashed":
            return {"error": error}
        session_id = outcome.get("session_id")
        if session_id is not None and os.path.exists(self._session_path(session_id)):
            data = await self._cli(["sessions", "export", session_id])
            if error is not None:
                summary["error"] = error
            box = await self.keeper.keep.remote(key, data, summary)
            summary["session"] = box[0]
            await self._cli(["sessions", "rm", session_id])
        else:
            summary["session"] = None
        return {"error": dict(error, result=summary)} if error is not None else {"result": summary}

    async def _cost(self, client: AgentClient) -> Optional[float]:
        """The session's cost so far (None while unknown)."""
        stats = await asyncio.wait_for(client.get_session_stats(), self.reply_timeout)
        return stats.get("cost_usd")

    def _args(self, spec: Dict[str, Any], cwd: str, session_id: Optional[str]) -> List[str]:
        args = ["--data-dir", self.data_dir, "--cwd", cwd]
        if session_id is not None:
            args += ["--continue", session_id]
        if spec.get("model"):
            args += ["--model", spec["model"]]
        if spec.get("max_turns") is not None:
            args += ["--max-turns", str(int(spec["max_turns"]))]
        if spec.get("budget_usd") is not None:
            args += ["--max-budget-usd", repr(float(spec["budget_usd"]))]
        if self.policy in HOST_MODES:
            args += ["--permission-mode", self.policy]
        return args + [str(a) for a in spec.get("args", ())]

    def _permission_handler(self, run: Running):
        policy = self.policy

        async def decide(frame: Dict[str, Any]) -> Tuple[str, Optional[str]]:
            if policy == "allow-all":
                return "allow_once", None
            if policy == "read-only":
                return "deny", "the fleet's permission policy is read-only"
            # `driver`: the frame reaches the driver in the turn's stream;
            # its policy answers through `answer`.
            future = asyncio.get_running_loop().create_future()
            run.answers[frame["request_id"]] = future
            try:
                return await future
            finally:
                run.answers.pop(frame["request_id"], None)

        return decide

    # -- sessions on this node ---------------------------------------------

    def _session_path(self, session_id: str) -> str:
        return os.path.join(self.data_dir, "sessions", session_id + ".jsonl")

    async def _import(self, data: bytes) -> str:
        out = await self._cli(["sessions", "import", "--replace", "-"], data)
        words = out.decode("utf-8", "replace").split()
        if not words:
            raise RuntimeError("rpc sessions import printed no session id")
        return words[-1]

    async def _cli(self, args: List[str], stdin: bytes = b"") -> bytes:
        proc = await asyncio.create_subprocess_exec(
            self.binary, "--data-dir", self.data_dir, *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), CLI_TIMEOUT)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError("rpc %s did not finish in %.0f s" % (" ".join(args[:2]), CLI_TIMEOUT))
        if proc.returncode != 0:
            raise RuntimeError("rpc %s failed (exit %s): %s" % (
                " ".join(args[:2]), proc.returncode, err.decode("utf-8", "replace").strip()))
        return out


def _last_text(messages: List[Dict[str, Any]]) -> str:
    """The text of the last assistant message."""
    for message in reversed(messages):
        if message.get("role") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return "".join(b.get("text", "") for b in content or [] if b.get("type") == "text")
    return ""


async def _quietly(call: Any) -> None:
    try:
        await call
    except Exception:
        pass


def _rss_kb() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

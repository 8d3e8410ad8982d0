"""Agents on a Ray cluster: `Fleet` runs `rpc` children on every node,
queues what does not fit, streams their frames, moves sessions between
nodes and retries what a dead node was running.

Needs Ray: `pip install agent-rpc[ray]`.
"""

try:
    import ray  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("agent_rpc.fleet needs Ray: pip install 'agent-rpc[ray]'") from exc

from .cluster import LocalCluster
from .errors import FleetError, NodeLost, TaskFailed
from .fleet import Fleet
from .task import Task, TaskResult

__all__ = ["Fleet", "Task", "TaskResult", "FleetError", "TaskFailed", "NodeLost", "LocalCluster"]

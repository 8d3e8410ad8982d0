"""Python client for agent-rpc: spawn `rpc` and drive it over stdin/stdout.

    from agent_rpc import AgentClient, RpcError

See README.md for the API, and SPEC.md in the agent-rpc repository for the
protocol. The frame and command types (TypedDicts) are in `agent_rpc.types`.
"""

from . import types
from .client import AgentClient, Ready, Turn
from .errors import NotStarted, ProcessExited, ProtocolError, RpcError

__all__ = [
    "AgentClient",
    "NotStarted",
    "ProcessExited",
    "ProtocolError",
    "Ready",
    "RpcError",
    "Turn",
    "types",
]
__version__ = "0.1.0"

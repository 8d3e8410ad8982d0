"""The protocol's command and frame shapes as TypedDicts, so that
`from agent_rpc.types import Frame` works (for code and type checkers).

The definitions are generated into `_types.py` from the JSON Schema by
`bindings/python/generate_types.py`; this module only re-exports them.
"""

from ._types import *  # noqa: F401,F403
from ._types import __all__  # noqa: F401

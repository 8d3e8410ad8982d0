"""Shared set-up: the real `rpc` binary, the repo's fixture providers, and
helpers that never wait without a timeout."""

import asyncio
import logging
import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

from agent_rpc import AgentClient

REPO = Path(__file__).resolve().parents[3]
BINARY = os.environ.get("AGENT_RPC_BINARY") or str(REPO / "target" / "debug" / "rpc")
FIXTURES = REPO / "fixtures" / "providers"
ECHO = "echo:echo:echo-1"
SLOW = "slow:slow:slow-1"

# IsolatedAsyncioTestCase runs the loop in debug mode, which logs every
# callback slower than 0.1 s (spawning a process is one): noise, not failures.
logging.getLogger("asyncio").setLevel(logging.ERROR)

# Generous: the machine may be busy; a healthy wait ends in well under a second.
TIMEOUT = 30.0


async def within(awaitable, timeout=TIMEOUT):
    return await asyncio.wait_for(awaitable, timeout)


async def collect(turn, timeout=TIMEOUT):
    """Every frame of a turn (raises what the turn raises)."""

    async def run():
        return [frame async for frame in turn]

    return await asyncio.wait_for(run(), timeout)


def text_of(frames):
    return "".join(
        f["event"]["delta"]
        for f in frames
        if f["type"] == "message_update" and f["event"]["type"] == "text_delta"
    )


def fake_host(script):
    """A `binary` + `args` pair running a Python script in place of rpc."""
    return sys.executable, ["-c", script]


class HostTestCase(unittest.IsolatedAsyncioTestCase):
    """Each test gets a fresh data dir and working directory."""

    def setUp(self):
        if not Path(BINARY).exists():
            self.fail("no rpc binary at %s (run `cargo build` or set AGENT_RPC_BINARY)" % BINARY)
        self.tmp = Path(tempfile.mkdtemp(prefix="agent-rpc-py-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.data_dir = self.tmp / "data"
        self.work = self.tmp / "work"
        self.work.mkdir()

    def client(self, model=ECHO, extra_args=(), **kwargs):
        args = [
            "--data-dir", str(self.data_dir),
            "--extension", str(FIXTURES / "echo"),
            "--extension", str(FIXTURES / "slow"),
            "--model", model,
            "--cwd", str(self.work),
        ]
        args += list(extra_args)
        kwargs.setdefault("close_timeout", 10.0)
        return AgentClient(binary=BINARY, args=args, cwd=str(self.work), **kwargs)

    async def started(self, **kwargs):
        client = self.client(**kwargs)
        await within(client.start())
        self.addAsyncCleanup(self._close, client)
        return client

    async def _close(self, client):
        await within(client.close())

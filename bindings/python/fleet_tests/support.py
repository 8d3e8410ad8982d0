"""A two-node Ray cluster on loopback and the fake HTTP model server, for
the fleet tests (one of each for the whole module; see test_fleet.py).

The head binds 127.0.0.2 and the second node 127.0.0.3 (with a `second`
resource of its own). Every wait is bounded.
"""

import asyncio
import json
import os
import select
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

import ray

from agent_rpc.fleet import LocalCluster

#: The checkout (the suite may run from a copy of the binding).
REPO = Path(os.environ.get("AGENT_RPC_REPO") or Path(__file__).resolve().parents[3])
RPC = os.environ.get("AGENT_RPC_BINARY", "rpc")
API_KEY = "fleet-test-key-6f1d"
MODEL = "claude-sonnet-5-5"
TIMEOUT = 60.0


class FakeModel:
    """fixtures/http/fake_llm.py, requiring API_KEY; stops when dropped."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "fixtures/http/fake_llm.py"), "--api-key", API_KEY],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        line = self.proc.stdout.readline().decode() if ready else ""  # type: ignore[union-attr]
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError("fake_llm.py did not start: %r" % line)
        self.url = "http://127.0.0.1:%d" % int(line.split()[1])

    def requests(self) -> List[Dict[str, Any]]:
        with urllib.request.urlopen(self.url + "/_requests", timeout=10) as r:
            return json.load(r)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


class World:
    """The module's cluster, fake server and environment."""

    def __init__(self) -> None:
        self.fake = FakeModel()
        # What the workers' rpc children need: given to the Fleet by name.
        os.environ["ANTHROPIC_BASE_URL"] = self.fake.url
        os.environ["ANTHROPIC_API_KEY"] = API_KEY
        self.cluster = LocalCluster(os.environ.get("AGENT_RPC_FLEET_TEST_ROOT"))
        try:
            self.head = self.cluster.start_head("127.0.0.2", num_cpus=2)
            self.second = self.cluster.add_node("127.0.0.3", num_cpus=2, resources={"second": 1})
            ray.init(address=self.cluster.address, _node_ip_address=self.head.ip,
                     logging_level="warning", log_to_driver=False)
            wait_for(lambda: len(alive_nodes()) == 2, "both nodes to join")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if ray.is_initialized():
            ray.shutdown()
        self.cluster.stop()
        self.fake.stop()


def alive_nodes() -> List[Dict[str, Any]]:
    return [n for n in ray.nodes() if n.get("Alive")]


def node_of(ip: str) -> str:
    for node in alive_nodes():
        if node["NodeManagerAddress"] == ip:
            return node["NodeID"]
    raise AssertionError("no live node at %s" % ip)


def wait_for(check, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))


async def within(awaitable, timeout: float = TIMEOUT):
    return await asyncio.wait_for(awaitable, timeout)


def export_entries(data: bytes) -> List[Dict[str, Any]]:
    """The session entries of an export (its header line dropped)."""
    lines = data.decode("utf-8").splitlines()
    header = json.loads(lines[0])
    assert header.get("type") == "agent_rpc_export", header
    return [json.loads(line) for line in lines[1:]]


def user_texts(data: bytes) -> List[str]:
    """The text of each user message that a client typed (not tool results)."""
    texts = []
    for entry in export_entries(data):
        message = entry.get("message") if entry.get("type") == "message" else None
        if not message or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            text = "".join(b.get("text", "") for b in content if b.get("type") == "text")
            if text:
                texts.append(text)
    return texts


def group_pids(leaders: List[int]) -> List[int]:
    """Every live process in the process groups led by `leaders`."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.getpgid(int(name)) in leaders:
                    pids.append(int(name))
            except OSError:
                pass
    return pids


def environ_of(pid: int) -> Dict[str, str]:
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in pairs}


def socket_inodes(pids: List[int]) -> Dict[str, int]:
    """socket inode -> pid, for the sockets these processes hold."""
    found = {}
    for pid in pids:
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                found[target[8:-1]] = pid
    return found


def inet_sockets() -> List[Dict[str, str]]:
    """Every IPv4/IPv6 TCP and UDP socket of this network namespace:
    {proto, local, remote, inode}, addresses as `ip:port`."""
    out = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open("/proc/net/" + proto) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            out.append({"proto": proto, "local": _address(fields[1]), "remote": _address(fields[2]),
                        "inode": fields[9]})
    return out


def on_loopback(address: str) -> bool:
    """Whether `ip:port` is a loopback address or the unspecified one (a
    listening socket's local side, an unconnected socket's remote)."""
    ip = address.rsplit(":", 1)[0]
    return ip.startswith("127.") or ip in ("0.0.0.0", "::", "::1") or ip.startswith("::ffff:127.")


def _address(hex_address: str) -> str:
    import ipaddress
    import struct

    ip_hex, port_hex = hex_address.split(":")
    raw = bytes.fromhex(ip_hex)
    # /proc/net writes each 32-bit word in host (little-endian) order.
    words = struct.unpack("<%dI" % (len(raw) // 4), raw)
    packed = struct.pack(">%dI" % len(words), *words)
    ip = ipaddress.ip_address(packed)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return "%s:%d" % (ip, int(port_hex, 16))


def rpc_pids() -> List[int]:
    """The live processes running the `rpc` under test."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv0 = f.read().split(b"\0")[0]
            with open("/proc/%s/stat" % name) as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if argv0 == RPC.encode() and not zombie:
            found.append(int(name))
    return found

"""Ray nodes started on this machine that keep every packet on loopback.

Left to its defaults Ray probes a cloud metadata address, reports usage
statistics to its own server (even with them disabled) and rewrites
127.0.0.1 to the machine's outward address. A node started here avoids all
three: it binds a loopback address of its own (127.0.0.2, 127.0.0.3, ...),
runs without the dashboard, with usage statistics off and their report URL
pointed at a closed loopback port, with a HOME whose
`ray_bootstrap_config.yaml` names the local provider, on explicit ports
below the ephemeral range, in a private temp dir. Each node is one
`ray start --block` process group, stopped by its own process (never with
`ray stop`, which stops every Ray process on the machine).

`Fleet(address=None)` starts its head node this way; the fleet tests start
a two-node cluster with it.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Mapping, Optional

#: Ray's own processes read these; so must a driver that connects.
TELEMETRY_OFF = {
    "RAY_USAGE_STATS_ENABLED": "0",
    # A closed port on loopback: a report that is sent anyway goes nowhere.
    "RAY_USAGE_STATS_REPORT_URL": "http://127.0.0.1:9/",
    "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
}

#: The variables of this process a node started here keeps (and `RAY_*`).
NODE_ENV = frozenset({
    "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
    "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LD_LIBRARY_PATH",
})

#: Ports each node takes, counted from its base port; worker processes take
#: `WORKER_PORTS` more from base + 10. Bases stay below 32768, where Linux
#: starts handing out ephemeral ports, so no outgoing connection takes one.
WORKER_PORTS = 90
PORTS_PER_NODE = 10 + WORKER_PORTS
LOWEST_BASE = 20000
HIGHEST_BASE = 32768 - PORTS_PER_NODE

START_TIMEOUT = 60.0
STARTED_LINE = "Ray runtime started"


class ClusterError(RuntimeError):
    """A node could not be started; the message ends with its log's tail."""


class LocalNode:
    """One `ray start --block` process group."""

    def __init__(self, ip: str, base: int, temp_dir: str, log_path: str, proc: subprocess.Popen) -> None:
        self.ip = ip
        self.base = base
        self.temp_dir = temp_dir
        self.log_path = log_path
        self.proc = proc

    @property
    def gcs_address(self) -> str:
        return "%s:%d" % (self.ip, self.base)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole node at once (raylet, workers and everything
        they started in its process group): a machine that died."""
        self._signal(signal.SIGKILL)
        self._reap(10.0)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the node's processes, then SIGKILL what is left."""
        self._signal(signal.SIGTERM)
        if not self._reap(timeout):
            self._signal(signal.SIGKILL)
            self._reap(5.0)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _reap(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        # The group outlives its leader while any member runs.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.05)
        return False

    def log_tail(self, size: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - size))
                return f.read().decode("utf-8", "replace")
        except OSError as exc:
            return "(no log: %s)" % exc


class LocalCluster:
    """A Ray cluster of nodes on this machine's loopback addresses.

    `root` holds each node's temp dir and log, and the HOME given to Ray;
    a fresh temporary directory when None (removed by `stop`).
    """

    def __init__(self, root: Optional[str] = None) -> None:
        self._own_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="ray-", dir=short_temp_dir())
        self.home = os.path.join(self.root, "home")
        os.makedirs(self.home, exist_ok=True)
        with open(os.path.join(self.home, "ray_bootstrap_config.yaml"), "w") as f:
            f.write("provider: {type: local}\n")
        self.nodes: List[LocalNode] = []
        self.head: Optional[LocalNode] = None

    @property
    def address(self) -> str:
        if self.head is None:
            raise ClusterError("the cluster has no head node yet")
        return self.head.gcs_address

    def env(self) -> Dict[str, str]:
        """The environment Ray's processes run with: what finds programs and
        Python packages, the locale, Ray's own settings, and nothing else,
        so no credential of this process reaches the nodes (a fleet passes
        the variables it is told to through `runtime_env`)."""
        env = {k: v for k, v in os.environ.items() if k in NODE_ENV or k.startswith("RAY_")}
        env.update(TELEMETRY_OFF)
        env["HOME"] = self.home
        return env

    def start_head(self, ip: str = "127.0.0.2", num_cpus: Optional[int] = None,
                   resources: Optional[Mapping[str, float]] = None,
                   object_store_bytes: int = 256 * 1024 * 1024) -> LocalNode:
        extra = ["--head", "--include-dashboard", "false"]
        node = self._start(ip, extra, num_cpus, resources, object_store_bytes, head=True)
        self.head = node
        return node

    def add_node(self, ip: str, num_cpus: Optional[int] = None,
                 resources: Optional[Mapping[str, float]] = None,
                 object_store_bytes: int = 256 * 1024 * 1024) -> LocalNode:
        extra = ["--address", self.address]
        return self._start(ip, extra, num_cpus, resources, object_store_bytes, head=False)

    def stop(self) -> None:
        """Stop every node, workers first, then the head."""
        for node in reversed(self.nodes):
            node.stop()
        self.nodes.clear()
        self.head = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _start(self, ip: str, extra: List[str], num_cpus: Optional[int],
               resources: Optional[Mapping[str, float]], object_store_bytes: int,
               head: bool) -> LocalNode:
        base = free_port_base(ip)
        temp_dir = os.path.join(self.root, ip)
        os.makedirs(temp_dir, exist_ok=True)
        log_path = os.path.join(self.root, "node-%s.log" % ip)
        args = ray_command() + ["start", "--block"] + extra + node_flags(ip, base, temp_dir, head)
        args += ["--object-store-memory", str(object_store_bytes)]
        if num_cpus is not None:
            args += ["--num-cpus", str(num_cpus)]
        if resources:
            import json

            args += ["--resources", json.dumps(dict(resources))]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(args, env=self.env(), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        node = LocalNode(ip, base, temp_dir, log_path, proc)
        self.nodes.append(node)
        wait_started(node)
        return node


def short_temp_dir() -> Optional[str]:
    """The temp dir, unless its path is so long that Ray's socket paths
    under it would pass the 107 bytes AF_UNIX allows: then /tmp."""
    # Ray adds about 85 bytes: /ray-XXXXXXXX/<ip>/session_<date>_<pid>/sockets/plasma_store.
    return None if len(tempfile.gettempdir()) <= 20 else "/tmp"


def node_flags(ip: str, base: int, temp_dir: str, head: bool) -> List[str]:
    """Every port a node opens, pinned from `base`, and the flags that keep
    it quiet. Only a head node takes `--port` (its GCS)."""
    flags = [
        "--node-ip-address", ip,
        "--object-manager-port", str(base + 1),
        "--node-manager-port", str(base + 2),
        "--dashboard-agent-listen-port", str(base + 3),
        "--dashboard-agent-grpc-port", str(base + 4),
        "--runtime-env-agent-port", str(base + 5),
        "--metrics-export-port", str(base + 6),
        "--min-worker-port", str(base + 10),
        "--max-worker-port", str(base + 10 + WORKER_PORTS - 1),
        "--disable-usage-stats",
        "--temp-dir", temp_dir,
    ]
    if head:
        flags += ["--port", str(base)]
    return flags


def ray_command() -> List[str]:
    """Ray's CLI from the Ray this interpreter imports (not whatever `ray`
    is first on PATH)."""
    return [sys.executable, "-c", "import sys; from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()"]


def free_port_base(ip: str) -> int:
    """A base port below the ephemeral range whose first ten ports are free
    on `ip` (the worker ports are checked by Ray as it uses them)."""
    for base in range(LOWEST_BASE + (os.getpid() % 50) * PORTS_PER_NODE, HIGHEST_BASE, PORTS_PER_NODE):
        if all(port_free(ip, base + i) for i in range(7)):
            return base
    raise ClusterError("no free ports between %d and 32768 on %s" % (LOWEST_BASE, ip))


def port_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


def wait_started(node: LocalNode, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if STARTED_LINE in node.log_tail(1 << 20):
            return
        if not node.alive():
            raise ClusterError("ray start on %s exited (%s):\n%s" % (node.ip, node.proc.returncode, node.log_tail()))
        time.sleep(0.1)
    node.stop()
    raise ClusterError("ray start on %s did not finish in %.0f s:\n%s" % (node.ip, timeout, node.log_tail()))

"""A real multi-node Ray cluster on this machine for the tests: one head and worker nodes, each its own
``ray start --block`` process (its own raylet, object store and workers), with a node resource each
(``node_head``, ``node_a``, ``node_b``) so placement can be checked and a node can be stopped alone.

Everything lives under one private temp dir (``--temp-dir`` per node), so the cluster never meets another
Ray on the machine, and teardown ends exactly the processes this cluster started: the ``ray start`` process
groups, then any process whose command line names the temp dir (raylet workers that left their group).
``ray stop`` is not used: it would stop every Ray on the machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
OBJECT_STORE_BYTES = 100_000_000
# Node failure detection of the GCS (Ray's defaults: a check every 3 s, dead after 5 misses). Kept at the
# defaults' order of magnitude; the failover bound measured in the tests includes this detection time.
HEAD_ENV = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "5"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RayNode:
    """One ``ray start --block`` process (a node), its resource name and log file."""

    name: str
    proc: subprocess.Popen
    log_path: Path

    def kill(self) -> None:
        """SIGKILL the node's processes, all at once (a machine that dies: nothing is drained). Ray starts its
        raylet and agents in sessions of their own, so the process tree is followed, not the group."""
        for pid in [*descendants(self.proc.pid), self.proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)


@dataclass
class LocalRayCluster:
    """A head and worker nodes started by `start`, stopped by `stop` (see the module docstring)."""

    temp_dir: Path
    port: int = field(default_factory=free_port)
    nodes: dict[str, RayNode] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start_node(self, name: str, args: list[str], env: dict[str, str] | None = None) -> RayNode:
        log_path = self.temp_dir / f"ray-start-{name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [RAY, "start", "--block", "--num-cpus=1", f"--resources={{\"{name}\": 1}}",
                 f"--object-store-memory={OBJECT_STORE_BYTES}", f"--temp-dir={self.temp_dir}",
                 "--node-ip-address=127.0.0.1", "--disable-usage-stats", *args],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})})
        node = RayNode(name, proc, log_path)
        self.nodes[name] = node
        return node

    def start(self, namespace: str, workers: tuple[str, ...] = ("node_a", "node_b"),
              timeout_s: float = 90.0) -> "LocalRayCluster":
        """Start the head, connect this process to it as a driver, start the worker nodes, wait for them."""
        self._start_node("node_head", ["--head", f"--port={self.port}", "--include-dashboard=false"], HEAD_ENV)
        self.connect(namespace, timeout_s)
        # One at a time: nodes started together on one machine can pick the same free port and fail to bind.
        for i, name in enumerate(workers):
            self._start_node(name, [f"--address={self.address}"])
            self._wait_for_nodes(2 + i, timeout_s)
        return self

    def alive_node_resources(self) -> set[str]:
        """The node resource names (``node_head``, ...) of the nodes the GCS counts as alive (needs the
        calling process connected: `connect`)."""
        import ray

        return {k for n in ray.nodes() if n["Alive"] for k in n["Resources"] if k.startswith("node_")}

    def connect(self, namespace: str, timeout_s: float = 60.0) -> None:
        """Connect this process to the cluster as a driver (retried while the head is coming up)."""
        import ray

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                ray.init(address=self.address, namespace=namespace, log_to_driver=False)
                return
            except (ConnectionError, RuntimeError, TimeoutError) as exc:
                ray.shutdown()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"cannot connect to the Ray head at {self.address}: {exc}") from exc
                self._check_running()
                time.sleep(1.0)

    def _check_running(self) -> None:
        for node in self.nodes.values():
            if node.proc.poll() is not None:
                raise RuntimeError(f"ray node {node.name} exited ({node.proc.returncode}): "
                                   f"{node.log_path.read_text(errors='replace')[-2000:]}")

    def _wait_for_nodes(self, n: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_running()
            if len(self.alive_node_resources()) >= n:
                return
            time.sleep(0.5)
        raise TimeoutError(f"the Ray cluster did not reach {n} nodes in {timeout_s:.0f} s")

    def stop(self) -> None:
        """End every process this cluster started, whatever state it is in, and remove its temp dir."""
        for node in reversed(list(self.nodes.values())):
            node.kill()
        for pid in pids_naming(str(self.temp_dir)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` in the process tree (from /proc; Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name in parentheses may hold spaces
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def pids_naming(marker: str) -> list[int]:
    """Processes of this user whose command line contains `marker` (read from /proc; Linux)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def new_temp_dir() -> Path:
    # Short: Ray puts unix sockets under it (the path of a socket is limited to about 100 bytes).
    return Path(tempfile.mkdtemp(prefix="swray-", dir="/tmp"))

#!/usr/bin/env python3
"""What the Ray fleet (agent_rpc.fleet) costs, on this machine, against the
fake HTTP model server. Not part of `cargo bench` (it needs Ray: run it with
the venv `cargo test` makes for the fleet tests).

    target/tmp/python-ray/bin/python benches/fleet.py target/release/rpc [runs]

1. Per-task overhead: the same 40 tool-calling tasks run by the plain
   binding (an `AgentClient` per task, 6 at a time) and by a one-node fleet
   (`agents_per_node=6`): wall time for all 40, and the mean per task.
2. 200 queued tasks (`[[n=20 delay_ms=20]]`, ~0.5 s of streaming each) on a
   one-node fleet at 8 and at 32 agents: the driver's, the worker's and the
   rpc children's memory at the busiest moment, tasks per second, and the
   machine's CPU over the run (how many agents a node holds before memory
   or CPU runs out).

Everything stays on loopback (the fleet's own local cluster).
"""

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bindings/python"))
# The fleet's nodes import agent_rpc from here too.
os.environ["PYTHONPATH"] = os.path.join(REPO, "bindings/python")

from agent_rpc import AgentClient  # noqa: E402
from agent_rpc.fleet import Fleet  # noqa: E402

RPC = os.path.abspath(sys.argv[1])
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
MODEL = "claude-sonnet-5-5"
KEY = "bench-key"


def tool_prompt(i):
    return 'task %d [[tool=bash input={"command": "echo $((%d*7))"}]]' % (i, i)


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def rpc_children_kb():
    total, count = 0, 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv0 = f.read().split(b"\0")[0]
        except OSError:
            continue
        if argv0 == RPC.encode():
            total += rss_kb(int(name))
            count += 1
    return count, total


def cpu_ticks():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


async def plain(prompts, concurrency, data_dir):
    gate = asyncio.Semaphore(concurrency)
    times = []

    async def one(prompt):
        async with gate:
            started = time.monotonic()
            args = ["--data-dir", data_dir, "--model", MODEL, "--permission-mode", "allow-all"]
            async with AgentClient(RPC, args, cwd=data_dir) as client:
                await client.prompt(prompt)
            times.append(time.monotonic() - started)

    started = time.monotonic()
    await asyncio.gather(*(one(p) for p in prompts))
    return time.monotonic() - started, statistics.mean(times)


async def fleet_run(fleet, prompts):
    started = time.monotonic()
    tasks = fleet.map(prompts, model=MODEL)
    submitted = {t.key: time.monotonic() for t in tasks}
    ends = {}

    async def wait(task):
        await task.result()
        ends[task.key] = time.monotonic()

    await asyncio.gather(*(wait(t) for t in tasks))
    return time.monotonic() - started, statistics.mean(ends[k] - submitted[k] for k in ends)


async def overhead(fake_url):
    scratch = tempfile.TemporaryDirectory(prefix="fleet-bench-")
    data = scratch.name
    prompts = [tool_prompt(i) for i in range(40)]
    rows = {"plain": [], "fleet": []}
    async with Fleet(rpc_binary=RPC, agents_per_node=6, data_dir=os.path.join(data, "fleet"),
                     env_vars=("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY")) as fleet:
        await fleet_run(fleet, prompts[:6])  # warm the worker
        for _ in range(RUNS):
            rows["plain"].append(await plain(prompts, 6, data))
            rows["fleet"].append(await fleet_run(fleet, prompts))
    for name, samples in rows.items():
        wall = statistics.median(s[0] for s in samples)
        per = statistics.median(s[1] for s in samples)
        print("| 40 tasks, %s | %.2f s | %.0f ms per task (submit → result) |" % (name, wall, per * 1000))
    scratch.cleanup()
    extra = statistics.median(f[0] - p[0] for f, p in zip(rows["fleet"], rows["plain"])) / 40
    print("| fleet overhead | %.1f ms per task (wall, 6 at a time) | |" % (extra * 1000))


async def queued(agents):
    scratch = tempfile.TemporaryDirectory(prefix="fleet-bench-")
    async with Fleet(rpc_binary=RPC, agents_per_node=agents, data_dir=scratch.name,
                     env_vars=("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY")) as fleet:
        await fleet_run(fleet, ["warm [[n=2]]"])
        busy, idle = cpu_ticks()
        peak = {"driver": 0, "worker": 0, "children": 0, "count": 0}
        started = time.monotonic()
        tasks = fleet.map(["q %d [[n=20 delay_ms=20]]" % i for i in range(200)], model=MODEL)
        done = asyncio.ensure_future(asyncio.gather(*(t.result() for t in tasks)))
        while not done.done():
            stats = await fleet.stats()
            count, children = rpc_children_kb()
            peak["driver"] = max(peak["driver"], rss_kb(os.getpid()))
            peak["worker"] = max([peak["worker"]] + [w["rss_kb"] for w in stats["workers"].values()])
            if children > peak["children"]:
                peak["children"], peak["count"] = children, count
            await asyncio.sleep(0.2)
        await done
        wall = time.monotonic() - started
        busy2, idle2 = cpu_ticks()
        cpu = (busy2 - busy) / max(1, idle2 - idle)
        print("| 200 queued, %d agents | %.1f s (%.1f tasks/s) | driver %.0f MiB, worker %.0f MiB, "
              "%d rpc children %.0f MiB (%.1f MiB each); machine CPU %.0f%% |" % (
                  agents, wall, 200 / wall, peak["driver"] / 1024, peak["worker"] / 1024, peak["count"],
                  peak["children"] / 1024, peak["children"] / 1024 / max(1, peak["count"]), cpu * 100))
    scratch.cleanup()


def main():
    fake = subprocess.Popen([sys.executable, os.path.join(REPO, "fixtures/http/fake_llm.py"), "--api-key", KEY],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    port = int(fake.stdout.readline().split()[1])
    os.environ.update(ANTHROPIC_BASE_URL="http://127.0.0.1:%d" % port, ANTHROPIC_API_KEY=KEY)
    try:
        print("| row | time | detail |\n|---|---|---|")
        asyncio.run(overhead(os.environ["ANTHROPIC_BASE_URL"]))
        import ray
        ray.shutdown()
        for agents in (8, 32):
            asyncio.run(queued(agents))
            ray.shutdown()
    finally:
        fake.kill()


if __name__ == "__main__":
    main()

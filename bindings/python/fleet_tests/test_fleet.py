"""agent_rpc.fleet on a real two-node Ray cluster (loopback only), with the
fake HTTP model server and the real `rpc` binary ($AGENT_RPC_BINARY).

One cluster serves the whole module; each test makes its own Fleet. The
node-death test runs last (unittest sorts tests by name) and puts a new
node in the dead one's place.
"""

import asyncio
import os
import time
import unittest

import ray

from agent_rpc.fleet import Fleet, FleetError, NodeLost, TaskFailed

from .support import (API_KEY, MODEL, RPC, World, alive_nodes, environ_of, group_pids, inet_sockets, node_of,
                      on_loopback, rpc_pids, socket_inodes, user_texts, wait_for, within)

WORLD = None
SECRETS = ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY")


def setUpModule() -> None:
    global WORLD
    WORLD = World()


def tearDownModule() -> None:
    if WORLD is not None:
        WORLD.stop()


def tool_prompt(i: int) -> str:
    return 'task %d [[tool=bash input={"command": "echo $((%d*7))"}]]' % (i, i)


class FleetTests(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        # The Fleet's constructor and a node's kill block the loop on purpose.
        asyncio.get_running_loop().slow_callback_duration = 10.0

    async def fleet(self, **kwargs) -> Fleet:
        kwargs.setdefault("agents_per_node", 3)
        kwargs.setdefault("env_vars", SECRETS)
        # Inside the cluster's dir, which the harness removes: not in /tmp.
        kwargs.setdefault("data_dir", os.path.join(WORLD.cluster.root, "data"))
        fleet = Fleet(WORLD.cluster.address, rpc_binary=RPC, **kwargs)
        self.addAsyncCleanup(fleet.close)
        return fleet

    async def test_a_forty_tasks_complete_right_and_use_both_nodes(self) -> None:
        fleet = await self.fleet()
        tasks = fleet.map([tool_prompt(i) for i in range(40)], model=MODEL)
        results = await within(asyncio.gather(*(t.result() for t in tasks)), 180)
        for i, result in enumerate(results):
            self.assertEqual(result.stop_reason, "end_turn", result)
            # The tool ran on the node and its output came back to the model.
            self.assertIn("tool result:", result.text)
            self.assertIn(str(i * 7), result.text)
            self.assertEqual(result.attempts, 1)
        self.assertEqual({r.node_id for r in results}, set(fleet.nodes))
        self.assertEqual(len(fleet.nodes), 2)
        stats = await fleet.stats()
        for node, worker in stats["workers"].items():
            self.assertLessEqual(worker["peak"], 3, "node %s ran more than agents_per_node" % node)
            self.assertGreaterEqual(worker["peak"], 1)
        # Each session holds its one prompt, once; the key is not in it.
        data = await within(asyncio.gather(*(r.session for r in results[:5])))
        for i, blob in enumerate(data):
            self.assertEqual(user_texts(blob), [tool_prompt(i)])
            self.assertNotIn(API_KEY.encode(), blob)

    async def test_b_a_session_continues_on_the_other_node(self) -> None:
        fleet = await self.fleet()
        head, second = node_of("127.0.0.2"), node_of("127.0.0.3")
        first = await within(fleet.submit("remember the word kestrel", model=MODEL, node_id=head).result())
        self.assertEqual(first.node_id, head)
        # The form: the result's reference (README shows the result itself).
        again = fleet.submit("what was the word?", model=MODEL, session=first.session, node_id=second)
        second_result = await within(again.result())
        self.assertEqual(second_result.node_id, second)
        self.assertEqual(second_result.session_id, first.session_id)
        blob = await within(second_result.session)
        self.assertEqual(user_texts(blob), ["remember the word kestrel", "what was the word?"])
        # The model was sent the earlier turn along with the new prompt.
        last = [r for r in WORLD.fake.requests() if r["path"] == "/v1/messages"][-1]
        sent = str(last["body"]["messages"])
        self.assertIn("remember the word kestrel", sent)
        self.assertIn("what was the word?", sent)

    async def test_c_cancel_ends_the_turn_within_a_second(self) -> None:
        fleet = await self.fleet()
        task = fleet.submit("[[n=400 delay_ms=50]]", model=MODEL)
        seen = 0
        async for frame in task.events():
            if frame["type"] == "message_update":
                seen += 1
                if seen == 3:
                    break
        started = time.monotonic()
        task.cancel()
        result = await within(task.result())
        elapsed = time.monotonic() - started
        self.assertEqual(result.stop_reason, "cancelled")
        self.assertLess(elapsed, 1.0, "cancel took %.2f s" % elapsed)
        print("\ncancel -> result: %.0f ms" % (elapsed * 1000))
        # The host saved the session: the prompt is in it.
        blob = await within(result.session)
        self.assertEqual(len(user_texts(blob)), 1)

    async def test_d_a_queued_task_cancels_at_once(self) -> None:
        fleet = await self.fleet(agents_per_node=1)
        busy = [fleet.submit("[[n=20 delay_ms=50]]", model=MODEL) for _ in range(2)]
        queued = fleet.submit("never runs", model=MODEL)
        await asyncio.sleep(0)
        queued.cancel()
        result = await within(queued.result())
        self.assertEqual(result.stop_reason, "cancelled")
        self.assertIsNone(result.session)
        for task in busy:
            self.assertEqual((await within(task.result())).stop_reason, "end_turn")

    async def test_e_a_slow_consumer_holds_the_agent_back(self) -> None:
        buffer = 8
        fleet = await self.fleet(event_buffer=buffer)
        task = fleet.submit("[[n=2000 delta=x]]", model=MODEL)
        events = task.events()
        first = [await within(events.__anext__()) for _ in range(5)]
        self.assertEqual(first[0]["type"], "agent_start")
        await asyncio.sleep(2.0)  # the consumer stalls
        stats = await within(fleet.stats())
        produced = sum(w["frames"].get(task.key, 0) for w in stats["workers"].values())
        # Frames in flight: Ray's window of `buffer` batches of at most
        # `buffer` frames, the driver's buffer, the batch in its hand, the
        # worker's batch and client buffer, plus the 5 read: far fewer than
        # the 2000 deltas.
        self.assertLess(produced, 5 + (buffer + 5) * buffer, stats)
        self.assertFalse(task.done())
        deltas = 0
        async for frame in events:
            if frame["type"] == "message_update":
                deltas += 1
        self.assertEqual(deltas + sum(f["type"] == "message_update" for f in first), 2000)
        self.assertEqual((await within(task.result())).stop_reason, "end_turn")

    async def test_f_permission_policies(self) -> None:
        asked = []

        def policy(frame):
            asked.append(frame["tool"])
            return ("deny", "not on the fleet")

        fleet = await self.fleet(permission=policy)
        write = 'write it [[tool=write input={"path": "out.txt", "content": "x"}]]'
        result = await within(fleet.submit(write, model=MODEL).result())
        self.assertEqual(len(asked), 1, asked)
        self.assertIn("tool error", result.text)
        self.assertIn("not on the fleet", result.text)

        read_only = await self.fleet(permission="read-only")
        result = await within(read_only.submit(write, model=MODEL).result())
        self.assertIn("tool error", result.text)
        self.assertIn("read-only", result.text)

    async def test_g_a_provider_error_fails_the_task_once(self) -> None:
        fleet = await self.fleet()
        task = fleet.submit("[[fail=400 fail_times=999 id=fleet]]", model=MODEL)
        with self.assertRaises(TaskFailed) as caught:
            await within(task.result())
        self.assertEqual(caught.exception.code, "provider_error")
        self.assertEqual(task.attempts, 1)
        # What the turn stored can still be continued.
        self.assertIsNotNone(caught.exception.result["session"])

    async def test_h_a_crashed_rpc_reports_its_stderr(self) -> None:
        fleet = await self.fleet()
        task = fleet.submit("hello", model=MODEL, args=["--no-such-flag"])
        with self.assertRaises(TaskFailed) as caught:
            await within(task.result())
        self.assertEqual(caught.exception.code, "rpc_crashed")
        self.assertIn("--no-such-flag", caught.exception.stderr)
        self.assertIn("--no-such-flag", str(caught.exception))

    async def test_h1_an_rpc_that_never_answers_fails_in_time(self) -> None:
        hung = os.path.join(WORLD.cluster.root, "hung-rpc")
        with open(hung, "w") as f:
            f.write("#!/bin/sh\nexec sleep 600\n")
        os.chmod(hung, 0o755)
        fleet = Fleet(WORLD.cluster.address, rpc_binary=hung, env_vars=SECRETS, reply_timeout=2.0,
                      data_dir=os.path.join(WORLD.cluster.root, "data"))
        self.addAsyncCleanup(fleet.close)
        started = time.monotonic()
        with self.assertRaises(TaskFailed) as caught:
            await within(fleet.submit("hello", model=MODEL).result())
        self.assertEqual(caught.exception.code, "rpc_unresponsive")
        self.assertIn("2 s", str(caught.exception))
        # The timeout, then close()'s SIGTERM after its 5 s grace.
        self.assertLess(time.monotonic() - started, 20)

    async def test_h2_bad_arguments_are_refused(self) -> None:
        with self.assertLogs("agent_rpc.fleet", "WARNING") as logs:
            await self.fleet(env_vars=SECRETS + ("AGENT_RPC_NO_SUCH_VAR",))
        self.assertIn("AGENT_RPC_NO_SUCH_VAR", logs.output[0])
        with self.assertRaises(ValueError):
            Fleet(WORLD.cluster.address, rpc_binary=RPC, permission="ask-me")
        fleet = await self.fleet()
        with self.assertRaises(FleetError):
            fleet.submit("x", node_id="not-a-node")
        with self.assertRaises(FleetError):
            await self.fleet(resources={"gpu_that_no_node_has": 1})

    async def test_i_ray_resources_choose_the_nodes(self) -> None:
        # Only the second node has the `second` resource: 2 agents x 0.25.
        fleet = await self.fleet(agents_per_node=2, resources={"second": 0.25}, num_cpus=0.5)
        second = node_of("127.0.0.3")
        self.assertEqual(fleet.nodes, [second])
        results = await within(asyncio.gather(*(t.result() for t in fleet.map(["a", "b", "c"], model=MODEL))))
        self.assertEqual({r.node_id for r in results}, {second})
        stats = await within(fleet.stats())
        self.assertLessEqual(stats["workers"][second]["peak"], 2)
        # The worker holds its agents' share in Ray's books.
        available = ray.available_resources()
        self.assertAlmostEqual(available.get("second", 0.0), 0.5)

    async def test_j_close_stops_the_agents_still_running(self) -> None:
        fleet = Fleet(WORLD.cluster.address, rpc_binary=RPC, env_vars=SECRETS,
                      data_dir=os.path.join(WORLD.cluster.root, "data"))
        task = fleet.submit("[[n=400 delay_ms=50]]", model=MODEL)
        events = task.events()
        self.assertEqual((await within(events.__anext__()))["type"], "agent_start")
        self.assertTrue(rpc_pids())
        await within(fleet.close(), 30)
        with self.assertRaises(FleetError):
            await within(task.result())
        wait_for(lambda: not rpc_pids(), "the agents to end", 10)
        with self.assertRaises(FleetError):
            fleet.submit("after close")

    async def test_y_every_socket_is_on_loopback_and_no_key_in_node_envs(self) -> None:
        fleet = await self.fleet()
        result = await within(fleet.submit(tool_prompt(3), model=MODEL).result())
        self.assertIn("21", result.text)
        pids = group_pids([WORLD.head.proc.pid, WORLD.second.proc.pid]) + [os.getpid()]
        self.assertGreater(len(pids), 6)
        inodes = socket_inodes(pids)
        mine = [s for s in inet_sockets() if s["inode"] in inodes]
        self.assertTrue(mine, "found none of the cluster's sockets")
        off = [s for s in mine if not (on_loopback(s["local"]) and on_loopback(s["remote"]))]
        self.assertEqual(off, [], "sockets off loopback")
        # Nodes were started without the driver's credentials; only the
        # fleet's runtime_env gives the workers the key.
        for pid in group_pids([WORLD.head.proc.pid, WORLD.second.proc.pid]):
            env = environ_of(pid)
            if "ANTHROPIC_API_KEY" in env:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    argv = f.read().split(b"\0")
                # The fleet's workers (and Ray's idle workers of their
                # runtime_env), and the agents they start.
                self.assertTrue(b"FleetWorker" in argv[0] or b"IDLE" in argv[0] or argv[0] == RPC.encode(),
                                (pid, argv))

    async def test_z_a_dead_node_s_tasks_finish_elsewhere_once(self) -> None:
        fleet = await self.fleet(agents_per_node=3)
        second = node_of("127.0.0.3")
        prompts = ["slow %d [[n=40 delay_ms=50]]" % i for i in range(12)]
        tasks = fleet.map(prompts, model=MODEL)
        retried_at = {}
        noticed = []
        killed = 0.0

        async def watch(task):
            async for frame in task.events():
                if frame["type"] == "fleet_retry":
                    retried_at[task.key] = time.monotonic()
                    noticed.append(retried_at[task.key] - killed)
                elif frame["type"] == "agent_start" and task.key in retried_at:
                    retried_at[task.key] = time.monotonic() - retried_at[task.key]

        watchers = [asyncio.ensure_future(watch(t)) for t in tasks]
        await within(self._running_on(fleet, second))
        pinned = fleet.submit("only there", model=MODEL, node_id=second)  # queued: it is full
        killed = time.monotonic()
        WORLD.second.kill()
        results = await within(asyncio.gather(*(t.result() for t in tasks)), 180)
        with self.assertRaises(NodeLost):
            await within(pinned.result())
        await within(asyncio.gather(*watchers))
        moved = [t for t in tasks if t.attempts == 2]
        self.assertTrue(moved, "no task was running on the killed node")
        for task, result in zip(tasks, results):
            self.assertEqual(result.stop_reason, "end_turn")
            if task in moved:
                self.assertNotEqual(result.node_id, second)
            blob = await within(result.session)
            self.assertEqual(user_texts(blob), [task.prompt], "the turn must be stored once")
        recovery = max(time.monotonic() - killed, 0)
        print("\nnode death: %d tasks moved; noticed %.2f s after the kill, running again "
              "%.2f s after that; all %d done %.1f s after the kill" % (
                  len(moved), max(noticed), max(retried_at.values()), len(tasks), recovery))
        self.assertEqual(fleet.nodes, [node_of("127.0.0.2")])

        # A node that joins later gets a worker and takes tasks.
        WORLD.cluster.add_node("127.0.0.4", num_cpus=2)
        wait_for(lambda: any(n["NodeManagerAddress"] == "127.0.0.4" for n in alive_nodes()),
                 "the new node to join")
        newcomer = node_of("127.0.0.4")
        await asyncio.sleep(5.5)  # the fleet looks for new nodes at most every 5 s
        later = await within(asyncio.gather(*(t.result() for t in fleet.map(["x"] * 8, model=MODEL))), 120)
        self.assertIn(newcomer, fleet.nodes)
        self.assertIn(newcomer, {r.node_id for r in later})

    async def _running_on(self, fleet: Fleet, node: str) -> None:
        while True:
            stats = await fleet.stats()
            if stats["workers"].get(node, {}).get("running", 0) > 0:
                frames = stats["workers"][node]["frames"]
                if frames and min(frames.values()) >= 3:
                    return
            await asyncio.sleep(0.05)


if __name__ == "__main__":
    unittest.main()

"""The process dying, and a host that breaks the protocol."""

import asyncio
import os
import signal
import time

from agent_rpc import AgentClient, ProcessExited, ProtocolError

from .support import SLOW, HostTestCase, collect, fake_host, within

READY = (
    '{"type":"ready","protocol_version":1,"version":"0","session_id":"s","model":null,'
    '"cwd":"/","message_count":0,"usage":{"input_tokens":0,"output_tokens":0,'
    '"cache_read_input_tokens":0,"cache_creation_input_tokens":0}}'
)


class ProcessDeathTest(HostTestCase):
    async def test_sigkill_mid_turn_fails_everything_pending(self):
        client = await self.started(model=SLOW)
        turn = client.prompt("go")  # ~2 s of deltas
        queued = client.follow_up("and then")
        first = await within(turn.__anext__())
        self.assertEqual(first["type"], "agent_start")
        os.kill(client.pid, signal.SIGKILL)
        with self.assertRaises(ProcessExited) as caught:
            await collect(turn)
        error = caught.exception
        self.assertEqual(error.code, "process_exited")
        self.assertEqual(error.returncode, -signal.SIGKILL)
        self.assertIn("killed by signal 9 (SIGKILL)", error.message)
        with self.assertRaises(ProcessExited):
            await within(queued)
        with self.assertRaises(ProcessExited):
            await within(client.get_state())

    async def test_exit_status_and_stderr_tail_are_named(self):
        binary, args = fake_host(
            "import sys, time\n"
            "print(%r, flush=True)\n"
            "sys.stdin.readline()\n"
            "sys.stderr.write('x' * 100000 + '\\nboom: the host fell over\\n')\n"
            "sys.exit(7)\n" % READY
        )
        client = AgentClient(binary=binary, args=args)
        await within(client.start())
        self.addAsyncCleanup(self._close, client)
        with self.assertRaises(ProcessExited) as caught:
            await within(client.get_state())
        error = caught.exception
        self.assertEqual(error.returncode, 7)
        self.assertIn("exited with status 7", error.message)
        self.assertIn("boom: the host fell over", error.message)
        self.assertTrue(error.stderr_tail.endswith("boom: the host fell over\n"))
        self.assertLessEqual(len(error.stderr_tail), 64 * 1024)

    async def test_a_frame_cut_short_by_death_is_process_exited(self):
        binary, args = fake_host(
            "import sys\n"
            "print(%r, flush=True)\n"
            "sys.stdin.readline()\n"
            "sys.stdout.write('{\"type\":\"response\",\"id\":\"py-1\",\"comm')\n"
            "sys.exit(9)\n" % READY
        )
        client = AgentClient(binary=binary, args=args)
        await within(client.start())
        self.addAsyncCleanup(self._close, client)
        with self.assertRaises(ProcessExited) as caught:
            await within(client.get_state())
        self.assertEqual(caught.exception.returncode, 9)

    async def test_non_json_stdout_is_a_protocol_error(self):
        binary, args = fake_host(
            "import sys, time\n"
            "print(%r, flush=True)\n"
            "sys.stdin.readline()\n"
            "print('Segmentation fault? no: a stray println', flush=True)\n"
            "time.sleep(60)\n" % READY
        )
        client = AgentClient(binary=binary, args=args, close_timeout=1)
        await within(client.start())
        self.addAsyncCleanup(self._close, client)
        with self.assertRaises(ProtocolError) as caught:
            await within(client.get_state())
        self.assertIn("stray println", caught.exception.message)
        with self.assertRaises(ProtocolError):
            await within(client.get_state())
        await within(client.close())
        self.assertEqual(client.returncode, -signal.SIGKILL)

    async def test_close_ends_a_host_stuck_in_a_turn(self):
        client = await self.started(model=SLOW, close_timeout=0.2)
        turn = client.prompt("forever [[endless=1 delay_ms=20]]")
        await within(turn.__anext__())
        started = time.monotonic()
        await within(client.close())
        self.assertLess(time.monotonic() - started, 10)
        # SIGTERM after close_timeout: the host aborts the turn, answers it
        # (SPEC §6) and exits 0
        self.assertEqual(client.returncode, 0)
        response = await within(turn)
        self.assertTrue(response["cancelled"])
        self.assertEqual(response["stop_reason"], "aborted")

    async def test_a_cancelled_start_leaves_no_process(self):
        binary, args = fake_host("import time\ntime.sleep(60)\n")  # never ready
        client = AgentClient(binary=binary, args=args)
        with self.assertRaises(asyncio.TimeoutError):
            await asyncio.wait_for(client.start(), 0.5)
        await within(client.close())
        self.assertEqual(client.returncode, -signal.SIGKILL)

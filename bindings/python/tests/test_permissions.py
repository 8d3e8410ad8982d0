"""Permission requests answered by on_permission (SPEC §9.3)."""

import asyncio

from .support import HostTestCase, collect, within

WRITE_A = 'write it [[tool=write input={"path":"a.txt","content":"x"}]]'


def tool_end(frames):
    (end,) = [f for f in frames if f["type"] == "tool_execution_end"]
    return end


class PermissionTest(HostTestCase):
    async def test_allow_writes_the_file(self):
        asked = []

        async def allow(request):
            asked.append(request)
            return "allow_once"

        client = await self.started(on_permission=allow)
        frames = await collect(client.prompt(WRITE_A))
        self.assertEqual((self.work / "a.txt").read_text(), "x")
        self.assertEqual(len(asked), 1)
        self.assertEqual(asked[0]["tool"], "write")
        self.assertEqual(asked[0]["input"], {"path": "a.txt", "content": "x"})
        self.assertIn("permission_request", [f["type"] for f in frames])
        self.assertFalse(tool_end(frames)["is_error"])
        self.assertTrue(frames[-1]["ok"])

    async def test_deny_with_message_keeps_the_turn_going(self):
        async def deny(request):
            return ("deny", "not in this directory")

        client = await self.started(on_permission=deny)
        frames = await collect(client.prompt(WRITE_A))
        self.assertFalse((self.work / "a.txt").exists())
        end = tool_end(frames)
        self.assertTrue(end["is_error"])
        self.assertIn("not in this directory", end["result"])
        self.assertEqual(frames[-2]["type"], "agent_end")
        self.assertTrue(frames[-1]["ok"])
        self.assertEqual(frames[-1]["stop_reason"], "end_turn")

    async def test_no_handler_denies_with_a_clear_message(self):
        client = await self.started()
        frames = await collect(client.prompt(WRITE_A))
        self.assertFalse((self.work / "a.txt").exists())
        self.assertIn("no permission handler in the Python client", tool_end(frames)["result"])
        self.assertTrue(frames[-1]["ok"])

    async def test_a_handler_that_raises_denies_with_its_text(self):
        async def broken(request):
            raise ValueError("the dialog crashed")

        client = await self.started(on_permission=broken)
        frames = await collect(client.prompt(WRITE_A))
        self.assertFalse((self.work / "a.txt").exists())
        self.assertIn("the dialog crashed", tool_end(frames)["result"])
        self.assertTrue(frames[-1]["ok"])

    async def test_a_synchronous_handler_and_allow_always(self):
        client = await self.started(on_permission=lambda request: "allow_always")
        await collect(client.prompt(WRITE_A))
        self.assertTrue((self.work / "a.txt").exists())

    async def test_an_invalid_answer_denies(self):
        async def maybe(request):
            return "maybe"

        client = await self.started(on_permission=maybe)
        frames = await collect(client.prompt(WRITE_A))
        self.assertFalse((self.work / "a.txt").exists())
        self.assertIn("'maybe'", tool_end(frames)["result"])

    async def test_abort_cancels_the_pending_handler(self):
        asked = asyncio.Event()
        cancelled = asyncio.Event()

        async def never(request):
            asked.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return "allow_once"

        client = await self.started(on_permission=never)
        turn = client.prompt(WRITE_A)
        await within(asked.wait())
        await within(client.abort())
        frames = await collect(turn)
        await within(cancelled.wait())
        kinds = [f["type"] for f in frames]
        self.assertIn("permission_cancelled", kinds)
        self.assertTrue(turn.response["cancelled"])
        self.assertFalse((self.work / "a.txt").exists())

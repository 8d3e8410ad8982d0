"""AgentClient against the real host and the echo / slow fixture providers."""

import asyncio

from agent_rpc import AgentClient, NotStarted, ProcessExited, Ready, RpcError, Turn

from .support import SLOW, HostTestCase, collect, text_of, within

class StreamingTest(HostTestCase):
    async def test_streamed_prompt_then_get_state(self):
        client = await self.started()
        self.assertIsInstance(client.ready, Ready)
        self.assertEqual(client.ready.protocol_version, 1)
        self.assertEqual(client.ready.model, "echo:echo:echo-1")
        self.assertEqual(client.ready.message_count, 0)
        self.assertEqual(client.ready.thinking_level, "off")
        self.assertEqual(client.ready.context_files, [])
        self.assertEqual(client.ready.skills, [])
        self.assertEqual(client.ready.raw["type"], "ready")

        turn = client.prompt("hello there friend")
        self.assertIsInstance(turn, Turn)
        frames = await collect(turn)
        kinds = [f["type"] for f in frames]
        self.assertEqual(kinds[0], "agent_start")
        self.assertEqual(kinds[-2:], ["agent_end", "response"])
        self.assertEqual(text_of(frames), "hello there friend")
        self.assertGreaterEqual(kinds.count("message_update"), 3)
        response = frames[-1]
        self.assertIs(turn.response, response)
        self.assertTrue(response["ok"])
        self.assertEqual(response["command"], "prompt")
        self.assertEqual(response["stop_reason"], "end_turn")
        self.assertEqual(turn.prompt_id, response["prompt_id"])
        self.assertTrue(all(f.get("prompt_id") == turn.prompt_id for f in frames))

        state = await within(client.get_state())
        self.assertEqual(state["session_id"], client.ready.session_id)
        self.assertFalse(state["streaming"])
        self.assertEqual(state["message_count"], 2)
        self.assertEqual(state["permission_mode"], "ask")

    async def test_await_turn_returns_response(self):
        client = await self.started()
        response = await within(client.prompt("just the answer"))
        self.assertTrue(response["ok"])
        messages = (await within(client.get_messages()))["messages"]
        self.assertEqual(messages[-1]["content"], [{"type": "text", "text": "just the answer"}])

    async def test_follow_up_streams_its_own_turn(self):
        client = await self.started(model=SLOW)
        first = client.prompt("go [[n=5 delay_ms=50]]")
        second = client.follow_up("then this [[n=2 delta=\"more \"]]")
        first_frames = await collect(first)
        second_frames = await collect(second)
        self.assertEqual(text_of(first_frames), "tok " * 5)
        self.assertEqual(text_of(second_frames), "more more ")
        self.assertEqual(second_frames[0]["type"], "agent_start")
        self.assertEqual(second_frames[0]["command"], "follow_up")
        self.assertEqual(second_frames[-1]["command"], "follow_up")
        self.assertNotEqual(first.prompt_id, second.prompt_id)

    async def test_commands_during_a_turn(self):
        client = await self.started(model=SLOW)
        turn = client.prompt("go [[n=20 delay_ms=50]]")
        frames = [await within(turn.__anext__()), await within(turn.__anext__())]
        self.assertEqual(frames[1]["type"], "message_update")
        state = await within(client.get_state())
        self.assertTrue(state["streaming"])
        self.assertEqual(state["prompt_id"], turn.prompt_id)
        self.assertTrue((await within(client.steer("be brief [[n=1]]")))["queued"])
        frames += await collect(turn)
        self.assertTrue(frames[-1]["ok"])
        self.assertEqual(frames[-1]["stop_reason"], "end_turn")

    async def test_every_command_has_a_method(self):
        client = await self.started()
        await within(client.prompt("one"))
        stats = await within(client.get_session_stats())
        self.assertEqual(stats["turns"], 1)
        models = (await within(client.get_available_models()))["models"]
        self.assertIn("echo:echo:echo-1", [m["id"] for m in models])
        self.assertEqual((await within(client.set_model(SLOW)))["model"], SLOW)
        mode = await within(client.set_permission_mode("allow-all"))
        self.assertEqual(mode["mode"], "allow-all")
        budget = await within(client.set_budget(max_turns=50))
        self.assertEqual((budget["max_turns"], budget["budget_usd"]), (50, None))
        kept = await within(client.set_budget(budget_usd=2.5))
        self.assertEqual((kept["max_turns"], kept["budget_usd"]), (50, 2.5))
        lifted = await within(client.set_budget(max_turns=None))
        self.assertEqual((lifted["max_turns"], lifted["budget_usd"]), (None, 2.5))
        sandbox = await within(client.set_sandbox("read-only"))
        self.assertEqual(sandbox["mode"], "read-only")
        sessions = (await within(client.list_sessions()))["sessions"]
        self.assertEqual(sessions[0]["session_id"], client.ready.session_id)
        forked = await within(client.fork(message_index=0))
        self.assertEqual(forked["forked_from"], client.ready.session_id)
        self.assertEqual((forked["message_count"], forked["message"]), (0, "one"))
        back = await within(client.switch_session(client.ready.session_id))
        self.assertEqual(back["message_count"], 2)
        self.assertEqual((await within(client.fork()))["message_count"], 2)
        await within(client.switch_session(client.ready.session_id))
        new = await within(client.new_session())
        self.assertNotEqual(new["session_id"], client.ready.session_id)
        deleted = await within(client.delete_session(client.ready.session_id))
        self.assertEqual(deleted["session_id"], client.ready.session_id)
        with self.assertRaises(RpcError) as in_use:
            await within(client.delete_session(new["session_id"]))
        self.assertEqual(in_use.exception.code, "busy")
        idle_abort = await within(client.abort())
        self.assertEqual(idle_abort["dropped"], [])
        generic = await within(client.request("get_state"))
        self.assertEqual(generic["session_id"], new["session_id"])
        self.assertEqual((await within(client.shutdown()))["command"], "shutdown")
        await within(client.close())
        self.assertEqual(client.returncode, 0)
        with self.assertRaises(RpcError) as caught:
            await within(client.get_state())
        self.assertEqual(caught.exception.code, "closed")

    async def test_long_line_arrives_intact(self):
        client = await self.started()
        word = "w" * 200_000  # one echoed delta: a ~200 KB line, over asyncio's 64 KiB
        frames = await collect(client.prompt(word))
        self.assertEqual(text_of(frames), word)

    async def test_line_separator_arrives_intact(self):
        client = await self.started()
        text = "a\u2028b c\u2029d"
        frames = await collect(client.prompt(text))
        self.assertEqual(text_of(frames), text)
        frames = await collect(client.prompt('[[n=1 delta="x\\u2028y"]]'))
        self.assertEqual(text_of(frames), "x\u2028y")
        messages = (await within(client.get_messages()))["messages"]
        self.assertEqual(messages[0]["content"], text)

    async def test_attachments(self):
        client = await self.started()
        await within(client.prompt("look", attachments=[{"type": "text", "text": "extra"}]))
        messages = (await within(client.get_messages()))["messages"]
        self.assertEqual(
            messages[0]["content"],
            [{"type": "text", "text": "look"}, {"type": "text", "text": "extra"}],
        )


class ErrorTest(HostTestCase):
    async def test_unknown_model_is_not_found(self):
        client = await self.started()
        with self.assertRaises(RpcError) as caught:
            await within(client.set_model("nope:nope:nope"))
        error = caught.exception
        self.assertEqual(error.code, "not_found")
        self.assertEqual(error.command, "set_model")
        self.assertTrue(error.id)
        self.assertIn("nope", error.message)

    async def test_steer_without_a_turn_is_not_streaming(self):
        client = await self.started()
        with self.assertRaises(RpcError) as caught:
            await within(client.steer("faster"))
        self.assertEqual(caught.exception.code, "not_streaming")

    async def test_prompt_while_busy_raises_busy(self):
        client = await self.started(model=SLOW)
        running = client.prompt("slow [[n=20 delay_ms=50]]")
        with self.assertRaises(RpcError) as caught:
            await collect(client.prompt("me too"))
        self.assertEqual(caught.exception.code, "busy")
        self.assertEqual(caught.exception.command, "prompt")
        response = await within(running)
        self.assertTrue(response["ok"])

    async def test_failed_turn_raises_after_its_events(self):
        client = await self.started()
        turn = client.prompt("[[n=2 error='rate limited']]")
        seen = []
        with self.assertRaises(RpcError) as caught:
            async for frame in turn:
                seen.append(frame)
        self.assertEqual(caught.exception.code, "provider_error")
        self.assertIn("rate limited", caught.exception.message)
        self.assertEqual(text_of(seen), "tok tok ")
        self.assertEqual(seen[-1]["type"], "agent_end")
        self.assertFalse(turn.response["ok"])
        # the client is still usable
        self.assertTrue((await within(client.prompt("again")))["ok"])

    async def test_start_up_failure_raises(self):
        client = self.client(model="nope:nope:nope")
        with self.assertRaises(RpcError) as caught:
            await within(client.start())
        self.assertEqual(caught.exception.code, "not_found")
        self.assertEqual(client.returncode, 2)

    async def test_a_missing_binary_says_so(self):
        client = AgentClient(binary="/nonexistent/agent-rpc/rpc")
        with self.assertRaises(ProcessExited) as caught:
            await within(client.start())
        self.assertIsInstance(caught.exception, NotStarted)
        self.assertEqual(caught.exception.code, "process_exited")
        self.assertIn("rpc could not be run ('/nonexistent/agent-rpc/rpc': No such file", str(caught.exception))
        self.assertIn("pass binary=", str(caught.exception))

    async def test_oversized_command_is_refused_locally(self):
        client = await self.started(extra_args=["--max-frame-bytes", "1000"])
        with self.assertRaises(RpcError) as caught:
            client.prompt("x" * 2000)
        self.assertEqual(caught.exception.code, "frame_too_large")
        self.assertTrue((await within(client.prompt("small")))["ok"])


class AbortTest(HostTestCase):
    async def test_abort_a_slow_turn(self):
        client = await self.started(model=SLOW)
        turn = client.prompt("go")  # the slow model: 40 deltas, 50 ms apart
        frames = []
        aborted = None
        async def consume():
            nonlocal aborted
            async for frame in turn:
                frames.append(frame)
                if frame["type"] == "message_update" and aborted is None:
                    aborted = asyncio.ensure_future(client.abort())
        await within(consume())
        self.assertEqual(frames[-1]["type"], "response")
        self.assertTrue(turn.response["ok"])
        self.assertTrue(turn.response["cancelled"])
        self.assertEqual(turn.response["stop_reason"], "aborted")
        self.assertLess(text_of(frames).count("tok"), 40)
        abort_response = await within(aborted)
        self.assertEqual(abort_response["dropped"], [])

    async def test_abort_drops_a_queued_follow_up(self):
        client = await self.started(model=SLOW)
        turn = client.prompt("go")
        queued = client.follow_up("later")
        await within(self._first_delta(turn))
        abort_response = await within(client.abort())
        self.assertEqual([d["type"] for d in abort_response["dropped"]], ["follow_up"])
        dropped = await within(queued)
        self.assertTrue(dropped["cancelled"])
        self.assertIsNone(queued.prompt_id)
        self.assertTrue((await within(turn))["cancelled"])

    async def _first_delta(self, turn):
        async for frame in turn:
            if frame["type"] == "message_update":
                return frame


class CommandsTest(HostTestCase):
    async def test_get_commands_and_an_expanded_prompt(self):
        folder = self.work / ".claude" / "commands"
        folder.mkdir(parents=True)
        (folder / "greet.md").write_text(
            "---\ndescription: Greet someone\nargument-hint: <name>\n---\nSay hello to $1.\n"
        )
        client = await self.started()
        commands = (await within(client.get_commands()))["commands"]
        greet = [c for c in commands if c["name"] == "greet"]
        self.assertEqual(
            greet,
            [{"name": "greet", "description": "Greet someone", "argument_hint": "<name>", "source": "project"}],
        )
        self.assertIn("skills", [c["name"] for c in commands])
        response = await within(client.prompt("/greet Ada"))
        self.assertTrue(response["ok"])
        messages = (await within(client.get_messages()))["messages"]
        self.assertEqual(messages[0]["content"], "Say hello to Ada.")


class BoundedBufferTest(HostTestCase):
    async def test_a_slow_consumer_holds_the_host_back(self):
        client = await self.started(max_buffered_frames=4)
        turn = client.prompt("[[n=20000 delta=x]]")
        first = await within(turn.__anext__())
        self.assertEqual(first["type"], "agent_start")
        await asyncio.sleep(1.0)  # the consumer stalls
        # At most the bound waits unread; the rest is still in the host
        # (or its pipe), which the reader stopped draining.
        self.assertLessEqual(turn._queue.qsize(), 4)
        rest = await collect(turn)
        self.assertEqual(text_of(rest), "x" * 20000)
        self.assertEqual(rest[-1]["type"], "response")
        # The reader is free again: other commands are answered.
        self.assertEqual((await within(client.get_state()))["type"], "response")

    def test_the_bound_must_be_positive(self):
        with self.assertRaises(ValueError):
            AgentClient(max_buffered_frames=0)

"""export_session / import_session: a session moved between two hosts'
data dirs through the client, and the errors an import answers."""

from agent_rpc import AgentClient, RpcError

from .support import BINARY, ECHO, FIXTURES, HostTestCase, within


class PortableTest(HostTestCase):
    async def other_host(self, *extra):
        """A second host with a data dir of its own (another machine)."""
        args = [
            "--data-dir", str(self.tmp / "other-data"),
            "--extension", str(FIXTURES / "echo"),
            "--model", ECHO,
            "--cwd", str(self.work),
            *extra,
        ]
        client = AgentClient(binary=BINARY, args=args, cwd=str(self.work), close_timeout=10.0)
        await within(client.start())
        self.addAsyncCleanup(self._close, client)
        return client

    async def test_a_session_moves_to_another_host_and_continues(self):
        source = await self.started()
        self.assertTrue((await within(source.prompt("remember this")))["ok"])
        session_id = source.ready.session_id
        exported = await within(source.export_session(session_id))
        self.assertEqual(exported["session_id"], session_id)
        header = exported["data"].splitlines()[0]
        self.assertIn('"type":"agent_rpc_export"', header)

        target = await self.other_host()
        imported = await within(target.import_session(exported["data"]))
        self.assertEqual(imported["session_id"], session_id)
        switched = await within(target.switch_session(session_id))
        self.assertEqual(switched["message_count"], 2)
        self.assertTrue((await within(target.prompt("and this")))["ok"])
        self.assertEqual(len((await within(target.get_messages()))["messages"]), 4)

        copy = await within(target.import_session(exported["data"], new_id=True))
        self.assertNotEqual(copy["session_id"], session_id)
        listed = (await within(target.list_sessions()))["sessions"]
        forked = [s for s in listed if s["session_id"] == copy["session_id"]]
        self.assertEqual(forked[0]["forked_from"], session_id)

    async def test_import_errors_are_typed_and_the_host_goes_on(self):
        source = await self.started()
        self.assertTrue((await within(source.prompt("one")))["ok"])
        data = (await within(source.export_session(source.ready.session_id)))["data"]
        target = await self.other_host()
        await within(target.import_session(data))
        cases = [
            (data, {}, "session_exists"),
            (data[:-3], {}, "invalid_params"),
            ('{"not":"an export"}\n', {}, "invalid_params"),
        ]
        for stream, options, code in cases:
            with self.assertRaises(RpcError) as caught:
                await within(target.import_session(stream, **options))
            self.assertEqual(caught.exception.code, code)
        self.assertIn("line ", str(caught.exception))
        replaced = await within(target.import_session(data, replace=True))
        self.assertEqual(replaced["session_id"], source.ready.session_id)
        with self.assertRaises(RpcError) as caught:
            await within(source.import_session(data, replace=True))
        self.assertEqual(caught.exception.code, "busy")
        with self.assertRaises(RpcError) as caught:
            await within(target.export_session("no-such-session"))
        self.assertEqual(caught.exception.code, "not_found")
        self.assertFalse((await within(target.get_state()))["streaming"])

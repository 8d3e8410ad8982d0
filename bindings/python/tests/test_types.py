"""agent_rpc/_types.py is what generate_types.py makes of the schema."""

import importlib.util
import typing
import unittest
from pathlib import Path

from agent_rpc import types

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def load_generator():
    spec = importlib.util.spec_from_file_location(
        "generate_types", PACKAGE_DIR / "generate_types.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class GeneratedTypesTest(unittest.TestCase):
    def test_generated_types_are_fresh(self):
        generator = load_generator()
        self.assertTrue(generator.DEFAULT_SCHEMA.exists(), generator.DEFAULT_SCHEMA)
        expected = generator.render()
        current = (PACKAGE_DIR / "agent_rpc" / "_types.py").read_text(encoding="utf-8")
        if current != expected:
            self.fail(
                "bindings/python/agent_rpc/_types.py is stale (the schema changed); "
                "regenerate it with `%s` and commit the result" % generator.REGENERATE
            )
        self.assertEqual(generator.render(), expected, "the generator is not deterministic")

    def test_every_type_resolves(self):
        for name in types.__all__:
            value = getattr(types, name)
            if isinstance(value, type):
                typing.get_type_hints(value)

    def test_shapes(self):
        self.assertEqual(
            types.GetStateResponse.__required_keys__,
            {"type", "id", "command", "ok", "streaming", "prompt_id", "model",
             "session_id", "message_count", "queued", "cwd", "permission_mode",
             "thinking_level", "context_files", "skills", "skill_errors", "compacting",
             "auto_compaction", "mcp_servers", "plan", "sandbox"},
        )
        self.assertIn("sandbox", types.ReadyFrame.__required_keys__)
        self.assertEqual(types.SkillEntry.__required_keys__, {"name", "description", "path"})
        self.assertIn("skills", types.ReadyFrame.__required_keys__)
        self.assertIn("skills", types.SwitchSessionResponse.__required_keys__)
        self.assertIn("type", types.ReadyFrame.__required_keys__)
        self.assertIn("cancelled", types.PromptResponse.__optional_keys__)
        self.assertIn("message", types.PromptCommand.__required_keys__)
        self.assertIn("attachments", types.PromptCommand.__optional_keys__)
        self.assertEqual(typing.get_args(types.Decision), ("allow_once", "allow_always", "deny"))
        frame_names = {ref.__forward_arg__ for ref in typing.get_args(types.Frame)}
        self.assertIn("MessageUpdateFrame", frame_names)
        self.assertIn("PermissionRequestFrame", frame_names)
        self.assertIn("McpServerStatusFrame", frame_names)
        self.assertIn("PlanFrame", frame_names)
        self.assertIn("DeleteSessionCommand", {ref.__forward_arg__ for ref in typing.get_args(types.Command)})
        commands = {ref.__forward_arg__ for ref in typing.get_args(types.Command)}
        self.assertIn("ImportSessionCommand", commands)
        self.assertIn("ExportSessionResponse", frame_names)
        self.assertIn("session_exists", typing.get_args(types.ErrorCode))
        self.assertEqual(len(commands), 25)


if __name__ == "__main__":
    unittest.main()

"""The package layout keeps its promises: the core stages import no transport or CLI framework."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parents[1] / "bot"
CORE = ("ingest", "embed", "index", "search", "answer")
FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "slack_bolt", "slack_sdk", "click", "mcp")
STAGE_ORDER = ("ingest", "embed", "index", "search", "answer", "serve")  # data flows left to right


def _imports(path: Path) -> set[str]:
    """Every module name a source file imports, at any depth (function-level imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            if node.module == "bot":
                names.update(f"bot.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("stage", CORE)
def test_core_stages_import_no_framework(stage: str) -> None:
    for path in sorted((BOT / stage).rglob("*.py")):
        bad = {n for n in _imports(path) if n.split(".")[0] in FRAMEWORKS}
        assert not bad, f"{path.relative_to(BOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("stage", STAGE_ORDER)
def test_stages_import_only_earlier_stages(stage: str) -> None:
    # The HTTP service hosts Slack's HTTP events, so only the core stages are kept from `bot.slack`.
    later = STAGE_ORDER[STAGE_ORDER.index(stage) + 1:] + (("cli",) if stage == "serve" else ("slack", "cli"))
    for path in sorted((BOT / stage).rglob("*.py")):
        bad = {n for n in _imports(path) if n.startswith("bot.") and n.split(".")[1] in later}
        assert not bad, f"{path.relative_to(BOT)} imports a later stage: {sorted(bad)}"


def test_answering_loads_no_framework_at_run_time() -> None:
    code = ("import sys; import bot.answer.answerer, bot.index.build, bot.ingest.parse; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_production_module_defines_or_imports_a_fake_embedder() -> None:
    # The fake embedder is a test helper (tests/fakes.py), reached from production only as a QABOT_MODEL plugin.
    for path in sorted(BOT.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef | ast.FunctionDef)}
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
                    for alias in node.names} | _imports(path)
        bad = {n for n in defined | imported if "fake" in n.lower() or n.split(".")[0] == "tests"}
        assert not bad, f"{path.relative_to(BOT)} defines or imports {sorted(bad)}"
        if path != BOT / "config.py":  # which refuses QABOT_MODEL=fake, pointing at the helper
            literals = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value == "fake"}
            assert not literals, f"{path.relative_to(BOT)} special-cases the model name 'fake'"

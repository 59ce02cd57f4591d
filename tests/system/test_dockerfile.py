"""The Dockerfile can't be built here (no Docker engine), so check what can be checked."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_every_copy_source_exists() -> None:
    copies = [rest for word, rest in _instructions() if word == "COPY"]
    assert copies
    for rest in copies:
        *sources, _dest = shlex.split(rest)
        for src in sources:
            assert (ROOT / src).exists(), f"COPY source {src} is missing"


def test_installs_with_the_readme_setup_script_and_runs_serve_as_non_root() -> None:
    instructions = _instructions()
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert "bash scripts/setup.sh" in runs
    assert "qabot index" in runs  # the index is baked into the image
    # The setup script is what `make run`/`make test` (the README's commands) use, and it installs CPU torch first.
    makefile = (ROOT / "Makefile").read_text()
    assert "scripts/setup.sh" in makefile
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert setup.index("torch==2.13.0") < setup.index('-e ".[dev]"')
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    cmd = [rest for word, rest in instructions if word == "CMD"][-1]
    assert re.search(r'"qabot",\s*"serve".*"--port",\s*"8000"', cmd)
    assert ("EXPOSE", "8000") in instructions


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)

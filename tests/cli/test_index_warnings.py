"""`qabot index` names on stderr, one line each, a file it indexed without questions or in one section, and every
file it skipped (encrypted or corrupt Word/PDF, broken transcript timestamps, an oversize file, an empty document)."""

from __future__ import annotations

import io
from pathlib import Path

from click.testing import CliRunner, Result

from bot.cli import main
from bot.config import get_settings
from tests.fakes import FAKE_MODEL

from conftest import FIXTURE_CORPUS

ACME = (FIXTURE_CORPUS / "knative" / "knative-adopter-interview-acme.md").read_text(encoding="utf-8")


def _index(corpus: Path, index_dir: Path) -> Result:
    get_settings.cache_clear()
    env = {"QABOT_MODEL": FAKE_MODEL, "QABOT_CORPUS_DIR": str(corpus), "QABOT_INDEX_DIR": str(index_dir),
           "HF_HUB_OFFLINE": "1"}
    return CliRunner().invoke(main, ["index"], env=env)


def _encrypted_pdf() -> bytes:
    from fpdf import FPDF
    from pypdf import PdfReader, PdfWriter

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "", 11)
    pdf.cell(0, 6, "Interviewee: Someone")
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(bytes(pdf.output()))))
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _empty_docx() -> bytes:
    import docx

    out = io.BytesIO()
    docx.Document().save(out)
    return out.getvalue()


def test_a_file_in_one_section_or_without_questions_gets_a_one_line_warning(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "widgetd").mkdir(parents=True)
    (corpus / "knative").mkdir()
    (corpus / "knative" / "knative-adopter-interview-acme.md").write_text(ACME, encoding="utf-8")
    (corpus / "widgetd" / "widgetd-adopter-interview-initech.md").write_text(
        "# Widgetd Adopter Interview - Initech\n\nInitech runs Widgetd on three clusters since 2021.\n",
        encoding="utf-8")
    (corpus / "widgetd" / "widgetd-adopter-interview-globex.md").write_text(
        "# Widgetd Adopter Interview - Globex\n\n## Usage\n\nGlobex runs it in production.\n\n"
        "## Plans\n\nMore clusters next year.\n", encoding="utf-8")
    result = _index(corpus, tmp_path / "index")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: widgetd/widgetd-adopter-interview-globex.md: no questions found: indexed section by section",
        "warning: widgetd/widgetd-adopter-interview-initech.md: no questions found: indexed paragraph by "
        "paragraph; parsed into a single section",
    ]
    assert "files: 3 added" in result.stdout  # warned about, still indexed
    again = _index(corpus, tmp_path / "index")  # unchanged files are not parsed again: nothing to warn about
    assert again.exit_code == 0 and "warning:" not in again.stderr


def test_bad_inputs_are_skipped_and_named_on_stderr_and_the_build_goes_on(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    bad = corpus / "bad"
    bad.mkdir(parents=True)
    (corpus / "knative").mkdir()
    (corpus / "knative" / "knative-adopter-interview-acme.md").write_text(ACME, encoding="utf-8")
    files = {
        "encrypted.pdf": (_encrypted_pdf(), "encrypted PDF: it needs a password"),
        "corrupt.pdf": (b"%PDF-1.4\n1 0 obj garbage", "not a readable PDF"),
        "corrupt.docx": (b"PK\x03\x04 this is no zip at all", "not a readable Word document"),
        "encrypted.docx": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "password-protected"),
        "empty.docx": (_empty_docx(), "empty document"),
        "broken.vtt": (b"WEBVTT\n\n00:00:01.000 --> 00:00:0x.000\n<v A>Hi?\n", "line 3: broken timestamp"),
        "broken.srt": (b"1\n00:00:01,000 --> 00:00:02\nA: Hi?\n", "line 2: broken timestamp"),
    }
    for name, (data, _) in files.items():
        (bad / name).write_bytes(data)
    with open(bad / "huge.md", "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MB by stat
    result = _index(corpus, tmp_path / "index")
    assert result.exit_code == 0, result.output
    skipped = {line.split(": ", 1)[0].removeprefix("skipped "): line for line in result.stderr.splitlines()
               if line.startswith("skipped ")}
    assert set(skipped) == {f"bad/{name}" for name in [*files, "huge.md"]}
    for name, (_, reason) in files.items():
        assert reason in skipped[f"bad/{name}"], skipped[f"bad/{name}"]
    assert "over the limit" in skipped["bad/huge.md"]
    assert "files: 1 added" in result.stdout and "8 skipped" in result.stdout


def test_a_clean_build_prints_its_summary_and_no_library_chatter(tmp_path: Path) -> None:
    """A fresh `qabot index` process: one summary line on stdout, nothing on stderr (bm25s set its own logger
    to DEBUG when imported and printed "Building index from tokens" lines)."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "QABOT_MODEL": FAKE_MODEL, "QABOT_CORPUS_DIR": str(FIXTURE_CORPUS),
           "QABOT_INDEX_DIR": str(tmp_path / "index"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-m", "bot", "index"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("files: ") and "generation 1" in done.stdout
    assert "DEBUG" not in done.stderr and "bm25s" not in done.stderr, done.stderr

"""`qabot inspect FILE…`: how a file will be understood, before it is indexed."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from bot.cli import main

from conftest import FIXTURE_CORPUS

GOOGLE_DOCS = """# **Widgetd \\- Adopter Interview Questions (Initech 1\\)**

Date: 05/29/2026

Attendees:

* Ana Lima ( Initech)
* Pat Host (TOC)

This template provides the example set of questions the TOC uses in adopter interviews.

## **Questions**

1. How long has your organization used the project?

   Started evaluation towards end of 2023. Production use began mid-2024.

2. What drew you to the project?

"""

TRANSCRIPT = """WEBVTT

00:00:01.000 --> 00:00:03.000
<v Pat Host>How long have you run Widgetd in production?

00:00:03.000 --> 00:00:06.000
<v Ana Lima>Two years now, on three clusters.

00:00:06.000 --> 00:00:08.000
<v Pat Host>What would you improve?

00:00:08.000 --> 00:00:11.000
<v Ana Lima>The upgrade guide.
"""


def _files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "widgetd"
    folder.mkdir()
    (folder / "Widgetd - Adopter Interview Questions (Initech 1).md").write_text(GOOGLE_DOCS, encoding="utf-8")
    (folder / "initech-interview.vtt").write_text(TRANSCRIPT, encoding="utf-8")
    return [FIXTURE_CORPUS / "knative" / "knative-adopter-interview-acme.md",
            folder / "Widgetd - Adopter Interview Questions (Initech 1).md", folder / "initech-interview.vtt"]


def test_inspect_shows_names_questions_lines_template_text_and_warnings(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", *map(str, _files(tmp_path))])
    assert result.exit_code == 0, result.output
    headings, numbered, transcript = result.output.split("\n\n")
    assert "knative/knative-adopter-interview-acme.md" in headings
    assert "layout: headings" in headings and "project: Knative  ·  adopter: Acme Rockets" in headings
    assert "interviewee: Wile E. Coyote, Chief Engineer, Acme Rockets  ·  date: March 3, 2025" in headings
    assert "question without an answer: Is there anything with no answer?" in headings

    assert "layout: headings, numbered questions" in numbered
    assert "adopter: Initech" in numbered and "interviewee: Ana Lima" in numbered
    assert "16-16  How long has your organization used the project?" in numbered
    assert "→ Started evaluation towards end of 2023. Production use began mid-2024. (10 words)" in numbered
    assert "template text, not indexed:\n    10-10" in numbered
    assert "question without an answer: What drew you to the project?" in numbered

    assert "format: vtt  ·  layout: speaker turns" in transcript
    assert "adopter: Initech" in transcript and "interviewee: Ana Lima" in transcript
    assert "3-3  How long have you run Widgetd in production?" in transcript
    assert "→ Ana Lima: Two years now, on three clusters. (8 words)" in transcript


def test_inspect_json_and_a_file_that_cannot_be_indexed(tmp_path: Path) -> None:
    files = _files(tmp_path)
    broken = tmp_path / "widgetd" / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 nothing")
    result = CliRunner().invoke(main, ["inspect", "--json", str(files[1]), str(broken)])
    assert result.exit_code == 1  # a file the build would skip
    good, bad = json.loads(result.stdout)
    assert (good["project"], good["adopter"], good["format"]) == ("Widgetd", "Initech", "markdown")
    assert [q["question"] for q in good["questions"]] == ["How long has your organization used the project?"]
    assert good["questions"][0]["line_start"] == 16 and good["boilerplate"][0]["line_start"] == 10
    assert bad["file"] == str(broken) and bad["error"].startswith("not a readable PDF")


BOLD_METADATA = """# Widgetd Adopter Interview - Initech

**Meeting Time:** 1/27/2026 7:30 PM CET  
**Attendees:**  
- **TOC:** Pat Host, TOC Sponsor of Widgetd  
- **Adopter:** Ana Lima, Platform Lead, Initech

---

## Usage Scenario

### How long has your organization used the project?

Initech has used Widgetd in production since 2021.

## Perception

### How would you rate the project on these points?

- Documentation
  + Good for getting started, thin on upgrades.
- Community
  + Maintainers answer within a day.
"""


def test_inspect_a_bold_metadata_layout(tmp_path: Path) -> None:
    """Buildpacks-style: bold metadata lines, attendees nested under **Attendees:**, answers as nested + bullets."""
    path = tmp_path / "widgetd" / "widgetd-adopter-interview-initech.md"
    path.parent.mkdir()
    path.write_text(BOLD_METADATA, encoding="utf-8")
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("widgetd/widgetd-adopter-interview-initech.md\n")
    assert "format: markdown  ·  layout: headings  ·  23 lines" in out
    assert "project: Widgetd  ·  adopter: Initech" in out
    assert "interviewee: Ana Lima, Platform Lead, Initech  ·  date: 1/27/2026 7:30 PM CET" in out
    assert "questions (2):" in out and "14-14  How long has your organization used the project?" in out
    assert "20-23  How would you rate the project on these points?" in out
    assert "→ - Documentation + Good for getting started, thin on upgrades. - Community … (14 words)" in out
    assert "3-6  Interview details" in out and out.rstrip().endswith("warnings: none")

"""Parsing: every real interview shape, metadata, line spans, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.ingest.files import CorpusError, iter_files, read_text
from bot.ingest.parse import parse_file, parse_text

from conftest import FIXTURE_CORPUS


def test_every_shared_interview_parses_with_project_adopter_and_sections(shared_corpus: Path) -> None:
    files = list(iter_files(shared_corpus))
    assert len(files) == 23
    for path in files:
        interview = parse_file(path, shared_corpus)
        # The project comes from the title and agrees with the folder it sits in.
        assert interview.project.lower().replace("-", "") == path.parent.name.replace("-", "")
        assert interview.adopter and "interview" not in interview.adopter.lower()
        questions = [s for s in interview.sections if len(s.path) > 1 or s.path[-1].endswith("?")]
        assert len(questions) >= 7, interview.source


def test_section_bodies_are_exact_source_lines(shared_corpus: Path) -> None:
    for path in iter_files(shared_corpus):
        interview = parse_file(path, shared_corpus)
        lines = path.read_text(encoding="utf-8").splitlines()
        for s in interview.sections:
            assert s.body == "\n".join(lines[s.line_start - 1 : s.line_end])
            assert s.body.strip() and lines[s.line_start - 1].strip() and lines[s.line_end - 1].strip()


def test_knative_spelling_front_matter_and_interviewee_list(shared_corpus: Path) -> None:
    ibm = parse_file(shared_corpus / "knative" / "knative-adopter-interview-ibm.md", shared_corpus)
    assert (ibm.project, ibm.adopter) == ("Knative", "IBM")
    assert "Simon Moser" in (ibm.interviewee or "")


def test_fixture_shapes_italic_questions_bold_meta_and_empty_answers() -> None:
    globex = parse_file(FIXTURE_CORPUS / "widgetd" / "widgetd-adopter-interview-globex.md", FIXTURE_CORPUS)
    assert (globex.project, globex.adopter) == ("Widgetd", "Globex Corporation")
    assert globex.date == "July 1, 2025"
    assert "Hank Scorpio" in (globex.interviewee or "")
    questions = [s.path[-1] for s in globex.sections]
    assert "What could the project improve?" in questions  # an italic line acting as a question
    acme = parse_file(FIXTURE_CORPUS / "knative" / "knative-adopter-interview-acme.md", FIXTURE_CORPUS)
    assert acme.interviewee.startswith("Wile E. Coyote") and acme.date == "March 3, 2025"
    assert all(s.path[-1] != "Is there anything with no answer?" for s in acme.sections)
    assert ("Project Strengths", "Community openness") in [s.path for s in acme.sections]


def test_file_without_headings_is_indexed_by_paragraphs() -> None:
    notes = parse_file(FIXTURE_CORPUS / "widgetd" / "notes.txt", FIXTURE_CORPUS)
    assert [s.line_start for s in notes.sections] == [1, 3, 5]
    assert notes.project == "widgetd"  # from the folder


def test_names_fall_back_to_file_name() -> None:
    interview = parse_text("## Usage\n\n### Why?\nBecause.\n", "tekton/tekton-adopter-interview-acme-corp.md")
    assert (interview.project, interview.adopter) == ("Tekton", "Acme Corp")


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"   \n\n", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    (b"\xff\xfe\x00\xd8", "not valid UTF-16"),
    (b"caf\xe9 au lait", "UTF-8"),
])
def test_bad_files_are_refused_by_name(tmp_path: Path, content: bytes, reason: str) -> None:
    bad = tmp_path / "bad.md"
    bad.write_bytes(content)
    with pytest.raises(CorpusError, match=reason) as err:
        read_text(bad)
    assert "bad.md" in str(err.value)


def test_iter_files_finds_nested_md_and_txt_only(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.md").write_text("# T\n\nhello\n")
    (tmp_path / "y.txt").write_text("hello\n")
    (tmp_path / "z.pdf").write_bytes(b"%PDF")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "h.md").write_text("hidden\n")
    assert [p.relative_to(tmp_path).as_posix() for p in iter_files(tmp_path)] == ["a/b/x.md", "y.txt"]


def test_heading_markup_is_removed_but_underscores_in_words_kept() -> None:
    text = "# P Adopter Interview - A\n\n## **Usage**\n\n### Do you set max_revisions or `scale_to_zero`?\nYes.\n"
    interview = parse_text(text, "p/a.md")
    assert interview.sections[0].path == ("Usage", "Do you set max_revisions or scale_to_zero?")

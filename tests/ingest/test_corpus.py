"""Parsing: every real interview shape, metadata, line spans, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.ingest.files import CorpusError, iter_files, read_text
from bot.ingest.parse import parse_file, parse_text

from conftest import FIXTURE_CORPUS


# Every file of ../shared/corpus: (file, project, adopter, questions with an answer). Checked by hand against
# the files; the Karmada ones are Google-Docs exports (numbered questions, escaped bold title) and three of
# them are interviews of the same company, all named for it.
SHARED_INTERVIEWS = [
    ("buildpacks/buildpacks-adopter-interview-7signalinc.md", "Buildpacks", "7SIGNAL, Inc", 15),
    ("buildpacks/buildpacks-adopter-interview-adopter-3.md", "Buildpacks", "Adopter 3", 15),
    ("buildpacks/buildpacks-adopter-interview-google.md", "Buildpacks", "Google", 15),
    ("buildpacks/buildpacks-adopter-interview-salesforce.md", "Buildpacks", "Salesforce", 15),
    ("cubefs/cubefs-adopter-interview-beike.md", "CubeFS", "BEIKE", 15),
    ("cubefs/cubefs-adopter-interview-jd.com.md", "CubeFS", "JD.com", 17),
    ("cubefs/cubefs-adopter-interview-netease.md", "CubeFS", "NetEase", 15),
    ("in-toto/in-toto-adopter-interview-chainguard.md", "in-toto", "Chainguard", 14),
    ("in-toto/in-toto-adopter-interview-github.md", "in-toto", "GitHub", 13),
    ("in-toto/in-toto-adopter-interview-lockheedmartins.md", "in-toto", "Lockheed Martin", 13),
    ("karmada/Karmada - Adopter Interview Questions (Bloomberg 1).md", "Karmada", "Bloomberg", 17),
    ("karmada/Karmada - Adopter Interview Questions (Bloomberg 2).md", "Karmada", "Bloomberg", 17),
    ("karmada/Karmada - Adopter Interview Questions (Bloomberg 3).md", "Karmada", "Bloomberg", 17),
    ("karmada/Karmada - Adopter Interview Questions (Trip.com 1).md", "Karmada", "Trip.com", 17),
    ("knative/knative-adopter-interview-adopter-4.md", "Knative", "Adopter 4", 14),
    ("knative/knative-adopter-interview-gojek.md", "Knative", "Gojek", 14),
    ("knative/knative-adopter-interview-ibm.md", "Knative", "IBM", 15),
    ("knative/knative-adopter-interview-sva.md", "Knative", "SVA", 14),
    ("knative/knative-adopter-interview-ymeadows.md", "Knative", "Y Meadows", 15),
    ("kserve/kserve-adopter-interview-cloudera.md", "KServe", "Cloudera", 15),
    ("kserve/kserve-adopter-interview-cyberagent.md", "KServe", "CyberAgent, Inc.", 15),
    ("kserve/kserve-adopter-interview-nutanix.md", "KServe", "Nutanix", 13),
    ("kserve/kserve-adopter-interview-sap.md", "KServe", "SAP", 14),
    ("openfga/openfga-adopter-interview-agicap.md", "OpenFGA", "Agicap", 15),
    ("openfga/openfga-adopter-interview-docker.md", "OpenFGA", "Docker", 15),
    ("openfga/openfga-adopter-interview-grafana.md", "OpenFGA", "Grafana", 15),
    ("openfga/openfga-adopter-interview-readai.md", "OpenFGA", "Read AI", 15),
    ("openfga/openfga-adopter-interview-zuplo.md", "OpenFGA", "Zuplo", 15),
    ("tekton/tekton-adopter-interview-adopter2.md", "Tekton", "Adopter 2", 13),
    ("tekton/tekton-adopter-interview-adopter3.md", "Tekton", "Adopter 3", 12),
    ("tekton/tekton-adopter-interview-shipwright.md", "Tekton", "Shipwright Project", 13),
]


def test_every_shared_interview_parses_into_its_real_questions(shared_corpus: Path) -> None:
    files = {p.relative_to(shared_corpus).as_posix(): p for p in iter_files(shared_corpus)}
    assert sorted(files) == sorted(row[0] for row in SHARED_INTERVIEWS)
    for source, project, adopter, questions in SHARED_INTERVIEWS:
        interview = parse_file(files[source], shared_corpus)
        asked = [s for s in interview.sections if "?" in s.path[-1]]
        assert (interview.project, interview.adopter, len(asked)) == (project, adopter, questions), source
        assert all(not q.path[-1][0].isdigit() for q in asked), source  # "3. What ...?" loses its number


def test_shared_corpus_template_text_is_not_indexed_and_attendees_name_the_interviewees(shared_corpus: Path) -> None:
    for path in iter_files(shared_corpus):
        interview = parse_file(path, shared_corpus)
        indexed = "\n".join(s.body for s in interview.sections)
        for template in ("This template provides", "The intent of these interviews", "The following set of questions",
                         "Expectations conveyance with interviewers", "Interview conducted"):
            assert template not in indexed, (interview.source, template)
    karmada = {p.name: parse_file(p, shared_corpus) for p in (shared_corpus / "karmada").iterdir()}
    assert karmada["Karmada - Adopter Interview Questions (Bloomberg 1).md"].interviewee == "Yuzhui Liu"
    assert karmada["Karmada - Adopter Interview Questions (Trip.com 1).md"].interviewee == "Zongqing Li; HF Yue"
    google = parse_file(shared_corpus / "buildpacks" / "buildpacks-adopter-interview-google.md", shared_corpus)
    assert google.interviewee.startswith("James Ma, Product Manager") and "Matthew Robertson" in google.interviewee


def test_numbered_questions_with_indented_answers_become_questions() -> None:
    text = ("# **Widgetd \\- Adopter Interview Questions (Initech 2\\)**\n\nDate: 01/02/2026\n\n## **Questions**\n\n"
            "1. How long have you used it?\n\n   Since 2021, in production.\n\n"
            "2. What drew you to it? (be brief)\n\n   Speed:\n   - builds\n   - deploys\n")
    interview = parse_text(text, "widgetd/whatever.md")
    assert (interview.project, interview.adopter, interview.date) == ("Widgetd", "Initech", "01/02/2026")
    assert [(s.path[-1], s.body.strip()) for s in interview.sections if s.path != ("Interview details",)] == [
        ("How long have you used it?", "Since 2021, in production."),
        ("What drew you to it? (be brief)", "Speed:\n   - builds\n   - deploys")]


def test_project_is_spelled_as_the_interview_spells_it() -> None:
    body = "\n## Usage\n\n### Why?\nWe run Confidential Containers and like confidential containers.\n"
    from_folder = parse_text(body, "confidential-containers/acme-notes.md")
    assert from_folder.project == "Confidential Containers"
    title_case_differs = parse_text("# KNative Adopter Interview - Acme\n" + body.replace("Confidential Containers",
                                    "Knative").replace("confidential containers", "Knative"), "x/y.md")
    assert title_case_differs.project == "Knative"
    anonymised = parse_text("# Tekton Adopter Interview - Adopter 3\n" + body, "tekton/t.md")
    assert anonymised.adopter == "Adopter 3"  # the number is the name here, not an interview count


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
    assert notes.project == "Widgetd"  # from the folder, capitalised as a name (the text never spells it)


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


def test_iter_files_finds_nested_interviews_of_every_format_only(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.md").write_text("# T\n\nhello\n")
    (tmp_path / "y.txt").write_text("hello\n")
    for name in ("z.pdf", "w.docx", "v.vtt", "u.srt"):
        (tmp_path / name).write_bytes(b"%PDF")  # found by name; whether it reads is the parser's business
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    (tmp_path / "old.doc").write_bytes(b"\xd0\xcf")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "h.md").write_text("hidden\n")
    assert [p.relative_to(tmp_path).as_posix() for p in iter_files(tmp_path)] == [
        "a/b/x.md", "u.srt", "v.vtt", "w.docx", "y.txt", "z.pdf"]


def test_heading_markup_is_removed_but_underscores_in_words_kept() -> None:
    text = "# P Adopter Interview - A\n\n## **Usage**\n\n### Do you set max_revisions or `scale_to_zero`?\nYes.\n"
    interview = parse_text(text, "p/a.md")
    assert interview.sections[0].path == ("Usage", "Do you set max_revisions or scale_to_zero?")

"""Interview layouts found by their shape: question forms, names from wherever the file gives them, template text
left out. Every text here is made up; the shapes are those of published interviews."""

from __future__ import annotations

import logging

import pytest

from bot.ingest.parse import Interview, parse_file, parse_text

from conftest import FIXTURE_CORPUS


def _asked(interview: Interview) -> list[tuple[str, str]]:
    """(question, answer) of every question, answers with whitespace collapsed."""
    return [(s.path[-1], " ".join(s.body.split())) for s in interview.sections if s.asked]


NO_TITLE = """Interviewee: Ana Lima (ana@example.com)

Interviewer: Pat Host

Company: Initech

Date: 10th Feb 2026

## Questions

#### 1. How long has your organization used the project?

Since 2021.

#### 2. What drew you to it?

The scheduler.

---
## Maturity Level Survey

The following set of questions goes beyond the scope of the specific project adoption.
Their goal is to learn how adopters read the levels.

#### 1. Do you rely on maturity levels internally?

Yes, for risk reviews.
"""


def test_numbered_headings_no_title_company_line_and_a_trailing_survey() -> None:
    got = parse_text(NO_TITLE, "widgetd/Initrode-interview.md")
    assert (got.project, got.adopter, got.interviewee, got.date) == (
        "Widgetd", "Initech", "Ana Lima (ana@example.com)", "10th Feb 2026")  # Company: beats the file name
    assert _asked(got) == [("How long has your organization used the project?", "Since 2021."),
                           ("What drew you to it?", "The scheduler."),
                           ("Do you rely on maturity levels internally?", "Yes, for risk reviews.")]
    assert [s.path for s in got.sections if s.asked][-1][0] == "Maturity Level Survey"
    assert got.boilerplate == ((22, 23),)  # the survey's introduction, not an answer
    assert got.layout == "headings"


def test_adopter_from_an_org_interview_file_name_and_project_from_the_folder() -> None:
    got = parse_text(NO_TITLE.replace("Company: Initech\n", ""), "confidential-containers/TDC-DK-interview.md")
    assert (got.project, got.adopter) == ("Confidential Containers", "TDC-DK")


def test_number_only_heading_takes_its_question_from_the_next_line() -> None:
    got = parse_text("# Widgetd Adopter Interview - Initech\n\n## 1.\nWhy Widgetd?\n\nSpeed.\n\n## 2.\n"
                     "What next?\n\nMore of it.\n", "w/x.md")
    assert _asked(got) == [("Why Widgetd?", "Speed."), ("What next?", "More of it.")]


def test_bold_questions_may_carry_a_note_after_the_question_mark() -> None:
    got = parse_text("# Widgetd Adopter Interview - Initech\n\n## Usage\n\n**What version do you run? "
                     "(not shared publicly)**\n\nVersion 2.\n\n__Why did you pick it?__\n\nIt was faster.\n", "w/x.md")
    assert _asked(got) == [("What version do you run? (not shared publicly)", "Version 2."),
                           ("Why did you pick it?", "It was faster.")]
    assert got.layout == "headings, emphasised-line questions"


def test_an_emphasised_question_may_spread_over_several_lines() -> None:
    got = parse_text("# Widgetd Adopter Interview - Initech\n\n## Usage\n\n_How long has your organization used the "
                     "project?_\n\nSince 2021.\n\n## Perception\n\n_What is your perception in terms of the "
                     "project's:\nCommunity openness\nGovernance\nMaintainer response_\n\nOpen and welcoming.\n\n"
                     "The governance is fine.\n", "w/x.md")
    assert _asked(got) == [("How long has your organization used the project?", "Since 2021."),
                           ("What is your perception in terms of the project's: Community openness Governance "
                            "Maintainer response", "Open and welcoming. The governance is fine.")]
    # Emphasis that opens and closes on other lines of an answer is no question.
    plain = parse_text("# Widgetd Adopter Interview - Initech\n\n## Usage\n\n_How long has your organization used "
                       "the project?_\n\n_We started\nin 2021 with two teams_ and grew.\n", "w/x.md")
    assert [q for q, _ in _asked(plain)] == ["How long has your organization used the project?"]


def test_q_numbered_lines_and_bold_organization_metadata() -> None:
    got = parse_text("# Widgetd survey answers\n\n**Organization**: Initech\n\nQ1. How long have you used it?\n"
                     "Since 2020.\n\nQ2. What do you run on it?\nBatch jobs and APIs.\n", "widgetd/answers.md")
    assert (got.project, got.adopter) == ("Widgetd", "Initech")
    assert _asked(got) == [("How long have you used it?", "Since 2020."),
                           ("What do you run on it?", "Batch jobs and APIs.")]


def test_q_and_a_pairs_need_no_question_mark() -> None:
    got = parse_text("Project: Widgetd\nCompany: Initech\n\nQ: How long have you used it?\nA: Three years.\n\n"
                     "Q: Tell us about the scale.\nA: About 400 nodes.\n", "misc/notes.txt", fmt="text")
    assert (got.project, got.adopter) == ("Widgetd", "Initech")
    assert _asked(got) == [("How long have you used it?", "A: Three years."),
                           ("Tell us about the scale.", "A: About 400 nodes.")]
    assert got.layout == "Q-prefixed questions"


def test_a_single_q_label_inside_an_answer_is_not_a_question() -> None:
    got = parse_text("# Widgetd Adopter Interview - Initech\n\n### What changed?\n\nQ3: revenue grew.\n", "w/x.md")
    assert _asked(got) == [("What changed?", "Q3: revenue grew.")]


def test_speaker_turns_the_interviewer_asks_and_the_others_answer() -> None:
    text = ("Interview with Initech about Widgetd\n\nPat Host: Welcome. How long have you used Widgetd?\n"
            "Ana Lima: Since 2019.\nAna Lima: We started small.\nPat Host: Thanks. What could it improve?\n"
            "Ana Lima: The docs,\nmostly the upgrade guide.\nPat Host: Great, thanks.\n")
    got = parse_text(text, "widgetd/initech-transcript.txt", fmt="text")
    assert got.layout == "speaker turns" and got.interviewee == "Ana Lima" and got.adopter == "Initech"
    assert _asked(got) == [
        ("How long have you used Widgetd?", "Ana Lima: Since 2019. Ana Lima: We started small."),
        ("What could it improve?", "Ana Lima: The docs, mostly the upgrade guide. Pat Host: Great, thanks.")]


def test_list_and_paragraph_questions_only_where_there_is_no_stronger_form() -> None:
    bullets = parse_text("Widgetd notes\n\n- What do you use it for?\n  Rendering at scale.\n"
                         "- Would you recommend it?\n  Yes.\n", "w/x.md")
    assert _asked(bullets) == [("What do you use it for?", "Rendering at scale."),
                               ("Would you recommend it?", "Yes.")]
    paragraphs = parse_text("Widgetd Adopter Interview - Initech\n\nHow long have you used it?\nSince 2019.\n\n"
                            "What would you improve?\n\nThe docs. Are they good? No.\n", "w/x.txt")
    assert paragraphs.title == "Widgetd Adopter Interview - Initech" and paragraphs.adopter == "Initech"
    assert _asked(paragraphs) == [("How long have you used it?", "Since 2019."),
                                  ("What would you improve?", "The docs. Are they good? No.")]
    # With real question headings, "?" items inside an answer stay in the answer.
    headed = parse_text("# W Adopter Interview - I\n\n### What worried you?\n\n- Is it approved?\n"
                        "- Who maintains it?\n\nBoth were settled.\n", "w/x.md")
    assert [q for q, _ in _asked(headed)] == ["What worried you?"]


TEMPLATE = """# **Widgetd \\- Adopter Interview Questions (Initech 2\\)**

Date: 01/02/2026

Attendees:

* Ana Lima ( Initech)
* Bo Chen (Initech, platform team)
* Pat Host (TOC)

This template provides the example set of questions the TOC uses in adopter interviews.

Responses are summarized in a separate document until the adopter approves them.

## **Setting expectations**

The intent of these interviews is to learn how the project is adopted.

Expectations conveyance with interviewers: "I will record raw notes here."

## **Questions**

1. How long has your organization used the project?

   Since 2021, in production.

2. What would you improve?

   The docs, said the interviewers' favourite engineer.

## Project Strengths

#### Community openness

The maintainers answered our questions on Slack within a day.

---

*Interview conducted 01/02/2026. Answers summarized from a recording.*
"""


def test_template_text_is_left_out_but_answers_never_are() -> None:
    got = parse_text(TEMPLATE, "widgetd/whatever.md")
    assert (got.project, got.adopter) == ("Widgetd", "Initech")
    assert got.interviewee == "Ana Lima; Bo Chen"  # the attendees of the adopter, not the interviewer
    indexed = "\n".join(s.body for s in got.sections)
    for template in ("This template", "summarized in a separate", "The intent of these", "Expectations conveyance",
                     "Interview conducted"):
        assert template not in indexed
    assert "interviewers' favourite" in indexed  # an answer is never template text
    assert ("Project Strengths", "Community openness") in [s.path for s in got.sections]  # after the questions
    assert [(a, b) for a, b in got.boilerplate] == [(11, 13), (17, 19), (39, 39)]
    assert ("Interview details",) == got.sections[0].path and "Attendees:" in got.sections[0].body
    assert any(w.startswith("template text left out: lines 11-13") for w in got.warnings)


@pytest.mark.parametrize("text, source, expected", [
    # front matter first
    ("---\nproject: Gizmo\nadopter: Hooli\n---\n# Widgetd Adopter Interview - Initech\n\n### Why?\nSpeed.\n",
     "w/widgetd-adopter-interview-acme.md", ("Gizmo", "Hooli")),
    # then the title
    ("# Widgetd Adopter Interview - Initech\n\nCompany: Hooli\n\n### Why?\nSpeed.\n",
     "w/gizmo-adopter-interview-acme.md", ("Widgetd", "Initech")),
    # then metadata lines
    ("Project: Gizmo\nCompany: Hooli\n\n### Why?\nSpeed.\n", "w/widgetd-adopter-interview-acme.md",
     ("Gizmo", "Hooli")),
    # then the file name
    ("### Why?\nSpeed.\n", "w/widgetd-adopter-interview-acme-corp.md", ("Widgetd", "Acme Corp")),
    ("### Why?\nSpeed.\n", "widgetd/Widgetd - Adopter Interview Questions (Initech 3).md", ("Widgetd", "Initech")),
    # then the folder (and the file's own name for the adopter)
    ("### Why?\nSpeed.\n", "widgetd/initech.md", ("Widgetd", "initech")),
])
def test_names_come_in_order_from_front_matter_title_metadata_file_name_folder(
        text: str, source: str, expected: tuple[str, str]) -> None:
    got = parse_text(text, source)
    assert (got.project, got.adopter) == expected


def test_two_interviews_of_one_adopter_stay_two_both_named_for_it() -> None:
    first = parse_text(TEMPLATE, "widgetd/Widgetd - Adopter Interview Questions (Initech 1).md")
    second = parse_text(TEMPLATE.replace("Initech 2", "Initech 3").replace("01/02/2026", "03/04/2026"),
                        "widgetd/Widgetd - Adopter Interview Questions (Initech 3).md")
    assert first.adopter == second.adopter == "Initech"
    assert (first.title, first.date) != (second.title, second.date) and first.source != second.source


def test_a_question_without_an_answer_is_a_warning() -> None:
    got = parse_text("# W Adopter Interview - I\n\n### Why?\n\n### What next?\nMore.\n", "w/x.md")
    assert _asked(got) == [("What next?", "More.")]
    assert "question without an answer: Why?" in got.warnings


def test_a_file_without_questions_is_named_in_a_warning_when_read(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.ingest.parse")
    parse_file(FIXTURE_CORPUS / "widgetd" / "notes.txt", FIXTURE_CORPUS)
    assert [r.getMessage() for r in caplog.records] == [
        "widgetd/notes.txt: no questions found: indexed paragraph by paragraph"]
    caplog.clear()
    parse_file(FIXTURE_CORPUS / "widgetd" / "notes.txt", FIXTURE_CORPUS, warn=False)  # qabot inspect shows it
    assert not caplog.records

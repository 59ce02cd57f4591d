"""Word, PDF and transcript interviews: written here from an interview's text, parsed, indexed and cited verbatim;
broken ones skipped by name."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from bot.answer.answerer import Answerer
from bot.config import Settings
from tests.fakes import FAKE_MODEL, FakeEmbedder
from bot.index.build import build
from bot.ingest.files import CorpusError, iter_files
from bot.ingest.parse import Interview, parse_file
from bot.serve.maintainer import IndexMaintainer

from conftest import FIXTURE_CORPUS

ACME = FIXTURE_CORPUS / "knative" / "knative-adopter-interview-acme.md"
INTERVIEWER, INTERVIEWEE = "Pat Host", "Wile Coyote"


def _acme() -> Interview:
    return parse_file(ACME, FIXTURE_CORPUS)


def _questions(interview: Interview) -> list[tuple[str, str]]:
    """(question, answer words) of every answered question."""
    return [(s.path[-1], " ".join(s.body.replace("- ", " ").split())) for s in interview.sections if s.asked]


def write_docx(path: Path, interview: Interview) -> None:
    """The interview as a Word document: title and section headings by style, questions as a numbered list,
    bullets as a bulleted list."""
    import docx

    doc = docx.Document()
    doc.add_heading(interview.title, 0)
    doc.add_paragraph(f"Interviewee: {interview.interviewee}")
    section = None
    for s in interview.sections:
        if not s.asked:
            continue
        if s.path[0] != section:
            section = s.path[0]
            doc.add_heading(section, 1)
        doc.add_paragraph(s.path[-1], style="List Number")
        for line in s.body.splitlines():
            if line.startswith("- "):
                doc.add_paragraph(line[2:], style="List Bullet")
            elif line.strip():
                doc.add_paragraph(line.strip())
    doc.save(path)


def write_pdf(path: Path, interview: Interview) -> list[str]:
    """The interview as a PDF (fpdf2): a big bold title, bold section names and questions, a page per section.
    Returns the questions in page order."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(True, margin=15)

    def para(text: str, style: str = "", size: float = 11) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(size * 0.4)

    pdf.add_page()
    para(interview.title, "B", 18)
    para(f"Interviewee: {interview.interviewee}")
    section = None
    for s in interview.sections:
        if not s.asked:
            continue
        if s.path[0] != section:
            section = s.path[0]
            pdf.add_page()
            para(section, "B", 14)
        para(s.path[-1], "B")
        for line in s.body.splitlines():
            if line.strip():
                para(line.strip())
    pdf.output(str(path))
    return [s.path[-1] for s in interview.sections if s.asked]


def write_vtt(path: Path, interview: Interview) -> None:
    """The interview as a meeting transcript: the interviewer asks, the interviewee answers sentence by sentence
    (one cue each, merged back into one turn)."""
    cues, t = ["WEBVTT", ""], 0

    def cue(speaker: str, text: str) -> None:
        nonlocal t
        cues.extend([f"00:{t // 60:02d}:{t % 60:02d}.000 --> 00:{(t + 3) // 60:02d}:{(t + 3) % 60:02d}.000",
                     f"<v {speaker}>{text}", ""])
        t += 3

    cue(INTERVIEWER, "Thanks for joining us today.")
    cue(INTERVIEWEE, "Happy to be here.")
    for question, answer in _questions(interview):
        cue(INTERVIEWER, question)
        for sentence in answer.replace(". ", ".\n").splitlines():
            cue(INTERVIEWEE, sentence)
    path.write_text("\n".join(cues), encoding="utf-8")


@pytest.fixture
def formats_corpus(tmp_path: Path) -> Path:
    """A corpus of the acme interview as .docx, .pdf and .vtt (each in the project's folder)."""
    corpus = tmp_path / "formats"
    (corpus / "knative").mkdir(parents=True)
    acme = _acme()
    write_docx(corpus / "knative" / "knative-adopter-interview-acme-rockets.docx", acme)
    write_pdf(corpus / "knative" / "knative-adopter-interview-acme-rockets.pdf", acme)
    write_vtt(corpus / "knative" / "knative-adopter-interview-acme-rockets.vtt", acme)
    return corpus


@pytest.mark.parametrize("suffix", [".docx", ".pdf", ".vtt"])
def test_each_format_parses_into_the_interviews_questions_and_answers(formats_corpus: Path, suffix: str) -> None:
    path = formats_corpus / "knative" / f"knative-adopter-interview-acme-rockets{suffix}"
    got = parse_file(path, formats_corpus)
    assert (got.format, got.project, got.adopter) == (suffix[1:], "Knative", "Acme Rockets")
    assert got.interviewee.startswith("Wile" if suffix == ".vtt" else "Wile E. Coyote")
    label = f"{INTERVIEWEE}: " if suffix == ".vtt" else ""  # a transcript's answer says who speaks
    assert [(q, a.removeprefix(label)) for q, a in _questions(got)] == _questions(_acme())
    for s in got.sections:  # line numbers are those of the extracted text
        assert s.body == "\n".join(got.lines[s.line_start - 1 : s.line_end])


def test_transcript_turns_merge_and_the_interviewer_asks(formats_corpus: Path) -> None:
    got = parse_file(formats_corpus / "knative" / "knative-adopter-interview-acme-rockets.vtt", formats_corpus)
    assert got.layout == "speaker turns" and got.interviewee == INTERVIEWEE
    first = next(s for s in got.sections if s.asked)
    assert first.line_start == first.line_end  # the answer's cues are one turn, one line
    assert got.lines[first.line_start - 1].startswith(f"{INTERVIEWEE}: Acme Rockets builds launch hardware")


def test_pdf_pages_and_headings_come_from_the_layout(formats_corpus: Path) -> None:
    got = parse_file(formats_corpus / "knative" / "knative-adopter-interview-acme-rockets.pdf", formats_corpus)
    assert got.title == "Knative Adopter Interview - Acme Rockets"
    sections = list(dict.fromkeys(s.path[0] for s in got.sections if s.asked))
    assert sections == list(dict.fromkeys(s.path[0] for s in _acme().sections if s.asked))
    # Each section was written on a page of its own, after the title page.
    assert [got.page_of(next(s for s in got.sections if s.path[0] == name).line_start) for name in sections] == \
        list(range(2, 2 + len(sections)))


def test_every_format_is_indexed_and_cited_verbatim(formats_corpus: Path, tmp_path: Path) -> None:
    settings = Settings(corpus_dir=formats_corpus, index_dir=tmp_path / "index", state_dir=tmp_path / "var",
                        model_name=FAKE_MODEL)
    embedder = FakeEmbedder()
    report = build(formats_corpus, settings.index_dir, embedder)
    assert len(report.added) == 3 and not report.skipped
    answerer = Answerer(settings, embedder=embedder)
    answerer.reload()
    parsed = {p.relative_to(formats_corpus).as_posix(): parse_file(p, formats_corpus) for p in iter_files(formats_corpus)}
    for source, interview in parsed.items():
        answer = answerer.ask("What were idle services costing Acme Rockets in compute?", 3, adopter="Acme Rockets")
        cited = [c for c in answer.citations if c.source == source]
        assert answer.answered and cited, source
        for c in cited:
            assert c.quote in " ".join(" ".join(interview.lines[c.line_start - 1 : c.line_end]).split()) or \
                c.quote in "\n".join(interview.lines[c.line_start - 1 : c.line_end]), (source, c.quote)
        assert any("fortune in compute" in c.quote for c in answer.citations)


def _docx_bytes(build_doc) -> bytes:
    import docx

    doc = docx.Document()
    build_doc(doc)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def _pdf(draw) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    draw(pdf)
    return bytes(pdf.output())


def _encrypted_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    def text(pdf) -> None:
        pdf.set_font("Helvetica", "", 11)
        pdf.cell(0, 6, "Interviewee: Someone")

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf(text))))
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


BAD_FILES = {
    "corrupt.docx": (lambda: b"PK\x03\x04 this is no zip at all", "not a readable Word document"),
    "encrypted.docx": (lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "password-protected"),
    "nodocument.docx": (lambda: _zip({"hello.txt": b"hi"}), "not a readable Word document"),
    "empty.docx": (lambda: _docx_bytes(lambda doc: None), "empty document"),
    "corrupt.pdf": (lambda: b"%PDF-1.4\n1 0 obj garbage", "not a readable PDF"),
    "encrypted.pdf": (_encrypted_pdf, "encrypted PDF"),
    "scanned.pdf": (lambda: _pdf(lambda pdf: pdf.rect(10, 10, 80, 80)), "no text layer"),
    "broken.vtt": (lambda: b"WEBVTT\n\n00:00:01.000 --> 00:00:0x.000\n<v A>Hi?\n", "line 3: broken timestamp"),
    "broken.srt": (lambda: b"1\n00:00:01,000 --> 00:00:02\nA: Hi?\n", "line 2: broken timestamp"),
    "nocues.vtt": (lambda: b"WEBVTT\n\njust text\n", "no cues"),
    "empty.vtt": (lambda: b"", "empty file"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_document_is_refused_with_its_reason(tmp_path: Path, name: str) -> None:
    make, reason = BAD_FILES[name]
    path = tmp_path / "p" / name
    path.parent.mkdir()
    path.write_bytes(make())
    with pytest.raises(CorpusError, match=reason) as caught:
        parse_file(path, tmp_path)
    assert str(caught.value).startswith(str(path))


def test_bad_documents_and_a_50_mb_one_are_skipped_named_and_listed_in_admin_status(
        fake_answerer: Answerer) -> None:
    corpus = fake_answerer.settings.corpus_dir
    bad = corpus / "bad"
    bad.mkdir()
    for name, (make, _) in BAD_FILES.items():
        (bad / name).write_bytes(make())
    with open(bad / "huge.pdf", "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MB by stat, nothing written
    maintainer = IndexMaintainer(fake_answerer, poll_seconds=0)
    report = maintainer.rebuild_now()
    assert report is not None and len(report.added) == 0  # the three good interviews are still indexed
    skipped = maintainer.status()["skipped"]
    for name, (_, reason) in BAD_FILES.items():
        assert reason.split(":")[0] in skipped[f"bad/{name}"], name
    assert "over the limit" in skipped["bad/huge.pdf"]
    assert maintainer.status()["interviews"] == 3


def test_srt_speakers_come_from_the_cue_text_and_unnamed_cues_continue_a_turn(tmp_path: Path) -> None:
    srt = ("1\n00:00:01,000 --> 00:00:03,000\nPat Host: How long have you run Widgetd?\n\n"
           "2\n00:00:03,000 --> 00:00:05,000\nAna Lima: Two years,\n\n"
           "3\n00:00:05,000 --> 00:00:07,000\non three clusters.\n\n"
           "4\n00:00:07,000 --> 00:00:09,000\nPat Host: What would you improve?\n\n"
           "5\n00:00:09,000 --> 00:00:11,000\nAna Lima: The upgrade guide.\n")
    path = tmp_path / "widgetd" / "initech-interview.srt"
    path.parent.mkdir()
    path.write_text(srt, encoding="utf-8")
    got = parse_file(path, tmp_path)
    assert (got.format, got.project, got.adopter, got.interviewee) == ("srt", "Widgetd", "Initech", "Ana Lima")
    assert _questions(got) == [("How long have you run Widgetd?", "Ana Lima: Two years, on three clusters."),
                               ("What would you improve?", "Ana Lima: The upgrade guide.")]

"""Chunking: one chunk per question, stable ids, exact line spans, long answers split."""

from __future__ import annotations

from pathlib import Path

from bot.ingest.chunking import MAX_WORDS, chunk_interview
from bot.ingest.files import iter_files
from bot.ingest.parse import parse_file, parse_text
from bot.ingest.text import normalize_space, split_sentences, words


def _all_chunks(corpus: Path):
    for path in iter_files(corpus):
        interview = parse_file(path, corpus)
        yield path, chunk_interview(interview)


def test_chunk_text_is_verbatim_at_its_lines(shared_corpus: Path) -> None:
    total = 0
    for path, chunks in _all_chunks(shared_corpus):
        lines = path.read_text(encoding="utf-8").splitlines()
        for c in chunks:
            at_lines = "\n".join(lines[c.line_start - 1 : c.line_end])
            assert normalize_space(c.text) in normalize_space(at_lines)
            assert c.source == path.relative_to(shared_corpus).as_posix()
            total += 1
    assert total > 300


def test_every_chunk_fits_the_model_window_and_carries_a_header(shared_corpus: Path) -> None:
    for _, chunks in _all_chunks(shared_corpus):
        for c in chunks:
            assert len(words(c.text)) <= MAX_WORDS or len(split_sentences(c.text.split("\n"), 1)) == 1
            header = c.embed_text.split("\n", 1)[0]
            assert c.project in header and c.adopter in header and c.question in header


def test_ids_are_stable_and_unique(shared_corpus: Path) -> None:
    first = [[c.chunk_id for c in chunks] for _, chunks in _all_chunks(shared_corpus)]
    second = [[c.chunk_id for c in chunks] for _, chunks in _all_chunks(shared_corpus)]
    assert first == second
    flat = [i for ids in first for i in ids]
    assert len(flat) == len(set(flat))


def test_editing_one_answer_changes_only_that_chunk_id() -> None:
    text = "# P Adopter Interview - A\n\n## S\n\n### Q1?\nOne.\n\n### Q2?\nTwo.\n"
    before = chunk_interview(parse_text(text, "p/a.md"))
    after = chunk_interview(parse_text(text.replace("Two.", "Two, edited."), "p/a.md"))
    assert before[0].chunk_id == after[0].chunk_id
    assert before[1].chunk_id != after[1].chunk_id


def test_long_answer_is_split_at_sentences_with_overlap() -> None:
    sentences = [f"Sentence number {i} talks about autoscaling and cost in some detail here." for i in range(60)]
    body = "\n".join(" ".join(sentences[i : i + 3]) for i in range(0, 60, 3))
    text = f"# P Adopter Interview - A\n\n## S\n\n### Long?\n{body}\n"
    chunks = chunk_interview(parse_text(text, "p/a.md"))
    assert len(chunks) > 1
    lines = text.splitlines()
    for c in chunks:
        assert len(words(c.text)) <= MAX_WORDS
        assert c.text.strip().startswith("Sentence number") and c.text.rstrip().endswith(".")
        assert normalize_space(c.text) in normalize_space("\n".join(lines[c.line_start - 1 : c.line_end]))
    # Consecutive pieces overlap by a sentence so no answer is cut off from its context.
    for a, b in zip(chunks, chunks[1:]):
        last_sentence = split_sentences(a.text.split("\n"), a.line_start)[-1].text
        assert last_sentence in b.text


def test_headings_without_answers_make_no_chunk() -> None:
    text = "# P Adopter Interview - A\n\n## S\n\n### Empty?\n\n### Full?\nYes.\n"
    assert [c.question for c in chunk_interview(parse_text(text, "p/a.md"))] == ["Full?"]

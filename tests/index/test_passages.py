"""Passage columns (bot/index/passages.py): what a start reads instead of parsing chunks.jsonl."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bot.index import passages
from bot.index import store
from bot.index import generations
from bot.ingest.chunking import Chunk
from tests.fakes import FakeEmbedder
from bot.index.build import build
from bot.index.keyword import Tokens, tokenize
from bot.index.passages import PassageFiles, PassageWriter


def _chunk(i: int, text: str, path: tuple[str, ...]) -> Chunk:
    return Chunk(chunk_id=f"{i:016x}", source=f"p/s{i % 3}.md", project="Knative", adopter=f"Ädopter {i % 3}",
                 section=path[0], question=path[-1], heading_path=path, text=text, line_start=i + 1,
                 line_end=i + 3, embed_text=f"header\n{text}")


TEXTS = ["plain text", "", "multi\nline\r\nwith\ttabs", "naïve café — 東京 🚀 résumé", "a NUL \x00 inside",
         "x" * 5000, "'quotes\" and \\backslashes", "last"]
PATHS = [("Only",), ("Sección", "¿Qué?"), ("A", "B", "C — d"), ("Only",)]
CHUNKS = [_chunk(i, t, PATHS[i % len(PATHS)]) for i, t in enumerate(TEXTS)]


def _served(chunks: list[Chunk]) -> list[Chunk]:
    return [replace(c, embed_text="") for c in chunks]


def _write(folder: Path, parts, seed: PassageFiles | None = None) -> None:
    folder.mkdir()
    writer = PassageWriter(folder, seed)
    for part in parts:
        if isinstance(part, list):
            writer.add_chunks(part)
        else:
            writer.copy(*part)
    writer.finish()


@pytest.mark.parametrize("block", [1, 3, 16384])
def test_passages_read_back_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    monkeypatch.setattr(passages, "_BLOCK_ROWS", block)
    _write(tmp_path / "a", [CHUNKS[:3], CHUNKS[3:]])
    files = PassageFiles.open(tmp_path / "a", len(CHUNKS))
    try:
        assert files.chunks() == _served(CHUNKS)
        _same_tokens(files.text_tokens(), tokenize(c.text for c in CHUNKS))
        assert files.texts(2, 3) == TEXTS[2:5]
    finally:
        files.close()


def _same_tokens(got: Tokens | None, want: Tokens) -> None:
    assert got is not None
    assert got.ids.tolist() == want.ids.tolist() and got.ptr.tolist() == want.ptr.tolist()


def test_copied_rows_read_back_as_their_source(tmp_path: Path) -> None:
    _write(tmp_path / "a", [CHUNKS])
    source = PassageFiles.open(tmp_path / "a", len(CHUNKS))
    extra = [_chunk(99, "new één", ("New",))]
    try:
        _write(tmp_path / "b", [(source, 5, 3), extra, (source, 0, 2), [], (source, 2, 0)], seed=source)
        with pytest.raises(ValueError, match="seeded"):
            _write(tmp_path / "c", [(source, 0, 1)])
    finally:
        source.close()
    copied = PassageFiles.open(tmp_path / "b", 6)
    want = CHUNKS[5:8] + extra + CHUNKS[0:2]
    try:
        assert copied.chunks() == _served(want)
        _same_tokens(copied.text_tokens(), tokenize(c.text for c in want))
    finally:
        copied.close()


def test_rows_copied_from_terms_of_other_tokenizer_rules_are_tokenized_again(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passages, "fingerprint", lambda: "old rules")
    _write(tmp_path / "a", [CHUNKS])
    source = PassageFiles.open(tmp_path / "a", len(CHUNKS))
    assert source.text_tokens() is not None
    monkeypatch.undo()
    try:
        assert source.text_tokens() is None  # made by other rules: not used
        _write(tmp_path / "b", [(source, 1, 6)], seed=source)
    finally:
        source.close()
    copied = PassageFiles.open(tmp_path / "b", 6)
    try:
        assert copied.chunks() == _served(CHUNKS[1:7])
        _same_tokens(copied.text_tokens(), tokenize(c.text for c in CHUNKS[1:7]))
    finally:
        copied.close()


def test_an_empty_generation_has_no_passages(tmp_path: Path) -> None:
    _write(tmp_path / "a", [[]])
    assert PassageFiles.open(tmp_path / "a", 0).chunks() == []


def test_passage_files_that_disagree_are_refused(tmp_path: Path) -> None:
    _write(tmp_path / "a", [CHUNKS])
    with pytest.raises(passages.PassageFormatError):
        PassageFiles.open(tmp_path / "a", len(CHUNKS) + 1)
    with (tmp_path / "a" / passages.PASSAGES).open("ab") as f:
        f.write(b"!")
    with pytest.raises(passages.PassageFormatError):
        PassageFiles.open(tmp_path / "a", len(CHUNKS))
    (tmp_path / "a" / passages.PASSAGE_TABLES).write_text('{"names": []}')
    with pytest.raises(passages.PassageFormatError):
        PassageFiles.open(tmp_path / "a", len(CHUNKS))


@pytest.mark.parametrize("edit", [lambda t: t.paths.append(["x"]), lambda t: t.paths.append([10 ** 6]),
                                  lambda t: t.names.__setitem__(0, 5)])
def test_tables_naming_what_they_do_not_have_are_refused(tmp_path: Path, edit) -> None:
    _write(tmp_path / "a", [CHUNKS])
    tables = passages.Tables.read(tmp_path / "a" / passages.PASSAGE_TABLES)
    edit(tables)
    (tmp_path / "a" / passages.PASSAGE_TABLES).write_text(tables.to_json())
    with pytest.raises(passages.PassageFormatError):
        PassageFiles.open(tmp_path / "a", len(CHUNKS))


def _chunked(corpus: Path, index_dir: Path) -> list[Chunk]:
    """The passages the chunker makes of the indexed files, in row order, as served (no embed_text)."""
    from bot.ingest.chunking import chunk_interview
    from bot.ingest.parse import parse_file

    files = store.read_manifest(index_dir).files
    return [replace(c, embed_text="") for source in sorted(files, key=lambda s: files[s].row)
            for c in chunk_interview(parse_file(corpus / source, corpus))]


def test_a_build_writes_passages_that_load_as_the_chunker_made_them(fake_settings) -> None:
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    build(corpus, index_dir, FakeEmbedder())
    manifest = store.read_manifest(index_dir)
    assert set(passages.FILES) <= set(manifest.checksums) and manifest.format_version == store.FORMAT_VERSION
    assert not list(store.load(index_dir, "fake").path.glob("*.jsonl"))  # the columns are the one passage record
    index = store.load(index_dir, "fake")
    assert index.chunks == _chunked(corpus, index_dir)
    _same_tokens(index.text_tokens(), tokenize(c.text for c in index.chunks))
    # An incremental build copies the unchanged files' passages and adds the new one's.
    (corpus / "zz.md").write_text("# Z Adopter Interview - Zürich AG\n\n## Über\n\n### Warum?\nWeil es geht.\n")
    first = sorted(p for p in corpus.rglob("*.md") if p.name != "zz.md")[0]
    first.write_text(first.read_text() + "\nOne more line.\n")
    report = build(corpus, index_dir, FakeEmbedder())
    assert report.added == ["zz.md"] and len(report.changed) == 1
    index = store.load(index_dir, "fake")
    assert index.chunks == _chunked(corpus, index_dir) and any(c.adopter == "Zürich AG" for c in index.chunks)
    _same_tokens(index.text_tokens(), tokenize(c.text for c in index.chunks))


@pytest.mark.parametrize("name", passages.FILES)
def test_a_damaged_passage_file_is_named_at_load(fake_settings, name: str) -> None:
    build(fake_settings.corpus_dir, fake_settings.index_dir, FakeEmbedder())
    target = fake_settings.index_dir / f"gen-{generations.current_generation(fake_settings.index_dir):06d}" / name
    data = bytearray(target.read_bytes())
    data[-1] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(store.StoreError) as err:
        store.load(fake_settings.index_dir, "fake")
    assert str(target) in str(err.value) and "damaged" in str(err.value) and "rebuild" in str(err.value)


def test_a_generation_without_passages_is_refused_and_the_next_build_remakes_it(fake_settings) -> None:
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    build(corpus, index_dir, FakeEmbedder())
    expected = store.load(index_dir, "fake").chunks
    gen = index_dir / f"gen-{generations.current_generation(index_dir):06d}"
    # Rewrite it as format 2 wrote it: no passage files.
    manifest = store.read_manifest(index_dir)
    for name in passages.FILES:
        (gen / name).unlink()
        del manifest.checksums[name]
    manifest.format_version = 2
    manifest.digest = manifest.compute_digest()
    (gen / store.MANIFEST).write_text(manifest.to_json())
    with pytest.raises(store.StoreError, match="has format 2.*rebuild it with `qabot index --full`"):
        store.load(index_dir, "fake")
    report = build(corpus, index_dir, FakeEmbedder())
    assert report.chunks_embedded == report.chunks_total == len(expected)
    assert set(passages.FILES) <= set(store.read_manifest(index_dir).checksums)
    assert store.load(index_dir, "fake").chunks == expected == _chunked(corpus, index_dir)


def test_a_format_4_index_is_refused_with_the_rebuild_advice(fake_settings) -> None:
    corpus, index_dir = fake_settings.corpus_dir, fake_settings.index_dir
    build(corpus, index_dir, FakeEmbedder())
    gen = store.load(index_dir, "fake").path
    # As format 4 wrote it: chunks.jsonl offsets in every file entry (and the digest over them).
    d = json.loads((gen / store.MANIFEST).read_text())
    d["format_version"] = 4
    for entry in d["files"].values():
        entry.update(offset=0, nbytes=0)
    (gen / store.MANIFEST).write_text(json.dumps(d))
    with pytest.raises(store.StoreError, match="has format 4.*rebuild it with `qabot index --full`"):
        store.load(index_dir, "fake")
    report = build(corpus, index_dir, FakeEmbedder())  # a plain build starts afresh
    assert report.wrote and report.chunks_embedded == report.chunks_total
    assert store.read_manifest(index_dir).format_version == store.FORMAT_VERSION

"""Nothing outside the corpus folder is ever read, and every entry that is not read is named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.index import store
from bot.serve.app import create_app
from bot.ingest.files import discover, read_text
from tests.fakes import FakeEmbedder
from bot.index.build import build, is_stale

SECRET = "root:x:0:0:root:/root:/bin/bash\nzorgmatic:x:1000:1000::/home/zorgmatic:/usr/sbin/nologin\n"
INTERVIEW = "# Knative Adopter Interview - Inner\n\n## Usage\n\n### Why?\nWe like the plumbus lattice.\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A passwd-like file outside the corpus folder."""
    secret = tmp_path / "etc" / "passwd"
    secret.parent.mkdir()
    secret.write_text(SECRET)
    return secret


def _indexed_text(index_dir: Path) -> str:
    return "\n".join(c.text for c in store.load(index_dir, "fake").chunks)


def test_link_to_a_file_outside_is_skipped_and_named(fake_settings, outside: Path) -> None:
    corpus = fake_settings.corpus_dir
    (corpus / "knative" / "knative-adopter-interview-x.md").symlink_to(outside)
    report = build(corpus, fake_settings.index_dir, FakeEmbedder())
    assert report.skipped["knative/knative-adopter-interview-x.md"].startswith("link leads outside")
    assert "zorgmatic" not in _indexed_text(fake_settings.index_dir)
    assert not is_stale(corpus, fake_settings.index_dir, "fake")  # the skip is remembered, not retried forever


def test_relative_link_climbing_out_is_skipped(fake_settings, outside: Path) -> None:
    corpus = fake_settings.corpus_dir
    link = corpus / "knative" / "sneaky.md"
    link.symlink_to(os.path.relpath(outside, link.parent))
    assert "knative/sneaky.md" in discover(corpus).skipped
    assert link not in discover(corpus).files


def test_link_to_a_file_inside_is_indexed(fake_settings, tmp_path: Path) -> None:
    corpus = fake_settings.corpus_dir
    (corpus / "drafts").mkdir()
    (corpus / "drafts" / "inner.md").write_text(INTERVIEW)
    (corpus / "knative" / "knative-adopter-interview-inner.md").symlink_to(Path("..") / "drafts" / "inner.md")
    report = build(corpus, fake_settings.index_dir, FakeEmbedder())
    assert "knative/knative-adopter-interview-inner.md" in report.added
    assert not report.skipped


def test_links_to_folders_are_not_followed(fake_settings, outside: Path) -> None:
    corpus = fake_settings.corpus_dir
    (outside.parent / "leak.md").write_text(INTERVIEW.replace("plumbus", "exfiltrated"))
    (corpus / "mounted").symlink_to(outside.parent, target_is_directory=True)
    report = build(corpus, fake_settings.index_dir, FakeEmbedder())
    assert report.skipped == {"mounted/": "link to a folder: not followed"}
    assert "exfiltrated" not in _indexed_text(fake_settings.index_dir)


def test_broken_links_loops_and_fifos_are_named(fake_settings) -> None:
    corpus = fake_settings.corpus_dir
    (corpus / "gone.md").symlink_to(corpus / "nowhere.md")
    (corpus / "loop-a.md").symlink_to(corpus / "loop-b.md")
    (corpus / "loop-b.md").symlink_to(corpus / "loop-a.md")
    os.mkfifo(corpus / "pipe.md")
    skipped = discover(corpus).skipped
    assert skipped == {"gone.md": "broken link", "loop-a.md": "link loop", "loop-b.md": "link loop",
                       "pipe.md": "not a regular file"}
    report = build(corpus, fake_settings.index_dir, FakeEmbedder())  # and the build does not hang on the FIFO
    assert set(skipped) <= set(report.skipped) and len(report.added) == 3


def test_unreadable_folder_is_named(fake_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = fake_settings.corpus_dir
    locked = corpus / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path):  # tests run as root, for whom chmod 000 hides nothing: refuse the folder here instead
        if os.fspath(path) == os.fspath(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert discover(corpus).skipped == {"locked/": "cannot read folder (Permission denied)"}


def test_utf16_with_a_bom_is_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    path.write_bytes(INTERVIEW.encode("utf-16"))
    assert read_text(path)[0] == INTERVIEW


def test_search_over_http_never_returns_the_outside_file(fake_settings, outside: Path) -> None:
    from bot.answer.answerer import Answerer

    corpus = fake_settings.corpus_dir
    (corpus / "knative" / "knative-adopter-interview-x.md").symlink_to(outside)
    embedder = FakeEmbedder()
    build(corpus, fake_settings.index_dir, embedder)
    answerer = Answerer(fake_settings, embedder=embedder)
    answerer.reload()
    with TestClient(create_app(fake_settings, answerer, poll_seconds=0)) as client:
        hits = client.get("/search", params={"q": "root nologin zorgmatic", "k": 10}).json()
        assert hits["results"] and all("zorgmatic" not in h["text"] for h in hits["results"])
        listed = client.get("/interviews").json()
        assert all("knative-adopter-interview-x" not in str(i) for i in listed.get("interviews", listed))


def test_links_added_under_watch_follow_the_same_rules(watching, fake_answerer, outside: Path) -> None:
    """--watch builds through the same walk: an outside link is named and never served, an inside one is."""
    from tests.serve.test_watch import wait_for

    maintainer, _ = watching
    corpus = fake_answerer.settings.corpus_dir
    (corpus / "knative" / "knative-adopter-interview-x.md").symlink_to(outside)
    (corpus / "drafts").mkdir()
    (corpus / "drafts" / "inner.md").write_text(INTERVIEW)
    (corpus / "knative" / "knative-adopter-interview-inner.md").symlink_to(Path("..") / "drafts" / "inner.md")
    wait_for(lambda: "knative/knative-adopter-interview-inner.md" in fake_answerer.index.manifest.files, 20)
    assert maintainer.status()["skipped"]["knative/knative-adopter-interview-x.md"].startswith("link leads outside")
    assert "knative/knative-adopter-interview-x.md" not in fake_answerer.index.manifest.files
    assert all("zorgmatic" not in p.text for p in fake_answerer.search("root nologin zorgmatic", 10))

"""A short soak in CI: real `qabot serve --watch` on loopback under concurrency 8 while interviews are
added, changed and deleted and a `qabot index` is SIGKILLed (bench/soak.py runs the full 60 s version)."""

from __future__ import annotations

from pathlib import Path

from bench.soak import Timeline, run_soak


def test_short_soak_has_no_errors_no_stale_sources_and_ends_equal_to_a_clean_rebuild(tmp_path: Path) -> None:
    out = run_soak(seconds=8, model="fake", concurrency=8, every=1.2, work=tmp_path / "soak")
    assert out["requests"] > 50
    assert out["server_errors"] == 0 and out["failed_requests"] == 0, out["failures"]
    assert out["stale_count"] == 0, out["stale_or_unknown_sources"]
    assert out["final_equals_clean_rebuild"]
    ops = " ".join(out["file_ops"])
    assert "add " in ops and "change " in ops and "delete " in ops and "SIGKILLed" in ops


def test_timeline_knows_when_a_file_existed() -> None:
    t = Timeline(born={"a.md": [10.0, 30.0]}, died={"a.md": [20.0]})
    assert t.existed("a.md", 15, 16) and t.existed("a.md", 19, 25) and t.existed("a.md", 40, 41)
    assert not t.existed("a.md", 21, 29) and not t.existed("b.md", 0, 100)

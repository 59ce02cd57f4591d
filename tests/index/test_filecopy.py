"""bot/index/filecopy.py: byte ranges copied file to file, by the kernel or by reads and writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.index import filecopy
@pytest.mark.parametrize("kernel", [True, False])
def test_ranges_land_where_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: bool) -> None:
    if not kernel:
        monkeypatch.setattr(filecopy.os, "copy_file_range", lambda *a: (_ for _ in ()).throw(OSError(18, "EXDEV")))
    source = tmp_path / "source"
    source.write_bytes(bytes(range(256)) * 40)
    with (tmp_path / "target").open("w+b") as target:
        target.write(b"head")
        filecopy.append_range(source, 10, target, 300)
        target.write(b"tail")
        filecopy.copy_range(source, 0, target, 2, 2)
    data = source.read_bytes()
    assert (tmp_path / "target").read_bytes() == b"he" + data[0:2] + data[10:310] + b"tail"


def test_a_source_shorter_than_the_range_is_an_error(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"x" * 100)
    with (tmp_path / "target").open("wb") as target, pytest.raises(filecopy.ShortFile, match="source"):
        filecopy.append_range(source, 50, target, 100)

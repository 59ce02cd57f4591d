"""Make N synthetic interviews by recombining the real ones: structure of one, sentences of all, shuffled.

No text is invented: every heading comes from a real interview, every answer sentence and bullet is a real
sentence from some interview, and names and numbers are swapped among the ones the corpus already has.

    python bench/gen_corpus.py --n 1000 --out /tmp/qabot-bench/corpus-1000 [--source ../shared/corpus] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "corpus"

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z*\"“(])")
_NUMBER = re.compile(r"\b\d[\d,.]*\b")
_BULLET = re.compile(r"^(\s*(?:[-*+]|\d+\.)\s+)(.*)$")
_TITLE = re.compile(r"^#\s+(?P<project>.+?)\s+adopter\s+interview\s*[-–—:]\s*(?P<adopter>.+?)\s*$", re.IGNORECASE)


@dataclass
class Pools:
    """What the real corpus offers to recombine."""

    templates: list[tuple[str, str, str, list[str]]] = field(default_factory=list)  # (folder, project, adopter, lines)
    sentences: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    adopters: list[str] = field(default_factory=list)


def _is_structure(line: str) -> bool:
    s = line.strip()
    return (not s or s.startswith(("#", "---", "|", ">", "```")) or s.endswith(":") or s.endswith(":**")
            or (s.startswith("**") and s.endswith("**")) or s.startswith("**") and ":**" in s[:40])


def read_pools(source: Path) -> Pools:
    """Templates, sentences, bullets, numbers and adopter names of the real corpus."""
    pools = Pools()
    for path in sorted(source.rglob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        project = adopter = None
        for line in lines:
            m = _TITLE.match(line)
            if m:
                project, adopter = m["project"].strip(), m["adopter"].strip()
                break
        if not project:
            continue
        pools.adopters.append(adopter)
        pools.templates.append((path.parent.name, project, adopter, lines))
        in_front = lines[:1] == ["---"]
        for i, line in enumerate(lines):
            if in_front:
                if i > 0 and line.strip() == "---":
                    in_front = False
                continue
            if _is_structure(line):
                continue
            pools.numbers += _NUMBER.findall(line)
            b = _BULLET.match(line)
            if b:
                pools.bullets.append(b[2].strip())
            else:
                pools.sentences += [s.strip() for s in _SENTENCE.split(line.strip()) if len(s.strip()) > 20]
    if not pools.templates:
        raise SystemExit(f"no interviews found in {source}")
    return pools


def _swap_numbers(text: str, rng: random.Random, numbers: list[str]) -> str:
    return _NUMBER.sub(lambda m: rng.choice(numbers), text) if numbers else text


def synthesize(i: int, pools: Pools, seed: int) -> tuple[str, str, str]:
    """(folder, file name, text) of synthetic interview number i."""
    rng = random.Random(seed * 1_000_003 + i)
    folder, project, real_adopter, lines = rng.choice(pools.templates)
    first, second = rng.sample(pools.adopters, 2) if len(pools.adopters) > 1 else (pools.adopters[0], "")
    adopter = f"{first.split()[0]} {second.split()[0]} {i}".strip()
    slug = re.sub(r"[^a-z0-9]+", "-", adopter.lower()).strip("-")
    out: list[str] = []
    in_front = lines[:1] == ["---"]
    for j, line in enumerate(lines):
        if in_front:
            if j > 0 and line.strip() == "---":
                in_front = False
            out.append(line.replace(real_adopter, adopter))
            continue
        if _TITLE.match(line) or _is_structure(line):
            out.append(line.replace(real_adopter, adopter))
            continue
        b = _BULLET.match(line)
        if b:
            out.append(b[1] + _swap_numbers(rng.choice(pools.bullets), rng, pools.numbers))
            continue
        n = max(1, len(_SENTENCE.split(line.strip())))
        out.append(" ".join(_swap_numbers(s, rng, pools.numbers) for s in rng.sample(pools.sentences, n)))
    return folder, f"{folder}-adopter-interview-{slug}.md", "\n".join(out) + "\n"


def generate(n: int, out: Path, source: Path = DEFAULT_SOURCE, seed: int = 7, clean: bool = True) -> list[Path]:
    """Write n synthetic interviews under out/<project>/; return their paths."""
    pools = read_pools(source)
    if clean and out.exists():
        shutil.rmtree(out)
    written = []
    for i in range(n):
        folder, name, text = synthesize(i, pools, seed)
        path = out / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, required=True, help="how many interviews (e.g. 23, 1000, 10000)")
    ap.add_argument("--out", type=Path, required=True, help="output folder (replaced)")
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="the real corpus to recombine")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("--n must be at least 1")
    paths = generate(args.n, args.out, args.source, args.seed)
    size = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} interviews ({size / 1e6:.1f} MB) to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Meeting transcripts (WebVTT and SRT, read with webvtt-py) as speaker turns, one "Name: text" line each.

A cue's speaker comes from its voice tag (`<v Lin Sun>`) or a "Name:" at its start; consecutive cues of one
speaker are merged into one turn, and turns are separated by a blank line. The text parser then finds the
interviewer's questions among the turns (`bot/ingest/turns.py`). Timestamps are checked first: webvtt-py
skips a cue with a broken one silently, and a transcript that lost cues would be cited wrongly."""

from __future__ import annotations

import io
import re

from bot.ingest.files import CorpusError

_VTT_TIME = r"(?:\d{1,2}:)?\d{2}:\d{2}\.\d{3}"
_SRT_TIME = r"\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}"
_TIMING = {"vtt": re.compile(rf"^\s*{_VTT_TIME}\s+-->\s+{_VTT_TIME}(?:\s+.*)?$"),
           "srt": re.compile(rf"^\s*{_SRT_TIME}\s+-->\s+{_SRT_TIME}(?:\s+.*)?$")}
_SPEAKER = re.compile(r"^(?P<name>[^\W\d_][\w.'’-]{0,30}(?:[ \t][^\W_][\w.'’-]{0,30}){0,3})[ \t]*:[ \t]+(?P<text>\S.*)$")
_TAG = re.compile(r"</?[^>\n]{1,80}>")


def _check_timings(text: str, fmt: str) -> None:
    """CorpusError naming the first line whose timing is broken."""
    timing = _TIMING[fmt]
    cues = 0
    for n, line in enumerate(text.splitlines(), 1):
        if "-->" in line:
            if not timing.match(line):
                raise CorpusError(f"line {n:,}: broken timestamp {line.strip()[:80]!r}")
            cues += 1
    if not cues:
        raise CorpusError(f"no cues: not a {'WebVTT' if fmt == 'vtt' else 'SRT'} transcript")


def _cues(text: str, fmt: str) -> list[tuple[str | None, str]]:
    """(speaker or None, text) of every cue, in order."""
    import webvtt  # only imported when a transcript is read

    try:
        if fmt == "vtt":
            captions = webvtt.from_buffer(io.StringIO(text), format="vtt")
        else:
            captions = webvtt.from_buffer(io.StringIO(text), format="srt")
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError) as exc:
        raise CorpusError(f"not a readable {'WebVTT' if fmt == 'vtt' else 'SRT'} transcript ({exc})") from exc
    cues: list[tuple[str | None, str]] = []
    for caption in captions:
        spoken = " ".join(_TAG.sub("", caption.text).split())
        if not spoken:
            continue
        speaker = getattr(caption, "voice", None)
        if not speaker:
            m = _SPEAKER.match(spoken)
            if m:
                speaker, spoken = m.group("name"), m.group("text")
        cues.append((" ".join(speaker.split()) if speaker else None, spoken))
    return cues


def transcript_text(text: str, fmt: str) -> str:
    """The turns of a .vtt or .srt transcript, one "Name: text" line per turn; CorpusError if it is broken."""
    _check_timings(text, fmt)
    turns: list[tuple[str | None, list[str]]] = []
    for speaker, spoken in _cues(text, fmt):
        if turns and speaker == turns[-1][0] and speaker is not None:
            turns[-1][1].append(spoken)
        elif turns and speaker is None and turns[-1][0] is not None:
            turns[-1][1].append(spoken)  # a cue without a name goes on with the one who spoke last
        else:
            turns.append((speaker, [spoken]))
    if not turns:
        raise CorpusError("empty transcript: no spoken text")
    lines = [(f"{speaker}: " if speaker else "") + " ".join(parts) for speaker, parts in turns]
    return "\n\n".join(lines) + "\n"

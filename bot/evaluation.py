"""Retrieval and answer metrics over a labelled question file (the dev.jsonl format)."""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

from bot.ingest.text import words
from bot.search.query import name_key, names_in

logger = logging.getLogger(__name__)

HOLD_FRACTION = 0.6  # a passage "holds" a gold quote when it has at least this share of its words
RANKS = (1, 3, 5, 10)
# Conversation turns (kind "conversation" lines) are scored as questions of these two kinds.
FIRST_TURN, FOLLOW_UP = "first-turn", "follow-up"
KINDS_ORDER = ("fact", "paraphrase", "filtered", "thematic", "unanswerable", FIRST_TURN, FOLLOW_UP)
# The quality targets (issue 14), shown beside the measured numbers.
TARGETS = {"recall@5": 0.95, "mrr@10": 0.85, "quote_hit": 0.85, "thematic_coverage": 0.80,
           "citation_precision": 0.60, "unanswerable_flagged": 0.67, "false_refusals": 0.05}
# Follow-up turns of conversations (issue 16); coverage is the share of the gold quotes the citations hold.
FOLLOW_UP_TARGETS = {"answer_hit": 0.85, "gold_cited": 0.80, "unanswerable_flagged": 0.67,
                     "false_refusals": 0.10}


class EvalError(ValueError):
    """The question file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Gold:
    """A gold evidence quote and the corpus file it comes from."""

    file: str
    quote: str


@dataclass(frozen=True)
class EvalQuestion:
    """One labelled question."""

    id: str
    question: str
    kind: str
    gold: tuple[Gold, ...]
    project: str | None = None
    adopter: str | None = None
    history: tuple[str, ...] = ()  # a conversation turn: the earlier questions, oldest first
    standalone: str | None = None  # a follow-up: the gold standalone question it stands for

    @property
    def answerable(self) -> bool:
        """True when the interviews hold an answer (some gold evidence exists)."""
        return bool(self.gold)


class PassageLike(Protocol):
    """What the scorer reads from a ranked passage or a citation."""

    source: str
    project: str
    text: str


class System(Protocol):
    """What is evaluated: ranked search and (optionally) full answers, like `Answerer`."""

    def search(self, query: str, k: int = 10, project: str | None = None,
               adopter: str | None = None) -> Sequence[Any]:
        """Ranked passages."""
        ...


def _parse_line(raw: str, where: str) -> list[EvalQuestion]:
    try:
        d = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise EvalError(f"{where}: not valid JSON ({exc.msg})") from exc
    if not isinstance(d, dict):
        raise EvalError(f"{where}: expected a JSON object")
    if d.get("kind") == "conversation":
        return _parse_conversation(d, where)
    return [_parse_question(d, where)]


def _parse_conversation(d: dict[str, Any], where: str) -> list[EvalQuestion]:
    """A conversation's turns as questions: kind FIRST_TURN or FOLLOW_UP, each with the earlier questions."""
    turns = d.get("turns")
    if not isinstance(turns, list) or not turns or not all(isinstance(t, dict) for t in turns):
        raise EvalError(f"{where}: a conversation needs a non-empty \"turns\" list of objects")
    cid = str(d.get("id") or where)
    out: list[EvalQuestion] = []
    for n, turn in enumerate(turns, 1):
        standalone = turn.get("standalone")
        if standalone is not None and not isinstance(standalone, str):
            raise EvalError(f"{where}: turn {n}: \"standalone\" must be a string")
        q = _parse_question({**turn, "id": f"{cid}.{n}", "kind": FIRST_TURN if n == 1 else FOLLOW_UP},
                            f"{where}: turn {n}")
        out.append(replace(q, history=tuple(t.question for t in out), standalone=standalone or None))
    return out


def _parse_question(d: dict[str, Any], where: str) -> EvalQuestion:
    question = d.get("question")
    if not isinstance(question, str) or not question.strip():
        raise EvalError(f"{where}: missing or empty \"question\"")
    gold_raw = d.get("gold") or []
    if not isinstance(gold_raw, list):
        raise EvalError(f"{where}: \"gold\" must be a list")
    gold = []
    for g in gold_raw:
        if not isinstance(g, dict) or not isinstance(g.get("file"), str) or not isinstance(g.get("quote"), str):
            raise EvalError(f"{where}: each gold item needs string \"file\" and \"quote\"")
        gold.append(Gold(g["file"], g["quote"]))
    kind = d.get("kind") or ("unanswerable" if not gold else "fact")
    return EvalQuestion(str(d.get("id") or where), question, str(kind), tuple(gold),
                        d.get("project") or None, d.get("adopter") or None)


def load_questions(path: Path) -> list[EvalQuestion]:
    """Read a JSONL question file; blank lines are skipped; bad lines raise EvalError naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path}: cannot read ({exc})") from exc
    questions = [q for n, raw in enumerate(text.splitlines(), 1) if raw.strip()
                 for q in _parse_line(raw, f"{path}:{n}")]
    if not questions:
        raise EvalError(f"{path}: no questions")
    return questions


def holds(text: str, quote: str, fraction: float = HOLD_FRACTION) -> bool:
    """True when `text` contains at least `fraction` of the distinct words of `quote`."""
    want = set(words(quote))
    if not want:
        return False
    return len(want & set(words(text))) / len(want) >= fraction


def matched_gold(passage: PassageLike, gold: Iterable[Gold]) -> set[int]:
    """Indexes of the gold quotes this passage holds (same file, enough of the words)."""
    return {i for i, g in enumerate(gold) if g.file == passage.source and holds(passage.text, g.quote)}


def ideal_hits(gold: Sequence[Gold], corpus: Sequence[PassageLike] | None) -> int:
    """How many distinct passages the gold quotes need (greedy cover over the corpus passages)."""
    if not corpus:
        return len(gold)
    cover = [m for m in (matched_gold(p, gold) for p in corpus if p.source in {g.file for g in gold}) if m]
    left, n = set().union(*cover) if cover else set(), 0
    while left:
        best = max(cover, key=lambda m: len(m & left))
        left -= best
        n += 1
    return max(n, 1) if gold else 0


@dataclass
class QuestionResult:
    """Everything measured for one question."""

    id: str
    kind: str
    answerable: bool
    first_rank: int | None = None  # 1-based rank of the first passage holding gold evidence
    covered_at: dict[int, float] = field(default_factory=dict)  # k -> share of gold quotes held in top k
    ndcg10: float = 0.0
    passage_words: float = 0.0
    answered: bool | None = None
    cited: int = 0
    gold_files_cited: float | None = None  # share of the gold interviews among the citations
    quote_hit: bool | None = None
    off_project: float | None = None  # share of citations from a project the gold evidence is not in
    answer_hit: bool | None = None  # some citation holds gold evidence
    gold_cited: float | None = None  # share of the gold quotes some citation holds
    citation_precision: float | None = None  # share of the citations that hold gold evidence
    latency_ms: float | None = None
    question: str = ""
    top: list[str] = field(default_factory=list)  # the first 3 ranked passages, as "file: interview question"
    cited_files: list[str] = field(default_factory=list)  # the files of the answer's citations, in order
    gold_files: list[str] = field(default_factory=list)
    resolved_question: str = ""  # a conversation turn: the standalone question the system answered
    # A follow-up with a gold standalone: the resolved question names every adopter/project the standalone names.
    resolved_names: bool | None = None


def _label(p: Any) -> str:
    """"knative/x.md: How long has your organization used the project?" for a passage (question optional)."""
    question = getattr(p, "question", "") or ""
    return f"{p.source}: {question[:70]}" if question else p.source


def score_ranking(q: EvalQuestion, passages: Sequence[PassageLike], ideal: int) -> QuestionResult:
    """Rank metrics of one question's ranked passages."""
    r = QuestionResult(q.id, q.kind, q.answerable, question=q.question, top=[_label(p) for p in passages[:3]],
                       gold_files=sorted({g.file for g in q.gold}))
    if passages:
        r.passage_words = statistics.mean(len(words(p.text)) for p in passages[:5])
    if not q.answerable:
        return r
    covered: set[int] = set()
    dcg = 0.0
    for rank, p in enumerate(passages[:10], 1):
        new = matched_gold(p, q.gold) - covered
        if matched_gold(p, q.gold) and r.first_rank is None:
            r.first_rank = rank
        if new:
            dcg += 1.0 / math.log2(rank + 1)
            covered |= new
        if rank in RANKS:
            r.covered_at[rank] = len(covered) / len(q.gold)
    for k in RANKS:
        r.covered_at.setdefault(k, len(covered) / len(q.gold))
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(ideal, 10)))
    r.ndcg10 = dcg / idcg if idcg else 0.0
    return r


def score_answer(q: EvalQuestion, r: QuestionResult, answer: Any, latency_ms: float) -> None:
    """Add the answer metrics (answered, coverage, quote, scope) of one question to its result."""
    r.answered = bool(answer.answered)
    r.latency_ms = latency_ms
    cites = list(answer.citations)
    r.cited = len(cites)
    r.cited_files = [c.source for c in cites]
    if not q.answerable:
        return
    gold_files = {g.file for g in q.gold}
    r.gold_files_cited = len(gold_files & {c.source for c in cites}) / len(gold_files)
    r.quote_hit = any(c.source == g.file and holds(c.quote, g.quote) for c in cites for g in q.gold)
    holding = [bool(matched_gold(c, q.gold)) for c in cites]
    r.answer_hit = any(holding)
    r.gold_cited = len(set().union(*(matched_gold(c, q.gold) for c in cites))) / len(q.gold) if cites else 0.0
    r.citation_precision = sum(holding) / len(holding) if holding else None
    gold_projects = {g.file.split("/", 1)[0].lower() for g in q.gold}
    if cites:
        r.off_project = sum(c.source.split("/", 1)[0].lower() not in gold_projects for c in cites) / len(cites)


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(statistics.mean(vals), 4) if vals else None


def summarize(results: Sequence[QuestionResult]) -> dict[str, Any]:
    """Aggregate metrics over a group of question results."""
    ans = [r for r in results if r.answerable]
    una = [r for r in results if not r.answerable]
    out: dict[str, Any] = {"questions": len(results), "answerable": len(ans), "unanswerable": len(una)}
    if ans:
        for k in RANKS:
            out[f"recall@{k}"] = _mean(1.0 if r.first_rank and r.first_rank <= k else 0.0 for r in ans)
        out["mrr@10"] = _mean(1.0 / r.first_rank if r.first_rank else 0.0 for r in ans)
        out["ndcg@10"] = _mean(r.ndcg10 for r in ans)
        out["gold_coverage@5"] = _mean(r.covered_at.get(5) for r in ans)
        out["gold_coverage@10"] = _mean(r.covered_at.get(10) for r in ans)
        out["quote_hit"] = _mean(None if r.quote_hit is None else float(r.quote_hit) for r in ans)
        out["answer_hit"] = _mean(None if r.answer_hit is None else float(r.answer_hit) for r in ans)
        out["gold_cited"] = _mean(r.gold_cited for r in ans)
        out["citation_precision"] = _mean(r.citation_precision for r in ans)
        out["gold_interviews_cited"] = _mean(r.gold_files_cited for r in ans)
        out["off_project_citations"] = _mean(r.off_project for r in ans)
        refusals = [r for r in ans if r.answered is not None]
        out["false_refusals"] = _mean(0.0 if r.answered else 1.0 for r in refusals)
    if any(r.resolved_names is not None for r in results):
        out["resolved_names"] = _mean(None if r.resolved_names is None else float(r.resolved_names) for r in results)
    if una:
        flagged = [r for r in una if r.answered is not None]
        out["unanswerable_flagged"] = _mean(0.0 if r.answered else 1.0 for r in flagged)
    out["passage_words"] = _mean(r.passage_words for r in results if r.passage_words)
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    if latencies:
        out["p50_ms"] = round(statistics.median(latencies), 1)
    return out


def score_questions(system: System, questions: Sequence[EvalQuestion], top_k: int = 10, answer_k: int = 5,
                    corpus: Sequence[PassageLike] | None = None, answers: bool = True
                    ) -> tuple[list[QuestionResult], list[float]]:
    """Run every question through `system`: one result per question, and each search's milliseconds."""
    results: list[QuestionResult] = []
    search_ms: list[float] = []
    names = _name_keys(corpus)
    for q in questions:
        answer, answer_ms, query = None, 0.0, q.question
        turn = q.kind in (FIRST_TURN, FOLLOW_UP)
        if turn and hasattr(system, "ask"):
            # A conversation turn is answered with its history first: its passages are ranked for the question
            # the system resolved it to (search itself takes no history).
            started = time.perf_counter()
            answer = system.ask(q.question, answer_k, q.project, q.adopter, history=q.history)
            answer_ms = (time.perf_counter() - started) * 1000
            query = getattr(answer, "resolved_question", "") or q.question
        started = time.perf_counter()
        passages = system.search(query, max(top_k, 10), q.project, q.adopter)
        search_ms.append((time.perf_counter() - started) * 1000)
        gold_files = {g.file for g in q.gold}
        ideal = ideal_hits(q.gold, [p for p in corpus if p.source in gold_files] if corpus else None)
        r = score_ranking(q, passages, ideal)
        if answers and hasattr(system, "ask"):
            if answer is None:
                started = time.perf_counter()
                answer = system.ask(q.question, answer_k, q.project, q.adopter)
                answer_ms = (time.perf_counter() - started) * 1000
            score_answer(q, r, answer, answer_ms)
        if turn:
            r.resolved_question = query
            if q.standalone and names:
                want = names_in(q.standalone, names)
                r.resolved_names = want <= names_in(query, names) if want else None
        results.append(r)
    return results, search_ms


def _name_keys(corpus: Sequence[Any] | None) -> frozenset[str]:
    """The adopter and project names (`name_key`-ed) of the corpus passages, to check resolved questions."""
    if not corpus:
        return frozenset()
    return frozenset(name_key(n) for c in corpus for n in (getattr(c, "adopter", ""), c.project) if n)


def build_report(results: Sequence[QuestionResult], search_ms: Sequence[float] = (),
                 top_k: int = 10, answer_k: int = 5) -> dict[str, Any]:
    """Overall, per-kind and per-question metrics of a set of question results (e.g. all folds' held-out)."""
    kinds = sorted({r.kind for r in results},
                   key=lambda k: (KINDS_ORDER.index(k) if k in KINDS_ORDER else len(KINDS_ORDER), k))
    overall = summarize(results)
    overall["search_p50_ms"] = round(statistics.median(search_ms), 1) if search_ms else None
    thematic = [r for r in results if r.kind == "thematic" and r.gold_files_cited is not None]
    if thematic:
        overall["thematic_coverage"] = _mean(r.gold_files_cited for r in thematic)
    return {
        "overall": overall,
        "by_kind": {k: summarize([r for r in results if r.kind == k]) for k in kinds},
        "questions": [asdict(r) for r in results],
        "settings": {"top_k": top_k, "answer_k": answer_k, "hold_fraction": HOLD_FRACTION},
    }


def evaluate(system: System, questions: Sequence[EvalQuestion], top_k: int = 10, answer_k: int = 5,
             corpus: Sequence[PassageLike] | None = None, answers: bool = True) -> dict[str, Any]:
    """Run every question through `system` and return overall, per-kind and per-question metrics."""
    results, search_ms = score_questions(system, questions, top_k, answer_k, corpus, answers)
    return build_report(results, search_ms, top_k, answer_k)

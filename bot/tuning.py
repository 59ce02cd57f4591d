"""Every hand-tuned number of the search and the answer, in one place, each with why it is what it is.

Retrieval weights were tuned with `qabot eval` (BENCHMARKS.md), citation and abstention numbers on
../shared/eval/dev.jsonl + bench/heldout.jsonl (README, "How answers are built"). The fitted alternative to
`RetrievalParams` is bench/fitted-weights.json (bot/search/fusion.py). Engineering sizes (caches, samples,
IVF candidates) are not tuned for quality and stay beside the code they size.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- retrieval ------------------------------------------------------------------------------------------

Z_CAP = 6.0  # standard scores are clipped here so one runaway signal can't outvote all the others


@dataclass(frozen=True)
class RetrievalParams:
    """Weights of the hand-set fused score, each over standard scores (bot/search/signals.py)."""

    dense: float = 0.5  # cosine of question and passage (context header + text)
    sentence: float = 1.5  # best cosine of question and one sentence of the passage
    heading_dense: float = 0.25  # cosine of question and the interview question the passage answers
    body: float = 1.0  # BM25 over the interview question + passage text
    sentence_kw: float = 0.5  # BM25 of the passage's best-matching sentence
    heading: float = 1.0  # BM25 over project, adopter, section and question
    interview: float = 0.6  # cosine of question and the interview's centroid (whole-interview topic)
    # BM25 of question and who the interviewee is (title, preamble, first section), given to the rest of the
    # interview only: the profile passages already match a description word for word
    profile: float = 1.0
    adopter_boost: float = 6.0  # added when the question names the passage's adopter
    project_boost: float = 2.5  # added (shared among named projects) when it names the passage's project
    repeat_penalty: float = 0.2  # ranking: subtracted per passage already ranked from the same interview
    described: float = 0.5  # BM25 of the adopter description alone ("the Dutch bank") vs profiles
    local_z: float = 1.0  # within a named adopter's interview, passage signals standardised over its passages (0-1 mix)
    # project boost when the question is about "<P> adopters" (only those projects get it: the answer is in
    # their interviews, not in those of the projects named as topic beside them)
    scope_boost: float = 20.0
    candidates: int = 60  # passages re-ranked for diversity
    described_query: float = 0.5  # passage cosines use the question without its description (0-1 mix)
    described_local: float = 0.5  # a description matching one interview by this many standard scores more
    # than any other: its passages are ranked among themselves like a named adopter's (0: never)
    described_boost: float = 3.0  # added to the passages of a clearly described interview (see described_local)
    described_dense: float = 2.5  # best cosine of the description alone with a sentence of an interview's profile


# --- citation selection (bot/answer/answerer.py, bot/answer/citations.py) ---------------------------------

CANDIDATES = 40  # ranked passages the citations are chosen from: a few interviews' worth beyond top_k
PER_INTERVIEW = 1  # citations per interview when a question spans adopters: coverage over depth
# Citations per interview when the question asks about one adopter without naming it ("the German
# integrator"): the answer often spans two passages of that interview.
PER_INTERVIEW_SINGLE = 3
# A passage scoring this far (fused score) below the best is not cited: it answers another question. Chosen by
# bench/margin_cv.py (5 folds of dev, answer hit + citation precision + unanswerable flagged): 6.5 in four folds
# of five; out of fold precision 0.573 -> 0.583 at the same answer hit (BENCHMARKS.md, "Citation margin").
CITE_MARGIN = 6.5
# Questions spanning adopters cite one passage per interview, interviews chosen by `interview_order`:
SPAN_MARGIN = 10.0  # an interview whose best passage is this far below the best is not cited
SECOND_PASSAGE = 0.5  # share of an interview's second-best passage score in its evidence (depth counts, less)
INTERVIEW_KEYWORD = 2.0  # weight of the question's BM25 over the whole interview (standard score)
PROJECT_PENALTY = 2.0  # taken off an interview's evidence per interview of its project already cited
# A passage after the first is cited when its best sentence holds this share of the first's question words
# (IDF-weighted); fit by 5-fold cross-validation with bench/cite_cut.py (bot/answer/citations.py, BENCHMARKS.md).
EVIDENCE_SHARE = 0.6

# --- quotes (bot/answer/quotes.py) ------------------------------------------------------------------------

MAX_SENTENCES = 3  # a quote is at most this many sentences: enough to answer, short enough to read
SHORT_WORDS = 20  # a quote shorter than this takes its best neighbour along ("5+ years. Started in 2019.")
NEIGHBOUR_GAP = 0.1  # a neighbour scoring within this of the best sentence joins the quote
COVERAGE_WEIGHT = 0.5  # share of question words in a sentence, added to its cosine


# --- abstention (bot/answer/coverage.py) ------------------------------------------------------------------

@dataclass(frozen=True)
class CoverageThresholds:
    """Where "answered" starts; calibrated on dev.jsonl + bench/heldout.jsonl (see README, "How answers are built")."""

    min_dense: float = 0.2  # best passage cosine below which the question is off-topic for the corpus
    rare_share: float = 0.02  # a known name in at most this share of passages counts as rare
    evidence_passages: int = 3  # how many top passages the evidence looks at
    # A question about one adopter (named or filtered) whose words the adopter's best passages barely have
    # and whose best sentence is not close either asks for a detail that interview doesn't give ("How many
    # revisions does <adopter> keep?"). Over the three question sets, answerable ones of this kind cover
    # 0.37 or more of their words (idf-weighted), such details 0.08-0.14 with best sentence cosines
    # 0.33-0.37; paraphrased questions about one adopter may cover as little as 0.15 but their best sentence
    # scores 0.44 or more (README, "What answered: false means").
    min_single_coverage: float = 0.2
    min_single_sentence: float = 0.4
    min_single_terms: int = 3  # ... counted only with this many content words (few words: coarse coverage)

"""Pydantic request and response models of the HTTP API (DESIGN.md "HTTP"), so /openapi.json is truthful."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

MAX_TOP_K = 20
MAX_SEARCH_K = 50
MAX_FILTER_CHARS = 200
MAX_HISTORY = 20  # earlier questions an /ask may carry (issue 16's contract)
NOT_BLANK = r"\S"  # at least one non-whitespace character


class PassageOut(BaseModel):
    """A retrieved passage: a Citation without `n` and `quote`."""

    chunk_id: str
    source: str = Field(description="File path relative to the corpus folder, `/`-separated.")
    project: str
    adopter: str
    section: str
    question: str
    text: str = Field(description="The whole passage, verbatim from the source.")
    line_start: int
    line_end: int
    score: float
    page: int | None = Field(default=None, description="PDF interviews: the page `line_start` is on (null for "
                                                   "other formats).")
    page_end: int | None = Field(default=None, description="PDF interviews: the page `line_end` is on.")


class CitationOut(PassageOut):
    """A numbered source of an answer: the passage plus `n` and the `quote` it shows, which
    `line_start`/`line_end` locate."""

    n: int
    quote: str = Field(description="The sentence(s) the answer shows, verbatim from the source.")


class AskResponse(BaseModel):
    """The answer: text with `[n]` markers, one citation per marker; `related` when not answered."""

    question: str
    resolved_question: str = Field(description="The standalone question answered: `question` itself, or a "
                                               "follow-up resolved against `history`.")
    answer: str
    answered: bool
    citations: list[CitationOut]
    took_ms: float
    related: list[PassageOut] = Field(default_factory=list,
                                      description="Closest passages when the interviews don't answer.")


class SearchResponse(BaseModel):
    """Ranked passages for a query."""

    query: str
    results: list[PassageOut]


class SectionPassage(BaseModel):
    """One passage of the section around a source passage."""

    chunk_id: str
    question: str
    text: str
    line_start: int
    line_end: int
    page: int | None = Field(default=None, description="PDF interviews: the page `line_start` is on (null for "
                                                   "other formats).")
    page_end: int | None = Field(default=None, description="PDF interviews: the page `line_end` is on.")


class SourceResponse(BaseModel):
    """A passage with its heading path and the passages of the same section around it."""

    chunk_id: str
    source: str
    project: str
    adopter: str
    section: str
    question: str
    heading_path: list[str]
    text: str
    line_start: int
    line_end: int
    page: int | None = Field(default=None, description="PDF interviews: the page `line_start` is on (null for "
                                                   "other formats).")
    page_end: int | None = Field(default=None, description="PDF interviews: the page `line_end` is on.")
    title: str | None = None
    interviewee: str | None = None
    date: str | None = None
    section_passages: list[SectionPassage] = Field(
        description="Every passage of the same file and section, in file order (this one included).")


class InterviewOut(BaseModel):
    """One indexed interview."""

    source: str
    project: str
    adopter: str
    interviewee: str | None = None
    date: str | None = None
    title: str | None = None
    chunks: int


class InterviewsResponse(BaseModel):
    """The indexed interviews."""

    count: int
    interviews: list[InterviewOut]


class HealthResponse(BaseModel):
    """The process is up."""

    status: str = "ok"


class ReadyResponse(BaseModel):
    """Whether an index is loaded, and which."""

    ready: bool
    generation: int | None = None
    chunks: int = 0
    interviews: int = 0
    detail: str | None = None


class ReindexResponse(BaseModel):
    """A background reindex was started."""

    started: bool
    status: dict[str, Any]


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: `detail` says what is wrong."""

    detail: str
    errors: list[dict[str, Any]] | None = None


class AskRequestBase(BaseModel):
    """Base of the /ask body model; `ask_request_model` sets the configured limits."""

    model_config = ConfigDict(strict=True, extra="ignore")


def ask_request_model(max_question_chars: int, default_top_k: int) -> type[AskRequestBase]:
    """The /ask body model with this service's question limit and default top_k."""
    default_top_k = min(max(default_top_k, 1), MAX_TOP_K)
    return create_model(
        "AskRequest",
        __base__=AskRequestBase,
        __doc__="A question to answer from the interviews.",
        question=(str, Field(min_length=1, max_length=max_question_chars, pattern=NOT_BLANK,
                             description=f"The question (1-{max_question_chars} characters, not blank).")),
        top_k=(int, Field(default=default_top_k, ge=1, le=MAX_TOP_K, description="Passages to cite (1-20).")),
        project=(str | None, Field(default=None, max_length=MAX_FILTER_CHARS, description="Only this project.")),
        adopter=(str | None, Field(default=None, max_length=MAX_FILTER_CHARS, description="Only this adopter.")),
        history=(list[Annotated[str, Field(max_length=max_question_chars)]],
                 Field(default_factory=list, max_length=MAX_HISTORY,
                       description=f"The conversation's earlier questions, oldest first (at most {MAX_HISTORY}, "
                                   f"each at most {max_question_chars} characters): a follow-up such as "
                                   "\"and IBM?\" is answered as the standalone question it stands for.")),
    )

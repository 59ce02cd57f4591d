"""The OpenAI-compatible chat API: `GET /v1/models`, `POST /v1/chat/completions` (JSON or SSE), OpenAI's errors.

Chat front ends (Open WebUI, LibreChat, the `llm` CLI, the `openai` client) talk to qabot as to a model: the last
user message is the question, the earlier user messages are its history, and the answer comes back as the
assistant's message with its `[n]` markers and a Sources list; the citations themselves ride in an extra
top-level `qabot` field."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Coroutine

from fastapi import APIRouter, Depends, Path as PathParam, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException

from bot.answer.answerer import Answer, Answerer, NotReady
from bot.answer.location import location
from bot.config import Settings, is_plugin_spec
from bot.serve.api_keys import key_allowed
from bot.serve.openai_schemas import (MAX_MODEL_CHARS, ChatCompletion, ChatCompletionRequest, ChatMessage,
                                      ModelCard, ModelList, OpenAIErrorResponse)
from bot.serve.slots import AnswerSlots

logger = logging.getLogger(__name__)

MODEL = "qabot"
# Questions waiting or being answered per answer thread before a new one is told to come back later (429, which
# OpenAI clients retry with backoff): past this a question would wait seconds in line, and the line would grow
# without bound under a client that never gives up.
MAX_WAITING_PER_THREAD = 16
MAX_HISTORY = 20  # earlier user messages passed on as history (the most recent ones)
CHUNK_WORDS = 8  # words per streamed chunk
ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
               422: "invalid_request_error", 429: "rate_limit_exceeded", 503: "server_error"}


def _error_doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {400: "Malformed JSON or an invalid field (`param` names it)",
                    401: "Missing or wrong API key (when QABOT_API_KEYS is set)",
                    404: "No such model", 422: "The conversation has no question to answer",
                    429: "Too many questions waiting; retry shortly", 503: "The index is not loaded yet"}
    return {s: {"model": OpenAIErrorResponse, "description": descriptions[s]} for s in statuses}


class OpenAIError(Exception):
    """An error to send in OpenAI's shape."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.headers = status, message, param, code, headers

    def response(self) -> JSONResponse:
        """The JSON response."""
        body = {"error": {"message": self.message, "type": ERROR_TYPES.get(self.status, "server_error"),
                          "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def _field(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or None


def _validation_error(exc: RequestValidationError) -> OpenAIError:
    """FastAPI's validation errors as one OpenAI 400 naming the first bad field."""
    errors = list(exc.errors())
    for e in errors:
        if e.get("type") == "json_invalid":
            return OpenAIError(400, f"malformed JSON: {(e.get('ctx') or {}).get('error', 'cannot parse the body')}",
                               code="invalid_json")
    first = errors[0] if errors else {}
    param = _field(tuple(first.get("loc", ())))
    if param is None and first.get("type") in {"model_attributes_type", "dict_type", "missing"}:
        return OpenAIError(400, 'the body must be a JSON object such as {"model": "qabot", "messages": [...]} '
                                "sent with Content-Type: application/json", code="invalid_body")
    message = "is required" if first.get("type") == "missing" else str(first.get("msg", "is invalid"))
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return OpenAIError(400, f"{param}: {message}{more}", param=param, code=str(first.get("type") or "invalid_value"))


def _unparsable(cause: BaseException | None) -> str:
    """What was wrong with a body FastAPI could not parse, from the exception it raised `from`."""
    if isinstance(cause, UnicodeDecodeError):
        return "malformed JSON: the body cannot be decoded (send UTF-8 JSON)"
    if isinstance(cause, RecursionError):
        return "malformed JSON: nested too deeply"
    return "malformed JSON: the body cannot be parsed"


class OpenAIRoute(APIRoute):
    """A route that checks the API key first and answers every error in OpenAI's shape, not FastAPI's `detail`."""

    api_keys: tuple[str, ...] = ()

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:  # noqa: D102 - wrapped
        handler = super().get_route_handler()
        keys = self.api_keys

        async def route(request: Request) -> Response:
            try:
                # Before the body is read: a stranger learns nothing about the request format.
                if not key_allowed(keys, request.headers.get("authorization")):
                    raise OpenAIError(401, "missing or wrong API key: send Authorization: Bearer <key>, one of "
                                           "QABOT_API_KEYS", code="invalid_api_key",
                                      headers={"WWW-Authenticate": "Bearer"})
                return await handler(request)
            except OpenAIError as exc:
                return exc.response()
            except RequestValidationError as exc:
                return _validation_error(exc).response()
            except HTTPException as exc:  # FastAPI's own, e.g. a body it cannot parse (raised `from` the cause)
                message = _unparsable(exc.__cause__) if exc.status_code == 400 else str(exc.detail)
                return OpenAIError(exc.status_code, message, code="invalid_json").response()
            except NotReady:
                return OpenAIError(503, "the index is not loaded yet; try again shortly", code="not_ready",
                                   headers={"Retry-After": "2"}).response()
            except Exception:  # noqa: BLE001 - still an OpenAI-shaped 500; the log has the traceback
                logger.exception("unhandled error on %s %s", request.method, request.url.path)
                return JSONResponse({"error": {"message": "internal error; see the server log", "type": "server_error",
                                               "param": None, "code": None}}, status_code=500)
        return route


def slug(name: str) -> str:
    """A model-id-safe form of a project name: lower case, runs of other characters as one `-`."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "project"


def project_models(answerer: Answerer) -> dict[str, str]:
    """`qabot:<slug>` -> project name, for every project of the loaded index (none before it loads)."""
    if not answerer.ready:
        return {}
    projects = sorted({entry.project for entry in answerer.index.manifest.files.values()}, key=str.lower)
    return {f"{MODEL}:{slug(p)}": p for p in projects}


def _text(message: ChatMessage) -> str:
    """The text of a message (its text parts, joined by newlines)."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part.text for part in content if part.type == "text" and part.text)


def conversation(messages: list[ChatMessage], max_chars: int) -> tuple[str, list[str]]:
    """The question (the last user message) and its history (the earlier user messages, oldest first).

    System, developer, assistant and tool messages are not questions: they are ignored."""
    if messages[-1].role != "user":
        raise OpenAIError(422, f"the last message must be the user's question (it is a {messages[-1].role!r} "
                               "message)", param="messages", code="no_question")
    question = _text(messages[-1]).strip()
    if not question:
        raise OpenAIError(422, "the last user message has no text to answer", param="messages", code="no_question")
    if len(question) > max_chars:
        raise OpenAIError(400, f"the question is {len(question)} characters; at most {max_chars} are answered",
                          param="messages", code="string_above_max_length")
    history = [t[:max_chars] for t in (_text(m).strip() for m in messages[:-1] if m.role == "user") if t]
    return question, history[-MAX_HISTORY:]


def chat_content(answer: Answer) -> str:
    """The assistant message: the answer with its `[n]` markers, then one Sources line per citation (a Markdown
    list, so chat front ends keep the lines apart), or the closest passages when the interviews don't answer."""
    if answer.citations:
        sources = [f"- [{c.n}] {c.project} · {c.adopter} · {c.question} ({location(c)})"
                   for c in answer.citations]
        return f"{answer.answer}\n\nSources:\n" + "\n".join(sources)
    if answer.related:
        related = [f"- {p.project} · {p.adopter} · {p.question} ({location(p)})"
                   for p in answer.related]
        return f"{answer.answer}\n\nClosest passages (related, not an answer):\n" + "\n".join(related)
    return answer.answer


def pieces(content: str, words: int = CHUNK_WORDS) -> list[str]:
    """`content` cut into pieces of a few words each, whitespace kept: joined, they are `content` again."""
    tokens = re.findall(r"\s+|\S+\s*", content)
    return ["".join(tokens[i:i + words]) for i in range(0, len(tokens), words)]


class WordPieces:
    """Counts word pieces with the embedding model's tokenizer, loaded once, lazily; 0 for every text when the
    model has no tokenizer file (a plugin embedder, QABOT_MODEL=module:Class), so `usage` is either counted or zero
    for the whole process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._tokenizer: Any = None
        self._loaded = False
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._tokenizer = self._open()
                    self._loaded = True
        return self._tokenizer

    def _open(self) -> Any:
        if is_plugin_spec(self.settings.model_name):
            return None
        try:
            from tokenizers import Tokenizer

            from bot.embed.embedders import bundled_model_path

            tokenizer = Tokenizer.from_file(str(Path(self.settings.model_path or bundled_model_path())
                                                / "tokenizer.json"))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            return tokenizer
        except Exception as exc:  # noqa: BLE001 - usage is informational: count zeros rather than fail answers
            logger.warning("usage will be reported as 0 tokens: the tokenizer cannot be loaded (%s)", exc)
            return None

    def count(self, texts: list[str]) -> int:
        """Word pieces in `texts` together (no special tokens)."""
        tokenizer = self._load()
        texts = [t for t in texts if t]
        if tokenizer is None or not texts:
            return 0
        return sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False))


def _answered(answerer: Answerer, counter: WordPieces, question: str, history: list[str], top_k: int,
              project: str | None, sent: list[str]) -> tuple[Answer, str, dict[str, int]]:
    """Answer and count, in one answer thread: tokenizing a long conversation is work too."""
    answer = answerer.ask(question, top_k, project, None, history=history)
    content = chat_content(answer)
    prompt, completion = counter.count(sent), counter.count([content])
    return answer, content, {"prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": prompt + completion}


def _sse(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode("utf-8")


def openai_router(settings: Settings, answerer: Answerer, slots: AnswerSlots) -> APIRouter:
    """The /v1 routes, answering through `slots` like /ask."""
    route_class = type("KeyedOpenAIRoute", (OpenAIRoute,), {"api_keys": tuple(settings.api_keys)})
    router = APIRouter(prefix="/v1", route_class=route_class, tags=["openai"],
                       dependencies=[Depends(HTTPBearer(auto_error=False, description="one of QABOT_API_KEYS"))])
    counter = WordPieces(settings)
    waiting = {"n": 0}
    max_waiting = MAX_WAITING_PER_THREAD * max(1, settings.answer_threads)

    def created() -> int:
        return int(answerer.index.manifest.built_at) if answerer.ready else 0

    def cards() -> list[ModelCard]:
        when = created()
        return [ModelCard(id=m, created=when) for m in [MODEL, *project_models(answerer)]]

    def project_of(model: str) -> str | None:
        """The project a model id filters to (None for `qabot`); 404 for an unknown id."""
        if model == MODEL:
            return None
        if model.startswith(f"{MODEL}:") and not answerer.ready:
            raise NotReady("the index is not loaded yet")
        projects = project_models(answerer)
        if model not in projects:
            known = ", ".join([MODEL, *projects])
            raise OpenAIError(404, f"the model {model!r} does not exist; use one of: {known}", param="model",
                              code="model_not_found")
        return projects[model]

    @router.get("/models", response_model=ModelList, responses=_error_doc(401))
    def list_models() -> ModelList:
        """`qabot` (every interview) and `qabot:<project>` per project of the index (answers from it only)."""
        return ModelList(data=cards())

    @router.get("/models/{model}", response_model=ModelCard, responses=_error_doc(400, 401, 404))
    def retrieve_model(model: str = PathParam(min_length=1, max_length=MAX_MODEL_CHARS)) -> ModelCard:
        """One model of `GET /v1/models`."""
        for card in cards():
            if card.id == model:
                return card
        project_of(model)  # raises the 404 (or 503 for a project model before the index loads)
        raise OpenAIError(404, f"the model {model!r} does not exist", param="model", code="model_not_found")

    @router.post("/chat/completions", response_model=ChatCompletion,
                 responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                                  "description": "The completion; with `stream: true`, Server-Sent Events of "
                                                 "`chat.completion.chunk` objects ending with `data: [DONE]`"},
                            **_error_doc(400, 401, 404, 422, 429, 503)})
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        """Answer the last user message (earlier user messages are its history) with verbatim, cited quotes."""
        project = project_of(body.model)
        question, history = conversation(body.messages, settings.max_question_chars)
        request.state.question = question
        if waiting["n"] >= max_waiting:
            raise OpenAIError(429, f"{waiting['n']} questions are already waiting; retry shortly",
                              code="rate_limit_exceeded", headers={"Retry-After": "1"})
        waiting["n"] += 1
        try:
            sent = [_text(m) for m in body.messages]
            answer, content, usage = await slots.run(partial(_answered, answerer, counter), question, history,
                                                     settings.top_k, project, sent)
        finally:
            waiting["n"] -= 1
        request.state.answered = answer.answered
        ident, now = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        extra = {k: v for k, v in answer.to_dict().items()
                 if k in {"answered", "resolved_question", "citations", "related", "took_ms"}}
        if not body.stream:
            return {"id": ident, "object": "chat.completion", "created": now, "model": body.model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                                 "finish_reason": "stop", "logprobs": None}],
                    "usage": usage, "system_fingerprint": None, "qabot": extra}
        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        async def events() -> AsyncIterator[bytes]:
            head = {"id": ident, "object": "chat.completion.chunk", "created": now, "model": body.model,
                    "system_fingerprint": None}
            yield _sse({**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                             "finish_reason": None, "logprobs": None}]})
            for piece in pieces(content):
                yield _sse({**head, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None,
                                                 "logprobs": None}]})
            yield _sse({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}],
                        "qabot": extra})
            if include_usage:
                yield _sse({**head, "choices": [], "usage": usage})
            yield _sse("[DONE]")

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @router.api_route("/{path:path}", methods=["GET", "POST"], include_in_schema=False)
    def unknown(path: str, request: Request) -> None:
        """Any other /v1 path: OpenAI's 404, so a client says which URL it tried."""
        raise OpenAIError(404, f"unknown URL {request.method} /v1/{path}: qabot serves GET /v1/models and "
                               "POST /v1/chat/completions", code="unknown_url")

    return router

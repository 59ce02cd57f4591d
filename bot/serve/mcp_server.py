"""The MCP server (official `mcp` SDK): qabot's tools and its interviews as resources, for AI assistants.

Tools: `search_interviews`, `ask`, `get_source`, `list_interviews`; resources: `interview://<project>/<adopter>`,
one per interview. Served over stdio by `qabot mcp` (`run_stdio`) and over streamable HTTP at `/mcp` of
`qabot serve` (`McpHttp`, behind the same API-key rule as /v1)."""

# No `from __future__ import annotations` here: the SDK reads the tools' signatures, whose limits are built from
# the settings inside `build_server`, and string annotations could not see them.

import asyncio
import contextlib
import logging
import re
import threading
from functools import partial
from typing import Annotated, Any, AsyncIterator, Awaitable, Callable

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.types import Resource, ToolAnnotations
from pydantic import AfterValidator, Field

from bot.answer.answerer import Answerer, NotReady
from bot.config import Settings
from bot.index import store
from bot.serve.api_keys import key_allowed
from bot.serve.schemas import (MAX_FILTER_CHARS, MAX_SEARCH_K, MAX_TOP_K, AskResponse, InterviewOut,
                               InterviewsResponse, SearchResponse, SourceResponse)
from bot.serve.slots import AnswerSlots
from bot.serve.sources import source_body

logger = logging.getLogger(__name__)

NAME = "qabot"
MAX_HISTORY = 20
MAX_CHUNK_ID_CHARS = 100
# An assistant calls a tool right after it starts `qabot mcp`; loading an index takes a few seconds, so the call
# waits this long for it rather than failing (a first build of a large corpus may take longer: "not ready").
FIRST_LOAD_WAIT_S = 60.0
INSTRUCTIONS = (
    "qabot answers questions from a collection of interview transcripts with verbatim, numbered quotes; it never "
    "paraphrases. Use `ask` for an answer with citations ([n] markers, each with its file and lines), "
    "`search_interviews` for ranked passages, `get_source` to read a passage in its section, and `list_interviews` "
    "(or the interview:// resources) to see what is indexed. Pass earlier questions of the conversation as "
    "`history` so a follow-up such as 'and IBM?' is understood. When `answered` is false the interviews do not "
    "answer the question: say so rather than guessing.")
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


class InterviewItem(InterviewOut):
    """One indexed interview, with the URI of its resource."""

    uri: str


class InterviewList(InterviewsResponse):
    """The indexed interviews, each with the URI of its resource."""

    interviews: list[InterviewItem]  # type: ignore[assignment]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def slug(name: str) -> str:
    """A URI-safe form of a name: lower case, runs of other characters as one `-`."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "x"


def interview_uris(answerer: Answerer) -> dict[str, str]:
    """`interview://<project>/<adopter>` -> source, for every served interview; a second interview of the same
    adopter and project (in file order) gets `-2`, a third `-3`, ..."""
    files = answerer.index.manifest.files
    hidden = answerer.hidden_sources
    uris: dict[str, str] = {}
    for source in sorted(files):
        if source in hidden:
            continue
        entry = files[source]
        base = f"interview://{slug(entry.project)}/{slug(entry.adopter)}"
        uri, n = base, 1
        while uri in uris:
            n += 1
            uri = f"{base}-{n}"
        uris[uri] = source
    return uris


def interview_markdown(index: store.LoadedIndex, source: str) -> str:
    """An interview as indexed: its metadata, then every passage under its section and question, in file order."""
    entry = index.manifest.files[source]
    if entry.row >= 0:
        chunks = [c for c in index.chunks[entry.row:entry.row + entry.chunks] if c.source == source]
    else:  # an index written before rows were recorded
        chunks = [c for c in index.chunks if c.source == source]
    chunks.sort(key=lambda c: (c.line_start, c.line_end))
    meta = [f"Project: {entry.project}", f"Adopter: {entry.adopter}"]
    meta += [f"Interviewee: {entry.interviewee}"] if entry.interviewee else []
    meta += [f"Date: {entry.date}"] if entry.date else []
    lines = [f"# {entry.title or source}", "", " · ".join(meta), f"Source: {source} ({len(chunks)} passages)"]
    section = None
    for c in chunks:
        if c.section != section:
            section = c.section
            lines += ["", f"## {section}"]
        lines += ["", f"### {c.question} (lines {c.line_start}-{c.line_end}, chunk {c.chunk_id})", "", c.text]
    return "\n".join(lines) + "\n"


class QabotMCP(MCPServer):
    """MCPServer whose resource list is the interviews of the generation loaded now (it changes on reindex)."""

    def __init__(self, answerer: Answerer, loaded: Callable[[], Awaitable[None]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answerer = answerer
        self.loaded = loaded

    async def list_resources(self) -> list[Resource]:  # noqa: D102 - MCPServer's, from the index
        await self.loaded()
        if not self.answerer.ready:
            return []
        files = self.answerer.index.manifest.files
        resources = []
        for uri, source in interview_uris(self.answerer).items():
            e = files[source]
            who = f", interviewee {e.interviewee}" if e.interviewee else ""
            when = f", {e.date}" if e.date else ""
            resources.append(Resource(
                uri=uri, name=f"{e.project} · {e.adopter}", title=e.title or f"{e.project} adopter interview",
                description=f"The {e.project} adopter interview of {e.adopter}{who}{when} ({e.chunks} passages, "
                            f"{source}).",
                mime_type="text/markdown",
                _meta={"source": source, "project": e.project, "adopter": e.adopter, "interviewee": e.interviewee,
                       "date": e.date, "chunks": e.chunks}))
        return resources


def build_server(settings: Settings, answerer: Answerer, run: Callable[..., Any],
                 not_ready: Callable[[], str | None] = lambda: None,
                 lifespan: Callable[[Any], contextlib.AbstractAsyncContextManager[Any]] | None = None,
                 loaded: Callable[[], Awaitable[None]] | None = None) -> QabotMCP:
    """The MCP server over `answerer`; `run(func, *args)` computes in an answer thread (AnswerSlots.run);
    `loaded()` returns once the first load is over (or has taken too long), so a call made right after the
    assistant connects waits for the index instead of being told to retry."""
    loaded = loaded or _at_once
    server = QabotMCP(answerer, loaded, name=NAME, title="qabot", version="0.1.0", instructions=INSTRUCTIONS,
                      lifespan=lifespan, log_level=settings.log_level if settings.log_level in
                      {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"} else "INFO")
    Text = Annotated[str, Field(min_length=1, max_length=settings.max_question_chars), AfterValidator(_not_blank)]
    Filter = Annotated[str | None, Field(max_length=MAX_FILTER_CHARS,
                                         description="Only interviews of this (project / adopter), as listed.")]
    Earlier = Annotated[str, Field(max_length=settings.max_question_chars)]

    async def ready_index() -> store.LoadedIndex:
        await loaded()
        try:
            return answerer.index
        except NotReady:
            raise ToolError(_not_ready_message(not_ready())) from None

    async def call(func: Callable[..., Any], *args: Any) -> Any:
        await loaded()
        try:
            return await run(func, *args)
        except NotReady:
            raise ToolError(_not_ready_message(not_ready())) from None

    @server.tool(annotations=READ_ONLY)
    async def search_interviews(
            query: Annotated[Text, Field(description="What to look for, in plain words.")],
            k: Annotated[int, Field(ge=1, le=MAX_SEARCH_K, description="How many passages.")] = 10,
            project: Filter = None, adopter: Filter = None) -> SearchResponse:
        """Ranked interview passages for a query, best first, each with its file, lines and chunk id."""
        found = await call(answerer.search, query.strip(), k, project or None, adopter or None)
        return SearchResponse(query=query, results=[p.to_dict() for p in found])

    @server.tool(annotations=READ_ONLY)
    async def ask(question: Annotated[Text, Field(description="The question.")],
                  history: Annotated[list[Earlier] | None, Field(
                      max_length=MAX_HISTORY, description="The conversation's earlier questions, oldest first, "
                                                          "so a follow-up is understood.")] = None,
                  project: Filter = None, adopter: Filter = None,
                  top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, description="Passages to cite.")] = settings.top_k,
                  ) -> AskResponse:
        """Answer a question with verbatim quotes from the interviews, each numbered [n] with its citation
        (project, adopter, file, lines); `answered` is false when the interviews don't cover it."""
        earlier = [h.strip() for h in history or [] if h.strip()]
        answer = await call(partial(answerer.ask, history=earlier), question.strip(), top_k, project or None,
                            adopter or None)
        return AskResponse(**answer.to_dict())

    @server.tool(annotations=READ_ONLY)
    async def get_source(chunk_id: Annotated[str, Field(min_length=1, max_length=MAX_CHUNK_ID_CHARS,
                                                        description="A chunk id from ask or search_interviews.")],
                         ) -> SourceResponse:
        """A passage with its heading path, its interview's metadata and the passages of its section."""
        body = source_body(await ready_index(), chunk_id)
        if body is None:
            raise ToolError(f"no passage with id {chunk_id!r} in the index (it may have been re-indexed; search "
                            "again for a current id)")
        return SourceResponse(**body)

    @server.tool(annotations=READ_ONLY)
    async def list_interviews() -> InterviewList:
        """The indexed interviews: project, adopter, interviewee, date, passages, and the URI of each."""
        await ready_index()
        by_source = {source: uri for uri, source in interview_uris(answerer).items()}
        items = [InterviewItem(**i, uri=by_source[i["source"]]) for i in answerer.interviews()
                 if i["source"] in by_source]
        return InterviewList(count=len(items), interviews=items)

    @server.resource("interview://{project}/{adopter}", name="interview", mime_type="text/markdown",
                     description="One interview as indexed: metadata, then each question and answer with its lines.")
    async def interview(project: str, adopter: str) -> str:
        """One interview, by the URI `list_interviews` or resources/list gives it."""
        await loaded()
        if not answerer.ready:
            raise ResourceNotFoundError(_not_ready_message(not_ready()))
        index = answerer.index
        source = interview_uris(answerer).get(f"interview://{project}/{adopter}")
        if source is None:
            raise ResourceNotFoundError(f"no interview at interview://{project}/{adopter}; list_interviews gives "
                                        "the URIs")
        return interview_markdown(index, source)

    return server


async def _at_once() -> None:
    """`loaded` of a server whose index is loaded before it serves (`qabot serve`)."""


def _not_ready_message(reason: str | None) -> str:
    return f"qabot is not ready: {reason or 'the index is loading'}; try again shortly"


class McpHttp:
    """`/mcp` of `qabot serve`: the streamable HTTP transport behind the API-key rule of /v1.

    Stateless, with JSON responses: no tool sends the client requests or progress, and without sessions any
    `--workers` process can answer any request. `running()` goes in the app's lifespan; it makes a new session
    manager each time, as one can run only once."""

    def __init__(self, settings: Settings, answerer: Answerer, slots: AnswerSlots,
                 not_ready: Callable[[], str | None] = lambda: None) -> None:
        self.settings = settings
        self.keys = tuple(settings.api_keys)
        self.server = build_server(settings, answerer, slots.run, not_ready)
        self._manager: StreamableHTTPSessionManager | None = None
        # Stateless, the SDK ends a transport after every request and logs each at INFO ("Terminating session:
        # None"): the request log line of bot.serve.observe already says all of it.
        logging.getLogger("mcp.server.streamable_http").setLevel(logging.WARNING)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve /mcp while the app runs."""
        # The SDK's app makes the session manager; its DNS-rebinding protection follows the host served on.
        self.server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, json_response=True,
                                        host=self.settings.host)
        manager = self.server.session_manager
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if not key_allowed(self.keys, headers.get("authorization")):
            await _json(send, 401, {"error": {"message": "missing or wrong API key: send Authorization: Bearer "
                                                         "<key>, one of QABOT_API_KEYS", "type": "invalid_request_error",
                                              "param": None, "code": "invalid_api_key"}},
                        [(b"www-authenticate", b"Bearer")])
            return
        manager = self._manager
        if manager is None:
            await _json(send, 503, {"detail": "the MCP endpoint is not running (the app's lifespan did not start)"})
            return
        await manager.handle_request(scope, receive, send)


async def _json(send: Callable[..., Any], status: int, body: dict[str, Any],
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
    import json

    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


class _Loader:
    """Loads the index in the background for `qabot mcp` (building it first if there is none, as `qabot serve`
    does), then picks up generations that `qabot index` writes; `reason()` says why it is not ready meanwhile."""

    def __init__(self, answerer: Answerer, poll_seconds: float) -> None:
        from bot.serve.maintainer import IndexMaintainer

        self.answerer = answerer
        self.maintainer = IndexMaintainer(answerer, poll_seconds=poll_seconds)
        self.error: str | None = None
        self.done = threading.Event()  # set when the first load (or build) is over, loaded or not
        self.thread = threading.Thread(target=self._load, name="qabot-mcp-load", daemon=True)

    def _load(self) -> None:
        try:
            warm_up = getattr(self.answerer.embedder, "warm_up", None)
            if warm_up is not None:
                warm_up()
            try:
                self.answerer.reload()
            except store.IndexNotFound:
                logger.info("no index in %s yet; building it from %s", self.answerer.settings.index_dir,
                            self.answerer.settings.corpus_dir)
                self.maintainer.rebuild_now()
            if not self.answerer.ready:
                self.error = self.maintainer.last_error or "the index could not be built"
        except Exception as exc:  # noqa: BLE001 - keep answering, with the reason, instead of dying
            self.error = f"index not loaded: {exc}"
            logger.exception("index not loaded")
        finally:
            self.done.set()
            self.maintainer.start()

    async def loaded(self) -> None:
        """Wait for the first load, at most FIRST_LOAD_WAIT_S (a first build of a large corpus takes longer:
        then the call answers "not ready" with the reason)."""
        if not self.done.is_set():
            await asyncio.to_thread(self.done.wait, FIRST_LOAD_WAIT_S)

    def reason(self) -> str | None:
        """Why no index is served (None while loading)."""
        return self.error or self.maintainer.last_error

    @contextlib.asynccontextmanager
    async def lifespan(self, server: Any) -> AsyncIterator[dict[str, Any]]:
        """Load while the stdio session runs; stop polling when it ends."""
        self.thread.start()
        try:
            yield {}
        finally:
            self.maintainer.stop()


def run_stdio(settings: Settings) -> None:
    """`qabot mcp`: serve the MCP server over stdin/stdout until the client closes stdin."""
    answerer = Answerer(settings)
    loader = _Loader(answerer, poll_seconds=settings.index_poll_ms / 1000)
    slots = AnswerSlots(settings.answer_threads)
    server = build_server(settings, answerer, slots.run, loader.reason, lifespan=loader.lifespan,
                          loaded=loader.loaded)
    try:
        server.run("stdio")
    finally:
        slots.close()
